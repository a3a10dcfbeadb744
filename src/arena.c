/* arena.c: a refcounted bump allocator with a hard cap.
 *
 * Blocks are chained; a request for more than a block's worth gets a block of its own. The
 * cap counts the bytes handed out, so a cap of 64 MiB bounds what one decoded request can take
 * whatever its wire size. Loop thread only, except om_arena_live_bytes() which is atomic. */
#include <stdatomic.h>
#include <string.h>

#include "om.h"

#define BLOCK_SIZE (16u * 1024u)
#define ALIGN 8u

typedef struct block {
    struct block *next;
    size_t size, used;
    /* The payload follows the header; max_align_t keeps it aligned. */
    _Alignas(max_align_t) unsigned char data[];
} block_t;

struct om_arena {
    block_t *head; /* the block being filled; older blocks follow */
    size_t cap, used;
    unsigned refs;
    bool exhausted;
    ProtobufCAllocator pb;
};

static _Atomic size_t live_bytes;

size_t om_arena_live_bytes(void)
{
    return atomic_load_explicit(&live_bytes, memory_order_relaxed);
}

static void *pb_alloc(void *data, size_t size)
{
    return om_arena_alloc(data, size);
}

static void pb_free(void *data, void *p)
{
    (void)data;
    (void)p; /* arena memory is freed with the arena */
}

om_arena_t *om_arena_new(size_t cap)
{
    om_arena_t *a = om_calloc(1, sizeof *a);
    if (a == NULL) {
        return NULL;
    }
    a->cap = cap;
    a->refs = 1;
    a->pb.alloc = pb_alloc;
    a->pb.free = pb_free;
    a->pb.allocator_data = a;
    return a;
}

static block_t *block_new(size_t payload)
{
    block_t *b = om_malloc(sizeof *b + payload);
    if (b == NULL) {
        return NULL;
    }
    b->next = NULL;
    b->size = payload;
    b->used = 0;
    atomic_fetch_add_explicit(&live_bytes, sizeof *b + payload, memory_order_relaxed);
    return b;
}

void *om_arena_alloc(om_arena_t *a, size_t n)
{
    if (n == 0) {
        n = 1;
    }
    if (n > SIZE_MAX - ALIGN) {
        a->exhausted = true;
        return NULL;
    }
    size_t need = (n + ALIGN - 1) & ~(size_t)(ALIGN - 1);
    if (a->cap != 0 && (need > a->cap || a->used > a->cap - need)) {
        a->exhausted = true;
        return NULL;
    }
    block_t *b = a->head;
    if (b == NULL || b->size - b->used < need) {
        block_t *nb = block_new(need > BLOCK_SIZE ? need : BLOCK_SIZE);
        if (nb == NULL) {
            return NULL;
        }
        /* A big one-off block goes behind the current one, so the current block keeps
         * serving small allocations. */
        if (b != NULL && need > BLOCK_SIZE) {
            nb->next = b->next;
            b->next = nb;
        } else {
            nb->next = b;
            a->head = nb;
        }
        b = nb;
    }
    void *p = b->data + b->used;
    b->used += need;
    a->used += need;
    return p;
}

void *om_arena_calloc(om_arena_t *a, size_t count, size_t n)
{
    if (n != 0 && count > SIZE_MAX / n) {
        a->exhausted = true;
        return NULL;
    }
    void *p = om_arena_alloc(a, count * n);
    if (p != NULL) {
        memset(p, 0, count * n);
    }
    return p;
}

char *om_arena_strndup(om_arena_t *a, const char *s, size_t n)
{
    if (n == SIZE_MAX) {
        return NULL;
    }
    char *d = om_arena_alloc(a, n + 1);
    if (d == NULL) {
        return NULL;
    }
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

bool om_arena_exhausted(const om_arena_t *a)
{
    return a->exhausted;
}

int om_arena_fail(const om_arena_t *a, om_err_t *err, const char *what)
{
    if (a != NULL && om_arena_exhausted(a)) {
        om_err_set(err, OM_ETOOBIG, "%s exceeds the memory limit", what);
        return OM_ETOOBIG;
    }
    om_err_set(err, OM_ENOMEM, "out of memory");
    return OM_ENOMEM;
}

size_t om_arena_used(const om_arena_t *a)
{
    return a->used;
}

om_arena_t *om_arena_ref(om_arena_t *a)
{
    a->refs++;
    return a;
}

void om_arena_unref(om_arena_t *a)
{
    if (a == NULL || --a->refs > 0) {
        return;
    }
    block_t *b = a->head;
    while (b != NULL) {
        block_t *next = b->next;
        atomic_fetch_sub_explicit(&live_bytes, sizeof *b + b->size, memory_order_relaxed);
        om_free(b);
        b = next;
    }
    om_free(a);
}

ProtobufCAllocator *om_arena_pb_allocator(om_arena_t *a)
{
    return &a->pb;
}

size_t om_arena_cap(const om_arena_t *a)
{
    return a->cap;
}
