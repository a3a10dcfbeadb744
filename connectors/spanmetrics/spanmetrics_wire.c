/* spanmetrics_wire.c: counting spans from a request's protobuf bytes, without building the
 * protobuf-c structs: most traces batches arrive as bytes and are forwarded as bytes, and
 * decoding them all only to read a few fields of each span would cost more than the rest of
 * the collector's path.
 *
 * One resource entry (ResourceSpans) at a time: its resource attributes, scopes and spans are
 * read into views (spm_kv_t, spm_span_t: pointers into the bytes), then counted through the
 * same steps as decoded structs (conn_spanmetrics_begin_resource, conn_spanmetrics_count_span).
 * Only what counting reads is looked at: the span's ids, name, kind, times, status code, and its
 * attributes when there are dimensions; events, links and the rest are skipped by their length.
 *
 * protobuf-c's reading is the reference: a later scalar field replaces an earlier one, strings
 * end at a NUL. An entry encoded as no ordinary encoder writes it (a message field that
 * protobuf-c merges given twice: the resource, a scope, a status, an attribute's value; or an
 * AnyValue with several values) is unpacked by protobuf-c and counted from its structs, so
 * the result is always conn_spanmetrics_add's: spanmetrics_fuzz.c holds the two to that.
 *
 * Loop thread; no allocation but the aggregate's scratch arrays (and the fallback's arena). */
#include <string.h>

#include "spanmetrics.h"

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

typedef struct rd {
    const uint8_t *p, *end;
} rd_t;

static bool rd_varint(rd_t *r, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; shift < 70 && r->p < r->end; shift += 7) {
        uint8_t c = *r->p++;
        if (shift < 64) {
            *v |= (uint64_t)(c & 0x7f) << shift;
        }
        if (c < 0x80) {
            return true;
        }
    }
    return false;
}

/* A tag as protobuf-c reads it: at most 5 bytes; a field number of 0 (a tag of two bytes or
 * more) or above protobuf's 2^29 - 1 is an unknown field like any other. */
static bool rd_tag_long(rd_t *r, uint32_t *field, int *wt)
{
    const uint8_t *start = r->p;
    uint64_t t;
    if (!rd_varint(r, &t) || r->p - start > 5) {
        return false;
    }
    *field = (uint32_t)(t >> 3);
    *wt = (int)(t & 7);
    return true;
}

/* rd_tag and rd_bytes read every field of every span: their one-byte forms (most tags and
 * lengths) inline, since the call cost as much as the read. Not the core's om_pb_next, which
 * reads each field's value whole before the caller looks at its number: reading the tag, then
 * only what the field needs, cost 5% fewer instructions here (callgrind, bench/README.md). */
static inline __attribute__((always_inline)) bool rd_tag(rd_t *r, uint32_t *field, int *wt)
{
    if (r->p < r->end && *r->p < 0x80) {
        *field = (uint32_t)(*r->p >> 3);
        *wt = *r->p++ & 7;
        return true;
    }
    return rd_tag_long(r, field, wt);
}

static bool rd_bytes_long(rd_t *r, const uint8_t **s, size_t *n)
{
    uint64_t len;
    if (!rd_varint(r, &len) || len > (uint64_t)(r->end - r->p)) {
        return false;
    }
    *s = r->p;
    *n = (size_t)len;
    r->p += len;
    return true;
}

static inline __attribute__((always_inline)) bool rd_bytes(rd_t *r, const uint8_t **s, size_t *n)
{
    if (r->p < r->end && *r->p < 0x80 && *r->p < r->end - r->p) {
        *n = *r->p++;
        *s = r->p;
        r->p += *n;
        return true;
    }
    return rd_bytes_long(r, s, n);
}

static bool rd_fixed64(rd_t *r, uint64_t *v)
{
    if (r->end - r->p < 8) {
        return false;
    }
    *v = om_le64_load(r->p);
    r->p += 8;
    return true;
}

/* Skip a field's value; groups (protobuf-c refuses them as unknown fields too) are not. */
static bool rd_skip(rd_t *r, int wt)
{
    uint64_t v;
    const uint8_t *s;
    size_t n;
    switch (wt) {
    case WT_VARINT:
        return rd_varint(r, &v);
    case WT_I64:
        return rd_fixed64(r, &v);
    case WT_LEN:
        return rd_bytes(r, &s, &n);
    case WT_I32:
        if (r->end - r->p < 4) {
            return false;
        }
        r->p += 4;
        return true;
    default:
        return false;
    }
}

/* ---- AnyValue ---------------------------------------------------------------------------- */

/* AnyValue fields: 1 string, 2 bool, 3 int, 4 double, 5 array, 6 kvlist, 7 bytes. */
static int value_wt(uint32_t field)
{
    return field == 2 || field == 3 ? WT_VARINT : field == 4 ? WT_I64 : WT_LEN;
}

static bool kv_ok(const uint8_t *p, size_t n, int depth);

/* The elements of an ArrayValue (AnyValue, field 1) or KeyValueList (KeyValue, field 1). */
static bool list_ok(const uint8_t *p, size_t n, int depth, bool kvs)
{
    rd_t r = {p, p + n};
    while (r.p < r.end) {
        uint32_t f;
        int wt;
        const uint8_t *s;
        size_t sn;
        if (!rd_tag(&r, &f, &wt)) {
            return false;
        }
        if (f != 1) {
            if (!rd_skip(&r, wt)) {
                return false;
            }
            continue;
        }
        if (wt != WT_LEN || !rd_bytes(&r, &s, &sn)) {
            return false;
        }
        if (!(kvs ? kv_ok(s, sn, depth) : conn_spanmetrics_wire_value_ok(s, sn, depth))) {
            return false;
        }
    }
    return true;
}

bool conn_spanmetrics_wire_value_ok(const uint8_t *p, size_t n, int depth)
{
    rd_t r = {p, p + n};
    int values = 0;
    while (r.p < r.end) {
        uint32_t f;
        int wt;
        if (!rd_tag(&r, &f, &wt)) {
            return false;
        }
        if (f < 1 || f > 7) {
            if (!rd_skip(&r, wt)) {
                return false;
            }
            continue;
        }
        const uint8_t *s = r.p;
        if (wt != value_wt(f) || !rd_skip(&r, wt) || ++values > 1) {
            return false;
        }
        /* Deeper than SPM_DEPTH a value is encoded as empty, whatever it holds. */
        if ((f == 5 || f == 6) && depth < SPM_DEPTH) {
            rd_t in = {s, r.p};
            const uint8_t *b;
            size_t bn;
            if (!rd_bytes(&in, &b, &bn) || !list_ok(b, bn, depth + 1, f == 6)) {
                return false;
            }
        }
    }
    return true;
}

/* A KeyValue: key (the last one wins) and value; false when it has a value twice (which
 * protobuf-c merges) or, with check, a value that does not decode plainly. The whole message
 * is read either way, so that the key is protobuf-c's. */
static bool kv_parse(const uint8_t *p, size_t n, spm_kv_t *kv, bool check, int depth)
{
    rd_t r = {p, p + n};
    bool twice = false;
    *kv = (spm_kv_t){.k = ""};
    while (r.p < r.end) {
        uint32_t f;
        int wt;
        const uint8_t *s;
        size_t sn;
        if (!rd_tag(&r, &f, &wt)) {
            return false;
        }
        if (f != 1 && f != 2) {
            if (!rd_skip(&r, wt)) {
                return false;
            }
            continue;
        }
        if (wt != WT_LEN || !rd_bytes(&r, &s, &sn)) {
            return false;
        }
        if (f == 1) {
            kv->k = (const char *)s;
            kv->kn = conn_spanmetrics_cstr_len(kv->k, sn);
        } else {
            twice = twice || kv->val.wire;
            kv->val = (spm_val_t){.w = s, .wn = sn, .wire = true};
        }
    }
    return !twice && (!check || !kv->val.wire ||
                      conn_spanmetrics_wire_value_ok(kv->val.w, kv->val.wn, depth));
}

static bool kv_ok(const uint8_t *p, size_t n, int depth)
{
    spm_kv_t kv;
    return kv_parse(p, n, &kv, true, depth + 1);
}

void conn_spanmetrics_wire_string(const uint8_t *p, size_t n, const char **s, size_t *len)
{
    rd_t r = {p, p + n};
    *s = "";
    *len = 0;
    while (r.p < r.end) {
        uint32_t f;
        int wt;
        const uint8_t *b;
        size_t bn;
        if (!rd_tag(&r, &f, &wt)) {
            return;
        }
        if (f == 1 && wt == WT_LEN && rd_bytes(&r, &b, &bn)) {
            *s = (const char *)b;
            *len = conn_spanmetrics_cstr_len(*s, bn);
        } else if (f == 1 || !rd_skip(&r, wt)) {
            return;
        }
    }
}

/* ---- encoding a wire AnyValue (checked) as conn_spanmetrics_put_value encodes the struct
 * ---------------- */

static size_t count_elems(const uint8_t *p, size_t n)
{
    rd_t r = {p, p + n};
    size_t k = 0;
    while (r.p < r.end) {
        uint32_t f;
        int wt;
        if (!rd_tag(&r, &f, &wt) || !rd_skip(&r, wt)) {
            break;
        }
        k += f == 1;
    }
    return k;
}

static void put_list(spm_buf_t *b, const uint8_t *p, size_t n, int depth, bool kvs)
{
    conn_spanmetrics_put_varint(b, count_elems(p, n));
    rd_t r = {p, p + n};
    while (r.p < r.end) {
        uint32_t f;
        int wt;
        const uint8_t *s;
        size_t sn;
        if (!rd_tag(&r, &f, &wt)) {
            return;
        }
        if (f != 1) {
            rd_skip(&r, wt);
            continue;
        }
        rd_bytes(&r, &s, &sn);
        if (!kvs) {
            conn_spanmetrics_put_wire_value(b, s, sn, depth + 1);
            continue;
        }
        spm_kv_t kv;
        kv_parse(s, sn, &kv, false, 0);
        conn_spanmetrics_put_str(b, kv.k, kv.kn);
        if (kv.val.wire) {
            conn_spanmetrics_put_wire_value(b, kv.val.w, kv.val.wn, depth + 1);
        } else {
            conn_spanmetrics_put_byte(b, SPM_T_NONE);
        }
    }
}

/* The last value field of an AnyValue (the only one: checked) and where its value starts. */
static uint32_t value_field(const uint8_t *p, size_t n, const uint8_t **at)
{
    rd_t r = {p, p + n};
    uint32_t field = 0;
    while (r.p < r.end) {
        uint32_t f;
        int wt;
        if (!rd_tag(&r, &f, &wt)) {
            break;
        }
        const uint8_t *here = r.p;
        if (!rd_skip(&r, wt)) {
            break;
        }
        if (f >= 1 && f <= 7) {
            field = f;
            *at = here;
        }
    }
    return field;
}

void conn_spanmetrics_put_wire_value(spm_buf_t *b, const uint8_t *p, size_t n, int depth)
{
    const uint8_t *at = NULL;
    uint32_t f = value_field(p, n, &at);
    if (depth > SPM_DEPTH || f == 0) {
        conn_spanmetrics_put_byte(b, SPM_T_NONE);
        return;
    }
    rd_t v = {at, p + n};
    uint64_t x = 0;
    const uint8_t *s = NULL;
    size_t sn = 0;
    if (f == 2 || f == 3) {
        rd_varint(&v, &x);
        conn_spanmetrics_put_byte(b, f == 2 ? SPM_T_BOOL : SPM_T_INT);
        if (f == 2) {
            conn_spanmetrics_put_byte(b, x != 0);
        } else {
            conn_spanmetrics_put_raw(b, &x, 8);
        }
        return;
    }
    if (f == 4) {
        rd_fixed64(&v, &x);
        conn_spanmetrics_put_byte(b, SPM_T_DOUBLE);
        conn_spanmetrics_put_raw(b, &x, 8);
        return;
    }
    rd_bytes(&v, &s, &sn);
    if (f == 1) {
        conn_spanmetrics_put_byte(b, SPM_T_STR);
        conn_spanmetrics_put_str(b, (const char *)s,
                                 conn_spanmetrics_cstr_len((const char *)s, sn));
    } else if (f == 7) {
        conn_spanmetrics_put_byte(b, SPM_T_BYTES);
        conn_spanmetrics_put_varint(b, sn);
        conn_spanmetrics_put_raw(b, s, sn);
    } else {
        conn_spanmetrics_put_byte(b, f == 5 ? SPM_T_ARRAY : SPM_T_KVLIST);
        put_list(b, s, sn, depth, f == 6);
    }
}

/* ---- resource entries ------------------------------------------------------------------ */

/* Reading one resource entry into the aggregate's scratch arrays. A read that fails leaves
 * the entry to protobuf-c (malformed, or merged: protobuf-c decides), or, oom, to nothing. */
typedef struct entry {
    spm_t *a;
    bool oom;
    size_t n_kvs, n_spans, n_span_kvs, n_scopes;
} entry_t;

static bool grow(entry_t *e, void *arr, size_t *cap, size_t n, size_t size)
{
    if (!conn_spanmetrics_reserve(arr, cap, n, size)) {
        e->oom = true;
        return false;
    }
    return true;
}

/* Status: code (field 3), the last one wins. */
static bool read_status(const uint8_t *p, size_t n, int32_t *code)
{
    rd_t r = {p, p + n};
    while (r.p < r.end) {
        uint32_t f;
        int wt;
        uint64_t v;
        if (!rd_tag(&r, &f, &wt)) {
            return false;
        }
        if (f == 3 && wt == WT_VARINT && rd_varint(&r, &v)) {
            *code = (int32_t)v;
        } else if (f == 3 || !rd_skip(&r, wt)) {
            return false;
        }
    }
    return true;
}

/* A span attribute, kept when there are dimensions; its value is checked when a dimension
 * may read it. */
static bool read_span_attr(entry_t *e, const uint8_t *p, size_t n)
{
    spm_t *a = e->a;
    if (!grow(e, &a->span_kvs, &a->span_kvs_cap, e->n_span_kvs + 1, sizeof *a->span_kvs)) {
        return false;
    }
    spm_kv_t *kv = &a->span_kvs[e->n_span_kvs];
    if (!kv_parse(p, n, kv, false, 0)) {
        return false;
    }
    for (size_t i = 0; i < a->n_dims && kv->val.wire; i++) {
        const char *d = a->dims[i]->name;
        if (strlen(d) == kv->kn && memcmp(d, kv->k, kv->kn) == 0) {
            if (!conn_spanmetrics_wire_value_ok(kv->val.w, kv->val.wn, 0)) {
                return false;
            }
            break;
        }
    }
    e->n_span_kvs++;
    return true;
}

/* Span fields: 1 trace_id, 2 span_id, 5 name, 6 kind, 7 start, 8 end, 9 attributes,
 * 15 status; the others are skipped. */
static bool span_field(entry_t *e, spm_span_t *sp, rd_t *r, uint32_t f, int wt, int *statuses)
{
    const uint8_t *s;
    size_t n;
    uint64_t v = 0;
    if (f == 6) {
        bool ok = wt == WT_VARINT && rd_varint(r, &v);
        sp->kind = (int32_t)v;
        return ok;
    }
    if (f == 7 || f == 8) {
        return wt == WT_I64 && rd_fixed64(r, f == 7 ? &sp->start : &sp->end);
    }
    if (f != 1 && f != 2 && f != 5 && f != 9 && f != 15) {
        return rd_skip(r, wt);
    }
    if (wt != WT_LEN || !rd_bytes(r, &s, &n)) {
        return false;
    }
    if (f == 1) {
        sp->trace_id = s;
        sp->trace_id_len = n;
    } else if (f == 2) {
        sp->span_id = s;
        sp->span_id_len = n;
    } else if (f == 5) {
        sp->name = (const char *)s;
        sp->name_len = conn_spanmetrics_cstr_len(sp->name, n);
    } else if (f == 15) {
        /* A second status is merged into the first by protobuf-c. */
        return ++*statuses == 1 && read_status(s, n, &sp->status);
    } else if (e->a->n_dims > 0) {
        return read_span_attr(e, s, n);
    }
    return true;
}

static bool read_span(entry_t *e, const uint8_t *p, size_t n, size_t scope)
{
    spm_t *a = e->a;
    if (!grow(e, &a->spans, &a->spans_cap, e->n_spans + 1, sizeof *a->spans)) {
        return false;
    }
    spm_span_t *sp = &a->spans[e->n_spans];
    *sp = (spm_span_t){.name = "", .scope = scope, .attrs_at = e->n_span_kvs};
    int statuses = 0;
    rd_t r = {p, p + n};
    while (r.p < r.end) {
        uint32_t f;
        int wt;
        /* span_field may grow span_kvs, never spans: sp stays valid. */
        if (!rd_tag(&r, &f, &wt) || !span_field(e, sp, &r, f, wt, &statuses)) {
            return false;
        }
    }
    sp->n_attrs = e->n_span_kvs - sp->attrs_at;
    e->n_spans++;
    return true;
}

/* InstrumentationScope: 1 name, 2 version (the last of each wins). */
static bool read_scope(const uint8_t *p, size_t n, spm_wscope_t *sc)
{
    rd_t r = {p, p + n};
    while (r.p < r.end) {
        uint32_t f;
        int wt;
        const uint8_t *s;
        size_t sn;
        if (!rd_tag(&r, &f, &wt)) {
            return false;
        }
        if (f != 1 && f != 2) {
            if (!rd_skip(&r, wt)) {
                return false;
            }
            continue;
        }
        if (wt != WT_LEN || !rd_bytes(&r, &s, &sn)) {
            return false;
        }
        const char **str = f == 1 ? &sc->name : &sc->version;
        size_t *len = f == 1 ? &sc->name_len : &sc->version_len;
        *str = (const char *)s;
        *len = conn_spanmetrics_cstr_len(*str, sn);
    }
    return true;
}

/* The occurrences of a LEN field in a message: how many, and the last one's bytes. */
static int find_field(const uint8_t *p, size_t n, uint32_t want, const uint8_t **s, size_t *sn)
{
    rd_t r = {p, p + n};
    int count = 0;
    while (r.p < r.end) {
        uint32_t f;
        int wt;
        if (!rd_tag(&r, &f, &wt)) {
            return -1;
        }
        if (f == want && (wt != WT_LEN || !rd_bytes(&r, s, sn))) {
            return -1;
        }
        if (f == want) {
            count++;
        } else if (!rd_skip(&r, wt)) {
            return -1;
        }
    }
    return count;
}

/* ScopeSpans: 1 scope (read first: it may come after the spans), 2 spans. */
static bool read_scope_spans(entry_t *e, const uint8_t *p, size_t n)
{
    spm_t *a = e->a;
    const uint8_t *s = NULL;
    size_t sn = 0;
    int scopes = find_field(p, n, 1, &s, &sn);
    if (scopes < 0 || scopes > 1 ||
        !grow(e, &a->scopes, &a->scopes_cap, e->n_scopes + 1, sizeof *a->scopes)) {
        return false;
    }
    spm_wscope_t *sc = &a->scopes[e->n_scopes];
    *sc = (spm_wscope_t){.has = scopes == 1, .name = "", .version = ""};
    if (scopes == 1 && !read_scope(s, sn, sc)) {
        return false;
    }
    size_t idx = e->n_scopes++;
    rd_t r = {p, p + n};
    while (r.p < r.end) {
        uint32_t f;
        int wt;
        if (!rd_tag(&r, &f, &wt)) {
            return false;
        }
        if (f != 2) {
            if (!rd_skip(&r, wt)) {
                return false;
            }
        } else if (wt != WT_LEN || !rd_bytes(&r, &s, &sn) || !read_span(e, s, sn, idx)) {
            return false;
        }
    }
    return true;
}

/* Resource: 1 attributes. */
static bool read_resource(entry_t *e, const uint8_t *p, size_t n)
{
    spm_t *a = e->a;
    rd_t r = {p, p + n};
    while (r.p < r.end) {
        uint32_t f;
        int wt;
        const uint8_t *s;
        size_t sn;
        if (!rd_tag(&r, &f, &wt)) {
            return false;
        }
        if (f != 1) {
            if (!rd_skip(&r, wt)) {
                return false;
            }
            continue;
        }
        if (wt != WT_LEN || !rd_bytes(&r, &s, &sn) ||
            !grow(e, &a->kvs, &a->kvs_cap, e->n_kvs + 1, sizeof *a->kvs) ||
            !kv_parse(s, sn, &a->kvs[e->n_kvs], true, 0)) {
            return false;
        }
        e->n_kvs++;
    }
    return true;
}

/* ResourceSpans: 1 resource (read first), 2 scope spans. */
static bool read_entry(entry_t *e, const uint8_t *p, size_t n)
{
    const uint8_t *s = NULL;
    size_t sn = 0;
    int resources = find_field(p, n, 1, &s, &sn);
    if (resources < 0 || resources > 1 || (resources == 1 && !read_resource(e, s, sn))) {
        return false;
    }
    rd_t r = {p, p + n};
    while (r.p < r.end) {
        uint32_t f;
        int wt;
        if (!rd_tag(&r, &f, &wt)) {
            return false;
        }
        if (f != 2) {
            if (!rd_skip(&r, wt)) {
                return false;
            }
        } else if (wt != WT_LEN || !rd_bytes(&r, &s, &sn) || !read_scope_spans(e, s, sn)) {
            return false;
        }
    }
    return true;
}

static int count_entry(spm_t *a, const entry_t *e)
{
    spm_ctx_t cx;
    int rc = conn_spanmetrics_begin_resource(a, &cx, a->kvs, e->n_kvs);
    size_t scope = SIZE_MAX;
    for (size_t i = 0; rc > 0 && i < e->n_spans; i++) {
        spm_span_t *sp = &a->spans[i];
        if (sp->scope != scope) {
            const spm_wscope_t *sc = &a->scopes[sp->scope];
            scope = sp->scope;
            conn_spanmetrics_begin_scope(a, &cx, sc->has, sc->name, sc->name_len, sc->version,
                                         sc->version_len);
        }
        sp->attrs = sp->n_attrs > 0 ? a->span_kvs + sp->attrs_at : NULL;
        rc = conn_spanmetrics_count_span(a, &cx, sp) == 0 ? 1 : OM_ENOMEM;
    }
    return rc < 0 ? rc : 0;
}

/* protobuf-c reads the entry, and conn_spanmetrics_add_resource counts it. */
static int fallback(spm_t *a, const uint8_t *p, size_t n)
{
    a->wire_fallbacks++;
    om_arena_t *ar = om_arena_new(0);
    if (ar == NULL) {
        return OM_ENOMEM;
    }
    ProtobufCMessage *m =
        protobuf_c_message_unpack(&opentelemetry__proto__trace__v1__resource_spans__descriptor,
                                  om_arena_pb_allocator(ar), n, p);
    int rc = m != NULL ? conn_spanmetrics_add_resource(a, (const om_resource_spans_t *)m)
                       : (om_arena_exhausted(ar) ? OM_ENOMEM : OM_EINVAL);
    om_arena_unref(ar);
    return rc;
}

static int scan_wire(spm_t *a, const uint8_t *p, size_t n)
{
    rd_t r = {p, p + n};
    while (r.p < r.end) {
        uint32_t f;
        int wt;
        const uint8_t *s;
        size_t sn;
        if (!rd_tag(&r, &f, &wt)) {
            return OM_EINVAL;
        }
        if (f != 1) {
            if (!rd_skip(&r, wt)) {
                return OM_EINVAL;
            }
            continue;
        }
        if (wt != WT_LEN || !rd_bytes(&r, &s, &sn)) {
            return OM_EINVAL;
        }
        entry_t e = {.a = a};
        int rc;
        if (read_entry(&e, s, sn)) {
            rc = count_entry(a, &e);
        } else {
            rc = e.oom ? OM_ENOMEM : fallback(a, s, sn);
        }
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

int conn_spanmetrics_scan_wire(spm_t *s, spm_part_t *part, const uint8_t *p, size_t n)
{
    s->part = part;
    int rc = scan_wire(s, p, n);
    s->part = NULL;
    return rc;
}
