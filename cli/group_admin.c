/* group_admin: a consumer group seen and moved through Kafka's Admin API,
 * never by joining it (group_admin.h). */
#include "group_admin.h"
#include "sl_util.h"

#include <stdio.h>
#include <string.h>

/* Whether err is a cluster's "I do not serve this request". */
static int unsupported(rd_kafka_resp_err_t err)
{
        return err == RD_KAFKA_RESP_ERR__UNSUPPORTED_FEATURE ||
               err == RD_KAFKA_RESP_ERR_UNSUPPORTED_VERSION ||
               err == RD_KAFKA_RESP_ERR_INVALID_REQUEST;
}

/* Waits for the one result of an Admin call on q. New event, or NULL
 * (errstr) when none came within timeout_ms. */
static rd_kafka_event_t *wait_result(rd_kafka_queue_t *q, int timeout_ms,
                                     const char *what, char *errstr,
                                     size_t errstr_size)
{
        rd_kafka_event_t *ev = rd_kafka_queue_poll(q, timeout_ms + 1000);

        if (!ev)
                snprintf(errstr, errstr_size, "%s: no answer within %d ms",
                         what, timeout_ms);
        return ev;
}

static rd_kafka_AdminOptions_t *options(rd_kafka_t *rk, rd_kafka_admin_op_t op,
                                        int timeout_ms)
{
        rd_kafka_AdminOptions_t *o = rd_kafka_AdminOptions_new(rk, op);
        char e[128];

        rd_kafka_AdminOptions_set_request_timeout(o, timeout_ms, e, sizeof(e));
        return o;
}

enum group_admin_rc group_admin_describe(rd_kafka_t *rk, const char *group,
                                         int timeout_ms, struct group_info *gi,
                                         char *errstr, size_t errstr_size)
{
        rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
        rd_kafka_AdminOptions_t *o =
            options(rk, RD_KAFKA_ADMIN_OP_DESCRIBECONSUMERGROUPS, timeout_ms);
        rd_kafka_event_t *ev = NULL;
        const rd_kafka_DescribeConsumerGroups_result_t *res;
        const rd_kafka_ConsumerGroupDescription_t **groups;
        const rd_kafka_ConsumerGroupDescription_t *g;
        const rd_kafka_error_t *gerr;
        enum group_admin_rc rc = GROUP_ADMIN_FAILED;
        rd_kafka_resp_err_t err;
        size_t n = 0, used = 0;

        memset(gi, 0, sizeof(*gi));
        rd_kafka_DescribeConsumerGroups(rk, &group, 1, o, q);
        ev = wait_result(q, timeout_ms, "describe group", errstr, errstr_size);
        if (!ev)
                goto out;
        err = rd_kafka_event_error(ev);
        if (err) {
                snprintf(errstr, errstr_size, "describe group %s: %s", group,
                         rd_kafka_event_error_string(ev));
                rc = unsupported(err) ? GROUP_ADMIN_UNSUPPORTED
                                      : GROUP_ADMIN_FAILED;
                goto out;
        }
        res = rd_kafka_event_DescribeConsumerGroups_result(ev);
        groups =
            res ? rd_kafka_DescribeConsumerGroups_result_groups(res, &n) : NULL;
        if (n != 1) {
                snprintf(errstr, errstr_size,
                         "describe group %s: %zu groups in the answer", group,
                         n);
                goto out;
        }
        g = groups[0];
        gerr = rd_kafka_ConsumerGroupDescription_error(g);
        if (gerr && rd_kafka_error_code(gerr)) {
                snprintf(errstr, errstr_size, "describe group %s: %s", group,
                         rd_kafka_error_string(gerr));
                rc = unsupported(rd_kafka_error_code(gerr))
                         ? GROUP_ADMIN_UNSUPPORTED
                         : GROUP_ADMIN_FAILED;
                goto out;
        }
        snprintf(gi->state, sizeof(gi->state), "%s",
                 rd_kafka_consumer_group_state_name(
                     rd_kafka_ConsumerGroupDescription_state(g)));
        gi->dead = rd_kafka_ConsumerGroupDescription_state(g) ==
                   RD_KAFKA_CONSUMER_GROUP_STATE_DEAD;
        gi->members = rd_kafka_ConsumerGroupDescription_member_count(g);
        for (size_t i = 0; i < gi->members && used < sizeof(gi->who); i++) {
                const rd_kafka_MemberDescription_t *m =
                    rd_kafka_ConsumerGroupDescription_member(g, i);
                const char *host = rd_kafka_MemberDescription_host(m);
                int w;

                /* Kafka gives the host as Java's InetAddress prints it,
                 * "/10.0.0.7": the address is what a person looks for */
                if (host && host[0] == '/')
                        host++;
                w = snprintf(gi->who + used, sizeof(gi->who) - used, "%s%s@%s",
                             i ? ", " : "",
                             rd_kafka_MemberDescription_client_id(m),
                             host ? host : "?");
                if (w < 0)
                        break;
                used += (size_t)w;
        }
        rc = GROUP_ADMIN_OK;
out:
        if (ev)
                rd_kafka_event_destroy(ev);
        rd_kafka_AdminOptions_destroy(o);
        rd_kafka_queue_destroy(q);
        return rc;
}

enum group_admin_rc
group_admin_alter_offsets(rd_kafka_t *rk, const char *group,
                          const rd_kafka_topic_partition_list_t *target,
                          int timeout_ms, char *errstr, size_t errstr_size)
{
        rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
        rd_kafka_AdminOptions_t *o = options(
            rk, RD_KAFKA_ADMIN_OP_ALTERCONSUMERGROUPOFFSETS, timeout_ms);
        rd_kafka_AlterConsumerGroupOffsets_t *alter =
            rd_kafka_AlterConsumerGroupOffsets_new(group, target);
        rd_kafka_event_t *ev = NULL;
        const rd_kafka_AlterConsumerGroupOffsets_result_t *res;
        const rd_kafka_group_result_t **groups;
        const rd_kafka_topic_partition_list_t *parts;
        const rd_kafka_error_t *gerr;
        enum group_admin_rc rc = GROUP_ADMIN_FAILED;
        rd_kafka_resp_err_t err;
        size_t n = 0;

        rd_kafka_AlterConsumerGroupOffsets(rk, &alter, 1, o, q);
        ev = wait_result(q, timeout_ms, "alter group offsets", errstr,
                         errstr_size);
        if (!ev)
                goto out;
        err = rd_kafka_event_error(ev);
        if (err) {
                snprintf(errstr, errstr_size, "alter offsets of group %s: %s",
                         group, rd_kafka_event_error_string(ev));
                rc = unsupported(err) ? GROUP_ADMIN_UNSUPPORTED
                                      : GROUP_ADMIN_FAILED;
                goto out;
        }
        res = rd_kafka_event_AlterConsumerGroupOffsets_result(ev);
        groups = res ? rd_kafka_AlterConsumerGroupOffsets_result_groups(res, &n)
                     : NULL;
        if (n != 1) {
                snprintf(errstr, errstr_size,
                         "alter offsets of group %s: %zu groups in the answer",
                         group, n);
                goto out;
        }
        gerr = rd_kafka_group_result_error(groups[0]);
        if (gerr && rd_kafka_error_code(gerr)) {
                snprintf(errstr, errstr_size, "alter offsets of group %s: %s",
                         group, rd_kafka_error_string(gerr));
                rc = unsupported(rd_kafka_error_code(gerr))
                         ? GROUP_ADMIN_UNSUPPORTED
                         : GROUP_ADMIN_FAILED;
                goto out;
        }
        parts = rd_kafka_group_result_partitions(groups[0]);
        for (int i = 0; parts && i < parts->cnt; i++) {
                const rd_kafka_topic_partition_t *tp = &parts->elems[i];
                if (!tp->err)
                        continue;
                snprintf(errstr, errstr_size,
                         "alter offsets of group %s: %s[%d]: %s", group,
                         tp->topic, (int)tp->partition,
                         rd_kafka_err2str(tp->err));
                rc = unsupported(tp->err) ? GROUP_ADMIN_UNSUPPORTED
                                          : GROUP_ADMIN_FAILED;
                goto out;
        }
        rc = GROUP_ADMIN_OK;
out:
        if (ev)
                rd_kafka_event_destroy(ev);
        rd_kafka_AlterConsumerGroupOffsets_destroy(alter);
        rd_kafka_AdminOptions_destroy(o);
        rd_kafka_queue_destroy(q);
        return rc;
}

const char *group_admin_offset_str(int64_t offset, char *buf, size_t size)
{
        if (offset == RD_KAFKA_OFFSET_INVALID)
                snprintf(buf, size, "none");
        else if (offset == RD_KAFKA_OFFSET_BEGINNING)
                snprintf(buf, size, "earliest");
        else if (offset == RD_KAFKA_OFFSET_END)
                snprintf(buf, size, "latest");
        else
                snprintf(buf, size, "%lld", (long long)offset);
        return buf;
}
