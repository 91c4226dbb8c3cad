#!/usr/bin/env bash
# Kafka faults during a whole KEV pipeline (fetch -> transform -> load):
# injected request errors (Produce, Fetch, OffsetCommit, JoinGroup... fail
# with retriable errors, through `sluice broker --faults` and SIGHUP), every
# broker down before the fetch starts and up again 3 s later, and every
# broker down again while the loader is mid-way. Ends with exact rows and counts
# from the data file: every record in PostgreSQL once, none twice, nothing
# dead-lettered or rejected by any worker, the raw topic without duplicates.
source "$SLUICE_ROOT/tests/lib.sh"
trap sl_cleanup EXIT
D=$(sl_tmpdir)
SL_LOGDIR=$D
KEV=$SLUICE_ROOT/data/kev/known_exploited_vulnerabilities.json

# figures NAME INJECTED CHECKED LOST DUP: one line for `make reliability`
figures() {
	[ -n "${SLUICE_FIGURES:-}" ] || return 0
	echo "fault=$1 injected=$2 checked=$3 lost=$4 dup=$5" >>"$SLUICE_FIGURES"
}

new_db faults_broker || { not_ok "database"; exit 1; }
broker_start --faults "$D/faults" --topic raw.kev:4 \
	--topic mapped.known_exploited_vulnerability:4 \
	--topic mapped.known_exploited_vulnerability_cwe:4 \
	--topic dlq.transform:1 --topic dlq.load:1 || { not_ok "broker"; exit 1; }
BROKER_LOG=$(readlink "/proc/$SL_BROKER_PID/fd/2")

read -r want_rows want_cwes want_empty < <(/usr/bin/python3 -c "
import json; v = json.load(open('$KEV'))['vulnerabilities']
print(len(v), len({(x['cveID'], w) for x in v for w in x.get('cwes', [])}),
      sum(1 for x in v if not x.get('cwes')))")
# the exact rows the data file makes (not only how many)
/usr/bin/python3 -c "
import json; v = json.load(open('$KEV'))['vulnerabilities']
print('\n'.join(sorted({x['cveID'] + ' ' + w for x in v for w in x.get('cwes', [])})))
" >"$D/want_cwes.txt"
/usr/bin/python3 -c "
import json; v = json.load(open('$KEV'))['vulnerabilities']
print('\n'.join(sorted(x['cveID'] + ' ' + x['dateAdded'] for x in v)))
" >"$D/want_rows.txt"
# small messages: ~70 raw chunks, so the faults meet many requests
sed 's/"interval_seconds"/"max_message_bytes": 20000, "interval_seconds"/' \
	"$SLUICE_ROOT/producers/sources/kev.json" >"$D/kev.json"

bg load "$SLUICE_BIN" load --schemas "$SLUICE_ROOT/schemas" --batch-rows 20 \
	--linger-ms 20 --max-backoff-ms 1000
LOADER=$LAST_PID
bg transform "$SLUICE_BIN" transform "$SLUICE_ROOT/transformers/maps/kev.json" \
	--batch 5
TRANSFORMER=$LAST_PID

loaded() { q "SELECT coalesce(sum(messages), 0) FROM sluice.load_batches WHERE table_name = '$1'" 2>/dev/null || echo 0; }
injected=0

# --- 1. request errors: every client meets retriable errors ----------------
cat >"$D/faults" <<'EOF'
# API COUNT ERRORS
Produce 6 NOT_LEADER_FOR_PARTITION,REQUEST_TIMED_OUT,NOT_ENOUGH_REPLICAS
Fetch 4 NOT_LEADER_FOR_PARTITION,UNKNOWN_TOPIC_OR_PART
OffsetCommit 3 COORDINATOR_NOT_AVAILABLE,REQUEST_TIMED_OUT
FindCoordinator 2 COORDINATOR_NOT_AVAILABLE
Metadata 2 LEADER_NOT_AVAILABLE
EOF
kill -HUP "$SL_BROKER_PID"
wait_out 10 -eq 5 grep -c event=faults_injected "$BROKER_LOG" &&
	ok "broker: 5 request-error lines injected" ||
	not_ok "broker: injected $(grep -c event=faults_injected "$BROKER_LOG") of 5"
injected=$((injected + 6 + 4 + 3 + 2 + 2))

# --- 2. every broker down before the fetch, up 3 s later -------------------
kill -USR1 "$SL_BROKER_PID"
wait_for 5 grep -q event=brokers_down "$BROKER_LOG"
timeout 120 "$SLUICE_BIN" fetch "$D/kev.json" --once \
	--base-url "$SLUICE_FIXTURE_URL/kev" >"$D/fetch.out" 2>"$D/fetch.log" &
FETCH=$!
sleep 3
kill -0 "$FETCH" 2>/dev/null && ok "fetch waits while the brokers are down" ||
	not_ok "fetch ended while the brokers were down"
kill -USR2 "$SL_BROKER_PID"
injected=$((injected + 1))
wait "$FETCH"
check_eq "fetch after the outage: exit 0" "$?" 0

# --- 3. every broker down again while the loader is mid-way ----------------
midload=0
for ((i = 0; i < 600; i++)); do
	n=$(loaded known_exploited_vulnerability)
	if [ "$n" -gt 0 ]; then
		[ "$n" -lt "$want_rows" ] && midload=1
		break
	fi
	sleep 0.05
done
kill -USR1 "$SL_BROKER_PID"
echo "# brokers down with $n of $want_rows rows loaded (mid-load: $midload)"
sleep 3
kill -USR2 "$SL_BROKER_PID"
injected=$((injected + 1))
ups() { echo "$(grep -c event=brokers_down "$BROKER_LOG")/$(grep -c event=brokers_up "$BROKER_LOG")"; }
wait_out 5 = 2/2 ups
check_eq "brokers went down and up twice" "$(ups)" "2/2"

wait_done() { [ "$(loaded known_exploited_vulnerability)" -ge "$want_rows" ] &&
	[ "$(q 'SELECT count(*) FROM known_exploited_vulnerability_cwe')" -ge "$want_cwes" ]; }
wait_for 90 wait_done
rows=$(q 'SELECT count(*) FROM known_exploited_vulnerability')
cwes=$(q 'SELECT count(*) FROM known_exploited_vulnerability_cwe')
check_eq "every KEV record landed" "$rows" "$want_rows"
check_eq "every CWE child row landed" "$cwes" "$want_cwes"
check_eq "no duplicate keys" \
	"$(q 'SELECT count(DISTINCT cve_id) FROM known_exploited_vulnerability')" "$want_rows"
effects=$(q "SELECT sum(inserted) + sum(updated) FROM sluice.load_batches WHERE table_name = 'known_exploited_vulnerability'")
check_eq "each record took effect once (inserted+updated)" "$effects" "$want_rows"
q "SELECT cve_id || ' ' || date_added FROM known_exploited_vulnerability ORDER BY 1" >"$D/got_rows.txt"
q "SELECT cve_id || ' ' || cwe_id FROM known_exploited_vulnerability_cwe ORDER BY 1" >"$D/got_cwes.txt"
check "the KEV rows are exactly the data file's (id, date added)" \
	cmp -s "$D/want_rows.txt" "$D/got_rows.txt"
check "the CWE rows are exactly the data file's (id, CWE)" \
	cmp -s "$D/want_cwes.txt" "$D/got_cwes.txt"
check_eq "nothing rejected" \
	"$(q 'SELECT coalesce(sum(rejected), 0) FROM sluice.load_batches')" 0
# $want_empty records have no CWE: their replace envelopes carry no rows,
# and one alone in a loader batch (likely when the brokers stall) used to
# be dead-lettered
check_eq "no worker rejected a row or a page ($want_empty empty child sets)" \
	"$(grep -h 'event=row_rejected\|event=dead_page' "$D"/*.log | cut -c1-300)" ""
raw=$(kcat -C -b "$SLUICE_BROKERS" -t raw.kev -e -q -J 2>/dev/null |
	/usr/bin/python3 -c '
import json, sys
ids = [r["cveID"] for line in sys.stdin if line.strip()
       for r in json.loads(json.loads(line)["payload"])["vulnerabilities"]]
print(len(ids), len(set(ids)))')
check_eq "raw.kev: every record once (idempotent producer)" "$raw" "$want_rows $want_rows"
check_eq "no dead letters" \
	"$(kcat -C -b "$SLUICE_BROKERS" -t dlq.transform -e -q 2>/dev/null | wc -l)/$(kcat -C -b "$SLUICE_BROKERS" -t dlq.load -e -q 2>/dev/null | wc -l)" "0/0"
kcat -C -b "$SLUICE_BROKERS" -t dlq.load -e -q 2>/dev/null | cut -c1-600 | sed 's/^/# dlq.load: /'
kcat -C -b "$SLUICE_BROKERS" -t dlq.transform -e -q 2>/dev/null | cut -c1-600 | sed 's/^/# dlq.transform: /'
kill -0 "$LOADER" 2>/dev/null && kill -0 "$TRANSFORMER" 2>/dev/null &&
	ok "loader and transformer survived" || not_ok "a worker died"
grep -q 'level=crit\|AddressSanitizer\|runtime error' "$D"/*.log &&
	not_ok "a worker logged a crash" || ok "no crash in any log"

read -r raw_n raw_distinct <<<"$raw"
figures kafka "$injected" $((want_rows + want_cwes)) \
	$((want_rows - ${rows:-0} + want_cwes - ${cwes:-0})) \
	$((${effects:-0} - want_rows + ${raw_n:-0} - ${raw_distinct:-0}))
stop_pid "$TRANSFORMER"
check_eq "transformer: clean exit after the faults" "$?" 0
stop_pid "$LOADER"
check_eq "loader: clean exit after the faults" "$?" 0
sl_done
