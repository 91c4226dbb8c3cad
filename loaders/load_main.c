/* load_main: `sluice load`, flags to options; the work is in
 * load_worker.c. */
#include "sl_arena.h"
#include "load_schema.h"
#include "load_worker.h"
#include "roles.h"
#include "sl_http.h"
#include "sl_kafka.h"
#include "sl_log.h"
#include "sl_util.h"

#include <getopt.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void load_usage(FILE *fp)
{
        fprintf(fp,
                "usage: sluice load [options]\n\n"
                "Consumes mapped.<table> envelopes and upserts them into "
                "PostgreSQL: COPY into a\nstaging table, one INSERT ... ON "
                "CONFLICT per batch, the consumed offsets in\n"
                "sluice.offsets in the same transaction, a run report in "
                "sluice.load_batches.\nRows PostgreSQL rejects go to the "
                "dead-letter topic; the rest commits.\n\n"
                "options:\n"
                "  --group G           consumer group (default sluice-load)\n"
                "  --schemas DIR       schema directory applied at start "
                "(default ./schemas,\n"
                "                      else $SLUICE_ROOT/schemas); again "
                "(or DIR:DIR) for\n"
                "                      your own tables/*.sql, applied "
                "after it, in order;\n"
                "                      tables/NNN_name.sql files are "
                "migrations, each applied\n"
                "                      once, in version order "
                "(sluice.schema_migrations)\n"
                "  --schemas-only      apply the schemas and migrations, "
                "then exit 0\n"
                "  --schema NAME       schema of the target tables (default "
                "public, or\n"
                "                      SLUICE_SCHEMA); tables are never "
                "looked for elsewhere\n"
                "  --topics REGEX      subscription (default ^mapped\\..*)\n"
                "  --dlq-topic T       dead letters (default dlq.load)\n"
                "  --batch-rows N      flush a table's batch at N messages "
                "(default 1000)\n"
                "  --batch-bytes N     ... or at N bytes (default 8388608)\n"
                "  --pending-bytes N   the open batches of all tables "
                "together: over N bytes\n"
                "                      the largest are flushed early "
                "(default 67108864)\n"
                "  --linger-ms N       ... or when its oldest message is N "
                "ms old (default 500)\n"
                "  --max-backoff-ms N  cap of the retry backoff when "
                "PostgreSQL fails\n"
                "                      (default 10000)\n"
                "  --connections N     PostgreSQL connections, each writing "
                "the batches of its\n"
                "                      share of the partitions (partition "
                "modulo N; default 2)\n"
                "  --kafka prop=value  any librdkafka property "
                "(repeatable)\n" SL_HTTP_USAGE
                "  -h, --help          this text\n\n"
                "environment: SLUICE_BROKERS, SLUICE_KAFKA_<PROP>, PGHOST, "
                "PGPORT, PGDATABASE,\nPGUSER, ... or DATABASE_URL.\n"
                "exit codes: 0 after SIGTERM/SIGINT (or --schemas-only "
                "applied), 1 database\nor brokers unreachable or a schema "
                "file failed, 2 bad usage.\n");
}

static int parse_pos(const char *flag, const char *arg, long *out)
{
        long long v;

        if (sl_parse_ll(arg, &v) < 0 || v < 1) {
                fprintf(stderr,
                        "sluice load: %s wants a positive number, got "
                        "\"%s\"\n",
                        flag, arg);
                return -1;
        }
        *out = (long)v;
        return 0;
}

int load_main(int argc, char **argv)
{
        static const struct option longopts[] = {
            {"group", required_argument, NULL, 'g'},
            {"schemas", required_argument, NULL, 's'},
            {"schema", required_argument, NULL, 'S'},
            {"schemas-only", no_argument, NULL, 'O'},
            {"topics", required_argument, NULL, 't'},
            {"dlq-topic", required_argument, NULL, 'd'},
            {"batch-rows", required_argument, NULL, 'r'},
            {"batch-bytes", required_argument, NULL, 'b'},
            {"pending-bytes", required_argument, NULL, 'p'},
            {"linger-ms", required_argument, NULL, 'l'},
            {"max-backoff-ms", required_argument, NULL, 'm'},
            {"connections", required_argument, NULL, 'c'},
            {"kafka", required_argument, NULL, 'k'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        struct load_opts o = {
            .group = "sluice-load",
            .schemas = NULL,
            .topics = "^mapped\\..*",
            .dlq_topic = "dlq.load",
            .batch_rows = 1000,
            .batch_bytes = 8L << 20,
            .pending_bytes = 64L << 20,
            .linger_ms = 500,
            .max_backoff_ms = 10000,
            .connections = 2,
        };
        const char *schema = getenv("SLUICE_SCHEMA");
        char errstr[512];
        int opt;

        sl_arena_install();
        sl_log_init("load");
        optind = 1;
        while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
                switch (opt) {
                case 'g':
                        o.group = optarg;
                        break;
                case 's': {
                        /* several: applied in the order given */
                        static char *joined;
                        char *prev = joined;
                        joined = prev ? sl_asprintf("%s:%s", prev, optarg)
                                      : sl_strdup(optarg);
                        free(prev);
                        o.schemas = joined;
                        break;
                }
                case 'S':
                        schema = optarg;
                        break;
                case 'O':
                        o.schemas_only = 1;
                        break;
                case 't':
                        o.topics = optarg;
                        break;
                case 'd':
                        o.dlq_topic = optarg;
                        break;
                case 'r':
                        if (parse_pos("--batch-rows", optarg, &o.batch_rows) <
                            0)
                                return SL_EXIT_USAGE;
                        break;
                case 'b':
                        if (parse_pos("--batch-bytes", optarg, &o.batch_bytes) <
                            0)
                                return SL_EXIT_USAGE;
                        break;
                case 'p':
                        if (parse_pos("--pending-bytes", optarg,
                                      &o.pending_bytes) < 0)
                                return SL_EXIT_USAGE;
                        break;
                case 'l':
                        if (parse_pos("--linger-ms", optarg, &o.linger_ms) < 0)
                                return SL_EXIT_USAGE;
                        break;
                case 'm':
                        if (parse_pos("--max-backoff-ms", optarg,
                                      &o.max_backoff_ms) < 0)
                                return SL_EXIT_USAGE;
                        break;
                case 'c':
                        if (parse_pos("--connections", optarg, &o.connections) <
                            0)
                                return SL_EXIT_USAGE;
                        if (o.connections > 64) {
                                fprintf(stderr,
                                        "sluice load: --connections wants at "
                                        "most 64, got %ld\n",
                                        o.connections);
                                return SL_EXIT_USAGE;
                        }
                        break;
                case 'k':
                        if (sl_kafka_prop_add(optarg, errstr, sizeof(errstr)) <
                            0) {
                                fprintf(stderr, "sluice load: %s\n", errstr);
                                return SL_EXIT_USAGE;
                        }
                        break;
                case 'h':
                        load_usage(stdout);
                        return SL_EXIT_OK;
                default:
                        sl_usage_error("load",
                                       "unknown or incomplete option "
                                       "\"%s\"",
                                       argv[optind - 1]);
                        return SL_EXIT_USAGE;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "sluice load: unexpected argument \"%s\"\n",
                        argv[optind]);
                return SL_EXIT_USAGE;
        }
        if (load_schema_target_set(schema, errstr, sizeof(errstr)) < 0) {
                fprintf(stderr, "sluice load: %s\n", errstr);
                return SL_EXIT_USAGE;
        }
        sl_signals_install();
        /* No fastbins: every envelope is a Jansson tree of a hundred small
         * blocks, freed a batch at a time, and glibc then spent a fifth of
         * the consume loop consolidating fastbins on its next large
         * request (perf; docs/performance.md). Freed blocks now coalesce
         * as they are freed, on the flush thread that frees them. */
        mallopt(M_MXFAST, 0);
        return load_worker_run(&o);
}
