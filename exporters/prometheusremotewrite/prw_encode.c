/* prw_encode.c: a decoded OTLP metrics batch -> remote-write 1.0 requests.
 *
 * The translation rules are the core's (src/prom.c, shared with the pull exporter); what is
 * remote-write's is here, after otelcol-contrib's pkg/translator/prometheusremotewrite
 * (metrics_to_prw.go FromMetrics, helper.go, number_data_points.go, histograms.go):
 *   - a gauge or sum point is one sample; a histogram point is _sum (when it has a sum),
 *     _count and one cumulative _bucket{le} per explicit bound plus le="+Inf" (= count); a
 *     summary point is _sum, _count and {quantile}; an exponential histogram point is one
 *     native histogram (scale above 8 downscaled to 8, below -4 dropped; zero_threshold or
 *     1e-128; buckets as spans and deltas, gaps of up to two buckets filled);
 *   - delta sums and histograms are dropped (remote-write has no delta), counted by the
 *     caller; NoRecordedValue points carry the staleness marker;
 *   - labels: the point's attributes (and with resource_to_telemetry the resource's), job and
 *     instance from the resource, external labels where the data has none of that name, then
 *     __name__ and le / quantile; sorted; empty values left out;
 *   - one target_info series per resource entry with attributes besides service.name,
 *     service.namespace and service.instance.id, at the entry's latest point time;
 *   - exemplars on monotonic sums, explicit buckets (each on the first bucket that holds its
 *     value) and native histograms;
 *   - samples of one series are grouped into one TimeSeries and sorted by time (equal times:
 *     the last one), so that a series is in exactly one request and in order.
 * The protobuf is written directly (series labels encoded once per series, merged from the
 * point's encoded labels by memcpy); the generated prompb code is only used to check it (tests,
 * the fuzz target). A batch still in its wire bytes is read from them ("From the wire bytes"
 * below), and the series of each point shape are cached across batches ("The cache of point
 * shapes"): both give the bytes the decoded, uncached path gives (prw_test.c's differential
 * test and the fuzz target compare them). Memory: growable arrays kept by the encoder (the
 * cache at most ~CACHE_MAX_BYTES), nothing per point. Any thread. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "prw.h"

#define NONE UINT32_MAX

typedef struct sample {
    double v;
    int64_t ts;
    uint32_t next;
} sample_t;

/* A pre-encoded histogram or exemplar message in blob. */
typedef struct item {
    uint32_t off, len;
    int64_t ts;
    uint32_t next;
} item_t;

/* A series the encoder has seen (in this batch or an earlier one, until the cache is
 * emptied): its encoded labels, and its place in the batch being encoded. */
typedef struct gseries {
    uint64_t hash;
    uint32_t lab_off, lab_len; /* encoded Label fields in labels */
    uint32_t gen;              /* the batch (e->gen) that slot belongs to */
    uint32_t slot;             /* its index in e->series in batch gen */
} gseries_t;

/* A series of the batch being encoded (first appearance order). */
typedef struct series {
    uint32_t gid; /* in e->gs */
    uint32_t s_first, s_last, h_first, h_last, e_first, e_last;
} series_t;

/* A cached point shape: a key (the resource's job and instance, the family name, the kind of
 * point, its attributes, a histogram's bounds and whether it has a sum) and the series its
 * samples went to, in the order the translation asks for them. */
typedef struct pentry {
    uint64_t hash;
    uint32_t key_off, key_len; /* in keys */
    uint32_t ids_off, n_ids;   /* in ids */
} pentry_t;

typedef struct meta {
    uint32_t name_off, name_len; /* in metas text */
    int type;
    const char *help, *unit; /* the batch's strings */
} meta_t;

/* A family name translated before: its key (the metric's kind, name and unit) then the name,
 * at off in names_text. key_len 0: an empty slot. */
typedef struct name_slot {
    uint64_t hash;
    uint32_t off, key_len, out_len;
} name_slot_t;
#define NAME_SLOTS 1024

/* Where a label of this name goes among the point's labels (sorted), and whether a point
 * label of that very name is there (it gives way). */
typedef struct slot {
    size_t pos;
    bool eq;
} slot_t;

/* The growable arrays of one encoding. */
#define VEC(T)                                                                                     \
    struct {                                                                                       \
        T *v;                                                                                      \
        size_t n, cap;                                                                             \
    }

struct prw_encoder {
    const prw_opts_t *o;
    prw_result_t *res;
    bool oom;
    /* Kept across batches (the cache; emptied when it passes CACHE_MAX_BYTES or the options
     * change): every series seen and its encoded labels, and the point shapes seen. */
    om_strbuf_t labels; /* every series' encoded labels */
    VEC(gseries_t) gs;
    uint32_t *table; /* open addressing over gs: index + 1; 0 empty */
    size_t table_cap;
    VEC(pentry_t) pents;
    uint32_t *ptable; /* open addressing over pents: index + 1; 0 empty */
    size_t ptable_cap;
    om_strbuf_t keys;       /* the point shapes' keys */
    VEC(uint32_t) ids;      /* the point shapes' series (gs indexes) */
    om_strbuf_t opts_print; /* what the labels depend on in the options the cache was made with */
    /* The family names by metric kind, name and unit (NAME_SLOTS, direct-mapped; NULL until
     * the first): a batch's metrics come back batch after batch, and translating the name per
     * metric was 3% of the encoder. */
    name_slot_t *names;
    om_strbuf_t names_text;
    om_strbuf_t name_key;   /* the key being looked up */
    bool no_cache;          /* prw_encoder_set_cache(false): the reference path */
    uint32_t gen;           /* the batch being encoded (gs[].gen) */
    om_strbuf_t key;        /* the key of the point being translated */
    size_t key_prefix;      /* its part common to the metric's points */
    bool recording;         /* a cache miss: series_for appends what it finds to ids */
    const uint32_t *replay; /* a cache hit: series_for takes these instead */
    /* The wire path (a batch still in its protobuf bytes): the point being read. */
    om_arena_t *arena;        /* per batch: what is unpacked with protobuf-c (NULL until needed) */
    bool odd;                 /* bytes the wire path does not read: the batch is decoded instead */
    VEC(om_raw_seg_t) wattrs; /* its KeyValue fields */
    const uint8_t *wa_start, *wa_end; /* the attribute fields' bytes, when they are one run */
    bool wa_run;
    VEC(om_keyvalue_t *) wkvs; /* unpacked on a cache miss */
    VEC(om_raw_seg_t) wex;     /* its Exemplar fields */
    VEC(om_exemplar_t *) wexs; /* unpacked */
    VEC(uint64_t) wcounts;     /* a histogram's bucket counts */
    VEC(double) wbounds;       /* and bounds */
    /* Per batch. */
    om_strbuf_t blob; /* encoded histograms and exemplars */
    om_strbuf_t cur;  /* scratch for exemplar values */
    VEC(series_t) series;
    VEC(sample_t) samples;
    VEC(item_t) items;
    /* The point being translated. */
    om_prom_labels_t base;
    om_strbuf_t base_enc;
    VEC(uint32_t) base_off;   /* offset of each encoded base label in base_enc, then the end */
    VEC(const char *) base_n; /* each base label's name */
    VEC(om_keyvalue_t *) kvs;
    /* A label set's hash is the sum of its labels' hashes, so a series' hash is the point's
     * sum plus its extra labels' (minus those they replace), whatever order built it. */
    VEC(uint64_t) base_h;
    uint64_t base_sum;
    slot_t slot_name, slot_le, slot_quantile; /* where the extra labels go (per point) */
    VEC(uint32_t) bucket_series;
    VEC(uint64_t) dense;
    VEC(int64_t) deltas;
    VEC(uint32_t) spans; /* offset, length pairs */
    om_strbuf_t name, tmp;
    /* The resource entry being translated. */
    om_strbuf_t job, instance;
    bool has_job, has_instance;
    int64_t latest_ms;
    /* send_metadata */
    VEC(meta_t) metas;
    om_strbuf_t meta_text;
    /* Output */
    om_strbuf_t req;
    uint16_t *ztable; /* the compressor's table (PRW_SNAPPY_TABLE; NULL until the first) */
    size_t req_series, req_samples, req_hist, req_ex;
    VEC(prw_body_t) bodies;
};
typedef struct prw_encoder enc_t;

static bool vgrow(void **v, size_t *cap, size_t n, size_t size)
{
    if (n < *cap) {
        return true;
    }
    size_t c = *cap != 0 ? *cap * 2 : 64;
    void *p = om_realloc(*v, c * size);
    if (p == NULL) {
        return false;
    }
    *v = p;
    *cap = c;
    return true;
}

#define PUSH(e, vec, val)                                                                          \
    (vgrow((void **)&(vec).v, &(vec).cap, (vec).n, sizeof *(vec).v)                                \
         ? ((vec).v[(vec).n++] = (val), true)                                                      \
         : ((e)->oom = true, false))

/* ------------------------------------------------------------------------------------------ */
/* Protobuf                                                                                   */

static void put_varint(om_strbuf_t *b, uint64_t v)
{
    uint8_t buf[10];
    om_strbuf_append(b, buf, (size_t)(om_pb_put_varint(buf, v) - buf));
}

static void put_tag(om_strbuf_t *b, unsigned field, unsigned wire)
{
    put_varint(b, (uint64_t)(field << 3 | wire));
}

static void put_double(om_strbuf_t *b, unsigned field, double v)
{
    uint64_t bits;
    om_copy(&bits, &v, 8);
    if (bits == 0) {
        return; /* proto3: +0 is the default */
    }
    put_tag(b, field, 1);
    uint8_t le[8];
    om_le64_store(le, bits);
    om_strbuf_append(b, le, 8);
}

static void put_uint(om_strbuf_t *b, unsigned field, uint64_t v, bool always)
{
    if (v != 0 || always) {
        put_tag(b, field, 0);
        put_varint(b, v);
    }
}

static uint64_t zigzag(int64_t v)
{
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static void put_bytes(om_strbuf_t *b, unsigned field, const void *p, size_t n)
{
    put_tag(b, field, 2);
    put_varint(b, n);
    om_strbuf_append(b, p, n);
}

/* Raw writers for the hot paths: the caller has reserved room (sizes from label_size and
 * om_pb_varint_len), so no bounds or growth check per byte. */
static size_t label_size(size_t nlen, size_t vlen)
{
    size_t msg = 1 + om_pb_varint_len(nlen) + nlen + 1 + om_pb_varint_len(vlen) + vlen;
    return 1 + om_pb_varint_len(msg) + msg;
}

/* A Label field whose value is v1 followed by v2 (v2 may be empty). */
static uint8_t *w_label(uint8_t *w, const char *name, size_t nlen, const char *v1, size_t l1,
                        const char *v2, size_t l2)
{
    size_t vlen = l1 + l2;
    size_t msg = 1 + om_pb_varint_len(nlen) + nlen + 1 + om_pb_varint_len(vlen) + vlen;
    *w++ = 0x0a;
    w = om_pb_put_varint(w, msg);
    *w++ = 0x0a;
    w = om_pb_put_varint(w, nlen);
    om_copy(w, name, nlen);
    w += nlen;
    *w++ = 0x12;
    w = om_pb_put_varint(w, vlen);
    om_copy(w, v1, l1);
    w += l1;
    if (l2 > 0) {
        om_copy(w, v2, l2);
        w += l2;
    }
    return w;
}

/* A Label as a repeated field of its parent (TimeSeries.labels, Exemplar.labels): room
 * reserved once, then written raw (a point's labels are most of the encoder's writes). */
static void put_label(om_strbuf_t *b, const char *name, size_t nlen, const char *value, size_t vlen)
{
    if (!om_strbuf_reserve(b, label_size(nlen, vlen))) {
        return;
    }
    uint8_t *w = (uint8_t *)b->data + b->len;
    w = w_label(w, name, nlen, value, vlen, NULL, 0);
    b->len = (size_t)((char *)w - b->data);
    b->data[b->len] = '\0';
}

/* ------------------------------------------------------------------------------------------ */
/* Series                                                                                     */

/* The 128-bit product of a and b, its two halves xored: each output bit depends on most bits
 * of both. */
static inline uint64_t mul_fold(uint64_t a, uint64_t b)
{
    unsigned __int128 m = (unsigned __int128)a * b;
    return (uint64_t)m ^ (uint64_t)(m >> 64);
}

/* A 64-bit hash of label and key bytes: 16 bytes a round, the two 8-byte words (each xored
 * with a constant, the first also with the running hash) multiplied into one (mul_fold), then
 * the last 0 to 16 bytes the same way with the length. One multiply per 16 bytes: the point
 * keys hashed per point were 4% of the encoder's instructions with a multiply per 8. */
static uint64_t hash_bytes(const char *p, size_t n)
{
    uint64_t h = 0x9e3779b97f4a7c15u;
    size_t len = n;
    while (n > 16) {
        uint64_t a, b;
        om_copy(&a, p, 8);
        om_copy(&b, p + 8, 8);
        h = mul_fold(a ^ h ^ 0xa0761d6478bd642fu, b ^ 0xe7037ed1a0b428dbu);
        p += 16;
        n -= 16;
    }
    uint64_t a = 0, b = 0;
    if (n > 8) {
        om_copy(&a, p, 8);
        om_copy(&b, p + 8, n - 8);
    } else {
        om_copy(&a, p, n);
    }
    return mul_fold(a ^ h ^ 0x8ebc6af09c88c6e3u, b ^ len ^ 0x589965cc75374cc3u);
}

/* The encoder's two indexes (series, point shapes) are open addressing over an array of
 * entries whose first member is their 64-bit hash: a slot holds an entry's index + 1, 0 is
 * empty, and the table is kept at most half full. */
_Static_assert(offsetof(gseries_t, hash) == 0, "an indexed entry starts with its hash");
_Static_assert(offsetof(pentry_t, hash) == 0, "an indexed entry starts with its hash");

/* The first empty slot for hash h. */
static size_t index_free_slot(const uint32_t *t, size_t cap, uint64_t h)
{
    size_t j = (size_t)h & (cap - 1);
    while (t[j] != 0) {
        j = (j + 1) & (cap - 1);
    }
    return j;
}

/* Doubles *cap (1024 at first) and indexes the n entries of size bytes again. */
static bool index_grow(uint32_t **table, size_t *cap, const void *entries, size_t n, size_t size)
{
    size_t c = *cap != 0 ? *cap * 2 : 1024;
    uint32_t *t = om_calloc(c, sizeof *t);
    if (t == NULL) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        uint64_t h;
        om_copy(&h, (const char *)entries + i * size, sizeof h);
        t[index_free_slot(t, c, h)] = (uint32_t)i + 1;
    }
    om_free(*table);
    *table = t;
    *cap = c;
    return true;
}

/* The series whose encoded labels were just written after the end of e->labels (len bytes,
 * not yet part of it; h their label-set hash): found (the bytes are dropped), or made (they
 * are kept). Its index in e->gs, or NONE when out of memory. */
static uint32_t series_gid(enc_t *e, size_t len, uint64_t h)
{
    if ((e->gs.n + 1) * 2 > e->table_cap &&
        !index_grow(&e->table, &e->table_cap, e->gs.v, e->gs.n, sizeof *e->gs.v)) {
        e->oom = true;
        return NONE;
    }
    const char *cand = e->labels.data + e->labels.len;
    size_t j = (size_t)h & (e->table_cap - 1);
    for (; e->table[j] != 0; j = (j + 1) & (e->table_cap - 1)) {
        gseries_t *s = &e->gs.v[e->table[j] - 1];
        if (s->hash == h && s->lab_len == len && om_same(e->labels.data + s->lab_off, cand, len)) {
            return e->table[j] - 1;
        }
    }
    gseries_t s = {.hash = h,
                   .lab_off = (uint32_t)e->labels.len,
                   .lab_len = (uint32_t)len,
                   .gen = 0,
                   .slot = NONE};
    if (e->labels.len + len > UINT32_MAX / 2 || !PUSH(e, e->gs, s)) {
        e->oom = true;
        return NONE;
    }
    e->labels.len += len;
    e->labels.data[e->labels.len] = '\0';
    e->table[j] = (uint32_t)e->gs.n;
    return (uint32_t)e->gs.n - 1;
}

/* The batch's series of e->gs[gid], made at its first use in this batch (so that the batch's
 * series come in the order the points first name them). NONE when out of memory. */
static uint32_t use_series(enc_t *e, uint32_t gid)
{
    if (gid == NONE) {
        return NONE;
    }
    if (e->gs.v[gid].gen == e->gen) {
        return e->gs.v[gid].slot;
    }
    series_t s = {gid, NONE, NONE, NONE, NONE, NONE, NONE};
    if (!PUSH(e, e->series, s)) {
        return NONE;
    }
    e->gs.v[gid].gen = e->gen;
    e->gs.v[gid].slot = (uint32_t)e->series.n - 1;
    return (uint32_t)e->series.n - 1;
}

static void add_sample(enc_t *e, uint32_t si, double v, int64_t ts)
{
    if (si == NONE || !PUSH(e, e->samples, ((sample_t){v, ts, NONE}))) {
        return;
    }
    series_t *s = &e->series.v[si];
    uint32_t k = (uint32_t)e->samples.n - 1;
    if (s->s_last == NONE) {
        s->s_first = k;
    } else {
        e->samples.v[s->s_last].next = k;
    }
    s->s_last = k;
}

/* Link the blob bytes written since off as an item of series si (histogram or exemplar). */
static void add_item(enc_t *e, uint32_t si, size_t off, int64_t ts, bool hist)
{
    item_t it = {(uint32_t)off, (uint32_t)(e->blob.len - off), ts, NONE};
    if (si == NONE || e->blob.failed || !PUSH(e, e->items, it)) {
        e->oom = true;
        return;
    }
    series_t *s = &e->series.v[si];
    uint32_t k = (uint32_t)e->items.n - 1;
    uint32_t *first = hist ? &s->h_first : &s->e_first, *last = hist ? &s->h_last : &s->e_last;
    if (*last == NONE) {
        *first = k;
    } else {
        e->items.v[*last].next = k;
    }
    *last = k;
}

/* ------------------------------------------------------------------------------------------ */
/* Labels                                                                                     */

static slot_t slot_of(const enc_t *e, const char *name)
{
    size_t i = 0;
    int cmp = 1;
    while (i < e->base_n.n && (cmp = strcmp(e->base_n.v[i], name)) < 0) {
        i++;
    }
    return (slot_t){i, i < e->base_n.n && cmp == 0};
}

/* The point's labels (without __name__ / le / quantile), encoded once: the series' labels are
 * merged from these. */
static int point_labels(enc_t *e, const om_resource_t *res, om_keyvalue_t *const *attrs,
                        size_t n_attrs, bool use_attrs, bool skip_identifying)
{
    om_prom_labels_t *l = &e->base;
    om_prom_labels_reset(l);
    int rc = 0;
    if (use_attrs) {
        bool r2t = e->o->r2t && res != NULL;
        rc = om_prom_labels_add_attrs(l, NULL, attrs, n_attrs, r2t ? res->attributes : NULL,
                                      r2t ? res->n_attributes : 0);
    } else if (res != NULL) {
        /* target_info: the resource's attributes but those job and instance come from. */
        e->kvs.n = 0;
        for (size_t i = 0; i < res->n_attributes; i++) {
            om_keyvalue_t *kv = res->attributes[i];
            if (kv != NULL && kv->key != NULL &&
                !(skip_identifying && om_prom_identifying_attr(kv->key))) {
                PUSH(e, e->kvs, kv);
            }
        }
        rc = e->oom ? OM_ENOMEM : om_prom_labels_add_attrs(l, NULL, e->kvs.v, e->kvs.n, NULL, 0);
    }
    if (rc == 0 && e->has_job) {
        rc = om_prom_labels_set(l, "job", om_strbuf_str(&e->job), true);
    }
    if (rc == 0 && e->has_instance) {
        rc = om_prom_labels_set(l, "instance", om_strbuf_str(&e->instance), true);
    }
    for (size_t i = 0; i < e->o->n_external && rc == 0; i++) {
        rc = om_prom_labels_set(l, e->o->external[i].key, e->o->external[i].value, false);
    }
    if (rc != 0 || l->text.failed) {
        e->oom = true;
        return OM_ENOMEM;
    }
    om_prom_labels_finish(l);
    om_strbuf_reset(&e->base_enc);
    e->base_off.n = 0;
    e->base_n.n = 0;
    e->base_h.n = 0;
    e->base_sum = 0;
    for (size_t i = 0; i < l->n; i++) {
        if (l->v[i].value[0] == '\0') {
            continue; /* an empty value is no label in Prometheus */
        }
        size_t off = e->base_enc.len;
        PUSH(e, e->base_off, (uint32_t)off);
        PUSH(e, e->base_n, l->v[i].key);
        put_label(&e->base_enc, l->v[i].key, strlen(l->v[i].key), l->v[i].value,
                  strlen(l->v[i].value));
        if (!e->base_enc.failed) {
            uint64_t h = hash_bytes(e->base_enc.data + off, e->base_enc.len - off);
            PUSH(e, e->base_h, h);
            e->base_sum += h;
        }
    }
    PUSH(e, e->base_off, (uint32_t)e->base_enc.len);
    if (e->base_enc.failed || e->oom) {
        e->oom = true;
        return OM_ENOMEM;
    }
    e->slot_name = slot_of(e, "__name__");
    e->slot_le = slot_of(e, "le");
    e->slot_quantile = slot_of(e, "quantile");
    return 0;
}

/* The size of point labels [from, to) as encoded. */
static size_t base_span(const enc_t *e, size_t from, size_t to)
{
    return e->base_off.v[to] - e->base_off.v[from];
}

/* The series of the point's labels plus __name__ = name + suffix and (extra_key) one more,
 * in name order; a point label of the same name as either gives way. The series' labels are
 * written once, straight where they are kept ("__name__" < "le" < "quantile": the extras
 * come in that order). */
static uint32_t series_for(enc_t *e, const char *suffix, const char *extra_key,
                           const char *extra_value)
{
    if (e->replay != NULL) {
        return use_series(e, *e->replay++); /* a cached point shape */
    }
    size_t slen = suffix != NULL ? strlen(suffix) : 0;
    size_t nlen = e->name.len + slen;
    slot_t sn = e->slot_name;
    slot_t sx = extra_key == NULL     ? (slot_t){e->base_n.n, false}
                : extra_key[0] == 'l' ? e->slot_le
                                      : e->slot_quantile;
    size_t klen = extra_key != NULL ? strlen(extra_key) : 0;
    size_t xlen = extra_value != NULL ? strlen(extra_value) : 0;
    size_t n = e->base_n.n;
    size_t total =
        base_span(e, 0, n) + label_size(8, nlen) + (extra_key != NULL ? label_size(klen, xlen) : 0);
    if (!om_strbuf_reserve(&e->labels, total)) {
        e->oom = true;
        return NONE;
    }
    uint8_t *start = (uint8_t *)e->labels.data + e->labels.len, *w = start;
    const char *base = e->base_enc.data;
    size_t head = base_span(e, 0, sn.pos);
    if (head > 0) { /* base is NULL while nothing was encoded into it */
        om_copy(w, base, head);
    }
    w += head;
    uint8_t *lab = w;
    w = w_label(w, "__name__", 8, e->name.data, e->name.len, suffix, slen);
    uint64_t h = e->base_sum + hash_bytes((const char *)lab, (size_t)(w - lab));
    size_t next = sn.pos;
    if (sn.eq) {
        h -= e->base_h.v[next++];
    }
    if (extra_key != NULL) {
        size_t upto = sx.pos > next ? sx.pos : next;
        if (base_span(e, next, upto) > 0) {
            om_copy(w, base + e->base_off.v[next], base_span(e, next, upto));
            w += base_span(e, next, upto);
        }
        lab = w;
        w = w_label(w, extra_key, klen, extra_value, xlen, NULL, 0);
        h += hash_bytes((const char *)lab, (size_t)(w - lab));
        next = upto;
        if (sx.eq && sx.pos >= next) {
            h -= e->base_h.v[next++];
        }
    }
    if (base_span(e, next, n) > 0) { /* base is NULL while nothing was encoded into it */
        om_copy(w, base + e->base_off.v[next], base_span(e, next, n));
        w += base_span(e, next, n);
    }
    uint32_t gid = series_gid(e, (size_t)(w - start), h);
    if (e->recording && gid != NONE) {
        PUSH(e, e->ids, gid);
    }
    return use_series(e, gid);
}

/* ------------------------------------------------------------------------------------------ */
/* Points                                                                                     */

static int64_t ms_of(uint64_t ns)
{
    return (int64_t)(ns / 1000000u);
}

static double stale_nan(void)
{
    uint64_t bits = PRW_STALE_NAN_BITS;
    double d;
    om_copy(&d, &bits, 8);
    return d;
}

static bool no_value(uint32_t flags)
{
    return (flags & 1u) != 0; /* DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK */
}

static const uint8_t zero_id[16];

/* An Exemplar message into blob (helper.go getPromExemplars): trace_id, span_id, then the
 * filtered attributes when all labels stay within OpenMetrics' 128 characters. */
static void put_exemplar(enc_t *e, uint32_t si, const om_exemplar_t *x)
{
    om_strbuf_t *b = &e->tmp;
    om_strbuf_reset(b);
    static const char hex[] = "0123456789abcdef";
    size_t runes = 0;
    char id[33];
    const ProtobufCBinaryData *ids[2] = {&x->trace_id, &x->span_id};
    const char *names[2] = {"trace_id", "span_id"};
    for (int k = 0; k < 2; k++) {
        size_t len = ids[k]->len;
        if (len == 0 || len > 16 || om_same(ids[k]->data, zero_id, len)) {
            continue;
        }
        for (size_t i = 0; i < len; i++) {
            id[2 * i] = hex[ids[k]->data[i] >> 4];
            id[2 * i + 1] = hex[ids[k]->data[i] & 15];
        }
        put_label(b, names[k], strlen(names[k]), id, 2 * len);
        runes += strlen(names[k]) + 2 * len;
    }
    size_t mark = b->len;
    for (size_t i = 0; i < x->n_filtered_attributes; i++) {
        const om_keyvalue_t *kv = x->filtered_attributes[i];
        if (kv == NULL || kv->key == NULL) {
            continue;
        }
        om_strbuf_reset(&e->cur);
        om_prom_value_string(kv->value, &e->cur);
        const char *v = e->cur.data != NULL ? e->cur.data : "";
        put_label(b, kv->key, strlen(kv->key), v, e->cur.len);
        runes += strlen(kv->key) + e->cur.len; /* bytes: at least the runes */
    }
    if (runes > 128) {
        b->len = mark;
    }
    double v = x->value_case == OPENTELEMETRY__PROTO__METRICS__V1__EXEMPLAR__VALUE_AS_INT
                   ? (double)x->as_int
                   : x->as_double;
    put_double(b, 2, v);
    int64_t ts = ms_of(x->time_unix_nano);
    put_uint(b, 3, (uint64_t)ts, false);
    size_t off = e->blob.len;
    om_strbuf_append(&e->blob, b->data, b->len);
    add_item(e, si, off, ts, false);
    e->res->exemplars++;
}

static double number_value(const om_number_dp_t *p)
{
    return p->value_case == OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT
               ? (double)p->as_int
               : p->as_double;
}

static void number_point(enc_t *e, const om_prom_class_t *c, const om_number_dp_t *p)
{
    uint32_t si = series_for(e, NULL, NULL, NULL);
    int64_t ts = ms_of(p->time_unix_nano);
    add_sample(e, si, no_value(p->flags) ? stale_nan() : number_value(p), ts);
    for (size_t i = 0; c->monotonic && i < p->n_exemplars && si != NONE; i++) {
        put_exemplar(e, si, p->exemplars[i]);
    }
}

static void histogram_point(enc_t *e, const om_histogram_dp_t *p)
{
    int64_t ts = ms_of(p->time_unix_nano);
    bool stale = no_value(p->flags);
    if (p->_sum_case == OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___SUM_SUM) {
        add_sample(e, series_for(e, "_sum", NULL, NULL), stale ? stale_nan() : p->sum, ts);
    }
    add_sample(e, series_for(e, "_count", NULL, NULL), stale ? stale_nan() : (double)p->count, ts);
    e->bucket_series.n = 0;
    uint64_t cum = 0;
    size_t nb =
        p->n_explicit_bounds < p->n_bucket_counts ? p->n_explicit_bounds : p->n_bucket_counts;
    char le[OM_PROM_NUM_MAX] = "";
    for (size_t i = 0; i < nb; i++) {
        cum += p->bucket_counts[i];
        if (e->replay == NULL) { /* a cached shape knows its series without the text */
            om_prom_format_f(p->explicit_bounds[i], le);
        }
        uint32_t si = series_for(e, "_bucket", "le", le);
        add_sample(e, si, stale ? stale_nan() : (double)cum, ts);
        PUSH(e, e->bucket_series, si);
    }
    uint32_t inf = series_for(e, "_bucket", "le", "+Inf");
    add_sample(e, inf, stale ? stale_nan() : (double)p->count, ts);
    PUSH(e, e->bucket_series, inf);
    /* Each exemplar goes on the first bucket that holds its value (helper.go addExemplar;
     * OTLP bounds are sorted). */
    for (size_t x = 0; x < p->n_exemplars && !e->oom; x++) {
        const om_exemplar_t *ex = p->exemplars[x];
        double v = ex->value_case == OPENTELEMETRY__PROTO__METRICS__V1__EXEMPLAR__VALUE_AS_INT
                       ? (double)ex->as_int
                       : ex->as_double;
        size_t b = 0;
        while (b < nb && !(v <= p->explicit_bounds[b])) {
            b++;
        }
        put_exemplar(e, e->bucket_series.v[b < nb ? b : nb], ex);
    }
}

static void summary_point(enc_t *e, const om_summary_dp_t *p)
{
    int64_t ts = ms_of(p->time_unix_nano);
    bool stale = no_value(p->flags);
    add_sample(e, series_for(e, "_sum", NULL, NULL), stale ? stale_nan() : p->sum, ts);
    add_sample(e, series_for(e, "_count", NULL, NULL), stale ? stale_nan() : (double)p->count, ts);
    char q[OM_PROM_NUM_MAX];
    for (size_t i = 0; i < p->n_quantile_values; i++) {
        const om_quantile_t *qv = p->quantile_values[i];
        om_prom_format_f(qv->quantile, q);
        add_sample(e, series_for(e, NULL, "quantile", q), stale ? stale_nan() : qv->value, ts);
    }
}

/* One side's dense buckets at scale - down (down > 0 merges 2^down buckets into one), as
 * Prometheus' bucket indexes (OTLP's + 1), into spans and deltas (client_golang's
 * makeBuckets: a new span after a gap of more than two empty buckets, smaller gaps filled). */
static void put_buckets(enc_t *e, om_strbuf_t *b, const om_exp_buckets_t *bk, int down,
                        unsigned span_field, unsigned delta_field)
{
    if (bk == NULL || bk->n_bucket_counts == 0) {
        return;
    }
    int64_t first = ((int64_t)bk->offset) >> down;
    int64_t last = ((int64_t)bk->offset + (int64_t)bk->n_bucket_counts - 1) >> down;
    e->dense.n = 0;
    for (int64_t k = first; k <= last; k++) {
        PUSH(e, e->dense, 0);
    }
    if (e->oom) {
        return;
    }
    for (size_t i = 0; i < bk->n_bucket_counts; i++) {
        e->dense.v[(((int64_t)bk->offset + (int64_t)i) >> down) - first] += bk->bucket_counts[i];
    }
    e->spans.n = 0;
    e->deltas.n = 0;
    int64_t prev = 0, next_idx = 0;
    for (size_t i = 0; i < e->dense.n; i++) {
        int64_t count = (int64_t)e->dense.v[i];
        if (count == 0) {
            continue;
        }
        int64_t idx = first + (int64_t)i + 1;
        int64_t gap = idx - next_idx;
        if (e->spans.n == 0 || gap > 2) {
            PUSH(e, e->spans, (uint32_t)(int32_t)gap);
            PUSH(e, e->spans, 0);
        } else {
            for (int64_t g = 0; g < gap; g++) {
                PUSH(e, e->deltas, -prev);
                prev = 0;
                e->spans.v[e->spans.n - 1]++;
            }
        }
        PUSH(e, e->deltas, count - prev);
        prev = count;
        e->spans.v[e->spans.n - 1]++;
        next_idx = idx + 1;
    }
    if (e->oom) {
        return;
    }
    for (size_t i = 0; i < e->spans.n; i += 2) {
        int32_t off = (int32_t)e->spans.v[i];
        uint32_t len = e->spans.v[i + 1];
        uint64_t zz = (uint64_t)(((uint32_t)off << 1) ^ (uint32_t)(off >> 31));
        size_t msg =
            (zz != 0 ? 1 + om_pb_varint_len(zz) : 0) + (len != 0 ? 1 + om_pb_varint_len(len) : 0);
        put_tag(b, span_field, 2);
        put_varint(b, msg);
        put_uint(b, 1, zz, false);
        put_uint(b, 2, len, false);
    }
    size_t packed = 0;
    for (size_t i = 0; i < e->deltas.n; i++) {
        packed += om_pb_varint_len(zigzag(e->deltas.v[i]));
    }
    put_tag(b, delta_field, 2);
    put_varint(b, packed);
    for (size_t i = 0; i < e->deltas.n; i++) {
        put_varint(b, zigzag(e->deltas.v[i]));
    }
}

/* Returns false when the point cannot be a native histogram (scale below -4). */
static bool exp_histogram_point(enc_t *e, const om_exp_histogram_dp_t *p)
{
    int32_t scale = p->scale;
    if (scale < -4) {
        return false;
    }
    int down = scale > 8 ? scale - 8 : 0;
    scale -= down;
    uint32_t si = series_for(e, NULL, NULL, NULL);
    if (si == NONE) {
        return true;
    }
    int64_t ts = ms_of(p->time_unix_nano);
    om_strbuf_t *b = &e->tmp;
    om_strbuf_reset(b);
    bool stale = no_value(p->flags);
    /* count_int is in a oneof: written even when 0. */
    put_uint(b, 1, stale ? PRW_STALE_NAN_BITS : p->count, true);
    bool has_sum = p->_sum_case ==
                   OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT___SUM_SUM;
    put_double(b, 3, stale ? stale_nan() : has_sum ? p->sum : 0);
    put_uint(b, 4, zigzag(scale), false);
    put_double(b, 5, p->zero_threshold != 0 ? p->zero_threshold : 1e-128);
    put_uint(b, 6, p->zero_count, true);
    put_buckets(e, b, p->negative, down, 8, 9);
    put_buckets(e, b, p->positive, down, 11, 12);
    put_uint(b, 15, (uint64_t)ts, false);
    size_t off = e->blob.len;
    om_strbuf_append(&e->blob, b->data, b->len);
    add_item(e, si, off, ts, true);
    e->res->histograms++;
    for (size_t i = 0; i < p->n_exemplars; i++) {
        put_exemplar(e, si, p->exemplars[i]);
    }
    return true;
}

/* ------------------------------------------------------------------------------------------ */
/* The cache of point shapes                                                                  */

/* Building a point's labels (sanitising names, value strings, sorting, encoding, hashing
 * each series' labels) is most of the translation's work, and a metric's series come back
 * every interval with the same attributes. So the series a point went to are kept under a
 * key made of everything its labels come from: the resource's job and instance, the family
 * name, the kind of point, each attribute's key and typed value (as bytes: two keys are equal
 * exactly when the inputs are), and a histogram's bounds and whether it has a sum. A point
 * whose key was seen takes those series (in the same order, so the output is the same bytes);
 * the series table itself stays across batches too, each series made once. Not cached: points
 * with array or map attributes, exponential histograms and summaries, and everything under
 * resource_to_telemetry_conversion (the resource's attributes are labels then): built as
 * before. The cache is emptied when it holds more than CACHE_MAX_BYTES or the options that
 * labels depend on change. */
#define CACHE_MAX_BYTES ((size_t)48 << 20)

static void key_u32(om_strbuf_t *k, uint32_t v)
{
    om_strbuf_append(k, &v, sizeof v);
}

static void key_str(om_strbuf_t *k, const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;
    key_u32(k, s != NULL ? (uint32_t)n : UINT32_MAX);
    if (n > 0) {
        om_strbuf_append(k, s, n);
    }
}

/* The part of the key common to the points of the metric in e->name. */
static void key_metric(enc_t *e, char kind)
{
    om_strbuf_t *k = &e->key;
    om_strbuf_reset(k);
    om_strbuf_putc(k, kind);
    key_str(k, e->has_job ? om_strbuf_str(&e->job) : NULL);
    key_str(k, e->has_instance ? om_strbuf_str(&e->instance) : NULL);
    key_u32(k, (uint32_t)e->name.len);
    om_strbuf_append(k, e->name.data, e->name.len);
    e->key_prefix = k->len;
}

/* The point's attributes after the prefix; false for a value not keyed (arrays, maps). */
static bool key_attrs(enc_t *e, om_keyvalue_t *const *attrs, size_t n)
{
    om_strbuf_t *k = &e->key;
    k->len = e->key_prefix;
    om_strbuf_putc(k, 'S'); /* from the structs (the wire path's keys say 'W') */
    key_u32(k, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        const om_keyvalue_t *kv = attrs[i];
        if (kv == NULL) {
            om_strbuf_putc(k, 'x');
            continue;
        }
        key_str(k, kv->key);
        const om_anyvalue_t *v = kv->value;
        switch (v != NULL ? v->value_case : OM_ANYVALUE_NONE) {
        case OM_ANYVALUE_STRING:
            om_strbuf_putc(k, 's');
            key_str(k, v->string_value);
            break;
        case OM_ANYVALUE_BOOL:
            om_strbuf_putc(k, v->bool_value ? 'T' : 'F');
            break;
        case OM_ANYVALUE_INT:
            om_strbuf_putc(k, 'i');
            om_strbuf_append(k, &v->int_value, 8);
            break;
        case OM_ANYVALUE_DOUBLE:
            om_strbuf_putc(k, 'd');
            om_strbuf_append(k, &v->double_value, 8);
            break;
        case OM_ANYVALUE_BYTES:
            om_strbuf_putc(k, 'b');
            key_u32(k, (uint32_t)v->bytes_value.len);
            if (v->bytes_value.len > 0) {
                om_strbuf_append(k, v->bytes_value.data, v->bytes_value.len);
            }
            break;
        case OM_ANYVALUE_ARRAY:
        case OM_ANYVALUE_KVLIST:
            return false;
        default:
            om_strbuf_putc(k, 'n'); /* no value: an empty label value */
            break;
        }
    }
    return true;
}

/* A histogram point: whether it has a sum, and its bounds (the le values). */
static void key_hist(enc_t *e, const om_histogram_dp_t *p)
{
    om_strbuf_t *k = &e->key;
    size_t nb =
        p->n_explicit_bounds < p->n_bucket_counts ? p->n_explicit_bounds : p->n_bucket_counts;
    om_strbuf_putc(
        k, p->_sum_case == OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___SUM_SUM ? 'S'
                                                                                             : '-');
    key_u32(k, (uint32_t)nb);
    if (nb > 0) {
        om_strbuf_append(k, p->explicit_bounds, nb * sizeof(double));
    }
}

/* The series of the point shape in e->key (hash h), or NULL when it was not seen. */
static const uint32_t *shape_find(const enc_t *e, uint64_t h)
{
    if (e->ptable_cap == 0) {
        return NULL;
    }
    size_t j = (size_t)h & (e->ptable_cap - 1);
    for (; e->ptable[j] != 0; j = (j + 1) & (e->ptable_cap - 1)) {
        const pentry_t *p = &e->pents.v[e->ptable[j] - 1];
        if (p->hash == h && p->key_len == e->key.len &&
            om_same(e->keys.data + p->key_off, e->key.data, e->key.len)) {
            return e->ids.v + p->ids_off;
        }
    }
    return NULL;
}

/* Keep the shape in e->key (hash h) with the series recorded since ids_from. */
static void shape_add(enc_t *e, uint64_t h, size_t ids_from)
{
    if (e->keys.len + e->key.len > UINT32_MAX / 2 || e->ids.n > UINT32_MAX / 2 ||
        ((e->pents.n + 1) * 2 > e->ptable_cap &&
         !index_grow(&e->ptable, &e->ptable_cap, e->pents.v, e->pents.n, sizeof *e->pents.v))) {
        return; /* not kept: the next such point builds its labels again */
    }
    pentry_t p = {h, (uint32_t)e->keys.len, (uint32_t)e->key.len, (uint32_t)ids_from,
                  (uint32_t)(e->ids.n - ids_from)};
    om_strbuf_append(&e->keys, e->key.data, e->key.len);
    if (e->keys.failed || !PUSH(e, e->pents, p)) {
        e->oom = true;
        return;
    }
    e->ptable[index_free_slot(e->ptable, e->ptable_cap, h)] = (uint32_t)e->pents.n;
}

/* What the series' labels depend on in the options, as bytes (compared batch to batch). */
static void opts_print(const prw_opts_t *o, om_strbuf_t *out)
{
    om_strbuf_reset(out);
    key_str(out, o->ns);
    om_strbuf_putc(out, (char)(o->suffixes | o->target_info << 1 | o->r2t << 2));
    key_u32(out, (uint32_t)o->n_external);
    for (size_t i = 0; i < o->n_external; i++) {
        key_str(out, o->external[i].key);
        key_str(out, o->external[i].value);
    }
}

static void cache_clear(enc_t *e)
{
    om_strbuf_reset(&e->labels);
    om_strbuf_reset(&e->keys);
    om_strbuf_reset(&e->names_text);
    if (e->names != NULL) {
        memset(e->names, 0, NAME_SLOTS * sizeof *e->names);
    }
    e->gs.n = e->pents.n = e->ids.n = 0;
    if (e->table != NULL) {
        memset(e->table, 0, e->table_cap * sizeof *e->table);
    }
    if (e->ptable != NULL) {
        memset(e->ptable, 0, e->ptable_cap * sizeof *e->ptable);
    }
    e->gen = 0;
}

static size_t cache_bytes(const enc_t *e)
{
    return e->labels.len + e->keys.len + e->names_text.len + e->ids.n * sizeof *e->ids.v +
           e->gs.n * sizeof *e->gs.v + e->pents.n * sizeof *e->pents.v +
           (e->table_cap + e->ptable_cap) * sizeof(uint32_t);
}

/* At the start of a batch: empty the cache when it must be. */
static void cache_check(enc_t *e, const prw_opts_t *o)
{
    opts_print(o, &e->tmp);
    bool same = e->opts_print.len == e->tmp.len && !e->tmp.failed && !e->opts_print.failed &&
                om_same(e->opts_print.data, e->tmp.data, e->tmp.len);
    if (!same || e->no_cache || cache_bytes(e) > CACHE_MAX_BYTES || e->gen == UINT32_MAX) {
        cache_clear(e);
        om_strbuf_reset(&e->opts_print);
        om_strbuf_append(&e->opts_print, e->tmp.data, e->tmp.len);
    }
    e->gen++;
}

/* ------------------------------------------------------------------------------------------ */
/* Metrics                                                                                    */

static size_t point_count(const om_metric_t *m)
{
    switch (m->data_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
        return m->gauge != NULL ? m->gauge->n_data_points : 0;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
        return m->sum != NULL ? m->sum->n_data_points : 0;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
        return m->histogram != NULL ? m->histogram->n_data_points : 0;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
        return m->exponential_histogram != NULL ? m->exponential_histogram->n_data_points : 0;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
        return m->summary != NULL ? m->summary->n_data_points : 0;
    default:
        return 0;
    }
}

/* The point's time and attributes, whatever its type. */
static void point_at(const om_metric_t *m, size_t i, uint64_t *t, om_keyvalue_t ***attrs, size_t *n)
{
    switch (m->data_case) {
#define PT(field)                                                                                  \
    do {                                                                                           \
        *t = m->field->data_points[i]->time_unix_nano;                                             \
        *attrs = m->field->data_points[i]->attributes;                                             \
        *n = m->field->data_points[i]->n_attributes;                                               \
    } while (0)
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
        PT(gauge);
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
        PT(sum);
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
        PT(histogram);
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
        PT(exponential_histogram);
        break;
    default:
        PT(summary);
        break;
#undef PT
    }
}

static void drop_invalid(enc_t *e, const om_metric_t *m, size_t points, const char *why)
{
    e->res->dropped_invalid += points;
    if (e->res->failed_metrics++ == 0) {
        snprintf(e->res->first_invalid, sizeof e->res->first_invalid, "%.100s: %s",
                 m->name != NULL ? m->name : "", why);
    }
}

static void add_meta(enc_t *e, const om_metric_t *m, const om_prom_class_t *c)
{
    for (size_t i = 0; i < e->metas.n; i++) {
        const meta_t *x = &e->metas.v[i];
        if (x->name_len == e->name.len &&
            om_same(e->meta_text.data + x->name_off, e->name.data, x->name_len)) {
            return;
        }
    }
    /* otlp_to_openmetrics_metadata.go: MetricMetadata_MetricType values. */
    int type = c->type == OM_PROM_COUNTER     ? 1
               : c->type == OM_PROM_GAUGE     ? 2
               : c->type == OM_PROM_HISTOGRAM ? 3
               : c->type == OM_PROM_SUMMARY   ? 5
                                              : 0;
    meta_t x = {(uint32_t)e->meta_text.len, (uint32_t)e->name.len, type, m->description, m->unit};
    om_strbuf_append(&e->meta_text, e->name.data, e->name.len);
    PUSH(e, e->metas, x);
}

/* The family name of m (class c) into e->name, as om_prom_metric_name gives it: from the names
 * cache when m's kind, name and unit were translated before (the options it depends on, ns and
 * suffixes, empty the cache when they change), else translated and kept. */
static int family_name(enc_t *e, const om_metric_t *m, const om_prom_class_t *c)
{
    om_strbuf_reset(&e->name);
    if (e->no_cache) { /* the reference path */
        return om_prom_metric_name(e->o->ns, e->o->suffixes, m->name, m->unit, c, &e->name);
    }
    /* What om_prom_metric_name reads of c, whether there is a name, the name, then the unit
     * (NULL and "" translate alike). */
    om_strbuf_t *k = &e->name_key;
    om_strbuf_reset(k);
    om_strbuf_putc(k, (char)('0' | c->monotonic | c->otlp_gauge << 1 | (m->name != NULL) << 2));
    if (m->name != NULL) {
        om_strbuf_puts(k, m->name);
    }
    om_strbuf_putc(k, '\0');
    if (m->unit != NULL) {
        om_strbuf_puts(k, m->unit);
    }
    if (e->names == NULL) {
        e->names = om_calloc(NAME_SLOTS, sizeof *e->names);
    }
    if (e->names == NULL || k->failed || k->len > UINT32_MAX / 4) {
        /* no memory for the cache: translated as it comes */
        return om_prom_metric_name(e->o->ns, e->o->suffixes, m->name, m->unit, c, &e->name);
    }
    uint64_t h = hash_bytes(k->data, k->len);
    name_slot_t *slot = &e->names[h % NAME_SLOTS];
    if (slot->key_len == k->len && slot->hash == h &&
        om_same(e->names_text.data + slot->off, k->data, k->len)) {
        om_strbuf_append(&e->name, e->names_text.data + slot->off + k->len, slot->out_len);
        return e->name.failed ? OM_ENOMEM : 0;
    }
    int rc = om_prom_metric_name(e->o->ns, e->o->suffixes, m->name, m->unit, c, &e->name);
    if (rc != 0 || e->name.len > UINT32_MAX / 4 || e->names_text.len > UINT32_MAX / 2) {
        return rc; /* not kept: a name that cannot translate is dropped (counted) anyway */
    }
    size_t off = e->names_text.len;
    om_strbuf_append(&e->names_text, k->data, k->len);
    om_strbuf_append(&e->names_text, e->name.data, e->name.len);
    if (!e->names_text.failed) {
        *slot = (name_slot_t){h, (uint32_t)off, (uint32_t)k->len, (uint32_t)e->name.len};
    }
    return 0;
}

/* What the metric's points come to, before any point: false when they are dropped (counted).
 * np: its points. */
static bool metric_start(enc_t *e, const om_metric_t *m, size_t np, om_prom_class_t *c)
{
    if (om_prom_classify(m, c) != 0) {
        drop_invalid(e, m, np, "unsupported type or temporality");
        return false;
    }
    if (c->delta) {
        if (e->res->dropped_delta == 0 && np > 0) {
            snprintf(e->res->first_delta, sizeof e->res->first_delta, "%.120s",
                     m->name != NULL ? m->name : "");
        }
        e->res->dropped_delta += np;
        return false;
    }
    if (family_name(e, m, c) != 0) {
        drop_invalid(e, m, np, "no valid Prometheus name");
        return false;
    }
    if (e->o->send_metadata) {
        add_meta(e, m, c);
    }
    return true;
}

/* Whether the points of a metric of this type are cached; if so, the key's prefix is made. */
static bool metric_cached(enc_t *e, int data_case)
{
    bool cached = !e->no_cache && !e->o->r2t &&
                  (data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE ||
                   data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM ||
                   data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM);
    if (cached) {
        key_metric(e, data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM ? 'h'
                                                                                             : 'n');
    }
    return cached;
}

static bool wire_attrs(enc_t *e, om_keyvalue_t ***attrs, size_t *n);

/* One point p of a metric of type data_case: its series from the cache when e->key (keyed)
 * was seen, else from its labels (attrs / n, or with wire the wire path's, unpacked now). Returns
 * 1 for a point that cannot translate (a scale below -4), else 0. */
static size_t point(enc_t *e, const om_resource_t *res, int data_case, const om_prom_class_t *c,
                    const void *p, om_keyvalue_t **attrs, size_t n, bool wire, bool keyed)
{
    keyed = keyed && !e->key.failed;
    uint64_t kh = keyed ? hash_bytes(e->key.data, e->key.len) : 0;
    e->replay = keyed ? shape_find(e, kh) : NULL;
    size_t ids_from = e->ids.n;
    if (e->replay == NULL) {
        if ((wire && !wire_attrs(e, &attrs, &n)) ||
            point_labels(e, res, attrs, n, true, false) != 0) {
            return 0; /* e->oom or e->odd says why */
        }
        e->recording = keyed;
    }
    size_t bad = 0;
    switch (data_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
        number_point(e, c, p);
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
        histogram_point(e, p);
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
        bad = exp_histogram_point(e, p) ? 0 : 1;
        break;
    default:
        summary_point(e, p);
        break;
    }
    e->replay = NULL;
    if (e->recording) {
        e->recording = false;
        if (!e->oom) {
            shape_add(e, kh, ids_from);
        }
    }
    return bad;
}

static void metric(enc_t *e, const om_resource_t *res, const om_metric_t *m)
{
    size_t np = point_count(m);
    for (size_t i = 0; i < np; i++) {
        uint64_t t;
        om_keyvalue_t **attrs;
        size_t n;
        point_at(m, i, &t, &attrs, &n);
        if (ms_of(t) > e->latest_ms) {
            e->latest_ms = ms_of(t);
        }
    }
    om_prom_class_t c;
    if (!metric_start(e, m, np, &c)) {
        return;
    }
    bool cached = metric_cached(e, m->data_case);
    size_t bad = 0;
    for (size_t i = 0; i < np && !e->oom; i++) {
        uint64_t t;
        om_keyvalue_t **attrs;
        size_t n;
        point_at(m, i, &t, &attrs, &n);
        bool keyed = cached && key_attrs(e, attrs, n);
        const void *p = NULL;
        switch (m->data_case) {
        case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
            p = m->gauge->data_points[i];
            break;
        case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
            p = m->sum->data_points[i];
            break;
        case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
            p = m->histogram->data_points[i];
            if (keyed) {
                key_hist(e, p);
            }
            break;
        case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
            p = m->exponential_histogram->data_points[i];
            break;
        default:
            p = m->summary->data_points[i];
            break;
        }
        bad += point(e, res, m->data_case, &c, p, attrs, n, false, keyed);
    }
    if (bad > 0) {
        drop_invalid(e, m, bad, "exponential histogram scale below -4");
    }
}

/* helper.go addResourceTargetInfo. */
static void target_info(enc_t *e, const om_resource_t *res)
{
    if (!e->o->target_info || e->latest_ms == 0 || res == NULL ||
        (!e->has_job && !e->has_instance)) {
        return;
    }
    bool other = false;
    for (size_t i = 0; i < res->n_attributes && !other; i++) {
        other = res->attributes[i] != NULL && res->attributes[i]->key != NULL &&
                !om_prom_identifying_attr(res->attributes[i]->key);
    }
    if (!other || point_labels(e, res, NULL, 0, false, true) != 0) {
        return;
    }
    om_strbuf_reset(&e->name);
    if (e->o->ns != NULL && e->o->ns[0] != '\0') {
        om_strbuf_puts(&e->name, e->o->ns);
        om_strbuf_putc(&e->name, '_');
    }
    om_strbuf_puts(&e->name, "target_info");
    add_sample(e, series_for(e, NULL, NULL, NULL), 1, e->latest_ms);
}

/* The resource entry's job and instance. */
static void resource_start(enc_t *e, const om_resource_t *res)
{
    om_strbuf_reset(&e->job);
    om_strbuf_reset(&e->instance);
    e->has_job = om_prom_job(res, &e->job);
    e->has_instance = om_prom_instance(res, &e->instance);
    e->latest_ms = 0;
}

static void resource_entry(enc_t *e, const om_resource_metrics_t *rm)
{
    const om_resource_t *res = rm->resource;
    resource_start(e, res);
    for (size_t s = 0; s < rm->n_scope_metrics && !e->oom; s++) {
        const om_scope_metrics_t *sm = rm->scope_metrics[s];
        for (size_t k = 0; sm != NULL && k < sm->n_metrics && !e->oom; k++) {
            metric(e, res, sm->metrics[k]);
        }
    }
    target_info(e, res);
}

/* ------------------------------------------------------------------------------------------ */
/* From the wire bytes                                                                        */

/* A batch that arrived as OTLP/protobuf and that nothing changed is still its bytes (msg
 * NULL): decoding it all into protobuf-c structs (every KeyValue and AnyValue of every point
 * allocated) would cost more than the translation itself. So the containers (resource
 * entries, scopes, metrics) and the gauge, sum and histogram points are read from the bytes
 * (om_pb_next) into the structs the translation takes, on the stack, with what they point to
 * in the encoder's buffers; a point's attributes are keyed by their bytes, and unpacked with
 * protobuf-c only on a cache miss. What is read the same way as protobuf-c would, in each
 * message's own terms: the last of a scalar or a oneof member wins, repeated fields keep
 * their order, packed and unpacked repeated numbers are both taken, unknown fields are
 * skipped. The resource (once per entry), exemplars, exponential histogram and summary
 * points are unpacked with protobuf-c (on a per-batch arena). Bytes that do not read as the
 * schema expects (the receiver's check makes that unlikely) end the wire path with
 * OM_ENOTSUP: the caller decodes the batch and encodes the structs (the same output, which
 * a differential test and the fuzz target hold the two paths to). */

/* Metric, data and point field numbers (opentelemetry/proto/metrics/v1/metrics.proto). */
enum {
    F_RM_RESOURCE = 1,
    F_RM_SCOPE_METRICS = 2,
    F_SM_METRICS = 2,
    F_M_NAME = 1,
    F_M_DESCRIPTION = 2,
    F_M_UNIT = 3,
    F_M_GAUGE = 5,
    F_M_SUM = 7,
    F_M_HISTOGRAM = 9,
    F_M_EXP_HISTOGRAM = 10,
    F_M_SUMMARY = 11,
    F_D_POINTS = 1,
    F_D_TEMPORALITY = 2,
    F_D_MONOTONIC = 3,
    F_P_TIME = 3, /* every point type's time_unix_nano */
};

static ProtobufCAllocator *wire_alloc(enc_t *e)
{
    if (e->arena == NULL) {
        e->arena = om_arena_new(0);
    }
    return e->arena != NULL ? om_arena_pb_allocator(e->arena) : NULL;
}

/* A sub-message unpacked with protobuf-c, or NULL (e->odd or e->oom set). */
static void *wire_unpack(enc_t *e, const ProtobufCMessageDescriptor *d, const uint8_t *data,
                         size_t len)
{
    ProtobufCAllocator *a = wire_alloc(e);
    if (a == NULL) {
        e->oom = true;
        return NULL;
    }
    void *m = protobuf_c_message_unpack(d, a, len, data);
    if (m == NULL) {
        e->odd = true; /* malformed, or no memory: the decoding path will say which */
    }
    return m;
}

static const char *wire_str(enc_t *e, const om_pb_field_t *f)
{
    if (wire_alloc(e) == NULL) {
        return "";
    }
    char *s = om_arena_strndup(e->arena, (const char *)f->data, f->len);
    if (s == NULL) {
        e->oom = true;
        return "";
    }
    return s;
}

/* The point's attributes, unpacked (a cache miss). */
static bool wire_attrs(enc_t *e, om_keyvalue_t ***attrs, size_t *n)
{
    e->wkvs.n = 0;
    for (size_t i = 0; i < e->wattrs.n; i++) {
        om_keyvalue_t *kv = wire_unpack(e, &opentelemetry__proto__common__v1__key_value__descriptor,
                                        e->wattrs.v[i].data, e->wattrs.v[i].len);
        if (kv == NULL || !PUSH(e, e->wkvs, kv)) {
            return false;
        }
    }
    *attrs = e->wkvs.v;
    *n = e->wkvs.n;
    return true;
}

static bool wire_exemplars(enc_t *e, om_exemplar_t ***out, size_t *n)
{
    e->wexs.n = 0;
    for (size_t i = 0; i < e->wex.n; i++) {
        om_exemplar_t *x = wire_unpack(e, &opentelemetry__proto__metrics__v1__exemplar__descriptor,
                                       e->wex.v[i].data, e->wex.v[i].len);
        if (x == NULL || !PUSH(e, e->wexs, x)) {
            return false;
        }
    }
    *out = e->wexs.v;
    *n = e->wexs.n;
    return true;
}

/* An attribute field (tag at tag, payload f) of the point being read. */
static void wire_attr(enc_t *e, const uint8_t *tag, const om_pb_field_t *f)
{
    const uint8_t *end = f->data + f->len;
    if (e->wattrs.n == 0) {
        e->wa_start = tag;
        e->wa_run = true;
    } else if (tag != e->wa_end) {
        e->wa_run = false;
    }
    e->wa_end = end;
    PUSH(e, e->wattrs, ((om_raw_seg_t){f->data, f->len}));
}

/* The point's attributes into the key after the metric's prefix. */
static void key_wire_attrs(enc_t *e)
{
    om_strbuf_t *k = &e->key;
    k->len = e->key_prefix;
    if (e->wattrs.n == 0 || e->wa_run) {
        /* The fields as they are, tags included: the same bytes, the same attributes. */
        size_t n = e->wattrs.n > 0 ? (size_t)(e->wa_end - e->wa_start) : 0;
        om_strbuf_putc(k, 'W');
        key_u32(k, (uint32_t)n);
        if (n > 0) {
            om_strbuf_append(k, e->wa_start, n);
        }
        return;
    }
    om_strbuf_putc(k, 'w'); /* interleaved with other fields: each payload */
    key_u32(k, (uint32_t)e->wattrs.n);
    for (size_t i = 0; i < e->wattrs.n; i++) {
        key_u32(k, (uint32_t)e->wattrs.v[i].len);
        om_strbuf_append(k, e->wattrs.v[i].data, e->wattrs.v[i].len);
    }
}

static double bits_double(uint64_t bits)
{
    double d;
    om_copy(&d, &bits, 8);
    return d;
}

static void wire_point_start(enc_t *e)
{
    e->wattrs.n = 0;
    e->wex.n = 0;
    e->wa_run = true;
}

/* A NumberDataPoint into *dp (its exemplars unpacked when it has some). */
static void wire_number(enc_t *e, const uint8_t *p, size_t len, om_number_dp_t *dp)
{
    opentelemetry__proto__metrics__v1__number_data_point__init(dp);
    wire_point_start(e);
    const uint8_t *end = p + len, *tag = p;
    om_pb_field_t f;
    int rc = 0;
    while ((rc = om_pb_next(&p, end, &f)) == 1) {
        unsigned want = f.number == 7 || f.number == 5   ? OM_PB_LEN
                        : f.number == 8                  ? OM_PB_VARINT
                        : f.number >= 2 && f.number <= 6 ? OM_PB_FIXED64
                                                         : f.wire_type;
        if (f.wire_type != want) {
            e->odd = true;
            return;
        }
        switch (f.number) {
        case 7:
            wire_attr(e, tag, &f);
            break;
        case 3:
            dp->time_unix_nano = f.value;
            break;
        case 4:
            dp->value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE;
            dp->as_double = bits_double(f.value);
            break;
        case 6:
            dp->value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT;
            dp->as_int = (int64_t)f.value;
            break;
        case 5:
            PUSH(e, e->wex, ((om_raw_seg_t){f.data, f.len}));
            break;
        case 8:
            dp->flags = (uint32_t)f.value;
            break;
        default:
            break;
        }
        tag = p;
    }
    if (rc < 0) {
        e->odd = true;
    } else if (e->wex.n > 0) {
        wire_exemplars(e, &dp->exemplars, &dp->n_exemplars);
    }
}

/* Packed or single fixed64 values (bucket_counts, explicit_bounds: 8 bytes each, little
 * endian) appended to the vector at vec_v (of vec_n, room for vec_cap). */
static bool wire_fixed64s(enc_t *e, const om_pb_field_t *f, void *vec_v, size_t *vec_n,
                          size_t *vec_cap)
{
    if (f->wire_type == OM_PB_LEN && f->len % 8 != 0) {
        e->odd = true;
        return false;
    }
    size_t n = f->wire_type == OM_PB_LEN ? f->len / 8 : 1;
    while (*vec_n + n > *vec_cap) {
        if (!vgrow((void **)vec_v, vec_cap, *vec_cap, 8)) {
            e->oom = true;
            return false;
        }
    }
    uint8_t *out = (uint8_t *)*(void **)vec_v + 8 * *vec_n;
    if (f->wire_type != OM_PB_LEN) {
        om_copy(out, &f->value, 8);
    } else if (__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__) {
        om_copy(out, f->data, f->len);
    } else {
        for (size_t i = 0; i < n; i++) {
            uint64_t v = om_le64_load(f->data + 8 * i);
            om_copy(out + 8 * i, &v, 8);
        }
    }
    *vec_n += n;
    return true;
}

/* A HistogramDataPoint into *dp (counts and bounds in the encoder's buffers). */
static void wire_histogram(enc_t *e, const uint8_t *p, size_t len, om_histogram_dp_t *dp)
{
    opentelemetry__proto__metrics__v1__histogram_data_point__init(dp);
    wire_point_start(e);
    e->wcounts.n = 0;
    e->wbounds.n = 0;
    const uint8_t *end = p + len, *tag = p;
    om_pb_field_t f;
    int rc = 0;
    while ((rc = om_pb_next(&p, end, &f)) == 1) {
        unsigned want = f.number == 9 || f.number == 8 ? OM_PB_LEN
                        : f.number == 10               ? OM_PB_VARINT
                        : f.number == 6 || f.number == 7
                            ? (f.wire_type == OM_PB_LEN ? OM_PB_LEN : OM_PB_FIXED64)
                        : (f.number >= 2 && f.number <= 5) || f.number == 11 || f.number == 12
                            ? OM_PB_FIXED64
                            : f.wire_type;
        if (f.wire_type != want) {
            e->odd = true;
            return;
        }
        switch (f.number) {
        case 9:
            wire_attr(e, tag, &f);
            break;
        case 3:
            dp->time_unix_nano = f.value;
            break;
        case 4:
            dp->count = f.value;
            break;
        case 5:
            dp->_sum_case = OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___SUM_SUM;
            dp->sum = bits_double(f.value);
            break;
        case 6:
            if (!wire_fixed64s(e, &f, &e->wcounts.v, &e->wcounts.n, &e->wcounts.cap)) {
                return;
            }
            break;
        case 7:
            if (!wire_fixed64s(e, &f, &e->wbounds.v, &e->wbounds.n, &e->wbounds.cap)) {
                return;
            }
            break;
        case 8:
            PUSH(e, e->wex, ((om_raw_seg_t){f.data, f.len}));
            break;
        case 10:
            dp->flags = (uint32_t)f.value;
            break;
        default:
            break;
        }
        tag = p;
    }
    if (rc < 0) {
        e->odd = true;
        return;
    }
    dp->n_bucket_counts = e->wcounts.n;
    dp->bucket_counts = e->wcounts.v;
    dp->n_explicit_bounds = e->wbounds.n;
    dp->explicit_bounds = e->wbounds.v;
    if (e->wex.n > 0) {
        wire_exemplars(e, &dp->exemplars, &dp->n_exemplars);
    }
}

/* The time_unix_nano of a point of any type. */
static uint64_t wire_time(enc_t *e, const uint8_t *p, size_t len)
{
    const uint8_t *end = p + len;
    om_pb_field_t f;
    int rc = 0;
    uint64_t t = 0;
    while ((rc = om_pb_next(&p, end, &f)) == 1) {
        if (f.number == F_P_TIME) {
            if (f.wire_type != OM_PB_FIXED64) {
                e->odd = true;
            }
            t = f.value;
        }
    }
    if (rc < 0) {
        e->odd = true;
    }
    return t;
}

static void latest(enc_t *e, uint64_t t)
{
    if (ms_of(t) > e->latest_ms) {
        e->latest_ms = ms_of(t);
    }
}

/* One Metric message. */
static void wire_metric(enc_t *e, const om_resource_t *res, const uint8_t *p, size_t len)
{
    om_metric_t m;
    opentelemetry__proto__metrics__v1__metric__init(&m);
    const uint8_t *end = p + len, *data = NULL;
    size_t data_len = 0;
    om_pb_field_t f;
    int rc = 0;
    while ((rc = om_pb_next(&p, end, &f)) == 1) {
        bool str = f.number >= F_M_NAME && f.number <= F_M_UNIT;
        bool msg = f.number == F_M_GAUGE || f.number == F_M_SUM || f.number == F_M_HISTOGRAM ||
                   f.number == F_M_EXP_HISTOGRAM || f.number == F_M_SUMMARY;
        if ((str || msg) && f.wire_type != OM_PB_LEN) {
            e->odd = true;
            return;
        }
        if (f.number == F_M_NAME) {
            m.name = (char *)wire_str(e, &f);
        } else if (f.number == F_M_DESCRIPTION) {
            m.description = (char *)wire_str(e, &f);
        } else if (f.number == F_M_UNIT) {
            m.unit = (char *)wire_str(e, &f);
        } else if (msg) {
            m.data_case = (Opentelemetry__Proto__Metrics__V1__Metric__DataCase)f.number;
            data = f.data;
            data_len = f.len;
        }
    }
    if (rc < 0) {
        e->odd = true;
        return;
    }
    /* The data message: its points counted, its temporality and monotonicity. */
    om_gauge_t g;
    om_sum_t su;
    om_histogram_t h;
    om_exp_histogram_t x;
    om_summary_t sm;
    opentelemetry__proto__metrics__v1__gauge__init(&g);
    opentelemetry__proto__metrics__v1__sum__init(&su);
    opentelemetry__proto__metrics__v1__histogram__init(&h);
    opentelemetry__proto__metrics__v1__exponential_histogram__init(&x);
    opentelemetry__proto__metrics__v1__summary__init(&sm);
    size_t np = 0;
    int temporality = 0;
    bool monotonic = false;
    const uint8_t *q = data, *qend = data != NULL ? data + data_len : NULL; /* NULL + 0 is UB */
    while (data != NULL && (rc = om_pb_next(&q, qend, &f)) == 1) {
        if (f.number == F_D_POINTS) {
            if (f.wire_type != OM_PB_LEN) {
                e->odd = true;
                return;
            }
            np++;
        } else if (f.number == F_D_TEMPORALITY &&
                   m.data_case != OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE &&
                   m.data_case != OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY) {
            if (f.wire_type != OM_PB_VARINT) {
                e->odd = true;
                return;
            }
            temporality = (int)(int32_t)(uint32_t)f.value;
        } else if (f.number == F_D_MONOTONIC &&
                   m.data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM) {
            if (f.wire_type != OM_PB_VARINT) {
                e->odd = true;
                return;
            }
            /* As protobuf-c reads a bool: any bit set, also past the 64 a value keeps. */
            monotonic = false;
            for (size_t i = 0; i < f.len; i++) {
                monotonic = monotonic || (f.data[i] & 0x7f) != 0;
            }
        }
    }
    if (data != NULL && rc < 0) {
        e->odd = true;
        return;
    }
    switch (m.data_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
        g.n_data_points = np;
        m.gauge = &g;
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
        su.n_data_points = np;
        su.aggregation_temporality =
            (Opentelemetry__Proto__Metrics__V1__AggregationTemporality)temporality;
        su.is_monotonic = monotonic;
        m.sum = &su;
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
        h.n_data_points = np;
        h.aggregation_temporality =
            (Opentelemetry__Proto__Metrics__V1__AggregationTemporality)temporality;
        m.histogram = &h;
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
        x.n_data_points = np;
        x.aggregation_temporality =
            (Opentelemetry__Proto__Metrics__V1__AggregationTemporality)temporality;
        m.exponential_histogram = &x;
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
        sm.n_data_points = np;
        m.summary = &sm;
        break;
    default:
        break;
    }
    om_prom_class_t c;
    if (!metric_start(e, &m, np, &c)) {
        /* Dropped: their times still count for target_info. */
        q = data;
        while (data != NULL && om_pb_next(&q, qend, &f) == 1) {
            if (f.number == F_D_POINTS) {
                latest(e, wire_time(e, f.data, f.len));
            }
        }
        return;
    }
    bool cached = metric_cached(e, m.data_case);
    size_t bad = 0;
    q = data;
    while (!e->oom && !e->odd && om_pb_next(&q, qend, &f) == 1) {
        if (f.number != F_D_POINTS) {
            continue;
        }
        switch (m.data_case) {
        case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
        case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM: {
            om_number_dp_t dp;
            wire_number(e, f.data, f.len, &dp);
            latest(e, dp.time_unix_nano);
            if (cached) {
                key_wire_attrs(e);
            }
            if (!e->odd && !e->oom) {
                point(e, res, m.data_case, &c, &dp, NULL, 0, true, cached);
            }
            break;
        }
        case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM: {
            om_histogram_dp_t dp;
            wire_histogram(e, f.data, f.len, &dp);
            latest(e, dp.time_unix_nano);
            if (cached) {
                key_wire_attrs(e);
                key_hist(e, &dp);
            }
            if (!e->odd && !e->oom) {
                point(e, res, m.data_case, &c, &dp, NULL, 0, true, cached);
            }
            break;
        }
        case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM: {
            om_exp_histogram_dp_t *dp = wire_unpack(
                e, &opentelemetry__proto__metrics__v1__exponential_histogram_data_point__descriptor,
                f.data, f.len);
            if (dp != NULL) {
                latest(e, dp->time_unix_nano);
                bad += point(e, res, m.data_case, &c, dp, dp->attributes, dp->n_attributes, false,
                             false);
            }
            break;
        }
        default: {
            om_summary_dp_t *dp =
                wire_unpack(e, &opentelemetry__proto__metrics__v1__summary_data_point__descriptor,
                            f.data, f.len);
            if (dp != NULL) {
                latest(e, dp->time_unix_nano);
                point(e, res, m.data_case, &c, dp, dp->attributes, dp->n_attributes, false, false);
            }
            break;
        }
        }
    }
    if (bad > 0) {
        drop_invalid(e, &m, bad, "exponential histogram scale below -4");
    }
}

static void wire_resource_entry(enc_t *e, const uint8_t *p, size_t len)
{
    const uint8_t *end = p + len, *q = p;
    om_pb_field_t f;
    int rc = 0;
    om_resource_t *res = NULL;
    while ((rc = om_pb_next(&q, end, &f)) == 1) {
        if (f.number == F_RM_RESOURCE || f.number == F_RM_SCOPE_METRICS) {
            if (f.wire_type != OM_PB_LEN) {
                e->odd = true;
                return;
            }
        }
        if (f.number == F_RM_RESOURCE) {
            res = wire_unpack(e, &opentelemetry__proto__resource__v1__resource__descriptor, f.data,
                              f.len);
            if (res == NULL) {
                return;
            }
        }
    }
    if (rc < 0) {
        e->odd = true;
        return;
    }
    resource_start(e, res);
    q = p;
    while (!e->oom && !e->odd && om_pb_next(&q, end, &f) == 1) {
        if (f.number != F_RM_SCOPE_METRICS) {
            continue;
        }
        const uint8_t *s = f.data, *send = f.data + f.len;
        om_pb_field_t g;
        rc = 0;
        while (!e->oom && !e->odd && (rc = om_pb_next(&s, send, &g)) == 1) {
            if (g.number == F_SM_METRICS) {
                if (g.wire_type != OM_PB_LEN) {
                    e->odd = true;
                    return;
                }
                wire_metric(e, res, g.data, g.len);
            }
        }
        if (rc < 0) {
            e->odd = true;
        }
    }
    if (!e->oom && !e->odd) {
        target_info(e, res);
    }
}

static void wire_batch(enc_t *e, const om_batch_t *b)
{
    for (size_t s = 0; s < b->n_raw && !e->oom && !e->odd; s++) {
        const uint8_t *p = b->raw[s].data, *end = p + b->raw[s].len;
        om_pb_field_t f;
        int rc;
        while (!e->oom && !e->odd && (rc = om_pb_next(&p, end, &f)) == 1) {
            if (f.number == 1) {
                if (f.wire_type != OM_PB_LEN) {
                    e->odd = true;
                    break;
                }
                wire_resource_entry(e, f.data, f.len);
            }
        }
        if (rc < 0) {
            e->odd = true;
        }
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Requests                                                                                   */

/* The series' samples in time order, one per timestamp (the last given; the others are counted
 * in merged_samples). */
static size_t sorted_samples(enc_t *e, const series_t *s, sample_t *out)
{
    size_t n = 0;
    bool in_order = true;
    for (uint32_t k = s->s_first; k != NONE; k = e->samples.v[k].next) {
        if (n > 0 && e->samples.v[k].ts < out[n - 1].ts) {
            in_order = false;
        }
        out[n++] = e->samples.v[k];
    }
    if (!in_order) {
        /* Insertion sort: stable (equal times keep their order) and samples of a series in
         * one batch are few. */
        for (size_t i = 1; i < n; i++) {
            sample_t x = out[i];
            size_t j = i;
            while (j > 0 && out[j - 1].ts > x.ts) {
                out[j] = out[j - 1];
                j--;
            }
            out[j] = x;
        }
    }
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        if (w > 0 && out[w - 1].ts == out[i].ts) {
            out[w - 1] = out[i];
        } else {
            out[w++] = out[i];
        }
    }
    e->res->merged_samples += n - w;
    return w;
}

static size_t sample_len(const sample_t *x)
{
    uint64_t bits;
    om_copy(&bits, &x->v, 8);
    return (bits != 0 ? 9 : 0) + (x->ts != 0 ? 1 + om_pb_varint_len((uint64_t)x->ts) : 0);
}

static int flush(enc_t *e)
{
    if (e->req.len == 0) {
        return 0;
    }
    if (e->ztable == NULL &&
        (e->ztable = om_malloc(PRW_SNAPPY_TABLE * sizeof *e->ztable)) == NULL) {
        return OM_ENOMEM;
    }
    uint8_t *out = om_malloc(prw_snappy_max_len(e->req.len));
    if (out == NULL) {
        return OM_ENOMEM;
    }
    size_t n = prw_snappy_compress(e->ztable, (const uint8_t *)e->req.data, e->req.len, out);
    prw_body_t body = {out, n, e->req.len, e->req_series, e->req_samples, e->req_hist, e->req_ex};
    if (!PUSH(e, e->bodies, body)) {
        om_free(out);
        return OM_ENOMEM;
    }
    om_strbuf_reset(&e->req);
    e->req_series = e->req_samples = e->req_hist = e->req_ex = 0;
    return 0;
}

/* Room for entry bytes in the current request: a new request when it would pass the limit. */
static int room(enc_t *e, size_t entry)
{
    if (e->req.len > 0 && e->req.len + entry > e->o->max_request_bytes) {
        return flush(e);
    }
    return 0;
}

static size_t items_len(enc_t *e, uint32_t first, size_t *count)
{
    size_t len = 0;
    *count = 0;
    for (uint32_t k = first; k != NONE; k = e->items.v[k].next) {
        len += 1 + om_pb_varint_len(e->items.v[k].len) + e->items.v[k].len;
        (*count)++;
    }
    return len;
}

static void put_items(enc_t *e, uint32_t first, unsigned field)
{
    for (uint32_t k = first; k != NONE; k = e->items.v[k].next) {
        put_bytes(&e->req, field, e->blob.data + e->items.v[k].off, e->items.v[k].len);
    }
}

static int put_series(enc_t *e, const series_t *s, sample_t *tmp)
{
    size_t ns = sorted_samples(e, s, tmp);
    const gseries_t *g = &e->gs.v[s->gid];
    size_t body = g->lab_len, nh, nx;
    for (size_t i = 0; i < ns; i++) {
        size_t l = sample_len(&tmp[i]);
        body += 1 + om_pb_varint_len(l) + l;
    }
    body += items_len(e, s->e_first, &nx) + items_len(e, s->h_first, &nh);
    size_t entry = 1 + om_pb_varint_len(body) + body;
    int rc = room(e, entry);
    if (rc != 0) {
        return rc;
    }
    om_strbuf_t *r = &e->req;
    if (!om_strbuf_reserve(r, entry)) {
        return OM_ENOMEM;
    }
    /* The series and its samples written straight into the request. */
    uint8_t *w = (uint8_t *)r->data + r->len;
    *w++ = 0x0a;
    w = om_pb_put_varint(w, body);
    om_copy(w, e->labels.data + g->lab_off, g->lab_len);
    w += g->lab_len;
    for (size_t i = 0; i < ns; i++) {
        *w++ = 0x12;
        w = om_pb_put_varint(w, sample_len(&tmp[i]));
        uint64_t bits;
        om_copy(&bits, &tmp[i].v, 8);
        if (bits != 0) {
            *w++ = 0x09;
            w = om_le64_store(w, bits);
        }
        if (tmp[i].ts != 0) {
            *w++ = 0x10;
            w = om_pb_put_varint(w, (uint64_t)tmp[i].ts);
        }
    }
    r->len = (size_t)((char *)w - r->data);
    r->data[r->len] = '\0';
    put_items(e, s->e_first, 3);
    put_items(e, s->h_first, 4); /* histograms were made in point order */
    e->req_series++;
    e->req_samples += ns;
    e->req_hist += nh;
    e->req_ex += nx;
    e->res->samples += ns;
    return r->failed ? OM_ENOMEM : 0;
}

static int put_metadata(enc_t *e)
{
    for (size_t i = 0; i < e->metas.n; i++) {
        const meta_t *x = &e->metas.v[i];
        om_strbuf_reset(&e->tmp);
        put_uint(&e->tmp, 1, (uint64_t)x->type, false);
        put_bytes(&e->tmp, 2, e->meta_text.data + x->name_off, x->name_len);
        if (x->help != NULL && x->help[0] != '\0') {
            put_bytes(&e->tmp, 4, x->help, strlen(x->help));
        }
        if (x->unit != NULL && x->unit[0] != '\0') {
            put_bytes(&e->tmp, 5, x->unit, strlen(x->unit));
        }
        int rc = room(e, 1 + om_pb_varint_len(e->tmp.len) + e->tmp.len);
        if (rc != 0) {
            return rc;
        }
        put_bytes(&e->req, 3, e->tmp.data, e->tmp.len);
    }
    return e->req.failed || e->tmp.failed ? OM_ENOMEM : 0;
}

static int build_requests(enc_t *e)
{
    /* The most samples any series has: one scratch array for sorting them. */
    size_t most = 0;
    for (size_t i = 0; i < e->series.n; i++) {
        size_t n = 0;
        for (uint32_t k = e->series.v[i].s_first; k != NONE; k = e->samples.v[k].next) {
            n++;
        }
        most = n > most ? n : most;
    }
    sample_t *tmp = om_malloc((most + 1) * sizeof *tmp);
    if (tmp == NULL) {
        return OM_ENOMEM;
    }
    int rc = 0;
    for (size_t i = 0; i < e->series.n && rc == 0; i++) {
        rc = put_series(e, &e->series.v[i], tmp);
    }
    om_free(tmp);
    rc = rc != 0 ? rc : put_metadata(e);
    return rc != 0 ? rc : flush(e);
}

prw_encoder_t *prw_encoder_new(void)
{
    enc_t *e = om_calloc(1, sizeof *e);
    if (e == NULL) {
        return NULL;
    }
    om_strbuf_t *bufs[] = {&e->labels, &e->blob, &e->cur,        &e->base_enc,   &e->name,
                           &e->tmp,    &e->job,  &e->instance,   &e->meta_text,  &e->req,
                           &e->keys,   &e->key,  &e->opts_print, &e->names_text, &e->name_key};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) {
        om_strbuf_init(bufs[i], 0);
    }
    om_prom_labels_init(&e->base);
    return e;
}

static void free_bodies(enc_t *e)
{
    for (size_t i = 0; i < e->bodies.n; i++) {
        om_free(e->bodies.v[i].data);
    }
    e->bodies.n = 0;
}

void prw_encoder_free(prw_encoder_t *e)
{
    if (e == NULL) {
        return;
    }
    om_strbuf_free(&e->labels);
    om_strbuf_free(&e->blob);
    om_strbuf_free(&e->cur);
    om_free(e->series.v);
    om_free(e->samples.v);
    om_free(e->items.v);
    om_free(e->table);
    om_free(e->gs.v);
    om_free(e->pents.v);
    om_free(e->wattrs.v);
    om_free(e->wkvs.v);
    om_free(e->wex.v);
    om_free(e->wexs.v);
    om_free(e->wcounts.v);
    om_free(e->wbounds.v);
    if (e->arena != NULL) {
        om_arena_unref(e->arena);
    }
    om_free(e->ptable);
    om_free(e->ids.v);
    om_strbuf_free(&e->keys);
    om_strbuf_free(&e->key);
    om_strbuf_free(&e->opts_print);
    om_free(e->names);
    om_free(e->ztable);
    om_strbuf_free(&e->names_text);
    om_strbuf_free(&e->name_key);
    om_prom_labels_free(&e->base);
    om_strbuf_free(&e->base_enc);
    om_free(e->base_off.v);
    om_free(e->base_n.v);
    om_free(e->kvs.v);
    om_free(e->base_h.v);
    om_free(e->bucket_series.v);
    om_free(e->dense.v);
    om_free(e->deltas.v);
    om_free(e->spans.v);
    om_strbuf_free(&e->name);
    om_strbuf_free(&e->tmp);
    om_strbuf_free(&e->job);
    om_strbuf_free(&e->instance);
    om_free(e->metas.v);
    om_strbuf_free(&e->meta_text);
    om_strbuf_free(&e->req);
    free_bodies(e);
    om_free(e->bodies.v);
    om_free(e);
}

/* Empty, keeping every buffer's memory for the next batch (no page faults, no regrowth). */
static void reset(enc_t *e, const prw_opts_t *o, prw_result_t *res)
{
    e->o = o;
    e->res = res;
    e->oom = false;
    om_strbuf_t *bufs[] = {&e->blob, &e->cur,      &e->base_enc,  &e->name, &e->tmp,
                           &e->job,  &e->instance, &e->meta_text, &e->req,  &e->key};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) {
        om_strbuf_reset(bufs[i]);
    }
    e->series.n = e->samples.n = e->items.n = e->metas.n = 0;
    e->req_series = e->req_samples = e->req_hist = e->req_ex = 0;
    e->replay = NULL;
    e->recording = false;
    e->odd = false;
    cache_check(e, o);
    free_bodies(e);
}

static int encode(prw_encoder_t *enc, const om_batch_t *b, bool wire, const prw_opts_t *o,
                  prw_result_t *res, om_err_t *err)
{
    memset(res, 0, sizeof *res);
    enc_t *e = enc != NULL ? enc : prw_encoder_new();
    if (e == NULL) {
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    reset(e, o, res);
    const om_metrics_req_t *req = wire ? NULL : b->metrics;
    if (wire) {
        if (b->raw_valid) {
            wire_batch(e, b);
        } else {
            e->odd = true;
        }
    }
    for (size_t r = 0; req != NULL && r < req->n_resource_metrics && !e->oom; r++) {
        if (req->resource_metrics[r] != NULL) {
            resource_entry(e, req->resource_metrics[r]);
        }
    }
    int rc = e->oom ? OM_ENOMEM : e->odd ? OM_ENOTSUP : build_requests(e);
    if (rc == 0 && e->oom) {
        rc = OM_ENOMEM;
    }
    if (e->arena != NULL) {
        om_arena_unref(e->arena); /* what the wire path unpacked (add_meta's strings too) */
        e->arena = NULL;
    }
    if (rc != 0) {
        om_err_set(err, rc, rc == OM_ENOMEM ? "out of memory" : "the batch's bytes need decoding");
        free_bodies(e);
        if (rc == OM_ENOMEM) {
            cache_clear(e); /* it may hold half of a point's series */
        }
        memset(res, 0, sizeof *res);
    } else {
        res->series = e->series.n;
        res->bodies = e->bodies.v; /* the result's from now on */
        res->n_bodies = e->bodies.n;
        e->bodies = (__typeof__(e->bodies)){0};
    }
    if (enc == NULL) {
        prw_encoder_free(e);
    }
    return rc;
}

int prw_encode(prw_encoder_t *enc, const om_batch_t *b, const prw_opts_t *o, prw_result_t *res,
               om_err_t *err)
{
    return encode(enc, b, b->msg == NULL, o, res, err);
}

int prw_encode_wire(prw_encoder_t *enc, const om_batch_t *b, const prw_opts_t *o, prw_result_t *res,
                    om_err_t *err)
{
    return encode(enc, b, true, o, res, err);
}

void prw_encoder_set_cache(prw_encoder_t *e, bool on)
{
    e->no_cache = !on;
}

void prw_result_free(prw_result_t *res)
{
    for (size_t i = 0; i < res->n_bodies; i++) {
        om_free(res->bodies[i].data);
    }
    om_free(res->bodies);
    memset(res, 0, sizeof *res);
}
