#!/usr/bin/env bash
# test_faults_isolation_schema: a table name resolves in the configured
# schema only (default public; --schema or SLUICE_SCHEMA), never through
# the search path into pg_catalog: envelopes for "pg_description" park
# that table as missing, and PostgreSQL is never asked to write
# pg_catalog.pg_description; with --schema sec, t_s lands in sec.t_s and
# not in public.t_s; a system schema is refused as --schema.
source "$SLUICE_ROOT/tests/lib.sh"
source "$SLUICE_ROOT/loaders/testdata/load_lib.sh"
trap sl_cleanup EXIT
D=$(sl_tmpdir)

new_db iso_schema || { not_ok "database"; exit 1; }
broker_start --topic mapped.pg_description:1 --topic mapped.t_s:1 \
	--topic dlq.load:1 || { not_ok "broker"; exit 1; }
load_schemas "$D/schemas" "CREATE TABLE IF NOT EXISTS t_s (id text PRIMARY KEY, v text);
CREATE SCHEMA IF NOT EXISTS sec;
CREATE TABLE IF NOT EXISTS sec.t_s (id text PRIMARY KEY, v text);"
for i in 1 2 3; do
	printf 'k%s\t{"v":1,"table":"pg_description","op":"upsert","key":{"objoid":%s,"classoid":1,"objsubid":0},"row":{"objoid":%s,"classoid":1,"objsubid":0,"description":"x"},"lineage":{"source":"test"}}\n' "$i" "$i" "$i"
done >"$D/pgd.tsv"
produce mapped.pg_description "$D/pgd.tsv"
for i in 1 2 3 4 5; do
	printf 'k%s\t{"v":1,"table":"t_s","op":"upsert","key":{"id":"k%s"},"row":{"id":"k%s","v":"in sec"},"lineage":{"source":"test"}}\n' "$i" "$i" "$i"
done >"$D/ts.tsv"
produce mapped.t_s "$D/ts.tsv"

timeout 30 "$SLUICE_BIN" load --schemas "$D/schemas" --schema pg_catalog >/dev/null 2>"$D/err"
check_eq "--schema pg_catalog is refused (exit 2)" "$?" 2
check "... saying why" grep -q 'system or bookkeeping schema' "$D/err"
SLUICE_SCHEMA=information_schema timeout 30 "$SLUICE_BIN" load --schemas "$D/schemas" >/dev/null 2>&1
check_eq "SLUICE_SCHEMA=information_schema is refused (exit 2)" "$?" 2

bg load "$SLUICE_BIN" load --schemas "$D/schemas" --schema sec --linger-ms 100
LOADER=$LAST_PID
LOG=$SL_LOGDIR/load.log
check "t_s lands in sec.t_s" wait_q 60 "SELECT count(*) FROM sec.t_s" 5
check_eq "public.t_s, first on the search path, is untouched" \
	"$(q "SELECT count(*) FROM public.t_s")" 0
check "pg_description is parked as missing from schema sec" \
	wait_for 30 grep -q 'event=table_parked table=pg_description .*does not exist in schema sec' "$LOG"
check_eq "pg_catalog.pg_description was never written to (no SQL error)" \
	"$(grep -c 'sqlstate=4\|SQLSTATE 4\|permission denied\|rollback_and_rewind' "$LOG")" 0
check_eq "nothing dead-lettered" \
	"$(kcat -C -b "$SLUICE_BROKERS" -t dlq.load -e -q 2>/dev/null | wc -l)" 0
stop_pid "$LOADER"

# the default schema is public: the same rows land in public.t_s
bg load2 "$SLUICE_BIN" load --schemas "$D/schemas" --group other --linger-ms 100
check "without --schema, t_s lands in public.t_s" \
	wait_q 60 "SELECT count(*) FROM public.t_s" 5
check "... and pg_description is missing from schema public" \
	wait_for 30 grep -q 'event=table_parked table=pg_description .*does not exist in schema public' "$SL_LOGDIR/load2.log"
stop_pid "$LAST_PID"
sl_done
