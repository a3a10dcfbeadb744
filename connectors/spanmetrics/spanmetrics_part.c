/* spanmetrics_part.c: a batch's partial result, as a scan records it (see spm_part_t).
 *
 * A scan runs the counting steps (conn_spanmetrics_begin_resource, _count_span) with s->part
 * set: they land here instead of in the aggregate. Each resource entry opens a segment (or
 * continues the previous one when its resource key is the same); each span is counted into
 * the entry of its key in the current segment: calls, explicit bucket counts or an * exponential
 * histogram, the exact sum of durations; and the first max_per_data_point exemplars of each entry,
 * in one list in span order. conn_spanmetrics_merge (spanmetrics_agg.c) then adds entries to series
 * on the loop, in the order they were first seen, which is the order counting span by span would
 * have made the series in.
 *
 * Any thread: a scanner and a part touch nothing shared but the settings, which are read
 * only. Memory: the part's arrays are om_malloc'd and kept across resets (a job's part is
 * reused); bounded by the largest batch scanned with it. */
#include <string.h>

#include "spanmetrics.h"

void conn_spanmetrics_sum_add(uint64_t *sum_ns, double *over, uint64_t ns)
{
    if (*sum_ns + ns < ns) {
        *over += (double)*sum_ns; /* past 584 years of spans: rounded from here on */
        *sum_ns = 0;
    }
    *sum_ns += ns;
}

double conn_spanmetrics_sum(const spm_t *a, const spm_series_t *s)
{
    return ((double)s->sum_ns + s->sum_over_ns) / a->unit_div;
}

void conn_spanmetrics_part_reset(spm_part_t *p)
{
    for (size_t i = 0; i < p->n_ents; i++) {
        om_free(p->ents[i].expo.counts);
    }
    if (p->slots != NULL) {
        memset(p->slots, 0, p->slots_cap * sizeof *p->slots);
    }
    p->n_segs = p->n_ents = p->n_ex = 0;
    p->bytes.len = 0;
    p->bytes.failed = false;
}

void conn_spanmetrics_part_free(spm_part_t *p)
{
    conn_spanmetrics_part_reset(p);
    om_free(p->segs);
    om_free(p->ents);
    om_free(p->buckets);
    om_free(p->ex);
    om_free(p->slots);
    om_free(p->bytes.p);
    memset(p, 0, sizeof *p);
}

static bool same_key(const spm_part_t *p, uint32_t at, uint32_t len, const spm_buf_t *key)
{
    return len == key->len && memcmp(p->bytes.p + at, key->p, len) == 0;
}

int conn_spanmetrics_part_begin(spm_t *s, const spm_kv_t *attrs, size_t n)
{
    spm_part_t *p = s->part;
    uint64_t h = conn_spanmetrics_hash(s->key.p, s->key.len);
    if (p->n_segs > 0) {
        const spm_pseg_t *g = &p->segs[p->n_segs - 1];
        if (g->hash == h && same_key(p, g->key_at, g->key_len, &s->key)) {
            return 0; /* the same resource again: nothing happens in between */
        }
    }
    if (!conn_spanmetrics_reserve((void **)&p->segs, &p->segs_cap, p->n_segs + 1,
                                  sizeof *p->segs)) {
        return OM_ENOMEM;
    }
    if (p->bytes.p == NULL) {
        conn_spanmetrics_put_byte(&p->bytes, 0); /* always memory, even for empty keys */
        p->bytes.len = 0;
    }
    size_t key_at = p->bytes.len;
    conn_spanmetrics_put_raw(&p->bytes, s->key.p, s->key.len);
    size_t attrs_at = p->bytes.len;
    for (size_t i = 0; i < n; i++) {
        conn_spanmetrics_put_str(&p->bytes, attrs[i].k, attrs[i].kn);
        conn_spanmetrics_put_val(&p->bytes, &attrs[i].val);
    }
    if (p->bytes.failed || p->bytes.len > UINT32_MAX) {
        return OM_ENOMEM;
    }
    p->segs[p->n_segs++] = (spm_pseg_t){
        .hash = h,
        .key_at = (uint32_t)key_at,
        .key_len = (uint32_t)(attrs_at - key_at),
        .attrs_at = (uint32_t)attrs_at,
        .attrs_len = (uint32_t)(p->bytes.len - attrs_at),
        .first = (uint32_t)p->n_ents,
    };
    return 0;
}

static bool slots_grow(spm_part_t *p)
{
    if ((p->n_ents + 1) * 2 <= p->slots_cap) {
        return true;
    }
    size_t cap = p->slots_cap ? p->slots_cap * 2 : 64;
    uint32_t *slots = om_calloc(cap, sizeof *slots);
    if (slots == NULL) {
        return false;
    }
    for (size_t i = 0; i < p->n_ents; i++) {
        size_t j = p->ents[i].hash & (cap - 1);
        while (slots[j] != 0) {
            j = (j + 1) & (cap - 1);
        }
        slots[j] = (uint32_t)i + 1;
    }
    om_free(p->slots);
    p->slots = slots;
    p->slots_cap = cap;
    return true;
}

static bool has_hists(const spm_t *s, int tab)
{
    return tab == 1 || (s->shared && !s->cfg->histogram.disable);
}

/* The entry of s->key in table tab of the current segment, made if new; NULL when out of
 * memory. */
static spm_pentry_t *entry_of(spm_t *s, spm_part_t *p, int tab)
{
    uint32_t seg = (uint32_t)p->n_segs - 1;
    uint64_t h = conn_spanmetrics_hash(s->key.p, s->key.len);
    if (!slots_grow(p)) {
        return NULL;
    }
    size_t mask = p->slots_cap - 1, j = h & mask;
    for (; p->slots[j] != 0; j = (j + 1) & mask) {
        spm_pentry_t *e = &p->ents[p->slots[j] - 1];
        if (e->hash == h && e->seg == seg && e->tab == tab &&
            same_key(p, e->key_at, e->key_len, &s->key)) {
            return e;
        }
    }
    size_t i = p->n_ents, nb = s->bounds != NULL && has_hists(s, tab) ? s->n_bounds + 1 : 0;
    size_t key_at = p->bytes.len;
    conn_spanmetrics_put_raw(&p->bytes, s->key.p, s->key.len);
    bool ok = !p->bytes.failed && p->bytes.len <= UINT32_MAX && p->n_ents < UINT32_MAX - 1 &&
              conn_spanmetrics_reserve((void **)&p->ents, &p->ents_cap, i + 1, sizeof *p->ents) &&
              (s->bounds == NULL ||
               conn_spanmetrics_reserve((void **)&p->buckets, &p->buckets_cap,
                                        (i + 1) * (s->n_bounds + 1), sizeof *p->buckets));
    if (!ok) {
        p->bytes.len = key_at;
        p->bytes.failed = false;
        return NULL;
    }
    if (nb > 0) {
        memset(p->buckets + i * nb, 0, nb * sizeof *p->buckets);
    }
    spm_pentry_t *e = &p->ents[i];
    *e = (spm_pentry_t){.hash = h,
                        .seg = seg,
                        .key_at = (uint32_t)key_at,
                        .key_len = (uint32_t)s->key.len,
                        .tab = (uint8_t)tab};
    conn_spanmetrics_expo_init(&e->expo);
    p->slots[j] = (uint32_t)i + 1;
    p->n_ents++;
    p->segs[seg].n++;
    return e;
}

static bool has_trace_id(const spm_span_t *sp)
{
    if (sp->trace_id_len != 16) {
        return false;
    }
    for (size_t i = 0; i < 16; i++) {
        if (sp->trace_id[i] != 0) {
            return true;
        }
    }
    return false;
}

/* which: 0 calls, 1 hist. */
static void add_exemplar(const spm_t *s, spm_part_t *p, size_t i, int which, const spm_span_t *sp,
                         double v)
{
    uint32_t max = (uint32_t)s->cfg->exemplars.max_per_data_point;
    spm_pentry_t *e = &p->ents[i];
    uint32_t *n = which ? &e->n_ex_hist : &e->n_ex_calls;
    if (!s->cfg->exemplars.enabled || *n >= max || !has_trace_id(sp) ||
        !conn_spanmetrics_reserve((void **)&p->ex, &p->ex_cap, p->n_ex + 1, sizeof *p->ex)) {
        return; /* an exemplar is a hint: none this time */
    }
    (*n)++;
    spm_pex_t *x = &p->ex[p->n_ex++];
    x->entry = (uint32_t)i;
    x->which = (uint8_t)which;
    memcpy(x->ex.trace_id, sp->trace_id, 16);
    memset(x->ex.span_id, 0, sizeof x->ex.span_id);
    if (sp->span_id_len == 8) {
        memcpy(x->ex.span_id, sp->span_id, 8);
    }
    x->ex.value = v;
}

/* The bucket of v: the first bound >= v (bounds are upper bounds, inclusive). */
static size_t bucket_of(const double *bounds, size_t n, double v)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (bounds[mid] < v) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

int conn_spanmetrics_part_count(spm_t *s, int tab, const spm_span_t *sp, uint64_t ns, double d)
{
    spm_part_t *p = s->part;
    spm_pentry_t *e = entry_of(s, p, tab);
    if (e == NULL) {
        return OM_ENOMEM;
    }
    size_t i = (size_t)(e - p->ents);
    e->n++;
    if (tab == 0) {
        e->calls++;
        add_exemplar(s, p, i, 0, sp, d);
    }
    if (!has_hists(s, tab)) {
        return 0;
    }
    if (s->bounds != NULL) {
        p->buckets[i * (s->n_bounds + 1) + bucket_of(s->bounds, s->n_bounds, d)]++;
    } else {
        int64_t max = s->cfg->histogram.exponential.max_size;
        if (!conn_spanmetrics_expo_add(&e->expo, d, max > 0 ? (uint32_t)max : 160)) {
            return 0; /* out of memory: this duration is not counted */
        }
    }
    e->count++;
    conn_spanmetrics_sum_add(&e->sum_ns, &e->sum_over_ns, ns);
    add_exemplar(s, p, i, 1, sp, d);
    return 0;
}
