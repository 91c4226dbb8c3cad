/* load_arena: the memory of one batch's envelope trees. Parsing an
 * envelope makes about a hundred small Jansson blocks, and their malloc
 * and free were half of the loader's consume loop (perf); a batch's trees
 * live and die together, so they are cut from large chunks that go back
 * at once with the batch.
 *
 * Jansson has one pair of allocation functions per process, which
 * load_arena_install() replaces. Every block carries a header that says
 * where it came from: a block made outside an arena (any other Jansson
 * use, on any thread) is freed as usual, one made in an arena is left to
 * the arena. An arena serves only the thread that entered it, between
 * load_arena_enter() and load_arena_leave(). */
#ifndef LOAD_ARENA_H
#define LOAD_ARENA_H

#include <stddef.h>

struct load_arena_chunk;

struct load_arena {
        struct load_arena_chunk *chunks; /* newest first (owned) */
        char *next;                      /* free space of the newest */
        size_t left;
};

/* Makes Jansson allocate through the arenas' functions. Call once, before
 * any other Jansson call of the process and before threads start. Does
 * nothing in an AddressSanitizer build, so that ASan sees each block. */
void load_arena_install(void);

/* Jansson allocations of the calling thread come from a until
 * load_arena_leave(). */
void load_arena_enter(struct load_arena *a);
void load_arena_leave(void);

/* Returns a's chunks to the system. Every tree built in a must be gone
 * (json_decref) and no pointer into it kept; a is empty and reusable. */
void load_arena_free(struct load_arena *a);

/* Frees a string Jansson returned (json_dumps), with whatever allocation
 * functions the process uses. */
void load_json_free(void *p);

#endif
