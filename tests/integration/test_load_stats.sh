#!/usr/bin/env bash
# test_load_stats: a table the loader fills with replace envelopes from
# empty gets statistics from the loader, not only when autovacuum comes by
# (the replace's DELETE joins the staged parents to the table, and without
# statistics PostgreSQL scans the whole table once per batch).
#   - 12 000 replaces (24 000 child rows) into a table autovacuum may not
#     touch: the loader analyzed it (pg_class.reltuples, its log);
#   - 12 000 upserts into another such table: never analyzed by the loader
#     (an upsert's plan does not depend on them);
#   - every message loaded, every row there;
#   - a table another session holds locked (SHARE UPDATE EXCLUSIVE, as a
#     running ANALYZE does): the loader's analyze is skipped and logged as
#     skipped, not as done;
#   - a role that does not own the table: PostgreSQL refuses its ANALYZE
#     (a warning, not an error); the loader says so once and stops asking.
source "$SLUICE_ROOT/tests/lib.sh"
source "$SLUICE_ROOT/loaders/testdata/load_lib.sh"
trap sl_cleanup EXIT

broker_start --topic mapped.t_child:4 --topic mapped.t_up:4 --topic mapped.t_lock:4 \
	--topic mapped.t_np:4 --topic dlq.load:1 || exit 1
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
        for t in ("t_lock", "t_np"):
            env["table"] = t
            with open("%s/%s.tsv" % (d, t), "a") as h:
                h.write("%d\t%s\n" % (i, json.dumps(env)))
        env = {"v": 1, "table": "t_up", "op": "upsert", "key": {"id": i},
               "row": {"id": i, "v": "u%d" % i},
               "lineage": {"source": "test", "record": i}}
        g.write("%d\t%s\n" % (i, json.dumps(env)))
PY
produce mapped.t_child "$D/child.tsv"
produce mapped.t_up "$D/up.tsv"
produce mapped.t_lock "$D/t_lock.tsv"
produce mapped.t_np "$D/t_np.tsv"

new_db load_stats || exit 1
load_schemas "$D/schemas" "CREATE TABLE IF NOT EXISTS t_child (parent integer NOT NULL,
	n integer NOT NULL, v text, _lineage jsonb, _loaded_at timestamptz)
	WITH (autovacuum_enabled = false);
CREATE UNIQUE INDEX IF NOT EXISTS t_child_key ON t_child (parent, n);
CREATE TABLE IF NOT EXISTS t_up (id integer PRIMARY KEY, v text,
	_lineage jsonb, _loaded_at timestamptz) WITH (autovacuum_enabled = false);
CREATE TABLE IF NOT EXISTS t_lock (LIKE t_child) WITH (autovacuum_enabled = false);
CREATE UNIQUE INDEX IF NOT EXISTS t_lock_key ON t_lock (parent, n);
CREATE TABLE IF NOT EXISTS t_np (LIKE t_child) WITH (autovacuum_enabled = false);
CREATE UNIQUE INDEX IF NOT EXISTS t_np_key ON t_np (parent, n);"

# load_all LOG GROUP TOPICS WANT WHAT: a loader (log LOG) over TOPICS until
# WANT messages are loaded (checked as WHAT), then stopped
load_all() {
	bg "$1" "$SLUICE_BIN" load --schemas "$D/schemas" --group "$2" \
		--topics "$3" --batch-rows 1000 --connections 1
	check "$5" wait_q 120 \
		"SELECT coalesce(sum(messages), 0) FROM sluice.load_batches WHERE consumer_group = '$2'" "$4"
	stop_pid "$LAST_PID"
}

load_all load stats '^mapped\.t_(child|up)$' "$((2 * N))" "every message is loaded"
check_eq "every child row and every upserted row is there" \
	"$(q "SELECT (SELECT count(*) FROM t_child) || '/' || (SELECT count(*) FROM t_up)")" "$((2 * N))/$N"
check_eq "autovacuum never analyzed either table" \
	"$(q "SELECT sum(autoanalyze_count) FROM pg_stat_user_tables WHERE relname IN ('t_child', 't_up')")" 0
check "the loader analyzed the replaced table (reltuples $(q "SELECT reltuples FROM pg_class WHERE relname = 't_child'"))" \
	test "$(q "SELECT reltuples > 0 FROM pg_class WHERE relname = 't_child'")" == t
check "... and logged it" grep -q 'event=analyze table=t_child ' "$D/load.log"
check_eq "the upserted table was not analyzed (reltuples -1)" \
	"$(q "SELECT reltuples FROM pg_class WHERE relname = 't_up'")" -1

# another session holds the lock ANALYZE needs for the whole load
psql -qAtX -c "BEGIN; LOCK TABLE t_lock IN SHARE UPDATE EXCLUSIVE MODE; SELECT pg_sleep(300)" \
	>/dev/null 2>&1 &
HOLDER=$!
wait_q 10 "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
	WHERE c.relname = 't_lock' AND l.mode = 'ShareUpdateExclusiveLock' AND l.granted" 1 ||
	not_ok "the lock holder did not take its lock"
load_all load_lock stats_lock '^mapped\.t_lock$' "$N" "every message of the locked table is loaded"
kill "$HOLDER" 2>/dev/null
q "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%LOCK TABLE t_lock%' AND pid <> pg_backend_pid()" >/dev/null
check "a locked table's analyze is logged as skipped" \
	grep -q 'event=analyze_skipped table=t_lock reason=locked' "$D/load_lock.log"
grep -q 'event=analyze table=t_lock ' "$D/load_lock.log" &&
	not_ok "... and not as done: $(grep -m1 'event=analyze table=t_lock ' "$D/load_lock.log")" ||
	ok "... and not as done"
check_eq "... and it was not analyzed (reltuples -1)" \
	"$(q "SELECT reltuples FROM pg_class WHERE relname = 't_lock'")" -1

# a role that may write the table but does not own it
q "CREATE ROLE sl_np LOGIN; GRANT USAGE, CREATE ON SCHEMA public, sluice TO sl_np;
	GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public, sluice TO sl_np;
	GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA sluice TO sl_np" >/dev/null
PGUSER=sl_np load_all load_np stats_np '^mapped\.t_np$' "$N" "a role that does not own the table loads all of it"
check_eq "... PostgreSQL's refusal is logged once (it would be asked again every 5 000 rows)" \
	"$(grep -c 'event=analyze_refused table=t_np ' "$D/load_np.log")" 1
grep -q 'event=analyze table=t_np ' "$D/load_np.log" &&
	not_ok "... and never as done: $(grep -m1 'event=analyze table=t_np ' "$D/load_np.log")" ||
	ok "... and never as done"
sl_done
