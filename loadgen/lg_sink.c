/* lg_sink.c: --sink, a counting OTLP server (gRPC, and HTTP when asked).
 *
 * It answers every Export with success and counts requests, items and bytes per signal,
 * counting items on the wire (lg_count.c) so it stays cheap. The gRPC server runs on its own
 * thread, which only polls the completion queue and answers; the main thread runs a libuv
 * loop with the HTTP server, the signals and the duration timer. The counters are the only
 * shared state (atomics).
 *
 * Output on stdout, one JSON object per line: {"event":"listening",...} once the ports are
 * bound, {"event":"snapshot",...} on SIGUSR1, {"event":"final",...} on SIGTERM/SIGINT or at
 * the end of --duration. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/compression.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/time.h>
#include <http_parser.h>

#include "lg.h"

#define SLOTS_PER_METHOD 64
#define MAX_MSG (256 * 1024 * 1024)
#define MAX_HTTP_BODY (256 * 1024 * 1024)

typedef struct counters {
    _Atomic uint64_t requests[OM_SIG_COUNT];
    _Atomic uint64_t items[OM_SIG_COUNT];
    _Atomic uint64_t bytes;
    _Atomic uint64_t wire_bytes; /* as received: compressed when the request was */
    _Atomic uint64_t bad;
    /* Prometheus remote-write (POST .../api/v1/write). */
    _Atomic uint64_t rw_requests, rw_series, rw_samples, rw_histograms;
} counters_t;

static counters_t counts;

/* Counts one request; returns 0, or OM_EINVAL when it is malformed (counted as bad). */
static int count_request(om_signal_t sig, const uint8_t *p, size_t n, size_t wire, bool json)
{
    uint64_t items = 0;
    int rc = OM_EINVAL;
    int i = om_signal_index(sig);
    if (json) {
        om_batch_t *b = NULL;
        om_err_t err = {0};
        rc = om_batch_decode_json(sig, (const char *)p, n, 0, &b, &err);
        if (rc == 0) {
            items = om_batch_count_items(b);
            om_batch_release(b);
        }
    } else {
        rc = lg_count_items(sig, p, n, &items);
    }
    if (rc != 0 || i < 0) {
        atomic_fetch_add(&counts.bad, 1);
        return OM_EINVAL;
    }
    atomic_fetch_add(&counts.requests[i], 1);
    atomic_fetch_add(&counts.items[i], items);
    atomic_fetch_add(&counts.bytes, n);
    atomic_fetch_add(&counts.wire_bytes, wire);
    return 0;
}

static void print_counts(const char *event, double secs)
{
    uint64_t req = 0, items = 0;
    uint64_t it[OM_SIG_COUNT];
    for (int i = 0; i < OM_SIG_COUNT; i++) {
        req += atomic_load(&counts.requests[i]);
        it[i] = atomic_load(&counts.items[i]);
        items += it[i];
    }
    printf("{\"event\":\"%s\",\"seconds\":%.3f,\"requests\":%llu,\"items\":%llu,\"spans\":%llu,"
           "\"data_points\":%llu,\"log_records\":%llu,\"bytes\":%llu,\"wire_bytes\":%llu,"
           "\"bad\":%llu,"
           "\"rw_requests\":%llu,\"rw_series\":%llu,\"rw_samples\":%llu,\"rw_histograms\":%llu}\n",
           event, secs, (unsigned long long)req, (unsigned long long)items,
           (unsigned long long)it[0], (unsigned long long)it[1], (unsigned long long)it[2],
           (unsigned long long)atomic_load(&counts.bytes),
           (unsigned long long)atomic_load(&counts.wire_bytes),
           (unsigned long long)atomic_load(&counts.bad),
           (unsigned long long)atomic_load(&counts.rw_requests),
           (unsigned long long)atomic_load(&counts.rw_series),
           (unsigned long long)atomic_load(&counts.rw_samples),
           (unsigned long long)atomic_load(&counts.rw_histograms));
    fflush(stdout);
}

/* ------------------------------------------------------------------------------------------ */
/* gRPC                                                                                       */

typedef struct gsrv gsrv_t;

typedef struct sslot {
    gsrv_t *g;
    int method; /* signal index */
    bool replying;
    grpc_call *call;
    gpr_timespec deadline;
    grpc_metadata_array md;
    grpc_byte_buffer *payload;
    grpc_byte_buffer *resp;
    int cancelled;
} sslot_t;

struct gsrv {
    grpc_server *server;
    grpc_completion_queue *cq;
    void *methods[OM_SIG_COUNT];
    sslot_t slots[OM_SIG_COUNT * SLOTS_PER_METHOD];
    int shutdown_tag;
    pthread_t thread;
    bool started;
    bool stopped; /* the shutdown tag arrived (set and read on the queue thread only) */
    int port;
};

static void arm(sslot_t *s)
{
    /* Once the shutdown tag has been handled (on this same thread), a reply completing after
     * it must not ask for a new call. */
    if (s->g->stopped) {
        return;
    }
    s->replying = false;
    s->call = NULL;
    s->payload = NULL;
    grpc_metadata_array_init(&s->md);
    grpc_call_error e = grpc_server_request_registered_call(s->g->server, s->g->methods[s->method],
                                                            &s->call, &s->deadline, &s->md,
                                                            &s->payload, s->g->cq, s->g->cq, s);
    if (e != GRPC_CALL_OK) {
        grpc_metadata_array_destroy(&s->md);
    }
}

void lg_grpc_answer_ops(grpc_op ops[4], grpc_byte_buffer *resp, grpc_status_code status,
                        int *cancelled)
{
    memset(ops, 0, 4 * sizeof *ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = resp;
    ops[2].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[2].data.send_status_from_server.status = status;
    ops[3].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[3].data.recv_close_on_server.cancelled = cancelled;
}

static void answer(sslot_t *s)
{
    grpc_status_code status = GRPC_STATUS_INVALID_ARGUMENT;
    grpc_byte_buffer_reader rd;
    /* Per-message decompression is off: the message arrives as sent (its length is what went
     * over the wire) and a compressed one is inflated here. */
    if (s->payload != NULL && grpc_byte_buffer_reader_init(&rd, s->payload)) {
        grpc_slice all = grpc_byte_buffer_reader_readall(&rd);
        const uint8_t *p = GRPC_SLICE_START_PTR(all);
        size_t n = GRPC_SLICE_LENGTH(all), wire = n;
        uint8_t *plain = NULL;
        int rc = 0;
        if (s->payload->type == GRPC_BB_RAW &&
            s->payload->data.raw.compression != GRPC_COMPRESS_NONE) {
            rc = lg_gunzip(p, n, MAX_MSG, &plain, &n);
            p = plain;
        }
        if (rc == 0 && count_request(om_signal_from_index(s->method),
                                     p != NULL ? p : (const uint8_t *)"", n, wire, false) == 0) {
            status = GRPC_STATUS_OK;
        } else if (rc != 0) {
            atomic_fetch_add(&counts.bad, 1);
        }
        om_free(plain);
        grpc_slice_unref(all);
        grpc_byte_buffer_reader_destroy(&rd);
    } else {
        atomic_fetch_add(&counts.bad, 1);
    }
    s->resp = grpc_raw_byte_buffer_create(NULL, 0); /* an empty Export*ServiceResponse */
    grpc_op ops[4];
    lg_grpc_answer_ops(ops, s->resp, status, &s->cancelled);
    s->replying = true;
    if (grpc_call_start_batch(s->call, ops, 4, s, NULL) != GRPC_CALL_OK) {
        grpc_byte_buffer_destroy(s->resp);
        grpc_call_unref(s->call);
        grpc_metadata_array_destroy(&s->md);
        if (s->payload != NULL) {
            grpc_byte_buffer_destroy(s->payload);
        }
        arm(s);
    }
}

static void reply_done(sslot_t *s)
{
    grpc_byte_buffer_destroy(s->resp);
    if (s->payload != NULL) {
        grpc_byte_buffer_destroy(s->payload);
    }
    grpc_metadata_array_destroy(&s->md);
    grpc_call_unref(s->call);
    arm(s); /* after shutdown began this fails at once with success = 0 */
}

static void *grpc_thread(void *arg)
{
    gsrv_t *g = arg;
    for (;;) {
        grpc_event ev =
            grpc_completion_queue_next(g->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN) {
            break;
        }
        if (ev.type != GRPC_OP_COMPLETE) {
            continue;
        }
        if (ev.tag == &g->shutdown_tag) {
            /* The server is destroyed by grpc_stop after the join: the main thread may still
             * be calling grpc_server_cancel_all_calls on it. */
            g->stopped = true;
            grpc_completion_queue_shutdown(g->cq);
            continue;
        }
        sslot_t *s = ev.tag;
        if (s->replying) {
            reply_done(s);
        } else if (ev.success) {
            answer(s);
        } else {
            grpc_metadata_array_destroy(&s->md); /* an armed request failed: shutting down */
        }
    }
    return NULL;
}

static int grpc_start(gsrv_t *g, const char *host, int port, om_err_t *err)
{
    /* Decompression off: the sink counts compressed messages' sizes as sent (wire_bytes). */
    grpc_arg args[2] = {{.type = GRPC_ARG_INTEGER,
                         .key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
                         .value.integer = MAX_MSG},
                        {.type = GRPC_ARG_INTEGER,
                         .key = (char *)GRPC_ARG_ENABLE_PER_MESSAGE_DECOMPRESSION,
                         .value.integer = 0}};
    grpc_channel_args ca = {.num_args = 2, .args = args};
    g->cq = grpc_completion_queue_create_for_next(NULL);
    g->server = grpc_server_create(&ca, NULL);
    grpc_server_register_completion_queue(g->server, g->cq, NULL);
    for (int i = 0; i < OM_SIG_COUNT; i++) {
        g->methods[i] = grpc_server_register_method(g->server, lg_grpc_methods[i], NULL,
                                                    GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
    }
    char addr[300];
    snprintf(addr, sizeof addr, "%s:%d", host, port);
    grpc_server_credentials *creds = grpc_insecure_server_credentials_create();
    g->port = grpc_server_add_http2_port(g->server, addr, creds);
    grpc_server_credentials_release(creds);
    if (g->port == 0) {
        om_err_set(err, OM_EIO, "sink: cannot listen for gRPC on %s", addr);
        grpc_server_destroy(g->server);
        grpc_completion_queue_shutdown(g->cq);
        grpc_completion_queue_destroy(g->cq);
        return OM_EIO;
    }
    grpc_server_start(g->server);
    for (size_t i = 0; i < OM_SIG_COUNT * SLOTS_PER_METHOD; i++) {
        g->slots[i].g = g;
        g->slots[i].method = (int)(i / SLOTS_PER_METHOD);
        arm(&g->slots[i]);
    }
    if (pthread_create(&g->thread, NULL, grpc_thread, g) != 0) {
        om_err_set(err, OM_ENOMEM, "sink: cannot start the gRPC thread");
        return OM_ENOMEM;
    }
    g->started = true;
    return 0;
}

/* Stops the server: calls in progress are cancelled, then the thread drains the queue. */
static void grpc_stop(gsrv_t *g)
{
    if (!g->started) {
        return;
    }
    grpc_server_shutdown_and_notify(g->server, g->cq, &g->shutdown_tag);
    grpc_server_cancel_all_calls(g->server);
    pthread_join(g->thread, NULL);
    grpc_server_destroy(g->server);
    g->server = NULL;
    grpc_completion_queue_destroy(g->cq);
}

/* ------------------------------------------------------------------------------------------ */
/* HTTP (on the libuv loop)                                                                   */

typedef struct hsrv {
    uv_loop_t *loop;
    uv_tcp_t listener;
    int port;
} hsrv_t;

typedef struct hsess {
    uv_tcp_t tcp;
    http_parser parser;
    om_strbuf_t url, body, field, ctype, cenc;
    bool in_ctype, in_cenc;
    char rbuf[65536];
} hsess_t;

static http_parser_settings sink_settings;

static const char resp_proto[] = "HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\n"
                                 "Content-Length: 0\r\n\r\n";
static const char resp_json[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                "Content-Length: 2\r\n\r\n{}";
static const char resp_bad[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
/* What Prometheus answers a remote-write request it took. */
static const char resp_rw[] = "HTTP/1.1 204 No Content\r\n\r\n";

static void sess_closed(uv_handle_t *h)
{
    hsess_t *s = h->data;
    om_strbuf_free(&s->url);
    om_strbuf_free(&s->body);
    om_strbuf_free(&s->field);
    om_strbuf_free(&s->ctype);
    om_strbuf_free(&s->cenc);
    om_free(s);
}

static void sess_close(hsess_t *s)
{
    if (!uv_is_closing((uv_handle_t *)&s->tcp)) {
        uv_close((uv_handle_t *)&s->tcp, sess_closed);
    }
}

static int on_msg_begin(http_parser *p)
{
    hsess_t *s = p->data;
    om_strbuf_reset(&s->url);
    om_strbuf_reset(&s->body);
    om_strbuf_reset(&s->ctype);
    om_strbuf_reset(&s->cenc);
    s->in_ctype = s->in_cenc = false;
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t n)
{
    om_strbuf_append(&((hsess_t *)p->data)->url, at, n);
    return 0;
}

static int on_hfield(http_parser *p, const char *at, size_t n)
{
    hsess_t *s = p->data;
    if (s->in_ctype || s->in_cenc || s->field.len == 0) {
        om_strbuf_reset(&s->field);
    }
    s->in_ctype = s->in_cenc = false;
    om_strbuf_append(&s->field, at, n);
    return 0;
}

static int on_hvalue(http_parser *p, const char *at, size_t n)
{
    hsess_t *s = p->data;
    if (!s->in_ctype && !s->in_cenc && s->field.data != NULL) {
        s->in_ctype = strcasecmp(s->field.data, "content-type") == 0;
        s->in_cenc = strcasecmp(s->field.data, "content-encoding") == 0;
        om_strbuf_reset(&s->field);
    }
    if (s->in_ctype) {
        om_strbuf_append(&s->ctype, at, n);
    } else if (s->in_cenc) {
        om_strbuf_append(&s->cenc, at, n);
    }
    return 0;
}

static int on_hbody(http_parser *p, const char *at, size_t n)
{
    om_strbuf_append(&((hsess_t *)p->data)->body, at, n);
    return 0;
}

static void on_resp_written(uv_write_t *w, int status)
{
    (void)status;
    om_free(w);
}

/* Writes a static response: directly when the socket takes it, else queued. */
static void send_static(hsess_t *s, const char *resp, size_t len)
{
    uv_buf_t b = uv_buf_init((char *)resp, (unsigned)len);
    int n = uv_try_write((uv_stream_t *)&s->tcp, &b, 1);
    if (n == (int)len) {
        return;
    }
    size_t off = n > 0 ? (size_t)n : 0;
    uv_write_t *w = om_malloc(sizeof *w);
    if (w == NULL) {
        sess_close(s);
        return;
    }
    b = uv_buf_init((char *)resp + off, (unsigned)(len - off));
    if (uv_write(w, (uv_stream_t *)&s->tcp, &b, 1, on_resp_written) != 0) {
        om_free(w);
        sess_close(s);
    }
}

static om_signal_t signal_of_url(const char *url)
{
    for (int i = 0; i < OM_SIG_COUNT; i++) {
        size_t ul = strlen(url), pl = strlen(lg_signal_paths[i]);
        if (ul >= pl && strcmp(url + ul - pl, lg_signal_paths[i]) == 0) {
            return om_signal_from_index(i);
        }
    }
    return 0;
}

static bool is_rw(const hsess_t *s)
{
    static const char path[] = "/api/v1/write";
    size_t ul = s->url.len, pl = sizeof path - 1;
    return s->url.data != NULL && ul >= pl && strcmp(s->url.data + ul - pl, path) == 0;
}

/* A remote-write request: snappy block format, then a WriteRequest, counted on the wire. */
static int count_rw(const hsess_t *s)
{
    uint64_t se = 0, sa = 0, hi = 0;
    if (s->body.failed || s->cenc.data == NULL || strcasecmp(s->cenc.data, "snappy") != 0 ||
        lg_count_rw_snappy((const uint8_t *)s->body.data, s->body.len, MAX_HTTP_BODY, &se, &sa,
                           &hi) != 0) {
        return OM_EINVAL;
    }
    atomic_fetch_add(&counts.rw_requests, 1);
    atomic_fetch_add(&counts.rw_series, se);
    atomic_fetch_add(&counts.rw_samples, sa);
    atomic_fetch_add(&counts.rw_histograms, hi);
    atomic_fetch_add(&counts.bytes, s->body.len);
    return 0;
}

static int on_msg_complete(http_parser *p)
{
    hsess_t *s = p->data;
    if (is_rw(s)) {
        if (count_rw(s) != 0) {
            atomic_fetch_add(&counts.bad, 1);
            send_static(s, resp_bad, sizeof resp_bad - 1);
        } else {
            send_static(s, resp_rw, sizeof resp_rw - 1);
        }
        return 0;
    }
    bool json = s->ctype.data != NULL && strncasecmp(s->ctype.data, "application/json", 16) == 0;
    om_signal_t sig = s->url.data != NULL ? signal_of_url(s->url.data) : 0;
    const uint8_t *data = (const uint8_t *)s->body.data;
    size_t len = s->body.len, wire = s->body.len;
    uint8_t *plain = NULL;
    int rc = sig == 0 || s->body.failed ? OM_EINVAL : 0;
    if (rc == 0 && s->cenc.len > 0 && strcasecmp(s->cenc.data, "identity") != 0) {
        rc = lg_gunzip(data, len, MAX_HTTP_BODY, &plain, &len);
        data = plain;
    }
    if (rc == 0) {
        rc = count_request(sig, data != NULL ? data : (const uint8_t *)"", len, wire, json);
    } else {
        atomic_fetch_add(&counts.bad, 1);
    }
    om_free(plain);
    if (rc != 0) {
        send_static(s, resp_bad, sizeof resp_bad - 1);
    } else if (json) {
        send_static(s, resp_json, sizeof resp_json - 1);
    } else {
        send_static(s, resp_proto, sizeof resp_proto - 1);
    }
    return 0;
}

static void sess_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    hsess_t *s = h->data;
    *buf = uv_buf_init(s->rbuf, sizeof s->rbuf);
}

static void sess_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    hsess_t *s = st->data;
    if (n < 0) {
        sess_close(s);
        return;
    }
    size_t done = http_parser_execute(&s->parser, &sink_settings, buf->base, (size_t)n);
    if (done != (size_t)n || HTTP_PARSER_ERRNO(&s->parser) != HPE_OK) {
        sess_close(s);
    }
}

static void on_accept(uv_stream_t *server, int status)
{
    if (status < 0) {
        return;
    }
    hsess_t *s = om_calloc(1, sizeof *s);
    if (s == NULL) {
        return;
    }
    uv_tcp_init(server->loop, &s->tcp);
    s->tcp.data = s;
    http_parser_init(&s->parser, HTTP_REQUEST);
    s->parser.data = s;
    om_strbuf_init(&s->url, 4096);
    om_strbuf_init(&s->body, MAX_HTTP_BODY);
    om_strbuf_init(&s->field, 256);
    om_strbuf_init(&s->ctype, 256);
    om_strbuf_init(&s->cenc, 256);
    if (uv_accept(server, (uv_stream_t *)&s->tcp) != 0 ||
        uv_read_start((uv_stream_t *)&s->tcp, sess_alloc, sess_read) != 0) {
        sess_close(s);
        return;
    }
    uv_tcp_nodelay(&s->tcp, 1);
}

static int http_start(hsrv_t *h, uv_loop_t *loop, const char *host, int port, om_err_t *err)
{
    sink_settings.on_message_begin = on_msg_begin;
    sink_settings.on_url = on_url;
    sink_settings.on_header_field = on_hfield;
    sink_settings.on_header_value = on_hvalue;
    sink_settings.on_body = on_hbody;
    sink_settings.on_message_complete = on_msg_complete;
    struct sockaddr_storage ss;
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) != 0 &&
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) != 0) {
        om_err_set(err, OM_EINVAL, "sink: the HTTP address must be numeric, not \"%s\"", host);
        return OM_EINVAL;
    }
    h->loop = loop;
    uv_tcp_init(loop, &h->listener);
    int rc = uv_tcp_bind(&h->listener, (const struct sockaddr *)&ss, 0);
    if (rc == 0) {
        rc = uv_listen((uv_stream_t *)&h->listener, 512, on_accept);
    }
    if (rc != 0) {
        om_err_set(err, OM_EIO, "sink: cannot listen for HTTP on %s:%d: %s", host, port,
                   uv_strerror(rc));
        uv_close((uv_handle_t *)&h->listener, NULL);
        return OM_EIO;
    }
    int len = sizeof ss;
    uv_tcp_getsockname(&h->listener, (struct sockaddr *)&ss, &len);
    h->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* The run                                                                                    */

typedef struct sink {
    uv_loop_t loop;
    uv_signal_t sigint, sigterm, sigusr1;
    uv_timer_t timer;
    uint64_t t0;
} sink_t;

static void close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h)) {
        uv_close(h, h->type == UV_TCP && h->data != NULL ? sess_closed : NULL);
    }
}

static void sink_stop(sink_t *k)
{
    uv_walk(&k->loop, close_walk, NULL);
}

static void on_sink_signal(uv_signal_t *sg, int signum)
{
    sink_t *k = sg->data;
    if (signum == SIGUSR1) {
        print_counts("snapshot", (double)(lg_now_ns() - k->t0) / 1e9);
        return;
    }
    sink_stop(k);
}

static void on_sink_timer(uv_timer_t *t)
{
    sink_stop(t->data);
}

int lg_sink_run(const lg_opts_t *o, om_err_t *err)
{
    static sink_t k;
    static gsrv_t g;
    static hsrv_t h;
    int rc = uv_loop_init(&k.loop) == 0 ? 0 : OM_ENOMEM;
    if (rc != 0) {
        om_err_set(err, rc, "sink: cannot create the loop");
        return rc;
    }
    grpc_init();
    rc = grpc_start(&g, o->host, o->port, err);
    if (rc == 0 && o->sink_http_host != NULL) {
        rc = http_start(&h, &k.loop, o->sink_http_host, o->sink_http_port, err);
    }
    if (rc == 0) {
        k.t0 = lg_now_ns();
        /* Handlers first: whoever reads "listening" may signal at once. */
        uv_signal_t *sigs[3] = {&k.sigint, &k.sigterm, &k.sigusr1};
        int nums[3] = {SIGINT, SIGTERM, SIGUSR1};
        for (int i = 0; i < 3; i++) {
            uv_signal_init(&k.loop, sigs[i]);
            sigs[i]->data = &k;
            uv_signal_start(sigs[i], on_sink_signal, nums[i]);
        }
        uv_timer_init(&k.loop, &k.timer);
        k.timer.data = &k;
        if (o->duration_s > 0) {
            uv_timer_start(&k.timer, on_sink_timer, (uint64_t)(o->duration_s * 1000), 0);
        }
        printf("{\"event\":\"listening\",\"grpc_port\":%d,\"http_port\":%d}\n", g.port,
               o->sink_http_host != NULL ? h.port : 0);
        fflush(stdout);
        uv_run(&k.loop, UV_RUN_DEFAULT);
    }
    /* The counts are final once the loop has stopped: print them before tearing gRPC down. */
    if (rc == 0) {
        print_counts("final", (double)(lg_now_ns() - k.t0) / 1e9);
        fflush(stdout);
    }
    grpc_stop(&g);
    grpc_shutdown();
    uv_walk(&k.loop, close_walk, NULL);
    uv_run(&k.loop, UV_RUN_DEFAULT);
    uv_loop_close(&k.loop);
    return rc;
}
