/* fuzz_util.c: input splitting shared by the fuzz targets. */
#include "fuzz.h"

#include <stdlib.h>
#include <string.h>

char *fuzz_split(const uint8_t *data, size_t size, const char *sep,
                 const uint8_t **rest, size_t *rest_size)
{
        size_t seplen = strlen(sep);
        size_t head = size;
        char *out;

        for (size_t i = 0; i + seplen <= size; i++) {
                if (memcmp(data + i, sep, seplen) == 0) {
                        head = i;
                        break;
                }
        }
        out = malloc(head + 1);
        if (!out)
                abort();
        if (head > 0)
                memcpy(out, data, head);
        out[head] = '\0';
        if (head < size) {
                *rest = data + head + seplen;
                *rest_size = size - head - seplen;
        } else {
                *rest = data + size;
                *rest_size = 0;
        }
        return out;
}
