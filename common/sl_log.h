/* sl_log: one line per event on stderr, syslog levels, key=value fields,
 * the role and instance on every line. Secrets are never passed here. */
#ifndef SL_LOG_H
#define SL_LOG_H

#include <stddef.h>
#include <syslog.h>

/* Sets the role ("fetch", "transform", ...) and the instance id that every
 * line carries, and the lowest level printed (LOG_DEBUG..LOG_EMERG).
 * SLUICE_LOG_LEVEL (debug|info|notice|warning|err) and SLUICE_LOG_FORMAT
 * (kv|json) in the environment override the defaults. */
void sl_log_init(const char *role);

/* 0 when SLUICE_LOG_LEVEL and SLUICE_LOG_FORMAT are unset, empty or known
 * values; -1 with errstr naming the variable, its value and the values it
 * takes (main() refuses to start on it: sl_log_init ignores them). */
int sl_log_env_check(char *errstr, size_t errstr_size);
void sl_log_set_level(int level);
int sl_log_level(void);
const char *sl_log_role(void);
const char *sl_log_instance(void);

/* fmt carries the event's own fields: "event=page source=%s page=%d". A
 * free-text message goes in msg="...": use sl_log_quote() for values that
 * may hold spaces or quotes. */
void sl_log(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Writes s quoted for a key=value line into buf (always terminated).
 * Returns buf. */
char *sl_log_quote(const char *s, char *buf, size_t size);

/* A live line on a terminal (a fetch's progress): drawn in place on
 * stderr and kept below the log lines, which are written above it rather
 * than over it. `final` ends it with a newline; NULL erases it. Only for
 * a stderr that is a terminal. */
void sl_log_live(const char *text, int final);

#define sl_err(...)    sl_log(LOG_ERR, __VA_ARGS__)
#define sl_warn(...)   sl_log(LOG_WARNING, __VA_ARGS__)
#define sl_notice(...) sl_log(LOG_NOTICE, __VA_ARGS__)
#define sl_info(...)   sl_log(LOG_INFO, __VA_ARGS__)
#define sl_debug(...)  sl_log(LOG_DEBUG, __VA_ARGS__)

#endif
