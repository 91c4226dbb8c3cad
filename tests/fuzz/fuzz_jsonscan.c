/* fuzz_jsonscan: the fetcher's page validator (common/sl_jsonscan.c) held
 * to Jansson's verdict on any input: accepting a text Jansson refuses would
 * publish a page every transformer dead-letters; refusing one it accepts
 * would fail a good sync. The one allowed difference is a raw NUL byte,
 * which Jansson 2.14 lets through after a number (sl_jsonscan.h). What it
 * accepts, sl_json_decode must build as Jansson does (sl_jsondecode.h).
 * The first input byte also picks a depth limit, checked against a
 * count. */
#include "fuzz.h"
#include "sl_jsondecode.h"
#include "sl_jsonscan.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* The deepest nesting of s outside strings (s is valid JSON). */
static int depth_of(const uint8_t *s, size_t n)
{
        int d = 0, max = 0, in_str = 0;

        for (size_t i = 0; i < n; i++) {
                if (in_str) {
                        if (s[i] == '\\')
                                i++;
                        else if (s[i] == '"')
                                in_str = 0;
                } else if (s[i] == '"') {
                        in_str = 1;
                } else if (s[i] == '[' || s[i] == '{') {
                        if (++d > max)
                                max = d;
                } else if (s[i] == ']' || s[i] == '}') {
                        d--;
                }
        }
        return max;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        json_error_t e;
        json_t *v = json_loadb((const char *)data, size, 0, &e);
        int ok = sl_json_validate((const char *)data, size, 0, NULL) == 0;
        int limit;

        if (ok && !v)
                abort(); /* accepted what the decoder refuses */
        if (ok) {
                /* sl_json_decode builds Jansson's tree, member order too */
                struct sl_json_span at = {0, size};
                json_t *got;
                char *a, *b;

                while (at.len && strchr(" \t\r\n", data[at.off])) {
                        at.off++;
                        at.len--;
                }
                while (at.len && strchr(" \t\r\n", data[at.off + at.len - 1]))
                        at.len--;
                got = sl_json_decode((const char *)data, size, at);
                a = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
                b = json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY);
                if (!json_equal(v, got) || !a || !b || strcmp(a, b) != 0)
                        abort();
                free(a);
                free(b);
                json_decref(got);
        }
        if (!ok && v && !memchr(data, '\0', size))
                abort(); /* refused what the decoder accepts */
        json_decref(v);
        if (ok && size > 0) {
                limit = 1 + data[0] % 8;
                if ((sl_json_validate((const char *)data, size, limit, NULL) ==
                     0) != (depth_of(data, size) <= limit))
                        abort(); /* the depth limit counted wrong */
        }
        return 0;
}
