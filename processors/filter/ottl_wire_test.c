/* ottl_wire_test.c: the filter's wire evaluator held to its decoded one (differential) on
 * generated requests and conditions: spans and log records written field by field with what
 * clients may send and protobuf-c decodes in its own way (fields given twice, out of order,
 * unknown fields, non-minimal varints, negative and 64-bit enums, NUL bytes in strings, ids
 * of odd lengths, attribute keys given twice, AnyValues of every kind, several oneof members,
 * absent resources and scopes), and random conditions over every path the wire reader knows,
 * with the operators and functions of the subset. Every answer from the wire must be the
 * decoded one (error messages included) or OM_ENOTSUP; the drops both ways must encode to the
 * same request (ottl_wire_diff.c, which the fuzz target ottl_wire_fuzz.c uses too). Then the
 * condition table's span and log cases run on the wire in ottl_test.c; the processor's use of
 * both paths is in filter_test.c. */
#include <stdlib.h>
#include <string.h>

#include "om_test.h"
#include "ottl_wire_diff.h"

/* ---- a deterministic generator ------------------------------------------------------------ */

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint64_t rnd(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

static size_t pick(size_t n)
{
    return (size_t)(rnd() % n);
}

static bool chance(unsigned percent)
{
    return pick(100) < percent;
}

/* ---- protobuf writing --------------------------------------------------------------------- */

typedef struct buf {
    uint8_t *p;
    size_t n, cap;
} buf_t;

static void put(buf_t *b, const void *data, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        ASSERT_TRUE(b->p != NULL);
    }
    if (n > 0) {
        memcpy(b->p + b->n, data, n);
    }
    b->n += n;
}

static void put_varint(buf_t *b, uint64_t v)
{
    uint8_t tmp[10];
    size_t n = 0;
    do {
        tmp[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v != 0);
    put(b, tmp, n);
}

/* A varint with needless continuation bytes (still valid protobuf). */
static void put_varint_long(buf_t *b, uint64_t v)
{
    uint8_t tmp[10];
    size_t n = 0;
    while (v > 0x7f) {
        tmp[n++] = (uint8_t)((v & 0x7f) | 0x80);
        v >>= 7;
    }
    if (n < 8) {
        tmp[n++] = (uint8_t)(v | 0x80);
        tmp[n++] = 0;
    } else {
        tmp[n++] = (uint8_t)v;
    }
    put(b, tmp, n);
}

static void tag(buf_t *b, uint32_t num, unsigned wt)
{
    put_varint(b, (uint64_t)num << 3 | wt);
}

static void f_varint(buf_t *b, uint32_t num, uint64_t v)
{
    tag(b, num, OM_PB_VARINT);
    if (chance(15)) {
        put_varint_long(b, v);
    } else {
        put_varint(b, v);
    }
}

static void f_fixed(buf_t *b, uint32_t num, uint64_t v, size_t width)
{
    tag(b, num, width == 8 ? OM_PB_FIXED64 : OM_PB_FIXED32);
    uint8_t tmp[8];
    for (size_t i = 0; i < width; i++) {
        tmp[i] = (uint8_t)(v >> (8 * i));
    }
    put(b, tmp, width);
}

static void f_bytes(buf_t *b, uint32_t num, const void *data, size_t n)
{
    tag(b, num, OM_PB_LEN);
    put_varint(b, n);
    put(b, data, n);
}

/* A message field: child's bytes, child freed. */
static void f_msg(buf_t *b, uint32_t num, buf_t *child)
{
    f_bytes(b, num, child->p, child->n);
    free(child->p);
    *child = (buf_t){0};
}

/* ---- the pools values come from ----------------------------------------------------------- */

typedef struct str {
    const char *p;
    size_t n;
} str_t;

#define S(lit)                                                                                     \
    {                                                                                              \
        lit, sizeof lit - 1                                                                        \
    }

/* Strings the conditions compare with, and some they cannot meet. */
static const str_t strs[] = {S(""),      S("a"),        S("GET /health"), S("/health"),
                             S("x\0y"),  S("checkout"), S("ab"),          S("password=1"),
                             S("ERROR"), S("1.5"),      S("42"),          S("true"),
                             S("héllo"), S("0102"),     S("k"),           S("a\0")};
static const char *const keys[] = {"k", "n", "http.route", "service.name", ""};
static const int64_t ints[] = {0, 1, 2, 3, 5, 9, 42, -1, -42, 500, 1000000, INT64_MAX, INT64_MIN};
static const double dbls[] = {0.0, -0.0, 1.5, -2.25, 42.0, 1e300, 0.1};

static str_t any_str(void)
{
    return strs[pick(sizeof strs / sizeof strs[0])];
}

static void f_str(buf_t *b, uint32_t num)
{
    str_t s = any_str();
    f_bytes(b, num, s.p, s.n);
}

/* An AnyValue: a scalar mostly, sometimes a list or map (only decoding reads those), an empty
 * one, or several oneof members (the last one counts). */
static void any_value(buf_t *b, int depth)
{
    size_t members = chance(1) ? 2 + pick(2) : chance(5) ? 0 : 1;
    for (size_t m = 0; m < members; m++) {
        switch (pick(depth > 0 ? 5 : 7)) {
        case 0:
            f_str(b, 1);
            break;
        case 1:
            f_varint(b, 2, chance(10) ? 2 + pick(300) : pick(2));
            break;
        case 2:
            f_varint(b, 3, (uint64_t)ints[pick(sizeof ints / sizeof ints[0])]);
            break;
        case 3: {
            double d = dbls[pick(sizeof dbls / sizeof dbls[0])];
            uint64_t bits;
            memcpy(&bits, &d, sizeof bits);
            f_fixed(b, 4, bits, 8);
            break;
        }
        case 4: {
            static const uint8_t bytes[] = {0x00, 0x01, 0x02, 0xff};
            f_bytes(b, 7, bytes, pick(sizeof bytes + 1));
            break;
        }
        case 5: { /* ArrayValue { repeated AnyValue values = 1 } */
            buf_t arr = {0};
            for (size_t i = pick(3); i > 0; i--) {
                buf_t v = {0};
                any_value(&v, depth + 1);
                f_msg(&arr, 1, &v);
            }
            f_msg(b, 5, &arr);
            break;
        }
        default: { /* KeyValueList { repeated KeyValue values = 1 } */
            buf_t kvl = {0}, kv = {0}, v = {0};
            f_bytes(&kv, 1, "in", 2);
            any_value(&v, depth + 1);
            f_msg(&kv, 2, &v);
            f_msg(&kvl, 1, &kv);
            f_msg(b, 6, &kvl);
            break;
        }
        }
    }
}

/* KeyValue entries (field num of b): keys from the pool, sometimes twice in one map. */
static void attrs(buf_t *b, uint32_t num)
{
    for (size_t i = pick(5); i > 0; i--) {
        buf_t kv = {0};
        const char *k = keys[pick(sizeof keys / sizeof keys[0])];
        if (chance(5)) {
            f_bytes(&kv, 1, "zz", 2); /* a key given twice: the last counts */
        }
        if (chance(3)) {
            f_bytes(&kv, 1, "k\0x", 3); /* a key with a NUL in it */
        } else {
            f_bytes(&kv, 1, k, strlen(k));
        }
        if (!chance(5)) {
            buf_t v = {0};
            any_value(&v, 0);
            f_msg(&kv, 2, &v);
        }
        f_msg(b, num, &kv);
    }
}

/* An id of 16 or 8 bytes, usually; sometimes empty, all zero or of another length. */
static void f_id(buf_t *b, uint32_t num, size_t width)
{
    if (chance(15)) {
        return;
    }
    uint8_t id[16] = {0};
    size_t n = chance(10) ? pick(18) : width;
    /* All zero sometimes; zero where the path reads (the first width bytes) and not beyond
     * sometimes. */
    size_t from = chance(10) ? n : chance(25) ? width : 0;
    for (size_t i = from; i < n && i < sizeof id; i++) {
        id[i] = (uint8_t)(1 + pick(3));
    }
    f_bytes(b, num, id, n < sizeof id ? n : sizeof id);
}

static uint64_t any_enum(uint64_t max)
{
    /* Enums may be negative (10-byte varints) or beyond int32: protobuf-c keeps the low 32 bits
     * as int32. */
    return chance(5) ? (uint64_t)-1 : chance(3) ? (1ull << 32) + 2 : pick(max + 2);
}

static void f_time(buf_t *b, uint32_t num)
{
    static const uint64_t times[] = {0, 1, 100, 1000000, 2000000100, 1ull << 63, UINT64_MAX};
    f_fixed(b, num, chance(50) ? times[pick(sizeof times / sizeof times[0])] : rnd(), 8);
}

static void unknown_field(buf_t *b)
{
    if (chance(10)) {
        f_varint(b, 99, rnd());
    }
}

static void span(buf_t *b)
{
    /* Fields in a shuffled order, some twice. */
    for (size_t round = chance(15) ? 2 : 1; round > 0; round--) {
        size_t start = pick(12);
        for (size_t j = 0; j < 12; j++) {
            if (chance(20)) {
                continue;
            }
            switch ((start + j) % 12) {
            case 0:
                f_id(b, 1, 16);
                break;
            case 1:
                f_id(b, 2, 8);
                break;
            case 2:
                f_str(b, 3);
                break;
            case 3:
                f_id(b, 4, 8);
                break;
            case 4:
                f_str(b, 5);
                break;
            case 5:
                f_varint(b, 6, any_enum(5));
                break;
            case 6:
                f_time(b, 7);
                break;
            case 7:
                f_time(b, 8);
                break;
            case 8:
                attrs(b, 9);
                break;
            case 9:
                f_varint(b, 10, chance(5) ? (1ull << 32) + 7 : pick(4));
                break;
            case 10: { /* Status { message = 2, code = 3 } */
                if (round > 1) {
                    break; /* a message field twice is decoded at once (not a wire batch) */
                }
                buf_t st = {0};
                if (chance(60)) {
                    f_str(&st, 2);
                }
                if (chance(80)) {
                    f_varint(&st, 3, any_enum(2));
                }
                f_msg(b, 15, &st);
                break;
            }
            default:
                f_fixed(b, 16, pick(0x400), 4);
                break;
            }
            unknown_field(b);
        }
    }
}

static void log_record(buf_t *b)
{
    for (size_t round = chance(15) ? 2 : 1; round > 0; round--) {
        size_t start = pick(11);
        for (size_t j = 0; j < 11; j++) {
            if (chance(20)) {
                continue;
            }
            switch ((start + j) % 11) {
            case 0:
                f_time(b, 1);
                break;
            case 1:
                f_varint(b, 2, any_enum(24));
                break;
            case 2:
                f_str(b, 3);
                break;
            case 3: {
                if (round > 1) {
                    break; /* see span() */
                }
                buf_t v = {0};
                any_value(&v, 0);
                f_msg(b, 5, &v);
                break;
            }
            case 4:
                attrs(b, 6);
                break;
            case 5:
                f_varint(b, 7, pick(3));
                break;
            case 6:
                f_fixed(b, 8, pick(0x200), 4);
                break;
            case 7:
                f_id(b, 9, 16);
                break;
            case 8:
                f_id(b, 10, 8);
                break;
            case 9:
                f_time(b, 11);
                break;
            default:
                f_str(b, 12);
                break;
            }
            unknown_field(b);
        }
    }
}

/* An Export{Trace,Logs}ServiceRequest of a few resources, scopes and items. */
static buf_t request(bool logs)
{
    buf_t req = {0};
    for (size_t r = 1 + pick(3); r > 0; r--) {
        buf_t rs = {0};
        if (!chance(15)) { /* Resource { attributes = 1, dropped_attributes_count = 2 } */
            buf_t res = {0};
            attrs(&res, 1);
            if (chance(20)) {
                f_varint(&res, 2, pick(5));
            }
            f_msg(&rs, 1, &res);
        }
        for (size_t s = 1 + pick(2); s > 0; s--) {
            buf_t ss = {0};
            if (!chance(15)) { /* InstrumentationScope { name, version, attributes, dropped } */
                buf_t sc = {0};
                f_str(&sc, 1);
                if (chance(50)) {
                    f_str(&sc, 2);
                }
                attrs(&sc, 3);
                if (chance(20)) {
                    f_varint(&sc, 4, pick(5));
                }
                f_msg(&ss, 1, &sc);
            }
            for (size_t i = pick(5); i > 0; i--) {
                buf_t item = {0};
                if (logs) {
                    log_record(&item);
                } else {
                    span(&item);
                }
                f_msg(&ss, 2, &item);
            }
            f_msg(&rs, 2, &ss);
        }
        f_msg(&req, 1, &rs);
    }
    return req;
}

/* ---- conditions --------------------------------------------------------------------------- */

static const char *const span_paths[] = {
    "name",
    "kind",
    "status.code",
    "status.message",
    "dropped_attributes_count",
    "trace_id",
    "trace_id.string",
    "span_id",
    "span_id.string",
    "parent_span_id",
    "parent_span_id.string",
    "trace_state",
    "start_time_unix_nano",
    "end_time_unix_nano",
    "flags",
};

static const char *const log_paths[] = {
    "body",
    "severity_number",
    "severity_text",
    "time_unix_nano",
    "observed_time_unix_nano",
    "trace_id",
    "trace_id.string",
    "span_id",
    "span_id.string",
    "flags",
    "dropped_attributes_count",
    "event_name",
};

static const char *const shared_paths[] = {
    "resource.dropped_attributes_count",
    "instrumentation_scope.name",
    "instrumentation_scope.version",
    "scope.name",
    "instrumentation_scope.dropped_attributes_count",
};

static const char *const attr_paths[] = {"attributes", "resource.attributes",
                                         "instrumentation_scope.attributes"};

static const char *const literals[] = {
    "\"\"",
    "\"a\"",
    "\"GET /health\"",
    "\"checkout\"",
    "\"ab\"",
    "\"42\"",
    "\"1.5\"",
    "0",
    "1",
    "2",
    "-1",
    "42",
    "500",
    "1.5",
    "0.0",
    "true",
    "false",
    "nil",
    "SPAN_KIND_SERVER",
    "SPAN_KIND_UNSPECIFIED",
    "STATUS_CODE_ERROR",
    "SEVERITY_NUMBER_WARN",
    "SEVERITY_NUMBER_UNSPECIFIED",
    "TraceID(0x01010101010101010101010101010101)",
    "TraceID(0x00000000000000000000000000000000)",
    "SpanID(0x0101010101010101)",
    "SpanID(0x0000000000000000)",
};

static const char *const ops[] = {"==", "!=", "<", "<=", ">", ">="};
static const char *const regexes[] = {"^GET",     ".*health.*", "^$",      "a",
                                      "^[0-9]+$", "(?i)error",  "\\\\x00", "."};

static void path(char *out, size_t n, bool logs)
{
    size_t a = sizeof attr_paths / sizeof attr_paths[0];
    size_t s = sizeof shared_paths / sizeof shared_paths[0];
    size_t own =
        logs ? sizeof log_paths / sizeof log_paths[0] : sizeof span_paths / sizeof span_paths[0];
    size_t i = pick(a + s + own + 2);
    if (i < a + 2) {
        snprintf(out, n, "%s[\"%s\"]", attr_paths[i % a], keys[pick(sizeof keys / sizeof keys[0])]);
    } else if (i < a + 2 + s) {
        snprintf(out, n, "%s", shared_paths[i - a - 2]);
    } else {
        snprintf(out, n, "%s", (logs ? log_paths : span_paths)[i - a - 2 - s]);
    }
}

/* A value expression: a path mostly, a function of one, or arithmetic. */
static void value(char *out, size_t n, bool logs)
{
    char p[128], q[128];
    path(p, sizeof p, logs);
    switch (pick(10)) {
    case 0:
        snprintf(out, n, "Len(%s)", p);
        break;
    case 1:
        snprintf(out, n, "Int(%s)", p);
        break;
    case 2:
        snprintf(out, n, "Concat([%s, \"-\"], \"\")", p);
        break;
    case 3:
        path(q, sizeof q, logs);
        snprintf(out, n, "%s %s %s", p, chance(50) ? "-" : "+", q);
        break;
    case 4:
        snprintf(out, n, "String(%s)", p);
        break;
    case 5:
        snprintf(out, n, "Double(%s)", p);
        break;
    default:
        snprintf(out, n, "%s", p);
        break;
    }
}

static void atom(char *out, size_t n, bool logs)
{
    char v[300], w[300];
    value(v, sizeof v, logs);
    switch (pick(12)) {
    case 0:
        snprintf(out, n, "IsMatch(%s, \"%s\")", v,
                 regexes[pick(sizeof regexes / sizeof regexes[0])]);
        break;
    case 1:
        snprintf(
            out, n, "%s(%s)",
            (const char *[]){"IsString", "IsInt", "IsBool", "IsDouble", "IsMap", "IsList"}[pick(6)],
            v);
        break;
    case 2:
        snprintf(out, n, "%s", logs ? "true" : "IsRootSpan()");
        break;
    case 3:
        value(w, sizeof w, logs);
        snprintf(out, n, "%s %s %s", v, ops[pick(6)], w);
        break;
    default:
        snprintf(out, n, "%s %s %s", v, ops[pick(6)],
                 literals[pick(sizeof literals / sizeof literals[0])]);
        break;
    }
}

static void condition(char *out, size_t n, bool logs, int depth)
{
    if (depth >= 2 || chance(45)) {
        atom(out, n, logs);
        return;
    }
    char a[1024], b[1024];
    condition(a, sizeof a, logs, depth + 1);
    condition(b, sizeof b, logs, depth + 1);
    switch (pick(3)) {
    case 0:
        snprintf(out, n, "(%s) and (%s)", a, b);
        break;
    case 1:
        snprintf(out, n, "%s or %s", a, b);
        break;
    default:
        snprintf(out, n, "not (%s)", a);
        break;
    }
}

/* ---- tests -------------------------------------------------------------------------------- */

#define ROUNDS 400
#define CONDS_PER_REQUEST 6

static void run(bool logs)
{
    ottl_wire_diff_stats_t st = {0};
    size_t conds = 0, not_compiled = 0, not_wire = 0;
    for (int r = 0; r < ROUNDS; r++) {
        buf_t req = request(logs);
        for (int c = 0; c < CONDS_PER_REQUEST; c++) {
            char text[4096];
            condition(text, sizeof text, logs, 0);
            ottl_expr_t *e = NULL;
            om_err_t err = {0};
            if (proc_filter_ottl_compile(logs ? OTTL_CTX_LOG : OTTL_CTX_SPAN, text, &e, &err) !=
                0) {
                not_compiled++;
                continue;
            }
            conds++;
            if (!proc_filter_ottl_wire_ok(e)) {
                not_wire++;
            } else {
                const char *diff =
                    ottl_wire_diff(logs ? OM_SIG_LOGS : OM_SIG_TRACES, e, req.p, req.n, &st);
                if (diff != NULL) {
                    fprintf(stderr, "    round %d, condition '%s': %s\n", r, text, diff);
                }
                ASSERT_TRUE(diff == NULL);
            }
            proc_filter_ottl_free(e);
        }
        free(req.p);
    }
    fprintf(stderr,
            "    %s: %zu conditions (%zu did not compile, %zu not for the wire), %zu requests "
            "(%zu arrived decoded), %zu items: %zu answered on the wire, %zu stepped aside; "
            "%zu dropped\n",
            logs ? "logs" : "spans", conds, not_compiled, not_wire, st.requests, st.not_wire_only,
            st.items, st.on_wire, st.stepped_aside, st.dropped);
    /* The generator must reach what it is for: most conditions and requests compared on the
     * wire, some answers left to decoding, some items dropped. */
    ASSERT_TRUE(conds > ROUNDS * CONDS_PER_REQUEST / 2);
    ASSERT_TRUE(not_wire == 0);
    ASSERT_TRUE(st.requests > conds / 2);
    ASSERT_TRUE(st.on_wire > st.items / 2);
    ASSERT_TRUE(st.stepped_aside > 0 && st.dropped > 0);
}

static void test_random_spans(void)
{
    run(false);
}

static void test_random_log_records(void)
{
    run(true);
}

int main(void)
{
    om_log_set_level(OM_LOG_NONE);
    OM_RUN(test_random_spans);
    OM_RUN(test_random_log_records);
    return om_test_summary();
}
