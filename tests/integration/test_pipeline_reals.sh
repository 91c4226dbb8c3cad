#!/usr/bin/env bash
# test_pipeline_reals: a source's numbers reach PostgreSQL with their value.
# The real NVD sample (476 CVEs, thousands of CVSS reals) goes raw.nvd ->
# sluice transform -> mapped.* -> sluice load -> jsonb. Jansson's %.17g
# used to turn "baseScore": 7.3 into 7.2999999999999998, which jsonb keeps
# as a different numeric; now every CVE's metrics jsonb must equal the
# source's metrics exactly, and the envelopes on the wire must carry each
# real in its shortest form.
source "$SLUICE_ROOT/tests/lib.sh"
trap sl_cleanup EXIT
D=$(sl_tmpdir)
SL_LOGDIR=$D
NVD=$SLUICE_ROOT/data/nvd/nvd_cves_combined_dedup.json

command -v kcat >/dev/null || { not_ok "kcat is installed (scripts/install-deps.sh)"; exit 1; }
new_db reals || { not_ok "database"; exit 1; }
broker_start --topic raw.nvd:2 --topic mapped.vulnerability:2 \
	--topic mapped.vulnerability_reference:2 --topic mapped.vulnerability_weakness:2 \
	--topic mapped.vulnerability_cpe_match:2 || { not_ok "broker"; exit 1; }

# the page, one line; and the source's metrics of each CVE as SQL rows
/usr/bin/python3 - "$NVD" "$D" <<'PY'
import json, sys
page = json.load(open(sys.argv[1]))
with open(sys.argv[2] + "/page", "w") as f:
    f.write(json.dumps(page, separators=(",", ":")) + "\n")
with open(sys.argv[2] + "/want.sql", "w") as f:
    f.write("CREATE TABLE want (cve_id text PRIMARY KEY, metrics jsonb);\n")
    f.write("COPY want FROM stdin;\n")
    for v in page["vulnerabilities"]:
        m = json.dumps(v["cve"].get("metrics"), separators=(",", ":"))
        f.write(v["cve"]["id"] + "\t" + m.replace("\\", "\\\\") + "\n")
    f.write("\\.\n")
PY
psql -qX -v ON_ERROR_STOP=1 -f "$D/want.sql" >"$D/want.log" 2>&1 &&
	ok "the source's metrics are in table want" || not_ok "want table: $(cat "$D/want.log")"
want=$(q "SELECT count(*) FROM want")
check_eq "476 CVEs in the sample" "$want" 476

bg load "$SLUICE_BIN" load --schemas "$SLUICE_ROOT/schemas" --linger-ms 200
bg transform "$SLUICE_BIN" transform "$SLUICE_ROOT/transformers/maps/nvd_cve.json"
timeout 30 kcat -P -b "$SLUICE_BROKERS" -t raw.nvd -H source=nvd -H run=reals-1 \
	-H 'records_path=$.vulnerabilities' -X message.max.bytes=4000000 \
	<"$D/page" 2>"$D/kcat.log"
check_eq "kcat published the page" "$?" "0"

loaded() { q "SELECT coalesce(sum(messages), 0) FROM sluice.load_batches WHERE table_name = 'vulnerability'" 2>/dev/null; }
for ((i = 0; i < 90 * 5; i++)); do
	[ "$(loaded)" -ge "$want" ] 2>/dev/null && break
	sleep 0.2
done
check_eq "every CVE loaded" "$(q 'SELECT count(*) FROM vulnerability')" "$want"

# the defect as a user meets it
check_eq "CVE-2022-28766: baseScore 7.3 in jsonb, and in the numeric column" \
	"$(q "SELECT metrics->'cvssMetricV31'->0->'cvssData'->>'baseScore', cvss_score FROM vulnerability WHERE cve_id = 'CVE-2022-28766'")" \
	"7.3|7.3"
check_eq "the query on metrics = '7.3' finds what the source says" \
	"$(q "SELECT count(*) FROM vulnerability WHERE metrics->'cvssMetricV31'->0->'cvssData'->>'baseScore' = '7.3'")" \
	"$(q "SELECT count(*) FROM want WHERE metrics->'cvssMetricV31'->0->'cvssData'->>'baseScore' = '7.3'")"
check_eq "every CVE's metrics jsonb equals the source's, numerics exactly" \
	"$(q 'SELECT count(*) FROM vulnerability v JOIN want w USING (cve_id) WHERE v.metrics IS NOT DISTINCT FROM w.metrics')" \
	"$want"

# the wire: no %.17g artefacts (the sample's reals have at most 2 decimals)
timeout 30 kcat -C -b "$SLUICE_BROKERS" -t mapped.vulnerability -o beginning -e -q \
	>"$D/mapped.jsonl" 2>/dev/null
check_eq "$want envelopes on mapped.vulnerability" "$(wc -l <"$D/mapped.jsonl")" "$want"
check_eq "no real on the wire has more than 2 decimals" \
	"$(grep -cE '(":|[[,])-?[0-9]+\.[0-9]{3,}([eE][-+]?[0-9]+)?[],}]' "$D/mapped.jsonl")" 0
check_eq "no dead letters" "$(kcat -C -b "$SLUICE_BROKERS" -t dlq.transform -e -q 2>/dev/null | wc -l)$(kcat -C -b "$SLUICE_BROKERS" -t dlq.load -e -q 2>/dev/null | wc -l)" "00"

for p in "${SL_PIDS[@]:1}"; do stop_pid "$p"; done
sl_done
