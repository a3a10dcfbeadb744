/* om_testpem.h: a fixed test PKI as PEM text, made once with openssl and valid for 100 years:
 * a CA, a server certificate for otelmon-test.example and localhost (not 127.0.0.1, so that
 * connecting by address needs server_name_override), and a client certificate for mutual TLS,
 * both signed by the CA. EC P-256 keys, PEM text. */
#ifndef OM_TESTPEM_H
#define OM_TESTPEM_H

extern const char om_test_ca_pem[];
extern const char om_test_server_cert_pem[];
extern const char om_test_server_key_pem[];
extern const char om_test_client_cert_pem[];
extern const char om_test_client_key_pem[];

/* Writes text to /tmp/om-testpem-<pid>-<name> and returns that path, which stays valid for
 * the next 7 calls (a ring of 8). For configs that name files. Tests only; not thread-safe. */
char *om_testpem_file(const char *name, const char *text);
/* Removes every file om_testpem_file wrote (call once at the end of a test program). */
void om_testpem_files_remove(void);

#endif
