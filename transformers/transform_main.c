/* transform_main.c: `sluice transform MAP.json...`: wires flags, maps and
 * signals to the worker loop in transform_worker.c. */
#include "roles.h"
#include "sl_arena.h"
#include "sl_config.h"
#include "sl_http.h"
#include "sl_kafka.h"
#include "sl_log.h"
#include "sl_util.h"
#include "transform_worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *fp)
{
        fprintf(fp,
                "usage: sluice transform MAP.json|DIR... [--group G] "
                "[--batch N] [--stats-interval SEC]\n"
                "                        [--kafka prop=value]...\n\n"
                "A directory stands for the *.json maps in it. Consumes the "
                "raw.<source>\ntopics the maps read (a consumer group: run "
                "more processes to share the\nwork), produces rows to "
                "mapped.<table> and records that cannot be mapped to\n"
                "dlq.transform, and commits its input offsets only\n"
                "after every output is delivered. Stops cleanly on "
                "SIGTERM/SIGINT.\n\n"
                "  --group G             consumer group (default "
                "sluice-transform)\n"
                "  --batch N             pages per commit (default 100)\n"
                "  --stats-interval SEC  log counters every SEC seconds "
                "(default 30; 0 = at exit only)\n"
                "  --kafka prop=value    any librdkafka property\n\n"
                "environment: SLUICE_BROKERS, SLUICE_KAFKA_<PROP>, "
                "SLUICE_LOG_LEVEL\n"
                "exit codes: 0 clean stop, 1 runtime failure, 2 bad usage or "
                "map\n");
        fputs("\noperations endpoint:\n" SL_HTTP_USAGE, fp);
}

int transform_main(int argc, char **argv)
{
        struct transform_opts opts = {.group = "sluice-transform",
                                      .batch_max = 100,
                                      .stats_interval_ms = 30000};
        struct map **maps = NULL;
        size_t nmaps = 0;
        char **files = NULL;
        size_t nfiles = 0;
        char errstr[1024];
        int rc = SL_EXIT_USAGE;

        /* before any Jansson call: records are mapped in an arena each */
        sl_arena_install();
        sl_log_init("transform");
        for (int a = 1; a < argc; a++) {
                int v;
                if (strcmp(argv[a], "--help") == 0 ||
                    strcmp(argv[a], "-h") == 0) {
                        usage(stdout);
                        rc = SL_EXIT_OK;
                        goto out;
                } else if (strcmp(argv[a], "--group") == 0 && a + 1 < argc) {
                        opts.group = argv[++a];
                } else if (strcmp(argv[a], "--batch") == 0 && a + 1 < argc) {
                        if (sl_parse_int(argv[++a], &v) < 0 || v < 1) {
                                fprintf(stderr, "sluice transform: --batch "
                                                "wants a positive integer\n");
                                goto out;
                        }
                        opts.batch_max = v;
                } else if (strcmp(argv[a], "--stats-interval") == 0 &&
                           a + 1 < argc) {
                        if (sl_parse_int(argv[++a], &v) < 0 || v < 0) {
                                fprintf(stderr,
                                        "sluice transform: --stats-interval "
                                        "wants seconds\n");
                                goto out;
                        }
                        opts.stats_interval_ms = v * 1000;
                } else if (strcmp(argv[a], "--kafka") == 0 && a + 1 < argc) {
                        if (sl_kafka_prop_add(argv[++a], errstr,
                                              sizeof(errstr)) < 0) {
                                fprintf(stderr, "sluice transform: %s\n",
                                        errstr);
                                goto out;
                        }
                } else if (argv[a][0] == '-') {
                        sl_usage_error("transform", "unknown option %s",
                                       argv[a]);
                        goto out;
                } else if (sl_config_expand(argv[a], &files, &nfiles, errstr,
                                            sizeof(errstr)) < 0) {
                        fprintf(stderr, "sluice transform: %s\n", errstr);
                        goto out;
                }
        }
        /* a directory stands for its *.json maps */
        maps = sl_calloc(nfiles + 1, sizeof(*maps));
        for (size_t i = 0; i < nfiles; i++) {
                char *errs = NULL;
                struct map *m = map_load(files[i], &errs);
                if (!m) {
                        fputs(errs ? errs : "invalid map\n", stderr);
                        free(errs);
                        goto out;
                }
                maps[nmaps++] = m;
        }
        if (nmaps == 0) {
                sl_usage_error("transform", "expected at least one MAP.json");
                goto out;
        }
        sl_signals_install();
        if (transform_run(maps, nmaps, &opts, errstr, sizeof(errstr)) < 0) {
                char q[1100];
                sl_err("event=failed msg=%s",
                       sl_log_quote(errstr, q, sizeof(q)));
                rc = SL_EXIT_FAILURE;
                goto out;
        }
        sl_info("event=stopped");
        rc = SL_EXIT_OK;
out:
        for (size_t i = 0; i < nmaps; i++)
                map_destroy(maps[i]);
        free(maps);
        for (size_t i = 0; i < nfiles; i++)
                free(files[i]);
        free(files);
        return rc;
}
