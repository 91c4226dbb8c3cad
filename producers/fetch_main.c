/* fetch_main: `sluice fetch SOURCE.json`: wires the definition, the lock,
 * the state and the sync loop. The work is in fetch_*.c. */
#include "fetch_sync.h"
#include "roles.h"
#include "sl_http.h"
#include "sl_metrics.h"
#include "sl_kafka.h"
#include "sl_log.h"
#include "sl_util.h"

#include <getopt.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *fp)
{
        fprintf(fp,
                "usage: sluice fetch SOURCE.json [options]\n\n"
                "Runs the source definition: requests every page, publishes "
                "each to raw.<source>\n(split into chunks of whole records "
                "when too large), then records the cursor\nin sluice.state. "
                "A second fetcher of the same source stands by and takes "
                "over\nwhen the first dies.\n\n"
                "options:\n"
                "  --once               run one sync and exit (default: "
                "every interval_seconds)\n"
                "  --base-url URL       replace the definition's base_url "
                "(also SLUICE_BASE_URL)\n"
                "  --kafka PROP=VALUE   any librdkafka property; "
                "repeatable\n"
                "  --page FILE          publish FILE, a page saved or sent "
                "by hand, as the\n"
                "                       source's fetched pages are "
                "published (same checks,\n"
                "                       chunking and headers, url=file://"
                "...), then exit;\n"
                "                       no request, no credentials, the "
                "cursor untouched\n" SL_HTTP_USAGE
                "  --reference          print the source definition "
                "reference (Markdown)\n"
                "  -h, --help           this text\n\n"
                "On a terminal a live line shows percent, pages/s and ETA "
                "when the API tells\nthe total (SLUICE_PROGRESS=0 turns it "
                "off); otherwise event=progress lines\nevery "
                "progress_seconds.\n\n"
                "exit codes: 0 ok, 1 the sync failed, 2 bad arguments or "
                "definition\n");
}

static int lock_idle(void *opaque)
{
        struct fetch_lock *l = opaque;

        fetch_lock_poll(l, 0);
        return l->lost;
}

/* Waits until this process owns the source. 0, or -1 when stopped. */
static int acquire(struct fetch_lock *l, const char *source)
{
        int waited = 0;
        int64_t start = sl_now_ms();

        while (!sl_stop) {
                sl_http_tick(); /* standing by is alive */
                if (fetch_lock_poll(l, 200)) {
                        l->lost = 0;
                        sl_info("event=%s source=%s waited_ms=%lld",
                                waited ? "takeover" : "lock_acquired", source,
                                (long long)(sl_now_ms() - start));
                        return 0;
                }
                /* joining takes a moment; only then are we standing by */
                if (!waited && sl_now_ms() - start > 5000) {
                        sl_info("event=standby source=%s msg=\"another "
                                "fetcher owns this source\"",
                                source);
                        waited = 1;
                }
        }
        return -1;
}

static int load_cursor(struct fetch_ctx *c, char *errstr, size_t errstr_size)
{
        json_t *state = NULL;
        json_t *cur;

        if (fetch_state_read(c->src->name, &state, errstr, errstr_size) < 0)
                return -1;
        cur = json_object_get(state, "cursor");
        free(c->cursor);
        c->cursor =
            json_is_string(cur) ? sl_strdup(json_string_value(cur)) : NULL;
        json_decref(state);
        return 0;
}

int fetch_main(int argc, char **argv)
{
        static const struct option longopts[] = {
            {"once", no_argument, NULL, 'o'},
            {"base-url", required_argument, NULL, 'b'},
            {"kafka", required_argument, NULL, 'k'},
            {"reference", no_argument, NULL, 'r'},
            {"page", required_argument, NULL, 'p'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        struct fetch_source *src = NULL;
        struct fetch_ctx ctx;
        struct fetch_lock lock;
        const char *base_url = getenv("SLUICE_BASE_URL");
        const char *page_file = NULL;
        char *errs = NULL;
        char errstr[1024];
        int once = 0, opt, rc = SL_EXIT_FAILURE;
        int ctx_ready = 0, lock_ready = 0;

        /* Pages are megabytes each: glibc would map and unmap every body
         * and every chunk (page faults were a third of the fetcher's
         * time). Serve them from the heap and keep freed memory for the
         * next page; the heap stays at the largest burst of pages until
         * the sync ends (sl_mem_release below). */
        mallopt(M_MMAP_THRESHOLD, 64 << 20);
        mallopt(M_TRIM_THRESHOLD, 256 << 20);

        memset(&ctx, 0, sizeof(ctx));
        memset(&lock, 0, sizeof(lock));
        sl_log_init("fetch");
        optind = 1;
        while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
                switch (opt) {
                case 'o':
                        once = 1;
                        break;
                case 'b':
                        base_url = optarg;
                        break;
                case 'p':
                        page_file = optarg;
                        break;
                case 'k':
                        if (sl_kafka_prop_add(optarg, errstr, sizeof(errstr)) <
                            0) {
                                fprintf(stderr, "sluice fetch: %s\n", errstr);
                                return SL_EXIT_USAGE;
                        }
                        break;
                case 'r':
                        fetch_source_reference(stdout);
                        return SL_EXIT_OK;
                case 'h':
                        usage(stdout);
                        return SL_EXIT_OK;
                default:
                        sl_usage_error("fetch",
                                       "unknown or incomplete option "
                                       "\"%s\"",
                                       argv[optind - 1]);
                        return SL_EXIT_USAGE;
                }
        }
        if (optind != argc - 1) {
                sl_usage_error("fetch",
                               "expected one SOURCE.json, got %d "
                               "arguments",
                               argc - optind);
                return SL_EXIT_USAGE;
        }
        src = fetch_source_load(argv[optind], &errs);
        if (!src) {
                fprintf(stderr, "%s", errs ? errs : "bad definition\n");
                free(errs);
                return SL_EXIT_USAGE;
        }
        if (!base_url || !*base_url)
                base_url = src->base_url;
        if (page_file)
                src->auth = FETCH_AUTH_NONE; /* nothing is requested */
        sl_signals_install();
        curl_global_init(CURL_GLOBAL_DEFAULT);
        if (fetch_ctx_init(&ctx, src, base_url, errstr, sizeof(errstr)) < 0) {
                sl_err("event=init_failed source=%s msg=\"%s\"", src->name,
                       errstr);
                rc = SL_EXIT_USAGE;
                goto out;
        }
        ctx_ready = 1;
        if (page_file) {
                int res =
                    fetch_page_file(&ctx, page_file, errstr, sizeof(errstr));
                if (res != SL_OK) {
                        char q[1100];
                        sl_err("event=sync_failed source=%s run=%s "
                               "retryable=%d file=%s msg=%s",
                               src->name, ctx.out.run, res == SL_ERR_RETRY,
                               page_file, sl_log_quote(errstr, q, sizeof(q)));
                }
                rc = res == SL_OK ? SL_EXIT_OK : SL_EXIT_FAILURE;
                goto out;
        }
        if (fetch_lock_init(&lock, src->name, errstr, sizeof(errstr)) < 0) {
                sl_err("event=lock_failed source=%s msg=\"%s\"", src->name,
                       errstr);
                goto out;
        }
        lock_ready = 1;
        ctx.lock = &lock;
        ctx.http.idle = lock_idle;
        ctx.http.idle_opaque = &lock;
        sl_info("event=start source=%s base_url=%s once=%d", src->name,
                base_url, once);
        while (!sl_stop) {
                int64_t next;
                int res;

                if (!lock.owner || lock.lost) {
                        if (acquire(&lock, src->name) < 0)
                                break;
                }
                if (load_cursor(&ctx, errstr, sizeof(errstr)) < 0) {
                        sl_err("event=state_failed source=%s msg=\"%s\"",
                               src->name, errstr);
                        res = SL_ERR_RETRY;
                } else {
                        res = fetch_sync(&ctx, errstr, sizeof(errstr));
                }
                sl_metric_inc(SL_M_SYNC_RUNS,
                              SL_LV(src->name, res == SL_OK ? "ok"
                                               : res == SL_ERR_RETRY
                                                   ? "retry"
                                                   : "fatal"));
                if (res == SL_OK)
                        sl_metric_set(SL_M_SYNC_LAST_SUCCESS, SL_LV(src->name),
                                      (double)sl_wall_ms() / 1000.0);
                else
                        sl_metric_inc(SL_M_ERRORS, SL_LV("sync"));
                if (res != SL_OK) {
                        char q[1100];
                        sl_err("event=sync_failed source=%s run=%s "
                               "retryable=%d msg=%s",
                               src->name, ctx.out.run, res == SL_ERR_RETRY,
                               sl_log_quote(errstr, q, sizeof(q)));
                }
                if (once) {
                        rc = res == SL_OK ? SL_EXIT_OK : SL_EXIT_FAILURE;
                        if (lock.lost && res != SL_OK && !sl_stop)
                                continue; /* lost the lock: stand by again */
                        break;
                }
                /* the pages' memory, kept for reuse during the sync
                 * (M_TRIM_THRESHOLD above), goes back until the next */
                sl_mem_release();
                /* a failed sync is retried sooner than the schedule */
                next = sl_now_ms() +
                       (res == SL_OK ? src->interval_s * 1000 : 30000);
                while (!sl_stop && sl_now_ms() < next && !lock.lost) {
                        sl_http_tick();
                        fetch_lock_poll(&lock, 200);
                        /* the producer's events (its statistics every 5 s
                         * with --http-port) queue until served: between
                         * syncs, an hour of them */
                        rd_kafka_poll(ctx.out.rk, 0);
                }
                rc = SL_EXIT_OK;
        }
out:
        if (lock_ready)
                fetch_lock_free(&lock);
        if (ctx_ready)
                fetch_ctx_free(&ctx);
        fetch_source_destroy(src);
        curl_global_cleanup();
        return rc;
}

int fetch_source_lint(const char *path, FILE *err)
{
        char *errs = NULL;
        struct fetch_source *src = fetch_source_load(path, &errs);

        if (!src) {
                fputs(errs ? errs : "invalid\n", err);
                free(errs);
                return -1;
        }
        fetch_source_destroy(src);
        return 0;
}
