/* map_check.h: dry runs of a map on a page in memory (`sluice check`, the
 * golden tests). */
#ifndef SLUICE_MAP_CHECK_H
#define SLUICE_MAP_CHECK_H

#include "map.h"

#include <stdio.h>

/* Source fields seen in the records, for the drift report. */
struct map_check_drift {
        json_t *counts; /* "target\x1fpath": records holding it */
        size_t records;
};

/* Runs m over the page bytes. Returns a new array (free with json_decref)
 * of everything the map emitted, in order: mapped.* envelopes, dead letters
 * ("stage": "transform") and notes ({"note": "skipped"|"ignored", "table",
 * "reason"}). A page that is not JSON gives one dead letter. drift may be
 * NULL; else it is filled (free with map_check_drift_free). */
json_t *map_check_run(struct map *m, const char *bytes, size_t len,
                      const char *records_hdr, struct map_check_drift *drift);

/* Prints one "drift: ..." line per source field no map field reads. */
void map_check_drift_report(const struct map *m,
                            const struct map_check_drift *drift, FILE *fp);
void map_check_drift_free(struct map_check_drift *drift);

/* Compares outputs with an expected array: same length, and each expected
 * object's members equal the output's (members the expectation leaves out,
 * e.g. lineage, are not compared). 0 when equal, else -1 and msg says
 * where they differ. */
int map_check_compare(json_t *got, json_t *want, char *msg, size_t msg_size);

#endif
