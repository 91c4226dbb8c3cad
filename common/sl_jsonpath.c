/* sl_jsonpath: compile a path once into steps, then walk documents. */
#include "sl_jsonpath.h"
#include "sl_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum step_kind { STEP_MEMBER, STEP_INDEX, STEP_WILD, STEP_FILTER };

struct step {
        enum step_kind kind;
        char *name;              /* MEMBER */
        long index;              /* INDEX */
        struct sl_jsonpath *lhs; /* FILTER: path relative to @ */
        json_t *rhs;             /* FILTER: literal */
        int negate;              /* FILTER: != */
};

struct sl_jsonpath {
        char *text;
        struct step *steps;
        size_t n;
        int single;
};

static void add_step(struct sl_jsonpath *p, struct step s)
{
        p->steps = sl_realloc(p->steps, (p->n + 1) * sizeof(*p->steps));
        p->steps[p->n++] = s;
}

static int is_name_char(char c)
{
        return c && c != '.' && c != '[' && c != ']' && c != ' ' && c != '=' &&
               c != '!' && c != ')';
}

/* Parses a quoted name at s ('...' or "..."); sets *end past it. */
static char *parse_quoted(const char *s, const char **end)
{
        char q = *s++;
        struct sl_buf b;

        sl_buf_init(&b, 0);
        while (*s && *s != q) {
                if (*s == '\\' && s[1])
                        s++;
                sl_buf_append(&b, s, 1);
                s++;
        }
        if (*s != q) {
                sl_buf_free(&b);
                return NULL;
        }
        *end = s + 1;
        return sl_buf_steal(&b, NULL);
}

static json_t *parse_literal(const char *s, const char **end)
{
        if (*s == '\'' || *s == '"') {
                char *str = parse_quoted(s, end);
                json_t *v;
                if (!str)
                        return NULL;
                v = json_string(str);
                free(str);
                return v;
        }
        if (strncmp(s, "true", 4) == 0) {
                *end = s + 4;
                return json_true();
        }
        if (strncmp(s, "false", 5) == 0) {
                *end = s + 5;
                return json_false();
        }
        if (strncmp(s, "null", 4) == 0) {
                *end = s + 4;
                return json_null();
        }
        {
                char *e = NULL;
                double d = strtod(s, &e);
                if (e == s)
                        return NULL;
                *end = e;
                /* the cast is defined only inside json_int_t's range */
                if (d >= -9223372036854775808.0 && d < 9223372036854775808.0 &&
                    d == (double)(json_int_t)d &&
                    !memchr(s, '.', (size_t)(e - s)))
                        return json_integer((json_int_t)d);
                return json_real(d);
        }
}

static int fail(char *errstr, size_t size, const char *expr, const char *at,
                const char *what)
{
        snprintf(errstr, size, "bad path \"%s\" at offset %d: %s", expr,
                 (int)(at - expr), what);
        return -1;
}

static int parse_filter(struct sl_jsonpath *p, const char *expr,
                        const char **sp, char *errstr, size_t size)
{
        const char *s = *sp; /* after "[?(" */
        const char *lhs_start, *lhs_end;
        struct step st = {.kind = STEP_FILTER};
        char *lhs;

        while (*s == ' ')
                s++;
        if (*s != '@')
                return fail(errstr, size, expr, s, "filter must start with @");
        s++;
        lhs_start = s;
        while (*s && !(s[0] == '=' && s[1] == '=') &&
               !(s[0] == '!' && s[1] == '=') && *s != ')')
                s++;
        lhs_end = s;
        while (lhs_end > lhs_start && lhs_end[-1] == ' ')
                lhs_end--;
        if (*s != '=' && *s != '!')
                return fail(errstr, size, expr, s, "filter needs == or !=");
        st.negate = *s == '!';
        s += 2;
        while (*s == ' ')
                s++;
        st.rhs = parse_literal(s, &s);
        if (!st.rhs)
                return fail(errstr, size, expr, s, "bad literal in filter");
        while (*s == ' ')
                s++;
        if (s[0] != ')' || s[1] != ']') {
                json_decref(st.rhs);
                return fail(errstr, size, expr, s, "expected )]");
        }
        lhs = sl_asprintf("$%.*s", (int)(lhs_end - lhs_start), lhs_start);
        st.lhs = sl_jsonpath_compile(lhs, errstr, size);
        free(lhs);
        if (!st.lhs) {
                json_decref(st.rhs);
                return -1;
        }
        add_step(p, st);
        *sp = s + 2;
        return 0;
}

struct sl_jsonpath *sl_jsonpath_compile(const char *expr, char *errstr,
                                        size_t errstr_size)
{
        struct sl_jsonpath *p = sl_calloc(1, sizeof(*p));
        const char *s = expr;

        p->text = sl_strdup(expr);
        p->single = 1;
        if (*s == '$')
                s++;
        else if (*s && *s != '.' && *s != '[') {
                /* relative form: "a.b" */
                const char *start = s;
                while (is_name_char(*s))
                        s++;
                add_step(p, (struct step){.kind = STEP_MEMBER,
                                          .name = sl_strndup(
                                              start, (size_t)(s - start))});
        }
        while (*s) {
                if (*s == '.') {
                        const char *start = ++s;
                        if (*s == '*') {
                                s++;
                                add_step(p, (struct step){.kind = STEP_WILD});
                                p->single = 0;
                                continue;
                        }
                        while (is_name_char(*s))
                                s++;
                        if (s == start) {
                                fail(errstr, errstr_size, expr, s,
                                     "empty member name");
                                goto bad;
                        }
                        add_step(
                            p, (struct step){.kind = STEP_MEMBER,
                                             .name = sl_strndup(
                                                 start, (size_t)(s - start))});
                } else if (*s == '[') {
                        s++;
                        if (*s == '*' && s[1] == ']') {
                                s += 2;
                                add_step(p, (struct step){.kind = STEP_WILD});
                                p->single = 0;
                        } else if (*s == '\'' || *s == '"') {
                                char *name = parse_quoted(s, &s);
                                if (!name || *s != ']') {
                                        free(name);
                                        fail(errstr, errstr_size, expr, s,
                                             "bad quoted member");
                                        goto bad;
                                }
                                s++;
                                add_step(p, (struct step){.kind = STEP_MEMBER,
                                                          .name = name});
                        } else if (*s == '?' && s[1] == '(') {
                                s += 2;
                                if (parse_filter(p, expr, &s, errstr,
                                                 errstr_size) < 0)
                                        goto bad;
                                p->single = 0;
                        } else {
                                char *end = NULL;
                                long idx = strtol(s, &end, 10);
                                if (end == s || *end != ']') {
                                        fail(errstr, errstr_size, expr, s,
                                             "expected index, *, 'name' or "
                                             "?(filter)");
                                        goto bad;
                                }
                                s = end + 1;
                                add_step(p, (struct step){.kind = STEP_INDEX,
                                                          .index = idx});
                        }
                } else {
                        fail(errstr, errstr_size, expr, s, "expected . or [");
                        goto bad;
                }
        }
        return p;
bad:
        sl_jsonpath_destroy(p);
        return NULL;
}

void sl_jsonpath_destroy(struct sl_jsonpath *p)
{
        if (!p)
                return;
        for (size_t i = 0; i < p->n; i++) {
                free(p->steps[i].name);
                sl_jsonpath_destroy(p->steps[i].lhs);
                json_decref(p->steps[i].rhs);
        }
        free(p->steps);
        free(p->text);
        free(p);
}

const char *sl_jsonpath_text(const struct sl_jsonpath *p)
{
        return p->text;
}

int sl_jsonpath_is_single(const struct sl_jsonpath *p)
{
        return p->single;
}

static int filter_match(const struct step *st, json_t *v)
{
        json_t *got = sl_jsonpath_first(st->lhs, v);
        int eq;

        if (!got)
                eq = json_is_null(st->rhs);
        else if (json_is_number(got) && json_is_number(st->rhs))
                eq = json_number_value(got) == json_number_value(st->rhs);
        else
                eq = json_equal(got, st->rhs);
        return st->negate ? !eq : eq;
}

/* Returns 1 when fn asked to stop. */
static int walk(const struct sl_jsonpath *p, size_t i, json_t *v,
                sl_jsonpath_fn fn, void *opaque, size_t *count)
{
        const struct step *st;

        if (i == p->n) {
                (*count)++;
                return fn(v, opaque) ? 1 : 0;
        }
        st = &p->steps[i];
        switch (st->kind) {
        case STEP_MEMBER: {
                json_t *c =
                    json_is_object(v) ? json_object_get(v, st->name) : NULL;
                return c ? walk(p, i + 1, c, fn, opaque, count) : 0;
        }
        case STEP_INDEX: {
                long n, idx = st->index;
                if (!json_is_array(v))
                        return 0;
                n = (long)json_array_size(v);
                if (idx < 0)
                        idx += n;
                if (idx < 0 || idx >= n)
                        return 0;
                return walk(p, i + 1, json_array_get(v, (size_t)idx), fn,
                            opaque, count);
        }
        case STEP_WILD:
                if (json_is_array(v)) {
                        size_t k;
                        json_t *c;
                        json_array_foreach(v, k, c)
                        {
                                if (walk(p, i + 1, c, fn, opaque, count))
                                        return 1;
                        }
                } else if (json_is_object(v)) {
                        const char *key;
                        json_t *c;
                        json_object_foreach(v, key, c)
                        {
                                if (walk(p, i + 1, c, fn, opaque, count))
                                        return 1;
                        }
                }
                return 0;
        case STEP_FILTER:
                if (json_is_array(v)) {
                        size_t k;
                        json_t *c;
                        json_array_foreach(v, k, c)
                        {
                                if (filter_match(st, c) &&
                                    walk(p, i + 1, c, fn, opaque, count))
                                        return 1;
                        }
                }
                return 0;
        }
        return 0;
}

size_t sl_jsonpath_each(const struct sl_jsonpath *p, json_t *root,
                        sl_jsonpath_fn fn, void *opaque)
{
        size_t count = 0;

        if (root)
                walk(p, 0, root, fn, opaque, &count);
        return count;
}

static int take_first(json_t *match, void *opaque)
{
        *(json_t **)opaque = match;
        return 1;
}

json_t *sl_jsonpath_first(const struct sl_jsonpath *p, json_t *root)
{
        json_t *hit = NULL;

        /* Fast path for plain member chains, the common case per record. */
        if (p->single) {
                json_t *v = root;
                for (size_t i = 0; v && i < p->n; i++) {
                        const struct step *st = &p->steps[i];
                        if (st->kind == STEP_MEMBER)
                                v = json_is_object(v)
                                        ? json_object_get(v, st->name)
                                        : NULL;
                        else {
                                long n, idx = st->index;
                                if (!json_is_array(v))
                                        return NULL;
                                n = (long)json_array_size(v);
                                if (idx < 0)
                                        idx += n;
                                v = (idx >= 0 && idx < n)
                                        ? json_array_get(v, (size_t)idx)
                                        : NULL;
                        }
                }
                return v;
        }
        sl_jsonpath_each(p, root, take_first, &hit);
        return hit;
}

json_t *sl_jsonpath_get(json_t *root, const char *expr)
{
        char err[256];
        struct sl_jsonpath *p = sl_jsonpath_compile(expr, err, sizeof(err));
        json_t *v;

        if (!p)
                return NULL;
        v = sl_jsonpath_first(p, root);
        sl_jsonpath_destroy(p);
        return v;
}
