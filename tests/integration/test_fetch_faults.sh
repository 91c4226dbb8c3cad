#!/usr/bin/env bash
# Rate limits, throttle answers and injected faults: the fixture's request
# log shows the configured rate never exceeded and every throttle answer
# waited out as its headers said; faults on every style still end with every
# record published.
source "$SLUICE_ROOT/tests/lib.sh"
trap sl_cleanup EXIT
source "$SLUICE_ROOT/tests/lib_fetch.sh"


broker_start || { not_ok "broker"; exit 1; }
# NVD: 5 requests per rolling 3 s; GitHub-style: 4 per 2 s
fixture_start --nvd-rate 5/3 --github-rate 4/2 || { not_ok "fixture"; exit 1; }
D=$(sl_tmpdir)

# --- the source's own limit keeps under NVD's: no 403 at all -----------------
total=$(fx_get '/nvd/rest/json/cves/2.0?resultsPerPage=1' | jq .totalResults)
curl -sf -X POST "$SLUICE_FIXTURE_URL/_fixture/reset" >/dev/null
cat >"$D/nvd.json" <<JSON
{"name": "nvd_rate", "base_url": "https://services.nvd.nist.gov",
 "request": {"path": "/rest/json/cves/2.0"}, "records": "\$.vulnerabilities",
 "paging": {"style": "offset", "param": "startIndex",
            "size_param": "resultsPerPage", "size": 40,
            "total": "\$.totalResults"},
 "rate_limit": {"requests": 5, "per_seconds": 3},
 "retry": {"throttle_status": [403, 429, 503], "base_ms": 200},
 "concurrency": 4}
JSON
fetch_once nvd "$D/nvd.json" "$SLUICE_FIXTURE_URL/nvd"
check_eq "rate: exit 0" "$?" 0
read -r pages recs msgs < <(raw_count raw.nvd_rate)
check_eq "rate: records" "$recs" "$total"
fx_get /_fixture/log >"$D/log1.json"
check_eq "rate: no request refused (403)" \
	"$(jq '[.[] | select(.status == 403)] | length' "$D/log1.json")" 0
worst=$(/usr/bin/python3 - "$D/log1.json" <<'PY'
import json, sys
t = sorted(e["t_ms"] for e in json.load(open(sys.argv[1])) if "/nvd/" in e["path"])
# requests in the busiest rolling 3000 ms window
print(max(sum(1 for u in t if s <= u < s + 3000) for s in t))
PY
)
[ "$worst" -le 5 ] && ok "rate: at most 5 requests in any 3 s ($worst)" ||
	not_ok "rate: $worst requests in one 3 s window"

# --- no limit configured: the fixture throttles with 403, we wait it out ------
curl -sf -X POST "$SLUICE_FIXTURE_URL/_fixture/reset" >/dev/null
sed 's/"name": "nvd_rate"/"name": "nvd_throttled"/; s/"rate_limit": {[^}]*},//' "$D/nvd.json" >"$D/nvd2.json"
fetch_once nvd2 "$D/nvd2.json" "$SLUICE_FIXTURE_URL/nvd"
check_eq "throttle 403: exit 0" "$?" 0
read -r pages recs msgs < <(raw_count raw.nvd_throttled)
check_eq "throttle 403: every record published" "$recs" "$total"
fx_get /_fixture/log >"$D/log2.json"
n403=$(jq '[.[] | select(.status == 403)] | length' "$D/log2.json")
[ "$n403" -gt 0 ] && ok "throttle 403: the fixture did throttle ($n403)" || not_ok "throttle 403: never throttled"

# --- GitHub-style 429 + retry-after: the next request waits as told -----------
curl -sf -X POST "$SLUICE_FIXTURE_URL/_fixture/reset" >/dev/null
cat >"$D/gh.json" <<JSON
{"name": "gh_throttle", "base_url": "https://api.github.com",
 "request": {"path": "/advisories"}, "records": "\$",
 "paging": {"style": "link", "size_param": "per_page", "size": 20}}
JSON
fetch_once gh "$D/gh.json" "$SLUICE_FIXTURE_URL/github"
check_eq "github 429: exit 0" "$?" 0
want=$(fx_get '/otx/api/v1/pulses/subscribed?limit=1' -H 'X-OTX-API-KEY: k' | jq .count)
read -r pages recs msgs < <(raw_count raw.gh_throttle)
check_eq "github 429: every record published" "$recs" "$want"
fx_get /_fixture/log >"$D/log3.json"
bad=$(/usr/bin/python3 - "$D/log3.json" <<'PY'
import json, sys
log = [e for e in json.load(open(sys.argv[1])) if e["path"].startswith("/github")]
t = [e["t_ms"] for e in log if e["status"] != 429]
# accepted requests: never more than 4 in any rolling 2 s window
over = max(sum(1 for u in t if s <= u < s + 2000) for s in t) > 4
print(int(over), sum(1 for e in log if e["status"] == 429))
PY
)
check_eq "github: never more than 4 accepted in 2 s" "${bad%% *}" 0
# issue 23: x-ratelimit pauses are counted, not logged one by one (the sync
# takes a few seconds: one info line; the rest are at debug)
check_eq "github: one ratelimit_pause line at info" \
	"$(grep -c 'event=ratelimit_pause' "$SL_LOGDIR/gh.log")" 1
pauses=$(sed -n 's/.*event=sync_done .*ratelimit_pauses=\([0-9]*\).*/\1/p' "$SL_LOGDIR/gh.log")
waited=$(sed -n 's/.*event=sync_done .*ratelimit_wait_ms=\([0-9]*\).*/\1/p' "$SL_LOGDIR/gh.log")
check "github: sync_done counts the pauses (${pauses:-none})" test "${pauses:-0}" -ge 2
check "github: sync_done sums their wait (${waited:-none} ms)" test "${waited:-0}" -gt 0

# --- injected faults on every style: every record still published ---------------
curl -sf -X POST "$SLUICE_FIXTURE_URL/_fixture/reset" >/dev/null
fx_fault '{"path_prefix": "/nvd/", "count": 2, "kind": "status", "status": 503, "retry_after": 1}'
fx_fault '{"path_prefix": "/nvd/", "count": 1, "kind": "reset"}'
fx_fault '{"path_prefix": "/nvd/", "count": 1, "kind": "truncate"}'
fx_fault '{"path_prefix": "/nvd/", "count": 1, "kind": "malformed"}'
sed 's/"name": "nvd_rate"/"name": "nvd_faults"/; s/"requests": 5, "per_seconds": 3/"requests": 100, "per_seconds": 1/' "$D/nvd.json" >"$D/nvd3.json"
fetch_once nvd3 "$D/nvd3.json" "$SLUICE_FIXTURE_URL/nvd"
check_eq "faults nvd: exit 0" "$?" 0
read -r pages recs msgs < <(raw_count raw.nvd_faults)
check_eq "faults nvd: every page published once" "$pages" $(((total + 39) / 40))
check_eq "faults nvd: every record" "$recs" "$total"
ids=$(raw_ids raw.nvd_faults cve.id | sort -u | wc -l)
check_eq "faults nvd: distinct CVEs" "$ids" "$total"
fx_get /_fixture/log >"$D/log4.json"
# after the 503 with Retry-After: 1, the retry came at least 1 s later
gap=$(/usr/bin/python3 - "$D/log4.json" <<'PY'
import json, sys
log = [e for e in json.load(open(sys.argv[1])) if e["path"].startswith("/nvd")]
first = next(e for e in log if e["status"] == 503)
later = [e["t_ms"] for e in log if e["t_ms"] > first["t_ms"]]
print(min(later) - first["t_ms"] if later else -1)
PY
)
[ "$gap" -ge 1000 ] && ok "faults nvd: Retry-After 1 s waited out ($gap ms)" || not_ok "faults nvd: next request after $gap ms"
grep -c 'event=retry' "$SL_LOGDIR/nvd3.log" | {
	read -r n; [ "$n" -ge 5 ] && ok "faults nvd: $n retries logged" || not_ok "faults nvd: $n retries"; }

# --- faults on every other style, each against its own fixture server -------
# A fixture server keeps one fault queue and one request log, so each style
# gets its own server and the seven syncs run at once: they spend their time
# waiting (for the stand-by lock's group join, for backoff), and share only
# the broker, on topics and groups of their own. Each style's checks are
# printed in a fixed order once all are done.
bundled_faults() { # STYLE: the bundled definition; a truncated body, a malformed page, a 500
	local style=$1 prefix base want pages recs msgs
	case $style in
	kev) prefix=/kev/; base=$SLUICE_FIXTURE_URL/kev; want=$(fx_get /kev/known_exploited_vulnerabilities.json | jq '.vulnerabilities|length') ;;
	tenable) prefix=/vulns/export/; base=$SLUICE_FIXTURE_URL; want=$(jq length "$SLUICE_ROOT/data/tenable/test_exports_vulns_chunk_1.json") ;;
	urlhaus) prefix=/urlhaus/; base=$SLUICE_FIXTURE_URL/urlhaus; want=$(fx_get /urlhaus/v1/urls/recent/ | jq '.urls|length') ;;
	esac
	curl -sf -X POST "$SLUICE_FIXTURE_URL/_fixture/reset" >/dev/null
	fx_fault "{\"path_prefix\": \"$prefix\", \"count\": 1, \"kind\": \"truncate\"}"
	fx_fault "{\"path_prefix\": \"$prefix\", \"count\": 1, \"kind\": \"malformed\"}"
	fx_fault "{\"path_prefix\": \"$prefix\", \"count\": 1, \"kind\": \"status\", \"status\": 500}"
	sed "s/\"base_ms\": *[0-9]*/\"base_ms\": 100/; s/\"name\": \"$style\"/\"name\": \"${style}_faults\"/" \
		"$SLUICE_ROOT/producers/sources/$style.json" >"$D/$style.json"
	fetch_once "$style" "$D/$style.json" "$base"
	check_eq "faults $style: exit 0" "$?" 0
	read -r pages recs msgs < <(raw_count "raw.${style}_faults")
	check_eq "faults $style: every record" "$recs" "$want"
}
# the other paging styles, each with a truncated body, a malformed page, a
# 500 and a reset injected: every record still published, exactly once
paging_faults() { # STYLE
	local style=$1 prefix base want def kind pages recs msgs
	case $style in
	rapid7) prefix=/rapid7/; base=$SLUICE_FIXTURE_URL/rapid7
		want=$(fx_get '/rapid7/api/3/vulnerabilities?size=1' | jq '.page.totalResources')
		def='"request": {"path": "/api/3/vulnerabilities"}, "records": "$.resources",
 "paging": {"style": "page", "param": "page", "size_param": "size", "size": 100, "total_pages": "$.page.totalPages"}' ;;
	crowdstrike) prefix=/crowdstrike/; base=$SLUICE_FIXTURE_URL/crowdstrike
		want=$(fx_get '/crowdstrike/spotlight/combined/vulnerabilities/v1?limit=1' | jq '.meta.pagination.total')
		def='"request": {"path": "/spotlight/combined/vulnerabilities/v1"}, "records": "$.resources",
 "paging": {"style": "cursor", "param": "after", "size_param": "limit", "size": 100, "next": "$.meta.pagination.after"}' ;;
	otx) prefix=/otx/; base=$SLUICE_FIXTURE_URL/otx
		want=$(fx_get '/otx/api/v1/pulses/subscribed?limit=1' -H 'X-OTX-API-KEY: k' | jq '.count')
		def='"request": {"path": "/api/v1/pulses/subscribed", "headers": {"X-OTX-API-KEY": "k"}}, "records": "$.results",
 "paging": {"style": "next_url", "size_param": "limit", "size": 40, "next": "$.next"}' ;;
	github) prefix=/github/; base=$SLUICE_FIXTURE_URL/github
		want=$(jq length "$SLUICE_ROOT/data/urlhaus/urlhaus_recent_records.json")
		def='"request": {"path": "/advisories"}, "records": "$",
 "paging": {"style": "link", "size_param": "per_page", "size": 100}' ;;
	esac
	printf '{"name": "%s_faults", "base_url": "https://example.invalid", %s,\n "retry": {"base_ms": 100, "max_ms": 2000, "max_attempts": 8}}\n' \
		"$style" "$def" >"$D/$style.json"
	curl -sf -X POST "$SLUICE_FIXTURE_URL/_fixture/reset" >/dev/null
	for kind in truncate malformed reset; do
		fx_fault "{\"path_prefix\": \"$prefix\", \"count\": 1, \"kind\": \"$kind\"}"
	done
	fx_fault "{\"path_prefix\": \"$prefix\", \"count\": 1, \"kind\": \"status\", \"status\": 500}"
	fetch_once "$style" "$D/$style.json" "$base"
	check_eq "faults $style: exit 0" "$?" 0
	read -r pages recs msgs < <(raw_count "raw.${style}_faults")
	check_eq "faults $style: every record exactly once" "$recs" "$want"
	check_eq "faults $style: all 4 faults were served" \
		"$(fx_get /_fixture/log | jq '[.[] | select(.fault != null and .fault != "")] | length')" 4
}
STYLES=(kev tenable urlhaus rapid7 crowdstrike otx github)
main_fixture=$SLUICE_FIXTURE_URL
declare -A FX RUN
for style in "${STYLES[@]}"; do
	fixture_start --nvd-rate 5/3 --github-rate 4/2 || { not_ok "fixture for $style"; exit 1; }
	FX[$style]=$SLUICE_FIXTURE_URL
done
SLUICE_FIXTURE_URL=$main_fixture
for style in "${STYLES[@]}"; do
	case $style in kev | tenable | urlhaus) fn=bundled_faults ;; *) fn=paging_faults ;; esac
	(SLUICE_FIXTURE_URL=${FX[$style]}; "$fn" "$style") >"$D/$style.checks" 2>&1 &
	RUN[$style]=$!
done
for style in "${STYLES[@]}"; do
	wait "${RUN[$style]}"
	cat "$D/$style.checks"
	n=$(grep -c '^not ok' "$D/$style.checks")
	SL_FAILED=$((SL_FAILED + n))
	case $style in kev | tenable | urlhaus) n=2 ;; *) n=3 ;; esac
	[ "$(grep -c '^\(not \)\?ok ' "$D/$style.checks")" -eq "$n" ] ||
		not_ok "faults $style: $n checks expected, see above"
done
sl_done
