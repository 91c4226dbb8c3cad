/* test_map_arena: the transformer maps each record in an arena
 * (sl_arena.h, map_emit.record_arena). Every bundled map over its real
 * data must emit byte for byte the same envelopes and dead letters with
 * the arena as without it, in a process that installed the arena the way
 * `sluice transform` does; a tree that outlived its record would show as
 * a difference or a crash here. */
#include "map.h"
#include "sl_arena.h"
#include "sl_jsondump.h"
#include "sl_util.h"
#include "tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct out {
        char **text;
        size_t n;
};

static void keep(struct out *o, const char *kind, const char *key, json_t *v)
{
        char *t = sl_json_dumps(v, 0, NULL);
        o->text = sl_realloc(o->text, (o->n + 1) * sizeof(*o->text));
        o->text[o->n++] =
            sl_asprintf("%s %s %s", kind, key ? key : "-", t ? t : "(null)");
        free(t);
}

static int on_row(void *opaque, const char *topic, const char *key,
                  size_t key_len, json_t *env)
{
        char k[512];
        snprintf(k, sizeof(k), "%s/%.*s", topic, (int)key_len, key);
        keep(opaque, "row", k, env);
        return 0;
}

static int on_dead(void *opaque, const char *key, json_t *letter)
{
        keep(opaque, "dead", key, letter);
        return 0;
}

static void out_free(struct out *o)
{
        for (size_t i = 0; i < o->n; i++)
                free(o->text[i]);
        free(o->text);
}

static void run(const char *map_rel, const char *data_rel)
{
        const char *root = getenv("SLUICE_ROOT");
        char path[2048], err[512];
        char *errs = NULL, *text;
        size_t len = 0, same = 0;
        struct map *m;
        struct map_lineage lin = {.source = "test",
                                  .run = "r1",
                                  .topic = "raw.test",
                                  .partition = 0,
                                  .offset = 7,
                                  .fetched_at = "2026-01-01T00:00:00Z",
                                  .page = "0",
                                  .chunk = "0"};
        struct out with = {0}, without = {0};
        struct map_emit em = {.row = on_row, .dead = on_dead};
        int rc1, rc2;

        snprintf(path, sizeof(path), "%s/%s", root ? root : ".", map_rel);
        m = map_load(path, &errs);
        TAP_OK(m != NULL, "%s loads", map_rel);
        free(errs);
        if (!m)
                return;
        snprintf(path, sizeof(path), "%s/%s", root ? root : ".", data_rel);
        text = sl_file_read(path, &len, err, sizeof(err));
        TAP_OK(text != NULL, "%s reads", data_rel);
        if (!text) {
                map_destroy(m);
                return;
        }
        em.opaque = &with;
        em.record_arena = 1;
        rc1 = map_apply_bytes(m, text, len, NULL, &lin, &em);
        em.opaque = &without;
        em.record_arena = 0;
        rc2 = map_apply_bytes(m, text, len, NULL, &lin, &em);
        TAP_OK(rc1 == 0 && rc2 == 0, "%s: applied record by record (%d, %d)",
               map_rel, rc1, rc2);
        TAP_OK(with.n > 0 && with.n == without.n,
               "%s: %zu outputs with the arena, %zu without", map_rel, with.n,
               without.n);
        for (size_t i = 0; i < with.n && i < without.n; i++)
                same += strcmp(with.text[i], without.text[i]) == 0;
        TAP_OK(same == without.n, "%s: %zu of %zu outputs byte-equal", map_rel,
               same, without.n);
        out_free(&with);
        out_free(&without);
        free(text);
        map_destroy(m);
}

int main(void)
{
        sl_arena_install(); /* as sluice transform, before any Jansson call */
#if defined(__SANITIZE_ADDRESS__)
        TAP_OK(!sl_arena_active(), "ASan build: every block its own malloc");
#else
        TAP_OK(sl_arena_active(), "the arena replaced Jansson's allocator");
#endif
        run("transformers/maps/kev.json",
            "data/kev/known_exploited_vulnerabilities.json");
        run("transformers/maps/nvd_cve.json",
            "data/nvd/nvd_cves_combined_dedup.json");
        run("transformers/maps/urlhaus.json",
            "data/urlhaus/urlhaus_recent_records.json");
        run("transformers/maps/tenable.json",
            "data/tenable/test_exports_vulns_chunk_1.json");
        return TAP_DONE();
}
