/* replay.c: `sluice replay`: moves a consumer group's committed offsets on
 * a topic to earliest, latest, an offset or a time. It never joins a group
 * to look at it: the members come from the Admin API (DescribeConsumerGroups;
 * a replay refuses while there are any, naming them), the committed offsets
 * from OffsetFetch, and the move is AlterConsumerGroupOffsets. Where the
 * cluster does not serve those group requests (the embedded broker), the
 * move alone falls back to the one way that works there: join the group,
 * wait for the assignment, commit explicit offsets, leave; an assignment
 * short of every partition means other members are alive, and it refuses.
 * A group with no committed offset on the topic and no loader rows is
 * unknown (a typo): an error unless --create. It also moves the loader's
 * offsets kept in sluice.offsets (the loader seeks to those, not to
 * Kafka's). */
#define _XOPEN_SOURCE 700 /* strptime */
#include "group_admin.h"
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
        int create; /* a group with no offsets yet may be set */
        int timeout_ms;
};

static void replay_usage(FILE *fp)
{
        fprintf(fp,
                "usage: sluice replay --group G --topic T --to WHERE "
                "[options]\n\n"
                "Moves consumer group G's committed offsets on topic T. The "
                "group must have no\nlive members (stop its workers first); "
                "replay refuses otherwise, naming them.\nIt never joins the "
                "group to look (Admin API); only where the cluster has no\n"
                "Admin API for groups (the embedded broker) does the move "
                "itself join it.\n\n"
                "  --to earliest|latest|OFFSET|TIME\n"
                "                     TIME is RFC 3339 (2024-01-02T03:04:05Z) "
                "or @unix-ms; it needs\n"
                "                     a real Kafka: the embedded broker "
                "cannot look up timestamps\n"
                "  --partition P      only partition P (default: all)\n"
                "  --dry-run          print current -> new per partition, "
                "change nothing\n"
                "                     (offsets print as numbers, or none "
                "where nothing is committed)\n"
                "  --create           allow a group with no committed offset "
                "on T (a new group);\n"
                "                     without it an unknown group is an "
                "error (exit 1)\n"
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

/* Rows of (group, topic) in sluice.offsets, the loader's own offsets; 0
 * where no PostgreSQL is configured or no loader ever ran there. */
static long pg_offset_rows(const struct replay_opts *o)
{
        const char *params[2] = {o->group, o->topic};
        char errstr[512];
        PGresult *res;
        PGconn *conn;
        long long n = 0;

        if (!getenv("DATABASE_URL") && !getenv("PGHOST") &&
            !getenv("PGDATABASE"))
                return 0;
        conn = sl_pg_connect(errstr, sizeof(errstr));
        if (!conn)
                return 0; /* move_pg_offsets says why, where it matters */
        res = PQexecParams(conn,
                           "SELECT count(*) FROM sluice.offsets WHERE "
                           "consumer_group = $1 AND topic = $2",
                           2, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
                sl_parse_ll(PQgetvalue(res, 0, 0), &n);
        PQclear(res);
        PQfinish(conn);
        return (long)n;
}

/* The fallback where the cluster has no Admin API for groups (the
 * embedded broker): join the group, wait for the assignment, commit, leave.
 * An assignment short of every partition means other members are alive.
 * 0, 2 (refused) or -1 with errstr. */
static int commit_by_joining(rd_kafka_t *rk, const struct replay_opts *o,
                             int nparts,
                             rd_kafka_topic_partition_list_t *target,
                             char *errstr, size_t errstr_size)
{
        rd_kafka_topic_partition_list_t *sub;
        rd_kafka_resp_err_t err;
        int64_t deadline;

        sub = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(sub, o->topic, RD_KAFKA_PARTITION_UA);
        err = rd_kafka_subscribe(rk, sub);
        rd_kafka_topic_partition_list_destroy(sub);
        if (err) {
                snprintf(errstr, errstr_size, "subscribe: %s",
                         rd_kafka_err2str(err));
                return -1;
        }
        deadline = sl_now_ms() + o->timeout_ms;
        while (!assigned_done && sl_now_ms() < deadline && !sl_stop) {
                rd_kafka_message_t *rkm = rd_kafka_consumer_poll(rk, 100);
                if (rkm)
                        rd_kafka_message_destroy(rkm);
        }
        if (!assigned_done) {
                snprintf(errstr, errstr_size,
                         "no assignment from group %s within %d ms", o->group,
                         o->timeout_ms);
                return -1;
        }
        if (assigned->cnt < nparts) {
                snprintf(errstr, errstr_size,
                         "group %s has other live members (%d of %d "
                         "partitions of %s assigned to this session): stop "
                         "its workers, then replay",
                         o->group, assigned->cnt, nparts, o->topic);
                return 2;
        }
        err = rd_kafka_commit(rk, target, 0);
        if (err) {
                snprintf(errstr, errstr_size, "commit: %s",
                         rd_kafka_err2str(err));
                return -1;
        }
        return 0;
}

/* Whether rk's cluster is librdkafka's mock cluster (`sluice broker`):
 * its cluster id says so. */
static int embedded_broker(rd_kafka_t *rk)
{
        char *cid = rd_kafka_clusterid(rk, 5000);
        int mock = cid && strncmp(cid, "mockCluster", 11) == 0;

        if (cid)
                rd_kafka_mem_free(rk, cid);
        return mock;
}

/* One line per partition of target: "topic[p] was -> new", with "moved"
 * once the move is done. Printed only after it is (or in a dry run): a
 * refused or failed move must not read as one that happened. */
static void print_moves(const struct replay_opts *o,
                        const rd_kafka_topic_partition_list_t *target,
                        const rd_kafka_topic_partition_list_t *committed)
{
        char was[32], now[32];

        for (int i = 0; i < target->cnt; i++) {
                const rd_kafka_topic_partition_t *tp = &target->elems[i];
                const rd_kafka_topic_partition_t *c =
                    rd_kafka_topic_partition_list_find(committed, o->topic,
                                                       tp->partition);

                printf("%s[%d] %s%s -> %s\n", o->topic, (int)tp->partition,
                       o->dry_run ? "" : "moved ",
                       group_admin_offset_str(c ? c->offset
                                                : RD_KAFKA_OFFSET_INVALID,
                                              was, sizeof(was)),
                       group_admin_offset_str(tp->offset, now, sizeof(now)));
        }
}

static int do_replay(const struct replay_opts *o)
{
        char errstr[512];
        rd_kafka_conf_t *conf = NULL;
        rd_kafka_t *rk = NULL;
        rd_kafka_topic_partition_list_t *target = NULL;
        rd_kafka_topic_partition_list_t *committed = NULL;
        const struct rd_kafka_metadata *md = NULL;
        struct group_info gi;
        enum group_admin_rc admin;
        int64_t when = 0;
        long long fixed = -1;
        int nparts = 0, known = 0, rc = SL_EXIT_FAILURE;
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
        /* A consumer handle that joins nothing unless the fallback below
         * subscribes: committed offsets (OffsetFetch), watermarks and the
         * Admin requests need no membership. Its session timeout is the
         * workers' (10 s): the embedded broker drops a joiner whose session
         * is shorter than its wait for departed members. */
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

        /* librdkafka 2.0.2's mock cluster (the embedded broker) serves
         * no DescribeConsumerGroups, and a refused one leaves the handle
         * stuck: its next OffsetFetch times out and rd_kafka_destroy never
         * returns. So the Admin API is only asked of a real Kafka; on the
         * embedded broker the move falls back to joining the group. */
        if (embedded_broker(rk)) {
                admin = GROUP_ADMIN_UNSUPPORTED;
                memset(&gi, 0, sizeof(gi));
                fprintf(stderr,
                        "sluice replay: note: the embedded broker has no "
                        "Admin API for consumer groups: %s\n",
                        o->dry_run ? "live members are not checked in a dry "
                                     "run"
                                   : "live members are checked by joining "
                                     "the group instead");
        } else {
                /* who is in the group, without joining it */
                admin = group_admin_describe(rk, o->group, 10000, &gi, errstr,
                                             sizeof(errstr));
                if (admin != GROUP_ADMIN_OK)
                        goto fail;
        }
        if (admin == GROUP_ADMIN_OK && gi.members > 0) {
                fprintf(stderr,
                        "sluice replay: group %s has %zu live member%s (%s, "
                        "state %s): %s\n",
                        o->group, gi.members, gi.members == 1 ? "" : "s",
                        gi.who, gi.state,
                        o->dry_run ? "a replay would be refused"
                                   : "stop its workers, then replay");
                if (!o->dry_run) {
                        rc = SL_EXIT_USAGE;
                        goto out;
                }
        }

        target = rd_kafka_topic_partition_list_new(nparts);
        committed = rd_kafka_topic_partition_list_new(nparts);
        for (int p = 0; p < nparts; p++) {
                if (o->partition >= 0 && p != o->partition)
                        continue;
                rd_kafka_topic_partition_list_add(target, o->topic, p);
        }
        /* every partition's, so a group known by others is known */
        for (int p = 0; p < nparts; p++)
                rd_kafka_topic_partition_list_add(committed, o->topic, p);
        err = rd_kafka_committed(rk, committed, 10000);
        if (err) {
                snprintf(errstr, sizeof(errstr), "committed offsets: %s",
                         rd_kafka_err2str(err));
                goto fail;
        }
        for (int i = 0; i < committed->cnt; i++)
                if (committed->elems[i].offset >= 0)
                        known = 1;
        if (!known && pg_offset_rows(o) > 0)
                known = 1;
        if (!known && !o->create) {
                fprintf(stderr,
                        "sluice replay: group %s has committed no offset on "
                        "%s%s and has no rows in sluice.offsets: an unknown "
                        "group (a typo?); --create sets offsets for a new "
                        "group\n",
                        o->group, o->topic,
                        admin == GROUP_ADMIN_OK && gi.dead
                            ? " (the cluster does not know it)"
                            : "");
                rc = SL_EXIT_FAILURE;
                goto out;
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
        }
        if (!o->dry_run) {
                int r = -1;
                if (admin == GROUP_ADMIN_OK) {
                        admin = group_admin_alter_offsets(rk, o->group, target,
                                                          10000, errstr,
                                                          sizeof(errstr));
                        if (admin == GROUP_ADMIN_FAILED)
                                goto fail;
                        if (admin == GROUP_ADMIN_UNSUPPORTED)
                                fprintf(stderr,
                                        "sluice replay: note: %s: committing "
                                        "by joining the group instead\n",
                                        errstr);
                        else
                                r = 0;
                }
                if (admin == GROUP_ADMIN_UNSUPPORTED)
                        r = commit_by_joining(rk, o, nparts, target, errstr,
                                              sizeof(errstr));
                if (r == 2) {
                        fprintf(stderr, "sluice replay: %s\n", errstr);
                        rc = SL_EXIT_USAGE;
                        goto out;
                }
                if (r < 0)
                        goto fail;
        }
        print_moves(o, target, committed);
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
            {"create", no_argument, NULL, 'c'},
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
                case 'c':
                        o.create = 1;
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
