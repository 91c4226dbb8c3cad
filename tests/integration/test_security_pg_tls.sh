#!/usr/bin/env bash
# PostgreSQL over TLS, configured the documented way (libpq's PG* variables
# or DATABASE_URL, docs/security.md): a throwaway cluster of this test's own
# with ssl=on (a CA and a server certificate made here with openssl), TCP
# allowed only by `hostssl` (scram password) and refused by `hostnossl
# reject`. `sluice load` with PGSSLMODE=verify-full loads rows and its
# session is encrypted (pg_stat_ssl); `sluice status` connects with
# sslmode=require in DATABASE_URL and with verify-full; verify-full against
# another CA, or for a host name the certificate does not carry, fails with
# libpq's reason and names host, port, database and user; a non-TLS
# connection is refused by the hostnossl rule. The password (a canary)
# never appears in any output. Every command runs under a short timeout.
source "$SLUICE_ROOT/tests/lib.sh"
trap sl_cleanup EXIT
D=$(sl_tmpdir)
SL_LOGDIR=$D
CANARY=SECRET-pgtls-canary-123
KEV=$SLUICE_ROOT/data/kev/known_exploited_vulnerabilities.json

# --- certificates: a CA, a server certificate it signs, an unrelated CA ------
mkcerts() {
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=sluice test CA" \
		-keyout "$D/ca.key" -out "$D/ca.pem" &&
		openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
			-keyout "$D/server.key" -out "$D/server.csr" &&
		printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$D/san.ext" &&
		openssl x509 -req -in "$D/server.csr" -CA "$D/ca.pem" -CAkey "$D/ca.key" \
			-CAcreateserial -days 2 -extfile "$D/san.ext" -out "$D/server.pem" &&
		openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=another CA" \
			-keyout "$D/other.key" -out "$D/other.pem"
} >/dev/null 2>&1
mkcerts || { not_ok "openssl: test certificates"; exit 1; }

# --- a cluster of this test's own: ssl=on, TLS-only TCP ------------------------
pg_start || { not_ok "pg_start"; exit 1; }
cp "$D/server.pem" "$D/server.key" "$SL_PGDATA/"
chmod 600 "$SL_PGDATA/server.key"
[ "$(id -u)" -eq 0 ] && chown postgres "$SL_PGDATA/server.pem" "$SL_PGDATA/server.key"
cat >"$SL_PGDATA/pg_hba.conf" <<'HBA'
local     all all                trust
hostssl   all all 127.0.0.1/32   scram-sha-256
hostnossl all all 127.0.0.1/32   reject
HBA
psql -qX -v ON_ERROR_STOP=1 -d postgres >/dev/null <<SQL || { not_ok "enable ssl"; exit 1; }
ALTER SYSTEM SET ssl = on;
ALTER SYSTEM SET ssl_cert_file = 'server.pem';
ALTER SYSTEM SET ssl_key_file = 'server.key';
CREATE ROLE sluice_tls LOGIN PASSWORD '$CANARY';
CREATE DATABASE pgtls OWNER sluice_tls;
SELECT pg_reload_conf();
SQL
# the reload is asynchronous: wait until the server says ssl is on
ssl_on() { [ "$(psql -qAtX -d postgres -c 'SHOW ssl')" = on ]; }
wait_for 10 ssl_on
check_eq "the cluster has ssl on" "$(psql -qAtX -d postgres -c 'SHOW ssl')" on
ADMIN_HOST=$PGHOST

# as NAME [VAR=VALUE...] -- COMMAND...: runs COMMAND as sluice_tls over TCP
# (plus the given variables), stdout to NAME.out, stderr to NAME.err
as() {
	local name=$1; shift
	local vars=()
	while [ "$1" != "--" ]; do vars+=("$1"); shift; done
	shift
	env -u PGSSLMODE -u PGSSLROOTCERT -u DATABASE_URL \
		PGHOST=127.0.0.1 PGPORT="$PGPORT" PGUSER=sluice_tls PGDATABASE=pgtls \
		PGPASSWORD="$CANARY" "${vars[@]}" timeout 20 "$@" \
		>"$D/$name.out" 2>"$D/$name.err"
}

broker_start --topic mapped.known_exploited_vulnerability:1 --topic dlq.load:1 ||
	{ not_ok "broker"; exit 1; }

# --- a non-TLS connection is refused by hostnossl --------------------------------
as nossl PGSSLMODE=disable -- "$SLUICE_BIN" load --schemas "$SLUICE_ROOT/schemas"
check_eq "sslmode=disable: sluice load exits 1" "$?" 1
grep -q 'could not connect to database (host=127.0.0.1 port='"$PGPORT"' dbname=pgtls user=sluice_tls).*no encryption' "$D/nossl.err" &&
	ok "sslmode=disable: refused by the hostnossl rule, named" ||
	not_ok "sslmode=disable: $(head -3 "$D/nossl.err")"

# --- verify-full against another CA fails, clearly --------------------------------
as wrongca PGSSLMODE=verify-full PGSSLROOTCERT="$D/other.pem" -- \
	"$SLUICE_BIN" load --schemas "$SLUICE_ROOT/schemas"
check_eq "verify-full, wrong CA: sluice load exits 1" "$?" 1
grep -q 'could not connect to database (host=127.0.0.1 port='"$PGPORT"' dbname=pgtls user=sluice_tls).*certificate verify failed' "$D/wrongca.err" &&
	ok "verify-full, wrong CA: the error says certificate verify failed and names the server" ||
	not_ok "verify-full, wrong CA: $(head -3 "$D/wrongca.err")"
as wrongca_status PGSSLMODE=verify-full PGSSLROOTCERT="$D/other.pem" -- \
	"$SLUICE_BIN" status --json
jq -r '.errors.database // ""' "$D/wrongca_status.out" 2>/dev/null | grep -q 'certificate verify failed' &&
	ok "verify-full, wrong CA: sluice status reports it" ||
	not_ok "verify-full, wrong CA: status: $(head -c 300 "$D/wrongca_status.out")"

# --- verify-full for a host name the certificate does not carry -----------------
as wronghost PGSSLMODE=verify-full PGSSLROOTCERT="$D/ca.pem" PGHOST=db.invalid \
	PGHOSTADDR=127.0.0.1 -- "$SLUICE_BIN" load --schemas "$SLUICE_ROOT/schemas"
check_eq "verify-full, other host name: sluice load exits 1" "$?" 1
grep -q 'does not match host name "db.invalid"' "$D/wronghost.err" &&
	ok "verify-full, other host name: libpq's reason is shown" ||
	not_ok "verify-full, other host name: $(head -3 "$D/wronghost.err")"

# --- sluice load with PGSSLMODE=verify-full: rows land, over TLS ---------------
jq '.vulnerabilities |= .[:3]' "$KEV" >"$D/page.json"
"$SLUICE_BIN" check "$SLUICE_ROOT/transformers/maps/kev.json" "$D/page.json" 2>/dev/null |
	jq -c 'select(.table == "known_exploited_vulnerability")' >"$D/env.jsonl"
check_eq "3 envelopes to load" "$(wc -l <"$D/env.jsonl")" 3
kcat -P -b "$SLUICE_BROKERS" -t mapped.known_exploited_vulnerability <"$D/env.jsonl" 2>/dev/null
bg load env -u PGSSLMODE -u DATABASE_URL PGHOST=127.0.0.1 PGPORT="$PGPORT" \
	PGUSER=sluice_tls PGDATABASE=pgtls PGPASSWORD="$CANARY" \
	PGSSLMODE=verify-full PGSSLROOTCERT="$D/ca.pem" \
	"$SLUICE_BIN" load --schemas "$SLUICE_ROOT/schemas" \
	--topics '^mapped\.known_exploited_vulnerability$' --linger-ms 50
LOADER=$LAST_PID
rows() { psql -qAtX -h "$ADMIN_HOST" -d pgtls -c 'SELECT count(*) FROM known_exploited_vulnerability' 2>/dev/null; }
three_rows() { [ "$(rows)" = 3 ]; }
wait_for 30 three_rows
check_eq "verify-full: sluice load landed the 3 rows" "$(rows)" 3
# every TCP session of sluice_tls (the loader's) is encrypted
check_eq "verify-full: both of the loader's sessions (--connections 2) are TLS (pg_stat_ssl)" \
	"$(psql -qAtX -h "$ADMIN_HOST" -d postgres -c "SELECT count(*) FILTER (WHERE s.ssl) || '/' || count(*) FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) WHERE a.usename = 'sluice_tls'")" "2/2"
kill -0 "$LOADER" 2>/dev/null && ok "the loader keeps running" || not_ok "the loader died: $(tail -3 "$D/load.log")"

# --- sluice status: sslmode=require in DATABASE_URL, and verify-full ------------
as status_url DATABASE_URL="postgresql://sluice_tls@127.0.0.1:$PGPORT/pgtls?sslmode=require" -- \
	"$SLUICE_BIN" status --json
check_eq "DATABASE_URL sslmode=require: sluice status exits 0" "$?" 0
check_eq "DATABASE_URL sslmode=require: no database error, the table counted" \
	"$(jq -r '(.errors.database // "none") + " " + ([.tables[] | select(.table == "known_exploited_vulnerability") | .rows] | tostring)' "$D/status_url.out" 2>&1)" \
	"none [3]"
as status_vf PGSSLMODE=verify-full PGSSLROOTCERT="$D/ca.pem" -- "$SLUICE_BIN" status --json
check_eq "PGSSLMODE=verify-full: sluice status exits 0" "$?" 0
check_eq "PGSSLMODE=verify-full: no database error" \
	"$(jq -r '.errors.database // "none"' "$D/status_vf.out" 2>&1)" none

stop_pid "$LOADER"
check_eq "the loader exits cleanly" "$?" 0
grep -l -- "$CANARY" "$D"/*.out "$D"/*.err "$D"/*.log 2>/dev/null | grep -q . &&
	not_ok "the password appears in $(grep -l -- "$CANARY" "$D"/*.out "$D"/*.err "$D"/*.log)" ||
	ok "the password appears in no output or log"
sl_done
