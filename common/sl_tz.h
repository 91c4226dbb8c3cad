/* sl_tz: UTC offsets of IANA time zones read from the system's TZif files
 * (/usr/share/zoneinfo, or $TZDIR), without touching the process's TZ:
 * setenv("TZ") and tzset() on one thread race with every other thread
 * that reads the environment or the local time (librdkafka's and
 * libmicrohttpd's among them). Transitions come from the file's 64-bit
 * data; instants past the last one follow the file's POSIX rule footer
 * (e.g. "CET-1CEST,M3.5.0,M10.5.0/3"). */
#ifndef SL_TZ_H
#define SL_TZ_H

#include <stddef.h>
#include <stdint.h>

struct sl_tz;

/* The zone `name` (e.g. "Europe/Berlin"), loaded once per process and
 * kept: borrowed, valid until the process ends. NULL with errstr when the
 * name is not a zone (or contains ".."). Thread-safe. */
const struct sl_tz *sl_tz_get(const char *name, char *errstr,
                              size_t errstr_size);

/* Seconds east of UTC in force at the UTC instant t (unix seconds). */
long sl_tz_offset_at(const struct sl_tz *z, int64_t t);

/* Seconds east of UTC for the wall-clock time `local` (the local date and
 * time counted as unix seconds as if they were UTC), as mktime() with
 * tm_isdst = -1 would give: in a repeated hour the earlier (daylight)
 * offset, in a skipped hour the offset before the change. */
long sl_tz_offset_local(const struct sl_tz *z, int64_t local);

/* The zone parser on bytes (for tests and fuzzing). New; free with
 * sl_tz_free(). NULL with errstr when the bytes are not TZif. */
struct sl_tz *sl_tz_parse(const unsigned char *p, size_t n, char *errstr,
                          size_t errstr_size);
void sl_tz_free(struct sl_tz *z);

/* Days since 1970-01-01 of a civil date (proleptic Gregorian, month
 * 1-12), for any year. */
int64_t sl_days_from_civil(int64_t y, int m, int d);

#endif
