/* spanmetrics.c: the spanmetrics connector, as otelcol-contrib's
 * connector/spanmetricsconnector: request counts (`calls`) and duration histograms
 * (`duration`) from spans, sent as metrics every metrics_flush_interval. Traces in, metrics
 * out: it is listed as an exporter of traces pipelines and a receiver of metrics pipelines.
 *
 * consume reads the spans read-only (the traces batch, which other exporters of the pipeline
 * may share, is left as it was): from the bytes the batch arrived in (spanmetrics_wire.c)
 * while it has them and is not decoded, else from its structs; and counts them into the
 * aggregate (spanmetrics_agg.c). It never refuses data while running. A repeating timer builds the
 * metrics batch (spanmetrics_build.c) and hands it to the next consumer, then settles the
 * aggregate (delta resets, expiration, exemplars cleared). Shutdown sends what was counted
 * since the last flush one last time (otelcol drops it), then closes the timer; done runs from
 * its close callback. The pipelines the metrics go to stop after this connector (the core
 * shuts connectors down before the pipelines they feed).
 *
 * Loop thread only. Memory: see spanmetrics_agg.c; the batches sent are the next consumer's. */
#include <string.h>

#include "spanmetrics.h"

typedef struct conn_spanmetrics {
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
} conn_spanmetrics_t;

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

static int spanmetrics_consume(void *self, om_batch_t *b)
{
    conn_spanmetrics_t *c = self;
    if (c->shut) {
        om_batch_release(b);
        return OM_ESHUTDOWN;
    }
    uint64_t now = c->agg.clock(c->agg.clock_arg);
    int rc = 0;
    if (b->signal != OM_SIG_TRACES) {
        rc = OM_EINVAL;
    } else if (b->msg == NULL && b->raw_valid) {
        /* The bytes it arrived in, read in place: decoding a whole batch to read a few fields
         * of each span would cost more than the rest of the path. */
        for (size_t i = 0; rc == 0 && i < b->n_raw; i++) {
            rc = conn_spanmetrics_add_wire(&c->agg, b->raw[i].data, b->raw[i].len, now);
        }
    } else {
        om_err_t err = {0};
        rc = om_batch_decode(b, &err);
        rc = rc != 0 ? rc : conn_spanmetrics_add(&c->agg, b->traces, now);
    }
    om_batch_release(b);
    if (rc != 0) {
        /* The spans reach their other exporters all the same: only metrics are lost, so the
         * client is not asked to send them again (it would count them twice). */
        warn(c, "spans not counted", rc);
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

static void spanmetrics_shutdown(void *self, om_done_fn done, void *arg)
{
    conn_spanmetrics_t *c = self;
    if (c->shut) {
        return;
    }
    flush(c, true);
    c->shut = true;
    if (!c->timer_init) {
        done(arg);
        return;
    }
    c->done = done;
    c->done_arg = arg;
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, on_timer_closed);
}

static void spanmetrics_destroy(void *self)
{
    conn_spanmetrics_t *c = self;
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
