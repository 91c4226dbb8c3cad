#!/usr/bin/env bash
# The fuzz regression corpus, replayed without libFuzzer: every fuzz target
# (tests/fuzz/fuzz_*.c) is compiled with a plain main() against this
# build's library (the sanitized one under `make check`) and fed every file
# of tests/fuzz/corpus/<target>/: the real-data seeds and each input that
# ever crashed a target. None may crash.
source "$SLUICE_ROOT/tests/lib.sh"
trap sl_cleanup EXIT
D=$(sl_tmpdir)
LIB=$SLUICE_ROOT/$SLUICE_BUILD/libsluice.a

san=0
[ -n "${SLUICE_SANITIZED:-}" ] && san=1
if FUZZ_SAN=$san BUILD_JOBS=$(nproc) "$SLUICE_ROOT/tests/fuzz/build.sh" replay "$D/bin" "$LIB" >"$D/build.log" 2>&1; then
	ok "fuzz targets build for replay (sanitizers: $san)"
else
	not_ok "fuzz targets build for replay: $(tail -5 "$D/build.log")"
	exit 1
fi
tried=0 crashes=0
for src in "$SLUICE_ROOT"/tests/fuzz/fuzz_*.c; do
	t=$(basename "$src" .c)
	t=${t#fuzz_}
	[ "$t" = util ] && continue
	dir=$SLUICE_ROOT/tests/fuzz/corpus/$t
	n=$(find "$dir" -maxdepth 1 -type f | wc -l)
	[ "$n" -gt 0 ] && ok "$t: corpus has $n inputs" || not_ok "$t: empty corpus"
	timeout 120 "$D/bin/fuzz_$t" "$dir" >"$D/$t.out" 2>"$D/$t.err"
	rc=$?
	tried=$((tried + n))
	if [ "$rc" -eq 0 ] && ! grep -q 'Sanitizer\|runtime error' "$D/$t.err"; then
		check_eq "$t: every input replayed" "$(cat "$D/$t.out")" "replayed $n inputs, 0 unreadable"
	else
		crashes=$((crashes + 1))
		not_ok "$t: replay crashed (exit $rc): $(grep -m3 'ERROR\|runtime error\|SUMMARY' "$D/$t.err")"
	fi
done
[ -n "${SLUICE_FIGURES:-}" ] && echo "bad=fuzz_corpus tried=$tried crashes=$crashes" >>"$SLUICE_FIGURES"
sl_done
