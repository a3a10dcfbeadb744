/* spanmetrics.c: the spanmetrics connector, as otelcol-contrib's
 * connector/spanmetricsconnector: request counts (`calls`) and duration histograms
 * (`duration`) from spans, sent as metrics every metrics_flush_interval. Traces in, metrics
 * out: it is listed as an exporter of traces pipelines and a receiver of metrics pipelines.
 *
 * Where the work runs. consume keeps its reference on the traces batch (read only: other
 * exporters of the pipeline may share it), queues a job on the host's worker pool and returns
 * 0 at once, like an exporter's queue. The worker scans the spans, from the bytes the batch
 * arrived in (spanmetrics_wire.c) while it has them and is not decoded, else from its structs,
 * into the job's partial result: one entry per distinct series key of the batch
 * (spanmetrics_part.c). Its done, on the loop, releases the batch, and the loop merges the
 * partial results into the aggregate (spanmetrics_agg.c) in the order the batches arrived,
 * which makes the result exactly that of counting each batch span by span when it is merged
 * (the resource LRU, the cardinality limits and exemplars depend on the order). So the loop
 * does per batch what is per key; the per-span work is the worker's. When the pool refuses a
 * job (its queue is full, there is no pool, it is closing) or cancels it, the loop scans the
 * batch itself, at once, into the same kind of partial result, queued in the same order: the
 * same result, and a full pool slows the loop rather than growing a backlog. Jobs in flight
 * are thus bounded by the pool's queue; each holds its batch until scanned and its partial
 * result (bounded by the batch) until merged.
 *
 * It never refuses data while running. A repeating timer builds the metrics batch
 * (spanmetrics_build.c) from what is merged and hands it to the next consumer, then settles
 * the aggregate (delta resets, expiration, exemplars cleared); a batch whose job has not come
 * back yet is in the next flush, as with any batch that arrives after the timer. Shutdown
 * refuses new batches, waits for the jobs in flight and merges them, sends what was counted
 * since the last flush one last time (otelcol drops it), then closes the timer; done runs from
 * its close callback. The pipelines the metrics go to stop after this connector (the core
 * shuts connectors down before the pipelines they feed).
 *
 * Loop thread, except job_work. Memory: see spanmetrics_agg.c and spm_job_t; the batches sent
 * are the next consumer's. */
#include <string.h>

#include "spanmetrics.h"

typedef struct conn_spanmetrics conn_spanmetrics_t;

/* One traces batch being counted. The loop's (in the connector's queue or free list), except
 * from om_workers_submit until its done runs: then scan, part, rc and thread are the
 * worker's, and the loop touches none of the job. */
typedef struct spm_job {
    om_job_t job;
    conn_spanmetrics_t *c;
    om_batch_t *batch;  /* the reference consume was handed; released by the loop once scanned */
    bool wire;          /* scan the wire bytes (decided on the loop at consume) */
    bool scanned;       /* part is complete: it merges when it reaches the queue's head */
    spm_t scan;         /* a scanner (settings borrowed from c->agg, scratch its own) */
    spm_part_t part;    /* the partial result; the merge reads it on the loop */
    int rc;             /* the scan's result */
    uv_thread_t thread; /* the thread that scanned (tests) */
    struct spm_job *next;
} spm_job_t;

#define SPM_FREE_JOBS 4 /* jobs kept for reuse (their scratch and part arrays stay allocated) */
/* A kept job's part keeps its arrays up to this many entries (a few hundred KB); one that a
 * batch of many distinct keys grew past it gives them back. */
#define SPM_PART_KEEP 2048

struct conn_spanmetrics {
    const conn_spanmetrics_cfg_t *cfg;
    const char *log_name;
    om_host_t *host;
    om_consumer_t next; /* metrics */
    spm_t agg;
    uv_timer_t timer;
    bool timer_init, shut;
    om_done_fn done;
    void *done_arg;
    uint64_t last_warn_ms; /* rate limit of warnings */
    size_t suppressed;
    /* Jobs in the order their batches arrived (merged from the head as they are scanned),
     * and jobs for reuse. */
    spm_job_t *head, *tail, *free_jobs;
    size_t n_queued, n_free;
    bool stopping;                     /* shutdown waits for the queue to empty */
    uint64_t worker_scans, loop_scans; /* tests */
    uv_thread_t last_scan_thread;      /* tests */
};

static void warn(conn_spanmetrics_t *c, const char *what, int rc)
{
    uint64_t now = c->host != NULL && c->host->loop != NULL ? uv_now(c->host->loop) : 0;
    if (c->last_warn_ms != 0 && now - c->last_warn_ms < 1000) {
        c->suppressed++;
        return;
    }
    OM_CLOG(c->log_name, OM_LOG_WARN, "%s: %s (%zu similar warnings suppressed)", what,
            om_strerror(rc), c->suppressed);
    c->last_warn_ms = now != 0 ? now : 1;
    c->suppressed = 0;
}

static void flush(conn_spanmetrics_t *c, bool final);
static void finish_shutdown(conn_spanmetrics_t *c);

/* Any thread (the job's). The spans of the batch into the job's part: from the bytes it
 * arrived in, read in place (decoding a whole batch to read a few fields of each span would
 * cost more than the rest of the path), else from its structs. Reads the batch only. */
static void scan(spm_job_t *j)
{
    const om_batch_t *b = j->batch;
    int rc = 0;
    if (j->wire) {
        for (size_t i = 0; rc == 0 && i < b->n_raw; i++) {
            rc = conn_spanmetrics_scan_wire(&j->scan, &j->part, b->raw[i].data, b->raw[i].len);
        }
    } else {
        rc = conn_spanmetrics_scan(&j->scan, &j->part, b->traces);
    }
    j->rc = rc;
    j->thread = uv_thread_self();
}

static void job_work(om_job_t *job, void *thread_data)
{
    (void)thread_data;
    scan((spm_job_t *)job);
}

static void job_free(spm_job_t *j)
{
    conn_spanmetrics_free(&j->scan);
    conn_spanmetrics_part_free(&j->part);
    om_free(j);
}

static spm_job_t *job_get(conn_spanmetrics_t *c)
{
    spm_job_t *j = c->free_jobs;
    if (j != NULL) {
        c->free_jobs = j->next;
        c->n_free--;
    } else {
        j = om_calloc(1, sizeof *j);
        if (j == NULL || conn_spanmetrics_scanner_init(&j->scan, &c->agg) != 0) {
            om_free(j);
            return NULL;
        }
        j->c = c;
    }
    j->next = NULL;
    j->scanned = false;
    j->rc = 0;
    conn_spanmetrics_part_reset(&j->part);
    return j;
}

static void job_put(conn_spanmetrics_t *c, spm_job_t *j)
{
    if (c->n_free >= SPM_FREE_JOBS) {
        job_free(j);
        return;
    }
    if (j->part.ents_cap > SPM_PART_KEEP) {
        conn_spanmetrics_part_free(&j->part);
    }
    conn_spanmetrics_part_reset(&j->part);
    j->next = c->free_jobs;
    c->free_jobs = j;
    c->n_free++;
}

/* The head's partial results into the aggregate while they are scanned, in arrival order. */
static void drain(conn_spanmetrics_t *c)
{
    while (c->head != NULL && c->head->scanned) {
        spm_job_t *j = c->head;
        c->head = j->next;
        c->tail = c->head != NULL ? c->tail : NULL;
        c->n_queued--;
        int rc = conn_spanmetrics_merge(&c->agg, &j->part, c->agg.clock(c->agg.clock_arg));
        rc = j->rc != 0 ? j->rc : rc;
        if (rc != 0) {
            /* The spans reach their other exporters all the same: only metrics are lost, so
             * the client is not asked to send them again (it would count them twice). */
            warn(c, "spans not counted", rc);
        }
        c->last_scan_thread = j->thread;
        job_put(c, j);
    }
    if (c->stopping && c->head == NULL) {
        finish_shutdown(c);
    }
}

/* Loop thread: the scan done, the batch goes back. */
static void scanned(spm_job_t *j)
{
    om_batch_release(j->batch);
    j->batch = NULL;
    j->scanned = true;
}

static void job_done(om_job_t *job, int status)
{
    spm_job_t *j = (spm_job_t *)job;
    if (status != 0) {
        scan(j); /* cancelled (the pool is closing): the loop does it */
        j->c->loop_scans++;
    } else {
        j->c->worker_scans++;
    }
    scanned(j);
    drain(j->c);
}

static int spanmetrics_consume(void *self, om_batch_t *b)
{
    conn_spanmetrics_t *c = self;
    if (c->shut) {
        om_batch_release(b);
        return OM_ESHUTDOWN;
    }
    om_err_t err = {0};
    int rc = b->signal != OM_SIG_TRACES ? OM_EINVAL : 0;
    bool wire = rc == 0 && b->msg == NULL && b->raw_valid;
    /* Decoding fills the batch's cache: the loop's to do (a no-op when decoded). */
    rc = rc != 0 || wire ? rc : om_batch_decode(b, &err);
    spm_job_t *j = rc == 0 ? job_get(c) : NULL;
    if (j == NULL) {
        om_batch_release(b);
        warn(c, "spans not counted", rc != 0 ? rc : OM_ENOMEM);
        return 0;
    }
    j->batch = b;
    j->wire = wire;
    *(c->tail != NULL ? &c->tail->next : &c->head) = j;
    c->tail = j;
    c->n_queued++;
    if (om_workers_submit(c->host->workers, &j->job, job_work, job_done) != 0) {
        /* Refused (queue full, no pool, closing): the loop scans it now, and it merges in
         * its turn like the others. */
        scan(j);
        c->loop_scans++;
        scanned(j);
        drain(c);
    }
    return 0;
}

/* Sends what the aggregate holds. final: the last flush, at shutdown. */
static void flush(conn_spanmetrics_t *c, bool final)
{
    uint64_t now = c->agg.clock(c->agg.clock_arg);
    om_batch_t *out = NULL;
    int rc = conn_spanmetrics_build(&c->agg, now, final, &out);
    if (rc != 0) {
        warn(c, "cannot build the metrics (they are sent at the next flush)", rc);
        return;
    }
    conn_spanmetrics_after_flush(&c->agg, now);
    if (out != NULL) {
        rc = om_consumer_consume(&c->next, out);
        if (rc != 0) {
            warn(c, "Failed ConsumeMetrics", rc);
        }
    }
}

static void on_timer(uv_timer_t *t)
{
    flush(t->data, false);
}

static int spanmetrics_create(const om_create_args_t *a, void **self, om_err_t *err)
{
    conn_spanmetrics_t *c = om_calloc(1, sizeof *c);
    if (c == NULL || conn_spanmetrics_init(&c->agg, a->cfg, a->log_name) != 0) {
        om_free(c);
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    c->cfg = a->cfg;
    c->log_name = a->log_name;
    c->host = a->host;
    c->next = a->next[om_signal_index(OM_SIG_METRICS)];
    *self = c;
    return 0;
}

static int spanmetrics_start(void *self, om_err_t *err)
{
    conn_spanmetrics_t *c = self;
    int rc = uv_timer_init(c->host->loop, &c->timer);
    if (rc != 0) {
        om_err_set(err, OM_EIO, "cannot create the flush timer: %s", uv_strerror(rc));
        return OM_EIO;
    }
    c->timer.data = c;
    c->timer_init = true;
    uint64_t ms = (uint64_t)((c->cfg->metrics_flush_interval + OM_NS_PER_MS - 1) / OM_NS_PER_MS);
    uv_timer_start(&c->timer, on_timer, ms, ms);
    return 0;
}

static void on_timer_closed(uv_handle_t *h)
{
    conn_spanmetrics_t *c = h->data;
    c->done(c->done_arg);
}

/* The jobs are all merged: the last flush, then the timer closes. */
static void finish_shutdown(conn_spanmetrics_t *c)
{
    c->stopping = false;
    flush(c, true);
    if (!c->timer_init) {
        c->done(c->done_arg);
        return;
    }
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, on_timer_closed);
}

static void spanmetrics_shutdown(void *self, om_done_fn done, void *arg)
{
    conn_spanmetrics_t *c = self;
    if (c->shut) {
        return;
    }
    c->shut = true;
    c->done = done;
    c->done_arg = arg;
    if (c->head != NULL) {
        c->stopping = true; /* the last job's done finishes */
        return;
    }
    finish_shutdown(c);
}

static void spanmetrics_destroy(void *self)
{
    conn_spanmetrics_t *c = self;
    while (c->free_jobs != NULL) {
        spm_job_t *j = c->free_jobs;
        c->free_jobs = j->next;
        job_free(j);
    }
    conn_spanmetrics_free(&c->agg);
    om_free(c);
}

/* Tests: the aggregate, its clock, and a flush now. */
spm_t *conn_spanmetrics_agg(void *self)
{
    return &((conn_spanmetrics_t *)self)->agg;
}

void conn_spanmetrics_flush(void *self, bool final)
{
    flush(self, final);
}

void conn_spanmetrics_jobs(void *self, uint64_t *worker_scans, uint64_t *loop_scans, size_t *queued,
                           uv_thread_t *last_thread)
{
    const conn_spanmetrics_t *c = self;
    *worker_scans = c->worker_scans;
    *loop_scans = c->loop_scans;
    *queued = c->n_queued;
    *last_thread = c->last_scan_thread;
}

const om_factory_t conn_spanmetrics_factory = {
    .abi = OM_FACTORY_ABI,
    .kind = OM_CONNECTOR,
    .type = "spanmetrics",
    .help = "request counts and duration histograms (R.E.D. metrics) from spans",
    .signals = OM_SIG_TRACES,
    .connects = {[0] = OM_SIG_METRICS},
    .caps = 0,
    .config_size = sizeof(conn_spanmetrics_cfg_t),
    .fields = conn_spanmetrics_fields,
    .config_validate = conn_spanmetrics_cfg_validate,
    .create = spanmetrics_create,
    .start = spanmetrics_start,
    .shutdown = spanmetrics_shutdown,
    .destroy = spanmetrics_destroy,
    .consume_traces = spanmetrics_consume,
};
