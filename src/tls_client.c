/* tls_client.c: the TLS client settings every component that connects shares (otelcol's
 * configtls.ClientConfig): the field table, the rules, and reading the PEM material.
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
 *
 * Threading: any thread (no shared state); om_tls_client_load blocks on file reads. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "om.h"

/* A certificate, key or CA file larger than this is not PEM material. */
#define PEM_MAX ((size_t)1 << 20)
/* The system bundle is a few hundred KiB on every distribution we know. */
#define SYSTEM_BUNDLE_MAX ((size_t)8 << 20)

static const char *const versions[] = {"", "1.0", "1.1", "1.2", "1.3", NULL};

static const om_field_t tpm_fields[] = {
    {.key = "enabled",
     .type = OM_F_REFUSED,
     .help = "TLS keys held in a TPM (tls::tpm) are not implemented"},
    {.key = "path", .type = OM_F_IGNORED},
    {.key = "owner_auth", .type = OM_F_IGNORED},
    {.key = "auth", .type = OM_F_IGNORED},
    {.key = NULL},
};

#define OFF(m) offsetof(om_tls_client_cfg_t, m)
#define STR_FIELD(k, m, h)                                                                         \
    {                                                                                              \
        .key = (k), .type = OM_F_STRING, .offset = OFF(m), .help = (h)                             \
    }
const om_field_t om_tls_client_fields[] = {
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
    {.key = "include_system_ca_certs_pool",
     .type = OM_F_BOOL,
     .offset = OFF(include_system_ca_certs_pool),
     .def = "false",
     .help = "with ca_file/ca_pem, trust the system's CAs too"},
    STR_FIELD("ca_file", ca_file, "PEM file of the CAs to trust instead of the system's"),
    STR_FIELD("ca_pem", ca_pem, "the same, inline"),
    STR_FIELD("cert_file", cert_file, "client certificate (PEM) for mutual TLS"),
    STR_FIELD("cert_pem", cert_pem, "the same, inline"),
    STR_FIELD("key_file", key_file, "the client certificate's private key (PEM)"),
    STR_FIELD("key_pem", key_pem, "the same, inline"),
    STR_FIELD("server_name_override", server_name_override,
              "name sent in SNI and checked against the server's certificate"),
    {.key = "min_version",
     .type = OM_F_ENUM,
     .offset = OFF(min_version),
     .def = "",
     .choices = versions,
     .help = "lowest TLS version: 1.0 to 1.3 (\"\": 1.2)"},
    {.key = "max_version",
     .type = OM_F_ENUM,
     .offset = OFF(max_version),
     .def = "",
     .choices = versions,
     .help = "highest TLS version (\"\": the newest)"},
    {.key = "cipher_suites",
     .type = OM_F_STRLIST,
     .offset = OFF(cipher_suites),
     .help = "TLS 1.2 cipher suites by Go's (IANA) names; HTTP only"},
    {.key = "curve_preferences",
     .type = OM_F_STRLIST,
     .offset = OFF(curve_preferences),
     .help = "key exchange groups in order: X25519, P256, P384, P521; HTTP only"},
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
    {.key = "tpm",
     .type = OM_F_SECTION,
     .offset = 0, /* nothing in it is stored: its only meaningful key is refused */
     .fields = tpm_fields,
     .help = "keys in a trusted platform module (not implemented)"},
    {.key = NULL},
};

/* ------------------------------------------------------------------------------------------ */
/* Names                                                                                      */

/* Go's cipher suites (crypto/tls CipherSuites() and InsecureCipherSuites()) by the name
 * configtls takes, with OpenSSL's name for the TLS 1.2 ones (NULL for TLS 1.3 suites). */
static const struct {
    const char *go, *openssl;
    bool insecure;
} suites[] = {
    {"TLS_AES_128_GCM_SHA256", NULL, false},
    {"TLS_AES_256_GCM_SHA384", NULL, false},
    {"TLS_CHACHA20_POLY1305_SHA256", NULL, false},
    {"TLS_RSA_WITH_AES_128_CBC_SHA", "AES128-SHA", false},
    {"TLS_RSA_WITH_AES_256_CBC_SHA", "AES256-SHA", false},
    {"TLS_RSA_WITH_AES_128_GCM_SHA256", "AES128-GCM-SHA256", false},
    {"TLS_RSA_WITH_AES_256_GCM_SHA384", "AES256-GCM-SHA384", false},
    {"TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", "ECDHE-ECDSA-AES128-SHA", false},
    {"TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", "ECDHE-ECDSA-AES256-SHA", false},
    {"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "ECDHE-RSA-AES128-SHA", false},
    {"TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", "ECDHE-RSA-AES256-SHA", false},
    {"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "ECDHE-ECDSA-AES128-GCM-SHA256", false},
    {"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "ECDHE-ECDSA-AES256-GCM-SHA384", false},
    {"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "ECDHE-RSA-AES128-GCM-SHA256", false},
    {"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "ECDHE-RSA-AES256-GCM-SHA384", false},
    {"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-RSA-CHACHA20-POLY1305", false},
    {"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-ECDSA-CHACHA20-POLY1305", false},
    {"TLS_RSA_WITH_RC4_128_SHA", NULL, true},
    {"TLS_RSA_WITH_3DES_EDE_CBC_SHA", NULL, true},
    {"TLS_RSA_WITH_AES_128_CBC_SHA256", NULL, true},
    {"TLS_ECDHE_ECDSA_WITH_RC4_128_SHA", NULL, true},
    {"TLS_ECDHE_RSA_WITH_RC4_128_SHA", NULL, true},
    {"TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA", NULL, true},
    {"TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", NULL, true},
    {"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", NULL, true},
};

/* configtls's curve names and OpenSSL's group names. */
static const struct {
    const char *go, *openssl;
} curves[] = {
    {"X25519", "X25519"},
    {"P256", "P-256"},
    {"P384", "P-384"},
    {"P521", "P-521"},
    {"X25519MLKEM768", "X25519MLKEM768"},
};

static int find_suite(const char *name)
{
    for (size_t i = 0; i < sizeof suites / sizeof suites[0]; i++) {
        if (strcmp(suites[i].go, name) == 0) {
            return (int)i;
        }
    }
    return -1;
}

static int find_curve(const char *name)
{
    for (size_t i = 0; i < sizeof curves / sizeof curves[0]; i++) {
        if (strcmp(curves[i].go, name) == 0) {
            return (int)i;
        }
    }
    return -1;
}

static bool is_set(const char *s)
{
    return s != NULL && s[0] != '\0';
}

bool om_tls_client_has_ca(const om_tls_client_cfg_t *t)
{
    return is_set(t->ca_file) || is_set(t->ca_pem);
}

bool om_tls_client_has_cert(const om_tls_client_cfg_t *t)
{
    return is_set(t->cert_file) || is_set(t->cert_pem);
}

static bool has_key(const om_tls_client_cfg_t *t)
{
    return is_set(t->key_file) || is_set(t->key_pem);
}

/* ":"-joined OpenSSL names of the list's entries that have one. */
static char *join_names(const om_strlist_t *l, bool suites_list)
{
    om_strbuf_t sb;
    om_strbuf_init(&sb, 0);
    om_strbuf_puts(&sb, ""); /* an empty list still gives "" */
    for (size_t i = 0; i < l->n; i++) {
        const char *name = NULL;
        if (suites_list) {
            int k = find_suite(l->items[i]);
            name = k >= 0 ? suites[k].openssl : NULL;
        } else {
            int k = find_curve(l->items[i]);
            name = k >= 0 ? curves[k].openssl : NULL;
        }
        if (name != NULL) {
            om_strbuf_printf(&sb, "%s%s", sb.len > 0 ? ":" : "", name);
        }
    }
    char *s = sb.failed ? NULL : om_strbuf_steal(&sb, NULL);
    om_strbuf_free(&sb);
    return s;
}

char *om_tls_client_cipher_list(const om_tls_client_cfg_t *t)
{
    return join_names(&t->cipher_suites, true);
}

char *om_tls_client_curves_list(const om_tls_client_cfg_t *t)
{
    return join_names(&t->curve_preferences, false);
}

/* ------------------------------------------------------------------------------------------ */
/* Rules (no I/O)                                                                             */

static int bad(om_err_t *err, const char *key, const char *field, const char *fmt, ...)
    OM_PRINTF(4, 5);

/* om_err_at at "<key>::<field>". */
static int bad(om_err_t *err, const char *key, const char *field, const char *fmt, ...)
{
    char at[sizeof err->at];
    char msg[sizeof err->msg];
    snprintf(at, sizeof at, "%s%s%s", key != NULL ? key : "", is_set(key) ? "::" : "", field);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    om_err_at(err, at, "%s", msg);
    return OM_ECONFIG;
}

static int check_sources(const om_tls_client_cfg_t *t, const char *key, om_err_t *err)
{
    if (is_set(t->ca_file) && is_set(t->ca_pem)) {
        return bad(err, key, "ca_pem",
                   "provide either a CA file or the PEM-encoded string, but not both");
    }
    if (is_set(t->cert_file) && is_set(t->cert_pem)) {
        return bad(err, key, "cert_pem", "provide either certificate file or PEM, but not both");
    }
    if (is_set(t->key_file) && is_set(t->key_pem)) {
        return bad(err, key, "key_pem", "provide either key file or PEM, but not both");
    }
    if (om_tls_client_has_cert(t) != has_key(t)) {
        const char *field = is_set(t->cert_file)  ? "cert_file"
                            : is_set(t->cert_pem) ? "cert_pem"
                            : is_set(t->key_file) ? "key_file"
                                                  : "key_pem";
        return bad(err, key, field,
                   "for auth via TLS, provide both certificate and key, or neither");
    }
    return 0;
}

static int check_versions(const om_tls_client_cfg_t *t, const char *key, om_tls_stack_t stack,
                          om_err_t *err)
{
    int min = t->min_version == OM_TLS_V_DEFAULT ? OM_TLS_V1_2 : t->min_version;
    if (t->max_version != OM_TLS_V_DEFAULT && t->max_version < min) {
        return bad(err, key, "max_version",
                   "invalid TLS configuration: min_version cannot be greater than max_version");
    }
    if (stack != OM_TLS_STACK_GRPC) {
        return 0;
    }
    /* gRPC core 1.51 has no setting for the version of its client credentials: it offers 1.2
     * and 1.3. A lower minimum is honoured by being stricter; the rest is not. */
    if (t->min_version == OM_TLS_V1_3) {
        return bad(err, key, "min_version",
                   "1.3 cannot be enforced over gRPC (gRPC core negotiates TLS 1.2 or 1.3 and has "
                   "no version setting); use 1.2 or less");
    }
    if (t->max_version != OM_TLS_V_DEFAULT && t->max_version < OM_TLS_V1_3) {
        return bad(err, key, "max_version",
                   "below 1.3 cannot be enforced over gRPC (gRPC core negotiates TLS 1.2 or 1.3 "
                   "and has no version setting)");
    }
    return 0;
}

/* Whether this process's OpenSSL takes the groups (X25519MLKEM768 needs OpenSSL 3.5). */
static bool openssl_has_groups(const char *list)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    bool ok = ctx != NULL && SSL_CTX_set1_groups_list(ctx, list) == 1;
    SSL_CTX_free(ctx);
    ERR_clear_error();
    return ok;
}

static int check_names(const om_tls_client_cfg_t *t, const char *key, om_tls_stack_t stack,
                       om_err_t *err)
{
    if (stack == OM_TLS_STACK_GRPC && t->cipher_suites.n > 0) {
        return bad(err, key, "cipher_suites",
                   "not supported over gRPC (gRPC core has no cipher suite setting); remove it");
    }
    if (stack == OM_TLS_STACK_GRPC && t->curve_preferences.n > 0) {
        return bad(err, key, "curve_preferences",
                   "not supported over gRPC (gRPC core has no curve setting); remove it");
    }
    for (size_t i = 0; i < t->cipher_suites.n; i++) {
        int k = find_suite(t->cipher_suites.items[i]);
        if (k < 0) {
            return bad(err, key, "cipher_suites", "invalid TLS cipher suite: \"%.64s\"",
                       t->cipher_suites.items[i]);
        }
        if (suites[k].insecure) {
            return bad(err, key, "cipher_suites",
                       "\"%.64s\" is an insecure cipher suite, which otelmon does not offer",
                       t->cipher_suites.items[i]);
        }
    }
    for (size_t i = 0; i < t->curve_preferences.n; i++) {
        const char *name = t->curve_preferences.items[i];
        int k = find_curve(name);
        if (k < 0) {
            return bad(err, key, "curve_preferences",
                       "invalid curve type: %.64s. Expected values are X25519, P256, P384, P521",
                       name);
        }
        if (!openssl_has_groups(curves[k].openssl)) {
            return bad(err, key, "curve_preferences", "%s is not available in this OpenSSL (%s)",
                       name, OpenSSL_version(OPENSSL_VERSION));
        }
    }
    return 0;
}

/* gRPC reloads through its file watcher, which takes paths and nothing else. */
static int check_reload(const om_tls_client_cfg_t *t, const char *key, om_tls_stack_t stack,
                        om_err_t *err)
{
    if (stack != OM_TLS_STACK_GRPC || t->reload_interval == 0 || !om_tls_client_has_cert(t)) {
        return 0;
    }
    if (!is_set(t->cert_file) || !is_set(t->key_file) || is_set(t->ca_pem) ||
        (is_set(t->ca_file) && t->include_system_ca_certs_pool)) {
        return bad(err, key, "reload_interval",
                   "over gRPC, reloading needs cert_file and key_file, and the CA as ca_file "
                   "(without include_system_ca_certs_pool) or none");
    }
    return 0;
}

int om_tls_client_validate(const om_tls_client_cfg_t *t, const char *key, om_tls_stack_t stack,
                           om_err_t *err)
{
    int rc = check_sources(t, key, err);
    rc = rc ? rc : check_versions(t, key, stack, err);
    rc = rc ? rc : check_names(t, key, stack, err);
    rc = rc ? rc : check_reload(t, key, stack, err);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Reading and checking the material                                                          */

/* The whole file (at most max bytes) as a NUL-terminated om_malloc'd string. */
static int read_file(const char *path, size_t max, const char *what, char **out, om_err_t *err)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        om_err_set(err, OM_ECONFIG, "%s: cannot read \"%.200s\": %s", what, path, strerror(errno));
        return OM_ECONFIG;
    }
    om_strbuf_t sb;
    om_strbuf_init(&sb, 0);
    char buf[4096];
    size_t n;
    bool too_big = false;
    while (!too_big && !sb.failed && (n = fread(buf, 1, sizeof buf, f)) > 0) {
        too_big = sb.len + n > max;
        om_strbuf_append(&sb, buf, n);
    }
    bool failed = ferror(f) != 0;
    fclose(f);
    int rc = 0;
    if (sb.failed && !too_big) {
        om_err_set(err, OM_ENOMEM, "out of memory");
        rc = OM_ENOMEM;
    } else if (failed || too_big || sb.len == 0) {
        om_err_set(err, OM_ECONFIG, "%s: cannot read \"%.200s\" (%s)", what, path,
                   failed    ? "read error"
                   : too_big ? "too large for PEM material"
                             : "empty");
        rc = OM_ECONFIG;
    } else {
        *out = om_strbuf_steal(&sb, NULL);
    }
    om_strbuf_free(&sb);
    return rc;
}

/* The file's text or the inline PEM (copied) into *out, NULL when neither is set. what names
 * the file's key in messages. */
static int source(const char *file, const char *pem, const char *what, char **out, om_err_t *err)
{
    *out = NULL;
    if (is_set(file)) {
        return read_file(file, PEM_MAX, what, out, err);
    }
    if (!is_set(pem)) {
        return 0;
    }
    *out = om_strdup(pem);
    if (*out == NULL) {
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    return 0;
}

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
    if (is_set(env)) {
        path = env;
    }
    for (size_t i = 0; path == NULL && i < sizeof system_bundles / sizeof system_bundles[0]; i++) {
        FILE *f = fopen(system_bundles[i], "rb");
        if (f != NULL) {
            fclose(f);
            path = system_bundles[i];
        }
    }
    char what[160];
    snprintf(what, sizeof what, "%s::include_system_ca_certs_pool", key);
    if (path == NULL) {
        om_err_set(err, OM_ECONFIG, "%s: no system CA bundle found (set SSL_CERT_FILE)", what);
        return OM_ECONFIG;
    }
    char *sys = NULL;
    int rc = read_file(path, SYSTEM_BUNDLE_MAX, what, &sys, err);
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

/* Encrypted keys are not supported (as Go's X509KeyPair): never prompt for a passphrase. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

/* The certificates in pem, at least one; the first one in *first (the caller frees). */
static int parse_certs(const char *pem, const char *what, X509 **first, om_err_t *err)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    int n = 0;
    X509 *x = NULL;
    while (bio != NULL && (x = PEM_read_bio_X509(bio, NULL, no_passphrase, NULL)) != NULL) {
        if (n++ == 0 && first != NULL) {
            *first = x;
        } else {
            X509_free(x);
        }
    }
    BIO_free(bio);
    ERR_clear_error();
    if (n == 0) {
        om_err_set(err, OM_ECONFIG, "%s: no PEM certificate in it", what);
        return OM_ECONFIG;
    }
    return 0;
}

static int check_pair(const om_tls_client_pem_t *p, const char *cert_what, const char *key_what,
                      om_err_t *err)
{
    X509 *leaf = NULL;
    int rc = parse_certs(p->cert, cert_what, &leaf, err);
    if (rc != 0) {
        return rc;
    }
    BIO *bio = BIO_new_mem_buf(p->key, -1);
    EVP_PKEY *pk = bio != NULL ? PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL) : NULL;
    BIO_free(bio);
    if (pk == NULL) {
        om_err_set(err, OM_ECONFIG, "%s: no unencrypted PEM private key in it", key_what);
        rc = OM_ECONFIG;
    } else if (X509_check_private_key(leaf, pk) != 1) {
        om_err_set(err, OM_ECONFIG, "%s: the private key does not match the certificate (%s)",
                   key_what, cert_what);
        rc = OM_ECONFIG;
    }
    EVP_PKEY_free(pk);
    X509_free(leaf);
    ERR_clear_error();
    return rc;
}

/* "<key>::<field>", field being the file's key when the file is set, else the PEM's. */
static void name_of(char *buf, size_t cap, const char *key, const char *file, const char *fkey,
                    const char *pkey)
{
    snprintf(buf, cap, "%s::%s", key, is_set(file) ? fkey : pkey);
}

int om_tls_client_load(const om_tls_client_cfg_t *t, const char *key, om_tls_client_pem_t *out,
                       om_err_t *err)
{
    memset(out, 0, sizeof *out);
    char ca_what[160], cert_what[160], key_what[160];
    name_of(ca_what, sizeof ca_what, key, t->ca_file, "ca_file", "ca_pem");
    name_of(cert_what, sizeof cert_what, key, t->cert_file, "cert_file", "cert_pem");
    name_of(key_what, sizeof key_what, key, t->key_file, "key_file", "key_pem");
    int rc = source(t->ca_file, t->ca_pem, ca_what, &out->ca, err);
    rc = rc ? rc : source(t->cert_file, t->cert_pem, cert_what, &out->cert, err);
    rc = rc ? rc : source(t->key_file, t->key_pem, key_what, &out->key, err);
    if (rc == 0 && out->ca != NULL) {
        rc = parse_certs(out->ca, ca_what, NULL, err);
    }
    if (rc == 0 && out->ca != NULL && t->include_system_ca_certs_pool) {
        rc = append_system_bundle(&out->ca, key, err);
    }
    if (rc == 0 && (out->cert != NULL) != (out->key != NULL)) {
        om_err_set(err, OM_ECONFIG, "%s: for auth via TLS, provide both certificate and key", key);
        rc = OM_ECONFIG;
    }
    if (rc == 0 && out->cert != NULL) {
        rc = check_pair(out, cert_what, key_what, err);
    }
    if (rc != 0) {
        om_tls_client_pem_free(out);
    }
    return rc;
}

void om_tls_client_pem_free(om_tls_client_pem_t *p)
{
    if (p->key != NULL) {
        /* A private key should not linger in freed memory. */
        OPENSSL_cleanse(p->key, strlen(p->key));
    }
    om_free(p->ca);
    om_free(p->cert);
    om_free(p->key);
    memset(p, 0, sizeof *p);
}
