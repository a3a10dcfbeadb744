/* otlphttp_config.c: the otlphttp exporter's settings, named and defaulted as otelcol's
 * otlphttp exporter (the core's confighttp.ClientConfig table plus the exporter helper's
 * sections and otlphttp's own keys), the cross-field rules, and the per-signal URLs. */
#include <string.h>
#include <strings.h>

#include "otlphttp.h"

static const char *const encodings[] = {"proto", "json", NULL};
/* Order matches otlphttp_comp_t. otelcol also knows snappy and lz4, which we do not send. */
static const char *const compressions[] = {"gzip", "none", "", "zstd", "zlib", "deflate", NULL};
#define OFF(m) offsetof(exp_otlphttp_cfg_t, m)
const om_field_t exp_otlphttp_fields[] = {
    {.key = "endpoint",
     .type = OM_F_STRING,
     .offset = OFF(endpoint),
     .help = "base URL; /v1/traces, /v1/metrics, /v1/logs are appended"},
    {.key = "traces_endpoint",
     .type = OM_F_STRING,
     .offset = OFF(traces_endpoint),
     .help = "full URL for traces, used as given"},
    {.key = "metrics_endpoint",
     .type = OM_F_STRING,
     .offset = OFF(metrics_endpoint),
     .help = "full URL for metrics, used as given"},
    {.key = "logs_endpoint",
     .type = OM_F_STRING,
     .offset = OFF(logs_endpoint),
     .help = "full URL for logs, used as given"},
    {.key = "encoding",
     .type = OM_F_ENUM,
     .offset = OFF(encoding),
     .def = "proto",
     .choices = encodings,
     .help = "request body: proto (application/x-protobuf) or json"},
    {.key = "compression",
     .type = OM_F_ENUM,
     .offset = OFF(compression),
     .def = "gzip",
     .choices = compressions,
     .help = "Content-Encoding of request bodies"},
    /* otelcol's otlphttp factory sets write_buffer_size to 512 KiB. */
    OM_HTTP_CLIENT_FIELDS(exp_otlphttp_cfg_t, http, "512KiB"),
    OM_EXPHELPER_FIELDS(exp_otlphttp_cfg_t, helper, "30s"),
    OM_COMPRESSION_PARAMS_FIELD(exp_otlphttp_cfg_t, compression_params),
    {.key = "profiles_endpoint", .type = OM_F_IGNORED},
    {.key = NULL},
};

static bool is_set(const char *s)
{
    return s != NULL && s[0] != '\0';
}

int exp_otlphttp_config_validate(const void *vcfg, om_err_t *err)
{
    const exp_otlphttp_cfg_t *c = vcfg;
    const char *keys[] = {"endpoint", "traces_endpoint", "metrics_endpoint", "logs_endpoint"};
    const char *urls[] = {c->endpoint, c->traces_endpoint, c->metrics_endpoint, c->logs_endpoint};
    bool any = false;
    for (size_t i = 0; i < 4; i++) {
        if (!is_set(urls[i])) {
            continue;
        }
        any = true;
        int rc = om_http_check_url(keys[i], urls[i], err);
        if (rc != 0) {
            return rc;
        }
    }
    if (!any) {
        om_err_set(err, OM_ECONFIG, "at least one endpoint must be specified");
        return OM_ECONFIG;
    }
    int rc = om_compression_params_validate(compressions[c->compression], &c->compression_params,
                                            NULL, err);
    rc = rc ? rc : om_http_client_cfg_validate(&c->http, err);
    return rc ? rc : om_exphelper_cfg_validate(&c->helper, err);
}

char *exp_otlphttp_signal_url(const exp_otlphttp_cfg_t *cfg, om_signal_t sig, om_err_t *err)
{
    const char *own = sig == OM_SIG_TRACES    ? cfg->traces_endpoint
                      : sig == OM_SIG_METRICS ? cfg->metrics_endpoint
                                              : cfg->logs_endpoint;
    char *url = NULL;
    if (is_set(own)) {
        url = om_strdup(own);
    } else if (is_set(cfg->endpoint)) {
        om_strbuf_t sb;
        om_strbuf_init(&sb, 0);
        size_t n = strlen(cfg->endpoint);
        om_strbuf_puts(&sb, cfg->endpoint);
        om_strbuf_puts(&sb, cfg->endpoint[n - 1] == '/' ? "v1/" : "/v1/");
        om_strbuf_puts(&sb, om_signal_name(sig));
        url = sb.failed ? NULL : om_strbuf_steal(&sb, NULL);
        om_strbuf_free(&sb);
    } else {
        om_err_set(err, OM_ECONFIG, "either endpoint or %s_endpoint must be specified",
                   om_signal_name(sig));
        return NULL;
    }
    if (url == NULL) {
        om_err_set(err, OM_ENOMEM, "out of memory");
    }
    return url;
}
