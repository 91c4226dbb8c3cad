#!/usr/bin/env bash
# sluice broker: a real Kafka-protocol cluster over TCP: bootstrap file,
# pre-created topics with their partition counts, produce/consume with a
# real client (kcat), clean exit on SIGTERM, one-line errors on bad flags.
source "$SLUICE_ROOT/tests/lib.sh"
trap sl_cleanup EXIT
d=$(sl_tmpdir)

broker_start --topic raw.test:3 --topic mapped.t --partitions 2 || { not_ok "broker starts"; exit 1; }
check_eq "bootstrap lists 3 brokers" "$(tr ',' '\n' <<<"$SLUICE_BROKERS" | grep -c '^127.0.0.1:[0-9]*$')" 3
kcat -b "$SLUICE_BROKERS" -L -J >"$d/md.json" 2>"$d/kcat.err"
parts() { /usr/bin/python3 -c "import json,sys; m=json.load(open('$d/md.json')); print([len(t['partitions']) for t in m['topics'] if t['topic']=='$1'][0])"; }
check_eq "raw.test has its 3 partitions" "$(parts raw.test)" 3
check_eq "mapped.t has --partitions 2" "$(parts mapped.t)" 2
check_eq "sluice.fetch_lock is created with 1 partition" "$(parts sluice.fetch_lock)" 1
check_eq "sluice.state is created with 1 partition" "$(parts sluice.state)" 1
check_eq "sluice.data_loss is created with 1 partition" "$(parts sluice.data_loss)" 1
seq 1 500 | kcat -b "$SLUICE_BROKERS" -P -t raw.test -K: 2>>"$d/kcat.err"
seq 1 500 | sed 's/^/k&:v/' | kcat -b "$SLUICE_BROKERS" -P -t raw.test -K: 2>>"$d/kcat.err"
n=$(kcat -b "$SLUICE_BROKERS" -C -t raw.test -e -q 2>>"$d/kcat.err" | wc -l)
check_eq "500+500 messages round-trip through the broker" "$n" 1000
kcat -b "$SLUICE_BROKERS" -P -t auto.created <<<"x" 2>>"$d/kcat.err"
kcat -b "$SLUICE_BROKERS" -L -J >"$d/md.json" 2>>"$d/kcat.err"
check_eq "auto-created topics get the default 4 partitions" "$(parts auto.created)" 4

# a real broker sets TCP_NODELAY; with Nagle on, a response written before
# the last one is acknowledged waits out the client's delayed ACK (40 ms)
check_eq "the broker's accepted connections have TCP_NODELAY" \
	"$(/usr/bin/python3 "$SLUICE_ROOT/tests/tools/nodelay.py" "$SL_BROKER_PID" "${SLUICE_BROKERS%%,*}" 2>&1)" 1

kill -TERM "$SL_BROKER_PID"
wait "$SL_BROKER_PID"
check_eq "SIGTERM: exit 0" "$?" 0

"$SLUICE_BIN" broker --brokers zero >"$d/o" 2>"$d/e"
check_eq "bad --brokers: exit 2" "$?" 2
check_eq "bad --brokers: one line naming the flag" "$(wc -l <"$d/e") $(grep -c -- '--brokers' "$d/e")" "1 1"
"$SLUICE_BIN" frobnicate 2>"$d/e"
check_eq "unknown command: exit 2" "$?" 2
check "unknown command is named" grep -q frobnicate "$d/e"
"$SLUICE_BIN" --help >"$d/o"
check "sluice --help lists every command" bash -c "for c in fetch transform load replay check lint broker status; do grep -q \"^  \$c \" '$d/o' || exit 1; done"
sl_done
