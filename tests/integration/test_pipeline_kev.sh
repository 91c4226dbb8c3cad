#!/usr/bin/env bash
# The walking skeleton end to end: the full real CISA KEV catalog (1404
# records) flows fixture API -> sluice fetch -> raw.kev -> sluice transform ->
# mapped.* -> sluice load -> PostgreSQL. Checks exact counts (computed from
# the data file, not from sluice), exact values of real rows, lineage, the
# messages against their JSON Schemas, and that a second full run changes
# no row (the upsert is idempotent).
source "$SLUICE_ROOT/tests/lib.sh"
trap sl_cleanup EXIT
# the second sync of kev waits out the first one's stand-by lock session
# (less 1 s)
short_sessions
D=$(sl_tmpdir)
SL_LOGDIR=$D
KEV=$SLUICE_ROOT/data/kev/known_exploited_vulnerabilities.json
V=$SLUICE_ROOT/tests/tools/validate_json.py

new_db kev_e2e || { not_ok "database"; exit 1; }
broker_start --topic raw.kev:4 --topic mapped.known_exploited_vulnerability:4 \
	--topic mapped.known_exploited_vulnerability_cwe:4 || { not_ok "broker"; exit 1; }

read -r want_rows want_cwes want_known < <(/usr/bin/python3 -c "
import json; c = json.load(open('$KEV'))
v = c['vulnerabilities']
print(len(v), len({(x['cveID'], w) for x in v for w in x.get('cwes', [])}),
      sum(1 for x in v if x['knownRansomwareCampaignUse'] == 'Known'))")
check_eq "the data file holds the real 1404-record catalog" "$want_rows" 1404

bg load "$SLUICE_BIN" load --schemas "$SLUICE_ROOT/schemas" --linger-ms 200
bg transform "$SLUICE_BIN" transform "$SLUICE_ROOT/transformers/maps/kev.json"

"$SLUICE_BIN" fetch "$SLUICE_ROOT/producers/sources/kev.json" --once \
	--base-url "$SLUICE_FIXTURE_URL/kev" >"$D/fetch1.out" 2>"$D/fetch1.log"
check_eq "first fetch exits 0" "$?" 0

# messages the loader has taken for a table (sum over its run reports)
loaded() { q "SELECT coalesce(sum(messages), 0) FROM sluice.load_batches WHERE table_name = '$1'" 2>/dev/null; }
wait_loaded() { # TABLE N SECS
	local i
	for ((i = 0; i < $3 * 5; i++)); do
		[ "$(loaded "$1")" -ge "$2" ] 2>/dev/null && return 0
		sleep 0.2
	done
	return 1
}
wait_loaded known_exploited_vulnerability "$want_rows" 90
wait_loaded known_exploited_vulnerability_cwe "$want_rows" 30
check_eq "exact row count" "$(q 'SELECT count(*) FROM known_exploited_vulnerability')" "$want_rows"
check_eq "no duplicate keys" "$(q 'SELECT count(DISTINCT cve_id) FROM known_exploited_vulnerability')" "$want_rows"
check_eq "exact CWE child rows" "$(q 'SELECT count(*) FROM known_exploited_vulnerability_cwe')" "$want_cwes"
check_eq "ransomware use 'Known' count" \
	"$(q "SELECT count(*) FROM known_exploited_vulnerability WHERE known_ransomware_campaign_use = 'Known'")" "$want_known"
check_eq "CVE-2021-44228 vendor|product|added|due|ransomware" \
	"$(q "SELECT vendor_project, product, date_added, due_date, known_ransomware_campaign_use FROM known_exploited_vulnerability WHERE cve_id = 'CVE-2021-44228'")" \
	"Apache|Log4j2|2021-12-10|2021-12-24|Known"
check_eq "CVE-2021-44228 CWEs" \
	"$(q "SELECT string_agg(cwe_id, ',' ORDER BY cwe_id) FROM known_exploited_vulnerability_cwe WHERE cve_id = 'CVE-2021-44228'")" \
	"CWE-20,CWE-400,CWE-502"
check_eq "CVE-2021-44228 name" \
	"$(q "SELECT vulnerability_name FROM known_exploited_vulnerability WHERE cve_id = 'CVE-2021-44228'")" \
	"Apache Log4j2 Remote Code Execution Vulnerability"
check_eq "CVE-2023-4966 (Citrix Bleed) vendor|product|added|due" \
	"$(q "SELECT vendor_project, product, date_added, due_date FROM known_exploited_vulnerability WHERE cve_id = 'CVE-2023-4966'")" \
	"$(/usr/bin/python3 -c "
import json; v = [x for x in json.load(open('$KEV'))['vulnerabilities'] if x['cveID'] == 'CVE-2023-4966'][0]
print('|'.join([v['vendorProject'], v['product'], v['dateAdded'], v['dueDate']]))")"
check_eq "every row's lineage names raw.kev and its source" \
	"$(q "SELECT count(*) FROM known_exploited_vulnerability WHERE _lineage->>'topic' = 'raw.kev' AND _lineage->>'source' = 'kev' AND (_lineage->>'offset') IS NOT NULL")" "$want_rows"
check_eq "run report: every row inserted once" \
	"$(q "SELECT sum(inserted), sum(updated), sum(rejected) FROM sluice.load_batches WHERE table_name = 'known_exploited_vulnerability'")" "$want_rows|0|0"

# the messages on the wire match their schemas
kcat -C -b "$SLUICE_BROKERS" -t mapped.known_exploited_vulnerability -e -q >"$D/mapped.jsonl" 2>/dev/null
kcat -C -b "$SLUICE_BROKERS" -t mapped.known_exploited_vulnerability_cwe -e -q >>"$D/mapped.jsonl" 2>/dev/null
out=$(/usr/bin/python3 "$V" "$SLUICE_ROOT/schemas/messages/mapped_envelope.schema.json" "$D/mapped.jsonl" 2>&1)
check_eq "all $((want_rows * 2)) mapped envelopes validate" "$(tail -1 <<<"$out")" "# $((want_rows * 2)) documents, 0 problems"
kcat -C -b "$SLUICE_BROKERS" -t raw.kev -e -q -f '%h\n' 2>/dev/null | /usr/bin/python3 -c "
import json, sys
for line in sys.stdin:
    if line.strip():
        print(json.dumps(dict(kv.split('=', 1) for kv in line.strip().split(','))))" >"$D/headers.jsonl"
out=$(/usr/bin/python3 "$V" "$SLUICE_ROOT/schemas/messages/raw_page_headers.schema.json" "$D/headers.jsonl" 2>&1)
check "raw page headers validate ($(tail -1 <<<"$out"))" grep -q ", 0 problems" <<<"$out"
check "raw page headers present" test -s "$D/headers.jsonl"

# Second full run: nothing changes.
snap() { q "SELECT md5(string_agg(t::text, '' ORDER BY cve_id)) FROM (SELECT cve_id, vendor_project, product, vulnerability_name, date_added, short_description, required_action, due_date, known_ransomware_campaign_use, notes, catalog_version, catalog_released, xmin::text AS x FROM known_exploited_vulnerability) t"; }
snap_cwe() { q "SELECT md5(string_agg(cve_id || cwe_id || xmin::text, ',' ORDER BY cve_id, cwe_id)) FROM known_exploited_vulnerability_cwe"; }
before=$(snap) before_cwe=$(snap_cwe)
"$SLUICE_BIN" fetch "$SLUICE_ROOT/producers/sources/kev.json" --once \
	--base-url "$SLUICE_FIXTURE_URL/kev" >"$D/fetch2.out" 2>"$D/fetch2.log"
check_eq "second fetch exits 0" "$?" 0
wait_loaded known_exploited_vulnerability $((want_rows * 2)) 90
wait_loaded known_exploited_vulnerability_cwe $((want_rows * 2)) 30
check_eq "second run: the loader saw every row again" "$(loaded known_exploited_vulnerability)" $((want_rows * 2))
check_eq "second run: no row rewritten (same values, same xmin)" "$(snap)" "$before"
check_eq "second run: no CWE row rewritten" "$(snap_cwe)" "$before_cwe"
check_eq "second run: report says inserted|updated|unchanged" \
	"$(q "SELECT sum(inserted), sum(updated), sum(unchanged) FROM sluice.load_batches WHERE table_name = 'known_exploited_vulnerability'")" \
	"$want_rows|0|$want_rows"
check_eq "still exact row count" "$(q 'SELECT count(*) FROM known_exploited_vulnerability')" "$want_rows"
check_eq "no dead letters" "$(kcat -C -b "$SLUICE_BROKERS" -t dlq.transform -e -q 2>/dev/null | wc -l)$(kcat -C -b "$SLUICE_BROKERS" -t dlq.load -e -q 2>/dev/null | wc -l)" "00"

# sluice status agrees with the database and the broker
"$SLUICE_BIN" status --json >"$D/status.json" 2>"$D/status.err"
check_eq "sluice status --json exits 0" "$?" 0
st() { /usr/bin/python3 -c "import json,sys; s=json.load(open('$D/status.json')); print($1)"; }
check_eq "status: KEV table rows match the database" \
	"$(st "[t['rows'] for t in s['tables'] if t['table']=='known_exploited_vulnerability'][0]")" \
	"$(q 'SELECT count(*) FROM known_exploited_vulnerability')"
check_eq "status: inserted|unchanged totals match the run reports" \
	"$(st "'|'.join(str([t[k] for t in s['tables'] if t['table']=='known_exploited_vulnerability'][0]) for k in ('inserted','unchanged'))")" \
	"$want_rows|$want_rows"
check_eq "status: the loader has no lag on mapped topics" \
	"$(st "sum(t.get('lag', -1) for t in s['topics'] if t['topic'].startswith('mapped.'))")" 0
check_eq "status: the kev source's last sync is recorded" "$(st "sorted(s['sources'])")" "['kev']"

for p in "${SL_PIDS[@]:1}"; do stop_pid "$p"; done
sl_done
