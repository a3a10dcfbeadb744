/* grpc_floor.c: otelmon-grpc-floor, what an OTLP/gRPC call costs a server that does nothing
 * with it, with gRPC's C core and with an HTTP/2 server of a few hundred lines on nghttp2
 * (issue 14's paced target, issue 10's receive side; bench/README.md, "What gRPC's C core costs
 * per call").
 *
 * The collector's gRPC receiver runs on gRPC's C core: a completion-queue thread reads and
 * checks each call, the loop thread takes the data and answers. otelmon-wakeup-floor measures
 * the kernel's part of that (raw TCP, no HTTP/2). This tool measures the library's: one thread
 * serves the load generator's OTLP trace Export calls (h2 answers any method) and answers each
 * with an empty message and grpc-status 0 as soon as its message is in:
 *   grpc  gRPC's C core: the method registered, one completion queue, one thread calling
 *         grpc_completion_queue_next; the reply is one batch (the collector's ops);
 *   h2    nghttp2 on epoll: each connection's bytes go through nghttp2_session_mem_recv, the
 *         message is copied into a buffer of its stream (as a receiver would keep it), and
 *         what nghttp2 has to send after a read is written in one write().
 * Neither decodes protobuf or decompresses: both see the same bytes, so the difference is the
 * library's.
 *
 * Usage: otelmon-grpc-floor --impl grpc|h2 [--port P] [--arg KEY=INT]...
 *   --arg  an integer channel argument for the gRPC server (up to 8), e.g.
 *          grpc.http2.bdp_probe=0
 * Prints {"port":P} when it listens. On SIGUSR1 it prints {"calls":N,"bytes":B,"cpu_us":C}
 * (C: the process's user + system CPU so far, all threads), so that a caller can take the
 * difference over a run of its own load; SIGTERM ends it. Pin it with taskset. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <nghttp2/nghttp2.h>

#include "lg.h"

static volatile sig_atomic_t report_asked, stop_asked;
static uint64_t calls, message_bytes;

static void on_signal(int sig)
{
    if (sig == SIGUSR1) {
        report_asked = 1;
    } else {
        stop_asked = 1;
    }
}

/* Called by either loop between waits (each wait is at most 100 ms). */
static void maybe_report(void)
{
    if (!report_asked) {
        return;
    }
    report_asked = 0;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    uint64_t us = (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000u +
                  (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
    printf("{\"calls\":%llu,\"bytes\":%llu,\"cpu_us\":%llu}\n", (unsigned long long)calls,
           (unsigned long long)message_bytes, (unsigned long long)us);
    fflush(stdout);
}

static void say_port(int port)
{
    printf("{\"port\":%d}\n", port);
    fflush(stdout);
}

/* ------------------------------------------------------------------------------------------ */
/* gRPC's C core                                                                               */

#define SLOTS 64 /* calls waited for at once: more than the load generator keeps in flight */

typedef enum { SLOT_WAITING, SLOT_REPLYING } slot_state_t;

typedef struct slot {
    slot_state_t state;
    grpc_call *call;
    gpr_timespec deadline;
    grpc_metadata_array md;
    grpc_byte_buffer *payload, *response;
    int cancelled;
} slot_t;

typedef struct gserver {
    grpc_server *server;
    grpc_completion_queue *cq;
    void *method;
} gserver_t;

static void slot_wait(gserver_t *g, slot_t *s)
{
    memset(s, 0, sizeof *s);
    grpc_metadata_array_init(&s->md);
    s->state = SLOT_WAITING;
    grpc_server_request_registered_call(g->server, g->method, &s->call, &s->deadline, &s->md,
                                        &s->payload, g->cq, g->cq, s);
}

static void slot_answer(slot_t *s)
{
    calls++;
    if (s->payload != NULL) {
        message_bytes += grpc_byte_buffer_length(s->payload);
        grpc_byte_buffer_destroy(s->payload);
        s->payload = NULL;
    }
    s->response = grpc_raw_byte_buffer_create(NULL, 0);
    grpc_op ops[4];
    lg_grpc_answer_ops(ops, s->response, GRPC_STATUS_OK, &s->cancelled);
    s->state = SLOT_REPLYING;
    grpc_call_start_batch(s->call, ops, 4, s, NULL);
}

static void slot_done(gserver_t *g, slot_t *s)
{
    grpc_byte_buffer_destroy(s->response);
    grpc_metadata_array_destroy(&s->md);
    grpc_call_unref(s->call);
    slot_wait(g, s);
}

/* Extra integer channel arguments for the gRPC server (--arg KEY=INT), to try gRPC's knobs. */
#define MAX_EXTRA_ARGS 8
static grpc_arg extra_args[MAX_EXTRA_ARGS];
static size_t n_extra_args;

static int serve_grpc(int port)
{
    grpc_init();
    gserver_t g;
    g.cq = grpc_completion_queue_create_for_next(NULL);
    grpc_arg args[2 + MAX_EXTRA_ARGS];
    memset(args, 0, sizeof args);
    args[0].type = GRPC_ARG_INTEGER;
    args[0].key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
    args[0].value.integer = 64 << 20;
    args[1].type = GRPC_ARG_INTEGER;
    args[1].key = GRPC_ARG_ALLOW_REUSEPORT;
    args[1].value.integer = 0;
    memcpy(args + 2, extra_args, n_extra_args * sizeof *args);
    grpc_channel_args ca = {.num_args = 2 + n_extra_args, .args = args};
    g.server = grpc_server_create(&ca, NULL);
    g.method =
        grpc_server_register_method(g.server, lg_grpc_methods[om_signal_index(OM_SIG_TRACES)], NULL,
                                    GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
    grpc_server_register_completion_queue(g.server, g.cq, NULL);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    grpc_server_credentials *creds = grpc_insecure_server_credentials_create();
    int bound = grpc_server_add_http2_port(g.server, addr, creds);
    grpc_server_credentials_release(creds);
    if (bound == 0) {
        fprintf(stderr, "otelmon-grpc-floor: cannot listen on %s\n", addr);
        return 1;
    }
    grpc_server_start(g.server);
    static slot_t slots[SLOTS];
    for (int i = 0; i < SLOTS; i++) {
        slot_wait(&g, &slots[i]);
    }
    say_port(bound);
    while (!stop_asked) {
        gpr_timespec wait =
            gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(100, GPR_TIMESPAN));
        grpc_event ev = grpc_completion_queue_next(g.cq, wait, NULL);
        maybe_report();
        if (ev.type != GRPC_OP_COMPLETE) {
            continue;
        }
        slot_t *s = ev.tag;
        if (s->state == SLOT_WAITING && ev.success) {
            slot_answer(s);
        } else {
            slot_done(&g, s); /* a reply written, or a wait that failed */
        }
    }
    return 0; /* the process ends here: gRPC's shutdown is not what is measured */
}

/* ------------------------------------------------------------------------------------------ */
/* nghttp2                                                                                    */

typedef struct stream {
    uint8_t *buf; /* the message as received (prefix included); owned */
    size_t len, cap;
} stream_t;

typedef struct conn {
    int fd;
    nghttp2_session *session;
} conn_t;

static int h2_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *user)
{
    (void)user;
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
        stream_t *st = calloc(1, sizeof *st);
        if (st == NULL) {
            return NGHTTP2_ERR_CALLBACK_FAILURE;
        }
        nghttp2_session_set_stream_user_data(session, frame->hd.stream_id, st);
    }
    return 0;
}

static int h2_data(nghttp2_session *session, uint8_t flags, int32_t id, const uint8_t *data,
                   size_t len, void *user)
{
    (void)flags;
    (void)user;
    stream_t *st = nghttp2_session_get_stream_user_data(session, id);
    if (st == NULL) {
        return 0;
    }
    if (st->len + len > st->cap) {
        size_t cap = (st->len + len) * 2 < 65536 ? 65536 : (st->len + len) * 2;
        uint8_t *b = realloc(st->buf, cap);
        if (b == NULL) {
            return NGHTTP2_ERR_CALLBACK_FAILURE;
        }
        st->buf = b;
        st->cap = cap;
    }
    memcpy(st->buf + st->len, data, len);
    st->len += len;
    return 0;
}

/* The answer's DATA: one empty message (flag 0, length 0), then the trailers. */
static ssize_t h2_answer_body(nghttp2_session *session, int32_t id, uint8_t *buf, size_t len,
                              uint32_t *flags, nghttp2_data_source *src, void *user)
{
    (void)src;
    (void)user;
    if (len < 5) {
        return NGHTTP2_ERR_DEFERRED;
    }
    memset(buf, 0, 5);
    *flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
    nghttp2_nv trailer = {(uint8_t *)"grpc-status", (uint8_t *)"0", 11, 1, NGHTTP2_NV_FLAG_NONE};
    if (nghttp2_submit_trailer(session, id, &trailer, 1) != 0) {
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    return 5;
}

static int h2_frame(nghttp2_session *session, const nghttp2_frame *frame, void *user)
{
    (void)user;
    if ((frame->hd.type != NGHTTP2_DATA && frame->hd.type != NGHTTP2_HEADERS) ||
        (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) == 0) {
        return 0;
    }
    stream_t *st = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (st == NULL) {
        return 0;
    }
    calls++;
    message_bytes += st->len >= 5 ? st->len - 5 : 0;
    nghttp2_nv headers[] = {
        {(uint8_t *)":status", (uint8_t *)"200", 7, 3, NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)"content-type", (uint8_t *)"application/grpc", 12, 16, NGHTTP2_NV_FLAG_NONE},
    };
    nghttp2_data_provider body = {.read_callback = h2_answer_body};
    return nghttp2_submit_response(session, frame->hd.stream_id, headers, 2, &body) == 0
               ? 0
               : NGHTTP2_ERR_CALLBACK_FAILURE;
}

static int h2_closed(nghttp2_session *session, int32_t id, uint32_t code, void *user)
{
    (void)code;
    (void)user;
    stream_t *st = nghttp2_session_get_stream_user_data(session, id);
    if (st != NULL) {
        free(st->buf);
        free(st);
    }
    return 0;
}

/* Everything nghttp2 has to send, in one write (a blocking socket would not help a tool that
 * only ever sends small answers; a short write ends the connection). */
static bool h2_flush(conn_t *c)
{
    static uint8_t out[1 << 20];
    size_t n = 0;
    const uint8_t *data;
    ssize_t k;
    while ((k = nghttp2_session_mem_send(c->session, &data)) > 0) {
        if (n + (size_t)k > sizeof out) {
            if (write(c->fd, out, n) != (ssize_t)n) {
                return false;
            }
            n = 0;
        }
        memcpy(out + n, data, (size_t)k);
        n += (size_t)k;
    }
    return k == 0 && (n == 0 || write(c->fd, out, n) == (ssize_t)n);
}

static conn_t *h2_accept(int ep, int listener, const nghttp2_session_callbacks *cb)
{
    int fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK);
    if (fd < 0) {
        return NULL;
    }
    int on = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    conn_t *c = calloc(1, sizeof *c);
    if (c == NULL || nghttp2_session_server_new(&c->session, cb, c) != 0) {
        free(c);
        close(fd);
        return NULL;
    }
    c->fd = fd;
    /* Windows large enough that a request never waits for a WINDOW_UPDATE. */
    nghttp2_settings_entry settings[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 1000},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 4 << 20},
    };
    nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, settings, 2);
    nghttp2_session_set_local_window_size(c->session, NGHTTP2_FLAG_NONE, 0, 16 << 20);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    h2_flush(c);
    return c;
}

static void h2_close(int ep, conn_t *c)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    nghttp2_session_del(c->session);
    free(c);
}

/* Reads what the connection has, feeds nghttp2, writes its answers. */
static void h2_readable(int ep, conn_t *c)
{
    static uint8_t in[256 * 1024];
    for (;;) {
        ssize_t r = read(c->fd, in, sizeof in);
        if (r > 0 && nghttp2_session_mem_recv(c->session, in, (size_t)r) == r) {
            if ((size_t)r == sizeof in) {
                continue;
            }
            if (h2_flush(c)) {
                return;
            }
        } else if (r < 0 && errno == EAGAIN) {
            if (h2_flush(c)) {
                return;
            }
        }
        h2_close(ep, c);
        return;
    }
}

static int serve_h2(int port)
{
    int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof a;
    if (listener < 0 || bind(listener, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(listener, 128) != 0 || getsockname(listener, (struct sockaddr *)&a, &alen) != 0) {
        fprintf(stderr, "otelmon-grpc-floor: cannot listen on port %d: %s\n", port,
                strerror(errno));
        return 1;
    }
    nghttp2_session_callbacks *cb;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, h2_begin_headers);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, h2_data);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, h2_frame);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, h2_closed);
    int ep = epoll_create1(0);
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, listener, &lev);
    say_port(ntohs(a.sin_port));
    while (!stop_asked) {
        struct epoll_event evs[64];
        int n = epoll_wait(ep, evs, 64, 100);
        maybe_report();
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr == NULL) {
                while (h2_accept(ep, listener, cb) != NULL) {
                }
            } else {
                h2_readable(ep, evs[i].data.ptr);
            }
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *impl = NULL;
    int port = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--impl") == 0) {
            impl = argv[i + 1];
        } else if (strcmp(argv[i], "--port") == 0) {
            port = atoi(argv[i + 1]);
        } else if (strcmp(argv[i], "--arg") == 0 && n_extra_args < MAX_EXTRA_ARGS &&
                   strchr(argv[i + 1], '=') != NULL) {
            char *eq = strchr(argv[i + 1], '=');
            *eq = '\0';
            extra_args[n_extra_args++] = (grpc_arg){
                .type = GRPC_ARG_INTEGER, .key = argv[i + 1], .value.integer = atoi(eq + 1)};
        }
    }
    if (impl == NULL || (strcmp(impl, "grpc") != 0 && strcmp(impl, "h2") != 0)) {
        fprintf(stderr, "usage: otelmon-grpc-floor --impl grpc|h2 [--port P] [--arg KEY=INT]...\n");
        return 2;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    return strcmp(impl, "grpc") == 0 ? serve_grpc(port) : serve_h2(port);
}
