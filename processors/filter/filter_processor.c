/* filter_processor.c: the filter processor, with otelcol-contrib's semantics.
 *
 * - Each signal's conditions are walked at their level with om_batch_walk: spans, then the
 *   events of the spans kept; metrics, then the data points of the metrics kept; log records.
 *   Span and log record conditions that read only what ottl_wire.c reads run on the wire
 *   bytes with om_batch_wire_walk when the batch has not been decoded: the same verdicts (the
 *   differential test ottl_wire_test.c and fuzz target ottl_wire_fuzz.c hold them to the
 *   decoded ones) at a fraction of the cost; a value only decoding can read (a map, a list)
 *   or bytes the wire walk finds malformed send that batch to the decoded walk.
 *   An item for which any condition is true is dropped (conditions are ORed, in config order,
 *   stopping at the first true one). The core removes the scopes, metrics and resources the
 *   drops emptied; a span whose events were all dropped stays. A batch from which nothing was
 *   dropped is passed on exactly as it came (its wire bytes too).
 * - A batch left without any resource is not passed on (otelcol's ErrSkipProcessingData):
 *   consume returns 0.
 * - error_mode: with propagate (the default), an evaluation error fails the whole batch, as in
 *   otelcol: nothing is passed on, the error is logged, and consume returns OM_EREFUSED, which
 *   receivers answer with gRPC UNAVAILABLE / HTTP 503 (otelcol's receivers answer a
 *   non-permanent error that way too); the client will retry the same data. With ignore, the
 *   failing condition counts as false, a warning is logged (at most one line a second, with
 *   how many were suppressed) and evaluation goes on; with silent, the same without the log.
 * - Counters in otelcol's names: otelcol_processor_filter_{spans,datapoints,logs}_filtered
 *   {filter="<id>"}: items dropped; shutdown logs the totals at info ("dropped N spans, ...",
 *   which the benchmark reads).
 *
 * Threads: OM_CAP_OFF_LOOP (om.h, "Processors off the loop thread"): the core may run consume
 * on the thread that decoded the request (gRPC's completion-queue thread, an HTTP worker), one
 * thread at a time, so that the loop thread keeps only what must be serial (issue 14: with a
 * filter the loop spent 0.52 us per span, half of it here). Hence: the compiled program is
 * built at create and read-only after; the scratch, the walk's state and the warnings' rate
 * limit are this instance's and only consume touches them (never two at once); the time is
 * uv_hrtime's, not the loop's; the drop totals, which shutdown reads on the loop, are atomic. */
#include <stdatomic.h>
#include <string.h>

#include "filter.h"

typedef struct proc_filter {
    const proc_filter_cfg_t *cfg;
    const char *log_name;
    om_host_t *host;
    om_consumer_t next[OM_SIG_COUNT];
    filter_prog_t prog;
    ottl_scratch_t scratch;
    om_metric_counter_t *filtered[OM_SIG_COUNT];
    _Atomic uint64_t dropped[OM_SIG_COUNT]; /* items dropped since create (shutdown line) */
    bool shut_down;

    /* The walk in progress. */
    const filter_conds_t *conds;
    const filter_legacy_t *legacy;
    char failure[256]; /* propagate: what failed */

    uint64_t last_warn_ms; /* rate limit of evaluation warnings */
    size_t warns_suppressed;
} proc_filter_t;

/* ---- evaluation --------------------------------------------------------------------------- */

/* Any thread (see Threads): not the loop's cached time. */
static uint64_t now_ms(void)
{
    return uv_hrtime() / 1000000;
}

static void warn_eval(proc_filter_t *p, const char *cond, const char *msg)
{
    uint64_t now = now_ms();
    if (p->last_warn_ms != 0 && now - p->last_warn_ms < 1000) {
        p->warns_suppressed++;
        return;
    }
    OM_CLOG(p->log_name, OM_LOG_WARN,
            "failed evaluating condition \"%.200s\": %s (%zu similar warnings suppressed)", cond,
            msg, p->warns_suppressed);
    p->last_warn_ms = now != 0 ? now : 1;
    p->warns_suppressed = 0;
}

/* The walk's callback: OM_DROP when a condition holds. */
static int eval_item(om_item_t *it, void *arg)
{
    proc_filter_t *p = arg;
    const filter_conds_t *c = p->conds;
    for (size_t i = 0; i < c->n; i++) {
        int rc = proc_filter_ottl_eval(c->e[i], it, &p->scratch);
        if (rc == 1) {
            return OM_DROP;
        }
        if (rc == 0) {
            continue;
        }
        if (rc == OM_ENOMEM) {
            snprintf(p->failure, sizeof p->failure, "out of memory");
            return OM_ENOMEM;
        }
        switch (p->cfg->error_mode) {
        case FILTER_PROPAGATE:
            snprintf(p->failure, sizeof p->failure, "condition \"%.100s\": %.120s", c->text[i],
                     p->scratch.msg);
            return OM_EREFUSED;
        case FILTER_IGNORE:
            warn_eval(p, c->text[i], p->scratch.msg);
            break;
        default:
            break;
        }
    }
    return OM_KEEP;
}

static void warn_limited(proc_filter_t *p)
{
    warn_eval(p, "(include/exclude)",
              "a regex reached its backtracking limit and was taken as not matching");
}

/* The legacy form's callbacks. */
static int legacy_item(om_item_t *it, void *arg)
{
    proc_filter_t *p = arg;
    bool limited = false;
    bool skip = proc_filter_legacy_skip(p->legacy, it, &p->scratch, &limited);
    if (limited) {
        warn_limited(p);
    }
    return skip ? OM_DROP : OM_KEEP;
}

static int legacy_resource(om_item_t *it, void *arg)
{
    proc_filter_t *p = arg;
    bool limited = false;
    bool skip = proc_filter_legacy_skip_resource(p->legacy, it, &p->scratch, &limited);
    if (limited) {
        warn_limited(p);
    }
    return skip ? OM_DROP : OM_KEEP;
}

static int run_legacy(proc_filter_t *p, om_batch_t **b, om_level_t level, filter_legacy_t *l)
{
    bool resource = level == OM_LEVEL_RESOURCE;
    if (l == NULL || (*b)->items == 0 ||
        !(resource ? proc_filter_legacy_has_resource_rule(l)
                   : proc_filter_legacy_has_item_rule(l))) {
        return 0;
    }
    p->legacy = l;
    om_err_t err = {0};
    int rc = om_batch_walk(b, level, resource ? legacy_resource : legacy_item, p, &err);
    if (rc < 0) {
        snprintf(p->failure, sizeof p->failure, "%s",
                 err.msg[0] != '\0' ? err.msg : om_strerror(rc));
    }
    return rc;
}

/* The wire walk's callback: the same verdicts from the item's bytes, or OM_ENOTSUP when only
 * the decoded item can tell. */
static int eval_wire_item(const om_wire_item_t *w, void *arg)
{
    proc_filter_t *p = arg;
    const filter_conds_t *c = p->conds;
    for (size_t i = 0; i < c->n; i++) {
        int rc = proc_filter_ottl_eval_wire(c->e[i], w, &p->scratch);
        if (rc == 1) {
            return OM_DROP;
        }
        if (rc == 0) {
            continue;
        }
        if (rc == OM_ENOTSUP || rc == OM_ENOMEM) {
            return rc;
        }
        switch (p->cfg->error_mode) {
        case FILTER_PROPAGATE:
            snprintf(p->failure, sizeof p->failure, "condition \"%.100s\": %.120s", c->text[i],
                     p->scratch.msg);
            return OM_EREFUSED;
        case FILTER_IGNORE:
            warn_eval(p, c->text[i], p->scratch.msg);
            break;
        default:
            break;
        }
    }
    return OM_KEEP;
}

static int run(proc_filter_t *p, om_batch_t **b, om_level_t level, const filter_conds_t *conds);

/* Walks *b at level with conds when there are any: from its wire bytes when it has them and
 * has not been decoded (decoding the request costs far more than reading the fields the
 * conditions need), else decoded. The decoded walk also takes over, from the start and with
 * nothing dropped yet, when the bytes hold what only decoding reads (OM_ENOTSUP) and when the
 * wire walk finds the bytes malformed (OM_EINVAL: then decoding is the judge, as it would be
 * without this processor). Returns what the walk returns. */
static int run_fast(proc_filter_t *p, om_batch_t **b, om_level_t level, const filter_conds_t *conds)
{
    if (conds->n == 0 || (*b)->items == 0) {
        return 0;
    }
    if (conds->wire_ok && (*b)->raw_valid && (*b)->msg == NULL) {
        p->conds = conds;
        int rc = om_batch_wire_walk(b, level, eval_wire_item, p, NULL);
        if (rc != OM_ENOTSUP && rc != OM_EINVAL) {
            if (rc < 0 && p->failure[0] == '\0') {
                snprintf(p->failure, sizeof p->failure, "%s", om_strerror(rc));
            }
            return rc;
        }
        p->failure[0] = '\0';
    }
    return run(p, b, level, conds);
}

/* Walks *b at level with conds when there are any. Returns what om_batch_walk returns. */
static int run(proc_filter_t *p, om_batch_t **b, om_level_t level, const filter_conds_t *conds)
{
    if (conds->n == 0 || (*b)->items == 0) {
        return 0;
    }
    p->conds = conds;
    om_err_t err = {0};
    int rc = om_batch_walk(b, level, eval_item, p, &err);
    if (rc < 0 && p->failure[0] == '\0') {
        snprintf(p->failure, sizeof p->failure, "%s",
                 err.msg[0] != '\0' ? err.msg : om_strerror(rc));
    }
    return rc;
}

/* After the walks: count, then pass on what is left, if anything. */
static int finish(proc_filter_t *p, om_batch_t *b, int rc, size_t before)
{
    int idx = om_signal_index(b->signal);
    if (rc < 0) {
        OM_CLOG(p->log_name, OM_LOG_ERROR,
                "failed processing %s: %s; the batch of %zu %s is refused",
                om_signal_name(b->signal), p->failure, before, om_signal_item_name(b->signal));
        om_batch_release(b);
        /* Evaluation errors and memory are both worth a retry by the client, as otelcol's
         * non-permanent errors are. */
        return OM_EREFUSED;
    }
    om_metric_counter_add(p->filtered[idx], before - b->items);
    atomic_fetch_add_explicit(&p->dropped[idx], before - b->items, memory_order_relaxed);
    om_batch_counts_t c;
    om_batch_counts(b, &c);
    if (c.resources == 0) {
        om_batch_release(b);
        return 0;
    }
    return om_consumer_consume(&p->next[idx], b);
}

static int consume_traces(void *self, om_batch_t *b)
{
    proc_filter_t *p = self;
    size_t before = b->items;
    p->failure[0] = '\0';
    /* Span events are read decoded: with conditions on them, the spans are too. */
    int rc = p->prog.spanevent.n > 0 ? run(p, &b, OM_LEVEL_SPAN, &p->prog.span)
                                     : run_fast(p, &b, OM_LEVEL_SPAN, &p->prog.span);
    if (rc >= 0) {
        rc = run(p, &b, OM_LEVEL_SPAN_EVENT, &p->prog.spanevent);
    }
    if (rc >= 0) {
        rc = run_legacy(p, &b, OM_LEVEL_SPAN, p->prog.spans);
    }
    return finish(p, b, rc, before);
}

static int consume_metrics(void *self, om_batch_t *b)
{
    proc_filter_t *p = self;
    size_t before = b->items;
    p->failure[0] = '\0';
    int rc = run(p, &b, OM_LEVEL_METRIC, &p->prog.metric);
    if (rc >= 0) {
        rc = run(p, &b, OM_LEVEL_DATAPOINT, &p->prog.datapoint);
    }
    if (rc >= 0) {
        rc = run_legacy(p, &b, OM_LEVEL_RESOURCE, p->prog.metrics);
    }
    if (rc >= 0) {
        rc = run_legacy(p, &b, OM_LEVEL_METRIC, p->prog.metrics);
    }
    return finish(p, b, rc, before);
}

static int consume_logs(void *self, om_batch_t *b)
{
    proc_filter_t *p = self;
    size_t before = b->items;
    p->failure[0] = '\0';
    int rc = run_fast(p, &b, OM_LEVEL_LOG, &p->prog.log_record);
    if (rc >= 0) {
        rc = run_legacy(p, &b, OM_LEVEL_LOG, p->prog.logs);
    }
    return finish(p, b, rc, before);
}

/* ---- lifecycle ---------------------------------------------------------------------------- */

static const om_metric_def_t filtered_defs[OM_SIG_COUNT] = {
    {.name = "otelcol_processor_filter_spans_filtered",
     .help = "Number of spans dropped by the filter processor",
     .unit = "{spans}",
     .type = OM_METRIC_COUNTER},
    {.name = "otelcol_processor_filter_datapoints_filtered",
     .help = "Number of metric data points dropped by the filter processor",
     .unit = "{datapoints}",
     .type = OM_METRIC_COUNTER},
    {.name = "otelcol_processor_filter_logs_filtered",
     .help = "Number of logs dropped by the filter processor",
     .unit = "{logs}",
     .type = OM_METRIC_COUNTER},
};

static int make_counters(proc_filter_t *p, const om_create_args_t *a, om_err_t *err)
{
    if (a->host == NULL || a->host->metrics == NULL) {
        return 0;
    }
    om_label_t label = {"filter", a->id};
    for (int i = 0; i < OM_SIG_COUNT; i++) {
        if (!(a->signals & om_signal_from_index(i)) && a->signals != 0) {
            continue;
        }
        int rc = om_metrics_counter(a->host->metrics, &filtered_defs[i], &label, 1, &p->filtered[i],
                                    err);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

static int filter_create(const om_create_args_t *a, void **self, om_err_t *err)
{
    proc_filter_t *p = om_calloc(1, sizeof *p);
    if (p == NULL) {
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    p->cfg = a->cfg;
    p->log_name = a->log_name;
    p->host = a->host;
    memcpy(p->next, a->next, sizeof p->next);
    int rc = proc_filter_prog_build(p->cfg, &p->prog, err);
    if (rc == 0) {
        rc = make_counters(p, a, err);
    }
    if (rc != 0) {
        proc_filter_prog_free(&p->prog);
        om_free(p);
        return rc;
    }
    *self = p;
    return 0;
}

static int filter_start(void *self, om_err_t *err)
{
    (void)self;
    (void)err;
    return 0;
}

/* Nothing is buffered and no handle is open: done at once, the first time only. */
static void filter_shutdown(void *self, om_done_fn done, void *arg)
{
    proc_filter_t *p = self;
    if (p->shut_down) {
        return;
    }
    p->shut_down = true;
    OM_CLOG(p->log_name, OM_LOG_INFO, "dropped %llu spans, %llu data points, %llu log records",
            (unsigned long long)atomic_load(&p->dropped[0]),
            (unsigned long long)atomic_load(&p->dropped[1]),
            (unsigned long long)atomic_load(&p->dropped[2]));
    done(arg);
}

static void filter_destroy(void *self)
{
    proc_filter_t *p = self;
    proc_filter_prog_free(&p->prog);
    proc_filter_scratch_free(&p->scratch);
    om_free(p);
}

const om_factory_t proc_filter_factory = {
    .abi = OM_FACTORY_ABI,
    .kind = OM_PROCESSOR,
    .type = "filter",
    .help = "drops spans, span events, metrics, data points and log records that match OTTL "
            "conditions",
    .signals = OM_SIG_ALL,
    .caps = OM_CAP_MUTATES_DATA | OM_CAP_OFF_LOOP,
    .config_size = sizeof(proc_filter_cfg_t),
    .fields = proc_filter_fields,
    .config_validate = proc_filter_config_validate,
    .create = filter_create,
    .start = filter_start,
    .shutdown = filter_shutdown,
    .destroy = filter_destroy,
    .consume_traces = consume_traces,
    .consume_metrics = consume_metrics,
    .consume_logs = consume_logs,
};
