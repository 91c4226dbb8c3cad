/* sl_util: allocation, buffers, parsing, clocks and signals for all roles. */
#include "sl_util.h"

#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

volatile sig_atomic_t sl_stop = 0;

static void oom(size_t size)
{
        fprintf(stderr, "level=crit msg=\"out of memory\" size=%zu\n", size);
        abort();
}

void *sl_malloc(size_t size)
{
        void *p = malloc(size ? size : 1);
        if (!p)
                oom(size);
        return p;
}

#define BIG_STEP ((size_t)256 << 10)

void *sl_malloc_big(size_t size, size_t *cap)
{
        size_t n;

        if (size < SL_BIG_BLOCK) {
                *cap = size ? size : 1;
                return sl_malloc(size);
        }
        /* in steps of 256 KiB: pages of near sizes get blocks of one size,
         * which glibc's free lists hand on from one page to the next.
         * Plain pages, not transparent huge ones: on this VM a fresh huge
         * page costs ~5x a fresh 4 KB page per byte (0.5 against 2.5 GB/s
         * at first touch, once the kernel has handed freed memory back to
         * the host), and the bench's 10-page sync took 1.5x as long with
         * MADV_HUGEPAGE (docs/performance.md, session 10) */
        n = (size + BIG_STEP - 1) & ~(BIG_STEP - 1);
        *cap = n;
        return sl_malloc(n);
}

void *sl_calloc(size_t n, size_t size)
{
        void *p = calloc(n ? n : 1, size ? size : 1);
        if (!p)
                oom(n * size);
        return p;
}

void *sl_realloc(void *ptr, size_t size)
{
        void *p = realloc(ptr, size ? size : 1);
        if (!p)
                oom(size);
        return p;
}

char *sl_strdup(const char *s)
{
        size_t n = strlen(s);
        char *p = sl_malloc(n + 1);
        memcpy(p, s, n + 1);
        return p;
}

char *sl_strndup(const char *s, size_t n)
{
        size_t len = strnlen(s, n);
        char *p = sl_malloc(len + 1);
        memcpy(p, s, len);
        p[len] = '\0';
        return p;
}

char *sl_asprintf(const char *fmt, ...)
{
        va_list ap;
        int n;
        char *p;

        va_start(ap, fmt);
        n = vsnprintf(NULL, 0, fmt, ap);
        va_end(ap);
        if (n < 0)
                abort();
        p = sl_malloc((size_t)n + 1);
        va_start(ap, fmt);
        vsnprintf(p, (size_t)n + 1, fmt, ap);
        va_end(ap);
        return p;
}

void sl_buf_init(struct sl_buf *b, size_t max)
{
        b->data = NULL;
        b->len = 0;
        b->cap = 0;
        b->max = max ? max : SL_BUF_MAX_DEFAULT;
}

void sl_buf_free(struct sl_buf *b)
{
        free(b->data);
        b->data = NULL;
        b->len = 0;
        b->cap = 0;
}

void sl_buf_reset(struct sl_buf *b)
{
        b->len = 0;
        if (b->data)
                b->data[0] = '\0';
}

void sl_buf_reserve(struct sl_buf *b, size_t n)
{
        if (n > b->max)
                n = b->max;
        if (n + 1 <= b->cap)
                return;
        if (b->cap == 0) {
                /* a first reservation of megabytes: a page of an API
                 * (an empty buffer holds no data) */
                b->data = sl_malloc_big(n + 1, &b->cap);
                b->data[0] = '\0';
        } else {
                b->data = sl_realloc(b->data, n + 1);
                b->cap = n + 1;
        }
}

int sl_buf_append(struct sl_buf *b, const void *p, size_t n)
{
        if (n > b->max || b->len > b->max - n)
                return -1;
        if (b->len + n + 1 > b->cap) {
                size_t cap = b->cap ? b->cap : 256;
                while (cap < b->len + n + 1)
                        cap *= 2;
                b->data = sl_realloc(b->data, cap);
                b->cap = cap;
        }
        if (n)
                memcpy(b->data + b->len, p, n);
        b->len += n;
        b->data[b->len] = '\0';
        return 0;
}

/* Copies bytes as UTF-8, replacing each invalid sequence by U+FFFD. */
void sl_buf_utf8(struct sl_buf *b, const void *bytes, size_t n)
{
        const unsigned char *s = bytes;
        size_t i = 0;

        while (i < n) {
                unsigned char c = s[i];
                size_t len = c < 0x80           ? 1
                             : (c >> 5) == 0x6  ? 2
                             : (c >> 4) == 0xE  ? 3
                             : (c >> 3) == 0x1E ? 4
                                                : 0;
                int ok = len > 0 && i + len <= n;
                for (size_t k = 1; ok && k < len; k++)
                        ok = (s[i + k] & 0xC0) == 0x80;
                if (ok && len == 2 && c < 0xC2)
                        ok = 0;
                if (ok && len == 3) {
                        unsigned cp = ((c & 0x0Fu) << 12) |
                                      ((s[i + 1] & 0x3Fu) << 6) |
                                      (s[i + 2] & 0x3Fu);
                        ok = cp >= 0x800 && (cp < 0xD800 || cp > 0xDFFF);
                }
                if (ok && len == 4) {
                        unsigned cp =
                            ((c & 0x07u) << 18) | ((s[i + 1] & 0x3Fu) << 12) |
                            ((s[i + 2] & 0x3Fu) << 6) | (s[i + 3] & 0x3Fu);
                        ok = cp >= 0x10000 && cp <= 0x10FFFF;
                }
                if (!ok) {
                        sl_buf_append(b, "\xEF\xBF\xBD", 3);
                        i++;
                        continue;
                }
                sl_buf_append(b, s + i, len);
                i += len;
        }
}

void sl_buf_base64(struct sl_buf *b, const void *bytes, size_t n)
{
        static const char a[] =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        const unsigned char *s = bytes;
        char q[4];

        for (size_t i = 0; i < n; i += 3) {
                unsigned v = (unsigned)s[i] << 16;
                if (i + 1 < n)
                        v |= (unsigned)s[i + 1] << 8;
                if (i + 2 < n)
                        v |= s[i + 2];
                q[0] = a[(v >> 18) & 63];
                q[1] = a[(v >> 12) & 63];
                q[2] = i + 1 < n ? a[(v >> 6) & 63] : '=';
                q[3] = i + 2 < n ? a[v & 63] : '=';
                sl_buf_append(b, q, 4);
        }
}

int sl_buf_puts(struct sl_buf *b, const char *s)
{
        return sl_buf_append(b, s, strlen(s));
}

int sl_buf_printf(struct sl_buf *b, const char *fmt, ...)
{
        va_list ap;
        char small[256];
        int n;
        int rc;

        va_start(ap, fmt);
        n = vsnprintf(small, sizeof(small), fmt, ap);
        va_end(ap);
        if (n < 0)
                return -1;
        if ((size_t)n < sizeof(small))
                return sl_buf_append(b, small, (size_t)n);
        {
                char *big = sl_malloc((size_t)n + 1);
                va_start(ap, fmt);
                vsnprintf(big, (size_t)n + 1, fmt, ap);
                va_end(ap);
                rc = sl_buf_append(b, big, (size_t)n);
                free(big);
        }
        return rc;
}

char *sl_buf_steal(struct sl_buf *b, size_t *len)
{
        char *p = b->data ? b->data : sl_strdup("");
        if (len)
                *len = b->len;
        b->data = NULL;
        b->len = 0;
        b->cap = 0;
        return p;
}

int sl_parse_ll(const char *s, long long *out)
{
        char *end = NULL;
        long long v;

        if (!s || !*s)
                return -1;
        errno = 0;
        v = strtoll(s, &end, 10);
        if (errno || *end != '\0')
                return -1;
        *out = v;
        return 0;
}

int sl_parse_int(const char *s, int *out)
{
        long long v;

        if (sl_parse_ll(s, &v) < 0 || v < INT_MIN || v > INT_MAX)
                return -1;
        *out = (int)v;
        return 0;
}

int sl_parse_double(const char *s, double *out)
{
        char *end = NULL;
        double v;

        if (!s || !*s)
                return -1;
        errno = 0;
        v = strtod(s, &end);
        if (errno || *end != '\0')
                return -1;
        *out = v;
        return 0;
}

int64_t sl_now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t sl_wall_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

char *sl_time_format(int64_t wall_ms, char *buf, size_t size)
{
        time_t secs = (time_t)(wall_ms / 1000);
        struct tm tm;
        char tmp[32];

        gmtime_r(&secs, &tm);
        strftime(tmp, sizeof(tmp), "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(buf, size, "%s.%03dZ", tmp, (int)(wall_ms % 1000));
        return buf;
}

void sl_sleep_ms(int64_t ms)
{
        struct timespec ts;

        if (ms <= 0)
                return;
        ts.tv_sec = (time_t)(ms / 1000);
        ts.tv_nsec = (long)(ms % 1000) * 1000000L;
        /* An interrupting signal ends the sleep early; callers re-check
         * sl_stop, which is what we want. */
        nanosleep(&ts, NULL);
}

static void on_stop(int sig)
{
        (void)sig;
        sl_stop = 1;
}

void sl_signals_install(void)
{
        struct sigaction sa;

        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_stop;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);
}

char *sl_file_read(const char *path, size_t *len, char *errstr,
                   size_t errstr_size)
{
        FILE *fp = fopen(path, "rb");
        struct sl_buf b;
        char chunk[65536];
        size_t n;

        if (!fp) {
                snprintf(errstr, errstr_size, "%s: %s", path, strerror(errno));
                return NULL;
        }
        sl_buf_init(&b, 0);
        while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0) {
                if (sl_buf_append(&b, chunk, n) < 0) {
                        snprintf(errstr, errstr_size, "%s: file too large",
                                 path);
                        sl_buf_free(&b);
                        fclose(fp);
                        return NULL;
                }
        }
        if (ferror(fp)) {
                snprintf(errstr, errstr_size, "%s: read error: %s", path,
                         strerror(errno));
                sl_buf_free(&b);
                fclose(fp);
                return NULL;
        }
        fclose(fp);
        return sl_buf_steal(&b, len);
}

void sl_usage_error(const char *cmd, const char *fmt, ...)
{
        char msg[512];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        fprintf(stderr, "sluice %s: %s (see sluice %s --help)\n", cmd, msg,
                cmd);
}

int sl_str_has_prefix(const char *s, const char *prefix)
{
        return strncmp(s, prefix, strlen(prefix)) == 0;
}

int sl_str_has_suffix(const char *s, const char *suffix)
{
        size_t n = strlen(s), m = strlen(suffix);
        return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

static void (*release_hooks[4])(void);

void sl_mem_on_release(void (*fn)(void))
{
        for (int i = 0; i < 4; i++) {
                if (release_hooks[i] == fn)
                        return;
                if (!release_hooks[i]) {
                        release_hooks[i] = fn;
                        return;
                }
        }
}

int sl_mem_release(void)
{
        for (int i = 0; i < 4 && release_hooks[i]; i++)
                release_hooks[i]();
        return malloc_trim(0);
}

int sl_idle_turn(struct sl_idle *st, int busy)
{
        int64_t now = sl_now_ms();

        if (busy || st->last_busy_ms == 0) {
                st->last_busy_ms = now;
                st->released = 0;
                return 0;
        }
        if (st->released || now - st->last_busy_ms < SL_IDLE_RELEASE_MS)
                return 0;
        st->released = 1;
        sl_mem_release();
        return 1;
}

int64_t sl_cpu_ms(void)
{
        struct rusage ru;

        if (getrusage(RUSAGE_SELF, &ru) != 0)
                return 0;
        return (int64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000 +
               (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000;
}
