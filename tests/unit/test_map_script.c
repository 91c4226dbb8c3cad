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
