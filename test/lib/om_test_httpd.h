/* om_test_httpd.h: a small scripted HTTP/1.1 server for tests, on the test's own loop, with
 * optional TLS (OpenSSL through memory BIOs, so it stays one-threaded). It records every
 * request (method, URL, headers, body, arrival time, connection) and answers what the test
 * scripted, in the order the requests complete (status, extra headers, body, or no answer at
 * all), then 200 with an empty body. A real server for real clients: it parses with
 * http_parser and speaks TLS with OpenSSL, and keeps connections alive as HTTP/1.1 does.
 *
 *   om_test_httpd_t s = {0};
 *   om_test_httpd_start(&s, &loop, 0, NULL);   // listens on 127.0.0.1, s.port
 *   s.script[0] = (om_test_httpd_reply_t){.status = 503, .headers = "Retry-After: 1\r\n"};
 *   s.n_script = 1;
 *   ... run the loop until s.n_reqs == 1 ...
 *   om_test_httpd_stop(&s);                    // closes its handles; run the loop after
 */
#ifndef OM_TEST_HTTPD_H
#define OM_TEST_HTTPD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#define OM_TEST_HTTPD_MAX_REQS 256
#define OM_TEST_HTTPD_MAX_HDRS 32
#define OM_TEST_HTTPD_MAX_SCRIPT 16

typedef struct om_test_httpd_rec {
    char method[16];
    char url[512];
    char *names[OM_TEST_HTTPD_MAX_HDRS], *values[OM_TEST_HTTPD_MAX_HDRS]; /* malloc'd */
    size_t n_hdrs;
    uint8_t *body; /* malloc'd; NUL-terminated after body_len bytes */
    size_t body_len;
    uint64_t at_ms; /* uv_now when the request was complete */
    int conn;       /* 1 for the first connection accepted, 2 for the next... */
    bool complete;
} om_test_httpd_rec_t;

typedef struct om_test_httpd_reply {
    int status;          /* 0: do not answer (the client times out) */
    const char *headers; /* extra header lines, each ending in \r\n */
    const char *ctype;   /* NULL: application/x-protobuf */
    const void *body;    /* borrowed: valid while the server runs */
    size_t body_len;
} om_test_httpd_reply_t;

typedef struct om_test_httpd {
    uv_loop_t *loop;
    uv_tcp_t listener;
    int port;
    om_test_httpd_rec_t reqs[OM_TEST_HTTPD_MAX_REQS];
    size_t n_reqs;
    om_test_httpd_reply_t script[OM_TEST_HTTPD_MAX_SCRIPT];
    size_t n_script, next_reply;
    int accepted; /* connections accepted */
    int open;     /* connections open now */
    int handles;  /* open uv handles */
    bool listening;
    void *tls; /* SSL_CTX *, NULL: plaintext */
} om_test_httpd_t;

/* Listen on 127.0.0.1:port (0: any free port; s->port is the bound one). cert_pem and key_pem
 * (PEM text, both or neither): serve TLS with them. s must be zeroed or stopped before, except
 * for script and port. Returns 0 or a uv error code. */
int om_test_httpd_start(om_test_httpd_t *s, uv_loop_t *loop, int port, const char *cert_pem,
                        const char *key_pem);
/* Close the listener and every connection (run the loop afterwards for the close callbacks)
 * and free the recorded requests. */
void om_test_httpd_stop(om_test_httpd_t *s);
/* The value of the request's first header of that name (case-insensitive), or NULL. */
const char *om_test_httpd_header(const om_test_httpd_rec_t *r, const char *name);

#endif
