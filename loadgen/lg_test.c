/* lg_test.c: unit tests of the load generator's pieces: the request pool's shape, the wire
 * item counter against the core's decoder, the remote-write counter against protobuf-c and
 * snappy, the remote-write samples a metrics request becomes, response parsing, the histogram and
 * pacing, and how a gRPC call behaves while its channel cannot finish connecting. The clients
 * and the sink run end to end in `bench/run --smoke` (meson test --suite
 * bench). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <snappy-c.h>

#include "lg.h"
#include "om_test.h"
#include "prompb/remote.pb-c.h"

static lg_opts_t opts(om_signal_t sig, lg_proto_t proto)
{
    lg_opts_t o;
    memset(&o, 0, sizeof o);
    o.protocol = proto;
    o.signal = sig;
    o.host = "127.0.0.1";
    o.port = 4318;
    o.items = 25;
    o.attrs = 8;
    o.attr_size = 16;
    o.pool = 3;
    o.seed = 7;
    return o;
}

static const char *attr_str(om_keyvalue_t **kvs, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(kvs[i]->key, key) == 0) {
            return kvs[i]->value->string_value;
        }
    }
    return NULL;
}

static void test_traces_shape(void)
{
    lg_opts_t o = opts(OM_SIG_TRACES, LG_GRPC);
    lg_pool_t pool;
    om_err_t err = {0};
    ASSERT_EQ_INT(lg_pool_build(&o, &pool, &err), 0);
    ASSERT_EQ_UINT(pool.n, 3);
    om_batch_t *b = NULL;
    int rc =
        om_batch_decode_proto(OM_SIG_TRACES, pool.reqs[1].body, pool.reqs[1].body_len, 0, &b, &err);
    lg_pool_free(&pool);
    ASSERT_EQ_INT(rc, 0);
    ASSERT_EQ_UINT(b->items, 25);
    ASSERT_EQ_INT(om_batch_decode(b, &err), 0);
    ASSERT_EQ_UINT(b->traces->n_resource_spans, 1);
    om_resource_spans_t *rs = b->traces->resource_spans[0];
    ASSERT_EQ_STR(attr_str(rs->resource->attributes, rs->resource->n_attributes, "service.name"),
                  "otelmon-loadgen");
    ASSERT_TRUE(attr_str(rs->resource->attributes, rs->resource->n_attributes, "host.name") !=
                NULL);
    ASSERT_EQ_UINT(rs->n_scope_spans, 1);
    om_span_t *s0 = rs->scope_spans[0]->spans[0], *s1 = rs->scope_spans[0]->spans[1];
    ASSERT_EQ_UINT(s0->trace_id.len, 16);
    ASSERT_EQ_UINT(s0->span_id.len, 8);
    ASSERT_EQ_UINT(s0->n_attributes, 8);
    ASSERT_EQ_UINT(strlen(s0->attributes[0]->value->string_value), 16);
    ASSERT_EQ_UINT(s0->n_events, 1);
    ASSERT_TRUE(s0->status != NULL && s0->status->code != 0);
    /* The second span is the first one's child in the same trace. */
    ASSERT_TRUE(memcmp(s1->trace_id.data, s0->trace_id.data, 16) == 0);
    ASSERT_TRUE(memcmp(s1->parent_span_id.data, s0->span_id.data, 8) == 0);
    om_batch_release(b);
}

static om_span_t *first_span(const om_batch_t *b)
{
    return b->traces->resource_spans[0]->scope_spans[0]->spans[0];
}

/* Pool entries differ (distinct ids), and the same seed gives the same ids (timestamps follow
 * the clock). */
static void test_pool_distinct_and_seeded(void)
{
    lg_opts_t o = opts(OM_SIG_TRACES, LG_GRPC);
    lg_pool_t a, b;
    om_err_t err = {0};
    ASSERT_EQ_INT(lg_pool_build(&o, &a, &err), 0);
    ASSERT_EQ_INT(lg_pool_build(&o, &b, &err), 0);
    om_batch_t *a0 = NULL, *a1 = NULL, *b0 = NULL;
    int rc = om_batch_decode_proto(o.signal, a.reqs[0].body, a.reqs[0].body_len, 0, &a0, &err);
    rc |= om_batch_decode_proto(o.signal, a.reqs[1].body, a.reqs[1].body_len, 0, &a1, &err);
    rc |= om_batch_decode_proto(o.signal, b.reqs[0].body, b.reqs[0].body_len, 0, &b0, &err);
    if (rc == 0) {
        rc = om_batch_decode(a0, &err) | om_batch_decode(a1, &err) | om_batch_decode(b0, &err);
    }
    lg_pool_free(&a);
    lg_pool_free(&b);
    bool same =
        rc == 0 && memcmp(first_span(a0)->span_id.data, first_span(b0)->span_id.data, 8) == 0;
    bool distinct =
        rc == 0 && memcmp(first_span(a0)->trace_id.data, first_span(a1)->trace_id.data, 16) != 0;
    om_batch_release(a0);
    om_batch_release(a1);
    om_batch_release(b0);
    ASSERT_EQ_INT(rc, 0);
    ASSERT_TRUE(same);
    ASSERT_TRUE(distinct);
}

/* The wire counter agrees with the core's decoder for every signal. */
static void test_count_matches_decoder(void)
{
    for (int i = 0; i < OM_SIG_COUNT; i++) {
        lg_opts_t o = opts(om_signal_from_index(i), LG_GRPC);
        o.items = 37; /* metrics: 9 full metrics of 4 points and one of 1 */
        lg_pool_t pool;
        om_err_t err = {0};
        ASSERT_EQ_INT(lg_pool_build(&o, &pool, &err), 0);
        uint64_t n = 0;
        int rc = lg_count_items(o.signal, pool.reqs[0].body, pool.reqs[0].body_len, &n);
        om_batch_t *b = NULL;
        int drc =
            om_batch_decode_proto(o.signal, pool.reqs[0].body, pool.reqs[0].body_len, 0, &b, &err);
        /* Counted on the wire at arrival, and again from the structs once decoded. */
        size_t core = drc == 0 ? om_batch_count_items(b) : 0;
        size_t decoded = drc == 0 && om_batch_decode(b, &err) == 0 ? om_batch_count_items(b) : 0;
        om_batch_release(b);
        lg_pool_free(&pool);
        ASSERT_EQ_INT(rc, 0);
        ASSERT_EQ_INT(drc, 0);
        ASSERT_EQ_UINT(n, 37);
        ASSERT_EQ_UINT(core, 37);
        ASSERT_EQ_UINT(decoded, 37);
    }
}

static void test_count_rejects_malformed(void)
{
    lg_opts_t o = opts(OM_SIG_LOGS, LG_GRPC);
    uint64_t rng = 1, n = 0;
    uint8_t *buf = NULL;
    size_t len = 0;
    om_err_t err = {0};
    ASSERT_EQ_INT(lg_gen_proto(&o, &rng, &buf, &len, &err), 0);
    int truncated = lg_count_items(OM_SIG_LOGS, buf, len - 3, &n);
    om_free(buf);
    ASSERT_EQ_INT(truncated, OM_EINVAL);
    const uint8_t group[] = {0x0b}; /* field 1, wire type 3 (start group) */
    ASSERT_EQ_INT(lg_count_items(OM_SIG_TRACES, group, 1, &n), OM_EINVAL);
    ASSERT_EQ_INT(lg_count_items(OM_SIG_TRACES, group, 0, &n), 0);
    ASSERT_EQ_UINT(n, 0);
}

/* The sink inflates what the collector's exporters send in any of their framings (told apart
 * by the magic bytes), refuses corrupt input and output past its bound. */
static void test_sink_inflates_every_framing(void)
{
    static const om_comp_t algs[] = {OM_COMP_GZIP, OM_COMP_ZLIB, OM_COMP_ZSTD};
    uint8_t plain[20000];
    for (size_t i = 0; i < sizeof plain; i++) {
        plain[i] = (uint8_t)("otlp spans "[i % 11] + (i / 997) % 3);
    }
    for (size_t a = 0; a < sizeof algs / sizeof algs[0]; a++) {
        om_compressor_t *c = NULL;
        ASSERT_EQ_INT(om_compressor_new(algs[a], algs[a] == OM_COMP_ZSTD ? 3 : 6, &c), 0);
        uint8_t *z = NULL, *out = NULL;
        size_t zlen = 0, out_len = 0;
        ASSERT_EQ_INT(om_compressor_run(c, plain, sizeof plain, &z, &zlen), 0);
        om_compressor_free(c);
        ASSERT_EQ_INT(lg_gunzip(z, zlen, sizeof plain, &out, &out_len), 0);
        ASSERT_EQ_UINT(out_len, sizeof plain);
        ASSERT_TRUE(memcmp(out, plain, sizeof plain) == 0);
        om_free(out);
        out = NULL;
        ASSERT_TRUE(lg_gunzip(z, zlen, sizeof plain - 1, &out, &out_len) != 0);
        ASSERT_TRUE(lg_gunzip(z, zlen / 2, sizeof plain, &out, &out_len) != 0);
        ASSERT_TRUE(out == NULL);
        om_free(z);
    }
}

/* HTTP/JSON pool entries are OTLP JSON the core decodes to the same items; with gzip the
 * body inflates back to it; the wire form carries the headers. */
static void test_json_gzip_wire(void)
{
    lg_opts_t o = opts(OM_SIG_METRICS, LG_HTTP_JSON);
    o.gzip = true;
    lg_pool_t pool;
    om_err_t err = {0};
    ASSERT_EQ_INT(lg_pool_build(&o, &pool, &err), 0);
    uint8_t *plain = NULL;
    size_t plen = 0;
    int zrc = lg_gunzip(pool.reqs[0].body, pool.reqs[0].body_len, 1 << 24, &plain, &plen);
    char *wire = om_strndup((const char *)pool.reqs[0].wire, pool.reqs[0].wire_len);
    lg_pool_free(&pool);
    ASSERT_EQ_INT(zrc, 0);
    om_batch_t *b = NULL;
    int rc = om_batch_decode_json(OM_SIG_METRICS, (const char *)plain, plen, 0, &b, &err);
    om_free(plain);
    size_t items = rc == 0 ? b->items : 0;
    om_batch_release(b);
    ASSERT_EQ_INT(rc, 0);
    ASSERT_EQ_UINT(items, 25);
    ASSERT_TRUE(wire != NULL && strncmp(wire, "POST /v1/metrics HTTP/1.1\r\n", 27) == 0);
    ASSERT_CONTAINS(wire, "Content-Type: application/json\r\n");
    ASSERT_CONTAINS(wire, "Content-Encoding: gzip\r\n");
    om_free(wire);
}

/* A WriteRequest packed by protobuf-c (series with 2, 1 and 0 samples, one native histogram,
 * labels and metadata that must not count), raw and snappy-compressed as on the wire. */
static void test_count_rw(void)
{
    Prometheus__Label l1 = PROMETHEUS__LABEL__INIT, l2 = PROMETHEUS__LABEL__INIT;
    l1.name = "__name__";
    l1.value = "up";
    l2.name = "job";
    l2.value = "x";
    Prometheus__Label *labels[] = {&l1, &l2};
    Prometheus__Sample sa[3];
    Prometheus__Sample *sp[3];
    for (int i = 0; i < 3; i++) {
        prometheus__sample__init(&sa[i]);
        sa[i].value = i + 0.5;
        sa[i].timestamp = 1000 + i;
        sp[i] = &sa[i];
    }
    Prometheus__Histogram h = PROMETHEUS__HISTOGRAM__INIT;
    h.timestamp = 5;
    Prometheus__Histogram *hp[] = {&h};
    Prometheus__TimeSeries ts[3];
    Prometheus__TimeSeries *tsp[3];
    for (int i = 0; i < 3; i++) {
        prometheus__time_series__init(&ts[i]);
        ts[i].n_labels = 2;
        ts[i].labels = labels;
        tsp[i] = &ts[i];
    }
    ts[0].n_samples = 2;
    ts[0].samples = sp;
    ts[1].n_samples = 1;
    ts[1].samples = sp + 2;
    ts[2].n_histograms = 1;
    ts[2].histograms = hp;
    Prometheus__MetricMetadata md = PROMETHEUS__METRIC_METADATA__INIT;
    md.metric_family_name = "up";
    Prometheus__MetricMetadata *mdp[] = {&md};
    Prometheus__WriteRequest w = PROMETHEUS__WRITE_REQUEST__INIT;
    w.n_timeseries = 3;
    w.timeseries = tsp;
    w.n_metadata = 1;
    w.metadata = mdp;
    size_t len = prometheus__write_request__get_packed_size(&w);
    uint8_t *raw = malloc(len);
    size_t zcap = snappy_max_compressed_length(len), zlen = zcap;
    char *z = malloc(zcap);
    ASSERT_TRUE(raw != NULL && z != NULL);
    prometheus__write_request__pack(&w, raw);
    ASSERT_EQ_INT(snappy_compress((const char *)raw, len, z, &zlen), SNAPPY_OK);
    uint64_t se = 0, sm = 0, hi = 0;
    int rc_raw = lg_count_rw(raw, len, &se, &sm, &hi);
    uint64_t se2 = 0, sm2 = 0, hi2 = 0;
    int rc_z = lg_count_rw_snappy((const uint8_t *)z, zlen, 1 << 20, &se2, &sm2, &hi2);
    uint64_t x = 0;
    int rc_trunc = lg_count_rw(raw, len - 1, &x, &x, &x);
    int rc_notsnappy = lg_count_rw_snappy(raw, len, 1 << 20, &x, &x, &x);
    int rc_toolarge = lg_count_rw_snappy((const uint8_t *)z, zlen, len - 1, &x, &x, &x);
    free(raw);
    free(z);
    ASSERT_EQ_INT(rc_raw, 0);
    ASSERT_EQ_UINT(se, 3);
    ASSERT_EQ_UINT(sm, 3);
    ASSERT_EQ_UINT(hi, 1);
    ASSERT_EQ_INT(rc_z, 0);
    ASSERT_EQ_UINT(se2, 3);
    ASSERT_EQ_UINT(sm2, 3);
    ASSERT_EQ_UINT(hi2, 1);
    ASSERT_EQ_INT(rc_trunc, OM_EINVAL);
    ASSERT_EQ_INT(rc_notsnappy, OM_EINVAL);
    ASSERT_EQ_INT(rc_toolarge, OM_EINVAL);
}

/* The remote-write samples the client reports per metrics request are what the translation's
 * rules give for the request actually built (counted here from the decoded OTLP: a gauge or
 * sum point is one sample, a histogram point one per bound, le="+Inf", _sum and _count, plus
 * the resource's target_info), and every point of the pool is a series of its own (no two share
 * their attributes). */
static void test_rw_samples_per_request(void)
{
    lg_opts_t o = opts(OM_SIG_METRICS, LG_GRPC);
    o.items = 37; /* 10 metrics: the last one (a gauge) with one point */
    o.pool = 2;
    lg_pool_t pool;
    om_err_t err = {0};
    ASSERT_EQ_INT(lg_pool_build(&o, &pool, &err), 0);
    uint64_t want = 1 /* target_info */, gauges = 0, sums = 0, hists = 0;
    int distinct = 1;
    const char *firsts[2] = {NULL, NULL};
    om_batch_t *bs[2] = {NULL, NULL};
    for (int r = 0; r < 2; r++) {
        ASSERT_EQ_INT(om_batch_decode_proto(OM_SIG_METRICS, pool.reqs[r].body,
                                            pool.reqs[r].body_len, 0, &bs[r], &err),
                      0);
        ASSERT_EQ_INT(om_batch_decode(bs[r], &err), 0);
        om_scope_metrics_t *sm = bs[r]->metrics->resource_metrics[0]->scope_metrics[0];
        for (size_t k = 0; k < sm->n_metrics; k++) {
            om_metric_t *m = sm->metrics[k];
            if (m->data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE) {
                gauges += m->gauge->n_data_points;
                want += r == 0 ? m->gauge->n_data_points : 0;
            } else if (m->data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM) {
                ASSERT_TRUE(m->sum->is_monotonic);
                sums += m->sum->n_data_points;
                want += r == 0 ? m->sum->n_data_points : 0;
            } else {
                ASSERT_EQ_INT(m->data_case,
                              OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM);
                for (size_t i = 0; i < m->histogram->n_data_points; i++) {
                    om_histogram_dp_t *dp = m->histogram->data_points[i];
                    ASSERT_TRUE(dp->_sum_case ==
                                OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___SUM_SUM);
                    want += r == 0 ? dp->n_explicit_bounds + 3 : 0;
                    hists++;
                }
            }
        }
        /* The first string attribute of the first point: random per point. */
        om_number_dp_t *dp = sm->metrics[0]->gauge->data_points[0];
        firsts[r] = dp->attributes[0]->value->string_value;
        for (size_t i = 1; i < sm->metrics[0]->gauge->n_data_points; i++) {
            distinct &=
                strcmp(sm->metrics[0]->gauge->data_points[i]->attributes[0]->value->string_value,
                       firsts[r]) != 0;
        }
    }
    distinct &= strcmp(firsts[0], firsts[1]) != 0;
    /* Each request its own resource: one target_info series each. */
    om_resource_t *r0 = bs[0]->metrics->resource_metrics[0]->resource;
    om_resource_t *r1 = bs[1]->metrics->resource_metrics[0]->resource;
    distinct &= strcmp(attr_str(r0->attributes, r0->n_attributes, "service.instance.id"),
                       attr_str(r1->attributes, r1->n_attributes, "service.instance.id")) != 0;
    uint64_t got = lg_rw_samples_per_request(&o);
    om_batch_release(bs[0]);
    om_batch_release(bs[1]);
    lg_pool_free(&pool);
    ASSERT_EQ_UINT(gauges, 2 * 13);
    ASSERT_EQ_UINT(sums, 2 * 12);
    ASSERT_EQ_UINT(hists, 2 * 12);
    ASSERT_EQ_UINT(got, want);
    ASSERT_EQ_UINT(got, 13 + 12 + 12 * 13 + 1);
    ASSERT_TRUE(distinct);
    o.signal = OM_SIG_TRACES;
    ASSERT_EQ_UINT(lg_rw_samples_per_request(&o), 0);
}

static void test_partial_success(void)
{
    /* ExportTraceServiceResponse{partial_success{rejected_spans: 5, error_message: "x"}} */
    const uint8_t partial[] = {0x0a, 0x05, 0x08, 0x05, 0x12, 0x01, 'x'};
    ASSERT_EQ_INT(lg_partial_rejected(partial, sizeof partial), 5);
    const uint8_t zero[] = {0x0a, 0x03, 0x12, 0x01, 'x'};
    ASSERT_EQ_INT(lg_partial_rejected(zero, sizeof zero), 0);
    ASSERT_EQ_INT(lg_partial_rejected(NULL, 0), 0);
    ASSERT_EQ_INT(lg_partial_rejected(partial, 4), -1);
    const char *j = "{\"partialSuccess\":{\"rejectedSpans\":\"3\",\"errorMessage\":\"no\"}}";
    ASSERT_EQ_INT(lg_partial_rejected_json(j, strlen(j)), 3);
    ASSERT_EQ_INT(lg_partial_rejected_json("{}", 2), 0);
}

static void test_histogram(void)
{
    lg_hist_t *h = calloc(1, sizeof *h);
    ASSERT_TRUE(h != NULL);
    for (uint64_t v = 1; v <= 10000; v++) {
        lg_hist_add(h, v);
    }
    uint64_t p50 = lg_hist_quantile(h, 0.5), p99 = lg_hist_quantile(h, 0.99);
    uint64_t p100 = lg_hist_quantile(h, 1.0), p0 = lg_hist_quantile(h, 0.0);
    uint64_t max = h->max;
    free(h);
    ASSERT_TRUE(p50 >= 5000 && p50 <= 5000 * 1.02);
    ASSERT_TRUE(p99 >= 9900 && p99 <= 10000);
    ASSERT_EQ_UINT(p100, 10000);
    ASSERT_EQ_UINT(p0, 1);
    ASSERT_EQ_UINT(max, 10000);
}

static void test_sched(void)
{
    lg_opts_t o = opts(OM_SIG_TRACES, LG_GRPC);
    o.rate = 1000;
    o.requests = 3;
    lg_sched_t s;
    lg_sched_init(&s, &o, 1000000);
    ASSERT_EQ_INT(lg_sched_next(&s, 1000000), 0);
    s.started = 1;
    ASSERT_EQ_INT(lg_sched_next(&s, 1000000), 1000000); /* due 1 ms after the start */
    ASSERT_EQ_INT(lg_sched_next(&s, 1500000), 500000);
    ASSERT_EQ_INT(lg_sched_next(&s, 2000000), 0);
    s.started = 3;
    ASSERT_TRUE(lg_sched_next(&s, 9000000) < 0); /* the request limit */
    o.rate = 0;
    o.requests = 0;
    o.duration_s = 1;
    lg_sched_init(&s, &o, 0);
    ASSERT_EQ_INT(lg_sched_next(&s, 999999999), 0);
    ASSERT_TRUE(lg_sched_next(&s, 1000000000) < 0); /* the duration */
}

static void test_errors_table(void)
{
    lg_stats_t *st = calloc(1, sizeof *st);
    ASSERT_TRUE(st != NULL);
    lg_stats_error(st, "grpc_14_UNAVAILABLE");
    lg_stats_error(st, "http_503");
    lg_stats_error(st, "grpc_14_UNAVAILABLE");
    for (int i = 0; i < 40; i++) {
        char k[16];
        snprintf(k, sizeof k, "k%d", i);
        lg_stats_error(st, k);
    }
    size_t n = st->n_err;
    uint64_t first = st->err_counts[0], last = st->err_counts[LG_MAX_ERR_KINDS - 1];
    char last_name[40];
    snprintf(last_name, sizeof last_name, "%s", st->err_names[LG_MAX_ERR_KINDS - 1]);
    free(st);
    ASSERT_EQ_UINT(n, LG_MAX_ERR_KINDS);
    ASSERT_EQ_UINT(first, 2);
    ASSERT_EQ_STR(last_name, "other");
    ASSERT_EQ_UINT(last, 40 - (LG_MAX_ERR_KINDS - 1 - 2)); /* what did not fit */
}

/* A listening socket that never accepts: the kernel completes TCP handshakes into the
 * backlog, so a gRPC client connects and then waits for HTTP/2 SETTINGS that never come, as
 * from a collector starved of CPU. Returns the fd; *port its port. */
static int silent_listener(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 8) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    *port = ntohs(a.sin_port);
    return fd;
}

/* One request to port (fail_fast as given, deadline 0.6 s); the error kind it got. */
static void one_call(int port, bool fail_fast, char *kind, size_t cap)
{
    lg_opts_t o = opts(OM_SIG_TRACES, LG_GRPC);
    o.port = port;
    o.items = 1;
    o.pool = 1;
    o.requests = 1;
    o.connections = 1;
    o.inflight = 1;
    o.timeout_s = 0.6;
    o.fail_fast = fail_fast;
    o.quiet = true;
    lg_pool_t pool;
    om_err_t err = {0};
    ASSERT_EQ_INT(lg_pool_build(&o, &pool, &err), 0);
    lg_stats_t *st = calloc(1, sizeof *st);
    ASSERT_TRUE(st != NULL);
    ASSERT_EQ_INT(lg_grpc_run(&o, &pool, st, &err), 0);
    ASSERT_EQ_UINT(st->failed, 1);
    ASSERT_EQ_UINT(st->n_err, 1);
    snprintf(kind, cap, "%s", st->err_names[0]);
    free(st);
    lg_pool_free(&pool);
}

/* The load generator's calls wait for their connection up to their deadline: before, its
 * channels gave a connection attempt 100 ms (GRPC_ARG_MIN_RECONNECT_BACKOFF_MS is also gRPC's
 * minimum connect timeout) and calls failed at once while it was down, so a collector slow to
 * send SETTINGS on a loaded machine got whole runs of UNAVAILABLE that it never answered
 * (bench/README.md, issue 14). */
static void test_grpc_waits_for_connection(void)
{
    int port = 0;
    int fd = silent_listener(&port);
    ASSERT_TRUE(fd >= 0);
    char kind[40];
    one_call(port, false, kind, sizeof kind);
    close(fd);
    ASSERT_EQ_STR(kind, "grpc_4_DEADLINE_EXCEEDED");
}

/* The start-up probe fails fast where nothing listens (the port of a closed listener). */
static void test_grpc_probe_fails_fast(void)
{
    int port = 0;
    int fd = silent_listener(&port);
    ASSERT_TRUE(fd >= 0);
    close(fd);
    char kind[40];
    uint64_t t0 = lg_now_ns();
    one_call(port, true, kind, sizeof kind);
    ASSERT_EQ_STR(kind, "grpc_14_UNAVAILABLE");
    ASSERT_TRUE(lg_now_ns() - t0 < 500 * OM_NS_PER_MS); /* before the 0.6 s deadline */
}

int main(void)
{
    OM_RUN(test_traces_shape);
    OM_RUN(test_pool_distinct_and_seeded);
    OM_RUN(test_count_matches_decoder);
    OM_RUN(test_count_rejects_malformed);
    OM_RUN(test_json_gzip_wire);
    OM_RUN(test_sink_inflates_every_framing);
    OM_RUN(test_count_rw);
    OM_RUN(test_rw_samples_per_request);
    OM_RUN(test_partial_success);
    OM_RUN(test_histogram);
    OM_RUN(test_sched);
    OM_RUN(test_errors_table);
    OM_RUN(test_grpc_waits_for_connection);
    OM_RUN(test_grpc_probe_fails_fast);
    return om_test_summary();
}
