/* otlp_tls.h: TLS settings of the otlp receiver (protocols::<grpc|http>::tls), private to the
 * folder.
 *
 * Both servers take the same otelcol configtls ServerConfig. Checking it is split as the
 * component model asks: otlp_tls_validate() looks at the values only (config_validate, no
 * I/O); at start the PEM material is read (otlp_tls_pem_load) and parsed into an OpenSSL
 * context (otlp_tls_ctx_new), which the HTTP server serves with and the gRPC server uses to
 * check the material before handing the PEM text to gRPC, so both report a bad file the
 * same way, naming it.
 *
 * Threading: the loop thread. otlp_tls_pem_load() blocks on small file reads (see there). */
#ifndef RCV_OTLP_TLS_H
#define RCV_OTLP_TLS_H

#include <openssl/ssl.h>

#include "otlp.h"

/* Largest PEM file accepted: certificate chains and CA bundles are a few KiB to a few hundred
 * KiB (Debian's whole system bundle is about 200 KiB). */
#define OTLP_TLS_PEM_MAX (4 * 1024 * 1024)

/* The cross-field rules of one tls section, as otelcol's configtls Validate: a certificate and
 * a key (each as a file or inline PEM, not both), known versions with min <= max. path names
 * the section in messages ("protocols::grpc::tls"). grpc adds what gRPC core 1.51 cannot do:
 * its TLS versions are fixed to 1.2..1.3, so a narrower range is refused rather than silently
 * widened. Returns 0 or OM_ECONFIG with the message in err. */
int otlp_tls_validate(const otlp_tls_cfg_t *cfg, const char *path, bool grpc, om_err_t *err);

/* The version setting as an OpenSSL version (TLS1_2_VERSION...), 0 when unset, -1 when not
 * one of "1.0", "1.1", "1.2", "1.3". */
int otlp_tls_version(const char *s);

/* PEM text read at start: each om_malloc'd and NUL-terminated, NULL when not configured. */
typedef struct otlp_tls_pem {
    char *cert, *key, *client_ca, *ca;
    const char *cert_src, *key_src, *client_ca_src, *ca_src; /* "cert_file \"/x\"" for messages */
    char names[4][320];                                      /* storage for the *_src texts */
} otlp_tls_pem_t;

/* Read the files the section names (inline PEM is copied). Reads synchronously: this runs
 * once at start, before the server serves anything, on files of at most OTLP_TLS_PEM_MAX
 * bytes, and start must report a missing or unreadable file as its own error (the file
 * exporter opens its file at start for the same reason). On failure returns OM_ECONFIG
 * (OM_ENOMEM) with a message naming the file, and *pem holds nothing. */
int otlp_tls_pem_load(const otlp_tls_cfg_t *cfg, const char *path, otlp_tls_pem_t *pem,
                      om_err_t *err);
/* Free (and wipe: the key is secret) what otlp_tls_pem_load filled in. */
void otlp_tls_pem_free(otlp_tls_pem_t *pem);

/* A server context from the material: certificate chain and key (which must match), the
 * versions, and with client_ca mutual TLS (a client must present a certificate signed by
 * it). http: also apply cipher_suites and offer ALPN "http/1.1". Returns NULL with
 * OM_ECONFIG/OM_ENOMEM in err (the message names the file that does not parse). The caller
 * frees with SSL_CTX_free. */
SSL_CTX *otlp_tls_ctx_new(const otlp_tls_cfg_t *cfg, const otlp_tls_pem_t *pem, const char *path,
                          bool http, om_err_t *err);

/* The reason for the last OpenSSL error of this thread ("certificate verify failed: ..."),
 * written to buf, for log lines. ssl may be NULL; with it, a failed peer verification says
 * why. Clears the thread's error queue. */
void otlp_tls_err_reason(const SSL *ssl, char *buf, size_t n);

#endif
