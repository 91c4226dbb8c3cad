#!/usr/bin/env bash
# Upstream faults test_fetch_faults.sh does not cover: a 5xx storm, a storm
# of connection resets and a stall past the transfer timeout are retried
# until every record is published, exactly once; a storm longer than
# retry.max_attempts fails the sync cleanly and the next sync publishes
# everything. Pages that are bad for good (over limits.max_page_bytes,
# nested deeper than limits.max_depth, more than limits.max_records, not
# UTF-8) fail the sync with an error naming the limit or the fault, are
# never published, and the size and depth ones are not retried, when the
# page is the only way forward (a single document, a first page); one page
# of a known set that stays malformed is dead-lettered to dlq.fetch with
# its exact bytes, and every other page still lands.
source "$SLUICE_ROOT/tests/lib.sh"
trap sl_cleanup EXIT
D=$(sl_tmpdir)
SL_LOGDIR=$D
KEV=$SLUICE_ROOT/data/kev/known_exploited_vulnerabilities.json

figures() {
	[ -n "${SLUICE_FIGURES:-}" ] || return 0
	echo "$1" >>"$SLUICE_FIGURES"
}

# raw_ids TOPIC: "RECORDS DISTINCT" cveIDs over every message of TOPIC
raw_ids() {
	kcat -b "$SLUICE_BROKERS" -C -t "$1" -e -q -J 2>/dev/null | /usr/bin/python3 -c '
import json, sys
ids = []
for line in sys.stdin:
    m = json.loads(line)
    ids += [r["cveID"] for r in json.loads(m["payload"])["vulnerabilities"]]
print(len(ids), len(set(ids)))'
}
raw_msgs() { kcat -b "$SLUICE_BROKERS" -C -t "$1" -e -q 2>/dev/null | grep -c .; }
fx_fault() { curl -sf -X POST -d "$1" "$SLUICE_FIXTURE_URL/_fixture/faults" >/dev/null; }
fx_reset() { curl -sf -X POST "$SLUICE_FIXTURE_URL/_fixture/reset" >/dev/null; }
fx_requests() { curl -sf "$SLUICE_FIXTURE_URL/_fixture/log" | jq "[.[] | select(.path | startswith(\"$1\"))] | length"; }

# kev_def NAME MAX_ATTEMPTS EXTRA: a KEV source named NAME, quick retries
kev_def() {
	cat >"$D/$1.json" <<JSON
{"name": "$1", "base_url": "http://unused.invalid",
 "request": {"path": "/known_exploited_vulnerabilities.json"},
 "records": "\$.vulnerabilities",
 "retry": {"base_ms": 50, "max_ms": 200, "max_attempts": $2}$3}
JSON
}
fetch() { # NAME BASE: one sync; the exit code is the fetcher's
	timeout 120 "$SLUICE_BIN" fetch "$D/$1.json" --once --base-url "$2" \
		>"$D/$1.out" 2>>"$D/$1.log"
}

broker_start || { not_ok "broker"; exit 1; }
fixture_start --nvd-rate 100000/1 || { not_ok "fixture"; exit 1; }
want=$(jq '.vulnerabilities | length' "$KEV")
injected=0 checked=0 lost=0 dup=0

# --- 5xx storm, reset storm, a stall past total_ms: all retried ---------------
for kind in storm resets stall; do
	fx_reset
	case $kind in
	storm)
		fx_fault '{"path_prefix": "/kev/", "count": 3, "kind": "status", "status": 500}'
		fx_fault '{"path_prefix": "/kev/", "count": 2, "kind": "status", "status": 502}'
		fx_fault '{"path_prefix": "/kev/", "count": 2, "kind": "status", "status": 504}'
		n=7 extra="" ;;
	resets)
		fx_fault '{"path_prefix": "/kev/", "count": 5, "kind": "reset"}'
		n=5 extra="" ;;
	stall)
		fx_fault '{"path_prefix": "/kev/", "count": 2, "kind": "latency", "latency_ms": 3000}'
		n=2 extra=', "timeouts": {"total_ms": 1000}' ;;
	esac
	kev_def "up_$kind" 8 "$extra"
	fetch "up_$kind" "$SLUICE_FIXTURE_URL/kev"
	check_eq "$kind: the sync ends well" "$?" 0
	# a stalled answer enters the fixture's log when its delay ends
	wait_out 10 -ge $((n + 1)) fx_requests /kev/
	check_eq "$kind: the fixture answered $n faults then the page" "$(fx_requests /kev/)" $((n + 1))
	read -r got distinct < <(raw_ids "raw.up_$kind")
	check_eq "$kind: every record published once" "$got/$distinct" "$want/$want"
	check_eq "$kind: each attempt logged as a retry" "$(grep -c 'event=retry' "$D/up_$kind.log")" "$n"
	injected=$((injected + n)) checked=$((checked + want))
	lost=$((lost + want - ${distinct:-0})) dup=$((dup + ${got:-0} - ${distinct:-0}))
done
grep -q 'Timeout was reached' "$D/up_stall.log" && ok "stall: the timeout is named" ||
	not_ok "stall: no timeout in the log: $(grep -m1 event=retry "$D/up_stall.log")"

# --- a storm longer than max_attempts: a clean failure, then a full sync ------
fx_reset
fx_fault '{"path_prefix": "/kev/", "count": 3, "kind": "status", "status": 503}'
kev_def up_giveup 3 ""
fetch up_giveup "$SLUICE_FIXTURE_URL/kev"
check_eq "give up: the sync fails with exit 1" "$?" 1
grep -q 'gave up after 3 attempts' "$D/up_giveup.log" && ok "give up: says after how many attempts" ||
	not_ok "give up: $(grep -m1 sync_failed "$D/up_giveup.log")"
check_eq "give up: nothing published" "$(raw_msgs raw.up_giveup)" 0
fetch up_giveup "$SLUICE_FIXTURE_URL/kev"
check_eq "give up: the next sync ends well" "$?" 0
read -r got distinct < <(raw_ids raw.up_giveup)
check_eq "give up: the next sync published every record once" "$got/$distinct" "$want/$want"
injected=$((injected + 3)) checked=$((checked + want))
lost=$((lost + want - ${distinct:-0})) dup=$((dup + ${got:-0} - ${distinct:-0}))
figures "fault=upstream injected=$injected checked=$checked lost=$lost dup=$dup"

# --- one page of a known set bad for good: dead-lettered, the rest lands ----
fx_reset
cat >"$D/up_dead.json" <<JSON
{"name": "up_dead", "base_url": "http://unused.invalid",
 "request": {"path": "/rest/json/cves/2.0"}, "records": "\$.vulnerabilities",
 "paging": {"style": "offset", "param": "startIndex",
            "size_param": "resultsPerPage", "size": 40,
            "total": "\$.totalResults"},
 "rate_limit": {"requests": 1000, "per_seconds": 1}, "concurrency": 2,
 "retry": {"base_ms": 50, "max_ms": 100, "max_attempts": 2}}
JSON
total=$(curl -sf "$SLUICE_FIXTURE_URL/nvd/rest/json/cves/2.0?startIndex=0&resultsPerPage=1" | jq .totalResults)
curl -sf "$SLUICE_FIXTURE_URL/nvd/rest/json/cves/2.0?startIndex=80&resultsPerPage=40" >"$D/page2.json"
fx_reset
# page 2 malformed on both attempts; page 3 a 500 once (transient: retried)
fx_fault '{"path_prefix": "/nvd/", "count": 2, "kind": "malformed", "query_contains": "startIndex=80&"}'
fx_fault '{"path_prefix": "/nvd/", "count": 1, "kind": "status", "status": 500, "query_contains": "startIndex=120&"}'
fetch up_dead "$SLUICE_FIXTURE_URL/nvd"
check_eq "dead page: the sync goes on and ends well" "$?" 0
nraw=$(kcat -b "$SLUICE_BROKERS" -C -t raw.up_dead -e -q -J 2>/dev/null | /usr/bin/python3 -c '
import json, sys
ids = [r["cve"]["id"] for l in sys.stdin for r in json.loads(json.loads(l)["payload"])["vulnerabilities"]]
print(len(ids), len(set(ids)))')
check_eq "dead page: every other record published once" "$nraw" "$((total - 40)) $((total - 40))"
kcat -b "$SLUICE_BROKERS" -C -t dlq.fetch -e -q 2>/dev/null >"$D/dlq_fetch.jsonl"
check_eq "dead page: one letter in dlq.fetch" "$(grep -c . "$D/dlq_fetch.jsonl")" 1
/usr/bin/python3 "$SLUICE_ROOT/tests/tools/validate_json.py" \
	"$SLUICE_ROOT/schemas/messages/dead_letter.schema.json" "$D/dlq_fetch.jsonl" >"$D/dlq_schema.out" 2>&1
check_eq "dead page: the letter follows the dead-letter schema" "$?" 0
check_eq "dead page: stage, page, reason" \
	"$(jq -r '[.stage, .lineage.page, (.error | test("startIndex=80.*body is not JSON"))] | @tsv' "$D/dlq_fetch.jsonl")" \
	"$(printf 'fetch\t2\ttrue')"
# the fixture's malformed answer is the first half of the page: the letter
# holds exactly those bytes (the page's own "timestamp" is the time it was
# served: set aside)
nots() { sed 's/"timestamp": *"[^"]*"/"timestamp":""/'; }
check_eq "dead page: the letter holds the answer's exact bytes" \
	"$(jq -r .page_base64 "$D/dlq_fetch.jsonl" | base64 -d | nots | md5sum)" \
	"$(head -c "$(jq .page_bytes "$D/dlq_fetch.jsonl")" "$D/page2.json" | nots | md5sum)"
check_eq "dead page: half of the page, as the fixture cut it" \
	"$(jq .page_bytes "$D/dlq_fetch.jsonl")" "$(($(stat -c %s "$D/page2.json") / 2))"
grep -q 'event=sync_done.*dead_pages=1' "$D/up_dead.log" && ok "dead page: sync_done counts it" ||
	not_ok "dead page: $(grep -m1 event=sync_done "$D/up_dead.log")"
grep -q 'event=page_dead_lettered.*page=2' "$D/up_dead.log" && ok "dead page: logged as an error" ||
	not_ok "dead page: no page_dead_lettered line"
check_eq "dead page: the 500 page was retried, not dead-lettered" \
	"$(grep -c 'event=retry.*startIndex=120' "$D/up_dead.log")" 1
injected=$((injected + 3)) checked=$((checked + total - 40))

# --- pages that are bad for good, from a plain file server ------------------
W=$D/www
mkdir -p "$W"
/usr/bin/python3 - "$W" "$KEV" <<'PY'
import json, sys
w, kev = sys.argv[1], json.load(open(sys.argv[2]))
v = kev["vulnerabilities"]
# over max_page_bytes (set to 200000 below): the real catalog, 1.3 MB
json.dump(kev, open(w + "/big.json", "w"))
# nested 80 deep inside a record (limit 64)
deep = dict(kev, vulnerabilities=v[:2])
deep["vulnerabilities"][1] = dict(v[1], notes="x", extra=json.loads("[" * 80 + "]" * 80))
json.dump(deep, open(w + "/deep.json", "w"))
# more records than max_records (set to 100 below)
json.dump(dict(kev, vulnerabilities=v[:101]), open(w + "/many.json", "w"))
# invalid UTF-8 inside a string of the envelope (inside a record, the
# record is set aside and the page goes on: test_faults_isolation_page)
text = json.dumps(dict(kev, vulnerabilities=v[:3])).encode()
open(w + "/badutf8.json", "wb").write(text.replace(b"CISA Catalog", b"CISA \xff\xfe Catalog", 1))
PY
(cd "$W" && exec /usr/bin/python3 -m http.server --bind 127.0.0.1 0) >"$D/www.out" 2>"$D/www.log" &
SL_PIDS+=($!)
wait_for 10 grep -q 'Serving HTTP' "$D/www.out"
port=$(sed -n 's/.*port \([0-9]*\).*/\1/p' "$D/www.out" | head -1)
base=http://127.0.0.1:$port
bad=0 crashes=0
for case in big deep many badutf8; do
	cat >"$D/bad_$case.json" <<JSON
{"name": "bad_$case", "base_url": "$base",
 "request": {"path": "/$case.json"}, "records": "\$.vulnerabilities",
 "retry": {"base_ms": 50, "max_ms": 100, "max_attempts": 3},
 "limits": {"max_page_bytes": 200000, "max_records": 100, "max_depth": 64}}
JSON
	before=$(grep -c "GET /$case.json" "$D/www.log")
	fetch "bad_$case" "$base"
	rc=$?
	bad=$((bad + 1))
	[ "$rc" -ge 124 ] && crashes=$((crashes + 1))
	check_eq "$case: the sync fails (exit 1)" "$rc" 1
	case $case in
	big) msg="page larger than limits.max_page_bytes (200000 bytes)" tries=1 ;;
	deep) msg="page nests deeper than limits.max_depth (64)" tries=1 ;;
	many) msg="page 0 holds 101 records, over limits.max_records (100)" tries=1 ;;
	badutf8) msg="body is not JSON (invalid UTF-8 in string at byte" tries=3 ;;
	esac
	grep -qF "$msg" "$D/bad_$case.log" && ok "$case: the error says '$msg'" ||
		not_ok "$case: want '$msg', got: $(grep -m1 'sync_failed\|level=err' "$D/bad_$case.log")"
	check_eq "$case: requests made (retried only when it may help)" \
		$(($(grep -c "GET /$case.json" "$D/www.log") - before)) "$tries"
	check_eq "$case: nothing published" "$(raw_msgs "raw.bad_$case")" 0
done
grep -q 'Sanitizer\|runtime error' "$D"/*.log && not_ok "a sanitizer spoke" || ok "no sanitizer report"
figures "bad=upstream_pages tried=$bad crashes=$crashes"
sl_done
