#!/usr/bin/env bash
# test_lookup: `sluice lookup` end to end against a private broker, the
# real PostgreSQL and the fixture's AbuseIPDB and EPSS routes: findings'
# IPs are looked up once each and published to raw.<lookup> with headers
# naming the observable; a repeat of the same rows is answered from
# sluice.lookup_cache without a request; an address the API refuses (422)
# goes to dlq.lookup; an EPSS batch asks about many CVEs in one request and
# tells found from not found.
source "$SLUICE_ROOT/tests/lib.sh"
trap sl_cleanup EXIT

command -v kcat >/dev/null || { not_ok "kcat is installed"; sl_done; exit; }
short_sessions

# the definitions: bundled ones lint, a bad one is told file:line:col
check "the bundled lookup definitions lint" "$SLUICE_BIN" lint "$SLUICE_ROOT/lookups/defs/"
B=$(sl_tmpdir)
printf '{\n  "name": "x",\n  "input": {"topic": "t", "observables": [{"path": "a", "type": "ip"}]},\n  "base_url": "https://h",\n  "request": {"path": "/"},\n  "quota": {"requests": 5, "period": "week"}\n}\n' >"$B/bad.json"
"$SLUICE_BIN" lint "$B/bad.json" 2>"$B/err"
check_eq "a bad lookup definition fails lint" "$?" "2"
check "its error names file, line, column and key" \
	grep -qF "$B/bad.json:6:28: quota.period: must be minute, hour, day or month" "$B/err"
ref=$("$SLUICE_BIN" lookup --reference)
in_doc() { python3 -c 'import sys; sys.exit(sys.stdin.read() not in open(sys.argv[1]).read())' "$1"; }
check "docs/lookups.md holds the current reference, whole" in_doc "$SLUICE_ROOT/docs/lookups.md" <<<"$ref"
broker_start --topic mapped.finding:2 --topic mapped.vulnerability:2 \
	--topic raw.abuseipdb:2 --topic raw.epss:2 --topic dlq.lookup:1 \
	--topic mapped.threat_indicator:1 --topic raw.urlhaus_host:1 ||
	{ not_ok "broker starts"; sl_done; exit; }
fixture_start || { not_ok "fixture starts"; sl_done; exit; }
new_db lookup_basic || exit 1
D=$(sl_tmpdir)
export ABUSEIPDB_API_KEY=test-key

# 20 findings over 12 distinct addresses (8 repeated), one not an address,
# and one envelope the where filter skips (a delete)
python3 - "$D" <<'PY'
import json, sys
d = sys.argv[1]
with open(d + "/findings", "w") as f:
    for i in range(20):
        ip = "198.51.100.%d" % (i % 12 + 1)
        env = {"v": 1, "table": "finding", "op": "upsert",
               "key": {"id": "f%d" % i}, "row": {"id": "f%d" % i, "ipv4": ip}}
        f.write("f%d\t%s\n" % (i, json.dumps(env)))
    env = {"v": 1, "table": "finding", "op": "upsert", "key": {"id": "bad"},
           "row": {"id": "bad", "ipv4": "not-an-ip"}}
    f.write("bad\t%s\n" % json.dumps(env))
    env = {"v": 1, "table": "finding", "op": "delete", "key": {"id": "gone"},
           "row": {"id": "gone", "ipv4": "203.0.113.99"}}
    f.write("gone\t%s\n" % json.dumps(env))
with open(d + "/cves", "w") as f:
    for i in range(1, 26):
        cve = "CVE-2024-%04d" % i
        env = {"v": 1, "table": "vulnerability", "op": "upsert",
               "key": {"cve_id": cve}, "row": {"cve_id": cve}}
        f.write("%s\t%s\n" % (cve, json.dumps(env)))
PY
produce() { timeout 30 kcat -P -b "$SLUICE_BROKERS" -t "$1" -K '\t' <"$2"; }
count() {
	timeout 10 kcat -C -b "$SLUICE_BROKERS" -t "$1" -o beginning -e -q -f '%o\n' 2>/dev/null | wc -l
}
fx() { curl -s "$SLUICE_FIXTURE_URL/_fixture/lookups"; }
fxv() { fx | python3 -c "import json,sys; d=json.load(sys.stdin); print(d['$1']['$2'])"; }

produce mapped.finding "$D/findings"
DEF=$D/abuseipdb.json
sed -e 's/"requests": 60, "per_seconds": 60, "burst": 5/"requests": 50, "per_seconds": 1, "burst": 5/' \
	"$SLUICE_ROOT/lookups/defs/abuseipdb.json" >"$DEF"
bg lookup1 "$SLUICE_BIN" lookup "$DEF" --base-url "$SLUICE_FIXTURE_URL/abuseipdb" \
	--schemas "$SLUICE_ROOT/schemas"
L1=$LAST_PID
wait_out 40 = 13 q "SELECT count(*) FROM sluice.lookup_cache WHERE lookup = 'abuseipdb' AND published"
sleep 1 # anything more would have come by now
check_eq "one answer per distinct address (12 + the refused one's none)" \
	"$(count raw.abuseipdb)" "12"
check_eq "the fixture was asked 13 times (12 addresses, 1 refused)" "$(fxv abuseipdb requests)" "13"
check_eq "no address was asked twice" "$(fxv abuseipdb max_per_observable)" "1"
check_eq "the deleted finding's address was not asked" \
	"$(fx | grep -c 203.0.113.99)" "0"
check_eq "one dead letter, for the refused address" "$(count dlq.lookup)" "1"
timeout 10 kcat -C -b "$SLUICE_BROKERS" -t dlq.lookup -o beginning -e -q -f '%s\n' >"$D/dlq" 2>/dev/null
check "the dead letter names the observable and the 422" \
	grep -q '"observable":"not-an-ip".*"http_status":422' "$D/dlq"
timeout 10 kcat -C -b "$SLUICE_BROKERS" -t raw.abuseipdb -o beginning -e -q \
	-f '%h\t%s\n' >"$D/raw" 2>/dev/null
check "answers carry the observable in their headers" \
	grep -q 'observable=198.51.100.7,.*observable_type=ip,outcome=found' "$D/raw"
check "an answer is the API's body" grep -q '"ipAddress":"198.51.100.7"' "$D/raw"
check_eq "the cache holds 13 rows, all published" \
	"$(q "SELECT count(*) FILTER (WHERE published), count(*) FROM sluice.lookup_cache WHERE lookup = 'abuseipdb'")" "13|13"
check_eq "outcomes" \
	"$(q "SELECT string_agg(outcome || '=' || n, ',' ORDER BY outcome) FROM (SELECT outcome, count(*) n FROM sluice.lookup_cache GROUP BY 1) s")" \
	"error=1,found=12"
check_eq "the quota counts 13 requests" \
	"$(q "SELECT used FROM sluice.lookup_quota WHERE lookup = 'abuseipdb'")" "13"
stop_pid "$L1"
check_eq "SIGTERM stops the worker cleanly" "$?" "0"
"$SLUICE_BIN" status --json >"$D/status.json" 2>"$D/status.err"
check_eq "sluice status lists the lookup: backlog, outcomes, quota" \
	"$(python3 -c 'import json,sys
l = [x for x in json.load(open(sys.argv[1]))["lookups"] if x["lookup"] == "abuseipdb"][0]
print(l["topic"], l["backlog"], l["found"], l["error"], l["in_flight"], l["quota_used"], l["quota"])' "$D/status.json")" \
	"mapped.finding 0 12 1 0 13 1000"

# the same rows again, under a new group: every answer is in the cache
HP=$((20000 + RANDOM % 20000))
produce mapped.finding "$D/findings"
bg lookup2 "$SLUICE_BIN" lookup "$DEF" --base-url "$SLUICE_FIXTURE_URL/abuseipdb" \
	--schemas "$SLUICE_ROOT/schemas" --group second --http-port "$HP"
L2=$LAST_PID
hits() {
	curl -s "http://127.0.0.1:$HP/metrics" |
		awk '/^sluice_lookup_cache_total\{lookup="abuseipdb",result="hit"\}/ {print $2}'
}
# every distinct address of the 21 envelopes the filter keeps, met in the
# cache (at least once each: batches may split them)
wait_out 30 -ge 13 hits
sleep 1
check_eq "repeats were answered from the cache: no new request" "$(fxv abuseipdb requests)" "13"
check_eq "and nothing new was published" "$(count raw.abuseipdb)" "12"
stop_pid "$L2"

# EPSS: 25 CVEs in batches of 10; numbers ending in 0 are unknown
produce mapped.vulnerability "$D/cves"
EDEF=$D/epss.json
sed -e 's/"max": 100/"max": 10/' "$SLUICE_ROOT/lookups/defs/epss.json" >"$EDEF"
bg epss "$SLUICE_BIN" lookup "$EDEF" --base-url "$SLUICE_FIXTURE_URL/epss" \
	--schemas "$SLUICE_ROOT/schemas" --batch 100
E=$LAST_PID
wait_out 40 = 25 q "SELECT count(*) FROM sluice.lookup_cache WHERE lookup = 'epss' AND published"
check_eq "25 CVEs in 3 requests of at most 10" "$(fxv epss requests)" "3"
check_eq "each CVE asked once" "$(fxv epss max_per_observable)" "1"
check_eq "found and not found told apart (2 numbers end in 0)" \
	"$(q "SELECT string_agg(outcome || '=' || n, ',' ORDER BY outcome) FROM (SELECT outcome, count(*) n FROM sluice.lookup_cache WHERE lookup = 'epss' GROUP BY 1) s")" \
	"found=23,not_found=2"
check_eq "one answer per request on raw.epss" "$(count raw.epss)" "3"
stop_pid "$E"

# URLhaus host: a form POST about the host of each URL indicator; a host
# URLhaus does not know is not found (query_status no_results)
for u in "http://216.10.244.155/a.sh" "https://User@Evil.Example:8443/x?y" \
	"http://216.10.244.155:80/b" "http://clean.example/z"; do
	printf '%s\t{"op":"upsert","row":{"indicator_type":"url","indicator":"%s"}}\n' "$u" "$u"
done >"$D/urls"
printf 'h\t{"op":"upsert","row":{"indicator_type":"domain","indicator":"http://skipped.example/"}}\n' >>"$D/urls"
produce mapped.threat_indicator "$D/urls"
bg uh "$SLUICE_BIN" lookup "$SLUICE_ROOT/lookups/defs/urlhaus_host.json" \
	--base-url "$SLUICE_FIXTURE_URL/urlhaus" --schemas "$SLUICE_ROOT/schemas"
U=$LAST_PID
wait_out 40 = 3 q "SELECT count(*) FROM sluice.lookup_cache WHERE lookup = 'urlhaus_host' AND published"
check_eq "hosts taken out of the URLs, lower-cased, without user and port" \
	"$(q "SELECT string_agg(observable || '=' || outcome, ',' ORDER BY observable) FROM sluice.lookup_cache WHERE lookup = 'urlhaus_host'")" \
	"216.10.244.155=found,clean.example=not_found,evil.example=found"
check_eq "asked once each, by POST" "$(fxv urlhaus_host requests)" "3"
stop_pid "$U"
sl_done
