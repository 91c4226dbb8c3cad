/* test_lookup_def: lookup definitions (lookups/lookup_def.c) parse into
 * what the worker runs, refuse what it cannot run with file:line:col
 * errors, and take the host out of URLs the way the worker does. */
#include "lookup_def.h"
#include "tap.h"

#include <stdlib.h>
#include <string.h>

static const char good[] =
    "{\n"
    "  \"name\": \"epss\",\n"
    "  \"input\": {\"topic\": \"mapped.vulnerability\",\n"
    "            \"observables\": [{\"path\": \"$.row.cve_id\", \"type\": "
    "\"cve\"}],\n"
    "            \"where\": {\"path\": \"$.op\", \"in\": [\"upsert\"]}},\n"
    "  \"base_url\": \"https://api.first.org\",\n"
    "  \"request\": {\"path\": \"/data/v1/epss\", \"query\": {\"cve\": "
    "\"${observables}\"}},\n"
    "  \"batch\": {\"max\": 100, \"records\": \"$.data\", \"key\": "
    "\"cve\"},\n"
    "  \"cache\": {\"found_seconds\": 60, \"error_seconds\": 5},\n"
    "  \"rate_limits\": [{\"requests\": 10, \"per_seconds\": 1}, "
    "{\"type\": \"cve\", \"requests\": 2, \"per_seconds\": 0.5, \"burst\": "
    "3}],\n"
    "  \"quota\": {\"requests\": 1000, \"period\": \"day\"},\n"
    "  \"retry\": {\"max_attempts\": 3}\n"
    "}\n";

static char *errors_of(const char *text)
{
        char *errs = NULL;
        struct lookup_def *d =
            lookup_def_loadb("l.json", text, strlen(text), &errs);
        lookup_def_destroy(d);
        return errs;
}

int main(void)
{
        char *errs = NULL;
        struct lookup_def *d;
        char host[64];

        d = lookup_def_loadb("l.json", good, strlen(good), &errs);
        TAP_OK(d != NULL, "a good definition loads%s%s", errs ? ": " : "",
               errs ? errs : "");
        if (d) {
                TAP_STR_EQ(d->name, "epss", "its name");
                TAP_STR_EQ(d->topic, "mapped.vulnerability", "its topic");
                TAP_INT_EQ(d->nobs, 1, "one observable path");
                TAP_STR_EQ(d->obs[0].type, "cve", "of type cve");
                TAP_INT_EQ(d->batch_max, 100, "batches of 100");
                TAP_INT_EQ(d->ttl_found_s, 60, "found TTL as given");
                TAP_INT_EQ(d->ttl_not_found_s, 86400, "not-found TTL default");
                TAP_INT_EQ(d->ttl_error_s, 5, "error TTL as given");
                TAP_INT_EQ(d->nrates, 2, "two buckets");
                TAP_OK(d->rates[0].type == NULL && d->rates[0].burst == 1,
                       "the lookup's bucket, burst 1 by default");
                TAP_OK(d->rates[1].type && !strcmp(d->rates[1].type, "cve") &&
                           d->rates[1].burst == 3,
                       "the cve bucket");
                TAP_INT_EQ(d->quota, 1000, "quota");
                TAP_STR_EQ(lookup_period_name(d->quota_period), "day",
                           "per day");
                TAP_INT_EQ(d->max_attempts, 3, "retry.max_attempts kept");
                TAP_INT_EQ(d->not_found_n, 1, "404 means not found by default");
                TAP_STR_EQ(d->src->req_path, "/data/v1/epss",
                           "the HTTP half is a source definition's");
        }
        lookup_def_destroy(d);
        free(errs);

        errs =
            errors_of("{\n  \"name\": \"x\",\n  \"input\": {\"topic\": "
                      "\"t\", \"observables\": []},\n  \"base_url\": "
                      "\"https://h\",\n  \"request\": {\"path\": \"/\"}\n}\n");
        TAP_OK(errs && strstr(errs, "l.json:3:") &&
                   strstr(errs, "input.observables: expected 1 to 8"),
               "no observables: told at the line");
        free(errs);
        errs = errors_of("{\n  \"name\": \"x\",\n  \"input\": {\"topic\": "
                         "\"t\", \"observables\": [{\"path\": \"a\", "
                         "\"type\": \"ip\"}]},\n  \"base_url\": "
                         "\"https://h\",\n  \"request\": {\"path\": \"/\", "
                         "\"method\": \"DELETE\"},\n  \"answer\": "
                         "{\"not_found_path\": \"$.s\"}\n}\n");
        TAP_OK(errs && strstr(errs, "l.json:5:") &&
                   strstr(errs, "request.method: must be GET or POST"),
               "the HTTP half is checked as a source's");
        TAP_OK(errs && strstr(errs, "not_found_path and not_found_values "
                                    "go together"),
               "not_found_path needs its values");
        free(errs);

        TAP_INT_EQ(lookup_url_host("https://User@Evil.Example:8443/x?y", host,
                                   sizeof(host)),
                   0, "a URL with user and port has a host");
        TAP_STR_EQ(host, "evil.example", "lower-cased, without user and port");
        lookup_url_host("http://[2001:db8::1]:80/a", host, sizeof(host));
        TAP_STR_EQ(host, "2001:db8::1", "an IPv6 literal keeps its colons");
        lookup_url_host("216.10.244.155/a.sh", host, sizeof(host));
        TAP_STR_EQ(host, "216.10.244.155", "no scheme: the host still");
        TAP_INT_EQ(lookup_url_host("http:///path", host, sizeof(host)), -1,
                   "no host: refused");
        TAP_INT_EQ(lookup_url_host("http://a-very-long-host.example/", host, 8),
                   -1, "a host that does not fit: refused");
        return TAP_DONE();
}
