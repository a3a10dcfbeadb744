/* otlphttp_send.c: one export attempt as one HTTP POST, and what its result means.
 *
 * The exporter helper calls exp_otlphttp_send() for each attempt; we encode and compress the
 * batch on the host's worker pool (tens of milliseconds for a batch of 8192 spans, which the
 * loop must not spend), hand it to the core's HTTP client, and when the response comes map it to
 * the helper's terms, following the OTLP/HTTP specification and otelcol's otlphttp
 * exporter:
 *   - any 2xx: delivered (a partial_success in the response is logged as a warning);
 *   - 429, 502, 503, 504: retryable, waiting at least what Retry-After says;
 *   - any other status: permanent, the batch is dropped and counted;
 *   - no response (connection refused, reset, timeout, TLS failure): retryable.
 *
 * The worker only reads the batch, as om.h's rules for workers allow: the helper holds a
 * reference from before the job is submitted until the attempt ends (after the job's done), a
 * batch shared with other consumers is read-only for every holder, and JSON is encoded from
 * structs decoded on the loop before submit. When the pool refuses the job (its queue is full,
 * or the host has none), the body is encoded on the loop instead: slower, but nothing is
 * refused for it. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "otlphttp.h"

typedef struct xfer {
    om_job_t job; /* first member: the job is the xfer */
    exp_otlphttp_t *e;
    om_exp_req_t *req;
    om_compressor_t *z; /* from e->compressors, NULL: none; the worker's during the job */
    int enc_rc;         /* set by the worker */
    om_err_t enc_err;   /* set by the worker */
    uint8_t *body;      /* owned until handed to the client */
    size_t body_len;
} xfer_t;

static void xfer_free(xfer_t *x)
{
    om_free(x->body);
    om_free(x);
}

/* A worker thread (or the loop, see the file comment): only x and a read of the batch. */
static void encode_work(om_job_t *job, void *thread_data)
{
    (void)thread_data;
    xfer_t *x = (xfer_t *)job;
    const exp_otlphttp_cfg_t *c = x->e->cfg;
    x->enc_rc = exp_otlphttp_encode_body(x->req->batch, (otlphttp_encoding_t)c->encoding, x->z,
                                         &x->body, &x->body_len, &x->enc_err);
}

static void responded(void *arg, const om_http_response_t *r);

static int start_request(xfer_t *x, om_err_t *err)
{
    exp_otlphttp_t *e = x->e;
    om_exp_req_t *req = x->req;
    int idx = om_signal_index(req->batch->signal);
    om_http_request_t rq = {.method = "POST",
                            .url = e->url[idx],
                            .headers = e->headers,
                            .n_headers = e->n_headers,
                            .body = x->body,
                            .body_len = x->body_len,
                            .body_mode = OM_HTTP_BODY_TAKE,
                            .timeout_ms = req->timeout_ms,
                            .max_response_body = OTLPHTTP_RESP_MAX};
    x->body = NULL; /* the client's now, on every path */
    int rc = om_http_send(e->client, &rq, responded, x, NULL, err);
    if (rc == 0) {
        OM_CLOG(e->log_name, OM_LOG_DEBUG, "POST %s: %zu %s, %zu bytes (attempt %u)", e->url[idx],
                req->batch->items, om_signal_item_name(req->batch->signal), x->body_len,
                req->attempt);
    }
    return rc;
}

static void fail(xfer_t *x, int rc, const om_err_t *err)
{
    om_exp_req_t *req = x->req;
    char msg[sizeof err->msg];
    snprintf(msg, sizeof msg, "%s", err->msg[0] != '\0' ? err->msg : om_strerror(rc));
    xfer_free(x);
    /* OM_ENOMEM is retryable for the helper; an encoding failure is not. */
    om_exp_req_done(req, rc, 0, msg);
}

static void encoded(om_job_t *job, int status)
{
    xfer_t *x = (xfer_t *)job;
    om_err_t err = {0};
    om_compressors_put(x->e->compressors, x->z); /* the loop's again, for the next request */
    x->z = NULL;
    /* OM_ESHUTDOWN: the pool closed first, which the host does only after every component
     * is gone; retryable for the helper in any case. */
    int rc = status != 0 ? status : x->enc_rc;
    if (rc == 0) {
        rc = start_request(x, &err);
    } else {
        err = x->enc_err;
    }
    if (rc != 0) {
        fail(x, rc, &err);
    }
}

void exp_otlphttp_send(void *self, om_exp_req_t *req)
{
    exp_otlphttp_t *e = self;
    om_err_t err = {0};
    int idx = om_signal_index(req->batch->signal);
    if (e->client == NULL || idx < 0 || e->url[idx] == NULL) {
        om_err_set(&err, OM_EPERM, "the exporter is not started for %s",
                   om_signal_name(req->batch->signal));
        om_exp_req_done(req, OM_EPERM, 0, err.msg);
        return;
    }
    /* JSON is encoded from the structs: decode on the loop thread, which owns the batch. */
    if (e->cfg->encoding == OTLPHTTP_ENC_JSON && om_batch_decode(req->batch, &err) != 0) {
        om_exp_req_done(req, err.code, 0, err.msg);
        return;
    }
    xfer_t *x = om_calloc(1, sizeof *x);
    if (x == NULL) {
        om_exp_req_done(req, OM_ENOMEM, 0, "out of memory");
        return;
    }
    x->e = e;
    x->req = req;
    if (e->compressors != NULL && (x->z = om_compressors_get(e->compressors)) == NULL) {
        om_free(x);
        om_exp_req_done(req, OM_ENOMEM, 0, "out of memory");
        return;
    }
    if (om_workers_submit(e->host->workers, &x->job, encode_work, encoded) != 0) {
        encode_work(&x->job, NULL);
        encoded(&x->job, 0);
    }
}

static bool retryable_status(int status)
{
    return status == 429 || status == 502 || status == 503 || status == 504;
}

static void log_partial(xfer_t *x, const om_http_response_t *r, otlphttp_ctype_t ct)
{
    exp_otlphttp_t *e = x->e;
    om_signal_t sig = x->req->batch->signal;
    int64_t rejected = 0;
    char text[256];
    int rc =
        exp_otlphttp_partial_success(sig, ct, r->body, r->body_len, &rejected, text, sizeof text);
    if (rc < 0) {
        /* The data was accepted (2xx): retrying would send it twice. */
        OM_CLOG(e->log_name, OM_LOG_WARN, "cannot decode the export response (%zu bytes)",
                r->body_len);
    } else if (rc > 0) {
        OM_CLOG(e->log_name, OM_LOG_WARN,
                "Partial success response: the server rejected %lld %s; message: %s",
                (long long)rejected, om_signal_item_name(sig), text[0] ? text : "(none)");
    }
}

/* The helper's verdict on a response; msg gets the reason on failure. */
static int verdict(xfer_t *x, const om_http_response_t *r, char *msg, size_t cap,
                   uint64_t *retry_ms)
{
    if (r->error != 0) {
        snprintf(msg, cap, "failed to make an HTTP request to %s: %s", r->url, r->message);
        return r->retryable ? OM_EIO : OM_EPERM;
    }
    otlphttp_ctype_t ct = exp_otlphttp_ctype(r->content_type);
    if (r->status >= 200 && r->status <= 299) {
        log_partial(x, r, ct);
        return 0;
    }
    char text[256];
    exp_otlphttp_error_message(ct, r->body, r->body_len, text, sizeof text);
    snprintf(msg, cap,
             "error exporting items, request to %s responded with HTTP Status Code %d%s%s", r->url,
             r->status, text[0] != '\0' ? ", Message=" : "", text);
    if (retryable_status(r->status)) {
        int64_t ms =
            om_http_retry_after_ms(om_http_response_header(r, "Retry-After"), (int64_t)time(NULL));
        *retry_ms = ms > 0 ? (uint64_t)ms : 0;
        return OM_EAGAIN;
    }
    return OM_EPERM;
}

static void responded(void *arg, const om_http_response_t *r)
{
    xfer_t *x = arg;
    char msg[768] = "";
    uint64_t retry_ms = 0;
    int rc = verdict(x, r, msg, sizeof msg, &retry_ms);
    om_exp_req_t *req = x->req;
    xfer_free(x);
    /* Last: this may start the next request, or finish a shutdown. */
    om_exp_req_done(req, rc, retry_ms, msg);
}
