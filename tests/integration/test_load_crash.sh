#!/usr/bin/env bash
# test_load_crash: kill -9 of the loader at random moments, several times,
# while it loads a few thousand rows; after a restart the table and the run
# report are exact: every message counted in exactly one committed batch,
# inserted sums to the row count, the final values are the last ones.
source "$SLUICE_ROOT/tests/lib.sh"
source "$SLUICE_ROOT/loaders/testdata/load_lib.sh"
trap sl_cleanup EXIT
# each restart after a kill -9 waits out the dead member's session
short_sessions

N=6000 KEYS=4000
broker_start --topic mapped.t_load:4 --topic dlq.load:1 || exit 1
new_db load_crash || exit 1
D=$(sl_tmpdir)
load_schemas "$D/schemas" "$T_LOAD_SQL"
gen_updates "$D/in.tsv" "$N" "$KEYS"
split -n l/5 -d "$D/in.tsv" "$D/wave."

# 0 until the first loader has created sluice.load_batches (an empty base
# made round 1 wait out its 30 s and never count as a mid-load kill)
sum_messages() { q "SELECT coalesce(sum(messages), 0) FROM sluice.load_batches" 2>/dev/null || echo 0; }
past() { [ "$(sum_messages)" -gt "$1" ]; }
midkills=0 produced=0 round=0
for wave in "$D"/wave.*; do
	round=$((round + 1))
	produce mapped.t_load "$wave"
	produced=$((produced + $(wc -l <"$wave")))
	base=$(sum_messages)
	# tiny batches: many transactions to land in the middle of
	bg "load$round" "$SLUICE_BIN" load --schemas "$D/schemas" \
		--batch-rows 5 --linger-ms 20
	pid=$LAST_PID
	# once it commits, kill it at a random moment (mid-batch, mid-commit:
	# whatever it is doing)
	wait_for 30 past "$base"
	sleep "0.$((RANDOM % 3))$((RANDOM % 10))"
	kill -9 "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	now=$(sum_messages)
	echo "# round $round: $now of $produced messages committed at the kill"
	[ "$now" -gt "$base" ] && [ "$now" -lt "$produced" ] && midkills=$((midkills + 1))
done
check "killed the loader mid-load at least 3 times (got $midkills)" test "$midkills" -ge 3

bg final "$SLUICE_BIN" load --schemas "$D/schemas" --batch-rows 500 --linger-ms 100
check "all messages committed after restart" wait_q 90 "SELECT sum(messages) FROM sluice.load_batches" "$N"
check_eq "row count is the number of keys" "$(q "SELECT count(*) FROM t_load")" "$KEYS"
check_eq "inserted sums to the row count" "$(q "SELECT sum(inserted) FROM sluice.load_batches")" "$KEYS"
check_eq "every message took effect once (inserted+updated+superseded)" \
	"$(q "SELECT sum(inserted + updated + superseded) || '/' || sum(unchanged) || '/' || sum(rejected) FROM sluice.load_batches")" "$N/0/0"
check_eq "final values are the last ones" "$(actual_final)" "$(expected_final "$N" "$KEYS")"
check_eq "offsets end at the watermarks" "$(q "SELECT sum(next_offset) FROM sluice.offsets")" "$N"
check_eq "no overlapping batch ranges" "$(q "
	SELECT count(*) FROM (SELECT (o->>'partition')::int p, (o->>'first_offset')::bigint f, (o->>'last_offset')::bigint l
	FROM sluice.load_batches, jsonb_array_elements(offsets) o) a
	JOIN (SELECT (o->>'partition')::int p, (o->>'first_offset')::bigint f, (o->>'last_offset')::bigint l, id
	FROM sluice.load_batches, jsonb_array_elements(offsets) o) b
	ON a.p = b.p AND a.f <= b.l AND b.f <= a.l AND (a.f, a.l) <> (b.f, b.l)")" "0"
stop_pid "$LAST_PID"
sl_done
