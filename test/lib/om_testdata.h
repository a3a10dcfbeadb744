/* om_testdata.h: small OTLP batches with numbered items, for tests.
 *
 * Every item (span, metric data point, log record) carries its sequence number, so a test can
 * check that items arrive complete and in order after batching, splitting or encoding:
 *   - an int attribute "seq" on every item;
 *   - spans: name "span-<seq>", span id = seq big-endian (8 bytes), trace id = 8 zero bytes
 *     then seq big-endian, kind SERVER, start = OM_TESTDATA_T0 + seq, end = start + 1000;
 *   - log records: body "log-<seq>", severity INFO ("Info"), time = OM_TESTDATA_T0 + seq;
 *   - data points: time = OM_TESTDATA_T0 + seq; the metric kind cycles with the metric's index
 *     in its scope: gauge (int value seq), sum (double seq + 0.5, monotonic, cumulative),
 *     histogram, exponential histogram, summary.
 * Resource r has attribute service.name = "svc-<r>"; scope s is named "scope-<s>", version
 * "1.0"; metric m of scope s of resource r is named "metric-<r>-<s>-<m>".
 *
 * Everything lives in the batch's arena (built with om_batch_new), batch->items is set.
 * Functions return NULL when out of memory. Loop thread (tests only). */
#ifndef OM_TESTDATA_H
#define OM_TESTDATA_H

#include "om.h"

/* 2020-02-11 20:26:12 UTC in nanoseconds. */
#define OM_TESTDATA_T0 UINT64_C(1581452772000000000)

typedef struct om_testdata_shape {
    size_t resources;   /* resource entries; 0 means 1 */
    size_t scopes;      /* scope entries per resource; 0 means 1 */
    size_t metrics;     /* metrics per scope (metrics only); 0 means 1 */
    size_t items;       /* spans or log records per scope, data points per metric */
    uint64_t first_seq; /* sequence number of the first item */
} om_testdata_shape_t;

/* A batch of the given shape. Items are numbered first_seq, first_seq + 1, ... in the order
 * they appear in the request. */
om_batch_t *om_testdata_batch(om_signal_t sig, const om_testdata_shape_t *shape);

/* One resource, one scope (one metric for metrics) and n items numbered from first_seq. */
om_batch_t *om_testdata_simple(om_signal_t sig, size_t n, uint64_t first_seq);

/* The "seq" attribute of every item of b in request order: decodes b, writes up to max of them
 * to out (out may be NULL when max is 0) and returns how many items b has (0 when b cannot be
 * decoded). An item without the attribute reads as -1. */
size_t om_testdata_seqs(om_batch_t *b, int64_t *out, size_t max);

/* The value of an int attribute, or -1 when absent or not an int. */
int64_t om_testdata_int_attr(om_keyvalue_t *const *attrs, size_t n, const char *key);

/* OTLP data from a few lines of text (printf-style fmt). Statements are separated by ';' or
 * newlines; each is a keyword, then an optional name (a word or a quoted string), fields
 * `key:value` and attributes `key=value`, in any order; '#' starts a comment:
 *
 *   om_testdata_otlp("resource service.name=a; scope s@1.0;"
 *                    "span 'GET /' kind:server status:error http.method=GET "
 *                    "http.status_code=500")
 *
 *   traces | metrics | logs    optional first word: the signal (else that of the first item)
 *   resource                   a resource entry with a Resource       fields: schema
 *   scope NAME[@VERSION]       a scope entry with a scope             fields: version, schema
 *   span NAME                  kind: unspecified|internal|server|client|producer|consumer,
 *                              status: unset|ok|error, message (status message), trace, id,
 *                              parent (hex), state, start, end (ns), dropped_attrs,
 *                              dropped_events
 *   event NAME                 an event of the last span     fields: time, dropped_attrs
 *   metric NAME                type: gauge (default)|sum|histogram|exphistogram|summary,
 *                              unit, desc, temporality: delta|cumulative, monotonic: true
 *                              (type first)
 *   point [VALUE]              a point of the last metric; VALUE (gauge, sum): an int, or a
 *                              double when written with '.' or an exponent; fields: time,
 *                              start, count, sum (histograms and summaries)
 *   log [BODY]                 severity: trace|debug|info|warn|error|fatal, text (severity
 *                              text), time, trace, span (hex); BODY is typed as a value
 *
 * Attribute values (and log bodies) are typed: 'quoted' or "quoted": string; true, false:
 * bool; an integer: int; another number: double; 0x and hex digits: bytes; any other word:
 * string. A span, metric or log without a scope before it gets an entry without
 * InstrumentationScope (and one without Resource when there is no resource either). A mistake
 * in the text prints where it is and aborts the test program. The batch has msg (no wire
 * bytes; see om_testdata_wire), items set, and an arena without a cap. */
om_batch_t *om_testdata_otlp(const char *fmt, ...) OM_PRINTF(1, 2);

/* The structure of b in one line, for assertions (decodes b): each resource entry as
 * "(SVC [SCOPE: ITEM ITEM] [SCOPE: ...])", SVC its service.name ("-": no resource), SCOPE the
 * scope's name ("-": none); an item is a span's name with its events' names in {} after it,
 * a metric's name with its points in <> (a gauge's or sum's value, the count of others), a
 * log's body. E.g. "(a [s: GET{ex} POST]) (b [t: x])". The text lives in one of 8 static
 * buffers (4 KiB), reused in turn. */
const char *om_testdata_describe(om_batch_t *b);

/* The batch as it arrives from a client: b packed and taken in again with
 * om_batch_decode_proto (wire bytes, no msg). Consumes b; NULL when out of memory. */
om_batch_t *om_testdata_wire(om_batch_t *b);

/* Building blocks for tests that hand-craft batches: a message of type d in arena a (NULL when
 * the arena is out of memory), a string copy, and a KeyValue with a string or int value. */
void *om_testdata_msg(om_arena_t *a, const ProtobufCMessageDescriptor *d);
char *om_testdata_str(om_arena_t *a, const char *s);
om_keyvalue_t *om_testdata_kv_str(om_arena_t *a, const char *key, const char *value);
om_keyvalue_t *om_testdata_kv_int(om_arena_t *a, const char *key, int64_t value);

/* An export that does not finish until the test says so: an exporter helper holding one
 * batch of n log records in flight, so that an export is pending on the host's intake and the
 * batch's arena is live (what tests of intake backpressure need). */
typedef struct om_testdata_hold {
    om_exphelper_cfg_t cfg;
    om_host_t *host;
    om_exphelper_t *helper;
    om_exp_req_t *req; /* the send in flight, until released */
    bool done;         /* the helper's shutdown finished */
} om_testdata_hold_t;

int om_testdata_hold_start(om_testdata_hold_t *t, om_host_t *host, size_t n);
/* The send succeeds: the batch is freed and nothing is pending any more. */
void om_testdata_hold_release(om_testdata_hold_t *t);
/* Shuts the helper down (releasing the send first if needed) and frees it; runs the loop
 * until done. */
void om_testdata_hold_stop(om_testdata_hold_t *t);

#endif
