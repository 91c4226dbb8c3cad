#!/usr/bin/env bash
# test_transform_kev: the real KEV catalog, published in chunks to raw.kev
# on a private broker, runs through `sluice transform`; checks exact counts,
# spot values, dead-lettering of a page that is not JSON, clean SIGTERM,
# and that committed offsets keep a restarted worker from re-emitting.
source "$SLUICE_ROOT/tests/lib.sh"
trap sl_cleanup EXIT

command -v kcat >/dev/null || { not_ok "kcat is installed (scripts/install-deps.sh)"; sl_done; exit; }
broker_start --topic raw.kev:2 || { not_ok "broker starts"; sl_done; exit; }
D=$(sl_tmpdir)
MAP=$SLUICE_ROOT/transformers/maps/kev.json

# The catalog in 4 chunks of whole records (the fetcher's chunk shape: the
# envelope kept, the records array holding the chunk), one JSON per line.
python3 - "$SLUICE_ROOT/data/kev/known_exploited_vulnerabilities.json" "$D" <<'PY'
import json, sys
cat = json.load(open(sys.argv[1]))
recs = cat["vulnerabilities"]
n = 4
size = (len(recs) + n - 1) // n
with open(sys.argv[2] + "/pages", "w") as f:
    for i in range(n):
        page = dict(cat)
        page["vulnerabilities"] = recs[i * size:(i + 1) * size]
        f.write(json.dumps(page, separators=(",", ":")) + "\n")
    f.write("this page is not JSON {\n")
# a later catalog carrying two new entries, for the restart check
later = dict(cat)
later["dateReleased"] = "2025-08-26T00:00:00.000Z"
later["vulnerabilities"] = [dict(recs[0], cveID="CVE-2099-0001"),
                            dict(recs[1], cveID="CVE-2099-0002")]
with open(sys.argv[2] + "/later", "w") as f:
    f.write(json.dumps(later, separators=(",", ":")) + "\n")
PY
check_eq "the fixture pages were written" "$(wc -l <"$D/pages")" "5"

timeout 30 kcat -P -b "$SLUICE_BROKERS" -t raw.kev -H source=kev -H run=test-run-1 \
	-H 'records_path=$.vulnerabilities' -X message.max.bytes=4000000 \
	<"$D/pages" 2>"$D/kcat.log"
check_eq "kcat published the pages" "$?" "0"

count() { # count TOPIC: messages in the topic now
	timeout 10 kcat -C -b "$SLUICE_BROKERS" -t "$1" -o beginning -e -q -f '%o\n' 2>/dev/null | wc -l
}
wait_count() { # wait_count TOPIC N SECS
	local i
	for ((i = 0; i < $3 * 5; i++)); do
		kill -0 "$SL_BROKER_PID" 2>/dev/null || { echo "# the broker is gone"; return 1; }
		[ "$(count "$1")" -ge "$2" ] && return 0
		sleep 0.2
	done
	return 1
}

bg transform1 "$SLUICE_BIN" transform "$MAP" --group kev-test --stats-interval 1 \
	--kafka session.timeout.ms=6000 --kafka heartbeat.interval.ms=500
W1=$LAST_PID
wait_count mapped.known_exploited_vulnerability 1404 60
sleep 1 # anything beyond 1404 would have arrived by now
check_eq "1404 KEV rows produced" "$(count mapped.known_exploited_vulnerability)" "1404"
check_eq "1404 CWE replace envelopes" "$(count mapped.known_exploited_vulnerability_cwe)" "1404"
timeout 30 kcat -C -b "$SLUICE_BROKERS" -t mapped.known_exploited_vulnerability -o beginning -e -q \
	-f '%k\t%s\n' >"$D/rows" 2>/dev/null
timeout 30 kcat -C -b "$SLUICE_BROKERS" -t mapped.known_exploited_vulnerability_cwe -o beginning -e -q \
	-f '%s\n' >"$D/cwes" 2>/dev/null
check_eq "1404 distinct message keys" "$(cut -f1 "$D/rows" | sort -u | wc -l)" "1404"

python3 - "$D/rows" "$D/cwes" >"$D/spot" <<'PY'
import json, sys
rows = {}
for line in open(sys.argv[1]):
    key, val = line.rstrip("\n").split("\t", 1)
    env = json.loads(val)
    assert key == env["key"]["cve_id"], (key, env["key"])
    rows[key] = env
r = rows["CVE-2021-44228"]
row = r["row"]
print("vendor", row["vendor_project"])
print("product", row["product"])
print("date_added", row["date_added"])
print("due_date", row["due_date"])
print("ransomware", row["known_ransomware_campaign_use"])
print("op", r["op"], "version", r.get("version"))
lin = r["lineage"]
print("lineage", lin["topic"], lin["source"], lin["run"], lin["map"],
      isinstance(lin["partition"], int), isinstance(lin["offset"], int))
cw = {}
total = 0
for line in open(sys.argv[2]):
    env = json.loads(line)
    cw[env["key"]["cve_id"]] = sorted(x["cwe_id"] for x in env["rows"])
    total += len(env["rows"])
print("cwes", ",".join(cw["CVE-2021-44228"]))
print("cwe_rows", total)
PY
check_eq "Log4Shell vendor" "$(grep '^vendor ' "$D/spot")" "vendor Apache"
check_eq "Log4Shell product" "$(grep '^product ' "$D/spot")" "product Log4j2"
check_eq "Log4Shell dateAdded" "$(grep '^date_added ' "$D/spot")" "date_added 2021-12-10"
check_eq "Log4Shell dueDate" "$(grep '^due_date ' "$D/spot")" "due_date 2021-12-24"
check_eq "Log4Shell ransomware use" "$(grep '^ransomware ' "$D/spot")" "ransomware Known"
check_eq "Log4Shell envelope op and version" "$(grep '^op ' "$D/spot")" \
	"op upsert version 2025-08-25T17:04:19.979600Z"
check_eq "Log4Shell lineage" "$(grep '^lineage ' "$D/spot")" "lineage raw.kev kev test-run-1 kev True True"
# data/kev says [CWE-20, CWE-400, CWE-502] for CVE-2021-44228
check_eq "Log4Shell CWEs" "$(grep '^cwes ' "$D/spot")" "cwes CWE-20,CWE-400,CWE-502"
check_eq "1338 CWE rows in all" "$(grep '^cwe_rows ' "$D/spot")" "cwe_rows 1338"

wait_count dlq.transform 1 10
check_eq "the non-JSON page is dead-lettered once" "$(count dlq.transform)" "1"
dl=$(timeout 30 kcat -C -b "$SLUICE_BROKERS" -t dlq.transform -o beginning -e -q 2>/dev/null)
case "$dl" in
*'"error":"page is not JSON'*'"page":"this page is not JSON {"'*) ok "dead letter has the reason and the page" ;;
*) not_ok "dead letter has the reason and the page: $dl" ;;
esac

# A fresh group starts every partition at a concrete offset, its low
# watermark where it holds messages (not a logical "beginning" that
# librdkafka would look up partition by partition after the assignment)
nonempty=0
for p in 0 1; do
	hi=$(timeout 10 kcat -Q -b "$SLUICE_BROKERS" -t "raw.kev:$p:-1" 2>/dev/null | sed -n 's/.* offset \([0-9]*\)$/\1/p')
	[ "${hi:-0}" -gt 0 ] && nonempty=$((nonempty + 1))
done
check_eq "a fresh group starts at the beginning of both partitions, concretely" \
	"$(grep -o 'event=start_offsets .*' "$SL_LOGDIR/transform1.log" | head -1)" \
	"event=start_offsets partitions=2 committed=0 from_beginning=2 at_low_watermark=$nonempty unread=0 err=NO_ERROR"

stop_pid "$W1"
check_eq "SIGTERM stops the worker cleanly" "$?" "0"
grep -q 'event=map_stats when=exit map=kev table=known_exploited_vulnerability records_in=1404 rows_out=1404 ignored=0 skipped=0 rejected=0' \
	"$SL_LOGDIR/transform1.log" && ok "exit counters logged" ||
	not_ok "exit counters logged: $(grep map_stats "$SL_LOGDIR/transform1.log" | tail -3)"

# Restart in the same group: committed offsets mean only the new page is
# mapped, so the topic grows by exactly 2.
bg transform2 "$SLUICE_BIN" transform "$MAP" --group kev-test --stats-interval 1 \
	--kafka session.timeout.ms=6000 --kafka heartbeat.interval.ms=500
W2=$LAST_PID
wait_for 20 grep -q 'event=start_offsets' "$SL_LOGDIR/transform2.log"
# every partition has a committed offset by now: one that held messages
# at its last mapped message, an empty one at the beginning the first
# worker committed as it started reading it (so that back-pressure and
# `sluice status` see a fresh group)
check_eq "a restarted worker starts from its group's committed offsets" \
	"$(grep -o 'event=start_offsets .*' "$SL_LOGDIR/transform2.log" | head -1)" \
	"event=start_offsets partitions=2 committed=2 from_beginning=0 at_low_watermark=0 unread=0 err=NO_ERROR"
timeout 30 kcat -P -b "$SLUICE_BROKERS" -t raw.kev -H source=kev -H run=test-run-2 <"$D/later" 2>>"$D/kcat.log"
wait_count mapped.known_exploited_vulnerability 1406 30
sleep 2
check_eq "restarted worker emits only the new page's rows" \
	"$(count mapped.known_exploited_vulnerability)" "1406"
check_eq "no second dead letter after restart" "$(count dlq.transform)" "1"
stop_pid "$W2"
check_eq "second worker stops cleanly" "$?" "0"
sl_done
