/* lookup_def: parses and validates lookup definitions. The option tables
 * below are the single description of every lookup key; the HTTP keys are
 * a source definition's and are checked by fetch_source_from(). */
#include "lookup_def.h"
#include "sl_util.h"

#include <stdlib.h>
#include <string.h>

static const struct sl_opt top_opts[] = {
    {"name", SL_OPT_STRING, 1, NULL,
     "lookup name, [a-z0-9_]+; answers go to raw.<name>"},
    {"description", SL_OPT_STRING, 0, NULL, "free text"},
    {"input", SL_OPT_OBJECT, 1, NULL,
     "the topic and where the observables are in its messages (see "
     "`input`)"},
    {"base_url", SL_OPT_STRING, 1, NULL,
     "scheme://host[/prefix] of the API; --base-url or SLUICE_BASE_URL "
     "replace it"},
    {"request", SL_OPT_OBJECT, 1, NULL,
     "the request, as a source definition's (docs/sources.md); templates "
     "may use ${observable} (URL-encoded in the path), ${observables} "
     "(a batch, joined by batch.separator) and ${type}"},
    {"auth", SL_OPT_OBJECT, 0, NULL,
     "credentials, as a source definition's (docs/sources.md)"},
    {"retry", SL_OPT_OBJECT, 0, NULL,
     "attempts and backoff, as a source definition's: every attempt "
     "takes a token and a unit of quota"},
    {"timeouts", SL_OPT_OBJECT, 0, NULL, "as a source definition's"},
    {"tls", SL_OPT_OBJECT, 0, NULL, "as a source definition's"},
    {"limits", SL_OPT_OBJECT, 0, NULL, "as a source definition's"},
    {"batch", SL_OPT_OBJECT, 0, NULL,
     "several observables per request, where the API has it (see "
     "`batch`)"},
    {"answer", SL_OPT_OBJECT, 0, NULL,
     "how an answer says found or not found (see `answer`)"},
    {"cache", SL_OPT_OBJECT, 0, NULL,
     "how long each outcome stays fresh (see `cache`)"},
    {"rate_limits", SL_OPT_ARRAY, 0, "[]",
     "token buckets, each {\"requests\", \"per_seconds\", \"burst\", "
     "\"type\"}: one without type paces the whole lookup, one with a type "
     "paces the requests about that observable type; kept in PostgreSQL, "
     "shared by every worker of the lookup; refilled over per_seconds x "
     "1.02 + 25 ms, a margin for the jitter of arrivals at the server; "
     "a bucket holds burst tokens and 10 ms of refill more, so a worker "
     "that wakes a few ms late does not lose them"},
    {"quota", SL_OPT_OBJECT, 0, NULL,
     "requests allowed per calendar period (see `quota`)"},
    {"claim_seconds", SL_OPT_INT, 0, "60",
     "how long a worker's claim on an observable keeps other workers from "
     "asking about it"},
    {NULL, 0, 0, NULL, NULL},
};

static const struct sl_opt input_opts[] = {
    {"topic", SL_OPT_STRING, 1, NULL,
     "the topic read (a consumer group sluice-lookup-<name>), e.g. "
     "mapped.threat_indicator"},
    {"observables", SL_OPT_ARRAY, 1, NULL,
     "[{\"path\": JSON path in a message, \"type\": ip|domain|url|hash|"
     "cve|...}]: every string the paths match is an observable"},
    {"where", SL_OPT_OBJECT, 0, NULL,
     "{\"path\": JSON path, \"in\": [values]}: only messages whose value "
     "there is one of the values"},
    {NULL, 0, 0, NULL, NULL},
};

static const struct sl_opt obs_opts[] = {
    {"path", SL_OPT_STRING, 1, NULL, "JSON path of the observable(s)"},
    {"type", SL_OPT_STRING, 1, NULL, "observable type, [a-z0-9_]+"},
    {"extract", SL_OPT_STRING, 0, NULL,
     "url_host: the observable is the host of the URL found there "
     "(lower-cased, without user, port, path)"},
    {NULL, 0, 0, NULL, NULL},
};

static const struct sl_opt where_opts[] = {
    {"path", SL_OPT_STRING, 1, NULL, "JSON path in the message"},
    {"in", SL_OPT_ARRAY, 1, NULL, "accepted values (strings, numbers)"},
    {NULL, 0, 0, NULL, NULL},
};

static const struct sl_opt batch_opts[] = {
    {"max", SL_OPT_INT, 1, NULL, "observables per request (1..1000)"},
    {"separator", SL_OPT_STRING, 0, ",", "joins them in ${observables}"},
    {"records", SL_OPT_STRING, 1, NULL,
     "JSON path of the records of a batch answer, one per observable "
     "found"},
    {"key", SL_OPT_STRING, 1, NULL,
     "record-relative JSON path of the observable a record answers; an "
     "observable of the batch without a record is not found"},
    {NULL, 0, 0, NULL, NULL},
};

static const struct sl_opt answer_opts[] = {
    {"not_found_status", SL_OPT_ARRAY, 0, "[404]",
     "statuses that mean the API knows nothing of the observable (the "
     "answer is still published)"},
    {"not_found_path", SL_OPT_STRING, 0, NULL,
     "JSON path in a 200 answer that says not found ..."},
    {"not_found_values", SL_OPT_ARRAY, 0, NULL,
     "... when its value is one of these (URLhaus: query_status "
     "no_results)"},
    {NULL, 0, 0, NULL, NULL},
};

static const struct sl_opt cache_opts[] = {
    {"found_seconds", SL_OPT_INT, 0, "86400",
     "an answer that found the observable stays fresh this long"},
    {"not_found_seconds", SL_OPT_INT, 0, "86400",
     "an answer that did not find it"},
    {"error_seconds", SL_OPT_INT, 0, "3600",
     "a permanent error (sent to dlq.lookup)"},
    {NULL, 0, 0, NULL, NULL},
};

static const struct sl_opt rate_opts[] = {
    {"requests", SL_OPT_INT, 1, NULL, "tokens added per per_seconds"},
    {"per_seconds", SL_OPT_NUMBER, 1, NULL, "refill period in seconds"},
    {"burst", SL_OPT_INT, 0, "1",
     "bucket size: requests that may go at once after a quiet spell"},
    {"type", SL_OPT_STRING, 0, NULL,
     "observable type this bucket paces; absent: every request"},
    {NULL, 0, 0, NULL, NULL},
};

static const struct sl_opt quota_opts[] = {
    {"requests", SL_OPT_INT, 1, NULL, "requests allowed per period"},
    {"period", SL_OPT_STRING, 1, NULL,
     "minute, hour, day or month, in UTC (a free tier's 1000/day resets "
     "at 00:00 UTC); when spent, workers wait for the next period with "
     "nothing lost"},
    {NULL, 0, 0, NULL, NULL},
};

static const struct {
        const char *name;
        const struct sl_opt *opts;
        const char *help;
} sections[] = {
    {"(top level)", top_opts,
     "a lookup definition is one JSON object; the HTTP keys are a source "
     "definition's"},
    {"input", input_opts, NULL},
    {"input.observables[]", obs_opts, NULL},
    {"input.where", where_opts, NULL},
    {"batch", batch_opts, "without it, one request per observable"},
    {"answer", answer_opts,
     "a 2xx answer is found unless these say otherwise; 429 and the "
     "retry.throttle_status wait as the server asks; 5xx and transport "
     "errors are retried; any other status is an error"},
    {"cache", cache_opts,
     "sluice.lookup_cache: one row per lookup and observable"},
    {"rate_limits[]", rate_opts, NULL},
    {"quota", quota_opts, "sluice.lookup_quota: one row per lookup"},
};

void lookup_def_reference(FILE *fp)
{
        for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++)
                sl_opt_reference(fp, sections[i].name, sections[i].help,
                                 sections[i].opts);
}

static const char *const period_names[] = {NULL, "minute", "hour", "day",
                                           "month"};

const char *lookup_period_name(enum lookup_period p)
{
        return period_names[p];
}

static int name_ok(const char *s)
{
        if (!s || !*s)
                return 0;
        for (; *s; s++)
                if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
                      *s == '_'))
                        return 0;
        return 1;
}

static long int_get(json_t *obj, const char *key, long def)
{
        json_t *v = json_object_get(obj, key);
        return json_is_integer(v) ? (long)json_integer_value(v) : def;
}

static const char *str_get(json_t *obj, const char *key, const char *def)
{
        const char *s = json_string_value(json_object_get(obj, key));
        return s ? s : def;
}

/* Compiles the path at obj.key (where names obj). */
static struct sl_jsonpath *path_get(json_t *obj, const char *key,
                                    const char *where, const char *file,
                                    const char *text, char **errs, int *bad)
{
        const char *s = str_get(obj, key, NULL);
        struct sl_jsonpath *p;
        char errstr[256], at[256];

        if (!s)
                return NULL;
        p = sl_jsonpath_compile(s, errstr, sizeof(errstr));
        if (!p) {
                snprintf(at, sizeof(at), "%s%s%s", where, *where ? "." : "",
                         key);
                sl_config_problem(errs, file, text, at, "%s", errstr);
                (*bad)++;
        }
        return p;
}

static int check_section(const struct sl_opt *opts, json_t *obj,
                         const char *where, const char *file, const char *text,
                         char **errs)
{
        if (!json_is_object(obj))
                return 0;
        return sl_opt_check(opts, obj, file, text, where, errs);
}

static int parse_input(struct lookup_def *d, const char *file, const char *text,
                       char **errs)
{
        json_t *in = json_object_get(d->root, "input");
        json_t *arr = json_object_get(in, "observables");
        json_t *where = json_object_get(in, "where");
        json_t *v;
        size_t i;
        int bad = 0;

        d->topic = str_get(in, "topic", NULL);
        if (json_array_size(arr) == 0 ||
            json_array_size(arr) > LOOKUP_MAX_OBS) {
                sl_config_problem(errs, file, text, "input.observables",
                                  "expected 1 to %d {path, type} objects",
                                  LOOKUP_MAX_OBS);
                return 1;
        }
        json_array_foreach(arr, i, v)
        {
                char at[64];
                struct lookup_obs *o = &d->obs[d->nobs];

                snprintf(at, sizeof(at), "input.observables[%zu]", i);
                if (!json_is_object(v)) {
                        sl_config_problem(errs, file, text, at,
                                          "expected an object");
                        bad++;
                        continue;
                }
                if (sl_opt_check(obs_opts, v, file, text, at, errs)) {
                        bad++;
                        continue;
                }
                o->type = str_get(v, "type", NULL);
                if (!name_ok(o->type)) {
                        char tat[80];
                        snprintf(tat, sizeof(tat), "%s.type", at);
                        sl_config_problem(errs, file, text, tat,
                                          "must match [a-z0-9_]+, got "
                                          "\"%s\"",
                                          o->type);
                        bad++;
                }
                {
                        const char *x = str_get(v, "extract", NULL);
                        if (x && strcmp(x, "url_host") != 0) {
                                char xat[80];
                                snprintf(xat, sizeof(xat), "%s.extract", at);
                                sl_config_problem(errs, file, text, xat,
                                                  "must be url_host, got "
                                                  "\"%s\"",
                                                  x);
                                bad++;
                        }
                        o->url_host = x != NULL;
                }
                o->path = path_get(v, "path", at, file, text, errs, &bad);
                if (o->path)
                        d->nobs++;
        }
        if (where) {
                d->where_path = path_get(where, "path", "input.where", file,
                                         text, errs, &bad);
                d->where_values = json_object_get(where, "in");
        }
        return bad;
}

static int parse_answer(struct lookup_def *d, const char *file,
                        const char *text, char **errs)
{
        json_t *ans = json_object_get(d->root, "answer");
        json_t *batch = json_object_get(d->root, "batch");
        json_t *nf = json_object_get(ans, "not_found_status");
        json_t *v;
        size_t i;
        int bad = 0;

        if (!nf) {
                d->not_found_status[0] = 404;
                d->not_found_n = 1;
        }
        json_array_foreach(nf, i, v)
        {
                char at[64];
                if (json_is_integer(v) && json_integer_value(v) >= 200 &&
                    json_integer_value(v) <= 499 && i < 4) {
                        d->not_found_status[d->not_found_n++] =
                            (int)json_integer_value(v);
                        continue;
                }
                snprintf(at, sizeof(at), "answer.not_found_status[%zu]", i);
                sl_config_problem(errs, file, text, at,
                                  "expected an HTTP status 200..499 (at "
                                  "most 4)");
                bad++;
        }
        d->nf_path =
            path_get(ans, "not_found_path", "answer", file, text, errs, &bad);
        d->nf_values = json_object_get(ans, "not_found_values");
        if (!d->nf_path != !d->nf_values) {
                sl_config_problem(errs, file, text, "answer",
                                  "not_found_path and not_found_values go "
                                  "together");
                bad++;
        }
        d->batch_max = 1;
        d->batch_sep = ",";
        if (batch) {
                d->batch_max = int_get(batch, "max", 1);
                d->batch_sep = str_get(batch, "separator", ",");
                if (d->batch_max < 1 || d->batch_max > 1000) {
                        sl_config_problem(errs, file, text, "batch.max",
                                          "must be 1..1000, got %ld",
                                          d->batch_max);
                        bad++;
                }
                d->records =
                    path_get(batch, "records", "batch", file, text, errs, &bad);
                d->rec_key =
                    path_get(batch, "key", "batch", file, text, errs, &bad);
        }
        return bad;
}

static int parse_limits(struct lookup_def *d, const char *file,
                        const char *text, char **errs)
{
        json_t *cache = json_object_get(d->root, "cache");
        json_t *rates = json_object_get(d->root, "rate_limits");
        json_t *quota = json_object_get(d->root, "quota");
        json_t *v;
        size_t i;
        int bad = 0;

        d->ttl_found_s = int_get(cache, "found_seconds", 86400);
        d->ttl_not_found_s = int_get(cache, "not_found_seconds", 86400);
        d->ttl_error_s = int_get(cache, "error_seconds", 3600);
        if (d->ttl_found_s < 0 || d->ttl_not_found_s < 0 ||
            d->ttl_error_s < 0) {
                sl_config_problem(errs, file, text, "cache",
                                  "durations must not be negative");
                bad++;
        }
        if (json_array_size(rates) > LOOKUP_MAX_LIMITS) {
                sl_config_problem(errs, file, text, "rate_limits",
                                  "at most %d buckets", LOOKUP_MAX_LIMITS);
                return bad + 1;
        }
        json_array_foreach(rates, i, v)
        {
                struct lookup_rate *r = &d->rates[d->nrates];
                char at[64];

                snprintf(at, sizeof(at), "rate_limits[%zu]", i);
                if (!json_is_object(v)) {
                        sl_config_problem(errs, file, text, at,
                                          "expected an object");
                        bad++;
                        continue;
                }
                if (sl_opt_check(rate_opts, v, file, text, at, errs)) {
                        bad++;
                        continue;
                }
                r->type = str_get(v, "type", NULL);
                r->requests = int_get(v, "requests", 0);
                r->per_seconds =
                    json_number_value(json_object_get(v, "per_seconds"));
                r->burst = int_get(v, "burst", 1);
                if (r->requests < 1 || r->per_seconds <= 0 || r->burst < 1) {
                        sl_config_problem(errs, file, text, at,
                                          "requests, per_seconds and burst "
                                          "must be positive");
                        bad++;
                        continue;
                }
                d->nrates++;
        }
        if (quota) {
                const char *p = str_get(quota, "period", "");
                d->quota = int_get(quota, "requests", 0);
                for (int k = 1; k <= LOOKUP_PERIOD_MONTH; k++)
                        if (strcmp(p, period_names[k]) == 0)
                                d->quota_period = (enum lookup_period)k;
                if (d->quota_period == LOOKUP_PERIOD_NONE) {
                        sl_config_problem(errs, file, text, "quota.period",
                                          "must be minute, hour, day or "
                                          "month, got \"%s\"",
                                          p);
                        bad++;
                }
                if (d->quota < 1) {
                        sl_config_problem(errs, file, text, "quota.requests",
                                          "must be positive");
                        bad++;
                }
        }
        d->claim_s = int_get(d->root, "claim_seconds", 60);
        if (d->claim_s < 1) {
                sl_config_problem(errs, file, text, "claim_seconds",
                                  "must be positive");
                bad++;
        }
        return bad;
}

struct lookup_def *lookup_def_loadb(const char *file, const char *text,
                                    size_t len, char **errs)
{
        struct lookup_def *d = NULL;
        char errstr[512];
        json_t *root;
        int bad;

        root = sl_config_loadb(file, text, len, errstr, sizeof(errstr));
        if (!root) {
                char *line = sl_asprintf("%s%s\n", *errs ? *errs : "", errstr);
                free(*errs);
                *errs = line;
                return NULL;
        }
        if (!json_is_object(root)) {
                sl_config_problem(errs, file, text, "",
                                  "a lookup definition is a JSON object");
                json_decref(root);
                return NULL;
        }
        d = sl_calloc(1, sizeof(*d));
        d->root = root;
        d->path = sl_strdup(file);
        bad = sl_opt_check(top_opts, root, file, text, "", errs);
        bad += check_section(input_opts, json_object_get(root, "input"),
                             "input", file, text, errs);
        bad += check_section(
            where_opts,
            json_object_get(json_object_get(root, "input"), "where"),
            "input.where", file, text, errs);
        bad += check_section(batch_opts, json_object_get(root, "batch"),
                             "batch", file, text, errs);
        bad += check_section(answer_opts, json_object_get(root, "answer"),
                             "answer", file, text, errs);
        bad += check_section(cache_opts, json_object_get(root, "cache"),
                             "cache", file, text, errs);
        bad += check_section(quota_opts, json_object_get(root, "quota"),
                             "quota", file, text, errs);
        if (bad)
                goto out;
        d->name = str_get(root, "name", "");
        if (!name_ok(d->name)) {
                sl_config_problem(errs, file, text, "name",
                                  "must match [a-z0-9_]+, got \"%s\"", d->name);
                bad++;
        }
        bad += parse_input(d, file, text, errs);
        bad += parse_answer(d, file, text, errs);
        bad += parse_limits(d, file, text, errs);
        d->src = fetch_source_from(file, text, root, d->name, errs);
        if (!d->src)
                bad++;
        else
                d->max_attempts = d->src->max_attempts;
out:
        if (bad) {
                lookup_def_destroy(d);
                return NULL;
        }
        return d;
}

struct lookup_def *lookup_def_load(const char *path, char **errs)
{
        char errstr[512];
        size_t len = 0;
        char *text = sl_file_read(path, &len, errstr, sizeof(errstr));
        struct lookup_def *d;

        if (!text) {
                *errs = sl_asprintf("%s\n", errstr);
                return NULL;
        }
        d = lookup_def_loadb(path, text, len, errs);
        free(text);
        return d;
}

void lookup_def_destroy(struct lookup_def *d)
{
        if (!d)
                return;
        for (int i = 0; i < d->nobs; i++)
                sl_jsonpath_destroy(d->obs[i].path);
        sl_jsonpath_destroy(d->where_path);
        sl_jsonpath_destroy(d->nf_path);
        sl_jsonpath_destroy(d->records);
        sl_jsonpath_destroy(d->rec_key);
        fetch_source_destroy(d->src);
        json_decref(d->root);
        free(d->path);
        free(d);
}

int lookup_url_host(const char *url, char *out, size_t size)
{
        const char *p = strstr(url, "://");
        const char *end, *at;
        size_t n = 0;

        p = p ? p + 3 : url;
        end = p + strcspn(p, "/?#");
        at = memchr(p, '@', (size_t)(end - p));
        if (at)
                p = at + 1;
        if (*p == '[') { /* an IPv6 literal keeps its colons */
                const char *close = memchr(p, ']', (size_t)(end - p));
                if (!close)
                        return -1;
                p++;
                end = close;
        } else {
                const char *colon = memchr(p, ':', (size_t)(end - p));
                if (colon)
                        end = colon;
        }
        if (end <= p || (size_t)(end - p) >= size)
                return -1;
        for (; p < end; p++)
                out[n++] = (char)((*p >= 'A' && *p <= 'Z') ? *p + 32 : *p);
        out[n] = '\0';
        return 0;
}

int lookup_lint(const char *path, FILE *err)
{
        char *errs = NULL;
        struct lookup_def *d = lookup_def_load(path, &errs);

        if (!d) {
                fputs(errs ? errs : "invalid lookup definition\n", err);
                free(errs);
                return -1;
        }
        lookup_def_destroy(d);
        return 0;
}
