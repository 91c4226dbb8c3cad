#!/usr/bin/env bash
# test_load_columns: `sluice load` adopts a change of a target table's
# columns while it runs, with no restart (issue 28). A column added with
# ALTER TABLE takes the rows that carry it from the next batch on (the
# loader reads the table's catalog again when a row names a column it does
# not know) and the log says event=table_columns_changed. A column dropped
# while rows still carry it: PostgreSQL refuses the batch (42703), the
# loader reads the table again, and those rows are dead-lettered by the
# loader's rule for a field with no column (field=<the column>), while the
# rows without it load; the catalog is not read again for every batch that
# still carries it. A retyped column (42804) is adopted the same way. A
# dropped table is parked like a missing one, and the other tables keep
# loading. One loader process throughout.
source "$SLUICE_ROOT/tests/lib.sh"
source "$SLUICE_ROOT/loaders/testdata/load_lib.sh"
trap sl_cleanup EXIT

broker_start --topic mapped.t_col:2 --topic mapped.t_other:1 --topic dlq.load:1 || exit 1
new_db load_columns || exit 1
D=$(sl_tmpdir)
load_schemas "$D/schemas" "CREATE TABLE IF NOT EXISTS t_col (id integer PRIMARY KEY,
	val text, note text, _lineage jsonb, _loaded_at timestamptz);
CREATE TABLE IF NOT EXISTS t_other (id integer PRIMARY KEY, val text,
	_lineage jsonb, _loaded_at timestamptz);"

# rows TABLE FROM TO JSON-EXTRA: upserts of ids FROM..TO-1, each row
# {"id": i, "val": "v<i>"} plus the fields of JSON-EXTRA ("{}" for none;
# "I" in a value stands for i)
rows() {
	python3 - "$@" <<'PY' >"$D/in.tsv"
import json, sys
table, a, b, extra = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
for i in range(a, b):
    row = {"id": i, "val": "v%d" % i}
    row.update(json.loads(extra.replace("I", str(i))))
    env = {"v": 1, "table": table, "op": "upsert", "key": {"id": i},
           "row": row, "lineage": {"source": "test", "record": i}}
    print("%d\t%s" % (i, json.dumps(env)))
PY
	produce "mapped.$1" "$D/in.tsv"
}
loaded() { q "SELECT coalesce(sum(messages), 0) FROM sluice.load_batches WHERE table_name = '$1'"; }
dlq_fields() {
	consume_all dlq.load | python3 -c '
import json, sys
print(",".join(sorted({json.loads(l).get("field", "-") for l in sys.stdin if l.strip()})))'
}
dlq_count() { consume_all dlq.load | grep -c .; }
rereads() { grep -c 'event=table_columns_\|event=table_reread' "$SL_LOGDIR/load.log"; }

# one lane: each catalog read is logged once
bg load "$SLUICE_BIN" load --schemas "$D/schemas" --linger-ms 200 --connections 1
LOADER=$LAST_PID

rows t_col 0 10 '{"note": "nI"}'
check "10 rows before any change" wait_q 30 "SELECT count(*) FROM t_col" 10

# 1. a column added while the loader runs
q "ALTER TABLE t_col ADD COLUMN risk numeric" >/dev/null
rows t_col 10 20 '{"note": "nI", "risk": 0.I}'
check "rows carrying the new column load" wait_q 30 "SELECT count(*) FROM t_col" 20
check_eq "... into the new column" "$(q "SELECT count(*) FROM t_col WHERE risk = ('0.' || id)::numeric")" 10
check "the change is logged" grep -q 'event=table_columns_changed table=t_col added=risk dropped=- retyped=- reason="column risk"' "$SL_LOGDIR/load.log"
check_eq "no dead letters so far" "$(dlq_count)" 0

# 2. a column dropped while rows still carry it
q "ALTER TABLE t_col DROP COLUMN note" >/dev/null
before=$(loaded t_col)
rows t_col 20 30 '{"note": "nI", "risk": 1}'
check "the batch is accounted for" wait_out 30 = "$((before + 10))" loaded t_col
n_rereads=$(rereads)
rows t_col 40 45 '{"note": "again", "risk": 3}'
check "a later batch still carrying it is accounted for" wait_out 30 = "$((before + 15))" loaded t_col
check_eq "... without another catalog read" "$(rereads)" "$n_rereads"
check "the drop is logged (after PostgreSQL refused the batch: 42703)" \
	grep -q 'event=table_columns_changed table=t_col added=- dropped=note retyped=- reason="sqlstate 42703"' "$SL_LOGDIR/load.log"
check_eq "rows carrying the dropped column are dead-lettered, naming it" "$(dlq_count)/$(dlq_fields)" "15/note"
rows t_col 30 40 '{"risk": 2}'
check "rows without it load" wait_q 30 "SELECT count(*) FROM t_col WHERE risk = 2" 10

# 3. a column retyped (numeric to jsonb: PostgreSQL refuses it, 42804)
q "ALTER TABLE t_col ALTER COLUMN risk TYPE jsonb USING to_jsonb(risk)" >/dev/null
rows t_col 50 55 '{"risk": 4.5}'
check "rows load into the retyped column" wait_q 30 "SELECT count(*) FROM t_col WHERE risk = '4.5'::jsonb" 5
check "the retype is logged" grep -q 'event=table_columns_changed table=t_col added=- dropped=- retyped=risk reason="sqlstate 42804"' "$SL_LOGDIR/load.log"
check_eq "no further dead letters" "$(dlq_count)" 15

# 4. the table dropped: parked as a missing table, the others keep loading
q "DROP TABLE t_col" >/dev/null
rows t_col 60 65 '{}'
parked() { grep -q 'event=table_parked table=t_col' "$SL_LOGDIR/load.log"; }
check "a dropped table is parked" wait_for 30 parked
rows t_other 0 5 '{}'
check "another table still loads" wait_q 30 "SELECT count(*) FROM t_other" 5
check_eq "the dropped table's rows are not dead-lettered" "$(dlq_count)" 15

check "the loader never restarted" kill -0 "$LOADER"
check_eq "... one start in its log" "$(grep -c 'event=started' "$SL_LOGDIR/load.log")" 1
stop_pid "$LOADER"
check_eq "SIGTERM: exit 0" "$?" 0
sl_done
