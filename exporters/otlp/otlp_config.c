/* otlp_config.c: the otlp exporter's config: field table (otelcol's keys and defaults),
 * cross-field rules, and how the endpoint becomes a gRPC target.
 *
 * Endpoint and TLS follow otelcol's configgrpc and configtls:
 * - "http://" and "https://" prefixes are stripped; "https://" turns TLS on whatever
 *   tls.insecure says. "dns://" and "dns:///" are stripped (gRPC resolves through DNS by
 *   default). "unix:..." targets are passed to gRPC as written.
 * - What remains must be host:port (IPv6 in brackets) with a numeric port; an empty host
 *   means localhost.
 * - TLS is on unless tls.insecure is true and no CA is configured. As in otelcol, an
 *   "http://" endpoint does not by itself turn TLS off: tls.insecure does. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "otlp_exporter.h"

static const char *const compression_choices[] = {
    "gzip", "none", "", "snappy", "zstd", "zlib", "deflate", "lz4", NULL,
};

static const om_field_t keepalive_fields[] = {
    {.key = "time",
     .type = OM_F_DURATION,
     .offset = offsetof(exp_otlp_keepalive_cfg_t, time),
     .def = "10s",
     .min = 0,
     .max = 9.2e18,
     .help = "ping the server after this long without activity (0: never)"},
    {.key = "timeout",
     .type = OM_F_DURATION,
     .offset = offsetof(exp_otlp_keepalive_cfg_t, timeout),
     .def = "10s",
     .min = 0,
     .max = 9.2e18,
     .help = "close the connection when a ping is not answered within this"},
    {.key = "permit_without_stream",
     .type = OM_F_BOOL,
     .offset = offsetof(exp_otlp_keepalive_cfg_t, permit_without_stream),
     .def = "false",
     .help = "ping also while no call is open"},
    {.key = NULL},
};

const om_field_t exp_otlp_fields[] = {
    {.key = "endpoint",
     .type = OM_F_STRING,
     .offset = offsetof(exp_otlp_cfg_t, endpoint),
     .help = "host:port of the OTLP/gRPC server (also dns:///host:port, https://host:port)"},
    {.key = "compression",
     .type = OM_F_ENUM,
     .offset = offsetof(exp_otlp_cfg_t, compression),
     .def = "gzip",
     .choices = compression_choices,
     .help = "gzip or none"},
    OM_COMPRESSION_PARAMS_FIELD(exp_otlp_cfg_t, compression_params),
    {.key = "headers",
     .type = OM_F_STRMAP,
     .offset = offsetof(exp_otlp_cfg_t, headers),
     .help = "metadata sent with every call (e.g. X-Scope-OrgID)"},
    {.key = "tls",
     .type = OM_F_SECTION,
     .offset = offsetof(exp_otlp_cfg_t, tls),
     .fields = om_tls_client_fields,
     .help = "transport security (on by default)"},
    {.key = "keepalive",
     .type = OM_F_SECTION,
     .offset = offsetof(exp_otlp_cfg_t, keepalive),
     .fields = keepalive_fields,
     .help = "HTTP/2 keepalive pings"},
    {.key = "balancer_name",
     .type = OM_F_STRING,
     .offset = offsetof(exp_otlp_cfg_t, balancer_name),
     .def = "round_robin",
     .help = "round_robin or pick_first over the addresses the endpoint resolves to"},
    {.key = "authority",
     .type = OM_F_STRING,
     .offset = offsetof(exp_otlp_cfg_t, authority),
     .help = "value of the :authority header instead of the endpoint"},
    {.key = "user_agent",
     .type = OM_F_STRING,
     .offset = offsetof(exp_otlp_cfg_t, user_agent),
     .help = "User-Agent of the calls (default OtelMon/<version>)"},
    {.key = "wait_for_ready",
     .type = OM_F_BOOL,
     .offset = offsetof(exp_otlp_cfg_t, wait_for_ready),
     .def = "false",
     .help = "let calls wait for a connection instead of failing while it is down"},
    OM_EXPHELPER_FIELDS(exp_otlp_cfg_t, helper, "5s"),
    OM_AUTH_FIELD(exp_otlp_cfg_t, auth, OM_F_AUTH_CLIENT, om_auth_client_fields),
    {.key = "middlewares", .type = OM_F_REFUSED, .help = OM_MIDDLEWARES_REFUSED},
    {.key = "read_buffer_size", .type = OM_F_IGNORED},
    {.key = "write_buffer_size", .type = OM_F_IGNORED},
    {.key = "batcher", .type = OM_F_IGNORED},
    {.key = NULL},
};

static bool is_set(const char *s)
{
    return s != NULL && s[0] != '\0';
}

static bool has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* The endpoint without the prefixes otelcol strips; *https tells whether it said https. */
static const char *strip_scheme(const char *ep, bool *https)
{
    *https = false;
    if (has_prefix(ep, "http://")) {
        return ep + strlen("http://");
    }
    if (has_prefix(ep, "https://")) {
        *https = true;
        return ep + strlen("https://");
    }
    if (has_prefix(ep, "dns:///")) {
        return ep + strlen("dns:///");
    }
    if (has_prefix(ep, "dns://")) {
        return ep + strlen("dns://");
    }
    return ep;
}

/* Go's net.SplitHostPort followed by a numeric port check, as otelcol validates: sets
 * *host_len (the host without brackets starts at hp + *host_off). */
static int split_host_port(const char *hp, size_t *host_off, size_t *host_len, om_err_t *err)
{
    const char *colon;
    if (hp[0] == '[') {
        const char *close = strchr(hp, ']');
        if (close == NULL) {
            om_err_set(err, OM_ECONFIG, "endpoint \"%.128s\": missing ']' in address", hp);
            return OM_ECONFIG;
        }
        colon = close + 1;
        if (*colon != ':') {
            om_err_set(err, OM_ECONFIG, "endpoint \"%.128s\": missing port in address", hp);
            return OM_ECONFIG;
        }
        *host_off = 1;
        *host_len = (size_t)(close - hp) - 1;
    } else {
        colon = strrchr(hp, ':');
        if (colon == NULL) {
            om_err_set(err, OM_ECONFIG, "endpoint \"%.128s\": missing port in address", hp);
            return OM_ECONFIG;
        }
        if (memchr(hp, ':', (size_t)(colon - hp)) != NULL) {
            om_err_set(err, OM_ECONFIG, "endpoint \"%.128s\": too many colons in address", hp);
            return OM_ECONFIG;
        }
        *host_off = 0;
        *host_len = (size_t)(colon - hp);
    }
    const char *port = colon + 1;
    size_t n = strlen(port);
    bool digits = n > 0 && n <= 5;
    for (size_t i = 0; digits && i < n; i++) {
        digits = isdigit((unsigned char)port[i]) != 0;
    }
    if (!digits || strtol(port, NULL, 10) > 65535) {
        om_err_set(err, OM_ECONFIG, "invalid port \"%.64s\"", port);
        return OM_ECONFIG;
    }
    return 0;
}

int exp_otlp_target(const exp_otlp_cfg_t *cfg, char **target, bool *tls, om_err_t *err)
{
    const char *ep = cfg->endpoint != NULL ? cfg->endpoint : "";
    bool https;
    const char *hp = strip_scheme(ep, &https);
    const om_tls_client_cfg_t *t = &cfg->tls;
    *tls = https || !t->insecure || om_tls_client_has_ca(t);
    *target = NULL;
    if (has_prefix(ep, "unix:")) {
        const char *path = ep + strlen("unix:");
        if (strspn(path, "/") == strlen(path)) {
            om_err_set(err, OM_ECONFIG, "unix socket path cannot be empty");
            return OM_ECONFIG;
        }
        *target = om_strdup(ep);
    } else {
        if (hp[0] == '\0') {
            om_err_set(err, OM_ECONFIG, "requires a non-empty \"endpoint\"");
            return OM_ECONFIG;
        }
        size_t off, len;
        int rc = split_host_port(hp, &off, &len, err);
        if (rc != 0) {
            return rc;
        }
        om_strbuf_t sb;
        om_strbuf_init(&sb, 0);
        if (len == 0) {
            om_strbuf_puts(&sb, "localhost"); /* ":4317", as Go dials it */
        }
        om_strbuf_puts(&sb, hp);
        *target = sb.failed ? NULL : om_strbuf_steal(&sb, NULL);
        om_strbuf_free(&sb);
    }
    if (*target == NULL) {
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    return 0;
}

/* gRPC metadata keys are lowercase [0-9a-z_.-]; we lowercase what the config says. Keys
 * gRPC manages itself cannot be set. Values of keys not ending in "-bin" are printable
 * ASCII. */
static int check_header(const char *key, const char *value, om_err_t *err)
{
    size_t n = strlen(key);
    bool ok = n > 0;
    for (size_t i = 0; ok && i < n; i++) {
        char c = (char)tolower((unsigned char)key[i]);
        ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
    }
    if (!ok) {
        om_err_set(err, OM_ECONFIG, "headers: \"%.64s\" is not a valid gRPC metadata key", key);
        return OM_ECONFIG;
    }
    if (strncasecmp(key, "grpc-", 5) == 0 || strcasecmp(key, "content-type") == 0 ||
        strcasecmp(key, "te") == 0) {
        om_err_set(err, OM_ECONFIG, "headers: \"%.64s\" is reserved by gRPC", key);
        return OM_ECONFIG;
    }
    bool binary = n > 4 && strcasecmp(key + n - 4, "-bin") == 0;
    for (const char *v = value; !binary && v != NULL && *v != '\0'; v++) {
        if (*v < 0x20 || *v > 0x7e) {
            om_err_set(err, OM_ECONFIG,
                       "headers: the value of \"%.64s\" must be printable ASCII (or use a "
                       "key ending in -bin)",
                       key);
            return OM_ECONFIG;
        }
    }
    return 0;
}

static int check_compression_and_balancer(const exp_otlp_cfg_t *cfg, om_err_t *err)
{
    if (cfg->compression > EXP_OTLP_COMP_EMPTY) {
        om_err_set(err, OM_ECONFIG,
                   "unsupported compression type \"%s\" (the otlp exporter supports gzip and "
                   "none)",
                   compression_choices[cfg->compression]);
        return OM_ECONFIG;
    }
    int rc = om_compression_params_validate(compression_choices[cfg->compression],
                                            &cfg->compression_params, NULL, err);
    if (rc != 0) {
        return rc;
    }
    const char *b = cfg->balancer_name;
    if (is_set(b) && strcmp(b, "round_robin") != 0 && strcmp(b, "pick_first") != 0) {
        om_err_set(err, OM_ECONFIG, "invalid balancer_name: %.64s (valid: round_robin, pick_first)",
                   b);
        return OM_ECONFIG;
    }
    return 0;
}

int exp_otlp_config_validate(const void *vcfg, om_err_t *err)
{
    const exp_otlp_cfg_t *cfg = vcfg;
    char *target = NULL;
    bool tls;
    int rc = exp_otlp_target(cfg, &target, &tls, err);
    om_free(target);
    if (rc == 0 && cfg->auth.authenticator != NULL && !tls) {
        /* otelcol's authenticators mark their gRPC credentials as needing transport security,
         * and grpc-go then refuses to make the channel: credentials never go out in clear. */
        om_err_at(err, "auth::authenticator",
                  "grpc: the credentials require transport level security (use "
                  "grpc.WithTransportCredentials() to set): the exporter is in plaintext "
                  "(tls::insecure), so credentials would be sent in clear");
        rc = OM_ECONFIG;
    }
    if (rc == 0) {
        rc = check_compression_and_balancer(cfg, err);
    }
    for (size_t i = 0; rc == 0 && i < cfg->headers.n; i++) {
        rc = check_header(cfg->headers.keys[i], cfg->headers.values[i], err);
    }
    if (rc == 0) {
        rc = om_tls_client_validate(&cfg->tls, "tls", OM_TLS_STACK_GRPC, err);
    }
    if (rc == 0) {
        rc = om_exphelper_cfg_validate(&cfg->helper, err);
    }
    return rc;
}
