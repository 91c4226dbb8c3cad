/* fuzz_jsonprefix: sl_json_prefix_member (common/sl_jsonscan.c), which the
 * fetcher runs on the first bytes of a page still arriving to read its
 * total early, given prefixes of any input: it must read nothing past the
 * bytes it is given, and never change its mind, since the fetcher plans
 * pages on its first answer: once it finds a value (the same bytes every
 * time) or says never, every longer prefix must say the same. */
#include "fuzz.h"
#include "sl_jsonscan.h"

#include <stdlib.h>

/* Every one of the first 256 prefix lengths, then 16 more spread to the
 * end, the whole input last. */
static void prefix_settles(const char *s, size_t n, const char *path)
{
        struct sl_json_span first = {0, 0}, v;
        int settled = 0; /* 0: not yet; 1 or -1: the first final verdict */
        size_t step = n / 16 + 1;

        for (size_t len = 0, last = 0; !last; len += len < 256 ? 1 : step) {
                int r;
                if (len >= n) {
                        len = n;
                        last = 1;
                }
                r = sl_json_prefix_member(s, len, path, &v);
                if (r == 1 && (v.off + v.len > len || v.len == 0))
                        abort(); /* a value past the bytes it was given */
                if (settled && r != settled)
                        abort(); /* changed its mind */
                if (settled == 1 && (v.off != first.off || v.len != first.len))
                        abort();
                if (!settled && r != 0) {
                        settled = r;
                        first = v;
                }
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        prefix_settles((const char *)data, size, "$.a");
        prefix_settles((const char *)data, size, "$.a.b");
        prefix_settles((const char *)data, size, "$.totalResults");
        return 0;
}
