#!/usr/bin/env bash
# Paging that cannot run away (issue 23): a URL the server gave is followed
# as given (request.query is not appended to it again), and a chain whose
# server repeats itself ends with an error after at most two repeated
# pages, publishing nothing more. The fixture's paging faults make the
# servers misbehave: same_next (the next URL is the request's own),
# stuck_next (a new next URL serving the same page), last_arg (a repeated
# query parameter's last value wins).
source "$SLUICE_ROOT/tests/lib.sh"
trap sl_cleanup EXIT
source "$SLUICE_ROOT/tests/lib_fetch.sh"

broker_start || { not_ok "broker"; exit 1; }
fixture_start --github-rate 1000/1 || { not_ok "fixture"; exit 1; }
D=$(sl_tmpdir)
total=$(fx_get '/otx/api/v1/pulses/subscribed?limit=1' -H 'X-OTX-API-KEY: k' | jq .count)
export OTX_KEY=otx-key-1

# otx_def NAME [EXTRA JSON MEMBERS OF paging] [request.query JSON]
otx_def() {
	cat >"$D/$1.json" <<JSON
{"name": "$1", "base_url": "https://otx.alienvault.com",
 "request": {"path": "/api/v1/pulses/subscribed", "query": ${3:-{\}}},
 "records": "\$.results",
 "auth": {"type": "header", "name": "X-OTX-API-KEY", "env": "OTX_KEY"},
 "paging": {"style": "next_url", "size_param": "limit", "size": 40,
            "next": "\$.next"${2:+, $2}}}
JSON
}

# log_count JQ-FILTER: fixture log entries (since the last reset) matching
log_count() { fx_get /_fixture/log | jq "[.[] | select($1)] | length"; }

# --- a server that reads the last value of a repeated parameter -------------
# The incident: with request.query {"page": "1"} appended to every next URL
# (?limit=40&page=2&page=1) such a server served page 1 forever.
curl -sf -X POST "$SLUICE_FIXTURE_URL/_fixture/reset" >/dev/null
fx_fault '{"path_prefix": "/otx/", "kind": "last_arg", "count": 100}'
otx_def otx_last "" '{"page": "1"}'
fetch_once otx_last "$D/otx_last.json" "$SLUICE_FIXTURE_URL/otx"
check_eq "last_arg: the sync ends well" "$?" 0
read -r pages recs msgs < <(raw_count raw.otx_last)
check_eq "last_arg: every record once" "$recs" "$total"
check_eq "last_arg: one request per page" \
	"$(log_count '.path | startswith("/otx/")')" $(((total + 39) / 40))
check_eq "last_arg: no request repeats a query parameter" \
	"$(log_count '.query | split("&") | map(split("=")[0]) | (length != (unique | length))')" 0

# --- Link paging: the followed URL is not given request.query again ---------
curl -sf -X POST "$SLUICE_FIXTURE_URL/_fixture/reset" >/dev/null
cat >"$D/gh_query.json" <<JSON
{"name": "gh_query", "base_url": "https://api.github.com",
 "request": {"path": "/advisories", "query": {"per_page": "100"}},
 "records": "\$", "paging": {"style": "link"}}
JSON
fetch_once gh_query "$D/gh_query.json" "$SLUICE_FIXTURE_URL/github"
check_eq "link: exit 0" "$?" 0
read -r pages recs msgs < <(raw_count raw.gh_query)
check_eq "link: every record once" "$recs" "$total"
check_eq "link: no ?per_page=100&after=...&per_page=100 in the request log" \
	"$(log_count '.path | startswith("/github/")) | select(.query | [scan("per_page=")] | length > 1')" 0
check_eq "link: pages followed" "$(log_count '.path | startswith("/github/")')" $(((total + 99) / 100))

# --- the next URL is the request's own: never requested twice ---------------
curl -sf -X POST "$SLUICE_FIXTURE_URL/_fixture/reset" >/dev/null
fx_fault '{"path_prefix": "/otx/", "query_contains": "page=3", "kind": "same_next", "count": 50}'
otx_def otx_same
fetch_once otx_same "$D/otx_same.json" "$SLUICE_FIXTURE_URL/otx"
check_eq "same_next: the sync fails" "$?" 1
grep -q 'event=sync_failed.*already requested in this window' "$SL_LOGDIR/otx_same.log" &&
	ok "same_next: the error says the URL repeats" ||
	not_ok "same_next: $(grep -m1 event=sync_failed "$SL_LOGDIR/otx_same.log")"
check_eq "same_next: page 3 requested once" "$(log_count '.query | test("page=3")')" 1
read -r pages recs msgs < <(raw_count raw.otx_same)
check_eq "same_next: pages 1..3 published, nothing more" "$recs" 120

# --- a new next URL serving the same page: at most 2 repeats, none published --
curl -sf -X POST "$SLUICE_FIXTURE_URL/_fixture/reset" >/dev/null
fx_fault '{"path_prefix": "/otx/", "query_contains": "page=3", "kind": "stuck_next", "count": 50}'
otx_def otx_stuck
fetch_once otx_stuck "$D/otx_stuck.json" "$SLUICE_FIXTURE_URL/otx"
check_eq "stuck_next: the sync fails" "$?" 1
grep -q 'event=sync_failed.*repeats page 2 byte for byte' "$SL_LOGDIR/otx_stuck.log" &&
	ok "stuck_next: the error says the page repeats" ||
	not_ok "stuck_next: $(grep -m1 event=sync_failed "$SL_LOGDIR/otx_stuck.log")"
rep=$(log_count '.query | test("stuck=")')
check "stuck_next: at most 2 repeated pages requested ($rep)" test "$rep" -le 2
read -r pages recs msgs < <(raw_count raw.otx_stuck)
check_eq "stuck_next: no repeated page published" "$recs" 120
grep -q 'event=sync_done' "$SL_LOGDIR/otx_stuck.log" &&
	not_ok "stuck_next: sync_done logged" || ok "stuck_next: no sync_done"

# --- the same with Link paging: the pages' bodies are byte-identical --------
curl -sf -X POST "$SLUICE_FIXTURE_URL/_fixture/reset" >/dev/null
fx_fault '{"path_prefix": "/github/", "query_contains": "after=", "kind": "stuck_next", "count": 50}'
cat >"$D/gh_stuck.json" <<JSON
{"name": "gh_stuck", "base_url": "https://api.github.com",
 "request": {"path": "/advisories"}, "records": "\$",
 "paging": {"style": "link", "size_param": "per_page", "size": 100}}
JSON
fetch_once gh_stuck "$D/gh_stuck.json" "$SLUICE_FIXTURE_URL/github"
check_eq "link stuck: the sync fails" "$?" 1
rep=$(log_count '.query | test("stuck=")')
check "link stuck: at most 2 repeated pages requested ($rep)" test "$rep" -le 2
read -r pages recs msgs < <(raw_count raw.gh_stuck)
check_eq "link stuck: pages 0 and 1 published, no repeat" "$recs" 200

# --- page numbers the server ignores: page 0 again ends the sync --------------
# (a wrong paging.param is the usual cause; it used to run 1 000 000 pages)
curl -sf -X POST "$SLUICE_FIXTURE_URL/_fixture/reset" >/dev/null
cat >"$D/r7_ignored.json" <<JSON
{"name": "r7_ignored", "base_url": "https://r7.example",
 "request": {"path": "/api/3/vulnerabilities"}, "records": "\$.resources",
 "paging": {"style": "page", "param": "pg", "size_param": "size", "size": 100}}
JSON
fetch_once r7_ignored "$D/r7_ignored.json" "$SLUICE_FIXTURE_URL/rapid7"
check_eq "ignored page param: the sync fails" "$?" 1
grep -q 'event=sync_failed.*repeats page 0 byte for byte' "$SL_LOGDIR/r7_ignored.log" &&
	ok "ignored page param: the error says the page repeats" ||
	not_ok "ignored page param: $(grep -m1 event=sync_failed "$SL_LOGDIR/r7_ignored.log")"
check_eq "ignored page param: two requests" "$(log_count '.path | startswith("/rapid7/")')" 2
read -r pages recs msgs < <(raw_count raw.r7_ignored)
check_eq "ignored page param: page 0 published once" "$recs" 100

# --- paging.max_pages ---------------------------------------------------------
otx_def otx_max '"max_pages": 3'
fetch_once otx_max "$D/otx_max.json" "$SLUICE_FIXTURE_URL/otx"
check_eq "max_pages: the sync fails" "$?" 1
grep -q 'event=sync_failed.*more than 3 pages' "$SL_LOGDIR/otx_max.log" &&
	ok "max_pages: the error names the limit" ||
	not_ok "max_pages: $(grep -m1 event=sync_failed "$SL_LOGDIR/otx_max.log")"
read -r pages recs msgs < <(raw_count raw.otx_max)
check_eq "max_pages: 3 pages published" "$pages" 3

# --- resend_query: a named parameter is set again, replacing the URL's ------
curl -sf -X POST "$SLUICE_FIXTURE_URL/_fixture/reset" >/dev/null
otx_def otx_resend '"resend_query": ["tag"]' '{"tag": "t1", "other": "o1"}'
fetch_once otx_resend "$D/otx_resend.json" "$SLUICE_FIXTURE_URL/otx"
check_eq "resend_query: exit 0" "$?" 0
n=$(log_count '.path | startswith("/otx/")')
check_eq "resend_query: tag=t1 on every page" "$(log_count '.query | test("tag=t1")')" "$n"
check_eq "resend_query: other only on the first" "$(log_count '.query | test("other=o1")')" 1

# --- ${cursor?}: the whole parameter is left out on a first, full sync ------
curl -sf -X POST "$SLUICE_FIXTURE_URL/_fixture/reset" >/dev/null
otx_def otx_opt "" '{"modified_since": ">=${cursor?}"}'
sed -i 's/"paging"/"incremental": {"cursor": "dateadded"}, "paging"/' "$D/otx_opt.json"
fetch_once otx_opt "$D/otx_opt.json" "$SLUICE_FIXTURE_URL/otx"
check_eq "optional: exit 0" "$?" 0
check_eq "optional: no modified_since sent without a cursor" \
	"$(log_count '.query | test("modified_since")')" 0
read -r pages recs msgs < <(raw_count raw.otx_opt)
check_eq "optional: every record" "$recs" "$total"

sl_done
