/* metrics.c: the registry of the collector's own metrics (see om.h).
 *
 * Threads: the registry's lists (metrics, their series, labels) are made and read on the loop
 * thread only, so they need no lock. A series' value is the only thing other threads touch,
 * through relaxed atomics on memory that never moves or goes away before om_metrics_free:
 * the pointer a component keeps is the series' value itself. A series reaches another thread
 * only through something that orders memory (thread creation, the mailbox), so that thread
 * sees it fully made.
 *
 * Sizes: creation and lookups walk lists (a collector has tens of metrics and hundreds of
 * series, made once at start); the hot path never looks anything up. */
#include <math.h>
#include <string.h>

#include "om.h"

typedef struct series series_t;
typedef struct family family_t;

struct om_metric_histogram {
    const family_t *fam;
    _Atomic uint64_t sum_bits;  /* a double's bits */
    _Atomic uint64_t buckets[]; /* fam->def.n_bounds + 1 */
};

struct series {
    series_t *next;
    size_t n_labels;
    om_label_t *labels;           /* sorted by key; keys and values owned */
    om_metric_observe_fn observe; /* observed gauges: NULL while nobody observes */
    void *observe_arg;
    bool observed; /* made by om_metrics_observe: without observe, it has no value to show */
    union {
        om_metric_counter_t counter;
        om_metric_gauge_t gauge;
    } v;
    om_metric_histogram_t *hist; /* histograms: owned */
};

struct family {
    family_t *next;
    om_metric_def_t def; /* name, help, unit and bounds owned */
    series_t *head, *tail;
};

struct om_metrics {
    family_t *head, *tail;
};

/* ------------------------------------------------------------------------------------------ */
/* Doubles in 64-bit atomics                                                                  */

static uint64_t bits_of(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

static double double_of(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

/* Add d to the double whose bits are in *a; lock-free, retried while another thread wins. */
static void atomic_add_double(_Atomic uint64_t *a, double d)
{
    uint64_t old = atomic_load_explicit(a, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(a, &old, bits_of(double_of(old) + d),
                                                  memory_order_relaxed, memory_order_relaxed)) {
    }
}

void om_metric_counter_add_real(om_metric_counter_t *c, double d)
{
    if (c != NULL && d > 0) {
        atomic_add_double(&c->v, d);
    }
}

void om_metric_gauge_set_real(om_metric_gauge_t *g, double v)
{
    if (g != NULL) {
        atomic_store_explicit(&g->v, (int64_t)bits_of(v), memory_order_relaxed);
    }
}

void om_metric_gauge_add_real(om_metric_gauge_t *g, double d)
{
    if (g == NULL) {
        return;
    }
    int64_t old = atomic_load_explicit(&g->v, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&g->v, &old,
                                                  (int64_t)bits_of(double_of((uint64_t)old) + d),
                                                  memory_order_relaxed, memory_order_relaxed)) {
    }
}

void om_metric_histogram_observe(om_metric_histogram_t *h, double v)
{
    if (h == NULL) {
        return;
    }
    const om_metric_def_t *def = &h->fam->def;
    size_t i = 0;
    while (i < def->n_bounds && v > def->bounds[i]) {
        i++;
    }
    atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
    atomic_add_double(&h->sum_bits, v);
}

/* ------------------------------------------------------------------------------------------ */
/* Checking and copying definitions and labels                                                */

static bool name_ok(const char *s, bool colon)
{
    if (s == NULL || s[0] == '\0' || (s[0] >= '0' && s[0] <= '9')) {
        return false;
    }
    for (const char *p = s; *p != '\0'; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || (colon && c == ':');
        if (!ok) {
            return false;
        }
    }
    return true;
}

static int check_def(const om_metric_def_t *def, om_err_t *err)
{
    if (!name_ok(def->name, true)) {
        om_err_set(err, OM_EINVAL, "malformed metric name \"%.100s\"",
                   def->name != NULL ? def->name : "(null)");
        return OM_EINVAL;
    }
    if (def->type == OM_METRIC_HISTOGRAM) {
        bool ok = def->n_bounds <= OM_METRIC_MAX_BOUNDS && (def->n_bounds == 0 || def->bounds);
        for (size_t i = 0; ok && i < def->n_bounds; i++) {
            ok = isfinite(def->bounds[i]) && (i == 0 || def->bounds[i] > def->bounds[i - 1]);
        }
        if (!ok) {
            om_err_set(err, OM_EINVAL,
                       "%s: histogram bounds must be at most %d finite, strictly increasing "
                       "values",
                       def->name, OM_METRIC_MAX_BOUNDS);
            return OM_EINVAL;
        }
    }
    return 0;
}

static int check_labels(const char *metric, const om_label_t *labels, size_t n, om_err_t *err)
{
    if (n > OM_METRIC_MAX_LABELS) {
        om_err_set(err, OM_EINVAL, "%s: more than %d labels", metric, OM_METRIC_MAX_LABELS);
        return OM_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        const char *k = labels[i].key;
        if (!name_ok(k, false) || strncmp(k, "__", 2) == 0 || labels[i].value == NULL) {
            om_err_set(err, OM_EINVAL, "%s: malformed label \"%.100s\"", metric,
                       k != NULL ? k : "(null)");
            return OM_EINVAL;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(labels[j].key, k) == 0) {
                om_err_set(err, OM_EINVAL, "%s: label \"%s\" given twice", metric, k);
                return OM_EINVAL;
            }
        }
    }
    return 0;
}

/* Pointers to the labels sorted by key (n is small: insertion sort). */
static void sort_labels(const om_label_t *labels, size_t n, const om_label_t **out)
{
    for (size_t i = 0; i < n; i++) {
        size_t j = i;
        while (j > 0 && strcmp(out[j - 1]->key, labels[i].key) > 0) {
            out[j] = out[j - 1];
            j--;
        }
        out[j] = &labels[i];
    }
}

static bool same_def(const om_metric_def_t *a, const om_metric_def_t *b)
{
    if (a->type != b->type || a->real != b->real) {
        return false;
    }
    if (a->type != OM_METRIC_HISTOGRAM) {
        return true;
    }
    return a->n_bounds == b->n_bounds &&
           (a->n_bounds == 0 || memcmp(a->bounds, b->bounds, a->n_bounds * sizeof(double)) == 0);
}

static void family_free(family_t *f)
{
    while (f->head != NULL) {
        series_t *s = f->head;
        f->head = s->next;
        for (size_t i = 0; i < s->n_labels; i++) {
            om_free((void *)s->labels[i].key);
            om_free((void *)s->labels[i].value);
        }
        om_free(s->labels);
        om_free(s->hist);
        om_free(s);
    }
    om_free((void *)f->def.name);
    om_free((void *)f->def.help);
    om_free((void *)f->def.unit);
    om_free((void *)f->def.bounds);
    om_free(f);
}

static family_t *family_new(const om_metric_def_t *def)
{
    family_t *f = om_calloc(1, sizeof *f);
    if (f == NULL) {
        return NULL;
    }
    f->def = (om_metric_def_t){.type = def->type, .real = def->real, .level = def->level};
    f->def.name = om_strdup(def->name);
    f->def.help = om_strdup(def->help != NULL ? def->help : "");
    f->def.unit = om_strdup(def->unit != NULL ? def->unit : "");
    bool ok = f->def.name != NULL && f->def.help != NULL && f->def.unit != NULL;
    if (ok && def->type == OM_METRIC_HISTOGRAM && def->n_bounds > 0) {
        double *b = om_malloc(def->n_bounds * sizeof *b);
        if (b != NULL) {
            memcpy(b, def->bounds, def->n_bounds * sizeof *b);
            f->def.bounds = b;
            f->def.n_bounds = def->n_bounds;
        }
        ok = b != NULL;
    }
    if (!ok) {
        family_free(f);
        return NULL;
    }
    return f;
}

/* The family of def's name, made and appended if new. */
static int family_get(om_metrics_t *m, const om_metric_def_t *def, family_t **out, om_err_t *err)
{
    for (family_t *f = m->head; f != NULL; f = f->next) {
        if (strcmp(f->def.name, def->name) == 0) {
            if (!same_def(&f->def, def)) {
                om_err_set(err, OM_EINVAL,
                           "metric %s is already defined with another type or buckets", def->name);
                return OM_EINVAL;
            }
            *out = f;
            return 0;
        }
    }
    family_t *f = family_new(def);
    if (f == NULL) {
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    if (m->tail != NULL) {
        m->tail->next = f;
    } else {
        m->head = f;
    }
    m->tail = f;
    *out = f;
    return 0;
}

/* Whether s has exactly the labels in sorted (n of them). */
static bool series_has(const series_t *s, const om_label_t *const *sorted, size_t n)
{
    if (s->n_labels != n) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (strcmp(s->labels[i].key, sorted[i]->key) != 0 ||
            strcmp(s->labels[i].value, sorted[i]->value) != 0) {
            return false;
        }
    }
    return true;
}

static series_t *series_find(const family_t *f, const om_label_t *labels, size_t n)
{
    const om_label_t *sorted[OM_METRIC_MAX_LABELS];
    sort_labels(labels, n, sorted);
    for (series_t *s = f->head; s != NULL; s = s->next) {
        if (series_has(s, sorted, n)) {
            return s;
        }
    }
    return NULL;
}

static series_t *series_new(const family_t *f, const om_label_t *labels, size_t n)
{
    series_t *s = om_calloc(1, sizeof *s);
    if (s == NULL) {
        return NULL;
    }
    s->labels = om_calloc(n, sizeof *s->labels);
    bool ok = s->labels != NULL;
    const om_label_t *sorted[OM_METRIC_MAX_LABELS];
    sort_labels(labels, n, sorted);
    for (size_t i = 0; ok && i < n; i++) {
        s->labels[i].key = om_strdup(sorted[i]->key);
        s->labels[i].value = om_strdup(sorted[i]->value);
        s->n_labels = i + 1;
        ok = s->labels[i].key != NULL && s->labels[i].value != NULL;
    }
    if (ok && f->def.type == OM_METRIC_HISTOGRAM) {
        size_t nb = f->def.n_bounds + 1;
        s->hist = om_calloc(1, sizeof *s->hist + nb * sizeof s->hist->buckets[0]);
        ok = s->hist != NULL;
        if (ok) {
            s->hist->fam = f;
        }
    }
    if (!ok) {
        for (size_t i = 0; i < s->n_labels; i++) {
            om_free((void *)s->labels[i].key);
            om_free((void *)s->labels[i].value);
        }
        om_free(s->labels);
        om_free(s);
        return NULL;
    }
    return s;
}

/* The series of def{labels}, made if new. */
static int series_get(om_metrics_t *m, const om_metric_def_t *def, om_metric_type_t type,
                      const om_label_t *labels, size_t n, series_t **out, om_err_t *err)
{
    if (m == NULL) {
        om_err_set(err, OM_EINVAL, "no metrics registry");
        return OM_EINVAL;
    }
    int rc = check_def(def, err);
    if (rc == 0 && def->type != type) {
        om_err_set(err, OM_EINVAL, "metric %s: wrong type for this call", def->name);
        rc = OM_EINVAL;
    }
    rc = rc != 0 ? rc : check_labels(def->name, labels, n, err);
    family_t *f = NULL;
    rc = rc != 0 ? rc : family_get(m, def, &f, err);
    if (rc != 0) {
        return rc;
    }
    series_t *s = series_find(f, labels, n);
    if (s == NULL) {
        s = series_new(f, labels, n);
        if (s == NULL) {
            om_err_set(err, OM_ENOMEM, "out of memory");
            return OM_ENOMEM;
        }
        if (f->tail != NULL) {
            f->tail->next = s;
        } else {
            f->head = s;
        }
        f->tail = s;
    }
    *out = s;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Making series                                                                              */

int om_metrics_counter(om_metrics_t *m, const om_metric_def_t *def, const om_label_t *labels,
                       size_t n_labels, om_metric_counter_t **out, om_err_t *err)
{
    series_t *s;
    int rc = series_get(m, def, OM_METRIC_COUNTER, labels, n_labels, &s, err);
    if (rc == 0) {
        *out = &s->v.counter;
    }
    return rc;
}

int om_metrics_gauge(om_metrics_t *m, const om_metric_def_t *def, const om_label_t *labels,
                     size_t n_labels, om_metric_gauge_t **out, om_err_t *err)
{
    series_t *s;
    int rc = series_get(m, def, OM_METRIC_GAUGE, labels, n_labels, &s, err);
    if (rc == 0) {
        *out = &s->v.gauge;
    }
    return rc;
}

int om_metrics_histogram(om_metrics_t *m, const om_metric_def_t *def, const om_label_t *labels,
                         size_t n_labels, om_metric_histogram_t **out, om_err_t *err)
{
    series_t *s;
    int rc = series_get(m, def, OM_METRIC_HISTOGRAM, labels, n_labels, &s, err);
    if (rc == 0) {
        *out = s->hist;
    }
    return rc;
}

int om_metrics_observe(om_metrics_t *m, const om_metric_def_t *def, const om_label_t *labels,
                       size_t n_labels, om_metric_observe_fn fn, void *arg, om_metric_gauge_t **out,
                       om_err_t *err)
{
    series_t *s;
    /* A counter may be observed too: a total kept elsewhere (the process's CPU time). */
    om_metric_type_t type = def->type == OM_METRIC_COUNTER ? OM_METRIC_COUNTER : OM_METRIC_GAUGE;
    int rc = series_get(m, def, type, labels, n_labels, &s, err);
    if (rc != 0) {
        return rc;
    }
    if (s->observe != NULL) {
        om_err_set(err, OM_EINVAL, "metric %s: this series is observed already", def->name);
        return OM_EINVAL;
    }
    s->observe = fn;
    s->observe_arg = arg;
    s->observed = true;
    *out = &s->v.gauge;
    return 0;
}

void om_metrics_unobserve(om_metrics_t *m, om_metric_gauge_t *g)
{
    (void)m;
    if (g == NULL) {
        return;
    }
    series_t *s = (series_t *)(void *)((char *)g - offsetof(series_t, v.gauge));
    s->observe = NULL;
    s->observe_arg = NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* Reading                                                                                    */

/* The series' value now. False for an observed gauge nobody observes any more, which a
 * reader skips: its value would be stale. */
static bool sample(const family_t *f, const series_t *s, om_metric_sample_t *out)
{
    memset(out, 0, offsetof(om_metric_sample_t, buckets));
    out->labels = s->labels;
    out->n_labels = s->n_labels;
    switch (f->def.type) {
    case OM_METRIC_COUNTER:
        if (s->observe != NULL) {
            out->value = s->observe(s->observe_arg);
            return true;
        }
        out->value.u = atomic_load_explicit(&s->v.counter.v, memory_order_relaxed);
        return !s->observed;
    case OM_METRIC_GAUGE:
        if (s->observe != NULL) {
            out->value = s->observe(s->observe_arg);
            return true;
        }
        out->value.i = atomic_load_explicit(&s->v.gauge.v, memory_order_relaxed);
        return !s->observed;
    case OM_METRIC_HISTOGRAM:
        out->count = 0;
        for (size_t i = 0; i <= f->def.n_bounds; i++) {
            out->buckets[i] = atomic_load_explicit(&s->hist->buckets[i], memory_order_relaxed);
            out->count += out->buckets[i];
        }
        out->sum = double_of(atomic_load_explicit(&s->hist->sum_bits, memory_order_relaxed));
        return true;
    }
    return false;
}

int om_metrics_visit(om_metrics_t *m, om_metrics_visit_fn fn, void *arg)
{
    if (m == NULL) {
        return 0;
    }
    om_metric_sample_t smp;
    for (const family_t *f = m->head; f != NULL; f = f->next) {
        for (const series_t *s = f->head; s != NULL; s = s->next) {
            if (!sample(f, s, &smp)) {
                continue;
            }
            int rc = fn(arg, &f->def, &smp);
            if (rc != 0) {
                return rc;
            }
        }
    }
    return 0;
}

int om_metrics_read(om_metrics_t *m, const char *name, const om_label_t *labels, size_t n_labels,
                    const om_metric_def_t **def, om_metric_sample_t *out)
{
    if (m == NULL || n_labels > OM_METRIC_MAX_LABELS) {
        return OM_ENOTFOUND;
    }
    for (const family_t *f = m->head; f != NULL; f = f->next) {
        if (strcmp(f->def.name, name) != 0) {
            continue;
        }
        const series_t *s = series_find(f, labels, n_labels);
        if (s == NULL || !sample(f, s, out)) {
            return OM_ENOTFOUND;
        }
        if (def != NULL) {
            *def = &f->def;
        }
        return 0;
    }
    return OM_ENOTFOUND;
}

/* ------------------------------------------------------------------------------------------ */
/* The registry                                                                               */

om_metrics_t *om_metrics_new(void)
{
    return om_calloc(1, sizeof(om_metrics_t));
}

void om_metrics_free(om_metrics_t *m)
{
    if (m == NULL) {
        return;
    }
    while (m->head != NULL) {
        family_t *f = m->head;
        m->head = f->next;
        family_free(f);
    }
    om_free(m);
}
