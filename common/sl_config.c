/* sl_config: JSON configuration files with positioned errors. */
#include "sl_config.h"
#include "sl_util.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

json_t *sl_config_loadb(const char *name, const char *buf, size_t len,
                        char *errstr, size_t errstr_size)
{
        json_error_t jerr;
        json_t *root;

        root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
        if (!root)
                snprintf(errstr, errstr_size, "%s:%d:%d: %s", name, jerr.line,
                         jerr.column, jerr.text);
        return root;
}

json_t *sl_config_load(const char *path, char *errstr, size_t errstr_size)
{
        size_t len = 0;
        char *text = sl_file_read(path, &len, errstr, errstr_size);
        json_t *root;

        if (!text)
                return NULL;
        root = sl_config_loadb(path, text, len, errstr, errstr_size);
        free(text);
        return root;
}

/* Skips a JSON string starting at s (which points at the opening quote);
 * returns a pointer past the closing quote. */
static const char *skip_string(const char *s)
{
        s++;
        while (*s && *s != '"') {
                if (*s == '\\' && s[1])
                        s++;
                s++;
        }
        return *s ? s + 1 : s;
}

/* Whether the JSON string body raw[0..n) (between its quotes, escapes
 * still in) spells key[0..keylen): a name holding a quote or a backslash
 * is written escaped in the text but plain in a path. */
static int same_name(const char *raw, size_t n, const char *key, size_t keylen)
{
        size_t i = 0, k = 0;

        while (i < n) {
                char out[4];
                size_t nout = 1;

                if (raw[i] != '\\') {
                        out[0] = raw[i++];
                } else if (i + 1 < n && raw[i + 1] != 'u') {
                        static const char from[] = "\"\\/bfnrt";
                        static const char to[] = "\"\\/\b\f\n\r\t";
                        const char *e = strchr(from, raw[i + 1]);
                        if (!e || !*e)
                                return 0;
                        out[0] = to[e - from];
                        i += 2;
                } else {
                        unsigned cp = 0;
                        if (i + 6 > n)
                                return 0;
                        for (int d = 2; d < 6; d++) {
                                char c = raw[i + d];
                                cp = cp * 16 + (unsigned)(c >= '0' && c <= '9'
                                                              ? c - '0'
                                                          : c >= 'a' && c <= 'f'
                                                              ? c - 'a' + 10
                                                          : c >= 'A' && c <= 'F'
                                                              ? c - 'A' + 10
                                                              : 0);
                        }
                        i += 6;
                        if (cp < 0x80) {
                                out[0] = (char)cp;
                        } else if (cp < 0x800) {
                                out[0] = (char)(0xc0 | cp >> 6);
                                out[1] = (char)(0x80 | (cp & 0x3f));
                                nout = 2;
                        } else { /* surrogates: compared as they come */
                                out[0] = (char)(0xe0 | cp >> 12);
                                out[1] = (char)(0x80 | (cp >> 6 & 0x3f));
                                out[2] = (char)(0x80 | (cp & 0x3f));
                                nout = 3;
                        }
                }
                if (k + nout > keylen || memcmp(key + k, out, nout) != 0)
                        return 0;
                k += nout;
        }
        return k == keylen;
}

/* Finds `"key"` followed by ':' at nesting depth 1 of the value starting at
 * text (an object). Returns a pointer to the key's opening quote or NULL. */
static const char *find_member(const char *text, const char *key, size_t keylen)
{
        int depth = 0;
        const char *s = text;

        while (*s) {
                if (*s == '"') {
                        const char *start = s;
                        s = skip_string(s);
                        if (depth == 1 && s - start >= 2 &&
                            same_name(start + 1, (size_t)(s - start - 2), key,
                                      keylen)) {
                                const char *t = s;
                                while (*t == ' ' || *t == '\t' || *t == '\n' ||
                                       *t == '\r')
                                        t++;
                                if (*t == ':')
                                        return start;
                        }
                        continue;
                }
                if (*s == '{' || *s == '[')
                        depth++;
                else if (*s == '}' || *s == ']') {
                        depth--;
                        if (depth == 0)
                                return NULL;
                }
                s++;
        }
        return NULL;
}

/* Finds element idx of the array starting at text ('['). */
static const char *find_element(const char *text, long idx)
{
        int depth = 0;
        long n = 0;
        const char *s = text;

        while (*s) {
                if (depth == 1 && n == idx && *s != ' ' && *s != '\n' &&
                    *s != '\t' && *s != '\r' && *s != ',' && s != text)
                        return s;
                if (*s == '"') {
                        s = skip_string(s);
                        continue;
                }
                if (*s == '{' || *s == '[')
                        depth++;
                else if (*s == '}' || *s == ']') {
                        depth--;
                        if (depth == 0)
                                return NULL;
                } else if (*s == ',' && depth == 1)
                        n++;
                s++;
        }
        return NULL;
}

static const char *skip_to_value(const char *s)
{
        s = skip_string(s);
        while (*s && *s != ':')
                s++;
        if (*s)
                s++;
        while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
                s++;
        return s;
}

int sl_config_locate(const char *text, const char *path,
                     struct sl_config_pos *pos)
{
        const char *cur = text;
        const char *hit = NULL;
        const char *p = path;

        pos->line = 1;
        pos->column = 1;
        if (!text)
                return -1;
        while (*cur && *cur != '{' && *cur != '[')
                cur++;
        while (*p && cur && *cur) {
                if (*p == '.') {
                        p++;
                        continue;
                }
                if (*p == '[') {
                        char *end = NULL;
                        long idx = strtol(p + 1, &end, 10);
                        if (*cur != '[' || !end || *end != ']')
                                return -1;
                        hit = find_element(cur, idx);
                        if (!hit)
                                return -1;
                        cur = hit;
                        p = end + 1;
                        continue;
                }
                {
                        size_t n = strcspn(p, ".[");
                        if (*cur != '{')
                                return -1;
                        hit = find_member(cur, p, n);
                        if (!hit)
                                return -1;
                        p += n;
                        cur = *p ? skip_to_value(hit) : hit;
                }
        }
        if (!hit)
                return -1;
        for (const char *s = text; s < hit; s++) {
                if (*s == '\n') {
                        pos->line++;
                        pos->column = 1;
                } else {
                        pos->column++;
                }
        }
        return 0;
}

const char *sl_opt_type_name(enum sl_opt_type t)
{
        switch (t) {
        case SL_OPT_STRING:
                return "string";
        case SL_OPT_INT:
                return "integer";
        case SL_OPT_NUMBER:
                return "number";
        case SL_OPT_BOOL:
                return "boolean";
        case SL_OPT_OBJECT:
                return "object";
        case SL_OPT_ARRAY:
                return "array";
        case SL_OPT_STRING_OR_ARRAY:
                return "string or array";
        case SL_OPT_ANY:
                break;
        }
        return "any";
}

void sl_opt_reference(FILE *fp, const char *name, const char *help,
                      const struct sl_opt *table)
{
        fprintf(fp, "### `%s`\n\n", name);
        if (help)
                fprintf(fp, "%s.\n\n", help);
        fprintf(fp, "| key | type | required | default | meaning "
                    "|\n|---|---|---|---|---|\n");
        for (const struct sl_opt *o = table; o->name; o++)
                fprintf(fp, "| `%s` | %s | %s | %s | %s |\n", o->name,
                        sl_opt_type_name(o->type), o->required ? "yes" : "no",
                        o->def ? o->def : "", o->help);
        fprintf(fp, "\n");
}

static int type_ok(enum sl_opt_type t, json_t *v)
{
        switch (t) {
        case SL_OPT_STRING:
                return json_is_string(v);
        case SL_OPT_INT:
                return json_is_integer(v);
        case SL_OPT_NUMBER:
                return json_is_number(v);
        case SL_OPT_BOOL:
                return json_is_boolean(v);
        case SL_OPT_OBJECT:
                return json_is_object(v);
        case SL_OPT_ARRAY:
                return json_is_array(v);
        case SL_OPT_STRING_OR_ARRAY:
                return json_is_string(v) || json_is_array(v);
        case SL_OPT_ANY:
                break;
        }
        return 1;
}

/* Whether errs (lines ending in newlines) already holds line. */
static int has_line(const char *errs, const char *line)
{
        size_t n = strlen(line);
        const char *p = errs;

        while (*p) {
                const char *nl = strchr(p, '\n');
                if (strncmp(p, line, n) == 0)
                        return 1;
                if (!nl)
                        break;
                p = nl + 1;
        }
        return 0;
}

void sl_config_problem(char **errs, const char *file, const char *text,
                       const char *path, const char *fmt, ...)
{
        struct sl_config_pos pos;
        char msg[1024];
        char *line, *joined;
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        sl_config_locate(text, path, &pos);
        line = sl_asprintf("%s:%d:%d: %s: %s\n", file, pos.line, pos.column,
                           *path ? path : "(root)", msg);
        /* A flat map's target keys pass two option tables (the map's and
         * the target's), and both may find the same fault: say it once. */
        if (*errs && has_line(*errs, line)) {
                free(line);
                return;
        }
        joined = sl_asprintf("%s%s", *errs ? *errs : "", line);
        free(line);
        free(*errs);
        *errs = joined;
}

/* Edit distance of a and b (insertions, deletions, substitutions and
 * swaps of two neighbours), or 99 past 63 bytes. */
static int distance(const char *a, const char *b)
{
        size_t n = strlen(a), m = strlen(b);
        int d[64][64];

        if (n >= 64 || m >= 64)
                return 99;
        for (size_t i = 0; i <= n; i++)
                d[i][0] = (int)i;
        for (size_t j = 0; j <= m; j++)
                d[0][j] = (int)j;
        for (size_t i = 1; i <= n; i++)
                for (size_t j = 1; j <= m; j++) {
                        int c = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
                        if (d[i - 1][j] + 1 < c)
                                c = d[i - 1][j] + 1;
                        if (d[i][j - 1] + 1 < c)
                                c = d[i][j - 1] + 1;
                        if (i > 1 && j > 1 && a[i - 1] == b[j - 2] &&
                            a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < c)
                                c = d[i - 2][j - 2] + 1;
                        d[i][j] = c;
                }
        return d[n][m];
}

/* The table's key that an unknown key most likely misspells (one not
 * already in obj), or NULL: at most 2 edits, and fewer than half its
 * length. */
static const char *did_you_mean(const struct sl_opt *table, json_t *obj,
                                const char *key)
{
        const char *best = NULL;
        int best_d = 3;

        for (const struct sl_opt *o = table; o->name; o++) {
                int dist = distance(key, o->name);
                if (dist < best_d && (size_t)dist * 2 < strlen(o->name) &&
                    !json_object_get(obj, o->name)) {
                        best = o->name;
                        best_d = dist;
                }
        }
        return best;
}

/* What a value is, for "expected X, got Y": its type, and a short
 * scalar's text. */
static void given(json_t *v, char *out, size_t out_size)
{
        switch (json_typeof(v)) {
        case JSON_STRING:
                if (json_string_length(v) <= 40)
                        snprintf(out, out_size, "string \"%s\"",
                                 json_string_value(v));
                else
                        snprintf(out, out_size, "a string");
                break;
        case JSON_INTEGER:
                snprintf(out, out_size, "integer %" JSON_INTEGER_FORMAT,
                         json_integer_value(v));
                break;
        case JSON_REAL:
                snprintf(out, out_size, "number %g", json_real_value(v));
                break;
        case JSON_TRUE:
        case JSON_FALSE:
                snprintf(out, out_size, "boolean %s",
                         json_is_true(v) ? "true" : "false");
                break;
        case JSON_NULL:
                snprintf(out, out_size, "null");
                break;
        case JSON_OBJECT:
                snprintf(out, out_size, "an object");
                break;
        case JSON_ARRAY:
                snprintf(out, out_size, "an array");
                break;
        }
}

int sl_opt_check(const struct sl_opt *table, json_t *obj, const char *file,
                 const char *text, const char *where, char **errs)
{
        const char *key;
        json_t *val;
        int problems = 0;
        const char *meant[16]; /* required keys an unknown one misspells */
        int nmeant = 0;

        if (!json_is_object(obj)) {
                sl_config_problem(errs, file, text, where,
                                  "expected an object");
                return 1;
        }
        json_object_foreach(obj, key, val)
        {
                const struct sl_opt *o = table;
                char path[512];
                snprintf(path, sizeof(path), "%s%s%s", where, *where ? "." : "",
                         key);
                while (o->name && strcmp(o->name, key) != 0)
                        o++;
                if (!o->name) {
                        const char *hint = did_you_mean(table, obj, key);
                        sl_config_problem(errs, file, text, path,
                                          "unknown key \"%s\"%s%s%s", key,
                                          hint ? " (did you mean \"" : "",
                                          hint ? hint : "", hint ? "\"?)" : "");
                        if (hint && nmeant < 16)
                                meant[nmeant++] = hint;
                        problems++;
                } else if (!type_ok(o->type, val)) {
                        char got[80];
                        given(val, got, sizeof(got));
                        sl_config_problem(errs, file, text, path,
                                          "expected %s, got %s",
                                          sl_opt_type_name(o->type), got);
                        problems++;
                }
        }
        for (const struct sl_opt *o = table; o->name; o++) {
                int told = 0;
                /* a misspelling said "did you mean" it already */
                for (int i = 0; i < nmeant; i++)
                        told |= strcmp(meant[i], o->name) == 0;
                if (o->required && !told && !json_object_get(obj, o->name)) {
                        char path[512];
                        snprintf(path, sizeof(path), "%s", where);
                        sl_config_problem(errs, file, text, path,
                                          "missing required key \"%s\"",
                                          o->name);
                        problems++;
                }
        }
        return problems;
}

char *sl_config_expand_env(const char *s, char *errstr, size_t errstr_size)
{
        struct sl_buf b;
        const char *p = s;

        sl_buf_init(&b, 0);
        while (*p) {
                const char *start = strstr(p, "${env:");
                const char *end;
                char name[256];
                const char *val;

                if (!start) {
                        sl_buf_puts(&b, p);
                        break;
                }
                sl_buf_append(&b, p, (size_t)(start - p));
                end = strchr(start, '}');
                if (!end) {
                        snprintf(errstr, errstr_size,
                                 "unterminated ${env:...} in \"%.40s\"", s);
                        sl_buf_free(&b);
                        return NULL;
                }
                snprintf(name, sizeof(name), "%.*s", (int)(end - start - 6),
                         start + 6);
                val = getenv(name);
                if (!val) {
                        snprintf(errstr, errstr_size,
                                 "environment variable %s is not set", name);
                        sl_buf_free(&b);
                        return NULL;
                }
                sl_buf_puts(&b, val);
                p = end + 1;
        }
        return sl_buf_steal(&b, NULL);
}

static int json_name(const struct dirent *d)
{
        size_t n = strlen(d->d_name);
        return d->d_name[0] != '.' && n > 5 &&
               strcmp(d->d_name + n - 5, ".json") == 0;
}

int sl_config_expand(const char *arg, char ***files, size_t *n, char *errstr,
                     size_t errstr_size)
{
        struct stat st;
        struct dirent **ents = NULL;
        int k;

        if (stat(arg, &st) < 0 || !S_ISDIR(st.st_mode)) {
                *files = sl_realloc(*files, (*n + 1) * sizeof(**files));
                (*files)[(*n)++] = sl_strdup(arg);
                return 0;
        }
        k = scandir(arg, &ents, json_name, alphasort);
        if (k < 0) {
                snprintf(errstr, errstr_size, "cannot read %s: %s", arg,
                         strerror(errno));
                return -1;
        }
        for (int i = 0; i < k; i++) {
                const char *sep = arg[strlen(arg) - 1] == '/' ? "" : "/";
                *files = sl_realloc(*files, (*n + 1) * sizeof(**files));
                (*files)[(*n)++] =
                    sl_asprintf("%s%s%s", arg, sep, ents[i]->d_name);
                free(ents[i]);
        }
        free(ents);
        return 0;
}
