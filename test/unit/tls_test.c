/* tls_test.c: the TLS module's two tables share one core (src/tls.c): the shared keys have
 * the same entries in om_tls_server_fields and om_tls_client_fields, a rule both sides have
 * gives the same message at the same key on both, and bad material read at start is reported
 * in the same words by both. The side-specific behaviour is tested in tls_client_test.c (the
 * client) and in the HTTP server and OTLP receiver tests (the server). */
#include <stdlib.h>

#include <openssl/ssl.h>

#include "config.h"
#include "om.h"
#include "om_test.h"
#include "om_testpem.h"

typedef struct holders {
    om_tls_server_cfg_t server;
    om_tls_client_cfg_t client;
} holders_t;

static const om_field_t holder_fields[] = {
    {.key = "server",
     .type = OM_F_SECTION,
     .offset = offsetof(holders_t, server),
     .fields = om_tls_server_fields},
    {.key = "client",
     .type = OM_F_SECTION,
     .offset = offsetof(holders_t, client),
     .fields = om_tls_client_fields},
    {.key = NULL},
};

static const om_field_t *find(const om_field_t *t, const char *key)
{
    for (; t->key != NULL; t++) {
        if (strcmp(t->key, key) == 0) {
            return t;
        }
    }
    return NULL;
}

static bool same_str(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* Every key both tables have is the same entry (type, default, choices, help, where in
 * om_tls_cfg_t), except reload_interval, which a client honours and a server refuses. */
static void test_shared_entries(void)
{
    static const char *const shared[] = {
        "ca_file",
        "ca_pem",
        "include_system_ca_certs_pool",
        "cert_file",
        "cert_pem",
        "key_file",
        "key_pem",
        "min_version",
        "max_version",
        "cipher_suites",
        "curve_preferences",
        "tpm",
    };
    size_t n_both = 0;
    for (const om_field_t *s = om_tls_server_fields; s->key != NULL; s++) {
        const om_field_t *c = find(om_tls_client_fields, s->key);
        if (c == NULL) {
            continue;
        }
        n_both++;
        if (strcmp(s->key, "reload_interval") == 0) {
            ASSERT_EQ_INT(s->type, OM_F_REFUSED);
            ASSERT_EQ_INT(c->type, OM_F_DURATION);
            continue;
        }
        bool listed = false;
        for (size_t i = 0; i < sizeof shared / sizeof shared[0]; i++) {
            listed = listed || strcmp(shared[i], s->key) == 0;
        }
        ASSERT_TRUE(listed);
        ASSERT_EQ_INT(s->type, c->type);
        ASSERT_TRUE(same_str(s->def, c->def));
        ASSERT_TRUE(same_str(s->help, c->help));
        ASSERT_TRUE(s->choices == c->choices && s->fields == c->fields);
        if (s->type != OM_F_SECTION) {
            ASSERT_EQ_UINT(s->offset - offsetof(om_tls_server_cfg_t, common),
                           c->offset - offsetof(om_tls_client_cfg_t, common));
        }
    }
    ASSERT_EQ_UINT(n_both, sizeof shared / sizeof shared[0] + 1);
}

/* Applies `{server: {...}, client: {...}}` with the same settings on both sides (the server
 * gets a certificate and key from the caller's text too) and validates each; *srv and *cli
 * get "at: msg" or "". Field-table problems land in *srv. */
static void validate_both(const char *settings, bool grpc, char *srv, char *cli, size_t cap)
{
    char text[1024];
    snprintf(text, sizeof text, "{server: {%s}, client: {%s}}", settings, settings);
    holders_t h;
    memset(&h, 0, sizeof h);
    om_config_t *y = NULL;
    om_diags_t d = {0};
    srv[0] = cli[0] = '\0';
    int rc = om_config_load_string("t.yaml", text, strlen(text), &y, &d);
    if (rc == 0) {
        om_fields_apply(holder_fields, &h, y->root, "", &d);
    }
    if (d.n > 0) {
        snprintf(srv, cap, "%s", d.msgs[0]);
    } else {
        om_err_t es = {0}, ec = {0};
        if (om_tls_server_validate(&h.server, grpc ? OM_TLS_GRPC : 0, "tls", &es) != 0) {
            snprintf(srv, cap, "%s: %s", es.at, es.msg);
        }
        om_tls_stack_t stack = grpc ? OM_TLS_STACK_GRPC : OM_TLS_STACK_LIBCURL;
        if (om_tls_client_validate(&h.client, "tls", stack, &ec) != 0) {
            snprintf(cli, cap, "%s: %s", ec.at, ec.msg);
        }
    }
    om_diags_free(&d);
    om_fields_free(holder_fields, &h);
    om_config_free(y);
}

/* The rules of configtls.Config and of gRPC core's limits, said once for both sides. */
static void test_same_rules_same_messages(void)
{
    static const struct {
        const char *settings;
        bool grpc;
        const char *want; /* "": valid on both */
    } cases[] = {
        {"ca_file: /a, ca_pem: b", false, "tls::ca_pem: provide either a CA file or the PEM"},
        {"cert_pem: c", false, "tls::cert_pem: provide either certificate file or PEM"},
        {"key_pem: k", false, "tls::key_pem: provide either key file or PEM"},
        {"max_version: '1.1'", false,
         "tls::max_version: invalid TLS configuration: min_version cannot be greater than "
         "max_version"},
        {"min_version: '1.3', max_version: '1.2'", false, "tls::max_version: invalid TLS"},
        {"min_version: '1.0', max_version: '1.3'", false, ""},
        {"min_version: '1.3'", false, ""},
        {"min_version: '1.3'", true, "tls::min_version: 1.3 cannot be enforced over gRPC"},
        {"max_version: '1.2'", true, "tls::max_version: below 1.3 cannot be enforced over gRPC"},
        {"min_version: '1.1'", true, ""},
        {"cipher_suites: [TLS_BOGUS]", false,
         "tls::cipher_suites: invalid TLS cipher suite: \"TLS_BOGUS\""},
        {"cipher_suites: [TLS_RSA_WITH_RC4_128_SHA]", false,
         "tls::cipher_suites: \"TLS_RSA_WITH_RC4_128_SHA\" is an insecure cipher suite"},
        {"cipher_suites: [TLS_AES_128_GCM_SHA256, TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]", false,
         ""},
        {"cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]", true,
         "tls::cipher_suites: not supported over gRPC"},
        {"curve_preferences: [P257]", false,
         "tls::curve_preferences: invalid curve type: P257. Expected values are"},
        {"curve_preferences: [X25519, P256, P384, P521]", false, ""},
        {"curve_preferences: [P256]", true, "tls::curve_preferences: not supported over gRPC"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char settings[512], srv[512], cli[512];
        /* The server's own rule (a certificate and a key) is met; the client then has a
         * client certificate, which is fine. */
        snprintf(settings, sizeof settings, "%s, cert_file: /c, key_file: /k", cases[i].settings);
        validate_both(settings, cases[i].grpc, srv, cli, sizeof srv);
        if (strcmp(srv, cli) != 0 || strstr(srv, cases[i].want) == NULL ||
            (cases[i].want[0] == '\0' && srv[0] != '\0')) {
            fprintf(stderr, "  case %zu: server \"%s\", client \"%s\"\n", i, srv, cli);
        }
        ASSERT_EQ_STR(srv, cli);
        ASSERT_CONTAINS(srv, cases[i].want);
        if (cases[i].want[0] == '\0') {
            ASSERT_EQ_STR(srv, "");
        }
    }
    /* A curve this OpenSSL lacks is refused by both, in the same words; one it has is taken. */
    char srv[512], cli[512];
    validate_both("curve_preferences: [X25519MLKEM768], cert_file: /c, key_file: /k", false, srv,
                  cli, sizeof srv);
    ASSERT_EQ_STR(srv, cli);
    SSL_CTX *ctx = SSL_CTX_new(TLS_method());
    bool has = SSL_CTX_set1_groups_list(ctx, "X25519MLKEM768") == 1;
    SSL_CTX_free(ctx);
    ASSERT_TRUE(has ? srv[0] == '\0' : strstr(srv, "is not available in this OpenSSL") != NULL);
    /* The versions are one field entry: an unknown one is the table's error at the value. */
    validate_both("min_version: '1.4'", false, srv, cli, sizeof srv);
    ASSERT_CONTAINS(srv, "t.yaml:1:24: server::min_version: unknown value \"1.4\"");
}

/* What each side reads at start: the server's message for material both sides have equals
 * the client's. */
static int load_server(om_tls_server_cfg_t *s, char *msg, size_t cap)
{
    om_tls_pem_t pem;
    om_err_t err = {0};
    int rc = om_tls_server_pem_load(s, "tls", &pem, &err);
    if (rc == 0) {
        SSL_CTX *ctx = om_tls_server_ctx_new(s, &pem, 0, "tls", &err);
        rc = ctx != NULL ? 0 : err.code;
        SSL_CTX_free(ctx);
        om_tls_pem_free(&pem);
    }
    snprintf(msg, cap, "%s", err.msg);
    return rc;
}

static int load_client(om_tls_client_cfg_t *c, char *msg, size_t cap)
{
    om_tls_pem_t pem;
    om_err_t err = {0};
    int rc = om_tls_client_pem_load(c, "tls", &pem, &err);
    if (rc == 0) {
        om_tls_pem_free(&pem);
    }
    snprintf(msg, cap, "%s", err.msg);
    return rc;
}

static void test_same_material_messages(void)
{
    char *cert = om_testpem_file("server.crt", om_test_server_cert_pem);
    char *key = om_testpem_file("server.key", om_test_server_key_pem);
    char *ca = om_testpem_file("ca.crt", om_test_ca_pem);
    char *other_key = om_testpem_file("client.key", om_test_client_key_pem);
    char *garbage = om_testpem_file(
        "junk.crt", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
    char *empty = om_testpem_file("empty.crt", "");
    static const struct {
        int item; /* 0: ca_file, 1: key_file, 2: cert_file */
        int file; /* 0: missing, 1: garbage, 2: empty, 3: another key */
        const char *want;
    } cases[] = {
        {0, 0, "tls::ca_file: cannot read \"/nonexistent/x.pem\": no such file or directory"},
        {0, 1, "tls::ca_file: no valid certificate in \""},
        {0, 2, "tls::ca_file: no valid certificate in \""},
        {2, 1, "tls::cert_file: no valid certificate in \""},
        {1, 1, "tls::key_file: no valid unencrypted private key in \""},
        {1, 3, "client.key\" does not match the certificate in tls::cert_file"},
        {0, -1, ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *files[] = {"/nonexistent/x.pem", garbage, empty, other_key};
        om_tls_cfg_t common = {.cert_file = cert, .key_file = key, .ca_file = ca};
        char **slot = cases[i].item == 0   ? &common.ca_file
                      : cases[i].item == 1 ? &common.key_file
                                           : &common.cert_file;
        if (cases[i].file >= 0) {
            *slot = (char *)(uintptr_t)files[cases[i].file];
        }
        om_tls_server_cfg_t s = {.common = common};
        om_tls_client_cfg_t c = {.common = common};
        char srv[300], cli[300];
        int rs = load_server(&s, srv, sizeof srv);
        int rcl = load_client(&c, cli, sizeof cli);
        if (strcmp(srv, cli) != 0 || strstr(srv, cases[i].want) == NULL) {
            fprintf(stderr, "  case %zu: server \"%s\", client \"%s\"\n", i, srv, cli);
        }
        ASSERT_EQ_INT(rs, rcl);
        ASSERT_EQ_INT(rs, cases[i].want[0] != '\0' ? OM_ECONFIG : 0);
        ASSERT_EQ_STR(srv, cli);
        ASSERT_CONTAINS(srv, cases[i].want);
    }
}

int main(void)
{
    om_log_set_level(OM_LOG_ERROR);
    OM_RUN(test_shared_entries);
    OM_RUN(test_same_rules_same_messages);
    OM_RUN(test_same_material_messages);
    om_testpem_files_remove();
    return om_test_summary();
}
