/* otlphttp_config.c: the otlphttp exporter's settings, named and defaulted as otelcol's
 * otlphttp exporter (confighttp.ClientConfig plus the exporter helper's sections), the
 * cross-field rules, and the per-signal URLs. */
#include <string.h>
#include <strings.h>

#include "otlphttp.h"

static const char *const encodings[] = {"proto", "json", NULL};
/* Order matches otlphttp_comp_t. otelcol also knows snappy and lz4, which we do not send. */
static const char *const compressions[] = {"gzip", "none", "", "zstd", "zlib", "deflate", NULL};
static const char *const tls_versions[] = {"", "1.0", "1.1", "1.2", "1.3", NULL};

#define TLS_OFF(m) offsetof(otlphttp_tls_cfg_t, m)
static const om_field_t tls_fields[] = {
    {.key = "insecure",
     .type = OM_F_BOOL,
     .offset = TLS_OFF(insecure),
     .def = "false",
     .help = "no effect for HTTP: the endpoint's scheme (http/https) decides, as in otelcol"},
    {.key = "insecure_skip_verify",
     .type = OM_F_BOOL,
     .offset = TLS_OFF(insecure_skip_verify),
     .def = "false",
     .help = "do not verify the server's certificate and name"},
    {.key = "include_system_ca_certs_pool",
     .type = OM_F_BOOL,
     .offset = TLS_OFF(include_system_ca_certs_pool),
     .def = "false",
     .help = "with ca_file/ca_pem, trust the system's CAs too"},
    {.key = "ca_file",
     .type = OM_F_STRING,
     .offset = TLS_OFF(ca_file),
     .help = "PEM file of the CAs that sign the server's certificate"},
    {.key = "ca_pem", .type = OM_F_STRING, .offset = TLS_OFF(ca_pem), .help = "the same, inline"},
    {.key = "cert_file",
     .type = OM_F_STRING,
     .offset = TLS_OFF(cert_file),
     .help = "client certificate (PEM) for mutual TLS"},
    {.key = "cert_pem",
     .type = OM_F_STRING,
     .offset = TLS_OFF(cert_pem),
     .help = "the same, inline"},
    {.key = "key_file",
     .type = OM_F_STRING,
     .offset = TLS_OFF(key_file),
     .help = "client private key (PEM) for mutual TLS"},
    {.key = "key_pem", .type = OM_F_STRING, .offset = TLS_OFF(key_pem), .help = "the same, inline"},
    {.key = "server_name_override",
     .type = OM_F_STRING,
     .offset = TLS_OFF(server_name_override),
     .help = "name sent in SNI and checked against the certificate"},
    {.key = "min_version",
     .type = OM_F_ENUM,
     .offset = TLS_OFF(min_version),
     .def = "",
     .choices = tls_versions,
     .help = "lowest TLS version (\"\": 1.2)"},
    {.key = "max_version",
     .type = OM_F_ENUM,
     .offset = TLS_OFF(max_version),
     .def = "",
     .choices = tls_versions,
     .help = "highest TLS version (\"\": the newest)"},
    {.key = "cipher_suites", .type = OM_F_IGNORED},
    {.key = "curve_preferences", .type = OM_F_IGNORED},
    {.key = "reload_interval", .type = OM_F_IGNORED},
    {.key = "tpm_config", .type = OM_F_IGNORED},
    {.key = NULL},
};

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
    {.key = "headers",
     .type = OM_F_STRMAP,
     .offset = OFF(headers),
     .help = "extra request headers (they win over ours)"},
    {.key = "proxy_url",
     .type = OM_F_STRING,
     .offset = OFF(proxy_url),
     .help = "HTTP proxy (unset: the http_proxy/https_proxy/no_proxy variables apply)"},
    {.key = "tls",
     .type = OM_F_SECTION,
     .offset = OFF(tls),
     .fields = tls_fields,
     .help = "TLS client settings for https endpoints"},
    {.key = "read_buffer_size",
     .type = OM_F_SIZE,
     .offset = OFF(read_buffer_size),
     .def = "0",
     .min = 0,
     .max = 1e9,
     .help = "receive buffer per transfer (0: curl's 16 KiB)"},
    {.key = "write_buffer_size",
     .type = OM_F_SIZE,
     .offset = OFF(write_buffer_size),
     .def = "512KiB",
     .min = 0,
     .max = 1e9,
     .help = "upload buffer per transfer"},
    {.key = "max_idle_conns",
     .type = OM_F_INT,
     .offset = OFF(max_idle_conns),
     .def = "100",
     .min = 0,
     .max = 1e6,
     .help = "connections kept for reuse (0: curl's default)"},
    {.key = "max_conns_per_host",
     .type = OM_F_INT,
     .offset = OFF(max_conns_per_host),
     .def = "0",
     .min = 0,
     .max = 1e6,
     .help = "connections per host (0: sending_queue::num_consumers)"},
    {.key = "idle_conn_timeout",
     .type = OM_F_DURATION,
     .offset = OFF(idle_conn_timeout),
     .def = "90s",
     .min = 0,
     .max = 9.2e18,
     .help = "idle connections older are not reused"},
    {.key = "disable_keep_alives",
     .type = OM_F_BOOL,
     .offset = OFF(disable_keep_alives),
     .def = "false",
     .help = "one connection per request"},
    OM_EXPHELPER_FIELDS(exp_otlphttp_cfg_t, helper, "30s"),
    {.key = "auth", .type = OM_F_REFUSED, .help = OM_AUTH_REFUSED},
    {.key = "compression_params", .type = OM_F_IGNORED},
    {.key = "max_idle_conns_per_host", .type = OM_F_IGNORED},
    {.key = "http2_read_idle_timeout", .type = OM_F_IGNORED},
    {.key = "http2_ping_timeout", .type = OM_F_IGNORED},
    {.key = "force_attempt_http2", .type = OM_F_IGNORED},
    {.key = "cookies", .type = OM_F_IGNORED},
    {.key = "middlewares", .type = OM_F_IGNORED},
    {.key = "profiles_endpoint", .type = OM_F_IGNORED},
    {.key = NULL},
};

static bool is_set(const char *s)
{
    return s != NULL && s[0] != '\0';
}

int exp_otlphttp_check_url(const char *key, const char *s, om_err_t *err)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL;
    int rc = OM_ECONFIG;
    if (u == NULL) {
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    if (curl_url_set(u, CURLUPART_URL, s, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
        om_err_set(err, OM_ECONFIG, "%s must be a valid URL: \"%.200s\"", key, s);
        goto out;
    }
    if (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0) {
        om_err_set(err, OM_ECONFIG, "%s: unsupported scheme \"%.32s\" (use http or https)", key,
                   scheme);
        goto out;
    }
    rc = 0;
out:
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return rc;
}

/* HTTP field names are tokens; values must not end the header line early. */
static int check_headers(const om_strmap_t *h, om_err_t *err)
{
    static const char tspecials[] = "()<>@,;:\\\"/[]?={} \t";
    for (size_t i = 0; i < h->n; i++) {
        const char *k = h->keys[i];
        bool ok = k[0] != '\0';
        for (const char *p = k; ok && *p != '\0'; p++) {
            ok = (unsigned char)*p > 32 && (unsigned char)*p < 127 && !strchr(tspecials, *p);
        }
        if (!ok) {
            om_err_set(err, OM_ECONFIG, "headers: invalid header name \"%.64s\"", k);
            return OM_ECONFIG;
        }
        if (strpbrk(h->values[i], "\r\n") != NULL) {
            om_err_set(err, OM_ECONFIG, "headers::%.64s: the value must not contain a line break",
                       k);
            return OM_ECONFIG;
        }
    }
    return 0;
}

static int check_tls(const otlphttp_tls_cfg_t *t, om_err_t *err)
{
    bool cert = is_set(t->cert_file) || is_set(t->cert_pem);
    bool key = is_set(t->key_file) || is_set(t->key_pem);
    if (cert != key) {
        om_err_set(err, OM_ECONFIG,
                   "tls: for auth via TLS, provide both certificate and key, or neither");
        return OM_ECONFIG;
    }
    if ((is_set(t->cert_file) && is_set(t->cert_pem)) ||
        (is_set(t->key_file) && is_set(t->key_pem)) || (is_set(t->ca_file) && is_set(t->ca_pem))) {
        om_err_set(err, OM_ECONFIG, "tls: provide either a file or a PEM, not both");
        return OM_ECONFIG;
    }
    if (t->min_version != OTLPHTTP_TLS_DEFAULT && t->max_version != OTLPHTTP_TLS_DEFAULT &&
        t->max_version < t->min_version) {
        om_err_set(err, OM_ECONFIG, "tls: max_version must not be lower than min_version");
        return OM_ECONFIG;
    }
    return 0;
}

int exp_otlphttp_config_validate(const void *vcfg, om_err_t *err)
{
    const exp_otlphttp_cfg_t *c = vcfg;
    /* URLs are checked with libcurl's own parser, the one that will use them. */
    int lrc = exp_otlphttp_curl_load(err);
    if (lrc != 0) {
        return lrc;
    }
    const char *keys[] = {"endpoint", "traces_endpoint", "metrics_endpoint", "logs_endpoint"};
    const char *urls[] = {c->endpoint, c->traces_endpoint, c->metrics_endpoint, c->logs_endpoint};
    bool any = false;
    for (size_t i = 0; i < 4; i++) {
        if (!is_set(urls[i])) {
            continue;
        }
        any = true;
        int rc = exp_otlphttp_check_url(keys[i], urls[i], err);
        if (rc != 0) {
            return rc;
        }
    }
    if (!any) {
        om_err_set(err, OM_ECONFIG, "at least one endpoint must be specified");
        return OM_ECONFIG;
    }
    if (is_set(c->proxy_url)) {
        CURLU *u = curl_url();
        CURLUcode uc = u != NULL ? curl_url_set(u, CURLUPART_URL, c->proxy_url, 0) : CURLUE_OK;
        curl_url_cleanup(u);
        if (uc != CURLUE_OK) {
            om_err_set(err, OM_ECONFIG, "proxy_url must be a valid URL: \"%.200s\"", c->proxy_url);
            return OM_ECONFIG;
        }
    }
    int rc = check_headers(&c->headers, err);
    if (rc == 0) {
        rc = check_tls(&c->tls, err);
    }
    if (rc == 0) {
        rc = om_exphelper_cfg_validate(&c->helper, err);
    }
    return rc;
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
