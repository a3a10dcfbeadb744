/* attributes_test.c: the attributes processor: where the actions apply for each signal
 * (span, log record and data point attributes; not span events, resources or scopes),
 * include/exclude with every property otelcol has, the fast path (a batch nothing applies to
 * is forwarded with its wire bytes), copy-on-write of shared batches, config errors with
 * file:line:column, and the generic lifecycle. */
#include <stdlib.h>

#include "attributes.h"
#include "config.h"
#include "om_test.h"
#include "om_testdata.h"
#include "pipeline.h"

extern const om_factory_t proc_attributes_factory;

/* ------------------------------------------------------------------------------------------ */
/* Fixture                                                                                    */

typedef struct fixture {
    uv_loop_t loop;
    om_host_t host;
    proc_attributes_cfg_t *cfg; /* om_test_config_load's */
    void *self;
    om_batch_t *out; /* what the processor passed on */
    int consumed;
} fixture_t;

static int capture(void *self, om_batch_t *b)
{
    fixture_t *f = self;
    if (f->out != NULL) {
        om_batch_release(f->out);
    }
    f->out = b;
    f->consumed++;
    return 0;
}

/* Make the processor for sigs from "c: <flow>"; on a config or create error, returns its text
 * ("at: msg") in err_text and leaves no processor. */
static bool setup(fixture_t *f, const char *flow, unsigned sigs, char *err_text, size_t n)
{
    memset(f, 0, sizeof *f);
    if (uv_loop_init(&f->loop) != 0) {
        return false;
    }
    om_test_host_init(&f->host, &f->loop);
    const char *why = "";
    f->cfg = om_test_config_load(&proc_attributes_factory, flow, &why);
    int rc = f->cfg != NULL ? 0 : OM_ECONFIG;
    om_err_t err = {0};
    om_create_args_t a = {.cfg = f->cfg,
                          .id = "attributes",
                          .log_name = "processor/attributes",
                          .host = &f->host,
                          .signals = sigs};
    for (int i = 0; i < OM_SIG_COUNT; i++) {
        a.next[i] = (om_consumer_t){f, capture};
    }
    if (rc == 0) {
        rc = proc_attributes_factory.create(&a, &f->self, &err);
    }
    char create_err[512];
    snprintf(create_err, sizeof create_err, "%s%s%s", err.at, err.at[0] ? ": " : "", err.msg);
    const char *problem = f->cfg == NULL ? why : create_err;
    if (err_text != NULL) {
        snprintf(err_text, n, "%s", problem);
    } else if (rc != 0) {
        fprintf(stderr, "    %s\n", problem);
    }
    return rc == 0;
}

static void set_done(void *arg)
{
    *(int *)arg = 1;
}

static void teardown(fixture_t *f)
{
    if (f->self != NULL) {
        int done = 0;
        proc_attributes_factory.shutdown(f->self, set_done, &done);
        proc_attributes_factory.destroy(f->self);
    }
    if (f->out != NULL) {
        om_batch_release(f->out);
    }
    om_test_config_free(&proc_attributes_factory, f->cfg);
    om_test_host_close(&f->host);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    uv_loop_close(&f->loop);
}

static int consume(fixture_t *f, om_batch_t *b)
{
    switch (b->signal) {
    case OM_SIG_TRACES:
        return proc_attributes_factory.consume_traces(f->self, b);
    case OM_SIG_METRICS:
        return proc_attributes_factory.consume_metrics(f->self, b);
    default:
        return proc_attributes_factory.consume_logs(f->self, b);
    }
}

/* ---- describing attributes --------------------------------------------------------------- */

typedef struct dump {
    om_strbuf_t sb;
} dump_t;

static void put_attrs(om_strbuf_t *sb, const om_attrs_t *a)
{
    om_strbuf_putc(sb, '{');
    for (size_t i = 0; i < om_attrs_count(a); i++) {
        const om_keyvalue_t *kv = om_attrs_at(a, i);
        om_strbuf_printf(sb, "%s%s=", i > 0 ? " " : "", kv->key);
        om_anyvalue_to_string(kv->value, sb);
    }
    om_strbuf_putc(sb, '}');
}

static int dump_item(om_item_t *it, void *arg)
{
    dump_t *d = arg;
    if (d->sb.len > 0) {
        om_strbuf_putc(&d->sb, ' ');
    }
    put_attrs(&d->sb, &it->attrs);
    return OM_KEEP;
}

/* The attributes of every item of a level, "{a=1 b=x} {...}", in a static buffer (4 in
 * turn). */
static const char *attrs_at(om_batch_t **b, om_level_t level)
{
    static char out[4][2048];
    static int turn;
    char *o = out[turn++ % 4];
    dump_t d;
    om_strbuf_init(&d.sb, 0);
    om_batch_walk(b, level, dump_item, &d, NULL);
    snprintf(o, 2048, "%s", d.sb.data != NULL ? d.sb.data : "");
    om_strbuf_free(&d.sb);
    return o;
}

/* Run text through the processor made from flow; the attributes of level afterwards. */
static const char *through(fixture_t *f, const char *text, om_level_t level)
{
    om_batch_t *b = om_testdata_otlp("%s", text);
    if (consume(f, b) != 0 || f->out == NULL) {
        return "(refused)";
    }
    return attrs_at(&f->out, level);
}

#define UPSERT_X "{actions: [{key: x, action: upsert, value: 1}]"

/* Runs text through UPSERT_X plus the given include/exclude and returns the level's
 * attributes. */
#define FILTERED(props, sigs, text, level, want)                                                   \
    do {                                                                                           \
        fixture_t f_;                                                                              \
        bool ok_ = setup(&f_, UPSERT_X ", " props "}", (sigs), NULL, 0);                           \
        const char *got_ = ok_ ? through(&f_, (text), (level)) : "(setup failed)";                 \
        char copy_[2048];                                                                          \
        snprintf(copy_, sizeof copy_, "%s", got_);                                                 \
        teardown(&f_);                                                                             \
        ASSERT_EQ_STR(copy_, (want));                                                              \
    } while (0)

/* ------------------------------------------------------------------------------------------ */
/* Where the actions apply                                                                    */

static void test_spans(void)
{
    fixture_t f;
    ASSERT_TRUE(setup(&f,
                      "{actions: [{key: env, action: upsert, value: prod},"
                      " {key: password, action: delete}]}",
                      OM_SIG_TRACES, NULL, 0));
    const char *text = "resource service.name=a password='r'; scope s password='s';"
                       "span GET password='p' k=1; event ex password='e';"
                       "span POST";
    ASSERT_EQ_STR(through(&f, text, OM_LEVEL_SPAN), "{k=1 env=prod} {env=prod}");
    /* Span events, resources and scopes are left alone, as in otelcol. */
    ASSERT_EQ_STR(attrs_at(&f.out, OM_LEVEL_SPAN_EVENT), "{password=e}");
    ASSERT_EQ_STR(attrs_at(&f.out, OM_LEVEL_RESOURCE), "{service.name=a password=r}");
    ASSERT_EQ_STR(attrs_at(&f.out, OM_LEVEL_SCOPE), "{password=s}");
    ASSERT_EQ_UINT(f.out->items, 2);
    teardown(&f);
}

static void test_logs(void)
{
    fixture_t f;
    ASSERT_TRUE(setup(&f,
                      "{actions: [{key: user, action: hash}, {key: n, action: convert,"
                      " converted_type: int}]}",
                      OM_SIG_LOGS, NULL, 0));
    ASSERT_EQ_STR(
        through(&f, "resource user=r; log 'hi' user='x' n='42'; log 'ho' n='z'", OM_LEVEL_LOG),
        "{user=2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881 n=42} "
        "{n=z}");
    ASSERT_EQ_STR(attrs_at(&f.out, OM_LEVEL_RESOURCE), "{user=r}");
    teardown(&f);
}

/* Data points of every metric type; the metric's own metadata is not touched. */
static void test_metrics(void)
{
    fixture_t f;
    ASSERT_TRUE(
        setup(&f, "{actions: [{key: host, action: insert, value: h1}]}", OM_SIG_METRICS, NULL, 0));
    const char *text = "metrics; metric g type:gauge; point 1 a=1; point 2 host='h0';"
                       "metric s type:sum; point 1.5;"
                       "metric h type:histogram; point count:2 sum:3;"
                       "metric e type:exphistogram; point count:1 sum:1;"
                       "metric q type:summary; point count:1 sum:2";
    ASSERT_EQ_STR(through(&f, text, OM_LEVEL_DATAPOINT),
                  "{a=1 host=h1} {host=h0} {host=h1} {host=h1} {host=h1} {host=h1}");
    teardown(&f);
}

/* Each value type of the YAML value is kept. */
static void test_value_types(void)
{
    fixture_t f;
    ASSERT_TRUE(
        setup(&f,
              "{actions: [{key: i, action: insert, value: 2245},"
              " {key: d, action: insert, value: 0.5}, {key: b, action: insert, value: true},"
              " {key: s, action: insert, value: '7'}, {key: a, action: insert, value: [x]},"
              " {key: m, action: insert, value: {k: 1}}]}",
              OM_SIG_TRACES, NULL, 0));
    om_batch_t *b = om_testdata_otlp("span x");
    ASSERT_EQ_INT(consume(&f, b), 0);
    om_span_t *span = f.out->traces->resource_spans[0]->scope_spans[0]->spans[0];
    om_attrs_t a = OM_ATTRS(f.out, span);
    ASSERT_EQ_INT(om_attrs_get(&a, "i")->value_case, OM_ANYVALUE_INT);
    ASSERT_EQ_INT(om_attrs_get(&a, "i")->int_value, 2245);
    ASSERT_EQ_INT(om_attrs_get(&a, "d")->value_case, OM_ANYVALUE_DOUBLE);
    ASSERT_EQ_INT(om_attrs_get(&a, "b")->value_case, OM_ANYVALUE_BOOL);
    ASSERT_EQ_INT(om_attrs_get(&a, "s")->value_case, OM_ANYVALUE_STRING);
    ASSERT_EQ_INT(om_attrs_get(&a, "a")->value_case, OM_ANYVALUE_ARRAY);
    ASSERT_EQ_INT(om_attrs_get(&a, "m")->value_case, OM_ANYVALUE_KVLIST);
    teardown(&f);
}

/* ------------------------------------------------------------------------------------------ */
/* The fast path and copy-on-write                                                            */

static void test_no_change_keeps_wire_bytes(void)
{
    fixture_t f;
    ASSERT_TRUE(setup(&f, "{actions: [{key: password, action: delete}]}", OM_SIG_TRACES, NULL, 0));
    om_batch_t *b = om_testdata_wire(om_testdata_otlp("span a k=1; span b"));
    ASSERT_TRUE(b->raw_valid);
    ASSERT_EQ_INT(consume(&f, b), 0);
    ASSERT_TRUE(f.out == b);       /* the same batch */
    ASSERT_TRUE(f.out->raw_valid); /* still forwarded as it came */
    /* One span with a password: edited on the wire (delete needs no value parsed): new
     * bytes, still not decoded. */
    b = om_testdata_wire(om_testdata_otlp("span a k=1; span b password='p'"));
    const uint8_t *before = b->raw[0].data;
    ASSERT_EQ_INT(consume(&f, b), 0);
    ASSERT_TRUE(f.out->raw_valid && f.out->msg == NULL && f.out->raw[0].data != before);
    ASSERT_EQ_STR(attrs_at(&f.out, OM_LEVEL_SPAN), "{k=1} {}");
    teardown(&f);
    /* hash needs the value: the decoding path, and the wire bytes go. */
    ASSERT_TRUE(setup(&f, "{actions: [{key: password, action: hash}]}", OM_SIG_TRACES, NULL, 0));
    b = om_testdata_wire(om_testdata_otlp("span a k=1; span b"));
    ASSERT_EQ_INT(consume(&f, b), 0);
    ASSERT_TRUE(f.out == b && f.out->raw_valid);
    b = om_testdata_wire(om_testdata_otlp("span a k=1; span b password='x'"));
    ASSERT_EQ_INT(consume(&f, b), 0);
    ASSERT_TRUE(!f.out->raw_valid);
    ASSERT_EQ_STR(
        attrs_at(&f.out, OM_LEVEL_SPAN),
        "{k=1} {password=2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881}");
    teardown(&f);
}

static void test_shared_batch_is_copied(void)
{
    fixture_t f;
    ASSERT_TRUE(setup(&f, UPSERT_X "}", OM_SIG_TRACES, NULL, 0));
    om_batch_t *b = om_testdata_otlp("span a k=1");
    om_batch_ref(b); /* another pipeline holds it too */
    ASSERT_EQ_INT(consume(&f, b), 0);
    ASSERT_TRUE(f.out != b);
    ASSERT_EQ_STR(attrs_at(&f.out, OM_LEVEL_SPAN), "{k=1 x=1}");
    ASSERT_EQ_STR(attrs_at(&b, OM_LEVEL_SPAN), "{k=1}"); /* the other holder's is untouched */
    om_batch_release(b);
    teardown(&f);
}

/* ------------------------------------------------------------------------------------------ */
/* include / exclude                                                                          */

static void test_include_spans(void)
{
    const char *text = "resource service.name=svc-a; scope lib@1.2;"
                       "span 'GET /health' kind:server http.route='/health' n=1;"
                       "span 'POST /order' kind:client n=2.5";
    FILTERED("include: {match_type: strict, services: [svc-a]}", OM_SIG_TRACES, text, OM_LEVEL_SPAN,
             "{http.route=/health n=1 x=1} {n=2.5 x=1}");
    FILTERED("include: {match_type: strict, services: [other]}", OM_SIG_TRACES, text, OM_LEVEL_SPAN,
             "{http.route=/health n=1} {n=2.5}");
    FILTERED("include: {match_type: regexp, services: ['^svc-']}", OM_SIG_TRACES, text,
             OM_LEVEL_SPAN, "{http.route=/health n=1 x=1} {n=2.5 x=1}");
    FILTERED("include: {match_type: strict, span_names: ['POST /order']}", OM_SIG_TRACES, text,
             OM_LEVEL_SPAN, "{http.route=/health n=1} {n=2.5 x=1}");
    FILTERED("include: {match_type: regexp, span_names: ['health']}", OM_SIG_TRACES, text,
             OM_LEVEL_SPAN, "{http.route=/health n=1 x=1} {n=2.5}");
    FILTERED("include: {match_type: strict, span_kinds: [SPAN_KIND_CLIENT]}", OM_SIG_TRACES, text,
             OM_LEVEL_SPAN, "{http.route=/health n=1} {n=2.5 x=1}");
    FILTERED("exclude: {match_type: strict, attributes: [{key: http.route, value: /health}]}",
             OM_SIG_TRACES, text, OM_LEVEL_SPAN, "{http.route=/health n=1} {n=2.5 x=1}");
    /* A key without a value: present with any value. */
    FILTERED("include: {match_type: strict, attributes: [{key: http.route}]}", OM_SIG_TRACES, text,
             OM_LEVEL_SPAN, "{http.route=/health n=1 x=1} {n=2.5}");
    /* strict compares values with their type: 1 is not 1.0 or "1". */
    FILTERED("include: {match_type: strict, attributes: [{key: n, value: 1}]}", OM_SIG_TRACES, text,
             OM_LEVEL_SPAN, "{http.route=/health n=1 x=1} {n=2.5}");
    FILTERED("include: {match_type: strict, attributes: [{key: n, value: '1'}]}", OM_SIG_TRACES,
             text, OM_LEVEL_SPAN, "{http.route=/health n=1} {n=2.5}");
    /* regexp matches a value's string form: doubles as Go's 'f' format. */
    FILTERED("include: {match_type: regexp, attributes: [{key: n, value: '^2\\.5$'}]}",
             OM_SIG_TRACES, text, OM_LEVEL_SPAN, "{http.route=/health n=1} {n=2.5 x=1}");
    FILTERED("include: {match_type: strict, resources: [{key: service.name, value: svc-a}]}",
             OM_SIG_TRACES, text, OM_LEVEL_SPAN, "{http.route=/health n=1 x=1} {n=2.5 x=1}");
    FILTERED("include: {match_type: strict, libraries: [{name: lib, version: '1.2'}]}",
             OM_SIG_TRACES, text, OM_LEVEL_SPAN, "{http.route=/health n=1 x=1} {n=2.5 x=1}");
    FILTERED("include: {match_type: strict, libraries: [{name: lib, version: '2'}]}", OM_SIG_TRACES,
             text, OM_LEVEL_SPAN, "{http.route=/health n=1} {n=2.5}");
    FILTERED("include: {match_type: regexp, libraries: [{name: '^l'}]}", OM_SIG_TRACES, text,
             OM_LEVEL_SPAN, "{http.route=/health n=1 x=1} {n=2.5 x=1}");
    /* All given properties must match. */
    FILTERED("include: {match_type: strict, services: [svc-a], span_kinds: [SPAN_KIND_SERVER]}",
             OM_SIG_TRACES, text, OM_LEVEL_SPAN, "{http.route=/health n=1 x=1} {n=2.5}");
    /* include first, then exclude. */
    FILTERED("include: {match_type: regexp, span_names: ['/']},"
             " exclude: {match_type: strict, span_names: ['GET /health']}",
             OM_SIG_TRACES, text, OM_LEVEL_SPAN, "{http.route=/health n=1} {n=2.5 x=1}");
}

static void test_include_services_without_name(void)
{
    FILTERED("include: {match_type: strict, services: ['<nil-service-name>']}", OM_SIG_TRACES,
             "span a", OM_LEVEL_SPAN, "{x=1}");
}

static void test_include_logs(void)
{
    const char *text = "resource service.name=a; scope s;"
                       "log 'GET /x' severity:info text:INFO k=1;"
                       "log 'boom' severity:error text:ERROR;"
                       "log 'quiet';"
                       "log 42 severity:warn";
    FILTERED("include: {match_type: strict, log_bodies: [boom]}", OM_SIG_LOGS, text, OM_LEVEL_LOG,
             "{k=1} {x=1} {} {}");
    /* Only string bodies match. */
    FILTERED("include: {match_type: regexp, log_bodies: ['.']}", OM_SIG_LOGS, text, OM_LEVEL_LOG,
             "{k=1 x=1} {x=1} {x=1} {}");
    FILTERED("include: {match_type: strict, log_severity_texts: [ERROR, INFO]}", OM_SIG_LOGS, text,
             OM_LEVEL_LOG, "{k=1 x=1} {x=1} {} {}");
    FILTERED("include: {log_severity_number: {min: 13}}", OM_SIG_LOGS, text, OM_LEVEL_LOG,
             "{k=1} {x=1} {} {x=1}");
    FILTERED("include: {log_severity_number: {min: 13, match_undefined: true}}", OM_SIG_LOGS, text,
             OM_LEVEL_LOG, "{k=1} {x=1} {x=1} {x=1}");
    FILTERED("exclude: {match_type: strict, attributes: [{key: k}]}", OM_SIG_LOGS, text,
             OM_LEVEL_LOG, "{k=1} {x=1} {x=1} {x=1}");
}

static void test_include_metrics(void)
{
    const char *text = "resource service.name=a; metric cpu; point 1; point 2; metric mem; point 3";
    FILTERED("include: {match_type: strict, metric_names: [cpu]}", OM_SIG_METRICS, text,
             OM_LEVEL_DATAPOINT, "{x=1} {x=1} {}");
    FILTERED("exclude: {match_type: regexp, metric_names: ['^c']}", OM_SIG_METRICS, text,
             OM_LEVEL_DATAPOINT, "{} {} {x=1}");
    FILTERED("include: {match_type: strict, resources: [{key: service.name, value: b}]}",
             OM_SIG_METRICS, text, OM_LEVEL_DATAPOINT, "{} {} {}");
}

/* ------------------------------------------------------------------------------------------ */
/* Config errors                                                                              */

/* The messages of building a graph with this processors section (validate only). */
static char *problems_of(const char *processors, bool create, const char *pipeline)
{
    char yaml[4096];
    snprintf(yaml, sizeof yaml,
             "receivers:\n"
             "  otlp:\n"
             "    protocols:\n"
             "      grpc:\n"
             "        endpoint: 127.0.0.1:0\n"
             "processors:\n"
             "%s"
             "exporters:\n"
             "  debug:\n"
             "service:\n"
             "  pipelines:\n"
             "    %s:\n"
             "      receivers: [otlp]\n"
             "      processors: [attributes]\n"
             "      exporters: [debug]\n",
             processors, pipeline);
    om_diags_t d = {0};
    om_config_t *cfg = NULL;
    uv_loop_t loop;
    uv_loop_init(&loop);
    om_host_t host;
    om_test_host_init(&host, &loop);
    if (om_config_load_string("a.yaml", yaml, strlen(yaml), &cfg, &d) == 0) {
        om_graph_t *g = NULL;
        om_graph_build(cfg, &host, !create, &g, &d);
        om_graph_free(g);
    }
    om_strbuf_t all;
    om_strbuf_init(&all, 0);
    om_strbuf_puts(&all, "");
    for (size_t i = 0; i < d.n; i++) {
        om_strbuf_printf(&all, "%s\n", d.msgs[i]);
    }
    om_diags_free(&d);
    om_config_free(cfg);
    om_test_host_close(&host);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return om_strbuf_steal(&all, NULL);
}

static void test_config_errors_point_at_the_key(void)
{
    char *p = problems_of("  attributes:\n"
                          "    actions:\n"
                          "      - key: a\n"
                          "        action: insert\n"
                          "        value: 1\n"
                          "      - key: b\n"
                          "        action: extract\n"
                          "        pattern: '(x'\n",
                          false, "traces");
    ASSERT_EQ_STR(p, "a.yaml:14:18: processors::attributes: actions[1]::pattern: field "
                     "\"pattern\" has invalid pattern: \"(x\": missing closing parenthesis at "
                     "offset 2\n");
    free(p);
    p = problems_of("  attributes:\n"
                    "    include:\n"
                    "      match_type: strict\n",
                    false, "traces");
    ASSERT_EQ_STR(p, "a.yaml:8:5: processors::attributes: actions: missing required field "
                     "\"actions\"\n");
    free(p);
    p = problems_of("  attributes:\n"
                    "    actions: [{key: a, action: delete}]\n"
                    "    include:\n"
                    "      match_type: strict\n",
                    false, "traces");
    ASSERT_CONTAINS(p, "a.yaml:10:7: processors::attributes: include: at least one of");
    free(p);
    p = problems_of("  attributes:\n"
                    "    actions: [{key: a, action: delete}]\n"
                    "    exclude:\n"
                    "      match_type: strict\n"
                    "      span_kinds: [server]\n",
                    false, "traces");
    ASSERT_EQ_STR(p, "a.yaml:11:19: processors::attributes: exclude::span_kinds: span_kinds string "
                     "must match one of the standard span kinds when match_type=strict: "
                     "[SPAN_KIND_CLIENT SPAN_KIND_CONSUMER SPAN_KIND_INTERNAL SPAN_KIND_PRODUCER "
                     "SPAN_KIND_SERVER]\n");
    free(p);
    p = problems_of("  attributes:\n"
                    "    actions: [{key: a, action: delete}]\n"
                    "    include:\n"
                    "      match_type: regexp\n"
                    "      attributes: [{key: k, value: 1}]\n",
                    false, "traces");
    ASSERT_EQ_STR(p, "a.yaml:11:20: processors::attributes: include::attributes[0]: "
                     "match_type=regexp for \"k\" only supports Str, but found Int\n");
    free(p);
    p = problems_of("  attributes:\n"
                    "    actions: [{key: a, action: delete}]\n"
                    "    include:\n"
                    "      match_type: wildcard\n"
                    "      span_names: [a]\n",
                    false, "traces");
    ASSERT_EQ_STR(p, "a.yaml:10:7: processors::attributes: include: unrecognized match_type: "
                     "'wildcard', valid types are: [regexp strict]\n");
    free(p);
    p = problems_of("  attributes:\n"
                    "    actions:\n"
                    "      - {key: a, action: delete, colour: red}\n",
                    false, "traces");
    ASSERT_EQ_STR(p, "a.yaml:9:34: 'processors::attributes::actions[0]' has invalid keys: "
                     "colour\n");
    free(p);
}

/* Properties valid for spans only, in a logs pipeline: refused when the pipeline is made, with
 * otelcol's message. */
static void test_include_for_the_wrong_signal(void)
{
    char *p = problems_of("  attributes:\n"
                          "    actions: [{key: a, action: delete}]\n"
                          "    include:\n"
                          "      match_type: strict\n"
                          "      span_names: [a]\n",
                          true, "logs");
    ASSERT_CONTAINS(p, "cannot create: include: services, span_names, span_kinds and metric_names "
                       "are not valid for log records");
    free(p);
    /* In a traces pipeline the same config is fine. */
    p = problems_of("  attributes:\n"
                    "    actions: [{key: a, action: delete}]\n"
                    "    include:\n"
                    "      match_type: strict\n"
                    "      span_names: [a]\n",
                    true, "traces");
    ASSERT_EQ_STR(p, "");
    free(p);
}

static void test_lifecycle(void)
{
    om_test_lifecycle(&proc_attributes_factory,
                      "{actions: [{key: a, action: upsert, value: 1}, {key: b, action: delete}]}");
    ASSERT_TRUE((proc_attributes_factory.caps & OM_CAP_MUTATES_DATA) != 0);
}

int main(void)
{
    om_log_set_level(OM_LOG_ERROR);
    OM_RUN(test_spans);
    OM_RUN(test_logs);
    OM_RUN(test_metrics);
    OM_RUN(test_value_types);
    OM_RUN(test_no_change_keeps_wire_bytes);
    OM_RUN(test_shared_batch_is_copied);
    OM_RUN(test_include_spans);
    OM_RUN(test_include_services_without_name);
    OM_RUN(test_include_logs);
    OM_RUN(test_include_metrics);
    OM_RUN(test_config_errors_point_at_the_key);
    OM_RUN(test_include_for_the_wrong_signal);
    OM_RUN(test_lifecycle);
    return om_test_summary();
}
