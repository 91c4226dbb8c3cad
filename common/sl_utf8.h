/* sl_utf8: the one well-formed UTF-8 rule that the validator
 * (sl_jsonscan) and the writer (sl_jsondump) share with Jansson. Inline:
 * both call it in their innermost loops. */
#ifndef SL_UTF8_H
#define SL_UTF8_H

#include <stddef.h>

/* Length of the well-formed UTF-8 sequence at p (lead byte >= 0x80), or 0
 * (overlong forms, UTF-16 surrogates and code points past U+10FFFF are
 * not well formed). */
static inline size_t sl_utf8_len(const unsigned char *p,
                                 const unsigned char *end)
{
        unsigned c = p[0];
        size_t n;
        unsigned lo = 0x80, hi = 0xBF; /* range of the second byte */

        if (c >= 0xC2 && c <= 0xDF) {
                n = 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
                n = 3;
                if (c == 0xE0)
                        lo = 0xA0;
                else if (c == 0xED)
                        hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
                n = 4;
                if (c == 0xF0)
                        lo = 0x90;
                else if (c == 0xF4)
                        hi = 0x8F;
        } else {
                return 0;
        }
        if ((size_t)(end - p) < n || p[1] < lo || p[1] > hi)
                return 0;
        for (size_t i = 2; i < n; i++)
                if ((p[i] & 0xC0) != 0x80)
                        return 0;
        return n;
}

#endif
