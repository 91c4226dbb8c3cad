/* lookup_def: a lookup definition (lookups/defs/) parsed and validated
 * against one option table per object, from which `sluice lint`,
 * `sluice lookup --reference` and docs/lookups.md come. The HTTP half
 * (base_url, request, auth, retry, timeouts, tls, limits) is a source
 * definition's, checked and run by the fetcher's code (producers/). */
#ifndef LOOKUP_DEF_H
#define LOOKUP_DEF_H

#include "fetch_source.h"
#include "sl_jsonpath.h"

#include <jansson.h>
#include <stdio.h>

#define LOOKUP_MAX_OBS    8
#define LOOKUP_MAX_LIMITS 8

/* Where observables are in an input message. */
struct lookup_obs {
        struct sl_jsonpath *path; /* owned */
        const char *type;         /* borrowed from root */
        int url_host;             /* extract the host of a URL */
};

/* The host of url ("scheme://user@HOST:port/path"), lower-cased, into
 * out. 0, or -1 when there is none or it does not fit. */
int lookup_url_host(const char *url, char *out, size_t size);

/* A token bucket: `requests` per `per_seconds`, for every observable or
 * for one type (type NULL: the whole lookup). */
struct lookup_rate {
        const char *type;
        long requests;
        double per_seconds;
        long burst; /* bucket size; default 1 */
};

enum lookup_period {
        LOOKUP_PERIOD_NONE,
        LOOKUP_PERIOD_MINUTE,
        LOOKUP_PERIOD_HOUR,
        LOOKUP_PERIOD_DAY,
        LOOKUP_PERIOD_MONTH,
};

/* A parsed definition. Strings are borrowed from root (valid until
 * lookup_def_destroy). */
struct lookup_def {
        json_t *root; /* owned */
        char *path;   /* owned */
        const char *name;
        const char *topic;
        struct lookup_obs obs[LOOKUP_MAX_OBS];
        int nobs;
        struct sl_jsonpath *where_path; /* owned, or NULL */
        json_t *where_values;           /* borrowed array of accepted values */

        struct fetch_source *src; /* owned: the HTTP half */
        long batch_max;           /* observables per request (1: none) */
        const char *batch_sep;

        /* classifying an answer */
        int not_found_status[4];
        int not_found_n;
        struct sl_jsonpath *nf_path; /* owned, or NULL */
        json_t *nf_values;           /* borrowed array, or NULL */
        struct sl_jsonpath *records; /* owned (batch): answered records */
        struct sl_jsonpath *rec_key; /* owned (batch): observable in one */

        long ttl_found_s, ttl_not_found_s, ttl_error_s;

        struct lookup_rate rates[LOOKUP_MAX_LIMITS];
        int nrates;
        long quota;
        enum lookup_period quota_period;

        long max_attempts; /* the definition's retry.max_attempts */
        long claim_s;      /* a worker's claim on an observable lasts */
};

/* Loads and validates path. New; free with lookup_def_destroy(). NULL
 * with every problem, "FILE:LINE:COL: PATH: message" per line, in *errs
 * (new; free with free()). */
struct lookup_def *lookup_def_load(const char *path, char **errs);
struct lookup_def *lookup_def_loadb(const char *file, const char *text,
                                    size_t len, char **errs);
void lookup_def_destroy(struct lookup_def *d);

/* The period's name as PostgreSQL's date_trunc reads it ("day"), or NULL
 * for none. */
const char *lookup_period_name(enum lookup_period p);

/* `sluice lint` hook: 0 valid, -1 with problems printed to err. */
int lookup_lint(const char *path, FILE *err);

/* Writes the reference of every option, as Markdown, to fp. */
void lookup_def_reference(FILE *fp);

#endif
