#!/usr/bin/env bash
# test_fixture.sh - integration test of the fixture API server
# (build/sluice-fixture): starts its own servers on free ports and checks
# every route, limit, fault and admin call that docs/fixture-server.md
# promises. Prints "ok - ..." / "not ok - ...: detail" per check; exits 0
# only if all passed.
set -u

SLUICE_ROOT=${SLUICE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
BIN=${SLUICE_FIXTURE:-$SLUICE_ROOT/build/sluice-fixture}
DATA=$SLUICE_ROOT/data
PY=/usr/bin/python3
tmp=$(mktemp -d)
pids=()
failed=0
passed=0

cleanup() {
        local p
        for p in "${pids[@]}"; do
                kill "$p" 2>/dev/null
        done
        wait 2>/dev/null
        rm -rf "$tmp"
}
trap cleanup EXIT

ok() {
        echo "ok - $1"
        passed=$((passed + 1))
}

not_ok() {
        echo "not ok - $1: $2"
        failed=$((failed + 1))
}

# expect DESC GOT WANT
expect() {
        if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1" "got '$2', want '$3'"; fi
}

# start NAME ARGS...: starts a server, sets $URL (and records its pid)
start() {
        local name=$1 i
        shift
        rm -f "$tmp/$name.url"
        "$BIN" --port 0 --data "$DATA" --url-file "$tmp/$name.url" "$@" \
                >"$tmp/$name.out" 2>"$tmp/$name.err" &
        pids+=($!)
        eval "PID_$name=$!"
        for i in $(seq 1 100); do
                [ -s "$tmp/$name.url" ] && break
                sleep 0.05
        done
        URL=$(cat "$tmp/$name.url" 2>/dev/null)
}

# py CODE ARGS...: runs python with the json/urllib modules at hand
py() {
        local code=$1
        shift
        "$PY" -c "import json, sys, re, urllib.request, urllib.error
$code" "$@"
}

if [ ! -x "$BIN" ]; then
        not_ok "binary exists" "$BIN missing; build it first"
        exit 1
fi

# ---- command line ----
"$BIN" --help >"$tmp/help" 2>&1
expect "--help exits 0" "$?" "0"
for f in --port --bind --data --url-file --scale --nvd-rate --github-rate --latency-ms; do
        grep -q -- "$f" "$tmp/help" || not_ok "--help documents $f" "missing"
done
ok "--help lists every flag"
"$BIN" --nvd-rate 5 >/dev/null 2>"$tmp/err"
rc=$?
if [ $rc = 2 ] && grep -q -- "--nvd-rate" "$tmp/err"; then
        ok "bad argument: exit 2 naming it"
else
        not_ok "bad argument: exit 2 naming it" "rc=$rc $(cat "$tmp/err")"
fi
"$BIN" --port 70000 >/dev/null 2>"$tmp/err"
expect "bad --port exits 2" "$?" "2"
mkdir -p "$tmp/nodata"
"$BIN" --data "$tmp/nodata" >/dev/null 2>"$tmp/err"
rc=$?
if [ $rc = 1 ] && grep -q "known_exploited_vulnerabilities.json" "$tmp/err"; then
        ok "missing data file: exit 1 naming it"
else
        not_ok "missing data file: exit 1 naming it" "rc=$rc $(cat "$tmp/err")"
fi

# ---- main server: generous limits ----
start main --nvd-rate 1000/1 --github-rate 1000/1
M=$URL
if [[ "$M" =~ ^http://127\.0\.0\.1:[0-9]+$ ]]; then ok "url file holds the base URL"; else
        not_ok "url file holds the base URL" "'$M'"; exit 1; fi
expect "first stdout line is the base URL" "$(head -n1 "$tmp/main.out")" "$M"

# ---- KEV ----
got=$(curl -s "$M/kev/known_exploited_vulnerabilities.json" | py '
d = json.load(sys.stdin)
print(d["count"], len(d["vulnerabilities"]), len({v["cveID"] for v in d["vulnerabilities"]}))')
expect "KEV: count 1404, 1404 unique records" "$got" "1404 1404 1404"
cmp -s <(curl -s "$M/kev/known_exploited_vulnerabilities.json") \
        "$DATA/kev/known_exploited_vulnerabilities.json"
expect "KEV at scale 1 is the real file byte for byte" "$?" "0"

# ---- NVD ----
got=$(py '
base = sys.argv[1]
ids, start, totals = [], 0, set()
while True:
    d = json.load(urllib.request.urlopen(f"{base}/nvd/rest/json/cves/2.0?resultsPerPage=100&startIndex={start}"))
    totals.add(d["totalResults"])
    assert d["resultsPerPage"] == len(d["vulnerabilities"]) and d["startIndex"] == start
    assert d["format"] == "NVD_CVE" and d["version"] == "2.0" and d["timestamp"]
    ids += [v["cve"]["id"] for v in d["vulnerabilities"]]
    start += len(d["vulnerabilities"])
    if start >= d["totalResults"]:
        break
real = [v["cve"]["id"] for v in json.load(open(sys.argv[2]))["vulnerabilities"]]
print(len(ids), len(set(ids)), sorted(totals), ids == real)' "$M" "$DATA/nvd/nvd_cves_combined_dedup.json" 2>&1)
expect "NVD: paging by 100 visits all 476 once, in file order" "$got" "476 476 [476] True"

hdr=$(curl -s -D - -o "$tmp/body" "$M/nvd/rest/json/cves/2.0?resultsPerPage=2001")
if echo "$hdr" | head -1 | grep -q " 400" && echo "$hdr" | grep -qi "^message: " &&
        [ ! -s "$tmp/body" ]; then
        ok "NVD: resultsPerPage 2001 -> 400, empty body, message header"
else
        not_ok "NVD: resultsPerPage 2001 -> 400, empty body, message header" "$hdr"
fi
got=$(curl -s "$M/nvd/rest/json/cves/2.0" | py 'd = json.load(sys.stdin); print(d["resultsPerPage"], len(d["vulnerabilities"]))')
expect "NVD: default page holds everything up to 2000" "$got" "476 476"

want=$(py '
import datetime
recs = json.load(open(sys.argv[1]))["vulnerabilities"]
lo = datetime.datetime(2022, 8, 1); hi = datetime.datetime(2022, 11, 28, 23, 59, 59)
print(sum(1 for v in recs if lo <= datetime.datetime.fromisoformat(v["cve"]["lastModified"].rstrip("Z")) <= hi))' \
        "$DATA/nvd/nvd_cves_combined_dedup.json")
got=$(curl -s "$M/nvd/rest/json/cves/2.0?lastModStartDate=2022-08-01T02:00:00.000%2B02:00&lastModEndDate=2022-11-28T23:59:59.000Z" |
        py 'd = json.load(sys.stdin); print(d["totalResults"], len(d["vulnerabilities"]))')
expect "NVD: lastMod window filters on cve.lastModified" "$got" "$want $want"
code=$(curl -s -o /dev/null -w '%{http_code}' -D "$tmp/h" \
        "$M/nvd/rest/json/cves/2.0?lastModStartDate=2024-01-01T00:00:00.000Z&lastModEndDate=2024-06-01T00:00:00.000Z")
if [ "$code" = 404 ] && grep -qi "^message:" "$tmp/h"; then ok "NVD: range over 120 days -> 404 + message"; else
        not_ok "NVD: range over 120 days -> 404 + message" "$code"; fi
code=$(curl -s -o /dev/null -w '%{http_code}' "$M/nvd/rest/json/cves/2.0?lastModStartDate=2024-01-01T00:00:00.000Z")
expect "NVD: start date without end -> 404" "$code" "404"
code=$(curl -s -o /dev/null -w '%{http_code}' \
        "$M/nvd/rest/json/cves/2.0?lastModStartDate=2024-01-01T00:00:00&lastModEndDate=2024-02-01T00:00:00")
expect "NVD: dates without offset -> 404" "$code" "404"

# ---- GitHub ----
got=$(py '
base = sys.argv[1]
url, seen, pages, hdr_ok, last = f"{base}/github/advisories?per_page=50", [], 0, True, False
while url:
    r = urllib.request.urlopen(url)
    for h in ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"):
        hdr_ok = hdr_ok and r.headers.get(h) is not None
    seen += [x["urlhaus_link"] for x in json.load(r)]
    pages += 1
    link = r.headers.get("Link") or ""
    last = last or "rel=\"last\"" in link
    m = re.search(r"<([^>]+)>; rel=\"next\"", link)
    url = m.group(1) if m else None
    assert not url or url.startswith("http://")
print(len(seen), len(set(seen)), pages, hdr_ok, last)' "$M" 2>&1)
expect "GitHub: Link chain visits all 322 once, 7 pages, x-ratelimit-*, no rel=last" "$got" "322 322 7 True False"
got=$(curl -s "$M/github/advisories?per_page=1000" | py 'print(len(json.load(sys.stdin)))')
expect "GitHub: per_page capped at 100" "$got" "100"
got=$(curl -s "$M/github/advisories" | py 'print(len(json.load(sys.stdin)))')
expect "GitHub: per_page defaults to 30" "$got" "30"

# ---- Rapid7 ----
got=$(py '
base = sys.argv[1]
url, ids, pages = f"{base}/rapid7/api/3/vulnerabilities?size=500", [], None
while url:
    d = json.load(urllib.request.urlopen(url))
    pages = d["page"]["totalPages"], d["page"]["totalResources"]
    ids += [x["cveID"] for x in d["resources"]]
    nxt = [l["href"] for l in d["links"] if l["rel"] == "next"]
    assert any(l["rel"] == "self" for l in d["links"])
    url = nxt[0] if nxt else None
print(pages[0], pages[1], len(ids), len(set(ids)))' "$M" 2>&1)
expect "Rapid7: size 500 -> totalPages 3, next links visit all 1404" "$got" "3 1404 1404 1404"
code=$(curl -s -o /dev/null -w '%{http_code}' "$M/rapid7/api/3/vulnerabilities?size=501")
expect "Rapid7: size 501 -> 400" "$code" "400"
got=$(curl -s "$M/rapid7/api/3/vulnerabilities" | py 'd = json.load(sys.stdin); print(d["page"]["size"], d["page"]["totalPages"])')
expect "Rapid7: default size 10 -> 141 pages" "$got" "10 141"

# ---- OTX ----
code=$(curl -s -o /dev/null -w '%{http_code}' "$M/otx/api/v1/pulses/subscribed")
expect "OTX: no X-OTX-API-KEY -> 403" "$code" "403"
got=$(py '
base = sys.argv[1]
url, ids, counts, prev0 = f"{base}/otx/api/v1/pulses/subscribed?limit=50", [], set(), "unset"
while url:
    req = urllib.request.Request(url, headers={"X-OTX-API-KEY": "k"})
    d = json.load(urllib.request.urlopen(req))
    if prev0 == "unset":
        prev0 = d["previous"]
    counts.add(d["count"])
    ids += [x["urlhaus_link"] for x in d["results"]]
    url = d["next"]
print(len(ids), len(set(ids)), sorted(counts), prev0)' "$M" 2>&1)
expect "OTX: next chain ends with null after all 322" "$got" "322 322 [322] None"

# ---- CrowdStrike ----
got=$(py '
base = sys.argv[1]
after, ids, pages = "", [], 0
while True:
    d = json.load(urllib.request.urlopen(f"{base}/crowdstrike/spotlight/combined/vulnerabilities/v1?limit=200&after={after}"))
    p = d["meta"]["pagination"]
    assert p["limit"] == 200 and p["total"] == 476 and d["errors"] == []
    ids += [x["id"] for x in d["resources"]]
    pages += 1
    after = p["after"]
    if after == "":
        break
print(len(ids), len(set(ids)), pages)' "$M" 2>&1)
expect "CrowdStrike: after chain visits all 476, ends with after \"\"" "$got" "476 476 3"

# ---- URLhaus ----
got=$(curl -s -X POST "$M/urlhaus/v1/urls/recent/" | py 'd = json.load(sys.stdin); print(d["query_status"], len(d["urls"]))')
expect "URLhaus: POST recent -> ok, 322" "$got" "ok 322"
got=$(curl -s "$M/urlhaus/v1/urls/recent/" | py 'd = json.load(sys.stdin); print(d["query_status"], len(d["urls"]))')
expect "URLhaus: GET recent -> ok, 322" "$got" "ok 322"

# ---- Tenable ----
uuid=$(curl -s -X POST -H 'Content-Type: application/json' -d '{"num_assets": "50", "filters": {}}' \
        "$M/vulns/export" | py 'print(json.load(sys.stdin)["export_uuid"])')
if [[ "$uuid" =~ ^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$ ]]; then
        ok "Tenable: POST /vulns/export -> export_uuid"
else
        not_ok "Tenable: POST /vulns/export -> export_uuid" "'$uuid'"
fi
got=$(curl -s -w ' %{http_code}' -X POST -d '{"num_assets": 50}' "$M/vulns/export" |
        py 'b, code = sys.stdin.read().rsplit(" ", 1); print(code, json.loads(b)["active_job_id"])')
expect "Tenable: second POST while active -> 409 with active_job_id" "$got" "409 $uuid"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -d '{"chunk_size": 10}' "$M/assets/export")
expect "Tenable: chunk_size below 100 -> 400" "$code" "400"
code=$(curl -s -o /dev/null -w '%{http_code}' "$M/vulns/export/$uuid/chunks/1")
expect "Tenable: chunk before it is available -> 400" "$code" "400"
got=$(py '
base, uuid = sys.argv[1], sys.argv[2]
seq = []
while True:
    d = json.load(urllib.request.urlopen(f"{base}/vulns/export/{uuid}/status"))
    assert d["chunks_failed"] == [] and d["chunks_cancelled"] == []
    seq.append(d["status"] + ":" + ",".join(map(str, d["chunks_available"])))
    if d["status"] == "FINISHED":
        break
    assert len(seq) < 20
print(" ".join(seq))' "$M" "$uuid" 2>&1)
expect "Tenable: QUEUED, PROCESSING growing by one (id 3 skipped), FINISHED" "$got" \
        "QUEUED: PROCESSING:1 PROCESSING:1,2 PROCESSING:1,2,4 PROCESSING:1,2,4,5 PROCESSING:1,2,4,5,6 PROCESSING:1,2,4,5,6,7 PROCESSING:1,2,4,5,6,7,8 FINISHED:1,2,4,5,6,7,8"
got=$(py '
base, uuid = sys.argv[1], sys.argv[2]
recs = []
for i in (1, 2, 4, 5, 6, 7, 8):
    recs += json.load(urllib.request.urlopen(f"{base}/vulns/export/{uuid}/chunks/{i}"))
real = json.load(open(sys.argv[3]))
print(len(recs), recs == real)' "$M" "$uuid" "$DATA/tenable/test_exports_vulns_chunk_1.json" 2>&1)
expect "Tenable: chunks 1,2,4..8 hold the 344 real vulns in order" "$got" "344 True"
code=$(curl -s -o /dev/null -w '%{http_code}' "$M/vulns/export/$uuid/chunks/3")
expect "Tenable: skipped chunk id 3 -> 404" "$code" "404"
code=$(curl -s -o /dev/null -w '%{http_code}' "$M/vulns/export/00000000-0000-4000-8000-000000000000/status")
expect "Tenable: unknown uuid status -> 404" "$code" "404"
code=$(curl -s -o /dev/null -w '%{http_code}' "$M/vulns/export/00000000-0000-4000-8000-000000000000/chunks/1")
expect "Tenable: unknown uuid chunk -> 404" "$code" "404"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -d '{"num_assets": 50}' "$M/vulns/export")
expect "Tenable: new job allowed after FINISHED" "$code" "200"
got=$(py '
base = sys.argv[1]
def call(path, body=None):
    req = urllib.request.Request(base + path, data=body, method="POST" if body else "GET")
    return json.load(urllib.request.urlopen(req))
u = call("/assets/export", b"{\"filters\": {}, \"chunk_size\": 100}")["export_uuid"]
seq = []
while True:
    d = call(f"/assets/export/{u}/status")
    seq.append(d["status"] + ":" + ",".join(map(str, d["chunks_available"])) + ":" + ",".join(sorted(d)))
    if d["status"] == "FINISHED":
        break
recs = call(f"/assets/export/{u}/chunks/1")
print(" ".join(seq), len(recs), recs == json.load(open(sys.argv[2])))' "$M" "$DATA/tenable/test_exports_assets_chunk_1.json" 2>&1)
expect "Tenable: assets export flow, 100 real assets in chunk 1" "$got" \
        "QUEUED::chunks_available,status PROCESSING:1:chunks_available,status FINISHED:1:chunks_available,status 100 True"

# ---- faults ----
fault() {
        curl -s -o /dev/null -w '%{http_code}' -X POST -d "$1" "$M/_fixture/faults"
}
expect "faults: POST accepted" "$(fault '{"path_prefix":"/rapid7","count":2,"kind":"status","status":503,"retry_after":7}')" "200"
fault '{"path_prefix":"/rapid7","kind":"reset"}' >/dev/null
fault '{"path_prefix":"/rapid7","kind":"truncate"}' >/dev/null
fault '{"path_prefix":"/rapid7","kind":"malformed"}' >/dev/null
fault '{"path_prefix":"/rapid7","kind":"latency","latency_ms":700}' >/dev/null
R7="$M/rapid7/api/3/vulnerabilities?size=100"
for i in 1 2; do
        code=$(curl -s -D "$tmp/h" -o /dev/null -w '%{http_code}' "$R7")
        if [ "$code" = 503 ] && grep -qi "^retry-after: 7" "$tmp/h"; then
                ok "fault status: request $i -> 503 with Retry-After"
        else
                not_ok "fault status: request $i -> 503 with Retry-After" "$code"
        fi
done
curl -s -o /dev/null "$R7"
expect "fault reset: connection closed without an answer (curl 52)" "$?" "52"
curl -s -o /dev/null "$R7"
expect "fault truncate: short transfer (curl 18)" "$?" "18"
got=$(curl -s -w '\n%{http_code}' "$R7" | py '
*body, code = sys.stdin.read().split("\n")
try:
    json.loads("\n".join(body)); print(code, "parsed")
except ValueError:
    print(code, "broken")')
expect "fault malformed: 200 with broken JSON" "$got" "200 broken"
t=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' "$R7")
got=$(echo "$t" | py 'c, s = sys.stdin.read().split(); print(c, float(s) >= 0.7)')
expect "fault latency: answered normally after 700 ms" "$got" "200 True"
code=$(curl -s -o /dev/null -w '%{http_code}' "$R7")
expect "faults: queue drained, normal answer" "$code" "200"
fault '{"path_prefix":"/nvd","count":5,"kind":"status","status":500}' >/dev/null
curl -s -o /dev/null -X DELETE "$M/_fixture/faults"
code=$(curl -s -o /dev/null -w '%{http_code}' "$M/nvd/rest/json/cves/2.0?resultsPerPage=1")
expect "faults: DELETE clears the queue" "$code" "200"
code=$(fault '{"path_prefix":"/nvd","kind":"explode"}')
expect "faults: unknown kind -> 400" "$code" "400"

# ---- log ----
got=$(curl -s "$M/_fixture/log" | py '
log = json.load(sys.stdin)
r7 = [e for e in log if e["path"] == "/rapid7/api/3/vulnerabilities" and e["query"] == "size=100"]
print(len(r7), [e["status"] for e in r7], [e["fault"] for e in r7],
      all(set(e) == {"t_ms", "method", "path", "query", "status", "fault"} for e in log),
      all(a["t_ms"] <= b["t_ms"] for a, b in zip(log, log[1:])),
      any(e["path"].startswith("/_fixture") for e in log))')
expect "log: the 7 faulted rapid7 requests, statuses and faults in order" "$got" \
        "7 [503, 503, 0, 200, 200, 200, 200] ['status', 'status', 'reset', 'truncate', 'malformed', 'latency', None] True True False"
curl -s -o /dev/null -X POST "$M/_fixture/reset"
curl -s -o /dev/null "$M/kev/known_exploited_vulnerabilities.json"
got=$(curl -s "$M/_fixture/log" | py 'log = json.load(sys.stdin); print(len(log), log[0]["path"], log[0]["method"], log[0]["status"])')
expect "log: reset clears it; next request logged alone" "$got" "1 /kev/known_exploited_vulnerabilities.json GET 200"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -d '{"num_assets": 50}' "$M/vulns/export")
expect "reset: clears Tenable jobs (new job without 409)" "$code" "200"

# ---- rate limits: a server with small windows ----
start rate --nvd-rate 3/2 --github-rate 3/60
Rt=$URL
codes=""
for i in 1 2 3 4; do
        codes="$codes $(curl -s -D "$tmp/h$i" -o "$tmp/b$i" -w '%{http_code}' "$Rt/nvd/rest/json/cves/2.0?resultsPerPage=1")"
done
expect "NVD rate 3/2: 4th request in 2 s -> 403" "$codes" " 200 200 200 403"
if grep -qi "^message:" "$tmp/h4" && ! grep -qi "^retry-after" "$tmp/h4" && [ ! -s "$tmp/b4" ]; then
        ok "NVD 403: empty body, message header, no Retry-After"
else
        not_ok "NVD 403: empty body, message header, no Retry-After" "$(cat "$tmp/h4")"
fi
sleep 2.1
code=$(curl -s -o /dev/null -w '%{http_code}' "$Rt/nvd/rest/json/cves/2.0?resultsPerPage=1")
expect "NVD rate: window rolls, 200 again after 2 s" "$code" "200"
codes=""
for i in 1 2 3 4; do
        codes="$codes $(curl -s -D "$tmp/g$i" -o /dev/null -w '%{http_code}' "$Rt/github/advisories")"
done
expect "GitHub rate 3/60: 4th -> 429" "$codes" " 200 200 200 429"
got=$(tr -d '\r' <"$tmp/g4" | py '
h = {k.lower(): v.strip() for k, _, v in (l.partition(":") for l in sys.stdin.read().split("\n")[1:] if ":" in l)}
import time
ra = int(h["retry-after"]); reset = int(h["x-ratelimit-reset"])
print(h["x-ratelimit-remaining"], 55 <= ra <= 60, abs(reset - time.time() - ra) <= 2)')
expect "GitHub 429: retry-after ~60 s, remaining 0, reset epoch consistent" "$got" "0 True True"
got=$(tr -d '\r' <"$tmp/g2" | grep -i '^x-ratelimit-remaining' | awk '{print $2}')
expect "GitHub: x-ratelimit-remaining counts down" "$got" "1"
codes=""
for i in 1 2 3 4; do
        codes="$codes $(curl -s -D "$tmp/c$i" -o /dev/null -w '%{http_code}' "$Rt/crowdstrike/spotlight/combined/vulnerabilities/v1")"
done
got=$(tr -d '\r' <"$tmp/c4" | grep -i '^x-ratelimit-retryafter' | awk '{print $2}')
if [ "$codes" = " 200 200 200 429" ] && [ -n "$got" ] &&
        [ "$got" -ge "$(($(date +%s) + 50))" ] 2>/dev/null; then
        ok "CrowdStrike rate: 4th -> 429 with X-Ratelimit-Retryafter epoch"
else
        not_ok "CrowdStrike rate: 4th -> 429 with X-Ratelimit-Retryafter epoch" "$codes / '$got'"
fi
got=$(curl -s "$Rt/_fixture/log" | py '
log = json.load(sys.stdin)
nvd = [e for e in log if e["path"].startswith("/nvd")]
print(len(nvd), sum(e["status"] == 403 for e in nvd), len(log))')
expect "log: counts every API request of the rate server" "$got" "5 1 13"
# the apiKey window on a server of its own, with a window long enough that
# 31 requests fit in it on a loaded machine
start rate2 --nvd-rate 3/60
codes=""
for i in $(seq 1 31); do
        codes="$codes $(curl -s -o /dev/null -w '%{http_code}' -H 'apiKey: k1' "$URL/nvd/rest/json/cves/2.0?resultsPerPage=1")"
done
expect "NVD rate with apiKey: 10x (30 in the window, then 403)" "$(echo $codes | tr ' ' '\n' | sort | uniq -c | tr -s ' ' | xargs)" "30 200 1 403"
curl -s -o /dev/null -X POST "$Rt/_fixture/reset"
code=$(curl -s -o /dev/null -w '%{http_code}' "$Rt/github/advisories")
expect "reset: clears the rate windows" "$code" "200"

# ---- scale ----
start scale --scale 3 --nvd-rate 1000/1
S=$URL
got=$(py '
base = sys.argv[1]
ids, start = [], 0
while True:
    d = json.load(urllib.request.urlopen(f"{base}/nvd/rest/json/cves/2.0?startIndex={start}"))
    ids += [v["cve"]["id"] for v in d["vulnerabilities"]]
    start += len(d["vulnerabilities"])
    if start >= d["totalResults"]:
        break
print(d["totalResults"], len(ids), len(set(ids)), all(re.fullmatch(r"CVE-\d{4}-\d{4,}", i) for i in ids))' "$S" 2>&1)
expect "scale 3: NVD serves 1428 unique well-shaped ids" "$got" "1428 1428 1428 True"
got=$(curl -s "$S/kev/known_exploited_vulnerabilities.json" | py '
d = json.load(sys.stdin); ids = [v["cveID"] for v in d["vulnerabilities"]]
print(d["count"], len(ids), len(set(ids)), all(re.fullmatch(r"CVE-\d{4}-\d{4,}", i) for i in ids), d["title"])')
expect "scale 3: KEV count 4212, unique ids" "$got" "4212 4212 4212 True CISA Catalog of Known Exploited Vulnerabilities"
got=$(curl -s "$S/urlhaus/v1/urls/recent/" | py '
u = json.load(sys.stdin)["urls"]; print(len(u), len({x["url"] for x in u}), len({x["urlhaus_link"] for x in u}))')
expect "scale 3: URLhaus 966 records, url and link unique" "$got" "966 966 966"
got=$(curl -s -X POST -d '{"chunk_size": 100}' "$S/assets/export" | py 'print(json.load(sys.stdin)["export_uuid"])')
for i in 1 2 3 4 5; do curl -s -o /dev/null "$S/assets/export/$got/status"; done
got=$(py '
base, u = sys.argv[1], sys.argv[2]
ids = []
for c in (1, 2, 3):
    ids += [a["id"] for a in json.load(urllib.request.urlopen(f"{base}/assets/export/{u}/chunks/{c}"))]
print(len(ids), len(set(ids)))' "$S" "$got" 2>&1)
expect "scale 3: assets export in chunks 1,2,3 (3 chunks: no skip) with 300 unique ids" "$got" "300 300"

# ---- shutdown ----
kill -TERM "$PID_scale"
wait "$PID_scale"
expect "SIGTERM: exits 0" "$?" "0"

echo "# $passed passed, $failed failed"
[ "$failed" = 0 ]
