/* prom_test.c: the OTLP -> Prometheus translation (src/prom.c) and the exposition writer
 * (src/prom_text.c). The expected values are written from the rules (OpenTelemetry's
 * Prometheus compatibility specification, prometheus/otlptranslator, otelcol-contrib's
 * translators, Go's strconv and pcommon's AsString), not from our output. */
#include <math.h>
#include <stdlib.h>
#include <unistd.h>

#include "om.h"
#include "om_test.h"
#include "om_testdata.h"

/* ------------------------------------------------------------------------------------------ */
/* Types                                                                                      */

static int classify(const char *dsl, om_prom_class_t *c)
{
    om_batch_t *b = om_testdata_otlp("%s", dsl);
    om_metric_t *m = b->metrics->resource_metrics[0]->scope_metrics[0]->metrics[0];
    int rc = om_prom_classify(m, c);
    om_batch_release(b);
    return rc;
}

static void test_classify(void)
{
    static const struct {
        const char *dsl;
        int rc;
        om_prom_type_t type;
        bool delta, monotonic, gauge, exponential;
    } cases[] = {
        {"metric g; point 1", 0, OM_PROM_GAUGE, false, false, true, false},
        {"metric c type:sum monotonic:true temporality:cumulative; point 1", 0, OM_PROM_COUNTER,
         false, true, false, false},
        {"metric u type:sum temporality:cumulative; point 1", 0, OM_PROM_GAUGE, false, false, false,
         false},
        {"metric d type:sum monotonic:true temporality:delta; point 1", 0, OM_PROM_COUNTER, true,
         true, false, false},
        /* A delta sum that may go down has no cumulative form: dropped everywhere. */
        {"metric du type:sum temporality:delta; point 1", OM_ENOTSUP, 0, 0, 0, 0, 0},
        /* Unspecified temporality: dropped (accumulator.go, helper.go). */
        {"metric x type:sum monotonic:true; point 1", OM_ENOTSUP, 0, 0, 0, 0, 0},
        {"metric h type:histogram temporality:cumulative; point count:1", 0, OM_PROM_HISTOGRAM,
         false, false, false, false},
        {"metric hd type:histogram temporality:delta; point count:1", 0, OM_PROM_HISTOGRAM, true,
         false, false, false},
        {"metric e type:exphistogram temporality:cumulative; point count:1", 0, OM_PROM_HISTOGRAM,
         false, false, false, true},
        {"metric s type:summary; point count:1", 0, OM_PROM_SUMMARY, false, false, false, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        om_prom_class_t c;
        int rc = classify(cases[i].dsl, &c);
        if (rc != cases[i].rc) {
            fprintf(stderr, "case %s\n", cases[i].dsl);
        }
        ASSERT_EQ_INT(rc, cases[i].rc);
        if (rc != 0) {
            continue;
        }
        ASSERT_EQ_INT(c.type, cases[i].type);
        ASSERT_EQ_INT(c.delta, cases[i].delta);
        ASSERT_EQ_INT(c.monotonic, cases[i].monotonic);
        ASSERT_EQ_INT(c.otlp_gauge, cases[i].gauge);
        ASSERT_EQ_INT(c.exponential, cases[i].exponential);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Names                                                                                      */

enum { G, C, U, H }; /* OTLP gauge, monotonic sum, non-monotonic sum, histogram */

static void test_metric_names(void)
{
    static const struct {
        const char *ns;
        bool suffixes;
        const char *name, *unit;
        int kind;
        const char *want; /* NULL: refused */
    } cases[] = {
        /* The example: the unit's word is already in the name. */
        {NULL, true, "etl.bytes.read", "By", C, "etl_bytes_read_total"},
        {NULL, true, "http.server.duration", "s", H, "http_server_duration_seconds"},
        {NULL, true, "http.server.duration", "ms", H, "http_server_duration_milliseconds"},
        {NULL, true, "system.cpu.utilization", "1", G, "system_cpu_utilization_ratio"},
        /* _ratio is for OTLP gauges only; "1" adds no word. */
        {NULL, true, "system.cpu.utilization", "1", U, "system_cpu_utilization"},
        {NULL, true, "errors", "1", C, "errors_total"},
        {NULL, true, "queue.ratio", "1", G, "queue_ratio"},
        /* Annotations in braces are no unit. */
        {NULL, true, "http.server.requests", "{request}", C, "http_server_requests_total"},
        {NULL, true, "x", "{packets}/s", G, "x_per_second"},
        {NULL, true, "network.io", "By/s", G, "network_io_bytes_per_second"},
        {NULL, true, "disk.io", "KBy/d", G, "disk_io_kilobytes_per_day"},
        {NULL, true, "speed", "m/s", G, "speed_meters_per_second"},
        {NULL, true, "x", "/s", G, "x_per_second"},
        {NULL, true, "x", "foo/bar", G, "x_foo_per_bar"},
        {NULL, true, "x", "  s ", G, "x_seconds"},
        {NULL, true, "x", "%", G, "x_percent"},
        {NULL, true, "memory.usage", "MiBy", G, "memory_usage_mebibytes"},
        {NULL, true, "temp", "Cel", G, "temp_celsius"},
        {NULL, true, "x", "m/s/s", G, "x_meters_per_s_s"},
        /* total moves to the end, once. */
        {NULL, true, "requests.total", "", C, "requests_total"},
        {NULL, true, "total.requests", "", C, "requests_total"},
        {NULL, true, "seconds.elapsed", "s", G, "seconds_elapsed"},
        {NULL, true, "1st.metric", "", G, "_1st_metric"},
        {NULL, true, "foo:bar.baz", "", G, "foo:bar_baz"},
        {NULL, true, "a__b..c", "", G, "a_b_c"},
        {"ns", true, "metric", "s", G, "ns_metric_seconds"},
        {"ns", true, "1x", "", G, "ns_1x"},
        {NULL, true, "__", "", G, NULL},
        {NULL, true, "...", "", G, NULL},
        {NULL, true, "", "s", G, "seconds"},
        /* Without suffixes: only invalid characters go. */
        {NULL, false, "etl.bytes.read", "By", C, "etl_bytes_read"},
        {NULL, false, "a..b__c", "", G, "a_b__c"},
        {NULL, false, "1abc", "", G, "_1abc"},
        {"my.ns", false, "x.y", "", G, "my_ns_x_y"},
        {"ns", false, "1abc", "", G, "ns_1abc"},
        {NULL, false, "___", "", G, "___"},
        {NULL, false, "...", "", G, NULL},
    };
    om_strbuf_t sb;
    om_strbuf_init(&sb, 0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        om_prom_class_t c = {.type = OM_PROM_GAUGE};
        c.otlp_gauge = cases[i].kind == G;
        c.monotonic = cases[i].kind == C;
        om_strbuf_reset(&sb);
        om_strbuf_puts(&sb, "prefix:"); /* names are appended */
        int rc = om_prom_metric_name(cases[i].ns, cases[i].suffixes, cases[i].name, cases[i].unit,
                                     &c, &sb);
        if (cases[i].want == NULL) {
            ASSERT_EQ_INT(rc, OM_EINVAL);
            ASSERT_EQ_STR(sb.data, "prefix:");
            continue;
        }
        ASSERT_EQ_INT(rc, 0);
        ASSERT_EQ_STR(sb.data + 7, cases[i].want);
    }
    om_strbuf_free(&sb);
}

static void test_label_names(void)
{
    static const struct {
        const char *key, *want; /* want "": dropped */
    } cases[] = {
        {"http.method", "http_method"},
        {"service", "service"},
        {"123abc", "key_123abc"},
        {"9", "key_9"},
        {"_private", "_private"},
        {"__name__", "__name__"},
        {"__a.b__", "__a_b__"},
        {"a..b", "a_b"},
        {"a__b", "a_b"},
        {"a-b-", "a_b_"},
        {"\xc3\xbcn\xc3\xaf", "_n_"},
        {"___", ""},
        {"", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[64];
        size_t n = om_prom_label_name(cases[i].key, strlen(cases[i].key), out, sizeof out);
        ASSERT_EQ_UINT(n, strlen(cases[i].want));
        if (n > 0) {
            ASSERT_EQ_STR(out, cases[i].want);
        }
    }
    char small[16];
    ASSERT_EQ_UINT(om_prom_label_name("abc", 3, small, 8), 3);
    ASSERT_EQ_UINT(om_prom_label_name("abcdef", 6, small, 10), 0); /* cap too small */
}

/* ------------------------------------------------------------------------------------------ */
/* Numbers and values                                                                         */

static void test_format_numbers(void)
{
    static const struct {
        double v;
        const char *g, *f;
    } cases[] = {
        {0, "0", "0"},
        {1, "1", "1"},
        {-1, "-1", "-1"},
        {0.25, "0.25", "0.25"},
        {123456, "123456", "123456"},
        {1e6, "1e+06", "1000000"},
        {1234567, "1.234567e+06", "1234567"},
        {2.5e9, "2.5e+09", "2500000000"},
        {1e-5, "1e-05", "0.00001"},
        {0.0001, "0.0001", "0.0001"},
        {0.1, "0.1", "0.1"},
        {1.0 / 3, "0.3333333333333333", "0.3333333333333333"},
        {2.5e-300, "2.5e-300", NULL},
        {1e21, "1e+21", "1000000000000000000000"},
        {-42.5, "-42.5", "-42.5"},
        {5e-324, "5e-324", NULL},
        {1.7976931348623157e308, "1.7976931348623157e+308", NULL},
        {INFINITY, "+Inf", "+Inf"},
        {-INFINITY, "-Inf", "-Inf"},
        {NAN, "NaN", "NaN"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[OM_PROM_NUM_MAX];
        size_t n = om_prom_format_g(cases[i].v, buf);
        ASSERT_EQ_STR(buf, cases[i].g);
        ASSERT_EQ_UINT(n, strlen(buf));
        if (cases[i].f != NULL) {
            om_prom_format_f(cases[i].v, buf);
            ASSERT_EQ_STR(buf, cases[i].f);
        }
        if (isfinite(cases[i].v)) {
            om_prom_format_f(cases[i].v, buf);
            ASSERT_TRUE(strtod(buf, NULL) == cases[i].v);
        }
    }
    /* Shortest round trip on many values. */
    srand(7);
    for (int i = 0; i < 20000; i++) {
        double v = ldexp((double)rand() / RAND_MAX, rand() % 200 - 100);
        char buf[OM_PROM_NUM_MAX];
        om_prom_format_g(v, buf);
        ASSERT_TRUE(strtod(buf, NULL) == v);
        om_prom_format_f(v, buf);
        ASSERT_TRUE(strtod(buf, NULL) == v);
    }
}

/* The significant digits of a plain decimal ("-0.01230" -> 3). */
static size_t sig_digits(const char *s)
{
    char d[64];
    size_t n = 0;
    for (; *s != '\0' && n < sizeof d; s++) {
        if (*s >= '0' && *s <= '9' && !(n == 0 && *s == '0')) {
            d[n++] = *s;
        }
    }
    while (n > 0 && d[n - 1] == '0') {
        n--;
    }
    return n;
}

/* Decimal values as programs write them (x / 10^k) take a fast path: they must still be the
 * shortest digits that read back, as the general path gives. */
static void test_format_decimals(void)
{
    srand(11);
    for (int i = 0; i < 50000; i++) {
        static const double p10[] = {1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e9, 1e12, 1e15};
        double num = (double)((unsigned)rand() % 2000000u) * (rand() % 3 == 0 ? 1000.0 : 1.0);
        double v = num / p10[rand() % 10] * (rand() % 5 == 0 ? -1 : 1);
        if (i % 7 == 0) {
            v = (double)rand() / 7.0; /* most do not end: the general path */
        }
        char buf[OM_PROM_NUM_MAX], ref[40];
        om_prom_format_f(v, buf);
        ASSERT_TRUE(strtod(buf, NULL) == v);
        size_t p = 1;
        for (; p < 17; p++) {
            snprintf(ref, sizeof ref, "%.*e", (int)p - 1, v);
            if (strtod(ref, NULL) == v) {
                break;
            }
        }
        if (sig_digits(buf) != (v == 0 ? 0 : p)) {
            fprintf(stderr, "%.17g: %s, shortest has %zu digits\n", v, buf, p);
        }
        ASSERT_EQ_UINT(sig_digits(buf), v == 0 ? 0 : p);
        om_prom_format_g(v, buf);
        ASSERT_TRUE(strtod(buf, NULL) == v);
    }
}

static void check_value(const om_anyvalue_t *v, const char *want)
{
    om_strbuf_t sb;
    om_strbuf_init(&sb, 0);
    om_prom_value_string(v, &sb);
    ASSERT_EQ_STR(sb.data != NULL ? sb.data : "", want);
    om_strbuf_free(&sb);
}

static void test_value_strings(void)
{
    om_anyvalue_t v = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
    check_value(&v, "");
    v.value_case = OM_ANYVALUE_STRING;
    v.string_value = "a \"b\"";
    check_value(&v, "a \"b\"");
    v.value_case = OM_ANYVALUE_INT;
    v.int_value = -7;
    check_value(&v, "-7");
    v.int_value = INT64_MIN;
    check_value(&v, "-9223372036854775808");
    v.value_case = OM_ANYVALUE_BOOL;
    v.bool_value = 1;
    check_value(&v, "true");
    v.value_case = OM_ANYVALUE_DOUBLE;
    static const struct {
        double d;
        const char *want;
    } dbl[] = {{1.5, "1.5"},
               {100, "100"},
               {0.1, "0.1"},
               {1e21, "1e+21"},
               {1e-7, "1e-7"},
               {123456789, "123456789"},
               {1e20, "100000000000000000000"},
               {-2.5e-9, "-2.5e-9"}};
    for (size_t i = 0; i < sizeof dbl / sizeof dbl[0]; i++) {
        v.double_value = dbl[i].d;
        check_value(&v, dbl[i].want);
    }
    static uint8_t bytes[] = {1, 2, 3, 4};
    v.value_case = OM_ANYVALUE_BYTES;
    v.bytes_value = (ProtobufCBinaryData){4, bytes};
    check_value(&v, "AQIDBA==");
    /* Arrays and maps: JSON as Go's encoding/json (map keys sorted, HTML characters escaped). */
    om_anyvalue_t s = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT, i1 = s, t = s;
    s.value_case = OM_ANYVALUE_STRING;
    s.string_value = "x<";
    i1.value_case = OM_ANYVALUE_INT;
    i1.int_value = 1;
    t.value_case = OM_ANYVALUE_BOOL;
    t.bool_value = 1;
    om_anyvalue_t *items[] = {&s, &i1, &t};
    om_arrayvalue_t arr = OPENTELEMETRY__PROTO__COMMON__V1__ARRAY_VALUE__INIT;
    arr.n_values = 3;
    arr.values = items;
    v.value_case = OM_ANYVALUE_ARRAY;
    v.array_value = &arr;
    check_value(&v, "[\"x\\u003c\",1,true]");
    om_keyvalue_t kb = OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT, ka = kb;
    kb.key = "b";
    kb.value = &i1;
    ka.key = "a";
    ka.value = &s;
    om_keyvalue_t *kvs[] = {&kb, &ka};
    om_kvlist_t kl = OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE_LIST__INIT;
    kl.n_values = 2;
    kl.values = kvs;
    v.value_case = OM_ANYVALUE_KVLIST;
    v.kvlist_value = &kl;
    check_value(&v, "{\"a\":\"x\\u003c\",\"b\":1}");
}

/* ------------------------------------------------------------------------------------------ */
/* Label sets                                                                                 */

static const char *render(om_prom_labels_t *l)
{
    static char out[1024];
    om_prom_labels_finish(l);
    om_strbuf_t sb;
    om_strbuf_init(&sb, 0);
    om_prom_render_labels(l->v, l->n, &sb);
    snprintf(out, sizeof out, "%s", sb.data != NULL ? sb.data : "");
    om_strbuf_free(&sb);
    return out;
}

static void test_label_sets(void)
{
    om_batch_t *b = om_testdata_otlp("resource service.name=svc service.namespace=etl "
                                     "service.instance.id=i-1 host.name=h1 region=eu; "
                                     "metric m; point 1 b.x=1 b_x=2 a=z k.1=v k_1=v host.name=h2 "
                                     "Zone=q 7up=true");
    om_resource_t *res = b->metrics->resource_metrics[0]->resource;
    om_number_dp_t *dp =
        b->metrics->resource_metrics[0]->scope_metrics[0]->metrics[0]->gauge->data_points[0];
    om_prom_labels_t l;
    om_prom_labels_init(&l);
    /* Clashing names join their values in the order of the original keys ("b.x" < "b_x");
     * equal values are not repeated. */
    ASSERT_EQ_INT(om_prom_labels_add_attrs(&l, NULL, dp->attributes, dp->n_attributes, NULL, 0), 0);
    ASSERT_EQ_STR(render(&l),
                  "Zone=\"q\",a=\"z\",b_x=\"1;2\",host_name=\"h2\",k_1=\"v\",key_7up=\"true\"");
    /* resource_to_telemetry: resource attributes where the point has none of that key. */
    om_prom_labels_reset(&l);
    ASSERT_EQ_INT(om_prom_labels_add_attrs(&l, NULL, dp->attributes, dp->n_attributes,
                                           res->attributes, res->n_attributes),
                  0);
    ASSERT_EQ_STR(render(&l), "Zone=\"q\",a=\"z\",b_x=\"1;2\",host_name=\"h2\",k_1=\"v\","
                              "key_7up=\"true\",region=\"eu\",service_instance_id=\"i-1\","
                              "service_name=\"svc\",service_namespace=\"etl\"");
    /* job / instance replace; external labels do not; __name__ sorts between upper and
     * lower case. */
    om_strbuf_t job, inst;
    om_strbuf_init(&job, 0);
    om_strbuf_init(&inst, 0);
    ASSERT_TRUE(om_prom_job(res, &job));
    ASSERT_TRUE(om_prom_instance(res, &inst));
    ASSERT_EQ_STR(job.data, "etl/svc");
    ASSERT_EQ_STR(inst.data, "i-1");
    om_prom_labels_reset(&l);
    ASSERT_EQ_INT(om_prom_labels_add_attrs(&l, NULL, dp->attributes, 2, NULL, 0), 0);
    ASSERT_EQ_INT(om_prom_labels_set(&l, "job", job.data, true), 0);
    ASSERT_EQ_INT(om_prom_labels_set(&l, "b_x", "ext", false), 0);
    ASSERT_EQ_INT(om_prom_labels_set(&l, "env", "prod", false), 0);
    ASSERT_EQ_INT(om_prom_labels_set(&l, "__name__", "m", true), 0);
    ASSERT_EQ_STR(render(&l), "__name__=\"m\",b_x=\"1;2\",env=\"prod\",job=\"etl/svc\"");
    /* An empty value removes (replace) or is ignored. */
    ASSERT_EQ_INT(om_prom_labels_set(&l, "env", "", true), 0);
    ASSERT_EQ_INT(om_prom_labels_set(&l, "none", "", false), 0);
    ASSERT_EQ_STR(render(&l), "__name__=\"m\",b_x=\"1;2\",job=\"etl/svc\"");
    /* A prefix (scope attributes). */
    om_prom_labels_reset(&l);
    ASSERT_EQ_INT(om_prom_labels_add_attrs(&l, "otel_scope_", dp->attributes + 2, 1, NULL, 0), 0);
    ASSERT_EQ_STR(render(&l), "otel_scope_a=\"z\"");
    ASSERT_TRUE(om_prom_identifying_attr("service.instance.id"));
    ASSERT_TRUE(!om_prom_identifying_attr("host.name"));
    om_strbuf_free(&job);
    om_strbuf_free(&inst);
    om_prom_labels_free(&l);
    om_batch_release(b);
}

static void test_job_without_namespace(void)
{
    om_batch_t *b = om_testdata_otlp("resource service.name=api; metric m; point 1");
    om_resource_t *res = b->metrics->resource_metrics[0]->resource;
    om_strbuf_t job, inst;
    om_strbuf_init(&job, 0);
    om_strbuf_init(&inst, 0);
    ASSERT_TRUE(om_prom_job(res, &job));
    ASSERT_EQ_STR(job.data, "api");
    ASSERT_TRUE(!om_prom_instance(res, &inst));
    ASSERT_TRUE(!om_prom_job(NULL, &job));
    om_strbuf_free(&job);
    om_strbuf_free(&inst);
    om_batch_release(b);
}

/* ------------------------------------------------------------------------------------------ */
/* Exposition                                                                                 */

static void write_example(om_strbuf_t *out, om_prom_format_t f)
{
    om_label_t l[] = {{"job", "etl/svc"}, {"path", "a\"b\\c\nd"}};
    om_strbuf_t lt;
    om_strbuf_init(&lt, 0);
    om_prom_render_labels(l, 2, &lt);
    om_prom_write_family(out, f, "requests_total", OM_PROM_COUNTER, "Requests\\served\n.");
    om_prom_exemplar_t ex = {
        .labels = "trace_id=\"0102\"", .labels_len = 15, .value = 1, .has_ts = true, .ts_ms = 1500};
    om_prom_sample_t s = {.name = "requests_total",
                          .name_len = 14,
                          .labels = lt.data,
                          .labels_len = lt.len,
                          .value = 3,
                          .exemplar = &ex};
    om_prom_write_sample(out, f, &s);
    om_prom_write_family(out, f, "latency_seconds", OM_PROM_HISTOGRAM, NULL);
    om_prom_sample_t h = {.name = "latency_seconds",
                          .name_len = 15,
                          .suffix = "_bucket",
                          .extra_key = "le",
                          .extra_value = "0.5",
                          .value = 2,
                          .has_ts = true,
                          .ts_ms = 1234567};
    om_prom_write_sample(out, f, &h);
    h.extra_value = "+Inf";
    h.value = 1e6;
    om_prom_write_sample(out, f, &h);
    h.suffix = "_sum";
    h.extra_key = NULL;
    h.value = 0.25;
    om_prom_write_sample(out, f, &h);
    h.suffix = "_count";
    h.value = 1e6;
    om_prom_write_sample(out, f, &h);
    om_prom_write_family(out, f, "odd", OM_PROM_UNTYPED, "");
    om_prom_sample_t u = {.name = "odd", .name_len = 3, .value = NAN};
    om_prom_write_sample(out, f, &u);
    om_prom_write_eof(out, f);
    om_strbuf_free(&lt);
}

static void test_text_format(void)
{
    om_strbuf_t out;
    om_strbuf_init(&out, 0);
    write_example(&out, OM_PROM_FMT_TEXT);
    ASSERT_EQ_STR(out.data, "# HELP requests_total Requests\\\\served\\n.\n"
                            "# TYPE requests_total counter\n"
                            "requests_total{job=\"etl/svc\",path=\"a\\\"b\\\\c\\nd\"} 3\n"
                            "# TYPE latency_seconds histogram\n"
                            "latency_seconds_bucket{le=\"0.5\"} 2 1234567\n"
                            "latency_seconds_bucket{le=\"+Inf\"} 1e+06 1234567\n"
                            "latency_seconds_sum 0.25 1234567\n"
                            "latency_seconds_count 1e+06 1234567\n"
                            "# TYPE odd untyped\n"
                            "odd NaN\n");
    om_strbuf_free(&out);
}

static void test_openmetrics_format(void)
{
    om_strbuf_t out;
    om_strbuf_init(&out, 0);
    write_example(&out, OM_PROM_FMT_OPENMETRICS);
    ASSERT_EQ_STR(out.data, "# HELP requests Requests\\\\served\\n.\n"
                            "# TYPE requests counter\n"
                            "requests_total{job=\"etl/svc\",path=\"a\\\"b\\\\c\\nd\"} 3 # "
                            "{trace_id=\"0102\"} 1 1.500\n"
                            "# TYPE latency_seconds histogram\n"
                            "latency_seconds_bucket{le=\"0.5\"} 2 1234.567\n"
                            "latency_seconds_bucket{le=\"+Inf\"} 1e+06 1234.567\n"
                            "latency_seconds_sum 0.25 1234.567\n"
                            "latency_seconds_count 1e+06 1234.567\n"
                            "# TYPE odd unknown\n"
                            "odd NaN\n"
                            "# EOF\n");
    om_strbuf_free(&out);
}

static void test_negotiate(void)
{
    /* What Prometheus 2.42 sends. */
    const char *prom = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
                       "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    ASSERT_EQ_INT(om_prom_negotiate(prom, true), OM_PROM_FMT_OPENMETRICS);
    ASSERT_EQ_INT(om_prom_negotiate(prom, false), OM_PROM_FMT_TEXT);
    ASSERT_EQ_INT(om_prom_negotiate(NULL, true), OM_PROM_FMT_TEXT);
    ASSERT_EQ_INT(om_prom_negotiate("*/*", true), OM_PROM_FMT_TEXT);
    ASSERT_EQ_INT(
        om_prom_negotiate("text/plain;version=0.0.4, application/openmetrics-text;q=0.5", true),
        OM_PROM_FMT_TEXT);
    ASSERT_EQ_INT(om_prom_negotiate("Application/OpenMetrics-Text", true), OM_PROM_FMT_OPENMETRICS);
    ASSERT_EQ_INT(om_prom_negotiate("application/openmetrics-text;q=0", true), OM_PROM_FMT_TEXT);
}

/* promtool, when installed (Debian's prometheus package ships it), finds nothing to complain
 * about in what the writer produces. */
static void test_promtool_accepts(void)
{
    if (access("/usr/bin/promtool", X_OK) != 0) {
        fprintf(stderr, "promtool not installed: skipped\n");
        return;
    }
    om_strbuf_t out;
    om_strbuf_init(&out, 0);
    om_label_t l[] = {{"job", "etl/svc"}, {"path", "a\"b"}};
    om_strbuf_t lt;
    om_strbuf_init(&lt, 0);
    om_prom_render_labels(l, 2, &lt);
    om_prom_write_family(&out, OM_PROM_FMT_TEXT, "etl_requests_total", OM_PROM_COUNTER,
                         "Requests served.");
    om_prom_sample_t s = {.name = "etl_requests_total",
                          .name_len = 18,
                          .labels = lt.data,
                          .labels_len = lt.len,
                          .value = 3};
    om_prom_write_sample(&out, OM_PROM_FMT_TEXT, &s);
    om_prom_write_family(&out, OM_PROM_FMT_TEXT, "etl_latency_seconds", OM_PROM_HISTOGRAM,
                         "Latency.");
    const char *les[] = {"0.5", "+Inf"};
    for (int i = 0; i < 2; i++) {
        om_prom_sample_t h = {.name = "etl_latency_seconds",
                              .name_len = 19,
                              .suffix = "_bucket",
                              .extra_key = "le",
                              .extra_value = les[i],
                              .value = 2};
        om_prom_write_sample(&out, OM_PROM_FMT_TEXT, &h);
    }
    om_prom_sample_t sum = {
        .name = "etl_latency_seconds", .name_len = 19, .suffix = "_sum", .value = 0.75};
    om_prom_write_sample(&out, OM_PROM_FMT_TEXT, &sum);
    sum.suffix = "_count";
    sum.value = 2;
    om_prom_write_sample(&out, OM_PROM_FMT_TEXT, &sum);
    char path[] = "/tmp/om_prom_test_XXXXXX";
    int fd = mkstemp(path);
    ASSERT_TRUE(fd >= 0);
    ASSERT_EQ_INT(write(fd, out.data, out.len), (long long)out.len);
    close(fd);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "promtool check metrics < %s > %s.out 2>&1", path, path);
    int rc = system(cmd);
    snprintf(cmd, sizeof cmd, "%s.out", path);
    FILE *f = fopen(cmd, "r");
    char msg[512] = "";
    size_t n = f != NULL ? fread(msg, 1, sizeof msg - 1, f) : 0;
    msg[n] = '\0';
    if (f != NULL) {
        fclose(f);
    }
    unlink(cmd);
    unlink(path);
    om_strbuf_free(&lt);
    om_strbuf_free(&out);
    ASSERT_EQ_STR(msg, "");
    ASSERT_EQ_INT(rc, 0);
}

int main(void)
{
    OM_RUN(test_classify);
    OM_RUN(test_metric_names);
    OM_RUN(test_label_names);
    OM_RUN(test_format_numbers);
    OM_RUN(test_format_decimals);
    OM_RUN(test_value_strings);
    OM_RUN(test_label_sets);
    OM_RUN(test_job_without_namespace);
    OM_RUN(test_text_format);
    OM_RUN(test_openmetrics_format);
    OM_RUN(test_negotiate);
    OM_RUN(test_promtool_accepts);
    return om_test_summary();
}
