/* http_client_test.c: the core's HTTP client (om_http_*) against a real HTTP/1.1 server on
 * loopback (test/lib/om_test_httpd: http_parser, and OpenSSL for TLS), on the same loop.
 *
 * Covered: GET, POST (borrowed, taken and copied bodies), PUT, DELETE, HEAD; request headers
 * (the configured ones win, User-Agent, no Expect, no form Content-Type) and response
 * headers by name; status codes; the body kept up to its cap and the transfer cut past 4 MiB;
 * timeouts and refused connections (retryable), requests that cannot work (permanent), bad
 * requests refused at once; many requests at once over few connections; redirects keeping
 * the POST; proxies from the environment with loopback never proxied; keep-alive off; TLS
 * with a test CA, server_name_override, skip-verify, mutual TLS, versions, cipher suites and
 * curves enforced; cancel; close with requests in flight (from outside and from a callback);
 * the settings' rules; Retry-After. No callback ever runs inside an om_http_* call, and every
 * test ends with uv_loop_close() == 0. */
#include <stdlib.h>

#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "config.h"
#include "om.h"
#include "om_test.h"
#include "om_test_httpd.h"
#include "om_testauth.h"
#include "om_testpem.h"

#define WAIT_MS 10000

/* The settings as a component has them: the shared table at the top level. */
typedef struct tcfg {
    om_http_client_cfg_t http;
} tcfg_t;

static const om_field_t tfields[] = {
    OM_HTTP_CLIENT_FIELDS(tcfg_t, http, "0"),
    {.key = NULL},
};

/* What one callback saw. */
typedef struct got {
    int calls;
    int error;
    bool retryable, timed_out;
    int status;
    char message[256];
    char ctype[64];
    uint8_t *body;
    size_t body_len;
    uint64_t body_total;
    bool body_cut;
    char url[256];
    const char *hdr_names[4];
    char hdr[4][128]; /* "(none)" when absent */
    uint64_t at_ms;
} got_t;

typedef struct fx {
    uv_loop_t loop;
    om_host_t host;
    uv_timer_t tick; /* keeps UV_RUN_ONCE returning so deadlines are checked */
    om_test_httpd_t srv;
    tcfg_t cfg;
    om_config_t *yaml;
    om_http_client_t *client;
    int closed;
    bool in_api;       /* inside an om_http_* call: no callback may run now */
    int sync_callback; /* callbacks that ran inside an om_http_* call */
    uint64_t t0;
} fx_t;

static fx_t *current;

#define RUN_UNTIL(fx, cond, max_ms) OM_TEST_RUN_UNTIL(&(fx)->loop, cond, max_ms)

static void tick_cb(uv_timer_t *t)
{
    (void)t;
}

static void fx_init(fx_t *fx)
{
    memset(fx, 0, sizeof *fx);
    uv_loop_init(&fx->loop);
    om_test_host_init(&fx->host, &fx->loop);
    uv_timer_init(&fx->loop, &fx->tick);
    uv_timer_start(&fx->tick, tick_cb, 5, 5);
    current = fx;
}

/* Loads the settings from YAML (printf-style) and validates them. */
static int fx_config(fx_t *fx, om_err_t *err, const char *fmt, ...) OM_PRINTF(3, 4);

static int fx_config(fx_t *fx, om_err_t *err, const char *fmt, ...)
{
    char text[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    om_diags_t d = {0};
    om_fields_free(tfields, &fx->cfg);
    om_config_free(fx->yaml);
    fx->yaml = NULL;
    memset(&fx->cfg, 0, sizeof fx->cfg);
    int rc = om_config_load_string("t.yaml", text, strlen(text), &fx->yaml, &d);
    if (rc == 0 &&
        om_fields_apply(tfields, &fx->cfg, om_node_get(fx->yaml->root, "c"), "c", &d) != 0) {
        rc = OM_ECONFIG;
    }
    if (d.n > 0) {
        om_err_set(err, OM_ECONFIG, "%s", d.msgs[0]);
    }
    om_diags_free(&d);
    if (rc == 0) {
        om_err_t verr = {0};
        rc = om_http_client_cfg_validate(&fx->cfg.http, &verr);
        if (rc != 0) {
            om_err_set(err, rc, "%s%s%s", verr.at, verr.at[0] ? ": " : "", verr.msg);
        }
    }
    return rc;
}

/* A client from `c: {...}`; prints the error when it fails. */
static int fx_client(fx_t *fx, const om_http_client_opts_t *opts, const char *fmt, ...)
    OM_PRINTF(3, 4);

static int fx_client(fx_t *fx, const om_http_client_opts_t *opts, const char *fmt, ...)
{
    char text[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    om_err_t err = {0};
    int rc = fx_config(fx, &err, "%s", text);
    rc = rc ? rc : om_http_client_new(&fx->host, &fx->cfg.http, opts, &fx->client, &err);
    if (rc != 0) {
        fprintf(stderr, "client: %s\n", err.msg);
    }
    return rc;
}

static void closed_cb(void *arg)
{
    (*(int *)arg)++;
}

static void fx_close_client(fx_t *fx)
{
    if (fx->client != NULL) {
        int before = fx->closed;
        om_http_client_close(fx->client, closed_cb, &fx->closed);
        RUN_UNTIL(fx, fx->closed > before, WAIT_MS);
        fx->client = NULL;
    }
}

static int fx_finish(fx_t *fx)
{
    fx_close_client(fx);
    om_fields_free(tfields, &fx->cfg);
    om_config_free(fx->yaml);
    om_test_httpd_stop(&fx->srv);
    uv_close((uv_handle_t *)&fx->tick, NULL);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    om_test_host_close(&fx->host);
    current = NULL;
    if (fx->sync_callback != 0) {
        fprintf(stderr, "%d callbacks ran inside an om_http_* call\n", fx->sync_callback);
        return -1;
    }
    return uv_loop_close(&fx->loop);
}

static void got_free(got_t *g)
{
    free(g->body);
    g->body = NULL;
}

static void on_done(void *arg, const om_http_response_t *r)
{
    got_t *g = arg;
    if (current->in_api) {
        current->sync_callback++;
    }
    g->calls++;
    g->error = r->error;
    g->retryable = r->retryable;
    g->timed_out = r->timed_out;
    g->status = r->status;
    snprintf(g->message, sizeof g->message, "%s", r->message);
    snprintf(g->ctype, sizeof g->ctype, "%s", r->content_type ? r->content_type : "(none)");
    snprintf(g->url, sizeof g->url, "%s", r->url);
    free(g->body);
    g->body = malloc(r->body_len + 1);
    if (r->body_len > 0) {
        memcpy(g->body, r->body, r->body_len);
    }
    g->body_len = r->body_len;
    g->body_total = r->body_total;
    g->body_cut = r->body_cut;
    for (int i = 0; i < 4 && g->hdr_names[i] != NULL; i++) {
        const char *v = om_http_response_header(r, g->hdr_names[i]);
        snprintf(g->hdr[i], sizeof g->hdr[i], "%s", v != NULL ? v : "(none)");
    }
    g->at_ms = uv_now(&current->loop);
}

static int send_rq(fx_t *fx, const om_http_request_t *rq, got_t *g, om_http_call_t **call)
{
    om_err_t err = {0};
    fx->in_api = true;
    int rc = om_http_send(fx->client, rq, on_done, g, call, &err);
    fx->in_api = false;
    if (rc != 0 && g != NULL) {
        snprintf(g->message, sizeof g->message, "%s", err.msg);
    }
    return rc;
}

static char *url_of(const fx_t *fx, const char *scheme, const char *host, const char *path)
{
    static char buf[4][256];
    static int next;
    char *p = buf[next++ % 4];
    snprintf(p, sizeof buf[0], "%s://%s:%d%s", scheme, host, fx->srv.port, path);
    return p;
}

/* A loopback port nobody listens on: bound, noted, closed. */
static int dead_port(uv_loop_t *loop)
{
    uv_tcp_t probe;
    uv_tcp_init(loop, &probe);
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    uv_tcp_bind(&probe, (const struct sockaddr *)&a, 0);
    struct sockaddr_storage ss;
    int len = sizeof ss;
    uv_tcp_getsockname(&probe, (struct sockaddr *)&ss, &len);
    uv_close((uv_handle_t *)&probe, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/* ------------------------------------------------------------------------------------------ */
/* Requests and responses                                                                     */

static void test_get_and_post(void)
{
    fx_t fx;
    fx_init(&fx);
    ASSERT_EQ_INT(om_test_httpd_start(&fx.srv, &fx.loop, 0, NULL, NULL), 0);
    static const char hello[] = "hello";
    fx.srv.script[0] =
        (om_test_httpd_reply_t){.status = 200, .ctype = "text/plain", .body = hello, .body_len = 5};
    fx.srv.n_script = 1;
    ASSERT_EQ_INT(fx_client(&fx, NULL, "c: {}"), 0);
    got_t g = {0};
    om_http_request_t get = {.url = url_of(&fx, "http", "127.0.0.1", "/a?b=c")};
    ASSERT_EQ_INT(send_rq(&fx, &get, &g, NULL), 0);
    ASSERT_EQ_UINT(om_http_client_pending(fx.client), 1);
    RUN_UNTIL(&fx, g.calls > 0, WAIT_MS);
    ASSERT_EQ_INT(g.calls, 1);
    ASSERT_EQ_INT(g.error, 0);
    ASSERT_EQ_INT(g.status, 200);
    ASSERT_EQ_STR(g.ctype, "text/plain");
    ASSERT_EQ_UINT(g.body_len, 5);
    ASSERT_TRUE(memcmp(g.body, "hello", 5) == 0);
    ASSERT_EQ_STR(g.url, get.url);
    ASSERT_EQ_UINT(om_http_client_pending(fx.client), 0);
    ASSERT_EQ_STR(fx.srv.reqs[0].method, "GET");
    ASSERT_EQ_STR(fx.srv.reqs[0].url, "/a?b=c");
    ASSERT_EQ_UINT(fx.srv.reqs[0].body_len, 0);
    /* POST, each way of handing over the body; the same bytes arrive. */
    const om_http_body_mode_t modes[] = {OM_HTTP_BODY_BORROW, OM_HTTP_BODY_TAKE, OM_HTTP_BODY_COPY};
    char borrowed[] = "borrowed body";
    for (size_t i = 0; i < 3; i++) {
        char *body = modes[i] == OM_HTTP_BODY_TAKE ? om_strdup("taken body") : borrowed;
        size_t len = strlen(body);
        om_http_header_t h[] = {{"Content-Type", "application/x-protobuf"}};
        om_http_request_t post = {.url = url_of(&fx, "http", "127.0.0.1", "/p"),
                                  .headers = h,
                                  .n_headers = 1,
                                  .body = body,
                                  .body_len = len,
                                  .body_mode = modes[i]};
        ASSERT_EQ_INT(send_rq(&fx, &post, &g, NULL), 0);
        if (modes[i] == OM_HTTP_BODY_COPY) {
            memset(borrowed, 'x', len); /* the client has its own copy */
        }
        RUN_UNTIL(&fx, g.calls == (int)i + 2, WAIT_MS);
        ASSERT_EQ_INT(g.status, 200);
        const om_test_httpd_rec_t *r = &fx.srv.reqs[i + 1];
        ASSERT_EQ_STR(r->method, "POST");
        ASSERT_EQ_UINT(r->body_len, len);
        ASSERT_TRUE(memcmp(r->body, modes[i] == OM_HTTP_BODY_TAKE ? "taken body" : "borrowed body",
                           len) == 0);
        ASSERT_EQ_STR(om_test_httpd_header(r, "Content-Type"), "application/x-protobuf");
    }
    ASSERT_EQ_INT(fx.srv.accepted, 1); /* one connection, reused */
    got_free(&g);
    ASSERT_EQ_INT(fx_finish(&fx), 0);
}

/* With auth, every request carries the authenticator's headers as they are at that moment
 * (a token that changes shows in the next request), replacing configured and request headers
 * of the same name; the authenticator must offer the client side. */
static void test_auth_headers(void)
{
    fx_t fx;
    fx_init(&fx);
    ASSERT_EQ_INT(om_test_httpd_start(&fx.srv, &fx.loop, 0, NULL, NULL), 0);
    om_testauth_t ta = {.secret = "one", .extra_name = "X-Tenant", .extra_value = "t1"};
    om_testauth_register(&fx.host, "testauth", &ta);
    ASSERT_EQ_INT(fx_client(&fx, NULL,
                            "c: {auth: {authenticator: testauth}, headers: {Authorization: cfg, "
                            "X-Other: o}}"),
                  0);
    got_t g = {0};
    om_http_header_t h[] = {{"authorization", "request"}, {"X-Req", "r"}};
    om_http_request_t rq = {
        .url = url_of(&fx, "http", "127.0.0.1", "/a"), .headers = h, .n_headers = 2};
    ASSERT_EQ_INT(send_rq(&fx, &rq, &g, NULL), 0);
    RUN_UNTIL(&fx, g.calls == 1, WAIT_MS);
    snprintf(ta.secret, sizeof ta.secret, "two");
    ASSERT_EQ_INT(send_rq(&fx, &rq, &g, NULL), 0);
    RUN_UNTIL(&fx, g.calls == 2, WAIT_MS);
    ASSERT_EQ_UINT(fx.srv.n_reqs, 2);
    for (size_t i = 0; i < 2; i++) {
        const om_test_httpd_rec_t *r = &fx.srv.reqs[i];
        ASSERT_EQ_STR(om_test_httpd_header(r, "Authorization"), i == 0 ? "Test one" : "Test two");
        ASSERT_EQ_STR(om_test_httpd_header(r, "X-Tenant"), "t1");
        ASSERT_EQ_STR(om_test_httpd_header(r, "X-Other"), "o");
        ASSERT_EQ_STR(om_test_httpd_header(r, "X-Req"), "r");
        size_t n_auth = 0;
        for (size_t k = 0; k < r->n_hdrs; k++) {
            n_auth += strcasecmp(r->names[k], "authorization") == 0;
        }
        ASSERT_EQ_UINT(n_auth, 1);
    }
    ASSERT_EQ_INT(ta.header_calls, 2);
    got_free(&g);
    fx_close_client(&fx);
    /* A server-only authenticator, or none registered: the client is not made. */
    om_testauth_t server_only = {.secret = "x", .sides = OM_AUTH_SERVER};
    om_testauth_register(&fx.host, "server", &server_only);
    ASSERT_TRUE(fx_client(&fx, NULL, "c: {auth: {authenticator: server}}") != 0);
    ASSERT_TRUE(fx_client(&fx, NULL, "c: {auth: {authenticator: nobody}}") != 0);
    ASSERT_TRUE(fx.client == NULL);
    ASSERT_EQ_INT(fx_finish(&fx), 0);
}

static void test_methods(void)
{
    fx_t fx;
    fx_init(&fx);
    ASSERT_EQ_INT(om_test_httpd_start(&fx.srv, &fx.loop, 0, NULL, NULL), 0);
    ASSERT_EQ_INT(fx_client(&fx, NULL, "c: {}"), 0);
    const struct {
        const char *method, *body;
    } cases[] = {{"PUT", "x=1"}, {"PUT", ""}, {"DELETE", ""}, {"PATCH", "y"}, {"HEAD", ""}};
    got_t g = {0};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        om_http_request_t rq = {.method = cases[i].method,
                                .url = url_of(&fx, "http", "127.0.0.1", "/m"),
                                .body = cases[i].body,
                                .body_len = strlen(cases[i].body)};
        ASSERT_EQ_INT(send_rq(&fx, &rq, &g, NULL), 0);
        RUN_UNTIL(&fx, g.calls == (int)i + 1, WAIT_MS);
        ASSERT_EQ_INT(g.error, 0);
        ASSERT_EQ_INT(g.status, 200);
        const om_test_httpd_rec_t *r = &fx.srv.reqs[i];
        ASSERT_EQ_STR(r->method, cases[i].method);
        ASSERT_EQ_UINT(r->body_len, strlen(cases[i].body));
        /* No form Content-Type invented for a body nobody typed. */
        ASSERT_TRUE(om_test_httpd_header(r, "Content-Type") == NULL);
        if (strcmp(cases[i].method, "PUT") == 0) {
            ASSERT_TRUE(om_test_httpd_header(r, "Content-Length") != NULL);
        }
    }
    got_free(&g);
    ASSERT_EQ_INT(fx_finish(&fx), 0);
}

static void test_headers_both_ways(void)
{
    fx_t fx;
    fx_init(&fx);
    ASSERT_EQ_INT(om_test_httpd_start(&fx.srv, &fx.loop, 0, NULL, NULL), 0);
    fx.srv.script[0] = (om_test_httpd_reply_t){
        .status = 503, .headers = "X-A: 1\r\nx-multi: a\r\nX-Multi: b\r\nRetry-After: 7\r\n"};
    fx.srv.script[1] = (om_test_httpd_reply_t){.status = 200};
    fx.srv.n_script = 2;
    ASSERT_EQ_INT(
        fx_client(&fx, NULL, "c: {headers: {X-Tenant: t1, x-override: theirs, X-Empty: ''}}"), 0);
    got_t g = {.hdr_names = {"x-a", "X-MULTI", "Retry-After", "X-Missing"}};
    om_http_header_t h[] = {
        {"X-Mine", "mine"}, {"X-Override", "ours"}, {"Accept", "application/json"}};
    om_http_request_t rq = {.url = url_of(&fx, "http", "127.0.0.1", "/h"),
                            .headers = h,
                            .n_headers = 3,
                            .body = "b",
                            .body_len = 1};
    ASSERT_EQ_INT(send_rq(&fx, &rq, &g, NULL), 0);
    RUN_UNTIL(&fx, g.calls == 1, WAIT_MS);
    ASSERT_EQ_INT(g.error, 0);
    ASSERT_EQ_INT(g.status, 503);
    ASSERT_EQ_STR(g.hdr[0], "1");
    ASSERT_EQ_STR(g.hdr[1], "b"); /* the last of that name */
    ASSERT_EQ_STR(g.hdr[2], "7");
    ASSERT_EQ_STR(g.hdr[3], "(none)");
    ASSERT_EQ_INT(om_http_retry_after_ms(g.hdr[2], 0), 7000);
    const om_test_httpd_rec_t *r = &fx.srv.reqs[0];
    ASSERT_EQ_STR(om_test_httpd_header(r, "X-Mine"), "mine");
    ASSERT_EQ_STR(om_test_httpd_header(r, "X-Override"), "theirs"); /* configured ones win */
    ASSERT_EQ_STR(om_test_httpd_header(r, "X-Tenant"), "t1");
    ASSERT_EQ_STR(om_test_httpd_header(r, "X-Empty"), "");
    ASSERT_EQ_STR(om_test_httpd_header(r, "Accept"), "application/json");
    ASSERT_EQ_STR(om_test_httpd_header(r, "User-Agent"), "OtelMon/" OM_VERSION);
    ASSERT_TRUE(om_test_httpd_header(r, "Expect") == NULL);
    size_t n_override = 0;
    for (size_t i = 0; i < r->n_hdrs; i++) {
        n_override += strcasecmp(r->names[i], "X-Override") == 0;
    }
    ASSERT_EQ_UINT(n_override, 1);
    fx_close_client(&fx);
    /* A component's own User-Agent; a request's User-Agent wins over it. */
    om_http_client_opts_t opts = {.user_agent = "Comp/1"};
    ASSERT_EQ_INT(fx_client(&fx, &opts, "c: {}"), 0);
    om_http_request_t plain = {.url = url_of(&fx, "http", "127.0.0.1", "/ua")};
    ASSERT_EQ_INT(send_rq(&fx, &plain, &g, NULL), 0);
    om_http_header_t ua[] = {{"User-Agent", "Req/2"}};
    om_http_request_t own = {.url = plain.url, .headers = ua, .n_headers = 1};
    ASSERT_EQ_INT(send_rq(&fx, &own, &g, NULL), 0);
    RUN_UNTIL(&fx, g.calls == 3, WAIT_MS);
    ASSERT_EQ_STR(om_test_httpd_header(&fx.srv.reqs[1], "User-Agent"), "Comp/1");
    ASSERT_EQ_STR(om_test_httpd_header(&fx.srv.reqs[2], "User-Agent"), "Req/2");
    got_free(&g);
    ASSERT_EQ_INT(fx_finish(&fx), 0);
}

static void test_status_codes(void)
{
    fx_t fx;
    fx_init(&fx);
    ASSERT_EQ_INT(om_test_httpd_start(&fx.srv, &fx.loop, 0, NULL, NULL), 0);
    const int codes[] = {204, 400, 404, 429, 500, 503};
    static const char why[] = "{\"message\":\"no\"}";
    for (size_t i = 0; i < 6; i++) {
        fx.srv.script[i] = (om_test_httpd_reply_t){.status = codes[i],
                                                   .ctype = "application/json",
                                                   .body = codes[i] == 204 ? NULL : why,
                                                   .body_len = codes[i] == 204 ? 0 : 16};
    }
    fx.srv.n_script = 6;
    ASSERT_EQ_INT(fx_client(&fx, NULL, "c: {}"), 0);
    got_t g = {0};
    for (size_t i = 0; i < 6; i++) {
        om_http_request_t rq = {.url = url_of(&fx, "http", "127.0.0.1", "/s")};
        ASSERT_EQ_INT(send_rq(&fx, &rq, &g, NULL), 0);
        RUN_UNTIL(&fx, g.calls == (int)i + 1, WAIT_MS);
        /* A response is a response: the status is the component's to judge. */
        ASSERT_EQ_INT(g.error, 0);
        ASSERT_TRUE(!g.retryable);
        ASSERT_EQ_INT(g.status, codes[i]);
        ASSERT_EQ_UINT(g.body_len, codes[i] == 204 ? 0 : 16);
    }
    got_free(&g);
    ASSERT_EQ_INT(fx_finish(&fx), 0);
}

static void test_body_cap_and_cut(void)
{
    fx_t fx;
    fx_init(&fx);
    ASSERT_EQ_INT(om_test_httpd_start(&fx.srv, &fx.loop, 0, NULL, NULL), 0);
    size_t big = 200 * 1000, huge = OM_HTTP_RESP_ABORT + 100000;
    uint8_t *body = malloc(huge);
    for (size_t i = 0; i < huge; i++) {
        body[i] = (uint8_t)(i * 7);
    }
    fx.srv.script[0] = (om_test_httpd_reply_t){.status = 200, .body = body, .body_len = big};
    fx.srv.script[1] = (om_test_httpd_reply_t){.status = 200, .body = body, .body_len = big};
    fx.srv.script[2] = (om_test_httpd_reply_t){.status = 200, .body = body, .body_len = huge};
    fx.srv.n_script = 3;
    ASSERT_EQ_INT(fx_client(&fx, NULL, "c: {}"), 0);
    got_t g = {0};
    /* Capped by the request: the first 1000 bytes, all counted. */
    om_http_request_t rq = {.url = url_of(&fx, "http", "127.0.0.1", "/big"),
                            .max_response_body = 1000};
    ASSERT_EQ_INT(send_rq(&fx, &rq, &g, NULL), 0);
    RUN_UNTIL(&fx, g.calls == 1, WAIT_MS);
    ASSERT_EQ_INT(g.status, 200);
    ASSERT_EQ_UINT(g.body_len, 1000);
    ASSERT_EQ_UINT(g.body_total, big);
    ASSERT_TRUE(!g.body_cut);
    ASSERT_TRUE(memcmp(g.body, body, 1000) == 0);
    /* The default cap. */
    rq.max_response_body = 0;
    ASSERT_EQ_INT(send_rq(&fx, &rq, &g, NULL), 0);
    RUN_UNTIL(&fx, g.calls == 2, WAIT_MS);
    ASSERT_EQ_UINT(g.body_len, OM_HTTP_RESP_KEEP);
    ASSERT_TRUE(memcmp(g.body, body, OM_HTTP_RESP_KEEP) == 0);
    ASSERT_EQ_INT(fx.srv.accepted, 1); /* the rest was read: the connection stayed usable */
    /* Past OM_HTTP_RESP_ABORT the transfer is cut; the status still counts. */
    ASSERT_EQ_INT(send_rq(&fx, &rq, &g, NULL), 0);
    RUN_UNTIL(&fx, g.calls == 3, WAIT_MS);
    ASSERT_EQ_INT(g.error, 0);
    ASSERT_EQ_INT(g.status, 200);
    ASSERT_TRUE(g.body_cut);
    ASSERT_TRUE(g.body_total > OM_HTTP_RESP_ABORT && g.body_total < huge);
    got_free(&g);
    ASSERT_EQ_INT(fx_finish(&fx), 0);
    free(body);
}

/* ------------------------------------------------------------------------------------------ */
/* Failures                                                                                   */

static void test_timeout(void)
{
    fx_t fx;
    fx_init(&fx);
    ASSERT_EQ_INT(om_test_httpd_start(&fx.srv, &fx.loop, 0, NULL, NULL), 0);
    fx.srv.script[0] = (om_test_httpd_reply_t){.status = 0}; /* no answer */
    fx.srv.n_script = 1;
    ASSERT_EQ_INT(fx_client(&fx, NULL, "c: {}"), 0);
    got_t g = {0};
    om_http_request_t rq = {.url = url_of(&fx, "http", "127.0.0.1", "/slow"), .timeout_ms = 150};
    uint64_t t0 = uv_now(&fx.loop);
    ASSERT_EQ_INT(send_rq(&fx, &rq, &g, NULL), 0);
    RUN_UNTIL(&fx, g.calls == 1, WAIT_MS);
    ASSERT_EQ_INT(g.error, OM_EIO);
    ASSERT_TRUE(g.retryable && g.timed_out);
    ASSERT_EQ_INT(g.status, 0);
    ASSERT_TRUE(g.at_ms - t0 >= 150);
    ASSERT_CONTAINS(g.message, "imed out");
    got_free(&g);
    ASSERT_EQ_INT(fx_finish(&fx), 0);
}

static void test_refused_and_permanent(void)
{
    fx_t fx;
    fx_init(&fx);
    int port = dead_port(&fx.loop);
    ASSERT_EQ_INT(fx_client(&fx, NULL, "c: {}"), 0);
    got_t g = {0};
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/x", port);
    om_http_request_t rq = {.url = url, .body = "b", .body_len = 1};
    ASSERT_EQ_INT(send_rq(&fx, &rq, &g, NULL), 0);
    RUN_UNTIL(&fx, g.calls == 1, WAIT_MS);
    ASSERT_EQ_INT(g.error, OM_EIO);
    ASSERT_TRUE(g.retryable && !g.timed_out);
    ASSERT_TRUE(g.message[0] != '\0');
    /* A scheme the client does not speak: no retry can help. */
    om_http_request_t ftp = {.url = "ftp://127.0.0.1/x"};
    ASSERT_EQ_INT(send_rq(&fx, &ftp, &g, NULL), 0);
    RUN_UNTIL(&fx, g.calls == 2, WAIT_MS);
    ASSERT_EQ_INT(g.error, OM_EPERM);
    ASSERT_TRUE(!g.retryable);
    /* Refused at once, without a callback; a taken body is freed (ASan watches). */
    const om_http_request_t bad[] = {
        {.url = "http://h/\r\nX: y"},
        {.method = "GE T", .url = url},
        {.method = "GET", .url = url, .body = "b", .body_len = 1},
        {.url = url,
         .headers = (const om_http_header_t[]){{"X-A", "v\r\nX-Injected: 1"}},
         .n_headers = 1},
        {.url = url, .headers = (const om_http_header_t[]){{"Bad Name", "v"}}, .n_headers = 1},
        {.url = NULL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        om_http_request_t b = bad[i];
        b.body_mode = OM_HTTP_BODY_TAKE;
        b.body = om_strdup("taken");
        b.body_len = bad[i].body_len;
        ASSERT_EQ_INT(send_rq(&fx, &b, &g, NULL), OM_EINVAL);
    }
    uv_run(&fx.loop, UV_RUN_NOWAIT);
    ASSERT_EQ_INT(g.calls, 2);
    got_free(&g);
    ASSERT_EQ_INT(fx_finish(&fx), 0);
}

/* ------------------------------------------------------------------------------------------ */
/* Many requests, connections, redirects, proxies                                             */

static void test_many_concurrent(void)
{
    fx_t fx;
    fx_init(&fx);
    ASSERT_EQ_INT(om_test_httpd_start(&fx.srv, &fx.loop, 0, NULL, NULL), 0);
    ASSERT_EQ_INT(fx_client(&fx, NULL, "c: {max_conns_per_host: 4}"), 0);
    enum { N = 200 };
    got_t *g = calloc(N, sizeof *g);
    char bodies[N][16];
    for (int i = 0; i < N; i++) {
        snprintf(bodies[i], sizeof bodies[i], "req-%d", i);
        om_http_request_t rq = {.url = url_of(&fx, "http", "127.0.0.1", "/many"),
                                .body = bodies[i],
                                .body_len = strlen(bodies[i])};
        ASSERT_EQ_INT(send_rq(&fx, &rq, &g[i], NULL), 0);
    }
    ASSERT_EQ_UINT(om_http_client_pending(fx.client), N);
    RUN_UNTIL(&fx, om_http_client_pending(fx.client) == 0, WAIT_MS);
    for (int i = 0; i < N; i++) {
        ASSERT_EQ_INT(g[i].calls, 1);
        ASSERT_EQ_INT(g[i].error, 0);
        ASSERT_EQ_INT(g[i].status, 200);
        got_free(&g[i]);
    }
    ASSERT_EQ_UINT(fx.srv.n_reqs, N);
    /* Every body arrived once. */
    int seen = 0;
    for (size_t i = 0; i < fx.srv.n_reqs; i++) {
        int k = -1;
        sscanf((const char *)fx.srv.reqs[i].body, "req-%d", &k);
        seen += k >= 0 && k < N;
    }
    ASSERT_EQ_INT(seen, N);
    ASSERT_TRUE(fx.srv.accepted <= 4); /* max_conns_per_host, connections reused */
    free(g);
    ASSERT_EQ_INT(fx_finish(&fx), 0);
}

static void test_keep_alive_off(void)
{
    fx_t fx;
    fx_init(&fx);
    ASSERT_EQ_INT(om_test_httpd_start(&fx.srv, &fx.loop, 0, NULL, NULL), 0);
    ASSERT_EQ_INT(fx_client(&fx, NULL, "c: {disable_keep_alives: true}"), 0);
    got_t g = {0};
    for (int i = 0; i < 3; i++) {
        om_http_request_t rq = {.url = url_of(&fx, "http", "127.0.0.1", "/k")};
        ASSERT_EQ_INT(send_rq(&fx, &rq, &g, NULL), 0);
        RUN_UNTIL(&fx, g.calls == i + 1, WAIT_MS);
        ASSERT_EQ_INT(g.status, 200);
    }
    ASSERT_EQ_INT(fx.srv.accepted, 3);
    got_free(&g);
    ASSERT_EQ_INT(fx_finish(&fx), 0);
}

static void test_redirect_keeps_post(void)
{
    fx_t fx;
    fx_init(&fx);
    ASSERT_EQ_INT(om_test_httpd_start(&fx.srv, &fx.loop, 0, NULL, NULL), 0);
    fx.srv.script[0] = (om_test_httpd_reply_t){.status = 302, .headers = "Location: /b\r\n"};
    fx.srv.script[1] = (om_test_httpd_reply_t){.status = 308, .headers = "Location: /c\r\n"};
    fx.srv.script[2] = (om_test_httpd_reply_t){.status = 201};
    fx.srv.n_script = 3;
    ASSERT_EQ_INT(fx_client(&fx, NULL, "c: {}"), 0);
    got_t g = {0};
    om_http_request_t rq = {
        .url = url_of(&fx, "http", "127.0.0.1", "/a"), .body = "data", .body_len = 4};
    ASSERT_EQ_INT(send_rq(&fx, &rq, &g, NULL), 0);
    RUN_UNTIL(&fx, g.calls == 1, WAIT_MS);
    ASSERT_EQ_INT(g.status, 201);
    ASSERT_EQ_UINT(fx.srv.n_reqs, 3);
    for (size_t i = 0; i < 3; i++) {
        ASSERT_EQ_STR(fx.srv.reqs[i].method, "POST");
        ASSERT_EQ_UINT(fx.srv.reqs[i].body_len, 4);
    }
    ASSERT_EQ_STR(fx.srv.reqs[2].url, "/c");
    got_free(&g);
    ASSERT_EQ_INT(fx_finish(&fx), 0);
}

static void set_env(const char *name, const char *value, char **saved)
{
    const char *old = getenv(name);
    *saved = old != NULL ? strdup(old) : NULL;
    if (value != NULL) {
        setenv(name, value, 1);
    } else {
        unsetenv(name);
    }
}

static void restore_env(const char *name, char *saved)
{
    if (saved != NULL) {
        setenv(name, saved, 1);
        free(saved);
    } else {
        unsetenv(name);
    }
}

/* http_proxy proxies; loopback never is (as Go); proxy_url proxies everything. */
static void test_proxies(void)
{
    fx_t fx;
    fx_init(&fx);
    ASSERT_EQ_INT(om_test_httpd_start(&fx.srv, &fx.loop, 0, NULL, NULL), 0);
    char proxy[64], dead[64];
    snprintf(proxy, sizeof proxy, "http://127.0.0.1:%d", fx.srv.port);
    snprintf(dead, sizeof dead, "http://127.0.0.1:%d", dead_port(&fx.loop));
    char *saved_http = NULL, *saved_no = NULL, *saved_NO = NULL;
    set_env("http_proxy", proxy, &saved_http);
    set_env("no_proxy", NULL, &saved_no);
    set_env("NO_PROXY", NULL, &saved_NO);
    ASSERT_EQ_INT(fx_client(&fx, NULL, "c: {}"), 0);
    got_t g = {0};
    /* The name never resolves here: only a proxied request can succeed. */
    om_http_request_t rq = {.url = "http://otel.invalid:4318/v1/traces"};
    ASSERT_EQ_INT(send_rq(&fx, &rq, &g, NULL), 0);
    RUN_UNTIL(&fx, g.calls == 1, WAIT_MS);
    ASSERT_EQ_INT(g.status, 200);
    ASSERT_EQ_STR(fx.srv.reqs[0].url, "http://otel.invalid:4318/v1/traces");
    fx_close_client(&fx);
    /* The proxy is dead; loopback still works, directly. */
    setenv("http_proxy", dead, 1);
    ASSERT_EQ_INT(fx_client(&fx, NULL, "c: {}"), 0);
    om_http_request_t local = {.url = url_of(&fx, "http", "127.0.0.1", "/direct")};
    ASSERT_EQ_INT(send_rq(&fx, &local, &g, NULL), 0);
    RUN_UNTIL(&fx, g.calls == 2, WAIT_MS);
    ASSERT_EQ_INT(g.status, 200);
    ASSERT_EQ_STR(fx.srv.reqs[1].url, "/direct");
    fx_close_client(&fx);
    restore_env("http_proxy", saved_http);
    restore_env("no_proxy", saved_no);
    restore_env("NO_PROXY", saved_NO);
    /* proxy_url: even loopback goes through it. */
    ASSERT_EQ_INT(fx_client(&fx, NULL, "c: {proxy_url: '%s'}", proxy), 0);
    char far[64];
    snprintf(far, sizeof far, "http://127.0.0.2:%d/far", fx.srv.port);
    om_http_request_t via = {.url = far};
    ASSERT_EQ_INT(send_rq(&fx, &via, &g, NULL), 0);
    RUN_UNTIL(&fx, g.calls == 3, WAIT_MS);
    ASSERT_EQ_INT(g.status, 200);
    ASSERT_EQ_STR(fx.srv.reqs[2].url, far);
    got_free(&g);
    ASSERT_EQ_INT(fx_finish(&fx), 0);
}

/* ------------------------------------------------------------------------------------------ */
/* TLS                                                                                        */

static void tls_server(fx_t *fx)
{
    ASSERT_EQ_INT(om_test_httpd_start(&fx->srv, &fx->loop, 0, om_test_server_cert_pem,
                                      om_test_server_key_pem),
                  0);
}

/* One GET to url with the settings in `c: {...}`; returns the callback's error (and status). */
static int tls_get(fx_t *fx, const char *url, int *status, const char *fmt, ...) OM_PRINTF(4, 5);

static int tls_get(fx_t *fx, const char *url, int *status, const char *fmt, ...)
{
    char text[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    *status = -1;
    if (fx_client(fx, NULL, "%s", text) != 0) {
        return -1;
    }
    got_t g = {0};
    om_http_request_t rq = {.url = url, .timeout_ms = 5000};
    int rc = send_rq(fx, &rq, &g, NULL);
    if (rc == 0) {
        RUN_UNTIL(fx, g.calls == 1, WAIT_MS);
        rc = g.calls == 1 ? g.error : -2;
        *status = g.status;
    }
    got_free(&g);
    fx_close_client(fx);
    return rc;
}

static void test_tls_server_checks(void)
{
    fx_t fx;
    fx_init(&fx);
    tls_server(&fx);
    const char *ca = om_testpem_file("ca.pem", om_test_ca_pem);
    int st;
    om_log_set_level(OM_LOG_NONE);
    /* The certificate names localhost, not 127.0.0.1. */
    ASSERT_EQ_INT(
        tls_get(&fx, url_of(&fx, "https", "localhost", "/"), &st, "c: {tls: {ca_file: %s}}", ca),
        0);
    ASSERT_EQ_INT(st, 200);
    ASSERT_EQ_INT(
        tls_get(&fx, url_of(&fx, "https", "127.0.0.1", "/"), &st, "c: {tls: {ca_file: %s}}", ca),
        OM_EIO);
    /* server_name_override: SNI and the check use the name; the connection and the Host
     * header stay with the URL's host. */
    size_t before = fx.srv.n_reqs;
    ASSERT_EQ_INT(tls_get(&fx, url_of(&fx, "https", "127.0.0.1", "/o"), &st,
                          "c: {tls: {ca_file: %s, server_name_override: otelmon-test.example}}",
                          ca),
                  0);
    ASSERT_EQ_INT(st, 200);
    ASSERT_EQ_UINT(fx.srv.n_reqs, before + 1);
    char host[64];
    snprintf(host, sizeof host, "127.0.0.1:%d", fx.srv.port);
    ASSERT_EQ_STR(om_test_httpd_header(&fx.srv.reqs[before], "Host"), host);
    /* The system's CAs do not know the test CA, unless it is added to them. */
    ASSERT_EQ_INT(tls_get(&fx, url_of(&fx, "https", "localhost", "/"), &st, "c: {}"), OM_EIO);
    ASSERT_EQ_INT(tls_get(&fx, url_of(&fx, "https", "localhost", "/"), &st,
                          "c: {tls: {ca_file: %s, include_system_ca_certs_pool: true}}", ca),
                  0);
    /* Only the configured CA: a CA that did not sign it fails. */
    const char *other = om_testpem_file("other.pem", om_test_client_cert_pem);
    ASSERT_EQ_INT(
        tls_get(&fx, url_of(&fx, "https", "localhost", "/"), &st, "c: {tls: {ca_file: %s}}", other),
        OM_EIO);
    /* No checks at all. */
    ASSERT_EQ_INT(tls_get(&fx, url_of(&fx, "https", "127.0.0.1", "/"), &st,
                          "c: {tls: {insecure_skip_verify: true}}"),
                  0);
    /* The CA inline. */
    ASSERT_EQ_INT(tls_get(&fx, url_of(&fx, "https", "localhost", "/"), &st,
                          "c: {tls: {ca_pem: \"%s\"}}", "PLACEHOLDER"),
                  -1); /* not PEM: the client is not made */
    om_log_set_level(OM_LOG_ERROR);
    ASSERT_EQ_INT(fx_finish(&fx), 0);
}

static int verify_any(int ok, X509_STORE_CTX *ctx)
{
    (void)ctx;
    return ok;
}

static void test_mutual_tls(void)
{
    fx_t fx;
    fx_init(&fx);
    tls_server(&fx);
    /* The server wants a client certificate signed by the test CA. */
    SSL_CTX *ctx = fx.srv.tls;
    BIO *b = BIO_new_mem_buf(om_test_ca_pem, -1);
    X509 *ca = PEM_read_bio_X509(b, NULL, NULL, NULL);
    X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), ca);
    X509_free(ca);
    BIO_free(b);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, verify_any);
    const char *cafile = om_testpem_file("ca2.pem", om_test_ca_pem);
    const char *cert = om_testpem_file("cert.pem", om_test_client_cert_pem);
    const char *key = om_testpem_file("key.pem", om_test_client_key_pem);
    int st;
    om_log_set_level(OM_LOG_NONE);
    ASSERT_EQ_INT(tls_get(&fx, url_of(&fx, "https", "localhost", "/"), &st,
                          "c: {tls: {ca_file: %s}}", cafile),
                  OM_EIO);
    ASSERT_EQ_INT(tls_get(&fx, url_of(&fx, "https", "localhost", "/"), &st,
                          "c: {tls: {ca_file: %s, cert_file: %s, key_file: %s}}", cafile, cert,
                          key),
                  0);
    ASSERT_EQ_INT(st, 200);
    om_log_set_level(OM_LOG_ERROR);
    ASSERT_EQ_INT(fx_finish(&fx), 0);
}

static void test_tls_versions_ciphers_curves(void)
{
    fx_t fx;
    fx_init(&fx);
    tls_server(&fx);
    SSL_CTX *ctx = fx.srv.tls;
    const char *ca = om_testpem_file("ca3.pem", om_test_ca_pem);
    const char *url = url_of(&fx, "https", "localhost", "/");
    int st;
    om_log_set_level(OM_LOG_NONE);
    /* A server that stops at TLS 1.2: a client that wants 1.3 does not talk to it. */
    SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
    ASSERT_EQ_INT(tls_get(&fx, url, &st, "c: {tls: {ca_file: %s}}", ca), 0);
    ASSERT_EQ_INT(tls_get(&fx, url, &st, "c: {tls: {ca_file: %s, min_version: '1.3'}}", ca),
                  OM_EIO);
    /* Cipher suites (TLS 1.2): the server's key is EC, so RSA suites cannot be agreed on. */
    ASSERT_EQ_INT(tls_get(&fx, url, &st,
                          "c: {tls: {ca_file: %s, cipher_suites: "
                          "[TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384]}}",
                          ca),
                  0);
    ASSERT_EQ_INT(tls_get(&fx, url, &st,
                          "c: {tls: {ca_file: %s, cipher_suites: "
                          "[TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]}}",
                          ca),
                  OM_EIO);
    /* Curves: the server only takes P-384. */
    SSL_CTX_set_max_proto_version(ctx, 0);
    SSL_CTX_set1_groups_list(ctx, "P-384");
    ASSERT_EQ_INT(tls_get(&fx, url, &st, "c: {tls: {ca_file: %s, curve_preferences: [P384]}}", ca),
                  0);
    ASSERT_EQ_INT(
        tls_get(&fx, url, &st, "c: {tls: {ca_file: %s, curve_preferences: [X25519]}}", ca), OM_EIO);
    /* A server that only speaks 1.3; a client capped at 1.2. */
    SSL_CTX_set1_groups_list(ctx, "X25519:P-256:P-384");
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    ASSERT_EQ_INT(tls_get(&fx, url, &st, "c: {tls: {ca_file: %s, max_version: '1.2'}}", ca),
                  OM_EIO);
    ASSERT_EQ_INT(tls_get(&fx, url, &st, "c: {tls: {ca_file: %s, max_version: '1.3'}}", ca), 0);
    om_log_set_level(OM_LOG_ERROR);
    ASSERT_EQ_INT(fx_finish(&fx), 0);
}

/* ------------------------------------------------------------------------------------------ */
/* Cancel and close                                                                           */

static void test_cancel(void)
{
    fx_t fx;
    fx_init(&fx);
    ASSERT_EQ_INT(om_test_httpd_start(&fx.srv, &fx.loop, 0, NULL, NULL), 0);
    fx.srv.script[0] = (om_test_httpd_reply_t){.status = 0}; /* never answered */
    fx.srv.n_script = 1;
    ASSERT_EQ_INT(fx_client(&fx, NULL, "c: {}"), 0);
    got_t a = {0}, b = {0};
    om_http_call_t *call = NULL;
    om_http_request_t rq = {.url = url_of(&fx, "http", "127.0.0.1", "/never")};
    ASSERT_EQ_INT(send_rq(&fx, &rq, &a, &call), 0);
    RUN_UNTIL(&fx, fx.srv.n_reqs == 1 && fx.srv.reqs[0].complete, WAIT_MS);
    ASSERT_EQ_INT(send_rq(&fx, &rq, &b, NULL), 0); /* answered: 200 */
    fx.in_api = true;
    om_http_cancel(call);
    om_http_cancel(call); /* a second cancel does nothing */
    fx.in_api = false;
    ASSERT_EQ_INT(a.calls, 0);
    RUN_UNTIL(&fx, a.calls == 1 && b.calls == 1, WAIT_MS);
    ASSERT_EQ_INT(a.calls, 1);
    ASSERT_EQ_INT(a.error, OM_ESHUTDOWN);
    ASSERT_TRUE(!a.retryable);
    ASSERT_EQ_STR(a.message, "cancelled");
    ASSERT_EQ_INT(b.error, 0);
    ASSERT_EQ_INT(b.status, 200);
    ASSERT_EQ_UINT(om_http_client_pending(fx.client), 0);
    got_free(&a);
    got_free(&b);
    ASSERT_EQ_INT(fx_finish(&fx), 0);
}

static void test_close_with_requests_in_flight(void)
{
    fx_t fx;
    fx_init(&fx);
    ASSERT_EQ_INT(om_test_httpd_start(&fx.srv, &fx.loop, 0, NULL, NULL), 0);
    for (int i = 0; i < 3; i++) {
        fx.srv.script[i] = (om_test_httpd_reply_t){.status = 0};
    }
    fx.srv.n_script = 3;
    ASSERT_EQ_INT(fx_client(&fx, NULL, "c: {}"), 0);
    got_t g[3] = {0};
    for (int i = 0; i < 3; i++) {
        om_http_request_t rq = {.url = url_of(&fx, "http", "127.0.0.1", "/f"),
                                .body = om_strdup("taken"),
                                .body_len = 5,
                                .body_mode = OM_HTTP_BODY_TAKE};
        ASSERT_EQ_INT(send_rq(&fx, &rq, &g[i], NULL), 0);
    }
    RUN_UNTIL(&fx, fx.srv.n_reqs == 3 && fx.srv.reqs[2].complete, WAIT_MS);
    fx.in_api = true;
    om_http_client_close(fx.client, closed_cb, &fx.closed);
    om_http_client_close(fx.client, closed_cb, &fx.closed); /* nothing more */
    got_t late = {0};
    om_http_request_t rq = {.url = url_of(&fx, "http", "127.0.0.1", "/late")};
    om_err_t err = {0};
    ASSERT_EQ_INT(om_http_send(fx.client, &rq, on_done, &late, NULL, &err), OM_ESHUTDOWN);
    fx.in_api = false;
    RUN_UNTIL(&fx, fx.closed > 0, WAIT_MS);
    ASSERT_EQ_INT(fx.closed, 1);
    for (int i = 0; i < 3; i++) {
        ASSERT_EQ_INT(g[i].calls, 1);
        ASSERT_EQ_INT(g[i].error, OM_ESHUTDOWN);
        got_free(&g[i]);
    }
    ASSERT_EQ_INT(late.calls, 0);
    fx.client = NULL;
    /* The server sees its connections closed. */
    RUN_UNTIL(&fx, fx.srv.open == 0, WAIT_MS);
    ASSERT_EQ_INT(fx.srv.open, 0);
    ASSERT_EQ_INT(fx_finish(&fx), 0);
}

/* Closing from inside a callback, with another request still running. */
typedef struct closer {
    fx_t *fx;
    got_t g;
} closer_t;

static void close_in_callback(void *arg, const om_http_response_t *r)
{
    closer_t *c = arg;
    on_done(&c->g, r);
    om_http_client_close(c->fx->client, closed_cb, &c->fx->closed);
    om_http_request_t rq = {.url = r->url};
    om_err_t err = {0};
    c->g.error = om_http_send(c->fx->client, &rq, on_done, &c->g, NULL, &err);
}

static void test_close_from_a_callback(void)
{
    fx_t fx;
    fx_init(&fx);
    ASSERT_EQ_INT(om_test_httpd_start(&fx.srv, &fx.loop, 0, NULL, NULL), 0);
    fx.srv.script[0] = (om_test_httpd_reply_t){.status = 0};
    fx.srv.script[1] = (om_test_httpd_reply_t){.status = 200};
    fx.srv.n_script = 2;
    ASSERT_EQ_INT(fx_client(&fx, NULL, "c: {}"), 0);
    got_t slow = {0};
    om_http_request_t rq = {.url = url_of(&fx, "http", "127.0.0.1", "/c")};
    ASSERT_EQ_INT(send_rq(&fx, &rq, &slow, NULL), 0);
    RUN_UNTIL(&fx, fx.srv.n_reqs == 1 && fx.srv.reqs[0].complete, WAIT_MS);
    closer_t c = {.fx = &fx};
    om_err_t err = {0};
    ASSERT_EQ_INT(om_http_send(fx.client, &rq, close_in_callback, &c, NULL, &err), 0);
    RUN_UNTIL(&fx, fx.closed > 0, WAIT_MS);
    ASSERT_EQ_INT(fx.closed, 1);
    ASSERT_EQ_INT(c.g.calls, 1);
    ASSERT_EQ_INT(c.g.status, 200);
    ASSERT_EQ_INT(c.g.error, OM_ESHUTDOWN); /* the send made in the callback was refused */
    ASSERT_EQ_INT(slow.calls, 1);
    ASSERT_EQ_INT(slow.error, OM_ESHUTDOWN);
    fx.client = NULL;
    got_free(&slow);
    got_free(&c.g);
    ASSERT_EQ_INT(fx_finish(&fx), 0);
}

/* ------------------------------------------------------------------------------------------ */
/* Settings and parsers                                                                       */

static void test_settings_rules(void)
{
    fx_t fx;
    fx_init(&fx);
    const char *bad[][2] = {
        {"c: {proxy_url: 'http://['}", "proxy_url: must be a valid URL"},
        {"c: {headers: {'a b': x}}", "headers: invalid header name \"a b\""},
        {"c: {headers: {a: \"x\\r\\ny: z\"}}", "headers::a: the value must not contain a line"},
        {"c: {tls: {cert_file: /c}}", "tls::cert_file: for auth via TLS"},
        {"c: {auth: {}}", "c::auth: missing required key \"authenticator\""},
        {"c: {auth: {authenticator: a, request_params: [x]}}", "has invalid keys: request_params"},
        {"c: {middlewares: [{id: m}]}", "c::middlewares: not supported by otelmon: middlewares"},
        {"c: {max_conns_per_host: -1}", "max_conns_per_host"},
        {"c: {nonsense: 1}", "has invalid keys: nonsense"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        om_err_t err = {0};
        ASSERT_TRUE(fx_config(&fx, &err, "%s", bad[i][0]) != 0);
        ASSERT_CONTAINS(err.msg, bad[i][1]);
    }
    om_err_t err = {0};
    ASSERT_EQ_INT(fx_config(&fx, &err,
                            "c: {cookies: {enabled: true}, force_attempt_http2: true, "
                            "max_idle_conns_per_host: 3, http2_ping_timeout: 1s, "
                            "middlewares: []}"),
                  0);
    ASSERT_EQ_INT(fx.cfg.http.max_idle_conns, 100);
    ASSERT_EQ_INT(fx.cfg.http.idle_conn_timeout, 90 * OM_NS_PER_S);
    ASSERT_EQ_INT(fx.cfg.http.write_buffer_size, 0);
    ASSERT_TRUE(!fx.cfg.http.disable_keep_alives);
    /* URLs, as libcurl reads them. */
    ASSERT_EQ_INT(om_http_check_url("endpoint", "https://h:1/x?y", &err), 0);
    err = (om_err_t){0};
    ASSERT_EQ_INT(om_http_check_url("endpoint", "ftp://h/x", &err), OM_ECONFIG);
    ASSERT_EQ_STR(err.at, "endpoint");
    ASSERT_CONTAINS(err.msg, "unsupported scheme \"ftp\"");
    err = (om_err_t){0};
    ASSERT_EQ_INT(om_http_check_url("traces_endpoint", "http://", &err), OM_ECONFIG);
    ASSERT_CONTAINS(err.msg, "must be a valid URL");
    ASSERT_EQ_INT(fx_finish(&fx), 0);
}

static void test_retry_after(void)
{
    ASSERT_EQ_INT(om_http_retry_after_ms("1", 0), 1000);
    ASSERT_EQ_INT(om_http_retry_after_ms(" 120 ", 0), 120000);
    ASSERT_EQ_INT(om_http_retry_after_ms("", 0), -1);
    ASSERT_EQ_INT(om_http_retry_after_ms("soon", 0), -1);
    ASSERT_EQ_INT(om_http_retry_after_ms(NULL, 0), -1);
    ASSERT_EQ_INT(om_http_retry_after_ms("-5", 0), -1);
    /* Wed, 21 Oct 2015 07:28:00 GMT is 1445412480. */
    ASSERT_EQ_INT(om_http_retry_after_ms("Wed, 21 Oct 2015 07:28:00 GMT", 1445412470), 10000);
    ASSERT_EQ_INT(om_http_retry_after_ms("Wed, 21 Oct 2015 07:28:00 GMT", 1445412490), 0);
    /* The two other forms of HTTP-date, and what is none of them. */
    ASSERT_EQ_INT(om_http_retry_after_ms("Wednesday, 21-Oct-15 07:28:00 GMT", 1445412470), 10000);
    ASSERT_EQ_INT(om_http_retry_after_ms("Wed Oct 21 07:28:00 2015", 1445412470), 10000);
    ASSERT_EQ_INT(om_http_retry_after_ms("Wed Oct  1 07:28:00 2015", 1443684470), 10000);
    ASSERT_EQ_INT(om_http_retry_after_ms("Wed, 21 Oct 2015 07:28:00 PST", 0), -1);
    ASSERT_EQ_INT(om_http_retry_after_ms("Wed, 21 Oct 2015 07:28:00 GMT later", 0), -1);
    ASSERT_EQ_INT(om_http_retry_after_ms("Wed, 21 Oct 2015", 0), -1);
    ASSERT_EQ_INT(om_http_retry_after_ms("99999999999999999999", 0), INT64_C(9999999999000));
    ASSERT_TRUE(om_http_retry_after_ms("555555542Oct8", 0) <= INT64_C(9999999999000));
}

int main(void)
{
    om_log_set_level(OM_LOG_ERROR);
    OM_RUN(test_get_and_post);
    OM_RUN(test_methods);
    OM_RUN(test_auth_headers);
    OM_RUN(test_headers_both_ways);
    OM_RUN(test_status_codes);
    OM_RUN(test_body_cap_and_cut);
    OM_RUN(test_timeout);
    OM_RUN(test_refused_and_permanent);
    OM_RUN(test_many_concurrent);
    OM_RUN(test_keep_alive_off);
    OM_RUN(test_redirect_keeps_post);
    OM_RUN(test_proxies);
    OM_RUN(test_tls_server_checks);
    OM_RUN(test_mutual_tls);
    OM_RUN(test_tls_versions_ciphers_curves);
    OM_RUN(test_cancel);
    OM_RUN(test_close_with_requests_in_flight);
    OM_RUN(test_close_from_a_callback);
    OM_RUN(test_settings_rules);
    OM_RUN(test_retry_after);
    om_testpem_files_remove();
    return om_test_summary();
}
