/* test_load_arena: a loader batch's envelopes live in its arena
 * (sl_arena.h) and go with it when the batch is cleared, without a walk
 * of their trees. Nothing may stay behind: neither the arena's blocks too
 * big for a chunk (a 300 KB string, an array of 40 000 members) nor the
 * envelopes' copies and trees, round after round. Counted with glibc's
 * mallinfo2; under AddressSanitizer the arena is off (every block its own
 * malloc, and LeakSanitizer counts them), which is checked instead. */
#include "load_batch.h"
#include "sl_arena.h"
#include "sl_util.h"
#include "tap.h"

#include <malloc.h>
#include <stdlib.h>
#include <string.h>

/* Bytes in use from the heap, mmapped blocks included. */
static size_t in_use(void)
{
        struct mallinfo2 m = mallinfo2();

        return m.uordblks + m.hblkhd;
}

#if !defined(__SANITIZE_ADDRESS__)
/* Fills a with a 300 KB string and an array of 40 000 integers. */
static int make_big(struct sl_arena *a, const char *big)
{
        json_t *s, *arr;

        sl_arena_enter(a);
        s = json_string(big);
        arr = json_array();
        for (int i = 0; i < 40000; i++)
                json_array_append_new(arr, json_integer(i));
        sl_arena_leave();
        return s && json_string_length(s) == strlen(big) &&
               json_array_size(arr) == 40000;
}

static void test_big_blocks(void)
{
        struct sl_arena a = {0};
        size_t before, during, after;
        char *big = sl_malloc(300 * 1024 + 1);
        int ok;

        memset(big, 'x', 300 * 1024);
        big[300 * 1024] = '\0';
        /* a first round fills the pool of chunks, which stays */
        ok = make_big(&a, big);
        sl_arena_free(&a);
        before = in_use();
        ok &= make_big(&a, big);
        during = in_use();
        TAP_OK(ok, "big values are made in the arena");
        TAP_OK(during > before + 300 * 1024,
               "they hold memory besides the pooled chunks (%zu bytes more)",
               during - before);
        /* dropped without json_decref: the arena frees them */
        sl_arena_free(&a);
        after = in_use();
        TAP_OK(after <= before + 4096,
               "sl_arena_free frees blocks too big for a chunk (%zd bytes "
               "left)",
               (ssize_t)(after - before));
        free(big);
}

/* Freed chunks stay pooled for the next batches, until an idle worker's
 * sl_mem_release hands them back. */
static void test_pool_release(void)
{
        struct sl_arena a = {0};
        size_t before, pooled, after;

        sl_mem_release();
        before = in_use();
        sl_arena_enter(&a);
        for (int i = 0; i < 200000; i++)
                json_decref(json_integer(i)); /* left to the arena */
        for (int i = 0; i < 20000; i++)
                json_string(
                    "a string of some length, in the arena"); /* ditto */
        sl_arena_leave();
        sl_arena_free(&a);
        pooled = in_use();
        TAP_OK(pooled > before + 4 * 1024 * 1024,
               "freed chunks stay pooled (%zu -> %zu bytes in use)", before,
               pooled);
        sl_mem_release();
        after = in_use();
        TAP_OK(after + 4 * 1024 * 1024 < pooled,
               "sl_mem_release hands them back (%zu -> %zu)", pooled, after);
}
#endif

/* A batch of n envelopes with a row of a few columns, a raw metric
 * object, and one big value. */
static void fill(struct load_batch *b, int n, int round)
{
        size_t bigl = 200 * 1024;
        char *big = sl_malloc(bigl + 1);

        memset(big, 'd', bigl);
        big[bigl] = '\0';
        for (int i = 0; i < n; i++) {
                rd_kafka_message_t rkm;
                char key[64];
                char *v = sl_asprintf(
                    "{\"v\":1,\"table\":\"t\",\"op\":\"upsert\","
                    "\"key\":{\"id\":\"K-%d-%d\"},\"row\":{\"id\":\"K-%d-%d\","
                    "\"n\":%d,\"m\":{\"score\":7.3,\"v\":[1,2,3]},"
                    "\"d\":\"%s\"},\"lineage\":{\"source\":\"test\"}}",
                    round, i, round, i, i, i == 0 ? big : "short");

                memset(&rkm, 0, sizeof(rkm));
                snprintf(key, sizeof(key), "K-%d-%d", round, i);
                rkm.key = key;
                rkm.key_len = strlen(key);
                rkm.payload = v;
                rkm.len = strlen(v);
                rkm.partition = i % 3;
                rkm.offset = i;
                load_batch_add(b, &rkm);
                free(v);
        }
        free(big);
}

static void test_batch_rounds(int count)
{
        struct load_batch *b = load_batch_new("mapped.t");
        size_t first, last = 0;
        int ok = 1;

        fill(b, 500, 0);
        TAP_OK(b->n == 500 && b->units[0].env &&
                   b->units[0].state == LOAD_UNIT_PENDING &&
                   strcmp(b->units[0].dkey, "k{\"id\":\"K-0-0\"}") == 0,
               "500 envelopes parsed (first dedupe key %s)",
               b->n ? b->units[0].dkey : "-");
        load_batch_clear(b);
        first = in_use();
        for (int r = 1; r <= 30; r++) {
                fill(b, 500, r);
                ok &= b->n == 500;
                load_batch_clear(b);
                last = in_use();
        }
        TAP_OK(ok && b->n == 0, "30 more rounds of 500, each cleared");
        if (count) /* else LeakSanitizer counts */
                TAP_OK(
                    last <= first + 64 * 1024,
                    "memory after 30 rounds stays where it was after the first "
                    "(%zu then %zu bytes)",
                    first, last);
        load_batch_destroy(b);
}

int main(void)
{
        sl_arena_install();
#if defined(__SANITIZE_ADDRESS__)
        TAP_OK(!sl_arena_active(), "under AddressSanitizer the arena is off");
        test_batch_rounds(0);
#else
        TAP_OK(sl_arena_active(), "the arena is installed");
        test_big_blocks();
        test_batch_rounds(1);
        test_pool_release();
#endif
        return tap_failed != 0;
}
