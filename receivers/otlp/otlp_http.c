/* otlp_http.c: the OTLP/HTTP server of the otlp receiver, on the libuv loop.
 *
 * A listener accepts up to MAX_CONNS connections; each one feeds what it reads to its session
 * (otlp_http_session.c), which parses HTTP/1.1 and appends responses to a buffer that is
 * written out after each read. A connection ends by a lingering close: after the last
 * response is written we shut down our side and discard input for a short while, so a client
 * still sending a refused body gets our answer instead of a reset.
 *
 * Host resolution: "" means all interfaces (0.0.0.0) and "localhost" means 127.0.0.1, which
 * is what otelcol (Go's net.Listen) binds for it; numeric IPv4/IPv6 addresses are bound at
 * once, so start() reports EADDRINUSE and the like synchronously. Any other name is resolved
 * with an asynchronous uv_getaddrinfo (the loop never waits on DNS) and bound in its
 * callback; failures there can only be logged.
 *
 * Lifetime: every connection is a heap conn_t with two handles (tcp, timer), freed when both
 * close callbacks have run. Shutdown closes the listener and idle connections, lets a request
 * being received finish for a short grace period, and calls done once nothing is open.
 *
 * TLS (protocols::http::tls): OpenSSL runs over memory BIOs, so libuv keeps doing all socket
 * I/O and nothing blocks. Bytes read from the socket go into the connection's read BIO and
 * SSL_read hands the plaintext to the session; the session's responses go through SSL_write,
 * and whatever OpenSSL puts in the write BIO (handshake records, alerts, encrypted responses)
 * is written to the socket. A failed handshake closes the connection after a rate-limited
 * warning with the peer and the reason; a client speaking plain HTTP to the TLS port gets a
 * plain 400, as Go's server answers. Without tls, conn->ssl is NULL and the path is the
 * plaintext one. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>

#include "otlp_http.h"
#include "otlp_tls.h"

#define MAX_CONNS 1024
#define IDLE_TIMEOUT_MS 60000
#define LINGER_MS 2000
#define SHUTDOWN_GRACE_MS 5000
#define WRITE_HIGH_WATER (256 * 1024)
#define READ_BUF_SIZE (64 * 1024)
#define LISTEN_BACKLOG 511

typedef struct conn conn_t;

struct otlp_http_server {
    rcv_otlp_t *r;
    char *host; /* from the endpoint; owned */
    int port;
    uv_tcp_t listener;
    bool listener_open;
    uv_getaddrinfo_t gai;
    bool gai_pending;
    int bound_port;
    conn_t *conns; /* all open connections, closing ones included */
    size_t n_conns;
    unsigned pending_closes; /* listener and refused-connection handles not yet closed */
    bool started, shutting_down, done_called;
    om_done_fn done;
    void *done_arg;
    uint64_t idle_ms, linger_ms;
    otlp_http_warnlimit_t warn;
    om_intake_wait_t intake; /* resumes held connections */
    SSL_CTX *ssl_ctx;        /* NULL: plaintext; owned, made at start */
    /* One read buffer for all connections: a read is consumed entirely by its callback before
     * libuv asks for the next buffer, and we run on one thread. */
    char rbuf[READ_BUF_SIZE];
};

struct conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_shutdown_t shut;
    otlp_http_server_t *srv;
    conn_t *prev, *next;
    otlp_http_session_t sess;
    char peer[64];
    size_t write_pending; /* bytes given to uv_write whose callback has not run */
    int handles_open;
    bool reading, lingering, closing, eof;
    bool held; /* not read from while intake is paused (om_intake_paused) */
    /* TLS only: the session (owns both memory BIOs), NULL for plaintext. */
    SSL *ssl;
    uint64_t accepted_ns; /* uv_hrtime() at accept: bounds the handshake */
    bool tls_dead;        /* a fatal TLS error: no more SSL calls but SSL_free */
    bool tls_notified;    /* close_notify queued */
    bool plain_reply;     /* sess.out holds a plaintext answer to a plaintext client */
};

typedef struct wreq {
    uv_write_t req;
    conn_t *c;
    char *data; /* owned */
    size_t len;
} wreq_t;

static void maybe_done(otlp_http_server_t *s)
{
    if (!s->shutting_down || s->done_called || s->pending_closes > 0 || s->n_conns > 0 ||
        s->gai_pending) {
        return;
    }
    s->done_called = true;
    if (s->done != NULL) {
        s->done(s->done_arg);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Connections                                                                                */

static void on_conn_handle_closed(uv_handle_t *h)
{
    conn_t *c = h->data;
    if (--c->handles_open > 0) {
        return;
    }
    otlp_http_server_t *s = c->srv;
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        s->conns = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    s->n_conns--;
    otlp_http_session_free(&c->sess);
    SSL_free(c->ssl);
    om_free(c);
    maybe_done(s);
}

static void conn_close(conn_t *c)
{
    if (c->closing) {
        return;
    }
    c->closing = true;
    uv_close((uv_handle_t *)&c->tcp, on_conn_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
}

static void on_timer(uv_timer_t *t)
{
    conn_t *c = t->data;
    if (!c->lingering && !otlp_http_session_idle(&c->sess)) {
        OM_CLOG(c->srv->r->log_name, OM_LOG_DEBUG, "closing %s: request timed out", c->peer);
    }
    conn_close(c);
}

static void arm_timer(conn_t *c, uint64_t ms)
{
    uv_timer_start(&c->timer, on_timer, ms, 0);
}

static void addr_name(const struct sockaddr *sa, char *out, size_t n)
{
    char ip[48] = "?";
    int port = 0;
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
        uv_ip6_name(a, ip, sizeof ip);
        port = ntohs(a->sin6_port);
        snprintf(out, n, "[%s]:%d", ip, port);
        return;
    }
    const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
    uv_ip4_name(a, ip, sizeof ip);
    port = ntohs(a->sin_port);
    snprintf(out, n, "%s:%d", ip, port);
}

static void conn_peer_name(conn_t *c)
{
    struct sockaddr_storage ss;
    int len = sizeof ss;
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) != 0) {
        snprintf(c->peer, sizeof c->peer, "?");
        return;
    }
    addr_name((const struct sockaddr *)&ss, c->peer, sizeof c->peer);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    conn_t *c = h->data;
    *buf = uv_buf_init(c->srv->rbuf, sizeof c->srv->rbuf);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);

static void conn_read(conn_t *c, bool on)
{
    if (c->closing || c->reading == on) {
        return;
    }
    int rc = on ? uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read)
                : uv_read_stop((uv_stream_t *)&c->tcp);
    if (rc != 0) {
        conn_close(c);
        return;
    }
    c->reading = on;
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    conn_t *c = req->data;
    if (status < 0 && status != UV_ECANCELED) {
        conn_close(c);
    }
}

/* All responses are written and the session wants the connection closed: half-close and
 * drain input for a bounded time (see the file comment). */
static void conn_linger(conn_t *c)
{
    if (c->closing || c->lingering) {
        return;
    }
    if (c->eof || c->srv->shutting_down) {
        conn_close(c);
        return;
    }
    c->lingering = true;
    c->shut.data = c;
    if (uv_shutdown(&c->shut, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
        conn_close(c);
        return;
    }
    conn_read(c, true);
    arm_timer(c, c->srv->linger_ms);
}

static bool tls_close_notify(conn_t *c);

/* What to do once the write queue may have changed or input was consumed. */
static void conn_settle(conn_t *c)
{
    if (c->closing) {
        return;
    }
    if (c->write_pending == 0 && (c->sess.close || c->eof)) {
        if (!tls_close_notify(c)) {
            conn_linger(c);
        }
        return;
    }
    if (c->srv->shutting_down && c->write_pending == 0 && otlp_http_session_idle(&c->sess)) {
        conn_close(c);
        return;
    }
    /* A client that pipelines without reading our answers is not read from until they drain;
     * one read of input produces a bounded amount of output, so this bounds the queue. */
    if (c->sess.close || c->eof || c->held) {
        return;
    }
    om_intake_t *intake = c->srv->r->host->intake;
    if (!c->srv->shutting_down && om_intake_paused(intake)) {
        /* The client waits, with its request unread, until the backlog drains; the idle
         * timer must not count that wait against it. */
        c->held = true;
        conn_read(c, false);
        uv_timer_stop(&c->timer);
        om_intake_wait(intake, &c->srv->intake);
        return;
    }
    if (c->write_pending > WRITE_HIGH_WATER) {
        conn_read(c, false);
    } else if (c->write_pending < WRITE_HIGH_WATER / 4) {
        conn_read(c, true);
    }
}

static void on_write(uv_write_t *req, int status)
{
    wreq_t *w = req->data;
    conn_t *c = w->c;
    c->write_pending -= w->len;
    om_free(w->data);
    om_free(w);
    if (c->closing) {
        return;
    }
    if (status < 0) {
        conn_close(c);
        return;
    }
    conn_settle(c);
}

/* Queue data (om_malloc'd; ownership moves here on every path) for the socket. */
static void conn_write(conn_t *c, char *data, size_t len)
{
    wreq_t *w = om_malloc(sizeof *w);
    if (data == NULL || w == NULL) {
        om_free(data);
        om_free(w);
        conn_close(c);
        return;
    }
    w->c = c;
    w->data = data;
    w->len = len;
    w->req.data = w;
    uv_buf_t b = uv_buf_init(data, (unsigned)len);
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write) != 0) {
        om_free(data);
        om_free(w);
        conn_close(c);
        return;
    }
    c->write_pending += len;
}

/* ------------------------------------------------------------------------------------------ */
/* TLS over memory BIOs (see the file comment)                                                */

#define PLAIN_HTTP_REPLY                                                                           \
    "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"

static bool tls_init(conn_t *c)
{
    c->accepted_ns = uv_hrtime();
    c->ssl = SSL_new(c->srv->ssl_ctx);
    BIO *rb = BIO_new(BIO_s_mem());
    BIO *wb = BIO_new(BIO_s_mem());
    if (c->ssl == NULL || rb == NULL || wb == NULL) {
        BIO_free(rb);
        BIO_free(wb);
        ERR_clear_error();
        return false;
    }
    SSL_set_bio(c->ssl, rb, wb); /* the SSL owns both from here; SSL_free frees them */
    SSL_set_accept_state(c->ssl);
    return true;
}

/* Move what OpenSSL produced (handshake records, alerts, encrypted data) to the socket. */
static void tls_send_pending(conn_t *c)
{
    BIO *wb = SSL_get_wbio(c->ssl);
    size_t n = BIO_ctrl_pending(wb);
    if (n == 0 || c->closing) {
        return;
    }
    char *data = om_malloc(n);
    if (data == NULL || BIO_read(wb, data, (int)n) != (int)n) {
        om_free(data);
        ERR_clear_error();
        conn_close(c);
        return;
    }
    conn_write(c, data, n);
}

static void tls_flush(conn_t *c)
{
    otlp_http_session_t *ss = &c->sess;
    if (c->plain_reply) {
        /* The client does not speak TLS: drop OpenSSL's alert, answer in plain HTTP. */
        (void)BIO_reset(SSL_get_wbio(c->ssl));
        if (ss->out.len > 0) {
            size_t len = 0;
            char *data = om_strbuf_steal(&ss->out, &len);
            conn_write(c, data, len);
        }
        return;
    }
    if (ss->out.len > 0 && !c->tls_dead) {
        /* Memory BIOs never push back, so SSL_write takes the whole buffer (at most
         * OTLP_HTTP_OUT_MAX bytes) in one call. */
        ERR_clear_error();
        int k = SSL_write(c->ssl, ss->out.data, (int)ss->out.len);
        if (k <= 0) {
            ERR_clear_error();
            conn_close(c);
            return;
        }
    }
    om_strbuf_reset(&ss->out);
    tls_send_pending(c);
}

static void conn_flush(conn_t *c)
{
    if (c->closing) {
        return;
    }
    if (c->ssl != NULL) {
        tls_flush(c);
        return;
    }
    if (c->sess.out.len == 0) {
        return;
    }
    size_t len = 0;
    char *data = om_strbuf_steal(&c->sess.out, &len);
    conn_write(c, data, len);
}

static void tls_fail(conn_t *c)
{
    unsigned long e = ERR_peek_last_error();
    bool handshake = !SSL_is_init_finished(c->ssl);
    char reason[200];
    otlp_tls_err_reason(c->ssl, reason, sizeof reason);
    c->tls_dead = true; /* after a fatal error OpenSSL must not be asked to shut down */
    c->sess.close = true;
    if (handshake && ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) == SSL_R_HTTP_REQUEST) {
        om_strbuf_reset(&c->sess.out);
        om_strbuf_puts(&c->sess.out, PLAIN_HTTP_REPLY);
        c->plain_reply = true;
        snprintf(reason, sizeof reason, "a plain HTTP request on the TLS port (answered 400)");
    }
    otlp_http_warn(&c->srv->warn, c->srv->r->log_name, "%s %s: %s",
                   handshake ? "TLS handshake failed with" : "TLS error from", c->peer, reason);
}

/* Received ciphertext: into the read BIO, then every plaintext byte it completes goes to the
 * session. Bounded: each SSL_read consumes buffered input, which is at most one socket read
 * plus a partial record. */
static void tls_feed(conn_t *c, const char *data, size_t n)
{
    if (c->tls_dead || c->sess.close) {
        return; /* no more requests: dropped unread, as the session drops plaintext */
    }
    if (BIO_write(SSL_get_rbio(c->ssl), data, (int)n) != (int)n) {
        ERR_clear_error();
        conn_close(c);
        return;
    }
    /* data was the server's read buffer, whose bytes are in the BIO now: reuse it. */
    char *plain = c->srv->rbuf;
    while (!c->closing && !c->sess.close) {
        ERR_clear_error();
        int k = SSL_read(c->ssl, plain, (int)sizeof c->srv->rbuf);
        if (k > 0) {
            otlp_http_session_feed(&c->sess, plain, (size_t)k);
            continue;
        }
        int e = SSL_get_error(c->ssl, k);
        if (e == SSL_ERROR_WANT_READ) {
            break;
        }
        if (e == SSL_ERROR_ZERO_RETURN) {
            /* close_notify: the client has finished sending. */
            c->eof = true;
            otlp_http_session_feed(&c->sess, NULL, 0);
            break;
        }
        tls_fail(c);
        break;
    }
}

/* Before the half-close that ends a connection, tell a TLS client that the stream ends here,
 * so it can tell a complete answer from a cut one. True when close_notify is being written
 * (conn_settle runs again once it is). */
static bool tls_close_notify(conn_t *c)
{
    if (c->ssl == NULL || c->tls_dead || c->tls_notified || !SSL_is_init_finished(c->ssl)) {
        return false;
    }
    c->tls_notified = true;
    ERR_clear_error();
    (void)SSL_shutdown(c->ssl);
    ERR_clear_error();
    tls_send_pending(c);
    return c->write_pending > 0;
}

/* A handshake trickling in keeps the idle timer alive, but not past the idle time. */
static bool handshake_timed_out(const conn_t *c)
{
    return c->ssl != NULL && !SSL_is_init_finished(c->ssl) &&
           uv_hrtime() - c->accepted_ns > c->srv->idle_ms * (uint64_t)OM_NS_PER_MS;
}

static bool header_timed_out(const conn_t *c)
{
    const otlp_http_session_t *ss = &c->sess;
    return ss->in_message && !ss->req.headers_done &&
           uv_hrtime() - ss->msg_begin_ns > c->srv->idle_ms * (uint64_t)OM_NS_PER_MS;
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    conn_t *c = st->data;
    if (nread == 0 || c->closing) {
        return;
    }
    if (nread < 0) {
        if (nread != UV_EOF || c->lingering) {
            conn_close(c);
            return;
        }
        c->eof = true;
        otlp_http_session_feed(&c->sess, NULL, 0);
        conn_read(c, false);
        conn_settle(c);
        return;
    }
    if (c->lingering) {
        return; /* draining a refused body: drop it */
    }
    if (!c->srv->shutting_down) {
        arm_timer(c, c->srv->idle_ms);
    }
    if (c->ssl != NULL) {
        tls_feed(c, buf->base, (size_t)nread);
    } else {
        otlp_http_session_feed(&c->sess, buf->base, (size_t)nread);
    }
    if (header_timed_out(c) || handshake_timed_out(c)) {
        /* Headers trickling in byte by byte keep the idle timer alive but not forever. */
        c->sess.close = true;
    }
    conn_flush(c);
    conn_settle(c);
}

static void on_refused_closed(uv_handle_t *h)
{
    otlp_http_server_t *s = h->data;
    om_free(h);
    s->pending_closes--;
    maybe_done(s);
}

/* Over the connection limit: accept and close at once, so the backlog does not stall. */
static void refuse_connection(otlp_http_server_t *s)
{
    uv_tcp_t *t = om_malloc(sizeof *t);
    if (t == NULL || uv_tcp_init(s->r->host->loop, t) != 0) {
        om_free(t);
        return;
    }
    t->data = s;
    s->pending_closes++;
    (void)uv_accept((uv_stream_t *)&s->listener, (uv_stream_t *)t);
    uv_close((uv_handle_t *)t, on_refused_closed);
    otlp_http_warn(&s->warn, s->r->log_name, "connection refused: %zu connections open",
                   s->n_conns);
}

static void on_connection(uv_stream_t *server, int status)
{
    otlp_http_server_t *s = server->data;
    if (status < 0 || s->shutting_down) {
        return;
    }
    if (s->n_conns >= MAX_CONNS) {
        refuse_connection(s);
        return;
    }
    conn_t *c = om_calloc(1, sizeof *c);
    if (c == NULL) {
        refuse_connection(s);
        return;
    }
    uv_loop_t *loop = s->r->host->loop;
    if (uv_tcp_init(loop, &c->tcp) != 0) {
        om_free(c);
        refuse_connection(s);
        return;
    }
    uv_timer_init(loop, &c->timer);
    c->srv = s;
    c->tcp.data = c->timer.data = c;
    c->handles_open = 2;
    c->next = s->conns;
    if (s->conns != NULL) {
        s->conns->prev = c;
    }
    s->conns = c;
    s->n_conns++;
    otlp_http_session_init(&c->sess, s->r, &s->warn, c->peer);
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    conn_peer_name(c);
    if (s->ssl_ctx != NULL && !tls_init(c)) {
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    arm_timer(c, s->idle_ms);
    conn_settle(c); /* starts reading, unless intake is paused */
}

static void intake_resumed(void *arg)
{
    otlp_http_server_t *s = arg;
    for (conn_t *c = s->conns; c != NULL; c = c->next) {
        if (!c->held || c->closing) {
            continue;
        }
        c->held = false;
        if (!s->shutting_down) {
            arm_timer(c, s->idle_ms);
        }
        conn_settle(c);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Listening                                                                                  */

static void on_listener_closed(uv_handle_t *h)
{
    otlp_http_server_t *s = h->data;
    s->pending_closes--;
    maybe_done(s);
}

static void close_listener(otlp_http_server_t *s)
{
    if (!s->listener_open) {
        return;
    }
    s->listener_open = false;
    s->pending_closes++;
    uv_close((uv_handle_t *)&s->listener, on_listener_closed);
}

static int bind_listen(otlp_http_server_t *s, const struct sockaddr *addr, om_err_t *err)
{
    const char *ep = s->r->cfg->protocols.http.endpoint;
    int rc = uv_tcp_init(s->r->host->loop, &s->listener);
    if (rc != 0) {
        om_err_set(err, OM_EIO, "listen on %s: %s", ep, uv_strerror(rc));
        return OM_EIO;
    }
    s->listener.data = s;
    s->listener_open = true;
    rc = uv_tcp_bind(&s->listener, addr, 0);
    if (rc == 0) {
        /* libuv may report a bind error such as EADDRINUSE only here. */
        rc = uv_listen((uv_stream_t *)&s->listener, LISTEN_BACKLOG, on_connection);
    }
    struct sockaddr_storage ss;
    int len = sizeof ss;
    if (rc == 0) {
        rc = uv_tcp_getsockname(&s->listener, (struct sockaddr *)&ss, &len);
    }
    if (rc != 0) {
        om_err_set(err, OM_EIO, "listen on %s: %s", ep, uv_strerror(rc));
        close_listener(s);
        return OM_EIO;
    }
    char name[64];
    addr_name((const struct sockaddr *)&ss, name, sizeof name);
    s->bound_port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                             : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    const char *note = "";
    if (s->ssl_ctx != NULL) {
        note = SSL_CTX_get_verify_mode(s->ssl_ctx) & SSL_VERIFY_FAIL_IF_NO_PEER_CERT
                   ? " (TLS, client certificates required)"
                   : " (TLS)";
    }
    OM_CLOG(s->r->log_name, OM_LOG_INFO, "OTLP/HTTP listening on %s%s", name, note);
    return 0;
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    otlp_http_server_t *s = req->data;
    s->gai_pending = false;
    if (s->shutting_down) {
        uv_freeaddrinfo(res);
        maybe_done(s);
        return;
    }
    if (status != 0 || res == NULL) {
        OM_CLOG(s->r->log_name, OM_LOG_ERROR, "cannot resolve %s: %s", s->host,
                uv_strerror(status));
        uv_freeaddrinfo(res);
        return;
    }
    /* Like Go's net.Listen, take one address, IPv4 first. */
    const struct addrinfo *pick = res;
    for (const struct addrinfo *a = res; a != NULL; a = a->ai_next) {
        if (a->ai_family == AF_INET) {
            pick = a;
            break;
        }
    }
    om_err_t err = {0};
    if (bind_listen(s, pick->ai_addr, &err) != 0) {
        OM_CLOG(s->r->log_name, OM_LOG_ERROR, "%s", err.msg);
    }
    uv_freeaddrinfo(res);
}

static int resolve_async(otlp_http_server_t *s, om_err_t *err)
{
    char port[16];
    snprintf(port, sizeof port, "%d", s->port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    s->gai.data = s;
    int rc = uv_getaddrinfo(s->r->host->loop, &s->gai, on_resolved, s->host, port, &hints);
    if (rc != 0) {
        om_err_set(err, OM_EIO, "resolve %s: %s", s->host, uv_strerror(rc));
        return OM_EIO;
    }
    s->gai_pending = true;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* The otlp.h interface                                                                       */

int otlp_http_create(rcv_otlp_t *r, otlp_http_server_t **out, om_err_t *err)
{
    otlp_http_server_t *s = om_calloc(1, sizeof *s);
    if (s == NULL) {
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    s->r = r;
    s->bound_port = -1;
    om_intake_wait_init(&s->intake, intake_resumed, s);
    s->idle_ms = IDLE_TIMEOUT_MS;
    s->linger_ms = LINGER_MS;
    const char *ep = r->cfg->protocols.http.endpoint;
    int rc = om_parse_endpoint(ep != NULL ? ep : "localhost:4318", &s->host, &s->port, err);
    if (rc != 0) {
        om_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

/* Read and parse the TLS material (synchronously: see otlp_tls_pem_load) into the context
 * every connection is served with. */
static int tls_setup(otlp_http_server_t *s, om_err_t *err)
{
    const char *path = "protocols::http::tls";
    const otlp_tls_cfg_t *cfg = &s->r->cfg->protocols.http.tls;
    otlp_tls_pem_t pem;
    int rc = otlp_tls_pem_load(cfg, path, &pem, err);
    if (rc != 0) {
        return rc;
    }
    s->ssl_ctx = otlp_tls_ctx_new(cfg, &pem, path, true, err);
    otlp_tls_pem_free(&pem);
    if (s->ssl_ctx == NULL) {
        return err->code != 0 ? err->code : OM_ECONFIG;
    }
    return 0;
}

int otlp_http_start(otlp_http_server_t *s, om_err_t *err)
{
    if (s->started || s->shutting_down) {
        om_err_set(err, OM_EINVAL, "OTLP/HTTP server started twice");
        return OM_EINVAL;
    }
    s->started = true;
    if (s->r->cfg->protocols.http.tls_present) {
        int rc = tls_setup(s, err);
        if (rc != 0) {
            return rc;
        }
    }
    const char *h = s->host;
    size_t n = strlen(h);
    char buf[64];
    if (n >= 2 && h[0] == '[' && h[n - 1] == ']' && n - 2 < sizeof buf) {
        memcpy(buf, h + 1, n - 2); /* tolerate a bracketed IPv6 literal */
        buf[n - 2] = '\0';
        h = buf;
    }
    if (h[0] == '\0') {
        h = "0.0.0.0";
    } else if (strcasecmp(h, "localhost") == 0) {
        h = "127.0.0.1";
    }
    struct sockaddr_in6 a6;
    struct sockaddr_in a4;
    if (uv_ip4_addr(h, s->port, &a4) == 0) {
        return bind_listen(s, (const struct sockaddr *)&a4, err);
    }
    if (uv_ip6_addr(h, s->port, &a6) == 0) {
        return bind_listen(s, (const struct sockaddr *)&a6, err);
    }
    return resolve_async(s, err);
}

void otlp_http_shutdown(otlp_http_server_t *s, om_done_fn done, void *arg)
{
    if (s->shutting_down) {
        return;
    }
    s->shutting_down = true;
    s->done = done;
    s->done_arg = arg;
    if (s->gai_pending) {
        uv_cancel((uv_req_t *)&s->gai); /* its callback still runs, with UV_ECANCELED */
    }
    close_listener(s);
    om_intake_wait_cancel(s->r->host->intake, &s->intake);
    for (conn_t *c = s->conns; c != NULL; c = c->next) {
        if (c->closing) {
            continue;
        }
        bool was_held = c->held;
        c->held = false;
        c->sess.close_after = true;
        if (c->lingering || (c->write_pending == 0 && otlp_http_session_idle(&c->sess))) {
            conn_close(c);
        } else if (!otlp_http_session_idle(&c->sess)) {
            /* A request is arriving: give it a short while to finish and be answered. */
            arm_timer(c, SHUTDOWN_GRACE_MS);
            if (was_held) {
                conn_settle(c); /* read the rest of it, paused or not */
            }
        }
    }
    maybe_done(s);
}

void otlp_http_destroy(otlp_http_server_t *s)
{
    if (s == NULL) {
        return;
    }
    SSL_CTX_free(s->ssl_ctx);
    om_free(s->host);
    om_free(s);
}

int otlp_http_bound_port(const otlp_http_server_t *s)
{
    return s->bound_port;
}

void otlp_http_set_timeouts(otlp_http_server_t *s, uint64_t idle_ms, uint64_t linger_ms)
{
    s->idle_ms = idle_ms;
    s->linger_ms = linger_ms;
}

size_t otlp_http_conn_count(const otlp_http_server_t *s)
{
    return s->n_conns;
}

size_t otlp_http_busy_count(const otlp_http_server_t *s)
{
    size_t n = 0;
    for (const conn_t *c = s->conns; c != NULL; c = c->next) {
        n += !c->closing && !otlp_http_session_idle(&c->sess);
    }
    return n;
}
