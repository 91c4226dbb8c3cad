/* fuzz_script: the Lua sandbox of map scripts (transformers/map_script.c).
 * Input: a script's text, run as a field script and as the record script
 * of one map over a page of two records. Whatever the script does (an
 * escape, a loop, a memory bomb, garbage that does not compile), each
 * record ends as a row (and the rows its record script emit()s, at most
 * script_rows) or a dead letter, within the instruction budget and memory
 * cap, and the process goes on; a script that escaped the sandbox to run
 * forever is a libFuzzer timeout. */
#include "fuzz.h"
#include "map.h"

#include <stdlib.h>
#include <string.h>

/* the map's script_rows */
#define ROWS 3

static int on_row(void *opaque, const char *topic, const char *key,
                  size_t key_len, json_t *envelope)
{
        (void)topic;
        (void)key;
        (void)key_len;
        (void)envelope;
        (*(long *)opaque)++;
        return 0;
}

static int on_dead(void *opaque, const char *key, json_t *letter)
{
        (void)key;
        (void)letter;
        (*(long *)opaque)++;
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char *src, *text = NULL, *errs = NULL;
        json_t *root, *page;
        struct map *m;
        long outputs = 0;
        struct map_lineage lin = {.source = "fuzz"};
        struct map_emit em = {
            .row = on_row, .dead = on_dead, .opaque = &outputs};

        if (size > 4096)
                return 0;
        src = malloc(size + 1);
        if (!src)
                return 0;
        memcpy(src, data, size);
        src[size] = '\0';
        /* json_pack refuses text that is not UTF-8: such a script cannot
         * be in a map */
        root = json_pack("{s:s, s:s, s:s, s:s, s:s, s:{s:s, s:{s:s}}, s:s, "
                         "s:i, s:i}",
                         "name", "fuzz", "source", "fuzz", "records", "$.items",
                         "table", "t", "coalesce", "id", "fields", "id", "id",
                         "v", "script", src, "script", src,
                         "script_instructions", 200000, "script_rows", ROWS);
        if (!root)
                goto out;
        text = json_dumps(root, 0);
        json_decref(root);
        m = map_loadb("fuzz.json", text, strlen(text), &errs);
        if (!m)
                goto out;
        page = json_pack("{s:s, s:[{s:s, s:i, s:[i, s]}, {s:s}]}", "tag", "p",
                         "items", "id", "a", "n", 7, "list", 1, "x", "id", "b");
        for (int pass = 0; pass < 2; pass++)
                map_apply_page(m, page, NULL, &lin, &em);
        /* each record of each pass: a row or a dead letter (the script may
         * drop one: ignored, neither), and what it emitted */
        if (outputs > 2 * 2 * (1 + ROWS))
                abort();
        json_decref(page);
        map_destroy(m);
out:
        free(errs);
        free(text);
        free(src);
        return 0;
}
