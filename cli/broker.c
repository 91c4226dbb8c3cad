/* broker.c: `sluice broker`, an embedded Kafka-protocol cluster for
 * development and tests (librdkafka's mock cluster on loopback ports). It
 * keeps data in memory only; see DESIGN.md for what it does not do. */
#include "roles.h"
#include "sl_kafka.h"
#include "sl_log.h"
#include "sl_util.h"

#include <getopt.h>
#include <librdkafka/rdkafka_mock.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TOPICS 256

static const char *const own_topics[] = {"sluice.fetch_lock", "sluice.state"};

static volatile sig_atomic_t want_down = 0;
static volatile sig_atomic_t want_up = 0;

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
                "                        (sluice.fetch_lock and sluice.state "
                "are created with 1\n"
                "                        partition unless given)\n"
                "  --bootstrap-file F    also write the bootstrap servers to "
                "F (atomically)\n"
                "  -h, --help            this text\n\n"
                "signals: SIGUSR1 takes every broker down, SIGUSR2 brings "
                "them back (fault tests).\n");
}

static int write_bootstrap_file(const char *path, const char *servers)
{
        char *tmp = sl_asprintf("%s.tmp", path);
        FILE *fp = fopen(tmp, "w");
        int rc = -1;

        if (!fp) {
                fprintf(stderr, "sluice broker: could not write %s\n", tmp);
                goto out;
        }
        fprintf(fp, "%s\n", servers);
        if (fclose(fp) != 0 || rename(tmp, path) != 0) {
                fprintf(stderr, "sluice broker: could not write %s\n", path);
                goto out;
        }
        rc = 0;
out:
        free(tmp);
        return rc;
}

int broker_main(int argc, char **argv)
{
        static const struct option longopts[] = {
            {"brokers", required_argument, NULL, 'b'},
            {"partitions", required_argument, NULL, 'p'},
            {"topic", required_argument, NULL, 't'},
            {"bootstrap-file", required_argument, NULL, 'f'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        int brokers = 3, partitions = 4, ntopics = 0, opt;
        const char *topics[MAX_TOPICS];
        const char *bootstrap_file = NULL;
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
        while (!sl_stop) {
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
