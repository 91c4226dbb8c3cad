#!/usr/bin/env bash
# tests/fuzz/run.sh: `make fuzz`. Builds the library with clang's coverage
# instrumentation, ASan and UBSan (build-fuzz/), builds every libFuzzer
# target, and runs each for FUZZ_SECONDS (default 20) from its regression
# corpus (tests/fuzz/corpus/<target>/, which is only read: new coverage
# goes to a scratch directory). A crash, leak, UB report or timeout fails
# the run, and its input is written to tests/fuzz/corpus/<target>/crash-*,
# so it joins the regression corpus that `make test` replays. Appends
# "fuzz=<target> runs=N crashes=N" lines to $SLUICE_FIGURES when set.
#
# FUZZ_JOBS (default: the number of CPUs) targets build and run at once:
# each libFuzzer process is single-threaded and runs its FUZZ_SECONDS of
# wall time whatever runs beside it, so on an idle machine a target gets
# the same CPU time as when run alone.
set -u
cd "$(dirname "$0")/../.."
SECONDS_EACH=${FUZZ_SECONDS:-20}
TARGETS=${FUZZ_TARGETS:-"jsonpath map script fetch_policy copy_encode envelope jsonscan jsonprefix jsondump xml"}
JOBS=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 1)}
B=build-fuzz
FLAGS="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined,fuzzer-no-link -fno-sanitize-recover=undefined"

command -v clang >/dev/null || { echo "fuzz: clang is not installed (make deps)" >&2; exit 1; }
mkdir -p $B
make -s -j"$JOBS" BUILD=$B CC=clang CFLAGS="$FLAGS" LDFLAGS="-fsanitize=address,undefined" \
	$B/libsluice.a >$B/lib.log 2>&1 || { cat $B/lib.log >&2; echo "fuzz: library build failed" >&2; exit 1; }
BUILD_JOBS=$JOBS tests/fuzz/build.sh fuzz $B/fuzz $B/libsluice.a || { echo "fuzz: target build failed" >&2; exit 1; }

# fuzz_one TARGET: runs one target, writes its result line to $B/fuzz_TARGET.result
fuzz_one() {
	local t=$1 work log rc runs crashes=0 result=ok
	work=$(mktemp -d "${TMPDIR:-/tmp}/sluice-fuzz.XXXXXX")
	log=$B/fuzz_$t.log
	# leak checks on (libFuzzer's default), also when the caller's
	# ASAN_OPTIONS (tests/run.sh's log_path) says nothing of them: a leak
	# on a path of bad input is what fuzzing finds (fuzz_map found one in
	# the map compiler's conditions)
	ASAN_OPTIONS=detect_leaks=1${ASAN_OPTIONS:+:$ASAN_OPTIONS} \
	$B/fuzz/fuzz_$t -max_total_time="$SECONDS_EACH" -timeout=10 \
		-rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
		-artifact_prefix="tests/fuzz/corpus/$t/" \
		"$work" "tests/fuzz/corpus/$t" >"$log" 2>&1
	rc=$?
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	if [ "$rc" -ne 0 ]; then
		crashes=1 result="CRASH (rc $rc): see $log; input saved under tests/fuzz/corpus/$t/"
	fi
	printf '%-14s %10s %8s %8s %s\n' "$t" "${runs:-0}" "$(ls "$work" | wc -l)" "$crashes" "$result" \
		>"$B/fuzz_$t.result"
	rm -rf "$work"
}

running=0
for t in $TARGETS; do
	rm -f "$B/fuzz_$t.result"
	if [ "$running" -ge "$JOBS" ]; then
		wait -n
		running=$((running - 1))
	fi
	fuzz_one "$t" &
	running=$((running + 1))
done
wait

failed=0
printf '%-14s %10s %8s %8s %s\n' target runs corpus crashes result
for t in $TARGETS; do
	if [ ! -s "$B/fuzz_$t.result" ]; then
		printf '%-14s %10s %8s %8s %s\n' "$t" 0 0 1 "no result: see $B/fuzz_$t.log"
		failed=$((failed + 1))
		continue
	fi
	cat "$B/fuzz_$t.result"
	read -r _ runs _ crashes _ <"$B/fuzz_$t.result"
	[ "$crashes" -ne 0 ] && failed=$((failed + 1))
	[ -n "${SLUICE_FIGURES:-}" ] && echo "fuzz=$t runs=${runs:-0} crashes=$crashes" >>"$SLUICE_FIGURES"
done
[ "$failed" -eq 0 ]
