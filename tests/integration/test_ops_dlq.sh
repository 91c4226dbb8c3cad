#!/usr/bin/env bash
# test_ops_dlq: rows a CHECK constraint rejects go to dlq.load; `sluice dlq
# list` shows them with their reasons; after the constraint is dropped,
# `sluice dlq replay` lands each exactly once, and replaying again
# re-publishes nothing (counts stay exact).
source "$SLUICE_ROOT/tests/lib.sh"
source "$SLUICE_ROOT/loaders/testdata/load_lib.sh"
trap sl_cleanup EXIT

broker_start --topic mapped.t_dlq:2 --topic dlq.load:1 || exit 1
new_db ops_dlq || exit 1
D=$(sl_tmpdir)
load_schemas "$D/schemas" "CREATE TABLE IF NOT EXISTS t_dlq (
	id integer PRIMARY KEY, score integer CONSTRAINT score_positive
	CHECK (score >= 0), _lineage jsonb, _loaded_at timestamptz);"

# 40 rows; every 8th (0, 8, 16, 24, 32) has a negative score
python3 - "$D/in.tsv" <<'PY'
import json, sys
with open(sys.argv[1], "w") as f:
    for i in range(40):
        score = -i - 1 if i % 8 == 0 else i
        env = {"v": 1, "table": "t_dlq", "op": "upsert", "key": {"id": i},
               "row": {"id": i, "score": score},
               "lineage": {"source": "test", "record": i}}
        f.write("%d\t%s\n" % (i, json.dumps(env)))
PY
produce mapped.t_dlq "$D/in.tsv"
bg load "$SLUICE_BIN" load --schemas "$D/schemas" --linger-ms 300
check "the 35 good rows land" wait_q 30 "SELECT count(*) FROM t_dlq" 35
check "5 rejected in the run reports" wait_q 10 \
	"SELECT sum(rejected) FROM sluice.load_batches" 5

"$SLUICE_BIN" dlq list >"$D/list" 2>"$D/list.err"
check_eq "dlq list exits 0" "$?" 0
check_eq "dlq list shows 5 letters of dlq.load" \
	"$(grep -c '^dlq.load ' "$D/list")" 5
check "each line names the table, SQLSTATE 23514 and the constraint" \
	test "$(grep -c 'table=t_dlq.*sqlstate=23514.*score_positive' "$D/list")" -eq 5
check "each line carries the source offset" \
	test "$(grep -c 'from=mapped.t_dlq:[01]:[0-9]' "$D/list")" -eq 5
"$SLUICE_BIN" dlq list --topic dlq.load --grep '"id":16,' --json >"$D/one.json"
check_eq "--grep selects one letter, --json parses" \
	"$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(len(d), d[0]["letter"]["record"]["id"], d[0]["replayed"])' "$D/one.json")" \
	"1 16 False"
"$SLUICE_BIN" dlq list --table nosuch --json >"$D/none.json"
check_eq "--table filters" "$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$D/none.json")" 0
"$SLUICE_BIN" dlq replay --topic dlq.load >/dev/null 2>&1
check_eq "replay without --offset or --all is a usage error" "$?" 2

# nothing lands while the constraint is still there: a dry run says what
P16=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))[0]; print("%d:%d" % (d["partition"], d["offset"]))' "$D/one.json")
"$SLUICE_BIN" dlq replay --topic dlq.load --offset "$P16" --dry-run >"$D/dry"
check "dry run names the target topic" grep -q "would re-publish dlq.load:$P16 -> mapped.t_dlq" "$D/dry"

"$SLUICE_BIN" dlq replay --topic dlq.load --offset 0:999 >"$D/nosuch" 2>&1
check_eq "replay of an offset that holds no letter exits 1" "$?" 1
check "and says so" grep -q "dlq.load:0:999: no such dead letter" "$D/nosuch"

q "ALTER TABLE t_dlq DROP CONSTRAINT score_positive" >/dev/null
"$SLUICE_BIN" dlq replay --topic dlq.load --offset "$P16" >"$D/r1" 2>"$D/r1.err"
check_eq "replay of one letter exits 0" "$?" 0
check "the one letter lands" wait_q 30 "SELECT count(*) FROM t_dlq WHERE id = 16 AND score = -17" 1
check_eq "only that one" "$(q "SELECT count(*) FROM t_dlq")" 36

"$SLUICE_BIN" dlq replay --topic dlq.load --all >"$D/r2" 2>"$D/r2.err"
check_eq "replay --all exits 0" "$?" 0
check_eq "replay --all re-publishes the 4 others" "$(grep -c '^replayed ' "$D/r2")" 4
check_eq "and skips the one already re-published" "$(grep -c '^skip ' "$D/r2")" 1
check "every row is in the table" wait_q 30 "SELECT count(*) FROM t_dlq" 40
check "the fixed rows carry their original lineage" wait_q 10 \
	"SELECT count(*) FROM t_dlq WHERE id % 8 = 0 AND _lineage->>'record' = id::text" 5

"$SLUICE_BIN" dlq replay --topic dlq.load --all >"$D/r3" 2>"$D/r3.err"
check_eq "a second replay --all exits 0" "$?" 0
check_eq "a second replay re-publishes nothing" "$(grep -c '^replayed ' "$D/r3")" 0
check_eq "and skips all 5" "$(grep -c '^skip ' "$D/r3")" 5
sleep 2
check_eq "exactly 45 messages consumed (40 + 5 replays)" \
	"$(q "SELECT sum(messages) FROM sluice.load_batches")" 45
check_eq "inserted 40 rows in all, 40 in the table, no duplicates" \
	"$(q "SELECT sum(inserted) FROM sluice.load_batches")/$(q "SELECT count(*) FROM t_dlq")" "40/40"
check_eq "the replayed envelopes reached mapped.t_dlq once each" \
	"$(consume_all mapped.t_dlq | wc -l)" 45
"$SLUICE_BIN" dlq list --json >"$D/after.json"
check_eq "dlq list marks all 5 as re-published" \
	"$(python3 -c 'import json,sys; print(sum(1 for d in json.load(open(sys.argv[1])) if d["replayed"]))' "$D/after.json")" 5
sl_done
