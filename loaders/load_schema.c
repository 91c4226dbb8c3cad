/* load_schema: schema files in, table shapes out. All SQL here is constant
 * text with parameters; identifiers come only from the catalog. */
#include "load_schema.h"
#include "sl_log.h"
#include "sl_pg.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void names_index(struct load_table *t);

static int is_dir(const char *p)
{
        struct stat st;
        return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

char *load_schema_dir(const char *flag, char *errstr, size_t errstr_size)
{
        const char *root = getenv("SLUICE_ROOT");
        char *p;

        if (flag) {
                const char *d = flag;
                while (*d) {
                        size_t n = strcspn(d, ":");
                        char *one = sl_asprintf("%.*s", (int)n, d);
                        int ok = n > 0 && is_dir(one);
                        if (!ok) {
                                snprintf(errstr, errstr_size,
                                         "schema directory \"%s\": not a "
                                         "directory",
                                         one);
                                free(one);
                                return NULL;
                        }
                        free(one);
                        d += n;
                        if (*d)
                                d++;
                }
                return sl_strdup(flag);
        }
        if (is_dir("schemas"))
                return sl_strdup("schemas");
        if (root && *root) {
                p = sl_asprintf("%s/schemas", root);
                if (is_dir(p))
                        return p;
                free(p);
        }
        snprintf(errstr, errstr_size,
                 "no schema directory: tried ./schemas and "
                 "$SLUICE_ROOT/schemas (%s); give --schemas DIR",
                 root ? root : "unset");
        return NULL;
}

void load_schema_checksum(const char *s, size_t len, char *out)
{
        uint64_t h = 1469598103934665603ULL;

        for (size_t i = 0; i < len; i++) {
                h ^= (unsigned char)s[i];
                h *= 1099511628211ULL;
        }
        snprintf(out, 17, "%016llx", (unsigned long long)h);
}

static int cmp_str(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The table files, relative to dir ("tables/x.sql"), sorted. New array of
 * new strings; *n entries. */
static char **table_files(const char *dir, int *n)
{
        char *tdir = sl_asprintf("%s/tables", dir);
        DIR *d = opendir(tdir);
        struct dirent *de;
        char **v = NULL;
        int cap = 0;

        *n = 0;
        while (d && (de = readdir(d)) != NULL) {
                if (de->d_name[0] == '.' ||
                    !sl_str_has_suffix(de->d_name, ".sql"))
                        continue;
                if (*n == cap) {
                        cap = cap ? cap * 2 : 16;
                        v = sl_realloc(v, sizeof(*v) * (size_t)cap);
                }
                v[(*n)++] = sl_asprintf("tables/%s", de->d_name);
        }
        if (d)
                closedir(d);
        free(tdir);
        if (*n > 1)
                qsort(v, (size_t)*n, sizeof(*v), cmp_str);
        return v;
}

/* Reads a schema file and its checksum; what names it in errors
 * ("schema file", "schema migration"). The text (to free), or NULL. */
static char *read_schema_file(const char *path, const char *what, char *sum,
                              char *errstr, size_t errstr_size)
{
        char detail[1024], *text;
        size_t len;

        text = sl_file_read(path, &len, detail, sizeof(detail));
        if (!text) {
                snprintf(errstr, errstr_size, "%s %s: %s", what, path, detail);
                return NULL;
        }
        load_schema_checksum(text, len, sum);
        return text;
}

/* Whether sluice.schema_version records key with this checksum: 1, 0 or
 * -1 (errstr names the file). */
static int version_recorded(PGconn *conn, const char *key, const char *sum,
                            const char *what, const char *path, char *errstr,
                            size_t errstr_size)
{
        const char *params[2] = {key, sum};
        PGresult *res;
        int have;

        res = PQexecParams(conn,
                           "SELECT 1 FROM sluice.schema_version "
                           "WHERE file = $1 AND checksum = $2",
                           2, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
                snprintf(errstr, errstr_size, "%s %s: %s", what, path,
                         PQresultErrorMessage(res));
                PQclear(res);
                return -1;
        }
        have = PQntuples(res) > 0;
        PQclear(res);
        return have;
}

/* Applies one file unless its checksum is recorded (under rel, or
 * prefix/rel). 0, 1 (applied) or -1. */
static int apply_file(PGconn *conn, const char *dir, const char *rel,
                      int versioned, const char *prefix, char *errstr,
                      size_t errstr_size)
{
        char *path = sl_asprintf("%s/%s", dir, rel);
        char *key = prefix ? sl_asprintf("%s/%s", prefix, rel) : sl_strdup(rel);
        char *text = NULL, sum[17], detail[1024];
        const char *params[2];
        PGresult *res = NULL;
        int rc = -1, have;

        text = read_schema_file(path, "schema file", sum, errstr, errstr_size);
        if (!text)
                goto out;
        params[0] = key;
        params[1] = sum;
        /* Before sluice.sql first ran, the table does not exist yet. */
        have = versioned ? version_recorded(conn, key, sum, "schema file", path,
                                            errstr, errstr_size)
                         : 0;
        if (have < 0)
                goto out;
        if (have) {
                rc = 0;
                goto out;
        }
        if (sl_pg_exec(conn, text, detail, sizeof(detail)) < 0) {
                snprintf(errstr, errstr_size, "schema file %s: %s", path,
                         detail);
                goto out;
        }
        res = PQexecParams(conn,
                           "INSERT INTO sluice.schema_version AS v "
                           "(file, version, checksum) VALUES ($1, 1, $2) "
                           "ON CONFLICT (file) DO UPDATE SET "
                           "version = v.version + 1, checksum = $2, "
                           "applied_at = now()",
                           2, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
                snprintf(errstr, errstr_size,
                         "schema file %s: recording its version: %s", path,
                         PQresultErrorMessage(res));
                goto out;
        }
        sl_info("event=schema_applied file=%s checksum=%s", key, sum);
        rc = 1;
out:
        PQclear(res);
        free(text);
        free(key);
        free(path);
        return rc;
}

/* A migration's version: the file name (tables/NNN_name.sql) is digits,
 * an underscore, a name, ".sql". 1 with *version, or 0 for a plain
 * file. */
static int migration_version(const char *rel, long long *version)
{
        const char *name = strrchr(rel, '/') ? strrchr(rel, '/') + 1 : rel;
        size_t nd = strspn(name, "0123456789");
        char digits[24];

        if (nd == 0 || nd > 18 || name[nd] != '_' ||
            strlen(name + nd) <= strlen("_.sql"))
                return 0;
        memcpy(digits, name, nd);
        digits[nd] = '\0';
        return sl_parse_ll(digits, version) == 0 && *version >= 0;
}

struct migration {
        char *rel; /* tables/NNN_name.sql (borrowed from the file list) */
        long long version;
};

static int cmp_migration(const void *a, const void *b)
{
        const struct migration *x = a, *y = b;

        if (x->version != y->version)
                return x->version < y->version ? -1 : 1;
        return strcmp(x->rel, y->rel);
}

/* Applies one migration unless sluice.schema_migrations has it (dir,
 * version). One already applied must be the same file (name and
 * checksum): an edit is an error, never applied again. One recorded in
 * sluice.schema_version with the same text (applied there before
 * migrations existed) is recorded without being run. 0, 1 (applied) or
 * -1. */
static int apply_migration(PGconn *conn, const char *dir, const char *key_dir,
                           const char *prefix, const struct migration *m,
                           char *errstr, size_t errstr_size)
{
        char *path = sl_asprintf("%s/%s", dir, m->rel);
        char *key =
            prefix ? sl_asprintf("%s/%s", prefix, m->rel) : sl_strdup(m->rel);
        const char *name = m->rel + strlen("tables/");
        char *text = NULL, sum[17], ver[24], detail[1024];
        const char *params[4];
        PGresult *res = NULL;
        int rc = -1, adopt;

        text = read_schema_file(path, "schema migration", sum, errstr,
                                errstr_size);
        if (!text)
                goto out;
        snprintf(ver, sizeof(ver), "%lld", m->version);
        params[0] = key_dir;
        params[1] = ver;
        params[2] = name;
        params[3] = sum;
        res = PQexecParams(conn,
                           "SELECT name, checksum, applied_at::text FROM "
                           "sluice.schema_migrations WHERE dir = $1 AND "
                           "version = $2",
                           2, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
                snprintf(errstr, errstr_size, "schema migration %s: %s", path,
                         PQresultErrorMessage(res));
                goto out;
        }
        if (PQntuples(res) > 0) {
                if (strcmp(PQgetvalue(res, 0, 0), name) != 0) {
                        snprintf(errstr, errstr_size,
                                 "schema migration %s: version %s of %s was "
                                 "applied as %s (at %s); give this one a "
                                 "new version",
                                 path, ver, dir, PQgetvalue(res, 0, 0),
                                 PQgetvalue(res, 0, 2));
                        goto out;
                }
                if (strcmp(PQgetvalue(res, 0, 1), sum) != 0) {
                        snprintf(errstr, errstr_size,
                                 "schema migration %s: changed since it was "
                                 "applied (at %s; checksum %s, now %s); an "
                                 "applied migration is never applied again: "
                                 "restore it and put the change in a new "
                                 "numbered file",
                                 path, PQgetvalue(res, 0, 2),
                                 PQgetvalue(res, 0, 1), sum);
                        goto out;
                }
                rc = 0;
                goto out;
        }
        PQclear(res);
        res = NULL;
        adopt = version_recorded(conn, key, sum, "schema migration", path,
                                 errstr, errstr_size);
        if (adopt < 0)
                goto out;
        if (!adopt && sl_pg_exec(conn, text, detail, sizeof(detail)) < 0) {
                snprintf(errstr, errstr_size, "schema migration %s: %s", path,
                         detail);
                goto out;
        }
        res = PQexecParams(conn,
                           "INSERT INTO sluice.schema_migrations (dir, "
                           "version, name, checksum) VALUES ($1, $2, $3, $4)",
                           4, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
                snprintf(errstr, errstr_size,
                         "schema migration %s: recording it: %s", path,
                         PQresultErrorMessage(res));
                goto out;
        }
        sl_info("event=%s file=%s version=%s checksum=%s",
                adopt ? "migration_adopted" : "migration_applied", key, ver,
                sum);
        rc = adopt ? 0 : 1;
out:
        PQclear(res);
        free(text);
        free(key);
        free(path);
        return rc;
}

/* Applies the files of one schema directory: its migrations in version
 * order, then its plain table files in name order. first: the first
 * directory (its files recorded without a prefix, its migrations under
 * dir ""). 0, or -1 with errstr. */
static int apply_dir(PGconn *conn, const char *one, int first, int *applied,
                     char *errstr, size_t errstr_size)
{
        struct migration *mig = NULL;
        char **files;
        int nfiles = 0, nmig = 0, rc = -1, r;

        files = table_files(one, &nfiles);
        mig = sl_calloc((size_t)nfiles + 1, sizeof(*mig));
        for (int i = 0; i < nfiles; i++)
                if (migration_version(files[i], &mig[nmig].version))
                        mig[nmig++].rel = files[i];
        if (nmig > 1)
                qsort(mig, (size_t)nmig, sizeof(*mig), cmp_migration);
        for (int i = 0; i + 1 < nmig; i++)
                if (mig[i].version == mig[i + 1].version) {
                        snprintf(errstr, errstr_size,
                                 "schema directory %s: migrations %s and %s "
                                 "have the same version %lld",
                                 one, mig[i].rel, mig[i + 1].rel,
                                 mig[i].version);
                        goto out;
                }
        for (int i = 0; i < nmig; i++) {
                r = apply_migration(conn, one, first ? "" : one,
                                    first ? NULL : one, &mig[i], errstr,
                                    errstr_size);
                if (r < 0)
                        goto out;
                *applied += r;
        }
        for (int i = 0; i < nfiles; i++) {
                long long v;

                if (migration_version(files[i], &v))
                        continue;
                r = apply_file(conn, one, files[i], 1, first ? NULL : one,
                               errstr, errstr_size);
                if (r < 0)
                        goto out;
                *applied += r;
        }
        rc = 0;
out:
        for (int i = 0; i < nfiles; i++)
                free(files[i]);
        free(files);
        free(mig);
        return rc;
}

int load_schema_apply(PGconn *conn, const char *dir, int *applied, char *errstr,
                      size_t errstr_size)
{
        char detail[1024];
        PGresult *res = NULL;
        int rc = -1, r, versioned;

        *applied = 0;
        if (sl_pg_exec(conn, "BEGIN", detail, sizeof(detail)) < 0 ||
            sl_pg_exec(conn,
                       "SELECT pg_advisory_xact_lock("
                       "hashtext('sluice.schema_apply'))",
                       detail, sizeof(detail)) < 0) {
                snprintf(errstr, errstr_size, "applying schemas: %s", detail);
                goto out;
        }
        res = PQexec(conn, "SELECT to_regclass('sluice.schema_version') "
                           "IS NOT NULL");
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
                snprintf(errstr, errstr_size, "applying schemas: %s",
                         PQresultErrorMessage(res));
                goto out;
        }
        versioned = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
        /* dir is DIR[:DIR...]: the first holds sluice.sql and the bundled
         * tables; each further one only tables/NAME.sql (a user's own tables
         * and ALTERs), recorded under its directory's name so that its
         * files never clash with the first's */
        for (const char *d = dir; *d;) {
                size_t n = strcspn(d, ":");
                char *one = sl_asprintf("%.*s", (int)n, d);
                int first = d == dir;
                if (first) {
                        r = apply_file(conn, one, "sluice.sql", versioned, NULL,
                                       errstr, errstr_size);
                        if (r < 0) {
                                free(one);
                                goto out;
                        }
                        *applied += r;
                }
                r = apply_dir(conn, one, first, applied, errstr, errstr_size);
                free(one);
                if (r < 0)
                        goto out;
                d += n;
                if (*d)
                        d++;
        }
        if (sl_pg_exec(conn, "COMMIT", detail, sizeof(detail)) < 0) {
                snprintf(errstr, errstr_size, "applying schemas: %s", detail);
                goto out;
        }
        rc = 0;
out:
        PQclear(res);
        if (rc < 0 && PQstatus(conn) == CONNECTION_OK)
                sl_pg_exec(conn, "ROLLBACK", detail, sizeof(detail));
        return rc;
}

int load_name_valid(const char *name)
{
        if (!name || !*name || strlen(name) > 63)
                return 0;
        for (const char *p = name; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
                      *p == '_'))
                        return 0;
        return 1;
}

void load_table_destroy(struct load_table *t)
{
        if (!t)
                return;
        for (int i = 0; i < t->ncols; i++) {
                free(t->cols[i].name);
                free(t->cols[i].qname);
                free(t->cols[i].type);
        }
        for (int i = 0; i < t->nidx; i++)
                free(t->idx[i].cols);
        for (int i = 0; i < t->nabsent; i++)
                free(t->absent[i]);
        free(t->absent);
        free(t->cols);
        free(t->slots);
        free(t->idx);
        free(t->name);
        free(t->qname);
        free(t->stage);
        free(t);
}

/* New string quoted with PQescapeIdentifier, copied to our allocator. */
static char *quote_ident(PGconn *conn, const char *s)
{
        char *q = PQescapeIdentifier(conn, s, strlen(s));
        char *r;

        if (!q)
                return NULL;
        r = sl_strdup(q);
        PQfreemem(q);
        return r;
}

static enum load_col_kind kind_of(const char *category, const char *typname)
{
        if (category[0] == 'A')
                return LOAD_COL_ARRAY;
        if (strcmp(typname, "bool") == 0)
                return LOAD_COL_BOOL;
        if (strcmp(typname, "json") == 0 || strcmp(typname, "jsonb") == 0)
                return LOAD_COL_JSON;
        return LOAD_COL_SCALAR;
}

static const char *cast_of(const char *category, const char *typname)
{
        if (strcmp(typname, "json") == 0)
                return "::jsonb";
        /* geometric types and xml have no equality operator */
        if (category[0] == 'G' || strcmp(typname, "xml") == 0)
                return "::text";
        return "";
}

static enum sl_status db_failed(PGresult *res, const char *what, char *errstr,
                                size_t errstr_size)
{
        snprintf(errstr, errstr_size, "reading the catalog (%s): %s", what,
                 PQresultErrorMessage(res));
        return SL_ERR_RETRY;
}

/* The schema target tables live in (load_schema_target_set). */
static char target_schema[64] = "public";

int load_schema_target_set(const char *schema, char *errstr, size_t errstr_size)
{
        if (!schema || !*schema)
                schema = "public";
        if (!load_name_valid(schema) ||
            strlen(schema) >= sizeof(target_schema)) {
                snprintf(errstr, errstr_size,
                         "schema \"%s\" is not [a-z0-9_]+ (at most 63)",
                         schema);
                return -1;
        }
        /* PostgreSQL's own schemas: never a place for sluice's rows */
        if (sl_str_has_prefix(schema, "pg_") ||
            strcmp(schema, "information_schema") == 0 ||
            strcmp(schema, "sluice") == 0) {
                snprintf(errstr, errstr_size,
                         "schema \"%s\" is a system or bookkeeping schema, "
                         "not one for target tables",
                         schema);
                return -1;
        }
        snprintf(target_schema, sizeof(target_schema), "%s", schema);
        return 0;
}

const char *load_schema_target(void)
{
        return target_schema;
}

struct load_table *load_table_get(PGconn *conn, const char *name,
                                  enum sl_status *status, char *errstr,
                                  size_t errstr_size)
{
        struct load_table *t = NULL;
        PGresult *res = NULL;
        const char *params[2];
        char *oid = NULL, *q1 = NULL, *q2 = NULL;
        int *attnums = NULL;

        *status = SL_ERR_RECORD;
        if (!load_name_valid(name)) {
                snprintf(errstr, errstr_size,
                         "table name \"%s\" is not [a-z0-9_]+", name);
                goto fail;
        }
        /* in the target schema only: never through the search path,
         * which reaches pg_catalog (a map naming pg_description must not
         * find the catalog's table) */
        params[0] = name;
        params[1] = target_schema;
        res = PQexecParams(conn,
                           "SELECT c.oid::text, n.nspname, c.relname "
                           "FROM pg_class c JOIN pg_namespace n "
                           "ON n.oid = c.relnamespace "
                           "WHERE c.relname = $1 AND n.nspname = $2 "
                           "AND c.relkind IN ('r', 'p')",
                           2, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
                *status = db_failed(res, "table", errstr, errstr_size);
                goto fail;
        }
        if (PQntuples(res) == 0) {
                snprintf(errstr, errstr_size,
                         "table %s does not exist in schema %s (create it "
                         "in schemas/tables/)",
                         name, target_schema);
                goto fail;
        }
        t = sl_calloc(1, sizeof(*t));
        t->name = sl_strdup(name);
        t->lineage = t->loaded_at = -1;
        t->read_ms = sl_now_ms();
        oid = sl_strdup(PQgetvalue(res, 0, 0));
        q1 = quote_ident(conn, PQgetvalue(res, 0, 1));
        q2 = quote_ident(conn, PQgetvalue(res, 0, 2));
        if (!q1 || !q2) {
                snprintf(errstr, errstr_size, "quoting %s: %s", name,
                         PQerrorMessage(conn));
                *status = SL_ERR_RETRY;
                goto fail;
        }
        t->qname = sl_asprintf("%s.%s", q1, q2);
        PQclear(res);

        params[0] = oid;
        res = PQexecParams(conn,
                           "SELECT a.attname, "
                           "format_type(a.atttypid, a.atttypmod), "
                           "t.typcategory, t.typname, a.attnum "
                           "FROM pg_attribute a JOIN pg_type t "
                           "ON t.oid = a.atttypid "
                           "WHERE a.attrelid = $1::oid AND a.attnum > 0 "
                           "AND NOT a.attisdropped ORDER BY a.attnum",
                           1, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
                *status = db_failed(res, "columns", errstr, errstr_size);
                goto fail;
        }
        t->ncols = PQntuples(res);
        t->cols = sl_calloc((size_t)t->ncols + 1, sizeof(*t->cols));
        attnums = sl_calloc((size_t)t->ncols + 1, sizeof(*attnums));
        for (int i = 0; i < t->ncols; i++) {
                struct load_column *c = &t->cols[i];
                const char *cat = PQgetvalue(res, i, 2);
                const char *typ = PQgetvalue(res, i, 3);

                c->name = sl_strdup(PQgetvalue(res, i, 0));
                c->qname = quote_ident(conn, c->name);
                c->type = sl_strdup(PQgetvalue(res, i, 1));
                c->kind = kind_of(cat, typ);
                c->cmp_cast = cast_of(cat, typ);
                if (!c->qname) {
                        snprintf(errstr, errstr_size, "quoting a column: %s",
                                 PQerrorMessage(conn));
                        *status = SL_ERR_RETRY;
                        goto fail;
                }
                sl_parse_int(PQgetvalue(res, i, 4), &attnums[i]);
                if (strcmp(c->name, "_lineage") == 0)
                        t->lineage = i;
                else if (strcmp(c->name, "_loaded_at") == 0)
                        t->loaded_at = i;
        }
        PQclear(res);
        names_index(t);

        res = PQexecParams(conn,
                           "SELECT i.indexrelid::text, k.attnum "
                           "FROM pg_index i, unnest(i.indkey::int2[]) "
                           "WITH ORDINALITY AS k(attnum, ord) "
                           "WHERE i.indrelid = $1::oid AND i.indisunique "
                           "AND i.indimmediate AND i.indpred IS NULL "
                           "AND i.indexprs IS NULL "
                           "ORDER BY i.indexrelid, k.ord",
                           1, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
                *status = db_failed(res, "indexes", errstr, errstr_size);
                goto fail;
        }
        t->idx = sl_calloc((size_t)PQntuples(res) + 1, sizeof(*t->idx));
        for (int r = 0; r < PQntuples(res); r++) {
                struct load_index *ix;
                int attnum = 0, col = -1;

                if (r == 0 || strcmp(PQgetvalue(res, r, 0),
                                     PQgetvalue(res, r - 1, 0)) != 0) {
                        t->idx[t->nidx].cols =
                            sl_calloc((size_t)PQntuples(res), sizeof(int));
                        t->nidx++;
                }
                ix = &t->idx[t->nidx - 1];
                sl_parse_int(PQgetvalue(res, r, 1), &attnum);
                for (int i = 0; i < t->ncols; i++)
                        if (attnums[i] == attnum)
                                col = i;
                ix->cols[ix->ncols++] = col;
        }
        PQclear(res);
        free(attnums);
        free(oid);
        free(q1);
        free(q2);
        *status = SL_OK;
        return t;
fail:
        PQclear(res);
        free(attnums);
        free(oid);
        free(q1);
        free(q2);
        load_table_destroy(t);
        return NULL;
}

static uint32_t name_hash(const char *s)
{
        uint32_t h = 2166136261u; /* FNV-1a */

        for (; *s; s++)
                h = (h ^ (unsigned char)*s) * 16777619u;
        return h;
}

/* An open-addressing index of the column names: the loader looks a
 * column up for every value of every row, a few times each. */
static void names_index(struct load_table *t)
{
        size_t size = 16;

        while (size < (size_t)t->ncols * 2)
                size *= 2;
        t->slots = sl_calloc(size, sizeof(*t->slots));
        t->slot_mask = size - 1;
        for (int i = 0; i < t->ncols; i++) {
                size_t at = name_hash(t->cols[i].name) & t->slot_mask;

                while (t->slots[at])
                        at = (at + 1) & t->slot_mask;
                t->slots[at] = i + 1;
        }
}

int load_table_col(const struct load_table *t, const char *name)
{
        size_t at;

        if (!t->slots) { /* a table not read by load_table_get */
                for (int i = 0; i < t->ncols; i++)
                        if (strcmp(t->cols[i].name, name) == 0)
                                return i;
                return -1;
        }
        for (at = name_hash(name) & t->slot_mask; t->slots[at];
             at = (at + 1) & t->slot_mask)
                if (strcmp(t->cols[t->slots[at] - 1].name, name) == 0)
                        return t->slots[at] - 1;
        return -1;
}

static int has_col(const struct load_index *ix, int col)
{
        for (int i = 0; i < ix->ncols; i++)
                if (ix->cols[i] == col)
                        return 1;
        return 0;
}

int load_table_index(const struct load_table *t, const int *cols, int n,
                     int superset)
{
        int best = -1;

        for (int i = 0; i < t->nidx; i++) {
                const struct load_index *ix = &t->idx[i];
                int all = 1;

                if (superset ? ix->ncols < n : ix->ncols != n)
                        continue;
                for (int k = 0; k < n && all; k++)
                        all = has_col(ix, cols[k]);
                if (!all)
                        continue;
                if (best < 0 || ix->ncols < t->idx[best].ncols)
                        best = i;
        }
        return best;
}
