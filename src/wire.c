/* wire.c: checking and counting OTLP protobuf on the wire, without decoding it.
 *
 * A request that no processor changes is forwarded as the bytes it arrived in, so the
 * receiver only needs to know that it is well formed (else it answers 400 /
 * INVALID_ARGUMENT, as otelcol does) and how many items it holds. Building protobuf-c's
 * structs for that was most of the collector's CPU time. This walks the wire format once,
 * with a table per message type built from the protobuf-c descriptors, and accepts exactly
 * what protobuf_c_message_unpack() (protobuf-c 1.4) accepts, so that a request passed here can
 * be decoded later, when something needs its structs, without failing:
 *
 * - a tag whose first byte has no field-number bits is refused; a tag takes at most 5 bytes,
 *   a varint 10, a length prefix 5 and at most INT_MAX; wire types 3, 4, 6 and 7 are refused;
 * - a known field must come in its wire type: varint for the integer types and enums, 32-bit
 *   or 64-bit for the fixed types, length-delimited for strings, bytes and messages; repeated
 *   scalars may also come packed (length-delimited), fixed ones in a multiple of their size;
 * - a singular bool takes any wire type (protobuf-c reads it from whatever came);
 * - unknown fields are skipped (protobuf-c keeps them); strings are not checked for UTF-8.
 *
 * protobuf-c merges a singular message given twice and lets the last member of a oneof win;
 * the merge itself can fail. When a request does either (no ordinary encoder writes that),
 * the scan still checks it all but says needs_unpack, and the caller unpacks it at once.
 * test/fuzz/wire_fuzz.c checks this file against protobuf-c on arbitrary input.
 *
 * Attributes are most of a request's fields: a KeyValue of the usual form (a key, then a value
 * of one string, bool, int, double or bytes) is checked by a fast path (scan_keyvalue) that
 * accounts exactly as the general walk would; om__wire_scan_general leaves it out, and the
 * unit test and the fuzz target hold the two to the same answers.
 *
 * The tables live in static storage, built once (pthread_once) from the three request
 * descriptors; a scan allocates nothing and recurses only into nested messages, at most
 * OM__WIRE_MAX_DEPTH deep. */
#include <limits.h>
#include <pthread.h>
#include <string.h>

#include "wire.h"

typedef enum {
    K_UNKNOWN = 0, /* not a field of this message: kept as an unknown field */
    K_VARINT,      /* int32, int64, uint32, uint64, sint32, sint64, enum */
    K_BOOL,
    K_FIXED32, /* fixed32, sfixed32, float */
    K_FIXED64, /* fixed64, sfixed64, double */
    K_STRING,
    K_BYTES,
    K_MESSAGE,
} kind_t;

typedef enum { C_NONE = 0, C_RESOURCE, C_METRIC, C_ITEM } counter_t;

typedef struct wmsg wmsg_t;

typedef struct wfield {
    uint8_t kind;     /* kind_t */
    uint8_t counter;  /* counter_t: what one occurrence counts as */
    uint8_t elt_size; /* bytes of one element in protobuf-c's array for a repeated field */
    bool repeated;
    bool merges;  /* a singular message outside a oneof: given twice, protobuf-c merges */
    bool tracked; /* merges, or in a oneof: repeats_singular() must see it */
    int8_t oneof; /* index of its oneof in the message, or -1 */
    const wmsg_t *sub;
} wfield_t;

struct wmsg {
    const ProtobufCMessageDescriptor *desc;
    uint32_t n_ids;               /* fields[] is indexed by field number, 0 .. n_ids - 1 */
    wfield_t *fields;             /* into field_pool */
    uint32_t oneofs_with_message; /* bit i: oneof i has a message member */
};

/* Every OTLP message type and field fits with room to spare; a descriptor set that did not
 * would leave tables_ok false and callers unpacking instead. */
#define MAX_MSGS 96
#define MAX_FIELD_SLOTS 2048
#define MAX_ONEOFS 16
/* Field numbers past this would waste table slots; OTLP's stay below 20. */
#define MAX_FIELD_ID 255

static wmsg_t msg_pool[MAX_MSGS];
static size_t n_msgs;
static wfield_t field_pool[MAX_FIELD_SLOTS];
static size_t n_field_slots;
static const wmsg_t *roots[OM_SIG_COUNT];
static const wmsg_t *keyvalue;                /* KeyValue's table, for scan_keyvalue */
static size_t keyvalue_bytes, anyvalue_bytes; /* their structs, as protobuf-c allocates them */
static bool tables_ok;
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

#define ALIGN8(n) (((n) + 7) & ~(size_t)7)

/* ---- building the tables ------------------------------------------------------------------- */

static uint8_t elt_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_ENUM:
        return 4;
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    default: /* 64-bit scalars, string and message pointers */
        return 8;
    }
}

static kind_t kind_of(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_BOOL:
        return K_BOOL;
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_FLOAT:
        return K_FIXED32;
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return K_FIXED64;
    case PROTOBUF_C_TYPE_STRING:
        return K_STRING;
    case PROTOBUF_C_TYPE_BYTES:
        return K_BYTES;
    case PROTOBUF_C_TYPE_MESSAGE:
        return K_MESSAGE;
    default:
        return K_VARINT;
    }
}

/* The oneof of field f, numbered by first appearance in the message (protobuf-c marks the
 * members of one oneof by their shared quantifier offset). */
static int oneof_index(const ProtobufCMessageDescriptor *d, unsigned f, unsigned *offsets,
                       unsigned *n_oneofs)
{
    if ((d->fields[f].flags & PROTOBUF_C_FIELD_FLAG_ONEOF) == 0) {
        return -1;
    }
    unsigned off = d->fields[f].quantifier_offset;
    for (unsigned i = 0; i < *n_oneofs; i++) {
        if (offsets[i] == off) {
            return (int)i;
        }
    }
    if (*n_oneofs == MAX_ONEOFS) {
        return -2;
    }
    offsets[*n_oneofs] = off;
    return (int)(*n_oneofs)++;
}

/* The table of d, built on first sight (depth-first through its message fields). */
static const wmsg_t *table_for(const ProtobufCMessageDescriptor *d)
{
    for (size_t i = 0; i < n_msgs; i++) {
        if (msg_pool[i].desc == d) {
            return &msg_pool[i];
        }
    }
    uint32_t max_id = 0;
    for (unsigned f = 0; f < d->n_fields; f++) {
        max_id = d->fields[f].id > max_id ? d->fields[f].id : max_id;
    }
    if (n_msgs == MAX_MSGS || max_id > MAX_FIELD_ID ||
        MAX_FIELD_SLOTS - n_field_slots < max_id + 1) {
        return NULL;
    }
    wmsg_t *m = &msg_pool[n_msgs++];
    m->desc = d;
    m->n_ids = max_id + 1;
    m->fields = &field_pool[n_field_slots];
    n_field_slots += m->n_ids;
    unsigned offsets[MAX_ONEOFS], n_oneofs = 0;
    for (unsigned f = 0; f < d->n_fields; f++) {
        const ProtobufCFieldDescriptor *fd = &d->fields[f];
        wfield_t *w = &m->fields[fd->id];
        int oneof = oneof_index(d, f, offsets, &n_oneofs);
        if (oneof == -2) {
            return NULL;
        }
        w->kind = (uint8_t)kind_of(fd->type);
        w->repeated = fd->label == PROTOBUF_C_LABEL_REPEATED;
        w->elt_size = elt_size(fd->type);
        w->oneof = (int8_t)oneof;
        w->tracked = oneof >= 0;
        if (w->kind == K_MESSAGE) {
            w->merges = !w->repeated && oneof < 0;
            w->tracked = w->tracked || w->merges;
            if (oneof >= 0) {
                m->oneofs_with_message |= 1u << oneof;
            }
            w->sub = table_for(fd->descriptor);
            if (w->sub == NULL) {
                return NULL;
            }
        }
    }
    return m;
}

static bool mark(const ProtobufCMessageDescriptor *d, uint32_t id, counter_t c)
{
    for (size_t i = 0; i < n_msgs; i++) {
        if (msg_pool[i].desc == d && id < msg_pool[i].n_ids &&
            msg_pool[i].fields[id].kind == K_MESSAGE) {
            msg_pool[i].fields[id].counter = (uint8_t)c;
            return true;
        }
    }
    return false;
}

static void build_tables(void)
{
    static const ProtobufCMessageDescriptor *const root_desc[OM_SIG_COUNT] = {
        &opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor,
        &opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__descriptor,
        &opentelemetry__proto__collector__logs__v1__export_logs_service_request__descriptor,
    };
    for (int i = 0; i < OM_SIG_COUNT; i++) {
        roots[i] = table_for(root_desc[i]);
        if (roots[i] == NULL) {
            return;
        }
    }
    /* Field numbers from the OTLP protos: Export*ServiceRequest.resource_* = 1,
     * Scope*.{spans, metrics, log_records} = 2, {Gauge, Sum, ...}.data_points = 1. */
    bool ok = true;
    for (int i = 0; i < OM_SIG_COUNT; i++) {
        ok = ok && mark(root_desc[i], 1, C_RESOURCE);
    }
    ok = ok && mark(&opentelemetry__proto__trace__v1__scope_spans__descriptor, 2, C_ITEM);
    ok = ok && mark(&opentelemetry__proto__logs__v1__scope_logs__descriptor, 2, C_ITEM);
    ok = ok && mark(&opentelemetry__proto__metrics__v1__scope_metrics__descriptor, 2, C_METRIC);
    ok = ok && mark(&opentelemetry__proto__metrics__v1__gauge__descriptor, 1, C_ITEM);
    ok = ok && mark(&opentelemetry__proto__metrics__v1__sum__descriptor, 1, C_ITEM);
    ok = ok && mark(&opentelemetry__proto__metrics__v1__histogram__descriptor, 1, C_ITEM);
    ok = ok &&
         mark(&opentelemetry__proto__metrics__v1__exponential_histogram__descriptor, 1, C_ITEM);
    ok = ok && mark(&opentelemetry__proto__metrics__v1__summary__descriptor, 1, C_ITEM);
    keyvalue = table_for(&opentelemetry__proto__common__v1__key_value__descriptor);
    keyvalue_bytes = ALIGN8(opentelemetry__proto__common__v1__key_value__descriptor.sizeof_message);
    anyvalue_bytes = ALIGN8(opentelemetry__proto__common__v1__any_value__descriptor.sizeof_message);
    tables_ok = ok && keyvalue != NULL;
}

/* ---- scanning ------------------------------------------------------------------------------ */

typedef struct scan {
    om__wire_info_t *info;
    bool general_only; /* om__wire_scan_general: no fast path */
} scan_t;

/* A varint of at most 10 bytes, as protobuf-c reads them; its value is not needed. */
static const uint8_t *skip_varint(const uint8_t *p, const uint8_t *end)
{
    const uint8_t *stop = end - p > 10 ? p + 10 : end;
    while (p < stop) {
        if ((*p++ & 0x80) == 0) {
            return p;
        }
    }
    return NULL;
}

/* The tag as protobuf-c reads it: at most 5 bytes, and the first must carry field-number
 * bits. Returns the byte after it, or NULL. */
static const uint8_t *read_tag(const uint8_t *p, const uint8_t *end, uint32_t *id, unsigned *wt)
{
    uint8_t b = *p;
    if ((b & 0xf8) == 0) {
        return NULL;
    }
    *wt = b & 7;
    uint32_t tag = (b & 0x7f) >> 3;
    if ((b & 0x80) == 0) {
        *id = tag;
        return p + 1;
    }
    const uint8_t *stop = end - p > 5 ? p + 5 : end;
    unsigned shift = 4;
    for (const uint8_t *q = p + 1; q < stop; q++) {
        tag |= (uint32_t)(*q & 0x7f) << shift;
        if ((*q & 0x80) == 0) {
            *id = tag;
            return q + 1;
        }
        shift += 7;
    }
    return NULL;
}

/* read_len's prefixes of two bytes or more. */
static const uint8_t *read_long_len(const uint8_t *p, const uint8_t *end, size_t *len)
{
    const uint8_t *stop = end - p > 5 ? p + 5 : end;
    size_t v = 0;
    unsigned shift = 0;
    for (; p < stop; p++) {
        v |= (size_t)(*p & 0x7f) << shift;
        shift += 7;
        if ((*p & 0x80) == 0) {
            p++;
            if (v > INT_MAX || v > (size_t)(end - p)) {
                return NULL;
            }
            *len = v;
            return p;
        }
    }
    return NULL;
}

/* A length prefix as protobuf-c reads it (at most 5 bytes, at most INT_MAX, within the
 * data). Returns the payload's start, or NULL. Inline: most lengths fit in one byte, and the
 * call cost as much as reading it. */
static inline __attribute__((always_inline)) const uint8_t *
read_len(const uint8_t *p, const uint8_t *end, size_t *len)
{
    if (p < end && *p < 0x80) {
        size_t v = *p++;
        if (v > (size_t)(end - p)) {
            return NULL;
        }
        *len = v;
        return p;
    }
    return read_long_len(p, end, len);
}

/* Packed varints: every one complete. Returns how many, or SIZE_MAX when one is not. */
static size_t packed_varints(const uint8_t *p, const uint8_t *end)
{
    size_t n = 0;
    while (p < end) {
        p = skip_varint(p, end);
        if (p == NULL) {
            return SIZE_MAX;
        }
        n++;
    }
    return n;
}

/* A length-delimited occurrence of a known scalar field: packed elements of a repeated one
 * (bool too), a string, bytes, or a singular bool. Returns 0 or OM_EINVAL; adds what
 * protobuf-c would allocate for it to *bytes. */
static int scalar_payload(const wfield_t *f, const uint8_t *p, size_t len, size_t *bytes)
{
    switch ((kind_t)f->kind) {
    case K_STRING:
        *bytes += ALIGN8(len + 1) + (f->repeated ? 8 : 0);
        return 0;
    case K_BYTES:
        *bytes += ALIGN8(len) + (f->repeated ? 16 : 0);
        return 0;
    case K_BOOL:
    case K_VARINT: {
        if (!f->repeated) {
            return f->kind == K_BOOL ? 0 : OM_EINVAL;
        }
        size_t n = packed_varints(p, p + len);
        if (n == SIZE_MAX) {
            return OM_EINVAL;
        }
        *bytes += ALIGN8(n * f->elt_size);
        return 0;
    }
    case K_FIXED32:
    case K_FIXED64: {
        size_t w = f->kind == K_FIXED32 ? 4 : 8;
        if (!f->repeated || len % w != 0) {
            return OM_EINVAL;
        }
        *bytes += ALIGN8(len);
        return 0;
    }
    default:
        return OM_EINVAL;
    }
}

/* A known scalar field in a fixed-size or varint wire type. */
static bool scalar_wire_ok(const wfield_t *f, unsigned wt)
{
    switch ((kind_t)f->kind) {
    case K_VARINT:
        return wt == 0;
    case K_BOOL:
        return true;
    case K_FIXED32:
        return wt == 5;
    case K_FIXED64:
        return wt == 1;
    default:
        return false; /* strings, bytes and messages are length-delimited */
    }
}

static int scan_message(scan_t *s, const wmsg_t *m, const uint8_t *p, const uint8_t *end,
                        unsigned depth);

/* The usual attribute, a KeyValue (at depth) of a key then a value holding one string, bool,
 * int, double or bytes, in that order and nothing else: checked and accounted here exactly as
 * scan_message would (a key string, a value message, one member of its oneof). Attributes
 * are most of a request's fields, and the general walk's per-field dispatch most of its cost.
 * Returns false, having changed nothing, for anything else: the general walk takes it. */
static bool scan_keyvalue(om__wire_info_t *info, const uint8_t *p, size_t len, unsigned depth)
{
    const uint8_t *end = p + len, *key, *val, *x;
    size_t klen, vlen, n, bytes;
    if (depth + 1 > OM__WIRE_MAX_DEPTH || len < 2 || p[0] != 0x0a ||
        (key = read_len(p + 1, end, &klen)) == NULL || end - (key + klen) < 2 ||
        key[klen] != 0x12 || (val = read_len(key + klen + 1, end, &vlen)) == NULL ||
        val + vlen != end) {
        return false;
    }
    bytes = keyvalue_bytes + ALIGN8(klen + 1) + anyvalue_bytes;
    if (vlen > 0) {
        switch (val[0]) {
        case 0x0a: /* string_value */
        case 0x3a: /* bytes_value */
            x = read_len(val + 1, end, &n);
            if (x == NULL || x + n != end) {
                return false;
            }
            bytes += val[0] == 0x0a ? ALIGN8(n + 1) : ALIGN8(n);
            break;
        case 0x10: /* bool_value */
        case 0x18: /* int_value */
            if (skip_varint(val + 1, end) != end) {
                return false;
            }
            break;
        case 0x21: /* double_value */
            if (vlen != 9) {
                return false;
            }
            break;
        default:
            return false;
        }
    }
    info->decoded_bytes += bytes;
    return true;
}

/* One occurrence of a message field: the nested message, counted. */
static int scan_nested(scan_t *s, const wfield_t *f, const uint8_t *p, size_t len, unsigned depth)
{
    switch ((counter_t)f->counter) {
    case C_RESOURCE:
        s->info->resources++;
        break;
    case C_METRIC:
        s->info->metrics++;
        break;
    case C_ITEM:
        s->info->items++;
        break;
    default:
        break;
    }
    s->info->decoded_bytes += f->repeated ? 8 : 0;
    if (f->sub == keyvalue && !s->general_only && scan_keyvalue(s->info, p, len, depth + 1)) {
        return 0;
    }
    return scan_message(s, f->sub, p, p + len, depth + 1);
}

/* Whether this occurrence makes protobuf-c merge or replace something already decoded. */
static bool repeats_singular(const wmsg_t *m, const wfield_t *f, uint64_t *seen_msgs,
                             uint32_t *seen_oneofs, uint32_t id)
{
    if (f->oneof >= 0) {
        uint32_t bit = 1u << f->oneof;
        bool again = (*seen_oneofs & bit) != 0 && (m->oneofs_with_message & bit) != 0;
        *seen_oneofs |= bit;
        return again;
    }
    if (!f->merges) {
        return false;
    }
    uint64_t bit = UINT64_C(1) << (id & 63);
    bool again = id >= 64 || (*seen_msgs & bit) != 0;
    *seen_msgs |= bit;
    return again;
}

static int scan_message(scan_t *s, const wmsg_t *m, const uint8_t *p, const uint8_t *end,
                        unsigned depth)
{
    om__wire_info_t *info = s->info;
    if (depth > OM__WIRE_MAX_DEPTH) {
        info->too_deep = true;
        return OM_EINVAL;
    }
    uint64_t seen_msgs = 0;
    uint32_t seen_oneofs = 0;
    size_t n_fields = 0;
    info->decoded_bytes += ALIGN8(m->desc->sizeof_message);
    /* Bounded by the data: every turn consumes at least one byte. */
    while (p < end) {
        uint32_t id;
        unsigned wt;
        const uint8_t *start = p;
        p = read_tag(p, end, &id, &wt);
        if (p == NULL) {
            return OM_EINVAL;
        }
        n_fields++;
        const wfield_t *f = id < m->n_ids ? &m->fields[id] : NULL;
        if (f != NULL && f->kind == K_UNKNOWN) {
            f = NULL;
        }
        const uint8_t *payload = p;
        size_t len = 0;
        switch (wt) {
        case 0:
            p = skip_varint(p, end);
            break;
        case 1:
            p = end - p >= 8 ? p + 8 : NULL;
            break;
        case 5:
            p = end - p >= 4 ? p + 4 : NULL;
            break;
        case 2:
            payload = read_len(p, end, &len);
            p = payload != NULL ? payload + len : NULL;
            break;
        default:
            p = NULL; /* groups (3, 4) and the wire types that do not exist */
            break;
        }
        if (p == NULL) {
            return OM_EINVAL;
        }
        if (f == NULL) {
            info->decoded_bytes +=
                sizeof(ProtobufCMessageUnknownField) + ALIGN8((size_t)(p - start));
            continue;
        }
        if (f->tracked && repeats_singular(m, f, &seen_msgs, &seen_oneofs, id)) {
            info->needs_unpack = true;
        }
        int rc;
        if (wt != 2) {
            rc = scalar_wire_ok(f, wt) ? 0 : OM_EINVAL;
            info->decoded_bytes += f->repeated ? 8 : 0;
        } else if (f->kind == K_MESSAGE) {
            rc = scan_nested(s, f, payload, len, depth);
        } else {
            rc = scalar_payload(f, payload, len, &info->decoded_bytes);
        }
        if (rc != 0) {
            return rc;
        }
    }
    /* protobuf-c keeps what it scans in slabs of 16, 32, 64... members of 32 bytes. */
    if (n_fields > 16) {
        info->decoded_bytes += 64 * n_fields;
    }
    return 0;
}

static int scan(om_signal_t sig, const uint8_t *data, size_t len, om__wire_info_t *info,
                bool general_only)
{
    memset(info, 0, sizeof *info);
    int i = om_signal_index(sig);
    if (i < 0) {
        return OM_EINVAL;
    }
    pthread_once(&tables_once, build_tables);
    if (!tables_ok) {
        return OM_ENOTSUP;
    }
    scan_t s = {.info = info, .general_only = general_only};
    return scan_message(&s, roots[i], data, data + len, 1);
}

int om__wire_scan(om_signal_t sig, const uint8_t *data, size_t len, om__wire_info_t *info)
{
    return scan(sig, data, len, info, false);
}

int om__wire_scan_general(om_signal_t sig, const uint8_t *data, size_t len, om__wire_info_t *info)
{
    return scan(sig, data, len, info, true);
}
