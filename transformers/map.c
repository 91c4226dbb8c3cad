/* map.c: loads a transform map, checks every key against the option tables
 * below (the single description of the language; docs/maps.md follows
 * them) and compiles paths, regexes and templates once. */
#include "map.h"
#include "roles.h"
#include "sl_config.h"
#include "sl_extends.h"
#include "sl_jsonpath.h"
#include "sl_log.h"
#include "sl_util.h"

#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct sl_opt map_opts[] = {
    {"name", SL_OPT_STRING, 1, NULL,
     "the map's name, in lineage, dead letters and logs"},
    {"description", SL_OPT_STRING, 0, NULL, "free text"},
    {"source", SL_OPT_STRING, 1, NULL,
     "the source whose raw pages the map reads"},
    {"topic", SL_OPT_STRING, 0, "raw.<source>", "the topic it consumes"},
    {"targets", SL_OPT_ARRAY, 0, NULL,
     "several targets (record kinds) from one page; else the target "
     "keys below sit at the top level"},
    {"records", SL_OPT_STRING_OR_ARRAY, 0, "records_path header, else $",
     "JSON path of the records in the page"},
    {"table", SL_OPT_STRING, 0, NULL, "target table"},
    {"where", SL_OPT_ARRAY, 0, NULL,
     "conditions a record must meet; others count as ignored"},
    {"coalesce", SL_OPT_STRING_OR_ARRAY, 0, NULL,
     "the key column(s) rows are upserted on"},
    {"case_insensitive", SL_OPT_BOOL, 0, "false",
     "lower-case the coalesce columns"},
    {"version", SL_OPT_STRING, 0, NULL,
     "version column: an older record, child sets included, never "
     "overwrites a newer one"},
    {"fields", SL_OPT_OBJECT, 0, NULL, "column: field map"},
    {"children", SL_OPT_ARRAY, 0, NULL, "child tables from nested arrays"},
    {"script", SL_OPT_STRING, 0, NULL,
     "Lua run on each record after its fields: may change the row, drop "
     "the record or emit() more rows"},
    {"script_instructions", SL_OPT_INT, 0, "1000000",
     "Lua instructions a script may run per record"},
    {"script_memory", SL_OPT_INT, 0, "16777216",
     "bytes a script may allocate per record"},
    {"script_rows", SL_OPT_INT, 0, "1000",
     "rows a record script may emit() per record"},
    {NULL, 0, 0, NULL, NULL},
};

static const struct sl_opt target_opts[] = {
    {"description", SL_OPT_STRING, 0, NULL, "free text"},
    {"records", SL_OPT_STRING_OR_ARRAY, 0, "records_path header, else $",
     "JSON path of the records in the page"},
    {"table", SL_OPT_STRING, 1, NULL, "target table"},
    {"where", SL_OPT_ARRAY, 0, NULL, "conditions a record must meet"},
    {"coalesce", SL_OPT_STRING_OR_ARRAY, 1, NULL, "key column(s)"},
    {"case_insensitive", SL_OPT_BOOL, 0, "false",
     "lower-case the coalesce columns"},
    {"version", SL_OPT_STRING, 0, NULL, "version column"},
    {"fields", SL_OPT_OBJECT, 1, NULL, "column: field map"},
    {"children", SL_OPT_ARRAY, 0, NULL, "child tables"},
    {"script", SL_OPT_STRING, 0, NULL,
     "Lua run on each record after its fields (may emit() more rows)"},
    {NULL, 0, 0, NULL, NULL},
};

static const struct sl_opt child_opts[] = {
    {"description", SL_OPT_STRING, 0, NULL, "free text"},
    {"table", SL_OPT_STRING, 1, NULL, "child table"},
    {"records", SL_OPT_STRING, 1, NULL,
     "JSON path of the child elements, relative to the parent record"},
    {"parent_key", SL_OPT_OBJECT, 0, "the parent's coalesce columns",
     "child column: parent column"},
    {"coalesce", SL_OPT_STRING_OR_ARRAY, 0, "every column",
     "columns that make a child row unique within its parent"},
    {"where", SL_OPT_ARRAY, 0, NULL, "conditions on each element"},
    {"fields", SL_OPT_OBJECT, 1, NULL, "column: field map"},
    {"script", SL_OPT_STRING, 0, NULL,
     "Lua run on each element after its fields"},
    {NULL, 0, 0, NULL, NULL},
};

static const struct sl_opt field_opts[] = {
    {"description", SL_OPT_STRING, 0, NULL, "free text"},
    {"path", SL_OPT_STRING_OR_ARRAY, 0, NULL,
     "source path, or paths tried in order until one is not null"},
    {"const", SL_OPT_ANY, 0, NULL, "a constant value"},
    {"template", SL_OPT_STRING, 0, NULL, "text with {path} placeholders"},
    {"script", SL_OPT_STRING, 0, NULL, "Lua whose result is the value"},
    {"type", SL_OPT_STRING, 0, "text", "column type"},
    {"formats", SL_OPT_STRING_OR_ARRAY, 0, "iso8601",
     "date/timestamptz source formats, tried in order"},
    {"timezone", SL_OPT_STRING, 0, "UTC", "zone of times that carry no offset"},
    {"transform", SL_OPT_ARRAY, 0, NULL, "functions applied in order"},
    {"choices", SL_OPT_OBJECT, 0, NULL, "value map"},
    {"on_error", SL_OPT_STRING, 0, "reject",
     "failed conversion: reject, null or default"},
    {"default", SL_OPT_ANY, 0, NULL, "value when null"},
    {"required", SL_OPT_BOOL, 0, "false", "reject records without it"},
    {NULL, 0, 0, NULL, NULL},
};

static const struct sl_opt choices_opts[] = {
    {"values", SL_OPT_OBJECT, 1, NULL, "source value: column value"},
    {"unknown", SL_OPT_STRING, 0, "create",
     "unknown values: create (keep), ignore (null) or reject"},
    {"case_insensitive", SL_OPT_BOOL, 0, "false",
     "match source values ignoring case"},
    {NULL, 0, 0, NULL, NULL},
};

static const struct sl_opt cond_opts[] = {
    {"path", SL_OPT_STRING, 1, NULL, "source path"},
    {"equals", SL_OPT_ANY, 0, NULL, "value equals"},
    {"not_equals", SL_OPT_ANY, 0, NULL, "value differs"},
    {"in", SL_OPT_ARRAY, 0, NULL, "value is one of"},
    {"not_in", SL_OPT_ARRAY, 0, NULL, "value is none of"},
    {"exists", SL_OPT_BOOL, 0, NULL, "value is (not) null"},
    {"matches", SL_OPT_STRING, 0, NULL, "text matches a POSIX ERE"},
    {NULL, 0, 0, NULL, NULL},
};

void map_reference(FILE *fp)
{
        sl_opt_reference(fp, "(top level)",
                         "a map is one JSON object; with one target its "
                         "target keys sit at the top level",
                         map_opts);
        sl_opt_reference(fp, "targets[]",
                         "one record kind of the page and its table",
                         target_opts);
        sl_opt_reference(fp, "children[]",
                         "a nested array that becomes rows of a child table, "
                         "replaced as a unit per parent",
                         child_opts);
        sl_opt_reference(fp, "fields.<column>",
                         "a field map: a string is a source path; an object "
                         "takes these keys",
                         field_opts);
        sl_opt_reference(fp, "choices",
                         "a value map with an action for unknown values",
                         choices_opts);
        sl_opt_reference(fp, "where[]", "one condition on a record", cond_opts);
}

static const char *const type_names[] = {
    [MAP_T_TEXT] = "text",         [MAP_T_INTEGER] = "integer",
    [MAP_T_BIGINT] = "bigint",     [MAP_T_NUMERIC] = "numeric",
    [MAP_T_BOOLEAN] = "boolean",   [MAP_T_TIMESTAMPTZ] = "timestamptz",
    [MAP_T_DATE] = "date",         [MAP_T_UUID] = "uuid",
    [MAP_T_INET] = "inet",         [MAP_T_CIDR] = "cidr",
    [MAP_T_TEXT_ARRAY] = "text[]", [MAP_T_JSONB] = "jsonb",
};

const char *map_type_name(enum map_type t)
{
        return type_names[t];
}

/* Loading context: the file, its text for positions, collected problems. */
struct lctx {
        const char *file;
        const char *text;
        char *errs;
        int problems;
        struct map *m; /* the map being built */
        int in_child;  /* parsing a child target: "^" is the parent */
};

static void problem(struct lctx *c, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void problem(struct lctx *c, const char *path, const char *fmt, ...)
{
        char msg[768];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        sl_config_problem(&c->errs, c->file, c->text, path, "%s", msg);
        c->problems++;
}

/* where + "." + suffix, or suffix alone at the root */
static void subpath(char *buf, size_t size, const char *where,
                    const char *suffix)
{
        size_t n = 0;

        for (const char *p = where; *p && n + 1 < size; p++)
                buf[n++] = *p;
        if (*where && n + 1 < size)
                buf[n++] = '.';
        for (const char *p = suffix; *p && n + 1 < size; p++)
                buf[n++] = *p;
        buf[n] = '\0';
}

static void subpathf(char *buf, size_t size, const char *where, const char *fmt,
                     ...) __attribute__((format(printf, 4, 5)));

static void subpathf(char *buf, size_t size, const char *where, const char *fmt,
                     ...)
{
        char suffix[256];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(suffix, sizeof(suffix), fmt, ap);
        va_end(ap);
        subpath(buf, size, where, suffix);
}

static int check_opts(struct lctx *c, const struct sl_opt *table, json_t *obj,
                      const char *where)
{
        int n = sl_opt_check(table, obj, c->file, c->text, where, &c->errs);
        c->problems += n;
        return n;
}

static int valid_ident(const char *s)
{
        if (!*s || strlen(s) > 63)
                return 0;
        for (const char *p = s; *p; p++)
                if (!(islower((unsigned char)*p) || *p == '_' ||
                      (p != s && isdigit((unsigned char)*p))))
                        return 0;
        return 1;
}

static int path_compile(struct lctx *c, const char *where, const char *text,
                        struct map_path *out)
{
        char err[256];
        const char *expr = text;

        memset(out, 0, sizeof(*out));
        if (*expr == '^') {
                out->parent = 1;
                expr++;
                if (*expr == '.' && (expr[1] == '\0'))
                        expr++;
        }
        out->jp = sl_jsonpath_compile(*expr ? expr : "$", err, sizeof(err));
        if (!out->jp) {
                problem(c, where, "bad path \"%s\": %s", text, err);
                return -1;
        }
        out->single = sl_jsonpath_is_single(out->jp);
        out->text = sl_strdup(text);
        if (out->parent && !c->in_child && c->m) {
                c->m->page_reads = sl_realloc(
                    c->m->page_reads, (c->m->npage_reads + 1) * sizeof(char *));
                c->m->page_reads[c->m->npage_reads++] = sl_strdup(text);
        }
        return 0;
}

static void path_free(struct map_path *p)
{
        if (p->jp)
                sl_jsonpath_destroy(p->jp);
        free(p->text);
}

static void push_read(struct map_target *t, const char *prefix,
                      const char *norm)
{
        char *full;

        if (prefix && *prefix)
                full = *norm ? sl_asprintf("%s.%s", prefix, norm)
                             : sl_strdup(prefix);
        else
                full = sl_strdup(norm);
        t->reads = sl_realloc(t->reads, (t->nreads + 1) * sizeof(char *));
        t->reads[t->nreads++] = full;
}

/* The member path after an @ in a filter ("@.lang", "@['a'].b"), dotted,
 * into out; the end of what was read. */
static const char *filter_member(const char *s, struct sl_buf *out)
{
        for (;;) {
                if (*s == '.' && s[1] != '.') {
                        const char *e = ++s;
                        while (*e && (isalnum((unsigned char)*e) || *e == '_' ||
                                      *e == '-' || *e == '$'))
                                e++;
                        if (e == s)
                                return s;
                        if (out->len)
                                sl_buf_puts(out, ".");
                        sl_buf_append(out, s, (size_t)(e - s));
                        s = e;
                } else if (*s == '[' && (s[1] == '\'' || s[1] == '"')) {
                        char q = s[1];
                        const char *e = strchr(s + 2, q);
                        if (!e || e[1] != ']')
                                return s;
                        if (out->len)
                                sl_buf_puts(out, ".");
                        sl_buf_append(out, s + 2, (size_t)(e - s - 2));
                        s = e + 2;
                } else {
                        return s;
                }
        }
}

/* A filter reads members of the elements it tests: descriptions[?(@.lang
 * == 'en')].value reads descriptions[*].lang too. */
static void add_filter_reads(struct map_target *t, const char *prefix,
                             const char *text)
{
        const char *f = text;

        while ((f = strstr(f, "[?")) != NULL) {
                char *head = sl_asprintf("%.*s", (int)(f - text), text);
                char norm[512];
                char q = 0;
                const char *s = f + 2;

                map_path_normalize(head, norm, sizeof(norm));
                free(head);
                for (; *s && (q || *s != ']'); s++) {
                        struct sl_buf m;
                        if (q) {
                                if (*s == '\\' && s[1])
                                        s++;
                                else if (*s == q)
                                        q = 0;
                                continue;
                        }
                        if (*s == '\'' || *s == '"') {
                                q = *s;
                                continue;
                        }
                        if (*s != '@')
                                continue;
                        sl_buf_init(&m, 0);
                        s = filter_member(s + 1, &m) - 1;
                        if (m.len) {
                                char *r = *norm ? sl_asprintf("%s[*].%s", norm,
                                                              m.data)
                                                : sl_strdup(m.data);
                                push_read(t, prefix, r);
                                free(r);
                        }
                        sl_buf_free(&m);
                }
                f = *s ? s + 1 : s;
        }
}

static void add_read(struct map_target *t, const char *prefix,
                     const struct map_path *p)
{
        char norm[512];

        if (p->parent)
                return;
        map_path_normalize(p->text, norm, sizeof(norm));
        push_read(t, prefix, norm);
        add_filter_reads(t, prefix, p->text);
}

void map_path_normalize(const char *path, char *buf, size_t size)
{
        struct sl_buf b;
        const char *s = path;

        sl_buf_init(&b, 0);
        if (*s == '$')
                s++;
        if (*s == '.')
                s++;
        while (*s) {
                if (*s == '[') {
                        if (s[1] == '\'' || s[1] == '"') {
                                char q = s[1];
                                s += 2;
                                if (b.len)
                                        sl_buf_puts(&b, ".");
                                while (*s && *s != q) {
                                        if (*s == '\\' && s[1])
                                                s++;
                                        sl_buf_append(&b, s, 1);
                                        s++;
                                }
                                if (*s)
                                        s++;
                                if (*s == ']')
                                        s++;
                                continue;
                        }
                        /* index, wildcard or filter: any element */
                        {
                                char q = 0;
                                s++;
                                while (*s && (q || *s != ']')) {
                                        if (q && *s == '\\' && s[1])
                                                s++;
                                        else if (q && *s == q)
                                                q = 0;
                                        else if (!q &&
                                                 (*s == '\'' || *s == '"'))
                                                q = *s;
                                        s++;
                                }
                                if (*s)
                                        s++;
                        }
                        sl_buf_puts(&b, "[*]");
                        continue;
                }
                if (*s == '.' && s[1] == '*') {
                        sl_buf_puts(&b, ".*");
                        s += 2;
                        continue;
                }
                sl_buf_append(&b, s, 1);
                s++;
        }
        snprintf(buf, size, "%s", b.data ? b.data : "");
        sl_buf_free(&b);
}

/* s without its "[*]": an array and its elements are one path for drift
 * (a child table's "records": "references" reads references[*].url as
 * "references.url"). New; free with free(). */
static char *no_elements(const char *s)
{
        struct sl_buf b;

        sl_buf_init(&b, 0);
        while (*s) {
                const char *e = strstr(s, "[*]");
                size_t n = e ? (size_t)(e - s) : strlen(s);
                sl_buf_append(&b, s, n);
                s += n;
                if (e)
                        s += 3;
        }
        if (!b.data)
                sl_buf_puts(&b, "");
        return sl_buf_steal(&b, NULL);
}

static int target_reads(const struct map_target *t, const char *norm)
{
        char *flat = no_elements(norm);
        int found = 0;

        for (size_t i = 0; i < t->nchildren && !found; i++)
                found = target_reads(&t->children[i], norm);
        for (size_t i = 0; i < t->nreads && !found; i++) {
                char *r = no_elements(t->reads[i]);
                size_t n = strlen(r);
                /* n == 0: the whole record ($) */
                found = n == 0 || (strncmp(flat, r, n) == 0 &&
                                   (flat[n] == '\0' || flat[n] == '.'));
                free(r);
        }
        free(flat);
        return found;
}

int map_reads_path(const struct map *m, size_t target, const char *norm)
{
        return target_reads(&m->targets[target], norm);
}

static int parse_regex(struct lctx *c, const char *where, const char *pat,
                       regex_t *re)
{
        int rc = regcomp(re, pat, REG_EXTENDED);
        if (rc != 0) {
                char msg[256];
                regerror(rc, re, msg, sizeof(msg));
                problem(c, where, "bad regular expression \"%s\": %s", pat,
                        msg);
                return -1;
        }
        return 0;
}

static int parse_fn(struct lctx *c, const char *where, json_t *spec,
                    struct map_fn *fn)
{
        const char *name;
        json_t *arg = NULL;

        memset(fn, 0, sizeof(*fn));
        if (json_is_string(spec)) {
                name = json_string_value(spec);
        } else if (json_is_object(spec) && json_object_size(spec) == 1) {
                void *it = json_object_iter(spec);
                name = json_object_iter_key(it);
                arg = json_object_iter_value(it);
        } else {
                problem(c, where,
                        "expected a function name or {\"function\": "
                        "argument}");
                return -1;
        }
        if (strcmp(name, "lower") == 0)
                fn->kind = MAP_FN_LOWER;
        else if (strcmp(name, "upper") == 0)
                fn->kind = MAP_FN_UPPER;
        else if (strcmp(name, "trim") == 0)
                fn->kind = MAP_FN_TRIM;
        else if (strcmp(name, "length") == 0)
                fn->kind = MAP_FN_LENGTH;
        else if (strcmp(name, "regex_extract") == 0)
                fn->kind = MAP_FN_REGEX_EXTRACT;
        else if (strcmp(name, "regex_replace") == 0)
                fn->kind = MAP_FN_REGEX_REPLACE;
        else if (strcmp(name, "split") == 0)
                fn->kind = MAP_FN_SPLIT;
        else if (strcmp(name, "join") == 0)
                fn->kind = MAP_FN_JOIN;
        else if (strcmp(name, "default") == 0)
                fn->kind = MAP_FN_DEFAULT;
        else {
                problem(c, where,
                        "unknown function \"%s\" (lower, upper, trim, "
                        "length, regex_extract, regex_replace, split, join, "
                        "default)",
                        name);
                return -1;
        }
        switch (fn->kind) {
        case MAP_FN_LOWER:
        case MAP_FN_UPPER:
        case MAP_FN_TRIM:
        case MAP_FN_LENGTH:
                if (arg && !json_is_null(arg)) {
                        problem(c, where, "%s takes no argument", name);
                        return -1;
                }
                return 0;
        case MAP_FN_SPLIT:
        case MAP_FN_JOIN:
                if (!json_is_string(arg) || !*json_string_value(arg)) {
                        problem(c, where, "%s wants a separator string", name);
                        return -1;
                }
                fn->arg = sl_strdup(json_string_value(arg));
                return 0;
        case MAP_FN_DEFAULT:
                fn->value = json_incref(arg);
                return 0;
        case MAP_FN_REGEX_EXTRACT: {
                const char *pat = NULL;
                fn->group = -1;
                if (json_is_string(arg)) {
                        pat = json_string_value(arg);
                } else if (json_is_object(arg)) {
                        json_t *g = json_object_get(arg, "group");
                        pat =
                            json_string_value(json_object_get(arg, "pattern"));
                        if (g &&
                            (!json_is_integer(g) || json_integer_value(g) < 0 ||
                             json_integer_value(g) > 9)) {
                                problem(c, where,
                                        "regex_extract: group must be an "
                                        "integer 0-9");
                                return -1;
                        }
                        if (g)
                                fn->group = (int)json_integer_value(g);
                }
                if (!pat) {
                        problem(c, where,
                                "regex_extract wants a pattern or "
                                "{\"pattern\", \"group\"}");
                        return -1;
                }
                if (parse_regex(c, where, pat, &fn->re) < 0)
                        return -1;
                fn->has_re = 1;
                if (fn->group < 0)
                        fn->group = fn->re.re_nsub > 0 ? 1 : 0;
                if ((size_t)fn->group > fn->re.re_nsub) {
                        problem(c, where,
                                "regex_extract: group %d but the pattern "
                                "has %zu",
                                fn->group, fn->re.re_nsub);
                        return -1;
                }
                return 0;
        }
        case MAP_FN_REGEX_REPLACE: {
                const char *pat =
                    json_string_value(json_object_get(arg, "pattern"));
                const char *with =
                    json_string_value(json_object_get(arg, "with"));
                if (!json_is_object(arg) || !pat || !with ||
                    json_object_size(arg) != 2) {
                        problem(c, where,
                                "regex_replace wants {\"pattern\": ..., "
                                "\"with\": ...}");
                        return -1;
                }
                if (parse_regex(c, where, pat, &fn->re) < 0)
                        return -1;
                fn->has_re = 1;
                fn->arg = sl_strdup(with);
                return 0;
        }
        }
        return 0;
}

static void fn_free(struct map_fn *fn)
{
        if (fn->has_re)
                regfree(&fn->re);
        free(fn->arg);
        json_decref(fn->value);
}

static int parse_template(struct lctx *c, const char *where, const char *s,
                          struct map_field *f)
{
        struct sl_buf lit;

        sl_buf_init(&lit, 0);
        f->has_tmpl = 1;
        while (*s) {
                if ((s[0] == '{' && s[1] == '{') ||
                    (s[0] == '}' && s[1] == '}')) {
                        sl_buf_append(&lit, s, 1);
                        s += 2;
                        continue;
                }
                if (*s == '{') {
                        const char *end = strchr(s, '}');
                        char *expr;
                        struct map_tmpl_part part = {0};
                        if (!end || end == s + 1) {
                                problem(c, where,
                                        "template: unterminated or empty "
                                        "{placeholder}");
                                sl_buf_free(&lit);
                                return -1;
                        }
                        if (lit.len) {
                                part.lit = sl_buf_steal(&lit, NULL);
                                f->tmpl = sl_realloc(f->tmpl, (f->ntmpl + 1) *
                                                                  sizeof(part));
                                f->tmpl[f->ntmpl++] = part;
                                part.lit = NULL;
                        }
                        expr = sl_strndup(s + 1, (size_t)(end - s - 1));
                        if (path_compile(c, where, expr, &part.path) < 0) {
                                free(expr);
                                sl_buf_free(&lit);
                                return -1;
                        }
                        free(expr);
                        f->tmpl =
                            sl_realloc(f->tmpl, (f->ntmpl + 1) * sizeof(part));
                        f->tmpl[f->ntmpl++] = part;
                        s = end + 1;
                        continue;
                }
                if (*s == '}') {
                        problem(c, where, "template: unmatched }");
                        sl_buf_free(&lit);
                        return -1;
                }
                sl_buf_append(&lit, s, 1);
                s++;
        }
        if (lit.len) {
                struct map_tmpl_part part = {0};
                part.lit = sl_buf_steal(&lit, NULL);
                f->tmpl = sl_realloc(f->tmpl, (f->ntmpl + 1) * sizeof(part));
                f->tmpl[f->ntmpl++] = part;
        }
        sl_buf_free(&lit);
        return 0;
}

static int parse_tz(struct lctx *c, const char *where, const char *tz,
                    struct map_field *f)
{
        int h, m;

        if (strcmp(tz, "UTC") == 0 || strcmp(tz, "Z") == 0) {
                f->tz_kind = MAP_TZ_UTC;
                return 0;
        }
        if ((tz[0] == '+' || tz[0] == '-') && strlen(tz) == 6 &&
            isdigit((unsigned char)tz[1]) && isdigit((unsigned char)tz[2]) &&
            tz[3] == ':' && isdigit((unsigned char)tz[4]) &&
            isdigit((unsigned char)tz[5])) {
                h = (tz[1] - '0') * 10 + (tz[2] - '0');
                m = (tz[4] - '0') * 10 + (tz[5] - '0');
                if (h > 14 || m > 59) {
                        problem(c, where, "bad UTC offset \"%s\"", tz);
                        return -1;
                }
                f->tz_kind = MAP_TZ_OFFSET;
                f->tz_offset = (tz[0] == '-' ? -1 : 1) * (h * 3600L + m * 60L);
                return 0;
        }
        /* An IANA name (Europe/Paris): must exist in the zone database. */
        for (const char *p = tz; *p; p++)
                if (!(isalnum((unsigned char)*p) || *p == '/' || *p == '_' ||
                      *p == '-' || *p == '+')) {
                        problem(c, where, "bad time zone \"%s\"", tz);
                        return -1;
                }
        {
                char zpath[512];
                FILE *fp;
                snprintf(zpath, sizeof(zpath), "/usr/share/zoneinfo/%s", tz);
                fp = fopen(zpath, "r");
                if (!fp) {
                        problem(c, where,
                                "unknown time zone \"%s\" (use UTC, +HH:MM or "
                                "an IANA name)",
                                tz);
                        return -1;
                }
                fclose(fp);
        }
        f->tz_kind = MAP_TZ_NAMED;
        f->tz_name = sl_strdup(tz);
        return 0;
}

static int parse_type(const char *s, enum map_type *t)
{
        for (size_t i = 0; i < sizeof(type_names) / sizeof(type_names[0]); i++)
                if (strcmp(s, type_names[i]) == 0) {
                        *t = (enum map_type)i;
                        return 0;
                }
        return -1;
}

static int parse_choices(struct lctx *c, const char *where, json_t *ch,
                         struct map_field *f)
{
        char path[512];
        json_t *values;
        const char *un, *k;
        json_t *v;

        if (check_opts(c, choices_opts, ch, where))
                return -1;
        values = json_object_get(ch, "values");
        f->choices_ci = json_is_true(json_object_get(ch, "case_insensitive"));
        un = json_string_value(json_object_get(ch, "unknown"));
        if (!un || strcmp(un, "create") == 0)
                f->unknown = MAP_UNKNOWN_CREATE;
        else if (strcmp(un, "ignore") == 0)
                f->unknown = MAP_UNKNOWN_IGNORE;
        else if (strcmp(un, "reject") == 0)
                f->unknown = MAP_UNKNOWN_REJECT;
        else {
                subpath(path, sizeof(path), where, "unknown");
                problem(c, path,
                        "unknown must be create, ignore or reject, not \"%s\"",
                        un);
                return -1;
        }
        f->choices = json_object();
        json_object_foreach(values, k, v)
        {
                if (f->choices_ci) {
                        char *low = sl_strdup(k);
                        for (char *p = low; *p; p++)
                                *p = (char)tolower((unsigned char)*p);
                        if (json_object_get(f->choices, low)) {
                                subpathf(path, sizeof(path), where, "values.%s",
                                         k);
                                problem(c, path,
                                        "duplicate value when ignoring "
                                        "case");
                        }
                        json_object_set(f->choices, low, v);
                        free(low);
                } else {
                        json_object_set(f->choices, k, v);
                }
        }
        return 0;
}

/* 1 when src holds the word w (a script that never names page or parent
 * lets map_apply_bytes skip decoding the page around the records) */
static int has_word(const char *src, const char *w)
{
        size_t n = strlen(w);

        for (const char *p = strstr(src, w); p; p = strstr(p + 1, w)) {
                int before =
                    p > src && (isalnum((unsigned char)p[-1]) || p[-1] == '_');
                int after = isalnum((unsigned char)p[n]) || p[n] == '_';
                if (!before && !after)
                        return 1;
        }
        return 0;
}

/* Compiles the script at `where` in the map's Lua state (made on the
 * first script). New; NULL after a problem. */
static struct map_script *script_compile(struct lctx *c, const char *where,
                                         const char *src)
{
        char err[512];
        struct map_script *s;

        if (!c->m->lua) {
                c->m->lua = map_lua_new(c->m->script_instructions,
                                        c->m->script_memory, err, sizeof(err));
                if (!c->m->lua) {
                        problem(c, where, "%s", err);
                        return NULL;
                }
        }
        if (has_word(src, "page") || has_word(src, "parent"))
                c->m->script_page = 1;
        s = sl_calloc(1, sizeof(*s));
        if (map_script_compile(c->m->lua, where, src, s, err, sizeof(err)) <
            0) {
                problem(c, where, "script does not compile: %s", err);
                free(s);
                return NULL;
        }
        return s;
}

static void script_free(struct map_script *s)
{
        if (!s)
                return;
        map_script_free(s);
        free(s);
}

static int parse_field(struct lctx *c, const char *where, const char *column,
                       json_t *spec, struct map_field *f)
{
        char path[512];
        json_t *v;
        int sources = 0;
        int before = c->problems;

        memset(f, 0, sizeof(*f));
        f->column = sl_strdup(column);
        if (!valid_ident(column))
                problem(c, where,
                        "column name \"%s\" must match [a-z_][a-z0-9_]*",
                        column);
        if (json_is_string(spec)) {
                f->paths = sl_calloc(1, sizeof(*f->paths));
                if (path_compile(c, where, json_string_value(spec),
                                 &f->paths[0]) == 0)
                        f->npaths = 1;
                return c->problems > before ? -1 : 0;
        }
        if (check_opts(c, field_opts, spec, where))
                return -1;
        v = json_object_get(spec, "path");
        if (v) {
                size_t n = json_is_array(v) ? json_array_size(v) : 1;
                sources++;
                subpath(path, sizeof(path), where, "path");
                if (n == 0)
                        problem(c, path, "empty list of paths");
                f->paths = sl_calloc(n ? n : 1, sizeof(*f->paths));
                for (size_t i = 0; i < n; i++) {
                        json_t *p = json_is_array(v) ? json_array_get(v, i) : v;
                        if (!json_is_string(p)) {
                                problem(c, path, "paths must be strings");
                                continue;
                        }
                        if (path_compile(c, path, json_string_value(p),
                                         &f->paths[f->npaths]) == 0)
                                f->npaths++;
                }
        }
        v = json_object_get(spec, "const");
        if (v) {
                sources++;
                f->constant = json_incref(v);
        }
        v = json_object_get(spec, "template");
        if (v) {
                sources++;
                subpath(path, sizeof(path), where, "template");
                parse_template(c, path, json_string_value(v), f);
        }
        v = json_object_get(spec, "script");
        if (v) {
                sources++;
                subpath(path, sizeof(path), where, "script");
                f->script = script_compile(c, path, json_string_value(v));
        }
        if (sources != 1)
                problem(c, where,
                        "a field needs exactly one of path, const, "
                        "template or script");
        v = json_object_get(spec, "type");
        if (v && parse_type(json_string_value(v), &f->type) < 0) {
                subpath(path, sizeof(path), where, "type");
                problem(c, path,
                        "unknown type \"%s\" (text, integer, bigint, numeric, "
                        "boolean, timestamptz, date, uuid, inet, cidr, "
                        "text[], jsonb)",
                        json_string_value(v));
        }
        v = json_object_get(spec, "formats");
        if (v) {
                size_t n = json_is_array(v) ? json_array_size(v) : 1;
                subpath(path, sizeof(path), where, "formats");
                if (f->type != MAP_T_TIMESTAMPTZ && f->type != MAP_T_DATE)
                        problem(c, path,
                                "formats apply to timestamptz and date "
                                "fields only");
                if (n == 0)
                        problem(c, path, "empty list of formats");
                f->formats = sl_calloc(n ? n : 1, sizeof(char *));
                for (size_t i = 0; i < n; i++) {
                        json_t *p = json_is_array(v) ? json_array_get(v, i) : v;
                        if (!json_is_string(p) || !*json_string_value(p)) {
                                problem(c, path,
                                        "formats must be non-empty "
                                        "strings");
                                continue;
                        }
                        f->formats[f->nformats++] =
                            sl_strdup(json_string_value(p));
                }
        }
        v = json_object_get(spec, "timezone");
        if (v) {
                subpath(path, sizeof(path), where, "timezone");
                parse_tz(c, path, json_string_value(v), f);
        }
        v = json_object_get(spec, "transform");
        if (v) {
                f->fns = sl_calloc(json_array_size(v) + 1, sizeof(*f->fns));
                for (size_t i = 0; i < json_array_size(v); i++) {
                        subpathf(path, sizeof(path), where, "transform[%zu]",
                                 i);
                        /* a failed one frees what it took before its
                         * problem (a regex whose group is out of range) */
                        if (parse_fn(c, path, json_array_get(v, i),
                                     &f->fns[f->nfns]) == 0)
                                f->nfns++;
                        else
                                fn_free(&f->fns[f->nfns]);
                }
        }
        v = json_object_get(spec, "choices");
        if (v) {
                subpath(path, sizeof(path), where, "choices");
                parse_choices(c, path, v, f);
        }
        v = json_object_get(spec, "default");
        if (v)
                f->def = json_incref(v);
        v = json_object_get(spec, "on_error");
        if (v) {
                const char *s = json_string_value(v);
                subpath(path, sizeof(path), where, "on_error");
                if (strcmp(s, "reject") == 0)
                        f->on_error = MAP_ON_ERROR_REJECT;
                else if (strcmp(s, "null") == 0)
                        f->on_error = MAP_ON_ERROR_NULL;
                else if (strcmp(s, "default") == 0) {
                        f->on_error = MAP_ON_ERROR_DEFAULT;
                        if (!f->def)
                                problem(c, path,
                                        "on_error \"default\" needs a "
                                        "default");
                } else
                        problem(c, path,
                                "on_error must be reject, null or default, "
                                "not \"%s\"",
                                s);
        }
        f->required = json_is_true(json_object_get(spec, "required"));
        return c->problems > before ? -1 : 0;
}

static void field_free(struct map_field *f)
{
        script_free(f->script);
        free(f->column);
        for (size_t i = 0; i < f->npaths; i++)
                path_free(&f->paths[i]);
        free(f->paths);
        json_decref(f->constant);
        for (size_t i = 0; i < f->ntmpl; i++) {
                free(f->tmpl[i].lit);
                if (!f->tmpl[i].lit)
                        path_free(&f->tmpl[i].path);
        }
        free(f->tmpl);
        for (size_t i = 0; i < f->nformats; i++)
                free(f->formats[i]);
        free(f->formats);
        free(f->tz_name);
        for (size_t i = 0; i < f->nfns; i++)
                fn_free(&f->fns[i]);
        free(f->fns);
        json_decref(f->choices);
        json_decref(f->def);
}

static void cond_free(struct map_cond *cd)
{
        path_free(&cd->path);
        json_decref(cd->value);
        if (cd->has_re)
                regfree(&cd->re);
}

/* 0, or -1 with nothing of cd left to free. */
static int parse_cond(struct lctx *c, const char *where, json_t *spec,
                      struct map_cond *cd)
{
        static const char *const ops[] = {"equals", "not_equals", "in",
                                          "not_in", "exists",     "matches"};
        int nops = 0;

        memset(cd, 0, sizeof(*cd));
        if (check_opts(c, cond_opts, spec, where))
                return -1;
        if (path_compile(c, where,
                         json_string_value(json_object_get(spec, "path")),
                         &cd->path) < 0)
                goto fail;
        for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
                json_t *v = json_object_get(spec, ops[i]);
                if (!v)
                        continue;
                nops++;
                cd->op = (enum map_cond_op)i;
                json_decref(cd->value);
                cd->value = json_incref(v);
        }
        if (nops != 1) {
                problem(c, where,
                        "a condition needs exactly one of equals, "
                        "not_equals, in, not_in, exists, matches");
                goto fail;
        }
        if (cd->op == MAP_COND_MATCHES) {
                char path[512];
                subpath(path, sizeof(path), where, "matches");
                if (parse_regex(c, path, json_string_value(cd->value),
                                &cd->re) < 0)
                        goto fail;
                cd->has_re = 1;
        }
        return 0;
fail:
        cond_free(cd);
        memset(cd, 0, sizeof(*cd));
        return -1;
}

static int has_field(const struct map_target *t, const char *col)
{
        for (size_t i = 0; i < t->nfields; i++)
                if (strcmp(t->fields[i].column, col) == 0)
                        return 1;
        return 0;
}

static char **str_list(json_t *v, size_t *n)
{
        size_t cnt = json_is_array(v) ? json_array_size(v) : 1;
        char **out = sl_calloc(cnt + 1, sizeof(char *));

        *n = 0;
        for (size_t i = 0; i < cnt; i++) {
                json_t *e = json_is_array(v) ? json_array_get(v, i) : v;
                if (json_is_string(e))
                        out[(*n)++] = sl_strdup(json_string_value(e));
        }
        return out;
}

static void parse_target(struct lctx *c, const char *where, json_t *spec,
                         struct map_target *t, const struct map_target *parent,
                         const char *read_prefix);

static void parse_children(struct lctx *c, const char *where, json_t *arr,
                           struct map_target *t, const char *read_prefix)
{
        char path[512];

        t->children = sl_calloc(json_array_size(arr) + 1, sizeof(*t->children));
        for (size_t i = 0; i < json_array_size(arr); i++) {
                snprintf(path, sizeof(path), "%s%schildren[%zu]", where,
                         *where ? "." : "", i);
                parse_target(c, path, json_array_get(arr, i),
                             &t->children[t->nchildren++], t, read_prefix);
        }
}

static void parse_target_body(struct lctx *c, const char *where, json_t *spec,
                              struct map_target *t,
                              const struct map_target *parent,
                              const char *read_prefix);

static void parse_target(struct lctx *c, const char *where, json_t *spec,
                         struct map_target *t, const struct map_target *parent,
                         const char *read_prefix)
{
        int was_child = c->in_child;

        c->in_child = parent != NULL;
        parse_target_body(c, where, spec, t, parent, read_prefix);
        c->in_child = was_child;
}

static void parse_target_body(struct lctx *c, const char *where, json_t *spec,
                              struct map_target *t,
                              const struct map_target *parent,
                              const char *read_prefix)
{
        char path[512], err[256];
        const char *key;
        json_t *v, *fields;
        char norm[512];
        char *prefix = NULL;

        memset(t, 0, sizeof(*t));
        t->is_child = parent != NULL;
        if (check_opts(c, parent ? child_opts : target_opts, spec, where))
                return;
        t->table = sl_strdup(json_string_value(json_object_get(spec, "table")));
        t->topic = sl_asprintf("mapped.%s", t->table);
        snprintf(path, sizeof(path), "%s%stable", where, *where ? "." : "");
        if (!valid_ident(t->table))
                problem(c, path, "table name \"%s\" must match [a-z0-9_]+",
                        t->table);
        v = json_object_get(spec, "records");
        if (v) {
                size_t nv = json_is_array(v) ? json_array_size(v) : 1;
                subpath(path, sizeof(path), where, "records");
                if (json_is_array(v) && parent)
                        problem(c, path, "a child table has one records path");
                if (nv == 0 ||
                    !json_is_string(json_is_array(v) ? json_array_get(v, 0)
                                                     : v)) {
                        problem(c, path, "expected a path or a list of paths");
                        v = json_string("$");
                } else {
                        json_incref(v);
                }
                t->records_alt = sl_calloc(nv, sizeof(*t->records_alt));
                for (size_t i = 0; i < nv; i++) {
                        json_t *e = json_is_array(v) ? json_array_get(v, i) : v;
                        const char *txt =
                            json_is_string(e) ? json_string_value(e) : "";
                        struct sl_jsonpath *jp =
                            sl_jsonpath_compile(txt, err, sizeof(err));
                        if (!jp) {
                                problem(c, path, "bad path \"%s\": %s", txt,
                                        err);
                                continue;
                        }
                        if (!t->records) {
                                t->records = jp;
                                t->records_text = sl_strdup(txt);
                        } else {
                                t->records_alt[t->nalt++] = jp;
                        }
                }
                json_decref(v);
                if (!t->records_text)
                        t->records_text = sl_strdup("$");
                map_path_normalize(t->records_text, norm, sizeof(norm));
                if (parent)
                        prefix = read_prefix && *read_prefix
                                     ? sl_asprintf("%s.%s", read_prefix, norm)
                                     : sl_strdup(norm);
        }
        if (!prefix)
                prefix = sl_strdup(parent && read_prefix ? read_prefix : "");
        if (parent && prefix[0]) {
                /* reading the children array counts as reading it */
                t->reads = sl_calloc(1, sizeof(char *));
        }
        fields = json_object_get(spec, "fields");
        t->fields = sl_calloc(json_object_size(fields) + 1, sizeof(*t->fields));
        json_object_foreach(fields, key, v)
        {
                snprintf(path, sizeof(path), "%s%sfields.%s", where,
                         *where ? "." : "", key);
                if (parse_field(c, path, key, v, &t->fields[t->nfields]) == 0) {
                        struct map_field *f = &t->fields[t->nfields];
                        for (size_t i = 0; i < f->npaths; i++)
                                add_read(t, prefix, &f->paths[i]);
                        for (size_t i = 0; i < f->ntmpl; i++)
                                if (!f->tmpl[i].lit)
                                        add_read(t, prefix, &f->tmpl[i].path);
                }
                t->nfields++;
        }
        v = json_object_get(spec, "where");
        if (v) {
                t->where = sl_calloc(json_array_size(v) + 1, sizeof(*t->where));
                for (size_t i = 0; i < json_array_size(v); i++) {
                        snprintf(path, sizeof(path), "%s%swhere[%zu]", where,
                                 *where ? "." : "", i);
                        if (parse_cond(c, path, json_array_get(v, i),
                                       &t->where[t->nwhere]) == 0) {
                                add_read(t, prefix, &t->where[t->nwhere].path);
                                t->nwhere++;
                        }
                }
        }
        snprintf(path, sizeof(path), "%s%scoalesce", where, *where ? "." : "");
        v = json_object_get(spec, "coalesce");
        if (v) {
                t->coalesce = str_list(v, &t->ncoalesce);
                if (t->ncoalesce == 0 ||
                    (json_is_array(v) && t->ncoalesce != json_array_size(v)))
                        problem(c, path,
                                "coalesce wants a column name or a "
                                "non-empty list of them");
        }
        t->ci = json_is_true(json_object_get(spec, "case_insensitive"));
        v = json_object_get(spec, "version");
        if (v) {
                t->version = sl_strdup(json_string_value(v));
                if (!has_field(t, t->version)) {
                        snprintf(path, sizeof(path), "%s%sversion", where,
                                 *where ? "." : "");
                        problem(c, path, "version column \"%s\" is not a field",
                                t->version);
                }
        }
        if (parent) {
                v = json_object_get(spec, "parent_key");
                if (v) {
                        const char *k;
                        json_t *pv;
                        t->pk_child =
                            sl_calloc(json_object_size(v) + 1, sizeof(char *));
                        t->pk_parent =
                            sl_calloc(json_object_size(v) + 1, sizeof(char *));
                        json_object_foreach(v, k, pv)
                        {
                                subpathf(path, sizeof(path), where,
                                         "parent_key.%s", k);
                                if (!json_is_string(pv) ||
                                    !has_field(parent, json_string_value(pv))) {
                                        problem(c, path,
                                                "expected a column of the "
                                                "parent table");
                                        continue;
                                }
                                if (has_field(t, k))
                                        problem(c, path,
                                                "\"%s\" is also a field of "
                                                "the child",
                                                k);
                                t->pk_child[t->npk] = sl_strdup(k);
                                t->pk_parent[t->npk++] =
                                    sl_strdup(json_string_value(pv));
                        }
                } else {
                        t->pk_child =
                            sl_calloc(parent->ncoalesce + 1, sizeof(char *));
                        t->pk_parent =
                            sl_calloc(parent->ncoalesce + 1, sizeof(char *));
                        for (size_t i = 0; i < parent->ncoalesce; i++) {
                                t->pk_child[t->npk] =
                                    sl_strdup(parent->coalesce[i]);
                                t->pk_parent[t->npk++] =
                                    sl_strdup(parent->coalesce[i]);
                        }
                }
        }
        subpath(path, sizeof(path), where, "coalesce");
        for (size_t i = 0; i < t->ncoalesce; i++) {
                int known = has_field(t, t->coalesce[i]);
                for (size_t j = 0; j < t->npk; j++)
                        if (strcmp(t->pk_child[j], t->coalesce[i]) == 0)
                                known = 1;
                if (!known)
                        problem(c, path,
                                "coalesce column \"%s\" is not a field",
                                t->coalesce[i]);
        }
        v = json_object_get(spec, "script");
        if (v) {
                subpath(path, sizeof(path), where, "script");
                t->script = script_compile(c, path, json_string_value(v));
        }
        /* what a script reads is not known: drift counts the whole
         * record as read */
        for (size_t i = 0; i < t->nfields; i++)
                if (t->fields[i].script || t->script) {
                        push_read(t, prefix, "");
                        break;
                }
        v = json_object_get(spec, "children");
        if (v)
                parse_children(c, where, v, t, prefix);
        /* the names emit(row, child) may give */
        if (t->nchildren) {
                t->child_names =
                    sl_calloc(t->nchildren, sizeof(*t->child_names));
                for (size_t i = 0; i < t->nchildren; i++)
                        t->child_names[i] = t->children[i].table;
        }
        if (t->reads && !t->nreads && prefix[0]) {
                t->reads[0] = sl_strdup(prefix);
                t->nreads = 1;
        }
        free(prefix);
}

static void target_free(struct map_target *t)
{
        script_free(t->script);
        free(t->table);
        free(t->topic);
        if (t->records)
                sl_jsonpath_destroy(t->records);
        for (size_t i = 0; i < t->nalt; i++)
                sl_jsonpath_destroy(t->records_alt[i]);
        free(t->records_alt);
        free(t->records_text);
        for (size_t i = 0; i < t->nwhere; i++)
                cond_free(&t->where[i]);
        free(t->where);
        for (size_t i = 0; i < t->ncoalesce; i++)
                free(t->coalesce[i]);
        free(t->coalesce);
        free(t->version);
        for (size_t i = 0; i < t->nfields; i++)
                field_free(&t->fields[i]);
        free(t->fields);
        for (size_t i = 0; i < t->nchildren; i++)
                target_free(&t->children[i]);
        free(t->children);
        free(t->child_names);
        for (size_t i = 0; i < t->npk; i++) {
                free(t->pk_child[i]);
                free(t->pk_parent[i]);
        }
        free(t->pk_child);
        free(t->pk_parent);
        for (size_t i = 0; i < t->nreads; i++)
                free(t->reads[i]);
        free(t->reads);
}

void map_destroy(struct map *m)
{
        if (!m)
                return;
        free(m->name);
        free(m->source);
        free(m->topic);
        free(m->file);
        for (size_t i = 0; i < m->ntargets; i++)
                target_free(&m->targets[i]);
        free(m->targets);
        for (size_t i = 0; i < m->npage_reads; i++)
                free(m->page_reads[i]);
        free(m->page_reads);
        /* after the scripts, whose references live in it */
        map_lua_destroy(m->lua);
        free(m);
}

static const char *const target_keys[] = {
    "records", "table",  "where",    "coalesce", "case_insensitive",
    "version", "fields", "children", "script",   NULL};

static const char *str_or(json_t *v)
{
        return json_is_string(v) ? json_string_value(v) : "";
}

static struct map *parse_map(struct lctx *c, json_t *root)
{
        struct map *m = sl_calloc(1, sizeof(*m));
        json_t *targets;

        c->m = m;
        m->file = sl_strdup(c->file);
        if (check_opts(c, map_opts, root, "") && !json_is_object(root))
                return m;
        m->name = sl_strdup(str_or(json_object_get(root, "name")));
        m->script_instructions = (long)json_integer_value(
            json_object_get(root, "script_instructions"));
        m->script_memory =
            (size_t)json_integer_value(json_object_get(root, "script_memory"));
        if (m->script_instructions < 0 ||
            json_integer_value(json_object_get(root, "script_memory")) < 0)
                problem(c, "script_instructions",
                        "script limits must not be negative");
        if (json_object_get(root, "script_rows")) {
                json_int_t rows =
                    json_integer_value(json_object_get(root, "script_rows"));
                if (rows < 0 || rows > INT_MAX)
                        problem(c, "script_rows", "script_rows must be 0 to %d",
                                INT_MAX);
                else
                        m->script_rows = (size_t)rows;
        } else {
                m->script_rows = MAP_SCRIPT_ROWS_DEFAULT;
        }
        m->source = sl_strdup(str_or(json_object_get(root, "source")));
        if (json_object_get(root, "topic"))
                m->topic = sl_strdup(str_or(json_object_get(root, "topic")));
        else
                m->topic = sl_asprintf("raw.%s", m->source);
        if (json_object_get(root, "source") && !valid_ident(m->source))
                problem(c, "source", "source \"%s\" must match [a-z0-9_]+",
                        m->source);
        targets = json_object_get(root, "targets");
        if (json_is_array(targets)) {
                char path[64];
                for (const char *const *k = target_keys; *k; k++)
                        if (json_object_get(root, *k))
                                problem(c, *k,
                                        "\"%s\" belongs inside targets[] "
                                        "when the map has targets",
                                        *k);
                if (json_array_size(targets) == 0)
                        problem(c, "targets", "no targets");
                m->targets = sl_calloc(json_array_size(targets) + 1,
                                       sizeof(*m->targets));
                for (size_t i = 0; i < json_array_size(targets); i++) {
                        snprintf(path, sizeof(path), "targets[%zu]", i);
                        parse_target(c, path, json_array_get(targets, i),
                                     &m->targets[m->ntargets++], NULL, NULL);
                }
        } else if (!targets) {
                /* the target keys sit at the top level */
                json_t *copy = json_object();
                for (const char *const *k = target_keys; *k; k++) {
                        json_t *v = json_object_get(root, *k);
                        if (v)
                                json_object_set(copy, *k, v);
                }
                m->targets = sl_calloc(1, sizeof(*m->targets));
                m->ntargets = 1;
                parse_target(c, "", copy, &m->targets[0], NULL, NULL);
                json_decref(copy);
        }
        return m;
}

static const char *const bundled_maps[] = {"transformers/maps", "maps",
                                           "/usr/share/sluice/maps", NULL};
static const struct sl_extends_kind map_kind = {"SLUICE_MAPS_PATH",
                                                bundled_maps};

/* The effective definition of the map text (its "extends" resolved). New
 * reference, or NULL with *errs. */
static json_t *effective(const char *name, const char *text, size_t len,
                         char **errs)
{
        char errstr[1024];
        json_t *root, *eff;

        root = sl_config_loadb(name, text, len, errstr, sizeof(errstr));
        if (!root) {
                *errs = sl_asprintf("%s\n", errstr);
                return NULL;
        }
        eff = sl_extends_resolve(&map_kind, name, root, errstr, sizeof(errstr));
        json_decref(root);
        if (!eff) {
                /* the message names the file; this one goes first */
                size_t n = strlen(name);
                const char *msg = errstr;
                if (strncmp(errstr, name, n) == 0 && errstr[n] == ':' &&
                    errstr[n + 1] == ' ')
                        msg = errstr + n + 2;
                *errs = sl_asprintf("%s:1:1: %s\n", name, msg);
        }
        return eff;
}

json_t *map_effective(const char *path, char **errs)
{
        char errstr[512];
        size_t len = 0;
        char *text = sl_file_read(path, &len, errstr, sizeof(errstr));
        json_t *eff;

        *errs = NULL;
        if (!text) {
                *errs = sl_asprintf("%s:1:1: (root): %s\n", path, errstr);
                return NULL;
        }
        eff = effective(path, text, len, errs);
        free(text);
        return eff;
}

struct map *map_loadb(const char *name, const char *text, size_t len,
                      char **errs)
{
        struct lctx c = {.file = name, .text = text};
        json_t *root;
        struct map *m;

        *errs = NULL;
        root = effective(name, text, len, errs);
        if (!root)
                return NULL;
        m = parse_map(&c, root);
        json_decref(root);
        if (c.problems) {
                map_destroy(m);
                *errs = c.errs;
                return NULL;
        }
        free(c.errs);
        return m;
}

struct map *map_load(const char *path, char **errs)
{
        char errstr[512];
        size_t len = 0;
        char *text = sl_file_read(path, &len, errstr, sizeof(errstr));
        struct map *m;

        if (!text) {
                *errs = sl_asprintf("%s:1:1: (root): %s\n", path, errstr);
                return NULL;
        }
        m = map_loadb(path, text, len, errs);
        free(text);
        return m;
}

int map_lint(const char *path, FILE *err)
{
        char *errs = NULL;
        struct map *m = map_load(path, &errs);

        if (!m) {
                fputs(errs ? errs : "invalid map\n", err);
                free(errs);
                return -1;
        }
        map_destroy(m);
        return 0;
}

int map_print_effective(const char *path, FILE *out, FILE *err)
{
        char *errs = NULL;
        json_t *eff = NULL;
        int rc = -1;

        if (map_lint(path, err) < 0)
                return -1;
        eff = map_effective(path, &errs);
        if (!eff) {
                fputs(errs ? errs : "invalid map\n", err);
                goto out;
        }
        if (json_dumpf(eff, out, JSON_INDENT(2)) == 0) {
                fputc('\n', out);
                rc = 0;
        }
out:
        json_decref(eff);
        free(errs);
        return rc;
}

static void log_target(const struct map *m, const struct map_target *t,
                       const char *when)
{
        if (!t->is_child)
                sl_info("event=map_stats when=%s map=%s table=%s "
                        "records_in=%llu rows_out=%llu ignored=%llu "
                        "skipped=%llu rejected=%llu",
                        when, m->name, t->table, (unsigned long long)t->in,
                        (unsigned long long)t->out,
                        (unsigned long long)t->ignored,
                        (unsigned long long)t->skipped,
                        (unsigned long long)t->rejected);
        else
                sl_info("event=map_stats when=%s map=%s table=%s "
                        "rows_out=%llu",
                        when, m->name, t->table, (unsigned long long)t->out);
        for (size_t i = 0; i < t->nchildren; i++)
                log_target(m, &t->children[i], when);
}

void map_log_stats(const struct map *m, const char *when)
{
        for (size_t i = 0; i < m->ntargets; i++)
                log_target(m, &m->targets[i], when);
}
