/* lint.c: `sluice lint FILE|DIR...`: validates lookup definitions, source
 * definitions and maps, telling them apart by their shape (a lookup has
 * "input", a source "request"); with
 * --topics, lists the topics they need. */
#include "cli_opt.h"
#include "fetch_source.h"
#include "map.h"
#include "roles.h"
#include "sl_config.h"
#include "sl_util.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void lint_usage(FILE *fp)
{
        fprintf(fp,
                "usage: sluice lint [--topics | --effective] FILE|DIR...\n\n"
                "Validates lookup definitions (files with an \"input\" "
                "key), source\ndefinitions (files with a \"request\" "
                "key) and transform maps;\na directory stands for the "
                "*.json files in it. Each problem is printed as\n"
                "FILE:LINE:COL: PATH: message.\n\n"
                "  --topics  print instead the topics the files need, "
                "each once, one a line:\n"
                "            raw.<name> for a source, raw.<source> and "
                "every mapped.<table>\n"
                "            (children included) for a map. The compose "
                "stack's topic-init\n"
                "            creates them.\n"
                "  --effective  print each valid map as the worker reads "
                "it: its \"extends\"\n"
                "            chain resolved, on stdout\n\n"
                "exit codes: 0 every file valid, 2 otherwise\n");
}

/* A source definition has "request", itself or through its "extends"
 * (an extension of a bundled source may say only what it changes). With
 * eff, the effective definition (new reference) when it is a source. */
static int is_source(const char *path, json_t *root, json_t **eff)
{
        char *errs = NULL;
        json_t *e;

        *eff = NULL;
        if (!json_is_object(root))
                return 0;
        if (!json_object_get(root, "extends"))
                return json_object_get(root, "request") != NULL;
        e = fetch_source_effective(path, root, &errs);
        free(errs);
        if (e && json_object_get(e, "request")) {
                *eff = e;
                return 1;
        }
        json_decref(e);
        return json_object_get(root, "request") != NULL;
}

/* Prints topic unless seen (the set of topics printed so far) has it:
 * a map and its source both need raw.<source>, printed once. */
static void topic_out(json_t *seen, const char *topic)
{
        if (json_object_get(seen, topic))
                return;
        json_object_set_new(seen, topic, json_true());
        printf("%s\n", topic);
}

static void print_target_topics(json_t *seen, const struct map_target *t,
                                size_t n)
{
        for (size_t i = 0; i < n; i++) {
                topic_out(seen, t[i].topic);
                print_target_topics(seen, t[i].children, t[i].nchildren);
        }
}

/* The topics one valid file needs, to stdout. 0, or -1 when the file
 * does not load (its problems are printed by the lint pass). */
static int print_topics(json_t *seen, const char *path, json_t *root)
{
        char raw[256];
        struct map *m;
        char *errs = NULL;

        if (json_object_get(root, "request")) {
                /* root: the effective definition of a source, or a
                 * lookup (which has "input" too): both publish to
                 * raw.<name>; a lookup also to dlq.lookup */
                const char *name =
                    json_string_value(json_object_get(root, "name"));
                if (!name)
                        return -1;
                snprintf(raw, sizeof(raw), "raw.%s", name);
                topic_out(seen, raw);
                if (json_object_get(root, "input"))
                        topic_out(seen, "dlq.lookup");
                return 0;
        }
        m = map_load(path, &errs);
        free(errs);
        if (!m)
                return -1;
        topic_out(seen, m->topic);
        print_target_topics(seen, m->targets, m->ntargets);
        map_destroy(m);
        return 0;
}

int lint_main(int argc, char **argv)
{
        static const struct option longopts[] = {
            {"topics", no_argument, NULL, 't'},
            {"effective", no_argument, NULL, 'E'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        char **files = NULL;
        size_t nfiles = 0;
        json_t *seen = NULL;
        char errstr[512];
        int bad = 0, topics = 0, effective = 0, opt, rc = SL_EXIT_USAGE;

        optind = 1;
        while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
                switch (opt) {
                case 't':
                        topics = 1;
                        break;
                case 'E':
                        effective = 1;
                        break;
                case 'h':
                        lint_usage(stdout);
                        return SL_EXIT_OK;
                default:
                        cli_opt_error("lint", opt, argv);
                        return SL_EXIT_USAGE;
                }
        }
        if (optind >= argc) {
                sl_usage_error("lint", "expected at least one FILE");
                return SL_EXIT_USAGE;
        }
        seen = json_object();
        for (int i = optind; i < argc; i++)
                if (sl_config_expand(argv[i], &files, &nfiles, errstr,
                                     sizeof(errstr)) < 0) {
                        fprintf(stderr, "sluice lint: %s\n", errstr);
                        goto out;
                }
        for (size_t i = 0; i < nfiles; i++) {
                json_t *root = sl_config_load(files[i], errstr, sizeof(errstr));
                json_t *eff = NULL;
                int lrc;

                if (!root) {
                        fprintf(stderr, "%s\n", errstr);
                        bad++;
                        continue;
                }
                if (json_is_object(root) && json_object_get(root, "input")) {
                        lrc = lookup_lint(files[i], stderr);
                        if (lrc == 0 && effective) {
                                json_dumpf(root, stdout, JSON_INDENT(2));
                                fputc('\n', stdout);
                        }
                } else if (is_source(files[i], root, &eff)) {
                        lrc = fetch_source_lint(files[i], stderr);
                        if (lrc == 0 && effective && eff) {
                                json_dumpf(eff, stdout, JSON_INDENT(2));
                                fputc('\n', stdout);
                        } else if (lrc == 0 && effective) {
                                json_dumpf(root, stdout, JSON_INDENT(2));
                                fputc('\n', stdout);
                        }
                } else if (effective)
                        lrc = map_print_effective(files[i], stdout, stderr);
                else
                        lrc = map_lint(files[i], stderr);
                if (lrc == 0 && topics)
                        lrc = print_topics(seen, files[i], eff ? eff : root);
                json_decref(eff);
                json_decref(root);
                if (lrc < 0)
                        bad++;
                else if (!topics && !effective)
                        printf("%s: ok\n", files[i]);
        }
        rc = bad ? SL_EXIT_USAGE : SL_EXIT_OK;
out:
        for (size_t i = 0; i < nfiles; i++)
                free(files[i]);
        free(files);
        json_decref(seen);
        return rc;
}
