/* om_testdata.c: numbered OTLP test batches (see om_testdata.h for what each item carries). */
#include <stdio.h>
#include <string.h>

#include "om_testdata.h"

/* Building state: the arena, the next sequence number and the shape with defaults applied. */
typedef struct builder {
    om_arena_t *a;
    uint64_t seq;
    om_testdata_shape_t shape;
} builder_t;

void *om_testdata_msg(om_arena_t *a, const ProtobufCMessageDescriptor *d)
{
    void *m = om_arena_alloc(a, d->sizeof_message);
    if (m != NULL) {
        protobuf_c_message_init(d, m);
    }
    return m;
}

char *om_testdata_str(om_arena_t *a, const char *s)
{
    return om_arena_strndup(a, s, strlen(s));
}

static om_keyvalue_t *kv_new(om_arena_t *a, const char *key)
{
    om_keyvalue_t *kv =
        om_testdata_msg(a, &opentelemetry__proto__common__v1__key_value__descriptor);
    om_anyvalue_t *v = om_testdata_msg(a, &opentelemetry__proto__common__v1__any_value__descriptor);
    if (kv == NULL || v == NULL) {
        return NULL;
    }
    kv->key = om_testdata_str(a, key);
    kv->value = v;
    return kv->key != NULL ? kv : NULL;
}

om_keyvalue_t *om_testdata_kv_str(om_arena_t *a, const char *key, const char *value)
{
    om_keyvalue_t *kv = kv_new(a, key);
    if (kv == NULL) {
        return NULL;
    }
    kv->value->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    kv->value->string_value = om_testdata_str(a, value);
    return kv->value->string_value != NULL ? kv : NULL;
}

om_keyvalue_t *om_testdata_kv_int(om_arena_t *a, const char *key, int64_t value)
{
    om_keyvalue_t *kv = kv_new(a, key);
    if (kv == NULL) {
        return NULL;
    }
    kv->value->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
    kv->value->int_value = value;
    return kv;
}

/* An array of n pointers in the arena (n may be 0: a valid empty array is still returned). */
static void *ptr_array(om_arena_t *a, size_t n)
{
    return om_arena_calloc(a, n > 0 ? n : 1, sizeof(void *));
}

/* attrs[0] = "seq": the item's number. */
static om_keyvalue_t **seq_attrs(builder_t *b, uint64_t seq)
{
    om_keyvalue_t **attrs = ptr_array(b->a, 1);
    if (attrs != NULL) {
        attrs[0] = om_testdata_kv_int(b->a, "seq", (int64_t)seq);
    }
    return attrs != NULL && attrs[0] != NULL ? attrs : NULL;
}

static om_resource_t *make_resource(builder_t *b, size_t r)
{
    om_resource_t *res =
        om_testdata_msg(b->a, &opentelemetry__proto__resource__v1__resource__descriptor);
    om_keyvalue_t **attrs = ptr_array(b->a, 1);
    if (res == NULL || attrs == NULL) {
        return NULL;
    }
    char name[32];
    snprintf(name, sizeof name, "svc-%zu", r);
    attrs[0] = om_testdata_kv_str(b->a, "service.name", name);
    res->n_attributes = 1;
    res->attributes = attrs;
    return attrs[0] != NULL ? res : NULL;
}

static om_scope_t *make_scope(builder_t *b, size_t s)
{
    om_scope_t *sc =
        om_testdata_msg(b->a, &opentelemetry__proto__common__v1__instrumentation_scope__descriptor);
    if (sc == NULL) {
        return NULL;
    }
    char name[32];
    snprintf(name, sizeof name, "scope-%zu", s);
    sc->name = om_testdata_str(b->a, name);
    sc->version = om_testdata_str(b->a, "1.0");
    return sc->name != NULL && sc->version != NULL ? sc : NULL;
}

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)(v & 0xff);
        v >>= 8;
    }
}

static om_span_t *make_span(builder_t *b)
{
    uint64_t seq = b->seq++;
    om_span_t *sp = om_testdata_msg(b->a, &opentelemetry__proto__trace__v1__span__descriptor);
    uint8_t *ids = om_arena_calloc(b->a, 24, 1);
    if (sp == NULL || ids == NULL) {
        return NULL;
    }
    put_be64(ids + 8, seq);
    put_be64(ids + 16, seq);
    sp->trace_id = (ProtobufCBinaryData){.len = 16, .data = ids};
    sp->span_id = (ProtobufCBinaryData){.len = 8, .data = ids + 16};
    char name[40];
    snprintf(name, sizeof name, "span-%llu", (unsigned long long)seq);
    sp->name = om_testdata_str(b->a, name);
    sp->kind = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_SERVER;
    sp->start_time_unix_nano = OM_TESTDATA_T0 + seq;
    sp->end_time_unix_nano = sp->start_time_unix_nano + 1000;
    sp->attributes = seq_attrs(b, seq);
    sp->n_attributes = 1;
    return sp->name != NULL && sp->attributes != NULL ? sp : NULL;
}

static om_log_record_t *make_log(builder_t *b)
{
    uint64_t seq = b->seq++;
    om_log_record_t *lr =
        om_testdata_msg(b->a, &opentelemetry__proto__logs__v1__log_record__descriptor);
    om_anyvalue_t *body =
        om_testdata_msg(b->a, &opentelemetry__proto__common__v1__any_value__descriptor);
    if (lr == NULL || body == NULL) {
        return NULL;
    }
    char text[40];
    snprintf(text, sizeof text, "log-%llu", (unsigned long long)seq);
    body->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    body->string_value = om_testdata_str(b->a, text);
    lr->body = body;
    lr->time_unix_nano = OM_TESTDATA_T0 + seq;
    lr->severity_number = OPENTELEMETRY__PROTO__LOGS__V1__SEVERITY_NUMBER__SEVERITY_NUMBER_INFO;
    lr->severity_text = om_testdata_str(b->a, "Info");
    lr->attributes = seq_attrs(b, seq);
    lr->n_attributes = 1;
    return body->string_value != NULL && lr->attributes != NULL ? lr : NULL;
}

static om_resource_spans_t *make_resource_spans(builder_t *b, size_t r)
{
    om_resource_spans_t *rs =
        om_testdata_msg(b->a, &opentelemetry__proto__trace__v1__resource_spans__descriptor);
    if (rs == NULL) {
        return NULL;
    }
    rs->resource = make_resource(b, r);
    rs->scope_spans = ptr_array(b->a, b->shape.scopes);
    if (rs->resource == NULL || rs->scope_spans == NULL) {
        return NULL;
    }
    rs->n_scope_spans = b->shape.scopes;
    for (size_t s = 0; s < b->shape.scopes; s++) {
        om_scope_spans_t *ss =
            om_testdata_msg(b->a, &opentelemetry__proto__trace__v1__scope_spans__descriptor);
        if (ss == NULL) {
            return NULL;
        }
        ss->scope = make_scope(b, s);
        ss->spans = ptr_array(b->a, b->shape.items);
        if (ss->scope == NULL || ss->spans == NULL) {
            return NULL;
        }
        for (size_t i = 0; i < b->shape.items; i++) {
            ss->spans[i] = make_span(b);
            if (ss->spans[i] == NULL) {
                return NULL;
            }
        }
        ss->n_spans = b->shape.items;
        rs->scope_spans[s] = ss;
    }
    return rs;
}

static om_resource_logs_t *make_resource_logs(builder_t *b, size_t r)
{
    om_resource_logs_t *rl =
        om_testdata_msg(b->a, &opentelemetry__proto__logs__v1__resource_logs__descriptor);
    if (rl == NULL) {
        return NULL;
    }
    rl->resource = make_resource(b, r);
    rl->scope_logs = ptr_array(b->a, b->shape.scopes);
    if (rl->resource == NULL || rl->scope_logs == NULL) {
        return NULL;
    }
    rl->n_scope_logs = b->shape.scopes;
    for (size_t s = 0; s < b->shape.scopes; s++) {
        om_scope_logs_t *sl =
            om_testdata_msg(b->a, &opentelemetry__proto__logs__v1__scope_logs__descriptor);
        if (sl == NULL) {
            return NULL;
        }
        sl->scope = make_scope(b, s);
        sl->log_records = ptr_array(b->a, b->shape.items);
        if (sl->scope == NULL || sl->log_records == NULL) {
            return NULL;
        }
        for (size_t i = 0; i < b->shape.items; i++) {
            sl->log_records[i] = make_log(b);
            if (sl->log_records[i] == NULL) {
                return NULL;
            }
        }
        sl->n_log_records = b->shape.items;
        rl->scope_logs[s] = sl;
    }
    return rl;
}

/* ---- metrics ---------------------------------------------------------------------------- */

static om_number_dp_t *make_number_dp(builder_t *b, bool as_double)
{
    uint64_t seq = b->seq++;
    om_number_dp_t *dp =
        om_testdata_msg(b->a, &opentelemetry__proto__metrics__v1__number_data_point__descriptor);
    if (dp == NULL) {
        return NULL;
    }
    dp->attributes = seq_attrs(b, seq);
    if (dp->attributes == NULL) {
        return NULL;
    }
    dp->n_attributes = 1;
    dp->start_time_unix_nano = OM_TESTDATA_T0;
    dp->time_unix_nano = OM_TESTDATA_T0 + seq;
    if (as_double) {
        dp->value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE;
        dp->as_double = (double)seq + 0.5;
    } else {
        dp->value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT;
        dp->as_int = (int64_t)seq;
    }
    return dp;
}

static om_histogram_dp_t *make_histogram_dp(builder_t *b)
{
    uint64_t seq = b->seq++;
    om_histogram_dp_t *dp =
        om_testdata_msg(b->a, &opentelemetry__proto__metrics__v1__histogram_data_point__descriptor);
    uint64_t *counts = om_arena_calloc(b->a, 2, sizeof *counts);
    double *bounds = om_arena_calloc(b->a, 1, sizeof *bounds);
    if (dp == NULL || counts == NULL || bounds == NULL) {
        return NULL;
    }
    dp->attributes = seq_attrs(b, seq);
    if (dp->attributes == NULL) {
        return NULL;
    }
    dp->n_attributes = 1;
    dp->time_unix_nano = OM_TESTDATA_T0 + seq;
    counts[0] = 1;
    counts[1] = 2;
    bounds[0] = 10.0;
    dp->count = 3;
    dp->bucket_counts = counts;
    dp->n_bucket_counts = 2;
    dp->explicit_bounds = bounds;
    dp->n_explicit_bounds = 1;
    dp->_sum_case = OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___SUM_SUM;
    dp->sum = 25.0;
    return dp;
}

static om_exp_histogram_dp_t *make_exp_histogram_dp(builder_t *b)
{
    uint64_t seq = b->seq++;
    om_exp_histogram_dp_t *dp = om_testdata_msg(
        b->a, &opentelemetry__proto__metrics__v1__exponential_histogram_data_point__descriptor);
    om_exp_buckets_t *pos = om_testdata_msg(
        b->a,
        &opentelemetry__proto__metrics__v1__exponential_histogram_data_point__buckets__descriptor);
    uint64_t *counts = om_arena_calloc(b->a, 2, sizeof *counts);
    if (dp == NULL || pos == NULL || counts == NULL) {
        return NULL;
    }
    dp->attributes = seq_attrs(b, seq);
    if (dp->attributes == NULL) {
        return NULL;
    }
    dp->n_attributes = 1;
    dp->time_unix_nano = OM_TESTDATA_T0 + seq;
    counts[0] = 1;
    counts[1] = 1;
    pos->offset = 0;
    pos->bucket_counts = counts;
    pos->n_bucket_counts = 2;
    dp->positive = pos;
    dp->count = 3;
    dp->zero_count = 1;
    dp->scale = 1;
    return dp;
}

static om_summary_dp_t *make_summary_dp(builder_t *b)
{
    uint64_t seq = b->seq++;
    om_summary_dp_t *dp =
        om_testdata_msg(b->a, &opentelemetry__proto__metrics__v1__summary_data_point__descriptor);
    om_quantile_t *q = om_testdata_msg(
        b->a,
        &opentelemetry__proto__metrics__v1__summary_data_point__value_at_quantile__descriptor);
    om_quantile_t **qs = ptr_array(b->a, 1);
    if (dp == NULL || q == NULL || qs == NULL) {
        return NULL;
    }
    dp->attributes = seq_attrs(b, seq);
    if (dp->attributes == NULL) {
        return NULL;
    }
    dp->n_attributes = 1;
    dp->time_unix_nano = OM_TESTDATA_T0 + seq;
    dp->count = 2;
    dp->sum = 3.0;
    q->quantile = 0.5;
    q->value = 1.5;
    qs[0] = q;
    dp->quantile_values = qs;
    dp->n_quantile_values = 1;
    return dp;
}

static void *make_point(builder_t *b, size_t kind)
{
    switch (kind) {
    case 0:
    case 1:
        return make_number_dp(b, kind == 1);
    case 2:
        return make_histogram_dp(b);
    case 3:
        return make_exp_histogram_dp(b);
    default:
        return make_summary_dp(b);
    }
}

#define TEMPORALITY(x)                                                                             \
    OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_##x

/* Copies the points into a new array of their own type (so that every element is written and
 * read through the same pointer type) and stores it and n at the given fields. Jumps to the
 * caller's `out` label when out of memory. */
#define SET_POINTS(b, type, field, n_field, pts, n)                                                \
    do {                                                                                           \
        type **arr_ = om_arena_calloc((b)->a, (n) > 0 ? (n) : 1, sizeof *arr_);                    \
        if (arr_ == NULL) {                                                                        \
            goto out;                                                                              \
        }                                                                                          \
        for (size_t i_ = 0; i_ < (n); i_++) {                                                      \
            arr_[i_] = (pts)[i_];                                                                  \
        }                                                                                          \
        (field) = arr_;                                                                            \
        (n_field) = (n);                                                                           \
    } while (0)

/* Hangs the n points on m as the data of the given kind. */
static bool attach_points(builder_t *b, om_metric_t *m, size_t kind, void **pts, size_t n)
{
    const ProtobufCMessageDescriptor *d[] = {
        &opentelemetry__proto__metrics__v1__gauge__descriptor,
        &opentelemetry__proto__metrics__v1__sum__descriptor,
        &opentelemetry__proto__metrics__v1__histogram__descriptor,
        &opentelemetry__proto__metrics__v1__exponential_histogram__descriptor,
        &opentelemetry__proto__metrics__v1__summary__descriptor,
    };
    void *data = om_testdata_msg(b->a, d[kind]);
    if (data == NULL) {
        return false;
    }
    if (kind == 0) {
        m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE;
        m->gauge = data;
        SET_POINTS(b, om_number_dp_t, m->gauge->data_points, m->gauge->n_data_points, pts, n);
    } else if (kind == 1) {
        m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM;
        m->sum = data;
        SET_POINTS(b, om_number_dp_t, m->sum->data_points, m->sum->n_data_points, pts, n);
        m->sum->is_monotonic = 1;
        m->sum->aggregation_temporality = TEMPORALITY(CUMULATIVE);
    } else if (kind == 2) {
        m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM;
        m->histogram = data;
        SET_POINTS(b, om_histogram_dp_t, m->histogram->data_points, m->histogram->n_data_points,
                   pts, n);
        m->histogram->aggregation_temporality = TEMPORALITY(DELTA);
    } else if (kind == 3) {
        om_exp_histogram_t *eh = data;
        m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM;
        m->exponential_histogram = eh;
        SET_POINTS(b, om_exp_histogram_dp_t, eh->data_points, eh->n_data_points, pts, n);
        eh->aggregation_temporality = TEMPORALITY(DELTA);
    } else {
        m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY;
        m->summary = data;
        SET_POINTS(b, om_summary_dp_t, m->summary->data_points, m->summary->n_data_points, pts, n);
    }
    return true;
out:
    return false;
}

/* Fills the data of metric m (its kind chosen by its index idx) with b->shape.items points. */
static bool fill_metric_data(builder_t *b, om_metric_t *m, size_t idx)
{
    size_t n = b->shape.items;
    void **pts = ptr_array(b->a, n);
    if (pts == NULL) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        pts[i] = make_point(b, idx % 5);
        if (pts[i] == NULL) {
            return false;
        }
    }
    return attach_points(b, m, idx % 5, pts, n);
}

static om_metric_t *make_metric(builder_t *b, size_t r, size_t s, size_t m)
{
    om_metric_t *met =
        om_testdata_msg(b->a, &opentelemetry__proto__metrics__v1__metric__descriptor);
    if (met == NULL) {
        return NULL;
    }
    char name[80];
    snprintf(name, sizeof name, "metric-%zu-%zu-%zu", r, s, m);
    met->name = om_testdata_str(b->a, name);
    met->description = om_testdata_str(b->a, "a test metric");
    met->unit = om_testdata_str(b->a, "1");
    if (met->name == NULL || !fill_metric_data(b, met, m)) {
        return NULL;
    }
    return met;
}

static om_resource_metrics_t *make_resource_metrics(builder_t *b, size_t r)
{
    om_resource_metrics_t *rm =
        om_testdata_msg(b->a, &opentelemetry__proto__metrics__v1__resource_metrics__descriptor);
    if (rm == NULL) {
        return NULL;
    }
    rm->resource = make_resource(b, r);
    rm->scope_metrics = ptr_array(b->a, b->shape.scopes);
    if (rm->resource == NULL || rm->scope_metrics == NULL) {
        return NULL;
    }
    rm->n_scope_metrics = b->shape.scopes;
    for (size_t s = 0; s < b->shape.scopes; s++) {
        om_scope_metrics_t *sm =
            om_testdata_msg(b->a, &opentelemetry__proto__metrics__v1__scope_metrics__descriptor);
        if (sm == NULL) {
            return NULL;
        }
        sm->scope = make_scope(b, s);
        sm->metrics = ptr_array(b->a, b->shape.metrics);
        if (sm->scope == NULL || sm->metrics == NULL) {
            return NULL;
        }
        for (size_t m = 0; m < b->shape.metrics; m++) {
            sm->metrics[m] = make_metric(b, r, s, m);
            if (sm->metrics[m] == NULL) {
                return NULL;
            }
        }
        sm->n_metrics = b->shape.metrics;
        rm->scope_metrics[s] = sm;
    }
    return rm;
}

/* Builds the resource entries of the request into batch (allocated with its arena). */
static bool fill_request(builder_t *b, om_batch_t *batch)
{
    size_t n = b->shape.resources;
    bool ok = false;
    void **res = om_malloc(sizeof *res * n);
    if (res == NULL) {
        return false;
    }
    for (size_t r = 0; r < n; r++) {
        if (batch->signal == OM_SIG_TRACES) {
            res[r] = make_resource_spans(b, r);
        } else if (batch->signal == OM_SIG_METRICS) {
            res[r] = make_resource_metrics(b, r);
        } else {
            res[r] = make_resource_logs(b, r);
        }
        if (res[r] == NULL) {
            goto out;
        }
    }
    if (batch->signal == OM_SIG_TRACES) {
        SET_POINTS(b, om_resource_spans_t, batch->traces->resource_spans,
                   batch->traces->n_resource_spans, res, n);
    } else if (batch->signal == OM_SIG_METRICS) {
        SET_POINTS(b, om_resource_metrics_t, batch->metrics->resource_metrics,
                   batch->metrics->n_resource_metrics, res, n);
    } else {
        SET_POINTS(b, om_resource_logs_t, batch->logs->resource_logs, batch->logs->n_resource_logs,
                   res, n);
    }
    ok = true;
out:
    om_free(res);
    return ok;
}

om_batch_t *om_testdata_batch(om_signal_t sig, const om_testdata_shape_t *shape)
{
    om_batch_t *batch = om_batch_new(sig, 0);
    if (batch == NULL) {
        return NULL;
    }
    builder_t b = {.a = batch->arenas[0], .seq = shape->first_seq, .shape = *shape};
    b.shape.resources = shape->resources ? shape->resources : 1;
    b.shape.scopes = shape->scopes ? shape->scopes : 1;
    b.shape.metrics = shape->metrics ? shape->metrics : 1;
    if (!fill_request(&b, batch)) {
        om_batch_release(batch);
        return NULL;
    }
    batch->items = om_batch_count_items(batch);
    return batch;
}

om_batch_t *om_testdata_simple(om_signal_t sig, size_t n, uint64_t first_seq)
{
    om_testdata_shape_t shape = {.items = n, .first_seq = first_seq};
    return om_testdata_batch(sig, &shape);
}

/* ---- reading sequence numbers back ------------------------------------------------------ */

int64_t om_testdata_int_attr(om_keyvalue_t *const *attrs, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++) {
        const om_keyvalue_t *kv = attrs[i];
        if (kv->key != NULL && strcmp(kv->key, key) == 0 && kv->value != NULL &&
            kv->value->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE) {
            return kv->value->int_value;
        }
    }
    return -1;
}

typedef struct collector {
    int64_t *out;
    size_t max, n;
} collector_t;

static void collect(collector_t *c, om_keyvalue_t *const *attrs, size_t n)
{
    if (c->n < c->max) {
        c->out[c->n] = om_testdata_int_attr(attrs, n, "seq");
    }
    c->n++;
}

static void collect_metric(collector_t *c, const om_metric_t *m)
{
    switch (m->data_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
        for (size_t i = 0; i < m->gauge->n_data_points; i++) {
            collect(c, m->gauge->data_points[i]->attributes,
                    m->gauge->data_points[i]->n_attributes);
        }
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
        for (size_t i = 0; i < m->sum->n_data_points; i++) {
            collect(c, m->sum->data_points[i]->attributes, m->sum->data_points[i]->n_attributes);
        }
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
        for (size_t i = 0; i < m->histogram->n_data_points; i++) {
            collect(c, m->histogram->data_points[i]->attributes,
                    m->histogram->data_points[i]->n_attributes);
        }
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
        for (size_t i = 0; i < m->exponential_histogram->n_data_points; i++) {
            collect(c, m->exponential_histogram->data_points[i]->attributes,
                    m->exponential_histogram->data_points[i]->n_attributes);
        }
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
        for (size_t i = 0; i < m->summary->n_data_points; i++) {
            collect(c, m->summary->data_points[i]->attributes,
                    m->summary->data_points[i]->n_attributes);
        }
        break;
    default:
        break;
    }
}

size_t om_testdata_seqs(om_batch_t *b, int64_t *out, size_t max)
{
    collector_t c = {.out = out, .max = max};
    if (om_batch_decode(b, NULL) != 0) {
        return 0;
    }
    if (b->signal == OM_SIG_TRACES) {
        for (size_t i = 0; i < b->traces->n_resource_spans; i++) {
            const om_resource_spans_t *rs = b->traces->resource_spans[i];
            for (size_t j = 0; j < rs->n_scope_spans; j++) {
                for (size_t k = 0; k < rs->scope_spans[j]->n_spans; k++) {
                    const om_span_t *sp = rs->scope_spans[j]->spans[k];
                    collect(&c, sp->attributes, sp->n_attributes);
                }
            }
        }
    } else if (b->signal == OM_SIG_METRICS) {
        for (size_t i = 0; i < b->metrics->n_resource_metrics; i++) {
            const om_resource_metrics_t *rm = b->metrics->resource_metrics[i];
            for (size_t j = 0; j < rm->n_scope_metrics; j++) {
                for (size_t k = 0; k < rm->scope_metrics[j]->n_metrics; k++) {
                    collect_metric(&c, rm->scope_metrics[j]->metrics[k]);
                }
            }
        }
    } else {
        for (size_t i = 0; i < b->logs->n_resource_logs; i++) {
            const om_resource_logs_t *rl = b->logs->resource_logs[i];
            for (size_t j = 0; j < rl->n_scope_logs; j++) {
                for (size_t k = 0; k < rl->scope_logs[j]->n_log_records; k++) {
                    const om_log_record_t *lr = rl->scope_logs[j]->log_records[k];
                    collect(&c, lr->attributes, lr->n_attributes);
                }
            }
        }
    }
    return c.n;
}

/* ---- a held export ------------------------------------------------------------------------ */

static void hold_send(void *self, om_exp_req_t *req)
{
    om_testdata_hold_t *t = self;
    t->req = req;
}

int om_testdata_hold_start(om_testdata_hold_t *t, om_host_t *host, size_t n)
{
    memset(t, 0, sizeof *t);
    t->host = host;
    t->cfg.timeout = 0;
    t->cfg.sending_queue.enabled = true;
    t->cfg.sending_queue.num_consumers = 1;
    t->cfg.sending_queue.queue_size = 10;
    om_create_args_t a = {.id = "held", .log_name = "exporter/held", .host = host};
    om_err_t err = {0};
    t->helper = om_exphelper_new(&a, &t->cfg, hold_send, t, &err);
    om_batch_t *b = om_testdata_simple(OM_SIG_LOGS, n, 0);
    if (t->helper == NULL || b == NULL) {
        om_batch_release(b);
        return OM_ENOMEM;
    }
    int rc = om_exphelper_consume(t->helper, b);
    return rc == 0 && t->req != NULL ? 0 : OM_EINVAL;
}

void om_testdata_hold_release(om_testdata_hold_t *t)
{
    if (t->req != NULL) {
        om_exp_req_t *req = t->req;
        t->req = NULL;
        om_exp_req_done(req, 0, 0, NULL);
    }
}

static void hold_done(void *arg)
{
    ((om_testdata_hold_t *)arg)->done = true;
}

void om_testdata_hold_stop(om_testdata_hold_t *t)
{
    if (t->helper == NULL) {
        return;
    }
    om_testdata_hold_release(t);
    om_exphelper_shutdown(t->helper, hold_done, t);
    while (!t->done) {
        uv_run(t->host->loop, UV_RUN_ONCE);
    }
    om_exphelper_free(t->helper);
    t->helper = NULL;
}
