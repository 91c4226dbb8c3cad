/* sl_extends.c: resolves "extends" chains of declarative definitions
 * (maps, sources) into one effective definition; the rules are in
 * sl_extends.h. */
#include "sl_extends.h"
#include "sl_config.h"
#include "sl_util.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* a chain longer than this is taken for a loop */
#define MAX_CHAIN 8

static char *dir_of(const char *file)
{
        const char *slash = strrchr(file, '/');

        if (!slash)
                return sl_strdup(".");
        if (slash == file)
                return sl_strdup("/");
        return sl_asprintf("%.*s", (int)(slash - file), file);
}

static int ends_with(const char *s, const char *suffix)
{
        size_t n = strlen(s), k = strlen(suffix);

        return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* candidate, when it is a readable file other than self (a realpath, or
 * NULL). New or NULL. */
static char *try_path(char *candidate, const char *self)
{
        char real[PATH_MAX];

        if (access(candidate, R_OK) == 0 && realpath(candidate, real) &&
            !(self && strcmp(real, self) == 0))
                return candidate;
        free(candidate);
        return NULL;
}

static char *find_base(const struct sl_extends_kind *kind, const char *file,
                       const char *name)
{
        char self_buf[PATH_MAX];
        const char *self = realpath(file, self_buf) ? self_buf : NULL;
        const char *root = getenv("SLUICE_ROOT");
        const char *env = kind->env_var ? getenv(kind->env_var) : NULL;
        char *dir = dir_of(file), *found = NULL;

        if (strchr(name, '/') || ends_with(name, ".json")) {
                found =
                    try_path(name[0] == '/' ? sl_strdup(name)
                                            : sl_asprintf("%s/%s", dir, name),
                             self);
                goto out;
        }
        if (env) {
                const char *p = env;
                while (*p && !found) {
                        size_t n = strcspn(p, ":");
                        if (n > 0)
                                found = try_path(sl_asprintf("%.*s/%s.json",
                                                             (int)n, p, name),
                                                 self);
                        p += n;
                        if (*p)
                                p++;
                }
        }
        if (!found)
                found = try_path(sl_asprintf("%s/%s.json", dir, name), self);
        for (const char *const *b = kind->bundled; b && *b && !found; b++) {
                found = try_path(sl_asprintf("%s/%s.json", *b, name), self);
                if (!found && (*b)[0] != '/' && root && *root)
                        found = try_path(
                            sl_asprintf("%s/%s/%s.json", root, *b, name), self);
        }
out:
        free(dir);
        return found;
}

static int names_table(json_t *arr)
{
        json_t *e;
        size_t i;

        if (!json_is_array(arr) || json_array_size(arr) == 0)
                return 0;
        json_array_foreach(arr, i, e)
        {
                if (!json_is_string(json_object_get(e, "table")))
                        return 0;
        }
        return 1;
}

static long table_index(json_t *arr, const char *table)
{
        json_t *e;
        size_t i;

        json_array_foreach(arr, i, e)
        {
                const char *t = json_string_value(json_object_get(e, "table"));
                if (t && strcmp(t, table) == 0)
                        return (long)i;
        }
        return -1;
}

static int remove_names(json_t *base, json_t *names, const char *where,
                        char *errstr, size_t errstr_size)
{
        static const char *const arrays[] = {"targets", "children", NULL};
        json_t *n;
        size_t i;

        if (!json_is_array(names)) {
                snprintf(errstr, errstr_size,
                         "%sremove: expected a list of names", where);
                return -1;
        }
        json_array_foreach(names, i, n)
        {
                const char *name = json_string_value(n);
                json_t *fields = json_object_get(base, "fields");
                int removed = 0;
                if (!name) {
                        snprintf(errstr, errstr_size,
                                 "%sremove[%zu]: expected a name", where, i);
                        return -1;
                }
                if (json_is_object(fields) && json_object_get(fields, name)) {
                        json_object_del(fields, name);
                        removed = 1;
                }
                for (const char *const *a = arrays; *a && !removed; a++) {
                        json_t *arr = json_object_get(base, *a);
                        long k =
                            json_is_array(arr) ? table_index(arr, name) : -1;
                        if (k >= 0) {
                                json_array_remove(arr, (size_t)k);
                                removed = 1;
                        }
                }
                if (!removed && json_object_get(base, name)) {
                        json_object_del(base, name);
                        removed = 1;
                }
                if (!removed) {
                        snprintf(errstr, errstr_size,
                                 "%sremove: \"%s\" is no field, table or key "
                                 "of the base",
                                 where, name);
                        return -1;
                }
        }
        return 0;
}

/* Lays ext (borrowed) over base (modified). */
static int overlay(json_t *base, json_t *ext, const char *where, char *errstr,
                   size_t errstr_size)
{
        const char *key;
        json_t *v, *rm = json_object_get(ext, "remove");

        if (rm && remove_names(base, rm, where, errstr, errstr_size) < 0)
                return -1;
        json_object_foreach(ext, key, v)
        {
                json_t *b = json_object_get(base, key);
                char sub[512];
                if (strcmp(key, "remove") == 0 || strcmp(key, "extends") == 0)
                        continue;
                snprintf(sub, sizeof(sub), "%s%s.", where, key);
                if (strcmp(key, "fields") == 0 && json_is_object(v) &&
                    json_is_object(b)) {
                        /* a field is replaced whole */
                        json_object_update(b, v);
                        continue;
                }
                if (json_is_object(v) && json_is_object(b)) {
                        if (overlay(b, v, sub, errstr, errstr_size) < 0)
                                return -1;
                        continue;
                }
                if (names_table(v) && names_table(b)) {
                        json_t *e;
                        size_t i;
                        json_array_foreach(v, i, e)
                        {
                                const char *t = json_string_value(
                                    json_object_get(e, "table"));
                                long k = table_index(b, t);
                                char esub[512];
                                snprintf(esub, sizeof(esub), "%s%s[%s].", where,
                                         key, t);
                                if (k < 0)
                                        json_array_append_new(
                                            b, json_deep_copy(e));
                                else if (overlay(json_array_get(b, (size_t)k),
                                                 e, esub, errstr,
                                                 errstr_size) < 0)
                                        return -1;
                        }
                        continue;
                }
                json_object_set_new(base, key, json_deep_copy(v));
        }
        return 0;
}

static json_t *resolve(const struct sl_extends_kind *kind, const char *file,
                       json_t *root, int depth, char *errstr,
                       size_t errstr_size)
{
        char err[768];
        json_t *ext = json_object_get(root, "extends");
        json_t *base_root = NULL, *base = NULL, *eff = NULL;
        char *path = NULL;

        if (!ext) {
                if (json_object_get(root, "remove")) {
                        snprintf(errstr, errstr_size,
                                 "%s: remove: only an extension (\"extends\") "
                                 "removes",
                                 file);
                        return NULL;
                }
                return json_incref(root);
        }
        if (!json_is_string(ext) || !*json_string_value(ext)) {
                snprintf(errstr, errstr_size,
                         "%s: extends: expected the name of a definition",
                         file);
                return NULL;
        }
        if (depth >= MAX_CHAIN) {
                snprintf(errstr, errstr_size,
                         "%s: extends: more than %d definitions deep (a "
                         "loop?)",
                         file, MAX_CHAIN);
                return NULL;
        }
        path = find_base(kind, file, json_string_value(ext));
        if (!path) {
                snprintf(errstr, errstr_size,
                         "%s: extends: no definition \"%s\" (searched %s%s%s"
                         "the file's directory and the bundled ones)",
                         file, json_string_value(ext), kind->env_var ? "$" : "",
                         kind->env_var ? kind->env_var : "",
                         kind->env_var ? ", " : "");
                goto out;
        }
        base_root = sl_config_load(path, err, sizeof(err));
        if (!base_root) {
                snprintf(errstr, errstr_size, "%s: extends: %s", file, err);
                goto out;
        }
        if (!json_is_object(base_root)) {
                snprintf(errstr, errstr_size,
                         "%s: extends: %s is not a JSON object", file, path);
                goto out;
        }
        base = resolve(kind, path, base_root, depth + 1, errstr, errstr_size);
        if (!base)
                goto out;
        eff = json_deep_copy(base);
        if (overlay(eff, root, "", err, sizeof(err)) < 0) {
                snprintf(errstr, errstr_size, "%s: %s", file, err);
                json_decref(eff);
                eff = NULL;
        }
out:
        json_decref(base);
        json_decref(base_root);
        free(path);
        return eff;
}

json_t *sl_extends_resolve(const struct sl_extends_kind *kind, const char *file,
                           json_t *root, char *errstr, size_t errstr_size)
{
        if (!json_is_object(root))
                return json_incref(root);
        return resolve(kind, file, root, 0, errstr, errstr_size);
}
