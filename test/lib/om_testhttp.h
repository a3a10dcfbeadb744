/* om_testhttp.h: a blocking HTTP/1.1 client for tests, plain or TLS, meant to run in a thread
 * of its own while the test drives the server's loop (nothing sleeps: the loop runs until
 * the client says it is done, through a uv_async).
 *
 *     om_testhttp_t h;
 *     om_testhttp_init(&h, port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 1);
 *     om_testhttp_run_on(&h, &loop);     // a thread runs the exchange; the loop runs meanwhile
 *     ASSERT_EQ_INT(h.resp[0].status, 200);
 *
 * Tests only. */
#ifndef OM_TESTHTTP_H
#define OM_TESTHTTP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include <http_parser.h>
#include <openssl/ssl.h>
#include <uv.h>

#define OM_TESTHTTP_MAX_RESP 8

typedef struct om_testhttp_resp {
    int status;
    char headers[2048]; /* "name: value\n" lines, names lower-cased */
    char body[4096];    /* the first bytes of the body, NUL-terminated */
    size_t body_len;    /* the whole body's length */
} om_testhttp_resp_t;

typedef struct om_testhttp {
    /* Set before running. */
    int port;
    SSL_CTX *ctx;     /* NULL: plain TCP; else TLS with this context (not freed here) */
    const char *data; /* the bytes to send, all at once */
    size_t len;
    int want;       /* responses to read before stopping; 0: read until the server closes */
    bool head;      /* the (only) request is a HEAD: its response has no body */
    int timeout_ms; /* socket read timeout (default 10 s) */
    /* Results. */
    bool connected, handshake_ok, eof, clean_close;
    int nresp;
    om_testhttp_resp_t resp[OM_TESTHTTP_MAX_RESP];
    char err[160]; /* why the exchange stopped early, if it did */
    char alpn[16];
    char cipher[64]; /* TLS: the suite negotiated, by IANA name */
    int group_nid;   /* TLS: the key exchange group negotiated */
    /* Internal. */
    http_parser p;
    char hname[64];
    size_t hname_len;
    bool in_value;
    uv_async_t *wake;
    atomic_bool done;
} om_testhttp_t;

/* Zero h and set what to send; want as above. */
void om_testhttp_init(om_testhttp_t *h, int port, const char *data, int want);
/* Run the exchange in a new thread while running loop (UV_RUN_ONCE) until it is done, at most
 * 30 s. The loop must not have other work that keeps it from waking. */
void om_testhttp_run_on(om_testhttp_t *h, uv_loop_t *loop);
/* The value of a response header (lower-case name), into out; NULL when absent. */
const char *om_testhttp_header(const om_testhttp_resp_t *r, const char *name, char *out, size_t n);
/* A blocking connection to 127.0.0.1:port with a receive timeout, or -1. */
int om_testhttp_connect(int port, int timeout_ms);

#endif
