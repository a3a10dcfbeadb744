/* spanmetrics.h: the spanmetrics connector's private declarations (this folder only).
 *
 * spanmetrics_config.c   the settings (otelcol-contrib's keys and defaults) and their rules
 * spanmetrics_agg.c      the aggregate: resources, series tables, key encoding, histograms
 * spanmetrics_part.c     a batch's partial result: recorded by a scan, merged into the aggregate
 * spanmetrics_build.c    the metrics batch made from the aggregate at each flush
 * spanmetrics.c          the factory, the flush timer, consume, the jobs on the worker pool
 *
 * Threads: a scan (spanmetrics_wire.c, the struct path in spanmetrics_agg.c) runs on a worker
 * thread with a scanner (an spm_t made by conn_spanmetrics_scanner_init: its own scratch, the
 * aggregate's settings borrowed read-only) and records into a partial result (spm_part_t)
 * that the job owns; the merge into the aggregate, the flush and everything else run on the
 * loop thread. */
#ifndef OM_SPANMETRICS_H
#define OM_SPANMETRICS_H

#include "om.h"

/* ---- settings ---------------------------------------------------------------------------- */

typedef struct spm_dim_cfg {
    char *name;
    char *def; /* `default`; NULL: a span without the attribute has no such dimension */
} spm_dim_cfg_t;

enum { SPM_CUMULATIVE = 0, SPM_DELTA = 1 };
enum { SPM_UNIT_MS = 0, SPM_UNIT_S = 1 };

typedef struct conn_spanmetrics_cfg {
    om_seclist_t dimensions;       /* spm_dim_cfg_t: on both metrics */
    om_seclist_t calls_dimensions; /* spm_dim_cfg_t: on calls only */
    om_strlist_t exclude_dimensions;
    int64_t resource_metrics_cache_size;
    om_strlist_t resource_metrics_key_attributes;
    int aggregation_temporality; /* SPM_CUMULATIVE, SPM_DELTA */
    struct {
        bool disable;
        int unit; /* SPM_UNIT_MS, SPM_UNIT_S */
        struct {
            om_strlist_t buckets; /* durations */
        } explicit_;
        bool explicit_present;
        struct {
            int64_t max_size;
        } exponential;
        bool exponential_present;
        om_seclist_t dimensions; /* spm_dim_cfg_t: on duration only */
    } histogram;
    int64_t metrics_flush_interval; /* ns */
    int64_t metrics_expiration;     /* ns; 0: never */
    int64_t metric_timestamp_cache_size;
    char *namespace_;
    struct {
        bool enabled;
        int64_t max_per_data_point;
    } exemplars;
    struct {
        bool enabled;
        om_seclist_t dimensions;
    } events;
    om_strlist_t include_instrumentation_scope;
    int64_t aggregation_cardinality_limit; /* 0: none (but see SPM_MAX_SERIES) */
} conn_spanmetrics_cfg_t;

extern const om_field_t conn_spanmetrics_fields[];
int conn_spanmetrics_cfg_validate(const void *cfg, om_err_t *err);
/* The explicit bucket bounds in the configured unit (otelcol's defaults when none are set):
 * om_malloc'd, *n of them. NULL when out of memory. */
double *conn_spanmetrics_bounds(const conn_spanmetrics_cfg_t *cfg, size_t *n);

/* ---- the aggregate ----------------------------------------------------------------------- */

/* A growing byte buffer; appends after a failed allocation are ignored and `failed` stays. */
typedef struct spm_buf {
    uint8_t *p;
    size_t len, cap;
    bool failed;
} spm_buf_t;

/* Series of all resources together, beyond which new series go to their resource's overflow
 * series: otelmon's bound on memory when aggregation_cardinality_limit is 0 (otelcol's
 * default, no limit). About 200 bytes per series with the default buckets. */
#define SPM_MAX_SERIES 100000
#define SPM_EXPO_MAX_SCALE 20
#define SPM_EXPO_MIN_SCALE (-10)

/* Attribute ids in a series key: the four defaults, the scope's name and version, the
 * overflow marker, then dimensions by their index in spm_t.dims. */
enum {
    SPM_ATTR_SERVICE = 1,
    SPM_ATTR_SPAN_NAME,
    SPM_ATTR_SPAN_KIND,
    SPM_ATTR_STATUS,
    SPM_ATTR_SCOPE_NAME,
    SPM_ATTR_SCOPE_VERSION,
    SPM_ATTR_OVERFLOW,
    SPM_ATTR_DIM0 = 16,
};
#define SPM_MAX_DIMS 200

typedef struct spm_exemplar {
    uint8_t trace_id[16], span_id[8];
    double value;
} spm_exemplar_t;

/* An exponential histogram of positive values (and zeros), base 2^(2^-scale), at most
 * max_size buckets: a value that would need more lowers the scale, merging buckets. */
typedef struct spm_expo {
    int32_t scale;
    int32_t offset;   /* index of counts[0] */
    uint32_t len;     /* buckets in use */
    uint32_t cap;     /* allocated */
    uint64_t *counts; /* om_malloc'd */
    uint64_t zero_count;
    uint64_t total; /* values recorded, zeros included */
    double min, max;
} spm_expo_t;

/* One series: an attribute set (its key) and what was counted for it. A table counts calls
 * (sum), durations (hist) or both (when both metrics have the same dimensions). */
typedef struct spm_series {
    uint64_t hash;
    uint8_t *key; /* the attribute set, encoded (spm_key_*); om_malloc'd with the series */
    uint32_t key_len;
    bool first;   /* cumulative sums: not emitted yet (otelcol emits 0 first) */
    bool touched; /* something counted since the last flush */
    uint64_t start_ns, last_seen_ns;
    uint64_t calls;
    uint64_t count; /* durations observed */
    /* Their sum in ns, exact (so the same whatever batches the spans came in), plus what did
     * not fit in 64 bits (only absurd durations get there): see conn_spanmetrics_sum. */
    uint64_t sum_ns;
    double sum_over_ns;
    uint64_t *buckets; /* explicit: n_bounds + 1 (in the same block) */
    spm_expo_t expo;
    spm_exemplar_t *ex_calls, *ex_hist; /* max_per_data_point each, lazily */
    uint32_t n_ex_calls, n_ex_hist;
    struct spm_table *table;                  /* the table it is in */
    struct spm_series *idle_prev, *idle_next; /* delta: the idle list; else a scratch link */
    bool idle;
} spm_series_t;

/* Open addressing, linear probing, power-of-two capacity, no tombstones (deletion shifts). */
typedef struct spm_table spm_table_t;
struct spm_table {
    spm_series_t **slots;
    size_t cap, n;
    size_t active;    /* delta: series touched since the last flush */
    bool sums, hists; /* what its series count */
    spm_series_t *overflow;
};

typedef struct spm_resource {
    uint64_t hash;
    uint8_t *key; /* the key attributes, sorted, encoded; om_malloc'd */
    uint32_t key_len;
    uint8_t *attrs; /* all attributes of the first resource seen, encoded; om_malloc'd */
    uint32_t attrs_len;
    spm_table_t calls, hist; /* hist unused when shared (spm_t.shared) */
    struct spm_resource *lru_prev, *lru_next;
    struct spm_resource *next_in_bucket;
} spm_resource_t;

/* An attribute value, decoded (v) or as its AnyValue message on the wire (wire: w, wn; a
 * value found by spanmetrics_wire.c, which checked that it decodes plainly). Neither: the
 * KeyValue has no value. */
typedef struct spm_val {
    const om_anyvalue_t *v;
    const uint8_t *w;
    size_t wn;
    bool wire;
} spm_val_t;

/* An attribute: its key as protobuf-c would give it (up to a NUL), and its value. */
typedef struct spm_kv {
    const char *k;
    size_t kn;
    spm_val_t val;
} spm_kv_t;

/* What counting reads of a span, from its struct or its wire bytes. Strings are as protobuf-c
 * would give them (up to a NUL); ids of any length (only 16 and 8 bytes are used). */
typedef struct spm_span {
    const char *name;
    size_t name_len;
    int32_t kind, status;
    uint64_t start, end;
    const uint8_t *trace_id, *span_id;
    size_t trace_id_len, span_id_len;
    const spm_kv_t *attrs; /* filled only when there are dimensions */
    size_t n_attrs;
    size_t scope, attrs_at; /* spanmetrics_wire.c's bookkeeping */
} spm_span_t;

/* A scope entry's scope as spanmetrics_wire.c read it. */
typedef struct spm_wscope {
    bool has;
    const char *name, *version;
    size_t name_len, version_len;
} spm_wscope_t;

/* What the spans of one scope entry share. */
typedef struct spm_ctx {
    const char *service;
    size_t service_len;
    const char *scope_name, *scope_version; /* NULL: the scope is not included */
    size_t scope_name_len, scope_version_len;
} spm_ctx_t;

/* ---- a batch's partial result (spanmetrics_part.c) ----------------------------------------
 *
 * What a scan of one batch found, one entry per distinct series key of each resource entry,
 * so that merging it into the aggregate on the loop costs per key, not per span, and gives
 * what counting the spans one by one into the aggregate would (see conn_spanmetrics_merge). * Owned
 * by a job (spm_job_t in spanmetrics.c), or by spm_t.own for conn_spanmetrics_add: the worker's
 * from submit until the job's done, when the loop merges it; nothing in it points into the batch
 * (keys and attributes are copied), so the batch goes back before the merge. */

/* An exemplar of a part: of entry ents[entry], for calls (which 0) or durations (1). A part
 * holds them in span order, so that the overflow series, which takes the first ones of all the
 * entries that land in it, gets those of the first spans. */
typedef struct spm_pex {
    spm_exemplar_t ex;
    uint32_t entry;
    uint8_t which;
} spm_pex_t;
/* One series key of one resource segment, and what was counted for it. */
typedef struct spm_pentry {
    uint64_t hash;
    uint32_t seg;             /* its segment's index */
    uint32_t key_at, key_len; /* the key: part.bytes.p + key_at */
    uint8_t tab;              /* 0: the resource's calls table, 1: its hist table */
    spm_series_t *merged;     /* the merge's (loop): the series it went to, during the merge */
    uint64_t n;               /* spans counted into it */
    uint64_t calls, count, sum_ns;
    double sum_over_ns;
    spm_expo_t expo;                /* exponential histograms; counts om_malloc'd (part's) */
    uint32_t n_ex_calls, n_ex_hist; /* its exemplars in part.ex, at most max_per_data_point */
} spm_pentry_t;

/* A run of resource entries with the same resource key (in request order; consecutive
 * entries of one resource share a segment, which changes nothing: the aggregate sees the
 * resource once either way). */
typedef struct spm_pseg {
    uint64_t hash;
    uint32_t key_at, key_len;     /* the resource key, in part.bytes */
    uint32_t attrs_at, attrs_len; /* its first entry's attributes, encoded, in part.bytes */
    uint32_t first, n;            /* its entries: ents[first .. first + n) */
} spm_pseg_t;

typedef struct spm_part {
    spm_pseg_t *segs; /* om_malloc'd arrays, kept from one use to the next */
    size_t n_segs, segs_cap;
    spm_pentry_t *ents;
    size_t n_ents, ents_cap;
    uint64_t *buckets; /* explicit bucket counts: n_bounds + 1 per entry */
    size_t buckets_cap;
    spm_pex_t *ex; /* in span order */
    size_t n_ex, ex_cap;
    uint32_t *slots; /* entries by (segment, table, key): index + 1, 0 empty */
    size_t slots_cap;
    spm_buf_t bytes; /* keys and attributes */
} spm_part_t;

/* Clock: wall-clock nanoseconds (tests replace it). */
typedef uint64_t (*spm_clock_fn)(void *arg);

typedef struct spm {
    const conn_spanmetrics_cfg_t *cfg;
    const char *log_name;
    bool shared; /* one table counts both calls and durations */
    bool delta;
    /* Dimensions: dimensions, then calls_dimensions, then histogram.dimensions. */
    const spm_dim_cfg_t **dims;
    size_t n_dims, n_common, n_calls_only;
    bool exclude[SPM_ATTR_STATUS + 1];
    double *bounds; /* explicit buckets, unit of the metric */
    size_t n_bounds;
    double unit_div; /* ns per unit */
    /* resources: hash buckets and the LRU list (head: most recent) */
    spm_resource_t **buckets;
    size_t n_buckets, n_resources;
    spm_resource_t *lru_head, *lru_tail;
    size_t n_series;                     /* all tables, overflow series included */
    spm_series_t *idle_head, *idle_tail; /* delta: oldest idle first */
    size_t n_idle;
    uint64_t dropped_resources, overflowed; /* counters for tests and logs */
    /* scratch: keys being built, the resource's value of each dimension, attributes (sorted
     * for the resource key), spans and scopes of one resource entry (spanmetrics_wire.c) */
    spm_buf_t key;
    spm_val_t *rvals;
    spm_kv_t *kvs, *sorted;
    size_t kvs_cap, sorted_cap;
    spm_span_t *spans;
    size_t spans_cap;
    spm_kv_t *span_kvs;
    size_t span_kvs_cap;
    spm_wscope_t *scopes;
    size_t scopes_cap;
    uint64_t wire_fallbacks; /* resource entries the wire path left to protobuf-c (tests) */
    spm_clock_fn clock;
    void *clock_arg;
    /* Scanning: the part a scan records into (set for the scan's duration; NULL otherwise).
     * own: the part of conn_spanmetrics_add and _add_wire, which scan and merge on the loop. */
    spm_part_t *part;
    spm_part_t own;
    bool hist_table; /* the resources have a hist table (not shared, histogram on) */
    bool scanner;    /* made by conn_spanmetrics_scanner_init: dims and bounds borrowed */
} spm_t;

/* Set up / free the aggregate for cfg (bounds, dimensions). 0 or OM_ENOMEM. */
int conn_spanmetrics_init(spm_t *a, const conn_spanmetrics_cfg_t *cfg, const char *log_name);
void conn_spanmetrics_free(spm_t *a);
/* Count the spans of a decoded traces request. now: the time series start at. Returns 0, or
 * OM_ENOMEM (what was counted before stays counted). */
int conn_spanmetrics_add(spm_t *a, const om_traces_req_t *req, uint64_t now);
/* Scan one decoded resource entry into a->part (the struct path's step, and the wire path's
 * fallback). */
int conn_spanmetrics_add_resource(spm_t *a, const om_resource_spans_t *rs);
/* The same from a request's protobuf bytes (spanmetrics_wire.c), without building structs; a
 * resource entry encoded in a way protobuf-c merges or replaces (a field given twice, as no
 * ordinary encoder writes) is unpacked and counted from its structs instead, so the result is
 * always what conn_spanmetrics_add gives. Returns 0, OM_EINVAL for bytes that are no request
 * (nothing of the entry at fault is counted), OM_ENOMEM. */
int conn_spanmetrics_add_wire(spm_t *a, const uint8_t *p, size_t n, uint64_t now);

/* A scanner for a worker thread: agg's settings (cfg, dimensions, bounds: borrowed, read
 * only, they never change after init) and scratch of its own, no aggregate. Free it with
 * conn_spanmetrics_free. 0 or OM_ENOMEM. */
int conn_spanmetrics_scanner_init(spm_t *s, const spm_t *agg);
/* Scan a decoded request / a request's protobuf bytes into part (appended: a batch of several
 * requests is scanned one after the other into one part), with scanner s. Any thread, given a
 * scanner and a part of its own. The same results as conn_spanmetrics_add / _add_wire. */
int conn_spanmetrics_scan(spm_t *s, spm_part_t *part, const om_traces_req_t *req);
int conn_spanmetrics_scan_wire(spm_t *s, spm_part_t *part, const uint8_t *p, size_t n);
/* Loop thread. Count what part holds into the aggregate, as if its spans were counted one by
 * one at `now`, in order. Merges must happen in the order of the scans they come from (the
 * resource LRU, the cardinality limits and exemplars depend on it). 0 or OM_ENOMEM (what was
 * merged before stays). The merge may change part (it lowers histogram scales, marks entries):
 * reset it before it is scanned into again. */
int conn_spanmetrics_merge(spm_t *a, spm_part_t *part, uint64_t now);
/* Empty part for the next scan (keeping its arrays) / free its memory. */
void conn_spanmetrics_part_reset(spm_part_t *p);
void conn_spanmetrics_part_free(spm_part_t *p);
/* The scan side of the counting steps (spanmetrics_part.c): a resource entry begins (the
 * resource key is in s->key), a span is counted into table tab with key s->key. */
int conn_spanmetrics_part_begin(spm_t *s, const spm_kv_t *attrs, size_t n);
int conn_spanmetrics_part_count(spm_t *s, int tab, const spm_span_t *sp, uint64_t ns, double d);
/* The histogram sum of a series, in the metric's unit. */
double conn_spanmetrics_sum(const spm_t *a, const spm_series_t *s);
/* Add ns to an exact sum (sum_ns, and what passed 64 bits in over). */
void conn_spanmetrics_sum_add(uint64_t *sum_ns, double *over, uint64_t ns);

/* The counting steps both paths share: a resource entry (attrs: its attributes; returns 1
 * when its spans are counted, 0 when skipped: no service.name, or OM_ENOMEM), a scope entry,
 * a span. */
int conn_spanmetrics_begin_resource(spm_t *a, spm_ctx_t *cx, const spm_kv_t *attrs, size_t n);
void conn_spanmetrics_begin_scope(const spm_t *a, spm_ctx_t *cx, bool has_scope, const char *name,
                                  size_t nl, const char *version, size_t vl);
int conn_spanmetrics_count_span(spm_t *a, const spm_ctx_t *cx, const spm_span_t *sp);
/* Grow a scratch array to hold n elements of size. false when out of memory. */
bool conn_spanmetrics_reserve(void **arr, size_t *cap, size_t n, size_t size);
/* Length of a protobuf string up to its first NUL, as protobuf-c's C string reads. */
size_t conn_spanmetrics_cstr_len(const char *s, size_t n);
/* After a flush at `now` whose batch holds what is there: reset deltas, expire, clear
 * exemplars, as otelcol does after exporting. */
void conn_spanmetrics_after_flush(spm_t *a, uint64_t now);
/* Remove a series from its table (and free it). */
void conn_spanmetrics_series_free(spm_t *a, spm_series_t *s);

/* Key encoding of attribute values (used for series keys and resource attributes): the tags
 * of an encoded value (see spanmetrics_key.c), and the writers. */
enum {
    SPM_T_NONE,
    SPM_T_STR,
    SPM_T_BOOL,
    SPM_T_INT,
    SPM_T_DOUBLE,
    SPM_T_BYTES,
    SPM_T_ARRAY,
    SPM_T_KVLIST,
};
void conn_spanmetrics_put_varint(spm_buf_t *b, uint64_t v);
void conn_spanmetrics_put_raw(spm_buf_t *b, const void *p, size_t n);
void conn_spanmetrics_put_value(spm_buf_t *b, const om_anyvalue_t *v, int depth);
void conn_spanmetrics_put_str(spm_buf_t *b, const char *s, size_t n);
/* A string value (tag and string), as conn_spanmetrics_put_value would encode it. */
void conn_spanmetrics_put_str_value(spm_buf_t *b, const char *s, size_t n);
/* A value of either form (absent: as an empty value). */
void conn_spanmetrics_put_val(spm_buf_t *b, const spm_val_t *v);
/* An AnyValue message on the wire, encoded as conn_spanmetrics_put_value encodes its decoded form
 * (the caller checked it with conn_spanmetrics_wire_value_ok). */
void conn_spanmetrics_put_wire_value(spm_buf_t *b, const uint8_t *p, size_t n, int depth);
/* Whether an AnyValue message decodes plainly, nested values included: well formed, at most
 * one value field (protobuf-c keeps the last of several, or merges them). */
bool conn_spanmetrics_wire_value_ok(const uint8_t *p, size_t n, int depth);
/* The string of an AnyValue message ("" when it holds no string), as protobuf-c reads it. */
void conn_spanmetrics_wire_string(const uint8_t *p, size_t n, const char **s, size_t *len);
#define SPM_DEPTH 32
void conn_spanmetrics_put_byte(spm_buf_t *b, uint8_t c);
/* Decode one encoded value at *p (of end) into v, with strings and nodes in arena ar; advances
 * *p. false when out of memory (or on a malformed encoding, which is a bug). */
bool conn_spanmetrics_get_value(const uint8_t **p, const uint8_t *end, om_anyvalue_t *v,
                                om_arena_t *ar);
bool conn_spanmetrics_get_str(const uint8_t **p, const uint8_t *end, const uint8_t **s, size_t *n);
uint64_t conn_spanmetrics_hash(const uint8_t *p, size_t n);

/* Exponential histogram. */
void conn_spanmetrics_expo_init(spm_expo_t *e);
/* Record v (>= 0); max_size buckets at most. false when out of memory (not recorded). */
bool conn_spanmetrics_expo_add(spm_expo_t *e, double v, uint32_t max_size);
void conn_spanmetrics_expo_reset(spm_expo_t *e);
int32_t conn_spanmetrics_expo_index(double v, int32_t scale);
/* Add src's values to e (as if each was recorded into e; src may be lowered in scale).
 * false when out of memory (nothing added). */
bool conn_spanmetrics_expo_merge(spm_expo_t *e, spm_expo_t *src, uint32_t max_size);

/* ---- the output -------------------------------------------------------------------------- */

/* The metrics request for everything in the aggregate at `now` (final: the last flush, at
 * shutdown: cumulative sums are not held back at 0). *out is NULL when there is nothing to
 * send. Returns 0 or OM_ENOMEM. */
int conn_spanmetrics_build(spm_t *a, uint64_t now, bool final, om_batch_t **out);

/* ---- tests ------------------------------------------------------------------------------- */

/* An instance's aggregate (to set its clock or look inside) and a flush now. */
spm_t *conn_spanmetrics_agg(void *self);
void conn_spanmetrics_flush(void *self, bool final);
/* Batches scanned on a worker / on the loop, batches not merged yet, and the thread of the
 * last scan merged. */
void conn_spanmetrics_jobs(void *self, uint64_t *worker_scans, uint64_t *loop_scans, size_t *queued,
                           uv_thread_t *last_thread);

#endif
