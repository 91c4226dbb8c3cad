#!/usr/bin/env bash
# The fetcher, the transformer and the loader at scale, on a busy machine,
# repeatedly: any abort, signal, sanitizer report or lost record fails.
#
# 1. The preemption made certain (tests/tools/preempt_poll.c, LD_PRELOAD):
#    every rd_kafka_poll(rk, 0) waits first, so a split page's chunks are
#    delivered between produce and poll. Before the fix of issue 30 the
#    fetcher freed a page's block while its chunks were still being produced
#    from it: SIGSEGV, or glibc's "corrupted size vs. prev_size", every run.
# 2. The fetcher at STRESS_SCALE (fixture --scale; 476 NVD records each)
#    STRESS_RUNS times beside two CPU burners: the bug's natural habitat
#    (1 crash in 20 runs at scale 1000 on the previous binary).
# 3. With STRESS_PIPELINE=1 (make reliability): the whole NVD pipeline at
#    STRESS_PIPE_SCALE, transformer and loader running while the fetcher
#    publishes, beside the burners: every table holds exactly what the
#    data says, and no worker dies.
#
# Defaults are the short version for make test (sanitized build there);
# scripts/reliability.sh runs the long one (scale 1000, 10 runs, and the
# pipeline at scale 1000: ten times the largest input of any other test).
source "$SLUICE_ROOT/tests/lib.sh"
trap 'sl_cleanup; burners_stop' EXIT
D=$(sl_tmpdir)
SL_LOGDIR=$D
SCALE=${STRESS_SCALE:-100}
RUNS=${STRESS_RUNS:-1}
PIPE_SCALE=${STRESS_PIPE_SCALE:-1000}
# a sanitized process that has the shim preloaded must not insist on
# coming first in the library list
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0

# figure NAME RUNS CHECKED LOST: a line for scripts/reliability.sh's table
figure() {
	[ -n "${SLUICE_FIGURES:-}" ] || return 0
	echo "fault=$1 injected=$2 checked=$3 lost=$4 dup=0" >>"$SLUICE_FIGURES"
}

BURNERS=()
burners_start() {
	local i
	for i in 1 2; do
		timeout 900 sh -c 'while :; do :; done' &
		BURNERS+=($!)
	done
}
burners_stop() {
	local p
	for p in "${BURNERS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	BURNERS=()
}

# nvd.json as the issue ran it: 100 requests/s, 4 at a time
sed -e 's/"requests": 5, "per_seconds": 30/"requests": 100, "per_seconds": 1/' \
	-e 's/"concurrency": 2/"concurrency": 4/' \
	"$SLUICE_ROOT/producers/sources/nvd.json" >"$D/nvd.json"
grep -q '"concurrency": 4' "$D/nvd.json" && grep -q '"requests": 100' "$D/nvd.json" ||
	{ not_ok "the test's source definition (sed found nothing to change)"; exit 1; }

# fetch NAME: one full NVD sync into a broker of its own; checks it
fetch_checked() {
	local name=$1 want=$2 rc records
	shift 2
	broker_start $(pipeline_topics) || { not_ok "$name: broker"; return 1; }
	"$@" "$SLUICE_BIN" fetch "$D/nvd.json" --once --base-url "$SLUICE_FIXTURE_URL/nvd" \
		>"$D/$name.out" 2>"$D/$name.log"
	rc=$?
	stop_pid "$SL_BROKER_PID"
	records=$(grep -o 'event=sync_done .*' "$D/$name.log" | grep -o ' records=[0-9]*' | cut -d= -f2)
	if [ "$rc" -ne 0 ]; then
		not_ok "$name: fetch exited $rc$([ "$rc" -gt 128 ] && echo " (signal $((rc - 128)))"): $(grep -m1 -iE 'corrupt|free|sanitizer|error' "$D/$name.log" | cut -c1-200)"
		return 1
	fi
	check_eq "$name: every record published" "${records:-none}" "$want"
	figure busy_host_fetch 1 "$want" $((want - ${records:-0}))
}

# ---- 1. the preemption made certain ----
cc -shared -fPIC -o "$D/preempt_poll.so" "$SLUICE_ROOT/tests/tools/preempt_poll.c" -ldl ||
	{ not_ok "build the preempt_poll shim"; exit 1; }
fixture_start --scale 10 --nvd-rate 1000/1 || { not_ok "fixture"; exit 1; }
# 3 pages of 2 000 records, each split in 5 chunks of 1 MB
SLUICE_LOG_LEVEL=debug fetch_checked "preempted between produce and poll" 4760 \
	env LD_PRELOAD="$D/preempt_poll.so" SLUICE_PREEMPT_POLL_MS=150
n=$(grep -c 'event=page_split' "$D/preempted between produce and poll.log")
[ "$n" -ge 3 ] && ok "the pages were split into chunks ($n pages)" ||
	not_ok "no page was split ($n): the case tests nothing"
stop_pid "$SL_FIXTURE_PID"

# ---- 2. the fetcher at scale beside two burners ----
fixture_start --scale "$SCALE" --nvd-rate 1000/1 || { not_ok "fixture"; exit 1; }
for ((i = 1; i <= RUNS; i++)); do
	burners_start
	fetch_checked "busy host, scale $SCALE, run $i" $((476 * SCALE))
	burners_stop
done
stop_pid "$SL_FIXTURE_PID"

# ---- 3. the whole pipeline at scale beside two burners ----
if [ -n "${STRESS_PIPELINE:-}" ]; then
	MAP=$SLUICE_ROOT/transformers/maps/nvd_cve.json
	# rows per table at scale 1, from the map run on the data itself
	"$SLUICE_BIN" check "$MAP" "$SLUICE_ROOT/data/nvd/nvd_cves_combined_dedup.json" 2>/dev/null |
		grep '^{' | jq -r 'if .op == "replace" then "\(.table) \(.rows | length)" else "\(.table) 1" end' |
		awk '{n[$1] += $2} END {for (t in n) print t, n[t]}' >"$D/per_scale"
	[ "$(wc -l <"$D/per_scale")" -ge 4 ] && ok "expected rows per table from sluice check" ||
		{ not_ok "sluice check gave no rows per table"; exit 1; }
	new_db stress_pipe || { not_ok "database"; exit 1; }
	# raw pages compress to ~1 MB per page of 2 000: the embedded broker
	# keeps 5 MiB per partition, so 128 partitions hold a full pull
	topics=(--topic raw.nvd:128)
	for t in vulnerability vulnerability_reference vulnerability_weakness vulnerability_cpe_match; do
		topics+=(--topic "mapped.$t:32")
	done
	broker_start "${topics[@]}" --topic dlq.transform:1 --topic dlq.load:1 --topic dlq.fetch:1 ||
		{ not_ok "broker"; exit 1; }
	fixture_start --scale "$PIPE_SCALE" --nvd-rate 1000/1 || { not_ok "fixture"; exit 1; }
	bg load "$SLUICE_BIN" load --schemas "$SLUICE_ROOT/schemas"
	lpid=$LAST_PID
	bg transform "$SLUICE_BIN" transform "$MAP"
	tpid=$LAST_PID
	burners_start
	"$SLUICE_BIN" fetch "$D/nvd.json" --once --base-url "$SLUICE_FIXTURE_URL/nvd" \
		>"$D/pipe_fetch.out" 2>"$D/pipe_fetch.log"
	check_eq "pipeline at scale $PIPE_SCALE: fetch exits 0" "$?" 0
	want=$((476 * PIPE_SCALE))
	wait_out 900 -ge "$want" q "SELECT count(*) FROM vulnerability"
	burners_stop
	while read -r t n; do
		wait_out 120 -ge $((n * PIPE_SCALE)) q "SELECT count(*) FROM $t"
		got=$(q "SELECT count(*) FROM $t")
		check_eq "pipeline at scale $PIPE_SCALE: $t rows" "$got" $((n * PIPE_SCALE))
		figure busy_host_pipeline 0 $((n * PIPE_SCALE)) $((n * PIPE_SCALE - got))
	done <"$D/per_scale"
	kill -0 "$tpid" 2>/dev/null && ok "the transformer is alive" || not_ok "the transformer died: $(tail -2 "$D/transform.log")"
	kill -0 "$lpid" 2>/dev/null && ok "the loader is alive" || not_ok "the loader died: $(tail -2 "$D/load.log")"
	check_eq "no row rejected" "$(q "SELECT coalesce(sum(rejected), 0) FROM sluice.load_batches")" 0
	lost=$(cat "$D/transform.log" "$D/load.log" | grep -c 'Offset out of range\|event=data_lost')
	check_eq "no consumer offset reset (messages dropped unread)" "$lost" 0
	stop_pid "$tpid"
	stop_pid "$lpid"
fi
sl_done
