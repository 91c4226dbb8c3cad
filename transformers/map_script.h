/* map_script.h: sandboxed Lua 5.4 scripts in transform maps. A map with
 * scripts owns one Lua state (struct map_lua) in which every script of the
 * map is compiled once, when the map loads; each record then runs them with
 * an instruction budget and a memory cap. The sandbox has no io, os,
 * package, debug, coroutine, load, require or string.dump, takes no
 * bytecode, and its globals and libraries are read-only, so nothing of one
 * record reaches the next. Its one global of sluice's own is emit(), which
 * a target's record script calls to add rows. Not thread-safe: one state serves
 * the thread that maps (a transformer applies its maps on one thread). */
#ifndef SLUICE_MAP_SCRIPT_H
#define SLUICE_MAP_SCRIPT_H

#include <jansson.h>
#include <stddef.h>

struct map_lua;

/* One compiled script: a reference into its state's registry. */
struct map_script {
        struct map_lua *lua; /* borrowed from the map */
        int ref;
        char *name; /* chunk name in messages ("fields.risk.script") */
};

#define MAP_SCRIPT_INSTRUCTIONS_DEFAULT 1000000L
#define MAP_SCRIPT_MEMORY_DEFAULT       ((size_t)16 << 20)
#define MAP_SCRIPT_ROWS_DEFAULT         1000

/* A sandboxed state whose calls may each run `instructions` Lua VM
 * instructions and allocate `memory` bytes beyond what the state held
 * before the call. New; free with map_lua_destroy(). NULL with errstr. */
struct map_lua *map_lua_new(long instructions, size_t memory, char *errstr,
                            size_t errstr_size);
void map_lua_destroy(struct map_lua *l);

/* The page of the record being mapped, `page` in scripts (borrowed; the
 * caller keeps it alive while it maps the page's records; NULL: nil). */
void map_lua_set_page(struct map_lua *l, json_t *page);

/* Compiles src as text (never bytecode) into out. An expression alone is
 * taken as "return EXPR". 0, or -1 with the compiler's message
 * ("NAME:LINE: ...") in errstr. */
int map_script_compile(struct map_lua *l, const char *name, const char *src,
                       struct map_script *out, char *errstr,
                       size_t errstr_size);
void map_script_free(struct map_script *s);

/* Runs a field script on rec (parent may be NULL). New reference (json
 * null for nil), or NULL with errstr ("NAME:LINE: message", or the budget
 * or memory cap that stopped it). */
json_t *map_script_value(struct map_script *s, json_t *rec, json_t *parent,
                         char *errstr, size_t errstr_size);

/* What a record script may add with emit(row[, child]): rows of its own
 * table, or of one of its child tables named in `children` (borrowed).
 * A call may emit `max` rows at most; each counts against the memory cap
 * (the bytes of its JSON text). */
struct map_script_emit {
        const char *const *children;
        size_t nchildren;
        size_t max;
};

/* Runs a target's record script on rec with `row` the mapped row (a
 * table the script may change). Returns 1 when the script returned false
 * (drop the record), 0 with *out set (new reference: the row table as the
 * script left it, or the table it returned), -1 with errstr. With ex (NULL:
 * emit() is an error in this script) and emitted, *emitted is set when the
 * call returns 0 or 1: a new array of the rows the script emitted, in
 * order, each {"child": I, "line": N, "row": {COLUMN: VALUE...}} (I 0 for
 * the target's own table, else its child table ex->children[I - 1]; N the
 * script's line); when it returns -1 nothing it emitted is kept. */
int map_script_row(struct map_script *s, json_t *rec, json_t *parent,
                   json_t *row, const struct map_script_emit *ex, json_t **out,
                   json_t **emitted, char *errstr, size_t errstr_size);

#endif
