#!/usr/bin/env bash
# test_lookup_rebalance: a partition revoked while a worker waits for
# tokens, and the worker resumes before its claims run out. One worker
# takes a batch of 8 addresses from both partitions of its input and asks
# them one every 2 s (rate_limits); a second worker of the group joins
# during the wait and gets a partition whose messages the first still
# holds and asks about (their claims are the first's for 30 s). Checked:
# the rebalance happened as meant; every address asked once at the
# fixture; every one answered and marked published; and exactly one
# answer per address on raw.abuseipdb: the second worker does not publish
# again an answer the first recorded and is delivering.
source "$SLUICE_ROOT/tests/lib.sh"
trap sl_cleanup EXIT

command -v kcat >/dev/null || { not_ok "kcat is installed"; sl_done; exit; }
short_sessions
broker_start --topic mapped.finding:2 --topic raw.abuseipdb:1 --topic dlq.lookup:1 ||
	{ not_ok "broker starts"; sl_done; exit; }
fixture_start || { not_ok "fixture starts"; sl_done; exit; }
new_db lookup_rebalance || exit 1
D=$(sl_tmpdir)
export ABUSEIPDB_API_KEY=test-key

for i in 1 2 3 4 5 6 7 8; do
	printf 'r%d\t{"v":1,"table":"finding","op":"upsert","key":{"id":"r%d"},"row":{"id":"r%d","ipv4":"203.0.113.%d"}}\n' \
		"$i" "$i" "$i" "$i"
done >"$D/findings"
DEF=$D/abuseipdb.json
python3 - "$SLUICE_ROOT/lookups/defs/abuseipdb.json" "$DEF" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
d["rate_limits"] = [{"requests": 1, "per_seconds": 2, "burst": 1}]
d.pop("quota", None)
d["claim_seconds"] = 30
json.dump(d, open(sys.argv[2], "w"))
PY
fxv() {
	curl -s "$SLUICE_FIXTURE_URL/_fixture/lookups" |
		python3 -c "import json,sys; print(json.load(sys.stdin)['abuseipdb']['$1'])"
}
count() {
	timeout 10 kcat -C -b "$SLUICE_BROKERS" -t "$1" -o beginning -e -q -f '%o\n' 2>/dev/null | wc -l
}
published() { q "SELECT count(*) FROM sluice.lookup_cache WHERE lookup = 'abuseipdb' AND published"; }
worker() {
	bg "$1" "$SLUICE_BIN" lookup "$DEF" --base-url "$SLUICE_FIXTURE_URL/abuseipdb" \
		--schemas "$SLUICE_ROOT/schemas" --group rebalancers
}

timeout 30 kcat -P -b "$SLUICE_BROKERS" -t mapped.finding -K '\t' <"$D/findings"
parts=$(timeout 10 kcat -C -b "$SLUICE_BROKERS" -t mapped.finding -o beginning -e -q -f '%p\n' | sort -u | wc -l)
check_eq "the addresses are in both partitions" "$parts" "2"
worker w1
W1=$LAST_PID
wait_out 30 -ge 1 fxv requests
# the first worker holds all 8 and waits 2 s a token: a second one joins
worker w2
W2=$LAST_PID
check "the first worker's partitions were revoked during its batch" \
	wait_for 30 grep -q event=revoked "$SL_LOGDIR/w1.log"
check "the second worker got a partition" \
	wait_for 30 grep -Eq 'event=assigned partitions=[1-9]' "$SL_LOGDIR/w2.log"
check "the first was still asking then (fewer than 8 asked)" test "$(fxv requests)" -lt 8
wait_out 60 = 8 published
sleep 3 # a second answer would be on its way by now
check_eq "every address was asked" "$(fxv requests)" "8"
check_eq "none twice" "$(fxv max_per_observable)" "1"
check_eq "one answer per address on raw.abuseipdb" "$(count raw.abuseipdb)" "8"
check_eq "no dead letter" "$(count dlq.lookup)" "0"
stop_pid "$W1"
check_eq "the first worker stops cleanly" "$?" "0"
stop_pid "$W2"
check_eq "the second worker stops cleanly" "$?" "0"
sl_done
