/* main.c: the `sluice` binary: one subcommand per role. */
#include "roles.h"
#include "sl_http.h"
#include "sl_log.h"
#include "sl_version.h"

#include <stdio.h>
#include <unistd.h>
#include <string.h>

static const struct {
        const char *name;
        int (*fn)(int, char **);
        const char *help;
} commands[] = {
    {"fetch", fetch_main, "run a fetcher: HTTP API -> raw.<source>"},
    {"transform", transform_main, "run a transformer: raw.* -> mapped.<table>"},
    {"load", load_main, "run a loader: mapped.* -> PostgreSQL"},
    {"lookup", lookup_main,
     "run a lookup worker: observables -> API -> raw.<lookup>"},
    {"replay", replay_main, "move a consumer group's offsets"},
    {"check", check_main, "dry-run a map on a sample page"},
    {"lint", lint_main, "validate source definitions and maps"},
    {"broker", broker_main, "run an embedded development Kafka cluster"},
    {"status", status_main, "show sources, topics, lag and tables"},
    {"dlq", dlq_main, "list dead letters and re-publish fixed ones"},
    {"cursor", cursor_main, "show, set or reset a source's cursor"},
    {"health", health_main,
     "probe a worker's /healthz or /readyz (exit 0 "
     "when 200)"},
};

static void usage(FILE *fp)
{
        fprintf(fp, "usage: sluice <command> [options]\n"
                    "       sluice help <command> | --version\n\n"
                    "sluice moves security data from HTTP APIs into "
                    "PostgreSQL through Kafka.\n\ncommands:\n");
        for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
                fprintf(fp, "  %-10s %s\n", commands[i].name, commands[i].help);
        fprintf(fp,
                "\n`sluice <command> --help` describes each command's "
                "flags.\n\nenvironment:\n"
                "  SLUICE_BROKERS        Kafka bootstrap servers "
                "(default localhost:9092)\n"
                "  SLUICE_KAFKA_<PROP>   any librdkafka property, e.g. "
                "SLUICE_KAFKA_SECURITY_PROTOCOL\n"
                "  PGHOST, PGPORT, ...   PostgreSQL (libpq's variables), or "
                "DATABASE_URL\n"
                "  SLUICE_LOG_LEVEL      debug|info|notice|warning|err\n"
                "  SLUICE_LOG_FORMAT     kv (default) or json\n"
                "  SLUICE_HTTP_PORT      workers (fetch, transform, load) "
                "serve /metrics,\n"
                "                        /healthz, /readyz on this port "
                "(0 = off)\n"
                "  SLUICE_HTTP_BIND      their listen address (default "
                "127.0.0.1)\n"
                "\nexit codes: 0 ok, 1 runtime failure, 2 bad usage or "
                "configuration, 3 check mismatch,\n"
                "4 check mapped nothing (see each command's --help)\n");
}

static int is_worker(const char *name)
{
        return strcmp(name, "fetch") == 0 || strcmp(name, "transform") == 0 ||
               strcmp(name, "load") == 0 || strcmp(name, "lookup") == 0;
}

/* Workers take --http-port/--http-bind here, so every role serves the same
 * endpoints without parsing them itself. */
static int run(const char *name, int (*fn)(int, char **), int argc, char **argv)
{
        struct sl_http_opts ho;
        char errstr[256];
        int rc;

        if (!is_worker(name))
                return fn(argc, argv);
        if (sl_http_args(&ho, &argc, argv, errstr, sizeof(errstr)) < 0) {
                fprintf(stderr, "sluice %s: %s\n", name, errstr);
                return SL_EXIT_USAGE;
        }
        ho.need_db = strcmp(name, "load") == 0;
        if (ho.port > 0) {
                sl_log_init(name);
                if (sl_http_start(&ho, errstr, sizeof(errstr)) < 0) {
                        fprintf(stderr, "sluice %s: %s\n", name, errstr);
                        return SL_EXIT_FAILURE;
                }
        }
        rc = fn(argc, argv);
        sl_http_stop();
        return rc;
}

int main(int argc, char **argv)
{
        /* getopt's own messages would make a second line: every
         * subcommand says what was wrong in one line of its own */
        opterr = 0;
        if (argc < 2) {
                usage(stderr);
                return SL_EXIT_USAGE;
        }
        if (strcmp(argv[1], "--version") == 0 ||
            strcmp(argv[1], "version") == 0) {
                printf("sluice %s\n", sl_version());
                return SL_EXIT_OK;
        }
        if (strcmp(argv[1], "help") == 0 && argc > 2) {
                /* `sluice help fetch` is `sluice fetch --help` */
                static char help_flag[] = "--help";
                char *hargv[] = {argv[2], help_flag, NULL};
                for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]);
                     i++)
                        if (strcmp(argv[2], commands[i].name) == 0)
                                return commands[i].fn(2, hargv);
                fprintf(stderr,
                        "sluice: unknown command \"%s\" (see sluice --help)\n",
                        argv[2]);
                return SL_EXIT_USAGE;
        }
        if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
            strcmp(argv[1], "help") == 0) {
                usage(stdout);
                return SL_EXIT_OK;
        }
        {
                char errstr[256];
                /* a typo in a log variable would go unnoticed: refuse it */
                if (sl_log_env_check(errstr, sizeof(errstr)) < 0) {
                        fprintf(stderr, "sluice: %s\n", errstr);
                        return SL_EXIT_USAGE;
                }
        }
        for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
                if (strcmp(argv[1], commands[i].name) == 0)
                        return run(commands[i].name, commands[i].fn, argc - 1,
                                   argv + 1);
        fprintf(stderr, "sluice: unknown command \"%s\" (see sluice --help)\n",
                argv[1]);
        return SL_EXIT_USAGE;
}
