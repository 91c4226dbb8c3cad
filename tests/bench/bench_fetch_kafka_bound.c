/* bench_fetch_kafka_bound: the bound of the fetch case "into Kafka". The
 * same pages fetched and published, the two overlapped in one process, the
 * fastest way known: libcurl's multi interface runs CONCURRENCY transfers
 * at once over kept-alive connections (as `curl --parallel --parallel-max`
 * and sluice's source, concurrency 4, do), each body lands in one buffer,
 * and the moment a page is complete it is produced, cut into pieces of at
 * most PIECE_BYTES (sluice's message size), each message referencing its
 * piece of the page (no copy), with sluice's own producer settings
 * (sl_kafka_conf_new: idempotence, LZ4, linger 50 ms), while the other
 * transfers go on; the clock stops when the last message is delivered.
 * Nothing is checked, parsed or split on JSON boundaries, so this is the
 * least a fetcher that must get the pages into Kafka does. The producer's
 * metadata, connection and idempotent producer id are in place before the
 * clock starts, as a fetcher's are before its sync. Each page lands in
 * memory taken at its Content-Length (never realloc'ed: a first version
 * that realloc'ed each page spent 45 % of its CPU clearing and faulting
 * pages), freed the moment its last piece is delivered; as in the
 * fetcher, glibc serves megabyte blocks from its heap and keeps what is
 * freed (M_MMAP_THRESHOLD, M_TRIM_THRESHOLD), so later pages and
 * librdkafka's compression buffers reuse memory already touched instead
 * of mapping fresh pages (on this VM first touch costs ~2.5 ms per MB).
 * SLAB_MB > 0 carves the pages from one block reserved before the clock
 * instead, kept to the end. History (issue 22, second pass): a version
 * touched that block before its clock, leaving the faults out of the
 * bound alone; then, with the faults in its clock but without the heap
 * settings, the fetcher measured 1.2 x the bound (14.5k page faults in
 * the bound's run against 8-10k in the fetcher's whole process). libcurl reads
 * 512 KiB at a time, as sluice's fetcher does (fewer reads and callbacks than
 * 16 KiB). The old bound (curl into files, then a kcat process publishing them)
 * summed the two with no overlap and paid kcat's start-up: it stays in the
 * table as a peer.
 *
 * usage: bench_fetch_kafka_bound TOPIC CONCURRENCY PIECE_BYTES SLAB_MB
 *        URL...
 *   SLUICE_BROKERS the cluster; SLAB_MB 0 (the bound): each page malloc'ed
 *   at its Content-Length, freed on delivery; a page that does not fit in
 *   what is left of SLAB_MB, or has no Content-Length, grows by realloc
 * prints one line: pages=N bytes=N messages=N fetched_s=X wall_s=Y cpu_s=Z
 * (fetched_s: when the last page was in; cpu_s: the process's CPU, all
 * threads, over the timed part). Exit 1 when a page fails or a message is
 * not delivered. */
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "sl_kafka.h"
#include "sl_util.h"

struct page {
        char *data;
        size_t len, cap;
        int index;
        int in_slab;  /* data is in the slab, not malloc'ed */
        int done;     /* fetched and produced */
        long pending; /* its messages not yet delivered */
        CURL *easy;
};

static long delivered, failed;
static char *slab; /* SLAB_MB, reserved before the clock, not touched */
static size_t slab_size, slab_used;

static double now_s(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Frees a page once it is produced and all its pieces are delivered. */
static void page_release(struct page *pg)
{
        if (!pg->done || pg->pending > 0 || pg->in_slab || !pg->data)
                return;
        free(pg->data);
        pg->data = NULL;
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
        struct page *pg = m->_private;

        (void)rk;
        (void)opaque;
        if (pg) {
                pg->pending--;
                page_release(pg);
        }
        if (m->err) {
                if (failed++ == 0)
                        fprintf(stderr,
                                "bench_fetch_kafka_bound: not delivered: %s\n",
                                rd_kafka_err2str(m->err));
        } else {
                delivered++;
        }
}

static size_t on_body(char *p, size_t size, size_t n, void *opaque)
{
        struct page *pg = opaque;
        size_t len = size * n;
        curl_off_t cl = -1;

        if (!pg->data &&
            curl_easy_getinfo(pg->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T,
                              &cl) == CURLE_OK &&
            cl > 0) {
                if ((size_t)cl <= slab_size - slab_used) {
                        pg->data = slab + slab_used;
                        pg->in_slab = 1;
                        slab_used += (size_t)cl;
                        pg->cap = (size_t)cl;
                } else {
                        pg->data = sl_malloc((size_t)cl);
                        pg->cap = (size_t)cl;
                }
        }
        if (pg->len + len > pg->cap) {
                size_t cap = pg->cap ? pg->cap : (size_t)1 << 20;
                char *d;
                while (cap < pg->len + len)
                        cap *= 2;
                if (pg->in_slab) {
                        d = sl_malloc(cap);
                        memcpy(d, pg->data, pg->len);
                        pg->in_slab = 0;
                } else {
                        d = sl_realloc(pg->data, cap);
                }
                pg->data = d;
                pg->cap = cap;
        }
        memcpy(pg->data + pg->len, p, len);
        pg->len += len;
        return len;
}

/* Waits until want messages have a delivery report. 0, or -1. */
static int drain(rd_kafka_t *rk, long want)
{
        double give_up = now_s() + 60;

        while (delivered + failed < want && now_s() < give_up)
                rd_kafka_poll(rk, 10);
        return delivered + failed == want && failed == 0 ? 0 : -1;
}

/* Produces page pg in pieces of at most piece bytes. 0, or -1. */
static int publish(rd_kafka_t *rk, const char *topic, struct page *pg,
                   size_t piece, long *messages)
{
        char key[64];

        for (size_t off = 0, k = 0; off < pg->len || k == 0;
             off += piece, k++) {
                size_t len = pg->len - off < piece ? pg->len - off : piece;
                rd_kafka_resp_err_t err;

                snprintf(key, sizeof(key), "bound:%d:%zu", pg->index, k);
                for (;;) {
                        err = sl_kafka_produce_flags(
                            rk, topic, RD_KAFKA_PARTITION_UA, key, strlen(key),
                            pg->data + off, len, NULL, pg, 0);
                        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
                                break;
                        rd_kafka_poll(rk, 10);
                }
                if (err) {
                        fprintf(stderr,
                                "bench_fetch_kafka_bound: cannot produce: "
                                "%s\n",
                                rd_kafka_err2str(err));
                        return -1;
                }
                (*messages)++;
                pg->pending++;
                if (pg->len == 0)
                        break;
        }
        return 0;
}

int main(int argc, char **argv)
{
        char errstr[512];
        const char *topic;
        struct page *pages = NULL;
        CURL **easy = NULL;
        CURLM *multi = NULL;
        rd_kafka_conf_t *conf;
        rd_kafka_t *rk = NULL;
        long long conc, piece, slab_mb;
        long messages = 0, left;
        size_t bytes = 0;
        double w0, w_fetched = 0, w1;
        int64_t c0, c1;
        int n, running = 0, rc = 1;

        if (argc < 6 || sl_parse_ll(argv[2], &conc) < 0 || conc < 1 ||
            sl_parse_ll(argv[3], &piece) < 0 || piece < 1 ||
            sl_parse_ll(argv[4], &slab_mb) < 0 || slab_mb < 0) {
                fprintf(stderr, "usage: bench_fetch_kafka_bound TOPIC "
                                "CONCURRENCY PIECE_BYTES SLAB_MB "
                                "URL...\n");
                return 2;
        }
        topic = argv[1];
        n = argc - 5;
        /* megabyte blocks from the heap, freed memory kept (as the
         * fetcher does in fetch_main.c) */
        mallopt(M_MMAP_THRESHOLD, 64 << 20);
        mallopt(M_TRIM_THRESHOLD, 256 << 20);
        slab_size = (size_t)slab_mb << 20;
        if (slab_size)
                slab = sl_malloc(slab_size);
        conf = sl_kafka_conf_new("producer", errstr, sizeof(errstr));
        if (!conf) {
                fprintf(stderr, "bench_fetch_kafka_bound: %s\n", errstr);
                return 1;
        }
        rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
        rk = sl_kafka_producer_new(conf, errstr, sizeof(errstr));
        if (!rk) {
                fprintf(stderr, "bench_fetch_kafka_bound: %s\n", errstr);
                return 1;
        }
        if (sl_kafka_produce(rk, topic, RD_KAFKA_PARTITION_UA, "warm-up", 7,
                             "{}", 2, NULL,
                             NULL) != RD_KAFKA_RESP_ERR_NO_ERROR ||
            drain(rk, 1) < 0) {
                fprintf(stderr,
                        "bench_fetch_kafka_bound: warm-up message to %s "
                        "not delivered\n",
                        topic);
                goto out;
        }
        curl_global_init(CURL_GLOBAL_DEFAULT);
        multi = curl_multi_init();
        curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)conc);
        curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)conc);
        pages = sl_calloc((size_t)n, sizeof(*pages));
        easy = sl_calloc((size_t)n, sizeof(*easy));

        w0 = now_s();
        c0 = sl_cpu_ms();
        for (int i = 0; i < n; i++) {
                pages[i].index = i;
                easy[i] = curl_easy_init();
                pages[i].easy = easy[i];
                curl_easy_setopt(easy[i], CURLOPT_URL, argv[i + 5]);
                curl_easy_setopt(easy[i], CURLOPT_BUFFERSIZE, 512L * 1024L);
                curl_easy_setopt(easy[i], CURLOPT_WRITEFUNCTION, on_body);
                curl_easy_setopt(easy[i], CURLOPT_WRITEDATA, &pages[i]);
                curl_easy_setopt(easy[i], CURLOPT_PRIVATE, &pages[i]);
                curl_easy_setopt(easy[i], CURLOPT_FAILONERROR, 1L);
                curl_multi_add_handle(multi, easy[i]);
        }
        left = n;
        while (left > 0) {
                CURLMsg *msg;
                int q;

                curl_multi_perform(multi, &running);
                while ((msg = curl_multi_info_read(multi, &q))) {
                        struct page *pg;

                        if (msg->msg != CURLMSG_DONE)
                                continue;
                        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE,
                                          (char **)&pg);
                        if (msg->data.result != CURLE_OK) {
                                fprintf(stderr,
                                        "bench_fetch_kafka_bound: %s: %s\n",
                                        argv[pg->index + 5],
                                        curl_easy_strerror(msg->data.result));
                                goto out;
                        }
                        left--;
                        bytes += pg->len;
                        if (publish(rk, topic, pg, (size_t)piece, &messages) <
                            0)
                                goto out;
                        pg->done = 1;
                        page_release(pg);
                }
                rd_kafka_poll(rk, 0);
                if (left > 0)
                        curl_multi_poll(multi, NULL, 0, 100, NULL);
        }
        w_fetched = now_s();
        rd_kafka_flush(rk, 60000);
        if (drain(rk, 1 + messages) < 0) {
                fprintf(stderr,
                        "bench_fetch_kafka_bound: %ld of %ld messages "
                        "delivered\n",
                        delivered - 1, messages);
                goto out;
        }
        w1 = now_s();
        c1 = sl_cpu_ms();
        printf("pages=%d bytes=%zu messages=%ld fetched_s=%.4f wall_s=%.4f "
               "cpu_s=%.4f\n",
               n, bytes, messages, w_fetched - w0, w1 - w0,
               (double)(c1 - c0) / 1e3);
        rc = 0;
out:
        if (easy) {
                for (int i = 0; i < n; i++) {
                        if (!easy[i])
                                continue;
                        curl_multi_remove_handle(multi, easy[i]);
                        curl_easy_cleanup(easy[i]);
                }
                free(easy);
        }
        if (multi)
                curl_multi_cleanup(multi);
        if (rk)
                rd_kafka_destroy(rk);
        if (pages) {
                for (int i = 0; i < n; i++)
                        if (!pages[i].in_slab)
                                free(pages[i].data);
                free(pages);
        }
        free(slab);
        return rc;
}
