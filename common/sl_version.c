/* sl_version.c: the build's version, from the Makefile's -DSLUICE_VERSION
 * (only this file gets it, and is rebuilt when it changes). */
#include "sl_version.h"

#ifndef SLUICE_VERSION
#define SLUICE_VERSION "unknown"
#endif

const char *sl_version(void)
{
        return SLUICE_VERSION[0] ? SLUICE_VERSION : "unknown";
}
