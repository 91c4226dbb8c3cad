/* test_fetch_salvage: a page's bad records set aside in place (same length,
 * same record count, the rest valid), and the pages that must stay bad:
 * a bad envelope, a cut or garbled array, a fault between records. */
#include "fetch_salvage.h"
#include "sl_jsonscan.h"
#include "tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static long run(const char *in, char *out, size_t out_size,
                struct fetch_bad_record **bad)
{
        size_t n = strlen(in);

        snprintf(out, out_size, "%s", in);
        return fetch_salvage(out, n, "$.v", 0, bad);
}

int main(void)
{
        struct fetch_bad_record *bad = NULL;
        char buf[512];
        long n;

        n = run("{\"a\": 1, \"v\": [{\"x\": \"ok\"}, {\"x\": \"b\xff\"}, "
                "{\"n\": 1e400}, 7, {\"x\": \"fine\"}]}",
                buf, sizeof(buf), &bad);
        TAP_INT_EQ(n, 2, "two bad records of five");
        TAP_STR_EQ(buf,
                   "{\"a\": 1, \"v\": [{\"x\": \"ok\"}, null       , "
                   "null        , 7, {\"x\": \"fine\"}]}",
                   "each is null padded to its length");
        TAP_OK(sl_json_validate(buf, strlen(buf), 0, NULL) == 0,
               "the page is JSON now");
        if (n == 2) {
                TAP_INT_EQ(bad[0].index, 1, "the first is record 1");
                TAP_INT_EQ(bad[0].off, 28, "at byte 28");
                TAP_INT_EQ(bad[0].err_off, 36, "its bad byte at 36");
                TAP_STR_EQ(bad[0].kind, "utf8", "invalid UTF-8");
                TAP_STR_EQ(bad[0].bytes, "{\"x\": \"b\xff\"}",
                           "its bytes are kept");
                TAP_INT_EQ(bad[1].index, 2, "the second is record 2");
                TAP_STR_EQ(bad[1].kind, "number", "a number out of range");
        }
        fetch_bad_records_free(bad, n);

        n = run("{\"a\": \"\xff\", \"v\": [{\"x\": \"b\xff\"}]}", buf,
                sizeof(buf), &bad);
        TAP_INT_EQ(n, -1, "a bad envelope is not salvaged");
        TAP_OK(bad == NULL, "... and nothing is set aside");
        TAP_STR_EQ(buf, "{\"a\": \"\xff\", \"v\": [{\"x\": \"b\xff\"}]}",
                   "... the text untouched");

        n = run("{\"v\": [{\"x\": \"b\xff\"}, {\"x\": 1}", buf, sizeof(buf),
                &bad);
        TAP_INT_EQ(n, -1, "a cut page is not salvaged");
        n = run("{\"v\": [}", buf, sizeof(buf), &bad);
        TAP_INT_EQ(n, -1, "a garbled array is not salvaged (and ends)");
        n = run("{\"v\": [{\"x\": 1} {\"x\": 2}]}", buf, sizeof(buf), &bad);
        TAP_INT_EQ(n, -1, "a fault between records is not salvaged");
        n = run("{\"v\": [{\"x\": 1}]}", buf, sizeof(buf), &bad);
        TAP_INT_EQ(n, -1, "a valid page has nothing to salvage");
        n = run("{\"w\": [{\"x\": \"\xff\"}]}", buf, sizeof(buf), &bad);
        TAP_INT_EQ(n, -1, "no records array at the path: not salvaged");
        return TAP_DONE();
}
