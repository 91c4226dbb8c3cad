/* sl_loss: messages a consumer never read because the broker no longer
 * had them (retention, or the embedded broker's bounded partitions). A
 * loss is never silent: an err event, sluice_messages_lost_total{topic},
 * a record on SL_LOSS_TOPIC that `sluice status` lists, and /readyz
 * answering 503 until an operator acknowledges it (`sluice status
 * --ack-loss`, a commit of SL_LOSS_ACK_GROUP on SL_LOSS_TOPIC).
 *
 * Detection (struct sl_gaps): a consumer of a topic that is neither
 * compacted nor transactional sees contiguous offsets; when a message's
 * offset jumps past the next one expected and the partition's log start
 * (low watermark) is above that expected offset, the messages between were
 * deleted before they were read. librdkafka resets an out-of-range
 * position to the earliest offset by itself (auto.offset.reset=earliest),
 * so the jump is exactly what was lost. */
#ifndef SL_LOSS_H
#define SL_LOSS_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

#define SL_LOSS_TOPIC     "sluice.data_loss"
#define SL_LOSS_ACK_GROUP "sluice-loss-ack"

/* Records that group lost messages first..first+count-1 of
 * topic[partition]: logs event=data_lost at err, adds count to
 * sluice_messages_lost_total{topic}, queues a record for SL_LOSS_TOPIC and
 * makes /readyz answer 503 until the loss is acknowledged. Blocks on
 * nothing: it may run inside a rebalance callback. Main thread only. */
void sl_loss_record(const char *group, const char *topic, int32_t partition,
                    int64_t first, int64_t count, const char *how);

/* Publishes the queued records to SL_LOSS_TOPIC (partition 0; its own
 * producer, made on the first loss) and waits for them (up to ~15 s, only
 * when something was queued). Call from the consumer's loop, outside any
 * librdkafka callback; returns at once when nothing is queued. A record
 * that cannot be published keeps /readyz at 503 until the worker restarts.
 * Main thread only. */
void sl_loss_publish(void);

/* For /readyz: 1 when no loss recorded by this process waits for an
 * acknowledgement, 0 (and why) otherwise. Checks the acknowledgement (the
 * committed offset of SL_LOSS_ACK_GROUP) at most every few seconds. Any
 * thread. */
int sl_loss_ready(char *why, size_t why_size);

/* Publishes what is still queued, then releases the handles made by the
 * functions above. */
void sl_loss_shutdown(void);

/* The next offset expected per partition of one consumer. */
struct sl_gaps;

/* New tracker for a consumer in group (copied); free with
 * sl_gaps_destroy. */
struct sl_gaps *sl_gaps_new(const char *group);
void sl_gaps_destroy(struct sl_gaps *g);

/* The offset the consumer will read next from topic[partition] (after an
 * assignment or a seek). A logical offset (< 0) makes the first message
 * read set it, unchecked. */
void sl_gaps_start(struct sl_gaps *g, const char *topic, int32_t partition,
                   int64_t offset);

/* The same for every partition of parts, at the offsets they carry, and
 * the check made when an assignment starts: a partition whose offset (a
 * committed or stored position, >= 0) is below the partition's low
 * watermark has lost the messages between (recorded) and is moved to the
 * low watermark, where it will read next. A partition still at
 * RD_KAFKA_OFFSET_BEGINNING expects its low watermark. Within timeout_ms
 * in all; a partition that cannot be asked in time is not checked. */
void sl_gaps_start_list(struct sl_gaps *g, rd_kafka_t *rk,
                        rd_kafka_topic_partition_list_t *parts, int timeout_ms);

/* Checks a consumed message (not an error) against the offset expected of
 * its partition and moves that on. A jump over offsets the broker no
 * longer keeps is recorded (sl_loss_record). Returns the messages lost
 * (0 almost always). rk is the consumer (its cached low watermark, else a
 * query of up to 2 s). */
int64_t sl_gaps_check(struct sl_gaps *g, rd_kafka_t *rk,
                      const rd_kafka_message_t *rkm);

#endif
