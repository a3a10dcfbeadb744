/* batch_split.c: cutting a batch at item granularity, as otelcol's split{Traces,Metrics,Logs}.
 *
 * The input is never changed: it may be shared with other pipelines. A cut produces wrapper
 * nodes (copies of the ResourceX / ScopeX / Metric / data-kind structs with a subset of the
 * children) in the new batch's arena; everything below them (resources, scopes, items) is
 * pointed at, not copied, and om_batch_share_arenas() keeps it alive and marks the new batch
 * borrowed, so a downstream consumer that changes data clones it first.
 *
 * Cost: each node is counted once per depth above it while the cursor passes it, so cutting a
 * whole input costs O(nodes * depth); items taken are copied as pointers only. */
#include <string.h>

#include "batch.h"

/* ---- level operations -------------------------------------------------------------------- */

/* The three functions for a node type whose children are the array `arr` of `n` elements of
 * type `ktype *`. rebuild copies the struct (schema_url, resource or scope pointers and all)
 * and gives the copy the new children. */
#define LEVEL_OPS(name, type, ktype, n, arr)                                                       \
    static size_t name##_n(const void *node)                                                       \
    {                                                                                              \
        return ((const type *)node)->n;                                                            \
    }                                                                                              \
    static void *name##_child(const void *node, size_t i)                                          \
    {                                                                                              \
        return ((const type *)node)->arr[i];                                                       \
    }                                                                                              \
    static void *name##_rebuild(om_arena_t *a, const void *node, void *const *kids, size_t k)      \
    {                                                                                              \
        type *copy = om_arena_alloc(a, sizeof *copy);                                              \
        ktype **list = om_arena_alloc(a, (k > 0 ? k : 1) * sizeof *list);                          \
        if (copy == NULL || list == NULL) {                                                        \
            return NULL;                                                                           \
        }                                                                                          \
        *copy = *(const type *)node;                                                               \
        for (size_t i = 0; i < k; i++) {                                                           \
            list[i] = kids[i];                                                                     \
        }                                                                                          \
        copy->arr = list;                                                                          \
        copy->n = k;                                                                               \
        return copy;                                                                               \
    }

LEVEL_OPS(treq, om_traces_req_t, om_resource_spans_t, n_resource_spans, resource_spans)
LEVEL_OPS(rspans, om_resource_spans_t, om_scope_spans_t, n_scope_spans, scope_spans)
LEVEL_OPS(sspans, om_scope_spans_t, om_span_t, n_spans, spans)
LEVEL_OPS(lreq, om_logs_req_t, om_resource_logs_t, n_resource_logs, resource_logs)
LEVEL_OPS(rlogs, om_resource_logs_t, om_scope_logs_t, n_scope_logs, scope_logs)
LEVEL_OPS(slogs, om_scope_logs_t, om_log_record_t, n_log_records, log_records)
LEVEL_OPS(mreq, om_metrics_req_t, om_resource_metrics_t, n_resource_metrics, resource_metrics)
LEVEL_OPS(rmetrics, om_resource_metrics_t, om_scope_metrics_t, n_scope_metrics, scope_metrics)
LEVEL_OPS(smetrics, om_scope_metrics_t, om_metric_t, n_metrics, metrics)

/* The data kinds of a metric: their points are the items. */
LEVEL_OPS(gauge, om_gauge_t, om_number_dp_t, n_data_points, data_points)
LEVEL_OPS(sum, om_sum_t, om_number_dp_t, n_data_points, data_points)
LEVEL_OPS(hist, om_histogram_t, om_histogram_dp_t, n_data_points, data_points)
LEVEL_OPS(ehist, om_exp_histogram_t, om_exp_histogram_dp_t, n_data_points, data_points)
LEVEL_OPS(summary, om_summary_t, om_summary_dp_t, n_data_points, data_points)

/* The ops of the data-kind node a metric holds, and that node; NULL when it has none. */
static const batch_level_ops_t *metric_data(const om_metric_t *m, void **data)
{
    static const batch_level_ops_t kinds[] = {
        {gauge_n, gauge_child, gauge_rebuild},       {sum_n, sum_child, sum_rebuild},
        {hist_n, hist_child, hist_rebuild},          {ehist_n, ehist_child, ehist_rebuild},
        {summary_n, summary_child, summary_rebuild},
    };
    switch (m->data_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
        *data = m->gauge;
        return m->gauge != NULL ? &kinds[0] : NULL;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
        *data = m->sum;
        return m->sum != NULL ? &kinds[1] : NULL;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
        *data = m->histogram;
        return m->histogram != NULL ? &kinds[2] : NULL;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
        *data = m->exponential_histogram;
        return m->exponential_histogram != NULL ? &kinds[3] : NULL;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
        *data = m->summary;
        return m->summary != NULL ? &kinds[4] : NULL;
    default:
        return NULL;
    }
}

static size_t metric_n(const void *node)
{
    void *data = NULL;
    const batch_level_ops_t *ops = metric_data(node, &data);
    return ops != NULL ? ops->n_children(data) : 0;
}

static void *metric_child(const void *node, size_t i)
{
    void *data = NULL;
    const batch_level_ops_t *ops = metric_data(node, &data);
    return ops->child(data, i);
}

/* A copy of the metric (name, description, unit, metadata shared) and of its data-kind node
 * (temporality, monotonicity kept) holding only the given points, as otelcol's splitMetric. */
static void *metric_rebuild(om_arena_t *a, const void *node, void *const *kids, size_t k)
{
    void *data = NULL;
    const batch_level_ops_t *ops = metric_data(node, &data);
    om_metric_t *copy = om_arena_alloc(a, sizeof *copy);
    if (ops == NULL || copy == NULL) {
        return NULL;
    }
    *copy = *(const om_metric_t *)node;
    void *data_copy = ops->rebuild(a, data, kids, k);
    if (data_copy == NULL) {
        return NULL;
    }
    /* The data-kind pointers share one union: setting one sets the one data_case names. */
    copy->gauge = data_copy;
    return copy;
}

static const batch_level_ops_t traces_ops[] = {
    {treq_n, treq_child, treq_rebuild},
    {rspans_n, rspans_child, rspans_rebuild},
    {sspans_n, sspans_child, sspans_rebuild},
};
static const batch_level_ops_t logs_ops[] = {
    {lreq_n, lreq_child, lreq_rebuild},
    {rlogs_n, rlogs_child, rlogs_rebuild},
    {slogs_n, slogs_child, slogs_rebuild},
};
static const batch_level_ops_t metrics_ops[] = {
    {mreq_n, mreq_child, mreq_rebuild},
    {rmetrics_n, rmetrics_child, rmetrics_rebuild},
    {smetrics_n, smetrics_child, smetrics_rebuild},
    {metric_n, metric_child, metric_rebuild},
};

/* ---- the cursor ------------------------------------------------------------------------- */

void proc_batch_cutter_init(batch_cutter_t *c, om_signal_t sig)
{
    memset(c, 0, sizeof *c);
    if (sig == OM_SIG_METRICS) {
        c->ops = metrics_ops;
        c->leaf = 3;
    } else if (sig == OM_SIG_LOGS) {
        c->ops = logs_ops;
        c->leaf = 2;
    } else {
        c->ops = traces_ops;
        c->leaf = 2;
    }
}

void proc_batch_cutter_free(batch_cutter_t *c)
{
    for (int d = 0; d < BATCH_MAX_DEPTH; d++) {
        om_free(c->kids[d]);
        c->kids[d] = NULL;
        c->cap_kids[d] = c->n_kids[d] = 0;
    }
}

void proc_batch_cutter_reset(batch_cutter_t *c)
{
    for (int d = 0; d < BATCH_MAX_DEPTH; d++) {
        c->pos[d] = 0;
        c->started[d] = false;
        c->n_kids[d] = 0;
    }
    c->oom = false;
}

bool proc_batch_cutter_started(const batch_cutter_t *c)
{
    return c->started[0];
}

static void push(batch_cutter_t *c, int d, void *node)
{
    if (c->n_kids[d] == c->cap_kids[d]) {
        size_t cap = c->cap_kids[d] ? c->cap_kids[d] * 2 : 64;
        void **kids = om_realloc(c->kids[d], cap * sizeof *kids);
        if (kids == NULL) {
            c->oom = true;
            return;
        }
        c->kids[d] = kids;
        c->cap_kids[d] = cap;
    }
    c->kids[d][c->n_kids[d]++] = node;
}

/* Items under node (at depth d). */
static size_t count(const batch_cutter_t *c, int d, const void *node)
{
    size_t n = c->ops[d].n_children(node);
    if (d == c->leaf) {
        return n;
    }
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        total += count(c, d + 1, c->ops[d].child(node, i));
    }
    return total;
}

static void take(batch_cutter_t *c, int d, const void *node);

/* Takes what fits of the partially taken child (at depth d + 1) and adds its copy to the
 * children of depth d. Returns whether the child is now fully taken. */
static bool take_partial(batch_cutter_t *c, int d, const void *child)
{
    take(c, d + 1, child);
    if (c->oom) {
        return false;
    }
    void *copy = c->ops[d + 1].rebuild(c->arena, child, c->kids[d + 1], c->n_kids[d + 1]);
    c->n_kids[d + 1] = 0;
    if (copy == NULL) {
        c->oom = true;
        return false;
    }
    push(c, d, copy);
    if (c->pos[d + 1] < c->ops[d + 1].n_children(child)) {
        return false;
    }
    c->started[d + 1] = false;
    c->pos[d + 1] = 0;
    return true;
}

/* Takes up to c->room items of node (at depth d) from the cursor on, adding what it takes to
 * the children list of depth d: whole children as they are, partial ones as copies. Children
 * without items are taken along while nothing else stops the cut, as otelcol does. */
static void take(batch_cutter_t *c, int d, const void *node)
{
    const batch_level_ops_t *ops = &c->ops[d];
    size_t n = ops->n_children(node);
    if (d == c->leaf) {
        size_t k = n - c->pos[d] < c->room ? n - c->pos[d] : c->room;
        for (size_t i = 0; i < k; i++) {
            push(c, d, ops->child(node, c->pos[d] + i));
        }
        c->pos[d] += k;
        c->room -= k;
        return;
    }
    /* Bounded by n: every turn takes a child (pos[d]++) or ends the loop. */
    while (c->pos[d] < n && !c->oom) {
        void *child = ops->child(node, c->pos[d]);
        if (!c->started[d + 1]) {
            size_t items = count(c, d + 1, child);
            if (items <= c->room) {
                push(c, d, child);
                c->room -= items;
                c->pos[d]++;
                continue;
            }
            if (c->room == 0) {
                return;
            }
            c->started[d + 1] = true;
        }
        if (!take_partial(c, d, child)) {
            return;
        }
        c->pos[d]++;
    }
}

int proc_batch_cut(batch_cutter_t *c, batch_entry_t *e, size_t room, om_batch_t **out, bool *done)
{
    *out = NULL;
    *done = false;
    /* Cutting walks the structs; the cutter's positions stay valid once decoded. */
    int rc = om_batch_decode(e->batch, NULL);
    if (rc != 0) {
        return rc;
    }
    om_batch_t *piece = om_batch_new(e->batch->signal, 0);
    if (piece == NULL) {
        return OM_ENOMEM;
    }
    c->arena = piece->arenas[0];
    c->room = room;
    c->started[0] = true;
    take(c, 0, e->batch->msg);
    void *req = NULL;
    if (!c->oom) {
        req = c->ops[0].rebuild(c->arena, e->batch->msg, c->kids[0], c->n_kids[0]);
    }
    c->n_kids[0] = 0;
    if (req == NULL || om_batch_share_arenas(piece, e->batch) != 0) {
        om_batch_release(piece);
        return OM_ENOMEM;
    }
    piece->msg = req;
    piece->items = room - c->room;
    e->items = e->items > piece->items ? e->items - piece->items : 0;
    if (c->pos[0] == c->ops[0].n_children(e->batch->msg)) {
        proc_batch_cutter_reset(c);
        *done = true;
    }
    *out = piece;
    return 0;
}
