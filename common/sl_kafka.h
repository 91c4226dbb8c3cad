/* sl_kafka: librdkafka client setup shared by every role: bootstrap servers
 * from SLUICE_BROKERS, any property as SLUICE_KAFKA_<PROP> or --kafka
 * prop=value, librdkafka's logs forwarded to sl_log, produce with back
 * pressure, bounded flush. */
#ifndef SL_KAFKA_H
#define SL_KAFKA_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

/* Up to this many --kafka prop=value overrides per process. */
#define SL_KAFKA_MAX_PROPS 64

/* Records a `--kafka prop=value` argument for the next sl_kafka_conf_new().
 * Returns 0, or -1 (with errstr) when it is not of the form prop=value. */
int sl_kafka_prop_add(const char *arg, char *errstr, size_t errstr_size);

/* New configuration with, in order: sluice's defaults for the role
 * ("producer" or "consumer"), bootstrap.servers from SLUICE_BROKERS
 * (default localhost:9092), SLUICE_KAFKA_<PROP> variables (PROP upper case
 * with '_' for '.', e.g. SLUICE_KAFKA_SECURITY_PROTOCOL), then --kafka
 * arguments. Log and error callbacks forward to sl_log. New; free with
 * rd_kafka_conf_destroy() unless handed to rd_kafka_new(). NULL and errstr
 * when a property is rejected. */
rd_kafka_conf_t *sl_kafka_conf_new(const char *kind, char *errstr,
                                   size_t errstr_size);

/* The consumers' queued.max.messages.kbytes unless the user sets one. */
#define SL_KAFKA_CONSUMER_QUEUE_KB "4096"

/* Sets name to value unless the user set it (SLUICE_KAFKA_<NAME> or
 * --kafka name=...): a role's own default that the user may override.
 * 0, or -1 with errstr. */
int sl_kafka_conf_default(rd_kafka_conf_t *conf, const char *name,
                          const char *value, char *errstr, size_t errstr_size);

/* Sets one property; 0 or -1 with errstr naming the property. */
int sl_kafka_conf_set(rd_kafka_conf_t *conf, const char *name,
                      const char *value, char *errstr, size_t errstr_size);

/* Makes every configuration from sl_kafka_conf_new() emit librdkafka
 * statistics every ms milliseconds into sl_metrics (consumer lag, brokers
 * up); 0 (the default) leaves statistics off. */
void sl_kafka_stats_interval(int ms);

/* The bootstrap servers in use (borrowed; valid for the process). */
const char *sl_kafka_brokers(void);

/* New idempotent producer (lz4, acks=all); conf is taken over when
 * non-NULL (conf = NULL on the caller's next line). NULL with errstr. */
rd_kafka_t *sl_kafka_producer_new(rd_kafka_conf_t *conf, char *errstr,
                                  size_t errstr_size);

/* New consumer in group `group` with auto-commit off and
 * auto.offset.reset=earliest; conf is taken over when non-NULL. */
rd_kafka_t *sl_kafka_consumer_new(rd_kafka_conf_t *conf, const char *group,
                                  char *errstr, size_t errstr_size);

/* The offsets to commit after msgs[0..n): per topic and partition, one
 * past the highest offset among them. New; the caller destroys it. */
rd_kafka_topic_partition_list_t *
sl_kafka_offsets_after(rd_kafka_message_t *const *msgs, size_t n);

/* Gives each partition of parts still at RD_KAFKA_OFFSET_BEGINNING the
 * concrete offset where it begins, its low watermark, so that a consumer
 * assigned them starts fetching them all at once (librdkafka 2.0.2 looks a
 * logical offset up partition by partition after the assignment, and a
 * partition resolved late waits out the long poll of one resolved early:
 * up to a second in the bench). The low watermark is the beginning
 * exactly (a lookup by timestamp 0 would skip records without one). Within
 * timeout_ms in all; an empty partition, a failed request or the time
 * running out keeps the logical offset. Returns how many were resolved and
 * sets *asked to how many were at the beginning. */
int sl_kafka_resolve_beginnings(rd_kafka_t *rk,
                                rd_kafka_topic_partition_list_t *parts,
                                int timeout_ms, int *asked);

/* Checks that the cluster answers a metadata request within timeout_ms.
 * 0, or -1 with errstr naming the brokers it tried and the last connection
 * failure librdkafka logged (refused, TLS handshake, SASL), if any. */
int sl_kafka_ping(rd_kafka_t *rk, int timeout_ms, char *errstr,
                  size_t errstr_size);

/* Produces a copy of value/key with headers (taken over by librdkafka on
 * success, destroyed here on failure; may be NULL). Waits and retries while
 * the local queue is full, polling for delivery reports. opaque reaches
 * the delivery report callback. Returns 0 or the librdkafka error. */
rd_kafka_resp_err_t sl_kafka_produce(rd_kafka_t *rk, const char *topic,
                                     int32_t partition, const void *key,
                                     size_t key_len, const void *value,
                                     size_t value_len, rd_kafka_headers_t *hdrs,
                                     void *opaque);
/* The same with librdkafka's message flags: RD_KAFKA_MSG_F_FREE hands a
 * malloc'ed value over on success (the caller keeps it on failure). */
rd_kafka_resp_err_t sl_kafka_produce_flags(rd_kafka_t *rk, const char *topic,
                                           int32_t partition, const void *key,
                                           size_t key_len, const void *value,
                                           size_t value_len,
                                           rd_kafka_headers_t *hdrs,
                                           void *opaque, int msgflags);

/* Flushes for at most timeout_ms; returns the number of messages still
 * undelivered (0 is success). */
int sl_kafka_flush(rd_kafka_t *rk, int timeout_ms);

/* The value of header `name` as a new NUL-terminated string (free with
 * free()), or NULL when absent. */
char *sl_kafka_header_dup(const rd_kafka_message_t *rkm, const char *name);

/* Adds a NUL-terminated string header. */
void sl_kafka_header_add(rd_kafka_headers_t *hdrs, const char *name,
                         const char *value);

#endif
