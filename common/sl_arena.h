/* sl_arena: the memory of Jansson trees that live and die together. Parsing
 * an envelope makes about a hundred small Jansson blocks, and their malloc
 * and free were half of the loader's consume loop (perf); the transformer
 * decodes, maps and frees one record after another, with malloc and free
 * a sixth of its time. Such trees are cut from large chunks that go back
 * at once: a loader batch's envelopes, a transformer record's tree and
 * rows.
 *
 * Jansson has one pair of allocation functions per process, which
 * sl_arena_install() replaces. Every block carries a header that says
 * where it came from: a block made outside an arena (any other Jansson
 * use, on any thread) is freed as usual, one made in an arena is left to
 * the arena. An arena serves only the thread that entered it, between
 * sl_arena_enter() and sl_arena_leave(). Once installed, memory Jansson
 * hands out (json_dumps) must go back by sl_arena_json_free, never free():
 * sl_arena_dumps gives a copy free() takes. */
#ifndef SL_ARENA_H
#define SL_ARENA_H

#include <jansson.h>
#include <stddef.h>

struct sl_arena_chunk;
struct sl_arena_big;

struct sl_arena {
        struct sl_arena_chunk *chunks; /* newest first (owned) */
        struct sl_arena_big *bigs;     /* blocks too big for a chunk (owned) */
        char *next;                    /* free space of the newest */
        size_t left;
};

/* Makes Jansson allocate through the arenas' functions. Call once, before
 * any other Jansson call of the process and before threads start. Does
 * nothing in an AddressSanitizer build, so that ASan sees each block. */
void sl_arena_install(void);

/* Non-zero once sl_arena_install() replaced Jansson's allocation
 * functions (never in an AddressSanitizer build). */
int sl_arena_active(void);

/* Jansson allocations of the calling thread come from a until
 * sl_arena_leave(). */
void sl_arena_enter(struct sl_arena *a);
void sl_arena_leave(void);

/* Returns a's chunks to the pool (beyond 64 pooled, to the system; an
 * idle worker's sl_mem_release empties the pool), and
 * frees its big blocks. Every tree built in a goes with it: no pointer
 * into one may be kept, and a tree that holds a block made outside the
 * arena must be released (json_decref) first, or that block leaks. A tree
 * made wholly in a needs no json_decref. a is empty and reusable. */
void sl_arena_free(struct sl_arena *a);

/* Frees a string Jansson returned (json_dumps), with whatever allocation
 * functions the process uses. */
void sl_arena_json_free(void *p);

/* json_dumps(v, flags) in memory that free() takes (NULL as json_dumps). */
char *sl_arena_dumps(const json_t *v, size_t flags);

#endif
