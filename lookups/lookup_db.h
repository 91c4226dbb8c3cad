/* lookup_db: the lookup worker's state in PostgreSQL, shared by every
 * worker of a lookup and kept across restarts: the cache with its claims
 * (sluice.lookup_cache), the token buckets (sluice.lookup_buckets) and
 * the quota (sluice.lookup_quota). Every decision is taken under row
 * locks, so two workers never ask about one observable at once nor
 * together spend more than a bucket or the quota holds. */
#ifndef LOOKUP_DB_H
#define LOOKUP_DB_H

#include "lookup_def.h"

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

enum lookup_claim {
        LOOKUP_CLAIMED, /* ours to ask about */
        LOOKUP_HIT,     /* fresh and published: nothing to do */
        LOOKUP_UNSENT,  /* fresh, its output not yet delivered: publish
                           the stored answer (or dead letter) again */
        LOOKUP_BUSY,    /* another worker holds a live claim: wait */
        LOOKUP_LOST,    /* a worker died with the request in flight:
                           ours now, to dead-letter, not to ask */
};

/* A cache row as read back for LOOKUP_UNSENT. */
struct lookup_row {
        char outcome[16];
        int http_status;
        char *answer; /* new, or NULL; free with free() */
        char *error;  /* new, or NULL */
};

void lookup_row_free(struct lookup_row *r);

/* Creates the lookup's bucket and quota rows when missing (a changed
 * quota is taken over). 0, or -1 with errstr. */
int lookup_db_init(PGconn *conn, const struct lookup_def *d, char *errstr,
                   size_t errstr_size);

/* Records the lookup's input topic and consumer group in sluice.lookups
 * (for `sluice status`). 0, or -1 with errstr. */
int lookup_db_register(PGconn *conn, const struct lookup_def *d,
                       const char *group, char *errstr, size_t errstr_size);

/* Claims observable for worker `me`, or says why not. row is filled for
 * LOOKUP_UNSENT. Returns the claim, or -1 with errstr. */
int lookup_db_claim(PGconn *conn, const struct lookup_def *d, const char *me,
                    const char *obs, const char *type, struct lookup_row *row,
                    char *errstr, size_t errstr_size);

/* Marks the observables (still claimed by me, 'pending') as 'sent', just
 * before the request goes out; ok[i] is set to 1 for those marked (a
 * claim that ran out and was taken over is not). Returns how many, or -1
 * with errstr. With back != 0, marks 'sent' ones of mine 'pending' again
 * (a throttled request: the API refused it). */
int lookup_db_sent(PGconn *conn, const struct lookup_def *d, const char *me,
                   const char *const *obs, size_t n, int *ok, int back,
                   char *errstr, size_t errstr_size);

/* Ends the claims of `me` not yet sent ('pending'): another worker may
 * take them at once. 0, or -1 with errstr. */
int lookup_db_release(PGconn *conn, const struct lookup_def *d, const char *me,
                      char *errstr, size_t errstr_size);

/* Records an outcome ("found", "not_found", "error") with its answer or
 * error text (either may be NULL), fresh for the outcome's TTL, not yet
 * published, still claimed by me (for claim_seconds more): another worker
 * does not publish it too while my output is on its way. 0, or -1 with
 * errstr. */
int lookup_db_record(PGconn *conn, const struct lookup_def *d, const char *me,
                     const char *obs, const char *outcome, int http_status,
                     const char *answer, const char *error, char *errstr,
                     size_t errstr_size);

/* The output of these observables was delivered: marked published, the
 * claims ended. 0, or -1 with errstr. */
int lookup_db_published(PGconn *conn, const struct lookup_def *d,
                        const char *const *obs, size_t n, char *errstr,
                        size_t errstr_size);

/* Takes one token from every bucket that paces a request about `type`
 * (the lookup's and the type's) and one unit of quota, all or none, and
 * with them marks obs[0..nobs) 'sent' as lookup_db_sent does (ok[i] set
 * for those still claimed by me): one round trip. Returns 0 when taken;
 * else the ms to wait before asking again (>0), nothing marked, with
 * *quota_wait set when the quota is what is spent; -1 with errstr on a
 * database error. *quota_left gets what remains of the quota (-1: no
 * quota). */
int64_t lookup_db_take(PGconn *conn, const struct lookup_def *d,
                       const char *type, const char *me, const char *const *obs,
                       size_t nobs, int *ok, int *quota_wait, long *quota_left,
                       char *errstr, size_t errstr_size);

#endif
