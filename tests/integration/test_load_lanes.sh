#!/usr/bin/env bash
# test_load_lanes: the loader writes on --connections lanes (default 2),
# a lane per share of the partitions, and stages each table's rows in one
# staging table per connection (ON COMMIT DELETE ROWS), not one per batch.
#   - 8 partitions, 6 000 updates over 500 keys in batches of 50: every key
#     ends at its last value, every message is counted once, both lanes
#     wrote batches and PostgreSQL saw two loader connections;
#   - the staging table was made once per connection (statement log), not
#     once per batch;
#   - a bisection (a poison row in a batch) clears the staging table
#     between segments: no row of a segment is applied twice;
#   - --connections 1 loads the same; bad values exit 2;
#   - PostgreSQL's notices are log events, not raw stderr lines.
source "$SLUICE_ROOT/tests/lib.sh"
source "$SLUICE_ROOT/loaders/testdata/load_lib.sh"
trap sl_cleanup EXIT

broker_start --topic mapped.t_load:8 --topic mapped.t_poison:1 --topic dlq.load:1 || exit 1
D=$(sl_tmpdir)
SL_LOGDIR=$D
N=6000 KEYS=500
gen_updates "$D/in.tsv" "$N" "$KEYS"
produce mapped.t_load "$D/in.tsv"

new_db load_lanes || exit 1
psql -qX -c "ALTER DATABASE load_lanes SET log_statement = 'all'" >/dev/null
load_schemas "$D/schemas" "$T_LOAD_SQL"
log_from=$(wc -c <"$PGHOST/pg.log")
bg load "$SLUICE_BIN" load --schemas "$D/schemas" --group lanes --topics '^mapped\.t_load$' \
	--batch-rows 50 --linger-ms 200
LOADER=$LAST_PID
check "every message is loaded" wait_q 60 \
	"SELECT coalesce(sum(messages), 0) FROM sluice.load_batches WHERE consumer_group = 'lanes'" "$N"
check_eq "final values are the last ones" "$(actual_final)" "$(expected_final "$N" "$KEYS")"
check_eq "report: 500 inserted, 5 500 updated or superseded, nothing unchanged or rejected" \
	"$(q "SELECT sum(inserted) || '/' || sum(updated) + sum(superseded) || '/' || sum(unchanged) || '/' || sum(rejected) FROM sluice.load_batches WHERE consumer_group = 'lanes'")" \
	"500/5500/0/0"
check_eq "offsets: each partition's next offset is its message count" \
	"$(q "SELECT sum(next_offset) FROM sluice.offsets WHERE consumer_group = 'lanes'")" "$N"
l0=$(grep -c 'event=batch table=t_load .* lane=0 ' "$D/load.log")
l1=$(grep -c 'event=batch table=t_load .* lane=1 ' "$D/load.log")
check "both lanes wrote batches (lane 0: $l0, lane 1: $l1)" test "$l0" -gt 0 -a "$l1" -gt 0
check_eq "two loader connections to the database" \
	"$(q "SELECT count(*) FROM pg_stat_activity WHERE datname = 'load_lanes' AND pid <> pg_backend_pid()")" 2
stop_pid "$LOADER"
tail -c +"$((log_from + 1))" "$PGHOST/pg.log" >"$D/pg.log"
made=$(grep -c 'CREATE TEMP TABLE "_sl_stage_t_load" ON COMMIT DELETE ROWS' "$D/pg.log")
copies=$(grep -c 'COPY pg_temp."_sl_stage_t_load"' "$D/pg.log")
check_eq "the staging table is made once per connection ($copies COPYs)" "$made" 2
check "... and used by every batch" test "$copies" -ge $((N / 50))
check_eq "no staging table is dropped per batch" "$(grep -c 'DROP TABLE _sl_stage' "$D/pg.log")" 0
check_eq "PostgreSQL's notices (nothing to drop) go to the log as events, not raw to stderr" \
	"$(grep -c '^NOTICE' "$D/load.log")" 0

# one connection: the same rows, the same counts
new_db load_lanes1 || exit 1
load_schemas "$D/schemas" "$T_LOAD_SQL"
bg load1 "$SLUICE_BIN" load --schemas "$D/schemas" --group lanes1 --topics '^mapped\.t_load$' \
	--batch-rows 50 --linger-ms 200 --connections 1
LOADER=$LAST_PID
check "--connections 1: every message is loaded" wait_q 60 \
	"SELECT coalesce(sum(messages), 0) FROM sluice.load_batches WHERE consumer_group = 'lanes1'" "$N"
check_eq "--connections 1: final values are the last ones" "$(actual_final)" "$(expected_final "$N" "$KEYS")"
check_eq "--connections 1: only lane 0" "$(grep -c 'event=batch table=t_load .* lane=1 ' "$D/load1.log")" 0
stop_pid "$LOADER"

# bisection: a batch of 40 with one poison row in the middle is applied
# in segments; each segment must find the staging table empty
new_db load_lanes_poison || exit 1
psql -qX -c "ALTER DATABASE load_lanes_poison SET log_statement = 'all'" >/dev/null
log_from=$(wc -c <"$PGHOST/pg.log")
load_schemas "$D/schemas" "CREATE TABLE IF NOT EXISTS t_poison (
	id integer PRIMARY KEY, score integer CHECK (score >= 0), _lineage jsonb,
	_loaded_at timestamptz);"
python3 - "$D/poison.tsv" <<'PY'
import json, sys
with open(sys.argv[1], "w") as f:
    for i in range(40):
        env = {"v": 1, "table": "t_poison", "op": "upsert", "key": {"id": i},
               "row": {"id": i, "score": -1 if i == 23 else i},
               "lineage": {"source": "test", "record": i}}
        f.write("%d\t%s\n" % (i, json.dumps(env)))
PY
produce mapped.t_poison "$D/poison.tsv"
bg loadp "$SLUICE_BIN" load --schemas "$D/schemas" --group lanesp --topics '^mapped\.t_poison$' \
	--linger-ms 1000
LOADER=$LAST_PID
check "bisection: the good rows land" wait_q 30 "SELECT count(*) FROM t_poison" 39
check_eq "bisection: 39 inserted, none updated or unchanged, 1 rejected" \
	"$(q "SELECT sum(inserted) || '/' || sum(updated) || '/' || sum(unchanged) || '/' || sum(rejected) FROM sluice.load_batches WHERE consumer_group = 'lanesp'")" \
	"39/0/0/1"
stop_pid "$LOADER"
# a segment's rows, once written, must not stay staged under the next
# segment (they would be written again by each later segment's statements)
tail -c +"$((log_from + 1))" "$PGHOST/pg.log" >"$D/pg2.log"
segs=$(grep -c 'COPY pg_temp."_sl_stage_t_poison"' "$D/pg2.log")
clears=$(grep -c 'DELETE FROM pg_temp."_sl_stage_t_poison"$' "$D/pg2.log")
check "bisection: the staging table is emptied before each segment that follows a written one ($segs COPYs, $clears emptied)" \
	test "$segs" -ge 6 -a "$clears" -ge 3

for bad in 0 -1 x 65; do
	"$SLUICE_BIN" load --connections "$bad" >"$D/out" 2>"$D/err"
	check_eq "--connections $bad: exit 2, says why" "$? $(grep -c 'connections' "$D/err")" "2 1"
done
sl_done
