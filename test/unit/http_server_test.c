/* http_server_test.c: the core HTTP server (src/http_server.c, src/http_session.c).
 *
 * Servers run on this thread's loop, bound to 127.0.0.1:0. Clients run in threads with
 * blocking sockets (om_testhttp, or the raw client below) and wake the loop when done, or are
 * plain sockets this thread opens and writes (the kernel completes a loopback connect and a
 * small send without the server's help). Waits are on conditions (a count, a flag, EOF),
 * never fixed sleeps; timeouts are configured short and measured from the client side. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/obj_mac.h>

#include "config.h"
#include "http_internal.h"
#include "om_test.h"
#include "om_testauth.h"
#include "om_testcerts.h"
#include "om_testhttp.h"

#define MS OM_NS_PER_MS

static om_testcerts_t C;

/* ------------------------------------------------------------------------------------------ */
/* Handlers                                                                                   */

typedef struct fx fx_t;

typedef struct route_arg {
    fx_t *f;
    const char *name;
} route_arg_t;

struct fx {
    uv_loop_t loop;
    om_http_server_cfg_t cfg;
    om_http_server_opts_t opts;
    om_http_server_t *srv;
    int port;
    int done;
    route_arg_t args[16];
    /* What the handlers saw. */
    int completes, cancels, ends;
    om_http_req_t *owed; /* a request whose answer is owed */
    uv_timer_t later;    /* answers /async */
    bool later_init;
    size_t streamed;
    size_t conns_seen; /* server connections when /count was answered */
};

static void respond_text(om_http_req_t *req, int status, const char *text)
{
    om_http_respond(req, status, "text/plain", NULL, text, strlen(text));
}

/* "route=NAME path=PATH" */
static void h_name(om_http_req_t *req, void *arg)
{
    route_arg_t *a = arg;
    a->f->completes++;
    char body[512];
    snprintf(body, sizeof body, "route=%s path=%s", a->name, om_http_req_path(req));
    respond_text(req, 200, body);
}

static void h_end(om_http_req_t *req, void *arg)
{
    (void)req;
    route_arg_t *a = arg;
    a->f->ends++;
}

/* Echo what the request says about itself. */
static void h_hdr(om_http_req_t *req, void *arg)
{
    (void)arg;
    char q[64] = "-", body[512];
    (void)om_http_query_get(om_http_req_query(req), "q", q, sizeof q);
    unsigned count = 0;
    const char *x = om_http_req_header(req, "x-test", &count);
    snprintf(body, sizeof body, "x-test=%s count=%u q=%s query=%s method=%s", x ? x : "(none)",
             count, q, om_http_req_query(req), om_http_req_method_name(req));
    respond_text(req, 200, body);
}

/* A buffered body: "len=N:BODY". */
static void h_post(om_http_req_t *req, void *arg)
{
    (void)arg;
    size_t n = 0;
    const char *b = om_http_req_body(req, &n);
    char body[600];
    snprintf(body, sizeof body, "len=%zu:%.*s", n, (int)(n < 500 ? n : 500), b);
    respond_text(req, 200, body);
}

/* A streamed body, counted. */
static void h_stream_body(om_http_req_t *req, void *arg, const char *data, size_t len)
{
    (void)req;
    (void)data;
    route_arg_t *a = arg;
    a->f->streamed += len;
}

static void h_stream_done(om_http_req_t *req, void *arg)
{
    route_arg_t *a = arg;
    char body[64];
    snprintf(body, sizeof body, "streamed=%zu", a->f->streamed);
    a->f->streamed = 0;
    respond_text(req, 200, body);
}

/* Refused at headers time. */
static void h_refuse(om_http_req_t *req, void *arg)
{
    (void)arg;
    respond_text(req, 403, "no");
}

/* Refused on the first body bytes. */
static void h_mid(om_http_req_t *req, void *arg, const char *data, size_t len)
{
    (void)arg;
    (void)data;
    (void)len;
    respond_text(req, 400, "bad body");
}

static void on_later(uv_timer_t *t)
{
    fx_t *f = t->data;
    om_http_req_t *req = f->owed;
    f->owed = NULL;
    if (req != NULL) {
        respond_text(req, 200, "later");
    }
}

/* Answered from a timer, as a worker's result would be. */
static void h_async(om_http_req_t *req, void *arg)
{
    route_arg_t *a = arg;
    a->f->owed = req;
    uv_timer_start(&a->f->later, on_later, 20, 0);
}

/* Never answered until the test does (or cancel). */
static void h_owe(om_http_req_t *req, void *arg)
{
    route_arg_t *a = arg;
    a->f->owed = req;
}

static void h_cancel(om_http_req_t *req, void *arg)
{
    (void)req;
    route_arg_t *a = arg;
    a->f->cancels++;
}

static void h_big(om_http_req_t *req, void *arg)
{
    (void)arg;
    size_t n = 1 << 20;
    char *b = om_malloc(n);
    memset(b, 'x', n);
    om_http_respond_take(req, 200, "application/octet-stream", NULL, b, n);
}

static void h_count(om_http_req_t *req, void *arg)
{
    route_arg_t *a = arg;
    a->f->conns_seen = om_http_server_conn_count(a->f->srv);
    respond_text(req, 200, "counted");
}

static const om_http_handler_t H_NAME = {.complete = h_name, .end = h_end};
static const om_http_handler_t H_HDR = {.complete = h_hdr};
static const om_http_handler_t H_POST = {.complete = h_post};
static const om_http_handler_t H_STREAM = {.body = h_stream_body, .complete = h_stream_done};
static const om_http_handler_t H_REFUSE = {.begin = h_refuse, .end = h_end};
static const om_http_handler_t H_MID = {.body = h_mid, .complete = h_name, .end = h_end};
static const om_http_handler_t H_ASYNC = {.complete = h_async};
static const om_http_handler_t H_OWE = {.complete = h_owe, .cancel = h_cancel, .end = h_end};
static const om_http_handler_t H_BIG = {.complete = h_big};
static const om_http_handler_t H_COUNT = {.complete = h_count};

/* ------------------------------------------------------------------------------------------ */
/* Fixture                                                                                    */

/* Defaults for a server on 127.0.0.1:0; change f->cfg and f->opts, then fx_start. */
static void fx_init(fx_t *f)
{
    memset(f, 0, sizeof *f);
    uv_loop_init(&f->loop);
    om_http_server_cfg_defaults(&f->cfg);
    f->cfg.endpoint = "127.0.0.1:0";
    f->opts = (om_http_server_opts_t){.loop = &f->loop,
                                      .log_name = "test/http",
                                      .cfg = &f->cfg,
                                      .default_endpoint = "localhost:0"};
    uv_timer_init(&f->loop, &f->later);
    f->later.data = f;
    f->later_init = true;
}

static int add(fx_t *f, int i, const char *pattern, unsigned methods, const om_http_handler_t *h,
               uint64_t max_body)
{
    f->args[i] = (route_arg_t){.f = f, .name = pattern};
    om_err_t err = {0};
    return om_http_server_route(f->srv, pattern, methods, h, &f->args[i], max_body, &err);
}

static int fx_start(fx_t *f)
{
    om_err_t err = {0};
    if (om_http_server_new(&f->opts, &f->srv, &err) != 0) {
        fprintf(stderr, "new: %s\n", err.msg);
        return -1;
    }
    int rc =
        add(f, 0, "/exact", OM_HTTP_GET, &H_NAME, 0) | add(f, 1, "/tree/", 0, &H_NAME, 0) |
        add(f, 2, "/tree/deeper/", OM_HTTP_GET, &H_NAME, 0) |
        add(f, 3, "/hdr", OM_HTTP_GET, &H_HDR, 0) | add(f, 4, "/post", OM_HTTP_POST, &H_POST, 0) |
        add(f, 5, "/stream", OM_HTTP_POST, &H_STREAM, 0) |
        add(f, 6, "/refuse", OM_HTTP_POST, &H_REFUSE, 0) |
        add(f, 7, "/mid", OM_HTTP_POST, &H_MID, 0) | add(f, 8, "/async", OM_HTTP_GET, &H_ASYNC, 0) |
        add(f, 9, "/owe", OM_HTTP_GET, &H_OWE, 0) | add(f, 10, "/big", OM_HTTP_GET, &H_BIG, 0) |
        add(f, 11, "/small", OM_HTTP_POST, &H_POST, 10) |
        add(f, 12, "/count", OM_HTTP_GET, &H_COUNT, 0);
    if (rc != 0 || om_http_server_start(f->srv, &err) != 0) {
        fprintf(stderr, "start: %s\n", err.msg);
        return -1;
    }
    f->port = om_http_server_port(f->srv);
    return f->port > 0 ? 0 : -1;
}

static void on_done(void *arg)
{
    ((fx_t *)arg)->done++;
}

static void run_until_flag(fx_t *f, const int *flag)
{
    uint64_t end = uv_hrtime() + 20 * OM_NS_PER_S;
    while (*flag == 0 && uv_hrtime() < end) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
}

/* Run the loop until the server holds n connections (or 20 s pass). */
static void run_until_conns(fx_t *f, size_t n)
{
    uint64_t end = uv_hrtime() + 20 * OM_NS_PER_S;
    while (om_http_server_conn_count(f->srv) != n && uv_hrtime() < end) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
}

/* Shut down, check that done runs once and that the loop closes cleanly. */
static int fx_stop(fx_t *f)
{
    if (f->srv != NULL) {
        om_http_server_shutdown(f->srv, on_done, f);
        run_until_flag(f, &f->done);
        om_http_server_shutdown(f->srv, on_done, f);
        om_http_server_free(f->srv);
    }
    uv_close((uv_handle_t *)&f->later, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(&f->loop);
    if (rc != 0 || (f->srv != NULL && f->done != 1)) {
        fprintf(stderr, "fx_stop: loop_close %d, done called %d times\n", rc, f->done);
        return -1;
    }
    return 0;
}

/* One exchange on a new connection; want responses (0: until the server closes). */
static void xchg(fx_t *f, om_testhttp_t *h, const char *raw, int want)
{
    om_testhttp_init(h, f->port, raw, want);
    h->head = strncmp(raw, "HEAD ", 5) == 0;
    om_testhttp_run_on(h, &f->loop);
}

#define GET(path) "GET " path " HTTP/1.1\r\nHost: x\r\n\r\n"

/* ------------------------------------------------------------------------------------------ */
/* A raw client in a thread: send, then note when the first byte and the end arrive.          */

typedef struct rawc {
    int port;
    const char *data;
    size_t len;
    uint64_t t_sent, t_first, t_eof; /* uv_hrtime(): before connecting, first byte, end */
    char got[2048];
    size_t got_len;
    bool eof;
    atomic_bool done;
    uv_async_t *wake;
} rawc_t;

static void rawc_main(void *arg)
{
    rawc_t *r = arg;
    /* Before connecting: the server's clock for the connection starts later. */
    r->t_sent = uv_hrtime();
    int fd = om_testhttp_connect(r->port, 10000);
    if (fd >= 0) {
        size_t off = 0;
        while (off < r->len) {
            ssize_t k = send(fd, r->data + off, r->len - off, MSG_NOSIGNAL);
            if (k <= 0) {
                break;
            }
            off += (size_t)k;
        }
        char buf[4096];
        for (;;) {
            ssize_t k = recv(fd, buf, sizeof buf, 0);
            if (k <= 0) {
                r->eof = k == 0 || errno == ECONNRESET;
                break;
            }
            if (r->t_first == 0) {
                r->t_first = uv_hrtime();
            }
            size_t room = sizeof r->got - 1 - r->got_len;
            size_t n = (size_t)k < room ? (size_t)k : room;
            memcpy(r->got + r->got_len, buf, n);
            r->got_len += n;
            r->got[r->got_len] = '\0';
        }
        r->t_eof = uv_hrtime();
        close(fd);
    }
    atomic_store(&r->done, true);
    uv_async_send(r->wake);
}

static void on_wake(uv_async_t *a)
{
    (void)a;
}

static void rawc_run(fx_t *f, rawc_t *r, int port, const char *data)
{
    memset(r, 0, sizeof *r);
    r->port = port;
    r->data = data;
    r->len = strlen(data);
    uv_async_t wake;
    uv_async_init(&f->loop, &wake, on_wake);
    r->wake = &wake;
    uv_thread_t t;
    uv_thread_create(&t, rawc_main, r);
    uint64_t end = uv_hrtime() + 30 * OM_NS_PER_S;
    while (!atomic_load(&r->done) && uv_hrtime() < end) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    uv_thread_join(&t);
    uv_close((uv_handle_t *)&wake, NULL);
    uv_run(&f->loop, UV_RUN_NOWAIT);
}

/* A connection this thread opens and writes to without waiting for anything. */
static int raw_open(int port, const char *data)
{
    int fd = om_testhttp_connect(port, 5000);
    if (fd >= 0 && data != NULL) {
        (void)send(fd, data, strlen(data), MSG_NOSIGNAL);
    }
    return fd;
}

/* True when the server has closed fd (EOF or reset), without blocking. */
static bool raw_closed(int fd)
{
    char b[256];
    ssize_t k = recv(fd, b, sizeof b, MSG_DONTWAIT);
    while (k > 0) {
        k = recv(fd, b, sizeof b, MSG_DONTWAIT);
    }
    return k == 0 || (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

/* ------------------------------------------------------------------------------------------ */
/* Authentication                                                                             */

/* A server whose settings have auth asks the authenticator before routing: a refusal is 401
 * with nothing more (not even whether the path exists), the connection closes, and the
 * refusal is counted. request_params lets a query parameter stand for a header. */
static void test_auth(void)
{
    fx_t f;
    fx_init(&f);
    om_host_t host;
    om_test_host_init(&host, &f.loop);
    om_testauth_t ta = {.secret = "s3cret"};
    om_testauth_register(&host, "testauth", &ta);
    char *params[] = {"authorization"};
    f.cfg.auth.authenticator = "testauth";
    f.cfg.auth.request_params = (om_strlist_t){.n = 1, .items = params};
    f.opts.host = &host;
    ASSERT_EQ_INT(fx_start(&f), 0);
    om_testhttp_t h;
    xchg(&f, &h, GET("/exact"), 0);
    ASSERT_EQ_INT(h.resp[0].status, 401);
    ASSERT_EQ_STR(h.resp[0].body, "Unauthorized\n");
    ASSERT_TRUE(h.eof);
    xchg(&f, &h, "GET /nowhere HTTP/1.1\r\nHost: x\r\nAuthorization: Test wrong\r\n\r\n", 0);
    ASSERT_EQ_INT(h.resp[0].status, 401);
    xchg(&f, &h,
         "POST /post HTTP/1.1\r\nHost: x\r\nauthorization: Basic eDp5\r\n"
         "Content-Length: 5\r\n\r\nhello",
         0);
    ASSERT_EQ_INT(h.resp[0].status, 401);
    /* An authenticator that cannot check now: retryable, and still nothing routed. */
    xchg(&f, &h, "GET /exact HTTP/1.1\r\nHost: x\r\nAuthorization: Test busy\r\n\r\n", 0);
    ASSERT_EQ_INT(h.resp[0].status, 503);
    ASSERT_CONTAINS(h.resp[0].headers, "retry-after: 1\n");
    ASSERT_TRUE(h.eof);
    ASSERT_EQ_INT(f.completes, 0);
    /* Good credentials, as a header (any case) or as the query parameter named. */
    xchg(&f, &h, "GET /exact HTTP/1.1\r\nHost: x\r\nAUTHORIZATION: Test s3cret\r\n\r\n", 1);
    ASSERT_EQ_INT(h.resp[0].status, 200);
    ASSERT_EQ_STR(h.resp[0].body, "route=/exact path=/exact");
    xchg(&f, &h, GET("/hdr?authorization=Test%20s3cret"), 1);
    ASSERT_EQ_INT(h.resp[0].status, 200);
    xchg(&f, &h, GET("/nowhere?authorization=Test%20s3cret"), 1);
    ASSERT_EQ_INT(h.resp[0].status, 404);
    ASSERT_EQ_INT(ta.refusals, 4);
    ASSERT_EQ_INT(om_test_metric(&host, OM_AUTH_FAILURES_METRIC, "authenticator", "testauth",
                                 "component", "test/http", "transport", "http", NULL),
                  4);
    om_http_server_shutdown(f.srv, on_done, &f);
    run_until_flag(&f, &f.done);
    om_http_server_free(f.srv);
    f.srv = NULL;
    om_test_host_close(&host);
    ASSERT_EQ_INT(fx_stop(&f), 0);
}

/* An authenticator that is not there, or does not serve, fails start with otelcol's words:
 * asking for authentication never gives an open port. */
static void test_auth_unresolved(void)
{
    fx_t f;
    fx_init(&f);
    om_host_t host;
    om_test_host_init(&host, &f.loop);
    om_testauth_t client_only = {.secret = "x", .sides = OM_AUTH_CLIENT};
    om_testauth_register(&host, "client", &client_only);
    const struct {
        const char *id;
        om_host_t *host;
        const char *want;
    } cases[] = {
        {"missing", &host, "failed to resolve authenticator \"missing\": authenticator not found"},
        {"client", &host, "requested authenticator is not a server authenticator (\"client\")"},
        {"client", NULL, "failed to resolve authenticator \"client\": authenticator not found"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        f.cfg.auth.authenticator = (char *)(uintptr_t)cases[i].id;
        f.opts.host = cases[i].host;
        om_err_t err = {0};
        ASSERT_EQ_INT(om_http_server_new(&f.opts, &f.srv, &err), 0);
        ASSERT_EQ_INT(om_http_server_start(f.srv, &err), OM_ECONFIG);
        ASSERT_EQ_STR(err.msg, cases[i].want);
        ASSERT_EQ_INT(om_http_server_port(f.srv), -1);
        f.done = 0;
        om_http_server_shutdown(f.srv, on_done, &f);
        ASSERT_EQ_INT(f.done, 1);
        om_http_server_free(f.srv);
        f.srv = NULL;
    }
    om_test_host_close(&host);
    ASSERT_EQ_INT(fx_stop(&f), 0);
}

/* ------------------------------------------------------------------------------------------ */
/* Routing, methods, HEAD                                                                     */

static void test_routing(void)
{
    fx_t f;
    fx_init(&f);
    ASSERT_EQ_INT(fx_start(&f), 0);
    om_testhttp_t h;
    char hv[128];
    xchg(&f, &h, GET("/exact"), 1);
    ASSERT_EQ_INT(h.resp[0].status, 200);
    ASSERT_EQ_STR(h.resp[0].body, "route=/exact path=/exact");
    /* An exact pattern serves only itself; a subtree its whole tree, the longest wins. */
    xchg(&f, &h, GET("/exact/"), 1);
    ASSERT_EQ_INT(h.resp[0].status, 404);
    ASSERT_EQ_STR(h.resp[0].body, "404 page not found\n");
    ASSERT_EQ_STR(om_testhttp_header(&h.resp[0], "x-content-type-options", hv, sizeof hv),
                  "nosniff");
    xchg(&f, &h, GET("/tree/a/b"), 1);
    ASSERT_EQ_STR(h.resp[0].body, "route=/tree/ path=/tree/a/b");
    xchg(&f, &h, GET("/tree/deeper/x"), 1);
    ASSERT_EQ_STR(h.resp[0].body, "route=/tree/deeper/ path=/tree/deeper/x");
    /* The longer pattern serves GET only: a POST falls to the subtree that takes any. */
    xchg(&f, &h, "POST /tree/deeper/x HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 1);
    ASSERT_EQ_STR(h.resp[0].body, "route=/tree/ path=/tree/deeper/x");
    /* A subtree's root without its slash is redirected, the query kept. */
    xchg(&f, &h, GET("/tree?x=1"), 1);
    ASSERT_EQ_INT(h.resp[0].status, 301);
    ASSERT_EQ_STR(om_testhttp_header(&h.resp[0], "location", hv, sizeof hv), "/tree/?x=1");
    /* A path served only for other methods: 405 with Allow (GET brings HEAD). */
    xchg(&f, &h, "DELETE /exact HTTP/1.1\r\nHost: x\r\n\r\n", 1);
    ASSERT_EQ_INT(h.resp[0].status, 405);
    ASSERT_EQ_STR(om_testhttp_header(&h.resp[0], "allow", hv, sizeof hv), "GET, HEAD");
    /* HEAD: GET's headers, no body. */
    xchg(&f, &h, "HEAD /exact HTTP/1.1\r\nHost: x\r\n\r\n", 1);
    ASSERT_EQ_INT(h.resp[0].status, 200);
    ASSERT_EQ_STR(om_testhttp_header(&h.resp[0], "content-length", hv, sizeof hv), "24");
    ASSERT_EQ_UINT(h.resp[0].body_len, 0);
    /* Percent-decoded before matching; absolute-form targets; bad escapes are 400. */
    xchg(&f, &h, GET("/ex%61ct"), 1);
    ASSERT_EQ_STR(h.resp[0].body, "route=/exact path=/exact");
    xchg(&f, &h, GET("http://example.com/exact?a=b"), 1);
    ASSERT_EQ_STR(h.resp[0].body, "route=/exact path=/exact");
    xchg(&f, &h, GET("/%zz"), 0);
    ASSERT_EQ_INT(h.resp[0].status, 400);
    ASSERT_TRUE(h.eof);
    /* Headers by name (first of repeats, and how many), query parameters, the method. */
    xchg(&f, &h,
         "GET /hdr?q=a%20b+c&r=1 HTTP/1.1\r\nHost: x\r\nX-Test:  one  \r\nx-TEST: two\r\n\r\n", 1);
    ASSERT_EQ_STR(h.resp[0].body, "x-test=one count=2 q=a b c query=q=a%20b+c&r=1 method=GET");
    ASSERT_EQ_INT(fx_stop(&f), 0);
}

static void test_route_errors(void)
{
    fx_t f;
    fx_init(&f);
    om_err_t err = {0};
    ASSERT_EQ_INT(om_http_server_new(&f.opts, &f.srv, &err), 0);
    ASSERT_EQ_INT(om_http_server_route(f.srv, "nope", 0, &H_NAME, NULL, 0, &err), OM_EINVAL);
    ASSERT_EQ_INT(add(&f, 0, "/a", OM_HTTP_GET, &H_NAME, 0), 0);
    ASSERT_EQ_INT(add(&f, 1, "/a", OM_HTTP_GET, &H_NAME, 0), OM_EINVAL);
    ASSERT_EQ_INT(add(&f, 2, "/a", OM_HTTP_POST, &H_POST, 0), 0); /* other methods: fine */
    om_http_server_free(f.srv);
    f.srv = NULL;
    ASSERT_EQ_INT(fx_stop(&f), 0);
}

/* ------------------------------------------------------------------------------------------ */
/* Keep-alive, pipelining, bodies                                                             */

static void test_keepalive_and_pipelining(void)
{
    fx_t f;
    fx_init(&f);
    ASSERT_EQ_INT(fx_start(&f), 0);
    om_testhttp_t h;
    char hv[64];
    /* Three requests in one write: three answers in order, the connection stays. */
    xchg(&f, &h,
         GET("/exact") "POST /post HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello" GET(
             "/hdr?q=3"),
         3);
    ASSERT_EQ_INT(h.nresp, 3);
    ASSERT_EQ_STR(h.resp[0].body, "route=/exact path=/exact");
    ASSERT_EQ_STR(h.resp[1].body, "len=5:hello");
    ASSERT_CONTAINS(h.resp[2].body, "q=3");
    ASSERT_TRUE(om_testhttp_header(&h.resp[2], "connection", hv, sizeof hv) == NULL);
    ASSERT_TRUE(!h.eof);
    /* Connection: close ends it after the answer; HTTP/1.0 closes unless asked not to. */
    xchg(&f, &h, "GET /exact HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" GET("/exact"), 0);
    ASSERT_EQ_INT(h.nresp, 1);
    ASSERT_EQ_STR(om_testhttp_header(&h.resp[0], "connection", hv, sizeof hv), "close");
    ASSERT_TRUE(h.eof);
    xchg(&f, &h, "GET /exact HTTP/1.0\r\n\r\n", 0);
    ASSERT_EQ_INT(h.nresp, 1);
    ASSERT_TRUE(h.eof);
    xchg(&f, &h, "GET /exact HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 1);
    ASSERT_EQ_STR(om_testhttp_header(&h.resp[0], "connection", hv, sizeof hv), "keep-alive");
    ASSERT_EQ_INT(fx_stop(&f), 0);

    /* keep_alives_enabled: false: one request per connection. */
    fx_init(&f);
    f.cfg.keep_alives_enabled = false;
    ASSERT_EQ_INT(fx_start(&f), 0);
    xchg(&f, &h, GET("/exact") GET("/exact"), 0);
    ASSERT_EQ_INT(h.nresp, 1);
    ASSERT_EQ_STR(om_testhttp_header(&h.resp[0], "connection", hv, sizeof hv), "close");
    ASSERT_TRUE(h.eof);
    ASSERT_EQ_INT(fx_stop(&f), 0);
}

static void test_bodies(void)
{
    fx_t f;
    fx_init(&f);
    ASSERT_EQ_INT(fx_start(&f), 0);
    om_testhttp_t h;
    /* Chunked, buffered and streamed. */
    xchg(&f, &h,
         "POST /post HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
         "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
         1);
    ASSERT_EQ_STR(h.resp[0].body, "len=11:hello world");
    xchg(&f, &h,
         "POST /stream HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
         "3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n",
         1);
    ASSERT_EQ_STR(h.resp[0].body, "streamed=7");
    /* Expect: 100-continue gets 100 Continue before the body is read. */
    xchg(&f, &h,
         "POST /post HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok",
         2);
    ASSERT_EQ_INT(h.resp[0].status, 100);
    ASSERT_EQ_STR(h.resp[1].body, "len=2:ok");
    /* Refused at headers time: a small body is read and dropped, the connection kept. */
    int ends = f.ends;
    xchg(&f, &h, "POST /refuse HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nbody" GET("/exact"),
         2);
    ASSERT_EQ_INT(h.resp[0].status, 403);
    ASSERT_EQ_STR(h.resp[1].body, "route=/exact path=/exact");
    ASSERT_EQ_INT(f.ends, ends + 2);
    /* ... but not when the client waits for 100 Continue: no 100, and close. */
    xchg(&f, &h,
         "POST /refuse HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n",
         0);
    ASSERT_EQ_INT(h.nresp, 1);
    ASSERT_EQ_INT(h.resp[0].status, 403);
    ASSERT_TRUE(h.eof);
    /* Refused mid-body: answered, then closed (the rest is not read). */
    xchg(&f, &h,
         "POST /mid HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabcdefghij" GET("/exact"), 0);
    ASSERT_EQ_INT(h.nresp, 1);
    ASSERT_EQ_INT(h.resp[0].status, 400);
    ASSERT_TRUE(h.eof);
    /* A large answer handed over without a copy; HEAD gets its length only. */
    xchg(&f, &h, GET("/big"), 1);
    ASSERT_EQ_INT(h.resp[0].status, 200);
    ASSERT_EQ_UINT(h.resp[0].body_len, 1 << 20);
    char hv[32];
    xchg(&f, &h, "HEAD /big HTTP/1.1\r\nHost: x\r\n\r\n", 1);
    ASSERT_EQ_STR(om_testhttp_header(&h.resp[0], "content-length", hv, sizeof hv), "1048576");
    ASSERT_EQ_UINT(h.resp[0].body_len, 0);
    ASSERT_EQ_INT(fx_stop(&f), 0);
}

/* ------------------------------------------------------------------------------------------ */
/* Limits                                                                                     */

static void test_limits(void)
{
    fx_t f;
    fx_init(&f);
    f.opts.max_header_bytes = 1024;
    f.opts.max_url = 256;
    f.cfg.max_request_body_size = 1000;
    ASSERT_EQ_INT(fx_start(&f), 0);
    om_testhttp_t h;
    char big[4096];
    /* Headers over max_header_bytes: 431 without waiting for their end. */
    int n = snprintf(big, sizeof big, "GET /exact HTTP/1.1\r\nX-Big: ");
    memset(big + n, 'a', 2000);
    big[n + 2000] = '\0';
    xchg(&f, &h, big, 0);
    ASSERT_EQ_INT(h.resp[0].status, 431);
    ASSERT_TRUE(h.eof);
    /* A target over max_url: 431 (Go counts it in the header bytes). */
    n = snprintf(big, sizeof big, "GET /");
    memset(big + n, 'b', 300);
    snprintf(big + n + 300, sizeof big - (size_t)n - 300, " HTTP/1.1\r\nHost: x\r\n\r\n");
    xchg(&f, &h, big, 0);
    ASSERT_EQ_INT(h.resp[0].status, 431);
    /* A declared body over max_request_body_size: 413 at once, and close. */
    xchg(&f, &h, "POST /post HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n", 0);
    ASSERT_EQ_INT(h.resp[0].status, 413);
    ASSERT_TRUE(h.eof);
    /* A chunked one, as the bytes arrive; and on a streamed route too. */
    n = snprintf(big, sizeof big,
                 "POST /post HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n");
    memset(big + n, 'c', 2048);
    big[n + 2048] = '\0';
    xchg(&f, &h, big, 0);
    ASSERT_EQ_INT(h.resp[0].status, 413);
    ASSERT_TRUE(h.eof);
    n = snprintf(big, sizeof big,
                 "POST /stream HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n");
    memset(big + n, 'c', 2048);
    big[n + 2048] = '\0';
    xchg(&f, &h, big, 0);
    ASSERT_EQ_INT(h.resp[0].status, 413);
    /* A route's own limit (10 bytes) below the server's. */
    xchg(&f, &h, "POST /small HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n01234567890", 0);
    ASSERT_EQ_INT(h.resp[0].status, 413);
    xchg(&f, &h, "POST /small HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789", 1);
    ASSERT_EQ_STR(h.resp[0].body, "len=10:0123456789");
    /* Malformed HTTP: 400 and close. */
    xchg(&f, &h, "POST /post HTTP/1.1\r\nContent-Length: zz\r\n\r\n", 0);
    ASSERT_EQ_INT(h.resp[0].status, 400);
    ASSERT_TRUE(h.eof);
    ASSERT_EQ_INT(fx_stop(&f), 0);
}

/* ------------------------------------------------------------------------------------------ */
/* Answers given later                                                                        */

static void test_async_answers(void)
{
    fx_t f;
    fx_init(&f);
    f.cfg.write_timeout = 300 * MS;
    ASSERT_EQ_INT(fx_start(&f), 0);
    om_testhttp_t h;
    /* Answered from a timer; the request pipelined behind it waits, and comes second. */
    xchg(&f, &h, GET("/async") GET("/exact") GET("/async"), 3);
    ASSERT_EQ_INT(h.nresp, 3);
    ASSERT_EQ_STR(h.resp[0].body, "later");
    ASSERT_EQ_STR(h.resp[1].body, "route=/exact path=/exact");
    ASSERT_EQ_STR(h.resp[2].body, "later");

    /* The client goes away while the answer is owed (nothing is read from the connection
     * meanwhile, so write_timeout notices): cancel is called, the memory stays until the
     * handler answers, and that answer only frees it. */
    int fd = raw_open(f.port, GET("/owe"));
    ASSERT_TRUE(fd >= 0);
    uint64_t end = uv_hrtime() + 10 * OM_NS_PER_S;
    while (f.owed == NULL && uv_hrtime() < end) {
        uv_run(&f.loop, UV_RUN_ONCE);
    }
    ASSERT_TRUE(f.owed != NULL);
    close(fd);
    while (f.cancels == 0 && uv_hrtime() < end) {
        uv_run(&f.loop, UV_RUN_ONCE);
    }
    ASSERT_EQ_INT(f.cancels, 1);
    ASSERT_EQ_UINT(om_http_server_conn_count(f.srv), 1);
    int ends = f.ends;
    respond_text(f.owed, 200, "too late");
    f.owed = NULL;
    ASSERT_EQ_INT(f.ends, ends + 1);
    run_until_conns(&f, 0);
    ASSERT_EQ_UINT(om_http_server_conn_count(f.srv), 0);

    /* Shutdown waits for an answer still owed (cancel first). */
    fd = raw_open(f.port, GET("/owe"));
    while (f.owed == NULL && uv_hrtime() < end) {
        uv_run(&f.loop, UV_RUN_ONCE);
    }
    om_http_server_shutdown(f.srv, on_done, &f);
    for (int i = 0; i < 50; i++) {
        uv_run(&f.loop, UV_RUN_NOWAIT);
    }
    ASSERT_EQ_INT(f.done, 0);
    ASSERT_EQ_INT(f.cancels, 2);
    respond_text(f.owed, 200, "bye");
    f.owed = NULL;
    run_until_flag(&f, &f.done);
    ASSERT_EQ_INT(f.done, 1);
    close(fd);
    ASSERT_EQ_INT(fx_stop(&f), 0);
}

/* ------------------------------------------------------------------------------------------ */
/* Timeouts: each closes the connection on time, without an answer                           */

/* Closed no earlier than `ms` after the client began (less one clock tick), and not much
 * later (generous: the machine may be loaded). */
#define ASSERT_CLOSED_AFTER(r, from, ms)                                                           \
    do {                                                                                           \
        ASSERT_TRUE((r).eof);                                                                      \
        uint64_t om__el = ((r).t_eof - (from)) / MS;                                               \
        if (om__el + 2 < (ms) || om__el > (ms) + 3000) {                                           \
            OM__FAIL("closed after %llu ms, want %d ms", (unsigned long long)om__el, (int)(ms));   \
        }                                                                                          \
    } while (0)

static void test_timeouts(void)
{
    fx_t f;
    fx_init(&f);
    f.cfg.read_header_timeout = 150 * MS;
    f.cfg.idle_timeout = 200 * MS;
    f.cfg.write_timeout = 250 * MS;
    ASSERT_EQ_INT(fx_start(&f), 0);
    rawc_t r;
    /* read_header_timeout: nothing sent, or half the headers. */
    rawc_run(&f, &r, f.port, "");
    ASSERT_CLOSED_AFTER(r, r.t_sent, 150);
    ASSERT_EQ_UINT(r.got_len, 0);
    rawc_run(&f, &r, f.port, "GET /exact HTTP/1.1\r\nHost: x\r\n");
    ASSERT_CLOSED_AFTER(r, r.t_sent, 150);
    ASSERT_EQ_UINT(r.got_len, 0);
    /* idle_timeout: after an answer, a keep-alive connection may stay silent that long. */
    rawc_run(&f, &r, f.port, GET("/exact"));
    ASSERT_CONTAINS(r.got, "HTTP/1.1 200 OK");
    ASSERT_CLOSED_AFTER(r, r.t_sent, 200);
    /* ... and so may a body: a stalled one is dropped. */
    rawc_run(&f, &r, f.port, "POST /post HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nab");
    ASSERT_CLOSED_AFTER(r, r.t_sent, 200);
    ASSERT_EQ_UINT(r.got_len, 0);
    /* write_timeout: an answer owed for longer is given up (cancel is called). */
    rawc_run(&f, &r, f.port, GET("/owe"));
    ASSERT_CLOSED_AFTER(r, r.t_sent, 250);
    ASSERT_EQ_INT(f.cancels, 1);
    respond_text(f.owed, 200, "late");
    f.owed = NULL;
    ASSERT_EQ_INT(fx_stop(&f), 0);

    /* read_timeout bounds the whole request, body included, however it trickles. */
    fx_init(&f);
    f.cfg.read_timeout = 200 * MS;
    f.cfg.read_header_timeout = 0; /* then read_timeout bounds the headers too */
    f.cfg.idle_timeout = 5000 * MS;
    ASSERT_EQ_INT(fx_start(&f), 0);
    rawc_run(&f, &r, f.port, "POST /post HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nab");
    ASSERT_CLOSED_AFTER(r, r.t_sent, 200);
    rawc_run(&f, &r, f.port, "GET /exact HTTP/1.1\r\n");
    ASSERT_CLOSED_AFTER(r, r.t_sent, 200);
    ASSERT_EQ_INT(fx_stop(&f), 0);
}

/* ------------------------------------------------------------------------------------------ */
/* The connection limit: the longest-stalled connection makes room for a newcomer             */

static void test_eviction(void)
{
    fx_t f;
    fx_init(&f);
    f.opts.max_conns = 6;
    ASSERT_EQ_INT(fx_start(&f), 0);
    int fds[6];
    /* Six connections stalled in the middle of their headers, opened one after the other. */
    for (int i = 0; i < 6; i++) {
        fds[i] = raw_open(f.port, "GET /exact HTTP/1.1\r\nHo");
        ASSERT_TRUE(fds[i] >= 0);
        uint64_t end = uv_hrtime() + 10 * OM_NS_PER_S;
        while (om_http_server_busy_count(f.srv) != (size_t)i + 1 && uv_hrtime() < end) {
            uv_run(&f.loop, UV_RUN_ONCE);
        }
    }
    /* A newcomer is served: the oldest stalled connection goes. */
    om_testhttp_t h;
    xchg(&f, &h, GET("/exact"), 1);
    ASSERT_EQ_INT(h.resp[0].status, 200);
    ASSERT_EQ_UINT(om_http_server_evictions(f.srv), 1);
    ASSERT_TRUE(raw_closed(fds[0]));
    for (int i = 1; i < 6; i++) {
        ASSERT_TRUE(!raw_closed(fds[i]));
    }
    /* An idle keep-alive connection goes before requests in progress, however new. */
    int idle = raw_open(f.port, GET("/exact"));
    uint64_t end = uv_hrtime() + 10 * OM_NS_PER_S;
    while (f.completes < 2 && uv_hrtime() < end) {
        uv_run(&f.loop, UV_RUN_ONCE);
    }
    xchg(&f, &h, GET("/exact"), 1);
    ASSERT_EQ_INT(h.resp[0].status, 200);
    ASSERT_TRUE(raw_closed(idle) || om_http_server_evictions(f.srv) >= 2);
    for (int i = 2; i < 6; i++) {
        ASSERT_TRUE(!raw_closed(fds[i]));
    }
    for (int i = 0; i < 6; i++) {
        close(fds[i]);
    }
    close(idle);
    ASSERT_EQ_INT(fx_stop(&f), 0);
}

/* The budget is the process's: a newcomer on one server may take the place of a stalled
 * connection on another. */
static void test_budget_across_servers(void)
{
    om__http_budget_set(4);
    fx_t f, g;
    fx_init(&f);
    ASSERT_EQ_INT(fx_start(&f), 0);
    fx_init(&g);
    /* g runs on f's loop, so that one loop serves both. */
    uv_close((uv_handle_t *)&g.later, NULL);
    uv_run(&g.loop, UV_RUN_DEFAULT);
    uv_loop_close(&g.loop);
    g.opts.loop = &f.loop;
    om_err_t err = {0};
    ASSERT_EQ_INT(om_http_server_new(&g.opts, &g.srv, &err), 0);
    g.args[0] = (route_arg_t){.f = &g, .name = "/g"};
    ASSERT_EQ_INT(om_http_server_route(g.srv, "/g", OM_HTTP_GET, &H_NAME, &g.args[0], 0, &err), 0);
    ASSERT_EQ_INT(om_http_server_start(g.srv, &err), 0);
    int fds[4];
    for (int i = 0; i < 4; i++) {
        fds[i] = raw_open(f.port, "GET /exact HTTP/1.1\r\n");
        uint64_t end = uv_hrtime() + 10 * OM_NS_PER_S;
        while (om_http_server_busy_count(f.srv) != (size_t)i + 1 && uv_hrtime() < end) {
            uv_run(&f.loop, UV_RUN_ONCE);
        }
    }
    om_testhttp_t h;
    om_testhttp_init(&h, om_http_server_port(g.srv), GET("/g"), 1);
    om_testhttp_run_on(&h, &f.loop);
    uint64_t evicted = om_http_server_evictions(f.srv);
    bool first_closed = raw_closed(fds[0]);
    for (int i = 0; i < 4; i++) {
        close(fds[i]);
    }
    om__http_budget_set(0);
    om_http_server_shutdown(g.srv, on_done, &g);
    run_until_flag(&f, &g.done);
    om_http_server_free(g.srv);
    ASSERT_EQ_INT(fx_stop(&f), 0);
    ASSERT_EQ_INT(h.resp[0].status, 200);
    ASSERT_EQ_STR(h.resp[0].body, "route=/g path=/g");
    ASSERT_EQ_UINT(evicted, 1);
    ASSERT_TRUE(first_closed);
}

/* ------------------------------------------------------------------------------------------ */
/* TLS                                                                                        */

static void tls_cfg(fx_t *f)
{
    f->cfg.tls_present = true;
    f->cfg.tls.common.cert_file = C.server_cert;
    f->cfg.tls.common.key_file = C.server_key;
}

static void tls_xchg(fx_t *f, om_testhttp_t *h, SSL_CTX *ctx, const char *raw, int want)
{
    om_testhttp_init(h, f->port, raw, want);
    h->ctx = ctx;
    om_testhttp_run_on(h, &f->loop);
}

static void test_tls(void)
{
    fx_t f;
    fx_init(&f);
    tls_cfg(&f);
    ASSERT_EQ_INT(fx_start(&f), 0);
    SSL_CTX *ctx = om_testcerts_client_ctx(&C, NULL, NULL, 0);
    om_testhttp_t h;
    tls_xchg(&f, &h, ctx,
             GET("/exact") GET("/big") "GET /tree/x HTTP/1.1\r\nConnection: close\r\n\r\n", 0);
    ASSERT_TRUE(h.handshake_ok);
    ASSERT_EQ_STR(h.alpn, "http/1.1");
    ASSERT_EQ_INT(h.nresp, 3);
    ASSERT_EQ_STR(h.resp[0].body, "route=/exact path=/exact");
    ASSERT_EQ_UINT(h.resp[1].body_len, 1 << 20);
    ASSERT_EQ_STR(h.resp[2].body, "route=/tree/ path=/tree/x");
    ASSERT_TRUE(h.clean_close);
    /* Answers given later go through TLS too. */
    tls_xchg(&f, &h, ctx, GET("/async") GET("/exact"), 2);
    ASSERT_EQ_STR(h.resp[0].body, "later");
    ASSERT_EQ_STR(h.resp[1].body, "route=/exact path=/exact");
    /* A plain client on the TLS port: a plain 400, as Go's server answers. */
    xchg(&f, &h, GET("/exact"), 0);
    ASSERT_EQ_INT(h.resp[0].status, 400);
    /* A handshake that never comes is bounded like the headers. */
    ASSERT_EQ_INT(fx_stop(&f), 0);

    /* curve_preferences: the server's choice among what the client offers. */
    fx_init(&f);
    tls_cfg(&f);
    char *p384[] = {"P384"};
    f.cfg.tls.common.curve_preferences = (om_strlist_t){.n = 1, .items = p384};
    f.cfg.read_header_timeout = 150 * MS;
    ASSERT_EQ_INT(fx_start(&f), 0);
    tls_xchg(&f, &h, ctx, GET("/exact"), 1);
    ASSERT_EQ_INT(h.resp[0].status, 200);
    ASSERT_EQ_INT(h.group_nid, NID_secp384r1);
    rawc_t r;
    rawc_run(&f, &r, f.port, "");
    ASSERT_CLOSED_AFTER(r, r.t_sent, 150);
    ASSERT_EQ_INT(fx_stop(&f), 0);
    SSL_CTX_free(ctx);
}

/* client_ca_file alone trusts that CA only; include_system_ca_certs_pool adds the system's
 * (OpenSSL's default paths; here SSL_CERT_FILE names our CA as "the system's"). */
static void test_tls_client_cas(void)
{
    SSL_CTX *good = om_testcerts_client_ctx(&C, C.client_cert, C.client_key, 0);
    SSL_CTX *none = om_testcerts_client_ctx(&C, NULL, NULL, 0);
    setenv("SSL_CERT_FILE", C.ca, 1);
    om_testhttp_t h;
    fx_t f;
    fx_init(&f);
    tls_cfg(&f);
    f.cfg.tls.client_ca_file = C.other_ca;
    ASSERT_EQ_INT(fx_start(&f), 0);
    tls_xchg(&f, &h, good, GET("/exact"), 1);
    ASSERT_EQ_INT(h.nresp, 0);
    ASSERT_CONTAINS(h.err, "unknown ca");
    ASSERT_EQ_INT(fx_stop(&f), 0);

    fx_init(&f);
    tls_cfg(&f);
    f.cfg.tls.client_ca_file = C.other_ca;
    f.cfg.tls.common.include_system_ca_certs_pool = true;
    ASSERT_EQ_INT(fx_start(&f), 0);
    tls_xchg(&f, &h, good, GET("/exact"), 1);
    ASSERT_EQ_INT(h.nresp, 1);
    ASSERT_EQ_INT(h.resp[0].status, 200);
    tls_xchg(&f, &h, none, GET("/exact"), 1);
    ASSERT_EQ_INT(h.nresp, 0);
    ASSERT_CONTAINS(h.err, "certificate required");
    ASSERT_EQ_INT(fx_stop(&f), 0);
    unsetenv("SSL_CERT_FILE");
    SSL_CTX_free(good);
    SSL_CTX_free(none);

    /* A bad file fails start, naming the key and the file. */
    fx_init(&f);
    tls_cfg(&f);
    f.cfg.tls.client_ca_file = C.garbage;
    om_err_t err = {0};
    ASSERT_EQ_INT(om_http_server_new(&f.opts, &f.srv, &err), 0);
    ASSERT_EQ_INT(om_http_server_start(f.srv, &err), OM_ECONFIG);
    ASSERT_CONTAINS(err.msg, "tls::client_ca_file: no valid certificate in");
    ASSERT_EQ_INT(fx_stop(&f), 0);
}

/* ------------------------------------------------------------------------------------------ */
/* Headers the server adds; shutdown                                                          */

static void test_response_headers_and_date(void)
{
    fx_t f;
    fx_init(&f);
    char *keys[] = {"X-Frame-Options"}, *values[] = {"DENY"};
    f.cfg.response_headers = (om_strmap_t){.n = 1, .keys = keys, .values = values};
    f.opts.date_header = true;
    ASSERT_EQ_INT(fx_start(&f), 0);
    om_testhttp_t h;
    char hv[64];
    xchg(&f, &h, GET("/exact") GET("/nothing"), 2);
    for (int i = 0; i < 2; i++) {
        ASSERT_EQ_STR(om_testhttp_header(&h.resp[i], "x-frame-options", hv, sizeof hv), "DENY");
        ASSERT_CONTAINS(om_testhttp_header(&h.resp[i], "date", hv, sizeof hv), " GMT");
    }
    /* Not on answers to malformed HTTP, as Go's server. */
    xchg(&f, &h, "BAD\r\n\r\n", 0);
    ASSERT_EQ_INT(h.resp[0].status, 400);
    ASSERT_TRUE(om_testhttp_header(&h.resp[0], "x-frame-options", hv, sizeof hv) == NULL);
    ASSERT_EQ_INT(fx_stop(&f), 0);
}

static void test_shutdown(void)
{
    /* With a grace period, a request being received may finish; its answer says close. */
    fx_t f;
    fx_init(&f);
    f.opts.shutdown_grace_ms = 5000;
    ASSERT_EQ_INT(fx_start(&f), 0);
    int idle = raw_open(f.port, NULL);
    int busy = raw_open(f.port, "POST /post HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nab");
    uint64_t end = uv_hrtime() + 10 * OM_NS_PER_S;
    while ((om_http_server_conn_count(f.srv) < 2 || om_http_server_busy_count(f.srv) < 1) &&
           uv_hrtime() < end) {
        uv_run(&f.loop, UV_RUN_ONCE);
    }
    om_http_server_shutdown(f.srv, on_done, &f);
    ASSERT_EQ_INT(f.done, 0);
    (void)send(busy, "cd", 2, MSG_NOSIGNAL);
    run_until_flag(&f, &f.done);
    ASSERT_EQ_INT(f.done, 1);
    char buf[512] = "";
    ssize_t k = recv(busy, buf, sizeof buf - 1, 0);
    ASSERT_TRUE(k > 0);
    ASSERT_CONTAINS(buf, "len=4:abcd");
    ASSERT_CONTAINS(buf, "Connection: close");
    ASSERT_TRUE(raw_closed(idle));
    close(idle);
    close(busy);
    ASSERT_EQ_INT(fx_stop(&f), 0);

    /* Never started: done at once; an address in use fails start. */
    fx_init(&f);
    ASSERT_EQ_INT(fx_start(&f), 0);
    fx_t g;
    fx_init(&g);
    char ep[32];
    snprintf(ep, sizeof ep, "127.0.0.1:%d", f.port);
    g.cfg.endpoint = ep;
    om_err_t err = {0};
    ASSERT_EQ_INT(om_http_server_new(&g.opts, &g.srv, &err), 0);
    ASSERT_EQ_INT(om_http_server_start(g.srv, &err), OM_EIO);
    ASSERT_CONTAINS(err.msg, "failed to bind to address 127.0.0.1:");
    ASSERT_CONTAINS(err.msg, "address already in use");
    ASSERT_EQ_INT(fx_stop(&g), 0);
    ASSERT_EQ_INT(fx_stop(&f), 0);
}

/* ------------------------------------------------------------------------------------------ */
/* Without a socket                                                                           */

static void test_session_without_socket(void)
{
    fx_t f;
    fx_init(&f);
    om_err_t err = {0};
    f.opts.loop = NULL;
    ASSERT_EQ_INT(om_http_server_new(&f.opts, &f.srv, &err), 0);
    ASSERT_EQ_INT(add(&f, 0, "/exact", OM_HTTP_GET, &H_NAME, 0), 0);
    ASSERT_EQ_INT(add(&f, 1, "/owe", OM_HTTP_GET, &H_OWE, 0), 0);
    om_http_session_t *s = om_http_session_new(f.srv, "test");
    ASSERT_TRUE(s != NULL);
    const char in[] = GET("/owe") GET("/exact") "GET /exact HTTP/1.1\r\nConnection: close\r\n\r\n";
    /* Byte by byte: the parser keeps its place across any split. */
    for (size_t i = 0; i < sizeof in - 1; i++) {
        om_http_session_feed(s, in + i, 1);
    }
    size_t len = 0;
    char *out = om_http_session_take_output(s, &len);
    ASSERT_TRUE(out == NULL); /* the first answer is owed: nothing may overtake it */
    ASSERT_TRUE(f.owed != NULL);
    respond_text(f.owed, 202, "owed");
    om_http_session_resume(s);
    out = om_http_session_take_output(s, &len);
    ASSERT_TRUE(out != NULL);
    const char *a = strstr(out, "HTTP/1.1 202");
    const char *b = strstr(out, "route=/exact");
    ASSERT_TRUE(a != NULL && b != NULL && a < b);
    ASSERT_CONTAINS(out, "Connection: close");
    ASSERT_TRUE(om_http_session_done(s));
    om_free(out);
    om_http_session_free(s);
    om_http_server_free(f.srv);
    f.srv = NULL;
    ASSERT_EQ_INT(fx_stop(&f), 0);
}

static void test_query_get(void)
{
    char v[16];
    ASSERT_EQ_INT(om_http_query_get("a=1&status=FAILED&limit=20", "status", v, sizeof v), 6);
    ASSERT_EQ_STR(v, "FAILED");
    ASSERT_EQ_INT(om_http_query_get("x=a%2Bb+c", "x", v, sizeof v), 5);
    ASSERT_EQ_STR(v, "a+b c");
    ASSERT_EQ_INT(om_http_query_get("fl%61g&y=", "flag", v, sizeof v), 0);
    ASSERT_EQ_INT(om_http_query_get("y=", "y", v, sizeof v), 0);
    ASSERT_EQ_INT(om_http_query_get("a=1", "b", v, sizeof v), -1);
    ASSERT_EQ_INT(om_http_query_get("", "b", v, sizeof v), -1);
    ASSERT_EQ_INT(om_http_query_get("a=%zz", "a", v, sizeof v), OM_EINVAL);
    ASSERT_EQ_INT(om_http_query_get("a=0123456789abcdef", "a", v, sizeof v), OM_ETOOBIG);
}

/* ------------------------------------------------------------------------------------------ */
/* The config table                                                                           */

typedef struct tcfg {
    om_http_server_cfg_t http;
    char *own;
} tcfg_t;

static const om_field_t tfields[] = {
    OM_HTTP_SERVER_FIELDS(tcfg_t, http, "localhost:9999"),
    {.key = "own", .type = OM_F_STRING, .offset = offsetof(tcfg_t, own)},
    {.key = NULL},
};

/* Apply and validate yaml as the core does; the first problem goes to msg (position first). */
static int load(const char *yaml, tcfg_t *cfg, char *msg, size_t n)
{
    om_config_t *conf = NULL;
    om_diags_t d = {0};
    memset(cfg, 0, sizeof *cfg);
    msg[0] = '\0';
    int rc = om_config_load_string("t.yaml", yaml, strlen(yaml), &conf, &d);
    if (rc == 0 && om_fields_apply(tfields, cfg, om_node_get(conf->root, "x"), "x", &d) > 0) {
        rc = OM_ECONFIG;
    }
    om_err_t err = {0};
    if (rc == 0 && om_http_server_cfg_validate(&cfg->http, "", &err) != 0) {
        snprintf(msg, n, "%s: %s", err.at, err.msg);
        rc = OM_ECONFIG;
    } else if (d.n > 0) {
        snprintf(msg, n, "%s", d.msgs[0]);
    }
    om_diags_free(&d);
    om_config_free(conf);
    return rc;
}

static void test_config(void)
{
    om_log_set_level(OM_LOG_ERROR); /* ignored keys warn */
    tcfg_t c;
    char msg[512];
    ASSERT_EQ_INT(load("x:\n", &c, msg, sizeof msg), 0);
    ASSERT_EQ_STR(c.http.endpoint, "localhost:9999");
    ASSERT_EQ_UINT(c.http.max_request_body_size, 20u << 20);
    ASSERT_EQ_INT(c.http.read_timeout, 0);
    ASSERT_EQ_INT(c.http.read_header_timeout, 60 * OM_NS_PER_S);
    ASSERT_EQ_INT(c.http.write_timeout, 30 * OM_NS_PER_S);
    ASSERT_EQ_INT(c.http.idle_timeout, 60 * OM_NS_PER_S);
    ASSERT_TRUE(c.http.keep_alives_enabled && !c.http.tls_present && !c.http.keepalive_present);
    om_fields_free(tfields, &c);
    ASSERT_EQ_INT(load("x:\n  endpoint: 0.0.0.0:1\n  read_timeout: 2s\n  keepalive:\n"
                       "    idle_timeout: 5s\n  cors: {allowed_origins: ['*']}\n"
                       "  include_metadata: true\n  compression_algorithms: [gzip, '']\n",
                       &c, msg, sizeof msg),
                  0);
    ASSERT_EQ_INT(c.http.read_timeout, 2 * OM_NS_PER_S);
    ASSERT_TRUE(c.http.keepalive_present && c.http.keepalive.enabled);
    ASSERT_EQ_INT(c.http.keepalive.idle_timeout, 5 * OM_NS_PER_S);
    ASSERT_TRUE(om_http_server_cfg_accepts(&c.http, "gzip"));
    ASSERT_TRUE(om_http_server_cfg_accepts(&c.http, "identity"));
    ASSERT_TRUE(!om_http_server_cfg_accepts(&c.http, "zstd"));
    om_fields_free(tfields, &c);
    static const struct {
        const char *yaml, *want;
    } bad[] = {
        {"x:\n  read_timeout: 5q\n", "t.yaml:2:17: x::read_timeout: unknown unit"},
        {"x:\n  idle_timeout: -1s\n", "t.yaml:2:17: x::idle_timeout:"},
        {"x:\n  auth:\n    request_params: [a]\n",
         "t.yaml:3:5: x::auth: missing required key \"authenticator\""},
        {"x:\n  middlewares: [{id: m}]\n", "t.yaml:2:16: x::middlewares: not supported"},
        {"x:\n  tls:\n    cert_file: a\n    key_file: b\n    reload_interval: 1m\n",
         "t.yaml:5:22: x::tls::reload_interval: not supported by otelmon"},
        {"x:\n  tls:\n    cert_file: a\n", "tls: TLS configuration must include both"},
        {"x:\n  tls:\n    cert_file: a\n    key_file: b\n    max_version: '1.1'\n"
         "    min_version: '1.3'\n",
         "tls::max_version: invalid TLS configuration: min_version cannot be greater than "
         "max_version"},
        {"x:\n  keep_alives_enabled: false\n  keepalive: {enabled: true}\n",
         "keepalive: cannot use deprecated keepalive fields"},
        {"x:\n  response_headers: {\"X-A\": \"a\\r\\nSet-Cookie: x\"}\n",
         "response_headers: invalid header \"X-A\""},
        {"x:\n  compression_algorithms: [brotli]\n",
         "compression_algorithms: unsupported compression algorithm \"brotli\""},
        {"x:\n  bogus: 1\n", "bogus"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = load(bad[i].yaml, &c, msg, sizeof msg);
        om_fields_free(tfields, &c);
        if (rc == 0 || strstr(msg, bad[i].want) == NULL) {
            fprintf(stderr, "  case %zu: \"%s\"\n", i, msg);
        }
        ASSERT_EQ_INT(rc, OM_ECONFIG);
        ASSERT_CONTAINS(msg, bad[i].want);
    }
    om_log_set_level(OM_LOG_WARN);
}

int main(void)
{
    om_log_set_level(OM_LOG_WARN);
    if (!om_testcerts_make(&C)) {
        fprintf(stderr, "cannot make test certificates with openssl\n");
        om_testcerts_remove(&C);
        return 1;
    }
    OM_RUN(test_routing);
    OM_RUN(test_route_errors);
    OM_RUN(test_keepalive_and_pipelining);
    OM_RUN(test_bodies);
    OM_RUN(test_limits);
    OM_RUN(test_async_answers);
    OM_RUN(test_timeouts);
    OM_RUN(test_eviction);
    OM_RUN(test_budget_across_servers);
    OM_RUN(test_tls);
    OM_RUN(test_tls_client_cas);
    OM_RUN(test_response_headers_and_date);
    OM_RUN(test_shutdown);
    OM_RUN(test_session_without_socket);
    OM_RUN(test_query_get);
    OM_RUN(test_config);
    OM_RUN(test_auth);
    OM_RUN(test_auth_unresolved);
    om_testcerts_remove(&C);
    return om_test_summary();
}
