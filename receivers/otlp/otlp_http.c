/* otlp_http.c: the OTLP/HTTP server of the otlp receiver, on the core's HTTP server.
 *
 * One route per signal the receiver is wired for, at its configured path, all served by
 * otlp_http_handler (otlp_http_session.c); any other path gets the server's 404, as in
 * otelcol where an unwired signal's path is not served at all. Connections, TLS
 * (protocols::http::tls), limits, timeouts and how the server stays available under abuse
 * are the core's (src/http_server.c).
 *
 * Intake backpressure: while om_intake_paused() the server reads nothing from its
 * connections (the hold hook), so clients wait with their requests unread instead of failing;
 * an om_intake_wait resumes them once intake opens again (or starts refusing: then the held
 * requests are read and refused as retryable).
 *
 * Shutdown: the core server lets requests being received finish for SHUTDOWN_GRACE_MS and
 * closes idle connections at once; done is called once it is closed. */
#include <stdio.h>
#include <string.h>

#include "otlp_http.h"

#define SHUTDOWN_GRACE_MS 5000

struct otlp_http_server {
    rcv_otlp_t *r;
    om_http_server_t *http;
    otlp_http_route_t routes[OM_SIG_COUNT];
    om_intake_wait_t intake; /* resumes held connections */
    bool started;
    int pending; /* the core server, while shutting down */
    bool shutting_down;
    om_done_fn done;
    void *done_arg;
};

static bool intake_hold(void *arg)
{
    otlp_http_server_t *s = arg;
    om_intake_t *intake = s->r->host->intake;
    if (s->shutting_down || !om_intake_paused(intake)) {
        return false;
    }
    om_intake_wait(intake, &s->intake);
    return true;
}

static void intake_resumed(void *arg)
{
    otlp_http_server_t *s = arg;
    om_http_server_resume(s->http);
}

static void on_listen(void *arg, const char *name, int port)
{
    (void)port;
    otlp_http_server_t *s = arg;
    const otlp_http_cfg_t *cfg = &s->r->cfg->protocols.http;
    const char *note = "";
    if (cfg->server.tls_present) {
        bool mtls = cfg->server.tls.client_ca_file != NULL && cfg->server.tls.client_ca_file[0];
        note = mtls ? " (TLS, client certificates required)" : " (TLS)";
    }
    OM_CLOG(s->r->log_name, OM_LOG_INFO, "OTLP/HTTP listening on %s%s", name, note);
}

/* A route per wired signal. Two signals configured on the same path: the first one serves it
 * (as before the core server, where the first match won). */
static int add_routes(otlp_http_server_t *s, om_err_t *err)
{
    const otlp_http_cfg_t *c = &s->r->cfg->protocols.http;
    const char *paths[OM_SIG_COUNT] = {c->traces_url_path, c->metrics_url_path, c->logs_url_path};
    for (int i = 0; i < OM_SIG_COUNT; i++) {
        bool taken = false;
        for (int j = 0; j < i; j++) {
            taken = taken || (s->r->next[j].consume != NULL && paths[j] != NULL &&
                              paths[i] != NULL && strcmp(paths[i], paths[j]) == 0);
        }
        if (s->r->next[i].consume == NULL || paths[i] == NULL || taken) {
            continue;
        }
        s->routes[i] = (otlp_http_route_t){.r = s->r, .signal = om_signal_from_index(i)};
        int rc = om_http_server_route(s->http, paths[i], OM_HTTP_ANY, &otlp_http_handler,
                                      &s->routes[i], 0, err);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

int otlp_http_create(rcv_otlp_t *r, otlp_http_server_t **out, om_err_t *err)
{
    otlp_http_server_t *s = om_calloc(1, sizeof *s);
    if (s == NULL) {
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    s->r = r;
    om_intake_wait_init(&s->intake, intake_resumed, s);
    om_http_server_opts_t o = {
        .loop = r->host != NULL ? r->host->loop : NULL,
        .host = r->host,
        .log_name = r->log_name,
        .cfg = &r->cfg->protocols.http.server,
        .cfg_at = "protocols::http",
        .default_endpoint = "localhost:4318",
        .req_state_size = sizeof(otlp_http_req_t),
        .max_url = OTLP_HTTP_URL_MAX,
        .shutdown_grace_ms = SHUTDOWN_GRACE_MS,
        .on_listen = on_listen,
        .hold = intake_hold,
        .arg = s,
    };
    int rc = om_http_server_new(&o, &s->http, err);
    if (rc == 0) {
        rc = add_routes(s, err);
    }
    if (rc != 0) {
        om_http_server_free(s->http);
        om_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

int otlp_http_start(otlp_http_server_t *s, om_err_t *err)
{
    if (s->started || s->shutting_down) {
        om_err_set(err, OM_EINVAL, "OTLP/HTTP server started twice");
        return OM_EINVAL;
    }
    s->started = true;
    return om_http_server_start(s->http, err);
}

static void part_done(void *arg)
{
    otlp_http_server_t *s = arg;
    if (--s->pending == 0 && s->done != NULL) {
        s->done(s->done_arg);
    }
}

void otlp_http_shutdown(otlp_http_server_t *s, om_done_fn done, void *arg)
{
    if (s->shutting_down) {
        return;
    }
    s->shutting_down = true;
    s->done = done;
    s->done_arg = arg;
    /* Count every part before starting any, so that one finishing at once cannot call done
     * early. */
    s->pending = 2;
    om_intake_wait_cancel(s->r->host->intake, &s->intake);
    om_http_server_shutdown(s->http, part_done, s);
    part_done(s);
}

void otlp_http_destroy(otlp_http_server_t *s)
{
    if (s == NULL) {
        return;
    }
    om_http_server_free(s->http);
    om_free(s);
}

om_http_server_t *otlp_http_core(otlp_http_server_t *s)
{
    return s->http;
}

int otlp_http_bound_port(const otlp_http_server_t *s)
{
    return om_http_server_port(s->http);
}

size_t otlp_http_conn_count(const otlp_http_server_t *s)
{
    return om_http_server_conn_count(s->http);
}

size_t otlp_http_busy_count(const otlp_http_server_t *s)
{
    return om_http_server_busy_count(s->http);
}
