/* spanmetrics_key.c: the byte encoding of attribute sets that identifies series and resources
 * and carries their attributes until a flush writes them out, the hash over it, and the
 * exponential histogram.
 *
 * An encoded AnyValue is a tag byte, then: a string or bytes as a varint length and the
 * bytes; a bool as one byte; an int or a double as 8 bytes (host order: the encoding never
 * leaves the process); an array as a varint count and the values; a kvlist as a varint count
 * and (string key, value) pairs. Values nested deeper than SPM_DEPTH are encoded as empty. */
#include <math.h>
#include <string.h>

#include "spanmetrics.h"

static bool buf_reserve(spm_buf_t *b, size_t extra)
{
    if (b->failed) {
        return false;
    }
    if (b->len + extra <= b->cap) {
        return true;
    }
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra) {
        cap *= 2;
    }
    uint8_t *p = om_realloc(b->p, cap);
    if (p == NULL) {
        b->failed = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

void conn_spanmetrics_put_byte(spm_buf_t *b, uint8_t c)
{
    if (buf_reserve(b, 1)) {
        b->p[b->len++] = c;
    }
}

void conn_spanmetrics_put_varint(spm_buf_t *b, uint64_t v)
{
    if (!buf_reserve(b, 10)) {
        return;
    }
    b->len = (size_t)(om_pb_put_varint(b->p + b->len, v) - b->p);
}

void conn_spanmetrics_put_raw(spm_buf_t *b, const void *p, size_t n)
{
    if (n > 0 && buf_reserve(b, n)) {
        memcpy(b->p + b->len, p, n);
        b->len += n;
    }
}

void conn_spanmetrics_put_str(spm_buf_t *b, const char *s, size_t n)
{
    conn_spanmetrics_put_varint(b, n);
    conn_spanmetrics_put_raw(b, s, n);
}

void conn_spanmetrics_put_val(spm_buf_t *b, const spm_val_t *v)
{
    if (v->wire) {
        conn_spanmetrics_put_wire_value(b, v->w, v->wn, 0);
    } else {
        conn_spanmetrics_put_value(b, v->v, 0);
    }
}

void conn_spanmetrics_put_str_value(spm_buf_t *b, const char *s, size_t n)
{
    conn_spanmetrics_put_byte(b, SPM_T_STR);
    conn_spanmetrics_put_str(b, s, n);
}

static void put_kvlist(spm_buf_t *b, om_keyvalue_t *const *kvs, size_t n, int depth)
{
    conn_spanmetrics_put_varint(b, n);
    for (size_t i = 0; i < n; i++) {
        const char *k = kvs[i]->key != NULL ? kvs[i]->key : "";
        conn_spanmetrics_put_str(b, k, strlen(k));
        conn_spanmetrics_put_value(b, kvs[i]->value, depth + 1);
    }
}

void conn_spanmetrics_put_value(spm_buf_t *b, const om_anyvalue_t *v, int depth)
{
    if (v == NULL || depth > SPM_DEPTH) {
        conn_spanmetrics_put_byte(b, SPM_T_NONE);
        return;
    }
    switch (v->value_case) {
    case OM_ANYVALUE_STRING:
        conn_spanmetrics_put_byte(b, SPM_T_STR);
        conn_spanmetrics_put_str(b, v->string_value, strlen(v->string_value));
        break;
    case OM_ANYVALUE_BOOL:
        conn_spanmetrics_put_byte(b, SPM_T_BOOL);
        conn_spanmetrics_put_byte(b, v->bool_value ? 1 : 0);
        break;
    case OM_ANYVALUE_INT:
        conn_spanmetrics_put_byte(b, SPM_T_INT);
        conn_spanmetrics_put_raw(b, &v->int_value, 8);
        break;
    case OM_ANYVALUE_DOUBLE:
        conn_spanmetrics_put_byte(b, SPM_T_DOUBLE);
        conn_spanmetrics_put_raw(b, &v->double_value, 8);
        break;
    case OM_ANYVALUE_BYTES:
        conn_spanmetrics_put_byte(b, SPM_T_BYTES);
        conn_spanmetrics_put_varint(b, v->bytes_value.len);
        conn_spanmetrics_put_raw(b, v->bytes_value.data, v->bytes_value.len);
        break;
    case OM_ANYVALUE_ARRAY:
        conn_spanmetrics_put_byte(b, SPM_T_ARRAY);
        conn_spanmetrics_put_varint(b, v->array_value != NULL ? v->array_value->n_values : 0);
        for (size_t i = 0; v->array_value != NULL && i < v->array_value->n_values; i++) {
            conn_spanmetrics_put_value(b, v->array_value->values[i], depth + 1);
        }
        break;
    case OM_ANYVALUE_KVLIST:
        conn_spanmetrics_put_byte(b, SPM_T_KVLIST);
        put_kvlist(b, v->kvlist_value != NULL ? v->kvlist_value->values : NULL,
                   v->kvlist_value != NULL ? v->kvlist_value->n_values : 0, depth);
        break;
    default:
        conn_spanmetrics_put_byte(b, SPM_T_NONE);
        break;
    }
}

/* ---- decoding ---------------------------------------------------------------------------- */

static bool get_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; *p < end && shift < 64; shift += 7) {
        uint8_t c = *(*p)++;
        *v |= (uint64_t)(c & 0x7f) << shift;
        if (c < 0x80) {
            return true;
        }
    }
    return false;
}

bool conn_spanmetrics_get_str(const uint8_t **p, const uint8_t *end, const uint8_t **s, size_t *n)
{
    uint64_t len;
    if (!get_varint(p, end, &len) || len > (uint64_t)(end - *p)) {
        return false;
    }
    *s = *p;
    *n = (size_t)len;
    *p += len;
    return true;
}

static void *arena_msg(om_arena_t *ar, const void *init, size_t size)
{
    void *m = om_arena_alloc(ar, size);
    if (m != NULL) {
        memcpy(m, init, size);
    }
    return m;
}

static bool get_array(const uint8_t **p, const uint8_t *end, om_anyvalue_t *v, om_arena_t *ar)
{
    static const om_arrayvalue_t init = OPENTELEMETRY__PROTO__COMMON__V1__ARRAY_VALUE__INIT;
    static const om_anyvalue_t vinit = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
    uint64_t n;
    om_arrayvalue_t *a = arena_msg(ar, &init, sizeof init);
    if (a == NULL || !get_varint(p, end, &n) || n > (uint64_t)(end - *p)) {
        return false;
    }
    a->values = om_arena_calloc(ar, n ? n : 1, sizeof *a->values);
    if (a->values == NULL) {
        return false;
    }
    for (uint64_t i = 0; i < n; i++) {
        a->values[i] = arena_msg(ar, &vinit, sizeof vinit);
        if (a->values[i] == NULL || !conn_spanmetrics_get_value(p, end, a->values[i], ar)) {
            return false;
        }
        a->n_values++;
    }
    v->value_case = OM_ANYVALUE_ARRAY;
    v->array_value = a;
    return true;
}

static bool get_kvlist(const uint8_t **p, const uint8_t *end, om_anyvalue_t *v, om_arena_t *ar)
{
    static const om_kvlist_t init = OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE_LIST__INIT;
    static const om_keyvalue_t kinit = OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT;
    static const om_anyvalue_t vinit = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
    uint64_t n;
    om_kvlist_t *l = arena_msg(ar, &init, sizeof init);
    if (l == NULL || !get_varint(p, end, &n) || n > (uint64_t)(end - *p)) {
        return false;
    }
    l->values = om_arena_calloc(ar, n ? n : 1, sizeof *l->values);
    if (l->values == NULL) {
        return false;
    }
    for (uint64_t i = 0; i < n; i++) {
        const uint8_t *k;
        size_t kn;
        om_keyvalue_t *kv = arena_msg(ar, &kinit, sizeof kinit);
        if (kv == NULL || !conn_spanmetrics_get_str(p, end, &k, &kn)) {
            return false;
        }
        kv->key = om_arena_strndup(ar, (const char *)k, kn);
        kv->value = arena_msg(ar, &vinit, sizeof vinit);
        if (kv->key == NULL || kv->value == NULL ||
            !conn_spanmetrics_get_value(p, end, kv->value, ar)) {
            return false;
        }
        l->values[l->n_values++] = kv;
    }
    v->value_case = OM_ANYVALUE_KVLIST;
    v->kvlist_value = l;
    return true;
}

bool conn_spanmetrics_get_value(const uint8_t **p, const uint8_t *end, om_anyvalue_t *v,
                                om_arena_t *ar)
{
    if (*p >= end) {
        return false;
    }
    uint8_t tag = *(*p)++;
    const uint8_t *s;
    size_t n;
    switch (tag) {
    case SPM_T_STR:
        if (!conn_spanmetrics_get_str(p, end, &s, &n)) {
            return false;
        }
        v->value_case = OM_ANYVALUE_STRING;
        v->string_value = om_arena_strndup(ar, (const char *)s, n);
        return v->string_value != NULL;
    case SPM_T_BOOL:
        if (*p >= end) {
            return false;
        }
        v->value_case = OM_ANYVALUE_BOOL;
        v->bool_value = *(*p)++ != 0;
        return true;
    case SPM_T_INT:
    case SPM_T_DOUBLE:
        if (end - *p < 8) {
            return false;
        }
        v->value_case = tag == SPM_T_INT ? OM_ANYVALUE_INT : OM_ANYVALUE_DOUBLE;
        memcpy(tag == SPM_T_INT ? (void *)&v->int_value : (void *)&v->double_value, *p, 8);
        *p += 8;
        return true;
    case SPM_T_BYTES: {
        if (!conn_spanmetrics_get_str(p, end, &s, &n)) {
            return false;
        }
        uint8_t *d = om_arena_alloc(ar, n ? n : 1);
        if (d == NULL) {
            return false;
        }
        memcpy(d, s, n);
        v->value_case = OM_ANYVALUE_BYTES;
        v->bytes_value = (ProtobufCBinaryData){.len = n, .data = d};
        return true;
    }
    case SPM_T_ARRAY:
        return get_array(p, end, v, ar);
    case SPM_T_KVLIST:
        return get_kvlist(p, end, v, ar);
    default:
        v->value_case = OM_ANYVALUE_NONE;
        return true;
    }
}

/* ---- hash -------------------------------------------------------------------------------- */

static uint64_t mix(uint64_t h)
{
    h ^= h >> 33;
    h *= UINT64_C(0xff51afd7ed558ccd);
    h ^= h >> 33;
    h *= UINT64_C(0xc4ceb9fe1a85ec53);
    h ^= h >> 33;
    return h;
}

/* Eight bytes at a time; good enough to spread keys over a table, not meant to resist
 * collisions chosen by an attacker (a collision costs a key comparison, nothing more). */
uint64_t conn_spanmetrics_hash(const uint8_t *p, size_t n)
{
    uint64_t h = UINT64_C(0x9e3779b97f4a7c15) ^ (n * UINT64_C(0x100000001b3));
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = (h ^ w) * UINT64_C(0x9e3779b97f4a7c15);
        h ^= h >> 29;
    }
    uint64_t t = 0;
    if (n > i) {
        memcpy(&t, p + i, n - i);
    }
    h = (h ^ t) * UINT64_C(0x9e3779b97f4a7c15);
    return mix(h);
}

/* ---- exponential histogram --------------------------------------------------------------- */

void conn_spanmetrics_expo_init(spm_expo_t *e)
{
    memset(e, 0, sizeof *e);
    e->scale = SPM_EXPO_MAX_SCALE;
}

void conn_spanmetrics_expo_reset(spm_expo_t *e)
{
    uint64_t *counts = e->counts;
    uint32_t cap = e->cap;
    conn_spanmetrics_expo_init(e);
    e->counts = counts;
    e->cap = cap;
}

/* The bucket of v > 0 at scale: (base^index, base^(index+1)] with base 2^(2^-scale), as the
 * OpenTelemetry data model defines it (exact powers of two computed exactly). */
int32_t conn_spanmetrics_expo_index(double v, int32_t scale)
{
    int exp;
    double frac = frexp(v, &exp); /* v = frac * 2^exp, frac in [0.5, 1) */
    if (frac == 0.5) {
        /* An exact power of two, 2^(exp-1): the upper bound of its bucket. */
        /* A multiplication, not a shift: exp - 1 is negative below 1. */
        int64_t i = scale >= 0 ? (int64_t)(exp - 1) * ((int64_t)1 << scale) - 1
                               : ((int64_t)(exp - 2) >> -scale);
        return (int32_t)i;
    }
    if (scale <= 0) {
        return (int32_t)((int64_t)(exp - 1) >> -scale);
    }
    double factor = ldexp(1.0 / M_LN2, scale);
    return (int32_t)(ceil(log(v) * factor) - 1);
}

/* Lower the scale by `by`: bucket i becomes i >> by, merging neighbours (consecutive buckets
 * land on the same or the next one, so the merged buckets stay contiguous). */
static void expo_downscale(spm_expo_t *e, int by)
{
    if (by <= 0) {
        return;
    }
    int32_t first = e->offset >> by;
    uint32_t j = 0;
    for (uint32_t i = 0; i < e->len; i++) {
        uint64_t c = e->counts[i];
        uint32_t to = (uint32_t)(((e->offset + (int32_t)i) >> by) - first);
        if (i == 0 || to != j) {
            j = to;
            e->counts[j] = c;
        } else {
            e->counts[j] += c;
        }
    }
    if (e->len > 0) {
        e->len = j + 1;
        e->offset = first;
    }
    e->scale -= by;
}

static bool expo_grow(spm_expo_t *e, uint32_t need, uint32_t max_size)
{
    if (need <= e->cap) {
        return true;
    }
    uint32_t cap = e->cap ? e->cap : 8;
    while (cap < need) {
        cap *= 2;
    }
    cap = cap > max_size && max_size >= need ? max_size : cap;
    uint64_t *c = om_realloc(e->counts, (size_t)cap * sizeof *c);
    if (c == NULL) {
        return false;
    }
    e->counts = c;
    e->cap = cap;
    return true;
}

/* Make room for bucket *idx: lower the scale until the range fits max_size buckets (*idx
 * follows), then grow the array or shift it. */
static bool expo_fit(spm_expo_t *e, uint32_t max_size, int32_t *idx)
{
    int64_t lo = *idx, hi = *idx;
    if (e->len > 0) {
        lo = e->offset < lo ? e->offset : lo;
        hi = e->offset + (int64_t)e->len - 1 > hi ? e->offset + (int64_t)e->len - 1 : hi;
    }
    int by = 0;
    while ((hi >> by) - (lo >> by) + 1 > (int64_t)max_size && e->scale - by > SPM_EXPO_MIN_SCALE) {
        by++;
    }
    expo_downscale(e, by);
    *idx >>= by;
    lo >>= by;
    hi >>= by;
    if (!expo_grow(e, (uint32_t)(hi - lo + 1), max_size)) {
        return false;
    }
    if (e->len == 0) {
        e->offset = (int32_t)lo;
    } else if (lo < e->offset) {
        uint32_t shift = (uint32_t)(e->offset - lo);
        memmove(e->counts + shift, e->counts, (size_t)e->len * sizeof *e->counts);
        memset(e->counts, 0, (size_t)shift * sizeof *e->counts);
        e->len += shift;
        e->offset = (int32_t)lo;
    }
    uint32_t to = (uint32_t)(hi - e->offset + 1);
    if (to > e->len) {
        memset(e->counts + e->len, 0, (size_t)(to - e->len) * sizeof *e->counts);
        e->len = to;
    }
    return true;
}

bool conn_spanmetrics_expo_add(spm_expo_t *e, double v, uint32_t max_size)
{
    if (!(v > 0)) {
        v = 0; /* durations are never negative: this is the zero bucket */
        e->zero_count++;
    } else {
        int32_t idx = conn_spanmetrics_expo_index(v, e->scale);
        bool in = e->len > 0 && idx >= e->offset && idx < e->offset + (int32_t)e->len;
        if (!in && !expo_fit(e, max_size < 2 ? 2 : max_size, &idx)) {
            return false;
        }
        e->counts[idx - e->offset]++;
    }
    e->min = e->total == 0 || v < e->min ? v : e->min;
    e->max = e->total == 0 || v > e->max ? v : e->max;
    e->total++;
    return true;
}

/* Make room in e for bucket *idx as expo_fit does, lowering src by as much as e was lowered. */
static bool expo_fit_both(spm_expo_t *e, spm_expo_t *src, uint32_t max_size, int32_t idx)
{
    int32_t before = e->scale;
    if (!expo_fit(e, max_size, &idx)) {
        return false;
    }
    expo_downscale(src, before - e->scale);
    return true;
}

bool conn_spanmetrics_expo_merge(spm_expo_t *e, spm_expo_t *src, uint32_t max_size)
{
    if (src->total == 0) {
        return true;
    }
    max_size = max_size < 2 ? 2 : max_size;
    /* At the lower of the two scales, then lowered until both ranges fit: the scale the values
     * added one by one would have brought e to (a scale only goes down, to the highest at which
     * all of them fit), and at a scale bucket i of a higher one is i >> (the difference). */
    if (src->scale > e->scale) {
        expo_downscale(src, src->scale - e->scale);
    } else {
        expo_downscale(e, e->scale - src->scale);
    }
    if (src->len > 0) {
        if (!expo_fit_both(e, src, max_size, src->offset) ||
            !expo_fit_both(e, src, max_size, src->offset + (int32_t)src->len - 1)) {
            return false;
        }
        for (uint32_t i = 0; i < src->len; i++) {
            e->counts[src->offset + (int32_t)i - e->offset] += src->counts[i];
        }
    }
    e->zero_count += src->zero_count;
    e->min = e->total == 0 || src->min < e->min ? src->min : e->min;
    e->max = e->total == 0 || src->max > e->max ? src->max : e->max;
    e->total += src->total;
    return true;
}
