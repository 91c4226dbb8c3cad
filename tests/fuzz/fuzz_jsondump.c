/* fuzz_jsondump: the JSON writer (common/sl_jsondump.c) held to Jansson on
 * any tree Jansson decodes: with every real replaced by null, exactly
 * json_dumps()'s bytes; with the reals, text that decodes to an equal tree.
 * The first input byte picks JSON_SORT_KEYS (bit 0); the rest is JSON. */
#include "fuzz.h"
#include "sl_jsondump.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* Replaces each real of v (in place) by null. */
static void null_reals(json_t *v)
{
        size_t i;
        json_t *e;
        void *it;

        if (json_is_array(v)) {
                json_array_foreach(v, i, e)
                {
                        if (json_is_real(e))
                                json_array_set_new(v, i, json_null());
                        else
                                null_reals(e);
                }
        } else if (json_is_object(v)) {
                for (it = json_object_iter(v); it;
                     it = json_object_iter_next(v, it)) {
                        e = json_object_iter_value(it);
                        if (json_is_real(e))
                                json_object_iter_set_new(v, it, json_null());
                        else
                                null_reals(e);
                }
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const size_t load = JSON_DECODE_ANY | JSON_ALLOW_NUL;
        json_t *v, *plain, *back;
        size_t flags, len = 0;
        char *ours, *theirs, *text;

        if (size < 1)
                return 0;
        flags = JSON_ENCODE_ANY | (data[0] & 1 ? JSON_SORT_KEYS : 0);
        v = json_loadb((const char *)data + 1, size - 1, load, NULL);
        if (!v)
                return 0;
        text = sl_json_dumps(v, flags, &len);
        if (!text || strlen(text) != len)
                abort(); /* any decoded tree is written, never a raw NUL */
        back = json_loadb(text, len, load, NULL);
        if (!json_equal(back, v))
                abort(); /* the text does not read back to the tree */
        plain = json_is_real(v) ? json_null() : json_deep_copy(v);
        null_reals(plain);
        ours = sl_json_dumps(plain, flags, NULL);
        theirs = json_dumps(plain, JSON_COMPACT | flags);
        if (!ours || !theirs || strcmp(ours, theirs) != 0)
                abort(); /* not Jansson's bytes */
        free(theirs);
        free(ours);
        json_decref(plain);
        json_decref(back);
        free(text);
        json_decref(v);
        return 0;
}
