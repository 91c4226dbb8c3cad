#!/usr/bin/env bash
# test_load_child_versions: newest-wins for a whole record, child sets
# included (docs/contracts.md, Versions).
#
# 1. The replay of issue 23: a newer NVD page goes through the real
#    transformer (nvd_cve map) and loader, then an older page of the same
#    CVEs is published to another raw partition (another loader batch, as
#    `sluice replay` or a re-fetch after an upstream rollback does). The
#    parents kept their newer last_modified before; their references,
#    weaknesses and CPE matches went back to the older sets (references
#    only the newer record had were deleted). They must stay at the newer
#    version, and the stale sets count as superseded.
# 2. The same rule with mapped envelopes on a child table alone: an equal
#    version is applied again, a newer one replaces, an older one (also an
#    empty older set) does nothing, a replace without a version is applied.
# 3. Race: while another transaction holds a set's version row and stores
#    a newer version, the loader's older replace waits for it and then
#    leaves the set alone.
source "$SLUICE_ROOT/tests/lib.sh"
source "$SLUICE_ROOT/loaders/testdata/load_lib.sh"
trap sl_cleanup EXIT

D=$(sl_tmpdir)
SL_LOGDIR=$D
broker_start --topic raw.nvd:2 --topic mapped.vulnerability:2 \
	--topic mapped.vulnerability_reference:2 --topic mapped.vulnerability_weakness:2 \
	--topic mapped.vulnerability_cpe_match:2 --topic mapped.t_child:1 \
	--topic dlq.transform:1 --topic dlq.load:1 || exit 1
new_db load_child_versions || exit 1
mkdir -p "$D/schemas/tables"
cp "$SLUICE_ROOT/schemas/sluice.sql" "$D/schemas/"
cp "$SLUICE_ROOT/schemas/tables/vulnerability.sql" "$D/schemas/tables/"
cat >"$D/schemas/tables/t_child.sql" <<'SQL'
CREATE TABLE IF NOT EXISTS t_child (
	parent text NOT NULL, item text NOT NULL, note text,
	_lineage jsonb, _loaded_at timestamptz,
	PRIMARY KEY (parent, item));
SQL

# page FILE LASTMOD KIND: an NVD API 2.0 page of 20 CVEs; KIND new has 3
# references, 2 weaknesses and 2 CPE matches per CVE, old has 1 of each
# (a subset of new's, with other tags).
page() {
	/usr/bin/python3 - "$@" <<'PY'
import json, sys
path, lastmod, kind = sys.argv[1:4]
new = kind == "new"
vulns = []
for i in range(20):
    cve = "CVE-2024-%04d" % (1000 + i)
    refs = [{"url": "https://example.org/%s/advisory" % cve, "source": "nvd",
             "tags": ["Vendor Advisory"] if new else ["Third Party Advisory"]}]
    if new:
        refs += [{"url": "https://example.org/%s/patch" % cve, "source": "vendor", "tags": ["Patch"]},
                 {"url": "https://example.org/%s/exploit" % cve, "source": "x", "tags": ["Exploit"]}]
    cwes = ["CWE-79", "CWE-89"] if new else ["CWE-79"]
    cpes = [{"vulnerable": True, "criteria": "cpe:2.3:a:ex:prod:1.%d:*:*:*:*:*:*:*" % k,
             "matchCriteriaId": "00000000-0000-0000-0000-%012d" % (i * 10 + k)}
            for k in range(2 if new else 1)]
    vulns.append({"cve": {
        "id": cve, "sourceIdentifier": "nvd@nist.gov",
        "published": "2024-01-01T00:00:00.000", "lastModified": lastmod,
        "vulnStatus": "Analyzed" if new else "Awaiting Analysis",
        "descriptions": [{"lang": "en", "value": "%s %s" % (cve, kind)}],
        "weaknesses": [{"source": "nvd@nist.gov", "type": "Primary",
                        "description": [{"lang": "en", "value": c} for c in cwes]}],
        "configurations": [{"nodes": [{"operator": "OR", "negate": False, "cpeMatch": cpes}]}],
        "references": refs}})
json.dump({"resultsPerPage": 20, "startIndex": 0, "totalResults": 20,
           "format": "NVD_CVE", "version": "2.0",
           "timestamp": "2024-06-01T00:00:00.000", "vulnerabilities": vulns},
          open(path, "w"))
PY
}
publish_page() { # publish_page FILE PARTITION RUN
	kcat -P -b "$SLUICE_BROKERS" -t raw.nvd -p "$2" -H source=nvd -H "run=$3" \
		-H page=0 -H chunk=0 -H 'records_path=$.vulnerabilities' "$1" 2>/dev/null
}
page "$D/new.json" 2024-06-01T10:00:00.000 new
page "$D/old.json" 2024-01-15T10:00:00.000 old

# children: every child row, one line each, as a comparable text
children() {
	q "SELECT 'ref ' || cve_id || ' ' || url || ' ' || array_to_string(tags, ';') FROM vulnerability_reference
	   UNION ALL SELECT 'cwe ' || cve_id || ' ' || cwe_id FROM vulnerability_weakness
	   UNION ALL SELECT 'cpe ' || cve_id || ' ' || match_criteria_id || ' ' || criteria FROM vulnerability_cpe_match
	   ORDER BY 1" | md5sum | cut -d' ' -f1
}

publish_page "$D/new.json" 0 1717236000000-1
bg transform "$SLUICE_BIN" transform "$SLUICE_ROOT/transformers/maps/nvd_cve.json"
bg load "$SLUICE_BIN" load --schemas "$D/schemas" --linger-ms 300
LOADER=$LAST_PID
check "newer page lands: 20 CVEs, 60 references, 40 weaknesses, 40 CPE matches" wait_q 60 \
	"SELECT (SELECT count(*) FROM vulnerability) || '/' || (SELECT count(*) FROM vulnerability_reference) || '/' ||
	 (SELECT count(*) FROM vulnerability_weakness) || '/' || (SELECT count(*) FROM vulnerability_cpe_match)" \
	"20/60/40/40"
before=$(children)
check_eq "each child set's version is stored" \
	"$(q "SELECT table_name || ':' || count(*) || ':' || min(version #>> '{}') FROM sluice.child_versions GROUP BY table_name ORDER BY table_name" | tr '\n' ' ')" \
	"public.vulnerability_cpe_match:20:2024-06-01T10:00:00.000Z public.vulnerability_reference:20:2024-06-01T10:00:00.000Z public.vulnerability_weakness:20:2024-06-01T10:00:00.000Z "

# The replay: the older page, on the other raw partition.
publish_page "$D/old.json" 1 1704000000000-1
check "older page consumed by every table's loader (40 messages each)" wait_q 60 \
	"SELECT string_agg(table_name || ':' || m, ',' ORDER BY table_name) FROM (SELECT table_name, sum(messages) AS m
	 FROM sluice.load_batches WHERE table_name LIKE 'vulnerability%' GROUP BY 1) s" \
	"vulnerability:40,vulnerability_cpe_match:40,vulnerability_reference:40,vulnerability_weakness:40"
check_eq "parents keep the newer version" \
	"$(q "SELECT count(*) FROM vulnerability WHERE last_modified = '2024-06-01T10:00:00Z' AND vuln_status = 'Analyzed'")" "20"
check_eq "child counts stay at the newer version (60/40/40)" \
	"$(q "SELECT (SELECT count(*) FROM vulnerability_reference) || '/' || (SELECT count(*) FROM vulnerability_weakness) || '/' || (SELECT count(*) FROM vulnerability_cpe_match)")" \
	"60/40/40"
check_eq "child rows are the newer record's, unchanged (tags included)" "$(children)" "$before"
check_eq "no child row deleted by the replay" \
	"$(q "SELECT coalesce(sum(deleted), 0) FROM sluice.load_batches WHERE table_name LIKE 'vulnerability_%'")" "0"
check_eq "the 60 stale child sets count as superseded" \
	"$(q "SELECT sum(superseded) FROM sluice.load_batches WHERE table_name LIKE 'vulnerability_%'")" "60"
check_eq "stored child set versions stay the newer" \
	"$(q "SELECT count(*) FROM sluice.child_versions WHERE version = '\"2024-06-01T10:00:00.000Z\"'")" "60"
grep -q "event=stale_child_sets" "$D/load.log" && ok "stale child sets logged" || not_ok "stale child sets logged"

# 2. The rule on a child table alone, one batch after another.
rep() { # rep VERSION|- PARENT ITEM:NOTE...
	/usr/bin/python3 - "$@" <<'PY'
import json, sys
ver, parent = sys.argv[1], sys.argv[2]
rows = [{"parent": parent, "item": a.split(":", 1)[0], "note": a.split(":", 1)[1]} for a in sys.argv[3:]]
env = {"v": 1, "table": "t_child", "op": "replace", "key": {"parent": parent},
       "rows": rows, "lineage": {"source": "test"}}
if ver != "-":
    env["version"] = json.loads(ver)
print(parent + "\t" + json.dumps(env))
PY
}
set_of() { q "SELECT coalesce(string_agg(item || '=' || note, ',' ORDER BY item), '') FROM t_child WHERE parent = '$1'"; }
step() { # step WANT_MESSAGES ENVELOPE-LINES...
	local want=$1; shift
	printf '%s\n' "$@" >"$D/step.tsv"
	produce mapped.t_child "$D/step.tsv"
	wait_q 20 "SELECT coalesce(sum(messages), 0) FROM sluice.load_batches WHERE table_name = 't_child'" "$want"
}
check "v5 set lands" step 2 "$(rep '"2024-05-01T00:00:00.000Z"' P1 a:1 b:1)" "$(rep 7 P2 a:7)"
check "older v4 set, alone in its batch" step 3 "$(rep '"2024-04-01T00:00:00.000Z"' P1 a:4)"
check_eq "an older set leaves the newer one" "$(set_of P1)" "a=1,b=1"
check "older empty set" step 4 "$(rep '"2024-04-30T23:59:59.999Z"' P1)"
check_eq "an older empty set deletes nothing" "$(set_of P1)" "a=1,b=1"
check "same version, other precision" step 5 "$(rep '"2024-05-01T00:00:00.000000Z"' P1 a:1 b:1 c:1)"
check_eq "an equal version is applied (the instant, not the text, compares)" "$(set_of P1)" "a=1,b=1,c=1"
check "numbers: older 6.5, then newer 10" step 7 "$(rep 6.5 P2 z:6)" "$(rep 10 P2 b:10)"
check_eq "numeric versions compare as numbers (10 after 7, 6.5 ignored)" "$(set_of P2)" "b=10"
check "a replace without a version" step 8 "$(rep - P1 x:0)"
check_eq "a replace without a version is applied" "$(set_of P1)" "x=0"
check "a newer set after it" step 9 "$(rep '"2024-06-01T00:00:00Z"' P1 n:6)"
check_eq "a newer set replaces" "$(set_of P1)" "n=6"
# one batch, two versions of P3 whose texts order the other way round
# (03:04:05Z written in +02:00 sorts after 03:30Z as text)
check "two versions of one set in one batch" step 11 \
	"$(rep '"2024-01-02T03:30:00.000Z"' P3 new:1)" "$(rep '"2024-01-02T05:04:05+02:00"' P3 old:1)"
check_eq "within a batch too, versions compare as instants" "$(set_of P3)" "new=1"
check_eq "stale sets of part 2 counted as superseded" \
	"$(q "SELECT sum(superseded) FROM sluice.load_batches WHERE table_name = 't_child'")" "4"

# 3. Race: another transaction holds P1's version row while it stores a
# newer version; the loader's older replace must wait, then see it.
(psql -qAtX -c "BEGIN" -c "SELECT 'start ' || extract(epoch FROM clock_timestamp())" \
	-c "UPDATE sluice.child_versions SET version = '\"2025-01-01T00:00:00Z\"'
	    WHERE table_name = 'public.t_child' AND parent_key = '{\"parent\": \"P1\"}'" \
	-c "SELECT pg_sleep(3)" -c "COMMIT" >"$D/race.out" 2>&1) &
RACE=$!
sleep 1
check "an older set while the row is held" step 12 "$(rep '"2024-12-01T00:00:00Z"' P1 old:1)"
wait "$RACE"
start=$(sed -n 's/^start //p' "$D/race.out")
# without the wait the batch is written about 1.3 s after the hold began
check_eq "the loader's batch waited for the held row (ended 3 s or more after the hold began)" \
	"$(q "SELECT max(finished_at) >= to_timestamp(${start:-0}) + interval '2900 ms' FROM sluice.load_batches WHERE table_name = 't_child'")" "t"
check_eq "after the wait, the newer stored version wins" "$(set_of P1)" "n=6"
check_eq "nothing dead-lettered" "$(consume_all dlq.load | wc -l)/$(consume_all dlq.transform | wc -l)" "0/0"
stop_pid "$LOADER"
sl_done
