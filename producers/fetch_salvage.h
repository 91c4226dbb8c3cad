/* fetch_salvage: one bad record does not cost its page. A page that is not
 * valid JSON only because of records of its located array (a string of
 * invalid UTF-8, a number like 1e400 out of range, ...) keeps its other
 * records: each bad record's bytes are set aside (for dlq.fetch, with the
 * reason and the byte offset) and overwritten in place by `null` padded
 * with spaces, so the page keeps its length, its record count and every
 * offset in it. A page whose envelope (everything outside the records
 * array) is not JSON, or whose array cannot be walked, is not salvaged. */
#ifndef FETCH_SALVAGE_H
#define FETCH_SALVAGE_H

#include <stddef.h>

/* A record set aside. */
struct fetch_bad_record {
        long index;     /* in the page's records array */
        size_t off;     /* its first byte in the page */
        size_t err_off; /* the offending byte in the page */
        char *bytes;    /* a copy of the record's bytes (owned) */
        size_t len;
        const char *kind; /* "utf8", "number" or "syntax" (static) */
        char reason[200];
};

/* Salvages text[0..len), in place, the records at path (a plain member
 * path) checked with max_depth (0: Jansson's). Returns the number of
 * records set aside (*bad: new array of them, free with
 * fetch_bad_records_free), or -1 when the page cannot be salvaged (text
 * untouched, *bad NULL): the page is then as bad as before. */
long fetch_salvage(char *text, size_t len, const char *path, int max_depth,
                   struct fetch_bad_record **bad);

void fetch_bad_records_free(struct fetch_bad_record *bad, long n);

#endif
