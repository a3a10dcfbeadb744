/* debug_test.c: the debug exporter's output for each verbosity, compared with the text
 * otelcol's debug exporter prints for the same data (its normal and otlptext tests), plus
 * sampling, value formatting and the lifecycle. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "debug.h"
#include "om_test.h"
#include "om_testdata.h"

extern const om_factory_t exp_debug_factory;

/* ---- capturing stderr -------------------------------------------------------------------- */

static int saved_stderr = -1;
static FILE *capture_file;

static bool capture_begin(void)
{
    fflush(stderr);
    capture_file = tmpfile();
    saved_stderr = dup(2);
    return capture_file != NULL && saved_stderr >= 0 && dup2(fileno(capture_file), 2) >= 0;
}

/* Restores stderr; returns what was written meanwhile (malloc'd, NUL-terminated). */
static char *capture_end(void)
{
    fflush(stderr);
    dup2(saved_stderr, 2);
    close(saved_stderr);
    long n = ftell(capture_file);
    char *out = malloc(n > 0 ? (size_t)n + 1 : 1);
    if (out != NULL) {
        rewind(capture_file);
        size_t got = n > 0 ? fread(out, 1, (size_t)n, capture_file) : 0;
        out[got] = '\0';
    }
    fclose(capture_file);
    return out;
}

static size_t count_of(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(hay, needle); p != NULL; p = strstr(p + 1, needle)) {
        n++;
    }
    return n;
}

/* ---- an exporter ------------------------------------------------------------------------- */

typedef struct fixture {
    uv_loop_t loop;
    om_host_t host;
    exp_debug_cfg_t cfg;
    void *self;
    bool done;
} fixture_t;

static void on_done(void *arg)
{
    ((fixture_t *)arg)->done = true;
}

static bool setup(fixture_t *f, int verbosity, int64_t initial, int64_t thereafter)
{
    memset(f, 0, sizeof *f);
    if (uv_loop_init(&f->loop) != 0) {
        return false;
    }
    om_test_host_init(&f->host, &f->loop);
    f->cfg = (exp_debug_cfg_t){verbosity, initial, thereafter};
    om_create_args_t a = {.cfg = &f->cfg,
                          .id = "debug",
                          .log_name = "exporter/debug",
                          .host = &f->host,
                          .signals = OM_SIG_ALL};
    om_err_t err = {0};
    return exp_debug_factory.create(&a, &f->self, &err) == 0 &&
           exp_debug_factory.start(f->self, &err) == 0;
}

static int teardown(fixture_t *f)
{
    if (!f->done) {
        exp_debug_factory.shutdown(f->self, on_done, f);
    }
    exp_debug_factory.destroy(f->self);
    om_test_host_close(&f->host);
    return uv_loop_close(&f->loop);
}

static int consume(fixture_t *f, om_batch_t *b)
{
    switch (b->signal) {
    case OM_SIG_METRICS:
        return exp_debug_factory.consume_metrics(f->self, b);
    case OM_SIG_LOGS:
        return exp_debug_factory.consume_logs(f->self, b);
    default:
        return exp_debug_factory.consume_traces(f->self, b);
    }
}

/* The text a formatter writes for b (malloc'd). */
static char *text_of(const om_batch_t *b, bool detailed)
{
    om_strbuf_t sb;
    om_strbuf_init(&sb, 0);
    exp_debug_sink_t s = {.sb = &sb};
    if (detailed) {
        exp_debug_detailed(&s, b);
    } else {
        exp_debug_normal(&s, b);
    }
    char *out = om_strbuf_steal(&sb, NULL);
    return out != NULL ? out : strdup("");
}

/* ---- batches matching otelcol's test data ------------------------------------------------ */

/* otelcol's normal/traces_test.go "one span with resource and scope attributes". */
static om_batch_t *normal_trace_batch(void)
{
    return om_testdata_otlp(
        "resource schema:https://opentelemetry.io/resource-schema-url "
        "resourceKey1=resourceValue1 resourceKey2=false\n"
        "scope scope-name@1.2.3 schema:http://opentelemetry.io/scope-schema-url "
        "scopeKey1=scopeValue1 scopeKey2=true\n"
        "span span-name trace:0102030405060708090a0b0c0d0e0f10 "
        "id:1112131415161718 key1=value1 key2=value2");
}

/* The first span of otelcol's otlptext testdata/traces/two_spans.out. */
static om_batch_t *detailed_trace_batch(void)
{
    return om_testdata_otlp("resource resource-attr=resource-attr-val-1\n"
                            "scope ''\n"
                            "span operationA trace:0102030405060708090a0b0c0d0e0f10 "
                            "id:1112131415161718 state:ot=th:0 start:1581452772000000321 "
                            "end:1581452773000000789 dropped_attrs:1 dropped_events:1 "
                            "status:error message:status-cancelled\n"
                            "event event-with-attr time:1581452773000000123 dropped_attrs:2 "
                            "span-event-attr=span-event-attr-val\n"
                            "event event time:1581452773000000123 dropped_attrs:2");
}

static const char DETAILED_TRACE[] =
    "ResourceSpans #0\n"
    "Resource SchemaURL: \n"
    "Resource attributes:\n"
    "     -> resource-attr: Str(resource-attr-val-1)\n"
    "ScopeSpans #0\n"
    "ScopeSpans SchemaURL: \n"
    "InstrumentationScope  \n"
    "Span #0\n"
    "    Trace ID       : 0102030405060708090a0b0c0d0e0f10\n"
    "    Parent ID      : \n"
    "    ID             : 1112131415161718\n"
    "    Name           : operationA\n"
    "    Kind           : Unspecified\n"
    "    TraceState     : ot=th:0\n"
    "    Start time     : 2020-02-11 20:26:12.000000321 +0000 UTC\n"
    "    End time       : 2020-02-11 20:26:13.000000789 +0000 UTC\n"
    "    Status code    : Error\n"
    "    Status message : status-cancelled\n"
    "    DroppedAttributesCount: 1\n"
    "    DroppedEventsCount: 1\n"
    "    DroppedLinksCount: 0\n"
    "Events:\n"
    "SpanEvent #0\n"
    "     -> Name: event-with-attr\n"
    "     -> Timestamp: 2020-02-11 20:26:13.000000123 +0000 UTC\n"
    "     -> DroppedAttributesCount: 2\n"
    "     -> Attributes::\n"
    "          -> span-event-attr: Str(span-event-attr-val)\n"
    "SpanEvent #1\n"
    "     -> Name: event\n"
    "     -> Timestamp: 2020-02-11 20:26:13.000000123 +0000 UTC\n"
    "     -> DroppedAttributesCount: 2\n";

/* otelcol's otlptext testdata/logs/one_record.out. */
static om_batch_t *detailed_log_batch(void)
{
    return om_testdata_otlp("resource resource-attr=resource-attr-val-1\n"
                            "scope\n"
                            "log 'This is a log message' time:1581452773000000789 text:Info "
                            "severity:info app=server instance_num=1 "
                            "trace:08040201000000000000000000000000 span:0102040800000000");
}

static const char DETAILED_LOG[] = "ResourceLog #0\n"
                                   "Resource SchemaURL: \n"
                                   "Resource attributes:\n"
                                   "     -> resource-attr: Str(resource-attr-val-1)\n"
                                   "ScopeLogs #0\n"
                                   "ScopeLogs SchemaURL: \n"
                                   "InstrumentationScope  \n"
                                   "LogRecord #0\n"
                                   "ObservedTimestamp: 1970-01-01 00:00:00 +0000 UTC\n"
                                   "Timestamp: 2020-02-11 20:26:13.000000789 +0000 UTC\n"
                                   "SeverityText: Info\n"
                                   "SeverityNumber: Info(9)\n"
                                   "Body: Str(This is a log message)\n"
                                   "Attributes:\n"
                                   "     -> app: Str(server)\n"
                                   "     -> instance_num: Int(1)\n"
                                   "Trace ID: 08040201000000000000000000000000\n"
                                   "Span ID: 0102040800000000\n"
                                   "Flags: 0\n";

/* ---- tests ------------------------------------------------------------------------------- */

static void test_config_defaults(void)
{
    exp_debug_cfg_t cfg;
    memset(&cfg, 0xff, sizeof cfg);
    om_diags_t d = {0};
    ASSERT_EQ_INT(om_fields_apply(exp_debug_factory.fields, &cfg, NULL, "exporters::debug", &d), 0);
    om_diags_free(&d);
    ASSERT_EQ_INT(cfg.verbosity, EXP_DEBUG_BASIC);
    ASSERT_EQ_INT(cfg.sampling_initial, 2);
    ASSERT_EQ_INT(cfg.sampling_thereafter, 1);
    om_fields_free(exp_debug_factory.fields, &cfg);
}

static void test_basic_summary_lines(void)
{
    fixture_t f;
    ASSERT_TRUE(setup(&f, EXP_DEBUG_BASIC, 2, 1));
    om_testdata_shape_t mshape = {.metrics = 5, .items = 2};
    om_testdata_shape_t lshape = {.resources = 2, .items = 3};
    ASSERT_TRUE(capture_begin());
    int rc1 = consume(&f, om_testdata_simple(OM_SIG_TRACES, 2, 0));
    int rc2 = consume(&f, om_testdata_batch(OM_SIG_METRICS, &mshape));
    int rc3 = consume(&f, om_testdata_batch(OM_SIG_LOGS, &lshape));
    char *out = capture_end();
    ASSERT_EQ_INT(rc1 | rc2 | rc3, 0);
    ASSERT_CONTAINS(out, "\tinfo\tTraces\t{\"otelcol.component.id\": \"debug\", "
                         "\"otelcol.component.kind\": \"exporter\", \"otelcol.signal\": "
                         "\"traces\", \"resource spans\": 1, \"spans\": 2}\n");
    ASSERT_CONTAINS(out, "\tinfo\tMetrics\t{\"otelcol.component.id\": \"debug\", "
                         "\"otelcol.component.kind\": \"exporter\", \"otelcol.signal\": "
                         "\"metrics\", \"resource metrics\": 1, \"metrics\": 5, "
                         "\"data points\": 10}\n");
    ASSERT_CONTAINS(out, "\"otelcol.signal\": \"logs\", \"resource logs\": 2, "
                         "\"log records\": 6}\n");
    /* Basic prints nothing but the summaries: three lines. */
    ASSERT_EQ_UINT(count_of(out, "\n"), 3);
    ASSERT_EQ_INT(out[4], '-'); /* starts with the timestamp, 2026-... */
    free(out);
    ASSERT_EQ_INT(teardown(&f), 0);
}

static void test_normal_traces_text(void)
{
    om_batch_t *b = normal_trace_batch();
    ASSERT_TRUE(b != NULL);
    char *text = text_of(b, false);
    ASSERT_EQ_STR(text, "ResourceTraces #0 [https://opentelemetry.io/resource-schema-url] "
                        "resourceKey1=resourceValue1 resourceKey2=false\n"
                        "ScopeTraces #0 scope-name@1.2.3 [http://opentelemetry.io/"
                        "scope-schema-url] scopeKey1=scopeValue1 scopeKey2=true\n"
                        "span-name 0102030405060708090a0b0c0d0e0f10 1112131415161718 "
                        "key1=value1 key2=value2\n");
    free(text);
    om_batch_release(b);
}

static void test_normal_logs_and_metrics_text(void)
{
    om_batch_t *logs = om_testdata_simple(OM_SIG_LOGS, 2, 7);
    char *text = text_of(logs, false);
    ASSERT_EQ_STR(text, "ResourceLog #0 service.name=svc-0\n"
                        "ScopeLog #0 scope-0@1.0\n"
                        "log-7 seq=7\n"
                        "log-8 seq=8\n");
    free(text);
    om_batch_release(logs);

    om_testdata_shape_t shape = {.metrics = 5, .items = 1};
    om_batch_t *m = om_testdata_batch(OM_SIG_METRICS, &shape);
    text = text_of(m, false);
    ASSERT_EQ_STR(text, "ResourceMetrics #0 service.name=svc-0\n"
                        "ScopeMetrics #0 scope-0@1.0\n"
                        "metric-0-0-0{seq=0} 0\n"
                        "metric-0-0-1{seq=1} 1.5\n"
                        "metric-0-0-2{seq=2} count=3 sum=25 le10=1 2\n"
                        "metric-0-0-3{seq=3} count=3\n"
                        "metric-0-0-4{seq=4} count=2 sum=3.000000 q0.5=1.5\n");
    free(text);
    om_batch_release(m);
}

static void test_detailed_traces_text(void)
{
    om_batch_t *b = detailed_trace_batch();
    ASSERT_TRUE(b != NULL);
    char *text = text_of(b, true);
    ASSERT_EQ_STR(text, DETAILED_TRACE);
    free(text);
    om_batch_release(b);
}

static void test_detailed_logs_text(void)
{
    om_batch_t *b = detailed_log_batch();
    ASSERT_TRUE(b != NULL);
    char *text = text_of(b, true);
    ASSERT_EQ_STR(text, DETAILED_LOG);
    free(text);
    om_batch_release(b);
}

static void test_detailed_metrics_text(void)
{
    om_testdata_shape_t shape = {.metrics = 5, .items = 1};
    om_batch_t *m = om_testdata_batch(OM_SIG_METRICS, &shape);
    char *text = text_of(m, true);
    ASSERT_CONTAINS(text, "ResourceMetrics #0\nResource SchemaURL: \nResource attributes:\n"
                          "     -> service.name: Str(svc-0)\nScopeMetrics #0\n"
                          "ScopeMetrics SchemaURL: \nInstrumentationScope scope-0 1.0\n"
                          "Metric #0\nDescriptor:\n     -> Name: metric-0-0-0\n"
                          "     -> Description: a test metric\n     -> Unit: 1\n"
                          "     -> DataType: Gauge\nNumberDataPoints #0\n"
                          "Data point attributes:\n     -> seq: Int(0)\n"
                          "StartTimestamp: 2020-02-11 20:26:12 +0000 UTC\n"
                          "Timestamp: 2020-02-11 20:26:12 +0000 UTC\nValue: 0\n");
    ASSERT_CONTAINS(text, "     -> DataType: Sum\n     -> IsMonotonic: true\n"
                          "     -> AggregationTemporality: Cumulative\nNumberDataPoints #0\n");
    ASSERT_CONTAINS(text, "Timestamp: 2020-02-11 20:26:12.000000001 +0000 UTC\n"
                          "Value: 1.500000\n");
    ASSERT_CONTAINS(text, "     -> DataType: Histogram\n     -> AggregationTemporality: Delta\n"
                          "HistogramDataPoints #0\n");
    ASSERT_CONTAINS(text, "Count: 3\nSum: 25.000000\nExplicitBounds #0: 10.000000\n"
                          "Buckets #0, Count: 1\nBuckets #1, Count: 2\n");
    ASSERT_CONTAINS(text, "ExponentialHistogramDataPoints #0\n");
    ASSERT_CONTAINS(text, "Count: 3\nBucket [0, 0], Count: 1\n"
                          "Bucket (1.000000, 1.414214], Count: 1\n"
                          "Bucket (1.414214, 2.000000], Count: 1\n");
    ASSERT_CONTAINS(text, "SummaryDataPoints #0\n");
    ASSERT_CONTAINS(text, "Count: 2\nSum: 3.000000\n"
                          "QuantileValue #0: Quantile 0.500000, Value 1.500000\n");
    free(text);
    om_batch_release(m);
}

/* The detailed entry on stderr: the summary line, then the text as the message of a second
 * entry whose component fields close it on the last line. */
static void test_detailed_entry_on_stderr(void)
{
    fixture_t f;
    ASSERT_TRUE(setup(&f, EXP_DEBUG_DETAILED, 2, 1));
    ASSERT_TRUE(capture_begin());
    int rc = consume(&f, detailed_log_batch());
    char *out = capture_end();
    ASSERT_EQ_INT(rc, 0);
    ASSERT_CONTAINS(out, "\tinfo\tLogs\t{");
    ASSERT_CONTAINS(out, "\tinfo\tResourceLog #0\nResource SchemaURL: \n");
    ASSERT_CONTAINS(out, "Flags: 0\n\t{\"otelcol.component.id\": \"debug\", "
                         "\"otelcol.component.kind\": \"exporter\", \"otelcol.signal\": "
                         "\"logs\"}\n");
    free(out);
    ASSERT_EQ_INT(teardown(&f), 0);
}

static void test_normal_entry_on_stderr(void)
{
    fixture_t f;
    ASSERT_TRUE(setup(&f, EXP_DEBUG_NORMAL, 2, 1));
    ASSERT_TRUE(capture_begin());
    int rc = consume(&f, om_testdata_simple(OM_SIG_TRACES, 2, 0));
    char *out = capture_end();
    ASSERT_EQ_INT(rc, 0);
    ASSERT_CONTAINS(out, "\tinfo\tTraces\t{");
    ASSERT_CONTAINS(out, "\tinfo\tResourceTraces #0 service.name=svc-0\n"
                         "ScopeTraces #0 scope-0@1.0\n"
                         "span-0   seq=0\n" /* all-zero ids print as "" */
                         "span-1 00000000000000000000000000000001 0000000000000001 seq=1\n"
                         "\t{\"otelcol.component.id\": \"debug\", \"otelcol.component.kind\": "
                         "\"exporter\", \"otelcol.signal\": \"traces\"}\n");
    free(out);
    ASSERT_EQ_INT(teardown(&f), 0);
}

/* A large batch is written in pieces and arrives whole. */
static void test_large_batch_complete(void)
{
    fixture_t f;
    ASSERT_TRUE(setup(&f, EXP_DEBUG_DETAILED, 2, 1));
    ASSERT_TRUE(capture_begin());
    int rc = consume(&f, om_testdata_simple(OM_SIG_TRACES, 3000, 0));
    char *out = capture_end();
    ASSERT_EQ_INT(rc, 0);
    ASSERT_TRUE(strlen(out) > 3 * 65536);
    ASSERT_EQ_UINT(count_of(out, "\nSpan #"), 3000);
    ASSERT_CONTAINS(out, "Span #2999\n");
    ASSERT_CONTAINS(out, "    Name           : span-2999\n");
    free(out);
    ASSERT_EQ_INT(teardown(&f), 0);
}

static ProtobufCBinaryData bytes(om_arena_t *a, const uint8_t *p, size_t n)
{
    uint8_t *d = om_arena_alloc(a, n);
    memcpy(d, p, n);
    return (ProtobufCBinaryData){.len = n, .data = d};
}

static void test_value_formatting(void)
{
    om_batch_t *b = om_testdata_simple(OM_SIG_LOGS, 1, 0);
    om_arena_t *a = b->arenas[0];
    om_log_record_t *lr = b->logs->resource_logs[0]->scope_logs[0]->log_records[0];
    /* body: {"z": [1, 2.5, true, null, "aGk="], "a": "x<y", "a": "dup"} */
    om_anyvalue_t *arr =
        om_testdata_msg(a, &opentelemetry__proto__common__v1__any_value__descriptor);
    om_arrayvalue_t *av =
        om_testdata_msg(a, &opentelemetry__proto__common__v1__array_value__descriptor);
    om_anyvalue_t **vals = om_arena_alloc(a, 5 * sizeof *vals);
    om_keyvalue_t *tmp[5] = {om_testdata_kv_int(a, "", 1), om_testdata_kv_int(a, "", 0),
                             om_testdata_kv_int(a, "", 0), om_testdata_kv_int(a, "", 0),
                             om_testdata_kv_str(a, "", "")};
    for (int i = 0; i < 5; i++) {
        vals[i] = tmp[i]->value;
    }
    vals[1]->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
    vals[1]->double_value = 2.5;
    vals[2]->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
    vals[2]->bool_value = 1;
    vals[3]->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE__NOT_SET;
    vals[4]->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE;
    vals[4]->bytes_value = bytes(a, (const uint8_t *)"hi", 2);
    av->values = vals;
    av->n_values = 5;
    arr->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE;
    arr->array_value = av;
    om_kvlist_t *kl =
        om_testdata_msg(a, &opentelemetry__proto__common__v1__key_value_list__descriptor);
    om_keyvalue_t **kvs = om_arena_alloc(a, 3 * sizeof *kvs);
    kvs[0] = om_testdata_kv_str(a, "z", "");
    kvs[0]->value = arr;
    kvs[1] = om_testdata_kv_str(a, "a", "x<y");
    kvs[2] = om_testdata_kv_str(a, "a", "dup\n");
    kl->values = kvs;
    kl->n_values = 3;
    lr->body->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE;
    lr->body->kvlist_value = kl;
    char *text = text_of(b, true);
    ASSERT_CONTAINS(text, "Body: Map({\"a\":\"dup\\n\",\"z\":[1,2.5,true,null,\"aGk=\"]})\n");
    free(text);
    om_batch_release(b);

    char buf[64];
    const struct {
        double v;
        char style;
        const char *want;
    } cases[] = {
        {1e6, 'v', "1e+06"},
        {123456, 'v', "123456"},
        {0.0001, 'v', "0.0001"},
        {0.00001, 'v', "1e-05"},
        {2.5, 'v', "2.5"},
        {-0.0, 'v', "-0"},
        {1e21, 'j', "1e+21"},
        {1e-7, 'j', "1e-7"},
        {123456789, 'j', "123456789"},
        {0.1, 'j', "0.1"},
        {1.23, 'f', "1.230000"},
        {1.0 / 0.0, 'f', "+Inf"},
        {-1.0 / 0.0, 'v', "-Inf"},
        {0.0 / 0.0, 'j', "NaN"},
        {1e20, 'j', "100000000000000000000"},
        {1234567.5, 'v', "1.2345675e+06"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        exp_debug_fmt_double(buf, sizeof buf, cases[i].v, cases[i].style);
        ASSERT_EQ_STR(buf, cases[i].want);
    }
    exp_debug_fmt_time(buf, sizeof buf, 0);
    ASSERT_EQ_STR(buf, "1970-01-01 00:00:00 +0000 UTC");
    exp_debug_fmt_time(buf, sizeof buf, UINT64_C(1581452772000000321));
    ASSERT_EQ_STR(buf, "2020-02-11 20:26:12.000000321 +0000 UTC");
    exp_debug_fmt_time(buf, sizeof buf, UINT64_C(1581452772500000000));
    ASSERT_EQ_STR(buf, "2020-02-11 20:26:12.5 +0000 UTC");
}

/* zap's sampler: in one second, entries 1 and 2, then every 3rd (5, 8) are printed. */
static void test_sampling(void)
{
    fixture_t f;
    ASSERT_TRUE(setup(&f, EXP_DEBUG_BASIC, 2, 3));
    ASSERT_TRUE(capture_begin());
    for (int i = 0; i < 10; i++) {
        consume(&f, om_testdata_simple(OM_SIG_TRACES, 1, 0));
    }
    consume(&f, om_testdata_simple(OM_SIG_LOGS, 1, 0)); /* a different message */
    char *out = capture_end();
    ASSERT_EQ_UINT(count_of(out, "\tTraces\t"), 4);
    ASSERT_EQ_UINT(count_of(out, "\tLogs\t"), 1);
    free(out);
    ASSERT_EQ_INT(teardown(&f), 0);
}

static void test_quiet_above_info_and_lifecycle(void)
{
    fixture_t f;
    ASSERT_TRUE(setup(&f, EXP_DEBUG_DETAILED, 2, 1));
    om_log_set_level(OM_LOG_WARN);
    ASSERT_TRUE(capture_begin());
    int rc = consume(&f, om_testdata_simple(OM_SIG_TRACES, 2, 0));
    char *out = capture_end();
    om_log_set_level(OM_LOG_INFO);
    ASSERT_EQ_INT(rc, 0);
    ASSERT_EQ_STR(out, "");
    free(out);
    /* An empty batch prints its summary and no second entry. */
    ASSERT_TRUE(capture_begin());
    rc = consume(&f, om_batch_new(OM_SIG_LOGS, 0));
    out = capture_end();
    ASSERT_EQ_INT(rc, 0);
    ASSERT_EQ_UINT(count_of(out, "\n"), 1);
    free(out);
    exp_debug_factory.shutdown(f.self, on_done, &f);
    ASSERT_TRUE(f.done);
    ASSERT_EQ_INT(consume(&f, om_testdata_simple(OM_SIG_TRACES, 1, 0)), OM_ESHUTDOWN);
    ASSERT_EQ_INT(teardown(&f), 0);
}

/* STYLE.md §10: the lifecycle every factory gets. */
static void test_generic_lifecycle(void)
{
    om_test_lifecycle(&exp_debug_factory, NULL);
}

int main(void)
{
    OM_RUN(test_config_defaults);
    OM_RUN(test_basic_summary_lines);
    OM_RUN(test_normal_traces_text);
    OM_RUN(test_normal_logs_and_metrics_text);
    OM_RUN(test_detailed_traces_text);
    OM_RUN(test_detailed_logs_text);
    OM_RUN(test_detailed_metrics_text);
    OM_RUN(test_detailed_entry_on_stderr);
    OM_RUN(test_normal_entry_on_stderr);
    OM_RUN(test_large_batch_complete);
    OM_RUN(test_value_formatting);
    OM_RUN(test_sampling);
    OM_RUN(test_quiet_above_info_and_lifecycle);
    OM_RUN(test_generic_lifecycle);
    return om_test_summary();
}
