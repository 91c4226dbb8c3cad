#!/usr/bin/env bash
# Secrets come from the environment and go nowhere else: with a canary
# value in the variables a header, a query and a basic-auth source read,
# librdkafka's debug=all and SLUICE_LOG_LEVEL=debug, through retries, a
# failed sync and a dead-lettered page, the canary is in no log, no
# message key, header or value of any topic, and no error message. The
# query parameter shows as name=*** in the url header.
source "$SLUICE_ROOT/tests/lib.sh"
trap sl_cleanup EXIT
D=$(sl_tmpdir)
SL_LOGDIR=$D
CANARY=SECRET-canary-123
export NVD_API_KEY=$CANARY SL_TEST_QUERY_KEY=${CANARY}-q SL_TEST_PASSWORD=${CANARY}-p
export SL_TEST_USER=feeduser SLUICE_LOG_LEVEL=debug

broker_start || { not_ok "broker"; exit 1; }
fixture_start || { not_ok "fixture"; exit 1; }
fx_fault() { curl -sf -X POST -d "$1" "$SLUICE_FIXTURE_URL/_fixture/faults" >/dev/null; }

src() { # NAME AUTH: a KEV source with that auth object
	cat >"$D/$1.json" <<JSON
{"name": "$1", "base_url": "http://unused.invalid",
 "request": {"path": "/known_exploited_vulnerabilities.json",
             "headers": {"X-Trace": "t-\${env:NVD_API_KEY}"}},
 "records": "\$.vulnerabilities", "auth": $2,
 "retry": {"base_ms": 50, "max_ms": 100, "max_attempts": 3}}
JSON
}
src sec_header '{"type": "header", "name": "apiKey", "env": "NVD_API_KEY"}'
src sec_query '{"type": "query", "name": "api_key", "env": "SL_TEST_QUERY_KEY"}'
src sec_basic '{"type": "basic", "env": "SL_TEST_PASSWORD", "username_env": "SL_TEST_USER"}'

run() { # NAME [BASE]: fetch --once with every debug switch on
	timeout 120 "$SLUICE_BIN" fetch "$D/$1.json" --once \
		--base-url "${2:-$SLUICE_FIXTURE_URL/kev}" --kafka debug=all \
		>"$D/$1.out" 2>"$D/$1.log"
}
for s in sec_header sec_query sec_basic; do
	# one retry on the way: its log line carries the URL
	fx_fault '{"path_prefix": "/kev/", "count": 1, "kind": "status", "status": 500}'
	run "$s"
	check_eq "$s: the sync ends well" "$?" 0
	check "$s: the retry was logged" grep -q 'event=retry' "$D/$s.log"
done
# the query credential did reach the API (else the test proves nothing)
curl -sf "$SLUICE_FIXTURE_URL/_fixture/log" >"$D/fixture_log.json"
check "the query secret was sent to the API" grep -q "api_key=${CANARY}-q" "$D/fixture_log.json"
rm -f "$D/fixture_log.json"
check "debug logs were on (librdkafka debug=all)" grep -q 'level=debug' "$D/sec_header.log"

# a failed sync: 3 × 503 with max_attempts 3; its error message names the URL
fx_fault '{"path_prefix": "/kev/", "count": 3, "kind": "status", "status": 503}'
run sec_query
check_eq "failed sync: exit 1" "$?" 1
check "failed sync: the error names the masked URL" grep -q 'api_key=\*\*\*' "$D/sec_query.log"

# a page that is not JSON, dead-lettered by the transformer
broker_pages() { kcat -b "$SLUICE_BROKERS" -C -t "$1" -e -q -J 2>/dev/null; }
printf 'not json %s\n' "page" | kcat -P -b "$SLUICE_BROKERS" -t raw.kev \
	-H "source=kev" -H "url=$SLUICE_FIXTURE_URL/kev/x?api_key=***" 2>/dev/null
bg transform "$SLUICE_BIN" transform "$SLUICE_ROOT/transformers/maps/kev.json" --kafka debug=all
dlq_has() { [ -n "$(broker_pages dlq.transform)" ]; }
wait_for 30 dlq_has
stop_pid "$LAST_PID"
check "a page was dead-lettered" test -n "$(broker_pages dlq.transform)"

# every topic: keys, headers and values
kcat -b "$SLUICE_BROKERS" -L -J 2>/dev/null | jq -r '.topics[].topic' >"$D/topics"
check "the raw topics exist" grep -q '^raw.sec_query$' "$D/topics"
: >"$D/all_messages"
while read -r t; do broker_pages "$t" >>"$D/all_messages"; done <"$D/topics"
check "messages were read ($(wc -l <"$D/all_messages"))" test "$(wc -l <"$D/all_messages")" -gt 5
url=$(broker_pages raw.sec_query | jq -r '.headers | . as $h | range(0; length; 2) | select($h[.] == "url") | $h[. + 1]' | head -1)
case $url in
*"api_key=***"*) ok "raw header url masks the query secret ($url)" ;;
*) not_ok "raw header url: '$url'" ;;
esac
for f in "$D"/*.log "$D"/*.out "$D/all_messages"; do
	if grep -q "$CANARY" "$f"; then
		not_ok "canary in $(basename "$f"): $(grep -m1 -o ".\{40\}$CANARY.\{20\}" "$f")"
	else
		ok "no canary in $(basename "$f")"
	fi
done
# the password in the basic-auth header is base64: look for that too
b64=$(printf '%s' "feeduser:${CANARY}-p" | base64)
check "no base64 credentials anywhere" bash -c "! grep -rqF '$b64' '$D'"
sl_done
