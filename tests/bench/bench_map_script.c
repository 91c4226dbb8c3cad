/* bench_map_script: what one script field costs the transformer. Maps the
 * same pages with two maps, the bundled NVD map and an extension of it
 * that adds one Lua field (tests/bench/nvd_cve_script.json), the way the
 * transformer does (map_apply_bytes, each record's trees in an arena, each
 * envelope written as text), in one thread with no Kafka, alternating the
 * two maps pass by pass so that the machine's load falls on both alike.
 *
 * usage: bench_map_script PLAIN_MAP SCRIPT_MAP PASSES PAGE.json...
 * prints one line: records=N plain_s=X script_s=Y ratio=Z (the medians of
 * the passes; ratio = plain_s / script_s, the scripted map's throughput as
 * a fraction of the plain one's). Exit 1 when a map does not load, or a
 * record is dead-lettered. */
#include "map.h"
#include "sl_arena.h"
#include "sl_jsondump.h"
#include "sl_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_PASSES 15

struct sink {
        struct sl_buf text;
        long rows, dead;
};

static int on_row(void *opaque, const char *topic, const char *key,
                  size_t key_len, json_t *envelope)
{
        struct sink *s = opaque;

        (void)topic;
        (void)key;
        (void)key_len;
        sl_buf_reset(&s->text);
        sl_json_dump(&s->text, envelope, 0);
        s->rows++;
        return 0;
}

static int on_dead(void *opaque, const char *key, json_t *letter)
{
        struct sink *s = opaque;

        (void)key;
        (void)letter;
        s->dead++;
        return 0;
}

static double now_s(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_d(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;

        return (x > y) - (x < y);
}

/* One pass of m over the pages: seconds, or -1 on a dead letter. */
static double pass(struct map *m, char **pages, size_t *lens, int npages,
                   long *records)
{
        struct sink s = {.rows = 0};
        struct map_lineage lin = {.source = "nvd", .topic = "raw.nvd"};
        struct map_emit em = {
            .row = on_row, .dead = on_dead, .opaque = &s, .record_arena = 1};
        double t0, t;

        sl_buf_init(&s.text, 0);
        t0 = now_s();
        for (int i = 0; i < npages; i++)
                if (map_apply_bytes(m, pages[i], lens[i], "$.vulnerabilities",
                                    &lin, &em) == MAP_NOT_APPLIED) {
                        fprintf(stderr,
                                "bench_map_script: page %d not "
                                "mapped record by record\n",
                                i);
                        return -1;
                }
        t = now_s() - t0;
        sl_buf_free(&s.text);
        *records = s.rows;
        return s.dead ? -1 : t;
}

int main(int argc, char **argv)
{
        struct map *m[2] = {NULL, NULL};
        double secs[2][MAX_PASSES];
        char **pages = NULL, err[512], *errs = NULL;
        size_t *lens = NULL;
        long rows[2] = {0, 0};
        int passes, npages, rc = 1;

        if (argc < 5) {
                fprintf(stderr, "usage: bench_map_script PLAIN_MAP "
                                "SCRIPT_MAP PASSES PAGE.json...\n");
                return 2;
        }
        sl_arena_install();
        passes = (int)strtol(argv[3], NULL, 10);
        if (passes < 1 || passes > MAX_PASSES)
                passes = 5;
        for (int k = 0; k < 2; k++) {
                m[k] = map_load(argv[1 + k], &errs);
                if (!m[k]) {
                        fprintf(stderr, "%s", errs ? errs : "bad map\n");
                        goto out;
                }
        }
        npages = argc - 4;
        pages = sl_calloc((size_t)npages, sizeof(*pages));
        lens = sl_calloc((size_t)npages, sizeof(*lens));
        for (int i = 0; i < npages; i++) {
                pages[i] =
                    sl_file_read(argv[4 + i], &lens[i], err, sizeof(err));
                if (!pages[i]) {
                        fprintf(stderr, "bench_map_script: %s\n", err);
                        goto out;
                }
        }
        for (int p = 0; p < passes; p++)
                for (int k = 0; k < 2; k++) {
                        secs[k][p] = pass(m[k], pages, lens, npages, &rows[k]);
                        if (secs[k][p] < 0) {
                                fprintf(stderr,
                                        "bench_map_script: %s: a "
                                        "record was dead-lettered\n",
                                        argv[1 + k]);
                                goto out;
                        }
                }
        for (int k = 0; k < 2; k++)
                qsort(secs[k], (size_t)passes, sizeof(double), cmp_d);
        printf("records=%ld plain_s=%.4f script_s=%.4f ratio=%.3f\n", rows[0],
               secs[0][passes / 2], secs[1][passes / 2],
               secs[0][passes / 2] / secs[1][passes / 2]);
        rc = rows[0] == rows[1] ? 0 : 1;
out:
        for (int i = 0; pages && i < npages; i++)
                free(pages[i]);
        free(pages);
        free(lens);
        free(errs);
        map_destroy(m[0]);
        map_destroy(m[1]);
        return rc;
}
