/* batch.c: signals, batches of OTLP data, and consumers.
 *
 * The three Export*ServiceRequest messages share one shape (a repeated resource entry), so the
 * code that only moves resource entries handles them through resource_array(). */
#include <string.h>

#include "batch_int.h"
#include "wire.h"

typedef struct signal_info {
    om_signal_t sig;
    const char *name, *item_name;
    const ProtobufCMessageDescriptor *desc;
} signal_info_t;

static const signal_info_t signals[OM_SIG_COUNT] = {
    {OM_SIG_TRACES, "traces", "spans",
     &opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor},
    {OM_SIG_METRICS, "metrics", "metric points",
     &opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__descriptor},
    {OM_SIG_LOGS, "logs", "log records",
     &opentelemetry__proto__collector__logs__v1__export_logs_service_request__descriptor},
};

int om_signal_index(om_signal_t s)
{
    switch (s) {
    case OM_SIG_TRACES:
        return 0;
    case OM_SIG_METRICS:
        return 1;
    case OM_SIG_LOGS:
        return 2;
    default:
        return -1;
    }
}

om_signal_t om_signal_from_index(int i)
{
    return (i >= 0 && i < OM_SIG_COUNT) ? signals[i].sig : 0;
}

const char *om_signal_name(om_signal_t s)
{
    int i = om_signal_index(s);
    return i < 0 ? "?" : signals[i].name;
}

const char *om_signal_item_name(om_signal_t s)
{
    int i = om_signal_index(s);
    return i < 0 ? "?" : signals[i].item_name;
}

/* The resource array of any request: where its count is, and where its pointer array is
 * (the field itself, so that the array can be replaced). */
typedef struct resource_ref {
    size_t *n;
    void ***items;
} resource_ref_t;

static resource_ref_t resource_array(const om_batch_t *b)
{
    switch (b->signal) {
    case OM_SIG_TRACES:
        return (resource_ref_t){&b->traces->n_resource_spans, (void ***)&b->traces->resource_spans};
    case OM_SIG_METRICS:
        return (resource_ref_t){&b->metrics->n_resource_metrics,
                                (void ***)&b->metrics->resource_metrics};
    default:
        return (resource_ref_t){&b->logs->n_resource_logs, (void ***)&b->logs->resource_logs};
    }
}

om_batch_t *om__batch_wrap(om_signal_t sig, om_arena_t *arena, ProtobufCMessage *msg)
{
    om_batch_t *b = om_calloc(1, sizeof *b);
    om_arena_t **arenas = om_malloc(sizeof *arenas * 4);
    if (b == NULL || arenas == NULL) {
        om_free(b);
        om_free(arenas);
        return NULL;
    }
    b->signal = sig;
    b->refs = 1;
    b->msg = msg;
    b->arenas = arenas;
    b->arenas[0] = arena;
    b->n_arenas = 1;
    b->cap_arenas = 4;
    return b;
}

om_batch_t *om_batch_new(om_signal_t sig, size_t arena_cap)
{
    int i = om_signal_index(sig);
    if (i < 0) {
        return NULL;
    }
    om_arena_t *arena = om_arena_new(arena_cap);
    if (arena == NULL) {
        return NULL;
    }
    ProtobufCMessage *msg = om_arena_alloc(arena, signals[i].desc->sizeof_message);
    if (msg == NULL) {
        om_arena_unref(arena);
        return NULL;
    }
    protobuf_c_message_init(signals[i].desc, msg);
    om_batch_t *b = om__batch_wrap(sig, arena, msg);
    if (b == NULL) {
        om_arena_unref(arena);
    }
    return b;
}

/* Keep the wire bytes, so that an unchanged batch is forwarded without encoding it again:
 * a copy in the batch's arena, or data itself when it is in that arena already (in_arena).
 * Returns false without memory for them (a decoded batch is then simply encoded when sent). */
static bool keep_raw(om_batch_t *b, const uint8_t *data, size_t len, bool in_arena)
{
    if (len == 0) {
        b->raw_valid = true;
        return true;
    }
    uint8_t *copy = in_arena ? (uint8_t *)data : om_arena_alloc(b->arenas[0], len);
    om_raw_seg_t *segs = om_malloc(sizeof *segs * 4);
    if (copy == NULL || segs == NULL) {
        om_free(segs);
        return false;
    }
    if (!in_arena) {
        memcpy(copy, data, len);
    }
    segs[0] = (om_raw_seg_t){.data = copy, .len = len};
    b->raw = segs;
    b->n_raw = 1;
    b->cap_raw = 4;
    b->raw_valid = true;
    return true;
}

void om__batch_drop_raw(om_batch_t *b)
{
    om_free(b->raw);
    b->raw = NULL;
    b->n_raw = b->cap_raw = 0;
    b->raw_valid = false;
}

/* Append src's segments to dst's. Returns OM_ENOMEM, with dst unchanged, when out of memory. */
static int append_raw(om_batch_t *dst, const om_batch_t *src)
{
    if (dst->n_raw + src->n_raw > dst->cap_raw) {
        size_t cap = dst->cap_raw ? dst->cap_raw : 4;
        while (cap < dst->n_raw + src->n_raw) {
            cap *= 2;
        }
        om_raw_seg_t *ns = om_realloc(dst->raw, cap * sizeof *ns);
        if (ns == NULL) {
            return OM_ENOMEM;
        }
        dst->raw = ns;
        dst->cap_raw = cap;
    }
    if (src->n_raw > 0) {
        memcpy(dst->raw + dst->n_raw, src->raw, src->n_raw * sizeof *src->raw);
    }
    dst->n_raw += src->n_raw;
    return 0;
}

/* Unpack one request into the arena; NULL when it does not decode (err says why). */
static ProtobufCMessage *unpack(int sig_index, om_arena_t *arena, const uint8_t *data, size_t len,
                                om_err_t *err)
{
    ProtobufCMessage *msg =
        protobuf_c_message_unpack(signals[sig_index].desc, om_arena_pb_allocator(arena), len, data);
    if (msg == NULL) {
        if (om_arena_exhausted(arena)) {
            om_err_set(err, OM_ETOOBIG, "decoded %s request exceeds the memory limit of %zu bytes",
                       signals[sig_index].name, om_arena_cap(arena));
        } else {
            om_err_set(err, OM_EINVAL, "invalid protobuf: cannot decode an Export %s request",
                       signals[sig_index].name);
        }
    }
    return msg;
}

static int err_code(const om_err_t *err)
{
    return err != NULL && err->code != 0 ? err->code : OM_EINVAL;
}

/* om_batch_decode_proto's work. arena: NULL (one is made, of arena_cap), or the arena that
 * data already lies in (its reference passes to the batch, or is dropped on failure). */
static int decode_proto(om_signal_t sig, om_arena_t *arena, const uint8_t *data, size_t len,
                        size_t arena_cap, om_batch_t **out, om_err_t *err)
{
    bool in_arena = arena != NULL;
    *out = NULL;
    int i = om_signal_index(sig);
    if (i < 0) {
        om_arena_unref(arena);
        om_err_set(err, OM_EINVAL, "unknown signal");
        return OM_EINVAL;
    }
    om__wire_info_t info;
    int rc = om__wire_scan(sig, data, len, &info);
    if (rc == OM_EINVAL) {
        om_arena_unref(arena);
        if (info.too_deep) {
            om_err_set(err, OM_EINVAL,
                       "invalid protobuf: cannot decode an Export %s request: nested deeper than "
                       "%d messages",
                       signals[i].name, OM__WIRE_MAX_DEPTH);
        } else {
            om_err_set(err, OM_EINVAL, "invalid protobuf: cannot decode an Export %s request",
                       signals[i].name);
        }
        return OM_EINVAL;
    }
    /* The wire copy lives in the same arena as the structs om_batch_decode() makes from it
     * later: the request it gathers the resource entries in, their array, and what unpacking
     * takes. All of it must fit under the cap, so that decoding later cannot fail for size. */
    bool wire_only = rc == 0 && !info.needs_unpack;
    size_t overhead = signals[i].desc->sizeof_message + 64 + 16 * info.resources;
    if (wire_only && arena_cap != 0 &&
        (info.decoded_bytes > arena_cap || len > arena_cap - info.decoded_bytes ||
         overhead > arena_cap - info.decoded_bytes - len)) {
        om_arena_unref(arena);
        om_err_set(err, OM_ETOOBIG, "decoded %s request exceeds the memory limit of %zu bytes",
                   signals[i].name, arena_cap);
        return OM_ETOOBIG;
    }
    if (arena == NULL) {
        arena = om_arena_new(arena_cap);
    }
    om_batch_t *b = arena != NULL ? om__batch_wrap(sig, arena, NULL) : NULL;
    if (b == NULL) {
        om_arena_unref(arena);
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    if (wire_only) {
        /* Nothing needs the structs yet: om_batch_decode() builds them if something does. */
        b->items = info.items;
        b->wire_counts = (om_batch_counts_t){info.resources, info.metrics, info.items};
        b->wire_decoded = info.decoded_bytes;
        if (!keep_raw(b, data, len, in_arena)) {
            om_batch_release(b);
            om_err_set(err, OM_ENOMEM, "out of memory");
            return OM_ENOMEM;
        }
        *out = b;
        return 0;
    }
    /* A request only protobuf-c can judge (see wire.h), or no scan tables: unpack it now. */
    b->msg = unpack(i, arena, data, len, err);
    if (b->msg == NULL) {
        om_batch_release(b);
        return err_code(err);
    }
    b->items = om_batch_count_items(b);
    keep_raw(b, data, len, in_arena);
    *out = b;
    return 0;
}

int om_batch_decode_proto(om_signal_t sig, const uint8_t *data, size_t len, size_t arena_cap,
                          om_batch_t **out, om_err_t *err)
{
    return decode_proto(sig, NULL, data, len, arena_cap, out, err);
}

int om_batch_decode_proto_parts(om_signal_t sig, const uv_buf_t *parts, size_t n_parts,
                                size_t arena_cap, om_batch_t **out, om_err_t *err)
{
    size_t len = 0;
    for (size_t k = 0; k < n_parts; k++) {
        len += parts[k].len;
    }
    *out = NULL;
    om_arena_t *arena = om_arena_new(arena_cap);
    uint8_t *data = arena != NULL && len > 0 ? om_arena_alloc(arena, len) : NULL;
    if (arena == NULL || (len > 0 && data == NULL)) {
        int rc = om_arena_fail(arena, err, "request");
        om_arena_unref(arena);
        return rc;
    }
    size_t at = 0;
    for (size_t k = 0; k < n_parts; k++) {
        if (parts[k].len > 0) {
            memcpy(data + at, parts[k].base, parts[k].len);
            at += parts[k].len;
        }
    }
    return decode_proto(sig, arena, data, len, arena_cap, out, err);
}

/* Room for `extra` more resource entries in dst, growing geometrically inside dst's arena. */
static int reserve_resources(om_batch_t *dst, size_t extra);

/* Decode the requests segs[0..n) into b (which has no msg yet), in b's arena: a new request
 * gathering the resource entries of all of them (room made for `resources` up front). On
 * failure b->msg is NULL again (the arena keeps what was decoded). */
static int unpack_segments(om_batch_t *b, const om_raw_seg_t *segs, size_t n, size_t resources,
                           om_err_t *err)
{
    int i = om_signal_index(b->signal);
    ProtobufCMessage *req = om_arena_alloc(b->arenas[0], signals[i].desc->sizeof_message);
    if (req == NULL) {
        return om_arena_fail(b->arenas[0], err, "decoded batch");
    }
    protobuf_c_message_init(signals[i].desc, req);
    b->msg = req;
    b->res_cap = 0;
    /* Each segment is a whole request (see om_batch_proto_pack): decode them one by one and
     * gather their resource entries. */
    int rc = reserve_resources(b, resources);
    for (size_t s = 0; rc == 0 && s < n; s++) {
        om_batch_t part = {.signal = b->signal};
        part.msg = unpack(i, b->arenas[0], segs[s].data, segs[s].len, err);
        if (part.msg == NULL) {
            rc = err_code(err);
            break;
        }
        resource_ref_t from = resource_array(&part);
        rc = reserve_resources(b, *from.n);
        if (rc == 0 && *from.n > 0) {
            resource_ref_t to = resource_array(b);
            memcpy(*to.items + *to.n, *from.items, *from.n * sizeof(void *));
            *to.n += *from.n;
        }
    }
    if (rc != 0) {
        b->msg = NULL;
        b->res_cap = 0;
        if (rc == OM_ENOMEM) {
            om_arena_fail(b->arenas[0], err, "decoded batch");
            rc = om_arena_exhausted(b->arenas[0]) ? OM_ETOOBIG : OM_ENOMEM;
        }
    }
    return rc;
}

int om_batch_decode(om_batch_t *b, om_err_t *err)
{
    if (b->msg != NULL) {
        return 0;
    }
    /* On failure the batch is still whole as its wire bytes. */
    return unpack_segments(b, b->raw, b->n_raw, b->wire_counts.resources, err);
}

void om_batch_counts(const om_batch_t *b, om_batch_counts_t *c)
{
    if (b->msg == NULL) {
        *c = b->wire_counts;
        return;
    }
    *c = (om_batch_counts_t){.items = om_batch_count_items(b)};
    resource_ref_t r = resource_array(b);
    c->resources = *r.n;
    if (b->signal == OM_SIG_METRICS) {
        for (size_t i = 0; i < b->metrics->n_resource_metrics; i++) {
            const om_resource_metrics_t *rm = b->metrics->resource_metrics[i];
            for (size_t j = 0; j < rm->n_scope_metrics; j++) {
                c->metrics += rm->scope_metrics[j]->n_metrics;
            }
        }
    }
}

om_batch_t *om_batch_ref(om_batch_t *b)
{
    b->refs++;
    return b;
}

void om_batch_release(om_batch_t *b)
{
    if (b == NULL || --b->refs > 0) {
        return;
    }
    for (size_t i = 0; i < b->n_arenas; i++) {
        om_arena_unref(b->arenas[i]);
    }
    om_free(b->arenas);
    om_free(b->raw);
    om_free(b);
}

size_t om_batch_proto_size(const om_batch_t *b)
{
    if (!b->raw_valid) {
        return protobuf_c_message_get_packed_size(b->msg);
    }
    size_t n = 0;
    for (size_t i = 0; i < b->n_raw; i++) {
        n += b->raw[i].len;
    }
    return n;
}

size_t om_batch_proto_pack(const om_batch_t *b, uint8_t *out)
{
    if (!b->raw_valid) {
        return protobuf_c_message_pack(b->msg, out);
    }
    /* A request is a sequence of resource entries, so requests concatenated are the request
     * holding all their entries: the bytes of merged batches are their bytes end to end. */
    size_t n = 0;
    for (size_t i = 0; i < b->n_raw; i++) {
        memcpy(out + n, b->raw[i].data, b->raw[i].len);
        n += b->raw[i].len;
    }
    return n;
}

/* An upper bound of what decoding segs[0..n) into one batch takes from its arena: protobuf-c's
 * nodes (as the wire scan bounds them), and the request gathering the resource entries with
 * their array (as decode_proto counts it). 0 when it cannot be told (no scan tables). */
static size_t decoded_bound(om_signal_t sig, const om_raw_seg_t *segs, size_t n, size_t resources)
{
    size_t need = signals[om_signal_index(sig)].desc->sizeof_message + 64 + 16 * resources;
    for (size_t s = 0; s < n; s++) {
        om__wire_info_t info;
        if (om__wire_scan(sig, segs[s].data, segs[s].len, &info) != 0 ||
            info.decoded_bytes > SIZE_MAX / 4 - need) {
            return 0;
        }
        need += info.decoded_bytes;
    }
    return need;
}

/* The cap of an arena that holds `need` bytes of a batch plus the room for edits. */
static size_t edit_cap(size_t need)
{
    size_t room = need > OM_BATCH_EDIT_ROOM ? need : OM_BATCH_EDIT_ROOM;
    return need > SIZE_MAX - room ? SIZE_MAX : need + room;
}

/* om_batch_clone's work, saying why it failed. The copy is made from the wire bytes when the
 * batch has them, else from msg packed into a scratch buffer: unpacking is the simplest deep
 * copy that is right for every field, and the wire scan bounds what it takes, which gives the
 * copy's arena its cap. */
static int clone_batch(const om_batch_t *b, om_batch_t **out, om_err_t *err)
{
    *out = NULL;
    const om_raw_seg_t *segs = b->raw;
    size_t n = b->n_raw;
    om_raw_seg_t packed;
    uint8_t *buf = NULL;
    if (!b->raw_valid) {
        size_t len = protobuf_c_message_get_packed_size(b->msg);
        buf = om_malloc(len > 0 ? len : 1);
        if (buf == NULL) {
            om_err_set(err, OM_ENOMEM, "out of memory");
            return OM_ENOMEM;
        }
        packed = (om_raw_seg_t){.data = buf, .len = protobuf_c_message_pack(b->msg, buf)};
        segs = &packed;
        n = 1;
    }
    om_batch_counts_t c;
    om_batch_counts(b, &c);
    size_t need = decoded_bound(b->signal, segs, n, c.resources);
    om_arena_t *arena = om_arena_new(need != 0 ? edit_cap(need) : 0);
    om_batch_t *copy = arena != NULL ? om__batch_wrap(b->signal, arena, NULL) : NULL;
    int rc = 0;
    if (copy == NULL) {
        om_arena_unref(arena);
        om_err_set(err, OM_ENOMEM, "out of memory");
        rc = OM_ENOMEM;
    } else if ((rc = unpack_segments(copy, segs, n, c.resources, err)) != 0) {
        om_batch_release(copy);
    } else {
        om__batch_recount(copy);
        *out = copy;
    }
    om_free(buf);
    return rc;
}

om_batch_t *om_batch_clone(const om_batch_t *b)
{
    om_batch_t *copy = NULL;
    clone_batch(b, &copy, NULL);
    return copy;
}

/* A batch edited in place whose arena has no cap gets a new arena for its new nodes, with a
 * cap of what the batch holds (at least OM_BATCH_EDIT_ROOM), as arenas[0]. */
static int add_edit_arena(om_batch_t *b, om_err_t *err);

int om_batch_edit(om_batch_t **bp, om_err_t *err)
{
    om_batch_t *b = *bp;
    if (b->refs > 1 || b->borrowed) {
        om_batch_t *copy = NULL;
        int rc = clone_batch(b, &copy, err);
        if (rc != 0) {
            return rc;
        }
        om_batch_release(b);
        *bp = copy;
        return 0;
    }
    int rc = om_batch_decode(b, err);
    if (rc == 0 && om_arena_cap(b->arenas[0]) == 0) {
        rc = add_edit_arena(b, err);
    }
    if (rc == 0 && (b->raw_valid || b->raw != NULL)) {
        om__batch_drop_raw(b); /* the caller is about to change msg */
    }
    return rc;
}

bool om_batch_wire_editable(const om_batch_t *b)
{
    return b->refs == 1 && !b->borrowed && b->msg == NULL && b->raw_valid;
}

/* The bytes' counts and decoding bound: from a check, or (a rewrite whose bound is known)
 * from the bytes they replace. 64 bytes decoded per byte of wire grown covers the densest
 * encodings (an empty KeyValue: 6 bytes of wire, about 170 decoded with its slab entry). */
static int wire_info_of(const om_batch_t *b, const uint8_t *data, size_t len, om_wire_how_t how,
                        om__wire_info_t *info)
{
    size_t old_len = b->n_raw == 1 ? b->raw[0].len : 0;
    if (how == OM_WIRE_REWRITTEN && b->wire_decoded != 0 && b->n_raw == 1 && b->n_arenas == 1) {
        size_t grown = len > old_len ? len - old_len : 0;
        if (grown > (SIZE_MAX - b->wire_decoded) / 64) {
            return OM_ETOOBIG;
        }
        *info = (om__wire_info_t){.resources = b->wire_counts.resources,
                                  .metrics = b->wire_counts.metrics,
                                  .items = b->wire_counts.items,
                                  .decoded_bytes = b->wire_decoded + 64 * grown};
        return 0;
    }
    if (om__wire_scan(b->signal, data, len, info) != 0 || info->needs_unpack) {
        return OM_EINVAL;
    }
    return 0;
}

int om_batch_set_wire(om_batch_t *b, const uint8_t *data, size_t len, om_wire_how_t how,
                      om_err_t *err)
{
    if (!om_batch_wire_editable(b)) {
        om_err_set(err, OM_EPERM, "the batch is not editable on the wire");
        return OM_EPERM;
    }
    int i = om_signal_index(b->signal);
    om__wire_info_t info;
    int rc = wire_info_of(b, data, len, how, &info);
    if (rc != 0) {
        om_err_set(err, rc, "an edited Export %s request %s", signals[i].name,
                   rc == OM_EINVAL ? "does not check" : "is too large");
        return rc;
    }
    /* What decoding it will take must still fit, as om_batch_decode_proto made sure for the
     * bytes it replaces (those stay in the arena until the batch goes). */
    om_arena_t *a = b->arenas[0];
    size_t cap = om_arena_cap(a), used = om_arena_used(a);
    size_t overhead = signals[i].desc->sizeof_message + 64 + 16 * info.resources;
    if (cap != 0 && (used > cap || info.decoded_bytes > cap - used ||
                     overhead > cap - used - info.decoded_bytes)) {
        om_err_set(err, OM_ETOOBIG, "an edited %s request exceeds the memory limit of %zu bytes",
                   signals[i].name, cap);
        return OM_ETOOBIG;
    }
    if (b->cap_raw == 0) {
        om_raw_seg_t *segs = om_malloc(sizeof *segs);
        if (segs == NULL) {
            om_err_set(err, OM_ENOMEM, "out of memory");
            return OM_ENOMEM;
        }
        b->raw = segs;
        b->cap_raw = 1;
    }
    bool one_request = b->n_raw <= 1 && b->n_arenas == 1;
    b->raw[0] = (om_raw_seg_t){.data = data, .len = len};
    b->n_raw = len > 0 ? 1 : 0;
    b->items = info.items;
    b->wire_counts = (om_batch_counts_t){info.resources, info.metrics, info.items};
    b->wire_decoded = one_request ? info.decoded_bytes : 0;
    return 0;
}

bool om__batch_editing(const om_batch_t *b)
{
    return b->refs == 1 && !b->borrowed && b->msg != NULL && !b->raw_valid;
}

void om__batch_recount(om_batch_t *b)
{
    om_batch_counts_t c;
    om_batch_counts(b, &c);
    b->items = c.items;
    b->wire_counts = c;
}

static int add_arena(om_batch_t *dst, om_arena_t *a)
{
    for (size_t i = 0; i < dst->n_arenas; i++) {
        if (dst->arenas[i] == a) {
            return 0;
        }
    }
    if (dst->n_arenas == dst->cap_arenas) {
        size_t cap = dst->cap_arenas * 2;
        om_arena_t **na = om_realloc(dst->arenas, cap * sizeof *na);
        if (na == NULL) {
            return OM_ENOMEM;
        }
        dst->arenas = na;
        dst->cap_arenas = cap;
    }
    dst->arenas[dst->n_arenas++] = om_arena_ref(a);
    return 0;
}

static int add_edit_arena(om_batch_t *b, om_err_t *err)
{
    size_t held = 0;
    for (size_t i = 0; i < b->n_arenas; i++) {
        held += om_arena_used(b->arenas[i]);
    }
    om_arena_t *a = om_arena_new(held > OM_BATCH_EDIT_ROOM ? held : OM_BATCH_EDIT_ROOM);
    if (a == NULL || add_arena(b, a) != 0) {
        om_arena_unref(a);
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    om_arena_unref(a); /* add_arena took its own reference */
    b->arenas[b->n_arenas - 1] = b->arenas[0];
    b->arenas[0] = a;
    return 0;
}

int om_batch_share_arenas(om_batch_t *dst, const om_batch_t *src)
{
    dst->borrowed = true;
    for (size_t i = 0; i < src->n_arenas; i++) {
        int rc = add_arena(dst, src->arenas[i]);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

/* Room for `extra` more resource entries in dst, growing geometrically inside dst's arena. */
static int reserve_resources(om_batch_t *dst, size_t extra)
{
    resource_ref_t r = resource_array(dst);
    size_t *n = r.n;
    void ***items = r.items;
    size_t cap = dst->res_cap ? dst->res_cap : *n;
    if (*n + extra <= cap) {
        return 0;
    }
    size_t ncap = cap < 8 ? 8 : cap * 2;
    while (ncap < *n + extra) {
        ncap *= 2;
    }
    void **na = om_arena_alloc(dst->arenas[0], ncap * sizeof *na);
    if (na == NULL) {
        return OM_ENOMEM;
    }
    if (*n > 0) {
        memcpy(na, *items, *n * sizeof *na);
    }
    *items = na;
    dst->res_cap = ncap;
    return 0;
}

int om_batch_append(om_batch_t *dst, om_batch_t *src)
{
    int rc = 0;
    if (dst->signal != src->signal || dst->refs != 1) {
        rc = OM_EINVAL;
        goto out;
    }
    om_batch_counts_t dc, sc;
    om_batch_counts(dst, &dc);
    om_batch_counts(src, &sc);
    if (sc.resources == 0) {
        goto out;
    }
    /* Requests concatenated are one request (see om_batch_proto_pack): while both sides are
     * still their wire bytes (or dst is empty), appending is appending segments. Otherwise
     * only structs can be merged, so both sides must be decoded. */
    bool wire = src->raw_valid && (dst->raw_valid || dc.resources == 0);
    if (!wire &&
        ((rc = om_batch_decode(dst, NULL)) != 0 || (rc = om_batch_decode(src, NULL)) != 0)) {
        goto out;
    }
    /* Only entry pointers and segments move: when src is shared or borrowed, its nodes are
     * shared. */
    bool borrowed = dst->borrowed || src->refs > 1 || src->borrowed;
    if (src->refs > 1) {
        src->borrowed = true; /* the other holders now share nodes with dst */
    }
    rc = om_batch_share_arenas(dst, src);
    dst->borrowed = borrowed;
    if (rc != 0) {
        goto out;
    }
    if (wire) {
        if ((rc = append_raw(dst, src)) != 0) {
            goto out;
        }
        dst->raw_valid = true;
        if (dst->msg != NULL && (src->msg == NULL || reserve_resources(dst, sc.resources) != 0)) {
            /* The wire form is whole; the structs are decoded again if something needs them. */
            dst->msg = NULL;
            dst->res_cap = 0;
        }
    } else {
        if ((rc = reserve_resources(dst, sc.resources)) != 0) {
            goto out;
        }
        om__batch_drop_raw(dst);
    }
    if (dst->msg != NULL) {
        resource_ref_t from = resource_array(src), to = resource_array(dst);
        memcpy(*to.items + *to.n, *from.items, *from.n * sizeof(void *));
        *to.n += *from.n;
    }
    dst->wire_counts = (om_batch_counts_t){dc.resources + sc.resources, dc.metrics + sc.metrics,
                                           dc.items + sc.items};
    dst->items += src->items;
out:
    om_batch_release(src);
    return rc;
}

static size_t metric_points(const om_metric_t *m)
{
    switch (m->data_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
        return m->gauge ? m->gauge->n_data_points : 0;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
        return m->sum ? m->sum->n_data_points : 0;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
        return m->histogram ? m->histogram->n_data_points : 0;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
        return m->exponential_histogram ? m->exponential_histogram->n_data_points : 0;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
        return m->summary ? m->summary->n_data_points : 0;
    default:
        return 0;
    }
}

size_t om_batch_count_items(const om_batch_t *b)
{
    if (b->msg == NULL) {
        return b->wire_counts.items;
    }
    size_t total = 0;
    if (b->signal == OM_SIG_TRACES) {
        for (size_t i = 0; i < b->traces->n_resource_spans; i++) {
            const om_resource_spans_t *rs = b->traces->resource_spans[i];
            for (size_t j = 0; j < rs->n_scope_spans; j++) {
                total += rs->scope_spans[j]->n_spans;
            }
        }
    } else if (b->signal == OM_SIG_METRICS) {
        for (size_t i = 0; i < b->metrics->n_resource_metrics; i++) {
            const om_resource_metrics_t *rm = b->metrics->resource_metrics[i];
            for (size_t j = 0; j < rm->n_scope_metrics; j++) {
                for (size_t k = 0; k < rm->scope_metrics[j]->n_metrics; k++) {
                    total += metric_points(rm->scope_metrics[j]->metrics[k]);
                }
            }
        }
    } else if (b->signal == OM_SIG_LOGS) {
        for (size_t i = 0; i < b->logs->n_resource_logs; i++) {
            const om_resource_logs_t *rl = b->logs->resource_logs[i];
            for (size_t j = 0; j < rl->n_scope_logs; j++) {
                total += rl->scope_logs[j]->n_log_records;
            }
        }
    }
    return total;
}

int om_consumer_consume(const om_consumer_t *c, om_batch_t *batch)
{
    if (c == NULL || c->consume == NULL) {
        om_batch_release(batch);
        return OM_ENOTSUP;
    }
    return c->consume(c->self, batch);
}
