#!/usr/bin/env bash
# The replay scenario, on scaled-out workers: NVD flows through two
# transformers and two loaders; the map changes (severity normalised to
# lower case); the transformers stop (SIGTERM, clean and quick), their group
# is replayed to earliest, they start on the new map; the table converges to
# the new mapping with the same row count, no duplicates, and run reports
# that count exactly the changed rows as updated.
source "$SLUICE_ROOT/tests/lib.sh"
trap sl_cleanup EXIT
short_sessions
D=$(sl_tmpdir)
SL_LOGDIR=$D
new_db scale_replay || { not_ok "database"; exit 1; }
broker_start --topic raw.nvd:4 --topic mapped.vulnerability:4 \
	--topic mapped.vulnerability_reference:4 --topic mapped.vulnerability_weakness:4 \
	--topic mapped.vulnerability_cpe_match:4 || { not_ok "broker"; exit 1; }
fixture_start --nvd-rate 1000/1 --scale 3 || { not_ok "fixture"; exit 1; }
NVD=$SLUICE_FIXTURE_URL/nvd
want=$(curl -sf "$NVD/rest/json/cves/2.0?resultsPerPage=1" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["totalResults"])')
check_eq "the fixture serves 3 x 476 NVD records" "$want" 1428
with_sev=$(curl -sf "$NVD/rest/json/cves/2.0?resultsPerPage=2000" | /usr/bin/python3 -c '
import json, sys
n = 0
for v in json.load(sys.stdin)["vulnerabilities"]:
    m = v["cve"].get("metrics", {})
    s = None
    for k in ("cvssMetricV40", "cvssMetricV31", "cvssMetricV30"):
        if m.get(k):
            s = m[k][0]["cvssData"].get("baseSeverity"); break
    if s is None and m.get("cvssMetricV2"):
        s = m["cvssMetricV2"][0].get("baseSeverity")
    n += s is not None
print(n)')

loaded() { q "SELECT coalesce(sum(messages), 0) FROM sluice.load_batches WHERE table_name = 'vulnerability'" 2>/dev/null || echo 0; }
at_least_loaded() { [ "$(loaded)" -ge "$1" ] 2>/dev/null; }
wait_loaded() { wait_for "$2" at_least_loaded "$1"; }
# settled: sluice status says the transformers have committed all of
# raw.nvd and the loaders all of the four mapped topics (lag 0 on each).
# A message count alone does not say it: a transformer that joins its
# group while the other maps may repeat the batch in hand, and repeats
# count as messages before every CVE's own row has landed.
settled() {
	"$SLUICE_BIN" status --json >"$D/status.json" 2>/dev/null || return 1
	/usr/bin/python3 - "$D/status.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
t = [x for x in s["topics"]
     if x["topic"] == "raw.nvd" or x["topic"].startswith("mapped.vulnerability")]
sys.exit(0 if len(t) == 5 and all(x.get("lag") == 0 for x in t) else 1)
PY
}
# when the workers do not settle: what sluice status and their logs say
say_unsettled() {
	echo "# sluice status:"
	"$SLUICE_BIN" status 2>&1 | sed 's/^/#   /'
	grep -hE 'level=(warn|error)' "$D"/t*.log "$D"/load*.log 2>/dev/null | tail -20 | sed 's/^/#   /'
}

MAP=$SLUICE_ROOT/transformers/maps/nvd_cve.json
L=()
for i in 1 2; do bg "load$i" "$SLUICE_BIN" load --schemas "$SLUICE_ROOT/schemas" --linger-ms 200; L+=("$LAST_PID"); done
T=()
for i in 1 2; do bg "t$i" "$SLUICE_BIN" transform "$MAP"; T+=("$LAST_PID"); done
# the bundled definition with pages of 100 (15 pages, spread over partitions)
# and a client rate fit for a local fixture (NVD's 5 requests in 30 s made
# this sync take a minute)
sed 's/"size": 2000/"size": 100/; s/"requests": 5, "per_seconds": 30/"requests": 1000, "per_seconds": 1/' \
	"$SLUICE_ROOT/producers/sources/nvd.json" >"$D/nvd.json"
"$SLUICE_BIN" fetch "$D/nvd.json" --once --base-url "$NVD" >"$D/fetch.out" 2>"$D/fetch.log"
check_eq "fetch exits 0" "$?" 0
wait_loaded "$want" 90
check "first map: transformers and loaders caught up (sluice status: no lag)" wait_for 90 settled || say_unsettled
check_eq "first map: every CVE once" "$(q 'SELECT count(*), count(DISTINCT cve_id) FROM vulnerability')" "$want|$want"
check_eq "first map: severities upper case" "$(q "SELECT count(*) FROM vulnerability WHERE cvss_severity IN ('LOW','MEDIUM','HIGH','CRITICAL','NONE')")" "$with_sev"
refs=$(q 'SELECT count(*) FROM vulnerability_reference')

# stop the transformers: SIGTERM, each gone within 10 s with exit 0
stopped=()
for p in "${T[@]}"; do
	t0=$(date +%s%N)
	kill -TERM "$p"
	wait "$p"
	rc=$?
	ms=$(( ($(date +%s%N) - t0) / 1000000 ))
	check_eq "transformer stops on SIGTERM with exit 0" "$rc" 0
	check "each transformer mapped part of the records (consumer group)" \
		grep -q 'table=vulnerability records_in=[1-9]' "$D/t$(( ${#stopped[@]} + 1 )).log"
	stopped+=("$p")
	[ "$ms" -lt 10000 ] && ok "transformer stopped in $ms ms" || not_ok "transformer took $ms ms to stop"
done

# the new map: severity normalised to lower case
sed 's/"NONE": "NONE", "LOW": "LOW", "MEDIUM": "MEDIUM", "HIGH": "HIGH", "CRITICAL": "CRITICAL"/"NONE": "none", "LOW": "low", "MEDIUM": "medium", "HIGH": "high", "CRITICAL": "critical"/' \
	"$MAP" >"$D/nvd_cve.json"
check "the new map differs" bash -c "! cmp -s '$MAP' '$D/nvd_cve.json'"
check "the new map lints" "$SLUICE_BIN" lint "$D/nvd_cve.json"

"$SLUICE_BIN" replay --group sluice-transform --topic raw.nvd --to earliest --dry-run >"$D/dry" 2>"$D/dry.err"
check_eq "replay --dry-run exits 0" "$?" 0
check_eq "dry run: every partition moves back to 0" "$(grep -c -- '-> 0$' "$D/dry")" 4
"$SLUICE_BIN" replay --group sluice-transform --topic raw.nvd --to earliest >"$D/replay" 2>"$D/replay.err"
check_eq "replay exits 0" "$?" 0
before=$(loaded)
for i in 3 4; do bg "t$i" "$SLUICE_BIN" transform "$D/nvd_cve.json"; done
wait_loaded $((before + want)) 90
check "after replay: transformers and loaders caught up (sluice status: no lag)" wait_for 90 settled || say_unsettled
# every CVE again; a transformer joining its group while the other maps
# may repeat the batch in hand (the embedded broker refuses commits during
# a rebalance, docs/embedded-broker.md): repeats land as unchanged rows
# a repeat per rebalance at most: under load (a sanitized CI run at load
# 13 saw 2.28x) sessions time out and rebalance more often; what the bound
# catches is a replay that never ends, which would pass 4x in the 90 s
again=$(($(loaded) - before))
echo "# after replay: $again vulnerability messages for $want CVEs, $(cat "$SL_LOGDIR"/t3.log "$SL_LOGDIR"/t4.log 2>/dev/null | grep -c 'event=assigned') assignments"
check "after replay: the loaders saw every CVE again (got $again, want $want..$((4 * want)))" \
	test "$again" -ge "$want" -a "$again" -le $((4 * want))
check_eq "after replay: same row count, no duplicates" "$(q 'SELECT count(*), count(DISTINCT cve_id) FROM vulnerability')" "$want|$want"
check_eq "after replay: no upper-case severity left" "$(q "SELECT count(*) FROM vulnerability WHERE cvss_severity <> lower(cvss_severity)")" 0
check_eq "after replay: severities lower case" "$(q "SELECT count(*) FROM vulnerability WHERE cvss_severity IN ('low','medium','high','critical','none')")" "$with_sev"
check_eq "after replay: the report counts exactly the changed rows as updated" \
	"$(q "SELECT sum(updated) FROM sluice.load_batches WHERE table_name = 'vulnerability'")" "$with_sev"
check_eq "after replay: child tables unchanged in size" "$(q 'SELECT count(*) FROM vulnerability_reference')" "$refs"
check "replay refuses while transformers run" bash -c "! '$SLUICE_BIN' replay --group sluice-transform --topic raw.nvd --to earliest --timeout-ms 20000 >/dev/null 2>&1"

# Replaying a loader group moves the offsets the loaders really seek from:
# the ones in sluice.offsets.
for p in "${L[@]}"; do stop_pid "$p"; done
msgs=$(kcat -b "$SLUICE_BROKERS" -C -t mapped.vulnerability -e -q -f '.\n' 2>/dev/null | wc -l)
check_eq "loaders stopped at the end of mapped.vulnerability" \
	"$(q "SELECT sum(next_offset) FROM sluice.offsets WHERE consumer_group = 'sluice-load' AND topic = 'mapped.vulnerability'")" "$msgs"
"$SLUICE_BIN" replay --group sluice-load --topic mapped.vulnerability --to earliest >"$D/lreplay" 2>"$D/lreplay.err"
check_eq "replay of the loader group exits 0" "$?" 0
check_eq "replay moved every partition's sluice.offsets row" "$(grep -c 'sluice.offsets moved' "$D/lreplay")" 4
check_eq "sluice.offsets are back at 0" \
	"$(q "SELECT sum(next_offset) FROM sluice.offsets WHERE consumer_group = 'sluice-load' AND topic = 'mapped.vulnerability'")" 0
before=$(loaded)
written=$(q "SELECT sum(inserted) || ' ' || sum(updated) FROM sluice.load_batches WHERE table_name = 'vulnerability'")
bg load3 "$SLUICE_BIN" load --schemas "$SLUICE_ROOT/schemas" --linger-ms 200
wait_loaded $((before + msgs)) 90
check_eq "a loader re-reads the whole topic after the replay" "$(loaded)" $((before + msgs))
# The topic holds both maps' rows in order: a re-read applies that history
# again (how many rows pass through the old values depends on where batches
# split), and ends where it was. Nothing is inserted anew.
check_eq "no row inserted anew" \
	"$(q "SELECT sum(inserted) FROM sluice.load_batches WHERE table_name = 'vulnerability'")" "${written%% *}"
check_eq "the re-read ends at the newest map's values" \
	"$(q "SELECT count(*) FROM vulnerability WHERE cvss_severity IN ('low','medium','high','critical','none')")" "$with_sev"
check_eq "still one row per CVE" "$(q 'SELECT count(*), count(DISTINCT cve_id) FROM vulnerability')" "$want|$want"
sl_done
