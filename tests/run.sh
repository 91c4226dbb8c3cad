#!/usr/bin/env bash
# tests/run.sh BUILD_DIR [PATTERN]: runs every unit test binary of BUILD_DIR
# and every integration test script against real services, and ends with the
# line "N passed, N failed".
#
# Tests run SLUICE_TEST_JOBS at a time (default 2), slowest first. Each of
# these lanes has its own throwaway PostgreSQL cluster, and each test its own
# fixture API server, started for it and stopped after it: a test finds the
# services as fresh as it would alone (no fixture fault, log or rate window
# left by another test), whatever ran before it. Tests start their own
# `sluice broker`. Everything is stopped whatever happens.
#
# SLUICE_SANITIZED=1 (BUILD_DIR built with SAN=1): every process of every test
# writes its ASan / UBSan / LSan reports to files of that test, and a test
# that leaves any report fails, even when each of its own checks passed: a
# worker running in the background reports to a log nobody reads, and its
# exit code may not be looked at.
#
# SLUICE_ALSO_UNITS=DIR: the unit tests of a second build (the plain one
# under `make test`) join the queue.
# SLUICE_ALSO_PLAIN="test_a test_b": these integration tests run a second
# time on that build's binaries. A sanitized build has sl_arena off
# (ASan must see each allocation), so only a plain build runs the
# workers' arena: a free() of arena memory aborted the plain transformer
# and never showed under ASan.
set -u
BUILD=${1:-build}
PATTERN=${2:-}
JOBS=${SLUICE_TEST_JOBS:-2}
cd "$(dirname "$0")/.."
export SLUICE_ROOT=$PWD SLUICE_BUILD=$BUILD
export SLUICE_BIN=$PWD/$BUILD/sluice SLUICE_FIXTURE=$PWD/$BUILD/sluice-fixture
# shellcheck source=tests/lib.sh
. tests/lib.sh
trap 'sl_cleanup' EXIT
trap 'exit 130' INT TERM

if [ -n "${SLUICE_SANITIZED:-}" ]; then
	export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/tests/lsan.supp:print_suppressions=0}
fi

# The queue. The slowest tests (by their times in CI) go first, so that the
# lanes end together rather than one running a long test alone at the end.
SLOW="test_chaos test_fetch_faults test_cli test_faults_upstream test_fetch_state
test_fetch_paging test_faults_fuzz_run test_scale_replay test_transform_commit_retry test_load_crash
test_scale_rebalance test_replay test_faults_broker test_ops_endpoints test_load_fence
test_security_secrets test_load_upsert test_security_tls test_pipeline_kev
test_transform_kev test_load_pgrestart test_guarantee_order"
items=()
want() { [ -z "$PATTERN" ] || [[ "$1" == *$PATTERN* ]]; }
for s in $SLOW; do
	t=tests/integration/$s.sh
	[ -f "$t" ] && want "$t" && items+=("integration $t")
done
for t in tests/integration/test_*.sh; do
	[ -f "$t" ] && want "$t" || continue
	[[ " $(echo $SLOW) " == *" $(basename "$t" .sh) "* ]] && continue
	items+=("integration $t")
done
for b in "$BUILD" ${SLUICE_ALSO_UNITS:-}; do
	for t in "$b"/tests/test_*; do
		[ -x "$t" ] && want "$t" && items+=("unit $t")
	done
done
if [ -n "${SLUICE_ALSO_UNITS:-}" ]; then
	for s in ${SLUICE_ALSO_PLAIN:-}; do
		t=tests/integration/$s.sh
		[ -f "$t" ] && want "$t" && items+=("plain $t")
	done
fi
[ "${#items[@]}" -gt 0 ] || { echo "no test matches '$PATTERN'"; echo "0 passed, 1 failed"; exit 1; }
[ "$JOBS" -ge 1 ] 2>/dev/null || JOBS=1
[ "$JOBS" -le "${#items[@]}" ] || JOBS=${#items[@]}

OUT=$(sl_tmpdir)
echo 0 >"$OUT/next"
: >"$OUT/counts"

# next item index, or nothing once the queue is empty
claim() {
	local n
	exec 8>>"$OUT/next.lock"
	flock 8
	n=$(cat "$OUT/next")
	echo $((n + 1)) >"$OUT/next"
	exec 8>&-
	[ "$n" -lt "${#items[@]}" ] && echo "$n"
}

# prints FILE to stdout as one piece, not interleaved with another lane's
say() {
	exec 7>>"$OUT/say.lock"
	flock 7
	cat "$1"
	exec 7>&-
}

# run_one NAME LOG COMMAND...: runs a test, counts its checks, reports it.
# The test's temporary directories are named after OWNER (SLUICE_TMP_OWNER,
# tests/lib.sh): any left once it has ended is a failing check of the test
# (a leak of ~1 GB of /tmp per suite once went unseen), and is removed.
run_one() {
	local name=$1 log=$2 rc p f start end san="" msg owner left
	shift 2
	owner=$SL_OWNER.t${log##*/}
	owner=${owner%.log}
	start=$(date +%s)
	if [ -n "${SLUICE_SANITIZED:-}" ]; then
		san=$(mktemp -d "$OUT/san.XXXXXX")
		ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:log_path=$san/asan \
			UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:log_path=$san/ubsan \
			SLUICE_TMP_OWNER=$owner "$@" >"$log" 2>&1
	else
		SLUICE_TMP_OWNER=$owner "$@" >"$log" 2>&1
	fi
	rc=$?
	end=$(date +%s)
	if [ -z "${SLUICE_TEST_KEEP:-}" ]; then
		mapfile -t left < <(sl_owned_dirs "$owner")
		if [ "${#left[@]}" -gt 0 ]; then
			echo "not ok - the test left ${#left[@]} temporary directories behind: ${left[*]}" >>"$log"
			rm -rf "${left[@]}"
		fi
	fi
	if [ -n "$san" ]; then
		for r in "$san"/*; do
			[ -f "$r" ] || continue
			echo "not ok - a sanitizer report from a process of this test: $(grep -m1 -E 'ERROR|runtime error|SUMMARY' "$r")" >>"$log"
			sed 's/^/# /' "$r" | head -30 >>"$log"
		done
	fi
	p=$(grep -c '^ok ' "$log")
	f=$(grep -c '^not ok ' "$log")
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		echo "not ok - $name exited $rc without a failing check" >>"$log"
		f=1
	fi
	if [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then
		echo "not ok - $name ran no check" >>"$log"
		f=1
	fi
	echo "$p $f" >>"$OUT/counts"
	msg=$(mktemp "$OUT/msg.XXXXXX")
	if [ "$f" -gt 0 ]; then
		{
			echo "FAIL $name ($p passed, $f failed, $((end - start)) s)"
			grep -E '^(not ok|#)' "$log" | head -60 | sed 's/^/    /'
			echo "    --- last lines of output:"
			grep -vE '^(ok |not ok |#)' "$log" | tail -40 | sed 's/^/    /'
		} >"$msg"
	else
		echo "pass $name ($p checks, $((end - start)) s)" >"$msg"
	fi
	say "$msg"
}

# lane N: its own PostgreSQL; takes tests off the queue until it is empty
lane() {
	local id=$1 i kind t name
	SL_PIDS=() SL_DIRS=() SL_PGDATA=
	# its own temporary directories: the lane that ends first must not
	# remove those of the other (tests/lib.sh)
	SL_OWNER=$SL_OWNER.lane$id
	trap 'sl_cleanup' EXIT
	trap 'exit 130' INT TERM
	if ! pg_start 2>"$OUT/lane$id.pg"; then
		echo "0 1" >>"$OUT/counts"
		echo "FAIL lane $id: PostgreSQL did not start: $(tail -3 "$OUT/lane$id.pg")"
		return 1
	fi
	while i=$(claim); do
		read -r kind t <<<"${items[$i]}"
		if [ "$kind" == unit ]; then
			name="unit/$(basename "$t")"
			[ "$(dirname "$(dirname "$t")")" == "$BUILD" ] || name="unit($(dirname "$(dirname "$t")"))/$(basename "$t")"
			run_one "$name" "$OUT/$i.log" "$t"
		else
			name="integration/$(basename "$t" .sh)"
			local bin=$SLUICE_BIN build=$SLUICE_BUILD
			if [ "$kind" == plain ]; then
				name="integration($SLUICE_ALSO_UNITS)/$(basename "$t" .sh)"
				bin=$PWD/$SLUICE_ALSO_UNITS/sluice build=$SLUICE_ALSO_UNITS
			fi
			if fixture_start 2>"$OUT/$i.fixture"; then
				SLUICE_BIN=$bin SLUICE_BUILD=$build run_one "$name" "$OUT/$i.log" bash "$t"
				stop_pid "$SL_FIXTURE_PID"
				[ -n "${SLUICE_TEST_KEEP:-}" ] || rm -rf "$SL_FIXTURE_DIR"
			else
				echo "0 1" >>"$OUT/counts"
				echo "FAIL $name: the fixture API server did not start: $(tail -3 "$OUT/$i.fixture")"
			fi
		fi
	done
}

echo "# ${#items[@]} tests of $BUILD${SLUICE_ALSO_UNITS:+ (and the unit tests of $SLUICE_ALSO_UNITS${SLUICE_ALSO_PLAIN:+, and $SLUICE_ALSO_PLAIN on it})}, $JOBS at a time${SLUICE_SANITIZED:+, sanitized: any ASan/UBSan/LSan report fails its test}"
lanes=()
for ((j = 1; j <= JOBS; j++)); do
	lane "$j" &
	lanes+=($!)
	SL_PIDS+=($!)
done
for p in "${lanes[@]}"; do wait "$p"; done

passed=0 failed=0
while read -r p f; do
	passed=$((passed + p))
	failed=$((failed + f))
done <"$OUT/counts"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
