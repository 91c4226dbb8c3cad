/* group_admin: a consumer group seen and moved through Kafka's Admin API
 * (DescribeConsumerGroups, AlterConsumerGroupOffsets), never by joining
 * it: a read-only look at a live group must not rebalance its workers. */
#ifndef GROUP_ADMIN_H
#define GROUP_ADMIN_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>

/* What DescribeConsumerGroups tells of a group. */
struct group_info {
        char state[32]; /* "Stable", "Empty", "Dead", ... */
        int dead;       /* unknown to the cluster (Kafka says Dead) */
        size_t members; /* live members */
        char who[512];  /* "client.id@host, ..." of the members */
};

/* The answer of an Admin call: done, refused by a cluster that does not
 * serve it (librdkafka's mock cluster, very old brokers), or failed. */
enum group_admin_rc {
        GROUP_ADMIN_OK = 0,
        GROUP_ADMIN_UNSUPPORTED = 1,
        GROUP_ADMIN_FAILED = -1,
};

/* Describes group on rk's cluster (any kind of handle). On
 * GROUP_ADMIN_UNSUPPORTED and GROUP_ADMIN_FAILED errstr says why. */
enum group_admin_rc group_admin_describe(rd_kafka_t *rk, const char *group,
                                         int timeout_ms, struct group_info *gi,
                                         char *errstr, size_t errstr_size);

/* Sets group's committed offsets to target's (topic, partition, offset);
 * the cluster refuses it for a partition while the group is subscribed
 * to its topic. A partition's own error fails the whole call, named. */
enum group_admin_rc
group_admin_alter_offsets(rd_kafka_t *rk, const char *group,
                          const rd_kafka_topic_partition_list_t *target,
                          int timeout_ms, char *errstr, size_t errstr_size);

/* An offset as people read it: a number, or "none" where the group has
 * committed nothing (librdkafka's -1001), "earliest", "latest". buf has
 * at least 24 bytes; returns buf. */
const char *group_admin_offset_str(int64_t offset, char *buf, size_t size);

#endif
