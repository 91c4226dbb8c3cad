#!/usr/bin/env bash
# The test harness cleans up after itself: every temporary directory a test
# makes with sl_tmpdir is removed when it ends, even when it was made in a
# subshell ($(sl_tmpdir), the way every test calls it), and the runner
# fails a test that leaves any behind. Each part runs with TMPDIR set to an
# empty directory of its own and counts what is left there.
source "$SLUICE_ROOT/tests/lib.sh"
trap sl_cleanup EXIT
D=$(sl_tmpdir)
# the runner's PostgreSQL runs as postgres and needs to reach its directory
chmod 0755 "$D"
count() { find "$1" -mindepth 1 -maxdepth 1 -name 'sluice-test.*' | wc -l; }

# a test that makes directories as tests do: in $(...), in bg's log
# directory, in a subshell, and through the fixture; it counts them before
# it ends
cat >"$D/maker.sh" <<'EOF'
source "$SLUICE_ROOT/tests/lib.sh"
source "$SLUICE_ROOT/tests/lib.sh" # as a helper file may do again
[ -n "${NO_CLEANUP:-}" ] || trap sl_cleanup EXIT
A=$(sl_tmpdir)
B=$(sl_tmpdir)
bg sleeper sleep 30
( C=$(sl_tmpdir); echo "$C" >"$A/c" )
fixture_start >/dev/null 2>&1 || echo "no fixture" >&2
touch "$A/file" "$B/file"
find "$TMPDIR" -mindepth 1 -maxdepth 1 -name 'sluice-test.*' | wc -l >"$COUNT"
bash -c 'echo "child=${SLUICE_TMP_OWNER-unset}"' >>"$COUNT"
echo "pids=${SL_PIDS[*]}" >>"$COUNT"
EOF
mkdir -p "$D/t1" "$D/t2"
TMPDIR=$D/t1 COUNT=$D/n1 timeout 60 bash "$D/maker.sh" 2>"$D/e1"
made=$(head -1 "$D/n1" 2>/dev/null)
[ "${made:-0}" -ge 5 ] && ok "a test made $made directories (\$(sl_tmpdir), bg, a subshell, the fixture)" ||
	not_ok "a test made ${made:-no} directories, want 5 or more: $(cat "$D/e1")"
check_eq "all removed when it ends" "$(count "$D/t1")" 0
alive() { # FILE: the processes the test of FILE started that still run
	local p n=0
	for p in $(sed -n 's/^pids=//p' "$1"); do kill -0 "$p" 2>/dev/null && n=$((n + 1)); done
	echo "$n"
}
check_eq "its processes stopped" "$(alive "$D/n1")" 0

# SLUICE_TMP_OWNER names the test's directories for the runner, and is not
# handed on to what the test starts
TMPDIR=$D/t2 COUNT=$D/n2 NO_CLEANUP=1 SLUICE_TMP_OWNER=given.t7 timeout 60 bash "$D/maker.sh" 2>"$D/e2"
check_eq "without sl_cleanup, its processes still run" "$(alive "$D/n2")" 2
for p in $(sed -n 's/^pids=//p' "$D/n2"); do kill "$p" 2>/dev/null; done
check_eq "without sl_cleanup, the directories stay" "$(count "$D/t2")" "$(head -1 "$D/n2")"
check_eq "named after the owner the runner gave" \
	"$(find "$D/t2" -mindepth 1 -maxdepth 1 -name 'sluice-test.given.t7.*' | wc -l)" "$(head -1 "$D/n2")"
check_eq "SLUICE_TMP_OWNER is not passed on" "$(grep -o 'child=.*' "$D/n2")" "child=unset"

# a lane of the runner (a subshell cleaning up on its own) removes its own
# directories, not its parent's nor another lane's
mkdir -p "$D/t3"
(
	TMPDIR=$D/t3 SL_TMP=$D/t3 SL_OWNER=lanes
	mine=$(sl_tmpdir)
	(SL_OWNER=$SL_OWNER.lane1; sl_tmpdir >/dev/null; sl_cleanup)
	(SL_OWNER=$SL_OWNER.lane2; sl_tmpdir >/dev/null; sleep 0.1) # no cleanup
	[ -d "$mine" ] && echo parent-kept >"$D/n3"
	ls "$D/t3" >>"$D/n3"
)
check "a lane's cleanup keeps its parent's directory" grep -q parent-kept "$D/n3"
check_eq "a lane's cleanup removes its own directories only" \
	"$(grep -c '^sluice-test\.lanes\.lane1\.' "$D/n3") $(grep -c '^sluice-test\.lanes\.lane2\.' "$D/n3")" "0 1"

# the runner: one test that cleans up and one that leaves two directories
# behind, in a copy of the tree beside the real build
R=$D/tree
mkdir -p "$R/tests/integration" "$D/rtmp"
chmod 0755 "$D/rtmp"
cp "$SLUICE_ROOT/tests/run.sh" "$SLUICE_ROOT/tests/lib.sh" "$R/tests/"
[ -f "$SLUICE_ROOT/tests/lsan.supp" ] && cp "$SLUICE_ROOT/tests/lsan.supp" "$R/tests/"
ln -s "$SLUICE_ROOT/data" "$R/data"
ln -s "$(dirname "$SLUICE_BIN")" "$R/bld"
cat >"$R/tests/integration/test_tmp_clean.sh" <<'EOF'
source "$SLUICE_ROOT/tests/lib.sh"
trap sl_cleanup EXIT
A=$(sl_tmpdir); B=$(sl_tmpdir)
[ -d "$A" ] && [ -d "$B" ] && ok "two directories"
EOF
sed '/^trap/d' "$R/tests/integration/test_tmp_clean.sh" >"$R/tests/integration/test_tmp_leaky.sh"
TMPDIR=$D/rtmp SLUICE_TEST_JOBS=1 timeout 120 bash "$R/tests/run.sh" bld test_tmp_ >"$D/run.out" 2>&1
check_eq "runner: counts" "$(tail -1 "$D/run.out")" "2 passed, 1 failed"
grep -q '^pass integration/test_tmp_clean ' "$D/run.out" && ok "runner: the test that cleans up passes" ||
	not_ok "runner: $(grep test_tmp_clean "$D/run.out")"
grep -A3 '^FAIL integration/test_tmp_leaky ' "$D/run.out" | grep -q 'not ok - the test left 2 temporary directories behind' &&
	ok "runner: the test that leaves two directories fails, saying so" || not_ok "runner: $(cat "$D/run.out")"
check_eq "runner: nothing left in TMPDIR (its own, its lane's, the tests')" "$(count "$D/rtmp")" 0
sl_done
