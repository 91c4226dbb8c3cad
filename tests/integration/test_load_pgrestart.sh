#!/usr/bin/env bash
# test_load_pgrestart: PostgreSQL restarted (immediate mode: a crash) while
# the loader writes. The loader rolls back, reconnects with backoff,
# rewinds to sluice.offsets and goes on: nothing lost, nothing counted
# twice. Uses a private cluster (the runner's is shared with other tests).
source "$SLUICE_ROOT/tests/lib.sh"
source "$SLUICE_ROOT/loaders/testdata/load_lib.sh"
trap sl_cleanup EXIT

pg_start || { not_ok "private PostgreSQL started"; exit 1; }
N=6000 KEYS=3000
broker_start --topic mapped.t_load:4 --topic dlq.load:1 || exit 1
D=$(sl_tmpdir)
load_schemas "$D/schemas" "$T_LOAD_SQL"
gen_updates "$D/in.tsv" "$N" "$KEYS"
split -n l/3 -d "$D/in.tsv" "$D/wave."

sum_messages() { q "SELECT coalesce(sum(messages), 0) FROM sluice.load_batches" 2>/dev/null || echo 0; }
past() { [ "$(sum_messages)" -gt "$1" ]; }
pg_restart() {
	as_pg_owner "$PGBIN/pg_ctl" -D "$SL_PGDATA" -m immediate -w -t 30 restart >/dev/null 2>&1
}

bg load "$SLUICE_BIN" load --schemas "$D/schemas" --batch-rows 5 \
	--linger-ms 20 --max-backoff-ms 1000
LOADER=$LAST_PID
restarts=0 midload=0 produced=0
for wave in "$D"/wave.*; do
	produce mapped.t_load "$wave"
	produced=$((produced + $(wc -l <"$wave")))
	base=$(sum_messages)
	wait_for 30 past "$base"
	sleep "0.$((RANDOM % 2))$((RANDOM % 10))"
	pg_restart && restarts=$((restarts + 1))
	now=$(sum_messages)
	echo "# restart $restarts: $now of $produced committed"
	[ "$now" -lt "$produced" ] && midload=$((midload + 1))
done
check_eq "PostgreSQL restarted three times" "$restarts" 3
check "at least two restarts hit the loader mid-load (got $midload)" test "$midload" -ge 2
check "all messages committed" wait_q 90 "SELECT sum(messages) FROM sluice.load_batches" "$N"
kill -0 "$LOADER" 2>/dev/null && ok "the loader survived the restarts" || not_ok "the loader survived the restarts"
grep -q "event=db_reconnected" "$SL_LOGDIR/load.log" && ok "the loader reconnected" || not_ok "the loader reconnected"
check_eq "row count is the number of keys" "$(q "SELECT count(*) FROM t_load")" "$KEYS"
check_eq "inserted sums to the row count" "$(q "SELECT sum(inserted) FROM sluice.load_batches")" "$KEYS"
check_eq "every message took effect once" \
	"$(q "SELECT sum(inserted + updated + superseded) || '/' || sum(unchanged) || '/' || sum(rejected) FROM sluice.load_batches")" "$N/0/0"
check_eq "final values are the last ones" "$(actual_final)" "$(expected_final "$N" "$KEYS")"
check_eq "nothing dead-lettered" "$(consume_all dlq.load | wc -l)" "0"
stop_pid "$LOADER"
check_eq "SIGTERM after the faults: exit 0" "$?" 0
# figures for `make reliability`: messages that took effect, against N
effects=$(q "SELECT coalesce(sum(inserted + updated + superseded), 0) FROM sluice.load_batches")
[ -n "${SLUICE_FIGURES:-}" ] && echo "fault=pg_restart injected=$restarts checked=$N lost=$((N > effects ? N - effects : 0)) dup=$((effects > N ? effects - N : 0))" >>"$SLUICE_FIGURES"
sl_done
