/* batch_test.c: batches of OTLP data: protobuf decoding (limits included), reference counting,
 * append and the borrowed flag, clone and edit. */
#include <stdlib.h>

#include "om.h"
#include "om_test.h"
#include "om_testdata.h"

/* An ExportTraceServiceRequest whose one span has an attribute value nested `levels` arrays
 * deep, encoded by hand (so that no encoder limit gets in the way). */
static uint8_t *deep_request(unsigned levels, size_t *len)
{
    /* Build inside out: AnyValue{int_value=1}, then ArrayValue{values=AnyValue},
     * AnyValue{array_value=ArrayValue}... A length needs at most 5 varint bytes. */
    size_t cap = 16 + (size_t)levels * 12 + 64;
    uint8_t *buf = malloc(cap);
    size_t start = cap - 2, n;
    buf[start] = 0x18; /* AnyValue.int_value (3), varint */
    buf[start + 1] = 0x01;
    n = 2;
    for (unsigned i = 0; i < levels * 2 + 4; i++) {
        /* Alternate: ArrayValue.values (1) / AnyValue.array_value (5), then KeyValue.value (2),
         * Span.attributes (9), ScopeSpans.spans (2), ResourceSpans.scope_spans (2),
         * request.resource_spans (1). */
        uint8_t field;
        if (i < levels * 2) {
            field = (i % 2 == 0) ? 1 : 5;
        } else {
            static const uint8_t outer[] = {2, 9, 2, 2};
            field = outer[i - levels * 2];
        }
        uint8_t lenbuf[5];
        size_t ll = 0;
        size_t v = n;
        do {
            lenbuf[ll++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
            v >>= 7;
        } while (v != 0);
        start -= ll + 1;
        buf[start] = (uint8_t)(field << 3 | 2);
        memcpy(buf + start + 1, lenbuf, ll);
        n += ll + 1;
    }
    /* The outermost ResourceSpans wrapper inside the request. */
    uint8_t lenbuf[5];
    size_t ll = 0, v = n;
    do {
        lenbuf[ll++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v != 0);
    start -= ll + 1;
    buf[start] = 0x0a;
    memcpy(buf + start + 1, lenbuf, ll);
    n += ll + 1;
    memmove(buf, buf + start, n);
    *len = n;
    return buf;
}

static void test_deep_nesting_is_refused_not_crashing(void)
{
    size_t len;
    uint8_t *ok = deep_request(10, &len);
    om_batch_t *b = NULL;
    om_err_t err = {0};
    ASSERT_EQ_INT(om_batch_decode_proto(OM_SIG_TRACES, ok, len, 0, &b, &err), 0);
    ASSERT_EQ_UINT(b->items, 1);
    om_batch_release(b);
    free(ok);

    uint8_t *deep = deep_request(100000, &len);
    om_err_t err2 = {0};
    ASSERT_EQ_INT(om_batch_decode_proto(OM_SIG_TRACES, deep, len, 0, &b, &err2), OM_EINVAL);
    ASSERT_CONTAINS(err2.msg, "nested deeper");
    ASSERT_TRUE(b == NULL);
    free(deep);
}

static void test_malformed_and_too_big(void)
{
    om_batch_t *b = NULL;
    om_err_t err = {0};
    const uint8_t bad[] = {0x0a, 0xff, 0xff, 0xff, 0x0f};
    ASSERT_EQ_INT(om_batch_decode_proto(OM_SIG_LOGS, bad, sizeof bad, 0, &b, &err), OM_EINVAL);
    ASSERT_CONTAINS(err.msg, "invalid protobuf");

    om_batch_t *src = om_testdata_simple(OM_SIG_TRACES, 50, 0);
    size_t len = om_batch_proto_size(src);
    uint8_t *buf = malloc(len);
    om_batch_proto_pack(src, buf);
    om_err_t err2 = {0};
    ASSERT_EQ_INT(om_batch_decode_proto(OM_SIG_TRACES, buf, len, 512, &b, &err2), OM_ETOOBIG);
    ASSERT_EQ_INT(om_batch_decode_proto(OM_SIG_TRACES, buf, len, 0, &b, NULL), 0);
    ASSERT_EQ_UINT(b->items, 50);
    om_batch_release(b);
    om_batch_release(src);
    free(buf);
}

static void test_append_marks_shared_nodes_borrowed(void)
{
    om_batch_t *dst = om_batch_new(OM_SIG_LOGS, 0);
    om_batch_t *src =
        om_testdata_batch(OM_SIG_LOGS, &(om_testdata_shape_t){.resources = 2, .items = 3});
    om_batch_t *other_holder = om_batch_ref(src);
    ASSERT_EQ_INT(om_batch_append(dst, src), 0);
    ASSERT_EQ_UINT(dst->items, 6);
    ASSERT_EQ_UINT(dst->logs->n_resource_logs, 2);
    /* Both now point at the same nodes: neither may change them in place. */
    ASSERT_TRUE(dst->borrowed);
    ASSERT_TRUE(other_holder->borrowed);
    ASSERT_EQ_UINT(other_holder->refs, 1);
    om_batch_t *w = other_holder;
    ASSERT_EQ_INT(om_batch_edit(&w, NULL), 0);
    ASSERT_TRUE(w != other_holder || !w->borrowed);
    ASSERT_EQ_UINT(w->items, 6);
    om_batch_release(w);
    /* dst keeps src's arenas alive after src is gone. */
    ASSERT_EQ_UINT(om_batch_count_items(dst), 6);
    om_batch_release(dst);
}

static void test_append_grows_and_keeps_order(void)
{
    om_batch_t *dst = om_batch_new(OM_SIG_TRACES, 0);
    for (int i = 0; i < 40; i++) {
        ASSERT_EQ_INT(om_batch_append(dst, om_testdata_simple(OM_SIG_TRACES, 2, (uint64_t)i * 2)),
                      0);
    }
    ASSERT_EQ_UINT(dst->traces->n_resource_spans, 40);
    ASSERT_EQ_UINT(dst->items, 80);
    ASSERT_EQ_UINT(om_batch_count_items(dst), 80);
    ASSERT_TRUE(!dst->borrowed); /* exclusively owned sources: nothing shared */
    om_batch_t *copy = om_batch_clone(dst);
    ASSERT_EQ_UINT(om_batch_proto_size(copy), om_batch_proto_size(dst));
    om_batch_release(copy);
    om_batch_release(dst);
}

/* Encodes a test batch the ordinary way, as a client would send it. */
static uint8_t *encoded(om_signal_t sig, size_t n, uint64_t first, size_t *len)
{
    om_batch_t *b = om_testdata_simple(sig, n, first);
    *len = om_batch_proto_size(b);
    uint8_t *buf = malloc(*len);
    om_batch_proto_pack(b, buf);
    om_batch_release(b);
    return buf;
}

static void test_unchanged_batches_are_forwarded_as_received(void)
{
    size_t la, lb;
    uint8_t *a = encoded(OM_SIG_TRACES, 3, 0, &la);
    uint8_t *b = encoded(OM_SIG_TRACES, 2, 3, &lb);
    om_batch_t *ba = NULL, *bb = NULL;
    ASSERT_EQ_INT(om_batch_decode_proto(OM_SIG_TRACES, a, la, 0, &ba, NULL), 0);
    ASSERT_EQ_INT(om_batch_decode_proto(OM_SIG_TRACES, b, lb, 0, &bb, NULL), 0);
    ASSERT_TRUE(ba->raw_valid);
    /* Merged as the batch processor does: into a new, empty batch. */
    om_batch_t *m = om_batch_new(OM_SIG_TRACES, 0);
    ASSERT_EQ_INT(om_batch_append(m, ba), 0);
    ASSERT_EQ_INT(om_batch_append(m, bb), 0);
    ASSERT_TRUE(m->raw_valid);
    ASSERT_EQ_UINT(om_batch_proto_size(m), la + lb);
    uint8_t *out = malloc(la + lb);
    ASSERT_EQ_UINT(om_batch_proto_pack(m, out), la + lb);
    ASSERT_TRUE(memcmp(out, a, la) == 0 && memcmp(out + la, b, lb) == 0);
    /* The bytes decode to the same five spans, in order. */
    om_batch_t *back = NULL;
    ASSERT_EQ_INT(om_batch_decode_proto(OM_SIG_TRACES, out, la + lb, 0, &back, NULL), 0);
    int64_t seqs[5];
    ASSERT_EQ_UINT(om_testdata_seqs(back, seqs, 5), 5);
    for (int i = 0; i < 5; i++) {
        ASSERT_EQ_INT(seqs[i], i);
    }
    om_batch_release(back);

    /* Changing the data goes through om_batch_edit, which drops the wire form: what is sent
     * is then the changed message. */
    ASSERT_EQ_INT(om_batch_edit(&m, NULL), 0);
    ASSERT_TRUE(!m->raw_valid);
    m->traces->resource_spans[0]->scope_spans[0]->spans[0]->name = "renamed";
    size_t n = om_batch_proto_size(m);
    uint8_t *changed = malloc(n);
    om_batch_proto_pack(m, changed);
    ASSERT_EQ_INT(om_batch_decode_proto(OM_SIG_TRACES, changed, n, 0, &back, NULL), 0);
    ASSERT_EQ_INT(om_batch_decode(back, NULL), 0);
    ASSERT_EQ_STR(back->traces->resource_spans[0]->scope_spans[0]->spans[0]->name, "renamed");
    om_batch_release(back);
    free(changed);
    free(out);
    om_batch_release(m);
    free(a);
    free(b);
}

/* A request in pieces (gRPC slices) is the request their concatenation is: the same checks,
 * counts, bytes and spans, whatever the cut points; and still refused when malformed or too
 * big. */
static void test_a_request_in_parts_is_the_request_they_make(void)
{
    size_t len;
    uint8_t *whole = encoded(OM_SIG_TRACES, 7, 0, &len);
    size_t cuts[][3] = {{0, 0, 0}, {1, 2, 3}, {len / 3, len / 2, len - 1}, {0, len, len}};
    for (size_t c = 0; c < sizeof cuts / sizeof cuts[0]; c++) {
        size_t at[5] = {0, cuts[c][0], cuts[c][1], cuts[c][2], len};
        uv_buf_t parts[4];
        for (int k = 0; k < 4; k++) {
            parts[k] = uv_buf_init((char *)whole + at[k], (unsigned)(at[k + 1] - at[k]));
        }
        om_batch_t *b = NULL;
        ASSERT_EQ_INT(om_batch_decode_proto_parts(OM_SIG_TRACES, parts, 4, 0, &b, NULL), 0);
        ASSERT_EQ_UINT(b->items, 7);
        ASSERT_TRUE(b->raw_valid);
        uint8_t *out = malloc(len);
        ASSERT_EQ_UINT(om_batch_proto_pack(b, out), len);
        ASSERT_TRUE(memcmp(out, whole, len) == 0);
        int64_t seqs[7];
        ASSERT_EQ_UINT(om_testdata_seqs(b, seqs, 7), 7);
        ASSERT_EQ_INT(seqs[6], 6);
        free(out);
        om_batch_release(b);
    }
    om_err_t err = {0};
    om_batch_t *b = NULL;
    uv_buf_t cut_short[2] = {uv_buf_init((char *)whole, 10),
                             uv_buf_init((char *)whole + 10, (unsigned)(len - 11))};
    ASSERT_EQ_INT(om_batch_decode_proto_parts(OM_SIG_TRACES, cut_short, 2, 0, &b, &err), OM_EINVAL);
    ASSERT_TRUE(b == NULL);
    ASSERT_CONTAINS(err.msg, "invalid protobuf");
    uv_buf_t all = uv_buf_init((char *)whole, (unsigned)len);
    memset(&err, 0, sizeof err);
    ASSERT_EQ_INT(om_batch_decode_proto_parts(OM_SIG_TRACES, &all, 1, 256, &b, &err), OM_ETOOBIG);
    ASSERT_TRUE(b == NULL);
    ASSERT_EQ_INT(om_batch_decode_proto_parts(OM_SIG_TRACES, NULL, 0, 0, &b, NULL), 0);
    ASSERT_EQ_UINT(b->items, 0);
    om_batch_release(b);
    free(whole);
}

static void test_a_batch_without_wire_form_taints_the_merge(void)
{
    size_t la;
    uint8_t *a = encoded(OM_SIG_LOGS, 2, 0, &la);
    om_batch_t *ba = NULL, *bj = NULL;
    ASSERT_EQ_INT(om_batch_decode_proto(OM_SIG_LOGS, a, la, 0, &ba, NULL), 0);
    const char *json = "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"body\":"
                       "{\"stringValue\":\"from json\"}}]}]}]}";
    ASSERT_EQ_INT(om_batch_decode_json(OM_SIG_LOGS, json, strlen(json), 0, &bj, NULL), 0);
    ASSERT_TRUE(!bj->raw_valid);
    om_batch_t *m = om_batch_new(OM_SIG_LOGS, 0);
    ASSERT_EQ_INT(om_batch_append(m, ba), 0);
    ASSERT_EQ_INT(om_batch_append(m, bj), 0);
    ASSERT_TRUE(!m->raw_valid);
    ASSERT_EQ_UINT(m->items, 3);
    size_t n = om_batch_proto_size(m);
    ASSERT_TRUE(n > la);
    uint8_t *out = malloc(n);
    om_batch_proto_pack(m, out);
    om_batch_t *back = NULL;
    ASSERT_EQ_INT(om_batch_decode_proto(OM_SIG_LOGS, out, n, 0, &back, NULL), 0);
    ASSERT_EQ_UINT(back->items, 3);
    om_batch_release(back);
    om_batch_release(m);
    free(out);
    free(a);
}

int main(void)
{
    OM_RUN(test_deep_nesting_is_refused_not_crashing);
    OM_RUN(test_malformed_and_too_big);
    OM_RUN(test_append_marks_shared_nodes_borrowed);
    OM_RUN(test_append_grows_and_keeps_order);
    OM_RUN(test_unchanged_batches_are_forwarded_as_received);
    OM_RUN(test_a_batch_without_wire_form_taints_the_merge);
    OM_RUN(test_a_request_in_parts_is_the_request_they_make);
    return om_test_summary();
}
