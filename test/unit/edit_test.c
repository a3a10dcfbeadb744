/* edit_test.c: the API that processors read, drop and change data with (om_batch_walk,
 * om_batch_edit, om_attrs_*), the order of fan-outs (OM_CAP_MUTATES_DATA), and the test data
 * language (om_testdata_otlp) the tests write their batches in. */
#include <stdlib.h>

#include "om.h"
#include "om_test.h"
#include "om_testdata.h"
#include "pipeline.h"

/* The bytes a batch encodes to (malloc'd), and their length in *len. */
static uint8_t *bytes_of(const om_batch_t *b, size_t *len)
{
    *len = om_batch_proto_size(b);
    uint8_t *buf = malloc(*len > 0 ? *len : 1);
    om_batch_proto_pack(b, buf);
    return buf;
}

/* Whether b encodes to exactly len bytes at want. */
static bool encodes_to(const om_batch_t *b, const uint8_t *want, size_t len)
{
    size_t n;
    uint8_t *got = bytes_of(b, &n);
    bool same = n == len && memcmp(got, want, len) == 0;
    free(got);
    return same;
}

/* The batch encoded and decoded again: what a receiver downstream would see. */
static const char *round_trip(const om_batch_t *b)
{
    size_t n;
    uint8_t *buf = bytes_of(b, &n);
    om_batch_t *back = NULL;
    const char *s = "(does not decode)";
    if (om_batch_decode_proto(b->signal, buf, n, 0, &back, NULL) == 0) {
        s = om_testdata_describe(back);
        om_batch_release(back);
    }
    free(buf);
    return s;
}

static size_t resources_of(const om_batch_t *b)
{
    om_batch_counts_t c;
    om_batch_counts(b, &c);
    return c.resources;
}

/* b->items agrees with a recount, and equals want. */
#define ASSERT_ITEMS(b, want)                                                                      \
    do {                                                                                           \
        om_batch_counts_t c__;                                                                     \
        om_batch_counts((b), &c__);                                                                \
        ASSERT_EQ_UINT((b)->items, (want));                                                        \
        ASSERT_EQ_UINT(c__.items, (want));                                                         \
        ASSERT_EQ_UINT(om_batch_count_items(b), (want));                                           \
    } while (0)

/* ---- the test data language -------------------------------------------------------------- */

static void test_otlp_text_builds_what_it_says(void)
{
    om_batch_t *b = om_testdata_otlp("resource service.name=a; scope s@1.0;"
                                     "span 'GET /' kind:server status:error http.method=GET "
                                     "http.status_code=500 ratio=0.5 ok=false raw=0x0aff");
    ASSERT_EQ_INT(b->signal, OM_SIG_TRACES);
    ASSERT_ITEMS(b, 1);
    om_resource_spans_t *rs = b->traces->resource_spans[0];
    om_attrs_t ra = OM_ATTRS(b, rs->resource);
    ASSERT_EQ_STR(om_attrs_get(&ra, "service.name")->string_value, "a");
    om_scope_t *sc = rs->scope_spans[0]->scope;
    ASSERT_EQ_STR(sc->name, "s");
    ASSERT_EQ_STR(sc->version, "1.0");
    om_span_t *sp = rs->scope_spans[0]->spans[0];
    ASSERT_EQ_STR(sp->name, "GET /");
    ASSERT_EQ_INT(sp->kind, OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_SERVER);
    ASSERT_EQ_INT(sp->status->code,
                  OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR);
    om_attrs_t a = OM_ATTRS(b, sp);
    ASSERT_EQ_UINT(om_attrs_count(&a), 5);
    ASSERT_EQ_STR(om_attrs_get(&a, "http.method")->string_value, "GET");
    ASSERT_EQ_INT(om_attrs_get(&a, "http.status_code")->int_value, 500);
    ASSERT_TRUE(om_attrs_get(&a, "ratio")->double_value == 0.5);
    ASSERT_EQ_INT(om_attrs_get(&a, "ok")->value_case, OM_ANYVALUE_BOOL);
    ASSERT_EQ_UINT(om_attrs_get(&a, "raw")->bytes_value.len, 2);
    ASSERT_EQ_UINT(om_attrs_get(&a, "raw")->bytes_value.data[1], 0xff);
    ASSERT_EQ_STR(om_attrs_at(&a, 0)->key, "http.method"); /* in the order written */
    om_batch_release(b);

    /* Signals from the first item; implicit entries; metrics of every type; log bodies. */
    b = om_testdata_otlp("metric m type:sum monotonic:true temporality:cumulative unit:ms\n"
                         "point 3 k=v; point 2.5 time:7\n"
                         "metric h type:histogram; point count:4 sum:10\n"
                         "metric e type:exphistogram; point count:2\n"
                         "metric q type:summary; point count:1 sum:1\n"
                         "metric g; point -1 # a gauge by default\n");
    ASSERT_EQ_INT(b->signal, OM_SIG_METRICS);
    ASSERT_ITEMS(b, 6);
    ASSERT_EQ_STR(om_testdata_describe(b), "(- [-: m<3 2.5> h<4> e<2> q<1> g<-1>])");
    om_metric_t *m = b->metrics->resource_metrics[0]->scope_metrics[0]->metrics[0];
    ASSERT_TRUE(m->sum->is_monotonic);
    ASSERT_EQ_UINT(m->sum->data_points[1]->time_unix_nano, 7);
    ASSERT_EQ_STR(m->unit, "ms");
    om_batch_release(b);

    b = om_testdata_otlp("logs\nresource service.name=x\nlog 'hello world' severity:warn\nlog 42");
    ASSERT_EQ_STR(om_testdata_describe(b), "(x [-: hello world 42])");
    ASSERT_EQ_INT(b->logs->resource_logs[0]->scope_logs[0]->log_records[0]->severity_number,
                  OPENTELEMETRY__PROTO__LOGS__V1__SEVERITY_NUMBER__SEVERITY_NUMBER_WARN);
    om_batch_release(b);

    b = om_testdata_otlp("metrics; resource service.name=empty");
    ASSERT_EQ_INT(b->signal, OM_SIG_METRICS);
    ASSERT_ITEMS(b, 0);
    om_batch_release(b);
}

/* ---- walking ----------------------------------------------------------------------------- */

/* Three resources, scopes and items of each level, named after where they are. */
static om_batch_t *sample(om_signal_t sig)
{
    if (sig == OM_SIG_TRACES) {
        return om_testdata_otlp("resource service.name=a; scope s1; span a1; event e1; event e2;"
                                "span a2; scope s2; span a3;"
                                "resource service.name=b; scope s3; span b1; event e3;"
                                "resource service.name=c; scope s4; span c1");
    }
    if (sig == OM_SIG_METRICS) {
        return om_testdata_otlp("resource service.name=a; scope s1;"
                                "metric m1; point 1; point 2; metric m2 type:sum; point 3;"
                                "scope s2; metric m3 type:histogram; point count:4;"
                                "resource service.name=b; scope s3;"
                                "metric m4 type:exphistogram; point count:5; point count:6;"
                                "metric m5 type:summary; point count:7");
    }
    return om_testdata_otlp("resource service.name=a; scope s1; log l1; log l2; scope s2; log l3;"
                            "resource service.name=b; scope s3; log l4");
}

typedef struct seen {
    om_strbuf_t sb;
    const char *drop; /* drop items whose name is this ("*": all) */
    int fail_at;      /* return OM_EINVAL at this call (1-based), 0: never */
    int calls;
} seen_t;

static const char *name_of(const om_item_t *it)
{
    switch (it->level) {
    case OM_LEVEL_RESOURCE: {
        const om_anyvalue_t *v = om_attrs_get(&it->resource_attrs, "service.name");
        return v != NULL ? v->string_value : "-";
    }
    case OM_LEVEL_SCOPE:
        return it->scope != NULL ? it->scope->name : "-";
    case OM_LEVEL_SPAN:
        return it->span->name;
    case OM_LEVEL_SPAN_EVENT:
        return it->event->name;
    case OM_LEVEL_METRIC:
        return it->metric->name;
    case OM_LEVEL_DATAPOINT: {
        static char buf[32];
        if (it->metric->data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE ||
            it->metric->data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM) {
            snprintf(buf, sizeof buf, "%lld", (long long)it->number->as_int);
        } else if (it->metric->data_case ==
                   OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM) {
            snprintf(buf, sizeof buf, "%llu", (unsigned long long)it->histogram->count);
        } else if (it->metric->data_case ==
                   OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM) {
            snprintf(buf, sizeof buf, "%llu", (unsigned long long)it->exp_histogram->count);
        } else {
            snprintf(buf, sizeof buf, "%llu", (unsigned long long)it->summary->count);
        }
        return buf;
    }
    default:
        return it->log->body->string_value;
    }
}

/* Records "resource/scope/parent/name" of each item; drops by name. */
static int record(om_item_t *it, void *arg)
{
    seen_t *s = arg;
    if (++s->calls == s->fail_at) {
        return OM_EINVAL;
    }
    const om_anyvalue_t *svc = om_attrs_get(&it->resource_attrs, "service.name");
    const char *name = name_of(it);
    const char *parent = it->level == OM_LEVEL_SPAN_EVENT  ? it->span->name
                         : it->level == OM_LEVEL_DATAPOINT ? it->metric->name
                                                           : "";
    om_strbuf_printf(&s->sb, "%s%s/%s/%s%s%s", s->sb.len > 0 ? " " : "", svc->string_value,
                     it->scope != NULL ? it->scope->name : "", parent, *parent ? "/" : "", name);
    bool drop = s->drop != NULL && (strcmp(s->drop, "*") == 0 || strcmp(s->drop, name) == 0);
    return drop ? OM_DROP : OM_KEEP;
}

/* The items of a level as record() writes them, walking a wire copy of the sample. */
static const char *walk_names(om_signal_t sig, om_level_t level)
{
    static char out[512];
    seen_t s = {0};
    om_strbuf_init(&s.sb, 0);
    om_strbuf_puts(&s.sb, "");
    om_batch_t *b = om_testdata_wire(sample(sig));
    int rc = om_batch_walk(&b, level, record, &s, NULL);
    snprintf(out, sizeof out, "%s", rc == 0 ? s.sb.data : "(failed)");
    om_strbuf_free(&s.sb);
    om_batch_release(b);
    return out;
}

static void test_walk_visits_every_level_with_its_context(void)
{
    ASSERT_EQ_STR(walk_names(OM_SIG_TRACES, OM_LEVEL_RESOURCE), "a//a b//b c//c");
    ASSERT_EQ_STR(walk_names(OM_SIG_TRACES, OM_LEVEL_SCOPE), "a/s1/s1 a/s2/s2 b/s3/s3 c/s4/s4");
    ASSERT_EQ_STR(walk_names(OM_SIG_TRACES, OM_LEVEL_SPAN),
                  "a/s1/a1 a/s1/a2 a/s2/a3 b/s3/b1 c/s4/c1");
    ASSERT_EQ_STR(walk_names(OM_SIG_TRACES, OM_LEVEL_SPAN_EVENT),
                  "a/s1/a1/e1 a/s1/a1/e2 b/s3/b1/e3");
    ASSERT_EQ_STR(walk_names(OM_SIG_METRICS, OM_LEVEL_SCOPE), "a/s1/s1 a/s2/s2 b/s3/s3");
    ASSERT_EQ_STR(walk_names(OM_SIG_METRICS, OM_LEVEL_METRIC),
                  "a/s1/m1 a/s1/m2 a/s2/m3 b/s3/m4 b/s3/m5");
    ASSERT_EQ_STR(walk_names(OM_SIG_METRICS, OM_LEVEL_DATAPOINT),
                  "a/s1/m1/1 a/s1/m1/2 a/s1/m2/3 a/s2/m3/4 b/s3/m4/5 b/s3/m4/6 b/s3/m5/7");
    ASSERT_EQ_STR(walk_names(OM_SIG_LOGS, OM_LEVEL_RESOURCE), "a//a b//b");
    ASSERT_EQ_STR(walk_names(OM_SIG_LOGS, OM_LEVEL_LOG), "a/s1/l1 a/s1/l2 a/s2/l3 b/s3/l4");

    /* A level the signal does not have is an error, and the batch is untouched. */
    om_batch_t *b = om_testdata_wire(sample(OM_SIG_LOGS));
    om_err_t err = {0};
    seen_t s = {0};
    om_strbuf_init(&s.sb, 0);
    ASSERT_EQ_INT(om_batch_walk(&b, OM_LEVEL_SPAN, record, &s, &err), OM_EINVAL);
    ASSERT_CONTAINS(err.msg, "a logs batch has no span level");
    ASSERT_EQ_INT(s.calls, 0);
    ASSERT_TRUE(b->raw_valid && b->msg == NULL);
    om_strbuf_free(&s.sb);
    om_batch_release(b);
}

/* Walks level of a fresh sample dropping the items named drop; returns the structure after,
 * checking that counts and the encoding agree with it. */
static const char *after_drop(om_signal_t sig, om_level_t level, const char *drop, int dropped)
{
    static char out[512];
    seen_t s = {.drop = drop};
    om_strbuf_init(&s.sb, 0);
    om_batch_t *b = om_testdata_wire(sample(sig));
    int rc = om_batch_walk(&b, level, record, &s, NULL);
    om_strbuf_free(&s.sb);
    snprintf(out, sizeof out, "%s", om_testdata_describe(b));
    /* The core's counts are those of the structure, and the encoding is the structure. */
    om_batch_counts_t c;
    om_batch_counts(b, &c);
    bool ok = rc == dropped && b->items == c.items && c.items == om_batch_count_items(b) &&
              b->wire_counts.items == c.items && b->wire_counts.resources == c.resources &&
              strcmp(round_trip(b), out) == 0 && (dropped == 0 || !b->raw_valid);
    om_batch_release(b);
    return ok ? out : "(counts or encoding disagree)";
}

static void test_drops_at_each_level_remove_what_they_empty(void)
{
    /* Spans: a scope emptied goes, then its resource when it was the last. */
    ASSERT_EQ_STR(after_drop(OM_SIG_TRACES, OM_LEVEL_SPAN, "a2", 1),
                  "(a [s1: a1{e1,e2}] [s2: a3]) (b [s3: b1{e3}]) (c [s4: c1])");
    ASSERT_EQ_STR(after_drop(OM_SIG_TRACES, OM_LEVEL_SPAN, "a3", 1),
                  "(a [s1: a1{e1,e2} a2]) (b [s3: b1{e3}]) (c [s4: c1])");
    ASSERT_EQ_STR(after_drop(OM_SIG_TRACES, OM_LEVEL_SPAN, "b1", 1),
                  "(a [s1: a1{e1,e2} a2] [s2: a3]) (c [s4: c1])");
    ASSERT_EQ_STR(after_drop(OM_SIG_TRACES, OM_LEVEL_SPAN, "*", 5), "");
    /* Events: a span whose events are all dropped stays. */
    ASSERT_EQ_STR(after_drop(OM_SIG_TRACES, OM_LEVEL_SPAN_EVENT, "e3", 1),
                  "(a [s1: a1{e1,e2} a2] [s2: a3]) (b [s3: b1]) (c [s4: c1])");
    ASSERT_EQ_STR(after_drop(OM_SIG_TRACES, OM_LEVEL_SPAN_EVENT, "e1", 1),
                  "(a [s1: a1{e2} a2] [s2: a3]) (b [s3: b1{e3}]) (c [s4: c1])");
    /* Scopes and resources themselves. */
    ASSERT_EQ_STR(after_drop(OM_SIG_TRACES, OM_LEVEL_SCOPE, "s1", 1),
                  "(a [s2: a3]) (b [s3: b1{e3}]) (c [s4: c1])");
    ASSERT_EQ_STR(after_drop(OM_SIG_TRACES, OM_LEVEL_SCOPE, "s3", 1),
                  "(a [s1: a1{e1,e2} a2] [s2: a3]) (c [s4: c1])");
    ASSERT_EQ_STR(after_drop(OM_SIG_TRACES, OM_LEVEL_RESOURCE, "b", 1),
                  "(a [s1: a1{e1,e2} a2] [s2: a3]) (c [s4: c1])");

    /* Data points: a metric emptied goes, then its scope and resource. */
    ASSERT_EQ_STR(after_drop(OM_SIG_METRICS, OM_LEVEL_DATAPOINT, "1", 1),
                  "(a [s1: m1<2> m2<3>] [s2: m3<4>]) (b [s3: m4<5 6> m5<7>])");
    ASSERT_EQ_STR(after_drop(OM_SIG_METRICS, OM_LEVEL_DATAPOINT, "3", 1),
                  "(a [s1: m1<1 2>] [s2: m3<4>]) (b [s3: m4<5 6> m5<7>])");
    ASSERT_EQ_STR(after_drop(OM_SIG_METRICS, OM_LEVEL_DATAPOINT, "4", 1),
                  "(a [s1: m1<1 2> m2<3>]) (b [s3: m4<5 6> m5<7>])");
    ASSERT_EQ_STR(after_drop(OM_SIG_METRICS, OM_LEVEL_DATAPOINT, "6", 1),
                  "(a [s1: m1<1 2> m2<3>] [s2: m3<4>]) (b [s3: m4<5> m5<7>])");
    ASSERT_EQ_STR(after_drop(OM_SIG_METRICS, OM_LEVEL_DATAPOINT, "7", 1),
                  "(a [s1: m1<1 2> m2<3>] [s2: m3<4>]) (b [s3: m4<5 6>])");
    ASSERT_EQ_STR(after_drop(OM_SIG_METRICS, OM_LEVEL_METRIC, "m3", 1),
                  "(a [s1: m1<1 2> m2<3>]) (b [s3: m4<5 6> m5<7>])");
    ASSERT_EQ_STR(after_drop(OM_SIG_METRICS, OM_LEVEL_METRIC, "*", 5), "");
    ASSERT_EQ_STR(after_drop(OM_SIG_METRICS, OM_LEVEL_SCOPE, "s3", 1),
                  "(a [s1: m1<1 2> m2<3>] [s2: m3<4>])");

    ASSERT_EQ_STR(after_drop(OM_SIG_LOGS, OM_LEVEL_LOG, "l4", 1), "(a [s1: l1 l2] [s2: l3])");
    ASSERT_EQ_STR(after_drop(OM_SIG_LOGS, OM_LEVEL_LOG, "l1", 1),
                  "(a [s1: l2] [s2: l3]) (b [s3: l4])");
    ASSERT_EQ_STR(after_drop(OM_SIG_LOGS, OM_LEVEL_SCOPE, "s2", 1), "(a [s1: l1 l2]) (b [s3: l4])");
    ASSERT_EQ_STR(after_drop(OM_SIG_LOGS, OM_LEVEL_RESOURCE, "*", 2), "");

    /* Nothing dropped: nothing changes. */
    ASSERT_EQ_STR(after_drop(OM_SIG_LOGS, OM_LEVEL_LOG, "none", 0),
                  "(a [s1: l1 l2] [s2: l3]) (b [s3: l4])");
}

/* Containers that were empty before the walk are not the walk's to remove. */
static void test_only_what_a_walk_empties_is_removed(void)
{
    om_batch_t *b = om_testdata_otlp("resource service.name=a; scope empty;"
                                     "resource service.name=b; scope s; span x; span y");
    seen_t s = {.drop = "x"};
    om_strbuf_init(&s.sb, 0);
    ASSERT_EQ_INT(om_batch_walk(&b, OM_LEVEL_SPAN, record, &s, NULL), 1);
    ASSERT_EQ_STR(om_testdata_describe(b), "(a [empty:]) (b [s: y])");
    s.drop = "y";
    ASSERT_EQ_INT(om_batch_walk(&b, OM_LEVEL_SPAN, record, &s, NULL), 1);
    ASSERT_EQ_STR(om_testdata_describe(b), "(a [empty:])");
    ASSERT_ITEMS(b, 0);
    ASSERT_EQ_UINT(resources_of(b), 1);
    om_strbuf_free(&s.sb);
    om_batch_release(b);
}

/* A walk that drops nothing leaves the wire bytes: the batch is still forwarded as it came. */
static void test_a_walk_that_drops_nothing_keeps_the_wire_bytes(void)
{
    om_signal_t sigs[] = {OM_SIG_TRACES, OM_SIG_METRICS, OM_SIG_LOGS};
    om_level_t levels[] = {OM_LEVEL_RESOURCE,   OM_LEVEL_SCOPE,  OM_LEVEL_SPAN,
                           OM_LEVEL_SPAN_EVENT, OM_LEVEL_METRIC, OM_LEVEL_DATAPOINT,
                           OM_LEVEL_LOG};
    for (int i = 0; i < 3; i++) {
        om_batch_t *b = om_testdata_wire(sample(sigs[i]));
        size_t len;
        uint8_t *before = bytes_of(b, &len);
        size_t items = b->items;
        for (size_t l = 0; l < sizeof levels / sizeof levels[0]; l++) {
            om_batch_t *was = b;
            seen_t s = {0};
            om_strbuf_init(&s.sb, 0);
            int rc = om_batch_walk(&b, levels[l], record, &s, NULL);
            om_strbuf_free(&s.sb);
            ASSERT_TRUE(rc == 0 || rc == OM_EINVAL);
            ASSERT_TRUE(b == was);
            ASSERT_TRUE(b->raw_valid);
            ASSERT_EQ_UINT(b->items, items);
        }
        ASSERT_TRUE(encodes_to(b, before, len));
        free(before);
        om_batch_release(b);
    }
}

/* A callback's error stops the walk; what it had marked to drop is not dropped. */
static void test_a_callback_error_stops_the_walk(void)
{
    om_batch_t *b = om_testdata_wire(sample(OM_SIG_TRACES));
    size_t len;
    uint8_t *before = bytes_of(b, &len);
    seen_t s = {.drop = "*", .fail_at = 3};
    om_strbuf_init(&s.sb, 0);
    ASSERT_EQ_INT(om_batch_walk(&b, OM_LEVEL_SPAN, record, &s, NULL), OM_EINVAL);
    ASSERT_EQ_INT(s.calls, 3);
    ASSERT_TRUE(b->raw_valid);
    ASSERT_TRUE(encodes_to(b, before, len));
    ASSERT_ITEMS(b, 5);
    om_strbuf_free(&s.sb);
    free(before);
    om_batch_release(b);
}

/* Dropping from a batch another pipeline holds: the dropper gets its own copy, the other
 * holder's batch stays byte for byte what it was, and both share the unchanged nodes. */
static void test_drops_on_a_shared_batch_copy_on_write(void)
{
    om_signal_t sigs[] = {OM_SIG_TRACES, OM_SIG_METRICS, OM_SIG_LOGS};
    om_level_t levels[] = {OM_LEVEL_SPAN_EVENT, OM_LEVEL_DATAPOINT, OM_LEVEL_LOG};
    const char *drops[] = {"e1", "6", "l2"};
    for (int i = 0; i < 3; i++) {
        /* As received (wire bytes) and as built (structs only). */
        for (int wire = 0; wire < 2; wire++) {
            om_batch_t *b = sample(sigs[i]);
            b = wire ? om_testdata_wire(b) : b;
            size_t len;
            uint8_t *before = bytes_of(b, &len);
            char shape[512];
            snprintf(shape, sizeof shape, "%s", om_testdata_describe(b));
            om_batch_t *other = om_batch_ref(b);
            seen_t s = {.drop = drops[i]};
            om_strbuf_init(&s.sb, 0);
            ASSERT_EQ_INT(om_batch_walk(&b, levels[i], record, &s, NULL), 1);
            om_strbuf_free(&s.sb);
            ASSERT_TRUE(b != other);
            ASSERT_EQ_UINT(b->refs, 1);
            ASSERT_EQ_UINT(other->refs, 1);
            /* The other holder: unchanged, still forwarded as it came, but now read-only. */
            ASSERT_EQ_STR(om_testdata_describe(other), shape);
            ASSERT_TRUE(encodes_to(other, before, len));
            ASSERT_EQ_INT(other->raw_valid, wire);
            ASSERT_TRUE(other->borrowed && b->borrowed);
            ASSERT_ITEMS(other, sigs[i] == OM_SIG_METRICS ? 7 : sigs[i] == OM_SIG_TRACES ? 5 : 4);
            /* The dropper's copy. */
            ASSERT_ITEMS(b, sigs[i] == OM_SIG_METRICS ? 6 : sigs[i] == OM_SIG_TRACES ? 5 : 3);
            ASSERT_TRUE(strstr(om_testdata_describe(b), drops[i]) == NULL);
            ASSERT_EQ_STR(round_trip(b), om_testdata_describe(b));
            /* The copy outlives the original, whose nodes it keeps alive. */
            om_batch_release(other);
            ASSERT_EQ_STR(round_trip(b), om_testdata_describe(b));
            /* Editing either one now copies: they share nodes. */
            om_batch_t *was = b;
            ASSERT_EQ_INT(om_batch_edit(&b, NULL), 0);
            ASSERT_TRUE(b != was && !b->borrowed);
            free(before);
            om_batch_release(b);
        }
    }
}

/* Counts are right after every change, on both paths (in place and copy). */
static void test_counts_follow_every_change(void)
{
    om_batch_t *b = om_testdata_wire(sample(OM_SIG_METRICS));
    ASSERT_ITEMS(b, 7);
    om_batch_counts_t c;
    seen_t s = {.drop = "5"};
    om_strbuf_init(&s.sb, 0);
    ASSERT_EQ_INT(om_batch_walk(&b, OM_LEVEL_DATAPOINT, record, &s, NULL), 1);
    ASSERT_ITEMS(b, 6);
    om_batch_counts(b, &c);
    ASSERT_EQ_UINT(c.metrics, 5);
    ASSERT_EQ_UINT(c.resources, 2);
    om_batch_t *other = om_batch_ref(b);
    s.drop = "m5";
    ASSERT_EQ_INT(om_batch_walk(&b, OM_LEVEL_METRIC, record, &s, NULL), 1);
    ASSERT_ITEMS(b, 5);
    ASSERT_ITEMS(other, 6);
    om_batch_counts(b, &c);
    ASSERT_EQ_UINT(c.metrics, 4);
    s.drop = "b";
    ASSERT_EQ_INT(om_batch_walk(&b, OM_LEVEL_RESOURCE, record, &s, NULL), 1);
    ASSERT_ITEMS(b, 4);
    ASSERT_EQ_UINT(resources_of(b), 1);
    /* Appending keeps summing them. */
    om_batch_t *merged = om_batch_new(OM_SIG_METRICS, 0);
    ASSERT_EQ_INT(om_batch_append(merged, b), 0);
    ASSERT_EQ_INT(om_batch_append(merged, other), 0);
    ASSERT_ITEMS(merged, 10);
    s.drop = "2";
    ASSERT_EQ_INT(om_batch_walk(&merged, OM_LEVEL_DATAPOINT, record, &s, NULL), 2);
    ASSERT_ITEMS(merged, 8);
    om_strbuf_free(&s.sb);
    om_batch_release(merged);
}

/* ---- editing ----------------------------------------------------------------------------- */

static void test_edit_is_in_place_when_held_alone(void)
{
    om_batch_t *b = om_testdata_wire(sample(OM_SIG_TRACES));
    om_batch_t *was = b;
    ASSERT_TRUE(b->raw_valid && b->msg == NULL);
    ASSERT_EQ_INT(om_batch_edit(&b, NULL), 0);
    ASSERT_TRUE(b == was);
    ASSERT_TRUE(!b->raw_valid && b->msg != NULL);
    /* Its arena came from decode_proto with no cap: edits get a capped one. */
    ASSERT_TRUE(om_arena_cap(b->arenas[0]) >= OM_BATCH_EDIT_ROOM);
    ASSERT_EQ_INT(om_batch_edit(&b, NULL), 0); /* again: nothing to do */
    ASSERT_TRUE(b == was);
    ASSERT_ITEMS(b, 5);
    om_batch_release(b);

    /* Shared: the editor gets a copy, the other holder keeps the bytes it had. */
    b = om_testdata_wire(sample(OM_SIG_LOGS));
    size_t len;
    uint8_t *before = bytes_of(b, &len);
    om_batch_t *other = om_batch_ref(b);
    ASSERT_EQ_INT(om_batch_edit(&b, NULL), 0);
    ASSERT_TRUE(b != other && b->refs == 1 && other->refs == 1 && !b->borrowed);
    om_attrs_t a = OM_ATTRS(b, b->logs->resource_logs[0]->resource);
    ASSERT_EQ_INT(om_attrs_set_str(&a, OM_ATTR_UPSERT, "service.name", "changed"), 1);
    ASSERT_EQ_STR(round_trip(b), "(changed [s1: l1 l2] [s2: l3]) (b [s3: l4])");
    ASSERT_TRUE(other->raw_valid);
    ASSERT_TRUE(encodes_to(other, before, len));
    ASSERT_EQ_STR(om_testdata_describe(other), "(a [s1: l1 l2] [s2: l3]) (b [s3: l4])");
    free(before);
    om_batch_release(other);
    om_batch_release(b);
}

/* The copy's arena has a cap: room for the copy and as much again (at least
 * OM_BATCH_EDIT_ROOM); an edit past it fails with OM_ETOOBIG and leaves the batch whole. */
static void test_a_copy_has_a_cap_and_edits_stop_at_it(void)
{
    om_batch_t *b = om_testdata_wire(om_testdata_simple(OM_SIG_TRACES, 200, 0));
    om_batch_t *other = om_batch_ref(b);
    ASSERT_EQ_INT(om_batch_edit(&b, NULL), 0);
    size_t cap = om_arena_cap(b->arenas[0]), used = om_arena_used(b->arenas[0]);
    ASSERT_TRUE(cap >= 2 * used && cap >= used + OM_BATCH_EDIT_ROOM);
    ASSERT_TRUE(cap <= 4 * used + OM_BATCH_EDIT_ROOM); /* the bound is close, not unbounded */
    om_span_t *sp = b->traces->resource_spans[0]->scope_spans[0]->spans[0];
    om_attrs_t a = OM_ATTRS(b, sp);
    char key[32];
    int rc = 0;
    size_t n = 0;
    /* Bounded: each insert takes at least 64 bytes of a cap of a few MiB at most. */
    for (; rc >= 0 && n < cap / 64; n++) {
        snprintf(key, sizeof key, "k%zu", n);
        size_t before = om_attrs_count(&a);
        rc = om_attrs_set_str(&a, OM_ATTR_INSERT, key, "a value of some length to fill it up");
        ASSERT_TRUE(rc < 0 ? om_attrs_count(&a) == before : om_attrs_count(&a) == before + 1);
    }
    ASSERT_EQ_INT(rc, OM_ETOOBIG);
    ASSERT_TRUE(om_arena_used(b->arenas[0]) <= cap);
    ASSERT_EQ_UINT(om_attrs_count(&a), n);
    /* Still a whole batch: it encodes and decodes with every attribute that fit. */
    size_t len;
    uint8_t *buf = bytes_of(b, &len);
    om_batch_t *back = NULL;
    ASSERT_EQ_INT(om_batch_decode_proto(OM_SIG_TRACES, buf, len, 0, &back, NULL), 0);
    ASSERT_EQ_INT(om_batch_decode(back, NULL), 0);
    ASSERT_EQ_UINT(back->traces->resource_spans[0]->scope_spans[0]->spans[0]->n_attributes, n);
    ASSERT_ITEMS(back, 200);
    om_batch_release(back);
    free(buf);
    ASSERT_ITEMS(other, 200);
    om_batch_release(other);
    om_batch_release(b);
}

/* Changing needs om_batch_edit: on a shared batch or one still holding its wire bytes, the
 * attribute functions refuse rather than change what others read or desynchronize the bytes. */
static void test_changes_need_an_edited_batch(void)
{
    om_batch_t *b = om_testdata_wire(sample(OM_SIG_TRACES));
    ASSERT_EQ_INT(om_batch_decode(b, NULL), 0);
    om_attrs_t a = OM_ATTRS(b, b->traces->resource_spans[0]->resource);
    ASSERT_EQ_INT(om_attrs_set_int(&a, OM_ATTR_UPSERT, "x", 1), OM_EPERM);
    ASSERT_EQ_INT(om_attrs_delete(&a, "service.name"), OM_EPERM);
    ASSERT_EQ_STR(om_attrs_get(&a, "service.name")->string_value, "a"); /* reading is fine */
    om_batch_t *other = om_batch_ref(b);
    ASSERT_EQ_INT(om_batch_edit(&b, NULL), 0);
    ASSERT_EQ_INT(om_attrs_set_int(&a, OM_ATTR_UPSERT, "x", 1), OM_EPERM); /* other's node */
    a = OM_ATTRS(b, b->traces->resource_spans[0]->resource);
    ASSERT_EQ_INT(om_attrs_set_int(&a, OM_ATTR_UPSERT, "x", 1), 1);
    om_batch_release(other);
    om_batch_release(b);
}

/* Sets, reads back, updates and deletes every value type in one list. */
static void exercise_list(om_attrs_t *a, const char *tag)
{
    size_t base = om_attrs_count(a);
    ASSERT_EQ_INT(om_attrs_set_str(a, OM_ATTR_INSERT, "s", tag), 1);
    ASSERT_EQ_INT(om_attrs_set_int(a, OM_ATTR_INSERT, "i", -7), 1);
    ASSERT_EQ_INT(om_attrs_set_double(a, OM_ATTR_INSERT, "d", 2.5), 1);
    ASSERT_EQ_INT(om_attrs_set_bool(a, OM_ATTR_INSERT, "b", true), 1);
    ASSERT_EQ_INT(om_attrs_set_bytes(a, OM_ATTR_INSERT, "y", "\x01\x00\x02", 3), 1);
    ASSERT_EQ_INT(om_attrs_set_strn(a, OM_ATTR_INSERT, "n", "abcdef", 3), 1);
    ASSERT_EQ_UINT(om_attrs_count(a), base + 6);
    ASSERT_EQ_STR(om_attrs_get(a, "s")->string_value, tag);
    ASSERT_EQ_INT(om_attrs_get(a, "i")->int_value, -7);
    ASSERT_TRUE(om_attrs_get(a, "d")->double_value == 2.5);
    ASSERT_EQ_INT(om_attrs_get(a, "b")->bool_value, 1);
    ASSERT_EQ_UINT(om_attrs_get(a, "y")->bytes_value.len, 3);
    ASSERT_EQ_UINT(om_attrs_get(a, "y")->bytes_value.data[2], 2);
    ASSERT_EQ_STR(om_attrs_get(a, "n")->string_value, "abc");
    /* Modes: insert leaves a present key, update an absent one. */
    ASSERT_EQ_INT(om_attrs_set_int(a, OM_ATTR_INSERT, "s", 1), 0);
    ASSERT_EQ_INT(om_attrs_get(a, "s")->value_case, OM_ANYVALUE_STRING);
    ASSERT_EQ_INT(om_attrs_set_int(a, OM_ATTR_UPDATE, "absent", 1), 0);
    ASSERT_TRUE(om_attrs_get(a, "absent") == NULL);
    /* Update changes the type too; upsert either way. */
    ASSERT_EQ_INT(om_attrs_set_double(a, OM_ATTR_UPDATE, "s", 0.25), 1);
    ASSERT_TRUE(om_attrs_get(a, "s")->double_value == 0.25);
    ASSERT_EQ_INT(om_attrs_set_bool(a, OM_ATTR_UPSERT, "i", false), 1);
    ASSERT_EQ_INT(om_attrs_get(a, "i")->value_case, OM_ANYVALUE_BOOL);
    ASSERT_EQ_INT(om_attrs_set_str(a, OM_ATTR_UPSERT, "new", "v"), 1);
    ASSERT_EQ_UINT(om_attrs_count(a), base + 7);
    /* A copied AnyValue: a map holding an array, from anywhere (here: the stack). */
    om_anyvalue_t one = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT, two = one, arr = one,
                  map = one;
    one.value_case = OM_ANYVALUE_INT;
    one.int_value = 1;
    two.value_case = OM_ANYVALUE_STRING;
    two.string_value = "two";
    om_anyvalue_t *vals[] = {&one, &two};
    om_arrayvalue_t av = OPENTELEMETRY__PROTO__COMMON__V1__ARRAY_VALUE__INIT;
    av.values = vals;
    av.n_values = 2;
    arr.value_case = OM_ANYVALUE_ARRAY;
    arr.array_value = &av;
    om_keyvalue_t kv = OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT;
    kv.key = "list";
    kv.value = &arr;
    om_keyvalue_t *kvs[] = {&kv};
    om_kvlist_t kl = OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE_LIST__INIT;
    kl.values = kvs;
    kl.n_values = 1;
    map.value_case = OM_ANYVALUE_KVLIST;
    map.kvlist_value = &kl;
    ASSERT_EQ_INT(om_attrs_set_value(a, OM_ATTR_UPSERT, "map", &map), 1);
    two.string_value = "changed after"; /* the batch has its own copy */
    const om_anyvalue_t *got = om_attrs_get(a, "map");
    ASSERT_TRUE(got != &map && got->kvlist_value != &kl);
    ASSERT_EQ_STR(got->kvlist_value->values[0]->key, "list");
    ASSERT_EQ_STR(got->kvlist_value->values[0]->value->array_value->values[1]->string_value, "two");
    /* Copying a value of the list into the same list. */
    ASSERT_EQ_INT(om_attrs_set_value(a, OM_ATTR_UPSERT, "map2", om_attrs_get(a, "map")), 1);
    ASSERT_EQ_INT(om_attrs_set_value(a, OM_ATTR_UPDATE, "map2", om_attrs_get(a, "map2")), 1);
    ASSERT_EQ_INT(om_attrs_get(a, "map2")->kvlist_value->values[0]->value->array_value->n_values,
                  2);
    /* Delete, and delete of what is absent. */
    ASSERT_EQ_INT(om_attrs_delete(a, "d"), 1);
    ASSERT_EQ_INT(om_attrs_delete(a, "d"), 0);
    ASSERT_TRUE(om_attrs_get(a, "d") == NULL);
    ASSERT_EQ_UINT(om_attrs_count(a), base + 8);
    for (size_t i = 0; i < om_attrs_count(a); i++) {
        ASSERT_TRUE(strcmp(om_attrs_at(a, i)->key, "d") != 0);
    }
}

typedef struct per_level {
    const char *tag;
    int failed;
} per_level_t;

static int exercise_item(om_item_t *it, void *arg)
{
    per_level_t *p = arg;
    int before = om_test_failed_now;
    om_test_failed_now = 0;
    exercise_list(&it->attrs, p->tag);
    p->failed += om_test_failed_now;
    om_test_failed_now = before;
    return OM_KEEP;
}

/* The value "tag" of attribute s wherever exercise_list ran, through an encode and decode. */
static int check_item(om_item_t *it, void *arg)
{
    per_level_t *p = arg;
    const om_anyvalue_t *v = om_attrs_get(&it->attrs, "s");
    const om_anyvalue_t *m = om_attrs_get(&it->attrs, "map2");
    bool ok = v != NULL && v->double_value == 0.25 && om_attrs_get(&it->attrs, "d") == NULL &&
              m != NULL && m->value_case == OM_ANYVALUE_KVLIST &&
              om_attrs_get(&it->attrs, "new") != NULL && om_attrs_count(&it->attrs) >= 8;
    p->failed += !ok;
    return OM_KEEP;
}

/* Every attribute location: resource, scope, span, span event, metric metadata, data points
 * of each type, log record. */
static void test_attributes_everywhere(void)
{
    struct {
        om_signal_t sig;
        om_level_t level;
    } where[] = {
        {OM_SIG_TRACES, OM_LEVEL_RESOURCE}, {OM_SIG_TRACES, OM_LEVEL_SCOPE},
        {OM_SIG_TRACES, OM_LEVEL_SPAN},     {OM_SIG_TRACES, OM_LEVEL_SPAN_EVENT},
        {OM_SIG_METRICS, OM_LEVEL_METRIC},  {OM_SIG_METRICS, OM_LEVEL_DATAPOINT},
        {OM_SIG_LOGS, OM_LEVEL_LOG},        {OM_SIG_LOGS, OM_LEVEL_SCOPE},
    };
    for (size_t w = 0; w < sizeof where / sizeof where[0]; w++) {
        om_batch_t *b = om_testdata_wire(sample(where[w].sig));
        size_t items = b->items;
        ASSERT_EQ_INT(om_batch_edit(&b, NULL), 0);
        per_level_t p = {.tag = "t"};
        ASSERT_EQ_INT(om_batch_walk(&b, where[w].level, exercise_item, &p, NULL), 0);
        ASSERT_EQ_INT(p.failed, 0);
        ASSERT_EQ_UINT(b->items, items);
        om_batch_t *back = om_testdata_wire(om_batch_ref(b));
        ASSERT_EQ_INT(om_batch_walk(&back, where[w].level, check_item, &p, NULL), 0);
        ASSERT_EQ_INT(p.failed, 0);
        ASSERT_EQ_STR(om_testdata_describe(back), om_testdata_describe(b));
        om_batch_release(back);
        om_batch_release(b);
    }
}

/* A resource or scope entry without its Resource / InstrumentationScope gets one when an
 * attribute is set on it; reading and deleting make nothing. */
static void test_absent_resource_and_scope_are_made_on_set(void)
{
    om_batch_t *b = om_testdata_otlp("span a; span b");
    ASSERT_TRUE(b->traces->resource_spans[0]->resource == NULL);
    ASSERT_EQ_INT(om_batch_edit(&b, NULL), 0);
    om_resource_spans_t *rs = b->traces->resource_spans[0];
    ASSERT_TRUE(rs->resource == NULL && rs->scope_spans[0]->scope == NULL);
    om_attrs_t res = {.batch = b, .absent_resource = &rs->resource};
    ASSERT_TRUE(om_attrs_get(&res, "x") == NULL);
    ASSERT_EQ_UINT(om_attrs_count(&res), 0);
    ASSERT_EQ_INT(om_attrs_delete(&res, "x"), 0);
    ASSERT_EQ_INT(om_attrs_set_int(&res, OM_ATTR_UPDATE, "x", 1), 0);
    ASSERT_TRUE(rs->resource == NULL);
    ASSERT_EQ_INT(om_attrs_set_str(&res, OM_ATTR_INSERT, "service.name", "made"), 1);
    ASSERT_TRUE(rs->resource != NULL);
    om_attrs_t scope = {.batch = b, .absent_scope = &rs->scope_spans[0]->scope};
    ASSERT_EQ_INT(om_attrs_set_bool(&scope, OM_ATTR_UPSERT, "s", true), 1);
    ASSERT_TRUE(rs->scope_spans[0]->scope != NULL);
    ASSERT_EQ_STR(round_trip(b), "(made [: a b])");
    /* A handle made while it was absent finds the one made since. */
    om_attrs_t late = {.batch = b, .absent_scope = &rs->scope_spans[0]->scope};
    ASSERT_EQ_UINT(om_attrs_count(&late), 1);
    om_batch_release(b);

    /* The same through a walk at the resource level: it->attrs is the resource's. */
    b = om_testdata_otlp("span a");
    ASSERT_EQ_INT(om_batch_edit(&b, NULL), 0);
    per_level_t p = {.tag = "r"};
    ASSERT_EQ_INT(om_batch_walk(&b, OM_LEVEL_RESOURCE, exercise_item, &p, NULL), 0);
    ASSERT_EQ_INT(p.failed, 0);
    ASSERT_EQ_INT(om_batch_walk(&b, OM_LEVEL_SCOPE, exercise_item, &p, NULL), 0);
    ASSERT_EQ_INT(p.failed, 0);
    ASSERT_EQ_UINT(b->traces->resource_spans[0]->resource->n_attributes, 8);
    ASSERT_EQ_UINT(b->traces->resource_spans[0]->scope_spans[0]->scope->n_attributes, 8);
    om_batch_release(b);
}

/* Many inserts into one list copy its array a logarithmic number of times. */
static void test_inserts_grow_a_list_geometrically(void)
{
    om_batch_t *b = om_testdata_otlp("span a x=1");
    ASSERT_EQ_INT(om_batch_edit(&b, NULL), 0);
    om_span_t *sp = b->traces->resource_spans[0]->scope_spans[0]->spans[0];
    om_attrs_t a = OM_ATTRS(b, sp);
    size_t used = om_arena_used(b->arenas[0]);
    /* 250 fit in the edit arena's OM_BATCH_EDIT_ROOM. */
    for (int i = 0; i < 250; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", i);
        ASSERT_EQ_INT(om_attrs_set_int(&a, OM_ATTR_INSERT, key, i), 1);
    }
    ASSERT_EQ_UINT(sp->n_attributes, 251);
    ASSERT_EQ_INT(om_attrs_get(&a, "k249")->int_value, 249);
    /* Each insert: a KeyValue, an AnyValue, a key (about 150 bytes); the arrays add at most
     * 4 x 8 bytes per entry when they double. */
    ASSERT_TRUE(om_arena_used(b->arenas[0]) - used < 250 * (150 + 32));
    /* Updating a number in place allocates nothing. */
    used = om_arena_used(b->arenas[0]);
    ASSERT_EQ_INT(om_attrs_set_int(&a, OM_ATTR_UPDATE, "k200", -1), 1);
    ASSERT_EQ_UINT(om_arena_used(b->arenas[0]), used);
    om_batch_release(b);
}

/* ---- the example of om.h ----------------------------------------------------------------- */

typedef struct my_proc {
    const char *env;
    om_consumer_t next;
} my_proc_t;

static int drop_health(om_item_t *it, void *arg)
{
    (void)arg;
    const om_anyvalue_t *v = om_attrs_get(&it->attrs, "http.route");
    bool health =
        v != NULL && v->value_case == OM_ANYVALUE_STRING && strcmp(v->string_value, "/health") == 0;
    return health ? OM_DROP : OM_KEEP;
}

static int tag(om_item_t *it, void *arg)
{
    const my_proc_t *p = arg;
    int rc = om_attrs_set_str(&it->attrs, OM_ATTR_UPSERT, "env", p->env);
    return rc < 0 ? rc : OM_KEEP;
}

static int my_consume(void *self, om_batch_t *b)
{
    my_proc_t *p = self;
    int rc = om_batch_walk(&b, OM_LEVEL_SPAN, drop_health, p, NULL);
    if (rc >= 0 && b->items > 0) {
        rc = om_batch_edit(&b, NULL);
    }
    if (rc >= 0 && b->items > 0) {
        rc = om_batch_walk(&b, OM_LEVEL_SPAN, tag, p, NULL);
    }
    if (rc < 0) {
        om_batch_release(b);
        return rc;
    }
    return om_consumer_consume(&p->next, b); /* b->items is right */
}

static om_batch_t *delivered;

static int deliver(void *self, om_batch_t *b)
{
    (void)self;
    delivered = b;
    return 0;
}

static void test_the_example_of_om_h(void)
{
    my_proc_t p = {.env = "prod", .next = {.consume = deliver}};
    om_batch_t *b = om_testdata_wire(om_testdata_otlp(
        "resource service.name=a; span GET http.route=/api; span health http.route=/health"));
    om_batch_t *other = om_batch_ref(b);
    ASSERT_EQ_INT(my_consume(&p, b), 0);
    ASSERT_EQ_STR(round_trip(delivered), "(a [-: GET])");
    ASSERT_ITEMS(delivered, 1);
    om_attrs_t a =
        OM_ATTRS(delivered, delivered->traces->resource_spans[0]->scope_spans[0]->spans[0]);
    ASSERT_EQ_STR(om_attrs_get(&a, "env")->string_value, "prod");
    ASSERT_EQ_STR(om_testdata_describe(other), "(a [-: GET health])");
    om_batch_release(delivered);
    om_batch_release(other);
}

/* ---- fan-out order ----------------------------------------------------------------------- */

typedef struct fake {
    const char *name;
    bool mutates, hold; /* hold: keep the reference (as a queue would) */
    om_strbuf_t *log;
    om_batch_t *held;
    om_batch_t *original;
    bool copied; /* a mutating fake: om_batch_edit had to copy */
} fake_t;

static int fake_consume(void *self, om_batch_t *b)
{
    fake_t *f = self;
    om_strbuf_printf(f->log, "%s%s(refs %u)", f->log->len > 0 ? " " : "", f->name, b->refs);
    if (f->mutates) {
        int rc = om_batch_edit(&b, NULL);
        f->copied = b != f->original;
        om_attrs_t a = OM_ATTRS(b, b->logs->resource_logs[0]->resource);
        rc = rc == 0 ? om_attrs_set_str(&a, OM_ATTR_UPSERT, "service.name", f->name) : rc;
        om_batch_release(b);
        return rc == 1 ? 0 : OM_EINVAL;
    }
    if (f->hold) {
        f->held = b;
        return 0;
    }
    om_batch_release(b);
    return 0;
}

/* Read-only consumers get the batch first; the last mutating one gets the original and, once
 * the others are done with it, changes it without a copy. */
static void test_fanout_hands_mutating_consumers_the_batch_last(void)
{
    om_strbuf_t log;
    om_strbuf_init(&log, 0);
    fake_t fakes[4] = {
        {.name = "m1", .mutates = true},
        {.name = "r1"},
        {.name = "m2", .mutates = true},
        {.name = "r2"},
    };
    om_consumer_t list[4];
    bool mutates[4];
    for (int i = 0; i < 4; i++) {
        fakes[i].log = &log;
        list[i] = (om_consumer_t){.self = &fakes[i], .consume = fake_consume};
        mutates[i] = fakes[i].mutates;
    }
    om__fanout_t *f = om__fanout_new(list, mutates, 4);
    ASSERT_TRUE(f != NULL);
    om_batch_t *b = om_testdata_wire(om_testdata_otlp("resource service.name=orig; log x"));
    for (int i = 0; i < 4; i++) {
        fakes[i].original = b;
    }
    ASSERT_EQ_INT(om__fanout_consume(f, b), 0);
    /* The read-only ones released theirs at once: the last mutating consumer holds it alone. */
    ASSERT_EQ_STR(log.data, "r1(refs 2) r2(refs 2) m1(refs 2) m2(refs 1)");
    ASSERT_TRUE(fakes[2].copied == false);
    ASSERT_TRUE(fakes[0].copied == true); /* m2 still held it */
    om__fanout_free(f);

    /* A read-only consumer that keeps the batch (a queue): the mutating one copies, and the
     * kept batch is not changed. */
    om_strbuf_reset(&log);
    fake_t keep = {.name = "queue", .hold = true, .log = &log};
    fake_t mut = {.name = "m", .mutates = true, .log = &log};
    om_consumer_t two[2] = {{.self = &mut, .consume = fake_consume},
                            {.self = &keep, .consume = fake_consume}};
    bool two_mut[2] = {true, false};
    f = om__fanout_new(two, two_mut, 2);
    b = om_testdata_wire(om_testdata_otlp("resource service.name=orig; log x"));
    size_t len;
    uint8_t *before = bytes_of(b, &len);
    mut.original = b;
    ASSERT_EQ_INT(om__fanout_consume(f, b), 0);
    ASSERT_EQ_STR(log.data, "queue(refs 2) m(refs 2)");
    ASSERT_TRUE(mut.copied);
    ASSERT_TRUE(keep.held == b && b->refs == 1);
    ASSERT_TRUE(encodes_to(keep.held, before, len));
    ASSERT_EQ_STR(om_testdata_describe(keep.held), "(orig [-: x])");
    om_batch_release(keep.held);
    free(before);
    om__fanout_free(f);

    /* Only read-only consumers: config order, as before. */
    om_strbuf_reset(&log);
    fake_t r[3] = {
        {.name = "a", .log = &log}, {.name = "b", .log = &log}, {.name = "c", .log = &log}};
    om_consumer_t three[3];
    bool none[3] = {false, false, false};
    for (int i = 0; i < 3; i++) {
        three[i] = (om_consumer_t){.self = &r[i], .consume = fake_consume};
    }
    f = om__fanout_new(three, none, 3);
    ASSERT_EQ_INT(om__fanout_consume(f, om_testdata_otlp("log x")), 0);
    ASSERT_EQ_STR(log.data, "a(refs 2) b(refs 2) c(refs 1)");
    om__fanout_free(f);
    om_strbuf_free(&log);
}

/* The wire bytes of b packed into an arena copy (for om_batch_set_wire). */
static uint8_t *packed_into(om_batch_t *from, om_arena_t *a, size_t *len)
{
    *len = om_batch_proto_size(from);
    uint8_t *p = om_arena_alloc(a, *len + 1);
    om_batch_proto_pack(from, p);
    return p;
}

/* A processor that rewrites the bytes swaps them in with om_batch_set_wire: only on a batch
 * that is its wire bytes alone; the new bytes are checked and counted. */
static void test_wire_edits_replace_the_bytes(void)
{
    om_err_t err = {0};
    om_batch_t *b = om_testdata_wire(om_testdata_otlp("span a; span b"));
    ASSERT_TRUE(om_batch_wire_editable(b));
    om_batch_t *other = om_testdata_otlp("resource service.name=x; span c; span d; span e");
    size_t len;
    uint8_t *bytes = packed_into(other, b->arenas[0], &len);
    ASSERT_EQ_INT(om_batch_set_wire(b, bytes, len, OM_WIRE_CHECKED, &err), 0);
    ASSERT_EQ_UINT(b->items, 3);
    ASSERT_TRUE(b->raw_valid && b->n_raw == 1 && b->msg == NULL);
    /* Garbage is refused, and the batch stays as it was. */
    uint8_t *junk = om_arena_alloc(b->arenas[0], 4);
    memcpy(junk, "\x0a\x05\x01\x02", 4);
    ASSERT_EQ_INT(om_batch_set_wire(b, junk, 4, OM_WIRE_CHECKED, &err), OM_EINVAL);
    ASSERT_EQ_UINT(b->items, 3);
    ASSERT_EQ_STR(om_testdata_describe(b), "(x [-: c d e])");
    /* Decoded now: no longer editable on the wire. */
    ASSERT_EQ_INT(om_batch_set_wire(b, bytes, len, OM_WIRE_CHECKED, &err), OM_EPERM);
    om_batch_release(b);
    /* Shared: not either. */
    b = om_testdata_wire(om_testdata_otlp("span a"));
    om_batch_ref(b);
    ASSERT_TRUE(!om_batch_wire_editable(b));
    om_batch_release(b);
    /* What would not fit the arena's cap once decoded is refused. */
    om_batch_t *small = NULL;
    uint8_t wire[512];
    om_batch_t *one = om_testdata_otlp("span a");
    size_t wlen = om_batch_proto_size(one);
    om_batch_proto_pack(one, wire);
    ASSERT_EQ_INT(om_batch_decode_proto(OM_SIG_TRACES, wire, wlen, 4096, &small, &err), 0);
    om_batch_t *big = om_testdata_simple(OM_SIG_TRACES, 200, 1);
    size_t blen = om_batch_proto_size(big);
    uint8_t *bb = om_malloc(blen);
    om_batch_proto_pack(big, bb);
    ASSERT_EQ_INT(om_batch_set_wire(small, bb, blen, OM_WIRE_CHECKED, &err), OM_ETOOBIG);
    ASSERT_EQ_UINT(small->items, 1);
    /* Rewritten bytes are taken as they are, with the counts they replace; the decoding bound
     * grows with them, so a rewrite that would not fit the cap decoded is still refused. */
    om_batch_t *r = NULL;
    ASSERT_EQ_INT(om_batch_decode_proto(OM_SIG_TRACES, wire, wlen, 0, &r, &err), 0);
    uint8_t *same = om_arena_alloc(r->arenas[0], wlen);
    memcpy(same, wire, wlen);
    ASSERT_EQ_INT(om_batch_set_wire(r, same, wlen, OM_WIRE_REWRITTEN, &err), 0);
    ASSERT_TRUE(r->raw[0].data == same && r->items == 1);
    ASSERT_EQ_STR(om_testdata_describe(r), "(- [-: a])");
    om_batch_release(r);
    ASSERT_EQ_INT(om_batch_decode_proto(OM_SIG_TRACES, wire, wlen, 4096, &r, &err), 0);
    uint8_t *grown = om_arena_alloc(r->arenas[0], 1024);
    memcpy(grown, wire, wlen);
    memset(grown + wlen, 0, 1024 - wlen);
    ASSERT_EQ_INT(om_batch_set_wire(r, grown, 1024, OM_WIRE_REWRITTEN, &err), OM_ETOOBIG);
    om_batch_release(r);
    om_free(bb);
    om_batch_release(big);
    om_batch_release(one);
    om_batch_release(small);
    om_batch_release(b);
    om_batch_release(other);
}

int main(void)
{
    om_log_set_level(OM_LOG_ERROR);
    OM_RUN(test_otlp_text_builds_what_it_says);
    OM_RUN(test_walk_visits_every_level_with_its_context);
    OM_RUN(test_drops_at_each_level_remove_what_they_empty);
    OM_RUN(test_only_what_a_walk_empties_is_removed);
    OM_RUN(test_a_walk_that_drops_nothing_keeps_the_wire_bytes);
    OM_RUN(test_a_callback_error_stops_the_walk);
    OM_RUN(test_drops_on_a_shared_batch_copy_on_write);
    OM_RUN(test_counts_follow_every_change);
    OM_RUN(test_edit_is_in_place_when_held_alone);
    OM_RUN(test_a_copy_has_a_cap_and_edits_stop_at_it);
    OM_RUN(test_changes_need_an_edited_batch);
    OM_RUN(test_attributes_everywhere);
    OM_RUN(test_absent_resource_and_scope_are_made_on_set);
    OM_RUN(test_inserts_grow_a_list_geometrically);
    OM_RUN(test_the_example_of_om_h);
    OM_RUN(test_fanout_hands_mutating_consumers_the_batch_last);
    OM_RUN(test_wire_edits_replace_the_bytes);
    return om_test_summary();
}
