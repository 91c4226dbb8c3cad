#!/usr/bin/env bash
# Rebalances lose nothing and repeat next to nothing: transformers join and
# leave a consumer group while it works through ~48 000 NVD records (24 000
# were done before the last rebalance once the embedded broker stopped
# delaying its answers 40 ms: see docs/embedded-broker.md). Each
# revocation finishes the batch in hand (rows delivered, offsets committed)
# before the partitions move. The embedded broker refuses every commit
# while a rebalance is under way (real Kafka accepts them from the current
# generation): a worker whose commit is refused stops taking work, so each
# refused commit repeats at most its one batch (2 pages of 100 records).
source "$SLUICE_ROOT/tests/lib.sh"
trap sl_cleanup EXIT
# each join and leave waits out the members' sessions (less 1 s)
short_sessions
D=${KEEP_DIR:-$(sl_tmpdir)}
SL_LOGDIR=$D
SCALE=100
broker_start --topic raw.nvd:8 --topic mapped.vulnerability:8 || { not_ok "broker"; exit 1; }
fixture_start --nvd-rate 1000/1 --scale $SCALE || { not_ok "fixture"; exit 1; }
want=$((476 * SCALE))
sed 's/"size": 2000/"size": 100/; s/"requests": 5, "per_seconds": 30/"requests": 1000, "per_seconds": 1/' \
	"$SLUICE_ROOT/producers/sources/nvd.json" >"$D/nvd.json"
"$SLUICE_BIN" fetch "$D/nvd.json" --once --base-url "$SLUICE_FIXTURE_URL/nvd" >"$D/fetch.out" 2>"$D/fetch.log"
check_eq "fetch of $want records exits 0" "$?" 0

MAP=$SLUICE_ROOT/transformers/maps/nvd_cve.json
count() { kcat -b "$SLUICE_BROKERS" -C -t mapped.vulnerability -e -q -f '.\n' 2>/dev/null | wc -l; }
bg t1 "$SLUICE_BIN" transform "$MAP" --batch 2
t1=$LAST_PID
wait_for 30 grep -q 'event=assigned' "$D/t1.log"
sleep 1
bg t2 "$SLUICE_BIN" transform "$MAP" --batch 2 # joins: rebalance
t2=$LAST_PID
sleep 4
bg t3 "$SLUICE_BIN" transform "$MAP" --batch 2 # joins: rebalance
sleep 3
stop_pid "$t1"                                  # leaves: rebalance
mid=$(count)
[ "$mid" -lt "$want" ] && ok "the group was rebalanced mid-stream ($mid of $want mapped)" ||
	not_ok "the stream was done before the rebalances ($mid of $want)"
for i in $(seq 1 120); do [ "$(count)" -ge "$want" ] && break; sleep 1; done
sleep 3
got=$(count)
refused=$(cat "$D"/t*.log | grep -c 'event=commit_failed')
ids=$(kcat -b "$SLUICE_BROKERS" -C -t mapped.vulnerability -e -q -f '%k\n' 2>/dev/null | sort -u | wc -l)
check_eq "no record lost across the rebalances (distinct keys)" "$ids" "$want"
[ "$got" -le $((want + refused * 200)) ] &&
	ok "repeats bounded by the refused commits ($((got - want)) repeated, $refused refused)" ||
	not_ok "$((got - want)) records repeated for $refused refused commits (at most $((refused * 200)))"
n=$(cat "$D"/t*.log | grep -c 'event=revoked')
[ "$n" -ge 1 ] && ok "a running worker was revoked mid-stream ($n)" || not_ok "no revocation"
held=$(cat "$D"/t*.log | grep -o 'event=revoked partitions=[0-9]* finished_messages=[1-9][0-9]*' | wc -l)
echo "# revocations that finished a batch in hand: $held"
sl_done
