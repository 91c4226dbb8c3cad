/* roles.h: the entry points the `sluice` binary dispatches to. Each role's
 * *_main.c only wires; the work is in files that tests link directly. */
#ifndef SLUICE_ROLES_H
#define SLUICE_ROLES_H

#include <stdio.h>

int fetch_main(int argc, char **argv);     /* producers/fetch_main.c */
int transform_main(int argc, char **argv); /* transformers/transform_main.c */
int check_main(int argc, char **argv);     /* transformers/check_main.c */
int load_main(int argc, char **argv);      /* loaders/load_main.c */
int broker_main(int argc, char **argv);    /* cli/broker.c */
int lint_main(int argc, char **argv);      /* cli/lint.c */
int replay_main(int argc, char **argv);    /* cli/replay.c */
int status_main(int argc, char **argv);    /* cli/status.c */
int dlq_main(int argc, char **argv);       /* cli/dlq.c */
int health_main(int argc, char **argv);    /* cli/health.c */
int cursor_main(int argc, char **argv);    /* cli/cursor.c */
int lookup_main(int argc, char **argv);    /* lookups/lookup_main.c */

/* Lint hooks: validate one file, print each problem as a line
 * "FILE:LINE:COL: PATH: message" to err. 0 valid, -1 invalid. */
int fetch_source_lint(const char *path, FILE *err); /* producers/ */
int map_lint(const char *path, FILE *err);          /* transformers/ */
/* map_lint, then the effective map (its "extends" resolved) as JSON */
int map_print_effective(const char *path, FILE *out, FILE *err);
int lookup_lint(const char *path, FILE *err); /* lookups/ */

/* Exit codes every subcommand uses (documented in --help and README). */
enum {
        SL_EXIT_OK = 0,
        SL_EXIT_FAILURE = 1,  /* runtime failure: unreachable broker/db... */
        SL_EXIT_USAGE = 2,    /* bad arguments or configuration */
        SL_EXIT_MISMATCH = 3, /* check --expect differed */
        SL_EXIT_NOTHING = 4   /* check mapped nothing (no --expect) */
};

#endif
