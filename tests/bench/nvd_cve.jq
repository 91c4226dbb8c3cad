# The jq peer of transformers/maps/nvd_cve.json: the same mapping of an NVD
# CVE API 2.0 page to mapped.* envelopes (one vulnerability upsert and three
# child replaces per CVE), one compact envelope per line (run with jq -c).
def ts: if . == null then null
        elif test("(Z|[+-][0-9][0-9]:[0-9][0-9])$") then .
        else . + "Z" end;
def first_of(f): [f | select(. != null)] | .[0];
# child rows keep the first of each coalesce key, as the map does
def dedup(k): reduce .[] as $r ({seen: {}, out: []};
        ($r | k) as $k
        | if .seen[$k] then . else .seen[$k] = true | .out += [$r] end)
        | .out;
def lin($i): {source: "nvd", record: $i, map: "nvd_cve"};

.vulnerabilities | to_entries[] | .key as $i | .value.cve as $c
| ($c.id | gsub("^\\s+|\\s+$"; "") | ascii_upcase) as $id
| ($c.lastModified | ts) as $ver
| ($c.metrics // {}) as $m
| {v: 1, table: "vulnerability", op: "upsert", key: {cve_id: $id},
   row: {cve_id: $id, source_identifier: $c.sourceIdentifier,
         published: ($c.published | ts), last_modified: $ver,
         vuln_status: $c.vulnStatus,
         description: ([$c.descriptions[]? | select(.lang == "en") | .value]
                        | if length == 0 then null else join("\n") end),
         cvss_version: first_of($m.cvssMetricV40[0].cvssData.version,
                                $m.cvssMetricV31[0].cvssData.version,
                                $m.cvssMetricV30[0].cvssData.version,
                                $m.cvssMetricV2[0].cvssData.version),
         cvss_score: (first_of($m.cvssMetricV40[0].cvssData.baseScore,
                               $m.cvssMetricV31[0].cvssData.baseScore,
                               $m.cvssMetricV30[0].cvssData.baseScore,
                               $m.cvssMetricV2[0].cvssData.baseScore)
                      | if . == null then null else tostring end),
         cvss_severity: (first_of($m.cvssMetricV40[0].cvssData.baseSeverity,
                                  $m.cvssMetricV31[0].cvssData.baseSeverity,
                                  $m.cvssMetricV30[0].cvssData.baseSeverity,
                                  $m.cvssMetricV2[0].baseSeverity)
                         | if . == null then null else ascii_upcase end),
         cvss_vector: first_of($m.cvssMetricV40[0].cvssData.vectorString,
                               $m.cvssMetricV31[0].cvssData.vectorString,
                               $m.cvssMetricV30[0].cvssData.vectorString,
                               $m.cvssMetricV2[0].cvssData.vectorString),
         cisa_exploit_add: $c.cisaExploitAdd,
         metrics: $c.metrics},
   version: $ver, version_column: "last_modified", lineage: lin($i)},
  {v: 1, table: "vulnerability_reference", op: "replace", key: {cve_id: $id},
   rows: ([$c.references[]? | {url, source, tags, cve_id: $id}] | dedup(.url)),
   version: $ver, lineage: lin($i)},
  {v: 1, table: "vulnerability_weakness", op: "replace", key: {cve_id: $id},
   rows: ([$c.weaknesses[]?.description[]? | {cwe_id: (.value | gsub("^\\s+|\\s+$"; "")), cve_id: $id}] | dedup(.cwe_id)),
   version: $ver, lineage: lin($i)},
  {v: 1, table: "vulnerability_cpe_match", op: "replace", key: {cve_id: $id},
   rows: ([$c.configurations[]?.nodes[]?.cpeMatch[]?
          | {match_criteria_id: (.matchCriteriaId | ascii_upcase), criteria,
             vulnerable, version_start_including: .versionStartIncluding,
             version_start_excluding: .versionStartExcluding,
             version_end_including: .versionEndIncluding,
             version_end_excluding: .versionEndExcluding, cve_id: $id}]
          | dedup(.match_criteria_id)),
   version: $ver, lineage: lin($i)}
