/* fetch_sync: one sync of a source: date windows from the cursor, every
 * paging style, publishing each page, and the cursor recorded in
 * sluice.state only after the window's pages were delivered. */
#ifndef FETCH_SYNC_H
#define FETCH_SYNC_H

#include "fetch_http.h"
#include "fetch_out.h"
#include "fetch_source.h"
#include "sl_jsonpath.h"

struct fetch_ctx {
        const struct fetch_source *src; /* borrowed */
        const char *base_url;           /* borrowed */
        struct fetch_http http;
        struct fetch_out out;
        struct fetch_lock *lock;          /* borrowed, or NULL */
        struct sl_jsonpath *cursor_path;  /* owned, or NULL */
        struct sl_jsonpath *records_path; /* owned */

        /* the current sync */
        char *cursor;   /* owned: the recorded cursor, or NULL */
        char *max_seen; /* owned: greatest record cursor of this window */
        struct fetch_vars vars;
        char win_start[40], win_end[40], now[40];
        long pages, records, total_pages;
        long dead_pages;  /* pages of this sync sent to dlq.fetch */
        long bad_records; /* records of good pages sent there */
        int64_t t0, last_progress, last_tty;
        int64_t cpu0; /* sl_cpu_ms at the sync's start */
        int tty;      /* stderr is a terminal: draw the live progress line */
};

/* 0, or -1 with errstr. */
int fetch_ctx_init(struct fetch_ctx *c, const struct fetch_source *src,
                   const char *base_url, char *errstr, size_t errstr_size);
void fetch_ctx_free(struct fetch_ctx *c);

/* Runs one sync. SL_OK, SL_ERR_RETRY (try again later) or SL_ERR_FATAL,
 * with errstr. */
int fetch_sync(struct fetch_ctx *c, char *errstr, size_t errstr_size);

/* Publishes the page in the file at path (`sluice fetch --page FILE`)
 * through the path every fetched page takes: the same checks (JSON, the
 * limits), chunking and headers (url=file://ABSOLUTE-PATH, page 0,
 * http_status 200), in a run of its own, waiting for delivery. The cursor
 * in sluice.state is not touched. SL_OK, SL_ERR_RETRY (delivery) or
 * SL_ERR_FATAL (an unreadable or bad page, nothing published), with
 * errstr. */
int fetch_page_file(struct fetch_ctx *c, const char *path, char *errstr,
                    size_t errstr_size);

/* Percent-encodes s for a query string. New; free with free(). */
char *fetch_url_encode(const char *s);

#endif
