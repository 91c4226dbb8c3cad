/* placeholder until the worker lands */
#include "roles.h"
int load_main(int argc, char **argv)
{
        (void)argc;
        (void)argv;
        return 1;
}
