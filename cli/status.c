/* status.c: `sluice status`: per source (last sync and cursor from
 * sluice.state), per topic and group (end offsets, committed offsets, lag),
 * per table (rows, run-report totals, last batch) and dead letters. A
 * readable table on a terminal, --json for scripts. Kafka and PostgreSQL
 * are each optional: what cannot be reached is reported, not fatal. */
#include "roles.h"
#include "sl_kafka.h"
#include "sl_log.h"
#include "sl_loss.h"
#include "sl_pg.h"
#include "sl_util.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STATUS_TIMEOUT_MS 10000

static void status_usage(FILE *fp)
{
        fprintf(fp,
                "usage: sluice status [--json] [--group-transform G] "
                "[--group-load G]\n\n"
                "Shows, per source, the last recorded sync (sluice.state); "
                "per topic, the end\noffsets and the lag of the transform "
                "(raw.*) and load (mapped.*) groups; per\ntable, its rows "
                "and run-report totals; and the dead-letter counts.\n\n"
                "  --json                one JSON document on stdout\n"
                "  --group-transform G   transformer group (default "
                "sluice-transform)\n"
                "  --group-load G        loader group (default sluice-load; "
                "its offsets are read\n"
                "                        from sluice.offsets when "
                "PostgreSQL is reachable)\n"
                "  --ack-loss            acknowledge the data losses listed "
                "(sluice.data_loss):\n"
                "                        they leave the list and the "
                "workers' /readyz\n"
                "  --kafka prop=value    any librdkafka property\n"
                "exit codes: 0 ok, 1 Kafka or PostgreSQL unreachable (what "
                "could be read\nis shown; stderr names the unreachable "
                "one), 2 bad usage\n");
}

/* Reads sluice.state from the beginning; the newest value per source. */
static json_t *read_sources(rd_kafka_t *rk, int nparts)
{
        json_t *by_source = json_object();
        rd_kafka_topic_partition_list_t *parts =
            rd_kafka_topic_partition_list_new(nparts);
        int64_t *hi = sl_calloc((size_t)nparts, sizeof(*hi));
        int remaining = 0;
        int64_t deadline = sl_now_ms() + STATUS_TIMEOUT_MS;

        for (int p = 0; p < nparts; p++) {
                int64_t lo = 0;
                if (rd_kafka_query_watermark_offsets(rk, "sluice.state", p, &lo,
                                                     &hi[p],
                                                     STATUS_TIMEOUT_MS) ||
                    hi[p] <= lo)
                        continue;
                rd_kafka_topic_partition_list_add(parts, "sluice.state", p)
                    ->offset = RD_KAFKA_OFFSET_BEGINNING;
                remaining++;
        }
        if (remaining && rd_kafka_assign(rk, parts) == 0) {
                while (remaining > 0 && sl_now_ms() < deadline) {
                        rd_kafka_message_t *rkm =
                            rd_kafka_consumer_poll(rk, 200);
                        json_t *v;
                        if (!rkm)
                                continue;
                        if (!rkm->err && rkm->len) {
                                v = json_loadb(rkm->payload, rkm->len, 0, NULL);
                                if (json_is_object(v) && rkm->key_len) {
                                        char *k =
                                            sl_strndup(rkm->key, rkm->key_len);
                                        json_object_set(by_source, k, v);
                                        free(k);
                                }
                                json_decref(v);
                                if (rkm->offset + 1 >= hi[rkm->partition])
                                        remaining--;
                        }
                        rd_kafka_message_destroy(rkm);
                }
                rd_kafka_assign(rk, NULL);
        }
        rd_kafka_topic_partition_list_destroy(parts);
        free(hi);
        return by_source;
}

/* Loader offsets from sluice.offsets: {"topic": {"partition": next}}. */
static json_t *pg_offsets(PGconn *conn, const char *group)
{
        json_t *out = json_object();
        const char *params[1] = {group};
        PGresult *res;

        if (!conn)
                return out;
        res = PQexecParams(conn,
                           "SELECT topic, partition, next_offset FROM "
                           "sluice.offsets WHERE consumer_group = $1",
                           1, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(res) == PGRES_TUPLES_OK) {
                for (int i = 0; i < PQntuples(res); i++) {
                        const char *t = PQgetvalue(res, i, 0);
                        json_t *m = json_object_get(out, t);
                        long long off = 0;
                        if (!m) {
                                m = json_object();
                                json_object_set_new(out, t, m);
                        }
                        sl_parse_ll(PQgetvalue(res, i, 2), &off);
                        json_object_set_new(m, PQgetvalue(res, i, 1),
                                            json_integer(off));
                }
        }
        PQclear(res);
        return out;
}

static json_t *topics_status(rd_kafka_t *rk, const char *tgroup,
                             json_t *load_offsets, json_t **sources)
{
        const struct rd_kafka_metadata *md = NULL;
        json_t *topics = json_array();

        *sources = json_object();
        if (rd_kafka_metadata(rk, 1, NULL, &md, STATUS_TIMEOUT_MS))
                return topics;
        for (int i = 0; i < md->topic_cnt; i++) {
                const struct rd_kafka_metadata_topic *mt = &md->topics[i];
                const char *name = mt->topic;
                const char *group = NULL;
                rd_kafka_topic_partition_list_t *c = NULL;
                long long end = 0, lag = 0, have_lag = 0;
                long long dropped = 0, lost = 0;
                json_t *t;

                if (strcmp(name, "sluice.state") == 0) {
                        json_decref(*sources);
                        *sources = read_sources(rk, mt->partition_cnt);
                        continue;
                }
                if (!sl_str_has_prefix(name, "raw.") &&
                    !sl_str_has_prefix(name, "mapped.") &&
                    !sl_str_has_prefix(name, "dlq."))
                        continue;
                if (sl_str_has_prefix(name, "raw."))
                        group = tgroup;
                c = rd_kafka_topic_partition_list_new(mt->partition_cnt);
                for (int p = 0; p < mt->partition_cnt; p++)
                        rd_kafka_topic_partition_list_add(c, name, p);
                if (group)
                        rd_kafka_committed(rk, c, STATUS_TIMEOUT_MS);
                for (int p = 0; p < mt->partition_cnt; p++) {
                        int64_t lo = 0, hi = 0, at = -1;
                        rd_kafka_query_watermark_offsets(rk, name, p, &lo, &hi,
                                                         STATUS_TIMEOUT_MS);
                        end += hi - lo;
                        dropped += lo; /* no longer kept: replay cannot
                                          reach them */
                        if (group && c->elems[p].offset >= 0)
                                at = c->elems[p].offset;
                        if (!group && load_offsets &&
                            sl_str_has_prefix(name, "mapped.")) {
                                char key[16];
                                json_t *m = json_object_get(load_offsets, name);
                                snprintf(key, sizeof(key), "%d", p);
                                if (m && json_object_get(m, key))
                                        at = json_integer_value(
                                            json_object_get(m, key));
                        }
                        if (at >= 0 && at < lo)
                                lost += lo - at; /* read by nobody */
                        if (at >= 0 || group ||
                            sl_str_has_prefix(name, "mapped.")) {
                                have_lag = 1;
                                lag += hi - (at >= 0 ? at : lo);
                        }
                }
                rd_kafka_topic_partition_list_destroy(c);
                t = json_pack("{s:s,s:i,s:I}", "topic", name, "partitions",
                              mt->partition_cnt, "messages", (json_int_t)end);
                if (have_lag)
                        json_object_set_new(t, "lag", json_integer(lag));
                json_object_set_new(t, "earliest_dropped",
                                    json_integer(dropped));
                if (have_lag)
                        json_object_set_new(t, "lost_behind_earliest",
                                            json_integer(lost));
                json_array_append_new(topics, t);
        }
        rd_kafka_metadata_destroy(md);
        return topics;
}

static json_t *tables_status(PGconn *conn)
{
        json_t *tables = json_array();
        PGresult *res;

        /* Target tables are those with sluice's bookkeeping column. */
        res = PQexec(conn,
                     "SELECT c.table_name FROM information_schema.columns c "
                     "WHERE c.column_name = '_lineage' AND c.table_schema = "
                     "current_schema() ORDER BY 1");
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
                PQclear(res);
                return tables;
        }
        for (int i = 0; i < PQntuples(res); i++) {
                const char *name = PQgetvalue(res, i, 0);
                char *ident = PQescapeIdentifier(conn, name, strlen(name));
                char *sql = sl_asprintf("SELECT count(*) FROM %s", ident);
                const char *params[1] = {name};
                PGresult *r2 = PQexec(conn, sql);
                PGresult *r3;
                long long rows = -1;
                json_t *t;

                if (PQresultStatus(r2) == PGRES_TUPLES_OK)
                        sl_parse_ll(PQgetvalue(r2, 0, 0), &rows);
                PQclear(r2);
                free(sql);
                PQfreemem(ident);
                t = json_pack("{s:s,s:I}", "table", name, "rows",
                              (json_int_t)rows);
                r3 = PQexecParams(
                    conn,
                    "SELECT count(*), coalesce(sum(inserted),0), "
                    "coalesce(sum(updated),0), coalesce(sum(unchanged),0),"
                    " coalesce(sum(deleted),0), coalesce(sum(rejected),0),"
                    " coalesce(to_char(max(finished_at) AT TIME ZONE "
                    "'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), '') FROM "
                    "sluice.load_batches WHERE table_name = $1",
                    1, NULL, params, NULL, NULL, 0);
                if (PQresultStatus(r3) == PGRES_TUPLES_OK) {
                        static const char *keys[] = {"batches", "inserted",
                                                     "updated", "unchanged",
                                                     "deleted", "rejected"};
                        for (int k = 0; k < 6; k++) {
                                long long v = 0;
                                sl_parse_ll(PQgetvalue(r3, 0, k), &v);
                                json_object_set_new(t, keys[k],
                                                    json_integer(v));
                        }
                        json_object_set_new(t, "last_batch",
                                            json_string(PQgetvalue(r3, 0, 6)));
                }
                PQclear(r3);
                json_array_append_new(tables, t);
        }
        PQclear(res);
        return tables;
}

/* The tables the loaders of group have parked (sluice.parked_tables):
 * [{"table", "topic", "reason", "instance", "since", "checked"}]. */
static json_t *parked_status(PGconn *conn, const char *group)
{
        json_t *parked = json_array();
        const char *params[1] = {group};
        PGresult *res =
            PQexecParams(conn,
                         "SELECT table_name, topic, reason, instance, "
                         "to_char(parked_at AT TIME ZONE 'UTC', "
                         "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
                         "to_char(checked_at AT TIME ZONE 'UTC', "
                         "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') "
                         "FROM sluice.parked_tables WHERE consumer_group = $1 "
                         "ORDER BY table_name, instance",
                         1, NULL, params, NULL, NULL, 0);

        /* a database from before the table: nothing parked to show */
        for (int i = 0;
             PQresultStatus(res) == PGRES_TUPLES_OK && i < PQntuples(res); i++)
                json_array_append_new(
                    parked, json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "table",
                                      PQgetvalue(res, i, 0), "topic",
                                      PQgetvalue(res, i, 1), "reason",
                                      PQgetvalue(res, i, 2), "instance",
                                      PQgetvalue(res, i, 3), "since",
                                      PQgetvalue(res, i, 4), "checked",
                                      PQgetvalue(res, i, 5)));
        PQclear(res);
        return parked;
}

/* The losses recorded on SL_LOSS_TOPIC (sl_loss.h) that no one has
 * acknowledged: {"acknowledged_through", "messages", "records": [...]};
 * with ack, first acknowledges them all (commits the topic's end for
 * SL_LOSS_ACK_GROUP, which the workers' /readyz reads). rk reads the
 * records (assigned, then unassigned). */
static json_t *loss_status(rd_kafka_t *rk, int ack, json_t *errors)
{
        json_t *out = json_object(), *recs = json_array();
        rd_kafka_topic_partition_list_t *l = NULL;
        rd_kafka_t *ack_rk = NULL;
        int64_t lo = 0, hi = 0, at = -1, total = 0;
        int64_t deadline = sl_now_ms() + STATUS_TIMEOUT_MS;
        char errstr[512];

        json_object_set_new(out, "records", recs);
        if (rd_kafka_query_watermark_offsets(rk, SL_LOSS_TOPIC, 0, &lo, &hi,
                                             STATUS_TIMEOUT_MS))
                goto out; /* no such topic: nothing was ever lost */
        ack_rk = sl_kafka_consumer_new(NULL, SL_LOSS_ACK_GROUP, errstr,
                                       sizeof(errstr));
        if (!ack_rk)
                goto out;
        l = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(l, SL_LOSS_TOPIC, 0);
        if (rd_kafka_committed(ack_rk, l, STATUS_TIMEOUT_MS) == 0 &&
            !l->elems[0].err)
                at = l->elems[0].offset;
        if (ack && at < hi) {
                rd_kafka_resp_err_t err;
                l->elems[0].offset = hi;
                /* never joined: a plain commit of the group's offset */
                err = rd_kafka_commit(ack_rk, l, 0);
                if (err) {
                        snprintf(errstr, sizeof(errstr),
                                 "could not acknowledge: %s",
                                 rd_kafka_err2str(err));
                        json_object_set_new(errors, "data_loss",
                                            json_string(errstr));
                } else {
                        json_object_set_new(
                            out, "acknowledged_now",
                            json_integer(hi - (at < lo ? lo : at)));
                        at = hi;
                }
        }
        if (at < lo)
                at = lo;
        json_object_set_new(out, "acknowledged_through", json_integer(at));
        if (at < hi) {
                l->elems[0].offset = at;
                if (rd_kafka_assign(rk, l) == 0) {
                        int64_t next = at;
                        while (next < hi && sl_now_ms() < deadline) {
                                rd_kafka_message_t *rkm =
                                    rd_kafka_consumer_poll(rk, 200);
                                json_t *v;
                                if (!rkm)
                                        continue;
                                if (!rkm->err) {
                                        next = rkm->offset + 1;
                                        v = json_loadb(rkm->payload, rkm->len,
                                                       0, NULL);
                                        if (json_is_object(v)) {
                                                total += json_integer_value(
                                                    json_object_get(
                                                        v, "messages"));
                                                json_array_append(recs, v);
                                        }
                                        json_decref(v);
                                }
                                rd_kafka_message_destroy(rkm);
                        }
                        rd_kafka_assign(rk, NULL);
                }
        }
out:
        json_object_set_new(out, "messages", json_integer(total));
        if (l)
                rd_kafka_topic_partition_list_destroy(l);
        if (ack_rk) {
                rd_kafka_consumer_close(ack_rk);
                rd_kafka_destroy(ack_rk);
        }
        return out;
}

/* The string at key, or dflt when absent. */
static const char *str_or(json_t *obj, const char *key, const char *dflt)
{
        const char *s = json_string_value(json_object_get(obj, key));
        return s ? s : dflt;
}

/* Each lookup a worker ran (sluice.lookups): its cache by outcome, its
 * quota, and its backlog, the lag of its group on its input topic. */
static json_t *lookups_status(PGconn *conn)
{
        json_t *out = json_array();
        PGresult *res = PQexec(
            conn,
            "SELECT l.lookup, l.topic, l.group_id, "
            "(SELECT count(*) FROM sluice.lookup_cache c WHERE c.lookup = "
            "l.lookup AND c.outcome = 'found'), "
            "(SELECT count(*) FROM sluice.lookup_cache c WHERE c.lookup = "
            "l.lookup AND c.outcome = 'not_found'), "
            "(SELECT count(*) FROM sluice.lookup_cache c WHERE c.lookup = "
            "l.lookup AND c.outcome = 'error'), "
            "(SELECT count(*) FROM sluice.lookup_cache c WHERE c.lookup = "
            "l.lookup AND c.outcome IN ('pending', 'sent')), "
            "q.used, q.quota FROM sluice.lookups l LEFT JOIN "
            "sluice.lookup_quota q ON q.lookup = l.lookup ORDER BY 1");

        if (PQresultStatus(res) == PGRES_TUPLES_OK) {
                for (int i = 0; i < PQntuples(res); i++) {
                        long long n[6] = {0, 0, 0, 0, -1, -1};
                        json_t *l;
                        for (int k = 0; k < 6; k++)
                                if (!PQgetisnull(res, i, 3 + k))
                                        sl_parse_ll(PQgetvalue(res, i, 3 + k),
                                                    &n[k]);
                        l = json_pack(
                            "{s:s,s:s,s:s,s:I,s:I,s:I,s:I}", "lookup",
                            PQgetvalue(res, i, 0), "topic",
                            PQgetvalue(res, i, 1), "group",
                            PQgetvalue(res, i, 2), "found", (json_int_t)n[0],
                            "not_found", (json_int_t)n[1], "error",
                            (json_int_t)n[2], "in_flight", (json_int_t)n[3]);
                        if (n[4] >= 0) {
                                json_object_set_new(l, "quota_used",
                                                    json_integer(n[4]));
                                json_object_set_new(l, "quota",
                                                    json_integer(n[5]));
                        }
                        json_array_append_new(out, l);
                }
        }
        PQclear(res);
        return out;
}

/* Adds "backlog" to each lookup: messages of its topic its group has not
 * committed (a group that never committed: the whole topic). */
static void lookups_backlog(json_t *lookups)
{
        size_t i;
        json_t *l;

        json_array_foreach(lookups, i, l)
        {
                const char *topic =
                    json_string_value(json_object_get(l, "topic"));
                const char *group =
                    json_string_value(json_object_get(l, "group"));
                char errstr[256];
                rd_kafka_t *rk =
                    sl_kafka_consumer_new(NULL, group, errstr, sizeof(errstr));
                const struct rd_kafka_metadata *md = NULL;
                rd_kafka_topic_t *rkt;
                rd_kafka_topic_partition_list_t *c;
                long long backlog = 0;
                int nparts;

                if (!rk)
                        continue;
                rkt = rd_kafka_topic_new(rk, topic, NULL);
                if (rd_kafka_metadata(rk, 0, rkt, &md, STATUS_TIMEOUT_MS) ||
                    md->topic_cnt != 1) {
                        if (md)
                                rd_kafka_metadata_destroy(md);
                        rd_kafka_topic_destroy(rkt);
                        rd_kafka_destroy(rk);
                        continue;
                }
                nparts = md->topics[0].partition_cnt;
                rd_kafka_metadata_destroy(md);
                rd_kafka_topic_destroy(rkt);
                c = rd_kafka_topic_partition_list_new(nparts);
                for (int p = 0; p < nparts; p++)
                        rd_kafka_topic_partition_list_add(c, topic, p);
                rd_kafka_committed(rk, c, STATUS_TIMEOUT_MS);
                for (int p = 0; p < nparts; p++) {
                        int64_t lo = 0, hi = 0;
                        int64_t at = c->elems[p].offset;
                        rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi,
                                                         STATUS_TIMEOUT_MS);
                        backlog += hi - (at >= lo ? at : lo);
                }
                rd_kafka_topic_partition_list_destroy(c);
                json_object_set_new(l, "backlog", json_integer(backlog));
                rd_kafka_destroy(rk);
        }
}

static void print_text(json_t *st)
{
        const char *key;
        json_t *v, *loss;
        size_t i;

        printf("SOURCES (sluice.state)\n");
        printf("  %-12s %-26s %8s %9s  %s\n", "source", "last sync", "pages",
               "records", "cursor");
        json_object_foreach(json_object_get(st, "sources"), key, v)
        {
                json_t *cur = json_object_get(v, "cursor");
                char *c = cur ? json_dumps(cur, JSON_ENCODE_ANY) : NULL;
                printf(
                    "  %-12s %-26s %8lld %9lld  %s\n", key,
                    str_or(v, "updated_at", "-"),
                    (long long)json_integer_value(json_object_get(v, "pages")),
                    (long long)json_integer_value(
                        json_object_get(v, "records")),
                    c ? c : "-");
                free(c);
        }
        printf("\nTOPICS (%s)\n", str_or(st, "brokers", "unreachable"));
        printf("  %-42s %5s %10s %10s %10s %8s\n", "topic", "parts", "messages",
               "lag", "dropped", "lost");
        json_array_foreach(json_object_get(st, "topics"), i, v)
        {
                json_t *lag = json_object_get(v, "lag");
                char lagbuf[32] = "-";
                if (lag)
                        snprintf(lagbuf, sizeof(lagbuf), "%lld",
                                 (long long)json_integer_value(lag));
                printf("  %-42s %5lld %10lld %10s %10lld %8lld\n",
                       json_string_value(json_object_get(v, "topic")),
                       (long long)json_integer_value(
                           json_object_get(v, "partitions")),
                       (long long)json_integer_value(
                           json_object_get(v, "messages")),
                       lagbuf,
                       (long long)json_integer_value(
                           json_object_get(v, "earliest_dropped")),
                       (long long)json_integer_value(
                           json_object_get(v, "lost_behind_earliest")));
        }
        printf("\nTABLES (%s)\n", str_or(st, "database", "unreachable"));
        printf("  %-36s %8s %8s %8s %8s %8s %8s  %s\n", "table", "rows",
               "batches", "inserted", "updated", "unchgd", "rejected",
               "last batch");
        json_array_foreach(json_object_get(st, "tables"), i, v)
        {
                printf(
                    "  %-36s %8lld %8lld %8lld %8lld %8lld %8lld  %s\n",
                    json_string_value(json_object_get(v, "table")),
                    (long long)json_integer_value(json_object_get(v, "rows")),
                    (long long)json_integer_value(
                        json_object_get(v, "batches")),
                    (long long)json_integer_value(
                        json_object_get(v, "inserted")),
                    (long long)json_integer_value(
                        json_object_get(v, "updated")),
                    (long long)json_integer_value(
                        json_object_get(v, "unchanged")),
                    (long long)json_integer_value(
                        json_object_get(v, "rejected")),
                    str_or(v, "last_batch", ""));
        }
        if (json_array_size(json_object_get(st, "lookups"))) {
                printf("\nLOOKUPS (sluice.lookup_cache)\n");
                printf("  %-20s %-32s %8s %8s %8s %8s %8s %12s\n", "lookup",
                       "input", "backlog", "found", "notfound", "error",
                       "asking", "quota");
        }
        json_array_foreach(json_object_get(st, "lookups"), i, v)
        {
                char quota[32] = "-", backlog[24] = "-";
                if (json_object_get(v, "quota"))
                        snprintf(quota, sizeof(quota), "%lld/%lld",
                                 (long long)json_integer_value(
                                     json_object_get(v, "quota_used")),
                                 (long long)json_integer_value(
                                     json_object_get(v, "quota")));
                if (json_object_get(v, "backlog"))
                        snprintf(backlog, sizeof(backlog), "%lld",
                                 (long long)json_integer_value(
                                     json_object_get(v, "backlog")));
                printf(
                    "  %-20s %-32s %8s %8lld %8lld %8lld %8lld %12s\n",
                    str_or(v, "lookup", "-"), str_or(v, "topic", "-"), backlog,
                    (long long)json_integer_value(json_object_get(v, "found")),
                    (long long)json_integer_value(
                        json_object_get(v, "not_found")),
                    (long long)json_integer_value(json_object_get(v, "error")),
                    (long long)json_integer_value(
                        json_object_get(v, "in_flight")),
                    quota);
        }
        if (json_array_size(json_object_get(st, "parked_tables")))
                printf("\nPARKED TABLES (the loader cannot write them; "
                       "their partitions wait)\n");
        json_array_foreach(json_object_get(st, "parked_tables"), i, v)
            printf("  %-36s since %s (%s): %s\n", str_or(v, "table", "-"),
                   str_or(v, "since", "-"), str_or(v, "instance", "-"),
                   str_or(v, "reason", "-"));
        loss = json_object_get(st, "data_loss");
        if (json_integer_value(json_object_get(loss, "acknowledged_now")))
                printf("\nDATA LOST: %lld loss records acknowledged\n",
                       (long long)json_integer_value(
                           json_object_get(loss, "acknowledged_now")));
        if (json_array_size(json_object_get(loss, "records")))
                printf("\nDATA LOST: %lld messages never read (acknowledge "
                       "with sluice status --ack-loss)\n",
                       (long long)json_integer_value(
                           json_object_get(loss, "messages")));
        json_array_foreach(json_object_get(loss, "records"), i, v) printf(
            "  %-20s %-20s %s[%lld] offsets %lld-%lld: %lld messages "
            "(%s)\n",
            str_or(v, "at", "-"), str_or(v, "group", "-"),
            str_or(v, "topic", "-"),
            (long long)json_integer_value(json_object_get(v, "partition")),
            (long long)json_integer_value(json_object_get(v, "first_offset")),
            (long long)json_integer_value(json_object_get(v, "last_offset")),
            (long long)json_integer_value(json_object_get(v, "messages")),
            str_or(v, "how", "-"));
        json_object_foreach(json_object_get(st, "errors"), key, v)
            printf("\n%s: %s\n", key, json_string_value(v));
}

int status_main(int argc, char **argv)
{
        static const struct option longopts[] = {
            {"json", no_argument, NULL, 'j'},
            {"ack-loss", no_argument, NULL, 'A'},
            {"group-transform", required_argument, NULL, 't'},
            {"group-load", required_argument, NULL, 'l'},
            {"kafka", required_argument, NULL, 'X'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        const char *tgroup = "sluice-transform", *lgroup = "sluice-load";
        int json_out = 0, ack_loss = 0, opt, rc = SL_EXIT_OK;
        char errstr[512];
        rd_kafka_t *rk = NULL;
        PGconn *conn = NULL;
        json_t *st = json_object(), *errors = json_object();
        json_t *sources = NULL, *load_offsets = NULL;

        sl_log_init("status");
        if (!getenv("SLUICE_LOG_LEVEL"))
                sl_log_set_level(LOG_CRIT);
        optind = 1;
        while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
                switch (opt) {
                case 'j':
                        json_out = 1;
                        break;
                case 'A':
                        ack_loss = 1;
                        break;
                case 't':
                        tgroup = optarg;
                        break;
                case 'l':
                        lgroup = optarg;
                        break;
                case 'X':
                        if (sl_kafka_prop_add(optarg, errstr, sizeof(errstr)) <
                            0) {
                                fprintf(stderr, "sluice status: %s\n", errstr);
                                rc = SL_EXIT_USAGE;
                                goto out;
                        }
                        break;
                case 'h':
                        status_usage(stdout);
                        goto out;
                default:
                        sl_usage_error("status",
                                       "unknown or incomplete option \"%s\"",
                                       argv[optind - 1]);
                        rc = SL_EXIT_USAGE;
                        goto out;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "sluice status: unexpected argument \"%s\"\n",
                        argv[optind]);
                rc = SL_EXIT_USAGE;
                goto out;
        }

        conn = sl_pg_connect(errstr, sizeof(errstr));
        if (conn) {
                char where[256];
                sl_pg_describe(conn, where, sizeof(where));
                json_object_set_new(st, "database", json_string(where));
                load_offsets = pg_offsets(conn, lgroup);
                json_object_set_new(st, "tables", tables_status(conn));
                json_object_set_new(st, "parked_tables",
                                    parked_status(conn, lgroup));
                json_object_set_new(st, "lookups", lookups_status(conn));
        } else {
                json_object_set_new(errors, "database", json_string(errstr));
                json_object_set_new(st, "tables", json_array());
                json_object_set_new(st, "parked_tables", json_array());
        }

        rk = sl_kafka_consumer_new(NULL, tgroup, errstr, sizeof(errstr));
        if (rk &&
            sl_kafka_ping(rk, STATUS_TIMEOUT_MS, errstr, sizeof(errstr)) == 0) {
                json_object_set_new(st, "brokers",
                                    json_string(sl_kafka_brokers()));
                json_object_set_new(
                    st, "topics",
                    topics_status(rk, tgroup, load_offsets, &sources));
                json_object_set_new(st, "data_loss",
                                    loss_status(rk, ack_loss, errors));
                lookups_backlog(json_object_get(st, "lookups"));
        } else {
                json_object_set_new(errors, "kafka", json_string(errstr));
                json_object_set_new(st, "topics", json_array());
                json_object_set_new(st, "data_loss", json_object());
        }
        json_object_set_new(st, "sources", sources ? sources : json_object());
        sources = NULL;
        json_object_set_new(
            st, "groups",
            json_pack("{s:s,s:s}", "transform", tgroup, "load", lgroup));
        json_object_set(st, "errors", errors);
        if (json_out) {
                json_dumpf(st, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
                printf("\n");
        } else {
                print_text(st);
        }
        /* any dependency down is a failure, named on stderr */
        if (json_object_get(errors, "kafka") ||
            json_object_get(errors, "database")) {
                json_t *k = json_object_get(errors, "kafka");
                json_t *d = json_object_get(errors, "database");
                if (k)
                        fprintf(stderr,
                                "sluice status: kafka unreachable: %s\n",
                                json_string_value(k));
                if (d)
                        fprintf(stderr,
                                "sluice status: database unreachable: %s\n",
                                json_string_value(d));
                rc = SL_EXIT_FAILURE;
        }
out:
        json_decref(load_offsets);
        json_decref(errors);
        json_decref(st);
        if (rk) {
                rd_kafka_consumer_close(rk);
                rd_kafka_destroy(rk);
        }
        if (conn)
                PQfinish(conn);
        return rc;
}
