/* cli_opt.c: the option errors of every getopt_long subcommand. */
#include "cli_opt.h"
#include "sl_util.h"

#include <getopt.h>
#include <string.h>

void cli_opt_error(const char *cmd, int opt, char **argv)
{
        /* getopt_long leaves optind past the offending word; for a short
         * option inside a cluster optopt names it */
        const char *word = optind > 0 ? argv[optind - 1] : "";

        if (opt == ':') {
                if (strncmp(word, "--", 2) == 0)
                        sl_usage_error(cmd, "%s wants a value", word);
                else
                        sl_usage_error(cmd, "-%c wants a value", optopt);
        } else if (strncmp(word, "--", 2) == 0) {
                size_t n = strcspn(word, "=");
                sl_usage_error(cmd, "unknown option %.*s", (int)n, word);
        } else if (optopt) {
                sl_usage_error(cmd, "unknown option -%c", optopt);
        } else {
                sl_usage_error(cmd, "unknown option %s", word);
        }
}
