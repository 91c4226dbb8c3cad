#!/usr/bin/env bash
# test_load_upsert: `sluice load` against the real PostgreSQL and a private
# broker: upserts land with their counts, offsets and report in the same
# transaction; hostile values round-trip byte for byte; identical rows count
# as unchanged; a restart resumes from sluice.offsets; a missing database
# or broker is a one-line error and exit 1.
source "$SLUICE_ROOT/tests/lib.sh"
source "$SLUICE_ROOT/loaders/testdata/load_lib.sh"
trap sl_cleanup EXIT

broker_start --topic mapped.t_vuln:2 --topic dlq.load:1 || exit 1
new_db load_upsert || exit 1
D=$(sl_tmpdir)
load_schemas "$D/schemas" "CREATE TABLE IF NOT EXISTS t_vuln (
	cve_id text PRIMARY KEY, vendor text, score numeric, tags text[],
	published timestamptz, known boolean, extra jsonb,
	_lineage jsonb, _loaded_at timestamptz);"

# Hostile strings: each lands in vendor, as a tags element and in extra.k.
python3 - "$D" <<'PY'
import hashlib, json, sys
d = sys.argv[1]
hostile = ["it's \"quoted\"", "back\\slash", "tab\there", "new\nline",
           "cr\rret", "\\N", "\\\\N", "日本語 🚀 café", ",{}\"", "", "NULL",
           "a\\tb", "end\\"]
with open(d + "/in.tsv", "w") as f, open(d + "/md5", "w") as m:
    for i, s in enumerate(hostile):
        key = "H%02d" % i
        env = {"v": 1, "table": "t_vuln", "op": "upsert",
               "key": {"cve_id": key},
               "row": {"cve_id": key, "vendor": s, "score": 9.8,
                       "tags": [s, "x"], "published": "2024-01-02T03:04:05Z",
                       "known": i % 2 == 0, "extra": {"k": s}},
               "lineage": {"source": "test", "record": i}}
        f.write(key + "\t" + json.dumps(env, ensure_ascii=False) + "\n")
        m.write(key + " " + hashlib.md5(s.encode()).hexdigest() + "\n")
PY
produce mapped.t_vuln "$D/in.tsv"
n=$(wc -l <"$D/md5")

bg load "$SLUICE_BIN" load --schemas "$D/schemas" --linger-ms 200
LOADER=$LAST_PID
check "loader loads $n rows" wait_q 30 "SELECT count(*) FROM t_vuln" "$n"
bad=0
while read -r key sum; do
	got=$(q "SELECT md5(vendor) || md5(tags[1]) || md5(extra->>'k') FROM t_vuln WHERE cve_id = '$key'")
	[ "$got" == "$sum$sum$sum" ] || { bad=$((bad + 1)); echo "# $key: $got"; }
done <"$D/md5"
check_eq "hostile values round-trip byte for byte (text, text[], jsonb)" "$bad" 0
check_eq "tags element count kept" "$(q "SELECT count(*) FROM t_vuln WHERE array_length(tags, 1) = 2")" "$n"
check_eq "booleans as t/f" "$(q "SELECT count(*) FILTER (WHERE known) || '/' || count(*) FILTER (WHERE NOT known) FROM t_vuln")" "7/6"
check_eq "numbers as text" "$(q "SELECT DISTINCT score FROM t_vuln")" "9.8"
check_eq "lineage stored" "$(q "SELECT _lineage->>'record' FROM t_vuln WHERE cve_id = 'H03'")" "3"
check_eq "_loaded_at set" "$(q "SELECT count(*) FROM t_vuln WHERE _loaded_at IS NOT NULL")" "$n"
check "report: inserted sums to the row count" wait_q 10 \
	"SELECT sum(inserted) FROM sluice.load_batches WHERE table_name = 't_vuln'" "$n"
check_eq "offsets stored per partition sum to the messages" \
	"$(q "SELECT sum(next_offset) FROM sluice.offsets WHERE consumer_group = 'sluice-load' AND topic = 'mapped.t_vuln'")" "$n"
check_eq "schema files recorded with a version" \
	"$(q "SELECT string_agg(file || ':' || version, ',' ORDER BY file) FROM sluice.schema_version")" \
	"sluice.sql:1,tables/test.sql:1"

# An identical row is unchanged, a changed one updated, a new one inserted.
python3 - "$D" <<'PY'
import json, sys
d = sys.argv[1]
def env(key, vendor):
    return {"v": 1, "table": "t_vuln", "op": "upsert", "key": {"cve_id": key},
            "row": {"cve_id": key, "vendor": vendor, "score": 9.8,
                    "tags": [vendor, "x"], "published": "2024-01-02T03:04:05Z",
                    "known": False, "extra": {"k": vendor}},
            "lineage": {"source": "test", "record": 99}}
with open(d + "/in2.tsv", "w") as f:
    # H01 unchanged apart from lineage; H02 changed; N01 new
    f.write("H01\t" + json.dumps(env("H01", "back\\slash")) + "\n")
    f.write("H02\t" + json.dumps(env("H02", "changed")) + "\n")
    f.write("N01\t" + json.dumps(env("N01", "new")) + "\n")
PY
produce mapped.t_vuln "$D/in2.tsv"
check "second round reported" wait_q 20 "SELECT sum(messages) FROM sluice.load_batches" "$((n + 3))"
check_eq "counts: inserted/updated/unchanged" \
	"$(q "SELECT sum(inserted) || '/' || sum(updated) || '/' || sum(unchanged) FROM sluice.load_batches")" \
	"$((n + 1))/1/1"
check_eq "updated row changed" "$(q "SELECT vendor FROM t_vuln WHERE cve_id = 'H02'")" "changed"

stop_pid "$LOADER"
check_eq "SIGTERM: exit 0" "$?" 0
grep -q "event=stopped" "$SL_LOGDIR/load.log" && ok "clean shutdown logged" || not_ok "clean shutdown logged"

# Restart: resumes from sluice.offsets, nothing is loaded twice.
batches=$(q "SELECT count(*) FROM sluice.load_batches")
bg load2 "$SLUICE_BIN" load --schemas "$D/schemas" --linger-ms 200
grep_assigned() { grep -q "event=assigned" "$SL_LOGDIR/load2.log"; }
check "restarted loader is assigned" wait_for 20 grep_assigned
sleep 2
check_eq "restart reloads nothing" "$(q "SELECT count(*) FROM sluice.load_batches")" "$batches"
check_eq "schemas not re-applied" "$(q "SELECT max(version) FROM sluice.schema_version")" "1"
stop_pid "$LAST_PID"

# Missing database / broker: one clear line, exit 1.
out=$(PGPORT=1 PGHOST=127.0.0.1 "$SLUICE_BIN" load --schemas "$D/schemas" 2>&1)
rc=$?
check_eq "no database: exit 1" "$rc" 1
[[ "$out" == *"could not connect to database"*"port=1"* ]] && ok "no database: message names the server" ||
	not_ok "no database: message names the server: $out"
out=$(SLUICE_BROKERS=127.0.0.1:1 timeout 60 "$SLUICE_BIN" load --schemas "$D/schemas" 2>&1 | grep -v "event=")
rc=${PIPESTATUS[0]}
[[ "$out" == *"could not reach kafka brokers 127.0.0.1:1"* ]] && ok "no broker: message names the brokers" ||
	not_ok "no broker: message names the brokers: $out"
sl_done
