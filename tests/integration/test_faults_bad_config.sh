#!/usr/bin/env bash
# The bad configuration corpus (tests/golden/bad_config/, see its README):
# every broken source definition or map is answered with its error (file,
# line, column or key), said exactly once, and exit 2 by each command that
# reads it, never a crash; the loader-side cases (unknown table, coalesce
# columns without a unique index) are reported by `sluice load`, which keeps
# running.
source "$SLUICE_ROOT/tests/lib.sh"
trap sl_cleanup EXIT
C=$SLUICE_ROOT/tests/golden/bad_config
D=$(sl_tmpdir)
SL_LOGDIR=$D

# figures NAME TRIED CRASHES: one line for `make reliability`
figures() {
	[ -n "${SLUICE_FIGURES:-}" ] || return 0
	echo "bad=$1 tried=$2 crashes=$3" >>"$SLUICE_FIGURES"
}

cases=0 crashes=0
# crashed RC: killed by a signal, timed out, or a sanitizer spoke
crashed() {
	[ "$1" -ge 124 ] || grep -q 'Sanitizer\|runtime error' "$D/err" 2>/dev/null
}

# expect CASE WHAT WANT_RC COMMAND...: runs COMMAND in the case directory
# with its env.txt; checks the exit code and that stderr holds error.txt
expect() {
	local name=$1 what=$2 want_rc=$3 rc
	shift 3
	(
		cd "$C/$name" || exit 99
		if [ -f env.txt ]; then set -a; . ./env.txt; set +a; fi
		timeout 30 "$@"
	) >"$D/out" 2>"$D/err"
	rc=$?
	if crashed "$rc"; then
		crashes=$((crashes + 1))
		not_ok "$name: $what crashed (exit $rc): $(tail -3 "$D/err")"
		return
	fi
	check_eq "$name: $what exit code" "$rc" "$want_rc"
	if grep -qF -- "$(cat "$C/$name/error.txt")" "$D/err"; then
		ok "$name: $what names the problem"
	else
		not_ok "$name: $what: want '$(cat "$C/$name/error.txt")', got '$(head -5 "$D/err")'"
	fi
	# each problem is said once (a flat map's keys pass two option tables)
	check_eq "$name: $what says it once" \
		"$(grep -cF -- "$(cat "$C/$name/error.txt")" "$D/err")" 1
	check_eq "$name: $what repeats no line" "$(sort "$D/err" | uniq -d | head -3)" ""
}

echo '{"items": [{"id": "a"}]}' >"$D/page.json"
for dir in "$C"/src_*/ "$C"/map_*/; do
	name=$(basename "$dir")
	echo "# case $name"
	cases=$((cases + 1))
	case $name in
	src_*)
		if grep -q '"env"\|\${env:' "$dir/input.json" && grep -q 'UNSET' "$dir/error.txt"; then
			# a missing secret: the file is valid, the run is not
			(cd "$dir" && "$SLUICE_BIN" lint input.json >/dev/null 2>&1)
			check_eq "$name: lint accepts the file (the secret is a run-time fact)" "$?" 0
		else
			expect "$name" lint 2 "$SLUICE_BIN" lint input.json
		fi
		expect "$name" "fetch --once" 2 "$SLUICE_BIN" fetch input.json --once
		;;
	map_*)
		expect "$name" lint 2 "$SLUICE_BIN" lint input.json
		expect "$name" transform 2 "$SLUICE_BIN" transform input.json
		expect "$name" check 2 "$SLUICE_BIN" check input.json "$D/page.json"
		;;
	esac
done

# --- loader side: the map is valid, the database does not fit it -------------
broker_start --topic dlq.load:1 || { not_ok "broker"; exit 1; }
for dir in "$C"/load_*/; do
	name=$(basename "$dir")
	echo "# case $name"
	cases=$((cases + 1))
	db=bc_$name
	new_db "$db" || { not_ok "$name: database"; continue; }
	psql -qX -v ON_ERROR_STOP=1 -f "$dir/schema.sql" >/dev/null 2>"$D/psql.err" ||
		not_ok "$name: schema.sql: $(cat "$D/psql.err")"
	(cd "$dir" && "$SLUICE_BIN" lint input.json >/dev/null 2>&1)
	check_eq "$name: the map itself is valid" "$?" 0
	(cd "$dir" && "$SLUICE_BIN" check input.json page.json) >"$D/env.jsonl" 2>/dev/null
	table=$(jq -r .table "$D/env.jsonl" | head -1)
	n=$(wc -l <"$D/env.jsonl")
	[ "$n" -gt 0 ] && ok "$name: $n envelopes for $table" || not_ok "$name: no envelopes"
	kcat -P -b "$SLUICE_BROKERS" -t "mapped.$table" <"$D/env.jsonl" 2>/dev/null
	bg "load_$name" "$SLUICE_BIN" load --schemas "$SLUICE_ROOT/schemas" \
		--group "bc-$name" --topics "^mapped\\.$table\$" --linger-ms 50 \
		--max-backoff-ms 500
	pid=$LAST_PID
	want=$(cat "$dir/error.txt")
	said() {
		grep -qF -- "$want" "$SL_LOGDIR/load_$name.log" ||
			kcat -C -b "$SLUICE_BROKERS" -t dlq.load -e -q 2>/dev/null | grep -qF -- "$want"
	}
	if wait_for 30 said; then ok "$name: sluice load says '$want'"
	else not_ok "$name: sluice load never said '$want': $(tail -3 "$SL_LOGDIR/load_$name.log")"; fi
	if kill -0 "$pid" 2>/dev/null; then ok "$name: the loader keeps running"
	else
		wait "$pid"; rc=$?
		crashed "$rc" && crashes=$((crashes + 1))
		not_ok "$name: the loader exited ($rc)"
	fi
	check_eq "$name: no row loaded" \
		"$(q "SELECT coalesce(sum(inserted + updated), 0) FROM sluice.load_batches" 2>/dev/null || echo 0)" 0
	stop_pid "$pid"
done
check "the corpus holds at least 20 cases here ($cases)" test "$cases" -ge 20
total=$((cases + $(ls -d "$SLUICE_ROOT"/tests/golden/sources/*/ | wc -l) +
	$(ls "$SLUICE_ROOT"/tests/golden/maps/*/error.txt | wc -l)))
check "at least 30 bad configurations across the corpus ($total)" test "$total" -ge 30
check_eq "no command crashed on a bad configuration" "$crashes" 0
figures config "$cases" "$crashes"
sl_done
