/* otlphttp_send.c: one export attempt as one HTTP POST, and what its result means.
 *
 * The exporter helper calls exp_otlphttp_send() for each attempt; we encode and compress the
 * batch on libuv's threadpool (tens of milliseconds for a batch of 8192 spans, which the loop
 * must not spend), start a transfer on the multi handle, and when it finishes map the result
 * to the helper's terms, following the OTLP/HTTP specification and otelcol's otlphttp
 * exporter:
 *   - any 2xx: delivered (a partial_success in the response is logged as a warning);
 *   - 429, 502, 503, 504: retryable, waiting at least what Retry-After says;
 *   - any other status: permanent, the batch is dropped and counted;
 *   - no response (connection refused, reset, timeout, TLS failure): retryable.
 *
 * The worker thread only reads the batch, which is safe: the helper holds a reference until
 * the attempt ends, and a batch shared with other consumers is read-only for all of them. */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "otlphttp.h"

/* Past this many response bytes the transfer is cut: a server that streams forever must not
 * hold a sender until the timeout. */
#define RESP_ABORT_BYTES ((size_t)4 * 1024 * 1024)

typedef struct xfer {
    uv_work_t work; /* data: the xfer */
    exp_otlphttp_t *e;
    om_exp_req_t *req;
    int enc_rc;       /* set by the worker */
    om_err_t enc_err; /* set by the worker */
    CURL *easy;
    uint8_t *body; /* owned; curl reads it in place (CURLOPT_POSTFIELDS) */
    size_t body_len;
    uint8_t *resp; /* owned; the first OTLPHTTP_RESP_MAX bytes of the response body */
    size_t resp_len;
    size_t resp_total;
    bool resp_cut; /* RESP_ABORT_BYTES passed: the transfer was stopped on purpose */
    char errbuf[CURL_ERROR_SIZE];
} xfer_t;

static void xfer_free(xfer_t *x)
{
    if (x->easy != NULL) {
        curl_easy_cleanup(x->easy);
    }
    om_free(x->body);
    om_free(x->resp);
    om_free(x);
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    xfer_t *x = ud;
    size_t len = size * n;
    x->resp_total += len;
    if (x->resp_total > RESP_ABORT_BYTES) {
        x->resp_cut = true;
        return 0; /* stops the transfer with CURLE_WRITE_ERROR */
    }
    if (x->resp == NULL && len > 0) {
        x->resp = om_malloc(OTLPHTTP_RESP_MAX);
    }
    /* Without memory, or past the cap, the rest is read and discarded so that the connection
     * stays reusable. */
    if (x->resp != NULL && x->resp_len < OTLPHTTP_RESP_MAX) {
        size_t take = OTLPHTTP_RESP_MAX - x->resp_len;
        take = take < len ? take : len;
        memcpy(x->resp + x->resp_len, p, take);
        x->resp_len += take;
    }
    return len;
}

static int setup_easy(xfer_t *x, int idx, om_err_t *err)
{
    exp_otlphttp_t *e = x->e;
    CURL *h = curl_easy_duphandle(e->tmpl);
    if (h == NULL) {
        om_err_set(err, OM_ENOMEM, "out of memory (curl_easy_duphandle)");
        return OM_ENOMEM;
    }
    x->easy = h;
    uint64_t t = x->req->timeout_ms;
    CURLcode c = curl_easy_setopt(h, CURLOPT_URL, e->url[idx]);
    c = c ? c : curl_easy_setopt(h, CURLOPT_HTTPHEADER, e->headers[idx]);
    if (e->connect_to[idx] != NULL) {
        c = c ? c : curl_easy_setopt(h, CURLOPT_CONNECT_TO, e->connect_to[idx]);
    }
    c = c ? c : curl_easy_setopt(h, CURLOPT_PRIVATE, x);
    c = c ? c : curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)x->body_len);
    c = c ? c : curl_easy_setopt(h, CURLOPT_POSTFIELDS, x->body);
    c = c ? c : curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    c = c ? c : curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
    c = c ? c : curl_easy_setopt(h, CURLOPT_ERRORBUFFER, x->errbuf);
    c = c ? c : curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(t > LONG_MAX ? LONG_MAX : t));
    if (c != CURLE_OK) {
        om_err_set(err, c == CURLE_OUT_OF_MEMORY ? OM_ENOMEM : OM_EIO, "curl_easy_setopt: %s",
                   curl_easy_strerror(c));
        return c == CURLE_OUT_OF_MEMORY ? OM_ENOMEM : OM_EIO;
    }
    return 0;
}

/* Threadpool: nothing here touches loop state. */
static void encode_work(uv_work_t *w)
{
    xfer_t *x = w->data;
    const exp_otlphttp_cfg_t *c = x->e->cfg;
    x->enc_rc = exp_otlphttp_encode_body(x->req->batch, (otlphttp_encoding_t)c->encoding,
                                         (otlphttp_comp_t)c->compression, &x->body, &x->body_len,
                                         &x->enc_err);
}

static int start_xfer(xfer_t *x, om_err_t *err)
{
    exp_otlphttp_t *e = x->e;
    om_exp_req_t *req = x->req;
    int idx = om_signal_index(req->batch->signal);
    int rc = setup_easy(x, idx, err);
    if (rc == 0) {
        rc = exp_otlphttp_multi_add(e->multi, x->easy, err);
    }
    if (rc != 0) {
        return rc;
    }
    e->in_flight++;
    OM_CLOG(e->log_name, OM_LOG_DEBUG, "POST %s: %zu %s, %zu bytes (attempt %u)", e->url[idx],
            req->batch->items, om_signal_item_name(req->batch->signal), x->body_len, req->attempt);
    return 0;
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

static void encoded(uv_work_t *w, int status)
{
    xfer_t *x = w->data;
    om_err_t err = {0};
    int rc = status != 0 ? OM_EIO : x->enc_rc;
    if (rc == 0) {
        rc = start_xfer(x, &err);
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
    if (e->multi == NULL || idx < 0 || e->url[idx] == NULL) {
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
    x->work.data = x;
    int rc = uv_queue_work(e->host->loop, &x->work, encode_work, encoded);
    if (rc != 0) {
        om_err_set(&err, OM_EIO, "uv_queue_work: %s", uv_strerror(rc));
        fail(x, OM_EIO, &err);
    }
}

static bool retryable_status(long status)
{
    return status == 429 || status == 502 || status == 503 || status == 504;
}

/* Curl results that no retry can fix: the request itself is wrong. */
static bool permanent_curl_error(CURLcode c)
{
    return c == CURLE_UNSUPPORTED_PROTOCOL || c == CURLE_URL_MALFORMAT || c == CURLE_NOT_BUILT_IN ||
           c == CURLE_BAD_FUNCTION_ARGUMENT || c == CURLE_UNKNOWN_OPTION;
}

static void log_partial(xfer_t *x, otlphttp_ctype_t ct)
{
    exp_otlphttp_t *e = x->e;
    om_signal_t sig = x->req->batch->signal;
    int64_t rejected = 0;
    char text[256];
    int rc =
        exp_otlphttp_partial_success(sig, ct, x->resp, x->resp_len, &rejected, text, sizeof text);
    if (rc < 0) {
        /* The data was accepted (2xx): retrying would send it twice. */
        OM_CLOG(e->log_name, OM_LOG_WARN, "cannot decode the export response (%zu bytes)",
                x->resp_len);
    } else if (rc > 0) {
        OM_CLOG(e->log_name, OM_LOG_WARN,
                "Partial success response: the server rejected %lld %s; message: %s",
                (long long)rejected, om_signal_item_name(sig), text[0] ? text : "(none)");
    }
}

static uint64_t retry_after(CURL *easy)
{
    struct curl_header *h = NULL;
    if (curl_easy_header(easy, "Retry-After", 0, CURLH_HEADER, -1, &h) != CURLHE_OK) {
        return 0;
    }
    int64_t ms = exp_otlphttp_retry_after_ms(h->value, (int64_t)time(NULL));
    return ms > 0 ? (uint64_t)ms : 0;
}

/* The helper's verdict on a finished transfer; msg gets the reason on failure. */
static int verdict(xfer_t *x, CURLcode res, char *msg, size_t cap, uint64_t *retry_ms)
{
    const char *url = x->e->url[om_signal_index(x->req->batch->signal)];
    if (res != CURLE_OK && !(res == CURLE_WRITE_ERROR && x->resp_cut)) {
        snprintf(msg, cap, "failed to make an HTTP request to %s: %s", url,
                 x->errbuf[0] != '\0' ? x->errbuf : curl_easy_strerror(res));
        return permanent_curl_error(res) ? OM_EPERM : OM_EIO;
    }
    long status = 0;
    char *ctype = NULL;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(x->easy, CURLINFO_CONTENT_TYPE, &ctype);
    otlphttp_ctype_t ct = exp_otlphttp_ctype(ctype);
    if (status >= 200 && status <= 299) {
        log_partial(x, ct);
        return 0;
    }
    char text[256];
    exp_otlphttp_error_message(ct, x->resp, x->resp_len, text, sizeof text);
    snprintf(msg, cap,
             "error exporting items, request to %s responded with HTTP Status Code %ld%s%s", url,
             status, text[0] != '\0' ? ", Message=" : "", text);
    if (retryable_status(status)) {
        *retry_ms = retry_after(x->easy);
        return OM_EAGAIN;
    }
    return OM_EPERM;
}

void exp_otlphttp_xfer_done(void *self, CURL *easy, CURLcode result)
{
    exp_otlphttp_t *e = self;
    xfer_t *x = NULL;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
    if (x == NULL) {
        curl_easy_cleanup(easy); /* not one of ours; cannot happen */
        return;
    }
    char msg[768] = "";
    uint64_t retry_ms = 0;
    int rc = verdict(x, result, msg, sizeof msg, &retry_ms);
    om_exp_req_t *req = x->req;
    xfer_free(x);
    e->in_flight--;
    /* Last: this may start the next transfer, or finish a shutdown. */
    om_exp_req_done(req, rc, retry_ms, msg);
}
