/* batch_walk.c: walking the items of a batch, and dropping some (om_batch_walk).
 *
 * A request is a tree: the request (depth 0), resource entries (1), scope entries (2), spans /
 * metrics / log records (3), span events or a metric's data node (Gauge, Sum...) (4), and
 * data points (5). One table of operations per node type (found by the node's protobuf-c
 * descriptor) lets one walk and one drop pass serve every level of every signal.
 *
 * Dropping is two passes so that a shared batch is never changed: the walk only records the
 * verdicts (a bit per item, allocated at the first drop: a walk that drops nothing allocates
 * nothing and changes nothing). Then, only if something was dropped, the drop pass rebuilds
 * the path to every dropped item: in place when the caller holds the batch alone, else as
 * copies of the containers (their struct and child array) in a new arena, pointing at the
 * unchanged nodes below them, which the copy keeps alive and shares (it is borrowed, and so
 * is the original from then on). Containers the drops empty are removed on the way back up.
 *
 * Cost: the walk is one callback per item plus one visit per container; the drop pass visits
 * every container and reads one bit per item. */
#include <limits.h>
#include <string.h>

#include "batch_int.h"

/* ---- the tree --------------------------------------------------------------------------- */

/* What the walk and the drop pass need of a node type with children. */
typedef struct tree_ops {
    const ProtobufCMessageDescriptor *desc;
    size_t (*n)(const void *node);
    void *(*child)(const void *node, size_t i);
    /* Write child i / set the number of children, in the node's own array. */
    void (*put)(void *node, size_t i, void *kid);
    void (*set_n)(void *node, size_t n);
    /* A copy of the node in arena a with a new child array of room for cap children (to be
     * filled with put, then set_n); NULL when out of memory. */
    void *(*copy)(om_arena_t *a, const void *node, size_t cap);
    /* The node is removed when a drop empties it (resources, scopes, metrics and their data
     * nodes; not a span whose events are all dropped). */
    bool prune;
} tree_ops_t;

#define TREE_OPS(name, type, ktype, n_field, arr_field)                                            \
    static size_t name##_n(const void *node)                                                       \
    {                                                                                              \
        return ((const type *)node)->n_field;                                                      \
    }                                                                                              \
    static void *name##_child(const void *node, size_t i)                                          \
    {                                                                                              \
        return ((const type *)node)->arr_field[i];                                                 \
    }                                                                                              \
    static void name##_put(void *node, size_t i, void *kid)                                        \
    {                                                                                              \
        ((type *)node)->arr_field[i] = kid;                                                        \
    }                                                                                              \
    static void name##_set_n(void *node, size_t n)                                                 \
    {                                                                                              \
        ((type *)node)->n_field = n;                                                               \
    }                                                                                              \
    static void *name##_copy(om_arena_t *a, const void *node, size_t cap)                          \
    {                                                                                              \
        type *copy = om_arena_alloc(a, sizeof *copy);                                              \
        ktype **list = om_arena_alloc(a, (cap > 0 ? cap : 1) * sizeof *list);                      \
        if (copy == NULL || list == NULL) {                                                        \
            return NULL;                                                                           \
        }                                                                                          \
        *copy = *(const type *)node;                                                               \
        copy->arr_field = list;                                                                    \
        return copy;                                                                               \
    }

#define OPS(name, desc, prune)                                                                     \
    {                                                                                              \
        &desc, name##_n, name##_child, name##_put, name##_set_n, name##_copy, prune                \
    }

TREE_OPS(treq, om_traces_req_t, om_resource_spans_t, n_resource_spans, resource_spans)
TREE_OPS(rspans, om_resource_spans_t, om_scope_spans_t, n_scope_spans, scope_spans)
TREE_OPS(sspans, om_scope_spans_t, om_span_t, n_spans, spans)
TREE_OPS(span, om_span_t, om_span_event_t, n_events, events)
TREE_OPS(mreq, om_metrics_req_t, om_resource_metrics_t, n_resource_metrics, resource_metrics)
TREE_OPS(rmetrics, om_resource_metrics_t, om_scope_metrics_t, n_scope_metrics, scope_metrics)
TREE_OPS(smetrics, om_scope_metrics_t, om_metric_t, n_metrics, metrics)
TREE_OPS(gauge, om_gauge_t, om_number_dp_t, n_data_points, data_points)
TREE_OPS(sum, om_sum_t, om_number_dp_t, n_data_points, data_points)
TREE_OPS(hist, om_histogram_t, om_histogram_dp_t, n_data_points, data_points)
TREE_OPS(ehist, om_exp_histogram_t, om_exp_histogram_dp_t, n_data_points, data_points)
TREE_OPS(summary, om_summary_t, om_summary_dp_t, n_data_points, data_points)
TREE_OPS(lreq, om_logs_req_t, om_resource_logs_t, n_resource_logs, resource_logs)
TREE_OPS(rlogs, om_resource_logs_t, om_scope_logs_t, n_scope_logs, scope_logs)
TREE_OPS(slogs, om_scope_logs_t, om_log_record_t, n_log_records, log_records)

/* A metric has one child: its data node (the one data_case names), or none. */
static void *metric_data(const om_metric_t *m)
{
    switch (m->data_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
        /* The data pointers share one union: any member reads the one data_case names. */
        return m->gauge;
    default:
        return NULL;
    }
}

static size_t metric_n(const void *node)
{
    return metric_data(node) != NULL ? 1 : 0;
}

static void *metric_child(const void *node, size_t i)
{
    (void)i;
    return metric_data(node);
}

static void metric_put(void *node, size_t i, void *kid)
{
    (void)i;
    ((om_metric_t *)node)->gauge = kid; /* the member data_case names: see metric_data */
}

static void metric_set_n(void *node, size_t n)
{
    if (n == 0) { /* not reached: an emptied metric is removed */
        om_metric_t *m = node;
        m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA__NOT_SET;
        m->gauge = NULL;
    }
}

static void *metric_copy(om_arena_t *a, const void *node, size_t cap)
{
    (void)cap;
    om_metric_t *copy = om_arena_alloc(a, sizeof *copy);
    if (copy != NULL) {
        *copy = *(const om_metric_t *)node;
    }
    return copy;
}

static const tree_ops_t all_ops[] = {
    OPS(treq, opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor,
        false),
    OPS(rspans, opentelemetry__proto__trace__v1__resource_spans__descriptor, true),
    OPS(sspans, opentelemetry__proto__trace__v1__scope_spans__descriptor, true),
    OPS(span, opentelemetry__proto__trace__v1__span__descriptor, false),
    OPS(mreq,
        opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__descriptor,
        false),
    OPS(rmetrics, opentelemetry__proto__metrics__v1__resource_metrics__descriptor, true),
    OPS(smetrics, opentelemetry__proto__metrics__v1__scope_metrics__descriptor, true),
    OPS(metric, opentelemetry__proto__metrics__v1__metric__descriptor, true),
    OPS(gauge, opentelemetry__proto__metrics__v1__gauge__descriptor, true),
    OPS(sum, opentelemetry__proto__metrics__v1__sum__descriptor, true),
    OPS(hist, opentelemetry__proto__metrics__v1__histogram__descriptor, true),
    OPS(ehist, opentelemetry__proto__metrics__v1__exponential_histogram__descriptor, true),
    OPS(summary, opentelemetry__proto__metrics__v1__summary__descriptor, true),
    OPS(lreq, opentelemetry__proto__collector__logs__v1__export_logs_service_request__descriptor,
        false),
    OPS(rlogs, opentelemetry__proto__logs__v1__resource_logs__descriptor, true),
    OPS(slogs, opentelemetry__proto__logs__v1__scope_logs__descriptor, true),
};

/* The operations of a node with children, by its type; NULL for a node without. */
static const tree_ops_t *ops_of(const void *node)
{
    const ProtobufCMessageDescriptor *d = ((const ProtobufCMessage *)node)->descriptor;
    for (size_t i = 0; i < sizeof all_ops / sizeof all_ops[0]; i++) {
        if (all_ops[i].desc == d) {
            return &all_ops[i];
        }
    }
    return NULL;
}

/* The depth of a level's items in a request of the signal; -1 when it has none. */
static int level_depth(om_signal_t sig, om_level_t level)
{
    switch (level) {
    case OM_LEVEL_RESOURCE:
        return 1;
    case OM_LEVEL_SCOPE:
        return 2;
    case OM_LEVEL_SPAN:
        return sig == OM_SIG_TRACES ? 3 : -1;
    case OM_LEVEL_SPAN_EVENT:
        return sig == OM_SIG_TRACES ? 4 : -1;
    case OM_LEVEL_METRIC:
        return sig == OM_SIG_METRICS ? 3 : -1;
    case OM_LEVEL_DATAPOINT:
        return sig == OM_SIG_METRICS ? 5 : -1;
    case OM_LEVEL_LOG:
        return sig == OM_SIG_LOGS ? 3 : -1;
    default:
        return -1;
    }
}

static const char *level_name(om_level_t level)
{
    static const char *const names[] = {"resource", "scope",     "span",      "span event",
                                        "metric",   "datapoint", "log record"};
    return (unsigned)level < sizeof names / sizeof names[0] ? names[level] : "?";
}

/* ---- the item's context ------------------------------------------------------------------ */

static om_attrs_t no_attrs(om_batch_t *b)
{
    return (om_attrs_t){.batch = b};
}

/* The attributes of a resource entry's resource, or where to attach one. The three entry
 * types differ only in their scope list, so the resource field is read by signal. */
static void enter_resource(om_item_t *it, void *entry)
{
    om_resource_t **slot;
    switch (it->batch->signal) {
    case OM_SIG_TRACES:
        slot = &((om_resource_spans_t *)entry)->resource;
        break;
    case OM_SIG_METRICS:
        slot = &((om_resource_metrics_t *)entry)->resource;
        break;
    default:
        slot = &((om_resource_logs_t *)entry)->resource;
        break;
    }
    it->resource_entry = entry;
    it->resource = *slot;
    if (*slot != NULL) {
        it->resource_attrs = OM_ATTRS(it->batch, *slot);
    } else {
        it->resource_attrs = no_attrs(it->batch);
        it->resource_attrs.absent_resource = slot;
    }
    it->scope_entry = NULL;
    it->scope = NULL;
    it->scope_attrs = no_attrs(it->batch);
}

static void enter_scope(om_item_t *it, void *entry)
{
    om_scope_t **slot;
    switch (it->batch->signal) {
    case OM_SIG_TRACES:
        slot = &((om_scope_spans_t *)entry)->scope;
        break;
    case OM_SIG_METRICS:
        slot = &((om_scope_metrics_t *)entry)->scope;
        break;
    default:
        slot = &((om_scope_logs_t *)entry)->scope;
        break;
    }
    it->scope_entry = entry;
    it->scope = *slot;
    if (*slot != NULL) {
        it->scope_attrs = OM_ATTRS(it->batch, *slot);
    } else {
        it->scope_attrs = no_attrs(it->batch);
        it->scope_attrs.absent_scope = slot;
    }
}

/* The attributes of a data point of metric m. */
static om_attrs_t point_attrs(om_batch_t *b, const om_metric_t *m, void *point)
{
    switch (m->data_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
        return OM_ATTRS(b, (om_histogram_dp_t *)point);
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
        return OM_ATTRS(b, (om_exp_histogram_dp_t *)point);
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
        return OM_ATTRS(b, (om_summary_dp_t *)point);
    default: /* gauge, sum */
        return OM_ATTRS(b, (om_number_dp_t *)point);
    }
}

/* Record node (at depth) in the context. */
static void enter(om_item_t *it, int depth, void *node)
{
    om_batch_t *b = it->batch;
    switch (depth) {
    case 1:
        enter_resource(it, node);
        break;
    case 2:
        enter_scope(it, node);
        break;
    case 3:
        if (b->signal == OM_SIG_TRACES) {
            it->span = node;
            it->event = NULL;
        } else if (b->signal == OM_SIG_METRICS) {
            it->metric = node;
            it->point = NULL;
        } else {
            it->log = node;
        }
        break;
    case 4:
        if (b->signal == OM_SIG_TRACES) {
            it->event = node;
        }
        break; /* metrics: the data node, not an item */
    default:
        it->point = node;
        break;
    }
}

/* The item's own attributes, once the walk stands on it. */
static om_attrs_t own_attrs(const om_item_t *it)
{
    switch (it->level) {
    case OM_LEVEL_RESOURCE:
        return it->resource_attrs;
    case OM_LEVEL_SCOPE:
        return it->scope_attrs;
    case OM_LEVEL_SPAN:
        return OM_ATTRS(it->batch, it->span);
    case OM_LEVEL_SPAN_EVENT:
        return OM_ATTRS(it->batch, it->event);
    case OM_LEVEL_METRIC:
        return om_attrs_of(it->batch, &it->metric->metadata, &it->metric->n_metadata);
    case OM_LEVEL_DATAPOINT:
        return point_attrs(it->batch, it->metric, it->point);
    default:
        return OM_ATTRS(it->batch, it->log);
    }
}

/* ---- the walk ---------------------------------------------------------------------------- */

typedef struct walker {
    om_item_t it;
    int depth; /* of the items */
    om_walk_fn fn;
    void *arg;
    size_t ordinal;    /* of the next item */
    size_t dropped;    /* items dropped */
    uint64_t *bits;    /* bit i: item i is dropped; om_malloc'd at the first drop */
    size_t n_words;    /* of bits */
    size_t copy_bytes; /* what copies of all containers would take (the copy's arena cap) */
} walker_t;

static int record_drop(walker_t *w)
{
    size_t word = w->ordinal / 64;
    if (word >= w->n_words) {
        size_t n = w->n_words > 0 ? w->n_words * 2 : 16;
        while (n <= word) {
            n *= 2;
        }
        uint64_t *bits = om_realloc(w->bits, n * sizeof *bits);
        if (bits == NULL) {
            return OM_ENOMEM;
        }
        memset(bits + w->n_words, 0, (n - w->n_words) * sizeof *bits);
        w->bits = bits;
        w->n_words = n;
    }
    w->bits[word] |= UINT64_C(1) << (w->ordinal % 64);
    w->dropped++;
    return 0;
}

/* Calls back for every item below node (at depth). Recursion is bounded by the item depth
 * (at most 5). */
static int walk_node(walker_t *w, int depth, void *node)
{
    const tree_ops_t *ops = ops_of(node);
    if (ops == NULL) {
        return 0;
    }
    size_t n = ops->n(node);
    /* A copy of this container: its struct, its child array, the arena's rounding. */
    w->copy_bytes += ops->desc->sizeof_message + 8 * n + 16;
    for (size_t i = 0; i < n; i++) {
        void *kid = ops->child(node, i);
        enter(&w->it, depth + 1, kid);
        if (depth + 1 < w->depth) {
            int rc = walk_node(w, depth + 1, kid);
            if (rc != 0) {
                return rc;
            }
            continue;
        }
        w->it.attrs = own_attrs(&w->it);
        int v = w->fn(&w->it, w->arg);
        if (v < 0) {
            return v;
        }
        if (v != OM_KEEP && record_drop(w) != 0) {
            return OM_ENOMEM;
        }
        w->ordinal++;
    }
    return 0;
}

/* ---- the drop pass ----------------------------------------------------------------------- */

typedef struct dropper {
    const uint64_t *bits;
    size_t n_words;
    size_t ordinal;     /* of the next item */
    int depth;          /* of the items */
    om_arena_t *copies; /* NULL: change in place; else where changed containers are copied */
    bool oom;
} dropper_t;

static bool is_dropped(dropper_t *d)
{
    size_t i = d->ordinal++;
    return i / 64 < d->n_words && (d->bits[i / 64] >> (i % 64) & 1) != 0;
}

/* Node (at depth) without its dropped items and emptied containers: node itself, changed in
 * place, or (copy mode) a copy when anything below changed. *emptied: it had children and
 * lost them all. */
static void *drop_below(dropper_t *d, int depth, void *node, bool *emptied)
{
    *emptied = false;
    const tree_ops_t *ops = ops_of(node);
    if (ops == NULL) {
        return node;
    }
    size_t n = ops->n(node);
    void *out = node; /* where the kept children go */
    size_t kept = 0;
    bool changed = false;
    /* Bounded by n; each turn places one child or leaves it out. */
    for (size_t i = 0; i < n && !d->oom; i++) {
        void *kid = ops->child(node, i);
        void *keep = kid;
        if (depth + 1 == d->depth) {
            keep = is_dropped(d) ? NULL : kid;
        } else {
            bool gone = false;
            keep = drop_below(d, depth + 1, kid, &gone);
            const tree_ops_t *kid_ops = ops_of(kid);
            if (gone && kid_ops != NULL && kid_ops->prune) {
                keep = NULL;
            }
        }
        if (keep == kid && !changed) {
            kept++; /* unchanged so far: the child stays where it is */
            continue;
        }
        if (!changed && d->copies != NULL) {
            out = ops->copy(d->copies, node, n);
            if (out == NULL) {
                d->oom = true;
                return node;
            }
            for (size_t j = 0; j < kept; j++) {
                ops->put(out, j, ops->child(node, j));
            }
        }
        changed = true;
        if (keep != NULL) {
            ops->put(out, kept++, keep);
        }
    }
    if (changed) {
        ops->set_n(out, kept);
        *emptied = kept == 0;
    }
    return out;
}

/* Apply the recorded drops to *bp: in place when held alone, else to a copy that replaces the
 * caller's reference. */
static int apply_drops(om_batch_t **bp, const walker_t *w, om_err_t *err)
{
    om_batch_t *b = *bp;
    dropper_t d = {.bits = w->bits, .n_words = w->n_words, .depth = w->depth};
    bool gone = false;
    if (b->refs == 1 && !b->borrowed) {
        drop_below(&d, 0, b->msg, &gone);
        om__batch_drop_raw(b);
        om__batch_recount(b);
        return 0;
    }
    /* The copy's arena holds the copied containers, and room for the copy's own later growth
     * (an append into it), as an edited batch has. */
    om_arena_t *arena = om_arena_new(w->copy_bytes + OM_BATCH_EDIT_ROOM);
    om_batch_t *copy = arena != NULL ? om__batch_wrap(b->signal, arena, NULL) : NULL;
    if (copy == NULL) {
        om_arena_unref(arena);
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    d.copies = arena;
    copy->msg = drop_below(&d, 0, b->msg, &gone);
    if (d.oom || om_batch_share_arenas(copy, b) != 0) {
        int rc = om_arena_fail(arena, err, "copy of a batch");
        om_batch_release(copy);
        return rc;
    }
    /* The copy points at nodes of the original: neither may change them in place now. */
    b->borrowed = true;
    om__batch_recount(copy);
    om_batch_release(b);
    *bp = copy;
    return 0;
}

int om_batch_walk(om_batch_t **bp, om_level_t level, om_walk_fn fn, void *arg, om_err_t *err)
{
    om_batch_t *b = *bp;
    int depth = level_depth(b->signal, level);
    if (depth < 0) {
        om_err_set(err, OM_EINVAL, "a %s batch has no %s level", om_signal_name(b->signal),
                   level_name(level));
        return OM_EINVAL;
    }
    int rc = om_batch_decode(b, err);
    if (rc != 0) {
        return rc;
    }
    walker_t w = {.depth = depth, .fn = fn, .arg = arg};
    w.it.batch = b;
    w.it.level = level;
    w.it.resource_attrs = w.it.scope_attrs = no_attrs(b);
    rc = walk_node(&w, 0, b->msg);
    if (rc == OM_ENOMEM) {
        om_err_set(err, rc, "out of memory");
    }
    if (rc == 0 && w.dropped > 0) {
        rc = apply_drops(bp, &w, err);
    }
    om_free(w.bits);
    return rc == 0 ? (int)(w.dropped > INT_MAX ? INT_MAX : w.dropped) : rc;
}
