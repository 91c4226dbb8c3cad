/* check_main.c: `sluice check MAP PAGE [--expect ROWS.json]`: dry-runs a
 * map on a sample page: rows on stdout (JSON lines), dead letters, skipped
 * and ignored records and drift on stderr. */
#include "cli_opt.h"
#include "map_check.h"
#include "roles.h"
#include "sl_config.h"
#include "sl_jsondump.h"
#include "sl_log.h"
#include "sl_util.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *fp)
{
        fprintf(fp,
                "usage: sluice check MAP.json PAGE.json [--expect ROWS.json] "
                "[--records-path PATH]\n"
                "       sluice check --effective MAP.json\n\n"
                "Dry-runs a transform map on a sample page. Prints the "
                "mapped.* envelopes it\nwould produce as JSON lines on "
                "stdout; dead letters, skipped and ignored\nrecords, source "
                "fields no map field reads (drift) and a summary on "
                "stderr.\n\n"
                "  --expect FILE        compare with FILE: a JSON array (or "
                "JSON lines) of\n"
                "                       expected outputs; members left out "
                "of an expected\n"
                "                       object (e.g. lineage) are not "
                "compared\n"
                "  --records-path PATH  the records_path header the page "
                "would carry\n"
                "  --reference          print the map language's option "
                "reference (Markdown)\n"
                "  --effective          print the map as the worker reads "
                "it (its \"extends\"\n"
                "                       chain resolved) and exit\n\n"
                "exit codes: 0 ok, 2 bad map or usage, 3 --expect "
                "differed, 4 no rows: the map\nselected no record, or "
                "every record was dead-lettered, skipped or ignored\n"
                "(without --expect; with it, the comparison decides)\n");
}

/* A JSON array, or JSON lines, as a new array. */
static json_t *load_expect(const char *path, char *errstr, size_t errstr_size)
{
        size_t len = 0;
        char *text = sl_file_read(path, &len, errstr, errstr_size);
        json_t *arr;
        json_error_t jerr;

        if (!text)
                return NULL;
        arr = json_loadb(text, len, JSON_ALLOW_NUL, &jerr);
        if (!arr) {
                /* JSON lines */
                const char *p = text;
                arr = json_array();
                while (*p) {
                        size_t n = strcspn(p, "\n");
                        json_t *v;
                        if (n > 0 && strspn(p, " \t\r") < n) {
                                v = json_loadb(p, n, JSON_ALLOW_NUL, &jerr);
                                if (!v) {
                                        snprintf(errstr, errstr_size,
                                                 "%s: not a JSON array or "
                                                 "JSON lines: %s",
                                                 path, jerr.text);
                                        json_decref(arr);
                                        free(text);
                                        return NULL;
                                }
                                json_array_append_new(arr, v);
                        }
                        p += n;
                        if (*p)
                                p++;
                }
        }
        free(text);
        if (!json_is_array(arr)) {
                snprintf(errstr, errstr_size, "%s: expected a JSON array",
                         path);
                json_decref(arr);
                return NULL;
        }
        return arr;
}

int check_main(int argc, char **argv)
{
        const char *map_path = NULL, *page_path = NULL, *expect_path = NULL;
        const char *records_hdr = NULL;
        struct map_check_drift drift = {0};
        struct map *m = NULL;
        char *errs = NULL, *page = NULL;
        json_t *out = NULL, *want = NULL;
        char errstr[1024];
        size_t len = 0, i;
        size_t rows = 0, dead = 0, skipped = 0, ignored = 0;
        json_t *v;
        int rc = SL_EXIT_USAGE, opt, effective = 0;
        static const struct option longopts[] = {
            {"expect", required_argument, NULL, 'e'},
            {"records-path", required_argument, NULL, 'r'},
            {"reference", no_argument, NULL, 'R'},
            {"effective", no_argument, NULL, 'E'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };

        sl_log_init("check");
        optind = 1;
        while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
                switch (opt) {
                case 'h':
                        usage(stdout);
                        return SL_EXIT_OK;
                case 'R':
                        map_reference(stdout);
                        return SL_EXIT_OK;
                case 'e':
                        expect_path = optarg;
                        break;
                case 'E':
                        effective = 1;
                        break;
                case 'r':
                        records_hdr = optarg;
                        break;
                default:
                        cli_opt_error("check", opt, argv);
                        return SL_EXIT_USAGE;
                }
        }
        if (optind < argc)
                map_path = argv[optind++];
        if (optind < argc)
                page_path = argv[optind++];
        if (optind < argc) {
                sl_usage_error("check", "unexpected argument \"%s\"",
                               argv[optind]);
                return SL_EXIT_USAGE;
        }
        if (effective && map_path && !page_path)
                return map_print_effective(map_path, stdout, stderr) == 0
                           ? SL_EXIT_OK
                           : SL_EXIT_USAGE;
        if (!map_path || !page_path) {
                sl_usage_error("check", "expected MAP.json and PAGE.json");
                return SL_EXIT_USAGE;
        }
        m = map_load(map_path, &errs);
        if (!m) {
                fputs(errs ? errs : "invalid map\n", stderr);
                goto out;
        }
        page = sl_file_read(page_path, &len, errstr, sizeof(errstr));
        if (!page) {
                fprintf(stderr, "sluice check: %s\n", errstr);
                goto out;
        }
        if (expect_path) {
                want = load_expect(expect_path, errstr, sizeof(errstr));
                if (!want) {
                        fprintf(stderr, "sluice check: %s\n", errstr);
                        goto out;
                }
        }
        out = map_check_run(m, page, len, records_hdr, &drift);
        json_array_foreach(out, i, v)
        {
                /* the transformer's text, reals and all */
                char *line = sl_json_dumps(v, JSON_ENCODE_ANY, NULL);
                if (json_object_get(v, "note")) {
                        const char *what =
                            json_string_value(json_object_get(v, "note"));
                        if (strcmp(what, "skipped") == 0)
                                skipped++;
                        else
                                ignored++;
                        fprintf(
                            stderr, "%s: %s: %s\n", what,
                            json_string_value(json_object_get(v, "table")),
                            json_string_value(json_object_get(v, "reason")));
                } else if (json_object_get(v, "stage")) {
                        dead++;
                        fprintf(stderr, "dead letter: %s\n%s\n",
                                json_string_value(json_object_get(v, "error")),
                                line ? line : "");
                } else {
                        rows +=
                            json_is_array(json_object_get(v, "rows"))
                                ? json_array_size(json_object_get(v, "rows"))
                                : 1;
                        printf("%s\n", line ? line : "");
                }
                free(line);
        }
        map_check_drift_report(m, &drift, stderr);
        fprintf(stderr,
                "check: %s on %s: %zu records, %zu rows, %zu dead letters, "
                "%zu skipped, %zu ignored\n",
                m->name, page_path, drift.records, rows, dead, skipped,
                ignored);
        rc = SL_EXIT_OK;
        /* a check that maps nothing fails, unless --expect says that
         * nothing is what this page should give */
        if (rows == 0 && !want) {
                if (drift.records == 0)
                        fprintf(stderr,
                                "check: no rows: the map selected no record "
                                "of the page (its records path?)\n");
                else
                        fprintf(stderr,
                                "check: no rows: none of the %zu records "
                                "became a row (%zu dead letters, %zu "
                                "skipped, %zu ignored)\n",
                                drift.records, dead, skipped, ignored);
                rc = SL_EXIT_NOTHING;
        }
        if (want) {
                /* notes are not outputs of the pipeline: compare the rest */
                json_t *cmp = json_array();
                json_array_foreach(out, i, v)
                {
                        if (!json_object_get(v, "note"))
                                json_array_append(cmp, v);
                }
                if (map_check_compare(cmp, want, errstr, sizeof(errstr)) < 0) {
                        fprintf(stderr, "check: --expect %s differs: %s\n",
                                expect_path, errstr);
                        rc = SL_EXIT_MISMATCH;
                } else {
                        fprintf(stderr, "check: matches %s\n", expect_path);
                }
                json_decref(cmp);
        }
out:
        fflush(stdout);
        map_check_drift_free(&drift);
        json_decref(want);
        json_decref(out);
        free(page);
        free(errs);
        map_destroy(m);
        return rc;
}
