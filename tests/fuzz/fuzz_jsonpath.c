/* fuzz_jsonpath: the JSON-path compiler and evaluator (common/sl_jsonpath).
 * Input: a path expression, a newline, then a JSON document. */
#include "fuzz.h"
#include "sl_jsonpath.h"

#include <stdlib.h>

static int jp_count(json_t *match, void *opaque)
{
        size_t *n = opaque;

        (void)json_typeof(match);
        (*n)++;
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const uint8_t *doc;
        size_t doc_size, n = 0;
        char errstr[256];
        char *expr = fuzz_split(data, size, "\n", &doc, &doc_size);
        struct sl_jsonpath *p =
            sl_jsonpath_compile(expr, errstr, sizeof(errstr));
        json_error_t jerr;
        json_t *root;

        if (!p)
                goto out;
        (void)sl_jsonpath_text(p);
        (void)sl_jsonpath_is_single(p);
        root = json_loadb((const char *)doc, doc_size, JSON_DECODE_ANY, &jerr);
        if (root) {
                sl_jsonpath_each(p, root, jp_count, &n);
                (void)sl_jsonpath_first(p, root);
                (void)sl_jsonpath_get(root, expr);
                json_decref(root);
        }
out:
        sl_jsonpath_destroy(p);
        free(expr);
        return 0;
}
