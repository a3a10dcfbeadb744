/* spanmetrics_agg.c: the aggregate: spans counted into series, as otelcol-contrib's
 * spanmetrics connector counts them, within bounded memory.
 *
 * Resources are told apart by their attributes (or those of resource_metrics_key_attributes)
 * and kept in an LRU list of at most resource_metrics_cache_size; the least recently seen is
 * dropped, with its series, to make room. Each resource has a table of series for calls and
 * one for durations, or one table for both when both metrics have the same dimensions (the
 * common case: one lookup per span). A series is identified by its attribute set, encoded
 * (spanmetrics_key.c): the default dimensions, the configured ones and the scope's. A table
 * holds at most aggregation_cardinality_limit series (all of them when cumulative, those
 * counted since the last flush when delta), and the whole aggregate at most SPM_MAX_SERIES;
 * beyond, spans are counted in the table's overflow series (otel.metric.overflow=true), as
 * otelcol does.
 *
 * Delta: a series counted since the last flush is sent and reset, and starts again at the
 * flush's time; one not counted becomes idle and is kept, so that its next point starts where
 * its last one ended, until metric_timestamp_cache_size idle series are kept (then the oldest
 * goes). Cumulative: series live until metrics_expiration after their last span (or their
 * resource is dropped).
 *
 * Spans are not counted here one by one: a scan (on a worker thread, see spanmetrics.c)
 * records a batch into a partial result, one entry per distinct series key (spanmetrics_part.c),
 * and conn_spanmetrics_merge counts that into the aggregate on the loop. Cost per span, on the
 * scan's thread: building its key (a few short copies), a hash over it, one lookup in the
 * part (two when the metrics' dimensions differ), a bucket search over the explicit bounds.
 * Cost per key of a batch, on the loop: the resource lookup, one series lookup, adding the
 * counts. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "spanmetrics.h"

static uint64_t wall_clock(void *arg)
{
    (void)arg;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static const spm_dim_cfg_t *dim_at(const om_seclist_t *l, size_t i)
{
    return &((const spm_dim_cfg_t *)l->items)[i];
}

static void init_dims(spm_t *a, const conn_spanmetrics_cfg_t *cfg)
{
    const om_seclist_t *lists[] = {&cfg->dimensions, &cfg->calls_dimensions,
                                   &cfg->histogram.dimensions};
    for (size_t l = 0; l < 3; l++) {
        for (size_t i = 0; i < lists[l]->n; i++) {
            a->dims[a->n_dims++] = dim_at(lists[l], i);
        }
    }
    static const char *const names[] = {NULL, "service.name", "span.name", "span.kind",
                                        "status.code"};
    for (size_t i = 0; i < cfg->exclude_dimensions.n; i++) {
        for (int k = SPM_ATTR_SERVICE; k <= SPM_ATTR_STATUS; k++) {
            a->exclude[k] =
                a->exclude[k] || strcmp(cfg->exclude_dimensions.items[i], names[k]) == 0;
        }
    }
}

int conn_spanmetrics_init(spm_t *a, const conn_spanmetrics_cfg_t *cfg, const char *log_name)
{
    memset(a, 0, sizeof *a);
    a->cfg = cfg;
    a->log_name = log_name;
    a->delta = cfg->aggregation_temporality == SPM_DELTA;
    a->shared = cfg->calls_dimensions.n == 0 && cfg->histogram.dimensions.n == 0;
    a->hist_table = !a->shared && !cfg->histogram.disable;
    a->n_common = cfg->dimensions.n;
    a->n_calls_only = cfg->calls_dimensions.n;
    size_t n = cfg->dimensions.n + cfg->calls_dimensions.n + cfg->histogram.dimensions.n;
    a->dims = om_calloc(n ? n : 1, sizeof *a->dims);
    a->rvals = om_calloc(n ? n : 1, sizeof *a->rvals);
    a->n_buckets = 64;
    a->buckets = om_calloc(a->n_buckets, sizeof *a->buckets);
    a->unit_div = cfg->histogram.unit == SPM_UNIT_S ? 1e9 : 1e6;
    a->clock = wall_clock;
    if (!cfg->histogram.disable && !cfg->histogram.exponential_present) {
        a->bounds = conn_spanmetrics_bounds(cfg, &a->n_bounds);
    }
    bool bounds_ok =
        a->bounds != NULL || cfg->histogram.disable || cfg->histogram.exponential_present;
    if (a->dims == NULL || a->rvals == NULL || a->buckets == NULL || !bounds_ok) {
        conn_spanmetrics_free(a);
        return OM_ENOMEM;
    }
    init_dims(a, cfg);
    /* The key buffer always has memory, even for an empty key. */
    conn_spanmetrics_put_byte(&a->key, 0);
    a->key.len = 0;
    if (a->key.failed) {
        conn_spanmetrics_free(a);
        return OM_ENOMEM;
    }
    return 0;
}

int conn_spanmetrics_scanner_init(spm_t *s, const spm_t *agg)
{
    memset(s, 0, sizeof *s);
    s->cfg = agg->cfg;
    s->log_name = agg->log_name;
    s->shared = agg->shared;
    s->delta = agg->delta;
    s->hist_table = agg->hist_table;
    s->dims = agg->dims;
    s->n_dims = agg->n_dims;
    s->n_common = agg->n_common;
    s->n_calls_only = agg->n_calls_only;
    memcpy(s->exclude, agg->exclude, sizeof s->exclude);
    s->bounds = agg->bounds;
    s->n_bounds = agg->n_bounds;
    s->unit_div = agg->unit_div;
    s->clock = agg->clock;
    s->clock_arg = agg->clock_arg;
    s->scanner = true;
    s->rvals = om_calloc(s->n_dims ? s->n_dims : 1, sizeof *s->rvals);
    conn_spanmetrics_put_byte(&s->key, 0);
    s->key.len = 0;
    if (s->rvals == NULL || s->key.failed) {
        conn_spanmetrics_free(s);
        return OM_ENOMEM;
    }
    return 0;
}

/* ---- tables ------------------------------------------------------------------------------ */

static spm_series_t *table_find(const spm_table_t *t, uint64_t h, const uint8_t *key, size_t n)
{
    if (t->cap == 0) {
        return NULL;
    }
    size_t mask = t->cap - 1;
    /* Bounded: the table is at most half full, so an empty slot ends the probe. */
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        spm_series_t *s = t->slots[i];
        if (s == NULL) {
            return NULL;
        }
        if (s->hash == h && s->key_len == n && memcmp(s->key, key, n) == 0) {
            return s;
        }
    }
}

static void table_place(spm_series_t **slots, size_t cap, spm_series_t *s)
{
    size_t i = s->hash & (cap - 1);
    while (slots[i] != NULL) {
        i = (i + 1) & (cap - 1);
    }
    slots[i] = s;
}

static int table_insert(spm_table_t *t, spm_series_t *s)
{
    if ((t->n + 1) * 2 > t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        spm_series_t **slots = om_calloc(cap, sizeof *slots);
        if (slots == NULL) {
            return OM_ENOMEM;
        }
        for (size_t i = 0; i < t->cap; i++) {
            if (t->slots[i] != NULL) {
                table_place(slots, cap, t->slots[i]);
            }
        }
        om_free(t->slots);
        t->slots = slots;
        t->cap = cap;
    }
    table_place(t->slots, t->cap, s);
    t->n++;
    s->table = t;
    return 0;
}

/* Linear probing's deletion: later entries of the run move back so that no probe stops
 * early at the hole. */
static void table_remove(spm_table_t *t, const spm_series_t *s)
{
    size_t mask = t->cap - 1, i = s->hash & mask;
    while (t->slots[i] != s) {
        i = (i + 1) & mask;
    }
    t->slots[i] = NULL;
    t->n--;
    for (size_t j = (i + 1) & mask; t->slots[j] != NULL; j = (j + 1) & mask) {
        size_t k = t->slots[j]->hash & mask;
        bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
        if (!stays) {
            t->slots[i] = t->slots[j];
            t->slots[j] = NULL;
            i = j;
        }
    }
}

/* ---- series ------------------------------------------------------------------------------ */

static void idle_unlink(spm_t *a, spm_series_t *s)
{
    if (!s->idle) {
        return;
    }
    *(s->idle_prev ? &s->idle_prev->idle_next : &a->idle_head) = s->idle_next;
    *(s->idle_next ? &s->idle_next->idle_prev : &a->idle_tail) = s->idle_prev;
    s->idle_prev = s->idle_next = NULL;
    s->idle = false;
    a->n_idle--;
}

static void idle_push(spm_t *a, spm_series_t *s)
{
    s->idle = true;
    s->idle_next = NULL;
    s->idle_prev = a->idle_tail;
    *(a->idle_tail ? &a->idle_tail->idle_next : &a->idle_head) = s;
    a->idle_tail = s;
    a->n_idle++;
}

/* Frees s, which is no longer in any table slot. */
static void series_destroy(spm_t *a, spm_series_t *s)
{
    idle_unlink(a, s);
    om_free(s->expo.counts);
    om_free(s->ex_calls);
    om_free(s->ex_hist);
    om_free(s);
    a->n_series--;
}

void conn_spanmetrics_series_free(spm_t *a, spm_series_t *s)
{
    if (s->table != NULL && s->table->overflow == s) {
        s->table->overflow = NULL;
    } else if (s->table != NULL) {
        table_remove(s->table, s);
    }
    series_destroy(a, s);
}

/* One allocation: the series, its explicit bucket counts, its key. */
static spm_series_t *series_new(spm_t *a, const spm_table_t *t, const uint8_t *key, size_t len,
                                uint64_t h, uint64_t now)
{
    size_t nb = t->hists && a->bounds != NULL ? a->n_bounds + 1 : 0;
    spm_series_t *s = om_calloc(1, sizeof *s + nb * sizeof(uint64_t) + len);
    if (s == NULL) {
        return NULL;
    }
    s->buckets = nb > 0 ? (uint64_t *)(s + 1) : NULL;
    s->key = (uint8_t *)(s + 1) + nb * sizeof(uint64_t);
    memcpy(s->key, key, len);
    s->key_len = (uint32_t)len;
    s->hash = h;
    s->first = !a->delta;
    s->start_ns = now;
    conn_spanmetrics_expo_init(&s->expo);
    a->n_series++;
    return s;
}

static void activate(spm_t *a, spm_table_t *t, spm_series_t *s)
{
    if (!s->touched) {
        s->touched = true;
        t->active += s != t->overflow;
        idle_unlink(a, s);
    }
}

static spm_series_t *overflow_series(spm_t *a, spm_table_t *t, uint64_t now)
{
    if (t->overflow == NULL) {
        static const uint8_t key[] = {SPM_ATTR_OVERFLOW};
        t->overflow =
            series_new(a, t, key, sizeof key, conn_spanmetrics_hash(key, sizeof key), now);
        if (t->overflow == NULL) {
            return NULL;
        }
        t->overflow->table = t;
    }
    a->overflowed++;
    activate(a, t, t->overflow);
    return t->overflow;
}

/* The series of key in t, made if new, or the overflow series past the limits; NULL when out
 * of memory. */
static spm_series_t *lookup(spm_t *a, spm_table_t *t, const uint8_t *key, size_t n, uint64_t h,
                            uint64_t now)
{
    spm_series_t *s = table_find(t, h, key, n);
    if (s != NULL && (s->touched || !a->delta)) {
        activate(a, t, s);
        return s;
    }
    /* A new series, or (delta) one not counted since the last flush: otelcol makes it anew
     * then, so the limit applies to it too. */
    int64_t limit = a->cfg->aggregation_cardinality_limit;
    size_t used = a->delta ? t->active : t->n;
    if ((limit > 0 && used >= (uint64_t)limit) || (s == NULL && a->n_series >= SPM_MAX_SERIES)) {
        return overflow_series(a, t, now);
    }
    if (s == NULL) {
        s = series_new(a, t, key, n, h, now);
        if (s == NULL || table_insert(t, s) != 0) {
            om_free(s);
            a->n_series -= s != NULL;
            return NULL;
        }
    }
    activate(a, t, s);
    return s;
}

/* ---- resources --------------------------------------------------------------------------- */

static void lru_unlink(spm_t *a, spm_resource_t *r)
{
    *(r->lru_prev ? &r->lru_prev->lru_next : &a->lru_head) = r->lru_next;
    *(r->lru_next ? &r->lru_next->lru_prev : &a->lru_tail) = r->lru_prev;
    r->lru_prev = r->lru_next = NULL;
}

static void lru_front(spm_t *a, spm_resource_t *r)
{
    r->lru_next = a->lru_head;
    *(a->lru_head ? &a->lru_head->lru_prev : &a->lru_tail) = r;
    a->lru_head = r;
}

static void table_clear(spm_t *a, spm_table_t *t)
{
    for (size_t i = 0; i < t->cap; i++) {
        if (t->slots[i] != NULL) {
            series_destroy(a, t->slots[i]);
        }
    }
    if (t->overflow != NULL) {
        series_destroy(a, t->overflow);
    }
    om_free(t->slots);
    *t = (spm_table_t){0};
}

static void resource_free(spm_t *a, spm_resource_t *r)
{
    spm_resource_t **pp = &a->buckets[r->hash & (a->n_buckets - 1)];
    while (*pp != r) {
        pp = &(*pp)->next_in_bucket;
    }
    *pp = r->next_in_bucket;
    lru_unlink(a, r);
    table_clear(a, &r->calls);
    table_clear(a, &r->hist);
    om_free(r->key);
    om_free(r->attrs);
    om_free(r);
    a->n_resources--;
}

bool conn_spanmetrics_reserve(void **arr, size_t *cap, size_t n, size_t size)
{
    if (n <= *cap) {
        return true;
    }
    size_t c = *cap ? *cap : 16;
    while (c < n) {
        c *= 2;
    }
    void *p = om_realloc(*arr, c * size);
    if (p == NULL) {
        return false;
    }
    *arr = p;
    *cap = c;
    return true;
}

size_t conn_spanmetrics_cstr_len(const char *s, size_t n)
{
    const char *z = n > 0 ? memchr(s, '\0', n) : NULL;
    return z != NULL ? (size_t)(z - s) : n;
}

static bool key_is(const spm_kv_t *kv, const char *k)
{
    size_t n = strlen(k);
    return kv->kn == n && memcmp(kv->k, k, n) == 0;
}

static bool key_attr(const spm_t *a, const spm_kv_t *kv)
{
    const om_strlist_t *l = &a->cfg->resource_metrics_key_attributes;
    for (size_t i = 0; i < l->n; i++) {
        if (key_is(kv, l->items[i])) {
            return true;
        }
    }
    return l->n == 0;
}

/* Keys in byte order, as strcmp orders them. */
static int key_cmp(const spm_kv_t *x, const spm_kv_t *y)
{
    size_t n = x->kn < y->kn ? x->kn : y->kn;
    int c = memcmp(x->k, y->k, n);
    return c != 0 ? c : (x->kn > y->kn) - (x->kn < y->kn);
}

/* The resource key: the key attributes sorted by name (an insertion sort: few attributes;
 * stable, so of equal keys the first comes first), encoded into a->key. */
static int resource_key(spm_t *a, const spm_kv_t *attrs, size_t n)
{
    if (!conn_spanmetrics_reserve((void **)&a->sorted, &a->sorted_cap, n, sizeof *a->sorted)) {
        return OM_ENOMEM;
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (!key_attr(a, &attrs[i])) {
            continue;
        }
        size_t j = m++;
        while (j > 0 && key_cmp(&a->sorted[j - 1], &attrs[i]) > 0) {
            a->sorted[j] = a->sorted[j - 1];
            j--;
        }
        a->sorted[j] = attrs[i];
    }
    a->key.len = 0;
    for (size_t i = 0; i < m; i++) {
        conn_spanmetrics_put_str(&a->key, a->sorted[i].k, a->sorted[i].kn);
        conn_spanmetrics_put_val(&a->key, &a->sorted[i].val);
    }
    return a->key.failed ? OM_ENOMEM : 0;
}

static void grow_buckets(spm_t *a)
{
    size_t n = a->n_buckets * 2;
    spm_resource_t **b = om_calloc(n, sizeof *b);
    if (b == NULL) {
        return; /* longer chains, nothing worse */
    }
    for (spm_resource_t *r = a->lru_head; r != NULL; r = r->lru_next) {
        r->next_in_bucket = b[r->hash & (n - 1)];
        b[r->hash & (n - 1)] = r;
    }
    om_free(a->buckets);
    a->buckets = b;
    a->n_buckets = n;
}

/* A new resource: key (key_len bytes) and its attributes encoded (attrs), both copied. */
static spm_resource_t *resource_new(spm_t *a, uint64_t h, const uint8_t *key_in, uint32_t key_len,
                                    const uint8_t *attrs, uint32_t attrs_len)
{
    if (a->n_resources >= (size_t)a->cfg->resource_metrics_cache_size && a->lru_tail != NULL) {
        a->dropped_resources++;
        resource_free(a, a->lru_tail);
    }
    spm_resource_t *r = om_calloc(1, sizeof *r);
    uint8_t *key = om_malloc(key_len ? key_len : 1);
    uint8_t *all = om_malloc(attrs_len ? attrs_len : 1);
    if (r == NULL || key == NULL || all == NULL) {
        om_free(r);
        om_free(key);
        om_free(all);
        return NULL;
    }
    memcpy(key, key_in, key_len);
    memcpy(all, attrs, attrs_len);
    *r = (spm_resource_t){
        .hash = h, .key = key, .key_len = key_len, .attrs = all, .attrs_len = attrs_len};
    bool hists = !a->cfg->histogram.disable;
    r->calls.sums = true;
    r->calls.hists = a->shared && hists;
    r->hist.hists = !a->shared && hists;
    if (a->n_resources + 1 > a->n_buckets) {
        grow_buckets(a);
    }
    r->next_in_bucket = a->buckets[h & (a->n_buckets - 1)];
    a->buckets[h & (a->n_buckets - 1)] = r;
    lru_front(a, r);
    a->n_resources++;
    return r;
}

/* The resource of a segment of a part, made if new, now the most recently seen. */
static spm_resource_t *get_resource(spm_t *a, const spm_part_t *p, const spm_pseg_t *g)
{
    const uint8_t *key = p->bytes.p + g->key_at;
    spm_resource_t *r = a->buckets[g->hash & (a->n_buckets - 1)];
    while (r != NULL && !(r->hash == g->hash && r->key_len == g->key_len &&
                          memcmp(r->key, key, g->key_len) == 0)) {
        r = r->next_in_bucket;
    }
    if (r == NULL) {
        return resource_new(a, g->hash, key, g->key_len, p->bytes.p + g->attrs_at, g->attrs_len);
    }
    if (r != a->lru_head) {
        lru_unlink(a, r);
        lru_front(a, r);
    }
    return r;
}

/* ---- spans ------------------------------------------------------------------------------- */

/* The value of the first attribute named k; absent also when that attribute has no value. */
static const spm_val_t *attr_get(const spm_kv_t *attrs, size_t n, const char *k)
{
    for (size_t i = 0; i < n; i++) {
        if (key_is(&attrs[i], k)) {
            return attrs[i].val.v != NULL || attrs[i].val.wire ? &attrs[i].val : NULL;
        }
    }
    return NULL;
}

static void put_defaults(spm_t *a, const spm_ctx_t *cx, const spm_span_t *sp)
{
    spm_buf_t *b = &a->key;
    if (!a->exclude[SPM_ATTR_SERVICE]) {
        conn_spanmetrics_put_byte(b, SPM_ATTR_SERVICE);
        conn_spanmetrics_put_str(b, cx->service, cx->service_len);
    }
    if (!a->exclude[SPM_ATTR_SPAN_NAME]) {
        conn_spanmetrics_put_byte(b, SPM_ATTR_SPAN_NAME);
        conn_spanmetrics_put_str(b, sp->name, sp->name_len);
    }
    if (!a->exclude[SPM_ATTR_SPAN_KIND]) {
        conn_spanmetrics_put_byte(b, SPM_ATTR_SPAN_KIND);
        conn_spanmetrics_put_byte(b, (uint32_t)sp->kind <= 5 ? (uint8_t)sp->kind : 6);
    }
    if (!a->exclude[SPM_ATTR_STATUS]) {
        conn_spanmetrics_put_byte(b, SPM_ATTR_STATUS);
        conn_spanmetrics_put_byte(b, (uint32_t)sp->status <= 2 ? (uint8_t)sp->status : 3);
    }
}

/* Dimensions [from, to): the span's attribute, else the resource's, else the default. */
static void put_dims(spm_t *a, const spm_span_t *sp, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++) {
        const spm_val_t *v = attr_get(sp->attrs, sp->n_attrs, a->dims[i]->name);
        if (v == NULL && (a->rvals[i].v != NULL || a->rvals[i].wire)) {
            v = &a->rvals[i];
        }
        if (v == NULL && a->dims[i]->def == NULL) {
            continue;
        }
        conn_spanmetrics_put_byte(&a->key, (uint8_t)(SPM_ATTR_DIM0 + i));
        if (v != NULL) {
            conn_spanmetrics_put_val(&a->key, v);
        } else {
            conn_spanmetrics_put_str_value(&a->key, a->dims[i]->def, strlen(a->dims[i]->def));
        }
    }
}

static void put_scope(spm_t *a, const spm_ctx_t *cx)
{
    if (cx->scope_name == NULL) {
        return;
    }
    conn_spanmetrics_put_byte(&a->key, SPM_ATTR_SCOPE_NAME);
    conn_spanmetrics_put_str(&a->key, cx->scope_name, cx->scope_name_len);
    if (cx->scope_version_len > 0) {
        conn_spanmetrics_put_byte(&a->key, SPM_ATTR_SCOPE_VERSION);
        conn_spanmetrics_put_str(&a->key, cx->scope_version, cx->scope_version_len);
    }
}

static int count_in(spm_t *a, int tab, const spm_span_t *sp, uint64_t ns, double d)
{
    if (a->key.failed) {
        return OM_ENOMEM;
    }
    return conn_spanmetrics_part_count(a, tab, sp, ns, d);
}

int conn_spanmetrics_count_span(spm_t *a, const spm_ctx_t *cx, const spm_span_t *sp)
{
    /* An end before the start counts as 0, as in otelcol. */
    uint64_t ns = sp->end > sp->start ? sp->end - sp->start : 0;
    double d = (double)ns / a->unit_div;
    size_t calls_end = a->n_common + a->n_calls_only;
    a->key.len = 0;
    put_defaults(a, cx, sp);
    put_dims(a, sp, 0, a->shared ? a->n_dims : calls_end);
    put_scope(a, cx);
    int rc = count_in(a, 0, sp, ns, d);
    if (rc != 0 || !a->hist_table) {
        return rc;
    }
    a->key.len = 0;
    put_defaults(a, cx, sp);
    put_dims(a, sp, 0, a->n_common);
    put_dims(a, sp, calls_end, a->n_dims);
    put_scope(a, cx);
    return count_in(a, 1, sp, ns, d);
}

void conn_spanmetrics_begin_scope(const spm_t *a, spm_ctx_t *cx, bool has_scope, const char *name,
                                  size_t nl, const char *version, size_t vl)
{
    const om_strlist_t *l = &a->cfg->include_instrumentation_scope;
    cx->scope_name = NULL;
    for (size_t i = 0; has_scope && i < l->n; i++) {
        if (strlen(l->items[i]) == nl && memcmp(l->items[i], name, nl) == 0) {
            cx->scope_name = name;
            cx->scope_name_len = nl;
            cx->scope_version = version;
            cx->scope_version_len = vl;
            return;
        }
    }
}

int conn_spanmetrics_begin_resource(spm_t *a, spm_ctx_t *cx, const spm_kv_t *attrs, size_t n)
{
    const spm_val_t *svc = attr_get(attrs, n, "service.name");
    if (svc == NULL) {
        return 0; /* otelcol skips spans of a resource without service.name */
    }
    *cx = (spm_ctx_t){.service = ""};
    if (!svc->wire && svc->v->value_case == OM_ANYVALUE_STRING) {
        cx->service = svc->v->string_value;
        cx->service_len = strlen(svc->v->string_value);
    } else if (svc->wire) {
        conn_spanmetrics_wire_string(svc->w, svc->wn, &cx->service, &cx->service_len);
    }
    if (resource_key(a, attrs, n) != 0 || conn_spanmetrics_part_begin(a, attrs, n) != 0) {
        return OM_ENOMEM;
    }
    for (size_t i = 0; i < a->n_dims; i++) {
        const spm_val_t *v = attr_get(attrs, n, a->dims[i]->name);
        a->rvals[i] = v != NULL ? *v : (spm_val_t){0};
    }
    return 1;
}

/* ---- from structs ------------------------------------------------------------------------ */

static bool struct_kvs(spm_kv_t **arr, size_t *cap, om_keyvalue_t *const *kvs, size_t n)
{
    if (!conn_spanmetrics_reserve((void **)arr, cap, n, sizeof **arr)) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        const char *k = kvs[i]->key != NULL ? kvs[i]->key : "";
        (*arr)[i] = (spm_kv_t){.k = k, .kn = strlen(k), .val = {.v = kvs[i]->value}};
    }
    return true;
}

static int add_struct_span(spm_t *a, const spm_ctx_t *cx, const om_span_t *s)
{
    spm_span_t sp = {
        .name = s->name != NULL ? s->name : "",
        .kind = (int32_t)s->kind,
        .status = s->status != NULL ? (int32_t)s->status->code : 0,
        .start = s->start_time_unix_nano,
        .end = s->end_time_unix_nano,
        .trace_id = s->trace_id.data,
        .trace_id_len = s->trace_id.len,
        .span_id = s->span_id.data,
        .span_id_len = s->span_id.len,
    };
    sp.name_len = strlen(sp.name);
    if (a->n_dims > 0) {
        if (!struct_kvs(&a->span_kvs, &a->span_kvs_cap, s->attributes, s->n_attributes)) {
            return OM_ENOMEM;
        }
        sp.attrs = a->span_kvs;
        sp.n_attrs = s->n_attributes;
    }
    return conn_spanmetrics_count_span(a, cx, &sp);
}

int conn_spanmetrics_add_resource(spm_t *a, const om_resource_spans_t *rs)
{
    om_keyvalue_t *const *attrs = rs->resource != NULL ? rs->resource->attributes : NULL;
    size_t n = rs->resource != NULL ? rs->resource->n_attributes : 0;
    if (!struct_kvs(&a->kvs, &a->kvs_cap, attrs, n)) {
        return OM_ENOMEM;
    }
    spm_ctx_t cx;
    int rc = conn_spanmetrics_begin_resource(a, &cx, a->kvs, n);
    for (size_t j = 0; rc > 0 && j < rs->n_scope_spans; j++) {
        const om_scope_spans_t *ss = rs->scope_spans[j];
        const om_scope_t *sc = ss->scope;
        const char *name = sc != NULL && sc->name != NULL ? sc->name : "";
        const char *version = sc != NULL && sc->version != NULL ? sc->version : "";
        conn_spanmetrics_begin_scope(a, &cx, sc != NULL, name, strlen(name), version,
                                     strlen(version));
        for (size_t k = 0; rc > 0 && k < ss->n_spans; k++) {
            rc = add_struct_span(a, &cx, ss->spans[k]) == 0 ? 1 : OM_ENOMEM;
        }
    }
    return rc < 0 ? rc : 0;
}

int conn_spanmetrics_scan(spm_t *s, spm_part_t *part, const om_traces_req_t *req)
{
    int rc = 0;
    s->part = part;
    for (size_t i = 0; rc == 0 && req != NULL && i < req->n_resource_spans; i++) {
        rc = conn_spanmetrics_add_resource(s, req->resource_spans[i]);
    }
    s->part = NULL;
    return rc;
}

int conn_spanmetrics_add(spm_t *a, const om_traces_req_t *req, uint64_t now)
{
    conn_spanmetrics_part_reset(&a->own);
    int rc = conn_spanmetrics_scan(a, &a->own, req);
    int mrc = conn_spanmetrics_merge(a, &a->own, now);
    return rc != 0 ? rc : mrc;
}

int conn_spanmetrics_add_wire(spm_t *a, const uint8_t *p, size_t n, uint64_t now)
{
    conn_spanmetrics_part_reset(&a->own);
    int rc = conn_spanmetrics_scan_wire(a, &a->own, p, n);
    int mrc = conn_spanmetrics_merge(a, &a->own, now);
    return rc != 0 ? rc : mrc;
}

/* ---- merging a part ---------------------------------------------------------------------- */

static void series_exemplar(spm_t *a, spm_exemplar_t **ex, uint32_t *n, const spm_exemplar_t *e)
{
    uint32_t max = (uint32_t)a->cfg->exemplars.max_per_data_point;
    if (*n >= max) {
        return;
    }
    if (*ex == NULL) {
        *ex = om_malloc(max * sizeof **ex);
        if (*ex == NULL) {
            return; /* an exemplar is a hint: none this time */
        }
    }
    (*ex)[(*n)++] = *e;
}

/* Entry e of p, counted into s of table t. false when out of memory (nothing counted). */
static bool merge_entry(spm_t *a, const spm_part_t *p, spm_pentry_t *e, spm_table_t *t,
                        spm_series_t *s)
{
    size_t i = (size_t)(e - p->ents);
    bool ovf = s == t->overflow;
    e->merged = s;
    if (t->hists) {
        if (a->bounds != NULL) {
            const uint64_t *b = p->buckets + i * (a->n_bounds + 1);
            for (size_t k = 0; k <= a->n_bounds; k++) {
                s->buckets[k] += b[k];
            }
        } else {
            int64_t ms = a->cfg->histogram.exponential.max_size;
            if (!conn_spanmetrics_expo_merge(&s->expo, &e->expo, ms > 0 ? (uint32_t)ms : 160)) {
                return false;
            }
        }
        s->count += e->count;
        conn_spanmetrics_sum_add(&s->sum_ns, &s->sum_over_ns, e->sum_ns);
        s->sum_over_ns += e->sum_over_ns;
    }
    if (t->sums) {
        s->calls += e->calls;
    }
    /* lookup counted one overflow, counting one by one would have counted one per span */
    a->overflowed += ovf && e->n > 1 ? e->n - 1 : 0;
    return true;
}

int conn_spanmetrics_merge(spm_t *a, spm_part_t *p, uint64_t now)
{
    size_t ex = 0;
    for (size_t gi = 0; gi < p->n_segs; gi++) {
        const spm_pseg_t *g = &p->segs[gi];
        spm_resource_t *r = get_resource(a, p, g);
        if (r == NULL) {
            return OM_ENOMEM;
        }
        for (uint32_t i = g->first; i < g->first + g->n; i++) {
            spm_pentry_t *e = &p->ents[i];
            spm_table_t *t = e->tab ? &r->hist : &r->calls;
            spm_series_t *s = lookup(a, t, p->bytes.p + e->key_at, e->key_len, e->hash, now);
            if (s == NULL || !merge_entry(a, p, e, t, s)) {
                return OM_ENOMEM;
            }
            s->last_seen_ns = now;
        }
        /* The segment's exemplars, in span order, to the series their entries went to (alive
         * until the next segment, which may drop a resource). */
        for (; ex < p->n_ex && p->ex[ex].entry < g->first + g->n; ex++) {
            const spm_pex_t *x = &p->ex[ex];
            spm_series_t *s = p->ents[x->entry].merged;
            if (x->which) {
                series_exemplar(a, &s->ex_hist, &s->n_ex_hist, &x->ex);
            } else {
                series_exemplar(a, &s->ex_calls, &s->n_ex_calls, &x->ex);
            }
        }
    }
    return 0;
}

/* ---- after a flush ----------------------------------------------------------------------- */

static void series_reset(spm_series_t *s, size_t n_buckets, uint64_t now)
{
    s->calls = 0;
    s->count = 0;
    s->sum_ns = 0;
    s->sum_over_ns = 0;
    if (s->buckets != NULL) {
        memset(s->buckets, 0, n_buckets * sizeof *s->buckets);
    }
    conn_spanmetrics_expo_reset(&s->expo);
    s->start_ns = now;
}

/* One series after a flush; true when it is to be removed (cumulative, expired). */
static bool settle(spm_t *a, spm_table_t *t, spm_series_t *s, uint64_t now)
{
    s->n_ex_calls = s->n_ex_hist = 0;
    s->first = false;
    int64_t exp = a->cfg->metrics_expiration;
    if (!a->delta) {
        s->touched = false;
        return exp > 0 && now - s->last_seen_ns >= (uint64_t)exp;
    }
    if (s->touched) {
        series_reset(s, a->n_bounds + 1, now);
        s->touched = false;
    } else if (!s->idle && s != t->overflow) {
        idle_push(a, s);
    }
    return false;
}

static void settle_table(spm_t *a, spm_table_t *t, uint64_t now)
{
    spm_series_t *doomed = NULL;
    for (size_t i = 0; i < t->cap; i++) {
        spm_series_t *s = t->slots[i];
        if (s != NULL && settle(a, t, s, now)) {
            s->idle_next = doomed; /* not idle when cumulative: the link is free */
            doomed = s;
        }
    }
    while (doomed != NULL) {
        spm_series_t *s = doomed;
        doomed = s->idle_next;
        s->idle_next = NULL;
        conn_spanmetrics_series_free(a, s);
    }
    if (t->overflow != NULL && settle(a, t, t->overflow, now)) {
        conn_spanmetrics_series_free(a, t->overflow);
    }
    t->active = 0;
}

void conn_spanmetrics_after_flush(spm_t *a, uint64_t now)
{
    spm_resource_t *next = NULL;
    for (spm_resource_t *r = a->lru_head; r != NULL; r = next) {
        next = r->lru_next;
        settle_table(a, &r->calls, now);
        settle_table(a, &r->hist, now);
        bool empty = r->calls.n == 0 && r->calls.overflow == NULL && r->hist.n == 0 &&
                     r->hist.overflow == NULL;
        if (empty) {
            resource_free(a, r); /* every series expired (or, delta, went idle and was dropped) */
        }
    }
    /* Bounded: each turn frees one idle series. */
    while (a->delta && a->n_idle > (size_t)a->cfg->metric_timestamp_cache_size) {
        conn_spanmetrics_series_free(a, a->idle_head);
    }
}

void conn_spanmetrics_free(spm_t *a)
{
    while (a->lru_head != NULL) {
        resource_free(a, a->lru_head);
    }
    om_free(a->buckets);
    if (!a->scanner) {
        om_free(a->dims);
        om_free(a->bounds);
    }
    om_free(a->rvals);
    om_free(a->sorted);
    om_free(a->kvs);
    om_free(a->spans);
    om_free(a->span_kvs);
    om_free(a->scopes);
    om_free(a->key.p);
    conn_spanmetrics_part_free(&a->own);
    memset(a, 0, sizeof *a);
}
