#!/usr/bin/env bash
# libFuzzer in CI, bounded: every fuzz target (tests/fuzz/fuzz_*.c, built
# with clang's fuzzer, ASan and UBSan by tests/fuzz/run.sh) runs
# SLUICE_FUZZ_SECONDS (default 5) from its regression corpus. A crash, a
# sanitizer report or a timeout fails this test; libFuzzer writes the input
# to tests/fuzz/corpus/<target>/crash-*, and it is printed here in base64
# too (a CI clone is thrown away): commit it, and every `make test` replays
# it from then on (test_faults_fuzz_replay.sh).
source "$SLUICE_ROOT/tests/lib.sh"
trap sl_cleanup EXIT
D=$(sl_tmpdir)

if ! command -v clang >/dev/null; then
	not_ok "clang is not installed (make deps installs it)"
	exit 1
fi
before=$(ls "$SLUICE_ROOT"/tests/fuzz/corpus/*/crash-* 2>/dev/null | sort)
FUZZ_SECONDS=${SLUICE_FUZZ_SECONDS:-5} FUZZ_TARGETS="jsonpath map fetch_policy copy_encode envelope jsonscan jsonprefix jsondump xml" \
	"$SLUICE_ROOT/tests/fuzz/run.sh" >"$D/run.out" 2>&1
rc=$?
sed 's/^/# /' "$D/run.out" | grep -v '^# $' | tail -12
for t in jsonpath map fetch_policy copy_encode envelope jsonscan jsonprefix jsondump xml; do
	line=$(grep -E "^$t +[0-9]+ " "$D/run.out")
	runs=$(awk '{print $2}' <<<"$line")
	if [ -z "$line" ]; then
		not_ok "fuzz $t: did not run"
	elif [ "$(awk '{print $4}' <<<"$line")" = 0 ] && [ "${runs:-0}" -gt 0 ]; then
		ok "fuzz $t: $runs runs, no crash"
	else
		not_ok "fuzz $t: $line"
	fi
done
check_eq "tests/fuzz/run.sh exits 0" "$rc" 0
after=$(ls "$SLUICE_ROOT"/tests/fuzz/corpus/*/crash-* 2>/dev/null | sort)
for f in $(comm -13 <(echo "$before") <(echo "$after")); do
	echo "# new crash input $f (base64):"
	base64 -w 100 "$f" | sed 's/^/#   /'
done
sl_done
