/* test_lint_messages: what `sluice lint` says about a few common mistakes,
 * exactly: a misspelt key gets a "did you mean" and no second "missing
 * required key" error for the key it misspells; a wrong type says what was
 * given; a column name holding a quote is located at its own line, not at
 * 1:1. */
#include "fetch_source.h"
#include "map.h"
#include "tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The problems of a source definition, "" when it loads. New; free(). */
static char *source_errs(const char *text)
{
        char *errs = NULL;
        struct fetch_source *src =
            fetch_source_loadb("s.json", text, strlen(text), &errs);

        fetch_source_destroy(src);
        return errs ? errs : calloc(1, 1);
}

static char *map_errs(const char *text)
{
        char *errs = NULL;
        struct map *m = map_loadb("m.json", text, strlen(text), &errs);

        map_destroy(m);
        return errs ? errs : calloc(1, 1);
}

int main(void)
{
        char *e;

        e = source_errs(
            "{\"name\": \"x\", \"base_ulr\": \"http://a\",\n"
            " \"request\": {\"path\": \"/p\"}, \"records\": \"$.v\"}");
        TAP_STR_EQ(e,
                   "s.json:1:15: base_ulr: unknown key \"base_ulr\" (did you "
                   "mean \"base_url\"?)\n",
                   "a misspelt key: did you mean, and nothing else");
        free(e);

        e = source_errs(
            "{\"name\": \"x\", \"base_url\": \"http://a\",\n"
            " \"request\": {\"path\": \"/p\"}, \"records\": \"$.v\",\n"
            " \"concurrency\": \"4\", \"retry\": {\"max_ms\": "
            "true}}");
        TAP_OK(strstr(e, "s.json:3:2: concurrency: expected integer, got "
                         "string \"4\"\n") != NULL,
               "a wrong type says what was given: %s", e);
        TAP_OK(strstr(e, "retry.max_ms: expected integer, got boolean "
                         "true\n") != NULL,
               "... a boolean too");
        free(e);

        e = source_errs(
            "{\"name\": \"x\", \"base_url\": \"http://a\",\n"
            " \"request\": {\"path\": \"/p\"}, \"records\": \"$.v\",\n"
            " \"xyzzy\": 1}");
        TAP_STR_EQ(e, "s.json:3:2: xyzzy: unknown key \"xyzzy\"\n",
                   "a key like no other: no guess");
        free(e);

        e = map_errs(
            "{\"name\": \"m\", \"source\": \"s\", \"targets\": [{\n"
            " \"records\": \"$\", \"tabel\": \"t\",\n"
            " \"coalesce\": [\"id\"], \"fields\": {\"id\": \"id\"}}]}");
        TAP_OK(strstr(e, "m.json:2:18: targets[0].tabel: unknown key \"tabel\" "
                         "(did you mean \"table\"?)\n") != NULL,
               "a misspelt map key: did you mean (%s)", e);
        TAP_OK(strstr(e, "missing required key \"table\"") == NULL,
               "... and no missing-key error for the key it misspells");
        free(e);

        e = map_errs("{\"name\": \"m\", \"source\": \"s\", \"targets\": [{\n"
                     " \"records\": \"$\", \"table\": \"t\",\n"
                     " \"coalesce\": [\"id\"],\n"
                     " \"fields\": {\n"
                     "  \"id\": \"id\",\n"
                     "  \"na\\\"me\": \"x\"}}]}");
        TAP_OK(strncmp(e, "m.json:6:3: targets[0].fields.na\"me: column name",
                       strlen("m.json:6:3: targets[0].fields.na\"me: column "
                              "name")) == 0,
               "a column name with a quote is located at its line: %s", e);
        free(e);
        return TAP_DONE();
}
