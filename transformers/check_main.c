/* placeholder until the role lands */
#include "roles.h"
int check_main(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "not implemented\n"); return 1; }
