/* filter_test.c: the filter processor: what each signal and level drops (spans, span events,
 * metrics, data points, log records), what is left around the drops (scopes and resources
 * emptied are removed, a span without its events stays, an untouched batch keeps its wire
 * bytes, a shared batch is not changed for its other holders), the error modes, the counters,
 * config errors with file:line:column through the pipeline builder, and the lifecycle. */
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "filter.h"
#include "om_test.h"
#include "om_testdata.h"
#include "pipeline.h"

extern const om_factory_t proc_filter_factory;

#define MAX_CAPTURED 16

typedef struct capture {
    om_batch_t *batches[MAX_CAPTURED];
    size_t n;
} capture_t;

static int capture_consume(void *self, om_batch_t *b)
{
    capture_t *c = self;
    if (c->n == MAX_CAPTURED) {
        om_batch_release(b);
        return OM_EREFUSED;
    }
    c->batches[c->n++] = b;
    return 0;
}

typedef struct fixture {
    uv_loop_t loop;
    om_host_t host;
    proc_filter_cfg_t *cfg; /* om_test_config_load's */
    capture_t cap;
    void *self;
} fixture_t;

/* The processor made from "c: <cfg_yaml>"; false (with the problems printed) when the config
 * does not load, validate or create. */
static bool setup(fixture_t *f, const char *cfg_yaml)
{
    memset(f, 0, sizeof *f);
    if (uv_loop_init(&f->loop) != 0) {
        return false;
    }
    om_test_host_init(&f->host, &f->loop);
    const char *why = "";
    f->cfg = om_test_config_load(&proc_filter_factory, cfg_yaml, &why);
    int rc = f->cfg != NULL ? 0 : OM_ECONFIG;
    om_err_t err = {0};
    om_create_args_t a = {.cfg = f->cfg,
                          .id = "filter",
                          .log_name = "processor/filter",
                          .host = &f->host,
                          .signals = OM_SIG_ALL};
    for (int i = 0; i < OM_SIG_COUNT; i++) {
        a.next[i] = (om_consumer_t){.self = &f->cap, .consume = capture_consume};
    }
    if (rc == 0) {
        rc = proc_filter_factory.create(&a, &f->self, &err);
    }
    if (f->cfg == NULL) {
        fprintf(stderr, "    %s\n", why);
    } else if (rc != 0) {
        fprintf(stderr, "    %s: %s\n", err.at, err.msg);
    }
    return rc == 0;
}

static void on_done(void *arg)
{
    *(int *)arg += 1;
}

static void teardown(fixture_t *f)
{
    if (f->self != NULL) {
        int done = 0;
        proc_filter_factory.shutdown(f->self, on_done, &done);
        proc_filter_factory.destroy(f->self);
    }
    for (size_t i = 0; i < f->cap.n; i++) {
        om_batch_release(f->cap.batches[i]);
    }
    om_test_config_free(&proc_filter_factory, f->cfg);
    om_test_host_close(&f->host);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    uv_loop_close(&f->loop);
}

static int consume(fixture_t *f, om_batch_t *b)
{
    switch (b->signal) {
    case OM_SIG_TRACES:
        return proc_filter_factory.consume_traces(f->self, b);
    case OM_SIG_METRICS:
        return proc_filter_factory.consume_metrics(f->self, b);
    default:
        return proc_filter_factory.consume_logs(f->self, b);
    }
}

/* What the processor passed on for b, described ("" when nothing was). */
static const char *filtered(fixture_t *f, om_batch_t *b, int *rc)
{
    size_t before = f->cap.n;
    *rc = consume(f, b);
    return f->cap.n > before ? om_testdata_describe(f->cap.batches[f->cap.n - 1]) : "";
}

#define ASSERT_FILTERS(f, batch, want)                                                             \
    do {                                                                                           \
        int rc_ = -1;                                                                              \
        const char *got_ = filtered((f), (batch), &rc_);                                           \
        ASSERT_EQ_INT(rc_, 0);                                                                     \
        ASSERT_EQ_STR(got_, (want));                                                               \
    } while (0)

/* ---- what each level drops ---------------------------------------------------------------- */

static void test_spans(void)
{
    fixture_t f;
    ASSERT_TRUE(setup(&f, "{traces: {span: ['name == \"drop-me\"', "
                          "'attributes[\"http.route\"] == \"/health\"']}}"));
    ASSERT_FILTERS(&f,
                   om_testdata_otlp("resource service.name=a; scope s; span keep; span drop-me; "
                                    "span health http.route='/health'; span other "
                                    "http.route='/api'"),
                   "(a [s: keep other])");
    /* Resources and scopes emptied by the drops go; the rest stays in order. */
    ASSERT_FILTERS(&f,
                   om_testdata_otlp("resource service.name=a; scope s; span drop-me;"
                                    "resource service.name=b; scope t; span drop-me; scope u; "
                                    "span x; resource service.name=c; scope v; span y"),
                   "(b [u: x]) (c [v: y])");
    teardown(&f);
}

static void test_span_events(void)
{
    fixture_t f;
    ASSERT_TRUE(setup(&f,
                      "{traces: {span: ['name == \"gone\"'], "
                      "spanevent: ['name == \"noise\"', 'attributes[\"level\"] == \"debug\"']}}"));
    ASSERT_FILTERS(&f,
                   om_testdata_otlp("resource service.name=a; scope s;"
                                    "span a; event noise; event keep; event dbg level=debug;"
                                    "span b; event noise;"
                                    "span gone; event keep"),
                   "(a [s: a{keep} b])");
    teardown(&f);
}

static void test_metrics_and_points(void)
{
    fixture_t f;
    ASSERT_TRUE(setup(&f, "{metrics: {metric: ['name == \"drop.me\"', "
                          "'type == METRIC_DATA_TYPE_SUMMARY'], "
                          "datapoint: ['attributes[\"env\"] == \"test\"', 'value_int > 100']}}"));
    /* A metric whose points are all dropped goes too. */
    ASSERT_FILTERS(&f,
                   om_testdata_otlp("metrics; resource service.name=m; scope s;"
                                    "metric drop.me type:gauge; point 1;"
                                    "metric keep type:gauge; point 1 env=prod; point 2 env=test; "
                                    "point 500;"
                                    "metric q type:summary; point count:1 sum:1;"
                                    "metric all.test type:sum; point 3 env=test"),
                   "(m [s: keep<1>])");
    teardown(&f);
}

static void test_logs(void)
{
    fixture_t f;
    ASSERT_TRUE(setup(&f, "{logs: {log_record: ['IsMatch(body, \".*password.*\")', "
                          "'severity_number < SEVERITY_NUMBER_WARN']}}"));
    ASSERT_FILTERS(&f,
                   om_testdata_otlp("logs; resource service.name=l; scope s;"
                                    "log 'user logged in' severity:info;"
                                    "log 'disk full' severity:error;"
                                    "log 'password=x' severity:fatal;"
                                    "log 'no severity'"),
                   "(l [s: disk full])");
    teardown(&f);
}

/* Everything dropped: nothing is passed on, and the client is told all is well. */
static void test_all_dropped_is_not_passed_on(void)
{
    fixture_t f;
    ASSERT_TRUE(setup(&f, "{traces: {span: ['true']}, logs: {log_record: ['true']}}"));
    int rc = -1;
    ASSERT_EQ_STR(filtered(&f, om_testdata_otlp("span a; span b"), &rc), "");
    ASSERT_EQ_INT(rc, 0);
    ASSERT_EQ_STR(filtered(&f, om_testdata_otlp("logs; log x"), &rc), "");
    ASSERT_EQ_INT(rc, 0);
    ASSERT_EQ_UINT(f.cap.n, 0);
    ASSERT_EQ_INT(om_test_metric(&f.host, "otelcol_processor_filter_spans_filtered", "filter",
                                 "filter", NULL),
                  2);
    ASSERT_EQ_INT(
        om_test_metric(&f.host, "otelcol_processor_filter_logs_filtered", "filter", "filter", NULL),
        1);
    teardown(&f);
}

/* A batch nothing is dropped from is passed on as it came: the same batch, wire bytes kept;
 * a signal without conditions is not even decoded. */
static void test_untouched_batches_keep_their_bytes(void)
{
    fixture_t f;
    ASSERT_TRUE(setup(&f, "{traces: {span: ['name == \"nope\"']}}"));
    om_batch_t *b = om_testdata_wire(om_testdata_otlp("resource service.name=a; span x; span y"));
    ASSERT_TRUE(b->raw_valid);
    ASSERT_EQ_INT(consume(&f, b), 0);
    ASSERT_EQ_UINT(f.cap.n, 1);
    ASSERT_TRUE(f.cap.batches[0] == b && b->raw_valid);
    om_batch_t *m = om_testdata_wire(om_testdata_otlp("metrics; metric g; point 1"));
    ASSERT_EQ_INT(consume(&f, m), 0);
    ASSERT_TRUE(f.cap.batches[1] == m && m->raw_valid && m->msg == NULL);
    teardown(&f);
}

/* A batch shared with another pipeline is not changed for the other holder. */
static void test_shared_batches_are_copied_on_write(void)
{
    fixture_t f;
    ASSERT_TRUE(setup(&f, "{traces: {span: ['name == \"b\"']}}"));
    om_batch_t *b = om_testdata_otlp("resource service.name=r; scope s; span a; span b");
    om_batch_ref(b);
    ASSERT_FILTERS(&f, b, "(r [s: a])");
    ASSERT_EQ_STR(om_testdata_describe(b), "(r [s: a b])");
    ASSERT_EQ_UINT(b->items, 2);
    om_batch_release(b);
    teardown(&f);
}

static void test_no_conditions_passes_everything(void)
{
    fixture_t f;
    ASSERT_TRUE(setup(&f, "{}"));
    ASSERT_FILTERS(&f, om_testdata_otlp("resource service.name=r; span a"), "(r [-: a])");
    ASSERT_FILTERS(&f, om_testdata_otlp("logs; resource service.name=r; log x"), "(r [-: x])");
    teardown(&f);
}

/* ---- error modes -------------------------------------------------------------------------- */

/* Len() of an int fails at evaluation: the first condition errs on span "n" (and holds for
 * none), the second would drop span "drop". */
#define ERR_CONDS "['Len(attributes[\"n\"]) > 10', 'name == \"drop\"']"
#define ERR_DATA "resource service.name=r; scope s; span ok n=ab; span n n=5; span drop n=cd"

static void test_error_mode_propagate_fails_the_batch(void)
{
    fixture_t f;
    ASSERT_TRUE(setup(&f, "{traces: {span: " ERR_CONDS "}}"));
    int rc = 0;
    ASSERT_EQ_STR(filtered(&f, om_testdata_otlp(ERR_DATA), &rc), "");
    ASSERT_EQ_INT(rc, OM_EREFUSED);
    ASSERT_TRUE(om_err_retryable(rc)); /* UNAVAILABLE / 503, as otelcol's receivers answer */
    /* A batch without the failing item goes through. */
    ASSERT_FILTERS(&f,
                   om_testdata_otlp("resource service.name=r; scope s; span ok n=ab; span drop "
                                    "n=cd"),
                   "(r [s: ok])");
    teardown(&f);
}

static void test_error_mode_ignore_and_silent_go_on(void)
{
    static const char *const modes[] = {"ignore", "silent", "IGNORE"};
    for (size_t i = 0; i < 3; i++) {
        fixture_t f;
        char cfg[256];
        snprintf(cfg, sizeof cfg, "{error_mode: %s, traces: {span: " ERR_CONDS "}}", modes[i]);
        ASSERT_TRUE(setup(&f, cfg));
        ASSERT_FILTERS(&f, om_testdata_otlp(ERR_DATA), "(r [s: ok n])");
        teardown(&f);
    }
}

/* ---- the wire fast path ------------------------------------------------------------------- */

/* Span and log record conditions run on a batch's wire bytes when it has not been decoded. */
typedef struct both {
    char decoded[1024]; /* what was passed on for the decoded batch ("" for nothing) */
    char wire[1024];    /* ... for the same data as a client sends it */
    int rc_decoded, rc_wire;
    bool stayed_wire; /* what was passed on for the wire batch was never decoded */
} both_t;

static const char *pass_on(fixture_t *f, om_batch_t *b, int *rc, bool *stayed_wire)
{
    size_t before = f->cap.n;
    *rc = consume(f, b);
    if (f->cap.n == before) {
        *stayed_wire = false;
        return "";
    }
    om_batch_t *out = f->cap.batches[--f->cap.n];
    *stayed_wire = out->raw_valid && out->msg == NULL;
    static char text[1024];
    snprintf(text, sizeof text, "%s", om_testdata_describe(out)); /* decodes */
    om_batch_release(out);
    return text;
}

/* The data of text through the processor twice: decoded, and as wire bytes. */
static both_t both_ways(fixture_t *f, om_batch_t *(*make)(const char *), const char *text)
{
    both_t r = {0};
    bool unused;
    snprintf(r.decoded, sizeof r.decoded, "%s", pass_on(f, make(text), &r.rc_decoded, &unused));
    snprintf(r.wire, sizeof r.wire, "%s",
             pass_on(f, om_testdata_wire(make(text)), &r.rc_wire, &r.stayed_wire));
    return r;
}

static om_batch_t *from_dsl(const char *text)
{
    return om_testdata_otlp("%s", text);
}

#define ASSERT_BOTH_WAYS(f, text, want, on_wire)                                                   \
    do {                                                                                           \
        both_t r_ = both_ways((f), from_dsl, (text));                                              \
        ASSERT_EQ_INT(r_.rc_decoded, 0);                                                           \
        ASSERT_EQ_INT(r_.rc_wire, 0);                                                              \
        ASSERT_EQ_STR(r_.decoded, (want));                                                         \
        ASSERT_EQ_STR(r_.wire, (want));                                                            \
        ASSERT_EQ_INT(r_.stayed_wire, (on_wire));                                                  \
    } while (0)

/* The same drops from the bytes as from the structs, and the batch passed on is bytes still
 * (the exporter sends them without encoding); the counters count both. */
static void test_wire_path_drops_what_decoding_drops(void)
{
    fixture_t f;
    ASSERT_TRUE(setup(&f, "{traces: {span: ['name == \"drop-me\"', "
                          "'attributes[\"http.route\"] == \"/health\"', "
                          "'resource.attributes[\"service.name\"] == \"b\" and kind == "
                          "SPAN_KIND_SERVER', 'IsMatch(instrumentation_scope.name, \"^t\")']}, "
                          "logs: {log_record: ['IsMatch(body, \".*password.*\")', "
                          "'severity_number < SEVERITY_NUMBER_WARN and severity_number != "
                          "SEVERITY_NUMBER_UNSPECIFIED']}}"));
    ASSERT_BOTH_WAYS(&f,
                     "resource service.name=a; scope s; span keep; span drop-me; "
                     "span health http.route='/health'; span other http.route='/api'",
                     "(a [s: keep other])", true);
    ASSERT_BOTH_WAYS(&f,
                     "resource service.name=a; scope s; span drop-me;"
                     "resource service.name=b; scope t2; span x; scope u; span srv kind:server; "
                     "span cli kind:client; resource service.name=c; scope v; span y",
                     "(b [u: cli]) (c [v: y])", true);
    /* Nothing dropped: the very batch, untouched. */
    ASSERT_BOTH_WAYS(&f, "resource service.name=a; scope s; span keep", "(a [s: keep])", true);
    ASSERT_BOTH_WAYS(&f,
                     "logs; resource service.name=l; scope s;"
                     "log 'user logged in' severity:info; log 'disk full' severity:error;"
                     "log 'password=x' severity:fatal; log 'no severity'",
                     "(l [s: disk full no severity])", true);
    /* Everything dropped: nothing passed on either way. */
    ASSERT_BOTH_WAYS(&f, "span drop-me; span drop-me", "", false);
    ASSERT_EQ_INT(om_test_metric(&f.host, "otelcol_processor_filter_spans_filtered", "filter",
                                 "filter", NULL),
                  2 * (2 + 3 + 0 + 2));
    ASSERT_EQ_INT(
        om_test_metric(&f.host, "otelcol_processor_filter_logs_filtered", "filter", "filter", NULL),
        2 * 2);
    teardown(&f);
}

/* A span whose attribute is a map: only decoding reads it, so the batch is walked decoded,
 * with the same result; so is every batch when span events have conditions. */
static const char map_json[] =
    "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\",\"value\":"
    "{\"stringValue\":\"r\"}}]},\"scopeSpans\":[{\"scope\":{\"name\":\"s\"},\"spans\":["
    "{\"name\":\"a\",\"attributes\":[{\"key\":\"m\",\"value\":{\"kvlistValue\":{\"values\":"
    "[{\"key\":\"in\",\"value\":{\"intValue\":\"1\"}}]}}}]},"
    "{\"name\":\"b\",\"attributes\":[{\"key\":\"m\",\"value\":{\"stringValue\":\"x\"}}]}]}]}]}";

static om_batch_t *from_json(const char *text)
{
    om_batch_t *b = NULL;
    return om_batch_decode_json(OM_SIG_TRACES, text, strlen(text), 0, &b, NULL) == 0 ? b : NULL;
}

static void test_wire_path_steps_aside_for_what_only_decoding_reads(void)
{
    fixture_t f;
    ASSERT_TRUE(setup(&f, "{traces: {span: ['attributes[\"m\"] == \"x\"']}}"));
    both_t r = both_ways(&f, from_json, map_json);
    ASSERT_TRUE(r.rc_decoded == 0 && r.rc_wire == 0);
    ASSERT_EQ_STR(r.decoded, "(r [s: a])");
    ASSERT_EQ_STR(r.wire, "(r [s: a])");
    ASSERT_TRUE(!r.stayed_wire);
    teardown(&f);

    ASSERT_TRUE(setup(&f, "{traces: {span: ['name == \"b\"'], spanevent: ['name == \"e\"']}}"));
    ASSERT_BOTH_WAYS(&f, "resource service.name=r; scope s; span a; event e; event f; span b",
                     "(r [s: a{f}])", false);
    teardown(&f);
}

/* Error modes on the wire: propagate refuses the batch, ignore goes on, both as decoded. */
static void test_wire_path_error_modes(void)
{
    fixture_t f;
    ASSERT_TRUE(setup(&f, "{traces: {span: " ERR_CONDS "}}"));
    both_t r = both_ways(&f, from_dsl, ERR_DATA);
    ASSERT_EQ_INT(r.rc_decoded, OM_EREFUSED);
    ASSERT_EQ_INT(r.rc_wire, OM_EREFUSED);
    ASSERT_TRUE(r.decoded[0] == '\0' && r.wire[0] == '\0');
    teardown(&f);
    ASSERT_TRUE(setup(&f, "{error_mode: ignore, traces: {span: " ERR_CONDS "}}"));
    ASSERT_BOTH_WAYS(&f, ERR_DATA, "(r [s: ok n])", true);
    teardown(&f);
}

/* ---- config errors, through the pipeline builder ------------------------------------------ */

static char *problems_of(const char *yaml)
{
    om_diags_t d = {0};
    om_config_t *cfg = NULL;
    om_strbuf_t all;
    om_strbuf_init(&all, 0);
    om_strbuf_puts(&all, "");
    if (om_config_load_string("p.yaml", yaml, strlen(yaml), &cfg, &d) == 0) {
        om_graph_t *g = NULL;
        om_graph_build(cfg, NULL, true, &g, &d);
        om_graph_free(g);
    }
    for (size_t i = 0; i < d.n; i++) {
        om_strbuf_printf(&all, "%s\n", d.msgs[i]);
    }
    om_diags_free(&d);
    om_config_free(cfg);
    return om_strbuf_steal(&all, NULL);
}

#define PIPELINE(sig)                                                                              \
    "exporters:\n"                                                                                 \
    "  debug:\n"                                                                                   \
    "receivers:\n"                                                                                 \
    "  otlp:\n"                                                                                    \
    "    protocols:\n"                                                                             \
    "      grpc:\n"                                                                                \
    "service:\n"                                                                                   \
    "  pipelines:\n"                                                                               \
    "    " sig ":\n"                                                                               \
    "      receivers: [otlp]\n"                                                                    \
    "      processors: [filter]\n"                                                                 \
    "      exporters: [debug]\n"

static void test_config_errors_point_into_the_condition(void)
{
    char *p = problems_of("processors:\n"
                          "  filter:\n"
                          "    traces:\n"
                          "      span:\n"
                          "        - 'name == \"ok\"'\n"
                          "        - 'name =='\n" PIPELINE("traces"));
    ASSERT_EQ_STR(p, "p.yaml:6:11: processors::filter: traces::span::1: column 8: unexpected end "
                     "of the condition (expected a value)\n");
    free(p);
    p = problems_of(
        "processors:\n"
        "  filter:\n"
        "    logs:\n"
        "      log_record: [\"IsMatch(body, 'x')\", 'IsMatch(bodyy, \"x\")']\n" PIPELINE("logs"));
    ASSERT_EQ_STR(p, "p.yaml:4:20: processors::filter: logs::log_record::0: column 15: "
                     "unexpected character '''\n");
    free(p);
    p = problems_of("processors:\n"
                    "  filter:\n"
                    "    metrics:\n"
                    "      datapoint:\n"
                    "        - IsMatch(metric.name, \"a(?=b)\")\n" PIPELINE("metrics"));
    ASSERT_EQ_STR(p, "p.yaml:5:11: processors::filter: metrics::datapoint::0: column 22: invalid "
                     "regex at byte 2: lookahead is not supported (not RE2 syntax)\n");
    free(p);
    p = problems_of("processors:\n"
                    "  filter:\n"
                    "    traces:\n"
                    "      spanevent: ['foo.bar == 1']\n" PIPELINE("traces"));
    ASSERT_EQ_STR(p, "p.yaml:4:19: processors::filter: traces::spanevent::0: column 1: unknown "
                     "path \"foo.bar\" in the spanevent context\n");
    free(p);
}

static void test_config_key_errors(void)
{
    char *p = problems_of("processors:\n"
                          "  filter:\n"
                          "    error_mode: loud\n"
                          "    traces:\n"
                          "      spans: []\n" PIPELINE("traces"));
    ASSERT_CONTAINS(p, "p.yaml:3:17: processors::filter::error_mode: unknown value \"loud\"");
    ASSERT_CONTAINS(p, "p.yaml:5:7: 'processors::filter::traces' has invalid keys: spans");
    free(p);
}

/* otelcol-contrib's README example, as written there. */
static void test_readme_example_validates(void)
{
    char *p = problems_of(
        "processors:\n"
        "  filter:\n"
        "    error_mode: ignore\n"
        "    traces:\n"
        "      span:\n"
        "        - 'attributes[\"container.name\"] == \"app_container_1\"'\n"
        "        - 'resource.attributes[\"host.name\"] == \"localhost\"'\n"
        "        - 'name == \"app_3\"'\n"
        "      spanevent:\n"
        "        - 'attributes[\"grpc\"] == true'\n"
        "        - 'IsMatch(name, \".*grpc.*\")'\n"
        "    metrics:\n"
        "      metric:\n"
        "          - 'name == \"my.metric\" and resource.attributes[\"my_label\"] == \"abc123\"'\n"
        "          - 'type == METRIC_DATA_TYPE_HISTOGRAM'\n"
        "      datapoint:\n"
        "          - 'metric.type == METRIC_DATA_TYPE_SUMMARY'\n"
        "          - 'resource.attributes[\"service.name\"] == \"my_service_name\"'\n"
        "    logs:\n"
        "      log_record:\n"
        "        - 'IsMatch(body, \".*password.*\")'\n"
        "        - 'severity_number < SEVERITY_NUMBER_WARN'\n" PIPELINE("traces"));
    ASSERT_EQ_STR(p, "");
    free(p);
}

/* ---- the legacy form ------------------------------------------------------------------------ */

#define SPANS_DATA                                                                                 \
    "resource service.name=app_1 env=prod; scope lib@1.0;"                                         \
    "span hello kind:client http.status_code=500; span hello2 kind:server http.status_code='500';" \
    "resource service.name=app_3 env=dev; scope other@2.0;"                                        \
    "span hello_world kind:server code=503; span x kind:internal;"                                 \
    "resource env=prod; scope lib@1.0; span anon"

static void test_legacy_spans(void)
{
    static const struct {
        const char *cfg, *want;
    } cases[] = {
        /* include by service: only app_3's spans */
        {"{include: {match_type: strict, services: [app_3]}}", "(app_3 [other: hello_world x])"},
        /* exclude: every given property must match (service AND name), a list entry is enough */
        {"{exclude: {match_type: regexp, services: ['app_[12]'], span_names: ['^hello$']}}",
         "(app_1 [lib: hello2]) (app_3 [other: hello_world x]) ( [lib: anon])"},
        /* strict values are typed: 500 is the int, '500' the string */
        {"{exclude: {match_type: strict, attributes: [{key: http.status_code, value: 500}]}}",
         "(app_1 [lib: hello2]) (app_3 [other: hello_world x]) ( [lib: anon])"},
        {"{exclude: {match_type: strict, attributes: [{key: http.status_code, value: '500'}]}}",
         "(app_1 [lib: hello]) (app_3 [other: hello_world x]) ( [lib: anon])"},
        /* a key without value: any value */
        {"{exclude: {match_type: strict, attributes: [{key: http.status_code}]}}",
         "(app_3 [other: hello_world x]) ( [lib: anon])"},
        /* regexp matches ints as decimal text, anywhere in it */
        {"{exclude: {match_type: regexp, attributes: [{Key: code, Value: '0'}]}}",
         "(app_1 [lib: hello hello2]) (app_3 [other: x]) ( [lib: anon])"},
        {"{exclude: {match_type: strict, libraries: [{name: lib, version: '1.0'}]}}",
         "(app_3 [other: hello_world x])"},
        {"{exclude: {match_type: regexp, libraries: [{name: '^o'}]}}",
         "(app_1 [lib: hello hello2]) ( [lib: anon])"},
        {"{exclude: {match_type: strict, span_kinds: [SPAN_KIND_SERVER, SPAN_KIND_CLIENT]}}",
         "(app_3 [other: x]) ( [lib: anon])"},
        {"{include: {match_type: strict, resources: [{key: env, value: prod}]}}",
         "(app_1 [lib: hello hello2]) ( [lib: anon])"},
        {"{exclude: {match_type: strict, services: ['<nil-service-name>']}}",
         "(app_1 [lib: hello hello2]) (app_3 [other: hello_world x])"},
        /* include first, then exclude */
        {"{include: {match_type: regexp, span_names: [hello]}, "
         "exclude: {match_type: strict, services: [app_1]}}",
         "(app_3 [other: hello_world])"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fixture_t f;
        char cfg[512];
        snprintf(cfg, sizeof cfg, "{spans: %s}", cases[i].cfg);
        ASSERT_TRUE(setup(&f, cfg));
        int rc = -1;
        const char *got = filtered(&f, om_testdata_otlp(SPANS_DATA), &rc);
        if (strcmp(got, cases[i].want) != 0) {
            fprintf(stderr, "    %s\n    got  %s\n    want %s\n", cases[i].cfg, got, cases[i].want);
        }
        ASSERT_EQ_INT(rc, 0);
        ASSERT_EQ_STR(got, cases[i].want);
        teardown(&f);
    }
}

static void test_legacy_metrics(void)
{
    fixture_t f;
    /* The README's example: names by regexp and a resource attribute to include, names to
     * exclude. Resource entries that fail the resource rule go whole. */
    ASSERT_TRUE(setup(&f, "{metrics: {include: {match_type: regexp, metric_names: ['prefix/.*', "
                          "'prefix_.*'], resource_attributes: [{key: container.name, "
                          "value: app_container_1}]}, exclude: {match_type: strict, "
                          "metric_names: [prefix_hello_world]}}}"));
    ASSERT_FILTERS(&f,
                   om_testdata_otlp("metrics; resource service.name=a container.name="
                                    "app_container_1; scope s;"
                                    "metric prefix/a; point 1; metric prefix_hello_world; point 2;"
                                    "metric other; point 3;"
                                    "resource service.name=b container.name=app_container_2;"
                                    "scope s; metric prefix/b; point 4"),
                   "(a [s: prefix/a<1>])");
    teardown(&f);
    /* Without metric_names there is no metric rule: only resources are filtered. */
    ASSERT_TRUE(setup(&f, "{metrics: {exclude: {match_type: strict, resource_attributes: "
                          "[{key: env, value: test}]}}}"));
    ASSERT_FILTERS(&f,
                   om_testdata_otlp("metrics; resource service.name=a env=test; metric m; point 1;"
                                    "resource service.name=b env=prod; metric n; point 2"),
                   "(b [-: n<2>])");
    teardown(&f);
}

static void test_legacy_logs(void)
{
    fixture_t f;
    ASSERT_TRUE(setup(&f, "{logs: {include: {match_type: strict, resource_attributes: "
                          "[{key: host.name, value: just_this_one}], severity_number: "
                          "{min: info, match_undefined: true}}, exclude: {match_type: regexp, "
                          "bodies: ['^IGNORE'], severity_texts: ['Info[2-4]?'], "
                          "record_attributes: [{key: user, value: 'bot.*'}]}}}"));
    ASSERT_FILTERS(&f,
                   om_testdata_otlp("logs; resource host.name=just_this_one service.name=h;"
                                    "scope s; log a severity:debug; log b severity:info;"
                                    "log c; log 'IGNORE me' severity:error text:Info user=bot1;"
                                    "log 'IGNORE too' severity:error text:Info user=human;"
                                    "resource host.name=other service.name=o; log d "
                                    "severity:error"),
                   "(h [s: b c IGNORE too])");
    teardown(&f);
}

static void test_legacy_config_errors(void)
{
    static const struct {
        const char *yaml, *want;
    } cases[] = {
        {"    spans:\n      include:\n        services: [a]\n",
         "p.yaml:5:9: processors::filter: spans::include::match_type: unrecognized match_type: "
         "'', valid types are: [regexp strict]\n"},
        {"    spans:\n      include:\n        match_type: Strict\n        services: [a]\n",
         "p.yaml:5:21: processors::filter: spans::include::match_type: unrecognized "
         "match_type: 'Strict', valid types are: [regexp strict]\n"},
        {"    spans:\n      exclude:\n        match_type: strict\n",
         "p.yaml:5:9: processors::filter: spans::exclude: at least one of \"attributes\", "
         "\"libraries\",  or \"resources\" field must be specified\n"},
        {"    spans:\n      exclude:\n        match_type: regexp\n        attributes:\n"
         "          - {key: code, value: 500}\n",
         "p.yaml:7:13: processors::filter: spans::exclude::attributes::0: match_type=regexp for "
         "\"code\" only supports Str, but found Int\n"},
        {"    spans:\n      exclude:\n        match_type: regexp\n        span_names: [ok, "
         "'a(?<=b)']\n",
         "p.yaml:6:26: processors::filter: spans::exclude::span_names::1: invalid regex at byte "
         "2: lookbehind is not supported (not RE2 syntax)\n"},
        {"    spans:\n      exclude:\n        match_type: strict\n        span_kinds: [server]\n",
         "p.yaml:6:22: processors::filter: spans::exclude::span_kinds::0: span_kinds string must "
         "match one of the standard span kinds when match_type=strict: [SPAN_KIND_CLIENT "
         "SPAN_KIND_CONSUMER SPAN_KIND_INTERNAL SPAN_KIND_PRODUCER SPAN_KIND_SERVER]\n"},
        {"    spans:\n      exclude:\n        match_type: strict\n        attributes: [{value: "
         "x}]\n",
         "p.yaml:6:22: processors::filter: spans::exclude::attributes::0: can't have empty key in "
         "the list of attributes\n"},
        {"    logs:\n      include:\n        severity_number: {min: LOUD}\n",
         "p.yaml:5:32: processors::filter: logs::include::severity_number::min: 'LOUD' is not a "
         "valid severity\n"},
        {"    metrics:\n      exclude:\n        match_type: expr\n        expressions: [x]\n",
         "p.yaml:5:21: processors::filter: metrics::exclude::match_type: expr is not supported "
         "by otelmon: write the expressions as OTTL conditions (metrics::metric, "
         "metrics::datapoint)\n"},
        {"    traces:\n      span: ['true']\n    spans:\n      exclude: {match_type: strict, "
         "services: [a]}\n",
         "p.yaml:6:7: processors::filter: spans: cannot use ottl conditions and include/exclude "
         "for spans at the same time\n"},
    };
    size_t bad = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char yaml[2048];
        snprintf(yaml, sizeof yaml, "processors:\n  filter:\n%s%s", cases[i].yaml,
                 PIPELINE("traces"));
        char *p = problems_of(yaml);
        bool same = strcmp(p, cases[i].want) == 0;
        if (!same) {
            fprintf(stderr, "    case %zu: got %s", i, p);
            bad++;
        }
        free(p);
    }
    ASSERT_EQ_UINT(bad, 0);
}

/* otelcol-contrib's README examples of the legacy form, as written there. */
static void test_legacy_readme_examples_validate(void)
{
    char *p = problems_of("processors:\n"
                          "  filter/1:\n"
                          "    metrics:\n"
                          "      include:\n"
                          "        match_type: regexp\n"
                          "        metric_names:\n"
                          "          - prefix/.*\n"
                          "          - prefix_.*\n"
                          "        resource_attributes:\n"
                          "          - key: container.name\n"
                          "            value: app_container_1\n"
                          "      exclude:\n"
                          "        match_type: strict\n"
                          "        metric_names:\n"
                          "          - hello_world\n"
                          "          - hello/world\n"
                          "  filter/2:\n"
                          "    logs:\n"
                          "      include:\n"
                          "        match_type: strict\n"
                          "        resource_attributes:\n"
                          "          - key: host.name\n"
                          "            value: just_this_one_hostname\n"
                          "  filter/severity_number:\n"
                          "    logs:\n"
                          "      include:\n"
                          "        severity_number:\n"
                          "          min: \"INFO\"\n"
                          "          match_undefined: true\n"
                          "  filter/spans:\n"
                          "    spans:\n"
                          "      include:\n"
                          "        match_type: strict\n"
                          "        services:\n"
                          "          - app_3\n"
                          "      exclude:\n"
                          "        match_type: regexp\n"
                          "        services:\n"
                          "          - app_1\n"
                          "          - app_2\n"
                          "        span_names:\n"
                          "          - hello_world\n"
                          "          - hello/world\n"
                          "        attributes:\n"
                          "          - key: container.name\n"
                          "            value: (app_container_1|app_container_2)\n"
                          "        libraries:\n"
                          "          - name: opentelemetry\n"
                          "            version: 0.0-beta\n"
                          "        resources:\n"
                          "          - key: container.host\n"
                          "            value: (localhost|127.0.0.1)\n"
                          "exporters:\n"
                          "  debug:\n"
                          "receivers:\n"
                          "  otlp:\n"
                          "    protocols:\n"
                          "      grpc:\n"
                          "service:\n"
                          "  pipelines:\n"
                          "    traces:\n"
                          "      receivers: [otlp]\n"
                          "      processors: [filter/spans]\n"
                          "      exporters: [debug]\n"
                          "    metrics:\n"
                          "      receivers: [otlp]\n"
                          "      processors: [filter/1]\n"
                          "      exporters: [debug]\n"
                          "    logs:\n"
                          "      receivers: [otlp]\n"
                          "      processors: [filter/2, filter/severity_number]\n"
                          "      exporters: [debug]\n");
    ASSERT_EQ_STR(p, "");
    free(p);
}

static void test_lifecycle(void)
{
    om_test_lifecycle(&proc_filter_factory, NULL);
    om_test_lifecycle(&proc_filter_factory,
                      "{traces: {span: ['name == \"x\"'], spanevent: ['name == \"y\"']}, "
                      "metrics: {metric: ['name == \"x\"'], datapoint: ['value_int == 1']}, "
                      "logs: {log_record: ['body == \"x\"']}}");
    ASSERT_EQ_UINT(proc_filter_factory.caps & OM_CAP_MUTATES_DATA, OM_CAP_MUTATES_DATA);
}

int main(void)
{
    om_log_set_level(OM_LOG_NONE);
    OM_RUN(test_spans);
    OM_RUN(test_span_events);
    OM_RUN(test_metrics_and_points);
    OM_RUN(test_logs);
    OM_RUN(test_all_dropped_is_not_passed_on);
    OM_RUN(test_untouched_batches_keep_their_bytes);
    OM_RUN(test_shared_batches_are_copied_on_write);
    OM_RUN(test_no_conditions_passes_everything);
    OM_RUN(test_error_mode_propagate_fails_the_batch);
    OM_RUN(test_error_mode_ignore_and_silent_go_on);
    OM_RUN(test_wire_path_drops_what_decoding_drops);
    OM_RUN(test_wire_path_steps_aside_for_what_only_decoding_reads);
    OM_RUN(test_wire_path_error_modes);
    OM_RUN(test_config_errors_point_into_the_condition);
    OM_RUN(test_config_key_errors);
    OM_RUN(test_readme_example_validates);
    OM_RUN(test_legacy_spans);
    OM_RUN(test_legacy_metrics);
    OM_RUN(test_legacy_logs);
    OM_RUN(test_legacy_config_errors);
    OM_RUN(test_legacy_readme_examples_validate);
    OM_RUN(test_lifecycle);
    return om_test_summary();
}
