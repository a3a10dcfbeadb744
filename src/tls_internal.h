/* tls_internal.h: core-internal, what the two sides of the TLS module share. tls.c implements
 * it (the settings servers and clients have in common, as otelcol's configtls.Config is
 * embedded in both its ServerConfig and ClientConfig); tls_server.c and tls_client.c build
 * the two field tables and their side's rules, loading and OpenSSL/libcurl/gRPC specifics on
 * top of it. No component includes this: components use om.h's om_tls_* API.
 *
 * Messages: config rules go through om_err_at at "<at>::<key>" (at: the tls section's path
 * below the component, "tls" or "protocols::http::tls"); material read at start fails with
 * om_err_set and a message that starts with that same "<at>::<key>" path and names the file.
 *
 * Threading: any thread, no shared state. Functions that read files say so. */
#ifndef OM_TLS_INTERNAL_H
#define OM_TLS_INTERNAL_H

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "om.h"

/* ------------------------------------------------------------------------------------------ */
/* The field entries of the shared keys                                                       */

extern const char *const om__tls_versions[]; /* the choices of min_version and max_version */
extern const om_field_t om__tls_tpm_fields[];

#define OM__TLS_STR(cfg_type, k, m, h)                                                             \
    {                                                                                              \
        .key = (k), .type = OM_F_STRING, .offset = offsetof(cfg_type, common.m), .help = (h)       \
    }
#define OM__TLS_LIST(cfg_type, k, m, h)                                                            \
    {                                                                                              \
        .key = (k), .type = OM_F_STRLIST, .offset = offsetof(cfg_type, common.m), .help = (h)      \
    }
#define OM__TLS_VERSION(cfg_type, k, m, h)                                                         \
    {                                                                                              \
        .key = (k), .type = OM_F_ENUM, .offset = offsetof(cfg_type, common.m), .def = "",          \
        .choices = om__tls_versions, .help = (h)                                                   \
    }

/* The entries of configtls.Config's keys, for a table whose struct (cfg_type) has its
 * om_tls_cfg_t as `common`. Each side's table starts with these and adds its own keys;
 * reload_interval is not among them because the sides differ there (a client reloads, a
 * server refuses it: see each table). tpm stores nothing: its only meaningful key is refused. */
#define OM__TLS_COMMON_FIELDS(cfg_type)                                                            \
    OM__TLS_STR(cfg_type, "ca_file", ca_file,                                                      \
                "PEM file of the CAs a client trusts instead of the system's (a server checks "    \
                "it, then leaves it unused)"),                                                     \
        OM__TLS_STR(cfg_type, "ca_pem", ca_pem, "the same, inline"),                               \
        {.key = "include_system_ca_certs_pool",                                                    \
         .type = OM_F_BOOL,                                                                        \
         .offset = offsetof(cfg_type, common.include_system_ca_certs_pool),                        \
         .def = "false",                                                                           \
         .help = "trust the system's CAs too: a client's besides ca_file/ca_pem, a server's "      \
                 "besides client_ca_file"},                                                        \
        OM__TLS_STR(cfg_type, "cert_file", cert_file,                                              \
                    "certificate chain (PEM file): a server's, or a client's for mutual TLS"),     \
        OM__TLS_STR(cfg_type, "cert_pem", cert_pem, "the same, inline"),                           \
        OM__TLS_STR(cfg_type, "key_file", key_file,                                                \
                    "the certificate's private key (unencrypted PEM file)"),                       \
        OM__TLS_STR(cfg_type, "key_pem", key_pem, "the same, inline"),                             \
        OM__TLS_VERSION(cfg_type, "min_version", min_version,                                      \
                        "lowest TLS version: 1.0 to 1.3 (\"\": 1.2)"),                             \
        OM__TLS_VERSION(cfg_type, "max_version", max_version,                                      \
                        "highest TLS version (\"\": the newest)"),                                 \
        OM__TLS_LIST(cfg_type, "cipher_suites", cipher_suites,                                     \
                     "TLS 1.2 cipher suites by Go's (IANA) names; not over gRPC"),                 \
        OM__TLS_LIST(cfg_type, "curve_preferences", curve_preferences,                             \
                     "key exchange groups in order: X25519, P256, P384, P521; not over gRPC"),     \
    {                                                                                              \
        .key = "tpm", .type = OM_F_SECTION, .offset = 0, .fields = om__tls_tpm_fields,             \
        .help = "keys kept in a TPM (not supported)"                                               \
    }

/* ------------------------------------------------------------------------------------------ */
/* Rules (no I/O)                                                                             */

bool om__tls_is_set(const char *s);
bool om__tls_has_ca(const om_tls_cfg_t *c);
bool om__tls_has_cert(const om_tls_cfg_t *c);
bool om__tls_has_key(const om_tls_cfg_t *c);

/* "<at>::<key>" in buf (at NULL or "": key alone; key NULL: at alone). Returns buf. */
const char *om__tls_key(char *buf, size_t n, const char *at, const char *key);
/* om_err_at at "<at>::<key>" with a printf message. Returns OM_ECONFIG. */
int om__tls_invalid(om_err_t *err, const char *at, const char *key, const char *fmt, ...)
    OM_PRINTF(4, 5);

/* configtls.Config's rules on where each item comes from: a file or inline PEM, not both. */
int om__tls_check_sources(const om_tls_cfg_t *c, const char *at, om_err_t *err);
/* The versions (min <= max) and the names of cipher_suites and curve_preferences (known,
 * secure, available in this OpenSSL); with grpc, what gRPC core 1.51's credentials cannot
 * enforce: a version range other than 1.2..1.3 (a lower minimum is only stricter), a cipher
 * suite or a curve choice. */
int om__tls_check_settings(const om_tls_cfg_t *c, const char *at, bool grpc, om_err_t *err);

/* ------------------------------------------------------------------------------------------ */
/* Names                                                                                      */

/* A version setting (om_tls_version_t) as OpenSSL's TLS1_x_VERSION; 0 for the default. */
int om__tls_openssl_version(int v);
/* OpenSSL's ':'-separated forms of validated lists ("" when nothing maps), om_malloc'd, or
 * NULL (ENOMEM): the TLS 1.2 cipher suites (TLS 1.3 names are left out, as Go ignores them),
 * and the groups of curve_preferences. */
char *om__tls_cipher_list(const om_strlist_t *names);
char *om__tls_groups_list(const om_strlist_t *names);

/* ------------------------------------------------------------------------------------------ */
/* Material                                                                                   */

/* Where one item comes from, for messages: its key ("tls::cert_file", or "tls::cert_pem" when
 * inline) and the file (NULL when inline). */
typedef struct om__tls_src {
    char key[192];
    const char *file;
} om__tls_src_t;

void om__tls_src(om__tls_src_t *s, const char *at, const char *file, const char *file_key,
                 const char *pem_key);

/* The whole file (at most max bytes; an empty file gives "") as a NUL-terminated om_malloc'd
 * string in *out. key names it in messages. Blocks on the read. */
int om__tls_read_file(const char *path, size_t max, const char *key, char **out, om_err_t *err);
/* *out: the file's text (at most OM_TLS_PEM_MAX bytes) when file is set, else a copy of the
 * inline PEM, else NULL. Blocks on the read. */
int om__tls_take(const char *file, const char *inline_pem, const char *key, char **out,
                 om_err_t *err);
/* pem->ca, cert and key from the shared settings (memset first); on failure *pem holds
 * nothing. Blocks on the reads. */
int om__tls_pem_read(const om_tls_cfg_t *c, const char *at, om_tls_pem_t *pem, om_err_t *err);

/* OpenSSL's reason for the last error in parentheses after "<src key>: <what>[ in \"file\"]",
 * as the message of err (OM_ECONFIG, returned). Clears the thread's OpenSSL errors. */
int om__tls_fail(om_err_t *err, const om__tls_src_t *src, const char *what);
/* Every certificate in text, at least one (the first block that is neither one nor the end is
 * an error), or NULL with err set. */
STACK_OF(X509) * om__tls_certs(const char *text, const om__tls_src_t *src, om_err_t *err);
/* pem->ca parses (then it is dropped). */
int om__tls_check_ca(const om_tls_cfg_t *c, const om_tls_pem_t *pem, const char *at, om_err_t *err);
/* The identity in pem->cert and pem->key: the leaf certificate, the rest of the chain (may be
 * empty) and the key, which must belong to the leaf. The caller frees the three. */
int om__tls_identity(const om_tls_cfg_t *c, const om_tls_pem_t *pem, const char *at, X509 **leaf,
                     STACK_OF(X509) * *chain, EVP_PKEY **key, om_err_t *err);

#endif
