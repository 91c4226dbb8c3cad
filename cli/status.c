/* placeholder */
#include "roles.h"
int status_main(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "not implemented\n"); return 1; }
