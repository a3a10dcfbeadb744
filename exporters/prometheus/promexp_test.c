/* promexp_test.c: the prometheus (pull) exporter.
 *
 * The served state: what a scrape writes for each OTLP type (written out from the rules:
 * otelcol-contrib's accumulator and collector, client_golang's text format), delta sums and
 * histograms accumulated into cumulative ones (aligned, reset, misaligned), older points
 * ignored, NoRecordedValue removing a series, expiry freeing series, families and target_info,
 * type conflicts, OpenMetrics (with exemplars), and promtool's lint on a scrape. The exporter over
 * HTTP: the content types, gzip, negotiation, the generic lifecycle, config errors with
 * file:line:column. Every test ends with uv_loop_close() == 0. */
#include <stdlib.h>
#include <unistd.h>

#include "config.h"
#include "om_test.h"
#include "om_testauth.h"
#include "om_testdata.h"
#include "om_testhttp.h"
#include "pipeline.h"
#include "promexp.h"

extern const om_factory_t exp_prometheus_factory;
size_t exp_prometheus_series(const void *self);
int exp_prometheus_port(const void *self);

/* ------------------------------------------------------------------------------------------ */
/* State                                                                                      */

static promexp_opts_t opts(void)
{
    return (promexp_opts_t){.suffixes = true, .expiration_ms = 300000, .log_name = "t"};
}

static int take(promexp_state_t *s, const char *dsl, uint64_t now_ms)
{
    om_batch_t *b = om_testdata_otlp("%s", dsl);
    int n = promexp_state_update(s, b, now_ms);
    om_batch_release(b);
    return n;
}

static char *render(promexp_state_t *s, om_prom_format_t f, uint64_t now_ms)
{
    om_strbuf_t out;
    om_strbuf_init(&out, 0);
    promexp_state_render(s, f, now_ms, &out);
    om_strbuf_puts(&out, "");
    return om_strbuf_steal(&out, NULL);
}

#define SCOPE "otel_scope_name=\"m\",otel_scope_version=\"1\""

static void test_render_each_type(void)
{
    promexp_opts_t o = opts();
    promexp_state_t *s = promexp_state_new(&o);
    om_batch_t *b = om_testdata_otlp(
        "resource service.name=etl service.namespace=data service.instance.id=i-1 host.name=h1;"
        "scope m@1;"
        "metric etl.bytes.read type:sum monotonic:true temporality:cumulative unit:By "
        "desc:'Bytes read.'; point 1024 time:2000000000 stage=extract;"
        "metric queue.depth type:sum temporality:cumulative unit:{item}; point 7 time:1;"
        "metric cpu.util unit:1; point 0.5 time:1 cpu=0;"
        "metric req.latency type:histogram temporality:cumulative unit:s;"
        "  point time:1 count:6 sum:4.5 route=/a;"
        "metric rpc type:summary unit:ms; point time:1 count:3 sum:30;"
        "metric batch.size type:exphistogram temporality:cumulative unit:By;"
        "  point time:1 count:3 sum:32100");
    om_histogram_dp_t *h =
        b->metrics->resource_metrics[0]->scope_metrics[0]->metrics[3]->histogram->data_points[0];
    static double bounds[] = {0.5, 1, 2.5};
    static uint64_t counts[] = {1, 2, 0, 3};
    h->explicit_bounds = bounds;
    h->n_explicit_bounds = 3;
    h->bucket_counts = counts;
    h->n_bucket_counts = 4;
    om_summary_dp_t *sp =
        b->metrics->resource_metrics[0]->scope_metrics[0]->metrics[4]->summary->data_points[0];
    om_quantile_t *q[2];
    for (int i = 0; i < 2; i++) {
        q[i] = om_testdata_msg(
            b->arenas[0],
            &opentelemetry__proto__metrics__v1__summary_data_point__value_at_quantile__descriptor);
        q[i]->quantile = i == 0 ? 0.99 : 0.5; /* written in order */
        q[i]->value = i == 0 ? 25 : 10;
    }
    sp->quantile_values = q;
    sp->n_quantile_values = 2;
    ASSERT_EQ_INT(promexp_state_update(s, b, 1000), 6);
    om_batch_release(b);
    char *text = render(s, OM_PROM_FMT_TEXT, 2000);
#define L "instance=\"i-1\",job=\"data/etl\"," SCOPE
    ASSERT_EQ_STR(text, "# HELP target_info Target metadata\n"
                        "# TYPE target_info gauge\n"
                        "target_info{host_name=\"h1\",instance=\"i-1\",job=\"data/etl\"} 1\n"
                        "# HELP etl_bytes_read_total Bytes read.\n"
                        "# TYPE etl_bytes_read_total counter\n"
                        "etl_bytes_read_total{" L ",stage=\"extract\"} 1024\n"
                        "# TYPE queue_depth gauge\n"
                        "queue_depth{" L "} 7\n"
                        "# TYPE cpu_util_ratio gauge\n"
                        "cpu_util_ratio{cpu=\"0\"," L "} 0.5\n"
                        "# TYPE req_latency_seconds histogram\n"
                        "req_latency_seconds_bucket{" L ",route=\"/a\",le=\"0.5\"} 1\n"
                        "req_latency_seconds_bucket{" L ",route=\"/a\",le=\"1\"} 3\n"
                        "req_latency_seconds_bucket{" L ",route=\"/a\",le=\"2.5\"} 3\n"
                        "req_latency_seconds_bucket{" L ",route=\"/a\",le=\"+Inf\"} 6\n"
                        "req_latency_seconds_sum{" L ",route=\"/a\"} 4.5\n"
                        "req_latency_seconds_count{" L ",route=\"/a\"} 6\n"
                        "# TYPE rpc_milliseconds summary\n"
                        "rpc_milliseconds{" L ",quantile=\"0.5\"} 10\n"
                        "rpc_milliseconds{" L ",quantile=\"0.99\"} 25\n"
                        "rpc_milliseconds_sum{" L "} 30\n"
                        "rpc_milliseconds_count{" L "} 3\n"
                        "# TYPE batch_size_bytes histogram\n"
                        "batch_size_bytes_bucket{" L ",le=\"+Inf\"} 3\n"
                        "batch_size_bytes_sum{" L "} 32100\n"
                        "batch_size_bytes_count{" L "} 3\n");
    free(text);
    /* OpenMetrics: the counter's family without _total, the end marker. */
    text = render(s, OM_PROM_FMT_OPENMETRICS, 2000);
    ASSERT_CONTAINS(text, "# HELP etl_bytes_read Bytes read.\n# TYPE etl_bytes_read counter\n"
                          "etl_bytes_read_total{" L ",stage=\"extract\"} 1024\n");
    ASSERT_TRUE(strlen(text) > 6 && strcmp(text + strlen(text) - 6, "# EOF\n") == 0);
    free(text);
    ASSERT_EQ_UINT(promexp_state_series(s), 7);
    promexp_state_free(s);
}

static om_exemplar_t *exemplar(om_batch_t *b, double v, uint8_t id_byte, uint64_t t_ns)
{
    om_exemplar_t *x =
        om_testdata_msg(b->arenas[0], &opentelemetry__proto__metrics__v1__exemplar__descriptor);
    static uint8_t ids[8][24];
    static int next;
    uint8_t *id = ids[next++ % 8];
    memset(id, id_byte, 24);
    x->trace_id = (ProtobufCBinaryData){16, id};
    x->span_id = (ProtobufCBinaryData){8, id + 16};
    x->value_case = OPENTELEMETRY__PROTO__METRICS__V1__EXEMPLAR__VALUE_AS_DOUBLE;
    x->as_double = v;
    x->time_unix_nano = t_ns;
    return x;
}

/* Exemplars (collector.go getPromExemplars, client_golang): in OpenMetrics only; a counter
 * shows its point's last one; a histogram's go to the first bucket whose bound holds the
 * value (+Inf above all), the last of a bucket winning; a gauge shows none; a newer point
 * without exemplars takes them away, an older point changes nothing. */
static void test_exemplars(void)
{
    promexp_opts_t o = opts();
    promexp_state_t *s = promexp_state_new(&o);
    om_batch_t *b = om_testdata_otlp(
        "metric c type:sum monotonic:true temporality:cumulative; point 9 time:2000000000;"
        "metric g; point 1 time:2000000000;"
        "metric h type:histogram temporality:cumulative; point time:2000000000 count:6 sum:4");
    om_metric_t **ms = b->metrics->resource_metrics[0]->scope_metrics[0]->metrics;
    om_number_dp_t *c = ms[0]->sum->data_points[0], *g = ms[1]->gauge->data_points[0];
    om_histogram_dp_t *h = ms[2]->histogram->data_points[0];
    static double bounds[] = {0.5, 1, 2.5};
    static uint64_t counts[] = {1, 2, 0, 3};
    h->explicit_bounds = bounds;
    h->n_explicit_bounds = 3;
    h->bucket_counts = counts;
    h->n_bucket_counts = 4;
    om_exemplar_t *cx[] = {exemplar(b, 1, 0x11, 1500000000), exemplar(b, 2, 0xab, 1600000000)};
    c->exemplars = cx;
    c->n_exemplars = 2;
    om_exemplar_t *gx[] = {exemplar(b, 1, 0x22, 1500000000)};
    g->exemplars = gx;
    g->n_exemplars = 1;
    om_exemplar_t *hx[] = {exemplar(b, 0.7, 0x01, 1000000000), exemplar(b, 3, 0x02, 1000000000),
                           exemplar(b, 0.2, 0x03, 1000000000), exemplar(b, 0.9, 0x04, 1250000000)};
    h->exemplars = hx;
    h->n_exemplars = 4;
    ASSERT_EQ_INT(promexp_state_update(s, b, 1000), 3);
    om_batch_release(b);
    char *text = render(s, OM_PROM_FMT_OPENMETRICS, 2000);
#define T(x) x x x x x x x x x x x x x x x x
#define S(x) x x x x x x x x
    ASSERT_CONTAINS(text,
                    "c_total 9 # {span_id=\"" S("ab") "\",trace_id=\"" T("ab") "\"} 2 1.600\n");
    ASSERT_CONTAINS(text, "g 1\n");
    ASSERT_CONTAINS(text, "h_bucket{le=\"0.5\"} 1 # {span_id=\"" S("03") "\",trace_id=\"" T(
                              "03") "\"} 0.2 1\n");
    ASSERT_CONTAINS(text, "h_bucket{le=\"1\"} 3 # {span_id=\"" S("04") "\",trace_id=\"" T(
                              "04") "\"} 0.9 1.250\n");
    ASSERT_CONTAINS(text, "h_bucket{le=\"2.5\"} 3\n");
    ASSERT_CONTAINS(
        text, "h_bucket{le=\"+Inf\"} 6 # {span_id=\"" S("02") "\",trace_id=\"" T("02") "\"} 3 1\n");
    free(text);
    text = render(s, OM_PROM_FMT_TEXT, 2000);
    ASSERT_TRUE(strstr(text, " # {") == NULL); /* the text format has no exemplars */
    free(text);
    /* An older point keeps them; a newer one without exemplars takes them away. */
    ASSERT_EQ_INT(take(s,
                       "metric c type:sum monotonic:true temporality:cumulative; point 8 "
                       "time:1000000000",
                       3000),
                  1);
    text = render(s, OM_PROM_FMT_OPENMETRICS, 3000);
    ASSERT_CONTAINS(text, "c_total 9 # {");
    free(text);
    ASSERT_EQ_INT(take(s,
                       "metric c type:sum monotonic:true temporality:cumulative; point 10 "
                       "time:3000000000",
                       3000),
                  1);
    text = render(s, OM_PROM_FMT_OPENMETRICS, 3000);
    ASSERT_CONTAINS(text, "c_total 10\n");
    free(text);
    /* Many buckets (the scratch on the heap): the exemplar on le="40". */
    b = om_testdata_otlp(
        "metric wide type:histogram temporality:cumulative; point time:2000000000 count:1 sum:39");
    h = b->metrics->resource_metrics[0]->scope_metrics[0]->metrics[0]->histogram->data_points[0];
    static double wide[40];
    static uint64_t wcounts[41];
    for (int i = 0; i < 40; i++) {
        wide[i] = i + 1;
    }
    wcounts[39] = 1;
    h->explicit_bounds = wide;
    h->n_explicit_bounds = 40;
    h->bucket_counts = wcounts;
    h->n_bucket_counts = 41;
    om_exemplar_t *wx[] = {exemplar(b, 39.5, 0x05, 1000000000)};
    h->exemplars = wx;
    h->n_exemplars = 1;
    ASSERT_EQ_INT(promexp_state_update(s, b, 3000), 1);
    om_batch_release(b);
    text = render(s, OM_PROM_FMT_OPENMETRICS, 3000);
    ASSERT_CONTAINS(text, "wide_bucket{le=\"39\"} 0\n");
    ASSERT_CONTAINS(text, "wide_bucket{le=\"40\"} 1 # {span_id=\"" S("05") "\",trace_id=\"" T(
                              "05") "\"} 39.5 1\n");
    free(text);
#undef T
#undef S
    promexp_state_free(s);
}

static void test_delta_accumulation(void)
{
    promexp_opts_t o = opts();
    o.send_timestamps = true;
    promexp_state_t *s = promexp_state_new(&o);
    /* Aligned deltas add up; the start stays the first one's. */
    take(s,
         "metric c type:sum monotonic:true temporality:delta; point 5 start:1000000000 "
         "time:2000000000",
         1);
    take(s,
         "metric c type:sum monotonic:true temporality:delta; point 7 start:2000000000 "
         "time:3000000000",
         2);
    char *text = render(s, OM_PROM_FMT_TEXT, 3);
    ASSERT_CONTAINS(text, "c_total 12 3000\n"); /* send_timestamps: the point's time, ms */
    free(text);
    /* A point older than the stored one is ignored. */
    take(s, "metric c type:sum monotonic:true temporality:delta; point 100 start:1 time:2", 4);
    /* A delta that does not follow on: a restart (the value replaces). */
    take(s,
         "metric c type:sum monotonic:true temporality:delta; point 4 start:5000000000 "
         "time:6000000000",
         5);
    text = render(s, OM_PROM_FMT_TEXT, 6);
    ASSERT_CONTAINS(text, "c_total 4 6000\n");
    free(text);
    /* Histograms: aligned adds per bucket; a later start resets; an earlier one is dropped. */
    const char *h1 = "metric h type:histogram temporality:delta; point count:2 sum:3 "
                     "start:1000000000 time:2000000000";
    const char *h2 = "metric h type:histogram temporality:delta; point count:3 sum:4 "
                     "start:2000000000 time:3000000000";
    const char *h_early = "metric h type:histogram temporality:delta; point count:50 sum:50 "
                          "start:1500000000 time:3500000000";
    take(s, h1, 7);
    take(s, h2, 8);
    take(s, h_early, 9);
    text = render(s, OM_PROM_FMT_TEXT, 10);
    ASSERT_CONTAINS(text, "h_count 5 3000\n");
    ASSERT_CONTAINS(text, "h_sum 7 3000\n");
    ASSERT_CONTAINS(text, "h_bucket{le=\"+Inf\"} 5 3000\n");
    free(text);
    take(s,
         "metric h type:histogram temporality:delta; point count:1 sum:1 start:9000000000 "
         "time:9500000000",
         11);
    text = render(s, OM_PROM_FMT_TEXT, 12);
    ASSERT_CONTAINS(text, "h_count 1 9500\n");
    free(text);
    /* Exponential histograms accumulate too. */
    take(s, "metric e type:exphistogram temporality:delta; point count:2 sum:1 start:1 time:2", 13);
    take(s, "metric e type:exphistogram temporality:delta; point count:3 sum:2 start:2 time:3", 14);
    text = render(s, OM_PROM_FMT_TEXT, 15);
    ASSERT_CONTAINS(text, "e_count 5 0\n");
    ASSERT_CONTAINS(text, "e_sum 3 0\n");
    free(text);
    /* A delta up-down counter has no cumulative form: not served. */
    take(s, "metric u type:sum temporality:delta; point 3", 16);
    text = render(s, OM_PROM_FMT_TEXT, 17);
    ASSERT_TRUE(strstr(text, "\nu ") == NULL);
    free(text);
    promexp_state_free(s);
}

static void test_latest_point_and_no_recorded_value(void)
{
    promexp_opts_t o = opts();
    promexp_state_t *s = promexp_state_new(&o);
    take(s, "metric g; point 3 time:2000 k=a; point 9 time:2000 k=b", 1);
    take(s, "metric g; point 1 time:1000 k=a", 2); /* older: ignored */
    char *text = render(s, OM_PROM_FMT_TEXT, 3);
    ASSERT_CONTAINS(text, "g{k=\"a\"} 3\n");
    free(text);
    om_batch_t *b = om_testdata_otlp("metric g; point 0 time:3000 k=b");
    b->metrics->resource_metrics[0]->scope_metrics[0]->metrics[0]->gauge->data_points[0]->flags = 1;
    promexp_state_update(s, b, 4);
    om_batch_release(b);
    text = render(s, OM_PROM_FMT_TEXT, 5);
    ASSERT_TRUE(strstr(text, "k=\"b\"") == NULL); /* NoRecordedValue: the series went */
    ASSERT_CONTAINS(text, "g{k=\"a\"} 3\n");
    free(text);
    promexp_state_free(s);
}

static void test_expiry_frees_series(void)
{
    promexp_opts_t o = opts();
    o.expiration_ms = 1000;
    promexp_state_t *s = promexp_state_new(&o);
    take(s, "resource service.name=a host.name=x; metric g; point 1", 100);
    take(s, "resource service.name=b host.name=y; metric g; point 2; metric other; point 3", 900);
    ASSERT_EQ_UINT(promexp_state_series(s), 5); /* three series, two target_info */
    ASSERT_EQ_UINT(promexp_state_expire(s, 1050), 0);
    ASSERT_EQ_UINT(promexp_state_expire(s, 1101), 1); /* a's series */
    char *text = render(s, OM_PROM_FMT_TEXT, 1200);
    ASSERT_TRUE(strstr(text, "job=\"a\"") == NULL); /* its target_info too */
    ASSERT_CONTAINS(text, "g{job=\"b\"} 2\n");
    free(text);
    text = render(s, OM_PROM_FMT_TEXT, 5000);
    ASSERT_EQ_STR(text, ""); /* everything expired: families gone as well */
    free(text);
    ASSERT_EQ_UINT(promexp_state_series(s), 0);
    promexp_state_free(s);
}

static void test_options_and_conflicts(void)
{
    om_label_t cl[] = {{"env", "prod"}, {"k", "const"}};
    promexp_opts_t o = opts();
    o.ns = "otel.mon";
    o.r2t = true;
    o.const_labels = cl;
    o.n_const_labels = 2;
    promexp_state_t *s = promexp_state_new(&o);
    om_log_set_level(OM_LOG_NONE);
    take(s, "resource service.name=a region=eu; scope sc@2 team=x; metric x unit:s; point 1 k=v",
         1);
    /* A histogram of the same name: a type conflict, dropped. */
    take(s, "metric x type:histogram temporality:cumulative unit:s; point count:2", 1);
    om_log_set_level(OM_LOG_ERROR);
    char *text = render(s, OM_PROM_FMT_TEXT, 2);
    ASSERT_EQ_STR(text, "# HELP otel_mon_target_info Target metadata\n"
                        "# TYPE otel_mon_target_info gauge\n"
                        "otel_mon_target_info{job=\"a\",region=\"eu\"} 1\n"
                        "# TYPE otel_mon_x_seconds gauge\n"
                        "otel_mon_x_seconds{env=\"prod\",job=\"a\",k=\"v\",otel_scope_name=\"sc\","
                        "otel_scope_team=\"x\",otel_scope_version=\"2\",region=\"eu\","
                        "service_name=\"a\"} 1\n");
    free(text);
    promexp_state_free(s);
}

/* promtool (Debian's prometheus package) finds nothing to complain about in a scrape of
 * metrics that have descriptions (it asks for help text, as it does of otelcol's scrapes). */
static void test_promtool_lint(void)
{
    if (access("/usr/bin/promtool", X_OK) != 0) {
        fprintf(stderr, "promtool not installed: skipped\n");
        return;
    }
    promexp_opts_t o = opts();
    promexp_state_t *s = promexp_state_new(&o);
    take(s,
         "resource service.name=etl service.instance.id=i host.name=h; scope m@1;"
         "metric etl.records.processed type:sum monotonic:true temporality:cumulative "
         "unit:{record} desc:'Records \"processed\".\\nMore.'; point 12 pipeline=orders;"
         "metric etl.queue.depth type:sum temporality:cumulative unit:{item} desc:Queued.;"
         "  point 7;"
         "metric etl.worker.memory unit:By desc:'Worker memory.'; point 2097152 worker=w1;"
         "metric etl.task.duration type:histogram temporality:cumulative unit:s desc:Tasks.;"
         "  point count:4 sum:55.55 task=load;"
         "metric etl.batch.size type:exphistogram temporality:cumulative unit:By desc:Sizes.;"
         "  point count:3 sum:32100",
         1);
    char *text = render(s, OM_PROM_FMT_TEXT, 2);
    char path[] = "/tmp/om_promexp_XXXXXX";
    int fd = mkstemp(path);
    ASSERT_TRUE(fd >= 0);
    ASSERT_EQ_INT(write(fd, text, strlen(text)), (long long)strlen(text));
    close(fd);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "promtool check metrics < %s > %s.out 2>&1", path, path);
    int rc = system(cmd);
    snprintf(cmd, sizeof cmd, "%s.out", path);
    FILE *f = fopen(cmd, "r");
    char msg[1024] = "";
    size_t n = f != NULL ? fread(msg, 1, sizeof msg - 1, f) : 0;
    msg[n] = '\0';
    if (f != NULL) {
        fclose(f);
    }
    unlink(cmd);
    unlink(path);
    free(text);
    promexp_state_free(s);
    ASSERT_EQ_STR(msg, "");
    ASSERT_EQ_INT(rc, 0);
}

/* ------------------------------------------------------------------------------------------ */
/* The exporter over HTTP                                                                     */

/* The exporter's config from "c: <text>" (free with om_test_config_free); NULL, with the
 * problem printed, when it does not load. */
static void *load(const char *text)
{
    const char *why = "";
    void *cfg = om_test_config_load(&exp_prometheus_factory, text, &why);
    if (cfg == NULL) {
        fprintf(stderr, "%s\n", why);
    }
    return cfg;
}

static void done_cb(void *arg)
{
    *(int *)arg += 1;
}

static void test_scrapes_over_http(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    om_host_t host;
    om_test_host_init(&host, &loop);
    exp_promexp_cfg_t *cfg = load("{endpoint: '127.0.0.1:0', enable_open_metrics: true}");
    om_create_args_t a = {.cfg = cfg,
                          .id = "prometheus",
                          .log_name = "exporter/prometheus",
                          .host = &host,
                          .signals = OM_SIG_METRICS};
    void *e = NULL;
    om_err_t err = {0};
    ASSERT_EQ_INT(exp_prometheus_factory.create(&a, &e, &err), 0);
    ASSERT_EQ_INT(exp_prometheus_factory.start(e, &err), 0);
    int port = exp_prometheus_port(e);
    ASSERT_TRUE(port > 0);
    /* Enough series for the gzip to go to the worker pool. */
    om_strbuf_t dsl;
    om_strbuf_init(&dsl, 0);
    om_strbuf_puts(&dsl, "resource service.name=s; metric g;");
    for (int i = 0; i < 3000; i++) {
        om_strbuf_printf(&dsl, "point %d id=%d;", i, i);
    }
    ASSERT_EQ_INT(exp_prometheus_factory.consume_metrics(
                      e, om_testdata_wire(om_testdata_otlp("%s", dsl.data))),
                  0);
    om_strbuf_free(&dsl);
    ASSERT_EQ_UINT(exp_prometheus_series(e), 3001); /* and target_info{job="s"} */
    om_testhttp_t h;
    om_testhttp_init(&h, port,
                     "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
                     "GET /anything HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n"
                     "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: "
                     "application/openmetrics-text;version=1.0.0,text/plain;q=0.5\r\n\r\n"
                     "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
                     4);
    om_testhttp_run_on(&h, &loop);
    ASSERT_EQ_INT(h.nresp, 4);
    char v[128];
    ASSERT_EQ_INT(h.resp[0].status, 200);
    ASSERT_EQ_STR(om_testhttp_header(&h.resp[0], "content-type", v, sizeof v),
                  OM_PROM_TEXT_CONTENT_TYPE);
    ASSERT_CONTAINS(h.resp[0].body, "# TYPE g gauge\ng{id=\"0\",job=\"s\"} 0\n");
    ASSERT_EQ_INT(h.resp[1].status, 200);
    ASSERT_EQ_STR(om_testhttp_header(&h.resp[1], "content-encoding", v, sizeof v), "gzip");
    ASSERT_TRUE(h.resp[1].body_len > 100 && h.resp[1].body_len < h.resp[0].body_len / 4);
    ASSERT_EQ_STR(om_testhttp_header(&h.resp[2], "content-type", v, sizeof v),
                  OM_PROM_OPENMETRICS_CONTENT_TYPE);
    ASSERT_EQ_INT(h.resp[3].status, 405);
    int done = 0;
    exp_prometheus_factory.shutdown(e, done_cb, &done);
    exp_prometheus_factory.shutdown(e, done_cb, &done);
    while (done == 0) {
        uv_run(&loop, UV_RUN_ONCE);
    }
    exp_prometheus_factory.destroy(e);
    om_test_config_free(&exp_prometheus_factory, cfg);
    om_test_host_close(&host);
    ASSERT_EQ_INT(done, 1);
    ASSERT_EQ_INT(uv_loop_close(&loop), 0);
}

/* `auth: {authenticator: ID}` (confighttp's, as otelcol's exporter takes it): a scrape
 * without the authenticator's credentials gets 401, one with them the metrics. */
static void test_scrape_auth(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    om_host_t host;
    om_test_host_init(&host, &loop);
    om_testauth_t ta = {.secret = "scr4pe"};
    om_testauth_register(&host, "testauth", &ta);
    exp_promexp_cfg_t *cfg = load("{endpoint: '127.0.0.1:0', auth: {authenticator: testauth}}");
    om_create_args_t a = {.cfg = cfg,
                          .id = "prometheus",
                          .log_name = "exporter/prometheus",
                          .host = &host,
                          .signals = OM_SIG_METRICS};
    void *e = NULL;
    om_err_t err = {0};
    ASSERT_EQ_INT(exp_prometheus_factory.create(&a, &e, &err), 0);
    ASSERT_EQ_INT(exp_prometheus_factory.start(e, &err), 0);
    ASSERT_EQ_INT(exp_prometheus_factory.consume_metrics(
                      e, om_testdata_wire(om_testdata_otlp("resource service.name=s; metric g; "
                                                           "point 7;"))),
                  0);
    om_log_set_level(OM_LOG_ERROR);
    for (int good = 0; good < 2; good++) {
        om_testhttp_t h;
        om_testhttp_init(&h, exp_prometheus_port(e),
                         good ? "GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Test "
                                "scr4pe\r\n\r\n"
                              : "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
                         1);
        om_testhttp_run_on(&h, &loop);
        ASSERT_EQ_INT(h.nresp, 1);
        ASSERT_EQ_INT(h.resp[0].status, good ? 200 : 401);
        if (good) {
            ASSERT_CONTAINS(h.resp[0].body, "g{job=\"s\"} 7");
        } else {
            ASSERT_TRUE(strstr(h.resp[0].body, "g{") == NULL);
        }
    }
    om_log_set_level(OM_LOG_WARN);
    ASSERT_EQ_INT(ta.refusals, 1);
    int done = 0;
    exp_prometheus_factory.shutdown(e, done_cb, &done);
    while (done == 0) {
        uv_run(&loop, UV_RUN_ONCE);
    }
    exp_prometheus_factory.destroy(e);
    om_test_config_free(&exp_prometheus_factory, cfg);
    om_test_host_close(&host);
    ASSERT_EQ_INT(uv_loop_close(&loop), 0);
}

/* ------------------------------------------------------------------------------------------ */
/* Config                                                                                     */

static char *validate(const char *exporter_yaml)
{
    char text[2048];
    snprintf(text, sizeof text,
             "receivers: {otlp: {protocols: {grpc: }}}\n"
             "exporters:\n"
             "  prometheus:\n"
             "%s"
             "service: {pipelines: {metrics: {receivers: [otlp], exporters: [prometheus]}}}\n",
             exporter_yaml);
    om_config_t *cfg = NULL;
    om_diags_t d = {0};
    om_strbuf_t all;
    om_strbuf_init(&all, 0);
    om_strbuf_puts(&all, "");
    if (om_config_load_string("t.yaml", text, strlen(text), &cfg, &d) == 0) {
        om_graph_t *g = NULL;
        om_graph_build(cfg, NULL, true, &g, &d);
        om_graph_free(g);
    }
    for (size_t i = 0; i < d.n; i++) {
        om_strbuf_printf(&all, "%s\n", d.msgs[i]);
    }
    om_diags_free(&d);
    om_config_free(cfg);
    return om_strbuf_steal(&all, NULL);
}

static void test_config_errors(void)
{
    static const struct {
        const char *yaml, *want;
    } cases[] = {
        {"    endpoint: 0.0.0.0:9464\n", ""},
        {"    namespace: x\n",
         "t.yaml:4:5: exporters::prometheus: endpoint: expecting a non-blank address to run the "
         "Prometheus metrics handler"},
        {"    endpoint: 9464\n", "t.yaml:4:15: exporters::prometheus::endpoint:"},
        {"    endpoint: :9464\n    metric_expiration: 5q\n",
         "t.yaml:5:24: exporters::prometheus::metric_expiration: unknown unit \"q\""},
        {"    endpoint: :9464\n    translation_strategy: NoTranslation\n",
         "t.yaml:5:27: exporters::prometheus: translation_strategy: NoTranslation keeps UTF-8 "
         "names"},
        {"    endpoint: :9464\n    translation_strategy: Bogus\n",
         "t.yaml:5:27: exporters::prometheus::translation_strategy: unknown value \"Bogus\""},
        {"    endpoint: :9464\n    tls: {cert_file: /nonexistent}\n",
         "t.yaml:5:10: exporters::prometheus: tls: TLS configuration must include both certificate "
         "and key"},
        {"    endpoint: :9464\n    const_labels: {'...': x}\n",
         "t.yaml:5:27: exporters::prometheus: const_labels::...: not a usable label name"},
        {"    endpoint: 0.0.0.0:9464\n    namespace: otelmon\n    const_labels: {env: prod}\n"
         "    send_timestamps: true\n    metric_expiration: 1m\n"
         "    resource_to_telemetry_conversion: {enabled: true}\n"
         "    enable_open_metrics: true\n    add_metric_suffixes: false\n"
         "    translation_strategy: UnderscoreEscapingWithSuffixes\n",
         ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *msgs = validate(cases[i].yaml);
        if (getenv("PROMEXP_TEST_VERBOSE") != NULL) {
            fprintf(stderr, "case %zu: %s", i, msgs);
        }
        if (cases[i].want[0] == '\0') {
            ASSERT_EQ_STR(msgs, "");
        } else {
            ASSERT_CONTAINS(msgs, cases[i].want);
        }
        free(msgs);
    }
}

static void test_generic_lifecycle(void)
{
    om_test_lifecycle(&exp_prometheus_factory, "{endpoint: '127.0.0.1:0'}");
}

int main(void)
{
    om_log_set_level(OM_LOG_ERROR);
    OM_RUN(test_render_each_type);
    OM_RUN(test_exemplars);
    OM_RUN(test_delta_accumulation);
    OM_RUN(test_latest_point_and_no_recorded_value);
    OM_RUN(test_expiry_frees_series);
    OM_RUN(test_options_and_conflicts);
    OM_RUN(test_promtool_lint);
    OM_RUN(test_scrapes_over_http);
    OM_RUN(test_scrape_auth);
    OM_RUN(test_config_errors);
    OM_RUN(test_generic_lifecycle);
    return om_test_summary();
}
