/* map_script.c: the Lua sandbox of transform-map scripts. Lua 5.4 (not
 * LuaJIT: its compiled traces ignore the count hook that stops a runaway
 * script, and its numbers have no 64-bit integers; docs/maps.md, Scripts).
 *
 * A record reaches a script as a read-only view (a userdata per JSON
 * object or array, made when the script reads it), not as a copy: most
 * scripts read a few members of a large record. The view of a record is
 * dead once its call returns (a generation counter), so a script cannot
 * keep a pointer into freed JSON. */
#include "map_script.h"
#include "sl_util.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct map_lua {
        lua_State *L;
        long instructions; /* per call */
        size_t memory;     /* per call, bytes */
        size_t used;       /* bytes the state holds */
        size_t charged;    /* bytes of the rows the call emitted */
        size_t limit;      /* used + charged may not pass it; 0: no limit */
        int over_budget;
        int over_memory;
        int over_rows;
        int line; /* where the budget or the memory ran out, 0: unknown */
        unsigned gen;
        int env; /* registry reference of the sandbox's globals */
        json_t *page;
        struct call *cur; /* the call running, for emit() */
};

#define JSON_VIEW "sluice.json"
/* the deepest table a script may return */
#define MAX_DEPTH 64

struct jview {
        json_t *v; /* borrowed from the record being mapped */
        unsigned gen;
};

static struct map_lua *state_of(lua_State *L)
{
        struct map_lua *l;

        memcpy(&l, lua_getextraspace(L), sizeof(l));
        return l;
}

/* The line of the innermost Lua function running (0 when none). */
static int current_line(lua_State *L)
{
        lua_Debug ar;

        for (int level = 0; level < 8 && lua_getstack(L, level, &ar); level++)
                if (lua_getinfo(L, "l", &ar) && ar.currentline > 0)
                        return ar.currentline;
        return 0;
}

/* Every block of the state goes through here: a call may grow the state
 * by `memory` bytes at most. Lua turns a refusal into a memory error (after
 * a full collection), which ends the call. */
static void *lalloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
        struct map_lua *l = ud;
        size_t old = ptr ? osize : 0;
        void *p;

        if (nsize == 0) {
                free(ptr);
                l->used -= old;
                return NULL;
        }
        if (l->limit && nsize > old &&
            l->used - old + nsize + l->charged > l->limit) {
                if (!l->over_memory && l->L)
                        l->line = current_line(l->L);
                l->over_memory = 1;
                return NULL;
        }
        p = realloc(ptr, nsize);
        if (!p)
                return NULL;
        l->used = l->used - old + nsize;
        return p;
}

/* The count hook: the budget is spent. From here on every instruction
 * fails, so a script that catches the error with pcall cannot go on. */
static void hook(lua_State *L, lua_Debug *ar)
{
        struct map_lua *l = state_of(L);

        if (!l->over_budget) {
                l->over_budget = 1;
                if (lua_getinfo(L, "l", ar))
                        l->line = ar->currentline;
                lua_sethook(L, hook, LUA_MASKCOUNT, 1);
        }
        lua_pushliteral(L, "instruction budget exceeded");
        lua_error(L);
}

static void push_json(lua_State *L, struct map_lua *l, json_t *v)
{
        struct jview *jv;

        switch (json_typeof(v ? v : json_null())) {
        case JSON_OBJECT:
        case JSON_ARRAY:
                jv = lua_newuserdatauv(L, sizeof(*jv), 0);
                jv->v = v;
                jv->gen = l->gen;
                luaL_setmetatable(L, JSON_VIEW);
                break;
        case JSON_STRING:
                lua_pushlstring(L, json_string_value(v), json_string_length(v));
                break;
        case JSON_INTEGER:
                lua_pushinteger(L, (lua_Integer)json_integer_value(v));
                break;
        case JSON_REAL:
                lua_pushnumber(L, json_real_value(v));
                break;
        case JSON_TRUE:
                lua_pushboolean(L, 1);
                break;
        case JSON_FALSE:
                lua_pushboolean(L, 0);
                break;
        case JSON_NULL:
                lua_pushnil(L);
                break;
        }
}

static struct jview *view_check(lua_State *L, int idx)
{
        struct jview *jv = luaL_checkudata(L, idx, JSON_VIEW);

        if (jv->gen != state_of(L)->gen)
                luaL_error(L, "a record's value used after its record");
        return jv;
}

static int view_index(lua_State *L)
{
        struct jview *jv = view_check(L, 1);
        json_t *v = NULL;

        if (json_is_object(jv->v)) {
                if (lua_type(L, 2) == LUA_TSTRING)
                        v = json_object_get(jv->v, lua_tostring(L, 2));
        } else if (lua_isinteger(L, 2)) {
                lua_Integer i = lua_tointeger(L, 2);
                if (i >= 1 && (size_t)i <= json_array_size(jv->v))
                        v = json_array_get(jv->v, (size_t)(i - 1));
        }
        push_json(L, state_of(L), v);
        return 1;
}

static int view_len(lua_State *L)
{
        struct jview *jv = view_check(L, 1);

        lua_pushinteger(L, json_is_object(jv->v)
                               ? (lua_Integer)json_object_size(jv->v)
                               : (lua_Integer)json_array_size(jv->v));
        return 1;
}

static int view_readonly(lua_State *L)
{
        return luaL_error(L, "record values are read-only");
}

/* next() over a view: members in the record's order, elements 1..n */
static int view_next(lua_State *L)
{
        struct jview *jv = view_check(L, 1);
        struct map_lua *l = state_of(L);

        if (json_is_array(jv->v)) {
                lua_Integer i = lua_isnil(L, 2) ? 0 : luaL_checkinteger(L, 2);
                if (i < 0 || (size_t)i >= json_array_size(jv->v))
                        return 0;
                lua_pushinteger(L, i + 1);
                push_json(L, l, json_array_get(jv->v, (size_t)i));
                return 2;
        }
        {
                void *it;
                if (lua_isnil(L, 2)) {
                        it = json_object_iter(jv->v);
                } else {
                        it = json_object_iter_at(jv->v, luaL_checkstring(L, 2));
                        it = it ? json_object_iter_next(jv->v, it) : NULL;
                }
                if (!it)
                        return 0;
                lua_pushstring(L, json_object_iter_key(it));
                push_json(L, l, json_object_iter_value(it));
                return 2;
        }
}

static int view_pairs(lua_State *L)
{
        view_check(L, 1);
        lua_pushcfunction(L, view_next);
        lua_pushvalue(L, 1);
        lua_pushnil(L);
        return 3;
}

/* setmetatable without __gc and __close: a finalizer runs with hooks off
 * (no budget) at a time no record owns */
static int safe_setmetatable(lua_State *L)
{
        int t = lua_type(L, 2);

        luaL_checktype(L, 1, LUA_TTABLE);
        luaL_argexpected(L, t == LUA_TNIL || t == LUA_TTABLE, 2,
                         "nil or table");
        if (t == LUA_TTABLE) {
                lua_getfield(L, 2, "__gc");
                lua_getfield(L, 2, "__close");
                if (!lua_isnil(L, -1) || !lua_isnil(L, -2))
                        return luaL_error(L, "__gc and __close are not "
                                             "allowed in scripts");
                lua_pop(L, 2);
        }
        if (luaL_getmetafield(L, 1, "__metatable") != LUA_TNIL)
                return luaL_error(L, "cannot change a protected metatable");
        lua_settop(L, 2);
        lua_setmetatable(L, 1);
        return 1;
}

/* Leaves a read-only view of the table at the top in its place: an empty
 * table whose metatable reads from it and refuses writes. */
static void readonly(lua_State *L)
{
        lua_newtable(L);          /* proxy */
        lua_createtable(L, 0, 3); /* its metatable */
        lua_pushvalue(L, -3);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, view_readonly);
        lua_setfield(L, -2, "__newindex");
        lua_pushboolean(L, 0);
        lua_setfield(L, -2, "__metatable");
        lua_setmetatable(L, -2);
        lua_remove(L, -2);
}

/* Not xpcall: an error the count hook raises runs the message handler
 * inside the hook, where hooks are off, so a handler could loop forever. */
static const char *const base_safe[] = {
    "assert", "error",        "ipairs",   "next", "pairs",    "pcall",
    "select", "tonumber",     "tostring", "type", "rawequal", "rawlen",
    "rawget", "getmetatable", "_VERSION", NULL};

static int lua_emit(lua_State *L);

/* Most of a find's work is in C, where the budget does not count: a
 * plain find costs up to subject x needle byte compares, capped here.
 * Lua patterns (find, match, gmatch, gsub) are left out of the sandbox
 * altogether: a pattern such as ".-.-.-b" backtracks for hours on a long
 * subject, in C. */
#define FIND_WORK_MAX 100000000.0

static int plain_find(lua_State *L)
{
        size_t ls, lp;

        luaL_checklstring(L, 1, &ls);
        luaL_checklstring(L, 2, &lp);
        if ((double)ls * (double)lp > FIND_WORK_MAX)
                return luaL_error(L,
                                  "string.find: subject and needle too "
                                  "long (their product passes %d)",
                                  (int)FIND_WORK_MAX);
        lua_settop(L, 3);
        lua_pushvalue(L, lua_upvalueindex(1));
        lua_insert(L, 1);
        lua_pushboolean(L, 1);
        lua_call(L, 4, LUA_MULTRET);
        return lua_gettop(L);
}

/* Copies the named members of the library table at lib (all of them when
 * names is NULL, but those in drop) into a new table, made read-only, and
 * stores it in the table at env under `name`. */
static void add_lib(lua_State *L, int env, const char *name, int lib,
                    const char *const *drop)
{
        lua_newtable(L);
        lua_pushnil(L);
        while (lua_next(L, lib)) {
                int skip = 0;
                for (const char *const *d = drop; d && *d; d++)
                        if (lua_type(L, -2) == LUA_TSTRING &&
                            strcmp(lua_tostring(L, -2), *d) == 0)
                                skip = 1;
                if (skip) {
                        lua_pop(L, 1);
                        continue;
                }
                lua_pushvalue(L, -2);
                lua_insert(L, -2);
                lua_rawset(L, -4);
        }
        readonly(L);
        lua_setfield(L, env, name);
}

static int sandbox_open(lua_State *L)
{
        static const char *const no_string[] = {"dump",   "find", "match",
                                                "gmatch", "gsub", NULL};
        static const char *const no_math[] = {"random", "randomseed", NULL};
        static const luaL_Reg view_mt[] = {{"__index", view_index},
                                           {"__newindex", view_readonly},
                                           {"__len", view_len},
                                           {"__pairs", view_pairs},
                                           {NULL, NULL}};
        int env, g;

        luaL_requiref(L, LUA_GNAME, luaopen_base, 1);
        g = lua_gettop(L);
        luaL_requiref(L, LUA_STRLIBNAME, luaopen_string, 0);
        luaL_requiref(L, LUA_TABLIBNAME, luaopen_table, 0);
        luaL_requiref(L, LUA_MATHLIBNAME, luaopen_math, 0);
        luaL_requiref(L, LUA_UTF8LIBNAME, luaopen_utf8, 0);
        lua_newtable(L);
        env = lua_gettop(L);
        for (const char *const *n = base_safe; *n; n++) {
                lua_getfield(L, g, *n);
                lua_setfield(L, env, *n);
        }
        lua_pushcfunction(L, safe_setmetatable);
        lua_setfield(L, env, "setmetatable");
        lua_pushcfunction(L, lua_emit);
        lua_setfield(L, env, "emit");
        add_lib(L, env, "string", g + 1, no_string);
        /* string.find, plain only: the copy's metatable holds the copy */
        lua_getfield(L, env, "string");
        lua_getmetatable(L, -1);
        lua_getfield(L, -1, "__index");
        lua_getfield(L, g + 1, "find");
        lua_pushcclosure(L, plain_find, 1);
        lua_setfield(L, -2, "find");
        lua_pop(L, 3);
        add_lib(L, env, "table", g + 2, NULL);
        add_lib(L, env, "math", g + 3, no_math);
        add_lib(L, env, "utf8", g + 4, NULL);
        /* ("x"):upper() reads the string metatable: point it at the
         * read-only copy and hide it from getmetatable */
        lua_pushliteral(L, "");
        lua_getmetatable(L, -1);
        lua_getfield(L, env, "string");
        lua_setfield(L, -2, "__index");
        lua_pushboolean(L, 0);
        lua_setfield(L, -2, "__metatable");
        lua_pop(L, 2);
        /* the globals themselves: read-only */
        lua_pushvalue(L, env);
        readonly(L);
        state_of(L)->env = luaL_ref(L, LUA_REGISTRYINDEX);
        /* the global table the libraries were opened in is left empty,
         * so nothing reaches load, require or io through it */
        lua_pushnil(L);
        while (lua_next(L, g)) {
                lua_pop(L, 1);
                lua_pushvalue(L, -1);
                lua_pushnil(L);
                lua_rawset(L, g);
        }
        luaL_newmetatable(L, JSON_VIEW);
        luaL_setfuncs(L, view_mt, 0);
        lua_pushliteral(L, "locked");
        lua_setfield(L, -2, "__metatable");
        return 0;
}

struct map_lua *map_lua_new(long instructions, size_t memory, char *errstr,
                            size_t errstr_size)
{
        struct map_lua *l = sl_calloc(1, sizeof(*l));

        l->instructions =
            instructions > 0 ? instructions : MAP_SCRIPT_INSTRUCTIONS_DEFAULT;
        l->memory = memory ? memory : MAP_SCRIPT_MEMORY_DEFAULT;
        l->L = lua_newstate(lalloc, l);
        if (!l->L) {
                snprintf(errstr, errstr_size, "could not create a Lua state");
                free(l);
                return NULL;
        }
        memcpy(lua_getextraspace(l->L), &l, sizeof(l));
        lua_pushcfunction(l->L, sandbox_open);
        if (lua_pcall(l->L, 0, 0, 0) != LUA_OK) {
                snprintf(errstr, errstr_size, "could not set up Lua: %s",
                         lua_tostring(l->L, -1));
                map_lua_destroy(l);
                return NULL;
        }
        return l;
}

void map_lua_destroy(struct map_lua *l)
{
        if (!l)
                return;
        l->limit = 0;
        if (l->L)
                lua_close(l->L);
        free(l);
}

void map_lua_set_page(struct map_lua *l, json_t *page)
{
        if (l)
                l->page = page;
}

/* Every script starts with its inputs as locals; on the first line, so
 * that the script's line numbers are its own. */
#define PROLOGUE "local record, parent, page, row = ...; "

static int load_text(lua_State *L, const char *name, const char *head,
                     const char *src)
{
        char *chunk = sl_asprintf("%s%s%s", PROLOGUE, head, src);
        char *cname = sl_asprintf("=%s", name);
        int rc = luaL_loadbufferx(L, chunk, strlen(chunk), cname, "t");

        free(chunk);
        free(cname);
        return rc;
}

int map_script_compile(struct map_lua *l, const char *name, const char *src,
                       struct map_script *out, char *errstr, size_t errstr_size)
{
        lua_State *L = l->L;

        memset(out, 0, sizeof(*out));
        out->ref = LUA_NOREF;
        /* an expression alone: its value */
        if (load_text(L, name, "return ", src) != LUA_OK) {
                lua_pop(L, 1);
                if (load_text(L, name, "", src) != LUA_OK) {
                        snprintf(errstr, errstr_size, "%s",
                                 lua_tostring(L, -1));
                        lua_pop(L, 1);
                        return -1;
                }
        }
        lua_rawgeti(L, LUA_REGISTRYINDEX, l->env);
        if (!lua_setupvalue(L, -2, 1))
                lua_pop(L, 1);
        out->ref = luaL_ref(L, LUA_REGISTRYINDEX);
        out->lua = l;
        out->name = sl_strdup(name);
        return 0;
}

void map_script_free(struct map_script *s)
{
        if (s->lua && s->ref != LUA_NOREF)
                luaL_unref(s->lua->L, LUA_REGISTRYINDEX, s->ref);
        s->ref = LUA_NOREF;
        free(s->name);
        s->name = NULL;
}

enum call_mode { CALL_VALUE, CALL_ROW };

struct call {
        struct map_script *s;
        json_t *rec, *parent, *row;
        enum call_mode mode;
        const struct map_script_emit *ex; /* NULL: emit() is refused */
        json_t *emitted;                  /* what emit() was given, or NULL */
};

/* Runs in protected mode: pushes the inputs, calls the script. Leaves the
 * script's result (and, for a row script, the row table below it). */
static int runner(lua_State *L)
{
        struct call *c = lua_touserdata(L, 1);
        struct map_lua *l = c->s->lua;

        lua_settop(L, 0);
        if (c->mode == CALL_ROW) {
                const char *k;
                json_t *v;
                lua_createtable(L, 0, (int)json_object_size(c->row));
                json_object_foreach(c->row, k, v)
                {
                        push_json(L, l, v);
                        lua_setfield(L, 1, k);
                }
        } else {
                lua_pushnil(L);
        }
        lua_rawgeti(L, LUA_REGISTRYINDEX, c->s->ref);
        push_json(L, l, c->rec);
        push_json(L, l, c->parent);
        push_json(L, l, l->page);
        lua_pushvalue(L, 1);
        lua_call(L, 4, 1);
        return 2;
}

/* Lua value at idx to JSON, raising nothing (it runs unprotected). NULL
 * with errstr. */
static json_t *to_json(lua_State *L, struct map_lua *l, int idx, int depth,
                       const char *verb, char *errstr, size_t errstr_size)
{
        idx = lua_absindex(L, idx);
        switch (lua_type(L, idx)) {
        case LUA_TNIL:
                return json_null();
        case LUA_TBOOLEAN:
                return json_boolean(lua_toboolean(L, idx));
        case LUA_TNUMBER:
                if (lua_isinteger(L, idx))
                        return json_integer((json_int_t)lua_tointeger(L, idx));
                if (!isfinite(lua_tonumber(L, idx))) {
                        snprintf(errstr, errstr_size,
                                 "%s a number JSON cannot hold "
                                 "(nan or inf)",
                                 verb);
                        return NULL;
                }
                return json_real(lua_tonumber(L, idx));
        case LUA_TSTRING: {
                size_t n;
                const char *s = lua_tolstring(L, idx, &n);
                json_t *j = json_stringn(s, n);
                if (!j)
                        snprintf(errstr, errstr_size,
                                 "%s text that is not UTF-8", verb);
                return j;
        }
        case LUA_TUSERDATA: {
                struct jview *jv = luaL_testudata(L, idx, JSON_VIEW);
                if (jv && jv->gen == l->gen)
                        return json_incref(jv->v);
                break;
        }
        case LUA_TTABLE: {
                lua_Integer n = (lua_Integer)lua_rawlen(L, idx), count = 0;
                int is_array = 1;
                json_t *out;
                if (depth >= MAX_DEPTH || !lua_checkstack(L, 4)) {
                        snprintf(errstr, errstr_size,
                                 "%s tables nested too deep", verb);
                        return NULL;
                }
                lua_pushnil(L);
                while (lua_next(L, idx)) {
                        count++;
                        if (lua_type(L, -2) != LUA_TNUMBER)
                                is_array = 0;
                        lua_pop(L, 1);
                }
                if (is_array && count != n) {
                        snprintf(errstr, errstr_size,
                                 "%s a table that is neither a "
                                 "sequence nor has only string keys",
                                 verb);
                        return NULL;
                }
                if (is_array) {
                        out = json_array();
                        for (lua_Integer i = 1; i <= n; i++) {
                                json_t *e;
                                lua_rawgeti(L, idx, i);
                                e = to_json(L, l, -1, depth + 1, verb, errstr,
                                            errstr_size);
                                lua_pop(L, 1);
                                if (!e) {
                                        json_decref(out);
                                        return NULL;
                                }
                                json_array_append_new(out, e);
                        }
                        return out;
                }
                out = json_object();
                lua_pushnil(L);
                while (lua_next(L, idx)) {
                        json_t *e;
                        if (lua_type(L, -2) != LUA_TSTRING) {
                                lua_pop(L, 2);
                                json_decref(out);
                                snprintf(errstr, errstr_size,
                                         "%s a table that is neither "
                                         "a sequence nor has only string "
                                         "keys",
                                         verb);
                                return NULL;
                        }
                        e = to_json(L, l, -1, depth + 1, verb, errstr,
                                    errstr_size);
                        if (!e) {
                                lua_pop(L, 2);
                                json_decref(out);
                                return NULL;
                        }
                        json_object_set_new(out, lua_tostring(L, -2), e);
                        lua_pop(L, 1);
                }
                return out;
        }
        default:
                break;
        }
        snprintf(errstr, errstr_size, "%s a %s, not a JSON value", verb,
                 luaL_typename(L, idx));
        return NULL;
}

static int table_empty(lua_State *L, int idx)
{
        idx = lua_absindex(L, idx);
        lua_pushnil(L);
        if (!lua_next(L, idx))
                return 1;
        lua_pop(L, 2);
        return 0;
}

/* What an emitted row costs against the memory cap: its JSON text and a
 * little for the tree around it. */
#define EMIT_ROW_OVERHEAD 64

/* emit(row[, child]): one more row of the record script's target, or of
 * its child table `child`, that goes out with the record's own rows. The
 * row is converted at once (a later change of the table does not reach
 * it) and kept out of Lua until the call returns. */
static int lua_emit(lua_State *L)
{
        struct map_lua *l = state_of(L);
        struct call *c = l->cur;
        char why[256];
        lua_Integer child = 0;
        size_t cost;
        json_t *row;

        if (!c || !c->ex)
                return luaL_error(L, "emit: only a target's record script "
                                     "may emit rows");
        luaL_checktype(L, 1, LUA_TTABLE);
        if (!lua_isnoneornil(L, 2)) {
                const char *name = luaL_checkstring(L, 2);
                for (size_t i = 0; i < c->ex->nchildren && !child; i++)
                        if (strcmp(c->ex->children[i], name) == 0)
                                child = (lua_Integer)i + 1;
                if (!child)
                        return luaL_error(L,
                                          "emit: \"%s\" is not a child table "
                                          "of this target",
                                          name);
        }
        if (lua_rawlen(L, 1) > 0)
                return luaL_error(L, "emit: a row is a table of columns, "
                                     "not a list");
        if (json_array_size(c->emitted) >= c->ex->max) {
                /* sticky, as the budget: pcall does not get past it */
                if (!l->over_rows)
                        l->line = current_line(L);
                l->over_rows = 1;
                return luaL_error(L, "emit: more than %d rows",
                                  (int)c->ex->max);
        }
        row = table_empty(L, 1)
                  ? json_object()
                  : to_json(L, l, 1, 0, "emitted", why, sizeof(why));
        if (!row)
                return luaL_error(L, "emit: %s", why);
        cost = json_dumpb(row, NULL, 0, JSON_COMPACT) + EMIT_ROW_OVERHEAD;
        if (l->limit && l->used + l->charged + cost > l->limit) {
                json_decref(row);
                if (!l->over_memory)
                        l->line = current_line(L);
                l->over_memory = 1;
                return luaL_error(L, "not enough memory");
        }
        l->charged += cost;
        if (!c->emitted)
                c->emitted = json_array();
        json_array_append_new(
            c->emitted, json_pack("{s:I, s:i, s:o}", "child", (json_int_t)child,
                                  "line", current_line(L), "row", row));
        return 0;
}

/* Calls c's script. 0 with its results on the stack, or -1 with errstr
 * and the stack empty. */
static int call(struct call *c, char *errstr, size_t errstr_size)
{
        struct map_lua *l = c->s->lua;
        lua_State *L = l->L;
        int rc;

        l->over_budget = 0;
        l->over_memory = 0;
        l->over_rows = 0;
        l->line = 0;
        l->charged = 0;
        l->limit = l->used + l->memory;
        l->cur = c;
        lua_settop(L, 0);
        lua_sethook(L, hook, LUA_MASKCOUNT,
                    l->instructions > INT_MAX ? INT_MAX : (int)l->instructions);
        lua_pushcfunction(L, runner);
        lua_pushlightuserdata(L, c);
        rc = lua_pcall(L, 1, 2, 0);
        lua_sethook(L, NULL, 0, 0);
        l->limit = 0;
        l->charged = 0;
        l->cur = NULL;
        /* a script that caught the budget's, the memory's or the row
         * cap's error and went on still fails */
        if (rc == LUA_OK && !l->over_budget && !l->over_memory && !l->over_rows)
                return 0;
        /* all or nothing: the rows of a failed call go with it */
        json_decref(c->emitted);
        c->emitted = NULL;
        if (l->over_budget)
                snprintf(errstr, errstr_size,
                         "%s:%d: instruction budget (%ld) exceeded", c->s->name,
                         l->line, l->instructions);
        else if (rc == LUA_ERRMEM || l->over_memory)
                snprintf(errstr, errstr_size,
                         "%s:%d: memory limit (%zu bytes) exceeded", c->s->name,
                         l->line, l->memory);
        else if (l->over_rows)
                snprintf(errstr, errstr_size,
                         "%s:%d: emit: more than %zu rows (script_rows)",
                         c->s->name, l->line, c->ex->max);
        else if (lua_type(L, -1) == LUA_TSTRING)
                snprintf(errstr, errstr_size, "%s", lua_tostring(L, -1));
        else
                snprintf(errstr, errstr_size, "%s: the script raised a %s",
                         c->s->name, luaL_typename(L, -1));
        lua_settop(L, 0);
        l->gen++;
        return -1;
}

/* After a call: the views of this record die. */
static void done(struct map_lua *l)
{
        lua_settop(l->L, 0);
        l->gen++;
}

json_t *map_script_value(struct map_script *s, json_t *rec, json_t *parent,
                         char *errstr, size_t errstr_size)
{
        struct call c = {.s = s, .rec = rec, .parent = parent};
        char why[256];
        json_t *v;

        if (call(&c, errstr, errstr_size) < 0)
                return NULL;
        v = to_json(s->lua->L, s->lua, -1, 0, "returned", why, sizeof(why));
        if (!v)
                snprintf(errstr, errstr_size, "%s: %s", s->name, why);
        done(s->lua);
        return v;
}

int map_script_row(struct map_script *s, json_t *rec, json_t *parent,
                   json_t *row, const struct map_script_emit *ex, json_t **out,
                   json_t **emitted, char *errstr, size_t errstr_size)
{
        struct call c = {.s = s,
                         .rec = rec,
                         .parent = parent,
                         .row = row,
                         .mode = CALL_ROW,
                         .ex = emitted ? ex : NULL};
        lua_State *L = s->lua->L;
        char why[256];
        int idx, rc = -1;

        *out = NULL;
        if (emitted)
                *emitted = NULL;
        if (call(&c, errstr, errstr_size) < 0)
                return -1;
        if (lua_type(L, -1) == LUA_TBOOLEAN && !lua_toboolean(L, -1)) {
                rc = 1;
                goto out;
        }
        if (lua_isnil(L, -1))
                idx = -2; /* the row table as the script left it */
        else if (lua_istable(L, -1))
                idx = -1;
        else {
                snprintf(errstr, errstr_size,
                         "%s: a record script returns nothing, false or a "
                         "row table, not a %s",
                         s->name, luaL_typename(L, -1));
                goto out;
        }
        if (lua_rawlen(L, idx) > 0) {
                snprintf(errstr, errstr_size,
                         "%s: the row is a table of columns, not a list",
                         s->name);
                goto out;
        }
        *out = table_empty(L, idx)
                   ? json_object()
                   : to_json(L, s->lua, idx, 0, "returned", why, sizeof(why));
        if (!*out) {
                snprintf(errstr, errstr_size, "%s: %s", s->name, why);
                goto out;
        }
        rc = 0;
out:
        done(s->lua);
        if (rc >= 0 && emitted)
                *emitted = c.emitted ? c.emitted : json_array();
        else
                json_decref(c.emitted);
        return rc;
}
