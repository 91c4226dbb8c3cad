/* sl_config: loads declarative JSON files (source definitions, maps) with
 * errors that name the file, line and column, and validates their keys
 * against a declarative option table. */
#ifndef SL_CONFIG_H
#define SL_CONFIG_H

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

/* New reference; free with json_decref(). NULL with errstr
 * "FILE:LINE:COL: message" on a syntax error or an unreadable file.
 * Decoding rejects duplicate object keys (JSON_REJECT_DUPLICATES). */
json_t *sl_config_load(const char *path, char *errstr, size_t errstr_size);

/* Same for a buffer; `name` stands for the file in messages. */
json_t *sl_config_loadb(const char *name, const char *buf, size_t len,
                        char *errstr, size_t errstr_size);

/* Position of a value in its source text, when known. Jansson keeps no
 * positions for decoded values, so sl_config_locate() finds the line and
 * column of the key `path` ("a.b[2].c") by re-scanning the text. */
struct sl_config_pos {
        int line;
        int column;
};

/* Returns 0 and sets pos when the member path was found in text, -1 when
 * not (pos then is 1:1). */
int sl_config_locate(const char *text, const char *path,
                     struct sl_config_pos *pos);

/* The kinds of value an option accepts. */
enum sl_opt_type {
        SL_OPT_STRING,
        SL_OPT_INT,
        SL_OPT_NUMBER,
        SL_OPT_BOOL,
        SL_OPT_OBJECT,
        SL_OPT_ARRAY,
        SL_OPT_ANY,
        SL_OPT_STRING_OR_ARRAY,
};

/* One row of an option table: the single description of a key, from which
 * validation, --help and the docs come. A table ends with name == NULL. */
struct sl_opt {
        const char *name;
        enum sl_opt_type type;
        int required;
        const char *def;  /* default, as text; NULL for none */
        const char *help; /* one line */
};

const char *sl_opt_type_name(enum sl_opt_type t);

/* Writes one option table as a Markdown section ("### `name`", the help
 * line, then a table of key, type, required, default, meaning): the
 * reference docs are generated from the same tables that validate. */
void sl_opt_reference(FILE *fp, const char *name, const char *help,
                      const struct sl_opt *table);

/* Checks obj against the table: unknown keys, missing required keys, wrong
 * types. Appends one "FILE:LINE:COL: PATH.KEY: message" line per problem to
 * *errs (a growing string, new; free with free()). `where` is the member
 * path of obj in the file ("" for the root), `text` the file's text (for
 * positions; may be NULL). Returns the number of problems found. */
int sl_opt_check(const struct sl_opt *table, json_t *obj, const char *file,
                 const char *text, const char *where, char **errs);

/* Appends a formatted problem line to *errs, locating `path` in text. */
void sl_config_problem(char **errs, const char *file, const char *text,
                       const char *path, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Replaces each ${env:NAME} in s with the variable's value. New; free with
 * free(). NULL with errstr naming the variable when one is unset. */
char *sl_config_expand_env(const char *s, char *errstr, size_t errstr_size);

/* Appends `arg` to *files, or, when `arg` is a directory, the *.json files
 * in it in name order ("maps/" stands for every bundled map). The strings
 * are new; the caller frees each and the array. 0, or -1 with errstr when
 * the directory cannot be read. */
int sl_config_expand(const char *arg, char ***files, size_t *n, char *errstr,
                     size_t errstr_size);

#endif
