/* placeholder */
#include "roles.h"
int replay_main(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "not implemented\n"); return 1; }
