/* om_lifecycle.c: the generic lifecycle test every factory gets (STYLE.md §10), run by each
 * component's own test file with the config it needs on this machine:
 * the config validates; create then shutdown works without start; create, start, one batch
 * per supported signal, shutdown (twice: the second call does nothing), destroy; afterwards
 * uv_loop_close() returns 0. A connector is created as one instance for every signal it takes
 * in, with a next consumer for every signal (the core makes one instance per signal pair and
 * wires only the pair's output; an instance wired for more must work as well). */
#include <stdlib.h>

#include "config.h"
#include "om_test.h"
#include "om_testdata.h"

static int consumed;

static int capture(void *self, om_batch_t *b)
{
    (void)self;
    consumed++;
    om_batch_release(b);
    return 0;
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

/* Applies the factory's field table to "c: <cfg_yaml>"; returns the config or NULL. */
static void *make_config(const om_factory_t *f, const char *cfg_yaml, om_config_t **yaml)
{
    om_strbuf_t text;
    om_strbuf_init(&text, 0);
    om_strbuf_printf(&text, "c: %s\n", cfg_yaml != NULL ? cfg_yaml : "");
    om_diags_t d = {0};
    void *cfg = calloc(1, f->config_size);
    int rc = text.failed || cfg == NULL
                 ? OM_ENOMEM
                 : om_config_load_string("t.yaml", text.data, text.len, yaml, &d);
    om_strbuf_free(&text);
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
        if (cfg != NULL) {
            om_fields_free(f->fields, cfg);
        }
        free(cfg);
        return NULL;
    }
    return cfg;
}

static void lifecycle(const om_factory_t *f, const char *cfg_yaml, bool start)
{
    uv_loop_t loop;
    ASSERT_EQ_INT(uv_loop_init(&loop), 0);
    om_host_t host;
    om_test_host_init(&host, &loop);
    om_config_t *yaml = NULL;
    void *cfg = make_config(f, cfg_yaml, &yaml);
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
        /* start is optional: a component with no handles to open (forward) has none. */
        ASSERT_EQ_INT(f->start != NULL ? f->start(self, &err) : 0, 0);
        for (int i = 0; i < OM_SIG_COUNT; i++) {
            om_signal_t s = om_signal_from_index(i);
            if ((f->signals & s) && consume_of(f, s) != NULL) {
                ASSERT_EQ_INT(consume_of(f, s)(self, om_testdata_simple(s, 1, 1)), 0);
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
    ASSERT_EQ_INT(done, 1); /* done was not called again */
    ASSERT_EQ_INT(uv_loop_close(&loop), 0);
}

void om_test_lifecycle(const om_factory_t *f, const char *cfg_yaml)
{
    ASSERT_EQ_UINT(f->abi, OM_FACTORY_ABI);
    int before = om_test_failed_now;
    lifecycle(f, cfg_yaml, false);
    ASSERT_EQ_INT(om_test_failed_now, before);
    lifecycle(f, cfg_yaml, true);
}
