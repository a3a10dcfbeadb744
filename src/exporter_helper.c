/* exporter_helper.c: the queue, senders, retries and counters every exporter shares.
 *
 * A request moves queue -> in flight -> (retry wait -> in flight)* -> done. At most
 * num_consumers requests are in flight or waiting to retry at once; a request waiting for its
 * retry keeps its consumer slot, as in otelcol, so a failing backend cannot make the helper
 * hold more than num_consumers + queue_size requests. Loop thread only. */
#include <math.h>
#include <stdlib.h>

#include "om.h"

const om_field_t om__retry_fields[] = {
    OM_RETRY_FIELD_LIST("5s"),
    {.key = NULL},
};

const om_field_t om__queue_fields[] = {
    {.key = "enabled",
     .type = OM_F_BOOL,
     .offset = offsetof(om_queue_cfg_t, enabled),
     .def = "true"},
    {.key = "num_consumers",
     .type = OM_F_INT,
     .offset = offsetof(om_queue_cfg_t, num_consumers),
     .def = "10",
     .min = 1,
     .max = 10000},
    {.key = "queue_size",
     .type = OM_F_INT,
     .offset = offsetof(om_queue_cfg_t, queue_size),
     .def = "1000",
     .min = 1,
     .max = 1e7},
    {.key = "storage", .type = OM_F_IGNORED},
    {.key = "sizer", .type = OM_F_IGNORED},
    {.key = "blocking", .type = OM_F_IGNORED},
    {.key = "block_on_overflow", .type = OM_F_IGNORED},
    {.key = "batch", .type = OM_F_IGNORED},
    {.key = "wait_for_result", .type = OM_F_IGNORED},
    {.key = NULL},
};

/* ------------------------------------------------------------------------------------------ */
/* Metrics, as otelcol's exporterhelper names them (exporter/exporterhelper's internal        */
/* metadata): counters of items per signal labelled by exporter, queue gauges labelled by     */
/* exporter and data_type.                                                                    */

#define COUNTER(n, what, u)                                                                        \
    {                                                                                              \
        .name = n, .help = what, .unit = u, .type = OM_METRIC_COUNTER                              \
    }

static const om_metric_def_t sent_defs[OM_SIG_COUNT] = {
    COUNTER("otelcol_exporter_sent_spans", "Number of spans successfully sent to destination.",
            "{spans}"),
    COUNTER("otelcol_exporter_sent_metric_points",
            "Number of metric points successfully sent to destination.", "{datapoints}"),
    COUNTER("otelcol_exporter_sent_log_records",
            "Number of log record successfully sent to destination.", "{records}"),
};
static const om_metric_def_t send_failed_defs[OM_SIG_COUNT] = {
    COUNTER("otelcol_exporter_send_failed_spans",
            "Number of spans in failed attempts to send to destination.", "{spans}"),
    COUNTER("otelcol_exporter_send_failed_metric_points",
            "Number of metric points in failed attempts to send to destination.", "{datapoints}"),
    COUNTER("otelcol_exporter_send_failed_log_records",
            "Number of log records in failed attempts to send to destination.", "{records}"),
};
static const om_metric_def_t enqueue_failed_defs[OM_SIG_COUNT] = {
    COUNTER("otelcol_exporter_enqueue_failed_spans",
            "Number of spans failed to be added to the sending queue.", "{spans}"),
    COUNTER("otelcol_exporter_enqueue_failed_metric_points",
            "Number of metric points failed to be added to the sending queue.", "{datapoints}"),
    COUNTER("otelcol_exporter_enqueue_failed_log_records",
            "Number of log records failed to be added to the sending queue.", "{records}"),
};
static const om_metric_def_t queue_size_def = {.name = OM_EXP_METRIC_QUEUE_SIZE,
                                               .help =
                                                   "Current size of the retry queue (in batches).",
                                               .unit = "{batches}",
                                               .type = OM_METRIC_GAUGE};
static const om_metric_def_t queue_capacity_def = {
    .name = OM_EXP_METRIC_QUEUE_CAPACITY,
    .help = "Fixed capacity of the retry queue (in batches).",
    .unit = "{batches}",
    .type = OM_METRIC_GAUGE};

const char *om_exp_metric_sent(om_signal_t s)
{
    int i = om_signal_index(s);
    return i < 0 ? "" : sent_defs[i].name;
}

const char *om_exp_metric_send_failed(om_signal_t s)
{
    int i = om_signal_index(s);
    return i < 0 ? "" : send_failed_defs[i].name;
}

const char *om_exp_metric_enqueue_failed(om_signal_t s)
{
    int i = om_signal_index(s);
    return i < 0 ? "" : enqueue_failed_defs[i].name;
}

typedef struct req {
    om_exp_req_t pub; /* first member: om_exp_req_t * converts to req_t * */
    om_exphelper_t *h;
    uint64_t first_ms;   /* when the first attempt started */
    uint64_t backoff_ms; /* the next backoff before randomization */
    uv_timer_t retry;    /* initialised on first use */
    bool timer_ready;
    struct req *next;                  /* queue link */
    struct req *prev_busy, *next_busy; /* busy list link (in flight or waiting to retry) */
} req_t;

struct om_exphelper {
    om_host_t *host;
    const char *log_name;
    const om_exphelper_cfg_t *cfg;
    om_exp_send_fn send;
    void *exporter;
    req_t *head, *tail; /* the queue, oldest first */
    req_t *busy_list;   /* requests in flight or waiting to retry */
    size_t queued;
    size_t busy;    /* requests in flight or waiting to retry */
    size_t closing; /* retry timers whose close callback has not run */
    bool shutting_down;
    bool pumping; /* pump() is on the stack: sends that complete at once must not recurse */
    om_done_fn done;
    void *done_arg;
    /* om_exphelper_shutdown_closing: what to close after draining, and whom to tell then. */
    om_close_fn close;
    void *close_what;
    om_done_fn closed_done;
    void *closed_arg;
    /* The series, per signal index; NULL when the host has no registry or the exporter is
     * not wired for the signal (updates through NULL do nothing). */
    om_metric_counter_t *sent[OM_SIG_COUNT], *send_failed[OM_SIG_COUNT],
        *enqueue_failed[OM_SIG_COUNT];
    size_t queued_sig[OM_SIG_COUNT]; /* queued requests per signal, for queue_size */
    struct queue_obs {
        om_exphelper_t *h;
        int sig;
        om_metric_gauge_t *size, *capacity; /* observed; unobserved in om_exphelper_free */
    } obs[OM_SIG_COUNT];
};

int om_exphelper_cfg_validate(const om_exphelper_cfg_t *cfg, om_err_t *err)
{
    const om_retry_cfg_t *r = &cfg->retry_on_failure;
    if (r->enabled && r->max_interval < r->initial_interval) {
        om_err_at(err, "retry_on_failure::max_interval", "must not be less than initial_interval");
        return OM_ECONFIG;
    }
    return 0;
}

static om_metric_num_t observe_queue_size(void *arg)
{
    const struct queue_obs *o = arg;
    return (om_metric_num_t){.i = (int64_t)o->h->queued_sig[o->sig]};
}

static size_t queue_capacity(const om_exphelper_t *h);

static om_metric_num_t observe_queue_capacity(void *arg)
{
    const struct queue_obs *o = arg;
    return (om_metric_num_t){.i = (int64_t)queue_capacity(o->h)};
}

/* The series of one signal: three counters labelled exporter, and with a queue two gauges
 * labelled exporter and data_type. */
static int make_series(om_exphelper_t *h, om_metrics_t *m, const char *id, int i, om_err_t *err)
{
    om_label_t l[2] = {{"exporter", id}, {"data_type", om_signal_name(om_signal_from_index(i))}};
    int rc = om_metrics_counter(m, &sent_defs[i], l, 1, &h->sent[i], err);
    rc = rc != 0 ? rc : om_metrics_counter(m, &send_failed_defs[i], l, 1, &h->send_failed[i], err);
    rc = rc != 0 ? rc
                 : om_metrics_counter(m, &enqueue_failed_defs[i], l, 1, &h->enqueue_failed[i], err);
    if (rc != 0 || !h->cfg->sending_queue.enabled) {
        return rc;
    }
    struct queue_obs *o = &h->obs[i];
    o->h = h;
    o->sig = i;
    rc = om_metrics_observe(m, &queue_size_def, l, 2, observe_queue_size, o, &o->size, err);
    return rc != 0 ? rc
                   : om_metrics_observe(m, &queue_capacity_def, l, 2, observe_queue_capacity, o,
                                        &o->capacity, err);
}

om_exphelper_t *om_exphelper_new(const om_create_args_t *a, const om_exphelper_cfg_t *cfg,
                                 om_exp_send_fn send, void *exporter, om_err_t *err)
{
    om_exphelper_t *h = om_calloc(1, sizeof *h);
    if (h == NULL) {
        om_err_set(err, OM_ENOMEM, "out of memory");
        return NULL;
    }
    /* Jitter must differ between processes, or collectors restarted together retry in step. */
    static bool seeded;
    if (!seeded) {
        srand((unsigned)uv_hrtime() ^ (unsigned)uv_os_getpid());
        seeded = true;
    }
    h->host = a->host;
    h->log_name = a->log_name;
    h->cfg = cfg;
    h->send = send;
    h->exporter = exporter;
    unsigned sigs = a->signals != 0 ? (unsigned)a->signals : OM_SIG_ALL;
    for (int i = 0; i < OM_SIG_COUNT && a->host->metrics != NULL; i++) {
        if ((sigs & om_signal_from_index(i)) != 0 &&
            make_series(h, a->host->metrics, a->id, i, err) != 0) {
            om_exphelper_free(h);
            return NULL;
        }
    }
    return h;
}

size_t om_exphelper_queue_size(const om_exphelper_t *h)
{
    return h->queued;
}

/* Without a queue, requests still need a place while every consumer is busy: none. */
static size_t queue_capacity(const om_exphelper_t *h)
{
    return h->cfg->sending_queue.enabled ? (size_t)h->cfg->sending_queue.queue_size : 0;
}

static size_t max_busy(const om_exphelper_t *h)
{
    return (size_t)h->cfg->sending_queue.num_consumers;
}

static void maybe_finish_shutdown(om_exphelper_t *h)
{
    if (h->shutting_down && h->done != NULL && h->queued == 0 && h->busy == 0 && h->closing == 0) {
        om_done_fn done = h->done;
        h->done = NULL;
        done(h->done_arg);
    }
}

static void attempt(req_t *r)
{
    r->pub.attempt++;
    r->pub.timeout_ms = (uint64_t)(r->h->cfg->timeout / OM_NS_PER_MS);
    r->pub.exporter_data = NULL;
    r->h->send(r->h->exporter, &r->pub);
}

static void pump(om_exphelper_t *h)
{
    if (h->pumping) {
        return; /* the caller's loop picks up what this call would have sent */
    }
    h->pumping = true;
    while (h->head != NULL && h->busy < max_busy(h)) {
        req_t *r = h->head;
        h->head = r->next;
        if (h->head == NULL) {
            h->tail = NULL;
        }
        h->queued--;
        h->queued_sig[om_signal_index(r->pub.batch->signal)]--;
        h->busy++;
        r->next_busy = h->busy_list;
        if (h->busy_list != NULL) {
            h->busy_list->prev_busy = r;
        }
        h->busy_list = r;
        r->first_ms = uv_now(h->host->loop);
        r->backoff_ms = (uint64_t)(h->cfg->retry_on_failure.initial_interval / OM_NS_PER_MS);
        attempt(r);
    }
    h->pumping = false;
}

int om_exphelper_consume(om_exphelper_t *h, om_batch_t *batch)
{
    int idx = om_signal_index(batch->signal);
    if (h->shutting_down) {
        om_batch_release(batch);
        return OM_ESHUTDOWN;
    }
    bool slot_free = h->busy < max_busy(h) && h->head == NULL;
    if (!slot_free && h->queued >= queue_capacity(h)) {
        om_metric_counter_add(h->enqueue_failed[idx], batch->items);
        OM_CLOG(h->log_name, OM_LOG_WARN, "sending queue is full (%zu requests); refusing %zu %s",
                h->queued, batch->items, om_signal_item_name(batch->signal));
        om_batch_release(batch);
        return OM_EREFUSED;
    }
    req_t *r = om_calloc(1, sizeof *r);
    if (r == NULL) {
        om_batch_release(batch);
        return OM_ENOMEM;
    }
    r->h = h;
    r->pub.batch = batch;
    if (h->tail != NULL) {
        h->tail->next = r;
    } else {
        h->head = r;
    }
    h->tail = r;
    h->queued++;
    h->queued_sig[idx]++;
    om_intake_export_begin(h->host->intake);
    pump(h);
    return 0;
}

static void timer_closed(uv_handle_t *t)
{
    req_t *r = t->data;
    om_exphelper_t *h = r->h;
    om_free(r);
    h->closing--;
    maybe_finish_shutdown(h);
}

static void finish(req_t *r)
{
    om_exphelper_t *h = r->h;
    om_batch_release(r->pub.batch);
    r->pub.batch = NULL;
    h->busy--;
    /* After the release: the memory it frees may end a pause of intake. */
    om_intake_export_end(h->host->intake);
    if (r->prev_busy != NULL) {
        r->prev_busy->next_busy = r->next_busy;
    } else {
        h->busy_list = r->next_busy;
    }
    if (r->next_busy != NULL) {
        r->next_busy->prev_busy = r->prev_busy;
    }
    if (r->timer_ready) {
        h->closing++;
        uv_close((uv_handle_t *)&r->retry, timer_closed);
    } else {
        om_free(r);
    }
    pump(h);
    maybe_finish_shutdown(h);
}

static void retry_now(uv_timer_t *t)
{
    attempt(t->data);
}

/* The wait before the next attempt: the backoff randomized by +-factor, at least what the
 * server asked for. Returns false when max_elapsed_time would be passed. */
static bool next_delay(req_t *r, uint64_t retry_after_ms, uint64_t *delay_ms)
{
    const om_retry_cfg_t *rc = &r->h->cfg->retry_on_failure;
    double base = (double)r->backoff_ms;
    double jitter = rc->randomization_factor * base;
    double d = base - jitter + (2.0 * jitter * ((double)rand() / ((double)RAND_MAX + 1.0)));
    *delay_ms = (uint64_t)d > retry_after_ms ? (uint64_t)d : retry_after_ms;
    double next = base * rc->multiplier;
    double cap = (double)(rc->max_interval / OM_NS_PER_MS);
    r->backoff_ms = (uint64_t)(next > cap ? cap : next);
    uint64_t max_elapsed = (uint64_t)(rc->max_elapsed_time / OM_NS_PER_MS);
    uint64_t elapsed = uv_now(r->h->host->loop) - r->first_ms;
    return max_elapsed == 0 || elapsed + *delay_ms <= max_elapsed;
}

static bool schedule_retry(req_t *r, uint64_t retry_after_ms, const char *why)
{
    uint64_t delay;
    if (r->h->shutting_down || !r->h->cfg->retry_on_failure.enabled ||
        !next_delay(r, retry_after_ms, &delay)) {
        return false;
    }
    if (!r->timer_ready) {
        uv_timer_init(r->h->host->loop, &r->retry);
        r->retry.data = r;
        r->timer_ready = true;
    }
    uv_timer_start(&r->retry, retry_now, delay, 0);
    OM_CLOG(r->h->log_name, OM_LOG_INFO, "exporting failed; will retry in %llu ms: %s",
            (unsigned long long)delay, why);
    return true;
}

bool om_exp_req_done(om_exp_req_t *pub, int rc, uint64_t retry_after_ms, const char *msg)
{
    req_t *r = (req_t *)pub;
    om_exphelper_t *h = r->h;
    om_batch_t *b = pub->batch;
    int idx = om_signal_index(b->signal);
    if (rc == 0) {
        om_metric_counter_add(h->sent[idx], b->items);
        finish(r);
        return false;
    }
    bool retryable = om_err_retryable(rc) || rc == OM_EIO;
    if (retryable && schedule_retry(r, retry_after_ms, msg ? msg : om_strerror(rc))) {
        return true;
    }
    om_metric_counter_add(h->send_failed[idx], b->items);
    OM_CLOG(h->log_name, OM_LOG_ERROR, "exporting failed, dropping %zu %s (%s): %s", b->items,
            om_signal_item_name(b->signal),
            !retryable                         ? "not retryable"
            : h->shutting_down                 ? "shutting down"
            : h->cfg->retry_on_failure.enabled ? "no more retries left"
                                               : "retry_on_failure disabled",
            msg ? msg : om_strerror(rc));
    finish(r);
    return false;
}

/* Requests waiting for a retry timer get their last attempt now. */
static void retry_waiting_now(om_exphelper_t *h)
{
    for (req_t *r = h->busy_list; r != NULL; r = r->next_busy) {
        if (r->timer_ready && uv_is_active((uv_handle_t *)&r->retry)) {
            uv_timer_start(&r->retry, retry_now, 0, 0);
        }
    }
}

void om_exphelper_shutdown(om_exphelper_t *h, om_done_fn done, void *arg)
{
    if (h->shutting_down) {
        return;
    }
    h->shutting_down = true;
    h->done = done;
    h->done_arg = arg;
    if (h->queued > 0 || h->busy > 0) {
        OM_CLOG(h->log_name, OM_LOG_INFO, "draining %zu queued and %zu in-flight requests",
                h->queued, h->busy);
    }
    retry_waiting_now(h);
    maybe_finish_shutdown(h);
}

static void closed(void *arg)
{
    om_exphelper_t *h = arg;
    om_done_fn done = h->closed_done;
    h->closed_done = NULL;
    done(h->closed_arg);
}

static void drained_then_close(void *arg)
{
    om_exphelper_t *h = arg;
    if (h->close_what == NULL) {
        closed(h);
        return;
    }
    h->close(h->close_what, closed, h);
}

void om_exphelper_shutdown_closing(om_exphelper_t *h, om_close_fn close, void *what,
                                   om_done_fn done, void *arg)
{
    if (h->shutting_down) {
        return;
    }
    h->close = close;
    h->close_what = what;
    h->closed_done = done;
    h->closed_arg = arg;
    om_exphelper_shutdown(h, drained_then_close, h);
}

void om_exphelper_free(om_exphelper_t *h)
{
    if (h == NULL) {
        return;
    }
    for (int i = 0; i < OM_SIG_COUNT; i++) {
        om_metrics_unobserve(h->host->metrics, h->obs[i].size);
        om_metrics_unobserve(h->host->metrics, h->obs[i].capacity);
    }
    /* Only after done: nothing is queued or in flight. Defensive for create-then-destroy. */
    while (h->head != NULL) {
        req_t *r = h->head;
        h->head = r->next;
        om_batch_release(r->pub.batch);
        om_free(r);
        om_intake_export_end(h->host->intake);
    }
    om_free(h);
}
