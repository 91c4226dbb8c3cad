/* broker.c: `sluice broker`, an embedded Kafka-protocol cluster for
 * development and tests (librdkafka's mock cluster on loopback ports). It
 * keeps data in memory only; docs/embedded-broker.md says what it does not do.
 */
#include "roles.h"
#include "sl_kafka.h"
#include "sl_log.h"
#include "sl_util.h"

#include <errno.h>
#include <getopt.h>
#include <librdkafka/rdkafka_mock.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_TOPICS 256
#define MAX_INJECT 64 /* errors per line of the faults file */

static const char *const own_topics[] = {"sluice.fetch_lock", "sluice.state",
                                         "sluice.data_loss"};

static volatile sig_atomic_t want_down = 0;
static volatile sig_atomic_t want_up = 0;
static volatile sig_atomic_t want_faults = 0;

static void on_hup(int sig)
{
        (void)sig;
        want_faults = 1;
}

static void on_usr1(int sig)
{
        (void)sig;
        want_down = 1;
}

static void on_usr2(int sig)
{
        (void)sig;
        want_up = 1;
}

static void broker_usage(FILE *fp)
{
        fprintf(fp,
                "usage: sluice broker [options]\n\n"
                "Runs an embedded Kafka-protocol cluster (librdkafka's mock "
                "cluster) on loopback\nports, prints its bootstrap servers on "
                "the first line of stdout and serves\nuntil SIGTERM or "
                "SIGINT. Data is kept in memory only.\n\n"
                "options:\n"
                "  --brokers N           brokers in the cluster (default 3)\n"
                "  --partitions N        partitions of the topics created "
                "with --topic (default 4;\n"
                "                        topics clients auto-create get 4)\n"
                "  --topic NAME[:P]      create topic NAME with P (or "
                "--partitions) partitions;\n"
                "                        repeatable\n"
                "                        (sluice.fetch_lock, sluice.state "
                "and sluice.data_loss\n"
                "                        are created with 1 partition "
                "unless given)\n"
                "  --bootstrap-file F    also write the bootstrap servers to "
                "F (atomically)\n"
                "  --faults F            on SIGHUP, read request errors to "
                "inject from F, one\n"
                "                        line each: API COUNT ERROR[,ERROR..] "
                "(API a name such as\n"
                "                        Produce, Fetch, OffsetCommit or a "
                "number; ERROR a Kafka\n"
                "                        error name such as "
                "NOT_LEADER_FOR_PARTITION or a number);\n"
                "                        the next COUNT requests of API fail "
                "with those errors\n"
                "  -h, --help            this text\n\n"
                "signals: SIGUSR1 takes every broker down, SIGUSR2 brings "
                "them back, SIGHUP\nreads --faults (fault tests).\n");
}

static int write_bootstrap_file(const char *path, const char *servers)
{
        char *tmp = sl_asprintf("%s.tmp", path);
        FILE *fp = fopen(tmp, "w");
        int rc = -1;

        if (!fp) {
                fprintf(stderr, "sluice broker: could not write %s: %s\n", tmp,
                        strerror(errno));
                goto out;
        }
        /* fclose reports a write the buffer held back (a full disk) */
        if (fprintf(fp, "%s\n", servers) < 0 || fclose(fp) != 0) {
                fprintf(stderr, "sluice broker: could not write %s: %s\n", tmp,
                        strerror(errno));
                unlink(tmp);
                goto out;
        }
        if (rename(tmp, path) != 0) {
                fprintf(stderr, "sluice broker: could not write %s: %s\n", path,
                        strerror(errno));
                unlink(tmp);
                goto out;
        }
        rc = 0;
out:
        free(tmp);
        return rc;
}

/* Kafka protocol request types by name (the ones clients of a test send). */
static const struct {
        const char *name;
        int key;
} api_keys[] = {
    {"Produce", 0},          {"Fetch", 1},        {"ListOffsets", 2},
    {"Metadata", 3},         {"OffsetCommit", 8}, {"OffsetFetch", 9},
    {"FindCoordinator", 10}, {"JoinGroup", 11},   {"Heartbeat", 12},
    {"LeaveGroup", 13},      {"SyncGroup", 14},   {"ApiVersions", 18},
    {"InitProducerId", 22},
};

static int parse_api(const char *s, int *key)
{
        for (size_t i = 0; i < sizeof(api_keys) / sizeof(api_keys[0]); i++) {
                if (strcmp(s, api_keys[i].name) == 0) {
                        *key = api_keys[i].key;
                        return 0;
                }
        }
        return sl_parse_int(s, key) == 0 && *key >= 0 && *key < 100 ? 0 : -1;
}

static int parse_error(const char *s, rd_kafka_resp_err_t *err)
{
        const struct rd_kafka_err_desc *descs;
        size_t n;
        int code;

        rd_kafka_get_err_descs(&descs, &n);
        for (size_t i = 0; i < n; i++) {
                if (descs[i].name && strcmp(descs[i].name, s) == 0) {
                        *err = descs[i].code;
                        return 0;
                }
        }
        if (sl_parse_int(s, &code) < 0 || code <= 0 || code > 200)
                return -1;
        *err = (rd_kafka_resp_err_t)code;
        return 0;
}

/* Returns the next token of *p delimited by any of delims (terminated in
 * place; *p moves past it), or NULL at the end. */
static char *next_tok(char **p, const char *delims)
{
        char *tok = *p + strspn(*p, delims);
        size_t n = strcspn(tok, delims);

        if (*tok == '\0')
                return NULL;
        *p = tok + n;
        if (**p != '\0') {
                **p = '\0';
                (*p)++;
        }
        return tok;
}

/* Parses one "API COUNT ERROR[,ERROR...]" line into key, count and errs
 * (COUNT requests take the listed errors in turn, cycling). 0 or -1 with
 * errstr. */
static int parse_fault_line(char *line, int *key, int *count,
                            rd_kafka_resp_err_t *errs, char *errstr,
                            size_t errstr_size)
{
        char *api, *cnt, *list, *extra, *tok;
        int nerr = 0;

        api = next_tok(&line, " \t\r");
        cnt = api ? next_tok(&line, " \t\r") : NULL;
        list = cnt ? next_tok(&line, " \t\r") : NULL;
        extra = list ? next_tok(&line, " \t\r") : NULL;
        if (!list || extra) {
                snprintf(errstr, errstr_size,
                         "want \"API COUNT ERROR[,ERROR...]\"");
                return -1;
        }
        if (parse_api(api, key) < 0) {
                snprintf(errstr, errstr_size, "unknown API '%s'", api);
                return -1;
        }
        if (sl_parse_int(cnt, count) < 0 || *count < 1 || *count > MAX_INJECT) {
                snprintf(errstr, errstr_size, "COUNT wants 1..%d, got '%s'",
                         MAX_INJECT, cnt);
                return -1;
        }
        for (tok = next_tok(&list, ","); tok; tok = next_tok(&list, ",")) {
                if (nerr == MAX_INJECT || parse_error(tok, &errs[nerr]) < 0) {
                        snprintf(errstr, errstr_size,
                                 "unknown Kafka error '%s'", tok);
                        return -1;
                }
                nerr++;
        }
        for (int i = nerr; i < *count; i++)
                errs[i] = errs[i % nerr];
        return 0;
}

/* Reads the faults file and pushes its request errors onto the cluster.
 * Returns the number of lines applied, or -1 on the first bad line (the
 * lines before it stay applied). */
static int inject_faults(rd_kafka_mock_cluster_t *mcluster, const char *path)
{
        char errstr[256];
        char *text, *rest, *line;
        size_t len;
        int lineno = 0, applied = 0;

        text = sl_file_read(path, &len, errstr, sizeof(errstr));
        if (!text) {
                sl_err("event=faults_failed file=%s error=\"%s\"", path,
                       errstr);
                return -1;
        }
        for (rest = text; *rest != '\0';) {
                rd_kafka_resp_err_t errs[MAX_INJECT];
                int key, count;
                size_t n = strcspn(rest, "\n");

                line = rest;
                rest += n;
                if (*rest == '\n')
                        *rest++ = '\0';
                lineno++;
                while (*line == ' ' || *line == '\t')
                        line++;
                if (*line == '\0' || *line == '#')
                        continue;
                if (parse_fault_line(line, &key, &count, errs, errstr,
                                     sizeof(errstr)) < 0) {
                        sl_err("event=faults_failed file=%s line=%d "
                               "error=\"%s\"",
                               path, lineno, errstr);
                        free(text);
                        return -1;
                }
                rd_kafka_mock_push_request_errors_array(mcluster, (int16_t)key,
                                                        (size_t)count, errs);
                sl_notice("event=faults_injected api=%d count=%d error=%s", key,
                          count, rd_kafka_err2name(errs[0]));
                applied++;
        }
        free(text);
        return applied;
}

int broker_main(int argc, char **argv)
{
        static const struct option longopts[] = {
            {"brokers", required_argument, NULL, 'b'},
            {"partitions", required_argument, NULL, 'p'},
            {"topic", required_argument, NULL, 't'},
            {"bootstrap-file", required_argument, NULL, 'f'},
            {"faults", required_argument, NULL, 'F'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        int brokers = 3, partitions = 4, ntopics = 0, opt;
        const char *topics[MAX_TOPICS];
        const char *bootstrap_file = NULL;
        const char *faults_file = NULL;
        char errstr[512];
        rd_kafka_conf_t *conf = NULL;
        rd_kafka_t *rk = NULL;
        rd_kafka_mock_cluster_t *mcluster = NULL;
        const char *servers;
        int rc = SL_EXIT_FAILURE;

        sl_log_init("broker");
        optind = 1;
        while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
                switch (opt) {
                case 'b':
                        if (sl_parse_int(optarg, &brokers) < 0 || brokers < 1 ||
                            brokers > 16) {
                                fprintf(stderr,
                                        "sluice broker: --brokers wants 1..16, "
                                        "got \"%s\"\n",
                                        optarg);
                                return SL_EXIT_USAGE;
                        }
                        break;
                case 'p':
                        if (sl_parse_int(optarg, &partitions) < 0 ||
                            partitions < 1 || partitions > 1000) {
                                fprintf(stderr,
                                        "sluice broker: --partitions wants "
                                        "1..1000, got \"%s\"\n",
                                        optarg);
                                return SL_EXIT_USAGE;
                        }
                        break;
                case 't':
                        if (ntopics == MAX_TOPICS) {
                                fprintf(stderr,
                                        "sluice broker: too many --topic\n");
                                return SL_EXIT_USAGE;
                        }
                        topics[ntopics++] = optarg;
                        break;
                case 'f':
                        bootstrap_file = optarg;
                        break;
                case 'F':
                        faults_file = optarg;
                        break;
                case 'h':
                        broker_usage(stdout);
                        return SL_EXIT_OK;
                default:
                        sl_usage_error("broker",
                                       "unknown or incomplete option \"%s\"",
                                       argv[optind - 1]);
                        return SL_EXIT_USAGE;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "sluice broker: unexpected argument \"%s\"\n",
                        argv[optind]);
                return SL_EXIT_USAGE;
        }

        /* The mock cluster lives inside a client handle; this one is never
         * used to produce. */
        conf = rd_kafka_conf_new();
        if (rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr)) !=
            RD_KAFKA_CONF_OK)
                goto out;
        /* The cluster's accepted sockets take this handle's socket options.
         * TCP_NODELAY on them, as a real Kafka broker sets it: with Nagle on,
         * a response written while the one before is still unacknowledged
         * waits for the client's delayed ACK, 40 ms on Linux. */
        if (rd_kafka_conf_set(conf, "socket.nagle.disable", "true", errstr,
                              sizeof(errstr)) != RD_KAFKA_CONF_OK)
                goto out;
        if (getenv("SLUICE_BROKER_DEBUG") &&
            rd_kafka_conf_set(conf, "debug", getenv("SLUICE_BROKER_DEBUG"),
                              errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
                fprintf(stderr, "sluice broker: SLUICE_BROKER_DEBUG: %s\n",
                        errstr);
                goto out;
        }
        if (getenv("SLUICE_BROKER_DEBUG"))
                rd_kafka_conf_set(conf, "log_level", "7", errstr,
                                  sizeof(errstr));
        rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
        if (!rk) {
                fprintf(stderr, "sluice broker: %s\n", errstr);
                goto out;
        }
        conf = NULL; /* owned by rk */
        mcluster = rd_kafka_mock_cluster_new(rk, brokers);
        if (!mcluster) {
                fprintf(stderr, "sluice broker: could not start the mock "
                                "cluster\n");
                goto out;
        }
        for (int i = 0; i < ntopics; i++) {
                char name[256];
                int p = partitions;
                const char *colon = strrchr(topics[i], ':');
                rd_kafka_resp_err_t err;

                snprintf(name, sizeof(name), "%s", topics[i]);
                if (colon) {
                        name[colon - topics[i]] = '\0';
                        if (sl_parse_int(colon + 1, &p) < 0 || p < 1) {
                                fprintf(stderr,
                                        "sluice broker: bad partition count "
                                        "in --topic %s\n",
                                        topics[i]);
                                rc = SL_EXIT_USAGE;
                                goto out;
                        }
                }
                err = rd_kafka_mock_topic_create(mcluster, name, p, 1);
                if (err) {
                        fprintf(stderr,
                                "sluice broker: could not create topic %s: "
                                "%s\n",
                                name, rd_kafka_err2str(err));
                        goto out;
                }
        }
        /* sluice's own topics, unless given: one partition each, so that
         * the member holding sluice.fetch_lock owns a source's sync (a
         * stand-by fetcher gets nothing) and cursors stay in order. */
        for (size_t i = 0; i < sizeof(own_topics) / sizeof(own_topics[0]);
             i++) {
                int given = 0;
                for (int k = 0; k < ntopics; k++)
                        if (sl_str_has_prefix(topics[k], own_topics[i]) &&
                            (topics[k][strlen(own_topics[i])] == '\0' ||
                             topics[k][strlen(own_topics[i])] == ':'))
                                given = 1;
                if (!given)
                        rd_kafka_mock_topic_create(mcluster, own_topics[i], 1,
                                                   1);
        }
        servers = rd_kafka_mock_cluster_bootstraps(mcluster);
        printf("%s\n", servers);
        fflush(stdout);
        if (bootstrap_file && write_bootstrap_file(bootstrap_file, servers) < 0)
                goto out;
        sl_info("event=broker_started brokers=%d bootstrap=%s", brokers,
                servers);

        sl_signals_install();
        signal(SIGUSR1, on_usr1);
        signal(SIGUSR2, on_usr2);
        signal(SIGHUP, on_hup);
        while (!sl_stop) {
                if (want_faults) {
                        want_faults = 0;
                        if (!faults_file)
                                sl_warn("event=faults_ignored reason=\"no "
                                        "--faults file\"");
                        else
                                inject_faults(mcluster, faults_file);
                }
                if (want_down) {
                        want_down = 0;
                        for (int b = 1; b <= brokers; b++)
                                rd_kafka_mock_broker_set_down(mcluster, b);
                        sl_notice("event=brokers_down");
                }
                if (want_up) {
                        want_up = 0;
                        for (int b = 1; b <= brokers; b++)
                                rd_kafka_mock_broker_set_up(mcluster, b);
                        sl_notice("event=brokers_up");
                }
                sl_sleep_ms(100);
        }
        sl_info("event=broker_stopping");
        rc = SL_EXIT_OK;
out:
        if (mcluster)
                rd_kafka_mock_cluster_destroy(mcluster);
        if (rk)
                rd_kafka_destroy(rk);
        if (conf)
                rd_kafka_conf_destroy(conf);
        return rc;
}
