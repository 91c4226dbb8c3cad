/* sl_kafka: the one place that turns environment and flags into librdkafka
 * configuration, so every role connects the same way. */
#include "sl_kafka.h"
#include "sl_log.h"
#include "sl_metrics.h"
#include "sl_util.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

static char *props[SL_KAFKA_MAX_PROPS];
static int props_cnt;
static char brokers_used[1024];
static int stats_ms;

void sl_kafka_stats_interval(int ms)
{
        stats_ms = ms;
}

static int stats_cb(rd_kafka_t *rk, char *json, size_t json_len, void *opaque)
{
        (void)rk;
        (void)opaque;
        sl_metrics_kafka_stats(json, json_len);
        return 0; /* librdkafka frees json */
}

int sl_kafka_prop_add(const char *arg, char *errstr, size_t errstr_size)
{
        const char *eq = strchr(arg, '=');

        if (!eq || eq == arg) {
                snprintf(errstr, errstr_size,
                         "--kafka wants prop=value, got \"%s\"", arg);
                return -1;
        }
        if (props_cnt == SL_KAFKA_MAX_PROPS) {
                snprintf(errstr, errstr_size, "too many --kafka properties");
                return -1;
        }
        props[props_cnt++] = sl_strdup(arg);
        return 0;
}

int sl_kafka_conf_set(rd_kafka_conf_t *conf, const char *name,
                      const char *value, char *errstr, size_t errstr_size)
{
        char detail[512];

        if (rd_kafka_conf_set(conf, name, value, detail, sizeof(detail)) !=
            RD_KAFKA_CONF_OK) {
                snprintf(errstr, errstr_size, "kafka property %s: %s", name,
                         detail);
                return -1;
        }
        return 0;
}

/* The last connection failure librdkafka logged (its FAIL facility: a
 * refused connection, a failed TLS handshake, a SASL error). log_cb runs
 * on librdkafka's broker threads, hence the lock; sl_kafka_ping() quotes
 * it, so that "could not reach" also says why. */
static pthread_mutex_t last_fail_lock = PTHREAD_MUTEX_INITIALIZER;
static char last_fail[512];

static void log_cb(const rd_kafka_t *rk, int level, const char *fac,
                   const char *buf)
{
        char q[1024];
        (void)rk;
        if (strcmp(fac, "FAIL") == 0) {
                /* "[thrd:...]: " names the thread: drop it */
                const char *msg =
                    strncmp(buf, "[thrd:", 6) == 0 && strstr(buf, "]: ")
                        ? strstr(buf, "]: ") + 3
                        : buf;
                pthread_mutex_lock(&last_fail_lock);
                snprintf(last_fail, sizeof(last_fail), "%s", msg);
                pthread_mutex_unlock(&last_fail_lock);
        }
        sl_log(level, "event=rdkafka fac=%s msg=%s", fac,
               sl_log_quote(buf, q, sizeof(q)));
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
        char q[1024];
        (void)rk;
        (void)opaque;
        /* Most errors are informational: librdkafka recovers by itself.
         * Only a fatal error stops a worker, and the worker checks for it. */
        sl_log(err == RD_KAFKA_RESP_ERR__FATAL ? LOG_ERR : LOG_WARNING,
               "event=kafka_error err=%s reason=%s", rd_kafka_err2name(err),
               sl_log_quote(reason, q, sizeof(q)));
}

/* SLUICE_KAFKA_SASL_MECHANISMS -> sasl.mechanisms */
static void env_to_prop(const char *env_name, char *out, size_t size)
{
        size_t i = 0;
        for (; env_name[i] && i + 1 < size; i++) {
                char c = env_name[i];
                out[i] = c == '_' ? '.' : (char)tolower((unsigned char)c);
        }
        out[i] = '\0';
}

rd_kafka_conf_t *sl_kafka_conf_new(const char *kind, char *errstr,
                                   size_t errstr_size)
{
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        const char *brokers = getenv("SLUICE_BROKERS");
        char name[256];

        if (!brokers || !*brokers)
                brokers = "localhost:9092";
        snprintf(brokers_used, sizeof(brokers_used), "%s", brokers);
        rd_kafka_conf_set_log_cb(conf, log_cb);
        rd_kafka_conf_set_error_cb(conf, error_cb);
        if (stats_ms > 0) {
                char ms[24];
                snprintf(ms, sizeof(ms), "%d", stats_ms);
                rd_kafka_conf_set_stats_cb(conf, stats_cb);
                if (sl_kafka_conf_set(conf, "statistics.interval.ms", ms,
                                      errstr, errstr_size) < 0)
                        goto fail;
        }
        if (sl_kafka_conf_set(conf, "bootstrap.servers", brokers, errstr,
                              errstr_size) < 0)
                goto fail;
        if (sl_kafka_conf_set(conf, "client.id", sl_log_instance(), errstr,
                              errstr_size) < 0)
                goto fail;
        if (strcmp(kind, "producer") == 0) {
                /* linger.ms 50: twice the transformer's throughput of 5 ms
                 * for 25 % less CPU (bench/results.md, the linger sweep);
                 * a 64 MiB local queue bounds a fetcher's memory (553 MB
                 * at librdkafka's 1 GiB default in the 200k pipeline).
                 * lz4, measured against snappy and zstd (issue 22,
                 * docs/performance.md): librdkafka 2.0.2's LZ4 frames carry
                 * no content size, so a consumer grows its decompression
                 * buffer by realloc (LZ4 and memmove are 7 % of the
                 * transformer's profile), but snappy's decompression cost
                 * the same there (5 %); the transform's time was within
                 * noise for all three, its peak RSS over a 5x backlog
                 * 124-142 MB with lz4, 105 with snappy, 186 with zstd, the
                 * publish floor 0.050 s against snappy's 0.053 and zstd's
                 * 0.091. snappy's lower RSS is one run each: not enough to
                 * move off lz4. Uncompressed raw pages stalled a consumer of
                 * the embedded broker (a batch larger than a fetch). */
                if (sl_kafka_conf_set(conf, "enable.idempotence", "true",
                                      errstr, errstr_size) < 0 ||
                    sl_kafka_conf_set(conf, "compression.type", "lz4", errstr,
                                      errstr_size) < 0 ||
                    sl_kafka_conf_set(conf, "linger.ms", "50", errstr,
                                      errstr_size) < 0 ||
                    sl_kafka_conf_set(conf, "queue.buffering.max.kbytes",
                                      "65536", errstr, errstr_size) < 0 ||
                    sl_kafka_conf_set(conf, "message.max.bytes", "4000000",
                                      errstr, errstr_size) < 0)
                        goto fail;
        }
        if (strcmp(kind, "consumer") == 0) {
                /* A dead worker's partitions move on within 10 s, and the
                 * embedded broker (which holds a group's next join until
                 * departed sessions expire) stays quick to rejoin. Regex
                 * subscriptions (^mapped\..*) see new topics within 5 s. */
                if (sl_kafka_conf_set(conf, "session.timeout.ms", "10000",
                                      errstr, errstr_size) < 0 ||
                    sl_kafka_conf_set(conf, "heartbeat.interval.ms", "1000",
                                      errstr, errstr_size) < 0 ||
                    sl_kafka_conf_set(conf,
                                      "topic.metadata.refresh.interval.ms",
                                      "5000", errstr, errstr_size) < 0 ||
                    /* the prefetch queue is per partition: at the 64 MiB
                     * default a loader of 32 partitions may hold 2 GiB */
                    sl_kafka_conf_set(conf, "queued.max.messages.kbytes",
                                      SL_KAFKA_CONSUMER_QUEUE_KB, errstr,
                                      errstr_size) < 0)
                        goto fail;
        }
        for (char **e = environ; e && *e; e++) {
                const char *eq;
                char value[1024];
                if (!sl_str_has_prefix(*e, "SLUICE_KAFKA_"))
                        continue;
                eq = strchr(*e, '=');
                if (!eq)
                        continue;
                snprintf(value, sizeof(value), "%.*s", (int)(eq - (*e + 13)),
                         *e + 13);
                env_to_prop(value, name, sizeof(name));
                if (sl_kafka_conf_set(conf, name, eq + 1, errstr, errstr_size) <
                    0)
                        goto fail;
        }
        for (int i = 0; i < props_cnt; i++) {
                char *eq = strchr(props[i], '=');
                snprintf(name, sizeof(name), "%.*s", (int)(eq - props[i]),
                         props[i]);
                if (strcmp(name, "bootstrap.servers") == 0)
                        snprintf(brokers_used, sizeof(brokers_used), "%s",
                                 eq + 1);
                if (sl_kafka_conf_set(conf, name, eq + 1, errstr, errstr_size) <
                    0)
                        goto fail;
        }
        return conf;
fail:
        rd_kafka_conf_destroy(conf);
        return NULL;
}

int sl_kafka_conf_default(rd_kafka_conf_t *conf, const char *name,
                          const char *value, char *errstr, size_t errstr_size)
{
        char prop[256];

        for (char **e = environ; e && *e; e++) {
                const char *eq = strchr(*e, '=');
                char env[256];
                if (!eq || !sl_str_has_prefix(*e, "SLUICE_KAFKA_"))
                        continue;
                snprintf(env, sizeof(env), "%.*s", (int)(eq - (*e + 13)),
                         *e + 13);
                env_to_prop(env, prop, sizeof(prop));
                if (strcmp(prop, name) == 0)
                        return 0;
        }
        for (int i = 0; i < props_cnt; i++) {
                char *eq = strchr(props[i], '=');
                if ((size_t)(eq - props[i]) == strlen(name) &&
                    strncmp(props[i], name, strlen(name)) == 0)
                        return 0;
        }
        return sl_kafka_conf_set(conf, name, value, errstr, errstr_size);
}

const char *sl_kafka_brokers(void)
{
        return brokers_used;
}

rd_kafka_t *sl_kafka_producer_new(rd_kafka_conf_t *conf, char *errstr,
                                  size_t errstr_size)
{
        rd_kafka_t *rk;

        if (!conf) {
                conf = sl_kafka_conf_new("producer", errstr, errstr_size);
                if (!conf)
                        return NULL;
        }
        rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, errstr_size);
        if (!rk)
                rd_kafka_conf_destroy(conf);
        return rk;
}

rd_kafka_t *sl_kafka_consumer_new(rd_kafka_conf_t *conf, const char *group,
                                  char *errstr, size_t errstr_size)
{
        rd_kafka_t *rk;

        if (!conf) {
                conf = sl_kafka_conf_new("consumer", errstr, errstr_size);
                if (!conf)
                        return NULL;
        }
        if (sl_kafka_conf_set(conf, "group.id", group, errstr, errstr_size) <
                0 ||
            sl_kafka_conf_set(conf, "enable.auto.commit", "false", errstr,
                              errstr_size) < 0 ||
            sl_kafka_conf_set(conf, "auto.offset.reset", "earliest", errstr,
                              errstr_size) < 0) {
                rd_kafka_conf_destroy(conf);
                return NULL;
        }
        rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, errstr_size);
        if (!rk) {
                rd_kafka_conf_destroy(conf);
                return NULL;
        }
        rd_kafka_poll_set_consumer(rk);
        return rk;
}

int sl_kafka_resolve_beginnings(rd_kafka_t *rk,
                                rd_kafka_topic_partition_list_t *parts,
                                int timeout_ms, int *asked)
{
        int64_t until = sl_now_ms() + timeout_ms;
        int found = 0;

        *asked = 0;
        for (int i = 0; i < parts->cnt && sl_now_ms() < until; i++) {
                rd_kafka_topic_partition_t *tp = &parts->elems[i];
                int64_t low = -1, high = -1;

                if (tp->offset != RD_KAFKA_OFFSET_BEGINNING)
                        continue;
                (*asked)++;
                if (rd_kafka_query_watermark_offsets(
                        rk, tp->topic, tp->partition, &low, &high,
                        (int)(until - sl_now_ms())) == 0 &&
                    high > low) {
                        tp->offset = low;
                        found++;
                }
        }
        return found;
}

int sl_kafka_ping(rd_kafka_t *rk, int timeout_ms, char *errstr,
                  size_t errstr_size)
{
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t err;

        err = rd_kafka_metadata(rk, 0, NULL, &md, timeout_ms);
        if (err) {
                char why[sizeof(last_fail)];

                pthread_mutex_lock(&last_fail_lock);
                snprintf(why, sizeof(why), "%s", last_fail);
                pthread_mutex_unlock(&last_fail_lock);
                snprintf(errstr, errstr_size,
                         "could not reach kafka brokers %s: %s%s%s%s",
                         sl_kafka_brokers(), rd_kafka_err2str(err),
                         why[0] ? " (last: " : "", why, why[0] ? ")" : "");
                return -1;
        }
        rd_kafka_metadata_destroy(md);
        return 0;
}

rd_kafka_resp_err_t sl_kafka_produce(rd_kafka_t *rk, const char *topic,
                                     int32_t partition, const void *key,
                                     size_t key_len, const void *value,
                                     size_t value_len, rd_kafka_headers_t *hdrs,
                                     void *opaque)
{
        return sl_kafka_produce_flags(rk, topic, partition, key, key_len, value,
                                      value_len, hdrs, opaque,
                                      RD_KAFKA_MSG_F_COPY);
}

rd_kafka_resp_err_t sl_kafka_produce_flags(rd_kafka_t *rk, const char *topic,
                                           int32_t partition, const void *key,
                                           size_t key_len, const void *value,
                                           size_t value_len,
                                           rd_kafka_headers_t *hdrs,
                                           void *opaque, int msgflags)
{
        rd_kafka_resp_err_t err;

        for (;;) {
                err = rd_kafka_producev(
                    rk, RD_KAFKA_V_TOPIC(topic),
                    RD_KAFKA_V_PARTITION(partition),
                    RD_KAFKA_V_MSGFLAGS(msgflags), RD_KAFKA_V_KEY(key, key_len),
                    RD_KAFKA_V_VALUE((void *)(uintptr_t)value, value_len),
                    RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(opaque),
                    RD_KAFKA_V_END);
                if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
                        break;
                /* Back pressure: serve delivery reports to make room. */
                rd_kafka_poll(rk, 100);
        }
        if (err && hdrs)
                rd_kafka_headers_destroy(hdrs);
        rd_kafka_poll(rk, 0);
        return err;
}

int sl_kafka_flush(rd_kafka_t *rk, int timeout_ms)
{
        rd_kafka_flush(rk, timeout_ms);
        return rd_kafka_outq_len(rk);
}

char *sl_kafka_header_dup(const rd_kafka_message_t *rkm, const char *name)
{
        rd_kafka_headers_t *hdrs = NULL;
        const void *val = NULL;
        size_t size = 0;

        if (rd_kafka_message_headers(rkm, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR)
                return NULL;
        if (rd_kafka_header_get_last(hdrs, name, &val, &size) !=
                RD_KAFKA_RESP_ERR_NO_ERROR ||
            !val)
                return NULL;
        return sl_strndup(val, size);
}

void sl_kafka_header_add(rd_kafka_headers_t *hdrs, const char *name,
                         const char *value)
{
        rd_kafka_header_add(hdrs, name, -1, value, -1);
}

rd_kafka_topic_partition_list_t *
sl_kafka_offsets_after(rd_kafka_message_t *const *msgs, size_t n)
{
        rd_kafka_topic_partition_list_t *offs =
            rd_kafka_topic_partition_list_new((int)n);

        for (size_t i = 0; i < n; i++) {
                const char *t = rd_kafka_topic_name(msgs[i]->rkt);
                rd_kafka_topic_partition_t *p =
                    rd_kafka_topic_partition_list_find(offs, t,
                                                       msgs[i]->partition);
                if (!p)
                        p = rd_kafka_topic_partition_list_add(
                            offs, t, msgs[i]->partition);
                if (msgs[i]->offset + 1 > p->offset)
                        p->offset = msgs[i]->offset + 1;
        }
        return offs;
}
