/* sl_extends: definitions that build on others ("extends": "nvd_cve"),
 * so that a user adds a column to a bundled map, or changes a bundled
 * source's limits, without copying the file and keeping the copy in step
 * with every upgrade.
 *
 * The effective definition is the base (itself resolved first) with the
 * extension laid over it:
 *  - objects merge member by member, recursively;
 *  - a member of "fields" is replaced whole (a field is one definition);
 *  - arrays of objects that name a "table" (targets, children) merge
 *    element by element, matched on the table; new tables are appended;
 *  - any other value (strings, numbers, other arrays) is replaced;
 *  - "remove": [NAME...] in any object drops, before the merge, the field
 *    of that column, the target or child of that table, or the member of
 *    that name; a name that matches nothing is an error.
 * The result carries neither "extends" nor "remove". */
#ifndef SL_EXTENDS_H
#define SL_EXTENDS_H

#include <jansson.h>
#include <stddef.h>

/* Where a base named NAME is looked for, in order: NAME itself when it
 * holds a '/' or ends in ".json" (relative to the extending file); else
 * NAME.json in each directory of the environment variable env_var
 * (colon-separated), in the extending file's directory, and in each of
 * `bundled` (NULL-terminated; a relative one is tried in the current
 * directory and under $SLUICE_ROOT). The extending file itself is never
 * its own base. */
struct sl_extends_kind {
        const char *env_var;
        const char *const *bundled;
};

/* The effective definition of root (borrowed), read from `file`. New
 * reference; a root without "extends" comes back as a copy with "remove"
 * refused. NULL with errstr ("FILE: message") when a base cannot be found
 * or read, the chain loops, or a removal matches nothing. */
json_t *sl_extends_resolve(const struct sl_extends_kind *kind, const char *file,
                           json_t *root, char *errstr, size_t errstr_size);

#endif
