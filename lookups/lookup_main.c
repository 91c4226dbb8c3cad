/* lookup_main.c: `sluice lookup LOOKUP.json`: wires flags, the definition,
 * the schema and signals to the worker loop in lookup_worker.c. */
#include "load_schema.h"
#include "lookup_def.h"
#include "lookup_worker.h"
#include "roles.h"
#include "sl_http.h"
#include "sl_kafka.h"
#include "sl_log.h"
#include "sl_metrics.h"
#include "sl_pg.h"
#include "sl_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *fp)
{
        fprintf(fp,
                "usage: sluice lookup LOOKUP.json [--group G] [--batch N] "
                "[--base-url URL]\n"
                "                     [--schemas DIR] [--kafka prop=value]..."
                "\n       sluice lookup --reference\n\n"
                "Consumes the definition's input topic (a consumer group: "
                "run more processes\nto share the work), takes the "
                "observables out of each message and answers\neach from "
                "sluice.lookup_cache or by asking the API, paced by the "
                "definition's\nrate limits and quota (kept in PostgreSQL, "
                "shared by every worker). Answers\ngo to raw.<lookup>, "
                "failures to dlq.lookup; input offsets are committed "
                "only\nafter every output is delivered. Stops cleanly on "
                "SIGTERM/SIGINT.\n\n"
                "  --group G          consumer group (default "
                "sluice-lookup-<name>)\n"
                "  --batch N          messages per commit (default 50)\n"
                "  --base-url URL     replace the definition's base_url "
                "(also SLUICE_BASE_URL)\n"
                "  --schemas DIR      schema directory applied at start "
                "(default ./schemas,\n"
                "                     then $SLUICE_ROOT/schemas)\n"
                "  --kafka prop=value any librdkafka property\n"
                "  --reference        print the definition reference "
                "(Markdown) and exit\n\n"
                "environment: SLUICE_BROKERS, SLUICE_KAFKA_<PROP>, PGHOST..."
                " or DATABASE_URL,\nthe secrets the definition names\n"
                "exit codes: 0 clean stop, 1 runtime failure, 2 bad usage or "
                "definition\n");
        fputs("\noperations endpoint:\n" SL_HTTP_USAGE, fp);
}

/* The lookup's tables exist before the first claim: the same schema
 * files the loader applies (idempotent, under its advisory lock). */
static int apply_schema(const char *flag, char *errstr, size_t errstr_size)
{
        char *dir = load_schema_dir(flag, errstr, errstr_size);
        PGconn *conn = NULL;
        int applied = 0, rc = -1;

        if (!dir)
                goto out;
        conn = sl_pg_connect(errstr, errstr_size);
        if (!conn)
                goto out;
        rc = load_schema_apply(conn, dir, &applied, errstr, errstr_size);
out:
        if (conn)
                PQfinish(conn);
        free(dir);
        return rc;
}

int lookup_main(int argc, char **argv)
{
        struct lookup_opts opts = {.batch_max = 50};
        struct lookup_def *d = NULL;
        const char *file = NULL, *schemas = NULL;
        char group[200];
        char errstr[1024];
        char *errs = NULL;
        int rc = SL_EXIT_USAGE;

        sl_log_init("lookup");
        opts.base_url = getenv("SLUICE_BASE_URL");
        for (int a = 1; a < argc; a++) {
                int v;
                if (strcmp(argv[a], "--help") == 0 ||
                    strcmp(argv[a], "-h") == 0) {
                        usage(stdout);
                        rc = SL_EXIT_OK;
                        goto out;
                } else if (strcmp(argv[a], "--reference") == 0) {
                        lookup_def_reference(stdout);
                        rc = SL_EXIT_OK;
                        goto out;
                } else if (strcmp(argv[a], "--group") == 0 && a + 1 < argc) {
                        opts.group = argv[++a];
                } else if (strcmp(argv[a], "--base-url") == 0 && a + 1 < argc) {
                        opts.base_url = argv[++a];
                } else if (strcmp(argv[a], "--schemas") == 0 && a + 1 < argc) {
                        schemas = argv[++a];
                } else if (strcmp(argv[a], "--batch") == 0 && a + 1 < argc) {
                        if (sl_parse_int(argv[++a], &v) < 0 || v < 1) {
                                sl_usage_error("lookup",
                                               "--batch wants a positive "
                                               "integer");
                                goto out;
                        }
                        opts.batch_max = v;
                } else if (strcmp(argv[a], "--kafka") == 0 && a + 1 < argc) {
                        if (sl_kafka_prop_add(argv[++a], errstr,
                                              sizeof(errstr)) < 0) {
                                fprintf(stderr, "sluice lookup: %s\n", errstr);
                                goto out;
                        }
                } else if (argv[a][0] == '-' || file) {
                        sl_usage_error("lookup", "unexpected argument %s",
                                       argv[a]);
                        goto out;
                } else {
                        file = argv[a];
                }
        }
        if (!file) {
                sl_usage_error("lookup", "expected LOOKUP.json");
                goto out;
        }
        d = lookup_def_load(file, &errs);
        if (!d) {
                fputs(errs ? errs : "invalid lookup definition\n", stderr);
                goto out;
        }
        if (opts.base_url && !sl_str_has_prefix(opts.base_url, "http://") &&
            !sl_str_has_prefix(opts.base_url, "https://")) {
                sl_usage_error("lookup",
                               "--base-url must start with http:// or "
                               "https://");
                goto out;
        }
        if (!opts.group) {
                snprintf(group, sizeof(group), "sluice-lookup-%s", d->name);
                opts.group = group;
        }
        sl_signals_install();
        sl_metrics_process_init();
        if (apply_schema(schemas, errstr, sizeof(errstr)) < 0 ||
            lookup_run(d, &opts, errstr, sizeof(errstr)) < 0) {
                char q[1100];
                sl_err("event=failed msg=%s",
                       sl_log_quote(errstr, q, sizeof(q)));
                rc = SL_EXIT_FAILURE;
                goto out;
        }
        rc = SL_EXIT_OK;
out:
        free(errs);
        lookup_def_destroy(d);
        return rc;
}
