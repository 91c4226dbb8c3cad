/* fuzz_map: the map compiler (transformers/map.c) and record mapping
 * (map_apply.c, map_value.c). Input: a map's JSON text, a line "----",
 * then a raw page. A page that does not decode becomes a page dead letter,
 * as in the worker. A page map_apply_bytes takes (records decoded one by
 * one) must give exactly what map_apply_page gives on the decoded page. */
#include "fuzz.h"
#include "map.h"

#include <stdlib.h>
#include <string.h>

static int map_row(void *opaque, const char *topic, const char *key,
                   size_t key_len, json_t *envelope)
{
        char *text = json_dumps(envelope, JSON_COMPACT);

        (void)topic;
        (void)key;
        (void)key_len;
        free(text);
        json_array_append_new(opaque, json_deep_copy(envelope));
        return 0;
}

static int map_dead(void *opaque, const char *key, json_t *letter)
{
        char *text = json_dumps(letter, JSON_COMPACT);

        (void)key;
        free(text);
        json_array_append_new(opaque, json_deep_copy(letter));
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const uint8_t *page;
        size_t page_size;
        char *errs = NULL;
        char *text = fuzz_split(data, size, "\n----\n", &page, &page_size);
        struct map *m = map_loadb("fuzz.json", text, strlen(text), &errs);
        struct map_lineage lin = {.source = "fuzz",
                                  .run = "1-1",
                                  .topic = "raw.fuzz",
                                  .partition = 0,
                                  .offset = 7,
                                  .fetched_at = "2024-01-02T03:04:05.000Z",
                                  .page = "0",
                                  .chunk = "0"};
        json_t *whole = json_array(), *sparse = json_array();
        struct map_emit em = {.row = map_row, .dead = map_dead, .opaque = whole};
        struct map_emit es = {
            .row = map_row, .dead = map_dead, .opaque = sparse};
        json_error_t jerr;
        json_t *doc;
        int applied;

        free(errs);
        if (!m)
                goto out;
        applied = map_apply_bytes(m, (const char *)page, page_size, "$", &lin,
                                  &es) != MAP_NOT_APPLIED;
        doc = json_loadb((const char *)page, page_size, 0, &jerr);
        if (doc) {
                map_apply_page(m, doc, "$", &lin, &em);
                json_decref(doc);
                if (applied && !json_equal(whole, sparse))
                        abort(); /* the two ways disagree */
        } else {
                json_decref(map_dead_page(m, (const char *)page, page_size,
                                          jerr.text, &lin));
        }
        map_destroy(m);
out:
        json_decref(whole);
        json_decref(sparse);
        free(text);
        return 0;
}
