/* tls.c: TLS for servers, shared by every component that serves TLS (the OTLP receiver's HTTP
 * and gRPC servers, health_check, and whatever uses om_http_server): otelcol's
 * configtls.ServerConfig as one struct (om_tls_server_cfg_t) and one field table, its
 * cross-field rules, reading the PEM material, and the OpenSSL server context.
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
 *                    client_ca_file it changes nothing, as in Go;
 *   ca_file/ca_pem   only set RootCAs in Go, which a server never consults: read and parsed (a
 *                    broken file is an error there too), then dropped;
 *   min_version/max_version  the protocol range (default 1.2 to the newest);
 *   cipher_suites    Go's names, which are the IANA names OpenSSL calls "standard"; as in Go
 *                    they apply to TLS 1.2 only (TLS 1.3 suites are not configurable);
 *   curve_preferences  the key exchange groups, in order (P256, P384, P521, X25519);
 *   reload_interval, client_ca_file_reload, tpm::enabled  not implemented, and refused: a
 *                    user who asked for certificates to be re-read (a rotated or revoked one)
 *                    or for a key kept in a TPM must not silently get something else.
 *
 * Threading: the loop thread. om_tls_server_pem_load() blocks on small file reads (see
 * there). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "om.h"

/* ------------------------------------------------------------------------------------------ */
/* The field table                                                                            */

#define TLS_STR(name, member, text)                                                                \
    {                                                                                              \
        .key = name, .type = OM_F_STRING, .offset = offsetof(om_tls_server_cfg_t, member),         \
        .help = text                                                                               \
    }

#define RELOAD_REFUSED                                                                             \
    "reloading certificates is not implemented: restart otelmon to load new files"

/* otelcol's TPMConfig: a key kept in a TPM. Only `enabled` matters: the rest configures it. */
static const om_field_t tpm_fields[] = {
    {.key = "enabled",
     .type = OM_F_REFUSED,
     .help = "keys in a TPM are not supported: use key_file or key_pem"},
    {.key = "path", .type = OM_F_IGNORED},
    {.key = "owner_auth", .type = OM_F_IGNORED},
    {.key = "auth", .type = OM_F_IGNORED},
    {.key = NULL},
};

const om_field_t om_tls_server_fields[] = {
    TLS_STR("cert_file", cert_file, "the server's certificate chain (PEM file)"),
    TLS_STR("cert_pem", cert_pem, "the same as inline PEM"),
    TLS_STR("key_file", key_file, "the certificate's private key (PEM file)"),
    TLS_STR("key_pem", key_pem, "the same as inline PEM"),
    TLS_STR("client_ca_file", client_ca_file,
            "mutual TLS: clients must present a certificate signed by this CA"),
    TLS_STR("ca_file", ca_file, "accepted and checked; unused by a server"),
    TLS_STR("ca_pem", ca_pem, "accepted and checked; unused by a server"),
    TLS_STR("min_version", min_version, "lowest TLS version: 1.0 to 1.3 (default 1.2)"),
    TLS_STR("max_version", max_version, "highest TLS version (default: the newest)"),
    {.key = "cipher_suites",
     .type = OM_F_STRLIST,
     .offset = offsetof(om_tls_server_cfg_t, cipher_suites),
     .help = "TLS 1.2 cipher suites by IANA name (as in Go)"},
    {.key = "curve_preferences",
     .type = OM_F_STRLIST,
     .offset = offsetof(om_tls_server_cfg_t, curve_preferences),
     .help = "key exchange groups in order: P256, P384, P521, X25519"},
    {.key = "include_system_ca_certs_pool",
     .type = OM_F_BOOL,
     .offset = offsetof(om_tls_server_cfg_t, include_system_ca_certs_pool),
     .def = "false",
     .help = "with client_ca_file: also accept clients certified by the system's CAs"},
    {.key = "reload_interval", .type = OM_F_REFUSED, .help = RELOAD_REFUSED},
    {.key = "client_ca_file_reload", .type = OM_F_REFUSED, .help = RELOAD_REFUSED},
    {.key = "tpm",
     .type = OM_F_SECTION,
     .offset = 0, /* nothing is stored: the section only refuses `enabled` */
     .fields = tpm_fields,
     .help = "keys kept in a TPM (not supported)"},
    {.key = NULL},
};

/* ------------------------------------------------------------------------------------------ */
/* Names and versions                                                                         */

static bool is_set(const char *s)
{
    return s != NULL && s[0] != '\0';
}

int om_tls_version(const char *s)
{
    static const struct {
        const char *name;
        int version;
    } versions[] = {
        {"1.0", TLS1_VERSION},
        {"1.1", TLS1_1_VERSION},
        {"1.2", TLS1_2_VERSION},
        {"1.3", TLS1_3_VERSION},
    };
    if (!is_set(s)) {
        return 0;
    }
    for (size_t i = 0; i < sizeof versions / sizeof versions[0]; i++) {
        if (strcmp(s, versions[i].name) == 0) {
            return versions[i].version;
        }
    }
    return -1;
}

/* Go's curve names (crypto/tls) and OpenSSL's group names for them. X25519MLKEM768 is in
 * Go's list but not in OpenSSL 3.0. */
static const char *curve_group(const char *go_name)
{
    static const struct {
        const char *go, *ossl;
    } curves[] = {
        {"P256", "P-256"},
        {"P384", "P-384"},
        {"P521", "P-521"},
        {"X25519", "X25519"},
    };
    for (size_t i = 0; i < sizeof curves / sizeof curves[0]; i++) {
        if (strcmp(go_name, curves[i].go) == 0) {
            return curves[i].ossl;
        }
    }
    return NULL;
}

/* The suite whose IANA ("standard") name is name, among those ctx offers; NULL if none. */
static const SSL_CIPHER *find_suite(SSL_CTX *ctx, const char *name)
{
    STACK_OF(SSL_CIPHER) *all = SSL_CTX_get_ciphers(ctx);
    for (int j = 0; j < sk_SSL_CIPHER_num(all); j++) {
        const SSL_CIPHER *c = sk_SSL_CIPHER_value(all, j);
        const char *std = SSL_CIPHER_standard_name(c);
        if (std != NULL && strcmp(std, name) == 0) {
            return c;
        }
    }
    return NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* Validation (no I/O)                                                                        */

/* key below the section at: "protocols::http::tls" + "min_version". */
static const char *key_at(char *buf, size_t n, const char *at, const char *key)
{
    if (key == NULL) {
        snprintf(buf, n, "%s", at != NULL ? at : "");
    } else if (is_set(at)) {
        snprintf(buf, n, "%s::%s", at, key);
    } else {
        snprintf(buf, n, "%s", key);
    }
    return buf;
}

static int invalid(om_err_t *err, const char *at, const char *key, const char *what)
{
    char k[160];
    om_err_at(err, key_at(k, sizeof k, at, key), "%s", what);
    return OM_ECONFIG;
}

/* gRPC core 1.51 has no setting for the versions of its SSL server credentials: it always
 * negotiates 1.2 or 1.3, so a range it cannot honour is refused rather than widened. */
static int validate_grpc_versions(int min, int max, const char *at, om_err_t *err)
{
    if (min == TLS1_3_VERSION) {
        return invalid(err, at, "min_version",
                       "1.3 is not supported over gRPC by otelmon (gRPC core negotiates TLS 1.2 "
                       "and 1.3); it is under protocols::http");
    }
    if (max != 0 && max < TLS1_3_VERSION) {
        return invalid(err, at, "max_version",
                       "below 1.3 is not supported over gRPC by otelmon (gRPC core negotiates "
                       "TLS 1.2 and 1.3); it is under protocols::http");
    }
    return 0;
}

static int validate_versions(const om_tls_server_cfg_t *cfg, unsigned flags, const char *at,
                             om_err_t *err)
{
    int min = om_tls_version(cfg->min_version);
    int max = om_tls_version(cfg->max_version);
    if (min < 0 || max < 0) {
        char k[160], msg[96];
        snprintf(msg, sizeof msg, "unsupported TLS version \"%.32s\" (1.0 to 1.3)",
                 min < 0 ? cfg->min_version : cfg->max_version);
        om_err_at(err, key_at(k, sizeof k, at, min < 0 ? "min_version" : "max_version"), "%s", msg);
        return OM_ECONFIG;
    }
    if (max != 0 && (min == 0 ? TLS1_2_VERSION : min) > max) {
        return invalid(err, at, "min_version", "min_version cannot be greater than max_version");
    }
    return (flags & OM_TLS_GRPC) ? validate_grpc_versions(min, max, at, err) : 0;
}

/* Unknown names are an error, as in otelcol. TLS 1.3 names are accepted and, as in Go,
 * change nothing. Building a context to list OpenSSL's suites is no I/O. */
static int validate_suites(const om_strlist_t *names, const char *at, om_err_t *err)
{
    if (names->n == 0) {
        return 0;
    }
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        ERR_clear_error();
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    int rc = 0;
    for (size_t i = 0; i < names->n && rc == 0; i++) {
        if (find_suite(ctx, names->items[i]) == NULL) {
            char msg[128];
            snprintf(msg, sizeof msg, "invalid TLS cipher suite: \"%.64s\"", names->items[i]);
            rc = invalid(err, at, "cipher_suites", msg);
        }
    }
    SSL_CTX_free(ctx);
    return rc;
}

static int validate_curves(const om_strlist_t *names, const char *at, om_err_t *err)
{
    for (size_t i = 0; i < names->n; i++) {
        if (curve_group(names->items[i]) == NULL) {
            char msg[160];
            snprintf(msg, sizeof msg,
                     "invalid curve type: \"%.32s\" (supported: P256, P384, P521, X25519)",
                     names->items[i]);
            return invalid(err, at, "curve_preferences", msg);
        }
    }
    return 0;
}

/* What gRPC core's server credentials cannot do, refused rather than ignored. */
static int validate_grpc(const om_tls_server_cfg_t *cfg, const char *at, om_err_t *err)
{
    if (cfg->cipher_suites.n > 0) {
        return invalid(err, at, "cipher_suites",
                       "not supported over gRPC by otelmon (gRPC core chooses the cipher "
                       "suites); it is under protocols::http");
    }
    if (cfg->curve_preferences.n > 0) {
        return invalid(err, at, "curve_preferences",
                       "not supported over gRPC by otelmon (gRPC core chooses the curves); it is "
                       "under protocols::http");
    }
    if (cfg->include_system_ca_certs_pool) {
        return invalid(err, at, "include_system_ca_certs_pool",
                       "not supported over gRPC by otelmon; it is under protocols::http");
    }
    return 0;
}

int om_tls_server_validate(const om_tls_server_cfg_t *cfg, unsigned flags, const char *at,
                           om_err_t *err)
{
    if (is_set(cfg->ca_file) && is_set(cfg->ca_pem)) {
        return invalid(err, at, NULL,
                       "provide either a CA file or the PEM-encoded string, but not both");
    }
    if (is_set(cfg->cert_file) && is_set(cfg->cert_pem)) {
        return invalid(err, at, NULL, "provide either certificate file or PEM, but not both");
    }
    if (is_set(cfg->key_file) && is_set(cfg->key_pem)) {
        return invalid(err, at, NULL, "provide either key file or PEM, but not both");
    }
    bool cert = is_set(cfg->cert_file) || is_set(cfg->cert_pem);
    bool key = is_set(cfg->key_file) || is_set(cfg->key_pem);
    if (!cert || !key) {
        return invalid(err, at, NULL,
                       "TLS configuration must include both certificate and key for server "
                       "connections (cert_file and key_file)");
    }
    int rc = validate_versions(cfg, flags, at, err);
    if (rc == 0 && (flags & OM_TLS_GRPC)) {
        rc = validate_grpc(cfg, at, err);
    }
    if (rc == 0) {
        rc = validate_suites(&cfg->cipher_suites, at, err);
    }
    if (rc == 0) {
        rc = validate_curves(&cfg->curve_preferences, at, err);
    }
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Reading the material                                                                       */

/* The whole file as a NUL-terminated om_malloc'd string in *out. */
static int read_file(const char *file, const char *what, const char *at, char **out, om_err_t *err)
{
    FILE *f = fopen(file, "rb");
    if (f == NULL) {
        om_err_set(err, OM_ECONFIG, "%s: cannot read %s \"%.200s\": %s", at, what, file,
                   uv_strerror(uv_translate_sys_error(errno)));
        return OM_ECONFIG;
    }
    om_strbuf_t sb;
    om_strbuf_init(&sb, 0);
    char buf[16384];
    size_t total = 0;
    size_t n;
    /* Bounded: stops past OM_TLS_PEM_MAX bytes. */
    while (total <= OM_TLS_PEM_MAX && (n = fread(buf, 1, sizeof buf, f)) > 0) {
        total += n;
        om_strbuf_append(&sb, buf, n);
    }
    int rc = 0;
    if (ferror(f)) {
        om_err_set(err, OM_ECONFIG, "%s: cannot read %s \"%.200s\": %s", at, what, file,
                   uv_strerror(uv_translate_sys_error(errno)));
        rc = OM_ECONFIG;
    } else if (total > OM_TLS_PEM_MAX) {
        om_err_set(err, OM_ECONFIG, "%s: %s \"%.200s\" is larger than %d bytes", at, what, file,
                   OM_TLS_PEM_MAX);
        rc = OM_ECONFIG;
    }
    fclose(f);
    bool failed = sb.failed; /* steal clears it */
    /* An empty file becomes "", which parsing then reports. */
    char *text = rc == 0 && sb.data == NULL ? om_strdup("") : om_strbuf_steal(&sb, NULL);
    if (rc == 0 && (failed || text == NULL)) {
        om_err_set(err, OM_ENOMEM, "%s: out of memory reading %s", at, what);
        rc = OM_ENOMEM;
    }
    om_strbuf_free(&sb);
    if (rc != 0) {
        om_free(text);
        return rc;
    }
    *out = text;
    return 0;
}

/* One item: from the file, or a copy of the inline PEM; *dst stays NULL when neither is set.
 * src gets the item's name for messages. */
static int take(const char *file, const char *inline_pem, const char *file_key, const char *pem_key,
                const char *at, char **dst, const char **src, char *name, size_t name_cap,
                om_err_t *err)
{
    if (is_set(file)) {
        snprintf(name, name_cap, "%s \"%.200s\"", file_key, file);
        *src = name;
        return read_file(file, file_key, at, dst, err);
    }
    if (is_set(inline_pem)) {
        snprintf(name, name_cap, "%s", pem_key);
        *src = name;
        *dst = om_strdup(inline_pem);
        if (*dst == NULL) {
            om_err_set(err, OM_ENOMEM, "out of memory");
            return OM_ENOMEM;
        }
    }
    return 0;
}

int om_tls_server_pem_load(const om_tls_server_cfg_t *cfg, const char *at, om_tls_pem_t *pem,
                           om_err_t *err)
{
    memset(pem, 0, sizeof *pem);
    size_t cap = sizeof pem->names[0];
    int rc = take(cfg->cert_file, cfg->cert_pem, "cert_file", "cert_pem", at, &pem->cert,
                  &pem->cert_src, pem->names[0], cap, err);
    if (rc == 0) {
        rc = take(cfg->key_file, cfg->key_pem, "key_file", "key_pem", at, &pem->key, &pem->key_src,
                  pem->names[1], cap, err);
    }
    if (rc == 0) {
        rc = take(cfg->client_ca_file, NULL, "client_ca_file", NULL, at, &pem->client_ca,
                  &pem->client_ca_src, pem->names[2], cap, err);
    }
    if (rc == 0) {
        rc = take(cfg->ca_file, cfg->ca_pem, "ca_file", "ca_pem", at, &pem->ca, &pem->ca_src,
                  pem->names[3], cap, err);
    }
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

static void free_secret(char **p)
{
    if (*p != NULL) {
        OPENSSL_cleanse(*p, strlen(*p));
        om_free(*p);
        *p = NULL;
    }
}

void om_tls_pem_free(om_tls_pem_t *pem)
{
    free_secret(&pem->key);
    om_free(pem->cert);
    om_free(pem->client_ca);
    om_free(pem->ca);
    pem->cert = pem->client_ca = pem->ca = NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* The OpenSSL context                                                                        */

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

/* Never ask for a passphrase: OpenSSL's default callback would read one from the terminal.
 * otelcol takes unencrypted keys only, and so do we. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return 0;
}

static int parse_error(om_err_t *err, const char *at, const char *what, const char *src)
{
    char reason[160];
    om_tls_err_reason(NULL, reason, sizeof reason);
    om_err_set(err, OM_ECONFIG, "%s: %s in %s (%s)", at, what, src, reason);
    return OM_ECONFIG;
}

/* Every certificate in text (at least one), or NULL with err set. */
static STACK_OF(X509) * read_certs(const char *text, const char *at, const char *src, om_err_t *err)
{
    STACK_OF(X509) *sk = sk_X509_new_null();
    BIO *b = BIO_new_mem_buf(text, -1);
    if (sk == NULL || b == NULL) {
        om_err_set(err, OM_ENOMEM, "out of memory");
        goto fail;
    }
    /* Bounded by the text, which read_file capped. */
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
        parse_error(err, at, "no valid certificate", src);
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

static int use_chain_and_key(SSL_CTX *ctx, const om_tls_pem_t *pem, const char *at, om_err_t *err)
{
    STACK_OF(X509) *chain = read_certs(pem->cert, at, pem->cert_src, err);
    if (chain == NULL) {
        return err->code;
    }
    int rc = 0;
    BIO *b = BIO_new_mem_buf(pem->key, -1);
    EVP_PKEY *key = b != NULL ? PEM_read_bio_PrivateKey(b, NULL, no_passphrase, NULL) : NULL;
    X509 *leaf = sk_X509_shift(chain); /* the rest, if any, are intermediates */
    if (key == NULL) {
        rc = parse_error(err, at, "no valid private key", pem->key_src);
    } else if (SSL_CTX_use_certificate(ctx, leaf) != 1 || SSL_CTX_set1_chain(ctx, chain) != 1) {
        rc = parse_error(err, at, "unusable certificate", pem->cert_src);
    } else if (SSL_CTX_use_PrivateKey(ctx, key) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
        ERR_clear_error();
        om_err_set(err, OM_ECONFIG,
                   "%s: the private key in %s does not match the certificate in %s", at,
                   pem->key_src, pem->cert_src);
        rc = OM_ECONFIG;
    }
    EVP_PKEY_free(key);
    BIO_free(b);
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
    STACK_OF(X509) *cas = read_certs(pem->client_ca, at, pem->client_ca_src, err);
    if (cas == NULL) {
        return err->code;
    }
    X509_STORE *store = SSL_CTX_get_cert_store(ctx);
    int rc = 0;
    for (int i = 0; i < sk_X509_num(cas) && rc == 0; i++) {
        X509 *x = sk_X509_value(cas, i);
        if (X509_STORE_add_cert(store, x) != 1 || SSL_CTX_add_client_CA(ctx, x) != 1) {
            rc = parse_error(err, at, "unusable certificate", pem->client_ca_src);
        }
    }
    sk_X509_pop_free(cas, X509_free);
    /* The system bundle is found lazily, at verification; a missing one only means that no
     * extra CA is trusted. */
    if (rc == 0 && cfg->include_system_ca_certs_pool && X509_STORE_set_default_paths(store) != 1) {
        ERR_clear_error();
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    return rc;
}

static int use_cipher_suites(SSL_CTX *ctx, const om_strlist_t *names, const char *at, om_err_t *err)
{
    om_strbuf_t list;
    om_strbuf_init(&list, 0);
    int rc = 0;
    for (size_t i = 0; i < names->n && rc == 0; i++) {
        const SSL_CIPHER *found = find_suite(ctx, names->items[i]);
        if (found == NULL) {
            om_err_set(err, OM_ECONFIG, "%s::cipher_suites: invalid TLS cipher suite: \"%.64s\"",
                       at, names->items[i]);
            rc = OM_ECONFIG;
        } else if (strcmp(SSL_CIPHER_get_version(found), "TLSv1.3") != 0) {
            om_strbuf_printf(&list, "%s%s", list.len > 0 ? ":" : "", SSL_CIPHER_get_name(found));
        }
    }
    if (rc == 0 && list.failed) {
        om_err_set(err, OM_ENOMEM, "out of memory");
        rc = OM_ENOMEM;
    }
    if (rc == 0 && list.len > 0 && SSL_CTX_set_cipher_list(ctx, list.data) != 1) {
        rc = parse_error(err, at, "cipher_suites unusable", "cipher_suites");
    }
    om_strbuf_free(&list);
    return rc;
}

static int use_curves(SSL_CTX *ctx, const om_strlist_t *names, const char *at, om_err_t *err)
{
    if (names->n == 0) {
        return 0;
    }
    om_strbuf_t list;
    om_strbuf_init(&list, 0);
    int rc = 0;
    for (size_t i = 0; i < names->n && rc == 0; i++) {
        const char *g = curve_group(names->items[i]);
        if (g == NULL) {
            om_err_set(err, OM_ECONFIG, "%s::curve_preferences: invalid curve type: \"%.32s\"", at,
                       names->items[i]);
            rc = OM_ECONFIG;
        } else {
            om_strbuf_printf(&list, "%s%s", list.len > 0 ? ":" : "", g);
        }
    }
    if (rc == 0 && list.failed) {
        om_err_set(err, OM_ENOMEM, "out of memory");
        rc = OM_ENOMEM;
    }
    if (rc == 0 && SSL_CTX_set1_groups_list(ctx, list.data) != 1) {
        rc = parse_error(err, at, "curve_preferences unusable", "curve_preferences");
    }
    om_strbuf_free(&list);
    return rc;
}

/* Our HTTP server speaks HTTP/1.1 only: say so to clients that offer ALPN (they then do not
 * try h2); a client that does not offer http/1.1 gets no ALPN answer and decides for itself. */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)ssl;
    (void)arg;
    static const unsigned char http11[] = "\x08http/1.1";
    unsigned char *sel = NULL;
    unsigned char sel_len = 0;
    if (SSL_select_next_proto(&sel, &sel_len, http11, sizeof http11 - 1, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED) {
        return SSL_TLSEXT_ERR_NOACK;
    }
    *out = sel;
    *outlen = sel_len;
    return SSL_TLSEXT_ERR_OK;
}

static int set_versions(SSL_CTX *ctx, const om_tls_server_cfg_t *cfg, const char *at, om_err_t *err)
{
    int min = om_tls_version(cfg->min_version);
    int max = om_tls_version(cfg->max_version);
    if (min < 0 || max < 0 ||
        SSL_CTX_set_min_proto_version(ctx, min > 0 ? min : TLS1_2_VERSION) != 1 ||
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
    int rc = set_versions(ctx, cfg, at, err);
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
    rc = use_chain_and_key(ctx, pem, at, err);
    if (rc == 0 && pem->client_ca != NULL) {
        rc = use_client_ca(ctx, cfg, pem, at, err);
    }
    if (rc == 0 && pem->ca != NULL) {
        STACK_OF(X509) *ca = read_certs(pem->ca, at, pem->ca_src, err);
        rc = ca != NULL ? 0 : err->code;
        sk_X509_pop_free(ca, X509_free);
    }
    if (rc == 0 && cfg->cipher_suites.n > 0) {
        rc = use_cipher_suites(ctx, &cfg->cipher_suites, at, err);
    }
    if (rc == 0) {
        rc = use_curves(ctx, &cfg->curve_preferences, at, err);
    }
    if (rc == 0 && (flags & OM_TLS_ALPN_HTTP11)) {
        SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
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
