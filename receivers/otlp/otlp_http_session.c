/* otlp_http_session.c: what one OTLP/HTTP export request does, as a handler of the core's
 * HTTP server (om_http_handler_t), without sockets.
 *
 * Everything is decided at two points: when the request's headers are complete (begin:
 * method, media type, encoding, declared length; errors are answered at once, before any
 * body is read), and when its body is complete (decode, hand to the pipeline, answer). The
 * server has already answered what is not ours: a malformed request or target (400), a path
 * no wired signal serves (404), headers or a target over the limits (431). A body is held
 * in a buffer capped at max_request_body_size as it arrives. gzip, deflate and zstd bodies
 * are then decompressed whole by the core's service (libdeflate: about 2.5 times cheaper than
 * zlib's streaming inflate on OTLP data, bench/README.md; zstd in one call when its frames
 * declare their sizes), into at most max_request_body_size bytes. So neither a large raw
 * body nor a compression bomb is ever held beyond the cap (twice the cap at most: the
 * compressed body and its output). Processing is synchronous, every request answered
 * from its callbacks, except that a large compressed body, or a large one while the loop is
 * busy (otlp_offload), is decompressed and decoded (the wire scan and copy, or the JSON parse)
 * on the host's worker pool: the
 * request's state is the job's until its done runs on the loop, which then answers and hands
 * the batch to the pipeline (the server waits for that answer at shutdown: it is owed).
 * Ordering: the server reads nothing more from a connection while an answer is owed, so a
 * pipelining client's requests are decoded, delivered and answered one after the other, in
 * the order sent, wherever they are decoded. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "google/rpc/status.pb-c.h"
#include "otlp_http.h"

#define CT_PROTO "application/x-protobuf"
#define CT_JSON "application/json"
#define CT_TEXT "text/plain; charset=utf-8"

/* gRPC codes used directly (the rest come from om_err_grpc_status). */
#define GRPC_UNIMPLEMENTED 12

static size_t body_max(const om_http_req_t *req)
{
    uint64_t m = om_http_req_max_body(req);
    return m > SIZE_MAX - 1 ? SIZE_MAX - 1 : (size_t)m;
}

/* ------------------------------------------------------------------------------------------ */
/* Answers                                                                                    */

/* Clients retry 429 and 503: say when. */
static void respond(om_http_req_t *req, int status, const char *ctype, const void *body, size_t len,
                    const char *extra_headers)
{
    char headers[128];
    snprintf(headers, sizeof headers, "%s%s",
             status == 429 || status == 503 ? "Retry-After: 1\r\n" : "",
             extra_headers != NULL ? extra_headers : "");
    om_http_respond(req, status, ctype, headers[0] != '\0' ? headers : NULL, body, len);
}

static void respond_text(om_http_req_t *req, int status, const char *text,
                         const char *extra_headers)
{
    respond(req, status, CT_TEXT, text, strlen(text), extra_headers);
}

/* A google.rpc.Status in the request's encoding, as OTLP wants for errors. */
static void respond_status(om_http_req_t *req, int status, int grpc_code, const char *msg)
{
    const otlp_http_req_t *q = om_http_req_state(req);
    if (q->json) {
        om_strbuf_t sb;
        om_strbuf_init(&sb, 4096);
        om_otlp_json_encode_status(grpc_code, msg, &sb);
        if (sb.failed || sb.data == NULL) {
            respond_text(req, status, msg, NULL);
        } else {
            respond(req, status, CT_JSON, sb.data, sb.len, NULL);
        }
        om_strbuf_free(&sb);
        return;
    }
    Google__Rpc__Status st;
    google__rpc__status__init(&st);
    st.code = grpc_code;
    st.message = (char *)(uintptr_t)msg; /* protobuf-c only reads it when packing */
    uint8_t buf[512];
    if (google__rpc__status__get_packed_size(&st) > sizeof buf) {
        st.message = (char *)(uintptr_t) "error message too long";
    }
    size_t n = google__rpc__status__pack(&st, buf);
    respond(req, status, CT_PROTO, buf, n, NULL);
}

/* Answer from one of our error codes through the one mapping. */
static void respond_error(om_http_req_t *req, int code, const char *msg)
{
    respond_status(req, om_err_http_status(code), om_err_grpc_status(code),
                   msg != NULL && msg[0] != '\0' ? msg : om_strerror(code));
}

static void respond_ok(om_http_req_t *req, om_signal_t sig)
{
    const otlp_http_req_t *q = om_http_req_state(req);
    if (!q->json) {
        respond(req, 200, CT_PROTO, "", 0, NULL);
        return;
    }
    om_strbuf_t sb;
    om_strbuf_init(&sb, 4096);
    om_otlp_json_encode_response(sig, 0, NULL, &sb);
    if (sb.failed || sb.data == NULL) {
        respond(req, 200, CT_JSON, "{}", 2, NULL);
    } else {
        respond(req, 200, CT_JSON, sb.data, sb.len, NULL);
    }
    om_strbuf_free(&sb);
}

/* ------------------------------------------------------------------------------------------ */
/* Headers complete: check everything that does not need the body                             */

static void trim(const char **v, size_t *n)
{
    while (*n > 0 && (**v == ' ' || **v == '\t')) {
        (*v)++;
        (*n)--;
    }
    while (*n > 0 && ((*v)[*n - 1] == ' ' || (*v)[*n - 1] == '\t')) {
        (*n)--;
    }
}

/* The media type without parameters, compared case-insensitively. A header sent twice is a
 * list (RFC 9110 5.3), which is no media type. */
static int parse_content_type(const om_http_req_t *req, bool *json)
{
    unsigned count = 0;
    const char *v = om_http_req_header(req, "content-type", &count);
    if (v == NULL || count != 1) {
        return OM_ENOTSUP;
    }
    const char *semi = strchr(v, ';');
    size_t n = semi != NULL ? (size_t)(semi - v) : strlen(v);
    trim(&v, &n);
    if (n == strlen(CT_PROTO) && strncasecmp(v, CT_PROTO, n) == 0) {
        *json = false;
        return 0;
    }
    if (n == strlen(CT_JSON) && strncasecmp(v, CT_JSON, n) == 0) {
        *json = true;
        return 0;
    }
    return OM_ENOTSUP;
}

/* The Content-Encoding, if one we decode and compression_algorithms allows. */
static int parse_encoding(const om_http_req_t *req, const rcv_otlp_t *r, otlp_enc_t *enc)
{
    unsigned count = 0;
    const char *v = om_http_req_header(req, "content-encoding", &count);
    if (count > 1) {
        return OM_ENOTSUP;
    }
    if (v == NULL) {
        v = "";
    }
    size_t n = strlen(v);
    trim(&v, &n);
    char name[32];
    if (n >= sizeof name || otlp_enc_parse(v, n, enc) != 0) {
        return OM_ENOTSUP;
    }
    memcpy(name, v, n);
    name[n] = '\0';
    return om_http_server_cfg_accepts(&r->cfg->protocols.http.server, name) ? 0 : OM_ENOTSUP;
}

/* Checks in otelcol's order. Answers and returns true when the request is refused. */
static bool refuse_early(om_http_req_t *req, const otlp_http_route_t *rt)
{
    otlp_http_req_t *q = om_http_req_state(req);
    if (om_http_req_method(req) != OM_HTTP_POST) {
        om_http_req_warn(req, "405 method %s", om_http_req_method_name(req));
        respond_text(req, 405, "405 method not allowed, supported: [POST]", "Allow: POST\r\n");
        return true;
    }
    if (parse_content_type(req, &q->json) != 0) {
        om_http_req_warn(req, "415 unsupported Content-Type");
        respond_text(req, 415, "415 unsupported media type, supported: [" CT_JSON ", " CT_PROTO "]",
                     NULL);
        return true;
    }
    if (parse_encoding(req, rt->r, &q->enc) != 0) {
        om_http_req_warn(req, "400 unsupported Content-Encoding");
        respond_status(req, 400, om_err_grpc_status(OM_EINVAL), "unsupported Content-Encoding");
        return true;
    }
    uint64_t declared = 0;
    if (om_http_req_content_length(req, &declared) && declared > body_max(req)) {
        om_http_req_warn(req, "413 Content-Length %" PRIu64 " over the limit", declared);
        respond_status(req, 413, om_err_grpc_status(OM_ETOOBIG), "request body too large");
        return true;
    }
    return false;
}

static void on_begin(om_http_req_t *req, void *arg)
{
    (void)refuse_early(req, arg);
}

/* ------------------------------------------------------------------------------------------ */
/* Body and completion                                                                        */

/* Refuse the request mid-body: answer; the server closes, since the rest is not read. */
static void fail_body(om_http_req_t *req, int code, const char *msg)
{
    om_http_req_warn(req, "%d %s", om_err_http_status(code), msg);
    respond_error(req, code, msg);
}

/* A body with a Content-Length gets its buffer at once (up to this much), instead of growing
 * it by doubling as the bytes arrive (each step a copy): one allocation for the common
 * request. Only once body bytes arrive, and bounded, so that headers alone cannot make us
 * hold memory. */
#define BODY_PRESIZE_MAX ((size_t)256 * 1024)

static void on_body(om_http_req_t *req, void *arg, const char *at, size_t n)
{
    (void)arg;
    otlp_http_req_t *q = om_http_req_state(req);
    size_t max = body_max(req);
    q->raw_len += n;
    if (q->raw_len > max) {
        fail_body(req, OM_ETOOBIG, "request body too large");
        return;
    }
    uint64_t declared = 0;
    if (q->body.data == NULL && om_http_req_content_length(req, &declared) && declared > n) {
        /* declared <= max (refuse_early); a failure here is reported by the append. */
        (void)otlp_buf_reserve(
            &q->body, declared < BODY_PRESIZE_MAX ? (size_t)declared : BODY_PRESIZE_MAX, max);
    }
    int rc = otlp_buf_append(&q->body, at, n, max);
    if (rc != 0) {
        fail_body(req, rc, om_strerror(rc));
    }
}

static bool looks_like_json(const uint8_t *d, size_t n)
{
    size_t i = 0;
    while (i < n && (d[i] == ' ' || d[i] == '\t' || d[i] == '\r' || d[i] == '\n')) {
        i++;
    }
    return i < n && d[i] == '{';
}

/* Any thread (a worker for large bodies): the plain body decoded as one format. Reads the
 * body and arena_cap only. */
static int decode_as(const otlp_http_req_t *q, om_signal_t sig, bool json, om_batch_t **b,
                     om_err_t *err)
{
    const uint8_t *d = q->body.data != NULL ? q->body.data : (const uint8_t *)"";
    if (json) {
        return om_batch_decode_json(sig, (const char *)d, q->body.len, q->arena_cap, b, err);
    }
    return om_batch_decode_proto(sig, d, q->body.len, q->arena_cap, b, err);
}

/* Some clients (Airflow 2.x) label protobuf as JSON. A body labelled JSON is decoded as what
 * it looks like; when that fails as malformed, the other format gets one try, and only the
 * first error is reported. A protobuf request starts with 0x0a, which is JSON whitespace, so
 * looking at the first byte alone cannot tell. Any thread. */
static int decode_body(const otlp_http_req_t *q, om_signal_t sig, om_batch_t **b, om_err_t *err)
{
    if (!q->json) {
        return decode_as(q, sig, false, b, err);
    }
    bool json = looks_like_json(q->body.data, q->body.len);
    int rc = decode_as(q, sig, json, b, err);
    if (rc != OM_EINVAL) {
        return rc;
    }
    om_err_t err2 = {0};
    if (decode_as(q, sig, !json, b, &err2) == 0) {
        return 0;
    }
    return rc;
}

static void answer(om_http_req_t *req, rcv_otlp_t *r, om_signal_t sig, int rc);

static void deliver(om_http_req_t *req, rcv_otlp_t *r, om_signal_t sig, om_batch_t *b)
{
    if (b->items == 0) {
        /* otelcol answers an empty export with success without calling the pipeline. */
        om_batch_release(b);
        respond_ok(req, sig);
        return;
    }
    int rc = otlp_deliver(r, &r->obs_http, b);
    answer(req, r, sig, rc);
}

/* Loop thread: hand on a request whose off-loop processors already ran (on the worker). */
static void deliver_prepared(om_http_req_t *req, rcv_otlp_t *r, om_signal_t sig, om_prepared_t *p)
{
    answer(req, r, sig, otlp_deliver_prepared(r, &r->obs_http, p));
}

/* The reply to what the pipeline returned. */
static void answer(om_http_req_t *req, rcv_otlp_t *r, om_signal_t sig, int rc)
{
    if (rc == 0) {
        respond_ok(req, sig);
    } else if (rc == OM_ENOTSUP) {
        respond_status(req, 404, GRPC_UNIMPLEMENTED, "no pipeline for this signal");
    } else {
        OM_CLOG(r->log_name, OM_LOG_DEBUG, "pipeline refused request from %s: %s",
                om_http_req_peer(req), om_strerror(rc));
        respond_error(req, rc, om_strerror(rc));
    }
}

/* The core's algorithm for a compressed body's encoding; false for an identity body. */
static bool body_comp(const otlp_http_req_t *q, om_comp_t *alg)
{
    switch (q->enc) {
    case OTLP_ENC_GZIP:
        *alg = OM_COMP_GZIP;
        return true;
    case OTLP_ENC_DEFLATE:
        *alg = OM_COMP_ZLIB;
        return true;
    case OTLP_ENC_ZSTD:
        *alg = OM_COMP_ZSTD;
        return true;
    default:
        return false;
    }
}

/* gzip, deflate and zstd: the whole body, decompressed into at most zmax bytes; it replaces
 * the body. Any thread: reads enc, body and zmax. */
static int decompress_whole(otlp_http_req_t *q, om_err_t *err)
{
    om_comp_t alg;
    if (!body_comp(q, &alg)) {
        return 0;
    }
    uint8_t *out = NULL;
    size_t len = 0;
    int rc = om_decompress(alg, q->body.data, q->body.len, q->zmax, &out, &len, err);
    if (rc == 0) {
        otlp_buf_free(&q->body);
        q->body = (otlp_buf_t){.data = out, .len = len, .cap = len};
    }
    return rc;
}

/* The body is complete: answer from what decompressing (zrc) and decoding (drc, batch) gave,
 * in this order: a body that does not decompress, intake refusing, a request that does not
 * decode; else the batch goes to the pipeline. Loop thread. */
static void finish(om_http_req_t *req, const otlp_http_route_t *rt)
{
    otlp_http_req_t *q = om_http_req_state(req);
    if (q->zrc != 0) {
        om_http_req_warn(req, "%d %s", om_err_http_status(q->zrc), q->zerr.msg);
        respond_error(req, q->zrc, q->zerr.msg);
        return;
    }
    if (om_intake_refusing(rt->r->host->intake)) {
        respond_error(req, OM_EREFUSED, om_intake_refused_msg(rt->r->host->intake));
        return; /* a batch decoded meanwhile is released by on_end */
    }
    if (q->drc != 0) {
        const char *what = q->json ? "invalid OTLP JSON" : "invalid OTLP protobuf";
        char msg[300];
        snprintf(msg, sizeof msg, "%s: %s", what,
                 q->derr.msg[0] != '\0' ? q->derr.msg : om_strerror(q->drc));
        om_http_req_warn(req, "%d %s", om_err_http_status(q->drc), msg);
        respond_error(req, q->drc, q->drc == OM_EINVAL ? msg : q->derr.msg);
        return;
    }
    if (q->prepared) {
        q->prepared = false;
        deliver_prepared(req, rt->r, rt->signal, &q->prep);
        return;
    }
    om_batch_t *b = q->batch;
    q->batch = NULL;
    deliver(req, rt->r, rt->signal, b);
}

/* Bodies with OTLP_OFFLOAD_MIN bytes of work (received bytes; a compressed body's count 4
 * times, for what they inflate to) are decompressed and decoded on a worker when compressed,
 * or while the loop is busy (otlp_offload). The wire scan and copy are most of an uncompressed
 * request's cost on the loop thread (about 4,500 instructions per load generator span,
 * callgrind), and the loop thread is the collector's one serial resource under load. */

/* A worker: reads the state's body, enc, json, zmax and arena_cap; writes body, zrc, zerr,
 * batch, drc, derr, prep and prepared; runs the pipeline's off-loop processors. */
static void body_work(om_job_t *job, void *thread_data)
{
    (void)thread_data;
    otlp_http_req_t *q = (otlp_http_req_t *)(void *)((char *)job - offsetof(otlp_http_req_t, job));
    q->zrc = decompress_whole(q, &q->zerr);
    if (q->zrc == 0) {
        q->drc = decode_body(q, q->route->signal, &q->batch, &q->derr);
        otlp_buf_free(&q->body); /* the batch does not reference it */
        if (q->drc == 0 && q->batch->items > 0) {
            /* The pipeline's off-loop processors run here, on the worker that decoded (an
             * empty request is answered without the pipeline, as otelcol does). */
            otlp_prepare(q->route->r, q->batch, &q->prep);
            q->batch = NULL;
            q->prepared = true;
        }
    }
}

/* Loop thread: the request's state is the loop's again. */
static void body_done(om_job_t *job, int status)
{
    otlp_http_req_t *q = (otlp_http_req_t *)(void *)((char *)job - offsetof(otlp_http_req_t, job));
    if (status != 0) {
        q->zrc = status; /* the work did not run (the pool closed) */
        om_err_set(&q->zerr, status, "%s", om_strerror(status));
    }
    finish(q->req, q->route);
}

/* A large body goes to the host's worker pool; true when it went (then the job's done
 * answers). Not while intake refuses: that answer needs no decoding. */
static bool process_on_worker(om_http_req_t *req, const otlp_http_route_t *rt)
{
    otlp_http_req_t *q = om_http_req_state(req);
    om_comp_t alg;
    size_t work = q->body.len;
    if (body_comp(q, &alg)) {
        work = work > SIZE_MAX / 4 ? SIZE_MAX : work * 4;
    }
    if (!otlp_offload(rt->r, work, body_comp(q, &alg))) {
        return false;
    }
    q->req = req;
    q->route = rt; /* body_work reads the signal from it (fixed while the server lives) */
    return om_workers_submit(rt->r->host->workers, &q->job, body_work, body_done) == 0;
}

static void on_complete(om_http_req_t *req, void *arg)
{
    const otlp_http_route_t *rt = arg;
    otlp_http_req_t *q = om_http_req_state(req);
    q->zmax = body_max(req);
    /* Decoded protobuf-c structs take several times the wire size (about 6x measured). */
    q->arena_cap = q->zmax > SIZE_MAX / 8 ? SIZE_MAX : q->zmax * 8;
    if (process_on_worker(req, rt)) {
        return;
    }
    q->zrc = decompress_whole(q, &q->zerr);
    if (q->zrc == 0 && !om_intake_refusing(rt->r->host->intake)) {
        q->drc = decode_body(q, rt->signal, &q->batch, &q->derr);
        otlp_buf_free(&q->body);
    }
    finish(req, rt);
}

static void on_end(om_http_req_t *req, void *arg)
{
    (void)arg;
    otlp_http_req_t *q = om_http_req_state(req);
    otlp_buf_free(&q->body);
    if (q->batch != NULL) {
        om_batch_release(q->batch);
        q->batch = NULL;
    }
    if (q->prepared) {
        om_prepared_release(&q->prep);
        q->prepared = false;
    }
}

const om_http_handler_t otlp_http_handler = {
    .begin = on_begin,
    .body = on_body,
    .complete = on_complete,
    .end = on_end,
};
