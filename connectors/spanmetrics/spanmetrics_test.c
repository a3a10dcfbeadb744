/* spanmetrics_test.c: the spanmetrics connector: settings and their rules, counts and bucket
 * counts, dimensions (defaults, excluded, configured, per metric), temporality (cumulative
 * with its first point at 0, delta with continuous start times), expiration, the cardinality
 * limit and its overflow series, exemplars, the exponential histogram, resources (key
 * attributes, cache size), and that the traces batch it reads is left unchanged. */
#include <math.h>
#include <stdlib.h>

#include "config.h"
#include "om_test.h"
#include "om_testdata.h"
#include "spanmetrics.h"

extern const om_factory_t conn_spanmetrics_factory;

#define MS INT64_C(1000000)
#define T0 UINT64_C(1700000000000000000)

/* ---- fixture ----------------------------------------------------------------------------- */

typedef struct fx {
    uv_loop_t loop;
    om_host_t host;
    om_config_t *yaml;
    conn_spanmetrics_cfg_t cfg;
    void *self;
    om_batch_t *out; /* the last metrics batch sent */
    int sent;
    uint64_t now;
} fx_t;

static uint64_t test_clock(void *arg)
{
    return ((fx_t *)arg)->now;
}

static int capture(void *self, om_batch_t *b)
{
    fx_t *f = self;
    om_batch_release(f->out);
    f->out = b;
    f->sent++;
    return 0;
}

/* Applies the table and the rules to "c: <yaml>"; returns the problems, one per line. */
static char *load_cfg(conn_spanmetrics_cfg_t *cfg, om_config_t **yaml, const char *text)
{
    om_strbuf_t all, src;
    om_strbuf_init(&all, 0);
    om_strbuf_init(&src, 0);
    om_strbuf_puts(&all, "");
    om_strbuf_printf(&src, "c:\n%s", text);
    om_diags_t d = {0};
    memset(cfg, 0, sizeof *cfg);
    if (om_config_load_string("s.yaml", src.data, src.len, yaml, &d) == 0 &&
        om_fields_apply(conn_spanmetrics_fields, cfg, om_node_get((*yaml)->root, "c"),
                        "connectors::spanmetrics", &d) == 0) {
        om_err_t err = {0};
        if (conn_spanmetrics_cfg_validate(cfg, &err) != 0) {
            om_strbuf_printf(&all, "%s: %s\n", err.at, err.msg);
        }
    }
    for (size_t i = 0; i < d.n; i++) {
        om_strbuf_printf(&all, "%s\n", d.msgs[i]);
    }
    om_diags_free(&d);
    om_strbuf_free(&src);
    return om_strbuf_steal(&all, NULL);
}

static bool fx_init(fx_t *f, const char *cfg_text)
{
    memset(f, 0, sizeof *f);
    f->now = T0;
    char *problems = load_cfg(&f->cfg, &f->yaml, cfg_text);
    bool ok = problems != NULL && problems[0] == '\0';
    if (!ok) {
        fprintf(stderr, "config: %s\n", problems ? problems : "?");
    }
    free(problems);
    if (!ok || uv_loop_init(&f->loop) != 0) {
        return false;
    }
    om_test_host_init(&f->host, &f->loop);
    om_create_args_t a = {.cfg = &f->cfg,
                          .id = "spanmetrics",
                          .log_name = "connector/spanmetrics@traces-to-metrics",
                          .host = &f->host,
                          .signals = OM_SIG_TRACES};
    a.next[om_signal_index(OM_SIG_METRICS)] = (om_consumer_t){.self = f, .consume = capture};
    om_err_t err = {0};
    if (conn_spanmetrics_factory.create(&a, &f->self, &err) != 0) {
        return false;
    }
    spm_t *agg = conn_spanmetrics_agg(f->self);
    agg->clock = test_clock;
    agg->clock_arg = f;
    return true;
}

static void done_cb(void *arg)
{
    *(int *)arg = 1;
}

static void fx_free(fx_t *f)
{
    int done = 0;
    conn_spanmetrics_factory.shutdown(f->self, done_cb, &done);
    for (int i = 0; i < 1000 && !done; i++) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    conn_spanmetrics_factory.destroy(f->self);
    om_batch_release(f->out);
    om_fields_free(conn_spanmetrics_fields, &f->cfg);
    om_config_free(f->yaml);
    om_test_host_close(&f->host);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    uv_loop_close(&f->loop);
}

static size_t queued(fx_t *f)
{
    uint64_t w, l;
    size_t q;
    uv_thread_t t;
    conn_spanmetrics_jobs(f->self, &w, &l, &q, &t);
    return q;
}

/* consume returns before the batch is counted (a worker scans it, the loop merges it): the
 * fixture's consume waits until it is merged, so that the tests see it counted. */
static int consume(fx_t *f, om_batch_t *b)
{
    int rc = conn_spanmetrics_factory.consume_traces(f->self, b);
    OM_TEST_RUN_UNTIL(&f->loop, queued(f) == 0, 10000);
    return rc;
}

/* Flushes at f->now; returns the batch sent (owned by the fixture) or NULL. */
static om_batch_t *flush(fx_t *f, bool final)
{
    int before = f->sent;
    conn_spanmetrics_flush(f->self, final);
    return f->sent > before ? f->out : NULL;
}

/* ---- reading the output ------------------------------------------------------------------ */

static om_metric_t *metric(om_batch_t *b, size_t resource, const char *name)
{
    if (b == NULL || resource >= b->metrics->n_resource_metrics) {
        return NULL;
    }
    om_resource_metrics_t *rm = b->metrics->resource_metrics[resource];
    for (size_t s = 0; s < rm->n_scope_metrics; s++) {
        for (size_t m = 0; m < rm->scope_metrics[s]->n_metrics; m++) {
            if (strcmp(rm->scope_metrics[s]->metrics[m]->name, name) == 0) {
                return rm->scope_metrics[s]->metrics[m];
            }
        }
    }
    return NULL;
}

static const om_anyvalue_t *attr(om_keyvalue_t *const *kvs, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(kvs[i]->key, key) == 0) {
            return kvs[i]->value;
        }
    }
    return NULL;
}

static bool attr_is(om_keyvalue_t *const *kvs, size_t n, const char *key, const char *want)
{
    const om_anyvalue_t *v = attr(kvs, n, key);
    if (want == NULL) {
        return v == NULL;
    }
    return v != NULL && v->value_case == OM_ANYVALUE_STRING && strcmp(v->string_value, want) == 0;
}

/* The calls point whose span.name is name. */
static om_number_dp_t *calls_of(om_batch_t *b, const char *name)
{
    om_metric_t *m = metric(b, 0, "traces.span.metrics.calls");
    for (size_t i = 0; m != NULL && i < m->sum->n_data_points; i++) {
        om_number_dp_t *dp = m->sum->data_points[i];
        if (attr_is(dp->attributes, dp->n_attributes, "span.name", name)) {
            return dp;
        }
    }
    return NULL;
}

static om_histogram_dp_t *hist_of(om_batch_t *b, const char *name)
{
    om_metric_t *m = metric(b, 0, "traces.span.metrics.duration");
    for (size_t i = 0;
         m != NULL && m->data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM &&
         i < m->histogram->n_data_points;
         i++) {
        om_histogram_dp_t *dp = m->histogram->data_points[i];
        if (attr_is(dp->attributes, dp->n_attributes, "span.name", name)) {
            return dp;
        }
    }
    return NULL;
}

static uint64_t total_calls(om_batch_t *b)
{
    uint64_t n = 0;
    for (size_t r = 0; b != NULL && r < b->metrics->n_resource_metrics; r++) {
        om_metric_t *m = metric(b, r, "traces.span.metrics.calls");
        for (size_t i = 0; m != NULL && i < m->sum->n_data_points; i++) {
            n += (uint64_t)m->sum->data_points[i]->as_int;
        }
    }
    return n;
}

/* ---- tests ------------------------------------------------------------------------------- */

static void test_lifecycle(void)
{
    om_test_lifecycle(&conn_spanmetrics_factory, NULL);
    om_test_lifecycle(&conn_spanmetrics_factory,
                      "{aggregation_temporality: AGGREGATION_TEMPORALITY_DELTA, "
                      "histogram: {exponential: {max_size: 10}}, exemplars: {enabled: true}}");
}

static void test_defaults(void)
{
    conn_spanmetrics_cfg_t c;
    om_config_t *y = NULL;
    char *p = load_cfg(&c, &y, "");
    ASSERT_EQ_STR(p, "");
    ASSERT_EQ_STR(c.namespace_, "traces.span.metrics");
    ASSERT_EQ_INT(c.metrics_flush_interval, 60 * OM_NS_PER_S);
    ASSERT_EQ_INT(c.metrics_expiration, 0);
    ASSERT_EQ_INT(c.aggregation_temporality, SPM_CUMULATIVE);
    ASSERT_EQ_INT(c.histogram.unit, SPM_UNIT_MS);
    ASSERT_EQ_INT(c.resource_metrics_cache_size, 1000);
    ASSERT_EQ_INT(c.aggregation_cardinality_limit, 0);
    ASSERT_EQ_INT(c.exemplars.max_per_data_point, 5);
    ASSERT_TRUE(!c.exemplars.enabled);
    size_t n = 0;
    double *b = conn_spanmetrics_bounds(&c, &n);
    ASSERT_EQ_UINT(n, 16);
    ASSERT_TRUE(b[0] == 2 && b[10] == 1000 && b[15] == 15000);
    om_free(b);
    om_fields_free(conn_spanmetrics_fields, &c);
    om_config_free(y);
    free(p);
}

static void expect_problem(const char *text, const char *want)
{
    conn_spanmetrics_cfg_t c;
    om_config_t *y = NULL;
    char *p = load_cfg(&c, &y, text);
    ASSERT_CONTAINS(p, want);
    om_fields_free(conn_spanmetrics_fields, &c);
    om_config_free(y);
    free(p);
}

static void test_config_errors(void)
{
    expect_problem("  dimensions: [{name: span.kind}]\n",
                   "dimensions: failed validating dimensions: duplicate dimension name span.kind");
    expect_problem("  dimensions: [{name: a}, {name: a}]\n", "duplicate dimension name a");
    expect_problem("  dimensions: [{default: x}]\n",
                   "s.yaml:2:16: connectors::spanmetrics::dimensions[0]: missing required key "
                   "\"name\"");
    expect_problem("  histogram: {explicit: {buckets: [1ms]}, exponential: {}}\n",
                   "histogram: use either `explicit` or `exponential` buckets histogram");
    expect_problem("  histogram: {explicit: {buckets: [5ms, 1ms]}}\n",
                   "histogram::explicit::buckets: must be increasing (\"1ms\")");
    expect_problem("  histogram: {explicit: {buckets: [5q]}}\n",
                   "histogram::explicit::buckets: unknown unit \"q\" in duration \"5q\"");
    expect_problem("  histogram: {unit: us}\n",
                   "s.yaml:2:21: connectors::spanmetrics::histogram::unit: unknown value \"us\" "
                   "(valid values: [ms, s])");
    expect_problem("  metrics_flush_interval: 0s\n",
                   "metrics_flush_interval: invalid metrics_flush_interval: 0s, the duration "
                   "should be positive");
    expect_problem("  aggregation_temporality: AGGREGATION_TEMPORALITY_DELTA\n"
                   "  metric_timestamp_cache_size: 0\n",
                   "invalid delta timestamp cache size: 0, the maximum number of the items in "
                   "the cache should be positive");
    expect_problem("  aggregation_cardinality_limit: -1\n",
                   "invalid aggregation_cardinality_limit: -1, the limit should be positive");
    expect_problem("  aggregation_temporality: sometimes\n", "unknown value \"sometimes\"");
    expect_problem("  events: {enabled: true, dimensions: [{name: exception.type}]}\n",
                   "events::enabled: the events metric is not implemented by otelmon");
    expect_problem("  enable_metrics_sampling_method: true\n", "not supported by otelmon");
    expect_problem("  resource_metrics_cache_size: 0\n", "is out of range");
}

/* One resource, spans of two names with known durations. */
static om_batch_t *durations_batch(void)
{
    return om_testdata_otlp(
        "resource service.name=shop; scope s;"
        "span 'GET /' kind:server status:ok start:0 end:1000000;"       /* 1ms */
        "span 'GET /' kind:server status:ok start:0 end:3000000;"       /* 3ms */
        "span 'GET /' kind:server status:ok start:10 end:3000010;"      /* 3ms */
        "span 'GET /' kind:server status:ok start:0 end:20000000;"      /* 20ms */
        "span 'GET /' kind:server status:ok start:0 end:2000000000;"    /* 2s: bound 2000 */
        "span 'GET /' kind:server status:ok start:0 end:20000000000;"   /* 20s: +Inf */
        "span POST kind:client status:error start:5000000 end:1000000;" /* end < start: 0 */
        "span POST kind:client status:error start:0 end:4000001");      /* just over 4ms */
}

static void test_counts_and_buckets(void)
{
    fx_t f;
    ASSERT_TRUE(fx_init(&f, ""));
    ASSERT_EQ_INT(consume(&f, durations_batch()), 0);
    f.now = T0 + 15 * OM_NS_PER_S;
    om_batch_t *b = flush(&f, true);
    ASSERT_TRUE(b != NULL);
    ASSERT_EQ_UINT(b->items, 4); /* 2 series x (calls, duration) */
    om_metric_t *calls = metric(b, 0, "traces.span.metrics.calls");
    ASSERT_TRUE(calls != NULL &&
                calls->data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM);
    ASSERT_TRUE(calls->sum->is_monotonic);
    ASSERT_EQ_INT(
        calls->sum->aggregation_temporality,
        OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE);
    ASSERT_EQ_STR(calls->unit, "");
    om_metric_t *dur = metric(b, 0, "traces.span.metrics.duration");
    ASSERT_TRUE(dur != NULL);
    ASSERT_EQ_STR(dur->unit, "ms");
    om_resource_metrics_t *rm = b->metrics->resource_metrics[0];
    ASSERT_TRUE(
        attr_is(rm->resource->attributes, rm->resource->n_attributes, "service.name", "shop"));
    ASSERT_EQ_STR(rm->scope_metrics[0]->scope->name, "spanmetricsconnector");

    om_number_dp_t *get = calls_of(b, "GET /"), *post = calls_of(b, "POST");
    ASSERT_TRUE(get != NULL && post != NULL);
    ASSERT_EQ_INT(get->as_int, 6);
    ASSERT_EQ_INT(post->as_int, 2);
    ASSERT_EQ_UINT(get->start_time_unix_nano, T0);
    ASSERT_EQ_UINT(get->time_unix_nano, T0 + 15 * OM_NS_PER_S);
    ASSERT_EQ_UINT(get->n_attributes, 4);
    ASSERT_TRUE(attr_is(get->attributes, 4, "service.name", "shop"));
    ASSERT_TRUE(attr_is(get->attributes, 4, "span.kind", "SPAN_KIND_SERVER"));
    ASSERT_TRUE(attr_is(get->attributes, 4, "status.code", "STATUS_CODE_OK"));
    ASSERT_TRUE(attr_is(post->attributes, 4, "span.kind", "SPAN_KIND_CLIENT"));
    ASSERT_TRUE(attr_is(post->attributes, 4, "status.code", "STATUS_CODE_ERROR"));

    om_histogram_dp_t *h = hist_of(b, "GET /");
    ASSERT_TRUE(h != NULL);
    ASSERT_EQ_UINT(h->count, 6);
    ASSERT_TRUE(fabs(h->sum - 22027.0) < 1e-6);
    ASSERT_EQ_UINT(h->n_explicit_bounds, 16);
    ASSERT_EQ_UINT(h->n_bucket_counts, 17);
    static const uint64_t want[17] = {1, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1};
    for (int i = 0; i < 17; i++) {
        ASSERT_EQ_UINT(h->bucket_counts[i], want[i]);
    }
    h = hist_of(b, "POST");
    ASSERT_EQ_UINT(h->bucket_counts[0], 1); /* 0 */
    ASSERT_EQ_UINT(h->bucket_counts[2], 1); /* 4.000001ms: above the bound 4 */
    fx_free(&f);
}

/* otelcol (v0.124 on) sends a new cumulative calls series as 0 at its first flush, then its
 * count; the count keeps growing across flushes and the start time stays. */
static void test_cumulative(void)
{
    fx_t f;
    ASSERT_TRUE(fx_init(&f, ""));
    ASSERT_EQ_INT(consume(&f, durations_batch()), 0);
    f.now = T0 + OM_NS_PER_S;
    om_batch_t *b = flush(&f, false);
    ASSERT_EQ_INT(calls_of(b, "GET /")->as_int, 0);
    ASSERT_EQ_UINT(hist_of(b, "GET /")->count, 6); /* histograms are not held back */
    ASSERT_EQ_INT(consume(&f, durations_batch()), 0);
    f.now = T0 + 2 * OM_NS_PER_S;
    b = flush(&f, false);
    ASSERT_EQ_INT(calls_of(b, "GET /")->as_int, 12);
    ASSERT_EQ_UINT(calls_of(b, "GET /")->start_time_unix_nano, T0);
    ASSERT_EQ_UINT(hist_of(b, "GET /")->count, 12);
    /* With nothing new, cumulative series are sent again as they are. */
    f.now = T0 + 3 * OM_NS_PER_S;
    b = flush(&f, false);
    ASSERT_EQ_INT(calls_of(b, "GET /")->as_int, 12);
    fx_free(&f);
}

static void test_delta(void)
{
    fx_t f;
    ASSERT_TRUE(fx_init(&f, "  aggregation_temporality: AGGREGATION_TEMPORALITY_DELTA\n"));
    ASSERT_EQ_INT(consume(&f, durations_batch()), 0);
    uint64_t t1 = T0 + OM_NS_PER_S;
    f.now = t1;
    om_batch_t *b = flush(&f, false);
    ASSERT_EQ_INT(
        metric(b, 0, "traces.span.metrics.calls")->sum->aggregation_temporality,
        OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_DELTA);
    ASSERT_EQ_INT(calls_of(b, "GET /")->as_int, 6); /* no 0 first in delta */
    ASSERT_EQ_UINT(calls_of(b, "GET /")->start_time_unix_nano, T0);
    /* Nothing counted: nothing sent. */
    f.now = T0 + 2 * OM_NS_PER_S;
    ASSERT_TRUE(flush(&f, false) == NULL);
    /* Counted again: only the new spans, from where its last point ended. */
    ASSERT_EQ_INT(consume(&f, om_testdata_otlp("resource service.name=shop; scope s;"
                                               "span 'GET /' kind:server status:ok end:1000000")),
                  0);
    f.now = T0 + 3 * OM_NS_PER_S;
    b = flush(&f, false);
    ASSERT_EQ_INT(calls_of(b, "GET /")->as_int, 1);
    ASSERT_TRUE(calls_of(b, "POST") == NULL);
    ASSERT_EQ_UINT(calls_of(b, "GET /")->start_time_unix_nano, t1);
    ASSERT_EQ_UINT(hist_of(b, "GET /")->count, 1);
    ASSERT_EQ_UINT(hist_of(b, "GET /")->bucket_counts[0], 1);
    fx_free(&f);
}

/* Delta keeps idle series (for their start times) up to metric_timestamp_cache_size. */
static void test_delta_idle_bound(void)
{
    fx_t f;
    ASSERT_TRUE(fx_init(&f, "  aggregation_temporality: AGGREGATION_TEMPORALITY_DELTA\n"
                            "  metric_timestamp_cache_size: 1\n"));
    ASSERT_EQ_INT(consume(&f, durations_batch()), 0);
    f.now = T0 + OM_NS_PER_S;
    ASSERT_TRUE(flush(&f, false) != NULL);
    f.now = T0 + 2 * OM_NS_PER_S;
    ASSERT_TRUE(flush(&f, false) == NULL);
    spm_t *a = conn_spanmetrics_agg(f.self);
    ASSERT_EQ_UINT(a->n_idle, 1);
    ASSERT_EQ_UINT(a->n_series, 1);
    fx_free(&f);
}

static void test_dimensions(void)
{
    fx_t f;
    ASSERT_TRUE(fx_init(&f, "  dimensions:\n"
                            "    - name: http.method\n"
                            "      default: GET\n"
                            "    - name: http.status_code\n"
                            "    - name: region\n"
                            "  exclude_dimensions: [status.code, span.kind]\n"));
    ASSERT_EQ_INT(consume(&f, om_testdata_otlp("resource service.name=shop region=eu; scope s;"
                                               "span a http.method=POST http.status_code=500;"
                                               "span b;"
                                               "span c region=us;"
                                               "span c region=us http.method=GET")),
                  0);
    om_batch_t *b = flush(&f, true);
    om_number_dp_t *dp = calls_of(b, "a");
    ASSERT_TRUE(dp != NULL);
    ASSERT_EQ_UINT(dp->n_attributes, 5);
    ASSERT_TRUE(attr_is(dp->attributes, 5, "span.kind", NULL));
    ASSERT_TRUE(attr_is(dp->attributes, 5, "status.code", NULL));
    ASSERT_TRUE(attr_is(dp->attributes, 5, "http.method", "POST"));
    const om_anyvalue_t *code = attr(dp->attributes, 5, "http.status_code");
    ASSERT_TRUE(code != NULL && code->value_case == OM_ANYVALUE_INT && code->int_value == 500);
    ASSERT_TRUE(attr_is(dp->attributes, 5, "region", "eu")); /* from the resource */
    /* The order: the defaults, then the dimensions as configured. */
    ASSERT_EQ_STR(dp->attributes[0]->key, "service.name");
    ASSERT_EQ_STR(dp->attributes[1]->key, "span.name");
    ASSERT_EQ_STR(dp->attributes[2]->key, "http.method");
    dp = calls_of(b, "b");
    ASSERT_EQ_UINT(dp->n_attributes, 4); /* no http.status_code: no default */
    ASSERT_TRUE(attr_is(dp->attributes, 4, "http.method", "GET"));
    /* The span's attribute wins over the resource's; the default equals an explicit GET. */
    dp = calls_of(b, "c");
    ASSERT_TRUE(attr_is(dp->attributes, dp->n_attributes, "region", "us"));
    ASSERT_EQ_INT(dp->as_int, 2);
    fx_free(&f);
}

/* calls_dimensions and histogram.dimensions: each metric has its own series. */
static void test_per_metric_dimensions(void)
{
    fx_t f;
    ASSERT_TRUE(fx_init(&f, "  calls_dimensions: [{name: a}]\n"
                            "  histogram: {dimensions: [{name: b}]}\n"));
    ASSERT_EQ_INT(consume(&f, om_testdata_otlp("resource service.name=s; scope s;"
                                               "span x a=1 b=1; span x a=1 b=2; span x a=2 b=2")),
                  0);
    om_batch_t *b = flush(&f, true);
    om_metric_t *calls = metric(b, 0, "traces.span.metrics.calls");
    om_metric_t *dur = metric(b, 0, "traces.span.metrics.duration");
    ASSERT_EQ_UINT(calls->sum->n_data_points, 2);
    ASSERT_EQ_UINT(dur->histogram->n_data_points, 2);
    for (size_t i = 0; i < 2; i++) {
        om_number_dp_t *c = calls->sum->data_points[i];
        om_histogram_dp_t *h = dur->histogram->data_points[i];
        ASSERT_TRUE(attr(c->attributes, c->n_attributes, "b") == NULL);
        ASSERT_TRUE(attr(h->attributes, h->n_attributes, "a") == NULL);
        int64_t av = attr(c->attributes, c->n_attributes, "a")->int_value;
        int64_t bv = attr(h->attributes, h->n_attributes, "b")->int_value;
        ASSERT_EQ_INT(c->as_int, av == 1 ? 2 : 1);
        ASSERT_EQ_UINT(h->count, bv == 1 ? 1 : 2);
    }
    fx_free(&f);
}

static void test_expiration(void)
{
    fx_t f;
    ASSERT_TRUE(fx_init(&f, "  metrics_expiration: 5s\n"));
    ASSERT_EQ_INT(consume(&f, durations_batch()), 0);
    f.now = T0 + 2 * OM_NS_PER_S;
    ASSERT_TRUE(flush(&f, false) != NULL);
    ASSERT_EQ_INT(consume(&f, om_testdata_otlp("resource service.name=shop; scope s;"
                                               "span POST kind:client status:error")),
                  0);
    /* At 6 s, GET / (last seen at 0) is sent a last time and dropped; POST (seen at 2 s)
     * stays. */
    f.now = T0 + 6 * OM_NS_PER_S;
    om_batch_t *b = flush(&f, false);
    ASSERT_TRUE(calls_of(b, "GET /") != NULL && calls_of(b, "POST") != NULL);
    f.now = T0 + 7 * OM_NS_PER_S;
    b = flush(&f, false);
    ASSERT_TRUE(calls_of(b, "GET /") == NULL);
    ASSERT_EQ_INT(calls_of(b, "POST")->as_int, 3);
    /* That was POST's last time too (seen at 2 s, 5 s ago), and the resource's: nothing more
     * is sent. */
    ASSERT_EQ_UINT(conn_spanmetrics_agg(f.self)->n_resources, 0);
    ASSERT_EQ_UINT(conn_spanmetrics_agg(f.self)->n_series, 0);
    f.now = T0 + 20 * OM_NS_PER_S;
    ASSERT_TRUE(flush(&f, false) == NULL);
    fx_free(&f);
}

static om_batch_t *names_batch(const char *names)
{
    return om_testdata_otlp("resource service.name=s; scope s; %s", names);
}

static void test_cardinality_limit(void)
{
    fx_t f;
    ASSERT_TRUE(fx_init(&f, "  aggregation_cardinality_limit: 2\n"));
    ASSERT_EQ_INT(consume(&f, names_batch("span a; span b; span c; span d; span a; span c")), 0);
    om_batch_t *b = flush(&f, true);
    om_metric_t *calls = metric(b, 0, "traces.span.metrics.calls");
    ASSERT_EQ_UINT(calls->sum->n_data_points, 3); /* a, b and the overflow series */
    ASSERT_EQ_INT(calls_of(b, "a")->as_int, 2);
    ASSERT_EQ_INT(calls_of(b, "b")->as_int, 1);
    om_number_dp_t *over = calls->sum->data_points[2];
    ASSERT_EQ_UINT(over->n_attributes, 1);
    ASSERT_EQ_STR(over->attributes[0]->key, "otel.metric.overflow");
    ASSERT_TRUE(over->attributes[0]->value->value_case == OM_ANYVALUE_BOOL &&
                over->attributes[0]->value->bool_value);
    ASSERT_EQ_INT(over->as_int, 3);
    ASSERT_EQ_UINT(total_calls(b), 6); /* nothing is lost */
    om_metric_t *dur = metric(b, 0, "traces.span.metrics.duration");
    ASSERT_EQ_UINT(dur->histogram->n_data_points, 3);
    ASSERT_EQ_UINT(dur->histogram->data_points[2]->count, 3);
    fx_free(&f);
}

/* Delta: the limit holds per interval; series over it in one interval may be real series in
 * the next. */
static void test_cardinality_limit_delta(void)
{
    fx_t f;
    ASSERT_TRUE(fx_init(&f, "  aggregation_cardinality_limit: 2\n"
                            "  aggregation_temporality: AGGREGATION_TEMPORALITY_DELTA\n"));
    ASSERT_EQ_INT(consume(&f, names_batch("span a; span b; span c")), 0);
    om_batch_t *b = flush(&f, false);
    ASSERT_TRUE(calls_of(b, "c") == NULL);
    ASSERT_EQ_UINT(total_calls(b), 3);
    ASSERT_EQ_INT(consume(&f, names_batch("span c; span d; span a")), 0);
    b = flush(&f, false);
    ASSERT_EQ_INT(calls_of(b, "c")->as_int, 1);
    ASSERT_EQ_INT(calls_of(b, "d")->as_int, 1);
    ASSERT_TRUE(calls_of(b, "a") == NULL); /* over the limit this time */
    ASSERT_EQ_UINT(total_calls(b), 3);
    fx_free(&f);
}

static void test_exemplars(void)
{
    fx_t f;
    ASSERT_TRUE(fx_init(&f, "  exemplars: {enabled: true, max_per_data_point: 2}\n"));
    ASSERT_EQ_INT(consume(&f, names_batch("span a trace:0102030405060708090a0b0c0d0e0f10 "
                                          "id:1112131415161718 end:2000000;"
                                          "span a trace:0102030405060708090a0b0c0d0e0f11 end:0;"
                                          "span a trace:0102030405060708090a0b0c0d0e0f12;"
                                          "span b")),
                  0);
    f.now = T0 + 5;
    om_batch_t *b = flush(&f, true);
    om_histogram_dp_t *h = hist_of(b, "a");
    ASSERT_EQ_UINT(h->n_exemplars, 2);
    om_exemplar_t *e = h->exemplars[0];
    ASSERT_EQ_UINT(e->trace_id.len, 16);
    ASSERT_EQ_UINT(e->trace_id.data[15], 0x10);
    ASSERT_EQ_UINT(e->span_id.len, 8);
    ASSERT_EQ_UINT(e->span_id.data[0], 0x11);
    ASSERT_TRUE(e->value_case == OPENTELEMETRY__PROTO__METRICS__V1__EXEMPLAR__VALUE_AS_DOUBLE &&
                fabs(e->as_double - 2.0) < 1e-9);
    ASSERT_EQ_UINT(e->time_unix_nano, T0 + 5);
    ASSERT_EQ_UINT(calls_of(b, "a")->n_exemplars, 2);
    ASSERT_EQ_UINT(hist_of(b, "b")->n_exemplars, 0); /* no trace id */
    /* Exemplars are of one flush only. */
    b = flush(&f, false);
    ASSERT_EQ_UINT(hist_of(b, "a")->n_exemplars, 0);
    fx_free(&f);
}

static void test_exponential_index(void)
{
    ASSERT_EQ_INT(conn_spanmetrics_expo_index(1, 0), -1);
    ASSERT_EQ_INT(conn_spanmetrics_expo_index(2, 0), 0);
    ASSERT_EQ_INT(conn_spanmetrics_expo_index(3, 0), 1);
    ASSERT_EQ_INT(conn_spanmetrics_expo_index(4, 0), 1);
    ASSERT_EQ_INT(conn_spanmetrics_expo_index(4.5, 0), 2);
    ASSERT_EQ_INT(conn_spanmetrics_expo_index(2, 1), 1);
    ASSERT_EQ_INT(conn_spanmetrics_expo_index(3, 1), 3);
    ASSERT_EQ_INT(conn_spanmetrics_expo_index(0.5, 1), -3);
    ASSERT_EQ_INT(conn_spanmetrics_expo_index(1000, -2), 2); /* 2^9.97: (256, 65536] at base 16 */
    ASSERT_EQ_INT(conn_spanmetrics_expo_index(16, -2), 0);
    ASSERT_EQ_INT(conn_spanmetrics_expo_index(17, -2), 1);
    /* Buckets at a lower scale are unions of those above: index >> by. */
    for (double v = 0.001; v < 1e7; v *= 1.37) {
        for (int s = 1; s <= 20; s++) {
            ASSERT_EQ_INT(conn_spanmetrics_expo_index(v, s - 1),
                          conn_spanmetrics_expo_index(v, s) >> 1);
        }
    }
}

static void test_exponential_histogram(void)
{
    spm_expo_t e;
    conn_spanmetrics_expo_init(&e);
    double vals[] = {0, 1, 2, 3, 1000, 0.25, 7, 7};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        ASSERT_TRUE(conn_spanmetrics_expo_add(&e, vals[i], 4));
    }
    ASSERT_EQ_UINT(e.total, 8);
    ASSERT_EQ_UINT(e.zero_count, 1);
    ASSERT_TRUE(e.len <= 4);
    ASSERT_TRUE(e.min == 0 && e.max == 1000);
    uint64_t n = 0;
    for (uint32_t i = 0; i < e.len; i++) {
        n += e.counts[i];
    }
    ASSERT_EQ_UINT(n, 7);
    /* Every value lies in its bucket at the final scale. */
    for (size_t i = 1; i < sizeof vals / sizeof vals[0]; i++) {
        int32_t idx = conn_spanmetrics_expo_index(vals[i], e.scale);
        ASSERT_TRUE(idx >= e.offset && idx < e.offset + (int32_t)e.len);
        ASSERT_TRUE(e.counts[idx - e.offset] > 0);
    }
    om_free(e.counts);

    fx_t f;
    ASSERT_TRUE(fx_init(&f, "  histogram: {unit: s, exponential: {max_size: 8}}\n"));
    ASSERT_EQ_INT(consume(&f, names_batch("span a end:500000000; span a end:0; span a "
                                          "end:3000000000")),
                  0);
    om_batch_t *b = flush(&f, true);
    om_metric_t *m = metric(b, 0, "traces.span.metrics.duration");
    ASSERT_EQ_STR(m->unit, "s");
    ASSERT_TRUE(m->data_case ==
                OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM);
    om_exp_histogram_dp_t *dp = m->exponential_histogram->data_points[0];
    ASSERT_EQ_UINT(dp->count, 3);
    ASSERT_EQ_UINT(dp->zero_count, 1);
    ASSERT_TRUE(fabs(dp->sum - 3.5) < 1e-9 && dp->min == 0 && dp->max == 3);
    ASSERT_TRUE(dp->positive->n_bucket_counts <= 8);
    uint64_t in_buckets = 0;
    for (size_t i = 0; i < dp->positive->n_bucket_counts; i++) {
        in_buckets += dp->positive->bucket_counts[i];
    }
    ASSERT_EQ_UINT(in_buckets, 2);
    fx_free(&f);
}

static void test_resources(void)
{
    fx_t f;
    ASSERT_TRUE(fx_init(&f, "  resource_metrics_key_attributes: [service.name]\n"));
    ASSERT_EQ_INT(consume(&f, om_testdata_otlp("resource service.name=s pid=1; scope x; span a;"
                                               "resource service.name=s pid=2; scope x; span a;"
                                               "resource service.name=t pid=3; scope x; span a;"
                                               "resource pid=4; scope x; span a")),
                  0);
    om_batch_t *b = flush(&f, true);
    /* s's two resources are one (attributes of the first seen); a resource without
     * service.name is skipped. */
    ASSERT_EQ_UINT(b->metrics->n_resource_metrics, 2);
    ASSERT_EQ_UINT(total_calls(b), 3);
    fx_free(&f);

    ASSERT_TRUE(fx_init(&f, "  resource_metrics_cache_size: 1\n"));
    ASSERT_EQ_INT(consume(&f, om_testdata_otlp("resource service.name=s; scope x; span a;"
                                               "resource service.name=t; scope x; span a")),
                  0);
    b = flush(&f, true);
    ASSERT_EQ_UINT(b->metrics->n_resource_metrics, 1);
    om_resource_metrics_t *rm = b->metrics->resource_metrics[0];
    ASSERT_TRUE(attr_is(rm->resource->attributes, rm->resource->n_attributes, "service.name", "t"));
    ASSERT_EQ_UINT(conn_spanmetrics_agg(f.self)->dropped_resources, 1);
    fx_free(&f);
}

static void test_namespace_and_scope(void)
{
    fx_t f;
    ASSERT_TRUE(fx_init(&f, "  namespace: ''\n"
                            "  include_instrumentation_scope: [lib]\n"
                            "  histogram: {disable: true}\n"));
    ASSERT_EQ_INT(consume(&f, om_testdata_otlp("resource service.name=s; scope lib@1.2; span a;"
                                               "scope other; span a")),
                  0);
    om_batch_t *b = flush(&f, true);
    om_metric_t *calls = metric(b, 0, "calls");
    ASSERT_TRUE(calls != NULL);
    ASSERT_TRUE(metric(b, 0, "duration") == NULL);
    ASSERT_EQ_UINT(calls->sum->n_data_points, 2);
    int with_scope = 0;
    for (size_t i = 0; i < 2; i++) {
        om_number_dp_t *dp = calls->sum->data_points[i];
        if (attr_is(dp->attributes, dp->n_attributes, "span.instrumentation.scope.name", "lib")) {
            with_scope++;
            ASSERT_TRUE(attr_is(dp->attributes, dp->n_attributes,
                                "span.instrumentation.scope.version", "1.2"));
        }
    }
    ASSERT_EQ_INT(with_scope, 1);
    fx_free(&f);
}

/* The traces batch is read, not changed: a shared batch that arrived as bytes still has its
 * bytes and holders afterwards. */
static void test_batch_left_unchanged(void)
{
    fx_t f;
    ASSERT_TRUE(fx_init(&f, ""));
    om_batch_t *w = om_testdata_wire(durations_batch());
    ASSERT_TRUE(w != NULL && w->raw_valid);
    size_t size = om_batch_proto_size(w);
    ASSERT_EQ_INT(consume(&f, om_batch_ref(w)), 0);
    ASSERT_EQ_UINT(w->refs, 1);
    ASSERT_TRUE(w->raw_valid);
    ASSERT_EQ_UINT(w->items, 8);
    ASSERT_EQ_UINT(om_batch_proto_size(w), size);
    om_batch_release(w);
    ASSERT_EQ_UINT(total_calls(flush(&f, true)), 8);
    fx_free(&f);
}

/* Shutdown sends what was counted since the last flush, with cumulative counts as they are. */
static void test_shutdown_flushes(void)
{
    fx_t f;
    ASSERT_TRUE(fx_init(&f, ""));
    om_err_t err = {0};
    ASSERT_EQ_INT(conn_spanmetrics_factory.start(f.self, &err), 0);
    ASSERT_EQ_INT(consume(&f, durations_batch()), 0);
    int done = 0;
    conn_spanmetrics_factory.shutdown(f.self, done_cb, &done);
    ASSERT_EQ_INT(f.sent, 1);
    ASSERT_EQ_UINT(total_calls(f.out), 8);
    ASSERT_EQ_INT(consume(&f, durations_batch()), OM_ESHUTDOWN);
    for (int i = 0; i < 1000 && !done; i++) {
        uv_run(&f.loop, UV_RUN_ONCE);
    }
    ASSERT_EQ_INT(done, 1);
    fx_free(&f); /* a second shutdown does nothing */
}

/* The flush timer sends at metrics_flush_interval. */
static void test_timer(void)
{
    fx_t f;
    ASSERT_TRUE(fx_init(&f, "  metrics_flush_interval: 20ms\n"));
    om_err_t err = {0};
    ASSERT_EQ_INT(conn_spanmetrics_factory.start(f.self, &err), 0);
    ASSERT_EQ_INT(consume(&f, durations_batch()), 0);
    for (int i = 0; i < 1000 && f.sent < 2; i++) {
        uv_run(&f.loop, UV_RUN_ONCE);
    }
    ASSERT_TRUE(f.sent >= 2);
    ASSERT_EQ_UINT(total_calls(f.out), 8);
    fx_free(&f);
}

/* ---- the wire path against the struct path ------------------------------------------------ */

/* A protobuf writer for requests no SDK would send. */
typedef struct pb {
    uint8_t b[2048];
    size_t n;
} pb_t;

static void pb_varint(pb_t *p, uint64_t v)
{
    do {
        p->b[p->n++] = (uint8_t)((v & 0x7f) | (v >= 0x80 ? 0x80 : 0));
        v >>= 7;
    } while (v != 0);
}

static void pb_len(pb_t *p, uint32_t f, const void *d, size_t n)
{
    pb_varint(p, (uint64_t)f << 3 | 2);
    pb_varint(p, n);
    memcpy(p->b + p->n, d, n);
    p->n += n;
}

static void pb_str(pb_t *p, uint32_t f, const char *s)
{
    pb_len(p, f, s, strlen(s));
}

static void pb_msg(pb_t *p, uint32_t f, const pb_t *m)
{
    pb_len(p, f, m->b, m->n);
}

static void pb_uint(pb_t *p, uint32_t f, uint64_t v)
{
    pb_varint(p, (uint64_t)f << 3);
    pb_varint(p, v);
}

/* A varint field numbered 0, its tag in two bytes: protobuf-c refuses a one-byte tag
 * without field-number bits, but takes this one as an unknown field. */
static void pb_field_zero(pb_t *p, uint64_t v)
{
    p->b[p->n++] = 0x80;
    p->b[p->n++] = 0x00;
    pb_varint(p, v);
}

/* A varint field numbered 2^32 - 1, above protobuf's limit (2^29 - 1), which protobuf-c
 * does not check: an unknown field. */
static void pb_field_huge(pb_t *p, uint64_t v)
{
    pb_varint(p, UINT64_C(0xffffffff) << 3);
    pb_varint(p, v);
}

/* KeyValue{key, value: AnyValue{string}} (twice: a second value field). */
static void pb_kv(pb_t *p, uint32_t f, const char *k, const char *v, bool twice)
{
    pb_t any = {0}, kv = {0};
    pb_str(&any, 1, v);
    pb_str(&kv, 1, k);
    pb_msg(&kv, 2, &any);
    if (twice) {
        pb_msg(&kv, 2, &any);
    }
    pb_msg(p, f, &kv);
}

/* One request of one resource entry whose parts the caller shapes. */
typedef enum {
    ODD_NONE,
    ODD_RESOURCE_TWICE,  /* protobuf-c merges the two resources */
    ODD_STATUS_TWICE,    /* and the two statuses */
    ODD_VALUE_TWICE,     /* and the two values of an attribute */
    ODD_ONEOF_TWICE,     /* keeps the last of two values of an AnyValue */
    ODD_SCOPE_AFTER,     /* the scope after the spans, the resource after the scopes: plain */
    ODD_NUL_AND_UNKNOWN, /* a NUL in a name, unknown fields, fields repeated: plain */
    ODD_FIELD_NUMBERS,   /* unknown fields numbered 0 and 2^32 - 1 (as protobuf-c): plain */
} odd_t;

static void odd_span(pb_t *span, odd_t odd)
{
    pb_t st = {0};
    uint8_t tid[16] = {1, 2, 3}, sid[8] = {9};
    pb_len(span, 1, tid, 16);
    pb_len(span, 2, sid, 8);
    pb_str(span, 5, odd == ODD_NUL_AND_UNKNOWN ? "GET" : "GET /x");
    if (odd == ODD_NUL_AND_UNKNOWN) {
        pb_len(span, 5, "GET\0hidden", 10); /* the last name wins, up to the NUL */
        pb_uint(span, 99, 7);
        pb_uint(span, 6, 3);
    }
    pb_uint(span, 6, 2);
    pb_uint(&st, 3, 2);
    pb_msg(span, 15, &st);
    if (odd == ODD_STATUS_TWICE) {
        pb_t st2 = {0};
        pb_str(&st2, 2, "message");
        pb_msg(span, 15, &st2);
    }
    pb_kv(span, 9, "a", "va", odd == ODD_VALUE_TWICE);
    if (odd == ODD_FIELD_NUMBERS) {
        pb_t any = {0}, kv = {0};
        pb_field_zero(&any, 1);
        pb_str(&any, 1, "PUT");
        pb_field_zero(&kv, 1);
        pb_str(&kv, 1, "http.method");
        pb_msg(&kv, 2, &any);
        pb_msg(span, 9, &kv);
        pb_field_zero(span, 5);
        pb_field_huge(span, 6);
    }
    if (odd == ODD_ONEOF_TWICE) {
        pb_t any = {0}, kv = {0};
        pb_str(&any, 1, "first");
        pb_uint(&any, 3, 42);
        pb_str(&kv, 1, "http.method");
        pb_msg(&kv, 2, &any);
        pb_msg(span, 9, &kv);
    }
}

static size_t odd_request(uint8_t *out, odd_t odd)
{
    pb_t res = {0}, scope = {0}, span = {0}, ss = {0}, rs = {0}, req = {0};
    pb_kv(&res, 1, "service.name", "svc", false);
    pb_kv(&res, 1, "region", "eu", odd == ODD_VALUE_TWICE);
    pb_str(&scope, 1, "lib");
    pb_str(&scope, 2, "1.0");
    odd_span(&span, odd);
    if (odd != ODD_SCOPE_AFTER) {
        pb_msg(&ss, 1, &scope);
    }
    pb_msg(&ss, 2, &span);
    pb_msg(&ss, 2, &span);
    if (odd == ODD_SCOPE_AFTER) {
        pb_msg(&ss, 1, &scope);
        pb_str(&ss, 3, "https://schema");
    }
    if (odd != ODD_SCOPE_AFTER) {
        pb_msg(&rs, 1, &res);
    }
    pb_msg(&rs, 2, &ss);
    if (odd == ODD_SCOPE_AFTER) {
        pb_msg(&rs, 1, &res);
    }
    if (odd == ODD_RESOURCE_TWICE) {
        pb_t res2 = {0};
        pb_kv(&res2, 1, "region", "us", false);
        pb_msg(&rs, 1, &res2);
    }
    if (odd == ODD_FIELD_NUMBERS) {
        pb_field_zero(&rs, 3);
        pb_field_zero(&req, 3);
        pb_field_huge(&rs, 4);
        pb_field_huge(&req, 4);
    }
    pb_msg(&req, 1, &rs);
    pb_msg(&req, 1, &rs);
    memcpy(out, req.b, req.n);
    return req.n;
}

static const char *const diff_configs[] = {
    "",
    "  dimensions: [{name: http.method, default: GET}, {name: a}, {name: region}]\n"
    "  exclude_dimensions: [status.code]\n"
    "  include_instrumentation_scope: [lib, '']\n"
    "  exemplars: {enabled: true, max_per_data_point: 3}\n"
    "  resource_metrics_key_attributes: [service.name, region]\n",
    "  calls_dimensions: [{name: a}]\n"
    "  histogram: {dimensions: [{name: b, default: x}], exponential: {max_size: 4}}\n"
    "  aggregation_cardinality_limit: 3\n"
    "  aggregation_temporality: AGGREGATION_TEMPORALITY_DELTA\n",
    "  dimensions: [{name: a}]\n"
    "  histogram: {disable: true}\n"
    "  resource_metrics_cache_size: 2\n",
};
#define N_DIFF (sizeof diff_configs / sizeof diff_configs[0])

static uint8_t *packed(spm_t *a, size_t *len)
{
    om_batch_t *b = NULL;
    *len = 0;
    if (conn_spanmetrics_build(a, T0 + 1, true, &b) != 0 || b == NULL) {
        return NULL;
    }
    *len = om_batch_proto_size(b);
    uint8_t *out = malloc(*len);
    om_batch_proto_pack(b, out);
    om_batch_release(b);
    return out;
}

/* Counts the request both ways under config i; returns the wire path's fallbacks, -1 when
 * they disagree. Writes it as a seed of the fuzz target when OM_WRITE_CORPUS names a
 * directory (how test/fuzz/corpus/spanmetrics was made). */
static int differ(size_t i, const uint8_t *req, size_t n, const char *seed)
{
    const char *dir = getenv("OM_WRITE_CORPUS");
    if (dir != NULL && seed != NULL) {
        char path[256];
        snprintf(path, sizeof path, "%s/%s-%zu.bin", dir, seed, i);
        FILE *fp = fopen(path, "wb");
        uint8_t c = (uint8_t)i;
        if (fp != NULL) {
            fwrite(&c, 1, 1, fp);
            fwrite(req, 1, n, fp);
            fclose(fp);
        }
    }
    conn_spanmetrics_cfg_t cfg;
    om_config_t *y = NULL;
    char *problems = load_cfg(&cfg, &y, diff_configs[i]);
    spm_t w, s;
    om_batch_t *b = NULL;
    om_err_t err = {0};
    int fallbacks = -1;
    if (problems[0] == '\0' && conn_spanmetrics_init(&w, &cfg, "w") == 0 &&
        conn_spanmetrics_init(&s, &cfg, "s") == 0) {
        bool ok = om_batch_decode_proto(OM_SIG_TRACES, req, n, 0, &b, &err) == 0 &&
                  om_batch_decode(b, &err) == 0 && conn_spanmetrics_add(&s, b->traces, T0) == 0 &&
                  conn_spanmetrics_add_wire(&w, req, n, T0) == 0;
        size_t wl = 0, sl = 0;
        uint8_t *wb = packed(&w, &wl), *sb = packed(&s, &sl);
        ok = ok && wl == sl && (wl == 0 || memcmp(wb, sb, wl) == 0) && w.n_series == s.n_series;
        fallbacks = ok ? (int)w.wire_fallbacks : -1;
        free(wb);
        free(sb);
        conn_spanmetrics_free(&w);
        conn_spanmetrics_free(&s);
    }
    om_batch_release(b);
    om_fields_free(conn_spanmetrics_fields, &cfg);
    om_config_free(y);
    free(problems);
    return fallbacks;
}

static int differ_batch(size_t i, om_batch_t *b, const char *seed)
{
    size_t n = om_batch_proto_size(b);
    uint8_t *req = malloc(n);
    om_batch_proto_pack(b, req);
    int rc = differ(i, req, n, seed);
    free(req);
    om_batch_release(b);
    return rc;
}

static void test_wire_path_equals_struct_path(void)
{
    for (size_t i = 0; i < N_DIFF; i++) {
        ASSERT_EQ_INT(differ_batch(i, durations_batch(), "durations"), 0);
        ASSERT_EQ_INT(differ_batch(i,
                                   om_testdata_otlp(
                                       "resource service.name=s region=eu pid=1; scope lib@2;"
                                       "span a kind:server status:error a=1 http.method=PUT "
                                       "trace:0102030405060708090a0b0c0d0e0f10 id:0102030405060708"
                                       " end:7000000;"
                                       "event e x=1;"
                                       "span b a=true b=2.5 region=0x0a0b end:1;"
                                       "scope other; span c a='x y' kind:producer;"
                                       "resource service.name=t region=eu pid=2; span d;"
                                       "resource pid=3; scope s; span e;"
                                       "resource service.name=7; scope s; span f kind:consumer"),
                                   "mixed"),
                      0);
        om_testdata_shape_t shape = {.resources = 3, .scopes = 2, .items = 5};
        ASSERT_EQ_INT(differ_batch(i, om_testdata_batch(OM_SIG_TRACES, &shape), "shape"), 0);
        uint8_t req[8192];
        static const char *const names[] = {"plain",       "resource-twice", "status-twice",
                                            "value-twice", "oneof-twice",    "scope-after",
                                            "nul-unknown", "field-numbers"};
        for (int odd = ODD_NONE; odd <= ODD_FIELD_NUMBERS; odd++) {
            size_t n = odd_request(req, (odd_t)odd);
            int fallbacks = differ(i, req, n, names[odd]);
            /* protobuf-c decides the entries (both) it would merge or replace something in
             * that counting reads: an AnyValue is read only when it is a dimension's. */
            int want = odd == ODD_RESOURCE_TWICE || odd == ODD_STATUS_TWICE ||
                               odd == ODD_VALUE_TWICE || (odd == ODD_ONEOF_TWICE && i == 1)
                           ? 2
                           : 0;
            ASSERT_EQ_INT(fallbacks, want);
        }
    }
}

/* ---- where the work runs ----------------------------------------------------------------- */

static void jobs(fx_t *f, uint64_t *worker, uint64_t *loop, size_t *q, uv_thread_t *t)
{
    conn_spanmetrics_jobs(f->self, worker, loop, q, t);
}

/* A batch of its wire bytes only (as the receiver hands it on), from one of structs. */
static om_batch_t *wire_batch(om_batch_t *d)
{
    size_t n = om_batch_proto_size(d);
    uint8_t *buf = malloc(n ? n : 1);
    om_batch_proto_pack(d, buf);
    om_batch_release(d);
    om_batch_t *w = NULL;
    om_err_t err = {0};
    if (om_batch_decode_proto(OM_SIG_TRACES, buf, n, 0, &w, &err) != 0) {
        w = NULL;
    }
    free(buf);
    return w;
}

/* The spans are scanned on a worker thread, from wire bytes and from structs; the loop only
 * merges. */
static void test_counted_off_the_loop(void)
{
    fx_t f;
    ASSERT_TRUE(fx_init(&f, ""));
    uv_thread_t loop_thread = uv_thread_self(), t;
    uint64_t ws, ls;
    size_t q;
    om_batch_t *w = wire_batch(durations_batch());
    ASSERT_TRUE(w != NULL && w->msg == NULL && w->raw_valid);
    ASSERT_EQ_INT(consume(&f, w), 0);
    jobs(&f, &ws, &ls, &q, &t);
    ASSERT_EQ_UINT(ws, 1);
    ASSERT_EQ_UINT(ls, 0);
    ASSERT_TRUE(!uv_thread_equal(&t, &loop_thread));
    om_batch_t *d = durations_batch();
    ASSERT_TRUE(d->msg != NULL);
    ASSERT_EQ_INT(consume(&f, d), 0);
    jobs(&f, &ws, &ls, &q, &t);
    ASSERT_EQ_UINT(ws, 2);
    ASSERT_TRUE(!uv_thread_equal(&t, &loop_thread));
    om_batch_t *b = flush(&f, true);
    ASSERT_EQ_UINT(total_calls(b), 16);
    ASSERT_EQ_UINT(hist_of(b, "GET /")->count, 12);
    fx_free(&f);
}

/* When the pool refuses the job, the loop scans the batch itself; it still merges after the
 * batches that came before it (the cardinality limit shows the order: the first key gets the
 * series). */
static void test_pool_refuses(void)
{
    fx_t f;
    ASSERT_TRUE(fx_init(&f, "  aggregation_cardinality_limit: 1\n"));
    uv_thread_t loop_thread = uv_thread_self(), t;
    uint64_t ws, ls;
    size_t q;
    om_workers_t *pool = f.host.workers;
    ASSERT_EQ_INT(conn_spanmetrics_factory.consume_traces(f.self, names_batch("span a")), 0);
    f.host.workers = NULL; /* om_workers_submit refuses: OM_ENOTSUP */
    ASSERT_EQ_INT(conn_spanmetrics_factory.consume_traces(f.self, names_batch("span b")), 0);
    jobs(&f, &ws, &ls, &q, &t);
    ASSERT_EQ_UINT(ls, 1);
    ASSERT_EQ_UINT(q, 2); /* b is scanned, and waits for a */
    f.host.workers = pool;
    OM_TEST_RUN_UNTIL(&f.loop, queued(&f) == 0, 10000);
    jobs(&f, &ws, &ls, &q, &t);
    ASSERT_EQ_UINT(ws, 1);
    ASSERT_EQ_UINT(q, 0);
    ASSERT_TRUE(uv_thread_equal(&t, &loop_thread)); /* b, merged last, was scanned here */
    om_batch_t *b = flush(&f, true);
    ASSERT_EQ_INT(calls_of(b, "a")->as_int, 1);
    ASSERT_TRUE(calls_of(b, "b") == NULL); /* in the overflow series */
    ASSERT_EQ_UINT(total_calls(b), 2);
    fx_free(&f);
}

/* Shutdown waits for the jobs in flight, and its last flush has all they counted. */
static void test_shutdown_waits_for_jobs(void)
{
    fx_t f;
    ASSERT_TRUE(fx_init(&f, ""));
    om_err_t err = {0};
    ASSERT_EQ_INT(conn_spanmetrics_factory.start(f.self, &err), 0);
    for (int i = 0; i < 5; i++) {
        ASSERT_EQ_INT(conn_spanmetrics_factory.consume_traces(f.self, durations_batch()), 0);
    }
    ASSERT_EQ_UINT(queued(&f), 5);
    int done = 0;
    conn_spanmetrics_factory.shutdown(f.self, done_cb, &done);
    ASSERT_EQ_INT(f.sent, 0); /* not before the jobs are back */
    ASSERT_EQ_INT(conn_spanmetrics_factory.consume_traces(f.self, durations_batch()), OM_ESHUTDOWN);
    for (int i = 0; i < 1000 && !done; i++) {
        uv_run(&f.loop, UV_RUN_ONCE);
    }
    ASSERT_EQ_INT(done, 1);
    ASSERT_EQ_INT(f.sent, 1);
    ASSERT_EQ_UINT(total_calls(f.out), 40);
    ASSERT_EQ_UINT(hist_of(f.out, "GET /")->count, 30);
    fx_free(&f);
}

/* The overflow series takes the exemplars of the first spans over the limit, whatever their
 * keys, as counting span by span does (a part holds them per key, with their order). */
static void test_overflow_exemplars_in_span_order(void)
{
    fx_t f;
    ASSERT_TRUE(fx_init(&f, "  aggregation_cardinality_limit: 1\n"
                            "  exemplars: {enabled: true, max_per_data_point: 2}\n"));
    ASSERT_EQ_INT(consume(&f, names_batch("span a trace:0102030405060708090a0b0c0d0e0f01;"
                                          "span b trace:0102030405060708090a0b0c0d0e0f02;"
                                          "span c trace:0102030405060708090a0b0c0d0e0f03;"
                                          "span b trace:0102030405060708090a0b0c0d0e0f04")),
                  0);
    om_batch_t *b = flush(&f, true);
    om_metric_t *calls = metric(b, 0, "traces.span.metrics.calls");
    ASSERT_TRUE(calls != NULL && calls->sum->n_data_points == 2);
    om_number_dp_t *over = calls->sum->data_points[1];
    ASSERT_EQ_INT(over->as_int, 3);
    ASSERT_EQ_UINT(over->n_exemplars, 2);
    ASSERT_EQ_UINT(over->exemplars[0]->trace_id.data[15], 0x02);
    ASSERT_EQ_UINT(over->exemplars[1]->trace_id.data[15], 0x03);
    om_metric_t *dur = metric(b, 0, "traces.span.metrics.duration");
    om_histogram_dp_t *h = dur->histogram->data_points[1];
    ASSERT_EQ_UINT(h->n_exemplars, 2);
    ASSERT_EQ_UINT(h->exemplars[1]->trace_id.data[15], 0x03);
    fx_free(&f);
}

static bool expo_same(const spm_expo_t *x, const spm_expo_t *y)
{
    if (x->scale != y->scale || x->zero_count != y->zero_count || x->total != y->total ||
        x->min != y->min || x->max != y->max || x->len != y->len ||
        (x->len > 0 && x->offset != y->offset)) {
        return false;
    }
    return x->len == 0 || memcmp(x->counts, y->counts, x->len * sizeof *x->counts) == 0;
}

/* Exponential histograms merged chunk by chunk are the histogram of the values added one by
 * one: same scale, buckets, counts. */
static void test_exponential_merge(void)
{
    uint64_t x = 88172645463325252u;
    double vals[600];
    for (size_t i = 0; i < 600; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        vals[i] = i % 50 == 0 ? 0 : exp((double)(x % 20000) / 1000.0 - 8.0);
    }
    uint32_t sizes[] = {2, 5, 20, 160};
    size_t chunks[] = {1, 3, 17, 100, 600};
    for (size_t si = 0; si < 4; si++) {
        for (size_t n = 60; n <= 600; n += 540) {
            spm_expo_t one;
            conn_spanmetrics_expo_init(&one);
            for (size_t i = 0; i < n; i++) {
                ASSERT_TRUE(conn_spanmetrics_expo_add(&one, vals[i], sizes[si]));
            }
            for (size_t ci = 0; ci < 5; ci++) {
                spm_expo_t all, part;
                conn_spanmetrics_expo_init(&all);
                conn_spanmetrics_expo_init(&part);
                for (size_t i = 0; i < n; i++) {
                    ASSERT_TRUE(conn_spanmetrics_expo_add(&part, vals[i], sizes[si]));
                    if ((i + 1) % chunks[ci] == 0 || i + 1 == n) {
                        ASSERT_TRUE(conn_spanmetrics_expo_merge(&all, &part, sizes[si]));
                        conn_spanmetrics_expo_reset(&part);
                    }
                }
                ASSERT_TRUE(expo_same(&one, &all));
                om_free(all.counts);
                om_free(part.counts);
            }
            om_free(one.counts);
        }
    }
}

int main(void)
{
    om_log_set_level(OM_LOG_ERROR);
    OM_RUN(test_lifecycle);
    OM_RUN(test_defaults);
    OM_RUN(test_config_errors);
    OM_RUN(test_counts_and_buckets);
    OM_RUN(test_cumulative);
    OM_RUN(test_delta);
    OM_RUN(test_delta_idle_bound);
    OM_RUN(test_dimensions);
    OM_RUN(test_per_metric_dimensions);
    OM_RUN(test_expiration);
    OM_RUN(test_cardinality_limit);
    OM_RUN(test_cardinality_limit_delta);
    OM_RUN(test_exemplars);
    OM_RUN(test_exponential_index);
    OM_RUN(test_exponential_histogram);
    OM_RUN(test_resources);
    OM_RUN(test_namespace_and_scope);
    OM_RUN(test_batch_left_unchanged);
    OM_RUN(test_shutdown_flushes);
    OM_RUN(test_timer);
    OM_RUN(test_wire_path_equals_struct_path);
    OM_RUN(test_counted_off_the_loop);
    OM_RUN(test_pool_refuses);
    OM_RUN(test_shutdown_waits_for_jobs);
    OM_RUN(test_overflow_exemplars_in_span_order);
    OM_RUN(test_exponential_merge);
    return om_test_summary();
}
