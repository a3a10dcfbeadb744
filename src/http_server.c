/* http_server.c: the HTTP server's transport on the libuv loop (the protocol itself is in
 * http_session.c; see http_internal.h).
 *
 * A listener accepts connections; each one feeds what it reads to its session, which parses
 * HTTP/1.1, calls the handlers and produces answers that are written out after each read (or
 * when a handler answers later). A connection ends by a lingering close: after the last
 * answer is written we shut down our side and discard input for a short while, so a client
 * still sending a refused body gets our answer instead of a reset.
 *
 * Staying available under abuse
 * -----------------------------
 * A server must keep answering legitimate clients while others connect and send nothing, send
 * half a request, trickle a body, keep idle connections open, or open more connections than
 * the process has file descriptors. Three rules:
 *
 * 1. Every state of a connection has a deadline, otelcol's confighttp timeouts (defaults in
 *    brackets), measured with the monotonic clock and never extended by a trickle of bytes:
 *      - a new connection must deliver its request line and headers within read_header_timeout
 *        [1m] of being accepted (read_timeout when that is 0), its TLS handshake within the
 *        smallest of the three timeouts, as Go's server does;
 *      - a request's headers must arrive within read_header_timeout of its first byte;
 *      - read_timeout [0: none] bounds the whole request, body included, from its first byte;
 *      - write_timeout [30s] bounds the time from a request's headers to the end of its answer
 *        (a handler answering late, or a client that does not read what we write);
 *      - a body that makes no progress for idle_timeout [1m] is dropped (otelcol has no such
 *        limit: with its default read_timeout of 0 a stalled body is held forever);
 *      - a keep-alive connection may stay silent between requests for idle_timeout.
 *    Expired connections are closed without an answer, as Go's server does. While a
 *    component holds its connections (the receivers' intake backpressure, opts.hold) the
 *    clock stops for them: the wait is ours, not the client's.
 *
 * 2. Connections are limited by a budget the whole process shares, derived from the file
 *    descriptor limit (RLIMIT_NOFILE, which otelmon raises to its hard limit at start, as Go
 *    programs do): the soft limit less an eighth (at least 64) for everything else the
 *    collector opens, and at most 65,536. When a new connection would pass the budget (or a
 *    server's own max_conns, or accept fails for want of descriptors), the connection whose
 *    current state began longest ago is closed to make room: the one idle longest, or the
 *    one whose request started longest ago. Connections that received bytes within the last
 *    second in the middle of a request, and those held by backpressure, are spared while any
 *    other can go; connections whose answer a handler still owes are never taken. The
 *    newcomer is always served, so no number of idle or stalled connections locks others
 *    out: an attacker's connections are closed oldest first, and each legitimate client
 *    gets its turn.
 *
 * 3. Memory per connection is bounded: the header buffer by max_header_bytes (and all of them
 *    together by a process-wide budget), a buffered body by the route's limit, pending
 *    answers by a high-water mark after which the connection is not read until its client
 *    reads.
 *
 * Host resolution: "" means all interfaces (0.0.0.0) and "localhost" means 127.0.0.1, which
 * is what otelcol (Go's net.Listen) binds for it; numeric IPv4/IPv6 addresses are bound at
 * once, so start() reports EADDRINUSE and the like synchronously. Any other name is resolved
 * with an asynchronous uv_getaddrinfo (the loop never waits on DNS) and bound in its
 * callback; failures there can only be logged.
 *
 * TLS: OpenSSL runs over memory BIOs, so libuv keeps doing all socket I/O and nothing blocks.
 * Bytes read from the socket go into the connection's read BIO and SSL_read hands the
 * plaintext to the session; answers go through SSL_write, and whatever OpenSSL puts in the
 * write BIO (handshake records, alerts, encrypted answers) is written to the socket. A failed
 * handshake closes the connection after a rate-limited warning with the peer and the reason;
 * a client speaking plain HTTP to the TLS port gets a plain 400, as Go's server answers.
 *
 * Lifetime: every connection is a heap conn_t with two handles (tcp, timer), freed when both
 * close callbacks have run and no handler still owes it an answer. Shutdown closes the
 * listener and idle connections, lets requests in progress finish for opts.shutdown_grace_ms,
 * and calls done once nothing is open and every owed answer was given.
 *
 * Threading: the loop thread only; every server of the process runs on that one thread (the
 * connection budget is shared through file statics). */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "http_internal.h"

#define LINGER_MS 2000
#define WRITE_HIGH_WATER (256 * 1024)
#define READ_BUF_SIZE (64 * 1024)
#define LISTEN_BACKLOG 511
#define BUDGET_MAX 65536
#define BUDGET_MIN_RESERVE 64
/* A request that received bytes this recently is making progress: spared by eviction while
 * another connection can go. */
#define PROGRESS_NS (1 * OM_NS_PER_S)

typedef om__http_conn_t conn_t;

struct om__http_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_shutdown_t shut;
    om_http_server_t *srv;
    conn_t *prev, *next; /* the server's LRU list while not closing */
    char peer[64];
    size_t write_pending; /* bytes given to uv_write whose callback has not run */
    int handles_open;
    bool reading, lingering, closing, eof;
    bool held;              /* not read from while the component holds intake (opts.hold) */
    bool idle_known;        /* idle_since_ns is set for the current idle period */
    uint32_t seen_requests; /* sess.requests when conn_track last looked */
    uint64_t lru_key;       /* when the current state began: the eviction order */
    uint64_t accepted_ns, idle_since_ns, last_read_ns, held_since_ns;
    uint64_t linger_until_ns, grace_until_ns;
    uint64_t armed_ns; /* the deadline the timer is set for; 0: not set */
    /* TLS only: the session (owns both memory BIOs), NULL for plaintext. */
    SSL *ssl;
    bool tls_dead;     /* a fatal TLS error: no more SSL calls but SSL_free */
    bool tls_notified; /* close_notify queued */
    /* HTTP/2: while the server serves gRPC methods, the first bytes are compared with the
     * HTTP/2 preface (held meanwhile: they are known); all of it makes h2 the session. */
    size_t preface_seen;    /* preface bytes matched so far */
    bool sniffed;           /* decided: HTTP/1.1 (sess) or HTTP/2 (h2) */
    om__h2_session_t *h2;   /* owned; NULL: HTTP/1.1 */
    om_http_session_t sess; /* last: its handler state follows */
};

typedef struct wreq {
    uv_write_t req;
    conn_t *c;
    char *data; /* owned */
    size_t len;
} wreq_t;

/* The process's started servers and the connection budget they share. */
static om_http_server_t *servers;
static size_t live_total;   /* connections not closing, all servers */
static size_t budget;       /* what the servers may hold together */
static size_t budget_fixed; /* tests: a budget that start does not re-read */

/* One read buffer for all connections of all servers: a read is consumed entirely by its
 * callback before libuv asks for the next buffer, and everything runs on one thread. */
static char rbuf[READ_BUF_SIZE];

static conn_t *conn_of(om_http_session_t *ss)
{
    return (conn_t *)(void *)((char *)ss - offsetof(conn_t, sess));
}

/* The session's state, whichever protocol the connection speaks. */
static bool conn_owed(const conn_t *c)
{
    return c->h2 != NULL ? om__h2_owed(c->h2) : c->sess.owed;
}

static bool conn_idle(const conn_t *c)
{
    return c->h2 != NULL ? om__h2_idle(c->h2) : om__http_session_idle(&c->sess);
}

/* The session wants no more input: close once what is out is written. */
static bool conn_ending(const conn_t *c)
{
    return c->h2 != NULL ? om__h2_done(c->h2) : c->sess.close;
}

/* ------------------------------------------------------------------------------------------ */
/* Configuration: the keepalive section, the cross-field rules                                */

const om_field_t om__http_keepalive_fields[] = {
    {.key = "enabled",
     .type = OM_F_BOOL,
     .offset = offsetof(om_http_keepalive_cfg_t, enabled),
     .def = "true",
     .help = "serve several requests per connection"},
    {.key = "idle_timeout",
     .type = OM_F_DURATION,
     .offset = offsetof(om_http_keepalive_cfg_t, idle_timeout),
     .def = "1m",
     .min = 0,
     .max = 9.2e18,
     .help = "how long a connection may stay silent between requests"},
    {.key = NULL},
};

static const char *const compressions[] = {"",       "gzip",    "zstd", "zlib",
                                           "snappy", "deflate", "lz4",  "x-snappy-framed"};

static const char *join_key(char *buf, size_t n, const char *at, const char *key)
{
    snprintf(buf, n, "%s%s%s", at != NULL ? at : "", at != NULL && at[0] ? "::" : "", key);
    return buf;
}

static bool header_text_ok(const char *s)
{
    return s != NULL && strpbrk(s, "\r\n") == NULL;
}

static int validate_headers(const om_strmap_t *m, const char *at, om_err_t *err)
{
    char k[160];
    for (size_t i = 0; i < m->n; i++) {
        if (m->keys[i][0] == '\0' || strpbrk(m->keys[i], " \t:") != NULL ||
            !header_text_ok(m->keys[i]) || !header_text_ok(m->values[i])) {
            om_err_at(err, join_key(k, sizeof k, at, "response_headers"),
                      "invalid header \"%.64s\"", m->keys[i]);
            return OM_ECONFIG;
        }
    }
    return 0;
}

static int validate_compressions(const om_strlist_t *l, const char *at, om_err_t *err)
{
    char k[160];
    for (size_t i = 0; i < l->n; i++) {
        bool known = false;
        for (size_t j = 0; j < sizeof compressions / sizeof compressions[0]; j++) {
            known = known || strcasecmp(l->items[i], compressions[j]) == 0;
        }
        if (!known) {
            om_err_at(err, join_key(k, sizeof k, at, "compression_algorithms"),
                      "unsupported compression algorithm \"%.32s\"", l->items[i]);
            return OM_ECONFIG;
        }
    }
    return 0;
}

int om_http_server_cfg_validate(const om_http_server_cfg_t *cfg, const char *at, om_err_t *err)
{
    char k[160];
    if (cfg->tls_present) {
        int rc = om_tls_server_validate(&cfg->tls, 0, join_key(k, sizeof k, at, "tls"), err);
        if (rc != 0) {
            return rc;
        }
    }
    /* As otelcol: the older keys may not be mixed with the keepalive section. The older ones
     * count as written when they differ from their defaults. */
    if (cfg->keepalive_present &&
        (!cfg->keep_alives_enabled || cfg->idle_timeout != 60 * OM_NS_PER_S)) {
        om_err_at(err, join_key(k, sizeof k, at, "keepalive"),
                  "cannot use deprecated keepalive fields (idle_timeout, keep_alives_enabled) "
                  "alongside the 'keepalive' section");
        return OM_ECONFIG;
    }
    int rc = validate_headers(&cfg->response_headers, at, err);
    return rc != 0 ? rc : validate_compressions(&cfg->compression_algorithms, at, err);
}

void om_http_server_cfg_defaults(om_http_server_cfg_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->max_request_body_size = 20 << 20;
    cfg->read_header_timeout = 60 * OM_NS_PER_S;
    cfg->write_timeout = 30 * OM_NS_PER_S;
    cfg->idle_timeout = 60 * OM_NS_PER_S;
    cfg->keep_alives_enabled = true;
    cfg->keepalive.enabled = true;
    cfg->keepalive.idle_timeout = 60 * OM_NS_PER_S;
}

bool om_http_server_cfg_accepts(const om_http_server_cfg_t *cfg, const char *name)
{
    const om_strlist_t *l = &cfg->compression_algorithms;
    if (l->n == 0) {
        return true;
    }
    if (strcasecmp(name, "identity") == 0) {
        name = "";
    }
    for (size_t i = 0; i < l->n; i++) {
        if (strcasecmp(l->items[i], name) == 0) {
            return true;
        }
    }
    return false;
}

/* ------------------------------------------------------------------------------------------ */
/* The budget and the LRU list                                                                */

static void lru_remove(conn_t *c)
{
    om_http_server_t *s = c->srv;
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        s->lru_head = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    } else {
        s->lru_tail = c->prev;
    }
    c->prev = c->next = NULL;
}

static void lru_append(conn_t *c)
{
    om_http_server_t *s = c->srv;
    c->prev = s->lru_tail;
    c->next = NULL;
    if (s->lru_tail != NULL) {
        s->lru_tail->next = c;
    } else {
        s->lru_head = c;
    }
    s->lru_tail = c;
}

/* The soft descriptor limit less a reserve for everything else, within [1, BUDGET_MAX]. */
static size_t fd_budget(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) {
        return BUDGET_MAX;
    }
    size_t soft = (size_t)rl.rlim_cur;
    size_t reserve = soft / 8 > BUDGET_MIN_RESERVE ? soft / 8 : BUDGET_MIN_RESERVE;
    size_t b = soft > reserve ? soft - reserve : 1;
    return b > BUDGET_MAX ? BUDGET_MAX : b;
}

static void server_register(om_http_server_t *s)
{
    if (!s->registered) {
        s->registered = true;
        s->next_server = servers;
        servers = s;
    }
    budget = budget_fixed != 0 ? budget_fixed : fd_budget(); /* the limit may have changed */
}

void om__http_budget_set(size_t n)
{
    budget_fixed = n;
    budget = n != 0 ? n : fd_budget();
}

static void server_unregister(om_http_server_t *s)
{
    if (!s->registered) {
        return;
    }
    s->registered = false;
    for (om_http_server_t **p = &servers; *p != NULL; p = &(*p)->next_server) {
        if (*p == s) {
            *p = s->next_server;
            break;
        }
    }
}

/* The first connection of s that may be closed to make room (see the file comment). */
static conn_t *victim_of(const om_http_server_t *s, bool strict, uint64_t now)
{
    /* Bounded by the server's connections; in practice the head qualifies. */
    for (conn_t *c = s->lru_head; c != NULL; c = c->next) {
        if (conn_owed(c)) {
            continue;
        }
        if (strict &&
            (c->held || (!conn_idle(c) && now - c->last_read_ns < (uint64_t)PROGRESS_NS))) {
            continue;
        }
        return c;
    }
    return NULL;
}

/* Over the process budget: the oldest candidate among all servers. */
static conn_t *victim_anywhere(bool strict, uint64_t now)
{
    conn_t *best = NULL;
    for (om_http_server_t *s = servers; s != NULL; s = s->next_server) {
        conn_t *c = victim_of(s, strict, now);
        if (c != NULL && (best == NULL || c->lru_key < best->lru_key)) {
            best = c;
        }
    }
    return best;
}

static void conn_close(conn_t *c);

static void evict(om_http_server_t *s, conn_t *v, uint64_t now)
{
    const char *what = conn_idle(v) ? "idle" : "in a request";
    om__warn_limited(&s->warn, s->o.log_name,
                     "connection limit (%zu) reached: closed the connection from %s (%s for "
                     "%.1f s) to take a new one",
                     s->o.max_conns != 0 && s->n_live >= s->o.max_conns ? s->o.max_conns : budget,
                     v->peer, what, (double)(now - v->lru_key) / (double)OM_NS_PER_S);
    v->srv->evictions++;
    conn_close(v);
}

/* Make room for one more connection of s. False when nothing can be closed. */
static bool make_room(om_http_server_t *s, bool force)
{
    bool over_own = s->o.max_conns != 0 && s->n_live >= s->o.max_conns;
    if (!force && !over_own && live_total < budget) {
        return true;
    }
    uint64_t now = uv_hrtime();
    conn_t *v = over_own ? victim_of(s, true, now) : victim_anywhere(true, now);
    if (v == NULL) {
        v = over_own ? victim_of(s, false, now) : victim_anywhere(false, now);
    }
    if (v == NULL) {
        return false;
    }
    evict(s, v, now);
    return true;
}

/* ------------------------------------------------------------------------------------------ */
/* Deadlines                                                                                  */

static uint64_t dmin(uint64_t a, uint64_t b)
{
    return a == 0 ? b : b == 0 ? a : a < b ? a : b;
}

static uint64_t after(uint64_t base, uint64_t dur)
{
    return dur == 0 ? 0 : base + dur;
}

/* Go bounds a TLS handshake by the smallest of the three read and write timeouts. */
static uint64_t handshake_ns(const om_http_server_t *s)
{
    return dmin(dmin(s->header_ns, s->read_ns), s->write_ns);
}

/* When the connection must be closed (ns, uv_hrtime clock), from its state; 0: never. */
static uint64_t conn_deadline(const conn_t *c)
{
    const om_http_server_t *s = c->srv;
    const om_http_session_t *ss = &c->sess;
    if (c->lingering) {
        return c->linger_until_ns;
    }
    uint64_t d = s->shutting_down ? c->grace_until_ns : 0;
    if (c->held) {
        return d;
    }
    uint64_t hdr = s->header_ns != 0 ? s->header_ns : s->read_ns;
    uint64_t idle = s->idle_ns != 0 ? s->idle_ns : s->read_ns;
    if (c->ssl != NULL && !SSL_is_init_finished(c->ssl)) {
        d = dmin(d, after(c->accepted_ns, handshake_ns(s)));
    }
    if (c->h2 != NULL) {
        /* HTTP/2: an idle connection may stay for idle_timeout; a call whose request stops
         * arriving is dropped with its connection after idle_timeout without a byte; a
         * call's own deadline (grpc-timeout) is answered by the session. */
        if (om__h2_idle(c->h2) && c->write_pending == 0) {
            d = dmin(d, after(c->idle_since_ns, idle));
        } else if (!om__h2_owed(c->h2)) {
            d = dmin(d, after(c->last_read_ns, idle));
        }
        return dmin(d, om__h2_next_deadline(c->h2));
    }
    switch (ss->req.phase) {
    case OM__REQ_NONE:
        if (ss->requests == 0) {
            d = dmin(d, after(c->accepted_ns, hdr));
        } else if (c->write_pending == 0 && !ss->owed) {
            d = dmin(d, after(c->idle_since_ns, idle));
        }
        break;
    case OM__REQ_HEADERS:
        d = dmin(d, after(ss->msg_begin_ns, hdr));
        d = dmin(d, after(ss->msg_begin_ns, s->read_ns));
        break;
    case OM__REQ_BODY:
        d = dmin(d, after(ss->msg_begin_ns, s->read_ns));
        d = dmin(d, after(c->last_read_ns, idle != 0 ? idle : hdr));
        break;
    default:
        break;
    }
    if (ss->req.phase >= OM__REQ_BODY || ss->owed || c->write_pending > 0) {
        d = dmin(d, after(ss->headers_done_ns, s->write_ns));
    }
    return d;
}

static void on_timer(uv_timer_t *t);

/* Set the timer for the current deadline. Deadlines that move later (a body trickling in)
 * leave the timer alone: it fires early, finds time left and is set again. */
static void conn_arm(conn_t *c)
{
    uint64_t d = conn_deadline(c);
    if (d == 0) {
        if (c->armed_ns != 0) {
            uv_timer_stop(&c->timer);
            c->armed_ns = 0;
        }
        return;
    }
    if (c->armed_ns != 0 && c->armed_ns <= d) {
        return;
    }
    uint64_t now = uv_hrtime();
    uint64_t ms = d > now ? (d - now + OM_NS_PER_MS - 1) / OM_NS_PER_MS : 0;
    c->armed_ns = d;
    uv_timer_start(&c->timer, on_timer, ms, 0);
}

static const char *timeout_reason(const conn_t *c)
{
    if (c->lingering) {
        return NULL; /* the normal end of a lingering close */
    }
    if (c->srv->shutting_down) {
        return "still busy after the shutdown grace period";
    }
    if (c->ssl != NULL && !SSL_is_init_finished(c->ssl)) {
        return "TLS handshake timed out";
    }
    if (c->h2 != NULL) {
        return om__h2_idle(c->h2) ? "idle timeout" : "a call's request stopped arriving";
    }
    switch (c->sess.req.phase) {
    case OM__REQ_NONE:
        return c->sess.requests > 0 ? "idle timeout" : "no request within read_header_timeout";
    case OM__REQ_HEADERS:
        return "headers not received in time";
    case OM__REQ_BODY:
        return "body not received in time";
    default:
        return "answer not written within write_timeout";
    }
}

static void conn_flush(conn_t *c);
static void conn_settle(conn_t *c);

static void on_timer(uv_timer_t *t)
{
    conn_t *c = t->data;
    c->armed_ns = 0;
    uint64_t call_d = c->h2 != NULL ? om__h2_next_deadline(c->h2) : 0;
    if (call_d != 0 && call_d <= uv_hrtime()) {
        om__h2_expire(c->h2, uv_hrtime()); /* answers the calls out of time */
        conn_flush(c);
        conn_settle(c);
        return;
    }
    uint64_t d = conn_deadline(c);
    if (d == 0 || d > uv_hrtime()) {
        conn_arm(c);
        return;
    }
    const char *why = timeout_reason(c);
    if (why != NULL) {
        OM_CLOG(c->srv->o.log_name, OM_LOG_DEBUG, "closing %s: %s", c->peer, why);
    }
    conn_close(c);
}

/* ------------------------------------------------------------------------------------------ */
/* Connections                                                                                */

static void maybe_done(om_http_server_t *s)
{
    if (!s->shutting_down || s->done_called || s->pending_closes > 0 || s->n_conns > 0 ||
        s->gai_pending) {
        return;
    }
    server_unregister(s);
    s->done_called = true;
    if (s->done != NULL) {
        s->done(s->done_arg);
    }
}

/* Both handles are closed and no answer is owed any more: free. */
static void conn_free_if_done(conn_t *c)
{
    if (c->handles_open > 0 || conn_owed(c)) {
        return;
    }
    om_http_server_t *s = c->srv;
    s->n_conns--;
    om__http_session_release(&c->sess);
    om__h2_release(c->h2);
    SSL_free(c->ssl);
    om_free(c);
    maybe_done(s);
}

static void on_conn_handle_closed(uv_handle_t *h)
{
    conn_t *c = h->data;
    c->handles_open--;
    conn_free_if_done(c);
}

static void conn_close(conn_t *c)
{
    if (c->closing) {
        return;
    }
    c->closing = true;
    lru_remove(c);
    live_total--;
    c->srv->n_live--;
    /* A handler owing an answer is told (cancel); the memory stays until it answers. */
    (void)om__http_session_close(&c->sess);
    if (c->h2 != NULL) {
        (void)om__h2_close(c->h2);
    }
    uv_close((uv_handle_t *)&c->tcp, on_conn_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
}

static void addr_name(const struct sockaddr *sa, char *out, size_t n)
{
    char ip[48] = "?";
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
        uv_ip6_name(a, ip, sizeof ip);
        snprintf(out, n, "[%s]:%d", ip, ntohs(a->sin6_port));
        return;
    }
    const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
    uv_ip4_name(a, ip, sizeof ip);
    snprintf(out, n, "%s:%d", ip, ntohs(a->sin_port));
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
    (void)h;
    (void)suggested;
    *buf = uv_buf_init(rbuf, sizeof rbuf);
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

/* All answers are written and the session wants the connection closed: half-close and drain
 * input for a bounded time (see the file comment). */
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
    c->linger_until_ns = uv_hrtime() + c->srv->linger_ms * (uint64_t)OM_NS_PER_MS;
    conn_arm(c);
}

/* The eviction order follows the start of the connection's current state. */
static void conn_track(conn_t *c)
{
    const om_http_session_t *ss = &c->sess;
    if (ss->requests != c->seen_requests) {
        c->seen_requests = ss->requests; /* requests came and went since: a new idle period */
        c->idle_known = false;
    }
    uint64_t key;
    if (c->h2 != NULL) {
        /* A connection with calls in progress counts from its last read, an idle one from
         * when it became idle. */
        bool idle = om__h2_idle(c->h2) && c->write_pending == 0;
        if (idle && !c->idle_known) {
            c->idle_known = true;
            c->idle_since_ns = uv_hrtime();
        } else if (!idle) {
            c->idle_known = false;
        }
        key = idle ? c->idle_since_ns : c->last_read_ns;
    } else if (ss->req.phase != OM__REQ_NONE || ss->owed) {
        c->idle_known = false;
        key = ss->msg_begin_ns;
    } else if (ss->requests == 0) {
        key = c->accepted_ns;
    } else {
        if (!c->idle_known && c->write_pending == 0) {
            c->idle_known = true;
            c->idle_since_ns = uv_hrtime();
        }
        key = c->idle_known ? c->idle_since_ns : ss->msg_begin_ns;
    }
    if (key != c->lru_key) {
        c->lru_key = key;
        lru_remove(c);
        lru_append(c);
    }
}

static bool tls_close_notify(conn_t *c);

/* Stop reading while the component holds intake; the clock stops too (see conn_unhold). */
static void conn_hold(conn_t *c)
{
    c->held = true;
    c->held_since_ns = uv_hrtime();
    conn_read(c, false);
    conn_arm(c);
}

/* What to do once the write queue may have changed or input was consumed. */
static void conn_settle(conn_t *c)
{
    if (c->closing) {
        return;
    }
    om_http_server_t *s = c->srv;
    conn_track(c);
    bool owed = conn_owed(c);
    if (!owed && c->write_pending == 0 && (conn_ending(c) || c->tls_dead || c->eof)) {
        if (!tls_close_notify(c)) {
            conn_linger(c);
        }
        return;
    }
    if (s->shutting_down && c->write_pending == 0 && conn_idle(c)) {
        conn_close(c);
        return;
    }
    /* A client that pipelines without reading our answers is not read from until they
     * drain; one read of input produces a bounded amount of output, so this bounds the
     * queue. An HTTP/1.1 answer owed: nothing more is read until it is given (HTTP/2 reads
     * on: its calls are independent, and bounded by the streams a connection may open). */
    if ((owed && c->h2 == NULL) || conn_ending(c) || c->eof || c->held) {
        conn_read(c, false);
    } else if (!s->shutting_down && s->o.hold != NULL && s->o.hold(s->o.arg)) {
        conn_hold(c);
        return;
    } else if (c->write_pending > WRITE_HIGH_WATER) {
        conn_read(c, false);
    } else if (c->write_pending < WRITE_HIGH_WATER / 4) {
        conn_read(c, true);
    }
    conn_arm(c);
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

/* Send data (om_malloc'd; ownership moves here on every path) to the socket: written at once
 * when the socket takes it all (the usual case for an answer: no request object, no write
 * callback, and no epoll_ctl that libuv makes after every queued write completes), the rest
 * queued. libuv refuses the direct write while earlier writes are queued, so order holds. */
static void conn_write(conn_t *c, char *data, size_t len)
{
    if (data == NULL || c->closing) {
        om_free(data);
        conn_close(c);
        return;
    }
    uv_buf_t b = uv_buf_init(data, (unsigned)len);
    int k = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (k == (int)len) {
        om_free(data);
        return;
    }
    if (k < 0 && k != UV_EAGAIN) {
        om_free(data);
        conn_close(c);
        return;
    }
    size_t done = k > 0 ? (size_t)k : 0;
    wreq_t *w = om_malloc(sizeof *w);
    if (w == NULL) {
        om_free(data);
        conn_close(c);
        return;
    }
    w->c = c;
    w->data = data;
    w->len = len - done;
    w->req.data = w;
    b = uv_buf_init(data + done, (unsigned)(len - done));
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write) != 0) {
        om_free(data);
        om_free(w);
        conn_close(c);
        return;
    }
    c->write_pending += len - done;
}

/* ------------------------------------------------------------------------------------------ */
/* TLS over memory BIOs (see the file comment)                                                */

#define PLAIN_HTTP_REPLY                                                                           \
    "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"

static bool tls_init(conn_t *c)
{
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

/* The session hands over answer bytes (owned): to the socket, through TLS when on. */
static void conn_emit(om_http_session_t *ss, char *data, size_t len)
{
    conn_t *c = conn_of(ss);
    if (c->closing || c->tls_dead) {
        om_free(data);
        return;
    }
    if (c->ssl == NULL) {
        conn_write(c, data, len);
        return;
    }
    /* Memory BIOs never push back, so SSL_write takes the whole buffer in one call. */
    ERR_clear_error();
    int k = SSL_write(c->ssl, data, (int)len);
    om_free(data);
    if (k <= 0) {
        ERR_clear_error();
        conn_close(c);
        return;
    }
    tls_send_pending(c);
}

/* ------------------------------------------------------------------------------------------ */
/* HTTP/1.1 or HTTP/2                                                                         */

static void h2_emit(void *arg, char *data, size_t len)
{
    conn_emit(&((conn_t *)arg)->sess, data, len);
}

static void conn_wake_common(conn_t *c);

static void h2_wake(void *arg)
{
    conn_wake_common(arg);
}

static bool h2_start(conn_t *c)
{
    c->h2 = om__h2_session_new(c->srv, c->peer);
    if (c->h2 == NULL) {
        return false;
    }
    om__h2_session_hooks(c->h2, h2_emit, h2_wake, c);
    if (c->srv->shutting_down) {
        om__h2_goaway(c->h2);
    }
    return true;
}

/* Plaintext from the client, to the session its first bytes chose (see conn_t.sniffed). */
static void conn_feed(conn_t *c, const char *data, size_t n)
{
    static const char preface[] = OM__H2_PREFACE;
    const size_t plen = sizeof preface - 1;
    if (!c->sniffed && n > 0) {
        size_t k = plen - c->preface_seen < n ? plen - c->preface_seen : n;
        if (c->srv->n_grpc_routes > 0 && memcmp(data, preface + c->preface_seen, k) == 0) {
            c->preface_seen += k;
            if (c->preface_seen < plen) {
                return; /* all of it so far: wait for the rest */
            }
            c->sniffed = true;
            if (!h2_start(c)) {
                conn_close(c);
                return;
            }
            om__h2_feed(c->h2, preface, plen);
            data += k;
            n -= k;
            if (n == 0) {
                return;
            }
        } else {
            c->sniffed = true;
            if (c->preface_seen > 0) {
                om_http_session_feed(&c->sess, preface, c->preface_seen);
            }
        }
    }
    if (c->h2 != NULL) {
        if (n > 0) {
            om__h2_feed(c->h2, data, n);
        }
        return; /* the end of input: conn_settle closes once the calls are answered */
    }
    om_http_session_feed(&c->sess, data, n);
}

static void conn_flush(conn_t *c)
{
    if (c->h2 != NULL) {
        om__h2_flush(c->h2);
    } else {
        om__http_session_flush(&c->sess);
    }
}

static void tls_fail(conn_t *c)
{
    unsigned long e = ERR_peek_last_error();
    bool handshake = !SSL_is_init_finished(c->ssl);
    char reason[200];
    om_tls_err_reason(c->ssl, reason, sizeof reason);
    c->tls_dead = true; /* after a fatal error OpenSSL must not be asked to shut down */
    c->sess.close = true;
    if (handshake && ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) == SSL_R_HTTP_REQUEST) {
        /* The client does not speak TLS: drop OpenSSL's alert, answer in plain HTTP. */
        (void)BIO_reset(SSL_get_wbio(c->ssl));
        conn_write(c, om_strdup(PLAIN_HTTP_REPLY), strlen(PLAIN_HTTP_REPLY));
        snprintf(reason, sizeof reason, "a plain HTTP request on the TLS port (answered 400)");
    }
    om__warn_limited(&c->srv->warn, c->srv->o.log_name, "%s %s: %s",
                     handshake ? "TLS handshake failed with" : "TLS error from", c->peer, reason);
}

/* Received ciphertext: into the read BIO, then every plaintext byte it completes goes to the
 * session. Bounded: each SSL_read consumes buffered input, which is at most one socket read
 * plus a partial record. */
static void tls_feed(conn_t *c, const char *data, size_t n)
{
    if (c->tls_dead || conn_ending(c)) {
        return; /* no more requests: dropped unread, as the session drops plaintext */
    }
    if (BIO_write(SSL_get_rbio(c->ssl), data, (int)n) != (int)n) {
        ERR_clear_error();
        conn_close(c);
        return;
    }
    /* data was the read buffer, whose bytes are in the BIO now: reuse it. */
    while (!c->closing && !conn_ending(c) && !(c->h2 == NULL && c->sess.owed)) {
        ERR_clear_error();
        int k = SSL_read(c->ssl, rbuf, (int)sizeof rbuf);
        if (k > 0) {
            conn_feed(c, rbuf, (size_t)k);
            continue;
        }
        int e = SSL_get_error(c->ssl, k);
        if (e == SSL_ERROR_WANT_READ) {
            break;
        }
        if (e == SSL_ERROR_ZERO_RETURN) {
            /* close_notify: the client has finished sending. */
            c->eof = true;
            conn_feed(c, NULL, 0);
            break;
        }
        tls_fail(c);
        break;
    }
    tls_send_pending(c); /* handshake records */
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

/* ------------------------------------------------------------------------------------------ */
/* Reading                                                                                    */

/* Input a TLS record held back while an answer was owed (SSL_read stops then). */
static void tls_drain(conn_t *c)
{
    if (c->ssl != NULL && !c->tls_dead && !c->closing) {
        tls_feed(c, "", 0);
    }
}

/* A handler answered later: send it, then go on with the input that waited. */
static void conn_wake_common(conn_t *c)
{
    if (c->closing) {
        conn_free_if_done(c);
        return;
    }
    conn_flush(c);
    if (c->h2 == NULL) {
        om_http_session_resume(&c->sess);
        tls_drain(c);
        conn_flush(c);
    }
    conn_settle(c);
}

static void conn_wake(om_http_session_t *ss)
{
    conn_wake_common(conn_of(ss));
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    conn_t *c = st->data;
    if (nread == 0 || c->closing) {
        return;
    }
    if (nread < 0) {
        /* The client went away; or it only stopped sending, and may still read our answers
         * (one owed by a handler included). */
        if (nread != UV_EOF || c->lingering) {
            conn_close(c);
            return;
        }
        c->eof = true;
        conn_feed(c, NULL, 0);
        conn_read(c, false);
        conn_flush(c);
        conn_settle(c);
        return;
    }
    if (c->lingering) {
        return; /* draining a refused body: drop it */
    }
    c->last_read_ns = uv_hrtime();
    if (c->ssl != NULL) {
        tls_feed(c, buf->base, (size_t)nread);
    } else {
        conn_feed(c, buf->base, (size_t)nread);
    }
    if (!c->closing) {
        conn_flush(c);
    }
    conn_settle(c);
}

/* ------------------------------------------------------------------------------------------ */
/* Accepting                                                                                  */

static void on_refused_closed(uv_handle_t *h)
{
    om_http_server_t *s = h->data;
    om_free(h);
    s->pending_closes--;
    maybe_done(s);
}

/* Nothing can be closed to make room (every connection is owed an answer) or no memory:
 * accept and close at once, so the backlog does not stall. */
static void refuse_connection(om_http_server_t *s)
{
    uv_tcp_t *t = om_malloc(sizeof *t);
    if (t == NULL || uv_tcp_init(s->o.loop, t) != 0) {
        om_free(t);
        return;
    }
    t->data = s;
    s->pending_closes++;
    (void)uv_accept((uv_stream_t *)&s->listener, (uv_stream_t *)t);
    uv_close((uv_handle_t *)t, on_refused_closed);
    om__warn_limited(&s->warn, s->o.log_name, "connection refused: %zu connections open",
                     s->n_conns);
}

static conn_t *conn_new(om_http_server_t *s)
{
    conn_t *c = om_malloc(sizeof *c + s->o.req_state_size);
    if (c == NULL) {
        return NULL;
    }
    memset(c, 0, offsetof(conn_t, sess));
    if (uv_tcp_init(s->o.loop, &c->tcp) != 0) {
        om_free(c);
        return NULL;
    }
    uv_timer_init(s->o.loop, &c->timer);
    c->srv = s;
    c->tcp.data = c->timer.data = c;
    c->handles_open = 2;
    c->accepted_ns = c->lru_key = c->last_read_ns = uv_hrtime();
    om__http_session_init(&c->sess, s, c->peer);
    c->sess.emit = conn_emit;
    c->sess.wake = conn_wake;
    s->n_conns++;
    s->n_live++;
    live_total++;
    lru_append(c);
    return c;
}

static void on_connection(uv_stream_t *server, int status)
{
    om_http_server_t *s = server->data;
    if (s->shutting_down) {
        return;
    }
    if (status < 0) {
        /* Out of descriptors: libuv dropped that connection; free one for the next. */
        if (status == UV_EMFILE || status == UV_ENFILE) {
            (void)make_room(s, true);
        }
        return;
    }
    conn_t *c = make_room(s, false) ? conn_new(s) : NULL;
    if (c == NULL) {
        refuse_connection(s);
        return;
    }
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
    conn_settle(c); /* starts reading, unless the component holds intake */
}

void om_http_server_resume(om_http_server_t *s)
{
    uint64_t now = uv_hrtime();
    for (conn_t *c = s->lru_head; c != NULL;) {
        conn_t *next = c->next; /* settle may move c to the tail */
        if (c->held) {
            /* The time held was ours: move the connection's clock on by it. */
            uint64_t d = now - c->held_since_ns;
            c->held = false;
            c->accepted_ns += d;
            c->idle_since_ns += d;
            c->last_read_ns += d;
            c->sess.msg_begin_ns += d;
            c->sess.headers_done_ns += d;
            conn_settle(c);
        }
        c = next;
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Listening                                                                                  */

static void on_listener_closed(uv_handle_t *h)
{
    om_http_server_t *s = h->data;
    s->pending_closes--;
    maybe_done(s);
}

static void close_listener(om_http_server_t *s)
{
    if (!s->listener_open) {
        return;
    }
    s->listener_open = false;
    s->pending_closes++;
    uv_close((uv_handle_t *)&s->listener, on_listener_closed);
}

static const char *endpoint_of(const om_http_server_t *s)
{
    return s->cfg->endpoint != NULL ? s->cfg->endpoint : s->o.default_endpoint;
}

static int bind_listen(om_http_server_t *s, const struct sockaddr *addr, om_err_t *err)
{
    int rc = uv_tcp_init(s->o.loop, &s->listener);
    if (rc != 0) {
        om_err_set(err, OM_EIO, "failed to bind to address %s: %s", endpoint_of(s),
                   uv_strerror(rc));
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
        om_err_set(err, OM_EIO, "failed to bind to address %s: %s", endpoint_of(s),
                   uv_strerror(rc));
        close_listener(s);
        return OM_EIO;
    }
    char name[64];
    addr_name((const struct sockaddr *)&ss, name, sizeof name);
    s->bound_port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                             : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (s->o.on_listen != NULL) {
        s->o.on_listen(s->o.arg, name, s->bound_port);
    }
    return 0;
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    om_http_server_t *s = req->data;
    s->gai_pending = false;
    if (s->shutting_down) {
        uv_freeaddrinfo(res);
        maybe_done(s);
        return;
    }
    if (status != 0 || res == NULL) {
        OM_CLOG(s->o.log_name, OM_LOG_ERROR, "cannot resolve %s: %s", s->host, uv_strerror(status));
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
        OM_CLOG(s->o.log_name, OM_LOG_ERROR, "%s", err.msg);
    }
    uv_freeaddrinfo(res);
}

static int resolve_async(om_http_server_t *s, om_err_t *err)
{
    char port[16];
    snprintf(port, sizeof port, "%d", s->port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    s->gai.data = s;
    int rc = uv_getaddrinfo(s->o.loop, &s->gai, on_resolved, s->host, port, &hints);
    if (rc != 0) {
        om_err_set(err, OM_EIO, "resolve %s: %s", s->host, uv_strerror(rc));
        return OM_EIO;
    }
    s->gai_pending = true;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* The server                                                                                 */

static char *format_headers(const om_strmap_t *m)
{
    if (m->n == 0) {
        return NULL;
    }
    om_strbuf_t sb;
    om_strbuf_init(&sb, 0);
    for (size_t i = 0; i < m->n; i++) {
        om_strbuf_printf(&sb, "%s: %s\r\n", m->keys[i], m->values[i]);
    }
    if (sb.failed) {
        om_strbuf_free(&sb);
        return NULL;
    }
    return om_strbuf_steal(&sb, NULL);
}

static uint64_t ns_of(int64_t d)
{
    return d > 0 ? (uint64_t)d : 0;
}

int om_http_server_new(const om_http_server_opts_t *opts, om_http_server_t **out, om_err_t *err)
{
    om_http_server_t *s = om_calloc(1, sizeof *s);
    if (s == NULL) {
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    s->o = *opts;
    const om_http_server_cfg_t *cfg = opts->cfg;
    s->cfg = cfg;
    s->bound_port = -1;
    s->linger_ms = LINGER_MS;
    s->keep_alive = cfg->keepalive_present ? cfg->keepalive.enabled : cfg->keep_alives_enabled;
    s->max_body = cfg->max_request_body_size;
    s->read_ns = ns_of(cfg->read_timeout);
    s->header_ns = ns_of(cfg->read_header_timeout);
    s->write_ns = ns_of(cfg->write_timeout);
    s->idle_ns = ns_of(cfg->keepalive_present ? cfg->keepalive.idle_timeout : cfg->idle_timeout);
    s->resp_headers = format_headers(&cfg->response_headers);
    int rc = cfg->response_headers.n > 0 && s->resp_headers == NULL ? OM_ENOMEM : 0;
    if (rc != 0) {
        om_err_set(err, rc, "out of memory");
    } else {
        const char *ep = endpoint_of(s);
        rc = om_parse_endpoint(ep != NULL ? ep : "localhost:0", &s->host, &s->port, err);
    }
    if (rc != 0) {
        om_free(s->resp_headers);
        om_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

int om_http_server_route(om_http_server_t *s, const char *pattern, unsigned methods,
                         const om_http_handler_t *h, void *arg, uint64_t max_body, om_err_t *err)
{
    if (pattern == NULL || pattern[0] != '/' || h == NULL) {
        om_err_set(err, OM_EINVAL, "HTTP route \"%s\": must start with '/'",
                   pattern != NULL ? pattern : "");
        return OM_EINVAL;
    }
    for (size_t i = 0; i < s->n_routes; i++) {
        if (strcmp(s->routes[i].pattern, pattern) == 0 &&
            (s->routes[i].methods & methods) == methods) {
            om_err_set(err, OM_EINVAL, "HTTP route \"%s\" is served twice", pattern);
            return OM_EINVAL;
        }
    }
    om__http_route_t *r = om_realloc(s->routes, (s->n_routes + 1) * sizeof *r);
    char *p = r != NULL ? om_strdup(pattern) : NULL;
    if (r != NULL) {
        s->routes = r;
    }
    if (p == NULL) {
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    size_t len = strlen(p);
    s->routes[s->n_routes++] = (om__http_route_t){.pattern = p,
                                                  .len = len,
                                                  .subtree = p[len - 1] == '/',
                                                  .methods = methods,
                                                  .h = h,
                                                  .arg = arg,
                                                  .max_body = max_body};
    return 0;
}

int om_http_server_grpc(om_http_server_t *s, const char *path, const om_grpc_handler_t *h,
                        void *arg, uint64_t max_msg, om_err_t *err)
{
    if (path == NULL || path[0] != '/' || h == NULL || h->call == NULL) {
        om_err_set(err, OM_EINVAL, "gRPC method \"%s\": must start with '/'",
                   path != NULL ? path : "");
        return OM_EINVAL;
    }
    for (size_t i = 0; i < s->n_grpc_routes; i++) {
        if (strcmp(s->grpc_routes[i].path, path) == 0) {
            om_err_set(err, OM_EINVAL, "gRPC method \"%s\" is served twice", path);
            return OM_EINVAL;
        }
    }
    om__grpc_route_t *r = om_realloc(s->grpc_routes, (s->n_grpc_routes + 1) * sizeof *r);
    char *p = r != NULL ? om_strdup(path) : NULL;
    if (r != NULL) {
        s->grpc_routes = r;
    }
    if (p == NULL) {
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    s->grpc_routes[s->n_grpc_routes++] =
        (om__grpc_route_t){.path = p, .h = h, .arg = arg, .max_msg = max_msg};
    return 0;
}

/* Read and parse the TLS material (synchronously: see om_tls_server_pem_load) into the
 * context every connection is served with. */
static int tls_setup(om_http_server_t *s, om_err_t *err)
{
    char at[160];
    const char *base = s->o.cfg_at;
    join_key(at, sizeof at, base, "tls");
    om_tls_pem_t pem;
    int rc = om_tls_server_pem_load(&s->cfg->tls, at, &pem, err);
    if (rc != 0) {
        return rc;
    }
    s->ssl_ctx = om_tls_server_ctx_new(
        &s->cfg->tls, &pem, s->n_grpc_routes > 0 ? OM_TLS_ALPN_H2 : OM_TLS_ALPN_HTTP11, at, err);
    om_tls_pem_free(&pem);
    if (s->ssl_ctx == NULL) {
        return err->code != 0 ? err->code : OM_ECONFIG;
    }
    return 0;
}

/* The host to bind: "" is all interfaces, localhost is 127.0.0.1, brackets go. */
static const char *bind_host(const char *h, char *buf, size_t cap)
{
    size_t n = strlen(h);
    if (n >= 2 && h[0] == '[' && h[n - 1] == ']' && n - 2 < cap) {
        memcpy(buf, h + 1, n - 2); /* a bracketed IPv6 literal */
        buf[n - 2] = '\0';
        h = buf;
    }
    if (h[0] == '\0') {
        return "0.0.0.0";
    }
    if (strcasecmp(h, "localhost") == 0) {
        return "127.0.0.1"; /* what Go's net.Listen binds for it */
    }
    return h;
}

int om_http_server_start(om_http_server_t *s, om_err_t *err)
{
    if (s->started || s->shutting_down || s->o.loop == NULL) {
        om_err_set(err, OM_EINVAL, "HTTP server started twice or without a loop");
        return OM_EINVAL;
    }
    if (s->cfg->auth.authenticator != NULL && s->auth == NULL) {
        /* The transport label of the authentication metrics: a server of gRPC methods only is
         * the OTLP receiver's gRPC protocol. */
        const char *transport = s->n_routes == 0 && s->n_grpc_routes > 0 ? "grpc" : "http";
        int rc =
            om_auth_server_new(s->o.host, &s->cfg->auth, s->o.log_name, transport, &s->auth, err);
        if (rc != 0) {
            return rc;
        }
    }
    s->started = true;
    if (s->cfg->tls_present) {
        int rc = tls_setup(s, err);
        if (rc != 0) {
            return rc;
        }
    }
    server_register(s);
    char buf[64];
    const char *h = bind_host(s->host, buf, sizeof buf);
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

void om_http_server_shutdown(om_http_server_t *s, om_done_fn done, void *arg)
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
    uint64_t grace_until = uv_hrtime() + s->o.shutdown_grace_ms * (uint64_t)OM_NS_PER_MS;
    for (conn_t *c = s->lru_head; c != NULL;) {
        conn_t *next = c->next; /* conn_close unlinks c */
        c->sess.close_after = true;
        if (c->h2 != NULL) {
            om__h2_goaway(c->h2);
            conn_flush(c);
        }
        if (c->lingering || s->o.shutdown_grace_ms == 0 ||
            (c->write_pending == 0 && conn_idle(c))) {
            conn_close(c);
        } else {
            /* A request is arriving or being answered: give it a short while. */
            c->grace_until_ns = grace_until;
            c->held = false;
            conn_settle(c); /* reads the rest of it, held or not */
        }
        c = next;
    }
    maybe_done(s);
}

void om_http_server_free(om_http_server_t *s)
{
    if (s == NULL) {
        return;
    }
    server_unregister(s);
    om_auth_server_free(s->auth);
    SSL_CTX_free(s->ssl_ctx);
    for (size_t i = 0; i < s->n_routes; i++) {
        om_free(s->routes[i].pattern);
    }
    om_free(s->routes);
    for (size_t i = 0; i < s->n_grpc_routes; i++) {
        om_free(s->grpc_routes[i].path);
    }
    om_free(s->grpc_routes);
    om_free(s->resp_headers);
    om_free(s->host);
    om_free(s);
}

int om_http_server_port(const om_http_server_t *s)
{
    return s->bound_port;
}

size_t om_http_server_conn_count(const om_http_server_t *s)
{
    return s->n_conns;
}

size_t om_http_server_busy_count(const om_http_server_t *s)
{
    size_t n = 0;
    for (const conn_t *c = s->lru_head; c != NULL; c = c->next) {
        n += !conn_idle(c);
    }
    return n;
}

uint64_t om_http_server_evictions(const om_http_server_t *s)
{
    return s->evictions;
}

void om_http_server_set_shutdown_grace(om_http_server_t *s, uint64_t ms)
{
    s->o.shutdown_grace_ms = ms;
}

void om_http_server_set_linger(om_http_server_t *s, uint64_t ms)
{
    s->linger_ms = ms;
}
