/* tls.c: what TLS servers and clients share (otelcol's configtls.Config, which its
 * ServerConfig and ClientConfig both embed): the shared keys' field entries (the macro in
 * tls_internal.h, the tpm sub-table and the version choices here), their rules, the names of
 * versions, cipher suites and curves, and reading and checking the PEM material. The sides
 * are in their own files on top of this one: tls_server.c (client CAs, ALPN, the OpenSSL
 * server context, what gRPC's server credentials cannot do) and tls_client.c (the stacks
 * libcurl and gRPC, the system bundle, the cipher and curve lists for libcurl). Three files
 * rather than two so that neither side holds the other's code and what is shared has one home.
 *
 * The names follow Go's crypto/tls, which configtls uses: cipher suites by their Go (IANA)
 * names, only those Go offers (its insecure ones are refused: otelmon offers none), TLS 1.3
 * names accepted and, as in Go, changing nothing; curves by configtls's names.
 *
 * Threading: any thread, no shared state. Reading the material blocks on small file reads;
 * callers do it once at start (see om.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "tls_internal.h"

/* ------------------------------------------------------------------------------------------ */
/* The shared field entries' tables                                                           */

const char *const om__tls_versions[] = {"", "1.0", "1.1", "1.2", "1.3", NULL};

/* otelcol's TPMConfig: a key kept in a TPM. Only `enabled` matters: the rest configures it. */
const om_field_t om__tls_tpm_fields[] = {
    {.key = "enabled",
     .type = OM_F_REFUSED,
     .help = "keys in a TPM are not supported: use key_file or key_pem"},
    {.key = "path", .type = OM_F_IGNORED},
    {.key = "owner_auth", .type = OM_F_IGNORED},
    {.key = "auth", .type = OM_F_IGNORED},
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

/* configtls's curve names and OpenSSL's group names (X25519MLKEM768 needs OpenSSL 3.5). */
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

int om__tls_openssl_version(int v)
{
    static const int openssl[] = {0, TLS1_VERSION, TLS1_1_VERSION, TLS1_2_VERSION, TLS1_3_VERSION};
    return v > 0 && (size_t)v < sizeof openssl / sizeof openssl[0] ? openssl[v] : 0;
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

char *om__tls_cipher_list(const om_strlist_t *names)
{
    return join_names(names, true);
}

char *om__tls_groups_list(const om_strlist_t *names)
{
    return join_names(names, false);
}

/* ------------------------------------------------------------------------------------------ */
/* Rules (no I/O)                                                                             */

bool om__tls_is_set(const char *s)
{
    return s != NULL && s[0] != '\0';
}

bool om__tls_has_ca(const om_tls_cfg_t *c)
{
    return om__tls_is_set(c->ca_file) || om__tls_is_set(c->ca_pem);
}

bool om__tls_has_cert(const om_tls_cfg_t *c)
{
    return om__tls_is_set(c->cert_file) || om__tls_is_set(c->cert_pem);
}

bool om__tls_has_key(const om_tls_cfg_t *c)
{
    return om__tls_is_set(c->key_file) || om__tls_is_set(c->key_pem);
}

const char *om__tls_key(char *buf, size_t n, const char *at, const char *key)
{
    if (key == NULL) {
        snprintf(buf, n, "%s", at != NULL ? at : "");
    } else if (om__tls_is_set(at)) {
        snprintf(buf, n, "%s::%s", at, key);
    } else {
        snprintf(buf, n, "%s", key);
    }
    return buf;
}

int om__tls_invalid(om_err_t *err, const char *at, const char *key, const char *fmt, ...)
{
    char k[sizeof err->at];
    char msg[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    om_err_at(err, om__tls_key(k, sizeof k, at, key), "%s", msg);
    return OM_ECONFIG;
}

int om__tls_check_sources(const om_tls_cfg_t *c, const char *at, om_err_t *err)
{
    if (om__tls_is_set(c->ca_file) && om__tls_is_set(c->ca_pem)) {
        return om__tls_invalid(err, at, "ca_pem",
                               "provide either a CA file or the PEM-encoded string, but not both");
    }
    if (om__tls_is_set(c->cert_file) && om__tls_is_set(c->cert_pem)) {
        return om__tls_invalid(err, at, "cert_pem",
                               "provide either certificate file or PEM, but not both");
    }
    if (om__tls_is_set(c->key_file) && om__tls_is_set(c->key_pem)) {
        return om__tls_invalid(err, at, "key_pem", "provide either key file or PEM, but not both");
    }
    return 0;
}

/* max_version is where the range error points: it is always written when the error arises
 * (min_version may be the default). */
static int check_versions(const om_tls_cfg_t *c, const char *at, bool grpc, om_err_t *err)
{
    int min = c->min_version == OM_TLS_V_DEFAULT ? OM_TLS_V1_2 : c->min_version;
    if (c->max_version != OM_TLS_V_DEFAULT && c->max_version < min) {
        return om__tls_invalid(
            err, at, "max_version",
            "invalid TLS configuration: min_version cannot be greater than max_version");
    }
    if (!grpc) {
        return 0;
    }
    /* gRPC core 1.51 has no setting for the version of its credentials, server or client: it
     * negotiates 1.2 or 1.3. A lower minimum is honoured by being stricter; the rest is not. */
    if (c->min_version == OM_TLS_V1_3) {
        return om__tls_invalid(err, at, "min_version",
                               "1.3 cannot be enforced over gRPC (gRPC core negotiates TLS 1.2 "
                               "or 1.3 and has no version setting); use 1.2 or less");
    }
    if (c->max_version != OM_TLS_V_DEFAULT && c->max_version < OM_TLS_V1_3) {
        return om__tls_invalid(err, at, "max_version",
                               "below 1.3 cannot be enforced over gRPC (gRPC core negotiates TLS "
                               "1.2 or 1.3 and has no version setting)");
    }
    return 0;
}

/* Whether this process's OpenSSL takes the groups (X25519MLKEM768 needs OpenSSL 3.5).
 * Building a context is no I/O. */
static bool openssl_has_groups(const char *list)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_method());
    bool ok = ctx != NULL && SSL_CTX_set1_groups_list(ctx, list) == 1;
    SSL_CTX_free(ctx);
    ERR_clear_error();
    return ok;
}

static int check_suites(const om_strlist_t *names, const char *at, om_err_t *err)
{
    for (size_t i = 0; i < names->n; i++) {
        int k = find_suite(names->items[i]);
        if (k < 0) {
            return om__tls_invalid(err, at, "cipher_suites", "invalid TLS cipher suite: \"%.64s\"",
                                   names->items[i]);
        }
        if (suites[k].insecure) {
            return om__tls_invalid(
                err, at, "cipher_suites",
                "\"%.64s\" is an insecure cipher suite, which otelmon does not offer",
                names->items[i]);
        }
    }
    return 0;
}

static int check_curves(const om_strlist_t *names, const char *at, om_err_t *err)
{
    for (size_t i = 0; i < names->n; i++) {
        const char *name = names->items[i];
        int k = find_curve(name);
        if (k < 0) {
            return om__tls_invalid(
                err, at, "curve_preferences",
                "invalid curve type: %.64s. Expected values are X25519, P256, P384, P521", name);
        }
        if (!openssl_has_groups(curves[k].openssl)) {
            return om__tls_invalid(err, at, "curve_preferences",
                                   "%s is not available in this OpenSSL (%s)", name,
                                   OpenSSL_version(OPENSSL_VERSION));
        }
    }
    return 0;
}

int om__tls_check_settings(const om_tls_cfg_t *c, const char *at, bool grpc, om_err_t *err)
{
    int rc = check_versions(c, at, grpc, err);
    if (rc != 0) {
        return rc;
    }
    if (grpc && c->cipher_suites.n > 0) {
        return om__tls_invalid(
            err, at, "cipher_suites",
            "not supported over gRPC (gRPC core has no cipher suite setting); remove it");
    }
    if (grpc && c->curve_preferences.n > 0) {
        return om__tls_invalid(
            err, at, "curve_preferences",
            "not supported over gRPC (gRPC core has no curve setting); remove it");
    }
    rc = check_suites(&c->cipher_suites, at, err);
    return rc != 0 ? rc : check_curves(&c->curve_preferences, at, err);
}

/* ------------------------------------------------------------------------------------------ */
/* Reading the material                                                                       */

void om__tls_src(om__tls_src_t *s, const char *at, const char *file, const char *file_key,
                 const char *pem_key)
{
    bool from_file = om__tls_is_set(file);
    om__tls_key(s->key, sizeof s->key, at, from_file ? file_key : pem_key);
    s->file = from_file ? file : NULL;
}

static int cannot_read(om_err_t *err, const char *key, const char *path, int sys_errno)
{
    om_err_set(err, OM_ECONFIG, "%s: cannot read \"%.200s\": %s", key, path,
               uv_strerror(uv_translate_sys_error(sys_errno != 0 ? sys_errno : EIO)));
    return OM_ECONFIG;
}

int om__tls_read_file(const char *path, size_t max, const char *key, char **out, om_err_t *err)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return cannot_read(err, key, path, errno);
    }
    om_strbuf_t sb;
    om_strbuf_init(&sb, 0);
    om_strbuf_append(&sb, "", 0); /* an empty file gives "", which parsing then reports */
    char buf[4096];
    size_t n;
    /* Bounded: stops once past max bytes. */
    while (sb.len <= max && !sb.failed && (n = fread(buf, 1, sizeof buf, f)) > 0) {
        om_strbuf_append(&sb, buf, n);
    }
    int read_errno = ferror(f) ? errno : 0;
    bool read_failed = ferror(f) != 0;
    fclose(f);
    int rc = 0;
    if (read_failed) {
        rc = cannot_read(err, key, path, read_errno);
    } else if (sb.len > max) {
        om_err_set(err, OM_ECONFIG, "%s: \"%.200s\" is larger than %zu bytes", key, path, max);
        rc = OM_ECONFIG;
    } else if (sb.failed) {
        om_err_set(err, OM_ENOMEM, "%s: out of memory reading \"%.200s\"", key, path);
        rc = OM_ENOMEM;
    } else {
        *out = om_strbuf_steal(&sb, NULL);
    }
    om_strbuf_free(&sb);
    return rc;
}

int om__tls_take(const char *file, const char *inline_pem, const char *key, char **out,
                 om_err_t *err)
{
    *out = NULL;
    if (om__tls_is_set(file)) {
        return om__tls_read_file(file, OM_TLS_PEM_MAX, key, out, err);
    }
    if (!om__tls_is_set(inline_pem)) {
        return 0;
    }
    *out = om_strdup(inline_pem);
    if (*out == NULL) {
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    return 0;
}

int om__tls_pem_read(const om_tls_cfg_t *c, const char *at, om_tls_pem_t *pem, om_err_t *err)
{
    memset(pem, 0, sizeof *pem);
    om__tls_src_t ca, cert, key;
    om__tls_src(&ca, at, c->ca_file, "ca_file", "ca_pem");
    om__tls_src(&cert, at, c->cert_file, "cert_file", "cert_pem");
    om__tls_src(&key, at, c->key_file, "key_file", "key_pem");
    int rc = om__tls_take(c->ca_file, c->ca_pem, ca.key, &pem->ca, err);
    rc = rc ? rc : om__tls_take(c->cert_file, c->cert_pem, cert.key, &pem->cert, err);
    rc = rc ? rc : om__tls_take(c->key_file, c->key_pem, key.key, &pem->key, err);
    if (rc != 0) {
        om_tls_pem_free(pem);
    }
    return rc;
}

void om_tls_pem_free(om_tls_pem_t *pem)
{
    if (pem->key != NULL) {
        /* A private key should not linger in freed memory. */
        OPENSSL_cleanse(pem->key, strlen(pem->key));
    }
    om_free(pem->ca);
    om_free(pem->cert);
    om_free(pem->key);
    om_free(pem->client_ca);
    memset(pem, 0, sizeof *pem);
}

/* ------------------------------------------------------------------------------------------ */
/* Parsing and checking the material                                                          */

void om_tls_err_reason(const SSL *ssl, char *buf, size_t n)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e != 0 ? ERR_reason_error_string(e) : NULL;
    long v = ssl != NULL ? SSL_get_verify_result(ssl) : X509_V_OK;
    if (r == NULL) {
        r = e != 0 ? "TLS error" : "connection closed";
    }
    if (v != X509_V_OK) {
        snprintf(buf, n, "%s: %s", r, X509_verify_cert_error_string(v));
    } else {
        snprintf(buf, n, "%s", r);
    }
    ERR_clear_error();
}

int om__tls_fail(om_err_t *err, const om__tls_src_t *src, const char *what)
{
    char reason[160];
    om_tls_err_reason(NULL, reason, sizeof reason);
    if (src->file != NULL) {
        om_err_set(err, OM_ECONFIG, "%s: %s in \"%.200s\" (%s)", src->key, what, src->file, reason);
    } else {
        om_err_set(err, OM_ECONFIG, "%s: %s (%s)", src->key, what, reason);
    }
    return OM_ECONFIG;
}

/* Never ask for a passphrase: OpenSSL's default callback would read one from the terminal.
 * otelcol takes unencrypted keys only (Go's X509KeyPair), and so do we. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

STACK_OF(X509) * om__tls_certs(const char *text, const om__tls_src_t *src, om_err_t *err)
{
    ERR_clear_error();
    STACK_OF(X509) *sk = sk_X509_new_null();
    BIO *b = BIO_new_mem_buf(text, -1);
    if (sk == NULL || b == NULL) {
        om_err_set(err, OM_ENOMEM, "out of memory");
        goto fail;
    }
    /* Bounded by the text, which reading capped. */
    for (;;) {
        X509 *x = PEM_read_bio_X509(b, NULL, no_passphrase, NULL);
        if (x == NULL) {
            break;
        }
        if (sk_X509_push(sk, x) <= 0) {
            X509_free(x);
            om_err_set(err, OM_ENOMEM, "out of memory");
            goto fail;
        }
    }
    /* The loop ends at the first block that is not a certificate: only "no more PEM" is fine. */
    unsigned long e = ERR_peek_last_error();
    if (sk_X509_num(sk) == 0 ||
        (e != 0 && !(ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE))) {
        om__tls_fail(err, src, "no valid certificate");
        goto fail;
    }
    ERR_clear_error();
    BIO_free(b);
    return sk;
fail:
    sk_X509_pop_free(sk, X509_free);
    BIO_free(b);
    return NULL;
}

int om__tls_check_ca(const om_tls_cfg_t *c, const om_tls_pem_t *pem, const char *at, om_err_t *err)
{
    om__tls_src_t src;
    om__tls_src(&src, at, c->ca_file, "ca_file", "ca_pem");
    STACK_OF(X509) *ca = om__tls_certs(pem->ca, &src, err);
    if (ca == NULL) {
        return err->code != 0 ? err->code : OM_ECONFIG;
    }
    sk_X509_pop_free(ca, X509_free);
    return 0;
}

static EVP_PKEY *read_key(const char *text, const om__tls_src_t *src, om_err_t *err)
{
    ERR_clear_error();
    BIO *b = BIO_new_mem_buf(text, -1);
    EVP_PKEY *key = b != NULL ? PEM_read_bio_PrivateKey(b, NULL, no_passphrase, NULL) : NULL;
    BIO_free(b);
    if (key == NULL) {
        om__tls_fail(err, src, "no valid unencrypted private key");
    }
    return key;
}

int om__tls_identity(const om_tls_cfg_t *c, const om_tls_pem_t *pem, const char *at, X509 **leaf,
                     STACK_OF(X509) * *chain, EVP_PKEY **key, om_err_t *err)
{
    om__tls_src_t cs, ks;
    om__tls_src(&cs, at, c->cert_file, "cert_file", "cert_pem");
    om__tls_src(&ks, at, c->key_file, "key_file", "key_pem");
    *leaf = NULL;
    *key = NULL;
    *chain = om__tls_certs(pem->cert, &cs, err);
    if (*chain == NULL) {
        return err->code != 0 ? err->code : OM_ECONFIG;
    }
    *leaf = sk_X509_shift(*chain); /* the rest, if any, are intermediates */
    *key = read_key(pem->key, &ks, err);
    int rc = *key == NULL ? OM_ECONFIG : 0;
    if (rc == 0 && X509_check_private_key(*leaf, *key) != 1) {
        ERR_clear_error();
        if (ks.file != NULL) {
            om_err_set(err, OM_ECONFIG,
                       "%s: the private key in \"%.200s\" does not match the certificate in %s",
                       ks.key, ks.file, cs.key);
        } else {
            om_err_set(err, OM_ECONFIG, "%s: the private key does not match the certificate in %s",
                       ks.key, cs.key);
        }
        rc = OM_ECONFIG;
    }
    if (rc != 0) {
        X509_free(*leaf);
        sk_X509_pop_free(*chain, X509_free);
        EVP_PKEY_free(*key);
        *leaf = NULL;
        *chain = NULL;
        *key = NULL;
    }
    return rc;
}
