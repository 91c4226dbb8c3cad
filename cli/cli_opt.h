/* cli_opt.h: one wording for the option errors getopt_long reports, so
 * every subcommand says "unknown option --x" or "--x wants a value". */
#ifndef SLUICE_CLI_OPT_H
#define SLUICE_CLI_OPT_H

/* Prints the error for getopt_long's return `opt` ('?' or ':', with the
 * option string starting with ':') to stderr as "sluice CMD: ... (see
 * sluice CMD --help)". Call right after getopt_long returned it. */
void cli_opt_error(const char *cmd, int opt, char **argv);

#endif
