/* map_apply.c: runs a loaded map over a page: selects records, filters
 * them, builds the row and its child rows, and emits mapped.<table>
 * envelopes or one dead letter per record. A record's rows are emitted
 * all together or not at all. */
#include "map.h"
#include "sl_jsonpath.h"
#include "sl_util.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Above this many bytes a dead letter keeps only the head of a page. */
#define DEAD_PAGE_MAX ((size_t)1 << 20)

static json_t *lineage_new(const struct map *m, const struct map_lineage *lin,
                           size_t record)
{
        json_t *o = json_object();

        if (lin->source)
                json_object_set_new(o, "source", json_string(lin->source));
        if (lin->run)
                json_object_set_new(o, "run", json_string(lin->run));
        if (lin->topic) {
                json_object_set_new(o, "topic", json_string(lin->topic));
                json_object_set_new(o, "partition",
                                    json_integer(lin->partition));
                json_object_set_new(o, "offset", json_integer(lin->offset));
        }
        if (lin->page)
                json_object_set_new(o, "page", json_string(lin->page));
        if (lin->chunk)
                json_object_set_new(o, "chunk", json_string(lin->chunk));
        if (record != (size_t)-1)
                json_object_set_new(o, "record",
                                    json_integer((json_int_t)record));
        if (lin->fetched_at)
                json_object_set_new(o, "fetched_at",
                                    json_string(lin->fetched_at));
        json_object_set_new(o, "map", json_string(m->name));
        return o;
}

static int cond_ok(const struct map_cond *cd, json_t *rec, json_t *parent)
{
        json_t *v = map_path_value(&cd->path, rec, parent);
        int ok = 0;

        switch (cd->op) {
        case MAP_COND_EQ:
                ok = v && json_equal(v, cd->value);
                break;
        case MAP_COND_NE:
                ok = !(v && json_equal(v, cd->value));
                break;
        case MAP_COND_IN:
        case MAP_COND_NOT_IN: {
                json_t *e;
                size_t i;
                json_array_foreach(cd->value, i, e)
                {
                        if (v && json_equal(v, e))
                                ok = 1;
                }
                if (cd->op == MAP_COND_NOT_IN)
                        ok = !ok;
                break;
        }
        case MAP_COND_EXISTS:
                ok = (v != NULL) == json_is_true(cd->value);
                break;
        case MAP_COND_MATCHES: {
                char *t = v ? map_scalar_text(v) : NULL;
                ok = t && regexec(&cd->re, t, 0, NULL, 0) == 0;
                free(t);
                break;
        }
        }
        json_decref(v);
        return ok;
}

static int where_ok(const struct map_target *t, json_t *rec, json_t *parent,
                    char *why, size_t why_size)
{
        for (size_t i = 0; i < t->nwhere; i++)
                if (!cond_ok(&t->where[i], rec, parent)) {
                        snprintf(why, why_size, "where[%zu] (%s) not met", i,
                                 t->where[i].path.text);
                        return 0;
                }
        return 1;
}

/* Builds the row of t for rec. 0, or -1 with errstr and the failing
 * column in *field (borrowed from the map). */
static int build_row(const struct map_target *t, json_t *rec, json_t *parent,
                     json_t **row, const char **field, char *errstr,
                     size_t errstr_size)
{
        json_t *r = json_object();

        *row = NULL;
        for (size_t i = 0; i < t->nfields; i++) {
                json_t *v;
                if (map_field_eval(&t->fields[i], rec, parent, &v, errstr,
                                   errstr_size) < 0) {
                        *field = t->fields[i].column;
                        json_decref(r);
                        return -1;
                }
                json_object_set_new(r, t->fields[i].column, v);
        }
        if (t->ci) {
                for (size_t i = 0; i < t->ncoalesce; i++) {
                        json_t *v = json_object_get(r, t->coalesce[i]);
                        char *low;
                        if (!json_is_string(v))
                                continue;
                        low = sl_strdup(json_string_value(v));
                        for (char *p = low; *p; p++)
                                *p = (char)tolower((unsigned char)*p);
                        json_object_set_new(r, t->coalesce[i],
                                            json_string(low));
                        free(low);
                }
        }
        *row = r;
        return 0;
}

/* The canonical key: coalesce values joined by \x1f. Returns -1 and the
 * empty column in *empty when a value is null or empty. */
static int key_text(char *const *cols, size_t n, json_t *row,
                    struct sl_buf *key, const char **empty)
{
        sl_buf_reset(key);
        for (size_t i = 0; i < n; i++) {
                json_t *v = json_object_get(row, cols[i]);
                char *t = map_scalar_text(v);
                if (!t && v && !json_is_null(v))
                        t = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
                if (!t || !*t) {
                        free(t);
                        *empty = cols[i];
                        return -1;
                }
                if (i)
                        sl_buf_append(key, "\x1f", 1);
                sl_buf_puts(key, t);
                free(t);
        }
        return 0;
}

struct selection {
        json_t *items; /* array of borrowed-then-increfed records */
};

static int select_one(json_t *match, void *opaque)
{
        json_t *items = opaque;
        if (json_is_array(match)) {
                json_t *e;
                size_t i;
                json_array_foreach(match, i, e)
                {
                        json_array_append(items, e);
                }
        } else {
                json_array_append(items, match);
        }
        return 0;
}

/* The records path selects arrays of records, or records themselves.
 * New array. */
static json_t *select_records(const struct sl_jsonpath *jp, json_t *root)
{
        json_t *items = json_array();
        sl_jsonpath_each(jp, root, select_one, items);
        return items;
}

/* Child rows of one parent record: the "replace" envelope's rows. New
 * array, or NULL with errstr/field on a rejected element. */
static json_t *child_rows(const struct map_target *c, json_t *rec,
                          json_t *parent_row, char *errstr, size_t errstr_size,
                          char *field, size_t field_size)
{
        json_t *elems = select_records(c->records, rec);
        json_t *rows = json_array();
        json_t *seen = json_object();
        struct sl_buf key;
        json_t *e;
        size_t i;

        sl_buf_init(&key, 0);
        json_array_foreach(elems, i, e)
        {
                char why[512], unused[128];
                const char *col = NULL, *empty = NULL;
                json_t *row;
                if (!where_ok(c, e, rec, unused, sizeof(unused)))
                        continue;
                if (build_row(c, e, rec, &row, &col, why, sizeof(why)) < 0) {
                        snprintf(errstr, errstr_size, "%s[%zu]: %s", c->table,
                                 i, why);
                        snprintf(field, field_size, "%s.%s", c->table, col);
                        json_decref(rows);
                        rows = NULL;
                        break;
                }
                for (size_t k = 0; k < c->npk; k++)
                        json_object_set(
                            row, c->pk_child[k],
                            json_object_get(parent_row, c->pk_parent[k]));
                /* one row per child key: the first wins */
                if (c->ncoalesce) {
                        if (key_text(c->coalesce, c->ncoalesce, row, &key,
                                     &empty) < 0) {
                                json_decref(row);
                                continue;
                        }
                } else {
                        char *all =
                            json_dumps(row, JSON_COMPACT | JSON_SORT_KEYS);
                        sl_buf_reset(&key);
                        sl_buf_puts(&key, all ? all : "");
                        free(all);
                }
                if (json_object_get(seen, key.data)) {
                        json_decref(row);
                        continue;
                }
                json_object_set_new(seen, key.data, json_true());
                json_array_append_new(rows, row);
        }
        sl_buf_free(&key);
        json_decref(seen);
        json_decref(elems);
        return rows;
}

static json_t *dead_letter(const struct map *m, const struct map_target *t,
                           const char *error, const char *field,
                           json_t *lineage, json_t *rec)
{
        json_t *d = json_object();
        json_object_set_new(d, "v", json_integer(1));
        json_object_set_new(d, "stage", json_string("transform"));
        json_object_set_new(d, "error", json_string(error));
        json_object_set_new(d, "map", json_string(m->name));
        json_object_set_new(d, "table", json_string(t->table));
        if (field && *field)
                json_object_set_new(d, "field", json_string(field));
        json_object_set(d, "lineage", lineage);
        json_object_set(d, "record", rec);
        return d;
}

static int apply_record(struct map *m, struct map_target *t, json_t *rec,
                        json_t *page, json_t *lineage,
                        const struct map_emit *em)
{
        char why[768], field[256] = "";
        const char *col = NULL, *empty = NULL;
        json_t *row = NULL, *env = NULL, *keyobj, *envs = NULL;
        struct sl_buf key;
        int rc = 0;

        sl_buf_init(&key, 0);
        t->in++;
        if (!where_ok(t, rec, page, why, sizeof(why))) {
                t->ignored++;
                if (em->note)
                        em->note(em->opaque, "ignored", t->table, why, rec);
                goto out;
        }
        if (build_row(t, rec, page, &row, &col, why, sizeof(why)) < 0) {
                snprintf(field, sizeof(field), "%s", col ? col : "");
                goto reject;
        }
        if (key_text(t->coalesce, t->ncoalesce, row, &key, &empty) < 0) {
                t->skipped++;
                snprintf(why, sizeof(why), "empty coalesce key %s", empty);
                if (em->note)
                        em->note(em->opaque, "skipped", t->table, why, rec);
                goto out;
        }
        keyobj = json_object();
        for (size_t i = 0; i < t->ncoalesce; i++)
                json_object_set(keyobj, t->coalesce[i],
                                json_object_get(row, t->coalesce[i]));
        env = json_object();
        json_object_set_new(env, "v", json_integer(1));
        json_object_set_new(env, "table", json_string(t->table));
        json_object_set_new(env, "op", json_string("upsert"));
        json_object_set_new(env, "key", keyobj);
        json_object_set(env, "row", row);
        if (t->version && !json_is_null(json_object_get(row, t->version))) {
                json_object_set(env, "version",
                                json_object_get(row, t->version));
                json_object_set_new(env, "version_column",
                                    json_string(t->version));
        }
        json_object_set(env, "lineage", lineage);
        envs = json_array();
        json_array_append(envs, env);
        for (size_t c = 0; c < t->nchildren; c++) {
                struct map_target *ch = &t->children[c];
                json_t *rows = child_rows(ch, rec, row, why, sizeof(why), field,
                                          sizeof(field));
                json_t *cenv, *ckey;
                if (!rows) {
                        memmove(why + 6, why, sizeof(why) - 7);
                        memcpy(why, "child ", 6);
                        why[sizeof(why) - 1] = '\0';
                        goto reject;
                }
                ckey = json_object();
                for (size_t k = 0; k < ch->npk; k++)
                        json_object_set(ckey, ch->pk_child[k],
                                        json_object_get(row, ch->pk_parent[k]));
                cenv = json_object();
                json_object_set_new(cenv, "v", json_integer(1));
                json_object_set_new(cenv, "table", json_string(ch->table));
                json_object_set_new(cenv, "op", json_string("replace"));
                json_object_set_new(cenv, "key", ckey);
                json_object_set_new(cenv, "rows", rows);
                if (t->version &&
                    !json_is_null(json_object_get(row, t->version))) {
                        /* The parent's version, for ordering within a
                         * batch only: the child table has no version
                         * column, and a parent's replaces are keyed by
                         * the parent key, so they arrive in order. */
                        json_object_set(cenv, "version",
                                        json_object_get(row, t->version));
                }
                json_object_set(cenv, "lineage", lineage);
                json_array_append_new(envs, cenv);
        }
        /* every row of the record is ready: emit them together */
        for (size_t i = 0; i < json_array_size(envs); i++) {
                json_t *e = json_array_get(envs, i);
                const char *table =
                    json_string_value(json_object_get(e, "table"));
                char *topic = sl_asprintf("mapped.%s", table);
                rc = em->row(em->opaque, topic, key.data, key.len, e);
                free(topic);
                if (rc)
                        goto out;
                if (i == 0) {
                        t->out++;
                } else {
                        struct map_target *ch = &t->children[i - 1];
                        ch->out += json_array_size(json_object_get(e, "rows"));
                }
        }
        goto out;
reject:
        t->rejected++;
        {
                json_t *d = dead_letter(m, t, why, field, lineage, rec);
                rc = em->dead(em->opaque, key.len ? key.data : NULL, d);
                json_decref(d);
        }
out:
        json_decref(envs);
        json_decref(env);
        json_decref(row);
        sl_buf_free(&key);
        return rc;
}

int map_apply_page(struct map *m, json_t *page, const char *records_hdr,
                   const struct map_lineage *lin, const struct map_emit *em)
{
        int rc = 0;

        for (size_t ti = 0; ti < m->ntargets && !rc; ti++) {
                struct map_target *t = &m->targets[ti];
                struct sl_jsonpath *hdr = NULL;
                const struct sl_jsonpath *jp = t->records;
                json_t *recs, *rec;
                size_t i;

                if (!jp) {
                        char err[256];
                        hdr = sl_jsonpath_compile(
                            records_hdr && *records_hdr ? records_hdr : "$",
                            err, sizeof(err));
                        if (!hdr)
                                hdr =
                                    sl_jsonpath_compile("$", err, sizeof(err));
                        jp = hdr;
                }
                recs = select_records(jp, page);
                for (size_t a = 0; a < t->nalt && !json_array_size(recs); a++) {
                        json_decref(recs);
                        recs = select_records(t->records_alt[a], page);
                }
                json_array_foreach(recs, i, rec)
                {
                        json_t *lineage = lineage_new(m, lin, i);
                        if (em->record)
                                em->record(em->opaque, ti, rec);
                        rc = apply_record(m, t, rec, page, lineage, em);
                        json_decref(lineage);
                        if (rc)
                                break;
                }
                json_decref(recs);
                if (hdr)
                        sl_jsonpath_destroy(hdr);
        }
        return rc;
}

json_t *map_dead_page(const struct map *m, const char *bytes, size_t len,
                      const char *error, const struct map_lineage *lin)
{
        json_t *d = json_object();
        struct sl_buf b;
        size_t keep = len > DEAD_PAGE_MAX ? DEAD_PAGE_MAX : len;

        sl_buf_init(&b, 0);
        sl_buf_utf8(&b, bytes, keep);
        json_object_set_new(d, "v", json_integer(1));
        json_object_set_new(d, "stage", json_string("transform"));
        json_object_set_new(d, "error", json_string(error));
        json_object_set_new(d, "map", json_string(m->name));
        json_object_set_new(d, "lineage", lineage_new(m, lin, (size_t)-1));
        json_object_set_new(d, "page",
                            json_stringn(b.data ? b.data : "", b.len));
        if (keep < len) {
                json_object_set_new(d, "page_truncated", json_true());
                json_object_set_new(d, "page_bytes",
                                    json_integer((json_int_t)len));
        }
        sl_buf_free(&b);
        return d;
}
