/* resource_test.c: the resource processor: actions on resource attributes for each signal
 * (item attributes untouched), a resource entry without a Resource, the fast path, config
 * errors, and the generic lifecycle. */
#include <stdlib.h>

#include "config.h"
#include "om_test.h"
#include "om_testdata.h"

extern const om_factory_t proc_resource_factory;

typedef struct fixture {
    uv_loop_t loop;
    om_host_t host;
    void *cfg; /* om_test_config_load's */
    void *self;
    om_batch_t *out;
} fixture_t;

static int capture(void *self, om_batch_t *b)
{
    fixture_t *f = self;
    if (f->out != NULL) {
        om_batch_release(f->out);
    }
    f->out = b;
    return 0;
}

/* The processor from "c: <flow>"; false with the problem in msg when it cannot be made. */
static bool setup(fixture_t *f, const char *flow, char *msg, size_t n)
{
    memset(f, 0, sizeof *f);
    if (uv_loop_init(&f->loop) != 0) {
        return false;
    }
    om_test_host_init(&f->host, &f->loop);
    const char *why = "";
    om_err_t err = {0};
    f->cfg = om_test_config_load(&proc_resource_factory, flow, &why);
    int rc = f->cfg != NULL ? 0 : OM_ECONFIG;
    om_create_args_t a = {.cfg = f->cfg,
                          .id = "resource",
                          .log_name = "processor/resource",
                          .host = &f->host,
                          .signals = OM_SIG_ALL};
    for (int i = 0; i < OM_SIG_COUNT; i++) {
        a.next[i] = (om_consumer_t){f, capture};
    }
    rc = rc != 0 ? rc : proc_resource_factory.create(&a, &f->self, &err);
    if (msg != NULL) {
        snprintf(msg, n, "%s", f->cfg == NULL ? why : err.msg);
    }
    return rc == 0;
}

static void set_done(void *arg)
{
    *(int *)arg = 1;
}

static void teardown(fixture_t *f)
{
    if (f->self != NULL) {
        int done = 0;
        proc_resource_factory.shutdown(f->self, set_done, &done);
        proc_resource_factory.destroy(f->self);
    }
    if (f->out != NULL) {
        om_batch_release(f->out);
    }
    om_test_config_free(&proc_resource_factory, f->cfg);
    om_test_host_close(&f->host);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    uv_loop_close(&f->loop);
}

static int consume(fixture_t *f, om_batch_t *b)
{
    om_consume_fn fn = b->signal == OM_SIG_TRACES    ? proc_resource_factory.consume_traces
                       : b->signal == OM_SIG_METRICS ? proc_resource_factory.consume_metrics
                                                     : proc_resource_factory.consume_logs;
    return fn(f->self, b);
}

static int dump_item(om_item_t *it, void *arg)
{
    om_strbuf_t *sb = arg;
    om_strbuf_puts(sb, sb->len > 0 ? " {" : "{");
    for (size_t i = 0; i < om_attrs_count(&it->attrs); i++) {
        const om_keyvalue_t *kv = om_attrs_at(&it->attrs, i);
        om_strbuf_printf(sb, "%s%s=", i > 0 ? " " : "", kv->key);
        om_anyvalue_to_string(kv->value, sb);
    }
    om_strbuf_putc(sb, '}');
    return OM_KEEP;
}

static const char *attrs_at(om_batch_t **b, om_level_t level)
{
    static char out[4][1024];
    static int turn;
    char *o = out[turn++ % 4];
    om_strbuf_t sb;
    om_strbuf_init(&sb, 0);
    om_batch_walk(b, level, dump_item, &sb, NULL);
    snprintf(o, 1024, "%s", sb.data != NULL ? sb.data : "");
    om_strbuf_free(&sb);
    return o;
}

#define ACTIONS                                                                                    \
    "{attributes: [{key: cloud.availability_zone, value: zone-1, action: upsert},"                 \
    " {key: k8s.cluster.name, from_attribute: k8s-cluster, action: insert},"                       \
    " {key: redundant-attribute, action: delete}]}"

/* Every signal: resources change, items do not. */
static void test_resources_of_each_signal(void)
{
    static const char *const texts[] = {
        "resource service.name=a k8s-cluster='c1' redundant-attribute=1; span s k8s-cluster='x';"
        "resource service.name=b; span t",
        "metrics; resource service.name=a k8s-cluster='c1' redundant-attribute=1; metric m;"
        " point 1 k8s-cluster='x'; resource service.name=b; metric n; point 2",
        "logs; resource service.name=a k8s-cluster='c1' redundant-attribute=1; log x"
        " k8s-cluster='x'; resource service.name=b; log y",
    };
    static const om_level_t levels[] = {OM_LEVEL_SPAN, OM_LEVEL_DATAPOINT, OM_LEVEL_LOG};
    for (int i = 0; i < 3; i++) {
        fixture_t f;
        ASSERT_TRUE(setup(&f, ACTIONS, NULL, 0));
        ASSERT_EQ_INT(consume(&f, om_testdata_otlp("%s", texts[i])), 0);
        ASSERT_EQ_STR(attrs_at(&f.out, OM_LEVEL_RESOURCE),
                      "{service.name=a k8s-cluster=c1 cloud.availability_zone=zone-1 "
                      "k8s.cluster.name=c1} {service.name=b cloud.availability_zone=zone-1}");
        ASSERT_EQ_STR(attrs_at(&f.out, levels[i]), "{k8s-cluster=x} {}");
        teardown(&f);
    }
}

/* A resource entry without a Resource gets one when an action sets an attribute. */
static void test_absent_resource(void)
{
    fixture_t f;
    ASSERT_TRUE(setup(&f, ACTIONS, NULL, 0));
    ASSERT_EQ_INT(consume(&f, om_testdata_otlp("span s")), 0);
    ASSERT_TRUE(f.out->traces->resource_spans[0]->resource != NULL);
    ASSERT_EQ_STR(attrs_at(&f.out, OM_LEVEL_RESOURCE), "{cloud.availability_zone=zone-1}");
    teardown(&f);
}

static void test_no_change_keeps_wire_bytes(void)
{
    fixture_t f;
    ASSERT_TRUE(setup(&f, "{attributes: [{key: secret, action: delete}]}", NULL, 0));
    om_batch_t *b = om_testdata_wire(om_testdata_otlp("resource service.name=a; span s"));
    ASSERT_EQ_INT(consume(&f, b), 0);
    ASSERT_TRUE(f.out == b && f.out->raw_valid);
    b = om_testdata_wire(om_testdata_otlp("resource service.name=a secret=1; span s"));
    ASSERT_EQ_INT(consume(&f, b), 0);
    ASSERT_TRUE(f.out->raw_valid && f.out->msg == NULL); /* edited on the wire */
    ASSERT_EQ_STR(attrs_at(&f.out, OM_LEVEL_RESOURCE), "{service.name=a}");
    teardown(&f);
    /* hash: decoded, changed, encoded again when sent. */
    ASSERT_TRUE(setup(&f, "{attributes: [{key: secret, action: hash}]}", NULL, 0));
    b = om_testdata_wire(om_testdata_otlp("resource service.name=a secret=1; span s"));
    ASSERT_EQ_INT(consume(&f, b), 0);
    ASSERT_TRUE(!f.out->raw_valid);
    ASSERT_EQ_STR(
        attrs_at(&f.out, OM_LEVEL_RESOURCE),
        "{service.name=a secret=7c9fa136d4413fa6173637e883b6998d32e1d675f88cddff9dcbcf331820f4b8}");
    teardown(&f);
}

static void test_config_errors(void)
{
    char msg[512];
    fixture_t f;
    ASSERT_TRUE(!setup(&f, "{}", msg, sizeof msg));
    ASSERT_EQ_STR(msg, "attributes: missing required field \"attributes\"");
    teardown(&f);
    ASSERT_TRUE(
        !setup(&f, "{attributes: [{key: a, action: extract, pattern: 'x'}]}", msg, sizeof msg));
    ASSERT_EQ_STR(msg,
                  "attributes[0]::pattern: field \"pattern\" contains no named matcher groups");
    teardown(&f);
    /* otelcol's key is `attributes`, not `actions`. */
    ASSERT_TRUE(!setup(&f, "{actions: [{key: a, action: delete}]}", msg, sizeof msg));
    ASSERT_CONTAINS(msg, "'processors::resource' has invalid keys: actions");
    teardown(&f);
}

static void test_lifecycle(void)
{
    om_test_lifecycle(&proc_resource_factory, ACTIONS);
    ASSERT_TRUE((proc_resource_factory.caps & OM_CAP_MUTATES_DATA) != 0);
}

int main(void)
{
    om_log_set_level(OM_LOG_ERROR);
    OM_RUN(test_resources_of_each_signal);
    OM_RUN(test_absent_resource);
    OM_RUN(test_no_change_keeps_wire_bytes);
    OM_RUN(test_config_errors);
    OM_RUN(test_lifecycle);
    return om_test_summary();
}
