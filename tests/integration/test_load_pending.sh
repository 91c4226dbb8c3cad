#!/usr/bin/env bash
# test_load_pending: the loader's memory does not grow with the number of
# tables. Each table and lane has a batch of its own; eight tables whose
# batches never fill by rows, bytes or age (limits far away) would all
# stay open until the consumer catches up, 24 MB in all. With
# --pending-bytes 2 MB the largest batches are cut early instead:
#   - every message lands, every row is there, nothing dead-lettered;
#   - no batch holds more than the cap allows (about 2 MB: 1000 messages
#     of 2 KB), where without the cap each table is one batch of 1500;
#   - the loader logged the early cuts (event=pending_cap).
# The same data with the default cap (64 MiB) is one batch per table.
source "$SLUICE_ROOT/tests/lib.sh"
source "$SLUICE_ROOT/loaders/testdata/load_lib.sh"
trap sl_cleanup EXIT

T=8
N=1500
topics=()
for ((t = 1; t <= T; t++)); do topics+=(--topic "mapped.t_p$t:1"); done
broker_start "${topics[@]}" --topic dlq.load:1 || exit 1
D=$(sl_tmpdir)
SL_LOGDIR=$D
python3 - "$D" "$T" "$N" <<'PY'
import json, sys
d, tables, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
pad = "x" * 2000
for t in range(1, tables + 1):
    with open("%s/t_p%d.tsv" % (d, t), "w") as f:
        for i in range(n):
            env = {"v": 1, "table": "t_p%d" % t, "op": "upsert", "key": {"id": i},
                   "row": {"id": i, "v": pad},
                   "lineage": {"source": "test", "record": i}}
            f.write("%d\t%s\n" % (i, json.dumps(env)))
PY
ddl=""
for ((t = 1; t <= T; t++)); do
	produce "mapped.t_p$t" "$D/t_p$t.tsv"
	ddl+="CREATE TABLE IF NOT EXISTS t_p$t (id integer PRIMARY KEY, v text, _lineage jsonb, _loaded_at timestamptz);"
done

# run GROUP LOG [ARGS]: loads every table with batches that never fill
run() {
	local group=$1 log=$2
	shift 2
	SLUICE_LOG_LEVEL=debug bg "$log" "$SLUICE_BIN" load --schemas "$D/schemas" \
		--group "$group" --topics '^mapped\.t_p[0-9]+$' --batch-rows 100000 \
		--batch-bytes 1000000000 --linger-ms 600000 --connections 2 "$@"
	check "$group: every message is loaded" wait_q 120 \
		"SELECT coalesce(sum(messages), 0) FROM sluice.load_batches WHERE consumer_group = '$group'" \
		"$((T * N))"
	stop_pid "$LAST_PID"
}

new_db load_pending || exit 1
load_schemas "$D/schemas" "$ddl"
run capped load_capped --pending-bytes 2000000
rows=0
for ((t = 1; t <= T; t++)); do rows=$((rows + $(q "SELECT count(*) FROM t_p$t"))); done
check_eq "capped: every row is there" "$rows" "$((T * N))"
check_eq "capped: nothing dead-lettered" "$(consume_all dlq.load | wc -l)" 0
most=$(q "SELECT max(messages) FROM sluice.load_batches WHERE consumer_group = 'capped'")
check "capped: no batch over the cap (largest $most messages of 2 KB)" test "${most:-99999}" -le 1000
check "capped: the early cuts are logged" grep -q 'event=pending_cap ' "$D/load_capped.log"

# the default cap is far above these 24 MB: one batch per table
q "TRUNCATE $(for ((t = 1; t <= T; t++)); do printf 't_p%d,' "$t"; done | sed 's/,$//')" >/dev/null
run uncapped load_uncapped
check_eq "uncapped: one batch per table, of all its messages" \
	"$(q "SELECT count(*) || ' ' || min(messages) FROM sluice.load_batches WHERE consumer_group = 'uncapped'")" \
	"$T $N"
grep -q 'event=pending_cap ' "$D/load_uncapped.log" &&
	not_ok "uncapped: no early cut: $(grep -m1 'event=pending_cap ' "$D/load_uncapped.log")" ||
	ok "uncapped: no early cut"
sl_done
