/* otlphttp_test.c: the otlphttp exporter against the scripted HTTP/1.1 test server
 * (test/lib/om_test_httpd.h), which runs on the same loop, records every request (method,
 * URL, headers, body, arrival time, connection) and answers what the test scripted (status,
 * headers, body, or no answer).
 *
 * Covered: config rules and URL composition; each signal arriving intact as protobuf and as
 * JSON; gzip, zstd and deflate bodies; configured headers; a per-signal endpoint used as
 * given; 503 + Retry-After waited for; 400 dropped and counted while later data flows;
 * connection refused and timeouts retried; connection reuse; shutdown draining the queue;
 * the response codec. Every test ends with uv_loop_close() == 0. */
#include <stdarg.h>
#include <stdlib.h>

#include <zlib.h>
#include <zstd.h>

#include "config.h"
#include "om_test.h"
#include "om_test_httpd.h"
#include "om_testdata.h"
#include "otlphttp.h"
/* For the end-to-end test against our own receiver: its bound port. */
#include "../../receivers/otlp/otlp_http.h"

/* ------------------------------------------------------------------------------------------ */
/* Fixture: a loop, the server, and one exporter instance made through the factory table      */

typedef struct fx {
    uv_loop_t loop;
    om_host_t host;
    uv_timer_t tick; /* keeps UV_RUN_ONCE returning so deadlines are checked */
    om_test_httpd_t srv;
    const om_factory_t *f;
    exp_otlphttp_cfg_t *cfg; /* om_test_config_load's */
    exp_otlphttp_t *e;
    int done;
} fx_t;

#define OTLPHTTP (find_factory("otlphttp"))
#define RUN_UNTIL(fx, cond, max_ms) OM_TEST_RUN_UNTIL(&(fx)->loop, cond, max_ms)

static void tick_cb(uv_timer_t *t)
{
    (void)t;
}

static const om_factory_t *find_kind(om_kind_t kind, const char *type)
{
    for (const om_factory_t *const *f = om_factories; *f != NULL; f++) {
        if ((*f)->kind == kind && strcmp((*f)->type, type) == 0) {
            return *f;
        }
    }
    return NULL;
}

static const om_factory_t *find_factory(const char *type)
{
    return find_kind(OM_EXPORTER, type);
}

/* Factory f's config from "c: <text>" (om_test_config_load: free with om_test_config_free);
 * its first problem in err. */
static int load_any(const om_factory_t *f, const char *text, void **cfg, om_err_t *err)
{
    const char *why = "";
    *cfg = om_test_config_load(f, text, &why);
    if (*cfg == NULL) {
        om_err_set(err, OM_ECONFIG, "%s", why);
        return OM_ECONFIG;
    }
    return 0;
}

static int load_cfg(const char *text, exp_otlphttp_cfg_t **cfg, om_err_t *err)
{
    return load_any(find_factory("otlphttp"), text, (void **)cfg, err);
}

static void fx_init(fx_t *fx)
{
    memset(fx, 0, sizeof *fx);
    uv_loop_init(&fx->loop);
    om_test_host_init(&fx->host, &fx->loop);
    uv_timer_init(&fx->loop, &fx->tick);
    uv_timer_start(&fx->tick, tick_cb, 5, 5);
    fx->f = find_factory("otlphttp");
}

/* Create and start an exporter from YAML (printf-style, usually with the server's port). */
static int fx_exporter(fx_t *fx, const char *fmt, ...) OM_PRINTF(2, 3);

static int fx_exporter(fx_t *fx, const char *fmt, ...)
{
    char text[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    om_err_t err = {0};
    int rc = load_cfg(text, &fx->cfg, &err);
    om_create_args_t a = {.cfg = fx->cfg,
                          .id = "otlphttp",
                          .log_name = "exporter/otlphttp",
                          .host = &fx->host,
                          .signals = OM_SIG_ALL};
    rc = rc ? rc : fx->f->create(&a, (void **)&fx->e, &err);
    rc = rc ? rc : fx->f->start(fx->e, &err);
    if (rc != 0) {
        fprintf(stderr, "exporter: %s\n", err.msg);
    }
    return rc;
}

static void done_cb(void *arg)
{
    *(int *)arg += 1;
}

static int fx_finish(fx_t *fx)
{
    if (fx->e != NULL) {
        fx->f->shutdown(fx->e, done_cb, &fx->done);
        RUN_UNTIL(fx, fx->done > 0, 10000);
        if (fx->done != 1) {
            return -1;
        }
        fx->f->destroy(fx->e);
    }
    om_test_config_free(fx->f, fx->cfg);
    om_test_httpd_stop(&fx->srv);
    uv_close((uv_handle_t *)&fx->tick, NULL);
    om_test_host_close(&fx->host);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    om_test_host_close(&fx->host);
    return uv_loop_close(&fx->loop);
}

/* The exporter helper's counters, read through the host's registry. */
static uint64_t sent(const fx_t *fx, om_signal_t s)
{
    int64_t v = om_test_metric(&fx->host, om_exp_metric_sent(s), "exporter", "otlphttp", NULL);
    return v < 0 ? 0 : (uint64_t)v;
}

static uint64_t failed(const fx_t *fx, om_signal_t s)
{
    int64_t v =
        om_test_metric(&fx->host, om_exp_metric_send_failed(s), "exporter", "otlphttp", NULL);
    return v < 0 ? 0 : (uint64_t)v;
}

static int consume(fx_t *fx, om_batch_t *b)
{
    om_consume_fn fn = b->signal == OM_SIG_TRACES    ? fx->f->consume_traces
                       : b->signal == OM_SIG_METRICS ? fx->f->consume_metrics
                                                     : fx->f->consume_logs;
    return fn(fx->e, b);
}

static uint8_t *pack(const om_batch_t *b, size_t *len)
{
    *len = om_batch_proto_size(b);
    uint8_t *p = malloc(*len + 1);
    om_batch_proto_pack(b, p);
    return p;
}

static uint8_t *inflate_body(const uint8_t *in, size_t n, int wbits, size_t *len)
{
    z_stream zs = {0};
    size_t cap = 1 << 20;
    uint8_t *out = malloc(cap);
    inflateInit2(&zs, wbits);
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)n;
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    int rc = inflate(&zs, Z_FINISH);
    *len = zs.total_out;
    inflateEnd(&zs);
    if (rc != Z_STREAM_END) {
        free(out);
        return NULL;
    }
    return out;
}

static const om_signal_t all_sigs[] = {OM_SIG_TRACES, OM_SIG_METRICS, OM_SIG_LOGS};
static const char *const paths[] = {"/v1/traces", "/v1/metrics", "/v1/logs"};

/* ------------------------------------------------------------------------------------------ */
/* Config                                                                                     */

static void test_config_defaults_and_rules(void)
{
    exp_otlphttp_cfg_t *c = NULL;
    om_err_t err = {0};
    ASSERT_EQ_INT(load_cfg("", &c, &err), OM_ECONFIG);
    ASSERT_CONTAINS(err.msg, "at least one endpoint must be specified");
    ASSERT_EQ_INT(load_cfg("{endpoint: 'http://h'}", &c, &err), 0);
    ASSERT_EQ_INT(c->encoding, OTLPHTTP_ENC_PROTO);
    ASSERT_EQ_INT(c->compression, OTLPHTTP_COMP_GZIP);
    ASSERT_EQ_INT(c->helper.timeout, 30 * OM_NS_PER_S);
    ASSERT_TRUE(c->helper.retry_on_failure.enabled);
    ASSERT_EQ_INT(c->helper.retry_on_failure.initial_interval, 5 * OM_NS_PER_S);
    ASSERT_EQ_INT(c->helper.sending_queue.queue_size, 1000);
    ASSERT_EQ_INT(c->helper.sending_queue.num_consumers, 10);
    om_test_config_free(OTLPHTTP, c);

    const char *bad[][2] = {
        {"{endpoint: 'localhost:4318'}", "endpoint"},
        {"{endpoint: 'ftp://h/x'}", "unsupported scheme"},
        {"{traces_endpoint: 'http://'}", "traces_endpoint: must be a valid URL"},
        {"{endpoint: 'http://h', headers: {\"a\": \"x\\r\\ny: z\"}}", "line break"},
        {"{endpoint: 'http://h', headers: {\"a b\": x}}", "invalid header name"},
        {"{endpoint: 'http://h', tls: {cert_file: /c}}", "both certificate and key"},
        {"{endpoint: 'http://h', encoding: xml}", "xml"},
        {"{endpoint: 'http://h', compression: lz4}", "lz4"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err = (om_err_t){0};
        ASSERT_TRUE(load_cfg(bad[i][0], &c, &err) != 0);
        ASSERT_CONTAINS(err.msg, bad[i][1]);
        om_test_config_free(OTLPHTTP, c);
    }
    err = (om_err_t){0};
    ASSERT_TRUE(load_cfg("{endpoint: 'http://h', auth: {authenticatr: x}}", &c, &err) != 0);
    ASSERT_CONTAINS(err.msg, "has invalid keys: authenticatr");
    om_test_config_free(OTLPHTTP, c);
    ASSERT_EQ_INT(load_cfg("{endpoint: 'https://h:1', compression: '', encoding: json, "
                           "tls: {min_version: '1.3'}}",
                           &c, &err),
                  0);
    ASSERT_EQ_INT(c->compression, OTLPHTTP_COMP_EMPTY);
    ASSERT_TRUE(exp_otlphttp_comp_name(OTLPHTTP_COMP_EMPTY) == NULL);
    ASSERT_EQ_INT(c->encoding, OTLPHTTP_ENC_JSON);
    ASSERT_EQ_INT(c->http.tls.common.min_version, OM_TLS_V1_3);
    om_test_config_free(OTLPHTTP, c);
}

static void test_signal_urls(void)
{
    exp_otlphttp_cfg_t c = {0};
    om_err_t err = {0};
    const char *cases[][3] = {
        {"http://h:1", "traces", "http://h:1/v1/traces"},
        {"http://h:1/", "metrics", "http://h:1/v1/metrics"},
        {"https://h/base", "logs", "https://h/base/v1/logs"},
        {"https://h/base/", "traces", "https://h/base/v1/traces"},
    };
    for (size_t i = 0; i < 4; i++) {
        c.endpoint = (char *)(uintptr_t)cases[i][0];
        om_signal_t s = strcmp(cases[i][1], "traces") == 0    ? OM_SIG_TRACES
                        : strcmp(cases[i][1], "metrics") == 0 ? OM_SIG_METRICS
                                                              : OM_SIG_LOGS;
        char *u = exp_otlphttp_signal_url(&c, s, &err);
        ASSERT_EQ_STR(u, cases[i][2]);
        om_free(u);
    }
    c.endpoint = NULL;
    c.traces_endpoint = "http://t/custom";
    char *u = exp_otlphttp_signal_url(&c, OM_SIG_TRACES, &err);
    ASSERT_EQ_STR(u, "http://t/custom");
    om_free(u);
    ASSERT_TRUE(exp_otlphttp_signal_url(&c, OM_SIG_METRICS, &err) == NULL);
    ASSERT_CONTAINS(err.msg, "either endpoint or metrics_endpoint must be specified");

    /* create refuses a pipeline signal without a URL. */
    exp_otlphttp_cfg_t *cfg = NULL;
    err = (om_err_t){0};
    ASSERT_EQ_INT(load_cfg("{traces_endpoint: 'http://t/x'}", &cfg, &err), 0);
    const om_factory_t *f = find_factory("otlphttp");
    ASSERT_TRUE(f != NULL);
    uv_loop_t loop;
    uv_loop_init(&loop);
    om_host_t host;
    om_test_host_init(&host, &loop);
    om_create_args_t a = {.cfg = cfg,
                          .id = "otlphttp",
                          .log_name = "otlphttp",
                          .host = &host,
                          .signals = OM_SIG_TRACES | OM_SIG_LOGS};
    void *self = NULL;
    ASSERT_EQ_INT(f->create(&a, &self, &err), OM_ECONFIG);
    ASSERT_CONTAINS(err.msg, "either endpoint or logs_endpoint must be specified");
    /* traces only: fine, and create then shutdown without start works. */
    a.signals = OM_SIG_TRACES;
    ASSERT_EQ_INT(f->create(&a, &self, &err), 0);
    int done = 0;
    f->shutdown(self, done_cb, &done);
    f->shutdown(self, done_cb, &done);
    ASSERT_EQ_INT(done, 1);
    f->destroy(self);
    om_test_config_free(f, cfg);
    om_test_host_close(&host);
    ASSERT_EQ_INT(uv_loop_close(&loop), 0);
}

/* ------------------------------------------------------------------------------------------ */
/* Data                                                                                       */

/* Each signal, one batch, through the exporter to the server: the body is exactly the
 * encoding of what was consumed. */
static void each_signal(const char *encoding, const char *comp, int wbits)
{
    fx_t fx;
    fx_init(&fx);
    ASSERT_EQ_INT(om_test_httpd_start(&fx.srv, &fx.loop, 0, NULL, NULL), 0);
    ASSERT_EQ_INT(fx_exporter(&fx,
                              "{endpoint: 'http://127.0.0.1:%d', encoding: %s, "
                              "compression: '%s', sending_queue: {num_consumers: 1}}",
                              fx.srv.port, encoding, comp),
                  0);
    bool json = strcmp(encoding, "json") == 0;
    for (int i = 0; i < 3; i++) {
        om_batch_t *b = om_testdata_simple(all_sigs[i], 4, 10 * (uint64_t)i);
        size_t want_len = 0;
        uint8_t *want = NULL;
        om_strbuf_t sb;
        om_strbuf_init(&sb, 0);
        if (json) {
            ASSERT_EQ_INT(om_otlp_json_encode(b, &sb), 0);
            want = (uint8_t *)sb.data;
            want_len = sb.len;
        } else {
            want = pack(b, &want_len);
        }
        ASSERT_EQ_INT(consume(&fx, b), 0);
        RUN_UNTIL(&fx, sent(&fx, all_sigs[i]) == 4, 5000);
        ASSERT_EQ_UINT(sent(&fx, all_sigs[i]), 4);
        ASSERT_EQ_UINT(fx.srv.n_reqs, (size_t)i + 1);
        const om_test_httpd_rec_t *r = &fx.srv.reqs[i];
        ASSERT_EQ_STR(r->method, "POST");
        ASSERT_EQ_STR(r->url, paths[i]);
        ASSERT_EQ_STR(om_test_httpd_header(r, "Content-Type"),
                      json ? "application/json" : "application/x-protobuf");
        ASSERT_EQ_STR(om_test_httpd_header(r, "User-Agent"), "OtelMon/" OM_VERSION);
        ASSERT_TRUE(om_test_httpd_header(r, "Expect") == NULL);
        size_t got_len = r->body_len;
        uint8_t *got = r->body;
        if (wbits != 0) {
            ASSERT_EQ_STR(om_test_httpd_header(r, "Content-Encoding"), comp);
            got = wbits > 0 ? inflate_body(r->body, r->body_len, wbits, &got_len) : NULL;
            if (wbits < 0) {
                got = malloc(1 << 20);
                got_len = ZSTD_decompress(got, 1 << 20, r->body, r->body_len);
                ASSERT_TRUE(!ZSTD_isError(got_len));
            }
            ASSERT_TRUE(got != NULL);
        } else {
            ASSERT_TRUE(om_test_httpd_header(r, "Content-Encoding") == NULL);
        }
        ASSERT_EQ_UINT(got_len, want_len);
        ASSERT_TRUE(memcmp(got, want, want_len) == 0);
        if (json) {
            /* And it reads back as the same items. */
            om_batch_t *back = NULL;
            om_err_t err = {0};
            ASSERT_EQ_INT(
                om_batch_decode_json(all_sigs[i], (const char *)got, got_len, 0, &back, &err), 0);
            int64_t seqs[4];
            ASSERT_EQ_UINT(om_testdata_seqs(back, seqs, 4), 4);
            ASSERT_EQ_INT(seqs[3], 10 * i + 3);
            om_batch_release(back);
            om_strbuf_free(&sb);
        } else {
            free(want);
        }
        if (got != r->body) {
            free(got);
        }
    }
    ASSERT_EQ_INT(fx.srv.accepted, 1); /* one connection, reused */
    ASSERT_EQ_INT(fx_finish(&fx), 0);
}

static void test_each_signal_proto(void)
{
    each_signal("proto", "none", 0);
}

static void test_each_signal_json(void)
{
    each_signal("json", "", 0);
}

static void test_each_signal_gzip_json(void)
{
    each_signal("json", "gzip", 15 + 16);
}

static void test_each_signal_zstd_and_deflate(void)
{
    each_signal("proto", "zstd", -1);
    each_signal("proto", "deflate", 15);
}

static void test_headers_and_custom_endpoint(void)
{
    fx_t fx;
    fx_init(&fx);
    ASSERT_EQ_INT(om_test_httpd_start(&fx.srv, &fx.loop, 0, NULL, NULL), 0);
    ASSERT_EQ_INT(fx_exporter(&fx,
                              "{endpoint: 'http://127.0.0.1:%d/', "
                              "traces_endpoint: 'http://127.0.0.1:%d/api/spans?tenant=a', "
                              "headers: {X-Scope-OrgID: tenant-1, Authorization: 'Bearer t', "
                              "user-agent: mine, X-Empty: ''}}",
                              fx.srv.port, fx.srv.port),
                  0);
    ASSERT_EQ_INT(consume(&fx, om_testdata_simple(OM_SIG_TRACES, 2, 0)), 0);
    ASSERT_EQ_INT(consume(&fx, om_testdata_simple(OM_SIG_METRICS, 2, 0)), 0);
    RUN_UNTIL(&fx, sent(&fx, OM_SIG_TRACES) == 2 && sent(&fx, OM_SIG_METRICS) == 2, 5000);
    ASSERT_EQ_UINT(fx.srv.n_reqs, 2);
    for (size_t i = 0; i < 2; i++) {
        const om_test_httpd_rec_t *r = &fx.srv.reqs[i];
        bool traces = strncmp(r->url, "/api", 4) == 0;
        ASSERT_EQ_STR(r->url, traces ? "/api/spans?tenant=a" : "/v1/metrics");
        ASSERT_EQ_STR(om_test_httpd_header(r, "X-Scope-OrgID"), "tenant-1");
        ASSERT_EQ_STR(om_test_httpd_header(r, "Authorization"), "Bearer t");
        ASSERT_EQ_STR(om_test_httpd_header(r, "User-Agent"), "mine"); /* theirs win */
        ASSERT_EQ_STR(om_test_httpd_header(r, "X-Empty"), "");
        ASSERT_EQ_STR(om_test_httpd_header(r, "Content-Encoding"), "gzip"); /* the default */
        size_t n = 0;
        uint8_t *raw = inflate_body(r->body, r->body_len, 15 + 16, &n);
        ASSERT_TRUE(raw != NULL);
        om_batch_t *b = NULL;
        om_err_t err = {0};
        ASSERT_EQ_INT(
            om_batch_decode_proto(traces ? OM_SIG_TRACES : OM_SIG_METRICS, raw, n, 0, &b, &err), 0);
        ASSERT_EQ_UINT(om_batch_count_items(b), 2);
        om_batch_release(b);
        free(raw);
    }
    ASSERT_EQ_INT(fx_finish(&fx), 0);
}

static void test_proxy_and_redirect(void)
{
    fx_t fx;
    fx_init(&fx);
    ASSERT_EQ_INT(om_test_httpd_start(&fx.srv, &fx.loop, 0, NULL, NULL), 0);
    fx.srv.script[0] = (om_test_httpd_reply_t){.status = 307, .headers = "Location: /v1/moved\r\n"};
    fx.srv.n_script = 1;
    /* The server plays the proxy: it receives the absolute URL, and the name never resolves
     * here, so only a proxied request can succeed. */
    ASSERT_EQ_INT(fx_exporter(&fx,
                              "{endpoint: 'http://otel.invalid:4318', "
                              "proxy_url: 'http://127.0.0.1:%d', compression: none, "
                              "retry_on_failure: {enabled: false}}",
                              fx.srv.port),
                  0);
    om_batch_t *b = om_testdata_simple(OM_SIG_TRACES, 2, 0);
    size_t want_len = 0;
    uint8_t *want = pack(b, &want_len);
    ASSERT_EQ_INT(consume(&fx, b), 0);
    RUN_UNTIL(&fx, sent(&fx, OM_SIG_TRACES) == 2, 5000);
    ASSERT_EQ_UINT(sent(&fx, OM_SIG_TRACES), 2);
    ASSERT_EQ_UINT(fx.srv.n_reqs, 2);
    ASSERT_EQ_STR(fx.srv.reqs[0].url, "http://otel.invalid:4318/v1/traces");
    ASSERT_EQ_STR(fx.srv.reqs[1].method, "POST"); /* 307 keeps the method and the body */
    ASSERT_EQ_STR(fx.srv.reqs[1].url, "http://otel.invalid:4318/v1/moved");
    ASSERT_EQ_UINT(fx.srv.reqs[1].body_len, want_len);
    ASSERT_TRUE(memcmp(fx.srv.reqs[1].body, want, want_len) == 0);
    free(want);
    ASSERT_EQ_INT(fx_finish(&fx), 0);
}

/* ------------------------------------------------------------------------------------------ */
/* Failures                                                                                   */

static void test_503_retry_after_waited_for(void)
{
    fx_t fx;
    fx_init(&fx);
    ASSERT_EQ_INT(om_test_httpd_start(&fx.srv, &fx.loop, 0, NULL, NULL), 0);
    static const char status_json[] = "{\"code\":14,\"message\":\"busy\"}";
    fx.srv.script[0] = (om_test_httpd_reply_t){.status = 503,
                                               .headers = "Retry-After: 1\r\n",
                                               .ctype = "application/json",
                                               .body = status_json,
                                               .body_len = sizeof status_json - 1};
    fx.srv.n_script = 1;
    ASSERT_EQ_INT(fx_exporter(&fx,
                              "{endpoint: 'http://127.0.0.1:%d', retry_on_failure: "
                              "{initial_interval: 10ms, randomization_factor: 0}}",
                              fx.srv.port),
                  0);
    ASSERT_EQ_INT(consume(&fx, om_testdata_simple(OM_SIG_LOGS, 3, 0)), 0);
    RUN_UNTIL(&fx, sent(&fx, OM_SIG_LOGS) == 3, 5000);
    ASSERT_EQ_UINT(sent(&fx, OM_SIG_LOGS), 3);
    ASSERT_EQ_UINT(failed(&fx, OM_SIG_LOGS), 0);
    ASSERT_EQ_UINT(fx.srv.n_reqs, 2);
    ASSERT_TRUE(fx.srv.reqs[1].at_ms - fx.srv.reqs[0].at_ms >= 1000);
    ASSERT_EQ_INT(fx_finish(&fx), 0);
}

static void test_400_dropped_and_later_data_flows(void)
{
    fx_t fx;
    fx_init(&fx);
    ASSERT_EQ_INT(om_test_httpd_start(&fx.srv, &fx.loop, 0, NULL, NULL), 0);
    static const uint8_t status_pb[] = {0x08, 0x03, 0x12, 0x03, 'b', 'a', 'd'};
    fx.srv.script[0] =
        (om_test_httpd_reply_t){.status = 400, .body = status_pb, .body_len = sizeof status_pb};
    fx.srv.n_script = 1;
    ASSERT_EQ_INT(fx_exporter(&fx,
                              "{endpoint: 'http://127.0.0.1:%d', retry_on_failure: "
                              "{initial_interval: 10ms}, sending_queue: {num_consumers: 1}}",
                              fx.srv.port),
                  0);
    om_log_set_level(OM_LOG_NONE); /* the drop is logged as an error */
    ASSERT_EQ_INT(consume(&fx, om_testdata_simple(OM_SIG_TRACES, 5, 0)), 0);
    ASSERT_EQ_INT(consume(&fx, om_testdata_simple(OM_SIG_TRACES, 7, 5)), 0);
    RUN_UNTIL(&fx, sent(&fx, OM_SIG_TRACES) == 7, 5000);
    om_log_set_level(OM_LOG_ERROR);
    ASSERT_EQ_UINT(failed(&fx, OM_SIG_TRACES), 5);
    ASSERT_EQ_UINT(sent(&fx, OM_SIG_TRACES), 7);
    ASSERT_EQ_UINT(fx.srv.n_reqs, 2); /* not retried */
    ASSERT_EQ_INT(fx_finish(&fx), 0);
}

static void start_server_cb(uv_timer_t *t)
{
    fx_t *fx = t->data;
    om_test_httpd_start(&fx->srv, &fx->loop, fx->srv.port, NULL, NULL);
    uv_close((uv_handle_t *)t, NULL);
}

static void test_connection_refused_is_retried(void)
{
    fx_t fx;
    fx_init(&fx);
    /* A port nobody listens on: bind one, note it, close it. */
    uv_tcp_t probe;
    uv_tcp_init(&fx.loop, &probe);
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    ASSERT_EQ_INT(uv_tcp_bind(&probe, (const struct sockaddr *)&a, 0), 0);
    struct sockaddr_storage ss;
    int len = sizeof ss;
    uv_tcp_getsockname(&probe, (struct sockaddr *)&ss, &len);
    int port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    uv_close((uv_handle_t *)&probe, NULL);
    uv_run(&fx.loop, UV_RUN_NOWAIT);
    ASSERT_EQ_INT(fx_exporter(&fx,
                              "{endpoint: 'http://127.0.0.1:%d', retry_on_failure: "
                              "{initial_interval: 1s, randomization_factor: 0}}",
                              port),
                  0);
    uint64_t t0 = uv_now(&fx.loop);
    ASSERT_EQ_INT(consume(&fx, om_testdata_simple(OM_SIG_METRICS, 2, 0)), 0);
    /* The server appears 300 ms later: the first attempt (encoded on a worker, then refused)
     * has failed long before that, even under ThreadSanitizer, and the retry comes 1 s after
     * it. */
    fx.srv.port = port;
    uv_timer_t later;
    uv_timer_init(&fx.loop, &later);
    later.data = &fx;
    uv_timer_start(&later, start_server_cb, 300, 0);
    RUN_UNTIL(&fx, sent(&fx, OM_SIG_METRICS) > 0, 5000);
    ASSERT_TRUE(fx.srv.listening);
    ASSERT_EQ_UINT(sent(&fx, OM_SIG_METRICS), 2);
    ASSERT_EQ_UINT(fx.srv.n_reqs, 1);
    ASSERT_TRUE(fx.srv.reqs[0].at_ms - t0 >= 1000);
    ASSERT_EQ_INT(fx_finish(&fx), 0);
}

static void test_timeout_is_retried(void)
{
    fx_t fx;
    fx_init(&fx);
    ASSERT_EQ_INT(om_test_httpd_start(&fx.srv, &fx.loop, 0, NULL, NULL), 0);
    fx.srv.script[0] = (om_test_httpd_reply_t){.status = 0}; /* no answer */
    fx.srv.n_script = 1;
    ASSERT_EQ_INT(fx_exporter(&fx,
                              "{endpoint: 'http://127.0.0.1:%d', timeout: 200ms, "
                              "retry_on_failure: {initial_interval: 10ms}}",
                              fx.srv.port),
                  0);
    ASSERT_EQ_INT(consume(&fx, om_testdata_simple(OM_SIG_TRACES, 1, 0)), 0);
    RUN_UNTIL(&fx, sent(&fx, OM_SIG_TRACES) == 1, 5000);
    ASSERT_EQ_UINT(sent(&fx, OM_SIG_TRACES), 1);
    ASSERT_EQ_UINT(fx.srv.n_reqs, 2);
    ASSERT_TRUE(fx.srv.reqs[1].at_ms - fx.srv.reqs[0].at_ms >= 200);
    ASSERT_EQ_INT(fx.srv.accepted, 2); /* the timed-out connection is not reused */
    ASSERT_EQ_INT(fx_finish(&fx), 0);
}

static void test_partial_success_counts_as_sent(void)
{
    fx_t fx;
    fx_init(&fx);
    ASSERT_EQ_INT(om_test_httpd_start(&fx.srv, &fx.loop, 0, NULL, NULL), 0);
    static const char body[] = "{\"partialSuccess\":{\"rejectedLogRecords\":\"1\","
                               "\"errorMessage\":\"too old\"}}";
    fx.srv.script[0] = (om_test_httpd_reply_t){.status = 200,
                                               .ctype = "application/json; charset=utf-8",
                                               .body = body,
                                               .body_len = sizeof body - 1};
    fx.srv.n_script = 1;
    ASSERT_EQ_INT(
        fx_exporter(&fx, "{endpoint: 'http://127.0.0.1:%d', encoding: json}", fx.srv.port), 0);
    om_log_set_level(OM_LOG_NONE); /* the warning */
    ASSERT_EQ_INT(consume(&fx, om_testdata_simple(OM_SIG_LOGS, 2, 0)), 0);
    RUN_UNTIL(&fx, sent(&fx, OM_SIG_LOGS) == 2, 5000);
    om_log_set_level(OM_LOG_ERROR);
    ASSERT_EQ_UINT(sent(&fx, OM_SIG_LOGS), 2);
    ASSERT_EQ_UINT(fx.srv.n_reqs, 1);
    ASSERT_EQ_INT(fx_finish(&fx), 0);
}

/* What the generic lifecycle test does with this exporter: an endpoint nobody listens on and
 * no retries: the batches are dropped and counted, and shutdown still completes. */
static void test_unreachable_without_retry_drops(void)
{
    fx_t fx;
    fx_init(&fx);
    ASSERT_EQ_INT(fx_exporter(&fx, "{endpoint: 'http://127.0.0.1:1', "
                                   "retry_on_failure: {enabled: false}}"),
                  0);
    om_log_set_level(OM_LOG_NONE);
    for (int i = 0; i < 3; i++) {
        ASSERT_EQ_INT(consume(&fx, om_testdata_simple(all_sigs[i], 2, 0)), 0);
    }
    RUN_UNTIL(&fx,
              failed(&fx, OM_SIG_TRACES) == 2 && failed(&fx, OM_SIG_METRICS) == 2 &&
                  failed(&fx, OM_SIG_LOGS) == 2,
              5000);
    om_log_set_level(OM_LOG_ERROR);
    for (int i = 0; i < 3; i++) {
        ASSERT_EQ_UINT(failed(&fx, all_sigs[i]), 2);
        ASSERT_EQ_UINT(sent(&fx, all_sigs[i]), 0);
    }
    ASSERT_EQ_INT(fx_finish(&fx), 0);
}

static void test_shutdown_drains_queue(void)
{
    fx_t fx;
    fx_init(&fx);
    ASSERT_EQ_INT(om_test_httpd_start(&fx.srv, &fx.loop, 0, NULL, NULL), 0);
    ASSERT_EQ_INT(fx_exporter(&fx,
                              "{endpoint: 'http://127.0.0.1:%d', "
                              "sending_queue: {num_consumers: 1}}",
                              fx.srv.port),
                  0);
    for (int i = 0; i < 3; i++) {
        ASSERT_EQ_INT(consume(&fx, om_testdata_simple(OM_SIG_TRACES, 5, 5 * (uint64_t)i)), 0);
    }
    ASSERT_EQ_UINT(om_exphelper_queue_size(fx.e->helper), 2); /* one in flight */
    om_log_set_level(OM_LOG_ERROR);
    fx.f->shutdown(fx.e, done_cb, &fx.done);
    ASSERT_EQ_INT(consume(&fx, om_testdata_simple(OM_SIG_TRACES, 1, 0)), OM_ESHUTDOWN);
    RUN_UNTIL(&fx, fx.done > 0, 5000);
    ASSERT_EQ_INT(fx.done, 1);
    ASSERT_EQ_UINT(fx.srv.n_reqs, 3);
    ASSERT_EQ_UINT(sent(&fx, OM_SIG_TRACES), 15);
    /* done came after the client closed (the ASan run's leak check holds it to that). */
    fx.f->shutdown(fx.e, done_cb, &fx.done); /* a second call does nothing */
    fx.f->destroy(fx.e);
    fx.e = NULL;
    ASSERT_EQ_INT(fx_finish(&fx), 0);
}

/* ------------------------------------------------------------------------------------------ */
/* Codec                                                                                      */

static void test_response_codec(void)
{
    ASSERT_EQ_INT(exp_otlphttp_ctype("application/x-protobuf"), OTLPHTTP_CT_PROTO);
    ASSERT_EQ_INT(exp_otlphttp_ctype(" Application/JSON; charset=utf-8"), OTLPHTTP_CT_JSON);
    ASSERT_EQ_INT(exp_otlphttp_ctype("text/plain"), OTLPHTTP_CT_OTHER);
    ASSERT_EQ_INT(exp_otlphttp_ctype(NULL), OTLPHTTP_CT_OTHER);

    int64_t rej = 0;
    char msg[64];
    static const uint8_t pb[] = {0x0a, 0x0b, 0x08, 0x05, 0x12, 0x07, 't',
                                 'o',  'o',  ' ',  'o',  'l',  'd'};
    ASSERT_EQ_INT(exp_otlphttp_partial_success(OM_SIG_TRACES, OTLPHTTP_CT_PROTO, pb, sizeof pb,
                                               &rej, msg, sizeof msg),
                  1);
    ASSERT_EQ_INT(rej, 5);
    ASSERT_EQ_STR(msg, "too old");
    static const uint8_t empty_ps[] = {0x0a, 0x00};
    ASSERT_EQ_INT(exp_otlphttp_partial_success(OM_SIG_LOGS, OTLPHTTP_CT_PROTO, empty_ps, 2, &rej,
                                               msg, sizeof msg),
                  0);
    ASSERT_EQ_INT(exp_otlphttp_partial_success(OM_SIG_LOGS, OTLPHTTP_CT_PROTO,
                                               (const uint8_t *)"\xff\xff", 2, &rej, msg,
                                               sizeof msg),
                  OM_EINVAL);
    const char *js = "{\"partial_success\":{\"rejected_data_points\":7}}";
    ASSERT_EQ_INT(exp_otlphttp_partial_success(OM_SIG_METRICS, OTLPHTTP_CT_JSON,
                                               (const uint8_t *)js, strlen(js), &rej, msg,
                                               sizeof msg),
                  1);
    ASSERT_EQ_INT(rej, 7);
    ASSERT_EQ_INT(exp_otlphttp_partial_success(OM_SIG_METRICS, OTLPHTTP_CT_JSON,
                                               (const uint8_t *)"{}", 2, &rej, msg, sizeof msg),
                  0);
    ASSERT_EQ_INT(exp_otlphttp_partial_success(OM_SIG_TRACES, OTLPHTTP_CT_OTHER,
                                               (const uint8_t *)"x", 1, &rej, msg, sizeof msg),
                  0);

    static const uint8_t st[] = {0x08, 0x03, 0x12, 0x03, 'b', 'a', 'd'};
    exp_otlphttp_error_message(OTLPHTTP_CT_PROTO, st, sizeof st, msg, sizeof msg);
    ASSERT_EQ_STR(msg, "bad");
    exp_otlphttp_error_message(OTLPHTTP_CT_OTHER, st, sizeof st, msg, sizeof msg);
    ASSERT_EQ_STR(msg, "bad");
    const char *sj = "{\"code\":3,\"message\":\"no \\u0001 way\"}";
    exp_otlphttp_error_message(OTLPHTTP_CT_JSON, (const uint8_t *)sj, strlen(sj), msg, sizeof msg);
    ASSERT_EQ_STR(msg, "no \\x01 way");
    const char *html = "<html><body>502 Bad Gateway from the proxy in front of it</body></html>";
    exp_otlphttp_error_message(OTLPHTTP_CT_OTHER, (const uint8_t *)html, strlen(html), msg,
                               sizeof msg);
    ASSERT_TRUE(strncmp(msg, "<html><body>502 Bad Gateway", 27) == 0);
    ASSERT_TRUE(strlen(msg) < sizeof msg);
    exp_otlphttp_error_message(OTLPHTTP_CT_JSON, NULL, 0, msg, sizeof msg);
    ASSERT_EQ_STR(msg, "");
}

static void test_encode_body_roundtrip(void)
{
    om_batch_t *b = om_testdata_simple(OM_SIG_LOGS, 3, 0);
    size_t want_len = 0;
    uint8_t *want = pack(b, &want_len);
    uint8_t *out = NULL;
    size_t len = 0;
    om_err_t err = {0};
    om_compressor_t *zlib = NULL, *gzip = NULL;
    ASSERT_EQ_INT(om_compressor_new(OM_COMP_ZLIB, 0, &zlib), 0);
    ASSERT_EQ_INT(om_compressor_new(OM_COMP_GZIP, 0, &gzip), 0);
    ASSERT_EQ_INT(exp_otlphttp_encode_body(b, OTLPHTTP_ENC_PROTO, zlib, &out, &len, &err), 0);
    size_t n = 0;
    uint8_t *raw = inflate_body(out, len, 15, &n);
    ASSERT_TRUE(raw != NULL);
    ASSERT_EQ_UINT(n, want_len);
    ASSERT_TRUE(memcmp(raw, want, n) == 0);
    free(raw);
    om_free(out);
    /* An empty request is a valid body too (0 bytes of protobuf, gzip of nothing). */
    om_batch_t *empty = om_batch_new(OM_SIG_TRACES, 0);
    ASSERT_EQ_INT(exp_otlphttp_encode_body(empty, OTLPHTTP_ENC_PROTO, gzip, &out, &len, &err), 0);
    raw = inflate_body(out, len, 31, &n);
    ASSERT_TRUE(raw != NULL);
    ASSERT_EQ_UINT(n, 0);
    free(raw);
    om_free(out);
    /* Allocation failures are reported, never a crash. */
    for (unsigned long k = 1; k < 40; k++) {
        om_alloc_fail_after(k);
        int rc = exp_otlphttp_encode_body(b, OTLPHTTP_ENC_JSON, gzip, &out, &len, &err);
        om_alloc_fail_after(0);
        ASSERT_TRUE(rc == 0 || rc == OM_ENOMEM);
        if (rc == 0) {
            om_free(out);
        }
    }
    om_compressor_free(zlib);
    om_compressor_free(gzip);
    om_batch_release(empty);
    om_batch_release(b);
    free(want);
}

/* Every level otelcol accepts for each algorithm gives a body that decodes to the very bytes
 * of the batch, through the exporter's own path (config, factory, worker, HTTP). */
static void test_each_accepted_level(void)
{
    static const struct {
        const char *comp;
        int wbits; /* zlib's windowBits to inflate with; -1: zstd */
        const char *levels[12];
    } cases[] = {
        {"gzip", 15 + 16, {"-2", "-1", "0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}},
        {"zlib", 15, {"-2", "-1", "0", "1", "5", "9"}},
        {"deflate", 15, {"1", "6"}},
        {"zstd", -1, {"-5", "0", "1", "3", "19", "30"}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (size_t l = 0; l < 12 && cases[i].levels[l] != NULL; l++) {
            fx_t fx;
            fx_init(&fx);
            ASSERT_EQ_INT(om_test_httpd_start(&fx.srv, &fx.loop, 0, NULL, NULL), 0);
            ASSERT_EQ_INT(fx_exporter(&fx,
                                      "{endpoint: 'http://127.0.0.1:%d', compression: %s, "
                                      "compression_params: {level: %s}}",
                                      fx.srv.port, cases[i].comp, cases[i].levels[l]),
                          0);
            om_batch_t *b = om_testdata_simple(OM_SIG_TRACES, 50, 0);
            size_t want_len = 0;
            uint8_t *want = pack(b, &want_len);
            ASSERT_EQ_INT(consume(&fx, b), 0);
            RUN_UNTIL(&fx, sent(&fx, OM_SIG_TRACES) == 50, 5000);
            ASSERT_EQ_UINT(fx.srv.n_reqs, 1);
            const om_test_httpd_rec_t *r = &fx.srv.reqs[0];
            ASSERT_EQ_STR(om_test_httpd_header(r, "Content-Encoding"), cases[i].comp);
            size_t got_len = 0;
            uint8_t *got = NULL;
            if (cases[i].wbits > 0) {
                got = inflate_body(r->body, r->body_len, cases[i].wbits, &got_len);
            } else {
                got = malloc(1 << 20);
                got_len = ZSTD_decompress(got, 1 << 20, r->body, r->body_len);
                ASSERT_TRUE(!ZSTD_isError(got_len));
            }
            ASSERT_TRUE(got != NULL);
            ASSERT_EQ_UINT(got_len, want_len);
            ASSERT_TRUE(memcmp(got, want, want_len) == 0);
            free(got);
            free(want);
            ASSERT_EQ_INT(fx_finish(&fx), 0);
        }
    }
}

/* A level otelcol refuses for the algorithm is a config error that names the key. */
static void test_bad_level(void)
{
    const char *bad[][2] = {
        {"{endpoint: 'http://h', compression_params: {level: 10}}",
         "compression_params::level: unsupported parameters {Level:10} for compression type "
         "\"gzip\""},
        {"{endpoint: 'http://h', compression: zlib, compression_params: {level: -3}}",
         "unsupported parameters {Level:-3} for compression type \"zlib\""},
        {"{endpoint: 'http://h', compression: deflate, compression_params: {level: 11}}",
         "{Level:11}"},
        {"{endpoint: 'http://h', compression_params: {level: fast}}", "level"},
        {"{endpoint: 'http://h', compression_params: {levle: 1}}", "levle"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        exp_otlphttp_cfg_t *c = NULL;
        om_err_t err = {0};
        ASSERT_TRUE(load_cfg(bad[i][0], &c, &err) != 0);
        ASSERT_CONTAINS(err.msg, bad[i][1]);
        om_test_config_free(OTLPHTTP, c);
    }
    /* Uncompressed: any level is accepted and unused, as in otelcol. */
    exp_otlphttp_cfg_t *c = NULL;
    om_err_t err = {0};
    ASSERT_EQ_INT(load_cfg("{endpoint: 'http://h', compression: none, "
                           "compression_params: {level: 42}}",
                           &c, &err),
                  0);
    om_test_config_free(OTLPHTTP, c);
}

/* ------------------------------------------------------------------------------------------ */
/* End to end: our exporter into our own otlp receiver                                        */

typedef struct capture {
    size_t items[OM_SIG_COUNT];
    int64_t last_seq[OM_SIG_COUNT];
    int batches;
} capture_t;

static int capture_consume(void *self, om_batch_t *b)
{
    capture_t *c = self;
    int idx = om_signal_index(b->signal);
    int64_t seqs[64];
    size_t n = om_testdata_seqs(b, seqs, 64);
    c->items[idx] += n;
    c->last_seq[idx] = n > 0 && n <= 64 ? seqs[n - 1] : -1;
    c->batches++;
    om_batch_release(b);
    return 0;
}

static void e2e(const char *encoding, const char *comp)
{
    fx_t fx;
    fx_init(&fx);
    const om_factory_t *rf = find_kind(OM_RECEIVER, "otlp");
    ASSERT_TRUE(rf != NULL);
    rcv_otlp_cfg_t *rcfg = NULL;
    om_err_t err = {0};
    ASSERT_EQ_INT(
        load_any(rf, "{protocols: {http: {endpoint: '127.0.0.1:0'}}}", (void **)&rcfg, &err), 0);
    capture_t cap = {0};
    om_create_args_t a = {.cfg = rcfg,
                          .id = "otlp",
                          .log_name = "receiver/otlp",
                          .host = &fx.host,
                          .signals = OM_SIG_ALL};
    for (int i = 0; i < OM_SIG_COUNT; i++) {
        a.next[i] = (om_consumer_t){.self = &cap, .consume = capture_consume};
    }
    rcv_otlp_t *r = NULL;
    ASSERT_EQ_INT(rf->create(&a, (void **)&r, &err), 0);
    ASSERT_EQ_INT(rf->start(r, &err), 0);
    int port = otlp_http_bound_port(r->http);
    ASSERT_TRUE(port > 0);
    ASSERT_EQ_INT(fx_exporter(&fx,
                              "{endpoint: 'http://127.0.0.1:%d', encoding: %s, "
                              "compression: %s}",
                              port, encoding, comp),
                  0);
    for (int i = 0; i < 3; i++) {
        ASSERT_EQ_INT(consume(&fx, om_testdata_simple(all_sigs[i], 20, 100)), 0);
    }
    RUN_UNTIL(&fx,
              cap.batches == 3 && sent(&fx, OM_SIG_TRACES) == 20 &&
                  sent(&fx, OM_SIG_METRICS) == 20 && sent(&fx, OM_SIG_LOGS) == 20,
              5000);
    for (int i = 0; i < 3; i++) {
        ASSERT_EQ_UINT(cap.items[i], 20);
        ASSERT_EQ_INT(cap.last_seq[i], 119);
        ASSERT_EQ_UINT(sent(&fx, all_sigs[i]), 20);
        ASSERT_EQ_UINT(failed(&fx, all_sigs[i]), 0);
    }
    int rdone = 0;
    fx.f->shutdown(fx.e, done_cb, &fx.done);
    RUN_UNTIL(&fx, fx.done > 0, 5000);
    rf->shutdown(r, done_cb, &rdone);
    RUN_UNTIL(&fx, rdone > 0, 5000);
    ASSERT_EQ_INT(rdone, 1);
    rf->destroy(r);
    om_test_config_free(rf, rcfg);
    fx.f->destroy(fx.e);
    fx.e = NULL;
    ASSERT_EQ_INT(fx_finish(&fx), 0);
}

static void test_e2e_with_otlp_receiver(void)
{
    e2e("json", "gzip");
    e2e("proto", "zstd");
    e2e("proto", "deflate");
}

/* STYLE.md §10: the lifecycle every factory gets; to a closed port without retries, so that
 * the sends fail at once. */
static void test_generic_lifecycle(void)
{
    om_test_lifecycle(find_factory("otlphttp"),
                      "{endpoint: 'http://127.0.0.1:1', retry_on_failure: {enabled: false}}");
}

int main(void)
{
    om_log_set_level(OM_LOG_ERROR);
    OM_RUN(test_config_defaults_and_rules);
    OM_RUN(test_signal_urls);
    OM_RUN(test_response_codec);
    OM_RUN(test_encode_body_roundtrip);
    OM_RUN(test_each_signal_proto);
    OM_RUN(test_each_signal_json);
    OM_RUN(test_each_signal_gzip_json);
    OM_RUN(test_each_signal_zstd_and_deflate);
    OM_RUN(test_each_accepted_level);
    OM_RUN(test_bad_level);
    OM_RUN(test_headers_and_custom_endpoint);
    OM_RUN(test_proxy_and_redirect);
    OM_RUN(test_503_retry_after_waited_for);
    OM_RUN(test_400_dropped_and_later_data_flows);
    OM_RUN(test_connection_refused_is_retried);
    OM_RUN(test_timeout_is_retried);
    OM_RUN(test_partial_success_counts_as_sent);
    OM_RUN(test_unreachable_without_retry_drops);
    OM_RUN(test_shutdown_drains_queue);
    OM_RUN(test_e2e_with_otlp_receiver);
    OM_RUN(test_generic_lifecycle);
    return om_test_summary();
}
