/* otlp_factory.c: the otlp receiver's config table, validation and lifecycle.
 * The servers themselves are in otlp_grpc.c and otlp_http.c. */
#include <stdlib.h>
#include <string.h>

#include "otlp.h"
#include "otlp_tls.h"

/* otelcol's configtls.ServerConfig keys. cipher_suites differs per protocol: OpenSSL applies
 * it for HTTP, gRPC core offers no such setting. */
#define TLS_FIELD(name, member, text)                                                              \
    {                                                                                              \
        .key = name, .type = OM_F_STRING, .offset = offsetof(otlp_tls_cfg_t, member), .help = text \
    }
#define TLS_COMMON_FIELDS                                                                          \
    TLS_FIELD("cert_file", cert_file, "the server's certificate chain (PEM file)"),                \
        TLS_FIELD("cert_pem", cert_pem, "the same as inline PEM"),                                 \
        TLS_FIELD("key_file", key_file, "the certificate's private key (PEM file)"),               \
        TLS_FIELD("key_pem", key_pem, "the same as inline PEM"),                                   \
        TLS_FIELD("client_ca_file", client_ca_file,                                                \
                  "mutual TLS: clients must present a certificate signed by this CA"),             \
        TLS_FIELD("ca_file", ca_file, "accepted and checked; unused by a server"),                 \
        TLS_FIELD("ca_pem", ca_pem, "accepted and checked; unused by a server"),                   \
        TLS_FIELD("min_version", min_version, "lowest TLS version: 1.0 to 1.3 (default 1.2)"),     \
        TLS_FIELD("max_version", max_version, "highest TLS version (default: the newest)"),        \
        {.key = "include_system_ca_certs_pool", .type = OM_F_IGNORED},                             \
        {.key = "reload_interval", .type = OM_F_IGNORED},                                          \
        {.key = "client_ca_file_reload", .type = OM_F_IGNORED},                                    \
        {.key = "curve_preferences", .type = OM_F_IGNORED},                                        \
    {                                                                                              \
        .key = "tpm", .type = OM_F_IGNORED                                                         \
    }

static const om_field_t grpc_tls_fields[] = {
    TLS_COMMON_FIELDS,
    {.key = "cipher_suites", .type = OM_F_IGNORED},
    {.key = NULL},
};

static const om_field_t http_tls_fields[] = {
    TLS_COMMON_FIELDS,
    {.key = "cipher_suites",
     .type = OM_F_STRLIST,
     .offset = offsetof(otlp_tls_cfg_t, cipher_suites),
     .help = "TLS 1.2 cipher suites by IANA name (as in Go)"},
    {.key = NULL},
};

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
     .fields = grpc_tls_fields,
     .flags = OM_FF_PRESENCE,
     .present_offset = offsetof(otlp_grpc_cfg_t, tls_present),
     .help = "serve TLS (otelcol's configtls server settings)"},
    {.key = "transport", .type = OM_F_IGNORED},
    {.key = "read_buffer_size", .type = OM_F_IGNORED},
    {.key = "write_buffer_size", .type = OM_F_IGNORED},
    {.key = "include_metadata", .type = OM_F_IGNORED},
    {.key = "keepalive", .type = OM_F_IGNORED},
    {.key = "auth", .type = OM_F_REFUSED, .help = OM_AUTH_REFUSED},
    {.key = NULL},
};

static const om_field_t http_fields[] = {
    {.key = "endpoint",
     .type = OM_F_ENDPOINT,
     .offset = offsetof(otlp_http_cfg_t, endpoint),
     .def = "localhost:4318",
     .help = "host:port to listen on for OTLP/HTTP"},
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
    {.key = "max_request_body_size",
     .type = OM_F_SIZE,
     .offset = offsetof(otlp_http_cfg_t, max_request_body_size),
     .def = "20MiB",
     .min = 1,
     .max = 2147483647.0,
     .help = "largest body accepted, measured after decompression"},
    {.key = "tls",
     .type = OM_F_SECTION,
     .offset = offsetof(otlp_http_cfg_t, tls),
     .fields = http_tls_fields,
     .flags = OM_FF_PRESENCE,
     .present_offset = offsetof(otlp_http_cfg_t, tls_present),
     .help = "serve TLS (otelcol's configtls server settings)"},
    {.key = "include_metadata", .type = OM_F_IGNORED},
    {.key = "cors", .type = OM_F_IGNORED},
    {.key = "auth", .type = OM_F_REFUSED, .help = OM_AUTH_REFUSED},
    {.key = "response_headers", .type = OM_F_IGNORED},
    {.key = "compression_algorithms", .type = OM_F_IGNORED},
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
        otlp_tls_validate(&g->tls, "protocols::grpc::tls", true, err) != 0) {
        return OM_ECONFIG;
    }
    const otlp_http_cfg_t *h = &cfg->protocols.http;
    if (cfg->protocols.http_present && h->tls_present &&
        otlp_tls_validate(&h->tls, "protocols::http::tls", false, err) != 0) {
        return OM_ECONFIG;
    }
    const char *paths[] = {h->traces_url_path, h->metrics_url_path, h->logs_url_path};
    for (size_t i = 0; cfg->protocols.http_present && i < 3; i++) {
        if (paths[i] == NULL || paths[i][0] != '/') {
            om_err_set(err, OM_ECONFIG, "protocols::http: url paths must start with '/'");
            return OM_ECONFIG;
        }
    }
    return 0;
}

int otlp_deliver(rcv_otlp_t *r, om_batch_t *batch)
{
    int idx = om_signal_index(batch->signal);
    if (idx < 0 || r->next[idx].consume == NULL) {
        om_batch_release(batch);
        return OM_ENOTSUP;
    }
    return om_consumer_consume(&r->next[idx], batch);
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
