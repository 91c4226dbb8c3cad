/* test_map_script: the Lua sandbox of map scripts. Each escape attempt
 * (os, io, require, load of bytecode, string.dump, a loop, a memory bomb,
 * ...) dead-letters its record and the next record of the same map still
 * maps (the state survives); then random mixes of escape fragments, each
 * refused or harmless, none stopping the process or running long. */
#include "map.h"
#include "sl_util.h"
#include "tap.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct got {
        json_t *rows;  /* row objects */
        json_t *deads; /* error texts */
};

static int on_row(void *opaque, const char *topic, const char *key,
                  size_t key_len, json_t *envelope)
{
        struct got *g = opaque;

        (void)topic;
        (void)key;
        (void)key_len;
        json_array_append(g->rows, json_object_get(envelope, "row"));
        return 0;
}

static int on_dead(void *opaque, const char *key, json_t *letter)
{
        struct got *g = opaque;

        (void)key;
        json_array_append(g->deads, json_object_get(letter, "error"));
        return 0;
}

/* A map whose field v runs `script` for a record with "go": true, and
 * returns "fine" for the others. New; NULL with *errs. */
static struct map *escape_map(const char *script, long budget, char **errs)
{
        json_t *root, *fields;
        char *src, *text;
        struct map *m;

        src = sl_asprintf("if record.go then\n%s\nend\nreturn 'fine'", script);
        fields = json_pack("{s:s, s:{s:s}}", "id", "id", "v", "script", src);
        root = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:I}", "name",
                         "escape", "source", "t", "records", "$.items", "table",
                         "x", "coalesce", "id", "fields", fields,
                         "script_instructions", (json_int_t)budget);
        text = json_dumps(root, 0);
        m = map_loadb("escape.json", text, strlen(text), errs);
        free(text);
        free(src);
        json_decref(root);
        return m;
}

/* emit(): a map of table x (id its key, v, n integer; child x_tag from
 * "tags") whose record script runs `script` for records with "go": true.
 * rows and memory: script_rows (-1: 0) and script_memory (0: the
 * defaults). New;
 * NULL with *errs. */
static struct map *emit_map(const char *script, long rows, long memory,
                            char **errs)
{
        json_t *root;
        char *src, *text;
        struct map *m;

        src = sl_asprintf("if record.go then\n%s\nend", script);
        root = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:{s:s, s:s, "
                         "s:{s:s, s:s}}, s:[{s:s, s:s, s:s, s:{s:s}}]}",
                         "name", "emit", "source", "t", "records", "$.items",
                         "table", "x", "coalesce", "id", "script", src,
                         "fields", "id", "id", "v", "v", "n", "type", "integer",
                         "path", "n", "children", "table", "x_tag", "records",
                         "tags", "coalesce", "tag", "fields", "tag", "$");
        if (rows)
                json_object_set_new(root, "script_rows",
                                    json_integer(rows < 0 ? 0 : rows));
        if (memory)
                json_object_set_new(root, "script_memory",
                                    json_integer(memory));
        text = json_dumps(root, 0);
        m = map_loadb("emit.json", text, strlen(text), errs);
        free(text);
        free(src);
        json_decref(root);
        return m;
}

struct emitted {
        json_t *envs;  /* [topic, key, envelope] */
        json_t *deads; /* error texts */
        json_t *notes; /* "what: reason" */
};

static int on_env(void *opaque, const char *topic, const char *key,
                  size_t key_len, json_t *envelope)
{
        struct emitted *g = opaque;

        json_array_append_new(
            g->envs, json_pack("[s, s%, O]", topic, key, key_len, envelope));
        return 0;
}

static int on_dead_e(void *opaque, const char *key, json_t *letter)
{
        struct emitted *g = opaque;

        (void)key;
        json_array_append(g->deads, json_object_get(letter, "error"));
        return 0;
}

static void on_note(void *opaque, const char *what, const char *table,
                    const char *reason, json_t *record)
{
        struct emitted *g = opaque;

        (void)table;
        (void)record;
        json_array_append_new(g->notes, json_sprintf("%s: %s", what, reason));
}

/* Maps {"id": "A", "go": true, "tags": ["t1"]} then {"id": "B"} with m.
 * g's arrays are new (free with emitted_free). */
static void run_emit(struct map *m, struct emitted *g)
{
        json_t *page =
            json_pack("{s:[{s:s, s:b, s:i, s:[s]}, {s:s, s:i}]}", "items", "id",
                      "A", "go", 1, "n", 1, "tags", "t1", "id", "B", "n", 2);
        struct map_lineage lin = {.source = "t"};
        struct map_emit em = {
            .row = on_env, .dead = on_dead_e, .note = on_note, .opaque = g};

        g->envs = json_array();
        g->deads = json_array();
        g->notes = json_array();
        map_apply_page(m, page, NULL, &lin, &em);
        json_decref(page);
}

static void emitted_free(struct emitted *g)
{
        json_decref(g->envs);
        json_decref(g->deads);
        json_decref(g->notes);
}

/* The upserts of g (of table x) as "KEY=v/n" joined by spaces, the child
 * sets as "KEY:[tag,tag]". New; free with free(). */
static char *emit_summary(const struct emitted *g)
{
        struct sl_buf b;
        json_t *e;
        size_t i;

        sl_buf_init(&b, 0);
        json_array_foreach(g->envs, i, e)
        {
                const char *key = json_string_value(json_array_get(e, 1));
                json_t *env = json_array_get(e, 2), *row, *r;
                size_t j;
                if (i)
                        sl_buf_puts(&b, " ");
                row = json_object_get(env, "row");
                if (row) {
                        char *v = json_dumps(json_object_get(row, "v"),
                                             JSON_ENCODE_ANY);
                        char *n = json_dumps(json_object_get(row, "n"),
                                             JSON_ENCODE_ANY);
                        sl_buf_printf(&b, "%s=%s/%s", key, v, n);
                        free(v);
                        free(n);
                        continue;
                }
                sl_buf_printf(&b, "%s:[", key);
                json_array_foreach(json_object_get(env, "rows"), j, r)
                {
                        sl_buf_printf(
                            &b, "%s%s=%s", j ? "," : "",
                            json_string_value(json_object_get(r, "tag")),
                            json_string_value(json_object_get(r, "id")));
                }
                sl_buf_puts(&b, "]");
        }
        return sl_buf_steal(&b, NULL);
}

/* One emit case: the outputs of records A (the script's) and B (as
 * emit_summary gives them, or "#N": N envelopes), and the dead letter, if
 * any, must be as given. */
static void emit_case(const char *what, const char *script, long rows,
                      long memory, const char *want, const char *dead)
{
        char *errs = NULL, *got;
        struct map *m = emit_map(script, rows, memory, &errs);
        struct emitted g;
        const char *d;

        if (!m) {
                TAP_OK(0, "%s: the map loads: %s", what, errs);
                free(errs);
                return;
        }
        run_emit(m, &g);
        got = emit_summary(&g);
        if (want[0] == '#') {
                char *end;
                unsigned long n = strtoul(want + 1, &end, 10);

                TAP_OK(*end == '\0' && json_array_size(g.envs) == n,
                       "%s: %s envelopes (%zu)", what, want + 1,
                       json_array_size(g.envs));
        } else
                TAP_STR_EQ(got, want, "%s: outputs", what);
        d = json_string_value(json_array_get(g.deads, 0));
        if (dead) {
                TAP_OK(json_array_size(g.deads) == 1 && d && strstr(d, dead),
                       "%s: dead letter names \"%s\" (%s)", what, dead,
                       d ? d : "none");
        } else {
                TAP_OK(json_array_size(g.deads) == 0, "%s: no dead letter (%s)",
                       what, d ? d : "none");
        }
        free(got);
        emitted_free(&g);
        map_destroy(m);
}

static void emit_tests(void)
{
        char *errs = NULL;
        /* B's row and its (empty) child set end every case */
        emit_case("emit one", "emit({id = 'A2', v = 'extra', n = '7'})", 0, 0,
                  "A=null/1 A2=\"extra\"/7 A:[t1=A] B=null/2 B:[]", NULL);
        emit_case("emit many",
                  "for i = 1, 3 do emit({id = 'A' .. i, n = i * 10}) end", 0, 0,
                  "A=null/1 A1=null/10 A2=null/20 A3=null/30 A:[t1=A] "
                  "B=null/2 B:[]",
                  NULL);
        emit_case("emit 1000 (the default cap)",
                  "for i = 1, 1000 do emit({id = 'A' .. i}) end\n"
                  "row.v = 'ok'",
                  0, 0, "#1004", NULL);
        emit_case("emit over script_rows",
                  "for i = 1, 3 do emit({id = 'A' .. i}) end", 2, 0,
                  "B=null/2 B:[]",
                  "script: script:2: emit: more than 2 rows (script_rows)");
        emit_case("emit over the cap, caught by pcall, still fails",
                  "for i = 1, 3 do pcall(emit, {id = 'A' .. i}) end", 2, 0,
                  "B=null/2 B:[]", "more than 2 rows (script_rows)");
        emit_case("emit over the memory cap",
                  "local s = ('x'):rep(100000)\n"
                  "for i = 1, 100 do emit({id = 'A' .. i, v = s}) end",
                  0, 1 << 20, "B=null/2 B:[]",
                  "script: script:3: memory limit (1048576 bytes) exceeded");
        emit_case("emit with a missing key", "emit({v = 'no key'})", 0, 0,
                  "B=null/2 B:[]",
                  "script: script:2: emitted a row of x without its key "
                  "column id");
        emit_case("emit then error: nothing out",
                  "emit({id = 'A2'})\nerror('refused after emit')", 0, 0,
                  "B=null/2 B:[]", "script:3: refused after emit");
        emit_case("emit a non-table", "local x = 1\nemit('A2')", 0, 0,
                  "B=null/2 B:[]",
                  "script:3: bad argument #1 to 'emit' (table expected, got "
                  "string)");
        emit_case("emit a list", "emit({'A2'})", 0, 0, "B=null/2 B:[]",
                  "script:2: emit: a row is a table of columns, not a list");
        emit_case("emit a column that is not a field",
                  "emit({id = 'A2', nope = 1})", 0, 0, "B=null/2 B:[]",
                  "script: script:2: column \"nope\" is not a field of x");
        emit_case("emit a value of the wrong type",
                  "emit({id = 'A2', n = 'many'})", 0, 0, "B=null/2 B:[]",
                  "field n: emitted by script:2: bad integer");
        emit_case("emit a function value",
                  "emit({id = 'A2', v = function() end})", 0, 0,
                  "B=null/2 B:[]",
                  "script:2: emit: emitted a function, not a JSON value");
        emit_case("the emitted row is copied when emitted",
                  "local t = {id = 'A2', v = 'first'}\nemit(t)\nt.v = 'later'",
                  0, 0, "A=null/1 A2=\"first\"/null A:[t1=A] B=null/2 B:[]",
                  NULL);
        emit_case("emit to a child joins its replace set",
                  "emit({tag = 't2'}, 'x_tag')\nemit({tag = 't1'}, 'x_tag')", 0,
                  0, "A=null/1 A:[t1=A,t2=A] B=null/2 B:[]", NULL);
        emit_case("emit to a child without its key", "emit({}, 'x_tag')", 0, 0,
                  "B=null/2 B:[]",
                  "script: script:2: emitted a row of x_tag without its key "
                  "column tag");
        emit_case("emit to a table that is not a child",
                  "emit({tag = 't2'}, 'nope')", 0, 0, "B=null/2 B:[]",
                  "script:2: emit: \"nope\" is not a child table of this "
                  "target");
        emit_case("drop the record, emit rows of its table",
                  "emit({id = 'A2'})\nreturn false", 0, 0,
                  "A2=null/null B=null/2 B:[]", NULL);
        emit_case("drop the record, emit a child row",
                  "emit({tag = 't2'}, 'x_tag')\nreturn false", 0, 0,
                  "B=null/2 B:[]",
                  "script: script:2: emitted a row of x_tag, but the "
                  "record's own row of x, its parent, is not output "
                  "(dropped by script)");
        emit_case("script_rows 0: no emit", "emit({id = 'A2'})", -1, 0,
                  "B=null/2 B:[]", "more than 0 rows (script_rows)");
        /* emit is for a target's record script only: a field's or a
         * child's script that emits fails its record */
        for (int k = 0; k < 2; k++) {
                json_t *root = json_pack(
                    "{s:s, s:s, s:s, s:s, s:s, s:{s:s, s:s}, "
                    "s:[{s:s, s:s, s:{s:s}}]}",
                    "name", "emit", "source", "t", "records", "$.items",
                    "table", "x", "coalesce", "id", "fields", "id", "id", "n",
                    "n", "children", "table", "x_tag", "records", "tags",
                    "fields", "tag", "$");
                const char *want = k ? "child x_tag[0]: script: "
                                       "children[0].script:1: emit: "
                                       "only a target's record script"
                                     : "fields.v.script:1: emit: only a "
                                       "target's record script";
                char *text;
                struct map *m;
                struct emitted g;
                const char *d;
                if (k)
                        json_object_set_new(
                            json_array_get(json_object_get(root, "children"),
                                           0),
                            "script", json_string("emit({tag = 'z'})"));
                else
                        json_object_set_new(
                            json_object_get(root, "fields"), "v",
                            json_pack("{s:s}", "script",
                                      "if record.go then emit({id = 'z'}) "
                                      "end"));
                text = json_dumps(root, 0);
                m = map_loadb("emit.json", text, strlen(text), &errs);
                TAP_OK(m != NULL, "a %s script that emits loads",
                       k ? "child's" : "field's");
                if (m) {
                        run_emit(m, &g);
                        d = json_string_value(json_array_get(g.deads, 0));
                        TAP_OK(json_array_size(g.deads) == 1 && d &&
                                   strstr(d, want),
                               "a %s script's emit is its record's error (%s)",
                               k ? "child's" : "field's", d ? d : "none");
                        TAP_OK(json_array_size(g.envs) == 2,
                               "the next record maps (%zu envelopes)",
                               json_array_size(g.envs));
                        emitted_free(&g);
                        map_destroy(m);
                }
                free(text);
                json_decref(root);
        }
        free(errs);
}

static double now(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Maps two records (the escape, then a plain one). Returns 0 when the
 * escape was dead-lettered (its error in why) and the plain one mapped to
 * "fine"; 1 when the escape mapped to a row; -1 otherwise. */
static int run_escape(struct map *m, char *why, size_t why_size, double *secs)
{
        json_t *page = json_pack("{s:[{s:s, s:b}, {s:s}]}", "items", "id", "a",
                                 "go", 1, "id", "b");
        struct got g = {json_array(), json_array()};
        struct map_lineage lin = {.source = "t"};
        struct map_emit em = {.row = on_row, .dead = on_dead, .opaque = &g};
        double t0 = now();
        int rc = -1;

        map_apply_page(m, page, NULL, &lin, &em);
        *secs = now() - t0;
        why[0] = '\0';
        if (json_array_size(g.deads) == 1)
                snprintf(why, why_size, "%s",
                         json_string_value(json_array_get(g.deads, 0)));
        {
                json_t *last =
                    json_array_get(g.rows, json_array_size(g.rows) - 1);
                const char *v = json_string_value(json_object_get(last, "v"));
                int fine = v && strcmp(v, "fine") == 0;
                if (json_array_size(g.deads) == 1 &&
                    json_array_size(g.rows) == 1 && fine)
                        rc = 0;
                else if (json_array_size(g.deads) == 0 &&
                         json_array_size(g.rows) == 2 && fine)
                        rc = 1;
        }
        json_decref(g.rows);
        json_decref(g.deads);
        json_decref(page);
        return rc;
}

static const struct {
        const char *script;
        const char *want; /* in the dead letter */
} escapes[] = {
    {"os.execute('touch /tmp/sluice-escaped')", "global 'os'"},
    {"io.open('/etc/passwd')", "global 'io'"},
    {"require('os')", "global 'require'"},
    {"local f = load(string.dump(function() return 1 end), 'x', 'b')",
     "field 'dump'"},
    {"string.dump(function() end)", "field 'dump'"},
    {"loadstring('return 1')", "global 'loadstring'"},
    {"dofile('/etc/passwd')", "global 'dofile'"},
    {"loadfile('/etc/passwd')", "global 'loadfile'"},
    {"debug.sethook()", "global 'debug'"},
    {"package.loadlib('libc.so.6', 'system')", "global 'package'"},
    {"coroutine.wrap(function() while true do end end)()",
     "global 'coroutine'"},
    {"collectgarbage('stop')", "global 'collectgarbage'"},
    {"print('x')", "global 'print'"},
    {"rawset(_G, 'x', 1)", "global 'rawset'"},
    {"_G.os = 1", "global '_G'"},
    {"x = 1", "read-only"},
    {"string.upper = nil", "read-only"},
    {"getmetatable('').__index = {}", "index a boolean"},
    {"setmetatable({}, {__gc = function() while true do end end})", "__gc"},
    {"local x <close> = setmetatable({}, {__close = function() end})",
     "__gc and __close"},
    {"record.id = 'changed'", "read-only"},
    {"setmetatable(record, {})", "table expected"},
    {"while true do end", "instruction budget"},
    {"while true do pcall(function() while true do end end) end",
     "instruction budget"},
    {"local function f() return f() end return f()", "instruction budget"},
    {"local function f() return 1 + f() end return f()", "fields.v.script:2"},
    {"local t = {} while true do t[#t + 1] = ('x'):rep(4096) end",
     "memory limit"},
    {"return ('x'):rep(1 << 30)", "memory limit"},
    {"return ('x'):rep(1 << 40)", "too large"},
    {"xpcall(function() error('x') end, function() while true do end end)",
     "global 'xpcall'"},
    {"pcall(function() while true do end end) return 1", "instruction budget"},
    {"pcall(function() return ('x'):rep(1 << 30) end) return 1",
     "memory limit"},
    {"local s = 'x' for i = 1, 64 do s = s .. s end return #s", "memory limit"},
    {"return string.find(('a'):rep(1 << 20), ('a'):rep(1 << 12) .. 'b')",
     "string.find"},
    {"return ('a'):rep(50000):match('.-.-.-.-b')", "method 'match'"},
    {"return ('a'):rep(50000):gsub('.-.-b', '')", "method 'gsub'"},
    {"error(setmetatable({}, {__tostring = function() while true do end "
     "end}))",
     "raised a table"},
    {"return function() end", "returned a function"},
    {"return 0/0", "nan or inf"},
    {"return '\\xff\\xfe'", "not UTF-8"},
    {"local t = {} t[1] = t return t", "nested too deep"},
    {"return {1, 2, x = 3}", "neither a sequence"},
    /* emit, the one global of sluice's own: read-only, and a field
     * script's call is refused */
    {"emit = nil", "read-only"},
    {"emit({id = 'x'})", "only a target's record script may emit rows"},
    {"local e = emit e(record)", "only a target's record script"},
};

/* Fragments the random scripts are made of: each either harmless or an
 * escape the sandbox must refuse. */
static const char *const frags[] = {
    "local a = 1",
    "a = (a or 0) + 1",
    "while true do end",
    "for i = 1, 1e9 do end",
    "pcall(function() while true do end end)",
    "local t = {} for i = 1, 1e7 do t[i] = i end",
    "local s = ('y'):rep(1 << 22) s = s .. s .. s .. s .. s",
    "os.exit(1)",
    "io.write('x')",
    "require 'io'",
    "load('while true do end')()",
    "string.dump(print)",
    "return record.id",
    "return (record.id or ''):upper()",
    "return #page.items",
    "return parent.items[1].id",
    "return tostring(record)",
    "for k, v in pairs(record) do end",
    "for i, v in ipairs(page.items) do end",
    "string.format('%99999999d', 1)",
    "table.concat(setmetatable({}, {__index = function() while true do end "
    "end}), ',', 1, 10)",
    "table.sort({3, 2, 1}, function(x, y) while true do end end)",
    "setmetatable({}, {__gc = print})",
    "string.rep('x', -1)",
    "utf8.char(0x7FFFFFFF)",
    "math.floor(1e308 * 10)",
    "next({}, 'nope')",
    "return select('#', table.unpack({}, 1, 1e8))",
    "error()",
    "error({})",
    "xpcall(function() error('x') end, function() while true do end end)",
    "emit({id = 'x'})",
    "pcall(emit, record)",
};

static uint64_t rng_state = 0x2545F4914F6CDD1DULL;

static uint64_t rng(void)
{
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        return rng_state;
}

int main(void)
{
        char why[1024], *errs = NULL;
        size_t n = sizeof(escapes) / sizeof(escapes[0]);
        size_t nfrags = sizeof(frags) / sizeof(frags[0]);
        double secs, worst = 0;
        int refused = 0, harmless = 0, broken = 0;

        emit_tests();
        unlink("/tmp/sluice-escaped");
        for (size_t i = 0; i < n; i++) {
                struct map *m = escape_map(escapes[i].script, 0, &errs);
                int rc;
                if (!m) {
                        TAP_OK(0, "escape %zu loads: %s", i, errs);
                        free(errs);
                        errs = NULL;
                        continue;
                }
                rc = run_escape(m, why, sizeof(why), &secs);
                TAP_OK(rc == 0 && strstr(why, escapes[i].want),
                       "refused, worker alive: %s", escapes[i].script);
                if (!(rc == 0 && strstr(why, escapes[i].want)))
                        printf("#   rc %d, dead letter: %s\n", rc, why);
                /* a record runs once more in the same state */
                rc = run_escape(m, why, sizeof(why), &secs);
                TAP_OK(rc == 0, "the same map maps again after: %s",
                       escapes[i].script);
                map_destroy(m);
        }
        TAP_OK(access("/tmp/sluice-escaped", F_OK) != 0,
               "os.execute ran nothing");
        /* the line of the script is named: line 2 is the escape's */
        {
                struct map *m =
                    escape_map("local x = nil\nreturn x.y", 0, &errs);
                TAP_OK(m && run_escape(m, why, sizeof(why), &secs) == 0 &&
                           strstr(why, "fields.v.script:3:"),
                       "the dead letter names the script's line (%s)", why);
                map_destroy(m);
        }
        /* a smaller budget stops sooner */
        {
                struct map *m =
                    escape_map("for i = 1, 5000 do end", 1000, &errs);
                TAP_OK(m && run_escape(m, why, sizeof(why), &secs) == 0 &&
                           strstr(why, "instruction budget (1000)"),
                       "script_instructions sets the budget (%s)", why);
                map_destroy(m);
                m = escape_map("for i = 1, 5000 do end", 0, &errs);
                TAP_OK(m && run_escape(m, why, sizeof(why), &secs) == 1,
                       "the default budget runs the same loop");
                map_destroy(m);
        }
        /* fuzz-ish: random mixes of fragments */
        for (int k = 0; k < 300; k++) {
                char script[2048] = "";
                size_t len = 0;
                int nf = 1 + (int)(rng() % 4);
                struct map *m;
                int rc;
                for (int j = 0; j < nf; j++) {
                        const char *f = frags[rng() % nfrags];
                        int w = snprintf(script + len, sizeof(script) - len,
                                         "%s\n", f);
                        if (w > 0 && (size_t)w < sizeof(script) - len)
                                len += (size_t)w;
                }
                m = escape_map(script, 0, &errs);
                if (!m) { /* e.g. code after a return */
                        free(errs);
                        errs = NULL;
                        harmless++;
                        continue;
                }
                rc = run_escape(m, why, sizeof(why), &secs);
                if (secs > worst)
                        worst = secs;
                if (rc == 0)
                        refused++;
                else if (rc == 1)
                        harmless++;
                else {
                        broken++;
                        printf("# broken by: %s\n", script);
                }
                map_destroy(m);
        }
        printf("# fuzz: %d refused, %d harmless, worst %.3f s\n", refused,
               harmless, worst);
        TAP_OK(broken == 0, "random scripts: each refused or harmless, and "
                            "the map maps the next record");
        TAP_OK(refused > 100, "random scripts: most are refused (%d)", refused);
        TAP_OK(worst < 10.0, "random scripts: none runs long (%.3f s)", worst);
        TAP_OK(access("/tmp/sluice-escaped", F_OK) != 0,
               "nothing escaped to the file system");
        return tap_failed ? 1 : 0;
}
