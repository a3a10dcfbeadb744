/* wire_test.c: the wire scanner (src/wire.c). Every case is also unpacked with protobuf-c, which
 * the scanner must agree with. */
#include <stdlib.h>

#include "om_test.h"
#include "om_testdata.h"
#include "wire.h"

/* ---- a small protobuf writer ------------------------------------------------------------ */

typedef struct pb {
    uint8_t b[4096];
    size_t n;
} pb_t;

static void put_raw(pb_t *p, const void *d, size_t n)
{
    if (p->n + n <= sizeof p->b) {
        memcpy(p->b + p->n, d, n);
    }
    p->n += n;
}

static void put_varint(pb_t *p, uint64_t v)
{
    do {
        uint8_t byte = (uint8_t)(v & 0x7f);
        v >>= 7;
        byte |= v != 0 ? 0x80 : 0;
        put_raw(p, &byte, 1);
    } while (v != 0);
}

static void put_tag(pb_t *p, uint32_t field, unsigned wt)
{
    put_varint(p, (uint64_t)field << 3 | wt);
}

static void put_len(pb_t *p, uint32_t field, const void *d, size_t n)
{
    put_tag(p, field, 2);
    put_varint(p, n);
    put_raw(p, d, n);
}

static void put_msg(pb_t *p, uint32_t field, const pb_t *sub)
{
    put_len(p, field, sub->b, sub->n);
}

/* A traces request holding one span (given as its fields) in one resource and scope. */
static pb_t traces_with_span(const pb_t *span)
{
    pb_t ss = {0}, rs = {0}, req = {0};
    put_msg(&ss, 2, span);
    put_msg(&rs, 2, &ss);
    put_msg(&req, 1, &rs);
    return req;
}

/* A metrics request holding one metric (given as its fields). */
static pb_t metrics_with_metric(const pb_t *metric)
{
    pb_t sm = {0}, rm = {0}, req = {0};
    put_msg(&sm, 2, metric);
    put_msg(&rm, 2, &sm);
    put_msg(&req, 1, &rm);
    return req;
}

/* ---- agreement with protobuf-c ----------------------------------------------------------- */

static const ProtobufCMessageDescriptor *desc_of(om_signal_t sig)
{
    switch (sig) {
    case OM_SIG_TRACES:
        return &opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor;
    case OM_SIG_METRICS:
        return &opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__descriptor;
    default:
        return &opentelemetry__proto__collector__logs__v1__export_logs_service_request__descriptor;
    }
}

typedef struct verdict {
    int scan_rc;
    om__wire_info_t info;
    bool unpacked;            /* protobuf-c accepted it */
    size_t arena_used;        /* what unpacking took */
    om_batch_counts_t counts; /* counted from the unpacked structs */
} verdict_t;

/* The scan with the fast path for attributes gives what the general walk gives. */
static void same_as_general(om_signal_t sig, const uint8_t *data, size_t len, int rc,
                            const om__wire_info_t *info)
{
    om__wire_info_t g;
    ASSERT_EQ_INT(om__wire_scan_general(sig, data, len, &g), rc);
    ASSERT_EQ_UINT(g.resources, info->resources);
    ASSERT_EQ_UINT(g.metrics, info->metrics);
    ASSERT_EQ_UINT(g.items, info->items);
    ASSERT_EQ_UINT(g.decoded_bytes, info->decoded_bytes);
    ASSERT_EQ_INT(g.needs_unpack, info->needs_unpack);
    ASSERT_EQ_INT(g.too_deep, info->too_deep);
}

static verdict_t judge(om_signal_t sig, const uint8_t *data, size_t len)
{
    verdict_t v = {0};
    v.scan_rc = om__wire_scan(sig, data, len, &v.info);
    same_as_general(sig, data, len, v.scan_rc, &v.info);
    om_arena_t *a = om_arena_new(0);
    ProtobufCMessage *m =
        protobuf_c_message_unpack(desc_of(sig), om_arena_pb_allocator(a), len, data);
    v.unpacked = m != NULL;
    v.arena_used = om_arena_used(a);
    if (m != NULL) {
        om_batch_t view = {.signal = sig, .msg = m};
        om_batch_counts(&view, &v.counts);
    }
    om_arena_unref(a);
    return v;
}

/* The scan's verdict is protobuf-c's (unless it leaves the input to unpacking). */
#define ASSERT_AGREES(v)                                                                           \
    do {                                                                                           \
        if (!(v).info.needs_unpack) {                                                              \
            ASSERT_EQ_INT((v).scan_rc == 0, (v).unpacked);                                         \
        }                                                                                          \
    } while (0)

/* ---- tests ----------------------------------------------------------------------------------- */

static void test_counts_match_the_decoded_structs(void)
{
    om_testdata_shape_t shape = {.resources = 3, .scopes = 2, .items = 5, .metrics = 2};
    for (int i = 0; i < OM_SIG_COUNT; i++) {
        om_signal_t sig = om_signal_from_index(i);
        om_batch_t *b = om_testdata_batch(sig, &shape);
        ASSERT_TRUE(b != NULL);
        size_t len = om_batch_proto_size(b);
        uint8_t *buf = malloc(len);
        om_batch_proto_pack(b, buf);
        om_batch_counts_t want;
        om_batch_counts(b, &want);
        om_batch_release(b);
        verdict_t v = judge(sig, buf, len);
        free(buf);
        ASSERT_EQ_INT(v.scan_rc, 0);
        ASSERT_TRUE(!v.info.needs_unpack);
        ASSERT_TRUE(v.unpacked);
        ASSERT_EQ_UINT(v.info.resources, 3);
        ASSERT_EQ_UINT(v.info.items, want.items);
        ASSERT_EQ_UINT(v.info.metrics, want.metrics);
        ASSERT_EQ_UINT(v.counts.items, want.items);
        /* The estimate bounds what unpacking takes, without being wildly above it. */
        ASSERT_TRUE(v.arena_used <= v.info.decoded_bytes);
        ASSERT_TRUE(v.info.decoded_bytes <= 2 * v.arena_used);
    }
}

static void test_malformed_input_is_refused_as_protobuf_c_refuses_it(void)
{
    static const struct {
        const char *what;
        uint8_t bytes[16];
        size_t len;
    } cases[] = {
        {"a tag without field bits", {0x00}, 1},
        {"a tag without field bits, wire type 2", {0x02, 0x00}, 2},
        {"a length past the end", {0x0a, 0x05, 'a', 'b'}, 4},
        {"an unterminated varint", {0x08, 0x80}, 2},
        {"an 11-byte varint",
         {0x78, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01},
         12},
        {"a 6-byte length prefix", {0x0a, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00}, 7},
        {"a group (wire type 3)", {0x2b}, 1},
        {"wire type 7", {0x2f, 0x00}, 2},
        {"a 64-bit field cut short", {0x79, 1, 2, 3}, 4},
        {"a message field as a varint", {0x08, 0x01}, 2},
        {"a 6-byte tag", {0xf8, 0x80, 0x80, 0x80, 0x80, 0x00, 0x00}, 7},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        verdict_t v = judge(OM_SIG_TRACES, cases[i].bytes, cases[i].len);
        if (v.scan_rc != OM_EINVAL || v.unpacked) {
            fprintf(stderr, "  case: %s\n", cases[i].what);
        }
        ASSERT_EQ_INT(v.scan_rc, OM_EINVAL);
        ASSERT_TRUE(!v.unpacked);
    }
}

static void test_unknown_fields_are_accepted(void)
{
    pb_t req = {0};
    put_tag(&req, 99, 0);
    put_varint(&req, 12345);
    put_tag(&req, 100, 1);
    put_raw(&req, "12345678", 8);
    put_tag(&req, 101, 5);
    put_raw(&req, "1234", 4);
    put_len(&req, 102, "xyz", 3);
    /* A field number of zero past the first byte of the tag: protobuf-c takes it as unknown. */
    put_raw(&req, "\x80\x00\x01", 3);
    verdict_t v = judge(OM_SIG_TRACES, req.b, req.n);
    ASSERT_EQ_INT(v.scan_rc, 0);
    ASSERT_TRUE(v.unpacked);
    ASSERT_EQ_UINT(v.info.resources, 0);
    ASSERT_TRUE(v.arena_used <= v.info.decoded_bytes);
}

/* Field numbers of opentelemetry.proto.trace.v1.Span. */
enum { SPAN_NAME = 5, SPAN_KIND = 6, SPAN_START = 7, SPAN_ATTRS = 9, SPAN_FLAGS = 16 };

static void test_known_fields_must_come_in_their_wire_type(void)
{
    static const struct {
        const char *what;
        uint32_t field;
        unsigned wt;
        bool ok;
    } cases[] = {
        {"string as varint", SPAN_NAME, 0, false},
        {"string as 32-bit", SPAN_NAME, 5, false},
        {"enum as length-delimited", SPAN_KIND, 2, false},
        {"enum as 64-bit", SPAN_KIND, 1, false},
        {"fixed64 as 32-bit", SPAN_START, 5, false},
        {"fixed64 as varint", SPAN_START, 0, false},
        {"fixed32 as 64-bit", SPAN_FLAGS, 1, false},
        {"repeated message as varint", SPAN_ATTRS, 0, false},
        {"fixed64 as itself", SPAN_START, 1, true},
        {"fixed32 as itself", SPAN_FLAGS, 5, true},
        {"enum as itself", SPAN_KIND, 0, true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pb_t span = {0};
        put_tag(&span, cases[i].field, cases[i].wt);
        switch (cases[i].wt) {
        case 0:
            put_varint(&span, 1);
            break;
        case 1:
            put_raw(&span, "\1\0\0\0\0\0\0\0", 8);
            break;
        case 5:
            put_raw(&span, "\1\0\0\0", 4);
            break;
        default:
            put_varint(&span, 1);
            put_raw(&span, "x", 1);
            break;
        }
        pb_t req = traces_with_span(&span);
        verdict_t v = judge(OM_SIG_TRACES, req.b, req.n);
        if ((v.scan_rc == 0) != cases[i].ok) {
            fprintf(stderr, "  case: %s\n", cases[i].what);
        }
        ASSERT_EQ_INT(v.scan_rc == 0, cases[i].ok);
        ASSERT_AGREES(v);
        if (cases[i].ok) {
            ASSERT_EQ_UINT(v.info.items, 1);
        }
    }
}

/* Field numbers in opentelemetry.proto.metrics.v1. */
enum { METRIC_GAUGE = 5, METRIC_SUM = 7, METRIC_HISTOGRAM = 9, SUM_IS_MONOTONIC = 3 };
enum { HDP_BUCKET_COUNTS = 6, HDP_EXPLICIT_BOUNDS = 7 };

static pb_t histogram_metric(const pb_t *point)
{
    pb_t h = {0}, m = {0};
    put_msg(&h, 1, point);
    put_len(&m, 1, "h", 1);
    put_msg(&m, METRIC_HISTOGRAM, &h);
    return m;
}

static void test_packed_and_unpacked_repeated_scalars(void)
{
    static const struct {
        const char *what;
        uint32_t field;
        size_t packed_len; /* 0: two unpacked 64-bit values */
        bool ok;
    } cases[] = {
        {"packed fixed64, whole", HDP_BUCKET_COUNTS, 16, true},
        {"packed fixed64, 12 bytes", HDP_BUCKET_COUNTS, 12, false},
        {"packed double, 7 bytes", HDP_EXPLICIT_BOUNDS, 7, false},
        {"packed double, empty", HDP_EXPLICIT_BOUNDS, 0, true},
        {"unpacked fixed64", HDP_BUCKET_COUNTS, SIZE_MAX, true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pb_t point = {0};
        if (cases[i].packed_len == SIZE_MAX) {
            for (int k = 0; k < 2; k++) {
                put_tag(&point, cases[i].field, 1);
                put_raw(&point, "\2\0\0\0\0\0\0\0", 8);
            }
        } else {
            static const uint8_t zeros[16];
            put_len(&point, cases[i].field, zeros, cases[i].packed_len);
        }
        pb_t metric = histogram_metric(&point);
        pb_t req = metrics_with_metric(&metric);
        verdict_t v = judge(OM_SIG_METRICS, req.b, req.n);
        if ((v.scan_rc == 0) != cases[i].ok) {
            fprintf(stderr, "  case: %s\n", cases[i].what);
        }
        ASSERT_EQ_INT(v.scan_rc == 0, cases[i].ok);
        ASSERT_AGREES(v);
        if (cases[i].ok) {
            ASSERT_EQ_UINT(v.info.metrics, 1);
            ASSERT_EQ_UINT(v.info.items, 1);
            ASSERT_TRUE(v.arena_used <= v.info.decoded_bytes);
        }
    }
}

/* protobuf-c reads a singular bool from whatever wire type it came in. */
static void test_a_singular_bool_takes_any_wire_type(void)
{
    for (unsigned wt = 0; wt <= 5; wt++) {
        if (wt == 3 || wt == 4) {
            continue;
        }
        pb_t sum = {0}, metric = {0};
        put_tag(&sum, SUM_IS_MONOTONIC, wt);
        if (wt == 0) {
            put_varint(&sum, 1);
        } else if (wt == 1) {
            put_raw(&sum, "\1\0\0\0\0\0\0\0", 8);
        } else if (wt == 5) {
            put_raw(&sum, "\1\0\0\0", 4);
        } else {
            put_varint(&sum, 2);
            put_raw(&sum, "\1\1", 2);
        }
        put_msg(&metric, METRIC_SUM, &sum);
        pb_t req = metrics_with_metric(&metric);
        verdict_t v = judge(OM_SIG_METRICS, req.b, req.n);
        ASSERT_EQ_INT(v.scan_rc, 0);
        ASSERT_TRUE(v.unpacked);
    }
}

/* Inputs whose decoding only protobuf-c can tell are left to it: flagged, and what
 * om_batch_decode_proto() then answers is protobuf-c's answer. */
static void test_fields_given_twice_are_left_to_protobuf_c(void)
{
    /* Metric.data given twice: the last member of the oneof wins, so only the sum's two
     * points count. */
    pb_t gauge = {0}, sum = {0}, point = {0}, metric = {0};
    put_tag(&point, 4, 1);
    put_raw(&point, "\0\0\0\0\0\0\0\0", 8);
    for (int k = 0; k < 3; k++) {
        put_msg(&gauge, 1, &point);
    }
    for (int k = 0; k < 2; k++) {
        put_msg(&sum, 1, &point);
    }
    put_msg(&metric, METRIC_GAUGE, &gauge);
    put_msg(&metric, METRIC_SUM, &sum);
    pb_t req = metrics_with_metric(&metric);
    verdict_t v = judge(OM_SIG_METRICS, req.b, req.n);
    ASSERT_EQ_INT(v.scan_rc, 0);
    ASSERT_TRUE(v.info.needs_unpack);
    ASSERT_TRUE(v.unpacked);
    ASSERT_EQ_UINT(v.counts.items, 2);
    om_batch_t *b = NULL;
    ASSERT_EQ_INT(om_batch_decode_proto(OM_SIG_METRICS, req.b, req.n, 0, &b, NULL), 0);
    ASSERT_EQ_UINT(b->items, 2);
    ASSERT_TRUE(b->msg != NULL && b->raw_valid);
    om_batch_release(b);

    /* KeyValue.value given twice, both empty: protobuf-c merges them and fails doing so. */
    pb_t kv = {0}, span = {0};
    put_len(&kv, 1, "k", 1);
    put_len(&kv, 2, "", 0);
    put_len(&kv, 2, "", 0);
    put_msg(&span, SPAN_ATTRS, &kv);
    pb_t treq = traces_with_span(&span);
    v = judge(OM_SIG_TRACES, treq.b, treq.n);
    ASSERT_EQ_INT(v.scan_rc, 0);
    ASSERT_TRUE(v.info.needs_unpack);
    ASSERT_TRUE(!v.unpacked);
    om_err_t err = {0};
    ASSERT_EQ_INT(om_batch_decode_proto(OM_SIG_TRACES, treq.b, treq.n, 0, &b, &err), OM_EINVAL);
    ASSERT_CONTAINS(err.msg, "invalid protobuf");

    /* The same with a value in the first: merged, accepted. */
    pb_t kv2 = {0}, val = {0}, span2 = {0};
    put_len(&val, 1, "v", 1);
    put_len(&kv2, 1, "k", 1);
    put_msg(&kv2, 2, &val);
    put_len(&kv2, 2, "", 0);
    put_msg(&span2, SPAN_ATTRS, &kv2);
    treq = traces_with_span(&span2);
    v = judge(OM_SIG_TRACES, treq.b, treq.n);
    ASSERT_TRUE(v.info.needs_unpack);
    ASSERT_TRUE(v.unpacked);
    ASSERT_EQ_INT(om_batch_decode_proto(OM_SIG_TRACES, treq.b, treq.n, 0, &b, NULL), 0);
    ASSERT_EQ_UINT(b->items, 1);
    om_batch_release(b);
}

/* Attributes take a fast path (src/wire.c scan_keyvalue) when they are a key then a value of
 * one string, bool, int, double or bytes; every other form goes the general way. Each form
 * here, well formed or not, gets protobuf-c's verdict and the general walk's counts (judge). */
static void test_attributes_fast_and_general_forms(void)
{
    static const struct {
        const char *what;
        uint8_t bytes[24];
        size_t len;
        bool ok;
    } kvs[] = {
        {"string", {0x0a, 1, 'k', 0x12, 3, 0x0a, 1, 'v'}, 8, true},
        {"bytes", {0x0a, 1, 'k', 0x12, 4, 0x3a, 2, 0, 1}, 9, true},
        {"bool", {0x0a, 1, 'k', 0x12, 2, 0x10, 1}, 7, true},
        {"int", {0x0a, 1, 'k', 0x12, 4, 0x18, 0x80, 0x80, 0x01}, 9, true},
        {"double", {0x0a, 1, 'k', 0x12, 9, 0x21, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f}, 14, true},
        {"empty value", {0x0a, 1, 'k', 0x12, 0}, 5, true},
        {"empty key", {0x0a, 0, 0x12, 2, 0x10, 1}, 6, true},
        {"key only", {0x0a, 1, 'k'}, 3, true},
        {"value first", {0x12, 2, 0x10, 1, 0x0a, 1, 'k'}, 7, true},
        {"value given twice", {0x0a, 1, 'k', 0x12, 2, 0x10, 1, 0x12, 2, 0x18, 2}, 11, true},
        {"an unknown field after", {0x0a, 1, 'k', 0x12, 2, 0x10, 1, 0x78, 1}, 9, true},
        {"two members of the oneof", {0x0a, 1, 'k', 0x12, 4, 0x10, 1, 0x18, 2}, 9, true},
        {"an array value", {0x0a, 1, 'k', 0x12, 4, 0x2a, 2, 0x0a, 0}, 9, true},
        {"an empty kvlist value", {0x0a, 1, 'k', 0x12, 2, 0x32, 0}, 7, true},
        {"a double cut short", {0x0a, 1, 'k', 0x12, 5, 0x21, 0, 0, 0, 0}, 10, false},
        {"an int cut short", {0x0a, 1, 'k', 0x12, 2, 0x18, 0x80}, 7, false},
        {"a string past the value", {0x0a, 1, 'k', 0x12, 3, 0x0a, 5, 'v'}, 8, false},
        {"a value past the attribute", {0x0a, 1, 'k', 0x12, 9, 0x10, 1}, 7, false},
        {"a key past the attribute", {0x0a, 9, 'k'}, 3, false},
        {"a bool as 64 bits", {0x0a, 1, 'k', 0x12, 9, 0x11, 1, 0, 0, 0, 0, 0, 0, 0}, 14, true},
        {"an int as a string", {0x0a, 1, 'k', 0x12, 3, 0x1a, 1, '1'}, 8, false},
        {"a string as a varint", {0x0a, 1, 'k', 0x12, 2, 0x08, 1}, 7, false},
    };
    for (size_t i = 0; i < sizeof kvs / sizeof kvs[0]; i++) {
        pb_t kv = {0}, span = {0};
        put_raw(&kv, kvs[i].bytes, kvs[i].len);
        put_msg(&span, SPAN_ATTRS, &kv);
        put_msg(&span, SPAN_ATTRS, &kv); /* twice: the second after the fast path's first */
        pb_t req = traces_with_span(&span);
        verdict_t v = judge(OM_SIG_TRACES, req.b, req.n);
        if ((v.scan_rc == 0) != kvs[i].ok) {
            fprintf(stderr, "  case: %s\n", kvs[i].what);
        }
        ASSERT_EQ_INT(v.scan_rc == 0, kvs[i].ok);
        ASSERT_AGREES(v);
        if (v.scan_rc == 0 && v.unpacked) {
            ASSERT_TRUE(v.arena_used <= v.info.decoded_bytes);
        }
    }
}

static void test_an_ordinary_request_is_not_left_to_unpacking(void)
{
    om_batch_t *b = om_testdata_simple(OM_SIG_LOGS, 4, 0);
    size_t len = om_batch_proto_size(b);
    uint8_t *buf = malloc(len);
    om_batch_proto_pack(b, buf);
    om_batch_release(b);
    om_batch_t *got = NULL;
    ASSERT_EQ_INT(om_batch_decode_proto(OM_SIG_LOGS, buf, len, 0, &got, NULL), 0);
    free(buf);
    ASSERT_TRUE(got->msg == NULL);
    ASSERT_TRUE(got->raw_valid);
    ASSERT_EQ_UINT(got->items, 4);
    ASSERT_EQ_INT(om_batch_decode(got, NULL), 0);
    ASSERT_TRUE(got->msg != NULL);
    ASSERT_EQ_UINT(om_batch_count_items(got), 4);
    om_batch_release(got);
}

int main(void)
{
    OM_RUN(test_counts_match_the_decoded_structs);
    OM_RUN(test_malformed_input_is_refused_as_protobuf_c_refuses_it);
    OM_RUN(test_unknown_fields_are_accepted);
    OM_RUN(test_known_fields_must_come_in_their_wire_type);
    OM_RUN(test_packed_and_unpacked_repeated_scalars);
    OM_RUN(test_a_singular_bool_takes_any_wire_type);
    OM_RUN(test_fields_given_twice_are_left_to_protobuf_c);
    OM_RUN(test_an_ordinary_request_is_not_left_to_unpacking);
    OM_RUN(test_attributes_fast_and_general_forms);
    return om_test_summary();
}
