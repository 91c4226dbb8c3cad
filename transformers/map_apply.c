/* map_apply.c: runs a loaded map over a page: selects records, filters
 * them, builds the row and its child rows, and emits mapped.<table>
 * envelopes or one dead letter per record. A record's rows are emitted
 * all together or not at all. */
#include "map.h"
#include "sl_arena.h"
#include "sl_jsondecode.h"
#include "sl_jsonscan.h"
#include "sl_jsonpath.h"
#include "sl_util.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* the arena of the record being mapped (map_apply_bytes) */
static _Thread_local struct sl_arena record_arena;

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

static const struct map_field *field_get(const struct map_target *t,
                                         const char *col)
{
        for (size_t i = 0; i < t->nfields; i++)
                if (strcmp(t->fields[i].column, col) == 0)
                        return &t->fields[i];
        return NULL;
}

/* The columns a script gave (out: column -> value) as a row of t: every
 * field of t, each value not equal to the one in was (may be NULL)
 * converted to its field's type. `who` names the script in messages
 * ("script", or "script:5" for a row it emitted). New, or NULL with errstr
 * and *field. */
static json_t *script_columns(const struct map_target *t, json_t *out,
                              json_t *was, const char *who, int emitted,
                              const char **field, char *errstr,
                              size_t errstr_size)
{
        char why[384];
        const char *k;
        json_t *r, *v;

        json_object_foreach(out, k, v)
        {
                if (!field_get(t, k)) {
                        snprintf(errstr, errstr_size,
                                 "script: %s: column \"%s\" is not a field "
                                 "of %s",
                                 who, k, t->table);
                        return NULL;
                }
        }
        r = json_object();
        for (size_t i = 0; i < t->nfields; i++) {
                const struct map_field *f = &t->fields[i];
                json_t *before = was ? json_object_get(was, f->column) : NULL;
                json_t *c;
                v = json_object_get(out, f->column);
                if (!v || json_is_null(v)) {
                        c = json_null();
                } else if (before && json_equal(v, before)) {
                        c = json_incref(before);
                } else {
                        c = map_convert(f, v, why, sizeof(why));
                        if (!c) {
                                *field = f->column;
                                snprintf(errstr, errstr_size,
                                         "field %s: %s %s: %s", f->column,
                                         emitted ? "emitted by" : "set by", who,
                                         why);
                                json_decref(r);
                                return NULL;
                        }
                }
                if (f->required && json_is_null(c)) {
                        *field = f->column;
                        snprintf(errstr, errstr_size,
                                 "field %s: required, no value (%s %s)",
                                 f->column, emitted ? "emitted by" : "after",
                                 who);
                        json_decref(c);
                        json_decref(r);
                        return NULL;
                }
                json_object_set_new(r, f->column, c);
        }
        return r;
}

/* Runs t's record script on the row built from rec: the row the script
 * leaves (its changed columns converted to their fields' types) replaces
 * *row, and with ex the rows it emitted are in *emitted (as
 * map_script_row gives them). 1: the script dropped the record; -1 with
 * errstr and *field. */
static int script_row(const struct map_target *t, json_t *rec, json_t *parent,
                      const struct map_script_emit *ex, json_t **row,
                      json_t **emitted, const char **field, char *errstr,
                      size_t errstr_size)
{
        char why[384];
        json_t *out = NULL, *r;
        int rc;

        rc = map_script_row(t->script, rec, parent, *row, ex, &out, emitted,
                            why, sizeof(why));
        if (rc == 1)
                return 1;
        *field = t->script->name;
        if (rc < 0) {
                snprintf(errstr, errstr_size, "script: %s", why);
                return -1;
        }
        r = script_columns(t, out, *row, t->script->name, 0, field, errstr,
                           errstr_size);
        json_decref(out);
        if (!r) {
                if (emitted) {
                        json_decref(*emitted);
                        *emitted = NULL;
                }
                return -1;
        }
        json_decref(*row);
        *row = r;
        return 0;
}

/* Lower-cases t's coalesce columns in row (case_insensitive). */
static void lower_coalesce(const struct map_target *t, json_t *row)
{
        for (size_t i = 0; i < t->ncoalesce; i++) {
                json_t *v = json_object_get(row, t->coalesce[i]);
                char *low;
                if (!json_is_string(v))
                        continue;
                low = sl_strdup(json_string_value(v));
                for (char *p = low; *p; p++)
                        *p = (char)tolower((unsigned char)*p);
                json_object_set_new(row, t->coalesce[i], json_string(low));
                free(low);
        }
}

/* Builds the row of t for rec. 0, 1 when t's script dropped the record,
 * or -1 with errstr and the failing column in *field (borrowed from the
 * map). With ex and emitted (a target's record), *emitted is what its
 * script emitted (new; NULL when it has none or after -1). */
static int build_row(const struct map_target *t, json_t *rec, json_t *parent,
                     const struct map_script_emit *ex, json_t **row,
                     json_t **emitted, const char **field, char *errstr,
                     size_t errstr_size)
{
        json_t *r = json_object();

        *row = NULL;
        if (emitted)
                *emitted = NULL;
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
        if (t->script) {
                int rc = script_row(t, rec, parent, ex, &r, emitted, field,
                                    errstr, errstr_size);
                if (rc != 0) {
                        json_decref(r);
                        return rc;
                }
        }
        if (t->ci)
                lower_coalesce(t, r);
        *row = r;
        return 0;
}

/* The canonical key: coalesce values joined by \x1f. Returns -1 and the
 * empty column in *empty when a value is null or empty. A non-scalar is
 * Jansson's text (reals at %.17g), not sl_json_dump's, on purpose: this is
 * the Kafka message key, and a new text would send a row's next versions
 * to another partition than its earlier ones (and compaction keeps both). */
static int key_text(char *const *cols, size_t n, json_t *row,
                    struct sl_buf *key, const char **empty)
{
        sl_buf_reset(key);
        for (size_t i = 0; i < n; i++) {
                json_t *v = json_object_get(row, cols[i]);
                char *t = map_scalar_text(v);
                if (!t && v && !json_is_null(v))
                        t = sl_arena_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
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

/* The key of child row `row` among its parent's rows, in key: its
 * coalesce columns, or all its columns when it has none. -1 with the
 * empty column in *empty. */
static int child_key(const struct map_target *c, json_t *row,
                     struct sl_buf *key, const char **empty)
{
        char *all;

        if (c->ncoalesce)
                return key_text(c->coalesce, c->ncoalesce, row, key, empty);
        all = sl_arena_dumps(row, JSON_COMPACT | JSON_SORT_KEYS);
        sl_buf_reset(key);
        sl_buf_puts(key, all ? all : "");
        free(all);
        return 0;
}

/* Child rows of one parent record: the "replace" envelope's rows, the
 * rows the parent's script emitted to c (extra, may be NULL: their parent
 * key set and their key checked) after its elements'. New array, or NULL
 * with errstr/field on a rejected element. */
static json_t *child_rows(const struct map_target *c, json_t *rec,
                          json_t *parent_row, json_t *extra, char *errstr,
                          size_t errstr_size, char *field, size_t field_size)
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
                int built;
                if (!where_ok(c, e, rec, unused, sizeof(unused)))
                        continue;
                built = build_row(c, e, rec, NULL, &row, NULL, &col, why,
                                  sizeof(why));
                if (built == 1)
                        continue; /* its script dropped it */
                if (built < 0) {
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
                if (child_key(c, row, &key, &empty) < 0 ||
                    json_object_get(seen, key.data)) {
                        json_decref(row);
                        continue;
                }
                json_object_set_new(seen, key.data, json_true());
                json_array_append_new(rows, row);
        }
        /* the emitted rows join the set on the same terms */
        json_array_foreach(rows ? extra : NULL, i, e)
        {
                const char *empty = NULL;
                if (child_key(c, e, &key, &empty) < 0 ||
                    json_object_get(seen, key.data))
                        continue;
                json_object_set_new(seen, key.data, json_true());
                json_array_append(rows, e);
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

/* The upsert envelope of one row of t. New. */
static json_t *upsert_env(const struct map_target *t, json_t *row,
                          json_t *lineage)
{
        json_t *keyobj = json_object(), *env = json_object();

        for (size_t i = 0; i < t->ncoalesce; i++)
                json_object_set(keyobj, t->coalesce[i],
                                json_object_get(row, t->coalesce[i]));
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
        return env;
}

/* One envelope a record gives, ready to go out. */
struct out_env {
        json_t *env;
        struct map_target *t; /* whose topic and counter */
        char *key; /* its own Kafka key (owned), NULL: the record's */
        size_t key_len;
};

/* Envelopes of a record kept on the stack (its own row and its child
 * sets, most maps); a record with more (rows its script emitted) takes
 * them from the heap. */
#define OUT_ENVS_STACK 8

/* The rows t's record script emitted (emitted, as map_script_row gives
 * them), checked all before any goes out: each target row becomes an
 * envelope in outs (its own key), each child row joins crows[child]
 * (its parent key set from row, NULL when the record's own row does not
 * go out: `skip` says why). 0, or -1 with errstr and field. */
static int emitted_rows(struct map_target *t, json_t *emitted, json_t *row,
                        const char *skip, json_t *lineage, struct out_env *outs,
                        size_t *nouts, json_t **crows, char *errstr,
                        size_t errstr_size, char *field, size_t field_size)
{
        struct sl_buf key;
        json_t *e;
        size_t i;
        int rc = -1;

        sl_buf_init(&key, 0);
        json_array_foreach(emitted, i, e)
        {
                size_t ci =
                    (size_t)json_integer_value(json_object_get(e, "child"));
                struct map_target *dt = ci ? &t->children[ci - 1] : t;
                const char *col = t->script->name, *empty = NULL;
                char who[256];
                json_t *r;

                snprintf(who, sizeof(who), "%s:%d", t->script->name,
                         (int)json_integer_value(json_object_get(e, "line")));
                r = script_columns(dt, json_object_get(e, "row"), NULL, who, 1,
                                   &col, errstr, errstr_size);
                if (!r) {
                        snprintf(field, field_size, "%s%s%s",
                                 ci ? dt->table : "", ci ? "." : "", col);
                        goto out;
                }
                if (ci == 0) {
                        if (t->ci)
                                lower_coalesce(t, r);
                        if (key_text(t->coalesce, t->ncoalesce, r, &key,
                                     &empty) < 0) {
                                snprintf(errstr, errstr_size,
                                         "script: %s: emitted a row of %s "
                                         "without its key column %s",
                                         who, t->table, empty);
                                snprintf(field, field_size, "%s", empty);
                                json_decref(r);
                                goto out;
                        }
                        outs[*nouts].env = upsert_env(t, r, lineage);
                        outs[*nouts].t = t;
                        outs[*nouts].key = sl_strdup(key.data);
                        outs[*nouts].key_len = key.len;
                        (*nouts)++;
                        json_decref(r);
                        continue;
                }
                if (skip) {
                        snprintf(errstr, errstr_size,
                                 "script: %s: emitted a row of %s, but the "
                                 "record's own row of %s, its parent, is "
                                 "not output (%.128s)",
                                 who, dt->table, t->table, skip);
                        snprintf(field, field_size, "%s", t->script->name);
                        json_decref(r);
                        goto out;
                }
                for (size_t k = 0; k < dt->npk; k++)
                        json_object_set(r, dt->pk_child[k],
                                        json_object_get(row, dt->pk_parent[k]));
                if (dt->ncoalesce && key_text(dt->coalesce, dt->ncoalesce, r,
                                              &key, &empty) < 0) {
                        snprintf(errstr, errstr_size,
                                 "script: %s: emitted a row of %s without "
                                 "its key column %s",
                                 who, dt->table, empty);
                        snprintf(field, field_size, "%s.%s", dt->table, empty);
                        json_decref(r);
                        goto out;
                }
                if (!crows[ci])
                        crows[ci] = json_array();
                json_array_append_new(crows[ci], r);
        }
        rc = 0;
out:
        sl_buf_free(&key);
        return rc;
}

static int apply_record(struct map *m, struct map_target *t, json_t *rec,
                        json_t *page, json_t *lineage,
                        const struct map_emit *em)
{
        char why[768], field[256] = "", skip[512] = "";
        const char *col = NULL, *empty = NULL, *note = NULL;
        const struct map_script_emit ex = {.children = t->child_names,
                                           .nchildren = t->nchildren,
                                           .max = m->script_rows};
        json_t *row = NULL, *emitted = NULL, **crows = NULL;
        struct out_env outs_stack[OUT_ENVS_STACK], *outs = outs_stack;
        size_t nouts = 0, nemitted;
        struct sl_buf key;
        int rc = 0;

        sl_buf_init(&key, 0);
        t->in++;
        map_lua_set_page(m->lua, page);
        if (!where_ok(t, rec, page, why, sizeof(why))) {
                t->ignored++;
                if (em->note)
                        em->note(em->opaque, "ignored", t->table, why, rec);
                goto out;
        }
        rc = build_row(t, rec, page, &ex, &row, &emitted, &col, why,
                       sizeof(why));
        if (rc < 0) {
                rc = 0;
                snprintf(field, sizeof(field), "%s", col ? col : "");
                goto reject;
        }
        if (rc == 1) {
                /* the record's own row is dropped; rows its script
                 * emitted to its table still go out */
                note = "ignored";
                snprintf(skip, sizeof(skip), "dropped by %s", t->script->name);
        } else if (key_text(t->coalesce, t->ncoalesce, row, &key, &empty) < 0) {
                note = "skipped";
                snprintf(skip, sizeof(skip), "empty coalesce key %s", empty);
                sl_buf_reset(&key);
        }
        rc = 0;
        nemitted = json_array_size(emitted);
        if (1 + nemitted + t->nchildren > OUT_ENVS_STACK)
                outs = sl_calloc(1 + nemitted + t->nchildren, sizeof(*outs));
        if (!note) {
                outs[0].env = upsert_env(t, row, lineage);
                outs[0].t = t;
                outs[0].key = NULL;
                nouts = 1;
        }
        if (nemitted) {
                crows = sl_calloc(t->nchildren + 1, sizeof(*crows));
                if (emitted_rows(t, emitted, row, note ? skip : NULL, lineage,
                                 outs, &nouts, crows, why, sizeof(why), field,
                                 sizeof(field)) < 0)
                        goto reject;
        }
        for (size_t c = 0; c < t->nchildren && !note; c++) {
                struct map_target *ch = &t->children[c];
                json_t *rows =
                    child_rows(ch, rec, row, crows ? crows[c + 1] : NULL, why,
                               sizeof(why), field, sizeof(field));
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
                        /* The parent's version: the loader applies
                         * the set only when it is not older than the
                         * version stored for this parent's set
                         * (sluice.child_versions; docs/contracts.md,
                         * Versions), since an older page replayed later
                         * arrives after the newer one. */
                        json_object_set(cenv, "version",
                                        json_object_get(row, t->version));
                }
                json_object_set(cenv, "lineage", lineage);
                outs[nouts].env = cenv;
                outs[nouts].t = ch;
                outs[nouts].key = NULL;
                nouts++;
        }
        if (note) {
                if (note[0] == 'i')
                        t->ignored++;
                else
                        t->skipped++;
                if (em->note)
                        em->note(em->opaque, note, t->table, skip, rec);
        }
        /* every row of the record is ready: emit them together (the
         * record's own row, the rows its script emitted, its child sets) */
        for (size_t i = 0; i < nouts; i++) {
                json_t *e = outs[i].env;
                if (outs[i].key)
                        rc = em->row(em->opaque, outs[i].t->topic, outs[i].key,
                                     outs[i].key_len, e);
                else
                        rc = em->row(em->opaque, outs[i].t->topic, key.data,
                                     key.len, e);
                if (rc)
                        goto out;
                if (outs[i].t == t)
                        t->out++;
                else
                        outs[i].t->out +=
                            json_array_size(json_object_get(e, "rows"));
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
        for (size_t i = 0; i < nouts; i++) {
                json_decref(outs[i].env);
                free(outs[i].key);
        }
        if (outs != outs_stack)
                free(outs);
        for (size_t c = 0; crows && c <= t->nchildren; c++)
                json_decref(crows[c]);
        free(crows);
        json_decref(emitted);
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

/* The first member name of a path after its '$' or '^' (s), or of a
 * relative path: 0 with it in name, -1 when not a plain member. */
static int first_name(const char *s, int rooted, char *name, size_t n)
{
        size_t k;
        const char *b = s;

        if (!rooted && *s != '.' && *s != '[') {
                k = strcspn(s, ".[");
        } else if (s[0] == '.' && s[1] && s[1] != '.') {
                b = s + 1;
                k = strcspn(b, ".[");
        } else if (s[0] == '[' && (s[1] == '\'' || s[1] == '"')) {
                const char *e = strchr(s + 2, s[1]);
                if (!e)
                        return -1;
                b = s + 2;
                k = (size_t)(e - b);
        } else {
                return -1;
        }
        if (k == 0 || k >= n)
                return -1;
        memcpy(name, b, k);
        name[k] = '\0';
        return 0;
}

/* Whether the page's "^" paths stay clear of path's first member (they
 * then read the same in the page without its records). */
static int page_reads_clear(const struct map *m, const char *p)
{
        char rn[256], pn[256];

        if (m->npage_reads == 0)
                return 1;
        if (strcmp(p, "$") == 0 || strstr(p, "[*]") ||
            first_name(p[0] == '$' ? p + 1 : p, p[0] == '$', rn, sizeof(rn)) <
                0)
                return 0;
        for (size_t i = 0; i < m->npage_reads; i++)
                if (first_name(m->page_reads[i] + 1, 1, pn, sizeof(pn)) < 0 ||
                    strcmp(pn, rn) == 0)
                        return 0;
        return 1;
}

/* The records a path selects in a valid text, as spans, in selection
 * order: "A" (an array's elements, or one record when not an array) or
 * "A[*]" / "A[*].B" (each element, or its member B when present), A and B
 * plain member paths. Returns the count, or -2 when the text or the path
 * needs the decoded page (another path form, a selected value that is an
 * array to flatten). */
static long select_spans(const char *text, size_t len, const char *path,
                         struct sl_json_span **out)
{
        const char *star = strstr(path, "[*]");
        size_t alen = star ? (size_t)(star - path) : strlen(path);
        char a[512];
        const char *b = NULL;
        struct sl_json_span v, *el = NULL, *r = NULL;
        size_t open, close, n = 0;
        long ne;
        int found;

        *out = NULL;
        if (alen >= sizeof(a) || (star && strstr(star + 3, "[*]")))
                return -2;
        memcpy(a, path, alen);
        a[alen] = '\0';
        if (star) {
                b = star + 3;
                if (*b && *b != '.')
                        return -2;
        }
        if (!*a || strcmp(a, "$") == 0) {
                found = 1;
                v.off = 0;
                v.len = len;
        } else {
                found = sl_json_member(text, len, a, &v);
        }
        if (found < 0)
                return -2;
        if (!found)
                return 0;
        while (v.len && strchr(" \t\r\n", text[v.off]))
                v.off++, v.len--;
        if (text[v.off] != '[') {
                if (star)
                        return -2; /* [*] of an object: the decoded way */
                *out = sl_malloc(sizeof(**out));
                (*out)[0] = v;
                return 1;
        }
        ne = sl_json_locate_array(text + v.off, v.len, "$", &open, &close, &el);
        if (ne < 0)
                return -2;
        r = sl_malloc(((size_t)ne + 1) * sizeof(*r));
        for (long i = 0; i < ne; i++) {
                struct sl_json_span e = {el[i].off + v.off, el[i].len};
                if (b && *b) {
                        struct sl_json_span m;
                        int f = sl_json_member(text + e.off, e.len, b + 1, &m);
                        if (f < 0) {
                                free(el);
                                free(r);
                                return -2;
                        }
                        if (!f)
                                continue;
                        e.off += m.off;
                        e.len = m.len;
                }
                if (star && text[e.off] == '[') {
                        /* an array selected: its elements would count */
                        free(el);
                        free(r);
                        return -2;
                }
                r[n++] = e;
        }
        free(el);
        *out = r;
        return (long)n;
}

int map_sparse_off;
unsigned long map_sparse_pages;

int map_apply_bytes(struct map *m, const char *bytes, size_t len,
                    const char *records_hdr, const struct map_lineage *lin,
                    const struct map_emit *em)
{
        struct sl_json_span **recs;
        long *nrec;
        json_t *page = NULL;
        json_error_t jerr;
        int rc = 0;

        if (map_sparse_off || !bytes || m->ntargets == 0 ||
            sl_json_validate(bytes, len, 0, NULL) < 0)
                return MAP_NOT_APPLIED;
        recs = sl_calloc(m->ntargets, sizeof(*recs));
        nrec = sl_calloc(m->ntargets, sizeof(*nrec));
        /* every target's records first: nothing is emitted unless the
         * whole page can be done this way */
        for (size_t ti = 0; ti < m->ntargets && rc == 0; ti++) {
                const struct map_target *t = &m->targets[ti];
                for (size_t a = 0; a <= t->nalt; a++) {
                        const char *p =
                            a ? sl_jsonpath_text(t->records_alt[a - 1])
                            : t->records
                                ? t->records_text
                                : (records_hdr && *records_hdr ? records_hdr
                                                               : "$");
                        free(recs[ti]);
                        nrec[ti] = select_spans(bytes, len, p, &recs[ti]);
                        if (nrec[ti] < 0 ||
                            (nrec[ti] > 0 && !page_reads_clear(m, p))) {
                                rc = MAP_NOT_APPLIED;
                                break;
                        }
                        if (nrec[ti] > 0)
                                break;
                }
        }
        if (rc == 0 && (m->npage_reads || m->script_page)) {
                /* the page around the records, for "^" paths (one path,
                 * page_reads_clear: the first target's) and scripts */
                size_t open = 0, close = 0;
                struct sl_json_span *el = NULL;
                const struct map_target *t = &m->targets[0];
                const char *p =
                    t->records
                        ? t->records_text
                        : (records_hdr && *records_hdr ? records_hdr : "$");
                long ne =
                    sl_json_locate_array(bytes, len, p, &open, &close, &el);
                free(el);
                if (ne < 0) {
                        page = json_loadb(bytes, len, JSON_ALLOW_NUL, &jerr);
                } else {
                        size_t hl = open + 1, tl = len - close;
                        char *skel = sl_malloc(hl + tl + 1);
                        memcpy(skel, bytes, hl);
                        memcpy(skel + hl, bytes + close, tl);
                        page = json_loadb(skel, hl + tl, JSON_ALLOW_NUL, &jerr);
                        free(skel);
                }
                if (!page)
                        rc = MAP_NOT_APPLIED;
        } else if (rc == 0) {
                page = json_object(); /* nothing reads it */
        }
        /* each record decoded, mapped and freed in turn: its tree stays
         * in cache, and its memory is reused by the next. With
         * em->record_arena, the tree and its rows are cut from one arena
         * (sl_arena.h, when the process installed it) that the next record
         * reuses, and no block is malloc'ed or freed on its own */
        for (size_t ti = 0; ti < m->ntargets && rc == 0; ti++) {
                struct map_target *t = &m->targets[ti];
                for (long i = 0; i < nrec[ti] && rc == 0; i++) {
                        json_t *rec, *lineage;
                        if (em->record_arena)
                                sl_arena_enter(&record_arena);
                        /* the page was validated: the record is built
                         * from its spans, not parsed again */
                        rec = sl_json_decode(bytes, len, recs[ti][i]);
                        lineage = lineage_new(m, lin, (size_t)i);
                        if (em->record)
                                em->record(em->opaque, ti, rec);
                        rc = apply_record(m, t, rec, page, lineage, em);
                        json_decref(lineage);
                        json_decref(rec);
                        if (em->record_arena) {
                                sl_arena_leave();
                                sl_arena_free(&record_arena);
                        }
                }
        }
        for (size_t ti = 0; ti < m->ntargets; ti++)
                free(recs[ti]);
        free(recs);
        free(nrec);
        json_decref(page);
        if (rc != MAP_NOT_APPLIED)
                map_sparse_pages++;
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
