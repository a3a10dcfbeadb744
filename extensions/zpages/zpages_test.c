/* zpages_test.c: the zpages extension: the generic lifecycle, the core's introspection of a
 * built graph (om_host_pipelines, om_host_extensions) and the pipelinez page rendered from it,
 * with ids HTML-escaped and live counters. The pages in a browser: test/integration/zpages. */
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "om_test.h"
#include "om_testauth.h"
#include "pipeline.h"
#include "zpages.h"

static void done_cb(void *arg)
{
    (*(int *)arg)++;
}

static void test_generic_lifecycle(void)
{
    om_test_lifecycle(&ext_zpages_factory, "{endpoint: '127.0.0.1:0'}");
}

static void test_introspection_and_pipelinez(void)
{
    uv_loop_t loop;
    ASSERT_EQ_INT(uv_loop_init(&loop), 0);
    om_host_t host;
    om_test_host_init(&host, &loop);
    const char *yaml = "extensions:\n"
                       "  zpages: {endpoint: '127.0.0.1:0'}\n"
                       "  health_check: {endpoint: '127.0.0.1:0'}\n"
                       "receivers:\n"
                       "  otlp: {protocols: {grpc: {endpoint: '127.0.0.1:0'}}}\n"
                       "processors:\n"
                       "  batch/<b>&:\n"
                       "exporters:\n"
                       "  debug:\n"
                       "  debug/two:\n"
                       "service:\n"
                       "  extensions: [zpages]\n"
                       "  pipelines:\n"
                       "    traces: {receivers: [otlp], processors: ['batch/<b>&'], exporters: "
                       "[debug, debug/two]}\n"
                       "    logs/x: {receivers: [otlp], exporters: [debug]}\n";
    om_diags_t d = {0};
    om_config_t *cfg = NULL;
    ASSERT_EQ_INT(om_config_load_string("z.yaml", yaml, strlen(yaml), &cfg, &d), 0);
    om_graph_t *g = NULL;
    ASSERT_EQ_INT(om_graph_build(cfg, &host, false, &g, &d), 0);
    ASSERT_EQ_UINT(d.n, 0);
    const om_pipeline_info_t *p;
    ASSERT_EQ_UINT(om_host_pipelines(&host, &p), 2);
    ASSERT_EQ_STR(p[0].id, "traces");
    ASSERT_TRUE(p[0].signal == OM_SIG_TRACES);
    ASSERT_EQ_UINT(p[0].n_receivers, 1);
    ASSERT_EQ_STR(p[0].processors[0], "batch/<b>&");
    ASSERT_EQ_UINT(p[0].n_exporters, 2);
    ASSERT_EQ_STR(p[0].exporters[1], "debug/two");
    ASSERT_EQ_STR(p[1].id, "logs/x");
    ASSERT_EQ_UINT(p[1].n_processors, 0);
    const char *const *ext;
    ASSERT_EQ_UINT(om_host_extensions(&host, &ext), 1); /* health_check is not listed */
    ASSERT_EQ_STR(ext[0], "zpages");

    om_strbuf_t out;
    om_strbuf_init(&out, 0);
    ext_zpages_render_pipelinez(&host, &out);
    ASSERT_CONTAINS(out.data, "<td class=\"id\">batch/&lt;b&gt;&amp;</td>");
    ASSERT_TRUE(strstr(out.data, "<b>&") == NULL);
    ASSERT_CONTAINS(out.data, "<table data-pipeline=\"logs/x\">");
    /* The receiver's counters are the registry's: 0 until something arrives. */
    ASSERT_CONTAINS(out.data, "<td class=\"id\">otlp</td><td class=\"counters\">accepted: <span "
                              "class=\"n\">0</span> refused: <span class=\"n\">0</span>");
    om_strbuf_free(&out);

    om_graph_free(g);
    ASSERT_EQ_UINT(om_host_pipelines(&host, &p), 0); /* the graph is gone */
    om_config_free(cfg);
    om_diags_free(&d);
    om_test_host_close(&host);
    ASSERT_EQ_INT(uv_loop_close(&loop), 0);
}

/* `auth: {authenticator: ID}`: the server finds the authenticator on the host at start (it
 * failed before the host was passed); a name the host does not know fails start rather than
 * serving the pages open. */
static void test_auth(void)
{
    for (int known = 0; known < 2; known++) {
        uv_loop_t loop;
        ASSERT_EQ_INT(uv_loop_init(&loop), 0);
        om_host_t host;
        om_test_host_init(&host, &loop);
        om_testauth_t ta = {.secret = "z"};
        if (known) {
            om_testauth_register(&host, "testauth", &ta);
        }
        const char *yaml = "c: {endpoint: '127.0.0.1:0', auth: {authenticator: testauth}}";
        om_diags_t d = {0};
        om_config_t *cfg = NULL;
        ASSERT_EQ_INT(om_config_load_string("z.yaml", yaml, strlen(yaml), &cfg, &d), 0);
        void *c = calloc(1, ext_zpages_factory.config_size);
        ASSERT_EQ_INT(om_fields_apply(ext_zpages_factory.fields, c, om_node_get(cfg->root, "c"),
                                      "extensions::zpages", &d),
                      0);
        om_create_args_t a = {
            .cfg = c, .id = "zpages", .log_name = "extension/zpages", .host = &host};
        void *z = NULL;
        om_err_t err = {0};
        ASSERT_EQ_INT(ext_zpages_factory.create(&a, &z, &err), 0);
        int rc = ext_zpages_factory.start(z, &err);
        if (known) {
            ASSERT_EQ_INT(rc, 0);
        } else {
            ASSERT_TRUE(rc != 0);
            ASSERT_CONTAINS(err.msg, "testauth");
        }
        int done = 0;
        ext_zpages_factory.shutdown(z, done_cb, &done);
        while (done == 0) {
            uv_run(&loop, UV_RUN_ONCE);
        }
        ext_zpages_factory.destroy(z);
        om_fields_free(ext_zpages_factory.fields, c);
        free(c);
        om_config_free(cfg);
        om_diags_free(&d);
        om_test_host_close(&host);
        uv_run(&loop, UV_RUN_DEFAULT);
        ASSERT_EQ_INT(uv_loop_close(&loop), 0);
    }
}

int main(void)
{
    OM_RUN(test_generic_lifecycle);
    OM_RUN(test_introspection_and_pipelinez);
    OM_RUN(test_auth);
    return om_test_summary();
}
