/* otlp_factory.c: the otlp receiver's config table, validation and lifecycle.
 * The servers themselves are in otlp_grpc.c and otlp_http.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otlp.h"

static const om_field_t grpc_fields[] = {
    {.key = "endpoint",
     .type = OM_F_ENDPOINT,
     .offset = offsetof(otlp_grpc_cfg_t, endpoint),
     .def = "localhost:4317",
     .help = "host:port to listen on for OTLP/gRPC"},
    {.key = "max_recv_msg_size_mib",
     .type = OM_F_INT,
     .offset = offsetof(otlp_grpc_cfg_t, max_recv_msg_size_mib),
     .def = "4",
     .min = 1,
     .max = 2047,
     .help = "largest request accepted, in MiB (after decompression)"},
    {.key = "max_concurrent_streams",
     .type = OM_F_INT,
     .offset = offsetof(otlp_grpc_cfg_t, max_concurrent_streams),
     .def = "0",
     .min = 0,
     .max = 1e9,
     .help = "HTTP/2 streams per connection (0: gRPC's default)"},
    {.key = "tls",
     .type = OM_F_SECTION,
     .offset = offsetof(otlp_grpc_cfg_t, tls),
     .fields = om_tls_server_fields,
     .flags = OM_FF_PRESENCE,
     .present_offset = offsetof(otlp_grpc_cfg_t, tls_present),
     .help = "serve TLS (otelcol's configtls server settings)"},
    {.key = "transport", .type = OM_F_IGNORED},
    {.key = "read_buffer_size", .type = OM_F_IGNORED},
    {.key = "write_buffer_size", .type = OM_F_IGNORED},
    {.key = "include_metadata", .type = OM_F_IGNORED},
    {.key = "keepalive", .type = OM_F_IGNORED},
    OM_AUTH_FIELD(otlp_grpc_cfg_t, auth, OM_F_AUTH_SERVER, om_auth_server_fields),
    {.key = NULL},
};

/* otelcol's confighttp.ServerConfig (the core's table) and the receiver's paths. */
static const om_field_t http_fields[] = {
    OM_HTTP_SERVER_FIELDS(otlp_http_cfg_t, server, "localhost:4318"),
    {.key = "traces_url_path",
     .type = OM_F_STRING,
     .offset = offsetof(otlp_http_cfg_t, traces_url_path),
     .def = "/v1/traces",
     .help = "path that takes trace exports"},
    {.key = "metrics_url_path",
     .type = OM_F_STRING,
     .offset = offsetof(otlp_http_cfg_t, metrics_url_path),
     .def = "/v1/metrics",
     .help = "path that takes metric exports"},
    {.key = "logs_url_path",
     .type = OM_F_STRING,
     .offset = offsetof(otlp_http_cfg_t, logs_url_path),
     .def = "/v1/logs",
     .help = "path that takes log exports"},
    {.key = NULL},
};

static const om_field_t protocols_fields[] = {
    {.key = "grpc",
     .type = OM_F_SECTION,
     .offset = offsetof(rcv_otlp_cfg_t, protocols.grpc) - offsetof(rcv_otlp_cfg_t, protocols),
     .fields = grpc_fields,
     .flags = OM_FF_PRESENCE,
     .present_offset =
         offsetof(rcv_otlp_cfg_t, protocols.grpc_present) - offsetof(rcv_otlp_cfg_t, protocols),
     .help = "OTLP over gRPC"},
    {.key = "http",
     .type = OM_F_SECTION,
     .offset = offsetof(rcv_otlp_cfg_t, protocols.http) - offsetof(rcv_otlp_cfg_t, protocols),
     .fields = http_fields,
     .flags = OM_FF_PRESENCE,
     .present_offset =
         offsetof(rcv_otlp_cfg_t, protocols.http_present) - offsetof(rcv_otlp_cfg_t, protocols),
     .help = "OTLP over HTTP"},
    {.key = NULL},
};

static const om_field_t otlp_fields[] = {
    {.key = "protocols",
     .type = OM_F_SECTION,
     .offset = offsetof(rcv_otlp_cfg_t, protocols),
     .fields = protocols_fields,
     .help = "the protocols to serve"},
    {.key = NULL},
};

static int otlp_config_validate(const void *vcfg, om_err_t *err)
{
    const rcv_otlp_cfg_t *cfg = vcfg;
    if (!cfg->protocols.grpc_present && !cfg->protocols.http_present) {
        om_err_set(err, OM_ECONFIG,
                   "must specify at least one protocol when using the OTLP receiver");
        return OM_ECONFIG;
    }
    const otlp_grpc_cfg_t *g = &cfg->protocols.grpc;
    if (cfg->protocols.grpc_present && g->tls_present &&
        om_tls_server_validate(&g->tls, 0, "protocols::grpc::tls", err) != 0) {
        return OM_ECONFIG;
    }
    const otlp_http_cfg_t *h = &cfg->protocols.http;
    if (!cfg->protocols.http_present) {
        return 0;
    }
    if (om_http_server_cfg_validate(&h->server, "protocols::http", err) != 0) {
        return OM_ECONFIG;
    }
    const char *paths[] = {h->traces_url_path, h->metrics_url_path, h->logs_url_path};
    const char *keys[] = {"traces_url_path", "metrics_url_path", "logs_url_path"};
    for (size_t i = 0; i < 3; i++) {
        if (paths[i] == NULL || paths[i][0] != '/') {
            char at[64];
            snprintf(at, sizeof at, "protocols::http::%s", keys[i]);
            om_err_at(err, at, "url paths must start with '/'");
            return OM_ECONFIG;
        }
    }
    return 0;
}

int otlp_deliver(rcv_otlp_t *r, const om_obsrecv_t *obs, om_batch_t *batch)
{
    int idx = om_signal_index(batch->signal);
    if (idx < 0 || r->next[idx].consume == NULL) {
        om_batch_release(batch);
        return OM_ENOTSUP;
    }
    return om_obsrecv_deliver(obs, &r->next[idx], batch);
}

void otlp_prepare(rcv_otlp_t *r, om_batch_t *batch, om_prepared_t *p)
{
    int idx = om_signal_index(batch->signal);
    om_consumer_prepare(idx >= 0 ? &r->next[idx] : NULL, batch, p);
}

bool otlp_offload(rcv_otlp_t *r, size_t work, bool compressed)
{
    if (work < OTLP_OFFLOAD_MIN || om_intake_refusing(r->host->intake)) {
        return false; /* a refusal needs no decoding */
    }
    double busy = om_host_loop_busy(r->host);
    if (busy >= OTLP_BUSY_OFFLOAD) {
        r->offloading = true;
    } else if (busy < OTLP_BUSY_INPLACE) {
        r->offloading = false;
    }
    return compressed || r->offloading;
}

int otlp_deliver_prepared(rcv_otlp_t *r, const om_obsrecv_t *obs, om_prepared_t *p)
{
    int idx = om_signal_index(p->signal);
    if (idx < 0 || r->next[idx].consume == NULL) {
        om_prepared_release(p);
        return OM_ENOTSUP;
    }
    return om_obsrecv_deliver_prepared(obs, &r->next[idx], p);
}

static int otlp_create(const om_create_args_t *a, void **self, om_err_t *err)
{
    rcv_otlp_t *r = om_calloc(1, sizeof *r);
    if (r == NULL) {
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    r->cfg = a->cfg;
    r->log_name = a->log_name;
    r->host = a->host;
    memcpy(r->next, a->next, sizeof r->next);
    int rc = 0;
    if (r->cfg->protocols.grpc_present) {
        rc = om_obsrecv_init(&r->obs_grpc, a->host, a->id, "grpc", err);
    }
    if (rc == 0 && r->cfg->protocols.http_present) {
        rc = om_obsrecv_init(&r->obs_http, a->host, a->id, "http", err);
    }
    if (rc == 0 && r->cfg->protocols.grpc_present) {
        rc = otlp_grpc_create(r, &r->grpc, err);
    }
    if (rc == 0 && r->cfg->protocols.http_present) {
        rc = otlp_http_create(r, &r->http, err);
    }
    if (rc != 0) {
        if (r->grpc != NULL) {
            otlp_grpc_destroy(r->grpc);
        }
        om_free(r);
        return rc;
    }
    *self = r;
    return 0;
}

static int otlp_start(void *self, om_err_t *err)
{
    rcv_otlp_t *r = self;
    int rc = 0;
    if (r->grpc != NULL) {
        rc = otlp_grpc_start(r->grpc, err);
    }
    if (rc == 0 && r->http != NULL) {
        rc = otlp_http_start(r->http, err);
    }
    return rc;
}

static void server_done(void *arg)
{
    rcv_otlp_t *r = arg;
    if (--r->pending_shutdowns == 0) {
        r->done(r->done_arg);
    }
}

static void otlp_shutdown(void *self, om_done_fn done, void *arg)
{
    rcv_otlp_t *r = self;
    if (r->shutting_down) {
        return;
    }
    r->shutting_down = true;
    r->done = done;
    r->done_arg = arg;
    /* Count both before starting either, so a server that finishes at once cannot call done
     * before the other one has begun. */
    r->pending_shutdowns = 1 + (r->grpc != NULL) + (r->http != NULL);
    if (r->grpc != NULL) {
        otlp_grpc_shutdown(r->grpc, server_done, r);
    }
    if (r->http != NULL) {
        otlp_http_shutdown(r->http, server_done, r);
    }
    server_done(r);
}

static void otlp_destroy(void *self)
{
    rcv_otlp_t *r = self;
    if (r->grpc != NULL) {
        otlp_grpc_destroy(r->grpc);
    }
    if (r->http != NULL) {
        otlp_http_destroy(r->http);
    }
    om_free(r);
}

const om_factory_t rcv_otlp_factory = {
    .abi = OM_FACTORY_ABI,
    .kind = OM_RECEIVER,
    .type = "otlp",
    .help = "OTLP over gRPC (:4317) and HTTP (:4318), protobuf and JSON",
    .signals = OM_SIG_ALL,
    .config_size = sizeof(rcv_otlp_cfg_t),
    .fields = otlp_fields,
    .config_validate = otlp_config_validate,
    .create = otlp_create,
    .start = otlp_start,
    .shutdown = otlp_shutdown,
    .destroy = otlp_destroy,
};
