/* placeholder until the role lands */
#include "roles.h"
int transform_main(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "not implemented\n"); return 1; }
int map_lint(const char *path, FILE *err) { fprintf(err, "%s: not implemented\n", path); return -1; }
