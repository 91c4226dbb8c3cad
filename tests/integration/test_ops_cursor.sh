#!/usr/bin/env bash
# test_ops_cursor: `sluice cursor show|set|reset` on a source's state in
# sluice.state: what a sync recorded is shown, a cursor set is where the
# next sync starts, a reset makes it a full sync again, and a write is
# refused while a fetcher of the source holds its stand-by lock.
source "$SLUICE_ROOT/tests/lib.sh"
trap sl_cleanup EXIT
short_sessions
source "$SLUICE_ROOT/tests/lib_fetch.sh"

broker_start --topic sluice.state:1 --topic sluice.fetch_lock:1 --topic raw.nvd_cur:2 ||
	{ not_ok "broker"; exit 1; }
fixture_start --nvd-rate 1000/1 || { not_ok "fixture"; exit 1; }
D=$(sl_tmpdir)
B=$SLUICE_BIN
START=2022-01-01T00:00:00.000Z
cat >"$D/nvd_cur.json" <<JSON
{"name": "nvd_cur", "base_url": "https://services.nvd.nist.gov",
 "request": {"path": "/rest/json/cves/2.0",
             "query": {"lastModStartDate": "\${window.start}",
                       "lastModEndDate": "\${window.end}"}},
 "records": "\$.vulnerabilities",
 "paging": {"style": "offset", "param": "startIndex",
            "size_param": "resultsPerPage", "size": 2000,
            "total": "\$.totalResults"},
 "incremental": {"cursor": "cve.lastModified", "start": "$START",
                 "window_days": 120},
 "concurrency": 1, "interval_seconds": 3600}
JSON

# --- show -------------------------------------------------------------------
out=$("$B" cursor show nvd_cur)
check_eq "show before any sync exits 0" "$?" 0
check_eq "show says there is no state" "$out" "nvd_cur: no state recorded (the next sync is a full one)"
check_eq "show --json before any sync is null" "$("$B" cursor show nvd_cur --json)" null
fetch_once sync1 "$D/nvd_cur.json" "$SLUICE_FIXTURE_URL/nvd"
check_eq "a sync: exit 0" "$?" 0
recorded=$(kcat -b "$SLUICE_BROKERS" -C -t sluice.state -e -q -f '%k %s\n' | grep '^nvd_cur ' | tail -1 | cut -d' ' -f2- | jq -r .cursor)
[ -n "$recorded" ] && [ "$recorded" != null ] && ok "the sync recorded a cursor ($recorded)" || not_ok "the sync recorded no cursor"
check_eq "show --json (by the definition file) gives the recorded cursor" \
	"$("$B" cursor show "$D/nvd_cur.json" --json | jq -r .cursor)" "$recorded"
"$B" cursor show nvd_cur >"$D/show" 2>&1
check "show prints the cursor" grep -qx "cursor      $recorded" "$D/show"
check "show prints the run's pages" grep -q '^pages       [1-9]' "$D/show"

# --- set: the next sync starts from it ---------------------------------------
SET=2023-06-01T00:00:00.000Z
"$B" cursor set nvd_cur "$SET" >"$D/set" 2>&1
check_eq "set exits 0" "$?" 0
check "set prints the state it read back" grep -qx "cursor      $SET" "$D/set"
check_eq "show gives the cursor set" "$("$B" cursor show nvd_cur --json | jq -r .cursor)" "$SET"
fetch_once sync2 "$D/nvd_cur.json" "$SLUICE_FIXTURE_URL/nvd"
check_eq "the next sync: exit 0" "$?" 0
check "the next sync started from the cursor set" grep -q "event=sync_start source=nvd_cur .*cursor=$SET" "$SL_LOGDIR/sync2.log"

# --- refused while a fetcher holds the lock ----------------------------------
bg running "$B" fetch "$D/nvd_cur.json" --base-url "$SLUICE_FIXTURE_URL/nvd"
running=$LAST_PID
# it may wait out the last sync's session first (then it logs standby and
# takeover: both mean it owns the source)
wait_for 30 grep -q 'event=lock_acquired\|event=takeover' "$SL_LOGDIR/running.log" || not_ok "the running fetcher got the lock"
owned_at=$(grep -c '' "$SL_LOGDIR/running.log")
before=$("$B" cursor show nvd_cur --json | jq -r .cursor)
"$B" cursor reset nvd_cur --wait 3 >"$D/refused" 2>&1
check_eq "reset while a fetcher runs exits 1" "$?" 1
check "it says the lock is held and to stop the fetcher" grep -q 'the lock of source nvd_cur is held: a fetcher of it is running.*stop it first' "$D/refused"
"$B" cursor set nvd_cur 2020-01-01T00:00:00.000Z --wait 2 >/dev/null 2>&1
check_eq "set while a fetcher runs exits 1" "$?" 1
check_eq "the cursor is untouched" "$("$B" cursor show nvd_cur --json | jq -r .cursor)" "$before"
kill -0 "$running" 2>/dev/null && ok "the fetcher kept running" || not_ok "the fetcher kept running"
tail -n +"$((owned_at + 1))" "$SL_LOGDIR/running.log" | grep -q 'event=standby\|event=lock_lost' &&
	not_ok "the fetcher lost its lock to the command" || ok "the fetcher kept its lock"
stop_pid "$running"

# --- reset: a full sync again -------------------------------------------------
"$B" cursor reset nvd_cur >"$D/reset" 2>&1
check_eq "reset after the fetcher stopped exits 0" "$?" 0
check "reset prints no cursor" grep -q '^cursor      (none: the next sync is a full one)' "$D/reset"
check_eq "show --json: the cursor is null" "$("$B" cursor show nvd_cur --json | jq -c .cursor)" null
fetch_once sync3 "$D/nvd_cur.json" "$SLUICE_FIXTURE_URL/nvd"
check "the sync after reset starts with no cursor (from the definition's start)" \
	grep -q 'event=sync_start source=nvd_cur .*cursor=-' "$SL_LOGDIR/sync3.log"

# --- usage --------------------------------------------------------------------
"$B" cursor show >/dev/null 2>&1
check_eq "show without SOURCE is bad usage" "$?" 2
"$B" cursor set nvd_cur >/dev/null 2>&1
check_eq "set without VALUE is bad usage" "$?" 2
"$B" cursor drop nvd_cur >"$D/err" 2>&1
check_eq "an unknown subcommand is bad usage" "$?" 2
"$B" cursor show "Bad-Name" >/dev/null 2>&1
check_eq "a name that is no source name is bad usage" "$?" 2
"$B" cursor reset nvd_cur --json >/dev/null 2>&1
check_eq "--json is for show" "$?" 2
SLUICE_BROKERS=127.0.0.1:1 "$B" cursor show nvd_cur >/dev/null 2>&1
check_eq "show with Kafka unreachable exits 1" "$?" 1
sl_done
