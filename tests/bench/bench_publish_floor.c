/* bench_publish_floor: the fetch case's publish floor. Puts the bytes of a
 * sync's pages into Kafka with sluice's own producer settings and nothing
 * else: the pages are already in memory (read and touched before the
 * clock starts), nothing is fetched, checked, split or copied, and every
 * message references its piece of that memory. The time it takes is the
 * least any fetcher that publishes through librdkafka needs on this
 * machine, however fast its HTTP side, so bound_s / wall_s is the highest
 * "× bound" such a fetcher can reach against a bound that only fetches.
 *
 * usage: bench_publish_floor TOPIC PIECE...
 *   SLUICE_BROKERS the cluster; PIECE the pages cut in message-size files
 *   (the bench cuts them as sluice does, under max_message_bytes)
 * prints one line: messages=N bytes=N wall_s=X cpu_s=Y, cpu_s the process's
 * own CPU (all threads: the produce calls, LZ4 and the sends in
 * librdkafka's broker threads) over the timed part. Exit 1 when a message
 * is not delivered. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sl_kafka.h"
#include "sl_util.h"

struct piece {
        char *data;
        size_t len;
};

static long delivered, failed;

static double now_s(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
        (void)rk;
        (void)opaque;
        if (m->err) {
                if (failed++ == 0)
                        fprintf(stderr,
                                "bench_publish_floor: not delivered: %s\n",
                                rd_kafka_err2str(m->err));
        } else {
                delivered++;
        }
}

/* Reads a whole file into p (p->data new). 0, or -1 with a message. */
static int read_piece(const char *path, struct piece *p)
{
        FILE *f = fopen(path, "rb");
        long n;

        if (!f || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 ||
            fseek(f, 0, SEEK_SET) != 0) {
                fprintf(stderr, "bench_publish_floor: %s: %s\n", path,
                        strerror(errno));
                if (f)
                        fclose(f);
                return -1;
        }
        p->len = (size_t)n;
        p->data = sl_malloc(p->len ? p->len : 1);
        if (fread(p->data, 1, p->len, f) != p->len) {
                fprintf(stderr, "bench_publish_floor: %s: short read\n", path);
                fclose(f);
                return -1;
        }
        fclose(f);
        return 0;
}

/* Waits until every message produced so far has a delivery report. */
static int drain(rd_kafka_t *rk, long want)
{
        double give_up = now_s() + 60;

        while (delivered + failed < want && now_s() < give_up)
                rd_kafka_poll(rk, 10);
        return delivered + failed == want && failed == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
        char errstr[512], key[64];
        const char *topic;
        struct piece *pieces;
        rd_kafka_conf_t *conf;
        rd_kafka_t *rk;
        size_t bytes = 0;
        double w0, w1;
        int64_t c0, c1;
        int n;

        if (argc < 3) {
                fprintf(stderr, "usage: bench_publish_floor TOPIC PIECE...\n");
                return 2;
        }
        topic = argv[1];
        n = argc - 2;
        pieces = sl_calloc((size_t)n, sizeof(*pieces));
        for (int i = 0; i < n; i++) {
                if (read_piece(argv[i + 2], &pieces[i]) < 0)
                        return 1;
                bytes += pieces[i].len;
        }
        conf = sl_kafka_conf_new("producer", errstr, sizeof(errstr));
        if (!conf) {
                fprintf(stderr, "bench_publish_floor: %s\n", errstr);
                return 1;
        }
        rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
        rk = sl_kafka_producer_new(conf, errstr, sizeof(errstr));
        if (!rk) {
                fprintf(stderr, "bench_publish_floor: %s\n", errstr);
                return 1;
        }
        /* a delivered first message: metadata, connections and the
         * idempotent producer id are in place before the clock starts, as
         * they are before a fetcher's sync starts */
        if (sl_kafka_produce(rk, topic, RD_KAFKA_PARTITION_UA, "warm-up", 7,
                             "{}", 2, NULL,
                             NULL) != RD_KAFKA_RESP_ERR_NO_ERROR ||
            drain(rk, 1) < 0) {
                fprintf(stderr,
                        "bench_publish_floor: warm-up message to %s "
                        "not delivered\n",
                        topic);
                return 1;
        }
        w0 = now_s();
        c0 = sl_cpu_ms();
        for (int i = 0; i < n; i++) {
                /* a key of its own per message, as the fetcher's
                 * source:run:page:chunk, spreads them over the partitions */
                snprintf(key, sizeof(key), "floor:%d", i);
                if (sl_kafka_produce_flags(rk, topic, RD_KAFKA_PARTITION_UA,
                                           key, strlen(key), pieces[i].data,
                                           pieces[i].len, NULL, NULL,
                                           0) != RD_KAFKA_RESP_ERR_NO_ERROR) {
                        fprintf(stderr,
                                "bench_publish_floor: cannot produce "
                                "%s to %s\n",
                                argv[i + 2], topic);
                        return 1;
                }
        }
        rd_kafka_flush(rk, 60000);
        if (drain(rk, 1 + (long)n) < 0) {
                fprintf(stderr,
                        "bench_publish_floor: %ld of %d messages delivered\n",
                        delivered - 1, n);
                return 1;
        }
        w1 = now_s();
        c1 = sl_cpu_ms();
        printf("messages=%d bytes=%zu wall_s=%.4f cpu_s=%.4f\n", n, bytes,
               w1 - w0, (double)(c1 - c0) / 1e3);
        rd_kafka_destroy(rk);
        for (int i = 0; i < n; i++)
                free(pieces[i].data);
        free(pieces);
        return 0;
}
