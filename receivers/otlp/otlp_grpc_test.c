/* otlp_grpc_test.c: the OTLP/gRPC server against a gRPC C core client.
 *
 * The server runs on this thread's libuv loop; the client runs in its own thread with its own
 * completion queue and wakes the loop through a uv_async_t when it is done, so the main thread
 * only ever drives uv_run(UV_RUN_ONCE) until a flag is set. Every client call has a 10 s
 * deadline, so a broken server fails the test instead of hanging it. */
#include <dirent.h>
#include <stdatomic.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <zlib.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/compression.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>

#include "om_test.h"
#include "om_testauth.h"
#include "om_testdata.h"
#include "om_testgrpc.h"
#include "otlp.h"
#include "otlp_grpc.h"

#define TRACES_METHOD "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
#define METRICS_METHOD "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"
#define LOGS_METHOD "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
#define MAX_CAPTURE 64

/* ------------------------------------------------------------------------------------------ */
/* Payloads                                                                                   */

static om_tg_payload_t pack(const ProtobufCMessage *m)
{
    om_tg_payload_t p;
    p.len = protobuf_c_message_get_packed_size(m);
    p.data = malloc(p.len == 0 ? 1 : p.len);
    protobuf_c_message_pack(m, p.data);
    return p;
}

/* One span called name. */
static om_tg_payload_t traces_payload(const char *name)
{
    uint8_t tid[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    uint8_t sid[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    char *name_copy = strdup(name);
    om_span_t span = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__INIT;
    span.trace_id = (ProtobufCBinaryData){sizeof tid, tid};
    span.span_id = (ProtobufCBinaryData){sizeof sid, sid};
    span.name = name_copy;
    span.start_time_unix_nano = 1000;
    span.end_time_unix_nano = 2000;
    om_span_t *spans[] = {&span};
    om_scope_spans_t ss = OPENTELEMETRY__PROTO__TRACE__V1__SCOPE_SPANS__INIT;
    ss.n_spans = 1;
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
    om_tg_payload_t p = pack(&req.base);
    free(name_copy);
    return p;
}

/* One gauge "g1" with one point 1.5. */
static om_tg_payload_t metrics_payload(void)
{
    char name[] = "g1";
    om_number_dp_t dp = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__INIT;
    dp.value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE;
    dp.as_double = 1.5;
    dp.time_unix_nano = 1000;
    om_number_dp_t *dps[] = {&dp};
    om_gauge_t g = OPENTELEMETRY__PROTO__METRICS__V1__GAUGE__INIT;
    g.n_data_points = 1;
    g.data_points = dps;
    om_metric_t m = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__INIT;
    m.name = name;
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
    return pack(&req.base);
}

/* One log record whose body is "hello". */
static om_tg_payload_t logs_payload(void)
{
    char body_text[] = "hello";
    om_anyvalue_t body = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
    body.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    body.string_value = body_text;
    om_log_record_t lr = OPENTELEMETRY__PROTO__LOGS__V1__LOG_RECORD__INIT;
    lr.time_unix_nano = 1000;
    lr.body = &body;
    om_log_record_t *lrs[] = {&lr};
    om_scope_logs_t sl = OPENTELEMETRY__PROTO__LOGS__V1__SCOPE_LOGS__INIT;
    sl.n_log_records = 1;
    sl.log_records = lrs;
    om_scope_logs_t *sls[] = {&sl};
    om_resource_logs_t rl = OPENTELEMETRY__PROTO__LOGS__V1__RESOURCE_LOGS__INIT;
    rl.n_scope_logs = 1;
    rl.scope_logs = sls;
    om_resource_logs_t *rls[] = {&rl};
    om_logs_req_t req =
        OPENTELEMETRY__PROTO__COLLECTOR__LOGS__V1__EXPORT_LOGS_SERVICE_REQUEST__INIT;
    req.n_resource_logs = 1;
    req.resource_logs = rls;
    return pack(&req.base);
}

/* A span whose name is n copies of c. */
static om_tg_payload_t big_traces_payload(size_t n, char c)
{
    char *name = malloc(n + 1);
    memset(name, c, n);
    name[n] = '\0';
    om_tg_payload_t p = traces_payload(name);
    free(name);
    return p;
}

/* ------------------------------------------------------------------------------------------ */
/* The server under test                                                                      */

typedef struct capture {
    om_batch_t *got[MAX_CAPTURE];
    size_t n;
    int rc; /* what consume answers; when not 0 the batch is dropped */
} capture_t;

static int capture_consume(void *self, om_batch_t *b)
{
    capture_t *c = self;
    if (c->rc != 0 || c->n == MAX_CAPTURE) {
        om_batch_release(b);
        return c->rc != 0 ? c->rc : OM_EREFUSED;
    }
    c->got[c->n++] = b;
    return 0;
}

typedef struct fx {
    uv_loop_t loop;
    om_host_t host;
    char endpoint[64];
    rcv_otlp_cfg_t cfg;
    rcv_otlp_t r;
    capture_t cap;
    otlp_grpc_server_t *s;
    bool done;
    int port;
    char target[64];
} fx_t;

static void fx_init(fx_t *f, const char *endpoint, int64_t max_mib)
{
    memset(f, 0, sizeof *f);
    uv_loop_init(&f->loop);
    om_test_host_init(&f->host, &f->loop);
    snprintf(f->endpoint, sizeof f->endpoint, "%s", endpoint);
    f->cfg.protocols.grpc_present = true;
    f->cfg.protocols.grpc.endpoint = f->endpoint;
    f->cfg.protocols.grpc.max_recv_msg_size_mib = max_mib;
    f->r.cfg = &f->cfg;
    f->r.log_name = "receiver/otlp";
    f->r.host = &f->host;
    for (int i = 0; i < OM_SIG_COUNT; i++) {
        f->r.next[i] = (om_consumer_t){&f->cap, capture_consume};
    }
}

/* create + start; returns the start code. */
static int fx_start(fx_t *f, om_err_t *err)
{
    int rc = otlp_grpc_create(&f->r, &f->s, err);
    if (rc != 0) {
        return rc;
    }
    rc = otlp_grpc_start(f->s, err);
    f->port = otlp_grpc_bound_port(f->s);
    snprintf(f->target, sizeof f->target, "127.0.0.1:%d", f->port);
    return rc;
}

static void on_done(void *arg)
{
    fx_t *f = arg;
    f->done = true;
}

static void fx_begin_shutdown(fx_t *f)
{
    otlp_grpc_shutdown(f->s, on_done, f);
}

/* Shutdown, destroy, close the loop; returns uv_loop_close() (0 when nothing leaked). */
static int fx_finish(fx_t *f)
{
    if (f->s != NULL) {
        otlp_grpc_shutdown(f->s, on_done, f); /* no-op when already shutting down */
        while (!f->done) {
            uv_run(&f->loop, UV_RUN_ONCE);
        }
        otlp_grpc_destroy(f->s);
        f->s = NULL;
    }
    for (size_t i = 0; i < f->cap.n; i++) {
        om_batch_release(f->cap.got[i]);
    }
    f->cap.n = 0;
    om_test_host_close(&f->host);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    om_test_host_close(&f->host);
    return uv_loop_close(&f->loop);
}

static void job_init(om_tg_job_t *job, const fx_t *f, om_tg_rpc_t *rpcs, size_t n)
{
    memset(job, 0, sizeof *job);
    snprintf(job->target, sizeof job->target, "%s", f->target);
    job->rpcs = rpcs;
    job->n = n;
}

static void free_bodies(om_tg_rpc_t *rpcs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(rpcs[i].body.data);
    }
}

static int count_threads(void)
{
    DIR *d = opendir("/proc/self/task");
    int n = 0;
    if (d == NULL) {
        return -1;
    }
    while (readdir(d) != NULL) {
        n++;
    }
    closedir(d);
    return n - 2;
}

/* ------------------------------------------------------------------------------------------ */
/* Tests                                                                                      */

static void test_export_each_signal(void)
{
    fx_t f;
    fx_init(&f, "127.0.0.1:0", 4);
    om_err_t err = {0};
    int threads_before = count_threads();
    int rc = fx_start(&f, &err);
    int threads_running = count_threads();
    om_tg_rpc_t rpcs[3] = {{.method = TRACES_METHOD, .body = traces_payload("span-1")},
                           {.method = METRICS_METHOD, .body = metrics_payload()},
                           {.method = LOGS_METHOD, .body = logs_payload()}};
    om_tg_job_t job;
    if (rc == 0) {
        job_init(&job, &f, rpcs, 3);
        om_tg_run(&f.loop, &job);
    }
    capture_t cap = f.cap;
    f.cap.n = 0; /* released below, after the checks */
    int closed = fx_finish(&f);
    fprintf(stderr, "  threads: %d before start, %d while serving (gRPC's and ours)\n",
            threads_before, threads_running);
    free_bodies(rpcs, 3);
    ASSERT_EQ_INT(rc, 0);
    ASSERT_TRUE(f.port > 0);
    for (int i = 0; i < 3; i++) {
        ASSERT_EQ_INT(rpcs[i].status, GRPC_STATUS_OK);
        ASSERT_TRUE(rpcs[i].got_response);
        ASSERT_EQ_UINT(rpcs[i].response_len, 0);
    }
    ASSERT_EQ_UINT(cap.n, 3);
    /* Requests arrive checked and counted but not decoded: decoding is for whoever needs it. */
    for (size_t i = 0; i < cap.n; i++) {
        ASSERT_TRUE(cap.got[i]->msg == NULL && cap.got[i]->raw_valid);
        ASSERT_EQ_INT(om_batch_decode(cap.got[i], NULL), 0);
    }
    ASSERT_EQ_INT(cap.got[0]->signal, OM_SIG_TRACES);
    ASSERT_EQ_UINT(cap.got[0]->items, 1);
    ASSERT_EQ_STR(cap.got[0]->traces->resource_spans[0]->scope_spans[0]->spans[0]->name, "span-1");
    ASSERT_EQ_INT(cap.got[1]->signal, OM_SIG_METRICS);
    om_metric_t *m = cap.got[1]->metrics->resource_metrics[0]->scope_metrics[0]->metrics[0];
    ASSERT_EQ_STR(m->name, "g1");
    ASSERT_TRUE(m->gauge->data_points[0]->as_double == 1.5);
    ASSERT_EQ_INT(cap.got[2]->signal, OM_SIG_LOGS);
    ASSERT_EQ_STR(
        cap.got[2]->logs->resource_logs[0]->scope_logs[0]->log_records[0]->body->string_value,
        "hello");
    for (size_t i = 0; i < cap.n; i++) {
        om_batch_release(cap.got[i]);
    }
    ASSERT_EQ_INT(closed, 0);
}

static void on_window(uv_timer_t *t)
{
    *(bool *)t->data = true;
}

/* While intake is paused (the collector holds more than the limit and an export is pending),
 * no call is taken: the client's call waits in gRPC instead of failing, and is taken and
 * answered once the export completes. */
static void test_paused_intake_holds_calls_until_it_resumes(void)
{
    fx_t f;
    fx_init(&f, "127.0.0.1:0", 4);
    om_testdata_hold_t hold;
    ASSERT_EQ_INT(om_testdata_hold_start(&hold, &f.host, 10), 0);
    om_intake_set_default(f.host.intake, 1, OM_INTAKE_HOLD_MS_DEFAULT);
    om_err_t err = {0};
    int rc = fx_start(&f, &err);
    om_tg_rpc_t rpcs[1] = {{.method = TRACES_METHOD, .body = traces_payload("waited")}};
    om_tg_job_t job;
    size_t during = 0;
    bool ended_during = true;
    if (rc == 0) {
        job_init(&job, &f, rpcs, 1);
        om_tg_begin(&f.loop, &job);
        uv_timer_t t;
        bool over = false;
        uv_timer_init(&f.loop, &t);
        t.data = &over;
        uv_timer_start(&t, on_window, 300, 0);
        while (!over) {
            uv_run(&f.loop, UV_RUN_ONCE);
        }
        uv_close((uv_handle_t *)&t, NULL);
        during = f.cap.n;
        /* One call, not concurrent: the client marks it started once it has ended. */
        ended_during = atomic_load(&job.started);
        om_testdata_hold_release(&hold);
        om_tg_end(&f.loop, &job);
    }
    size_t after = f.cap.n;
    om_testdata_hold_stop(&hold);
    int closed = fx_finish(&f);
    free_bodies(rpcs, 1);
    ASSERT_EQ_INT(rc, 0);
    ASSERT_EQ_UINT(during, 0);
    ASSERT_TRUE(!ended_during); /* still waiting */
    ASSERT_EQ_INT(rpcs[0].status, GRPC_STATUS_OK);
    ASSERT_EQ_UINT(after, 1);
    ASSERT_EQ_INT(closed, 0);
}

/* Runs the loop for ms (nothing to wait for: this is how long something must not happen). */
static void run_for(uv_loop_t *loop, uint64_t ms)
{
    uv_timer_t t;
    bool over = false;
    uv_timer_init(loop, &t);
    t.data = &over;
    uv_timer_start(&t, on_window, ms, 0);
    while (!over) {
        uv_run(loop, UV_RUN_ONCE);
    }
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
}

/* A pause that outlasts the hold time (a dead backend) ends the held call with UNAVAILABLE,
 * which OTLP clients retry, instead of leaving it to the client's deadline; nothing reaches
 * the pipeline. Once the backlog is delivered, calls are taken again. */
static void test_a_long_pause_refuses_calls_as_unavailable(void)
{
    fx_t f;
    fx_init(&f, "127.0.0.1:0", 4);
    om_testdata_hold_t hold;
    ASSERT_EQ_INT(om_testdata_hold_start(&hold, &f.host, 10), 0);
    om_intake_set_default(f.host.intake, 1, 200);
    om_err_t err = {0};
    int rc = fx_start(&f, &err);
    om_tg_rpc_t held[1] = {{.method = TRACES_METHOD, .body = traces_payload("refused")}};
    om_tg_rpc_t later[1] = {{.method = TRACES_METHOD, .body = traces_payload("taken")}};
    om_tg_job_t job;
    bool ended_within_hold = true;
    size_t refused_n = 0;
    if (rc == 0) {
        job_init(&job, &f, held, 1);
        om_tg_begin(&f.loop, &job);
        run_for(&f.loop, 100);
        ended_within_hold = atomic_load(&job.started);
        om_tg_end(&f.loop, &job);
        refused_n = f.cap.n;
        om_testdata_hold_release(&hold);
        job_init(&job, &f, later, 1);
        om_tg_run(&f.loop, &job);
    }
    size_t after = f.cap.n;
    om_testdata_hold_stop(&hold);
    int closed = fx_finish(&f);
    free_bodies(held, 1);
    free_bodies(later, 1);
    ASSERT_EQ_INT(rc, 0);
    ASSERT_TRUE(!ended_within_hold);
    ASSERT_EQ_INT(held[0].status, GRPC_STATUS_UNAVAILABLE);
    ASSERT_TRUE(strstr(held[0].details, "undelivered data") != NULL);
    ASSERT_EQ_UINT(refused_n, 0);
    ASSERT_EQ_INT(later[0].status, GRPC_STATUS_OK);
    ASSERT_EQ_UINT(after, 1);
    ASSERT_EQ_INT(closed, 0);
}

static void test_gzip_request_arrives_inflated(void)
{
    fx_t f;
    fx_init(&f, "127.0.0.1:0", 4);
    om_err_t err = {0};
    int rc = fx_start(&f, &err);
    /* 300 KB that gzip squeezes to a few hundred bytes. */
    om_tg_rpc_t rpcs[1] = {{.method = TRACES_METHOD, .body = big_traces_payload(300000, 'z')}};
    om_tg_job_t job;
    if (rc == 0) {
        job_init(&job, &f, rpcs, 1);
        job.gzip = true;
        om_tg_run(&f.loop, &job);
    }
    size_t name_len = 0;
    bool all_z = false;
    if (f.cap.n == 1 && om_batch_decode(f.cap.got[0], NULL) == 0) {
        const char *name = f.cap.got[0]->traces->resource_spans[0]->scope_spans[0]->spans[0]->name;
        name_len = strlen(name);
        all_z = strspn(name, "z") == name_len;
    }
    size_t captured = f.cap.n;
    int closed = fx_finish(&f);
    free_bodies(rpcs, 1);
    ASSERT_EQ_INT(rc, 0);
    ASSERT_EQ_INT(rpcs[0].status, GRPC_STATUS_OK);
    ASSERT_EQ_UINT(captured, 1);
    ASSERT_EQ_UINT(name_len, 300000);
    ASSERT_TRUE(all_z);
    ASSERT_EQ_INT(closed, 0);
}

/* The size limit applies to the inflated message: 6 MB of one letter is a few KB of gzip. */
static void test_gzip_limit_measured_inflated(void)
{
    fx_t f;
    fx_init(&f, "127.0.0.1:0", 4);
    om_err_t err = {0};
    int rc = fx_start(&f, &err);
    om_tg_rpc_t rpcs[1] = {
        {.method = TRACES_METHOD, .body = big_traces_payload(6 * 1024 * 1024, 'q')}};
    om_tg_job_t job;
    if (rc == 0) {
        job_init(&job, &f, rpcs, 1);
        job.gzip = true;
        om_tg_run(&f.loop, &job);
    }
    size_t captured = f.cap.n;
    int closed = fx_finish(&f);
    free_bodies(rpcs, 1);
    ASSERT_EQ_INT(rc, 0);
    ASSERT_EQ_INT(rpcs[0].status, GRPC_STATUS_RESOURCE_EXHAUSTED);
    ASSERT_EQ_UINT(captured, 0);
    ASSERT_EQ_INT(closed, 0);
}

/* gzip of p by zlib (members: how many copies, back to back). */
static om_tg_payload_t gzip_payload(om_tg_payload_t p, int members)
{
    om_tg_payload_t z = {malloc((compressBound((uLong)p.len) + 32) * (size_t)members), 0};
    for (int m = 0; m < members; m++) {
        z_stream zs = {0};
        deflateInit2(&zs, 6, Z_DEFLATED, 16 + 15, 8, Z_DEFAULT_STRATEGY);
        zs.next_in = p.data;
        zs.avail_in = (uInt)p.len;
        zs.next_out = z.data + z.len;
        zs.avail_out = (uInt)(compressBound((uLong)p.len) + 32);
        deflate(&zs, Z_FINISH);
        z.len += zs.total_out;
        deflateEnd(&zs);
    }
    return z;
}

/* A span name of n letters that gzip cannot squeeze much (a simple generator). */
static om_tg_payload_t noisy_traces_payload(size_t n)
{
    char *name = malloc(n + 1);
    uint32_t x = 12345;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        name[i] = (char)('a' + (x >> 16) % 26);
    }
    name[n] = '\0';
    om_tg_payload_t p = traces_payload(name);
    free(name);
    return p;
}

/* A gzip message is inflated by the receiver itself: a corrupt one is INVALID_ARGUMENT, one
 * of two gzip members decodes as their concatenation, and the connection keeps serving. A
 * large one (compressed beyond 8 KiB) is inflated on a worker, a corrupt large one refused
 * from there, and a large one over max_recv_msg_size once inflated is RESOURCE_EXHAUSTED. */
static void test_gzip_message_inflated_by_us(void)
{
    fx_t f;
    fx_init(&f, "127.0.0.1:0", 4);
    om_err_t err = {0};
    int rc = fx_start(&f, &err);
    om_tg_payload_t plain = traces_payload("gz"), noisy = noisy_traces_payload(64 * 1024);
    om_tg_payload_t huge = noisy_traces_payload(5 * 1024 * 1024);
    om_tg_payload_t bad = gzip_payload(plain, 1), bad_big = gzip_payload(noisy, 1);
    bad.data[bad.len / 2] ^= 0x5a;
    bad.data[bad.len - 7] ^= 0x5a; /* and the checksum, so that no decoder can miss it */
    bad_big.data[bad_big.len - 7] ^= 0x5a;
    om_tg_rpc_t rpcs[5] = {
        {.method = TRACES_METHOD, .body = bad, .precompressed = true},
        {.method = TRACES_METHOD, .body = gzip_payload(plain, 2), .precompressed = true},
        {.method = TRACES_METHOD, .body = gzip_payload(noisy, 1), .precompressed = true},
        {.method = TRACES_METHOD, .body = bad_big, .precompressed = true},
        {.method = TRACES_METHOD, .body = gzip_payload(huge, 1), .precompressed = true},
    };
    size_t big_len = rpcs[2].body.len;
    om_tg_job_t job;
    if (rc == 0) {
        job_init(&job, &f, rpcs, 5);
        job.gzip = true;
        om_tg_run(&f.loop, &job);
    }
    size_t captured = f.cap.n, items = captured == 2 ? f.cap.got[0]->items : 0;
    size_t name_len = 0;
    if (captured == 2 && om_batch_decode(f.cap.got[1], NULL) == 0) {
        name_len = strlen(f.cap.got[1]->traces->resource_spans[0]->scope_spans[0]->spans[0]->name);
    }
    unsigned workers = om_workers_threads(f.host.workers); /* the large ones went there */
    int closed = fx_finish(&f);
    free_bodies(rpcs, 5);
    free(plain.data);
    free(noisy.data);
    free(huge.data);
    ASSERT_EQ_INT(rc, 0);
    ASSERT_TRUE(big_len > 8 * 1024);
    ASSERT_TRUE(workers > 0);
    ASSERT_EQ_INT(rpcs[0].status, GRPC_STATUS_INVALID_ARGUMENT);
    ASSERT_EQ_INT(rpcs[1].status, GRPC_STATUS_OK);
    ASSERT_EQ_INT(rpcs[2].status, GRPC_STATUS_OK);
    ASSERT_EQ_INT(rpcs[3].status, GRPC_STATUS_INVALID_ARGUMENT);
    ASSERT_EQ_INT(rpcs[4].status, GRPC_STATUS_RESOURCE_EXHAUSTED);
    ASSERT_EQ_UINT(captured, 2);
    ASSERT_EQ_UINT(items, 2);
    ASSERT_EQ_UINT(name_len, 64 * 1024);
    ASSERT_EQ_INT(closed, 0);
}

/* A large plain message is decoded on the loop while it is idle (no worker thread is ever
 * started) and on the host's worker pool while it is busy (otlp_offload); both arrive. */
static void test_large_plain_messages_follow_the_loops_load(void)
{
    fx_t f;
    fx_init(&f, "127.0.0.1:0", 4);
    om_err_t err = {0};
    int rc = fx_start(&f, &err);
    om_tg_rpc_t rpcs[2] = {{.method = TRACES_METHOD, .body = big_traces_payload(20000, 'a')},
                           {.method = TRACES_METHOD, .body = big_traces_payload(20000, 'b')}};
    unsigned idle_workers = 0, busy_workers = 0;
    om_tg_job_t job;
    if (rc == 0) {
        om_host_set_loop_busy(&f.host, 0.0);
        job_init(&job, &f, rpcs, 1);
        om_tg_run(&f.loop, &job);
        idle_workers = om_workers_threads(f.host.workers);
        om_host_set_loop_busy(&f.host, 1.0);
        job_init(&job, &f, rpcs + 1, 1);
        om_tg_run(&f.loop, &job);
        busy_workers = om_workers_threads(f.host.workers);
    }
    size_t captured = f.cap.n;
    int closed = fx_finish(&f);
    free_bodies(rpcs, 2);
    ASSERT_EQ_INT(rc, 0);
    ASSERT_EQ_INT(rpcs[0].status, GRPC_STATUS_OK);
    ASSERT_EQ_INT(rpcs[1].status, GRPC_STATUS_OK);
    ASSERT_EQ_UINT(captured, 2);
    ASSERT_EQ_UINT(idle_workers, 0);
    ASSERT_TRUE(busy_workers > 0);
    ASSERT_EQ_INT(closed, 0);
}

/* A malformed request is refused, and the same connection then serves a good one. */
static void test_malformed_then_still_serves(void)
{
    fx_t f;
    fx_init(&f, "127.0.0.1:0", 4);
    om_err_t err = {0};
    int rc = fx_start(&f, &err);
    /* Field 1, length-delimited, claims 5 bytes and has 2. */
    uint8_t *bad = malloc(4);
    memcpy(bad,
           "\x0a\x05"
           "ab",
           4);
    om_tg_rpc_t rpcs[3] = {{.method = TRACES_METHOD, .body = {bad, 4}},
                           {.method = "/foo.Bar/Baz", .body = traces_payload("x")},
                           {.method = TRACES_METHOD, .body = traces_payload("after")}};
    om_tg_job_t job;
    if (rc == 0) {
        job_init(&job, &f, rpcs, 3);
        om_tg_run(&f.loop, &job);
    }
    size_t captured = f.cap.n;
    const char *name = "";
    if (captured == 1 && om_batch_decode(f.cap.got[0], NULL) == 0) {
        name = f.cap.got[0]->traces->resource_spans[0]->scope_spans[0]->spans[0]->name;
    }
    bool name_ok = strcmp(name, "after") == 0;
    int closed = fx_finish(&f);
    free_bodies(rpcs, 3);
    ASSERT_EQ_INT(rc, 0);
    ASSERT_EQ_INT(rpcs[0].status, GRPC_STATUS_INVALID_ARGUMENT);
    ASSERT_TRUE(rpcs[0].details[0] != '\0');
    ASSERT_TRUE(!rpcs[0].got_response);
    ASSERT_EQ_INT(rpcs[1].status, GRPC_STATUS_UNIMPLEMENTED);
    ASSERT_CONTAINS(rpcs[1].details, "/foo.Bar/Baz");
    ASSERT_EQ_INT(rpcs[2].status, GRPC_STATUS_OK);
    ASSERT_EQ_UINT(captured, 1);
    ASSERT_TRUE(name_ok);
    ASSERT_EQ_INT(closed, 0);
}

static void test_too_big(void)
{
    fx_t f;
    fx_init(&f, "127.0.0.1:0", 1);
    om_err_t err = {0};
    int rc = fx_start(&f, &err);
    om_tg_rpc_t rpcs[2] = {{.method = TRACES_METHOD, .body = big_traces_payload(1536 * 1024, 'b')},
                           {.method = TRACES_METHOD, .body = big_traces_payload(512 * 1024, 'b')}};
    om_tg_job_t job;
    if (rc == 0) {
        job_init(&job, &f, rpcs, 2);
        om_tg_run(&f.loop, &job);
    }
    size_t captured = f.cap.n;
    int closed = fx_finish(&f);
    free_bodies(rpcs, 2);
    ASSERT_EQ_INT(rc, 0);
    ASSERT_EQ_INT(rpcs[0].status, GRPC_STATUS_RESOURCE_EXHAUSTED);
    ASSERT_EQ_INT(rpcs[1].status, GRPC_STATUS_OK);
    ASSERT_EQ_UINT(captured, 1);
    ASSERT_EQ_INT(closed, 0);
}

static size_t put_varint(uint8_t *p, size_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

/* n empty spans: 2 bytes each on the wire, a whole Span struct each once decoded. */
static om_tg_payload_t empty_spans_payload(size_t n)
{
    size_t inner = 2 * n;
    om_tg_payload_t p = {malloc(inner + 32), 0};
    uint8_t ss_len[10], rs_len[10];
    size_t ss_n = put_varint(ss_len, inner);
    size_t rs_n = put_varint(rs_len, 1 + ss_n + inner);
    p.data[p.len++] = 0x0a; /* ExportTraceServiceRequest.resource_spans */
    memcpy(p.data + p.len, rs_len, rs_n);
    p.len += rs_n;
    p.data[p.len++] = 0x12; /* ResourceSpans.scope_spans */
    memcpy(p.data + p.len, ss_len, ss_n);
    p.len += ss_n;
    for (size_t i = 0; i < n; i++) {
        p.data[p.len++] = 0x12; /* ScopeSpans.spans, empty */
        p.data[p.len++] = 0x00;
    }
    return p;
}

/* A request under the wire limit whose decoded form passes the arena cap derived from it is
 * refused with RESOURCE_EXHAUSTED too; a small one of the same shape goes through. */
static void test_decoded_size_limit(void)
{
    fx_t f;
    fx_init(&f, "127.0.0.1:0", 1);
    om_err_t err = {0};
    int rc = fx_start(&f, &err);
    om_tg_rpc_t rpcs[2] = {{.method = TRACES_METHOD, .body = empty_spans_payload(400000)},
                           {.method = TRACES_METHOD, .body = empty_spans_payload(1000)}};
    om_tg_job_t job;
    if (rc == 0) {
        job_init(&job, &f, rpcs, 2);
        om_tg_run(&f.loop, &job);
    }
    size_t captured = f.cap.n;
    size_t items = captured == 1 ? f.cap.got[0]->items : 0;
    int closed = fx_finish(&f);
    free_bodies(rpcs, 2);
    ASSERT_EQ_INT(rc, 0);
    ASSERT_TRUE(rpcs[0].body.len < 1024 * 1024);
    ASSERT_EQ_INT(rpcs[0].status, GRPC_STATUS_RESOURCE_EXHAUSTED);
    ASSERT_EQ_INT(rpcs[1].status, GRPC_STATUS_OK);
    ASSERT_EQ_UINT(items, 1000);
    ASSERT_EQ_INT(closed, 0);
}

/* A pipeline that refuses (memory_limiter) gives UNAVAILABLE, which clients retry; a signal
 * with no pipeline gives UNIMPLEMENTED like an unregistered service in otelcol. */
static void test_refused_and_not_wired(void)
{
    fx_t f;
    fx_init(&f, "127.0.0.1:0", 4);
    f.cap.rc = OM_EREFUSED;
    f.r.next[om_signal_index(OM_SIG_LOGS)] = (om_consumer_t){NULL, NULL};
    om_err_t err = {0};
    int rc = fx_start(&f, &err);
    om_tg_rpc_t rpcs[2] = {{.method = TRACES_METHOD, .body = traces_payload("r")},
                           {.method = LOGS_METHOD, .body = logs_payload()}};
    om_tg_job_t job;
    if (rc == 0) {
        job_init(&job, &f, rpcs, 2);
        om_tg_run(&f.loop, &job);
    }
    int closed = fx_finish(&f);
    free_bodies(rpcs, 2);
    ASSERT_EQ_INT(rc, 0);
    ASSERT_EQ_INT(rpcs[0].status, GRPC_STATUS_UNAVAILABLE);
    ASSERT_EQ_INT(rpcs[1].status, GRPC_STATUS_UNIMPLEMENTED);
    ASSERT_CONTAINS(rpcs[1].details, "LogsService");
    ASSERT_EQ_INT(closed, 0);
}

/* stderr goes to a temporary file until stderr_end, which returns what was written
 * (malloc'd, NUL-terminated). */
typedef struct stderr_cap {
    FILE *tmp;
    int saved;
} stderr_cap_t;

static void stderr_begin(stderr_cap_t *c)
{
    fflush(stderr);
    c->tmp = tmpfile();
    c->saved = dup(STDERR_FILENO);
    if (c->tmp != NULL) {
        dup2(fileno(c->tmp), STDERR_FILENO);
    }
}

static char *stderr_end(stderr_cap_t *c)
{
    fflush(stderr);
    dup2(c->saved, STDERR_FILENO);
    close(c->saved);
    char *out = calloc(1, 16384);
    if (c->tmp != NULL) {
        rewind(c->tmp);
        size_t n = out != NULL ? fread(out, 1, 16383, c->tmp) : 0;
        (void)n;
        fclose(c->tmp);
    }
    return out;
}

static size_t count_of(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; p != NULL && (p = strstr(p, needle)) != NULL; p += strlen(needle)) {
        n++;
    }
    return n;
}

/* A call answered UNAVAILABLE is never unexplained: the first one is a warning that says why,
 * and the next ones within UNAVAILABLE_LOG_MS are counted, not logged one by one. */
static void test_unavailable_answers_are_logged(void)
{
    fx_t f;
    fx_init(&f, "127.0.0.1:0", 4);
    f.cap.rc = OM_EREFUSED;
    om_err_t err = {0};
    stderr_cap_t cap;
    stderr_begin(&cap);
    int rc = fx_start(&f, &err);
    om_tg_rpc_t rpcs[3] = {{.method = TRACES_METHOD, .body = traces_payload("a")},
                           {.method = TRACES_METHOD, .body = traces_payload("b")},
                           {.method = TRACES_METHOD, .body = traces_payload("c")}};
    om_tg_job_t job;
    if (rc == 0) {
        job_init(&job, &f, rpcs, 3);
        om_tg_run(&f.loop, &job);
    }
    int closed = fx_finish(&f);
    char *log = stderr_end(&cap);
    free_bodies(rpcs, 3);
    ASSERT_EQ_INT(rc, 0);
    for (int i = 0; i < 3; i++) {
        ASSERT_EQ_INT(rpcs[i].status, GRPC_STATUS_UNAVAILABLE);
    }
    ASSERT_TRUE(log != NULL);
    ASSERT_EQ_UINT(count_of(log, "answered UNAVAILABLE"), 1);
    ASSERT_CONTAINS(log, "refused");
    free(log);
    ASSERT_EQ_INT(closed, 0);
}

/* With auth, each call is checked from its metadata (any case) before anything else: a
 * refused one is UNAUTHENTICATED without detail, whatever its method, and is counted; one the
 * authenticator cannot check now is UNAVAILABLE (retried by OTLP clients). */
static void test_auth(void)
{
    fx_t f;
    fx_init(&f, "127.0.0.1:0", 4);
    om_testauth_t ta = {.secret = "s3cret"};
    om_testauth_register(&f.host, "testauth", &ta);
    f.cfg.protocols.grpc.auth.authenticator = "testauth";
    om_err_t err = {0};
    int rc = fx_start(&f, &err);
    om_tg_rpc_t rpcs[6] = {
        {.method = TRACES_METHOD, .body = traces_payload("none")},
        {.method = TRACES_METHOD,
         .body = traces_payload("wrong"),
         .md_key = "authorization",
         .md_value = "Test wrong"},
        {.method = "/no.Such/Method",
         .body = traces_payload("probe"),
         .md_key = "x-other",
         .md_value = "Test s3cret"},
        {.method = TRACES_METHOD,
         .body = traces_payload("good"),
         .md_key = "authorization",
         .md_value = "Test s3cret"},
        {.method = "/no.Such/Method",
         .body = traces_payload("probe"),
         .md_key = "authorization",
         .md_value = "Test s3cret"},
        {.method = TRACES_METHOD,
         .body = traces_payload("busy"),
         .md_key = "authorization",
         .md_value = "Test busy"},
    };
    om_tg_job_t job;
    if (rc == 0) {
        job_init(&job, &f, rpcs, 6);
        om_tg_run(&f.loop, &job);
    }
    size_t delivered = f.cap.n;
    int64_t failures = om_test_metric(&f.host, OM_AUTH_FAILURES_METRIC, "authenticator", "testauth",
                                      "component", "receiver/otlp", "transport", "grpc", NULL);
    int closed = fx_finish(&f);
    free_bodies(rpcs, 6);
    ASSERT_EQ_INT(rc, 0);
    for (int i = 0; i < 3; i++) {
        ASSERT_EQ_INT(rpcs[i].status, GRPC_STATUS_UNAUTHENTICATED);
        ASSERT_EQ_STR(rpcs[i].details, "unauthenticated");
    }
    ASSERT_EQ_INT(rpcs[3].status, GRPC_STATUS_OK);
    ASSERT_EQ_INT(rpcs[4].status, GRPC_STATUS_UNIMPLEMENTED);
    ASSERT_EQ_INT(rpcs[5].status, GRPC_STATUS_UNAVAILABLE);
    ASSERT_EQ_UINT(delivered, 1);
    ASSERT_EQ_INT(failures, 4);
    ASSERT_EQ_INT(closed, 0);
}

/* An authenticator that is not registered fails start: no open port. */
static void test_auth_unresolved(void)
{
    fx_t f;
    fx_init(&f, "127.0.0.1:0", 4);
    f.cfg.protocols.grpc.auth.authenticator = "nobody";
    om_err_t err = {0};
    int rc = fx_start(&f, &err);
    int closed = fx_finish(&f);
    ASSERT_EQ_INT(rc, OM_ECONFIG);
    ASSERT_EQ_STR(err.msg, "failed to resolve authenticator \"nobody\": authenticator not found");
    ASSERT_EQ_INT(closed, 0);
}

/* An empty Export request is a success (nothing to deliver, but nothing wrong). */
static void test_empty_request(void)
{
    fx_t f;
    fx_init(&f, "127.0.0.1:0", 4);
    om_err_t err = {0};
    int rc = fx_start(&f, &err);
    om_tg_rpc_t rpcs[1] = {{.method = METRICS_METHOD, .body = {malloc(1), 0}}};
    om_tg_job_t job;
    if (rc == 0) {
        job_init(&job, &f, rpcs, 1);
        om_tg_run(&f.loop, &job);
    }
    int closed = fx_finish(&f);
    free_bodies(rpcs, 1);
    ASSERT_EQ_INT(rc, 0);
    ASSERT_EQ_INT(rpcs[0].status, GRPC_STATUS_OK);
    ASSERT_EQ_INT(closed, 0);
}

/* More calls at once than a method has armed slots: each is answered and delivered once. */
static void test_many_concurrent_calls(void)
{
    enum { N = 50 };
    fx_t f;
    fx_init(&f, "127.0.0.1:0", 4);
    om_err_t err = {0};
    int rc = fx_start(&f, &err);
    static om_tg_rpc_t rpcs[N];
    memset(rpcs, 0, sizeof rpcs);
    for (int i = 0; i < N; i++) {
        rpcs[i].method = TRACES_METHOD;
        rpcs[i].body = traces_payload("c");
    }
    om_tg_job_t job;
    if (rc == 0) {
        job_init(&job, &f, rpcs, N);
        job.concurrent = true;
        om_tg_run(&f.loop, &job);
    }
    size_t captured = f.cap.n;
    int ok = 0;
    for (int i = 0; i < N; i++) {
        ok += rpcs[i].status == GRPC_STATUS_OK;
    }
    int closed = fx_finish(&f);
    free_bodies(rpcs, N);
    ASSERT_EQ_INT(rc, 0);
    ASSERT_EQ_INT(ok, N);
    ASSERT_EQ_UINT(captured, N);
    ASSERT_EQ_INT(closed, 0);
}

static void on_deadline(uv_timer_t *t)
{
    *(bool *)t->data = true;
}

/* Runs the loop until *flag is set or ms have passed; false on the deadline. */
static bool run_until(uv_loop_t *loop, const bool *flag, uint64_t ms)
{
    bool expired = false;
    uv_timer_t timer;
    uv_timer_init(loop, &timer);
    timer.data = &expired;
    uv_timer_start(&timer, on_deadline, ms, 0);
    while (!*flag && !expired) {
        uv_run(loop, UV_RUN_ONCE);
    }
    uv_close((uv_handle_t *)&timer, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return *flag;
}

/* An idle client connection does not hold up shutdown: done comes well before the grace
 * period (which, if it did, would end the wait a little after the deadline). */
static void test_shutdown_with_idle_connection(void)
{
    fx_t f;
    fx_init(&f, "127.0.0.1:0", 4);
    om_err_t err = {0};
    int rc = fx_start(&f, &err);
    om_tg_rpc_t rpcs[1] = {{.method = TRACES_METHOD, .body = traces_payload("idle")}};
    om_tg_job_t job;
    bool done_in_time = false;
    if (rc == 0) {
        otlp_grpc_set_shutdown_grace(f.s, 8000);
        job_init(&job, &f, rpcs, 1);
        job.hold = true;
        uv_sem_init(&job.release, 0);
        om_tg_begin(&f.loop, &job);
        while (!atomic_load(&job.idle)) {
            uv_run(&f.loop, UV_RUN_ONCE);
        }
        fx_begin_shutdown(&f);
        done_in_time = run_until(&f.loop, &f.done, 5000);
        uv_sem_post(&job.release);
        om_tg_end(&f.loop, &job);
        uv_sem_destroy(&job.release);
    }
    int closed = fx_finish(&f);
    free_bodies(rpcs, 1);
    ASSERT_EQ_INT(rc, 0);
    ASSERT_EQ_INT(rpcs[0].status, GRPC_STATUS_OK);
    ASSERT_TRUE(done_in_time);
    ASSERT_EQ_INT(closed, 0);
}

static void test_shutdown_without_start(void)
{
    fx_t f;
    fx_init(&f, "127.0.0.1:0", 4);
    om_err_t err = {0};
    int rc = otlp_grpc_create(&f.r, &f.s, &err);
    int calls = 0;
    if (rc == 0) {
        otlp_grpc_shutdown(f.s, on_done, &f);
        calls += f.done;
        f.done = false;
        otlp_grpc_shutdown(f.s, on_done, &f); /* second call: nothing, done not called again */
        calls += f.done;
        f.done = true;
    }
    int closed = fx_finish(&f);
    ASSERT_EQ_INT(rc, 0);
    ASSERT_EQ_INT(calls, 1);
    ASSERT_EQ_INT(closed, 0);
}

/* Shutdown while a client holds a call open (headers sent, no message) and keeps its
 * connection: the call is cancelled after the grace period, done runs once, the loop closes. */
static void test_shutdown_with_open_call(void)
{
    fx_t f;
    fx_init(&f, "127.0.0.1:0", 4);
    om_err_t err = {0};
    int rc = fx_start(&f, &err);
    /* The third call is answered after the server has read the second one's headers (same
     * connection, frames in order), so the open call is really open when shutdown starts. The
     * gRPC 1.51 client does not end a call on RST_STREAM(NO_ERROR), which is how the server
     * drops a call that never sent its message: the short deadline ends it. */
    om_tg_rpc_t rpcs[3] = {{.method = TRACES_METHOD, .body = traces_payload("first")},
                           {.method = TRACES_METHOD, .no_message = true, .deadline_s = 2},
                           {.method = TRACES_METHOD, .body = traces_payload("third")}};
    om_tg_job_t job;
    int done_calls = 0;
    uint64_t took_ms = 0;
    if (rc == 0) {
        otlp_grpc_set_shutdown_grace(f.s, 200);
        job_init(&job, &f, rpcs, 3);
        om_tg_begin(&f.loop, &job);
        while (!atomic_load(&job.started)) {
            uv_run(&f.loop, UV_RUN_ONCE);
        }
        uint64_t t0 = uv_hrtime();
        fx_begin_shutdown(&f);
        while (!f.done) {
            uv_run(&f.loop, UV_RUN_ONCE);
        }
        took_ms = (uv_hrtime() - t0) / 1000000;
        done_calls = 1;
        fx_begin_shutdown(&f); /* idempotent: done is not called again */
        om_tg_end(&f.loop, &job);
    }
    fprintf(stderr, "  shutdown with an open call took %llu ms; the open call ended with %d (%s)\n",
            (unsigned long long)took_ms, rpcs[1].status, rpcs[1].details);
    int closed = fx_finish(&f);
    free_bodies(rpcs, 3);
    ASSERT_EQ_INT(rc, 0);
    ASSERT_EQ_INT(done_calls, 1);
    /* The open call held shutdown until the grace period ran out, then was cancelled. */
    ASSERT_TRUE(took_ms >= 100 && took_ms < 5000);
    ASSERT_EQ_INT(rpcs[0].status, GRPC_STATUS_OK);
    ASSERT_EQ_INT(rpcs[2].status, GRPC_STATUS_OK);
    ASSERT_TRUE(rpcs[1].status != GRPC_STATUS_OK && rpcs[1].status != -1);
    ASSERT_EQ_INT(closed, 0);
}

/* Each allocation of create and start failing in turn gives a clean error (out of memory),
 * until past the last one start works; shutdown and destroy leave nothing behind either way
 * (the leak checkers of the sanitizer and valgrind runs see the rest). */
static void test_allocation_failures(void)
{
    int closed_all = 0, last = -1, n;
    for (n = 1; n <= 200 && last != 0; n++) {
        fx_t f;
        fx_init(&f, "127.0.0.1:0", 4);
        om_err_t err = {0};
        om_alloc_fail_after((unsigned long)n);
        last = fx_start(&f, &err);
        om_alloc_fail_after(0);
        closed_all |= fx_finish(&f);
        if (last != 0 && last != OM_ENOMEM) {
            OM__FAIL("allocation %d failing gave %d: %s", n, last, err.msg);
        }
    }
    fprintf(stderr, "  start works with %d allocations\n", n - 2);
    ASSERT_EQ_INT(last, 0);
    ASSERT_TRUE(n > 3); /* the early ones did fail */
    ASSERT_EQ_INT(closed_all, 0);
}

/* A port in use is an error at start (no SO_REUSEPORT), and the failed server still shuts
 * down and goes away cleanly. */
static void test_port_in_use(void)
{
    fx_t a, b;
    fx_init(&a, "127.0.0.1:0", 4);
    om_err_t err = {0};
    int rc_a = fx_start(&a, &err);
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "127.0.0.1:%d", a.port);
    fx_init(&b, endpoint, 4);
    om_err_t err_b = {0};
    int rc_b = fx_start(&b, &err_b);
    int port_b = b.port;
    int closed_b = fx_finish(&b);
    int closed_a = fx_finish(&a);
    ASSERT_EQ_INT(rc_a, 0);
    ASSERT_EQ_INT(rc_b, OM_EIO);
    ASSERT_CONTAINS(err_b.msg, "address already in use");
    ASSERT_EQ_INT(port_b, 0);
    ASSERT_EQ_INT(closed_b, 0);
    ASSERT_EQ_INT(closed_a, 0);
}

/* "localhost:0" binds the loopback addresses gRPC resolves, one port for all; a client on
 * 127.0.0.1 reaches it. max_concurrent_streams > 0 is passed on without harm. */
static void test_localhost_endpoint(void)
{
    fx_t f;
    fx_init(&f, "localhost:0", 4);
    f.cfg.protocols.grpc.max_concurrent_streams = 8;
    om_err_t err = {0};
    int rc = fx_start(&f, &err);
    om_tg_rpc_t rpcs[1] = {{.method = LOGS_METHOD, .body = logs_payload()}};
    om_tg_job_t job;
    if (rc == 0) {
        job_init(&job, &f, rpcs, 1);
        om_tg_run(&f.loop, &job);
    }
    size_t captured = f.cap.n;
    int closed = fx_finish(&f);
    free_bodies(rpcs, 1);
    ASSERT_EQ_INT(rc, 0);
    ASSERT_TRUE(f.port > 0);
    ASSERT_EQ_INT(rpcs[0].status, GRPC_STATUS_OK);
    ASSERT_EQ_UINT(captured, 1);
    ASSERT_EQ_INT(closed, 0);
}

int main(void)
{
    om_log_set_level(OM_LOG_WARN);
    grpc_init();              /* the client's; the server balances its own */
    signal(SIGPIPE, SIG_IGN); /* as the service does: a client gone mid-answer */
    OM_RUN(test_export_each_signal);
    OM_RUN(test_paused_intake_holds_calls_until_it_resumes);
    OM_RUN(test_a_long_pause_refuses_calls_as_unavailable);
    OM_RUN(test_gzip_request_arrives_inflated);
    OM_RUN(test_gzip_message_inflated_by_us);
    OM_RUN(test_gzip_limit_measured_inflated);
    OM_RUN(test_large_plain_messages_follow_the_loops_load);
    OM_RUN(test_malformed_then_still_serves);
    OM_RUN(test_too_big);
    OM_RUN(test_decoded_size_limit);
    OM_RUN(test_refused_and_not_wired);
    OM_RUN(test_unavailable_answers_are_logged);
    OM_RUN(test_empty_request);
    OM_RUN(test_auth);
    OM_RUN(test_auth_unresolved);
    OM_RUN(test_many_concurrent_calls);
    OM_RUN(test_shutdown_without_start);
    OM_RUN(test_shutdown_with_open_call);
    OM_RUN(test_shutdown_with_idle_connection);
    OM_RUN(test_allocation_failures);
    OM_RUN(test_port_in_use);
    OM_RUN(test_localhost_endpoint);
    grpc_shutdown();
    return om_test_summary();
}
