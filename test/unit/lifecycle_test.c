/* lifecycle_test.c: the generic lifecycle test every factory gets (STYLE.md §10):
 * defaults validate; create then shutdown works without start; create, start, one batch per
 * supported signal, shutdown, destroy; afterwards uv_loop_close() returns 0. */
#include <stdlib.h>
#include <unistd.h>

#include "config.h"
#include "om_test.h"

static char tmp_file[64];

/* The config a factory needs beyond its defaults to start on this machine. */
static const char *config_for(const om_factory_t *f)
{
    static char buf[256];
    if (f->kind == OM_RECEIVER && strcmp(f->type, "otlp") == 0) {
        return "c: {protocols: {grpc: {endpoint: '127.0.0.1:0'}, "
               "http: {endpoint: '127.0.0.1:0'}}}";
    }
    if (f->kind == OM_EXTENSION && strcmp(f->type, "health_check") == 0) {
        return "c: {endpoint: '127.0.0.1:0'}";
    }
    /* Exporters to a closed port, without retries, so that a send fails at once. */
    if (f->kind == OM_EXPORTER && strcmp(f->type, "otlp") == 0) {
        return "c: {endpoint: '127.0.0.1:1', tls: {insecure: true}, "
               "retry_on_failure: {enabled: false}}";
    }
    if (f->kind == OM_EXPORTER && strcmp(f->type, "otlphttp") == 0) {
        return "c: {endpoint: 'http://127.0.0.1:1', retry_on_failure: {enabled: false}}";
    }
    if (f->kind == OM_EXPORTER && strcmp(f->type, "file") == 0) {
        snprintf(buf, sizeof buf, "c: {path: '%s'}", tmp_file);
        return buf;
    }
    return "c:";
}

static int consumed;

static int capture(void *self, om_batch_t *b)
{
    (void)self;
    consumed++;
    om_batch_release(b);
    return 0;
}

/* One batch of the signal with one resource, one scope and one item. */
static om_batch_t *one_item_batch(om_signal_t sig)
{
    om_batch_t *b = om_batch_new(sig, 0);
    om_arena_t *a = b->arenas[0];
    if (sig == OM_SIG_TRACES) {
        om_resource_spans_t *rs = om_arena_alloc(a, sizeof *rs);
        om_scope_spans_t *ss = om_arena_alloc(a, sizeof *ss);
        om_span_t *sp = om_arena_alloc(a, sizeof *sp);
        opentelemetry__proto__trace__v1__resource_spans__init(rs);
        opentelemetry__proto__trace__v1__scope_spans__init(ss);
        opentelemetry__proto__trace__v1__span__init(sp);
        sp->name = "op";
        ss->n_spans = 1;
        ss->spans = om_arena_alloc(a, sizeof *ss->spans);
        ss->spans[0] = sp;
        rs->n_scope_spans = 1;
        rs->scope_spans = om_arena_alloc(a, sizeof *rs->scope_spans);
        rs->scope_spans[0] = ss;
        b->traces->n_resource_spans = 1;
        b->traces->resource_spans = om_arena_alloc(a, sizeof *b->traces->resource_spans);
        b->traces->resource_spans[0] = rs;
    } else if (sig == OM_SIG_LOGS) {
        om_resource_logs_t *rl = om_arena_alloc(a, sizeof *rl);
        om_scope_logs_t *sl = om_arena_alloc(a, sizeof *sl);
        om_log_record_t *lr = om_arena_alloc(a, sizeof *lr);
        opentelemetry__proto__logs__v1__resource_logs__init(rl);
        opentelemetry__proto__logs__v1__scope_logs__init(sl);
        opentelemetry__proto__logs__v1__log_record__init(lr);
        lr->severity_text = "INFO";
        sl->n_log_records = 1;
        sl->log_records = om_arena_alloc(a, sizeof *sl->log_records);
        sl->log_records[0] = lr;
        rl->n_scope_logs = 1;
        rl->scope_logs = om_arena_alloc(a, sizeof *rl->scope_logs);
        rl->scope_logs[0] = sl;
        b->logs->n_resource_logs = 1;
        b->logs->resource_logs = om_arena_alloc(a, sizeof *b->logs->resource_logs);
        b->logs->resource_logs[0] = rl;
    }
    /* Metrics stay empty: an empty request is valid OTLP too. */
    b->items = om_batch_count_items(b);
    return b;
}

static void done_cb(void *arg)
{
    *(int *)arg += 1;
}

static void run_until(uv_loop_t *loop, const int *flag)
{
    for (int i = 0; i < 100000 && *flag == 0; i++) {
        uv_run(loop, UV_RUN_ONCE);
    }
}

static om_consume_fn consume_of(const om_factory_t *f, om_signal_t s)
{
    return s == OM_SIG_TRACES    ? f->consume_traces
           : s == OM_SIG_METRICS ? f->consume_metrics
                                 : f->consume_logs;
}

/* Applies the factory's field table to its test config; returns the config or NULL. */
static void *make_config(const om_factory_t *f, om_config_t **yaml)
{
    om_diags_t d = {0};
    const char *text = config_for(f);
    void *cfg = calloc(1, f->config_size);
    int rc = om_config_load_string("t.yaml", text, strlen(text), yaml, &d);
    if (rc == 0) {
        rc = om_fields_apply(f->fields, cfg, om_node_get((*yaml)->root, "c"), f->type, &d);
    }
    om_err_t err = {0};
    if (rc == 0 && f->config_validate != NULL) {
        rc = f->config_validate(cfg, &err);
    }
    for (size_t i = 0; i < d.n; i++) {
        fprintf(stderr, "%s: %s\n", f->type, d.msgs[i]);
    }
    om_diags_free(&d);
    if (rc != 0) {
        fprintf(stderr, "%s: %s\n", f->type, err.msg);
        om_fields_free(f->fields, cfg);
        free(cfg);
        return NULL;
    }
    return cfg;
}

static void lifecycle(const om_factory_t *f, bool start)
{
    uv_loop_t loop;
    ASSERT_EQ_INT(uv_loop_init(&loop), 0);
    om_host_t host;
    om_test_host_init(&host, &loop);
    om_config_t *yaml = NULL;
    void *cfg = make_config(f, &yaml);
    ASSERT_TRUE(cfg != NULL);
    om_create_args_t a = {
        .cfg = cfg, .id = f->type, .log_name = f->type, .host = &host, .signals = f->signals};
    for (int i = 0; i < OM_SIG_COUNT; i++) {
        a.next[i] = (om_consumer_t){.self = NULL, .consume = capture};
    }
    void *self = NULL;
    om_err_t err = {0};
    ASSERT_EQ_INT(f->create(&a, &self, &err), 0);
    if (start) {
        ASSERT_EQ_INT(f->start(self, &err), 0);
        for (int i = 0; i < OM_SIG_COUNT; i++) {
            om_signal_t s = om_signal_from_index(i);
            if ((f->signals & s) && consume_of(f, s) != NULL) {
                ASSERT_EQ_INT(consume_of(f, s)(self, one_item_batch(s)), 0);
            }
        }
    }
    int done = 0;
    f->shutdown(self, done_cb, &done);
    f->shutdown(self, done_cb, &done); /* a second call does nothing */
    run_until(&loop, &done);
    ASSERT_EQ_INT(done, 1);
    f->destroy(self);
    om_fields_free(f->fields, cfg);
    if (f->config_free != NULL) {
        f->config_free(cfg);
    }
    free(cfg);
    om_config_free(yaml);
    om_test_host_close(&host);
    uv_run(&loop, UV_RUN_DEFAULT);
    ASSERT_EQ_INT(uv_loop_close(&loop), 0);
}

static void test_every_factory(void)
{
    int n = 0;
    for (const om_factory_t *const *f = om_factories; *f != NULL; f++, n++) {
        ASSERT_EQ_UINT((*f)->abi, OM_FACTORY_ABI);
        fprintf(stderr, "  %s/%s\n", om_kind_name((*f)->kind), (*f)->type);
        int before = om_test_failed_now;
        lifecycle(*f, false);
        lifecycle(*f, true);
        ASSERT_EQ_INT(om_test_failed_now, before);
    }
    ASSERT_TRUE(n >= 4);
}

int main(void)
{
    om_log_set_level(OM_LOG_ERROR);
    snprintf(tmp_file, sizeof tmp_file, "/tmp/om-lifecycle-%d.jsonl", (int)getpid());
    OM_RUN(test_every_factory);
    unlink(tmp_file);
    return om_test_summary();
}
