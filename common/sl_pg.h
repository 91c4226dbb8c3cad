/* sl_pg: PostgreSQL connections from libpq's own variables (PGHOST,
 * PGPORT, PGDATABASE, PGUSER, PGPASSWORD, PGSSLMODE, ...) or DATABASE_URL. */
#ifndef SL_PG_H
#define SL_PG_H

#include <libpq-fe.h>
#include <stddef.h>

/* New connection; free with PQfinish(). NULL with errstr naming the
 * server it tried (never the password). */
PGconn *sl_pg_connect(char *errstr, size_t errstr_size);

/* Runs a command that returns no rows. 0, or -1 with errstr carrying the
 * server's message (and SQLSTATE). */
int sl_pg_exec(PGconn *conn, const char *sql, char *errstr, size_t errstr_size);

/* Describes where conn points, for messages: "host=... port=... db=...". */
void sl_pg_describe(PGconn *conn, char *buf, size_t size);

#endif
