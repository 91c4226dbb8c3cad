#!/usr/bin/env bash
# Incremental sync and crash safety: windows from the cursor kept in
# sluice.state, a restart resumes from it, kill -9 mid-sync loses no record,
# and a second fetcher stands by and takes over when the first dies.
source "$SLUICE_ROOT/tests/lib.sh"
trap sl_cleanup EXIT
# restarts and the take-over after kill -9 wait out the stand-by lock's
# session (less 1 s)
short_sessions
source "$SLUICE_ROOT/tests/lib_fetch.sh"


broker_start || { not_ok "broker"; exit 1; }
fixture_start --nvd-rate 1000/1 || { not_ok "fixture"; exit 1; }
FAST=$SLUICE_FIXTURE_URL
fixture_start --nvd-rate 1000/1 --latency-ms 300 || { not_ok "slow fixture"; exit 1; }
SLOW=$SLUICE_FIXTURE_URL
SLUICE_FIXTURE_URL=$FAST
D=$(sl_tmpdir)
START=2022-01-01T00:00:00.000Z
all=$(fx_get '/nvd/rest/json/cves/2.0?resultsPerPage=2000' | jq -c '[.vulnerabilities[].cve | {id, lastModified}]')
want=$(jq --arg s "${START%Z}" '[.[] | select(.lastModified >= $s)] | length' <<<"$all")

def() { # NAME SIZE
	cat <<JSON
{"name": "$1", "base_url": "https://services.nvd.nist.gov",
 "request": {"path": "/rest/json/cves/2.0",
             "query": {"lastModStartDate": "\${window.start}",
                       "lastModEndDate": "\${window.end}"}},
 "records": "\$.vulnerabilities",
 "paging": {"style": "offset", "param": "startIndex",
            "size_param": "resultsPerPage", "size": $2,
            "total": "\$.totalResults"},
 "incremental": {"cursor": "cve.lastModified", "start": "$START",
                 "window_days": 120},
 "concurrency": 1, "interval_seconds": 3600}
JSON
}

# --- incremental windows, cursor in sluice.state, restart resumes -------------
def nvd_inc 2000 >"$D/inc.json"
fetch_once inc1 "$D/inc.json" "$FAST/nvd"
check_eq "incremental: exit 0" "$?" 0
read -r pages recs msgs < <(raw_count raw.nvd_inc)
check_eq "incremental: every record since start" "$recs" "$want"
nwin=$(grep -c 'event=window' "$SL_LOGDIR/inc1.log")
[ "$nwin" -ge 10 ] && ok "incremental: split into 120-day windows ($nwin)" || not_ok "incremental: $nwin windows"
cursor=$(kcat -b "$SLUICE_BROKERS" -C -t sluice.state -e -q -f '%k %s\n' | grep '^nvd_inc ' | tail -1 | cut -d' ' -f2- | jq -r .cursor)
maxmod=$(jq -r '[.[].lastModified] | max' <<<"$all")
# the cursor covers every record seen: the newest lastModified, or the end
# of a completed window after it
check_eq "incremental: state cursor ($cursor) not before the newest lastModified" \
	"$(jq -n --arg c "$cursor" --arg m "$maxmod" '$c >= $m and ($c | length) > 0')" true
kcat -b "$SLUICE_BROKERS" -C -t sluice.state -e -q -f '%s\n' | tail -1 | jq -e 'has("source") and has("run") and has("updated_at")' >/dev/null &&
	ok "state: value has source, cursor, run, updated_at" || not_ok "state: value shape"
fetch_once inc2 "$D/inc.json" "$FAST/nvd"
check_eq "incremental restart: exit 0" "$?" 0
grep -q "event=sync_start source=nvd_inc .*cursor=$cursor" "$SL_LOGDIR/inc2.log" &&
	ok "incremental restart: resumed from the recorded cursor" || not_ok "incremental restart: did not resume from $cursor"
read -r pages2 recs2 msgs2 < <(raw_count raw.nvd_inc)
again=$(jq --arg s "$cursor" '[.[] | select(.lastModified >= $s)] | length' <<<"$all")
check_eq "incremental restart: only records since the cursor" "$((recs2 - recs))" "$again"

# --- no start bound: the first sync is one full pull, then incremental ---------
def nvd_full 2000 | sed 's/"start": "[^"]*",//' >"$D/full.json"
check "full pull: the definition has no start bound" bash -c "! grep -q '\"start\"' '$D/full.json'"
curl -s -X POST "$FAST/_fixture/reset" >/dev/null
fetch_once full1 "$D/full.json" "$FAST/nvd"
check_eq "full pull: exit 0" "$?" 0
read -r fpages frecs fmsgs < <(raw_count raw.nvd_full)
check_eq "full pull: every record, without windows" "$frecs" "$(jq length <<<"$all")"
check_eq "full pull: no request carried window bounds" \
	"$(curl -s "$FAST/_fixture/log" | jq '[.[] | select(.path | startswith("/nvd")) | select(.query | test("lastModStartDate"))] | length')" 0
fcursor=$(kcat -b "$SLUICE_BROKERS" -C -t sluice.state -e -q -f '%k %s\n' | grep '^nvd_full ' | tail -1 | cut -d' ' -f2- | jq -r .cursor)
check_eq "full pull: the cursor is the newest lastModified" "$fcursor" "$maxmod"
fetch_once full2 "$D/full.json" "$FAST/nvd"
check_eq "after a full pull: exit 0" "$?" 0
grep -q "event=sync_start source=nvd_full .*cursor=$fcursor" "$SL_LOGDIR/full2.log" &&
	ok "after a full pull: the next sync is incremental from the cursor" || not_ok "after a full pull: did not resume from $fcursor"
check "after a full pull: the next sync sends window bounds" grep -q 'event=window source=nvd_full' "$SL_LOGDIR/full2.log"

# --- kill -9 mid-sync, restart: every record present ----------------------------
def nvd_kill 10 >"$D/kill.json"
bg killed "$SLUICE_BIN" fetch "$D/kill.json" --once --base-url "$SLOW/nvd"
pid=$LAST_PID
wait_for 60 grep -q 'event=cursor' "$SL_LOGDIR/killed.log"
sleep 2
if kill -0 "$pid" 2>/dev/null; then ok "kill -9: fetcher still mid-sync"; else not_ok "kill -9: fetcher ended before the kill"; fi
kill -9 "$pid"
wait "$pid" 2>/dev/null
read -r p_before r_before m_before < <(raw_count raw.nvd_kill)
[ "$r_before" -lt "$want" ] && ok "kill -9: killed with $r_before of $want records" || not_ok "kill -9: sync was already complete"
fetch_once restarted "$D/kill.json" "$FAST/nvd"
check_eq "kill -9: restart exits 0" "$?" 0
grep -q 'event=sync_start source=nvd_kill .*cursor=-' "$SL_LOGDIR/restarted.log" &&
	not_ok "kill -9: restart ignored the recorded cursor" || ok "kill -9: restart resumed from a recorded cursor"
ids=$(raw_ids raw.nvd_kill cve.id | sort -u | wc -l)
check_eq "kill -9: every record present" "$ids" "$want"

# --- stand-by and take-over -----------------------------------------------------
def nvd_standby 10 >"$D/sb.json"
bg first "$SLUICE_BIN" fetch "$D/sb.json" --once --base-url "$SLOW/nvd"
first=$LAST_PID
wait_for 30 grep -q 'event=lock_acquired' "$SL_LOGDIR/first.log" || not_ok "standby: first never got the lock"
bg second "$SLUICE_BIN" fetch "$D/sb.json" --once --base-url "$SLOW/nvd"
second=$LAST_PID
if wait_for 30 grep -q 'event=standby' "$SL_LOGDIR/second.log"; then ok "standby: second stands by"; else not_ok "standby: second did not stand by"; fi
grep -q 'event=sync_start' "$SL_LOGDIR/second.log" && not_ok "standby: second synced while the first ran" || ok "standby: second did not sync meanwhile"
kill -0 "$first" 2>/dev/null && ok "standby: first still running" || not_ok "standby: first ended too early"
kill -9 "$first"
if wait_for 60 grep -q 'event=takeover' "$SL_LOGDIR/second.log"; then ok "standby: second took over"; else not_ok "standby: no takeover"; fi
for _ in $(seq 1 900); do kill -0 "$second" 2>/dev/null || break; sleep 0.1; done
wait "$second"
check_eq "standby: second's sync exits 0" "$?" 0
ids=$(raw_ids raw.nvd_standby cve.id | sort -u | wc -l)
check_eq "standby: every record present" "$ids" "$want"
sl_done
