#!/usr/bin/env bash
# A sanitized slice of the suite, inside `make test` (the whole suite under
# sanitizers is `make check`, twice as long as CI's budget allows): the
# project built with ASan + UBSan + -Werror into build-check (the build
# `make check` uses, so a later `make check` reuses it), then
#   - every unit test binary, leaks checked;
#   - the KEV pipeline end to end (fetch -> transform -> load, the real 1404
#     records) and the loader's poison-message test, run by their own
#     scripts with the sanitized sluice and fixture server;
# every report of every process (workers run in the background, so their
# exit codes are not enough) goes to files under log_path, and there must
# be none.
source "$SLUICE_ROOT/tests/lib.sh"
trap sl_cleanup EXIT
D=$(sl_tmpdir)
SAN=build-check

if make -C "$SLUICE_ROOT" BUILD=$SAN SAN=1 WERROR=1 -j2 all >"$D/build.log" 2>&1; then
	ok "the sanitized build (ASan, UBSan, -Werror) compiles"
else
	not_ok "the sanitized build: $(grep -m5 'error' "$D/build.log")"
	exit 1
fi

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:log_path=$D/asan"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$D/ubsan"
export LSAN_OPTIONS="suppressions=$SLUICE_ROOT/tests/lsan.supp:print_suppressions=0"
export SLUICE_SANITIZED=1

# reports: one file per process that found something
reports() { ls "$D"/asan.* "$D"/ubsan.* 2>/dev/null; }
show() { for f in $(reports); do grep -m4 'ERROR\|runtime error\|SUMMARY' "$f"; done | head -12 | sed 's/^/# /'; }

n=0 bad=0
for t in "$SLUICE_ROOT/$SAN"/tests/test_*; do
	[ -x "$t" ] || continue
	n=$((n + 1))
	if ! "$t" >"$D/$(basename "$t").out" 2>&1; then
		bad=$((bad + 1))
		echo "# $(basename "$t") failed: $(grep -m3 '^not ok' "$D/$(basename "$t").out")"
	fi
done
check_eq "every unit test passes under the sanitizers ($n binaries)" "$bad" 0
[ -z "$(reports)" ] && ok "the unit tests: no sanitizer report" ||
	{ not_ok "the unit tests: sanitizer reports"; show; }
rm -f "$D"/asan.* "$D"/ubsan.*

for it in test_pipeline_kev test_load_poison; do
	SLUICE_BIN=$SLUICE_ROOT/$SAN/sluice SLUICE_FIXTURE=$SLUICE_ROOT/$SAN/sluice-fixture \
		SLUICE_BUILD=$SAN bash "$SLUICE_ROOT/tests/integration/$it.sh" >"$D/$it.out" 2>&1
	rc=$?
	p=$(grep -c '^ok ' "$D/$it.out")
	f=$(grep -c '^not ok ' "$D/$it.out")
	if [ "$rc" -eq 0 ] && [ "$f" -eq 0 ] && [ "$p" -gt 0 ]; then
		ok "$it with sanitized binaries: $p checks pass"
	else
		not_ok "$it with sanitized binaries: exit $rc, $p passed, $f failed"
		grep '^not ok' "$D/$it.out" | head -5 | sed 's/^/# /'
	fi
	[ -z "$(reports)" ] && ok "$it: no sanitizer report from any process" ||
		{ not_ok "$it: sanitizer reports"; show; }
	rm -f "$D"/asan.* "$D"/ubsan.*
done
sl_done
