/* forward_test.c: the forward connector: the generic lifecycle, each signal handed on to the
 * next consumer of that signal as the very batch it got (no copy, the reference moves), the
 * next consumer's answer returned, and refusal after shutdown. */
#include "om_test.h"
#include "om_testdata.h"

extern const om_factory_t conn_forward_factory;

typedef struct sink {
    om_batch_t *last;
    int calls;
    int answer;
} sink_t;

static int sink_consume(void *self, om_batch_t *b)
{
    sink_t *s = self;
    s->calls++;
    om_batch_release(s->last);
    s->last = b;
    return s->answer;
}

static void test_lifecycle(void)
{
    om_test_lifecycle(&conn_forward_factory, NULL);
}

static void test_factory_declares_same_signal_pairs(void)
{
    const om_factory_t *f = &conn_forward_factory;
    ASSERT_EQ_INT(f->kind, OM_CONNECTOR);
    for (int i = 0; i < OM_SIG_COUNT; i++) {
        ASSERT_EQ_UINT(f->connects[i], om_signal_from_index(i));
    }
    ASSERT_EQ_UINT(f->caps & OM_CAP_MUTATES_DATA, 0);
}

static void done_cb(void *arg)
{
    *(int *)arg += 1;
}

static void test_passes_each_signal_on(void)
{
    uv_loop_t loop;
    ASSERT_EQ_INT(uv_loop_init(&loop), 0);
    om_host_t host;
    om_test_host_init(&host, &loop);
    sink_t sinks[OM_SIG_COUNT] = {{0}};
    sinks[1].answer = OM_EREFUSED;
    om_create_args_t a = {
        .id = "forward", .log_name = "connector/forward", .host = &host, .signals = OM_SIG_ALL};
    for (int i = 0; i < OM_SIG_COUNT; i++) {
        a.next[i] = (om_consumer_t){.self = &sinks[i], .consume = sink_consume};
    }
    void *self = NULL;
    om_err_t err = {0};
    ASSERT_EQ_INT(conn_forward_factory.create(&a, &self, &err), 0);
    om_batch_t *t = om_testdata_simple(OM_SIG_TRACES, 2, 1);
    om_batch_t *m = om_testdata_simple(OM_SIG_METRICS, 1, 1);
    om_batch_t *l = om_testdata_simple(OM_SIG_LOGS, 3, 1);
    ASSERT_EQ_INT(conn_forward_factory.consume_traces(self, t), 0);
    /* The next consumer's refusal is the caller's answer (its client retries). */
    ASSERT_EQ_INT(conn_forward_factory.consume_metrics(self, m), OM_EREFUSED);
    ASSERT_EQ_INT(conn_forward_factory.consume_logs(self, l), 0);
    ASSERT_TRUE(sinks[0].last == t && sinks[1].last == m && sinks[2].last == l);
    ASSERT_EQ_UINT(t->refs, 1);
    ASSERT_EQ_UINT(t->items, 2);
    ASSERT_EQ_UINT(l->items, 3);
    int done = 0;
    conn_forward_factory.shutdown(self, done_cb, &done);
    ASSERT_EQ_INT(done, 1);
    /* After shutdown it takes nothing more, and still owns what it is handed. */
    ASSERT_EQ_INT(
        conn_forward_factory.consume_traces(self, om_testdata_simple(OM_SIG_TRACES, 1, 1)),
        OM_ESHUTDOWN);
    ASSERT_EQ_INT(sinks[0].calls, 1);
    conn_forward_factory.destroy(self);
    for (int i = 0; i < OM_SIG_COUNT; i++) {
        om_batch_release(sinks[i].last);
    }
    om_test_host_close(&host);
    ASSERT_EQ_INT(uv_loop_close(&loop), 0);
}

/* A signal the core wired to nothing (one instance per signal pair: only the pair's output
 * signal has a next consumer) is refused, and the batch released. */
static void test_unwired_signal(void)
{
    sink_t sink = {0};
    om_create_args_t a = {.id = "forward", .log_name = "connector/forward", .signals = OM_SIG_LOGS};
    a.next[om_signal_index(OM_SIG_LOGS)] = (om_consumer_t){.self = &sink, .consume = sink_consume};
    void *self = NULL;
    om_err_t err = {0};
    ASSERT_EQ_INT(conn_forward_factory.create(&a, &self, &err), 0);
    ASSERT_EQ_INT(
        conn_forward_factory.consume_traces(self, om_testdata_simple(OM_SIG_TRACES, 1, 1)),
        OM_ENOTSUP);
    ASSERT_EQ_INT(sink.calls, 0);
    conn_forward_factory.destroy(self);
}

int main(void)
{
    om_log_set_level(OM_LOG_ERROR);
    OM_RUN(test_lifecycle);
    OM_RUN(test_factory_declares_same_signal_pairs);
    OM_RUN(test_passes_each_signal_on);
    OM_RUN(test_unwired_signal);
    return om_test_summary();
}
