/* sl_log: the one log format of every sluice process. */
#include "sl_log.h"
#include "sl_util.h"

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

/* In JSON mode the key=value fields are kept as one "fields" string: a
 * faithful, parseable line without a second formatter to keep in step. */
void sl_log(int level, const char *fmt, ...)
{
        char line[4096];
        char ts[40];
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
        pthread_mutex_lock(&log_lock);
        if (log_json) {
                char q[4200];
                fprintf(stderr,
                        "{\"ts\":\"%s\",\"level\":\"%s\",\"role\":\"%s\","
                        "\"instance\":\"%s\",\"fields\":%s}\n",
                        ts, level_names[level], log_role, sl_log_instance(),
                        sl_log_quote(line, q, sizeof(q)));
        } else {
                fprintf(stderr, "ts=%s level=%s role=%s instance=%s %s\n", ts,
                        level_names[level], log_role, sl_log_instance(), line);
        }
        pthread_mutex_unlock(&log_lock);
}
