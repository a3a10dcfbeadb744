/* prw_exporter.c: the prometheusremotewrite exporter's factory, lifecycle and export
 * attempts.
 *
 * Threads and ownership. Everything here runs on the loop, except the encoding: the exporter
 * helper calls exp_prw_send() for an attempt; on the first attempt of a batch we hand it to
 * the host's worker pool, which translates it into snappy-compressed remote-write requests
 * (prw_encode.c: it only reads the batch, which the helper keeps referenced until the attempt
 * ends): from its wire bytes when it is still only those (the usual case: nothing before us
 * decoded it; the job then reads only the immutable raw segments, so another holder may
 * decode the shared batch on the loop meanwhile), else decoded first on the loop, as om.h's
 * worker rules ask. Bytes the wire path leaves to the decoder (OM_ENOTSUP) are decoded on the
 * loop and the job submitted again. The job's done, back
 * on the loop, sends them through the core's HTTP client (libcurl on the loop), at most
 * remote_write_queue::num_consumers at once. When the pool refuses the job, the loop encodes.
 *
 * Two batches at a time, in order. The helper hands us the next batch while the previous one
 * is being sent (two consumers when the queue is on), so that its encoding on the worker
 * overlaps the previous batch's requests; otherwise the rate would be the encoding's plus the
 * round trip's. Order is kept as otelcol's single consumer keeps it: batches are encoded one
 * at a time (in arrival order, with the one encoder and its cache), and a batch's requests go
 * out only when every earlier batch is finished (written, or dropped for good after its
 * retries), so a series' samples still reach Prometheus in time order and a retry of a batch
 * still comes before the next batch.
 *
 * An attempt's state (prw_attempt_t: the encoded requests and which of them are finished)
 * lives from the first attempt until the helper says the batch is finished
 * (om_exp_req_done returns false), so that a retry sends again only the requests that failed
 * with a retryable error: a request already written is never sent twice (Prometheus would
 * answer 400 out-of-order for its samples).
 *
 * What a response means (otelcol-contrib exporter.go execute(), and the rules):
 *   - 2xx: written;
 *   - 5xx, and 429 (otelcol retries 429 only behind its RetryOn429 feature gate; we retry it,
 *     after Retry-After when given, because Prometheus and Mimir send it for rate limits,
 *     which pass): retried with backoff by the helper (retry_on_failure);
 *   - other statuses (400 out-of-order or duplicate samples, 404, 413...): permanent: that
 *     request is dropped, logged with Prometheus' message, counted by the helper
 *     (send_failed_metric_points) and never retried; the other requests of the batch and
 *     later batches go on;
 *   - no response (connection refused, timeout, TLS): retried.
 * Delta metrics are dropped by the encoder, as otelcol does, but counted in
 * otelcol_exporter_prometheusremotewrite_dropped_delta_points and logged at warn level at
 * most once a minute, with the number dropped since the last line.
 *
 * Shutdown: the helper drains its queue (each request gets its attempts), then the client is
 * closed, then done. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "prw.h"

#define DELTA_LOG_INTERVAL_MS 60000
#define RESP_KEEP 1024
#define MSG_MAX 512

struct prw_attempt {
    om_job_t job; /* first member: the job is the attempt */
    prw_attempt_t *next;
    exp_prw_t *e;
    om_exp_req_t *req;
    uint64_t seq;            /* arrival order: earlier batches are sent first */
    prw_attempt_t *enc_next; /* the next batch waiting in e->enc_queue for the encoder */
    bool held;               /* encoded, waiting for the earlier batches to finish */
    prw_encoder_t *enc;      /* the job's, from e->spare (given back in encoded) */
    bool wire;               /* the job reads the batch's wire bytes (it was not decoded) */
    int enc_rc;              /* set by the worker */
    om_err_t enc_err;        /* set by the worker */
    prw_result_t res;
    bool encoded;
    bool *finished;   /* per request: written, or dropped for good */
    size_t next_body; /* the next request of this attempt to consider */
    size_t inflight;
    /* This attempt's outcome so far. */
    bool retry;
    uint64_t retry_ms;
    char retry_msg[MSG_MAX];
    size_t dropped; /* requests dropped for good, over all attempts */
    char drop_msg[MSG_MAX];
};

/* ------------------------------------------------------------------------------------------ */
/* The end of an attempt                                                                      */

static void attempt_free(prw_attempt_t *a)
{
    prw_result_free(&a->res);
    om_free(a->finished);
    om_free(a);
}

static void unlink_attempt(exp_prw_t *e, prw_attempt_t *a)
{
    for (prw_attempt_t **p = &e->attempts; *p != NULL; p = &(*p)->next) {
        if (*p == a) {
            *p = a->next;
            return;
        }
    }
}

/* The earliest batch not finished (NULL: none). */
static prw_attempt_t *oldest_attempt(exp_prw_t *e)
{
    prw_attempt_t *o = NULL;
    for (prw_attempt_t *a = e->attempts; a != NULL; a = a->next) {
        o = o == NULL || a->seq < o->seq ? a : o;
    }
    return o;
}

static void start_sending(prw_attempt_t *a);

static void end_attempt(prw_attempt_t *a, int rc, uint64_t retry_ms, const char *msg)
{
    exp_prw_t *e = a->e;
    om_exp_req_t *req = a->req;
    if (!om_exp_req_done(req, rc, retry_ms, msg)) {
        unlink_attempt(e, a);
        attempt_free(a);
        /* The next batch's turn, if it was encoded while this one was sent. */
        prw_attempt_t *next = oldest_attempt(e);
        if (next != NULL && next->held) {
            next->held = false;
            e->held--;
            start_sending(next);
        }
    }
}

/* Every request of this attempt has been answered (or none was sent). */
static void attempt_complete(prw_attempt_t *a)
{
    if (a->retry) {
        a->retry = false;
        end_attempt(a, OM_EAGAIN, a->retry_ms, a->retry_msg);
        return;
    }
    if (a->dropped > 0) {
        char msg[MSG_MAX + 96];
        snprintf(msg, sizeof msg, "%zu of %zu remote-write requests were refused: %s", a->dropped,
                 a->res.n_bodies, a->drop_msg);
        end_attempt(a, OM_EPERM, 0, msg);
        return;
    }
    end_attempt(a, 0, 0, NULL);
}

/* ------------------------------------------------------------------------------------------ */
/* Responses                                                                                  */

/* The first bytes of Prometheus' answer, printable, for the log line. */
static void body_text(const om_http_response_t *r, char *out, size_t cap)
{
    size_t n = r->body_len < 256 ? r->body_len : 256, w = 0;
    for (size_t i = 0; i < n && w + 1 < cap; i++) {
        char ch = (char)r->body[i];
        out[w++] = ch >= 0x20 && ch < 0x7f ? ch : ' ';
    }
    while (w > 0 && out[w - 1] == ' ') {
        w--;
    }
    out[w] = '\0';
}

static void send_more(prw_attempt_t *a);

typedef struct call {
    prw_attempt_t *a;
    size_t idx;
} call_t;

static void responded(void *arg, const om_http_response_t *r)
{
    call_t *c = arg;
    prw_attempt_t *a = c->a;
    size_t idx = c->idx;
    om_free(c);
    exp_prw_t *e = a->e;
    a->inflight--;
    char text[300];
    if (r->error != 0) {
        a->retry = a->retry || r->retryable || r->error == OM_ESHUTDOWN;
        snprintf(a->retry_msg, sizeof a->retry_msg, "remote-write request to %s failed: %s", r->url,
                 r->message);
        if (!r->retryable && r->error != OM_ESHUTDOWN) {
            a->finished[idx] = true;
            a->dropped++;
            snprintf(a->drop_msg, sizeof a->drop_msg, "%s", a->retry_msg);
        }
    } else if (r->status / 100 == 2) {
        a->finished[idx] = true;
    } else if (r->status / 100 == 5 || r->status == 429) {
        body_text(r, text, sizeof text);
        a->retry = true;
        int64_t ms =
            om_http_retry_after_ms(om_http_response_header(r, "Retry-After"), (int64_t)time(NULL));
        a->retry_ms = ms > 0 && (uint64_t)ms > a->retry_ms ? (uint64_t)ms : a->retry_ms;
        snprintf(a->retry_msg, sizeof a->retry_msg, "remote write returned HTTP status %d %s: %s",
                 r->status, om_http_status_text(r->status), text);
    } else {
        body_text(r, text, sizeof text);
        a->finished[idx] = true;
        a->dropped++;
        snprintf(a->drop_msg, sizeof a->drop_msg, "remote write returned HTTP status %d %s: %s",
                 r->status, om_http_status_text(r->status), text);
        OM_CLOG(e->log_name, OM_LOG_WARN,
                "dropping a remote-write request of %zu samples (%zu series), not retried: %s",
                a->res.bodies[idx].samples, a->res.bodies[idx].series, a->drop_msg);
    }
    send_more(a);
}

static const om_http_header_t rw_headers[] = {
    {"Content-Encoding", "snappy"},
    {"Content-Type", "application/x-protobuf"},
    {"X-Prometheus-Remote-Write-Version", "0.1.0"},
};

/* Start requests of this attempt up to num_consumers in flight; complete it when all are
 * answered. */
static void send_more(prw_attempt_t *a)
{
    exp_prw_t *e = a->e;
    size_t limit = e->cfg->queue.num_consumers > 0 ? (size_t)e->cfg->queue.num_consumers : 1;
    while (a->inflight < limit && a->next_body < a->res.n_bodies) {
        size_t i = a->next_body++;
        if (a->finished[i]) {
            continue;
        }
        call_t *c = om_malloc(sizeof *c);
        om_err_t err = {0};
        int rc = OM_ENOMEM;
        if (c != NULL) {
            *c = (call_t){a, i};
            const prw_body_t *b = &a->res.bodies[i];
            om_http_request_t rq = {.method = "POST",
                                    .url = e->cfg->endpoint,
                                    .headers = rw_headers,
                                    .n_headers = 3,
                                    .body = b->data,
                                    .body_len = b->len,
                                    .body_mode = OM_HTTP_BODY_BORROW,
                                    .timeout_ms = a->req->timeout_ms,
                                    .max_response_body = RESP_KEEP};
            rc = e->client != NULL ? om_http_send(e->client, &rq, responded, c, NULL, &err)
                                   : OM_ESHUTDOWN;
        }
        if (rc != 0) {
            om_free(c);
            a->retry = true;
            snprintf(a->retry_msg, sizeof a->retry_msg, "cannot send: %s",
                     err.msg[0] != '\0' ? err.msg : om_strerror(rc));
            continue;
        }
        om_metric_counter_add(e->m_sent_batches, 1);
        a->inflight++;
    }
    if (a->inflight == 0 && a->next_body >= a->res.n_bodies) {
        attempt_complete(a);
    }
}

static void start_sending(prw_attempt_t *a)
{
    if (oldest_attempt(a->e) != a) { /* an earlier batch is not finished: wait for it */
        a->held = true;
        a->e->held++;
        return;
    }
    a->next_body = 0;
    a->retry = false;
    a->retry_ms = 0;
    send_more(a);
}

/* ------------------------------------------------------------------------------------------ */
/* Encoding                                                                                   */

static void encode_work(om_job_t *job, void *thread_data)
{
    (void)thread_data;
    prw_attempt_t *a = (prw_attempt_t *)job;
    a->enc_rc = a->wire ? prw_encode_wire(a->enc, a->req->batch, &a->e->opts, &a->res, &a->enc_err)
                        : prw_encode(a->enc, a->req->batch, &a->e->opts, &a->res, &a->enc_err);
}

/* The counts of what translated and what did not, and the delta warning. */
static void account(exp_prw_t *e, const prw_result_t *r)
{
    om_metric_counter_add(e->m_translated_series, r->series);
    om_metric_counter_add(e->m_merged_samples, r->merged_samples);
    if (r->failed_metrics > 0 || r->dropped_delta > 0) {
        om_metric_counter_add(e->m_failed_translations, 1);
    }
    if (r->failed_metrics > 0) {
        OM_CLOG(e->log_name, OM_LOG_DEBUG, "dropped %zu points of %zu metrics: first: %s",
                r->dropped_invalid, r->failed_metrics, r->first_invalid);
    }
    if (r->dropped_delta == 0) {
        return;
    }
    om_metric_counter_add(e->m_dropped_delta, r->dropped_delta);
    e->delta_unlogged += r->dropped_delta;
    uint64_t now = uv_now(e->host->loop);
    if (e->delta_logged_ms == 0 || now - e->delta_logged_ms >= DELTA_LOG_INTERVAL_MS) {
        OM_CLOG(e->log_name, OM_LOG_WARN,
                "dropped %zu data points of delta metrics (e.g. \"%s\"): remote-write carries "
                "cumulative data only; have the SDK export cumulative temporality (at most one "
                "such line a minute; counted in "
                "otelcol_exporter_prometheusremotewrite_dropped_delta_points)",
                e->delta_unlogged, r->first_delta);
        e->delta_logged_ms = now != 0 ? now : 1;
        e->delta_unlogged = 0;
    }
}

static void submit(prw_attempt_t *a);

static void encoded(om_job_t *job, int status)
{
    prw_attempt_t *a = (prw_attempt_t *)job;
    exp_prw_t *e = a->e;
    e->jobs--;
    /* The encoder's buffers go back for the next batch (one is enough: one batch is encoded
     * at a time), and the next batch waiting for them goes to the worker. */
    if (e->spare == NULL) {
        e->spare = a->enc;
    } else {
        prw_encoder_free(a->enc);
    }
    a->enc = NULL;
    if (e->enc_queue != NULL) {
        prw_attempt_t *n = e->enc_queue;
        e->enc_queue = n->enc_next;
        e->enc_tail = e->enc_queue != NULL ? e->enc_tail : NULL;
        submit(n);
    }
    int rc = status != 0 ? status : a->enc_rc;
    if (rc == OM_ENOTSUP && a->wire) {
        /* Bytes the wire path does not read: decode them here, on the loop, and again. */
        a->wire = false;
        a->enc_err = (om_err_t){0};
        rc = om_batch_decode(a->req->batch, &a->enc_err);
        if (rc == 0) {
            submit(a);
            return;
        }
    }
    if (rc != 0) {
        char msg[sizeof a->enc_err.msg];
        snprintf(msg, sizeof msg, "%s",
                 a->enc_err.msg[0] != '\0' ? a->enc_err.msg : om_strerror(rc));
        end_attempt(a, rc == OM_ESHUTDOWN ? OM_EAGAIN : rc, 0, msg);
        return;
    }
    a->encoded = true;
    account(e, &a->res);
    a->finished = om_calloc(a->res.n_bodies + 1, sizeof *a->finished);
    if (a->finished == NULL) {
        prw_result_free(&a->res);
        a->encoded = false;
        end_attempt(a, OM_ENOMEM, 0, "out of memory");
        return;
    }
    start_sending(a);
}

static prw_attempt_t *find_attempt(exp_prw_t *e, const om_exp_req_t *req)
{
    for (prw_attempt_t *a = e->attempts; a != NULL; a = a->next) {
        if (a->req == req) {
            return a;
        }
    }
    return NULL;
}

/* The attempt's batch to the worker pool (or encoded here when the pool refuses), or in line
 * behind the batch being encoded. */
static void submit(prw_attempt_t *a)
{
    exp_prw_t *e = a->e;
    if (e->jobs > 0) {
        a->enc_next = NULL;
        if (e->enc_tail != NULL) {
            e->enc_tail->enc_next = a;
        } else {
            e->enc_queue = a;
        }
        e->enc_tail = a;
        return;
    }
    a->enc = e->spare; /* NULL: prw_encode uses a temporary one */
    e->spare = NULL;
    e->jobs++;
    if (om_workers_submit(e->host->workers, &a->job, encode_work, encoded) != 0) {
        encode_work(&a->job, NULL);
        encoded(&a->job, 0);
    }
}

void exp_prw_send(void *self, om_exp_req_t *req)
{
    exp_prw_t *e = self;
    prw_attempt_t *a = find_attempt(e, req);
    if (a != NULL && a->encoded) {
        start_sending(a); /* a retry: only what is not finished */
        return;
    }
    /* A batch still in its wire bytes is translated from them on the worker (prw_encode.c):
     * decoding it would cost more than the translation. */
    bool wire = req->batch->msg == NULL && req->batch->raw_valid;
    om_err_t err = {0};
    if (!wire && om_batch_decode(req->batch, &err) != 0) {
        om_exp_req_done(req, err.code, 0, err.msg);
        return;
    }
    if (a == NULL) {
        a = om_calloc(1, sizeof *a);
        if (a == NULL) {
            om_exp_req_done(req, OM_ENOMEM, 0, "out of memory");
            return;
        }
        a->e = e;
        a->req = req;
        a->seq = ++e->seq;
        a->next = e->attempts;
        e->attempts = a;
    }
    a->wire = wire;
    submit(a);
}

/* ------------------------------------------------------------------------------------------ */
/* Lifecycle                                                                                  */

static int consume(void *self, om_batch_t *batch)
{
    exp_prw_t *e = self;
    return om_exphelper_consume(e->helper, batch);
}

static const om_metric_def_t failed_translations_def = {
    .name = "otelcol_exporter_prometheusremotewrite_failed_translations",
    .help = "Number of translation operations that failed to translate metrics from Otel to "
            "Prometheus",
    .unit = "1",
    .type = OM_METRIC_COUNTER};
static const om_metric_def_t translated_def = {
    .name = "otelcol_exporter_prometheusremotewrite_translated_time_series",
    .help = "Number of Prometheus time series that were translated from OTel metrics",
    .unit = "1",
    .type = OM_METRIC_COUNTER};
static const om_metric_def_t sent_batches_def = {
    .name = "otelcol_exporter_prometheusremotewrite_sent_batches",
    .help = "Number of remote write request batches sent to the remote write endpoint "
            "regardless of success or failure",
    .unit = "{batch}",
    .type = OM_METRIC_COUNTER};
static const om_metric_def_t dropped_delta_def = {
    .name = "otelcol_exporter_prometheusremotewrite_dropped_delta_points",
    .help = "Data points of delta metrics dropped: remote-write carries cumulative data only "
            "(OtelMon's; otelcol drops them silently)",
    .unit = "{datapoints}",
    .type = OM_METRIC_COUNTER};

static const om_metric_def_t merged_samples_def = {
    .name = "otelcol_exporter_prometheusremotewrite_merged_samples",
    .help = "Samples of a series at a timestamp it already had in the same batch, not sent: "
            "one sample per series and timestamp goes out, the last given, as Prometheus "
            "refuses duplicates (OtelMon's)",
    .unit = "{samples}",
    .type = OM_METRIC_COUNTER};

static int make_series(exp_prw_t *e, const om_create_args_t *a, om_err_t *err)
{
    if (a->host->metrics == NULL) {
        return 0;
    }
    om_label_t l[] = {{"exporter", a->id}};
    om_metrics_t *m = a->host->metrics;
    int rc = om_metrics_counter(m, &failed_translations_def, l, 1, &e->m_failed_translations, err);
    rc = rc ? rc : om_metrics_counter(m, &translated_def, l, 1, &e->m_translated_series, err);
    rc = rc ? rc : om_metrics_counter(m, &sent_batches_def, l, 1, &e->m_sent_batches, err);
    rc = rc ? rc : om_metrics_counter(m, &merged_samples_def, l, 1, &e->m_merged_samples, err);
    return rc ? rc : om_metrics_counter(m, &dropped_delta_def, l, 1, &e->m_dropped_delta, err);
}

/* External labels with sanitised names (exporter.go validateAndSanitizeExternalLabels). */
static int external_labels(exp_prw_t *e, om_err_t *err)
{
    const om_strmap_t *m = &e->cfg->external_labels;
    if (m->n == 0) {
        return 0;
    }
    e->external = om_calloc(m->n, sizeof *e->external);
    if (e->external == NULL) {
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    for (size_t i = 0; i < m->n; i++) {
        size_t len = strlen(m->keys[i]);
        char *name = om_malloc(len + 5);
        if (name == NULL) {
            om_err_set(err, OM_ENOMEM, "out of memory");
            return OM_ENOMEM;
        }
        e->external[e->n_external].key = name;
        e->external[e->n_external].value = m->values[i];
        e->n_external++;
        if (om_prom_label_name(m->keys[i], len, name, len + 5) == 0) {
            om_err_set(err, OM_ECONFIG, "external label \"%s\" has no valid Prometheus name",
                       m->keys[i]);
            return OM_ECONFIG;
        }
    }
    return 0;
}

static void free_external(exp_prw_t *e)
{
    for (size_t i = 0; i < e->n_external; i++) {
        om_free((char *)e->external[i].key);
    }
    om_free(e->external);
}

static int prw_create(const om_create_args_t *a, void **self, om_err_t *err)
{
    exp_prw_t *e = om_calloc(1, sizeof *e);
    if (e == NULL) {
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    e->cfg = a->cfg;
    e->log_name = a->log_name;
    e->host = a->host;
    const exp_prw_cfg_t *c = e->cfg;
    /* See prw_config.c: the helper's queue is remote_write_queue; two consumers so that the
     * next batch is encoded while one is sent, in order (see the top of this file). */
    e->helper_cfg = c->helper;
    e->helper_cfg.sending_queue.enabled = c->queue.enabled;
    e->helper_cfg.sending_queue.queue_size = c->queue.queue_size > 0 ? c->queue.queue_size : 1;
    e->helper_cfg.sending_queue.num_consumers = c->queue.enabled ? 2 : 1;
    e->spare = prw_encoder_new();
    int rc = e->spare != NULL ? external_labels(e, err) : OM_ENOMEM;
    if (rc == 0) {
        e->opts = (prw_opts_t){.ns = c->namespace_,
                               .suffixes = c->add_metric_suffixes,
                               .target_info = c->target_info.enabled,
                               .r2t = c->r2t.enabled,
                               .send_metadata = c->send_metadata,
                               .max_request_bytes = (size_t)c->max_batch_size_bytes,
                               .external = e->external,
                               .n_external = e->n_external};
        rc = make_series(e, a, err);
    }
    if (rc == 0) {
        e->helper = om_exphelper_new(a, &e->helper_cfg, exp_prw_send, e, err);
        rc = e->helper == NULL ? (err->code != 0 ? err->code : OM_ENOMEM) : 0;
    }
    if (rc != 0) {
        free_external(e);
        om_free(e);
        return rc;
    }
    *self = e;
    return 0;
}

static int prw_start(void *self, om_err_t *err)
{
    exp_prw_t *e = self;
    /* As many connections as requests in flight. */
    om_http_client_opts_t opts = {
        .log_name = e->log_name,
        .max_conns_per_host =
            (long)(e->cfg->queue.num_consumers > 0 ? e->cfg->queue.num_consumers : 1)};
    return om_http_client_new(e->host, &e->cfg->http, &opts, &e->client, err);
}

static void close_client(void *client, om_done_fn done, void *arg)
{
    om_http_client_close(client, done, arg);
}

static void prw_shutdown(void *self, om_done_fn done, void *arg)
{
    exp_prw_t *e = self;
    om_exphelper_shutdown_closing(e->helper, close_client, e->client, done, arg);
}

static void prw_destroy(void *self)
{
    exp_prw_t *e = self;
    om_exphelper_free(e->helper);
    while (e->attempts != NULL) { /* defensive: the helper finished every request */
        prw_attempt_t *a = e->attempts;
        e->attempts = a->next;
        attempt_free(a);
    }
    prw_encoder_free(e->spare);
    free_external(e);
    om_free(e);
}

const om_factory_t exp_prw_factory = {
    .abi = OM_FACTORY_ABI,
    .kind = OM_EXPORTER,
    .type = "prometheusremotewrite",
    .help = "Prometheus remote-write 1.0 (snappy protobuf) with retries and a sending queue",
    .signals = OM_SIG_METRICS,
    .config_size = sizeof(exp_prw_cfg_t),
    .fields = exp_prw_fields,
    .config_validate = exp_prw_config_validate,
    .create = prw_create,
    .start = prw_start,
    .shutdown = prw_shutdown,
    .destroy = prw_destroy,
    .consume_metrics = consume,
};
