/* replay.c: `sluice replay`: moves a consumer group's committed offsets on
 * a topic to earliest, latest, an offset or a time, the one way that works
 * on both real Kafka and the embedded broker: join the group, wait for the
 * assignment, commit explicit offsets, leave. If the assignment does not
 * cover every partition, other members are alive and it refuses. It also
 * moves the loader's offsets kept in sluice.offsets (the loader seeks to
 * those, not to Kafka's). */
#define _XOPEN_SOURCE 700 /* strptime */
#include "roles.h"
#include "sl_kafka.h"
#include "sl_log.h"
#include "sl_pg.h"
#include "sl_util.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct replay_opts {
        const char *group;
        const char *topic;
        const char *to;
        int partition; /* -1: all */
        int dry_run;
        int timeout_ms;
};

static void replay_usage(FILE *fp)
{
        fprintf(fp,
                "usage: sluice replay --group G --topic T --to WHERE "
                "[options]\n\n"
                "Moves consumer group G's committed offsets on topic T. The "
                "group must have no\nlive members (stop its workers first); "
                "replay refuses otherwise.\n\n"
                "  --to earliest|latest|OFFSET|TIME\n"
                "                     TIME is RFC 3339 (2024-01-02T03:04:05Z) "
                "or @unix-ms; it needs\n"
                "                     a real Kafka: the embedded broker "
                "cannot look up timestamps\n"
                "  --partition P      only partition P (default: all)\n"
                "  --dry-run          print current -> new per partition, "
                "change nothing\n"
                "  --timeout-ms N     how long to wait for the group "
                "assignment (default 60000)\n"
                "  --kafka prop=value any librdkafka property "
                "(repeatable)\n\n"
                "When PostgreSQL is configured (PG* variables or "
                "DATABASE_URL) and sluice.offsets\nholds rows for G and T "
                "(a loader group), those are moved too.\n"
                "exit codes: 0 moved, 1 failure, 2 bad usage or refused\n");
}

static int parse_time_ms(const char *s, int64_t *out)
{
        struct tm tm;
        const char *end;
        long long v;

        if (s[0] == '@')
                return sl_parse_ll(s + 1, &v) < 0 ? -1 : (*out = v, 0);
        memset(&tm, 0, sizeof(tm));
        end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
        if (!end)
                return -1;
        if (*end == '.')
                while (*++end >= '0' && *end <= '9')
                        ;
        if (*end != 'Z' && *end != '\0')
                return -1;
        *out = (int64_t)timegm(&tm) * 1000;
        return 0;
}

static rd_kafka_topic_partition_list_t *assigned;
static int assigned_done;

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
        (void)opaque;
        if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
                if (assigned)
                        rd_kafka_topic_partition_list_destroy(assigned);
                assigned = rd_kafka_topic_partition_list_copy(parts);
                assigned_done = 1;
                rd_kafka_assign(rk, parts);
        } else {
                rd_kafka_assign(rk, NULL);
        }
}

/* Moves sluice.offsets rows of (group, topic); prints what it did. */
static int move_pg_offsets(const struct replay_opts *o,
                           rd_kafka_topic_partition_list_t *target)
{
        char errstr[512];
        PGconn *conn;
        int moved = 0;

        if (!getenv("DATABASE_URL") && !getenv("PGHOST") &&
            !getenv("PGDATABASE"))
                return 0;
        conn = sl_pg_connect(errstr, sizeof(errstr));
        if (!conn) {
                fprintf(stderr, "sluice replay: %s\n", errstr);
                return -1;
        }
        for (int i = 0; i < target->cnt; i++) {
                const rd_kafka_topic_partition_t *tp = &target->elems[i];
                char part[16], off[32];
                const char *params[4];
                PGresult *res;

                snprintf(part, sizeof(part), "%d", (int)tp->partition);
                snprintf(off, sizeof(off), "%lld", (long long)tp->offset);
                params[0] = o->group;
                params[1] = o->topic;
                params[2] = part;
                params[3] = off;
                res = PQexecParams(
                    conn,
                    o->dry_run ? "SELECT next_offset FROM sluice.offsets "
                                 "WHERE consumer_group = $1 AND topic = $2 "
                                 "AND partition = $3::int AND $4 <> ''"
                               : "UPDATE sluice.offsets SET next_offset = "
                                 "$4::bigint WHERE consumer_group = $1 AND "
                                 "topic = $2 AND partition = $3::int "
                                 "RETURNING next_offset",
                    4, NULL, params, NULL, NULL, 0);
                if (PQresultStatus(res) != PGRES_TUPLES_OK) {
                        const char *state =
                            PQresultErrorField(res, PG_DIAG_SQLSTATE);
                        /* No bookkeeping schema: no loader ever ran here. */
                        if (state && strcmp(state, "42P01") == 0) {
                                PQclear(res);
                                break;
                        }
                        fprintf(stderr,
                                "sluice replay: could not move "
                                "sluice.offsets: %s",
                                PQresultErrorMessage(res));
                        PQclear(res);
                        PQfinish(conn);
                        return -1;
                }
                if (PQntuples(res) > 0) {
                        moved++;
                        printf("%s[%d] sluice.offsets %s%s -> %lld\n", o->topic,
                               (int)tp->partition, o->dry_run ? "" : "moved",
                               o->dry_run ? PQgetvalue(res, 0, 0) : "",
                               (long long)tp->offset);
                }
                PQclear(res);
        }
        PQfinish(conn);
        return moved;
}

static int do_replay(const struct replay_opts *o)
{
        char errstr[512];
        rd_kafka_conf_t *conf = NULL;
        rd_kafka_t *rk = NULL;
        rd_kafka_topic_partition_list_t *sub = NULL, *target = NULL;
        rd_kafka_topic_partition_list_t *committed = NULL;
        const struct rd_kafka_metadata *md = NULL;
        int64_t deadline, when = 0;
        long long fixed = -1;
        int nparts = 0, rc = SL_EXIT_FAILURE;
        rd_kafka_resp_err_t err;

        if (strcmp(o->to, "earliest") != 0 && strcmp(o->to, "latest") != 0 &&
            sl_parse_ll(o->to, &fixed) < 0 && parse_time_ms(o->to, &when) < 0) {
                fprintf(stderr,
                        "sluice replay: --to wants earliest, latest, an "
                        "offset or a time, got \"%s\"\n",
                        o->to);
                return SL_EXIT_USAGE;
        }
        conf = sl_kafka_conf_new("consumer", errstr, sizeof(errstr));
        if (!conf)
                goto fail;
        rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
        /* The session timeout is the consumers' default (10 s, the same as
         * the workers'): the embedded broker waits up to a departed
         * member's session less 1 s before it answers a join, and drops a
         * joiner whose own session is shorter than that wait. */
        rk = sl_kafka_consumer_new(conf, o->group, errstr, sizeof(errstr));
        conf = NULL; /* taken over */
        if (!rk)
                goto fail;
        if (sl_kafka_ping(rk, 10000, errstr, sizeof(errstr)) < 0)
                goto fail;
        /* Ask for every topic rather than this one: naming a topic in a
         * metadata request can create it, and replay must not. */
        err = rd_kafka_metadata(rk, 1, NULL, &md, 10000);
        if (err) {
                snprintf(errstr, sizeof(errstr), "metadata: %s",
                         rd_kafka_err2str(err));
                goto fail;
        }
        for (int i = 0; i < md->topic_cnt; i++)
                if (strcmp(md->topics[i].topic, o->topic) == 0 &&
                    !md->topics[i].err)
                        nparts = md->topics[i].partition_cnt;
        if (nparts == 0) {
                snprintf(errstr, sizeof(errstr), "topic %s not found on %s",
                         o->topic, sl_kafka_brokers());
                goto fail;
        }
        if (o->partition >= nparts) {
                snprintf(errstr, sizeof(errstr),
                         "topic %s has %d partitions, no partition %d",
                         o->topic, nparts, o->partition);
                rc = SL_EXIT_USAGE;
                goto fail;
        }

        sub = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(sub, o->topic, RD_KAFKA_PARTITION_UA);
        err = rd_kafka_subscribe(rk, sub);
        if (err) {
                snprintf(errstr, sizeof(errstr), "subscribe: %s",
                         rd_kafka_err2str(err));
                goto fail;
        }
        deadline = sl_now_ms() + o->timeout_ms;
        while (!assigned_done && sl_now_ms() < deadline && !sl_stop) {
                rd_kafka_message_t *rkm = rd_kafka_consumer_poll(rk, 100);
                if (rkm)
                        rd_kafka_message_destroy(rkm);
        }
        if (!assigned_done) {
                snprintf(errstr, sizeof(errstr),
                         "no assignment from group %s within %d ms", o->group,
                         o->timeout_ms);
                goto fail;
        }
        if (assigned->cnt < nparts) {
                fprintf(stderr,
                        "sluice replay: group %s has other live members "
                        "(%d of %d partitions of %s assigned to this "
                        "session): stop its workers, then replay\n",
                        o->group, assigned->cnt, nparts, o->topic);
                rc = SL_EXIT_USAGE;
                goto out;
        }

        target = rd_kafka_topic_partition_list_new(nparts);
        committed = rd_kafka_topic_partition_list_new(nparts);
        for (int p = 0; p < nparts; p++) {
                if (o->partition >= 0 && p != o->partition)
                        continue;
                rd_kafka_topic_partition_list_add(target, o->topic, p);
                rd_kafka_topic_partition_list_add(committed, o->topic, p);
        }
        err = rd_kafka_committed(rk, committed, 10000);
        if (err) {
                snprintf(errstr, sizeof(errstr), "committed offsets: %s",
                         rd_kafka_err2str(err));
                goto fail;
        }
        if (when) {
                for (int i = 0; i < target->cnt; i++)
                        target->elems[i].offset = when;
                err = rd_kafka_offsets_for_times(rk, target, 10000);
                if (err) {
                        snprintf(errstr, sizeof(errstr), "offsets for time: %s",
                                 rd_kafka_err2str(err));
                        goto fail;
                }
                for (int i = 0; i < target->cnt; i++) {
                        if (target->elems[i].offset < 0) {
                                snprintf(errstr, sizeof(errstr),
                                         "the broker could not look up "
                                         "offsets by time for %s[%d] (the "
                                         "embedded broker never can; use an "
                                         "offset or earliest)",
                                         o->topic,
                                         (int)target->elems[i].partition);
                                goto fail;
                        }
                }
        }
        for (int i = 0; i < target->cnt; i++) {
                rd_kafka_topic_partition_t *tp = &target->elems[i];
                int64_t lo = 0, hi = 0;
                err = rd_kafka_query_watermark_offsets(
                    rk, o->topic, tp->partition, &lo, &hi, 10000);
                if (err) {
                        snprintf(errstr, sizeof(errstr),
                                 "watermarks of %s[%d]: %s", o->topic,
                                 (int)tp->partition, rd_kafka_err2str(err));
                        goto fail;
                }
                if (strcmp(o->to, "earliest") == 0)
                        tp->offset = lo;
                else if (strcmp(o->to, "latest") == 0)
                        tp->offset = hi;
                else if (!when)
                        tp->offset = fixed;
                if (tp->offset < lo) {
                        fprintf(stderr,
                                "sluice replay: warning: %s[%d] offset %lld "
                                "is below the low watermark %lld (data lost "
                                "to retention): using %lld\n",
                                o->topic, (int)tp->partition,
                                (long long)tp->offset, (long long)lo,
                                (long long)lo);
                        tp->offset = lo;
                }
                if (tp->offset > hi)
                        tp->offset = hi;
                printf("%s[%d] %s%lld -> %lld\n", o->topic, (int)tp->partition,
                       o->dry_run ? "" : "moved ",
                       (long long)committed->elems[i].offset,
                       (long long)tp->offset);
        }
        if (!o->dry_run) {
                err = rd_kafka_commit(rk, target, 0);
                if (err) {
                        snprintf(errstr, sizeof(errstr), "commit: %s",
                                 rd_kafka_err2str(err));
                        goto fail;
                }
        }
        if (move_pg_offsets(o, target) < 0)
                goto out;
        if (o->dry_run)
                printf("dry run: nothing changed\n");
        rc = SL_EXIT_OK;
        goto out;
fail:
        fprintf(stderr, "sluice replay: %s\n", errstr);
out:
        if (md)
                rd_kafka_metadata_destroy(md);
        if (sub)
                rd_kafka_topic_partition_list_destroy(sub);
        if (target)
                rd_kafka_topic_partition_list_destroy(target);
        if (committed)
                rd_kafka_topic_partition_list_destroy(committed);
        if (rk) {
                rd_kafka_consumer_close(rk);
                rd_kafka_destroy(rk);
        }
        if (assigned) {
                rd_kafka_topic_partition_list_destroy(assigned);
                assigned = NULL;
        }
        if (conf)
                rd_kafka_conf_destroy(conf);
        return rc;
}

int replay_main(int argc, char **argv)
{
        static const struct option longopts[] = {
            {"group", required_argument, NULL, 'g'},
            {"topic", required_argument, NULL, 't'},
            {"to", required_argument, NULL, 'o'},
            {"partition", required_argument, NULL, 'p'},
            {"dry-run", no_argument, NULL, 'n'},
            {"timeout-ms", required_argument, NULL, 'w'},
            {"kafka", required_argument, NULL, 'X'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        struct replay_opts o = {.partition = -1, .timeout_ms = 60000};
        char errstr[256];
        int opt;

        sl_log_init("replay");
        if (!getenv("SLUICE_LOG_LEVEL"))
                sl_log_set_level(LOG_CRIT); /* it says what failed itself */
        optind = 1;
        while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
                switch (opt) {
                case 'g':
                        o.group = optarg;
                        break;
                case 't':
                        o.topic = optarg;
                        break;
                case 'o':
                        o.to = optarg;
                        break;
                case 'p':
                        if (sl_parse_int(optarg, &o.partition) < 0 ||
                            o.partition < 0) {
                                fprintf(stderr,
                                        "sluice replay: --partition wants a "
                                        "partition number, got \"%s\"\n",
                                        optarg);
                                return SL_EXIT_USAGE;
                        }
                        break;
                case 'n':
                        o.dry_run = 1;
                        break;
                case 'w':
                        if (sl_parse_int(optarg, &o.timeout_ms) < 0 ||
                            o.timeout_ms < 1) {
                                fprintf(stderr,
                                        "sluice replay: --timeout-ms wants "
                                        "milliseconds, got \"%s\"\n",
                                        optarg);
                                return SL_EXIT_USAGE;
                        }
                        break;
                case 'X':
                        if (sl_kafka_prop_add(optarg, errstr, sizeof(errstr)) <
                            0) {
                                fprintf(stderr, "sluice replay: %s\n", errstr);
                                return SL_EXIT_USAGE;
                        }
                        break;
                case 'h':
                        replay_usage(stdout);
                        return SL_EXIT_OK;
                default:
                        sl_usage_error("replay",
                                       "unknown or incomplete option \"%s\"",
                                       argv[optind - 1]);
                        return SL_EXIT_USAGE;
                }
        }
        if (!o.group || !o.topic || !o.to || optind < argc) {
                fprintf(stderr, "sluice replay: --group, --topic and --to are "
                                "required (see sluice replay --help)\n");
                return SL_EXIT_USAGE;
        }
        sl_signals_install();
        return do_replay(&o);
}
