/* bench_json_bound: the transform stage's bound. Parses every page with
 * Jansson and serializes every row envelope the transformer produced for
 * those pages, in memory, with no Kafka and no mapping: the least work a
 * JSON-in/JSON-out transformer does on the same data.
 *
 * usage: bench_json_bound ROWS.jsonl PAGE.json...
 * prints one line: pages=N page_bytes=N rows=N parse_s=X serialize_s=Y
 * total_s=Z (the median of three passes; inputs are read before timing). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "sl_util.h"

#define PASSES 3

struct blob {
        char *data;
        size_t len;
};

static double now_s(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Reads a whole file into b (new; free b->data). 0 or -1 with a message. */
static int read_all(const char *path, struct blob *b)
{
        FILE *f = fopen(path, "rb");
        size_t cap = 1 << 16, n;

        if (!f) {
                fprintf(stderr, "bench_json_bound: %s: %s\n", path,
                        strerror(errno));
                return -1;
        }
        b->data = sl_malloc(cap);
        b->len = 0;
        while ((n = fread(b->data + b->len, 1, cap - b->len, f)) > 0) {
                b->len += n;
                if (b->len == cap) {
                        cap *= 2;
                        b->data = sl_realloc(b->data, cap);
                }
        }
        fclose(f);
        return 0;
}

static int cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;

        return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
        struct blob rows_file = {0}, *pages = NULL;
        json_t **rows = NULL;
        size_t nrows = 0, caprows = 1024, page_bytes = 0;
        int npages = argc - 2, rc = 1;
        double parse_s[PASSES], ser_s[PASSES], tot_s[PASSES];
        char *p, *end;

        if (argc < 3) {
                fprintf(stderr,
                        "usage: bench_json_bound ROWS.jsonl PAGE.json...\n");
                return 2;
        }
        if (read_all(argv[1], &rows_file) < 0)
                goto out;
        rows = sl_calloc(caprows, sizeof(*rows));
        for (p = rows_file.data, end = p + rows_file.len; p < end;) {
                char *nl = memchr(p, '\n', (size_t)(end - p));
                size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
                json_error_t err;

                if (len > 0) {
                        if (nrows == caprows) {
                                caprows *= 2;
                                rows =
                                    sl_realloc(rows, caprows * sizeof(*rows));
                        }
                        rows[nrows] = json_loadb(p, len, 0, &err);
                        if (!rows[nrows]) {
                                fprintf(stderr, "%s: row %zu: %s\n", argv[1],
                                        nrows + 1, err.text);
                                goto out;
                        }
                        nrows++;
                }
                p += len + 1;
        }
        pages = sl_calloc((size_t)npages, sizeof(*pages));
        for (int i = 0; i < npages; i++) {
                if (read_all(argv[i + 2], &pages[i]) < 0)
                        goto out;
                page_bytes += pages[i].len;
        }

        for (int pass = 0; pass < PASSES; pass++) {
                double t0 = now_s(), t1, t2;

                for (int i = 0; i < npages; i++) {
                        json_error_t err;
                        json_t *root =
                            json_loadb(pages[i].data, pages[i].len, 0, &err);

                        if (!root) {
                                fprintf(stderr, "%s: %s\n", argv[i + 2],
                                        err.text);
                                goto out;
                        }
                        json_decref(root);
                }
                t1 = now_s();
                for (size_t i = 0; i < nrows; i++) {
                        char *s = json_dumps(rows[i], JSON_COMPACT);

                        if (!s)
                                goto out;
                        free(s);
                }
                t2 = now_s();
                parse_s[pass] = t1 - t0;
                ser_s[pass] = t2 - t1;
                tot_s[pass] = t2 - t0;
        }
        qsort(parse_s, PASSES, sizeof(double), cmp_double);
        qsort(ser_s, PASSES, sizeof(double), cmp_double);
        qsort(tot_s, PASSES, sizeof(double), cmp_double);
        printf("pages=%d page_bytes=%zu rows=%zu parse_s=%.4f "
               "serialize_s=%.4f total_s=%.4f\n",
               npages, page_bytes, nrows, parse_s[PASSES / 2],
               ser_s[PASSES / 2], tot_s[PASSES / 2]);
        rc = 0;
out:
        if (rows) {
                for (size_t i = 0; i < nrows; i++)
                        json_decref(rows[i]);
                free(rows);
        }
        if (pages) {
                for (int i = 0; i < npages; i++)
                        free(pages[i].data);
                free(pages);
        }
        free(rows_file.data);
        return rc;
}
