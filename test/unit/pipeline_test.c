/* pipeline_test.c: the graph built from service.pipelines: every config error otelcol users
 * know, with file:line:column, and a real graph that starts and shuts down cleanly. */
#include <stdlib.h>

#include "config.h"
#include "om_test.h"
#include "pipeline.h"

/* Builds the graph for yaml (validate only); returns all messages joined by '\n'. */
static char *problems_of(const char *yaml, bool validate_only, om_graph_t **out, om_host_t *h)
{
    om_diags_t d = {0};
    om_config_t *cfg = NULL;
    om_strbuf_t all;
    om_strbuf_init(&all, 0);
    om_strbuf_puts(&all, "");
    if (om_config_load_string("p.yaml", yaml, strlen(yaml), &cfg, &d) == 0) {
        om_graph_t *g = NULL;
        om_graph_build(cfg, h, validate_only, &g, &d);
        if (out != NULL) {
            *out = g;
        } else {
            om_graph_free(g);
        }
    }
    for (size_t i = 0; i < d.n; i++) {
        om_strbuf_printf(&all, "%s\n", d.msgs[i]);
    }
    om_diags_free(&d);
    if (out == NULL) {
        om_config_free(cfg);
    }
    return om_strbuf_steal(&all, NULL);
}

#define GOOD_COMPONENTS                                                                            \
    "receivers:\n"                                                                                 \
    "  otlp:\n"                                                                                    \
    "    protocols:\n"                                                                             \
    "      grpc:\n"                                                                                \
    "processors:\n"                                                                                \
    "  batch:\n"                                                                                   \
    "exporters:\n"                                                                                 \
    "  debug:\n"

/* A rule over several fields points at the key it is about, not at the component. */
static void test_cross_field_error_points_at_the_key(void)
{
    char *p = problems_of("receivers:\n"
                          "  otlp:\n"
                          "    protocols:\n"
                          "      grpc:\n"
                          "processors:\n"
                          "  batch/2:\n"
                          "    send_batch_size: 100\n"
                          "    send_batch_max_size: 10\n"
                          "exporters:\n"
                          "  debug:\n"
                          "service:\n"
                          "  pipelines:\n"
                          "    traces:\n"
                          "      receivers: [otlp]\n"
                          "      processors: [batch/2]\n"
                          "      exporters: [debug]\n",
                          true, NULL, NULL);
    ASSERT_EQ_STR(p, "p.yaml:8:26: processors::batch/2: send_batch_max_size: must be greater or "
                     "equal to send_batch_size (100)\n");
    free(p);
}

static void test_valid_config_has_no_problems(void)
{
    char *p = problems_of(GOOD_COMPONENTS "service:\n"
                                          "  pipelines:\n"
                                          "    traces:\n"
                                          "      receivers: [otlp]\n"
                                          "      processors: [batch]\n"
                                          "      exporters: [debug]\n"
                                          "    traces/2:\n"
                                          "      receivers: [otlp]\n"
                                          "      exporters: [debug]\n",
                          true, NULL, NULL);
    ASSERT_EQ_STR(p, "");
    free(p);
}

static void test_unknown_type_lists_valid_values(void)
{
    char *p = problems_of("receivers:\n"
                          "  otlp:\n"
                          "    protocols: {grpc: }\n"
                          "  kafka/in:\n"
                          "exporters:\n"
                          "  debug:\n"
                          "service:\n"
                          "  pipelines:\n"
                          "    traces:\n"
                          "      receivers: [otlp, kafka/in]\n"
                          "      exporters: [debug]\n",
                          true, NULL, NULL);
    ASSERT_CONTAINS(p, "p.yaml:4:3: receivers: unknown type: \"kafka\" for id: \"kafka/in\" "
                       "(valid values: [\"otlp\"])");
    /* Reported once, not again where the pipeline names it. */
    ASSERT_TRUE(strstr(p, "not configured") == NULL);
    free(p);
}

static void test_undefined_references(void)
{
    char *p = problems_of(GOOD_COMPONENTS "service:\n"
                                          "  pipelines:\n"
                                          "    traces:\n"
                                          "      receivers: [otlp]\n"
                                          "      processors: [batch, memory_limiter]\n"
                                          "      exporters: [debug, otlp/tempo]\n",
                          true, NULL, NULL);
    ASSERT_CONTAINS(p, "p.yaml:13:27: service::pipelines::traces: references processor "
                       "\"memory_limiter\" which is not configured");
    ASSERT_CONTAINS(p, "p.yaml:14:26: service::pipelines::traces: references exporter "
                       "\"otlp/tempo\" which is not configured");
    free(p);
}

static void test_pipeline_shape_errors(void)
{
    char *p = problems_of(GOOD_COMPONENTS "service:\n"
                                          "  pipelines:\n"
                                          "    traces:\n"
                                          "      exporters: [debug]\n"
                                          "    metrics:\n"
                                          "      receivers: [otlp]\n"
                                          "      processors: [batch, batch]\n"
                                          "    profiles:\n"
                                          "      receivers: [otlp]\n"
                                          "      exporters: [debug]\n"
                                          "      extra: 1\n",
                          true, NULL, NULL);
    ASSERT_CONTAINS(p, "p.yaml:11:5: service::pipelines::traces: must have at least one "
                       "receiver");
    ASSERT_CONTAINS(p, "p.yaml:13:5: service::pipelines::metrics: must have at least one "
                       "exporter");
    ASSERT_CONTAINS(p, "p.yaml:15:27: service::pipelines::metrics: references processor "
                       "\"batch\" multiple times");
    ASSERT_CONTAINS(p, "p.yaml:16:5: service::pipelines::profiles: unknown signal "
                       "\"profiles\"");
    ASSERT_CONTAINS(p, "p.yaml:19:7: 'service::pipelines::profiles' has invalid keys: extra");
    free(p);
}

static void test_no_pipelines_and_bad_top_level(void)
{
    char *p = problems_of(GOOD_COMPONENTS "recievers:\n"
                                          "  otlp:\n"
                                          "service:\n"
                                          "  telemetry:\n"
                                          "    logs:\n"
                                          "      level: loud\n",
                          true, NULL, NULL);
    ASSERT_CONTAINS(p, "service must have at least one pipeline");
    ASSERT_CONTAINS(p, "p.yaml:9:1: '' has invalid keys: recievers");
    ASSERT_CONTAINS(p, "p.yaml:14:14: service::telemetry::logs::level:");
    free(p);
}

static void test_signal_unsupported_by_component(void)
{
    /* Every component so far supports all signals; a pipeline must still name real ones. */
    char *p = problems_of(GOOD_COMPONENTS "service:\n"
                                          "  pipelines:\n"
                                          "    logs:\n"
                                          "      receivers: [debug]\n"
                                          "      exporters: [otlp]\n",
                          true, NULL, NULL);
    ASSERT_CONTAINS(p, "references receiver \"debug\" which is not configured");
    ASSERT_CONTAINS(p, "references exporter \"otlp\" which is not configured");
    free(p);
}

/* No built-in limit on how many pipelines share a receiver or how many exporters a pipeline
 * has (there used to be a silent cap of 64). */
static void test_many_pipelines_and_exporters(void)
{
    om_strbuf_t y;
    om_strbuf_init(&y, 0);
    om_strbuf_puts(&y, "receivers:\n  otlp:\n    protocols:\n      grpc:\nexporters:\n");
    for (int i = 0; i < 70; i++) {
        om_strbuf_printf(&y, "  debug/%d:\n", i);
    }
    om_strbuf_puts(&y, "service:\n  pipelines:\n");
    for (int p = 0; p < 80; p++) {
        om_strbuf_printf(&y, "    traces/%d:\n      receivers: [otlp]\n      exporters: [", p);
        for (int i = 0; i < 70; i++) {
            om_strbuf_printf(&y, "%sdebug/%d", i ? ", " : "", i);
        }
        om_strbuf_puts(&y, "]\n");
    }
    ASSERT_TRUE(!y.failed);
    uv_loop_t loop;
    ASSERT_EQ_INT(uv_loop_init(&loop), 0);
    om_host_t host;
    om_test_host_init(&host, &loop);
    om_graph_t *g = NULL;
    om_diags_t d = {0};
    om_config_t *cfg = NULL;
    ASSERT_EQ_INT(om_config_load_string("m.yaml", y.data, y.len, &cfg, &d), 0);
    om_strbuf_free(&y);
    ASSERT_EQ_INT(om_graph_build(cfg, &host, false, &g, &d), 0);
    ASSERT_EQ_UINT(d.n, 0);
    om_graph_free(g);
    om_config_free(cfg);
    om_diags_free(&d);
    om_test_host_close(&host);
    ASSERT_EQ_INT(uv_loop_close(&loop), 0);
}

static void stopped(void *arg)
{
    *(int *)arg += 1;
}

static void test_graph_starts_and_stops(void)
{
    uv_loop_t loop;
    ASSERT_EQ_INT(uv_loop_init(&loop), 0);
    om_host_t host;
    om_test_host_init(&host, &loop);
    om_graph_t *g = NULL;
    const char *yaml = "receivers:\n"
                       "  otlp:\n"
                       "    protocols:\n"
                       "      grpc: {endpoint: '127.0.0.1:0'}\n"
                       "      http: {endpoint: '127.0.0.1:0'}\n"
                       "processors:\n"
                       "  batch:\n"
                       "exporters:\n"
                       "  debug:\n"
                       "service:\n"
                       "  pipelines:\n"
                       "    traces: {receivers: [otlp], processors: [batch], exporters: [debug]}\n"
                       "    logs: {receivers: [otlp], processors: [batch], exporters: [debug]}\n";
    om_diags_t d = {0};
    om_config_t *cfg = NULL;
    ASSERT_EQ_INT(om_config_load_string("g.yaml", yaml, strlen(yaml), &cfg, &d), 0);
    ASSERT_EQ_INT(om_graph_build(cfg, &host, false, &g, &d), 0);
    om_err_t err = {0};
    ASSERT_EQ_INT(om_graph_start(g, &err), 0);
    int done = 0;
    om_graph_shutdown(g, stopped, &done);
    for (int i = 0; i < 100000 && done == 0; i++) {
        uv_run(&loop, UV_RUN_ONCE);
    }
    ASSERT_EQ_INT(done, 1);
    om_graph_free(g);
    om_config_free(cfg);
    om_diags_free(&d);
    om_test_host_close(&host);
    uv_run(&loop, UV_RUN_DEFAULT);
    ASSERT_EQ_INT(uv_loop_close(&loop), 0);
}

int main(void)
{
    om_log_set_level(OM_LOG_ERROR);
    OM_RUN(test_valid_config_has_no_problems);
    OM_RUN(test_cross_field_error_points_at_the_key);
    OM_RUN(test_many_pipelines_and_exporters);
    OM_RUN(test_unknown_type_lists_valid_values);
    OM_RUN(test_undefined_references);
    OM_RUN(test_pipeline_shape_errors);
    OM_RUN(test_no_pipelines_and_bad_top_level);
    OM_RUN(test_signal_unsupported_by_component);
    OM_RUN(test_graph_starts_and_stops);
    return om_test_summary();
}
