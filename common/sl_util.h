/* sl_util: allocation that aborts on exhaustion, a capped growable buffer,
 * checked number parsing, clocks and the stop flag every worker polls. */
#ifndef SL_UTIL_H
#define SL_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <signal.h>

/* The policy a caller picks for a failure: retry, dead-letter, or stop. */
enum sl_status {
        SL_OK = 0,
        SL_ERR_RETRY = 1,  /* transient: back off and try again */
        SL_ERR_RECORD = 2, /* this input is bad: dead-letter it, move on */
        SL_ERR_FATAL = 3,
};

/* Allocators: never return NULL; out of memory aborts the process. */
void *sl_malloc(size_t size);
/* A block of at least size bytes for a buffer of megabytes filled once (a
 * page of an API): from SL_BIG_BLOCK up, in steps of 256 KiB, so that
 * glibc hands a freed page's block on to the next page of a near size;
 * below, plain sl_malloc. New; *cap gets its usable size; free with
 * free() (or realloc it). */
#define SL_BIG_BLOCK ((size_t)2 << 20)
void *sl_malloc_big(size_t size, size_t *cap);
void *sl_calloc(size_t n, size_t size);
void *sl_realloc(void *ptr, size_t size);
/* New; free with free(). */
char *sl_strdup(const char *s);
/* New; free with free(). Copies at most n bytes and terminates. */
char *sl_strndup(const char *s, size_t n);
/* New; free with free(). printf into a fresh string. */
char *sl_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A growable byte buffer with a hard size cap. `data` is always
 * NUL-terminated; pointers into it stop being valid at the next append. */
struct sl_buf {
        char *data;
        size_t len;
        size_t cap; /* allocated */
        size_t max; /* hard limit on len; 0 = SL_BUF_MAX_DEFAULT */
};
#define SL_BUF_MAX_DEFAULT ((size_t)1 << 30)

void sl_buf_init(struct sl_buf *b, size_t max);
void sl_buf_free(struct sl_buf *b);
void sl_buf_reset(struct sl_buf *b);
/* Makes room for n bytes in all (a hint: never past max). The first
 * reservation of an empty buffer takes an sl_malloc_big block. */
void sl_buf_reserve(struct sl_buf *b, size_t n);
/* Returns 0, or -1 when the cap would be exceeded (nothing appended). */
int sl_buf_append(struct sl_buf *b, const void *p, size_t n);
int sl_buf_puts(struct sl_buf *b, const char *s);
int sl_buf_printf(struct sl_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Appends bytes as UTF-8, each invalid sequence replaced by U+FFFD. */
void sl_buf_utf8(struct sl_buf *b, const void *bytes, size_t n);
/* Appends bytes in base64 (RFC 4648, padded). */
void sl_buf_base64(struct sl_buf *b, const void *bytes, size_t n);
/* Hands the bytes to the caller (new; free with free()); b is emptied. */
char *sl_buf_steal(struct sl_buf *b, size_t *len);

/* Checked parsing: whole string, no overflow. 0 or -1. */
int sl_parse_ll(const char *s, long long *out);
int sl_parse_int(const char *s, int *out);
int sl_parse_double(const char *s, double *out);

/* Gives the heap's free memory back to the kernel (malloc_trim: free
 * pages inside the heaps of every arena, not only at their tops). A
 * worker calls it when it goes idle, so that an idle worker's RSS is what
 * it uses, not the most it ever used. Returns 1 when memory was returned. */
int sl_mem_release(void);
/* Registers fn to run first in sl_mem_release: a cache of freed memory
 * (sl_arena's chunk pool) hands it to malloc. Up to 4; call before
 * threads start. */
void sl_mem_on_release(void (*fn)(void));

/* Idle tracking for a worker's loop: sl_idle_turn(&idle, busy) on every
 * turn (busy: work was done), and after SL_IDLE_RELEASE_MS without work
 * it calls sl_mem_release once (then not again until the next work).
 * Returns 1 on the turn it released. Zero-initialise the struct. */
#define SL_IDLE_RELEASE_MS 2000
struct sl_idle {
        int64_t last_busy_ms;
        int released;
};
int sl_idle_turn(struct sl_idle *st, int busy);

/* CPU time of this process so far, user and system, all threads (ms). */
int64_t sl_cpu_ms(void);
int64_t sl_now_ms(void);  /* CLOCK_MONOTONIC, milliseconds */
int64_t sl_wall_ms(void); /* CLOCK_REALTIME, milliseconds since epoch */
/* Writes an RFC 3339 UTC time with milliseconds ("2024-01-02T03:04:05.678Z")
 * into buf (at least 32 bytes). Returns buf. */
char *sl_time_format(int64_t wall_ms, char *buf, size_t size);
void sl_sleep_ms(int64_t ms);

/* Set by SIGINT/SIGTERM once sl_signals_install() has run. */
extern volatile sig_atomic_t sl_stop;
void sl_signals_install(void);

/* Reads a whole file (new; free with free()); NULL with errstr on error. */
char *sl_file_read(const char *path, size_t *len, char *errstr,
                   size_t errstr_size);

/* Prints the one-line usage error every subcommand gives:
 * "sluice CMD: MESSAGE (see sluice CMD --help)". */
void sl_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

int sl_str_has_prefix(const char *s, const char *prefix);
int sl_str_has_suffix(const char *s, const char *suffix);

#endif
