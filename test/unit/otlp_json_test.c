/* otlp_json_test.c: the OTLP/JSON codec (src/otlp_json_encode.c, src/otlp_json_decode.c).
 *
 * JSON literals are written with ' for " to keep them readable; q() swaps them back, so no
 * literal may contain a real apostrophe. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "om.h"
#include "om_test.h"

/* ---------------------------------------------------------------------------------------- */
/* Helpers                                                                                    */

static char qbuf[8][8192];
static unsigned qnext;

/* The literal with ' turned into ", in one of a few static buffers. */
static const char *q(const char *s)
{
    char *out = qbuf[qnext++ % 8];
    size_t n = strlen(s);
    if (n >= sizeof qbuf[0]) {
        abort();
    }
    for (size_t i = 0; i <= n; i++) {
        out[i] = s[i] == '\'' ? '"' : s[i];
    }
    return out;
}

static om_err_t last_err;

/* Decodes json (a ' literal) as sig; NULL on failure, with the error in last_err. */
static om_batch_t *dec(om_signal_t sig, const char *json)
{
    om_batch_t *b = NULL;
    const char *s = q(json);
    memset(&last_err, 0, sizeof last_err);
    int rc = om_batch_decode_json(sig, s, strlen(s), 0, &b, &last_err);
    if (rc != 0) {
        return NULL;
    }
    return b;
}

/* The decode error code for json, with its message in last_err. */
static int dec_rc(om_signal_t sig, const char *json)
{
    om_batch_t *b = NULL;
    const char *s = q(json);
    memset(&last_err, 0, sizeof last_err);
    int rc = om_batch_decode_json(sig, s, strlen(s), 0, &b, &last_err);
    if (b != NULL) {
        om_batch_release(b);
    }
    return rc;
}

/* Encodes b into a static buffer ("<error N>" on failure). */
static const char *enc(const om_batch_t *b)
{
    static char out[4][16384];
    static unsigned next;
    char *o = out[next++ % 4];
    om_strbuf_t sb;
    om_strbuf_init(&sb, 0);
    int rc = om_otlp_json_encode(b, &sb);
    if (rc != 0 || sb.len >= sizeof out[0]) {
        snprintf(o, sizeof out[0], "<error %d>", rc);
    } else {
        memcpy(o, sb.data, sb.len + 1);
    }
    om_strbuf_free(&sb);
    return o;
}

/* decode(json) then encode gives expect (both ' literals). */
static const char *reencode(om_signal_t sig, const char *json)
{
    om_batch_t *b = dec(sig, json);
    if (b == NULL) {
        fprintf(stderr, "decode failed: %s\n", last_err.msg);
        return "<decode failed>";
    }
    const char *s = enc(b);
    om_batch_release(b);
    return s;
}

/* Protobuf round trip: pack b, decode the bytes, encode as JSON. */
static const char *via_proto(const om_batch_t *b)
{
    size_t n = om_batch_proto_size(b);
    uint8_t *buf = malloc(n + 1);
    om_batch_t *b2 = NULL;
    om_err_t err = {0};
    if (buf == NULL || om_batch_proto_pack(b, buf) != n ||
        om_batch_decode_proto(b->signal, buf, n, 0, &b2, &err) != 0 ||
        om_batch_decode(b2, &err) != 0) {
        om_batch_release(b2);
        free(buf);
        return "<proto failed>";
    }
    free(buf);
    const char *s = enc(b2);
    om_batch_release(b2);
    return s;
}

/* ---------------------------------------------------------------------------------------- */
/* Golden requests: every field of every signal, exactly as pdata writes them.                */

static const char golden_traces[] =
    "{'resourceSpans':[{'resource':{'attributes':["
    "{'key':'service.name','value':{'stringValue':'svc'}},"
    "{'key':'b','value':{'boolValue':true}},"
    "{'key':'i','value':{'intValue':'-42'}},"
    "{'key':'d','value':{'doubleValue':1.5}},"
    "{'key':'arr','value':{'arrayValue':{'values':[{'stringValue':'x'},{'intValue':'1'},"
    "{'arrayValue':{}}]}}},"
    "{'key':'kv','value':{'kvlistValue':{'values':[{'key':'n','value':{'doubleValue':0.25}}]}}},"
    "{'key':'bytes','value':{'bytesValue':'AQID/w=='}},"
    "{'key':'zeros','value':{'intValue':'0'}},"
    "{'key':'empty','value':{}},"
    "{'value':{'stringValue':''}}],"
    "'droppedAttributesCount':1,"
    "'entityRefs':[{'schemaUrl':'https://s','type':'service','idKeys':['service.name'],"
    "'descriptionKeys':['d1','d2']}]},"
    "'scopeSpans':[{'scope':{'name':'lib','version':'1.0','attributes':["
    "{'key':'sa','value':{'stringValue':'v'}}],'droppedAttributesCount':2},"
    "'spans':[{'traceId':'5b8efff798038103d269b633813fc60c','spanId':'eee19b7ec3c1b174',"
    "'traceState':'k=v','parentSpanId':'eee19b7ec3c1b173','flags':769,'name':'op','kind':2,"
    "'startTimeUnixNano':'1544712660000000000','endTimeUnixNano':'1544712661000000000',"
    "'attributes':[{'key':'a','value':{'stringValue':'b'}}],'droppedAttributesCount':3,"
    "'events':[{'timeUnixNano':'1544712660500000000','name':'ev','attributes':["
    "{'key':'e','value':{'intValue':'7'}}],'droppedAttributesCount':4},{}],"
    "'droppedEventsCount':5,"
    "'links':[{'traceId':'5b8efff798038103d269b633813fc60d','spanId':'eee19b7ec3c1b175',"
    "'traceState':'x=y','attributes':[{'key':'l','value':{'boolValue':false}}],"
    "'droppedAttributesCount':6,'flags':256}],"
    "'droppedLinksCount':7,'status':{'message':'boom','code':2}},"
    "{'name':'minimal','status':{}}],"
    "'schemaUrl':'https://scope'}],'schemaUrl':'https://res'}]}";

static const char golden_metrics[] =
    "{'resourceMetrics':[{'resource':{},'scopeMetrics':[{'scope':{},'metrics':["
    "{'name':'g','description':'gauge','unit':'1','gauge':{'dataPoints':["
    "{'attributes':[{'key':'k','value':{'stringValue':'v'}}],'startTimeUnixNano':'1',"
    "'timeUnixNano':'2','asDouble':0.5,'exemplars':[{'filteredAttributes':["
    "{'key':'f','value':{'intValue':'1'}}],'timeUnixNano':'3','asInt':'9',"
    "'spanId':'0102030405060708','traceId':'0102030405060708090a0b0c0d0e0f10'}],'flags':1},"
    "{'timeUnixNano':'2','asInt':'0'},{'asDouble':0}]},"
    "'metadata':[{'key':'m','value':{'stringValue':'x'}}]},"
    "{'name':'s','sum':{'dataPoints':[{'timeUnixNano':'5','asInt':'-3'}],"
    "'aggregationTemporality':2,'isMonotonic':true}},"
    "{'name':'h','histogram':{'dataPoints':[{'startTimeUnixNano':'1','timeUnixNano':'2',"
    "'count':'10','sum':0,'bucketCounts':['1','2','7'],'explicitBounds':[0.5,10],"
    "'exemplars':[{'timeUnixNano':'2','asDouble':1e-7}],'flags':1,'min':-1.25,'max':1e+21},"
    "{'count':'18446744073709551615'}],'aggregationTemporality':1}},"
    "{'name':'e','exponentialHistogram':{'dataPoints':[{'timeUnixNano':'2','count':'4',"
    "'sum':3.5,'scale':-2,'zeroCount':'1','positive':{'offset':-1,'bucketCounts':['1','2']},"
    "'negative':{},'min':0,'max':2,'zeroThreshold':0.001},{'positive':{},'negative':{}}],"
    "'aggregationTemporality':2}},"
    "{'name':'q','summary':{'dataPoints':[{'timeUnixNano':'2','count':'3','sum':6.5,"
    "'quantileValues':[{'value':1},{'quantile':0.5,'value':2},{'quantile':1,'value':3},{}],"
    "'flags':1}]}},"
    "{'name':'nodata'}"
    "]}]}]}";

static const char golden_logs[] =
    "{'resourceLogs':[{'resource':{'attributes':[{'key':'host','value':{'stringValue':'h'}}]},"
    "'scopeLogs':[{'scope':{'name':'l'},'logRecords':["
    "{'timeUnixNano':'1700000000000000000','observedTimeUnixNano':'1700000000000000001',"
    "'severityNumber':9,'severityText':'INFO','body':{'stringValue':'hello \\'w\\'\\n\\t\\\\ "
    "\\u0001 \xc3\xa9 \xf0\x9f\x98\x80 </>'},"
    "'attributes':[{'key':'a','value':{'intValue':'1'}}],'droppedAttributesCount':1,'flags':1,"
    "'traceId':'5b8efff798038103d269b633813fc60c','spanId':'eee19b7ec3c1b174',"
    "'eventName':'evt'},"
    "{'body':{'kvlistValue':{'values':[{'key':'x','value':{'arrayValue':{}}}]}}},"
    "{'body':{}}],'schemaUrl':'s'}]}]}";

static void test_golden_traces_roundtrip(void)
{
    ASSERT_EQ_STR(reencode(OM_SIG_TRACES, golden_traces), q(golden_traces));
}

static void test_golden_metrics_roundtrip(void)
{
    ASSERT_EQ_STR(reencode(OM_SIG_METRICS, golden_metrics), q(golden_metrics));
}

static void test_golden_logs_roundtrip(void)
{
    ASSERT_EQ_STR(reencode(OM_SIG_LOGS, golden_logs), q(golden_logs));
}

static void test_decoded_values(void)
{
    om_batch_t *b = dec(OM_SIG_TRACES, golden_traces);
    ASSERT_TRUE(b != NULL);
    ASSERT_EQ_UINT(b->items, 2);
    om_resource_spans_t *rs = b->traces->resource_spans[0];
    om_span_t *s = rs->scope_spans[0]->spans[0];
    ASSERT_EQ_UINT(s->trace_id.len, 16);
    ASSERT_EQ_UINT(s->trace_id.data[0], 0x5b);
    ASSERT_EQ_UINT(s->trace_id.data[15], 0x0c);
    ASSERT_EQ_UINT(s->span_id.len, 8);
    ASSERT_EQ_UINT(s->flags, 769);
    ASSERT_EQ_INT(s->kind, OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_SERVER);
    ASSERT_EQ_UINT(s->start_time_unix_nano, UINT64_C(1544712660000000000));
    ASSERT_EQ_INT(s->status->code,
                  OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR);
    om_anyvalue_t *i = rs->resource->attributes[2]->value;
    ASSERT_EQ_INT(i->value_case, OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE);
    ASSERT_EQ_INT(i->int_value, -42);
    om_anyvalue_t *bytes = rs->resource->attributes[6]->value;
    ASSERT_EQ_UINT(bytes->bytes_value.len, 4);
    ASSERT_EQ_UINT(bytes->bytes_value.data[3], 0xff);
    /* The base descriptors are set, so protobuf-c can pack what we built. */
    ASSERT_TRUE(s->base.descriptor == &opentelemetry__proto__trace__v1__span__descriptor);
    om_batch_release(b);

    b = dec(OM_SIG_METRICS, golden_metrics);
    ASSERT_TRUE(b != NULL);
    ASSERT_EQ_UINT(b->items, 9);
    om_histogram_dp_t *h =
        b->metrics->resource_metrics[0]->scope_metrics[0]->metrics[2]->histogram->data_points[0];
    ASSERT_EQ_INT(h->_sum_case, OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___SUM_SUM);
    ASSERT_TRUE(h->sum == 0.0);
    ASSERT_EQ_UINT(h->n_bucket_counts, 3);
    ASSERT_EQ_UINT(h->bucket_counts[2], 7);
    ASSERT_TRUE(h->max == 1e21);
    om_batch_release(b);

    b = dec(OM_SIG_LOGS, golden_logs);
    ASSERT_TRUE(b != NULL);
    ASSERT_EQ_UINT(b->items, 3);
    om_log_record_t *r = b->logs->resource_logs[0]->scope_logs[0]->log_records[0];
    ASSERT_EQ_STR(r->body->string_value, "hello \"w\"\n\t\\ \x01 \xc3\xa9 \xf0\x9f\x98\x80 </>");
    ASSERT_EQ_INT(r->severity_number,
                  OPENTELEMETRY__PROTO__LOGS__V1__SEVERITY_NUMBER__SEVERITY_NUMBER_INFO);
    om_batch_release(b);
}

static void test_proto_roundtrip(void)
{
    const char *goldens[] = {golden_traces, golden_metrics, golden_logs};
    om_signal_t sigs[] = {OM_SIG_TRACES, OM_SIG_METRICS, OM_SIG_LOGS};
    for (int i = 0; i < 3; i++) {
        om_batch_t *b = dec(sigs[i], goldens[i]);
        ASSERT_TRUE(b != NULL);
        const char *s = via_proto(b);
        om_batch_release(b);
        ASSERT_EQ_STR(s, q(goldens[i]));
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Accepted input variants                                                                    */

static void test_empty_request(void)
{
    ASSERT_EQ_STR(reencode(OM_SIG_TRACES, "{}"), "{}");
    ASSERT_EQ_STR(reencode(OM_SIG_METRICS, " { } "), "{}");
    ASSERT_EQ_STR(reencode(OM_SIG_LOGS, "{'resourceLogs':[]}"), "{}");
    ASSERT_EQ_STR(reencode(OM_SIG_LOGS, "{'resourceLogs':null}"), "{}");
    om_batch_t *b = dec(OM_SIG_TRACES, "{}");
    ASSERT_TRUE(b != NULL);
    ASSERT_EQ_UINT(b->items, 0);
    om_batch_release(b);
}

static void test_snake_case_keys(void)
{
    ASSERT_EQ_STR(
        reencode(OM_SIG_TRACES, "{'resource_spans':[{'scope_spans':[{'spans':[{'trace_id':"
                                "'5B8EFFF798038103D269B633813FC60C','span_id':'EEE19B7EC3C1B174',"
                                "'parent_span_id':'','trace_state':'a','start_time_unix_nano':1,"
                                "'end_time_unix_nano':'2','dropped_attributes_count':'3',"
                                "'attributes':[{'key':'k','value':{'string_value':'v'}},"
                                "{'key':'kv','value':{'kvlist_value':{'values':[]}}}]}]}],"
                                "'schema_url':'u'}]}"),
        q("{'resourceSpans':[{'resource':{},'scopeSpans':[{'scope':{},'spans':[{'traceId':"
          "'5b8efff798038103d269b633813fc60c','spanId':'eee19b7ec3c1b174','traceState':'a',"
          "'startTimeUnixNano':'1','endTimeUnixNano':'2',"
          "'attributes':[{'key':'k','value':{'stringValue':'v'}},"
          "{'key':'kv','value':{'kvlistValue':{}}}],'droppedAttributesCount':3,"
          "'status':{}}]}],'schemaUrl':'u'}]}"));
    ASSERT_EQ_STR(
        reencode(OM_SIG_METRICS,
                 "{'resource_metrics':[{'scope_metrics':[{'metrics':[{'name':'e',"
                 "'exponential_histogram':{'aggregation_temporality':1,'data_points':["
                 "{'zero_count':2,'zero_threshold':0.5}]}}]}]}]}"),
        q("{'resourceMetrics':[{'resource':{},'scopeMetrics':[{'scope':{},'metrics':[{"
          "'name':'e','exponentialHistogram':{'dataPoints':[{'zeroCount':'2','positive':{}"
          ",'negative':{},'zeroThreshold':0.5}],'aggregationTemporality':1}}]}]}]}"));
}

static void test_enum_names(void)
{
    const char *want = q("{'resourceSpans':[{'resource':{},'scopeSpans':[{'scope':{},'spans':[{"
                         "'kind':3,'status':{'code':1}}]}]}]}");
    ASSERT_EQ_STR(reencode(OM_SIG_TRACES, "{'resourceSpans':[{'scopeSpans':[{'spans':[{"
                                          "'kind':'SPAN_KIND_CLIENT','status':{'code':"
                                          "'STATUS_CODE_OK'}}]}]}]}"),
                  want);
    ASSERT_EQ_STR(reencode(OM_SIG_TRACES, "{'resourceSpans':[{'scopeSpans':[{'spans':[{"
                                          "'kind':'3','status':{'code':1.0}}]}]}]}"),
                  want);
    ASSERT_EQ_STR(reencode(OM_SIG_LOGS, "{'resourceLogs':[{'scopeLogs':[{'logRecords':[{"
                                        "'severityNumber':'SEVERITY_NUMBER_WARN'}]}]}]}"),
                  q("{'resourceLogs':[{'resource':{},'scopeLogs':[{'scope':{},'logRecords':[{"
                    "'severityNumber':13,'body':{}}]}]}]}"));
    ASSERT_EQ_STR(reencode(OM_SIG_METRICS,
                           "{'resourceMetrics':[{'scopeMetrics':[{'metrics':[{'sum':{"
                           "'aggregationTemporality':'AGGREGATION_TEMPORALITY_CUMULATIVE'}}]}]}]}"),
                  q("{'resourceMetrics':[{'resource':{},'scopeMetrics':[{'scope':{},'metrics':[{"
                    "'sum':{'aggregationTemporality':2}}]}]}]}"));
    /* proto3 enums are open: unknown numbers pass through. */
    ASSERT_EQ_STR(reencode(OM_SIG_TRACES, "{'resourceSpans':[{'scopeSpans':[{'spans':[{"
                                          "'kind':42}]}]}]}"),
                  q("{'resourceSpans':[{'resource':{},'scopeSpans':[{'scope':{},'spans':[{"
                    "'kind':42,'status':{}}]}]}]}"));
}

static void test_integer_forms(void)
{
    const char *want =
        q("{'resourceLogs':[{'resource':{},'scopeLogs':[{'scope':{},'logRecords':[{"
          "'timeUnixNano':'1700000000000000000','body':{'intValue':'-9223372036854775808'},"
          "'flags':4294967295}]}]}]}");
    ASSERT_EQ_STR(reencode(OM_SIG_LOGS, "{'resourceLogs':[{'scopeLogs':[{'logRecords':[{"
                                        "'timeUnixNano':1700000000000000000,'flags':4294967295,"
                                        "'body':{'intValue':-9223372036854775808}}]}]}]}"),
                  want);
    ASSERT_EQ_STR(reencode(OM_SIG_LOGS, "{'resourceLogs':[{'scopeLogs':[{'logRecords':[{"
                                        "'timeUnixNano':'1700000000000000000',"
                                        "'flags':'4294967295',"
                                        "'body':{'intValue':'-9223372036854775808'}}]}]}]}"),
                  want);
    /* A number with an exponent that is a whole number is still an integer. */
    ASSERT_EQ_STR(reencode(OM_SIG_LOGS, "{'resourceLogs':[{'scopeLogs':[{'logRecords':[{"
                                        "'droppedAttributesCount':1e2}]}]}]}"),
                  q("{'resourceLogs':[{'resource':{},'scopeLogs':[{'scope':{},'logRecords':[{"
                    "'body':{},'droppedAttributesCount':100}]}]}]}"));
    /* The JS SDK sends a whole double as an intValue: it stays an intValue. */
    ASSERT_EQ_STR(reencode(OM_SIG_LOGS, "{'resourceLogs':[{'scopeLogs':[{'logRecords':[{"
                                        "'body':{'intValue':3}},{'body':{'doubleValue':3}}]}]}]}"),
                  q("{'resourceLogs':[{'resource':{},'scopeLogs':[{'scope':{},'logRecords':[{"
                    "'body':{'intValue':'3'}},{'body':{'doubleValue':3}}]}]}]}"));
}

static void test_big_bare_numbers(void)
{
    /* Integers outside int64 (which jansson refuses) are read as doubles (-2^63 still
     * fits int64 and is exact, but a double prints it in its shortest form, as Go does).
     * Strings that look like big numbers (here after an escaped quote) stay untouched. */
    ASSERT_EQ_STR(reencode(OM_SIG_METRICS,
                           "{'resourceMetrics':[{'scopeMetrics':[{'metrics':[{'name':"
                           "'a\\'99999999999999999999','histogram':{'dataPoints':[{'count':"
                           "9223372036854775808,'sum':-100000000000000000000,'min':"
                           "-9223372036854775808}]}}]}]}]}"),
                  q("{'resourceMetrics':[{'resource':{},'scopeMetrics':[{'scope':{},'metrics':[{"
                    "'name':'a\\'99999999999999999999','histogram':{'dataPoints':[{'count':"
                    "'9223372036854775808','sum':-100000000000000000000,'min':"
                    "-9223372036854776000}]}}]}]}]}"));
    ASSERT_EQ_INT(dec_rc(OM_SIG_METRICS, "{'resourceMetrics':[{'scopeMetrics':[{'metrics':[{"
                                         "'histogram':{'dataPoints':[{'count':"
                                         "36893488147419103232}]}}]}]}]}"),
                  OM_EINVAL);
    ASSERT_CONTAINS(last_err.msg, "dataPoints[0].count: expected an integer");
}

static void test_doubles(void)
{
    ASSERT_EQ_STR(
        reencode(OM_SIG_LOGS,
                 "{'resourceLogs':[{'scopeLogs':[{'logRecords':[{'body':{'arrayValue':{"
                 "'values':[{'doubleValue':'NaN'},{'doubleValue':'Infinity'},"
                 "{'doubleValue':'-Infinity'},{'doubleValue':'+Inf'},{'doubleValue':'-inf'},"
                 "{'doubleValue':'2.5'},{'doubleValue':0.1},{'doubleValue':1e-7},"
                 "{'doubleValue':1.5e-7},{'doubleValue':0.000001},{'doubleValue':1e21},"
                 "{'doubleValue':1e20},{'doubleValue':123456789.125},{'doubleValue':-2.5},"
                 "{'doubleValue':1.7976931348623157e308},{'doubleValue':5e-324},"
                 "{'doubleValue':9007199254740993},{'doubleValue':0.30000000000000004},"
                 "{'doubleValue':1e-10},{'doubleValue':12345678901234567890123}"
                 "]}}}]}]}]}"),
        q("{'resourceLogs':[{'resource':{},'scopeLogs':[{'scope':{},'logRecords':[{'body':{"
          "'arrayValue':{'values':[{'doubleValue':'NaN'},{'doubleValue':'Infinity'},"
          "{'doubleValue':'-Infinity'},{'doubleValue':'Infinity'},{'doubleValue':'-Infinity'},"
          "{'doubleValue':2.5},{'doubleValue':0.1},{'doubleValue':1e-7},"
          "{'doubleValue':1.5e-7},{'doubleValue':0.000001},{'doubleValue':1e+21},"
          "{'doubleValue':100000000000000000000},{'doubleValue':123456789.125},"
          "{'doubleValue':-2.5},{'doubleValue':1.7976931348623157e+308},"
          "{'doubleValue':5e-324},{'doubleValue':9007199254740992},"
          "{'doubleValue':0.30000000000000004},{'doubleValue':1e-10},"
          "{'doubleValue':1.2345678901234568e+22}]}}}]}]}]}"));
    /* NaN as an optional histogram sum and as a zero-omitted field. */
    om_batch_t *b = dec(OM_SIG_METRICS, "{'resourceMetrics':[{'scopeMetrics':[{'metrics':[{"
                                        "'histogram':{'dataPoints':[{'sum':'NaN','min':"
                                        "'-Infinity'}]}},{'summary':{'dataPoints':[{'sum':"
                                        "'NaN'}]}}]}]}]}");
    ASSERT_TRUE(b != NULL);
    om_histogram_dp_t *h =
        b->metrics->resource_metrics[0]->scope_metrics[0]->metrics[0]->histogram->data_points[0];
    ASSERT_TRUE(isnan(h->sum));
    ASSERT_TRUE(isinf(h->min) && h->min < 0);
    ASSERT_EQ_STR(enc(b), q("{'resourceMetrics':[{'resource':{},'scopeMetrics':[{'scope':{},"
                            "'metrics':[{'histogram':{'dataPoints':[{'sum':'NaN','min':"
                            "'-Infinity'}]}},{'summary':{'dataPoints':[{'sum':'NaN'}]}}]}]}]}"));
    om_batch_release(b);
}

static void test_base64_variants(void)
{
    const char *want = q("{'resourceLogs':[{'resource':{},'scopeLogs':[{'scope':{},'logRecords':"
                         "[{'body':{'bytesValue':'+/+/AA=='}}]}]}]}");
    const char *forms[] = {"+/+/AA==", "+/+/AA", "-_-_AA==", "-_-_AA"};
    for (size_t i = 0; i < 4; i++) {
        char json[256];
        snprintf(json, sizeof json,
                 "{'resourceLogs':[{'scopeLogs':[{'logRecords':[{'body':{'bytesValue':'%s'}}]}]"
                 "}]}",
                 forms[i]);
        ASSERT_EQ_STR(reencode(OM_SIG_LOGS, json), want);
    }
    ASSERT_EQ_STR(reencode(OM_SIG_LOGS, "{'resourceLogs':[{'scopeLogs':[{'logRecords':[{'body':"
                                        "{'bytesValue':''}},{'body':{'bytesValue':'YQ'}}]}]}]}"),
                  q("{'resourceLogs':[{'resource':{},'scopeLogs':[{'scope':{},'logRecords':["
                    "{'body':{'bytesValue':''}},{'body':{'bytesValue':'YQ=='}}]}]}]}"));
    const char *bad[] = {"A", "AB=C", "A===", "AB$D", "ABCDE"};
    for (size_t i = 0; i < 5; i++) {
        char json[256];
        snprintf(json, sizeof json,
                 "{'resourceLogs':[{'scopeLogs':[{'logRecords':[{'body':{'bytesValue':'%s'}}]}]"
                 "}]}",
                 bad[i]);
        ASSERT_EQ_INT(dec_rc(OM_SIG_LOGS, json), OM_EINVAL);
        ASSERT_CONTAINS(last_err.msg, "bytesValue: invalid base64");
    }
}

static void test_nulls_and_unknown_fields(void)
{
    ASSERT_EQ_STR(
        reencode(OM_SIG_TRACES,
                 "{'resourceSpans':[{'resource':null,'scopeSpans':[{'scope':null,'spans':["
                 "{'name':null,'traceId':null,'kind':null,'attributes':null,'status':null,"
                 "'someNewField':{'nested':[1,2,3]},'Name':'ignored','x':1},null]}]}],"
                 "'unknown':true}"),
        q("{'resourceSpans':[{'resource':{},'scopeSpans':[{'scope':{},'spans':[{'status':{}},"
          "{'status':{}}]}]}]}"));
}

static void test_duplicate_keys(void)
{
    /* Not rejected: the later value wins, as in otelcol's reader, also across spellings. */
    ASSERT_EQ_STR(reencode(OM_SIG_TRACES, "{'resourceSpans':[{'scopeSpans':[{'spans':[{"
                                          "'name':'a','name':'b','trace_state':'x',"
                                          "'traceState':'y'}]}]}]}"),
                  q("{'resourceSpans':[{'resource':{},'scopeSpans':[{'scope':{},'spans':[{"
                    "'traceState':'y','name':'b','status':{}}]}]}]}"));
    /* Two members of one oneof: the later is the value. */
    ASSERT_EQ_STR(reencode(OM_SIG_LOGS, "{'resourceLogs':[{'scopeLogs':[{'logRecords':[{'body':{"
                                        "'stringValue':'s','intValue':'5'}}]}]}]}"),
                  q("{'resourceLogs':[{'resource':{},'scopeLogs':[{'scope':{},'logRecords':[{"
                    "'body':{'intValue':'5'}}]}]}]}"));
}

static void test_all_zero_id_omitted(void)
{
    /* pdata treats an all-zero id as empty; so do we on output. */
    ASSERT_EQ_STR(reencode(OM_SIG_TRACES, "{'resourceSpans':[{'scopeSpans':[{'spans':[{"
                                          "'traceId':'00000000000000000000000000000000',"
                                          "'spanId':'0000000000000000'}]}]}]}"),
                  q("{'resourceSpans':[{'resource':{},'scopeSpans':[{'scope':{},'spans':[{"
                    "'status':{}}]}]}]}"));
}

/* ---------------------------------------------------------------------------------------- */
/* Refused input                                                                              */

static void test_bad_ids(void)
{
    ASSERT_EQ_INT(dec_rc(OM_SIG_TRACES, "{'resourceSpans':[{'scopeSpans':[{},{'spans':[{},{},{},"
                                        "{'traceId':'abc'}]}]}]}"),
                  OM_EINVAL);
    ASSERT_EQ_INT(last_err.code, OM_EINVAL);
    ASSERT_CONTAINS(last_err.msg, "resourceSpans[0].scopeSpans[1].spans[3].traceId: invalid "
                                  "trace id");
    ASSERT_EQ_INT(om_err_http_status(last_err.code), 400);
    ASSERT_EQ_INT(dec_rc(OM_SIG_TRACES, "{'resourceSpans':[{'scopeSpans':[{'spans':[{'spanId':"
                                        "'eee19b7ec3c1b17g'}]}]}]}"),
                  OM_EINVAL);
    ASSERT_CONTAINS(last_err.msg, "spans[0].spanId: invalid span id: invalid hex");
    ASSERT_EQ_INT(dec_rc(OM_SIG_TRACES, "{'resourceSpans':[{'scopeSpans':[{'spans':[{"
                                        "'parentSpanId':'eee19b7ec3c1b1740000'}]}]}]}"),
                  OM_EINVAL);
    ASSERT_CONTAINS(last_err.msg, "parentSpanId: invalid span id: 20 hex digits, want 16");
    ASSERT_EQ_INT(dec_rc(OM_SIG_TRACES, "{'resourceSpans':[{'scopeSpans':[{'spans':[{'links':[{"
                                        "'traceId':'5b8efff798038103d269b633813fc60c00'}]}]}]}]}"),
                  OM_EINVAL);
    ASSERT_CONTAINS(last_err.msg, "links[0].traceId: invalid trace id");
    ASSERT_EQ_INT(dec_rc(OM_SIG_LOGS, "{'resourceLogs':[{'scopeLogs':[{'logRecords':[{'traceId':"
                                      "12}]}]}]}"),
                  OM_EINVAL);
    ASSERT_CONTAINS(last_err.msg, "logRecords[0].traceId: invalid trace id");
    /* A base64 id (the protobuf JSON mapping without OTLP's exception) is refused. */
    ASSERT_EQ_INT(dec_rc(OM_SIG_METRICS,
                         "{'resourceMetrics':[{'scopeMetrics':[{'metrics':[{'gauge':{"
                         "'dataPoints':[{'exemplars':[{'spanId':'AQIDBAUGBwg='}]}]}}]}]}]}"),
                  OM_EINVAL);
    ASSERT_CONTAINS(last_err.msg, "exemplars[0].spanId: invalid span id");
}

static void test_bad_types(void)
{
    struct {
        om_signal_t sig;
        const char *json, *msg;
    } cases[] = {
        {OM_SIG_TRACES, "{'resourceSpans':{}}", "resourceSpans: expected an array"},
        {OM_SIG_TRACES, "{'resourceSpans':[[]]}", "resourceSpans[0]: expected an object"},
        {OM_SIG_TRACES, "{'resourceSpans':[{'scopeSpans':[{'spans':[{'name':5}]}]}]}",
         "spans[0].name: expected a string"},
        {OM_SIG_TRACES,
         "{'resourceSpans':[{'scopeSpans':[{'spans':[{'kind':'SPAN_KIND_BOGUS'}]}"
         "]}]}",
         "spans[0].kind: unknown SpanKind value"},
        {OM_SIG_TRACES, "{'resourceSpans':[{'scopeSpans':[{'spans':[{'kind':2.5}]}]}]}",
         "kind: expected an integer"},
        {OM_SIG_TRACES, "{'resourceSpans':[{'scopeSpans':[{'spans':[{'flags':-1}]}]}]}",
         "flags: expected an unsigned integer"},
        {OM_SIG_TRACES, "{'resourceSpans':[{'scopeSpans':[{'spans':[{'flags':4294967296}]}]}]}",
         "flags: integer out of range"},
        {OM_SIG_TRACES,
         "{'resourceSpans':[{'scopeSpans':[{'spans':[{'startTimeUnixNano':'12a'}]}]}]}",
         "startTimeUnixNano: invalid integer"},
        {OM_SIG_TRACES,
         "{'resourceSpans':[{'scopeSpans':[{'spans':[{'startTimeUnixNano':'-1'}]}]}]}",
         "startTimeUnixNano: invalid integer"},
        {OM_SIG_TRACES,
         "{'resourceSpans':[{'scopeSpans':[{'spans':[{'endTimeUnixNano':"
         "'18446744073709551616'}]}]}]}",
         "endTimeUnixNano: invalid integer"},
        {OM_SIG_LOGS,
         "{'resourceLogs':[{'scopeLogs':[{'logRecords':[{'body':{'boolValue':1}}]}]"
         "}]}",
         "body.boolValue: expected true or false"},
        {OM_SIG_LOGS,
         "{'resourceLogs':[{'scopeLogs':[{'logRecords':[{'body':{'doubleValue':"
         "'fast'}}]}]}]}",
         "body.doubleValue: invalid number"},
        {OM_SIG_LOGS,
         "{'resourceLogs':[{'scopeLogs':[{'logRecords':[{'body':{'doubleValue':"
         "' 1'}}]}]}]}",
         "body.doubleValue: invalid number"},
        {OM_SIG_LOGS, "{'resourceLogs':[{'scopeLogs':[{'logRecords':[{'body':'text'}]}]}]}",
         "logRecords[0].body: expected an object"},
        {OM_SIG_LOGS,
         "{'resourceLogs':[{'scopeLogs':[{'logRecords':[{'attributes':[{'key':'k',"
         "'value':{'intValue':'1.5'}}]}]}]}]}",
         "attributes[0].value.intValue: invalid integer"},
        {OM_SIG_METRICS,
         "{'resourceMetrics':[{'scopeMetrics':[{'metrics':[{'histogram':{"
         "'dataPoints':[{'bucketCounts':['1',{}]}]}}]}]}]}",
         "dataPoints[0].bucketCounts[1]: expected an integer"},
        {OM_SIG_METRICS,
         "{'resourceMetrics':[{'scopeMetrics':[{'metrics':[{"
         "'exponentialHistogram':{'dataPoints':[{'scale':2147483648}]}}]}]}]}",
         "scale: integer out of range"},
        {OM_SIG_TRACES, "[]", "expected a JSON object"},
        {OM_SIG_TRACES, "{'resourceSpans':[}", "invalid JSON at line 1"},
        {OM_SIG_TRACES, "", "invalid JSON"},
        {OM_SIG_TRACES, "{'a':'\\u0000'}", "invalid JSON"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = dec_rc(cases[i].sig, cases[i].json);
        if (rc != OM_EINVAL) {
            fprintf(stderr, "case %zu\n", i);
        }
        ASSERT_EQ_INT(rc, OM_EINVAL);
        ASSERT_EQ_INT(last_err.code, OM_EINVAL);
        ASSERT_CONTAINS(last_err.msg, cases[i].msg);
    }
    /* Invalid UTF-8 in the body is refused by the parser. */
    const char bad_utf8[] = "{\"resourceSpans\":[{\"schemaUrl\":\"\xff\"}]}";
    om_batch_t *b = NULL;
    om_err_t err = {0};
    ASSERT_EQ_INT(om_batch_decode_json(OM_SIG_TRACES, bad_utf8, strlen(bad_utf8), 0, &b, &err),
                  OM_EINVAL);
    ASSERT_TRUE(b == NULL);
}

/* A log body of `levels` nested AnyValues; full: as our encoder writes it. */
static char *nested_body(int levels, bool full)
{
    size_t cap = 200 + (size_t)levels * 40;
    char *s = malloc(cap);
    if (s == NULL) {
        return NULL;
    }
    size_t n = (size_t)snprintf(s, cap,
                                "{\"resourceLogs\":[{%s\"scopeLogs\":[{%s"
                                "\"logRecords\":[{\"body\":",
                                full ? "\"resource\":{}," : "", full ? "\"scope\":{}," : "");
    for (int i = 1; i < levels; i++) {
        n += (size_t)snprintf(s + n, cap - n, "{\"arrayValue\":{\"values\":[");
    }
    n += (size_t)snprintf(s + n, cap - n, "{\"intValue\":\"1\"}");
    for (int i = 1; i < levels; i++) {
        n += (size_t)snprintf(s + n, cap - n, "]}}");
    }
    snprintf(s + n, cap - n, "}]}]}]}");
    return s;
}

static void test_deep_nesting(void)
{
    om_batch_t *b = NULL;
    om_err_t err = {0};
    char *ok = nested_body(64, false);
    char *ok_out = nested_body(64, true);
    char *deep = nested_body(65, false);
    ASSERT_TRUE(ok != NULL && ok_out != NULL && deep != NULL);
    ASSERT_EQ_INT(om_batch_decode_json(OM_SIG_LOGS, ok, strlen(ok), 0, &b, &err), 0);
    /* What we accept we can write back. */
    ASSERT_EQ_STR(enc(b), ok_out);
    om_batch_release(b);
    b = NULL;
    ASSERT_EQ_INT(om_batch_decode_json(OM_SIG_LOGS, deep, strlen(deep), 0, &b, &err), OM_EINVAL);
    ASSERT_TRUE(b == NULL);
    ASSERT_CONTAINS(err.msg, "nested deeper than 64 levels");
    /* The message keeps the end of a long path. */
    ASSERT_CONTAINS(err.msg, "...");
    ASSERT_CONTAINS(err.msg, ".arrayValue.values[0]: values nested");
    free(ok);
    free(ok_out);
    free(deep);
    /* Beyond the JSON reader's own limit (2048): refused while parsing. */
    size_t n = 5000;
    char *brackets = malloc(2 * n + 1);
    ASSERT_TRUE(brackets != NULL);
    memset(brackets, '[', n);
    memset(brackets + n, ']', n);
    brackets[2 * n] = '\0';
    memset(&err, 0, sizeof err);
    ASSERT_EQ_INT(om_batch_decode_json(OM_SIG_LOGS, brackets, 2 * n, 0, &b, &err), OM_EINVAL);
    free(brackets);
}

static void test_arena_cap(void)
{
    om_strbuf_t sb;
    om_strbuf_init(&sb, 0);
    om_strbuf_puts(&sb, "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[");
    for (int i = 0; i < 200; i++) {
        om_strbuf_printf(&sb,
                         "%s{\"name\":\"span-%d\",\"attributes\":[{\"key\":\"k\",\"value\":"
                         "{\"stringValue\":\"some value %d\"}}]}",
                         i > 0 ? "," : "", i, i);
    }
    om_strbuf_puts(&sb, "]}]}]}");
    ASSERT_TRUE(!sb.failed);
    om_batch_t *b = NULL;
    om_err_t err = {0};
    ASSERT_EQ_INT(om_batch_decode_json(OM_SIG_TRACES, sb.data, sb.len, 8192, &b, &err), OM_ETOOBIG);
    ASSERT_TRUE(b == NULL);
    ASSERT_EQ_INT(err.code, OM_ETOOBIG);
    memset(&err, 0, sizeof err);
    ASSERT_EQ_INT(om_batch_decode_json(OM_SIG_TRACES, sb.data, sb.len, 1u << 20, &b, &err), 0);
    ASSERT_EQ_UINT(b->items, 200);
    om_batch_release(b);
    om_strbuf_free(&sb);
}

static void test_allocation_failures(void)
{
    /* Every allocation of a decode and an encode fails in turn: each run ends in success or
     * OM_ENOMEM, never in a crash or a leak (the sanitizer build checks the latter). */
    const char *json = q(golden_metrics);
    int failures = 0;
    for (unsigned long n = 1; n < 200; n++) {
        om_batch_t *b = NULL;
        om_err_t err = {0};
        om_alloc_fail_after(n);
        int rc = om_batch_decode_json(OM_SIG_METRICS, json, strlen(json), 0, &b, &err);
        if (rc == 0) {
            om_strbuf_t sb;
            om_strbuf_init(&sb, 0);
            rc = om_otlp_json_encode(b, &sb);
            om_strbuf_free(&sb);
            om_batch_release(b);
        } else {
            ASSERT_TRUE(b == NULL);
        }
        om_alloc_fail_after(0);
        if (rc != 0) {
            ASSERT_EQ_INT(rc, OM_ENOMEM);
            failures++;
        }
    }
    ASSERT_TRUE(failures > 0);
}

/* ---------------------------------------------------------------------------------------- */
/* Encoder details                                                                            */

static void test_string_escaping(void)
{
    om_batch_t *b = dec(OM_SIG_LOGS, "{'resourceLogs':[{'scopeLogs':[{'logRecords':[{'body':{"
                                     "'stringValue':'x'},'severityText':'y'}]}]}]}");
    ASSERT_TRUE(b != NULL);
    om_log_record_t *r = b->logs->resource_logs[0]->scope_logs[0]->log_records[0];
    /* Control characters, quotes, backslash, DEL, valid multi-byte characters, then invalid
     * UTF-8: a lone continuation byte, a truncated sequence, an overlong, a surrogate and a
     * code point above U+10FFFF. */
    static char body[] = "\x01\x08\x0c\x1f\"\\/\x7f \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80 "
                         "\x80|\xe2\x82|\xc0\xaf|\xed\xa0\x80|\xf4\x90\x80\x80|\xff";
    r->body->string_value = body;
    static char sev[] = "tab\there";
    r->severity_text = sev;
    ASSERT_EQ_STR(enc(b),
                  "{\"resourceLogs\":[{\"resource\":{},\"scopeLogs\":[{\"scope\":{},"
                  "\"logRecords\":[{\"severityText\":\"tab\\there\",\"body\":{"
                  "\"stringValue\":\"\\u0001\\u0008\\u000c\\u001f\\\"\\\\/\x7f "
                  "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80 \xef\xbf\xbd|\xef\xbf\xbd\xef\xbf"
                  "\xbd|\xef\xbf\xbd\xef\xbf\xbd|\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd|"
                  "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd|\xef\xbf\xbd\"}}]}]}]}");
    om_batch_release(b);
}

static void test_nil_pointers(void)
{
    /* Batches built by other components may leave sub-messages and strings NULL. */
    om_batch_t *b = dec(OM_SIG_TRACES, "{'resourceSpans':[{'scopeSpans':[{'spans':[{'name':'n',"
                                       "'attributes':[{'key':'k'}]}]}]}]}");
    ASSERT_TRUE(b != NULL);
    om_resource_spans_t *rs = b->traces->resource_spans[0];
    rs->resource = NULL;
    rs->schema_url = NULL;
    rs->scope_spans[0]->scope = NULL;
    om_span_t *s = rs->scope_spans[0]->spans[0];
    s->status = NULL;
    s->trace_state = NULL;
    s->attributes[0]->value = NULL;
    ASSERT_EQ_STR(enc(b), q("{'resourceSpans':[{'resource':{},'scopeSpans':[{'scope':{},'spans':"
                            "[{'name':'n','attributes':[{'key':'k','value':{}}],'status':{}}]}]}"
                            "]}"));
    om_batch_release(b);
}

static void test_encode_too_big(void)
{
    om_batch_t *b = dec(OM_SIG_TRACES, golden_traces);
    ASSERT_TRUE(b != NULL);
    om_strbuf_t sb;
    om_strbuf_init(&sb, 100);
    om_strbuf_puts(&sb, "keep");
    ASSERT_EQ_INT(om_otlp_json_encode(b, &sb), OM_ETOOBIG);
    ASSERT_EQ_UINT(sb.len, 4);
    ASSERT_EQ_STR(sb.data, "keep");
    om_strbuf_free(&sb);
    /* Appends to what is already there. */
    om_strbuf_init(&sb, 0);
    om_strbuf_puts(&sb, "x");
    ASSERT_EQ_INT(om_otlp_json_encode(b, &sb), 0);
    ASSERT_TRUE(sb.data[0] == 'x' && sb.data[1] == '{');
    om_strbuf_free(&sb);
    om_batch_release(b);
}

static void test_response_and_status(void)
{
    om_strbuf_t sb;
    om_strbuf_init(&sb, 0);
    om_otlp_json_encode_response(OM_SIG_TRACES, 0, NULL, &sb);
    ASSERT_EQ_STR(sb.data, "{}");
    om_strbuf_reset(&sb);
    om_otlp_json_encode_response(OM_SIG_METRICS, 0, "", &sb);
    ASSERT_EQ_STR(sb.data, "{}");
    om_strbuf_reset(&sb);
    om_otlp_json_encode_response(OM_SIG_TRACES, 3, "3 spans \"dropped\"", &sb);
    ASSERT_EQ_STR(sb.data, "{\"partialSuccess\":{\"rejectedSpans\":\"3\",\"errorMessage\":"
                           "\"3 spans \\\"dropped\\\"\"}}");
    om_strbuf_reset(&sb);
    om_otlp_json_encode_response(OM_SIG_METRICS, 7, NULL, &sb);
    ASSERT_EQ_STR(sb.data, "{\"partialSuccess\":{\"rejectedDataPoints\":\"7\"}}");
    om_strbuf_reset(&sb);
    om_otlp_json_encode_response(OM_SIG_LOGS, 1, "x", &sb);
    ASSERT_EQ_STR(sb.data, "{\"partialSuccess\":{\"rejectedLogRecords\":\"1\",\"errorMessage\":"
                           "\"x\"}}");
    om_strbuf_reset(&sb);
    om_otlp_json_encode_response(OM_SIG_LOGS, 0, "warning only", &sb);
    ASSERT_EQ_STR(sb.data, "{\"partialSuccess\":{\"errorMessage\":\"warning only\"}}");
    om_strbuf_reset(&sb);
    om_otlp_json_encode_status(3, "resourceSpans[0]: bad\n", &sb);
    ASSERT_EQ_STR(sb.data, "{\"code\":3,\"message\":\"resourceSpans[0]: bad\\n\"}");
    om_strbuf_reset(&sb);
    om_otlp_json_encode_status(14, NULL, &sb);
    ASSERT_EQ_STR(sb.data, "{\"code\":14}");
    om_strbuf_free(&sb);
}

int main(void)
{
    om_log_set_level(OM_LOG_NONE);
    OM_RUN(test_golden_traces_roundtrip);
    OM_RUN(test_golden_metrics_roundtrip);
    OM_RUN(test_golden_logs_roundtrip);
    OM_RUN(test_decoded_values);
    OM_RUN(test_proto_roundtrip);
    OM_RUN(test_empty_request);
    OM_RUN(test_snake_case_keys);
    OM_RUN(test_enum_names);
    OM_RUN(test_integer_forms);
    OM_RUN(test_big_bare_numbers);
    OM_RUN(test_doubles);
    OM_RUN(test_base64_variants);
    OM_RUN(test_nulls_and_unknown_fields);
    OM_RUN(test_duplicate_keys);
    OM_RUN(test_all_zero_id_omitted);
    OM_RUN(test_bad_ids);
    OM_RUN(test_bad_types);
    OM_RUN(test_deep_nesting);
    OM_RUN(test_arena_cap);
    OM_RUN(test_allocation_failures);
    OM_RUN(test_string_escaping);
    OM_RUN(test_nil_pointers);
    OM_RUN(test_encode_too_big);
    OM_RUN(test_response_and_status);
    return om_test_summary();
}
