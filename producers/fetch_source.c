/* fetch_source: parses and validates source definitions. The option tables
 * below are the single description of every key: validation, the
 * reference printed by `sluice fetch --reference` and docs/sources.md come
 * from them. */
#include "fetch_source.h"
#include "fetch_xml.h"
#include "sl_config.h"
#include "sl_extends.h"
#include "sl_jsonpath.h"
#include "sl_util.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

static const struct sl_opt top_opts[] = {
    {"name", SL_OPT_STRING, 1, NULL,
     "source name, [a-z0-9_]+; pages go to raw.<name>"},
    {"description", SL_OPT_STRING, 0, NULL, "free text"},
    {"base_url", SL_OPT_STRING, 1, NULL,
     "scheme://host[/prefix] of the API; --base-url or SLUICE_BASE_URL "
     "replace it"},
    {"request", SL_OPT_OBJECT, 1, NULL, "the request (see `request`)"},
    {"records", SL_OPT_STRING, 1, NULL,
     "JSON path of the records array in a page (`$` when the page is "
     "the array)"},
    {"format", SL_OPT_STRING, 0, "json",
     "json, or xml: each XML page becomes a JSON page {\"records\": "
     "[...], \"next\": URL} before anything reads it (see `xml`)"},
    {"xml", SL_OPT_OBJECT, 0, NULL,
     "format xml: which elements are records, and how they convert "
     "(see `xml`)"},
    {"soap", SL_OPT_OBJECT, 0, NULL,
     "format xml: the requests are SOAP envelopes POSTed to request.path "
     "(see `soap`)"},
    {"auth", SL_OPT_OBJECT, 0, NULL, "credentials (see `auth`)"},
    {"paging", SL_OPT_OBJECT, 0, "{\"style\":\"none\"}",
     "how pages follow each other (see `paging`)"},
    {"export", SL_OPT_OBJECT, 0, NULL,
     "export job endpoints for paging style `export` (see `export`)"},
    {"rate_limit", SL_OPT_OBJECT, 0, NULL,
     "at most N requests in any rolling window (see `rate_limit`)"},
    {"retry", SL_OPT_OBJECT, 0, NULL, "retries and backoff (see `retry`)"},
    {"timeouts", SL_OPT_OBJECT, 0, NULL, "HTTP timeouts (see `timeouts`)"},
    {"tls", SL_OPT_OBJECT, 0, NULL,
     "certificate verification of HTTPS requests (see `tls`)"},
    {"limits", SL_OPT_OBJECT, 0, NULL,
     "bounds on what one page may hold (see `limits`)"},
    {"incremental", SL_OPT_OBJECT, 0, NULL,
     "cursor and date windows (see `incremental`)"},
    {"concurrency", SL_OPT_INT, 0, "4",
     "parallel requests when the number of pages is known (1..64)"},
    {"interval_seconds", SL_OPT_INT, 0, "3600",
     "time between syncs without --once"},
    {"max_message_bytes", SL_OPT_INT, 0, "1000000",
     "pages larger than this are split into chunks of whole records"},
    {"progress_seconds", SL_OPT_INT, 0, "10", "interval of progress log lines"},
    {NULL, 0, 0, NULL, NULL},
};

static const struct sl_opt request_opts[] = {
    {"method", SL_OPT_STRING, 0, "GET", "GET or POST"},
    {"path", SL_OPT_STRING, 1, NULL, "path appended to base_url (templated)"},
    {"query", SL_OPT_OBJECT, 0, NULL,
     "query parameters: name -> string template"},
    {"headers", SL_OPT_OBJECT, 0, NULL,
     "request headers: name -> string template"},
    {"body", SL_OPT_ANY, 0, NULL,
     "request body: a string template, or JSON sent as "
     "application/json"},
    {NULL, 0, 0, NULL, NULL},
};

static const struct sl_opt auth_opts[] = {
    {"type", SL_OPT_STRING, 1, NULL, "header, query, bearer or basic"},
    {"name", SL_OPT_STRING, 0, NULL,
     "header or query parameter name (header, query)"},
    {"env", SL_OPT_STRING, 0, NULL,
     "variable holding the key, token or basic password"},
    {"username_env", SL_OPT_STRING, 0, NULL,
     "variable holding the basic user name"},
    {"optional", SL_OPT_BOOL, 0, "false",
     "when the variable is unset, send no credentials instead of "
     "failing"},
    {NULL, 0, 0, NULL, NULL},
};

static const struct sl_opt paging_opts[] = {
    {"style", SL_OPT_STRING, 1, NULL,
     "none, offset, page, cursor, next_url, link or export"},
    {"param", SL_OPT_STRING, 0, NULL,
     "offset, page number or cursor query parameter"},
    {"size_param", SL_OPT_STRING, 0, NULL, "page size query parameter"},
    {"size", SL_OPT_INT, 0, NULL, "page size sent in size_param"},
    {"start", SL_OPT_INT, 0, "0", "first offset or page number"},
    {"total", SL_OPT_STRING, 0, NULL,
     "JSON path of the total record count (offset: enables parallel "
     "pages; cursor, next_url, link: bounds the page count at "
     "ceil(total / records per page) + 2 + a tenth)"},
    {"total_pages", SL_OPT_STRING, 0, NULL,
     "JSON path of the page count (page: enables parallel pages; "
     "else stop on an empty page)"},
    {"next", SL_OPT_STRING, 0, NULL,
     "JSON path of the cursor token (cursor) or of the next URL "
     "(next_url); empty or null ends"},
    {"resend_query", SL_OPT_ARRAY, 0, NULL,
     "next_url, link: names of request.query parameters (or the query "
     "auth.name) set again on every URL the server gave, replacing a value "
     "it has; without it a URL the server gave is requested exactly as "
     "given"},
    {"max_pages", SL_OPT_INT, 0, "10000",
     "a window with more pages than this fails the sync (1..100000000)"},
    {NULL, 0, 0, NULL, NULL},
};

static const struct sl_opt export_opts[] = {
    {"create_path", SL_OPT_STRING, 1, NULL,
     "POST here to start a job; answers {\"export_uuid\"} or 409 with "
     "active_job_id (resumed)"},
    {"body", SL_OPT_ANY, 0, NULL, "JSON body of the create request"},
    {"status_path", SL_OPT_STRING, 1, NULL,
     "status of the job; ${export_uuid} is replaced"},
    {"chunk_path", SL_OPT_STRING, 1, NULL,
     "one chunk; ${export_uuid} and ${chunk} are replaced"},
    {"poll_ms", SL_OPT_INT, 0, "500",
     "first status poll delay, and the delay after a poll that brought "
     "new chunks"},
    {"poll_max_ms", SL_OPT_INT, 0, "30000",
     "longest poll delay (the delay grows ×1.5 per poll that brings "
     "nothing new)"},
    {"timeout_seconds", SL_OPT_INT, 0, "3600",
     "give up on a job after this long"},
    {NULL, 0, 0, NULL, NULL},
};

static const struct sl_opt xml_opts[] = {
    {"records", SL_OPT_STRING, 1, NULL,
     "element path of the records from the root, /A/B/C (a step * "
     "matches any element); with format xml, `records` is \"$.records\""},
    {"arrays", SL_OPT_ARRAY, 0, "[]",
     "element names whose values are always arrays, even when an element "
     "holds only one"},
    {"next", SL_OPT_STRING, 0, NULL,
     "element path of the next page's URL (Qualys: "
     "/HOST_LIST_VM_DETECTION_OUTPUT/RESPONSE/WARNING/URL): its text is "
     "the page's \"next\", for paging style next_url (paging.next is "
     "then \"$.next\")"},
    {NULL, 0, 0, NULL, NULL},
};

static const struct sl_opt soap_opts[] = {
    {"version", SL_OPT_STRING, 0, "1.1",
     "1.1: Content-Type text/xml and a SOAPAction header; 1.2: "
     "Content-Type application/soap+xml with an action parameter"},
    {"action", SL_OPT_STRING, 0, NULL,
     "the operation's action URI (SOAPAction); unset: 1.1 sends "
     "SOAPAction \"\", 1.2 no action"},
    {"envelope", SL_OPT_STRING, 1, NULL,
     "the first request's envelope, a template (as request templates, and "
     "every substituted value XML-escaped)"},
    {"next_envelope", SL_OPT_STRING, 0, NULL,
     "paging style cursor: the envelope of the pages after the first, "
     "with ${next}, the text of the previous answer's xml.next element "
     "(Salesforce: queryMore with the queryLocator); default: envelope"},
    {"next_action", SL_OPT_STRING, 0, NULL,
     "the action of the pages after the first; default: action"},
    {"retry_faults", SL_OPT_ARRAY, 0, "[\"Server\", \"Receiver\"]",
     "fault codes (the local name, without its prefix) retried with "
     "backoff like a 5xx; any other fault fails the request for good "
     "with its faultcode and faultstring"},
    {NULL, 0, 0, NULL, NULL},
};

static const struct sl_opt rate_opts[] = {
    {"requests", SL_OPT_INT, 1, NULL, "requests allowed per window"},
    {"per_seconds", SL_OPT_NUMBER, 1, NULL, "window length in seconds"},
    {NULL, 0, 0, NULL, NULL},
};

static const struct sl_opt retry_opts[] = {
    {"max_attempts", SL_OPT_INT, 0, "8",
     "attempts of one request before the sync fails"},
    {"base_ms", SL_OPT_INT, 0, "500", "first backoff (full jitter)"},
    {"max_ms", SL_OPT_INT, 0, "60000", "backoff cap"},
    {"throttle_status", SL_OPT_ARRAY, 0, "[429, 503]",
     "statuses that mean slow down (NVD adds 403)"},
    {NULL, 0, 0, NULL, NULL},
};

static const struct sl_opt tls_opts[] = {
    {"verify", SL_OPT_BOOL, 0, "true",
     "verify the server's certificate and host name; false only for a "
     "test server (logged as a warning at start)"},
    {"ca_file", SL_OPT_STRING, 0, NULL,
     "PEM bundle of the CAs to trust instead of the system's"},
    {NULL, 0, 0, NULL, NULL},
};

static const struct sl_opt limit_opts[] = {
    {"max_page_bytes", SL_OPT_INT, 0, "67108864",
     "a larger response body is bad for good (not retried)"},
    {"max_records", SL_OPT_INT, 0, "1000000",
     "a page with more records is bad for good"},
    {"max_depth", SL_OPT_INT, 0, "64",
     "a page nested deeper (arrays and objects) is bad for good"},
    {NULL, 0, 0, NULL, NULL},
};

static const struct sl_opt timeout_opts[] = {
    {"connect_ms", SL_OPT_INT, 0, "10000", "connect timeout"},
    {"total_ms", SL_OPT_INT, 0, "300000", "whole-transfer timeout"},
    {"low_speed_bytes", SL_OPT_INT, 0, "100",
     "abort when slower than this many bytes/s ..."},
    {"low_speed_seconds", SL_OPT_INT, 0, "30", "... for this long"},
    {NULL, 0, 0, NULL, NULL},
};

static const struct sl_opt inc_opts[] = {
    {"cursor", SL_OPT_STRING, 1, NULL,
     "record-relative path of the value whose maximum is the cursor "
     "(RFC 3339 times compare as text)"},
    {"start", SL_OPT_STRING, 0, NULL,
     "the cursor of the first sync (RFC 3339 UTC); without it the first "
     "sync is a full pull with empty window bounds (query parameters that "
     "expand to empty are left out) and the cursor becomes the newest value "
     "seen"},
    {"window_days", SL_OPT_INT, 0, "0",
     "split [cursor, now] into windows of this many days (NVD: 120); "
     "0 = one window"},
    {NULL, 0, 0, NULL, NULL},
};

static const struct {
        const char *name;
        const struct sl_opt *opts;
        const char *help;
} sections[] = {
    {"(top level)", top_opts, "a source definition is one JSON object"},
    {"request", request_opts,
     "templates may use ${env:NAME}, ${cursor}, ${now}, "
     "${window.start}, ${window.end}; in request.query, ${name?} leaves the "
     "whole parameter out when the variable is empty "
     "(\"updated\": \">=${cursor?}\" on a first, full sync)"},
    {"auth", auth_opts, "secrets are read from the environment only"},
    {"paging", paging_opts, NULL},
    {"export", export_opts, NULL},
    {"xml", xml_opts,
     "XML pages are streamed (libxml2's reader), never load external "
     "entities or DTDs, and a page that declares or uses entities is "
     "refused; limits apply as to JSON (docs/sources.md, XML sources)"},
    {"soap", soap_opts,
     "a SOAP source is a format xml source (xml.records, xml.next) whose "
     "requests are POSTed envelopes; a SOAP Fault in an answer, whatever "
     "its HTTP status, is an error naming its faultcode and faultstring "
     "(docs/sources.md, SOAP sources)"},
    {"rate_limit", rate_opts,
     "shared by parallel requests; an in-flight request holds a slot "
     "until its answer arrives"},
    {"retry", retry_opts,
     "throttle answers wait Retry-After (seconds or date), "
     "x-ratelimit-reset or X-Ratelimit-Retryafter, else backoff"},
    {"timeouts", timeout_opts, NULL},
    {"tls", tls_opts,
     "verification is on unless a definition turns it off; "
     "SSL_CERT_FILE and SSL_CERT_DIR work as for curl"},
    {"limits", limit_opts,
     "a hostile or broken upstream cannot exhaust memory or stack: a "
     "page over a limit is neither retried nor published; one page of a "
     "known set goes to dlq.fetch with the error naming the limit and the "
     "rest lands, a page the sync cannot do without fails the sync"},
    {"incremental", inc_opts,
     "the cursor is kept in sluice.state after each delivered window"},
};

void fetch_source_reference(FILE *fp)
{
        for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++)
                sl_opt_reference(fp, sections[i].name, sections[i].help,
                                 sections[i].opts);
}

static const char *const paging_names[] = {
    "none", "offset", "page", "cursor", "next_url", "link", "export",
};

static const char *const auth_names[] = {
    "none", "header", "query", "bearer", "basic",
};

/* Checks the nested object `key` of obj when present. */
static int check_section(const struct sl_opt *opts, json_t *obj,
                         const char *key, const char *file, const char *text,
                         char **errs)
{
        json_t *sub = json_object_get(obj, key);

        if (!sub || !json_is_object(sub))
                return 0;
        return sl_opt_check(opts, sub, file, text, key, errs);
}

static const char *str_get(json_t *obj, const char *key, const char *def)
{
        json_t *v = json_object_get(obj, key);

        return json_is_string(v) ? json_string_value(v) : def;
}

static long int_get(json_t *obj, const char *key, long def)
{
        json_t *v = json_object_get(obj, key);

        return json_is_integer(v) ? (long)json_integer_value(v) : def;
}

static int name_ok(const char *s)
{
        if (!*s)
                return 0;
        for (; *s; s++)
                if (!islower((unsigned char)*s) &&
                    !isdigit((unsigned char)*s) && *s != '_')
                        return 0;
        return 1;
}

static int lookup(const char *const *names, size_t n, const char *s)
{
        for (size_t i = 0; i < n; i++)
                if (strcmp(names[i], s) == 0)
                        return (int)i;
        return -1;
}

/* A JSON path option: compiles it to report a bad one. */
static int check_path(json_t *obj, const char *key, const char *where,
                      const char *file, const char *text, char **errs)
{
        const char *s = str_get(obj, key, NULL);
        struct sl_jsonpath *p;
        char err[256];
        char path[128];

        if (!s)
                return 0;
        p = sl_jsonpath_compile(s, err, sizeof(err));
        if (p) {
                sl_jsonpath_destroy(p);
                return 0;
        }
        snprintf(path, sizeof(path), "%s%s%s", where, *where ? "." : "", key);
        sl_config_problem(errs, file, text, path, "bad JSON path \"%s\": %s", s,
                          err);
        return 1;
}

static int check_positive(json_t *obj, const char *key, const char *where,
                          long min, long max, const char *file,
                          const char *text, char **errs)
{
        json_t *v = json_object_get(obj, key);
        char path[128];

        if (!json_is_integer(v))
                return 0;
        if (json_integer_value(v) >= min && json_integer_value(v) <= max)
                return 0;
        snprintf(path, sizeof(path), "%s%s%s", where, *where ? "." : "", key);
        sl_config_problem(errs, file, text, path, "must be between %ld and %ld",
                          min, max);
        return 1;
}

/* paging.resend_query: only where the server gives URLs, and only names
 * the definition sends (a request.query key, the query auth.name). */
static int check_resend(const struct fetch_source *src, const char *file,
                        const char *text, char **errs)
{
        size_t i;
        json_t *v;
        int bad = 0;

        if (!src->resend_query)
                return 0;
        if (src->paging != FETCH_PAGING_NEXT_URL &&
            src->paging != FETCH_PAGING_LINK) {
                sl_config_problem(errs, file, text, "paging.resend_query",
                                  "only used with paging style next_url or "
                                  "link");
                return 1;
        }
        json_array_foreach(src->resend_query, i, v)
        {
                const char *name = json_string_value(v);
                char path[64];

                snprintf(path, sizeof(path), "paging.resend_query[%zu]", i);
                if (!name) {
                        sl_config_problem(errs, file, text, path,
                                          "expected a string");
                        bad++;
                        continue;
                }
                if (json_object_get(src->query, name) ||
                    (src->auth == FETCH_AUTH_QUERY && src->auth_name &&
                     strcmp(src->auth_name, name) == 0))
                        continue;
                sl_config_problem(errs, file, text, path,
                                  "\"%s\" is neither a request.query "
                                  "parameter nor the query auth.name",
                                  name);
                bad++;
        }
        return bad;
}

/* The name of the first ${name?} in s, copied to out; 0 when none. */
static int optional_var(const char *s, char *out, size_t size)
{
        const char *p = s ? strstr(s, "${") : NULL;

        for (; p; p = strstr(p + 2, "${")) {
                const char *end = strchr(p, '}');
                if (end && end > p + 2 && end[-1] == '?') {
                        snprintf(out, size, "%.*s", (int)(end - p - 2), p + 2);
                        return 1;
                }
        }
        return 0;
}

/* ${name?} leaves out a query parameter; elsewhere it means nothing. */
static int check_optional_vars(const struct fetch_source *src, const char *file,
                               const char *text, char **errs)
{
        const char *key;
        json_t *v;
        char name[128];
        char path[256];
        int bad = 0;

        if (optional_var(src->req_path, name, sizeof(name))) {
                sl_config_problem(errs, file, text, "request.path",
                                  "${%s} leaves out a query parameter; it "
                                  "is only used in request.query",
                                  name);
                bad++;
        }
        if (optional_var(json_string_value(src->body), name, sizeof(name))) {
                sl_config_problem(errs, file, text, "request.body",
                                  "${%s} is only used in request.query", name);
                bad++;
        }
        json_object_foreach(src->headers, key, v)
        {
                if (!optional_var(json_string_value(v), name, sizeof(name)))
                        continue;
                snprintf(path, sizeof(path), "request.headers.%s", key);
                sl_config_problem(errs, file, text, path,
                                  "${%s} is only used in request.query", name);
                bad++;
        }
        return bad;
}

/* soap, once format is xml. */
static int check_soap(const struct fetch_source *src, const char *file,
                      const char *text, char **errs)
{
        json_t *soap = json_object_get(src->root, "soap");
        json_t *req = json_object_get(src->root, "request");
        const char *v = str_get(soap, "version", "1.1");
        const char *method = str_get(req, "method", "POST");
        int bad = 0;

        if (strcmp(v, "1.1") != 0 && strcmp(v, "1.2") != 0) {
                sl_config_problem(errs, file, text, "soap.version",
                                  "must be \"1.1\" or \"1.2\", got \"%s\"", v);
                bad++;
        }
        if (strcmp(method, "POST") != 0 || src->body) {
                sl_config_problem(errs, file, text, "request",
                                  "a SOAP source POSTs soap.envelope: no "
                                  "request.body, and method POST if set");
                bad++;
        }
        if (src->paging != FETCH_PAGING_NONE &&
            src->paging != FETCH_PAGING_CURSOR) {
                sl_config_problem(errs, file, text, "paging.style",
                                  "with soap: none, or cursor (the token "
                                  "at xml.next goes into "
                                  "soap.next_envelope as ${next})");
                bad++;
        }
        if (src->paging == FETCH_PAGING_CURSOR && !src->xml_next) {
                sl_config_problem(errs, file, text, "xml.next",
                                  "paging style cursor with soap needs "
                                  "xml.next, the element holding the next "
                                  "page's token");
                bad++;
        }
        if (src->paging != FETCH_PAGING_CURSOR && src->xml_next) {
                sl_config_problem(errs, file, text, "xml.next",
                                  "with soap, only used with paging style "
                                  "cursor");
                bad++;
        }
        if (src->paging == FETCH_PAGING_CURSOR && src->page_param) {
                sl_config_problem(errs, file, text, "paging.param",
                                  "with soap the token goes into "
                                  "soap.next_envelope as ${next}, not into "
                                  "a query parameter");
                bad++;
        }
        if (src->paging == FETCH_PAGING_CURSOR &&
            !strstr(src->soap_next_envelope, "${next}")) {
                sl_config_problem(errs, file, text,
                                  json_object_get(soap, "next_envelope")
                                      ? "soap.next_envelope"
                                      : "soap.envelope",
                                  "paging style cursor: the envelope of "
                                  "later pages must hold ${next}, else "
                                  "every page asks for the first");
                bad++;
        }
        if (src->paging != FETCH_PAGING_CURSOR &&
            json_object_get(soap, "next_envelope")) {
                sl_config_problem(errs, file, text, "soap.next_envelope",
                                  "only used with paging style cursor");
                bad++;
        }
        for (size_t i = 0;
             i < json_array_size(json_object_get(soap, "retry_faults")); i++) {
                json_t *f =
                    json_array_get(json_object_get(soap, "retry_faults"), i);
                char path[64];
                if (json_is_string(f) && *json_string_value(f) &&
                    !strchr(json_string_value(f), ':'))
                        continue;
                snprintf(path, sizeof(path), "soap.retry_faults[%zu]", i);
                sl_config_problem(errs, file, text, path,
                                  "expected a fault code's local name "
                                  "(Server, not soapenv:Server)");
                bad++;
        }
        return bad;
}

/* format and xml. */
static int check_xml(const struct fetch_source *src, const char *file,
                     const char *text, char **errs)
{
        json_t *xml = json_object_get(src->root, "xml");
        const char *fmt = str_get(src->root, "format", "json");
        const char *paths[2][2] = {{"xml.records", src->xml_records},
                                   {"xml.next", src->xml_next}};
        char err[256];
        int bad = 0;

        if (strcmp(fmt, "json") != 0 && strcmp(fmt, "xml") != 0) {
                sl_config_problem(errs, file, text, "format",
                                  "must be json or xml, got \"%s\"", fmt);
                return 1;
        }
        if (!src->xml && src->soap) {
                sl_config_problem(errs, file, text, "soap",
                                  "only used with \"format\": \"xml\"");
                return 1;
        }
        if (!src->xml) {
                if (!xml)
                        return 0;
                sl_config_problem(errs, file, text, "xml",
                                  "only used with \"format\": \"xml\"");
                return 1;
        }
        if (!xml) {
                sl_config_problem(errs, file, text, "format",
                                  "format xml needs an \"xml\" object");
                return 1;
        }
        for (int i = 0; i < 2; i++) {
                if (!paths[i][1] ||
                    fetch_xml_path_check(paths[i][1], err, sizeof(err)) == 0)
                        continue;
                sl_config_problem(errs, file, text, paths[i][0], "%s", err);
                bad++;
        }
        for (size_t i = 0; i < json_array_size(json_object_get(xml, "arrays"));
             i++) {
                json_t *v = json_array_get(json_object_get(xml, "arrays"), i);
                char path[64];
                if (json_is_string(v) && *json_string_value(v))
                        continue;
                snprintf(path, sizeof(path), "xml.arrays[%zu]", i);
                sl_config_problem(errs, file, text, path,
                                  "expected an element name");
                bad++;
        }
        if (strcmp(src->records, "$.records") != 0) {
                sl_config_problem(errs, file, text, "records",
                                  "with format xml the records are at "
                                  "\"$.records\" of the converted page, "
                                  "got \"%s\"",
                                  src->records);
                bad++;
        }
        if (src->soap)
                bad += check_soap(src, file, text, errs);
        else if (src->paging != FETCH_PAGING_NONE &&
                 src->paging != FETCH_PAGING_PAGE &&
                 src->paging != FETCH_PAGING_OFFSET &&
                 src->paging != FETCH_PAGING_NEXT_URL) {
                sl_config_problem(errs, file, text, "paging.style",
                                  "with format xml: none, offset, page or "
                                  "next_url");
                bad++;
        }
        if (src->total_path || src->pages_path) {
                sl_config_problem(errs, file, text, "paging",
                                  "with format xml, a converted page holds "
                                  "only records and next: no total or "
                                  "total_pages");
                bad++;
        }
        if (!src->soap &&
            (src->paging == FETCH_PAGING_NEXT_URL) != (src->xml_next != NULL)) {
                sl_config_problem(errs, file, text, "xml.next", "%s",
                                  src->xml_next ? "only used with paging style "
                                                  "next_url"
                                                : "paging style next_url needs "
                                                  "xml.next");
                bad++;
        }
        if ((src->paging == FETCH_PAGING_NEXT_URL ||
             (src->soap && src->paging == FETCH_PAGING_CURSOR)) &&
            src->next_path && strcmp(src->next_path, "$.next") != 0) {
                sl_config_problem(errs, file, text, "paging.next",
                                  "with format xml the next URL or token "
                                  "is at \"$.next\" of the converted "
                                  "page");
                bad++;
        }
        return bad;
}

/* Checks of meaning, once the shapes are right. */
static int check_semantics(struct fetch_source *src, const char *file,
                           const char *text, char **errs)
{
        json_t *root = src->root;
        json_t *req = json_object_get(root, "request");
        json_t *auth = json_object_get(root, "auth");
        json_t *paging = json_object_get(root, "paging");
        json_t *inc = json_object_get(root, "incremental");
        json_t *retry = json_object_get(root, "retry");
        const char *s;
        int bad = 0;
        int k;

        if (!name_ok(src->name)) {
                sl_config_problem(errs, file, text, "name",
                                  "must match [a-z0-9_]+, got \"%s\"",
                                  src->name);
                bad++;
        }
        if (!sl_str_has_prefix(src->base_url, "http://") &&
            !sl_str_has_prefix(src->base_url, "https://")) {
                sl_config_problem(errs, file, text, "base_url",
                                  "must start with http:// or https://");
                bad++;
        }
        if (strcmp(src->method, "GET") != 0 &&
            strcmp(src->method, "POST") != 0) {
                sl_config_problem(errs, file, text, "request.method",
                                  "must be GET or POST, got \"%s\"",
                                  src->method);
                bad++;
        }
        for (int i = 0; i < 2; i++) {
                json_t *obj = json_object_get(req, i ? "headers" : "query");
                const char *key;
                json_t *v;
                json_object_foreach(obj, key, v)
                {
                        char path[256];
                        if (json_is_string(v))
                                continue;
                        snprintf(path, sizeof(path), "request.%s.%s",
                                 i ? "headers" : "query", key);
                        sl_config_problem(errs, file, text, path,
                                          "expected string");
                        bad++;
                }
        }
        bad += check_path(root, "records", "", file, text, errs);
        if (auth) {
                s = str_get(auth, "type", "");
                k = lookup(auth_names, 5, s);
                if (k <= 0) {
                        sl_config_problem(
                            errs, file, text, "auth.type",
                            "must be header, query, bearer or basic, got "
                            "\"%s\"",
                            s);
                        bad++;
                } else {
                        src->auth = (enum fetch_auth)k;
                }
                if ((src->auth == FETCH_AUTH_HEADER ||
                     src->auth == FETCH_AUTH_QUERY) &&
                    !src->auth_name) {
                        sl_config_problem(errs, file, text, "auth",
                                          "type %s needs \"name\"", s);
                        bad++;
                }
                if (k > 0 && !src->auth_env) {
                        sl_config_problem(errs, file, text, "auth",
                                          "needs \"env\", the variable that "
                                          "holds the secret");
                        bad++;
                }
                if (src->auth == FETCH_AUTH_BASIC && !src->auth_user_env) {
                        sl_config_problem(errs, file, text, "auth",
                                          "type basic needs \"username_env\"");
                        bad++;
                }
        }
        if (paging) {
                s = str_get(paging, "style", "");
                k = lookup(paging_names, 7, s);
                if (k < 0) {
                        sl_config_problem(errs, file, text, "paging.style",
                                          "must be one of none, offset, page, "
                                          "cursor, next_url, link, export; "
                                          "got \"%s\"",
                                          s);
                        bad++;
                } else {
                        src->paging = (enum fetch_paging)k;
                }
                bad += check_path(paging, "total", "paging", file, text, errs);
                bad += check_path(paging, "total_pages", "paging", file, text,
                                  errs);
                bad += check_path(paging, "next", "paging", file, text, errs);
                bad += check_positive(paging, "size", "paging", 1, 1000000,
                                      file, text, errs);
                bad += check_positive(paging, "max_pages", "paging", 1,
                                      100000000L, file, text, errs);
        }
        switch (src->paging) {
        case FETCH_PAGING_OFFSET:
        case FETCH_PAGING_PAGE:
        case FETCH_PAGING_CURSOR:
                if (!src->page_param && !src->soap) {
                        sl_config_problem(errs, file, text, "paging",
                                          "style %s needs \"param\"",
                                          paging_names[src->paging]);
                        bad++;
                }
                break;
        default:
                break;
        }
        if ((src->paging == FETCH_PAGING_CURSOR ||
             src->paging == FETCH_PAGING_NEXT_URL) &&
            !src->next_path) {
                sl_config_problem(errs, file, text, "paging",
                                  "style %s needs \"next\"",
                                  paging_names[src->paging]);
                bad++;
        }
        bad += check_resend(src, file, text, errs);
        for (int i = 0; i < 2; i++) {
                /* sent twice, a server reads one of the two: which one
                 * decides whether paging moves at all */
                const char *name = i ? src->size_param : src->page_param;
                char path[256];
                if (!name || !json_object_get(src->query, name) ||
                    (i == 1 && !src->page_size) ||
                    (i == 0 && src->paging != FETCH_PAGING_OFFSET &&
                     src->paging != FETCH_PAGING_PAGE &&
                     src->paging != FETCH_PAGING_CURSOR))
                        continue;
                snprintf(path, sizeof(path), "request.query.%s", name);
                sl_config_problem(errs, file, text, path,
                                  "is paging.%s too: the paging sends it",
                                  i ? "size_param" : "param");
                bad++;
        }
        bad += check_optional_vars(src, file, text, errs);
        if (src->paging == FETCH_PAGING_OFFSET && !src->total_path &&
            !src->page_size) {
                sl_config_problem(errs, file, text, "paging",
                                  "style offset needs \"total\" or \"size\"");
                bad++;
        }
        if (src->paging == FETCH_PAGING_EXPORT &&
            !json_object_get(root, "export")) {
                sl_config_problem(errs, file, text, "paging.style",
                                  "style export needs an \"export\" object");
                bad++;
        }
        if (src->paging != FETCH_PAGING_EXPORT &&
            json_object_get(root, "export")) {
                sl_config_problem(errs, file, text, "export",
                                  "only used with paging style export");
                bad++;
        }
        if (retry) {
                json_t *arr = json_object_get(retry, "throttle_status");
                size_t i;
                json_t *v;
                json_array_foreach(arr, i, v)
                {
                        char path[64];
                        if (json_is_integer(v) &&
                            json_integer_value(v) >= 400 &&
                            json_integer_value(v) <= 599 && i < 8)
                                continue;
                        snprintf(path, sizeof(path),
                                 "retry.throttle_status[%zu]", i);
                        sl_config_problem(errs, file, text, path,
                                          "expected an HTTP status 400..599 "
                                          "(at most 8)");
                        bad++;
                }
                bad += check_positive(retry, "max_attempts", "retry", 1, 100,
                                      file, text, errs);
        }
        if (src->rate_requests < 0 || src->rate_seconds < 0 ||
            (src->rate_requests > 0 && src->rate_seconds <= 0)) {
                sl_config_problem(errs, file, text, "rate_limit",
                                  "requests and per_seconds must be positive");
                bad++;
        }
        if (inc) {
                const char *st = str_get(inc, "start", NULL);
                if (st && strlen(st) < 10) {
                        sl_config_problem(errs, file, text, "incremental.start",
                                          "expected an RFC 3339 time, got "
                                          "\"%s\"",
                                          st);
                        bad++;
                }
                bad += check_positive(inc, "window_days", "incremental", 0,
                                      100000, file, text, errs);
        }
        bad += check_positive(root, "concurrency", "", 1, 64, file, text, errs);
        {
                json_t *lim = json_object_get(root, "limits");
                bad += check_positive(lim, "max_page_bytes", "limits", 1024,
                                      2147483647L, file, text, errs);
                bad += check_positive(lim, "max_records", "limits", 1,
                                      100000000L, file, text, errs);
                bad += check_positive(lim, "max_depth", "limits", 2, 1000, file,
                                      text, errs);
        }
        bad += check_xml(src, file, text, errs);
        bad += check_positive(root, "max_message_bytes", "", 1024, 100000000,
                              file, text, errs);
        bad += check_positive(root, "interval_seconds", "", 1, 31536000, file,
                              text, errs);
        return bad;
}

static void fill_soap(struct fetch_source *src)
{
        json_t *soap = json_object_get(src->root, "soap");
        json_t *faults = json_object_get(soap, "retry_faults");
        static const char *const def[] = {"Server", "Receiver"};

        src->soap = soap != NULL;
        if (!src->soap)
                return;
        src->method = "POST";
        src->soap_version =
            strcmp(str_get(soap, "version", "1.1"), "1.2") == 0 ? 12 : 11;
        src->soap_action = str_get(soap, "action", NULL);
        src->soap_envelope = str_get(soap, "envelope", "");
        src->soap_next_envelope =
            str_get(soap, "next_envelope", src->soap_envelope);
        src->soap_next_action = str_get(soap, "next_action", src->soap_action);
        if (!json_is_array(faults)) {
                src->soap_retry_faults = sl_calloc(3, sizeof(char *));
                for (size_t i = 0; i < 2; i++)
                        src->soap_retry_faults[src->soap_retry_faults_n++] =
                            def[i];
                return;
        }
        src->soap_retry_faults =
            sl_calloc(json_array_size(faults) + 1, sizeof(char *));
        for (size_t i = 0; i < json_array_size(faults); i++) {
                const char *f = json_string_value(json_array_get(faults, i));
                if (f)
                        src->soap_retry_faults[src->soap_retry_faults_n++] = f;
        }
}

static void fill_xml(struct fetch_source *src)
{
        json_t *xml = json_object_get(src->root, "xml");
        json_t *arrays = json_object_get(xml, "arrays");
        json_t *paging = json_object_get(src->root, "paging");

        src->xml = strcmp(str_get(src->root, "format", "json"), "xml") == 0;
        src->xml_records = str_get(xml, "records", NULL);
        src->xml_next = str_get(xml, "next", NULL);
        src->xml_arrays =
            sl_calloc(json_array_size(arrays) + 1, sizeof(*src->xml_arrays));
        for (size_t i = 0; i < json_array_size(arrays); i++) {
                const char *s = json_string_value(json_array_get(arrays, i));
                if (s)
                        src->xml_arrays[src->xml_arrays_n++] = s;
        }
        /* the converted page's next URL, unless paging.next says */
        if (src->xml && src->xml_next && !json_object_get(paging, "next"))
                src->next_path = "$.next";
        fill_soap(src);
}

static void fill(struct fetch_source *src)
{
        json_t *root = src->root;
        json_t *req = json_object_get(root, "request");
        json_t *auth = json_object_get(root, "auth");
        json_t *paging = json_object_get(root, "paging");
        json_t *exp = json_object_get(root, "export");
        json_t *rate = json_object_get(root, "rate_limit");
        json_t *retry = json_object_get(root, "retry");
        json_t *tmo = json_object_get(root, "timeouts");
        json_t *inc = json_object_get(root, "incremental");
        json_t *tls = json_object_get(root, "tls");
        json_t *lim = json_object_get(root, "limits");
        json_t *ts, *v;
        size_t i;

        src->name = str_get(root, "name", "");
        src->base_url = str_get(root, "base_url", "");
        src->method = str_get(req, "method", "GET");
        src->req_path = str_get(req, "path", "");
        src->query = json_object_get(req, "query");
        src->headers = json_object_get(req, "headers");
        src->body = json_object_get(req, "body");
        src->records = str_get(root, "records", "$");

        src->auth_name = str_get(auth, "name", NULL);
        src->auth_env = str_get(auth, "env", NULL);
        src->auth_user_env = str_get(auth, "username_env", NULL);
        src->auth_optional = json_is_true(json_object_get(auth, "optional"));

        src->page_param = str_get(paging, "param", NULL);
        src->size_param = str_get(paging, "size_param", NULL);
        src->page_size = int_get(paging, "size", 0);
        src->page_start = int_get(paging, "start", 0);
        src->total_path = str_get(paging, "total", NULL);
        src->pages_path = str_get(paging, "total_pages", NULL);
        src->next_path = str_get(paging, "next", NULL);
        src->resend_query = json_object_get(paging, "resend_query");
        src->max_pages = int_get(paging, "max_pages", 10000);

        src->export_create = str_get(exp, "create_path", NULL);
        src->export_body = json_object_get(exp, "body");
        src->export_status = str_get(exp, "status_path", NULL);
        src->export_chunk = str_get(exp, "chunk_path", NULL);
        src->export_poll_ms = int_get(exp, "poll_ms", 500);
        src->export_poll_max_ms = int_get(exp, "poll_max_ms", 30000);
        src->export_timeout_s = int_get(exp, "timeout_seconds", 3600);

        src->rate_requests = int_get(rate, "requests", 0);
        v = json_object_get(rate, "per_seconds");
        src->rate_seconds = json_is_number(v) ? json_number_value(v) : 0;
        src->max_attempts = int_get(retry, "max_attempts", 8);
        src->backoff_base_ms = int_get(retry, "base_ms", 500);
        src->backoff_max_ms = int_get(retry, "max_ms", 60000);
        ts = json_object_get(retry, "throttle_status");
        if (json_is_array(ts)) {
                src->throttle_n = 0;
                json_array_foreach(ts, i, v)
                {
                        if (json_is_integer(v) && src->throttle_n < 8)
                                src->throttle_status[src->throttle_n++] =
                                    (int)json_integer_value(v);
                }
        } else {
                src->throttle_status[0] = 429;
                src->throttle_status[1] = 503;
                src->throttle_n = 2;
        }
        src->connect_timeout_ms = int_get(tmo, "connect_ms", 10000);
        src->total_timeout_ms = int_get(tmo, "total_ms", 300000);
        src->low_speed_bytes = int_get(tmo, "low_speed_bytes", 100);
        src->low_speed_seconds = int_get(tmo, "low_speed_seconds", 30);
        src->concurrency = int_get(root, "concurrency", 4);
        v = json_object_get(tls, "verify");
        src->tls_verify = json_is_boolean(v) ? json_is_true(v) : 1;
        src->tls_ca_file = str_get(tls, "ca_file", NULL);
        src->max_page_bytes = int_get(lim, "max_page_bytes", 67108864L);
        src->max_records = int_get(lim, "max_records", 1000000L);
        src->max_depth = int_get(lim, "max_depth", 64);

        src->cursor_field = str_get(inc, "cursor", NULL);
        src->inc_start = str_get(inc, "start", NULL);
        src->window_days = int_get(inc, "window_days", 0);

        src->interval_s = int_get(root, "interval_seconds", 3600);
        src->max_message_bytes = int_get(root, "max_message_bytes", 1000000);
        src->progress_s = int_get(root, "progress_seconds", 10);
        fill_xml(src);
}

static const char *const bundled_sources[] = {
    "producers/sources", "sources", "/usr/share/sluice/sources", NULL};
static const struct sl_extends_kind source_kind = {"SLUICE_SOURCES_PATH",
                                                   bundled_sources};

json_t *fetch_source_effective(const char *file, json_t *root, char **errs)
{
        char errstr[1024];
        json_t *eff = sl_extends_resolve(&source_kind, file, root, errstr,
                                         sizeof(errstr));

        if (!eff) {
                size_t n = strlen(file);
                const char *msg = errstr;
                char *line;
                if (strncmp(errstr, file, n) == 0 && errstr[n] == ':' &&
                    errstr[n + 1] == ' ')
                        msg = errstr + n + 2;
                line = sl_asprintf("%s%s:1:1: %s\n", *errs ? *errs : "", file,
                                   msg);
                free(*errs);
                *errs = line;
        }
        return eff;
}

static struct fetch_source *from_root(const char *file, const char *text,
                                      json_t *root, char **errs);

struct fetch_source *fetch_source_loadb(const char *file, const char *text,
                                        size_t len, char **errs)
{
        char errstr[512];
        json_t *root, *eff;

        root = sl_config_loadb(file, text, len, errstr, sizeof(errstr));
        if (!root) {
                char *line = sl_asprintf("%s%s\n", *errs ? *errs : "", errstr);
                free(*errs);
                *errs = line;
                return NULL;
        }
        /* "extends": the bundled definition with this one laid over it
         * (sl_extends.h) */
        eff = fetch_source_effective(file, root, errs);
        json_decref(root);
        if (!eff)
                return NULL;
        root = eff;
        if (!json_is_object(root)) {
                sl_config_problem(errs, file, text, "",
                                  "a source definition is a JSON object");
                json_decref(root);
                return NULL;
        }
        return from_root(file, text, root, errs);
}

struct fetch_source *fetch_source_from(const char *file, const char *text,
                                       json_t *def, const char *name,
                                       char **errs)
{
        static const char *const keys[] = {"base_url", "request",  "auth",
                                           "retry",    "timeouts", "tls",
                                           "limits"};
        json_t *root = json_object();

        json_object_set_new(root, "name", json_string(name));
        json_object_set_new(root, "records", json_string("$"));
        for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
                json_t *v = json_object_get(def, keys[i]);
                if (v)
                        json_object_set(root, keys[i], v);
        }
        return from_root(file, text, root, errs);
}

/* Checks a parsed definition (taken over) and fills the source. */
static struct fetch_source *from_root(const char *file, const char *text,
                                      json_t *root, char **errs)
{
        struct fetch_source *src = NULL;
        int bad;

        bad = sl_opt_check(top_opts, root, file, text, "", errs);
        bad += check_section(request_opts, root, "request", file, text, errs);
        bad += check_section(auth_opts, root, "auth", file, text, errs);
        bad += check_section(paging_opts, root, "paging", file, text, errs);
        bad += check_section(export_opts, root, "export", file, text, errs);
        bad += check_section(xml_opts, root, "xml", file, text, errs);
        bad += check_section(soap_opts, root, "soap", file, text, errs);
        bad += check_section(rate_opts, root, "rate_limit", file, text, errs);
        bad += check_section(retry_opts, root, "retry", file, text, errs);
        bad += check_section(timeout_opts, root, "timeouts", file, text, errs);
        bad += check_section(tls_opts, root, "tls", file, text, errs);
        bad += check_section(limit_opts, root, "limits", file, text, errs);
        bad += check_section(inc_opts, root, "incremental", file, text, errs);
        src = sl_calloc(1, sizeof(*src));
        src->root = root;
        src->path = sl_strdup(file);
        fill(src);
        if (bad == 0)
                bad = check_semantics(src, file, text, errs);
        if (bad) {
                fetch_source_destroy(src);
                return NULL;
        }
        return src;
}

struct fetch_source *fetch_source_load(const char *path, char **errs)
{
        char errstr[512];
        size_t len = 0;
        char *text = sl_file_read(path, &len, errstr, sizeof(errstr));
        struct fetch_source *src;

        if (!text) {
                *errs = sl_asprintf("%s\n", errstr);
                return NULL;
        }
        src = fetch_source_loadb(path, text, len, errs);
        free(text);
        return src;
}

void fetch_source_destroy(struct fetch_source *src)
{
        if (!src)
                return;
        json_decref(src->root);
        free(src->path);
        free(src->xml_arrays);
        free(src->soap_retry_faults);
        free(src);
}
