/* service.c: one collector run: config -> graph -> loop, and graceful shutdown on signals. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "pipeline.h"
#include "service.h"

/* How long a graceful shutdown may take before we give up on what is still in flight. */
#define SHUTDOWN_DEADLINE_MS 20000

const char om_default_config[] = "receivers:\n"
                                 "  otlp:\n"
                                 "    protocols:\n"
                                 "      grpc:\n"
                                 "        endpoint: localhost:4317\n"
                                 "      http:\n"
                                 "        endpoint: localhost:4318\n"
                                 "processors:\n"
                                 "  batch:\n"
                                 "exporters:\n"
                                 "  debug:\n"
                                 "service:\n"
                                 "  pipelines:\n"
                                 "    traces:\n"
                                 "      receivers: [otlp]\n"
                                 "      processors: [batch]\n"
                                 "      exporters: [debug]\n"
                                 "    metrics:\n"
                                 "      receivers: [otlp]\n"
                                 "      processors: [batch]\n"
                                 "      exporters: [debug]\n"
                                 "    logs:\n"
                                 "      receivers: [otlp]\n"
                                 "      processors: [batch]\n"
                                 "      exporters: [debug]\n";

typedef struct service {
    uv_loop_t loop;
    om_host_t host;
    om_config_t *cfg;
    om_graph_t *graph;
    uv_signal_t sigint, sigterm;
    uv_timer_t deadline;
    bool host_ready; /* om_host_init succeeded: om_host_close must run before uv_loop_close */
    bool stopping;
    bool deadline_passed;
    int exit_code;
} service_t;

static void print_diags(const om_diags_t *d, FILE *out)
{
    for (size_t i = 0; i < d->n; i++) {
        fprintf(out, "%s\n", d->msgs[i]);
    }
}

static int load(const char *const *files, size_t n, om_config_t **cfg, om_diags_t *d)
{
    if (n == 0) {
        return om_config_load_string("<default config>", om_default_config,
                                     sizeof om_default_config - 1, cfg, d);
    }
    return om_config_load(files, n, cfg, d);
}

int om_service_validate(const char *const *files, size_t n, FILE *err_out)
{
    om_diags_t d = {0};
    om_config_t *cfg = NULL;
    om_graph_t *g = NULL;
    int rc = load(files, n, &cfg, &d);
    if (rc == 0) {
        rc = om_graph_build(cfg, NULL, true, &g, &d);
    }
    print_diags(&d, err_out);
    om_graph_free(g);
    om_config_free(cfg);
    om_diags_free(&d);
    return rc == 0 ? 0 : 1;
}

static void close_handle(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h)) {
        uv_close(h, NULL);
    }
}

static void graph_stopped(void *arg)
{
    service_t *s = arg;
    OM_LOG(OM_LOG_INFO, "shutdown complete");
    /* Our own handles are all that is left; closing them lets uv_run return. */
    uv_close((uv_handle_t *)&s->sigint, NULL);
    uv_close((uv_handle_t *)&s->sigterm, NULL);
    uv_close((uv_handle_t *)&s->deadline, NULL);
}

static void deadline_passed(uv_timer_t *t)
{
    service_t *s = t->data;
    OM_LOG(OM_LOG_ERROR, "shutdown did not finish within %d ms; exiting anyway",
           SHUTDOWN_DEADLINE_MS);
    s->exit_code = 1;
    s->deadline_passed = true;
    uv_walk(&s->loop, close_handle, NULL);
    uv_stop(&s->loop);
}

static void begin_shutdown(service_t *s, const char *why)
{
    if (s->stopping) {
        OM_LOG(OM_LOG_INFO, "%s: already shutting down", why);
        return;
    }
    s->stopping = true;
    OM_LOG(OM_LOG_INFO, "%s: shutting down", why);
    uv_timer_start(&s->deadline, deadline_passed, SHUTDOWN_DEADLINE_MS, 0);
    om_graph_shutdown(s->graph, graph_stopped, s);
}

static void on_signal(uv_signal_t *h, int signum)
{
    begin_shutdown(h->data, signum == SIGINT ? "SIGINT" : "SIGTERM");
}

static int setup_loop(service_t *s, om_err_t *err)
{
    if (uv_loop_init(&s->loop) != 0) {
        om_err_set(err, OM_EIO, "cannot initialise the event loop");
        return OM_EIO;
    }
    int rc = om_host_init(&s->host, &s->loop, err);
    if (rc != 0) {
        uv_loop_close(&s->loop);
        return rc;
    }
    s->host_ready = true;
    uv_signal_init(&s->loop, &s->sigint);
    uv_signal_init(&s->loop, &s->sigterm);
    uv_timer_init(&s->loop, &s->deadline);
    s->sigint.data = s->sigterm.data = s->deadline.data = s;
    uv_signal_start(&s->sigint, on_signal, SIGINT);
    uv_signal_start(&s->sigterm, on_signal, SIGTERM);
    /* A peer that closes its socket must not kill the process; writes report EPIPE. */
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

static void host_closed(void *arg)
{
    *(bool *)arg = true;
}

/* After the components are freed: the host's pool and registry, then the loop. */
static void close_host_and_loop(service_t *s)
{
    if (s->host_ready) {
        bool closed = false;
        om_host_close(&s->host, host_closed, &closed);
        while (!closed) {
            uv_run(&s->loop, UV_RUN_ONCE);
        }
        s->host_ready = false;
    }
    if (uv_loop_close(&s->loop) != 0) {
        OM_LOG(OM_LOG_WARN, "event loop closed with handles still open");
    }
}

/* Run the loop until every handle is closed, then free everything. */
static int run_and_teardown(service_t *s)
{
    uv_run(&s->loop, UV_RUN_DEFAULT);
    if (s->deadline_passed) {
        /* Some component did not finish shutting down: a thread of its own (gRPC's, a worker
         * job) may still use its memory, so freeing it would be a use after free. The
         * process exits next; the kernel takes the memory back. */
        return s->exit_code;
    }
    om_graph_free(s->graph);
    s->graph = NULL;
    close_host_and_loop(s);
    return s->exit_code;
}

int om_service_run(const char *const *files, size_t n)
{
    service_t s = {0};
    om_diags_t d = {0};
    om_grpc_route_logs();
    int rc = load(files, n, &s.cfg, &d);
    om_err_t err = {0};
    if (rc == 0 && setup_loop(&s, &err) != 0) {
        om_diag_add(&d, NULL, NULL, "%s", err.msg);
        rc = OM_EIO;
    }
    if (rc == 0) {
        rc = om_graph_build(s.cfg, &s.host, false, &s.graph, &d);
    }
    if (rc != 0) {
        print_diags(&d, stderr);
        om_diags_free(&d);
        om_config_free(s.cfg);
        if (s.host_ready) {
            om_graph_free(s.graph);
            uv_close((uv_handle_t *)&s.sigint, NULL);
            uv_close((uv_handle_t *)&s.sigterm, NULL);
            uv_close((uv_handle_t *)&s.deadline, NULL);
            close_host_and_loop(&s);
        }
        return 1;
    }
    om_diags_free(&d);
    om_log_set_level(om_graph_log_level(s.graph));
    if (om_graph_start(s.graph, &err) != 0) {
        OM_LOG(OM_LOG_ERROR, "%s", err.msg);
        s.exit_code = 1;
        s.stopping = true;
        om_graph_shutdown(s.graph, graph_stopped, &s);
    } else {
        OM_LOG(OM_LOG_INFO, "everything is ready; begin running and processing data");
    }
    int code = run_and_teardown(&s);
    om_config_free(s.cfg);
    return code;
}

static void print_kind(FILE *out, om_kind_t kind)
{
    fprintf(out, "%s:\n", om_kind_plural(kind));
    for (const om_factory_t *const *f = om_factories; *f != NULL; f++) {
        if ((*f)->kind != kind) {
            continue;
        }
        fprintf(out, "  - name: %s\n", (*f)->type);
        fprintf(out, "    signals: [");
        const char *sep = "";
        for (int i = 0; i < OM_SIG_COUNT; i++) {
            if ((*f)->signals & om_signal_from_index(i)) {
                fprintf(out, "%s%s", sep, om_signal_name(om_signal_from_index(i)));
                sep = ", ";
            }
        }
        fprintf(out, "]\n");
        if ((*f)->help != NULL) {
            fprintf(out, "    description: %s\n", (*f)->help);
        }
    }
}

void om_service_print_components(FILE *out)
{
    fprintf(out,
            "buildinfo:\n  command: otelmon\n  description: OtelMon collector\n"
            "  version: %s\n",
            OM_VERSION);
    static const om_kind_t kinds[] = {OM_RECEIVER, OM_PROCESSOR, OM_EXPORTER, OM_CONNECTOR,
                                      OM_EXTENSION};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        print_kind(out, kinds[i]);
    }
}
