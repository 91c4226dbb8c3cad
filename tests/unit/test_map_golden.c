/* test_map_golden: walks tests/golden/maps/: each directory is one case
 * with map.json and either error.txt (the map must be refused with every
 * line of error.txt in the messages) or input.json (or input.txt for bytes
 * that are not JSON), optional records_path.txt, and expected.json: the
 * outputs in order (envelopes, dead letters, notes), each compared on the
 * members it names. */
#include "map_check.h"
#include "sl_util.h"
#include "tap.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *read_opt(const char *dir, const char *name, size_t *len)
{
        char path[4096], err[256];
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        return sl_file_read(path, len, err, sizeof(err));
}

static void trim_nl(char *s)
{
        size_t n = strlen(s);
        while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
                s[--n] = '\0';
}

static void run_error_case(const char *name, const char *dir, char *want)
{
        char path[4096];
        char *errs = NULL;
        struct map *m;
        char *line, *save = NULL;

        snprintf(path, sizeof(path), "%s/map.json", dir);
        m = map_load(path, &errs);
        TAP_OK(m == NULL, "%s: map is refused", name);
        for (line = want; line && *line; line = save) {
                char *nl = strchr(line, '\n');
                save = nl ? nl + 1 : NULL;
                if (nl)
                        *nl = '\0';
                trim_nl(line);
                if (!*line)
                        continue;
                TAP_OK(errs && strstr(errs, line), "%s: error names \"%s\"",
                       name, line);
                if (!(errs && strstr(errs, line)))
                        printf("#   errors: %s\n", errs ? errs : "(none)");
        }
        free(errs);
        map_destroy(m);
}

static void run_case(const char *name, const char *dir)
{
        char path[4096], msg[1024];
        char *errs = NULL, *input, *want_text, *err_text, *hdr;
        size_t len = 0, wlen = 0;
        struct map *m = NULL;
        json_t *got = NULL, *want = NULL;
        json_error_t jerr;

        err_text = read_opt(dir, "error.txt", &len);
        if (err_text) {
                run_error_case(name, dir, err_text);
                free(err_text);
                return;
        }
        snprintf(path, sizeof(path), "%s/map.json", dir);
        m = map_load(path, &errs);
        TAP_OK(m != NULL, "%s: map loads", name);
        if (!m) {
                printf("#   %s", errs ? errs : "");
                free(errs);
                return;
        }
        input = read_opt(dir, "input.json", &len);
        if (!input)
                input = read_opt(dir, "input.txt", &len);
        want_text = read_opt(dir, "expected.json", &wlen);
        hdr = read_opt(dir, "records_path.txt", &wlen);
        if (hdr)
                trim_nl(hdr);
        TAP_OK(input && want_text, "%s: has input and expected.json", name);
        if (input && want_text) {
                want = json_loads(want_text, JSON_ALLOW_NUL, &jerr);
                TAP_OK(want != NULL, "%s: expected.json parses (%s)", name,
                       want ? "" : jerr.text);
                got = map_check_run(m, input, len, hdr, NULL);
                {
                        /* the page decoded whole must give the same */
                        json_t *whole;
                        map_sparse_off = 1;
                        whole = map_check_run(m, input, len, hdr, NULL);
                        map_sparse_off = 0;
                        TAP_OK(json_equal(got, whole),
                               "%s: same output with the page decoded whole",
                               name);
                        json_decref(whole);
                }
                if (want) {
                        int rc = map_check_compare(got, want, msg, sizeof(msg));
                        TAP_OK(rc == 0, "%s: outputs match", name);
                        if (rc) {
                                char *g = json_dumps(got, JSON_COMPACT);
                                printf("#   %s\n#   got: %.3000s\n", msg, g);
                                free(g);
                        }
                }
        }
        json_decref(got);
        json_decref(want);
        free(hdr);
        free(want_text);
        free(input);
        map_destroy(m);
}

static int cmp(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(void)
{
        const char *root = getenv("SLUICE_ROOT");
        char base[1024];
        DIR *d;
        struct dirent *de;
        char **names = NULL;
        size_t n = 0;

        snprintf(base, sizeof(base), "%s/tests/golden/maps", root ? root : ".");
        d = opendir(base);
        TAP_OK(d != NULL, "golden directory %s opens", base);
        if (!d)
                return TAP_DONE();
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                names = sl_realloc(names, (n + 1) * sizeof(char *));
                names[n++] = sl_strdup(de->d_name);
        }
        closedir(d);
        qsort(names, n, sizeof(char *), cmp);
        TAP_OK(n >= 10, "found %zu golden cases", n);
        for (size_t i = 0; i < n; i++) {
                char dir[2048];
                snprintf(dir, sizeof(dir), "%s/%s", base, names[i]);
                run_case(names[i], dir);
                free(names[i]);
        }
        free(names);
        return TAP_DONE();
}
