#!/usr/bin/env bash
# Counted paging starts the other pages as soon as page 0's first bytes
# tell its total, not after page 0 has arrived: against a fixture that
# sends every answer at 500 KB/s (as over a slow link), page 1's request
# must reach the server while page 0 is still on its way, and every record
# must still land once.
source "$SLUICE_ROOT/tests/lib.sh"
trap sl_cleanup EXIT
source "$SLUICE_ROOT/tests/lib_fetch.sh"

RATE=500 # KB/s per answer
broker_start || { not_ok "broker"; exit 1; }
fixture_start --nvd-rate 1000/1 --bandwidth-kbps $RATE || { not_ok "fixture"; exit 1; }
D=$(sl_tmpdir)

total=$(fx_get '/nvd/rest/json/cves/2.0?resultsPerPage=1' | jq .totalResults)
size=200
# page 0's bytes, and how long the fixture takes to send them
read -r p0_bytes took < <(fx_get "/nvd/rest/json/cves/2.0?startIndex=0&resultsPerPage=$size" \
	-o /dev/null -w '%{size_download} %{time_total}\n')
p0_ms=$((p0_bytes / RATE))
[ "$p0_ms" -ge 500 ] && ok "page 0 takes ${p0_ms} ms to send ($p0_bytes bytes)" ||
	not_ok "page 0 too small to tell: $p0_bytes bytes"
took_ms=$(awk -v t="$took" 'BEGIN { printf "%d", t * 1000 }')
[ "$took_ms" -ge $((p0_ms * 8 / 10)) ] && ok "the fixture paces it: ${took_ms} ms" ||
	not_ok "the fixture sent page 0 in ${took_ms} ms, not at $RATE KB/s"
curl -sf -XPOST "$SLUICE_FIXTURE_URL/_fixture/reset" >/dev/null

cat >"$D/nvd.json" <<JSON
{"name": "nvd_head", "base_url": "https://services.nvd.nist.gov",
 "request": {"path": "/rest/json/cves/2.0"},
 "records": "\$.vulnerabilities",
 "paging": {"style": "offset", "param": "startIndex",
            "size_param": "resultsPerPage", "size": $size,
            "total": "\$.totalResults"},
 "rate_limit": {"requests": 100, "per_seconds": 1},
 "concurrency": 3}
JSON
SLUICE_LOG_LEVEL=info fetch_once nvd "$D/nvd.json" "$SLUICE_FIXTURE_URL/nvd"
check_eq "sync exits 0" "$?" 0
read -r pages recs msgs < <(raw_count raw.nvd_head)
check_eq "pages = ceil(total/$size)" "$pages" $(((total + size - 1) / size))
check_eq "records = totalResults" "$recs" "$total"
check_eq "distinct CVEs" "$(raw_ids raw.nvd_head cve.id | sort -u | wc -l)" "$total"
planned=$(grep -m1 'event=pages_planned' "$SL_LOGDIR/nvd.log")
case "$planned" in
*"total=$total pages=$(((total + size - 1) / size)) from=first_bytes"*) ok "pages planned from page 0's first bytes" ;;
*) not_ok "pages_planned: '$planned'" ;;
esac
# the server's log: when each page's request arrived
read -r t0 t1 n < <(curl -sf "$SLUICE_FIXTURE_URL/_fixture/log" | jq -r --arg s "$size" '
	[.[] | select(.path | endswith("/cves/2.0"))] as $l
	| [($l[] | select(.query | test("startIndex=0(&|$)")) | .t_ms),
	   ($l[] | select(.query | test("startIndex=" + $s + "(&|$)")) | .t_ms),
	   ($l | length)] | @tsv')
check_eq "one request per page" "$n" "$pages"
gap=$((t1 - t0))
if [ "$gap" -lt $((p0_ms / 2)) ]; then
	ok "page 1 asked ${gap} ms after page 0, which took ${p0_ms} ms to send"
else
	not_ok "page 1 asked ${gap} ms after page 0: it waited for page 0 (${p0_ms} ms to send)"
fi
sl_done
