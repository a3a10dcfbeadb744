/* tls_client_test.c: the core's TLS client settings (om_tls_client_*): defaults, every rule
 * on each stack (libcurl, gRPC), refused keys, errors reported at the key with
 * file:line:column through real exporters, reading and checking the PEM material, and the
 * OpenSSL forms of cipher_suites and curve_preferences checked against OpenSSL itself. */
#include <stdlib.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "config.h"
#include "om.h"
#include "om_test.h"
#include "om_testpem.h"
#include "pipeline.h"

/* A component-like config with the table under "tls". */
typedef struct holder {
    om_tls_client_cfg_t tls;
} holder_t;

static const om_field_t holder_fields[] = {
    {.key = "tls",
     .type = OM_F_SECTION,
     .offset = offsetof(holder_t, tls),
     .fields = om_tls_client_fields},
    {.key = NULL},
};

/* Applies `tls: {...}` (the YAML flow map text) and validates for stack. Returns the first
 * problem as "at: message" (or "" when none) in buf. */
static int check(const char *tls_yaml, om_tls_stack_t stack, char *buf, size_t cap)
{
    char text[1024];
    snprintf(text, sizeof text, "c: {tls: %s}", tls_yaml);
    holder_t h;
    memset(&h, 0, sizeof h);
    om_config_t *y = NULL;
    om_diags_t d = {0};
    int rc = om_config_load_string("t.yaml", text, strlen(text), &y, &d);
    if (rc == 0 && om_fields_apply(holder_fields, &h, om_node_get(y->root, "c"), "c", &d) != 0) {
        rc = OM_ECONFIG;
    }
    buf[0] = '\0';
    if (d.n > 0) {
        snprintf(buf, cap, "%s", d.msgs[0]);
    }
    if (rc == 0) {
        om_err_t err = {0};
        rc = om_tls_client_validate(&h.tls, "tls", stack, &err);
        if (rc != 0) {
            snprintf(buf, cap, "%s: %s", err.at, err.msg);
        }
    }
    om_diags_free(&d);
    om_fields_free(holder_fields, &h);
    om_config_free(y);
    return rc;
}

static void test_defaults(void)
{
    holder_t h;
    memset(&h, 0, sizeof h);
    h.tls.insecure = h.tls.insecure_skip_verify = true; /* overwritten by the defaults */
    om_diags_t d = {0};
    ASSERT_EQ_INT(om_fields_apply(holder_fields, &h, NULL, "c", &d), 0);
    const om_tls_client_cfg_t *t = &h.tls;
    ASSERT_TRUE(!t->insecure && !t->insecure_skip_verify &&
                !t->common.include_system_ca_certs_pool);
    ASSERT_TRUE(t->common.ca_file == NULL && t->common.ca_pem == NULL &&
                t->common.cert_file == NULL);
    ASSERT_TRUE(t->common.key_pem == NULL && t->server_name_override == NULL);
    ASSERT_EQ_INT(t->common.min_version, OM_TLS_V_DEFAULT);
    ASSERT_EQ_INT(t->common.max_version, OM_TLS_V_DEFAULT);
    ASSERT_EQ_UINT(t->common.cipher_suites.n, 0);
    ASSERT_EQ_UINT(t->common.curve_preferences.n, 0);
    ASSERT_EQ_INT(t->reload_interval, 0);
    om_err_t err = {0};
    ASSERT_EQ_INT(om_tls_client_validate(t, "tls", OM_TLS_STACK_LIBCURL, &err), 0);
    ASSERT_EQ_INT(om_tls_client_validate(t, "tls", OM_TLS_STACK_GRPC, &err), 0);
    ASSERT_TRUE(!om_tls_client_has_ca(t) && !om_tls_client_has_cert(t));
    char *l = om_tls_client_cipher_list(t);
    ASSERT_EQ_STR(l, "");
    om_free(l);
    om_fields_free(holder_fields, &h);
}

typedef struct rule {
    const char *yaml;
    const char *want; /* NULL: valid */
} rule_t;

static void run_rules(const rule_t *rules, size_t n, om_tls_stack_t stack)
{
    for (size_t i = 0; i < n; i++) {
        char got[512];
        int rc = check(rules[i].yaml, stack, got, sizeof got);
        if (rules[i].want == NULL) {
            if (rc != 0) {
                fprintf(stderr, "%s: unexpected: %s\n", rules[i].yaml, got);
            }
            ASSERT_EQ_INT(rc, 0);
        } else {
            if (rc == 0 || strstr(got, rules[i].want) == NULL) {
                fprintf(stderr, "%s: want \"%s\", got \"%s\"\n", rules[i].yaml, rules[i].want, got);
            }
            ASSERT_TRUE(rc != 0);
            ASSERT_CONTAINS(got, rules[i].want);
        }
    }
}

/* Rules both stacks share, as configtls words them. */
static const rule_t common_rules[] = {
    {"{ca_file: /a, ca_pem: b}",
     "tls::ca_pem: provide either a CA file or the PEM-encoded string, but not both"},
    {"{cert_file: /c, cert_pem: c, key_file: /k}",
     "tls::cert_pem: provide either certificate file or PEM, but not both"},
    {"{cert_file: /c, key_file: /k, key_pem: k}",
     "tls::key_pem: provide either key file or PEM, but not both"},
    {"{cert_file: /c}", "tls::cert_file: for auth via TLS, provide both certificate and key"},
    {"{key_pem: k}", "tls::key_pem: for auth via TLS, provide both certificate and key"},
    {"{max_version: '1.1'}",
     "tls::max_version: invalid TLS configuration: min_version cannot be greater than max_version"},
    {"{min_version: '1.2', max_version: '1.0'}", "min_version cannot be greater than max_version"},
    {"{min_version: '1.4'}", "unknown value \"1.4\""},
    {"{insecure: true, insecure_skip_verify: true, server_name_override: x, ca_pem: c, "
     "include_system_ca_certs_pool: true, cert_pem: c, key_pem: k}",
     NULL},
    {"{include_insecure_cipher_suites: true}",
     "not supported by otelmon: insecure cipher suites are not offered by otelmon"},
    {"{include_insecure_cipher_suites: false}", NULL},
    {"{tpm: {enabled: true, path: /dev/tpmrm0}}",
     "c::tls::tpm::enabled: not supported by otelmon: keys in a TPM are not supported"},
    {"{tpm: {enabled: false}}", NULL},
    {"{reload_interval: -1s}", "reload_interval"},
    {"{verify: true}", "has invalid keys: verify"},
};

static void test_common_rules(void)
{
    size_t n = sizeof common_rules / sizeof common_rules[0];
    run_rules(common_rules, n, OM_TLS_STACK_LIBCURL);
    run_rules(common_rules, n, OM_TLS_STACK_GRPC);
}

static void test_libcurl_rules(void)
{
    static const rule_t rules[] = {
        {"{min_version: '1.0', max_version: '1.3'}", NULL},
        {"{min_version: '1.3'}", NULL},
        {"{max_version: '1.2'}", NULL},
        {"{cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_AES_128_GCM_SHA256]}",
         NULL},
        {"{cipher_suites: [TLS_BOGUS]}",
         "tls::cipher_suites: invalid TLS cipher suite: \"TLS_BOGUS\""},
        {"{cipher_suites: [TLS_RSA_WITH_RC4_128_SHA]}",
         "tls::cipher_suites: \"TLS_RSA_WITH_RC4_128_SHA\" is an insecure cipher suite"},
        {"{curve_preferences: [X25519, P256, P384, P521]}", NULL},
        {"{curve_preferences: [P257]}",
         "tls::curve_preferences: invalid curve type: P257. Expected values are X25519, P256"},
        {"{reload_interval: 1m, cert_pem: c, key_pem: k}", NULL},
        {"{reload_interval: 1m, cert_file: /c, key_pem: k, ca_pem: x}", NULL},
    };
    run_rules(rules, sizeof rules / sizeof rules[0], OM_TLS_STACK_LIBCURL);
}

static void test_grpc_rules(void)
{
    static const rule_t rules[] = {
        /* gRPC negotiates 1.2 or 1.3: a lower minimum is only stricter. */
        {"{min_version: '1.0'}", NULL},
        {"{min_version: '1.1'}", NULL},
        {"{min_version: '1.2', max_version: '1.3'}", NULL},
        {"{min_version: '1.3'}", "tls::min_version: 1.3 cannot be enforced over gRPC"},
        {"{max_version: '1.2'}", "tls::max_version: below 1.3 cannot be enforced over gRPC"},
        {"{min_version: '1.0', max_version: '1.1'}", "tls::max_version: below 1.3"},
        {"{cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]}",
         "tls::cipher_suites: not supported over gRPC"},
        {"{curve_preferences: [X25519]}", "tls::curve_preferences: not supported over gRPC"},
        {"{reload_interval: 1m, cert_file: /c, key_file: /k, ca_file: /a}", NULL},
        {"{reload_interval: 1m, cert_file: /c, key_file: /k}", NULL},
        {"{reload_interval: 1m, ca_pem: x}", NULL}, /* nothing to reload */
        {"{reload_interval: 1m, cert_pem: c, key_pem: k}",
         "tls::reload_interval: over gRPC, reloading needs cert_file and key_file"},
        {"{reload_interval: 1m, cert_file: /c, key_file: /k, ca_pem: x}", "tls::reload_interval"},
        {"{reload_interval: 1m, cert_file: /c, key_file: /k, ca_file: /a, "
         "include_system_ca_certs_pool: true}",
         "tls::reload_interval"},
    };
    run_rules(rules, sizeof rules / sizeof rules[0], OM_TLS_STACK_GRPC);
}

/* ------------------------------------------------------------------------------------------ */
/* Through real components: where the core reports the problem                                */

static char *problems_of(const char *yaml)
{
    om_diags_t d = {0};
    om_config_t *cfg = NULL;
    om_strbuf_t all;
    om_strbuf_init(&all, 0);
    om_strbuf_puts(&all, "");
    uv_loop_t loop;
    uv_loop_init(&loop);
    om_host_t host;
    om_test_host_init(&host, &loop);
    if (om_config_load_string("p.yaml", yaml, strlen(yaml), &cfg, &d) == 0) {
        om_graph_t *g = NULL;
        om_graph_build(cfg, &host, true, &g, &d);
        om_graph_free(g);
    }
    for (size_t i = 0; i < d.n; i++) {
        om_strbuf_printf(&all, "%s\n", d.msgs[i]);
    }
    om_diags_free(&d);
    om_config_free(cfg);
    om_test_host_close(&host);
    uv_loop_close(&loop);
    return om_strbuf_steal(&all, NULL);
}

static void test_positions_through_exporters(void)
{
    char *p = problems_of("receivers:\n"
                          "  otlp:\n"
                          "    protocols:\n"
                          "      grpc:\n"
                          "exporters:\n"
                          "  otlphttp:\n"
                          "    endpoint: https://b:4318\n"
                          "    tls:\n"
                          "      min_version: '1.3'\n"
                          "      max_version: '1.2'\n"
                          "  otlp:\n"
                          "    endpoint: b:4317\n"
                          "    tls:\n"
                          "      cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]\n"
                          "  otlp/2:\n"
                          "    endpoint: b:4317\n"
                          "    tls:\n"
                          "      min_version: '1.3'\n"
                          "  otlphttp/2:\n"
                          "    endpoint: https://b:4318\n"
                          "    tls:\n"
                          "      include_insecure_cipher_suites: true\n"
                          "      tpm:\n"
                          "        enabled: true\n"
                          "service:\n"
                          "  pipelines:\n"
                          "    traces:\n"
                          "      receivers: [otlp]\n"
                          "      exporters: [otlphttp, otlp, otlp/2, otlphttp/2]\n");
    ASSERT_CONTAINS(p, "p.yaml:10:20: exporters::otlphttp: tls::max_version: invalid TLS "
                       "configuration: min_version cannot be greater than max_version");
    ASSERT_CONTAINS(p, "p.yaml:14:22: exporters::otlp: tls::cipher_suites: not supported over "
                       "gRPC");
    ASSERT_CONTAINS(p, "p.yaml:18:20: exporters::otlp/2: tls::min_version: 1.3 cannot be "
                       "enforced over gRPC");
    ASSERT_CONTAINS(p, "p.yaml:22:39: exporters::otlphttp/2::tls::include_insecure_cipher_suites:"
                       " not supported by otelmon");
    ASSERT_CONTAINS(p, "p.yaml:24:18: exporters::otlphttp/2::tls::tpm::enabled: not supported by "
                       "otelmon");
    free(p);
}

/* ------------------------------------------------------------------------------------------ */
/* Reading the material                                                                       */

static int load(om_tls_client_cfg_t *t, om_tls_pem_t *pem, om_err_t *err)
{
    *err = (om_err_t){0};
    return om_tls_client_pem_load(t, "tls", pem, err);
}

static void test_load(void)
{
    om_tls_client_cfg_t t = {0};
    om_tls_pem_t pem;
    om_err_t err;
    /* Nothing configured: nothing read. */
    ASSERT_EQ_INT(load(&t, &pem, &err), 0);
    ASSERT_TRUE(pem.ca == NULL && pem.cert == NULL && pem.key == NULL);
    /* Files and inline PEM give the same text. */
    t.common.ca_file = om_testpem_file("ca.pem", om_test_ca_pem);
    t.common.cert_pem = (char *)(uintptr_t)om_test_client_cert_pem;
    t.common.key_file = om_testpem_file("client.key", om_test_client_key_pem);
    ASSERT_EQ_INT(load(&t, &pem, &err), 0);
    ASSERT_EQ_STR(pem.ca, om_test_ca_pem);
    ASSERT_EQ_STR(pem.cert, om_test_client_cert_pem);
    ASSERT_EQ_STR(pem.key, om_test_client_key_pem);
    om_tls_pem_free(&pem);
    ASSERT_TRUE(pem.key == NULL);
    /* A key that belongs to another certificate. */
    t.common.key_file = om_testpem_file("server.key", om_test_server_key_pem);
    ASSERT_EQ_INT(load(&t, &pem, &err), OM_ECONFIG);
    ASSERT_CONTAINS(err.msg, "tls::key_file: the private key in \"");
    ASSERT_CONTAINS(err.msg, "server.key\" does not match the certificate in tls::cert_pem");
    ASSERT_TRUE(pem.ca == NULL && pem.cert == NULL && pem.key == NULL);
    /* Files that are missing, or not PEM. */
    t.common.key_file = "/nonexistent/client.key";
    ASSERT_EQ_INT(load(&t, &pem, &err), OM_ECONFIG);
    ASSERT_CONTAINS(err.msg, "tls::key_file: cannot read \"/nonexistent/client.key\"");
    t.common.key_file = om_testpem_file("junk.key", "not a key\n");
    ASSERT_EQ_INT(load(&t, &pem, &err), OM_ECONFIG);
    ASSERT_CONTAINS(err.msg, "tls::key_file: no valid unencrypted private key in \"");
    t.common.key_file = om_testpem_file("client2.key", om_test_client_key_pem);
    t.common.ca_file = om_testpem_file(
        "junk.crt", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
    ASSERT_EQ_INT(load(&t, &pem, &err), OM_ECONFIG);
    ASSERT_CONTAINS(err.msg, "tls::ca_file: no valid certificate in \"");
    t.common.ca_file = om_testpem_file("empty.crt", "");
    ASSERT_EQ_INT(load(&t, &pem, &err), OM_ECONFIG);
    ASSERT_CONTAINS(err.msg, "tls::ca_file: no valid certificate in \"");
    ASSERT_CONTAINS(err.msg, "empty.crt");
    t.common.ca_file = NULL;
    t.common.cert_pem = (char *)(uintptr_t)om_test_ca_pem; /* the key is not the CA's */
    ASSERT_EQ_INT(load(&t, &pem, &err), OM_ECONFIG);
    ASSERT_CONTAINS(err.msg, "tls::key_file: the private key in \"");
    ASSERT_CONTAINS(err.msg, "\" does not match the certificate in tls::cert_pem");
}

static void test_system_pool(void)
{
    om_tls_client_cfg_t t = {0};
    om_tls_pem_t pem;
    om_err_t err;
    t.common.ca_pem = (char *)(uintptr_t)om_test_ca_pem;
    t.common.include_system_ca_certs_pool = true;
    /* SSL_CERT_FILE says where the system bundle is, as for Go. */
    const char *old = getenv("SSL_CERT_FILE");
    char *saved = old != NULL ? strdup(old) : NULL;
    setenv("SSL_CERT_FILE", om_testpem_file("bundle.pem", om_test_server_cert_pem), 1);
    ASSERT_EQ_INT(load(&t, &pem, &err), 0);
    ASSERT_TRUE(strncmp(pem.ca, om_test_ca_pem, strlen(om_test_ca_pem)) == 0);
    ASSERT_CONTAINS(pem.ca + strlen(om_test_ca_pem), om_test_server_cert_pem);
    om_tls_pem_free(&pem);
    setenv("SSL_CERT_FILE", "/nonexistent/bundle.pem", 1);
    ASSERT_EQ_INT(load(&t, &pem, &err), OM_ECONFIG);
    ASSERT_CONTAINS(err.msg, "tls::include_system_ca_certs_pool: cannot read");
    if (saved != NULL) {
        setenv("SSL_CERT_FILE", saved, 1);
        free(saved);
    } else {
        unsetenv("SSL_CERT_FILE");
    }
    /* Without a CA the option changes nothing: the system's CAs are the default. */
    t.common.ca_pem = NULL;
    ASSERT_EQ_INT(load(&t, &pem, &err), 0);
    ASSERT_TRUE(pem.ca == NULL);
}

/* ------------------------------------------------------------------------------------------ */
/* The OpenSSL names, checked against OpenSSL                                                 */

static void test_cipher_names_match_openssl(void)
{
    /* crypto/tls's CipherSuites() for TLS 1.0-1.2, written out here independently. */
    static const char *const go12[] = {
        "TLS_RSA_WITH_AES_128_CBC_SHA",
        "TLS_RSA_WITH_AES_256_CBC_SHA",
        "TLS_RSA_WITH_AES_128_GCM_SHA256",
        "TLS_RSA_WITH_AES_256_GCM_SHA384",
        "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
        "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
        "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
        "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    };
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    ASSERT_TRUE(ctx != NULL);
    for (size_t i = 0; i < sizeof go12 / sizeof go12[0]; i++) {
        char *items[] = {(char *)(uintptr_t)go12[i]};
        om_tls_client_cfg_t t = {.common.cipher_suites = {.n = 1, .items = items}};
        char *name = om_tls_client_cipher_list(&t);
        ASSERT_TRUE(name != NULL && name[0] != '\0');
        /* OpenSSL takes the name, and calls that suite by Go's name. */
        ASSERT_EQ_INT(SSL_CTX_set_cipher_list(ctx, name), 1);
        STACK_OF(SSL_CIPHER) *got = SSL_CTX_get_ciphers(ctx);
        bool found = false;
        for (int j = 0; j < sk_SSL_CIPHER_num(got); j++) {
            const SSL_CIPHER *c = sk_SSL_CIPHER_value(got, j);
            if (strcmp(SSL_CIPHER_get_name(c), name) == 0) {
                found = true;
                ASSERT_EQ_STR(SSL_CIPHER_standard_name(c), go12[i]);
            }
        }
        ASSERT_TRUE(found);
        om_free(name);
    }
    SSL_CTX_free(ctx);
    ERR_clear_error();
    /* TLS 1.3 names add nothing to the 1.2 list; the order is kept. */
    char *items[] = {"TLS_AES_256_GCM_SHA384", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
                     "TLS_RSA_WITH_AES_128_CBC_SHA"};
    om_tls_client_cfg_t t = {.common.cipher_suites = {.n = 3, .items = items}};
    char *l = om_tls_client_cipher_list(&t);
    ASSERT_EQ_STR(l, "ECDHE-RSA-AES256-GCM-SHA384:AES128-SHA");
    om_free(l);
    char *curves[] = {"P384", "X25519", "P521", "P256"};
    om_tls_client_cfg_t c = {.common.curve_preferences = {.n = 4, .items = curves}};
    l = om_tls_client_curves_list(&c);
    ASSERT_EQ_STR(l, "P-384:X25519:P-521:P-256");
    ctx = SSL_CTX_new(TLS_client_method());
    ASSERT_EQ_INT(SSL_CTX_set1_groups_list(ctx, l), 1);
    SSL_CTX_free(ctx);
    om_free(l);
}

int main(void)
{
    om_log_set_level(OM_LOG_ERROR);
    OM_RUN(test_defaults);
    OM_RUN(test_common_rules);
    OM_RUN(test_libcurl_rules);
    OM_RUN(test_grpc_rules);
    OM_RUN(test_positions_through_exporters);
    OM_RUN(test_load);
    OM_RUN(test_system_pool);
    OM_RUN(test_cipher_names_match_openssl);
    om_testpem_files_remove();
    return om_test_summary();
}
