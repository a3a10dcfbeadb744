/* grpc_server_test.c: the HTTP server's gRPC methods (src/h2_session.c) against gRPC's C core
 * as the client (test/lib/om_testgrpc.c, in a thread of its own), with the server on this
 * thread's loop: unary calls answered at once and later, metadata, errors with their
 * messages, the server's refusals (unknown method, a message over the limit, a deadline),
 * many calls at once on one connection, and HTTP/1.1 still served on the same port. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/grpc.h>

#include "http_internal.h"
#include "om.h"
#include "om_test.h"
#include "om_testgrpc.h"
#include "om_testhttp.h"

#define M_SAY "/test.Echo/Say"
#define M_LATER "/test.Echo/Later"
#define M_STUCK "/test.Echo/Stuck"
#define M_BIG "/test.Echo/Big"
#define MAX_BIG (2 * 1024 * 1024)
#define MAX_MSG 4096

typedef struct fx {
    uv_loop_t loop;
    om_http_server_cfg_t cfg;
    om_http_server_t *srv;
    int port, done;
    /* What the handlers saw. */
    unsigned calls, cancels, compressed;
    char md[64];               /* the value of x-test-md, when sent */
    char peer[64];             /* om_grpc_call_peer of the last call */
    om_grpc_call_t *later[32]; /* calls answered by the timer */
    size_t n_later;
    uv_timer_t timer;
} fx_t;

/* Say: answers at once with the request's message reversed; a message "fail" is answered
 * with an error whose text needs percent-encoding. */
static void on_say(om_grpc_call_t *call, void *arg)
{
    fx_t *f = arg;
    f->calls++;
    size_t len;
    bool z;
    const uint8_t *m = om_grpc_call_message(call, &len, &z);
    f->compressed += z;
    const char *md = om_grpc_call_metadata(call, "x-test-md");
    if (md != NULL) {
        snprintf(f->md, sizeof f->md, "%s", md);
    }
    snprintf(f->peer, sizeof f->peer, "%s", om_grpc_call_peer(call));
    if (len == 4 && memcmp(m, "fail", 4) == 0) {
        om_grpc_respond(call, 9, "failed: 100% \xc3\xa9tat\nline two", NULL, 0);
        return;
    }
    uint8_t out[MAX_MSG];
    for (size_t i = 0; i < len; i++) {
        out[i] = m[len - 1 - i];
    }
    om_grpc_respond(call, 0, NULL, out, len);
}

static void on_later_timer(uv_timer_t *t)
{
    fx_t *f = t->data;
    for (size_t i = 0; i < f->n_later; i++) {
        size_t len;
        bool z;
        const uint8_t *m = om_grpc_call_message(f->later[i], &len, &z);
        om_grpc_respond(f->later[i], 0, NULL, m, len); /* echoed, later */
    }
    f->n_later = 0;
}

static void on_later(om_grpc_call_t *call, void *arg)
{
    fx_t *f = arg;
    f->calls++;
    f->later[f->n_later++] = call;
    uv_timer_start(&f->timer, on_later_timer, 20, 0);
}

/* Stuck: never answers until cancelled. */
static void on_stuck(om_grpc_call_t *call, void *arg)
{
    ((fx_t *)arg)->calls++;
    (void)call;
}

static void on_cancel(om_grpc_call_t *call, void *arg)
{
    ((fx_t *)arg)->cancels++;
    om_grpc_respond(call, 1, "cancelled", NULL, 0);
}

static const om_grpc_handler_t H_SAY = {.call = on_say};
static const om_grpc_handler_t H_LATER = {.call = on_later};
static const om_grpc_handler_t H_STUCK = {.call = on_stuck, .cancel = on_cancel};

static void h_ok(om_http_req_t *req, void *arg)
{
    (void)arg;
    om_http_respond(req, 200, "text/plain", NULL, "ok", 2);
}

static const om_http_handler_t H_OK = {.complete = h_ok};

static int fx_start(fx_t *f)
{
    memset(f, 0, sizeof *f);
    uv_loop_init(&f->loop);
    uv_timer_init(&f->loop, &f->timer);
    f->timer.data = f;
    om_http_server_cfg_defaults(&f->cfg);
    f->cfg.endpoint = "127.0.0.1:0";
    om_http_server_opts_t o = {.loop = &f->loop,
                               .log_name = "test/grpc",
                               .cfg = &f->cfg,
                               .default_endpoint = "localhost:0",
                               .shutdown_grace_ms = 1000};
    om_err_t err = {0};
    if (om_http_server_new(&o, &f->srv, &err) != 0 ||
        om_http_server_grpc(f->srv, M_SAY, &H_SAY, f, MAX_MSG, &err) != 0 ||
        om_http_server_grpc(f->srv, M_LATER, &H_LATER, f, MAX_MSG, &err) != 0 ||
        om_http_server_grpc(f->srv, M_STUCK, &H_STUCK, f, MAX_MSG, &err) != 0 ||
        om_http_server_grpc(f->srv, M_BIG, &H_LATER, f, MAX_BIG, &err) != 0 ||
        om_http_server_route(f->srv, "/ok", OM_HTTP_GET, &H_OK, f, 0, &err) != 0 ||
        om_http_server_start(f->srv, &err) != 0) {
        fprintf(stderr, "server: %s\n", err.msg);
        return -1;
    }
    f->port = om_http_server_port(f->srv);
    return 0;
}

static void on_done(void *arg)
{
    ((fx_t *)arg)->done++;
}

static int fx_stop(fx_t *f)
{
    om_http_server_shutdown(f->srv, on_done, f);
    uint64_t end = uv_hrtime() + 10 * OM_NS_PER_S;
    while (f->done == 0 && uv_hrtime() < end) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    om_http_server_free(f->srv);
    uv_close((uv_handle_t *)&f->timer, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    return uv_loop_close(&f->loop) == 0 && f->done == 1 ? 0 : -1;
}

static om_tg_payload_t text(const char *s)
{
    om_tg_payload_t p = {.data = malloc(strlen(s) + 1), .len = strlen(s)};
    memcpy(p.data, s, p.len + 1);
    return p;
}

static void job_init(om_tg_job_t *job, const fx_t *f, om_tg_rpc_t *rpcs, size_t n)
{
    memset(job, 0, sizeof *job);
    snprintf(job->target, sizeof job->target, "127.0.0.1:%d", f->port);
    job->rpcs = rpcs;
    job->n = n;
}

static void free_bodies(om_tg_rpc_t *rpcs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(rpcs[i].body.data);
    }
}

/* ------------------------------------------------------------------------------------------ */

static void test_unary_calls_answered(void)
{
    fx_t f;
    ASSERT_EQ_INT(fx_start(&f), 0);
    om_tg_rpc_t r[3] = {
        {.method = M_SAY, .body = text("hello"), .md_key = "x-test-md", .md_value = "v1"},
        {.method = M_SAY, .body = text("")}, /* an empty message is a message */
        {.method = M_LATER, .body = text("answered later")},
    };
    om_tg_job_t job;
    job_init(&job, &f, r, 3);
    om_tg_run(&f.loop, &job);
    ASSERT_EQ_INT(r[0].status, 0);
    ASSERT_TRUE(r[0].got_response);
    ASSERT_EQ_UINT(r[0].response_len, 5);
    ASSERT_EQ_INT(r[1].status, 0);
    ASSERT_TRUE(r[1].got_response);
    ASSERT_EQ_UINT(r[1].response_len, 0);
    ASSERT_EQ_INT(r[2].status, 0);
    ASSERT_EQ_UINT(r[2].response_len, strlen("answered later"));
    ASSERT_EQ_UINT(f.calls, 3);
    ASSERT_EQ_STR(f.md, "v1");
    ASSERT_CONTAINS(f.peer, "127.0.0.1:");
    free_bodies(r, 3);
    ASSERT_EQ_INT(fx_stop(&f), 0);
}

static void test_reply_bytes_are_the_handlers(void)
{
    /* The echo reverses: check the bytes, not only the length, through the low-level API. */
    fx_t f;
    ASSERT_EQ_INT(fx_start(&f), 0);
    om_tg_rpc_t r = {.method = M_SAY, .body = text("abcdef"), .keep_response = true};
    om_tg_job_t job;
    job_init(&job, &f, &r, 1);
    om_tg_run(&f.loop, &job);
    ASSERT_EQ_INT(r.status, 0);
    ASSERT_EQ_UINT(r.response_len, 6);
    ASSERT_TRUE(memcmp(r.response, "fedcba", 6) == 0);
    free(r.response);
    free_bodies(&r, 1);
    ASSERT_EQ_INT(fx_stop(&f), 0);
}

/* A message larger than the session's first buffer (it grows as the bytes arrive) comes
 * whole, byte for byte. */
static void test_large_message_arrives_whole(void)
{
    fx_t f;
    ASSERT_EQ_INT(fx_start(&f), 0);
    const size_t n = 1500 * 1000;
    om_tg_rpc_t r = {.method = M_BIG, .keep_response = true};
    r.body.data = malloc(n);
    r.body.len = n;
    for (size_t i = 0; i < n; i++) {
        r.body.data[i] = (uint8_t)(i * 7 + i / 251);
    }
    om_tg_job_t job;
    job_init(&job, &f, &r, 1);
    om_tg_run(&f.loop, &job);
    ASSERT_EQ_INT(r.status, 0);
    ASSERT_EQ_UINT(r.response_len, n);
    ASSERT_TRUE(r.response != NULL && memcmp(r.response, r.body.data, n) == 0);
    free(r.response);
    free_bodies(&r, 1);
    ASSERT_EQ_INT(fx_stop(&f), 0);
}

static void test_errors_and_refusals(void)
{
    fx_t f;
    ASSERT_EQ_INT(fx_start(&f), 0);
    char big[MAX_MSG + 2];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    om_tg_rpc_t r[4] = {
        {.method = M_SAY, .body = text("fail")},
        {.method = "/test.Echo/Nope", .body = text("x")},
        {.method = M_SAY, .body = text(big)},
        {.method = M_SAY, .body = text("after them all")},
    };
    om_tg_job_t job;
    job_init(&job, &f, r, 4);
    om_tg_run(&f.loop, &job);
    ASSERT_EQ_INT(r[0].status, 9); /* FAILED_PRECONDITION, as the handler said */
    ASSERT_EQ_STR(r[0].details, "failed: 100% \xc3\xa9tat\nline two");
    ASSERT_EQ_INT(r[1].status, 12); /* UNIMPLEMENTED */
    ASSERT_CONTAINS(r[1].details, "/test.Echo/Nope");
    ASSERT_EQ_INT(r[2].status, 8); /* RESOURCE_EXHAUSTED */
    ASSERT_CONTAINS(r[2].details, "larger than max (4097 vs. 4096)");
    ASSERT_EQ_INT(r[3].status, 0); /* the connection serves on */
    ASSERT_EQ_UINT(f.calls, 2);    /* the refused ones never reached a handler */
    free_bodies(r, 4);
    ASSERT_EQ_INT(fx_stop(&f), 0);
}

static void test_deadline_cancels_the_handler(void)
{
    fx_t f;
    ASSERT_EQ_INT(fx_start(&f), 0);
    om_tg_rpc_t r[2] = {
        {.method = M_STUCK, .body = text("x"), .deadline_s = 1},
        {.method = M_SAY, .body = text("next")},
    };
    om_tg_job_t job;
    job_init(&job, &f, r, 2);
    om_tg_run(&f.loop, &job);
    ASSERT_EQ_INT(r[0].status, 4); /* DEADLINE_EXCEEDED */
    ASSERT_EQ_UINT(f.cancels, 1);  /* the server's deadline or the client's reset */
    ASSERT_EQ_INT(r[1].status, 0);
    free_bodies(r, 2);
    ASSERT_EQ_INT(fx_stop(&f), 0);
}

static void test_many_calls_at_once(void)
{
    fx_t f;
    ASSERT_EQ_INT(fx_start(&f), 0);
    enum { N = 24 };
    om_tg_rpc_t r[N];
    memset(r, 0, sizeof r);
    for (int i = 0; i < N; i++) {
        char msg[32];
        snprintf(msg, sizeof msg, "call %d", i);
        r[i].method = i % 2 ? M_LATER : M_SAY;
        r[i].body = text(msg);
    }
    om_tg_job_t job;
    job_init(&job, &f, r, N);
    job.concurrent = true;
    om_tg_run(&f.loop, &job);
    for (int i = 0; i < N; i++) {
        ASSERT_EQ_INT(r[i].status, 0);
        ASSERT_EQ_UINT(r[i].response_len, r[i].body.len);
    }
    ASSERT_EQ_UINT(f.calls, N);
    free_bodies(r, N);
    ASSERT_EQ_INT(fx_stop(&f), 0);
}

static void test_compressed_flag_reaches_the_handler(void)
{
    fx_t f;
    ASSERT_EQ_INT(fx_start(&f), 0);
    /* gzip of "hi" (the handler does not inflate: it sees the flag and the bytes). */
    static const uint8_t gz[] = {0x1f, 0x8b, 0x08, 0,    0,    0,    0,    0,    0, 0x03, 0xcb,
                                 0xc8, 0x04, 0,    0xac, 0x2a, 0x93, 0xd8, 0x02, 0, 0,    0};
    om_tg_rpc_t r = {.method = M_SAY, .precompressed = true};
    r.body.data = malloc(sizeof gz);
    memcpy(r.body.data, gz, sizeof gz);
    r.body.len = sizeof gz;
    om_tg_job_t job;
    job_init(&job, &f, &r, 1);
    job.gzip = true;
    om_tg_run(&f.loop, &job);
    ASSERT_EQ_UINT(f.compressed, 1);
    free_bodies(&r, 1);
    ASSERT_EQ_INT(fx_stop(&f), 0);
}

static void test_http1_on_the_same_port(void)
{
    fx_t f;
    ASSERT_EQ_INT(fx_start(&f), 0);
    om_testhttp_t h;
    om_testhttp_init(&h, f.port, "GET /ok HTTP/1.1\r\nHost: a\r\n\r\n", 1);
    om_testhttp_run_on(&h, &f.loop);
    ASSERT_EQ_INT(h.nresp, 1);
    ASSERT_EQ_INT(h.resp[0].status, 200);
    /* "PRI" then something else is HTTP/1.1 too (a bad request, not a hang). */
    om_testhttp_init(&h, f.port, "PRI /ok HTTP/1.1\r\nHost: a\r\n\r\n", 1);
    om_testhttp_run_on(&h, &f.loop);
    ASSERT_EQ_INT(h.nresp, 1);
    ASSERT_TRUE(h.resp[0].status >= 400);
    ASSERT_EQ_INT(fx_stop(&f), 0);
}

static void test_grpc_texts(void)
{
    ASSERT_EQ_INT(om__grpc_timeout_ns("5S"), 5 * OM_NS_PER_S);
    ASSERT_EQ_INT(om__grpc_timeout_ns("250m"), 250 * OM_NS_PER_MS);
    ASSERT_EQ_INT(om__grpc_timeout_ns("99999999n"), 99999999);
    ASSERT_EQ_INT(om__grpc_timeout_ns("2H"), 7200 * OM_NS_PER_S);
    ASSERT_EQ_INT(om__grpc_timeout_ns("123456789S"), -1); /* nine digits */
    ASSERT_EQ_INT(om__grpc_timeout_ns("S"), -1);
    ASSERT_EQ_INT(om__grpc_timeout_ns("5s"), -1);
    ASSERT_EQ_INT(om__grpc_timeout_ns("-5S"), -1);
    char *m = om__grpc_message_encode("a%b\xc3\xa9\n");
    ASSERT_EQ_STR(m, "a%25b%C3%A9%0A");
    om_free(m);
}

int main(void)
{
    grpc_init();
    signal(SIGPIPE, SIG_IGN); /* as the service does: a client gone mid-answer */
    OM_RUN(test_grpc_texts);
    OM_RUN(test_unary_calls_answered);
    OM_RUN(test_reply_bytes_are_the_handlers);
    OM_RUN(test_large_message_arrives_whole);
    OM_RUN(test_errors_and_refusals);
    OM_RUN(test_deadline_cancels_the_handler);
    OM_RUN(test_many_calls_at_once);
    OM_RUN(test_compressed_flag_reaches_the_handler);
    OM_RUN(test_http1_on_the_same_port);
    grpc_shutdown();
    return om_test_summary();
}
