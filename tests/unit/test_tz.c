/* test_tz: sl_tz's offsets against glibc's (localtime_r and mktime with
 * TZ set, in this single-threaded check only) across zones, centuries and
 * the rule footer past 2037; and a map converting times in a named zone
 * while another thread reads TZ: the process environment must not move
 * (it did, with setenv("TZ")/tzset() on the worker thread). */
#include "map.h"
#include "map_check.h"
#include "sl_tz.h"
#include "sl_util.h"
#include "tap.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *zones[] = {
    "Europe/Berlin",     "America/New_York", "Australia/Sydney",
    "Asia/Kolkata",      "Asia/Tokyo",       "America/Sao_Paulo",
    "Pacific/Chatham",   "Europe/Dublin",    "America/St_Johns",
    "Africa/Casablanca", "Pacific/Apia",     "UTC",
};

static void against_glibc(void)
{
        char err[256];

        for (size_t zi = 0; zi < sizeof(zones) / sizeof(*zones); zi++) {
                const struct sl_tz *z = sl_tz_get(zones[zi], err, sizeof(err));
                int bad_at = 0, bad_local = 0, n = 0;

                TAP_OK(z != NULL, "%s loads (%s)", zones[zi], z ? "" : err);
                if (!z)
                        continue;
                setenv("TZ", zones[zi], 1);
                tzset();
                /* 1901..2100 in steps of a prime number of hours */
                for (int64_t t = -2177452800LL; t < 4102444800LL;
                     t += 3600LL * 997) {
                        time_t tt = (time_t)t;
                        struct tm tm;
                        long want, got;

                        if (!localtime_r(&tt, &tm))
                                continue;
                        n++;
                        want = tm.tm_gmtoff;
                        got = sl_tz_offset_at(z, t);
                        if (want != got && bad_at++ < 3)
                                printf("# %s at %lld: %ld want %ld\n",
                                       zones[zi], (long long)t, got, want);
                        /* the wall time back to its offset: in a repeated
                         * hour the pick may differ from mktime's, so only
                         * times an hour away from any change are compared */
                        if (sl_tz_offset_at(z, t - 3600) == want &&
                            sl_tz_offset_at(z, t + 3600) == want) {
                                int64_t local = t + want;
                                got = sl_tz_offset_local(z, local);
                                if (got != want && bad_local++ < 3)
                                        printf("# %s local %lld: %ld want "
                                               "%ld\n",
                                               zones[zi], (long long)local, got,
                                               want);
                        }
                }
                TAP_INT_EQ(bad_at, 0, "%s: offsets at %d instants as glibc's",
                           zones[zi], n);
                TAP_INT_EQ(bad_local, 0, "%s: wall times back to offsets",
                           zones[zi]);
        }
        unsetenv("TZ");
        tzset();
        TAP_OK(sl_tz_get("../etc/passwd", err, sizeof(err)) == NULL,
               "a path out of the zone directory is refused");
        TAP_OK(sl_tz_get("Mars/Olympus_Mons", err, sizeof(err)) == NULL,
               "an unknown zone is refused: %s", err);
        {
                const unsigned char junk[] = "TZif2 not really a zone file at "
                                             "all, not at all, really";
                TAP_OK(sl_tz_parse(junk, sizeof(junk), err, sizeof(err)) ==
                           NULL,
                       "bytes that are not TZif are refused");
        }
}

static atomic_int stop;
static atomic_long moved;

static void *watch_tz(void *arg)
{
        (void)arg;
        while (!atomic_load(&stop)) {
                const char *v = getenv("TZ");
                if (!v || strcmp(v, "Etc/GMT+3") != 0)
                        atomic_fetch_add(&moved, 1);
        }
        return NULL;
}

static void environment_untouched(void)
{
        static const char map_text[] =
            "{\"name\": \"tz\", \"source\": \"t\", \"targets\": [{"
            "\"records\": \"$[*]\", \"table\": \"t\", \"coalesce\": [\"id\"],"
            "\"fields\": {\"id\": \"id\", \"at\": {\"path\": \"at\", "
            "\"type\": \"timestamptz\", \"formats\": [\"%d/%m/%Y %H:%M\"], "
            "\"timezone\": \"Europe/Paris\"}, \"day\": {\"path\": \"iso\", "
            "\"type\": \"date\", \"timezone\": \"Asia/Tokyo\"}}}]}";
        struct sl_buf page;
        struct map *m;
        char *errs = NULL;
        pthread_t tid;
        json_t *out, *first;
        size_t n = 0;

        setenv("TZ", "Etc/GMT+3", 1);
        m = map_loadb("tz.json", map_text, strlen(map_text), &errs);
        TAP_OK(m != NULL, "the map loads %s", errs ? errs : "");
        free(errs);
        if (!m)
                return;
        sl_buf_init(&page, 0);
        sl_buf_puts(&page, "[");
        for (int i = 0; i < 2000; i++)
                sl_buf_printf(&page,
                              "%s{\"id\": %d, \"at\": \"%02d/07/2024 12:30\", "
                              "\"iso\": \"2024-07-%02dT20:00:00Z\"}",
                              i ? "," : "", i, 1 + i % 28, 1 + i % 28);
        sl_buf_puts(&page, "]");
        pthread_create(&tid, NULL, watch_tz, NULL);
        for (int round = 0; round < 5; round++) {
                out = map_check_run(m, page.data, page.len, NULL, NULL);
                n += json_array_size(out);
                if (round == 0) {
                        first = json_object_get(json_array_get(out, 0), "row");
                        TAP_STR_EQ(
                            json_string_value(json_object_get(first, "at")),
                            "2024-07-01T10:30:00.000Z",
                            "12:30 in Paris in July is 10:30 UTC");
                        TAP_STR_EQ(
                            json_string_value(json_object_get(first, "day")),
                            "2024-07-02", "20:00 UTC is the next day in Tokyo");
                }
                json_decref(out);
        }
        atomic_store(&stop, 1);
        pthread_join(tid, NULL);
        TAP_INT_EQ(n, 10000, "10 000 rows converted");
        TAP_INT_EQ(atomic_load(&moved), 0,
                   "TZ never changed under another thread");
        sl_buf_free(&page);
        map_destroy(m);
        unsetenv("TZ");
}

int main(void)
{
        against_glibc();
        environment_untouched();
        return TAP_DONE();
}
