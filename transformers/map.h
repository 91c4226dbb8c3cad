/* map.h: the transform-map engine: loads a declarative map (JSON), checks
 * it, and applies it to raw pages, producing mapped.<table> envelopes and
 * dead letters through callbacks. No Kafka or PostgreSQL in here, so the
 * worker, `sluice check` and the unit tests share one code path. */
#ifndef SLUICE_MAP_H
#define SLUICE_MAP_H

#include <stdio.h>
#include <jansson.h>
#include <regex.h>
#include <stddef.h>
#include <stdint.h>

#include "map_script.h"

enum map_type {
        MAP_T_TEXT,
        MAP_T_INTEGER,
        MAP_T_BIGINT,
        MAP_T_NUMERIC,
        MAP_T_BOOLEAN,
        MAP_T_TIMESTAMPTZ,
        MAP_T_DATE,
        MAP_T_UUID,
        MAP_T_INET,
        MAP_T_CIDR,
        MAP_T_TEXT_ARRAY,
        MAP_T_JSONB,
};

enum map_on_error {
        MAP_ON_ERROR_REJECT,
        MAP_ON_ERROR_NULL,
        MAP_ON_ERROR_DEFAULT
};
enum map_unknown { MAP_UNKNOWN_CREATE, MAP_UNKNOWN_IGNORE, MAP_UNKNOWN_REJECT };

/* A source path: relative to the record, or, with a leading "^", to the
 * parent (the page for a top-level record, the parent record for a child
 * row). */
struct map_path {
        struct sl_jsonpath *jp;
        int parent;
        int single;
        char *text; /* as written */
};

enum map_fn_kind {
        MAP_FN_LOWER,
        MAP_FN_UPPER,
        MAP_FN_TRIM,
        MAP_FN_REGEX_EXTRACT,
        MAP_FN_REGEX_REPLACE,
        MAP_FN_SPLIT,
        MAP_FN_JOIN,
        MAP_FN_DEFAULT,
        MAP_FN_LENGTH,
};

struct map_fn {
        enum map_fn_kind kind;
        regex_t re;
        int has_re;
        int group;     /* regex_extract */
        char *arg;     /* split/join separator, regex_replace replacement */
        json_t *value; /* default */
};

struct map_tmpl_part {
        char *lit;            /* literal text, or NULL for a path */
        struct map_path path; /* when lit == NULL */
};

enum map_tz_kind { MAP_TZ_UTC, MAP_TZ_OFFSET, MAP_TZ_NAMED };

struct map_field {
        char *column;
        struct map_path *paths; /* tried in order until one is not null */
        size_t npaths;
        json_t *constant; /* when set, the value */
        struct map_tmpl_part *tmpl;
        size_t ntmpl;
        int has_tmpl;
        enum map_type type;
        char **formats; /* timestamptz/date source formats */
        size_t nformats;
        enum map_tz_kind tz_kind;
        long tz_offset; /* seconds east of UTC */
        char *tz_name;
        struct map_fn *fns;
        size_t nfns;
        json_t *choices; /* value map; keys lower-cased when choices_ci */
        int choices_ci;
        enum map_unknown unknown;
        enum map_on_error on_error;
        json_t *def;
        int required;
        struct map_script *script; /* the value from Lua, or NULL */
};

enum map_cond_op {
        MAP_COND_EQ,
        MAP_COND_NE,
        MAP_COND_IN,
        MAP_COND_NOT_IN,
        MAP_COND_EXISTS,
        MAP_COND_MATCHES,
};

struct map_cond {
        struct map_path path;
        enum map_cond_op op;
        json_t *value; /* EQ/NE: literal; IN/NOT_IN: array; EXISTS: bool */
        regex_t re;
        int has_re;
};

/* A target: records selected from the page (or from a parent record, for a
 * child table) become rows of one table. */
struct map_target {
        char *table;
        char *topic;                 /* mapped.<table> */
        struct sl_jsonpath *records; /* NULL: the records_path header, or $ */
        char *records_text;
        /* further records paths, tried in order when the ones before
         * select nothing (a page shape that varies: {"urls": [...]} or
         * a bare array) */
        struct sl_jsonpath **records_alt;
        size_t nalt;
        struct map_cond *where;
        size_t nwhere;
        char **coalesce;
        size_t ncoalesce;
        int ci;        /* coalesce case-insensitive */
        char *version; /* version column, or NULL */
        struct map_field *fields;
        size_t nfields;
        struct map_target *children;
        size_t nchildren;
        /* child tables only: child column <- parent column */
        char **pk_child;
        char **pk_parent;
        size_t npk;
        int is_child;
        struct map_script *script; /* per-record Lua, or NULL */
        const char **child_names;  /* children[i].table, for emit() */
        char **reads;              /* normalized source paths read, for drift */
        size_t nreads;
        /* counters */
        uint64_t in, out, ignored, skipped, rejected;
};

struct map {
        char *name;
        char *source;
        char *topic; /* raw.<source> unless the map says otherwise */
        char *file;
        struct map_target *targets;
        size_t ntargets;
        /* the "^..." paths of top-level targets (they read the page
         * around the record): map_apply_bytes decodes the page without
         * its records only when none reads inside them */
        char **page_reads;
        size_t npage_reads;
        /* the Lua state of the map's scripts (NULL: none), and its
         * per-record limits */
        struct map_lua *lua;
        int script_page; /* a script names page or parent: decode it */
        long script_instructions;
        size_t script_memory;
        size_t script_rows; /* rows a record script may emit per record */
};

/* Where a record came from; every pointer may be NULL. */
struct map_lineage {
        const char *source;
        const char *run;
        const char *topic;
        int32_t partition;
        int64_t offset;
        const char *fetched_at;
        const char *page;
        const char *chunk;
};

/* Callbacks that receive the engine's output. Envelopes and letters are
 * borrowed for the duration of the call. A non-zero return from row or
 * dead stops the page and is returned by map_apply_page. */
struct map_emit {
        int (*row)(void *opaque, const char *topic, const char *key,
                   size_t key_len, json_t *envelope);
        int (*dead)(void *opaque, const char *key, json_t *letter);
        /* optional: a record skipped (empty key) or ignored (filtered) */
        void (*note)(void *opaque, const char *what, const char *table,
                     const char *reason, json_t *record);
        /* optional: each top-level record a target selected */
        void (*record)(void *opaque, size_t target, json_t *record);
        void *opaque;
        /* non-zero: map_apply_bytes builds each record's trees in an
         * arena (sl_arena.h) dropped after the record; set only when the
         * callbacks keep nothing of what they are given past the call
         * (the transformer writes each envelope as text at once) */
        int record_arena;
};

/* Loads and checks the map in `path`. New; free with map_destroy(). NULL
 * when the file is unreadable or invalid: then *errs (new; free with
 * free()) holds one "FILE:LINE:COL: PATH: message" line per problem. */
struct map *map_load(const char *path, char **errs);
struct map *map_loadb(const char *name, const char *text, size_t len,
                      char **errs);
void map_destroy(struct map *m);

/* The map in `path` as the engine reads it: its "extends" chain resolved
 * (sl_extends.h; bases are looked up in $SLUICE_MAPS_PATH, the file's
 * directory, then the bundled maps). New reference; free with
 * json_decref(). NULL with *errs (new; free with free()). */
json_t *map_effective(const char *path, char **errs);

/* Writes the map language's option reference (Markdown) generated from the
 * option tables that validate maps; docs/maps.md holds a copy that a test
 * compares. */
void map_reference(FILE *fp);

/* Applies the map to one decoded page. records_hdr is the records_path
 * header of the raw message (may be NULL); it is used only for targets
 * whose map names no records path. Returns 0, or the first non-zero value
 * a callback returned. */
int map_apply_page(struct map *m, json_t *page, const char *records_hdr,
                   const struct map_lineage *lin, const struct map_emit *em);

/* A dead letter for a page that could not be decoded: the bytes go in
 * "page" as a string (invalid UTF-8 replaced by U+FFFD). New reference. */
/* map_apply_page on the page's bytes, without decoding the page as a
 * whole when its records can be located in the text (sparse_records in
 * map_apply.c): each record is decoded, mapped and freed in turn, the
 * page around them decoded once. The output is the same. Returns
 * MAP_NOT_APPLIED when it cannot (the bytes are not JSON Jansson's
 * strict reader takes, the path is not a plain member path, a "^" path
 * reads inside the records, ...): then decode the page and call
 * map_apply_page. */
#define MAP_NOT_APPLIED (-1000)
/* Non-zero: map_apply_bytes always answers MAP_NOT_APPLIED (the tests
 * compare both ways). */
extern int map_sparse_off;
/* Pages map_apply_bytes applied (the tests check the bundled maps take
 * that way). */
extern unsigned long map_sparse_pages;
int map_apply_bytes(struct map *m, const char *bytes, size_t len,
                    const char *records_hdr, const struct map_lineage *lin,
                    const struct map_emit *em);

json_t *map_dead_page(const struct map *m, const char *bytes, size_t len,
                      const char *error, const struct map_lineage *lin);

/* Evaluates one field on a record (parent may be NULL). Returns 0 and sets
 * *out (new reference, json null for no value), or -1 with errstr when the
 * record must be rejected. */
int map_field_eval(const struct map_field *f, json_t *rec, json_t *parent,
                   json_t **out, char *errstr, size_t errstr_size);

/* The value at p (new reference), or NULL when there is none or it is
 * null. A path with wildcards or filters gives the array of its matches
 * (NULL when none). */
json_t *map_path_value(const struct map_path *p, json_t *rec, json_t *parent);

/* Text of a scalar (new; free with free()), NULL for null, arrays and
 * objects. */
char *map_scalar_text(json_t *v);

/* Converts v (borrowed) to the field's type. Returns a new reference, or
 * NULL with errstr. Exposed for tests. */
json_t *map_convert(const struct map_field *f, json_t *v, char *errstr,
                    size_t errstr_size);

/* Applies one function to v (borrowed). New reference or NULL with errstr. */
json_t *map_fn_apply(const struct map_fn *fn, json_t *v, char *errstr,
                     size_t errstr_size);

/* Normalized paths for drift reports: "a.b[*].c". 1 when a target's field
 * maps, filters or children read the source path `norm`. */
int map_reads_path(const struct map *m, size_t target, const char *norm);

/* Writes the normalized form of a JSON path into buf. */
void map_path_normalize(const char *path, char *buf, size_t size);

/* Logs the counters (event=map_stats ...) for every target. */
void map_log_stats(const struct map *m, const char *when);

const char *map_type_name(enum map_type t);

#endif
