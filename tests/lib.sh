# tests/lib.sh: shared helpers for the integration tests (bash). Sourced by
# tests/run.sh and by each tests/integration/test_*.sh.
#
# Every check prints "ok - what" or "not ok - what: detail". The runner
# exports SLUICE_ROOT, SLUICE_BIN, SLUICE_FIXTURE (binary), SLUICE_FIXTURE_URL
# (a fixture server started for this test alone), PGHOST/PGPORT/PGUSER (a
# throwaway cluster, shared with the tests that run before and after this
# one in its lane, one at a time).
# Tests that need their own broker or database start them with the helpers
# below; everything they start is stopped by sl_cleanup on exit.

: "${SLUICE_ROOT:=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
: "${SLUICE_BUILD:=build}"
: "${SLUICE_BIN:=$SLUICE_ROOT/$SLUICE_BUILD/sluice}"
: "${SLUICE_FIXTURE:=$SLUICE_ROOT/$SLUICE_BUILD/sluice-fixture}"
export SLUICE_ROOT SLUICE_BIN SLUICE_FIXTURE
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}

SL_FAILED=0
SL_PIDS=()
declare -gA SL_PNAME=() SL_DIED=() # bg names by pid; workers found dead
SL_DIRS=()
# Temporary directories are named after their owner,
# $SL_TMP/sluice-test.OWNER.XXXXXX, and sl_cleanup removes every directory
# of its owner: `D=$(sl_tmpdir)` runs in a subshell, where an entry added to
# SL_DIRS is lost to the shell that cleans up. The owner is this shell ($$),
# or the name the runner gives the test (SLUICE_TMP_OWNER, not passed on to
# the test's own children), so that the runner can tell which directories a
# test left behind. A subshell that cleans up on its own (a lane of the
# runner) takes a name below its parent's: OWNER.lane1.
if [ "${SL_OWNER_SET:-}" != "$$" ]; then # not again when sourced twice
	SL_TMP=${TMPDIR:-/tmp}
	SL_OWNER=${SLUICE_TMP_OWNER:-$$}
	SL_OWNER_SET=$$
	unset SLUICE_TMP_OWNER
fi

ok() { echo "ok - $*"; }
not_ok() { echo "not ok - $*"; SL_FAILED=$((SL_FAILED + 1)); }

# check_eq WHAT GOT WANT
check_eq() {
	if [ "$2" == "$3" ]; then ok "$1"; else not_ok "$1: got '$2', want '$3'"; fi
}
# check WHAT COMMAND...: passes when the command exits 0
check() {
	local what=$1; shift
	if "$@" >/dev/null 2>&1; then ok "$what"; else not_ok "$what: '$*' failed"; return 1; fi
}

# sl_tmpdir: prints the path of a new temporary directory, removed by
# sl_cleanup (call it as D=$(sl_tmpdir), as every test does)
sl_tmpdir() {
	mktemp -d "$SL_TMP/sluice-test.$SL_OWNER.XXXXXX"
}

# sl_owned_dirs [OWNER]: the temporary directories of OWNER (default: this
# shell's) and of the owners below it, one a line
sl_owned_dirs() {
	local o=${1:-$SL_OWNER} p
	[ -n "$o" ] || return 0
	for p in "$SL_TMP/sluice-test.$o".*; do
		[ -e "$p" ] && echo "$p"
	done
	return 0
}

# sl_exited PID: the process has ended (gone, or a zombie not yet reaped)
sl_exited() {
	! kill -0 "$1" 2>/dev/null || [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" == Z ]
}

# sl_logs_tail: after a failed check, the last lines of every worker's log,
# and which workers had died before they were asked to stop, so that a CI
# failure shows why without the test's directory (deleted after the run)
sl_logs_tail() {
	local f p n=0 rc
	for p in "${SL_PIDS[@]}"; do
		sl_exited "$p" && [ -z "${SL_DIED[$p]:-}" ] || continue
		wait "$p" 2>/dev/null
		rc=$?
		SL_DIED[$p]="${SL_PNAME[$p]:-pid $p} had exited by itself (status $rc)"
	done
	for p in "${!SL_DIED[@]}"; do echo "worker ${SL_DIED[$p]}"; done
	[ -n "${SL_LOGDIR:-}" ] && [ -d "$SL_LOGDIR" ] || return 0
	for f in "$SL_LOGDIR"/*.log; do
		[ -s "$f" ] || continue
		n=$((n + 1))
		[ "$n" -le 12 ] || break
		tail -n 3 "$f" | cut -c1-300 | sed "s|^|log $(basename "$f"): |"
	done
}

sl_cleanup() {
	local p
	[ "${SL_FAILED:-0}" -eq 0 ] || sl_logs_tail
	for p in "${SL_PIDS[@]}"; do
		kill "$p" 2>/dev/null
	done
	for p in "${SL_PIDS[@]}"; do
		# give each a moment to exit cleanly, then insist
		for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
		kill -9 "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	SL_PIDS=()
	[ -n "${SL_PGDATA:-}" ] && pg_stop
	# SLUICE_TEST_KEEP=1 keeps each test's directory (logs, files) to read
	local dirs=("${SL_DIRS[@]}")
	mapfile -t -O "${#dirs[@]}" dirs < <(sl_owned_dirs "$SL_OWNER")
	if [ -n "${SLUICE_TEST_KEEP:-}" ]; then
		for p in "${dirs[@]}"; do echo "# kept $p" >&2; done
	else
		for p in "${dirs[@]}"; do rm -rf "$p"; done
	fi
	SL_DIRS=()
}

# wait_file FILE [SECONDS]: waits until FILE exists and is non-empty
wait_file() {
	local i n=$(( ${2:-10} * 10 ))
	for ((i = 0; i < n; i++)); do
		[ -s "$1" ] && return 0
		sleep 0.1
	done
	return 1
}

# wait_out SECONDS OP VALUE COMMAND...: polls until `test "$(COMMAND)" OP
# VALUE` holds, running COMMAND anew each time (`wait_for 5 test "$(cmd)" =
# x` would evaluate cmd once, and wait on a result that cannot change)
_out_is() { local op=$1 want=$2; shift 2; test "$("$@" 2>/dev/null)" "$op" "$want"; }
wait_out() { local secs=$1; shift; wait_for "$secs" _out_is "$@"; }

# wait_for SECONDS COMMAND...: polls until COMMAND succeeds
wait_for() {
	# bounded by the clock, not by a count of tries: a command that itself
	# takes a second (a `sluice status` under ASan on a loaded machine) made
	# "wait_for 90" wait 12 minutes
	local secs=$1; shift
	local now end
	now=${EPOCHREALTIME/./}
	end=$((now + secs * 1000000))
	while :; do
		"$@" >/dev/null 2>&1 && return 0
		now=${EPOCHREALTIME/./}
		[ "$now" -lt "$end" ] || return 1
		sleep 0.1
	done
}

as_pg_owner() {
	if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# pg_start: a throwaway PostgreSQL cluster in a temporary directory on a free
# port; exports PGHOST (its socket directory), PGPORT, PGUSER, PGDATABASE.
pg_start() {
	local dir port i
	dir=$(mktemp -d "$SL_TMP/sluice-test.$SL_OWNER.pg.XXXXXX")
	[ "$(id -u)" -eq 0 ] && chown postgres "$dir"
	as_pg_owner "$PGBIN/initdb" -D "$dir/data" -U postgres -A trust \
		--no-sync -E UTF8 --locale=C >"$dir/initdb.log" 2>&1 || {
		echo "pg_start: initdb failed:" >&2; cat "$dir/initdb.log" >&2; return 1; }
	for i in 1 2 3 4 5 6 7 8 9 10; do
		port=$((20000 + RANDOM % 30000))
		if as_pg_owner "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/pg.log" -w -t 30 \
			-o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
			start >/dev/null 2>&1; then
			SL_PGDATA=$dir/data
			export PGHOST=$dir PGPORT=$port PGUSER=postgres PGDATABASE=postgres

			return 0
		fi
	done
	echo "pg_start: could not start PostgreSQL:" >&2; cat "$dir/pg.log" >&2
	return 1
}

pg_stop() {
	[ -n "${SL_PGDATA:-}" ] || return 0
	as_pg_owner "$PGBIN/pg_ctl" -D "$SL_PGDATA" -m immediate -w stop >/dev/null 2>&1
	SL_PGDATA=
}

# new_db NAME: a fresh database on the cluster; exports PGDATABASE=NAME
new_db() {
	psql -qX -d postgres -c "DROP DATABASE IF EXISTS \"$1\"" >/dev/null 2>&1
	psql -qX -d postgres -c "CREATE DATABASE \"$1\"" >/dev/null || return 1
	export PGDATABASE=$1
}

# q SQL: one value (or rows, '|'-separated) from the current database
q() { psql -qAtX -c "$1"; }

# short_sessions: Kafka consumer sessions of 3 s (heartbeats every 0.5 s)
# for every process the test starts from here on: workers, `sluice replay`
# and `sluice status` alike. The embedded broker answers a group's join only
# after a departed member's session (less 1 s) has run out, after a clean
# leave as after kill -9, and drops a joiner whose session is shorter than
# that wait, so one value for all (docs/embedded-broker.md). The stand-by
# lock of `sluice fetch` takes these too (its own default is a 6 s session).
# For tests that restart workers, replay groups or fetchers of one source:
# it shortens each such wait from 9 s (the lock's: 5 s) to 2 s.
short_sessions() {
	export SLUICE_KAFKA_SESSION_TIMEOUT_MS=3000
	export SLUICE_KAFKA_HEARTBEAT_INTERVAL_MS=500
}

# broker_start [ARGS]: a private `sluice broker`; exports SLUICE_BROKERS
broker_start() {
	local d
	d=$(sl_tmpdir)
	"$SLUICE_BIN" broker --bootstrap-file "$d/bootstrap" "$@" >"$d/out" 2>"$d/log" &
	SL_PIDS+=($!)
	SL_BROKER_PID=$!
	wait_file "$d/bootstrap" 60 || { echo "broker_start: no bootstrap file" >&2; cat "$d/log" >&2; return 1; }
	SLUICE_BROKERS=$(cat "$d/bootstrap")
	export SLUICE_BROKERS SL_BROKER_PID
}

# pipeline_topics: the broker_start arguments for every topic of the
# bundled sources and maps (the demo's and the soak's pipeline)
pipeline_topics() {
	local t
	for t in raw.kev raw.nvd raw.urlhaus raw.tenable; do printf -- '--topic %s:8 ' "$t"; done
	for t in known_exploited_vulnerability known_exploited_vulnerability_cwe \
		vulnerability vulnerability_reference vulnerability_weakness \
		vulnerability_cpe_match threat_indicator finding asset; do
		printf -- '--topic mapped.%s:8 ' "$t"
	done
	printf -- '--topic dlq.transform:1 --topic dlq.load:1 --topic dlq.fetch:1 --topic sluice.state:1'
}

# fixture_start [ARGS]: a private fixture API server; exports
# SLUICE_FIXTURE_URL
fixture_start() {
	local d
	d=$(sl_tmpdir)
	"$SLUICE_FIXTURE" --port 0 --data "$SLUICE_ROOT/data" --url-file "$d/url" "$@" \
		>"$d/out" 2>"$d/log" &
	SL_PIDS+=($!)
	SL_FIXTURE_PID=$!
	wait_file "$d/url" 60 || { echo "fixture_start: no url file" >&2; cat "$d/log" >&2; return 1; }
	SLUICE_FIXTURE_URL=$(cat "$d/url")
	SL_FIXTURE_DIR=$d
	export SLUICE_FIXTURE_URL SL_FIXTURE_PID
}

# bg NAME COMMAND...: runs a worker in the background, logs to $SL_LOGDIR/NAME.log
bg() {
	local name=$1; shift
	: "${SL_LOGDIR:=$(sl_tmpdir)}"
	"$@" >"$SL_LOGDIR/$name.out" 2>"$SL_LOGDIR/$name.log" &
	SL_PIDS+=($!)
	LAST_PID=$!
	SL_PNAME[$!]=$name
}

# stop_pid PID: SIGTERM, wait up to 10 s; returns the exit code
stop_pid() {
	local p=$1 i rc
	# a worker that died on its own (a crash, a fatal error) is a finding:
	# said on a failure (sl_logs_tail), with how it ended
	if sl_exited "$p"; then
		wait "$p" 2>/dev/null
		rc=$?
		SL_DIED[$p]="${SL_PNAME[$p]:-pid $p} had exited by itself (status $rc$([ $rc -gt 128 ] && echo ", signal $((rc - 128))")) before it was stopped"
		return $rc
	fi
	kill -TERM "$p" 2>/dev/null
	for ((i = 0; i < 100; i++)); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
	kill -9 "$p" 2>/dev/null
	wait "$p" 2>/dev/null
}

sl_done() {
	[ "$SL_FAILED" -eq 0 ]
}
