#!/usr/bin/env bash
# A fetch's progress as an operator watches it: on a terminal the live
# line stays below the log lines instead of being written over by them,
# and under a request limit the ETA is the limit's from the first line
# (it used to start from the burst the limit's window lets through, 0:11,
# then jump to 1:33) and says that the limit bounds it.
source "$SLUICE_ROOT/tests/lib.sh"
trap sl_cleanup EXIT
source "$SLUICE_ROOT/tests/lib_fetch.sh"

broker_start || { not_ok "broker"; exit 1; }
fixture_start --nvd-rate 1000/1 || { not_ok "fixture"; exit 1; }
D=$(sl_tmpdir)
: "${SL_LOGDIR:=$(sl_tmpdir)}"

total=$(fx_get '/nvd/rest/json/cves/2.0?resultsPerPage=1' | jq .totalResults)
pages=$(((total + 19) / 20))
# 4 requests a second: the window lets 4 through at once, then one every
# 250 ms; progress lines every second
cat >"$D/nvd.json" <<JSON
{"name": "nvd_progress", "base_url": "https://services.nvd.nist.gov",
 "request": {"path": "/rest/json/cves/2.0"},
 "records": "\$.vulnerabilities",
 "paging": {"style": "offset", "param": "startIndex",
            "size_param": "resultsPerPage", "size": 20,
            "total": "\$.totalResults"},
 "rate_limit": {"requests": 4, "per_seconds": 1},
 "concurrency": 2, "progress_seconds": 1}
JSON

# --- not a terminal: event=progress lines -----------------------------------
fetch_once plain "$D/nvd.json" "$SLUICE_FIXTURE_URL/nvd"
check_eq "plain: sync exits 0" "$?" 0
grep 'event=progress ' "$SL_LOGDIR/plain.log" >"$D/progress"
check "plain: progress lines logged" test -s "$D/progress"
# every line: eta_s is at least the pages left at 4 a second, and the
# bound is named
bad=$(awk -v total="$pages" '{
	p = ""; e = ""; b = ""
	for (i = 1; i <= NF; i++) {
		split($i, kv, "=")
		if (kv[1] == "pages") p = kv[2]
		if (kv[1] == "eta_s") e = kv[2]
		if (kv[1] == "eta_bound") b = kv[2]
	}
	if (b == "" || e + 0.5 < (total - p) / 4) print
}' "$D/progress")
check_eq "plain: every ETA at least the pages left at the limit's rate, its bound named" "$bad" ""
check "plain: the first ETA is the rate limit's" \
	grep -q 'eta_bound=ratelimit' <(head -1 "$D/progress")

# --- a terminal: the live line and the log lines ----------------------------
# script(1) gives the fetcher a pseudo-terminal for stderr; debug logging
# makes log lines arrive while the live line is drawn
SLUICE_BASE="$SLUICE_FIXTURE_URL/nvd" SLUICE_SRC="$D/nvd.json" SLUICE_LOG_LEVEL=debug \
	timeout 120 script -qefc '"$SLUICE_BIN" fetch "$SLUICE_SRC" --once --base-url "$SLUICE_BASE" >/dev/null' \
	"$D/tty.raw" >/dev/null 2>&1
check_eq "tty: sync exits 0" "$?" 0
/usr/bin/python3 - "$D/tty.raw" >"$D/tty.check" <<'PY'
import re, sys
raw = open(sys.argv[1], "rb").read().decode("utf-8", "replace")
raw = raw.replace("\r\n", "\n")  # the terminal's own line ends
live = re.compile(r"nvd_progress: +\d+% \d+/\d+ pages[^\r\n]*")
starts = [m.start() for m in re.finditer(r"ts=\d{4}-\d\d-\d\dT", raw)]
# a log line begins a line, or follows the live line's erasure
bad = [i for i in starts
       if i > 0 and raw[i - 1] != "\n" and raw[max(0, i - 4):i] != "\r\x1b[K"]
print("log_lines", len(starts))
draws = live.findall(raw)
print("live_draws", len(draws))
print("overwritten", len(bad))
for i in bad[:3]:
    print("example", repr(raw[max(0, i - 80):i + 40]))
print("last_live", draws[-1] if draws else "")
print("eta_says_limit", int(any("(rate limit)" in d for d in draws)))
PY
cat "$D/tty.check" | sed 's/^/# /'
check "tty: log lines were written" awk '$1 == "log_lines" && $2 > 5' "$D/tty.check"
check "tty: the live line was drawn" awk '$1 == "live_draws" && $2 > 0' "$D/tty.check"
check_eq "tty: no log line written over the live line" "$(awk '$1 == "overwritten" { print $2 }' "$D/tty.check")" 0
check_eq "tty: the last live line says every page is done" \
	"$(awk '$1 == "last_live" { print $2, $3, $4 }' "$D/tty.check")" "nvd_progress: 100% $pages/$pages"
check_eq "tty: the ETA says the rate limit bounds it" "$(awk '$1 == "eta_says_limit" { print $2 }' "$D/tty.check")" 1
