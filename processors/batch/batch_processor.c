/* batch_processor.c: the batch processor, with otelcol's semantics.
 *
 * - Items are spans, metric data points or log records (batch->items).
 * - When the pending items reach send_batch_size, batches are sent until fewer remain; each
 *   sent batch holds at most send_batch_max_size items (0: no limit), split at item
 *   granularity. The remainder waits for more data or for the timer.
 * - The timer starts when the first item arrives into an empty processor and sends whatever is
 *   pending `timeout` later. With timeout 0 (or send_batch_size 0) there is no timer: data is
 *   sent as soon as it arrives, split by send_batch_max_size only.
 * - consume accepts (returns 0) unless shutting down: like otelcol, the data is then owned by
 *   the processor. When the next consumer fails, the batch sent to it is lost: this is logged
 *   at warn with the count (rate-limited to one line a second), as otelcol's "Sender failed".
 * - Shutdown sends everything pending synchronously, then closes the timer; done runs from
 *   the close callback.
 *
 * The core makes one instance per pipeline, so one signal per instance; an instance wired for
 * several signals still works: each signal has its own lane (queue, cutter, timer). */
#include <string.h>

#include "batch.h"

/* The state for one signal. */
typedef struct lane {
    struct proc_batch *p;
    om_signal_t signal;
    batch_entry_t *queue; /* ring buffer of input batches, capacity cap (a power of two) */
    size_t head, len, cap;
    size_t pending; /* unsent items in the queue */
    batch_cutter_t cutter;
    uv_timer_t timer;
    bool timer_init, flushing;
} lane_t;

typedef struct proc_batch {
    const proc_batch_cfg_t *cfg;
    const char *log_name;
    om_host_t *host;
    om_consumer_t next[OM_SIG_COUNT];
    lane_t lanes[OM_SIG_COUNT];
    bool shutting_down;
    int closing; /* timers whose close callback has not run yet */
    om_done_fn done;
    void *done_arg;

    uint64_t last_warn_ms; /* rate limit for "sender failed" */
    size_t warns_suppressed;

    /* otelcol's batch processor telemetry (NULL without a registry). */
    om_metric_histogram_t *m_send_size;
    om_metric_counter_t *m_timeout_trigger, *m_size_trigger;
} proc_batch_t;

/* Why a flush sends: the counters otelcol keeps per trigger. */
typedef enum { SEND_OTHER, SEND_SIZE, SEND_TIMEOUT } send_why_t;

static const double send_size_bounds[] = {10,   25,    50,    75,    100,   250,   500,  750,
                                          1000, 2000,  3000,  4000,  5000,  6000,  7000, 8000,
                                          9000, 10000, 20000, 30000, 50000, 100000};
static const om_metric_def_t send_size_def = {.name = "otelcol_processor_batch_batch_send_size",
                                              .help = "Number of units in the batch",
                                              .unit = "{units}",
                                              .type = OM_METRIC_HISTOGRAM,
                                              .bounds = send_size_bounds,
                                              .n_bounds = sizeof send_size_bounds /
                                                          sizeof send_size_bounds[0],
                                              .level = OM_METRIC_LEVEL_NORMAL};
static const om_metric_def_t timeout_trigger_def = {
    .name = "otelcol_processor_batch_timeout_trigger_send",
    .help = "Number of times the batch was sent due to a timeout trigger",
    .unit = "{times}",
    .type = OM_METRIC_COUNTER,
    .level = OM_METRIC_LEVEL_NORMAL};
static const om_metric_def_t size_trigger_def = {
    .name = "otelcol_processor_batch_batch_size_trigger_send",
    .help = "Number of times the batch was sent due to a size trigger",
    .unit = "{times}",
    .type = OM_METRIC_COUNTER,
    .level = OM_METRIC_LEVEL_NORMAL};

static const om_field_t batch_fields[] = {
    {.key = "timeout",
     .type = OM_F_DURATION,
     .offset = offsetof(proc_batch_cfg_t, timeout),
     .def = "200ms",
     .help = "send what is pending this long after the first item arrived"},
    {.key = "send_batch_size",
     .type = OM_F_INT,
     .offset = offsetof(proc_batch_cfg_t, send_batch_size),
     .def = "8192",
     .min = 0,
     .max = 4294967295.0,
     .help = "items (spans, data points, log records) that trigger a send"},
    {.key = "send_batch_max_size",
     .type = OM_F_INT,
     .offset = offsetof(proc_batch_cfg_t, send_batch_max_size),
     .def = "0",
     .min = 0,
     .max = 4294967295.0,
     .help = "most items in one sent batch; larger ones are split (0: no limit)"},
    {.key = "metadata_keys", .type = OM_F_IGNORED},
    {.key = "metadata_cardinality_limit", .type = OM_F_IGNORED},
    {.key = NULL},
};

static int batch_config_validate(const void *vcfg, om_err_t *err)
{
    const proc_batch_cfg_t *cfg = vcfg;
    if (cfg->send_batch_max_size > 0 && cfg->send_batch_max_size < cfg->send_batch_size) {
        om_err_at(err, "send_batch_max_size", "must be greater or equal to send_batch_size (%lld)",
                  (long long)cfg->send_batch_size);
        return OM_ECONFIG;
    }
    if (cfg->timeout < 0) {
        om_err_at(err, "timeout", "must be greater or equal to 0");
        return OM_ECONFIG;
    }
    return 0;
}

/* ---- the queue --------------------------------------------------------------------------- */

static batch_entry_t *queue_head(lane_t *l)
{
    return l->len > 0 ? &l->queue[l->head] : NULL;
}

static void queue_pop(lane_t *l)
{
    l->head = (l->head + 1) & (l->cap - 1);
    l->len--;
}

static int queue_push(lane_t *l, om_batch_t *b, size_t items)
{
    if (l->len == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        batch_entry_t *q = om_malloc(cap * sizeof *q);
        if (q == NULL) {
            return OM_ENOMEM;
        }
        for (size_t i = 0; i < l->len; i++) {
            q[i] = l->queue[(l->head + i) & (l->cap - 1)];
        }
        om_free(l->queue);
        l->queue = q;
        l->cap = cap;
        l->head = 0;
    }
    l->queue[(l->head + l->len) & (l->cap - 1)] = (batch_entry_t){b, items};
    l->len++;
    return 0;
}

/* Releases everything queued; returns how many unsent items that was. */
static size_t queue_drop_all(lane_t *l)
{
    size_t dropped = l->pending;
    while (l->len > 0) {
        om_batch_release(queue_head(l)->batch);
        queue_pop(l);
    }
    l->pending = 0;
    proc_batch_cutter_reset(&l->cutter);
    return dropped;
}

/* ---- sending ----------------------------------------------------------------------------- */

static void warn_dropped(lane_t *l, int rc, size_t items)
{
    proc_batch_t *p = l->p;
    uint64_t now = p->host != NULL && p->host->loop != NULL ? uv_now(p->host->loop) : 0;
    if (p->last_warn_ms != 0 && now - p->last_warn_ms < 1000) {
        p->warns_suppressed++;
        return;
    }
    OM_CLOG(p->log_name, OM_LOG_WARN,
            "Sender failed: %s; dropped %zu %s (%zu similar warnings suppressed)", om_strerror(rc),
            items, om_signal_item_name(l->signal), p->warns_suppressed);
    p->last_warn_ms = now != 0 ? now : 1;
    p->warns_suppressed = 0;
}

static void send_batch(lane_t *l, om_batch_t *b)
{
    size_t items = b->items;
    om_metric_histogram_observe(l->p->m_send_size, (double)items);
    int rc = om_consumer_consume(&l->p->next[om_signal_index(l->signal)], b);
    if (rc != 0) {
        warn_dropped(l, rc, items);
    }
}

/* Adds one piece to the batch being assembled: the first piece is kept as it is (so a lone
 * input batch is forwarded untouched); from the second on, all go into a new batch. */
static int add_piece(lane_t *l, om_batch_t **first, om_batch_t **merged, om_batch_t *piece)
{
    if (*first == NULL && *merged == NULL) {
        *first = piece;
        return 0;
    }
    if (*merged == NULL) {
        *merged = om_batch_new(l->signal, 0);
        if (*merged == NULL) {
            om_batch_release(piece);
            return OM_ENOMEM;
        }
        int rc = om_batch_append(*merged, *first);
        *first = NULL;
        if (rc != 0) {
            om_batch_release(piece);
            return rc;
        }
    }
    return om_batch_append(*merged, piece);
}

/* Takes up to *roomp items from the front of the queue: whole inputs, then a cut of the next
 * one; *roomp is left with the room not used. Returns OM_ENOMEM when out of memory (the queue is
 * then dropped by the caller). */
static int take_from_queue(lane_t *l, size_t *roomp, om_batch_t **first, om_batch_t **merged)
{
    int rc = 0;
    size_t room = *roomp;
    /* Bounded by the queue length: each turn pops an input or ends the loop. */
    while (rc == 0 && l->len > 0 && room > 0) {
        batch_entry_t *e = queue_head(l);
        if (!proc_batch_cutter_started(&l->cutter) && e->items <= room) {
            om_batch_t *whole = e->batch;
            room -= e->items;
            l->pending -= e->items;
            queue_pop(l);
            rc = add_piece(l, first, merged, whole);
            continue;
        }
        om_batch_t *piece = NULL;
        bool done = false;
        size_t before = e->items;
        rc = proc_batch_cut(&l->cutter, e, room, &piece, &done);
        if (rc != 0) {
            break;
        }
        l->pending -= before - e->items;
        room -= piece->items;
        if (done) {
            om_batch_release(e->batch);
            queue_pop(l);
        }
        rc = add_piece(l, first, merged, piece);
        if (!done) {
            break;
        }
    }
    *roomp = room;
    return rc;
}

/* Sends one batch of at most send_batch_max_size items from the front of the queue. */
static void send_one(lane_t *l, send_why_t why)
{
    om_metric_counter_add(why == SEND_SIZE      ? l->p->m_size_trigger
                          : why == SEND_TIMEOUT ? l->p->m_timeout_trigger
                                                : NULL,
                          1);
    size_t max = (size_t)l->p->cfg->send_batch_max_size;
    size_t room = max > 0 && max < l->pending ? max : l->pending;
    size_t left = room;
    om_batch_t *first = NULL, *merged = NULL;
    int rc = take_from_queue(l, &left, &first, &merged);
    om_batch_t *out = merged != NULL ? merged : first;
    if (rc != 0) {
        size_t lost = (out != NULL ? out->items : 0) + queue_drop_all(l);
        OM_CLOG(l->p->log_name, OM_LOG_WARN, "out of memory while batching: dropped %zu %s", lost,
                om_signal_item_name(l->signal));
        om_batch_release(out);
        return;
    }
    if (out != NULL) {
        send_batch(l, out);
    }
}

/* Sends while the size trigger holds, or everything when all is set. */
static void flush(lane_t *l, bool all, send_why_t why)
{
    size_t trigger = (size_t)l->p->cfg->send_batch_size;
    /* A consumer that calls back into this processor must not start a second flush. */
    if (l->flushing) {
        return;
    }
    l->flushing = true;
    /* Bounded: every turn sends at least one item or drops the queue. */
    while (l->pending > 0 && (all || l->pending >= trigger)) {
        send_one(l, all ? why : SEND_SIZE);
    }
    /* Nothing is left to send but empty structure: let it go. */
    if (l->pending == 0) {
        queue_drop_all(l);
    }
    l->flushing = false;
}

static bool has_timer(const lane_t *l)
{
    return l->timer_init && l->p->cfg->timeout > 0 && l->p->cfg->send_batch_size > 0;
}

static uint64_t timeout_ms(const proc_batch_t *p)
{
    return (uint64_t)((p->cfg->timeout + OM_NS_PER_MS - 1) / OM_NS_PER_MS);
}

static void on_timer(uv_timer_t *t)
{
    flush(t->data, true, SEND_TIMEOUT);
}

/* ---- consume ----------------------------------------------------------------------------- */

static int batch_consume(void *self, om_batch_t *b)
{
    proc_batch_t *p = self;
    int idx = om_signal_index(b->signal);
    if (p->shutting_down || idx < 0) {
        om_batch_release(b);
        return idx < 0 ? OM_EINVAL : OM_ESHUTDOWN;
    }
    size_t items = b->items; /* kept by the core through every change */
    if (items == 0) {
        om_batch_release(b); /* otelcol drops empty batches here too */
        return 0;
    }
    lane_t *l = &p->lanes[idx];
    if (queue_push(l, b, items) != 0) {
        om_batch_release(b);
        return OM_ENOMEM;
    }
    l->pending += items;
    if (!has_timer(l)) {
        flush(l, true, SEND_OTHER);
        return 0;
    }
    bool was_idle = l->pending == items;
    bool sent = l->pending >= (size_t)p->cfg->send_batch_size;
    flush(l, false, SEND_SIZE);
    if (l->pending == 0) {
        uv_timer_stop(&l->timer);
    } else if (was_idle || sent) {
        /* What remains arrived now: it waits at most `timeout` from here. */
        uv_timer_start(&l->timer, on_timer, timeout_ms(p), 0);
    }
    return 0;
}

/* ---- lifecycle --------------------------------------------------------------------------- */

static int batch_create(const om_create_args_t *a, void **self, om_err_t *err)
{
    proc_batch_t *p = om_calloc(1, sizeof *p);
    if (p == NULL) {
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    p->cfg = a->cfg;
    p->log_name = a->log_name;
    p->host = a->host;
    memcpy(p->next, a->next, sizeof p->next);
    for (int i = 0; i < OM_SIG_COUNT; i++) {
        lane_t *l = &p->lanes[i];
        l->p = p;
        l->signal = om_signal_from_index(i);
        proc_batch_cutter_init(&l->cutter, l->signal);
    }
    if (a->host != NULL && a->host->metrics != NULL) {
        om_label_t lab[] = {{"processor", a->id}};
        om_metrics_t *m = a->host->metrics;
        int rc = om_metrics_histogram(m, &send_size_def, lab, 1, &p->m_send_size, err);
        rc = rc ? rc
                : om_metrics_counter(m, &timeout_trigger_def, lab, 1, &p->m_timeout_trigger, err);
        rc = rc ? rc : om_metrics_counter(m, &size_trigger_def, lab, 1, &p->m_size_trigger, err);
        if (rc != 0) {
            om_free(p);
            return rc;
        }
    }
    *self = p;
    return 0;
}

static int batch_start(void *self, om_err_t *err)
{
    proc_batch_t *p = self;
    for (int i = 0; i < OM_SIG_COUNT; i++) {
        lane_t *l = &p->lanes[i];
        int rc = uv_timer_init(p->host->loop, &l->timer);
        if (rc != 0) {
            om_err_set(err, OM_EIO, "cannot create the batch timer: %s", uv_strerror(rc));
            return OM_EIO;
        }
        l->timer.data = l;
        l->timer_init = true;
    }
    return 0;
}

static void on_timer_closed(uv_handle_t *h)
{
    lane_t *l = h->data;
    proc_batch_t *p = l->p;
    if (--p->closing == 0) {
        p->done(p->done_arg);
    }
}

static void batch_shutdown(void *self, om_done_fn done, void *arg)
{
    proc_batch_t *p = self;
    if (p->shutting_down) {
        return;
    }
    for (int i = 0; i < OM_SIG_COUNT; i++) {
        flush(&p->lanes[i], true, SEND_OTHER);
    }
    p->shutting_down = true;
    p->done = done;
    p->done_arg = arg;
    /* Count every timer before closing any, so done runs once, after the last one. */
    for (int i = 0; i < OM_SIG_COUNT; i++) {
        p->closing += p->lanes[i].timer_init;
    }
    if (p->closing == 0) {
        done(arg);
        return;
    }
    for (int i = 0; i < OM_SIG_COUNT; i++) {
        lane_t *l = &p->lanes[i];
        if (l->timer_init) {
            uv_timer_stop(&l->timer);
            uv_close((uv_handle_t *)&l->timer, on_timer_closed);
        }
    }
}

static void batch_destroy(void *self)
{
    proc_batch_t *p = self;
    for (int i = 0; i < OM_SIG_COUNT; i++) {
        lane_t *l = &p->lanes[i];
        queue_drop_all(l);
        om_free(l->queue);
        proc_batch_cutter_free(&l->cutter);
    }
    om_free(p);
}

const om_factory_t proc_batch_factory = {
    .abi = OM_FACTORY_ABI,
    .kind = OM_PROCESSOR,
    .type = "batch",
    .help = "groups spans, data points and log records into batches by size and time",
    .signals = OM_SIG_ALL,
    .caps = 0,
    .config_size = sizeof(proc_batch_cfg_t),
    .fields = batch_fields,
    .config_validate = batch_config_validate,
    .create = batch_create,
    .start = batch_start,
    .shutdown = batch_shutdown,
    .destroy = batch_destroy,
    .consume_traces = batch_consume,
    .consume_metrics = batch_consume,
    .consume_logs = batch_consume,
};
