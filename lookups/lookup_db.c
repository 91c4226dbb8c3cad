/* lookup_db: cache, claims, token buckets and quota in PostgreSQL. Values
 * travel as parameters only; times are the server's clock_timestamp(), so
 * workers on several machines share one clock. */
#include "lookup_db.h"
#include "sl_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void lookup_row_free(struct lookup_row *r)
{
        free(r->answer);
        free(r->error);
        memset(r, 0, sizeof(*r));
}

/* res when it has the status wanted; else NULL (res cleared) with its
 * error in errstr. */
static PGresult *checked(PGresult *res, ExecStatusType want, char *errstr,
                         size_t errstr_size)
{
        const char *state;
        char msg[300];
        size_t len;

        if (PQresultStatus(res) == want)
                return res;
        state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        snprintf(msg, sizeof(msg), "%s", PQresultErrorMessage(res));
        len = strlen(msg);
        while (len && (msg[len - 1] == '\n' || msg[len - 1] == ' '))
                msg[--len] = '\0';
        snprintf(errstr, errstr_size, "%s (SQLSTATE %s)", msg,
                 state ? state : "?");
        PQclear(res);
        return NULL;
}

/* Runs sql with params; res kept when it has the status wanted. */
static PGresult *run(PGconn *conn, const char *sql, int n,
                     const char *const *params, ExecStatusType want,
                     char *errstr, size_t errstr_size)
{
        PGresult *res = PQexecParams(conn, sql, n, NULL, params, NULL, NULL, 0);

        return checked(res, want, errstr, errstr_size);
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
        const char *mine[3] = {d->name, obs, me};
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
        /* the answer's worker holds its claim until the output is
         * delivered (lookup_db_record): while that claim lives, the answer
         * is on its way and publishing it here would publish it twice */
        res = run(conn,
                  "SELECT outcome, published, coalesce(http_status, 0), "
                  "answer, error, coalesce(claimed_by <> $3 AND claim_until "
                  "> clock_timestamp(), false) FROM sluice.lookup_cache "
                  "WHERE lookup = $1 AND observable = $2",
                  3, mine, PGRES_TUPLES_OK, errstr, errstr_size);
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
        if (strcmp(PQgetvalue(res, 0, 5), "t") == 0) {
                rc = LOOKUP_BUSY;
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

int lookup_db_record(PGconn *conn, const struct lookup_def *d, const char *me,
                     const char *obs, const char *outcome, int http_status,
                     const char *answer, const char *error, char *errstr,
                     size_t errstr_size)
{
        char status[16], ttl[32], claim[32];
        long s = strcmp(outcome, "found") == 0       ? d->ttl_found_s
                 : strcmp(outcome, "not_found") == 0 ? d->ttl_not_found_s
                                                     : d->ttl_error_s;
        const char *p[9] = {d->name, obs, outcome, status, answer,
                            error,   ttl, me,      claim};

        snprintf(status, sizeof(status), "%d", http_status);
        snprintf(ttl, sizeof(ttl), "%ld", s);
        snprintf(claim, sizeof(claim), "%ld", d->claim_s);
        /* the claim is kept (renewed) until the output is delivered and
         * lookup_db_published ends it */
        return exec0(conn,
                     "UPDATE sluice.lookup_cache SET outcome = $3, "
                     "http_status = nullif($4::int, 0), answer = $5, error "
                     "= $6, fetched_at = clock_timestamp(), expires_at = "
                     "clock_timestamp() + $7 * interval '1 second', "
                     "published = false, claimed_by = $8, claim_until = "
                     "clock_timestamp() + $9 * interval '1 second' WHERE "
                     "lookup = $1 AND observable = $2",
                     9, p, errstr, errstr_size);
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
                           "UPDATE sluice.lookup_cache SET published = "
                           "true, claimed_by = NULL, claim_until = NULL "
                           "WHERE lookup = $1 AND observable = "
                           "ANY($2::text[]) AND outcome IN ('found', "
                           "'not_found', 'error')",
                           2, p, errstr, errstr_size);
        }
        free(arr);
        return rc;
}

/* The bucket's refill rate, tokens a second. A margin, as the fetcher's
 * rate window keeps one (fetch_rate_margin_ms): the server counts
 * arrivals, which jitter; pacing at its exact limit met 429s in the
 * bench. */
static double bucket_rate(const struct lookup_rate *r)
{
        return (double)r->requests / (r->per_seconds * 1.02 + 0.025);
}

/* A bucket holds up to burst tokens, and the refill of LOOKUP_SLACK_S
 * more: a worker that wakes (or a request cycle that ends) a few ms
 * after a token came does not lose those ms for good, the next token
 * comes that much sooner. Any window of the bucket's period still holds
 * fewer than burst + requests tokens (the margin above is larger). */
#define LOOKUP_SLACK_S 0.010

/* Takes every bucket in scope and one unit of quota, all or none, in one
 * statement (one round trip): the rows are locked in scope order (one
 * lock order for every worker), the clock read once they are held, and
 * the refill computed by the server. Returns wait (ms, 0: taken), a flag
 * set when the quota is spent, what is left of the quota (NULL: no
 * quota), and how many bucket and quota rows were found. */
static const char take_sql[] =
    "WITH lk AS MATERIALIZED (SELECT scope, tokens, refilled_at FROM "
    "sluice.lookup_buckets WHERE lookup = $1 AND scope = ANY($2::text[]) "
    "ORDER BY scope FOR UPDATE), "
    "q AS MATERIALIZED (SELECT used, period_start, quota FROM "
    "sluice.lookup_quota WHERE lookup = $1 AND $5::text IS NOT NULL FOR "
    "UPDATE), "
    /* the clock once every lock is held (the counts read lk and q to
     * their end first): a worker that waited for a lock does not set
     * refilled_at before its holder did */
    "n AS MATERIALIZED (SELECT clock_timestamp() AS t, nb, nq FROM "
    "(SELECT count(*) AS nb FROM lk) a, (SELECT count(*) AS nq FROM q) "
    "b), "
    "c AS MATERIALIZED (SELECT lk.scope, p.rate, least(p.cap, lk.tokens + "
    "p.rate * greatest(0, extract(epoch FROM n.t - lk.refilled_at))) AS "
    "have FROM lk JOIN unnest($2::text[], $3::float8[], $4::float8[]) AS "
    "p(scope, rate, cap) USING (scope), n), "
    "qc AS MATERIALIZED (SELECT CASE WHEN q.period_start < date_trunc($5, "
    "n.t AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' THEN 0 ELSE q.used END AS "
    "used, q.quota, extract(epoch FROM (date_trunc($5, n.t AT TIME ZONE "
    "'UTC') + ('1 ' || $5)::interval) AT TIME ZONE 'UTC' - n.t) AS until "
    "FROM q, n), "
    "w AS MATERIALIZED (SELECT greatest(coalesce((SELECT max(ceil((1 - "
    "have) / rate * 1000)) FROM c WHERE have < 1), 0), coalesce((SELECT "
    "ceil(until * 1000) + 1 FROM qc WHERE used >= quota), 0)) AS wait, "
    "EXISTS (SELECT 1 FROM qc WHERE used >= quota) AS spent), "
    "ub AS (UPDATE sluice.lookup_buckets b SET tokens = c.have - 1, "
    "refilled_at = greatest(b.refilled_at, n.t) FROM c, n, w WHERE w.wait "
    "= 0 AND b.lookup = $1 AND b.scope = c.scope RETURNING 1), "
    "uq AS (UPDATE sluice.lookup_quota x SET used = qc.used + 1, "
    "period_start = date_trunc($5, n.t AT TIME ZONE 'UTC') AT TIME ZONE "
    "'UTC' FROM qc, n, w WHERE w.wait = 0 AND x.lookup = $1 RETURNING 1), "
    /* with the token, the claims still mine are marked sent: one round
     * trip between the token and the request */
    "s AS (UPDATE sluice.lookup_cache x SET outcome = 'sent' FROM w WHERE "
    "w.wait = 0 AND x.lookup = $1 AND x.observable = ANY($7::text[]) AND "
    "x.claimed_by = $6 AND x.outcome = 'pending' RETURNING x.observable) "
    "SELECT w.wait::bigint, w.spent, (SELECT qc.quota - qc.used - CASE "
    "WHEN w.wait = 0 THEN 1 ELSE 0 END FROM qc), n.nb, n.nq, (SELECT "
    "count(*) FROM ub), (SELECT count(*) FROM uq), s.observable FROM w "
    "CROSS JOIN n LEFT JOIN s ON true";

/* Runs take_sql, prepared once per session (planning its CTEs is most
 * of its cost); prepared again when the session lost it (a reset). */
static PGresult *run_take(PGconn *conn, const char *const *p, char *errstr,
                          size_t errstr_size)
{
        static const char name[] = "sluice_lookup_take";
        PGresult *res = PQexecPrepared(conn, name, 7, p, NULL, NULL, 0);
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

        if (PQresultStatus(res) == PGRES_TUPLES_OK || !state ||
            strcmp(state, "26000") != 0)
                return checked(res, PGRES_TUPLES_OK, errstr, errstr_size);
        /* 26000: not prepared in this session yet */
        PQclear(res);
        res = checked(PQprepare(conn, name, take_sql, 7, NULL),
                      PGRES_COMMAND_OK, errstr, errstr_size);
        if (!res)
                return NULL;
        PQclear(res);
        res = PQexecPrepared(conn, name, 7, p, NULL, NULL, 0);
        return checked(res, PGRES_TUPLES_OK, errstr, errstr_size);
}

/* Numbers as a PostgreSQL float8[] literal, into b. */
static void float_array(struct sl_buf *b, const double *v, int n)
{
        sl_buf_puts(b, "{");
        for (int i = 0; i < n; i++)
                sl_buf_printf(b, "%s%.17g", i ? "," : "", v[i]);
        sl_buf_puts(b, "}");
}

int64_t lookup_db_take(PGconn *conn, const struct lookup_def *d,
                       const char *type, const char *me, const char *const *obs,
                       size_t nobs, int *ok, int *quota_wait, long *quota_left,
                       char *errstr, size_t errstr_size)
{
        const char *scopes[LOOKUP_MAX_LIMITS];
        double rate[LOOKUP_MAX_LIMITS], cap[LOOKUP_MAX_LIMITS];
        const char *period = lookup_period_name(d->quota_period);
        struct sl_buf rb, cb;
        char *sarr = NULL, *oarr = NULL;
        PGresult *res = NULL;
        long long wait = -1, v = 0;
        int n = 0;

        *quota_wait = 0;
        *quota_left = -1;
        if (d->nrates == 0 && d->quota_period == LOOKUP_PERIOD_NONE)
                return lookup_db_sent(conn, d, me, obs, nobs, ok, 0, errstr,
                                      errstr_size) < 0
                           ? -1
                           : 0;
        for (int i = 0; i < d->nrates; i++) {
                const struct lookup_rate *r = &d->rates[i];
                if (r->type && strcmp(r->type, type) != 0)
                        continue;
                scopes[n] = scope_of(r);
                rate[n] = bucket_rate(r);
                cap[n] = (double)r->burst + rate[n] * LOOKUP_SLACK_S;
                n++;
        }
        sl_buf_init(&rb, 0);
        sl_buf_init(&cb, 0);
        float_array(&rb, rate, n);
        float_array(&cb, cap, n);
        sarr = text_array(scopes, (size_t)n);
        oarr = text_array(obs, nobs);
        {
                const char *p[7] = {d->name, sarr, rb.data, cb.data,
                                    period,  me,   oarr};
                res = run_take(conn, p, errstr, errstr_size);
        }
        if (!res)
                goto out;
        if (PQntuples(res) < 1) {
                snprintf(errstr, errstr_size, "token: %d rows", PQntuples(res));
                goto out;
        }
        sl_parse_ll(PQgetvalue(res, 0, 3), &v);
        if (v != n) {
                snprintf(errstr, errstr_size, "no bucket row for %s", d->name);
                goto out;
        }
        sl_parse_ll(PQgetvalue(res, 0, 4), &v);
        if (period && v != 1) {
                snprintf(errstr, errstr_size, "no quota row for %s", d->name);
                goto out;
        }
        if (sl_parse_ll(PQgetvalue(res, 0, 0), &wait) < 0 || wait < 0) {
                snprintf(errstr, errstr_size, "token: bad wait '%s'",
                         PQgetvalue(res, 0, 0));
                wait = -1;
                goto out;
        }
        *quota_wait = strcmp(PQgetvalue(res, 0, 1), "t") == 0;
        if (!PQgetisnull(res, 0, 2) &&
            sl_parse_ll(PQgetvalue(res, 0, 2), &v) == 0)
                *quota_left = (long)v;
        for (size_t i = 0; i < nobs; i++) {
                ok[i] = 0;
                for (int k = 0; k < PQntuples(res); k++)
                        if (!PQgetisnull(res, k, 7) &&
                            strcmp(PQgetvalue(res, k, 7), obs[i]) == 0)
                                ok[i] = 1;
        }
out:
        PQclear(res);
        free(oarr);
        free(sarr);
        sl_buf_free(&rb);
        sl_buf_free(&cb);
        return wait;
}
