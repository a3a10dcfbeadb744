/* tls_client.c: the TLS client settings every component that connects shares (otelcol's
 * configtls.ClientConfig): the field table (om_tls_client_fields), the rules per stack, and
 * reading the PEM material. What clients and servers share (the common keys, their rules,
 * the names of suites and curves, reading and parsing PEM) is tls.c's; this file adds the
 * client's side on top of it: the stacks, the system bundle, the lists for libcurl.
 *
 * What each key does, per stack (om_tls_stack_t). HTTP is libcurl over the same OpenSSL as the
 * rest of the process; gRPC is gRPC core 1.51's TLS credentials.
 *   insecure                      gRPC: plaintext, unless a CA is configured or the endpoint
 *                                 says https:// (configtls). HTTP: no effect, the URL's scheme
 *                                 decides (as otelcol's HTTP client).
 *   insecure_skip_verify          both: no check of the server's chain and name.
 *   ca_file / ca_pem              both: the only CAs trusted (the system's are not).
 *   include_system_ca_certs_pool  both: with a CA given, the system bundle is appended to it
 *                                 (read at start from SSL_CERT_FILE or the distribution's
 *                                 bundle, as Go finds it). Without a CA: no effect (the system's
 *                                 CAs are the default anyway).
 *   cert_* / key_*                both: client certificate for mutual TLS; at start both must
 *                                 parse and the key must belong to the certificate.
 *   server_name_override          both: the name sent in SNI and checked against the
 *                                 certificate (HTTP: the connection still goes to the URL's
 *                                 host and the Host header is unchanged).
 *   min_version / max_version     HTTP: enforced. gRPC negotiates 1.2 or 1.3 and has no
 *                                 setting: a minimum of 1.0 to 1.2 is honoured (1.2 is
 *                                 stricter), 1.3 as minimum or anything below 1.3 as maximum
 *                                 cannot be, and is an error.
 *   cipher_suites                 HTTP: Go's names (the IANA names) of TLS 1.2 suites, passed
 *                                 to OpenSSL; TLS 1.3 names are accepted and, as in Go, change
 *                                 nothing; Go's insecure suites are an error. gRPC: an error.
 *   include_insecure_cipher_suites refused: otelmon offers no insecure suite.
 *   curve_preferences             HTTP: the key exchange groups, in order. gRPC: an error.
 *   reload_interval               HTTP: certificate and key files are read again for each new
 *                                 connection, so a rotated file is used from the next one (at
 *                                 least as often as asked). gRPC: the files are watched with
 *                                 this period (gRPC's file watcher), which needs the
 *                                 certificate, key and CA as files.
 *   tpm::enabled                  refused: keys in a TPM are not implemented.
 * The names of cipher suites and curves, and the messages for each, are tls.c's.
 *
 * Threading: any thread (no shared state); om_tls_client_pem_load blocks on file reads. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tls_internal.h"

/* The system bundle is a few hundred KiB on every distribution we know. */
#define SYSTEM_BUNDLE_MAX ((size_t)8 << 20)

#define OFF(m) offsetof(om_tls_client_cfg_t, m)
const om_field_t om_tls_client_fields[] = {
    OM__TLS_COMMON_FIELDS(om_tls_client_cfg_t),
    {.key = "insecure",
     .type = OM_F_BOOL,
     .offset = OFF(insecure),
     .def = "false",
     .help = "gRPC: plaintext unless a CA is given; HTTP: no effect (the URL's scheme decides)"},
    {.key = "insecure_skip_verify",
     .type = OM_F_BOOL,
     .offset = OFF(insecure_skip_verify),
     .def = "false",
     .help = "do not verify the server's certificate and name"},
    {.key = "server_name_override",
     .type = OM_F_STRING,
     .offset = OFF(server_name_override),
     .help = "name sent in SNI and checked against the server's certificate"},
    {.key = "reload_interval",
     .type = OM_F_DURATION,
     .offset = OFF(reload_interval),
     .def = "0s",
     .min = 0,
     .max = 9.2e18,
     .help = "read the certificate and key files again this often (0: never)"},
    {.key = "include_insecure_cipher_suites",
     .type = OM_F_REFUSED,
     .help = "insecure cipher suites are not offered by otelmon"},
    {.key = NULL},
};

bool om_tls_client_has_ca(const om_tls_client_cfg_t *t)
{
    return om__tls_has_ca(&t->common);
}

bool om_tls_client_has_cert(const om_tls_client_cfg_t *t)
{
    return om__tls_has_cert(&t->common);
}

char *om_tls_client_cipher_list(const om_tls_client_cfg_t *t)
{
    return om__tls_cipher_list(&t->common.cipher_suites);
}

char *om_tls_client_curves_list(const om_tls_client_cfg_t *t)
{
    return om__tls_groups_list(&t->common.curve_preferences);
}

/* ------------------------------------------------------------------------------------------ */
/* Rules (no I/O)                                                                             */

/* A client certificate is optional, but comes with its key. */
static int check_pair(const om_tls_cfg_t *c, const char *key, om_err_t *err)
{
    if (om__tls_has_cert(c) == om__tls_has_key(c)) {
        return 0;
    }
    const char *field = om__tls_is_set(c->cert_file)  ? "cert_file"
                        : om__tls_is_set(c->cert_pem) ? "cert_pem"
                        : om__tls_is_set(c->key_file) ? "key_file"
                                                      : "key_pem";
    return om__tls_invalid(err, key, field,
                           "for auth via TLS, provide both certificate and key, or neither");
}

/* gRPC reloads through its file watcher, which takes paths and nothing else. */
static int check_reload(const om_tls_client_cfg_t *t, const char *key, om_tls_stack_t stack,
                        om_err_t *err)
{
    const om_tls_cfg_t *c = &t->common;
    if (stack != OM_TLS_STACK_GRPC || t->reload_interval == 0 || !om__tls_has_cert(c)) {
        return 0;
    }
    if (!om__tls_is_set(c->cert_file) || !om__tls_is_set(c->key_file) ||
        om__tls_is_set(c->ca_pem) ||
        (om__tls_is_set(c->ca_file) && c->include_system_ca_certs_pool)) {
        return om__tls_invalid(err, key, "reload_interval",
                               "over gRPC, reloading needs cert_file and key_file, and the CA as "
                               "ca_file (without include_system_ca_certs_pool) or none");
    }
    return 0;
}

int om_tls_client_validate(const om_tls_client_cfg_t *t, const char *key, om_tls_stack_t stack,
                           om_err_t *err)
{
    int rc = om__tls_check_sources(&t->common, key, err);
    rc = rc ? rc : check_pair(&t->common, key, err);
    rc = rc ? rc : om__tls_check_settings(&t->common, key, stack == OM_TLS_STACK_GRPC, err);
    rc = rc ? rc : check_reload(t, key, stack, err);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Reading and checking the material                                                          */

/* Go's list (crypto/x509/root_linux.go), after $SSL_CERT_FILE. */
static const char *const system_bundles[] = {
    "/etc/ssl/certs/ca-certificates.crt",                /* Debian, Ubuntu, Gentoo, Arch */
    "/etc/pki/tls/certs/ca-bundle.crt",                  /* Fedora, RHEL 6 */
    "/etc/ssl/ca-bundle.pem",                            /* OpenSUSE */
    "/etc/pki/tls/cacert.pem",                           /* OpenELEC */
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", /* CentOS, RHEL 7 */
    "/etc/ssl/cert.pem",                                 /* Alpine */
};

/* Appends the system bundle to *ca. */
static int append_system_bundle(char **ca, const char *key, om_err_t *err)
{
    const char *env = getenv("SSL_CERT_FILE");
    const char *path = NULL;
    if (om__tls_is_set(env)) {
        path = env;
    }
    for (size_t i = 0; path == NULL && i < sizeof system_bundles / sizeof system_bundles[0]; i++) {
        FILE *f = fopen(system_bundles[i], "rb");
        if (f != NULL) {
            fclose(f);
            path = system_bundles[i];
        }
    }
    char what[192];
    om__tls_key(what, sizeof what, key, "include_system_ca_certs_pool");
    if (path == NULL) {
        om_err_set(err, OM_ECONFIG, "%s: no system CA bundle found (set SSL_CERT_FILE)", what);
        return OM_ECONFIG;
    }
    char *sys = NULL;
    int rc = om__tls_read_file(path, SYSTEM_BUNDLE_MAX, what, &sys, err);
    if (rc != 0) {
        return rc;
    }
    om_strbuf_t sb;
    om_strbuf_init(&sb, 0);
    om_strbuf_printf(&sb, "%s\n%s", *ca, sys);
    om_free(sys);
    if (sb.failed) {
        om_strbuf_free(&sb);
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    om_free(*ca);
    *ca = om_strbuf_steal(&sb, NULL);
    om_strbuf_free(&sb);
    return 0;
}

/* The client certificate parses and the key belongs to it; nothing is kept (libcurl and gRPC
 * take the PEM text). */
static int check_identity(const om_tls_cfg_t *c, const om_tls_pem_t *pem, const char *key,
                          om_err_t *err)
{
    X509 *leaf;
    STACK_OF(X509) * chain;
    EVP_PKEY *pk;
    int rc = om__tls_identity(c, pem, key, &leaf, &chain, &pk, err);
    if (rc == 0) {
        X509_free(leaf);
        sk_X509_pop_free(chain, X509_free);
        EVP_PKEY_free(pk);
    }
    return rc;
}

int om_tls_client_pem_load(const om_tls_client_cfg_t *t, const char *key, om_tls_pem_t *out,
                           om_err_t *err)
{
    const om_tls_cfg_t *c = &t->common;
    int rc = om__tls_pem_read(c, key, out, err);
    if (rc == 0 && out->ca != NULL) {
        rc = om__tls_check_ca(c, out, key, err);
    }
    if (rc == 0 && out->ca != NULL && c->include_system_ca_certs_pool) {
        rc = append_system_bundle(&out->ca, key, err);
    }
    if (rc == 0 && (out->cert != NULL) != (out->key != NULL)) {
        /* config_validate refuses this; a caller that skipped it gets an error. */
        om_err_set(err, OM_ECONFIG, "%s: for auth via TLS, provide both certificate and key", key);
        rc = OM_ECONFIG;
    }
    if (rc == 0 && out->cert != NULL) {
        rc = check_identity(c, out, key, err);
    }
    if (rc != 0) {
        om_tls_pem_free(out);
    }
    return rc;
}
