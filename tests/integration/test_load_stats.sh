#!/usr/bin/env bash
# test_load_stats: a table the loader fills with replace envelopes from
# empty gets statistics from the loader, not only when autovacuum comes by
# (the replace's DELETE joins the staged parents to the table, and without
# statistics PostgreSQL scans the whole table once per batch).
#   - 12 000 replaces (24 000 child rows) into a table autovacuum may not
#     touch: the loader analyzed it (pg_class.reltuples, its log);
#   - 12 000 upserts into another such table: never analyzed by the loader
#     (an upsert's plan does not depend on them);
#   - every message loaded, every row there.
source "$SLUICE_ROOT/tests/lib.sh"
source "$SLUICE_ROOT/loaders/testdata/load_lib.sh"
trap sl_cleanup EXIT

broker_start --topic mapped.t_child:4 --topic mapped.t_up:4 --topic dlq.load:1 || exit 1
D=$(sl_tmpdir)
SL_LOGDIR=$D
N=12000
python3 - "$D" "$N" <<'PY'
import json, sys
d, n = sys.argv[1], int(sys.argv[2])
with open(d + "/child.tsv", "w") as f, open(d + "/up.tsv", "w") as g:
    for i in range(n):
        env = {"v": 1, "table": "t_child", "op": "replace",
               "key": {"parent": i},
               "rows": [{"parent": i, "n": k, "v": "r%d.%d" % (i, k)}
                        for k in range(2)],
               "lineage": {"source": "test", "record": i}}
        f.write("%d\t%s\n" % (i, json.dumps(env)))
        env = {"v": 1, "table": "t_up", "op": "upsert", "key": {"id": i},
               "row": {"id": i, "v": "u%d" % i},
               "lineage": {"source": "test", "record": i}}
        g.write("%d\t%s\n" % (i, json.dumps(env)))
PY
produce mapped.t_child "$D/child.tsv"
produce mapped.t_up "$D/up.tsv"

new_db load_stats || exit 1
load_schemas "$D/schemas" "CREATE TABLE IF NOT EXISTS t_child (parent integer NOT NULL,
	n integer NOT NULL, v text, _lineage jsonb, _loaded_at timestamptz)
	WITH (autovacuum_enabled = false);
CREATE UNIQUE INDEX IF NOT EXISTS t_child_key ON t_child (parent, n);
CREATE TABLE IF NOT EXISTS t_up (id integer PRIMARY KEY, v text,
	_lineage jsonb, _loaded_at timestamptz) WITH (autovacuum_enabled = false);"
bg load "$SLUICE_BIN" load --schemas "$D/schemas" --group stats \
	--topics '^mapped\.t_(child|up)$' --batch-rows 1000 --connections 1
LOADER=$LAST_PID
check "every message is loaded" wait_q 120 \
	"SELECT coalesce(sum(messages), 0) FROM sluice.load_batches WHERE consumer_group = 'stats'" "$((2 * N))"
stop_pid "$LOADER"
check_eq "every child row and every upserted row is there" \
	"$(q "SELECT (SELECT count(*) FROM t_child) || '/' || (SELECT count(*) FROM t_up)")" "$((2 * N))/$N"
check_eq "autovacuum never analyzed either table" \
	"$(q "SELECT sum(autoanalyze_count) FROM pg_stat_user_tables WHERE relname IN ('t_child', 't_up')")" 0
check "the loader analyzed the replaced table (reltuples $(q "SELECT reltuples FROM pg_class WHERE relname = 't_child'"))" \
	test "$(q "SELECT reltuples > 0 FROM pg_class WHERE relname = 't_child'")" == t
check "... and logged it" grep -q 'event=analyze table=t_child ' "$D/load.log"
check_eq "the upserted table was not analyzed (reltuples -1)" \
	"$(q "SELECT reltuples FROM pg_class WHERE relname = 't_up'")" -1
sl_done
