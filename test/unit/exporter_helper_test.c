/* exporter_helper_test.c: the queue, consumers, retries and counters shared by exporters,
 * driven by a fake exporter whose sends the test completes by hand. */
#include <stdlib.h>

#include "om.h"
#include "om_test.h"

typedef struct fake {
    om_exp_req_t *inflight[64];
    size_t n;
    int sends;
    uint64_t send_times[64];
    uv_loop_t *loop;
} fake_t;

static void fake_send(void *exporter, om_exp_req_t *req)
{
    fake_t *f = exporter;
    if (f->sends < 64) {
        f->send_times[f->sends] = uv_now(f->loop);
    }
    f->sends++;
    f->inflight[f->n++] = req;
}

/* Complete the oldest send with rc. */
static void complete(fake_t *f, int rc, uint64_t retry_after_ms)
{
    om_exp_req_t *r = f->inflight[0];
    f->n--;
    memmove(f->inflight, f->inflight + 1, f->n * sizeof f->inflight[0]);
    om_exp_req_done(r, rc, retry_after_ms, "test");
}

static om_batch_t *batch_of(size_t items)
{
    om_batch_t *b = om_batch_new(OM_SIG_TRACES, 0);
    b->items = items; /* the helper only counts; the content does not matter here */
    return b;
}

static om_exphelper_cfg_t cfg_with(int consumers, int queue, int64_t initial_ms)
{
    om_exphelper_cfg_t c = {
        .timeout = 5 * OM_NS_PER_S,
        .retry_on_failure = {.enabled = true,
                             .initial_interval = initial_ms * OM_NS_PER_MS,
                             .randomization_factor = 0,
                             .multiplier = 2,
                             .max_interval = 1000 * OM_NS_PER_MS,
                             .max_elapsed_time = 300 * OM_NS_PER_S},
        .sending_queue = {.enabled = true, .num_consumers = consumers, .queue_size = queue},
    };
    return c;
}

/* A helper as the exporter "test" of a traces pipeline would make it. */
static om_exphelper_t *new_helper(om_host_t *host, const om_exphelper_cfg_t *cfg,
                                  om_exp_send_fn send, fake_t *f)
{
    om_create_args_t a = {
        .id = "test", .log_name = "exporter/test", .host = host, .signals = OM_SIG_TRACES};
    om_err_t err = {0};
    return om_exphelper_new(&a, cfg, send, f, &err);
}

/* The helper's counters, read through the host's registry as /metrics will. */
#define SENT(host) om_test_metric(host, "otelcol_exporter_sent_spans", "exporter", "test", NULL)
#define SEND_FAILED(host)                                                                          \
    om_test_metric(host, "otelcol_exporter_send_failed_spans", "exporter", "test", NULL)
#define ENQUEUE_FAILED(host)                                                                       \
    om_test_metric(host, "otelcol_exporter_enqueue_failed_spans", "exporter", "test", NULL)

static void run_until_sends(uv_loop_t *loop, fake_t *f, int sends)
{
    for (int i = 0; i < 1000 && f->sends < sends; i++) {
        uv_run(loop, UV_RUN_ONCE);
    }
}

static void done_cb(void *arg)
{
    *(int *)arg += 1;
}

static void test_queue_bounds_and_refuses_when_full(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    om_host_t host;
    om_test_host_init(&host, &loop);
    fake_t f = {.loop = &loop};
    om_exphelper_cfg_t cfg = cfg_with(2, 3, 10);
    om_exphelper_t *h = new_helper(&host, &cfg, fake_send, &f);
    for (int i = 0; i < 5; i++) {
        ASSERT_EQ_INT(om_exphelper_consume(h, batch_of(10)), 0);
    }
    ASSERT_EQ_INT(f.sends, 2); /* two consumers */
    ASSERT_EQ_UINT(om_exphelper_queue_size(h), 3);
    ASSERT_EQ_INT(om_exphelper_consume(h, batch_of(7)), OM_EREFUSED);
    ASSERT_EQ_UINT(ENQUEUE_FAILED(&host), 7);
    complete(&f, 0, 0);
    ASSERT_EQ_INT(f.sends, 3); /* a freed consumer takes the next queued request */
    while (f.n > 0) {
        complete(&f, 0, 0);
    }
    ASSERT_EQ_UINT(SENT(&host), 50);
    int done = 0;
    om_exphelper_shutdown(h, done_cb, &done);
    ASSERT_EQ_INT(done, 1);
    om_exphelper_free(h);
    uv_run(&loop, UV_RUN_DEFAULT);
    om_test_host_close(&host);
    ASSERT_EQ_INT(uv_loop_close(&loop), 0);
}

static void test_retries_with_backoff_and_retry_after(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    om_host_t host;
    om_test_host_init(&host, &loop);
    fake_t f = {.loop = &loop};
    om_exphelper_cfg_t cfg = cfg_with(1, 10, 20);
    om_exphelper_t *h = new_helper(&host, &cfg, fake_send, &f);
    ASSERT_EQ_INT(om_exphelper_consume(h, batch_of(4)), 0);
    complete(&f, OM_EAGAIN, 0); /* retry after the initial interval, 20 ms */
    run_until_sends(&loop, &f, 2);
    ASSERT_EQ_INT(f.sends, 2);
    ASSERT_TRUE(f.send_times[1] - f.send_times[0] >= 20);
    complete(&f, OM_EIO, 0); /* then 40 ms (multiplier 2) */
    run_until_sends(&loop, &f, 3);
    ASSERT_TRUE(f.send_times[2] - f.send_times[1] >= 40);
    complete(&f, OM_EREFUSED, 150); /* the server asks for 150 ms: more than the backoff */
    run_until_sends(&loop, &f, 4);
    ASSERT_TRUE(f.send_times[3] - f.send_times[2] >= 150);
    complete(&f, 0, 0);
    ASSERT_EQ_UINT(SENT(&host), 4);
    ASSERT_EQ_UINT(SEND_FAILED(&host), 0);
    int done = 0;
    om_exphelper_shutdown(h, done_cb, &done);
    uv_run(&loop, UV_RUN_DEFAULT);
    ASSERT_EQ_INT(done, 1);
    om_exphelper_free(h);
    om_test_host_close(&host);
    ASSERT_EQ_INT(uv_loop_close(&loop), 0);
}

static void test_permanent_errors_and_elapsed_limit_drop(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    om_host_t host;
    om_test_host_init(&host, &loop);
    fake_t f = {.loop = &loop};
    om_exphelper_cfg_t cfg = cfg_with(1, 10, 30);
    cfg.retry_on_failure.max_elapsed_time = 50 * OM_NS_PER_MS;
    om_exphelper_t *h = new_helper(&host, &cfg, fake_send, &f);
    om_log_set_level(OM_LOG_NONE);
    ASSERT_EQ_INT(om_exphelper_consume(h, batch_of(3)), 0);
    ASSERT_EQ_INT(om_exphelper_consume(h, batch_of(5)), 0);
    complete(&f, OM_EPERM, 0); /* permanent: dropped at once, the next one is sent */
    ASSERT_EQ_UINT(SEND_FAILED(&host), 3);
    ASSERT_EQ_INT(f.sends, 2);
    complete(&f, OM_EAGAIN, 0); /* retried once after 30 ms ... */
    run_until_sends(&loop, &f, 3);
    ASSERT_EQ_INT(f.sends, 3);
    complete(&f, OM_EAGAIN, 0); /* ... but 30 + 60 ms passes max_elapsed_time: dropped */
    ASSERT_EQ_UINT(SEND_FAILED(&host), 8);
    ASSERT_EQ_UINT(SENT(&host), 0);
    int done = 0;
    om_exphelper_shutdown(h, done_cb, &done);
    uv_run(&loop, UV_RUN_DEFAULT);
    ASSERT_EQ_INT(done, 1);
    om_exphelper_free(h);
    om_test_host_close(&host);
    ASSERT_EQ_INT(uv_loop_close(&loop), 0);
    om_log_set_level(OM_LOG_ERROR);
}

/* What om_exphelper_shutdown_closing closes: closing is asynchronous, as a client's is. */
typedef struct closable {
    int closes;
    int done_before_close; /* the exporter's done seen when close was asked: must be 0 */
    int *done;
    om_done_fn closed;
    void *closed_arg;
} closable_t;

static void close_closable(void *what, om_done_fn done, void *arg)
{
    closable_t *c = what;
    c->closes++;
    c->done_before_close = *c->done;
    c->closed = done;
    c->closed_arg = arg;
}

/* The whole shutdown: drain, then close, then done; once. */
static void test_shutdown_closing_drains_then_closes(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    om_host_t host;
    om_test_host_init(&host, &loop);
    fake_t f = {.loop = &loop};
    om_exphelper_cfg_t cfg = cfg_with(1, 10, 10);
    om_exphelper_t *h = new_helper(&host, &cfg, fake_send, &f);
    ASSERT_EQ_INT(om_exphelper_consume(h, batch_of(1)), 0);
    ASSERT_EQ_INT(om_exphelper_consume(h, batch_of(1)), 0);
    int done = 0;
    closable_t c = {.done = &done};
    om_exphelper_shutdown_closing(h, close_closable, &c, done_cb, &done);
    om_exphelper_shutdown_closing(h, close_closable, &c, done_cb, &done); /* does nothing */
    complete(&f, 0, 0);
    ASSERT_EQ_INT(c.closes, 0); /* one request left: the client is still needed */
    complete(&f, 0, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    ASSERT_EQ_INT(c.closes, 1);
    ASSERT_EQ_INT(c.done_before_close, 0);
    ASSERT_EQ_INT(done, 0); /* not before the close finished */
    c.closed(c.closed_arg);
    ASSERT_EQ_INT(done, 1);
    om_exphelper_free(h);

    /* Nothing to close: done after draining. */
    om_exphelper_t *h2 = new_helper(&host, &cfg, fake_send, &f);
    om_exphelper_shutdown_closing(h2, close_closable, NULL, done_cb, &done);
    uv_run(&loop, UV_RUN_DEFAULT);
    ASSERT_EQ_INT(done, 2);
    om_exphelper_free(h2);
    om_test_host_close(&host);
    ASSERT_EQ_INT(uv_loop_close(&loop), 0);
}

static void test_shutdown_drains_queue(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    om_host_t host;
    om_test_host_init(&host, &loop);
    fake_t f = {.loop = &loop};
    om_exphelper_cfg_t cfg = cfg_with(1, 10, 10);
    om_exphelper_t *h = new_helper(&host, &cfg, fake_send, &f);
    for (int i = 0; i < 4; i++) {
        ASSERT_EQ_INT(om_exphelper_consume(h, batch_of(1)), 0);
    }
    int done = 0;
    om_exphelper_shutdown(h, done_cb, &done);
    ASSERT_EQ_INT(om_exphelper_consume(h, batch_of(1)), OM_ESHUTDOWN);
    for (int i = 0; i < 4; i++) {
        ASSERT_EQ_INT(done, 0);
        complete(&f, 0, 0);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    ASSERT_EQ_INT(done, 1);
    ASSERT_EQ_UINT(SENT(&host), 4);
    om_exphelper_free(h);
    om_test_host_close(&host);
    ASSERT_EQ_INT(uv_loop_close(&loop), 0);
}

/* Sends are held while `hold` is set, and fail at once, permanently, afterwards. */
static bool hold = true;
static int instant_sends, depth, max_depth;
static void switching_send(void *exporter, om_exp_req_t *req)
{
    if (hold) {
        fake_send(exporter, req);
        return;
    }
    instant_sends++;
    depth++;
    max_depth = depth > max_depth ? depth : max_depth;
    om_exp_req_done(req, OM_EPERM, 0, "refused");
    depth--;
}

static void test_instant_completions_do_not_recurse(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    om_host_t host;
    om_test_host_init(&host, &loop);
    om_exphelper_cfg_t cfg = cfg_with(1, 2000, 10);
    fake_t f = {.loop = &loop};
    om_exphelper_t *h = new_helper(&host, &cfg, switching_send, &f);
    om_log_set_level(OM_LOG_NONE);
    /* The one consumer is held, so 1000 requests queue up behind it... */
    for (int i = 0; i < 1001; i++) {
        ASSERT_EQ_INT(om_exphelper_consume(h, batch_of(1)), 0);
    }
    ASSERT_EQ_UINT(om_exphelper_queue_size(h), 1000);
    /* ... and then each of them fails as soon as it is sent: they must be sent one after the
     * other from one loop, not each from inside the previous one's completion (with a big
     * queue, that nesting would overflow the stack). */
    hold = false;
    complete(&f, 0, 0);
    ASSERT_EQ_INT(instant_sends, 1000);
    ASSERT_EQ_INT(max_depth, 1);
    ASSERT_EQ_UINT(SEND_FAILED(&host), 1000);
    ASSERT_EQ_UINT(SENT(&host), 1);
    int done = 0;
    om_exphelper_shutdown(h, done_cb, &done);
    ASSERT_EQ_INT(done, 1);
    om_exphelper_free(h);
    uv_run(&loop, UV_RUN_DEFAULT);
    om_test_host_close(&host);
    ASSERT_EQ_INT(uv_loop_close(&loop), 0);
    om_log_set_level(OM_LOG_ERROR);
}

static void test_shutdown_gives_waiting_retries_one_last_attempt(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    om_host_t host;
    om_test_host_init(&host, &loop);
    fake_t f = {.loop = &loop};
    om_exphelper_cfg_t cfg = cfg_with(2, 10, 60000); /* a retry a minute away */
    om_exphelper_t *h = new_helper(&host, &cfg, fake_send, &f);
    om_log_set_level(OM_LOG_NONE);
    ASSERT_EQ_INT(om_exphelper_consume(h, batch_of(2)), 0);
    ASSERT_EQ_INT(om_exphelper_consume(h, batch_of(3)), 0);
    complete(&f, OM_EAGAIN, 0); /* the first now waits a minute for its retry */
    ASSERT_EQ_INT(f.sends, 2);
    int done = 0;
    uint64_t t0 = uv_now(&loop);
    om_exphelper_shutdown(h, done_cb, &done);
    run_until_sends(&loop, &f, 3); /* retried at once, not a minute later */
    ASSERT_EQ_INT(f.sends, 3);
    ASSERT_TRUE(uv_now(&loop) - t0 < 1000);
    complete(&f, 0, 0);         /* the second request, still in flight, is delivered */
    complete(&f, OM_EAGAIN, 0); /* the last attempt fails: dropped, not retried again */
    uv_run(&loop, UV_RUN_DEFAULT);
    ASSERT_EQ_INT(done, 1);
    ASSERT_EQ_UINT(SENT(&host), 3);
    ASSERT_EQ_UINT(SEND_FAILED(&host), 2);
    om_exphelper_free(h);
    om_test_host_close(&host);
    ASSERT_EQ_INT(uv_loop_close(&loop), 0);
    om_log_set_level(OM_LOG_ERROR);
}

#define QUEUE_SIZE(host, sig)                                                                      \
    om_test_metric(host, OM_EXP_METRIC_QUEUE_SIZE, "exporter", "test", "data_type", sig, NULL)
#define QUEUE_CAPACITY(host, sig)                                                                  \
    om_test_metric(host, OM_EXP_METRIC_QUEUE_CAPACITY, "exporter", "test", "data_type", sig, NULL)

static void test_queue_gauges_per_signal_wired(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    om_host_t host;
    om_test_host_init(&host, &loop);
    fake_t f = {.loop = &loop};
    om_exphelper_cfg_t cfg = cfg_with(1, 3, 10);
    om_create_args_t a = {.id = "test",
                          .log_name = "exporter/test",
                          .host = &host,
                          .signals = OM_SIG_TRACES | OM_SIG_LOGS};
    om_err_t err = {0};
    om_exphelper_t *h = om_exphelper_new(&a, &cfg, fake_send, &f, &err);
    ASSERT_TRUE(h != NULL);
    for (int i = 0; i < 3; i++) {
        ASSERT_EQ_INT(om_exphelper_consume(h, batch_of(2)), 0);
    }
    ASSERT_EQ_INT(QUEUE_SIZE(&host, "traces"), 2); /* one of the three is being sent */
    ASSERT_EQ_INT(QUEUE_SIZE(&host, "logs"), 0);
    ASSERT_EQ_INT(QUEUE_CAPACITY(&host, "traces"), 3);
    ASSERT_EQ_INT(QUEUE_CAPACITY(&host, "logs"), 3);
    /* Not wired for metrics: no series at all, as otelcol shows none. */
    ASSERT_EQ_INT(QUEUE_SIZE(&host, "metrics"), -1);
    ASSERT_EQ_INT(
        om_test_metric(&host, "otelcol_exporter_sent_metric_points", "exporter", "test", NULL), -1);
    ASSERT_EQ_INT(
        om_test_metric(&host, "otelcol_exporter_sent_log_records", "exporter", "test", NULL), 0);
    while (f.n > 0) {
        complete(&f, 0, 0);
    }
    ASSERT_EQ_INT(QUEUE_SIZE(&host, "traces"), 0);
    ASSERT_EQ_INT(SENT(&host), 6);
    int done = 0;
    om_exphelper_shutdown(h, done_cb, &done);
    ASSERT_EQ_INT(done, 1);
    om_exphelper_free(h);
    /* The gauges read the helper: once it is gone they are not shown; the counters stay. */
    ASSERT_EQ_INT(QUEUE_SIZE(&host, "traces"), -1);
    ASSERT_EQ_INT(SENT(&host), 6);
    om_test_host_close(&host);
    ASSERT_EQ_INT(uv_loop_close(&loop), 0);
}

/* A host without a registry (made by hand, or by an embedder) must work as before. */
static void test_works_without_a_registry(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    om_host_t host;
    om_test_host_init(&host, &loop);
    om_metrics_t *saved = host.metrics;
    host.metrics = NULL;
    fake_t f = {.loop = &loop};
    om_exphelper_cfg_t cfg = cfg_with(1, 1, 10);
    om_exphelper_t *h = new_helper(&host, &cfg, fake_send, &f);
    ASSERT_TRUE(h != NULL);
    om_log_set_level(OM_LOG_NONE);
    ASSERT_EQ_INT(om_exphelper_consume(h, batch_of(1)), 0);
    ASSERT_EQ_INT(om_exphelper_consume(h, batch_of(1)), 0);
    ASSERT_EQ_INT(om_exphelper_consume(h, batch_of(1)), OM_EREFUSED);
    complete(&f, 0, 0);
    complete(&f, OM_EPERM, 0);
    om_log_set_level(OM_LOG_ERROR);
    int done = 0;
    om_exphelper_shutdown(h, done_cb, &done);
    ASSERT_EQ_INT(done, 1);
    om_exphelper_free(h);
    host.metrics = saved;
    ASSERT_EQ_INT(SENT(&host), -1);
    om_test_host_close(&host);
    ASSERT_EQ_INT(uv_loop_close(&loop), 0);
}

/* om_exp_req_done says whether the request comes back: true for a retry scheduled (the same
 * pointer is sent again), false once it is finished (delivered, dropped, out of retries). */
static void test_done_says_whether_the_request_comes_back(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    om_host_t host;
    om_test_host_init(&host, &loop);
    fake_t f = {.loop = &loop};
    om_exphelper_cfg_t cfg = cfg_with(1, 4, 5);
    cfg.retry_on_failure.max_elapsed_time = 40 * OM_NS_PER_MS;
    om_exphelper_t *h = new_helper(&host, &cfg, fake_send, &f);
    ASSERT_EQ_INT(om_exphelper_consume(h, batch_of(3)), 0);
    om_exp_req_t *first = f.inflight[0];
    f.n = 0;
    ASSERT_TRUE(om_exp_req_done(first, OM_EAGAIN, 0, "again"));
    run_until_sends(&loop, &f, 2);
    ASSERT_TRUE(f.inflight[0] == first);
    ASSERT_EQ_INT(first->attempt, 2);
    f.n = 0;
    ASSERT_TRUE(!om_exp_req_done(first, 0, 0, NULL)); /* delivered */
    ASSERT_EQ_INT(om_exphelper_consume(h, batch_of(1)), 0);
    f.n = 0;
    ASSERT_TRUE(!om_exp_req_done(f.inflight[0], OM_EPERM, 0, "no")); /* permanent */
    ASSERT_EQ_INT(om_exphelper_consume(h, batch_of(1)), 0);
    /* Retried until max_elapsed_time passes: then finished. */
    bool again = true;
    for (int i = 0; i < 100 && again; i++) {
        int before = f.sends;
        f.n = 0;
        again = om_exp_req_done(f.inflight[0], OM_EAGAIN, 0, "again");
        if (again) {
            run_until_sends(&loop, &f, before + 1);
        }
    }
    ASSERT_TRUE(!again);
    ASSERT_EQ_UINT(SENT(&host), 3);
    ASSERT_EQ_UINT(SEND_FAILED(&host), 2);
    int done = 0;
    om_exphelper_shutdown(h, done_cb, &done);
    uv_run(&loop, UV_RUN_DEFAULT);
    ASSERT_EQ_INT(done, 1);
    om_exphelper_free(h);
    om_test_host_close(&host);
    ASSERT_EQ_INT(uv_loop_close(&loop), 0);
}

int main(void)
{
    om_log_set_level(OM_LOG_ERROR);
    OM_RUN(test_queue_bounds_and_refuses_when_full);
    OM_RUN(test_retries_with_backoff_and_retry_after);
    OM_RUN(test_permanent_errors_and_elapsed_limit_drop);
    OM_RUN(test_shutdown_drains_queue);
    OM_RUN(test_shutdown_closing_drains_then_closes);
    OM_RUN(test_instant_completions_do_not_recurse);
    OM_RUN(test_shutdown_gives_waiting_retries_one_last_attempt);
    OM_RUN(test_queue_gauges_per_signal_wired);
    OM_RUN(test_works_without_a_registry);
    OM_RUN(test_done_says_whether_the_request_comes_back);
    return om_test_summary();
}
