/* metrics_test.c: the metrics registry (src/metrics.c): series by name and labels, exact
 * counts under concurrent updates, histograms, observed gauges, and the visit that the
 * /metrics endpoint and zpages will read it through. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "om.h"
#include "om_test.h"
#include "om_testdata.h"
#include "telemetry.h"

static const om_metric_def_t sent_def = {.name = "otelcol_exporter_sent_spans",
                                         .help = "Number of spans successfully sent.",
                                         .unit = "{spans}",
                                         .type = OM_METRIC_COUNTER};
static const om_metric_def_t cpu_def = {.name = "otelcol_process_cpu_seconds",
                                        .help = "Total CPU user and system time in seconds.",
                                        .unit = "s",
                                        .type = OM_METRIC_COUNTER,
                                        .real = true};
static const om_metric_def_t queue_def = {
    .name = "otelcol_exporter_queue_size", .unit = "{batches}", .type = OM_METRIC_GAUGE};
static const om_metric_def_t ratio_def = {
    .name = "otelmon_ratio", .unit = "1", .type = OM_METRIC_GAUGE, .real = true};
static const double size_bounds[] = {10, 100, 1000};
static const om_metric_def_t size_def = {.name = "otelcol_processor_batch_batch_send_size",
                                         .unit = "{units}",
                                         .type = OM_METRIC_HISTOGRAM,
                                         .bounds = size_bounds,
                                         .n_bounds = 3};

static om_label_t exporter(const char *id)
{
    return (om_label_t){.key = "exporter", .value = id};
}

/* ------------------------------------------------------------------------------------------ */

static void test_labels_identify_series(void)
{
    om_metrics_t *m = om_metrics_new();
    ASSERT_TRUE(m != NULL);
    om_err_t err = {0};
    om_label_t a[] = {exporter("otlp"), {"data_type", "traces"}};
    om_label_t a_reordered[] = {{"data_type", "traces"}, exporter("otlp")};
    om_label_t b[] = {exporter("otlp/2"), {"data_type", "traces"}};
    om_metric_counter_t *ca, *ca2, *cb, *none;
    ASSERT_EQ_INT(om_metrics_counter(m, &sent_def, a, 2, &ca, &err), 0);
    ASSERT_EQ_INT(om_metrics_counter(m, &sent_def, a_reordered, 2, &ca2, &err), 0);
    ASSERT_EQ_INT(om_metrics_counter(m, &sent_def, b, 2, &cb, &err), 0);
    ASSERT_EQ_INT(om_metrics_counter(m, &sent_def, NULL, 0, &none, &err), 0);
    ASSERT_TRUE(ca == ca2); /* the same labels in another order: the same series */
    ASSERT_TRUE(ca != cb && ca != none && cb != none);
    om_metric_counter_add(ca, 5);
    om_metric_counter_add(ca2, 2);
    om_metric_counter_add(cb, 40);
    om_metric_sample_t s;
    const om_metric_def_t *def = NULL;
    ASSERT_EQ_INT(om_metrics_read(m, sent_def.name, a_reordered, 2, &def, &s), 0);
    ASSERT_EQ_UINT(s.value.u, 7);
    ASSERT_EQ_STR(def->unit, "{spans}");
    ASSERT_EQ_UINT(s.n_labels, 2);
    ASSERT_EQ_STR(s.labels[0].key, "data_type"); /* sorted by key */
    ASSERT_EQ_STR(s.labels[1].value, "otlp");
    ASSERT_EQ_INT(om_metrics_read(m, sent_def.name, b, 2, NULL, &s), 0);
    ASSERT_EQ_UINT(s.value.u, 40);
    ASSERT_EQ_INT(om_metrics_read(m, sent_def.name, NULL, 0, NULL, &s), 0);
    ASSERT_EQ_UINT(s.value.u, 0);
    /* A subset of the labels is another series, which does not exist. */
    ASSERT_EQ_INT(om_metrics_read(m, sent_def.name, a, 1, NULL, &s), OM_ENOTFOUND);
    ASSERT_EQ_INT(om_metrics_read(m, "otelcol_nothing", NULL, 0, NULL, &s), OM_ENOTFOUND);
    om_metrics_free(m);
}

static void test_bad_definitions_and_labels_are_refused(void)
{
    om_metrics_t *m = om_metrics_new();
    om_err_t err = {0};
    om_metric_counter_t *c;
    om_metric_def_t bad = sent_def;
    bad.name = "otelcol-exporter";
    ASSERT_EQ_INT(om_metrics_counter(m, &bad, NULL, 0, &c, &err), OM_EINVAL);
    ASSERT_CONTAINS(err.msg, "malformed metric name");
    bad.name = "9lives";
    err = (om_err_t){0};
    ASSERT_EQ_INT(om_metrics_counter(m, &bad, NULL, 0, &c, &err), OM_EINVAL);
    om_label_t dup[] = {exporter("a"), exporter("b")};
    err = (om_err_t){0};
    ASSERT_EQ_INT(om_metrics_counter(m, &sent_def, dup, 2, &c, &err), OM_EINVAL);
    ASSERT_CONTAINS(err.msg, "given twice");
    om_label_t reserved[] = {{"__name__", "x"}};
    err = (om_err_t){0};
    ASSERT_EQ_INT(om_metrics_counter(m, &sent_def, reserved, 1, &c, &err), OM_EINVAL);
    om_label_t dash[] = {{"data-type", "x"}};
    err = (om_err_t){0};
    ASSERT_EQ_INT(om_metrics_counter(m, &sent_def, dash, 1, &c, &err), OM_EINVAL);
    /* One name, one type: a gauge cannot reuse a counter's name. */
    ASSERT_EQ_INT(om_metrics_counter(m, &sent_def, NULL, 0, &c, &err), 0);
    om_metric_def_t as_gauge = sent_def;
    as_gauge.type = OM_METRIC_GAUGE;
    om_metric_gauge_t *g;
    err = (om_err_t){0};
    ASSERT_EQ_INT(om_metrics_gauge(m, &as_gauge, NULL, 0, &g, &err), OM_EINVAL);
    ASSERT_CONTAINS(err.msg, "already defined");
    /* The call must match the def's type. */
    err = (om_err_t){0};
    ASSERT_EQ_INT(om_metrics_gauge(m, &sent_def, NULL, 0, &g, &err), OM_EINVAL);
    /* Bounds must increase; the same name with other bounds is refused. */
    static const double down[] = {10, 5};
    om_metric_def_t h = size_def;
    h.bounds = down;
    h.n_bounds = 2;
    om_metric_histogram_t *hist;
    err = (om_err_t){0};
    ASSERT_EQ_INT(om_metrics_histogram(m, &h, NULL, 0, &hist, &err), OM_EINVAL);
    ASSERT_CONTAINS(err.msg, "strictly increasing");
    ASSERT_EQ_INT(om_metrics_histogram(m, &size_def, NULL, 0, &hist, &err), 0);
    h.n_bounds = 1;
    err = (om_err_t){0};
    ASSERT_EQ_INT(om_metrics_histogram(m, &h, NULL, 0, &hist, &err), OM_EINVAL);
    om_metrics_free(m);
}

/* ------------------------------------------------------------------------------------------ */
/* Concurrent updates                                                                         */

#define THREADS 4
#define ADDS 200000

typedef struct upd {
    om_metric_counter_t *c, *real;
    om_metric_gauge_t *g;
    om_metric_histogram_t *h;
} upd_t;

static void updater(void *arg)
{
    upd_t *u = arg;
    for (int i = 0; i < ADDS; i++) {
        om_metric_counter_add(u->c, 3);
        om_metric_counter_add_real(u->real, 0.5); /* exact in binary: the sum must be exact */
        om_metric_gauge_add(u->g, (i & 1) ? -1 : 2);
        om_metric_histogram_observe(u->h, (double)(i % 2000));
    }
}

static void test_concurrent_updates_sum_exactly(void)
{
    om_metrics_t *m = om_metrics_new();
    om_err_t err = {0};
    upd_t u;
    om_label_t l[] = {exporter("otlp")};
    ASSERT_EQ_INT(om_metrics_counter(m, &sent_def, l, 1, &u.c, &err), 0);
    ASSERT_EQ_INT(om_metrics_counter(m, &cpu_def, NULL, 0, &u.real, &err), 0);
    ASSERT_EQ_INT(om_metrics_gauge(m, &queue_def, l, 1, &u.g, &err), 0);
    ASSERT_EQ_INT(om_metrics_histogram(m, &size_def, NULL, 0, &u.h, &err), 0);
    uv_thread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) {
        ASSERT_EQ_INT(uv_thread_create(&t[i], updater, &u), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        uv_thread_join(&t[i]);
    }
    om_metric_sample_t s;
    ASSERT_EQ_INT(om_metrics_read(m, sent_def.name, l, 1, NULL, &s), 0);
    ASSERT_EQ_UINT(s.value.u, 3ull * ADDS * THREADS);
    ASSERT_EQ_INT(om_metrics_read(m, cpu_def.name, NULL, 0, NULL, &s), 0);
    ASSERT_TRUE(s.value.d == 0.5 * ADDS * THREADS);
    ASSERT_EQ_INT(om_metrics_read(m, queue_def.name, l, 1, NULL, &s), 0);
    ASSERT_EQ_INT(s.value.i, (int64_t)(ADDS / 2) * THREADS);
    ASSERT_EQ_INT(om_metrics_read(m, size_def.name, NULL, 0, NULL, &s), 0);
    ASSERT_EQ_UINT(s.count, (uint64_t)ADDS * THREADS);
    /* i % 2000 over 200000 values: 100 rounds of 0..1999; <= 10: 11, <= 100: 90 more,
     * <= 1000: 900 more, the rest 999. */
    ASSERT_EQ_UINT(s.buckets[0], 11ull * 100 * THREADS);
    ASSERT_EQ_UINT(s.buckets[1], 90ull * 100 * THREADS);
    ASSERT_EQ_UINT(s.buckets[2], 900ull * 100 * THREADS);
    ASSERT_EQ_UINT(s.buckets[3], 999ull * 100 * THREADS);
    ASSERT_TRUE(s.sum == 1999.0 * 2000 / 2 * 100 * THREADS); /* integers: exact */
    om_metrics_free(m);
}

/* ------------------------------------------------------------------------------------------ */
/* Values                                                                                     */

static void test_histogram_buckets_sum_count(void)
{
    om_metrics_t *m = om_metrics_new();
    om_err_t err = {0};
    om_metric_histogram_t *h;
    ASSERT_EQ_INT(om_metrics_histogram(m, &size_def, NULL, 0, &h, &err), 0);
    /* A value equal to a bound belongs to that bound's bucket (le, as Prometheus). */
    const double v[] = {0, 10, 10.5, 100, 1000, 1000.01, 5e9, -3};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        om_metric_histogram_observe(h, v[i]);
    }
    om_metric_sample_t s;
    ASSERT_EQ_INT(om_metrics_read(m, size_def.name, NULL, 0, NULL, &s), 0);
    ASSERT_EQ_UINT(s.buckets[0], 3); /* 0, 10, -3 */
    ASSERT_EQ_UINT(s.buckets[1], 2); /* 10.5, 100 */
    ASSERT_EQ_UINT(s.buckets[2], 1); /* 1000 */
    ASSERT_EQ_UINT(s.buckets[3], 2); /* 1000.01, 5e9 */
    ASSERT_EQ_UINT(s.count, 8);
    ASSERT_TRUE(fabs(s.sum - (0 + 10 + 10.5 + 100 + 1000 + 1000.01 + 5e9 - 3)) < 1e-3);
    om_metrics_free(m);
}

static void test_gauges_set_add_and_real(void)
{
    om_metrics_t *m = om_metrics_new();
    om_err_t err = {0};
    om_metric_gauge_t *g, *r;
    ASSERT_EQ_INT(om_metrics_gauge(m, &queue_def, NULL, 0, &g, &err), 0);
    ASSERT_EQ_INT(om_metrics_gauge(m, &ratio_def, NULL, 0, &r, &err), 0);
    om_metric_gauge_set(g, 10);
    om_metric_gauge_add(g, -13);
    om_metric_gauge_set_real(r, 0.25);
    om_metric_gauge_add_real(r, 0.5);
    om_metric_sample_t s;
    ASSERT_EQ_INT(om_metrics_read(m, queue_def.name, NULL, 0, NULL, &s), 0);
    ASSERT_EQ_INT(s.value.i, -3);
    ASSERT_EQ_INT(om_metrics_read(m, ratio_def.name, NULL, 0, NULL, &s), 0);
    ASSERT_TRUE(s.value.d == 0.75);
    /* Updates through NULL (a host without a registry) do nothing. */
    om_metric_counter_add(NULL, 1);
    om_metric_counter_add_real(NULL, 1);
    om_metric_gauge_set(NULL, 1);
    om_metric_gauge_add(NULL, 1);
    om_metric_gauge_set_real(NULL, 1);
    om_metric_gauge_add_real(NULL, 1);
    om_metric_histogram_observe(NULL, 1);
    om_metrics_unobserve(m, NULL);
    om_metrics_free(m);
    om_metrics_free(NULL);
}

static int64_t queued_now;
static int observed_calls;

static om_metric_num_t observe_queue(void *arg)
{
    observed_calls++;
    return (om_metric_num_t){.i = *(int64_t *)arg};
}

static void test_observed_gauges(void)
{
    om_metrics_t *m = om_metrics_new();
    om_err_t err = {0};
    om_metric_gauge_t *g, *again;
    om_label_t l[] = {exporter("otlp")};
    observed_calls = 0;
    ASSERT_EQ_INT(om_metrics_observe(m, &queue_def, l, 1, observe_queue, &queued_now, &g, &err), 0);
    ASSERT_EQ_INT(observed_calls, 0); /* nothing is read until someone reads */
    queued_now = 42;
    om_metric_sample_t s;
    ASSERT_EQ_INT(om_metrics_read(m, queue_def.name, l, 1, NULL, &s), 0);
    ASSERT_EQ_INT(s.value.i, 42);
    ASSERT_EQ_INT(observed_calls, 1);
    /* One observer per series. */
    ASSERT_EQ_INT(om_metrics_observe(m, &queue_def, l, 1, observe_queue, &queued_now, &again, &err),
                  OM_EINVAL);
    /* Once unobserved, it is not shown (its value would be stale), and may be observed again. */
    om_metrics_unobserve(m, g);
    ASSERT_EQ_INT(om_metrics_read(m, queue_def.name, l, 1, NULL, &s), OM_ENOTFOUND);
    ASSERT_EQ_INT(om_metrics_observe(m, &queue_def, l, 1, observe_queue, &queued_now, &again, &err),
                  0);
    ASSERT_TRUE(again == g);
    ASSERT_EQ_INT(om_metrics_read(m, queue_def.name, l, 1, NULL, &s), 0);
    om_metrics_free(m);
}

/* ------------------------------------------------------------------------------------------ */
/* Visit                                                                                      */

typedef struct seen {
    char lines[16][160];
    int n;
    int stop_after; /* 0: never */
} seen_t;

/* One line per series: "name{k=v,...} value". */
static int collect(void *arg, const om_metric_def_t *def, const om_metric_sample_t *s)
{
    seen_t *seen = arg;
    if (seen->n >= 16) {
        return -1;
    }
    char *line = seen->lines[seen->n++];
    int n = snprintf(line, 160, "%s{", def->name);
    for (size_t i = 0; i < s->n_labels; i++) {
        n += snprintf(line + n, 160 - (size_t)n, "%s%s=%s", i ? "," : "", s->labels[i].key,
                      s->labels[i].value);
    }
    if (def->type == OM_METRIC_HISTOGRAM) {
        snprintf(line + n, 160 - (size_t)n, "} count=%llu sum=%g b0=%llu",
                 (unsigned long long)s->count, s->sum, (unsigned long long)s->buckets[0]);
    } else if (def->real) {
        snprintf(line + n, 160 - (size_t)n, "} %g", s->value.d);
    } else if (def->type == OM_METRIC_COUNTER) {
        snprintf(line + n, 160 - (size_t)n, "} %llu", (unsigned long long)s->value.u);
    } else {
        snprintf(line + n, 160 - (size_t)n, "} %lld", (long long)s->value.i);
    }
    return seen->stop_after > 0 && seen->n == seen->stop_after ? 7 : 0;
}

static void test_visit_sees_everything(void)
{
    om_metrics_t *m = om_metrics_new();
    om_err_t err = {0};
    om_metric_counter_t *c1, *c2, *cpu;
    om_metric_gauge_t *q, *gone;
    om_metric_histogram_t *h;
    om_label_t l1[] = {exporter("otlp")}, l2[] = {exporter("otlphttp")};
    ASSERT_EQ_INT(om_metrics_counter(m, &sent_def, l1, 1, &c1, &err), 0);
    ASSERT_EQ_INT(om_metrics_histogram(m, &size_def, NULL, 0, &h, &err), 0);
    ASSERT_EQ_INT(om_metrics_counter(m, &cpu_def, NULL, 0, &cpu, &err), 0);
    ASSERT_EQ_INT(om_metrics_observe(m, &queue_def, l1, 1, observe_queue, &queued_now, &q, &err),
                  0);
    ASSERT_EQ_INT(om_metrics_observe(m, &queue_def, l2, 1, observe_queue, &queued_now, &gone, &err),
                  0);
    /* A series made after another metric's still comes right after its own metric's. */
    ASSERT_EQ_INT(om_metrics_counter(m, &sent_def, l2, 1, &c2, &err), 0);
    om_metrics_unobserve(m, gone);
    om_metric_counter_add(c1, 3);
    om_metric_counter_add(c2, 4);
    om_metric_counter_add_real(cpu, 1.5);
    om_metric_histogram_observe(h, 7);
    queued_now = 2;
    seen_t seen = {0};
    ASSERT_EQ_INT(om_metrics_visit(m, collect, &seen), 0);
    ASSERT_EQ_INT(seen.n, 5);
    ASSERT_EQ_STR(seen.lines[0], "otelcol_exporter_sent_spans{exporter=otlp} 3");
    ASSERT_EQ_STR(seen.lines[1], "otelcol_exporter_sent_spans{exporter=otlphttp} 4");
    ASSERT_EQ_STR(seen.lines[2], "otelcol_processor_batch_batch_send_size{} count=1 sum=7 b0=1");
    ASSERT_EQ_STR(seen.lines[3], "otelcol_process_cpu_seconds{} 1.5");
    ASSERT_EQ_STR(seen.lines[4], "otelcol_exporter_queue_size{exporter=otlp} 2");
    /* A non-zero return stops the visit and comes back. */
    seen = (seen_t){.stop_after = 2};
    ASSERT_EQ_INT(om_metrics_visit(m, collect, &seen), 7);
    ASSERT_EQ_INT(seen.n, 2);
    /* An empty registry, and none at all. */
    om_metrics_t *empty = om_metrics_new();
    seen = (seen_t){0};
    ASSERT_EQ_INT(om_metrics_visit(empty, collect, &seen), 0);
    ASSERT_EQ_INT(om_metrics_visit(NULL, collect, &seen), 0);
    ASSERT_EQ_INT(seen.n, 0);
    om_metrics_free(empty);
    om_metrics_free(m);
}

/* The host makes a registry; the test harness reads it. */
static void test_host_has_a_registry(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    om_host_t host;
    om_test_host_init(&host, &loop);
    ASSERT_TRUE(host.metrics != NULL);
    om_err_t err = {0};
    om_metric_counter_t *c;
    om_label_t l[] = {exporter("otlp"), {"transport", "grpc"}};
    ASSERT_EQ_INT(om_metrics_counter(host.metrics, &sent_def, l, 2, &c, &err), 0);
    om_metric_counter_add(c, 9);
    ASSERT_EQ_INT(
        om_test_metric(&host, sent_def.name, "transport", "grpc", "exporter", "otlp", NULL), 9);
    ASSERT_EQ_INT(om_test_metric(&host, sent_def.name, "exporter", "otlp", NULL), -1);
    om_test_host_close(&host);
    ASSERT_EQ_INT(uv_loop_close(&loop), 0);
}

/* ------------------------------------------------------------------------------------------ */
/* Observed counters, receiver counters, the telemetry endpoint's exposition                   */

static om_metric_num_t observe_total(void *arg)
{
    return (om_metric_num_t){.d = *(double *)arg};
}

static void test_observed_counters(void)
{
    om_metrics_t *m = om_metrics_new();
    om_err_t err = {0};
    static const om_metric_def_t cpu = {
        .name = "t_cpu_seconds", .unit = "s", .type = OM_METRIC_COUNTER, .real = true};
    double total = 1.5;
    om_metric_gauge_t *g;
    ASSERT_EQ_INT(om_metrics_observe(m, &cpu, NULL, 0, observe_total, &total, &g, &err), 0);
    om_metric_sample_t s;
    ASSERT_EQ_INT(om_metrics_read(m, cpu.name, NULL, 0, NULL, &s), 0);
    ASSERT_TRUE(s.value.d == 1.5);
    total = 2.25;
    ASSERT_EQ_INT(om_metrics_read(m, cpu.name, NULL, 0, NULL, &s), 0);
    ASSERT_TRUE(s.value.d == 2.25);
    om_metrics_unobserve(m, g);
    ASSERT_EQ_INT(om_metrics_read(m, cpu.name, NULL, 0, NULL, &s), OM_ENOTFOUND);
    om_metrics_free(m);
}

static int refuse_consume(void *self, om_batch_t *b)
{
    (void)self;
    om_batch_release(b);
    return OM_EREFUSED;
}

static int accept_consume(void *self, om_batch_t *b)
{
    (void)self;
    om_batch_release(b);
    return 0;
}

static uint64_t counter_value(om_metrics_t *m, const char *name, const om_label_t *l, size_t n)
{
    om_metric_sample_t s;
    return om_metrics_read(m, name, l, n, NULL, &s) == 0 ? s.value.u : UINT64_MAX;
}

static void test_receiver_counts_accepted_and_refused_items(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    om_host_t host;
    om_test_host_init(&host, &loop);
    om_err_t err = {0};
    om_obsrecv_t obs;
    ASSERT_EQ_INT(om_obsrecv_init(&obs, &host, "otlp/2", "grpc", &err), 0);
    om_consumer_t yes = {.consume = accept_consume}, no = {.consume = refuse_consume};
    om_batch_t *b = om_testdata_otlp("span x; span y; span z");
    ASSERT_EQ_INT(om_obsrecv_deliver(&obs, &yes, b), 0);
    b = om_testdata_otlp("span x; span y");
    ASSERT_EQ_INT(om_obsrecv_deliver(&obs, &no, b), OM_EREFUSED);
    b = om_testdata_otlp("log one");
    ASSERT_EQ_INT(om_obsrecv_deliver(&obs, &yes, b), 0);
    om_label_t l[] = {{"receiver", "otlp/2"}, {"transport", "grpc"}};
    ASSERT_EQ_UINT(counter_value(host.metrics, "otelcol_receiver_accepted_spans", l, 2), 3);
    ASSERT_EQ_UINT(counter_value(host.metrics, "otelcol_receiver_refused_spans", l, 2), 2);
    ASSERT_EQ_UINT(counter_value(host.metrics, "otelcol_receiver_accepted_log_records", l, 2), 1);
    ASSERT_EQ_UINT(counter_value(host.metrics, "otelcol_receiver_refused_log_records", l, 2), 0);
    /* A host without a registry: nothing is counted and nothing breaks. */
    om_host_t bare = {.loop = &loop};
    ASSERT_EQ_INT(om_obsrecv_init(&obs, &bare, "otlp", "http", &err), 0);
    ASSERT_EQ_INT(om_obsrecv_deliver(&obs, &yes, om_testdata_otlp("span x")), 0);
    om_test_host_close(&host);
    ASSERT_EQ_INT(uv_loop_close(&loop), 0);
}

/* The exposition: otelcol's Prometheus names (unit word, _total), histograms cumulative, the
 * resource labels on every series, and only what the level serves. */
static void test_exposition_follows_names_and_levels(void)
{
    om_metrics_t *m = om_metrics_new();
    om_err_t err = {0};
    static const om_metric_def_t sent = {.name = "otelcol_exporter_sent_spans",
                                         .help = "Sent.",
                                         .unit = "{spans}",
                                         .type = OM_METRIC_COUNTER};
    static const double bounds[] = {10, 100};
    static const om_metric_def_t size = {.name = "otelcol_processor_batch_batch_send_size",
                                         .unit = "{units}",
                                         .type = OM_METRIC_HISTOGRAM,
                                         .bounds = bounds,
                                         .n_bounds = 2,
                                         .level = OM_METRIC_LEVEL_NORMAL};
    static const om_metric_def_t up = {
        .name = "otelcol_process_uptime", .unit = "s", .type = OM_METRIC_COUNTER, .real = true};
    om_metric_counter_t *c;
    om_metric_histogram_t *h;
    om_label_t l[] = {{"exporter", "otlp"}};
    ASSERT_EQ_INT(om_metrics_counter(m, &sent, l, 1, &c, &err), 0);
    ASSERT_EQ_INT(om_metrics_histogram(m, &size, NULL, 0, &h, &err), 0);
    om_metric_counter_t *u;
    ASSERT_EQ_INT(om_metrics_counter(m, &up, NULL, 0, &u, &err), 0);
    om_metric_counter_add(c, 12);
    om_metric_histogram_observe(h, 5);
    om_metric_histogram_observe(h, 50);
    om_metric_histogram_observe(h, 500);
    om_metric_counter_add_real(u, 2.5);
    om_telemetry_label_t res[] = {{"service_name", "otelmon"}};
    om_telemetry_cfg_t cfg = {.level = OM_METRIC_LEVEL_NORMAL, .resource = res, .n_resource = 1};
    om_strbuf_t out;
    om_strbuf_init(&out, 0);
    ASSERT_EQ_INT(om__telemetry_render(m, &cfg, &out), 0);
    ASSERT_CONTAINS(out.data, "# TYPE otelcol_exporter_sent_spans_total counter\n"
                              "otelcol_exporter_sent_spans_total{exporter=\"otlp\","
                              "service_name=\"otelmon\"} 12\n");
    ASSERT_CONTAINS(out.data, "otelcol_processor_batch_batch_send_size_bucket{service_name="
                              "\"otelmon\",le=\"100\"} 2\n");
    ASSERT_CONTAINS(out.data, "otelcol_processor_batch_batch_send_size_bucket{service_name="
                              "\"otelmon\",le=\"+Inf\"} 3\n");
    ASSERT_CONTAINS(out.data, "otelcol_processor_batch_batch_send_size_sum{service_name="
                              "\"otelmon\"} 555\n");
    ASSERT_CONTAINS(out.data,
                    "otelcol_process_uptime_seconds_total{service_name=\"otelmon\"} 2.5\n");
    /* basic leaves the normal-level histogram out; without_units drops the unit's word. */
    cfg.level = OM_METRIC_LEVEL_BASIC;
    cfg.without_units = true;
    om_strbuf_reset(&out);
    ASSERT_EQ_INT(om__telemetry_render(m, &cfg, &out), 0);
    ASSERT_TRUE(strstr(out.data, "batch_send_size") == NULL);
    ASSERT_CONTAINS(out.data, "otelcol_process_uptime_total{");
    cfg.level = OM_METRIC_LEVEL_NONE;
    om_strbuf_reset(&out);
    ASSERT_EQ_INT(om__telemetry_render(m, &cfg, &out), 0);
    ASSERT_EQ_UINT(out.len, 0);
    om_strbuf_free(&out);
    om_metrics_free(m);
}

int main(void)
{
    om_log_set_level(OM_LOG_ERROR);
    OM_RUN(test_labels_identify_series);
    OM_RUN(test_bad_definitions_and_labels_are_refused);
    OM_RUN(test_concurrent_updates_sum_exactly);
    OM_RUN(test_histogram_buckets_sum_count);
    OM_RUN(test_gauges_set_add_and_real);
    OM_RUN(test_observed_gauges);
    OM_RUN(test_visit_sees_everything);
    OM_RUN(test_host_has_a_registry);
    OM_RUN(test_observed_counters);
    OM_RUN(test_receiver_counts_accepted_and_refused_items);
    OM_RUN(test_exposition_follows_names_and_levels);
    return om_test_summary();
}
