/* om_test_httpd.c: the scripted test server (om_test_httpd.h).
 *
 * One thread, the test's loop. TLS runs through OpenSSL memory BIOs: bytes read from the
 * socket go into the read BIO, SSL_read gives the plaintext to http_parser, and whatever
 * OpenSSL puts in the write BIO (handshake records, encrypted replies) is written out. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <http_parser.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "om.h"
#include "om_test_httpd.h"

typedef struct conn {
    uv_tcp_t tcp; /* first: the close callback gets it; data: the server */
    om_test_httpd_t *s;
    http_parser parser;
    om_test_httpd_rec_t *cur;
    bool in_value;
    int id;
    SSL *ssl; /* NULL: plaintext */
    BIO *rbio, *wbio;
} conn_t;

static void handle_closed(uv_handle_t *h)
{
    om_test_httpd_t *s = h->data;
    if (h != (uv_handle_t *)&s->listener) {
        conn_t *c = (conn_t *)h;
        SSL_free(c->ssl); /* frees both BIOs */
        free(c);
        s->open--;
    }
    s->handles--;
}

static void str_append(char **dst, const char *p, size_t n)
{
    size_t old = *dst != NULL ? strlen(*dst) : 0;
    char *d = realloc(*dst, old + n + 1);
    memcpy(d + old, p, n);
    d[old + n] = '\0';
    *dst = d;
}

static int on_begin(http_parser *p)
{
    conn_t *c = p->data;
    om_test_httpd_t *s = c->s;
    c->cur = s->n_reqs < OM_TEST_HTTPD_MAX_REQS ? &s->reqs[s->n_reqs++] : NULL;
    if (c->cur != NULL) {
        memset(c->cur, 0, sizeof *c->cur);
        c->cur->conn = c->id;
    }
    c->in_value = false;
    return c->cur != NULL ? 0 : -1;
}

static int on_url(http_parser *p, const char *at, size_t n)
{
    conn_t *c = p->data;
    size_t old = strlen(c->cur->url);
    if (old + n < sizeof c->cur->url) {
        memcpy(c->cur->url + old, at, n);
        c->cur->url[old + n] = '\0';
    }
    return 0;
}

static int on_hfield(http_parser *p, const char *at, size_t n)
{
    conn_t *c = p->data;
    om_test_httpd_rec_t *r = c->cur;
    if (c->in_value || r->n_hdrs == 0) {
        if (r->n_hdrs == OM_TEST_HTTPD_MAX_HDRS) {
            return 0;
        }
        r->n_hdrs++;
        c->in_value = false;
    }
    str_append(&r->names[r->n_hdrs - 1], at, n);
    return 0;
}

static int on_hvalue(http_parser *p, const char *at, size_t n)
{
    conn_t *c = p->data;
    c->in_value = true;
    str_append(&c->cur->values[c->cur->n_hdrs - 1], at, n);
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
    om_test_httpd_rec_t *r = ((conn_t *)p->data)->cur;
    uint8_t *grown = realloc(r->body, r->body_len + n + 1);
    if (grown == NULL) {
        return -1;
    }
    r->body = grown;
    memcpy(r->body + r->body_len, at, n);
    r->body_len += n;
    r->body[r->body_len] = '\0'; /* tests read bodies as text */
    return 0;
}

typedef struct wr {
    uv_write_t req;
    char *buf;
} wr_t;

static void written(uv_write_t *w, int status)
{
    (void)status;
    free(((wr_t *)w)->buf);
    free(w);
}

static void write_raw(conn_t *c, char *buf, size_t len)
{
    wr_t *w = calloc(1, sizeof *w);
    w->buf = buf;
    uv_buf_t b = uv_buf_init(buf, (unsigned)len);
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, written) != 0) {
        free(buf);
        free(w);
    }
}

/* Writes out what OpenSSL has queued (handshake records, encrypted data). */
static void flush_tls(conn_t *c)
{
    size_t n = (size_t)BIO_pending(c->wbio);
    if (n == 0) {
        return;
    }
    char *buf = malloc(n);
    int got = BIO_read(c->wbio, buf, (int)n);
    if (got <= 0) {
        free(buf);
        return;
    }
    write_raw(c, buf, (size_t)got);
}

static void send_bytes(conn_t *c, char *buf, size_t len)
{
    if (c->ssl == NULL) {
        write_raw(c, buf, len);
        return;
    }
    SSL_write(c->ssl, buf, (int)len); /* memory BIOs take it all */
    free(buf);
    flush_tls(c);
}

static void reply_to(conn_t *c, const om_test_httpd_reply_t *r)
{
    static const uint8_t none[1];
    const void *body = r->body != NULL ? r->body : none;
    om_strbuf_t sb;
    om_strbuf_init(&sb, 0);
    om_strbuf_printf(&sb, "HTTP/1.1 %d X\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s\r\n",
                     r->status, r->ctype != NULL ? r->ctype : "application/x-protobuf", r->body_len,
                     r->headers != NULL ? r->headers : "");
    om_strbuf_append(&sb, body, r->body_len);
    size_t len = 0;
    char *buf = om_strbuf_steal(&sb, &len);
    om_strbuf_free(&sb);
    /* om_strbuf memory is om_malloc'd, which is malloc. */
    send_bytes(c, buf, len);
}

static int on_complete(http_parser *p)
{
    conn_t *c = p->data;
    om_test_httpd_t *s = c->s;
    om_test_httpd_rec_t *r = c->cur;
    snprintf(r->method, sizeof r->method, "%s", http_method_str((enum http_method)p->method));
    r->at_ms = uv_now(s->loop);
    r->complete = true;
    om_test_httpd_reply_t def = {.status = 200};
    const om_test_httpd_reply_t *rep =
        s->next_reply < s->n_script ? &s->script[s->next_reply] : &def;
    s->next_reply++;
    if (rep->status != 0) {
        reply_to(c, rep);
    }
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_message_begin = on_begin,
    .on_url = on_url,
    .on_header_field = on_hfield,
    .on_header_value = on_hvalue,
    .on_body = on_body,
    .on_message_complete = on_complete,
};

static void alloc_cb(uv_handle_t *h, size_t n, uv_buf_t *b)
{
    (void)h;
    b->base = malloc(n);
    b->len = n;
}

static void conn_close(conn_t *c)
{
    if (!uv_is_closing((uv_handle_t *)&c->tcp)) {
        uv_close((uv_handle_t *)&c->tcp, handle_closed);
    }
}

static bool parse(conn_t *c, const char *p, size_t n)
{
    http_parser_execute(&c->parser, &parser_settings, p, n);
    return c->parser.http_errno == HPE_OK;
}

/* Plaintext out of the TLS records that arrived; false when the connection must close. */
static bool tls_input(conn_t *c, const char *p, size_t n)
{
    BIO_write(c->rbio, p, (int)n);
    char buf[16384];
    bool ok = true;
    for (;;) {
        int got = SSL_read(c->ssl, buf, sizeof buf);
        if (got > 0) {
            ok = parse(c, buf, (size_t)got);
            if (!ok) {
                break;
            }
            continue;
        }
        int e = SSL_get_error(c->ssl, got);
        ok = e == SSL_ERROR_WANT_READ;
        break;
    }
    ERR_clear_error();
    flush_tls(c);
    return ok;
}

static void read_cb(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    conn_t *c = (conn_t *)st;
    if (n < 0) {
        conn_close(c);
    } else if (n > 0) {
        bool ok = c->ssl != NULL ? tls_input(c, b->base, (size_t)n) : parse(c, b->base, (size_t)n);
        if (!ok) {
            conn_close(c);
        }
    }
    free(b->base);
}

static void on_conn(uv_stream_t *l, int status)
{
    om_test_httpd_t *s = l->data;
    if (status != 0) {
        return;
    }
    conn_t *c = calloc(1, sizeof *c);
    uv_tcp_init(s->loop, &c->tcp);
    c->tcp.data = s;
    s->handles++;
    s->open++;
    c->s = s;
    c->id = ++s->accepted;
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    if (s->tls != NULL) {
        c->ssl = SSL_new(s->tls);
        c->rbio = BIO_new(BIO_s_mem());
        c->wbio = BIO_new(BIO_s_mem());
        SSL_set_bio(c->ssl, c->rbio, c->wbio);
        SSL_set_accept_state(c->ssl);
    }
    if (uv_accept(l, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
}

static SSL_CTX *tls_ctx(const char *cert_pem, const char *key_pem)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    BIO *cb = BIO_new_mem_buf(cert_pem, -1);
    BIO *kb = BIO_new_mem_buf(key_pem, -1);
    X509 *cert = PEM_read_bio_X509(cb, NULL, NULL, NULL);
    EVP_PKEY *key = PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL);
    bool ok = ctx != NULL && cert != NULL && key != NULL &&
              SSL_CTX_use_certificate(ctx, cert) == 1 && SSL_CTX_use_PrivateKey(ctx, key) == 1;
    X509_free(cert);
    EVP_PKEY_free(key);
    BIO_free(cb);
    BIO_free(kb);
    if (!ok) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

int om_test_httpd_start(om_test_httpd_t *s, uv_loop_t *loop, int port, const char *cert_pem,
                        const char *key_pem)
{
    s->loop = loop;
    if (cert_pem != NULL && (s->tls = tls_ctx(cert_pem, key_pem)) == NULL) {
        return UV_EINVAL;
    }
    uv_tcp_init(loop, &s->listener);
    s->listener.data = s;
    s->handles++;
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", port, &a);
    int rc = uv_tcp_bind(&s->listener, (const struct sockaddr *)&a, 0);
    rc = rc ? rc : uv_listen((uv_stream_t *)&s->listener, 128, on_conn);
    struct sockaddr_storage ss;
    int len = sizeof ss;
    uv_tcp_getsockname(&s->listener, (struct sockaddr *)&ss, &len);
    s->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    s->listening = rc == 0;
    return rc;
}

static void close_walk(uv_handle_t *h, void *arg)
{
    om_test_httpd_t *s = arg;
    if (h->data == s && !uv_is_closing(h)) {
        uv_close(h, handle_closed);
    }
}

void om_test_httpd_stop(om_test_httpd_t *s)
{
    if (s->loop != NULL) {
        uv_walk(s->loop, close_walk, s);
    }
    for (size_t i = 0; i < s->n_reqs; i++) {
        for (size_t j = 0; j < s->reqs[i].n_hdrs; j++) {
            free(s->reqs[i].names[j]);
            free(s->reqs[i].values[j]);
        }
        free(s->reqs[i].body);
    }
    s->n_reqs = 0;
    s->listening = false;
    /* Connections still closing hold SSL objects, not the context: OpenSSL refcounts it. */
    SSL_CTX_free(s->tls);
    s->tls = NULL;
}

const char *om_test_httpd_header(const om_test_httpd_rec_t *r, const char *name)
{
    for (size_t i = 0; i < r->n_hdrs; i++) {
        if (r->names[i] != NULL && strcasecmp(r->names[i], name) == 0) {
            return r->values[i] != NULL ? r->values[i] : "";
        }
    }
    return NULL;
}
