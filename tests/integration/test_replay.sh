#!/usr/bin/env bash
# sluice replay: dry run, earliest/latest/offset per partition, committed
# offsets really move (a consumer of the group re-reads from there), time
# lookups refused with a clear message on the embedded broker, and refusal
# while the group has live members. An unknown group (nothing committed on
# the topic, no loader rows) is an error unless --create; offsets print as
# numbers or none. The embedded broker has no Admin API for groups: replay
# says so, and only the move itself joins the group there.
source "$SLUICE_ROOT/tests/lib.sh"
trap sl_cleanup EXIT
# every replay joins its group after the last member's session (less 1 s);
# the kcat members below take the same session, as the broker requires
short_sessions
d=$(sl_tmpdir)
broker_start --topic t1:3 || { not_ok "broker"; exit 1; }
# 60 keyed messages spread over 3 partitions
for i in $(seq 1 60); do echo "k$i:v$i"; done | kcat -b "$SLUICE_BROKERS" -P -t t1 -K: 2>/dev/null
total_hi() { for p in 0 1 2; do kcat -b "$SLUICE_BROKERS" -Q -t "t1:$p:-1" 2>/dev/null; done; }

"$SLUICE_BIN" replay --group g1 --topic t1 --to earliest --dry-run >"$d/out" 2>"$d/err"
check_eq "an unknown group is an error (exit 1)" "$?" 1
check "an unknown group: the message says so and names --create" \
	grep -q "group g1 has committed no offset on t1.*unknown group.*--create" "$d/err"
check "the embedded broker: replay says it has no Admin API for groups" \
	grep -q "the embedded broker has no Admin API for consumer groups" "$d/err"
check_eq "an unknown group: nothing printed on stdout" "$(wc -c <"$d/out")" 0
"$SLUICE_BIN" replay --group g1 --topic t1 --to earliest --dry-run --create >"$d/out" 2>"$d/err"
check_eq "dry run with --create exits 0" "$?" 0
check_eq "dry run prints one line per partition, none committed" "$(grep -c '^t1\[[0-2]\] none -> 0$' "$d/out")" 3
check "dry run says nothing changed" grep -q "dry run: nothing changed" "$d/out"
check "no librdkafka -1001 in the output" bash -c "! grep -q -- -1001 '$d/out'"

"$SLUICE_BIN" replay --group g1 --topic t1 --to latest --create >"$d/out" 2>"$d/err"
check_eq "to latest exits 0" "$?" 0
check_eq "to latest: each partition moved from none to a number" "$(grep -c '^t1\[[0-2]\] moved none -> [0-9][0-9]*$' "$d/out")" 3
# a member of g1 now reads nothing; move partition 1 back to 0 and it reads
# exactly that partition's messages
"$SLUICE_BIN" replay --group g1 --topic t1 --to 0 --partition 1 >"$d/out" 2>"$d/err"
check_eq "to offset 0 on partition 1 exits 0" "$?" 0
check_eq "only partition 1 moved" "$(grep -c '^t1\[1\] moved [0-9]* -> 0$' "$d/out") $(wc -l <"$d/out")" "1 1"
"$SLUICE_BIN" replay --group g1 --topic t1 --to earliest --dry-run >"$d/out" 2>"$d/err"
check_eq "a group with committed offsets is known: dry run without --create exits 0" "$?" 0
p1=$(kcat -b "$SLUICE_BROKERS" -C -t t1 -p 1 -e -q 2>/dev/null | wc -l)
got=$(timeout 30 kcat -b "$SLUICE_BROKERS" -G g1 -X session.timeout.ms="$SLUICE_KAFKA_SESSION_TIMEOUT_MS" \
	-X heartbeat.interval.ms="$SLUICE_KAFKA_HEARTBEAT_INTERVAL_MS" -e -q t1 2>/dev/null | wc -l)
check_eq "the group re-reads exactly partition 1 ($p1 messages)" "$got" "$p1"
[ "$p1" -gt 0 ] && ok "partition 1 holds messages" || not_ok "partition 1 holds messages"

"$SLUICE_BIN" replay --group g1 --topic t1 --to 2024-01-01T00:00:00Z >"$d/out" 2>"$d/err"
check_eq "replay by time on the embedded broker fails" "$?" 1
check "and says the broker cannot look up times" grep -q "could not look up offsets by time" "$d/err"

"$SLUICE_BIN" replay --group g1 --topic t1 --to yesterday >"$d/out" 2>"$d/err"
check_eq "a bad --to: exit 2" "$?" 2
check_eq "a bad --to: one line" "$(wc -l <"$d/err")" 1
"$SLUICE_BIN" replay --group g1 --topic nosuch --to earliest --timeout-ms 5000 >"$d/out" 2>"$d/err"
check_eq "unknown topic: exit 1" "$?" 1

# a live member holds part of the group: replay refuses
kcat -b "$SLUICE_BROKERS" -G g2 -X session.timeout.ms="$SLUICE_KAFKA_SESSION_TIMEOUT_MS" \
	-X heartbeat.interval.ms="$SLUICE_KAFKA_HEARTBEAT_INTERVAL_MS" -q t1 >/dev/null 2>&1 &
SL_PIDS+=($!)
sleep 5
"$SLUICE_BIN" replay --group g2 --topic t1 --to earliest --create >"$d/out" 2>"$d/err"
check_eq "live members: refused with exit 2" "$?" 2
check "live members: the message says so" grep -q "other live members" "$d/err"
sl_done
