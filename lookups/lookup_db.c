/* lookup_db: cache, claims, token buckets and quota in PostgreSQL. Values
 * travel as parameters only; times are the server's clock_timestamp(), so
 * workers on several machines share one clock. */
#include "lookup_db.h"
#include "sl_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void lookup_row_free(struct lookup_row *r)
{
        free(r->answer);
        free(r->error);
        memset(r, 0, sizeof(*r));
}

/* Runs sql with params; res kept when it has the status wanted. */
static PGresult *run(PGconn *conn, const char *sql, int n,
                     const char *const *params, ExecStatusType want,
                     char *errstr, size_t errstr_size)
{
        PGresult *res = PQexecParams(conn, sql, n, NULL, params, NULL, NULL, 0);

        if (PQresultStatus(res) != want) {
                const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
                char msg[300];
                size_t len;

                snprintf(msg, sizeof(msg), "%s", PQresultErrorMessage(res));
                len = strlen(msg);
                while (len && (msg[len - 1] == '\n' || msg[len - 1] == ' '))
                        msg[--len] = '\0';
                snprintf(errstr, errstr_size, "%s (SQLSTATE %s)", msg,
                         state ? state : "?");
                PQclear(res);
                return NULL;
        }
        return res;
}

static int exec0(PGconn *conn, const char *sql, int n,
                 const char *const *params, char *errstr, size_t errstr_size)
{
        PGresult *res =
            run(conn, sql, n, params, PGRES_COMMAND_OK, errstr, errstr_size);

        if (!res)
                return -1;
        PQclear(res);
        return 0;
}

static const char *scope_of(const struct lookup_rate *r)
{
        return r->type ? r->type : "*";
}

int lookup_db_init(PGconn *conn, const struct lookup_def *d, char *errstr,
                   size_t errstr_size)
{
        char burst[32], quota[32];

        for (int i = 0; i < d->nrates; i++) {
                const char *p[3] = {d->name, scope_of(&d->rates[i]), burst};
                snprintf(burst, sizeof(burst), "%ld", d->rates[i].burst);
                if (exec0(conn,
                          "INSERT INTO sluice.lookup_buckets (lookup, scope, "
                          "tokens, refilled_at) VALUES ($1, $2, $3, "
                          "clock_timestamp()) ON CONFLICT DO NOTHING",
                          3, p, errstr, errstr_size) < 0)
                        return -1;
        }
        if (d->quota_period != LOOKUP_PERIOD_NONE) {
                const char *p[3] = {d->name, quota,
                                    lookup_period_name(d->quota_period)};
                snprintf(quota, sizeof(quota), "%ld", d->quota);
                if (exec0(conn,
                          "INSERT INTO sluice.lookup_quota (lookup, "
                          "period_start, used, quota) VALUES ($1, "
                          "date_trunc($3, clock_timestamp() AT TIME ZONE "
                          "'UTC') AT TIME ZONE 'UTC', 0, $2) ON CONFLICT "
                          "(lookup) DO UPDATE SET quota = EXCLUDED.quota",
                          3, p, errstr, errstr_size) < 0)
                        return -1;
        }
        return 0;
}

int lookup_db_register(PGconn *conn, const struct lookup_def *d,
                       const char *group, char *errstr, size_t errstr_size)
{
        const char *p[3] = {d->name, d->topic, group};

        return exec0(conn,
                     "INSERT INTO sluice.lookups (lookup, topic, group_id) "
                     "VALUES ($1, $2, $3) ON CONFLICT (lookup) DO UPDATE SET "
                     "topic = EXCLUDED.topic, group_id = EXCLUDED.group_id, "
                     "started_at = now()",
                     3, p, errstr, errstr_size);
}

int lookup_db_claim(PGconn *conn, const struct lookup_def *d, const char *me,
                    const char *obs, const char *type, struct lookup_row *row,
                    char *errstr, size_t errstr_size)
{
        char claim[32];
        const char *p[5] = {d->name, obs, type, me, claim};
        PGresult *res;
        int rc = -1;

        memset(row, 0, sizeof(*row));
        snprintf(claim, sizeof(claim), "%ld", d->claim_s);
        /* the common case first, in one round trip: fresh and delivered */
        res = run(conn,
                  "SELECT 1 FROM sluice.lookup_cache WHERE lookup = $1 AND "
                  "observable = $2 AND outcome IN ('found', 'not_found', "
                  "'error') AND published AND expires_at > clock_timestamp()",
                  2, p, PGRES_TUPLES_OK, errstr, errstr_size);
        if (!res)
                return -1;
        if (PQntuples(res) == 1) {
                PQclear(res);
                return LOOKUP_HIT;
        }
        PQclear(res);
        /* a new observable, a stale answer, or a claim nobody sent
         * before it ran out: ours */
        res = run(conn,
                  "INSERT INTO sluice.lookup_cache AS c (lookup, observable, "
                  "obs_type, outcome, claimed_by, claim_until) VALUES ($1, "
                  "$2, $3, 'pending', $4, clock_timestamp() + $5 * "
                  "interval '1 second') ON CONFLICT (lookup, observable) DO "
                  "UPDATE SET outcome = 'pending', obs_type = EXCLUDED."
                  "obs_type, claimed_by = EXCLUDED.claimed_by, claim_until "
                  "= EXCLUDED.claim_until, published = false WHERE "
                  "(c.outcome IN ('found', 'not_found', 'error') AND "
                  "c.expires_at <= clock_timestamp()) OR (c.outcome = "
                  "'pending' AND (c.claim_until <= clock_timestamp() OR "
                  "c.claimed_by = $4)) RETURNING 1",
                  5, p, PGRES_TUPLES_OK, errstr, errstr_size);
        if (!res)
                return -1;
        if (PQntuples(res) == 1) {
                PQclear(res);
                return LOOKUP_CLAIMED;
        }
        PQclear(res);
        /* sent by a worker that is gone (or by me, before a restart with
         * the same name): the API may have seen it */
        res = run(conn,
                  "UPDATE sluice.lookup_cache SET claimed_by = $4, "
                  "claim_until = clock_timestamp() + $5 * interval '1 "
                  "second' WHERE lookup = $1 AND observable = $2 AND obs_type "
                  "= $3 AND outcome = 'sent' AND (claim_until <= "
                  "clock_timestamp() OR claimed_by = $4) RETURNING 1",
                  5, p, PGRES_TUPLES_OK, errstr, errstr_size);
        if (!res)
                return -1;
        if (PQntuples(res) == 1) {
                PQclear(res);
                return LOOKUP_LOST;
        }
        PQclear(res);
        res = run(conn,
                  "SELECT outcome, published, coalesce(http_status, 0), "
                  "answer, error FROM sluice.lookup_cache WHERE lookup = $1 "
                  "AND observable = $2",
                  2, p, PGRES_TUPLES_OK, errstr, errstr_size);
        if (!res)
                return -1;
        if (PQntuples(res) != 1) {
                /* deleted in between: try again */
                rc = LOOKUP_BUSY;
                goto out;
        }
        snprintf(row->outcome, sizeof(row->outcome), "%s",
                 PQgetvalue(res, 0, 0));
        if (strcmp(row->outcome, "pending") == 0 ||
            strcmp(row->outcome, "sent") == 0) {
                rc = LOOKUP_BUSY;
                goto out;
        }
        if (strcmp(PQgetvalue(res, 0, 1), "t") == 0) {
                rc = LOOKUP_HIT;
                goto out;
        }
        sl_parse_int(PQgetvalue(res, 0, 2), &row->http_status);
        if (!PQgetisnull(res, 0, 3))
                row->answer = sl_strdup(PQgetvalue(res, 0, 3));
        if (!PQgetisnull(res, 0, 4))
                row->error = sl_strdup(PQgetvalue(res, 0, 4));
        rc = LOOKUP_UNSENT;
out:
        PQclear(res);
        return rc;
}

/* The observables as a PostgreSQL text[] literal (quoted elements). New;
 * free with free(). */
static char *text_array(const char *const *obs, size_t n)
{
        struct sl_buf b;

        sl_buf_init(&b, 0);
        sl_buf_puts(&b, "{");
        for (size_t i = 0; i < n; i++) {
                if (i)
                        sl_buf_puts(&b, ",");
                sl_buf_puts(&b, "\"");
                for (const char *s = obs[i]; *s; s++) {
                        if (*s == '"' || *s == '\\')
                                sl_buf_puts(&b, "\\");
                        sl_buf_append(&b, s, 1);
                }
                sl_buf_puts(&b, "\"");
        }
        sl_buf_puts(&b, "}");
        return sl_buf_steal(&b, NULL);
}

int lookup_db_sent(PGconn *conn, const struct lookup_def *d, const char *me,
                   const char *const *obs, size_t n, int *ok, int back,
                   char *errstr, size_t errstr_size)
{
        char *arr = text_array(obs, n);
        const char *p[3] = {d->name, arr, me};
        PGresult *res;
        int got;

        res = run(conn,
                  back ? "UPDATE sluice.lookup_cache SET outcome = 'pending' "
                         "WHERE lookup = $1 AND observable = ANY($2::text[]) "
                         "AND claimed_by = $3 AND outcome = 'sent' "
                         "RETURNING observable"
                       : "UPDATE sluice.lookup_cache SET outcome = 'sent' "
                         "WHERE lookup = $1 AND observable = ANY($2::text[]) "
                         "AND claimed_by = $3 AND outcome = 'pending' "
                         "RETURNING observable",
                  3, p, PGRES_TUPLES_OK, errstr, errstr_size);
        free(arr);
        if (!res)
                return -1;
        got = PQntuples(res);
        for (size_t i = 0; ok && i < n; i++) {
                ok[i] = 0;
                for (int k = 0; k < got; k++)
                        if (strcmp(PQgetvalue(res, k, 0), obs[i]) == 0)
                                ok[i] = 1;
        }
        PQclear(res);
        return got;
}

int lookup_db_release(PGconn *conn, const struct lookup_def *d, const char *me,
                      char *errstr, size_t errstr_size)
{
        const char *p[2] = {d->name, me};

        return exec0(conn,
                     "UPDATE sluice.lookup_cache SET claim_until = "
                     "clock_timestamp() WHERE lookup = $1 AND claimed_by = $2 "
                     "AND outcome = 'pending'",
                     2, p, errstr, errstr_size);
}

int lookup_db_record(PGconn *conn, const struct lookup_def *d, const char *obs,
                     const char *outcome, int http_status, const char *answer,
                     const char *error, char *errstr, size_t errstr_size)
{
        char status[16], ttl[32];
        long s = strcmp(outcome, "found") == 0       ? d->ttl_found_s
                 : strcmp(outcome, "not_found") == 0 ? d->ttl_not_found_s
                                                     : d->ttl_error_s;
        const char *p[7] = {d->name, obs, outcome, status, answer, error, ttl};

        snprintf(status, sizeof(status), "%d", http_status);
        snprintf(ttl, sizeof(ttl), "%ld", s);
        return exec0(conn,
                     "UPDATE sluice.lookup_cache SET outcome = $3, "
                     "http_status = nullif($4::int, 0), answer = $5, error "
                     "= $6, fetched_at = clock_timestamp(), expires_at = "
                     "clock_timestamp() + $7 * interval '1 second', "
                     "published = false, claimed_by = NULL, claim_until = "
                     "NULL WHERE lookup = $1 AND observable = $2",
                     7, p, errstr, errstr_size);
}

int lookup_db_published(PGconn *conn, const struct lookup_def *d,
                        const char *const *obs, size_t n, char *errstr,
                        size_t errstr_size)
{
        char *arr;
        int rc;

        if (n == 0)
                return 0;
        arr = text_array(obs, n);
        {
                const char *p[2] = {d->name, arr};
                rc = exec0(conn,
                           "UPDATE sluice.lookup_cache SET published = true "
                           "WHERE lookup = $1 AND observable = "
                           "ANY($2::text[]) AND outcome IN ('found', "
                           "'not_found', 'error')",
                           2, p, errstr, errstr_size);
        }
        free(arr);
        return rc;
}

/* Ends the transaction: COMMIT when commit, else ROLLBACK. */
static int finish(PGconn *conn, int commit, char *errstr, size_t errstr_size)
{
        return exec0(conn, commit ? "COMMIT" : "ROLLBACK", 0, NULL, errstr,
                     errstr_size);
}

int64_t lookup_db_take(PGconn *conn, const struct lookup_def *d,
                       const char *type, int *quota_wait, long *quota_left,
                       char *errstr, size_t errstr_size)
{
        PGresult *res = NULL;
        char now[64];
        double tokens[LOOKUP_MAX_LIMITS];
        int idx[LOOKUP_MAX_LIMITS], n = 0;
        int64_t wait = 0;
        long used = 0;

        *quota_wait = 0;
        *quota_left = -1;
        if (d->nrates == 0 && d->quota_period == LOOKUP_PERIOD_NONE)
                return 0;
        if (exec0(conn, "BEGIN", 0, NULL, errstr, errstr_size) < 0)
                return -1;
        res = run(conn, "SELECT clock_timestamp()::text", 0, NULL,
                  PGRES_TUPLES_OK, errstr, errstr_size);
        if (!res)
                goto out;
        snprintf(now, sizeof(now), "%s", PQgetvalue(res, 0, 0));
        PQclear(res);
        res = NULL;
        /* every bucket in scope order, then the quota: one lock order for
         * every worker */
        for (int i = 0; i < d->nrates; i++) {
                const struct lookup_rate *r = &d->rates[i];
                const char *p[3] = {d->name, scope_of(r), now};
                /* a margin, as the fetcher's rate window keeps one
                 * (fetch_rate_margin_ms): the server counts arrivals, which
                 * jitter; pacing at its exact limit met 429s in the bench */
                double period = r->per_seconds * 1.02 + 0.025;
                double have, elapsed, rate = (double)r->requests / period;

                if (r->type && strcmp(r->type, type) != 0)
                        continue;
                res = run(conn,
                          "SELECT tokens, greatest(0, extract(epoch FROM "
                          "$3::timestamptz - refilled_at)) FROM "
                          "sluice.lookup_buckets WHERE lookup = $1 AND "
                          "scope = $2 FOR UPDATE",
                          3, p, PGRES_TUPLES_OK, errstr, errstr_size);
                if (!res)
                        goto out;
                if (PQntuples(res) != 1) {
                        snprintf(errstr, errstr_size, "no bucket row for %s/%s",
                                 d->name, scope_of(r));
                        goto out;
                }
                sl_parse_double(PQgetvalue(res, 0, 0), &have);
                sl_parse_double(PQgetvalue(res, 0, 1), &elapsed);
                PQclear(res);
                res = NULL;
                have += elapsed * rate;
                if (have > (double)r->burst)
                        have = (double)r->burst;
                if (have < 1.0) {
                        int64_t w = (int64_t)ceil((1.0 - have) / rate * 1000.0);
                        if (w > wait)
                                wait = w;
                }
                tokens[n] = have;
                idx[n++] = i;
        }
        if (d->quota_period != LOOKUP_PERIOD_NONE) {
                const char *p[3] = {d->name, now,
                                    lookup_period_name(d->quota_period)};
                double until = 0;
                res = run(conn,
                          "SELECT CASE WHEN period_start < date_trunc($3, "
                          "$2::timestamptz AT TIME ZONE 'UTC') AT TIME ZONE "
                          "'UTC' THEN 0 ELSE used END, extract(epoch FROM "
                          "(date_trunc($3, $2::timestamptz AT TIME ZONE "
                          "'UTC') + ('1 ' || $3)::interval) AT TIME ZONE "
                          "'UTC' - $2::timestamptz) FROM sluice.lookup_quota "
                          "WHERE lookup = $1 FOR UPDATE",
                          3, p, PGRES_TUPLES_OK, errstr, errstr_size);
                if (!res)
                        goto out;
                if (PQntuples(res) != 1) {
                        snprintf(errstr, errstr_size, "no quota row for %s",
                                 d->name);
                        goto out;
                }
                {
                        long long u = 0;
                        sl_parse_ll(PQgetvalue(res, 0, 0), &u);
                        used = (long)u;
                }
                sl_parse_double(PQgetvalue(res, 0, 1), &until);
                PQclear(res);
                res = NULL;
                *quota_left = d->quota - used;
                if (used >= d->quota) {
                        int64_t w = (int64_t)ceil(until * 1000.0) + 1;
                        *quota_wait = 1;
                        if (w > wait)
                                wait = w;
                }
        }
        if (wait > 0)
                return finish(conn, 0, errstr, errstr_size) < 0 ? -1 : wait;
        for (int k = 0; k < n; k++) {
                char tok[64];
                const char *p[4] = {d->name, scope_of(&d->rates[idx[k]]), tok,
                                    now};
                snprintf(tok, sizeof(tok), "%.9f", tokens[k] - 1.0);
                if (exec0(conn,
                          "UPDATE sluice.lookup_buckets SET tokens = $3, "
                          "refilled_at = $4::timestamptz WHERE lookup = $1 "
                          "AND scope = $2",
                          4, p, errstr, errstr_size) < 0)
                        goto out;
        }
        if (d->quota_period != LOOKUP_PERIOD_NONE) {
                char u[32];
                const char *p[4] = {d->name, u, now,
                                    lookup_period_name(d->quota_period)};
                snprintf(u, sizeof(u), "%ld", used + 1);
                if (exec0(conn,
                          "UPDATE sluice.lookup_quota SET used = $2, "
                          "period_start = date_trunc($4, $3::timestamptz AT "
                          "TIME ZONE 'UTC') AT TIME ZONE 'UTC' WHERE lookup "
                          "= $1",
                          4, p, errstr, errstr_size) < 0)
                        goto out;
                *quota_left = d->quota - used - 1;
        }
        if (finish(conn, 1, errstr, errstr_size) < 0)
                return -1;
        return 0;
out:
        PQclear(res);
        if (PQtransactionStatus(conn) != PQTRANS_IDLE) {
                char ignored[64];
                finish(conn, 0, ignored, sizeof(ignored));
        }
        return -1;
}
