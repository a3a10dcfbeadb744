/* otlp_http_session.c: OTLP/HTTP request handling for one connection, without sockets.
 *
 * http_parser calls us back while bytes are fed in. Everything a request needs is decided
 * at two points: when its headers are complete (route, method, media type, encoding,
 * declared length: errors are answered at once, before any body is read), and when its body
 * is complete (decode, hand to the pipeline, answer). Bodies are decompressed while they
 * arrive, into a buffer capped at max_request_body_size, so neither a large raw body nor a
 * compression bomb is ever held beyond the cap. Processing is synchronous, so responses are
 * appended to `out` in request order, which is what pipelining needs. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "google/rpc/status.pb-c.h"
#include "otlp_http.h"

#define CT_PROTO "application/x-protobuf"
#define CT_JSON "application/json"
#define CT_TEXT "text/plain; charset=utf-8"

#define WARN_WINDOW_NS (60 * OM_NS_PER_S)
#define WARN_BURST 10

/* gRPC codes used directly (the rest come from om_err_grpc_status). */
#define GRPC_UNIMPLEMENTED 12

static const char *const hdr_names[OTLP_HDR_COUNT] = {
    [OTLP_HDR_CONTENT_TYPE] = "content-type",
    [OTLP_HDR_CONTENT_ENCODING] = "content-encoding",
    [OTLP_HDR_EXPECT] = "expect",
};

static const otlp_http_cfg_t *hcfg(const otlp_http_session_t *s)
{
    return &s->r->cfg->protocols.http;
}

static size_t body_max(const otlp_http_session_t *s)
{
    uint64_t m = hcfg(s)->max_request_body_size;
    return m > SIZE_MAX - 1 ? SIZE_MAX - 1 : (size_t)m;
}

/* ------------------------------------------------------------------------------------------ */
/* Rate-limited warnings: a client sending garbage in a loop must not flood the log.           */

void otlp_http_warn(otlp_http_warnlimit_t *w, const char *who, const char *fmt, ...)
{
    if (w == NULL || OM_LOG_WARN < om__log_level) {
        return;
    }
    uint64_t now = uv_hrtime();
    if (now - w->window_start_ns >= (uint64_t)WARN_WINDOW_NS) {
        if (w->suppressed > 0) {
            om_log_write(OM_LOG_WARN, who, "%u similar warnings suppressed", w->suppressed);
        }
        w->window_start_ns = now;
        w->in_window = 0;
        w->suppressed = 0;
    }
    if (w->in_window >= WARN_BURST) {
        w->suppressed++;
        return;
    }
    w->in_window++;
    char msg[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    om_log_write(OM_LOG_WARN, who, "%s", msg);
}

static void warn_limited(otlp_http_session_t *s, const char *fmt, ...) OM_PRINTF(2, 3);
static void warn_limited(otlp_http_session_t *s, const char *fmt, ...)
{
    if (s->warn == NULL || OM_LOG_WARN < om__log_level) {
        return;
    }
    char msg[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    otlp_http_warn(s->warn, s->r->log_name, "request from %s: %s", s->peer != NULL ? s->peer : "?",
                   msg);
}

/* ------------------------------------------------------------------------------------------ */
/* Responses                                                                                  */

static const char *reason_phrase(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 413:
        return "Content Too Large";
    case 415:
        return "Unsupported Media Type";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return "Error";
    }
}

/* Undo a partial append to out after it failed (full or out of memory): the connection
 * closes, since a truncated response would desynchronise the client. */
static void out_check(otlp_http_session_t *s, size_t mark)
{
    if (!s->out.failed) {
        return;
    }
    s->out.len = mark;
    s->out.failed = false;
    if (s->out.data != NULL) {
        s->out.data[mark] = '\0';
    }
    s->req.keep_alive = false;
    s->close = true;
}

/* Append one whole response to out, or nothing: a response that does not fit is dropped and
 * the connection closes, since a truncated one would desynchronise the client. */
static void respond(otlp_http_session_t *s, int status, const char *ctype, const void *body,
                    size_t len, const char *extra_headers)
{
    otlp_http_req_t *q = &s->req;
    bool close = !q->keep_alive || s->close_after;
    bool retry = status == 429 || status == 503;
    const char *conn = "";
    if (close) {
        conn = "Connection: close\r\n";
    } else if (s->parser.http_major == 1 && s->parser.http_minor == 0) {
        conn = "Connection: keep-alive\r\n"; /* HTTP/1.0 closes unless told otherwise */
    }
    size_t mark = s->out.len;
    om_strbuf_printf(&s->out,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s%s%s\r\n",
                     status, reason_phrase(status), ctype, len, retry ? "Retry-After: 1\r\n" : "",
                     extra_headers != NULL ? extra_headers : "", conn);
    om_strbuf_append(&s->out, body, len);
    q->responded = true;
    if (close) {
        q->keep_alive = false;
    }
    out_check(s, mark);
}

static void respond_text(otlp_http_session_t *s, int status, const char *text,
                         const char *extra_headers)
{
    respond(s, status, CT_TEXT, text, strlen(text), extra_headers);
}

/* A google.rpc.Status in the request's encoding, as OTLP wants for errors. */
static void respond_status(otlp_http_session_t *s, int status, int grpc_code, const char *msg)
{
    if (s->req.json) {
        om_strbuf_t sb;
        om_strbuf_init(&sb, 4096);
        om_otlp_json_encode_status(grpc_code, msg, &sb);
        if (sb.failed || sb.data == NULL) {
            respond_text(s, status, msg, NULL);
        } else {
            respond(s, status, CT_JSON, sb.data, sb.len, NULL);
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
    respond(s, status, CT_PROTO, buf, n, NULL);
}

/* Answer from one of our error codes through the one mapping. */
static void respond_error(otlp_http_session_t *s, int code, const char *msg)
{
    respond_status(s, om_err_http_status(code), om_err_grpc_status(code),
                   msg != NULL && msg[0] != '\0' ? msg : om_strerror(code));
}

static void respond_ok(otlp_http_session_t *s)
{
    if (!s->req.json) {
        respond(s, 200, CT_PROTO, "", 0, NULL);
        return;
    }
    om_strbuf_t sb;
    om_strbuf_init(&sb, 4096);
    om_otlp_json_encode_response(s->req.signal, 0, NULL, &sb);
    if (sb.failed || sb.data == NULL) {
        respond(s, 200, CT_JSON, "{}", 2, NULL);
    } else {
        respond(s, 200, CT_JSON, sb.data, sb.len, NULL);
    }
    om_strbuf_free(&sb);
}

/* ------------------------------------------------------------------------------------------ */
/* Request state                                                                              */

static void req_reset(otlp_http_req_t *q)
{
    otlp_buf_free(&q->body);
    otlp_inflate_free(q->inflate);
    memset(q, 0, sizeof *q);
}

static void append_bounded(char *dst, size_t cap, size_t *len, bool *overflow, const char *at,
                           size_t n)
{
    if (*overflow || n > cap - 1 - *len) {
        *overflow = true;
        return;
    }
    memcpy(dst + *len, at, n);
    *len += n;
    dst[*len] = '\0';
}

static int on_message_begin(http_parser *p)
{
    otlp_http_session_t *s = p->data;
    req_reset(&s->req);
    s->in_message = true;
    s->msg_begin_ns = uv_hrtime();
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t n)
{
    otlp_http_req_t *q = &((otlp_http_session_t *)p->data)->req;
    append_bounded(q->url, sizeof q->url, &q->url_len, &q->url_overflow, at, n);
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t n)
{
    otlp_http_req_t *q = &((otlp_http_session_t *)p->data)->req;
    if (q->in_value) {
        q->in_value = false;
        q->hname_len = 0;
        q->hname_overflow = false;
    }
    append_bounded(q->hname, sizeof q->hname, &q->hname_len, &q->hname_overflow, at, n);
    return 0;
}

static otlp_http_hdr_t header_kind(const otlp_http_req_t *q)
{
    for (int i = 1; i < OTLP_HDR_COUNT && !q->hname_overflow; i++) {
        if (strcasecmp(q->hname, hdr_names[i]) == 0) {
            return (otlp_http_hdr_t)i;
        }
    }
    return OTLP_HDR_NONE;
}

static int on_header_value(http_parser *p, const char *at, size_t n)
{
    otlp_http_req_t *q = &((otlp_http_session_t *)p->data)->req;
    if (!q->in_value) {
        q->in_value = true;
        q->hcur = header_kind(q);
        if (q->hcur != OTLP_HDR_NONE && q->hval_seen[q->hcur]) {
            /* A repeated header is a list (RFC 9110 5.3): join so that it fails to match. */
            append_bounded(q->hval[q->hcur], OTLP_HTTP_HVALUE_MAX, &q->hval_len[q->hcur],
                           &q->hval_overflow[q->hcur], ",", 1);
        }
        if (q->hcur != OTLP_HDR_NONE) {
            q->hval_seen[q->hcur] = true;
        }
    }
    if (q->hcur != OTLP_HDR_NONE) {
        append_bounded(q->hval[q->hcur], OTLP_HTTP_HVALUE_MAX, &q->hval_len[q->hcur],
                       &q->hval_overflow[q->hcur], at, n);
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Headers complete: route and check everything that does not need the body.                   */

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

/* The media type without parameters, compared case-insensitively. */
static int parse_content_type(const otlp_http_req_t *q, bool *json)
{
    if (!q->hval_seen[OTLP_HDR_CONTENT_TYPE] || q->hval_overflow[OTLP_HDR_CONTENT_TYPE]) {
        return OM_ENOTSUP;
    }
    const char *v = q->hval[OTLP_HDR_CONTENT_TYPE];
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

/* The signal whose configured path the request target names, or 0. The query is ignored;
 * absolute-form targets (http://host/v1/traces) are reduced to their path. */
static om_signal_t route(otlp_http_session_t *s, bool *bad_target)
{
    const otlp_http_req_t *q = &s->req;
    struct http_parser_url u;
    http_parser_url_init(&u);
    *bad_target = false;
    if (q->url_overflow || http_parser_parse_url(q->url, q->url_len, 0, &u) != 0) {
        *bad_target = !q->url_overflow;
        return 0;
    }
    if ((u.field_set & (1u << UF_PATH)) == 0) {
        return 0;
    }
    const char *path = q->url + u.field_data[UF_PATH].off;
    size_t n = u.field_data[UF_PATH].len;
    const otlp_http_cfg_t *c = hcfg(s);
    const char *paths[OM_SIG_COUNT] = {c->traces_url_path, c->metrics_url_path, c->logs_url_path};
    for (int i = 0; i < OM_SIG_COUNT; i++) {
        if (paths[i] != NULL && strlen(paths[i]) == n && memcmp(paths[i], path, n) == 0) {
            return om_signal_from_index(i);
        }
    }
    return 0;
}

static bool body_pending(const http_parser *p)
{
    return (p->flags & F_CHUNKED) != 0 ||
           ((p->flags & F_CONTENTLENGTH) != 0 && p->content_length > 0);
}

static bool expects_continue(const http_parser *p, const otlp_http_req_t *q)
{
    if (p->http_major != 1 || p->http_minor < 1 || !q->hval_seen[OTLP_HDR_EXPECT]) {
        return false;
    }
    const char *v = q->hval[OTLP_HDR_EXPECT];
    size_t n = q->hval_len[OTLP_HDR_EXPECT];
    trim(&v, &n);
    return n == 12 && strncasecmp(v, "100-continue", n) == 0;
}

static bool declared_too_long(const otlp_http_session_t *s, const http_parser *p)
{
    return (p->flags & F_CONTENTLENGTH) != 0 && p->content_length > body_max(s);
}

/* Checks in otelcol's order. Answers and returns true when the request is refused. */
static bool check_request(otlp_http_session_t *s, http_parser *p)
{
    otlp_http_req_t *q = &s->req;
    bool bad_target;
    q->signal = route(s, &bad_target);
    int idx = om_signal_index(q->signal);
    if (bad_target) {
        warn_limited(s, "400 malformed request target");
        respond_text(s, 400, "400 malformed request target\n", NULL);
        return true;
    }
    /* An unwired signal's path is not served at all, as in otelcol. */
    if (idx < 0 || s->r->next[idx].consume == NULL) {
        warn_limited(s, "404 unknown path");
        respond_text(s, 404, "404 page not found\n", NULL);
        return true;
    }
    if (p->method != HTTP_POST) {
        warn_limited(s, "405 method %s", http_method_str((enum http_method)p->method));
        respond_text(s, 405, "405 method not allowed, supported: [POST]", "Allow: POST\r\n");
        return true;
    }
    if (parse_content_type(q, &q->json) != 0) {
        warn_limited(s, "415 unsupported Content-Type");
        respond_text(s, 415, "415 unsupported media type, supported: [" CT_JSON ", " CT_PROTO "]",
                     NULL);
        return true;
    }
    int ce = OTLP_HDR_CONTENT_ENCODING;
    if (q->hval_overflow[ce] || otlp_enc_parse(q->hval[ce], q->hval_len[ce], &q->enc) != 0) {
        warn_limited(s, "400 unsupported Content-Encoding");
        respond_status(s, 400, om_err_grpc_status(OM_EINVAL), "unsupported Content-Encoding");
        return true;
    }
    if (declared_too_long(s, p)) {
        warn_limited(s, "413 Content-Length %" PRIu64 " over the limit", p->content_length);
        respond_status(s, 413, om_err_grpc_status(OM_ETOOBIG), "request body too large");
        return true;
    }
    return false;
}

static int on_headers_complete(http_parser *p)
{
    otlp_http_session_t *s = p->data;
    otlp_http_req_t *q = &s->req;
    q->headers_done = true;
    bool keep = http_should_keep_alive(p) != 0;
    bool pending = body_pending(p);
    bool expect = expects_continue(p, q);
    /* The body of a refused request is read and dropped to keep the connection, unless the
     * client waits for 100 Continue (it may never send the body) or it is too large. This
     * must be known before answering, for the Connection header. */
    q->keep_alive = keep && !(pending && (expect || declared_too_long(s, p)));
    if (check_request(s, p)) {
        q->rejected = true;
        if (!q->keep_alive) {
            s->close = true;
            return -1;
        }
        return 0;
    }
    q->keep_alive = keep;
    if (q->enc != OTLP_ENC_IDENTITY) {
        q->inflate = otlp_inflate_new(q->enc, body_max(s));
        if (q->inflate == NULL) {
            q->keep_alive = false;
            respond_error(s, OM_ENOMEM, "out of memory");
            s->close = true;
            return -1;
        }
    }
    if (pending && expect) {
        size_t mark = s->out.len;
        om_strbuf_puts(&s->out, "HTTP/1.1 100 Continue\r\n\r\n");
        out_check(s, mark);
        if (s->close) {
            return -1;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Body and completion                                                                        */

/* Refuse the request mid-body: answer, and close since the rest of the body is not read. */
static int fail_body(otlp_http_session_t *s, int code, const char *msg)
{
    s->req.keep_alive = false;
    warn_limited(s, "%d %s", om_err_http_status(code), msg);
    respond_error(s, code, msg);
    s->close = true;
    return -1;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
    otlp_http_session_t *s = p->data;
    otlp_http_req_t *q = &s->req;
    size_t max = body_max(s);
    q->raw_len += n;
    if (q->rejected) {
        if (q->raw_len > max) {
            s->close = true; /* the answer is out already; stop reading a huge body */
            return -1;
        }
        return 0;
    }
    if (q->raw_len > max) {
        return fail_body(s, OM_ETOOBIG, "request body too large");
    }
    om_err_t err = {0};
    int rc;
    if (q->inflate != NULL) {
        rc = otlp_inflate_feed(q->inflate, (const uint8_t *)at, n, &q->body, &err);
    } else {
        rc = otlp_buf_append(&q->body, at, n, max);
    }
    if (rc != 0) {
        return fail_body(s, rc, err.msg[0] != '\0' ? err.msg : om_strerror(rc));
    }
    return 0;
}

static bool looks_like_json(const uint8_t *d, size_t n)
{
    size_t i = 0;
    while (i < n && (d[i] == ' ' || d[i] == '\t' || d[i] == '\r' || d[i] == '\n')) {
        i++;
    }
    return i < n && d[i] == '{';
}

static int decode_as(otlp_http_session_t *s, bool json, om_batch_t **b, om_err_t *err)
{
    const otlp_http_req_t *q = &s->req;
    size_t max = body_max(s);
    /* Decoded protobuf-c structs take several times the wire size (about 6x measured). */
    size_t arena_cap = max > SIZE_MAX / 8 ? SIZE_MAX : max * 8;
    const uint8_t *d = q->body.data != NULL ? q->body.data : (const uint8_t *)"";
    if (json) {
        return om_batch_decode_json(q->signal, (const char *)d, q->body.len, arena_cap, b, err);
    }
    return om_batch_decode_proto(q->signal, d, q->body.len, arena_cap, b, err);
}

/* Some clients (Airflow 2.x) label protobuf as JSON. A body labelled JSON is decoded as what
 * it looks like; when that fails as malformed, the other format gets one try, and only the
 * first error is reported. A protobuf request starts with 0x0a, which is JSON whitespace, so
 * looking at the first byte alone cannot tell. */
static int decode_body(otlp_http_session_t *s, om_batch_t **b, om_err_t *err)
{
    const otlp_http_req_t *q = &s->req;
    if (!q->json) {
        return decode_as(s, false, b, err);
    }
    bool json = looks_like_json(q->body.data, q->body.len);
    int rc = decode_as(s, json, b, err);
    if (rc != OM_EINVAL) {
        return rc;
    }
    om_err_t err2 = {0};
    if (decode_as(s, !json, b, &err2) == 0) {
        return 0;
    }
    return rc;
}

static void handle_request(otlp_http_session_t *s)
{
    otlp_http_req_t *q = &s->req;
    om_err_t err = {0};
    if (q->inflate != NULL && otlp_inflate_finish(q->inflate, &err) != 0) {
        warn_limited(s, "400 %s", err.msg);
        respond_error(s, OM_EINVAL, err.msg);
        return;
    }
    if (om_intake_refusing(s->r->host->intake)) {
        respond_error(s, OM_EREFUSED, OM_INTAKE_REFUSED_MSG);
        return;
    }
    om_batch_t *b = NULL;
    int rc = decode_body(s, &b, &err);
    otlp_buf_free(&q->body); /* the batch does not reference it */
    if (rc != 0) {
        const char *what = q->json ? "invalid OTLP JSON" : "invalid OTLP protobuf";
        char msg[300];
        snprintf(msg, sizeof msg, "%s: %s", what, err.msg[0] != '\0' ? err.msg : om_strerror(rc));
        warn_limited(s, "%d %s", om_err_http_status(rc), msg);
        respond_error(s, rc, rc == OM_EINVAL ? msg : err.msg);
        return;
    }
    if (b->items == 0) {
        /* otelcol answers an empty export with success without calling the pipeline. */
        om_batch_release(b);
        respond_ok(s);
        return;
    }
    rc = otlp_deliver(s->r, b);
    if (rc == 0) {
        respond_ok(s);
    } else if (rc == OM_ENOTSUP) {
        respond_status(s, 404, GRPC_UNIMPLEMENTED, "no pipeline for this signal");
    } else {
        OM_CLOG(s->r->log_name, OM_LOG_DEBUG, "pipeline refused request from %s: %s",
                s->peer != NULL ? s->peer : "?", om_strerror(rc));
        respond_error(s, rc, om_strerror(rc));
    }
}

static int on_message_complete(http_parser *p)
{
    otlp_http_session_t *s = p->data;
    otlp_http_req_t *q = &s->req;
    s->in_message = false;
    if (!q->rejected) {
        handle_request(s);
    }
    bool keep = q->keep_alive && !s->close_after && !s->close;
    req_reset(q);
    if (!keep) {
        s->close = true;
        return -1;
    }
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ------------------------------------------------------------------------------------------ */

void otlp_http_session_init(otlp_http_session_t *s, rcv_otlp_t *r, otlp_http_warnlimit_t *warn,
                            const char *peer)
{
    memset(s, 0, sizeof *s);
    http_parser_init(&s->parser, HTTP_REQUEST);
    s->parser.data = s;
    s->r = r;
    s->warn = warn;
    s->peer = peer;
    om_strbuf_init(&s->out, OTLP_HTTP_OUT_MAX);
}

/* Malformed HTTP: answer 400 (431 for oversized headers) unless this request was answered
 * already, and close: the byte stream cannot be resynchronised. */
static void bad_http(otlp_http_session_t *s, enum http_errno e)
{
    s->req.keep_alive = false;
    if (!s->req.responded) {
        int status = e == HPE_HEADER_OVERFLOW ? 431 : 400;
        warn_limited(s, "%d malformed HTTP: %s", status, http_errno_description(e));
        char text[128];
        snprintf(text, sizeof text, "%d %s\n", status, http_errno_description(e));
        respond_text(s, status, text, NULL);
    }
    s->close = true;
}

void otlp_http_session_feed(otlp_http_session_t *s, const char *data, size_t len)
{
    if (s->close) {
        return;
    }
    if (len == 0) {
        /* The peer will send nothing more: a partial request cannot be answered usefully. */
        s->close = true;
        return;
    }
    /* Bound: each pass consumes at least one byte, or stops. */
    while (len > 0 && !s->close) {
        size_t n = http_parser_execute(&s->parser, &parser_settings, data, len);
        if (s->close) {
            return; /* one of our callbacks stopped the parser and answered */
        }
        enum http_errno e = HTTP_PARSER_ERRNO(&s->parser);
        if (e != HPE_OK) {
            bad_http(s, e);
            return;
        }
        if (!s->parser.upgrade) {
            return;
        }
        /* The client offered an upgrade (h2c, websocket) that we decline by answering in
         * HTTP/1.1; it then carries on in HTTP/1.1. CONNECT has no such way back. */
        if (s->parser.method == HTTP_CONNECT || n == 0) {
            s->close = true;
            return;
        }
        s->parser.upgrade = 0;
        data += n;
        len -= n;
    }
}

bool otlp_http_session_idle(const otlp_http_session_t *s)
{
    return !s->in_message;
}

void otlp_http_session_free(otlp_http_session_t *s)
{
    req_reset(&s->req);
    om_strbuf_free(&s->out);
}
