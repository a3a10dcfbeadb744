/* wire_walk_test.c: om_batch_wire_walk against om_batch_walk: the same verdicts on the same
 * batch must give the same result (items, emptied containers removed, containers empty
 * before kept, counts), from the wire bytes and without decoding; an untouched batch stays
 * as it was; a shared batch is not changed for its other holders; and om_pb_next reads fields
 * and refuses what is no field. */
#include <stdlib.h>
#include <string.h>

#include "om.h"
#include "om_test.h"
#include "om_testdata.h"

/* Whether an item's name (Span field 5) or string body (LogRecord field 5, AnyValue field 1),
 * read from its bytes, starts with 'x': those are dropped. */
static bool wire_name_starts_with_x(const om_wire_item_t *it, bool log)
{
    const uint8_t *p = it->item, *end = it->item + it->item_len;
    om_pb_field_t f;
    bool x = false;
    while (om_pb_next(&p, end, &f) == 1) {
        if (!log && f.number == 5 && f.wire_type == OM_PB_LEN) {
            x = f.len > 0 && f.data[0] == 'x';
        }
        if (log && f.number == 5 && f.wire_type == OM_PB_LEN) {
            /* body: AnyValue { string_value = 1 } */
            const uint8_t *q = f.data, *qe = f.data + f.len;
            om_pb_field_t g;
            while (om_pb_next(&q, qe, &g) == 1) {
                if (g.number == 1 && g.wire_type == OM_PB_LEN) {
                    x = g.len > 0 && g.data[0] == 'x';
                }
            }
        }
    }
    return x;
}

static int wire_cb(const om_wire_item_t *it, void *arg)
{
    return wire_name_starts_with_x(it, arg != NULL) ? OM_DROP : OM_KEEP;
}

static int decoded_cb(om_item_t *it, void *arg)
{
    (void)arg;
    const om_anyvalue_t *body = it->log != NULL ? it->log->body : NULL;
    const char *name = it->span != NULL                                         ? it->span->name
                       : body != NULL && body->value_case == OM_ANYVALUE_STRING ? body->string_value
                                                                                : NULL;
    return name != NULL && name[0] == 'x' ? OM_DROP : OM_KEEP;
}

/* Both walks on the same data; the results must describe the same and count the same. */
static void check_same(const char *text)
{
    om_batch_t *a = om_testdata_wire(om_testdata_otlp("%s", text));
    om_batch_t *b = om_testdata_wire(om_testdata_otlp("%s", text));
    ASSERT_TRUE(a != NULL && b != NULL && a->raw_valid && a->msg == NULL);
    bool logs = a->signal == OM_SIG_LOGS;
    om_level_t level = logs ? OM_LEVEL_LOG : OM_LEVEL_SPAN;
    om_batch_t *before = a;
    int na = om_batch_wire_walk(&a, level, wire_cb, logs ? (void *)1 : NULL, NULL);
    int nb = om_batch_walk(&b, level, decoded_cb, NULL, NULL);
    ASSERT_EQ_INT(na, nb);
    ASSERT_TRUE(na > 0 || a == before); /* nothing dropped: the very same batch */
    ASSERT_TRUE(a->raw_valid && a->msg == NULL);
    om_batch_counts_t ca, cb;
    om_batch_counts(a, &ca); /* from the wire: not decoded yet */
    om_batch_counts(b, &cb);
    ASSERT_EQ_UINT(ca.resources, cb.resources);
    ASSERT_EQ_UINT(ca.items, cb.items);
    ASSERT_EQ_UINT(a->items, b->items);
    char da[4096];
    snprintf(da, sizeof da, "%s", om_testdata_describe(a));
    ASSERT_EQ_STR(da, om_testdata_describe(b));
    om_batch_counts(a, &ca); /* decoded now: the structs agree with the wire counts */
    ASSERT_EQ_UINT(ca.items, cb.items);
    om_batch_release(a);
    om_batch_release(b);
}

static void test_same_as_the_decoded_walk(void)
{
    check_same("resource service.name=a; scope s; span keep; span x1; span keep2");
    check_same("resource service.name=a; scope s; span x1; span x2");        /* all */
    check_same("resource service.name=a; scope s; span x;"                   /* scope */
               "scope t; span y; resource service.name=b; scope u; span x"); /* and res */
    check_same("resource service.name=a; scope empty;"                       /* empty */
               "scope s; span x; resource service.name=b");                  /* stay */
    check_same("span x; span y; event x; span xx");                          /* no res */
    check_same("resource service.name=a; scope s; span keep");               /* none */
    check_same("logs; resource service.name=l; scope s; log xa; log b; log 42;"
               "resource service.name=m; log xb");
}

/* Appended batches are several segments: the walk reads each. */
static void test_appended_segments(void)
{
    om_batch_t *a = om_testdata_wire(om_testdata_otlp("resource service.name=a; span x; span k"));
    om_batch_t *b = om_testdata_wire(om_testdata_otlp("resource service.name=b; span m; span x"));
    ASSERT_EQ_INT(om_batch_append(a, b), 0);
    ASSERT_TRUE(a->raw_valid && a->n_raw == 2);
    ASSERT_EQ_INT(om_batch_wire_walk(&a, OM_LEVEL_SPAN, wire_cb, NULL, NULL), 2);
    ASSERT_EQ_STR(om_testdata_describe(a), "(a [-: k]) (b [-: m])");
    om_batch_release(a);
}

static void test_shared_batches_keep_theirs(void)
{
    om_batch_t *b = om_testdata_wire(om_testdata_otlp("resource service.name=a; span x; span k"));
    om_batch_t *other = om_batch_ref(b);
    ASSERT_EQ_INT(om_batch_wire_walk(&b, OM_LEVEL_SPAN, wire_cb, NULL, NULL), 1);
    ASSERT_TRUE(b != other);
    ASSERT_EQ_STR(om_testdata_describe(b), "(a [-: k])");
    ASSERT_EQ_STR(om_testdata_describe(other), "(a [-: x k])");
    om_batch_release(b);
    om_batch_release(other);
}

static int stop_cb(const om_wire_item_t *it, void *arg)
{
    int *n = arg;
    (void)it;
    return ++*n == 2 ? OM_ENOTSUP : OM_DROP;
}

static void test_refusals_change_nothing(void)
{
    om_batch_t *b = om_testdata_wire(om_testdata_otlp("span a; span b; span c"));
    om_batch_t *before = b;
    int n = 0;
    ASSERT_EQ_INT(om_batch_wire_walk(&b, OM_LEVEL_SPAN, stop_cb, &n, NULL), OM_ENOTSUP);
    ASSERT_TRUE(b == before && b->raw_valid && b->items == 3);
    om_err_t err = {0};
    ASSERT_EQ_INT(om_batch_wire_walk(&b, OM_LEVEL_LOG, wire_cb, NULL, &err), OM_ENOTSUP);
    ASSERT_CONTAINS(err.msg, "spans and log records");
    om_batch_release(b);
    /* A batch built in memory has no wire bytes. */
    b = om_testdata_otlp("span a");
    err = (om_err_t){0};
    ASSERT_EQ_INT(om_batch_wire_walk(&b, OM_LEVEL_SPAN, wire_cb, NULL, &err), OM_ENOTSUP);
    ASSERT_CONTAINS(err.msg, "no wire bytes");
    om_batch_release(b);
}

static void test_allocation_failures(void)
{
    bool saw_success = false;
    for (unsigned long n = 1; n < 50 && !saw_success; n++) {
        om_batch_t *b = om_testdata_wire(
            om_testdata_otlp("resource service.name=a; span x; span k; span x2; span k2"));
        om_alloc_fail_after(n);
        int rc = om_batch_wire_walk(&b, OM_LEVEL_SPAN, wire_cb, NULL, NULL);
        om_alloc_fail_after(0);
        ASSERT_TRUE(rc == 2 || rc == OM_ENOMEM);
        ASSERT_EQ_STR(om_testdata_describe(b), rc == 2 ? "(a [-: k k2])" : "(a [-: x k x2 k2])");
        saw_success = rc == 2;
        om_batch_release(b);
    }
    ASSERT_TRUE(saw_success);
}

static void test_pb_next(void)
{
    /* field 1 varint 150, field 2 "ab", field 3 fixed64 1, field 4 fixed32 2 */
    static const uint8_t msg[] = {0x08, 0x96, 0x01, 0x12, 0x02, 'a',  'b', 0x19, 1, 0, 0,
                                  0,    0,    0,    0,    0,    0x25, 2,   0,    0, 0};
    const uint8_t *p = msg, *end = msg + sizeof msg;
    om_pb_field_t f;
    ASSERT_EQ_INT(om_pb_next(&p, end, &f), 1);
    ASSERT_TRUE(f.number == 1 && f.wire_type == OM_PB_VARINT && f.value == 150);
    ASSERT_TRUE(f.data == msg + 1 && f.len == 2); /* a varint's bytes as written */
    ASSERT_EQ_INT(om_pb_next(&p, end, &f), 1);
    ASSERT_TRUE(f.number == 2 && f.wire_type == OM_PB_LEN && f.len == 2 && f.data[1] == 'b');
    ASSERT_EQ_INT(om_pb_next(&p, end, &f), 1);
    ASSERT_TRUE(f.number == 3 && f.wire_type == OM_PB_FIXED64 && f.value == 1);
    ASSERT_TRUE(f.data == msg + 8 && f.len == 8);
    ASSERT_EQ_INT(om_pb_next(&p, end, &f), 1);
    ASSERT_TRUE(f.number == 4 && f.wire_type == OM_PB_FIXED32 && f.value == 2);
    ASSERT_TRUE(f.data == msg + 17 && f.len == 4);
    ASSERT_EQ_INT(om_pb_next(&p, end, &f), 0);
    static const uint8_t bad[][3] = {
        {0x12, 0x05, 'a'},  /* payload past the end */
        {0x08, 0x80, 0x80}, /* truncated varint */
        {0x00, 0x01, 0x00}, /* field 0 */
        {0x0b, 0x00, 0x00}, /* a group */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        p = bad[i];
        ASSERT_EQ_INT(om_pb_next(&p, bad[i] + 3, &f), OM_EINVAL);
    }
    /* A two-byte tag spelling field 0 is a field to protobuf-c (an unknown one): read it, as
     * the wire scan accepts the request that holds it (found by the ottl_wire fuzzer). */
    static const uint8_t zero[] = {0x80, 0x00, 0x05};
    p = zero;
    ASSERT_EQ_INT(om_pb_next(&p, zero + sizeof zero, &f), 1);
    ASSERT_TRUE(f.number == 0 && f.wire_type == OM_PB_VARINT && f.value == 5 && p == zero + 3);
}

/* om_pb_next reads one-byte tags with a one-byte length or varint inline; every answer is
 * om__pb_next_general's, at every offset of real requests and of random bytes biased toward
 * the short forms (and their edges: lengths at the end, tags 0x00-0x07, continuation bytes). */
static bool same_field(const uint8_t *p, const uint8_t *end)
{
    const uint8_t *a = p, *b = p;
    om_pb_field_t fa, fb;
    memset(&fa, 0xa5, sizeof fa);
    memset(&fb, 0xa5, sizeof fb);
    int ra = om_pb_next(&a, end, &fa), rb = om__pb_next_general(&b, end, &fb);
    if (ra != rb) {
        return false;
    }
    return ra != 1 || (a == b && fa.number == fb.number && fa.wire_type == fb.wire_type &&
                       fa.value == fb.value && fa.data == fb.data && fa.len == fb.len);
}

static void test_pb_next_inline_is_general(void)
{
    for (int s = 0; s < OM_SIG_COUNT; s++) {
        om_batch_t *b = om_testdata_simple(om_signal_from_index(s), 5, 0);
        size_t len = om_batch_proto_size(b);
        uint8_t *buf = malloc(len);
        om_batch_proto_pack(b, buf);
        om_batch_release(b);
        for (size_t at = 0; at <= len; at++) {
            for (size_t cut = at; cut <= len && cut <= at + 4; cut++) {
                ASSERT_TRUE(same_field(buf + at, buf + cut));
            }
            ASSERT_TRUE(same_field(buf + at, buf + len));
        }
        free(buf);
    }
    uint64_t rng = 42;
    uint8_t r[64];
    for (int i = 0; i < 20000; i++) {
        for (size_t k = 0; k < sizeof r; k++) {
            rng = rng * 6364136223846793005u + 1442695040888963407u;
            uint8_t x = (uint8_t)(rng >> 56), y = (uint8_t)(rng >> 48);
            switch (y % 4) {
            case 0: /* a one-byte tag of any wire type */
                r[k] = (uint8_t)(x & 0x7f);
                break;
            case 1: /* a short length or varint */
                r[k] = (uint8_t)(x % 70);
                break;
            case 2: /* a byte that continues a varint: two-byte lengths */
                r[k] = (uint8_t)(0x80 | (x & 3));
                break;
            default:
                r[k] = x;
                break;
            }
        }
        size_t n = (size_t)(rng >> 20) % sizeof r;
        for (size_t at = 0; at <= n; at++) {
            ASSERT_TRUE(same_field(r + at, r + n));
        }
    }
}

/* The writers' helpers: om_pb_varint_len is the size om_pb_put_varint writes, and what it
 * writes reads back, at every power of two and either side of it (the length's edges are at
 * 7-bit boundaries); 64-bit values go out and come back in little-endian order. */
static void test_varint_and_le64_helpers(void)
{
    for (int k = 0; k < 64; k++) {
        uint64_t vs[] = {(uint64_t)1 << k, ((uint64_t)1 << k) - 1, ((uint64_t)1 << k) + 1};
        for (size_t i = 0; i < 3; i++) {
            uint8_t buf[12] = {0x08}; /* field 1, varint */
            uint8_t *end = om_pb_put_varint(buf + 1, vs[i]);
            size_t want = 1;
            for (uint64_t v = vs[i]; v >= 0x80; v >>= 7) {
                want++;
            }
            ASSERT_EQ_UINT(om_pb_varint_len(vs[i]), want);
            ASSERT_EQ_UINT((size_t)(end - buf - 1), want);
            const uint8_t *p = buf;
            om_pb_field_t f;
            ASSERT_EQ_INT(om_pb_next(&p, end, &f), 1);
            ASSERT_TRUE(f.value == vs[i] && p == end);
        }
    }
    ASSERT_EQ_UINT(om_pb_varint_len(UINT64_MAX), 10);
    uint8_t b[9] = {0};
    ASSERT_TRUE(om_le64_store(b + 1, 0x0102030405060708u) == b + 9);
    static const uint8_t le[] = {0, 8, 7, 6, 5, 4, 3, 2, 1};
    ASSERT_TRUE(memcmp(b, le, sizeof le) == 0);
    ASSERT_TRUE(om_le64_load(le + 1) == 0x0102030405060708u);
}

/* A request with such a field at its top level walks as the decoded request does. */
static void test_field_zero_is_skipped(void)
{
    om_batch_t *src = om_testdata_otlp("resource service.name=a; span x; span k");
    size_t n = om_batch_proto_size(src);
    uint8_t *req = malloc(n + 3);
    ASSERT_TRUE(req != NULL);
    om_batch_proto_pack(src, req);
    memcpy(req + n, "\x80\x00\x07", 3); /* field 0, varint 7 */
    om_batch_t *b = NULL;
    ASSERT_EQ_INT(om_batch_decode_proto(OM_SIG_TRACES, req, n + 3, 0, &b, NULL), 0);
    ASSERT_TRUE(b->raw_valid && b->msg == NULL);
    ASSERT_EQ_INT(om_batch_wire_walk(&b, OM_LEVEL_SPAN, wire_cb, NULL, NULL), 1);
    ASSERT_EQ_STR(om_testdata_describe(b), "(a [-: k])");
    om_batch_release(b);
    om_batch_release(src);
    free(req);
}

int main(void)
{
    OM_RUN(test_same_as_the_decoded_walk);
    OM_RUN(test_appended_segments);
    OM_RUN(test_shared_batches_keep_theirs);
    OM_RUN(test_refusals_change_nothing);
    OM_RUN(test_allocation_failures);
    OM_RUN(test_pb_next);
    OM_RUN(test_pb_next_inline_is_general);
    OM_RUN(test_varint_and_le64_helpers);
    OM_RUN(test_field_zero_is_skipped);
    return om_test_summary();
}
