/* http_server_fuzz.c: raw bytes as the byte stream of one connection to the core HTTP server,
 * through the code the server runs (http_session.c: parsing, limits, routing, bodies, answers
 * given at once or later), without a socket. The routes cover every way a handler may take a
 * request: exact and subtree paths, methods, a buffered and a streamed body, a refusal at
 * headers time and mid-body, an answer given after the callback, a large answer handed over,
 * and header and query lookups.
 *
 * Input layout: byte 0 picks options (bit 0: one request per connection; bit 1: make an
 * allocation fail, byte 2 says which; bit 2: small limits; bit 3: a Date header), byte 1 the
 * size of the pieces the rest is fed in (0: all at once), then the stream. Every output must
 * start with a status line. */
#include <stdlib.h>
#include <string.h>

#include "om.h"

static om_http_req_t *owed;

static void h_echo(om_http_req_t *req, void *arg)
{
    (void)arg;
    char q[64], body[256];
    int n = om_http_query_get(om_http_req_query(req), "q", q, sizeof q);
    unsigned count = 0;
    const char *ct = om_http_req_header(req, "content-type", &count);
    uint64_t cl = 0;
    bool has_cl = om_http_req_content_length(req, &cl);
    size_t blen = 0;
    (void)om_http_req_body(req, &blen);
    int len = snprintf(body, sizeof body, "%s %s q=%d ct=%s/%u cl=%d body=%zu",
                       om_http_req_method_name(req), om_http_req_path(req), n, ct ? ct : "-", count,
                       has_cl, blen);
    size_t n_out = len < 0 ? 0 : (size_t)len < sizeof body ? (size_t)len : sizeof body - 1;
    om_http_respond(req, 200, "text/plain", "X-A: b\r\n", body, n_out);
}

static void h_stream(om_http_req_t *req, void *arg, const char *data, size_t len)
{
    (void)arg;
    if (len > 0 && data[0] == '!') {
        om_http_respond(req, 400, NULL, NULL, "bang", 4);
    }
}

static void h_refuse(om_http_req_t *req, void *arg)
{
    (void)arg;
    if (om_http_req_header(req, "x-refuse", NULL) != NULL) {
        om_http_respond(req, 403, NULL, NULL, NULL, 0);
    }
}

static void h_later(om_http_req_t *req, void *arg)
{
    (void)arg;
    owed = req;
}

static void h_big(om_http_req_t *req, void *arg)
{
    (void)arg;
    char *b = om_malloc(40000);
    if (b != NULL) {
        memset(b, 'x', 40000);
    }
    om_http_respond_take(req, 200, "application/octet-stream", NULL, b, b != NULL ? 40000 : 0);
}

static const om_http_handler_t H_ECHO = {.complete = h_echo};
static const om_http_handler_t H_STREAM = {.begin = h_refuse, .body = h_stream, .complete = h_echo};
static const om_http_handler_t H_LATER = {.complete = h_later};
static const om_http_handler_t H_BIG = {.complete = h_big};

static void check_out(om_http_session_t *s)
{
    size_t len = 0;
    char *out = om_http_session_take_output(s, &len);
    if (out != NULL && (len < 9 || memcmp(out, "HTTP/1.1 ", 9) != 0)) {
        abort();
    }
    om_free(out);
}

/* A handler that answers later does so between two pieces of input. */
static void answer_owed(om_http_session_t *s)
{
    if (owed != NULL) {
        om_http_req_t *r = owed;
        owed = NULL;
        om_http_respond(r, 202, "text/plain", NULL, "later", 5);
        om_http_session_resume(s);
    }
}

static om_http_server_t *make_server(const om_http_server_cfg_t *cfg, uint8_t opt)
{
    om_http_server_opts_t o = {.log_name = "fuzz",
                               .cfg = cfg,
                               .default_endpoint = "localhost:0",
                               .one_request_per_connection = (opt & 1) != 0,
                               .date_header = (opt & 8) != 0,
                               .max_url = (opt & 4) ? 64 : 0,
                               .max_header_bytes = (opt & 4) ? 256 : 0};
    om_http_server_t *srv = NULL;
    om_err_t err = {0};
    if (om_http_server_new(&o, &srv, &err) != 0) {
        return NULL;
    }
    if (om_http_server_route(srv, "/e", OM_HTTP_GET | OM_HTTP_POST, &H_ECHO, NULL, 0, &err) != 0 ||
        om_http_server_route(srv, "/t/", 0, &H_ECHO, NULL, 100, &err) != 0 ||
        om_http_server_route(srv, "/s", OM_HTTP_POST, &H_STREAM, NULL, 0, &err) != 0 ||
        om_http_server_route(srv, "/l", 0, &H_LATER, NULL, 0, &err) != 0 ||
        om_http_server_route(srv, "/b", OM_HTTP_GET, &H_BIG, NULL, 0, &err) != 0) {
        om_http_server_free(srv);
        return NULL;
    }
    return srv;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3) {
        return 0;
    }
    om_log_set_level(OM_LOG_NONE);
    uint8_t opt = data[0];
    size_t piece = data[1] == 0 ? size : data[1];
    unsigned long fail_at = 1u + data[2];
    data += 3;
    size -= 3;
    om_http_server_cfg_t cfg;
    om_http_server_cfg_defaults(&cfg);
    cfg.max_request_body_size = (opt & 4) ? 512 : 64 * 1024;
    char *keys[] = {"X-Frame-Options"}, *values[] = {"DENY"};
    cfg.response_headers = (om_strmap_t){.n = 1, .keys = keys, .values = values};
    om_http_server_t *srv = make_server(&cfg, opt);
    if (srv == NULL) {
        return 0;
    }
    if (opt & 2) {
        om_alloc_fail_after(fail_at);
    }
    om_http_session_t *s = om_http_session_new(srv, "fuzz");
    /* Bound: each pass consumes up to `piece` (>= 1) bytes. */
    while (s != NULL && size > 0 && !om_http_session_done(s)) {
        size_t n = size < piece ? size : piece;
        om_http_session_feed(s, (const char *)data, n);
        check_out(s);
        answer_owed(s);
        check_out(s);
        data += n;
        size -= n;
    }
    if (s != NULL) {
        om_http_session_feed(s, NULL, 0);
        answer_owed(s);
        check_out(s);
        om_http_session_free(s);
    }
    owed = NULL;
    om_alloc_fail_after(0);
    om_http_server_free(srv);
    return 0;
}
