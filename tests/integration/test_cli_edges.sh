#!/usr/bin/env bash
# test_cli_edges: the day-to-day edges of the command line: --version (and
# the build-info gauge), `sluice help CMD`, check's exit 4 when it maps
# nothing, status's exit 1 naming the dependency that is down, getopt_long
# messages of dlq/check/lint, refused log variables, and the worker HTTP
# server's tick gauge, 404 body and /readyz reason.
source "$SLUICE_ROOT/tests/lib.sh"
trap sl_cleanup EXIT
D=$(sl_tmpdir)
B=$SLUICE_BIN
KEVMAP=$SLUICE_ROOT/transformers/maps/kev.json
KEVPAGE=$SLUICE_ROOT/data/kev/known_exploited_vulnerabilities.json
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# --- version and help -----------------------------------------------------
v=$("$B" --version)
check_eq "sluice --version exits 0" "$?" 0
want=$(cat "$SLUICE_ROOT/$SLUICE_BUILD/VERSION" 2>/dev/null)
check_eq "sluice --version prints the version the build recorded" "$v" "sluice $want"
[[ $want != unknown && -n $want ]] && ok "a build from a clone knows its version ($want)" ||
	not_ok "a build from a clone knows its version: got '$want'"
"$B" help fetch >"$D/help_fetch" 2>&1
check_eq "sluice help fetch exits 0" "$?" 0
"$B" fetch --help >"$D/fetch_help" 2>&1
check_eq "sluice help fetch prints fetch's help" "$(cat "$D/help_fetch")" "$(cat "$D/fetch_help")"
check "fetch's help is not the top-level help" grep -q '^usage: sluice fetch' "$D/help_fetch"
"$B" help nosuch >/dev/null 2>&1
check_eq "sluice help of an unknown command exits 2" "$?" 2

# --- check: mapping nothing is a failure ---------------------------------
"$B" check "$KEVMAP" "$KEVPAGE" >/dev/null 2>&1
check_eq "check of the KEV catalog exits 0" "$?" 0
echo '{"vulnerabilities": []}' >"$D/empty.json"
"$B" check "$KEVMAP" "$D/empty.json" >/dev/null 2>"$D/err"
check_eq "check of a page whose records path selects nothing exits 4" "$?" 4
check "it says the map selected no record" grep -q 'no rows: the map selected no record' "$D/err"
echo '{"vulnerabilities": [{"cveID": "CVE-1"}, {"cveID": ""}]}' >"$D/dead.json"
"$B" check "$KEVMAP" "$D/dead.json" >/dev/null 2>"$D/err"
check_eq "check of a page whose every record is dead-lettered exits 4" "$?" 4
check "it says none of the 2 records became a row" grep -q 'none of the 2 records became a row (2 dead letters' "$D/err"
echo '[]' >"$D/none.json"
"$B" check "$KEVMAP" "$D/empty.json" --expect "$D/none.json" >/dev/null 2>&1
check_eq "check --expect of nothing, on a page giving nothing, exits 0" "$?" 0

# --- getopt_long messages -------------------------------------------------
"$B" dlq list --jsn >/dev/null 2>"$D/err"
check_eq "dlq list --jsn exits 2" "$?" 2
check_eq "dlq: an unknown option is called one" "$(cat "$D/err")" \
	"sluice dlq: unknown option --jsn (see sluice dlq --help)"
"$B" dlq list --grep >/dev/null 2>"$D/err"
check_eq "dlq: a missing value is called one" "$(cat "$D/err")" \
	"sluice dlq: --grep wants a value (see sluice dlq --help)"
"$B" check "$KEVMAP" "$KEVPAGE" --expect >/dev/null 2>"$D/err"
check_eq "check: --expect without its file wants a value" "$(cat "$D/err")" \
	"sluice check: --expect wants a value (see sluice check --help)"
"$B" check "$KEVMAP" "$KEVPAGE" --expct x >/dev/null 2>"$D/err"
check_eq "check: a misspelt option is unknown" "$(cat "$D/err")" \
	"sluice check: unknown option --expct (see sluice check --help)"
"$B" lint --topcs "$KEVMAP" >/dev/null 2>"$D/err"
check_eq "lint: a misspelt option is unknown" "$(cat "$D/err")" \
	"sluice lint: unknown option --topcs (see sluice lint --help)"

# --- log variables --------------------------------------------------------
SLUICE_LOG_LEVEL=verbose "$B" lint "$KEVMAP" >/dev/null 2>"$D/err"
check_eq "SLUICE_LOG_LEVEL=verbose is refused (exit 2)" "$?" 2
check "the refusal names the variable and the levels" grep -q 'SLUICE_LOG_LEVEL="verbose" is not a level: debug, info' "$D/err"
SLUICE_LOG_FORMAT=yaml "$B" lint "$KEVMAP" >/dev/null 2>"$D/err"
check_eq "SLUICE_LOG_FORMAT=yaml is refused (exit 2)" "$?" 2
check "the refusal names the formats" grep -q 'SLUICE_LOG_FORMAT="yaml" is not a format: kv or json' "$D/err"
SLUICE_LOG_LEVEL=Debug SLUICE_LOG_FORMAT=json "$B" lint "$KEVMAP" >/dev/null 2>&1
check_eq "known values are accepted" "$?" 0

# --- status: a dependency down is a failure, and named -------------------
broker_start --topic raw.kev:1 --topic sluice.state:1 || { not_ok "broker"; exit 1; }
"$B" status >/dev/null 2>"$D/err"
check_eq "status with Kafka and PostgreSQL up exits 0" "$?" 0
PGHOST=/nonexistent "$B" status >"$D/out" 2>"$D/err"
check_eq "status with PostgreSQL unreachable exits 1" "$?" 1
check "stderr names the database" grep -q '^sluice status: database unreachable: ' "$D/err"
check "and not Kafka" bash -c "! grep -q 'kafka unreachable' '$D/err'"
check "what could be read is still shown" grep -q '^TOPICS' "$D/out"
SLUICE_BROKERS=127.0.0.1:1 "$B" status >/dev/null 2>"$D/err"
check_eq "status with Kafka unreachable exits 1" "$?" 1
check "stderr names Kafka" grep -q '^sluice status: kafka unreachable: ' "$D/err"
"$B" status --help | grep -q '1 Kafka or PostgreSQL unreachable'
check_eq "status --help says so" "$?" 0
grep -q 'exits 1, naming it, when Kafka or PostgreSQL is unreachable' "$SLUICE_ROOT/README.md"
check_eq "and so does the README" "$?" 0

# --- the worker HTTP server ----------------------------------------------
TP=$(free_port)
bg transform "$B" transform "$KEVMAP" --http-port "$TP"
T=http://127.0.0.1:$TP
wait_for 20 curl -sf "$T/metrics" || not_ok "the transformer serves /metrics"
curl -s "$T/metrics" >"$D/m1"
check "the build-info gauge carries the version" \
	grep -qF "version=\"$want\"" "$D/m1"
check "sluice_info is that gauge" grep -qE '^sluice_info\{.*version=".+"\} 1$' "$D/m1"
tick() { curl -s "$T/metrics" | awk '$1 == "sluice_last_tick_timestamp_seconds" { printf "%d\n", $2 }'; }
t1=$(tick)
sleep 3
t2=$(tick)
[[ -n $t1 && -n $t2 ]] && ((t2 - t1 >= 2)) &&
	ok "the tick gauge moves in a loop turning faster than once a second ($t1 -> $t2)" ||
	not_ok "the tick gauge moves in a loop turning faster than once a second: $t1 -> $t2"
curl -s -o "$D/404" -w '%{http_code}' "$T/nosuch" >"$D/code"
check_eq "an unknown path answers 404" "$(cat "$D/code")" 404
check_eq "the 404 body ends with its newline, not a NUL byte" "$(tail -c 1 "$D/404" | od -An -tx1 | tr -d ' ')" 0a
check_eq "the 404 body's length" "$(wc -c <"$D/404")" 43
stop_pid "$LAST_PID"

# a loader whose database stops answering: /readyz carries libpq's reason
# (a private cluster: the lane's is shared)
pg_start || { not_ok "pg_start"; exit 1; }
LP=$(free_port)
bg load "$B" load --schemas "$SLUICE_ROOT/schemas" --http-port "$LP"
L=http://127.0.0.1:$LP
check "the loader is ready" wait_out 60 = 200 curl -s -o /dev/null -w '%{http_code}' "$L/readyz"
pgsock=$PGHOST
pg_stop
wait_for 30 sh -c "curl -s '$L/readyz' | grep -q '^database'"
body=$(curl -s "$L/readyz")
[[ $body == "database: no response: connection to server on socket \"$pgsock/.s.PGSQL."*"failed"* ]] &&
	ok "/readyz says what libpq said ($body)" || not_ok "/readyz says what libpq said: got '$body'"
sl_done
