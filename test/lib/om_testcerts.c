/* om_testcerts.c: see om_testcerts.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "om_testcerts.h"

static bool run_openssl(const char *const *argv)
{
    pid_t pid = fork();
    if (pid < 0) {
        return false;
    }
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0) {
            dup2(null, 1);
            dup2(null, 2);
        }
        execvp("openssl", (char *const *)(uintptr_t)argv);
        _exit(127);
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "openssl %s failed (status %d)\n", argv[1], st);
        return false;
    }
    return true;
}

static void in_dir(const om_testcerts_t *c, char *out, const char *name)
{
    snprintf(out, OM_TESTCERTS_PATH, "%s/%.80s", c->dir, name);
}

static bool write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        return false;
    }
    fputs(text, f);
    return fclose(f) == 0;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }
    char *buf = calloc(1, 65536);
    size_t n = fread(buf, 1, 65535, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static bool make_ca(const char *cert, const char *key, const char *cn)
{
    char subj[64];
    snprintf(subj, sizeof subj, "/CN=%s", cn);
    const char *argv[] = {
        "openssl", "req",     "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes",  "-keyout", key,     "-out",    cert, "-days",    "2",
        "-subj",   subj,      NULL};
    return run_openssl(argv);
}

/* A key and a certificate for cn signed by the CA, with the extensions in ext_text. */
static bool make_leaf(const om_testcerts_t *c, const char *name, const char *cn,
                      const char *ext_text, const char *ca, const char *ca_key, char *cert,
                      char *key)
{
    char csr[OM_TESTCERTS_PATH], ext[OM_TESTCERTS_PATH], file[64], subj[64];
    snprintf(file, sizeof file, "%s.pem", name);
    in_dir(c, cert, file);
    snprintf(file, sizeof file, "%s.key", name);
    in_dir(c, key, file);
    snprintf(file, sizeof file, "%s.csr", name);
    in_dir(c, csr, file);
    snprintf(file, sizeof file, "%s.ext", name);
    in_dir(c, ext, file);
    snprintf(subj, sizeof subj, "/CN=%s", cn);
    if (!write_text(ext, ext_text)) {
        return false;
    }
    const char *req[] = {
        "openssl", "req",     "-newkey", "ec",   "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes",  "-keyout", key,       "-out", csr,        "-subj",
        subj,      NULL};
    const char *sign[] = {"openssl", "x509",   "-req", "-in",         csr, "-CA",
                          ca,        "-CAkey", ca_key, "-set_serial", "2", "-days",
                          "2",       "-out",   cert,   "-extfile",    ext, NULL};
    return run_openssl(req) && run_openssl(sign);
}

bool om_testcerts_make(om_testcerts_t *c)
{
    snprintf(c->dir, sizeof c->dir, "/tmp/otelmon-certs-XXXXXX");
    if (mkdtemp(c->dir) == NULL) {
        return false;
    }
    in_dir(c, c->ca, "ca.pem");
    in_dir(c, c->ca_key, "ca.key");
    in_dir(c, c->other_ca, "other-ca.pem");
    in_dir(c, c->other_ca_key, "other-ca.key");
    in_dir(c, c->garbage, "garbage.pem");
    in_dir(c, c->missing, "no-such-file.pem");
    in_dir(c, c->empty, "empty.pem");
    bool ok =
        make_ca(c->ca, c->ca_key, "otelmon-test-ca") &&
        make_ca(c->other_ca, c->other_ca_key, "otelmon-other-ca") &&
        make_leaf(c, "server", "localhost",
                  "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n"
                  "extendedKeyUsage=serverAuth\n",
                  c->ca, c->ca_key, c->server_cert, c->server_key) &&
        make_leaf(c, "client", "client", "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
                  c->ca, c->ca_key, c->client_cert, c->client_key) &&
        make_leaf(c, "rogue", "rogue", "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
                  c->other_ca, c->other_ca_key, c->rogue_cert, c->rogue_key) &&
        write_text(c->garbage, "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n"
                               "-----END CERTIFICATE-----\n") &&
        write_text(c->empty, "");
    if (!ok) {
        return false;
    }
    c->ca_pem = slurp(c->ca);
    c->client_cert_pem = slurp(c->client_cert);
    c->client_key_pem = slurp(c->client_key);
    c->rogue_cert_pem = slurp(c->rogue_cert);
    c->rogue_key_pem = slurp(c->rogue_key);
    return c->ca_pem != NULL && c->client_cert_pem != NULL && c->client_key_pem != NULL &&
           c->rogue_cert_pem != NULL && c->rogue_key_pem != NULL;
}

void om_testcerts_remove(om_testcerts_t *c)
{
    DIR *d = opendir(c->dir);
    if (d != NULL) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] != '.') {
                char p[OM_TESTCERTS_PATH];
                in_dir(c, p, e->d_name);
                unlink(p);
            }
        }
        closedir(d);
    }
    rmdir(c->dir);
    free(c->ca_pem);
    free(c->client_cert_pem);
    free(c->client_key_pem);
    free(c->rogue_cert_pem);
    free(c->rogue_key_pem);
}

SSL_CTX *om_testcerts_client_ctx(const om_testcerts_t *c, const char *cert, const char *key,
                                 int max_version)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL) {
        return NULL;
    }
    SSL_CTX_load_verify_locations(ctx, c->ca, NULL);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (cert != NULL) {
        SSL_CTX_use_certificate_chain_file(ctx, cert);
        SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM);
    }
    if (max_version != 0) {
        SSL_CTX_set_max_proto_version(ctx, max_version);
    }
    static const unsigned char alpn[] = "\x02h2\x08http/1.1";
    SSL_CTX_set_alpn_protos(ctx, alpn, sizeof alpn - 1);
    return ctx;
}
