/* main.c: the `sluice` binary: one subcommand per role. */
#include "roles.h"

#include <stdio.h>
#include <string.h>

static const struct {
        const char *name;
        int (*fn)(int, char **);
        const char *help;
} commands[] = {
    {"fetch", fetch_main, "run a fetcher: HTTP API -> raw.<source>"},
    {"transform", transform_main, "run a transformer: raw.* -> mapped.<table>"},
    {"load", load_main, "run a loader: mapped.* -> PostgreSQL"},
    {"replay", replay_main, "move a consumer group's offsets"},
    {"check", check_main, "dry-run a map on a sample page"},
    {"lint", lint_main, "validate source definitions and maps"},
    {"broker", broker_main, "run an embedded development Kafka cluster"},
    {"status", status_main, "show sources, topics, lag and tables"},
};

static void usage(FILE *fp)
{
        fprintf(fp, "usage: sluice <command> [options]\n\n"
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
                "\nexit codes: 0 ok, 1 runtime failure, 2 bad usage or "
                "configuration, 3 check mismatch\n");
}

int main(int argc, char **argv)
{
        if (argc < 2) {
                usage(stderr);
                return SL_EXIT_USAGE;
        }
        if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
            strcmp(argv[1], "help") == 0) {
                usage(stdout);
                return SL_EXIT_OK;
        }
        for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
                if (strcmp(argv[1], commands[i].name) == 0)
                        return commands[i].fn(argc - 1, argv + 1);
        fprintf(stderr, "sluice: unknown command \"%s\" (see sluice --help)\n",
                argv[1]);
        return SL_EXIT_USAGE;
}
