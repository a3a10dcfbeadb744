/* ottl_wire.c: reading OTTL paths of a span or a log record from its protobuf bytes, with
 * exactly the values decoding gives (ottl_paths.c reads the decoded structs):
 * - a scalar field given more than once reads as its last occurrence (protobuf-c keeps the
 *   last); so does the value of an AnyValue (a oneof);
 * - strings end at their first NUL byte, as the C strings protobuf-c makes are read;
 * - enums are read as protobuf-c stores them (int32: the varint's low 32 bits), uint32 counts
 *   likewise, fixed64 times as int64, bools true when any bit is set;
 * - an attribute lookup returns the first entry with the key (om_attrs_get reads the first);
 *   a missing key, value or AnyValue reads as nil.
 * What only decoding reads answers OM_ENOTSUP: a map or list value, a whole attribute map, a
 * field of an unexpected wire type. Singular message fields given twice (which protobuf-c
 * merges) never get here: such requests are decoded on arrival (om_wire_item_t says so).
 * Field numbers are those of opentelemetry-proto (trace.proto, logs.proto, common.proto,
 * resource.proto). */
#include <string.h>

#include "filter.h"

/* Span */
enum {
    SPAN_TRACE_ID = 1,
    SPAN_SPAN_ID = 2,
    SPAN_TRACE_STATE = 3,
    SPAN_PARENT = 4,
    SPAN_NAME = 5,
    SPAN_KIND = 6,
    SPAN_START = 7,
    SPAN_END = 8,
    SPAN_ATTRS = 9,
    SPAN_DROPPED_ATTRS = 10,
    SPAN_STATUS = 15,
    SPAN_FLAGS = 16,
    STATUS_MESSAGE = 2,
    STATUS_CODE = 3,
};

/* LogRecord */
enum {
    LOG_TIME = 1,
    LOG_SEVERITY_NUMBER = 2,
    LOG_SEVERITY_TEXT = 3,
    LOG_BODY = 5,
    LOG_ATTRS = 6,
    LOG_DROPPED_ATTRS = 7,
    LOG_FLAGS = 8,
    LOG_TRACE_ID = 9,
    LOG_SPAN_ID = 10,
    LOG_OBSERVED_TIME = 11,
    LOG_EVENT_NAME = 12,
};

/* Resource, InstrumentationScope, KeyValue, AnyValue */
enum {
    RES_ATTRS = 1,
    RES_DROPPED = 2,
    SCOPE_NAME = 1,
    SCOPE_VERSION = 2,
    SCOPE_ATTRS = 3,
    SCOPE_DROPPED = 4,
    KV_KEY = 1,
    KV_VALUE = 2,
    AV_STRING = 1,
    AV_BOOL = 2,
    AV_INT = 3,
    AV_DOUBLE = 4,
    AV_ARRAY = 5,
    AV_KVLIST = 6,
    AV_BYTES = 7,
};

bool proc_filter_ottl_wire_path_ok(ottl_ctx_t ctx, ottl_path_id_t p, size_t n_keys)
{
    bool attrs =
        p == P_SPAN_ATTRS || p == P_LOG_ATTRS || p == P_RESOURCE_ATTRS || p == P_SCOPE_ATTRS;
    if (attrs ? n_keys != 1 : n_keys != 0) {
        return false; /* a whole map, or keys into a value */
    }
    if (p >= P_RESOURCE_ATTRS && p <= P_SCOPE_DROPPED_ATTRS) {
        return true;
    }
    if (ctx == OTTL_CTX_SPAN) {
        return p >= P_SPAN_NAME && p <= P_SPAN_FLAGS;
    }
    return ctx == OTTL_CTX_LOG && p >= P_LOG_BODY && p <= P_LOG_EVENT_NAME;
}

/* ---- fields ------------------------------------------------------------------------------- */

/* The last occurrence of field num in msg: 1 (in *f), 0 when absent, OM_ENOTSUP when it has
 * another wire type than wt. */
static int last_field(const uint8_t *msg, size_t len, uint32_t num, unsigned wt, om_pb_field_t *f)
{
    const uint8_t *p = msg, *end = msg + len;
    om_pb_field_t cur;
    int found = 0, rc;
    while ((rc = om_pb_next(&p, end, &cur)) == 1) {
        if (cur.number != num) {
            continue;
        }
        if (cur.wire_type != wt) {
            return OM_ENOTSUP;
        }
        *f = cur;
        found = 1;
    }
    return rc < 0 ? OM_ENOTSUP : found;
}

/* A string field as the C string protobuf-c makes of it: up to its first NUL. */
static ov_t str_of(const om_pb_field_t *f)
{
    const void *nul = memchr(f->data, '\0', f->len);
    size_t n = nul != NULL ? (size_t)((const uint8_t *)nul - f->data) : f->len;
    return (ov_t){.kind = OV_STR, .s = {.p = (const char *)f->data, .n = n}};
}

static int read_str(const uint8_t *msg, size_t len, uint32_t num, ov_t *out)
{
    om_pb_field_t f;
    int rc = last_field(msg, len, num, OM_PB_LEN, &f);
    *out = rc == 1 ? str_of(&f) : (ov_t){.kind = OV_STR, .s = {.p = "", .n = 0}};
    return rc < 0 ? rc : 0;
}

/* An int32 enum, a uint32 count, a fixed32 or a fixed64 as OTTL's int64. */
typedef enum { AS_INT32, AS_UINT32, AS_FIXED32, AS_FIXED64 } num_kind_t;

static int read_num(const uint8_t *msg, size_t len, uint32_t num, num_kind_t k, ov_t *out)
{
    unsigned wt = k == AS_FIXED32 ? OM_PB_FIXED32 : k == AS_FIXED64 ? OM_PB_FIXED64 : OM_PB_VARINT;
    om_pb_field_t f = {0};
    int rc = last_field(msg, len, num, wt, &f);
    int64_t v = 0;
    if (rc == 1) {
        v = k == AS_INT32     ? (int64_t)(int32_t)(uint32_t)f.value
            : k == AS_FIXED64 ? (int64_t)f.value
                              : (int64_t)(uint32_t)f.value;
    }
    *out = (ov_t){.kind = OV_INT, .i = v};
    return rc < 0 ? rc : 0;
}

/* An id of width bytes, zero-padded or cut as decoding reads it. */
static int read_id(const uint8_t *msg, size_t len, uint32_t num, size_t width, ov_t *out)
{
    om_pb_field_t f = {0};
    int rc = last_field(msg, len, num, OM_PB_LEN, &f);
    *out = (ov_t){.kind = width == 16 ? OV_TRACE_ID : OV_SPAN_ID};
    if (rc == 1) {
        memcpy(out->id, f.data, f.len < width ? f.len : width);
    }
    return rc < 0 ? rc : 0;
}

static int read_id_string(const uint8_t *msg, size_t len, uint32_t num, size_t width,
                          ottl_scratch_t *s, ov_t *out)
{
    ov_t id;
    int rc = read_id(msg, len, num, width, &id);
    if (rc != 0) {
        return rc;
    }
    const char *p = NULL;
    size_t n = 0;
    bool nil = false;
    rc = proc_filter_ov_string_like(&id, s, &p, &n, &nil);
    *out = (ov_t){.kind = OV_STR, .s = {.p = p, .n = n}};
    return rc;
}

/* An AnyValue's bytes as OTTL reads the value: the last value field decides. */
static int any_value(const uint8_t *msg, size_t len, ov_t *out)
{
    const uint8_t *p = msg, *end = msg + len;
    om_pb_field_t f, last = {0};
    int rc;
    bool found = false;
    while ((rc = om_pb_next(&p, end, &f)) == 1) {
        if (f.number >= AV_STRING && f.number <= AV_BYTES) {
            last = f;
            found = true;
        }
    }
    *out = (ov_t){.kind = OV_NIL};
    if (rc < 0) {
        return OM_ENOTSUP;
    }
    if (!found) {
        return 0;
    }
    static const unsigned wire_types[] = {
        [AV_STRING] = OM_PB_LEN,     [AV_BOOL] = OM_PB_VARINT, [AV_INT] = OM_PB_VARINT,
        [AV_DOUBLE] = OM_PB_FIXED64, [AV_ARRAY] = OM_PB_LEN,   [AV_KVLIST] = OM_PB_LEN,
        [AV_BYTES] = OM_PB_LEN};
    if (last.wire_type != wire_types[last.number] || last.number == AV_ARRAY ||
        last.number == AV_KVLIST) {
        return OM_ENOTSUP;
    }
    switch (last.number) {
    case AV_STRING:
        *out = str_of(&last);
        break;
    case AV_BOOL:
        /* protobuf-c: true when any byte of the varint carries a set bit. */
        out->kind = OV_BOOL;
        out->b = false;
        for (size_t i = 0; i < last.len; i++) {
            out->b = out->b || (last.data[i] & 0x7f) != 0;
        }
        break;
    case AV_INT:
        out->kind = OV_INT;
        out->i = (int64_t)last.value;
        break;
    case AV_DOUBLE:
        out->kind = OV_DOUBLE;
        memcpy(&out->d, &last.value, sizeof out->d);
        break;
    default: /* AV_BYTES */
        out->kind = OV_BYTES;
        out->s.p = (const char *)last.data;
        out->s.n = last.len;
        break;
    }
    return 0;
}

/* The value under key in the KeyValue entries (field num) of msg: the first entry with that
 * key; nil when there is none, or it has no value. */
static int attr_value(const uint8_t *msg, size_t len, uint32_t num, const char *key, ov_t *out)
{
    const uint8_t *p = msg, *end = msg + len;
    size_t klen = strlen(key);
    om_pb_field_t f;
    int rc;
    *out = (ov_t){.kind = OV_NIL};
    while ((rc = om_pb_next(&p, end, &f)) == 1) {
        if (f.number != num) {
            continue;
        }
        if (f.wire_type != OM_PB_LEN) {
            return OM_ENOTSUP;
        }
        om_pb_field_t k, v;
        int krc = last_field(f.data, f.len, KV_KEY, OM_PB_LEN, &k);
        if (krc < 0) {
            return krc;
        }
        ov_t ks = krc == 1 ? str_of(&k) : (ov_t){.kind = OV_STR, .s = {.p = "", .n = 0}};
        if (ks.s.n != klen || memcmp(ks.s.p, key, klen) != 0) {
            continue;
        }
        int vrc = last_field(f.data, f.len, KV_VALUE, OM_PB_LEN, &v);
        if (vrc < 0) {
            return vrc;
        }
        return vrc == 1 ? any_value(v.data, v.len, out) : 0;
    }
    return rc < 0 ? OM_ENOTSUP : 0;
}

/* ---- paths -------------------------------------------------------------------------------- */

static int span_path(ottl_path_id_t p, const ottl_key_t *key, const uint8_t *m, size_t n,
                     ottl_scratch_t *s, ov_t *out)
{
    om_pb_field_t st;
    int rc;
    switch (p) {
    case P_SPAN_NAME:
        return read_str(m, n, SPAN_NAME, out);
    case P_SPAN_KIND:
        return read_num(m, n, SPAN_KIND, AS_INT32, out);
    case P_SPAN_STATUS_CODE:
    case P_SPAN_STATUS_MESSAGE:
        rc = last_field(m, n, SPAN_STATUS, OM_PB_LEN, &st);
        if (rc < 0) {
            return rc;
        }
        if (rc == 0) {
            st.data = (const uint8_t *)"";
            st.len = 0;
        }
        return p == P_SPAN_STATUS_CODE ? read_num(st.data, st.len, STATUS_CODE, AS_INT32, out)
                                       : read_str(st.data, st.len, STATUS_MESSAGE, out);
    case P_SPAN_ATTRS:
        return attr_value(m, n, SPAN_ATTRS, key->s, out);
    case P_SPAN_DROPPED_ATTRS:
        return read_num(m, n, SPAN_DROPPED_ATTRS, AS_UINT32, out);
    case P_SPAN_TRACE_ID:
        return read_id(m, n, SPAN_TRACE_ID, 16, out);
    case P_SPAN_TRACE_ID_STR:
        return read_id_string(m, n, SPAN_TRACE_ID, 16, s, out);
    case P_SPAN_ID:
        return read_id(m, n, SPAN_SPAN_ID, 8, out);
    case P_SPAN_ID_STR:
        return read_id_string(m, n, SPAN_SPAN_ID, 8, s, out);
    case P_SPAN_PARENT_ID:
        return read_id(m, n, SPAN_PARENT, 8, out);
    case P_SPAN_PARENT_ID_STR:
        return read_id_string(m, n, SPAN_PARENT, 8, s, out);
    case P_SPAN_TRACE_STATE:
        return read_str(m, n, SPAN_TRACE_STATE, out);
    case P_SPAN_START:
        return read_num(m, n, SPAN_START, AS_FIXED64, out);
    case P_SPAN_END:
        return read_num(m, n, SPAN_END, AS_FIXED64, out);
    case P_SPAN_FLAGS:
        return read_num(m, n, SPAN_FLAGS, AS_FIXED32, out);
    default:
        return OM_ENOTSUP;
    }
}

static int log_path(ottl_path_id_t p, const ottl_key_t *key, const uint8_t *m, size_t n,
                    ottl_scratch_t *s, ov_t *out)
{
    om_pb_field_t body;
    int rc;
    switch (p) {
    case P_LOG_BODY:
        rc = last_field(m, n, LOG_BODY, OM_PB_LEN, &body);
        *out = (ov_t){.kind = OV_NIL};
        return rc == 1 ? any_value(body.data, body.len, out) : rc;
    case P_LOG_ATTRS:
        return attr_value(m, n, LOG_ATTRS, key->s, out);
    case P_LOG_SEVERITY_NUMBER:
        return read_num(m, n, LOG_SEVERITY_NUMBER, AS_INT32, out);
    case P_LOG_SEVERITY_TEXT:
        return read_str(m, n, LOG_SEVERITY_TEXT, out);
    case P_LOG_TIME:
        return read_num(m, n, LOG_TIME, AS_FIXED64, out);
    case P_LOG_OBSERVED_TIME:
        return read_num(m, n, LOG_OBSERVED_TIME, AS_FIXED64, out);
    case P_LOG_TRACE_ID:
        return read_id(m, n, LOG_TRACE_ID, 16, out);
    case P_LOG_TRACE_ID_STR:
        return read_id_string(m, n, LOG_TRACE_ID, 16, s, out);
    case P_LOG_SPAN_ID:
        return read_id(m, n, LOG_SPAN_ID, 8, out);
    case P_LOG_SPAN_ID_STR:
        return read_id_string(m, n, LOG_SPAN_ID, 8, s, out);
    case P_LOG_FLAGS:
        return read_num(m, n, LOG_FLAGS, AS_FIXED32, out);
    case P_LOG_DROPPED_ATTRS:
        return read_num(m, n, LOG_DROPPED_ATTRS, AS_UINT32, out);
    case P_LOG_EVENT_NAME:
        return read_str(m, n, LOG_EVENT_NAME, out);
    default:
        return OM_ENOTSUP;
    }
}

int proc_filter_ottl_wire_path(ottl_path_id_t p, const ottl_key_t *key, const om_wire_item_t *w,
                               ottl_scratch_t *s, ov_t *out)
{
    *out = (ov_t){.kind = OV_NIL};
    bool attrs =
        p == P_SPAN_ATTRS || p == P_LOG_ATTRS || p == P_RESOURCE_ATTRS || p == P_SCOPE_ATTRS;
    if (attrs && (key == NULL || key->is_int)) {
        return OM_ENOTSUP;
    }
    /* An absent resource or scope reads as an empty one. */
    const uint8_t *res = w->resource != NULL ? w->resource : (const uint8_t *)"";
    const uint8_t *sc = w->scope != NULL ? w->scope : (const uint8_t *)"";
    switch (p) {
    case P_RESOURCE_ATTRS:
        return attr_value(res, w->resource_len, RES_ATTRS, key->s, out);
    case P_RESOURCE_DROPPED_ATTRS:
        return read_num(res, w->resource_len, RES_DROPPED, AS_UINT32, out);
    case P_SCOPE_NAME:
        return read_str(sc, w->scope_len, SCOPE_NAME, out);
    case P_SCOPE_VERSION:
        return read_str(sc, w->scope_len, SCOPE_VERSION, out);
    case P_SCOPE_ATTRS:
        return attr_value(sc, w->scope_len, SCOPE_ATTRS, key->s, out);
    case P_SCOPE_DROPPED_ATTRS:
        return read_num(sc, w->scope_len, SCOPE_DROPPED, AS_UINT32, out);
    default:
        break;
    }
    if (p >= P_SPAN_NAME && p <= P_SPAN_FLAGS) {
        return span_path(p, key, w->item, w->item_len, s, out);
    }
    if (p >= P_LOG_BODY && p <= P_LOG_EVENT_NAME) {
        return log_path(p, key, w->item, w->item_len, s, out);
    }
    return OM_ENOTSUP;
}
