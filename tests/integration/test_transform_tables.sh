#!/usr/bin/env bash
# test_transform_tables: every bundled map's rows, as `sluice check` prints
# them for the real pages in data/, fit the tables in schemas/tables/: each
# row becomes an INSERT through jsonb_populate_record on a real PostgreSQL,
# and the counts and a few values are read back.
source "$SLUICE_ROOT/tests/lib.sh"
trap sl_cleanup EXIT

new_db transform_tables || { not_ok "database created"; sl_done; exit; }
D=$(sl_tmpdir)
for f in "$SLUICE_ROOT"/schemas/tables/*.sql; do
	psql -qX -v ON_ERROR_STOP=1 -f "$f" >"$D/sql.log" 2>&1 &&
		ok "$(basename "$f") applies" || not_ok "$(basename "$f") applies: $(cat "$D/sql.log")"
done
for f in "$SLUICE_ROOT"/schemas/tables/*.sql; do
	psql -qX -v ON_ERROR_STOP=1 -f "$f" >"$D/sql.log" 2>&1 &&
		ok "$(basename "$f") applies twice" || not_ok "$(basename "$f") applies twice: $(cat "$D/sql.log")"
done

# load MAP DATA: check's envelopes -> INSERTs (upserts are plain inserts of
# distinct keys here; replace rows carry their parent key already)
load() {
	"$SLUICE_BIN" check "$SLUICE_ROOT/transformers/maps/$1" "$SLUICE_ROOT/data/$2" \
		>"$D/rows.jsonl" 2>"$D/check.log" || { not_ok "check $1: $(tail -3 "$D/check.log")"; return; }
	python3 - "$D/rows.jsonl" >"$D/load.sql" <<'PY'
import json, sys
print("\\set ON_ERROR_STOP 1")
print("BEGIN;")
seen = set()
def emit(table, row, lineage):
    lit = json.dumps(row).replace("'", "''")
    lin = json.dumps(lineage).replace("'", "''")
    print(f"INSERT INTO {table} SELECT (jsonb_populate_record(NULL::{table}, "
          f"'{lit}'::jsonb || jsonb_build_object('_lineage', '{lin}'::jsonb, "
          f"'_loaded_at', now()))).*;")
for line in open(sys.argv[1]):
    env = json.loads(line)
    t = env["table"]
    if env["op"] == "upsert":
        k = (t, json.dumps(env["key"], sort_keys=True))
        if k in seen:
            continue
        seen.add(k)
        emit(t, env["row"], env["lineage"])
    else:
        for r in env["rows"]:
            emit(t, r, env["lineage"])
print("COMMIT;")
PY
	psql -qX -f "$D/load.sql" >"$D/psql.log" 2>&1 &&
		ok "$1 rows insert into their tables" || not_ok "$1 rows insert: $(grep -m3 ERROR "$D/psql.log")"
}
load kev.json kev/known_exploited_vulnerabilities.json
load nvd_cve.json nvd/nvd_cves_combined_dedup.json
load urlhaus.json urlhaus/urlhaus_recent_records.json
load tenable.json tenable/test_exports_vulns_chunk_1.json

check_eq "kev rows" "$(q 'select count(*) from known_exploited_vulnerability')" "1404"
check_eq "kev cwe rows" "$(q 'select count(*) from known_exploited_vulnerability_cwe')" "1338"
check_eq "Log4Shell row" "$(q "select vendor_project, product, date_added, due_date, known_ransomware_campaign_use from known_exploited_vulnerability where cve_id = 'CVE-2021-44228'")" \
	"Apache|Log4j2|2021-12-10|2021-12-24|Known"
check_eq "nvd rows" "$(q 'select count(*) from vulnerability')" "476"
check_eq "nvd children" "$(q 'select (select count(*) from vulnerability_reference), (select count(*) from vulnerability_weakness), (select count(*) from vulnerability_cpe_match)')" "1054|527|1727"
check_eq "v2-only CVE score" "$(q "select cvss_score, cvss_severity from vulnerability where cve_id = 'CVE-1999-0019'")" "5|MEDIUM"
check_eq "urlhaus rows" "$(q 'select count(*) from threat_indicator')" "322"
check_eq "urlhaus times" "$(q "select first_seen at time zone 'UTC' from threat_indicator where external_id = '3767243'")" "2026-02-01 12:44:19"
check_eq "tenable findings and assets" "$(q 'select (select count(*) from finding), (select count(*) from asset)')" "344|6"
sl_done
