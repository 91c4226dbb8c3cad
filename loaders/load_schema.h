/* load_schema: applies sluice.sql and tables/NAME.sql of a schema directory,
 * idempotently, recording each file's version and checksum in
 * sluice.schema_version (migrations, tables/NNN_name.sql, once each, in
 * sluice.schema_migrations); and reads a target table's shape from the
 * catalog (columns, types, unique indexes) for the loader. */
#ifndef LOAD_SCHEMA_H
#define LOAD_SCHEMA_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "copy_encode.h"
#include "sl_util.h"

/* The schema directory to use: `flag` when given (DIR or DIR:DIR...,
 * each checked), else "schemas" in the current directory, else
 * $SLUICE_ROOT/schemas. New; free with free().
 * NULL with errstr naming what was tried. */
char *load_schema_dir(const char *flag, char *errstr, size_t errstr_size);

/* Applies DIR/sluice.sql then DIR/tables/NAME.sql (in name order) in one
 * transaction under an advisory lock; a file whose checksum is already
 * recorded is skipped. dir may be DIR:DIR2...: each further directory's
 * tables/NAME.sql follow, in order, recorded as DIR2/tables/NAME.sql.
 * In each directory, the migrations tables/NNN_name.sql come first, in
 * version order, each applied once and recorded in
 * sluice.schema_migrations (an applied one whose checksum changed is an
 * error). *applied gets the number of files (re)applied. 0, or -1 with
 * errstr naming the file and PostgreSQL's message. */
int load_schema_apply(PGconn *conn, const char *dir, int *applied, char *errstr,
                      size_t errstr_size);

/* FNV-1a 64 of the bytes, as 16 hex digits into out (at least 17 bytes). */
void load_schema_checksum(const char *s, size_t len, char *out);

struct load_column {
        char *name;  /* as in the catalog */
        char *qname; /* quoted with PQescapeIdentifier */
        char *type;  /* format_type(), e.g. "character varying(20)" */
        enum load_col_kind kind;
        /* What to cast to when comparing with IS DISTINCT FROM: json has
         * no equality operator, so it is compared as jsonb. "" for none. */
        const char *cmp_cast;
};

struct load_index {
        int *cols; /* column indexes into load_table.cols */
        int ncols;
};

struct load_table {
        char *name;  /* as envelopes name it */
        char *qname; /* "schema"."table", quoted */
        struct load_column *cols;
        int ncols;
        int *slots; /* column index + 1 by name hash, 0 when free (owned) */
        size_t slot_mask;
        struct load_index *idx; /* non-partial unique indexes */
        int nidx;
        int lineage;     /* index of _lineage, or -1 */
        int loaded_at;   /* index of _loaded_at, or -1 */
        char *stage;     /* the loader's staging table for it on the
                            connection that read it (pg_temp."_sl_stage_..."),
                            or NULL before it is made */
        long unchecked;  /* rows this connection replaced in it since it
                            last looked at its statistics */
        long unanalyzed; /* ... since it last analyzed it */
        int no_analyze;  /* PostgreSQL refused this role's ANALYZE of it
                            (not its owner): not asked again */
        int64_t read_ms; /* sl_now_ms() when read from the catalog */
        char **absent;   /* names rows gave that were not columns when it
                            was read (owned): not a reason to read it again
                            soon (load_batch.c) */
        int nabsent;
};

/* The schema that holds the target tables: "public" unless set (the
 * loader's --schema, or SLUICE_SCHEMA). A name that is not [a-z0-9_]+, or
 * names a system schema (pg_*, information_schema) or sluice's own, is
 * refused: 0, or -1 with errstr. */
int load_schema_target_set(const char *schema, char *errstr,
                           size_t errstr_size);
/* Borrowed; valid until the next load_schema_target_set. */
const char *load_schema_target(void);

/* Reads table `name` ([a-z0-9_]+, in the target schema only, never
 * through the search path) from the catalog. New; free with
 * load_table_destroy(). NULL with errstr; *status is SL_ERR_RECORD when the
 * table does not exist (or the name is not valid), SL_ERR_RETRY when the
 * database failed. */
struct load_table *load_table_get(PGconn *conn, const char *name,
                                  enum sl_status *status, char *errstr,
                                  size_t errstr_size);
void load_table_destroy(struct load_table *t);

/* Index of column `name` in t, or -1. */
int load_table_col(const struct load_table *t, const char *name);

/* The unique index whose columns are exactly the set cols[0..n) (any
 * order), or with superset != 0 the smallest one containing them all.
 * Its position in t->idx, or -1. */
int load_table_index(const struct load_table *t, const int *cols, int n,
                     int superset);

/* 1 when name is a valid table/topic name part: [a-z0-9_]+. */
int load_name_valid(const char *name);

#endif
