/* fetch_backpressure: waits while the groups reading the raw topic lag
 * close to what the broker keeps of a partition (fetch_backpressure.h). */
#include "fetch_backpressure.h"
#include "sl_kafka.h"
#include "sl_log.h"
#include "sl_metrics.h"
#include "sl_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What librdkafka 2.0.2's mock cluster keeps of a partition
 * (rdkafka_mock.c: max_size, max_cnt); its cluster id says it is one. */
#define MOCK_MAX_BYTES   ((int64_t)5 << 20)
#define MOCK_MAX_BATCHES 100000
#define MOCK_CLUSTER_ID  "mockCluster"

#define ASK_TIMEOUT_MS 5000
#define LOG_EVERY_MS   30000

int fetch_bp_init(struct fetch_bp *bp, const char *source, const char *topic,
                  size_t chunk_bytes, char *errstr, size_t errstr_size)
{
        const char *env = getenv("SLUICE_BACKPRESSURE_GROUPS");
        char *list = NULL, *p, *tok;

        memset(bp, 0, sizeof(*bp));
        snprintf(bp->source, sizeof(bp->source), "%s", source);
        snprintf(bp->topic, sizeof(bp->topic), "%s", topic);
        bp->chunk_bytes = chunk_bytes ? chunk_bytes : 1;
        if (!env)
                env = "sluice-transform";
        list = sl_strdup(env);
        for (p = list; (tok = strsep(&p, ", ")) != NULL;) {
                if (!*tok)
                        continue;
                if (strcmp(tok, "none") == 0) {
                        bp->ngroups = 0;
                        break;
                }
                if (bp->ngroups == FETCH_BP_MAX_GROUPS) {
                        snprintf(errstr, errstr_size,
                                 "SLUICE_BACKPRESSURE_GROUPS: more than %d "
                                 "groups",
                                 FETCH_BP_MAX_GROUPS);
                        free(list);
                        fetch_bp_free(bp);
                        return -1;
                }
                bp->groups[bp->ngroups++] = sl_strdup(tok);
        }
        free(list);
        env = getenv("SLUICE_BACKPRESSURE_BYTES");
        if (env && *env) {
                long long v = 0;
                if (sl_parse_ll(env, &v) < 0 || v <= 0) {
                        snprintf(errstr, errstr_size,
                                 "SLUICE_BACKPRESSURE_BYTES wants a positive "
                                 "number of bytes, got \"%s\"",
                                 env);
                        fetch_bp_free(bp);
                        return -1;
                }
                bp->limit_bytes = v;
        }
        bp->state = bp->ngroups ? 0 : -1;
        return 0;
}

void fetch_bp_free(struct fetch_bp *bp)
{
        for (int i = 0; i < bp->ngroups; i++) {
                if (bp->grk[i]) {
                        rd_kafka_consumer_close(bp->grk[i]);
                        rd_kafka_destroy(bp->grk[i]);
                }
                free(bp->groups[i]);
                bp->grk[i] = NULL;
                bp->groups[i] = NULL;
        }
        bp->ngroups = 0;
        bp->state = -1;
}

/* The topic's retention.bytes on a real Kafka (DescribeConfigs), or -1
 * when unset (-1 there too) or unreadable. */
static int64_t retention_bytes(rd_kafka_t *rk, const char *topic)
{
        rd_kafka_ConfigResource_t *res = NULL;
        rd_kafka_AdminOptions_t *opts = NULL;
        rd_kafka_queue_t *q = NULL;
        rd_kafka_event_t *ev = NULL;
        const rd_kafka_DescribeConfigs_result_t *r;
        const rd_kafka_ConfigResource_t **rs;
        const rd_kafka_ConfigEntry_t **ents;
        size_t nrs = 0, nents = 0;
        long long v = -1;

        res = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic);
        opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS);
        q = rd_kafka_queue_new(rk);
        if (!res || !opts || !q)
                goto out;
        rd_kafka_AdminOptions_set_request_timeout(opts, ASK_TIMEOUT_MS, NULL,
                                                  0);
        rd_kafka_DescribeConfigs(rk, &res, 1, opts, q);
        ev = rd_kafka_queue_poll(q, ASK_TIMEOUT_MS + 1000);
        if (!ev || rd_kafka_event_error(ev))
                goto out;
        r = rd_kafka_event_DescribeConfigs_result(ev);
        rs = r ? rd_kafka_DescribeConfigs_result_resources(r, &nrs) : NULL;
        if (!rs || nrs != 1 || rd_kafka_ConfigResource_error(rs[0]))
                goto out;
        ents = rd_kafka_ConfigResource_configs(rs[0], &nents);
        for (size_t i = 0; i < nents; i++) {
                const char *name = rd_kafka_ConfigEntry_name(ents[i]);
                const char *val = rd_kafka_ConfigEntry_value(ents[i]);
                if (name && val && strcmp(name, "retention.bytes") == 0 &&
                    sl_parse_ll(val, &v) < 0)
                        v = -1;
        }
out:
        if (ev)
                rd_kafka_event_destroy(ev);
        if (q)
                rd_kafka_queue_destroy(q);
        if (opts)
                rd_kafka_AdminOptions_destroy(opts);
        if (res)
                rd_kafka_ConfigResource_destroy(res);
        return v > 0 ? v : -1;
}

/* Learns what the broker keeps of a partition; turns the wait off when
 * nothing bounds it. */
static void learn_limit(struct fetch_bp *bp, rd_kafka_t *rk)
{
        char *cid = rd_kafka_clusterid(rk, ASK_TIMEOUT_MS);
        int embedded =
            cid && strncmp(cid, MOCK_CLUSTER_ID, strlen(MOCK_CLUSTER_ID)) == 0;
        const char *from = "SLUICE_BACKPRESSURE_BYTES";

        if (cid)
                rd_kafka_mem_free(rk, cid);
        if (embedded)
                bp->limit_batches = MOCK_MAX_BATCHES;
        if (!bp->limit_bytes && embedded) {
                bp->limit_bytes = MOCK_MAX_BYTES;
                from = "embedded_broker";
        } else if (!bp->limit_bytes) {
                /* the mock answers no DescribeConfigs (it would hang until
                 * the timeout): asked only of a real Kafka */
                bp->limit_bytes = retention_bytes(rk, bp->topic);
                from = "retention.bytes";
        }
        if (bp->limit_bytes <= 0) {
                sl_info("event=backpressure state=off topic=%s reason=\"no "
                        "retention.bytes on the topic\"",
                        bp->topic);
                bp->state = -1;
                return;
        }
        sl_info("event=backpressure state=on topic=%s limit_bytes=%lld "
                "limit_batches=%lld from=%s groups=%d",
                bp->topic, (long long)bp->limit_bytes,
                (long long)bp->limit_batches, from, bp->ngroups);
        bp->state = 1;
}

/* The committed offsets of group g on the topic's n partitions (new list
 * in *c), the group's consumer made on first use. 0, or -1. */
static int committed(struct fetch_bp *bp, int g, int n,
                     rd_kafka_topic_partition_list_t **c)
{
        *c = NULL;
        if (!bp->grk[g]) {
                char errstr[512];
                rd_kafka_conf_t *conf =
                    sl_kafka_conf_new("consumer", errstr, sizeof(errstr));
                if (!conf)
                        return -1;
                rd_kafka_conf_set(conf, "statistics.interval.ms", "0", NULL, 0);
                /* takes ownership of conf */
                bp->grk[g] = sl_kafka_consumer_new(conf, bp->groups[g], errstr,
                                                   sizeof(errstr));
                conf = NULL;
                if (!bp->grk[g])
                        return -1;
        }
        *c = rd_kafka_topic_partition_list_new(n);
        for (int p = 0; p < n; p++)
                rd_kafka_topic_partition_list_add(*c, bp->topic, p);
        if (rd_kafka_committed(bp->grk[g], *c, ASK_TIMEOUT_MS)) {
                rd_kafka_topic_partition_list_destroy(*c);
                *c = NULL;
                return -1;
        }
        return 0;
}

/* The largest lag, in messages, of a group that consumes the topic over
 * its partitions; its group and partition. 0, or -1 when the cluster
 * could not be asked. A group with no committed offset on any partition
 * is not reading the topic yet and counts for nothing. The groups'
 * offsets are asked first: when none reads the topic, its watermarks
 * (one request per partition, each a round trip the fetch loop waits
 * for, before every page) are not asked at all. */
static int measure(struct fetch_bp *bp, rd_kafka_t *rk, int64_t *worst,
                   const char **wgroup, int32_t *wpart)
{
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, bp->topic, NULL);
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_topic_partition_list_t *cs[FETCH_BP_MAX_GROUPS] = {NULL};
        int64_t *lo = NULL, *hi = NULL;
        int n = 0, rc = -1, reading = 0;

        *worst = 0;
        *wgroup = NULL;
        *wpart = -1;
        if (!rkt || rd_kafka_metadata(rk, 0, rkt, &md, ASK_TIMEOUT_MS) ||
            md->topic_cnt != 1 || md->topics[0].err)
                goto out;
        n = md->topics[0].partition_cnt;
        for (int g = 0; g < bp->ngroups; g++) {
                int any = 0;

                if (committed(bp, g, n, &cs[g]) < 0)
                        goto out;
                for (int p = 0; p < n; p++)
                        any |=
                            !cs[g]->elems[p].err && cs[g]->elems[p].offset >= 0;
                if (!any) {
                        rd_kafka_topic_partition_list_destroy(cs[g]);
                        cs[g] = NULL;
                }
                reading |= any;
        }
        if (!reading) {
                rc = 0;
                goto out;
        }
        lo = sl_calloc((size_t)n + 1, sizeof(*lo));
        hi = sl_calloc((size_t)n + 1, sizeof(*hi));
        for (int p = 0; p < n; p++)
                if (rd_kafka_query_watermark_offsets(rk, bp->topic, p, &lo[p],
                                                     &hi[p], ASK_TIMEOUT_MS))
                        goto out;
        for (int g = 0; g < bp->ngroups; g++) {
                rd_kafka_topic_partition_list_t *c = cs[g];

                for (int p = 0; c && p < n; p++) {
                        int64_t at = c->elems[p].offset;
                        int32_t part = c->elems[p].partition;
                        int64_t lag;
                        if (c->elems[p].err || at < lo[part])
                                at = lo[part];
                        lag = hi[part] - at;
                        if (lag > *worst) {
                                *worst = lag;
                                *wgroup = bp->groups[g];
                                *wpart = part;
                        }
                }
        }
        rc = 0;
out:
        for (int g = 0; g < bp->ngroups; g++)
                if (cs[g])
                        rd_kafka_topic_partition_list_destroy(cs[g]);
        free(lo);
        free(hi);
        if (md)
                rd_kafka_metadata_destroy(md);
        if (rkt)
                rd_kafka_topic_destroy(rkt);
        return rc;
}

void fetch_bp_wait(struct fetch_bp *bp, rd_kafka_t *rk, size_t len)
{
        int64_t msgs =
            len > bp->chunk_bytes
                ? (int64_t)((len + bp->chunk_bytes - 1) / bp->chunk_bytes)
                : 1;
        int64_t t0 = sl_now_ms(), logged = 0;
        int waiting = 0;

        if (bp->state == 0)
                learn_limit(bp, rk);
        if (bp->state < 0)
                return;
        if ((int64_t)len <= bp->room) {
                bp->room -= (int64_t)len;
                goto out;
        }
        for (;;) {
                /* the lag is counted in uncompressed bytes (what this
                 * fetcher's messages average), against three quarters of
                 * a limit the broker counts in compressed bytes: an
                 * estimate on the safe side */
                int64_t max_bytes = bp->limit_bytes / 4 * 3;
                int64_t max_batches = bp->limit_batches / 4 * 3;
                double avg = bp->msgs_out > 0 ? bp->bytes_out / bp->msgs_out
                                              : (double)len / (double)msgs;
                int64_t worst = 0, lag_bytes;
                const char *group = NULL;
                int32_t part = -1;

                if (measure(bp, rk, &worst, &group, &part) < 0) {
                        /* a broker that cannot answer cannot take the page
                         * either: the produce path waits for it */
                        sl_warn("event=backpressure_unknown topic=%s "
                                "reason=\"could not read the groups' "
                                "offsets\"",
                                bp->topic);
                        bp->room = 0;
                        break;
                }
                /* what librdkafka still holds is not in the high
                 * watermark yet: counted as if all of it went to the
                 * partition furthest behind */
                lag_bytes =
                    (int64_t)((double)(worst + rd_kafka_outq_len(rk)) * avg);
                if (worst == 0 ||
                    (lag_bytes + (int64_t)len <= max_bytes &&
                     (!max_batches || worst + msgs <= max_batches))) {
                        bp->room = max_bytes - lag_bytes - (int64_t)len;
                        break;
                }
                if (!waiting || sl_now_ms() - logged >= LOG_EVERY_MS) {
                        sl_notice("event=backpressure_wait source=%s topic=%s "
                                  "group=%s partition=%d lag_messages=%lld "
                                  "lag_bytes_est=%lld limit_bytes=%lld "
                                  "waited_ms=%lld",
                                  bp->source, bp->topic, group, (int)part,
                                  (long long)worst, (long long)lag_bytes,
                                  (long long)bp->limit_bytes,
                                  (long long)(sl_now_ms() - t0));
                        logged = sl_now_ms();
                }
                waiting = 1;
                if (sl_stop)
                        break;
                /* delivery reports go on while the groups catch up */
                rd_kafka_poll(rk, 250);
                sl_sleep_ms(250);
        }
        if (waiting) {
                sl_metric_add(SL_M_BACKPRESSURE_SECS, SL_LV(bp->source),
                              (double)(sl_now_ms() - t0) / 1000.0);
                sl_notice("event=backpressure_resumed source=%s topic=%s "
                          "waited_ms=%lld",
                          bp->source, bp->topic, (long long)(sl_now_ms() - t0));
        }
out:
        bp->bytes_out += (double)len;
        bp->msgs_out += (double)msgs;
}
