/* batch_test.c: the batch processor: size and time triggers, splitting by
 * send_batch_max_size for each signal, shutdown flush, and shared inputs left untouched. */
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "om_test.h"
#include "om_testdata.h"

extern const om_factory_t proc_batch_factory;

#define MAX_CAPTURED 256

/* The next consumer: keeps what it is handed, answers rc. */
typedef struct capture {
    om_batch_t *batches[MAX_CAPTURED];
    size_t n;
    int rc;
} capture_t;

static int capture_consume(void *self, om_batch_t *b)
{
    capture_t *c = self;
    if (c->rc != 0 || c->n == MAX_CAPTURED) {
        om_batch_release(b);
        return c->rc != 0 ? c->rc : OM_EREFUSED;
    }
    c->batches[c->n++] = b;
    return 0;
}

typedef struct fixture {
    uv_loop_t loop;
    om_host_t host;
    capture_t cap;
    proc_batch_cfg_t cfg;
    void *self;
    bool shut, done;
} fixture_t;

static void on_done(void *arg)
{
    ((fixture_t *)arg)->done = true;
}

/* Creates and starts a processor (next wired for every signal, as sig's pipeline would have
 * it for sig); returns false when that fails. */
static bool setup(fixture_t *f, om_signal_t sig, int64_t timeout_ns, int64_t size, int64_t max)
{
    memset(f, 0, sizeof *f);
    if (uv_loop_init(&f->loop) != 0) {
        return false;
    }
    om_test_host_init(&f->host, &f->loop);
    f->cfg = (proc_batch_cfg_t){timeout_ns, size, max};
    om_create_args_t a = {.cfg = &f->cfg,
                          .id = "batch",
                          .log_name = "processor/batch",
                          .host = &f->host,
                          .signals = sig};
    (void)sig;
    for (int i = 0; i < OM_SIG_COUNT; i++) {
        a.next[i] = (om_consumer_t){&f->cap, capture_consume};
    }
    om_err_t err = {0};
    if (proc_batch_factory.create(&a, &f->self, &err) != 0) {
        return false;
    }
    return proc_batch_factory.start(f->self, &err) == 0;
}

/* Runs the loop until pred(f) holds or 5 s of loop time pass. */
static bool run_until(fixture_t *f, bool (*pred)(const fixture_t *))
{
    uv_update_time(&f->loop);
    uint64_t deadline = uv_now(&f->loop) + 5000;
    while (!pred(f) && uv_now(&f->loop) < deadline) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    return pred(f);
}

static bool is_done(const fixture_t *f)
{
    return f->done;
}

static bool has_one(const fixture_t *f)
{
    return f->cap.n >= 1;
}

static void shutdown_proc(fixture_t *f)
{
    if (!f->shut) {
        f->shut = true;
        proc_batch_factory.shutdown(f->self, on_done, f);
    }
}

/* Shuts down (if not yet), waits for done, destroys; returns uv_loop_close()'s result. */
static int teardown(fixture_t *f)
{
    shutdown_proc(f);
    run_until(f, is_done);
    proc_batch_factory.destroy(f->self);
    for (size_t i = 0; i < f->cap.n; i++) {
        om_batch_release(f->cap.batches[i]);
    }
    f->cap.n = 0;
    uv_run(&f->loop, UV_RUN_NOWAIT);
    om_test_host_close(&f->host);
    return uv_loop_close(&f->loop);
}

static int consume(fixture_t *f, om_batch_t *b)
{
    switch (b->signal) {
    case OM_SIG_METRICS:
        return proc_batch_factory.consume_metrics(f->self, b);
    case OM_SIG_LOGS:
        return proc_batch_factory.consume_logs(f->self, b);
    default:
        return proc_batch_factory.consume_traces(f->self, b);
    }
}

/* Every captured item's sequence number, in arrival order; returns the count. */
static size_t captured_seqs(const capture_t *c, int64_t *out, size_t max)
{
    size_t total = 0;
    for (size_t i = 0; i < c->n; i++) {
        size_t n = om_testdata_seqs(c->batches[i], total < max ? out + total : NULL,
                                    total < max ? max - total : 0);
        total += n;
    }
    return total;
}

/* The batch packs to protobuf and decodes back to the same number of items. */
static bool round_trips(const om_batch_t *b)
{
    size_t len = om_batch_proto_size(b);
    uint8_t *buf = malloc(len > 0 ? len : 1);
    if (buf == NULL) {
        return false;
    }
    om_batch_proto_pack(b, buf);
    om_batch_t *back = NULL;
    om_err_t err = {0};
    int rc = om_batch_decode_proto(b->signal, buf, len, 0, &back, &err);
    free(buf);
    bool ok = rc == 0 && om_batch_count_items(back) == b->items;
    om_batch_release(back);
    return ok;
}

/* ---- config ------------------------------------------------------------------------------ */

static void test_defaults_and_validate(void)
{
    proc_batch_cfg_t cfg;
    memset(&cfg, 0xff, sizeof cfg);
    om_diags_t d = {0};
    ASSERT_EQ_INT(om_fields_apply(proc_batch_factory.fields, &cfg, NULL, "processors::batch", &d),
                  0);
    om_diags_free(&d);
    ASSERT_EQ_INT(cfg.timeout, 200 * OM_NS_PER_MS);
    ASSERT_EQ_INT(cfg.send_batch_size, 8192);
    ASSERT_EQ_INT(cfg.send_batch_max_size, 0);
    om_err_t err = {0};
    ASSERT_EQ_INT(proc_batch_factory.config_validate(&cfg, &err), 0);

    cfg.send_batch_max_size = 1000;
    ASSERT_EQ_INT(proc_batch_factory.config_validate(&cfg, &err), OM_ECONFIG);
    ASSERT_EQ_STR(err.at, "send_batch_max_size");
    ASSERT_EQ_STR(err.msg, "must be greater or equal to send_batch_size (8192)");
    cfg.send_batch_max_size = 8192;
    ASSERT_EQ_INT(proc_batch_factory.config_validate(&cfg, &(om_err_t){0}), 0);
    cfg.timeout = -1;
    om_err_t err2 = {0};
    ASSERT_EQ_INT(proc_batch_factory.config_validate(&cfg, &err2), OM_ECONFIG);
    ASSERT_EQ_STR(err2.at, "timeout");
    ASSERT_EQ_STR(err2.msg, "must be greater or equal to 0");
    om_fields_free(proc_batch_factory.fields, &cfg);
}

/* ---- triggers ---------------------------------------------------------------------------- */

static void test_size_trigger(void)
{
    fixture_t f;
    ASSERT_TRUE(setup(&f, OM_SIG_TRACES, 3600 * OM_NS_PER_S, 10, 0));
    ASSERT_EQ_INT(consume(&f, om_testdata_simple(OM_SIG_TRACES, 4, 0)), 0);
    ASSERT_EQ_INT(consume(&f, om_testdata_simple(OM_SIG_TRACES, 4, 4)), 0);
    ASSERT_EQ_UINT(f.cap.n, 0);
    ASSERT_EQ_INT(consume(&f, om_testdata_simple(OM_SIG_TRACES, 4, 8)), 0);
    ASSERT_EQ_UINT(f.cap.n, 1);
    ASSERT_EQ_UINT(f.cap.batches[0]->items, 12);
    int64_t seqs[16];
    ASSERT_EQ_UINT(captured_seqs(&f.cap, seqs, 16), 12);
    for (int i = 0; i < 12; i++) {
        ASSERT_EQ_INT(seqs[i], i);
    }
    ASSERT_TRUE(round_trips(f.cap.batches[0]));
    /* Nothing is pending, so the loop has nothing left to do. */
    uv_run(&f.loop, UV_RUN_NOWAIT);
    ASSERT_EQ_UINT(f.cap.n, 1);
    ASSERT_EQ_INT(teardown(&f), 0);
    ASSERT_EQ_UINT(f.cap.n, 0);
}

static void test_timeout_trigger(void)
{
    fixture_t f;
    ASSERT_TRUE(setup(&f, OM_SIG_LOGS, 10 * OM_NS_PER_MS, 100, 0));
    uv_update_time(&f.loop);
    uint64_t t0 = uv_now(&f.loop);
    ASSERT_EQ_INT(consume(&f, om_testdata_simple(OM_SIG_LOGS, 5, 0)), 0);
    ASSERT_EQ_UINT(f.cap.n, 0);
    ASSERT_TRUE(run_until(&f, has_one));
    ASSERT_TRUE(uv_now(&f.loop) - t0 >= 10);
    ASSERT_EQ_UINT(f.cap.n, 1);
    ASSERT_EQ_UINT(f.cap.batches[0]->items, 5);
    /* A second round starts a new timer. */
    ASSERT_EQ_INT(consume(&f, om_testdata_simple(OM_SIG_LOGS, 2, 5)), 0);
    ASSERT_EQ_UINT(f.cap.n, 1);
    uv_update_time(&f.loop);
    uint64_t deadline = uv_now(&f.loop) + 5000;
    while (f.cap.n < 2 && uv_now(&f.loop) < deadline) {
        uv_run(&f.loop, UV_RUN_ONCE);
    }
    ASSERT_EQ_UINT(f.cap.n, 2);
    ASSERT_EQ_UINT(f.cap.batches[1]->items, 2);
    ASSERT_EQ_INT(teardown(&f), 0);
}

static void test_timeout_zero_sends_at_once(void)
{
    fixture_t f;
    ASSERT_TRUE(setup(&f, OM_SIG_TRACES, 0, 8192, 3));
    ASSERT_EQ_INT(consume(&f, om_testdata_simple(OM_SIG_TRACES, 7, 0)), 0);
    ASSERT_EQ_UINT(f.cap.n, 3);
    ASSERT_EQ_UINT(f.cap.batches[0]->items, 3);
    ASSERT_EQ_UINT(f.cap.batches[1]->items, 3);
    ASSERT_EQ_UINT(f.cap.batches[2]->items, 1);
    int64_t seqs[8];
    ASSERT_EQ_UINT(captured_seqs(&f.cap, seqs, 8), 7);
    for (int i = 0; i < 7; i++) {
        ASSERT_EQ_INT(seqs[i], i);
    }
    ASSERT_EQ_INT(teardown(&f), 0);
}

/* A lone input batch that is sent whole is forwarded as it is, not copied. */
static void test_lone_input_forwarded(void)
{
    fixture_t f;
    ASSERT_TRUE(setup(&f, OM_SIG_METRICS, 3600 * OM_NS_PER_S, 5, 0));
    om_batch_t *in = om_testdata_simple(OM_SIG_METRICS, 6, 0);
    ASSERT_EQ_INT(consume(&f, in), 0);
    ASSERT_EQ_UINT(f.cap.n, 1);
    ASSERT_TRUE(f.cap.batches[0] == in);
    ASSERT_EQ_INT(teardown(&f), 0);
}

/* ---- splitting --------------------------------------------------------------------------- */

/* Sends `inputs` batches of the given shape (every count in it set) through a processor with the
 * given size trigger and max, then shuts down; checks every batch's size, validity, and that every
 * item arrived once, in order. */
static void check_split(om_signal_t sig, const om_testdata_shape_t *shape, size_t inputs,
                        int64_t size, int64_t max)
{
    fixture_t f;
    ASSERT_TRUE(setup(&f, sig, 3600 * OM_NS_PER_S, size, max));
    size_t per_input = shape->resources * shape->scopes * shape->items;
    if (sig == OM_SIG_METRICS) {
        per_input *= shape->metrics;
    }
    for (size_t i = 0; i < inputs; i++) {
        om_testdata_shape_t s = *shape;
        s.first_seq = i * per_input;
        om_batch_t *b = om_testdata_batch(sig, &s);
        ASSERT_TRUE(b != NULL);
        ASSERT_EQ_UINT(b->items, per_input);
        ASSERT_EQ_INT(consume(&f, b), 0);
    }
    size_t total = per_input * inputs;
    size_t before_shutdown = f.cap.n;
    shutdown_proc(&f);
    ASSERT_TRUE(f.cap.n >= before_shutdown);
    size_t sum = 0;
    for (size_t i = 0; i < f.cap.n; i++) {
        om_batch_t *b = f.cap.batches[i];
        ASSERT_EQ_UINT(b->items, om_batch_count_items(b));
        ASSERT_TRUE(b->items <= (size_t)max);
        /* With size == max, only the last batch (the shutdown flush) may be short. */
        if (size == max && i + 1 < f.cap.n) {
            ASSERT_EQ_UINT(b->items, (size_t)max);
        }
        ASSERT_TRUE(round_trips(b));
        sum += b->items;
    }
    ASSERT_EQ_UINT(sum, total);
    int64_t *seqs = calloc(total + 1, sizeof *seqs);
    ASSERT_TRUE(seqs != NULL);
    size_t n = captured_seqs(&f.cap, seqs, total);
    bool in_order = n == total;
    for (size_t i = 0; in_order && i < total; i++) {
        in_order = seqs[i] == (int64_t)i;
    }
    free(seqs);
    ASSERT_TRUE(in_order);
    ASSERT_EQ_INT(teardown(&f), 0);
}

static void test_split_traces(void)
{
    /* 2 resources x 2 scopes x 5 spans = 20 spans per input. */
    om_testdata_shape_t shape = {.resources = 2, .scopes = 2, .metrics = 1, .items = 5};
    check_split(OM_SIG_TRACES, &shape, 1, 7, 7);
    check_split(OM_SIG_TRACES, &shape, 3, 7, 7);
    check_split(OM_SIG_TRACES, &shape, 5, 10, 13);
    check_split(OM_SIG_TRACES, &shape, 2, 1, 1);
}

static void test_split_metrics(void)
{
    /* 2 resources x 2 scopes x 5 metrics (every kind) x 3 points = 60 points per input. */
    om_testdata_shape_t shape = {.resources = 2, .scopes = 2, .metrics = 5, .items = 3};
    check_split(OM_SIG_METRICS, &shape, 1, 7, 7);
    check_split(OM_SIG_METRICS, &shape, 3, 2, 2);
    check_split(OM_SIG_METRICS, &shape, 2, 50, 61);
}

static void test_split_logs(void)
{
    om_testdata_shape_t shape = {.resources = 3, .scopes = 1, .metrics = 1, .items = 4};
    check_split(OM_SIG_LOGS, &shape, 1, 5, 5);
    check_split(OM_SIG_LOGS, &shape, 10, 8, 8);
    check_split(OM_SIG_LOGS, &shape, 4, 12, 100);
}

/* A split metric keeps its name, kind and temporality in both halves. */
static void test_split_metric_keeps_descriptor(void)
{
    fixture_t f;
    ASSERT_TRUE(setup(&f, OM_SIG_METRICS, 3600 * OM_NS_PER_S, 4, 4));
    om_testdata_shape_t shape = {.metrics = 2, .items = 3}; /* gauge x3, sum x3 */
    ASSERT_EQ_INT(consume(&f, om_testdata_batch(OM_SIG_METRICS, &shape)), 0);
    ASSERT_EQ_UINT(f.cap.n, 1);
    shutdown_proc(&f);
    ASSERT_EQ_UINT(f.cap.n, 2);
    const om_scope_metrics_t *a = f.cap.batches[0]->metrics->resource_metrics[0]->scope_metrics[0];
    const om_scope_metrics_t *b = f.cap.batches[1]->metrics->resource_metrics[0]->scope_metrics[0];
    ASSERT_EQ_UINT(a->n_metrics, 2);
    ASSERT_EQ_STR(a->metrics[1]->name, "metric-0-0-1");
    ASSERT_EQ_UINT(a->metrics[1]->sum->n_data_points, 1);
    ASSERT_EQ_UINT(b->n_metrics, 1);
    ASSERT_EQ_STR(b->metrics[0]->name, "metric-0-0-1");
    ASSERT_EQ_INT(b->metrics[0]->data_case, OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM);
    ASSERT_EQ_UINT(b->metrics[0]->sum->n_data_points, 2);
    ASSERT_TRUE(b->metrics[0]->sum->is_monotonic);
    ASSERT_EQ_INT(
        b->metrics[0]->sum->aggregation_temporality,
        OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE);
    ASSERT_EQ_STR(f.cap.batches[1]->metrics->resource_metrics[0]->scope_metrics[0]->scope->name,
                  "scope-0");
    ASSERT_EQ_INT(teardown(&f), 0);
}

/* ---- shutdown, sharing, errors ----------------------------------------------------------- */

static void test_shutdown_flushes(void)
{
    fixture_t f;
    ASSERT_TRUE(setup(&f, OM_SIG_TRACES, 3600 * OM_NS_PER_S, 100, 0));
    ASSERT_EQ_INT(consume(&f, om_testdata_simple(OM_SIG_TRACES, 5, 0)), 0);
    ASSERT_EQ_INT(consume(&f, om_testdata_simple(OM_SIG_TRACES, 5, 5)), 0);
    ASSERT_EQ_UINT(f.cap.n, 0);
    shutdown_proc(&f);
    /* The flush is synchronous; done waits for the timer's close callback. */
    ASSERT_EQ_UINT(f.cap.n, 1);
    ASSERT_EQ_UINT(f.cap.batches[0]->items, 10);
    ASSERT_TRUE(!f.done);
    ASSERT_TRUE(run_until(&f, is_done));
    /* After shutdown, data is refused and a second shutdown does nothing. */
    ASSERT_EQ_INT(consume(&f, om_testdata_simple(OM_SIG_TRACES, 1, 0)), OM_ESHUTDOWN);
    f.done = false;
    proc_batch_factory.shutdown(f.self, on_done, &f);
    uv_run(&f.loop, UV_RUN_NOWAIT);
    ASSERT_TRUE(!f.done);
    f.done = true;
    ASSERT_EQ_INT(teardown(&f), 0);
}

static void test_shutdown_without_start(void)
{
    proc_batch_cfg_t cfg = {200 * OM_NS_PER_MS, 8192, 0};
    capture_t cap = {0};
    om_create_args_t a = {.cfg = &cfg, .id = "batch", .log_name = "processor/batch"};
    a.next[0] = (om_consumer_t){&cap, capture_consume};
    void *self = NULL;
    om_err_t err = {0};
    ASSERT_EQ_INT(proc_batch_factory.create(&a, &self, &err), 0);
    fixture_t f = {0};
    proc_batch_factory.shutdown(self, on_done, &f);
    ASSERT_TRUE(f.done);
    proc_batch_factory.destroy(self);
}

/* Inputs shared with another pipeline (refs > 1) are never changed by batching or splitting. */
static void test_shared_input_untouched(void)
{
    fixture_t f;
    ASSERT_TRUE(setup(&f, OM_SIG_METRICS, 3600 * OM_NS_PER_S, 4, 4));
    om_testdata_shape_t shape = {.resources = 2, .metrics = 3, .items = 3};
    om_batch_t *in = om_testdata_batch(OM_SIG_METRICS, &shape);
    ASSERT_TRUE(in != NULL);
    size_t len = om_batch_proto_size(in);
    uint8_t *before = malloc(2 * len);
    ASSERT_TRUE(before != NULL);
    uint8_t *after = before + len;
    om_batch_proto_pack(in, before);
    om_batch_ref(in); /* the other pipeline's reference */
    ASSERT_EQ_INT(consume(&f, in), 0);
    ASSERT_EQ_INT(consume(&f, om_testdata_simple(OM_SIG_METRICS, 3, 18)), 0);
    shutdown_proc(&f);
    ASSERT_EQ_UINT(f.cap.n, 6); /* 21 points in fours */
    for (size_t i = 0; i < f.cap.n; i++) {
        /* What was cut from the shared input says so: a mutating consumer must clone. */
        ASSERT_TRUE(f.cap.batches[i]->borrowed || f.cap.batches[i]->refs > 1);
    }
    ASSERT_EQ_INT(teardown(&f), 0);
    ASSERT_EQ_UINT(in->refs, 1);
    ASSERT_EQ_UINT(om_batch_proto_size(in), len);
    om_batch_proto_pack(in, after);
    ASSERT_TRUE(memcmp(before, after, len) == 0);
    ASSERT_EQ_UINT(in->items, 18);
    free(before);
    om_batch_release(in);
}

static void test_next_error_drops_and_accepts(void)
{
    fixture_t f;
    ASSERT_TRUE(setup(&f, OM_SIG_LOGS, 3600 * OM_NS_PER_S, 2, 0));
    f.cap.rc = OM_EREFUSED;
    om_log_set_level(OM_LOG_ERROR); /* the expected warning would only be noise */
    ASSERT_EQ_INT(consume(&f, om_testdata_simple(OM_SIG_LOGS, 3, 0)), 0);
    ASSERT_EQ_INT(consume(&f, om_testdata_simple(OM_SIG_LOGS, 3, 3)), 0);
    om_log_set_level(OM_LOG_INFO);
    ASSERT_EQ_UINT(f.cap.n, 0);
    f.cap.rc = 0;
    /* The failed batches are gone: nothing is flushed at shutdown. */
    shutdown_proc(&f);
    ASSERT_EQ_UINT(f.cap.n, 0);
    ASSERT_EQ_INT(teardown(&f), 0);
}

static void test_empty_input_dropped(void)
{
    fixture_t f;
    ASSERT_TRUE(setup(&f, OM_SIG_TRACES, 3600 * OM_NS_PER_S, 1, 0));
    ASSERT_EQ_INT(consume(&f, om_batch_new(OM_SIG_TRACES, 0)), 0);
    shutdown_proc(&f);
    ASSERT_EQ_UINT(f.cap.n, 0);
    ASSERT_EQ_INT(teardown(&f), 0);
}

/* An instance wired for several signals keeps them apart. */
static void test_signals_kept_apart(void)
{
    fixture_t f;
    ASSERT_TRUE(setup(&f, OM_SIG_TRACES, 3600 * OM_NS_PER_S, 5, 0));
    ASSERT_EQ_INT(consume(&f, om_testdata_simple(OM_SIG_TRACES, 3, 0)), 0);
    ASSERT_EQ_INT(consume(&f, om_testdata_simple(OM_SIG_METRICS, 2, 0)), 0);
    ASSERT_EQ_INT(consume(&f, om_testdata_simple(OM_SIG_LOGS, 4, 0)), 0);
    ASSERT_EQ_UINT(f.cap.n, 0);
    ASSERT_EQ_INT(consume(&f, om_testdata_simple(OM_SIG_TRACES, 2, 3)), 0);
    ASSERT_EQ_UINT(f.cap.n, 1);
    ASSERT_EQ_INT(f.cap.batches[0]->signal, OM_SIG_TRACES);
    ASSERT_EQ_UINT(f.cap.batches[0]->items, 5);
    shutdown_proc(&f);
    ASSERT_EQ_UINT(f.cap.n, 3);
    ASSERT_EQ_INT(f.cap.batches[1]->signal, OM_SIG_METRICS);
    ASSERT_EQ_UINT(f.cap.batches[1]->items, 2);
    ASSERT_EQ_INT(f.cap.batches[2]->signal, OM_SIG_LOGS);
    ASSERT_EQ_UINT(f.cap.batches[2]->items, 4);
    ASSERT_EQ_INT(teardown(&f), 0);
}

/* STYLE.md §10: the lifecycle every factory gets. */
static void test_generic_lifecycle(void)
{
    om_test_lifecycle(&proc_batch_factory, NULL);
}

int main(void)
{
    OM_RUN(test_defaults_and_validate);
    OM_RUN(test_size_trigger);
    OM_RUN(test_timeout_trigger);
    OM_RUN(test_timeout_zero_sends_at_once);
    OM_RUN(test_lone_input_forwarded);
    OM_RUN(test_split_traces);
    OM_RUN(test_split_metrics);
    OM_RUN(test_split_logs);
    OM_RUN(test_split_metric_keeps_descriptor);
    OM_RUN(test_shutdown_flushes);
    OM_RUN(test_shutdown_without_start);
    OM_RUN(test_shared_input_untouched);
    OM_RUN(test_next_error_drops_and_accepts);
    OM_RUN(test_empty_input_dropped);
    OM_RUN(test_signals_kept_apart);
    OM_RUN(test_generic_lifecycle);
    return om_test_summary();
}
