/* om.h: the one header a component includes.
 *
 * It declares the core's services: error codes, allocation, arenas, batches of OTLP data,
 * the OTLP codecs, string buffers, logging, the config node tree, the field tables that turn
 * config nodes into component config structs, the component factory interface and the host
 * a component gets (the loop, the mailbox, the metrics registry, the worker service), and
 * the exporter helper.
 *
 * Threading: everything declared here is for the loop thread only, unless a comment says
 * otherwise. Nothing here blocks. */
#ifndef OM_H
#define OM_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <uv.h>

#include "otlp_types.h"

#define OM_VERSION "0.1.0"

#if defined(__GNUC__)
#define OM_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define OM_PRINTF(fmt, args)
#endif

/* Tests reach file-local functions through OM_STATIC. */
#ifdef OM_TESTING
#define OM_STATIC
#else
#define OM_STATIC static
#endif

/* ------------------------------------------------------------------------------------------ */
/* Errors: 0 or a negative OM_E* code. The X-macro gives the enum, the names and messages.     */

#define OM_ERRNO_MAP(X)                                                                            \
    X(ENOMEM, -1, "out of memory")                                                                 \
    X(EINVAL, -2, "invalid data")                                                                  \
    X(EREFUSED, -3, "refused, retry later")                                                        \
    X(EAGAIN, -4, "temporarily unavailable, retry later")                                          \
    X(ETOOBIG, -5, "too large")                                                                    \
    X(EIO, -6, "I/O error")                                                                        \
    X(ENOTSUP, -7, "not supported")                                                                \
    X(ECONFIG, -8, "invalid configuration")                                                        \
    X(ESHUTDOWN, -9, "shutting down")                                                              \
    X(ENOTFOUND, -10, "not found")                                                                 \
    X(EPERM, -11, "permanent failure")                                                             \
    X(EMEMLIMIT, -12, "data refused due to high memory usage")                                     \
    X(EUNAUTH, -13, "unauthenticated")

typedef enum {
    OM_OK = 0,
#define OM__ERR_ENUM(name, code, msg) OM_##name = (code),
    OM_ERRNO_MAP(OM__ERR_ENUM)
#undef OM__ERR_ENUM
} om_errno_t;

/* Context for an error: the code plus one bounded message for humans. The first writer wins,
 * so the most specific layer (the one that saw the problem) sets the message. */
typedef struct om_err {
    int code;
    char msg[256];
    /* Config errors: the key the message is about, as a path below the component's own node
     * ("protocols::http::tls::min_version"), so that the core reports that key's
     * file:line:column instead of the component's. "" when unknown. */
    char at[128];
} om_err_t;

void om_err_set(om_err_t *err, int code, const char *fmt, ...) OM_PRINTF(3, 4);
/* om_err_set for a config rule, naming the key it is about (see om_err_t.at); key may be a
 * path such as "tls::max_version". The message should not repeat the key's path: the core
 * puts the full path in front of it. */
void om_err_at(om_err_t *err, const char *key, const char *fmt, ...) OM_PRINTF(3, 4);
const char *om_strerror(int code);
const char *om_errname(int code);
/* Retryable errors tell the client to try again later (gRPC UNAVAILABLE, HTTP 503). */
bool om_err_retryable(int code);
/* The one mapping from our codes to what receivers answer: a gRPC status code and an HTTP
 * status. 0 maps to OK/200. */
int om_err_grpc_status(int code);
int om_err_http_status(int code);

/* ------------------------------------------------------------------------------------------ */
/* Allocation: these return NULL on failure and never abort. Every caller handles NULL.        */

void *om_malloc(size_t n);
void *om_calloc(size_t count, size_t n);
void *om_realloc(void *p, size_t n);
char *om_strdup(const char *s);
char *om_strndup(const char *s, size_t n);
void om_free(void *p);
/* memcpy for spans that may be empty: C makes memcpy's pointers valid even for 0 bytes, and an
 * empty buffer's data is often NULL (UBSan reports the call). Returns dst. */
static inline void *om_copy(void *dst, const void *src, size_t n)
{
    return n > 0 ? memcpy(dst, src, n) : dst;
}
/* memcmp(a, b, n) == 0 for spans that may be empty (the same rule as om_copy). */
static inline bool om_same(const void *a, const void *b, size_t n)
{
    return n == 0 || memcmp(a, b, n) == 0;
}
/* 64 bits in little-endian order, as protobuf's fixed64 and double are on the wire. On a
 * little-endian host this is one load or store: gcc -O2 leaves a byte loop as a loop (callgrind
 * counted the remote-write encoder's sample writes and om_pb_next's times byte by byte). */
static inline uint64_t om_le64_load(const uint8_t *p)
{
    uint64_t v = 0;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(&v, p, 8);
#else
    for (int i = 7; i >= 0; i--) {
        v = v << 8 | p[i];
    }
#endif
    return v;
}
/* Writes v at w in little-endian order; returns the byte after it. */
static inline uint8_t *om_le64_store(uint8_t *w, uint64_t v)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(w, &v, 8);
#else
    for (int i = 0; i < 8; i++) {
        w[i] = (uint8_t)(v >> (8 * i));
    }
#endif
    return w + 8;
}
/* Fuzz and failure-path tests: make the Nth allocation from now fail (0 disables). */
void om_alloc_fail_after(unsigned long n);

/* ------------------------------------------------------------------------------------------ */
/* Arena: a bump allocator with a hard cap, refcounted so that batches built from several       */
/* decoded requests can share the memory their nodes live in.                                 */

typedef struct om_arena om_arena_t;

/* cap: the most bytes the arena hands out (0: no cap). Returns NULL when out of memory. */
om_arena_t *om_arena_new(size_t cap);
/* 8-byte aligned memory, or NULL when the cap is reached (then om_arena_exhausted() is true)
 * or malloc fails. The memory lives until the last reference is dropped. */
void *om_arena_alloc(om_arena_t *a, size_t n);
void *om_arena_calloc(om_arena_t *a, size_t count, size_t n);
char *om_arena_strndup(om_arena_t *a, const char *s, size_t n);
bool om_arena_exhausted(const om_arena_t *a);
/* After an allocation from a failed: sets err and returns OM_ETOOBIG ("<what> exceeds the
 * memory limit") when a's cap was reached, else OM_ENOMEM ("out of memory"). */
int om_arena_fail(const om_arena_t *a, om_err_t *err, const char *what);
size_t om_arena_cap(const om_arena_t *a); /* 0: no cap */
size_t om_arena_used(const om_arena_t *a);
om_arena_t *om_arena_ref(om_arena_t *a);
void om_arena_unref(om_arena_t *a);
/* A protobuf-c allocator that allocates from the arena and never frees: never call
 * *__free_unpacked on a message unpacked with it. The pointer lives as long as the arena. */
ProtobufCAllocator *om_arena_pb_allocator(om_arena_t *a);
/* Bytes held by all live arenas of the process (what memory_limiter reads). */
size_t om_arena_live_bytes(void);

/* ------------------------------------------------------------------------------------------ */
/* Signals and batches                                                                        */

typedef enum {
    OM_SIG_TRACES = 1u << 0,
    OM_SIG_METRICS = 1u << 1,
    OM_SIG_LOGS = 1u << 2,
} om_signal_t;
#define OM_SIG_COUNT 3
#define OM_SIG_ALL (OM_SIG_TRACES | OM_SIG_METRICS | OM_SIG_LOGS)

/* 0, 1, 2 for traces, metrics, logs; -1 for anything else. */
int om_signal_index(om_signal_t s);
om_signal_t om_signal_from_index(int i);
/* "traces", "metrics", "logs". */
const char *om_signal_name(om_signal_t s);
/* "spans", "metric points", "log records": what items of this signal are called. */
const char *om_signal_item_name(om_signal_t s);

/* A run of protobuf bytes a batch keeps (see raw_valid). */
typedef struct om_raw_seg {
    const uint8_t *data;
    size_t len;
} om_raw_seg_t;

/* What a batch holds, counted. */
typedef struct om_batch_counts {
    size_t resources; /* resource entries */
    size_t metrics;   /* metrics (metrics batches only) */
    size_t items;     /* spans, metric data points or log records */
} om_batch_counts_t;

/* A batch is one Export*ServiceRequest of one signal, held as protobuf-c structs (msg), as the
 * protobuf bytes it arrived in (raw), or both. A request received over OTLP/protobuf is only
 * checked and counted on arrival: msg stays NULL until something needs the structs and calls
 * om_batch_decode(), so a batch that nothing changes is forwarded without ever being decoded.
 * Its nodes live in the arenas it holds references to (arenas[0] is where new nodes for this
 * batch are allocated).
 *
 * Ownership: whoever holds a reference may read it. A consumer that is handed a batch owns
 * that reference on every path, errors included. A batch with refs > 1 is shared by a fan-out
 * and is read-only. Change a batch only through the editing API below ("Editing data"):
 * om_batch_walk() to keep or drop items, om_batch_edit() before changing nodes. */
typedef struct om_batch {
    om_signal_t signal;
    unsigned refs;
    size_t items; /* spans, metric data points or log records; kept up to date by the core */
    /* NULL while the batch is only its wire bytes: call om_batch_decode() before reading. */
    union {
        om_traces_req_t *traces;
        om_metrics_req_t *metrics;
        om_logs_req_t *logs;
        ProtobufCMessage *msg;
    };
    size_t n_arenas, cap_arenas;
    om_arena_t **arenas; /* om_malloc'd array of references */
    size_t res_cap;      /* capacity of the resource array when the core grew it, else 0 */
    /* Some nodes are shared with other batches (set by om_batch_append from a shared source
     * and by om_batch_share_arenas): read-only even when refs == 1. */
    bool borrowed;
    /* The request as it arrived, while nothing has changed it: protobuf segments (in the
     * batch's arenas) whose concatenation encodes the request, so that exporters send these
     * bytes instead of encoding msg again. om_batch_decode_proto sets it; om_batch_append
     * keeps it when both sides have it; om_batch_edit and a walk that drops items drop it
     * (msg changes). Code that changes msg must go through om_batch_edit. At least one of msg
     * and raw_valid is always there. */
    bool raw_valid;
    size_t n_raw, cap_raw;
    om_raw_seg_t *raw;             /* om_malloc'd array */
    om_batch_counts_t wire_counts; /* the counts while msg is NULL (see om_batch_counts) */
    /* Core-internal: an upper bound of what decoding the wire bytes takes from the arena, as
     * the arrival check found it, while the batch is one request in one arena (else 0:
     * unknown). om_batch_set_wire's rewritten mode keeps it up to date. */
    size_t wire_decoded;
    /* Core-internal (om_attrs_*): the attribute array an insert last grew, and how many
     * entries it has room for, so that several inserts into one list do not copy it each
     * time. Arena memory is never reused while the batch lives, so the pointer identifies
     * the array. */
    void *attrs_grown;
    size_t attrs_grown_cap;
} om_batch_t;

/* An empty request of the signal in a new arena of at most arena_cap bytes (0: no cap). */
om_batch_t *om_batch_new(om_signal_t sig, size_t arena_cap);
/* Take in OTLP protobuf / OTLP JSON. Protobuf is checked (everything protobuf-c would refuse
 * is refused) and counted, and kept as its bytes: msg is NULL until om_batch_decode(). JSON is
 * decoded into msg. On failure returns OM_EINVAL for malformed data (the message in err says
 * what), OM_ETOOBIG when the decoded form would pass arena_cap, OM_ENOMEM. The input is not
 * referenced after return. */
int om_batch_decode_proto(om_signal_t sig, const uint8_t *data, size_t len, size_t arena_cap,
                          om_batch_t **out, om_err_t *err);
/* The same as om_batch_decode_proto on the concatenation of parts (a request that arrived in
 * pieces, as gRPC slices), which is made once, in the batch's arena: no other copy. */
int om_batch_decode_proto_parts(om_signal_t sig, const uv_buf_t *parts, size_t n_parts,
                                size_t arena_cap, om_batch_t **out, om_err_t *err);
int om_batch_decode_json(om_signal_t sig, const char *data, size_t len, size_t arena_cap,
                         om_batch_t **out, om_err_t *err);
/* Make b->msg available, decoding the wire bytes if it is not yet (also for a shared batch:
 * the structs are a cache all holders see). Returns 0, OM_ENOMEM, or OM_EINVAL / OM_ETOOBIG
 * if a request no longer decodes (it was checked on arrival, so only memory can run out). */
int om_batch_decode(om_batch_t *b, om_err_t *err);
/* Resource entries, metrics and items, from msg or from what was counted on the wire. */
void om_batch_counts(const om_batch_t *b, om_batch_counts_t *c);
om_batch_t *om_batch_ref(om_batch_t *b);
void om_batch_release(om_batch_t *b);
/* A deep copy, decoded (msg) and without wire bytes, in one new arena whose cap is what the
 * copy takes plus the room for edits of om_batch_edit (see OM_BATCH_EDIT_ROOM). Exclusively
 * owned by the caller (refs 1, not borrowed). NULL when out of memory. */
om_batch_t *om_batch_clone(const om_batch_t *b);
/* Move all resource entries of src to the end of dst. dst must be exclusively owned; src is
 * consumed (its reference is dropped) on every path. dst keeps src's arenas alive. */
int om_batch_append(om_batch_t *dst, om_batch_t *src);
/* Make dst keep every arena of src alive (for batches whose nodes point into src); marks dst
 * borrowed. */
int om_batch_share_arenas(om_batch_t *dst, const om_batch_t *src);
/* Count spans / data points / log records of the message (the wire count while msg is NULL). */
size_t om_batch_count_items(const om_batch_t *b);
/* Serialized protobuf size, and packing into a buffer of at least that size. */
size_t om_batch_proto_size(const om_batch_t *b);
size_t om_batch_proto_pack(const om_batch_t *b, uint8_t *out);

/* ------------------------------------------------------------------------------------------ */
/* Editing data: the one way processors read, keep or drop, and change the items of a batch.  */

/* Walk. om_batch_walk() visits every item of one level (resource entries, scope entries,
 * spans, span events, metrics, data points or log records) in request order and calls back
 * with the item and where it is: its resource, scope, span or metric, and handles on the
 * attribute lists of all three. The callback answers OM_KEEP or OM_DROP.
 *
 * Any holder may walk any batch, shared ones included: the walk decodes it (a cache all
 * holders see) and changes nothing while it calls back. If nothing was dropped, the batch is
 * left exactly as it was, wire bytes included, so it is still forwarded unchanged. If
 * something was, the drops are applied afterwards: in place when the caller holds the batch
 * alone, else on a copy (copy-on-write: new resource / scope / span / metric containers in a
 * new arena, pointing at the unchanged nodes, which both then share), so the other holders
 * see no change. Scope entries, metrics and resource entries that the drops emptied are
 * removed (a span whose events were all dropped stays; containers that were empty before are
 * not the walk's to remove). The core then updates the counts (b->items, om_batch_counts):
 * no caller recounts.
 *
 * Edit. To change nodes (attributes, names, values), call om_batch_edit() first: it makes the
 * batch the caller's alone (a copy when others hold it or share its nodes), decoded, without
 * its wire bytes (they would no longer match), and with a capped arena for new nodes. Then
 * change attributes with om_attrs_* (it->attrs in a walk, or OM_ATTRS(b, node) for any node,
 * span links included) and write other fields directly: strings and bytes set that way must
 * live in the batch's arena (om_arena_strndup(b->arenas[0], ...)) or in static storage. Never
 * add or remove items by hand: drop them with a walk, so that the counts stay right.
 *
 * A component that drops or edits declares OM_CAP_MUTATES_DATA, so that a fan-out hands it
 * the batch after the read-only consumers, when it is more likely to hold it alone.
 *
 * Example: a processor that drops health checks and tags the other spans (compiled and run
 * as test_the_example_of_om_h in test/unit/edit_test.c).
 *
 *     static int drop_health(om_item_t *it, void *arg)
 *     {
 *         const om_anyvalue_t *v = om_attrs_get(&it->attrs, "http.route");
 *         bool health = v != NULL && v->value_case == OM_ANYVALUE_STRING &&
 *                       strcmp(v->string_value, "/health") == 0;
 *         return health ? OM_DROP : OM_KEEP;
 *     }
 *
 *     static int tag(om_item_t *it, void *arg)
 *     {
 *         const my_proc_t *p = arg;
 *         int rc = om_attrs_set_str(&it->attrs, OM_ATTR_UPSERT, "env", p->env);
 *         return rc < 0 ? rc : OM_KEEP;
 *     }
 *
 *     static int my_consume(void *self, om_batch_t *b)
 *     {
 *         my_proc_t *p = self;
 *         int rc = om_batch_walk(&b, OM_LEVEL_SPAN, drop_health, p, NULL);
 *         if (rc >= 0 && b->items > 0) {
 *             rc = om_batch_edit(&b, NULL);
 *         }
 *         if (rc >= 0 && b->items > 0) {
 *             rc = om_batch_walk(&b, OM_LEVEL_SPAN, tag, p, NULL);
 *         }
 *         if (rc < 0) {
 *             om_batch_release(b);
 *             return rc;
 *         }
 *         return om_consumer_consume(&p->next, b); // b->items is right
 *     }
 *
 * Threads: a batch is used by one thread at a time (the loop thread, or a worker it was
 * handed to). Nothing here blocks. */

/* The value kinds of an AnyValue, under short names. */
#define OM_ANYVALUE_NONE OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE__NOT_SET
#define OM_ANYVALUE_STRING OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE
#define OM_ANYVALUE_BOOL OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE
#define OM_ANYVALUE_INT OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE
#define OM_ANYVALUE_DOUBLE OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE
#define OM_ANYVALUE_ARRAY OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE
#define OM_ANYVALUE_KVLIST OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE
#define OM_ANYVALUE_BYTES OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE

/* What a walk visits. Resources and scopes exist in every signal; the others in one. */
typedef enum {
    OM_LEVEL_RESOURCE,   /* resource entries (ResourceSpans, ResourceMetrics, ResourceLogs) */
    OM_LEVEL_SCOPE,      /* scope entries (ScopeSpans, ScopeMetrics, ScopeLogs) */
    OM_LEVEL_SPAN,       /* traces */
    OM_LEVEL_SPAN_EVENT, /* traces */
    OM_LEVEL_METRIC,     /* metrics */
    OM_LEVEL_DATAPOINT,  /* metrics: points of every metric type */
    OM_LEVEL_LOG,        /* logs */
} om_level_t;

/* One attribute list (a KeyValue array of some node) of a batch, to read and change. Made by
 * a walk (om_item_t) or by OM_ATTRS(b, node); a small value, passed by pointer. */
typedef struct om_attrs {
    om_batch_t *batch;
    om_keyvalue_t ***list; /* &owner->attributes; NULL while the owner is absent (see below) */
    size_t *n;             /* &owner->n_attributes */
    /* A resource or scope entry without its Resource / InstrumentationScope: the slot where
     * the first attribute set makes one (NULL otherwise). */
    om_resource_t **absent_resource;
    om_scope_t **absent_scope;
} om_attrs_t;

/* An item the walk stands on, and where it is. The pointers are the batch's nodes: read them
 * freely; change them only after om_batch_edit(). Fields that do not apply to the level are
 * NULL. */
typedef struct om_item {
    om_batch_t *batch; /* the batch walked */
    om_level_t level;
    union { /* the resource entry, by signal */
        void *resource_entry;
        om_resource_spans_t *resource_spans;
        om_resource_metrics_t *resource_metrics;
        om_resource_logs_t *resource_logs;
    };
    om_resource_t *resource; /* NULL when the entry has none */
    union {                  /* the scope entry (not at OM_LEVEL_RESOURCE) */
        void *scope_entry;
        om_scope_spans_t *scope_spans;
        om_scope_metrics_t *scope_metrics;
        om_scope_logs_t *scope_logs;
    };
    om_scope_t *scope;      /* NULL when the entry has none */
    om_span_t *span;        /* spans, and the span of a span event */
    om_span_event_t *event; /* span events */
    om_metric_t *metric;    /* metrics, and the metric of a data point */
    union {                 /* data points: which one is metric->data_case's */
        void *point;
        om_number_dp_t *number; /* gauge and sum */
        om_histogram_dp_t *histogram;
        om_exp_histogram_dp_t *exp_histogram;
        om_summary_dp_t *summary;
    };
    om_log_record_t *log; /* log records */
    /* The item's own attributes (a resource's or scope's at those levels, a metric's
     * metadata), and those of its resource and scope (the scope's are empty at
     * OM_LEVEL_RESOURCE). */
    om_attrs_t attrs, resource_attrs, scope_attrs;
} om_item_t;

#define OM_KEEP 0
#define OM_DROP 1
/* Called for each item: returns OM_KEEP, OM_DROP, or a negative OM_E* code that stops the
 * walk (nothing is dropped then; edits already made stay). Must not add or remove items. */
typedef int (*om_walk_fn)(om_item_t *it, void *arg);

/* Walk the items of `level` of *b in request order (see the section comment). *b stays the
 * caller's reference on every path; when items were dropped from a batch others hold, *b is
 * replaced by the caller's own changed copy (the old reference is released). Returns how
 * many items of the level were dropped (>= 0, at most INT_MAX), the callback's negative code,
 * OM_EINVAL (with err) when the batch's signal has no such level, or OM_ENOMEM / OM_ETOOBIG
 * when decoding or the copy runs out of memory (then nothing was dropped). Cost: one call per
 * item; applying drops is one more pass over the containers, reading a bit per item. */
int om_batch_walk(om_batch_t **b, om_level_t level, om_walk_fn fn, void *arg, om_err_t *err);

/* The least room for edits the arena of an edited batch has (see om_batch_edit). */
#define OM_BATCH_EDIT_ROOM ((size_t)64 << 10)

/* Make *b yours to change (copy-on-write): when others hold it (refs > 1) or it shares nodes
 * with other batches (borrowed), *b is replaced by a deep copy (om_batch_clone) and the old
 * reference released; then it is decoded and its wire bytes dropped. New nodes go to an
 * arena with a cap: a copy's arena holds the copy plus as much again, at least
 * OM_BATCH_EDIT_ROOM; a batch edited in place keeps its arena's cap, or, when that arena has
 * none, gets a new one of what the batch holds, at least OM_BATCH_EDIT_ROOM. An edit past the
 * cap fails with OM_ETOOBIG and leaves the batch whole. Cheap on a batch already being
 * edited. Returns 0, OM_ENOMEM or OM_ETOOBIG (err says what); on failure *b is unchanged and
 * still the caller's. */
int om_batch_edit(om_batch_t **b, om_err_t *err);

/* Attribute lists. Reading works on any batch. Changing needs a batch being edited
 * (om_batch_edit; exclusively owned, decoded, without wire bytes), else OM_EPERM. A change
 * returns 1 when the list changed, 0 when the mode left it alone (insert of a key present,
 * update or delete of a key absent), OM_ETOOBIG / OM_ENOMEM (the list is then unchanged), or
 * OM_EINVAL for a handle of no list (an item's scope_attrs at OM_LEVEL_RESOURCE). New nodes
 * and copies of keys and values go to the batch's arena; no malloc. Keys are compared
 * bytewise; of duplicate keys (invalid OTLP) the first is read and updated, and delete
 * removes all. Cost: O(list length) per call; inserts into one list grow it geometrically. */
typedef enum {
    OM_ATTR_INSERT = 1, /* only when the key is absent */
    OM_ATTR_UPDATE = 2, /* only when the key is present */
    OM_ATTR_UPSERT = 3, /* either */
} om_attr_mode_t;

/* The attribute list of any node that has one (`attributes` and `n_attributes` fields:
 * resource, scope, span, span event, span link, data points, log record) or of a metric's
 * metadata with om_attrs_of(b, &m->metadata, &m->n_metadata). */
om_attrs_t om_attrs_of(om_batch_t *b, om_keyvalue_t ***list, size_t *n);
#define OM_ATTRS(b, node) om_attrs_of((b), &(node)->attributes, &(node)->n_attributes)

size_t om_attrs_count(const om_attrs_t *a);
/* The i-th KeyValue (i < om_attrs_count). */
om_keyvalue_t *om_attrs_at(const om_attrs_t *a, size_t i);
/* The value of key, or NULL when absent. */
const om_anyvalue_t *om_attrs_get(const om_attrs_t *a, const char *key);
int om_attrs_set_str(om_attrs_t *a, om_attr_mode_t mode, const char *key, const char *s);
int om_attrs_set_strn(om_attrs_t *a, om_attr_mode_t mode, const char *key, const char *s,
                      size_t len);
int om_attrs_set_int(om_attrs_t *a, om_attr_mode_t mode, const char *key, int64_t v);
int om_attrs_set_double(om_attrs_t *a, om_attr_mode_t mode, const char *key, double v);
int om_attrs_set_bool(om_attrs_t *a, om_attr_mode_t mode, const char *key, bool v);
int om_attrs_set_bytes(om_attrs_t *a, om_attr_mode_t mode, const char *key, const void *p,
                       size_t len);
/* Sets a deep copy of v (which may live anywhere: this batch, another, the stack). Also
 * returns OM_EINVAL for a value nested deeper than 64 arrays / maps. */
int om_attrs_set_value(om_attrs_t *a, om_attr_mode_t mode, const char *key, const om_anyvalue_t *v);
int om_attrs_delete(om_attrs_t *a, const char *key);

/* ------------------------------------------------------------------------------------------ */
/* Editing on the wire: a processor that can make its change on the protobuf bytes (attribute */
/* edits of the attributes and resource processors) rewrites them instead of decoding and     */
/* encoding the request, which costs several times more than a pass over the bytes.           */

/* Whether b can be edited on the wire: only its wire bytes (msg NULL, raw_valid) and the
 * caller's alone (refs 1, not borrowed). Any other batch goes through om_batch_edit. */
bool om_batch_wire_editable(const om_batch_t *b);
/* How om_batch_set_wire takes the new bytes. */
typedef enum {
    /* Checked and counted as om_batch_decode_proto checks an arriving request. */
    OM_WIRE_CHECKED,
    /* Taken as they are: they are b's own (checked) bytes rewritten by the caller, which
     * copied every field it did not change as it was, recomputed every enclosing length, made
     * its new fields from values that were checked, and added or removed no resource entry,
     * metric or item (attribute edits). Checking them again would cost as much as the
     * receiver's check did (an eighth of the collector's CPU in the attributes benchmark); the
     * callers' differential tests and fuzz targets hold them to protobuf-c instead. The bound
     * of what decoding takes grows by 64 bytes per byte the request grew (a KeyValue and an
     * AnyValue per few bytes of wire). It is an estimate for a rewrite that both removes and
     * adds: the arena's hard cap still holds when the batch is decoded (OM_ETOOBIG then).
     * Falls back to checking when that bound is unknown (a batch of several requests or
     * arenas). */
    OM_WIRE_REWRITTEN,
} om_wire_how_t;

/* Replace the request of a wire-editable batch by data (len bytes, which the caller wrote in
 * om_arena_alloc(b->arenas[0], len)): each of b->raw's segments encodes a whole request, and
 * data their edited concatenation. data is taken as `how` says, and must still fit the
 * arena's cap once decoded; then it is b's only segment, and b->items and om_batch_counts
 * follow it. Returns 0; OM_EPERM when b is not wire-editable; OM_EINVAL (data is not a
 * well-formed request of b's signal, or one only protobuf-c can judge) or OM_ETOOBIG (it would
 * not fit the cap decoded): then b is unchanged and still the caller's, so the caller can take
 * the decoding path instead. */
int om_batch_set_wire(om_batch_t *b, const uint8_t *data, size_t len, om_wire_how_t how,
                      om_err_t *err);

/* ------------------------------------------------------------------------------------------ */
/* String buffer: bounded by construction. Appends after a failure (ENOMEM or max reached) are */
/* ignored and `failed` stays set, so a writer checks once at the end.                        */

typedef struct om_strbuf {
    char *data; /* owned; NUL-terminated when non-NULL */
    size_t len, cap;
    size_t max; /* 0: unbounded */
    bool failed;
} om_strbuf_t;

void om_strbuf_init(om_strbuf_t *sb, size_t max);
void om_strbuf_free(om_strbuf_t *sb);
void om_strbuf_reset(om_strbuf_t *sb); /* len = 0, failed = false, memory kept */
bool om_strbuf_reserve(om_strbuf_t *sb, size_t extra);
void om_strbuf_append(om_strbuf_t *sb, const void *data, size_t n);
void om_strbuf_puts(om_strbuf_t *sb, const char *s);
void om_strbuf_putc(om_strbuf_t *sb, char c);
void om_strbuf_printf(om_strbuf_t *sb, const char *fmt, ...) OM_PRINTF(2, 3);
void om_strbuf_vprintf(om_strbuf_t *sb, const char *fmt, va_list ap) OM_PRINTF(2, 0);
/* Take the data out; the buffer is left empty. The caller frees with om_free. A buffer nothing
 * was written to gives an allocated "", so NULL means only out of memory. */
char *om_strbuf_steal(om_strbuf_t *sb, size_t *len);
/* The text as a C string: "" while nothing has been written (data is NULL until then). */
static inline const char *om_strbuf_str(const om_strbuf_t *sb)
{
    return sb->data != NULL ? sb->data : "";
}

/* ------------------------------------------------------------------------------------------ */
/* Text (text.c): UTF-8 validation as Go decodes runes (RFC 3629: no overlong forms, no       */
/* surrogates, nothing above U+10FFFF) and escaping for HTML. Any thread.                    */

/* The length (1 to 4) of the valid UTF-8 sequence at s, of which n >= 1 bytes may be read, or
 * 0 when it is not one. Reads in order and stops at the first bad byte, so for a
 * NUL-terminated string n = 4 is safe. */
size_t om_utf8_seq(const void *s, size_t n);
bool om_utf8_valid(const void *s, size_t n);
/* s[0..len) appended as HTML text, safe in an element and in a quoted attribute: & < > " '
 * escaped, each byte that is not UTF-8 as U+FFFD, control characters but \n and \t as a
 * space. */
void om_strbuf_html(om_strbuf_t *out, const char *s, size_t len);

/* ------------------------------------------------------------------------------------------ */
/* Values: comparing and printing AnyValues as otelcol's pcommon.Value does, and freeing those */
/* a config holds (OM_F_ANYVALUE). Any thread, for values no other thread changes.           */

/* pcommon's Value.Equal: the same kind and the same value (doubles with ==, so NaN is equal
 * to nothing; maps regardless of key order, as maps; an unset value equals an unset one).
 * NULL reads as an unset value. Nesting deeper than 64 levels compares unequal. */
bool om_anyvalue_equal(const om_anyvalue_t *a, const om_anyvalue_t *b);
/* pcommon's Value.AsString, appended to out: a string as it is; bools "true"/"false"; ints in
 * decimal; doubles in their shortest round-trip form as Go writes JSON numbers ("1.5",
 * "1e-07" is "1e-7", "1e+21"; NaN and infinities as Go's "json: unsupported value: NaN");
 * bytes in standard base64; maps and arrays as JSON (keys sorted, as encoding/json writes a
 * map; ints and doubles as numbers, bytes as base64 strings, unset values as null; <, > and
 * & escaped as \u003c... as Go does); an unset value (or NULL) "". Nesting deeper than 64
 * levels is written as null. out's failure flag tells whether memory ran out. */
void om_anyvalue_to_string(const om_anyvalue_t *v, om_strbuf_t *out);
/* Free a value made by the field table (OM_F_ANYVALUE) and everything in it. NULL: nothing. */
void om_anyvalue_free(om_anyvalue_t *v);

/* ------------------------------------------------------------------------------------------ */
/* OTLP JSON (the protobuf JSON mapping with OTLP's exceptions: hex ids, integer enums).       */

/* Append the batch's request as one line of OTLP JSON, without a newline. The batch must be
 * decoded (om_batch_decode); any thread, as long as no other thread uses the batch. */
int om_otlp_json_encode(const om_batch_t *b, om_strbuf_t *out);
/* Append an Export*ServiceResponse as OTLP JSON: {} for full success, or partial_success. */
void om_otlp_json_encode_response(om_signal_t sig, int64_t rejected, const char *error_message,
                                  om_strbuf_t *out);
/* Append a google.rpc.Status as JSON. */
void om_otlp_json_encode_status(int grpc_code, const char *message, om_strbuf_t *out);

/* ------------------------------------------------------------------------------------------ */
/* Logging to stderr. Arguments are evaluated only when the level is enabled.                  */

typedef enum {
    OM_LOG_DEBUG = 0,
    OM_LOG_INFO = 1,
    OM_LOG_WARN = 2,
    OM_LOG_ERROR = 3,
    OM_LOG_NONE = 4,
} om_log_level_t;

extern om_log_level_t om__log_level;
void om_log_set_level(om_log_level_t lvl);
/* who: a component's log name such as "receiver/otlp/2", or NULL for the core. */
void om_log_write(om_log_level_t lvl, const char *who, const char *fmt, ...) OM_PRINTF(3, 4);

#define OM_LOG(lvl, ...)                                                                           \
    do {                                                                                           \
        if ((lvl) >= om__log_level) {                                                              \
            om_log_write((lvl), NULL, __VA_ARGS__);                                                \
        }                                                                                          \
    } while (0)
#define OM_CLOG(who, lvl, ...)                                                                     \
    do {                                                                                           \
        if ((lvl) >= om__log_level) {                                                              \
            om_log_write((lvl), (who), __VA_ARGS__);                                               \
        }                                                                                          \
    } while (0)

/* ------------------------------------------------------------------------------------------ */
/* Config nodes: YAML parsed once into a tree whose nodes keep file, line and column (1-based). */

typedef enum {
    OM_NODE_NULL, /* `key:` with no value, or `~`/`null` */
    OM_NODE_SCALAR,
    OM_NODE_MAP,
    OM_NODE_SEQ,
} om_node_kind_t;

typedef struct om_node om_node_t;
struct om_node {
    om_node_kind_t kind;
    const char *file; /* shared, owned by the config */
    unsigned line, col;
    char *str;          /* SCALAR: the value after ${env} expansion; NUL-terminated */
    bool quoted;        /* SCALAR: written in quotes, so it is a string whatever it looks like */
    size_t n;           /* MAP: pairs; SEQ: items */
    om_node_t **keys;   /* MAP: scalar key nodes */
    om_node_t **values; /* MAP: values; SEQ: items */
};

/* The value under key in a MAP node, or NULL (also when map is not a MAP). */
const om_node_t *om_node_get(const om_node_t *map, const char *key);

/* A list of problems, each one line "file:line:col: path: message". */
typedef struct om_diags {
    char **msgs;
    size_t n, cap;
} om_diags_t;

/* at may be NULL (then no position); path may be NULL or "". */
void om_diag_add(om_diags_t *d, const om_node_t *at, const char *path, const char *fmt, ...)
    OM_PRINTF(4, 5);
void om_diags_free(om_diags_t *d);

/* ------------------------------------------------------------------------------------------ */
/* Field tables: how a component's config struct is filled from its node. The core applies     */
/* types, bounds, enums, defaults and rejects unknown keys; a component's config_validate()    */
/* only checks rules that involve several fields.                                             */

typedef enum {
    OM_F_BOOL,     /* bool */
    OM_F_INT,      /* int64_t, within [min, max] */
    OM_F_DOUBLE,   /* double, within [min, max] */
    OM_F_DURATION, /* int64_t nanoseconds: "200ms", "5s", "1m30s", or a bare integer of ns */
    OM_F_SIZE,     /* uint64_t bytes: "4MiB", "512KiB", "1000" */
    OM_F_STRING,   /* char * (owned by the config struct; NULL when unset and no default) */
    OM_F_ENUM,     /* int: index into choices */
    OM_F_ENDPOINT, /* char *: "host:port", "[v6]:port" or ":port"; validated */
    OM_F_SECTION,  /* a nested struct at offset, filled from its own field table */
    OM_F_STRMAP,   /* om_strmap_t: a map of string to string (e.g. headers) */
    OM_F_STRLIST,  /* om_strlist_t: a sequence of strings */
    OM_F_IGNORED,  /* an otelcol key we accept but do not implement: a warning is logged */
    /* An otelcol key for something otelmon does not implement and must not silently ignore
     * (authentication, TLS checks): any value but an empty or off one ("", false, 0, 0s) is a
     * config error whose message is `help`. */
    OM_F_REFUSED,
    /* otelcol's `auth: {authenticator: ID}` (configauth): an om_auth_cfg_t at offset, filled
     * from the nested table in `fields` (om_auth_server_fields, om_auth_http_server_fields or
     * om_auth_client_fields). The ID is checked when the graph is built: it must name an
     * enabled extension that authenticates servers (resp. clients). See "Authenticators". */
    OM_F_AUTH_SERVER,
    OM_F_AUTH_CLIENT,
    /* om_node_t *: the value as written, for shapes a table cannot say (a list of maps, a
     * value of any YAML type): a deep copy owned by the config struct (NULL when absent or
     * null), which keeps file:line:column. The component checks it in config_validate and
     * names what is wrong with om_err_at, whose path may index sequences ("list::2::key"). */
    OM_F_NODE,
    /* om_seclist_t: a sequence of maps (otelcol's lists of structs: `actions`, `attributes`),
     * each filled like a SECTION into an element of elem_size bytes from the nested table
     * `fields`: defaults, types, bounds, unknown keys and required keys, per element (and a
     * default for the whole list in YAML flow style). Messages name an element "path[i]";
     * om_err_at paths may too ("actions[2]::pattern"). Used by attributes' actions and
     * spanmetrics' dimensions. */
    OM_F_SECLIST,
    /* om_anyvalue_t * (owned, om_anyvalue_free; NULL when absent or null): any YAML value,
     * typed as otelcol reads YAML (yaml.v3, then pcommon's FromRaw): quoted scalars are
     * strings; true/false (also True, TRUE...) bools; integers (decimal, 0x, 0o, 0b, a leading
     * 0 for octal, `_` separators) ints (beyond int64 up to uint64: wrapped, as FromRaw does);
     * YAML floats and .inf/.nan doubles; other plain scalars strings (timestamps too); maps and
     * sequences kvlists and arrays. */
    OM_F_ANYVALUE,
} om_field_type_t;

/* The reason a component gives for `auth` when it does not apply its authenticator (see
 * "Authenticators" for the field type that does): asking for authentication and getting an
 * open port would be worse than an error. */
#define OM_AUTH_REFUSED "authenticators (auth::authenticator) are not implemented by this component"
/* The reason given for `middlewares` (otelcol's confighttp and configgrpc, servers and
 * clients): extensions that wrap each request, which may authenticate or filter it. */
#define OM_MIDDLEWARES_REFUSED "middlewares (extensions that wrap each request) are not implemented"

#define OM_FF_REQUIRED (1u << 0)
#define OM_FF_PRESENCE (1u << 1) /* SECTION: set the bool at present_offset when the key exists */

typedef struct om_field om_field_t;
struct om_field {
    const char *key; /* NULL ends a table */
    om_field_type_t type;
    size_t offset;
    const char *def;            /* default, written as it would be in YAML; NULL: zero */
    double min, max;            /* INT/DOUBLE/DURATION/SIZE bounds when min < max */
    const char *const *choices; /* ENUM: NULL-terminated */
    const om_field_t *fields;   /* SECTION: the nested table */
    size_t present_offset;      /* SECTION with OM_FF_PRESENCE */
    unsigned flags;
    const char *help; /* one line, for docs and `otelmon components` */
    size_t elem_size; /* SECLIST: the size of one element struct */
};

typedef struct om_strmap {
    size_t n;
    char **keys, **values; /* owned */
} om_strmap_t;

typedef struct om_strlist {
    size_t n;
    char **items; /* owned */
} om_strlist_t;

typedef struct om_seclist {
    size_t n;
    void *items; /* n elements of the field's elem_size bytes; owned */
} om_seclist_t;
/* The i-th element of a SECLIST as a pointer to its struct type. */
#define OM_SECLIST_AT(l, type, i) (&((type *)(l)->items)[(i)])

/* Set defaults, then apply the values in node (a MAP, NULL or a NULL node: only defaults).
 * path names node in messages (e.g. "receivers::otlp"). Returns the number of problems added. */
int om_fields_apply(const om_field_t *fields, void *cfg, const om_node_t *node, const char *path,
                    om_diags_t *d);
/* Free what om_fields_apply allocated in cfg (strings, maps, lists, nested sections). */
void om_fields_free(const om_field_t *fields, void *cfg);

/* The one parser for each unit. They return OM_EINVAL with a message in err on bad input and
 * check for overflow. */
int om_parse_duration(const char *s, int64_t *ns, om_err_t *err);
int om_parse_size(const char *s, uint64_t *bytes, om_err_t *err);
int om_parse_bool(const char *s, bool *out);
/* host may be "" (all interfaces); port 0..65535. *host is allocated with om_malloc. */
int om_parse_endpoint(const char *s, char **host, int *port, om_err_t *err);

#define OM_NS_PER_MS INT64_C(1000000)
#define OM_NS_PER_S INT64_C(1000000000)

/* ------------------------------------------------------------------------------------------ */
/* JSON reader (json.c): strict RFC 8259 into a read-only tree in an arena, for OTLP/JSON and  */
/* any component that reads JSON. One copy of the input; strings unescaped in place there and  */
/* NUL-terminated; nodes bump-allocated, freed with the arena. jansson's choices where the RFC */
/* leaves them open: strings must be valid UTF-8, \u escapes pair surrogates, \u0000 is       */
/* refused; a number without fraction or exponent that fits int64 is OM_JSON_INTEGER, any     */
/* other OM_JSON_REAL (an integer beyond int64 too, where jansson refuses it), one overflowing */
/* a double is refused; objects keep every member in document order, a key given twice too;   */
/* nesting deeper than OM_JSON_MAX_DEPTH is refused; any value may be the top level, followed  */
/* only by whitespace.                                                                        */

#define OM_JSON_MAX_DEPTH 2048

typedef enum {
    OM_JSON_NULL,
    OM_JSON_FALSE,
    OM_JSON_TRUE,
    OM_JSON_INTEGER,
    OM_JSON_REAL,
    OM_JSON_STRING,
    OM_JSON_ARRAY,
    OM_JSON_OBJECT,
} om_json_type_t;

typedef struct om_json om_json_t;
typedef struct om_json_member om_json_member_t;

/* All pointers point into the arena the tree was parsed into. */
struct om_json {
    uint32_t type; /* om_json_type_t */
    uint32_t n;    /* STRING: bytes (without the NUL); ARRAY: elements; OBJECT: members */
    union {
        int64_t i;                       /* INTEGER */
        double r;                        /* REAL */
        const char *s;                   /* STRING: n bytes of UTF-8, then a NUL */
        const om_json_t *items;          /* ARRAY */
        const om_json_member_t *members; /* OBJECT, in document order */
    } u;
};

struct om_json_member {
    const char *key; /* NUL-terminated, key_len bytes */
    uint32_t key_len;
    om_json_t value;
};

/* Parses len bytes at data (not modified; need not be NUL-terminated) into a tree allocated in
 * arena a; *root points into it. Returns 0, OM_EINVAL with "invalid JSON at line L column C:
 * problem" in err, or OM_ENOMEM (OM_ETOOBIG when a's cap is reached). Any thread. */
int om_json_parse(om_arena_t *a, const char *data, size_t len, const om_json_t **root,
                  om_err_t *err);

/* The value of key in object obj: of members with that key the last, as most JSON readers
 * keep. NULL when obj is NULL or no object, or has no such key. */
const om_json_t *om_json_get(const om_json_t *obj, const char *key);

/* ------------------------------------------------------------------------------------------ */
/* Components                                                                                 */

#define OM_FACTORY_ABI 1u

typedef enum {
    OM_RECEIVER,
    OM_PROCESSOR,
    OM_EXPORTER,
    OM_EXTENSION,
    OM_CONNECTOR,
} om_kind_t;

/* The component drops items or changes nodes of the batches it is handed (om_batch_walk
 * dropping, om_batch_edit). The core reads it to order fan-outs, as otelcol's fanout does: a
 * fan-out (a receiver feeding several pipelines, a pipeline feeding several exporters) hands
 * the batch to the read-only consumers first and to the mutating ones last (a pipeline
 * mutates if any of its processors or exporters declares this cap), each in config order
 * otherwise, and the last consumer gets the fan-out's own reference. A read-only consumer
 * that is done with the batch when it returns (most are) has released its reference by then,
 * so the last mutating consumer often holds the batch alone and edits it without a copy;
 * when it does not, om_batch_edit and om_batch_walk copy on write. Correctness never depends
 * on the order: copy-on-write does; the order only saves copies. */
#define OM_CAP_MUTATES_DATA (1u << 0)

/* Hand a batch to a component. It always takes ownership of the reference, errors included.
 * Returns 0 (accepted), a retryable code (OM_EREFUSED, OM_EAGAIN: the client should retry) or
 * a permanent one (OM_EINVAL, OM_EPERM...). Called on the loop thread (a processor declaring
 * OM_CAP_OFF_LOOP: on the thread that decoded the request, see below); never blocks. */
typedef int (*om_consume_fn)(void *self, om_batch_t *batch);
typedef void (*om_done_fn)(void *arg);

/* The next consumer of a signal. consume NULL: nothing is wired for that signal. */
typedef struct om_consumer {
    void *self;
    om_consume_fn consume;
} om_consumer_t;

/* Passes the batch on; a consumer with no function releases it and returns OM_ENOTSUP. */
int om_consumer_consume(const om_consumer_t *c, om_batch_t *batch);

/* ------------------------------------------------------------------------------------------ */
/* Processors off the loop thread (offloop.c). The loop thread is the collector's one serial  */
/* resource; a processor that needs nothing of it (filter, attributes, resource) can run on   */
/* the thread that already decoded the request (gRPC's completion-queue thread, an HTTP      */
/* worker), so that the loop only hands the result on, as otelcol runs processors on the     */
/* receiver's goroutine.                                                                      */
/*                                                                                            */
/* A processor factory declares OM_CAP_OFF_LOOP when its consume:                            */
/*   - touches no uv handle and does not read the loop's time (uv_now): uv_hrtime instead;   */
/*   - passes at most one batch on, within the call (it buffers nothing, starts no timer);    */
/*   - updates its counters with om_metric_counter_add or other atomics (its shutdown may     */
/*     read them on the loop).                                                                */
/* It need not be reentrant: the core never runs one instance on two threads at once (a      */
/* mutex per pipeline run, uncontended but for a loop-side delivery racing an off-loop one). */
/*                                                                                            */
/* The core groups a pipeline's leading processors that declare it into one run (a pipeline  */
/* starting with memory_limiter or batch has none). A receiver that decodes off the loop     */
/* calls om_consumer_prepare on that thread with the consumer it was given: when that        */
/* consumer is one pipeline's entry with a run (the receiver feeds exactly that pipeline for */
/* the signal), the run executes there and its result waits in the om_prepared_t; otherwise  */
/* nothing runs. On the loop, om_consumer_finish hands what is left to the rest of the chain */
/* and returns the pipeline's answer exactly as om_consumer_consume would have: a refusal    */
/* from batch, an exporter or intake, an error of a processor of the run. A batch handed to  */
/* om_consumer_consume instead (on the loop) goes through the same run, on the loop.       */
#define OM_CAP_OFF_LOOP (1u << 1)

/* A request's batch after the off-loop part of its pipeline. Owned by the receiver from
 * om_consumer_prepare to om_consumer_finish or om_prepared_release. */
typedef struct om_prepared {
    om_batch_t *batch;  /* what the loop still hands on; NULL when nothing is left */
    const void *stage;  /* core-private: the run that executed, NULL when none did */
    size_t items;       /* the request's items as received (receiver counters) */
    om_signal_t signal; /* the request's signal */
    int rc;             /* the run's answer when it ran */
} om_prepared_t;

/* Any thread, once per request, right after decoding: takes batch. Runs next's off-loop
 * processors when next is a pipeline entry that has them; else only keeps batch in p. */
void om_consumer_prepare(const om_consumer_t *next, om_batch_t *batch, om_prepared_t *p);
/* Loop thread: hands p's batch on (to the rest of the pipeline after its run, or to next when
 * nothing ran) and returns the answer om_consumer_consume would have given. p is empty after. */
int om_consumer_finish(const om_consumer_t *next, om_prepared_t *p);
/* Any thread: releases what p holds (a request answered otherwise: intake refusing). */
void om_prepared_release(om_prepared_t *p);

/* What the core lends to components: the loop, the metrics registry, the shared worker pool
 * and the intake's backpressure (see their sections below). Components read these fields and
 * never change them. A host made by hand with only a loop (the rest NULL) is still valid: the
 * metric update functions do nothing with a NULL series, intake is always open, and code that
 * needs workers or gRPC's completion queue (host->grpc) reports OM_ENOTSUP. */
typedef struct om_metrics om_metrics_t;
typedef struct om_workers om_workers_t;
typedef struct om_intake om_intake_t;
typedef struct om_extension_ref om_extension_ref_t; /* see "Authenticators" */
typedef struct om_host {
    uv_loop_t *loop;
    om_metrics_t *metrics; /* owned by the host; outlives every component */
    om_workers_t *workers; /* the shared pool; owned by the host; outlives every component */
    om_intake_t *intake;   /* receivers' backpressure; owned by the host */
    struct om_grpc *grpc;  /* the process's gRPC completion queue; owned by the host */
    /* Core-private: the enabled extensions om_host_extension() finds (om_malloc'd array; the
     * graph registers them as it creates them, see "Authenticators"). */
    om_extension_ref_t *extensions;
    size_t n_extensions;
    /* The running collector's graph, for introspection (om_host_pipelines); set when the
     * graph is built, NULL in a host made by hand. */
    const struct om_graph *graph;
    /* Core-private: om_host_close's state. */
    om_done_fn close_done;
    void *close_arg;
    /* Core-private: om_host_loop_busy's window (uv_hrtime and the loop thread's CPU time at
     * its start) and its last figure. */
    uint64_t busy_t0, busy_cpu0;
    double busy;
    bool busy_fixed; /* om_host_set_loop_busy */
} om_host_t;

/* Loop thread: the loop thread's CPU time over the last completed window of about 100 ms of
 * wall time, as a share (0 to 1; 0 until a window has passed). Its own CPU, not the time it
 * did not wait: a worker sharing the loop's core makes the loop wait without being busy. For
 * components choosing whether to move work off the loop: handing work to a worker costs more
 * CPU in all than doing it in place, and pays only when the loop is the bottleneck. */
double om_host_loop_busy(om_host_t *h);
/* Tests: om_host_loop_busy answers share from now on (a negative share: measure again). */
void om_host_set_loop_busy(om_host_t *h, double share);

/* Loop thread. Make the core services on loop: an empty registry, a worker pool sized from
 * the CPU count or the cgroup's CPU quota (om_cpu_count) and the intake with its default
 * limit. Starts no thread and leaves no handle that keeps the loop alive: an idle host costs a
 * few hundred bytes. Returns 0, or
 * OM_ENOMEM / OM_EIO with a message in err; on failure what was made is already being closed:
 * run the loop before uv_loop_close. */
int om_host_init(om_host_t *h, uv_loop_t *loop, om_err_t *err);
/* Loop thread, after every component that used the host has been destroyed and before
 * uv_loop_close. Closes the worker pool (queued jobs cancelled, running ones waited for
 * without blocking the loop, see om_workers_close) and the intake, frees the registry, then
 * calls done
 * from a later loop turn: the loop must run for that to happen. (A host that has no pool,
 * made by hand, has nothing to wait for: done runs at once.) */
void om_host_close(om_host_t *h, om_done_fn done, void *arg);

typedef struct om_create_args {
    const void *cfg;      /* validated config; outlives the instance */
    const char *id;       /* "otlp/2" */
    const char *log_name; /* "receiver/otlp/2"; outlives the instance */
    om_host_t *host;
    om_signal_t signals; /* the signals this instance is wired for (see connectors below) */
    /* Receivers and processors: the next consumer per signal (index om_signal_index()), with
     * fan-out already applied. Exporters get none. Connectors: see "Connectors" below. */
    om_consumer_t next[OM_SIG_COUNT];
} om_create_args_t;

typedef struct om_factory {
    uint32_t abi; /* OM_FACTORY_ABI */
    om_kind_t kind;
    const char *type;           /* as written in otelcol.yaml: "otlp", "batch" */
    const char *const *aliases; /* other spellings of the type (NULL-terminated) or NULL */
    const char *help;           /* one line for `otelmon components` */
    unsigned signals;           /* OM_SIG_* supported */
    unsigned caps;              /* OM_CAP_* */
    size_t config_size;
    const om_field_t *fields;
    /* Cross-field rules only; may be NULL. */
    int (*config_validate)(const void *cfg, om_err_t *err);
    /* Free what the component allocated beyond the field table; may be NULL. */
    void (*config_free)(void *cfg);
    /* Allocate and wire; no I/O, no uv handles. */
    int (*create)(const om_create_args_t *a, void **self, om_err_t *err);
    /* Open handles, bind, connect. */
    int (*start)(void *self, om_err_t *err);
    /* Stop intake, flush, close handles, then call done exactly once. Safe without start; a
     * second call does nothing (done is not called again). */
    void (*shutdown)(void *self, om_done_fn done, void *arg);
    /* Free; only after done has run, or right after create when start was never called. */
    void (*destroy)(void *self);
    om_consume_fn consume_traces, consume_metrics, consume_logs;
    /* Extensions only, may be NULL (otelcol's PipelineWatcher): every pipeline has started /
     * the collector is about to shut its pipelines down. */
    void (*pipelines_ready)(void *self);
    void (*pipelines_not_ready)(void *self);
    /* Connectors only (see "Connectors" below): for each signal the connector takes in, by
     * om_signal_index(), the OM_SIG_* bits of the signals it can emit from it. */
    unsigned connects[OM_SIG_COUNT];
    /* Extensions only, may be NULL: what the extension offers as an authenticator (see
     * "Authenticators"). */
    const struct om_auth_ops *auth;
} om_factory_t;

/* The factory table meson generates from the component list; NULL-terminated. */
extern const om_factory_t *const om_factories[];

const char *om_kind_name(om_kind_t k);   /* "receiver" ... */
const char *om_kind_plural(om_kind_t k); /* "receivers" ... as the top-level config keys */

/* ------------------------------------------------------------------------------------------ */
/* Connectors: components that are the exporter of one pipeline and the receiver of another,  */
/* as otelcol's.                                                                              */

/* A connector id is configured under `connectors:` and listed in one pipeline's `exporters`
 * and another's `receivers`; the two pipelines may carry different signals (traces ->
 * spanmetrics -> metrics).
 *
 * The factory (kind OM_CONNECTOR) declares what it can do in `connects`: connects[i] holds the
 * signals it can emit from signal om_signal_from_index(i); `signals` is the set of signals it
 * takes in (each i with connects[i] != 0), and it has the consume function of each.
 *   forward:     connects = {[0] = OM_SIG_TRACES, [1] = OM_SIG_METRICS, [2] = OM_SIG_LOGS}
 *   spanmetrics: connects = {[0] = OM_SIG_METRICS}
 *
 * The core makes one instance per pair of signals the config uses, as otelcol does: for a
 * connector listed as an exporter in pipelines of signal E and as a receiver in pipelines of
 * signal R, with R in connects[E], one instance whose create arguments have
 *   signals = E       what it consumes (from every pipeline of signal E that lists it);
 *   next[index(R)]    its one next consumer: a fan-out over the pipelines of signal R that
 *                     list it as a receiver (each one's first processor, or its exporters),
 *                     ordered by OM_CAP_MUTATES_DATA like any fan-out;
 *   the other next[]  unset.
 * A connector that passes batches on (E == R) counts as mutating, for the fan-out that feeds
 * it, when a pipeline it feeds mutates. Start order: the pipelines a connector feeds before
 * the connector, the connector before the pipelines that feed it. Shutdown runs the other
 * way, so that a connector's shutdown may still hand what it holds downstream: its next
 * consumers stop after it.
 *
 * Rules the core checks, in otelcol's words: a connector is used on both sides with a signal
 * pair it supports (`connector "x" used as exporter in [traces] pipeline but not used in any
 * supported receiver pipeline`), an id does not name both a connector and an exporter or
 * receiver (`ambiguous ID`), and the pipelines joined by connectors form no cycle (`cycle
 * detected: connector "x" (traces to traces) -> processor "batch" in pipeline "traces/2" ->
 * ...`). A connector configured but used by no pipeline is not created (otelcol accepts it;
 * otelmon logs a warning). */

/* ------------------------------------------------------------------------------------------ */
/* Intake backpressure. What the collector has accepted and not yet delivered lives in arenas */
/* (om_arena_live_bytes). When a backend falls behind, that backlog would grow until the      */
/* sending queues are full; instead, while the arenas hold more than the intake limit and    */
/* some exporter still has data to send, receivers stop taking requests: they stop reading   */
/* their sockets and accepting gRPC calls, so clients wait (TCP and HTTP/2 flow control)     */
/* rather than fail. Intake resumes once the arenas hold less than three quarters of the     */
/* limit, or no exporter has anything left to send (then waiting would free nothing).        */
/* A slow backend makes short pauses; a dead one would make clients wait until their own     */
/* deadlines. So a pause lasts at most the hold time: after that, receivers take requests    */
/* again and refuse them with a retryable error (HTTP 503, gRPC UNAVAILABLE), as otelcol's   */
/* memory_limiter does, until the backlog is under three quarters of the limit.              */
/*                                                                                            */
/* The intake is one object of the service, on the host (host->intake). Its state moves on  */
/* events, not on a poll: an export finishing (the exporter helper reports it), the hold     */
/* time running out (one timer, armed only during a hold), and whoever asks. Its limit is the */
/* lowest of those that memory_limiter instances (one per pipeline, as in otelcol) add, or   */
/* the default when none did. Loop thread only.                                              */

#define OM_INTAKE_LIMIT_DEFAULT ((size_t)16 << 20)
#define OM_INTAKE_HOLD_MS_DEFAULT 2000

typedef enum {
    OM_INTAKE_OPEN,   /* take requests */
    OM_INTAKE_HOLD,   /* take no new requests; leave them waiting */
    OM_INTAKE_REFUSE, /* held for the hold time already: take requests and refuse them */
} om_intake_state_t;

#define OM_INTAKE_REFUSED_MSG                                                                      \
    "data refused: the collector holds more undelivered data than its limit (backends are not "    \
    "keeping up); retry later"

/* A new intake on loop, with the default limit. NULL when out of memory. */
om_intake_t *om_intake_new(uv_loop_t *loop);
/* Close its timer, then free it and call done (once). Waiters still registered are dropped
 * without being called. */
void om_intake_close(om_intake_t *in, om_done_fn done, void *arg);

/* Where intake stands now (it moves with the backlog and the clock). NULL intake: open. */
om_intake_state_t om_intake_state(om_intake_t *in);
/* om_intake_state() == OM_INTAKE_HOLD: receivers should take no new requests. */
bool om_intake_paused(om_intake_t *in);
/* om_intake_state() == OM_INTAKE_REFUSE: receivers refuse what they take, with OM_EREFUSED
 * and OM_INTAKE_REFUSED_MSG. */
bool om_intake_refusing(om_intake_t *in);

/* A limit someone (a memory_limiter instance) puts on intake: bytes held (0: none) and the
 * longest hold before refusing. Owned by the caller, registered until removed; the lowest
 * registered limit applies, else the default. */
typedef struct om_intake_limit {
    size_t bytes;
    uint64_t hold_ms;
    const char *owner; /* for log lines: "processor/memory_limiter@traces" */
    /* What receivers answer while this limit refuses (NULL: OM_INTAKE_REFUSED_MSG);
     * memory_limiter gives otelcol's "data refused due to high memory usage". Static or
     * outliving the registration. */
    const char *refused_msg;
    struct om_intake_limit *next;
} om_intake_limit_t;

void om_intake_limit_add(om_intake_t *in, om_intake_limit_t *l);
void om_intake_limit_remove(om_intake_t *in, om_intake_limit_t *l);
/* The message receivers refuse with (OM_EREFUSED) while om_intake_refusing(): the refused_msg
 * of the limit in force, else OM_INTAKE_REFUSED_MSG. NULL intake: the latter. */
const char *om_intake_refused_msg(const om_intake_t *in);
/* The limit used while no om_intake_limit_t is registered (0 bytes: never pause). Resets the
 * state to open. */
void om_intake_set_default(om_intake_t *in, size_t bytes, uint64_t hold_ms);
/* Tests: the clock the hold time is measured with (default uv_hrtime), and "look again now"
 * after moving it. */
void om_intake_set_clock(om_intake_t *in, uint64_t (*now_ns)(void *arg), void *arg);
void om_intake_poke(om_intake_t *in);

/* The exporter helper: one request queued or being sent began / ended (its batch already
 * released). The end of one may end a pause. */
void om_intake_export_begin(om_intake_t *in);
void om_intake_export_end(om_intake_t *in);
/* Loop thread. How many times intake has paused (held or refused) since it was made. */
uint64_t om_intake_pauses(const om_intake_t *in);
/* Requests queued or being sent by all exporters of this intake's host. */
size_t om_intake_exports_pending(const om_intake_t *in);

/* A receiver's wait for intake to resume: resume(arg) is called once, from the loop (never
 * from inside the om_intake_* call that ended the pause), when intake leaves the hold state
 * (open again, or refusing: then the held requests are taken and refused). Waiting again
 * while already waiting does nothing. The struct is the caller's, linked into the intake
 * while waiting: cancel before freeing it. */
typedef struct om_intake_wait {
    void (*resume)(void *arg);
    void *arg;
    struct om_intake_wait *prev, *next;
    bool waiting;
} om_intake_wait_t;

void om_intake_wait_init(om_intake_wait_t *w, void (*resume)(void *arg), void *arg);
void om_intake_wait(om_intake_t *in, om_intake_wait_t *w);
void om_intake_wait_cancel(om_intake_t *in, om_intake_wait_t *w);

/* ------------------------------------------------------------------------------------------ */
/* Mailbox: how another thread (gRPC's completion-queue thread, a DB worker) hands work to the */
/* loop thread. A mutex-guarded list plus an eventfd; posting wakes the loop only when the    */
/* list goes from empty to non-empty, and the loop runs the whole list outside the lock.      */

typedef struct om_msg om_msg_t;
struct om_msg {
    om_msg_t *next;
    /* Runs on the loop thread; owns m from then on (usually frees it or re-posts it). */
    void (*run)(om_msg_t *m);
};

typedef struct om_mailbox om_mailbox_t;

/* Loop thread. Returns NULL when out of memory or when its eventfd cannot be made. */
om_mailbox_t *om_mailbox_new(uv_loop_t *loop);
/* Any thread; never blocks beyond the mutex. Posting after om_mailbox_close() is a bug: the
 * other thread must have stopped posting before the loop closes the mailbox. */
void om_mailbox_post(om_mailbox_t *mb, om_msg_t *m);
/* Any thread, as om_mailbox_post, for a message that may wait: it does not wake the loop by
 * itself until lazy_max lazy posts wait (om_mailbox_set_lazy); it runs, in order, with the
 * next drain (the next non-lazy post, or the lazy_max-th lazy one). For completions whose
 * handling can wait for the next event (releasing a finished call), so that a request costs
 * the loop one wake-up rather than two. Without om_mailbox_set_lazy it is om_mailbox_post. */
void om_mailbox_post_lazy(om_mailbox_t *mb, om_msg_t *m);
/* Any thread: the wake-ups this thread's posts owe wait until om_mailbox_flush_wakes. For a
 * poster that holds a lock the loop may need (gRPC's callback lock): a wake-up written under
 * it lets the woken loop preempt the poster on a shared core and then block on that lock. The
 * messages themselves are in their lists at once. Every defer must be followed by a flush on
 * the same thread before it sleeps (the mailbox cannot close meanwhile: its close waits). */
void om_mailbox_defer_wakes(void);
void om_mailbox_flush_wakes(void);
/* Loop thread. How many lazy posts may wait before one wakes the loop; 0 (the default): every
 * post wakes it, and what waits lazily now runs on a coming loop turn (set 0 before waiting
 * for lazily posted messages, e.g. at shutdown). */
void om_mailbox_set_lazy(om_mailbox_t *mb, unsigned max);
/* Loop thread: run what is still posted, close the handle, free the mailbox, then call done
 * (may be NULL; done runs from the handle's close callback, never from inside this call). */
void om_mailbox_close(om_mailbox_t *mb, om_done_fn done, void *arg);
/* Loop thread. Whether the mailbox alone keeps uv_run from returning (uv_ref / uv_unref of its
 * handle). A new mailbox does. An owner that posts only while it waits for something (the
 * worker pool while jobs are out) turns it off while idle, so that an idle collector has no
 * handle that keeps its loop alive. */
void om_mailbox_keep_loop(om_mailbox_t *mb, bool keep);

/* Hand-offs ThreadSanitizer cannot see. gRPC orders the start of an operation before its
 * completion, but libgrpc is not built with TSan, so a tag the loop hands to gRPC and a bridge
 * thread gets back from the completion queue (and then posts to a mailbox) looks unordered to
 * it: the loop's last use of the tag and the bridge thread's writes would be reported as
 * races. OM_TSAN_RELEASE(tag) right before the loop hands the tag to gRPC and
 * OM_TSAN_ACQUIRE(tag) where the completion queue returns it state what gRPC guarantees.
 * They compile to nothing outside a -fsanitize=thread build. */
#if defined(__SANITIZE_THREAD__)
#define OM__TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define OM__TSAN 1
#endif
#endif
#ifdef OM__TSAN
#include <sanitizer/tsan_interface.h>
#define OM_TSAN_RELEASE(p) __tsan_release((void *)(p))
#define OM_TSAN_ACQUIRE(p) __tsan_acquire((void *)(p))
#else
#define OM_TSAN_RELEASE(p) ((void)(p))
#define OM_TSAN_ACQUIRE(p) ((void)(p))
#endif

/* ------------------------------------------------------------------------------------------ */
/* Metrics registry: the collector's own metrics, in otelcol's names, for the internal        */
/* telemetry endpoint (:8888/metrics) and zpages.                                             */

/* A metric (name, type, unit, help) has one series per label set:
 * otelcol_exporter_sent_spans{exporter="otlp/2"}. Series are made once, at create or start
 * (loop thread; may allocate), and live as long as the registry: a component keeps the
 * pointer and updates through it on the hot path with a relaxed atomic, no lookup and no
 * lock, from any thread. Asking again for a series that exists (same name, same labels in any
 * order) returns the same one, so two instances with the same ID add up. Reading (visit,
 * read) is for the loop thread: it sees every update made before it on the loop thread, and
 * each value of a concurrent update either entirely or not at all.
 *
 * Names are otelcol's OpenTelemetry metric names (otelcol_exporter_sent_spans); the names a
 * scrape shows (otelcol_exporter_sent_spans_total) are the Prometheus encoder's business, as
 * in otelcol. Units are UCUM as otelcol writes them ("{spans}", "{batches}", "s", "By"). */

#define OM_METRIC_MAX_LABELS 16
#define OM_METRIC_MAX_BOUNDS 64

typedef enum {
    OM_METRIC_COUNTER,   /* monotonic sum: only grows */
    OM_METRIC_GAUGE,     /* a value that goes up and down, set by the component or observed */
    OM_METRIC_HISTOGRAM, /* counts per explicit bucket, sum and count */
} om_metric_type_t;

/* service::telemetry::metrics::level, in otelcol's order: a metric is served when its level is
 * at most the configured one; none serves nothing. */
typedef enum {
    OM_METRIC_LEVEL_BASIC = 0,
    OM_METRIC_LEVEL_NORMAL,
    OM_METRIC_LEVEL_DETAILED,
    OM_METRIC_LEVEL_NONE = -1,
} om_metric_level_t;

typedef struct om_label {
    const char *key; /* [a-zA-Z_][a-zA-Z0-9_]*, not starting with "__" */
    const char *value;
} om_label_t;

/* What a metric is; usually a static const in the component. The registry copies it. */
typedef struct om_metric_def {
    const char *name; /* [a-zA-Z_:][a-zA-Z0-9_:]*, otelcol's name without _total */
    const char *help; /* one sentence, otelcol's description; NULL: "" */
    const char *unit; /* UCUM, as otelcol: "{spans}", "{batches}", "s", "By"; NULL: "" */
    om_metric_type_t type;
    /* Values are doubles (seconds, ratios); else integers: uint64 for counters, int64 for
     * gauges. Histograms always keep a double sum. */
    bool real;
    /* Histograms: the buckets' upper bounds, strictly increasing (at most
     * OM_METRIC_MAX_BOUNDS); one more bucket counts what is above the last. */
    const double *bounds;
    size_t n_bounds;
    /* The least service::telemetry::metrics::level that serves it (otelcol's levels):
     * basic (the zero value) for what every dashboard needs, normal or detailed for more. */
    om_metric_level_t level;
} om_metric_def_t;

/* A series of a counter or a gauge: the value, updated through the functions below. Only
 * these functions touch it. */
typedef struct om_metric_counter {
    _Atomic uint64_t v; /* the count, or a double's bits when the metric is real */
} om_metric_counter_t;
typedef struct om_metric_gauge {
    _Atomic int64_t v; /* the value, or a double's bits when the metric is real */
} om_metric_gauge_t;
typedef struct om_metric_histogram om_metric_histogram_t;

/* Loop thread. The series of def with these labels (copied), made if new. Returns 0 with *out
 * set; OM_EINVAL (message in err) when a name or label is malformed, a label key repeats, or
 * def disagrees with an earlier def of the same name (type, real, bounds); OM_ENOMEM. The
 * series lives until om_metrics_free. */
int om_metrics_counter(om_metrics_t *m, const om_metric_def_t *def, const om_label_t *labels,
                       size_t n_labels, om_metric_counter_t **out, om_err_t *err);
int om_metrics_gauge(om_metrics_t *m, const om_metric_def_t *def, const om_label_t *labels,
                     size_t n_labels, om_metric_gauge_t **out, om_err_t *err);
int om_metrics_histogram(om_metrics_t *m, const om_metric_def_t *def, const om_label_t *labels,
                         size_t n_labels, om_metric_histogram_t **out, om_err_t *err);

/* An observed gauge: its value is read when the registry is read, on the loop thread, so the
 * function may read loop-owned state (a queue's length) and costs nothing until then. It
 * returns the value (in .d when the metric is real, else in .i). */
typedef union om_metric_num {
    uint64_t u;
    int64_t i;
    double d;
} om_metric_num_t;
typedef om_metric_num_t (*om_metric_observe_fn)(void *arg);
/* Loop thread. As om_metrics_gauge (or om_metrics_counter for a counter def: a total kept
 * elsewhere), and the series takes its value from fn(arg) from now on.
 * OM_EINVAL when the series is already observed. Call om_metrics_unobserve before arg goes;
 * until the series is observed again, reading skips it. */
int om_metrics_observe(om_metrics_t *m, const om_metric_def_t *def, const om_label_t *labels,
                       size_t n_labels, om_metric_observe_fn fn, void *arg, om_metric_gauge_t **out,
                       om_err_t *err);
/* Loop thread. g from om_metrics_observe, or NULL (nothing happens). */
void om_metrics_unobserve(om_metrics_t *m, om_metric_gauge_t *g);

/* Updates: any thread, never block, never allocate; relaxed atomics (a counter is exact, a
 * reader may see updates of different series in any order). A NULL series does nothing, so a
 * component whose host has no registry needs no special case. The *_real forms are for
 * metrics whose def says real (a compare-and-swap loop: lock-free, not wait-free). */
static inline void om_metric_counter_add(om_metric_counter_t *c, uint64_t n)
{
    if (c != NULL) {
        atomic_fetch_add_explicit(&c->v, n, memory_order_relaxed);
    }
}
void om_metric_counter_add_real(om_metric_counter_t *c, double d); /* d >= 0 */
static inline void om_metric_gauge_set(om_metric_gauge_t *g, int64_t v)
{
    if (g != NULL) {
        atomic_store_explicit(&g->v, v, memory_order_relaxed);
    }
}
static inline void om_metric_gauge_add(om_metric_gauge_t *g, int64_t d)
{
    if (g != NULL) {
        atomic_fetch_add_explicit(&g->v, d, memory_order_relaxed);
    }
}
void om_metric_gauge_set_real(om_metric_gauge_t *g, double v);
void om_metric_gauge_add_real(om_metric_gauge_t *g, double d);
/* One observation: its bucket (the first bound >= v), the count and the sum. */
void om_metric_histogram_observe(om_metric_histogram_t *h, double v);

/* A series' value as read. labels point into the registry (valid until om_metrics_free),
 * sorted by key. */
typedef struct om_metric_sample {
    const om_label_t *labels;
    size_t n_labels;
    om_metric_num_t value; /* counter: .u (.d if real); gauge: .i (.d if real) */
    /* Histograms: per-bucket counts, not cumulative (OTLP's form; Prometheus' buckets are the
     * running sums), n_bounds + 1 of them; count is their sum. */
    uint64_t buckets[OM_METRIC_MAX_BOUNDS + 1];
    uint64_t count;
    double sum;
} om_metric_sample_t;

/* Called once per series: metrics in the order they were first made, a metric's series one
 * after the other (so an encoder writes HELP and TYPE when def changes). def is the
 * registry's copy. A non-zero return stops the visit and is returned by om_metrics_visit. */
typedef int (*om_metrics_visit_fn)(void *arg, const om_metric_def_t *def,
                                   const om_metric_sample_t *s);

/* Loop thread. NULL when out of memory. */
om_metrics_t *om_metrics_new(void);
/* Loop thread, once nothing updates any series any more. NULL does nothing. */
void om_metrics_free(om_metrics_t *m);
/* Loop thread. Every series with its value now (observed gauges call their function);
 * metrics with no series to show are skipped. Returns 0 or what fn returned. */
int om_metrics_visit(om_metrics_t *m, om_metrics_visit_fn fn, void *arg);
/* Loop thread. The value of the series name{labels} (labels in any order). 0, or OM_ENOTFOUND
 * (also for an observed gauge nobody observes now). def may be NULL. */
int om_metrics_read(om_metrics_t *m, const char *name, const om_label_t *labels, size_t n_labels,
                    const om_metric_def_t **def, om_metric_sample_t *out);

/* ------------------------------------------------------------------------------------------ */
/* Worker service: a bounded pool of threads for blocking or CPU-heavy jobs (compression,     */
/* encoding, database calls), so that the loop thread never waits for them.                   */

/* The host has one shared pool (host->workers); a component that needs threads of its own
 * (one database connection per thread, say) makes its own pool with per-thread init and fini
 * hooks. A job: the loop thread submits it; a worker thread runs work(); then done() runs on
 * the loop thread, exactly once, with 0, or OM_ESHUTDOWN when the pool was closed before the
 * job ran (work() was not called). Results come back through the pool's om_mailbox. A pool
 * starts threads only when jobs arrive (at most max_threads, kept until close) and holds at
 * most max_queued jobs waiting for a thread: beyond that, submit refuses with OM_EAGAIN.
 *
 * What a worker may touch, and how ownership passes:
 * - The job (the caller's struct around om_job_t) and everything it owns belong to the worker
 *   from submit until work() returns, then to the loop again: done() reads what work()
 *   wrote. The mailbox's mutex orders the worker's writes before done's reads; no atomics are
 *   needed. The loop does not read or write the job between submit and done.
 * - A batch handed to a worker: the loop takes a reference at submit (om_batch_ref) and drops
 *   it in done (om_batch_release), both on the loop. In between the worker only reads it, with
 *   functions that change nothing: om_batch_proto_size, om_batch_proto_pack, om_batch_counts,
 *   om_batch_count_items, om_otlp_json_encode (decode the batch with om_batch_decode on the
 *   loop before submit: decoding fills the batch's cache), and plain reads of its fields, raw
 *   segments and msg structs. The worker never calls om_batch_ref, om_batch_release,
 *   om_batch_decode, om_batch_walk, om_batch_edit, om_batch_append or om_batch_clone, and never
 * edits the batch: refcounts and the decode cache are not atomic. The loop does not edit it
 *   meanwhile either: a shared batch is read-only for every holder, and an exclusive one
 *   becomes shared by the reference the submit took.
 * - A worker may make new objects that it alone holds (om_malloc'd memory, an om_strbuf, a
 *   compressor's state) and hand them to the loop through the job; done owns them from then.
 * - Everything else is the loop's: component state, uv handles and timers, other batches, the
 *   exporter helper, the registry's structure. A worker may log (OM_LOG, OM_CLOG) and update
 *   metric series (om_metric_counter_add and the others are atomic).
 * - A component that submits jobs waits for all their done() calls before its shutdown calls
 *   its own done: the pool outlives components, but their jobs point into them. */

typedef struct om_job om_job_t;
/* Worker thread. thread_data is what the pool's thread_init returned for this thread. */
typedef void (*om_job_work_fn)(om_job_t *job, void *thread_data);
/* Loop thread, exactly once per accepted job: status 0 (work ran) or OM_ESHUTDOWN (cancelled:
 * the pool closed before a thread took the job; work did not run). It may free the job and
 * may submit other jobs. */
typedef void (*om_job_done_fn)(om_job_t *job, int status);

/* Embed in the caller's own struct (the first member, or recover the struct with offsetof);
 * the caller owns the memory and keeps it alive until done. Fields are the pool's. */
struct om_job {
    om_msg_t msg; /* the queue link while waiting, then the message that carries done */
    om_workers_t *pool;
    om_job_work_fn work;
    om_job_done_fn done;
    int status;
};

typedef struct om_workers_cfg {
    const char *name;     /* thread names "om-NAME" (first 12 bytes); NULL: "worker" */
    unsigned max_threads; /* 0: om_cpu_count() */
    unsigned max_queued;  /* jobs waiting for a thread at most; 0: 64 per thread */
    /* Worker thread, once per thread before its first job / after its last one, e.g. to open
     * and close a database connection. thread_init's result is passed to every work() of the
     * thread and to thread_fini. If it can fail, it returns what says so and work() reports
     * it per job. Both may be NULL. */
    void *(*thread_init)(void *arg);
    void (*thread_fini)(void *arg, void *thread_data);
    void *arg;
} om_workers_cfg_t;

/* Loop thread. Makes the pool (no thread yet; its mailbox does not keep the loop alive while
 * no job is out). Returns 0, OM_ENOMEM or OM_EIO with a message in err. */
int om_workers_new(uv_loop_t *loop, const om_workers_cfg_t *cfg, om_workers_t **out, om_err_t *err);
/* Loop thread; never blocks beyond a mutex and, for the first jobs, starting a thread. Queues
 * job to run work on a worker and then done on the loop. Returns 0; OM_EAGAIN when max_queued
 * jobs already wait (retryable: try later, or do the work some other way); OM_ESHUTDOWN once
 * om_workers_close was called; OM_ENOTSUP when w is NULL; OM_EIO when no thread could be
 * started. On failure done is never called and the job is the caller's again. done is never
 * called from inside this call. */
int om_workers_submit(om_workers_t *w, om_job_t *job, om_job_work_fn work, om_job_done_fn done);
/* Loop thread. Stop taking jobs; cancel the queued ones (their done gets OM_ESHUTDOWN); let
 * running ones finish; join the threads, run thread_fini on each, free the pool, then call
 * done (never from inside this call). The loop is not blocked while jobs run: each thread
 * posts a last message once it has nothing left to do and the loop joins it then, which
 * waits only for the thread to return. */
void om_workers_close(om_workers_t *w, om_done_fn done, void *arg);
/* Loop thread (tests, zpages): threads started so far; jobs waiting for a thread. */
unsigned om_workers_threads(const om_workers_t *w);
size_t om_workers_queued(om_workers_t *w);

/* ------------------------------------------------------------------------------------------ */
/* CPUs and the worker pool's size (src/cpus.c)                                               */

/* The CPUs this process may use, as Go 1.25 sizes GOMAXPROCS: the affinity mask's CPUs,
 * lowered to the CPU quota rounded up (not below 2) of the process's own cgroup or its
 * tightest visible ancestor (cgroup v2 cpu.max, else v1 cpu.cfs_quota_us), at least 1. Reads
 * /proc and /sys once, at start-up (om_host_init); later calls return the cached value. */
unsigned om_cpu_count(void);
/* The host's worker pool's size: GOMAXPROCS from the environment when it is a whole number
 * from 1 to 1024 (what otelcol deployments already set), else om_cpu_count(). */
unsigned om_workers_default_size(void);

/* ------------------------------------------------------------------------------------------ */
/* Introspection (pipeline.c): what the running collector is made of, for pages that show it   */
/* (the zpages extension). Loop thread; the data lives as long as the graph.                  */

typedef struct om_pipeline_info {
    const char *id; /* "traces", "traces/2" */
    om_signal_t signal;
    const char *const *receivers, *const *processors, *const *exporters; /* component ids */
    size_t n_receivers, n_processors, n_exporters;
} om_pipeline_info_t;

/* The pipelines in config order (*out: an array of the return value's length; NULL and 0 for
 * a host without a graph). */
size_t om_host_pipelines(const om_host_t *h, const om_pipeline_info_t **out);
/* The ids of the extensions listed in service::extensions, in that order. */
size_t om_host_extensions(const om_host_t *h, const char *const **out);

/* ------------------------------------------------------------------------------------------ */
/* Receiver counters (obsreport.c): otelcol's receiverhelper obsreport. A receiver hands each  */
/* batch on through om_obsrecv_deliver, which counts its items as accepted or refused under    */
/* otelcol's names (otelcol_receiver_accepted_spans, ..._refused_metric_points, ...) with the  */
/* labels receiver (the component id) and transport ("grpc", "http").                          */

typedef struct om_obsrecv {
    om_metric_counter_t *accepted[OM_SIG_COUNT], *refused[OM_SIG_COUNT]; /* the registry's */
} om_obsrecv_t;

/* Loop thread, at create. A host without a registry leaves every series NULL (counting does
 * nothing). Returns 0, or OM_EINVAL / OM_ENOMEM with err set. */
int om_obsrecv_init(om_obsrecv_t *o, om_host_t *host, const char *receiver_id,
                    const char *transport, om_err_t *err);
/* Hand batch to next (om_consumer_consume) and count its items by the answer: 0 accepted,
 * anything else refused. Returns what next returned. */
int om_obsrecv_deliver(const om_obsrecv_t *o, const om_consumer_t *next, om_batch_t *batch);
/* As om_obsrecv_deliver for a batch prepared off the loop (om_consumer_prepare): counts the
 * items the request had, hands p on with om_consumer_finish. */
int om_obsrecv_deliver_prepared(const om_obsrecv_t *o, const om_consumer_t *next, om_prepared_t *p);

/* ------------------------------------------------------------------------------------------ */
/* Exporter helper: what otelcol's exporterhelper does, shared by every exporter: a bounded    */
/* sending queue, consumers that send concurrently, a timeout per send, retries with           */
/* exponential backoff for retryable failures, and counters of what was sent, failed and      */
/* refused.                                                                                   */

typedef struct om_retry_cfg {
    bool enabled;                /* true */
    int64_t initial_interval;    /* 5s */
    double randomization_factor; /* 0.5 */
    double multiplier;           /* 1.5 */
    int64_t max_interval;        /* 30s */
    int64_t max_elapsed_time;    /* 300s; 0: retry forever */
} om_retry_cfg_t;

typedef struct om_queue_cfg {
    bool enabled;          /* true */
    int64_t num_consumers; /* 10: sends in flight at once */
    int64_t queue_size;    /* 1000 requests */
} om_queue_cfg_t;

/* Embed this in an exporter's config struct and put OM_EXPHELPER_FIELDS(cfg_type, member, t) in its
 * field table: it adds `timeout`, `retry_on_failure` and `sending_queue` with otelcol's
 * defaults (timeout_default as a duration string, e.g. "5s"). */
typedef struct om_exphelper_cfg {
    int64_t timeout;
    om_retry_cfg_t retry_on_failure;
    om_queue_cfg_t sending_queue;
} om_exphelper_cfg_t;

/* The entries of a retry_on_failure field table (om_retry_cfg_t), otelcol's keys and ranges;
 * initial_default is the first backoff as a duration string: the helper's "5s", or an exporter's
 * own (prometheusremotewrite: "50ms"). End the table with {.key = NULL}. */
#define OM_RETRY_FIELD_LIST(initial_default)                                                       \
    {.key = "enabled",                                                                             \
     .type = OM_F_BOOL,                                                                            \
     .offset = offsetof(om_retry_cfg_t, enabled),                                                  \
     .def = "true"},                                                                               \
        {.key = "initial_interval",                                                                \
         .type = OM_F_DURATION,                                                                    \
         .offset = offsetof(om_retry_cfg_t, initial_interval),                                     \
         .def = (initial_default),                                                                 \
         .min = 0,                                                                                 \
         .max = 9.2e18},                                                                           \
        {.key = "randomization_factor",                                                            \
         .type = OM_F_DOUBLE,                                                                      \
         .offset = offsetof(om_retry_cfg_t, randomization_factor),                                 \
         .def = "0.5",                                                                             \
         .min = 0,                                                                                 \
         .max = 1},                                                                                \
        {.key = "multiplier",                                                                      \
         .type = OM_F_DOUBLE,                                                                      \
         .offset = offsetof(om_retry_cfg_t, multiplier),                                           \
         .def = "1.5",                                                                             \
         .min = 1,                                                                                 \
         .max = 1000},                                                                             \
        {.key = "max_interval",                                                                    \
         .type = OM_F_DURATION,                                                                    \
         .offset = offsetof(om_retry_cfg_t, max_interval),                                         \
         .def = "30s",                                                                             \
         .min = 0,                                                                                 \
         .max = 9.2e18},                                                                           \
    {                                                                                              \
        .key = "max_elapsed_time", .type = OM_F_DURATION,                                          \
        .offset = offsetof(om_retry_cfg_t, max_elapsed_time), .def = "300s", .min = 0,             \
        .max = 9.2e18                                                                              \
    }

extern const om_field_t om__retry_fields[];
extern const om_field_t om__queue_fields[];
#define OM_EXPHELPER_FIELDS(cfg_type, member, timeout_default)                                     \
    {.key = "timeout",                                                                             \
     .type = OM_F_DURATION,                                                                        \
     .offset = offsetof(cfg_type, member.timeout),                                                 \
     .def = (timeout_default),                                                                     \
     .min = 0,                                                                                     \
     .max = 9.2e18,                                                                                \
     .help = "time limit of one send"},                                                            \
        {.key = "retry_on_failure",                                                                \
         .type = OM_F_SECTION,                                                                     \
         .offset = offsetof(cfg_type, member.retry_on_failure),                                    \
         .fields = om__retry_fields,                                                               \
         .help = "retries of retryable failures with exponential backoff"},                        \
    {                                                                                              \
        .key = "sending_queue", .type = OM_F_SECTION,                                              \
        .offset = offsetof(cfg_type, member.sending_queue), .fields = om__queue_fields,            \
        .help = "bounded queue in front of the senders"                                            \
    }

/* Validates the cross-field rules of the helper's settings. */
int om_exphelper_cfg_validate(const om_exphelper_cfg_t *cfg, om_err_t *err);

typedef struct om_exphelper om_exphelper_t;

/* One request in flight: the exporter reads batch and deadline_ms. */
typedef struct om_exp_req {
    om_batch_t *batch;   /* owned by the helper; the exporter must not release it */
    uint64_t timeout_ms; /* the exporter's time limit for this attempt (0: none) */
    unsigned attempt;    /* 1 for the first send */
    void *exporter_data; /* free for the exporter's use during one attempt */
} om_exp_req_t;

/* Start sending req->batch. Must lead to exactly one om_exp_req_done(req, ...) call, later
 * or right away. Called on the loop thread. */
typedef void (*om_exp_send_fn)(void *exporter, om_exp_req_t *req);

/* The helper's metrics, in the host's registry, as otelcol's exporterhelper has them (label
 * exporter = the exporter's ID, e.g. "otlp/2"; one series per signal the exporter is wired
 * for):
 *   otelcol_exporter_sent_{spans,metric_points,log_records}            items delivered
 *   otelcol_exporter_send_failed_{spans,metric_points,log_records}     items dropped after
 *                                                                      failing
 *   otelcol_exporter_enqueue_failed_{spans,metric_points,log_records}  items refused: queue
 *                                                                      full
 *   otelcol_exporter_queue_size, otelcol_exporter_queue_capacity       requests queued, and
 *        the queue's size (labels exporter and data_type = traces/metrics/logs; only with
 *        sending_queue enabled). The queue is shared by the signals: queue_size counts each
 *        signal's requests, capacity is the whole queue's. */
#define OM_EXP_METRIC_QUEUE_SIZE "otelcol_exporter_queue_size"
#define OM_EXP_METRIC_QUEUE_CAPACITY "otelcol_exporter_queue_capacity"
/* The names of the three counters for a signal: "otelcol_exporter_sent_spans" etc. */
const char *om_exp_metric_sent(om_signal_t s);
const char *om_exp_metric_send_failed(om_signal_t s);
const char *om_exp_metric_enqueue_failed(om_signal_t s);

/* a is the exporter's create arguments (host, id, log_name, signals; signals 0 counts as
 * all); cfg, a->host and a->log_name must outlive the helper. Makes the helper's series in
 * a->host->metrics (none when the host has no registry). Returns NULL when out of memory or
 * when the registry refuses a series (then err says why). Loop thread. */
om_exphelper_t *om_exphelper_new(const om_create_args_t *a, const om_exphelper_cfg_t *cfg,
                                 om_exp_send_fn send, void *exporter, om_err_t *err);
/* Queue the batch (takes ownership). 0: accepted into the bounded queue; OM_EREFUSED when the
 * queue is full (retryable: the receiver tells the client to retry); OM_ESHUTDOWN after
 * shutdown began. */
int om_exphelper_consume(om_exphelper_t *h, om_batch_t *batch);
/* The end of one attempt. rc 0: delivered; a retryable code (om_err_retryable, or OM_EIO for
 * network failures): retried with backoff, waiting at least retry_after_ms when the server
 * said so; anything else: dropped, counted and logged with msg. Returns true when the request
 * will be attempted again (req stays valid and comes back to send with the same pointer, so
 * an exporter may keep per-request state across attempts, e.g. which parts were delivered),
 * false when it is finished (req is freed: the exporter frees such state now). */
bool om_exp_req_done(om_exp_req_t *req, int rc, uint64_t retry_after_ms, const char *msg);
/* Stop taking data, send what is queued, then call done once. As in otelcol, a send that
 * fails during shutdown is not retried again (requests waiting for a retry get one last
 * attempt at once), so a dead backend cannot hold the shutdown. */
void om_exphelper_shutdown(om_exphelper_t *h, om_done_fn done, void *arg);
/* Closes something an exporter sends through (its HTTP client, its worker pool); calls done
 * once it is closed. */
typedef void (*om_close_fn)(void *what, om_done_fn done, void *arg);
/* An exporter's whole shutdown: om_exphelper_shutdown, then (when what is not NULL)
 * close(what), then done once. A second call does nothing. what must stay open until the
 * helper drained, since the last sends use it. */
void om_exphelper_shutdown_closing(om_exphelper_t *h, om_close_fn close, void *what,
                                   om_done_fn done, void *arg);
/* Free; only after done. */
void om_exphelper_free(om_exphelper_t *h);
/* Requests waiting in the queue (not counting those being sent). */
size_t om_exphelper_queue_size(const om_exphelper_t *h);

/* ------------------------------------------------------------------------------------------ */
/* TLS (tls.c, tls_server.c, tls_client.c): otelcol's configtls as two field tables, one for   */
/* servers (ServerConfig) and one for clients (ClientConfig), both built on the settings they */
/* share (configtls.Config: om_tls_cfg_t, whose keys, rules, names and PEM reading exist once */
/* in tls.c). A component embeds om_tls_server_cfg_t or om_tls_client_cfg_t and adds          */
/*   {.key = "tls", .type = OM_F_SECTION, .offset = offsetof(cfg_t, tls),                    */
/*    .fields = om_tls_client_fields, .help = "..."}                                          */
/* to its table (a server with OM_FF_PRESENCE, or through OM_HTTP_SERVER_FIELDS; a client     */
/* through OM_HTTP_CLIENT_FIELDS), calls om_tls_*_validate() from config_validate (no I/O)    */
/* and om_tls_*_pem_load() at start for the PEM material. Keys otelcol has that otelmon does  */
/* not implement and that concern security are refused. What each key does on each side and  */
/* stack is documented in tls_server.c and tls_client.c.                                      */

/* Indexes into the version choices: "" (the default: 1.2 for min, the newest for max), "1.0",
 * "1.1", "1.2", "1.3". */
typedef enum {
    OM_TLS_V_DEFAULT = 0,
    OM_TLS_V1_0,
    OM_TLS_V1_1,
    OM_TLS_V1_2,
    OM_TLS_V1_3,
} om_tls_version_t;

/* The settings servers and clients share (configtls.Config). A string that is NULL or "" is
 * unset. */
typedef struct om_tls_cfg {
    char *ca_file, *ca_pem;            /* client: the CAs to trust instead of the system's;
                                        * server: read and checked, otherwise unused */
    bool include_system_ca_certs_pool; /* the system's CAs count too (with a CA / client CA) */
    char *cert_file, *cert_pem;        /* certificate chain: a server's, or a client's (mTLS) */
    char *key_file, *key_pem;          /* its private key */
    int min_version, max_version;      /* om_tls_version_t */
    om_strlist_t cipher_suites;        /* Go's (IANA) names; TLS 1.2 suites (1.3 ones: no effect) */
    om_strlist_t curve_preferences;    /* X25519, P256, P384, P521 (X25519MLKEM768) */
} om_tls_cfg_t;

/* Largest PEM file accepted: certificate chains and CA bundles are a few KiB to a few hundred
 * KiB (Debian's whole system bundle is about 200 KiB). */
#define OM_TLS_PEM_MAX (4 * 1024 * 1024)

/* PEM text read at start (om_tls_server_pem_load, om_tls_client_pem_load): each om_malloc'd
 * and NUL-terminated, NULL when not configured. */
typedef struct om_tls_pem {
    char *ca;        /* client: the CAs to trust; with include_system_ca_certs_pool, followed
                      * by the system's bundle. NULL: the system's defaults */
    char *cert;      /* certificate chain */
    char *key;       /* its private key (checked to match cert), NULL: none */
    char *client_ca; /* server: client_ca_file's CAs */
} om_tls_pem_t;

/* Free (and wipe: the key is secret) what a *_pem_load filled in, and zero *pem. */
void om_tls_pem_free(om_tls_pem_t *pem);

/* The reason for the last OpenSSL error of this thread ("certificate verify failed: ..."),
 * written to buf, for log lines. ssl may be NULL; with it, a failed peer verification says
 * why. Clears the thread's error queue. Any thread. */
struct ssl_st; /* OpenSSL's SSL, without including OpenSSL here */
void om_tls_err_reason(const struct ssl_st *ssl, char *buf, size_t n);

/* TLS clients (tls_client.c): configtls.ClientConfig, for every component that connects with
 * TLS (the HTTP client below, the gRPC exporter). */
typedef struct om_tls_client_cfg {
    om_tls_cfg_t common;
    bool insecure;              /* gRPC: plaintext (unless a CA is given); HTTP: no effect */
    bool insecure_skip_verify;  /* TLS without checking the server's chain and name */
    char *server_name_override; /* name for SNI and the certificate check */
    int64_t reload_interval;    /* ns; 0: never reload the certificate and key */
} om_tls_client_cfg_t;

extern const om_field_t om_tls_client_fields[];

/* The stack that carries the connection: what it can enforce differs. */
typedef enum {
    OM_TLS_STACK_LIBCURL, /* the HTTP client (OpenSSL under libcurl): every key */
    OM_TLS_STACK_GRPC,    /* gRPC core 1.51: TLS 1.2 and 1.3 only, no cipher or curve choice */
} om_tls_stack_t;

/* Cross-field rules, and refusal of what the stack cannot enforce, through om_err_at with
 * key (the tls section's path below the component, e.g. "tls") in front of the field's name.
 * No I/O. Returns 0 or OM_ECONFIG. */
int om_tls_client_validate(const om_tls_client_cfg_t *t, const char *key, om_tls_stack_t stack,
                           om_err_t *err);
/* Whether the settings ask for a CA / a client certificate (file or inline PEM). */
bool om_tls_client_has_ca(const om_tls_client_cfg_t *t);
bool om_tls_client_has_cert(const om_tls_client_cfg_t *t);

/* Reads ca_*, cert_*, key_* into out->ca, cert, key (files are read here, so a bad path fails
 * the start with its name rather than every later connection), with the system bundle after
 * the CAs when include_system_ca_certs_pool asks, and checks that each parses as PEM and that
 * the key belongs to the certificate. key names the tls section in messages ("tls":
 * "tls::ca_file: cannot read ..."). Returns 0, OM_ECONFIG with a message, or OM_ENOMEM (then
 * *out holds nothing). Blocks on file reads: call from start, not from the data path. */
int om_tls_client_pem_load(const om_tls_client_cfg_t *t, const char *key, om_tls_pem_t *out,
                           om_err_t *err);

/* The OpenSSL forms of cipher_suites (TLS 1.2 suites, ':'-separated, "" when the list names
 * none) and curve_preferences (groups, ':'-separated, "" when empty), for libraries that take
 * OpenSSL's syntax. Validated configs only. Returns an om_malloc'd string or NULL (ENOMEM). */
char *om_tls_client_cipher_list(const om_tls_client_cfg_t *t);
char *om_tls_client_curves_list(const om_tls_client_cfg_t *t);

/* TLS servers (tls_server.c): configtls.ServerConfig, for every component that serves TLS
 * (the OTLP receiver's HTTP and gRPC servers, health_check, whatever uses om_http_server), the
 * OpenSSL server context built from it. Loop thread only. */
struct ssl_ctx_st; /* OpenSSL's SSL_CTX, without including OpenSSL here */

typedef struct om_tls_server_cfg {
    om_tls_cfg_t common;
    char *client_ca_file; /* set: clients must present a certificate it signed */
} om_tls_server_cfg_t;

extern const om_field_t om_tls_server_fields[];

/* Flags of om_tls_server_validate / om_tls_server_ctx_new. */
#define OM_TLS_GRPC (1u << 0)        /* the limits of gRPC core's credentials (see validate) */
#define OM_TLS_ALPN_HTTP11 (1u << 1) /* answer ALPN with http/1.1 */
#define OM_TLS_ALPN_H2 (1u << 2)     /* prefer h2, then http/1.1 (gRPC methods served) */

/* The cross-field rules of one tls section, as otelcol's configtls Validate: a certificate and
 * a key (each as a file or inline PEM, not both), min <= max, known cipher suites and curves.
 * at names the section below the component ("protocols::http::tls"; "tls") and errors point
 * at the key with om_err_at. OM_TLS_GRPC adds what gRPC core 1.51 cannot do: its versions are
 * fixed to 1.2..1.3 (a narrower range is refused rather than widened), and cipher_suites,
 * curve_preferences and include_system_ca_certs_pool are errors there. Returns 0 or
 * OM_ECONFIG. No I/O. */
int om_tls_server_validate(const om_tls_server_cfg_t *cfg, unsigned flags, const char *at,
                           om_err_t *err);

/* Read the files the section names into pem->cert, key, client_ca, ca (inline PEM is copied).
 * Reads synchronously: this runs once at start, before the server serves anything, on files
 * of at most OM_TLS_PEM_MAX bytes, and start must report a missing or unreadable file as its
 * own error. On failure returns OM_ECONFIG (OM_ENOMEM) with a message that starts with the
 * key's path below the component (at::key) and names the file; *pem then holds nothing. */
int om_tls_server_pem_load(const om_tls_server_cfg_t *cfg, const char *at, om_tls_pem_t *pem,
                           om_err_t *err);

/* A server context from the material: certificate chain and key (which must match), the
 * versions, cipher suites and curves, with client_ca mutual TLS; OM_TLS_ALPN_HTTP11 offers
 * ALPN "http/1.1". Returns NULL with OM_ECONFIG/OM_ENOMEM in err (the message names the key
 * and file that does not parse). The caller frees it with SSL_CTX_free. */
struct ssl_ctx_st *om_tls_server_ctx_new(const om_tls_server_cfg_t *cfg, const om_tls_pem_t *pem,
                                         unsigned flags, const char *at, om_err_t *err);

/* ------------------------------------------------------------------------------------------ */
/* Authenticators (auth.c): otelcol's configauth and extensionauth.                          */

/* A server or client that asks for `auth: {authenticator: ID}` gets the extension ID's checks
 * on every request, or a config error: never an open port.
 *
 * Config: the field types OM_F_AUTH_SERVER / OM_F_AUTH_CLIENT fill an om_auth_cfg_t (the
 * shared HTTP server and client tables and the gRPC receiver and exporter use them). When the
 * graph is built (`otelmon validate` too), every reference of a component that will run must
 * name a configured extension that is enabled in service::extensions and whose factory offers
 * that side; otherwise a config error at the `authenticator` value's file:line:column.
 *
 * Extensions: a factory declares what it offers with om_auth_ops_t. Extensions are created and
 * started before every other component (authenticators first), and the graph registers each
 * enabled one with the host, where a component finds it by ID at start (om_auth_server_new,
 * om_auth_client_new).
 *
 * Servers ask om_auth_server_check() before routing a request: the core HTTP server does it
 * for every server whose settings have auth (401), the OTLP gRPC receiver per call
 * (UNAUTHENTICATED); the answer says nothing more. The check counts refusals in
 * otelmon_auth_failures{authenticator, component, transport} and logs them (rate-limited, with
 * the peer and the authenticator's reason, never a credential). Clients add
 * om_auth_client_headers() to each request (the core HTTP client; the otlp exporter as call
 * metadata). Loop thread only; nothing here blocks, beyond what an authenticator's own check
 * costs (a bcrypt hash: see the basicauth extension). */

typedef struct om_auth_cfg {
    char *authenticator; /* the extension's ID ("basicauth/server"); NULL: no auth */
    /* HTTP servers (om_auth_http_server_fields): query parameters the authenticator also sees
     * as headers (the query's value wins), as otelcol's confighttp request_params. */
    om_strlist_t request_params;
    /* Where the authenticator's ID was written, for messages (the config outlives the
     * struct); NULL for configs built in code. */
    const om_node_t *node;
} om_auth_cfg_t;

/* The nested tables: `authenticator` (required), and request_params for HTTP servers. */
extern const om_field_t om_auth_server_fields[];
extern const om_field_t om_auth_http_server_fields[];
extern const om_field_t om_auth_client_fields[];

/* A field-table entry for `auth`: OM_AUTH_FIELD(cfg_type, member, OM_F_AUTH_SERVER,
 * om_auth_server_fields), member being an om_auth_cfg_t. */
#define OM_AUTH_FIELD(cfg_type, member, ftype, table)                                              \
    {                                                                                              \
        .key = "auth", .type = (ftype), .offset = offsetof(cfg_type, member), .fields = (table),   \
        .help = "authenticate with the extension named by authenticator"                           \
    }

/* Which side an authenticator offers. */
#define OM_AUTH_SERVER (1u << 0)
#define OM_AUTH_CLIENT (1u << 1)

/* How a server authenticator reads a request's headers (HTTP headers or gRPC metadata): the
 * first value of name, matched case-insensitively, NUL-terminated and valid until the check
 * returns; NULL when absent. */
typedef const char *(*om_auth_header_fn)(void *arg, const char *name);

/* The most headers a client authenticator adds to one request. */
#define OM_AUTH_MAX_HEADERS 4

struct om_http_header;

/* What an extension offers as an authenticator; its factory points at one (om_factory_t.auth).
 * self is the extension's instance; every function runs on the loop thread, after the
 * extension's start, and must not block. */
typedef struct om_auth_ops {
    /* The sides an instance with this validated config offers (OM_AUTH_SERVER |
     * OM_AUTH_CLIENT): basicauth is a server with htpasswd and a client with client_auth. */
    unsigned (*sides)(const void *cfg);
    /* Server side: 0 when the request's credentials are good, OM_EUNAUTH when not, with
     * *why set to a short static reason for the log ("no Authorization header", "invalid
     * credentials"): never a credential, nor anything a client sent. OM_EAGAIN when they
     * cannot be checked now (a budget for slow work is spent): the request is refused as
     * retryable (HTTP 503 with Retry-After, gRPC UNAVAILABLE). */
    int (*authenticate)(void *self, om_auth_header_fn header, void *arg, const char **why);
    /* Client side: the headers to add to a request now (at most cap, OM_AUTH_MAX_HEADERS),
     * returning how many. The strings are the extension's and stay valid until control
     * returns to the loop (a token file's change replaces them from a later loop turn), so
     * the caller copies them at once. Names are HTTP field names; gRPC lowercases them. */
    size_t (*headers)(void *self, struct om_http_header *out, size_t cap);
} om_auth_ops_t;

/* An enabled extension as the host knows it. */
struct om_extension_ref {
    const char *id; /* "basicauth/server"; owned by the graph */
    const struct om_factory *factory;
    const void *cfg; /* its validated config */
    void *self;      /* its instance */
};

/* Loop thread. The enabled extension id registered with the host, or NULL. Components ask at
 * start (extensions are created and started before them). */
const om_extension_ref_t *om_host_extension(const om_host_t *host, const char *id);
/* Core and tests: register an extension instance (ref is copied; its strings and pointers
 * must outlive the registration) / forget them all. 0 or OM_ENOMEM. */
int om__host_add_extension(om_host_t *host, const om_extension_ref_t *ref);
void om__host_clear_extensions(om_host_t *host);

/* A component's handle on the server authenticator its config names. */
typedef struct om_auth_server om_auth_server_t;

/* Loop thread, at start. With cfg->authenticator NULL, *out is NULL and 0 is returned (no
 * authentication). Otherwise the extension must be registered with host and offer the
 * server side, else OM_ECONFIG with otelcol's message in err ("failed to resolve
 * authenticator ..."); OM_ENOMEM. component ("receiver/otlp") and transport ("http",
 * "grpc") label the refusal counter and prefix the log lines; both are copied. */
int om_auth_server_new(om_host_t *host, const om_auth_cfg_t *cfg, const char *component,
                       const char *transport, om_auth_server_t **out, om_err_t *err);
/* Loop thread. 0 when a is NULL or the request's headers authenticate; OM_EUNAUTH when not,
 * OM_EAGAIN when the authenticator cannot check them now (both counted and logged, see the
 * section comment; the caller answers OM_EAGAIN as retryable). peer ("ip:port") is for the log
 * only; may be NULL. */
int om_auth_server_check(om_auth_server_t *a, om_auth_header_fn header, void *arg,
                         const char *peer);
/* NULL does nothing. */
void om_auth_server_free(om_auth_server_t *a);

/* A component's handle on the client authenticator its config names. */
typedef struct om_auth_client om_auth_client_t;

/* Loop thread, at start: as om_auth_server_new, for the client side. */
int om_auth_client_new(om_host_t *host, const om_auth_cfg_t *cfg, om_auth_client_t **out,
                       om_err_t *err);
/* Loop thread: the headers to add to a request now (see om_auth_ops_t.headers); 0 when a is
 * NULL. */
size_t om_auth_client_headers(om_auth_client_t *a, struct om_http_header *out, size_t cap);
/* NULL does nothing. */
void om_auth_client_free(om_auth_client_t *a);

/* The metric the server check counts refusals in. */
#define OM_AUTH_FAILURES_METRIC "otelmon_auth_failures"

/* Whether two secrets are equal, in time that depends on neither their contents nor their
 * lengths: their SHA-256 digests are compared with CRYPTO_memcmp. Authenticators compare
 * every credential through it (or through om_auth_digest and om_auth_digest_equal, when the
 * expected side is hashed once ahead). Any thread. */
#define OM_AUTH_DIGEST_LEN 32
bool om_auth_equal(const void *a, size_t a_len, const void *b, size_t b_len);
void om_auth_digest(const void *data, size_t len, uint8_t out[OM_AUTH_DIGEST_LEN]);
bool om_auth_digest_equal(const uint8_t a[OM_AUTH_DIGEST_LEN], const uint8_t b[OM_AUTH_DIGEST_LEN]);
/* Tests: how many comparisons om_auth_equal and om_auth_digest_equal have made. */
extern _Atomic unsigned long om__auth_compares;

/* ------------------------------------------------------------------------------------------ */
/* Watched files (filewatch.c): small files that change while the collector runs (a token or  */
/* a password an agent rotates), read at start and again whenever they change.                */

/* Blocking (call from start): the whole file at path, at most max bytes, om_malloc'd in one
 * buffer of max + 1 bytes and NUL-terminated (*len bytes before the NUL). Returns 0, OM_EIO
 * (cannot open or read: the message names the file and why), OM_ETOOBIG (larger than max) or
 * OM_ENOMEM, with a message in err. Free secrets with om_free_secret(data, max + 1). Any
 * thread. */
int om_file_read(const char *path, size_t max, char **data, size_t *len, om_err_t *err);
/* Wipe n bytes at p, then om_free it. NULL does nothing. Any thread. */
void om_free_secret(void *p, size_t n);

typedef struct om_filewatch om_filewatch_t;

/* Loop thread: the file was read again after a change. rc 0: data holds its len bytes (NUL-
 * terminated; valid during the call only: copy what you keep, the buffer is wiped after);
 * otherwise rc is om_file_read's code and msg says why (the file is gone for now, say): keep
 * the last value. Called after every change noticed, even when the bytes are the same. */
typedef void (*om_filewatch_fn)(void *arg, int rc, const char *data, size_t len, const char *msg);

/* Loop thread, at start: watch path (its directory and itself, so that writes, renames over
 * it and Kubernetes' symlink swaps are all seen) and read it again on host's worker pool after
 * each change. Does not read it now: read it first with om_file_read. Returns 0, OM_EIO (its
 * directory cannot be watched) or OM_ENOMEM, with a message in err. */
int om_filewatch_start(om_host_t *host, const char *path, size_t max, om_filewatch_fn fn, void *arg,
                       om_filewatch_t **out, om_err_t *err);
/* Loop thread: stop watching; done(arg) is called once the handles are closed and a read in
 * flight has come back (fn is not called any more), from a later loop turn. NULL w does
 * nothing (and done is not called). done may be NULL. */
void om_filewatch_close(om_filewatch_t *w, om_done_fn done, void *arg);

/* ------------------------------------------------------------------------------------------ */
/* HTTP client (http_client.c): asynchronous HTTP/1.1 and HTTP/2 requests on the loop, over    */
/* libcurl's multi interface (libcurl is loaded on first use: a collector that makes no HTTP  */
/* requests never loads it). A component makes one client at start from the shared settings   */
/* (otelcol's confighttp.ClientConfig: TLS, proxy, connection reuse), sends requests with     */
/* om_http_send and gets one callback per request on the loop thread. No libcurl type is      */
/* visible here. Everything below is for the loop thread only and never blocks, except where */
/* a comment says it reads files.                                                             */

/* A request, in a component:
 *
 *     om_http_request_t rq = {.method = "POST", .url = url, .headers = hdrs, .n_headers = 2,
 *                             .body = buf, .body_len = n, .body_mode = OM_HTTP_BODY_TAKE,
 *                             .timeout_ms = 5000};
 *     if (om_http_send(self->client, &rq, on_response, self, NULL, &err) != 0) { ... }
 *
 *     static void on_response(void *arg, const om_http_response_t *r)
 *     {
 *         if (r->error == 0 && r->status / 100 == 2) { ... }
 *         const char *ra = om_http_response_header(r, "Retry-After");
 *     }
 */

/* The shared client settings (confighttp.ClientConfig without `endpoint`, `timeout` and
 * `compression`, which each component defines for itself). Embed it and put
 * OM_HTTP_CLIENT_FIELDS(cfg_type, member, write_buffer_default) in the field table. */
typedef struct om_http_client_cfg {
    char *proxy_url; /* NULL: http_proxy/https_proxy/no_proxy apply, loopback never proxied */
    om_tls_client_cfg_t tls;
    om_strmap_t headers;        /* sent with every request; they win over the component's own */
    uint64_t read_buffer_size;  /* 0: curl's 16 KiB */
    uint64_t write_buffer_size; /* 0: curl's 64 KiB */
    int64_t max_idle_conns;     /* connections kept for reuse (0: curl's default) */
    int64_t max_conns_per_host; /* 0: the component's default (om_http_client_opts_t) */
    int64_t idle_conn_timeout;  /* ns; an idle connection older is not reused (0: no limit) */
    bool disable_keep_alives;   /* one connection per request */
    om_auth_cfg_t auth;         /* a client authenticator's headers on every request */
} om_http_client_cfg_t;

#define OM__HTTP_F(cfg_type, member, k, t, m, d, h)                                                \
    {                                                                                              \
        .key = (k), .type = (t), .offset = offsetof(cfg_type, member.m), .def = (d), .help = (h)   \
    }
#define OM__HTTP_N(cfg_type, member, k, t, m, d, lo, hi, h)                                        \
    {                                                                                              \
        .key = (k), .type = (t), .offset = offsetof(cfg_type, member.m), .def = (d), .min = (lo),  \
        .max = (hi), .help = (h)                                                                   \
    }
#define OM_HTTP_CLIENT_FIELDS(cfg_type, member, write_buffer_default)                              \
    OM__HTTP_F(cfg_type, member, "proxy_url", OM_F_STRING, proxy_url, NULL,                        \
               "HTTP proxy (unset: http_proxy/https_proxy/no_proxy apply, loopback never)"),       \
        {.key = "tls",                                                                             \
         .type = OM_F_SECTION,                                                                     \
         .offset = offsetof(cfg_type, member.tls),                                                 \
         .fields = om_tls_client_fields,                                                           \
         .help = "TLS client settings for https URLs"},                                            \
        OM__HTTP_F(cfg_type, member, "headers", OM_F_STRMAP, headers, NULL,                        \
                   "extra request headers (they win over the component's own)"),                   \
        OM__HTTP_N(cfg_type, member, "read_buffer_size", OM_F_SIZE, read_buffer_size, "0", 0, 1e9, \
                   "receive buffer per transfer (0: curl's 16 KiB)"),                              \
        OM__HTTP_N(cfg_type, member, "write_buffer_size", OM_F_SIZE, write_buffer_size,            \
                   (write_buffer_default), 0, 1e9, "upload buffer per transfer"),                  \
        OM__HTTP_N(cfg_type, member, "max_idle_conns", OM_F_INT, max_idle_conns, "100", 0, 1e6,    \
                   "connections kept for reuse (0: curl's default)"),                              \
        OM__HTTP_N(cfg_type, member, "max_conns_per_host", OM_F_INT, max_conns_per_host, "0", 0,   \
                   1e6, "connections per host (0: the component's default)"),                      \
        OM__HTTP_N(cfg_type, member, "idle_conn_timeout", OM_F_DURATION, idle_conn_timeout, "90s", \
                   0, 9.2e18, "idle connections older are not reused (0: no limit)"),              \
        OM__HTTP_F(cfg_type, member, "disable_keep_alives", OM_F_BOOL, disable_keep_alives,        \
                   "false", "one connection per request"),                                         \
        OM_AUTH_FIELD(cfg_type, member.auth, OM_F_AUTH_CLIENT, om_auth_client_fields),             \
        {.key = "middlewares", .type = OM_F_REFUSED, .help = OM_MIDDLEWARES_REFUSED},              \
        {.key = "max_idle_conns_per_host", .type = OM_F_IGNORED},                                  \
        {.key = "http2_read_idle_timeout", .type = OM_F_IGNORED},                                  \
        {.key = "http2_ping_timeout", .type = OM_F_IGNORED},                                       \
        {.key = "force_attempt_http2", .type = OM_F_IGNORED},                                      \
    {                                                                                              \
        .key = "cookies", .type = OM_F_IGNORED                                                     \
    }

/* The rules of the shared settings: proxy_url parses, header names are tokens and values have
 * no line breaks, and om_tls_client_validate(&cfg->tls, "tls", OM_TLS_STACK_LIBCURL). Errors
 * through om_err_at. Loads libcurl (its URL parser is the one that will read the URLs):
 * OM_ENOTSUP when it cannot be loaded. */
int om_http_client_cfg_validate(const om_http_client_cfg_t *cfg, om_err_t *err);
/* 0 when url is an absolute http:// or https:// URL with a host, as libcurl parses it; else
 * om_err_at(err, key, ...). Loads libcurl. */
int om_http_check_url(const char *key, const char *url, om_err_t *err);

typedef struct om_http_client om_http_client_t;
typedef struct om_http_call om_http_call_t;

/* What a component adds to the shared settings. All fields may be 0/NULL. */
typedef struct om_http_client_opts {
    const char *log_name;    /* prefix of the client's log lines (copied) */
    long max_conns_per_host; /* used when cfg->max_conns_per_host is 0 (0: no limit) */
    const char *user_agent;  /* NULL: "OtelMon/<version>" */
} om_http_client_opts_t;

/* Make a client: loads libcurl on first use, reads the TLS material (om_tls_client_pem_load:
 * blocks on file reads, so call it from start), prepares the options every request shares and
 * the multi handle on host->loop. cfg must be validated and must outlive the client. Returns
 * 0, OM_ENOTSUP (no libcurl), OM_ECONFIG (TLS files, an option libcurl refuses) or OM_ENOMEM,
 * with a message in err. Warns (once per client) when libcurl resolves names synchronously. */
int om_http_client_new(om_host_t *host, const om_http_client_cfg_t *cfg,
                       const om_http_client_opts_t *opts, om_http_client_t **out, om_err_t *err);

/* Who owns a request body. */
typedef enum {
    OM_HTTP_BODY_BORROW = 0, /* the caller keeps it valid and unchanged until the callback */
    OM_HTTP_BODY_TAKE,       /* om_malloc'd; the client frees it, on every path (errors too) */
    OM_HTTP_BODY_COPY,       /* the client copies it during om_http_send */
} om_http_body_mode_t;

typedef struct om_http_header {
    const char *name, *value; /* value "" sends an empty header */
} om_http_header_t;

typedef struct om_http_request {
    const char *method; /* "GET", "POST", "PUT", ...; NULL: POST with a body, else GET */
    const char *url;    /* absolute http(s) URL; copied */
    /* Request headers, copied. A header of the same name in the client's configured headers
     * replaces it. The client adds User-Agent unless set, removes curl's "Expect:
     * 100-continue", and sets Host when server_name_override changes the URL. */
    const om_http_header_t *headers;
    size_t n_headers;
    const void *body; /* may be NULL when body_len is 0 */
    size_t body_len;
    om_http_body_mode_t body_mode;
    uint64_t timeout_ms;      /* the whole request, connection included (0: no limit) */
    size_t max_response_body; /* body bytes kept for the callback (0: OM_HTTP_RESP_KEEP) */
} om_http_request_t;

/* Response bodies: the first max_response_body bytes are kept (at most OM_HTTP_RESP_ABORT);
 * the rest is read and discarded so the connection stays reusable, up to OM_HTTP_RESP_ABORT
 * bytes, where the transfer is cut: a server that streams forever cannot hold a request until
 * its timeout. */
#define OM_HTTP_RESP_KEEP ((size_t)64 * 1024)
#define OM_HTTP_RESP_ABORT ((size_t)4 * 1024 * 1024)

/* What a request came to. Valid only during the callback. */
typedef struct om_http_response {
    /* 0 when a response arrived (whatever its status; body_cut may be set). Otherwise no
     * usable response: OM_EIO (connection refused or reset, DNS, TLS, timeout: a retry may
     * work), OM_EPERM (the request cannot work as written: bad URL, unsupported scheme),
     * OM_ENOMEM, or OM_ESHUTDOWN (cancelled, or the client closed). */
    int error;
    bool retryable;           /* error != 0 and trying again later may succeed */
    bool timed_out;           /* error: timeout_ms passed */
    const char *message;      /* error != 0: what went wrong, for humans ("" otherwise) */
    int status;               /* the final HTTP status (redirects followed); 0 without response */
    const char *content_type; /* of the response, or NULL */
    const uint8_t *body;      /* the first body_len bytes of the body (NULL when empty) */
    size_t body_len;
    uint64_t body_total; /* body bytes received */
    bool body_cut;       /* the body passed OM_HTTP_RESP_ABORT and the transfer was cut */
    const char *url;     /* the request's URL, as given */
    om_http_call_t *call;
} om_http_response_t;

/* The one callback of a request that om_http_send accepted: called exactly once, on the loop
 * thread, never from inside om_http_send or om_http_cancel. It may send new requests, cancel
 * others, or close the client. */
typedef void (*om_http_done_fn)(void *arg, const om_http_response_t *r);

/* Start a request. Returns 0 (done will be called once), or OM_EINVAL (bad method, URL or
 * header: a CR or LF in one), OM_ESHUTDOWN (the client is closing), OM_ENOMEM, OM_EIO, with
 * a message in err; then done is never called. With OM_HTTP_BODY_TAKE the body is the
 * client's on every path. *call (when call is not NULL) identifies the request for
 * om_http_cancel until its callback starts. */
int om_http_send(om_http_client_t *c, const om_http_request_t *req, om_http_done_fn done, void *arg,
                 om_http_call_t **call, om_err_t *err);
/* Stop a request whose callback has not run yet: its callback runs soon with OM_ESHUTDOWN
 * ("cancelled"). A second cancel, or one from inside the request's own callback, does
 * nothing. */
void om_http_cancel(om_http_call_t *call);
/* The value of a response header (the last one of that name, case-insensitive, of the final
 * response), or NULL. During the callback only. */
const char *om_http_response_header(const om_http_response_t *r, const char *name);
/* Requests whose callback has not run yet. */
size_t om_http_client_pending(const om_http_client_t *c);
/* Close: new sends fail with OM_ESHUTDOWN; requests still running are cancelled (their
 * callbacks run first, with OM_ESHUTDOWN); then every connection and handle is closed, the
 * client freed, and done(arg) called once. Safe from inside a request's callback. A second
 * call does nothing. */
void om_http_client_close(om_http_client_t *c, om_done_fn done, void *arg);

/* A Retry-After value (delay-seconds or an HTTP-date, RFC 9110 10.2.3) in milliseconds from
 * now_s (Unix seconds): >= 0, or -1 when absent or unparseable. A date in the past gives 0.
 * Any thread. */
int64_t om_http_retry_after_ms(const char *value, int64_t now_s);

/* ------------------------------------------------------------------------------------------ */
/* Mail client (mail.c): e-mail over SMTP through libcurl's multi interface on the loop, for   */
/* components that notify people (the alarm store). smtp:// with STARTTLS (required by        */
/* default), smtps:// (TLS from the first byte), AUTH with username and password, the shared   */
/* TLS client settings. Messages are built here: RFC 5322 headers, a text part and an optional */
/* HTML part (multipart/alternative), UTF-8 in base64, so no user text can reach the SMTP      */
/* dialogue or the headers as anything but data.                                              */

typedef struct om_mail_cfg {
    char *endpoint;  /* smtp://host[:port] or smtps://host[:port]; NULL or "": no mail */
    bool starttls;   /* smtp://: upgrade with STARTTLS, and fail when the server cannot */
    char *username;  /* AUTH (the mechanism the server offers, as libcurl picks) */
    char *password;  /* secret: never logged */
    char *from;      /* envelope sender and From: header, "name@domain" */
    om_strlist_t to; /* recipients, "name@domain" each */
    int64_t timeout; /* ns; one send, connection included */
    om_tls_client_cfg_t tls;
} om_mail_cfg_t;

/* The table for a mail section: {.key = "email", .type = OM_F_SECTION, .offset = ...,
 * .fields = om_mail_fields}. */
extern const om_field_t om_mail_fields[];

/* The rules, through om_err_at with key (the section's path, e.g. "notify::email") in front:
 * endpoint an smtp:// or smtps:// URL with a host and nothing after it; from and every to an
 * address with one @ and no spaces, angle brackets or line breaks; at least one to; a
 * password only with a username; a username and password never sent in clear (smtp://
 * without starttls) except to a loopback host; the TLS settings. Loads libcurl (its URL
 * parser reads the endpoint): OM_ENOTSUP when it cannot be loaded. With no endpoint: 0. */
int om_mail_cfg_validate(const om_mail_cfg_t *cfg, const char *key, om_err_t *err);

/* One message. Any text may be invalid UTF-8 (replaced by U+FFFD) or hold line breaks (a
 * subject's become spaces; a body's become CRLF). */
typedef struct om_mail_msg {
    const char *subject; /* at most OM_MAIL_SUBJECT_MAX bytes are used */
    const char *text;    /* the plain-text part */
    const char *html;    /* the HTML alternative, or NULL */
} om_mail_msg_t;

#define OM_MAIL_SUBJECT_MAX 400

/* The message as sent (RFC 5322 + MIME, CRLF line ends, no line over 78 characters) into out,
 * dated unix_s (UTC), with a Message-ID and MIME boundary made from unique (64 random bits).
 * Returns 0 or OM_ENOMEM. Any thread. */
int om_mail_format(const om_mail_cfg_t *cfg, const om_mail_msg_t *m, int64_t unix_s,
                   uint64_t unique, om_strbuf_t *out);

typedef struct om_mail_client om_mail_client_t;

/* What a send came to. Valid only during the callback. */
typedef struct om_mail_result {
    /* 0: the server accepted the message for every recipient. OM_EIO: it did not, or could not
     * be reached (retryable tells whether trying later may work: a connection refused, a
     * timeout or an SMTP 4xx may; a 5xx refusal, refused credentials or a server without
     * STARTTLS will not); OM_ENOMEM; OM_ESHUTDOWN (the client closed). */
    int error;
    bool retryable;
    int smtp_code;       /* the server's last reply code (0: none) */
    const char *message; /* error != 0: what went wrong, for the log ("" otherwise) */
} om_mail_result_t;

typedef void (*om_mail_done_fn)(void *arg, const om_mail_result_t *r);

/* Loop thread, at start: a client for a validated cfg (which must outlive it). Loads libcurl
 * and reads the TLS files (blocks on them). 0, OM_ENOTSUP, OM_ECONFIG or OM_ENOMEM with a
 * message in err. log_name prefixes its log lines (copied). */
int om_mail_client_new(om_host_t *host, const om_mail_cfg_t *cfg, const char *log_name,
                       om_mail_client_t **out, om_err_t *err);
/* Loop thread: send m (formatted now, so m's strings need not outlive the call). 0: done is
 * called once, on the loop thread, from a later loop turn; OM_ENOMEM or OM_ESHUTDOWN with a
 * message in err: done is never called. */
int om_mail_send(om_mail_client_t *c, const om_mail_msg_t *m, om_mail_done_fn done, void *arg,
                 om_err_t *err);
/* Sends whose callback has not run yet. */
size_t om_mail_pending(const om_mail_client_t *c);
/* Loop thread: sends still running are stopped and their callbacks run with OM_ESHUTDOWN,
 * from inside this call; then everything is closed and freed and done(arg) called once, from a
 * later loop turn. NULL c calls nothing. */
void om_mail_client_close(om_mail_client_t *c, om_done_fn done, void *arg);

/* ------------------------------------------------------------------------------------------ */
/* HTTP server (http_session.c, http_server.c): one HTTP/1.1 server on the loop for every      */
/* component that serves HTTP (the OTLP receiver, health_check, the pull exporters, query      */
/* APIs). Routing by path (exact, or a subtree as Go's ServeMux) and method (405 with Allow),  */
/* keep-alive and pipelining, Expect: 100-continue, HEAD, chunked bodies (streamed to the      */
/* handler as they arrive, or buffered), limits on the URL, the header bytes, the body and the */
/* connections, otelcol's confighttp timeouts, TLS through om_tls_server_*, answers given at   */
/* once or later (after a worker job). How it stays available under abuse (slow or idle        */
/* clients, more connections than file descriptors) is in http_server.c's opening comment.     */
/*                                                                                            */
/*     static void hello(om_http_req_t *req, void *arg) {                                      */
/*         om_http_respond(req, 200, "text/plain", NULL, "hi\n", 3);                           */
/*     }                                                                                      */
/*     static const om_http_handler_t hello_h = {.complete = hello};                          */
/*     om_http_server_opts_t o = {.loop = host->loop, .log_name = log_name, .cfg = &cfg->http, */
/*                                .default_endpoint = "localhost:8890"};                       */
/*     om_http_server_new(&o, &srv, err);                                                     */
/*     om_http_server_route(srv, "/hello", OM_HTTP_GET, &hello_h, self, 0, err);              */
/*     om_http_server_start(srv, err);   ...   om_http_server_shutdown(srv, done, arg);        */
/*                                                                                            */
/* Threading: the loop thread only; nothing blocks. A handler that answers later does so from */
/* the loop thread too (a worker hands its result back through the mailbox first).            */

/* otelcol's confighttp keepalive section (the newer form of idle_timeout and
 * keep_alives_enabled). */
typedef struct om_http_keepalive_cfg {
    bool enabled;         /* true */
    int64_t idle_timeout; /* ns; 1m */
} om_http_keepalive_cfg_t;

/* otelcol's confighttp.ServerConfig. Embed it in a component's config and put
 * OM_HTTP_SERVER_FIELDS(cfg_type, member, "localhost:PORT") in its field table: the keys sit
 * beside the component's own, as otelcol squashes them. Durations are ns; 0 means no limit,
 * as in Go. */
typedef struct om_http_server_cfg {
    char *endpoint;   /* "host:port"; "" host: all interfaces; "localhost": 127.0.0.1 */
    bool tls_present; /* `tls:` written: serve TLS only */
    om_tls_server_cfg_t tls;
    uint64_t max_request_body_size; /* 20 MiB; the handler may apply it after decompression */
    int64_t read_timeout;           /* 0: the whole request, from its first byte */
    int64_t read_header_timeout;    /* 1m: the request line and headers */
    int64_t write_timeout;          /* 30s: from the headers to the end of the answer */
    int64_t idle_timeout;           /* 1m: silence between requests, and within a body */
    bool keep_alives_enabled;       /* true */
    bool keepalive_present;         /* `keepalive:` written (then it wins over the two above) */
    om_http_keepalive_cfg_t keepalive;
    om_strmap_t response_headers;        /* added to every routed answer */
    om_strlist_t compression_algorithms; /* Content-Encodings a handler accepts (empty: all) */
    om_auth_cfg_t auth; /* every request is authenticated before routing (401 when refused) */
} om_http_server_cfg_t;

extern const om_field_t om__http_keepalive_fields[];

#define OM__HTTP_FIELD(cfg_type, member, name, ftype, field, dflt, text)                           \
    {                                                                                              \
        .key = name, .type = ftype, .offset = offsetof(cfg_type, member.field), .def = dflt,       \
        .min = 0, .max = 9.2e18, .help = text                                                      \
    }
#define OM_HTTP_SERVER_FIELDS(cfg_type, member, endpoint_default)                                  \
    {.key = "endpoint",                                                                            \
     .type = OM_F_ENDPOINT,                                                                        \
     .offset = offsetof(cfg_type, member.endpoint),                                                \
     .def = (endpoint_default),                                                                    \
     .help = "host:port to listen on"},                                                            \
        {.key = "tls",                                                                             \
         .type = OM_F_SECTION,                                                                     \
         .offset = offsetof(cfg_type, member.tls),                                                 \
         .fields = om_tls_server_fields,                                                           \
         .flags = OM_FF_PRESENCE,                                                                  \
         .present_offset = offsetof(cfg_type, member.tls_present),                                 \
         .help = "serve TLS (otelcol's configtls server settings)"},                               \
        {.key = "max_request_body_size",                                                           \
         .type = OM_F_SIZE,                                                                        \
         .offset = offsetof(cfg_type, member.max_request_body_size),                               \
         .def = "20MiB",                                                                           \
         .min = 1,                                                                                 \
         .max = 2147483647.0,                                                                      \
         .help = "largest request body accepted"},                                                 \
        OM__HTTP_FIELD(cfg_type, member, "read_timeout", OM_F_DURATION, read_timeout, "0s",        \
                       "time to read a whole request (0: no limit)"),                              \
        OM__HTTP_FIELD(cfg_type, member, "read_header_timeout", OM_F_DURATION,                     \
                       read_header_timeout, "1m", "time to read a request's headers"),             \
        OM__HTTP_FIELD(cfg_type, member, "write_timeout", OM_F_DURATION, write_timeout, "30s",     \
                       "time from a request's headers to the end of its answer"),                  \
        OM__HTTP_FIELD(cfg_type, member, "idle_timeout", OM_F_DURATION, idle_timeout, "1m",        \
                       "how long a connection may stay silent between requests"),                  \
        OM__HTTP_FIELD(cfg_type, member, "keep_alives_enabled", OM_F_BOOL, keep_alives_enabled,    \
                       "true", "serve several requests per connection"),                           \
        {.key = "keepalive",                                                                       \
         .type = OM_F_SECTION,                                                                     \
         .offset = offsetof(cfg_type, member.keepalive),                                           \
         .fields = om__http_keepalive_fields,                                                      \
         .flags = OM_FF_PRESENCE,                                                                  \
         .present_offset = offsetof(cfg_type, member.keepalive_present),                           \
         .help = "keep-alive settings (newer form of idle_timeout, keep_alives_enabled)"},         \
        {.key = "response_headers",                                                                \
         .type = OM_F_STRMAP,                                                                      \
         .offset = offsetof(cfg_type, member.response_headers),                                    \
         .help = "headers added to every answer"},                                                 \
        {.key = "compression_algorithms",                                                          \
         .type = OM_F_STRLIST,                                                                     \
         .offset = offsetof(cfg_type, member.compression_algorithms),                              \
         .help = "Content-Encodings accepted (default: all supported)"},                           \
        {.key = "cors", .type = OM_F_IGNORED},                                                     \
        OM_AUTH_FIELD(cfg_type, member.auth, OM_F_AUTH_SERVER, om_auth_http_server_fields),        \
        {.key = "middlewares", .type = OM_F_REFUSED, .help = OM_MIDDLEWARES_REFUSED},              \
        {.key = "include_metadata", .type = OM_F_IGNORED},                                         \
    {                                                                                              \
        .key = "include_tls_metadata", .type = OM_F_IGNORED                                        \
    }

/* The cross-field rules of the shared settings (the tls section, keepalive against the older
 * keys, known compression algorithms). at is where the settings sit below the component
 * ("protocols::http"; "" when at its top). Returns 0 or OM_ECONFIG (om_err_at). No I/O. */
int om_http_server_cfg_validate(const om_http_server_cfg_t *cfg, const char *at, om_err_t *err);
/* otelcol's NewDefaultServerConfig values, for configs built in code (tests, fuzz targets):
 * what the field table sets, endpoint NULL (the server's default_endpoint), nothing owned. */
void om_http_server_cfg_defaults(om_http_server_cfg_t *cfg);
/* Whether a handler accepts Content-Encoding name ("gzip"...; "" or "identity" for none)
 * under compression_algorithms (empty: every algorithm otelcol knows). */
bool om_http_server_cfg_accepts(const om_http_server_cfg_t *cfg, const char *name);

typedef struct om_http_server om_http_server_t;
/* One request, from its headers until the server no longer needs it (after the handler's
 * `end`). Only valid inside the handler's callbacks and, for an answer owed, until answered. */
typedef struct om_http_req om_http_req_t;

/* Methods, as a bit set for routes (GET includes HEAD, as in Go). */
#define OM_HTTP_GET (1u << 0)
#define OM_HTTP_HEAD (1u << 1)
#define OM_HTTP_POST (1u << 2)
#define OM_HTTP_PUT (1u << 3)
#define OM_HTTP_DELETE (1u << 4)
#define OM_HTTP_PATCH (1u << 5)
#define OM_HTTP_OPTIONS (1u << 6)
#define OM_HTTP_ANY 0u

/* What a route does with its requests. All callbacks run on the loop thread with the route's
 * arg; none may block.
 *   begin     the headers are complete (optional). It may answer at once (a refusal): then
 *             no body or complete follows, and the body is read and dropped (up to the route's
 *             body limit, else the connection is closed after the answer).
 *   body      body bytes as they arrive, decoded from chunked (optional: without it the server
 *             buffers the body, within the limit, for om_http_req_body). It may answer (a
 *             refusal): then the connection closes after the answer.
 *   complete  the whole request has arrived (required, unless begin always answers). Answer
 *             with om_http_respond now or later; until then the connection reads nothing more
 *             (pipelined requests wait in the kernel) and, past write_timeout, is closed.
 *   cancel    the connection went away (or timed out) while an answer is owed (optional):
 *             stop the work if possible. The handler must still call om_http_respond once,
 *             which then only frees the request.
 *   end       the request is over for the server: answered (or the connection closed before
 *             complete); free what the request state holds (optional). Exactly once per
 *             request that reached begin. */
typedef struct om_http_handler {
    void (*begin)(om_http_req_t *req, void *arg);
    void (*body)(om_http_req_t *req, void *arg, const char *data, size_t len);
    void (*complete)(om_http_req_t *req, void *arg);
    void (*cancel)(om_http_req_t *req, void *arg);
    void (*end)(om_http_req_t *req, void *arg);
} om_http_handler_t;

/* gRPC over the server's HTTP/2 (unary calls; h2_session.c). A server with gRPC methods
 * speaks HTTP/2 to a connection that starts with the HTTP/2 preface (h2c, as gRPC clients
 * connect without TLS) or, under TLS, that chose "h2" by ALPN.
 *   call    the request's one message has arrived (om_grpc_call_message); answer with
 *           om_grpc_respond, now or later.
 *   cancel  the client reset the call, its grpc-timeout passed, or the connection went away,
 *           while the answer is owed (optional): stop the work if possible. The handler must
 *           still call om_grpc_respond once, which then only frees the call.
 * Both run on the loop thread with the method's arg. */
typedef struct om_grpc_call om_grpc_call_t;
typedef struct om_grpc_handler {
    void (*call)(om_grpc_call_t *call, void *arg);
    void (*cancel)(om_grpc_call_t *call, void *arg);
} om_grpc_handler_t;

typedef struct om_http_server_opts {
    uv_loop_t *loop;                 /* NULL only for socket-free use (tests, fuzz targets) */
    om_host_t *host;                 /* where start finds cfg->auth's authenticator; may be
                                      * NULL when cfg has no auth (start fails otherwise) */
    const char *log_name;            /* "receiver/otlp"; outlives the server */
    const om_http_server_cfg_t *cfg; /* validated; outlives the server */
    const char *cfg_at;              /* where cfg sits in the component ("protocols::http";
                                      * NULL: at its top), for messages */
    const char *default_endpoint;    /* when cfg->endpoint is NULL */
    size_t req_state_size;           /* bytes of om_http_req_state, zeroed per request */
    size_t max_url;                  /* longest request target (0: 8 KiB); 431 beyond */
    size_t max_header_bytes;         /* request line and headers (0: 64 KiB); 431 beyond */
    bool date_header;                /* add a Date header to every answer, as Go does */
    bool one_request_per_connection; /* answer with Connection: close (health_check) */
    uint64_t shutdown_grace_ms;      /* requests in progress may finish (0: close at once) */
    size_t max_conns;                /* this server's connections (0: the process's budget) */
    /* The listener is bound (at start, or later for a host name resolved asynchronously):
     * name is "HOST:PORT" as bound, port the port. For the component's log line. */
    void (*on_listen)(void *arg, const char *name, int port);
    /* Asked before the server reads from a connection; true: read nothing more from any
     * connection until om_http_server_resume() (receivers' intake backpressure). Time spent
     * held does not count against a connection's timeouts. May be NULL. */
    bool (*hold)(void *arg);
    void *arg;               /* for on_listen and hold */
    uint32_t h2_max_streams; /* HTTP/2 streams a connection may open at once (0: 100) */
} om_http_server_opts_t;

/* No I/O. Copies opts (the pointers in it must outlive the server). Returns 0, OM_ENOMEM or
 * OM_ECONFIG (a bad endpoint). */
int om_http_server_new(const om_http_server_opts_t *opts, om_http_server_t **out, om_err_t *err);
/* Serve pattern: "/v1/traces" that path only, "/api/" the whole subtree (the longest pattern
 * wins; "/api" is redirected to "/api/" when not served itself), as Go's ServeMux. methods:
 * OM_HTTP_* bits (OM_HTTP_ANY: every method); a path served only for other methods is
 * answered 405 with Allow. max_body: the route's body limit (0: max_request_body_size; the
 * smaller of the two applies). h must outlive the server. Before start; returns 0, OM_ENOMEM,
 * or OM_EINVAL for a pattern that does not start with '/' or is served twice. */
int om_http_server_route(om_http_server_t *s, const char *pattern, unsigned methods,
                         const om_http_handler_t *h, void *arg, uint64_t max_body, om_err_t *err);
/* Load the TLS material, bind and listen. A numeric host (and "", "localhost") is bound at
 * once, so "address already in use" is reported here; any other name is resolved
 * asynchronously and bound in the callback (failures are then logged). */
int om_http_server_start(om_http_server_t *s, om_err_t *err);
/* The hold hook turned false: read from held connections again. */
void om_http_server_resume(om_http_server_t *s);
/* Close the listener, end every connection (after the grace period for requests in
 * progress; idle ones at once), then call done once. Safe without start; a second call does
 * nothing. Answers owed by handlers are waited for (cancel is called first). */
void om_http_server_shutdown(om_http_server_t *s, om_done_fn done, void *arg);
/* Only after done, or when start was never called. */
void om_http_server_free(om_http_server_t *s);
/* The bound port (useful with port 0), or -1 before a successful bind. */
int om_http_server_port(const om_http_server_t *s);
/* Open connections (closing ones included), and those in the middle of a request. Tests. */
size_t om_http_server_conn_count(const om_http_server_t *s);
size_t om_http_server_busy_count(const om_http_server_t *s);
/* Connections closed by the limit to make room for new ones, since start. Tests. */
uint64_t om_http_server_evictions(const om_http_server_t *s);
/* Change opts.shutdown_grace_ms (before shutdown). */
void om_http_server_set_shutdown_grace(om_http_server_t *s, uint64_t ms);
/* Tests: how long a closing connection drains input after its last answer (default 2 s). */
void om_http_server_set_linger(om_http_server_t *s, uint64_t ms);

/* Serve the gRPC method at path ("/package.Service/Method"); max_msg: the largest request
 * message taken (as received, compressed or not; RESOURCE_EXHAUSTED beyond). h must outlive
 * the server. Before start; returns 0, OM_ENOMEM, or OM_EINVAL (served twice, no '/'). */
int om_http_server_grpc(om_http_server_t *s, const char *path, const om_grpc_handler_t *h,
                        void *arg, uint64_t max_msg, om_err_t *err);
/* The call, for its handler: valid from `call` until om_grpc_respond. A request header
 * (metadata; names are lower case in HTTP/2), the first if repeated; NULL when absent. */
const char *om_grpc_call_metadata(const om_grpc_call_t *c, const char *name);
size_t om_grpc_call_metadata_count(const om_grpc_call_t *c);
const char *om_grpc_call_metadata_at(const om_grpc_call_t *c, size_t i, const char **value);
/* The message as received (compressed when the flag says so: see grpc-encoding). */
const uint8_t *om_grpc_call_message(const om_grpc_call_t *c, size_t *len, bool *compressed);
const char *om_grpc_call_peer(const om_grpc_call_t *c);
/* opts.req_state_size bytes for the handler, zeroed when the call begins. */
void *om_grpc_call_state(om_grpc_call_t *c);
/* Answer: status 0 (OK) with the reply message (copied; len 0 for an empty one), or a gRPC
 * status code and message (msg is then ignored). Exactly once per call given to `call`. */
void om_grpc_respond(om_grpc_call_t *c, int status, const char *message, const void *msg,
                     size_t len);

/* The request. Names and values are NUL-terminated and live as long as the request. */
unsigned om_http_req_method(const om_http_req_t *r);         /* an OM_HTTP_* bit; 0: other */
const char *om_http_req_method_name(const om_http_req_t *r); /* "POST" */
const char *om_http_req_path(const om_http_req_t *r);        /* percent-decoded, "/" at least */
const char *om_http_req_query(const om_http_req_t *r);       /* raw, without '?'; "" if none */
/* The value of header name (any case), or NULL; *count (may be NULL) gets how many times it
 * was sent (the value is the first one's). Surrounding blanks are removed. */
const char *om_http_req_header(const om_http_req_t *r, const char *name, unsigned *count);
/* True with the declared length when the request has a Content-Length (not chunked). */
bool om_http_req_content_length(const om_http_req_t *r, uint64_t *len);
/* The buffered body (routes without a body callback), once complete; "" and 0 if none. */
const char *om_http_req_body(const om_http_req_t *r, size_t *len);
const char *om_http_req_peer(const om_http_req_t *r); /* "ip:port" */
/* The route's body limit (route max_body and max_request_body_size, the smaller). */
uint64_t om_http_req_max_body(const om_http_req_t *r);
/* opts.req_state_size bytes for the handler, zeroed when the request begins. */
void *om_http_req_state(om_http_req_t *r);
/* Log a warning "request from PEER: ..." at most 10 times a minute per server (a client
 * sending garbage in a loop must not flood the log). */
void om_http_req_warn(om_http_req_t *r, const char *fmt, ...) OM_PRINTF(2, 3);

/* The value of query parameter name in query (application/x-www-form-urlencoded: '+' is a
 * space, %XX escapes decoded), NUL-terminated in out. Returns its length, -1 when absent,
 * OM_ETOOBIG when it does not fit in cap (a NUL included), OM_EINVAL for a bad escape. */
int om_http_query_get(const char *query, const char *name, char *out, size_t cap);

/* Answer the request: status, a Content-Type (NULL: none), more header lines (NULL or
 * "Name: value\r\n"..., written as given: they must come from the program, not from a client),
 * and the body (copied). The server adds response_headers, Date (opts.date_header),
 * Content-Length and Connection, and sends no body to HEAD. Exactly once per request, from
 * begin, body, complete or later; an answer to a request whose connection is gone is dropped.
 * A request answered before its body has arrived ends its connection (see om_http_handler_t). */
void om_http_respond(om_http_req_t *r, int status, const char *content_type, const char *headers,
                     const void *body, size_t len);
/* The same, taking body (om_malloc'd) instead of copying it: for large answers. */
void om_http_respond_take(om_http_req_t *r, int status, const char *content_type,
                          const char *headers, char *body, size_t len);
/* Go's status text ("Request Entity Too Large"); "Error" for codes it does not know. */
const char *om_http_status_text(int status);
/* Now as an HTTP date (RFC 9110 IMF-fixdate), into out (at least 30 bytes). */
void om_http_date(char *out, size_t n);

/* A connection's HTTP without a socket, for fuzz targets and tests: the bytes a client sent go
 * in, the bytes the server would send come out, through exactly the code the server runs
 * (parsing, limits, routing, the handlers, answers). Timeouts, TLS and connection limits are
 * the transport's and not here. */
typedef struct om_http_session om_http_session_t;
/* NULL when out of memory. The server (made with om_http_server_new, never started) must
 * outlive the session. */
om_http_session_t *om_http_session_new(om_http_server_t *s, const char *peer);
/* Feed received bytes; len 0 means the peer closed its side. */
void om_http_session_feed(om_http_session_t *ss, const char *data, size_t len);
/* Take what the server would have sent since the last call (om_malloc'd; NULL when nothing;
 * the caller frees it). */
char *om_http_session_take_output(om_http_session_t *ss, size_t *len);
/* True once the server would close the connection (after sending the output). */
bool om_http_session_done(const om_http_session_t *ss);
/* An answer owed by a handler was given: go on with the input received meanwhile. */
void om_http_session_resume(om_http_session_t *ss);
void om_http_session_free(om_http_session_t *ss);

/* ------------------------------------------------------------------------------------------ */
/* Wire walk: keeping or dropping spans or log records of a batch that is still its wire      */
/* bytes, without decoding it (batch_wire.c). For processors whose decision reads a few       */
/* fields (a name, one attribute): decoding the whole request costs far more than reading     */
/* them from the bytes. A processor tries the wire walk when the batch has its wire bytes     */
/* (b->raw_valid) and falls back to om_batch_walk when its callback cannot decide from the    */
/* bytes (it returns OM_ENOTSUP). Both must give the same verdicts: hold them to each other    */
/* with a differential test.                                                                  */

/* Protobuf wire types. */
#define OM_PB_VARINT 0
#define OM_PB_FIXED64 1
#define OM_PB_LEN 2
#define OM_PB_FIXED32 5

/* One field of a protobuf message. */
typedef struct om_pb_field {
    uint32_t number;
    unsigned wire_type; /* OM_PB_* */
    uint64_t value;     /* VARINT, FIXED64, FIXED32: the value (bits above 64 of a 10-byte varint
                         * are lost, as protobuf-c loses them; sign is the caller's business);
                         * LEN: the length */
    /* LEN: the payload; the others: the value's bytes (a varint's as written). len bytes. */
    const uint8_t *data;
    size_t len;
} om_pb_field_t;

/* Read the field at *pos (before end) into *f and move *pos past it. Returns 1, 0 at the end
 * of the message, OM_EINVAL when the bytes are no field as protobuf-c reads them (a truncated
 * varint or payload, a one-byte tag of field number 0, a group). A longer tag spelling field
 * number 0 (0x80 0x00...) is field 0, which protobuf-c skips as unknown. Any thread; no
 * allocation. */
int om__pb_next_general(const uint8_t **pos, const uint8_t *end, om_pb_field_t *f);
/* Inline: the wire walks of the processors and exporters read every field with it, and most
 * fields have a one-byte tag and a one-byte length or varint, a two-byte length, or 64 bits
 * (times, doubles), read here without a call. The rest goes to om__pb_next_general, which reads
 * every form (the unit test and the wire fuzz target hold the two to the same answers). */
static inline int om_pb_next(const uint8_t **pos, const uint8_t *end, om_pb_field_t *f)
{
    const uint8_t *p = *pos;
    if (end - p >= 2 && p[0] >= 0x08 && p[0] < 0x80) { /* a one-byte tag, of field 1 to 15 */
        uint32_t num = p[0] >> 3;
        unsigned wt = p[0] & 7;
        size_t n;
        if (wt == OM_PB_LEN) { /* most fields: strings, bytes, messages */
            if (p[1] < 0x80 && (n = p[1]) <= (size_t)(end - p - 2)) {
                *f = (om_pb_field_t){num, wt, n, p + 2, n};
                *pos = p + 2 + n;
                return 1;
            }
            if (p[1] >= 0x80 && end - p >= 3 && p[2] < 0x80 &&
                (n = (size_t)(p[1] & 0x7f) | (size_t)p[2] << 7) <= (size_t)(end - p - 3)) {
                *f = (om_pb_field_t){num, wt, n, p + 3, n}; /* 128 bytes to 16 KiB: a span */
                *pos = p + 3 + n;
                return 1;
            }
        } else if (wt == OM_PB_FIXED64) {
            if (end - p >= 9) {
                *f = (om_pb_field_t){num, wt, om_le64_load(p + 1), p + 1, 8};
                *pos = p + 9;
                return 1;
            }
        } else if (wt == OM_PB_VARINT && p[1] < 0x80) {
            *f = (om_pb_field_t){num, wt, p[1], p + 1, 1};
            *pos = p + 2;
            return 1;
        }
    }
    return om__pb_next_general(pos, end, f);
}

/* The bytes of v as a protobuf varint (1 to 10): from its highest bit, not a loop (the
 * encoders size every field before writing it). */
static inline size_t om_pb_varint_len(uint64_t v)
{
    return (size_t)(63 - __builtin_clzll(v | 1)) / 7 + 1;
}
/* Writes v as a protobuf varint at w, which has room for om_pb_varint_len(v) bytes; returns
 * the byte after it. */
static inline uint8_t *om_pb_put_varint(uint8_t *w, uint64_t v)
{
    while (v >= 0x80) {
        *w++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *w++ = (uint8_t)v;
    return w;
}

/* An item the wire walk stands on: its message bytes (Span, LogRecord), and those of the
 * Resource and InstrumentationScope of its entries (NULL, 0 when the entry has none). The
 * pointers are valid during the callback only. Duplicates of a singular message field (which
 * protobuf-c would merge) never reach a wire walk: the receiver decodes such requests at once
 * (see om_batch_decode_proto), so a batch with wire bytes and no msg has none. */
typedef struct om_wire_item {
    const uint8_t *item;
    size_t item_len;
    const uint8_t *resource;
    size_t resource_len;
    const uint8_t *scope;
    size_t scope_len;
} om_wire_item_t;

/* Called for each item: OM_KEEP, OM_DROP, or a negative code that stops the walk (nothing is
 * dropped then); OM_ENOTSUP by convention means "decide on the decoded batch instead". */
typedef int (*om_wire_walk_fn)(const om_wire_item_t *it, void *arg);

/* Walk the spans (level OM_LEVEL_SPAN of a traces batch) or log records (OM_LEVEL_LOG of a
 * logs batch) of *b from its wire bytes, in request order. If nothing is dropped, *b is left
 * exactly as it was. Else *b is replaced by a new batch of wire bytes only (the old reference
 * released) holding every kept byte as it came, without the dropped items and without the
 * scope and resource entries the drops emptied (as om_batch_walk removes them), with its
 * counts set; its arena has the cap the old batch's first arena had. Works on shared batches
 * too (the others keep the old one). Returns how many items were dropped (at most INT_MAX),
 * the callback's negative code, OM_ENOTSUP when the batch has no wire bytes or the level is
 * not one of those two (err says which), OM_EINVAL for bytes that are no request, or
 * OM_ENOMEM / OM_ETOOBIG. Loop thread; cost: reading the containers' fields and each item's
 * tag, one callback per item, and copying the kept bytes once. */
int om_batch_wire_walk(om_batch_t **b, om_level_t level, om_wire_walk_fn fn, void *arg,
                       om_err_t *err);
/* Prometheus (prom.c, prom_text.c): the one OTLP -> Prometheus translation that the          */
/* `prometheusremotewrite` and `prometheus` exporters share (metric names with unit and type   */
/* suffixes, label names, attribute values as label values, resource -> job / instance /       */
/* target_info, types and temporalities), and the exposition writer (text format 0.0.4 and     */
/* OpenMetrics 1.0) that the pull exporter and the internal telemetry endpoint use. The rules  */
/* and where each comes from (OpenTelemetry's "Prometheus and OpenMetrics compatibility",      */
/* otelcol-contrib's translators, prometheus/otlptranslator) are in prom.c's opening comment.  */
/* Everything here is pure: any thread, no I/O, no global state.                               */

/* The Prometheus type of a metric family. */
typedef enum {
    OM_PROM_UNTYPED = 0,
    OM_PROM_COUNTER,
    OM_PROM_GAUGE,
    OM_PROM_HISTOGRAM, /* explicit buckets, or an exponential histogram */
    OM_PROM_SUMMARY,
} om_prom_type_t;

/* How an OTLP metric translates. */
typedef struct om_prom_class {
    om_prom_type_t type;
    bool delta;       /* delta temporality: accumulated (pull) or dropped (remote-write) */
    bool exponential; /* an exponential histogram (a native histogram in remote-write) */
    bool monotonic;   /* a monotonic sum: the name gets _total */
    bool otlp_gauge;  /* an OTLP Gauge: unit "1" gives _ratio */
} om_prom_class_t;

/* Classify m. Returns 0, or OM_ENOTSUP for what no Prometheus exporter of otelcol translates:
 * no data, a sum or histogram with unspecified temporality, a non-monotonic delta sum (the
 * spec and otelcol's accumulator drop these). */
int om_prom_classify(const om_metric_t *m, om_prom_class_t *c);

/* The family name of a metric (without _bucket / _sum / _count), into out (appended).
 * With suffixes: the name split at characters other than [a-zA-Z0-9:], the unit's words
 * appended unless already among the name's words ("By" -> bytes, "s" -> seconds, "By/s" ->
 * bytes_per_second, "{...}" units dropped), _total for monotonic sums, _ratio for gauges of
 * unit "1", ns_ in front. Without: invalid characters to '_' only. A leading digit gets '_'.
 * Returns 0, or OM_EINVAL when nothing valid is left (the metric is dropped, as otelcol
 * does). ns may be NULL or "". */
int om_prom_metric_name(const char *ns, bool suffixes, const char *name, const char *unit,
                        const om_prom_class_t *c, om_strbuf_t *out);

/* A label name from an attribute key: characters other than [a-zA-Z0-9] to '_', runs of
 * them to one '_' ("__x__" keeps its underscores), "key_" in front of a leading digit.
 * Writes at most cap - 1 bytes and a NUL; returns the length, or 0 when nothing valid is
 * left (empty, only underscores: the attribute is dropped) or cap is too small (len + 5). */
size_t om_prom_label_name(const char *key, size_t len, char *out, size_t cap);

/* An attribute value as a label value, as otelcol's pcommon Value.AsString: strings as they
 * are, ints in decimal, doubles as JavaScript prints them, bools, bytes in base64, arrays and
 * maps as JSON; appended to out. */
void om_prom_value_string(const om_anyvalue_t *v, om_strbuf_t *out);

/* A label set under construction: a reusable buffer, so that building the labels of each
 * point allocates nothing once it has grown. */
typedef struct om_prom_labels {
    om_label_t *v; /* after om_prom_labels_finish: n labels sorted by name, into text */
    size_t n, cap;
    struct om__prom_lref *refs; /* internal: offsets into text while building */
    size_t cap_refs;
    om_strbuf_t text;
    om_strbuf_t scratch;
} om_prom_labels_t;

void om_prom_labels_init(om_prom_labels_t *l);
void om_prom_labels_free(om_prom_labels_t *l);
void om_prom_labels_reset(om_prom_labels_t *l);
/* Add attributes as labels (names through om_prom_label_name, prefix such as "otel_scope_"
 * or NULL in front of the key first). Attributes whose names clash after sanitising are one
 * label whose value joins theirs with ';', in the order of their original keys (a value equal
 * to the previous one is not repeated, as otelcol's remote-write translator). extra / n_extra:
 * more attributes (the resource's, for resource_to_telemetry_conversion) taken only where kv
 * has no attribute of the same key. Names that clash with labels added before are joined too.
 * Returns 0 or OM_ENOMEM. */
int om_prom_labels_add_attrs(om_prom_labels_t *l, const char *prefix, om_keyvalue_t *const *kv,
                             size_t n, om_keyvalue_t *const *extra, size_t n_extra);
/* Set one label; replace: an existing label of that name takes the new value, else the old
 * value stays. An empty value removes the label (replace) or does nothing. 0 or OM_ENOMEM. */
int om_prom_labels_set(om_prom_labels_t *l, const char *name, const char *value, bool replace);
/* Sort by name and fill v (valid until the next change). */
void om_prom_labels_finish(om_prom_labels_t *l);

/* The resource's job (service.namespace/service.name, or service.name) and instance
 * (service.instance.id) label values, appended to job / instance; each returns whether the
 * resource has it. */
bool om_prom_job(const om_resource_t *r, om_strbuf_t *job);
bool om_prom_instance(const om_resource_t *r, om_strbuf_t *instance);
/* Whether a resource attribute is one job and instance come from (not on target_info). */
bool om_prom_identifying_attr(const char *key);

/* Numbers as Go's strconv.FormatFloat(v, 'g', -1, 64) (what Prometheus' text format writes:
 * "0.25", "1e+06", "+Inf", "NaN") and (v, 'f', -1, 64) (remote-write's "le" values:
 * "1000000"); buf of at least OM_PROM_NUM_MAX bytes, NUL-terminated; returns the length. */
#define OM_PROM_NUM_MAX 352
size_t om_prom_format_g(double v, char *buf);
size_t om_prom_format_f(double v, char *buf);

/* The exposition formats. */
typedef enum {
    OM_PROM_FMT_TEXT = 0,    /* text/plain; version=0.0.4 */
    OM_PROM_FMT_OPENMETRICS, /* application/openmetrics-text; version=1.0.0 */
} om_prom_format_t;
#define OM_PROM_TEXT_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define OM_PROM_OPENMETRICS_CONTENT_TYPE                                                           \
    "application/openmetrics-text; version=1.0.0; charset=utf-8"
/* The format to answer a scrape with, from its Accept header (NULL: text): OpenMetrics when
 * allowed and the scraper lists application/openmetrics-text with a higher quality than
 * text/plain, as client_golang's negotiation. */
om_prom_format_t om_prom_negotiate(const char *accept, bool allow_openmetrics);

/* Label text "k1=\"v1\",k2=\"v2\"" (escaped; no braces) for om_prom_sample_t.labels, appended
 * to out: a pull exporter renders a series' labels once and reuses the text each scrape. */
void om_prom_render_labels(const om_label_t *l, size_t n, om_strbuf_t *out);

/* A family's header: # HELP and # TYPE (OpenMetrics: the name without _total for counters).
 * help may be NULL. */
void om_prom_write_family(om_strbuf_t *out, om_prom_format_t f, const char *name,
                          om_prom_type_t type, const char *help);

/* An exemplar (OpenMetrics only): its labels rendered as for om_prom_render_labels. */
typedef struct om_prom_exemplar {
    const char *labels;
    size_t labels_len;
    double value;
    bool has_ts;
    int64_t ts_ms;
} om_prom_exemplar_t;

/* One sample line: name suffix{labels,extra_key="extra_value"} value [timestamp]. */
typedef struct om_prom_sample {
    const char *name;
    size_t name_len;
    const char *suffix; /* "_bucket", "_sum", "_count", "_total" (OpenMetrics), or NULL */
    const char *labels; /* rendered label text, or NULL */
    size_t labels_len;
    const char *extra_key, *extra_value; /* "le" / "quantile", or NULL */
    double value;
    bool has_ts; /* send_timestamps */
    int64_t ts_ms;
    const om_prom_exemplar_t *exemplar; /* written in OpenMetrics only; may be NULL */
} om_prom_sample_t;
void om_prom_write_sample(om_strbuf_t *out, om_prom_format_t f, const om_prom_sample_t *s);
/* The end of an exposition ("# EOF" in OpenMetrics; nothing in text). */
void om_prom_write_eof(om_strbuf_t *out, om_prom_format_t f);

/* ------------------------------------------------------------------------------------------ */
/* Compression service: whole-buffer gzip / zlib / zstd for exporters, bounded whole-buffer   */
/* decompression for receivers, and otelcol's compression_params (issue 14).                  */

/* gzip and zlib go through libdeflate (whole buffers, several times faster than zlib at the
 * same ratio: bench/README.md has the measurements), or ISA-L's igzip when the adaptive
 * default level picks it, zstd through libzstd. Levels are
 * otelcol's (configcompression.CompressionParams.Level): for gzip, zlib and deflate -1
 * (default), -2 (Huffman only, done with zlib), 0 (not set: the default) and 1..9; zstd takes
 * any level (libzstd clamps it; 0: its default, 3); other algorithms only 0. */
typedef enum {
    OM_COMP_NONE = 0,
    OM_COMP_GZIP,
    OM_COMP_ZLIB, /* RFC 1950: otelcol's "zlib", and what HTTP's "deflate" carries */
    OM_COMP_ZSTD,
} om_comp_t;

/* gzip and zlib when the config sets no level (-1 or 0): an exporter's om_compressors_t
 * adapts the level to its own data (see there); a compressor made alone with
 * om_compressor_new uses OM_COMP_DEFAULT_LEVEL, libdeflate's 5, the cheapest whose output
 * stays within 5% of zlib's at otelcol's default (Go's DefaultCompression, level 6) on both
 * the load generator's and JS-SDK-shaped spans, at less than half of zlib's CPU
 * (bench/README.md has the table). Level 1 costs half as much again and is 2% larger on the
 * load generator's data but 10-12% on the JS SDK's: hence the adaptive choice. */
#define OM_COMP_DEFAULT_LEVEL 5

/* compression_params: {level: N}, as otelcol spells it. Embed it in a component's config with
 * OM_COMPRESSION_PARAMS_FIELD and check it with om_compression_params_validate. */
typedef struct om_compression_params {
    int64_t level; /* 0: not set */
} om_compression_params_t;
extern const om_field_t om_compression_params_fields[];
#define OM_COMPRESSION_PARAMS_FIELD(cfg_type, member)                                              \
    {                                                                                              \
        .key = "compression_params", .type = OM_F_SECTION, .offset = offsetof(cfg_type, member),   \
        .fields = om_compression_params_fields,                                                    \
        .help = "level: the compression level (gzip/zlib/deflate -1, -2, 1..9; zstd any)"          \
    }

/* Config validation: whether p fits the algorithm named as in otelcol's `compression` key
 * ("gzip", "zlib", "deflate", "zstd", "snappy", "lz4", "none", ""...). An uncompressed type
 * accepts anything, as otelcol does. The error (OM_ECONFIG) names compression_params::level
 * under `at` ("" or NULL: the component's top level) with otelcol's wording: unsupported
 * parameters {Level:N} for compression type "T". No I/O, any thread. */
int om_compression_params_validate(const char *type, const om_compression_params_t *p,
                                   const char *at, om_err_t *err);

/* A compressor: one algorithm at one level, with its state kept between uses (allocating
 * libdeflate's is most of the cost of compressing a small request). One thread at a time;
 * ownership may move between threads with a job (see the worker section). */
typedef struct om_compressor om_compressor_t;
/* Any thread. alg is not OM_COMP_NONE; level as in the config (validated). Returns 0,
 * OM_ENOMEM, or OM_EINVAL for a level the algorithm does not take. */
int om_compressor_new(om_comp_t alg, int level, om_compressor_t **out);
void om_compressor_free(om_compressor_t *c);
/* The owner's thread. Compresses n bytes at in into a new om_malloc'd buffer *out of *out_len
 * bytes (the caller frees it). Returns 0, OM_ENOMEM, or OM_ETOOBIG when n is over 2 GiB. */
int om_compressor_run(om_compressor_t *c, const uint8_t *in, size_t n, uint8_t **out,
                      size_t *out_len);
/* The same over n_p pieces whose bytes end to end are the input (a batch's requests as they
 * arrived, om_batch_t.raw). The adaptive level's ISA-L candidate streams over the pieces; the
 * other levels and algorithms get them copied into one buffer first. */
int om_compressor_run_pieces(om_compressor_t *c, const om_raw_seg_t *p, size_t n_p, uint8_t **out,
                             size_t *out_len);

/* Idle compressors of one kind, kept for reuse by one component, on the loop thread: get one
 * before handing work to a worker (it travels with the job), put it back in the job's done.
 * At most `keep` idle ones are kept; the rest are freed.
 * Adaptive level: for gzip and zlib with the level not set (0 or -1), the set's compressors
 * share one adaptive state: each batch uses the cheapest of ISA-L's igzip 2 and libdeflate 1,
 * 3, 5, 6 whose output, measured on this set's recent batches, is within 5% of zlib 6's
 * (otelcol's default). The first 4 batches and every 32nd are also compressed at libdeflate
 * 6 (the reference; zlib 6's size is estimated from it by their ratio, measured with zlib 6
 * itself on every 8th sample) and, while probing, at the next cheaper candidate; such a
 * sample sends the smallest output. A batch over 256 KiB is sent at the current candidate
 * and its sample measures 256 KiB of it (four pieces spread from its start to its end). One
 * sample above 105% of zlib 6 moves to the stronger candidate (and samples the next batch);
 * two in a row at most 104.5% move to the cheaper one;
 * failed probes back off. It starts at libdeflate 5. Any worker thread may run the set's
 * compressors at once (atomics, and a lock on sample batches only; ISA-L's state is each
 * compressor's own). An explicit level (1..9, -2) is used as is (libdeflate; zlib for -2),
 * never adapted. */
typedef struct om_compressors om_compressors_t;
/* Loop thread. NULL when out of memory. */
om_compressors_t *om_compressors_new(om_comp_t alg, int level, unsigned keep);
/* Loop thread. An idle compressor, or a new one; NULL when out of memory. The caller owns it
 * until om_compressors_put. */
om_compressor_t *om_compressors_get(om_compressors_t *cs);
/* Loop thread. Takes c back (NULL does nothing). */
void om_compressors_put(om_compressors_t *cs, om_compressor_t *c);
/* Any thread. The level the set's next batch is compressed at: the adaptive set's current
 * choice (it may change at any moment), else the configured level (zstd's 0 stays 0). */
int om_compressors_level(const om_compressors_t *cs);
/* Any thread. The library of om_compressors_level's level: "isa-l" (Intel ISA-L's igzip,
 * levels 0..3, a candidate of the adaptive level only), "libdeflate", "zlib" (Huffman only,
 * -2) or "zstd". A static string. */
const char *om_compressors_lib(const om_compressors_t *cs);
/* Any thread. How many sample batches the adaptive level measured, and how many times it
 * changed level (both 0 for a fixed set). */
void om_compressors_stats(om_compressors_t *cs, uint64_t *samples, uint64_t *switches);
/* Any thread. The bytes the adaptive level's samples measured: a batch's size, or at most
 * 256 KiB of a larger one (pieces spread over it). 0 for a fixed set. */
uint64_t om_compressors_sampled_bytes(om_compressors_t *cs);
/* Loop thread, once every compressor got from it was put back (or freed). NULL does nothing. */
void om_compressors_free(om_compressors_t *cs);

/* Decompress a whole gzip (concatenated members too), zlib or zstd (concatenated frames too)
 * body of n bytes into a new om_malloc'd buffer *out of *out_len bytes (with a NUL after them,
 * not counted), never holding more than max bytes of output: a compression bomb costs at most
 * max bytes of memory and about twice that of work (zstd frames that declare their sizes: the
 * sum is checked before any work; others stream with a window of at most max(8 MiB, max)).
 * An empty input is an empty body. Returns 0, OM_ETOOBIG (the output would pass max),
 * OM_EINVAL (corrupt or truncated input), OM_ENOMEM; err gets a message. Any thread; blocks
 * only for the CPU work. */
int om_decompress(om_comp_t alg, const uint8_t *in, size_t n, size_t max, uint8_t **out,
                  size_t *out_len, om_err_t *err);

/* ------------------------------------------------------------------------------------------ */
/* Libraries loaded on first use (src/dl.c). A library that only some configs need (libcurl   */
/* for HTTP clients, ISA-L for gzip, SQLite and MariaDB's client for the alarm store) is not  */
/* linked: at start-up the loader would map it and relocate it for every collector, which    */
/* costs resident memory and start-up time whether or not the config uses it (issue 14's     */
/* idle target). Its user describes a table of function pointers (each member declared with  */
/* __typeof__ of the library's own declaration, so the types are the header's) and calls      */
/* om_dl_load before the first call through it. deploy/make-rootfs copies these libraries   */
/* into the image by name, since ldd cannot see them.                                         */

typedef struct om_dl_sym {
    const char *name; /* the symbol, e.g. "sqlite3_open_v2" */
    size_t offset;    /* of its function pointer in the table */
} om_dl_sym_t;
#define OM_DL_SYM(table_type, member, symbol)                                                      \
    {                                                                                              \
        (symbol), offsetof(table_type, member)                                                     \
    }

/* One library. Define it statically with the first five members; the rest is the loader's
 * (zero-initialised). */
typedef struct om_dl_lib {
    const char *soname;  /* "libsqlite3.so.0" */
    const char *package; /* the Debian package that has it, for the message */
    const om_dl_sym_t *syms;
    size_t n_syms;
    void *table;      /* filled by om_dl_load; read-only afterwards (any thread) */
    atomic_int state; /* 0 not tried, 1 loaded, -1 failed */
    char failure[240];
} om_dl_lib_t;

/* Loads the library and fills its table, once; later calls return the first result (cheaply
 * once loaded). Any thread. Returns 0, or OM_ENOTSUP with the reason in err (the library or a
 * symbol missing, naming the package). It may block reading the library from disk, once.
 * The library is never unloaded: its functions may be running on any thread until exit. */
int om_dl_load(om_dl_lib_t *lib, om_err_t *err);

/* ------------------------------------------------------------------------------------------ */
/* gRPC completion queue: one queue and one thread for the process (src/grpc_cq.c). gRPC 1.51  */
/* polls every socket of the process from whichever thread waits on a queue, so components    */
/* with a queue and a thread each woke each other for every event of the other's sockets.     */
/* Components that use gRPC (the OTLP receiver's server, the otlp exporter's channel) start    */
/* their operations on the host's queue (host->grpc) with an om_grpc_tag_t as the tag; its     */
/* done runs on the queue's thread, which usually posts to the component's om_mailbox. The    */
/* thread starts with the first user and stops with the last: a config without gRPC has none. */
/* Shutdown order: see grpc_cq.c.                                                             */

struct grpc_completion_queue; /* <grpc/grpc.h> */
typedef struct om_grpc om_grpc_t;

typedef struct om_grpc_tag om_grpc_tag_t;
struct om_grpc_tag {
    /* The queue's thread, once per operation started with this tag, with the event's success
     * flag. It must not block for long (every gRPC socket of the process waits meanwhile) and
     * must not call into this service. The tag is the user's; gRPC owns it from the start of
     * the operation until done is called. Before starting an operation write
     * OM_TSAN_RELEASE(tag) (the service acquires it before done). */
    void (*done)(om_grpc_tag_t *t, bool ok);
};

/* Loop thread (host init). No thread, no queue yet. NULL when out of memory. */
om_grpc_t *om_grpc_new(void);
/* Loop thread (host close), after every user released it. NULL does nothing. */
void om_grpc_free(om_grpc_t *g);
/* Loop thread. Become a user: *cq is the process's queue (made, with its thread, for the first
 * user), valid until this user's om_grpc_release. Returns 0, OM_ENOTSUP (g NULL: a host made
 * by hand), OM_EIO (no thread). */
int om_grpc_acquire(om_grpc_t *g, struct grpc_completion_queue **cq, om_err_t *err);
/* Loop thread, once every tag this user handed gRPC has come back (its done ran) and its gRPC
 * objects that reference the queue (servers, channels, calls) are destroyed. Waits for a done
 * callback that is running now to return (so the user may then free what its callbacks touch,
 * e.g. close its mailbox); the last user's release shuts the queue down and joins the thread
 * (short waits: the queue is empty). */
void om_grpc_release(om_grpc_t *g);
/* Loop thread: waits until no done callback is running (what om_grpc_release does first). */
void om_grpc_fence(om_grpc_t *g);
/* Loop thread: whether the queue and its thread exist now (some user holds it). */
bool om_grpc_running(const om_grpc_t *g);

/* ---- gRPC: operations whose completion comes back on the loop (issue 14, branch loopcost) ---- */
struct grpc_call; /* <grpc/grpc.h> */
struct grpc_op;
/* Loop thread: grpc_call_start_batch(call, ops, n, tag) on the user's queue cq, except that a
 * completion that happens during the call itself (a server's reply, written at once) runs its
 * tag's done here, under the same lock and with the same arguments as the queue's thread would
 * run it, instead of being queued for that thread. Queued from this thread, it had to wake the
 * queue's thread (gRPC's kick: an eventfd write; on a shared core the woken thread preempted
 * the loop twice, the second time for the queue's mutex the loop still held). So done may run
 * on the loop thread before this returns: it must not assume the queue's thread (posting to a
 * mailbox is fine). Returns grpc_call_start_batch's grpc_call_error. */
int om_grpc_start_batch(om_grpc_t *g, struct grpc_completion_queue *cq, struct grpc_call *call,
                        const struct grpc_op *ops, size_t n, om_grpc_tag_t *tag);

#endif
