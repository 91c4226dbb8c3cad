#!/usr/bin/env bash
# test_load_fence: a loader's batch that another loader of the group has
# overtaken is not applied. Offsets 0..9 of one key are in flight in loader
# A's batch, held up by a table lock; meanwhile the topic grows to 20 and
# "loader B" (the lock's own session) writes the key as of offset 19 and
# sluice.offsets to 20. When the lock goes, A's batch must not put the value
# of offset 9 over it, nor move sluice.offsets back to 10: it is fenced
# (rolled back) and A rewinds to sluice.offsets. Triggers record every
# write to the key and to the stored offset, so a write that was later
# undone still shows.
# Part 2: a loader frozen past its session (SIGSTOP) loses its partitions
# to the other loader of the group; when it wakes it drops what it held,
# and the table and offsets end exact, with no offset ever moving back.
source "$SLUICE_ROOT/tests/lib.sh"
source "$SLUICE_ROOT/loaders/testdata/load_lib.sh"
trap sl_cleanup EXIT
short_sessions
D=$(sl_tmpdir)
SL_LOGDIR=$D

broker_start --topic mapped.t_fence:1 --topic mapped.t_fence2:4 \
	--topic dlq.load:1 || { not_ok "broker"; exit 1; }
new_db load_fence || { not_ok "database"; exit 1; }
load_schemas "$D/schemas" "CREATE TABLE IF NOT EXISTS t_fence (
	id text PRIMARY KEY, v integer, _lineage jsonb, _loaded_at timestamptz);
CREATE TABLE IF NOT EXISTS t_fence2 (
	id text PRIMARY KEY, v integer, _lineage jsonb, _loaded_at timestamptz);"

# env TABLE ID V: one upsert envelope line
env() { printf '%s\t{"v":1,"table":"%s","op":"upsert","key":{"id":"%s"},"row":{"id":"%s","v":%d}}\n' "$2" "$1" "$2" "$2" "$3"; }
for v in $(seq 0 9); do env t_fence a "$v"; done >"$D/first"
for v in $(seq 10 19); do env t_fence a "$v"; done >"$D/second"

# the schema (the loaders apply it again: it is idempotent), then triggers
# that record every write
psql -qX -v ON_ERROR_STOP=1 -f "$D/schemas/sluice.sql" -f "$D/schemas/tables/test.sql" >/dev/null
q "CREATE TABLE audit_v (tbl text, id text, v integer, at timestamptz DEFAULT clock_timestamp(), n bigserial);
CREATE TABLE audit_off (topic text, part integer, old_next bigint, new_next bigint, n bigserial);
CREATE FUNCTION audit_v() RETURNS trigger LANGUAGE plpgsql AS \$\$
BEGIN INSERT INTO audit_v (tbl, id, v) VALUES (TG_TABLE_NAME, NEW.id, NEW.v); RETURN NEW; END \$\$;
CREATE FUNCTION audit_off() RETURNS trigger LANGUAGE plpgsql AS \$\$
BEGIN INSERT INTO audit_off (topic, part, old_next, new_next)
VALUES (NEW.topic, NEW.partition, CASE WHEN TG_OP = 'UPDATE' THEN OLD.next_offset END, NEW.next_offset);
RETURN NEW; END \$\$;
CREATE TRIGGER a AFTER INSERT OR UPDATE ON t_fence FOR EACH ROW EXECUTE FUNCTION audit_v();
CREATE TRIGGER a AFTER INSERT OR UPDATE ON t_fence2 FOR EACH ROW EXECUTE FUNCTION audit_v();
CREATE TRIGGER a AFTER INSERT OR UPDATE ON sluice.offsets FOR EACH ROW EXECUTE FUNCTION audit_off();" >/dev/null
check_eq "audit triggers in place" "$(q "SELECT count(*) FROM pg_trigger WHERE tgname = 'a'")" 3

# --- 1. an overtaken batch -------------------------------------------------
produce mapped.t_fence "$D/first"
mkfifo "$D/lock.in"
psql -qAtX <"$D/lock.in" >"$D/lock.out" 2>&1 &
LOCKER=$!
SL_PIDS+=("$LOCKER")
exec 9>"$D/lock.in"
echo "BEGIN; LOCK TABLE t_fence IN SHARE ROW EXCLUSIVE MODE; SELECT 'locked';" >&9
check "the table is locked" wait_for 10 grep -q locked "$D/lock.out"
bg a "$SLUICE_BIN" load --schemas "$D/schemas" --topics '^mapped\.t_fence$' --linger-ms 100
A=$LAST_PID
blocked() { [ "$(q "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query ILIKE '%t_fence%'")" -ge 1 ]; }
check "loader A's batch (offsets 0..9) waits on the lock" wait_for 30 blocked
produce mapped.t_fence "$D/second"
echo "INSERT INTO t_fence (id, v) VALUES ('a', 19) ON CONFLICT (id) DO UPDATE SET v = 19;
INSERT INTO sluice.offsets (consumer_group, topic, partition, next_offset)
VALUES ('sluice-load', 'mapped.t_fence', 0, 20) ON CONFLICT (consumer_group, topic, partition)
DO UPDATE SET next_offset = 20; COMMIT; SELECT 'released';" >&9
exec 9>&-
check "'loader B' wrote offset 19's value and released the lock" wait_for 10 grep -q released "$D/lock.out"
check "loader A logs its batch as fenced" wait_for 30 grep -q 'event=fenced table=t_fence' "$D/a.log"
sleep 2 # A rewinds to sluice.offsets (20): nothing more to read
check_eq "the key keeps offset 19's value" "$(q "SELECT v FROM t_fence WHERE id = 'a'")" 19
check_eq "no write ever put an older value over a newer one" \
	"$(q "SELECT count(*) FROM (SELECT v, lag(v) OVER (ORDER BY n) AS prev FROM audit_v WHERE tbl = 't_fence') x WHERE v < prev")" 0
check_eq "sluice.offsets stays at 20" \
	"$(q "SELECT next_offset FROM sluice.offsets WHERE topic = 'mapped.t_fence'")" 20
check_eq "no stored offset ever moved back" \
	"$(q "SELECT count(*) FROM audit_off WHERE new_next < old_next")" 0
check_eq "the fenced batch left no run report" \
	"$(q "SELECT count(*) FROM sluice.load_batches WHERE table_name = 't_fence'")" 0
check "loader A lives on" kill -0 "$A"
stop_pid "$A"
check_eq "loader A stops cleanly" "$?" 0

# --- 2. a loader frozen past its session -----------------------------------
# 4 partitions, 40 keys, each written 50 times (v = 0..49) in order
/usr/bin/python3 - "$D/many" <<'PY'
import json, sys
with open(sys.argv[1], "w") as f:
    for v in range(50):
        for k in range(40):
            key = "k%02d" % k
            env = {"v": 1, "table": "t_fence2", "op": "upsert",
                   "key": {"id": key}, "row": {"id": key, "v": v}}
            f.write(key + "\t" + json.dumps(env, separators=(",", ":")) + "\n")
PY
bg b1 "$SLUICE_BIN" load --schemas "$D/schemas" --topics '^mapped\.t_fence2$' --linger-ms 100 --batch-rows 40
B1=$LAST_PID
bg b2 "$SLUICE_BIN" load --schemas "$D/schemas" --topics '^mapped\.t_fence2$' --linger-ms 100 --batch-rows 40
B2=$LAST_PID
assigned_both() { grep -q 'event=assigned partitions=[1-9]' "$D/b1.log" && grep -q 'event=assigned partitions=[1-9]' "$D/b2.log"; }
check "both loaders hold partitions" wait_for 60 assigned_both
produce mapped.t_fence2 "$D/many"
kill -STOP "$B1"
sleep 6
kill -CONT "$B1"
check "the frozen loader learns it lost its partitions" wait_for 30 grep -q 'event=partitions_lost' "$D/b1.log"
settled2() { [ "$(q "SELECT coalesce(sum(next_offset), 0) FROM sluice.offsets WHERE topic = 'mapped.t_fence2'")" -eq 2000 ]; }
check "sluice.offsets reach the end of all 4 partitions (2000 messages)" wait_for 60 settled2
check_eq "every key ends at its last value" \
	"$(q "SELECT count(*) || '/' || min(v) || '/' || max(v) FROM t_fence2")" "40/49/49"
check_eq "no write ever put an older value over a newer one" \
	"$(q "SELECT count(*) FROM (SELECT v, lag(v) OVER (PARTITION BY id ORDER BY n) AS prev FROM audit_v WHERE tbl = 't_fence2') x WHERE v < prev")" 0
check_eq "no stored offset ever moved back" \
	"$(q "SELECT count(*) FROM audit_off WHERE new_next < old_next")" 0
echo "# frozen loader: $(grep -h 'event=partitions_lost\|event=fenced' "$D/b1.log" | cut -c1-200 | tr '\n' ' ')"
stop_pid "$B1"
check_eq "the woken loader stops cleanly" "$?" 0
stop_pid "$B2"
check_eq "the other loader stops cleanly" "$?" 0
sl_done
