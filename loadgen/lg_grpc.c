/* lg_grpc.c: the OTLP/gRPC client of the load generator, on gRPC C core.
 *
 * One thread does everything: it starts unary Export calls on C channels (each with its own
 * subchannel pool, so each is its own TCP connection), K slots per channel, and waits on the
 * one completion queue. Each call is a single batch of the six client ops, so one completion
 * means one finished call. Payloads are the pool's buffers wrapped in static slices: nothing
 * is copied or encoded per call. With --gzip the pool holds gzipped bodies and the byte
 * buffer says so; gRPC then sends them as compressed messages without compressing again. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/compression.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/time.h>

#include "lg.h"

typedef struct gclient gclient_t;

typedef struct gslot {
    unsigned chan;
    bool busy;
    grpc_call *call;
    grpc_metadata_array init_md, trail_md;
    grpc_byte_buffer *send, *recv;
    grpc_status_code status;
    grpc_slice details;
    uint64_t t0;
    size_t items;
} gslot_t;

struct gclient {
    const lg_opts_t *o;
    const lg_pool_t *pool;
    lg_stats_t *st;
    grpc_completion_queue *cq;
    grpc_channel **chans;
    void **methods; /* registered-call handles, one per channel */
    gslot_t *slots; /* connections x inflight */
    size_t n_slots, busy, next_req;
    lg_sched_t sched;
};

static volatile sig_atomic_t stop_flag;

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

/* No GRPC_ARG_MIN_RECONNECT_BACKOFF_MS: gRPC 1.51 also takes it as the time a connection
 * attempt is given (raised to at least 100 ms; 20 s by default). With it at 20 ms, a collector
 * that did not send its HTTP/2 SETTINGS within 100 ms on a loaded machine failed every attempt,
 * and every call of the run failed at once with UNAVAILABLE without reaching the collector
 * (bench/README.md, issue 14). A short first backoff (gRPC raises it to 100 ms) is kept. */
static grpc_channel *make_channel(const lg_opts_t *o)
{
    grpc_arg args[4];
    size_t n = 0;
    args[n++] = (grpc_arg){.type = GRPC_ARG_INTEGER,
                           .key = (char *)GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL,
                           .value.integer = 1};
    args[n++] = (grpc_arg){
        .type = GRPC_ARG_INTEGER, .key = (char *)GRPC_ARG_ENABLE_RETRIES, .value.integer = 0};
    args[n++] = (grpc_arg){.type = GRPC_ARG_INTEGER,
                           .key = (char *)GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
                           .value.integer = 20};
    if (o->gzip) {
        args[n++] = (grpc_arg){.type = GRPC_ARG_INTEGER,
                               .key = (char *)GRPC_COMPRESSION_CHANNEL_DEFAULT_ALGORITHM,
                               .value.integer = GRPC_COMPRESS_GZIP};
    }
    grpc_channel_args ca = {.num_args = n, .args = args};
    char target[300];
    snprintf(target, sizeof target, "%s:%d", o->host, o->port);
    grpc_channel_credentials *creds = grpc_insecure_credentials_create();
    grpc_channel *ch = grpc_channel_create(target, creds, &ca);
    grpc_channel_credentials_release(creds);
    return ch;
}

static int start_call(gclient_t *c, gslot_t *s, uint64_t now)
{
    const lg_req_t *r = &c->pool->reqs[c->next_req++ % c->pool->n];
    gpr_timespec deadline =
        gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                     gpr_time_from_millis((int64_t)(c->o->timeout_s * 1000), GPR_TIMESPAN));
    s->call = grpc_channel_create_registered_call(c->chans[s->chan], NULL, GRPC_PROPAGATE_DEFAULTS,
                                                  c->cq, c->methods[s->chan], deadline, NULL);
    if (s->call == NULL) {
        return OM_ENOMEM;
    }
    grpc_slice body = grpc_slice_from_static_buffer(r->body, r->body_len);
    s->send = c->o->gzip ? grpc_raw_compressed_byte_buffer_create(&body, 1, GRPC_COMPRESS_GZIP)
                         : grpc_raw_byte_buffer_create(&body, 1);
    s->recv = NULL;
    s->details = grpc_empty_slice();
    grpc_op ops[6];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    /* Wait-for-ready: a call made while its channel (re)connects waits for the connection
     * instead of failing at once; a run measures the collector, not the client's state. */
    ops[0].flags = c->o->fail_fast ? 0 : GRPC_INITIAL_METADATA_WAIT_FOR_READY;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = s->send;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &s->init_md;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &s->recv;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &s->trail_md;
    ops[5].data.recv_status_on_client.status = &s->status;
    ops[5].data.recv_status_on_client.status_details = &s->details;
    if (grpc_call_start_batch(s->call, ops, 6, s, NULL) != GRPC_CALL_OK) {
        grpc_byte_buffer_destroy(s->send);
        grpc_call_unref(s->call);
        s->call = NULL;
        return OM_EIO;
    }
    s->busy = true;
    s->t0 = now;
    s->items = r->items;
    c->busy++;
    c->sched.started++;
    c->st->sent++;
    c->st->bytes_sent += r->body_len;
    return 0;
}

/* The rejected count of a response (0 when it is empty, as it is on full success). */
static int64_t response_rejected(grpc_byte_buffer *bb)
{
    if (bb == NULL || grpc_byte_buffer_length(bb) == 0) {
        return 0;
    }
    grpc_byte_buffer_reader rd;
    if (!grpc_byte_buffer_reader_init(&rd, bb)) {
        return -1;
    }
    grpc_slice all = grpc_byte_buffer_reader_readall(&rd);
    int64_t rej = lg_partial_rejected(GRPC_SLICE_START_PTR(all), GRPC_SLICE_LENGTH(all));
    grpc_slice_unref(all);
    grpc_byte_buffer_reader_destroy(&rd);
    return rej;
}

static void finish_call(gclient_t *c, gslot_t *s, bool ok)
{
    bool good = false;
    char kind[40];
    if (!ok) {
        lg_stats_error(c->st, "grpc_batch_failed");
    } else if (s->status != GRPC_STATUS_OK) {
        snprintf(kind, sizeof kind, "grpc_%d_%s", (int)s->status,
                 lg_grpc_status_name((int)s->status));
        lg_stats_error_detail(c->st, kind, (const char *)GRPC_SLICE_START_PTR(s->details),
                              GRPC_SLICE_LENGTH(s->details));
    } else if (response_rejected(s->recv) != 0) {
        lg_stats_error(c->st, "partial_success");
    } else {
        good = true;
    }
    lg_stats_done(c->st, good, s->items, lg_now_ns() - s->t0);
    grpc_byte_buffer_destroy(s->send);
    if (s->recv != NULL) {
        grpc_byte_buffer_destroy(s->recv);
    }
    grpc_metadata_array_destroy(&s->init_md);
    grpc_metadata_array_destroy(&s->trail_md);
    grpc_metadata_array_init(&s->init_md);
    grpc_metadata_array_init(&s->trail_md);
    grpc_slice_unref(s->details);
    grpc_call_unref(s->call);
    s->call = NULL;
    s->busy = false;
    c->busy--;
}

/* Starts what the schedule allows in free slots. Returns the nanoseconds until the next
 * request is due (0 when only a free slot is missing), or -1 when no more will start. */
static int64_t fill(gclient_t *c, uint64_t now)
{
    for (size_t i = 0; i < c->n_slots; i++) {
        if (c->slots[i].busy) {
            continue;
        }
        int64_t wait = stop_flag ? -1 : lg_sched_next(&c->sched, now);
        if (wait != 0) {
            return wait;
        }
        if (start_call(c, &c->slots[i], now) != 0) {
            lg_stats_error(c->st, "grpc_start_failed");
            return -1;
        }
    }
    return stop_flag ? -1 : lg_sched_next(&c->sched, now) < 0 ? -1 : 0;
}

static void run_loop(gclient_t *c)
{
    for (;;) {
        uint64_t now = lg_now_ns();
        int64_t wait = fill(c, now);
        if (wait < 0 && c->busy == 0) {
            break;
        }
        /* Wake for the next due request, and at least every 100 ms to see a stop signal. */
        int64_t wait_ns = 100 * OM_NS_PER_MS;
        if (wait > 0 && wait < wait_ns) {
            wait_ns = wait;
        }
        gpr_timespec dl =
            gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_nanos(wait_ns, GPR_TIMESPAN));
        grpc_event ev = grpc_completion_queue_next(c->cq, dl, NULL);
        if (ev.type == GRPC_OP_COMPLETE) {
            finish_call(c, ev.tag, ev.success != 0);
        }
    }
}

static int setup(gclient_t *c, om_err_t *err)
{
    const lg_opts_t *o = c->o;
    c->cq = grpc_completion_queue_create_for_next(NULL);
    c->chans = om_calloc(o->connections, sizeof *c->chans);
    c->methods = om_calloc(o->connections, sizeof *c->methods);
    c->n_slots = (size_t)o->connections * o->inflight;
    c->slots = om_calloc(c->n_slots, sizeof *c->slots);
    if (c->cq == NULL || c->chans == NULL || c->methods == NULL || c->slots == NULL) {
        om_err_set(err, OM_ENOMEM, "out of memory setting up %u gRPC channels", o->connections);
        return OM_ENOMEM;
    }
    const char *method = lg_grpc_methods[om_signal_index(o->signal)];
    for (unsigned i = 0; i < o->connections; i++) {
        c->chans[i] = make_channel(o);
        if (c->chans[i] == NULL) {
            om_err_set(err, OM_EIO, "cannot create a gRPC channel to %s:%d", o->host, o->port);
            return OM_EIO;
        }
        c->methods[i] = grpc_channel_register_call(c->chans[i], method, NULL, NULL);
    }
    for (size_t i = 0; i < c->n_slots; i++) {
        c->slots[i].chan = (unsigned)(i % o->connections);
        grpc_metadata_array_init(&c->slots[i].init_md);
        grpc_metadata_array_init(&c->slots[i].trail_md);
    }
    return 0;
}

static void teardown(gclient_t *c)
{
    for (size_t i = 0; c->slots != NULL && i < c->n_slots; i++) {
        grpc_metadata_array_destroy(&c->slots[i].init_md);
        grpc_metadata_array_destroy(&c->slots[i].trail_md);
    }
    for (unsigned i = 0; c->chans != NULL && i < c->o->connections; i++) {
        if (c->chans[i] != NULL) {
            grpc_channel_destroy(c->chans[i]);
        }
    }
    if (c->cq != NULL) {
        grpc_completion_queue_shutdown(c->cq);
        grpc_event ev;
        do {
            ev = grpc_completion_queue_next(c->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
        } while (ev.type != GRPC_QUEUE_SHUTDOWN);
        grpc_completion_queue_destroy(c->cq);
    }
    om_free(c->slots);
    om_free(c->methods);
    om_free(c->chans);
}

int lg_grpc_run(const lg_opts_t *o, const lg_pool_t *pool, lg_stats_t *st, om_err_t *err)
{
    gclient_t c = {.o = o, .pool = pool, .st = st};
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    stop_flag = 0;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    grpc_init();
    int rc = setup(&c, err);
    if (rc == 0) {
        uint64_t now = lg_now_ns();
        lg_sched_init(&c.sched, o, now);
        st->t_start_ns = now;
        run_loop(&c);
        st->t_end_ns = lg_now_ns();
    }
    teardown(&c);
    grpc_shutdown();
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    return rc;
}
