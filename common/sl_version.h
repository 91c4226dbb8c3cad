/* sl_version: the version this binary was built from. */
#ifndef SL_VERSION_H
#define SL_VERSION_H

/* `git describe --tags --always --dirty` when the Makefile ran (the
 * SLUICE_VERSION make variable overrides it; the image build passes it),
 * "unknown" without git. Borrowed; static. */
const char *sl_version(void);

#endif
