/* sl_arena: bump allocation of Jansson trees that die together, behind
 * json_set_alloc_funcs(). */
#include "sl_arena.h"
#include "sl_util.h"

#include <jansson.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK_BYTES ((size_t)1 << 20)
/* A block larger than this gets a heap block of its own. */
#define BIG_BYTES (CHUNK_BYTES / 8)
/* The header keeps the block as aligned as malloc's. */
#define HDR 16

enum {
        FROM_HEAP = 0x48454150,  /* made outside an arena: free() it */
        FROM_ARENA = 0x4152454e, /* cut from a chunk */
        FROM_BIG = 0x42494721,   /* its own heap block, listed in an arena */
};

struct sl_arena_chunk {
        struct sl_arena_chunk *prev;
};

/* Before the header of a FROM_BIG block (HDR bytes, to keep alignment). */
struct sl_arena_big {
        struct sl_arena_big *prev;
};

static _Thread_local struct sl_arena *current;

/* Freed chunks kept for the next batches: fresh memory costs a page fault
 * per 4 KiB on first touch, which showed in the profile. Two batches
 * (the one written, the one filled) of 2000 NVD envelopes use about 30. */
#define POOL_MAX 64
static struct sl_arena_chunk *pool;
static int pooled;
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;

static struct sl_arena_chunk *chunk_get(void)
{
        struct sl_arena_chunk *c;

        pthread_mutex_lock(&pool_lock);
        c = pool;
        if (c) {
                pool = c->prev;
                pooled--;
        }
        pthread_mutex_unlock(&pool_lock);
        return c ? c : sl_malloc(CHUNK_BYTES);
}

static void chunk_put(struct sl_arena_chunk *c)
{
        pthread_mutex_lock(&pool_lock);
        if (pooled < POOL_MAX) {
                c->prev = pool;
                pool = c;
                pooled++;
                c = NULL;
        }
        pthread_mutex_unlock(&pool_lock);
        free(c);
}

/* sl_mem_release's hook: an idle process gives the pooled chunks back */
static void pool_drain(void)
{
        struct sl_arena_chunk *c;

        pthread_mutex_lock(&pool_lock);
        c = pool;
        pool = NULL;
        pooled = 0;
        pthread_mutex_unlock(&pool_lock);
        while (c) {
                struct sl_arena_chunk *prev = c->prev;
                free(c);
                c = prev;
        }
}

static void *tag(char *block, uint32_t from)
{
        memcpy(block, &from, sizeof(from));
        return block + HDR;
}

static void *arena_malloc(size_t size)
{
        struct sl_arena *a = current;
        size_t need = (size + HDR + HDR - 1) / HDR * HDR;
        char *block;

        if (!a)
                return tag(sl_malloc(size + HDR), FROM_HEAP);
        if (size > BIG_BYTES) {
                /* the arena lists it, so that it goes with the arena even
                 * when its tree is dropped without json_decref */
                struct sl_arena_big *g = sl_malloc(size + HDR + HDR);

                g->prev = a->bigs;
                a->bigs = g;
                return tag((char *)g + HDR, FROM_BIG);
        }
        if (need > a->left) {
                struct sl_arena_chunk *c = chunk_get();

                c->prev = a->chunks;
                a->chunks = c;
                a->next = (char *)c + HDR;
                a->left = CHUNK_BYTES - HDR;
        }
        block = a->next;
        a->next += need;
        a->left -= need;
        return tag(block, FROM_ARENA);
}

static void arena_free(void *p)
{
        uint32_t from;
        char *block;

        if (!p)
                return;
        block = (char *)p - HDR;
        memcpy(&from, block, sizeof(from));
        if (from == FROM_HEAP)
                free(block);
        /* FROM_ARENA, FROM_BIG: freed with the whole arena */
}

#if defined(__SANITIZE_ADDRESS__)
#define ARENA_OFF 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ARENA_OFF 1
#endif
#endif

int sl_arena_active(void)
{
        json_malloc_t m = NULL;

        json_get_alloc_funcs(&m, NULL);
        return m == arena_malloc;
}

void sl_arena_install(void)
{
#ifdef ARENA_OFF
        /* Under AddressSanitizer every Jansson block stays its own
         * malloc: a tree used after its batch was cleared, or never
         * released, is then reported instead of hidden in a chunk. */
        return;
#endif
        json_set_alloc_funcs(arena_malloc, arena_free);
        sl_mem_on_release(pool_drain);
}

void sl_arena_enter(struct sl_arena *a)
{
        current = a;
}

void sl_arena_leave(void)
{
        current = NULL;
}

void sl_arena_free(struct sl_arena *a)
{
        while (a->chunks) {
                struct sl_arena_chunk *c = a->chunks;

                a->chunks = c->prev;
                chunk_put(c);
        }
        while (a->bigs) {
                struct sl_arena_big *g = a->bigs;

                a->bigs = g->prev;
                free(g);
        }
        a->next = NULL;
        a->left = 0;
}

void sl_arena_json_free(void *p)
{
        json_free_t f = NULL;

        json_get_alloc_funcs(NULL, &f);
        if (f)
                f(p);
        else
                free(p);
}

char *sl_arena_dumps(const json_t *v, size_t flags)
{
        char *j = json_dumps(v, flags);
        char *t = j ? sl_strdup(j) : NULL;

        sl_arena_json_free(j);
        return t;
}
