/* lg_test.c: unit tests of the load generator's pieces: the request pool's shape, the wire
 * item counter against the core's decoder, response parsing, the histogram and pacing. The
 * clients and the sink run end to end in `bench/run --smoke` (meson test --suite bench). */
#include <stdlib.h>
#include <string.h>

#include "lg.h"
#include "om_test.h"

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

int main(void)
{
    OM_RUN(test_traces_shape);
    OM_RUN(test_pool_distinct_and_seeded);
    OM_RUN(test_count_matches_decoder);
    OM_RUN(test_count_rejects_malformed);
    OM_RUN(test_json_gzip_wire);
    OM_RUN(test_partial_success);
    OM_RUN(test_histogram);
    OM_RUN(test_sched);
    OM_RUN(test_errors_table);
    return om_test_summary();
}
