/* otlp_exporter.c: the otlp exporter, OTLP over gRPC (what Tempo, Jaeger and otelcol take),
 * on gRPC C core 1.51.
 *
 * Data path
 * ---------
 * consume_* hands the batch to the exporter helper (queue, consumers, retries, counters).
 * The helper calls send() on the loop thread for each attempt. Without compression an
 * unchanged batch lends its wire bytes to gRPC as slices (no copy; see lend_t), any other is
 * packed straight into a gRPC slice. With gzip we compress the message ourselves, once per
 * attempt, with the core's compressor (libdeflate: several times cheaper than the zlib gRPC
 * would use, bench/README.md), and hand gRPC an already-compressed byte buffer: it sets the
 * message's compressed flag and sends the bytes as they are (the channel's default algorithm,
 * gzip, gives the grpc-encoding header). A message of at least OFFLOAD_MIN bytes is packed
 * and compressed on the host's worker pool, the batch and a compressor handed to the job and
 * back (om.h, worker service); smaller ones, or when the pool refuses, on the loop. Then one
 * unary call is started with a single batch of operations (initial metadata with the
 * configured headers, the message, half-close, and the three receives), with deadline now +
 * timeout. Nothing here waits: gRPC does the network work on its own threads.
 *
 * Threads
 * -------
 * gRPC exposes no file descriptors: its I/O moves while some thread waits on a completion
 * queue. Calls are made on the host's queue (om.h, "gRPC completion queue": one queue and one
 * thread for the process, shared with the OTLP receiver, since gRPC polls every socket from
 * whichever thread waits). A completed call's tag (call_t's gt) runs call_done on that thread,
 * which posts the call (its om_msg_t) to the loop through the exporter's om_mailbox. It
 * touches nothing but the mailbox and the success flag of the completed call; the mailbox's
 * mutex orders gRPC's writes into the call before the loop's reads. Everything else,
 * grpc_call_unref included, happens on the loop thread.
 *
 * Results (OTLP specification, "OTLP/gRPC Response" and "Failures")
 * ------------------------------------------------------------------
 * OK: delivered; a partial_success in the response is logged as a warning (nothing is
 * retried). CANCELLED, DEADLINE_EXCEEDED, ABORTED, OUT_OF_RANGE, UNAVAILABLE and DATA_LOSS are
 * retryable, and so is RESOURCE_EXHAUSTED when the server sent a google.rpc.RetryInfo; its
 * retry_delay is honoured. Every other status drops the batch (the helper counts it).
 *
 * Shutdown
 * --------
 * The helper stops taking data and drains what is queued to the backend (retries included);
 * when it reports done no call is open (every call's tag came back), so the channel is
 * destroyed and the host's queue released (om_grpc_release returns once no callback is running
 * on the queue's thread, so our last post has returned; the queue itself stops only with its
 * last user, never under the receiver). Then the mailbox is closed, once gRPC holds no lent
 * bytes (their release comes through it), and done is called from its close callback. */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/compression.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include "google/rpc/error_details.pb-c.h"
#include "google/rpc/status.pb-c.h"
#include "otlp_exporter.h"

#define MAX_RECONNECT_BACKOFF_MS 30000
#define MSG_LEN 256
#define PARTIAL_LOG_INTERVAL_MS 10000 /* one partial-success warning per this, at most */

static const char *const method_paths[OM_SIG_COUNT] = {
    "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
    "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
};

typedef enum { ST_NEW, ST_RUNNING, ST_STOPPING, ST_DONE } state_t;

typedef struct exp_otlp {
    const exp_otlp_cfg_t *cfg;
    const char *log_name;
    om_host_t *host;
    om_exphelper_t *helper;
    char *target; /* owned */
    bool tls;
    state_t state;
    bool grpc_inited;  /* grpc_init() was called; destroy balances it */
    grpc_metadata *md; /* owned array of n_md; the slices are owned too */
    size_t n_md;
    om_auth_client_t *auth; /* cfg->auth's authenticator, from start; NULL: none */
    grpc_channel *channel;
    grpc_completion_queue *cq; /* the host's (om_grpc_acquire), from start until released */
    om_mailbox_t *mb;
    size_t lends_out;           /* batches whose bytes gRPC may still reference */
    bool cq_exited;             /* the queue is released; close the mailbox once lends_out is 0 */
    uint64_t partial_logged_ms; /* when the last partial-success warning was logged */
    uint64_t partial_quiet;     /* partial successes not logged since then */
    om_compressors_t *compressors; /* gzip: idle compressors; NULL: no compression */
    bool shutdown_called;
    om_done_fn done;
    void *done_arg;
} exp_otlp_t;

/* One attempt. Between grpc_call_start_batch and the loop taking the message off the
 * mailbox, gRPC owns every field it was handed; the loop owns the struct otherwise. */
typedef struct call {
    om_msg_t msg;     /* first member: the mailbox message */
    om_grpc_tag_t gt; /* the completion tag; call_done runs on the queue's thread */
    exp_otlp_t *e;
    om_exp_req_t *req;
    grpc_call *call;
    grpc_byte_buffer *request;
    grpc_metadata_array initial_md, trailing_md;
    grpc_byte_buffer *response; /* NULL when the server sent no message */
    grpc_status_code status;
    grpc_slice details;
    const char *error_string; /* gpr_malloc'd by gRPC, or NULL */
    int ok;                   /* written by the queue's thread before posting */
    /* With an authenticator: the configured metadata and the authenticator's of this call
     * (they change when a token file does); the array and the slices it owns are freed
     * with the call. NULL: e->md is sent. */
    grpc_metadata *md;
    size_t n_md, n_own; /* entries, and how many at the end hold slices of their own */
    /* gzip: the compression job. From submit to done the worker owns z, zbuf and zrc and
     * reads req->batch (the helper holds a reference until the attempt ends). */
    om_job_t job;
    om_compressor_t *z; /* from e->compressors; put back in done */
    uint8_t *zbuf;      /* the compressed message (om_malloc'd), until it becomes a slice */
    size_t zlen;
    int zrc;
} call_t;

/* Messages at least this large are compressed on a worker: below it, the hand-over to a
 * thread and back costs about as much as compressing on the loop (tens of microseconds). */
#define OFFLOAD_MIN ((size_t)16 * 1024)

/* What an attempt came to, for om_exp_req_done. */
typedef struct outcome {
    int rc;
    uint64_t retry_after_ms;
    char msg[MSG_LEN];
} outcome_t;

/* ------------------------------------------------------------------------------------------ */
/* The host's completion-queue thread                                                         */

/* A call completed (the service acquired the tag for TSan). The loop closes the mailbox only
 * after releasing the queue, which waits for this callback to return. */
static void call_done(om_grpc_tag_t *gt, bool ok)
{
    call_t *c = (call_t *)(void *)((char *)gt - offsetof(call_t, gt));
    c->ok = ok;
    om_mailbox_post(c->e->mb, &c->msg);
}

/* ------------------------------------------------------------------------------------------ */
/* Reading results (loop thread)                                                              */

/* grpc-go's names, which otelcol users see in its logs. */
static const char *code_name(grpc_status_code code)
{
    static const char *const names[] = {
        "OK",
        "Canceled",
        "Unknown",
        "InvalidArgument",
        "DeadlineExceeded",
        "NotFound",
        "AlreadyExists",
        "PermissionDenied",
        "ResourceExhausted",
        "FailedPrecondition",
        "Aborted",
        "OutOfRange",
        "Unimplemented",
        "Internal",
        "Unavailable",
        "DataLoss",
        "Unauthenticated",
    };
    if ((int)code >= 0 && (size_t)code < sizeof names / sizeof names[0]) {
        return names[code];
    }
    return "Code";
}

/* The whole message of a byte buffer as one new slice (gRPC inflates compressed ones). */
static bool buffer_slice(grpc_byte_buffer *bb, grpc_slice *out)
{
    grpc_byte_buffer_reader reader;
    if (!grpc_byte_buffer_reader_init(&reader, bb)) {
        return false;
    }
    *out = grpc_byte_buffer_reader_readall(&reader);
    grpc_byte_buffer_reader_destroy(&reader);
    return true;
}

/* retry_delay of a google.rpc.RetryInfo packed in an Any, in ms (negative reads as 0). */
static bool retry_info_delay(const Google__Protobuf__Any *any, uint64_t *ms)
{
    const char *slash = any->type_url != NULL ? strrchr(any->type_url, '/') : NULL;
    const char *name = slash != NULL ? slash + 1 : any->type_url;
    if (name == NULL || strcmp(name, "google.rpc.RetryInfo") != 0) {
        return false;
    }
    Google__Rpc__RetryInfo *ri =
        google__rpc__retry_info__unpack(NULL, any->value.len, any->value.data);
    if (ri == NULL) {
        return false;
    }
    *ms = 0;
    const Google__Protobuf__Duration *d = ri->retry_delay;
    if (d != NULL && d->seconds >= 0 && d->nanos >= 0) {
        /* A day is more than any max_elapsed_time anyone sets; the cap avoids overflow. */
        int64_t s = d->seconds > 86400 ? 86400 : d->seconds;
        *ms = (uint64_t)s * 1000u + (uint64_t)d->nanos / 1000000u;
    }
    google__rpc__retry_info__free_unpacked(ri, NULL);
    return true;
}

/* Looks for a RetryInfo in the google.rpc.Status of the grpc-status-details-bin trailer. */
static bool find_retry_info(const grpc_metadata_array *md, uint64_t *ms)
{
    bool found = false;
    for (size_t i = 0; i < md->count && !found; i++) {
        const grpc_metadata *m = &md->metadata[i];
        if (grpc_slice_str_cmp(m->key, "grpc-status-details-bin") != 0) {
            continue;
        }
        Google__Rpc__Status *st = google__rpc__status__unpack(NULL, GRPC_SLICE_LENGTH(m->value),
                                                              GRPC_SLICE_START_PTR(m->value));
        if (st == NULL) {
            continue;
        }
        for (size_t k = 0; k < st->n_details && !found; k++) {
            found = retry_info_delay(st->details[k], ms);
        }
        google__rpc__status__free_unpacked(st, NULL);
    }
    return found;
}

/* The partial_success of an Export*ServiceResponse: how many items the server rejected and
 * why. Returns false when there is none (or the response does not decode). */
static bool partial_success(om_signal_t sig, const uint8_t *data, size_t len, int64_t *rejected,
                            char *msg, size_t cap)
{
    static const ProtobufCMessageDescriptor *const descs[OM_SIG_COUNT] = {
        &opentelemetry__proto__collector__trace__v1__export_trace_service_response__descriptor,
        &opentelemetry__proto__collector__metrics__v1__export_metrics_service_response__descriptor,
        &opentelemetry__proto__collector__logs__v1__export_logs_service_response__descriptor,
    };
    int idx = om_signal_index(sig);
    ProtobufCMessage *m = protobuf_c_message_unpack(descs[idx], NULL, len, data);
    if (m == NULL) {
        return false;
    }
    bool found = false;
    const char *why = NULL;
    if (sig == OM_SIG_TRACES && ((om_traces_resp_t *)m)->partial_success != NULL) {
        *rejected = ((om_traces_resp_t *)m)->partial_success->rejected_spans;
        why = ((om_traces_resp_t *)m)->partial_success->error_message;
        found = true;
    } else if (sig == OM_SIG_METRICS && ((om_metrics_resp_t *)m)->partial_success != NULL) {
        *rejected = ((om_metrics_resp_t *)m)->partial_success->rejected_data_points;
        why = ((om_metrics_resp_t *)m)->partial_success->error_message;
        found = true;
    } else if (sig == OM_SIG_LOGS && ((om_logs_resp_t *)m)->partial_success != NULL) {
        *rejected = ((om_logs_resp_t *)m)->partial_success->rejected_log_records;
        why = ((om_logs_resp_t *)m)->partial_success->error_message;
        found = true;
    }
    snprintf(msg, cap, "%s", why != NULL ? why : "");
    protobuf_c_message_free_unpacked(m, NULL);
    return found && (*rejected != 0 || msg[0] != '\0');
}

/* Success: warn about a partial success, as otelcol does, at most once per
 * PARTIAL_LOG_INTERVAL_MS; the batch still counts as sent (the server has decided, and
 * retrying would not change its mind). */
static void check_response(exp_otlp_t *e, const call_t *c)
{
    grpc_slice data;
    if (c->response == NULL || !buffer_slice(c->response, &data)) {
        return;
    }
    const om_batch_t *b = c->req->batch;
    int64_t rejected = 0;
    char why[MSG_LEN];
    bool partial = partial_success(b->signal, GRPC_SLICE_START_PTR(data), GRPC_SLICE_LENGTH(data),
                                   &rejected, why, sizeof why);
    grpc_slice_unref(data);
    if (!partial) {
        return;
    }
    uint64_t now = uv_now(e->host->loop);
    if (e->partial_logged_ms != 0 && now - e->partial_logged_ms < PARTIAL_LOG_INTERVAL_MS) {
        e->partial_quiet++;
        return;
    }
    char quiet[64] = "";
    if (e->partial_quiet > 0) {
        snprintf(quiet, sizeof quiet, " (and %llu more since the last such warning)",
                 (unsigned long long)e->partial_quiet);
    }
    OM_CLOG(e->log_name, OM_LOG_WARN, "partial success: the server rejected %lld of %zu %s: %s%s",
            (long long)rejected, b->items, om_signal_item_name(b->signal),
            why[0] != '\0' ? why : "(no message)", quiet);
    e->partial_logged_ms = now != 0 ? now : 1;
    e->partial_quiet = 0;
}

/* The OTLP specification's list; RESOURCE_EXHAUSTED only when the server says when. */
static bool code_retryable(grpc_status_code code, bool has_retry_info)
{
    switch (code) {
    case GRPC_STATUS_CANCELLED:
    case GRPC_STATUS_DEADLINE_EXCEEDED:
    case GRPC_STATUS_ABORTED:
    case GRPC_STATUS_OUT_OF_RANGE:
    case GRPC_STATUS_UNAVAILABLE:
    case GRPC_STATUS_DATA_LOSS:
        return true;
    case GRPC_STATUS_RESOURCE_EXHAUSTED:
        return has_retry_info;
    default:
        return false;
    }
}

static void judge(exp_otlp_t *e, const call_t *c, outcome_t *o)
{
    memset(o, 0, sizeof *o);
    if (!c->ok) {
        o->rc = OM_EIO;
        snprintf(o->msg, sizeof o->msg, "the gRPC call failed before it got a status");
        return;
    }
    if (c->status == GRPC_STATUS_OK) {
        check_response(e, c);
        return;
    }
    uint64_t delay = 0;
    bool has_retry_info = find_retry_info(&c->trailing_md, &delay);
    bool retryable = code_retryable(c->status, has_retry_info);
    o->rc = retryable ? OM_EAGAIN : OM_EPERM;
    o->retry_after_ms = retryable && has_retry_info ? delay : 0;
    snprintf(o->msg, sizeof o->msg, "rpc error: code = %s desc = %.*s", code_name(c->status),
             (int)GRPC_SLICE_LENGTH(c->details), (const char *)GRPC_SLICE_START_PTR(c->details));
}

/* ------------------------------------------------------------------------------------------ */
/* Sending (loop thread)                                                                      */

static void call_free(call_t *c)
{
    if (c->call != NULL) {
        grpc_call_unref(c->call);
    }
    if (c->request != NULL) {
        grpc_byte_buffer_destroy(c->request);
    }
    if (c->response != NULL) {
        grpc_byte_buffer_destroy(c->response);
    }
    grpc_metadata_array_destroy(&c->initial_md);
    grpc_metadata_array_destroy(&c->trailing_md);
    grpc_slice_unref(c->details);
    gpr_free((void *)c->error_string);
    for (size_t i = c->n_md - c->n_own; i < c->n_md; i++) {
        grpc_slice_unref(c->md[i].key);
        grpc_slice_unref(c->md[i].value);
    }
    om_free(c->md);
    om_free(c->zbuf);
    om_compressor_free(c->z); /* NULL unless the attempt failed before giving it back */
    om_free(c);
}

/* A metadata key as gRPC wants it: lowercase. */
static grpc_slice lower_key(const char *name)
{
    grpc_slice key = grpc_slice_from_copied_string(name);
    uint8_t *k = GRPC_SLICE_START_PTR(key);
    for (size_t j = 0; j < GRPC_SLICE_LENGTH(key); j++) {
        k[j] = (uint8_t)((k[j] >= 'A' && k[j] <= 'Z') ? k[j] - 'A' + 'a' : k[j]);
    }
    return key;
}

/* The call's metadata: the configured entries except those the authenticator sets (its win,
 * as otelcol's per-RPC credentials do), then the authenticator's. Borrowed configured slices
 * come first; the call owns the rest. */
static int call_metadata(exp_otlp_t *e, call_t *c)
{
    om_http_header_t h[OM_AUTH_MAX_HEADERS];
    size_t n = om_auth_client_headers(e->auth, h, OM_AUTH_MAX_HEADERS);
    c->md = om_calloc(e->n_md + n + 1, sizeof *c->md);
    if (c->md == NULL) {
        return OM_ENOMEM;
    }
    for (size_t i = 0; i < e->n_md; i++) {
        bool replaced = false;
        for (size_t j = 0; j < n && !replaced; j++) {
            size_t kl = strlen(h[j].name);
            replaced =
                GRPC_SLICE_LENGTH(e->md[i].key) == kl &&
                strncasecmp((const char *)GRPC_SLICE_START_PTR(e->md[i].key), h[j].name, kl) == 0;
        }
        if (!replaced) {
            c->md[c->n_md++] = e->md[i];
        }
    }
    for (size_t j = 0; j < n; j++) {
        c->md[c->n_md].key = lower_key(h[j].name);
        c->md[c->n_md++].value = grpc_slice_from_copied_string(h[j].value);
        c->n_own++;
    }
    return 0;
}

/* The attempt is over: free everything first, because om_exp_req_done may start the next
 * attempt, or finish the helper's shutdown, which tears the channel down. */
static void call_completed(om_msg_t *m)
{
    call_t *c = (call_t *)m;
    om_exp_req_t *req = c->req;
    outcome_t o;
    judge(c->e, c, &o);
    call_free(c);
    om_exp_req_done(req, o.rc, o.retry_after_ms, o.rc != 0 ? o.msg : NULL);
}

/* The request message packed straight into a gRPC slice. */
static grpc_byte_buffer *pack_request(const om_batch_t *b)
{
    size_t n = om_batch_proto_size(b);
    grpc_slice s = grpc_slice_malloc(n);
    om_batch_proto_pack(b, GRPC_SLICE_START_PTR(s));
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    return bb;
}

/* The wire bytes of an unchanged batch, lent to gRPC instead of copied: each segment (a
 * request as it arrived, tens of KB) becomes a slice pointing into the batch's arenas, and
 * the message is their concatenation. gRPC may drop its last reference to a slice on any of
 * its threads, even after the call has completed, so the lend holds a reference to the batch
 * until the last slice is gone, and hands the release to the loop, which owns the batch. */
typedef struct lend {
    om_msg_t msg; /* first member: posted to the mailbox when the last slice is gone */
    exp_otlp_t *e;
    om_batch_t *batch;
    _Atomic size_t slices;
} lend_t;

/* Below this average segment size, one copy costs less than a slice per segment. */
#define LEND_MIN_AVG_SEGMENT 4096

static void mailbox_closed(void *arg);

/* Loop thread: gRPC holds none of the batch's bytes any more. */
static void lend_returned(om_msg_t *m)
{
    lend_t *l = (lend_t *)m;
    exp_otlp_t *e = l->e;
    om_batch_release(l->batch);
    om_free(l);
    if (--e->lends_out == 0 && e->cq_exited && e->mb != NULL) {
        om_mailbox_t *mb = e->mb;
        e->mb = NULL;
        om_mailbox_close(mb, mailbox_closed, e);
    }
}

/* Any thread: gRPC dropped one slice. */
static void lend_slice_gone(void *arg)
{
    lend_t *l = arg;
    if (atomic_fetch_sub_explicit(&l->slices, 1, memory_order_acq_rel) == 1) {
        om_mailbox_post(l->e->mb, &l->msg);
    }
}

static grpc_byte_buffer *lend_request(exp_otlp_t *e, om_batch_t *b)
{
    size_t n = b->n_raw;
    lend_t *l = om_calloc(1, sizeof *l);
    grpc_slice *slices = om_malloc(n * sizeof *slices);
    if (l == NULL || slices == NULL) {
        om_free(l);
        om_free(slices);
        return pack_request(b);
    }
    l->msg.run = lend_returned;
    l->e = e;
    l->batch = om_batch_ref(b);
    atomic_init(&l->slices, n);
    e->lends_out++;
    for (size_t i = 0; i < n; i++) {
        slices[i] = grpc_slice_new_with_user_data((void *)(uintptr_t)b->raw[i].data, b->raw[i].len,
                                                  lend_slice_gone, l);
    }
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(slices, n);
    for (size_t i = 0; i < n; i++) {
        grpc_slice_unref(slices[i]); /* the byte buffer holds its own references */
    }
    om_free(slices);
    return bb;
}

static grpc_byte_buffer *request_buffer(exp_otlp_t *e, om_batch_t *b)
{
    if (!b->raw_valid || b->n_raw == 0) {
        return pack_request(b);
    }
    size_t total = om_batch_proto_size(b);
    if (b->n_raw > 1 && total / b->n_raw < LEND_MIN_AVG_SEGMENT) {
        return pack_request(b);
    }
    return lend_request(e, b);
}

static grpc_call_error start_ops(exp_otlp_t *e, call_t *c)
{
    grpc_op ops[6];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].data.send_initial_metadata.count = c->md != NULL ? c->n_md : e->n_md;
    ops[0].data.send_initial_metadata.metadata = c->md != NULL ? c->md : e->md;
    ops[0].flags = e->cfg->wait_for_ready ? GRPC_INITIAL_METADATA_WAIT_FOR_READY : 0;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = c->request;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &c->initial_md;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &c->response;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &c->trailing_md;
    ops[5].data.recv_status_on_client.status = &c->status;
    ops[5].data.recv_status_on_client.status_details = &c->details;
    ops[5].data.recv_status_on_client.error_string = &c->error_string;
    OM_TSAN_RELEASE(&c->gt); /* the call is gRPC's until the queue's thread gets it back */
    return grpc_call_start_batch(c->call, ops, sizeof ops / sizeof ops[0], &c->gt, NULL);
}

static gpr_timespec deadline_of(uint64_t timeout_ms)
{
    if (timeout_ms == 0) {
        return gpr_inf_future(GPR_CLOCK_MONOTONIC);
    }
    return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                        gpr_time_from_millis((int64_t)timeout_ms, GPR_TIMESPAN));
}

/* Starts the call for c, whose request buffer is ready; on failure the attempt ends here. */
static void start_call(exp_otlp_t *e, call_t *c)
{
    om_exp_req_t *req = c->req;
    grpc_slice method =
        grpc_slice_from_static_string(method_paths[om_signal_index(req->batch->signal)]);
    c->call = grpc_channel_create_call(e->channel, NULL, GRPC_PROPAGATE_DEFAULTS, e->cq, method,
                                       NULL, deadline_of(req->timeout_ms), NULL);
    grpc_call_error ce = c->call != NULL ? start_ops(e, c) : GRPC_CALL_ERROR;
    if (ce != GRPC_CALL_OK) {
        char msg[MSG_LEN];
        snprintf(msg, sizeof msg, "cannot start a gRPC call: %s", grpc_call_error_to_string(ce));
        call_free(c);
        om_exp_req_done(req, OM_EPERM, 0, msg);
    }
}

/* A worker (or the loop, see send_compressed): only c's z, zbuf, zlen, zrc, and reads of the
 * batch, as the worker section of om.h allows. */
static void compress_work(om_job_t *job, void *thread_data)
{
    (void)thread_data;
    call_t *c = (call_t *)(void *)((char *)job - offsetof(call_t, job));
    const om_batch_t *b = c->req->batch;
    if (b->raw_valid) {
        /* The requests as they arrived: compressed where they are (see om_batch_proto_pack). */
        c->zrc = om_compressor_run_pieces(c->z, b->raw, b->n_raw, &c->zbuf, &c->zlen);
        return;
    }
    size_t n = om_batch_proto_size(b);
    uint8_t *raw = om_malloc(n);
    if (raw == NULL) {
        c->zrc = OM_ENOMEM;
        return;
    }
    size_t len = om_batch_proto_pack(b, raw);
    c->zrc = om_compressor_run(c->z, raw, len, &c->zbuf, &c->zlen);
    om_free(raw);
}

/* Loop thread: the message is compressed (status 0 and zrc 0), or the attempt fails. */
static void compressed(om_job_t *job, int status)
{
    call_t *c = (call_t *)(void *)((char *)job - offsetof(call_t, job));
    exp_otlp_t *e = c->e;
    om_compressors_put(e->compressors, c->z);
    c->z = NULL;
    int rc = status != 0 ? status : c->zrc;
    if (rc != 0) {
        om_exp_req_t *req = c->req;
        call_free(c);
        /* OM_ESHUTDOWN (the pool closed first) and OM_ENOMEM are retryable for the helper. */
        om_exp_req_done(req, rc, 0,
                        rc == OM_ETOOBIG ? "message too large to compress" : om_strerror(rc));
        return;
    }
    /* The slice takes the buffer: gRPC frees it with om_free when it is done with it. */
    grpc_slice s = grpc_slice_new(c->zbuf, c->zlen, om_free);
    c->zbuf = NULL;
    c->request = grpc_raw_compressed_byte_buffer_create(&s, 1, GRPC_COMPRESS_GZIP);
    grpc_slice_unref(s);
    start_call(e, c);
}

static void send_compressed(exp_otlp_t *e, call_t *c)
{
    c->z = om_compressors_get(e->compressors);
    if (c->z == NULL) {
        om_exp_req_t *req = c->req;
        call_free(c);
        om_exp_req_done(req, OM_ENOMEM, 0, "out of memory");
        return;
    }
    if (om_batch_proto_size(c->req->batch) >= OFFLOAD_MIN &&
        om_workers_submit(e->host->workers, &c->job, compress_work, compressed) == 0) {
        return;
    }
    compress_work(&c->job, NULL);
    compressed(&c->job, 0);
}

static void exp_send(void *self, om_exp_req_t *req)
{
    exp_otlp_t *e = self;
    if (e->state != ST_RUNNING && e->state != ST_STOPPING) {
        om_exp_req_done(req, OM_EPERM, 0, "the exporter was not started");
        return;
    }
    call_t *c = om_calloc(1, sizeof *c);
    if (c == NULL) {
        om_exp_req_done(req, OM_ENOMEM, 0, "out of memory");
        return;
    }
    c->msg.run = call_completed;
    c->gt.done = call_done;
    c->e = e;
    c->req = req;
    c->details = grpc_empty_slice();
    grpc_metadata_array_init(&c->initial_md);
    grpc_metadata_array_init(&c->trailing_md);
    if (e->auth != NULL && call_metadata(e, c) != 0) {
        call_free(c);
        om_exp_req_done(req, OM_ENOMEM, 0, "out of memory");
        return;
    }
    if (e->compressors != NULL) {
        send_compressed(e, c);
        return;
    }
    c->request = request_buffer(e, req->batch);
    start_call(e, c);
}

/* ------------------------------------------------------------------------------------------ */
/* Channel setup (start, loop thread)                                                         */

/* Where the credentials' certificates come from: the PEM read at start, or, with
 * reload_interval and a client certificate, gRPC's file watcher, which reads the files again
 * with that period (validation made sure they are all files). */
static grpc_tls_certificate_provider *provider(const om_tls_client_cfg_t *t,
                                               const om_tls_pem_t *pem, bool *roots)
{
    *roots = pem->ca != NULL;
    if (t->reload_interval > 0 && pem->cert != NULL) {
        int64_t s = (t->reload_interval + OM_NS_PER_S - 1) / OM_NS_PER_S;
        unsigned secs = s > (int64_t)UINT32_MAX ? UINT32_MAX : (unsigned)s;
        return grpc_tls_certificate_provider_file_watcher_create(
            t->common.key_file, t->common.cert_file, pem->ca != NULL ? t->common.ca_file : NULL,
            secs);
    }
    grpc_tls_identity_pairs *pairs = NULL;
    if (pem->cert != NULL) {
        pairs = grpc_tls_identity_pairs_create();
        grpc_tls_identity_pairs_add_pair(pairs, pem->key, pem->cert);
    }
    return grpc_tls_certificate_provider_static_data_create(pem->ca, pairs);
}

/* TLS through gRPC's TLS credentials API, the one that can switch verification off. The PEM
 * comes from the core (om_tls_client_pem_load): read and checked at start, with the system's CAs
 * after the given ones when include_system_ca_certs_pool asks. gRPC then negotiates TLS 1.2
 * or 1.3 (what the core's validation accepts of min_version and max_version). */
static grpc_channel_credentials *tls_credentials(const om_tls_client_cfg_t *t,
                                                 const om_tls_pem_t *pem)
{
    grpc_tls_credentials_options *o = grpc_tls_credentials_options_create();
    if (pem->ca != NULL || pem->cert != NULL) {
        bool roots = false;
        grpc_tls_certificate_provider *p = provider(t, pem, &roots);
        grpc_tls_credentials_options_set_certificate_provider(o, p);
        grpc_tls_certificate_provider_release(p);
        if (roots) {
            grpc_tls_credentials_options_watch_root_certs(o);
        }
        if (pem->cert != NULL) {
            grpc_tls_credentials_options_watch_identity_key_cert_pairs(o);
        }
    }
    if (t->insecure_skip_verify) {
        grpc_tls_credentials_options_set_verify_server_cert(o, 0);
        grpc_tls_certificate_verifier *v = grpc_tls_certificate_verifier_no_op_create();
        grpc_tls_credentials_options_set_certificate_verifier(o, v);
        grpc_tls_certificate_verifier_release(v);
        /* Otherwise each call would still check its host against the certificate. */
        grpc_tls_credentials_options_set_check_call_host(o, 0);
    }
    return grpc_tls_credentials_create(o); /* takes o */
}

static int make_credentials(exp_otlp_t *e, grpc_channel_credentials **out, om_err_t *err)
{
    if (!e->tls) {
        *out = grpc_insecure_credentials_create();
        return 0;
    }
    om_tls_pem_t pem;
    int rc = om_tls_client_pem_load(&e->cfg->tls, "tls", &pem, err);
    if (rc == 0) {
        *out = tls_credentials(&e->cfg->tls, &pem);
        om_tls_pem_free(&pem);
    }
    return rc;
}

static void arg_int(grpc_arg *a, size_t *n, const char *key, int v)
{
    a[*n].type = GRPC_ARG_INTEGER;
    a[*n].key = (char *)(uintptr_t)key;
    a[*n].value.integer = v;
    (*n)++;
}

static void arg_str(grpc_arg *a, size_t *n, const char *key, const char *v)
{
    a[*n].type = GRPC_ARG_STRING;
    a[*n].key = (char *)(uintptr_t)key;
    a[*n].value.string = (char *)(uintptr_t)v;
    (*n)++;
}

static int ms_arg(int64_t ns)
{
    int64_t ms = ns / OM_NS_PER_MS;
    return ms > INT32_MAX ? INT32_MAX : (int)ms;
}

static grpc_channel *channel_new(exp_otlp_t *e, grpc_channel_credentials *creds)
{
    const exp_otlp_cfg_t *cfg = e->cfg;
    grpc_arg a[12];
    memset(a, 0, sizeof a);
    size_t n = 0;
    if (cfg->compression == EXP_OTLP_COMP_GZIP) {
        arg_int(a, &n, GRPC_COMPRESSION_CHANNEL_DEFAULT_ALGORITHM, GRPC_COMPRESS_GZIP);
    }
    if (cfg->balancer_name != NULL && cfg->balancer_name[0] != '\0') {
        arg_str(a, &n, GRPC_ARG_LB_POLICY_NAME, cfg->balancer_name);
    }
    if (cfg->keepalive.time > 0) {
        arg_int(a, &n, GRPC_ARG_KEEPALIVE_TIME_MS, ms_arg(cfg->keepalive.time));
        arg_int(a, &n, GRPC_ARG_KEEPALIVE_TIMEOUT_MS, ms_arg(cfg->keepalive.timeout));
        arg_int(a, &n, GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS,
                cfg->keepalive.permit_without_stream ? 1 : 0);
    }
    if (cfg->authority != NULL && cfg->authority[0] != '\0') {
        arg_str(a, &n, GRPC_ARG_DEFAULT_AUTHORITY, cfg->authority);
    }
    if (e->tls && cfg->tls.server_name_override != NULL && cfg->tls.server_name_override[0]) {
        arg_str(a, &n, GRPC_SSL_TARGET_NAME_OVERRIDE_ARG, cfg->tls.server_name_override);
    }
    arg_str(a, &n, GRPC_ARG_PRIMARY_USER_AGENT_STRING,
            cfg->user_agent != NULL ? cfg->user_agent : "OtelMon/" OM_VERSION);
    /* gRPC's default grows to 120 s between reconnection attempts; a backend that comes back
     * should get data again within the helper's own retry interval. */
    arg_int(a, &n, GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, MAX_RECONNECT_BACKOFF_MS);
    grpc_channel_args args = {.num_args = n, .args = a};
    return grpc_channel_create(e->target, creds, &args);
}

/* The configured headers as gRPC metadata, keys lowercased (gRPC requires it). */
static int build_metadata(exp_otlp_t *e, om_err_t *err)
{
    const om_strmap_t *h = &e->cfg->headers;
    if (h->n == 0) {
        return 0;
    }
    e->md = om_calloc(h->n, sizeof *e->md);
    if (e->md == NULL) {
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    for (size_t i = 0; i < h->n; i++) {
        e->md[i].key = lower_key(h->keys[i]);
        e->md[i].value = grpc_slice_from_copied_string(h->values[i] ? h->values[i] : "");
        e->n_md = i + 1;
    }
    return 0;
}

static void free_metadata(exp_otlp_t *e)
{
    for (size_t i = 0; i < e->n_md; i++) {
        grpc_slice_unref(e->md[i].key);
        grpc_slice_unref(e->md[i].value);
    }
    om_free(e->md);
    e->md = NULL;
    e->n_md = 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Lifecycle                                                                                  */

static int exp_create(const om_create_args_t *a, void **self, om_err_t *err)
{
    exp_otlp_t *e = om_calloc(1, sizeof *e);
    if (e == NULL) {
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    e->cfg = a->cfg;
    e->log_name = a->log_name;
    e->host = a->host;
    int rc = exp_otlp_target(e->cfg, &e->target, &e->tls, err);
    if (rc == 0 && e->cfg->compression == EXP_OTLP_COMP_GZIP) {
        /* One idle compressor per consumer at most: that many attempts compress at once. */
        int64_t k = e->cfg->helper.sending_queue.num_consumers;
        e->compressors = om_compressors_new(OM_COMP_GZIP, (int)e->cfg->compression_params.level,
                                            k > 0 ? (unsigned)k : 1);
        if (e->compressors == NULL) {
            om_err_set(err, OM_ENOMEM, "out of memory");
            rc = OM_ENOMEM;
        }
    }
    if (rc == 0) {
        e->helper = om_exphelper_new(a, &e->cfg->helper, exp_send, e, err);
        if (e->helper == NULL) {
            rc = err->code != 0 ? err->code : OM_ENOMEM;
        }
    }
    if (rc != 0) {
        om_compressors_free(e->compressors);
        om_free(e->target);
        om_free(e);
        return rc;
    }
    *self = e;
    return 0;
}

/* Undo a failed start: nothing was sent, no call is open (no tag of ours was handed out). */
static void start_undo(exp_otlp_t *e)
{
    if (e->channel != NULL) {
        grpc_channel_destroy(e->channel);
        e->channel = NULL;
    }
    if (e->cq != NULL) {
        om_grpc_release(e->host->grpc);
        e->cq = NULL;
    }
    if (e->mb != NULL) {
        om_mailbox_close(e->mb, NULL, NULL);
        e->mb = NULL;
    }
    free_metadata(e);
}

static int exp_start(void *self, om_err_t *err)
{
    exp_otlp_t *e = self;
    if (e->state != ST_NEW) {
        om_err_set(err, OM_EINVAL, "started twice");
        return OM_EINVAL;
    }
    if (!e->grpc_inited) {
        grpc_init();
        e->grpc_inited = true;
    }
    grpc_channel_credentials *creds = NULL;
    int rc = e->auth == NULL ? om_auth_client_new(e->host, &e->cfg->auth, &e->auth, err) : 0;
    rc = rc ? rc : make_credentials(e, &creds, err);
    if (rc == 0) {
        rc = build_metadata(e, err);
    }
    if (rc == 0) {
        e->mb = om_mailbox_new(e->host->loop);
        if (e->mb == NULL) {
            om_err_set(err, OM_ENOMEM, "cannot create the mailbox");
            rc = OM_ENOMEM;
        }
    }
    if (rc == 0) {
        rc = om_grpc_acquire(e->host->grpc, &e->cq, err);
    }
    if (rc == 0) {
        e->channel = channel_new(e, creds);
    }
    if (creds != NULL) {
        grpc_channel_credentials_release(creds);
    }
    if (rc != 0) {
        start_undo(e);
        return rc;
    }
    e->state = ST_RUNNING;
    if (e->tls && strncmp(e->cfg->endpoint, "http://", 7) == 0 && !e->cfg->tls.insecure) {
        OM_CLOG(e->log_name, OM_LOG_WARN,
                "endpoint %s says http:// but tls::insecure is false: connecting with TLS, as "
                "otelcol does (set tls::insecure: true for plaintext)",
                e->cfg->endpoint);
    }
    OM_CLOG(e->log_name, OM_LOG_INFO, "exporting OTLP/gRPC to %s (%s, compression %s)", e->target,
            e->tls ? "TLS" : "plaintext",
            e->cfg->compression == EXP_OTLP_COMP_GZIP ? "gzip" : "none");
    return 0;
}

static void mailbox_closed(void *arg)
{
    exp_otlp_t *e = arg;
    e->state = ST_DONE;
    e->done(e->done_arg);
}

/* The helper has delivered or dropped everything: no call is open, every call's tag came back.
 * The channel goes, then our use of the queue (the release waits for our last callback to
 * return from its post). The mailbox stays open while gRPC still holds lent bytes (their
 * release comes through it). */
static void helper_drained(void *arg)
{
    exp_otlp_t *e = arg;
    if (e->state != ST_STOPPING) {
        /* Never started (or the start failed and was undone): nothing to close. */
        e->state = ST_DONE;
        e->done(e->done_arg);
        return;
    }
    grpc_channel_destroy(e->channel);
    e->channel = NULL;
    om_grpc_release(e->host->grpc);
    e->cq = NULL;
    e->cq_exited = true;
    if (e->lends_out == 0) {
        om_mailbox_t *mb = e->mb;
        e->mb = NULL;
        om_mailbox_close(mb, mailbox_closed, e);
    }
}

static void exp_shutdown(void *self, om_done_fn done, void *arg)
{
    exp_otlp_t *e = self;
    if (e->shutdown_called) {
        return;
    }
    e->shutdown_called = true;
    e->done = done;
    e->done_arg = arg;
    if (e->state == ST_RUNNING) {
        e->state = ST_STOPPING;
    }
    om_exphelper_shutdown(e->helper, helper_drained, e);
}

static void exp_destroy(void *self)
{
    exp_otlp_t *e = self;
    if (e == NULL) {
        return;
    }
    om_exphelper_free(e->helper);
    om_compressors_free(e->compressors);
    free_metadata(e);
    om_auth_client_free(e->auth);
    om_free(e->target);
    /* Balances the grpc_init() of start; the last one stops gRPC's own threads. */
    if (e->grpc_inited) {
        grpc_shutdown();
    }
    om_free(e);
}

static int exp_consume(void *self, om_batch_t *batch)
{
    exp_otlp_t *e = self;
    if (batch->items == 0) {
        om_batch_release(batch); /* nothing a backend could store */
        return 0;
    }
    return om_exphelper_consume(e->helper, batch);
}

size_t exp_otlp_queue_size(void *self)
{
    return om_exphelper_queue_size(((exp_otlp_t *)self)->helper);
}

static const char *const aliases[] = {"otlp_grpc", NULL};

const om_factory_t exp_otlp_factory = {
    .abi = OM_FACTORY_ABI,
    .kind = OM_EXPORTER,
    .type = "otlp",
    .aliases = aliases,
    .help = "OTLP over gRPC (Tempo, Jaeger, otelcol), gzip, TLS, retries and a sending queue",
    .signals = OM_SIG_ALL,
    .config_size = sizeof(exp_otlp_cfg_t),
    .fields = exp_otlp_fields,
    .config_validate = exp_otlp_config_validate,
    .create = exp_create,
    .start = exp_start,
    .shutdown = exp_shutdown,
    .destroy = exp_destroy,
    .consume_traces = exp_consume,
    .consume_metrics = exp_consume,
    .consume_logs = exp_consume,
};
