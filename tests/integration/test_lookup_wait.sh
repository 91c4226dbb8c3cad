#!/usr/bin/env bash
# test_lookup_wait: a lookup worker that waits for its quota to reset stays
# in its consumer group. The quota here is 5 requests a minute for 8
# addresses, and the worker's max.poll.interval.ms is 4 s: the worker
# answers 5, then waits for the next minute with its partitions paused,
# polling the consumer all along. Checked: no revocation and no
# max.poll.interval.ms expiry in its log while it waits longer than that;
# SIGTERM during the wait stops it within 5 s, exit 0; a second worker of
# the group waits for the reset too, then answers the other 3: every
# address asked exactly once at the fixture and answered once on
# raw.abuseipdb.
source "$SLUICE_ROOT/tests/lib.sh"
trap sl_cleanup EXIT

command -v kcat >/dev/null || { not_ok "kcat is installed"; sl_done; exit; }
short_sessions
broker_start --topic mapped.finding:2 --topic raw.abuseipdb:2 --topic dlq.lookup:1 ||
	{ not_ok "broker starts"; sl_done; exit; }
fixture_start || { not_ok "fixture starts"; sl_done; exit; }
new_db lookup_wait || exit 1
D=$(sl_tmpdir)
export ABUSEIPDB_API_KEY=test-key

for i in 1 2 3 4 5 6 7 8; do
	printf 'f%d\t{"v":1,"table":"finding","op":"upsert","key":{"id":"f%d"},"row":{"id":"f%d","ipv4":"198.51.100.%d"}}\n' \
		"$i" "$i" "$i" "$i"
done >"$D/findings"
DEF=$D/abuseipdb.json
python3 - "$SLUICE_ROOT/lookups/defs/abuseipdb.json" "$DEF" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
d["rate_limits"] = [{"requests": 50, "per_seconds": 1, "burst": 5}]
d["quota"] = {"requests": 5, "period": "minute"}
json.dump(d, open(sys.argv[2], "w"))
PY
fx() { curl -s "$SLUICE_FIXTURE_URL/_fixture/lookups"; }
fxv() { fx | python3 -c "import json,sys; d=json.load(sys.stdin); print(d['$1']['$2'])"; }
count() {
	timeout 10 kcat -C -b "$SLUICE_BROKERS" -t "$1" -o beginning -e -q -f '%o\n' 2>/dev/null | wc -l
}
published() { q "SELECT count(*) FROM sluice.lookup_cache WHERE lookup = 'abuseipdb' AND published"; }
answered() { q "SELECT count(*) FROM sluice.lookup_cache WHERE lookup = 'abuseipdb' AND outcome <> 'pending'"; }
# the group-leaving signs in a worker's log
left_group() { grep -E 'event=revoked|MAXPOLL|leaving group|max(imum)? poll interval' "$1"; }
worker() {
	bg "$1" "$SLUICE_BIN" lookup "$DEF" --base-url "$SLUICE_FIXTURE_URL/abuseipdb" \
		--schemas "$SLUICE_ROOT/schemas" --group waiters --kafka max.poll.interval.ms=4000
}

# the first part must end within the minute it starts in: begin early in one
s=$(date -u +%-S)
[ "$s" -gt 15 ] && sleep $((61 - s))
timeout 30 kcat -P -b "$SLUICE_BROKERS" -t mapped.finding -K '\t' <"$D/findings"
worker w1
W1=$LAST_PID
wait_out 30 = 5 answered
check "the quota spent, the worker waits" wait_for 10 grep -q event=quota_spent "$SL_LOGDIR/w1.log"
sleep 9 # more than twice max.poll.interval.ms
check_eq "5 answered before the reset" "$(answered)" "5"
check_eq "the worker did not leave the group while it waited" "$(left_group "$SL_LOGDIR/w1.log")" ""
t0=$(date +%s%N)
stop_pid "$W1"
rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
check_eq "SIGTERM during the wait stops it cleanly" "$rc" "0"
check "within 5 s (took $ms ms)" test "$ms" -lt 5000
check_eq "and before the reset nothing more was asked" "$(fxv abuseipdb requests)" "5"
check_eq "the 5 answers were delivered and marked so before it stopped" "$(published)" "5"

# a second worker takes the rest: it waits for the reset, then answers
worker w2
W2=$LAST_PID
wait_out 90 = 8 published
sleep 2 # anything more would have come by now
check_eq "every address was asked" "$(fxv abuseipdb requests)" "8"
check_eq "none twice" "$(fxv abuseipdb max_per_observable)" "1"
check_eq "8 answers on raw.abuseipdb, one per address" "$(count raw.abuseipdb)" "8"
check_eq "the second worker did not leave the group either" "$(left_group "$SL_LOGDIR/w2.log")" ""
check "it had waited for the quota" grep -q event=quota_spent "$SL_LOGDIR/w2.log"
stop_pid "$W2"
check_eq "it stops cleanly" "$?" "0"
sl_done
