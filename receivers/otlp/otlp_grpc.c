/* otlp_grpc.c: the OTLP/gRPC server of the otlp receiver, on gRPC C core 1.51.
 *
 * Threads and ownership
 * ---------------------
 * gRPC exposes no file descriptors: its network I/O only moves while some thread sits in
 * grpc_completion_queue_next(). The server uses the host's completion queue (om.h, "gRPC
 * completion queue": one queue and one thread for the process, shared with the otlp exporter,
 * since gRPC polls every socket from whichever thread waits). The bridge work runs on that
 * thread, in the tags' done callback (tag_done): for each event it stores the success flag in
 * the event's tag and posts the tag, whose first member is an om_msg_t, to the server's
 * om_mailbox (src/mailbox.c: a mutex-guarded list that wakes the loop when it goes from empty
 * to non-empty). Tags live in the server (one per slot, plus the shutdown tag), so posting
 * allocates nothing. Apart from decoding a new call's message into its slot (see "Decoding off
 * the loop" below) it never touches a call, a payload or any field of the server other than
 * the mailbox pointer (set before the first tag is handed to gRPC, closed only after the
 * queue is released, see Shutdown) and the tags it was handed. "The bridge thread" below is
 * that thread running our callback.
 *
 * Everything else runs on the loop thread: arming requests, delivering batches, starting the
 * reply batch, unreffing the call once that batch has completed, and re-arming. The one piece
 * of a call's work the bridge thread does is decoding its message (see predecode): the wire
 * scan and copy are most of what a call costs, and the loop thread is the collector's one
 * serial resource. A tag belongs to gRPC from the moment an operation is started with
 * it until the loop takes its completion off the mailbox; in that window only gRPC writes the
 * slot's call, deadline, metadata and payload, and the mailbox mutex orders the bridge thread's
 * push after gRPC's writes and before the loop's reads. So every grpc_call is driven by the
 * loop thread alone, final unref included: a completed reply comes back through the mailbox
 * like a new call. That keeps the bridge thread free of state and lets the loop count what
 * is outstanding without atomics. The completion of a reply can be posted lazily (it waits,
 * up to LAZY_REPLIES of them, for the loop's next wake-up rather than waking it), so that a
 * call costs the loop one wake-up, not two. Shutdown turns laziness off before it waits for
 * them.
 *
 * Decoding off the loop: when a new call's completion comes back with a message, the bridge
 * thread decodes it (inflating it first when it is compressed and smaller than
 * INFLATE_OFFLOAD_MIN) into the slot's batch, drc and derr, and destroys the payload, before
 * it posts the tag: between the completion and the post the slot is the bridge thread's
 * alone. It reads only the slot's state, method and payload (written by the loop before it
 * armed the slot, ordered by gRPC) and the server's fields fixed at create and start (auth,
 * max_recv, arena_cap). It does not decode when an authenticator is configured (a call is
 * authenticated before its message is read) or for the catch-all method.
 * Right after decoding, on the same thread, the pipeline's off-loop processors run (otlp_prepare,
 * om.h "Processors off the loop thread": a leading run of filter, attributes, resource when this
 * receiver feeds exactly one pipeline of the signal); the slot keeps the result (prep) and the
 * loop hands it to the rest of the pipeline, whose answer is the reply. This keeps the loop
 * thread's share per span under what one serial thread can carry (issue 14); the queue's one
 * thread then decodes and processes (0.6-0.85 us per span with filter or attributes, bench/run 9
 * and 10 under load), which caps gRPC intake at what that thread does, about 1.2-1.6 M spans/s,
 * unless a large compressed message goes to a worker. A call whose run executed while intake
 * turned to refusing is refused after its processors counted it.
 *
 * A gzip or deflate message of INFLATE_OFFLOAD_MIN compressed bytes or more is inflated and
 * decoded on the host's worker pool (om.h, worker service). From the submit until the job's
 * done runs on the loop, the slot (INFLATING) is the worker's: it reads the payload and
 * writes the slot's batch, drc, derr, zrc and zerr, and neither gRPC nor the loop touches the
 * slot meanwhile (the call waits for our reply). The job counts in ops_out, so shutdown waits
 * for its done, which delivers and answers as for any call.
 *
 * Backpressure
 * ------------
 * Each method has SLOTS_PER_METHOD slots. A slot is armed (a pending request for a new call),
 * replying (its call is being answered), or idle (only while shutting down). A slot is
 * re-armed on the loop thread once its reply has completed, so at most that many calls per
 * method are in our hands at once. While the loop is busy, further calls wait inside gRPC,
 * which bounds them by max_concurrent_streams and HTTP/2 flow control.
 *
 * Shutdown
 * --------
 * grpc_server_shutdown_and_notify() stops accepting: gRPC fails every armed request (their
 * tags come back with ok=0 and are not re-armed), calls the loop already holds are answered as
 * usual, and the shutdown tag comes back once no call is left. Calls still open after the grace
 * period (a client that sent headers but no message, or one that does not read its reply) are
 * cancelled with grpc_server_cancel_all_calls(). Once the shutdown tag is back and no operation
 * of ours is outstanding, the loop destroys the server and releases the host's queue
 * (om_grpc_release: it returns once no callback is running on the queue's thread, so our last
 * post has returned too; the last user's release stops the queue and its thread), then closes
 * the mailbox and the timer handles and calls done from the last close callback. The queue is
 * never shut down under the exporter or another receiver: only its last user's release does.
 * A start that fails destroys the unstarted server (it never had a tag of ours), releases the
 * queue and closes the empty mailbox with no callback into the server, so destroy may follow
 * right away.
 *
 * TLS
 * ---
 * With protocols::grpc::tls the port gets gRPC's SSL server credentials, built from the PEM
 * text read at start (the core's om_tls_server_*, src/tls_server.c; gRPC copies it) and, with
 * client_ca_file, requiring and verifying a client certificate. The material is first parsed
 * with OpenSSL so that a bad file is reported by name: gRPC itself would only fail to listen.
 * Handshakes happen inside gRPC; a refused client never becomes a call. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <openssl/ssl.h>

#include "otlp.h"
#include "otlp_grpc.h"

#define SLOTS_PER_METHOD 16
#define SLOTS_OTHER 2
#define METHOD_OTHER OM_SIG_COUNT /* the catch-all comes after the three signal indexes */
#define N_SLOTS (OM_SIG_COUNT * SLOTS_PER_METHOD + SLOTS_OTHER)
#define MIB (1024 * 1024)
/* A decoded request takes several times its wire size (about 6x for typical spans: structs,
 * pointer arrays, copied strings). The cap keeps a request made of many tiny fields from
 * taking unbounded memory while leaving ordinary requests plenty of room. */
#define ARENA_PER_WIRE_BYTE 16
#define DEFAULT_GRACE_MS 5000
/* Calls answered UNAVAILABLE are logged at most once per this (with how many were not). */
#define UNAVAILABLE_LOG_MS 10000
/* Finished replies that may wait for the loop's next wake-up before one wakes it: each holds
 * its slot (not re-armed meanwhile), so this stays well below SLOTS_PER_METHOD. At a low rate
 * 4 made a call cost the loop one wake-up instead of two (bench/run 13: 6-9% less CPU outside
 * compression). It was off for a while: the stall blamed on it was the load generator's
 * connect timeout (bench/README.md, issue 14). */
#define LAZY_REPLIES 4

static const char *const method_paths[OM_SIG_COUNT] = {
    "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
    "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
};

/* What grpc-go answers for a service that is not registered, which is what otelcol's receiver
 * does when it is in no pipeline of that signal. */
static const char *const service_names[OM_SIG_COUNT] = {
    "opentelemetry.proto.collector.trace.v1.TraceService",
    "opentelemetry.proto.collector.metrics.v1.MetricsService",
    "opentelemetry.proto.collector.logs.v1.LogsService",
};

typedef enum { TAG_SLOT, TAG_SHUTDOWN } tag_kind_t;

typedef struct tag {
    om_msg_t msg;            /* first member: the tag is posted to the mailbox as is */
    om_grpc_tag_t gt;        /* what gRPC is handed; its done (tag_done) runs on the queue's
                              * thread */
    tag_kind_t kind;         /* set at create, read-only after */
    otlp_grpc_server_t *srv; /* set at create, read-only after */
    /* The event's success flag: written by the queue's thread right before it posts the tag,
     * read by the loop when the mailbox runs it (the mailbox's mutex orders the two). */
    int ok;
    /* Written by the loop before it starts an operation with the tag, read by the bridge
     * thread when the operation completes (gRPC orders the two): the completion may wait for
     * the loop's next wake-up (om_mailbox_post_lazy). Set for replies: a finished reply only
     * releases its call and re-arms the slot, which can wait for the next call's event. */
    bool lazy;
} tag_t;

/* PARKED: not armed while intake is paused (see om_intake_paused); re-armed when it resumes.
 * INFLATING: a worker inflates its compressed message (see inflate_on_worker). */
typedef enum { SLOT_IDLE, SLOT_ARMED, SLOT_REPLYING, SLOT_PARKED, SLOT_INFLATING } slot_state_t;

typedef struct slot {
    tag_t tag;  /* first member: a TAG_SLOT tag is its slot */
    int method; /* signal index, or METHOD_OTHER */
    slot_state_t state;
    /* Filled in by gRPC when a call arrives; owned by the slot until the reply completes. */
    grpc_call *call;
    gpr_timespec deadline;
    grpc_metadata_array md;
    grpc_call_details details; /* METHOD_OTHER only */
    grpc_byte_buffer *payload; /* NULL when the client half-closed without a message */
    /* The reply; gRPC reads these until the reply batch completes. */
    grpc_byte_buffer *response;
    grpc_slice status_msg;
    int cancelled;
    /* INFLATING: the job, and what its work leaves for done. From submit to done the worker
     * owns the fields below and reads payload; the loop touches none of the slot. */
    om_job_t job;
    int zrc;
    om_err_t zerr;
    /* The message decoded off the loop (predecode, inflate_work): decoded is set with drc, and
     * with prep when drc is 0: the batch after the pipeline's off-loop processors (om.h,
     * "Processors off the loop thread"; owned by the slot until delivered; slot_clear releases
     * it). */
    bool decoded;
    om_prepared_t prep;
    int drc;
    om_err_t derr;
} slot_t;

typedef enum { ST_NEW, ST_RUNNING, ST_STOPPING, ST_CLOSED } state_t;

struct otlp_grpc_server {
    rcv_otlp_t *r;
    const otlp_grpc_cfg_t *cfg;
    state_t state;
    bool grpc_inited; /* grpc_init() was called; destroy balances it */
    size_t arena_cap;
    int max_recv; /* bytes */
    int port;
    uint64_t grace_ms;
    grpc_completion_queue *cq; /* the host's (om_grpc_acquire), from start until released */
    grpc_server *server;
    void *methods[OM_SIG_COUNT];
    slot_t slots[N_SLOTS];
    unsigned ops_out;       /* operations started with one of our tags, not yet handled */
    bool shutdown_notified; /* the shutdown tag is back */
    /* Where the queue's thread posts tags. Made at start; closed after the queue is released
     * (om_grpc_release: no callback of ours runs any more). */
    om_mailbox_t *mb;
    tag_t shutdown_tag;
    uv_timer_t grace;
    om_intake_wait_t intake; /* parked slots wait on it for intake to resume */
    om_auth_server_t *auth;  /* cfg->auth's authenticator, from start; NULL: none */
    /* Loop thread: when the last UNAVAILABLE answer was logged (uv_now; 0: never) and how many
     * were answered since without a line. */
    uint64_t unavail_logged_ms;
    uint64_t unavail_quiet;
    int closing; /* handles whose close callback is still to come */
    om_done_fn done;
    void *done_arg;
};

/* ------------------------------------------------------------------------------------------ */
/* The queue's thread (the bridge work)                                                       */

/* Queue's thread. A tag has at most one completion in flight (it is re-armed only after the
 * loop has handled the last one), so nothing else writes it meanwhile. The loop closes the
 * mailbox only after releasing the queue, which waits for this callback, so it is alive. */
static void post_tag(otlp_grpc_server_t *s, tag_t *t, int ok)
{
    t->ok = ok;
    if (t->lazy) {
        om_mailbox_post_lazy(s->mb, &t->msg);
    } else {
        om_mailbox_post(s->mb, &t->msg);
    }
}

static void predecode(otlp_grpc_server_t *s, slot_t *sl);

/* Queue's thread (or the loop thread, for a reply written during om_grpc_start_batch: then the
 * slot is SLOT_REPLYING and only the post happens): one event of ours (the service acquired the
 * tag for TSan). */
static void tag_done(om_grpc_tag_t *gt, bool ok)
{
    tag_t *t = (tag_t *)(void *)((char *)gt - offsetof(tag_t, gt));
    if (ok && t->kind == TAG_SLOT) {
        predecode(t->srv, (slot_t *)t);
    }
    post_tag(t->srv, t, ok);
}

/* ------------------------------------------------------------------------------------------ */
/* Slots: arm, answer, release (loop thread)                                                  */

/* A call answered with an error: UNAVAILABLE (the pipeline or the collector refused it; the
 * client retries) is a warning, at most one line per UNAVAILABLE_LOG_MS saying why and how
 * many were not logged, so that a client's refusals are never unexplained; the rest (the
 * client's own mistakes) are debug lines. */
static void log_answer(otlp_grpc_server_t *s, int rc, const om_err_t *err)
{
    int code = om_err_grpc_status(rc);
    const char *why = err->msg[0] != '\0' ? err->msg : om_strerror(rc);
    if (code != GRPC_STATUS_UNAVAILABLE) {
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

/* Drop everything the slot holds, the call included. */
static void slot_clear(slot_t *sl)
{
    grpc_metadata_array_destroy(&sl->md);
    memset(&sl->md, 0, sizeof sl->md);
    if (sl->method == METHOD_OTHER) {
        grpc_call_details_destroy(&sl->details);
        memset(&sl->details, 0, sizeof sl->details);
    }
    if (sl->payload != NULL) {
        grpc_byte_buffer_destroy(sl->payload);
        sl->payload = NULL;
    }
    if (sl->response != NULL) {
        grpc_byte_buffer_destroy(sl->response);
        sl->response = NULL;
    }
    grpc_slice_unref(sl->status_msg);
    sl->status_msg = grpc_empty_slice();
    om_prepared_release(&sl->prep); /* decoded, not delivered: the call ended otherwise */
    sl->decoded = false;
    if (sl->call != NULL) {
        grpc_call_unref(sl->call);
        sl->call = NULL;
    }
    sl->cancelled = 0;
    sl->state = SLOT_IDLE;
}

static void slot_arm(otlp_grpc_server_t *s, slot_t *sl)
{
    grpc_metadata_array_init(&sl->md);
    grpc_call_error ce;
    sl->tag.lazy = false; /* a new call is answered at once */
    /* Before the request: its completion may reach the bridge thread (predecode reads the
     * state) before the request call returns. */
    sl->state = SLOT_ARMED;
    OM_TSAN_RELEASE(&sl->tag.gt); /* the tag is gRPC's until the queue's thread gets it back */
    if (sl->method == METHOD_OTHER) {
        grpc_call_details_init(&sl->details);
        ce = grpc_server_request_call(s->server, &sl->call, &sl->details, &sl->md, s->cq, s->cq,
                                      &sl->tag.gt);
    } else {
        ce = grpc_server_request_registered_call(s->server, s->methods[sl->method], &sl->call,
                                                 &sl->deadline, &sl->md, &sl->payload, s->cq, s->cq,
                                                 &sl->tag.gt);
    }
    if (ce != GRPC_CALL_OK) {
        OM_CLOG(s->r->log_name, OM_LOG_WARN, "cannot wait for gRPC calls: %s",
                grpc_call_error_to_string(ce));
        slot_clear(sl);
        return;
    }
    s->ops_out++;
}

/* Compressed messages of at least this many bytes are inflated on a worker: below it the
 * hand-over costs about what inflating costs (a few tens of microseconds). */
#define INFLATE_OFFLOAD_MIN ((size_t)8 * 1024)

/* Up to this many slices are copied straight into the batch's arena; a payload in more
 * (rare: gRPC's slices are large) is joined by gRPC's reader first. */
#define PAYLOAD_PARTS_MAX 64

/* A compressed message (grpc-encoding gzip or deflate): gRPC's per-message decompression is
 * off (server_new), so it arrives as sent and the core's service inflates it whole
 * (libdeflate, about 2.5 times cheaper than the zlib gRPC would use), into at most
 * max_recv_msg_size bytes: gRPC only checked the compressed size, so the cap on the inflated
 * message is ours (RESOURCE_EXHAUSTED beyond it, as gRPC would answer). */
static bool is_compressed(const grpc_byte_buffer *bb)
{
    return bb->type == GRPC_BB_RAW && (bb->data.raw.compression == GRPC_COMPRESS_GZIP ||
                                       bb->data.raw.compression == GRPC_COMPRESS_DEFLATE);
}

/* Any thread (a worker for large messages): reads bb and s->max_recv only. */
static int inflate_payload(const otlp_grpc_server_t *s, grpc_byte_buffer *bb, uint8_t **raw,
                           size_t *len, om_err_t *err)
{
    grpc_slice_buffer *sb = &bb->data.raw.slice_buffer;
    size_t n = sb->length;
    uint8_t *joined = NULL;
    const uint8_t *in = sb->count == 1 ? GRPC_SLICE_START_PTR(sb->slices[0]) : NULL;
    if (sb->count > 1) {
        joined = om_malloc(n);
        if (joined == NULL) {
            om_err_set(err, OM_ENOMEM, "out of memory");
            return OM_ENOMEM;
        }
        size_t off = 0;
        for (size_t k = 0; k < sb->count; k++) {
            om_copy(joined + off, GRPC_SLICE_START_PTR(sb->slices[k]),
                    GRPC_SLICE_LENGTH(sb->slices[k]));
            off += GRPC_SLICE_LENGTH(sb->slices[k]);
        }
        in = joined;
    }
    om_comp_t alg = bb->data.raw.compression == GRPC_COMPRESS_GZIP ? OM_COMP_GZIP : OM_COMP_ZLIB;
    int rc = om_decompress(alg, in, n, (size_t)s->max_recv, raw, len, err);
    om_free(joined);
    return rc;
}

static int decode_compressed(otlp_grpc_server_t *s, om_signal_t sig, grpc_byte_buffer *bb,
                             om_batch_t **batch, om_err_t *err)
{
    uint8_t *raw = NULL;
    size_t len = 0;
    int rc = inflate_payload(s, bb, &raw, &len, err);
    if (rc == 0) {
        rc = om_batch_decode_proto(sig, raw, len, s->arena_cap, batch, err);
        om_free(raw);
    }
    return rc;
}

/* A payload gRPC has not compressed as views of its slices, valid while bb lives; false when
 * it is compressed or the reader must join it. */
static bool payload_parts(grpc_byte_buffer *bb, uv_buf_t *parts, size_t *n)
{
    if (bb->type != GRPC_BB_RAW || bb->data.raw.compression != GRPC_COMPRESS_NONE ||
        bb->data.raw.slice_buffer.count > PAYLOAD_PARTS_MAX) {
        return false;
    }
    *n = bb->data.raw.slice_buffer.count;
    for (size_t k = 0; k < *n; k++) {
        grpc_slice *sl = &bb->data.raw.slice_buffer.slices[k];
        parts[k] = uv_buf_init((char *)GRPC_SLICE_START_PTR(*sl), (unsigned)GRPC_SLICE_LENGTH(*sl));
    }
    return true;
}

/* The payload as a batch: its slices are copied once, into the batch's arena. */
static int decode_payload(otlp_grpc_server_t *s, om_signal_t sig, grpc_byte_buffer *bb,
                          om_batch_t **batch, om_err_t *err)
{
    uv_buf_t parts[PAYLOAD_PARTS_MAX];
    size_t n = 0;
    if (is_compressed(bb)) {
        return decode_compressed(s, sig, bb, batch, err);
    }
    if (payload_parts(bb, parts, &n)) {
        return om_batch_decode_proto_parts(sig, parts, n, s->arena_cap, batch, err);
    }
    grpc_byte_buffer_reader reader;
    if (!grpc_byte_buffer_reader_init(&reader, bb)) {
        om_err_set(err, OM_EINVAL, "cannot read the request message");
        return OM_EINVAL;
    }
    grpc_slice data = grpc_byte_buffer_reader_readall(&reader);
    grpc_byte_buffer_reader_destroy(&reader);
    int rc = om_batch_decode_proto(sig, GRPC_SLICE_START_PTR(data), GRPC_SLICE_LENGTH(data),
                                   s->arena_cap, batch, err);
    grpc_slice_unref(data);
    return rc;
}

/* Bridge thread or worker: the slot's message decoded into its batch, drc and derr. */
static void decode_into_slot(otlp_grpc_server_t *s, slot_t *sl, const uint8_t *raw, size_t len)
{
    om_signal_t sig = om_signal_from_index(sl->method);
    sl->derr = (om_err_t){0};
    om_batch_t *batch = NULL;
    sl->drc = raw != NULL ? om_batch_decode_proto(sig, raw, len, s->arena_cap, &batch, &sl->derr)
                          : decode_payload(s, sig, sl->payload, &batch, &sl->derr);
    if (sl->drc == 0) {
        /* The pipeline's off-loop processors run here, on the thread that decoded. */
        otlp_prepare(s->r, batch, &sl->prep);
    }
    sl->decoded = true;
}

/* Bridge thread, a new call's completion (see the header): decode its message now, unless an
 * authenticator must see the call first, the method is not ours, or it is a large compressed
 * one (inflated on a worker). Reads what gRPC wrote and what is fixed while running. */
static void predecode(otlp_grpc_server_t *s, slot_t *sl)
{
    if (sl->state != SLOT_ARMED || sl->method == METHOD_OTHER || s->auth != NULL ||
        sl->payload == NULL ||
        (is_compressed(sl->payload) &&
         sl->payload->data.raw.slice_buffer.length >= INFLATE_OFFLOAD_MIN)) {
        return;
    }
    decode_into_slot(s, sl, NULL, 0);
    grpc_byte_buffer_destroy(sl->payload);
    sl->payload = NULL;
}

/* Decode the slot's payload, unless that was done off the loop, and hand it to the pipeline.
 * Returns what to answer. */
static int export_request(otlp_grpc_server_t *s, slot_t *sl, om_err_t *err)
{
    if (!sl->decoded && sl->payload == NULL) {
        om_err_set(err, OM_EINVAL, "the call carried no request message");
        return OM_EINVAL;
    }
    if (om_intake_refusing(s->r->host->intake)) {
        /* Refused before it is delivered (before it is read, unless read off the loop): the
         * slot's clear destroys the payload or the batch. */
        om_err_set(err, OM_EREFUSED, "%s", om_intake_refused_msg(s->r->host->intake));
        return OM_EREFUSED;
    }
    if (!sl->decoded) {
        decode_into_slot(s, sl, NULL, 0);
    }
    if (sl->payload != NULL) {
        grpc_byte_buffer_destroy(sl->payload);
        sl->payload = NULL;
    }
    int rc = sl->drc;
    sl->decoded = false;
    if (rc != 0) {
        *err = sl->derr;
        return rc;
    }
    rc = otlp_deliver_prepared(s->r, &s->r->obs_grpc, &sl->prep);
    if (rc == OM_ENOTSUP) {
        om_err_set(err, rc, "unknown service %s", service_names[sl->method]);
    }
    return rc;
}

/* One batch answers the call: headers, the empty Export*ServiceResponse on success, the
 * status, and the wait for the client's half-close. Its completion comes back as this slot's
 * tag. */
static void slot_reply(otlp_grpc_server_t *s, slot_t *sl, int rc, const om_err_t *err)
{
    grpc_status_code code = (grpc_status_code)om_err_grpc_status(rc);
    grpc_op ops[4];
    memset(ops, 0, sizeof ops);
    size_t n = 0;
    ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
    if (code == GRPC_STATUS_OK) {
        /* Zero bytes: a response without partial_success means full success. */
        sl->response = grpc_raw_byte_buffer_create(NULL, 0);
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n++].data.send_message.send_message = sl->response;
    } else {
        const char *msg = err->msg[0] != '\0' ? err->msg : om_strerror(rc);
        sl->status_msg = grpc_slice_from_copied_string(msg);
    }
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = code;
    ops[n++].data.send_status_from_server.status_details =
        code == GRPC_STATUS_OK ? NULL : &sl->status_msg;
    ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[n++].data.recv_close_on_server.cancelled = &sl->cancelled;
    sl->state = SLOT_REPLYING;
    sl->tag.lazy = s->state == ST_RUNNING;
    OM_TSAN_RELEASE(&sl->tag.gt);
    /* The reply is usually written, and so completed, during the call: its completion then
     * comes back through tag_done on this thread rather than by waking the queue's. */
    grpc_call_error ce = (grpc_call_error)om_grpc_start_batch(s->r->host->grpc, s->cq, sl->call,
                                                              ops, n, &sl->tag.gt);
    if (ce != GRPC_CALL_OK) {
        OM_CLOG(s->r->log_name, OM_LOG_WARN, "cannot answer a gRPC call: %s",
                grpc_call_error_to_string(ce));
        grpc_call_cancel(sl->call, NULL);
        slot_clear(sl);
        if (s->state == ST_RUNNING) {
            slot_arm(s, sl);
        }
        return;
    }
    s->ops_out++;
}

/* The call's metadata as the authenticator reads it: the first value of a key (any case),
 * copied so that it ends in a NUL. The copy lives until the check returns. */
typedef struct md_reader {
    const grpc_metadata_array *md;
    char *copy; /* om_malloc'd; the last value handed out */
} md_reader_t;

static const char *md_header(void *arg, const char *name)
{
    md_reader_t *r = arg;
    size_t n = strlen(name);
    for (size_t i = 0; i < r->md->count; i++) {
        const grpc_metadata *m = &r->md->metadata[i];
        if (GRPC_SLICE_LENGTH(m->key) != n ||
            strncasecmp((const char *)GRPC_SLICE_START_PTR(m->key), name, n) != 0) {
            continue;
        }
        size_t len = GRPC_SLICE_LENGTH(m->value);
        const char *v = (const char *)GRPC_SLICE_START_PTR(m->value);
        if (memchr(v, '\0', len) != NULL) {
            return NULL; /* binary: no credential we read has one */
        }
        om_free(r->copy);
        r->copy = om_strndup(v, len);
        return r->copy;
    }
    return NULL;
}

/* Refused calls are answered UNAUTHENTICATED without detail (UNAVAILABLE when the
 * authenticator could not check them now), before their method is looked at, so an
 * unauthenticated client learns nothing about what is served. */
static int authenticate_call(otlp_grpc_server_t *s, slot_t *sl, om_err_t *err)
{
    md_reader_t r = {.md = &sl->md};
    char *peer = grpc_call_get_peer(sl->call);
    int rc = om_auth_server_check(s->auth, md_header, &r, peer);
    gpr_free(peer);
    om_free(r.copy);
    if (rc != 0) {
        om_err_set(err, rc,
                   rc == OM_EAGAIN ? "authentication busy, retry later" : "unauthenticated");
    }
    return rc;
}

static void maybe_finish(otlp_grpc_server_t *s);

/* A worker: only the slot's payload (read) and what the job leaves (written): the message
 * inflated and decoded. */
static void inflate_work(om_job_t *job, void *thread_data)
{
    (void)thread_data;
    slot_t *sl = (slot_t *)(void *)((char *)job - offsetof(slot_t, job));
    uint8_t *raw = NULL;
    size_t len = 0;
    sl->zrc = inflate_payload(sl->tag.srv, sl->payload, &raw, &len, &sl->zerr);
    if (sl->zrc == 0) {
        decode_into_slot(sl->tag.srv, sl, raw, len);
        om_free(raw);
    }
}

/* Loop thread: the slot is the loop's again; decode, deliver and answer as on_new_call. */
static void inflate_done(om_job_t *job, int status)
{
    slot_t *sl = (slot_t *)(void *)((char *)job - offsetof(slot_t, job));
    otlp_grpc_server_t *s = sl->tag.srv;
    s->ops_out--;
    om_err_t err = sl->zerr;
    int rc = status != 0 ? status : sl->zrc;
    if (rc == OM_ESHUTDOWN) {
        om_err_set(&err, rc, "the collector is shutting down");
    }
    if (rc == 0) {
        rc = export_request(s, sl, &err);
    }
    if (rc != 0) {
        log_answer(s, rc, &err);
    }
    slot_reply(s, sl, rc, &err);
    maybe_finish(s);
}

/* A large compressed message goes to the host's worker pool; true when it went (the job's
 * done answers the call, and counts as an operation of ours until then). */
static bool inflate_on_worker(otlp_grpc_server_t *s, slot_t *sl)
{
    if (sl->payload == NULL || !is_compressed(sl->payload) ||
        sl->payload->data.raw.slice_buffer.length < INFLATE_OFFLOAD_MIN ||
        om_intake_refusing(s->r->host->intake)) {
        return false;
    }
    sl->zrc = 0;
    memset(&sl->zerr, 0, sizeof sl->zerr);
    sl->state = SLOT_INFLATING;
    if (om_workers_submit(s->r->host->workers, &sl->job, inflate_work, inflate_done) != 0) {
        sl->state = SLOT_ARMED;
        return false;
    }
    s->ops_out++;
    return true;
}

static void on_new_call(otlp_grpc_server_t *s, slot_t *sl, bool ok)
{
    if (!ok) {
        /* gRPC fails armed requests when the server shuts down; nothing else does. */
        if (s->state == ST_RUNNING) {
            OM_CLOG(s->r->log_name, OM_LOG_WARN, "gRPC failed a request for calls");
        }
        slot_clear(sl);
        return;
    }
    om_err_t err = {0};
    int rc = s->auth != NULL ? authenticate_call(s, sl, &err) : 0;
    if (rc == 0 && sl->method == METHOD_OTHER) {
        rc = OM_ENOTSUP;
        om_err_set(&err, rc, "unknown method %.*s", (int)GRPC_SLICE_LENGTH(sl->details.method),
                   (const char *)GRPC_SLICE_START_PTR(sl->details.method));
    } else if (rc == 0) {
        if (inflate_on_worker(s, sl)) {
            return;
        }
        rc = export_request(s, sl, &err);
    }
    if (rc != 0) {
        log_answer(s, rc, &err);
    }
    slot_reply(s, sl, rc, &err);
}

/* The reply went out, or the call ended early (client gone, deadline passed): either way the
 * batch, if any, was delivered already and the call can go. The slot waits for a new call,
 * unless intake is paused: then further calls wait inside gRPC (flow control holds their
 * clients) until it resumes. */
static void slot_arm_or_park(otlp_grpc_server_t *s, slot_t *sl)
{
    if (om_intake_paused(s->r->host->intake)) {
        sl->state = SLOT_PARKED;
        om_intake_wait(s->r->host->intake, &s->intake);
        return;
    }
    slot_arm(s, sl);
}

static void on_replied(otlp_grpc_server_t *s, slot_t *sl)
{
    slot_clear(sl);
    if (s->state == ST_RUNNING) {
        slot_arm_or_park(s, sl);
    }
}

static void intake_resumed(void *arg)
{
    otlp_grpc_server_t *s = arg;
    for (int i = 0; i < N_SLOTS && s->state == ST_RUNNING; i++) {
        if (s->slots[i].state == SLOT_PARKED) {
            slot_arm(s, &s->slots[i]);
        }
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Mailbox and shutdown (loop thread)                                                         */

static void handle_closed(otlp_grpc_server_t *s)
{
    if (--s->closing > 0) {
        return;
    }
    om_done_fn done = s->done;
    void *arg = s->done_arg;
    s->state = ST_CLOSED;
    done(arg); /* may destroy s */
}

static void on_mailbox_closed(void *arg)
{
    handle_closed(arg);
}

static void on_timer_closed(uv_handle_t *h)
{
    handle_closed(h->data);
}

/* The shutdown tag is back and nothing of ours is outstanding: no call is left, so the server
 * can go, then our use of the host's queue (the release waits for a callback of ours that is
 * still returning from its post), then the mailbox: nothing will post to it any more. */
static void maybe_finish(otlp_grpc_server_t *s)
{
    if (s->state != ST_STOPPING || !s->shutdown_notified || s->ops_out != 0 || s->cq == NULL) {
        return;
    }
    uv_timer_stop(&s->grace);
    grpc_server_destroy(s->server);
    s->server = NULL;
    om_grpc_release(s->r->host->grpc);
    s->cq = NULL;
    s->closing = 2;
    om_mailbox_close(s->mb, on_mailbox_closed, s);
    s->mb = NULL;
    uv_close((uv_handle_t *)&s->grace, on_timer_closed);
}

static void handle_tag(otlp_grpc_server_t *s, tag_t *t, bool ok)
{
    switch (t->kind) {
    case TAG_SLOT: {
        slot_t *sl = (slot_t *)t;
        s->ops_out--;
        if (sl->state == SLOT_ARMED) {
            on_new_call(s, sl, ok);
        } else {
            on_replied(s, sl);
        }
        break;
    }
    case TAG_SHUTDOWN:
        s->ops_out--;
        s->shutdown_notified = true;
        break;
    }
    maybe_finish(s);
}

/* The mailbox runs a tag: one event of the completion queue. */
static void run_tag(om_msg_t *m)
{
    tag_t *t = (tag_t *)(void *)m;
    handle_tag(t->srv, t, t->ok != 0);
}

static void on_grace_expired(uv_timer_t *h)
{
    otlp_grpc_server_t *s = h->data;
    if (s->server != NULL) {
        OM_CLOG(s->r->log_name, OM_LOG_INFO,
                "gRPC calls still open after %llu ms of shutdown: cancelling them",
                (unsigned long long)s->grace_ms);
        grpc_server_cancel_all_calls(s->server);
    }
}

void otlp_grpc_shutdown(otlp_grpc_server_t *s, om_done_fn done, void *arg)
{
    if (s->state == ST_STOPPING || s->state == ST_CLOSED) {
        return;
    }
    if (s->state == ST_NEW) {
        /* Never started, or start failed and undid everything: nothing to close. */
        s->state = ST_CLOSED;
        done(arg);
        return;
    }
    s->state = ST_STOPPING;
    s->done = done;
    s->done_arg = arg;
    /* Finished replies waiting lazily must come in now: shutdown waits for them (ops_out). */
    om_mailbox_set_lazy(s->mb, 0);
    om_intake_wait_cancel(s->r->host->intake, &s->intake);
    uv_timer_init(s->r->host->loop, &s->grace);
    s->grace.data = s;
    uv_timer_start(&s->grace, on_grace_expired, s->grace_ms, 0);
    s->ops_out++;
    OM_TSAN_RELEASE(&s->shutdown_tag.gt);
    grpc_server_shutdown_and_notify(s->server, s->cq, &s->shutdown_tag.gt);
}

/* ------------------------------------------------------------------------------------------ */
/* Create, start, destroy                                                                     */

int otlp_grpc_create(rcv_otlp_t *r, otlp_grpc_server_t **out, om_err_t *err)
{
    otlp_grpc_server_t *s = om_calloc(1, sizeof *s);
    if (s == NULL) {
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    s->r = r;
    s->cfg = &r->cfg->protocols.grpc;
    /* The field table bounds max_recv_msg_size_mib to 1..2047, so this fits an int. */
    s->max_recv = (int)(s->cfg->max_recv_msg_size_mib * MIB);
    s->arena_cap = (size_t)s->max_recv * ARENA_PER_WIRE_BYTE;
    s->grace_ms = DEFAULT_GRACE_MS;
    om_intake_wait_init(&s->intake, intake_resumed, s);
    s->shutdown_tag =
        (tag_t){.msg.run = run_tag, .gt.done = tag_done, .kind = TAG_SHUTDOWN, .srv = s};
    for (int i = 0; i < N_SLOTS; i++) {
        slot_t *sl = &s->slots[i];
        sl->tag = (tag_t){.msg.run = run_tag, .gt.done = tag_done, .kind = TAG_SLOT, .srv = s};
        sl->method = i < OM_SIG_COUNT * SLOTS_PER_METHOD ? i / SLOTS_PER_METHOD : METHOD_OTHER;
        sl->status_msg = grpc_empty_slice();
    }
    *out = s;
    return 0;
}

/* The host part of the address for gRPC's resolver: "" means every interface (gRPC binds
 * [::] dual-stack, or 0.0.0.0 without IPv6), IPv6 literals get their brackets back, and
 * "localhost" is left to gRPC, which binds every loopback address it resolves to. */
static int bind_host(const char *endpoint, char *out, size_t cap, int *port, om_err_t *err)
{
    char *host = NULL;
    int rc = om_parse_endpoint(endpoint, &host, port, err);
    if (rc != 0) {
        return rc;
    }
    int n;
    if (host[0] == '\0') {
        n = snprintf(out, cap, "0.0.0.0");
    } else if (strchr(host, ':') != NULL && host[0] != '[') {
        n = snprintf(out, cap, "[%s]", host);
    } else {
        n = snprintf(out, cap, "%s", host);
    }
    om_free(host);
    if (n < 0 || (size_t)n >= cap) {
        om_err_set(err, OM_ECONFIG, "endpoint %.200s is too long", endpoint);
        return OM_ECONFIG;
    }
    return 0;
}

static int mailbox_open(otlp_grpc_server_t *s, om_err_t *err)
{
    s->mb = om_mailbox_new(s->r->host->loop);
    if (s->mb == NULL) {
        om_err_set(err, OM_ENOMEM, "cannot make the gRPC thread's mailbox");
        return OM_ENOMEM;
    }
    om_mailbox_set_lazy(s->mb, LAZY_REPLIES);
    return 0;
}

static grpc_server *server_new(const otlp_grpc_cfg_t *cfg, int max_recv)
{
    grpc_arg args[4];
    memset(args, 0, sizeof args);
    size_t n = 0;
    args[n].type = GRPC_ARG_INTEGER;
    args[n].key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
    args[n++].value.integer = max_recv;
    /* Compressed messages arrive as sent; decode_compressed inflates them. */
    args[n].type = GRPC_ARG_INTEGER;
    args[n].key = GRPC_ARG_ENABLE_PER_MESSAGE_DECOMPRESSION;
    args[n++].value.integer = 0;
    /* gRPC sets SO_REUSEPORT by default, which would let a second collector bind the same
     * port silently and steal half the connections. */
    args[n].type = GRPC_ARG_INTEGER;
    args[n].key = GRPC_ARG_ALLOW_REUSEPORT;
    args[n++].value.integer = 0;
    if (cfg->max_concurrent_streams > 0) {
        args[n].type = GRPC_ARG_INTEGER;
        args[n].key = GRPC_ARG_MAX_CONCURRENT_STREAMS;
        args[n++].value.integer = (int)cfg->max_concurrent_streams;
    }
    grpc_channel_args ca = {.num_args = n, .args = args};
    return grpc_server_create(&ca, NULL);
}

/* Insecure credentials, or with tls the server's key pair and, for mutual TLS, the client CA.
 * gRPC copies the PEM strings, so the caller frees them afterwards. NULL when gRPC fails. */
static grpc_server_credentials *server_creds(const om_tls_pem_t *pem)
{
    if (pem == NULL) {
        return grpc_insecure_server_credentials_create();
    }
    grpc_ssl_pem_key_cert_pair pair = {.private_key = pem->key, .cert_chain = pem->cert};
    grpc_ssl_client_certificate_request_type req =
        pem->client_ca != NULL ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                               : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE;
    return grpc_ssl_server_credentials_create_ex(pem->client_ca, &pair, 1, req, NULL);
}

/* The host's queue, server, methods; then listen (with TLS when pem is not NULL). Nothing is
 * started yet. */
static int server_setup(otlp_grpc_server_t *s, const char *addr, const om_tls_pem_t *pem,
                        om_err_t *err)
{
    int rc = om_grpc_acquire(s->r->host->grpc, &s->cq, err);
    if (rc != 0) {
        return rc;
    }
    s->server = server_new(s->cfg, s->max_recv);
    for (int i = 0; i < OM_SIG_COUNT; i++) {
        s->methods[i] = grpc_server_register_method(s->server, method_paths[i], NULL,
                                                    GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
        if (s->methods[i] == NULL) {
            om_err_set(err, OM_EIO, "gRPC refused to register %s", method_paths[i]);
            return OM_EIO;
        }
    }
    grpc_server_register_completion_queue(s->server, s->cq, NULL);
    grpc_server_credentials *creds = server_creds(pem);
    if (creds == NULL) {
        om_err_set(err, OM_ECONFIG, "gRPC refused the TLS credentials of protocols::grpc::tls");
        return OM_ECONFIG;
    }
    s->port = grpc_server_add_http2_port(s->server, addr, creds);
    grpc_server_credentials_release(creds);
    if (s->port == 0) {
        om_err_set(err, OM_EIO, "cannot listen on %s for OTLP/gRPC (in use or not available)",
                   addr);
        return OM_EIO;
    }
    return 0;
}

/* Undo a failed start synchronously. The server has no listener and was never started (no
 * tag of ours was handed to gRPC), so it can be destroyed as is, then our use of the queue
 * released. The mailbox, empty, frees itself later without a callback into the server, which
 * destroy may free first. */
static void start_undo(otlp_grpc_server_t *s)
{
    if (s->server != NULL) {
        grpc_server_destroy(s->server);
        s->server = NULL;
    }
    if (s->cq != NULL) {
        om_grpc_release(s->r->host->grpc);
        s->cq = NULL;
    }
    if (s->mb != NULL) {
        om_mailbox_close(s->mb, NULL, NULL);
        s->mb = NULL;
    }
    s->port = 0;
}

/* Read the TLS material and check it with OpenSSL first: gRPC would only say that it cannot
 * listen, while this names the file that is missing or does not parse. */
static int tls_load(otlp_grpc_server_t *s, om_tls_pem_t *pem, om_err_t *err)
{
    const char *path = "protocols::grpc::tls";
    int rc = om_tls_server_pem_load(&s->cfg->tls, path, pem, err);
    if (rc != 0) {
        return rc;
    }
    SSL_CTX *check = om_tls_server_ctx_new(&s->cfg->tls, pem, OM_TLS_GRPC, path, err);
    if (check == NULL) {
        om_tls_pem_free(pem);
        return err->code != 0 ? err->code : OM_ECONFIG;
    }
    SSL_CTX_free(check);
    return 0;
}

int otlp_grpc_start(otlp_grpc_server_t *s, om_err_t *err)
{
    if (s->state != ST_NEW) {
        om_err_set(err, OM_EINVAL, "OTLP/gRPC server started twice");
        return OM_EINVAL;
    }
    char host[300], addr[320];
    int port = 0;
    int rc = bind_host(s->cfg->endpoint, host, sizeof host, &port, err);
    if (rc == 0 && s->auth == NULL) {
        rc = om_auth_server_new(s->r->host, &s->cfg->auth, s->r->log_name, "grpc", &s->auth, err);
    }
    if (rc != 0) {
        return rc;
    }
    snprintf(addr, sizeof addr, "%s:%d", host, port);
    om_tls_pem_t pem;
    memset(&pem, 0, sizeof pem);
    if (s->cfg->tls_present) {
        rc = tls_load(s, &pem, err);
        if (rc != 0) {
            return rc;
        }
    }
    if (!s->grpc_inited) {
        grpc_init();
        s->grpc_inited = true;
    }
    rc = mailbox_open(s, err);
    if (rc == 0) {
        rc = server_setup(s, addr, s->cfg->tls_present ? &pem : NULL, err);
    }
    const char *note = !s->cfg->tls_present    ? ""
                       : pem.client_ca != NULL ? " (TLS, client certificates required)"
                                               : " (TLS)";
    om_tls_pem_free(&pem);
    if (rc != 0) {
        start_undo(s);
        return rc;
    }
    grpc_server_start(s->server);
    s->state = ST_RUNNING;
    for (int i = 0; i < N_SLOTS; i++) {
        slot_arm_or_park(s, &s->slots[i]);
    }
    OM_CLOG(s->r->log_name, OM_LOG_INFO, "OTLP/gRPC listening on %s:%d%s", host, s->port, note);
    return 0;
}

void otlp_grpc_destroy(otlp_grpc_server_t *s)
{
    if (s == NULL) {
        return;
    }
    /* Balances the grpc_init() of start; the last one cleans up gRPC's own threads. */
    if (s->grpc_inited) {
        grpc_shutdown();
    }
    om_auth_server_free(s->auth);
    om_free(s);
}

int otlp_grpc_bound_port(const otlp_grpc_server_t *s)
{
    return s->port;
}

void otlp_grpc_set_shutdown_grace(otlp_grpc_server_t *s, uint64_t ms)
{
    s->grace_ms = ms;
}
