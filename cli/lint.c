/* lint.c: `sluice lint FILE...`: validates source definitions and maps,
 * telling them apart by their shape (a source has "request"). */
#include "roles.h"
#include "sl_config.h"
#include "sl_util.h"

#include <stdio.h>
#include <string.h>

int lint_main(int argc, char **argv)
{
        int bad = 0;

        if (argc < 2) {
                fprintf(stderr, "usage: sluice lint FILE...\n");
                return SL_EXIT_USAGE;
        }
        if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
                printf("usage: sluice lint FILE...\n\n"
                       "Validates source definitions (files with a "
                       "\"request\" key) and transform maps.\nEach problem "
                       "is printed as FILE:LINE:COL: PATH: message. Exit 0 "
                       "when every file\nis valid, 2 otherwise.\n");
                return SL_EXIT_OK;
        }
        for (int i = 1; i < argc; i++) {
                if (argv[i][0] == '-') {
                        sl_usage_error("lint", "unknown option %s", argv[i]);
                        return SL_EXIT_USAGE;
                }
        }
        for (int i = 1; i < argc; i++) {
                char errstr[512];
                json_t *root = sl_config_load(argv[i], errstr, sizeof(errstr));
                int rc;

                if (!root) {
                        fprintf(stderr, "%s\n", errstr);
                        bad++;
                        continue;
                }
                if (json_is_object(root) && json_object_get(root, "request"))
                        rc = fetch_source_lint(argv[i], stderr);
                else
                        rc = map_lint(argv[i], stderr);
                json_decref(root);
                if (rc < 0)
                        bad++;
                else
                        printf("%s: ok\n", argv[i]);
        }
        return bad ? SL_EXIT_USAGE : SL_EXIT_OK;
}
