/* sl_log: the one log format of every sluice process. */
#include "sl_log.h"
#include "sl_util.h"

#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static char log_role[32] = "sluice";
static char log_instance[128] = "";
static int log_min = LOG_INFO;
static int log_json = 0;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
/* the live line on the terminal (sl_log_live), "" when none */
static char live_line[512];

static const char *level_names[] = {"emerg",   "alert",  "crit", "err",
                                    "warning", "notice", "info", "debug"};

void sl_log_init(const char *role)
{
        char host[64] = "localhost";
        const char *lvl = getenv("SLUICE_LOG_LEVEL");
        const char *fmt = getenv("SLUICE_LOG_FORMAT");
        const char *inst = getenv("SLUICE_INSTANCE");

        snprintf(log_role, sizeof(log_role), "%s", role);
        gethostname(host, sizeof(host) - 1);
        host[sizeof(host) - 1] = '\0';
        if (inst && *inst)
                snprintf(log_instance, sizeof(log_instance), "%s", inst);
        else
                snprintf(log_instance, sizeof(log_instance), "%s:%ld", host,
                         (long)getpid());
        if (lvl) {
                for (int i = 0; i < 8; i++)
                        if (strcasecmp(lvl, level_names[i]) == 0)
                                log_min = i;
        }
        log_json = fmt && strcmp(fmt, "json") == 0;
}

int sl_log_env_check(char *errstr, size_t errstr_size)
{
        const char *lvl = getenv("SLUICE_LOG_LEVEL");
        const char *fmt = getenv("SLUICE_LOG_FORMAT");
        int known = 0;

        if (lvl && *lvl) {
                for (int i = 0; i < 8; i++)
                        if (strcasecmp(lvl, level_names[i]) == 0)
                                known = 1;
                if (!known) {
                        snprintf(errstr, errstr_size,
                                 "SLUICE_LOG_LEVEL=\"%s\" is not a level: "
                                 "debug, info, notice, warning, err (or "
                                 "crit, alert, emerg)",
                                 lvl);
                        return -1;
                }
        }
        if (fmt && *fmt && strcmp(fmt, "kv") != 0 && strcmp(fmt, "json") != 0) {
                snprintf(errstr, errstr_size,
                         "SLUICE_LOG_FORMAT=\"%s\" is not a format: kv or "
                         "json",
                         fmt);
                return -1;
        }
        return 0;
}

void sl_log_set_level(int level)
{
        log_min = level;
}

int sl_log_level(void)
{
        return log_min;
}

const char *sl_log_role(void)
{
        return log_role;
}

const char *sl_log_instance(void)
{
        if (!log_instance[0])
                snprintf(log_instance, sizeof(log_instance), "pid:%ld",
                         (long)getpid());
        return log_instance;
}

char *sl_log_quote(const char *s, char *buf, size_t size)
{
        size_t o = 0;

        if (size < 3) {
                if (size)
                        buf[0] = '\0';
                return buf;
        }
        buf[o++] = '"';
        for (; s && *s && o + 3 < size; s++) {
                unsigned char c = (unsigned char)*s;
                if (c == '"' || c == '\\') {
                        buf[o++] = '\\';
                        buf[o++] = (char)c;
                } else if (c == '\n') {
                        buf[o++] = '\\';
                        buf[o++] = 'n';
                } else if (c < 0x20) {
                        buf[o++] = ' ';
                } else {
                        buf[o++] = (char)c;
                }
        }
        buf[o++] = '"';
        buf[o] = '\0';
        return buf;
}

/* One key=value field of a formatted line. A value is bare (up to the
 * next space) or quoted as sl_log_quote() writes it. */
struct field {
        const char *k, *v;
        size_t klen, vlen;
        int quoted;
};

static int key_char(char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
               (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

/* Reads the next field at *p. 1 with f filled, 0 at the end; a token that
 * is not key=value comes back with klen 0 (its text in v). */
static int next_field(const char **p, struct field *f)
{
        const char *s = *p, *k;

        while (*s == ' ')
                s++;
        if (!*s)
                return 0;
        memset(f, 0, sizeof(*f));
        k = s;
        while (key_char(*s))
                s++;
        if (s > k && *s == '=') {
                f->k = k;
                f->klen = (size_t)(s - k);
                s++;
        } else {
                s = k;
        }
        f->v = s;
        if (f->klen && *s == '"') {
                f->quoted = 1;
                s++;
                f->v = s;
                while (*s && *s != '"') {
                        if (*s == '\\' && s[1])
                                s++;
                        s++;
                }
                f->vlen = (size_t)(s - f->v);
                if (*s == '"')
                        s++;
        } else {
                while (*s && *s != ' ')
                        s++;
                f->vlen = (size_t)(s - f->v);
        }
        *p = s;
        return 1;
}

/* Keys whose values never reach a log line, whatever the caller passed. */
static int secret_key(const char *k, size_t n)
{
        static const char *const words[] = {
            "password", "passwd",  "secret",        "token",
            "apikey",   "api_key", "authorization", NULL};
        char low[64];

        if (n >= sizeof(low))
                n = sizeof(low) - 1;
        for (size_t i = 0; i < n; i++)
                low[i] = (char)tolower((unsigned char)k[i]);
        low[n] = '\0';
        for (int i = 0; words[i]; i++)
                if (strstr(low, words[i]))
                        return 1;
        return 0;
}

/* Appends s[0..n) as the inside of a JSON string; `unquote` undoes
 * sl_log_quote()'s escapes first. */
static void json_chars(struct sl_buf *b, const char *s, size_t n, int unquote)
{
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)s[i];
                if (unquote && c == '\\' && i + 1 < n) {
                        c = (unsigned char)s[++i];
                        if (c == 'n')
                                c = '\n';
                }
                if (c == '"' || c == '\\') {
                        char e[2] = {'\\', (char)c};
                        sl_buf_append(b, e, 2);
                } else if (c == '\n') {
                        sl_buf_puts(b, "\\n");
                } else if (c < 0x20) {
                        sl_buf_printf(b, "\\u%04x", c);
                } else {
                        sl_buf_append(b, &s[i], 1);
                }
        }
}

static int reserved_key(const char *k, size_t n)
{
        static const char *const names[] = {"ts",       "level", "role",
                                            "instance", "msg",   NULL};
        for (int i = 0; names[i]; i++)
                if (strlen(names[i]) == n && strncmp(k, names[i], n) == 0)
                        return 1;
        return 0;
}

/* An unquoted value that is a JSON number as it stands (no leading zero,
 * no '+', no hex): it is written as a number, not as a string. */
static int json_number(const char *v, size_t n)
{
        size_t i = 0;

        if (i < n && v[i] == '-')
                i++;
        if (i >= n || !isdigit((unsigned char)v[i]))
                return 0;
        if (v[i] == '0' && i + 1 < n && isdigit((unsigned char)v[i + 1]))
                return 0;
        while (i < n && isdigit((unsigned char)v[i]))
                i++;
        if (i < n && v[i] == '.') {
                i++;
                if (i >= n || !isdigit((unsigned char)v[i]))
                        return 0;
                while (i < n && isdigit((unsigned char)v[i]))
                        i++;
        }
        if (i < n && (v[i] == 'e' || v[i] == 'E')) {
                i++;
                if (i < n && (v[i] == '+' || v[i] == '-'))
                        i++;
                if (i >= n || !isdigit((unsigned char)v[i]))
                        return 0;
                while (i < n && isdigit((unsigned char)v[i]))
                        i++;
        }
        return i == n;
}

/* The line as one JSON object: ts, level, role, instance, then each
 * key=value as a member (a key that collides with those four gets a
 * leading '_'): a string, or a number when the value is an unquoted
 * number; words that are not key=value joined into "msg". */
static void render_json(struct sl_buf *b, const char *ts, int level,
                        const char *line)
{
        struct sl_buf words;
        struct field f;
        const char *p = line;

        sl_buf_init(&words, 0);
        sl_buf_printf(b, "{\"ts\":\"%s\",\"level\":\"%s\",\"role\":\"", ts,
                      level_names[level]);
        json_chars(b, log_role, strlen(log_role), 0);
        sl_buf_puts(b, "\",\"instance\":\"");
        json_chars(b, sl_log_instance(), strlen(sl_log_instance()), 0);
        sl_buf_puts(b, "\"");
        while (next_field(&p, &f)) {
                if (!f.klen) {
                        if (words.len)
                                sl_buf_puts(&words, " ");
                        sl_buf_append(&words, f.v, f.vlen);
                        continue;
                }
                sl_buf_puts(b, ",\"");
                if (reserved_key(f.k, f.klen) &&
                    !(f.klen == 3 && !strncmp(f.k, "msg", 3)))
                        sl_buf_puts(b, "_");
                json_chars(b, f.k, f.klen, 0);
                if (!f.quoted && !secret_key(f.k, f.klen) &&
                    json_number(f.v, f.vlen)) {
                        sl_buf_puts(b, "\":");
                        sl_buf_append(b, f.v, f.vlen);
                        continue;
                }
                sl_buf_puts(b, "\":\"");
                if (secret_key(f.k, f.klen))
                        sl_buf_puts(b, "***");
                else
                        json_chars(b, f.v, f.vlen, f.quoted);
                sl_buf_puts(b, "\"");
        }
        if (words.len) {
                sl_buf_puts(b, ",\"text\":\"");
                json_chars(b, words.data, words.len, 0);
                sl_buf_puts(b, "\"");
        }
        sl_buf_puts(b, "}");
        sl_buf_free(&words);
}

/* The key=value line with the values of secret-looking keys replaced. */
static void render_kv(struct sl_buf *b, const char *line)
{
        struct field f;
        const char *p = line;
        int first = 1;

        while (next_field(&p, &f)) {
                if (!first)
                        sl_buf_puts(b, " ");
                first = 0;
                if (f.klen && secret_key(f.k, f.klen)) {
                        sl_buf_append(b, f.k, f.klen);
                        sl_buf_puts(b, "=***");
                } else {
                        /* as written, quotes included */
                        const char *from = f.klen ? f.k : f.v;
                        const char *to = f.v + f.vlen + (f.quoted ? 1 : 0);
                        sl_buf_append(b, from, (size_t)(to - from));
                }
        }
}

void sl_log(int level, const char *fmt, ...)
{
        char line[4096];
        char ts[40];
        struct sl_buf b;
        va_list ap;

        if (level > log_min)
                return;
        if (level < 0)
                level = 0;
        if (level > 7)
                level = 7;
        va_start(ap, fmt);
        vsnprintf(line, sizeof(line), fmt, ap);
        va_end(ap);
        sl_time_format(sl_wall_ms(), ts, sizeof(ts));
        sl_buf_init(&b, 0);
        if (log_json) {
                render_json(&b, ts, level, line);
        } else {
                sl_buf_printf(&b, "ts=%s level=%s role=%s instance=%s ", ts,
                              level_names[level], log_role, sl_log_instance());
                render_kv(&b, line);
        }
        pthread_mutex_lock(&log_lock);
        /* a live line (sl_log_live) is cleared, the log line written in
         * its place, and the live line drawn again below it */
        fprintf(stderr, "%s%s\n%s", live_line[0] ? "\r\033[K" : "",
                b.data ? b.data : "", live_line);
        if (live_line[0])
                fflush(stderr);
        pthread_mutex_unlock(&log_lock);
        sl_buf_free(&b);
}

void sl_log_live(const char *text, int final)
{
        pthread_mutex_lock(&log_lock);
        if (!text) {
                if (live_line[0])
                        fputs("\r\033[K", stderr);
                live_line[0] = '\0';
        } else {
                snprintf(live_line, sizeof(live_line), "%s", text);
                fprintf(stderr, "\r\033[K%s%s", live_line, final ? "\n" : "");
                if (final)
                        live_line[0] = '\0';
        }
        fflush(stderr);
        pthread_mutex_unlock(&log_lock);
}
