/* ottl_test.c: the filter processor's OTTL subset, as a table of conditions with what they
 * give: true or false on a known item (built with om_testdata_otlp, or from OTLP JSON for map
 * and list values), an evaluation error with its message, or a compile error with its column
 * and message. Then the regexes (RE2 syntax kept, limits that stop catastrophic backtracking)
 * and the value helpers (Go's number and JSON formatting). */
#include <stdlib.h>

#include "filter.h"
#include "om_test.h"
#include "om_testdata.h"

enum {
    EVAL_ERR = -100,    /* evaluation fails; msg is a part of the message */
    COMPILE_ERR = -200, /* compile fails; msg is the start of the message */
};

enum { FIX_DSL, FIX_JSON };

typedef struct ottl_case {
    int line;
    ottl_ctx_t ctx;
    const char *cond;
    int want;
    const char *msg;
    int item;    /* which item of the fixture, in walk order */
    int fixture; /* FIX_DSL: the context's om_testdata_otlp batch; FIX_JSON: traces_json */
} ottl_case_t;

#define SPAN(c, w)                                                                                 \
    {                                                                                              \
        __LINE__, OTTL_CTX_SPAN, c, w, NULL, 0, FIX_DSL                                            \
    }
#define SPAN_ERR(c, w, m)                                                                          \
    {                                                                                              \
        __LINE__, OTTL_CTX_SPAN, c, w, m, 0, FIX_DSL                                               \
    }
#define JSON(c, w)                                                                                 \
    {                                                                                              \
        __LINE__, OTTL_CTX_SPAN, c, w, NULL, 0, FIX_JSON                                           \
    }
#define JSON_ERR(c, m)                                                                             \
    {                                                                                              \
        __LINE__, OTTL_CTX_SPAN, c, EVAL_ERR, m, 0, FIX_JSON                                       \
    }
#define EVENT(c, w)                                                                                \
    {                                                                                              \
        __LINE__, OTTL_CTX_SPANEVENT, c, w, NULL, 0, FIX_DSL                                       \
    }
#define METRIC(i, c, w)                                                                            \
    {                                                                                              \
        __LINE__, OTTL_CTX_METRIC, c, w, NULL, i, FIX_DSL                                          \
    }
#define POINT(i, c, w)                                                                             \
    {                                                                                              \
        __LINE__, OTTL_CTX_DATAPOINT, c, w, NULL, i, FIX_DSL                                       \
    }
#define LOG(i, c, w)                                                                               \
    {                                                                                              \
        __LINE__, OTTL_CTX_LOG, c, w, NULL, i, FIX_DSL                                             \
    }
#define BAD(ctx, c, m)                                                                             \
    {                                                                                              \
        __LINE__, ctx, c, COMPILE_ERR, m, 0, FIX_DSL                                               \
    }

static const char traces_dsl[] =
    "resource service.name=checkout host.cpu=8; scope lib@1.2;"
    "span 'GET /health' kind:server status:error message:boom "
    "trace:0102030405060708090a0b0c0d0e0f10 id:1112131415161718 start:100 end:2000000100 "
    "http.status_code=503 ratio=0.25 ok=false raw=0x0001 http.route='/health' user=Bob;"
    "event exception time:150 exception.type=IOError";

static const char metrics_dsl[] =
    "metrics; resource service.name=db; scope m;"
    "metric requests type:sum unit:1 temporality:cumulative monotonic:true;"
    "point 7 method=GET; point 2.5 method=POST;"
    "metric latency type:histogram unit:ms; point count:3 sum:1.5 method=GET;"
    "metric temp type:gauge; point -4;"
    "metric q type:summary desc:quantiles; point count:4 sum:8";

static const char logs_dsl[] =
    "logs; resource service.name=api; scope l;"
    "log 'password=hunter2' severity:warn text:WARN trace:0102030405060708090a0b0c0d0e0f10 "
    "n=1 user=bob;"
    "log 42 severity:debug;"
    "log";

static const char traces_json[] =
    "{\"resourceSpans\":[{\"resource\":{},\"scopeSpans\":[{\"spans\":[{\"name\":\"j\","
    "\"attributes\":["
    "{\"key\":\"http.status_code\",\"value\":{\"intValue\":\"503\"}},"
    "{\"key\":\"empty\",\"value\":{}},"
    "{\"key\":\"list\",\"value\":{\"arrayValue\":{\"values\":[{\"stringValue\":\"a\"},"
    "{\"intValue\":\"2\"}]}}},"
    "{\"key\":\"map\",\"value\":{\"kvlistValue\":{\"values\":[{\"key\":\"z\",\"value\":"
    "{\"stringValue\":\"<&>\"}},{\"key\":\"a\",\"value\":{\"doubleValue\":1e21}}]}}}]}]}]}]}";

static const ottl_case_t cases[] = {
    /* span: names, kinds, codes, attributes of every type */
    SPAN("name == \"GET /health\"", 1),
    SPAN("name != \"GET /health\"", 0),
    SPAN("kind == SPAN_KIND_SERVER", 1),
    SPAN("kind == 2", 1),
    SPAN("kind == SPAN_KIND_CLIENT", 0),
    SPAN("status.code == STATUS_CODE_ERROR", 1),
    SPAN("status.message == \"boom\"", 1),
    SPAN("attributes[\"http.status_code\"] == 503", 1),
    SPAN("attributes[\"http.status_code\"] >= 500 and attributes[\"http.status_code\"] < 600", 1),
    SPAN("attributes[\"http.status_code\"] == \"503\"", 0),
    SPAN("attributes[\"http.status_code\"] != \"503\"", 1),
    SPAN("attributes[\"missing\"] == nil", 1),
    SPAN("attributes[\"missing\"] != nil", 0),
    SPAN("attributes[\"http.route\"] == nil", 0),
    SPAN("attributes[\"ratio\"] < 0.5", 1),
    SPAN("attributes[\"ratio\"] == 0.25", 1),
    SPAN("attributes[\"http.status_code\"] > 502.5", 1),
    SPAN("attributes[\"ok\"] == false", 1),
    SPAN("attributes[\"ok\"] < true", 1),
    SPAN("attributes[\"raw\"] == 0x0001", 1),
    SPAN("attributes[\"raw\"] > 0x00", 1),
    SPAN("attributes[\"http.status_code\"] < nil", 0),
    SPAN("attributes[\"user\"] > \"Alice\"", 1),
    SPAN("resource.attributes[\"service.name\"] == \"checkout\"", 1),
    SPAN("resource.attributes[\"host.cpu\"] > 4", 1),
    SPAN("instrumentation_scope.name == \"lib\" and instrumentation_scope.version == \"1.2\"", 1),
    SPAN("scope.name == \"lib\"", 1),
    SPAN("span.name == \"GET /health\"", 1),
    SPAN("dropped_attributes_count == 0", 1),
    /* ids */
    SPAN("trace_id == TraceID(0x0102030405060708090a0b0c0d0e0f10)", 1),
    SPAN("trace_id.string == \"0102030405060708090a0b0c0d0e0f10\"", 1),
    SPAN("span_id == SpanID(0x1112131415161718)", 1),
    SPAN("span_id != SpanID(0x1112131415161719)", 1),
    SPAN("parent_span_id == SpanID(0x0000000000000000)", 1),
    SPAN("parent_span_id.string == \"\"", 1),
    SPAN("IsRootSpan()", 1),
    SPAN("trace_id == 0x0102030405060708090a0b0c0d0e0f10", 0),
    /* arithmetic */
    SPAN("end_time_unix_nano - start_time_unix_nano > 1000000000", 1),
    SPAN("(end_time_unix_nano - start_time_unix_nano) / 1000000 == 2000", 1),
    SPAN("attributes[\"ratio\"] + 1.0 > 1.2", 1),
    SPAN("2 * 3 + 1 == 7", 1),
    SPAN("2 * (3 + 1) == 8", 1),
    SPAN_ERR("1 / 0 == 1", EVAL_ERR, "attempted to divide by 0"),
    SPAN_ERR("attributes[\"ratio\"] + 1 > 0", EVAL_ERR, "two int64 or two float64"),
    /* functions */
    SPAN("IsMatch(name, \"^GET /health$\")", 1),
    SPAN("IsMatch(name, \"health\")", 1),
    SPAN("IsMatch(name, \"^health\")", 0),
    SPAN("IsMatch(attributes[\"http.status_code\"], \"^5\\\\d\\\\d$\")", 1),
    SPAN("IsMatch(attributes[\"missing\"], \".*\")", 0),
    SPAN("IsMatch(attributes[\"raw\"], \"^0001$\")", 1),
    SPAN("IsMatch(attributes[\"ratio\"], \"^0.25$\")", 1),
    SPAN("IsMatch(attributes[\"ok\"], \"false\")", 1),
    SPAN("IsMatch(name, \"(?i)^get\")", 1),
    SPAN("IsString(name)", 1),
    SPAN("IsString(attributes[\"http.status_code\"])", 0),
    SPAN("IsInt(attributes[\"http.status_code\"])", 1),
    SPAN("IsInt(kind)", 1),
    SPAN("IsDouble(attributes[\"ratio\"]) and IsBool(attributes[\"ok\"])", 1),
    SPAN("Len(name) == 11", 1),
    SPAN("Len(attributes) == 6", 1),
    SPAN_ERR("Len(attributes[\"http.status_code\"]) == 3", EVAL_ERR, "Len: the target must be"),
    SPAN("Int(attributes[\"user\"]) == nil", 1),
    SPAN("Int(attributes[\"ratio\"]) == 0", 1),
    SPAN("Int(\"42\") == 42", 1),
    SPAN("Int(\"2.0\") == nil", 1),
    SPAN("Int(true) == 1", 1),
    SPAN("Double(\"2.5\") == 2.5", 1),
    SPAN("String(attributes[\"http.status_code\"]) == \"503\"", 1),
    SPAN("Concat([name, attributes[\"user\"]], \"|\") == \"GET /health|Bob\"", 1),
    SPAN("Concat([attributes[\"missing\"], 1, 2.5, false], \"-\") == \"<nil>-1-2.5-false\"", 1),
    SPAN_ERR("Concat([name], attributes[\"http.status_code\"]) == \"x\"", EVAL_ERR,
             "the delimiter must be a string"),
    SPAN("IsMatch(Concat([name, \"!\"], \"\"), \"h!$\")", 1),
    /* boolean structure: precedence, short-circuits, errors */
    SPAN("not (name == \"GET /health\")", 0),
    SPAN("not name == \"x\"", 1),
    SPAN("name == \"x\" or kind == SPAN_KIND_SERVER", 1),
    SPAN("name == \"x\" or kind == SPAN_KIND_CLIENT and true", 0),
    SPAN("true", 1),
    SPAN("false or (true and not false)", 1),
    SPAN("((name == \"x\") or (kind == 2)) and true", 1),
    SPAN("nil == nil", 1),
    SPAN("nil != 0", 1),
    SPAN("\"b\" > \"a\"", 1),
    SPAN_ERR("Len(attributes[\"http.status_code\"]) == 3 or true", EVAL_ERR, "Len"),
    SPAN("true or Len(attributes[\"http.status_code\"]) == 3", 1),
    SPAN("false and Len(attributes[\"http.status_code\"]) == 3", 0),
    /* maps, lists and empty values (OTLP JSON) */
    JSON("attributes[\"list\"][0] == \"a\"", 1),
    JSON("attributes[\"list\"][1] == 2", 1),
    JSON_ERR("attributes[\"list\"][2] == nil", "index 2 out of bounds"),
    JSON("attributes[\"map\"][\"z\"] == \"<&>\"", 1),
    JSON("attributes[\"map\"][\"nope\"] == nil", 1),
    JSON("Len(attributes[\"list\"]) == 2 and Len(attributes[\"map\"]) == 2", 1),
    JSON("String(attributes[\"map\"]) == "
         "\"{\\\"a\\\":1e+21,\\\"z\\\":\\\"\\\\u003c\\\\u0026\\\\u003e\\\"}\"",
         1),
    JSON("String(attributes[\"list\"]) == \"[\\\"a\\\",2]\"", 1),
    JSON("attributes[\"empty\"] == nil", 1),
    JSON("IsMap(attributes[\"map\"]) and IsList(attributes[\"list\"])", 1),
    JSON("attributes[\"map\"] == attributes[\"map\"]", 1),
    JSON("attributes[\"map\"] != attributes[\"list\"]", 1),
    JSON_ERR("attributes[\"http.status_code\"][0] == 1", "type int64 does not support int"),
    /* span events */
    EVENT("name == \"exception\"", 1),
    EVENT("attributes[\"exception.type\"] == \"IOError\"", 1),
    EVENT("span.name == \"GET /health\"", 1),
    EVENT("time_unix_nano == 150", 1),
    EVENT("spanevent.name == \"exception\" and resource.attributes[\"service.name\"] == "
          "\"checkout\"",
          1),
    EVENT("span.kind == SPAN_KIND_SERVER", 1),
    /* metrics */
    METRIC(0, "name == \"requests\"", 1),
    METRIC(0, "type == METRIC_DATA_TYPE_SUM", 1),
    METRIC(0, "unit == \"1\"", 1),
    METRIC(0, "aggregation_temporality == AGGREGATION_TEMPORALITY_CUMULATIVE", 1),
    METRIC(0, "is_monotonic == true", 1),
    METRIC(1, "type == METRIC_DATA_TYPE_HISTOGRAM", 1),
    METRIC(2, "aggregation_temporality == nil and is_monotonic == nil", 1),
    METRIC(0, "HasAttrKeyOnDatapoint(\"method\")", 1),
    METRIC(0, "HasAttrOnDatapoint(\"method\", \"POST\")", 1),
    METRIC(0, "HasAttrOnDatapoint(\"method\", \"PUT\")", 0),
    METRIC(3, "description == \"quantiles\" and type == METRIC_DATA_TYPE_SUMMARY", 1),
    METRIC(0, "resource.attributes[\"service.name\"] == \"db\"", 1),
    /* data points */
    POINT(0, "attributes[\"method\"] == \"GET\"", 1),
    POINT(0, "value_int == 7", 1),
    POINT(0, "value_double == 0.0", 1),
    POINT(1, "value_double == 2.5", 1),
    POINT(1, "metric.name == \"requests\" and metric.type == METRIC_DATA_TYPE_SUM", 1),
    POINT(2, "count == 3 and sum == 1.5", 1),
    POINT(2, "value_int == nil", 1),
    POINT(3, "value_int < 0", 1),
    POINT(0, "count == nil", 1),
    POINT(4, "metric.name == \"q\" and count == 4", 1),
    POINT(0, "resource.attributes[\"service.name\"] == \"db\"", 1),
    /* logs */
    LOG(0, "IsMatch(body, \"password\")", 1),
    LOG(0, "severity_number >= SEVERITY_NUMBER_WARN", 1),
    LOG(0, "severity_number < SEVERITY_NUMBER_WARN", 0),
    LOG(0, "severity_number == SEVERITY_NUMBER_WARN2", 0),
    LOG(0, "severity_text == \"WARN\"", 1),
    LOG(0, "attributes[\"n\"] == 1", 1),
    LOG(0, "trace_id.string == \"0102030405060708090a0b0c0d0e0f10\"", 1),
    LOG(0, "span_id.string == \"\"", 1),
    LOG(0, "Len(body) == 16", 1),
    LOG(0, "log.body == \"password=hunter2\"", 1),
    LOG(1, "body == 42 and IsInt(body)", 1),
    LOG(1, "severity_number == SEVERITY_NUMBER_DEBUG", 1),
    LOG(2, "body == nil", 1),
    LOG(2, "IsMatch(body, \".*\")", 0),

    /* compile errors: the column in the condition and what is wrong */
    BAD(OTTL_CTX_SPAN, "name ==", "column 8: unexpected end of the condition (expected a value)"),
    BAD(OTTL_CTX_SPAN, "name = \"x\"",
        "column 6: unexpected \"=\" (expected a comparison operator: ==, !=, <, <=, >, >=)"),
    BAD(OTTL_CTX_SPAN, "foo == 1", "column 1: unknown path \"foo\" in the span context"),
    BAD(OTTL_CTX_SPAN, "attributes[\"a\" == 1", "column 16: unexpected \"==\" (expected \"]\")"),
    BAD(OTTL_CTX_SPAN, "name == \"unterminated", "column 9: unterminated string"),
    BAD(OTTL_CTX_SPAN, "IsMatch(name, \"(\")", "column 15: invalid regex near byte 2"),
    BAD(OTTL_CTX_SPAN, "IsMatch(name, \"a(?=b)\")",
        "column 15: invalid regex at byte 2: lookahead is not supported (not RE2 syntax)"),
    BAD(OTTL_CTX_SPAN, "IsMatch(name, \"(a)\\\\1\")",
        "column 15: invalid regex at byte 4: backreferences are not supported (not RE2 syntax)"),
    BAD(OTTL_CTX_SPAN, "IsMatch(name, \"a{1001}\")",
        "column 15: invalid regex at byte 2: repeat count above 1000"),
    BAD(OTTL_CTX_SPAN, "IsMatch(name, \"a++\")",
        "column 15: invalid regex at byte 3: possessive quantifiers are not supported"),
    BAD(OTTL_CTX_SPAN, "Foo(name)", "column 1: unknown function Foo in the span context"),
    BAD(OTTL_CTX_SPAN, "isMatch(name, \"x\")",
        "column 1: converter names must start with an uppercase letter but got 'isMatch'"),
    BAD(OTTL_CTX_SPAN, "kind == SPAN_KIND_BOGUS",
        "column 9: unknown enum SPAN_KIND_BOGUS in the span context"),
    BAD(OTTL_CTX_SPAN, "Len(name)",
        "column 1: a condition must be a boolean, and this function returns none"),
    BAD(OTTL_CTX_SPAN, "name", "column 5: unexpected end of the condition (expected a comparison"),
    BAD(OTTL_CTX_SPAN, "(name == \"a\"",
        "column 13: unexpected end of the condition (expected \")\")"),
    BAD(OTTL_CTX_SPAN, "name == \"a\" and",
        "column 16: unexpected end of the condition (expected a value)"),
    BAD(OTTL_CTX_SPAN, "name == \"a\" \"b\"",
        "column 13: unexpected \"\"b\"\" (expected \"and\", \"or\" or the end of the condition)"),
    BAD(OTTL_CTX_SPAN, "attributes[0] == 1",
        "column 1: \"attributes\" is a map: index it with a string"),
    BAD(OTTL_CTX_SPAN, "name[\"x\"] == 1", "column 1: path \"name\" cannot be indexed"),
    BAD(OTTL_CTX_SPAN, "IsMatch(name)", "column 1: IsMatch takes 2 arguments, got 1"),
    BAD(OTTL_CTX_SPAN, "IsMatch(name, attributes[\"p\"])",
        "column 15: IsMatch's pattern must be a string literal"),
    BAD(OTTL_CTX_SPAN, "name == 0x123",
        "column 9: a bytes literal needs an even number of hex digits"),
    BAD(OTTL_CTX_SPAN, "start_time_unix_nano-1 > 0",
        "column 21: unexpected \"-1\" (expected a comparison operator"),
    BAD(OTTL_CTX_SPAN, "\"a\" + \"b\" == \"ab\"",
        "column 1: only numbers, paths and functions can take part in arithmetic"),
    BAD(OTTL_CTX_SPAN, "name == \"a\\q\"", "column 11: invalid escape in string"),
    BAD(OTTL_CTX_SPAN, "name == 99999999999999999999",
        "column 9: number out of range: 99999999999999999999"),
    BAD(OTTL_CTX_SPAN, "not not true", "column 5: unexpected \"not\" (expected a value)"),
    BAD(OTTL_CTX_SPAN, "TraceID(0x01) == trace_id", "column 9: traceids must be 16 bytes"),
    BAD(OTTL_CTX_SPAN, "Concat(name, \"-\") == \"x\"",
        "column 8: Concat's first argument must be a list: [a, b, ...]"),
    BAD(OTTL_CTX_SPAN, "name == {}",
        "column 9: map literals are not supported by otelmon's filter"),
    BAD(OTTL_CTX_SPAN, "IsMatch(target = name, pattern = \"x\")",
        "column 9: named arguments are not supported by otelmon's filter"),
    BAD(OTTL_CTX_SPAN, "name == \"a\" && kind == 2", "column 13: unexpected character '&'"),
    BAD(OTTL_CTX_SPAN, "[1, 2] == attributes[\"x\"]",
        "column 1: a list is only allowed as Concat's first argument"),
    BAD(OTTL_CTX_SPAN, "attributes[\"a\"].b == 1",
        "column 17: keys are only allowed at the end of a path"),
    BAD(OTTL_CTX_SPAN, "", "column 1: unexpected end of the condition (expected a value)"),
    BAD(OTTL_CTX_SPAN, "kind.string == \"Server\"",
        "column 1: unknown path \"kind.string\" in the span context"),
    BAD(OTTL_CTX_SPANEVENT, "kind == SPAN_KIND_SERVER",
        "column 1: unknown path \"kind\" in the spanevent context"),
    BAD(OTTL_CTX_SPANEVENT, "IsRootSpan()", "column 1: unknown function IsRootSpan"),
    BAD(OTTL_CTX_DATAPOINT, "HasAttrKeyOnDatapoint(\"k\")",
        "column 1: unknown function HasAttrKeyOnDatapoint"),
    BAD(OTTL_CTX_LOG, "severity_number > SEVERITY_NUMBER_WARN5",
        "column 19: unknown enum SEVERITY_NUMBER_WARN5 in the log context"),
    BAD(OTTL_CTX_METRIC, "value_int == 1",
        "column 1: unknown path \"value_int\" in the metric context"),
    BAD(OTTL_CTX_METRIC, "type == SEVERITY_NUMBER_WARN",
        "column 9: unknown enum SEVERITY_NUMBER_WARN in the metric context"),
    BAD(OTTL_CTX_LOG, "set(attributes[\"x\"], 1)",
        "column 1: converter names must start with an uppercase letter but got 'set'"),
};

/* ---- running the table -------------------------------------------------------------------- */

typedef struct run {
    const ottl_case_t *c;
    const ottl_expr_t *e;
    ottl_scratch_t s;
    int seen;
    int rc;
} run_t;

static int on_item(om_item_t *it, void *arg)
{
    run_t *r = arg;
    if (r->seen++ == r->c->item) {
        r->rc = proc_filter_ottl_eval(r->e, it, &r->s);
    }
    return OM_KEEP;
}

static om_batch_t *fixture(const ottl_case_t *c)
{
    if (c->fixture == FIX_JSON) {
        om_batch_t *b = NULL;
        return om_batch_decode_json(OM_SIG_TRACES, traces_json, strlen(traces_json), 0, &b, NULL) ==
                       0
                   ? b
                   : NULL;
    }
    switch (c->ctx) {
    case OTTL_CTX_SPAN:
    case OTTL_CTX_SPANEVENT:
        return om_testdata_otlp("%s", traces_dsl);
    case OTTL_CTX_METRIC:
    case OTTL_CTX_DATAPOINT:
        return om_testdata_otlp("%s", metrics_dsl);
    default:
        return om_testdata_otlp("%s", logs_dsl);
    }
}

static const om_level_t levels[] = {OM_LEVEL_SPAN, OM_LEVEL_SPAN_EVENT, OM_LEVEL_METRIC,
                                    OM_LEVEL_DATAPOINT, OM_LEVEL_LOG};

typedef struct wire_run {
    const ottl_case_t *c;
    const ottl_expr_t *e;
    ottl_scratch_t s;
    int seen;
    int rc;
    char msg[192];
} wire_run_t;

static int on_wire_item(const om_wire_item_t *w, void *arg)
{
    wire_run_t *r = arg;
    if (r->seen++ == r->c->item) {
        r->rc = proc_filter_ottl_eval_wire(r->e, w, &r->s);
        snprintf(r->msg, sizeof r->msg, "%s", r->s.msg);
    }
    return OM_KEEP;
}

static int wire_cases; /* cases also evaluated on the wire bytes */

/* The same case on the fixture's wire bytes, when the condition can run there: the same answer
 * (or OM_ENOTSUP: decode instead). NULL when it holds. */
static const char *check_wire(const ottl_case_t *c, const ottl_expr_t *e, int want_rc,
                              const char *want_msg, char *why, size_t n)
{
    if (!proc_filter_ottl_wire_ok(e)) {
        return NULL;
    }
    om_batch_t *b = om_testdata_wire(fixture(c));
    if (b == NULL) {
        return NULL;
    }
    wire_run_t r = {.c = c, .e = e, .rc = -1};
    int rc = om_batch_wire_walk(&b, levels[c->ctx], on_wire_item, &r, NULL);
    const char *res = NULL;
    if (rc < 0 || r.seen <= c->item) {
        snprintf(why, n, "wire walk: %d, %d items", rc, r.seen);
        res = why;
    } else if (r.rc != OM_ENOTSUP &&
               (r.rc != want_rc || (r.rc < 0 && strcmp(r.msg, want_msg) != 0))) {
        snprintf(why, n, "wire: got %d (%s), decoded gave %d (%s)", r.rc, r.msg, want_rc, want_msg);
        res = why;
    }
    wire_cases += r.rc != OM_ENOTSUP;
    om_batch_release(b);
    proc_filter_scratch_free(&r.s);
    return res;
}

/* Returns NULL when the case holds, else what went wrong (static text). */
static const char *check_case(const ottl_case_t *c, char *why, size_t n)
{
    om_err_t err = {0};
    ottl_expr_t *e = NULL;
    int rc = proc_filter_ottl_compile(c->ctx, c->cond, &e, &err);
    if (c->want == COMPILE_ERR) {
        if (rc != OM_EINVAL || strncmp(err.msg, c->msg, strlen(c->msg)) != 0) {
            snprintf(why, n, "compile: rc %d, message \"%s\", want \"%s\"", rc, err.msg, c->msg);
            return why;
        }
        return NULL;
    }
    if (rc != 0) {
        snprintf(why, n, "does not compile: %s", err.msg);
        return why;
    }
    om_batch_t *b = fixture(c);
    run_t r = {.c = c, .e = e, .rc = -1};
    if (b == NULL || om_batch_walk(&b, levels[c->ctx], on_item, &r, NULL) < 0 ||
        r.seen <= c->item) {
        snprintf(why, n, "no item %d to evaluate on", c->item);
    } else if (c->want == EVAL_ERR && (r.rc != OM_EINVAL || strstr(r.s.msg, c->msg) == NULL)) {
        snprintf(why, n, "eval: rc %d, message \"%s\", want an error with \"%s\"", r.rc, r.s.msg,
                 c->msg);
    } else if (c->want != EVAL_ERR && r.rc != c->want) {
        snprintf(why, n, "eval: got %d (%s), want %d", r.rc, r.s.msg, c->want);
    } else {
        why = (char *)check_wire(c, e, r.rc, r.s.msg, why, n);
    }
    om_batch_release(b);
    proc_filter_scratch_free(&r.s);
    proc_filter_ottl_free(e);
    return why;
}

static void test_condition_table(void)
{
    size_t n = sizeof cases / sizeof cases[0], bad = 0, compile_errors = 0;
    for (size_t i = 0; i < n; i++) {
        char why[512];
        const char *w = check_case(&cases[i], why, sizeof why);
        compile_errors += cases[i].want == COMPILE_ERR;
        if (w != NULL) {
            fprintf(stderr, "ottl_test.c:%d: [%s] %s: %s\n", cases[i].line,
                    proc_filter_ottl_ctx_name(cases[i].ctx), cases[i].cond, w);
            bad++;
        }
    }
    ASSERT_EQ_UINT(bad, 0);
    ASSERT_TRUE(n >= 60 && compile_errors >= 20);
    fprintf(stderr, "    %d cases also ran on the wire bytes\n", wire_cases);
    ASSERT_TRUE(wire_cases >= 60); /* most span and log cases ran on the wire too */
}

/* Nesting is bounded: a condition deeper than OTTL_MAX_DEPTH is refused, not recursed into;
 * and nested parentheses are not tried an exponential number of ways. */
static void test_depth_is_bounded(void)
{
    char cond[400];
    size_t o = 0;
    for (int i = 0; i < 100; i++) {
        cond[o++] = '(';
    }
    memcpy(cond + o, "true", 4);
    o += 4;
    for (int i = 0; i < 100; i++) {
        cond[o++] = ')';
    }
    cond[o] = '\0';
    om_err_t err = {0};
    ottl_expr_t *e = NULL;
    ASSERT_EQ_INT(proc_filter_ottl_compile(OTTL_CTX_SPAN, cond, &e, &err), OM_EINVAL);
    ASSERT_CONTAINS(err.msg, "nested deeper than 64 levels");

    /* 40 levels of arithmetic parentheses that are no boolean group: linear, not 2^40. */
    o = 0;
    for (int i = 0; i < 40; i++) {
        cond[o++] = '(';
    }
    cond[o++] = '1';
    for (int i = 0; i < 40; i++) {
        cond[o++] = ')';
    }
    memcpy(cond + o, " == 1", 6);
    err = (om_err_t){0};
    ASSERT_EQ_INT(proc_filter_ottl_compile(OTTL_CTX_SPAN, cond, &e, &err), 0);
    proc_filter_ottl_free(e);
}

static void test_compile_survives_allocation_failures(void)
{
    const char *cond = "IsMatch(Concat([name, attributes[\"a\"]], \"-\"), \"^x\") or "
                       "(kind == SPAN_KIND_SERVER and not (1 + 2 > 3))";
    bool saw_success = false;
    for (unsigned long n = 1; n < 400 && !saw_success; n++) {
        om_err_t err = {0};
        ottl_expr_t *e = NULL;
        om_alloc_fail_after(n);
        int rc = proc_filter_ottl_compile(OTTL_CTX_SPAN, cond, &e, &err);
        om_alloc_fail_after(0);
        ASSERT_TRUE(rc == 0 || rc == OM_ENOMEM);
        ASSERT_TRUE((rc == 0) == (e != NULL));
        saw_success = rc == 0;
        proc_filter_ottl_free(e);
    }
    ASSERT_TRUE(saw_success);
}

/* ---- regexes ------------------------------------------------------------------------------ */

static int re_match(const char *pattern, const char *subject)
{
    filter_re_t *re = NULL;
    om_err_t err = {0};
    if (proc_filter_re_compile(pattern, strlen(pattern), &re, &err) != 0) {
        fprintf(stderr, "    %s: %s\n", pattern, err.msg);
        return -1000;
    }
    int rc = proc_filter_re_match(re, subject, strlen(subject));
    proc_filter_re_free(re);
    return rc;
}

static void test_regex_semantics_follow_go(void)
{
    ASSERT_EQ_INT(re_match("b", "abc"), 1); /* unanchored, as MatchString */
    ASSERT_EQ_INT(re_match("^b", "abc"), 0);
    ASSERT_EQ_INT(re_match("c$", "abc\n"), 0); /* $ only at the very end */
    ASSERT_EQ_INT(re_match("(?m)c$", "abc\n"), 1);
    ASSERT_EQ_INT(re_match("\\v", "a\x0b"), 1); /* \v is the vertical tab */
    ASSERT_EQ_INT(re_match("\\v", "a\n"), 0);
    ASSERT_EQ_INT(re_match("^\\d+$", "\xd9\xa3"), 0); /* \d is ASCII */
    ASSERT_EQ_INT(re_match("^.$", "\xc3\xa9"), 1);    /* . is one code point */
    ASSERT_EQ_INT(re_match("(?i)^\xc3\xa9$", "\xc3\x89"), 1);
    ASSERT_EQ_INT(re_match("x", "\xff\xfex"), 1); /* bad UTF-8 does not fail */
    ASSERT_EQ_INT(re_match("(?P<n>a)(?<m>b)", "ab"), 1);
    ASSERT_EQ_INT(re_match("\\Q(a)\\E", "(a)"), 1);
    ASSERT_EQ_INT(re_match("[]a]", "]"), 1);
    ASSERT_EQ_INT(re_match("a{2,3}", "aa"), 1);
    ASSERT_EQ_INT(re_match("\\pL", "x"), 1);
    ASSERT_EQ_INT(re_match("a{1000}", "a"), 0);
}

static void test_regex_refuses_what_re2_refuses(void)
{
    static const char *const bad[] = {
        "(a)\\1", "a(?=b)", "a(?!b)",    "(?<=a)b", "(?<!a)b", "(?>a)", "a*+",    "a++", "a?+",
        "(?R)",   "(?1)",   "(?(1)a|b)", "(?#c)",   "(*SKIP)", "\\K",   "\\R",    "\\X", "\\h",
        "\\G",    "\\Z",    "a{1001}",   "\\",      "(?x)a",   "\\g1",  "\\k<n>", "(",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        filter_re_t *re = NULL;
        om_err_t err = {0};
        int rc = proc_filter_re_compile(bad[i], strlen(bad[i]), &re, &err);
        if (rc != OM_EINVAL) {
            fprintf(stderr, "    accepted: %s\n", bad[i]);
        }
        ASSERT_EQ_INT(rc, OM_EINVAL);
        ASSERT_TRUE(re == NULL && err.msg[0] != '\0');
    }
}

/* A pattern that backtracks exponentially on this input is stopped by the limits, quickly. */
static void test_regex_catastrophic_backtracking_is_bounded(void)
{
    char subject[64];
    memset(subject, 'a', 40);
    subject[40] = '!';
    subject[41] = '\0';
    uint64_t t0 = uv_hrtime();
    int rc = re_match("^(a+)+$", subject);
    uint64_t ms = (uv_hrtime() - t0) / 1000000;
    ASSERT_TRUE(rc == OM_ETOOBIG || rc == 0);
    ASSERT_TRUE(ms < 2000);
    rc = re_match("^(a|a)*$", subject);
    ASSERT_TRUE(rc == OM_ETOOBIG || rc == 0);
}

static void test_regex_allocation_failures(void)
{
    bool saw_success = false;
    for (unsigned long n = 1; n < 200 && !saw_success; n++) {
        filter_re_t *re = NULL;
        om_err_t err = {0};
        om_alloc_fail_after(n);
        int rc = proc_filter_re_compile("^GET (/[a-z]+)+$", 16, &re, &err);
        om_alloc_fail_after(0);
        ASSERT_TRUE(rc == 0 || rc == OM_ENOMEM);
        saw_success = rc == 0;
        if (re != NULL) {
            ASSERT_EQ_INT(proc_filter_re_match(re, "GET /a/b", 8), 1);
        }
        proc_filter_re_free(re);
    }
    ASSERT_TRUE(saw_success);
}

/* ---- values as Go writes them -------------------------------------------------------------- */

static const char *as_string(const om_anyvalue_t *v, ottl_scratch_t *s)
{
    const char *p = NULL;
    size_t n = 0;
    return proc_filter_any_as_string(v, s, &p, &n) == 0 ? p : "(error)";
}

static const char *string_like(ov_t v, ottl_scratch_t *s)
{
    const char *p = NULL;
    size_t n = 0;
    bool nil = false;
    return proc_filter_ov_string_like(&v, s, &p, &n, &nil) == 0 ? (nil ? "(nil)" : p) : "(error)";
}

static void test_values_format_as_go(void)
{
    ottl_scratch_t s = {0};
    om_anyvalue_t d = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
    d.value_case = OM_ANYVALUE_DOUBLE;
    static const struct {
        double d;
        const char *as_string; /* strconv 'f' -1 */
        const char *json;      /* encoding/json */
    } nums[] = {
        {0.25, "0.25", "0.25"},
        {1e21, "1000000000000000000000", "1e+21"},
        {1e20, "100000000000000000000", "100000000000000000000"},
        {1e-7, "0.0000001", "1e-7"},
        {1.5e-10, "0.00000000015", "1.5e-10"},
        {123456.789, "123456.789", "123456.789"},
        {-2, "-2", "-2"},
        {0.1 + 0.2, "0.30000000000000004", "0.30000000000000004"},
    };
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        d.double_value = nums[i].d;
        ASSERT_EQ_STR(as_string(&d, &s), nums[i].as_string);
        ASSERT_EQ_STR(string_like((ov_t){.kind = OV_DOUBLE, .d = nums[i].d}, &s), nums[i].json);
    }
    om_anyvalue_t b = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
    b.value_case = OM_ANYVALUE_BYTES;
    b.bytes_value.data = (uint8_t *)"\x00\x01\xff";
    b.bytes_value.len = 3;
    ASSERT_EQ_STR(as_string(&b, &s), "AAH/");                              /* base64 */
    ASSERT_EQ_STR(string_like(proc_filter_ov_from_any(&b), &s), "0001ff"); /* hex */
    ASSERT_EQ_STR(string_like((ov_t){.kind = OV_NIL}, &s), "(nil)");
    ASSERT_EQ_STR(string_like((ov_t){.kind = OV_INT, .i = -5}, &s), "-5");
    proc_filter_scratch_free(&s);
}

int main(void)
{
    om_log_set_level(OM_LOG_NONE);
    OM_RUN(test_condition_table);
    OM_RUN(test_depth_is_bounded);
    OM_RUN(test_compile_survives_allocation_failures);
    OM_RUN(test_regex_semantics_follow_go);
    OM_RUN(test_regex_refuses_what_re2_refuses);
    OM_RUN(test_regex_catastrophic_backtracking_is_bounded);
    OM_RUN(test_regex_allocation_failures);
    OM_RUN(test_values_format_as_go);
    return om_test_summary();
}
