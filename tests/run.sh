#!/usr/bin/env bash
# tests/run.sh BUILD_DIR [PATTERN]: runs every unit test binary and every
# integration test script against real services (a throwaway PostgreSQL, the
# fixture API server; tests start their own `sluice broker`), stops them
# whatever happens, and ends with the line "N passed, N failed".
set -u
BUILD=${1:-build}
PATTERN=${2:-}
cd "$(dirname "$0")/.."
export SLUICE_ROOT=$PWD SLUICE_BUILD=$BUILD
export SLUICE_BIN=$PWD/$BUILD/sluice SLUICE_FIXTURE=$PWD/$BUILD/sluice-fixture
# shellcheck source=tests/lib.sh
. tests/lib.sh
trap 'sl_cleanup' EXIT
trap 'exit 130' INT TERM

if [ -n "${SLUICE_SANITIZED:-}" ]; then
	export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
	export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
	export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/tests/lsan.supp:print_suppressions=0}
fi

pg_start || { echo "0 passed, 1 failed"; exit 1; }
fixture_start || { echo "0 passed, 1 failed"; exit 1; }
echo "# postgres on $PGHOST:$PGPORT, fixture API at $SLUICE_FIXTURE_URL"

passed=0 failed=0
OUT=$(sl_tmpdir)
run_one() {
	local name=$1; shift
	local log="$OUT/$(basename "$name").log" rc p f start end
	start=$(date +%s)
	"$@" >"$log" 2>&1
	rc=$?
	end=$(date +%s)
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
	passed=$((passed + p))
	failed=$((failed + f))
	if [ "$f" -gt 0 ]; then
		echo "FAIL $name ($p passed, $f failed, $((end - start)) s)"
		grep -E '^(not ok|#)' "$log" | head -40 | sed 's/^/    /'
		echo "    --- last lines of output:"
		grep -vE '^(ok |not ok |#)' "$log" | tail -25 | sed 's/^/    /'
	else
		echo "pass $name ($p checks, $((end - start)) s)"
	fi
}

for t in "$BUILD"/tests/test_*; do
	[ -x "$t" ] || continue
	[ -n "$PATTERN" ] && [[ "$t" != *$PATTERN* ]] && continue
	run_one "unit/$(basename "$t")" "$t"
done
for t in tests/integration/test_*.sh; do
	[ -f "$t" ] || continue
	[ -n "$PATTERN" ] && [[ "$t" != *$PATTERN* ]] && continue
	run_one "integration/$(basename "$t" .sh)" bash "$t"
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
