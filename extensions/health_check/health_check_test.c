/* health_check_test.c: the health_check extension seen from an HTTP client on the same loop:
 * 503 with upstream's body before the pipelines are ready and after they stop, 200 with a
 * parseable upSince and a Go duration while they run, custom paths and bodies, Go ServeMux
 * routing (subtree, redirect, 404), bounded requests, the timeout, shutdown; plus Go's
 * duration and time formats. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "config.h"
#include "health_check.h"
#include "om_test.h"
#include "om_testcerts.h"
#include "om_testhttp.h"

/* ---- an extension instance ---------------------------------------------------------------- */

typedef struct fixture {
    uv_loop_t loop;
    om_host_t host;
    void *cfg; /* om_test_config_load's */
    void *self;
    int done;
    int port;
} fixture_t;

static const om_factory_t *const F = &ext_health_check_factory;

static void on_done(void *arg)
{
    ((fixture_t *)arg)->done++;
}

/* Create and start an instance on 127.0.0.1:0 with the extra YAML keys in extra. */
static bool setup(fixture_t *f, const char *extra)
{
    memset(f, 0, sizeof *f);
    char yaml[1024];
    const char *why = "";
    snprintf(yaml, sizeof yaml, "{endpoint: '127.0.0.1:0'%s%s}", extra[0] ? ", " : "", extra);
    if (uv_loop_init(&f->loop) != 0) {
        return false;
    }
    om_test_host_init(&f->host, &f->loop);
    f->cfg = om_test_config_load(F, yaml, &why);
    if (f->cfg == NULL) {
        fprintf(stderr, "config: %s\n", why);
        return false;
    }
    om_create_args_t a = {.cfg = f->cfg,
                          .id = "health_check",
                          .log_name = "extension/health_check",
                          .host = &f->host};
    om_err_t err = {0};
    if (F->create(&a, &f->self, &err) != 0 || F->start(f->self, &err) != 0) {
        fprintf(stderr, "create/start: %s\n", err.msg);
        return false;
    }
    f->port = ext_health_check_bound_port(f->self);
    return f->port > 0;
}

static void run_until(uv_loop_t *loop, const int *flag)
{
    for (int i = 0; i < 100000 && *flag == 0; i++) {
        uv_run(loop, UV_RUN_ONCE);
    }
}

/* Shut down, destroy and close the loop; false when something stayed open. */
static bool teardown(fixture_t *f)
{
    F->shutdown(f->self, on_done, f);
    F->shutdown(f->self, on_done, f); /* a second call does nothing */
    run_until(&f->loop, &f->done);
    bool ok = f->done == 1;
    uv_run(&f->loop, UV_RUN_NOWAIT);
    ok = ok && f->done == 1;
    F->destroy(f->self);
    om_test_config_free(F, f->cfg);
    om_test_host_close(&f->host);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    om_test_host_close(&f->host);
    return uv_loop_close(&f->loop) == 0 && ok;
}

/* ---- a raw HTTP client --------------------------------------------------------------------- */

typedef struct client {
    uv_tcp_t tcp;
    uv_connect_t creq;
    uv_write_t wreq;
    const char *req;
    size_t req_len;
    om_strbuf_t resp;
    int closed;
} client_t;

static void client_closed(uv_handle_t *h)
{
    ((client_t *)h->data)->closed = 1;
}

static void client_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    static char rb[65536];
    (void)suggested;
    *buf = uv_buf_init(rb, sizeof rb);
}

static void client_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    client_t *c = s->data;
    if (n > 0) {
        om_strbuf_append(&c->resp, buf->base, (size_t)n);
    } else if (n < 0 && !uv_is_closing((uv_handle_t *)s)) {
        uv_close((uv_handle_t *)s, client_closed);
    }
}

static void client_written(uv_write_t *w, int status)
{
    (void)w;
    (void)status;
}

static void client_connected(uv_connect_t *r, int status)
{
    client_t *c = r->data;
    if (status != 0) {
        uv_close((uv_handle_t *)&c->tcp, client_closed);
        return;
    }
    uv_read_start((uv_stream_t *)&c->tcp, client_alloc, client_read);
    if (c->req_len > 0) {
        uv_buf_t b = uv_buf_init((char *)c->req, (unsigned)c->req_len);
        uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, client_written);
    }
}

/* Connect and send raw (n bytes); the connection runs on the loop until the server closes. */
static void client_open(client_t *c, uv_loop_t *loop, int port, const char *raw, size_t n)
{
    memset(c, 0, sizeof *c);
    om_strbuf_init(&c->resp, 0);
    c->req = raw;
    c->req_len = n;
    c->tcp.data = c->creq.data = c;
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", port, &a);
    uv_tcp_init(loop, &c->tcp);
    uv_tcp_connect(&c->creq, &c->tcp, (const struct sockaddr *)&a, client_connected);
}

/* One exchange: the whole response (caller frees with om_free; "" when none). */
static char *exchange(fixture_t *f, const char *raw, size_t n)
{
    client_t c;
    client_open(&c, &f->loop, f->port, raw, n);
    run_until(&f->loop, &c.closed);
    char *out = om_strbuf_steal(&c.resp, NULL);
    return out != NULL ? out : om_strdup("");
}

static char *get(fixture_t *f, const char *method, const char *target)
{
    char req[4096];
    int n = snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: x\r\nUser-Agent: t\r\n\r\n", method,
                     target);
    return exchange(f, req, (size_t)n);
}

static int status_of(const char *resp)
{
    int code = 0;
    return sscanf(resp, "HTTP/1.1 %d ", &code) == 1 ? code : -1;
}

static const char *body_of(const char *resp)
{
    const char *p = strstr(resp, "\r\n\r\n");
    return p != NULL ? p + 4 : NULL;
}

/* The value of a response header (case as we write it), copied into out; NULL if absent. */
static const char *header_of(const char *resp, const char *name, char *out, size_t n)
{
    char key[64];
    snprintf(key, sizeof key, "\r\n%s: ", name);
    const char *p = strstr(resp, key);
    const char *end = body_of(resp);
    if (p == NULL || end == NULL || p > end) {
        return NULL;
    }
    p += strlen(key);
    size_t len = strcspn(p, "\r");
    snprintf(out, n, "%.*s", (int)len, p);
    return out;
}

#define NOT_READY_BODY                                                                             \
    "{\"status\":\"Server not available\",\"upSince\":\"0001-01-01T00:00:00Z\",\"uptime\":\"\"}"

/* ---- helpers on Go formats ------------------------------------------------------------------ */

/* Parses Go's RFC 3339 form back to Unix seconds; -1 when it is not that form. */
static long long parse_rfc3339(const char *s)
{
    struct tm tm = {0};
    int consumed = 0;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec, &consumed) != 6 ||
        consumed != 19) {
        return -1;
    }
    const char *p = s + 19;
    if (*p == '.') {
        size_t digits = strspn(p + 1, "0123456789");
        if (digits == 0 || digits > 9 || p[digits] == '0') {
            return -1; /* Go drops trailing zeros */
        }
        p += 1 + digits;
    }
    long off = 0;
    if (*p == '+' || *p == '-') {
        int hh = 0, mm = 0;
        if (sscanf(p + 1, "%2d:%2d", &hh, &mm) != 2 || strlen(p) != 6) {
            return -1;
        }
        off = (*p == '-' ? -1 : 1) * (hh * 3600L + mm * 60L);
    } else if (strcmp(p, "Z") != 0) {
        return -1;
    }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (long long)timegm(&tm) - off;
}

/* True for a Go duration string such as "1.5ms", "2m3.000001s", "1h0m0s". */
static bool is_go_duration(const char *s)
{
    static const char *const units[] = {"h", "m", "s", "ms", "\xc2\xb5s", "ns"};
    if (*s == '\0') {
        return false;
    }
    while (*s != '\0') {
        size_t d = strspn(s, "0123456789");
        if (d == 0) {
            return false;
        }
        s += d;
        if (*s == '.') {
            d = strspn(s + 1, "0123456789");
            if (d == 0) {
                return false;
            }
            s += 1 + d;
        }
        size_t best = 0;
        for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
            size_t ul = strlen(units[i]);
            if (strncmp(s, units[i], ul) == 0 && ul > best && !(ul == 1 && s[1] == 's')) {
                best = ul;
            }
        }
        if (best == 0) {
            return false;
        }
        s += best;
    }
    return true;
}

/* ---- tests --------------------------------------------------------------------------------- */

static void test_config(void)
{
    const char *why = "";
    void *cfg = om_test_config_load(F, "", &why);
    ASSERT_TRUE(cfg != NULL);
    om_test_config_free(F, cfg);

    /* Keys otelcol users write that we accept without implementing, and confighttp's (the
     * TLS files are read at start, not here). */
    om_log_set_level(OM_LOG_ERROR);
    cfg = om_test_config_load(
        F,
        "{endpoint: '0.0.0.0:13133', check_collector_pipeline: {enabled: false, "
        "interval: 5m, exporter_failure_threshold: 5}, tls: {cert_file: x, key_file: "
        "y}, read_header_timeout: 5s, idle_timeout: 10s, cors: {allowed_origins: [x]}, "
        "response_headers: {X-Frame-Options: DENY}}",
        &why);
    ASSERT_TRUE(cfg != NULL);
    om_test_config_free(F, cfg);

    /* TLS is served now: a section without a key, or asking for what is not implemented, is
     * an error. */
    ASSERT_TRUE(om_test_config_load(F, "{tls: {cert_file: x}}", &why) == NULL);
    ASSERT_CONTAINS(why, "both certificate and key");
    ASSERT_TRUE(om_test_config_load(F, "{tls: {cert_file: x, key_file: y, reload_interval: 1h}}",
                                    &why) == NULL);
    ASSERT_CONTAINS(why, "reload_interval: not supported by otelmon");

    /* v2 would serve http and grpc with their own auth: refused rather than an open legacy
     * endpoint; use_v2: false (upstream's default) is fine, and so is v1's own auth. */
    ASSERT_TRUE(om_test_config_load(F,
                                    "{use_v2: true, http: {endpoint: 'localhost:13133', auth: "
                                    "{authenticator: basicauth}}}",
                                    &why) == NULL);
    ASSERT_CONTAINS(why, "use_v2: not supported by otelmon: health check v2");
    cfg = om_test_config_load(F, "{use_v2: false, auth: {authenticator: basicauth}}", &why);
    ASSERT_TRUE(cfg != NULL);
    om_test_config_free(F, cfg);

    ASSERT_TRUE(om_test_config_load(F, "{path: health}", &why) == NULL);
    ASSERT_CONTAINS(why, "path must start with /");
    ASSERT_TRUE(om_test_config_load(F, "{bogus: 1}", &why) == NULL);
    ASSERT_CONTAINS(why, "bogus");
    ASSERT_TRUE(om_test_config_load(F, "{endpoint: 'nope'}", &why) == NULL);
}

static void test_default_body_and_states(void)
{
    fixture_t f;
    ASSERT_TRUE(setup(&f, ""));
    char hv[256];

    /* Started, pipelines not ready yet: 503 with upstream's exact body. */
    char *r = get(&f, "GET", "/");
    ASSERT_EQ_INT(status_of(r), 503);
    ASSERT_EQ_STR(body_of(r), NOT_READY_BODY);
    ASSERT_EQ_STR(header_of(r, "Content-Type", hv, sizeof hv), "application/json");
    ASSERT_EQ_STR(header_of(r, "Connection", hv, sizeof hv), "close");
    ASSERT_EQ_UINT(strtoul(header_of(r, "Content-Length", hv, sizeof hv), NULL, 10),
                   strlen(NOT_READY_BODY));
    ASSERT_TRUE(header_of(r, "Date", hv, sizeof hv) != NULL);
    om_free(r);

    F->pipelines_ready(f.self);
    r = get(&f, "GET", "/");
    ASSERT_EQ_INT(status_of(r), 200);
    /* The key order of upstream's struct, as encoding/json writes it. */
    const char prefix[] = "{\"status\":\"Server available\",\"upSince\":\"";
    ASSERT_TRUE(strncmp(body_of(r), prefix, sizeof prefix - 1) == 0);
    ASSERT_CONTAINS(body_of(r), "\",\"uptime\":\"");
    json_error_t je;
    json_t *j = json_loads(body_of(r), 0, &je);
    ASSERT_TRUE(j != NULL);
    ASSERT_EQ_INT(json_object_size(j), 3);
    ASSERT_EQ_STR(json_string_value(json_object_get(j, "status")), "Server available");
    long long up = parse_rfc3339(json_string_value(json_object_get(j, "upSince")));
    long long now = (long long)time(NULL);
    ASSERT_TRUE(up > 0 && up <= now && now - up < 60);
    const char *uptime = json_string_value(json_object_get(j, "uptime"));
    ASSERT_TRUE(uptime != NULL && is_go_duration(uptime));
    json_decref(j);
    om_free(r);

    /* The default path "/" is a subtree, as in Go's ServeMux: every path is answered. */
    r = get(&f, "GET", "/anything/at/all?x=1");
    ASSERT_EQ_INT(status_of(r), 200);
    om_free(r);
    r = get(&f, "POST", "/");
    ASSERT_EQ_INT(status_of(r), 200);
    om_free(r);

    /* HEAD: the headers of the GET answer, no body. */
    r = get(&f, "HEAD", "/");
    ASSERT_EQ_INT(status_of(r), 200);
    ASSERT_EQ_STR(body_of(r), "");
    ASSERT_TRUE(strtoul(header_of(r, "Content-Length", hv, sizeof hv), NULL, 10) > 60);
    om_free(r);

    F->pipelines_not_ready(f.self);
    r = get(&f, "GET", "/");
    ASSERT_EQ_INT(status_of(r), 503);
    ASSERT_EQ_STR(body_of(r), NOT_READY_BODY);
    om_free(r);
    /* Each connection ends once its client has read the answer and closed (the server
     * half-closes after answering, as Go's does, and then sees the client's end). */
    for (int i = 0; i < 1000 && ext_health_check_conn_count(f.self) != 0; i++) {
        uv_run(&f.loop, UV_RUN_ONCE);
    }
    ASSERT_EQ_UINT(ext_health_check_conn_count(f.self), 0);
    ASSERT_TRUE(teardown(&f));
}

static void test_custom_path_and_bodies(void)
{
    fixture_t f;
    ASSERT_TRUE(setup(&f, "path: /health/status, response_body: {healthy: \"I'm OK\", "
                          "unhealthy: \"I'm not OK\"}"));
    char hv[128];
    char *r = get(&f, "GET", "/health/status");
    ASSERT_EQ_INT(status_of(r), 503);
    ASSERT_EQ_STR(body_of(r), "I'm not OK");
    om_free(r);

    F->pipelines_ready(f.self);
    r = get(&f, "GET", "/health/status");
    ASSERT_EQ_INT(status_of(r), 200);
    ASSERT_EQ_STR(body_of(r), "I'm OK");
    ASSERT_EQ_STR(header_of(r, "Content-Type", hv, sizeof hv), "text/plain; charset=utf-8");
    om_free(r);
    r = get(&f, "GET", "/health/status?verbose=true");
    ASSERT_EQ_INT(status_of(r), 200);
    om_free(r);
    r = get(&f, "GET", "/health/stat%75s"); /* matched after percent-decoding, as in Go */
    ASSERT_EQ_INT(status_of(r), 200);
    om_free(r);
    r = get(&f, "GET", "http://example.com/health/status");
    ASSERT_EQ_INT(status_of(r), 200);
    om_free(r);

    /* Anything else: Go's 404. Not a subtree: a trailing slash is another path. */
    const char *const others[] = {"/",       "/other",        "/health/status/",
                                  "/health", "/health/statu", "/health%2Fstatus"};
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
        r = get(&f, "GET", others[i]);
        ASSERT_EQ_INT(status_of(r), 404);
        ASSERT_EQ_STR(body_of(r), "404 page not found\n");
        om_free(r);
    }
    ASSERT_TRUE(teardown(&f));
}

static void test_empty_custom_bodies(void)
{
    fixture_t f;
    char hv[64];
    ASSERT_TRUE(setup(&f, "response_body: {healthy: ''}"));
    char *r = get(&f, "GET", "/");
    ASSERT_EQ_INT(status_of(r), 503);
    ASSERT_EQ_STR(body_of(r), "");
    ASSERT_EQ_STR(header_of(r, "Content-Length", hv, sizeof hv), "0");
    ASSERT_TRUE(header_of(r, "Content-Type", hv, sizeof hv) == NULL);
    om_free(r);
    ASSERT_TRUE(teardown(&f));
}

static void test_subtree_and_redirect(void)
{
    fixture_t f;
    char hv[64];
    ASSERT_TRUE(setup(&f, "path: /health/"));
    F->pipelines_ready(f.self);
    char *r = get(&f, "GET", "/health/live");
    ASSERT_EQ_INT(status_of(r), 200);
    om_free(r);
    r = get(&f, "GET", "/health");
    ASSERT_EQ_INT(status_of(r), 301);
    ASSERT_EQ_STR(header_of(r, "Location", hv, sizeof hv), "/health/");
    om_free(r);
    r = get(&f, "GET", "/healthz");
    ASSERT_EQ_INT(status_of(r), 404);
    om_free(r);
    ASSERT_TRUE(teardown(&f));
}

static void test_bad_and_oversized_requests(void)
{
    fixture_t f;
    ASSERT_TRUE(setup(&f, ""));
    const char garbage[] = "NOT HTTP AT ALL\r\n\r\n";
    char *r = exchange(&f, garbage, sizeof garbage - 1);
    ASSERT_EQ_INT(status_of(r), 400);
    om_free(r);
    r = get(&f, "GET", "/%zz");
    ASSERT_EQ_INT(status_of(r), 400);
    om_free(r);

    /* Headers beyond the bound: 431, without waiting for their end. */
    size_t big = 64 * 1024;
    char *req = om_malloc(big + 64);
    ASSERT_TRUE(req != NULL);
    int n = snprintf(req, 64, "GET / HTTP/1.1\r\nX-Big: ");
    memset(req + n, 'a', big);
    r = exchange(&f, req, (size_t)n + big);
    ASSERT_EQ_INT(status_of(r), 431);
    om_free(r);

    /* A URL longer than the bound. */
    memcpy(req, "GET /", 5);
    memset(req + 5, 'b', 4000);
    memcpy(req + 4005, " HTTP/1.1\r\n\r\n", 13);
    r = exchange(&f, req, 4018);
    ASSERT_EQ_INT(status_of(r), 431);
    om_free(r);

    /* A body beyond the bound: 413. */
    n = snprintf(req, 128, "POST / HTTP/1.1\r\nContent-Length: 100000\r\n\r\n");
    memset(req + n, 'c', 32 * 1024);
    r = exchange(&f, req, (size_t)n + 32 * 1024);
    ASSERT_EQ_INT(status_of(r), 413);
    om_free(r);
    om_free(req);

    /* A small body is read and dropped, and the request answered. */
    const char post[] = "POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello";
    r = exchange(&f, post, sizeof post - 1);
    ASSERT_EQ_INT(status_of(r), 503);
    om_free(r);
    ASSERT_TRUE(teardown(&f));
}

/* confighttp's read_header_timeout bounds how long a request may take to arrive. */
static void test_timeout(void)
{
    fixture_t f;
    ASSERT_TRUE(setup(&f, "read_header_timeout: 30ms"));
    const char partial[] = "GET / HTTP/1.1\r\nHost: x\r\n";
    uint64_t t0 = uv_hrtime();
    char *r = exchange(&f, partial, sizeof partial - 1);
    ASSERT_EQ_STR(r, ""); /* closed without an answer */
    ASSERT_TRUE(uv_hrtime() - t0 >= 25 * (uint64_t)OM_NS_PER_MS);
    om_free(r);
    ASSERT_TRUE(teardown(&f));
}

static void test_shutdown_closes_connections(void)
{
    fixture_t f;
    ASSERT_TRUE(setup(&f, ""));
    client_t c;
    const char partial[] = "GET / HTTP/1.1\r\n";
    client_open(&c, &f.loop, f.port, partial, sizeof partial - 1);
    for (int i = 0; i < 1000 && ext_health_check_conn_count(f.self) == 0; i++) {
        uv_run(&f.loop, UV_RUN_ONCE);
    }
    ASSERT_EQ_UINT(ext_health_check_conn_count(f.self), 1);
    F->shutdown(f.self, on_done, &f);
    run_until(&f.loop, &f.done);
    ASSERT_EQ_INT(f.done, 1);
    run_until(&f.loop, &c.closed);
    ASSERT_EQ_UINT(c.resp.len, 0);
    om_strbuf_free(&c.resp);
    /* teardown's second and third shutdown calls must not call done again. */
    f.done = 0;
    F->shutdown(f.self, on_done, &f);
    uv_run(&f.loop, UV_RUN_NOWAIT);
    ASSERT_EQ_INT(f.done, 0);
    f.done = 0;
    F->destroy(f.self);
    om_test_config_free(F, f.cfg);
    om_test_host_close(&f.host);
    uv_run(&f.loop, UV_RUN_DEFAULT);
    om_test_host_close(&f.host);
    ASSERT_EQ_INT(uv_loop_close(&f.loop), 0);
}

static void test_shutdown_without_start_and_port_in_use(void)
{
    fixture_t f, g;
    ASSERT_TRUE(setup(&f, ""));
    /* A second instance on the same port fails to start, then shuts down cleanly. */
    memset(&g, 0, sizeof g);
    char yaml[128];
    const char *why = "";
    snprintf(yaml, sizeof yaml, "{endpoint: '127.0.0.1:%d'}", f.port);
    g.cfg = om_test_config_load(F, yaml, &why);
    ASSERT_TRUE(g.cfg != NULL);
    om_test_host_init(&g.host, &f.loop); /* a second host on the same loop */
    om_create_args_t a = {.cfg = g.cfg,
                          .id = "health_check/2",
                          .log_name = "extension/health_check/2",
                          .host = &g.host};
    om_err_t err = {0};
    ASSERT_EQ_INT(F->create(&a, &g.self, &err), 0);
    ASSERT_EQ_INT(F->start(g.self, &err), OM_EIO);
    ASSERT_CONTAINS(err.msg, "failed to bind to address");
    F->shutdown(g.self, on_done, &g);
    run_until(&f.loop, &g.done);
    ASSERT_EQ_INT(g.done, 1);
    F->destroy(g.self);
    om_test_config_free(F, g.cfg);
    om_test_host_close(&g.host);

    /* Never started: done at once. */
    memset(&g, 0, sizeof g);
    om_test_host_init(&g.host, &f.loop);
    g.cfg = om_test_config_load(F, "", &why);
    a.cfg = g.cfg;
    ASSERT_EQ_INT(F->create(&a, &g.self, &err), 0);
    F->shutdown(g.self, on_done, &g);
    F->shutdown(g.self, on_done, &g);
    ASSERT_EQ_INT(g.done, 1);
    F->destroy(g.self);
    om_test_config_free(F, g.cfg);
    om_test_host_close(&g.host);
    ASSERT_TRUE(teardown(&f));
}

static void test_go_duration(void)
{
    static const struct {
        uint64_t ns;
        const char *want;
    } cases[] = {
        {0, "0s"},
        {1, "1ns"},
        {999, "999ns"},
        {1000, "1\xc2\xb5s"},
        {1100, "1.1\xc2\xb5s"},
        {2200000, "2.2ms"},
        {100000000, "100ms"},
        {999999999, "999.999999ms"},
        {1000000000, "1s"},
        {1500000000, "1.5s"},
        {61000000000, "1m1s"},
        {62500000000, "1m2.5s"},
        {3600000000000, "1h0m0s"},
        {3720300000000, "1h2m0.3s"},
        {UINT64_C(9223372036854775807), "2562047h47m16.854775807s"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[64];
        ext_health_check_go_duration(cases[i].ns, out, sizeof out);
        ASSERT_EQ_STR(out, cases[i].want);
        ASSERT_TRUE(is_go_duration(out));
    }
}

static void test_rfc3339(void)
{
    char out[64];
    setenv("TZ", "UTC", 1);
    tzset();
    ext_health_check_rfc3339(0, 0, out, sizeof out);
    ASSERT_EQ_STR(out, "1970-01-01T00:00:00Z");
    ext_health_check_rfc3339(1700000000, 123000000, out, sizeof out);
    ASSERT_EQ_STR(out, "2023-11-14T22:13:20.123Z");
    ext_health_check_rfc3339(1700000000, 1, out, sizeof out);
    ASSERT_EQ_STR(out, "2023-11-14T22:13:20.000000001Z");
    /* POSIX TZ signs are inverted: this zone is 2h30 east of UTC. */
    setenv("TZ", "XYZ-02:30", 1);
    tzset();
    ext_health_check_rfc3339(1700000000, 500000000, out, sizeof out);
    ASSERT_EQ_STR(out, "2023-11-15T00:43:20.5+02:30");
    ASSERT_EQ_INT(parse_rfc3339(out), 1700000000);
    setenv("TZ", "XYZ+05", 1);
    tzset();
    ext_health_check_rfc3339(1700000000, 0, out, sizeof out);
    ASSERT_EQ_STR(out, "2023-11-14T17:13:20-05:00");
    ASSERT_EQ_INT(parse_rfc3339(out), 1700000000);
    unsetenv("TZ");
    tzset();
}

/* STYLE.md §10: the lifecycle every factory gets. */
static void test_generic_lifecycle(void)
{
    om_test_lifecycle(F, "{endpoint: '127.0.0.1:0'}");
}

static om_testcerts_t C;

/* `tls` is served (it used to be accepted and ignored): a TLS client that trusts the CA gets
 * the state, with the same bytes; a plain HTTP client on that port gets a plain 400; with
 * client_ca_file a client without a certificate is refused. response_headers are added. */
static void test_tls(void)
{
    char extra[1024];
    snprintf(extra, sizeof extra,
             "tls: {cert_file: '%s', key_file: '%s'}, response_headers: {X-Frame-Options: DENY}",
             C.server_cert, C.server_key);
    fixture_t f;
    ASSERT_TRUE(setup(&f, extra));
    F->pipelines_ready(f.self);
    SSL_CTX *ctx = om_testcerts_client_ctx(&C, NULL, NULL, 0);
    om_testhttp_t h;
    om_testhttp_init(&h, f.port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 0);
    h.ctx = ctx;
    om_testhttp_run_on(&h, &f.loop);
    om_testhttp_t plain;
    om_testhttp_init(&plain, f.port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 0);
    om_testhttp_run_on(&plain, &f.loop);
    ASSERT_TRUE(teardown(&f));
    char hv[64];
    ASSERT_TRUE(h.handshake_ok);
    ASSERT_EQ_INT(h.nresp, 1);
    ASSERT_EQ_INT(h.resp[0].status, 200);
    ASSERT_CONTAINS(h.resp[0].body, "{\"status\":\"Server available\",\"upSince\":\"");
    ASSERT_EQ_STR(om_testhttp_header(&h.resp[0], "connection", hv, sizeof hv), "close");
    ASSERT_EQ_STR(om_testhttp_header(&h.resp[0], "x-frame-options", hv, sizeof hv), "DENY");
    ASSERT_TRUE(h.clean_close);
    ASSERT_EQ_INT(plain.nresp, 1);
    ASSERT_EQ_INT(plain.resp[0].status, 400);
    ASSERT_CONTAINS(plain.resp[0].body, "Client sent an HTTP request to an HTTPS server.");

    snprintf(extra, sizeof extra, "tls: {cert_file: '%s', key_file: '%s', client_ca_file: '%s'}",
             C.server_cert, C.server_key, C.ca);
    ASSERT_TRUE(setup(&f, extra));
    om_testhttp_init(&h, f.port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 0);
    h.ctx = ctx;
    om_testhttp_run_on(&h, &f.loop);
    ASSERT_TRUE(teardown(&f));
    SSL_CTX_free(ctx);
    ASSERT_EQ_INT(h.nresp, 0);
    ASSERT_CONTAINS(h.err, "certificate required");

    /* A file that does not exist fails start, naming it. */
    snprintf(extra, sizeof extra, "tls: {cert_file: '%s', key_file: '%s'}", C.missing,
             C.server_key);
    ASSERT_TRUE(!setup(&f, extra));
    F->shutdown(f.self, on_done, &f);
    run_until(&f.loop, &f.done);
    F->destroy(f.self);
    om_test_config_free(F, f.cfg);
    om_test_host_close(&f.host);
    uv_run(&f.loop, UV_RUN_DEFAULT);
    ASSERT_EQ_INT(uv_loop_close(&f.loop), 0);
}

int main(void)
{
    om_log_set_level(OM_LOG_ERROR);
    if (!om_testcerts_make(&C)) {
        fprintf(stderr, "cannot make test certificates with openssl\n");
        om_testcerts_remove(&C);
        return 1;
    }
    OM_RUN(test_config);
    OM_RUN(test_default_body_and_states);
    OM_RUN(test_custom_path_and_bodies);
    OM_RUN(test_empty_custom_bodies);
    OM_RUN(test_subtree_and_redirect);
    OM_RUN(test_bad_and_oversized_requests);
    OM_RUN(test_timeout);
    OM_RUN(test_shutdown_closes_connections);
    OM_RUN(test_shutdown_without_start_and_port_in_use);
    OM_RUN(test_go_duration);
    OM_RUN(test_rfc3339);
    OM_RUN(test_generic_lifecycle);
    OM_RUN(test_tls);
    om_testcerts_remove(&C);
    return om_test_summary();
}
