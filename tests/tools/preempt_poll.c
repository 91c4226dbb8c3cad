/* preempt_poll.c: an LD_PRELOAD shim for fault tests. Every
 * rd_kafka_poll(rk, 0) of the process first sleeps SLUICE_PREEMPT_POLL_MS
 * (default 30) milliseconds: what a busy host does to a worker preempted
 * between producing a message and serving the reports that are due, made
 * certain instead of rare. Only non-blocking polls wait, so a worker's
 * timed waits keep their length.
 *
 * Built by the tests that use it: cc -shared -fPIC -o preempt_poll.so
 * preempt_poll.c -ldl */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <time.h>

struct rd_kafka_s;
int rd_kafka_poll(struct rd_kafka_s *rk, int timeout_ms);

int rd_kafka_poll(struct rd_kafka_s *rk, int timeout_ms)
{
        static int (*real)(struct rd_kafka_s *, int);
        static long ms = -1;

        if (!real)
                *(void **)&real = dlsym(RTLD_NEXT, "rd_kafka_poll");
        if (ms < 0) {
                const char *v = getenv("SLUICE_PREEMPT_POLL_MS");
                ms = v ? strtol(v, NULL, 10) : 30;
        }
        if (timeout_ms == 0 && ms > 0) {
                struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
                nanosleep(&ts, NULL);
        }
        return real(rk, timeout_ms);
}
