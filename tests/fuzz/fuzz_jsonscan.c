/* fuzz_jsonscan: the fetcher's page validator (common/sl_jsonscan.c) held
 * to Jansson's verdict on any input: accepting a text Jansson refuses would
 * publish a page every transformer dead-letters; refusing one it accepts
 * would fail a good sync. The one allowed difference is a raw NUL byte,
 * which Jansson 2.14 lets through after a number (sl_jsonscan.h). What it
 * accepts, sl_json_decode must build as Jansson does (sl_jsondecode.h).
 * The first input byte also picks a depth limit, checked against a
 * count. sl_json_validate_locate must find in its one pass what
 * sl_json_locate_array finds after the validator. */
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

/* validate_locate's verdict and array at path, against the two passes */
static void locate_agrees(const char *s, size_t n, int valid, const char *path)
{
        size_t o1 = 0, c1 = 0, o2 = 0, c2 = 0;
        struct sl_json_span *e1 = NULL, *e2 = NULL;
        long n1 = valid ? sl_json_locate_array(s, n, path, &o1, &c1, &e1) : -1;
        long n2;
        int v2 = sl_json_validate_locate(s, n, 0, path, &n2, &o2, &c2, &e2,
                                         NULL);

        if ((v2 == 0) != valid || n1 != n2 ||
            (n1 >= 0 && (o1 != o2 || c1 != c2 ||
                         (n1 > 0 && memcmp(e1, e2, (size_t)n1 * sizeof(*e1)) !=
                                        0))))
                abort();
        free(e1);
        free(e2);
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
        locate_agrees((const char *)data, size, ok, "$");
        locate_agrees((const char *)data, size, ok, "$.a");
        locate_agrees((const char *)data, size, ok, "$.a.b");
        locate_agrees((const char *)data, size, ok, "$['b'].a");
        json_decref(v);
        if (ok && size > 0) {
                limit = 1 + data[0] % 8;
                if ((sl_json_validate((const char *)data, size, limit, NULL) ==
                     0) != (depth_of(data, size) <= limit))
                        abort(); /* the depth limit counted wrong */
        }
        return 0;
}
