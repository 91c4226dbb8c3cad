#!/usr/bin/env bash
# The command line contract: bad arguments to any subcommand give a one-line
# error and exit 2; --help of each exits 0; a missing broker or database
# gives a clear message naming what was tried and exit 1, never a crash.
source "$SLUICE_ROOT/tests/lib.sh"
trap sl_cleanup EXIT
d=$(sl_tmpdir)
cd "$d" || exit 1
S=$SLUICE_BIN
for c in fetch transform load replay check lint broker status dlq health; do
	"$S" "$c" --no-such-flag >"$d/out" 2>"$d/err"
	rc=$?
	check_eq "$c --no-such-flag: exit 2" "$rc" 2
	check_eq "$c --no-such-flag: one line naming the flag" \
		"$(wc -l <"$d/err") $(grep -c -- '--no-such-flag' "$d/err")" "1 1"
	"$S" "$c" --help >"$d/out" 2>"$d/err"
	check_eq "$c --help: exit 0 with text" "$? $([ -s "$d/out" ] && echo text)" "0 text"
done
for c in fetch transform check health; do
	"$S" "$c" >"$d/out" 2>"$d/err"
	check_eq "$c without its arguments: exit 2, one line" "$? $(wc -l <"$d/err")" "2 1"
done

# nothing listens on these
dead_broker=127.0.0.1:1
dead_pg=$d/nopg
export PGHOST=$dead_pg PGPORT=5999 PGDATABASE=x
SLUICE_BROKERS=$dead_broker "$S" load --schemas "$SLUICE_ROOT/schemas" >"$d/out" 2>"$d/err"
check_eq "load without a database: exit 1" "$?" 1
check "load without a database: names the server it tried" grep -q "could not connect to database.*$dead_pg.*5999" "$d/err"
unset PGHOST PGPORT PGDATABASE
pg_start >/dev/null 2>&1 && new_db cli >/dev/null
SLUICE_BROKERS=$dead_broker timeout 60 "$S" load --schemas "$SLUICE_ROOT/schemas" >"$d/out" 2>"$d/err"
check_eq "load without a broker: exit 1" "$?" 1
check "load without a broker: names the brokers it tried" grep -q "$dead_broker" "$d/err"
SLUICE_BROKERS=$dead_broker timeout 60 "$S" transform "$SLUICE_ROOT/transformers/maps/kev.json" >"$d/out" 2>"$d/err"
check_eq "transform without a broker: exit 1" "$?" 1
check "transform without a broker: names the brokers it tried" grep -q "$dead_broker" "$d/err"
SLUICE_BROKERS=$dead_broker timeout 60 "$S" fetch "$SLUICE_ROOT/producers/sources/kev.json" --once \
	--base-url "$SLUICE_FIXTURE_URL/kev" >"$d/out" 2>"$d/err"
check_eq "fetch without a broker: exit 1" "$?" 1
check "fetch without a broker: names the brokers it tried" grep -q "$dead_broker" "$d/err"
SLUICE_BROKERS=$dead_broker timeout 60 "$S" replay --group g --topic t --to earliest >"$d/out" 2>"$d/err"
check_eq "replay without a broker: exit 1, one line naming it" "$? $(wc -l <"$d/err") $(grep -c "$dead_broker" "$d/err")" "1 1 1"
for f in "$d"/err; do ! grep -qi "segmentation\|core dumped\|AddressSanitizer" "$f"; done &&
	ok "no crash" || not_ok "a crash"
sl_done
