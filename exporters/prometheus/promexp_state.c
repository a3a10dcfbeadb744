/* promexp_state.c: what the prometheus exporter serves, kept on the loop.
 *
 * One series per (family, label set): the family is the Prometheus name (core translation,
 * src/prom.c) with its type and help; the label set is the point's attributes, the scope's
 * (otel_scope_name / _version / _schema_url and otel_scope_<attribute>), job and instance
 * from the resource and the const labels, rendered once into the exposition's label text
 * when the series is made. That text is the series' key (with the family) and what a scrape
 * writes, so a scrape copies each series' labels with one memcpy and formats its numbers.
 *
 * Updates follow otelcol-contrib's exporter/prometheusexporter/accumulator.go:
 *   - gauges, cumulative sums and summaries keep the latest point (an older one is ignored);
 *   - a delta monotonic sum whose start is the stored point's time adds to it (keeping the
 *     stored start); any other delta point replaces it (a restart);
 *   - histograms: cumulative keep the latest; a delta whose start is the stored point's time
 *     adds bucket by bucket (the newer point's buckets alone when the bounds differ), one
 *     that starts later replaces it (a reset), one that starts earlier is dropped (misaligned);
 *   - exponential histograms the same (count and sum: the text formats carry no more of them;
 *     upstream's accumulator never stores a second point of one, which we take as a bug);
 *   - a point flagged NoRecordedValue removes its series.
 * Exemplars (collector.go getPromExemplars, client_golang's NewMetricWithExemplars): the
 * latest point's, written in OpenMetrics scrapes only: on a counter its last one; on a
 * histogram each goes to the first bucket whose bound holds its value (+Inf above them all),
 * the last one of a bucket winning; labels span_id and trace_id (hex), its value and time.
 * Expiry: a series not updated for metric_expiration goes (at each scrape and on the
 * exporter's timer), and a family with no series left goes with it, so memory follows the
 * live series. target_info: one series per resource (job + instance) seen within the
 * expiration, its labels the resource's other attributes (collector.go
 * createTargetInfoMetrics). What a scrape writes for each type is in render_family.
 *
 * Loop thread only; no I/O. Memory: a series is one allocation (struct + label text), a
 * histogram's buckets or a summary's quantiles a second; nothing per point otherwise. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "promexp.h"

enum { K_NUMBER, K_HIST, K_EXPHIST, K_SUMMARY };

typedef struct hist {
    uint32_t n_bounds;
    bool has_sum;
    uint64_t count;
    double sum;
    double *bounds;   /* n_bounds */
    uint64_t *counts; /* n_bounds + 1, per bucket (not cumulative) */
} hist_t;

typedef struct exph {
    uint64_t count;
    double sum;
} exph_t;

typedef struct summ {
    uint32_t n;
    uint64_t count;
    double sum;
    double *q, *v; /* n each */
} summ_t;

/* A series' exemplars: one slot for a counter, n_bounds + 1 for a histogram (labels NULL in
 * a slot with none). One allocation: this, the slots, then their label text. */
typedef struct exset {
    uint32_t n;
    om_prom_exemplar_t v[];
} exset_t;

typedef struct family family_t;

typedef struct series {
    struct series *hnext; /* hash chain */
    struct series *fnext; /* the family's series, in creation order */
    family_t *fam;
    uint64_t ts_ns, start_ns;
    uint64_t updated_ms;
    union {
        double value; /* K_NUMBER */
        hist_t *h;
        exph_t *e;
        summ_t *s;
    };
    exset_t *ex; /* NULL: none */
    uint32_t hash;
    uint32_t labels_len;
    uint8_t kind;
    char labels[]; /* rendered label text, NUL-terminated */
} series_t;

struct family {
    family_t *next;  /* all families, in creation order */
    family_t *hnext; /* by name */
    series_t *head, *tail;
    size_t n;
    om_prom_type_t type;
    uint32_t hash;
    size_t name_len;
    char *help;
    bool warned; /* a type conflict was logged */
    char name[];
};

typedef struct resource {
    struct resource *next, *hnext;
    uint64_t updated_ms;
    uint32_t hash;
    uint32_t key_len; /* key: job \xff instance */
    char *labels;     /* rendered target_info labels (owned) */
    char key[];
} resource_t;

struct promexp_state {
    const promexp_opts_t *o;
    series_t **table;
    size_t table_cap, n_series;
    family_t *families, *families_tail;
    family_t **ftable;
    size_t ftable_cap, n_families;
    resource_t *resources;
    resource_t **rtable;
    size_t rtable_cap, n_resources;
    /* Scratch for the point being taken. */
    om_prom_labels_t labels;
    om_strbuf_t text, name, job, instance, tmp;
    char *target_name;
};

/* ------------------------------------------------------------------------------------------ */
/* Hashing                                                                                    */

static uint32_t hash_bytes(const char *p, size_t n, uint64_t seed)
{
    uint64_t h = 0x9e3779b97f4a7c15u ^ seed ^ n;
    while (n >= 8) {
        uint64_t w;
        om_copy(&w, p, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdu;
        h ^= h >> 32;
        p += 8;
        n -= 8;
    }
    uint64_t w = 0;
    if (n > 0) { /* p may be NULL for an empty key */
        om_copy(&w, p, n);
    }
    h = (h ^ w) * 0xc4ceb9fe1a85ec53u;
    return (uint32_t)(h ^ (h >> 33));
}

/* Grow a chained table to twice its size (or 256), rehashing with get_hash / get_next. */
#define REHASH(type, tab, cap, hashf, nextf)                                                       \
    do {                                                                                           \
        size_t ncap = (cap) != 0 ? (cap)*2 : 256;                                                  \
        type **nt = om_calloc(ncap, sizeof *nt);                                                   \
        if (nt == NULL) {                                                                          \
            break;                                                                                 \
        }                                                                                          \
        for (size_t i_ = 0; i_ < (cap); i_++) {                                                    \
            type *x_ = (tab)[i_];                                                                  \
            while (x_ != NULL) {                                                                   \
                type *nx_ = x_->nextf;                                                             \
                size_t j_ = x_->hashf & (ncap - 1);                                                \
                x_->nextf = nt[j_];                                                                \
                nt[j_] = x_;                                                                       \
                x_ = nx_;                                                                          \
            }                                                                                      \
        }                                                                                          \
        om_free(tab);                                                                              \
        (tab) = nt;                                                                                \
        (cap) = ncap;                                                                              \
    } while (0)

/* ------------------------------------------------------------------------------------------ */
/* Families                                                                                   */

static family_t *family_get(promexp_state_t *s, const char *name, size_t len, om_prom_type_t type,
                            const char *help, bool *conflict)
{
    *conflict = false;
    uint32_t h = hash_bytes(name, len, 1);
    for (family_t *f = s->ftable_cap ? s->ftable[h & (s->ftable_cap - 1)] : NULL; f != NULL;
         f = f->hnext) {
        if (f->hash == h && f->name_len == len && om_same(f->name, name, len)) {
            if (f->type != type) {
                *conflict = true;
                if (!f->warned) {
                    f->warned = true;
                    OM_CLOG(s->o->log_name, OM_LOG_WARN,
                            "instrument type conflict for %s: points of another type dropped "
                            "while it exists",
                            f->name);
                }
                return NULL;
            }
            return f; /* help: the first one's, as upstream */
        }
    }
    if (s->n_families + 1 > s->ftable_cap) {
        REHASH(family_t, s->ftable, s->ftable_cap, hash, hnext);
        if (s->ftable_cap == 0) {
            return NULL;
        }
    }
    family_t *f = om_calloc(1, sizeof *f + len + 1);
    if (f == NULL) {
        return NULL;
    }
    om_copy(f->name, name, len);
    f->name_len = len;
    f->hash = h;
    f->type = type;
    f->help = help != NULL && help[0] != '\0' ? om_strdup(help) : NULL;
    size_t j = h & (s->ftable_cap - 1);
    f->hnext = s->ftable[j];
    s->ftable[j] = f;
    if (s->families_tail != NULL) {
        s->families_tail->next = f;
    } else {
        s->families = f;
    }
    s->families_tail = f;
    s->n_families++;
    return f;
}

/* ------------------------------------------------------------------------------------------ */
/* Series                                                                                     */

static void series_free_data(series_t *x)
{
    if (x->kind != K_NUMBER) {
        om_free(x->h); /* the union's pointer, whatever its kind */
    }
    om_free(x->ex);
}

/* ------------------------------------------------------------------------------------------ */
/* Exemplars                                                                                  */

static size_t hex_id(const ProtobufCBinaryData *id, char *out)
{
    static const char hex[] = "0123456789abcdef";
    size_t any = 0;
    for (size_t i = 0; i < id->len && i < 16; i++) {
        any |= id->data[i];
    }
    if (any == 0) {
        return 0; /* empty or all zero: no id */
    }
    size_t n = id->len < 16 ? id->len : 16;
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[id->data[i] >> 4];
        out[2 * i + 1] = hex[id->data[i] & 15];
    }
    out[2 * n] = '\0';
    return 2 * n;
}

#define EX_STACK_SLOTS 32

static void ex_scratch_free(bool heap, const om_exemplar_t **pick, size_t *offs)
{
    if (heap) {
        om_free(pick);
        om_free(offs);
    }
}

/* x's exemplars from a point's: slots 1 (a counter: the last exemplar) or n_bounds + 1 (a
 * histogram with these sorted bounds). Replaces what x had; none when the point has none. */
static int ex_take(promexp_state_t *s, series_t *x, om_exemplar_t *const *xs, size_t n,
                   const double *bounds, size_t n_bounds, bool hist)
{
    om_free(x->ex);
    x->ex = NULL;
    if (n == 0) {
        return 0;
    }
    size_t slots = hist ? n_bounds + 1 : 1;
    /* Scratch on the stack for the usual sizes, else on the heap (the bounds come from the
     * wire: no VLA of their size). */
    const om_exemplar_t *pick_s[EX_STACK_SLOTS] = {0};
    size_t offs_s[EX_STACK_SLOTS + 1] = {0};
    bool heap = slots > EX_STACK_SLOTS;
    const om_exemplar_t **pick = heap ? om_calloc(slots, sizeof *pick) : pick_s;
    size_t *offs = heap ? om_calloc(slots + 1, sizeof *offs) : offs_s;
    if (pick == NULL || offs == NULL) {
        ex_scratch_free(heap, pick, offs);
        return OM_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        const om_exemplar_t *e = xs[i];
        if (e == NULL) {
            continue;
        }
        double v = e->value_case == OPENTELEMETRY__PROTO__METRICS__V1__EXEMPLAR__VALUE_AS_INT
                       ? (double)e->as_int
                       : e->as_double;
        size_t k = 0;
        while (hist && k < n_bounds && !(v <= bounds[k])) {
            k++;
        }
        pick[k] = e;
    }
    /* The label text of every slot, one after the other, then one allocation. */
    om_strbuf_t *t = &s->tmp;
    om_strbuf_reset(t);
    for (size_t k = 0; k < slots; k++) {
        offs[k] = t->len;
        if (pick[k] == NULL) {
            continue;
        }
        char span[33], trace[33];
        om_label_t l[2];
        size_t nl = 0;
        if (hex_id(&pick[k]->span_id, span) > 0) {
            l[nl++] = (om_label_t){"span_id", span};
        }
        if (hex_id(&pick[k]->trace_id, trace) > 0) {
            l[nl++] = (om_label_t){"trace_id", trace};
        }
        om_prom_render_labels(l, nl, t);
    }
    offs[slots] = t->len;
    size_t head = sizeof(exset_t) + slots * sizeof(om_prom_exemplar_t);
    exset_t *set = t->failed ? NULL : om_calloc(1, head + t->len + 1);
    if (set == NULL) {
        ex_scratch_free(heap, pick, offs);
        return OM_ENOMEM;
    }
    char *text = (char *)set + head;
    if (t->len > 0) {
        om_copy(text, t->data, t->len);
    }
    set->n = (uint32_t)slots;
    for (size_t k = 0; k < slots; k++) {
        const om_exemplar_t *e = pick[k];
        if (e == NULL) {
            continue;
        }
        set->v[k] = (om_prom_exemplar_t){
            .labels = text + offs[k],
            .labels_len = offs[k + 1] - offs[k],
            .value = e->value_case == OPENTELEMETRY__PROTO__METRICS__V1__EXEMPLAR__VALUE_AS_INT
                         ? (double)e->as_int
                         : e->as_double,
            .has_ts = e->time_unix_nano != 0,
            .ts_ms = (int64_t)(e->time_unix_nano / 1000000u)};
    }
    x->ex = set;
    ex_scratch_free(heap, pick, offs);
    return 0;
}

/* The exemplar of slot k, or NULL. */
static const om_prom_exemplar_t *ex_at(const series_t *x, size_t k)
{
    return x->ex != NULL && k < x->ex->n && x->ex->v[k].labels != NULL ? &x->ex->v[k] : NULL;
}

static series_t *series_find(promexp_state_t *s, family_t *f, const char *labels, size_t len,
                             uint32_t h)
{
    for (series_t *x = s->table_cap ? s->table[h & (s->table_cap - 1)] : NULL; x != NULL;
         x = x->hnext) {
        if (x->hash == h && x->fam == f && x->labels_len == len &&
            om_same(x->labels, labels, len)) {
            return x;
        }
    }
    return NULL;
}

static series_t *series_new(promexp_state_t *s, family_t *f, const char *labels, size_t len,
                            uint32_t h, int kind)
{
    if (s->n_series + 1 > s->table_cap) {
        REHASH(series_t, s->table, s->table_cap, hash, hnext);
        if (s->table_cap == 0) {
            return NULL;
        }
    }
    series_t *x = om_calloc(1, sizeof *x + len + 1);
    if (x == NULL) {
        return NULL;
    }
    om_copy(x->labels, labels, len);
    x->labels_len = (uint32_t)len;
    x->hash = h;
    x->fam = f;
    x->kind = (uint8_t)kind;
    size_t j = h & (s->table_cap - 1);
    x->hnext = s->table[j];
    s->table[j] = x;
    if (f->tail != NULL) {
        f->tail->fnext = x;
    } else {
        f->head = x;
    }
    f->tail = x;
    f->n++;
    s->n_series++;
    return x;
}

/* Unlink x from the hash table (its family list is the caller's). */
static void series_unhash(promexp_state_t *s, series_t *x)
{
    series_t **p = &s->table[x->hash & (s->table_cap - 1)];
    while (*p != x) {
        p = &(*p)->hnext;
    }
    *p = x->hnext;
    s->n_series--;
}

static void series_remove(promexp_state_t *s, series_t *x)
{
    family_t *f = x->fam;
    series_t *prev = NULL;
    for (series_t *y = f->head; y != x; y = y->fnext) {
        prev = y;
    }
    if (prev != NULL) {
        prev->fnext = x->fnext;
    } else {
        f->head = x->fnext;
    }
    if (f->tail == x) {
        f->tail = prev;
    }
    f->n--;
    series_unhash(s, x);
    series_free_data(x);
    om_free(x);
}

/* ------------------------------------------------------------------------------------------ */
/* Points                                                                                     */

static double number_value(const om_number_dp_t *p)
{
    return p->value_case == OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT
               ? (double)p->as_int
               : p->as_double;
}

/* Returns whether p was taken. */
static bool take_number(series_t *x, bool fresh, const om_prom_class_t *c, const om_number_dp_t *p)
{
    if (!fresh && p->time_unix_nano < x->ts_ns) {
        return false; /* only the latest point */
    }
    double v = number_value(p);
    uint64_t start = p->start_time_unix_nano;
    if (!fresh && c->delta && p->start_time_unix_nano == x->ts_ns) {
        v += x->value; /* delta to cumulative */
        start = x->start_ns;
    }
    x->value = v;
    x->start_ns = start;
    x->ts_ns = p->time_unix_nano;
    return true;
}

static hist_t *hist_alloc(size_t n_bounds)
{
    hist_t *h =
        om_calloc(1, sizeof *h + n_bounds * sizeof(double) + (n_bounds + 1) * sizeof(uint64_t));
    if (h != NULL) {
        h->n_bounds = (uint32_t)n_bounds;
        h->bounds = (double *)(h + 1);
        h->counts = (uint64_t *)(h->bounds + n_bounds);
    }
    return h;
}

/* The point's buckets, as OTLP defines them: bounds + 1 counts (missing counts are 0). */
static int hist_set(series_t *x, const om_histogram_dp_t *p)
{
    size_t nb = p->n_explicit_bounds;
    if (x->h == NULL || x->h->n_bounds != nb) {
        hist_t *h = hist_alloc(nb);
        if (h == NULL) {
            return OM_ENOMEM;
        }
        om_free(x->h);
        x->h = h;
    }
    hist_t *h = x->h;
    om_copy(h->bounds, p->explicit_bounds, nb * sizeof(double));
    for (size_t i = 0; i <= nb; i++) {
        h->counts[i] = i < p->n_bucket_counts ? p->bucket_counts[i] : 0;
    }
    h->count = p->count;
    h->has_sum = p->_sum_case == OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___SUM_SUM;
    h->sum = h->has_sum ? p->sum : 0;
    return 0;
}

/* accumulateHistogramValues: the stored point plus p, whichever is newer giving the bounds. */
static int hist_add(series_t *x, const om_histogram_dp_t *p)
{
    hist_t *h = x->h;
    bool match = h->n_bounds == p->n_explicit_bounds &&
                 om_same(h->bounds, p->explicit_bounds, h->n_bounds * sizeof(double));
    if (!match) {
        uint64_t start = x->start_ns;
        bool newer = p->time_unix_nano >= x->ts_ns;
        if (newer && hist_set(x, p) != 0) {
            return OM_ENOMEM;
        }
        x->start_ns = start;
        x->ts_ns = newer ? p->time_unix_nano : x->ts_ns;
        return 0;
    }
    for (size_t i = 0; i <= h->n_bounds; i++) {
        h->counts[i] += i < p->n_bucket_counts ? p->bucket_counts[i] : 0;
    }
    h->count += p->count;
    bool has = p->_sum_case == OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___SUM_SUM;
    h->sum += has ? p->sum : 0;
    h->has_sum = h->has_sum || has;
    x->ts_ns = p->time_unix_nano > x->ts_ns ? p->time_unix_nano : x->ts_ns;
    return 0;
}

/* Delta alignment (accumulator.go): 1 add, 0 replace (a reset), -1 drop (misaligned). */
static int delta_alignment(const series_t *x, uint64_t start)
{
    if (start == x->ts_ns) {
        return 1;
    }
    return start > x->ts_ns ? 0 : -1;
}

/* Sets *taken when p was taken (not older than the stored point, nor misaligned). */
static int take_histogram(series_t *x, bool fresh, const om_prom_class_t *c,
                          const om_histogram_dp_t *p, bool *taken)
{
    if (fresh || !c->delta) {
        if (!fresh && p->time_unix_nano < x->ts_ns) {
            return 0;
        }
        x->start_ns = p->start_time_unix_nano;
        x->ts_ns = p->time_unix_nano;
        *taken = true;
        return hist_set(x, p);
    }
    int a = delta_alignment(x, p->start_time_unix_nano);
    if (a < 0) {
        return 0;
    }
    *taken = true;
    if (a == 0) {
        x->start_ns = p->start_time_unix_nano;
        x->ts_ns = p->time_unix_nano;
        return hist_set(x, p);
    }
    return hist_add(x, p);
}

/* The histogram's bounds in order (then exemplars go by bucket as rendered), or none. */
static int take_hist_exemplars(promexp_state_t *s, series_t *x, const om_histogram_dp_t *p)
{
    const hist_t *h = x->h;
    bool sorted = h != NULL;
    for (uint32_t i = 1; sorted && i < h->n_bounds; i++) {
        sorted = h->bounds[i - 1] < h->bounds[i];
    }
    if (!sorted) {
        om_free(x->ex);
        x->ex = NULL;
        return 0; /* rare (see render_hist): no exemplars rather than misplaced ones */
    }
    return ex_take(s, x, p->exemplars, p->n_exemplars, h->bounds, h->n_bounds, true);
}

static int take_exp_histogram(series_t *x, bool fresh, const om_prom_class_t *c,
                              const om_exp_histogram_dp_t *p)
{
    if (x->e == NULL) {
        x->e = om_calloc(1, sizeof *x->e);
        if (x->e == NULL) {
            return OM_ENOMEM;
        }
    }
    double sum =
        p->_sum_case ==
                OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT___SUM_SUM
            ? p->sum
            : 0;
    int a = fresh || !c->delta ? 0 : delta_alignment(x, p->start_time_unix_nano);
    if (!fresh && !c->delta && p->time_unix_nano < x->ts_ns) {
        return 0;
    }
    if (a < 0) {
        return 0;
    }
    if (a == 1) {
        x->e->count += p->count;
        x->e->sum += sum;
        x->ts_ns = p->time_unix_nano > x->ts_ns ? p->time_unix_nano : x->ts_ns;
        return 0;
    }
    x->e->count = p->count;
    x->e->sum = sum;
    x->start_ns = p->start_time_unix_nano;
    x->ts_ns = p->time_unix_nano;
    return 0;
}

static int take_summary(series_t *x, bool fresh, const om_summary_dp_t *p)
{
    if (!fresh && p->time_unix_nano < x->ts_ns) {
        return 0;
    }
    size_t n = p->n_quantile_values;
    if (x->s == NULL || x->s->n != n) {
        summ_t *s = om_calloc(1, sizeof *s + 2 * n * sizeof(double));
        if (s == NULL) {
            return OM_ENOMEM;
        }
        s->n = (uint32_t)n;
        s->q = (double *)(s + 1);
        s->v = s->q + n;
        om_free(x->s);
        x->s = s;
    }
    for (size_t i = 0; i < n; i++) {
        x->s->q[i] = p->quantile_values[i]->quantile;
        x->s->v[i] = p->quantile_values[i]->value;
    }
    x->s->count = p->count;
    x->s->sum = p->sum;
    x->start_ns = p->start_time_unix_nano;
    x->ts_ns = p->time_unix_nano;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Labels                                                                                     */

/* The resource's and scope's labels, then the point's: rendered into s->text. */
typedef struct ctx {
    const om_resource_t *res;
    const om_scope_metrics_t *sm;
    bool has_job, has_instance;
} ctx_t;

static int point_labels(promexp_state_t *s, const ctx_t *cx, om_keyvalue_t *const *attrs, size_t n)
{
    om_prom_labels_t *l = &s->labels;
    om_prom_labels_reset(l);
    bool r2t = s->o->r2t && cx->res != NULL;
    int rc = om_prom_labels_add_attrs(l, NULL, attrs, n, r2t ? cx->res->attributes : NULL,
                                      r2t ? cx->res->n_attributes : 0);
    const om_scope_t *scope = cx->sm->scope;
    if (rc == 0 && scope != NULL) {
        rc = om_prom_labels_add_attrs(l, "otel_scope_", scope->attributes, scope->n_attributes,
                                      NULL, 0);
    }
    if (rc == 0) {
        rc = om_prom_labels_set(l, "otel_scope_name",
                                scope != NULL && scope->name != NULL ? scope->name : "", true);
    }
    if (rc == 0) {
        rc =
            om_prom_labels_set(l, "otel_scope_version",
                               scope != NULL && scope->version != NULL ? scope->version : "", true);
    }
    if (rc == 0) {
        rc = om_prom_labels_set(l, "otel_scope_schema_url",
                                cx->sm->schema_url != NULL ? cx->sm->schema_url : "", true);
    }
    if (rc == 0 && cx->has_job) {
        rc = om_prom_labels_set(l, "job", om_strbuf_str(&s->job), true);
    }
    if (rc == 0 && cx->has_instance) {
        rc = om_prom_labels_set(l, "instance", om_strbuf_str(&s->instance), true);
    }
    for (size_t i = 0; i < s->o->n_const_labels && rc == 0; i++) {
        rc = om_prom_labels_set(l, s->o->const_labels[i].key, s->o->const_labels[i].value, false);
    }
    if (rc != 0 || l->text.failed) {
        return OM_ENOMEM;
    }
    om_prom_labels_finish(l);
    om_strbuf_reset(&s->text);
    om_prom_render_labels(l->v, l->n, &s->text);
    return s->text.failed ? OM_ENOMEM : 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Resources (target_info)                                                                    */

static int resource_seen(promexp_state_t *s, const om_resource_t *res, const ctx_t *cx,
                         uint64_t now_ms)
{
    if (!cx->has_job && !cx->has_instance) {
        return 0; /* resourceSignature "": no target_info */
    }
    om_strbuf_reset(&s->tmp);
    om_strbuf_append(&s->tmp, s->job.data, s->job.len);
    om_strbuf_putc(&s->tmp, '\xff');
    om_strbuf_append(&s->tmp, s->instance.data, s->instance.len);
    if (s->tmp.failed) {
        return OM_ENOMEM;
    }
    uint32_t h = hash_bytes(s->tmp.data, s->tmp.len, 2);
    resource_t *r = s->rtable_cap ? s->rtable[h & (s->rtable_cap - 1)] : NULL;
    while (r != NULL && !(r->hash == h && r->key_len == s->tmp.len &&
                          om_same(r->key, s->tmp.data, s->tmp.len))) {
        r = r->hnext;
    }
    if (r != NULL) {
        r->updated_ms = now_ms;
        return 0;
    }
    /* The resource's attributes but those job and instance come from (collector.go); values of
     * clashing names always joined there. */
    om_prom_labels_t *l = &s->labels;
    om_prom_labels_reset(l);
    int rc = 0;
    for (size_t i = 0; i < res->n_attributes && rc == 0; i++) {
        om_keyvalue_t *kv = res->attributes[i];
        if (kv != NULL && kv->key != NULL && !om_prom_identifying_attr(kv->key)) {
            rc = om_prom_labels_add_attrs(l, NULL, &res->attributes[i], 1, NULL, 0);
        }
    }
    if (rc == 0 && cx->has_job) {
        rc = om_prom_labels_set(l, "job", om_strbuf_str(&s->job), true);
    }
    if (rc == 0 && cx->has_instance) {
        rc = om_prom_labels_set(l, "instance", om_strbuf_str(&s->instance), true);
    }
    if (rc != 0 || l->text.failed) {
        return OM_ENOMEM;
    }
    om_prom_labels_finish(l);
    om_strbuf_t text;
    om_strbuf_init(&text, 0);
    om_prom_render_labels(l->v, l->n, &text);
    if (s->n_resources + 1 > s->rtable_cap) {
        REHASH(resource_t, s->rtable, s->rtable_cap, hash, hnext);
    }
    r = s->rtable_cap != 0 ? om_calloc(1, sizeof *r + s->tmp.len + 1) : NULL;
    if (r == NULL || text.failed) {
        om_free(r);
        om_strbuf_free(&text);
        return OM_ENOMEM;
    }
    om_copy(r->key, s->tmp.data, s->tmp.len);
    r->key_len = (uint32_t)s->tmp.len;
    r->hash = h;
    r->labels = om_strbuf_steal(&text, NULL);
    r->updated_ms = now_ms;
    size_t j = h & (s->rtable_cap - 1);
    r->hnext = s->rtable[j];
    s->rtable[j] = r;
    r->next = s->resources;
    s->resources = r;
    s->n_resources++;
    om_strbuf_free(&text);
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Taking a batch                                                                             */

static size_t point_count(const om_metric_t *m)
{
    switch (m->data_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
        return m->gauge->n_data_points;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
        return m->sum->n_data_points;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
        return m->histogram->n_data_points;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
        return m->exponential_histogram->n_data_points;
    default:
        return m->summary->n_data_points;
    }
}

/* The i-th point's attributes and flags. */
static void point_meta(const om_metric_t *m, size_t i, om_keyvalue_t ***attrs, size_t *n,
                       uint32_t *flags, int *kind)
{
#define PM(field, k)                                                                               \
    do {                                                                                           \
        *attrs = m->field->data_points[i]->attributes;                                             \
        *n = m->field->data_points[i]->n_attributes;                                               \
        *flags = m->field->data_points[i]->flags;                                                  \
        *kind = (k);                                                                               \
    } while (0)
    switch (m->data_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
        PM(gauge, K_NUMBER);
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
        PM(sum, K_NUMBER);
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
        PM(histogram, K_HIST);
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
        PM(exponential_histogram, K_EXPHIST);
        break;
    default:
        PM(summary, K_SUMMARY);
        break;
    }
#undef PM
}

static int take_point(promexp_state_t *s, series_t *x, bool fresh, const om_prom_class_t *c,
                      const om_metric_t *m, size_t i)
{
    switch (x->kind) {
    case K_NUMBER: {
        const om_number_dp_t *p =
            m->data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE
                ? m->gauge->data_points[i]
                : m->sum->data_points[i];
        bool taken = take_number(x, fresh, c, p);
        /* Exemplars on counters only (OpenMetrics has none on gauges). */
        return taken && c->type == OM_PROM_COUNTER
                   ? ex_take(s, x, p->exemplars, p->n_exemplars, NULL, 0, false)
                   : 0;
    }
    case K_HIST: {
        bool taken = false;
        const om_histogram_dp_t *p = m->histogram->data_points[i];
        int rc = take_histogram(x, fresh, c, p, &taken);
        return rc == 0 && taken ? take_hist_exemplars(s, x, p) : rc;
    }
    case K_EXPHIST:
        return take_exp_histogram(x, fresh, c, m->exponential_histogram->data_points[i]);
    default:
        return take_summary(x, fresh, m->summary->data_points[i]);
    }
}

static int take_metric(promexp_state_t *s, const ctx_t *cx, const om_metric_t *m, uint64_t now_ms)
{
    om_prom_class_t c;
    if (om_prom_classify(m, &c) != 0) {
        return 0;
    }
    om_strbuf_reset(&s->name);
    if (om_prom_metric_name(s->o->ns, s->o->suffixes, m->name, m->unit, &c, &s->name) != 0) {
        return 0;
    }
    size_t np = point_count(m);
    if (np == 0) {
        return 0;
    }
    bool conflict;
    family_t *f = family_get(s, s->name.data, s->name.len, c.type, m->description, &conflict);
    if (f == NULL) {
        return conflict ? 0 : OM_ENOMEM;
    }
    int taken = 0;
    for (size_t i = 0; i < np; i++) {
        om_keyvalue_t **attrs;
        size_t n;
        uint32_t flags;
        int kind;
        point_meta(m, i, &attrs, &n, &flags, &kind);
        if (point_labels(s, cx, attrs, n) != 0) {
            return OM_ENOMEM;
        }
        uint32_t h = hash_bytes(s->text.data, s->text.len, (uint64_t)(uintptr_t)f);
        series_t *x = series_find(s, f, s->text.data, s->text.len, h);
        if ((flags & 1u) != 0) { /* NoRecordedValue: the series goes */
            if (x != NULL) {
                series_remove(s, x);
            }
            continue;
        }
        bool fresh = x == NULL || x->kind != kind;
        if (x != NULL && x->kind != kind) {
            series_free_data(x);
            x->h = NULL;
            x->kind = (uint8_t)kind;
        }
        if (x == NULL) {
            x = series_new(s, f, s->text.data, s->text.len, h, kind);
            if (x == NULL) {
                return OM_ENOMEM;
            }
        }
        if (take_point(s, x, fresh, &c, m, i) != 0) {
            return OM_ENOMEM;
        }
        x->updated_ms = now_ms;
        taken++;
    }
    return taken;
}

int promexp_state_update(promexp_state_t *s, const om_batch_t *b, uint64_t now_ms)
{
    const om_metrics_req_t *req = b->metrics;
    int total = 0;
    for (size_t r = 0; req != NULL && r < req->n_resource_metrics; r++) {
        const om_resource_metrics_t *rm = req->resource_metrics[r];
        ctx_t cx = {.res = rm->resource};
        om_strbuf_reset(&s->job);
        om_strbuf_reset(&s->instance);
        cx.has_job = om_prom_job(rm->resource, &s->job);
        cx.has_instance = om_prom_instance(rm->resource, &s->instance);
        bool any = false;
        for (size_t k = 0; k < rm->n_scope_metrics; k++) {
            cx.sm = rm->scope_metrics[k];
            for (size_t i = 0; cx.sm != NULL && i < cx.sm->n_metrics; i++) {
                int n = take_metric(s, &cx, cx.sm->metrics[i], now_ms);
                if (n < 0) {
                    return n;
                }
                total += n;
                any = any || n > 0;
            }
        }
        if (any && rm->resource != NULL && resource_seen(s, rm->resource, &cx, now_ms) != 0) {
            return OM_ENOMEM;
        }
    }
    return total;
}

/* ------------------------------------------------------------------------------------------ */
/* Expiry                                                                                     */

size_t promexp_state_expire(promexp_state_t *s, uint64_t now_ms)
{
    if (now_ms < s->o->expiration_ms) {
        return 0;
    }
    uint64_t limit = now_ms - s->o->expiration_ms;
    size_t gone = 0;
    family_t *prevf = NULL;
    for (family_t *f = s->families; f != NULL;) {
        series_t *prev = NULL;
        for (series_t *x = f->head; x != NULL;) {
            series_t *next = x->fnext;
            if (x->updated_ms < limit) {
                if (prev != NULL) {
                    prev->fnext = next;
                } else {
                    f->head = next;
                }
                f->n--;
                series_unhash(s, x);
                series_free_data(x);
                om_free(x);
                gone++;
            } else {
                prev = x;
            }
            x = next;
        }
        f->tail = prev;
        family_t *nextf = f->next;
        if (f->n == 0) { /* the family goes with its last series */
            family_t **p = &s->ftable[f->hash & (s->ftable_cap - 1)];
            while (*p != f) {
                p = &(*p)->hnext;
            }
            *p = f->hnext;
            if (prevf != NULL) {
                prevf->next = nextf;
            } else {
                s->families = nextf;
            }
            if (s->families_tail == f) {
                s->families_tail = prevf;
            }
            s->n_families--;
            om_free(f->help);
            om_free(f);
        } else {
            prevf = f;
        }
        f = nextf;
    }
    resource_t *prevr = NULL;
    for (resource_t *r = s->resources; r != NULL;) {
        resource_t *next = r->next;
        if (r->updated_ms < limit) {
            resource_t **p = &s->rtable[r->hash & (s->rtable_cap - 1)];
            while (*p != r) {
                p = &(*p)->hnext;
            }
            *p = r->hnext;
            if (prevr != NULL) {
                prevr->next = next;
            } else {
                s->resources = next;
            }
            s->n_resources--;
            om_free(r->labels);
            om_free(r);
        } else {
            prevr = r;
        }
        r = next;
    }
    return gone;
}

/* ------------------------------------------------------------------------------------------ */
/* Rendering                                                                                  */

typedef struct render {
    om_strbuf_t *out;
    om_prom_format_t f;
    bool ts;
} render_t;

static void line_ex(render_t *r, const family_t *f, const series_t *x, const char *suffix,
                    const char *key, const char *val, double v, const om_prom_exemplar_t *ex)
{
    om_prom_sample_t smp = {.name = f->name,
                            .name_len = f->name_len,
                            .suffix = suffix,
                            .labels = x->labels,
                            .labels_len = x->labels_len,
                            .extra_key = key,
                            .extra_value = val,
                            .value = v,
                            .has_ts = r->ts,
                            .ts_ms = (int64_t)(x->ts_ns / 1000000u),
                            .exemplar = ex};
    om_prom_write_sample(r->out, r->f, &smp);
}

static void line(render_t *r, const family_t *f, const series_t *x, const char *suffix,
                 const char *key, const char *val, double v)
{
    line_ex(r, f, x, suffix, key, val, v, NULL);
}

static int dbl_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* collector.go convertDoubleHistogram: bounds deduplicated (the first index of each kept) and
 * sorted, cumulative counts; client_golang then adds le="+Inf" (the count), _sum, _count. */
static void render_hist(render_t *r, const family_t *f, const series_t *x)
{
    const hist_t *h = x->h;
    bool sorted = true;
    for (uint32_t i = 1; i < h->n_bounds && sorted; i++) {
        sorted = h->bounds[i - 1] < h->bounds[i];
    }
    uint64_t cum = 0;
    char le[OM_PROM_NUM_MAX];
    if (sorted) {
        for (uint32_t i = 0; i < h->n_bounds; i++) {
            cum += h->counts[i];
            if (isinf(h->bounds[i]) && h->bounds[i] > 0) {
                continue; /* +Inf is written below */
            }
            om_prom_format_g(h->bounds[i], le);
            line_ex(r, f, x, "_bucket", "le", le, (double)cum, ex_at(x, i));
        }
    } else {
        /* Rare: bounds out of order, repeated or NaN. Pair each distinct bound with its first
         * index's count, in order; a NaN bound equals nothing, so it and its count are left out. */
        double *b = om_malloc(h->n_bounds * sizeof *b);
        if (b != NULL) {
            uint32_t m = 0;
            for (uint32_t i = 0; i < h->n_bounds; i++) {
                if (!isnan(h->bounds[i])) {
                    b[m++] = h->bounds[i];
                }
            }
            qsort(b, m, sizeof *b, dbl_cmp);
            for (uint32_t i = 0; i < m; i++) {
                if (i > 0 && b[i] == b[i - 1]) {
                    continue;
                }
                uint32_t k = 0;
                while (h->bounds[k] != b[i]) {
                    k++; /* ends: b[i] is one of the bounds */
                }
                cum += h->counts[k];
                if (!(isinf(b[i]) && b[i] > 0)) {
                    om_prom_format_g(b[i], le);
                    line(r, f, x, "_bucket", "le", le, (double)cum);
                }
            }
            om_free(b);
        }
    }
    line_ex(r, f, x, "_bucket", "le", "+Inf", (double)h->count, ex_at(x, h->n_bounds));
    line(r, f, x, "_sum", NULL, NULL, h->sum);
    line(r, f, x, "_count", NULL, NULL, (double)h->count);
}

/* client_golang's summary: quantiles in order (one per quantile), _sum, _count. */
static void render_summary(render_t *r, const family_t *f, const series_t *x)
{
    const summ_t *s = x->s;
    char q[OM_PROM_NUM_MAX];
    double last = -INFINITY;
    for (uint32_t done = 0; done < s->n; done++) {
        /* The smallest quantile above the last one written (n is small). */
        int best = -1;
        for (uint32_t i = 0; i < s->n; i++) {
            if (s->q[i] > last && (best < 0 || s->q[i] < s->q[best])) {
                best = (int)i;
            }
        }
        if (best < 0) {
            break;
        }
        last = s->q[best];
        om_prom_format_g(s->q[best], q);
        line(r, f, x, NULL, "quantile", q, s->v[best]);
    }
    line(r, f, x, "_sum", NULL, NULL, s->sum);
    line(r, f, x, "_count", NULL, NULL, (double)s->count);
}

static void render_family(render_t *r, const family_t *f)
{
    om_prom_write_family(r->out, r->f, f->name, f->type, f->help);
    /* OpenMetrics: a counter's samples end in _total whatever the family is called. */
    bool om_counter = r->f == OM_PROM_FMT_OPENMETRICS && f->type == OM_PROM_COUNTER;
    bool has_total = f->name_len > 6 && strcmp(f->name + f->name_len - 6, "_total") == 0;
    for (const series_t *x = f->head; x != NULL; x = x->fnext) {
        switch (x->kind) {
        case K_NUMBER:
            line_ex(r, f, x, om_counter && !has_total ? "_total" : NULL, NULL, NULL, x->value,
                    ex_at(x, 0));
            break;
        case K_HIST:
            render_hist(r, f, x);
            break;
        case K_EXPHIST:
            /* The text formats have no native histograms: what client_golang writes for one
             * (the +Inf bucket, sum and count). */
            line(r, f, x, "_bucket", "le", "+Inf", (double)x->e->count);
            line(r, f, x, "_sum", NULL, NULL, x->e->sum);
            line(r, f, x, "_count", NULL, NULL, (double)x->e->count);
            break;
        default:
            render_summary(r, f, x);
            break;
        }
    }
}

void promexp_state_render(promexp_state_t *s, om_prom_format_t f, uint64_t now_ms, om_strbuf_t *out)
{
    promexp_state_expire(s, now_ms);
    render_t r = {.out = out, .f = f, .ts = s->o->send_timestamps};
    if (s->resources != NULL) {
        om_prom_write_family(out, f, s->target_name, OM_PROM_GAUGE, "Target metadata");
        size_t nlen = strlen(s->target_name);
        for (const resource_t *x = s->resources; x != NULL; x = x->next) {
            om_prom_sample_t smp = {.name = s->target_name,
                                    .name_len = nlen,
                                    .labels = x->labels,
                                    .labels_len = strlen(x->labels),
                                    .value = 1};
            om_prom_write_sample(out, f, &smp);
        }
    }
    for (const family_t *fam = s->families; fam != NULL; fam = fam->next) {
        render_family(&r, fam);
    }
    om_prom_write_eof(out, f);
}

size_t promexp_state_series(const promexp_state_t *s)
{
    return s->n_series + s->n_resources;
}

/* ------------------------------------------------------------------------------------------ */

promexp_state_t *promexp_state_new(const promexp_opts_t *o)
{
    promexp_state_t *s = om_calloc(1, sizeof *s);
    if (s == NULL) {
        return NULL;
    }
    s->o = o;
    om_prom_labels_init(&s->labels);
    om_strbuf_t *bufs[] = {&s->text, &s->name, &s->job, &s->instance, &s->tmp};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) {
        om_strbuf_init(bufs[i], 0);
    }
    /* collector.go: the namespace (as a label name) + "_target_info". */
    om_strbuf_t tn;
    om_strbuf_init(&tn, 0);
    if (o->ns != NULL && o->ns[0] != '\0') {
        size_t len = strlen(o->ns);
        char *ns = om_malloc(len + 5);
        if (ns != NULL && om_prom_label_name(o->ns, len, ns, len + 5) > 0) {
            om_strbuf_puts(&tn, ns);
            om_strbuf_putc(&tn, '_');
        }
        om_free(ns);
    }
    om_strbuf_puts(&tn, "target_info");
    s->target_name = tn.failed ? NULL : om_strbuf_steal(&tn, NULL);
    om_strbuf_free(&tn);
    if (s->target_name == NULL) {
        promexp_state_free(s);
        return NULL;
    }
    return s;
}

void promexp_state_free(promexp_state_t *s)
{
    if (s == NULL) {
        return;
    }
    for (family_t *f = s->families; f != NULL;) {
        family_t *nf = f->next;
        for (series_t *x = f->head; x != NULL;) {
            series_t *nx = x->fnext;
            series_free_data(x);
            om_free(x);
            x = nx;
        }
        om_free(f->help);
        om_free(f);
        f = nf;
    }
    for (resource_t *r = s->resources; r != NULL;) {
        resource_t *nr = r->next;
        om_free(r->labels);
        om_free(r);
        r = nr;
    }
    om_free(s->table);
    om_free(s->ftable);
    om_free(s->rtable);
    om_prom_labels_free(&s->labels);
    om_strbuf_free(&s->text);
    om_strbuf_free(&s->name);
    om_strbuf_free(&s->job);
    om_strbuf_free(&s->instance);
    om_strbuf_free(&s->tmp);
    om_free(s->target_name);
    om_free(s);
}
