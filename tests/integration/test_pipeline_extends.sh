#!/usr/bin/env bash
# test_pipeline_extends: a user extends the bundled NVD map instead of
# copying it (issue 28): their map (in their own directory) names
# "extends": "nvd_cve", adds a risk column computed by a Lua script and a
# child table of their own, and drops the CPE matches; their own schema
# directory, given as a second --schemas, adds the column to the bundled
# vulnerability table and creates their table. Their record script emit()s
# one more note per CVE (lang "x-risk", chars the risk x 10), a row that
# joins the CVE's note set and must land in PostgreSQL with the others. The real NVD sample goes
# raw.nvd -> sluice transform -> mapped.* -> sluice load, and every CVE's
# risk must equal the one computed here from the source, independently.
source "$SLUICE_ROOT/tests/lib.sh"
trap sl_cleanup EXIT
D=$(sl_tmpdir)
SL_LOGDIR=$D
NVD=$SLUICE_ROOT/data/nvd/nvd_cves_combined_dedup.json

command -v kcat >/dev/null || { not_ok "kcat is installed (scripts/install-deps.sh)"; exit 1; }
new_db extends || { not_ok "database"; exit 1; }
broker_start --topic raw.nvd:2 --topic mapped.vulnerability:2 \
	--topic mapped.vulnerability_reference:2 --topic mapped.vulnerability_weakness:2 \
	--topic mapped.vulnerability_note:2 || { not_ok "broker"; exit 1; }

mkdir -p "$D/maps" "$D/schemas/tables"
cat >"$D/maps/nvd_risk.json" <<'MAP'
{
  "extends": "nvd_cve",
  "name": "nvd_risk",
  "remove": ["vulnerability_cpe_match"],
  "script": "emit({lang = 'x-risk', chars = math.floor(tonumber(row.risk) * 10 + 0.5)}, 'vulnerability_note')",
  "fields": {
    "risk": {"type": "numeric",
             "script": "local s = 0\nlocal m = record.metrics\nfor _, x in ipairs(m and m.cvssMetricV31 or {}) do\n  s = math.max(s, x.cvssData.baseScore)\nend\nif record.cisaExploitAdd then s = s + 2 end\nreturn math.min(s, 10)"}
  },
  "children": [
    {"table": "vulnerability_note", "records": "descriptions",
     "coalesce": ["lang"],
     "fields": {"lang": {"path": "lang", "required": true},
                "chars": {"type": "integer", "script": "utf8.len(record.value) or #record.value"}}}
  ]
}
MAP
cat >"$D/schemas/tables/10_vulnerability_risk.sql" <<'SQL'
ALTER TABLE vulnerability ADD COLUMN IF NOT EXISTS risk numeric;
CREATE TABLE IF NOT EXISTS vulnerability_note (
        cve_id text NOT NULL,
        lang text NOT NULL,
        chars integer,
        _lineage jsonb,
        _loaded_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX IF NOT EXISTS vulnerability_note_key
        ON vulnerability_note (cve_id, lang);
SQL

"$SLUICE_BIN" lint --effective "$D/maps/nvd_risk.json" >"$D/effective.json" 2>"$D/lint.err"
check_eq "lint --effective exits 0" "$?" "0"
check_eq "the effective map: the base's fields, the risk, the user's child, no CPE matches" \
	"$(/usr/bin/python3 -c '
import json, sys
m = json.load(open(sys.argv[1]))
print(m["name"], "cve_id" in m["fields"], "risk" in m["fields"],
      sorted(c["table"] for c in m["children"]), "extends" in m)' "$D/effective.json")" \
	"nvd_risk True True ['vulnerability_note', 'vulnerability_reference', 'vulnerability_weakness'] False"

# the page, one line; each CVE's risk and notes computed from the source
/usr/bin/python3 - "$NVD" "$D" <<'PY'
import json, sys
page = json.load(open(sys.argv[1]))
with open(sys.argv[2] + "/page", "w") as f:
    f.write(json.dumps(page, separators=(",", ":")) + "\n")
with open(sys.argv[2] + "/want.sql", "w") as f:
    f.write("CREATE TABLE want (cve_id text PRIMARY KEY, risk numeric, notes int, risk10 int);\n")
    f.write("COPY want FROM stdin;\n")
    for v in page["vulnerabilities"]:
        c = v["cve"]
        s = max([m["cvssData"]["baseScore"] for m in c.get("metrics", {}).get("cvssMetricV31", [])] or [0])
        if c.get("cisaExploitAdd"):
            s += 2
        s = min(s, 10)
        f.write("%s\t%r\t%d\t%d\n" % (c["id"], s, len({d["lang"] for d in c.get("descriptions", [])}),
                                       int(s * 10 + 0.5)))
    f.write("\\.\n")
PY
psql -qX -v ON_ERROR_STOP=1 -f "$D/want.sql" >"$D/want.log" 2>&1 &&
	ok "the expected risks are in table want" || not_ok "want table: $(cat "$D/want.log")"
want=$(q "SELECT count(*) FROM want")
check_eq "476 CVEs in the sample" "$want" 476

bg load "$SLUICE_BIN" load --schemas "$SLUICE_ROOT/schemas" --schemas "$D/schemas" --linger-ms 200
bg transform "$SLUICE_BIN" transform "$D/maps/nvd_risk.json"
timeout 30 kcat -P -b "$SLUICE_BROKERS" -t raw.nvd -H source=nvd -H run=extends-1 \
	-H 'records_path=$.vulnerabilities' -X message.max.bytes=4000000 \
	<"$D/page" 2>"$D/kcat.log"
check_eq "kcat published the page" "$?" "0"

loaded() { q "SELECT coalesce(sum(messages), 0) FROM sluice.load_batches WHERE table_name = '$1'" 2>/dev/null; }
for ((i = 0; i < 90 * 5; i++)); do
	[ "$(loaded vulnerability)" -ge "$want" ] && [ "$(loaded vulnerability_note)" -ge "$want" ] && break
	sleep 0.2
done
check_eq "the user's schema file was applied as a migration of its directory" \
	"$(q "SELECT version || ' ' || name FROM sluice.schema_migrations WHERE dir = '$D/schemas'")" "10 10_vulnerability_risk.sql"
check_eq "every CVE loaded" "$(q 'SELECT count(*) FROM vulnerability')" "$want"
check_eq "every CVE's risk equals the one computed from the source" \
	"$(q 'SELECT count(*) FROM vulnerability v JOIN want w USING (cve_id) WHERE v.risk = w.risk')" "$want"
check_eq "some CVEs carry the KEV bonus (the script's branch ran)" \
	"$(q "SELECT count(*) > 0 FROM vulnerability v JOIN want w USING (cve_id) WHERE v.risk = 10")" "t"
check_eq "the user's table holds each CVE's description languages and the emitted note" \
	"$(q 'SELECT count(*) FROM vulnerability_note')" "$(q 'SELECT sum(notes) + count(*) FROM want')"
check_eq "chars counted by the script" \
	"$(q "SELECT count(*) FROM vulnerability_note WHERE lang <> 'x-risk' AND (chars IS NULL OR chars <= 0)")" "0"
check_eq "every CVE has the note its record script emitted, with its risk x 10" \
	"$(q "SELECT count(*) FROM vulnerability_note n JOIN want w USING (cve_id) WHERE n.lang = 'x-risk' AND n.chars = w.risk10")" "$want"
check_eq "the emitted note is in the CVE's note set (with the record's lineage)" \
	"$(q "SELECT count(*) FROM vulnerability_note WHERE lang = 'x-risk' AND _lineage->>'map' = 'nvd_risk'")" "$want"
check_eq "the removed child table got nothing" \
	"$(q "SELECT count(*) FROM vulnerability_cpe_match")" "0"
check_eq "lineage names the user's map" \
	"$(q "SELECT DISTINCT _lineage->>'map' FROM vulnerability")" "nvd_risk"
check_eq "no dead letters" "$(kcat -C -b "$SLUICE_BROKERS" -t dlq.transform -e -q 2>/dev/null | wc -l)$(kcat -C -b "$SLUICE_BROKERS" -t dlq.load -e -q 2>/dev/null | wc -l)" "00"

for p in "${SL_PIDS[@]:1}"; do stop_pid "$p"; done
sl_done
