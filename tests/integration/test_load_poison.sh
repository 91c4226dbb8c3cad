#!/usr/bin/env bash
# test_load_poison: rows PostgreSQL rejects (bad timestamp, value too long,
# check constraint), a row with a column the table lacks and a message that
# is not JSON are isolated and dead-lettered to dlq.load with SQLSTATE,
# message, lineage and the row; the rest of the batch commits.
source "$SLUICE_ROOT/tests/lib.sh"
source "$SLUICE_ROOT/loaders/testdata/load_lib.sh"
trap sl_cleanup EXIT

broker_start --topic mapped.t_poison:1 --topic dlq.load:1 || exit 1
new_db load_poison || exit 1
D=$(sl_tmpdir)
load_schemas "$D/schemas" "CREATE TABLE IF NOT EXISTS t_poison (
	id integer PRIMARY KEY, name varchar(10), seen timestamptz,
	score integer CHECK (score >= 0), _lineage jsonb, _loaded_at timestamptz);"

python3 - "$D" <<'PY'
import json, sys
d = sys.argv[1]
bad = {7: ("seen", "not a time"), 19: ("name", "much too long for ten"),
       31: ("score", -5), 40: ("colour", "red")}
with open(d + "/in.tsv", "w") as f:
    for i in range(50):
        row = {"id": i, "name": "n%d" % i, "seen": "2024-01-02T03:04:05Z",
               "score": i}
        if i in bad:
            row[bad[i][0]] = bad[i][1]
        env = {"v": 1, "table": "t_poison", "op": "upsert", "key": {"id": i},
               "row": row, "lineage": {"source": "test", "record": i}}
        f.write("%d\t%s\n" % (i, json.dumps(env)))
    f.write("x\t{not json\n")
PY
produce mapped.t_poison "$D/in.tsv"
bg load "$SLUICE_BIN" load --schemas "$D/schemas" --linger-ms 1000
LOADER=$LAST_PID
check "the good rows land" wait_q 30 "SELECT count(*) FROM t_poison" 46
check_eq "the bad rows are not in the table" "$(q "SELECT count(*) FROM t_poison WHERE id IN (7, 19, 31, 40)")" "0"
check_eq "report: 46 inserted, 5 rejected, 51 messages" \
	"$(q "SELECT sum(inserted) || '/' || sum(rejected) || '/' || sum(messages) FROM sluice.load_batches")" "46/5/51"
check_eq "offsets move past the dead letters" "$(q "SELECT next_offset FROM sluice.offsets")" "51"

consume_all dlq.load >"$D/dlq"
check_eq "five dead letters" "$(wc -l <"$D/dlq")" "5"
python3 - "$D/dlq" <<'PY'
import json, sys
dl = [json.loads(l) for l in open(sys.argv[1])]
by = {}
for d in dl:
    rec = d.get("record") or {}
    by[rec.get("id", "page")] = d
def check(what, cond):
    print(("ok - " if cond else "not ok - ") + what + ("" if cond else ": " + json.dumps(dl)))
check("every dead letter is stage load, table t_poison, has an error",
      all(d.get("stage") == "load" and d.get("table") == "t_poison" and d.get("error") for d in dl))
check("bad timestamp: SQLSTATE 22007, field seen, row and lineage kept",
      by.get(7, {}).get("sqlstate") == "22007" and by[7].get("field") == "seen"
      and by[7]["record"]["seen"] == "not a time" and by[7]["lineage"]["record"] == 7)
check("too long: SQLSTATE 22001", by.get(19, {}).get("sqlstate") == "22001"
      and "too long" in by[19]["error"])
check("check constraint: SQLSTATE 23514", by.get(31, {}).get("sqlstate") == "23514")
check("unknown column named, never dropped silently",
      by.get(40, {}).get("field") == "colour" and "colour" in by[40]["error"])
check("non-JSON message dead-lettered with its bytes",
      by.get("page", {}).get("page") == "{not json" and "not JSON" in by["page"]["error"])
PY
stop_pid "$LOADER"
sl_done
