/* fetch_salvage: a page's bad records set aside, the rest kept; see
 * fetch_salvage.h. */
#include "fetch_salvage.h"
#include "sl_jsonscan.h"
#include "sl_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void fetch_bad_records_free(struct fetch_bad_record *bad, long n)
{
        for (long i = 0; bad && i < n; i++)
                free(bad[i].bytes);
        free(bad);
}

/* 0 when the bytes s[0..n) are one JSON value; else -1 with err (its
 * position relative to s). Jansson takes only arrays and objects at the
 * top, so the value is checked inside brackets. */
static int value_ok(const char *s, size_t n, int max_depth,
                    struct sl_json_error *err)
{
        char *w = sl_malloc(n + 2);
        int rc;

        w[0] = '[';
        memcpy(w + 1, s, n);
        w[n + 1] = ']';
        rc = sl_json_validate(w, n + 2, max_depth ? max_depth + 1 : 0, err);
        free(w);
        if (rc < 0)
                err->position = err->position > 0 ? err->position - 1 : 0;
        return rc < 0 ? -1 : 0;
}

static const char *kind_of(const char *text)
{
        if (strstr(text, "UTF-8") || strstr(text, "utf-8"))
                return "utf8";
        if (strstr(text, "real") || strstr(text, "integer") ||
            strstr(text, "number"))
                return "number";
        return "syntax";
}

long fetch_salvage(char *text, size_t len, const char *path, int max_depth,
                   struct fetch_bad_record **bad)
{
        struct sl_json_span *el = NULL;
        struct fetch_bad_record *b = NULL;
        struct sl_json_error je;
        size_t open = 0, close = 0;
        char *skel = NULL;
        long n, nbad = 0;

        *bad = NULL;
        n = sl_json_locate_array(text, len, path, &open, &close, &el);
        if (n <= 0 || close < open || close >= len)
                goto fail;
        for (long i = 0; i < n; i++)
                if (el[i].off <= open || el[i].off + el[i].len > close)
                        goto fail;
        /* the envelope: the page with an empty records array */
        skel = sl_malloc(len + 1);
        memcpy(skel, text, open + 1);
        memcpy(skel + open + 1, text + close, len - close);
        if (sl_json_validate(skel, open + 1 + len - close, max_depth, &je) != 0)
                goto fail;
        for (long i = 0; i < n; i++) {
                struct fetch_bad_record *r;

                if (value_ok(text + el[i].off, el[i].len, max_depth, &je) == 0)
                        continue;
                b = sl_realloc(b, sizeof(*b) * (size_t)(nbad + 1));
                r = &b[nbad++];
                memset(r, 0, sizeof(*r));
                r->index = i;
                r->off = el[i].off;
                r->err_off = el[i].off + je.position;
                r->len = el[i].len;
                r->bytes = sl_malloc(el[i].len + 1);
                memcpy(r->bytes, text + el[i].off, el[i].len);
                r->bytes[el[i].len] = '\0';
                r->kind = kind_of(je.text);
                snprintf(r->reason, sizeof(r->reason), "%s", je.text);
        }
        if (nbad == 0)
                goto fail; /* the fault is between the records */
        {
                /* overwrite in place; the whole page must then pass */
                char *copy = sl_malloc(len + 1);
                memcpy(copy, text, len);
                for (long i = 0; i < nbad; i++) {
                        static const char *const fill[] = {"", "0", "{}", "{} ",
                                                           "null"};
                        size_t k = b[i].len < 4 ? b[i].len : 4;
                        memcpy(copy + b[i].off, fill[k], k);
                        memset(copy + b[i].off + k, ' ', b[i].len - k);
                }
                if (sl_json_validate(copy, len, max_depth, &je) != 0) {
                        free(copy);
                        goto fail;
                }
                memcpy(text, copy, len);
                free(copy);
        }
        free(skel);
        free(el);
        *bad = b;
        return nbad;
fail:
        free(skel);
        free(el);
        fetch_bad_records_free(b, nbad);
        return -1;
}
