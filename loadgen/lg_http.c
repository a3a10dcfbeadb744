/* lg_http.c: the OTLP/HTTP client of the load generator: raw HTTP/1.1 over libuv TCP.
 *
 * Why not libcurl: each request here is one pre-built buffer (request line, headers, body),
 * so the client's whole job is uv_write of that buffer and parsing a short response; libcurl
 * would add per-request handle setup, header building and copies on the core that also has
 * to generate the load. K in-flight requests per connection are HTTP/1.1 pipelining: up to K
 * requests are written back to back and the answers come in order, which the OTLP receiver
 * supports. Responses are parsed with http_parser (the receiver's parser too).
 *
 * Each connection keeps its in-flight requests in a ring in write order. A connection that
 * fails (connect error, reset, parse error, timeout) fails what it had in flight, closes and
 * reconnects after RECONNECT_MS while the run goes on. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <http_parser.h>

#include "lg.h"

#define RECONNECT_MS 20
#define TICK_MS 100
#define MAX_BODY 65536

typedef struct hclient hclient_t;

typedef enum { C_CONNECTING, C_OPEN, C_CLOSING, C_CLOSED } cstate_t;

typedef struct hreq {
    uv_write_t w;
    uint64_t t0;
    size_t items;
} hreq_t;

typedef struct hconn {
    uv_tcp_t tcp;
    uv_connect_t connect;
    uv_timer_t retry;
    hclient_t *c;
    cstate_t state;
    http_parser parser;
    hreq_t *ring; /* inflight entries, in write order from head */
    unsigned head, count;
    om_strbuf_t body; /* the current response's body, bounded */
    char rbuf[65536];
} hconn_t;

struct hclient {
    const lg_opts_t *o;
    const lg_pool_t *pool;
    lg_stats_t *st;
    uv_loop_t loop;
    uv_timer_t tick;
    uv_signal_t sigint, sigterm;
    hconn_t *conns;
    unsigned n_conns, next_pump;
    size_t next_req;
    lg_sched_t sched;
    struct sockaddr_storage addr;
    bool stopping, closing_all;
};

static http_parser_settings parser_settings;

static void pump(hconn_t *h);
static void conn_fail(hconn_t *h, const char *kind);
static void maybe_finish(hclient_t *c);

static void on_write(uv_write_t *w, int status)
{
    hconn_t *h = w->data;
    if (status < 0 && h->state == C_OPEN) {
        char kind[40];
        snprintf(kind, sizeof kind, "io_write_%s", uv_err_name(status));
        conn_fail(h, kind);
    }
}

static int send_one(hconn_t *h, uint64_t now)
{
    hclient_t *c = h->c;
    const lg_req_t *r = &c->pool->reqs[c->next_req++ % c->pool->n];
    hreq_t *q = &h->ring[(h->head + h->count) % c->o->inflight];
    q->w.data = h;
    q->t0 = now;
    q->items = r->items;
    uv_buf_t b = uv_buf_init((char *)r->wire, (unsigned)r->wire_len);
    int rc = uv_write(&q->w, (uv_stream_t *)&h->tcp, &b, 1, on_write);
    if (rc != 0) {
        return rc;
    }
    h->count++;
    c->sched.started++;
    c->st->sent++;
    c->st->bytes_sent += r->wire_len;
    return 0;
}

/* Fills the connection's window as far as the schedule allows. */
static void pump(hconn_t *h)
{
    hclient_t *c = h->c;
    uint64_t now = lg_now_ns();
    while (h->state == C_OPEN && h->count < c->o->inflight && !c->stopping &&
           lg_sched_next(&c->sched, now) == 0) {
        if (send_one(h, now) != 0) {
            conn_fail(h, "io_write");
            return;
        }
    }
}

static void pump_all(hclient_t *c)
{
    /* Start at a rotating connection so a paced rate spreads over all of them. */
    for (unsigned i = 0; i < c->n_conns; i++) {
        pump(&c->conns[(c->next_pump + i) % c->n_conns]);
    }
    c->next_pump++;
}

static void complete_one(hconn_t *h, bool ok, const char *kind)
{
    hreq_t *q = &h->ring[h->head];
    if (!ok) {
        lg_stats_error(h->c->st, kind);
    }
    lg_stats_done(h->c->st, ok, q->items, lg_now_ns() - q->t0);
    h->head = (h->head + 1) % h->c->o->inflight;
    h->count--;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    hconn_t *h = p->data;
    om_strbuf_append(&h->body, at, len);
    return 0;
}

static int on_message_begin(http_parser *p)
{
    hconn_t *h = p->data;
    om_strbuf_reset(&h->body);
    return 0;
}

static int on_message_complete(http_parser *p)
{
    hconn_t *h = p->data;
    if (h->count == 0) {
        return -1; /* an answer nobody asked for */
    }
    char kind[40] = "";
    bool ok = p->status_code == 200;
    if (!ok) {
        snprintf(kind, sizeof kind, "http_%u", p->status_code);
    } else if (h->body.len > 0) {
        int64_t rej = h->c->o->protocol == LG_HTTP_JSON
                          ? lg_partial_rejected_json(h->body.data, h->body.len)
                          : lg_partial_rejected((const uint8_t *)h->body.data, h->body.len);
        if (rej != 0) {
            ok = false;
            snprintf(kind, sizeof kind, "partial_success");
        }
    }
    complete_one(h, ok, kind);
    return 0;
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    hconn_t *h = handle->data;
    *buf = uv_buf_init(h->rbuf, sizeof h->rbuf);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    hconn_t *h = s->data;
    if (n < 0) {
        char kind[40];
        snprintf(kind, sizeof kind, "io_read_%s", uv_err_name((int)n));
        conn_fail(h, kind);
        return;
    }
    size_t done = http_parser_execute(&h->parser, &parser_settings, buf->base, (size_t)n);
    if (done != (size_t)n || HTTP_PARSER_ERRNO(&h->parser) != HPE_OK) {
        conn_fail(h, "http_parse_error");
        return;
    }
    pump(h);
    maybe_finish(h->c);
}

static void on_connect(uv_connect_t *req, int status)
{
    hconn_t *h = req->data;
    if (h->state != C_CONNECTING) {
        return;
    }
    if (status < 0) {
        char kind[40];
        snprintf(kind, sizeof kind, "connect_%s", uv_err_name(status));
        /* A refused connection counts as one failed request, so a run of N requests that
         * cannot connect ends (this is what the start-up probe relies on). */
        h->c->sched.started++;
        h->c->st->sent++;
        lg_stats_error(h->c->st, kind);
        lg_stats_done(h->c->st, false, 0, 0);
        conn_fail(h, kind);
        return;
    }
    h->state = C_OPEN;
    uv_tcp_nodelay(&h->tcp, 1);
    if (uv_read_start((uv_stream_t *)&h->tcp, on_alloc, on_read) != 0) {
        conn_fail(h, "io_read_start");
        return;
    }
    pump(h);
}

static void start_connect(hconn_t *h)
{
    hclient_t *c = h->c;
    http_parser_init(&h->parser, HTTP_RESPONSE);
    h->parser.data = h;
    h->head = 0;
    h->count = 0;
    h->state = C_CONNECTING;
    uv_tcp_init(&c->loop, &h->tcp);
    h->tcp.data = h;
    h->connect.data = h;
    if (uv_tcp_connect(&h->connect, &h->tcp, (const struct sockaddr *)&c->addr, on_connect) != 0) {
        conn_fail(h, "connect_failed");
    }
}

static void on_retry(uv_timer_t *t)
{
    hconn_t *h = t->data;
    if (!h->c->stopping && lg_sched_next(&h->c->sched, lg_now_ns()) >= 0) {
        start_connect(h);
    }
}

static void on_conn_closed(uv_handle_t *handle)
{
    hconn_t *h = handle->data;
    h->state = C_CLOSED;
    hclient_t *c = h->c;
    if (!c->closing_all && !c->stopping && lg_sched_next(&c->sched, lg_now_ns()) >= 0) {
        uv_timer_start(&h->retry, on_retry, RECONNECT_MS, 0);
    }
    maybe_finish(c);
}

/* Fails what the connection has in flight and closes it. */
static void conn_fail(hconn_t *h, const char *kind)
{
    if (h->state == C_CLOSING || h->state == C_CLOSED) {
        return;
    }
    while (h->count > 0) {
        complete_one(h, false, kind);
    }
    h->state = C_CLOSING;
    uv_close((uv_handle_t *)&h->tcp, on_conn_closed);
}

static void on_handle_closed(uv_handle_t *handle)
{
    (void)handle;
}

static void close_all(hclient_t *c)
{
    c->closing_all = true;
    c->st->t_end_ns = lg_now_ns();
    for (unsigned i = 0; i < c->n_conns; i++) {
        hconn_t *h = &c->conns[i];
        if (h->state == C_OPEN || h->state == C_CONNECTING) {
            h->state = C_CLOSING;
            uv_close((uv_handle_t *)&h->tcp, on_conn_closed);
        }
        uv_close((uv_handle_t *)&h->retry, on_handle_closed);
    }
    uv_close((uv_handle_t *)&c->tick, on_handle_closed);
    uv_close((uv_handle_t *)&c->sigint, on_handle_closed);
    uv_close((uv_handle_t *)&c->sigterm, on_handle_closed);
}

static void maybe_finish(hclient_t *c)
{
    if (c->closing_all || (!c->stopping && lg_sched_next(&c->sched, lg_now_ns()) >= 0)) {
        return;
    }
    for (unsigned i = 0; i < c->n_conns; i++) {
        if (c->conns[i].count > 0) {
            return;
        }
    }
    close_all(c);
}

/* Every TICK_MS, or when the next paced request is due: send, and fail connections whose
 * oldest request is past the timeout. */
static void on_tick(uv_timer_t *t)
{
    hclient_t *c = t->data;
    uint64_t now = lg_now_ns();
    uint64_t limit = (uint64_t)(c->o->timeout_s * 1e9);
    for (unsigned i = 0; i < c->n_conns; i++) {
        hconn_t *h = &c->conns[i];
        if (h->count > 0 && now - h->ring[h->head].t0 > limit) {
            conn_fail(h, "timeout");
        }
    }
    pump_all(c);
    maybe_finish(c);
    if (c->closing_all) {
        return;
    }
    int64_t wait = lg_sched_next(&c->sched, lg_now_ns());
    /* libuv timers have millisecond resolution: wake at least 1 ms later and send all that
     * is due by then, rather than spin. */
    uint64_t ms = TICK_MS;
    if (wait > 0 && (uint64_t)wait < TICK_MS * (uint64_t)OM_NS_PER_MS) {
        ms = (uint64_t)wait / OM_NS_PER_MS;
        ms = ms == 0 ? 1 : ms;
    }
    /* A paced run with all windows full waits for answers, which pump themselves. */
    uv_timer_start(&c->tick, on_tick, ms, 0);
}

static void on_signal(uv_signal_t *s, int signum)
{
    (void)signum;
    hclient_t *c = s->data;
    c->stopping = true;
    maybe_finish(c);
}

static int setup(hclient_t *c, om_err_t *err)
{
    const lg_opts_t *o = c->o;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&c->addr;
    struct sockaddr_in *a4 = (struct sockaddr_in *)&c->addr;
    const char *host = strcmp(o->host, "localhost") == 0 ? "127.0.0.1" : o->host;
    if (uv_ip4_addr(host, o->port, a4) != 0 && uv_ip6_addr(host, o->port, a6) != 0) {
        om_err_set(err, OM_EINVAL, "the HTTP client needs a numeric address, not \"%s\"", host);
        return OM_EINVAL;
    }
    c->n_conns = o->connections;
    c->conns = om_calloc(c->n_conns, sizeof *c->conns);
    if (c->conns == NULL || uv_loop_init(&c->loop) != 0) {
        om_err_set(err, OM_ENOMEM, "out of memory setting up %u connections", c->n_conns);
        return OM_ENOMEM;
    }
    for (unsigned i = 0; i < c->n_conns; i++) {
        hconn_t *h = &c->conns[i];
        h->c = c;
        h->state = C_CLOSED;
        h->ring = om_calloc(o->inflight, sizeof *h->ring);
        om_strbuf_init(&h->body, MAX_BODY);
        uv_timer_init(&c->loop, &h->retry);
        h->retry.data = h;
        if (h->ring == NULL) {
            om_err_set(err, OM_ENOMEM, "out of memory setting up connections");
            return OM_ENOMEM;
        }
    }
    uv_timer_init(&c->loop, &c->tick);
    c->tick.data = c;
    uv_signal_init(&c->loop, &c->sigint);
    uv_signal_init(&c->loop, &c->sigterm);
    c->sigint.data = c;
    c->sigterm.data = c;
    return 0;
}

int lg_http_run(const lg_opts_t *o, const lg_pool_t *pool, lg_stats_t *st, om_err_t *err)
{
    parser_settings.on_message_begin = on_message_begin;
    parser_settings.on_body = on_body;
    parser_settings.on_message_complete = on_message_complete;
    hclient_t *c = om_calloc(1, sizeof *c);
    if (c == NULL) {
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    c->o = o;
    c->pool = pool;
    c->st = st;
    int rc = setup(c, err);
    if (rc == 0) {
        uv_signal_start(&c->sigint, on_signal, SIGINT);
        uv_signal_start(&c->sigterm, on_signal, SIGTERM);
        uint64_t now = lg_now_ns();
        lg_sched_init(&c->sched, o, now);
        st->t_start_ns = now;
        for (unsigned i = 0; i < c->n_conns; i++) {
            start_connect(&c->conns[i]);
        }
        uv_timer_start(&c->tick, on_tick, 1, 0);
        uv_run(&c->loop, UV_RUN_DEFAULT);
        if (uv_loop_close(&c->loop) != 0) {
            OM_LOG(OM_LOG_WARN, "loadgen: the HTTP client's loop still had handles at exit");
        }
    }
    for (unsigned i = 0; c->conns != NULL && i < c->n_conns; i++) {
        om_free(c->conns[i].ring);
        om_strbuf_free(&c->conns[i].body);
    }
    om_free(c->conns);
    om_free(c);
    return rc;
}
