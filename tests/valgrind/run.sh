#!/usr/bin/env bash
# tests/valgrind/run.sh [BUILD]: a short full pipeline (CISA KEV: fetch ->
# transform -> load) with each sluice worker under valgrind memcheck.
# Passes when every row lands and valgrind reports no error and no
# definitely lost block in any worker. Uses the PostgreSQL and fixture API
# of tests/run.sh when they are exported, else starts its own. Prints
# ok/not ok lines; "valgrind=... errors=N definite_bytes=N" lines go to
# $SLUICE_FIGURES when set.
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
: "${SLUICE_BUILD:=${1:-build}}"
export SLUICE_ROOT=${SLUICE_ROOT:-$ROOT} SLUICE_BUILD
source "$ROOT/tests/lib.sh"
trap sl_cleanup EXIT
command -v valgrind >/dev/null || { not_ok "valgrind is installed (make deps)"; exit 1; }
D=$(sl_tmpdir)
if [ -n "${SLUICE_SANITIZED:-}" ]; then
	# valgrind cannot run ASan binaries: under `make check` it runs the
	# plain build (built here when missing) instead of skipping
	make -C "$ROOT" BUILD=build all >"$D/build.log" 2>&1 ||
		{ not_ok "the plain build for valgrind: $(tail -3 "$D/build.log")"; exit 1; }
	SLUICE_BIN=$ROOT/build/sluice
fi
SL_LOGDIR=$D
[ -n "${PGHOST:-}" ] || pg_start || { not_ok "PostgreSQL"; exit 1; }
[ -n "${SLUICE_FIXTURE_URL:-}" ] || fixture_start || { not_ok "fixture"; exit 1; }
new_db valgrind_kev || { not_ok "database"; exit 1; }
broker_start --topic raw.kev:2 --topic mapped.known_exploited_vulnerability:2 \
	--topic mapped.known_exploited_vulnerability_cwe:2 || { not_ok "broker"; exit 1; }
KEV=$ROOT/data/kev/known_exploited_vulnerabilities.json
want=$(jq '.vulnerabilities | length' "$KEV")

VG=(valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite
	--errors-for-leak-kinds=definite --track-origins=no --num-callers=30
	--suppressions="$ROOT/tests/valgrind/sluice.supp" --error-exitcode=99)
bg load "${VG[@]}" --log-file="$D/vg.load" "$SLUICE_BIN" load \
	--schemas "$ROOT/schemas" --linger-ms 200
LOADER=$LAST_PID
bg transform "${VG[@]}" --log-file="$D/vg.transform" "$SLUICE_BIN" transform \
	"$ROOT/transformers/maps/kev.json"
TRANSFORMER=$LAST_PID
timeout 300 "${VG[@]}" --log-file="$D/vg.fetch" "$SLUICE_BIN" fetch \
	"$ROOT/producers/sources/kev.json" --once --base-url "$SLUICE_FIXTURE_URL/kev" \
	>"$D/fetch.out" 2>"$D/fetch.log"
check_eq "fetch under valgrind: exit 0" "$?" 0
landed() { [ "$(q 'SELECT count(*) FROM known_exploited_vulnerability' 2>/dev/null)" = "$want" ]; }
wait_for 240 landed
check_eq "every KEV record landed through the valgrind workers" \
	"$(q 'SELECT count(*) FROM known_exploited_vulnerability')" "$want"
stop_vg() { # PID: SIGTERM, then wait for valgrind's leak check to finish
	local i
	kill -TERM "$1" 2>/dev/null
	for ((i = 0; i < 600; i++)); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
	wait "$1" 2>/dev/null
}
stop_vg "$TRANSFORMER"
check_eq "transform under valgrind: clean exit" "$?" 0
stop_vg "$LOADER"
check_eq "load under valgrind: clean exit" "$?" 0
for role in fetch transform load; do
	f=$D/vg.$role
	errors=$(sed -n 's/.*ERROR SUMMARY: \([0-9]*\) errors.*/\1/p' "$f" | tail -1)
	definite=$(sed -n 's/.*definitely lost: \([0-9,]*\) bytes.*/\1/p' "$f" | tail -1 | tr -d ,)
	check_eq "$role: valgrind errors" "${errors:-missing}" 0
	check_eq "$role: definitely lost bytes" "${definite:-0}" 0
	if [ "${errors:-1}" != 0 ] || [ "${definite:-0}" != 0 ]; then
		grep -A12 'Invalid\|uninitialised\|definitely lost in' "$f" | head -40 | sed 's/^/# /'
	fi
	[ -n "${SLUICE_FIGURES:-}" ] &&
		echo "valgrind=$role errors=${errors:-1} definite_bytes=${definite:-0}" >>"$SLUICE_FIGURES"
done
sl_done
