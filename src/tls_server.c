/* tls_server.c: TLS for servers, shared by every component that serves TLS (the OTLP
 * receiver's HTTP and gRPC servers, health_check, and whatever uses om_http_server):
 * otelcol's configtls.ServerConfig as one field table (om_tls_server_fields), its rules, the
 * PEM material read at start and the OpenSSL server context. What servers and clients share
 * (the common keys, their rules, the names, reading and parsing PEM) is tls.c's; this file
 * adds the server's side on top of it.
 *
 * Checking is split as the component model asks: om_tls_server_validate() looks at the values
 * only (config_validate, no I/O); at start the PEM material is read (om_tls_server_pem_load)
 * and parsed into an OpenSSL context (om_tls_server_ctx_new). The HTTP server serves with that
 * context; the gRPC receiver builds one only to check the material before handing the PEM
 * text to gRPC, so both report a bad file the same way, naming it.
 *
 * What a server does with each otelcol key:
 *   cert_file/cert_pem, key_file/key_pem  its identity (a chain and its key, which must match);
 *   client_ca_file   mutual TLS: a client must present a certificate this CA signed
 *                    (RequireAndVerifyClientCert in Go's terms);
 *   include_system_ca_certs_pool  with client_ca_file, client certificates signed by a CA of
 *                    the system's bundle are accepted too, as Go's loadCert does (OpenSSL's
 *                    default paths: SSL_CERT_FILE / SSL_CERT_DIR when set); without
 *                    client_ca_file it changes nothing, as in Go; an error over gRPC;
 *   ca_file/ca_pem   only set RootCAs in Go, which a server never consults: read and parsed (a
 *                    broken file is an error there too), then dropped;
 *   min_version/max_version  the protocol range (default 1.2 to the newest); over gRPC only
 *                    what gRPC core negotiates (1.2 and 1.3; a lower minimum serves 1.2);
 *   cipher_suites    Go's names, which are the IANA names OpenSSL calls "standard"; as in Go
 *                    they apply to TLS 1.2 only (TLS 1.3 suites are not configurable); an
 *                    error over gRPC;
 *   curve_preferences  the key exchange groups, in order; an error over gRPC;
 *   reload_interval, client_ca_file_reload, tpm::enabled  not implemented, and refused: a
 *                    user who asked for certificates to be re-read (a rotated or revoked one)
 *                    or for a key kept in a TPM must not silently get something else.
 *
 * Threading: the loop thread. om_tls_server_pem_load() blocks on small file reads (see
 * there). */
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "tls_internal.h"

/* ------------------------------------------------------------------------------------------ */
/* The field table                                                                            */

#define RELOAD_REFUSED                                                                             \
    "reloading certificates is not implemented: restart otelmon to load new files"

const om_field_t om_tls_server_fields[] = {
    OM__TLS_COMMON_FIELDS(om_tls_server_cfg_t),
    {.key = "client_ca_file",
     .type = OM_F_STRING,
     .offset = offsetof(om_tls_server_cfg_t, client_ca_file),
     .help = "mutual TLS: clients must present a certificate signed by this CA"},
    {.key = "reload_interval", .type = OM_F_REFUSED, .help = RELOAD_REFUSED},
    {.key = "client_ca_file_reload", .type = OM_F_REFUSED, .help = RELOAD_REFUSED},
    {.key = NULL},
};

/* ------------------------------------------------------------------------------------------ */
/* Validation (no I/O)                                                                        */

int om_tls_server_validate(const om_tls_server_cfg_t *cfg, unsigned flags, const char *at,
                           om_err_t *err)
{
    const om_tls_cfg_t *c = &cfg->common;
    int rc = om__tls_check_sources(c, at, err);
    if (rc != 0) {
        return rc;
    }
    if (!om__tls_has_cert(c) || !om__tls_has_key(c)) {
        return om__tls_invalid(err, at, NULL,
                               "TLS configuration must include both certificate and key for "
                               "server connections (cert_file and key_file)");
    }
    rc = om__tls_check_settings(c, at, (flags & OM_TLS_GRPC) != 0, err);
    /* gRPC core's server credentials take one client CA text and nothing else. */
    if (rc == 0 && (flags & OM_TLS_GRPC) && c->include_system_ca_certs_pool) {
        rc = om__tls_invalid(err, at, "include_system_ca_certs_pool",
                             "not supported over gRPC by otelmon; it is under protocols::http");
    }
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Reading the material                                                                       */

int om_tls_server_pem_load(const om_tls_server_cfg_t *cfg, const char *at, om_tls_pem_t *pem,
                           om_err_t *err)
{
    int rc = om__tls_pem_read(&cfg->common, at, pem, err);
    if (rc != 0) {
        return rc;
    }
    om__tls_src_t src;
    om__tls_src(&src, at, cfg->client_ca_file, "client_ca_file", NULL);
    rc = om__tls_take(cfg->client_ca_file, NULL, src.key, &pem->client_ca, err);
    if (rc == 0 && (pem->cert == NULL || pem->key == NULL)) {
        /* config_validate refuses this; a caller that skipped it gets an error, not a crash. */
        om_err_set(err, OM_ECONFIG, "%s: a certificate and a key are required", at);
        rc = OM_ECONFIG;
    }
    if (rc != 0) {
        om_tls_pem_free(pem);
    }
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* The OpenSSL context                                                                        */

static int use_identity(SSL_CTX *ctx, const om_tls_server_cfg_t *cfg, const om_tls_pem_t *pem,
                        const char *at, om_err_t *err)
{
    X509 *leaf;
    STACK_OF(X509) * chain;
    EVP_PKEY *key;
    int rc = om__tls_identity(&cfg->common, pem, at, &leaf, &chain, &key, err);
    if (rc != 0) {
        return rc;
    }
    if (SSL_CTX_use_certificate(ctx, leaf) != 1 || SSL_CTX_set1_chain(ctx, chain) != 1 ||
        SSL_CTX_use_PrivateKey(ctx, key) != 1) {
        om__tls_src_t src;
        om__tls_src(&src, at, cfg->common.cert_file, "cert_file", "cert_pem");
        rc = om__tls_fail(err, &src, "unusable certificate");
    }
    EVP_PKEY_free(key);
    X509_free(leaf);
    sk_X509_pop_free(chain, X509_free);
    return rc;
}

/* Mutual TLS: trust exactly these CAs (and with include_system_ca_certs_pool the system's too)
 * for client certificates, name them in the certificate request, and refuse a client that
 * presents none or one they did not sign. */
static int use_client_ca(SSL_CTX *ctx, const om_tls_server_cfg_t *cfg, const om_tls_pem_t *pem,
                         const char *at, om_err_t *err)
{
    om__tls_src_t src;
    om__tls_src(&src, at, cfg->client_ca_file, "client_ca_file", NULL);
    STACK_OF(X509) *cas = om__tls_certs(pem->client_ca, &src, err);
    if (cas == NULL) {
        return err->code != 0 ? err->code : OM_ECONFIG;
    }
    X509_STORE *store = SSL_CTX_get_cert_store(ctx);
    int rc = 0;
    for (int i = 0; i < sk_X509_num(cas) && rc == 0; i++) {
        X509 *x = sk_X509_value(cas, i);
        if (X509_STORE_add_cert(store, x) != 1 || SSL_CTX_add_client_CA(ctx, x) != 1) {
            rc = om__tls_fail(err, &src, "unusable certificate");
        }
    }
    sk_X509_pop_free(cas, X509_free);
    /* The system bundle is found lazily, at verification; a missing one only means that no
     * extra CA is trusted. */
    if (rc == 0 && cfg->common.include_system_ca_certs_pool &&
        X509_STORE_set_default_paths(store) != 1) {
        ERR_clear_error();
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    return rc;
}

/* The names were checked by validation; a caller that skipped it gets the same message here
 * (with its key's path, since a start error has no position), not a silent default. */
static int use_names(SSL_CTX *ctx, const om_tls_cfg_t *c, unsigned flags, const char *at,
                     om_err_t *err)
{
    om_err_t bad = {0};
    if (om__tls_check_settings(c, at, (flags & OM_TLS_GRPC) != 0, &bad) != 0) {
        om_err_set(err, bad.code, "%s: %s", bad.at, bad.msg);
        return bad.code;
    }
    char *suites = om__tls_cipher_list(&c->cipher_suites);
    char *groups = om__tls_groups_list(&c->curve_preferences);
    int rc = 0;
    om__tls_src_t src;
    if (suites == NULL || groups == NULL) {
        om_err_set(err, OM_ENOMEM, "out of memory");
        rc = OM_ENOMEM;
    } else if (suites[0] != '\0' && SSL_CTX_set_cipher_list(ctx, suites) != 1) {
        om__tls_src(&src, at, NULL, NULL, "cipher_suites");
        rc = om__tls_fail(err, &src, "OpenSSL refuses the list");
    } else if (groups[0] != '\0' && SSL_CTX_set1_groups_list(ctx, groups) != 1) {
        om__tls_src(&src, at, NULL, NULL, "curve_preferences");
        rc = om__tls_fail(err, &src, "OpenSSL refuses the list");
    }
    om_free(suites);
    om_free(groups);
    return rc;
}

/* ALPN: the protocols the server speaks, in its order of preference (arg: a wire-format
 * list). A client that offers none of them gets no ALPN answer and decides for itself; one
 * that offers http/1.1 only does not try h2. */
static const unsigned char alpn_http11[] = "\x08http/1.1";
static const unsigned char alpn_h2[] = "\x02h2\x08http/1.1";

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)ssl;
    const unsigned char *ours = arg;
    unsigned ours_len = ours == alpn_h2 ? sizeof alpn_h2 - 1 : sizeof alpn_http11 - 1;
    unsigned char *sel = NULL;
    unsigned char sel_len = 0;
    if (SSL_select_next_proto(&sel, &sel_len, ours, ours_len, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED) {
        return SSL_TLSEXT_ERR_NOACK;
    }
    *out = sel;
    *outlen = sel_len;
    return SSL_TLSEXT_ERR_OK;
}

static int set_versions(SSL_CTX *ctx, const om_tls_cfg_t *c, const char *at, om_err_t *err)
{
    int min = om__tls_openssl_version(c->min_version);
    int max = om__tls_openssl_version(c->max_version);
    if (SSL_CTX_set_min_proto_version(ctx, min > 0 ? min : TLS1_2_VERSION) != 1 ||
        SSL_CTX_set_max_proto_version(ctx, max) != 1) {
        ERR_clear_error();
        om_err_set(err, OM_ECONFIG, "%s: unsupported min_version or max_version", at);
        return OM_ECONFIG;
    }
    return 0;
}

static int ctx_configure(SSL_CTX *ctx, const om_tls_server_cfg_t *cfg, const om_tls_pem_t *pem,
                         unsigned flags, const char *at, om_err_t *err)
{
    int rc = set_versions(ctx, &cfg->common, at, err);
    if (rc != 0) {
        return rc;
    }
    /* Renegotiation is a DoS lever and nothing our protocols need; released buffers keep
     * idle connections small (34 KiB each otherwise). */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    /* Needed for session resumption once client certificates are verified. */
    static const unsigned char sid[] = "otelmon";
    SSL_CTX_set_session_id_context(ctx, sid, sizeof sid - 1);
    rc = use_identity(ctx, cfg, pem, at, err);
    if (rc == 0 && pem->client_ca != NULL) {
        rc = use_client_ca(ctx, cfg, pem, at, err);
    }
    if (rc == 0 && pem->ca != NULL) {
        rc = om__tls_check_ca(&cfg->common, pem, at, err);
    }
    if (rc == 0) {
        rc = use_names(ctx, &cfg->common, flags, at, err);
    }
    if (rc == 0 && (flags & (OM_TLS_ALPN_HTTP11 | OM_TLS_ALPN_H2))) {
        SSL_CTX_set_alpn_select_cb(ctx, alpn_select,
                                   (void *)((flags & OM_TLS_ALPN_H2) ? alpn_h2 : alpn_http11));
    }
    return rc;
}

SSL_CTX *om_tls_server_ctx_new(const om_tls_server_cfg_t *cfg, const om_tls_pem_t *pem,
                               unsigned flags, const char *at, om_err_t *err)
{
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        ERR_clear_error();
        om_err_set(err, OM_ENOMEM, "%s: cannot create a TLS context", at);
        return NULL;
    }
    if (ctx_configure(ctx, cfg, pem, flags, at, err) != 0) {
        SSL_CTX_free(ctx);
        ERR_clear_error();
        return NULL;
    }
    return ctx;
}
