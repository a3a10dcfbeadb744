/* otlp_http_test.c: the OTLP/HTTP server, driven over real TCP on 127.0.0.1:0.
 *
 * The server runs on a loop in the main thread. A client thread with a blocking socket sends
 * raw HTTP and parses the responses with http_parser; it wakes the loop through a uv_async
 * when it is done, so the loop is driven with UV_RUN_ONCE and nothing sleeps. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <http_parser.h>

#include "google/rpc/status.pb-c.h"
#include "om_test.h"
#include "om_testdata.h"
#include "otlp_http.h"

#define MiB (1024 * 1024)

/* ------------------------------------------------------------------------------------------ */
/* A receiver with a capturing consumer                                                       */

typedef struct capture {
    int rc; /* what consume returns */
    int batches[OM_SIG_COUNT];
    size_t items[OM_SIG_COUNT];
    int64_t first_seqs[64]; /* each accepted batch's first "seq" attribute, in delivery order */
    size_t n_first;
} capture_t;

extern const om_factory_t rcv_otlp_factory;

static int capture_consume(void *self, om_batch_t *b)
{
    capture_t *c = self;
    int idx = om_signal_index(b->signal);
    if (c->rc == 0 && idx >= 0) {
        c->batches[idx]++;
        c->items[idx] += b->items;
        if (c->n_first < sizeof c->first_seqs / sizeof c->first_seqs[0]) {
            int64_t first = -1;
            om_testdata_seqs(b, &first, 1);
            c->first_seqs[c->n_first++] = first;
        }
    }
    om_batch_release(b);
    return c->rc;
}

typedef struct fixture {
    uv_loop_t loop;
    uv_async_t wake;
    uv_timer_t deadline;
    bool timed_out;
    om_host_t host;
    rcv_otlp_cfg_t cfg;
    rcv_otlp_t r;
    capture_t cap;
    otlp_http_server_t *srv;
    int port;
    int done_calls;
} fixture_t;

static void on_wake(uv_async_t *a)
{
    (void)a;
}

static void on_deadline(uv_timer_t *t)
{
    fixture_t *f = t->data;
    f->timed_out = true;
}

static void fx_done(void *arg)
{
    fixture_t *f = arg;
    f->done_calls++;
}

static void fx_arm_deadline(fixture_t *f)
{
    f->timed_out = false;
    uv_timer_start(&f->deadline, on_deadline, 10000, 0);
}

static void fx_init(fixture_t *f, uint64_t max_body, unsigned signals, const char *endpoint)
{
    memset(f, 0, sizeof *f);
    uv_loop_init(&f->loop);
    uv_async_init(&f->loop, &f->wake, on_wake);
    uv_unref((uv_handle_t *)&f->wake);
    uv_timer_init(&f->loop, &f->deadline);
    uv_unref((uv_handle_t *)&f->deadline);
    f->deadline.data = f;
    om_test_host_init(&f->host, &f->loop);
    f->cfg.protocols.http_present = true;
    otlp_http_cfg_t *h = &f->cfg.protocols.http;
    om_http_server_cfg_defaults(&h->server);
    h->server.endpoint = (char *)endpoint;
    h->server.max_request_body_size = max_body;
    h->traces_url_path = "/v1/traces";
    h->metrics_url_path = "/v1/metrics";
    h->logs_url_path = "/v1/logs";
    f->r.cfg = &f->cfg;
    f->r.log_name = "receiver/otlp";
    f->r.host = &f->host;
    for (int i = 0; i < OM_SIG_COUNT; i++) {
        if (signals & (1u << i)) {
            f->r.next[i].self = &f->cap;
            f->r.next[i].consume = capture_consume;
        }
    }
}

static int fx_start(fixture_t *f, uint64_t max_body, unsigned signals)
{
    fx_init(f, max_body, signals, "127.0.0.1:0");
    om_err_t err = {0};
    if (otlp_http_create(&f->r, &f->srv, &err) != 0 || otlp_http_start(f->srv, &err) != 0) {
        fprintf(stderr, "start: %s\n", err.msg);
        return -1;
    }
    f->port = otlp_http_bound_port(f->srv);
    return f->port > 0 ? 0 : -1;
}

static void fx_run_until_conns(fixture_t *f, size_t n)
{
    fx_arm_deadline(f);
    while (otlp_http_conn_count(f->srv) != n && !f->timed_out) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
}

/* Shut down, check done runs exactly once, and that the loop closes cleanly. */
static int fx_stop(fixture_t *f)
{
    otlp_http_shutdown(f->srv, fx_done, f);
    fx_arm_deadline(f);
    while (f->done_calls == 0 && !f->timed_out) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    otlp_http_shutdown(f->srv, fx_done, f); /* idempotent */
    otlp_http_destroy(f->srv);
    uv_close((uv_handle_t *)&f->wake, NULL);
    uv_close((uv_handle_t *)&f->deadline, NULL);
    om_test_host_close(&f->host);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    om_test_host_close(&f->host);
    int rc = uv_loop_close(&f->loop);
    if (rc != 0 || f->done_calls != 1) {
        fprintf(stderr, "fx_stop: loop_close %d, done called %d times\n", rc, f->done_calls);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* The client thread                                                                          */

#define MAX_PARTS 4
#define MAX_RESP 8

typedef struct resp {
    int status;
    char ctype[64], retry_after[16], allow[32], connection[16];
    char body[1024];
    size_t body_len;
} resp_t;

typedef struct client {
    int port;
    const char *parts[MAX_PARTS];
    size_t lens[MAX_PARTS];
    int reads_after[MAX_PARTS]; /* responses to have read after sending part i (0: none) */
    int nparts;
    bool abort_after_send; /* disconnect without reading */
    int want;              /* total responses to read */
    bool want_eof;         /* then read on until the server closes */
    int nresp;
    resp_t resp[MAX_RESP];
    bool eof;
    http_parser p;
    char hname[64];
    size_t hname_len;
    bool in_value;
    char *hval; /* where the current header value goes, or NULL */
    size_t hval_cap;
    uv_async_t *wake;
    atomic_int done;
} client_t;

static resp_t *cur_resp(client_t *c)
{
    return &c->resp[c->nresp < MAX_RESP ? c->nresp : MAX_RESP - 1];
}

static int c_on_field(http_parser *p, const char *at, size_t n)
{
    client_t *c = p->data;
    if (c->in_value) {
        c->in_value = false;
        c->hname_len = 0;
    }
    if (c->hname_len + n < sizeof c->hname) {
        memcpy(c->hname + c->hname_len, at, n);
        c->hname_len += n;
        c->hname[c->hname_len] = '\0';
    }
    return 0;
}

static int c_on_value(http_parser *p, const char *at, size_t n)
{
    client_t *c = p->data;
    resp_t *r = cur_resp(c);
    if (!c->in_value) {
        c->in_value = true;
        c->hval = NULL;
        struct {
            const char *name;
            char *dst;
            size_t cap;
        } wanted[] = {
            {"content-type", r->ctype, sizeof r->ctype},
            {"retry-after", r->retry_after, sizeof r->retry_after},
            {"allow", r->allow, sizeof r->allow},
            {"connection", r->connection, sizeof r->connection},
        };
        for (size_t i = 0; i < sizeof wanted / sizeof wanted[0]; i++) {
            if (strcasecmp(c->hname, wanted[i].name) == 0) {
                c->hval = wanted[i].dst;
                c->hval_cap = wanted[i].cap;
            }
        }
    }
    if (c->hval != NULL) {
        size_t len = strlen(c->hval);
        if (len + n < c->hval_cap) {
            memcpy(c->hval + len, at, n);
            c->hval[len + n] = '\0';
        }
    }
    return 0;
}

static int c_on_headers_complete(http_parser *p)
{
    client_t *c = p->data;
    cur_resp(c)->status = (int)p->status_code;
    c->in_value = false;
    c->hname_len = 0;
    return 0;
}

static int c_on_body(http_parser *p, const char *at, size_t n)
{
    resp_t *r = cur_resp(p->data);
    if (r->body_len + n < sizeof r->body) {
        memcpy(r->body + r->body_len, at, n);
        r->body_len += n;
    }
    return 0;
}

static int c_on_message_complete(http_parser *p)
{
    client_t *c = p->data;
    c->nresp++;
    return 0;
}

static const http_parser_settings client_settings = {
    .on_header_field = c_on_field,
    .on_header_value = c_on_value,
    .on_headers_complete = c_on_headers_complete,
    .on_body = c_on_body,
    .on_message_complete = c_on_message_complete,
};

static void send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR) {
            continue;
        }
        if (k <= 0) {
            return; /* the server may have closed after refusing: reading tells */
        }
        p += k;
        n -= (size_t)k;
    }
}

/* Read until `want` responses are parsed (and EOF if asked), the peer closes or 5 s pass. */
static void read_responses(client_t *c, int fd, int want, bool until_eof)
{
    char buf[16384];
    while (c->nresp < want || until_eof) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            c->eof = n == 0;
            return;
        }
        http_parser_execute(&c->p, &client_settings, buf, (size_t)n);
    }
}

static void *client_main(void *arg)
{
    client_t *c = arg;
    http_parser_init(&c->p, HTTP_RESPONSE);
    c->p.data = c;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)c->port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0) {
        for (int i = 0; i < c->nparts; i++) {
            send_all(fd, c->parts[i], c->lens[i]);
            if (c->reads_after[i] > 0) {
                read_responses(c, fd, c->reads_after[i], false);
            }
        }
        if (!c->abort_after_send) {
            read_responses(c, fd, c->want, c->want_eof);
        }
    }
    close(fd);
    atomic_store(&c->done, 1);
    uv_async_send(c->wake);
    return NULL;
}

/* The client runs on its own thread while the test drives the loop. */
static pthread_t client_start(fixture_t *f, client_t *c)
{
    c->port = f->port;
    c->wake = &f->wake;
    pthread_t t;
    pthread_create(&t, NULL, client_main, c);
    return t;
}

/* Runs the loop until the client is done (or the fixture's deadline), then joins it. */
static void client_wait(fixture_t *f, client_t *c, pthread_t t)
{
    fx_arm_deadline(f);
    uv_ref((uv_handle_t *)&f->wake);
    while (!atomic_load(&c->done) && !f->timed_out) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    uv_unref((uv_handle_t *)&f->wake);
    pthread_join(t, NULL);
}

static void run_client(fixture_t *f, client_t *c)
{
    client_wait(f, c, client_start(f, c));
}

static void client_add(client_t *c, const char *p, size_t n)
{
    c->parts[c->nparts] = p;
    c->lens[c->nparts] = n;
    c->nparts++;
}

/* ------------------------------------------------------------------------------------------ */
/* Requests                                                                                   */

static char *make_request(const char *method, const char *path, const char *extra_headers,
                          const void *body, size_t len, size_t *out_len)
{
    om_strbuf_t sb;
    om_strbuf_init(&sb, 0);
    om_strbuf_printf(&sb, "%s %s HTTP/1.1\r\nHost: test\r\n%sContent-Length: %zu\r\n\r\n", method,
                     path, extra_headers, len);
    om_strbuf_append(&sb, body, len);
    return om_strbuf_steal(&sb, out_len);
}

/* One request, one response: the common case. */
static void roundtrip(fixture_t *f, client_t *c, const char *req, size_t len)
{
    memset(c, 0, sizeof *c);
    client_add(c, req, len);
    c->want = 1;
    run_client(f, c);
}

static uint8_t *pack_traces(size_t *len)
{
    static uint8_t tid[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    static uint8_t sid[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    om_span_t s1 = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__INIT;
    s1.trace_id.data = tid;
    s1.trace_id.len = sizeof tid;
    s1.span_id.data = sid;
    s1.span_id.len = sizeof sid;
    s1.name = "one";
    om_span_t s2 = s1;
    s2.name = "two";
    om_span_t *spans[] = {&s1, &s2};
    om_scope_spans_t ss = OPENTELEMETRY__PROTO__TRACE__V1__SCOPE_SPANS__INIT;
    ss.n_spans = 2;
    ss.spans = spans;
    om_scope_spans_t *sss[] = {&ss};
    om_resource_spans_t rs = OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT;
    rs.n_scope_spans = 1;
    rs.scope_spans = sss;
    om_resource_spans_t *rss[] = {&rs};
    om_traces_req_t req =
        OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
    req.n_resource_spans = 1;
    req.resource_spans = rss;
    *len = protobuf_c_message_get_packed_size(&req.base);
    uint8_t *out = malloc(*len + 1);
    protobuf_c_message_pack(&req.base, out);
    return out;
}

static uint8_t *pack_metrics(size_t *len)
{
    om_number_dp_t dp = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__INIT;
    dp.value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE;
    dp.as_double = 1.5;
    dp.time_unix_nano = 1544712660000000000ull;
    om_number_dp_t *dps[] = {&dp};
    om_gauge_t g = OPENTELEMETRY__PROTO__METRICS__V1__GAUGE__INIT;
    g.n_data_points = 1;
    g.data_points = dps;
    om_metric_t m = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__INIT;
    m.name = "m";
    m.data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE;
    m.gauge = &g;
    om_metric_t *ms[] = {&m};
    om_scope_metrics_t sm = OPENTELEMETRY__PROTO__METRICS__V1__SCOPE_METRICS__INIT;
    sm.n_metrics = 1;
    sm.metrics = ms;
    om_scope_metrics_t *sms[] = {&sm};
    om_resource_metrics_t rm = OPENTELEMETRY__PROTO__METRICS__V1__RESOURCE_METRICS__INIT;
    rm.n_scope_metrics = 1;
    rm.scope_metrics = sms;
    om_resource_metrics_t *rms[] = {&rm};
    om_metrics_req_t req =
        OPENTELEMETRY__PROTO__COLLECTOR__METRICS__V1__EXPORT_METRICS_SERVICE_REQUEST__INIT;
    req.n_resource_metrics = 1;
    req.resource_metrics = rms;
    *len = protobuf_c_message_get_packed_size(&req.base);
    uint8_t *out = malloc(*len + 1);
    protobuf_c_message_pack(&req.base, out);
    return out;
}

static uint8_t *pack_logs(size_t *len)
{
    om_log_record_t l1 = OPENTELEMETRY__PROTO__LOGS__V1__LOG_RECORD__INIT;
    l1.time_unix_nano = 1544712660000000000ull;
    l1.severity_text = "INFO";
    om_log_record_t l2 = l1, l3 = l1;
    om_log_record_t *ls[] = {&l1, &l2, &l3};
    om_scope_logs_t sl = OPENTELEMETRY__PROTO__LOGS__V1__SCOPE_LOGS__INIT;
    sl.n_log_records = 3;
    sl.log_records = ls;
    om_scope_logs_t *sls[] = {&sl};
    om_resource_logs_t rl = OPENTELEMETRY__PROTO__LOGS__V1__RESOURCE_LOGS__INIT;
    rl.n_scope_logs = 1;
    rl.scope_logs = sls;
    om_resource_logs_t *rls[] = {&rl};
    om_logs_req_t req =
        OPENTELEMETRY__PROTO__COLLECTOR__LOGS__V1__EXPORT_LOGS_SERVICE_REQUEST__INIT;
    req.n_resource_logs = 1;
    req.resource_logs = rls;
    *len = protobuf_c_message_get_packed_size(&req.base);
    uint8_t *out = malloc(*len + 1);
    protobuf_c_message_pack(&req.base, out);
    return out;
}

static const char json_traces[] =
    "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\",\"value\":"
    "{\"stringValue\":\"t\"}}]},\"scopeSpans\":[{\"scope\":{\"name\":\"s\"},\"spans\":["
    "{\"traceId\":\"5b8efff798038103d269b633813fc60c\",\"spanId\":\"eee19b7ec3c1b174\","
    "\"name\":\"a\",\"kind\":2,\"startTimeUnixNano\":\"1544712660000000000\","
    "\"endTimeUnixNano\":\"1544712661000000000\"},"
    "{\"traceId\":\"5b8efff798038103d269b633813fc60c\",\"spanId\":\"eee19b7ec3c1b175\","
    "\"name\":\"b\"}]}]}]}";
static const char json_metrics[] =
    "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{\"name\":\"m\",\"gauge\":"
    "{\"dataPoints\":[{\"asDouble\":1.5,\"timeUnixNano\":\"1544712660000000000\"}]}}]}]}]}";
static const char json_logs[] =
    "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"timeUnixNano\":"
    "\"1544712660000000000\",\"severityNumber\":9,\"body\":{\"stringValue\":\"hello\"}},"
    "{\"body\":{\"stringValue\":\"x\"}},{\"body\":{\"stringValue\":\"y\"}}]}]}]}";

static uint8_t *compress_zlib(const void *in, size_t n, int wbits, size_t *out_len)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    deflateInit2(&zs, 6, Z_DEFLATED, wbits, 8, Z_DEFAULT_STRATEGY);
    size_t cap = deflateBound(&zs, (uLong)n) + 64;
    uint8_t *out = malloc(cap);
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)n;
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    deflate(&zs, Z_FINISH);
    *out_len = cap - zs.avail_out;
    deflateEnd(&zs);
    return out;
}

static uint8_t *compress_zstd(const void *in, size_t n, size_t *out_len)
{
    size_t cap = ZSTD_compressBound(n);
    uint8_t *out = malloc(cap);
    *out_len = ZSTD_compress(out, cap, in, n, 3);
    return out;
}

/* ------------------------------------------------------------------------------------------ */
/* Tests                                                                                      */

static const char *const paths[] = {"/v1/traces", "/v1/metrics", "/v1/logs"};
static const size_t want_items[] = {2, 1, 3};

static void test_proto_each_signal(void)
{
    fixture_t f;
    ASSERT_EQ_INT(fx_start(&f, MiB, OM_SIG_ALL), 0);
    uint8_t *(*packers[])(size_t *) = {pack_traces, pack_metrics, pack_logs};
    for (int i = 0; i < OM_SIG_COUNT; i++) {
        size_t blen, rlen;
        uint8_t *body = packers[i](&blen);
        char *req = make_request("POST", paths[i], "Content-Type: application/x-protobuf\r\n", body,
                                 blen, &rlen);
        client_t c;
        roundtrip(&f, &c, req, rlen);
        free(body);
        om_free(req);
        ASSERT_EQ_INT(c.nresp, 1);
        ASSERT_EQ_INT(c.resp[0].status, 200);
        ASSERT_EQ_STR(c.resp[0].ctype, "application/x-protobuf");
        ASSERT_EQ_UINT(c.resp[0].body_len, 0);
        ASSERT_EQ_INT(f.cap.batches[i], 1);
        ASSERT_EQ_UINT(f.cap.items[i], want_items[i]);
    }
    ASSERT_EQ_INT(fx_stop(&f), 0);
}

static void test_json_each_signal(void)
{
    fixture_t f;
    ASSERT_EQ_INT(fx_start(&f, MiB, OM_SIG_ALL), 0);
    const char *bodies[] = {json_traces, json_metrics, json_logs};
    for (int i = 0; i < OM_SIG_COUNT; i++) {
        size_t rlen;
        /* Media types are case-insensitive and parameters are ignored. */
        char *req =
            make_request("POST", paths[i], "Content-Type: Application/JSON; charset=utf-8\r\n",
                         bodies[i], strlen(bodies[i]), &rlen);
        client_t c;
        roundtrip(&f, &c, req, rlen);
        om_free(req);
        ASSERT_EQ_INT(c.resp[0].status, 200);
        ASSERT_EQ_STR(c.resp[0].ctype, "application/json");
        c.resp[0].body[c.resp[0].body_len] = '\0';
        ASSERT_EQ_STR(c.resp[0].body, "{}");
        ASSERT_EQ_INT(f.cap.batches[i], 1);
        ASSERT_EQ_UINT(f.cap.items[i], want_items[i]);
    }
    ASSERT_EQ_INT(fx_stop(&f), 0);
}

/* Airflow 2.x labels protobuf as application/json. */
static void test_protobuf_labelled_json(void)
{
    fixture_t f;
    ASSERT_EQ_INT(fx_start(&f, MiB, OM_SIG_ALL), 0);
    size_t blen, rlen;
    uint8_t *body = pack_traces(&blen);
    char *req = make_request("POST", "/v1/traces?x=1", "Content-Type: application/json\r\n", body,
                             blen, &rlen);
    client_t c;
    roundtrip(&f, &c, req, rlen);
    free(body);
    om_free(req);
    ASSERT_EQ_INT(c.resp[0].status, 200);
    ASSERT_EQ_STR(c.resp[0].ctype, "application/json");
    ASSERT_EQ_UINT(f.cap.items[0], 2);
    ASSERT_EQ_INT(fx_stop(&f), 0);
}

static void test_chunked_body(void)
{
    fixture_t f;
    ASSERT_EQ_INT(fx_start(&f, MiB, OM_SIG_ALL), 0);
    size_t blen;
    uint8_t *body = pack_traces(&blen);
    om_strbuf_t sb;
    om_strbuf_init(&sb, 0);
    om_strbuf_puts(&sb, "POST /v1/traces HTTP/1.1\r\nHost: t\r\nContent-Type: "
                        "application/x-protobuf\r\nTransfer-Encoding: chunked\r\n\r\n");
    size_t half = blen / 2;
    om_strbuf_printf(&sb, "%zx\r\n", half);
    om_strbuf_append(&sb, body, half);
    om_strbuf_printf(&sb, "\r\n%zx\r\n", blen - half);
    om_strbuf_append(&sb, body + half, blen - half);
    om_strbuf_puts(&sb, "\r\n0\r\n\r\n");
    client_t c;
    roundtrip(&f, &c, sb.data, sb.len);
    free(body);
    om_strbuf_free(&sb);
    ASSERT_EQ_INT(c.resp[0].status, 200);
    ASSERT_EQ_UINT(f.cap.items[0], 2);
    ASSERT_EQ_INT(fx_stop(&f), 0);
}

static void test_compressed_bodies(void)
{
    fixture_t f;
    ASSERT_EQ_INT(fx_start(&f, MiB, OM_SIG_ALL), 0);
    size_t blen;
    uint8_t *body = pack_logs(&blen);
    const char *names[] = {"gzip", "deflate", "zstd"};
    for (int i = 0; i < 3; i++) {
        size_t zlen, rlen;
        uint8_t *z = i == 2 ? compress_zstd(body, blen, &zlen)
                            : compress_zlib(body, blen, i == 0 ? 16 + 15 : 15, &zlen);
        char hdr[128];
        snprintf(hdr, sizeof hdr,
                 "Content-Type: application/x-protobuf\r\nContent-Encoding: %s\r\n", names[i]);
        char *req = make_request("POST", "/v1/logs", hdr, z, zlen, &rlen);
        client_t c;
        roundtrip(&f, &c, req, rlen);
        free(z);
        om_free(req);
        ASSERT_EQ_INT(c.resp[0].status, 200);
        ASSERT_EQ_INT(f.cap.batches[2], i + 1);
    }
    ASSERT_EQ_UINT(f.cap.items[2], 9);
    free(body);
    ASSERT_EQ_INT(fx_stop(&f), 0);
}

/* A gzip or deflate body of 8 KiB or more is inflated on the host's worker pool: it arrives
 * whole; a corrupt one is 400 from there; and the connection serves on. */
static void test_large_compressed_body_on_a_worker(void)
{
    fixture_t f;
    ASSERT_EQ_INT(fx_start(&f, 8 * MiB, OM_SIG_ALL), 0);
    om_testdata_shape_t shape = {.resources = 4, .scopes = 4, .items = 200};
    om_batch_t *b = om_testdata_batch(OM_SIG_TRACES, &shape);
    size_t blen = om_batch_proto_size(b);
    uint8_t *body = malloc(blen);
    om_batch_proto_pack(b, body);
    om_batch_release(b);
    for (int i = 0; i < 2; i++) {
        size_t zlen, rlen;
        uint8_t *z = compress_zlib(body, blen, i == 0 ? 16 + 15 : 15, &zlen);
        ASSERT_TRUE(zlen >= 8 * 1024);
        char hdr[128];
        snprintf(hdr, sizeof hdr,
                 "Content-Type: application/x-protobuf\r\nContent-Encoding: %s\r\n",
                 i == 0 ? "gzip" : "deflate");
        char *req = make_request("POST", "/v1/traces", hdr, z, zlen, &rlen);
        client_t c;
        roundtrip(&f, &c, req, rlen);
        om_free(req);
        ASSERT_EQ_INT(c.resp[0].status, 200);
        ASSERT_EQ_UINT(f.cap.items[0], (size_t)(i + 1) * 3200);
        z[zlen / 2] ^= 0x5a;
        z[zlen - 6] ^= 0x5a;
        req = make_request("POST", "/v1/traces", hdr, z, zlen, &rlen);
        roundtrip(&f, &c, req, rlen);
        om_free(req);
        free(z);
        ASSERT_EQ_INT(c.resp[0].status, 400);
    }
    ASSERT_TRUE(om_workers_threads(f.host.workers) > 0);
    ASSERT_EQ_INT(f.cap.batches[0], 2);
    free(body);
    ASSERT_EQ_INT(fx_stop(&f), 0);
}

/* A large body as a request: the testdata batch of 200 spans numbered from first_seq. */
static uint8_t *pack_large(uint64_t first_seq, size_t *len)
{
    om_testdata_shape_t shape = {.resources = 2, .scopes = 2, .items = 50, .first_seq = first_seq};
    om_batch_t *b = om_testdata_batch(OM_SIG_TRACES, &shape);
    *len = om_batch_proto_size(b);
    uint8_t *body = malloc(*len + 8);
    om_batch_proto_pack(b, body);
    om_batch_release(b);
    return body;
}

/* Field 1 (resource_spans), 100 bytes long, but only 3 follow: malformed wherever it sits. */
static const uint8_t bad_tail[] = {0x0a, 0x64, 1, 2, 3};

/* The google.rpc.Status message of a protobuf answer, into out. */
static void status_message(const resp_t *r, char *out, size_t n)
{
    out[0] = '\0';
    Google__Rpc__Status *st =
        google__rpc__status__unpack(NULL, r->body_len, (const uint8_t *)r->body);
    if (st != NULL) {
        snprintf(out, n, "%d %s", st->code, st->message != NULL ? st->message : "");
        google__rpc__status__free_unpacked(st, NULL);
    }
}

/* While the loop is idle a large body is decoded in place: handing it over would cost more
 * CPU in all (otlp_offload). No worker thread is ever started. */
static void test_large_bodies_decoded_in_place_while_idle(void)
{
    fixture_t f;
    ASSERT_EQ_INT(fx_start(&f, 8 * MiB, OM_SIG_ALL), 0);
    om_err_t err = {0};
    ASSERT_EQ_INT(om_obsrecv_init(&f.r.obs_http, &f.host, "otlp", "http", &err), 0);
    om_host_set_loop_busy(&f.host, 0.0);
    size_t blen, rlen;
    uint8_t *body = pack_large(1000, &blen);
    ASSERT_TRUE(blen >= 8 * 1024);
    char *req = make_request("POST", "/v1/traces", "Content-Type: application/x-protobuf\r\n", body,
                             blen, &rlen);
    client_t c;
    roundtrip(&f, &c, req, rlen);
    om_free(req);
    free(body);
    ASSERT_EQ_INT(c.resp[0].status, 200);
    ASSERT_EQ_UINT(f.cap.items[0], 200);
    ASSERT_EQ_UINT(om_workers_threads(f.host.workers), 0);
    ASSERT_EQ_INT(fx_stop(&f), 0);
}

/* Bodies of 8 KiB or more are decoded on the host's worker pool while the loop is busy
 * (otlp_offload): they arrive whole (protobuf and JSON), and every
 * answer is what the loop gives for a small body: 400 with the same message for malformed
 * protobuf, a JSON status for malformed JSON, 503 with Retry-After when the pipeline
 * refuses. */
static void test_large_bodies_decoded_on_a_worker(void)
{
    fixture_t f;
    ASSERT_EQ_INT(fx_start(&f, 8 * MiB, OM_SIG_ALL), 0);
    ASSERT_EQ_UINT(om_workers_threads(f.host.workers), 0);
    om_err_t err = {0};
    ASSERT_EQ_INT(om_obsrecv_init(&f.r.obs_http, &f.host, "otlp", "http", &err), 0);
    const char *ct_pb = "Content-Type: application/x-protobuf\r\n";
    size_t blen, rlen;
    uint8_t *body = pack_large(1000, &blen);
    ASSERT_TRUE(blen >= 8 * 1024);
    char *req = make_request("POST", "/v1/traces", ct_pb, body, blen, &rlen);
    client_t c;
    om_host_set_loop_busy(&f.host, 1.0);
    roundtrip(&f, &c, req, rlen);
    om_free(req);
    ASSERT_EQ_INT(c.resp[0].status, 200);
    ASSERT_EQ_STR(c.resp[0].ctype, "application/x-protobuf");
    ASSERT_EQ_UINT(c.resp[0].body_len, 0);
    ASSERT_EQ_UINT(f.cap.items[0], 200);
    ASSERT_EQ_UINT(f.cap.n_first, 1);
    ASSERT_EQ_INT((int)f.cap.first_seqs[0], 1000);
    ASSERT_TRUE(om_workers_threads(f.host.workers) > 0);

    /* Malformed: the same answer, small (decoded on the loop) or large (on a worker). */
    char small_msg[256], large_msg[256];
    req = make_request("POST", "/v1/traces", ct_pb, bad_tail, sizeof bad_tail, &rlen);
    roundtrip(&f, &c, req, rlen);
    om_free(req);
    ASSERT_EQ_INT(c.resp[0].status, 400);
    status_message(&c.resp[0], small_msg, sizeof small_msg);
    memcpy(body + blen, bad_tail, sizeof bad_tail);
    req = make_request("POST", "/v1/traces", ct_pb, body, blen + sizeof bad_tail, &rlen);
    roundtrip(&f, &c, req, rlen);
    om_free(req);
    ASSERT_EQ_INT(c.resp[0].status, 400);
    ASSERT_EQ_STR(c.resp[0].ctype, "application/x-protobuf");
    status_message(&c.resp[0], large_msg, sizeof large_msg);
    ASSERT_CONTAINS(small_msg, "3 invalid OTLP protobuf: ");
    ASSERT_EQ_STR(large_msg, small_msg);

    /* JSON, valid and cut short. */
    om_testdata_shape_t shape = {.resources = 2, .scopes = 2, .items = 50};
    om_batch_t *b = om_testdata_batch(OM_SIG_TRACES, &shape);
    om_strbuf_t js;
    om_strbuf_init(&js, 0);
    ASSERT_EQ_INT(om_otlp_json_encode(b, &js), 0);
    om_batch_release(b);
    ASSERT_TRUE(js.len >= 8 * 1024);
    const char *ct_json = "Content-Type: application/json\r\n";
    req = make_request("POST", "/v1/traces", ct_json, js.data, js.len, &rlen);
    roundtrip(&f, &c, req, rlen);
    om_free(req);
    ASSERT_EQ_INT(c.resp[0].status, 200);
    ASSERT_EQ_STR(c.resp[0].ctype, "application/json");
    ASSERT_EQ_UINT(f.cap.items[0], 400);
    req = make_request("POST", "/v1/traces", ct_json, js.data, js.len - 10, &rlen);
    roundtrip(&f, &c, req, rlen);
    om_free(req);
    om_strbuf_free(&js);
    ASSERT_EQ_INT(c.resp[0].status, 400);
    ASSERT_EQ_STR(c.resp[0].ctype, "application/json");
    c.resp[0].body[c.resp[0].body_len] = '\0';
    ASSERT_CONTAINS(c.resp[0].body, "invalid OTLP JSON");

    /* The pipeline refuses: retryable, as for a small body. */
    f.cap.rc = OM_EREFUSED;
    req = make_request("POST", "/v1/traces", ct_pb, body, blen, &rlen);
    roundtrip(&f, &c, req, rlen);
    om_free(req);
    ASSERT_EQ_INT(c.resp[0].status, 503);
    ASSERT_EQ_STR(c.resp[0].retry_after, "1");
    ASSERT_EQ_INT(f.cap.batches[0], 2);
    /* The receiver's own counters, as for a request decoded on the loop. */
    ASSERT_EQ_INT((int)om_test_metric(&f.host, "otelcol_receiver_accepted_spans", "receiver",
                                      "otlp", "transport", "http", NULL),
                  400);
    ASSERT_EQ_INT((int)om_test_metric(&f.host, "otelcol_receiver_refused_spans", "receiver", "otlp",
                                      "transport", "http", NULL),
                  200);
    free(body);
    ASSERT_EQ_INT(fx_stop(&f), 0);
}

#define ORDER_CLIENTS 4
#define ORDER_REQUESTS 7

/* Several connections at once, each pipelining large bodies (decoded on workers, finishing in
 * any order) between small ones (decoded on the loop at once) and malformed ones: every
 * connection gets its answers in the order of its requests, and its batches reach the
 * pipeline in that order too. */
static void test_pipelined_answers_keep_request_order(void)
{
    fixture_t f;
    ASSERT_EQ_INT(fx_start(&f, 8 * MiB, OM_SIG_ALL), 0);
    const char *ct_pb = "Content-Type: application/x-protobuf\r\n";
    const char *ct_gz = "Content-Type: application/x-protobuf\r\nContent-Encoding: gzip\r\n";
    static const int want[ORDER_REQUESTS] = {200, 200, 200, 400, 200, 400, 200};
    om_strbuf_t sb[ORDER_CLIENTS];
    client_t c[ORDER_CLIENTS];
    pthread_t t[ORDER_CLIENTS];
    for (int k = 0; k < ORDER_CLIENTS; k++) {
        /* Client k's large requests are numbered k*10000 + j*1000 (j: the large one's rank). */
        om_strbuf_init(&sb[k], 0);
        size_t blen, slen, zlen, rlen;
        uint8_t *small = pack_traces(&slen);
        for (int j = 0; j < 4; j++) {
            uint8_t *body = pack_large((uint64_t)(k * 10000 + j * 1000), &blen);
            const char *ct = ct_pb;
            if (j == 2) {
                uint8_t *z = compress_zlib(body, blen, 16 + 15, &zlen);
                free(body);
                body = z;
                blen = zlen;
                ct = ct_gz;
            }
            char *req = make_request("POST", "/v1/traces", ct, body, blen, &rlen);
            om_strbuf_append(&sb[k], req, rlen);
            om_free(req);
            if (j == 0) { /* then a small one, on the loop */
                req = make_request("POST", "/v1/traces", ct_pb, small, slen, &rlen);
                om_strbuf_append(&sb[k], req, rlen);
                om_free(req);
            }
            if (j == 1) { /* then a large malformed one, on a worker */
                memcpy(body + blen, bad_tail, sizeof bad_tail);
                req =
                    make_request("POST", "/v1/traces", ct_pb, body, blen + sizeof bad_tail, &rlen);
                om_strbuf_append(&sb[k], req, rlen);
                om_free(req);
            }
            if (j == 2) { /* then a small malformed one, on the loop */
                req = make_request("POST", "/v1/traces", ct_pb, bad_tail, sizeof bad_tail, &rlen);
                om_strbuf_append(&sb[k], req, rlen);
                om_free(req);
            }
            free(body);
        }
        free(small);
        ASSERT_TRUE(!sb[k].failed);
        memset(&c[k], 0, sizeof c[k]);
        client_add(&c[k], sb[k].data, sb[k].len);
        c[k].want = ORDER_REQUESTS;
        t[k] = client_start(&f, &c[k]);
    }
    fx_arm_deadline(&f);
    uv_ref((uv_handle_t *)&f.wake);
    for (int k = 0; k < ORDER_CLIENTS; k++) {
        while (!atomic_load(&c[k].done) && !f.timed_out) {
            uv_run(&f.loop, UV_RUN_ONCE);
        }
    }
    uv_unref((uv_handle_t *)&f.wake);
    for (int k = 0; k < ORDER_CLIENTS; k++) {
        pthread_join(t[k], NULL);
        om_strbuf_free(&sb[k]);
        ASSERT_EQ_INT(c[k].nresp, ORDER_REQUESTS);
        for (int i = 0; i < ORDER_REQUESTS; i++) {
            ASSERT_EQ_INT(c[k].resp[i].status, want[i]);
        }
    }
    /* Per connection, its large batches arrived in the order sent (-1: the small ones). */
    ASSERT_EQ_UINT(f.cap.n_first, ORDER_CLIENTS * 5);
    for (int k = 0; k < ORDER_CLIENTS; k++) {
        int64_t last = -1;
        int seen = 0;
        for (size_t i = 0; i < f.cap.n_first; i++) {
            int64_t s = f.cap.first_seqs[i];
            if (s >= k * 10000 && s < (k + 1) * 10000) {
                ASSERT_TRUE(s > last);
                last = s;
                seen++;
            }
        }
        ASSERT_EQ_INT(seen, 4);
    }
    ASSERT_TRUE(om_workers_threads(f.host.workers) > 0);
    ASSERT_EQ_INT(fx_stop(&f), 0);
}

static void test_keepalive_and_pipelining(void)
{
    fixture_t f;
    ASSERT_EQ_INT(fx_start(&f, MiB, OM_SIG_ALL), 0);
    size_t blen, r1, r2;
    uint8_t *body = pack_traces(&blen);
    char *req1 = make_request("POST", "/v1/traces", "Content-Type: application/x-protobuf\r\n",
                              body, blen, &r1);
    char *req2 = make_request("POST", "/v1/nope", "Content-Type: application/x-protobuf\r\n", body,
                              blen, &r2);
    /* Keep-alive: two requests one after the other on one connection. */
    client_t c;
    memset(&c, 0, sizeof c);
    client_add(&c, req1, r1);
    c.reads_after[0] = 1;
    client_add(&c, req1, r1);
    c.want = 2;
    run_client(&f, &c);
    ASSERT_EQ_INT(c.nresp, 2);
    ASSERT_EQ_INT(c.resp[0].status, 200);
    ASSERT_EQ_INT(c.resp[1].status, 200);
    ASSERT_EQ_INT(f.cap.batches[0], 2);
    /* Pipelining: both requests in one write, answers in order. */
    om_strbuf_t sb;
    om_strbuf_init(&sb, 0);
    om_strbuf_append(&sb, req1, r1);
    om_strbuf_append(&sb, req2, r2);
    om_strbuf_append(&sb, req1, r1);
    memset(&c, 0, sizeof c);
    client_add(&c, sb.data, sb.len);
    c.want = 3;
    run_client(&f, &c);
    om_strbuf_free(&sb);
    free(body);
    om_free(req1);
    om_free(req2);
    ASSERT_EQ_INT(c.nresp, 3);
    ASSERT_EQ_INT(c.resp[0].status, 200);
    ASSERT_EQ_INT(c.resp[1].status, 404);
    ASSERT_EQ_INT(c.resp[2].status, 200);
    ASSERT_EQ_INT(f.cap.batches[0], 4);
    ASSERT_EQ_INT(fx_stop(&f), 0);
}

static void test_malformed_payloads(void)
{
    fixture_t f;
    ASSERT_EQ_INT(fx_start(&f, MiB, OM_SIG_ALL), 0);
    size_t rlen;
    /* Field 1, length 100, but only 3 bytes follow. */
    static const uint8_t bad_pb[] = {0x0a, 0x64, 1, 2, 3};
    char *req = make_request("POST", "/v1/traces", "Content-Type: application/x-protobuf\r\n",
                             bad_pb, sizeof bad_pb, &rlen);
    client_t c;
    roundtrip(&f, &c, req, rlen);
    om_free(req);
    ASSERT_EQ_INT(c.resp[0].status, 400);
    ASSERT_EQ_STR(c.resp[0].ctype, "application/x-protobuf");
    Google__Rpc__Status *st =
        google__rpc__status__unpack(NULL, c.resp[0].body_len, (const uint8_t *)c.resp[0].body);
    ASSERT_TRUE(st != NULL);
    ASSERT_EQ_INT(st->code, 3); /* INVALID_ARGUMENT */
    ASSERT_TRUE(st->message != NULL && st->message[0] != '\0');
    google__rpc__status__free_unpacked(st, NULL);

    static const char bad_json[] = "{\"resourceSpans\": [ {";
    req = make_request("POST", "/v1/traces", "Content-Type: application/json\r\n", bad_json,
                       strlen(bad_json), &rlen);
    roundtrip(&f, &c, req, rlen);
    om_free(req);
    ASSERT_EQ_INT(c.resp[0].status, 400);
    ASSERT_EQ_STR(c.resp[0].ctype, "application/json");
    c.resp[0].body[c.resp[0].body_len] = '\0';
    ASSERT_CONTAINS(c.resp[0].body, "\"code\"");
    ASSERT_CONTAINS(c.resp[0].body, "3");
    ASSERT_EQ_INT(f.cap.batches[0], 0);
    ASSERT_EQ_INT(fx_stop(&f), 0);
}

static void test_routing_errors(void)
{
    fixture_t f;
    ASSERT_EQ_INT(fx_start(&f, MiB, OM_SIG_TRACES), 0);
    size_t rlen;
    client_t c;
    char *req = make_request("POST", "/v1/traces", "Content-Type: text/plain\r\n", "x", 1, &rlen);
    roundtrip(&f, &c, req, rlen);
    om_free(req);
    ASSERT_EQ_INT(c.resp[0].status, 415);

    req = make_request("POST", "/v1/traces", "", "x", 1, &rlen); /* no Content-Type */
    roundtrip(&f, &c, req, rlen);
    om_free(req);
    ASSERT_EQ_INT(c.resp[0].status, 415);

    req = make_request("POST", "/other", "Content-Type: application/json\r\n", "{}", 2, &rlen);
    roundtrip(&f, &c, req, rlen);
    om_free(req);
    ASSERT_EQ_INT(c.resp[0].status, 404);

    /* Logs are not wired: their path is not served. */
    req = make_request("POST", "/v1/logs", "Content-Type: application/json\r\n", "{}", 2, &rlen);
    roundtrip(&f, &c, req, rlen);
    om_free(req);
    ASSERT_EQ_INT(c.resp[0].status, 404);

    req = make_request("GET", "/v1/traces", "", "", 0, &rlen);
    roundtrip(&f, &c, req, rlen);
    om_free(req);
    ASSERT_EQ_INT(c.resp[0].status, 405);
    ASSERT_EQ_STR(c.resp[0].allow, "POST");

    req =
        make_request("POST", "/v1/traces",
                     "Content-Type: application/json\r\nContent-Encoding: br\r\n", "{}", 2, &rlen);
    roundtrip(&f, &c, req, rlen);
    om_free(req);
    ASSERT_EQ_INT(c.resp[0].status, 400);
    ASSERT_EQ_STR(c.resp[0].ctype, "application/json");
    ASSERT_EQ_INT(fx_stop(&f), 0);
}

static void test_too_large(void)
{
    fixture_t f;
    ASSERT_EQ_INT(fx_start(&f, MiB, OM_SIG_ALL), 0);
    size_t big = 2 * MiB;
    char *zeros = calloc(1, 10 * MiB);
    size_t rlen;
    client_t c;
    /* Declared too large: refused at the headers, the connection closes. */
    char *req = make_request("POST", "/v1/traces", "Content-Type: application/x-protobuf\r\n",
                             zeros, big, &rlen);
    memset(&c, 0, sizeof c);
    client_add(&c, req, rlen);
    c.want = 1;
    c.want_eof = true;
    run_client(&f, &c);
    om_free(req);
    ASSERT_EQ_INT(c.resp[0].status, 413);
    ASSERT_TRUE(c.eof);

    /* Chunked: refused as soon as the limit is passed. */
    om_strbuf_t sb;
    om_strbuf_init(&sb, 0);
    om_strbuf_puts(&sb, "POST /v1/traces HTTP/1.1\r\nContent-Type: application/x-protobuf\r\n"
                        "Transfer-Encoding: chunked\r\n\r\n");
    for (int i = 0; i < 3; i++) {
        om_strbuf_printf(&sb, "%x\r\n", 512 * 1024);
        om_strbuf_append(&sb, zeros, 512 * 1024);
        om_strbuf_puts(&sb, "\r\n");
    }
    om_strbuf_puts(&sb, "0\r\n\r\n");
    memset(&c, 0, sizeof c);
    client_add(&c, sb.data, sb.len);
    c.want = 1;
    c.want_eof = true;
    run_client(&f, &c);
    om_strbuf_free(&sb);
    ASSERT_EQ_INT(c.resp[0].status, 413);
    ASSERT_TRUE(c.eof);

    /* A gzip bomb: 10 MiB of zeros in about 10 KiB. */
    size_t zlen;
    uint8_t *z = compress_zlib(zeros, 10 * MiB, 16 + 15, &zlen);
    req = make_request("POST", "/v1/traces",
                       "Content-Type: application/x-protobuf\r\nContent-Encoding: gzip\r\n", z,
                       zlen, &rlen);
    roundtrip(&f, &c, req, rlen);
    free(z);
    om_free(req);
    ASSERT_TRUE(zlen < 64 * 1024);
    ASSERT_EQ_INT(c.resp[0].status, 413);

    z = compress_zstd(zeros, 10 * MiB, &zlen);
    req = make_request("POST", "/v1/traces",
                       "Content-Type: application/x-protobuf\r\nContent-Encoding: zstd\r\n", z,
                       zlen, &rlen);
    roundtrip(&f, &c, req, rlen);
    free(z);
    om_free(req);
    ASSERT_EQ_INT(c.resp[0].status, 413);
    free(zeros);
    ASSERT_EQ_INT(f.cap.batches[0], 0);
    ASSERT_EQ_INT(fx_stop(&f), 0);
}

static void test_corrupt_gzip(void)
{
    fixture_t f;
    ASSERT_EQ_INT(fx_start(&f, MiB, OM_SIG_ALL), 0);
    size_t blen, zlen, rlen;
    uint8_t *body = pack_traces(&blen);
    uint8_t *z = compress_zlib(body, blen, 16 + 15, &zlen);
    z[zlen / 2] ^= 0xff;
    z[zlen / 2 + 1] ^= 0xff;
    char *req = make_request("POST", "/v1/traces",
                             "Content-Type: application/x-protobuf\r\nContent-Encoding: gzip\r\n",
                             z, zlen, &rlen);
    client_t c;
    roundtrip(&f, &c, req, rlen);
    om_free(req);
    ASSERT_EQ_INT(c.resp[0].status, 400);
    /* Truncated: the stream never ends. */
    req = make_request("POST", "/v1/traces",
                       "Content-Type: application/x-protobuf\r\nContent-Encoding: gzip\r\n", z, 4,
                       &rlen);
    roundtrip(&f, &c, req, rlen);
    om_free(req);
    free(z);
    free(body);
    ASSERT_EQ_INT(c.resp[0].status, 400);
    ASSERT_EQ_INT(f.cap.batches[0], 0);
    ASSERT_EQ_INT(fx_stop(&f), 0);
}

static void test_refused_is_retryable(void)
{
    fixture_t f;
    ASSERT_EQ_INT(fx_start(&f, MiB, OM_SIG_ALL), 0);
    f.cap.rc = OM_EREFUSED;
    size_t rlen;
    char *req = make_request("POST", "/v1/logs", "Content-Type: application/json\r\n", json_logs,
                             strlen(json_logs), &rlen);
    client_t c;
    roundtrip(&f, &c, req, rlen);
    om_free(req);
    ASSERT_EQ_INT(c.resp[0].status, 503);
    ASSERT_EQ_STR(c.resp[0].retry_after, "1");
    ASSERT_EQ_STR(c.resp[0].ctype, "application/json");
    ASSERT_EQ_INT(fx_stop(&f), 0);
}

static void on_window(uv_timer_t *t)
{
    *(bool *)t->data = true;
}

/* Runs the loop for ms (nothing to wait for: this is how long something must not happen). */
static void run_for(fixture_t *f, uint64_t ms)
{
    uv_timer_t t;
    bool over = false;
    uv_timer_init(&f->loop, &t);
    t.data = &over;
    uv_timer_start(&t, on_window, ms, 0);
    while (!over) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&f->loop, UV_RUN_NOWAIT);
}

/* While intake is paused (the collector holds more than the limit and an export is pending),
 * a request is not read, so the client waits instead of failing; once the export completes
 * it is read and answered. */
static void test_paused_intake_holds_requests_until_it_resumes(void)
{
    fixture_t f;
    ASSERT_EQ_INT(fx_start(&f, MiB, OM_SIG_ALL), 0);
    om_testdata_hold_t hold;
    ASSERT_EQ_INT(om_testdata_hold_start(&hold, &f.host, 10), 0);
    om_intake_set_default(f.host.intake, 1, OM_INTAKE_HOLD_MS_DEFAULT);
    size_t blen, rlen;
    uint8_t *body = pack_logs(&blen);
    char *req = make_request("POST", "/v1/logs", "Content-Type: application/x-protobuf\r\n", body,
                             blen, &rlen);
    client_t c;
    memset(&c, 0, sizeof c);
    client_add(&c, req, rlen);
    c.want = 1;
    pthread_t t = client_start(&f, &c);
    fx_run_until_conns(&f, 1);
    run_for(&f, 300);
    int during = f.cap.batches[2];
    bool answered_during = atomic_load(&c.done) != 0;
    om_testdata_hold_release(&hold);
    client_wait(&f, &c, t);
    om_testdata_hold_stop(&hold);
    free(body);
    om_free(req);
    ASSERT_EQ_INT(during, 0);
    ASSERT_TRUE(!answered_during);
    ASSERT_EQ_INT(c.nresp, 1);
    ASSERT_EQ_INT(c.resp[0].status, 200);
    ASSERT_EQ_INT(f.cap.batches[2], 1);
    ASSERT_EQ_INT(fx_stop(&f), 0);
}

/* A pause that outlasts the hold time (a dead backend) does not leave clients to their own
 * timeouts: the held request is read and refused with a retryable 503, as is the next one,
 * and nothing reaches the pipeline; once the backlog is delivered, requests are taken again. */
static void test_a_long_pause_refuses_requests_as_retryable(void)
{
    fixture_t f;
    ASSERT_EQ_INT(fx_start(&f, MiB, OM_SIG_ALL), 0);
    om_testdata_hold_t hold;
    ASSERT_EQ_INT(om_testdata_hold_start(&hold, &f.host, 10), 0);
    om_intake_set_default(f.host.intake, 1, 200);
    size_t blen, rlen;
    uint8_t *body = pack_logs(&blen);
    char *req = make_request("POST", "/v1/logs", "Content-Type: application/x-protobuf\r\n", body,
                             blen, &rlen);
    client_t c;
    memset(&c, 0, sizeof c);
    client_add(&c, req, rlen);
    c.reads_after[0] = 1;
    client_add(&c, req, rlen);
    c.want = 2;
    pthread_t t = client_start(&f, &c);
    fx_run_until_conns(&f, 1);
    run_for(&f, 100);
    bool answered_within_hold = atomic_load(&c.done) != 0;
    client_wait(&f, &c, t);
    ASSERT_TRUE(!answered_within_hold);
    ASSERT_EQ_INT(c.nresp, 2);
    for (int i = 0; i < 2; i++) {
        ASSERT_EQ_INT(c.resp[i].status, 503);
        ASSERT_EQ_STR(c.resp[i].retry_after, "1");
        ASSERT_TRUE(strstr(c.resp[i].body, "undelivered data") != NULL);
    }
    ASSERT_EQ_INT(f.cap.batches[2], 0);

    om_testdata_hold_release(&hold);
    roundtrip(&f, &c, req, rlen);
    ASSERT_EQ_INT(c.resp[0].status, 200);
    ASSERT_EQ_INT(f.cap.batches[2], 1);
    om_testdata_hold_stop(&hold);
    free(body);
    om_free(req);
    ASSERT_EQ_INT(fx_stop(&f), 0);
}

static void test_disconnect_mid_body(void)
{
    fixture_t f;
    ASSERT_EQ_INT(fx_start(&f, MiB, OM_SIG_ALL), 0);
    size_t blen, rlen;
    uint8_t *body = pack_traces(&blen);
    char *req = make_request("POST", "/v1/traces", "Content-Type: application/x-protobuf\r\n", body,
                             blen, &rlen);
    client_t c;
    memset(&c, 0, sizeof c);
    client_add(&c, req, rlen - 5);
    c.abort_after_send = true;
    run_client(&f, &c);
    fx_run_until_conns(&f, 0);
    ASSERT_EQ_UINT(otlp_http_conn_count(f.srv), 0);
    ASSERT_EQ_INT(f.cap.batches[0], 0);
    roundtrip(&f, &c, req, rlen);
    om_free(req);
    free(body);
    ASSERT_EQ_INT(c.resp[0].status, 200);
    ASSERT_EQ_INT(f.cap.batches[0], 1);
    ASSERT_EQ_INT(fx_stop(&f), 0);
}

static void test_expect_continue_and_close(void)
{
    fixture_t f;
    ASSERT_EQ_INT(fx_start(&f, MiB, OM_SIG_ALL), 0);
    size_t blen;
    uint8_t *body = pack_traces(&blen);
    char hdr[256];
    int hlen = snprintf(hdr, sizeof hdr,
                        "POST /v1/traces HTTP/1.1\r\nContent-Type: application/x-protobuf\r\n"
                        "Expect: 100-continue\r\nConnection: close\r\nContent-Length: %zu\r\n\r\n",
                        blen);
    client_t c;
    memset(&c, 0, sizeof c);
    client_add(&c, hdr, (size_t)hlen);
    c.reads_after[0] = 1;
    client_add(&c, (const char *)body, blen);
    c.want = 2;
    c.want_eof = true;
    run_client(&f, &c);
    free(body);
    ASSERT_EQ_INT(c.nresp, 2);
    ASSERT_EQ_INT(c.resp[0].status, 100);
    ASSERT_EQ_INT(c.resp[1].status, 200);
    ASSERT_EQ_STR(c.resp[1].connection, "close");
    ASSERT_TRUE(c.eof);
    ASSERT_EQ_INT(f.cap.batches[0], 1);
    ASSERT_EQ_INT(fx_stop(&f), 0);
}

static void test_bad_http(void)
{
    fixture_t f;
    ASSERT_EQ_INT(fx_start(&f, MiB, OM_SIG_ALL), 0);
    static const char garbage[] = "POST /v1/traces HTTP/1.1\r\nContent-Length: zz\r\n\r\n";
    client_t c;
    memset(&c, 0, sizeof c);
    client_add(&c, garbage, strlen(garbage));
    c.want = 1;
    c.want_eof = true;
    run_client(&f, &c);
    ASSERT_EQ_INT(c.resp[0].status, 400);
    ASSERT_TRUE(c.eof);
    /* Headers beyond http_parser's 80 KiB limit. */
    om_strbuf_t sb;
    om_strbuf_init(&sb, 0);
    om_strbuf_puts(&sb, "POST /v1/traces HTTP/1.1\r\n");
    for (int i = 0; i < 2000; i++) {
        om_strbuf_printf(&sb, "X-Filler-%d: %050d\r\n", i, i);
    }
    om_strbuf_puts(&sb, "\r\n");
    memset(&c, 0, sizeof c);
    client_add(&c, sb.data, sb.len);
    c.want = 1;
    run_client(&f, &c);
    om_strbuf_free(&sb);
    ASSERT_EQ_INT(c.resp[0].status, 431);
    ASSERT_EQ_INT(fx_stop(&f), 0);
}

static void test_empty_request(void)
{
    fixture_t f;
    ASSERT_EQ_INT(fx_start(&f, MiB, OM_SIG_ALL), 0);
    size_t rlen;
    char *req = make_request("POST", "/v1/metrics", "Content-Type: application/x-protobuf\r\n", "",
                             0, &rlen);
    client_t c;
    roundtrip(&f, &c, req, rlen);
    om_free(req);
    ASSERT_EQ_INT(c.resp[0].status, 200);
    ASSERT_EQ_INT(f.cap.batches[1], 0); /* nothing to deliver */
    ASSERT_EQ_INT(fx_stop(&f), 0);
}

/* A connection that sends nothing is closed after read_header_timeout (the core server's
 * own tests cover every timeout). */
static void test_idle_timeout(void)
{
    fixture_t f;
    fx_init(&f, MiB, OM_SIG_ALL, "127.0.0.1:0");
    f.cfg.protocols.http.server.read_header_timeout = 50 * OM_NS_PER_MS;
    om_err_t err = {0};
    ASSERT_EQ_INT(otlp_http_create(&f.r, &f.srv, &err), 0);
    ASSERT_EQ_INT(otlp_http_start(f.srv, &err), 0);
    f.port = otlp_http_bound_port(f.srv);
    client_t c;
    memset(&c, 0, sizeof c);
    c.want_eof = true;
    run_client(&f, &c);
    ASSERT_TRUE(c.eof);
    ASSERT_EQ_INT(c.nresp, 0);
    ASSERT_EQ_INT(fx_stop(&f), 0);
}

static int connect_blocking(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Shutdown closes an idle keep-alive connection and lets a request being received finish;
 * the loop closes cleanly afterwards (checked by fx_stop). The socket work here is done from
 * the loop thread: connect and small sends complete in the kernel without the server. */
static void test_shutdown_with_connections(void)
{
    fixture_t f;
    ASSERT_EQ_INT(fx_start(&f, MiB, OM_SIG_ALL), 0);
    size_t blen, rlen;
    uint8_t *body = pack_traces(&blen);
    char *req = make_request("POST", "/v1/traces", "Content-Type: application/x-protobuf\r\n", body,
                             blen, &rlen);
    int idle = connect_blocking(f.port);
    int busy = connect_blocking(f.port);
    ASSERT_TRUE(idle >= 0 && busy >= 0);
    send_all(idle, req, rlen);
    send_all(busy, req, rlen - 3);
    fx_arm_deadline(&f);
    while ((f.cap.batches[0] < 1 || otlp_http_busy_count(f.srv) < 1) && !f.timed_out) {
        uv_run(&f.loop, UV_RUN_ONCE);
    }
    ASSERT_EQ_INT(f.cap.batches[0], 1);
    otlp_http_shutdown(f.srv, fx_done, &f);
    ASSERT_EQ_INT(f.done_calls, 0); /* the busy connection is still receiving */
    send_all(busy, req + rlen - 3, 3);
    client_t c;
    memset(&c, 0, sizeof c);
    fx_arm_deadline(&f);
    while (f.done_calls == 0 && !f.timed_out) {
        uv_run(&f.loop, UV_RUN_ONCE);
    }
    ASSERT_EQ_INT(f.done_calls, 1);
    ASSERT_EQ_INT(f.cap.batches[0], 2);
    /* Both got their answer; the busy one was told the connection closes. */
    http_parser_init(&c.p, HTTP_RESPONSE);
    c.p.data = &c;
    read_responses(&c, busy, 1, true);
    ASSERT_EQ_INT(c.resp[0].status, 200);
    ASSERT_EQ_STR(c.resp[0].connection, "close");
    ASSERT_TRUE(c.eof);
    memset(&c, 0, sizeof c);
    http_parser_init(&c.p, HTTP_RESPONSE);
    c.p.data = &c;
    read_responses(&c, idle, 1, true);
    ASSERT_EQ_INT(c.resp[0].status, 200);
    ASSERT_TRUE(c.eof);
    close(idle);
    close(busy);
    om_free(req);
    free(body);
    ASSERT_EQ_INT(fx_stop(&f), 0);
}

static void test_address_in_use(void)
{
    fixture_t f, g;
    ASSERT_EQ_INT(fx_start(&f, MiB, OM_SIG_ALL), 0);
    char ep[32];
    snprintf(ep, sizeof ep, "127.0.0.1:%d", f.port);
    fx_init(&g, MiB, OM_SIG_ALL, ep);
    om_err_t err = {0};
    ASSERT_EQ_INT(otlp_http_create(&g.r, &g.srv, &err), 0);
    ASSERT_TRUE(otlp_http_start(g.srv, &err) != 0);
    ASSERT_CONTAINS(err.msg, "address already in use");
    ASSERT_EQ_INT(otlp_http_bound_port(g.srv), -1);
    ASSERT_EQ_INT(fx_stop(&g), 0);
    ASSERT_EQ_INT(fx_stop(&f), 0);
}

static void test_shutdown_without_start(void)
{
    fixture_t f;
    fx_init(&f, MiB, OM_SIG_ALL, "localhost:0");
    om_err_t err = {0};
    ASSERT_EQ_INT(otlp_http_create(&f.r, &f.srv, &err), 0);
    ASSERT_EQ_INT(fx_stop(&f), 0);
}

static void test_localhost_binds_loopback(void)
{
    fixture_t f;
    fx_init(&f, MiB, OM_SIG_ALL, "localhost:0");
    om_err_t err = {0};
    ASSERT_EQ_INT(otlp_http_create(&f.r, &f.srv, &err), 0);
    ASSERT_EQ_INT(otlp_http_start(f.srv, &err), 0);
    f.port = otlp_http_bound_port(f.srv);
    ASSERT_TRUE(f.port > 0);
    size_t rlen;
    char *req = make_request("POST", "/v1/logs", "Content-Type: application/json\r\n", json_logs,
                             strlen(json_logs), &rlen);
    client_t c;
    roundtrip(&f, &c, req, rlen);
    om_free(req);
    ASSERT_EQ_INT(c.resp[0].status, 200);
    ASSERT_EQ_INT(fx_stop(&f), 0);
}

/* STYLE.md §10: the lifecycle every factory gets. */
static void test_generic_lifecycle(void)
{
    om_test_lifecycle(&rcv_otlp_factory, "{protocols: {grpc: {endpoint: '127.0.0.1:0'}, "
                                         "http: {endpoint: '127.0.0.1:0'}}}");
}

int main(void)
{
    om_log_set_level(OM_LOG_ERROR);
    OM_RUN(test_proto_each_signal);
    OM_RUN(test_json_each_signal);
    OM_RUN(test_protobuf_labelled_json);
    OM_RUN(test_chunked_body);
    OM_RUN(test_compressed_bodies);
    OM_RUN(test_large_compressed_body_on_a_worker);
    OM_RUN(test_large_bodies_decoded_in_place_while_idle);
    OM_RUN(test_large_bodies_decoded_on_a_worker);
    OM_RUN(test_pipelined_answers_keep_request_order);
    OM_RUN(test_keepalive_and_pipelining);
    OM_RUN(test_malformed_payloads);
    OM_RUN(test_routing_errors);
    OM_RUN(test_too_large);
    OM_RUN(test_corrupt_gzip);
    OM_RUN(test_refused_is_retryable);
    OM_RUN(test_paused_intake_holds_requests_until_it_resumes);
    OM_RUN(test_a_long_pause_refuses_requests_as_retryable);
    OM_RUN(test_disconnect_mid_body);
    OM_RUN(test_expect_continue_and_close);
    OM_RUN(test_bad_http);
    OM_RUN(test_empty_request);
    OM_RUN(test_idle_timeout);
    OM_RUN(test_shutdown_with_connections);
    OM_RUN(test_address_in_use);
    OM_RUN(test_shutdown_without_start);
    OM_RUN(test_localhost_binds_loopback);
    OM_RUN(test_generic_lifecycle);
    return om_test_summary();
}
