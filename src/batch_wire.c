/* batch_wire.c: keeping or dropping the items of a batch from its wire bytes, without
 * decoding it (om_batch_wire_walk), and the protobuf field reader components read those bytes
 * with (om_pb_next).
 *
 * A batch that arrived as OTLP protobuf holds its request as raw segments, each a sequence of
 * whole top-level fields (a request, or requests appended). The walk reads the resource and
 * scope entries of each segment to find the items (spans, log records) and hands each item's
 * bytes to the callback with the bytes of its Resource and InstrumentationScope. When
 * something is dropped, the kept bytes are copied into a new batch (wire bytes only), with new
 * length prefixes for the containers; containers the drops emptied go, as om_batch_walk does
 * it. Field order, unknown fields and every byte of what is kept stay as they came.
 *
 * Loop thread, like every batch function; no decoding, one pass to call back and one to copy. */
#include <limits.h>
#include <string.h>

#include "batch_int.h"

/* ---- protobuf fields ---------------------------------------------------------------------- */

int om__pb_next_general(const uint8_t **pos, const uint8_t *end, om_pb_field_t *f)
{
    const uint8_t *p = *pos;
    if (p >= end) {
        return 0;
    }
    /* As protobuf-c reads a tag: a one-byte tag must carry a field number; a longer one may
     * spell number 0 (an unknown field it skips), and so does the wire scan (wire.c). */
    if ((*p & 0xf8) == 0) {
        return OM_EINVAL;
    }
    uint64_t v = 0;
    unsigned shift = 0;
    /* The tag: a varint of at most 5 bytes carrying a field number. */
    for (;;) {
        if (p >= end || shift > 28) {
            return OM_EINVAL;
        }
        v |= (uint64_t)(*p & 0x7f) << shift;
        shift += 7;
        if ((*p++ & 0x80) == 0) {
            break;
        }
    }
    f->number = (uint32_t)(v >> 3);
    f->wire_type = (unsigned)(v & 7);
    f->data = p;
    f->len = 0;
    switch (f->wire_type) {
    case OM_PB_VARINT:
        v = 0;
        for (shift = 0;; shift += 7) {
            if (p >= end || shift > 63) {
                return OM_EINVAL;
            }
            v |= (uint64_t)(*p & 0x7f) << shift;
            if ((*p++ & 0x80) == 0) {
                break;
            }
        }
        f->value = v;
        f->len = (size_t)(p - f->data);
        break;
    case OM_PB_FIXED64:
    case OM_PB_FIXED32: {
        size_t n = f->wire_type == OM_PB_FIXED64 ? 8 : 4;
        if ((size_t)(end - p) < n) {
            return OM_EINVAL;
        }
        v = 0;
        for (size_t i = 0; i < n; i++) {
            v |= (uint64_t)p[i] << (8 * i);
        }
        f->value = v;
        f->len = n;
        p += n;
        break;
    }
    case OM_PB_LEN: {
        v = 0;
        for (shift = 0;; shift += 7) {
            if (p >= end || shift > 28) {
                return OM_EINVAL;
            }
            v |= (uint64_t)(*p & 0x7f) << shift;
            if ((*p++ & 0x80) == 0) {
                break;
            }
        }
        if (v > INT_MAX || v > (uint64_t)(end - p)) {
            return OM_EINVAL;
        }
        f->data = p;
        f->len = (size_t)v;
        f->value = v;
        p += v;
        break;
    }
    default:
        return OM_EINVAL; /* groups: protobuf-c refuses them in OTLP messages */
    }
    *pos = p;
    return 1;
}

/* ---- reading the containers --------------------------------------------------------------- */

/* Field numbers shared by traces and logs: a request holds resource entries (1); a resource
 * entry its Resource (1) and scope entries (2); a scope entry its scope (1) and items (2). */
enum { F_ENTRY = 1, F_HEAD = 1, F_CHILD = 2 };

/* The last occurrence of field F_HEAD (a Resource or a scope) in a container's bytes; NULL
 * when there is none. */
static int head_of(const uint8_t *p, size_t len, const uint8_t **head, size_t *head_len)
{
    const uint8_t *end = p + len;
    om_pb_field_t f;
    int rc;
    *head = NULL;
    *head_len = 0;
    while ((rc = om_pb_next(&p, end, &f)) == 1) {
        if (f.number == F_HEAD && f.wire_type == OM_PB_LEN) {
            *head = f.data;
            *head_len = f.len;
        }
    }
    return rc;
}

typedef struct wire_walk {
    om_wire_walk_fn fn;
    void *arg;
    uint64_t *bits; /* dropped items, by ordinal */
    size_t n_bits, cap_words;
    size_t dropped;
} wire_walk_t;

static int mark(wire_walk_t *w, bool drop)
{
    size_t i = w->n_bits++;
    if (i / 64 >= w->cap_words) {
        size_t cap = w->cap_words ? w->cap_words * 2 : 8;
        uint64_t *nb = om_realloc(w->bits, cap * sizeof *nb);
        if (nb == NULL) {
            return OM_ENOMEM;
        }
        memset(nb + w->cap_words, 0, (cap - w->cap_words) * sizeof *nb);
        w->bits = nb;
        w->cap_words = cap;
    }
    if (drop) {
        w->bits[i / 64] |= (uint64_t)1 << (i % 64);
        w->dropped++;
    }
    return 0;
}

static bool dropped_at(const wire_walk_t *w, size_t i)
{
    return (w->bits[i / 64] >> (i % 64) & 1) != 0;
}

/* Calls back for each item of a scope entry. */
static int visit_scope_entry(wire_walk_t *w, om_wire_item_t *it, const uint8_t *p, size_t len)
{
    int rc = head_of(p, len, &it->scope, &it->scope_len);
    const uint8_t *end = p + len;
    om_pb_field_t f;
    while (rc >= 0 && (rc = om_pb_next(&p, end, &f)) == 1) {
        if (f.number != F_CHILD || f.wire_type != OM_PB_LEN) {
            continue;
        }
        it->item = f.data;
        it->item_len = f.len;
        int v = w->fn(it, w->arg);
        if (v < 0) {
            return v;
        }
        rc = mark(w, v == OM_DROP);
    }
    return rc;
}

static int visit_resource_entry(wire_walk_t *w, const uint8_t *p, size_t len)
{
    om_wire_item_t it = {0};
    int rc = head_of(p, len, &it.resource, &it.resource_len);
    const uint8_t *end = p + len;
    om_pb_field_t f;
    while (rc >= 0 && (rc = om_pb_next(&p, end, &f)) == 1) {
        if (f.number == F_CHILD && f.wire_type == OM_PB_LEN) {
            rc = visit_scope_entry(w, &it, f.data, f.len);
        }
    }
    return rc;
}

static int visit(wire_walk_t *w, const om_batch_t *b)
{
    for (size_t s = 0; s < b->n_raw; s++) {
        const uint8_t *p = b->raw[s].data, *end = p + b->raw[s].len;
        om_pb_field_t f;
        int rc;
        while ((rc = om_pb_next(&p, end, &f)) == 1) {
            if (f.number == F_ENTRY && f.wire_type == OM_PB_LEN) {
                rc = visit_resource_entry(w, f.data, f.len);
                if (rc < 0) {
                    return rc;
                }
            }
        }
        if (rc < 0) {
            return rc;
        }
    }
    return 0;
}

/* ---- writing what is kept ----------------------------------------------------------------- */

/* The copy: when out is NULL only sizes are computed. Each container's kept size is computed
 * before it is written, by a sizing pass over it (containers are small; this reads each
 * container twice). */
typedef struct writer {
    const wire_walk_t *w;
    size_t ordinal; /* next item */
    uint8_t *out;
    size_t resources;
} writer_t;

/* The bytes of a scope entry without its dropped items: written to out (when not NULL) and
 * their count returned in *size. *emptied: it had items and kept none. */
static void scope_entry_kept(writer_t *wr, const uint8_t *p, size_t len, uint8_t **out,
                             size_t *size, bool *emptied)
{
    const uint8_t *end = p + len;
    om_pb_field_t f;
    size_t had = 0, kept = 0;
    *size = 0;
    for (const uint8_t *start = p; om_pb_next(&p, end, &f) == 1; start = p) {
        bool item = f.number == F_CHILD && f.wire_type == OM_PB_LEN;
        if (item) {
            had++;
            if (dropped_at(wr->w, wr->ordinal++)) {
                continue;
            }
            kept++;
        }
        size_t n = (size_t)(p - start);
        *size += n;
        if (out != NULL) {
            memcpy(*out, start, n);
            *out += n;
        }
    }
    *emptied = had > 0 && kept == 0;
}

/* The same for a resource entry: scope entries emptied go. */
static void resource_entry_kept(writer_t *wr, const uint8_t *p, size_t len, uint8_t **out,
                                size_t *size, bool *emptied)
{
    const uint8_t *end = p + len;
    om_pb_field_t f;
    size_t removed = 0, left = 0;
    *size = 0;
    for (const uint8_t *start = p; om_pb_next(&p, end, &f) == 1; start = p) {
        if (f.number != F_CHILD || f.wire_type != OM_PB_LEN) {
            size_t n = (size_t)(p - start);
            *size += n;
            if (out != NULL) {
                memcpy(*out, start, n);
                *out += n;
            }
            continue;
        }
        size_t first = wr->ordinal, inner = 0;
        bool gone = false;
        scope_entry_kept(wr, f.data, f.len, NULL, &inner, &gone);
        if (gone) {
            removed++;
            continue;
        }
        left++;
        *size += 1 + om_pb_varint_len(inner) + inner;
        if (out != NULL) {
            *(*out)++ = (uint8_t)(F_CHILD << 3 | OM_PB_LEN);
            *out = om_pb_put_varint(*out, inner);
            wr->ordinal = first;
            scope_entry_kept(wr, f.data, f.len, out, &inner, &gone);
        }
    }
    *emptied = removed > 0 && left == 0;
}

/* The kept request: its size, and its bytes when out is not NULL. */
static size_t write_kept(writer_t *wr, const om_batch_t *b, uint8_t *out)
{
    size_t total = 0;
    wr->ordinal = 0;
    wr->resources = 0;
    for (size_t s = 0; s < b->n_raw; s++) {
        const uint8_t *p = b->raw[s].data, *end = p + b->raw[s].len;
        om_pb_field_t f;
        for (const uint8_t *start = p; om_pb_next(&p, end, &f) == 1; start = p) {
            if (f.number != F_ENTRY || f.wire_type != OM_PB_LEN) {
                size_t n = (size_t)(p - start);
                total += n;
                if (out != NULL) {
                    memcpy(out, start, n);
                    out += n;
                }
                continue;
            }
            size_t first = wr->ordinal, inner = 0;
            bool gone = false;
            resource_entry_kept(wr, f.data, f.len, NULL, &inner, &gone);
            if (gone) {
                continue;
            }
            wr->resources++;
            total += 1 + om_pb_varint_len(inner) + inner;
            if (out != NULL) {
                *out++ = (uint8_t)(F_ENTRY << 3 | OM_PB_LEN);
                out = om_pb_put_varint(out, inner);
                wr->ordinal = first;
                resource_entry_kept(wr, f.data, f.len, &out, &inner, &gone);
            }
        }
    }
    return total;
}

/* The new batch holding the kept bytes (wire only), in a new arena with the old one's cap so
 * that decoding it later has the room decoding the original had. */
static int rebuild(om_batch_t **bp, const wire_walk_t *w, om_err_t *err)
{
    om_batch_t *b = *bp;
    writer_t wr = {.w = w};
    size_t len = write_kept(&wr, b, NULL);
    om_arena_t *arena = om_arena_new(om_arena_cap(b->arenas[0]));
    uint8_t *data = arena != NULL ? om_arena_alloc(arena, len > 0 ? len : 1) : NULL;
    om_raw_seg_t *segs = data != NULL ? om_malloc(4 * sizeof *segs) : NULL;
    om_batch_t *nb = segs != NULL ? om__batch_wrap(b->signal, arena, NULL) : NULL;
    if (nb == NULL) {
        int rc = arena != NULL ? om_arena_fail(arena, err, "filtered batch") : OM_ENOMEM;
        if (arena == NULL) {
            om_err_set(err, OM_ENOMEM, "out of memory");
        }
        om_free(segs);
        om_arena_unref(arena);
        return rc;
    }
    write_kept(&wr, b, data);
    segs[0] = (om_raw_seg_t){.data = data, .len = len};
    nb->raw = segs;
    nb->n_raw = len > 0 ? 1 : 0;
    nb->cap_raw = 4;
    nb->raw_valid = true;
    nb->items = w->n_bits - w->dropped;
    nb->wire_counts = (om_batch_counts_t){.resources = wr.resources, .items = nb->items};
    om_batch_release(b);
    *bp = nb;
    return 0;
}

int om_batch_wire_walk(om_batch_t **bp, om_level_t level, om_wire_walk_fn fn, void *arg,
                       om_err_t *err)
{
    om_batch_t *b = *bp;
    bool fits = (level == OM_LEVEL_SPAN && b->signal == OM_SIG_TRACES) ||
                (level == OM_LEVEL_LOG && b->signal == OM_SIG_LOGS);
    if (!fits || !b->raw_valid) {
        om_err_set(err, OM_ENOTSUP, "%s",
                   fits ? "the batch has no wire bytes"
                        : "the wire walk takes spans and log records");
        return OM_ENOTSUP;
    }
    wire_walk_t w = {.fn = fn, .arg = arg};
    int rc = visit(&w, b);
    if (rc == OM_EINVAL) {
        om_err_set(err, OM_EINVAL, "malformed wire bytes");
    } else if (rc == OM_ENOMEM) {
        om_err_set(err, OM_ENOMEM, "out of memory");
    }
    if (rc == 0 && w.dropped > 0) {
        rc = rebuild(bp, &w, err);
    }
    size_t dropped = w.dropped;
    om_free(w.bits);
    if (rc < 0) {
        return rc;
    }
    return dropped > INT_MAX ? INT_MAX : (int)dropped;
}
