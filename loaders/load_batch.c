/* load_batch: batching, dedupe, staging, upsert, bisection, dead letters,
 * offsets and the run report of one topic's rows. SQL text is assembled
 * only from catalog identifiers quoted with PQescapeIdentifier and constant
 * fragments; every value travels as COPY data or a parameter. */
#include "load_batch.h"
#include "sl_metrics.h"
#include "copy_encode.h"
#include "sl_arena.h"
#include "load_env.h"
#include "sl_jsondump.h"
#include "sl_jsonscan.h"
#include "sl_kafka.h"
#include "sl_log.h"
#include "sl_pg.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BATCH_PREFIX "mapped."

struct load_batch *load_batch_new(const char *topic)
{
        struct load_batch *b = sl_calloc(1, sizeof(*b));

        b->topic = sl_strdup(topic);
        b->table = sl_strdup(sl_str_has_prefix(topic, BATCH_PREFIX)
                                 ? topic + strlen(BATCH_PREFIX)
                                 : topic);
        return b;
}

/* in_arena: the envelope was made wholly in the batch's arena, which
 * frees it whole (walking a thousand trees was a tenth of the loader) */
static void unit_free(struct load_unit *u, int in_arena)
{
        if (!in_arena)
                json_decref(u->env);
        if (u->rkm)
                rd_kafka_message_destroy(u->rkm);
        free(u->text);
        free(u->raw);
        free(u->msgkey);
        free(u->dkey);
        free(u->error);
        free(u->field);
        free(u->sqlstate);
        memset(u, 0, sizeof(*u));
}

void load_batch_clear(struct load_batch *b)
{
        /* every change to an envelope's tree is made in the batch's arena
         * (load_batch_add, plan_make), once the arena is installed */
        int in_arena = sl_arena_active();

        for (size_t i = 0; i < b->n; i++)
                unit_free(&b->units[i], in_arena);
        sl_arena_free(&b->arena);
        b->n = 0;
        b->bytes = 0;
        b->nparts = 0;
}

void load_batch_destroy(struct load_batch *b)
{
        if (!b)
                return;
        load_batch_clear(b);
        free(b->units);
        free(b->parts);
        free(b->topic);
        free(b->table);
        free(b);
}

static void unit_reject(struct load_unit *u, const char *field,
                        const char *sqlstate, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void unit_reject(struct load_unit *u, const char *field,
                        const char *sqlstate, const char *fmt, ...)
{
        char msg[1024];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        free(u->error);
        free(u->field);
        free(u->sqlstate);
        u->error = sl_strdup(msg);
        u->field = field ? sl_strdup(field) : NULL;
        u->sqlstate = sqlstate ? sl_strdup(sqlstate) : NULL;
        u->state = LOAD_UNIT_REJECTED;
}

/* Checks the envelope's shape and sets op and the dedupe key. */
static void unit_parse(struct load_batch *b, struct load_unit *u)
{
        json_t *env = u->env, *key, *row, *rows;
        const char *table, *op;
        char *k;

        if (!json_is_object(env)) {
                unit_reject(u, NULL, NULL, "envelope is not a JSON object");
                return;
        }
        if (!json_is_integer(json_object_get(env, "v")) ||
            json_integer_value(json_object_get(env, "v")) != 1) {
                unit_reject(u, "v", NULL, "envelope v is not 1");
                return;
        }
        table = json_string_value(json_object_get(env, "table"));
        if (!table || strcmp(table, b->table) != 0) {
                unit_reject(u, "table", NULL,
                            "envelope table \"%s\" does not match topic %s",
                            table ? table : "(missing)", b->topic);
                return;
        }
        op = json_string_value(json_object_get(env, "op"));
        key = json_object_get(env, "key");
        row = json_object_get(env, "row");
        rows = json_object_get(env, "rows");
        if (!json_is_object(key) || json_object_size(key) == 0) {
                unit_reject(u, "key", NULL,
                            "envelope key is not a "
                            "non-empty object");
                return;
        }
        if (op && strcmp(op, "upsert") == 0) {
                u->op = 'u';
                if (!json_is_object(row)) {
                        unit_reject(u, "row", NULL,
                                    "upsert envelope has no row object");
                        return;
                }
        } else if (op && strcmp(op, "delete") == 0) {
                u->op = 'd';
        } else if (op && strcmp(op, "replace") == 0) {
                size_t i;
                json_t *r;

                u->op = 'r';
                if (!json_is_array(rows)) {
                        unit_reject(u, "rows", NULL,
                                    "replace envelope has no rows array");
                        return;
                }
                json_array_foreach(rows, i, r) if (!json_is_object(r))
                {
                        unit_reject(u, "rows", NULL,
                                    "replace envelope rows[%zu] is not an "
                                    "object",
                                    i);
                        return;
                }
        } else {
                unit_reject(u, "op", NULL,
                            "envelope op \"%s\" is not upsert, delete or "
                            "replace",
                            op ? op : "(missing)");
                return;
        }
        k = json_dumps(key, JSON_COMPACT | JSON_SORT_KEYS);
        /* upserts and deletes of a key compete; a replace is per parent */
        u->dkey = sl_asprintf("%c%s", u->op == 'r' ? 'p' : 'k', k ? k : "");
        sl_arena_json_free(k);
}

static void add(struct load_batch *b, const rd_kafka_message_t *rkm,
                rd_kafka_message_t *keep)
{
        struct load_unit *u;
        json_error_t jerr;
        const char *text = rkm->payload;
        int found = 0;

        if (b->n == b->cap) {
                b->cap = b->cap ? b->cap * 2 : 256;
                b->units = sl_realloc(b->units, sizeof(*b->units) * b->cap);
        }
        u = &b->units[b->n++];
        memset(u, 0, sizeof(*u));
        u->partition = rkm->partition;
        u->offset = rkm->offset;
        if (rkm->key) {
                u->msgkey = sl_malloc(rkm->key_len + 1);
                memcpy(u->msgkey, rkm->key, rkm->key_len);
                u->msgkey[rkm->key_len] = '\0';
                u->msgkey_len = rkm->key_len;
        }
        u->rkm = keep;
        if (text && !keep) {
                u->text = sl_malloc(rkm->len ? rkm->len : 1);
                memcpy(u->text, text, rkm->len);
                text = u->text;
        }
        sl_arena_enter(&b->arena);
        /* validated in one pass, then built without the big JSON values
         * (load_env.h); Jansson parses only what fails, to say why */
        if (text && sl_json_validate(text, rkm->len, 0, NULL) == 0) {
                u->env = load_env_decode(text, rkm->len);
                if (!u->env)
                        u->env = json_loadb(text, rkm->len, 0, &jerr);
        } else if (text) {
                u->env = json_loadb(text, rkm->len, 0, &jerr);
                if (u->env) { /* Jansson takes "[1\0]"; it is not JSON */
                        json_decref(u->env);
                        u->env = NULL;
                        snprintf(jerr.text, sizeof(jerr.text),
                                 "NUL byte in the text");
                        jerr.line = jerr.column = 0;
                }
        }
        if (!u->env) {
                u->raw = sl_strndup(rkm->payload ? rkm->payload : "", rkm->len);
                u->raw_len = rkm->len;
                unit_reject(u, NULL, NULL,
                            "envelope is not JSON: %s (line %d column %d)",
                            rkm->payload ? jerr.text : "empty message",
                            rkm->payload ? jerr.line : 0,
                            rkm->payload ? jerr.column : 0);
        } else {
                unit_parse(b, u);
        }
        sl_arena_leave();
        if (b->n == 1) {
                b->opened_ms = sl_now_ms();
                b->opened_wall_ms = sl_wall_ms();
        }
        b->bytes += rkm->len + rkm->key_len;
        for (int i = 0; i < b->nparts; i++) {
                if (b->parts[i].partition != rkm->partition)
                        continue;
                b->parts[i].last = rkm->offset;
                found = 1;
        }
        if (!found) {
                b->parts = sl_realloc(b->parts, sizeof(*b->parts) *
                                                    (size_t)(b->nparts + 1));
                b->parts[b->nparts].partition = rkm->partition;
                b->parts[b->nparts].first = rkm->offset;
                b->parts[b->nparts].last = rkm->offset;
                b->nparts++;
        }
}

void load_batch_take(struct load_batch *b, rd_kafka_message_t *rkm)
{
        add(b, rkm, rkm);
}

void load_batch_add(struct load_batch *b, const rd_kafka_message_t *rkm)
{
        add(b, rkm, NULL);
}

enum sl_status load_pg_classify(const char *sqlstate, int conn_ok)
{
        static const char *const record[] = {"21", "22", "23", "42",
                                             "44", "54", "P0"};

        if (!conn_ok || !sqlstate || strlen(sqlstate) != 5)
                return SL_ERR_RETRY;
        if (strcmp(sqlstate, "55P03") == 0)
                return SL_ERR_RETRY;
        for (size_t i = 0; i < sizeof(record) / sizeof(record[0]); i++)
                if (strncmp(sqlstate, record[i], 2) == 0)
                        return SL_ERR_RECORD;
        /* 08 connection, 40 rollback, 53 resources, 57 operator
         * intervention, 58 system, and anything unknown: retry rather
         * than dead-letter good data. */
        return SL_ERR_RETRY;
}

void load_ctx_forget_tables(struct load_ctx *ctx)
{
        for (int i = 0; i < ctx->ntables; i++)
                load_table_destroy(ctx->tables[i]);
        free(ctx->tables);
        ctx->tables = NULL;
        ctx->ntables = 0;
}

/* The cached shape of table name, read from the catalog when not cached
 * yet (*fresh = 1 then). */
static struct load_table *table_cached(struct load_ctx *ctx, const char *name,
                                       int *fresh, enum sl_status *status,
                                       char *errstr, size_t errstr_size)
{
        struct load_table *t;

        *fresh = 0;
        for (int i = 0; i < ctx->ntables; i++)
                if (strcmp(ctx->tables[i]->name, name) == 0) {
                        *status = SL_OK;
                        return ctx->tables[i];
                }
        t = load_table_get(ctx->conn, name, status, errstr, errstr_size);
        if (!t)
                return NULL;
        ctx->tables = sl_realloc(ctx->tables, sizeof(*ctx->tables) *
                                                  (size_t)(ctx->ntables + 1));
        ctx->tables[ctx->ntables++] = t;
        *fresh = 1;
        sl_info("event=table_checked table=%s columns=%d unique_indexes=%d "
                "lineage=%s",
                name, t->ncols, t->nidx, t->lineage >= 0 ? "yes" : "no");
        return t;
}

/* A name that was not a column of t when t was read is looked for in the
 * catalog again only after this long: rows that keep carrying a dropped
 * column (or one never added) would otherwise cost a catalog read per
 * batch. */
#define LOAD_REREAD_MS 10000

/* 1 when name may be a column added since t was read: t lacks it, and
 * it was not already missing at t's read (or that was a while ago). */
static int name_unknown(const struct load_table *t, const char *name)
{
        if (load_table_col(t, name) >= 0)
                return 0;
        if (sl_now_ms() - t->read_ms >= LOAD_REREAD_MS)
                return 1;
        for (int i = 0; i < t->nabsent; i++)
                if (strcmp(t->absent[i], name) == 0)
                        return 0;
        return 1;
}

static const char *obj_unknown(const struct load_table *t, json_t *obj)
{
        const char *name;
        json_t *v;

        json_object_foreach(obj, name, v)
        {
                (void)v;
                if (name_unknown(t, name))
                        return name;
        }
        return NULL;
}

/* The first column name a pending message of b gives (in its key, row,
 * child rows or version_column) that t may have gained since it was
 * read, or NULL. Borrowed from b. */
static const char *batch_unknown(const struct load_table *t,
                                 struct load_batch *b)
{
        const char *name = NULL;

        for (size_t i = 0; i < b->n && !name; i++) {
                struct load_unit *u = &b->units[i];
                const char *vname;
                json_t *r;
                size_t k;

                if (u->state != LOAD_UNIT_PENDING)
                        continue;
                name = obj_unknown(t, json_object_get(u->env, "key"));
                vname = json_string_value(
                    json_object_get(u->env, "version_column"));
                if (!name && vname && name_unknown(t, vname))
                        name = vname;
                if (!name && u->op == 'u')
                        name = obj_unknown(t, json_object_get(u->env, "row"));
                if (u->op == 'r')
                        json_array_foreach(json_object_get(u->env, "rows"), k,
                                           r) if (!name) name =
                            obj_unknown(t, r);
        }
        return name;
}

/* Remembers the names b gives that t lacks (see LOAD_REREAD_MS). */
static void absent_note(struct load_table *t, struct load_batch *b)
{
        const char *name;

        if (sl_now_ms() - t->read_ms >= LOAD_REREAD_MS)
                return;
        while ((name = batch_unknown(t, b)) != NULL) {
                t->absent = sl_realloc(t->absent, sizeof(*t->absent) *
                                                      (size_t)(t->nabsent + 1));
                t->absent[t->nabsent++] = sl_strdup(name);
        }
}

/* ", "-joined names of a's columns that b lacks, or whose type differs
 * (types != 0), into q ("-" for none). */
static void cols_diff(struct sl_buf *q, const struct load_table *a,
                      const struct load_table *b, int types)
{
        size_t len = q->len;

        for (int i = 0; i < a->ncols; i++) {
                int c = load_table_col(b, a->cols[i].name);

                if (types
                        ? c < 0 || strcmp(a->cols[i].type, b->cols[c].type) == 0
                        : c >= 0)
                        continue;
                sl_buf_printf(q, "%s%s", q->len > len ? "," : "",
                              a->cols[i].name);
        }
        if (q->len == len)
                sl_buf_puts(q, "-");
}

/* Reads t's table from the catalog again, the cached shape being stale
 * (why: the SQLSTATE that said so, or the unknown column a row gave),
 * and puts the new shape in t's place in the cache (t is destroyed). The
 * new shape, or NULL with *status and errstr when the table is gone
 * (SL_ERR_RECORD) or the catalog could not be read: t is dropped from the
 * cache either way. */
static struct load_table *table_reread(struct load_ctx *ctx,
                                       struct load_table *t, const char *why,
                                       enum sl_status *status, char *errstr,
                                       size_t errstr_size)
{
        struct load_table *nt;
        struct sl_buf q;
        char qw[200];
        int at = 0;

        while (at < ctx->ntables && ctx->tables[at] != t)
                at++;
        nt = load_table_get(ctx->conn, t->name, status, errstr, errstr_size);
        if (!nt) {
                sl_warn("event=table_reread_failed table=%s reason=%s "
                        "lane=%d",
                        t->name, sl_log_quote(why, qw, sizeof(qw)), ctx->lane);
                if (at < ctx->ntables)
                        ctx->tables[at] = ctx->tables[--ctx->ntables];
                load_table_destroy(t);
                return NULL;
        }
        nt->unchecked = t->unchecked;
        nt->unanalyzed = t->unanalyzed;
        nt->no_analyze = t->no_analyze;
        sl_buf_init(&q, 0);
        sl_buf_puts(&q, "added=");
        cols_diff(&q, nt, t, 0);
        sl_buf_puts(&q, " dropped=");
        cols_diff(&q, t, nt, 0);
        sl_buf_puts(&q, " retyped=");
        cols_diff(&q, nt, t, 1);
        if (strcmp(q.data, "added=- dropped=- retyped=-") == 0)
                sl_info("event=table_columns_unchanged table=%s reason=%s "
                        "lane=%d",
                        t->name, sl_log_quote(why, qw, sizeof(qw)), ctx->lane);
        else
                sl_notice("event=table_columns_changed table=%s %s "
                          "reason=%s lane=%d",
                          t->name, q.data, sl_log_quote(why, qw, sizeof(qw)),
                          ctx->lane);
        sl_buf_free(&q);
        if (at < ctx->ntables)
                ctx->tables[at] = nt;
        load_table_destroy(t);
        return nt;
}

/* The shape a flush writes: which columns, which key, which version. */
struct plan {
        struct load_table *t;
        int staged;        /* an apply of this transaction left rows in the
                              staging table */
        int kcols[32], nk; /* upsert/delete key (from the envelopes) */
        int kidx;          /* the unique index matching it, or -1 */
        int pcols[32], np; /* replace: parent key columns */
        int ridx;          /* replace: unique index of the child rows */
        int vcol;          /* version column, or -1 */
        const char *vname; /* as the envelopes name it */
        int may_reread;    /* the batch's first apply: a refusal that says
                              the table changed is not the rows' fault */
        int stale;         /* ... and it was refused so (bisect) */
};

/* Collects the column indexes named by an object's keys into cols (at
 * most 32). -1, naming the missing column, when one is not in t. */
static int key_cols(struct load_table *t, json_t *key, int *cols, int *n,
                    const char **missing)
{
        const char *name;
        json_t *v;

        *n = 0;
        json_object_foreach(key, name, v)
        {
                int c = load_table_col(t, name);
                (void)v;
                if (c < 0 || *n == 32) {
                        *missing = name;
                        return -1;
                }
                cols[(*n)++] = c;
        }
        return 0;
}

static int same_set(const int *a, int na, const int *b, int nb)
{
        if (na != nb)
                return 0;
        for (int i = 0; i < na; i++) {
                int found = 0;
                for (int k = 0; k < nb; k++)
                        found |= a[i] == b[k];
                if (!found)
                        return 0;
        }
        return 1;
}

/* Checks a row against the table: every column exists and is not a
 * bookkeeping column, every value encodes for its column, and the key's
 * values agree with the row's. Missing key columns are filled in from the
 * key. 0 or -1 (unit rejected). */
static int check_row(struct load_unit *u, struct load_table *t, json_t *row,
                     json_t *key, const char *where)
{
        char err[512];
        const char *name;
        json_t *v;
        int rc = 0;
        void *it;

        /* a raw value (load_env.h) stays text only for a json column */
        for (it = json_object_iter(row); it;
             it = json_object_iter_next(row, it)) {
                size_t n;
                int c;
                json_t *d;

                name = json_object_iter_key(it);
                v = json_object_iter_value(it);
                c = load_table_col(t, name);
                if (!load_raw_text(v, &n) ||
                    (c >= 0 && t->cols[c].kind == LOAD_COL_JSON &&
                     !json_object_get(key, name)))
                        continue;
                d = load_raw_decode(v);
                if (!d) {
                        unit_reject(u, name, NULL, "%s: column %s: no memory",
                                    where, name);
                        return -1;
                }
                json_object_iter_set_new(row, it, d);
        }
        json_object_foreach(key, name, v)
        {
                json_t *rv = json_object_get(row, name);
                if (!rv) {
                        json_object_set(row, name, v);
                } else if (!json_equal(rv, v)) {
                        unit_reject(u, name, NULL,
                                    "%s: column %s differs between the row "
                                    "and the key",
                                    where, name);
                        rc = -1;
                        goto out;
                }
        }
        json_object_foreach(row, name, v)
        {
                int c = load_table_col(t, name);
                if (c < 0) {
                        unit_reject(u, name, NULL,
                                    "%s: column %s does not exist in table "
                                    "%s",
                                    where, name, t->name);
                        rc = -1;
                        goto out;
                }
                if (c == t->lineage || c == t->loaded_at) {
                        unit_reject(u, name, NULL,
                                    "%s: column %s is written by the loader",
                                    where, name);
                        rc = -1;
                        goto out;
                }
                if (copy_check_value(v, t->cols[c].kind, err, sizeof(err)) <
                    0) {
                        unit_reject(u, name, NULL, "%s: column %s (%s): %s",
                                    where, name, t->cols[c].type, err);
                        rc = -1;
                        goto out;
                }
        }
out:
        return rc;
}

/* Validates every pending unit against the table and fixes the plan.
 * SL_OK, or SL_ERR_FATAL with errstr when the table cannot take the
 * batch at all (no unique index on the key): an operator fixes that, the
 * loader parks the table meanwhile, and nothing is dead-lettered. */
static enum sl_status plan_make(struct plan *p, struct load_batch *b,
                                char *errstr, size_t errstr_size)
{
        struct load_table *t = p->t;
        int have_k = 0, have_p = 0, cols[32], n;

        p->kidx = p->ridx = p->vcol = -1;
        p->nk = p->np = 0;
        p->vname = NULL;
        for (size_t i = 0; i < b->n; i++) {
                struct load_unit *u = &b->units[i];
                json_t *key, *vc;
                const char *missing = NULL, *vname;

                if (u->state != LOAD_UNIT_PENDING)
                        continue;
                key = json_object_get(u->env, "key");
                if (key_cols(t, key, cols, &n, &missing) < 0) {
                        unit_reject(u, missing, NULL,
                                    "key column %s does not exist in table "
                                    "%s",
                                    missing, t->name);
                        continue;
                }
                vc = json_object_get(u->env, "version_column");
                vname = json_string_value(vc);
                if (vc && !vname) {
                        unit_reject(u, "version_column", NULL,
                                    "version_column is not a string");
                        continue;
                }
                if (vname && load_table_col(t, vname) < 0) {
                        unit_reject(u, vname, NULL,
                                    "version column %s does not exist in "
                                    "table %s",
                                    vname, t->name);
                        continue;
                }
                if (vname && p->vname && strcmp(vname, p->vname) != 0) {
                        unit_reject(u, vname, NULL,
                                    "version column %s differs from the "
                                    "batch's %s",
                                    vname, p->vname);
                        continue;
                }
                if (vname && !p->vname) {
                        p->vname = vname;
                        p->vcol = load_table_col(t, vname);
                }
                if (u->op == 'r') {
                        if (!have_p) {
                                memcpy(p->pcols, cols, sizeof(cols));
                                p->np = n;
                                have_p = 1;
                        } else if (!same_set(cols, n, p->pcols, p->np)) {
                                unit_reject(u, "key", NULL,
                                            "replace key columns differ "
                                            "from the batch's");
                                continue;
                        }
                } else {
                        if (!have_k) {
                                memcpy(p->kcols, cols, sizeof(cols));
                                p->nk = n;
                                have_k = 1;
                        } else if (!same_set(cols, n, p->kcols, p->nk)) {
                                unit_reject(u, "key", NULL,
                                            "key columns differ from the "
                                            "batch's");
                                continue;
                        }
                }
        }
        if (have_k) {
                p->kidx = load_table_index(t, p->kcols, p->nk, 0);
                if (p->kidx < 0) {
                        snprintf(errstr, errstr_size,
                                 "table %s has no unique index on its "
                                 "coalesce columns (the envelope key's "
                                 "columns, e.g. %s): create one",
                                 t->name, t->cols[p->kcols[0]].name);
                        return SL_ERR_FATAL;
                }
        }
        if (have_p) {
                p->ridx = load_table_index(t, p->pcols, p->np, 1);
                if (p->ridx < 0) {
                        snprintf(errstr, errstr_size,
                                 "table %s has no unique index containing "
                                 "the parent key of its replace envelopes "
                                 "(e.g. %s): create one",
                                 t->name, t->cols[p->pcols[0]].name);
                        return SL_ERR_FATAL;
                }
        }
        /* rows: columns, encodings, and the conflict columns present */
        for (size_t i = 0; i < b->n; i++) {
                struct load_unit *u = &b->units[i];
                json_t *key = json_object_get(u->env, "key"), *r;
                char where[64];
                size_t k;

                if (u->state != LOAD_UNIT_PENDING)
                        continue;
                if (u->op == 'u') {
                        check_row(u, t, json_object_get(u->env, "row"), key,
                                  "row");
                } else if (u->op == 'd') {
                        check_row(u, t, key, key, "key");
                } else {
                        const struct load_index *ix = &t->idx[p->ridx];
                        json_array_foreach(json_object_get(u->env, "rows"), k,
                                           r)
                        {
                                snprintf(where, sizeof(where), "rows[%zu]", k);
                                if (check_row(u, t, r, key, where) < 0)
                                        break;
                                for (int c = 0; c < ix->ncols; c++) {
                                        const char *cn =
                                            t->cols[ix->cols[c]].name;
                                        if (json_object_get(r, cn))
                                                continue;
                                        unit_reject(u, cn, NULL,
                                                    "%s: lacks column %s of "
                                                    "the unique index",
                                                    where, cn);
                                        break;
                                }
                                if (u->state != LOAD_UNIT_PENDING)
                                        break;
                        }
                }
        }
        return SL_OK;
}

/* n decimal digits at s into *v; 0, or -1 when one is not a digit */
static int digits(const char *s, int n, int *v)
{
        *v = 0;
        for (int i = 0; i < n; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return -1;
                *v = *v * 10 + (s[i] - '0');
        }
        return 0;
}

/* The instant of an RFC 3339 timestamp with a zone (YYYY-MM-DD, T or a
 * space, hh:mm[:ss[.fraction]], Z or +hh[:mm]): microseconds since the
 * epoch, the fraction rounded to microseconds as PostgreSQL does. 0, or
 * -1 when s is not one. The pattern is sluice.version_ge()'s
 * (schemas/sluice.sql), so that a batch and the table order versions
 * alike. */
static int version_instant(const char *s, int64_t *us)
{
        int y, mo, d, h, mi, sec = 0, oh = 0, om = 0, sign = 0;
        int64_t frac = 0, days, yy, era, yoe, doy;
        const char *p;

        if (digits(s, 4, &y) < 0 || s[4] != '-' || digits(s + 5, 2, &mo) < 0 ||
            s[7] != '-' || digits(s + 8, 2, &d) < 0 ||
            (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
            digits(s + 11, 2, &h) < 0 || s[13] != ':' ||
            digits(s + 14, 2, &mi) < 0)
                return -1;
        p = s + 16;
        if (*p == ':') {
                if (digits(p + 1, 2, &sec) < 0)
                        return -1;
                p += 3;
                if (*p == '.') {
                        int64_t scale = 100000;
                        int n = 0;
                        for (p++; *p >= '0' && *p <= '9'; p++, n++) {
                                if (n < 6)
                                        frac += (*p - '0') * scale;
                                else if (n == 6 && *p >= '5')
                                        frac++;
                                scale /= 10;
                        }
                        if (n == 0)
                                return -1;
                }
        }
        if (*p == 'Z' || *p == 'z') {
                p++;
        } else if (*p == '+' || *p == '-') {
                sign = *p == '-' ? -1 : 1;
                if (digits(p + 1, 2, &oh) < 0)
                        return -1;
                p += 3;
                if (*p == ':' || *p) {
                        p += *p == ':';
                        if (digits(p, 2, &om) < 0)
                                return -1;
                        p += 2;
                }
        } else {
                return -1;
        }
        if (*p || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 24 || mi > 59 ||
            sec > 60)
                return -1;
        yy = y - (mo <= 2);
        era = (yy >= 0 ? yy : yy - 399) / 400;
        yoe = yy - era * 400;
        doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
        days = era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
        *us = ((days * 86400 + h * 3600 + mi * 60 + sec) -
               (int64_t)sign * (oh * 3600 + om * 60)) *
                  1000000 +
              frac;
        return 0;
}

/* The version rule (docs/contracts.md, Versions), as sluice.version_ge()
 * applies it in the database: numbers as numbers, two timestamps with a
 * zone as instants, any other pair as text (bytes). */
static int version_cmp(json_t *a, json_t *b)
{
        if (json_is_string(a) && json_is_string(b)) {
                int64_t x, y;
                int c;
                if (version_instant(json_string_value(a), &x) == 0 &&
                    version_instant(json_string_value(b), &y) == 0)
                        return (x > y) - (x < y);
                c = strcmp(json_string_value(a), json_string_value(b));
                return (c > 0) - (c < 0);
        }
        if (json_is_number(a) && json_is_number(b)) {
                double x = json_number_value(a), y = json_number_value(b);
                return (x > y) - (x < y);
        }
        return 0;
}

static int ref_cmp(const void *pa, const void *pb)
{
        const struct load_unit *a = *(struct load_unit *const *)pa;
        const struct load_unit *b = *(struct load_unit *const *)pb;
        int c = strcmp(a->dkey, b->dkey);

        if (c)
                return c;
        c = version_cmp(json_object_get(a->env, "version"),
                        json_object_get(b->env, "version"));
        if (c)
                return c;
        /* the same version (or none): the later message wins */
        return a < b ? -1 : a > b;
}

/* Within the batch one message per key takes effect: the newest by
 * version, else the last consumed. The others are superseded. */
static void dedupe(struct load_batch *b)
{
        struct load_unit **refs = sl_calloc(b->n + 1, sizeof(*refs));
        size_t n = 0;

        for (size_t i = 0; i < b->n; i++)
                if (b->units[i].state == LOAD_UNIT_PENDING)
                        refs[n++] = &b->units[i];
        qsort(refs, n, sizeof(*refs), ref_cmp);
        for (size_t i = 0; i + 1 < n; i++)
                if (strcmp(refs[i]->dkey, refs[i + 1]->dkey) == 0)
                        refs[i]->state = LOAD_UNIT_SUPERSEDED;
        free(refs);
}

/* What PostgreSQL said about a failed statement. */
struct pg_fail {
        char sqlstate[6];
        char field[128];
        char msg[1024];
};

static void fail_from(struct pg_fail *f, PGconn *conn, PGresult *res)
{
        const char *st = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
        const char *prim =
            res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
        const char *det =
            res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : NULL;
        const char *col =
            res ? PQresultErrorField(res, PG_DIAG_COLUMN_NAME) : NULL;
        const char *ctx = res ? PQresultErrorField(res, PG_DIAG_CONTEXT) : NULL;
        const char *p;

        snprintf(f->sqlstate, sizeof(f->sqlstate), "%s", st ? st : "");
        if (prim)
                snprintf(f->msg, sizeof(f->msg), "%s%s%s", prim,
                         det ? ": " : "", det ? det : "");
        else
                snprintf(f->msg, sizeof(f->msg), "%s", PQerrorMessage(conn));
        for (char *q = f->msg; *q; q++)
                if (*q == '\n')
                        *q = ' ';
        f->field[0] = '\0';
        if (col) {
                snprintf(f->field, sizeof(f->field), "%s", col);
        } else if (ctx && (p = strstr(ctx, ", column ")) != NULL) {
                /* COPY's context: "COPY _sl_stage_t, line 3, column x: ..." */
                size_t n;
                p += strlen(", column ");
                n = strcspn(p, ":\n");
                snprintf(f->field, sizeof(f->field), "%.*s", (int)n, p);
        }
}

/* Runs sql; SL_OK with *out (when non-NULL) holding the result (PQclear
 * it), else the class of the failure with f filled. */
static enum sl_status run(PGconn *conn, const char *sql, PGresult **out,
                          struct pg_fail *f)
{
        PGresult *res = PQexec(conn, sql);
        ExecStatusType s = PQresultStatus(res);

        if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK) {
                if (out)
                        *out = res;
                else
                        PQclear(res);
                return SL_OK;
        }
        fail_from(f, conn, res);
        PQclear(res);
        return load_pg_classify(f->sqlstate, PQstatus(conn) == CONNECTION_OK);
}

/* ", " joined quoted names of the used columns, each prefixed by pre. */
static void col_list(struct sl_buf *q, struct load_table *t, const int *use,
                     const char *pre)
{
        int first = 1;

        for (int i = 0; i < t->ncols; i++) {
                if (!use[i])
                        continue;
                sl_buf_printf(q, "%s%s%s", first ? "" : ", ", pre,
                              t->cols[i].qname);
                first = 0;
        }
}

static int in_index(const struct load_index *ix, int col)
{
        for (int i = 0; i < ix->ncols; i++)
                if (ix->cols[i] == col)
                        return 1;
        return 0;
}

/* INSERT ... ON CONFLICT for the staged rows of op ('u' or 'r'). */
static void upsert_sql(struct sl_buf *q, struct plan *p, const int *use,
                       char op, int idx)
{
        struct load_table *t = p->t;
        const struct load_index *ix = &t->idx[idx];
        int ndata = 0, first;

        sl_buf_printf(q, "WITH up AS (INSERT INTO %s AS t (", t->qname);
        col_list(q, t, use, "");
        if (t->loaded_at >= 0)
                sl_buf_printf(q, ", %s", t->cols[t->loaded_at].qname);
        sl_buf_puts(q, ") SELECT ");
        col_list(q, t, use, "");
        if (t->loaded_at >= 0)
                sl_buf_puts(q, ", now()");
        sl_buf_printf(q,
                      " FROM %s WHERE _sl_op = '%c' "
                      "ORDER BY _sl_ord ON CONFLICT (",
                      t->stage, op);
        for (int i = 0; i < ix->ncols; i++)
                sl_buf_printf(q, "%s%s", i ? ", " : "",
                              t->cols[ix->cols[i]].qname);
        sl_buf_puts(q, ") DO ");
        for (int i = 0; i < t->ncols; i++)
                if (use[i] && !in_index(ix, i) && i != t->lineage)
                        ndata++;
        if (ndata == 0) {
                sl_buf_puts(q, "NOTHING");
        } else {
                sl_buf_puts(q, "UPDATE SET ");
                first = 1;
                for (int i = 0; i < t->ncols; i++) {
                        if (!use[i] || in_index(ix, i))
                                continue;
                        sl_buf_printf(q, "%s%s = EXCLUDED.%s",
                                      first ? "" : ", ", t->cols[i].qname,
                                      t->cols[i].qname);
                        first = 0;
                }
                if (t->loaded_at >= 0)
                        sl_buf_printf(q, ", %s = EXCLUDED.%s",
                                      t->cols[t->loaded_at].qname,
                                      t->cols[t->loaded_at].qname);
                /* only a real change counts; _lineage and _loaded_at do
                 * not take part */
                sl_buf_puts(q, " WHERE (");
                first = 1;
                for (int i = 0; i < t->ncols; i++) {
                        if (!use[i] || in_index(ix, i) || i == t->lineage)
                                continue;
                        sl_buf_printf(q, "%st.%s%s", first ? "" : ", ",
                                      t->cols[i].qname, t->cols[i].cmp_cast);
                        first = 0;
                }
                sl_buf_puts(q, ") IS DISTINCT FROM (");
                first = 1;
                for (int i = 0; i < t->ncols; i++) {
                        if (!use[i] || in_index(ix, i) || i == t->lineage)
                                continue;
                        sl_buf_printf(q, "%sEXCLUDED.%s%s", first ? "" : ", ",
                                      t->cols[i].qname, t->cols[i].cmp_cast);
                        first = 0;
                }
                sl_buf_puts(q, ")");
                if (p->vcol >= 0 && use[p->vcol])
                        sl_buf_printf(
                            q,
                            " AND (t.%s IS NULL OR EXCLUDED.%s IS "
                            "NULL OR EXCLUDED.%s >= t.%s)",
                            t->cols[p->vcol].qname, t->cols[p->vcol].qname,
                            t->cols[p->vcol].qname, t->cols[p->vcol].qname);
        }
        sl_buf_puts(q, " RETURNING (t.xmax = 0) AS ins) "
                       "SELECT count(*) FILTER (WHERE ins), "
                       "count(*) FILTER (WHERE NOT ins) FROM up");
}

static void delete_sql(struct sl_buf *q, struct plan *p, const int *use)
{
        struct load_table *t = p->t;

        sl_buf_printf(q,
                      "DELETE FROM %s AS t USING %s AS s "
                      "WHERE s._sl_op = 'd'",
                      t->qname, t->stage);
        for (int i = 0; i < p->nk; i++)
                sl_buf_printf(q, " AND t.%s = s.%s", t->cols[p->kcols[i]].qname,
                              t->cols[p->kcols[i]].qname);
        if (p->vcol >= 0 && use[p->vcol])
                sl_buf_printf(q,
                              " AND (t.%s IS NULL OR s.%s IS NULL OR "
                              "t.%s <= s.%s)",
                              t->cols[p->vcol].qname, t->cols[p->vcol].qname,
                              t->cols[p->vcol].qname, t->cols[p->vcol].qname);
}

/* Deletes the children of each replaced parent that are not in the new
 * set (matched on the child's unique index). */
static void replace_delete_sql(struct sl_buf *q, struct plan *p)
{
        struct load_table *t = p->t;
        const struct load_index *ix = &t->idx[p->ridx];

        sl_buf_printf(q, "DELETE FROM %s AS t USING (SELECT DISTINCT ",
                      t->qname);
        for (int i = 0; i < p->np; i++)
                sl_buf_printf(q, "%s%s", i ? ", " : "",
                              t->cols[p->pcols[i]].qname);
        sl_buf_printf(q, " FROM %s WHERE _sl_op = 'p') AS p WHERE ", t->stage);
        for (int i = 0; i < p->np; i++)
                sl_buf_printf(q, "%st.%s = p.%s", i ? " AND " : "",
                              t->cols[p->pcols[i]].qname,
                              t->cols[p->pcols[i]].qname);
        sl_buf_printf(q,
                      " AND NOT EXISTS (SELECT 1 FROM %s AS s "
                      "WHERE s._sl_op = 'r'",
                      t->stage);
        for (int i = 0; i < ix->ncols; i++)
                sl_buf_printf(q, " AND s.%s = t.%s", t->cols[ix->cols[i]].qname,
                              t->cols[ix->cols[i]].qname);
        sl_buf_puts(q, ")");
}

/* Appends one staged line: op, ordinal, then each used column. */
static int put_line(struct sl_buf *d, struct plan *p, const int *use, char op,
                    long ord, json_t *row, json_t *env, char *errstr,
                    size_t errstr_size)
{
        struct load_table *t = p->t;

        sl_buf_printf(d, "%c\t%ld", op, ord);
        for (int i = 0; i < t->ncols; i++) {
                json_t *v = NULL;
                const char *raw;
                size_t rawlen;

                if (!use[i])
                        continue;
                sl_buf_append(d, "\t", 1);
                if (i == t->lineage)
                        v = json_object_get(env, "lineage");
                else if (op == 'd' && i == p->vcol &&
                         !json_object_get(row, t->cols[i].name))
                        v = json_object_get(env, "version");
                else
                        v = json_object_get(row, t->cols[i].name);
                if (!v) {
                        copy_null(d);
                        continue;
                }
                if ((raw = load_raw_text(v, &rawlen))) {
                        /* JSON text for a json column (check_row) */
                        if (copy_escape(d, raw, rawlen) < 0) {
                                snprintf(errstr, errstr_size,
                                         "value too large");
                                return -1;
                        }
                        continue;
                }
                if (copy_encode_value(
                        d, v, i == t->lineage ? LOAD_COL_JSON : t->cols[i].kind,
                        errstr, errstr_size) < 0)
                        return -1;
        }
        return sl_buf_append(d, "\n", 1);
}

/* Decides the staged columns of a segment. */
static void used_columns(struct plan *p, struct load_batch *b,
                         const size_t *idx, size_t n, int *use)
{
        struct load_table *t = p->t;
        const char *name;
        json_t *v, *r;
        size_t k;

        memset(use, 0, sizeof(int) * (size_t)t->ncols);
        for (size_t i = 0; i < n; i++) {
                struct load_unit *u = &b->units[idx[i]];
                json_t *key = json_object_get(u->env, "key");

                json_object_foreach(key, name, v) use[load_table_col(t, name)] =
                    1;
                if (u->op == 'u') {
                        json_object_foreach(json_object_get(u->env, "row"),
                                            name, v)
                            use[load_table_col(t, name)] = 1;
                } else if (u->op == 'd') {
                        if (p->vcol >= 0 && json_object_get(u->env, "version"))
                                use[p->vcol] = 1;
                } else {
                        const struct load_index *ix = &t->idx[p->ridx];
                        json_array_foreach(json_object_get(u->env, "rows"), k,
                                           r) json_object_foreach(r, name, v)
                            use[load_table_col(t, name)] = 1;
                        /* replace_delete_sql() matches on the child index
                         * even when no replace in the segment has rows
                         * (every child of the parent goes) */
                        for (int c = 0; c < ix->ncols; c++)
                                use[ix->cols[c]] = 1;
                }
        }
        if (t->lineage >= 0)
                use[t->lineage] = 1;
        if (t->loaded_at >= 0)
                use[t->loaded_at] = 0;
}

/* The staging COPY streams: rows go to PostgreSQL in pieces of this size
 * as they are encoded, so it parses the first while the client encodes
 * the last, instead of waiting for the whole batch. */
#define COPY_PIECE ((size_t)256 << 10)

/* Starts COPY ... FROM STDIN. SL_OK, or the class of the failure. */
static enum sl_status copy_begin(PGconn *conn, const char *sql,
                                 struct pg_fail *f)
{
        PGresult *res = PQexec(conn, sql);

        if (PQresultStatus(res) != PGRES_COPY_IN) {
                fail_from(f, conn, res);
                PQclear(res);
                return load_pg_classify(f->sqlstate,
                                        PQstatus(conn) == CONNECTION_OK);
        }
        PQclear(res);
        return SL_OK;
}

/* Sends what data holds and empties it. 0, or -1 when sending failed. */
static int copy_send(PGconn *conn, struct sl_buf *data)
{
        size_t off = 0;

        while (off < data->len) {
                size_t n =
                    data->len - off > 1 << 20 ? 1 << 20 : data->len - off;
                if (PQputCopyData(conn, data->data + off, (int)n) != 1)
                        return -1;
                off += n;
        }
        sl_buf_reset(data);
        return 0;
}

/* Ends the COPY, or aborts it with why (non-NULL), and collects its
 * result. send_failed: a copy_send() failed. */
static enum sl_status copy_end(PGconn *conn, const char *why, int send_failed,
                               struct pg_fail *f)
{
        enum sl_status rc = SL_OK;
        PGresult *res;

        PQputCopyEnd(conn, why);
        while ((res = PQgetResult(conn)) != NULL) {
                if (PQresultStatus(res) != PGRES_COMMAND_OK && rc == SL_OK) {
                        fail_from(f, conn, res);
                        rc = load_pg_classify(f->sqlstate,
                                              PQstatus(conn) == CONNECTION_OK);
                }
                PQclear(res);
        }
        if (rc == SL_OK && send_failed) {
                fail_from(f, conn, NULL);
                rc = SL_ERR_RETRY;
        }
        return rc;
}

/* The version rule of child sets (docs/contracts.md, Versions): a replace
 * of idx[0..n) that carries its parent's version stores it in
 * sluice.child_versions, unless the version stored there for the table
 * (schema.table) and parent key is newer; only then is the set applied. The
 * stored row is taken with INSERT ... ON CONFLICT DO UPDATE, which locks it
 * until the transaction ends, also when the WHERE refuses the update: a loader
 * applying another version of the same set waits, then compares with
 * what committed. Parents are taken in key order, so two loaders never
 * wait for each other crosswise. Sets skip[i] for each replace of an
 * older version (not applied); *nstale counts them. A replace without a
 * version is applied as before, and stores nothing. */
static enum sl_status replace_versions(struct load_ctx *ctx,
                                       struct load_batch *b, const size_t *idx,
                                       size_t n, char *skip, long *nstale,
                                       struct pg_fail *f)
{
        struct sl_buf arr;
        const char *params[2];
        char *table = NULL;
        PGresult *res = NULL;
        enum sl_status rc = SL_OK;
        size_t nv = 0;

        *nstale = 0;
        sl_buf_init(&arr, 0);
        sl_buf_puts(&arr, "[");
        for (size_t i = 0; i < n; i++) {
                struct load_unit *u = &b->units[idx[i]];
                json_t *v = json_object_get(u->env, "version");

                if (u->op != 'r' || !(json_is_string(v) || json_is_number(v)))
                        continue;
                sl_buf_printf(&arr, "%s[%zu,", nv ? "," : "", i);
                if (sl_json_dump(&arr, json_object_get(u->env, "key"), 0) < 0 ||
                    sl_buf_puts(&arr, ",") < 0 ||
                    sl_json_dump(&arr, v, JSON_ENCODE_ANY) < 0 ||
                    sl_buf_puts(&arr, "]") < 0) {
                        /* unit_parse and check_row vetted the key; this is
                         * a defect or no memory, not bad data */
                        snprintf(f->msg, sizeof(f->msg),
                                 "replace version of %s: cannot write the "
                                 "key or version as JSON",
                                 b->table);
                        f->sqlstate[0] = f->field[0] = '\0';
                        rc = SL_ERR_RETRY;
                        goto out;
                }
                skip[i] = 1; /* until the statement says it is applied */
                nv++;
        }
        if (nv == 0)
                goto out;
        sl_buf_puts(&arr, "]");
        /* the table as the target schema holds it: loaders of other
         * schemas keep their own versions */
        table = sl_asprintf("%s.%s", load_schema_target(), b->table);
        params[0] = table;
        params[1] = arr.data;
        res = PQexecParams(
            ctx->conn,
            "WITH x AS (SELECT (e->>0)::int AS i, e->1 AS k, e->2 AS v "
            "FROM jsonb_array_elements($2::jsonb) AS e), "
            "up AS (INSERT INTO sluice.child_versions AS c (table_name, "
            "parent_key, version) SELECT DISTINCT ON (k) $1, k, v FROM x "
            "ORDER BY k, i DESC ON CONFLICT (table_name, parent_key) DO "
            "UPDATE SET version = EXCLUDED.version, updated_at = now() "
            "WHERE sluice.version_ge(EXCLUDED.version, c.version) "
            "RETURNING c.parent_key) "
            "SELECT x.i FROM x JOIN up ON up.parent_key = x.k",
            2, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
                fail_from(f, ctx->conn, res);
                rc = load_pg_classify(f->sqlstate,
                                      PQstatus(ctx->conn) == CONNECTION_OK);
                goto out;
        }
        for (int r = 0; r < PQntuples(res); r++) {
                long long i;
                if (sl_parse_ll(PQgetvalue(res, r, 0), &i) == 0 && i >= 0 &&
                    (size_t)i < n)
                        skip[i] = 0;
        }
        for (size_t i = 0; i < n; i++)
                *nstale += skip[i];
out:
        PQclear(res);
        sl_buf_free(&arr);
        free(table);
        return rc;
}

/* Stages and applies the units idx[0..n) inside the caller's savepoint. */
static enum sl_status apply(struct load_ctx *ctx, struct plan *p,
                            struct load_batch *b, const size_t *idx, size_t n,
                            struct load_stats *st, struct pg_fail *f)
{
        struct load_table *t = p->t;
        int *use = sl_calloc((size_t)t->ncols + 1, sizeof(int));
        struct sl_buf q, d;
        PGresult *res = NULL;
        enum sl_status rc;
        long ord = 0, nu = 0, nr = 0, nstale = 0;
        int has_d = 0, has_r = 0, bad = 0, send_failed = 0;
        char err[512], *skip = sl_calloc(n + 1, 1);

        sl_buf_init(&q, 0);
        sl_buf_init(&d, 0);
        used_columns(p, b, idx, n, use);
        /* the staging table empties itself at commit; within the
         * transaction, a segment that follows a written one of a bisection
         * clears it (rolled back with the segment when that fails) */
        if (p->staged) {
                sl_buf_printf(&q, "DELETE FROM %s", t->stage);
                rc = run(ctx->conn, q.data, NULL, f);
                if (rc != SL_OK)
                        goto out;
                sl_buf_reset(&q);
        }
        /* an older version of a parent's child set is not staged */
        rc = replace_versions(ctx, b, idx, n, skip, &nstale, f);
        if (rc != SL_OK)
                goto out;
        sl_buf_printf(&q, "COPY %s (_sl_op, _sl_ord, ", t->stage);
        col_list(&q, t, use, "");
        sl_buf_puts(&q, ") FROM STDIN");
        rc = copy_begin(ctx->conn, q.data, f);
        if (rc != SL_OK)
                goto out;
        for (size_t i = 0; i < n && !bad && !send_failed; i++) {
                struct load_unit *u = &b->units[idx[i]];
                json_t *key = json_object_get(u->env, "key"), *r;
                size_t k;

                if (u->op == 'u') {
                        bad = put_line(&d, p, use, 'u', ord++,
                                       json_object_get(u->env, "row"), u->env,
                                       err, sizeof(err)) < 0;
                        nu++;
                } else if (u->op == 'd') {
                        bad = put_line(&d, p, use, 'd', ord++, key, u->env, err,
                                       sizeof(err)) < 0;
                        has_d = 1;
                } else if (!skip[i]) {
                        has_r = 1;
                        bad = put_line(&d, p, use, 'p', ord++, key, u->env, err,
                                       sizeof(err)) < 0;
                        json_array_foreach(json_object_get(u->env, "rows"), k,
                                           r)
                        {
                                bad |= put_line(&d, p, use, 'r', ord++, r,
                                                u->env, err, sizeof(err)) < 0;
                                nr++;
                        }
                }
                if (!bad && d.len >= COPY_PIECE && copy_send(ctx->conn, &d) < 0)
                        send_failed = 1;
        }
        if (!bad && !send_failed && copy_send(ctx->conn, &d) < 0)
                send_failed = 1;
        rc = copy_end(ctx->conn,
                      bad           ? "a row could not be encoded"
                      : send_failed ? "could not send data"
                                    : NULL,
                      send_failed, f);
        if (bad) {
                /* check_row() vets every value with the encoder's rules,
                 * so this is a defect rather than bad data; still, the
                 * message is isolated like one */
                snprintf(f->msg, sizeof(f->msg), "%s", err);
                f->sqlstate[0] = f->field[0] = '\0';
                rc = PQstatus(ctx->conn) == CONNECTION_OK ? SL_ERR_RECORD
                                                          : SL_ERR_RETRY;
                goto out;
        }
        if (rc != SL_OK)
                goto out;
        if (has_r) {
                sl_buf_reset(&q);
                replace_delete_sql(&q, p);
                rc = run(ctx->conn, q.data, &res, f);
                if (rc != SL_OK)
                        goto out;
                st->deleted += strtol(PQcmdTuples(res), NULL, 10);
                PQclear(res);
                res = NULL;
        }
        if (has_d) {
                sl_buf_reset(&q);
                delete_sql(&q, p, use);
                rc = run(ctx->conn, q.data, &res, f);
                if (rc != SL_OK)
                        goto out;
                st->deleted += strtol(PQcmdTuples(res), NULL, 10);
                PQclear(res);
                res = NULL;
        }
        for (int pass = 0; pass < 2; pass++) {
                char op = pass == 0 ? 'u' : 'r';
                long rows = pass == 0 ? nu : nr, ins, upd;

                if (rows == 0)
                        continue;
                sl_buf_reset(&q);
                upsert_sql(&q, p, use, op, pass == 0 ? p->kidx : p->ridx);
                rc = run(ctx->conn, q.data, &res, f);
                if (rc != SL_OK)
                        goto out;
                ins = strtol(PQgetvalue(res, 0, 0), NULL, 10);
                upd = strtol(PQgetvalue(res, 0, 1), NULL, 10);
                st->inserted += ins;
                st->updated += upd;
                st->unchanged += rows - ins - upd;
                PQclear(res);
                res = NULL;
        }
        p->staged = 1;
        /* the segment is written: a stale set took no effect, as a
         * superseded message */
        for (size_t i = 0; i < n; i++)
                if (skip[i])
                        b->units[idx[i]].state = LOAD_UNIT_SUPERSEDED;
        if (nstale)
                sl_info("event=stale_child_sets table=%s count=%ld lane=%d",
                        t->name, nstale, ctx->lane);
out:
        PQclear(res);
        sl_buf_free(&q);
        sl_buf_free(&d);
        free(use);
        free(skip);
        return rc;
}

static void stats_add(struct load_stats *a, const struct load_stats *b)
{
        a->inserted += b->inserted;
        a->updated += b->updated;
        a->unchanged += b->unchanged;
        a->deleted += b->deleted;
}

/* 1 when PostgreSQL refused a statement because the table is not the
 * shape the loader read (a column dropped or retyped, the table dropped)
 * rather than because of a row: undefined_column, datatype_mismatch,
 * cannot_coerce, undefined_table. */
static int shape_changed(const char *sqlstate)
{
        static const char *const states[] = {"42703", "42804", "42846",
                                             "42P01"};

        for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++)
                if (strcmp(sqlstate, states[i]) == 0)
                        return 1;
        return 0;
}

/* Applies idx[0..n); when PostgreSQL rejects the data, splits the range
 * in halves until each bad message stands alone, and rejects it. */
static enum sl_status bisect(struct load_ctx *ctx, struct plan *p,
                             struct load_batch *b, const size_t *idx, size_t n,
                             struct load_stats *st, struct pg_fail *f)
{
        struct load_stats seg = {0};
        enum sl_status rc;

        if (n == 0)
                return SL_OK;
        rc = run(ctx->conn, "SAVEPOINT sl_seg", NULL, f);
        if (rc != SL_OK)
                return SL_ERR_RETRY;
        rc = apply(ctx, p, b, idx, n, &seg, f);
        if (rc == SL_ERR_RECORD && p->may_reread &&
            shape_changed(f->sqlstate)) {
                /* load_batch_flush reads the table again and retries */
                p->stale = 1;
                return SL_ERR_RETRY;
        }
        p->may_reread = 0;
        if (rc == SL_OK) {
                stats_add(st, &seg);
                return run(ctx->conn, "RELEASE SAVEPOINT sl_seg", NULL, f) ==
                               SL_OK
                           ? SL_OK
                           : SL_ERR_RETRY;
        }
        if (rc != SL_ERR_RECORD)
                return rc;
        if (run(ctx->conn, "ROLLBACK TO SAVEPOINT sl_seg", NULL, f) != SL_OK ||
            run(ctx->conn, "RELEASE SAVEPOINT sl_seg", NULL, f) != SL_OK)
                return SL_ERR_RETRY;
        if (n == 1) {
                struct load_unit *u = &b->units[idx[0]];
                unit_reject(u, f->field[0] ? f->field : NULL,
                            f->sqlstate[0] ? f->sqlstate : NULL, "%s", f->msg);
                return SL_OK;
        }
        rc = bisect(ctx, p, b, idx, n / 2, st, f);
        if (rc != SL_OK)
                return rc;
        return bisect(ctx, p, b, idx + n / 2, n - n / 2, st, f);
}

void load_dlq_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
        struct load_ctx *ctx = rkm->_private;
        char q[512];

        (void)rk;
        (void)opaque;
        if (!rkm->err || !ctx)
                return;
        ctx->dlq_failed++;
        sl_err("event=dlq_delivery_failed topic=%s err=%s",
               rd_kafka_topic_name(rkm->rkt),
               sl_log_quote(rd_kafka_err2str(rkm->err), q, sizeof(q)));
}

/* Produces the dead letter of a rejected message to the DLQ topic. */
static int dlq_send(struct load_ctx *ctx, struct load_batch *b,
                    struct load_unit *u)
{
        json_t *dl = json_object();
        json_t *rec = NULL;
        size_t len = 0;
        char *val;
        int rc;

        json_object_set_new(dl, "v", json_integer(1));
        json_object_set_new(dl, "stage", json_string("load"));
        json_object_set_new(dl, "error", json_string(u->error));
        json_object_set_new(dl, "table", json_string(b->table));
        if (u->field)
                json_object_set_new(dl, "field", json_string(u->field));
        if (u->sqlstate)
                json_object_set_new(dl, "sqlstate", json_string(u->sqlstate));
        json_object_set_new(dl, "topic", json_string(b->topic));
        json_object_set_new(dl, "partition", json_integer(u->partition));
        json_object_set_new(dl, "offset", json_integer(u->offset));
        if (u->env) {
                /* the letter carries JSON, not the raw nodes */
                json_t *env = load_raw_expand(u->env);
                json_t *lin = json_object_get(env, "lineage");
                json_object_set(dl, "lineage", lin ? lin : json_null());
                rec = u->op == 'u' ? json_object_get(env, "row") : NULL;
                json_object_set(dl, "record", rec ? rec : env);
                if (u->op)
                        json_object_set(dl, "op", json_object_get(env, "op"));
                json_decref(env);
        } else {
                json_object_set_new(dl, "page",
                                    json_stringn_nocheck(u->raw, u->raw_len));
        }
        /* the record keeps its reals' text, for `sluice dlq replay` */
        val = sl_json_dumps(dl, 0, &len);
        json_decref(dl);
        if (!val)
                return -1;
        rc = sl_kafka_produce(ctx->producer, ctx->dlq_topic,
                              RD_KAFKA_PARTITION_UA, u->msgkey, u->msgkey_len,
                              val, len, NULL, ctx) == 0
                 ? 0
                 : -1;
        free(val);
        return rc;
}

/* Records the batch's next offsets and its run report in one statement
 * (one round trip, however many partitions), then commits.
 *
 * Fencing: a partition's stored offset only moves forward. A batch whose
 * end some partition's stored offset has already reached was written
 * since by another loader of the group (this one lost the partition:
 * frozen past its session, or cut off from the brokers): applying it
 * would put older values over newer ones and move the offset back, which
 * leaves a lag that never clears. Such a batch is rolled back, and the
 * worker rewinds to sluice.offsets. A batch that only overlaps what
 * another loader wrote (it ends beyond the stored offset) is applied: the
 * messages at an offset never change, so it ends at its last offset's
 * state. */
static enum sl_status finish(struct load_ctx *ctx, struct load_batch *b,
                             struct load_stats *st, struct pg_fail *f)
{
        json_t *offs = json_array();
        char nbuf[7][24], started[40], *offs_txt = NULL;
        const char *params[16];
        char nparts[16];
        struct sl_buf parts, nexts;
        enum sl_status rc = SL_OK;
        long v[7] = {st->messages, st->inserted, st->updated,   st->unchanged,
                     st->deleted,  st->rejected, st->superseded};
        PGresult *res;

        sl_buf_init(&parts, 0);
        sl_buf_init(&nexts, 0);
        for (int i = 0; i < b->nparts; i++) {
                sl_buf_printf(&parts, "%s%" PRId32, i ? "," : "{",
                              b->parts[i].partition);
                sl_buf_printf(&nexts, "%s%" PRId64, i ? "," : "{",
                              b->parts[i].last + 1);
                json_array_append_new(
                    offs,
                    json_pack("{s:i,s:I,s:I}", "partition",
                              (int)b->parts[i].partition, "first_offset",
                              (json_int_t)b->parts[i].first, "last_offset",
                              (json_int_t)b->parts[i].last));
        }
        sl_buf_puts(&parts, b->nparts ? "}" : "{}");
        sl_buf_puts(&nexts, b->nparts ? "}" : "{}");
        offs_txt = json_dumps(offs, JSON_COMPACT);
        params[0] = ctx->group;
        params[1] = ctx->instance;
        params[2] = b->table;
        params[3] = b->topic;
        params[4] = offs_txt;
        for (int i = 0; i < 7; i++) {
                snprintf(nbuf[i], sizeof(nbuf[i]), "%ld", v[i]);
                params[5 + i] = nbuf[i];
        }
        params[12] =
            sl_time_format(b->opened_wall_ms, started, sizeof(started));
        params[13] = parts.data;
        params[14] = nexts.data;
        snprintf(nparts, sizeof(nparts), "%d", b->nparts);
        params[15] = nparts;
        res = PQexecParams(
            ctx->conn,
            "WITH o AS (INSERT INTO sluice.offsets AS o (consumer_group, "
            "topic, partition, next_offset) SELECT $1, $4, p, n FROM "
            "unnest($14::int[], $15::bigint[]) AS x(p, n) ON CONFLICT "
            "(consumer_group, topic, partition) DO UPDATE SET next_offset = "
            "EXCLUDED.next_offset, updated_at = now() WHERE o.next_offset < "
            "EXCLUDED.next_offset RETURNING 1) "
            "INSERT INTO sluice.load_batches (consumer_group, "
            "instance, table_name, topic, offsets, messages, "
            "inserted, updated, unchanged, deleted, rejected, "
            "superseded, started_at, finished_at) SELECT $1, "
            "$2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, "
            "$13, clock_timestamp() FROM (SELECT count(*) AS c FROM o) AS "
            "done WHERE done.c = $16",
            16, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
                fail_from(f, ctx->conn, res);
                rc = SL_ERR_RETRY;
        } else if (strcmp(PQcmdTuples(res), "1") != 0) {
                /* fenced: no run report, and the caller rolls back */
                sl_metric_inc(SL_M_ERRORS, SL_LV("load_fenced"));
                sl_warn("event=fenced table=%s topic=%s partitions=%s "
                        "next_offsets=%s",
                        b->table, b->topic, parts.data, nexts.data);
                f->sqlstate[0] = '\0';
                snprintf(f->msg, sizeof(f->msg),
                         "fenced: sluice.offsets of %s is already at or past "
                         "this batch's end (another loader of the group "
                         "wrote it; this one had lost the partition)",
                         b->topic);
                rc = SL_ERR_RETRY;
        }
        PQclear(res);
        if (rc == SL_OK && run(ctx->conn, "COMMIT", NULL, f) != SL_OK)
                rc = SL_ERR_RETRY;
        sl_arena_json_free(offs_txt);
        json_decref(offs);
        sl_buf_free(&parts);
        sl_buf_free(&nexts);
        return rc;
}

/* Tells Kafka the positions too, for lag tools only: the loader itself
 * resumes from sluice.offsets. */
static void commit_kafka(struct load_ctx *ctx, struct load_batch *b)
{
        rd_kafka_topic_partition_list_t *l;

        if (!ctx->consumer || b->nparts == 0)
                return;
        l = rd_kafka_topic_partition_list_new(b->nparts);
        for (int i = 0; i < b->nparts; i++)
                rd_kafka_topic_partition_list_add(l, b->topic,
                                                  b->parts[i].partition)
                    ->offset = b->parts[i].last + 1;
        rd_kafka_commit(ctx->consumer, l, 1);
        rd_kafka_topic_partition_list_destroy(l);
}

/* Makes t's staging table on this connection, once for as long as the
 * table stays in the catalog cache (a re-read of the table, after a
 * failure or a reconnect, makes it again from the table's columns). It
 * has every column of t, plus the op and ordinal, and ON COMMIT DELETE
 * ROWS: making a table per batch and dropping it was catalog work
 * (pg_class, pg_attribute, pg_type rows) on every commit. 0, or -1 with
 * errstr. */
static int stage_make(struct load_ctx *ctx, struct load_table *t, char *errstr,
                      size_t errstr_size)
{
        struct pg_fail f = {{0}, {0}, {0}};
        struct sl_buf q;
        char name[80];
        int *all = sl_calloc((size_t)t->ncols + 1, sizeof(int));
        int rc = 0;

        /* table names are [a-z0-9_]+; a long one keeps a hash of itself so
         * that the name stays within PostgreSQL's 63 bytes and unique */
        if (strlen(t->name) <= 50) {
                snprintf(name, sizeof(name), "_sl_stage_%s", t->name);
        } else {
                char h[17];
                load_schema_checksum(t->name, strlen(t->name), h);
                snprintf(name, sizeof(name), "_sl_stage_%.36s_%s", t->name, h);
        }
        for (int i = 0; i < t->ncols; i++)
                all[i] = 1;
        sl_buf_init(&q, 0);
        /* pg_temp: never a table of the user's schemas of the same name */
        sl_buf_printf(&q,
                      "DROP TABLE IF EXISTS pg_temp.\"%s\"; "
                      "CREATE TEMP TABLE \"%s\" ON COMMIT DELETE ROWS AS "
                      "SELECT NULL::text AS _sl_op, 0 AS _sl_ord, ",
                      name, name);
        col_list(&q, t, all, "");
        sl_buf_printf(&q, " FROM %s WITH NO DATA", t->qname);
        if (run(ctx->conn, q.data, NULL, &f) != SL_OK) {
                snprintf(errstr, errstr_size, "staging table for %s: %s",
                         t->name, f.msg);
                rc = -1;
        } else {
                sl_buf_reset(&q);
                sl_buf_printf(&q, "pg_temp.\"%s\"", name);
                t->stage = sl_strdup(q.data);
        }
        sl_buf_free(&q);
        free(all);
        return rc;
}

/* A table the loader fills with replace envelopes from empty must not be
 * planned without statistics: the replace's DELETE joins the staged
 * parents to the table, and with none PostgreSQL assumes 200 distinct
 * parent keys, so it scans the whole table once per batch (a hash join)
 * instead of looking the parents up in its index. Loading the
 * pipeline's 200k NVD records into empty tables, the child tables' batches
 * then grew from 120 to 380 ms as the tables grew, unless autovacuum
 * happened to analyze them early (once a minute per database at most): a
 * load alone took 30 s or 58 s on the same data. So after every
 * LOAD_STATS_CHECK rows it replaced in a table, the lane asks PostgreSQL
 * how much the table changed since it was last analyzed, and analyzes it
 * when it never was (and has LOAD_STATS_MIN changed rows) or has changed
 * by more than its analyzed size since. Outside the batch's transaction;
 * a failure is only logged. */
#define LOAD_STATS_CHECK 5000
#define LOAD_STATS_MIN   10000

/* ANALYZE (SKIP_LOCKED) does not fail when it skips the table: it only
 * warns: lock_not_available (55P03) when another session holds the lock
 * (another lane or loader analyzes it already), a plain warning when this
 * role does not own the table. The warning is caught, by severity and
 * SQLSTATE (the text may be translated), to tell a skip from a run, and
 * passed on to the log as any notice. */
struct analyze_notice {
        PQnoticeReceiver prev;
        char sqlstate[6]; /* of the first warning, "" when none */
        char msg[256];
};

static void analyze_notice(void *arg, const PGresult *res)
{
        struct analyze_notice *an = arg;
        const char *sev =
            PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        const char *m = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

        if (sev && strcmp(sev, "WARNING") == 0 && !an->sqlstate[0]) {
                snprintf(an->sqlstate, sizeof(an->sqlstate), "%s",
                         state ? state : "01000");
                snprintf(an->msg, sizeof(an->msg), "%s", m ? m : "");
        }
        if (an->prev)
                an->prev(NULL, res);
}

static void analyze(struct load_ctx *ctx, struct load_table *t, double tuples,
                    double changed)
{
        struct analyze_notice an = {0};
        struct sl_buf sql;
        int64_t t0 = sl_now_ms();
        PGresult *res;
        char q[600];

        sl_buf_init(&sql, 0);
        sl_buf_printf(&sql, "ANALYZE (SKIP_LOCKED) %s", t->qname);
        /* the default receiver (sl_pg's notice processor) takes no arg */
        an.prev = PQsetNoticeReceiver(ctx->conn, analyze_notice, &an);
        res = PQexec(ctx->conn, sql.data);
        PQsetNoticeReceiver(ctx->conn, an.prev, NULL);
        sl_buf_free(&sql);
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
                sl_warn("event=analyze_failed table=%s msg=%s", t->name,
                        sl_log_quote(PQresultErrorMessage(res), q, sizeof(q)));
        } else if (strcmp(an.sqlstate, "55P03") == 0) {
                /* being analyzed now: look again at the next check */
                sl_info("event=analyze_skipped table=%s reason=locked "
                        "lane=%d",
                        t->name, ctx->lane);
        } else if (an.sqlstate[0]) {
                /* not this role's table: say so once, not every check */
                t->no_analyze = 1;
                sl_warn("event=analyze_refused table=%s msg=%s hint=%s",
                        t->name, sl_log_quote(an.msg, q, sizeof(q)),
                        "\"the table is planned without fresh statistics "
                        "until autovacuum analyzes it; let its owner load "
                        "it, or ANALYZE it after big loads\"");
        } else {
                t->unanalyzed = 0;
                sl_info("event=analyze table=%s analyzed_rows=%.0f "
                        "changed_since=%.0f lane=%d ms=%lld",
                        t->name, tuples, changed, ctx->lane,
                        (long long)(sl_now_ms() - t0));
        }
        PQclear(res);
}

static void stats_keep(struct load_ctx *ctx, struct load_table *t,
                       const struct load_stats *st)
{
        const char *params[1] = {t->qname};
        double tuples, changed;
        PGresult *res;
        char q[600];

        t->unchecked += st->inserted + st->updated + st->deleted;
        t->unanalyzed += st->inserted + st->updated + st->deleted;
        if (t->unchecked < LOAD_STATS_CHECK || t->no_analyze)
                return;
        t->unchecked = 0;
        res = PQexecParams(ctx->conn,
                           "SELECT c.reltuples::float8, "
                           "coalesce(s.n_mod_since_analyze, 0)::float8 "
                           "FROM pg_class c LEFT JOIN pg_stat_all_tables s "
                           "ON s.relid = c.oid WHERE c.oid = $1::regclass",
                           1, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
                sl_warn("event=stats_check_failed table=%s msg=%s", t->name,
                        sl_log_quote(PQresultErrorMessage(res), q, sizeof(q)));
                PQclear(res);
                return;
        }
        tuples = strtod(PQgetvalue(res, 0, 0), NULL);
        /* PostgreSQL's count covers every writer but trails by up to a
         * second (backends report at most once a second); this
         * connection's own count does not trail */
        changed = strtod(PQgetvalue(res, 0, 1), NULL);
        if (changed < (double)t->unanalyzed)
                changed = (double)t->unanalyzed;
        PQclear(res);
        if (changed < LOAD_STATS_MIN || (tuples >= 0 && changed <= tuples))
                return;
        analyze(ctx, t, tuples, changed);
}

/* Makes the plan of b's pending messages for table t (staging table,
 * checks, dedupe). SL_OK, SL_ERR_RETRY, or SL_ERR_FATAL (plan_make). */
static enum sl_status prepare(struct load_ctx *ctx, struct load_batch *b,
                              struct load_table *t, struct plan *p,
                              char *errstr, size_t errstr_size)
{
        enum sl_status rc;

        if (!t->stage && stage_make(ctx, t, errstr, errstr_size) < 0)
                return SL_ERR_RETRY;
        memset(p, 0, sizeof(*p));
        p->t = t;
        /* check_row completes rows: in the envelopes' arena */
        sl_arena_enter(&b->arena);
        rc = plan_make(p, b, errstr, errstr_size);
        sl_arena_leave();
        if (rc != SL_OK)
                return rc;
        dedupe(b);
        return SL_OK;
}

/* Puts back the messages that were pending before the plan (pend[i]) as
 * pending, for a new plan. */
static void units_restore(struct load_batch *b, const char *pend)
{
        for (size_t i = 0; i < b->n; i++) {
                struct load_unit *u = &b->units[i];

                if (!pend[i] || u->state == LOAD_UNIT_PENDING)
                        continue;
                free(u->error);
                free(u->field);
                free(u->sqlstate);
                u->error = u->field = u->sqlstate = NULL;
                u->state = LOAD_UNIT_PENDING;
        }
}

/* The table's shape for b: the cached one, read again first when a
 * message names a column the cache lacks (a column added since: the
 * loader adopts it without a restart). *reread = 1 when the catalog was
 * read for this batch. */
static struct load_table *table_for(struct load_ctx *ctx, struct load_batch *b,
                                    int *reread, enum sl_status *status,
                                    char *errstr, size_t errstr_size)
{
        struct load_table *t;
        const char *unknown;
        char why[200];

        t = table_cached(ctx, b->table, reread, status, errstr, errstr_size);
        if (!t)
                return NULL;
        unknown = batch_unknown(t, b);
        if (!unknown)
                return t;
        if (!*reread) {
                snprintf(why, sizeof(why), "column %s", unknown);
                t = table_reread(ctx, t, why, status, errstr, errstr_size);
                *reread = 1;
                if (!t)
                        return NULL;
        }
        absent_note(t, b);
        return t;
}

enum sl_status load_batch_flush(struct load_ctx *ctx, struct load_batch *b,
                                struct load_stats *st, char *errstr,
                                size_t errstr_size)
{
        struct plan p;
        struct pg_fail f = {{0}, {0}, {0}};
        struct load_table *t = NULL;
        enum sl_status rc, status;
        size_t *idx = NULL, n = 0;
        int64_t t0 = sl_now_ms();
        int failed_before, reread = 0;
        char *pend = NULL, why[40];

        memset(st, 0, sizeof(*st));
        st->messages = (long)b->n;
        if (b->n == 0)
                return SL_OK;
        memset(&p, 0, sizeof(p));
        if (!load_name_valid(b->table)) {
                for (size_t i = 0; i < b->n; i++)
                        if (b->units[i].state == LOAD_UNIT_PENDING)
                                unit_reject(&b->units[i], NULL, NULL,
                                            "topic %s does not name a "
                                            "table ([a-z0-9_]+)",
                                            b->topic);
        } else {
                t = table_for(ctx, b, &reread, &status, errstr, errstr_size);
                if (!t) /* missing: the table, not the batch, is at fault */
                        return status == SL_ERR_RECORD ? SL_ERR_FATAL
                                                       : SL_ERR_RETRY;
                pend = sl_calloc(b->n + 1, 1);
                for (size_t i = 0; i < b->n; i++)
                        pend[i] = b->units[i].state == LOAD_UNIT_PENDING;
                rc = prepare(ctx, b, t, &p, errstr, errstr_size);
                if (rc != SL_OK) {
                        free(pend);
                        return rc;
                }
                p.may_reread = !reread;
        }
again:
        idx = sl_calloc(b->n + 1, sizeof(*idx));
        for (size_t i = 0; i < b->n; i++)
                if (b->units[i].state == LOAD_UNIT_PENDING)
                        idx[n++] = i;
        rc = run(ctx->conn, "BEGIN", NULL, &f);
        if (rc == SL_OK && n > 0)
                rc = bisect(ctx, &p, b, idx, n, st, &f);
        if (rc != SL_OK && p.stale) {
                /* the table changed under the cached shape: once per
                 * batch, read it again and write the batch with it */
                PGresult *res = PQexec(ctx->conn, "ROLLBACK");
                int ok = PQresultStatus(res) == PGRES_COMMAND_OK;

                PQclear(res);
                if (!ok)
                        goto rollback;
                snprintf(why, sizeof(why), "sqlstate %s", f.sqlstate);
                t = table_reread(ctx, p.t, why, &status, errstr, errstr_size);
                if (!t) {
                        free(idx);
                        free(pend);
                        return status == SL_ERR_RECORD ? SL_ERR_FATAL
                                                       : SL_ERR_RETRY;
                }
                units_restore(b, pend);
                absent_note(t, b);
                memset(st, 0, sizeof(*st));
                st->messages = (long)b->n;
                free(idx);
                idx = NULL;
                n = 0;
                rc = prepare(ctx, b, t, &p, errstr, errstr_size);
                if (rc != SL_OK) {
                        free(pend);
                        return rc;
                }
                goto again;
        }
        if (rc != SL_OK)
                goto rollback;
        failed_before = ctx->dlq_failed;
        for (size_t i = 0; i < b->n; i++) {
                struct load_unit *u = &b->units[i];
                char q[1100];

                if (u->state == LOAD_UNIT_SUPERSEDED)
                        st->superseded++;
                if (u->state != LOAD_UNIT_REJECTED)
                        continue;
                st->rejected++;
                sl_warn("event=row_rejected table=%s partition=%" PRId32
                        " offset=%" PRId64 " sqlstate=%s field=%s error=%s",
                        b->table, u->partition, u->offset,
                        u->sqlstate ? u->sqlstate : "-",
                        u->field ? u->field : "-",
                        sl_log_quote(u->error, q, sizeof(q)));
                if (dlq_send(ctx, b, u) < 0) {
                        snprintf(f.msg, sizeof(f.msg),
                                 "could not produce to %s", ctx->dlq_topic);
                        rc = SL_ERR_RETRY;
                        goto rollback;
                }
        }
        /* The dead letters must be delivered before the offsets that skip
         * their messages commit. */
        if (st->rejected && (sl_kafka_flush(ctx->producer, 30000) != 0 ||
                             ctx->dlq_failed != failed_before)) {
                snprintf(f.msg, sizeof(f.msg),
                         "dead letters not delivered to %s", ctx->dlq_topic);
                rc = SL_ERR_RETRY;
                goto rollback;
        }
        rc = finish(ctx, b, st, &f);
        if (rc != SL_OK)
                goto rollback;
        commit_kafka(ctx, b);
        sl_info("event=batch table=%s messages=%ld inserted=%ld updated=%ld "
                "unchanged=%ld deleted=%ld rejected=%ld superseded=%ld "
                "lane=%d ms=%lld",
                b->table, st->messages, st->inserted, st->updated,
                st->unchanged, st->deleted, st->rejected, st->superseded,
                ctx->lane, (long long)(sl_now_ms() - t0));
        if (t && p.ridx >= 0)
                stats_keep(ctx, t, st);
        free(idx);
        free(pend);
        return SL_OK;
rollback:
        if (PQstatus(ctx->conn) == CONNECTION_OK) {
                PGresult *res = PQexec(ctx->conn, "ROLLBACK");
                PQclear(res);
        }
        snprintf(errstr, errstr_size, "writing %s: %s%s%s", b->table, f.msg,
                 f.sqlstate[0] ? " SQLSTATE " : "", f.sqlstate);
        free(idx);
        free(pend);
        return SL_ERR_RETRY;
}
