/* om_testhttp.c: see om_testhttp.h. */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "om_testhttp.h"

static om_testhttp_resp_t *cur(om_testhttp_t *h)
{
    return &h->resp[h->nresp < OM_TESTHTTP_MAX_RESP ? h->nresp : OM_TESTHTTP_MAX_RESP - 1];
}

static int on_begin(http_parser *p)
{
    om_testhttp_t *h = p->data;
    memset(cur(h), 0, sizeof *cur(h));
    h->in_value = false;
    h->hname_len = 0;
    return 0;
}

static void append(char *dst, size_t cap, const char *s, size_t n)
{
    size_t len = strlen(dst);
    size_t k = n < cap - 1 - len ? n : cap - 1 - len;
    memcpy(dst + len, s, k);
    dst[len + k] = '\0';
}

static int on_field(http_parser *p, const char *at, size_t n)
{
    om_testhttp_t *h = p->data;
    om_testhttp_resp_t *r = cur(h);
    if (h->in_value) {
        append(r->headers, sizeof r->headers, "\n", 1);
        h->in_value = false;
    }
    char low[256];
    size_t k = n < sizeof low ? n : sizeof low;
    for (size_t i = 0; i < k; i++) {
        low[i] = (char)tolower((unsigned char)at[i]);
    }
    append(r->headers, sizeof r->headers, low, k);
    return 0;
}

static int on_value(http_parser *p, const char *at, size_t n)
{
    om_testhttp_t *h = p->data;
    om_testhttp_resp_t *r = cur(h);
    if (!h->in_value) {
        append(r->headers, sizeof r->headers, ": ", 2);
        h->in_value = true;
    }
    append(r->headers, sizeof r->headers, at, n);
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    om_testhttp_t *h = p->data;
    om_testhttp_resp_t *r = cur(h);
    if (h->in_value) {
        append(r->headers, sizeof r->headers, "\n", 1);
        h->in_value = false;
    }
    r->status = (int)p->status_code;
    return h->head || r->status == 100 ? 1 : 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
    om_testhttp_t *h = p->data;
    om_testhttp_resp_t *r = cur(h);
    if (r->body_len < sizeof r->body - 1) {
        size_t k = n < sizeof r->body - 1 - r->body_len ? n : sizeof r->body - 1 - r->body_len;
        memcpy(r->body + r->body_len, at, k);
        r->body[r->body_len + k] = '\0';
    }
    r->body_len += n;
    return 0;
}

static int on_complete(http_parser *p)
{
    om_testhttp_t *h = p->data;
    h->nresp++;
    if (h->want > 0 && h->nresp >= h->want) {
        http_parser_pause(p, 1);
    }
    return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_begin,
    .on_header_field = on_field,
    .on_header_value = on_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_complete,
};

static bool got(om_testhttp_t *h, const char *buf, size_t n)
{
    http_parser_execute(&h->p, &settings, buf, n);
    return !(h->want > 0 && h->nresp >= h->want);
}

static void ssl_error(om_testhttp_t *h, const char *what)
{
    unsigned long e = ERR_get_error();
    const char *r = e != 0 ? ERR_reason_error_string(e) : NULL;
    snprintf(h->err, sizeof h->err, "%s: %s", what, r != NULL ? r : "closed");
    ERR_clear_error();
}

static void exchange_tls(om_testhttp_t *h, int fd)
{
    SSL *ssl = SSL_new(h->ctx);
    SSL_set_fd(ssl, fd);
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), "127.0.0.1");
    if (SSL_connect(ssl) != 1) {
        ssl_error(h, "handshake");
        SSL_free(ssl);
        return;
    }
    h->handshake_ok = true;
    const unsigned char *alpn = NULL;
    unsigned alpn_len = 0;
    SSL_get0_alpn_selected(ssl, &alpn, &alpn_len);
    snprintf(h->alpn, sizeof h->alpn, "%.*s", (int)alpn_len,
             alpn != NULL ? (const char *)alpn : "");
    h->group_nid = SSL_get_negotiated_group(ssl);
    snprintf(h->cipher, sizeof h->cipher, "%s",
             SSL_CIPHER_standard_name(SSL_get_current_cipher(ssl)));
    if (h->len > 0 && SSL_write(ssl, h->data, (int)h->len) != (int)h->len) {
        ssl_error(h, "write");
    }
    char buf[16384];
    for (;;) {
        int k = SSL_read(ssl, buf, sizeof buf);
        if (k > 0) {
            if (!got(h, buf, (size_t)k)) {
                break;
            }
            continue;
        }
        int e = SSL_get_error(ssl, k);
        h->eof = true;
        if (e == SSL_ERROR_ZERO_RETURN) {
            h->clean_close = true;
        } else if (h->err[0] == '\0' || ERR_peek_error() != 0) {
            ssl_error(h, "read");
        }
        break;
    }
    SSL_free(ssl);
}

static void exchange_plain(om_testhttp_t *h, int fd)
{
    size_t off = 0;
    while (off < h->len) {
        ssize_t k = send(fd, h->data + off, h->len - off, MSG_NOSIGNAL);
        if (k <= 0) {
            break;
        }
        off += (size_t)k;
    }
    char buf[16384];
    for (;;) {
        ssize_t k = recv(fd, buf, sizeof buf, 0);
        if (k > 0) {
            if (!got(h, buf, (size_t)k)) {
                return;
            }
            continue;
        }
        h->eof = k == 0;
        if (k < 0) {
            snprintf(h->err, sizeof h->err, "recv: %s", strerror(errno));
        }
        http_parser_execute(&h->p, &settings, NULL, 0); /* EOF ends a body without a length */
        return;
    }
}

int om_testhttp_connect(int port, int timeout_ms)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        return -1;
    }
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void client_main(void *arg)
{
    om_testhttp_t *h = arg;
    http_parser_init(&h->p, HTTP_RESPONSE);
    h->p.data = h;
    int fd = om_testhttp_connect(h->port, h->timeout_ms > 0 ? h->timeout_ms : 10000);
    if (fd >= 0) {
        h->connected = true;
        if (h->ctx != NULL) {
            exchange_tls(h, fd);
        } else {
            exchange_plain(h, fd);
        }
        close(fd);
    } else {
        snprintf(h->err, sizeof h->err, "connect failed");
    }
    atomic_store(&h->done, true);
    uv_async_send(h->wake);
}

void om_testhttp_init(om_testhttp_t *h, int port, const char *data, int want)
{
    memset(h, 0, sizeof *h);
    h->port = port;
    h->data = data;
    h->len = data != NULL ? strlen(data) : 0;
    h->want = want;
}

static void on_wake(uv_async_t *a)
{
    (void)a;
}

static void on_deadline(uv_timer_t *t)
{
    *(bool *)t->data = true;
}

void om_testhttp_run_on(om_testhttp_t *h, uv_loop_t *loop)
{
    uv_async_t wake;
    uv_timer_t deadline;
    bool late = false;
    uv_async_init(loop, &wake, on_wake);
    uv_timer_init(loop, &deadline);
    deadline.data = &late;
    uv_timer_start(&deadline, on_deadline, 30000, 0);
    h->wake = &wake;
    uv_thread_t t;
    uv_thread_create(&t, client_main, h);
    while (!atomic_load(&h->done) && !late) {
        uv_run(loop, UV_RUN_ONCE);
    }
    uv_thread_join(&t);
    uv_close((uv_handle_t *)&wake, NULL);
    uv_close((uv_handle_t *)&deadline, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
}

const char *om_testhttp_header(const om_testhttp_resp_t *r, const char *name, char *out, size_t n)
{
    size_t nl = strlen(name);
    for (const char *p = r->headers; *p != '\0';) {
        const char *eol = strchr(p, '\n');
        size_t len = eol != NULL ? (size_t)(eol - p) : strlen(p);
        if (len > nl + 1 && strncmp(p, name, nl) == 0 && p[nl] == ':') {
            snprintf(out, n, "%.*s", (int)(len - nl - 2), p + nl + 2);
            return out;
        }
        p += len + (eol != NULL);
    }
    return NULL;
}
