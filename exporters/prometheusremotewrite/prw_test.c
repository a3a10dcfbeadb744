/* prw_test.c: the prometheusremotewrite exporter.
 *
 * The encoder: OTLP batches (built from a line of text) are encoded, each request is
 * snappy-decompressed and unpacked with protobuf-c from our prompb .proto (independent of the
 * encoder's hand-written protobuf), and every series is compared with what the translation
 * rules say (written out here: names, labels in order, values, timestamps); splitting under
 * max_batch_size_bytes; samples of a series grouped and in time order; native histograms.
 * The exporter, against the scripted HTTP server of the test library: the remote-write
 * headers; 5xx and 429 retried; 400 dropped, not retried, later data flowing; a retry sends
 * only the requests that failed; delta metrics counted. Config errors with file:line:column,
 * and the generic lifecycle. Every test ends with uv_loop_close() == 0. */
#include <stdarg.h>
#include <stdlib.h>

#include <snappy-c.h>

#include "config.h"
#include "om_test.h"
#include "om_testauth.h"
#include "om_test_httpd.h"
#include "om_testdata.h"
#include "pipeline.h"
#include "prompb/remote.pb-c.h"
#include "prw.h"

extern const om_factory_t exp_prw_factory;

/* ------------------------------------------------------------------------------------------ */
/* Decoding what the encoder wrote                                                            */

static Prometheus__WriteRequest *unpack_body(const uint8_t *data, size_t len)
{
    size_t raw_len;
    if (snappy_uncompressed_length((const char *)data, len, &raw_len) != SNAPPY_OK) {
        return NULL;
    }
    char *raw = malloc(raw_len + 1);
    if (snappy_uncompress((const char *)data, len, raw, &raw_len) != SNAPPY_OK) {
        free(raw);
        return NULL;
    }
    Prometheus__WriteRequest *w =
        prometheus__write_request__unpack(NULL, raw_len, (const uint8_t *)raw);
    free(raw);
    return w;
}

/* Each series as one line: {labels in their order} v@ts v@ts ... [hist] [ex]. Checks that
 * labels are sorted with unique non-empty names and values, and samples in time order. */
static void describe_series(const Prometheus__TimeSeries *ts, om_strbuf_t *out, bool *ok)
{
    om_strbuf_putc(out, '{');
    for (size_t i = 0; i < ts->n_labels; i++) {
        const Prometheus__Label *l = ts->labels[i];
        if (l->name[0] == '\0' || l->value[0] == '\0' ||
            (i > 0 && strcmp(ts->labels[i - 1]->name, l->name) >= 0)) {
            *ok = false;
        }
        om_strbuf_printf(out, "%s%s=\"%s\"", i > 0 ? "," : "", l->name, l->value);
    }
    om_strbuf_putc(out, '}');
    for (size_t i = 0; i < ts->n_samples; i++) {
        char v[OM_PROM_NUM_MAX];
        om_prom_format_g(ts->samples[i]->value, v);
        om_strbuf_printf(out, " %s@%lld", v, (long long)ts->samples[i]->timestamp);
        if (i > 0 && ts->samples[i - 1]->timestamp >= ts->samples[i]->timestamp) {
            *ok = false;
        }
    }
    for (size_t i = 0; i < ts->n_histograms; i++) {
        const Prometheus__Histogram *h = ts->histograms[i];
        om_strbuf_printf(out, " hist(count=%llu sum=%g schema=%d zt=%g zc=%llu ts=%lld",
                         (unsigned long long)h->count_int, h->sum, h->schema, h->zero_threshold,
                         (unsigned long long)h->zero_count_int, (long long)h->timestamp);
        const char *side[2] = {"neg", "pos"};
        for (int s = 0; s < 2; s++) {
            size_t ns = s == 0 ? h->n_negative_spans : h->n_positive_spans;
            Prometheus__BucketSpan **sp = s == 0 ? h->negative_spans : h->positive_spans;
            size_t nd = s == 0 ? h->n_negative_deltas : h->n_positive_deltas;
            int64_t *d = s == 0 ? h->negative_deltas : h->positive_deltas;
            om_strbuf_printf(out, " %s=", side[s]);
            for (size_t k = 0; k < ns; k++) {
                om_strbuf_printf(out, "[%d:%u]", sp[k]->offset, sp[k]->length);
            }
            for (size_t k = 0; k < nd; k++) {
                om_strbuf_printf(out, "%s%lld", k == 0 ? "" : ",", (long long)d[k]);
            }
        }
        om_strbuf_putc(out, ')');
    }
    for (size_t i = 0; i < ts->n_exemplars; i++) {
        const Prometheus__Exemplar *x = ts->exemplars[i];
        om_strbuf_puts(out, " ex{");
        for (size_t k = 0; k < x->n_labels; k++) {
            om_strbuf_printf(out, "%s%s=%s", k > 0 ? "," : "", x->labels[k]->name,
                             x->labels[k]->value);
        }
        om_strbuf_printf(out, "}%g@%lld", x->value, (long long)x->timestamp);
    }
    om_strbuf_putc(out, '\n');
}

/* Every series of every request of res, one line each (in request order); checks that each
 * body stays under max (unless it is one series) and that no series appears twice. */
static char *describe(const prw_result_t *res, size_t max, bool *ok)
{
    om_strbuf_t out;
    om_strbuf_init(&out, 0);
    *ok = true;
    for (size_t b = 0; b < res->n_bodies; b++) {
        Prometheus__WriteRequest *w = unpack_body(res->bodies[b].data, res->bodies[b].len);
        if (w == NULL) {
            *ok = false;
            continue;
        }
        if (res->bodies[b].raw_len > max && w->n_timeseries > 1) {
            *ok = false;
        }
        for (size_t i = 0; i < w->n_timeseries; i++) {
            size_t before = out.len;
            describe_series(w->timeseries[i], &out, ok);
            char *line = strndup(out.data + before, out.len - before);
            out.data[before] = '\0';
            if (strstr(out.data, line) != NULL) {
                *ok = false; /* the same series twice */
            }
            out.data[before] = line[0];
            free(line);
        }
        for (size_t i = 0; i < w->n_metadata; i++) {
            const Prometheus__MetricMetadata *m = w->metadata[i];
            om_strbuf_printf(&out, "meta %s type=%d help=%s unit=%s\n", m->metric_family_name,
                             m->type, m->help, m->unit);
        }
        prometheus__write_request__free_unpacked(w, NULL);
    }
    return om_strbuf_steal(&out, NULL);
}

/* ------------------------------------------------------------------------------------------ */
/* The fast paths against the reference                                                       */

/* The same result, byte for byte: every request's compressed bytes, and every count. */
static bool same_result(const prw_result_t *a, const prw_result_t *b)
{
    if (a->n_bodies != b->n_bodies || a->series != b->series || a->samples != b->samples ||
        a->histograms != b->histograms || a->exemplars != b->exemplars ||
        a->dropped_delta != b->dropped_delta || a->merged_samples != b->merged_samples ||
        a->dropped_invalid != b->dropped_invalid || a->failed_metrics != b->failed_metrics ||
        strcmp(a->first_delta, b->first_delta) != 0 ||
        strcmp(a->first_invalid, b->first_invalid) != 0) {
        return false;
    }
    for (size_t i = 0; i < a->n_bodies; i++) {
        const prw_body_t *x = &a->bodies[i], *y = &b->bodies[i];
        if (x->len != y->len || x->raw_len != y->raw_len || x->series != y->series ||
            x->samples != y->samples || x->histograms != y->histograms ||
            x->exemplars != y->exemplars || memcmp(x->data, y->data, x->len) != 0) {
            return false;
        }
    }
    return true;
}

/* The encoders that keep their cache across the batches of a test: one reads the wire bytes,
 * the other the structs (each batch twice: the second time every point shape is known). */
static prw_encoder_t *cached_wire, *cached_structs;

static void drop_cached(void)
{
    prw_encoder_free(cached_wire);
    prw_encoder_free(cached_structs);
    cached_wire = cached_structs = NULL;
}

/* b (decoded) translated from its wire bytes and with the cache gives the very bytes of the
 * reference: the structs translated from scratch (the encoder as it was before the cache and
 * the wire path). */
static void check_paths(om_batch_t *b, const prw_opts_t *o)
{
    om_err_t err = {0};
    prw_encoder_t *ref = prw_encoder_new();
    ASSERT_TRUE(ref != NULL);
    prw_encoder_set_cache(ref, false);
    prw_result_t want;
    ASSERT_EQ_INT(prw_encode(ref, b, o, &want, &err), 0);
    prw_encoder_free(ref);
    size_t n = om_batch_proto_size(b);
    uint8_t *buf = malloc(n + 1);
    om_batch_proto_pack(b, buf);
    om_batch_t *w = NULL;
    ASSERT_EQ_INT(om_batch_decode_proto(OM_SIG_METRICS, buf, n, 0, &w, &err), 0);
    free(buf);
    ASSERT_TRUE(w->msg == NULL && w->raw_valid);
    if (cached_wire == NULL) {
        cached_wire = prw_encoder_new();
        cached_structs = prw_encoder_new();
    }
    for (int round = 0; round < 5; round++) {
        prw_result_t got;
        int rc = round < 2   ? prw_encode_wire(cached_wire, w, o, &got, &err)
                 : round < 4 ? prw_encode(cached_structs, b, o, &got, &err)
                             : prw_encode(NULL, w, o, &got, &err);
        ASSERT_EQ_INT(rc, 0);
        if (getenv("PRW_DEBUG") != NULL && !same_result(&want, &got)) {
            bool k;
            char *x = describe(&want, 1u << 30, &k), *y = describe(&got, 1u << 30, &k);
            fprintf(stderr, "round %d (%s)\nWANT %zu %zu %s\n%s\nGOT %zu %zu %s\n%s\n", round,
                    err.msg, want.series, want.dropped_invalid, want.first_invalid, x, got.series,
                    got.dropped_invalid, got.first_invalid, y);
            free(x);
            free(y);
        }
        ASSERT_TRUE(same_result(&want, &got));
        prw_result_free(&got);
    }
    om_batch_release(w);
    prw_result_free(&want);
}

static prw_opts_t default_opts(void)
{
    return (prw_opts_t){.suffixes = true, .target_info = true, .max_request_bytes = 3000000};
}

static char *encode(om_batch_t *b, const prw_opts_t *o, prw_result_t *res, bool *ok)
{
    om_err_t err = {0};
    int rc = om_batch_decode(b, &err);
    rc = rc != 0 ? rc : prw_encode(NULL, b, o, res, &err);
    if (rc != 0) {
        *ok = false;
        return strdup("");
    }
    check_paths(b, o);
    return describe(res, o->max_request_bytes, ok);
}

#define HAS_LINE(text, line) ASSERT_CONTAINS(text, line "\n")

static om_metric_t *metric_at(om_batch_t *b, size_t r, size_t k)
{
    return b->metrics->resource_metrics[r]->scope_metrics[0]->metrics[k];
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s != '\0'; s++) {
        n += *s == '\n';
    }
    return n;
}

/* ------------------------------------------------------------------------------------------ */
/* Encoding                                                                                   */

static void test_encode_types_names_labels(void)
{
    om_batch_t *b = om_testdata_otlp(
        "resource service.name=etl service.namespace=data service.instance.id=i-1 host.name=h1;"
        "scope s@1.0;"
        "metric etl.bytes.read type:sum monotonic:true temporality:cumulative unit:By;"
        "  point 1024 time:2000000000 start:1000000000 stage=extract;"
        "metric queue.depth type:sum temporality:cumulative unit:{item}; point 7 time:2000000000;"
        "metric cpu.util unit:1; point 0.5 time:2000000000 cpu=0;"
        "metric req.latency type:histogram temporality:cumulative unit:s;"
        "  point time:2000000000 count:6 sum:4.5 route=/a;"
        "metric rpc type:summary unit:ms; point time:2000000000 count:3 sum:30;"
        "metric deltas type:sum monotonic:true temporality:delta; point 5 time:2000000000;"
        "resource service.name=api; scope t; metric up; point 1 time:3000000000");
    om_arena_t *a = b->arenas[0];
    om_histogram_dp_t *h = metric_at(b, 0, 3)->histogram->data_points[0];
    static double bounds[] = {0.5, 1, 2.5};
    static uint64_t counts[] = {1, 2, 0, 3};
    h->explicit_bounds = bounds;
    h->n_explicit_bounds = 3;
    h->bucket_counts = counts;
    h->n_bucket_counts = 4;
    om_summary_dp_t *s = metric_at(b, 0, 4)->summary->data_points[0];
    om_quantile_t *q[2];
    for (int i = 0; i < 2; i++) {
        q[i] = om_testdata_msg(
            a,
            &opentelemetry__proto__metrics__v1__summary_data_point__value_at_quantile__descriptor);
        q[i]->quantile = i == 0 ? 0.5 : 0.99;
        q[i]->value = i == 0 ? 10 : 25;
    }
    s->quantile_values = q;
    s->n_quantile_values = 2;
    prw_result_t res;
    bool ok;
    prw_opts_t o = default_opts();
    char *text = encode(b, &o, &res, &ok);
    ASSERT_TRUE(ok);
#define IJ "instance=\"i-1\",job=\"data/etl\""
    HAS_LINE(text, "{__name__=\"etl_bytes_read_total\"," IJ ",stage=\"extract\"} 1024@2000");
    HAS_LINE(text, "{__name__=\"queue_depth\"," IJ "} 7@2000");
    HAS_LINE(text, "{__name__=\"cpu_util_ratio\",cpu=\"0\"," IJ "} 0.5@2000");
    HAS_LINE(text, "{__name__=\"req_latency_seconds_sum\"," IJ ",route=\"/a\"} 4.5@2000");
    HAS_LINE(text, "{__name__=\"req_latency_seconds_count\"," IJ ",route=\"/a\"} 6@2000");
    HAS_LINE(text,
             "{__name__=\"req_latency_seconds_bucket\"," IJ ",le=\"0.5\",route=\"/a\"} 1@2000");
    HAS_LINE(text, "{__name__=\"req_latency_seconds_bucket\"," IJ ",le=\"1\",route=\"/a\"} 3@2000");
    HAS_LINE(text,
             "{__name__=\"req_latency_seconds_bucket\"," IJ ",le=\"2.5\",route=\"/a\"} 3@2000");
    HAS_LINE(text,
             "{__name__=\"req_latency_seconds_bucket\"," IJ ",le=\"+Inf\",route=\"/a\"} 6@2000");
    HAS_LINE(text, "{__name__=\"rpc_milliseconds_sum\"," IJ "} 30@2000");
    HAS_LINE(text, "{__name__=\"rpc_milliseconds_count\"," IJ "} 3@2000");
    HAS_LINE(text, "{__name__=\"rpc_milliseconds\"," IJ ",quantile=\"0.5\"} 10@2000");
    HAS_LINE(text, "{__name__=\"rpc_milliseconds\"," IJ ",quantile=\"0.99\"} 25@2000");
    /* target_info: the resource's other attributes, at its latest point. */
    HAS_LINE(text, "{__name__=\"target_info\",host_name=\"h1\"," IJ "} 1@2000");
    /* The second resource has nothing but service.name: no target_info, no instance. */
    HAS_LINE(text, "{__name__=\"up\",job=\"api\"} 1@3000");
    ASSERT_EQ_UINT(count_lines(text), 15);
    ASSERT_EQ_UINT(res.series, 15);
    ASSERT_EQ_UINT(res.samples, 15);
    ASSERT_EQ_UINT(res.dropped_delta, 1);
    ASSERT_EQ_STR(res.first_delta, "deltas");
    ASSERT_EQ_UINT(res.n_bodies, 1);
    free(text);
    prw_result_free(&res);
    om_batch_release(b);
}

static void test_encode_options(void)
{
    om_batch_t *b = om_testdata_otlp("resource service.name=etl region=eu; scope s;"
                                     "metric done.jobs type:sum monotonic:true "
                                     "temporality:cumulative desc:'Jobs done.' unit:{job};"
                                     "  point 3 time:5000000 env=dev region=us");
    om_label_t ext[] = {{"env", "prod"}, {"cluster", "c1"}};
    prw_opts_t o = default_opts();
    o.ns = "otelmon";
    o.r2t = true;
    o.target_info = false;
    o.send_metadata = true;
    o.external = ext;
    o.n_external = 2;
    prw_result_t res;
    bool ok;
    char *text = encode(b, &o, &res, &ok);
    ASSERT_TRUE(ok);
    /* External labels do not override the data's (env); the point's attribute wins over the
     * resource's (region); resource attributes become labels. */
    HAS_LINE(text, "{__name__=\"otelmon_done_jobs_total\",cluster=\"c1\",env=\"dev\","
                   "job=\"etl\",region=\"us\",service_name=\"etl\"} 3@5");
    HAS_LINE(text, "meta otelmon_done_jobs_total type=1 help=Jobs done. unit={job}");
    ASSERT_EQ_UINT(count_lines(text), 2);
    free(text);
    prw_result_free(&res);
    /* Without suffixes. */
    o = default_opts();
    text = encode(b, &(prw_opts_t){.suffixes = false, .max_request_bytes = 1000}, &res, &ok);
    ASSERT_TRUE(ok);
    HAS_LINE(text, "{__name__=\"done_jobs\",env=\"dev\",job=\"etl\",region=\"us\"} 3@5");
    free(text);
    prw_result_free(&res);
    om_batch_release(b);
}

/* One metric name and unit in three kinds, each translated its own way: the names cache
 * (check_paths' encoders keep theirs across the test's batches) keys on what the name depends
 * on, not on the name and unit alone. */
static void test_encode_names_by_kind(void)
{
    const char *kinds[] = {"unit:1", "type:sum temporality:cumulative unit:1",
                           "type:sum monotonic:true temporality:cumulative unit:1"};
    const char *want[] = {"jobs_done_ratio", "jobs_done", "jobs_done_total"};
    for (int first = 0; first < 3; first++) { /* each kind translated first once */
        om_batch_t *b =
            om_testdata_otlp("resource service.name=etl; scope s;"
                             "metric jobs.done %s; point 1 time:2000000000;"
                             "metric jobs.done %s; point 2 time:2000000000;"
                             "metric jobs.done %s; point 3 time:2000000000",
                             kinds[first], kinds[(first + 1) % 3], kinds[(first + 2) % 3]);
        prw_result_t res;
        bool ok;
        prw_opts_t o = default_opts();
        char *text = encode(b, &o, &res, &ok);
        ASSERT_TRUE(ok);
        char line[128];
        for (int k = 0; k < 3; k++) {
            snprintf(line, sizeof line, "{__name__=\"%s\",job=\"etl\"} %d@2000\n",
                     want[(first + k) % 3], k + 1);
            ASSERT_CONTAINS(text, line);
        }
        ASSERT_EQ_UINT(count_lines(text), 3);
        free(text);
        prw_result_free(&res);
        om_batch_release(b);
    }
    drop_cached();
}

static void test_encode_stale_exemplars_and_order(void)
{
    om_batch_t *b = om_testdata_otlp(
        "resource service.name=s; scope s;"
        "metric c type:sum monotonic:true temporality:cumulative;"
        "  point 5 time:3000000000 k=v; point 4 time:2000000000 k=v; point 6 time:3000000000 k=v;"
        "metric g; point 1 time:1000000000");
    om_number_dp_t *g = metric_at(b, 0, 1)->gauge->data_points[0];
    g->flags = 1; /* no recorded value: the staleness marker */
    om_number_dp_t *c0 = metric_at(b, 0, 0)->sum->data_points[0];
    om_exemplar_t *x =
        om_testdata_msg(b->arenas[0], &opentelemetry__proto__metrics__v1__exemplar__descriptor);
    static uint8_t tid[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    static uint8_t sid[8] = {0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0, 1};
    x->trace_id = (ProtobufCBinaryData){16, tid};
    x->span_id = (ProtobufCBinaryData){8, sid};
    x->value_case = OPENTELEMETRY__PROTO__METRICS__V1__EXEMPLAR__VALUE_AS_INT;
    x->as_int = 9;
    x->time_unix_nano = 2500000000u;
    om_exemplar_t *xs[] = {x};
    c0->exemplars = xs;
    c0->n_exemplars = 1;
    prw_result_t res;
    bool ok;
    prw_opts_t o = default_opts();
    char *text = encode(b, &o, &res, &ok);
    ASSERT_TRUE(ok);
    /* One series, samples in time order, one per timestamp (the last given). */
    HAS_LINE(text, "{__name__=\"c_total\",job=\"s\",k=\"v\"} 4@2000 6@3000 ex{trace_id="
                   "0102030405060708090a0b0c0d0e0f10,span_id=aabbccddeeff0001}9@2500");
    ASSERT_CONTAINS(text, "{__name__=\"g\",job=\"s\"} NaN@1000");
    free(text);
    /* The sample not sent (5 at 3000, merged into 6) is counted. */
    ASSERT_EQ_UINT(res.samples, 3);
    ASSERT_EQ_UINT(res.merged_samples, 1);
    /* The marker is Prometheus' StaleNaN, bit for bit. */
    Prometheus__WriteRequest *w = unpack_body(res.bodies[0].data, res.bodies[0].len);
    uint64_t bits = 0;
    for (size_t i = 0; w != NULL && i < w->n_timeseries; i++) {
        if (strcmp(w->timeseries[i]->labels[0]->value, "g") == 0) {
            memcpy(&bits, &w->timeseries[i]->samples[0]->value, 8);
        }
    }
    ASSERT_EQ_UINT(bits, PRW_STALE_NAN_BITS);
    prometheus__write_request__free_unpacked(w, NULL);
    prw_result_free(&res);
    om_batch_release(b);
}

static void test_encode_native_histograms(void)
{
    om_batch_t *b = om_testdata_otlp(
        "resource service.name=s; scope s;"
        "metric lat type:exphistogram temporality:cumulative unit:s;"
        "  point time:1000000000 count:10 sum:12; point time:1000000000 count:5 a=down;"
        "  point time:1000000000 count:1 a=coarse");
    om_arena_t *a = b->arenas[0];
    om_exp_histogram_t *eh = metric_at(b, 0, 0)->exponential_histogram;
    /* scale 0: positive buckets at OTLP 0, 1 and 5 (a gap of three: a new span), negative at
     * -2 and 0 (a gap of one: filled). Prometheus' indexes are OTLP's + 1. */
    om_exp_histogram_dp_t *p = eh->data_points[0];
    static uint64_t pos[] = {1, 2, 0, 0, 0, 3}, neg[] = {1, 0, 1}, five[] = {1, 1, 1, 1, 1};
    p->zero_count = 2;
    p->positive = om_testdata_msg(
        a,
        &opentelemetry__proto__metrics__v1__exponential_histogram_data_point__buckets__descriptor);
    p->positive->bucket_counts = pos;
    p->positive->n_bucket_counts = 6;
    p->negative = om_testdata_msg(
        a,
        &opentelemetry__proto__metrics__v1__exponential_histogram_data_point__buckets__descriptor);
    p->negative->offset = -2;
    p->negative->bucket_counts = neg;
    p->negative->n_bucket_counts = 3;
    /* scale 10: downscaled to 8, four buckets into one. */
    om_exp_histogram_dp_t *d = eh->data_points[1];
    d->scale = 10;
    d->zero_threshold = 0.001;
    d->positive = om_testdata_msg(
        a,
        &opentelemetry__proto__metrics__v1__exponential_histogram_data_point__buckets__descriptor);
    d->positive->bucket_counts = five;
    d->positive->n_bucket_counts = 5;
    eh->data_points[2]->scale = -5; /* below -4: dropped */
    prw_result_t res;
    bool ok;
    prw_opts_t o = default_opts();
    char *text = encode(b, &o, &res, &ok);
    ASSERT_TRUE(ok);
    HAS_LINE(text, "{__name__=\"lat_seconds\",job=\"s\"} hist(count=10 sum=12 schema=0 zt=1e-128 "
                   "zc=2 ts=1000 neg=[-1:3]1,-1,1 pos=[1:2][3:1]1,1,1)");
    HAS_LINE(text, "{__name__=\"lat_seconds\",a=\"down\",job=\"s\"} hist(count=5 sum=0 schema=8 "
                   "zt=0.001 zc=0 ts=1000 neg= pos=[1:2]4,-3)");
    ASSERT_EQ_UINT(count_lines(text), 2);
    ASSERT_EQ_UINT(res.histograms, 2);
    ASSERT_EQ_UINT(res.dropped_invalid, 1);
    free(text);
    prw_result_free(&res);
    om_batch_release(b);
}

static void test_encode_splits_by_size(void)
{
    om_strbuf_t dsl;
    om_strbuf_init(&dsl, 0);
    om_strbuf_puts(&dsl, "resource service.name=s; scope s; metric g;");
    for (int i = 0; i < 300; i++) {
        om_strbuf_printf(&dsl, "point %d time:%d000000 id=%d;", i, 1000 + i, i);
    }
    om_batch_t *b = om_testdata_otlp("%s", dsl.data);
    om_strbuf_free(&dsl);
    prw_opts_t o = default_opts();
    o.max_request_bytes = 2000;
    prw_result_t res;
    bool ok;
    char *text = encode(b, &o, &res, &ok);
    ASSERT_TRUE(ok); /* every body under the limit, no series twice */
    ASSERT_TRUE(res.n_bodies > 5);
    ASSERT_EQ_UINT(count_lines(text), 300);
    ASSERT_EQ_UINT(res.series, 300);
    HAS_LINE(text, "{__name__=\"g\",id=\"299\",job=\"s\"} 299@1299");
    size_t total = 0;
    for (size_t i = 0; i < res.n_bodies; i++) {
        ASSERT_TRUE(res.bodies[i].raw_len <= 2000);
        total += res.bodies[i].series;
    }
    ASSERT_EQ_UINT(total, 300);
    free(text);
    prw_result_free(&res);
    om_batch_release(b);
}

/* Varied batches, one after the other through the same cached encoders, each held to the
 * reference: resources with and without job and instance, every metric type and temporality,
 * attributes from small pools (so that point shapes and series repeat within and across
 * batches) of every value type, names that clash once sanitised, empty values, repeated and
 * out-of-order times, histograms with and without bounds and sums, exemplars, stale points;
 * under several option sets. */
static uint64_t rnd_state = 42;
static unsigned rnd(unsigned n)
{
    rnd_state = rnd_state * 6364136223846793005u + 1442695040888963407u;
    return (unsigned)(rnd_state >> 33) % n;
}

static om_batch_t *random_batch(void)
{
    static const char *const attrs[] = {
        "k=v1",   "k=v2",     "k=''",       "n=3",      "n=-7",  "d=2.5",     "d=1e21",
        "b=true", "b=false",  "x.y=a",      "x_y=b",    "x-y=c", "1st=q",     "bin=0x0a0b",
        "__z=1",  "empty=''", "route=/api", "job=mine", "le=9",  "quantile=q"};
    static const char *const types[] = {"type:gauge unit:1",
                                        "type:sum monotonic:true temporality:cumulative unit:By",
                                        "type:sum temporality:cumulative unit:{req}",
                                        "type:sum monotonic:true temporality:delta",
                                        "type:histogram temporality:cumulative unit:s",
                                        "type:histogram temporality:delta",
                                        "type:summary unit:ms",
                                        "type:exphistogram temporality:cumulative"};
    om_strbuf_t t;
    om_strbuf_init(&t, 0);
    size_t nres = 1 + rnd(3);
    for (size_t r = 0; r < nres; r++) {
        om_strbuf_puts(&t, "resource");
        if (rnd(4) != 0) {
            om_strbuf_printf(&t, " service.name=svc%u", rnd(3));
        }
        if (rnd(2) != 0) {
            om_strbuf_printf(&t, " service.namespace=ns%u", rnd(2));
        }
        if (rnd(2) != 0) {
            om_strbuf_printf(&t, " service.instance.id=i%u", rnd(2));
        }
        if (rnd(2) != 0) {
            om_strbuf_printf(&t, " host.name=h%u", rnd(2));
        }
        om_strbuf_printf(&t, "; scope s%u;", rnd(2));
        size_t nm = 1 + rnd(5);
        for (size_t m = 0; m < nm; m++) {
            unsigned ty = rnd(8);
            om_strbuf_printf(&t, "metric %s.m%u %s;", rnd(2) ? "app" : "x-y", rnd(4), types[ty]);
            size_t np = rnd(6);
            for (size_t p = 0; p < np; p++) {
                om_strbuf_puts(&t, "point");
                if (ty < 4) {
                    om_strbuf_printf(&t, rnd(2) ? " %u" : " %u.25", rnd(100));
                } else {
                    om_strbuf_printf(&t, " count:%u", rnd(50));
                    if (rnd(3) != 0) {
                        om_strbuf_printf(&t, " sum:%u", rnd(500));
                    }
                }
                om_strbuf_printf(&t, " time:%u000000", 1000 + rnd(4));
                size_t na = rnd(5);
                for (size_t a = 0; a < na; a++) {
                    om_strbuf_printf(&t, " %s", attrs[rnd(sizeof attrs / sizeof attrs[0])]);
                }
                om_strbuf_putc(&t, ';');
            }
        }
    }
    om_batch_t *b = om_testdata_otlp("%s", t.data);
    om_strbuf_free(&t);
    /* What the text cannot say: bounds, exemplars, staleness, exponential buckets. */
    static double bounds[2][3] = {{1, 2, 5}, {0.5, 10, 1e300}};
    static uint64_t counts[4] = {1, 2, 3, 4};
    static uint8_t tid[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    om_arena_t *a = b->arenas[0];
    for (size_t r = 0; r < b->metrics->n_resource_metrics; r++) {
        om_scope_metrics_t *sm = b->metrics->resource_metrics[r]->scope_metrics[0];
        for (size_t k = 0; k < sm->n_metrics; k++) {
            om_metric_t *m = sm->metrics[k];
            om_exemplar_t *x =
                om_testdata_msg(a, &opentelemetry__proto__metrics__v1__exemplar__descriptor);
            x->trace_id = (ProtobufCBinaryData){16, tid};
            x->value_case = OPENTELEMETRY__PROTO__METRICS__V1__EXEMPLAR__VALUE_AS_DOUBLE;
            x->as_double = 1.5;
            x->time_unix_nano = 1000000000;
            om_exemplar_t **xs = om_arena_alloc(a, sizeof *xs);
            xs[0] = x;
            if (m->data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM) {
                for (size_t i = 0; i < m->histogram->n_data_points; i++) {
                    om_histogram_dp_t *p = m->histogram->data_points[i];
                    unsigned pick = rnd(3);
                    if (pick < 2) {
                        p->explicit_bounds = bounds[pick];
                        p->n_explicit_bounds = 3;
                        p->bucket_counts = counts;
                        p->n_bucket_counts = 3 + rnd(2);
                    }
                    if (rnd(4) == 0) {
                        p->exemplars = xs;
                        p->n_exemplars = 1;
                    }
                    p->flags = rnd(6) == 0 ? 1 : 0;
                }
            } else if (m->data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM ||
                       m->data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE) {
                om_number_dp_t **ps =
                    m->data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM
                        ? m->sum->data_points
                        : m->gauge->data_points;
                size_t np = m->data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM
                                ? m->sum->n_data_points
                                : m->gauge->n_data_points;
                for (size_t i = 0; i < np; i++) {
                    if (rnd(4) == 0) {
                        ps[i]->exemplars = xs;
                        ps[i]->n_exemplars = 1;
                    }
                    ps[i]->flags = rnd(6) == 0 ? 1 : 0;
                }
            } else if (m->data_case ==
                       OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM) {
                for (size_t i = 0; i < m->exponential_histogram->n_data_points; i++) {
                    om_exp_histogram_dp_t *p = m->exponential_histogram->data_points[i];
                    p->scale = (int32_t)rnd(14) - 5;
                    p->positive = om_testdata_msg(
                        a,
                        &opentelemetry__proto__metrics__v1__exponential_histogram_data_point__buckets__descriptor);
                    p->positive->offset = (int32_t)rnd(5) - 2;
                    p->positive->bucket_counts = counts;
                    p->positive->n_bucket_counts = 4;
                }
            }
        }
    }
    return b;
}

static void test_paths_generated(void)
{
    om_label_t ext[] = {{"env", "prod"}, {"job", "ext"}};
    prw_opts_t variants[] = {
        default_opts(),
        {.ns = "ns", .suffixes = false, .target_info = true, .max_request_bytes = 3000000},
        {.suffixes = true, .r2t = true, .max_request_bytes = 3000000},
        {.suffixes = true,
         .target_info = true,
         .external = ext,
         .n_external = 2,
         .send_metadata = true,
         .max_request_bytes = 3000000},
        {.suffixes = true, .target_info = true, .max_request_bytes = 300},
    };
    for (size_t v = 0; v < sizeof variants / sizeof variants[0]; v++) {
        for (int i = 0; i < 60; i++) {
            om_batch_t *b = random_batch();
            check_paths(b, &variants[v]);
            om_batch_release(b);
        }
    }
    drop_cached();
}

/* Wire bytes the wire path does not read as the schema says (a point field of the wrong wire
 * type): OM_ENOTSUP, so that the exporter decodes the batch (here the decoding fails too). */
static void test_wire_odd_bytes(void)
{
    /* ExportMetricsServiceRequest{resource_metrics{scope_metrics{metrics{name "m",
     * gauge{data_points{time_unix_nano as a varint}}}}}}. */
    static const uint8_t req[] = {0x0a, 0x0f, 0x12, 0x0d, 0x12, 0x0b, 0x0a, 0x01, 'm',
                                  0x2a, 0x06, 0x0a, 0x04, 0x18, 0x05, 0x40, 0x00};
    om_batch_t *b = NULL;
    om_err_t err = {0};
    if (om_batch_decode_proto(OM_SIG_METRICS, req, sizeof req, 0, &b, &err) != 0) {
        return; /* refused on arrival: nothing reaches the encoder */
    }
    prw_opts_t o = default_opts();
    prw_result_t res;
    int rc = prw_encode_wire(NULL, b, &o, &res, &err);
    ASSERT_TRUE(rc == OM_ENOTSUP || rc == 0);
    if (rc == 0) {
        prw_result_free(&res);
    }
    om_batch_release(b);
}

/* ------------------------------------------------------------------------------------------ */
/* Our snappy compressor                                                                      */

/* Compresses n bytes with prw_snappy_compress into a buffer of exactly its bound, checks that
 * libsnappy decompresses them back; *out_len: the compressed length (SIZE_MAX on a failure). */
static void snappy_round_trip(const uint8_t *in, size_t n, size_t *out_len)
{
    *out_len = SIZE_MAX;
    static uint16_t table[PRW_SNAPPY_TABLE];
    size_t cap = prw_snappy_max_len(n);
    uint8_t *out = malloc(cap);
    char *back = malloc(n + 1);
    size_t len = prw_snappy_compress(table, in, n, out);
    size_t back_len = 0;
    ASSERT_TRUE(len <= cap);
    ASSERT_TRUE(snappy_uncompressed_length((const char *)out, len, &back_len) == SNAPPY_OK);
    ASSERT_EQ_UINT(back_len, n);
    ASSERT_TRUE(snappy_uncompress((const char *)out, len, back, &back_len) == SNAPPY_OK);
    ASSERT_TRUE(om_same(back, in, n));
    free(out);
    free(back);
    *out_len = len;
}

static void fill_random(uint8_t *p, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (uint8_t)(seed >> 16);
    }
}

/* Every element form: literals of 1 to 4 length bytes, copies of 1- and 2-byte offsets,
 * overlapping copies, matches longer than 64, the window's edge, the input's short tail. */
static void test_snappy_round_trips(void)
{
    size_t big = ((size_t)1 << 24) + 70000, len = 0;
    uint8_t *buf = malloc(big);
    fill_random(buf, big, 7);
    for (size_t n = 0; n <= 40; n++) {
        snappy_round_trip(buf, n,
                          &len); /* short inputs: one literal, or a match in the last bytes */
    }
    size_t lens[] = {61, 256, 257, 65536, 65537, ((size_t)1 << 24) + 1};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        snappy_round_trip(buf, lens[i], &len); /* random: one literal */
        ASSERT_TRUE(len > lens[i] && len != SIZE_MAX);
    }
    memset(buf, 0, 200000); /* copies of offset 1, 64 bytes each */
    snappy_round_trip(buf, 200000, &len);
    ASSERT_TRUE(len < 200000 / 20);
    for (size_t i = 0; i < 100000; i++) {
        buf[i] = (uint8_t)("abc"[i % 3]);
    }
    snappy_round_trip(buf, 100000, &len);
    ASSERT_TRUE(len < 100000 / 20);
    /* A random block repeated 65,535 bytes later is copied (the window's far edge); one
     * repeated 70,000 bytes later cannot be. */
    fill_random(buf, 65535, 11);
    memcpy(buf + 65535, buf, 65535);
    snappy_round_trip(buf, 2 * 65535, &len);
    ASSERT_TRUE(len < 65535 + 65535 / 8);
    fill_random(buf, 70000, 13);
    memcpy(buf + 70000, buf, 70000);
    snappy_round_trip(buf, 140000, &len);
    ASSERT_TRUE(len > 140000 && len != SIZE_MAX);
    /* Short repeats at odd places: 4 to 11 bytes near and far (both copy forms). */
    fill_random(buf, 300000, 17);
    for (size_t at = 100; at + 20 < 300000; at += 97) {
        size_t from = at - 1 - (at * 7919) % (at < 5000 ? at - 1 : 5000);
        memmove(buf + at, buf + from, 4 + at % 8);
    }
    snappy_round_trip(buf, 300000, &len);
    ASSERT_TRUE(len != SIZE_MAX);
    free(buf);
}

/* On data like a WriteRequest's (series with the same label names, a value seen once and
 * histogram-like runs of series repeating all labels but one) the compressor does as well as
 * libsnappy, within 1% (here 247,470 bytes against 247,459; on bench/run's data 4.7% fewer):
 * it would not if its window, its backward extension or its table broke. */
static void test_snappy_ratio_on_series(void)
{
    static const char *const names[] = {"__name__", "http_route",     "instance",
                                        "job",      "server_address", "url_path"};
    om_strbuf_t w;
    om_strbuf_init(&w, 0);
    uint32_t seed = 5;
    while (w.len < 2000000) {
        char values[6][17];
        for (size_t k = 0; k < 6; k++) {
            for (size_t c = 0; c < 16; c++) {
                seed = seed * 1103515245u + 12345u;
                values[k][c] = "abcdefghijklmnopqrstuvwxyz0123456789"[(seed >> 16) % 36];
            }
            values[k][16] = '\0';
        }
        for (int le = 0; le < 12; le++) {
            for (size_t k = 0; k < 6; k++) {
                om_strbuf_printf(&w, "\x0a%s\x12%s%s", names[k], values[k],
                                 k == 0 && le > 0 ? "_bucket" : "");
            }
            om_strbuf_printf(&w, "le=%d;%u", le * 5, seed % 1000);
        }
    }
    size_t own = 0;
    snappy_round_trip((const uint8_t *)w.data, w.len, &own);
    size_t lib_len = snappy_max_compressed_length(w.len);
    char *lib = malloc(lib_len);
    ASSERT_TRUE(snappy_compress(w.data, w.len, lib, &lib_len) == SNAPPY_OK);
    ASSERT_TRUE(own <= lib_len + lib_len / 100);
    ASSERT_TRUE(own < w.len / 4);
    free(lib);
    om_strbuf_free(&w);
}

static size_t libsnappy_len(const uint8_t *in, size_t n)
{
    size_t len = snappy_max_compressed_length(n);
    char *out = malloc(len);
    if (snappy_compress((const char *)in, n, out, &len) != SNAPPY_OK) {
        len = SIZE_MAX;
    }
    free(out);
    return len;
}

/* What the compressor does that libsnappy does not: its window slides over the whole input: a
 * random 40,000-byte block repeated right after it straddles libsnappy's 64 KiB fragments, and
 * libsnappy, starting the second fragment with an empty table, writes that part (16 KB) as
 * literals. */
static void test_snappy_window(void)
{
    uint8_t *buf = malloc(200000);
    size_t own = 0;
    fill_random(buf, 40000, 23);
    memcpy(buf + 40000, buf, 40000);
    snappy_round_trip(buf, 80000, &own);
    ASSERT_TRUE(own + 15000 < libsnappy_len(buf, 80000));
    free(buf);
}

/* ------------------------------------------------------------------------------------------ */
/* The exporter against a scripted server                                                     */

typedef struct fx {
    uv_loop_t loop;
    om_host_t host;
    uv_timer_t tick;
    om_test_httpd_t srv;
    exp_prw_cfg_t *cfg; /* om_test_config_load's */
    void *e;
    int done;
} fx_t;

#define RUN_UNTIL(fx, cond, max_ms) OM_TEST_RUN_UNTIL(&(fx)->loop, cond, max_ms)

static void tick_cb(uv_timer_t *t)
{
    (void)t;
}

static void done_cb(void *arg)
{
    *(int *)arg += 1;
}

static void fx_init(fx_t *fx)
{
    memset(fx, 0, sizeof *fx);
    uv_loop_init(&fx->loop);
    om_test_host_init(&fx->host, &fx->loop);
    uv_timer_init(&fx->loop, &fx->tick);
    uv_timer_start(&fx->tick, tick_cb, 5, 5);
}

static int fx_exporter(fx_t *fx, const char *fmt, ...) OM_PRINTF(2, 3);

static int fx_exporter(fx_t *fx, const char *fmt, ...)
{
    char text[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    const char *why = "";
    om_err_t err = {0};
    fx->cfg = om_test_config_load(&exp_prw_factory, text, &why);
    int rc = fx->cfg != NULL ? 0 : OM_ECONFIG;
    if (rc != 0) {
        fprintf(stderr, "%s\n", why);
    }
    om_create_args_t a = {.cfg = fx->cfg,
                          .id = "prometheusremotewrite",
                          .log_name = "exporter/prometheusremotewrite",
                          .host = &fx->host,
                          .signals = OM_SIG_METRICS};
    rc = rc ? rc : exp_prw_factory.create(&a, &fx->e, &err);
    rc = rc ? rc : exp_prw_factory.start(fx->e, &err);
    if (rc != 0) {
        fprintf(stderr, "exporter: %s\n", err.msg);
    }
    return rc;
}

static int fx_finish(fx_t *fx)
{
    if (fx->e != NULL) {
        exp_prw_factory.shutdown(fx->e, done_cb, &fx->done);
        RUN_UNTIL(fx, fx->done > 0, 10000);
        if (fx->done != 1) {
            return -1;
        }
        exp_prw_factory.destroy(fx->e);
    }
    om_test_config_free(&exp_prw_factory, fx->cfg);
    om_test_httpd_stop(&fx->srv);
    uv_close((uv_handle_t *)&fx->tick, NULL);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    om_test_host_close(&fx->host);
    return uv_loop_close(&fx->loop);
}

static int64_t metric(const fx_t *fx, const char *name)
{
    return om_test_metric(&fx->host, name, "exporter", "prometheusremotewrite", NULL);
}

#define SENT(fx) metric(fx, "otelcol_exporter_sent_metric_points")
#define FAILED(fx) metric(fx, "otelcol_exporter_send_failed_metric_points")

/* The series names of a recorded request, joined with ','. */
static void names_of(const om_test_httpd_rec_t *r, char *out, size_t cap)
{
    out[0] = '\0';
    Prometheus__WriteRequest *w = unpack_body(r->body, r->body_len);
    for (size_t i = 0; w != NULL && i < w->n_timeseries; i++) {
        size_t len = strlen(out);
        snprintf(out + len, cap - len, "%s%s", len > 0 ? "," : "",
                 w->timeseries[i]->labels[0]->value);
    }
    if (w != NULL) {
        prometheus__write_request__free_unpacked(w, NULL);
    }
}

static void test_headers_and_body(void)
{
    fx_t fx;
    fx_init(&fx);
    ASSERT_EQ_INT(om_test_httpd_start(&fx.srv, &fx.loop, 0, NULL, NULL), 0);
    fx.srv.script[0] = (om_test_httpd_reply_t){.status = 204};
    fx.srv.n_script = 1;
    ASSERT_EQ_INT(fx_exporter(&fx,
                              "{endpoint: 'http://127.0.0.1:%d/api/v1/write', headers: "
                              "{X-Scope-OrgID: t1}, external_labels: {cluster.name: c1}}",
                              fx.srv.port),
                  0);
    om_batch_t *b = om_testdata_otlp("resource service.name=s; metric m; point 2 time:1000000000");
    ASSERT_EQ_INT(exp_prw_factory.consume_metrics(fx.e, om_testdata_wire(b)), 0);
    RUN_UNTIL(&fx, SENT(&fx) == 1, 5000);
    ASSERT_EQ_INT(SENT(&fx), 1);
    ASSERT_EQ_UINT(fx.srv.n_reqs, 1);
    const om_test_httpd_rec_t *r = &fx.srv.reqs[0];
    ASSERT_EQ_STR(r->method, "POST");
    ASSERT_EQ_STR(r->url, "/api/v1/write");
    ASSERT_EQ_STR(om_test_httpd_header(r, "Content-Encoding"), "snappy");
    ASSERT_EQ_STR(om_test_httpd_header(r, "Content-Type"), "application/x-protobuf");
    ASSERT_EQ_STR(om_test_httpd_header(r, "X-Prometheus-Remote-Write-Version"), "0.1.0");
    ASSERT_EQ_STR(om_test_httpd_header(r, "X-Scope-OrgID"), "t1");
    Prometheus__WriteRequest *w = unpack_body(r->body, r->body_len);
    ASSERT_TRUE(w != NULL && w->n_timeseries == 1);
    om_strbuf_t sb;
    om_strbuf_init(&sb, 0);
    bool ok = true;
    describe_series(w->timeseries[0], &sb, &ok);
    ASSERT_TRUE(ok);
    ASSERT_EQ_STR(sb.data, "{__name__=\"m\",cluster_name=\"c1\",job=\"s\"} 2@1000\n");
    om_strbuf_free(&sb);
    prometheus__write_request__free_unpacked(w, NULL);
    ASSERT_EQ_INT(metric(&fx, "otelcol_exporter_prometheusremotewrite_translated_time_series"), 1);
    ASSERT_EQ_INT(metric(&fx, "otelcol_exporter_prometheusremotewrite_sent_batches"), 1);
    ASSERT_EQ_INT(fx_finish(&fx), 0);
}

/* `auth: {authenticator: ID}`: each request carries the authenticator's headers as they are
 * at send time, over the configured ones (otelcol's auth extensions wrap the HTTP client). */
static void test_client_auth_headers(void)
{
    fx_t fx;
    fx_init(&fx);
    om_testauth_t ta = {.secret = "one", .sides = 0};
    om_testauth_register(&fx.host, "testauth", &ta);
    ASSERT_EQ_INT(om_test_httpd_start(&fx.srv, &fx.loop, 0, NULL, NULL), 0);
    fx.srv.script[0] = (om_test_httpd_reply_t){.status = 204};
    fx.srv.script[1] = (om_test_httpd_reply_t){.status = 204};
    fx.srv.n_script = 2;
    ASSERT_EQ_INT(fx_exporter(&fx,
                              "{endpoint: 'http://127.0.0.1:%d/w', headers: {Authorization: "
                              "cfg}, auth: {authenticator: testauth}}",
                              fx.srv.port),
                  0);
    ASSERT_EQ_INT(exp_prw_factory.consume_metrics(
                      fx.e, om_testdata_wire(om_testdata_otlp(
                                "resource service.name=s; metric m; point 2 time:1000000000"))),
                  0);
    RUN_UNTIL(&fx, SENT(&fx) == 1, 5000);
    memcpy(ta.secret, "two", 4);
    ASSERT_EQ_INT(exp_prw_factory.consume_metrics(
                      fx.e, om_testdata_wire(om_testdata_otlp(
                                "resource service.name=s; metric m; point 3 time:2000000000"))),
                  0);
    RUN_UNTIL(&fx, SENT(&fx) == 2, 5000);
    ASSERT_EQ_UINT(fx.srv.n_reqs, 2);
    ASSERT_EQ_STR(om_test_httpd_header(&fx.srv.reqs[0], "Authorization"), "Test one");
    ASSERT_EQ_STR(om_test_httpd_header(&fx.srv.reqs[1], "Authorization"), "Test two");
    ASSERT_TRUE(ta.header_calls >= 2);
    ASSERT_EQ_INT(fx_finish(&fx), 0);
}

static void test_5xx_and_429_retried_400_dropped(void)
{
    fx_t fx;
    fx_init(&fx);
    ASSERT_EQ_INT(om_test_httpd_start(&fx.srv, &fx.loop, 0, NULL, NULL), 0);
    static const char oo[] = "out of order sample";
    fx.srv.script[0] = (om_test_httpd_reply_t){.status = 503};
    fx.srv.script[1] = (om_test_httpd_reply_t){.status = 429, .headers = "Retry-After: 1\r\n"};
    fx.srv.script[2] = (om_test_httpd_reply_t){.status = 204};
    fx.srv.script[3] =
        (om_test_httpd_reply_t){.status = 400, .ctype = "text/plain", .body = oo, .body_len = 19};
    fx.srv.script[4] = (om_test_httpd_reply_t){.status = 204};
    fx.srv.n_script = 5;
    ASSERT_EQ_INT(fx_exporter(&fx,
                              "{endpoint: 'http://127.0.0.1:%d/api/v1/write', "
                              "retry_on_failure: {initial_interval: 10ms}}",
                              fx.srv.port),
                  0);
    om_log_set_level(OM_LOG_NONE);
    ASSERT_EQ_INT(exp_prw_factory.consume_metrics(
                      fx.e, om_testdata_otlp("metric a; point 1 time:1000000000")),
                  0);
    RUN_UNTIL(&fx, SENT(&fx) == 1, 5000);
    ASSERT_EQ_UINT(fx.srv.n_reqs, 3); /* 503, 429 (after Retry-After), 204 */
    ASSERT_TRUE(fx.srv.reqs[2].at_ms - fx.srv.reqs[1].at_ms >= 900);
    ASSERT_EQ_INT(exp_prw_factory.consume_metrics(
                      fx.e, om_testdata_otlp("metric b; point 1 time:1000000000")),
                  0);
    ASSERT_EQ_INT(exp_prw_factory.consume_metrics(
                      fx.e, om_testdata_otlp("metric c; point 1 time:1000000000")),
                  0);
    RUN_UNTIL(&fx, SENT(&fx) == 2 && FAILED(&fx) == 1, 5000);
    om_log_set_level(OM_LOG_ERROR);
    ASSERT_EQ_INT(FAILED(&fx), 1); /* the 400: dropped, not retried */
    ASSERT_EQ_INT(SENT(&fx), 2);   /* and the next batch went on */
    ASSERT_EQ_UINT(fx.srv.n_reqs, 5);
    ASSERT_EQ_INT(fx_finish(&fx), 0);
}

static void test_retry_sends_only_failed_requests(void)
{
    fx_t fx;
    fx_init(&fx);
    ASSERT_EQ_INT(om_test_httpd_start(&fx.srv, &fx.loop, 0, NULL, NULL), 0);
    fx.srv.script[0] = (om_test_httpd_reply_t){.status = 204};
    fx.srv.script[1] = (om_test_httpd_reply_t){.status = 500};
    fx.srv.script[2] = (om_test_httpd_reply_t){.status = 204};
    fx.srv.n_script = 3;
    ASSERT_EQ_INT(fx_exporter(&fx,
                              "{endpoint: 'http://127.0.0.1:%d/w', max_batch_size_bytes: 40, "
                              "remote_write_queue: {num_consumers: 1}, "
                              "retry_on_failure: {initial_interval: 10ms}}",
                              fx.srv.port),
                  0);
    om_log_set_level(OM_LOG_NONE);
    ASSERT_EQ_INT(exp_prw_factory.consume_metrics(
                      fx.e, om_testdata_otlp("metric m1; point 1 time:1000000000;"
                                             "metric m2; point 1 time:1000000000;"
                                             "metric m3; point 1 time:1000000000")),
                  0);
    RUN_UNTIL(&fx, SENT(&fx) == 3, 5000);
    om_log_set_level(OM_LOG_ERROR);
    ASSERT_EQ_INT(SENT(&fx), 3);
    ASSERT_EQ_UINT(fx.srv.n_reqs, 4); /* three requests, then m2's again */
    char names[4][64];
    for (int i = 0; i < 4; i++) {
        names_of(&fx.srv.reqs[i], names[i], sizeof names[i]);
    }
    ASSERT_EQ_STR(names[0], "m1");
    ASSERT_EQ_STR(names[1], "m2");
    ASSERT_EQ_STR(names[2], "m3");
    ASSERT_EQ_STR(names[3], "m2");
    ASSERT_EQ_INT(fx_finish(&fx), 0);
}

/* The next batch is encoded while one is sent, but its requests wait until the earlier batch
 * is finished, retries included: a series' samples reach Prometheus in time order. */
static void test_next_batch_waits_for_the_earlier(void)
{
    fx_t fx;
    fx_init(&fx);
    ASSERT_EQ_INT(om_test_httpd_start(&fx.srv, &fx.loop, 0, NULL, NULL), 0);
    fx.srv.script[0] = (om_test_httpd_reply_t){.status = 503};
    fx.srv.script[1] = (om_test_httpd_reply_t){.status = 503};
    fx.srv.script[2] = (om_test_httpd_reply_t){.status = 204};
    fx.srv.script[3] = (om_test_httpd_reply_t){.status = 204};
    fx.srv.script[4] = (om_test_httpd_reply_t){.status = 204};
    fx.srv.n_script = 5;
    ASSERT_EQ_INT(
        fx_exporter(&fx,
                    "{endpoint: 'http://127.0.0.1:%d/w', "
                    "retry_on_failure: {initial_interval: 100ms, randomization_factor: 0}}",
                    fx.srv.port),
        0);
    exp_prw_t *e = fx.e;
    om_log_set_level(OM_LOG_NONE);
    const char *names[] = {"first", "second", "third"};
    for (int i = 0; i < 3; i++) {
        ASSERT_EQ_INT(
            exp_prw_factory.consume_metrics(
                fx.e, om_testdata_otlp("metric %s; point %d time:%d000000000", names[i], i, i + 1)),
            0);
    }
    /* While the first batch waits for its retry, the second is encoded and held. */
    RUN_UNTIL(&fx, fx.srv.n_reqs == 1 && e->held == 1, 5000);
    ASSERT_EQ_UINT(e->held, 1);
    ASSERT_EQ_UINT(fx.srv.n_reqs, 1);
    RUN_UNTIL(&fx, SENT(&fx) == 3, 5000);
    om_log_set_level(OM_LOG_ERROR);
    ASSERT_EQ_INT(SENT(&fx), 3);
    ASSERT_EQ_UINT(fx.srv.n_reqs, 5);
    char got[5][64];
    for (int i = 0; i < 5; i++) {
        names_of(&fx.srv.reqs[i], got[i], sizeof got[i]);
    }
    ASSERT_EQ_STR(got[0], "first");
    ASSERT_EQ_STR(got[1], "first");
    ASSERT_EQ_STR(got[2], "first");
    ASSERT_EQ_STR(got[3], "second");
    ASSERT_EQ_STR(got[4], "third");
    ASSERT_EQ_UINT(e->held, 0);
    ASSERT_EQ_INT(fx_finish(&fx), 0);
}

static void test_delta_counted_not_sent(void)
{
    fx_t fx;
    fx_init(&fx);
    ASSERT_EQ_INT(om_test_httpd_start(&fx.srv, &fx.loop, 0, NULL, NULL), 0);
    ASSERT_EQ_INT(fx_exporter(&fx, "{endpoint: 'http://127.0.0.1:%d/w'}", fx.srv.port), 0);
    om_log_set_level(OM_LOG_NONE);
    for (int i = 0; i < 2; i++) {
        ASSERT_EQ_INT(exp_prw_factory.consume_metrics(
                          fx.e, om_testdata_otlp("metric d type:sum monotonic:true "
                                                 "temporality:delta; point 1; point 2 x=1")),
                      0);
    }
    RUN_UNTIL(&fx, SENT(&fx) == 4, 5000);
    om_log_set_level(OM_LOG_ERROR);
    ASSERT_EQ_INT(metric(&fx, "otelcol_exporter_prometheusremotewrite_dropped_delta_points"), 4);
    ASSERT_EQ_INT(metric(&fx, "otelcol_exporter_prometheusremotewrite_failed_translations"), 2);
    ASSERT_EQ_UINT(fx.srv.n_reqs, 0); /* nothing to send */
    ASSERT_EQ_INT(fx_finish(&fx), 0);
}

/* Two points of one series at one timestamp in a batch: one sample goes out (the last), the
 * other is counted, not lost silently. */
static void test_duplicate_samples_counted(void)
{
    fx_t fx;
    fx_init(&fx);
    ASSERT_EQ_INT(om_test_httpd_start(&fx.srv, &fx.loop, 0, NULL, NULL), 0);
    ASSERT_EQ_INT(fx_exporter(&fx, "{endpoint: 'http://127.0.0.1:%d/w'}", fx.srv.port), 0);
    ASSERT_EQ_INT(
        exp_prw_factory.consume_metrics(
            fx.e, om_testdata_otlp("metric g; point 1 time:1000000000 k=v; "
                                   "point 2 time:1000000000 k=v; point 3 time:2000000000 k=v")),
        0);
    RUN_UNTIL(&fx, SENT(&fx) == 3, 5000);
    ASSERT_EQ_UINT(fx.srv.n_reqs, 1);
    Prometheus__WriteRequest *w = unpack_body(fx.srv.reqs[0].body, fx.srv.reqs[0].body_len);
    ASSERT_TRUE(w != NULL && w->n_timeseries == 1);
    ASSERT_EQ_UINT(w->timeseries[0]->n_samples, 2);
    ASSERT_TRUE(w->timeseries[0]->samples[0]->value == 2.0);
    prometheus__write_request__free_unpacked(w, NULL);
    ASSERT_EQ_INT(metric(&fx, "otelcol_exporter_prometheusremotewrite_merged_samples"), 1);
    ASSERT_EQ_INT(fx_finish(&fx), 0);
}

/* ------------------------------------------------------------------------------------------ */
/* Config                                                                                     */

/* A whole collector config through the core's graph builder, as `otelmon validate` runs it:
 * the messages with file:line:column. */
static char *validate(const char *exporter_yaml)
{
    char text[2048];
    snprintf(text, sizeof text,
             "receivers: {otlp: {protocols: {grpc: }}}\n"
             "exporters:\n"
             "  prometheusremotewrite:\n"
             "%s"
             "service: {pipelines: {metrics: {receivers: [otlp], "
             "exporters: [prometheusremotewrite]}}}\n",
             exporter_yaml);
    om_config_t *cfg = NULL;
    om_diags_t d = {0};
    om_strbuf_t all;
    om_strbuf_init(&all, 0);
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
    return all.data != NULL ? om_strbuf_steal(&all, NULL) : strdup("");
}

static void test_config_errors(void)
{
    static const struct {
        const char *yaml, *want;
    } cases[] = {
        {"    endpoint: http://p:9090/api/v1/write\n", ""},
        {"    namespace: x\n",
         "t.yaml:4:5: exporters::prometheusremotewrite: missing required key \"endpoint\""},
        {"    endpoint: 'p:9090'\n",
         "t.yaml:4:15: exporters::prometheusremotewrite: endpoint: must be a valid URL"},
        {"    endpoint: http://p/w\n    remote_write_queue:\n      queue_size: 0\n",
         "t.yaml:6:19: exporters::prometheusremotewrite: remote_write_queue::queue_size: a 0 "
         "size queue will drop all the data"},
        {"    endpoint: http://p/w\n    remote_write_queue: {num_consumers: -1}\n",
         "t.yaml:5:41: exporters::prometheusremotewrite::remote_write_queue::num_consumers:"},
        {"    endpoint: http://p/w\n    headers:\n      content-type: text/plain\n",
         "t.yaml:6:21: exporters::prometheusremotewrite: headers::content-type: Content-Type is "
         "set by remote-write itself and cannot be configured"},
        {"    endpoint: http://p/w\n    external_labels: {k: ''}\n",
         "t.yaml:5:26: exporters::prometheusremotewrite: external_labels::k: external labels "
         "configuration contains an empty key or value"},
        {"    endpoint: http://p/w\n    wal: {directory: /tmp/w}\n",
         "t.yaml:5:10: exporters::prometheusremotewrite::wal: not supported by otelmon: the "
         "write-ahead log (wal) is not "
         "implemented"},
        {"    endpoint: http://p/w\n    sending_queue: {enabled: true}\n",
         "t.yaml:5:5: 'exporters::prometheusremotewrite' has invalid keys: sending_queue"},
        {"    endpoint: http://p/w\n    max_batch_size_bytes: 3MB\n    timeout: 2s\n"
         "    retry_on_failure: {max_elapsed_time: 1m}\n    target_info: {enabled: false}\n"
         "    resource_to_telemetry_conversion: {enabled: true}\n    send_metadata: true\n"
         "    add_metric_suffixes: false\n    tls: {insecure: true}\n",
         ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *msgs = validate(cases[i].yaml);
        if (getenv("PRW_TEST_VERBOSE") != NULL) {
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

static void test_defaults(void)
{
    exp_prw_cfg_t cfg;
    memset(&cfg, 0, sizeof cfg);
    om_diags_t d = {0};
    om_fields_apply(exp_prw_fields, &cfg, NULL, "x", &d);
    ASSERT_EQ_INT(cfg.helper.timeout, 5 * OM_NS_PER_S);
    ASSERT_EQ_INT(cfg.helper.retry_on_failure.initial_interval, 50 * OM_NS_PER_MS);
    ASSERT_EQ_INT(cfg.helper.retry_on_failure.max_interval, 30 * OM_NS_PER_S);
    ASSERT_EQ_INT(cfg.helper.retry_on_failure.max_elapsed_time, 300 * OM_NS_PER_S);
    ASSERT_EQ_INT(cfg.queue.enabled, 1);
    ASSERT_EQ_INT(cfg.queue.queue_size, 10000);
    ASSERT_EQ_INT(cfg.queue.num_consumers, 5);
    ASSERT_EQ_UINT(cfg.max_batch_size_bytes, 3000000);
    ASSERT_EQ_INT(cfg.add_metric_suffixes, 1);
    ASSERT_EQ_INT(cfg.target_info.enabled, 1);
    ASSERT_EQ_INT(cfg.r2t.enabled, 0);
    ASSERT_EQ_INT(cfg.send_metadata, 0);
    om_fields_free(exp_prw_fields, &cfg);
    om_diags_free(&d);
}

static void test_generic_lifecycle(void)
{
    om_log_set_level(OM_LOG_NONE); /* nothing listens on port 1: the batch is dropped */
    om_test_lifecycle(&exp_prw_factory, "{endpoint: 'http://127.0.0.1:1/api/v1/write', "
                                        "retry_on_failure: {enabled: false}}");
    om_log_set_level(OM_LOG_ERROR);
}

int main(void)
{
    om_log_set_level(OM_LOG_ERROR);
    OM_RUN(test_encode_types_names_labels);
    OM_RUN(test_encode_options);
    OM_RUN(test_encode_names_by_kind);
    OM_RUN(test_encode_stale_exemplars_and_order);
    OM_RUN(test_encode_native_histograms);
    OM_RUN(test_encode_splits_by_size);
    drop_cached();
    OM_RUN(test_paths_generated);
    OM_RUN(test_wire_odd_bytes);
    OM_RUN(test_snappy_round_trips);
    OM_RUN(test_snappy_ratio_on_series);
    OM_RUN(test_snappy_window);
    OM_RUN(test_headers_and_body);
    OM_RUN(test_client_auth_headers);
    OM_RUN(test_5xx_and_429_retried_400_dropped);
    OM_RUN(test_retry_sends_only_failed_requests);
    OM_RUN(test_next_batch_waits_for_the_earlier);
    OM_RUN(test_delta_counted_not_sent);
    OM_RUN(test_duplicate_samples_counted);
    OM_RUN(test_config_errors);
    OM_RUN(test_defaults);
    OM_RUN(test_generic_lifecycle);
    return om_test_summary();
}
