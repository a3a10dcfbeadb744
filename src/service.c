/* service.c: one collector run: config -> graph -> loop, and graceful shutdown on signals.
 *
 * Signals: SIGINT and SIGTERM are blocked in every thread (om_service_run blocks them before
 * any thread exists, and threads inherit the mask), and one thread of ours takes them with
 * sigwait() and hands them to the loop through an async handle. Left to the kernel, a signal
 * goes to any thread that does not block it: one of gRPC's, libcurl's resolver's or the worker
 * pool's, where a runtime that defers signal handlers until the thread wakes (ThreadSanitizer
 * does) can sit on it indefinitely. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "pipeline.h"
#include "service.h"
#include "telemetry.h"

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

/* The signal thread and its hand-off to the loop (see the file comment). */
typedef struct sigwatch {
    uv_async_t async; /* data: the service */
    pthread_t thread;
    sigset_t set;       /* SIGINT, SIGTERM */
    _Atomic int taken;  /* the last signal taken and not yet handled; 0: none */
    _Atomic bool quit;  /* the loop asks the thread to return */
    bool running, open; /* thread started; async initialised and not closed */
} sigwatch_t;

typedef struct service {
    uv_loop_t loop;
    om_host_t host;
    om_config_t *cfg;
    om_graph_t *graph;
    om_telemetry_t *telemetry; /* the collector's own metrics endpoint; NULL at level none */
    sigwatch_t sig;
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

static int load(const char *const *uris, size_t n, bool defaults, om_config_t **cfg, om_diags_t *d)
{
    return om_config_load(defaults ? om_default_config : NULL, uris, n, cfg, d);
}

int om_service_validate(const char *const *uris, size_t n, bool defaults, FILE *err_out)
{
    om_diags_t d = {0};
    om_config_t *cfg = NULL;
    om_graph_t *g = NULL;
    int rc = load(uris, n, defaults, &cfg, &d);
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

/* Signal thread: take SIGINT and SIGTERM until the loop says to return. Touches only w. */
static void *sigwatch_main(void *arg)
{
    sigwatch_t *w = arg;
    for (;;) {
        int sig = 0;
        if (sigwait(&w->set, &sig) != 0) {
            continue;
        }
        if (atomic_load(&w->quit)) {
            return NULL;
        }
        atomic_store(&w->taken, sig);
        uv_async_send(&w->async);
    }
}

static void begin_shutdown(service_t *s, const char *why);

static void on_signal(uv_async_t *a)
{
    service_t *s = a->data;
    int sig = atomic_exchange(&s->sig.taken, 0);
    if (sig != 0) {
        begin_shutdown(s, sig == SIGINT ? "SIGINT" : "SIGTERM");
    }
}

static int sigwatch_start(service_t *s, om_err_t *err)
{
    sigwatch_t *w = &s->sig;
    if (uv_async_init(&s->loop, &w->async, on_signal) != 0) {
        om_err_set(err, OM_EIO, "cannot make the signal handle");
        return OM_EIO;
    }
    w->async.data = s;
    w->open = true;
    /* The thread only waits: it must not keep the loop alive, the graph does. */
    uv_unref((uv_handle_t *)&w->async);
    if (pthread_create(&w->thread, NULL, sigwatch_main, w) != 0) {
        om_err_set(err, OM_EIO, "cannot start the signal thread");
        return OM_EIO;
    }
    w->running = true;
    return 0;
}

/* Stop the thread (a short wait: sigwait returns at once for the signal sent to it), then
 * close the handle it wakes. */
static void sigwatch_stop(service_t *s)
{
    sigwatch_t *w = &s->sig;
    if (w->running) {
        atomic_store(&w->quit, true);
        pthread_kill(w->thread, SIGTERM); /* pending for it alone: every thread blocks it */
        pthread_join(w->thread, NULL);
        w->running = false;
    }
    if (w->open && !uv_is_closing((uv_handle_t *)&w->async)) {
        uv_close((uv_handle_t *)&w->async, NULL);
    }
    w->open = false;
}

static void telemetry_stopped(void *arg)
{
    service_t *s = arg;
    OM_LOG(OM_LOG_INFO, "shutdown complete");
    /* Our own handles are all that is left; closing them lets uv_run return. */
    sigwatch_stop(s);
    uv_close((uv_handle_t *)&s->deadline, NULL);
}

/* The collector's own metrics are served until the pipelines are down, as otelcol does. */
static void graph_stopped(void *arg)
{
    service_t *s = arg;
    om__telemetry_shutdown(s->telemetry, telemetry_stopped, s);
}

static void deadline_passed(uv_timer_t *t)
{
    service_t *s = t->data;
    OM_LOG(OM_LOG_ERROR, "shutdown did not finish within %d ms; exiting anyway",
           SHUTDOWN_DEADLINE_MS);
    s->exit_code = 1;
    s->deadline_passed = true;
    sigwatch_stop(s); /* before the walk closes the handle the thread wakes */
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
    uv_timer_init(&s->loop, &s->deadline);
    s->deadline.data = s;
    /* A peer that closes its socket must not kill the process; writes report EPIPE. */
    signal(SIGPIPE, SIG_IGN);
    return sigwatch_start(s, err);
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
    om__telemetry_free(s->telemetry);
    s->telemetry = NULL;
    om_graph_free(s->graph);
    s->graph = NULL;
    close_host_and_loop(s);
    return s->exit_code;
}

int om_service_run(const char *const *uris, size_t n, bool defaults)
{
    service_t s = {0};
    om_diags_t d = {0};
    /* Before any thread exists, so that every thread inherits the mask (see the top). */
    sigemptyset(&s.sig.set);
    sigaddset(&s.sig.set, SIGINT);
    sigaddset(&s.sig.set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &s.sig.set, NULL);
    om_grpc_route_logs();
    int rc = load(uris, n, defaults, &s.cfg, &d);
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
            sigwatch_stop(&s);
            uv_close((uv_handle_t *)&s.deadline, NULL);
            close_host_and_loop(&s);
        }
        return 1;
    }
    om_diags_free(&d);
    int lrc = om__log_configure(om_graph_log_cfg(s.graph), &err);
    if (lrc != 0 || om_graph_start(s.graph, &err) != 0 ||
        om__telemetry_start(&s.host, om_graph_telemetry_cfg(s.graph), &s.telemetry, &err) != 0) {
        OM_LOG(OM_LOG_ERROR, "%s", err.msg);
        s.exit_code = 1;
        s.stopping = true;
        om_graph_shutdown(s.graph, graph_stopped, &s);
    } else {
        OM_LOG(OM_LOG_INFO, "everything is ready; begin running and processing data");
    }
    int code = run_and_teardown(&s);
    om_config_free(s.cfg);
    om__log_reset();
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
