/* map_script.h: sandboxed Lua 5.4 scripts in transform maps. A map with
 * scripts owns one Lua state (struct map_lua) in which every script of the
 * map is compiled once, when the map loads; each record then runs them with
 * an instruction budget and a memory cap. The sandbox has no io, os,
 * package, debug, coroutine, load, require or string.dump, takes no
 * bytecode, and its globals and libraries are read-only, so nothing of one
 * record reaches the next. Not thread-safe: one state serves the thread
 * that maps (a transformer applies its maps on one thread). */
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

/* Runs a target's record script on rec with `row` the mapped row (a
 * table the script may change). Returns 1 when the script returned false
 * (drop the record), 0 with *out set (new reference: the row table as the
 * script left it, or the table it returned), -1 with errstr. */
int map_script_row(struct map_script *s, json_t *rec, json_t *parent,
                   json_t *row, json_t **out, char *errstr, size_t errstr_size);

#endif
