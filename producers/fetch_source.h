/* fetch_source: a source definition (producers/sources/) parsed and
 * validated against one option table per object, from which `sluice lint`,
 * `sluice fetch --reference` and docs/sources.md all come. */
#ifndef FETCH_SOURCE_H
#define FETCH_SOURCE_H

#include "sl_config.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

enum fetch_paging {
        FETCH_PAGING_NONE,     /* one document */
        FETCH_PAGING_OFFSET,   /* offset + limit, total in the body */
        FETCH_PAGING_PAGE,     /* page number, totalPages or stop on empty */
        FETCH_PAGING_CURSOR,   /* token from the body sent back as a param */
        FETCH_PAGING_NEXT_URL, /* absolute next URL in the body */
        FETCH_PAGING_LINK,     /* Link: <...>; rel="next" */
        FETCH_PAGING_EXPORT,   /* Tenable-style export job */
};

enum fetch_auth {
        FETCH_AUTH_NONE,
        FETCH_AUTH_HEADER,
        FETCH_AUTH_QUERY,
        FETCH_AUTH_BEARER,
        FETCH_AUTH_BASIC,
};

/* A parsed definition. Strings are borrowed from `root` (valid until
 * fetch_source_destroy). */
struct fetch_source {
        json_t *root; /* owned */
        char *path;   /* owned: the file it came from */
        const char *name;
        const char *base_url;
        const char *method;
        const char *req_path;
        json_t *query;       /* borrowed object of string templates, or NULL */
        json_t *headers;     /* borrowed object of string templates, or NULL */
        json_t *body;        /* borrowed: string or JSON value, or NULL */
        const char *records; /* JSON path of the records array */
        int xml;             /* "format": "xml": pages pass fetch_xml */
        const char *xml_records; /* element path of the records */
        const char *xml_next;    /* element path of the next URL, or NULL */
        const char **xml_arrays; /* owned array of names borrowed from
                                    root: always arrays */
        size_t xml_arrays_n;
        int soap;                /* a "soap" object: envelopes are POSTed */
        int soap_version;        /* 11 or 12 */
        const char *soap_action; /* or NULL: no action sent */
        const char *soap_envelope;
        const char *soap_next_envelope; /* later pages; holds ${next} */
        const char *soap_next_action;   /* or NULL: soap_action */
        const char **soap_retry_faults; /* owned array of names borrowed
                                           from root: faults retried */
        size_t soap_retry_faults_n;

        enum fetch_auth auth;
        const char *auth_name; /* header or query parameter */
        const char *auth_env;  /* the secret's variable */
        const char *auth_user_env;
        int auth_optional; /* no variable set: send no credentials */

        enum fetch_paging paging;
        const char *page_param; /* offset / page / cursor parameter */
        const char *size_param; /* page size parameter, or NULL */
        long page_size;         /* 0: not sent */
        long page_start;        /* first offset or page number */
        const char *total_path; /* records total (offset) */
        const char *pages_path; /* total pages (page) */
        const char *next_path;  /* cursor token or next URL */
        json_t *resend_query;   /* borrowed array of names set again on
                                   every followed URL, or NULL */
        long max_pages;         /* pages of one window, at most */

        const char *export_create; /* POST path */
        json_t *export_body;       /* borrowed, or NULL */
        const char *export_status; /* with ${export_uuid} */
        const char *export_chunk;  /* with ${export_uuid} and ${chunk} */
        long export_poll_ms;
        long export_poll_max_ms;
        long export_timeout_s;

        long rate_requests; /* 0: no limit */
        double rate_seconds;
        long max_attempts;
        long backoff_base_ms;
        long backoff_max_ms;
        int throttle_status[8];
        int throttle_n;

        long connect_timeout_ms;
        long total_timeout_ms;
        long low_speed_bytes;
        long low_speed_seconds;
        long concurrency;

        int tls_verify;          /* 0 only when the definition says so */
        const char *tls_ca_file; /* or NULL: the system's CAs */
        long max_page_bytes;     /* limits on one answer */
        long max_records;
        long max_depth;

        const char *cursor_field; /* record-relative path, or NULL */
        const char *inc_start;    /* initial cursor */
        long window_days;         /* 0: one window */

        long interval_s;
        long max_message_bytes;
        long progress_s;
};

/* Loads and validates path. New; free with fetch_source_destroy(). NULL
 * with every problem, one "FILE:LINE:COL: PATH: message" per line, in
 * *errs (new; free with free()). */
struct fetch_source *fetch_source_load(const char *path, char **errs);

/* Same for a text buffer; `file` names it in messages. */
struct fetch_source *fetch_source_loadb(const char *file, const char *text,
                                        size_t len, char **errs);

/* A source made of the HTTP keys of another kind of definition (a lookup,
 * lookups/): base_url, request, auth, retry, timeouts, tls and limits of
 * def (borrowed) are checked as a source's, under the same paths in text
 * (file names it), with records "$" and no paging. New; free with
 * fetch_source_destroy(). NULL with the problems in *errs. */
struct fetch_source *fetch_source_from(const char *file, const char *text,
                                       json_t *def, const char *name,
                                       char **errs);

void fetch_source_destroy(struct fetch_source *src);

/* The definition root (borrowed) read from file with its "extends" chain
 * resolved (sl_extends.h; bases are looked up in $SLUICE_SOURCES_PATH,
 * the file's directory, then the bundled sources): base URL, auth, limits,
 * windows of a bundled source changed without copying it. New reference;
 * NULL with a "FILE:1:1: message" line appended to *errs. */
json_t *fetch_source_effective(const char *file, json_t *root, char **errs);

/* Writes the reference of every option, as Markdown, to fp. */
void fetch_source_reference(FILE *fp);

#endif
