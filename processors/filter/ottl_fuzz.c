/* ottl_fuzz.c: the OTTL compiler and evaluator of the filter processor. The first byte picks
 * the context (span, spanevent, metric, datapoint, log); the rest is the condition. A
 * condition that compiles is evaluated on every item of a fixed batch of its signal whose
 * values cover every type (strings, ints, doubles, bools, bytes, maps, lists, empty values,
 * ids). Each input runs twice: once normally and once with allocations failing from an
 * input-chosen point. Evaluation must answer true, false or an error, and never crash; a
 * condition's result may not depend on the allocation failure unless it reports OM_ENOMEM. */
#include <stdlib.h>
#include <string.h>

#include "filter.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char traces_json[] =
    "{\"resourceSpans\":[{\"resource\":{\"attributes\":["
    "{\"key\":\"service.name\",\"value\":{\"stringValue\":\"checkout\"}},"
    "{\"key\":\"host.cpu\",\"value\":{\"intValue\":\"8\"}}]},"
    "\"scopeSpans\":[{\"scope\":{\"name\":\"lib\",\"version\":\"1.2\"},\"spans\":["
    "{\"traceId\":\"0102030405060708090a0b0c0d0e0f10\",\"spanId\":\"1112131415161718\","
    "\"parentSpanId\":\"\",\"name\":\"GET /health\",\"kind\":2,\"startTimeUnixNano\":\"100\","
    "\"endTimeUnixNano\":\"2000000100\",\"attributes\":["
    "{\"key\":\"http.status_code\",\"value\":{\"intValue\":\"503\"}},"
    "{\"key\":\"ratio\",\"value\":{\"doubleValue\":0.25}},"
    "{\"key\":\"ok\",\"value\":{\"boolValue\":false}},"
    "{\"key\":\"raw\",\"value\":{\"bytesValue\":\"AAEC\"}},"
    "{\"key\":\"empty\",\"value\":{}},"
    "{\"key\":\"list\",\"value\":{\"arrayValue\":{\"values\":[{\"stringValue\":\"a\"},"
    "{\"intValue\":\"2\"}]}}},"
    "{\"key\":\"map\",\"value\":{\"kvlistValue\":{\"values\":[{\"key\":\"z\",\"value\":"
    "{\"stringValue\":\"<&>\"}},{\"key\":\"a\",\"value\":{\"doubleValue\":1e21}}]}}}],"
    "\"events\":[{\"name\":\"exception\",\"timeUnixNano\":\"150\",\"attributes\":["
    "{\"key\":\"exception.type\",\"value\":{\"stringValue\":\"IOError\"}}]}],"
    "\"status\":{\"code\":2,\"message\":\"boom\"}},"
    "{\"traceId\":\"\",\"spanId\":\"\",\"name\":\"\",\"events\":[{}]}]}]},"
    "{\"scopeSpans\":[{\"spans\":[{\"name\":\"bare\"}]}]}]}";

static const char metrics_json[] =
    "{\"resourceMetrics\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\","
    "\"value\":{\"stringValue\":\"db\"}}]},\"scopeMetrics\":[{\"scope\":{\"name\":\"m\"},"
    "\"metrics\":["
    "{\"name\":\"g\",\"unit\":\"1\",\"gauge\":{\"dataPoints\":[{\"asInt\":\"-7\",\"attributes\":"
    "[{\"key\":\"k\",\"value\":{\"stringValue\":\"v\"}}]},{\"asDouble\":2.5}]}},"
    "{\"name\":\"s\",\"sum\":{\"aggregationTemporality\":2,\"isMonotonic\":true,\"dataPoints\":"
    "[{\"asDouble\":-0.0,\"timeUnixNano\":\"5\"}]}},"
    "{\"name\":\"h\",\"histogram\":{\"aggregationTemporality\":1,\"dataPoints\":[{\"count\":"
    "\"3\",\"sum\":1.5,\"bucketCounts\":[\"1\",\"2\"],\"explicitBounds\":[1]}]}},"
    "{\"name\":\"e\",\"exponentialHistogram\":{\"dataPoints\":[{\"count\":\"1\",\"scale\":2}]}},"
    "{\"name\":\"q\",\"description\":\"d\",\"summary\":{\"dataPoints\":[{\"count\":\"4\","
    "\"sum\":8}]}}]}]}]}";

static const char logs_json[] =
    "{\"resourceLogs\":[{\"resource\":{},\"scopeLogs\":[{\"logRecords\":["
    "{\"body\":{\"stringValue\":\"password=hunter2\"},\"severityNumber\":13,"
    "\"severityText\":\"WARN\",\"traceId\":\"0102030405060708090a0b0c0d0e0f10\","
    "\"attributes\":[{\"key\":\"n\",\"value\":{\"intValue\":\"1\"}}]},"
    "{\"body\":{\"kvlistValue\":{\"values\":[{\"key\":\"msg\",\"value\":{\"stringValue\":"
    "\"x\"}},{\"key\":\"arr\",\"value\":{\"arrayValue\":{\"values\":[{\"boolValue\":true}]}}}"
    "]}}},"
    "{}]}]}]}";

typedef struct fuzz_walk {
    const ottl_expr_t *e;
    ottl_scratch_t s;
    int results[64];
    size_t n;
} fuzz_walk_t;

static int on_item(om_item_t *it, void *arg)
{
    fuzz_walk_t *w = arg;
    int rc = proc_filter_ottl_eval(w->e, it, &w->s);
    if (rc != 0 && rc != 1 && rc != OM_EINVAL && rc != OM_ENOMEM) {
        abort();
    }
    if (rc < 0 && w->s.msg[0] == '\0') {
        abort(); /* every error says what it is */
    }
    if (w->n < 64) {
        w->results[w->n++] = rc;
    }
    return OM_KEEP;
}

static const om_level_t levels[] = {OM_LEVEL_SPAN, OM_LEVEL_SPAN_EVENT, OM_LEVEL_METRIC,
                                    OM_LEVEL_DATAPOINT, OM_LEVEL_LOG};

/* Compiles and evaluates; returns false when something ran out of memory. */
static bool run_once(ottl_ctx_t ctx, const char *text, fuzz_walk_t *w)
{
    om_err_t err = {0};
    ottl_expr_t *e = NULL;
    int rc = proc_filter_ottl_compile(ctx, text, &e, &err);
    w->n = 0;
    if (rc != 0) {
        if (err.msg[0] == '\0' || (rc != OM_EINVAL && rc != OM_ENOMEM)) {
            abort();
        }
        w->results[w->n++] = rc == OM_ENOMEM ? 100 : 101;
        return rc != OM_ENOMEM;
    }
    const char *json = ctx <= OTTL_CTX_SPANEVENT   ? traces_json
                       : ctx <= OTTL_CTX_DATAPOINT ? metrics_json
                                                   : logs_json;
    om_signal_t sig = ctx <= OTTL_CTX_SPANEVENT   ? OM_SIG_TRACES
                      : ctx <= OTTL_CTX_DATAPOINT ? OM_SIG_METRICS
                                                  : OM_SIG_LOGS;
    om_batch_t *b = NULL;
    bool ok = false;
    if (om_batch_decode_json(sig, json, strlen(json), 0, &b, NULL) == 0) {
        w->e = e;
        ok = om_batch_walk(&b, levels[ctx], on_item, w, NULL) >= 0;
        om_batch_release(b);
    }
    for (size_t i = 0; i < w->n; i++) {
        ok = ok && w->results[i] != OM_ENOMEM;
    }
    proc_filter_ottl_free(e);
    proc_filter_scratch_free(&w->s);
    return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 4096) {
        return 0;
    }
    om_log_set_level(OM_LOG_NONE);
    ottl_ctx_t ctx = (ottl_ctx_t)(data[0] % 5);
    char *text = malloc(size);
    if (text == NULL) {
        return 0;
    }
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    static fuzz_walk_t first, second;
    memset(&first, 0, sizeof first);
    memset(&second, 0, sizeof second);
    bool ok = run_once(ctx, text, &first);
    if (!ok) {
        abort(); /* nothing fails allocating here */
    }
    om_alloc_fail_after(1 + data[0] / 5 * 3);
    bool ok2 = run_once(ctx, text, &second);
    om_alloc_fail_after(0);
    /* Without a memory failure, the second run must say exactly what the first said. */
    if (ok2 && (first.n != second.n ||
                memcmp(first.results, second.results, first.n * sizeof first.results[0]) != 0)) {
        abort();
    }
    free(text);
    return 0;
}
