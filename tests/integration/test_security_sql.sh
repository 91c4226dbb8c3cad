#!/usr/bin/env bash
# Data that looks like SQL or COPY syntax lands as plain data, byte for
# byte: values such as "'); DROP TABLE x; --", "\.", "\N", tabs, newlines,
# backslashes and quotes go page -> sluice transform -> mapped.* -> sluice
# load -> PostgreSQL, in text, text[] and jsonb columns and in the key, and
# read back identical (compared as hex); the table the values name still
# exists.
source "$SLUICE_ROOT/tests/lib.sh"
trap sl_cleanup EXIT
D=$(sl_tmpdir)
SL_LOGDIR=$D

new_db sec_sql || { not_ok "database"; exit 1; }
broker_start --topic raw.sec_sql:1 --topic mapped.sec_sql_t:2 || { not_ok "broker"; exit 1; }
mkdir -p "$D/schemas/tables"
cp "$SLUICE_ROOT/schemas/sluice.sql" "$D/schemas/"
cat >"$D/schemas/tables/sec.sql" <<'SQL'
CREATE TABLE IF NOT EXISTS sec_sql_t (id text PRIMARY KEY, v text,
    tags text[], doc jsonb, _lineage jsonb, _loaded_at timestamptz);
CREATE TABLE IF NOT EXISTS x (canary int);
INSERT INTO x SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM x);
SQL
cat >"$D/map.json" <<'JSON'
{"name": "sec_sql", "source": "sec_sql", "records": "$.items",
 "table": "sec_sql_t", "coalesce": "id",
 "fields": {"id": {"path": "id", "required": true}, "v": "v",
            "tags": {"path": "tags", "type": "text[]"},
            "doc": {"path": "doc", "type": "jsonb"}}}
JSON
/usr/bin/python3 - "$D/page.json" <<'PY'
import json, sys
hostile = ["'); DROP TABLE x; --", "\\.", "\\N", "a\tb", "line1\nline2\r\n",
           "back\\slash", "\"quoted\"", "$$ $tag$ E'\\x00' ::text",
           "{\"a\",\"b\"}", "\\\\.\n\\.\n", "NULL", "", "\u00e9\u4e2d\U0001f600",
           "COPY x FROM PROGRAM 'id';", "\\t\\n\\\\N", "%s%n%x"]
items = [{"id": "k%02d-" % i + h, "v": h, "tags": [h, "plain", h + "\t"],
          "doc": {"v": h, h: [h]}} for i, h in enumerate(hostile)]
json.dump({"items": items}, open(sys.argv[1], "w"), ensure_ascii=False)
PY
want=$(jq '.items | length' "$D/page.json")
jq -c . "$D/page.json" | kcat -P -b "$SLUICE_BROKERS" -t raw.sec_sql \
	-H source=sec_sql -H run=1-1 -H page=0 -H chunk=0 -H 'records_path=$.items' 2>/dev/null
bg transform "$SLUICE_BIN" transform "$D/map.json"
bg load "$SLUICE_BIN" load --schemas "$D/schemas" --linger-ms 100
landed() { [ "$(q 'SELECT count(*) FROM sec_sql_t' 2>/dev/null)" = "$want" ]; }
wait_for 60 landed
check_eq "every hostile record landed" "$(q 'SELECT count(*) FROM sec_sql_t')" "$want"
check_eq "table x still exists, untouched" "$(q 'SELECT count(*) FROM x')" 1
check_eq "no dead letters" "$(kcat -C -b "$SLUICE_BROKERS" -t dlq.transform -e -q 2>/dev/null | wc -l)/$(kcat -C -b "$SLUICE_BROKERS" -t dlq.load -e -q 2>/dev/null | wc -l)" "0/0"

# byte for byte: the database's bytes (hex) against the page's
q "SELECT encode(convert_to(id, 'UTF8'), 'hex') || ' ' || encode(convert_to(v, 'UTF8'), 'hex') || ' ' || encode(convert_to(array_to_json(tags)::text, 'UTF8'), 'hex') || ' ' || encode(convert_to(doc::text, 'UTF8'), 'hex') FROM sec_sql_t ORDER BY id" >"$D/db.hex"
/usr/bin/python3 - "$D/page.json" "$D/db.hex" <<'PY' >"$D/cmp.out"
import json, sys
items = json.load(open(sys.argv[1]))["items"]
rows = {}
for line in open(sys.argv[2]):
    parts = line.rstrip("\n").split(" ")
    dec = [bytes.fromhex(p).decode() for p in parts]
    rows[dec[0]] = dec
for it in items:
    r = rows.get(it["id"])
    if r is None:
        print("missing %r" % it["id"]); continue
    if r[1] != it["v"]:
        print("v differs for %r: %r" % (it["id"], r[1]))
    if json.loads(r[2]) != it["tags"]:
        print("tags differ for %r: %r" % (it["id"], r[2]))
    if json.loads(r[3]) != it["doc"]:
        print("doc differs for %r: %r" % (it["id"], r[3]))
print("compared %d" % len(items))
PY
check_eq "every key, text, text[] and jsonb value is the page's, byte for byte" \
	"$(cat "$D/cmp.out")" "compared $want"
for p in "${SL_PIDS[@]:1}"; do stop_pid "$p"; done
sl_done
