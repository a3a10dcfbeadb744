/* otlp_grpc.c: the OTLP/gRPC server of the otlp receiver, on the core's HTTP server (its gRPC
 * methods over HTTP/2: src/h2_session.c).
 *
 * Why not gRPC's C core: at the paced test's rate it cost about twice what an HTTP/2 library
 * costs per call, on a thread of its own that every call had to be handed to the loop from
 * and back (bench/README.md, "What gRPC's C core costs per call"). Here a call is read,
 * decoded, handed to the pipeline and answered on the loop thread, in the read's callback.
 *
 * The three Export methods are always served (a signal the receiver is in no pipeline of is
 * answered UNIMPLEMENTED "unknown service", as grpc-go answers for a service not registered,
 * which is what otelcol does). Connections, TLS (protocols::grpc::tls, h2 by ALPN),
 * authentication (protocols::grpc::auth, per call from its metadata: UNAUTHENTICATED), the
 * connection budget and how the server stays available under abuse are the core server's.
 *
 * A call's message is decoded where the HTTP receiver decodes a body (otlp_offload): on the
 * loop, or for large compressed messages, and large ones while the loop is busy, on the host's
 * worker pool (the call's state is the job's until its done runs on the loop, which then
 * delivers and answers; the server waits for that answer at shutdown: it is owed). gRPC's
 * per-message compression: grpc-encoding gzip, deflate or zstd (the core's om_decompress, bounded
 * by max_recv_msg_size_mib: RESOURCE_EXHAUSTED beyond it, as gRPC answers for the message as
 * received).
 *
 * Intake backpressure: while om_intake_paused() the server reads nothing from its connections
 * (the hold hook), so clients wait with their calls unread instead of failing; an
 * om_intake_wait resumes them once intake opens again (or starts refusing: then the held calls
 * are read and answered UNAVAILABLE, which OTLP clients retry).
 *
 * Shutdown: the core server sends GOAWAY, lets calls in progress finish for the grace period
 * (otlp_grpc_set_shutdown_grace) and then closes their connections; done is called once it
 * is closed. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "otlp.h"
#include "otlp_body.h"
#include "otlp_grpc.h"

#define MIB (1024 * 1024)
/* A decoded request takes several times its wire size (about 6x for typical spans: structs,
 * pointer arrays, copied strings). The cap keeps a request made of many tiny fields from
 * taking unbounded memory while leaving ordinary requests plenty of room. */
#define ARENA_PER_WIRE_BYTE 16
#define DEFAULT_GRACE_MS 5000
/* Calls answered UNAVAILABLE are logged at most once per this (with how many were not). */
#define UNAVAILABLE_LOG_MS 10000

#define GRPC_OK 0
#define GRPC_UNAVAILABLE 14

static const char *const method_paths[OM_SIG_COUNT] = {
    "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
    "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
};

static const char *const service_names[OM_SIG_COUNT] = {
    "opentelemetry.proto.collector.trace.v1.TraceService",
    "opentelemetry.proto.collector.metrics.v1.MetricsService",
    "opentelemetry.proto.collector.logs.v1.LogsService",
};

typedef struct method {
    otlp_grpc_server_t *s;
    om_signal_t signal;
} method_t;

struct otlp_grpc_server {
    rcv_otlp_t *r;
    const otlp_grpc_cfg_t *cfg;
    om_http_server_cfg_t http_cfg; /* what the core server is given, from cfg */
    om_http_server_t *http;
    method_t methods[OM_SIG_COUNT];
    size_t max_recv; /* bytes */
    size_t arena_cap;
    uint64_t grace_ms;
    om_intake_wait_t intake; /* resumes held connections */
    bool started, shutting_down;
    int pending; /* the core server, while shutting down */
    /* When the last UNAVAILABLE answer was logged (uv_now; 0: never) and how many were
     * answered since without a line. */
    uint64_t unavail_logged_ms;
    uint64_t unavail_quiet;
    om_done_fn done;
    void *done_arg;
};

/* A call's state (om_grpc_call_state): what a worker leaves for the loop. */
typedef struct call_state {
    om_job_t job;
    om_grpc_call_t *call;
    const method_t *m;
    int rc;
    om_err_t err;
    om_prepared_t prep; /* decoded, after the off-loop processors, when rc is 0 */
} call_state_t;

/* ------------------------------------------------------------------------------------------ */
/* Answers                                                                                    */

/* A call answered with an error: UNAVAILABLE (the pipeline or the collector refused it; the
 * client retries) is a warning, at most one line per UNAVAILABLE_LOG_MS saying why and how
 * many were not logged, so that a client's refusals are never unexplained; the rest (the
 * client's own mistakes) are debug lines. */
static void log_answer(otlp_grpc_server_t *s, int rc, const om_err_t *err)
{
    int code = om_err_grpc_status(rc);
    const char *why = err->msg[0] != '\0' ? err->msg : om_strerror(rc);
    if (code != GRPC_UNAVAILABLE) {
        OM_CLOG(s->r->log_name, OM_LOG_DEBUG, "gRPC call answered with status %d: %s", code, why);
        return;
    }
    uint64_t now = uv_now(s->r->host->loop);
    if (s->unavail_logged_ms != 0 && now - s->unavail_logged_ms < UNAVAILABLE_LOG_MS) {
        s->unavail_quiet++;
        return;
    }
    OM_CLOG(s->r->log_name, OM_LOG_WARN,
            "gRPC call answered UNAVAILABLE: %s (%llu more since the last such line)", why,
            (unsigned long long)s->unavail_quiet);
    s->unavail_logged_ms = now != 0 ? now : 1;
    s->unavail_quiet = 0;
}

/* The answer from the return code: an empty Export*ServiceResponse on success (a response
 * without partial_success means full success). */
static void answer(otlp_grpc_server_t *s, om_grpc_call_t *call, int rc, const om_err_t *err)
{
    if (rc == 0) {
        om_grpc_respond(call, GRPC_OK, NULL, NULL, 0);
        return;
    }
    log_answer(s, rc, err);
    om_grpc_respond(call, om_err_grpc_status(rc), err->msg[0] != '\0' ? err->msg : om_strerror(rc),
                    NULL, 0);
}

/* ------------------------------------------------------------------------------------------ */
/* Decoding                                                                                   */

/* grpc-encoding: identity, or what om_decompress inflates. */
static int message_encoding(om_grpc_call_t *call, om_comp_t *alg, om_err_t *err)
{
    const char *e = om_grpc_call_metadata(call, "grpc-encoding");
    otlp_enc_t enc = OTLP_ENC_IDENTITY;
    if (e != NULL && otlp_enc_parse(e, strlen(e), &enc) != 0) {
        om_err_set(err, OM_ENOTSUP, "grpc: Decompressor is not installed for grpc-encoding \"%s\"",
                   e);
        return OM_ENOTSUP;
    }
    *alg = enc == OTLP_ENC_GZIP ? OM_COMP_GZIP : enc == OTLP_ENC_ZSTD ? OM_COMP_ZSTD : OM_COMP_ZLIB;
    if (enc == OTLP_ENC_IDENTITY) {
        om_err_set(err, OM_EINVAL, "grpc: compressed flag set with identity or empty encoding");
        return OM_EINVAL;
    }
    return 0;
}

/* Any thread (a worker for large compressed messages): the call's message as a prepared
 * batch in st->prep, or st->rc and st->err. Reads the call's message and metadata, which do
 * not change while the call is the caller's. */
static void decode_call(const otlp_grpc_server_t *s, call_state_t *st)
{
    size_t len;
    bool compressed;
    const uint8_t *msg = om_grpc_call_message(st->call, &len, &compressed);
    om_batch_t *batch = NULL;
    st->err = (om_err_t){0};
    if (!compressed) {
        st->rc = om_batch_decode_proto(st->m->signal, msg, len, s->arena_cap, &batch, &st->err);
    } else {
        om_comp_t alg;
        uint8_t *raw = NULL;
        size_t rlen = 0;
        st->rc = message_encoding(st->call, &alg, &st->err);
        if (st->rc == 0) {
            st->rc = om_decompress(alg, msg, len, s->max_recv, &raw, &rlen, &st->err);
        }
        if (st->rc == 0) {
            st->rc =
                om_batch_decode_proto(st->m->signal, raw, rlen, s->arena_cap, &batch, &st->err);
            om_free(raw);
        }
    }
    if (st->rc == 0) {
        /* The pipeline's off-loop processors run here, on the thread that decoded. */
        otlp_prepare(s->r, batch, &st->prep);
    }
}

/* Loop thread: hand the decoded call to the pipeline and answer it. */
static void deliver(otlp_grpc_server_t *s, call_state_t *st)
{
    int rc = st->rc;
    om_err_t err = st->err;
    if (rc == 0 && om_intake_refusing(s->r->host->intake)) {
        om_prepared_release(&st->prep);
        rc = OM_EREFUSED;
        om_err_set(&err, rc, "%s", om_intake_refused_msg(s->r->host->intake));
    } else if (rc == 0) {
        rc = otlp_deliver_prepared(s->r, &s->r->obs_grpc, &st->prep);
        if (rc == OM_ENOTSUP) {
            om_err_set(&err, rc, "unknown service %s",
                       service_names[om_signal_index(st->m->signal)]);
        }
    } else if (rc == OM_ESHUTDOWN) {
        om_err_set(&err, rc, "the collector is shutting down");
    }
    answer(s, st->call, rc, &err);
}

/* A worker: inflate and decode. */
static void decode_work(om_job_t *job, void *thread_data)
{
    (void)thread_data;
    call_state_t *st = (call_state_t *)(void *)((char *)job - offsetof(call_state_t, job));
    decode_call(st->m->s, st);
}

/* Loop thread: the call's state is the loop's again. */
static void decode_done(om_job_t *job, int status)
{
    call_state_t *st = (call_state_t *)(void *)((char *)job - offsetof(call_state_t, job));
    if (status != 0) {
        if (st->rc == 0) {
            om_prepared_release(&st->prep);
        }
        st->rc = status; /* the work did not run (the pool closed) */
        om_err_set(&st->err, status, "%s", om_strerror(status));
    }
    deliver(st->m->s, st);
}

/* ------------------------------------------------------------------------------------------ */
/* The method handler                                                                         */

static void on_call(om_grpc_call_t *call, void *arg)
{
    const method_t *m = arg;
    otlp_grpc_server_t *s = m->s;
    call_state_t *st = om_grpc_call_state(call);
    st->call = call;
    st->m = m;
    if (s->r->next[om_signal_index(m->signal)].consume == NULL) {
        om_err_t err = {0};
        om_err_set(&err, OM_ENOTSUP, "unknown service %s",
                   service_names[om_signal_index(m->signal)]);
        answer(s, call, OM_ENOTSUP, &err);
        return;
    }
    if (om_intake_refusing(s->r->host->intake)) {
        /* Refused before it is read. */
        om_err_t err = {0};
        om_err_set(&err, OM_EREFUSED, "%s", om_intake_refused_msg(s->r->host->intake));
        answer(s, call, OM_EREFUSED, &err);
        return;
    }
    size_t len;
    bool compressed;
    (void)om_grpc_call_message(call, &len, &compressed);
    if (otlp_offload(s->r, compressed && len < SIZE_MAX / 4 ? len * 4 : len, compressed) &&
        om_workers_submit(s->r->host->workers, &st->job, decode_work, decode_done) == 0) {
        return; /* decode_done answers */
    }
    decode_call(s, st);
    deliver(s, st);
}

static const om_grpc_handler_t export_handler = {.call = on_call};

/* ------------------------------------------------------------------------------------------ */
/* The server                                                                                 */

static bool intake_hold(void *arg)
{
    otlp_grpc_server_t *s = arg;
    om_intake_t *intake = s->r->host->intake;
    if (s->shutting_down || !om_intake_paused(intake)) {
        return false;
    }
    om_intake_wait(intake, &s->intake);
    return true;
}

static void intake_resumed(void *arg)
{
    otlp_grpc_server_t *s = arg;
    om_http_server_resume(s->http);
}

static void on_listen(void *arg, const char *name, int port)
{
    (void)port;
    otlp_grpc_server_t *s = arg;
    const char *note = "";
    if (s->cfg->tls_present) {
        bool mtls = s->cfg->tls.client_ca_file != NULL && s->cfg->tls.client_ca_file[0];
        note = mtls ? " (TLS, client certificates required)" : " (TLS)";
    }
    OM_CLOG(s->r->log_name, OM_LOG_INFO, "OTLP/gRPC listening on %s%s", name, note);
}

/* The core server's settings from the gRPC ones. gRPC connections stay open while idle (as
 * grpc-go's default MaxConnectionIdle: infinity); the first bytes must come within a minute. */
static void http_cfg_from(otlp_grpc_server_t *s)
{
    om_http_server_cfg_t *h = &s->http_cfg;
    om_http_server_cfg_defaults(h);
    h->endpoint = s->cfg->endpoint;
    h->tls_present = s->cfg->tls_present;
    h->tls = s->cfg->tls;
    h->auth = s->cfg->auth;
    h->idle_timeout = 0;
    h->read_timeout = 0;
}

int otlp_grpc_create(rcv_otlp_t *r, otlp_grpc_server_t **out, om_err_t *err)
{
    otlp_grpc_server_t *s = om_calloc(1, sizeof *s);
    if (s == NULL) {
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    s->r = r;
    s->cfg = &r->cfg->protocols.grpc;
    /* The field table bounds max_recv_msg_size_mib to 1..2047. */
    s->max_recv = (size_t)s->cfg->max_recv_msg_size_mib * MIB;
    s->arena_cap = s->max_recv * ARENA_PER_WIRE_BYTE;
    s->grace_ms = DEFAULT_GRACE_MS;
    om_intake_wait_init(&s->intake, intake_resumed, s);
    http_cfg_from(s);
    *out = s;
    return 0;
}

int otlp_grpc_start(otlp_grpc_server_t *s, om_err_t *err)
{
    if (s->started || s->shutting_down) {
        om_err_set(err, OM_EINVAL, "OTLP/gRPC server started twice");
        return OM_EINVAL;
    }
    s->started = true;
    om_http_server_opts_t o = {
        .loop = s->r->host->loop,
        .host = s->r->host,
        .log_name = s->r->log_name,
        .cfg = &s->http_cfg,
        .cfg_at = "protocols::grpc",
        .default_endpoint = "localhost:4317",
        .req_state_size = sizeof(call_state_t),
        .shutdown_grace_ms = s->grace_ms,
        .on_listen = on_listen,
        .hold = intake_hold,
        .arg = s,
        .h2_max_streams = (uint32_t)s->cfg->max_concurrent_streams,
    };
    int rc = om_http_server_new(&o, &s->http, err);
    for (int i = 0; rc == 0 && i < OM_SIG_COUNT; i++) {
        s->methods[i] = (method_t){.s = s, .signal = om_signal_from_index(i)};
        rc = om_http_server_grpc(s->http, method_paths[i], &export_handler, &s->methods[i],
                                 s->max_recv, err);
    }
    if (rc == 0) {
        rc = om_http_server_start(s->http, err);
    }
    return rc;
}

static void part_done(void *arg)
{
    otlp_grpc_server_t *s = arg;
    if (--s->pending == 0 && s->done != NULL) {
        s->done(s->done_arg);
    }
}

void otlp_grpc_shutdown(otlp_grpc_server_t *s, om_done_fn done, void *arg)
{
    if (s->shutting_down) {
        return;
    }
    s->shutting_down = true;
    s->done = done;
    s->done_arg = arg;
    if (s->http == NULL) {
        done(arg); /* never started */
        return;
    }
    /* Count every part before starting any, so that one finishing at once cannot call done
     * early. */
    s->pending = 2;
    om_intake_wait_cancel(s->r->host->intake, &s->intake);
    om_http_server_shutdown(s->http, part_done, s);
    part_done(s);
}

void otlp_grpc_destroy(otlp_grpc_server_t *s)
{
    if (s == NULL) {
        return;
    }
    om_http_server_free(s->http);
    om_free(s);
}

int otlp_grpc_bound_port(const otlp_grpc_server_t *s)
{
    return s->http != NULL && om_http_server_port(s->http) > 0 ? om_http_server_port(s->http) : 0;
}

void otlp_grpc_set_shutdown_grace(otlp_grpc_server_t *s, uint64_t ms)
{
    s->grace_ms = ms;
    if (s->http != NULL) {
        om_http_server_set_shutdown_grace(s->http, ms);
    }
}
