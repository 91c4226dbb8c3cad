#!/usr/bin/env bash
# scripts/reliability.sh [BUILD]: `make reliability`. Runs the fault and
# security tests (tests/integration/test_faults_*.sh, test_security_*.sh,
# test_load_pgrestart.sh; the valgrind pipeline is one of them, and so are
# the isolation checks test_faults_isolation_*.sh: a table the loader
# cannot write is parked alone, tables resolve in their schema only, a
# page's bad records are set aside while its good ones go on), the
# guarantee suite (test_guarantee_order.sh) for SLUICE_GUARANTEE_ROUNDS
# rounds (default 12 here, 3 in make test), a 1 GB XML report through
# the fetcher in bounded memory (test_fetch_xml_large.sh at
# SLUICE_XML_LARGE_MB, default 1024 here, 72 in make test) and a short
# fuzz run (FUZZ_SECONDS each, default 10) and a short soak (SOAK_MINUTES,
# default 3: scripts/soak.sh), then prints what they measured:
# faults injected, records checked, lost and duplicated; bad inputs tried
# and crashes; fuzz executions; valgrind errors. Exits non-zero when a test
# or the soak failed or any lost, dup, crash or valgrind figure is not 0.
set -u
BUILD=${1:-build}
cd "$(dirname "$0")/.."
FIG=$(mktemp "${TMPDIR:-/tmp}/sluice-figures.XXXXXX")
LOG=$(mktemp "${TMPDIR:-/tmp}/sluice-reliability.XXXXXX")
trap 'rm -f "$FIG"' EXIT
export SLUICE_FIGURES=$FIG
failed=0
start=$(date +%s)
# test_faults_scale at full size: the fetcher at ten times the largest
# input of any other test, 10 times beside two CPU burners, then the whole
# NVD pipeline at that size (issue 30's stress; make test runs it short)
export STRESS_SCALE=${STRESS_SCALE:-1000} STRESS_RUNS=${STRESS_RUNS:-10}
export STRESS_PIPELINE=${STRESS_PIPELINE-1} STRESS_PIPE_SCALE=${STRESS_PIPE_SCALE:-1000}
export SLUICE_GUARANTEE_ROUNDS=${SLUICE_GUARANTEE_ROUNDS:-12}
for pattern in test_faults_ test_security_ test_load_pgrestart test_guarantee_order; do
	echo "== tests/run.sh $BUILD $pattern"
	tests/run.sh "$BUILD" "$pattern" | tee -a "$LOG" | grep -v '^# postgres'
	[ "${PIPESTATUS[0]}" -eq 0 ] || failed=$((failed + 1))
done
# issue 27's large input at full size: a 1 GB XML report through the
# fetcher, peak RSS under the 256 MB budget (make test runs it at 72 MB)
echo "== tests/run.sh $BUILD test_fetch_xml_large (SLUICE_XML_LARGE_MB=${SLUICE_XML_LARGE_MB:=1024})"
SLUICE_XML_LARGE_MB=$SLUICE_XML_LARGE_MB tests/run.sh "$BUILD" test_fetch_xml_large | tee -a "$LOG"
[ "${PIPESTATUS[0]}" -eq 0 ] || failed=$((failed + 1))
# the same stress on the sanitized build, where a use after free is
# reported where it happens instead of corrupting the heap for later
echo "== the fetcher's stress on the ASan+UBSan build (build-check)"
if make -s -j2 BUILD=build-check SAN=1 WERROR=1 all >/dev/null; then
	STRESS_SCALE=${STRESS_SAN_SCALE:-300} STRESS_RUNS=${STRESS_SAN_RUNS:-3} STRESS_PIPELINE= \
		SLUICE_SANITIZED=1 tests/run.sh build-check test_faults_scale | tee -a "$LOG"
	[ "${PIPESTATUS[0]}" -eq 0 ] || failed=$((failed + 1))
else
	echo "reliability: the sanitized build failed"
	failed=$((failed + 1))
fi
if command -v clang >/dev/null; then
	echo "== tests/fuzz/run.sh (FUZZ_SECONDS=${FUZZ_SECONDS:=10})"
	FUZZ_SECONDS=$FUZZ_SECONDS tests/fuzz/run.sh || failed=$((failed + 1))
else
	echo "== fuzz: clang is not installed (make deps); no fuzz figures"
	failed=$((failed + 1))
fi
echo "== scripts/soak.sh: the pipeline left running ${SOAK_MINUTES:=3} min"
SOAK_OUT=$(mktemp -d "${TMPDIR:-/tmp}/sluice-soak.XXXXXX")/soak.md
SOAK_MINUTES=$SOAK_MINUTES SOAK_OUT=$SOAK_OUT scripts/soak.sh "$BUILD" 2>&1 |
	grep -v '^# make soak'
[ "${PIPESTATUS[0]}" -eq 0 ] || failed=$((failed + 1))
rm -rf "$(dirname "$SOAK_OUT")"
tests_total=$(grep -h '^[0-9]* passed, [0-9]* failed' "$LOG" |
	awk '{p += $1; f += $3} END {print p " passed, " f " failed"}')
rm -f "$LOG"

# figures: key=value lines, summed per kind
/usr/bin/python3 - "$FIG" "$(($(date +%s) - start))" "$tests_total" <<'PY'
import collections, sys
faults = collections.OrderedDict()
bad = collections.OrderedDict()
fuzz = collections.OrderedDict()
vg = collections.OrderedDict()
for line in open(sys.argv[1]):
    kv = dict(p.split("=", 1) for p in line.split() if "=" in p)
    if "fault" in kv:
        f = faults.setdefault(kv["fault"], [0, 0, 0, 0])
        for i, k in enumerate(("injected", "checked", "lost", "dup")):
            f[i] += int(kv.get(k, 0))
    elif "bad" in kv:
        b = bad.setdefault(kv["bad"], [0, 0])
        b[0] += int(kv.get("tried", 0)); b[1] += int(kv.get("crashes", 0))
    elif "fuzz" in kv:
        z = fuzz.setdefault(kv["fuzz"], [0, 0])
        z[0] += int(kv.get("runs", 0)); z[1] += int(kv.get("crashes", 0))
    elif "valgrind" in kv:
        vg[kv["valgrind"]] = [int(kv.get("errors", 1)), int(kv.get("definite_bytes", 0))]
bad_total = 0
print()
print("sluice reliability figures (%s s; tests: %s)" % (sys.argv[2], sys.argv[3]))
print()
print("%-22s %9s %9s %6s %6s" % ("fault", "injected", "checked", "lost", "dup"))
tot = [0, 0, 0, 0]
for name, f in faults.items():
    print("%-22s %9d %9d %6d %6d" % (name, *f))
    tot = [a + b for a, b in zip(tot, f)]
print("%-22s %9d %9d %6d %6d" % ("TOTAL", *tot))
print()
print("%-22s %9s %9s" % ("bad input", "tried", "crashes"))
btot = [0, 0]
for name, b in bad.items():
    print("%-22s %9d %9d" % (name, *b))
    btot = [a + c for a, c in zip(btot, b)]
for name, z in fuzz.items():
    print("%-22s %9d %9d" % ("fuzz " + name, *z))
    btot = [a + c for a, c in zip(btot, z)]
print("%-22s %9d %9d" % ("TOTAL", *btot))
print()
print("%-22s %9s %9s" % ("valgrind", "errors", "def.lost"))
for name, v in vg.items():
    print("%-22s %9d %9d" % (name, *v))
print()
bad_figs = tot[2] + tot[3] + btot[1] + sum(v[0] + v[1] for v in vg.values())
missing = [k for k, d in (("faults", faults), ("bad inputs", bad),
                          ("fuzz", fuzz), ("valgrind", vg)) if not d]
if missing:
    print("missing figures: " + ", ".join(missing))
print("records lost: %d, duplicates: %d, crashes: %d, valgrind errors: %d"
      % (tot[2], tot[3], btot[1], sum(v[0] + v[1] for v in vg.values())))
sys.exit(1 if bad_figs or missing else 0)
PY
rc=$?
[ "$failed" -eq 0 ] || echo "reliability: $failed step(s) failed (see above)"
[ "$rc" -eq 0 ] && [ "$failed" -eq 0 ]
