#!/usr/bin/env bash
# test_faults_retention: the embedded broker keeps only the newest 5 MiB of
# batches per partition. A fetcher that outruns a stopped transformer must
# either wait for it (back-pressure: every record lands) or, with
# back-pressure off, have the loss reported exactly: an err event naming
# the offsets and the count, sluice_messages_lost_total, a record on
# sluice.data_loss that sluice status shows, and /readyz 503 until
# `sluice status --ack-loss`. Never silence.
#
# Phase 1 freezes a transformer with back-pressure on: nothing is lost.
# Phase 2 restarts a transformer whose group's committed offset the broker
# no longer has (how=start_below_earliest); phase 3 freezes one with
# back-pressure off (how=offset_reset).
#
# raw.nvd has one partition; the fetcher publishes uncompressed
# (SLUICE_KAFKA_COMPRESSION_TYPE=none: the broker then counts the bytes the
# fetcher sends), and one fetch of the fixture (4 760 NVD records, about
# 11 MB) is twice what the partition keeps. The losses are measured on the
# broker (kcat: the partition's earliest offset against the offset the
# group had reached), not taken from the worker.
source "$SLUICE_ROOT/tests/lib.sh"
trap sl_cleanup EXIT

command -v kcat >/dev/null || { not_ok "kcat is installed (scripts/install-deps.sh)"; sl_done; exit; }
short_sessions
broker_start --brokers 1 --topic raw.nvd:1 --topic mapped.vulnerability:2 ||
	{ not_ok "broker starts"; sl_done; exit; }
fixture_start --scale 10 --nvd-rate 1000000/1 || { not_ok "fixture starts"; sl_done; exit; }
D=$(sl_tmpdir)
: "${SL_LOGDIR:=$(sl_tmpdir)}"
SRC=$SLUICE_ROOT/tests/bench/sources/nvd_bench.json
MAP=$SLUICE_ROOT/transformers/maps/nvd_cve.json
N=4760
G1=retention-bp   # phase 1: the group the fetcher waits for
G=retention-test  # phases 2 and 3: the group that loses

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
http_code() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$1"; }
low() { kcat -b "$SLUICE_BROKERS" -Q -t "raw.nvd:0:-2" 2>/dev/null | awk '/offset/ {print $NF}'; }
high() { kcat -b "$SLUICE_BROKERS" -Q -t "raw.nvd:0:-1" 2>/dev/null | awk '/offset/ {print $NF}'; }
keys() { timeout 20 kcat -C -b "$SLUICE_BROKERS" -t mapped.vulnerability -o beginning -e -q -f '%k\n' 2>/dev/null | sort -u | wc -l; }
fetch() { # fetch NAME [VAR=VALUE...]: one sync of the whole fixture
	local name=$1; shift
	env SLUICE_KAFKA_COMPRESSION_TYPE=none "$@" timeout 120 "$SLUICE_BIN" fetch "$SRC" --once \
		--base-url "$SLUICE_FIXTURE_URL/nvd" >"$SL_LOGDIR/$name.out" 2>"$SL_LOGDIR/$name.log"
}
metric() { # metric PORT NAME: the sample's value ("" when absent)
	curl -s --max-time 5 "http://127.0.0.1:$1/metrics" | awk -v m="$2" '$1 == m {print $2}'
}
pages() { metric "$1" 'sluice_pages_total{name="raw.nvd"}'; }
status_json() { "$SLUICE_BIN" status --json --group-transform "$G" 2>/dev/null; }
jq_py() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

# ---- 1. back-pressure on: a transformer of G1 is assigned, then frozen;
# the fetcher waits for it rather than publishing past what the partition
# keeps, and once it goes on every record lands. G reads nothing meanwhile:
# its transformer committed the partition's beginning (0) and stopped.
P1=$(free_port)
P=$(free_port)
bg transform0 "$SLUICE_BIN" transform "$MAP" --group "$G" --http-port "$P"
T0=$LAST_PID
check "transformer of $G is assigned" wait_for 30 grep -q "event=start_offsets" "$SL_LOGDIR/transform0.log"
# a session that outlives the freeze; no one joins G1 after it
bg transform1 "$SLUICE_BIN" transform "$MAP" --group "$G1" --http-port "$P1" \
	--kafka session.timeout.ms=60000
T1=$LAST_PID
check "transformer of $G1 is assigned" wait_for 30 grep -q "event=start_offsets" "$SL_LOGDIR/transform1.log"
stop_pid "$T0"
# the transformer commits the fresh partition's beginning asynchronously,
# right after event=start_offsets: it must reach the broker before the
# freeze, or the fetcher sees no offset of G1 and does not wait for it
sleep 2
kill -STOP "$T1"
fetch fetch1 SLUICE_BACKPRESSURE_GROUPS="$G1" &
F1=$!
check "back-pressure on: the fetcher waits for the frozen transformer" \
	wait_for 40 grep -q "event=backpressure_wait .*group=$G1" "$SL_LOGDIR/fetch1.log"
kill -CONT "$T1"
wait "$F1"
check_eq "back-pressure on: the fetch succeeds" "$?" 0
check "the fetcher learnt the embedded broker's limit" \
	grep -q "event=backpressure state=on topic=raw.nvd limit_bytes=5242880 limit_batches=100000 from=embedded_broker" "$SL_LOGDIR/fetch1.log"
H1=$(high)
L1=$(low)
check "the fetch published more than the partition keeps (${H1:-?} messages)" test "${H1:-0}" -ge 10
check "the broker dropped messages meanwhile (earliest ${L1:-?}): read by $G1, lost to $G" test "${L1:-0}" -gt 0
check "back-pressure on: $G1 read every message" wait_out 60 = "$H1" pages "$P1"
# the pages counter moves when a page is mapped, before its envelopes are
# delivered: on a loaded machine the last ones may still be in flight
wait_out 30 = "$N" keys
check_eq "back-pressure on: every record landed" "$(keys)" "$N"
check "back-pressure on: no data_lost event" bash -c "! grep -q event=data_lost '$SL_LOGDIR/transform1.log'"
stop_pid "$T1"

# ---- 2. G's committed offset (0) is below the partition's earliest: its
# transformer, stopped, lost messages 0..L1-1
LOST=$L1
status_json >"$D/st1.json"
check_eq "sluice status: raw.nvd lost_behind_earliest" \
	"$(jq_py '[t["lost_behind_earliest"] for t in d["topics"] if t["topic"]=="raw.nvd"][0]' <"$D/st1.json")" "$LOST"
check_eq "sluice status: raw.nvd earliest_dropped" \
	"$(jq_py '[t["earliest_dropped"] for t in d["topics"] if t["topic"]=="raw.nvd"][0]' <"$D/st1.json")" "$L1"

# the transformer comes back: its committed offset is below the earliest
bg transform2 "$SLUICE_BIN" transform "$MAP" --group "$G" --http-port "$P"
T2=$LAST_PID
check "the loss is an err event naming topic, partition, offsets and count" \
	wait_for 30 grep -q "level=err .*event=data_lost group=$G topic=raw.nvd partition=0 first_offset=0 last_offset=$((L1 - 1)) messages=$LOST how=start_below_earliest" \
	"$SL_LOGDIR/transform2.log"
check "every message still kept is read" wait_out 60 = "$((H1 - L1))" pages "$P"
check_eq "read + lost = every message published" "$(($(pages "$P") + LOST))" "$H1"
check_eq "sluice_messages_lost_total{topic=raw.nvd} counts it exactly" \
	"$(metric "$P" 'sluice_messages_lost_total{topic="raw.nvd"}')" "$LOST"
check_eq "sluice_data_loss_unacknowledged_messages says it" \
	"$(metric "$P" sluice_data_loss_unacknowledged_messages)" "$LOST"
check "/readyz answers 503 while the loss is not acknowledged" wait_out 20 = 503 http_code "http://127.0.0.1:$P/readyz"
check "/readyz says why" bash -c "curl -s 'http://127.0.0.1:$P/readyz' | grep -q 'data lost: $LOST messages never read, last raw.nvd\[0\] offsets 0-$((L1 - 1))'"
"$SLUICE_BIN" status --group-transform "$G" >"$D/st2.txt" 2>/dev/null
check "sluice status shows the loss" grep -q "DATA LOST: $LOST messages never read" "$D/st2.txt"
status_json >"$D/st2.json"
check_eq "sluice status --json: data_loss.messages" "$(jq_py 'd["data_loss"]["messages"]' <"$D/st2.json")" "$LOST"
check_eq "the sluice.data_loss record names group, topic, partition and offsets" \
	"$(jq_py '"%s %s %d %d %d" % (d["data_loss"]["records"][0]["group"], d["data_loss"]["records"][0]["topic"], d["data_loss"]["records"][0]["partition"], d["data_loss"]["records"][0]["first_offset"], d["data_loss"]["records"][0]["last_offset"])' <"$D/st2.json")" \
	"$G raw.nvd 0 0 $((L1 - 1))"
"$SLUICE_BIN" status --ack-loss >"$D/ack.txt" 2>/dev/null
check "sluice status --ack-loss acknowledges" grep -q "DATA LOST: 1 loss records acknowledged" "$D/ack.txt"
check "/readyz answers 200 once acknowledged" wait_out 20 = 200 http_code "http://127.0.0.1:$P/readyz"
check_eq "sluice_data_loss_unacknowledged_messages is 0 once acknowledged" \
	"$(metric "$P" sluice_data_loss_unacknowledged_messages)" 0
"$SLUICE_BIN" status --group-transform "$G" >"$D/st3.txt" 2>/dev/null
check "sluice status no longer lists it" bash -c "! grep -q 'DATA LOST' '$D/st3.txt'"
stop_pid "$T2"

# ---- 3. phase 1 again with back-pressure off: the transformer, frozen
# mid-stream (its session outlives the freeze), loses what the fetch
# pushes out of the partition; librdkafka resets its out-of-range position
# to the earliest offset, and the jump is reported
bg transform3 "$SLUICE_BIN" transform "$MAP" --group "$G" --http-port "$P" \
	--kafka session.timeout.ms=60000
T3=$LAST_PID
check "transformer 3 is assigned" wait_for 30 grep -q "event=start_offsets" "$SL_LOGDIR/transform3.log"
kill -STOP "$T3"
fetch fetch3 SLUICE_BACKPRESSURE_GROUPS=none
check_eq "frozen transformer: the fetch succeeds" "$?" 0
check "back-pressure off: the fetcher never waited" bash -c "! grep -q event=backpressure_wait '$SL_LOGDIR/fetch3.log'"
H3=$(high)
L3=$(low)
check_eq "the second fetch published as many messages" "$H3" "$((2 * H1))"
check "the broker dropped messages the frozen transformer had not read (earliest $L3 > $H1)" test "${L3:-0}" -gt "$H1"
kill -CONT "$T3"
check "the mid-stream loss is an err event with the exact offsets and count" \
	wait_for 30 grep -q "level=err .*event=data_lost group=$G topic=raw.nvd partition=0 first_offset=$H1 last_offset=$((L3 - 1)) messages=$((L3 - H1)) how=offset_reset" \
	"$SL_LOGDIR/transform3.log"
check_eq "sluice_messages_lost_total counts it" \
	"$(metric "$P" 'sluice_messages_lost_total{topic="raw.nvd"}')" "$((L3 - H1))"
check "every message still kept is read" wait_out 60 = "$((H3 - L3))" pages "$P"
check "/readyz answers 503 again" wait_out 20 = 503 http_code "http://127.0.0.1:$P/readyz"
stop_pid "$T3"
for f in transform0 transform1 transform2 transform3 fetch1 fetch3; do
	check "$f: no sanitizer report, no abort" \
		bash -c "! grep -q 'ERROR: AddressSanitizer\|runtime error:\|double free\|free(): invalid' '$SL_LOGDIR/$f.log'"
done
sl_done
