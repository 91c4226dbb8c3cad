/* map_check.c: runs a map over a page held in memory and collects what it
 * would emit, for `sluice check` and the golden tests; compares outputs to
 * expectations. */
#include "map_check.h"
#include "sl_jsondump.h"
#include "sl_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct collect {
        json_t *out;
        struct map_check_drift *drift;
};

static int on_row(void *opaque, const char *topic, const char *key,
                  size_t key_len, json_t *env)
{
        struct collect *c = opaque;
        (void)topic;
        (void)key;
        (void)key_len;
        json_array_append(c->out, env);
        return 0;
}

static int on_dead(void *opaque, const char *key, json_t *letter)
{
        struct collect *c = opaque;
        (void)key;
        json_array_append(c->out, letter);
        return 0;
}

static void on_note(void *opaque, const char *what, const char *table,
                    const char *reason, json_t *record)
{
        struct collect *c = opaque;
        json_t *n = json_object();
        (void)record;
        json_object_set_new(n, "note", json_string(what));
        json_object_set_new(n, "table", json_string(table));
        json_object_set_new(n, "reason", json_string(reason));
        json_array_append_new(c->out, n);
}

static void leaf_paths(json_t *v, const char *prefix, json_t *seen)
{
        const char *k;
        json_t *e;
        size_t i;

        if (json_is_object(v) && json_object_size(v)) {
                json_object_foreach(v, k, e)
                {
                        char *p = *prefix ? sl_asprintf("%s.%s", prefix, k)
                                          : sl_strdup(k);
                        leaf_paths(e, p, seen);
                        free(p);
                }
                return;
        }
        if (json_is_array(v) && json_array_size(v)) {
                char *p = sl_asprintf("%s[*]", prefix);
                json_array_foreach(v, i, e)
                {
                        leaf_paths(e, p, seen);
                }
                free(p);
                return;
        }
        if (json_is_null(v) || json_is_object(v) || json_is_array(v))
                return; /* null, {} and [] carry nothing to map */
        json_object_set_new(seen, prefix, json_true());
}

static void on_record(void *opaque, size_t target, json_t *record)
{
        struct collect *c = opaque;
        json_t *seen;
        const char *k;
        json_t *v;

        if (!c->drift)
                return;
        (void)target;
        seen = json_object();
        leaf_paths(record, "", seen);
        json_object_set_new(seen, "", json_true()); /* the record count */
        c->drift->records++;
        json_object_foreach(seen, k, v)
        {
                char *tk = sl_asprintf("%zu\x1f%s", target, k);
                json_t *n = json_object_get(c->drift->counts, tk);
                json_object_set_new(
                    c->drift->counts, tk,
                    json_integer(n ? json_integer_value(n) + 1 : 1));
                free(tk);
        }
        json_decref(seen);
}

json_t *map_check_run(struct map *m, const char *bytes, size_t len,
                      const char *records_hdr, struct map_check_drift *drift)
{
        struct collect c = {.out = json_array(), .drift = drift};
        struct map_emit em = {.row = on_row,
                              .dead = on_dead,
                              .note = on_note,
                              .record = on_record,
                              .opaque = &c};
        struct map_lineage lin = {
            .source = m->source, .partition = -1, .offset = -1};
        json_error_t jerr;
        json_t *page;

        if (drift && !drift->counts)
                drift->counts = json_object();
        if (map_apply_bytes(m, bytes, len, records_hdr, &lin, &em) !=
            MAP_NOT_APPLIED)
                return c.out;
        page = json_loadb(bytes, len, JSON_ALLOW_NUL, &jerr);
        if (!page) {
                char why[300];
                json_t *d;
                snprintf(why, sizeof(why), "page is not JSON: %d:%d: %s",
                         jerr.line, jerr.column, jerr.text);
                d = map_dead_page(m, bytes, len, why, &lin);
                json_array_append_new(c.out, d);
                return c.out;
        }
        map_apply_page(m, page, records_hdr, &lin, &em);
        json_decref(page);
        return c.out;
}

void map_check_drift_report(const struct map *m,
                            const struct map_check_drift *drift, FILE *fp)
{
        const char *k;
        json_t *v;

        if (!drift->counts)
                return;
        json_object_foreach(drift->counts, k, v)
        {
                const char *sep = strchr(k, '\x1f');
                long long t = strtoll(k, NULL, 10);
                char total_key[32];
                json_int_t total;
                if (!sep || !sep[1] || map_reads_path(m, (size_t)t, sep + 1))
                        continue;
                snprintf(total_key, sizeof(total_key), "%lld\x1f", t);
                total = json_integer_value(
                    json_object_get(drift->counts, total_key));
                fprintf(fp,
                        "drift: %s: source field %s is read by no map "
                        "field (%lld of %lld records)\n",
                        m->targets[t].table, sep + 1,
                        (long long)json_integer_value(v), (long long)total);
        }
}

void map_check_drift_free(struct map_check_drift *drift)
{
        json_decref(drift->counts);
        drift->counts = NULL;
}

int map_check_compare(json_t *got, json_t *want, char *msg, size_t msg_size)
{
        size_t n;

        if (!json_is_array(want)) {
                snprintf(msg, msg_size, "expectation is not an array");
                return -1;
        }
        n = json_array_size(got) < json_array_size(want)
                ? json_array_size(got)
                : json_array_size(want);
        for (size_t i = 0; i < n; i++) {
                json_t *g = json_array_get(got, i);
                json_t *w = json_array_get(want, i);
                const char *k;
                json_t *wv;
                if (!json_is_object(w)) {
                        snprintf(msg, msg_size,
                                 "expected output %zu is not "
                                 "an object",
                                 i);
                        return -1;
                }
                json_object_foreach(w, k, wv)
                {
                        json_t *gv = json_object_get(g, k);
                        if (!gv || !json_equal(gv, wv)) {
                                char *gs = gv ? sl_json_dumps(
                                                    gv, JSON_ENCODE_ANY, NULL)
                                              : NULL;
                                char *ws =
                                    sl_json_dumps(wv, JSON_ENCODE_ANY, NULL);
                                snprintf(msg, msg_size,
                                         "output %zu: %s differs: got %.300s, "
                                         "want %.300s",
                                         i, k, gs ? gs : "(absent)",
                                         ws ? ws : "?");
                                free(gs);
                                free(ws);
                                return -1;
                        }
                }
        }
        if (json_array_size(got) != json_array_size(want)) {
                snprintf(msg, msg_size, "got %zu outputs, want %zu",
                         json_array_size(got), json_array_size(want));
                return -1;
        }
        return 0;
}
