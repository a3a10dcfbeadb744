/* pipeline_test.c: the graph built from service.pipelines: every config error otelcol users
 * know, with file:line:column, and a real graph that starts and shuts down cleanly. */
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "config.h"
#include "om_test.h"
#include "om_testdata.h"
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

/* ---- connectors ------------------------------------------------------------------------ */

#define CONN_COMPONENTS                                                                            \
    GOOD_COMPONENTS "connectors:\n"                                                                \
                    "  forward:\n"                                                                 \
                    "  forward/2:\n"

static void test_connector_pipelines_are_valid(void)
{
    /* A common traces/in fanning out to two pipelines, one of which chains to a third; a
     * connector configured and used by no pipeline is accepted, as otelcol does. */
    char *p = problems_of(CONN_COMPONENTS "  forward/unused:\n"
                                          "service:\n"
                                          "  pipelines:\n"
                                          "    traces/in:\n"
                                          "      receivers: [otlp]\n"
                                          "      exporters: [forward]\n"
                                          "    traces/tempo:\n"
                                          "      receivers: [forward]\n"
                                          "      processors: [batch]\n"
                                          "      exporters: [debug, forward/2]\n"
                                          "    traces/alarms:\n"
                                          "      receivers: [forward, otlp]\n"
                                          "      exporters: [debug]\n"
                                          "    traces/last:\n"
                                          "      receivers: [forward/2]\n"
                                          "      exporters: [debug]\n"
                                          "    logs:\n"
                                          "      receivers: [otlp]\n"
                                          "      exporters: [forward]\n"
                                          "    logs/2:\n"
                                          "      receivers: [forward]\n"
                                          "      exporters: [debug]\n",
                          true, NULL, NULL);
    ASSERT_EQ_STR(p, "");
    free(p);
}

static void test_connector_used_on_one_side(void)
{
    char *p = problems_of(CONN_COMPONENTS "service:\n"
                                          "  pipelines:\n"
                                          "    traces/in:\n"
                                          "      receivers: [otlp]\n"
                                          "      exporters: [forward]\n"
                                          "    traces/2:\n"
                                          "      receivers: [otlp]\n"
                                          "      exporters: [debug, forward]\n"
                                          "    metrics/out:\n"
                                          "      receivers: [forward/2]\n"
                                          "      exporters: [debug]\n",
                          true, NULL, NULL);
    ASSERT_EQ_STR(p, "p.yaml:16:19: connector \"forward\" used as exporter in [traces/in traces/2] "
                     "pipeline but not used in any supported receiver pipeline\n"
                     "p.yaml:21:19: connector \"forward/2\" used as receiver in [metrics/out] "
                     "pipeline but not used in any supported exporter pipeline\n");
    free(p);
}

/* forward connects a signal only to itself: traces in, metrics out is no supported pair, so
 * both sides are reported; a pair used elsewhere leaves only the unsupported side. */
static void test_connector_signal_pairs(void)
{
    char *p = problems_of(CONN_COMPONENTS "service:\n"
                                          "  pipelines:\n"
                                          "    traces/in:\n"
                                          "      receivers: [otlp]\n"
                                          "      exporters: [forward]\n"
                                          "    metrics/out:\n"
                                          "      receivers: [forward]\n"
                                          "      exporters: [debug]\n"
                                          "    metrics/in:\n"
                                          "      receivers: [otlp]\n"
                                          "      exporters: [forward/2]\n"
                                          "    metrics/out2:\n"
                                          "      receivers: [forward/2]\n"
                                          "      exporters: [debug]\n"
                                          "    logs/out:\n"
                                          "      receivers: [forward/2]\n"
                                          "      exporters: [debug]\n",
                          true, NULL, NULL);
    ASSERT_EQ_STR(p, "p.yaml:16:19: connector \"forward\" used as exporter in [traces/in] pipeline "
                     "but not used in any supported receiver pipeline\n"
                     "p.yaml:18:19: connector \"forward\" used as receiver in [metrics/out] "
                     "pipeline but not used in any supported exporter pipeline\n"
                     "p.yaml:27:19: connector \"forward/2\" used as receiver in [logs/out] "
                     "pipeline but not used in any supported exporter pipeline\n");
    free(p);
}

static void test_connector_ids(void)
{
    /* An id naming a connector and an exporter (or receiver) is ambiguous; a connector is no
     * processor; a connector that is not configured is reported as the list's kind. */
    char *p = problems_of(GOOD_COMPONENTS "  forward:\n"
                                          "connectors:\n"
                                          "  forward:\n"
                                          "  otlp:\n"
                                          "  spanmetric:\n"
                                          "service:\n"
                                          "  pipelines:\n"
                                          "    traces:\n"
                                          "      receivers: [otlp]\n"
                                          "      processors: [forward]\n"
                                          "      exporters: [debug, forward/x]\n",
                          true, NULL, NULL);
    ASSERT_CONTAINS(p, "p.yaml:13:3: connectors: unknown type: \"spanmetric\" for id: "
                       "\"spanmetric\" (valid values: [\"forward\"");
    ASSERT_CONTAINS(p, "p.yaml:12:3: connectors: unknown type: \"otlp\"");
    ASSERT_CONTAINS(p, "p.yaml:11:3: connectors::forward: ambiguous ID: Found both \"forward\" "
                       "exporter and \"forward\" connector. Change one of the components' IDs to "
                       "eliminate ambiguity (e.g. rename \"forward\" connector to "
                       "\"forward/connector\")\n");
    ASSERT_CONTAINS(p, "p.yaml:18:20: service::pipelines::traces: references processor "
                       "\"forward\" which is not configured\n");
    ASSERT_CONTAINS(p, "p.yaml:19:26: service::pipelines::traces: references exporter "
                       "\"forward/x\" which is not configured\n");
    free(p);
}

static void test_connector_cycles(void)
{
    char *p = problems_of(CONN_COMPONENTS "service:\n"
                                          "  pipelines:\n"
                                          "    traces:\n"
                                          "      receivers: [forward]\n"
                                          "      processors: [batch]\n"
                                          "      exporters: [forward]\n",
                          true, NULL, NULL);
    ASSERT_EQ_STR(p, "p.yaml:17:19: cycle detected: connector \"forward\" (traces to traces) -> "
                     "processor \"batch\" in pipeline \"traces\" -> connector \"forward\" "
                     "(traces to traces)\n");
    free(p);
    /* Deeper, through a pipeline without processors; the pipeline that feeds the cycle and
     * the one it feeds are not part of it. */
    p = problems_of(CONN_COMPONENTS "  forward/3:\n"
                                    "service:\n"
                                    "  pipelines:\n"
                                    "    logs/in:\n"
                                    "      receivers: [otlp]\n"
                                    "      exporters: [forward]\n"
                                    "    logs/1:\n"
                                    "      receivers: [forward]\n"
                                    "      processors: [batch]\n"
                                    "      exporters: [forward/2]\n"
                                    "    logs/2:\n"
                                    "      receivers: [forward/2]\n"
                                    "      exporters: [forward/3, debug]\n"
                                    "    logs/3:\n"
                                    "      receivers: [forward/3]\n"
                                    "      processors: [batch]\n"
                                    "      exporters: [forward]\n",
                    true, NULL, NULL);
    ASSERT_EQ_STR(p, "p.yaml:28:19: cycle detected: connector \"forward\" (logs to logs) -> "
                     "processor \"batch\" in pipeline \"logs/1\" -> connector \"forward/2\" (logs "
                     "to logs) -> connector \"forward/3\" (logs to logs) -> processor \"batch\" in "
                     "pipeline \"logs/3\" -> connector \"forward\" (logs to logs)\n");
    free(p);
}

/* Ids in these messages are quoted as Go's %q quotes them: the name part of an id may hold
 * quotes, backslashes and control characters (here through YAML escapes); UTF-8 is kept. */
static void test_connector_messages_quote_ids(void)
{
    char *p = problems_of(GOOD_COMPONENTS "  \"forward/x\\xff\":\n"
                                          "connectors:\n"
                                          "  forward/a\"b\\c:\n"
                                          "  \"forward/t\\té\\u0001\":\n"
                                          "  \"forward/x\\xff\":\n"
                                          "service:\n"
                                          "  pipelines:\n"
                                          "    \"traces/\\\"1\":\n"
                                          "      receivers: [forward/a\"b\\c]\n"
                                          "      processors: [batch]\n"
                                          "      exporters: [forward/a\"b\\c]\n"
                                          "    logs:\n"
                                          "      receivers: [otlp]\n"
                                          "      exporters: [\"forward/t\\té\\u0001\"]\n",
                          true, NULL, NULL);
    ASSERT_CONTAINS(p, "connectors::forward/xÿ: ambiguous ID: Found both \"forward/xÿ\" "
                       "exporter and \"forward/xÿ\" connector. Change one of the components' "
                       "IDs to eliminate ambiguity (e.g. rename \"forward/xÿ\" connector to "
                       "\"forward/xÿ/connector\")\n");
    ASSERT_CONTAINS(p, "connector \"forward/t\\té\\x01\" used as exporter in [logs] pipeline "
                       "but not used in any supported receiver pipeline\n");
    ASSERT_CONTAINS(p, "cycle detected: connector \"forward/a\\\"b\\\\c\" (traces to traces) -> "
                       "processor \"batch\" in pipeline \"traces/\\\"1\" -> connector "
                       "\"forward/a\\\"b\\\\c\" (traces to traces)\n");
    free(p);
}

/* Reads a whole file into a string ("" when absent). */
static char *slurp(const char *path)
{
    om_strbuf_t sb;
    om_strbuf_init(&sb, 0);
    om_strbuf_puts(&sb, "");
    FILE *fp = fopen(path, "rb");
    char buf[4096];
    size_t n;
    while (fp != NULL && (n = fread(buf, 1, sizeof buf, fp)) > 0) {
        om_strbuf_append(&sb, buf, n);
    }
    if (fp != NULL) {
        fclose(fp);
    }
    return om_strbuf_steal(&sb, NULL);
}

static size_t count_of(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(hay, needle); p != NULL; p = strstr(p + 1, needle)) {
        n++;
    }
    return n;
}

/* Builds and starts the graph of yaml, where @DIR@ stands for a new temporary directory. */
typedef struct running {
    uv_loop_t loop;
    om_host_t host;
    om_config_t *cfg;
    om_graph_t *g;
    char dir[64];
} running_t;

static bool run_graph(running_t *r, const char *yaml)
{
    memset(r, 0, sizeof *r);
    snprintf(r->dir, sizeof r->dir, "/tmp/om_pipeline_test_XXXXXX");
    if (mkdtemp(r->dir) == NULL || uv_loop_init(&r->loop) != 0) {
        return false;
    }
    om_test_host_init(&r->host, &r->loop);
    om_strbuf_t y;
    om_strbuf_init(&y, 0);
    for (const char *p = yaml; *p != '\0'; p++) {
        if (strncmp(p, "@DIR@", 5) == 0) {
            om_strbuf_puts(&y, r->dir);
            p += 4;
        } else {
            om_strbuf_putc(&y, *p);
        }
    }
    om_diags_t d = {0};
    bool ok = om_config_load_string("c.yaml", y.data, y.len, &r->cfg, &d) == 0 &&
              om_graph_build(r->cfg, &r->host, false, &r->g, &d) == 0;
    for (size_t i = 0; i < d.n; i++) {
        fprintf(stderr, "%s\n", d.msgs[i]);
    }
    om_diags_free(&d);
    om_strbuf_free(&y);
    om_err_t err = {0};
    return ok && om_graph_start(r->g, &err) == 0;
}

static void stop_graph(running_t *r)
{
    int done = 0;
    om_graph_shutdown(r->g, stopped, &done);
    for (int i = 0; i < 100000 && done == 0; i++) {
        uv_run(&r->loop, UV_RUN_ONCE);
    }
    om_graph_free(r->g);
    om_config_free(r->cfg);
    om_test_host_close(&r->host);
    uv_run(&r->loop, UV_RUN_DEFAULT);
    uv_loop_close(&r->loop);
}

static char *output_of(running_t *r, const char *name)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", r->dir, name);
    char *text = slurp(path);
    unlink(path);
    return text;
}

/* forward fans out to two pipelines, one of which chains on through a second forward. The
 * batch processors hold what they get (long timeout) until shutdown, which must stop each
 * pipeline before the connectors and pipelines downstream of it, or their data is lost. */
static void test_forward_fan_out_and_shutdown_order(void)
{
    running_t r;
    bool ok = run_graph(&r, "receivers:\n"
                            "  otlp:\n"
                            "    protocols: {grpc: {endpoint: '127.0.0.1:0'}}\n"
                            "processors:\n"
                            "  batch:\n"
                            "    timeout: 1h\n"
                            "exporters:\n"
                            "  file/a: {path: '@DIR@/a.jsonl'}\n"
                            "  file/b: {path: '@DIR@/b.jsonl'}\n"
                            "  file/c: {path: '@DIR@/c.jsonl'}\n"
                            "connectors:\n"
                            "  forward:\n"
                            "  forward/2:\n"
                            "service:\n"
                            "  pipelines:\n"
                            "    traces/last:\n"
                            "      receivers: [forward/2]\n"
                            "      processors: [batch]\n"
                            "      exporters: [file/c]\n"
                            "    traces/in:\n"
                            "      receivers: [otlp]\n"
                            "      processors: [batch]\n"
                            "      exporters: [forward]\n"
                            "    traces/tempo:\n"
                            "      receivers: [forward]\n"
                            "      processors: [batch]\n"
                            "      exporters: [file/a, forward/2]\n"
                            "    traces/alarms:\n"
                            "      receivers: [forward]\n"
                            "      exporters: [file/b]\n");
    ASSERT_TRUE(ok);
    const om_consumer_t *in = om__graph_entry(r.g, "traces/in");
    ASSERT_TRUE(in != NULL);
    ASSERT_EQ_INT(om_consumer_consume(in, om_testdata_simple(OM_SIG_TRACES, 3, 1)), 0);
    ASSERT_EQ_INT(om_consumer_consume(in, om_testdata_simple(OM_SIG_TRACES, 2, 4)), 0);
    stop_graph(&r);
    char *a = output_of(&r, "a.jsonl"), *b = output_of(&r, "b.jsonl"),
         *c = output_of(&r, "c.jsonl");
    rmdir(r.dir);
    for (int seq = 1; seq <= 5; seq++) {
        char name[32];
        snprintf(name, sizeof name, "\"span-%d\"", seq);
        ASSERT_EQ_UINT(count_of(a, name), 1);
        ASSERT_EQ_UINT(count_of(b, name), 1);
        ASSERT_EQ_UINT(count_of(c, name), 1);
    }
    free(a);
    free(b);
    free(c);
}

/* The decoding thread of test_off_loop_run: prepares one request. */
typedef struct prep_job {
    const om_consumer_t *next;
    om_batch_t *batch;
    om_prepared_t p;
} prep_job_t;

static void *prepare_thread(void *arg)
{
    prep_job_t *j = arg;
    om_consumer_prepare(j->next, j->batch, &j->p);
    return NULL;
}

static void prepare_elsewhere(const om_consumer_t *next, om_batch_t *b, om_prepared_t *out)
{
    prep_job_t j = {.next = next, .batch = b};
    pthread_t t;
    ASSERT_EQ_INT(pthread_create(&t, NULL, prepare_thread, &j), 0);
    ASSERT_EQ_INT(pthread_join(t, NULL), 0);
    *out = j.p;
}

/* A pipeline's leading filter and attributes (OM_CAP_OFF_LOOP) run on the thread that prepares
 * the request: their work is done when prepare returns (the filter dropped, attributes
 * tagged), and batch, after them, runs when the loop finishes it. A pipeline that starts
 * with memory_limiter has no run: preparing does nothing. */
static void test_off_loop_run_of_real_processors(void)
{
    running_t r;
    bool ok = run_graph(&r, "receivers:\n"
                            "  otlp:\n"
                            "    protocols: {grpc: {endpoint: '127.0.0.1:0'}}\n"
                            "processors:\n"
                            "  filter:\n"
                            "    traces:\n"
                            "      span: ['name == \"span-2\"']\n"
                            "  attributes:\n"
                            "    actions: [{key: tagged, value: yes, action: upsert}]\n"
                            "  batch:\n"
                            "    timeout: 1h\n"
                            "  memory_limiter:\n"
                            "    check_interval: 1s\n"
                            "    limit_mib: 1000\n"
                            "exporters:\n"
                            "  file/a: {path: '@DIR@/a.jsonl'}\n"
                            "service:\n"
                            "  pipelines:\n"
                            "    traces/in:\n"
                            "      receivers: [otlp]\n"
                            "      processors: [filter, attributes, batch]\n"
                            "      exporters: [file/a]\n"
                            "    logs/in:\n"
                            "      receivers: [otlp]\n"
                            "      processors: [memory_limiter, filter]\n"
                            "      exporters: [file/a]\n");
    ASSERT_TRUE(ok);
    const om_consumer_t *in = om__graph_entry(r.g, "traces/in");
    ASSERT_TRUE(in != NULL);
    om_prepared_t p;
    prepare_elsewhere(in, om_testdata_simple(OM_SIG_TRACES, 3, 1), &p);
    ASSERT_TRUE(p.stage != NULL && p.batch != NULL);
    ASSERT_EQ_UINT(p.items, 3);        /* what the receiver counts as received */
    ASSERT_EQ_UINT(p.batch->items, 2); /* the filter already ran */
    ASSERT_EQ_INT(om_consumer_finish(in, &p), 0);

    const om_consumer_t *logs = om__graph_entry(r.g, "logs/in");
    prepare_elsewhere(logs, om_testdata_simple(OM_SIG_LOGS, 2, 1), &p);
    ASSERT_TRUE(p.stage == NULL && p.batch != NULL && p.batch->items == 2);
    om_prepared_release(&p);

    stop_graph(&r);
    char *a = output_of(&r, "a.jsonl");
    rmdir(r.dir);
    ASSERT_EQ_UINT(count_of(a, "\"span-1\""), 1);
    ASSERT_EQ_UINT(count_of(a, "\"span-2\""), 0);
    ASSERT_EQ_UINT(count_of(a, "\"span-3\""), 1);
    ASSERT_EQ_UINT(count_of(a, "\"tagged\""), 2);
    free(a);
}

/* Each signal pair of one connector is its own instance; forward wires each signal to the
 * pipelines of the same signal only. */
static void test_forward_per_signal(void)
{
    running_t r;
    bool ok = run_graph(&r, "receivers:\n"
                            "  otlp:\n"
                            "    protocols: {grpc: {endpoint: '127.0.0.1:0'}}\n"
                            "exporters:\n"
                            "  file/t: {path: '@DIR@/t.jsonl'}\n"
                            "  file/l: {path: '@DIR@/l.jsonl'}\n"
                            "connectors:\n"
                            "  forward:\n"
                            "service:\n"
                            "  pipelines:\n"
                            "    traces/in: {receivers: [otlp], exporters: [forward]}\n"
                            "    logs/in: {receivers: [otlp], exporters: [forward]}\n"
                            "    traces/out: {receivers: [forward], exporters: [file/t]}\n"
                            "    logs/out: {receivers: [forward], exporters: [file/l]}\n");
    ASSERT_TRUE(ok);
    ASSERT_EQ_INT(om_consumer_consume(om__graph_entry(r.g, "traces/in"),
                                      om_testdata_simple(OM_SIG_TRACES, 2, 1)),
                  0);
    ASSERT_EQ_INT(
        om_consumer_consume(om__graph_entry(r.g, "logs/in"), om_testdata_simple(OM_SIG_LOGS, 3, 1)),
        0);
    stop_graph(&r);
    char *t = output_of(&r, "t.jsonl"), *l = output_of(&r, "l.jsonl");
    rmdir(r.dir);
    ASSERT_EQ_UINT(count_of(t, "\"span-"), 2);
    ASSERT_EQ_UINT(count_of(t, "\"log-"), 0);
    ASSERT_EQ_UINT(count_of(l, "\"log-"), 3);
    ASSERT_EQ_UINT(count_of(l, "\"span-"), 0);
    free(t);
    free(l);
}

/* spanmetrics takes traces and emits metrics only. */
static void test_spanmetrics_signal_pairs(void)
{
    char *p = problems_of(GOOD_COMPONENTS "connectors:\n"
                                          "  spanmetrics:\n"
                                          "service:\n"
                                          "  pipelines:\n"
                                          "    traces:\n"
                                          "      receivers: [otlp]\n"
                                          "      exporters: [spanmetrics]\n"
                                          "    metrics:\n"
                                          "      receivers: [spanmetrics]\n"
                                          "      exporters: [debug]\n",
                          true, NULL, NULL);
    ASSERT_EQ_STR(p, "");
    free(p);
    p = problems_of(GOOD_COMPONENTS "connectors:\n"
                                    "  spanmetrics:\n"
                                    "service:\n"
                                    "  pipelines:\n"
                                    "    metrics/in:\n"
                                    "      receivers: [otlp]\n"
                                    "      exporters: [spanmetrics]\n"
                                    "    traces/out:\n"
                                    "      receivers: [spanmetrics]\n"
                                    "      exporters: [debug]\n",
                    true, NULL, NULL);
    ASSERT_EQ_STR(p, "p.yaml:15:19: connector \"spanmetrics\" used as exporter in [metrics/in] "
                     "pipeline but not used in any supported receiver pipeline\n"
                     "p.yaml:17:19: connector \"spanmetrics\" used as receiver in [traces/out] "
                     "pipeline but not used in any supported exporter pipeline\n");
    free(p);
}

/* traces -> spanmetrics -> metrics -> file, next to traces -> file: the connector's final
 * flush at shutdown reaches the metrics pipeline, which stops after it. */
static void test_spanmetrics_in_a_graph(void)
{
    running_t r;
    bool ok = run_graph(&r, "receivers:\n"
                            "  otlp:\n"
                            "    protocols: {grpc: {endpoint: '127.0.0.1:0'}}\n"
                            "processors:\n"
                            "  batch:\n"
                            "    timeout: 1h\n"
                            "exporters:\n"
                            "  file/m: {path: '@DIR@/m.jsonl'}\n"
                            "  file/t: {path: '@DIR@/t.jsonl'}\n"
                            "connectors:\n"
                            "  spanmetrics:\n"
                            "service:\n"
                            "  pipelines:\n"
                            "    traces:\n"
                            "      receivers: [otlp]\n"
                            "      processors: [batch]\n"
                            "      exporters: [spanmetrics, file/t]\n"
                            "    metrics:\n"
                            "      receivers: [spanmetrics]\n"
                            "      processors: [batch]\n"
                            "      exporters: [file/m]\n");
    ASSERT_TRUE(ok);
    const om_consumer_t *in = om__graph_entry(r.g, "traces");
    ASSERT_EQ_INT(om_consumer_consume(in, om_testdata_simple(OM_SIG_TRACES, 3, 1)), 0);
    stop_graph(&r);
    char *m = output_of(&r, "m.jsonl"), *t = output_of(&r, "t.jsonl");
    rmdir(r.dir);
    ASSERT_EQ_UINT(count_of(t, "\"span-"), 3);
    ASSERT_EQ_UINT(count_of(m, "\"traces.span.metrics.calls\""), 1);
    ASSERT_EQ_UINT(count_of(m, "\"traces.span.metrics.duration\""), 1);
    ASSERT_EQ_UINT(count_of(m, "\"asInt\":\"1\""), 3); /* one call for each span name */
    free(m);
    free(t);
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
    OM_RUN(test_connector_pipelines_are_valid);
    OM_RUN(test_connector_used_on_one_side);
    OM_RUN(test_connector_signal_pairs);
    OM_RUN(test_connector_ids);
    OM_RUN(test_connector_cycles);
    OM_RUN(test_connector_messages_quote_ids);
    OM_RUN(test_forward_fan_out_and_shutdown_order);
    OM_RUN(test_forward_per_signal);
    OM_RUN(test_spanmetrics_signal_pairs);
    OM_RUN(test_spanmetrics_in_a_graph);
    OM_RUN(test_off_loop_run_of_real_processors);
    return om_test_summary();
}
