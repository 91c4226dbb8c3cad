/* cursor.c: `sluice cursor show|set|reset SOURCE`: a source's incremental
 * cursor in sluice.state. Writing takes the source's stand-by lock first
 * (producers/fetch_out.c), as a fetcher does before it syncs: a fetcher
 * that holds it is running, and the write is refused; while the command
 * holds it, a fetcher that starts stands by, and reads the new cursor when
 * it takes over. */
#include "cli_opt.h"
#include "fetch_out.h"
#include "roles.h"
#include "sl_config.h"
#include "sl_kafka.h"
#include "sl_log.h"
#include "sl_util.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void cursor_usage(FILE *fp)
{
        fprintf(fp,
                "usage: sluice cursor show SOURCE [--json]\n"
                "       sluice cursor set SOURCE VALUE [--wait SEC]\n"
                "       sluice cursor reset SOURCE [--wait SEC]\n\n"
                "A source's incremental cursor, as the fetcher keeps it in "
                "sluice.state (the\nnewest message keyed by the source's "
                "name). SOURCE is the source's name or\nits definition file "
                "(producers/sources/nvd.json).\n\n"
                "  show   print the recorded state: cursor, run, pages, "
                "records, updated_at\n"
                "  set    record VALUE as the cursor: the next sync asks "
                "for what changed since\n"
                "  reset  forget the cursor: the next sync is a full "
                "one\n\n"
                "set and reset first take the source's stand-by lock "
                "(consumer group\nsluice-fetch-<source> on "
                "sluice.fetch_lock), and refuse while a fetcher of the\n"
                "source holds it: stop the fetcher first. A fetcher "
                "killed without a clean\nstop holds it until its session "
                "times out (6 s by default).\n\n"
                "  --json      show: the state as JSON (null when none)\n"
                "  --wait SEC  how long to try for the lock (default 15)\n"
                "  --kafka prop=value  any librdkafka property\n\n"
                "environment: SLUICE_BROKERS, SLUICE_KAFKA_<PROP>\n"
                "exit codes: 0 ok, 1 Kafka unreachable, the lock held by a "
                "fetcher, or the\nwrite not read back, 2 bad usage\n");
}

/* The source name from a name or a definition file. 0, or -1 with errstr. */
static int source_name(const char *arg, char *name, size_t name_size,
                       char *errstr, size_t errstr_size)
{
        size_t n = strlen(arg);
        json_t *root;
        const char *v;

        if (n > 5 && strcmp(arg + n - 5, ".json") == 0) {
                root = sl_config_load(arg, errstr, errstr_size);
                if (!root)
                        return -1;
                v = json_string_value(json_object_get(root, "name"));
                if (!v || !json_object_get(root, "request")) {
                        snprintf(errstr, errstr_size,
                                 "%s is not a source definition (no \"name\" "
                                 "and \"request\")",
                                 arg);
                        json_decref(root);
                        return -1;
                }
                snprintf(name, name_size, "%s", v);
                json_decref(root);
        } else {
                snprintf(name, name_size, "%s", arg);
        }
        if (!name[0] || strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_") !=
                            strlen(name)) {
                snprintf(errstr, errstr_size,
                         "\"%s\" is not a source name (a-z, 0-9, _)", name);
                return -1;
        }
        return 0;
}

static void print_state(const char *source, json_t *state, int json_out)
{
        const char *keys[] = {"cursor",  "run",        "pages",
                              "records", "updated_at", NULL};

        if (json_out) {
                if (state)
                        json_dumpf(state, stdout,
                                   JSON_INDENT(2) | JSON_SORT_KEYS);
                else
                        fputs("null", stdout);
                fputs("\n", stdout);
                return;
        }
        if (!state) {
                printf("%s: no state recorded (the next sync is a full "
                       "one)\n",
                       source);
                return;
        }
        printf("source      %s\n", source);
        for (int i = 0; keys[i]; i++) {
                json_t *v = json_object_get(state, keys[i]);
                char *text;
                if (!v)
                        continue;
                if (json_is_null(v)) {
                        printf("%-11s (none: the next sync is a full one)\n",
                               keys[i]);
                        continue;
                }
                text = json_is_string(v)
                           ? sl_strdup(json_string_value(v))
                           : json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
                printf("%-11s %s\n", keys[i], text ? text : "");
                free(text);
        }
}

/* Takes the source's lock within wait_s seconds. 0 when owned, -1 with
 * errstr when Kafka fails or another member (a fetcher) holds it. */
static int lock_take(struct fetch_lock *l, const char *source, int wait_s,
                     char *errstr, size_t errstr_size)
{
        int64_t until;

        if (fetch_lock_init(l, source, errstr, errstr_size) < 0)
                return -1;
        until = sl_now_ms() + (int64_t)wait_s * 1000;
        while (!sl_stop && sl_now_ms() < until)
                if (fetch_lock_poll(l, 200))
                        return 0;
        snprintf(errstr, errstr_size,
                 "the lock of source %s is held: a fetcher of it is running "
                 "(or stopped without a clean exit less than a session "
                 "timeout ago); stop it first, then try again",
                 source);
        return -1;
}

/* Writes the new state of source (cursor NULL: none). 0 or -1. */
static int state_write(const char *source, const char *cursor, const char *verb,
                       char *errstr, size_t errstr_size)
{
        rd_kafka_t *rk = NULL;
        rd_kafka_resp_err_t err;
        json_t *v = NULL;
        char *text = NULL, when[40], run[64];
        int rc = -1;

        sl_time_format(sl_wall_ms(), when, sizeof(when));
        snprintf(run, sizeof(run), "cursor-%s-%lld", verb,
                 (long long)sl_wall_ms());
        v = json_pack("{s:s, s:o, s:s, s:i, s:i, s:s}", "source", source,
                      "cursor", cursor ? json_string(cursor) : json_null(),
                      "run", run, "pages", 0, "records", 0, "updated_at", when);
        text = json_dumps(v, JSON_COMPACT);
        rk = sl_kafka_producer_new(NULL, errstr, errstr_size);
        if (!rk)
                goto out;
        err = sl_kafka_produce(rk, FETCH_STATE_TOPIC, RD_KAFKA_PARTITION_UA,
                               source, strlen(source), text, strlen(text), NULL,
                               NULL);
        if (err || sl_kafka_flush(rk, 30000) != 0) {
                snprintf(errstr, errstr_size, "could not write to %s on %s: %s",
                         FETCH_STATE_TOPIC, sl_kafka_brokers(),
                         err ? rd_kafka_err2str(err) : "not delivered in 30 s");
                goto out;
        }
        rc = 0;
out:
        if (rk)
                rd_kafka_destroy(rk);
        free(text);
        json_decref(v);
        return rc;
}

/* set/reset: lock, write, read back, release. */
static int cursor_change(const char *source, const char *cursor,
                         const char *verb, int wait_s)
{
        struct fetch_lock lock;
        json_t *state = NULL, *got;
        char errstr[512];
        int rc = SL_EXIT_FAILURE;

        /* lock_take initialises lock whatever happens */
        if (lock_take(&lock, source, wait_s, errstr, sizeof(errstr)) < 0) {
                fprintf(stderr, "sluice cursor %s: %s\n", verb, errstr);
                /* never owned, and the process ends now (fetch_out.h) */
                fetch_lock_abandon(&lock);
                goto out;
        }
        if (state_write(source, cursor, verb, errstr, sizeof(errstr)) < 0 ||
            fetch_state_read(source, &state, errstr, sizeof(errstr)) < 0) {
                fprintf(stderr, "sluice cursor %s: %s\n", verb, errstr);
                goto out;
        }
        /* what a fetcher will read is what was written */
        got = json_object_get(state, "cursor");
        if (!state || (cursor ? !json_is_string(got) ||
                                    strcmp(json_string_value(got), cursor) != 0
                              : !json_is_null(got))) {
                fprintf(stderr,
                        "sluice cursor %s: %s does not read back as "
                        "written\n",
                        verb, FETCH_STATE_TOPIC);
                goto out;
        }
        print_state(source, state, 0);
        rc = SL_EXIT_OK;
out:
        json_decref(state);
        fetch_lock_free(&lock);
        return rc;
}

int cursor_main(int argc, char **argv)
{
        static const struct option longopts[] = {
            {"json", no_argument, NULL, 'j'},
            {"wait", required_argument, NULL, 'w'},
            {"kafka", required_argument, NULL, 'X'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        const char *verb, *value = NULL;
        char source[128], errstr[512];
        json_t *state = NULL;
        int opt, json_out = 0, wait_s = 15;
        int nargs;

        sl_log_init("cursor");
        if (!getenv("SLUICE_LOG_LEVEL"))
                sl_log_set_level(LOG_CRIT); /* it says what failed itself */
        optind = 1;
        while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
                switch (opt) {
                case 'h':
                        cursor_usage(stdout);
                        return SL_EXIT_OK;
                case 'j':
                        json_out = 1;
                        break;
                case 'w':
                        if (sl_parse_int(optarg, &wait_s) < 0 || wait_s < 1) {
                                fprintf(stderr,
                                        "sluice cursor: --wait wants "
                                        "seconds, got \"%s\"\n",
                                        optarg);
                                return SL_EXIT_USAGE;
                        }
                        break;
                case 'X':
                        if (sl_kafka_prop_add(optarg, errstr, sizeof(errstr)) <
                            0) {
                                fprintf(stderr, "sluice cursor: %s\n", errstr);
                                return SL_EXIT_USAGE;
                        }
                        break;
                default:
                        cli_opt_error("cursor", opt, argv);
                        return SL_EXIT_USAGE;
                }
        }
        nargs = argc - optind;
        if (nargs < 2) {
                sl_usage_error("cursor", "expected show, set or reset, and "
                                         "a SOURCE");
                return SL_EXIT_USAGE;
        }
        verb = argv[optind];
        if (strcmp(verb, "set") == 0) {
                if (nargs != 3) {
                        sl_usage_error("cursor", "set wants SOURCE VALUE");
                        return SL_EXIT_USAGE;
                }
                value = argv[optind + 2];
        } else if ((strcmp(verb, "show") == 0 || strcmp(verb, "reset") == 0)) {
                if (nargs != 2) {
                        sl_usage_error("cursor", "%s wants only SOURCE", verb);
                        return SL_EXIT_USAGE;
                }
        } else {
                sl_usage_error("cursor", "unknown subcommand \"%s\"", verb);
                return SL_EXIT_USAGE;
        }
        if (json_out && strcmp(verb, "show") != 0) {
                sl_usage_error("cursor", "--json is for show");
                return SL_EXIT_USAGE;
        }
        if (source_name(argv[optind + 1], source, sizeof(source), errstr,
                        sizeof(errstr)) < 0) {
                fprintf(stderr, "sluice cursor: %s\n", errstr);
                return SL_EXIT_USAGE;
        }
        sl_signals_install();
        if (strcmp(verb, "show") == 0) {
                if (fetch_state_read(source, &state, errstr, sizeof(errstr)) <
                    0) {
                        fprintf(stderr, "sluice cursor show: %s\n", errstr);
                        return SL_EXIT_FAILURE;
                }
                print_state(source, state, json_out);
                json_decref(state);
                return SL_EXIT_OK;
        }
        return cursor_change(source, value, verb, wait_s);
}
