#!/usr/bin/env bash
# test_load_migrations: versioned schema files (issue 28). In a schema
# directory's tables/, a file NNN_name.sql is a migration: applied once, in
# version order (numeric: 2 before 10), recorded in
# sluice.schema_migrations; a restart applies nothing again; an applied
# migration whose text changed is an error naming the file (exit 1, never
# applied again); unnumbered files keep being re-applied when they change;
# several loaders starting together apply each migration once.
# `sluice load --schemas-only` applies and exits 0.
source "$SLUICE_ROOT/tests/lib.sh"
source "$SLUICE_ROOT/loaders/testdata/load_lib.sh"
trap sl_cleanup EXIT

new_db load_migrations || exit 1
D=$(sl_tmpdir)
load_schemas "$D/base" "CREATE TABLE IF NOT EXISTS t_mig (id integer PRIMARY KEY,
	_lineage jsonb, _loaded_at timestamptz);"
U=$D/mine
mkdir -p "$U/tables"
# each migration appends its version to t_mig_log: the order it ran in,
# and how often; 002 needs the column 001 adds, 010 the one 002 adds
cat >"$U/tables/001_log.sql" <<'SQL'
CREATE TABLE t_mig_log (n serial, version int);
ALTER TABLE t_mig ADD COLUMN a text;
INSERT INTO t_mig_log (version) VALUES (1);
SQL
cat >"$U/tables/2_risk.sql" <<'SQL'
ALTER TABLE t_mig ADD COLUMN risk numeric, ALTER COLUMN a SET NOT NULL;
INSERT INTO t_mig_log (version) VALUES (2);
SQL
cat >"$U/tables/010_precision.sql" <<'SQL'
ALTER TABLE t_mig ALTER COLUMN risk TYPE numeric(4,2);
INSERT INTO t_mig_log (version) VALUES (10);
SQL
# an unnumbered file: applied after the migrations, again when it changes
echo "CREATE INDEX IF NOT EXISTS t_mig_risk ON t_mig (risk);" >"$U/tables/index.sql"

apply() { "$SLUICE_BIN" load --schemas "$D/base" --schemas "$U" --schemas-only "$@"; }
log_of() { q "SELECT string_agg(version::text, ',' ORDER BY n) FROM t_mig_log"; }

apply >"$D/a1.out" 2>"$D/a1.log"
check_eq "--schemas-only exits 0" "$?" 0
check_eq "migrations ran once each, in version order" "$(log_of)" "1,2,10"
check_eq "... recorded under their directory" \
	"$(q "SELECT string_agg(version || ':' || name, ',' ORDER BY version) FROM sluice.schema_migrations WHERE dir = '$U'")" \
	"1:001_log.sql,2:2_risk.sql,10:010_precision.sql"
check_eq "... with their checksums and times" \
	"$(q "SELECT count(*) FROM sluice.schema_migrations WHERE checksum ~ '^[0-9a-f]{16}$' AND applied_at <= now()")" 3
check_eq "the migrations took effect" \
	"$(q "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 't_mig'::regclass AND attname = 'risk'")" \
	"numeric(4,2)"
check_eq "the unnumbered file is recorded as before" \
	"$(q "SELECT version FROM sluice.schema_version WHERE file = '$U/tables/index.sql'")" 1
check "each application is logged" grep -q "event=migration_applied file=$U/tables/2_risk.sql version=2 " "$D/a1.log"
check_eq "no migration in sluice.schema_version" \
	"$(q "SELECT count(*) FROM sluice.schema_version WHERE file LIKE '%_risk.sql' OR file LIKE '%_log.sql'")" 0

# a restart applies nothing again; a new migration is applied; a changed
# unnumbered file is applied again (today's rule for it)
cat >"$U/tables/011_default.sql" <<'SQL'
ALTER TABLE t_mig ALTER COLUMN a SET DEFAULT 'x';
INSERT INTO t_mig_log (version) VALUES (11);
SQL
echo "CREATE INDEX IF NOT EXISTS t_mig_risk2 ON t_mig (risk, id);" >"$U/tables/index.sql"
apply >"$D/a2.out" 2>"$D/a2.log"
check_eq "restart: exit 0" "$?" 0
check_eq "restart: only the new migration ran" "$(log_of)" "1,2,10,11"
check "restart: one migration and the changed file applied" grep -q "event=schemas dir=.* applied=2" "$D/a2.log"
check_eq "the changed unnumbered file was applied again" \
	"$(q "SELECT version FROM sluice.schema_version WHERE file = '$U/tables/index.sql'")" 2
apply >"$D/a3.out" 2>"$D/a3.log"
check "a third start applies nothing" grep -q "event=schemas dir=.* applied=0" "$D/a3.log"
check_eq "... and runs no migration" "$(log_of)" "1,2,10,11"

# an applied migration edited: an error naming the file, exit 1
cp "$U/tables/2_risk.sql" "$D/2_risk.keep"
echo "-- edited" >>"$U/tables/2_risk.sql"
apply >"$D/a4.out" 2>"$D/a4.log"
check_eq "an edited migration: exit 1" "$?" 1
check "... the error names the file and says it changed" \
	grep -q "sluice load: schema migration $U/tables/2_risk.sql: changed since it was applied" "$D/a4.log"
check_eq "... nothing ran" "$(log_of)" "1,2,10,11"
bg edited "$SLUICE_BIN" load --schemas "$D/base" --schemas "$U"
wait "$LAST_PID"
check_eq "a loader (not --schemas-only) refuses to start on it too" "$?" 1
cp "$D/2_risk.keep" "$U/tables/2_risk.sql"

# two migrations with one version: an error naming both
echo "SELECT 1;" >"$U/tables/0011_other.sql"
apply >"$D/a5.out" 2>"$D/a5.log"
check_eq "a duplicate version: exit 1" "$?" 1
check "... naming both files" grep -q "migrations tables/0011_other.sql and tables/011_default.sql have the same version 11" "$D/a5.log"
rm "$U/tables/0011_other.sql"

# several loaders starting at once on a fresh database: each migration once
new_db load_migrations2 || exit 1
pids=()
for i in 1 2 3 4; do
	apply >"$D/c$i.out" 2>"$D/c$i.log" &
	pids+=($!)
done
codes=
for p in "${pids[@]}"; do wait "$p"; codes+=$?; done
check_eq "four loaders at once: all exit 0" "$codes" 0000
check_eq "... each migration ran once, in order" "$(log_of)" "1,2,10,11"
check_eq "... recorded once each" "$(q "SELECT count(*) FROM sluice.schema_migrations")" 4
check_eq "... one of them applied them" \
	"$(cat "$D"/c?.log | grep -c 'event=migration_applied')" 4
sl_done
