/* om_testcerts.h: TLS material for tests, made at test time with the openssl command in a
 * temporary directory (nothing secret is committed, nothing expires in the tree):
 *   - a CA, and a server certificate from it for 127.0.0.1 and localhost;
 *   - a client certificate from the same CA (mutual TLS);
 *   - another CA and a "rogue" client certificate from it;
 *   - a file that is not a certificate, an empty one, and the name of a missing one.
 * Keys are EC P-256. Make them before any thread starts (the openssl processes are forked).
 * Tests only. */
#ifndef OM_TESTCERTS_H
#define OM_TESTCERTS_H

#include <stdbool.h>

#define OM_TESTCERTS_PATH 160

typedef struct om_testcerts {
    char dir[64];
    char ca[OM_TESTCERTS_PATH], ca_key[OM_TESTCERTS_PATH];
    char server_cert[OM_TESTCERTS_PATH], server_key[OM_TESTCERTS_PATH];
    char client_cert[OM_TESTCERTS_PATH], client_key[OM_TESTCERTS_PATH];
    char other_ca[OM_TESTCERTS_PATH], other_ca_key[OM_TESTCERTS_PATH];
    char rogue_cert[OM_TESTCERTS_PATH], rogue_key[OM_TESTCERTS_PATH];
    char garbage[OM_TESTCERTS_PATH], missing[OM_TESTCERTS_PATH], empty[OM_TESTCERTS_PATH];
    /* PEM text for clients that take strings (gRPC); malloc'd. */
    char *ca_pem, *client_cert_pem, *client_key_pem, *rogue_cert_pem, *rogue_key_pem;
} om_testcerts_t;

/* Make everything in a new directory under /tmp. False (with a line on stderr) when the
 * openssl command is missing or fails. */
bool om_testcerts_make(om_testcerts_t *c);
/* Remove the directory and free the PEM text. */
void om_testcerts_remove(om_testcerts_t *c);

/* A TLS client context (SSL_CTX) that trusts c->ca and verifies the server, presents cert and
 * key when cert is not NULL, caps the version at max_version (OpenSSL's TLS1_x_VERSION; 0: the
 * newest) and offers ALPN h2 and http/1.1, as Go's clients do. The caller frees it with
 * SSL_CTX_free. */
struct ssl_ctx_st *om_testcerts_client_ctx(const om_testcerts_t *c, const char *cert,
                                           const char *key, int max_version);

#endif
