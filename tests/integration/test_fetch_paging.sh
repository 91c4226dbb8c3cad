#!/usr/bin/env bash
# Every paging style end to end against the fixture API: exact page and
# record counts in raw.<source>, headers, chunking, secrets masked.
source "$SLUICE_ROOT/tests/lib.sh"
trap sl_cleanup EXIT
# a second sync of one source (kev, tenable) waits out the first one's
# stand-by lock session (less 1 s)
short_sessions
source "$SLUICE_ROOT/tests/lib_fetch.sh"


broker_start || { not_ok "broker"; exit 1; }
fixture_start --nvd-rate 1000/1 --github-rate 1000/1 || { not_ok "fixture"; exit 1; }
D=$(sl_tmpdir)
SRC=$SLUICE_ROOT/producers/sources

# --- KEV: one document, chunked over the message limit ---------------------
want=$(fx_get /kev/known_exploited_vulnerabilities.json | jq '.vulnerabilities|length')
sed 's/"interval_seconds"/"max_message_bytes": 500000, "interval_seconds"/' \
	"$SRC/kev.json" >"$D/kev.json"
if SLUICE_LOG_LEVEL=debug fetch_once kev "$D/kev.json" "$SLUICE_FIXTURE_URL/kev"; then ok "kev: sync exits 0"; else not_ok "kev: sync failed: $(tail -3 "$SL_LOGDIR/kev.log")"; fi
read -r pages recs msgs < <(raw_count raw.kev)
check_eq "kev: one page" "$pages" 1
check_eq "kev: every record published" "$recs" "$want"
check_eq "kev: split into 3 chunks of at most 500000 bytes" "$msgs" 3
hdrs=$(kcat -b "$SLUICE_BROKERS" -C -t raw.kev -e -q -f '%h\n' | head -1)
for h in source=kev run= page=0 chunk= url=http fetched_at= http_status=200 content_type= 'records_path=$.vulnerabilities'; do
	case "$hdrs" in *"$h"*) ok "kev: header $h" ;; *) not_ok "kev: header $h missing in $hdrs" ;; esac
done
big=$(kcat -b "$SLUICE_BROKERS" -C -t raw.kev -e -q -f '%S\n' | sort -n | tail -1)
[ "$big" -le 500000 ] && ok "kev: chunks within the limit" || not_ok "kev: chunk of $big bytes"
# chunks keep the envelope
env=$(kcat -b "$SLUICE_BROKERS" -C -t raw.kev -e -q -f '%s\n' | jq -r '.catalogVersion' | sort -u)
check_eq "kev: every chunk keeps the envelope" "$env" "$(fx_get /kev/known_exploited_vulnerabilities.json | jq -r .catalogVersion)"
# the page is split in its own buffer (no second copy of it), and its
# chunks, in order, hold exactly the page's records
grep -q 'event=page_split source=kev page=0 chunks=3 in_place=1' "$SL_LOGDIR/kev.log" &&
	ok "kev: split in the page's own buffer" ||
	not_ok "kev: not split in place: $(grep -m1 event=page_split "$SL_LOGDIR/kev.log")"
got=$(kcat -b "$SLUICE_BROKERS" -C -t raw.kev -e -q -J |
	jq -s -c 'sort_by(.key | split(":")[3] | split("/")[0] | tonumber) |
		.[].payload | fromjson | .vulnerabilities[]' | md5sum)
check_eq "kev: the chunks hold the page's records, in order" "$got" \
	"$(fx_get /kev/known_exploited_vulnerabilities.json | jq -c '.vulnerabilities[]' | md5sum)"
# bundled definition unchanged: the whole catalog fits in two messages
fetch_once kev2 "$SRC/kev.json" "$SLUICE_FIXTURE_URL/kev"
check_eq "kev bundled: exit 0" "$?" 0

# --- NVD: offset + total, parallel pages, secret query value masked ------------
total=$(fx_get '/nvd/rest/json/cves/2.0?resultsPerPage=1' | jq .totalResults)
cat >"$D/nvd.json" <<JSON
{"name": "nvd_offset", "base_url": "https://services.nvd.nist.gov",
 "request": {"path": "/rest/json/cves/2.0",
             "query": {"token": "\${env:SLUICE_TEST_SECRET}"}},
 "records": "\$.vulnerabilities",
 "paging": {"style": "offset", "param": "startIndex",
            "size_param": "resultsPerPage", "size": 50,
            "total": "\$.totalResults"},
 "rate_limit": {"requests": 100, "per_seconds": 1},
 "retry": {"throttle_status": [403, 429, 503]},
 "concurrency": 4}
JSON
export SLUICE_TEST_SECRET=s3cr3t-value-42
fetch_once nvd "$D/nvd.json" "$SLUICE_FIXTURE_URL/nvd"
check_eq "nvd: exit 0" "$?" 0
read -r pages recs msgs < <(raw_count raw.nvd_offset)
check_eq "nvd: pages = ceil(total/50)" "$pages" $(((total + 49) / 50))
check_eq "nvd: records = totalResults" "$recs" "$total"
# NVD tells its total before its records: the other pages start from
# page 0's first bytes (tests/integration/test_fetch_head_start.sh times it)
grep -q "event=pages_planned source=nvd_offset total=$total pages=$(((total + 49) / 50)) from=first_bytes" \
	"$SL_LOGDIR/nvd.log" && ok "nvd: pages planned from page 0's first bytes" ||
	not_ok "nvd: $(grep -m1 event=pages_planned "$SL_LOGDIR/nvd.log")"
ids=$(raw_ids raw.nvd_offset cve.id | sort -u | wc -l)
check_eq "nvd: distinct CVEs" "$ids" "$total"
if kcat -b "$SLUICE_BROKERS" -C -t raw.nvd_offset -e -q -f '%h\n' | grep -q s3cr3t; then
	not_ok "nvd: the secret leaked into a header"
else ok "nvd: no secret in headers"; fi
kcat -b "$SLUICE_BROKERS" -C -t raw.nvd_offset -e -q -f '%h\n' | grep -q 'token=\*\*\*' &&
	ok "nvd: url header masks the secret" || not_ok "nvd: url header not masked"
grep -q s3cr3t "$SL_LOGDIR/nvd.log" && not_ok "nvd: secret in the log" || ok "nvd: no secret in the log"
grep -q 'event=progress' "$SL_LOGDIR/nvd.log" || true

# --- Rapid7: page number + totalPages ------------------------------------------
r7=$(fx_get '/rapid7/api/3/vulnerabilities?size=100')
cat >"$D/r7.json" <<JSON
{"name": "rapid7", "base_url": "https://example.invalid",
 "request": {"path": "/api/3/vulnerabilities"}, "records": "\$.resources",
 "paging": {"style": "page", "param": "page", "size_param": "size",
            "size": 100, "total_pages": "\$.page.totalPages"}}
JSON
fetch_once r7 "$D/r7.json" "$SLUICE_FIXTURE_URL/rapid7"
check_eq "rapid7: exit 0" "$?" 0
read -r pages recs msgs < <(raw_count raw.rapid7)
check_eq "rapid7: pages = totalPages" "$pages" "$(jq .page.totalPages <<<"$r7")"
check_eq "rapid7: records = totalResources" "$recs" "$(jq .page.totalResources <<<"$r7")"
# Rapid7 tells its page count after its records, past the first 64 KiB:
# the other pages wait for the whole of page 0
grep -q "event=pages_planned source=rapid7 total=$(jq .page.totalPages <<<"$r7") pages=$(jq .page.totalPages <<<"$r7") from=first_page" \
	"$SL_LOGDIR/r7.log" && ok "rapid7: pages planned once page 0 is in" ||
	not_ok "rapid7: $(grep -m1 event=pages_planned "$SL_LOGDIR/r7.log")"
# page number, stop on empty (no total_pages)
sed 's/"name": "rapid7"/"name": "rapid7_empty"/; s/, "total_pages": "[^"]*"//' "$D/r7.json" >"$D/r7e.json"
fetch_once r7e "$D/r7e.json" "$SLUICE_FIXTURE_URL/rapid7"
read -r pages recs msgs < <(raw_count raw.rapid7_empty)
check_eq "rapid7 stop-on-short: records" "$recs" "$(jq .page.totalResources <<<"$r7")"

# --- CrowdStrike: cursor token in the body --------------------------------------
cs_total=$(fx_get '/crowdstrike/spotlight/combined/vulnerabilities/v1?limit=1' | jq .meta.pagination.total)
cat >"$D/cs.json" <<JSON
{"name": "crowdstrike", "base_url": "https://api.crowdstrike.com",
 "request": {"path": "/spotlight/combined/vulnerabilities/v1"},
 "records": "\$.resources",
 "paging": {"style": "cursor", "param": "after", "size_param": "limit",
            "size": 100, "next": "\$.meta.pagination.after"}}
JSON
fetch_once cs "$D/cs.json" "$SLUICE_FIXTURE_URL/crowdstrike"
check_eq "crowdstrike: exit 0" "$?" 0
read -r pages recs msgs < <(raw_count raw.crowdstrike)
check_eq "crowdstrike: pages" "$pages" $(((cs_total + 99) / 100))
check_eq "crowdstrike: records" "$recs" "$cs_total"

# --- OTX: next URL in the body, key header from the environment -----------------
otx_total=$(fx_get '/otx/api/v1/pulses/subscribed?limit=1' -H 'X-OTX-API-KEY: k' | jq .count)
cat >"$D/otx.json" <<JSON
{"name": "otx", "base_url": "https://otx.alienvault.com",
 "request": {"path": "/api/v1/pulses/subscribed"}, "records": "\$.results",
 "auth": {"type": "header", "name": "X-OTX-API-KEY", "env": "OTX_KEY"},
 "paging": {"style": "next_url", "size_param": "limit", "size": 40,
            "next": "\$.next"}}
JSON
OTX_KEY=otx-key-1 fetch_once otx "$D/otx.json" "$SLUICE_FIXTURE_URL/otx"
check_eq "otx: exit 0" "$?" 0
read -r pages recs msgs < <(raw_count raw.otx)
check_eq "otx: pages" "$pages" $(((otx_total + 39) / 40))
check_eq "otx: records" "$recs" "$otx_total"
fetch_once otx_nokey "$D/otx.json" "$SLUICE_FIXTURE_URL/otx"
check_eq "otx: an unset key variable is a usage error" "$?" 2

# --- GitHub: Link rel=next ----------------------------------------------------
cat >"$D/gh.json" <<JSON
{"name": "github", "base_url": "https://api.github.com",
 "request": {"path": "/advisories"}, "records": "\$",
 "paging": {"style": "link", "size_param": "per_page", "size": 100}}
JSON
fetch_once gh "$D/gh.json" "$SLUICE_FIXTURE_URL/github"
check_eq "github: exit 0" "$?" 0
read -r pages recs msgs < <(raw_count raw.github)
check_eq "github: pages" "$pages" $(((otx_total + 99) / 100))
check_eq "github: records (same dataset as OTX)" "$recs" "$otx_total"

# --- Tenable: export job ------------------------------------------------------
tn_total=$(jq length "$SLUICE_ROOT/data/tenable/test_exports_vulns_chunk_1.json")
# the bundled definition as it is (polls 200 ms apart, growing to 10 s)
cp "$SRC/tenable.json" "$D/tenable.json"
fetch_once tenable "$D/tenable.json" "$SLUICE_FIXTURE_URL"
check_eq "tenable: exit 0" "$?" 0
read -r pages recs msgs < <(raw_count raw.tenable)
check_eq "tenable: one page per chunk" "$pages" $(((tn_total + 49) / 50))
check_eq "tenable: records" "$recs" "$tn_total"
# the fixture makes one chunk ready per poll: a poll that brought chunks
# is followed by the next at poll_ms again, so no two polls of the job are
# far apart (growing the delay regardless, they reached 2.3 and 3.4 s)
fx_get /_fixture/log | jq -r '[.[] | select(.path | test("^/vulns/export/[^/]+/status$"))]
	| group_by(.path) | .[0] | [range(1; length) as $i | .[$i].t_ms - .[$i - 1].t_ms]
	| "\(length) \(max)"' >"$D/tn_polls"
read -r tn_gaps tn_max <"$D/tn_polls"
check "tenable: the job was polled until FINISHED ($tn_gaps gaps)" test "${tn_gaps:-0}" -ge 8
check "tenable: while chunks come, polls stay close (longest gap ${tn_max:-?} ms)" \
	test "${tn_max:-99999}" -lt 2000
# a second export while one is active resumes it (409 active_job_id)
curl -sf -X POST -H 'Content-Type: application/json' -d '{"num_assets":50}' \
	"$SLUICE_FIXTURE_URL/vulns/export" >/dev/null
fetch_once tenable2 "$D/tenable.json" "$SLUICE_FIXTURE_URL"
check_eq "tenable resume: exit 0" "$?" 0
grep -q 'event=export_resumed' "$SL_LOGDIR/tenable2.log" && ok "tenable: 409 resumed the active job" ||
	not_ok "tenable: no export_resumed in log"
read -r pages recs msgs < <(raw_count raw.tenable)
check_eq "tenable resume: records doubled" "$recs" $((tn_total * 2))

# --- URLhaus: single document ---------------------------------------------------
uh_total=$(fx_get /urlhaus/v1/urls/recent/ | jq '.urls|length')
fetch_once urlhaus "$SRC/urlhaus.json" "$SLUICE_FIXTURE_URL/urlhaus"
check_eq "urlhaus: exit 0" "$?" 0
read -r pages recs msgs < <(raw_count raw.urlhaus)
check_eq "urlhaus: records" "$recs" "$uh_total"

sl_done
