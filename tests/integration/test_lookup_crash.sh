#!/usr/bin/env bash
# test_lookup_crash: the lookup guarantees under two workers, a kill -9 and
# a restart. 40 addresses, each in 3 findings, go through two `sluice
# lookup` workers of one group against the fixture's AbuseIPDB route; one
# worker is killed with SIGKILL while asking, another is stopped and
# restarted. Checked at the fixture: no address is asked twice within its
# TTL, never more requests than the quota; and every address ends looked
# up (an answer on raw.abuseipdb) or in dlq.lookup. Then a lookup whose
# quota is smaller than its backlog: it spends the quota exactly, without
# a 429, and waits with the rest left in the topic.
source "$SLUICE_ROOT/tests/lib.sh"
trap sl_cleanup EXIT

command -v kcat >/dev/null || { not_ok "kcat is installed"; sl_done; exit; }
short_sessions
broker_start --topic mapped.finding:4 --topic raw.abuseipdb:2 \
	--topic raw.abuseipdb_small:2 --topic dlq.lookup:1 ||
	{ not_ok "broker starts"; sl_done; exit; }
QUOTA=45
fixture_start --abuseipdb-quota "$QUOTA" || { not_ok "fixture starts"; sl_done; exit; }
new_db lookup_crash || exit 1
D=$(sl_tmpdir)
export ABUSEIPDB_API_KEY=test-key

python3 - "$D" <<'PY'
import json, random, sys
d = sys.argv[1]
random.seed(26)
envs = []
for rep in range(3):
    for i in range(40):
        ip = "192.0.2.%d" % (i + 1)
        envs.append(("f%d-%d" % (i, rep), ip))
random.shuffle(envs)
with open(d + "/findings", "w") as f:
    for key, ip in envs:
        env = {"v": 1, "table": "finding", "op": "upsert", "key": {"id": key},
               "row": {"id": key, "ipv4": ip}}
        f.write("%s\t%s\n" % (key, json.dumps(env)))
PY
# the bundled definition, paced at 5 requests a second, with the
# fixture's quota and short claims (a dead worker's claim runs out in 3 s)
python3 - "$SLUICE_ROOT/lookups/defs/abuseipdb.json" "$D/def.json" "$QUOTA" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
d["rate_limits"] = [{"requests": 5, "per_seconds": 1, "burst": 1}]
d["quota"] = {"requests": int(sys.argv[3]), "period": "day"}
d["claim_seconds"] = 3
json.dump(d, open(sys.argv[2], "w"))
PY
timeout 30 kcat -P -b "$SLUICE_BROKERS" -t mapped.finding -K '\t' <"$D/findings"
fxv() {
	curl -s "$SLUICE_FIXTURE_URL/_fixture/lookups" |
		python3 -c "import json,sys; print(json.load(sys.stdin)['abuseipdb']['$1'])"
}
run() { # run NAME: one worker of the group, small batches
	bg "$1" "$SLUICE_BIN" lookup "$D/def.json" --base-url "$SLUICE_FIXTURE_URL/abuseipdb" \
		--schemas "$SLUICE_ROOT/schemas" --batch 5
}
T0=$SECONDS
run w1; W1=$LAST_PID
run w2; W2=$LAST_PID
wait_out 30 -ge 8 fxv requests
kill -9 "$W1"
wait "$W1" 2>/dev/null
echo "# killed w1 with SIGKILL after $(fxv requests) requests"
run w1b; W1B=$LAST_PID
wait_out 30 -ge 20 fxv requests
stop_pid "$W2"
echo "# stopped w2 after $(fxv requests) requests"
run w2b; W2B=$LAST_PID
final() {
	q "SELECT count(*) FROM sluice.lookup_cache WHERE lookup = 'abuseipdb'
	   AND outcome IN ('found', 'error') AND published"
}
wait_out 45 = 40 final
echo "# all 40 settled after $((SECONDS - T0)) s"
sleep 1
check_eq "no address was asked twice (max per observable at the fixture)" \
	"$(fxv max_per_observable)" "1"
check "never more requests than the quota ($QUOTA)" test "$(fxv requests)" -le "$QUOTA"
check_eq "no request was refused with 429" "$(fxv throttled)" "0"
check_eq "the quota row counts every request the fixture saw" \
	"$(q "SELECT used FROM sluice.lookup_quota WHERE lookup = 'abuseipdb'")" "$(fxv requests)"
timeout 10 kcat -C -b "$SLUICE_BROKERS" -t raw.abuseipdb -o beginning -e -q \
	-f '%h\n' 2>/dev/null | tr ',' '\n' | sed -n 's/^observable=//p' | sort -u >"$D/answered"
timeout 10 kcat -C -b "$SLUICE_BROKERS" -t dlq.lookup -o beginning -e -q \
	-f '%s\n' 2>/dev/null | python3 -c '
import json, sys
for line in sys.stdin:
    print(json.loads(line)["observable"])' | sort -u >"$D/dead"
seq 1 40 | sed 's/^/192.0.2./' | sort >"$D/all"
check_eq "every address ends answered on raw.abuseipdb or in dlq.lookup" \
	"$(sort -u "$D/answered" "$D/dead" | comm -3 - "$D/all" | wc -l)" "0"
check_eq "answered ones are the cache's found ones" "$(wc -l <"$D/answered")" \
	"$(q "SELECT count(*) FROM sluice.lookup_cache WHERE lookup = 'abuseipdb' AND outcome = 'found'")"
check_eq "dead-lettered ones are the cache's errors" "$(wc -l <"$D/dead")" \
	"$(q "SELECT count(*) FROM sluice.lookup_cache WHERE lookup = 'abuseipdb' AND outcome = 'error'")"
echo "# found $(wc -l <"$D/answered"), dead-lettered $(wc -l <"$D/dead") (asked by the killed worker, answer lost)"
stop_pid "$W1B"
stop_pid "$W2B"

# a quota smaller than the backlog: the 40 addresses again under another
# lookup name, quota 12 at the worker and at the fixture
curl -s -X POST "$SLUICE_FIXTURE_URL/_fixture/reset" >/dev/null
python3 - "$D/def.json" "$D/small.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
d["name"] = "abuseipdb_small"
d["quota"] = {"requests": 12, "period": "day"}
json.dump(d, open(sys.argv[2], "w"))
PY
HP=$((20000 + RANDOM % 20000))
bg small "$SLUICE_BIN" lookup "$D/small.json" --base-url "$SLUICE_FIXTURE_URL/abuseipdb" \
	--schemas "$SLUICE_ROOT/schemas" --batch 5 --http-port "$HP"
S=$LAST_PID
wait_for 30 grep -q event=quota_spent "$SL_LOGDIR/small.log"
check "the worker says the quota is spent and waits" grep -q 'event=quota_spent lookup=abuseipdb_small' "$SL_LOGDIR/small.log"
sleep 1
check_eq "it asked exactly the quota" "$(fxv requests)" "12"
check_eq "without a 429" "$(fxv throttled)" "0"
check_eq "quota left, as the metric says" \
	"$(curl -s "http://127.0.0.1:$HP/metrics" | awk '/^sluice_lookup_quota_remaining\{lookup="abuseipdb_small"\}/ {print $2}')" "0"
check_eq "nothing was dead-lettered for want of quota" \
	"$(q "SELECT count(*) FROM sluice.lookup_cache WHERE lookup = 'abuseipdb_small' AND outcome = 'error'")" "0"
check "it is still running, waiting for the next period" kill -0 "$S"
stop_pid "$S"
check_eq "a waiting worker stops cleanly on SIGTERM" "$?" "0"
sl_done
