/* sl_pg: one way to reach PostgreSQL for every role and command. */
#include "sl_pg.h"
#include "sl_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sl_pg_describe(PGconn *conn, char *buf, size_t size)
{
        const char *host = PQhost(conn);
        snprintf(buf, size, "host=%s port=%s dbname=%s user=%s",
                 host && *host ? host : "(default)", PQport(conn), PQdb(conn),
                 PQuser(conn));
}

/* PostgreSQL's notices (a DROP ... IF EXISTS that had nothing to drop, a
 * schema file's CREATE ... IF NOT EXISTS) go to the log as structured
 * debug lines, not raw to stderr where libpq would print them. */
static void notice_to_log(void *arg, const char *message)
{
        char msg[600], q[700];
        size_t n;

        (void)arg;
        snprintf(msg, sizeof(msg), "%s", message);
        n = strlen(msg);
        while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
                msg[--n] = '\0';
        sl_debug("event=pg_notice msg=%s", sl_log_quote(msg, q, sizeof(q)));
}

PGconn *sl_pg_connect(char *errstr, size_t errstr_size)
{
        const char *url = getenv("DATABASE_URL");
        PGconn *conn = PQconnectdb(url && *url ? url : "");
        char where[512];

        if (PQstatus(conn) != CONNECTION_OK) {
                char msg[512];
                size_t n;
                snprintf(msg, sizeof(msg), "%s", PQerrorMessage(conn));
                n = strlen(msg);
                while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
                        msg[--n] = '\0';
                for (char *p = msg; *p; p++)
                        if (*p == '\n' || *p == '\t')
                                *p = ' ';
                sl_pg_describe(conn, where, sizeof(where));
                snprintf(errstr, errstr_size,
                         "could not connect to database (%s): %s", where, msg);
                PQfinish(conn);
                return NULL;
        }
        PQsetNoticeProcessor(conn, notice_to_log, NULL);
        return conn;
}

int sl_pg_exec(PGconn *conn, const char *sql, char *errstr, size_t errstr_size)
{
        PGresult *res = PQexec(conn, sql);
        int rc = 0;

        if (PQresultStatus(res) != PGRES_COMMAND_OK &&
            PQresultStatus(res) != PGRES_TUPLES_OK) {
                const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
                snprintf(errstr, errstr_size, "%s (SQLSTATE %s)",
                         PQresultErrorMessage(res), state ? state : "?");
                rc = -1;
        }
        PQclear(res);
        return rc;
}
