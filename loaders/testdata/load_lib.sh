# loaders/testdata/load_lib.sh: helpers shared by tests/integration/
# test_load_*.sh (sourced after tests/lib.sh).

# load_schemas DIR SQL: a schema directory holding sluice.sql and one table
# file tables/test.sql with SQL
load_schemas() {
	mkdir -p "$1/tables"
	cp "$SLUICE_ROOT/schemas/sluice.sql" "$1/"
	printf '%s\n' "$2" >"$1/tables/test.sql"
}

# produce TOPIC FILE: each line of FILE is "KEY<TAB>VALUE"
produce() {
	kcat -P -b "$SLUICE_BROKERS" -t "$1" -K $'\t' -z lz4 -l "$2" 2>/dev/null
}

# env_lines: reads JSON lines of {"key":..., "env":...} on stdin (python
# dicts), writes KEY<TAB>compact-envelope lines
env_lines() {
	python3 -c '
import json, sys
for line in sys.stdin:
    line = line.strip()
    if not line:
        continue
    d = json.loads(line)
    env = d["env"]
    key = "\x1f".join(str(v) for v in env.get("key", {}).values())
    sys.stdout.write(key + "\t" + (env if isinstance(env, str) else json.dumps(env, ensure_ascii=False, separators=(",", ":"))) + "\n")
'
}

# wait_q SECONDS SQL WANT: polls until the query returns WANT
wait_q() {
	local secs=$1 i
	for ((i = 0; i < secs * 10; i++)); do
		[ "$(q "$2" 2>/dev/null)" == "$3" ] && return 0
		sleep 0.1
	done
	return 1
}

# consume_all TOPIC: every message value of TOPIC, one per line
consume_all() {
	kcat -C -b "$SLUICE_BROKERS" -t "$1" -o beginning -e -q 2>/dev/null
}

# The embedded broker holds a departed member's partitions until its session
# times out (also after a clean LeaveGroup, as observed with 2.0.2's mock),
# and a kill -9 leaves no LeaveGroup at all: keep sessions short in tests
# (3 s, from tests/lib.sh, for every process the test starts).
short_sessions

# gen_updates FILE N KEYS: N upsert envelopes for table t_load over KEYS
# keys (message i has key i % KEYS and value "v<i>"), so the final value of
# key k is v<the last i with i % KEYS == k>
gen_updates() {
	python3 - "$1" "$2" "$3" <<'PY'
import json, sys
path, n, keys = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with open(path, "w") as f:
    for i in range(n):
        k = i % keys
        env = {"v": 1, "table": "t_load", "op": "upsert", "key": {"id": k},
               "row": {"id": k, "val": "v%d" % i, "note": "tab\there \\N"},
               "lineage": {"source": "test", "record": i}}
        f.write("%d\t%s\n" % (k, json.dumps(env)))
PY
}

T_LOAD_SQL="CREATE TABLE IF NOT EXISTS t_load (id integer PRIMARY KEY,
	val text NOT NULL, note text, _lineage jsonb, _loaded_at timestamptz);"

# expected_final N KEYS: the md5 of "id|val" lines of the final table
expected_final() {
	python3 -c '
import hashlib, sys
n, keys = int(sys.argv[1]), int(sys.argv[2])
last = {}
for i in range(n):
    last[i % keys] = i
s = "".join("%d|v%d\n" % (k, last[k]) for k in sorted(last))
print(hashlib.md5(s.encode()).hexdigest())' "$1" "$2"
}
actual_final() {
	psql -qAtX -c "SELECT id || '|' || val FROM t_load ORDER BY id" | md5sum | cut -d' ' -f1
}
