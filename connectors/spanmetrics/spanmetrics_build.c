/* spanmetrics_build.c: the metrics request of a flush, as otelcol-contrib's spanmetrics
 * connector builds it: one ResourceMetrics per resource (its attributes), one ScopeMetrics
 * named "spanmetricsconnector", the sum `<namespace>.calls` (monotonic, integer, no unit) and
 * the histogram `<namespace>.duration` (explicit or exponential, unit ms or s), one data point
 * per series with the series' attributes, start time and exemplars. Everything is allocated in
 * the new batch's arena (strings copied: the batch may outlive the aggregate's series). */
#include <string.h>

#include "spanmetrics.h"

typedef struct build {
    spm_t *a;
    om_arena_t *ar;
    uint64_t now;
    bool final;
} build_t;

static void *msg(build_t *bd, const void *init, size_t size)
{
    void *m = om_arena_alloc(bd->ar, size);
    if (m != NULL) {
        memcpy(m, init, size);
    }
    return m;
}

/* Empty messages, copied into the arena by NEW. */
static const om_keyvalue_t KV_INIT = OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT;
static const om_anyvalue_t ANY_INIT = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
static const om_exemplar_t EX_INIT = OPENTELEMETRY__PROTO__METRICS__V1__EXEMPLAR__INIT;
static const om_number_dp_t NUM_DP_INIT =
    OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__INIT;
static const om_histogram_dp_t HIST_DP_INIT =
    OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT__INIT;
static const om_exp_histogram_dp_t EXP_DP_INIT =
    OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT__INIT;
static const om_exp_buckets_t EXP_BUCKETS_INIT =
    OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT__BUCKETS__INIT;
static const om_metric_t METRIC_INIT = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__INIT;
static const om_sum_t SUM_INIT = OPENTELEMETRY__PROTO__METRICS__V1__SUM__INIT;
static const om_histogram_t HIST_INIT = OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM__INIT;
static const om_exp_histogram_t EXP_HIST_INIT =
    OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM__INIT;
static const om_resource_metrics_t RM_INIT =
    OPENTELEMETRY__PROTO__METRICS__V1__RESOURCE_METRICS__INIT;
static const om_resource_t RES_INIT = OPENTELEMETRY__PROTO__RESOURCE__V1__RESOURCE__INIT;
static const om_scope_metrics_t SM_INIT = OPENTELEMETRY__PROTO__METRICS__V1__SCOPE_METRICS__INIT;
static const om_scope_t SCOPE_INIT = OPENTELEMETRY__PROTO__COMMON__V1__INSTRUMENTATION_SCOPE__INIT;

#define NEW(bd, init) msg((bd), &(init), sizeof(init))

static const char *const kind_names[] = {
    "SPAN_KIND_UNSPECIFIED",
    "SPAN_KIND_INTERNAL",
    "SPAN_KIND_SERVER",
    "SPAN_KIND_CLIENT",
    "SPAN_KIND_PRODUCER",
    "SPAN_KIND_CONSUMER",
    "",
};
static const char *const status_names[] = {"STATUS_CODE_UNSET", "STATUS_CODE_OK",
                                           "STATUS_CODE_ERROR", ""};

static const char *attr_name(const spm_t *a, uint8_t id)
{
    switch (id) {
    case SPM_ATTR_SERVICE:
        return "service.name";
    case SPM_ATTR_SPAN_NAME:
        return "span.name";
    case SPM_ATTR_SPAN_KIND:
        return "span.kind";
    case SPM_ATTR_STATUS:
        return "status.code";
    case SPM_ATTR_SCOPE_NAME:
        return "span.instrumentation.scope.name";
    case SPM_ATTR_SCOPE_VERSION:
        return "span.instrumentation.scope.version";
    case SPM_ATTR_OVERFLOW:
        return "otel.metric.overflow";
    default:
        return id >= SPM_ATTR_DIM0 && (size_t)(id - SPM_ATTR_DIM0) < a->n_dims
                   ? a->dims[id - SPM_ATTR_DIM0]->name
                   : NULL;
    }
}

static bool str_value(build_t *bd, om_anyvalue_t *v, const char *s, size_t n)
{
    v->value_case = OM_ANYVALUE_STRING;
    v->string_value = om_arena_strndup(bd->ar, s, n);
    return v->string_value != NULL;
}

/* The value of attribute id at *p in a series key. */
static bool key_value(build_t *bd, uint8_t id, const uint8_t **p, const uint8_t *end,
                      om_anyvalue_t *v)
{
    const uint8_t *s;
    size_t n;
    switch (id) {
    case SPM_ATTR_SPAN_KIND:
    case SPM_ATTR_STATUS: {
        if (*p >= end) {
            return false;
        }
        uint8_t c = *(*p)++;
        const char *name =
            id == SPM_ATTR_SPAN_KIND ? kind_names[c <= 6 ? c : 6] : status_names[c <= 3 ? c : 3];
        v->value_case = OM_ANYVALUE_STRING;
        v->string_value = (char *)name; /* static storage */
        return true;
    }
    case SPM_ATTR_OVERFLOW:
        v->value_case = OM_ANYVALUE_BOOL;
        v->bool_value = true;
        return true;
    case SPM_ATTR_SERVICE:
    case SPM_ATTR_SPAN_NAME:
    case SPM_ATTR_SCOPE_NAME:
    case SPM_ATTR_SCOPE_VERSION:
        return conn_spanmetrics_get_str(p, end, &s, &n) && str_value(bd, v, (const char *)s, n);
    default:
        return conn_spanmetrics_get_value(p, end, v, bd->ar);
    }
}

/* The attributes a series key encodes. */
static bool key_attrs(build_t *bd, const spm_series_t *s, om_keyvalue_t ***out, size_t *n)
{
    const uint8_t *p = s->key, *end = s->key + s->key_len;
    om_keyvalue_t **kvs = om_arena_calloc(bd->ar, s->key_len + 1u, sizeof *kvs);
    if (kvs == NULL) {
        return false;
    }
    size_t k = 0;
    /* Bounded: each turn reads at least one byte of the key. */
    while (p < end) {
        uint8_t id = *p++;
        const char *name = attr_name(bd->a, id);
        om_keyvalue_t *kv = NEW(bd, KV_INIT);
        om_anyvalue_t *v = NEW(bd, ANY_INIT);
        if (name == NULL || kv == NULL || v == NULL || !key_value(bd, id, &p, end, v)) {
            return false;
        }
        kv->key = om_arena_strndup(bd->ar, name, strlen(name));
        kv->value = v;
        kvs[k++] = kv;
        if (kv->key == NULL) {
            return false;
        }
    }
    *out = kvs;
    *n = k;
    return true;
}

/* A resource's attributes: (key, value) pairs until the end. */
static bool resource_attrs(build_t *bd, const spm_resource_t *r, om_resource_t *res)
{
    const uint8_t *p = r->attrs, *end = r->attrs + r->attrs_len;
    res->attributes = om_arena_calloc(bd->ar, r->attrs_len + 1u, sizeof *res->attributes);
    if (res->attributes == NULL) {
        return false;
    }
    while (p < end) {
        const uint8_t *k;
        size_t kn;
        om_keyvalue_t *kv = NEW(bd, KV_INIT);
        om_anyvalue_t *v = NEW(bd, ANY_INIT);
        if (kv == NULL || v == NULL || !conn_spanmetrics_get_str(&p, end, &k, &kn) ||
            !conn_spanmetrics_get_value(&p, end, v, bd->ar)) {
            return false;
        }
        kv->key = om_arena_strndup(bd->ar, (const char *)k, kn);
        kv->value = v;
        if (kv->key == NULL) {
            return false;
        }
        res->attributes[res->n_attributes++] = kv;
    }
    return true;
}

static bool exemplars(build_t *bd, const spm_exemplar_t *ex, uint32_t n, om_exemplar_t ***out,
                      size_t *n_out)
{
    if (n == 0) {
        return true;
    }
    om_exemplar_t **list = om_arena_calloc(bd->ar, n, sizeof *list);
    if (list == NULL) {
        return false;
    }
    for (uint32_t i = 0; i < n; i++) {
        om_exemplar_t *e = NEW(bd, EX_INIT);
        uint8_t *ids = om_arena_alloc(bd->ar, 24);
        if (e == NULL || ids == NULL) {
            return false;
        }
        memcpy(ids, ex[i].trace_id, 16);
        memcpy(ids + 16, ex[i].span_id, 8);
        e->trace_id = (ProtobufCBinaryData){.len = 16, .data = ids};
        e->span_id = (ProtobufCBinaryData){.len = 8, .data = ids + 16};
        e->time_unix_nano = bd->now;
        e->value_case = OPENTELEMETRY__PROTO__METRICS__V1__EXEMPLAR__VALUE_AS_DOUBLE;
        e->as_double = ex[i].value;
        list[i] = e;
    }
    *out = list;
    *n_out = n;
    return true;
}

/* ---- data points ------------------------------------------------------------------------- */

static om_number_dp_t *calls_point(build_t *bd, const spm_series_t *s)
{
    om_number_dp_t *dp = NEW(bd, NUM_DP_INIT);
    if (dp == NULL || !key_attrs(bd, s, &dp->attributes, &dp->n_attributes) ||
        !exemplars(bd, s->ex_calls, s->n_ex_calls, &dp->exemplars, &dp->n_exemplars)) {
        return NULL;
    }
    dp->start_time_unix_nano = s->start_ns;
    dp->time_unix_nano = bd->now;
    dp->value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT;
    /* otelcol (since v0.124) sends a new cumulative series as 0 first, so that a backend
     * sees it start from zero and counts its first increase; the last flush sends it all. */
    dp->as_int = s->first && !bd->final ? 0 : (int64_t)s->calls;
    return dp;
}

static om_histogram_dp_t *hist_point(build_t *bd, const spm_series_t *s)
{
    spm_t *a = bd->a;
    om_histogram_dp_t *dp = NEW(bd, HIST_DP_INIT);
    uint64_t *counts = om_arena_alloc(bd->ar, (a->n_bounds + 1) * sizeof *counts);
    double *bounds = om_arena_alloc(bd->ar, (a->n_bounds ? a->n_bounds : 1) * sizeof *bounds);
    if (dp == NULL || counts == NULL || bounds == NULL ||
        !key_attrs(bd, s, &dp->attributes, &dp->n_attributes) ||
        !exemplars(bd, s->ex_hist, s->n_ex_hist, &dp->exemplars, &dp->n_exemplars)) {
        return NULL;
    }
    memcpy(counts, s->buckets, (a->n_bounds + 1) * sizeof *counts);
    memcpy(bounds, a->bounds, a->n_bounds * sizeof *bounds);
    dp->start_time_unix_nano = s->start_ns;
    dp->time_unix_nano = bd->now;
    dp->count = s->count;
    dp->_sum_case = OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___SUM_SUM;
    dp->sum = conn_spanmetrics_sum(bd->a, s);
    dp->n_bucket_counts = a->n_bounds + 1;
    dp->bucket_counts = counts;
    dp->n_explicit_bounds = a->n_bounds;
    dp->explicit_bounds = bounds;
    return dp;
}

static om_exp_histogram_dp_t *expo_point(build_t *bd, const spm_series_t *s)
{
    const spm_expo_t *e = &s->expo;
    om_exp_histogram_dp_t *dp = NEW(bd, EXP_DP_INIT);
    om_exp_buckets_t *pos = NEW(bd, EXP_BUCKETS_INIT);
    uint64_t *counts = om_arena_alloc(bd->ar, (e->len ? e->len : 1) * sizeof *counts);
    if (dp == NULL || pos == NULL || counts == NULL ||
        !key_attrs(bd, s, &dp->attributes, &dp->n_attributes) ||
        !exemplars(bd, s->ex_hist, s->n_ex_hist, &dp->exemplars, &dp->n_exemplars)) {
        return NULL;
    }
    if (e->len > 0) {
        memcpy(counts, e->counts, e->len * sizeof *counts);
    }
    pos->offset = e->offset;
    pos->n_bucket_counts = e->len;
    pos->bucket_counts = counts;
    dp->positive = pos;
    dp->start_time_unix_nano = s->start_ns;
    dp->time_unix_nano = bd->now;
    dp->count = s->count;
    dp->scale = e->scale;
    dp->zero_count = e->zero_count;
    dp->_sum_case = OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT___SUM_SUM;
    dp->sum = conn_spanmetrics_sum(bd->a, s);
    if (e->total > 0) {
        dp->_min_case =
            OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT___MIN_MIN;
        dp->min = e->min;
        dp->_max_case =
            OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT___MAX_MAX;
        dp->max = e->max;
    }
    return dp;
}

/* ---- metrics ----------------------------------------------------------------------------- */

/* What a flush sends of a series: everything when cumulative, what was counted since the
 * last flush when delta. */
static bool sent(const build_t *bd, const spm_series_t *s)
{
    return !bd->a->delta || s->touched;
}

/* The series of t to send, in slot order then the overflow series; *n of them, or NULL. */
static const spm_series_t **series_of(build_t *bd, const spm_table_t *t, size_t *n)
{
    *n = 0;
    const spm_series_t **list = om_arena_calloc(bd->ar, t->n + 2, sizeof *list);
    for (size_t i = 0; list != NULL && i < t->cap; i++) {
        if (t->slots[i] != NULL && sent(bd, t->slots[i])) {
            list[(*n)++] = t->slots[i];
        }
    }
    if (list != NULL && t->overflow != NULL && sent(bd, t->overflow)) {
        list[(*n)++] = t->overflow;
    }
    return list;
}

static char *metric_name(build_t *bd, const char *name)
{
    const char *ns = bd->a->cfg->namespace_ != NULL ? bd->a->cfg->namespace_ : "";
    size_t n = strlen(ns) + strlen(name) + 2;
    char *s = om_arena_alloc(bd->ar, n);
    if (s != NULL) {
        snprintf(s, n, "%s%s%s", ns, ns[0] != '\0' ? "." : "", name);
    }
    return s;
}

static int temporality(const build_t *bd)
{
    return bd->a->delta
               ? OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_DELTA
               : OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE;
}

static om_metric_t *calls_metric(build_t *bd, const spm_series_t **list, size_t n)
{
    om_metric_t *m = NEW(bd, METRIC_INIT);
    om_sum_t *sum = NEW(bd, SUM_INIT);
    om_number_dp_t **dps = om_arena_calloc(bd->ar, n, sizeof *dps);
    if (m == NULL || sum == NULL || dps == NULL || (m->name = metric_name(bd, "calls")) == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if ((dps[i] = calls_point(bd, list[i])) == NULL) {
            return NULL;
        }
    }
    sum->aggregation_temporality = temporality(bd);
    sum->is_monotonic = true;
    sum->n_data_points = n;
    sum->data_points = dps;
    m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM;
    m->sum = sum;
    return m;
}

static om_metric_t *duration_metric(build_t *bd, const spm_series_t **list, size_t n)
{
    om_metric_t *m = NEW(bd, METRIC_INIT);
    void **dps = om_arena_calloc(bd->ar, n, sizeof *dps);
    const char *unit = bd->a->cfg->histogram.unit == SPM_UNIT_S ? "s" : "ms";
    if (m == NULL || dps == NULL || (m->name = metric_name(bd, "duration")) == NULL) {
        return NULL;
    }
    m->unit = (char *)unit; /* static storage */
    bool expo = bd->a->bounds == NULL;
    for (size_t i = 0; i < n; i++) {
        dps[i] = expo ? (void *)expo_point(bd, list[i]) : (void *)hist_point(bd, list[i]);
        if (dps[i] == NULL) {
            return NULL;
        }
    }
    if (expo) {
        om_exp_histogram_t *h = NEW(bd, EXP_HIST_INIT);
        if (h == NULL) {
            return NULL;
        }
        h->aggregation_temporality = temporality(bd);
        h->n_data_points = n;
        h->data_points = (om_exp_histogram_dp_t **)dps;
        m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM;
        m->exponential_histogram = h;
    } else {
        om_histogram_t *h = NEW(bd, HIST_INIT);
        if (h == NULL) {
            return NULL;
        }
        h->aggregation_temporality = temporality(bd);
        h->n_data_points = n;
        h->data_points = (om_histogram_dp_t **)dps;
        m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM;
        m->histogram = h;
    }
    return m;
}

/* The metrics of one resource; *rm NULL when it has nothing to send. false: out of memory. */
static bool resource_metrics(build_t *bd, const spm_resource_t *r, om_resource_metrics_t **rm)
{
    *rm = NULL;
    size_t nc, nh = 0;
    const spm_series_t **calls = series_of(bd, &r->calls, &nc);
    const spm_series_t **hists = r->calls.hists ? calls : series_of(bd, &r->hist, &nh);
    nh = r->calls.hists ? nc : nh;
    bool hist_on = r->calls.hists || r->hist.hists;
    if (calls == NULL || hists == NULL) {
        return false;
    }
    if (nc == 0 && nh == 0) {
        return true;
    }
    om_resource_metrics_t *out = NEW(bd, RM_INIT);
    om_resource_t *res = NEW(bd, RES_INIT);
    om_scope_metrics_t *sm = NEW(bd, SM_INIT);
    om_scope_t *scope = NEW(bd, SCOPE_INIT);
    om_scope_metrics_t **sms = om_arena_calloc(bd->ar, 1, sizeof *sms);
    om_metric_t **ms = om_arena_calloc(bd->ar, 2, sizeof *ms);
    if (out == NULL || res == NULL || sm == NULL || scope == NULL || sms == NULL || ms == NULL ||
        !resource_attrs(bd, r, res)) {
        return false;
    }
    if (nc > 0 && (ms[sm->n_metrics++] = calls_metric(bd, calls, nc)) == NULL) {
        return false;
    }
    if (hist_on && nh > 0 && (ms[sm->n_metrics++] = duration_metric(bd, hists, nh)) == NULL) {
        return false;
    }
    scope->name = (char *)"spanmetricsconnector"; /* static storage */
    sm->scope = scope;
    sm->metrics = ms;
    sms[0] = sm;
    out->resource = res;
    out->n_scope_metrics = 1;
    out->scope_metrics = sms;
    *rm = out;
    return true;
}

int conn_spanmetrics_build(spm_t *a, uint64_t now, bool final, om_batch_t **out)
{
    *out = NULL;
    if (a->n_resources == 0) {
        return 0;
    }
    om_batch_t *b = om_batch_new(OM_SIG_METRICS, 0);
    if (b == NULL) {
        return OM_ENOMEM;
    }
    build_t bd = {.a = a, .ar = b->arenas[0], .now = now, .final = final};
    om_metrics_req_t *req = b->metrics;
    req->resource_metrics = om_arena_calloc(bd.ar, a->n_resources, sizeof *req->resource_metrics);
    bool ok = req->resource_metrics != NULL;
    for (const spm_resource_t *r = a->lru_head; ok && r != NULL; r = r->lru_next) {
        om_resource_metrics_t *rm = NULL;
        ok = resource_metrics(&bd, r, &rm);
        if (ok && rm != NULL) {
            req->resource_metrics[req->n_resource_metrics++] = rm;
        }
    }
    if (!ok || req->n_resource_metrics == 0) {
        om_batch_release(b);
        return ok ? 0 : OM_ENOMEM;
    }
    b->items = om_batch_count_items(b);
    *out = b;
    return 0;
}
