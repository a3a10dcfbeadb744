/* otlp_exporter_test.c: the otlp exporter (OTLP over gRPC) against a gRPC C core server that
 * the test runs on its own thread on 127.0.0.1:0 and scripts (status codes, RetryInfo,
 * partial success, TLS, mTLS), and against OtelMon's own otlp receiver.
 *
 * The server keeps per-message decompression off, so it sees whether a request arrived
 * gzip-compressed, and inflates it itself to compare the bytes with what was sent. */
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <zlib.h>

#include "../../receivers/otlp/otlp_grpc.h"
#include "config.h"
#include "google/rpc/error_details.pb-c.h"
#include "google/rpc/status.pb-c.h"
#include "om_test.h"
#include "om_testauth.h"
#include "om_testpem.h"
#include "om_testdata.h"
#include "otlp_exporter.h"

#define WAIT_MS 10000
#define MAX_SEEN 64
#define MAX_MD 12
#define MAX_SCRIPT 8

static const char *const methods[OM_SIG_COUNT] = {
    "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
    "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
};

static uint64_t now_ms(void)
{
    return uv_hrtime() / 1000000u;
}

/* ------------------------------------------------------------------------------------------ */
/* The scripted gRPC server                                                                   */

typedef struct reply {
    grpc_status_code code;
    const char *msg;
    int64_t retry_ms; /* >= 0: a RetryInfo with this delay goes in grpc-status-details-bin */
    int64_t rejected; /* OK on traces: partial_success.rejected_spans */
} reply_t;

typedef struct seen {
    char method[96];
    char host[96];
    uint8_t *data; /* malloc'd, inflated */
    size_t len;
    bool gzip;                /* the message arrived gzip-compressed */
    int64_t deadline_left_ms; /* the call's deadline minus the time it arrived */
    uint64_t at_ms;
    size_t n_md;
    char keys[MAX_MD][48], values[MAX_MD][96];
} seen_t;

typedef struct tserver {
    grpc_completion_queue *cq;
    grpc_server *server;
    pthread_t thread;
    int port;
    pthread_mutex_t mu;
    reply_t script[MAX_SCRIPT]; /* answered in order, then OK; guarded by mu */
    size_t n_script, next;
    seen_t seen[MAX_SEEN]; /* guarded by mu */
    size_t n_seen;
    /* The call in progress: the server thread's alone. */
    grpc_call *call;
    grpc_call_details details;
    grpc_metadata_array md;
    grpc_byte_buffer *payload, *response;
    grpc_slice status_msg;
    grpc_metadata trailer;
    size_t n_trailer;
    int cancelled;
    char tag_new, tag_recv, tag_reply, tag_shutdown;
} tserver_t;

static void ts_arm(tserver_t *s)
{
    grpc_call_details_init(&s->details);
    grpc_metadata_array_init(&s->md);
    grpc_server_request_call(s->server, &s->call, &s->details, &s->md, s->cq, s->cq, &s->tag_new);
}

static void slice_str(grpc_slice sl, char *out, size_t cap)
{
    snprintf(out, cap, "%.*s", (int)GRPC_SLICE_LENGTH(sl), (const char *)GRPC_SLICE_START_PTR(sl));
}

/* The message as sent: gzip data (the server does not inflate it) is inflated here.
 * Returns a malloc'd buffer or NULL. */
static uint8_t *message_bytes(const uint8_t *in, size_t n, bool gzip, size_t *out_len)
{
    size_t cap = gzip ? 64 * n + 1024 : n + 1;
    uint8_t *out = malloc(cap);
    if (!gzip) {
        memcpy(out, in, n);
        *out_len = n;
        return out;
    }
    z_stream z;
    memset(&z, 0, sizeof z);
    inflateInit2(&z, 16 + MAX_WBITS);
    z.next_in = (Bytef *)(uintptr_t)in;
    z.avail_in = (uInt)n;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    int rc = inflate(&z, Z_FINISH);
    *out_len = z.total_out;
    inflateEnd(&z);
    if (rc != Z_STREAM_END) {
        free(out);
        return NULL;
    }
    return out;
}

static void ts_record(tserver_t *s, seen_t *v)
{
    slice_str(s->details.method, v->method, sizeof v->method);
    slice_str(s->details.host, v->host, sizeof v->host);
    v->at_ms = now_ms();
    gpr_timespec left =
        gpr_time_sub(gpr_convert_clock_type(s->details.deadline, GPR_CLOCK_MONOTONIC),
                     gpr_now(GPR_CLOCK_MONOTONIC));
    v->deadline_left_ms = left.tv_sec > 1000000 ? INT64_MAX : gpr_time_to_millis(left);
    for (size_t i = 0; i < s->md.count && v->n_md < MAX_MD; i++, v->n_md++) {
        slice_str(s->md.metadata[i].key, v->keys[v->n_md], sizeof v->keys[0]);
        slice_str(s->md.metadata[i].value, v->values[v->n_md], sizeof v->values[0]);
    }
    if (s->payload == NULL) {
        return;
    }
    v->gzip = s->payload->data.raw.compression == GRPC_COMPRESS_GZIP;
    grpc_byte_buffer_reader r;
    if (grpc_byte_buffer_reader_init(&r, s->payload)) {
        grpc_slice all = grpc_byte_buffer_reader_readall(&r);
        v->data =
            message_bytes(GRPC_SLICE_START_PTR(all), GRPC_SLICE_LENGTH(all), v->gzip, &v->len);
        grpc_slice_unref(all);
        grpc_byte_buffer_reader_destroy(&r);
    }
}

/* google.rpc.Status{code, message, details: [Any(RetryInfo{retry_delay})]} */
static grpc_slice status_details(const reply_t *rp)
{
    Google__Protobuf__Duration d = GOOGLE__PROTOBUF__DURATION__INIT;
    d.seconds = rp->retry_ms / 1000;
    d.nanos = (int32_t)(rp->retry_ms % 1000) * 1000000;
    Google__Rpc__RetryInfo ri = GOOGLE__RPC__RETRY_INFO__INIT;
    ri.retry_delay = &d;
    uint8_t ri_buf[64];
    Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
    any.type_url = "type.googleapis.com/google.rpc.RetryInfo";
    any.value.len = google__rpc__retry_info__pack(&ri, ri_buf);
    any.value.data = ri_buf;
    Google__Protobuf__Any *details[1] = {&any};
    Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
    st.code = (int32_t)rp->code;
    st.message = (char *)(uintptr_t)(rp->msg ? rp->msg : "");
    st.n_details = 1;
    st.details = details;
    uint8_t buf[512];
    size_t n = google__rpc__status__pack(&st, buf);
    return grpc_slice_from_copied_buffer((const char *)buf, n);
}

static grpc_byte_buffer *partial_response(int64_t rejected)
{
    Opentelemetry__Proto__Collector__Trace__V1__ExportTracePartialSuccess ps =
        OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_PARTIAL_SUCCESS__INIT;
    ps.rejected_spans = rejected;
    ps.error_message = "spans without a name";
    om_traces_resp_t resp =
        OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_RESPONSE__INIT;
    resp.partial_success = &ps;
    uint8_t buf[256];
    size_t n = protobuf_c_message_pack(&resp.base, buf);
    grpc_slice sl = grpc_slice_from_copied_buffer((const char *)buf, n);
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&sl, 1);
    grpc_slice_unref(sl);
    return bb;
}

static void ts_reply(tserver_t *s, reply_t rp)
{
    grpc_op ops[4];
    memset(ops, 0, sizeof ops);
    size_t n = 0;
    ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
    if (rp.code == GRPC_STATUS_OK) {
        s->response =
            rp.rejected > 0 ? partial_response(rp.rejected) : grpc_raw_byte_buffer_create(NULL, 0);
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n++].data.send_message.send_message = s->response;
    }
    s->status_msg = grpc_slice_from_copied_string(rp.msg ? rp.msg : "");
    s->n_trailer = 0;
    if (rp.retry_ms >= 0) {
        s->trailer.key = grpc_slice_from_static_string("grpc-status-details-bin");
        s->trailer.value = status_details(&rp);
        s->n_trailer = 1;
    }
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = rp.code;
    ops[n].data.send_status_from_server.status_details = &s->status_msg;
    ops[n].data.send_status_from_server.trailing_metadata_count = s->n_trailer;
    ops[n++].data.send_status_from_server.trailing_metadata = &s->trailer;
    ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[n++].data.recv_close_on_server.cancelled = &s->cancelled;
    grpc_call_start_batch(s->call, ops, n, &s->tag_reply, NULL);
}

static void ts_on_message(tserver_t *s)
{
    pthread_mutex_lock(&s->mu);
    if (s->n_seen < MAX_SEEN) {
        ts_record(s, &s->seen[s->n_seen++]);
    }
    reply_t rp = {.code = GRPC_STATUS_OK, .retry_ms = -1};
    if (s->next < s->n_script) {
        rp = s->script[s->next++];
    }
    pthread_mutex_unlock(&s->mu);
    ts_reply(s, rp);
}

static void ts_clear(tserver_t *s)
{
    grpc_call_details_destroy(&s->details);
    grpc_metadata_array_destroy(&s->md);
    if (s->payload != NULL) {
        grpc_byte_buffer_destroy(s->payload);
        s->payload = NULL;
    }
    if (s->response != NULL) {
        grpc_byte_buffer_destroy(s->response);
        s->response = NULL;
    }
    grpc_slice_unref(s->status_msg);
    s->status_msg = grpc_empty_slice();
    if (s->n_trailer > 0) {
        grpc_slice_unref(s->trailer.value);
        s->n_trailer = 0;
    }
    if (s->call != NULL) {
        grpc_call_unref(s->call);
        s->call = NULL;
    }
}

/* One call at a time: accept, read the message, answer, then accept the next. */
static void *ts_main(void *arg)
{
    tserver_t *s = arg;
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(s->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN) {
            break;
        }
        if (ev.tag == &s->tag_new && !ev.success) {
            ts_clear(s); /* the server is shutting down */
        } else if (ev.tag == &s->tag_new) {
            grpc_op op;
            memset(&op, 0, sizeof op);
            op.op = GRPC_OP_RECV_MESSAGE;
            op.data.recv_message.recv_message = &s->payload;
            grpc_call_start_batch(s->call, &op, 1, &s->tag_recv, NULL);
        } else if (ev.tag == &s->tag_recv) {
            ts_on_message(s);
        } else if (ev.tag == &s->tag_reply) {
            ts_clear(s);
            ts_arm(s);
        } else if (ev.tag == &s->tag_shutdown) {
            grpc_server_destroy(s->server);
            grpc_completion_queue_shutdown(s->cq);
        }
    }
    return NULL;
}

/* On 127.0.0.1:port (0: the kernel picks). creds NULL: plaintext. Takes creds. */
static bool ts_start_at(tserver_t *s, grpc_server_credentials *creds, int port)
{
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    s->status_msg = grpc_empty_slice();
    grpc_arg args[2];
    memset(args, 0, sizeof args);
    args[0].type = GRPC_ARG_INTEGER;
    args[0].key = GRPC_ARG_ENABLE_PER_MESSAGE_DECOMPRESSION;
    args[0].value.integer = 0;
    args[1].type = GRPC_ARG_INTEGER;
    args[1].key = GRPC_ARG_ALLOW_REUSEPORT;
    args[1].value.integer = 0;
    grpc_channel_args ca = {.num_args = 2, .args = args};
    s->cq = grpc_completion_queue_create_for_next(NULL);
    s->server = grpc_server_create(&ca, NULL);
    grpc_server_register_completion_queue(s->server, s->cq, NULL);
    if (creds == NULL) {
        creds = grpc_insecure_server_credentials_create();
    }
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    s->port = grpc_server_add_http2_port(s->server, addr, creds);
    grpc_server_credentials_release(creds);
    grpc_server_start(s->server);
    ts_arm(s);
    pthread_create(&s->thread, NULL, ts_main, s);
    return s->port > 0;
}

static bool ts_start(tserver_t *s, grpc_server_credentials *creds)
{
    return ts_start_at(s, creds, 0);
}

static void ts_stop(tserver_t *s)
{
    grpc_server_shutdown_and_notify(s->server, s->cq, &s->tag_shutdown);
    pthread_join(s->thread, NULL);
    grpc_completion_queue_destroy(s->cq);
    for (size_t i = 0; i < s->n_seen; i++) {
        free(s->seen[i].data);
    }
    pthread_mutex_destroy(&s->mu);
}

static void ts_script(tserver_t *s, reply_t rp)
{
    pthread_mutex_lock(&s->mu);
    s->script[s->n_script++] = rp;
    pthread_mutex_unlock(&s->mu);
}

static size_t ts_seen(tserver_t *s)
{
    pthread_mutex_lock(&s->mu);
    size_t n = s->n_seen;
    pthread_mutex_unlock(&s->mu);
    return n;
}

static const char *seen_md(const seen_t *v, const char *key)
{
    for (size_t i = 0; i < v->n_md; i++) {
        if (strcmp(v->keys[i], key) == 0) {
            return v->values[i];
        }
    }
    return NULL;
}

static grpc_server_credentials *tls_server_creds(bool require_client_cert)
{
    grpc_ssl_pem_key_cert_pair pair = {.private_key = om_test_server_key_pem,
                                       .cert_chain = om_test_server_cert_pem};
    return grpc_ssl_server_credentials_create_ex(
        require_client_cert ? om_test_ca_pem : NULL, &pair, 1,
        require_client_cert ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                            : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE,
        NULL);
}

/* ------------------------------------------------------------------------------------------ */
/* The exporter under test                                                                    */

extern const om_factory_t exp_otlp_factory;

typedef struct fx {
    uv_loop_t loop;
    om_host_t host;
    uv_timer_t deadline;
    bool expired;
    om_config_t *yaml;
    exp_otlp_cfg_t *cfg;
    void *self;
    int done;
    char msg[1024]; /* config or start problems */
} fx_t;

/* Parses "c: {...}" into a validated config. Returns 0, or the error with fx->msg set. */
static int fx_config(fx_t *fx, const char *yaml)
{
    om_diags_t d = {0};
    fx->msg[0] = '\0';
    fx->cfg = calloc(1, sizeof *fx->cfg);
    int rc = om_config_load_string("t.yaml", yaml, strlen(yaml), &fx->yaml, &d);
    if (rc == 0) {
        rc = om_fields_apply(exp_otlp_factory.fields, fx->cfg, om_node_get(fx->yaml->root, "c"),
                             "exporters::otlp", &d);
    }
    if (d.n > 0) {
        snprintf(fx->msg, sizeof fx->msg, "%s", d.msgs[0]);
        rc = OM_ECONFIG;
    }
    om_diags_free(&d);
    om_err_t err = {0};
    if (rc == 0) {
        rc = exp_otlp_factory.config_validate(fx->cfg, &err);
        /* As the core reports it: the key the rule is about, then the message. */
        snprintf(fx->msg, sizeof fx->msg, "%s%s%s", err.at, err.at[0] ? ": " : "", err.msg);
    }
    return rc;
}

static void fx_free_config(fx_t *fx)
{
    if (fx->cfg != NULL) {
        om_fields_free(exp_otlp_factory.fields, fx->cfg);
        free(fx->cfg);
        fx->cfg = NULL;
    }
    om_config_free(fx->yaml);
    fx->yaml = NULL;
}

static void on_deadline(uv_timer_t *t)
{
    ((fx_t *)t->data)->expired = true;
}

/* Loop, config, create and start. Returns 0 or the failing step's code (msg says why). */
static int fx_open(fx_t *fx, const char *fmt, ...) OM_PRINTF(2, 3);

/* When set, fx_open registers it with the host as "testauth" (om_testauth.h). */
static om_testauth_t *open_with_auth;

static int fx_open(fx_t *fx, const char *fmt, ...)
{
    memset(fx, 0, sizeof *fx);
    uv_loop_init(&fx->loop);
    om_test_host_init(&fx->host, &fx->loop);
    if (open_with_auth != NULL) {
        om_testauth_register(&fx->host, "testauth", open_with_auth);
    }
    uv_timer_init(&fx->loop, &fx->deadline);
    fx->deadline.data = fx;
    char yaml[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(yaml, sizeof yaml, fmt, ap);
    va_end(ap);
    int rc = fx_config(fx, yaml);
    if (rc != 0) {
        return rc;
    }
    om_create_args_t a = {.cfg = fx->cfg,
                          .id = "otlp",
                          .log_name = "exporter/otlp",
                          .host = &fx->host,
                          .signals = OM_SIG_ALL};
    om_err_t err = {0};
    rc = exp_otlp_factory.create(&a, &fx->self, &err);
    if (rc == 0) {
        rc = exp_otlp_factory.start(fx->self, &err);
    }
    snprintf(fx->msg, sizeof fx->msg, "%s", err.msg);
    return rc;
}

typedef bool (*pred_fn)(fx_t *fx, void *arg);

static bool run_until(fx_t *fx, pred_fn pred, void *arg)
{
    fx->expired = false;
    uv_timer_start(&fx->deadline, on_deadline, WAIT_MS, 0);
    while (!pred(fx, arg) && !fx->expired) {
        uv_run(&fx->loop, UV_RUN_ONCE);
    }
    uv_timer_stop(&fx->deadline);
    return pred(fx, arg);
}

static bool is_done(fx_t *fx, void *arg)
{
    (void)arg;
    return fx->done > 0;
}

static void done_cb(void *arg)
{
    ((fx_t *)arg)->done++;
}

static void fx_shutdown(fx_t *fx)
{
    if (fx->self != NULL) {
        exp_otlp_factory.shutdown(fx->self, done_cb, fx);
        run_until(fx, is_done, NULL);
    }
}

/* Shutdown (if not done yet), destroy, free; returns uv_loop_close()'s result. */
static int fx_close(fx_t *fx)
{
    if (fx->self != NULL && fx->done == 0) {
        fx_shutdown(fx);
    }
    if (fx->self != NULL) {
        exp_otlp_factory.destroy(fx->self);
        fx->self = NULL;
    }
    fx_free_config(fx);
    uv_close((uv_handle_t *)&fx->deadline, NULL);
    om_test_host_close(&fx->host);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    return uv_loop_close(&fx->loop);
}

/* The exporter helper's counter of one signal, read through the host's registry. */
static uint64_t counter(fx_t *fx, const char *(*name)(om_signal_t), om_signal_t sig)
{
    int64_t v = om_test_metric(&fx->host, name(sig), "exporter", "otlp", NULL);
    return v < 0 ? 0 : (uint64_t)v;
}

static uint64_t total(fx_t *fx, const char *(*name)(om_signal_t))
{
    uint64_t n = 0;
    for (int i = 0; i < OM_SIG_COUNT; i++) {
        n += counter(fx, name, om_signal_from_index(i));
    }
    return n;
}

static uint64_t sent(fx_t *fx)
{
    return total(fx, om_exp_metric_sent);
}

static uint64_t failed(fx_t *fx)
{
    return total(fx, om_exp_metric_send_failed);
}

/* Everything handed over has been counted as sent or failed. */
static bool all_counted(fx_t *fx, void *arg)
{
    return sent(fx) + failed(fx) >= *(uint64_t *)arg;
}

static bool wait_counted(fx_t *fx, uint64_t items)
{
    return run_until(fx, all_counted, &items);
}

/* A batch and the bytes it should arrive as. */
typedef struct sample {
    om_batch_t *batch;
    uint8_t *bytes;
    size_t len;
    size_t items;
} sample_t;

static sample_t sample_of(om_signal_t sig, uint64_t first_seq)
{
    om_testdata_shape_t shape = {
        .resources = 2, .scopes = 2, .metrics = 2, .items = 3, .first_seq = first_seq};
    sample_t s = {.batch = om_testdata_batch(sig, &shape)};
    s.len = om_batch_proto_size(s.batch);
    s.bytes = malloc(s.len + 1);
    om_batch_proto_pack(s.batch, s.bytes);
    s.items = s.batch->items;
    return s;
}

/* Consumes the sample's batch (handing over the reference). */
static int give(fx_t *fx, om_signal_t sig, sample_t *s)
{
    om_consume_fn fn = sig == OM_SIG_TRACES    ? exp_otlp_factory.consume_traces
                       : sig == OM_SIG_METRICS ? exp_otlp_factory.consume_metrics
                                               : exp_otlp_factory.consume_logs;
    om_batch_t *b = s->batch;
    s->batch = NULL;
    return fn(fx->self, b);
}

static bool same_bytes(const seen_t *v, const sample_t *s)
{
    return v->data != NULL && v->len == s->len && memcmp(v->data, s->bytes, s->len) == 0;
}

/* The plaintext, fast-retry config most tests use; extra is more YAML flow entries. */
#define PLAIN_CFG                                                                                  \
    "c: {endpoint: '127.0.0.1:%d', tls: {insecure: true}, "                                        \
    "retry_on_failure: {initial_interval: 10ms, randomization_factor: 0, max_interval: 50ms, "     \
    "max_elapsed_time: 5s}%s}"

/* ------------------------------------------------------------------------------------------ */
/* Tests                                                                                      */

static void test_factory_registered(void)
{
    const om_factory_t *found = NULL;
    for (const om_factory_t *const *f = om_factories; *f != NULL; f++) {
        if ((*f)->kind == OM_EXPORTER && strcmp((*f)->type, "otlp") == 0) {
            found = *f;
        }
    }
    ASSERT_TRUE(found == &exp_otlp_factory);
    ASSERT_EQ_STR(found->aliases[0], "otlp_grpc");
    ASSERT_TRUE(found->aliases[1] == NULL);
    ASSERT_EQ_UINT(found->signals, OM_SIG_ALL);
}

/* The endpoint as gRPC target, and whether TLS is on. */
static void check_target(const char *yaml, const char *want_target, bool want_tls)
{
    fx_t fx = {0};
    ASSERT_EQ_INT(fx_config(&fx, yaml), 0);
    char *target = NULL;
    bool tls = !want_tls;
    om_err_t err = {0};
    ASSERT_EQ_INT(exp_otlp_target(fx.cfg, &target, &tls, &err), 0);
    ASSERT_EQ_STR(target, want_target);
    ASSERT_EQ_INT(tls, want_tls);
    om_free(target);
    fx_free_config(&fx);
}

static void check_invalid(const char *yaml, const char *want_msg)
{
    fx_t fx = {0};
    ASSERT_TRUE(fx_config(&fx, yaml) != 0);
    ASSERT_CONTAINS(fx.msg, want_msg);
    fx_free_config(&fx);
}

static void test_config_defaults(void)
{
    fx_t fx = {0};
    ASSERT_EQ_INT(fx_config(&fx, "c: {endpoint: 'tempo:4317'}"), 0);
    const exp_otlp_cfg_t *c = fx.cfg;
    ASSERT_EQ_INT(c->compression, EXP_OTLP_COMP_GZIP);
    ASSERT_EQ_STR(c->balancer_name, "round_robin");
    ASSERT_EQ_INT(c->tls.insecure, false);
    ASSERT_EQ_INT(c->keepalive.time, 10 * OM_NS_PER_S);
    ASSERT_EQ_INT(c->keepalive.timeout, 10 * OM_NS_PER_S);
    ASSERT_EQ_INT(c->wait_for_ready, false);
    ASSERT_EQ_INT(c->helper.timeout, 5 * OM_NS_PER_S);
    ASSERT_EQ_INT(c->helper.retry_on_failure.enabled, true);
    ASSERT_EQ_INT(c->helper.retry_on_failure.initial_interval, 5 * OM_NS_PER_S);
    ASSERT_EQ_INT(c->helper.retry_on_failure.max_elapsed_time, 300 * OM_NS_PER_S);
    ASSERT_EQ_INT(c->helper.sending_queue.queue_size, 1000);
    ASSERT_EQ_INT(c->helper.sending_queue.num_consumers, 10);
    fx_free_config(&fx);
    ASSERT_EQ_INT(fx_config(&fx, "c: {endpoint: 'tempo:4317', compression: ''}"), 0);
    ASSERT_EQ_INT(fx.cfg->compression, EXP_OTLP_COMP_EMPTY);
    fx_free_config(&fx);
}

static void test_config_endpoints(void)
{
    check_target("c: {endpoint: 'tempo:4317'}", "tempo:4317", true);
    check_target("c: {endpoint: 'tempo:4317', tls: {insecure: true}}", "tempo:4317", false);
    check_target("c: {endpoint: 'http://tempo:4317', tls: {insecure: true}}", "tempo:4317", false);
    /* As in otelcol: http:// alone does not turn TLS off, https:// always turns it on. */
    check_target("c: {endpoint: 'http://tempo:4317'}", "tempo:4317", true);
    check_target("c: {endpoint: 'https://tempo:4317', tls: {insecure: true}}", "tempo:4317", true);
    check_target("c: {endpoint: 'dns:///tempo:4317', tls: {insecure: true}}", "tempo:4317", false);
    check_target("c: {endpoint: 'dns://tempo:4317', tls: {insecure: true}}", "tempo:4317", false);
    check_target("c: {endpoint: '[::1]:4317', tls: {insecure: true}}", "[::1]:4317", false);
    check_target("c: {endpoint: ':4317', tls: {insecure: true}}", "localhost:4317", false);
    check_target("c: {endpoint: 'unix:///run/otel.sock', tls: {insecure: true}}",
                 "unix:///run/otel.sock", false);
    /* A CA keeps TLS on even with insecure, as configtls does. */
    check_target("c: {endpoint: 'tempo:4317', tls: {insecure: true, ca_pem: 'x'}}", "tempo:4317",
                 true);
}

static void test_config_errors(void)
{
    check_invalid("c: {}", "requires a non-empty \"endpoint\"");
    check_invalid("c: {endpoint: ''}", "requires a non-empty \"endpoint\"");
    check_invalid("c: {endpoint: 'tempo'}", "missing port in address");
    check_invalid("c: {endpoint: 'tempo:http'}", "invalid port \"http\"");
    check_invalid("c: {endpoint: 'http://tempo:4317/'}", "invalid port \"4317/\"");
    check_invalid("c: {endpoint: 'a:b:4317'}", "too many colons");
    check_invalid("c: {endpoint: 'unix://'}", "unix socket path cannot be empty");
    check_invalid("c: {endpoint: 'tempo:4317', compression: zstd}",
                  "unsupported compression type \"zstd\"");
    check_invalid("c: {endpoint: 'tempo:4317', compression: snappy}",
                  "unsupported compression type \"snappy\"");
    check_invalid("c: {endpoint: 'tempo:4317', compression: brotli}", "unknown value \"brotli\"");
    check_invalid("c: {endpoint: 'tempo:4317', compression_params: {level: 10}}",
                  "compression_params::level: unsupported parameters {Level:10} for compression "
                  "type \"gzip\"");
    check_invalid("c: {endpoint: 'tempo:4317', compression_params: {level: -3}}", "{Level:-3}");
    check_invalid("c: {endpoint: 'tempo:4317', balancer_name: grpclb}",
                  "invalid balancer_name: grpclb");
    check_invalid("c: {endpoint: 'tempo:4317', headers: {'bad key': x}}",
                  "\"bad key\" is not a valid gRPC metadata key");
    check_invalid("c: {endpoint: 'tempo:4317', headers: {grpc-timeout: 1S}}", "reserved by gRPC");
    check_invalid("c: {endpoint: 'tempo:4317', headers: {x-tenant: \"a\\tb\"}}", "printable ASCII");
    check_invalid("c: {endpoint: 'tempo:4317', tls: {cert_file: /c.pem}}",
                  "provide both certificate and key, or neither");
    check_invalid("c: {endpoint: 'tempo:4317', tls: {ca_file: /a, ca_pem: b}}", "not both");
    check_invalid("c: {endpoint: 'tempo:4317', retry_on_failure: {initial_interval: 10s, "
                  "max_interval: 1s}}",
                  "max_interval");
    check_invalid("c: {endpoint: 'tempo:4317', tls: {verify: true}}", "verify");
    /* As for the HTTP client: a middleware may authenticate or filter, so it is not ignored. */
    check_invalid("c: {endpoint: 'tempo:4317', middlewares: [{id: m}]}",
                  "t.yaml:1:42: exporters::otlp::middlewares: not supported by otelmon: "
                  "middlewares (extensions that wrap each request) are not implemented");
    fx_t fx = {0};
    ASSERT_EQ_INT(fx_config(&fx, "c: {endpoint: 'tempo:4317', middlewares: []}"), 0);
    fx_free_config(&fx);
}

static void test_lifecycle_without_start(void)
{
    fx_t fx = {0};
    memset(&fx, 0, sizeof fx);
    uv_loop_init(&fx.loop);
    om_test_host_init(&fx.host, &fx.loop);
    uv_timer_init(&fx.loop, &fx.deadline);
    fx.deadline.data = &fx;
    ASSERT_EQ_INT(fx_config(&fx, "c: {endpoint: 'tempo:4317'}"), 0);
    om_create_args_t a = {.cfg = fx.cfg,
                          .id = "otlp",
                          .log_name = "exporter/otlp",
                          .host = &fx.host,
                          .signals = OM_SIG_ALL};
    om_err_t err = {0};
    ASSERT_EQ_INT(exp_otlp_factory.create(&a, &fx.self, &err), 0);
    exp_otlp_factory.shutdown(fx.self, done_cb, &fx);
    exp_otlp_factory.shutdown(fx.self, done_cb, &fx); /* a second call does nothing */
    ASSERT_EQ_INT(fx.done, 1);
    ASSERT_EQ_INT(fx_close(&fx), 0);
}

/* Every signal arrives byte for byte on its method, gzip-compressed, with the configured
 * headers as metadata, the authority, the user agent and a deadline of `timeout`. */
static void test_signals_arrive_intact(void)
{
    tserver_t ts;
    ASSERT_TRUE(ts_start(&ts, NULL));
    fx_t fx;
    int rc = fx_open(&fx, PLAIN_CFG, ts.port,
                     ", headers: {X-Scope-OrgID: tenant-1, Authorization: 'Bearer t0k'}, "
                     "authority: tempo.example, timeout: 3s");
    ASSERT_EQ_INT(rc, 0);
    sample_t s[OM_SIG_COUNT];
    uint64_t items = 0;
    for (int i = 0; i < OM_SIG_COUNT; i++) {
        s[i] = sample_of(om_signal_from_index(i), 100 * (uint64_t)i);
        items += s[i].items;
        ASSERT_EQ_INT(give(&fx, om_signal_from_index(i), &s[i]), 0);
    }
    ASSERT_TRUE(wait_counted(&fx, items));
    ASSERT_EQ_UINT(sent(&fx), items);
    ASSERT_EQ_UINT(ts_seen(&ts), OM_SIG_COUNT);
    for (size_t k = 0; k < OM_SIG_COUNT; k++) {
        const seen_t *v = &ts.seen[k];
        int i = 0;
        while (i < OM_SIG_COUNT && strcmp(v->method, methods[i]) != 0) {
            i++;
        }
        ASSERT_TRUE(i < OM_SIG_COUNT);
        ASSERT_TRUE(same_bytes(v, &s[i]));
        ASSERT_TRUE(v->gzip);
        ASSERT_EQ_STR(seen_md(v, "x-scope-orgid"), "tenant-1");
        ASSERT_EQ_STR(seen_md(v, "authorization"), "Bearer t0k");
        ASSERT_CONTAINS(seen_md(v, "user-agent"), "OtelMon/" OM_VERSION);
        ASSERT_EQ_STR(v->host, "tempo.example");
        /* gRPC rounds the grpc-timeout header up a little. */
        ASSERT_TRUE(v->deadline_left_ms > 2000 && v->deadline_left_ms <= 3100);
        free(s[i].bytes);
    }
    ASSERT_EQ_INT(fx_close(&fx), 0);
    ts_stop(&ts);
}

/* A sample of more than the exporter's 16 KiB offload threshold, as the receiver makes it
 * (wire bytes, one segment): compressed on a worker, from the bytes where they are. */
static sample_t big_sample(uint64_t first_seq)
{
    om_testdata_shape_t shape = {.resources = 4, .scopes = 4, .items = 60, .first_seq = first_seq};
    om_batch_t *b = om_testdata_batch(OM_SIG_TRACES, &shape);
    sample_t s = {0};
    s.len = om_batch_proto_size(b);
    s.bytes = malloc(s.len + 1);
    om_batch_proto_pack(b, s.bytes);
    om_batch_release(b);
    om_err_t err = {0};
    if (om_batch_decode_proto(OM_SIG_TRACES, s.bytes, s.len, 0, &s.batch, &err) == 0) {
        s.items = s.batch->items;
    }
    return s;
}

/* Every level otelcol's gzip accepts: a small message (compressed on the loop) and a large one
 * (on a worker) both arrive gzip-compressed and inflate to the very bytes of the batch. */
static void test_each_accepted_level(void)
{
    static const char *const levels[] = {"-2", "-1", "0", "1", "2", "3",
                                         "4",  "5",  "6", "7", "8", "9"};
    for (size_t l = 0; l < sizeof levels / sizeof levels[0]; l++) {
        tserver_t ts;
        ASSERT_TRUE(ts_start(&ts, NULL));
        fx_t fx;
        char extra[64];
        snprintf(extra, sizeof extra, ", compression_params: {level: %s}", levels[l]);
        ASSERT_EQ_INT(fx_open(&fx, PLAIN_CFG, ts.port, extra), 0);
        sample_t s[2] = {sample_of(OM_SIG_LOGS, 1), big_sample(100)};
        ASSERT_TRUE(s[1].batch != NULL && s[1].len > 16 * 1024);
        ASSERT_EQ_INT(give(&fx, OM_SIG_LOGS, &s[0]), 0);
        ASSERT_EQ_INT(give(&fx, OM_SIG_TRACES, &s[1]), 0);
        ASSERT_TRUE(wait_counted(&fx, s[0].items + s[1].items));
        ASSERT_EQ_UINT(ts_seen(&ts), 2);
        for (size_t k = 0; k < 2; k++) {
            const seen_t *v = &ts.seen[k];
            size_t i = strcmp(v->method, methods[0]) == 0 ? 1 : 0; /* traces: the big one */
            ASSERT_TRUE(v->gzip);
            ASSERT_TRUE(same_bytes(v, &s[i]));
        }
        free(s[0].bytes);
        free(s[1].bytes);
        ASSERT_EQ_INT(fx_close(&fx), 0);
        ts_stop(&ts);
    }
}

static void test_compression_none(void)
{
    tserver_t ts;
    ASSERT_TRUE(ts_start(&ts, NULL));
    fx_t fx;
    ASSERT_EQ_INT(
        fx_open(&fx, PLAIN_CFG, ts.port, ", compression: none, balancer_name: pick_first"), 0);
    sample_t s = sample_of(OM_SIG_LOGS, 1);
    ASSERT_EQ_INT(give(&fx, OM_SIG_LOGS, &s), 0);
    ASSERT_TRUE(wait_counted(&fx, s.items));
    ASSERT_EQ_UINT(sent(&fx), s.items);
    ASSERT_EQ_UINT(ts_seen(&ts), 1);
    ASSERT_TRUE(!ts.seen[0].gzip);
    ASSERT_TRUE(same_bytes(&ts.seen[0], &s));
    free(s.bytes);
    ASSERT_EQ_INT(fx_close(&fx), 0);
    ts_stop(&ts);
}

/* Batches still in the form they arrived in (here two requests merged, as the batch
 * processor does) are lent to gRPC as slices of their own bytes; the lend holds the batch
 * until gRPC lets go of the last slice, across a retry, and gives it back by shutdown. */
static void test_unchanged_batches_are_sent_from_their_own_bytes(void)
{
    tserver_t ts;
    ASSERT_TRUE(ts_start(&ts, NULL));
    ts_script(&ts, (reply_t){.code = GRPC_STATUS_UNAVAILABLE, .msg = "restarting", .retry_ms = -1});
    fx_t fx;
    ASSERT_EQ_INT(fx_open(&fx, PLAIN_CFG, ts.port, ", compression: none"), 0);
    /* Requests of tens of KB, as SDKs send: small ones are copied rather than lent. */
    om_testdata_shape_t shape = {.resources = 2, .scopes = 2, .items = 100};
    sample_t a = {.batch = om_testdata_batch(OM_SIG_TRACES, &shape)};
    shape.first_seq = 1000;
    sample_t b = {.batch = om_testdata_batch(OM_SIG_TRACES, &shape)};
    for (sample_t *x = &a; x != NULL; x = x == &a ? &b : NULL) {
        x->len = om_batch_proto_size(x->batch);
        x->bytes = malloc(x->len);
        om_batch_proto_pack(x->batch, x->bytes);
        x->items = x->batch->items;
    }
    ASSERT_TRUE(a.len >= 8192 && b.len >= 8192);
    om_batch_t *merged = om_batch_new(OM_SIG_TRACES, 0), *wa = NULL, *wb = NULL;
    ASSERT_EQ_INT(om_batch_decode_proto(OM_SIG_TRACES, a.bytes, a.len, 0, &wa, NULL), 0);
    ASSERT_EQ_INT(om_batch_decode_proto(OM_SIG_TRACES, b.bytes, b.len, 0, &wb, NULL), 0);
    ASSERT_EQ_INT(om_batch_append(merged, wa), 0);
    ASSERT_EQ_INT(om_batch_append(merged, wb), 0);
    ASSERT_TRUE(merged->raw_valid && merged->msg == NULL && merged->n_raw == 2);
    om_batch_t *mine = om_batch_ref(merged);
    sample_t m = {.batch = merged, .items = a.items + b.items};
    ASSERT_EQ_INT(give(&fx, OM_SIG_TRACES, &m), 0);
    ASSERT_TRUE(wait_counted(&fx, m.items));
    ASSERT_EQ_UINT(sent(&fx), m.items);
    ASSERT_EQ_UINT(ts_seen(&ts), 2);
    for (size_t i = 0; i < 2; i++) {
        const seen_t *v = &ts.seen[i];
        ASSERT_TRUE(v->len == a.len + b.len && memcmp(v->data, a.bytes, a.len) == 0 &&
                    memcmp(v->data + a.len, b.bytes, b.len) == 0);
    }
    ASSERT_EQ_INT(fx_close(&fx), 0);
    ASSERT_EQ_UINT(mine->refs, 1); /* every lend came back */
    om_batch_release(mine);
    om_batch_release(a.batch);
    om_batch_release(b.batch);
    free(a.bytes);
    free(b.bytes);
    ts_stop(&ts);
}

/* UNAVAILABLE twice (a restarting backend), then OK: the same request is retried and
 * delivered once. */
static void test_unavailable_is_retried(void)
{
    tserver_t ts;
    ASSERT_TRUE(ts_start(&ts, NULL));
    ts_script(&ts, (reply_t){.code = GRPC_STATUS_UNAVAILABLE, .msg = "restarting", .retry_ms = -1});
    ts_script(&ts, (reply_t){.code = GRPC_STATUS_UNAVAILABLE, .msg = "restarting", .retry_ms = -1});
    fx_t fx;
    ASSERT_EQ_INT(fx_open(&fx, PLAIN_CFG, ts.port, ""), 0);
    sample_t s = sample_of(OM_SIG_TRACES, 1);
    ASSERT_EQ_INT(give(&fx, OM_SIG_TRACES, &s), 0);
    ASSERT_TRUE(wait_counted(&fx, s.items));
    ASSERT_EQ_UINT(sent(&fx), s.items);
    ASSERT_EQ_UINT(failed(&fx), 0);
    ASSERT_EQ_UINT(ts_seen(&ts), 3);
    for (size_t i = 0; i < 3; i++) {
        ASSERT_TRUE(same_bytes(&ts.seen[i], &s));
    }
    free(s.bytes);
    ASSERT_EQ_INT(fx_close(&fx), 0);
    ts_stop(&ts);
}

/* RESOURCE_EXHAUSTED with a RetryInfo: retried after at least retry_delay (300 ms, far
 * more than the 10 ms backoff). Without RetryInfo it is permanent. */
static void test_retry_info_is_honoured(void)
{
    tserver_t ts;
    ASSERT_TRUE(ts_start(&ts, NULL));
    ts_script(
        &ts,
        (reply_t){.code = GRPC_STATUS_RESOURCE_EXHAUSTED, .msg = "slow down", .retry_ms = 300});
    fx_t fx;
    ASSERT_EQ_INT(fx_open(&fx, PLAIN_CFG, ts.port, ", sending_queue: {num_consumers: 1}"), 0);
    sample_t a = sample_of(OM_SIG_METRICS, 1);
    ASSERT_EQ_INT(give(&fx, OM_SIG_METRICS, &a), 0);
    ASSERT_TRUE(wait_counted(&fx, a.items));
    ASSERT_EQ_UINT(sent(&fx), a.items);
    ASSERT_EQ_UINT(ts_seen(&ts), 2);
    ASSERT_TRUE(ts.seen[1].at_ms - ts.seen[0].at_ms >= 295);
    ts_script(
        &ts,
        (reply_t){.code = GRPC_STATUS_RESOURCE_EXHAUSTED, .msg = "over quota", .retry_ms = -1});
    om_log_set_level(OM_LOG_NONE);
    sample_t b = sample_of(OM_SIG_METRICS, 100);
    ASSERT_EQ_INT(give(&fx, OM_SIG_METRICS, &b), 0);
    ASSERT_TRUE(wait_counted(&fx, a.items + b.items));
    om_log_set_level(OM_LOG_WARN);
    ASSERT_EQ_UINT(failed(&fx), b.items);
    ASSERT_EQ_UINT(ts_seen(&ts), 3);
    free(a.bytes);
    free(b.bytes);
    ASSERT_EQ_INT(fx_close(&fx), 0);
    ts_stop(&ts);
}

/* INVALID_ARGUMENT is permanent: dropped and counted at once, later data flows. */
static void test_invalid_argument_drops(void)
{
    tserver_t ts;
    ASSERT_TRUE(ts_start(&ts, NULL));
    ts_script(&ts,
              (reply_t){.code = GRPC_STATUS_INVALID_ARGUMENT, .msg = "bad data", .retry_ms = -1});
    fx_t fx;
    ASSERT_EQ_INT(fx_open(&fx, PLAIN_CFG, ts.port, ", sending_queue: {num_consumers: 1}"), 0);
    sample_t a = sample_of(OM_SIG_TRACES, 1), b = sample_of(OM_SIG_TRACES, 100);
    om_log_set_level(OM_LOG_NONE);
    ASSERT_EQ_INT(give(&fx, OM_SIG_TRACES, &a), 0);
    ASSERT_EQ_INT(give(&fx, OM_SIG_TRACES, &b), 0);
    ASSERT_TRUE(wait_counted(&fx, a.items + b.items));
    om_log_set_level(OM_LOG_WARN);
    ASSERT_EQ_UINT(counter(&fx, om_exp_metric_send_failed, OM_SIG_TRACES), a.items);
    ASSERT_EQ_UINT(counter(&fx, om_exp_metric_sent, OM_SIG_TRACES), b.items);
    ASSERT_EQ_UINT(ts_seen(&ts), 2);
    ASSERT_TRUE(same_bytes(&ts.seen[1], &b));
    free(a.bytes);
    free(b.bytes);
    ASSERT_EQ_INT(fx_close(&fx), 0);
    ts_stop(&ts);
}

/* A partial success is logged, and the batch counts as sent (it is not retried). */
static void test_partial_success_counts_as_sent(void)
{
    tserver_t ts;
    ASSERT_TRUE(ts_start(&ts, NULL));
    ts_script(&ts, (reply_t){.code = GRPC_STATUS_OK, .retry_ms = -1, .rejected = 2});
    fx_t fx;
    ASSERT_EQ_INT(fx_open(&fx, PLAIN_CFG, ts.port, ""), 0);
    sample_t s = sample_of(OM_SIG_TRACES, 1);
    om_log_set_level(OM_LOG_ERROR);
    ASSERT_EQ_INT(give(&fx, OM_SIG_TRACES, &s), 0);
    ASSERT_TRUE(wait_counted(&fx, s.items));
    om_log_set_level(OM_LOG_WARN);
    ASSERT_EQ_UINT(sent(&fx), s.items);
    ASSERT_EQ_UINT(ts_seen(&ts), 1);
    free(s.bytes);
    ASSERT_EQ_INT(fx_close(&fx), 0);
    ts_stop(&ts);
}

static int dead_port(void)
{
    tserver_t ts;
    ts_start(&ts, NULL);
    int port = ts.port;
    ts_stop(&ts);
    return port;
}

/* Nobody listens: retried with backoff until max_elapsed_time, then dropped and counted. */
static void test_unreachable_retries_then_drops(void)
{
    fx_t fx;
    ASSERT_EQ_INT(fx_open(&fx,
                          "c: {endpoint: '127.0.0.1:%d', tls: {insecure: true}, "
                          "retry_on_failure: {initial_interval: 10ms, randomization_factor: 0, "
                          "multiplier: 1.5, max_interval: 50ms, max_elapsed_time: 300ms}}",
                          dead_port()),
                  0);
    sample_t s = sample_of(OM_SIG_LOGS, 1);
    om_log_set_level(OM_LOG_NONE);
    uint64_t t0 = now_ms();
    ASSERT_EQ_INT(give(&fx, OM_SIG_LOGS, &s), 0);
    ASSERT_TRUE(wait_counted(&fx, s.items));
    uint64_t took = now_ms() - t0;
    om_log_set_level(OM_LOG_WARN);
    ASSERT_EQ_UINT(failed(&fx), s.items);
    ASSERT_EQ_UINT(sent(&fx), 0);
    /* 10 + 15 + 22 + 33 + 50 + 50 ... ms of backoff: several attempts, then the limit. */
    ASSERT_TRUE(took >= 200);
    free(s.bytes);
    ASSERT_EQ_INT(fx_close(&fx), 0);
}

/* wait_for_ready: a call made while nobody listens waits for the server instead of failing,
 * so it is delivered by its first attempt once the server is up (retries are off). */
static void test_wait_for_ready(void)
{
    int port = dead_port();
    fx_t fx;
    ASSERT_EQ_INT(fx_open(&fx,
                          "c: {endpoint: '127.0.0.1:%d', tls: {insecure: true}, timeout: 8s, "
                          "wait_for_ready: true, retry_on_failure: {enabled: false}}",
                          port),
                  0);
    sample_t s = sample_of(OM_SIG_TRACES, 1);
    ASSERT_EQ_INT(give(&fx, OM_SIG_TRACES, &s), 0);
    for (int i = 0; i < 20; i++) {
        uv_run(&fx.loop, UV_RUN_NOWAIT); /* let the first connection attempt fail */
    }
    tserver_t ts;
    ASSERT_TRUE(ts_start_at(&ts, NULL, port));
    ASSERT_TRUE(wait_counted(&fx, s.items));
    ASSERT_EQ_UINT(sent(&fx), s.items);
    ASSERT_EQ_UINT(ts_seen(&ts), 1);
    ASSERT_TRUE(same_bytes(&ts.seen[0], &s));
    free(s.bytes);
    ASSERT_EQ_INT(fx_close(&fx), 0);
    ts_stop(&ts);
}

/* Shutdown with requests still queued sends them all to the live server before done. */
static void test_shutdown_drains_queue(void)
{
    tserver_t ts;
    ASSERT_TRUE(ts_start(&ts, NULL));
    fx_t fx;
    ASSERT_EQ_INT(fx_open(&fx, PLAIN_CFG, ts.port, ", sending_queue: {num_consumers: 1}"), 0);
    sample_t s[5];
    uint64_t items = 0;
    for (int i = 0; i < 5; i++) {
        s[i] = sample_of(OM_SIG_TRACES, 100 * (uint64_t)i);
        items += s[i].items;
        ASSERT_EQ_INT(give(&fx, OM_SIG_TRACES, &s[i]), 0);
    }
    ASSERT_EQ_UINT(exp_otlp_queue_size(fx.self), 4);
    fx_shutdown(&fx);
    ASSERT_EQ_INT(fx.done, 1);
    ASSERT_EQ_UINT(sent(&fx), items);
    ASSERT_EQ_UINT(ts_seen(&ts), 5);
    for (int i = 0; i < 5; i++) {
        ASSERT_TRUE(same_bytes(&ts.seen[i], &s[i])); /* one consumer: in order */
        free(s[i].bytes);
    }
    sample_t late = sample_of(OM_SIG_TRACES, 1000);
    ASSERT_EQ_INT(give(&fx, OM_SIG_TRACES, &late), OM_ESHUTDOWN);
    free(late.bytes);
    ASSERT_EQ_INT(fx_close(&fx), 0);
    ts_stop(&ts);
}

/* Sends one batch and returns whether it was delivered (false: dropped). */
static bool one_delivery(fx_t *fx)
{
    sample_t s = sample_of(OM_SIG_TRACES, 1);
    free(s.bytes);
    if (give(fx, OM_SIG_TRACES, &s) != 0 || !wait_counted(fx, s.items)) {
        return false;
    }
    return sent(fx) == s.items;
}

#define TLS_CFG "c: {endpoint: '127.0.0.1:%d', retry_on_failure: {enabled: false}, tls: {%s}}"

static void test_tls(void)
{
    tserver_t ts;
    ASSERT_TRUE(ts_start(&ts, tls_server_creds(false)));
    char tls[512];
    fx_t fx;
    /* Our CA, and the name the certificate carries. */
    snprintf(tls, sizeof tls, "ca_file: %s, server_name_override: otelmon-test.example",
             om_testpem_file("ca.pem", om_test_ca_pem));
    ASSERT_EQ_INT(fx_open(&fx, TLS_CFG, ts.port, tls), 0);
    ASSERT_TRUE(one_delivery(&fx));
    ASSERT_EQ_INT(fx_close(&fx), 0);
    /* No verification at all. */
    ASSERT_EQ_INT(fx_open(&fx, TLS_CFG, ts.port, "insecure_skip_verify: true"), 0);
    ASSERT_TRUE(one_delivery(&fx));
    ASSERT_EQ_INT(fx_close(&fx), 0);
    om_log_set_level(OM_LOG_NONE);
    /* The system's CAs do not know ours. */
    ASSERT_EQ_INT(fx_open(&fx, TLS_CFG, ts.port, "insecure: false"), 0);
    ASSERT_TRUE(!one_delivery(&fx));
    ASSERT_EQ_INT(fx_close(&fx), 0);
    /* Our CA, but 127.0.0.1 is not a name in the certificate. */
    snprintf(tls, sizeof tls, "ca_file: %s", om_testpem_file("ca.pem", om_test_ca_pem));
    ASSERT_EQ_INT(fx_open(&fx, TLS_CFG, ts.port, tls), 0);
    ASSERT_TRUE(!one_delivery(&fx));
    ASSERT_EQ_INT(fx_close(&fx), 0);
    /* A plaintext client cannot talk to a TLS server. */
    ASSERT_EQ_INT(fx_open(&fx, TLS_CFG, ts.port, "insecure: true"), 0);
    ASSERT_TRUE(!one_delivery(&fx));
    ASSERT_EQ_INT(fx_close(&fx), 0);
    om_log_set_level(OM_LOG_WARN);
    ts_stop(&ts);
}

/* With auth, each call carries the authenticator's headers as metadata at that moment (keys
 * lowercased), replacing configured headers of the same name. Credentials need TLS, as
 * otelcol's grpc-go channel insists: plaintext with auth is a config error. */
static void test_auth_metadata(void)
{
    check_invalid("c: {endpoint: 'tempo:4317', tls: {insecure: true}, auth: {authenticator: a}}",
                  "auth::authenticator: grpc: the credentials require transport level security");
    tserver_t ts;
    ASSERT_TRUE(ts_start(&ts, tls_server_creds(false)));
    om_testauth_t ta = {.secret = "one", .extra_name = "X-Tenant", .extra_value = "t1"};
    open_with_auth = &ta;
    char tls[512];
    snprintf(tls, sizeof tls,
             "ca_file: %s, server_name_override: otelmon-test.example}, headers: "
             "{Authorization: cfg, X-Scope-OrgID: org}, auth: {authenticator: testauth",
             om_testpem_file("ca.pem", om_test_ca_pem));
    fx_t fx;
    int rc = fx_open(&fx, TLS_CFG, ts.port, tls);
    open_with_auth = NULL;
    ASSERT_EQ_INT(rc, 0);
    ASSERT_TRUE(one_delivery(&fx));
    snprintf(ta.secret, sizeof ta.secret, "two");
    ASSERT_TRUE(one_delivery(&fx));
    ASSERT_EQ_INT(fx_close(&fx), 0);
    ASSERT_EQ_UINT(ts_seen(&ts), 2);
    for (size_t i = 0; i < 2; i++) {
        const seen_t *v = &ts.seen[i];
        ASSERT_EQ_STR(seen_md(v, "authorization"), i == 0 ? "Test one" : "Test two");
        ASSERT_EQ_STR(seen_md(v, "x-tenant"), "t1");
        ASSERT_EQ_STR(seen_md(v, "x-scope-orgid"), "org");
        size_t n_auth = 0;
        for (size_t k = 0; k < v->n_md; k++) {
            n_auth += strcmp(v->keys[k], "authorization") == 0;
        }
        ASSERT_EQ_UINT(n_auth, 1);
    }
    ts_stop(&ts);
    /* Not registered: start fails. */
    ASSERT_TRUE(fx_open(&fx, TLS_CFG, 1, "insecure_skip_verify: true}, auth: {authenticator: x") !=
                0);
    ASSERT_CONTAINS(fx.msg, "failed to resolve authenticator \"x\"");
    ASSERT_EQ_INT(fx_close(&fx), 0);
}

static void test_mtls(void)
{
    tserver_t ts;
    ASSERT_TRUE(ts_start(&ts, tls_server_creds(true)));
    char tls[768];
    fx_t fx;
    snprintf(tls, sizeof tls,
             "ca_file: %s, cert_file: %s, key_file: %s, server_name_override: otelmon-test.example",
             om_testpem_file("ca.pem", om_test_ca_pem),
             om_testpem_file("cert.pem", om_test_client_cert_pem),
             om_testpem_file("key.pem", om_test_client_key_pem));
    ASSERT_EQ_INT(fx_open(&fx, TLS_CFG, ts.port, tls), 0);
    ASSERT_TRUE(one_delivery(&fx));
    ASSERT_EQ_INT(fx_close(&fx), 0);
    om_log_set_level(OM_LOG_NONE);
    snprintf(tls, sizeof tls, "ca_file: %s, server_name_override: otelmon-test.example",
             om_testpem_file("ca.pem", om_test_ca_pem));
    ASSERT_EQ_INT(fx_open(&fx, TLS_CFG, ts.port, tls), 0);
    ASSERT_TRUE(!one_delivery(&fx));
    ASSERT_EQ_INT(fx_close(&fx), 0);
    om_log_set_level(OM_LOG_WARN);
    ts_stop(&ts);
}

/* What the gRPC stack honours of the keys it used to ignore: a minimum of 1.0-1.2 (gRPC's own
 * 1.2 is stricter), the system's CAs added to ours, and reloading through gRPC's file
 * watcher. The rules that refuse the rest are in test/unit/tls_client_test.c. */
static void test_tls_keys_honoured(void)
{
    tserver_t ts;
    ASSERT_TRUE(ts_start(&ts, tls_server_creds(true)));
    char tls[1024];
    fx_t fx;
    const char *ca = om_testpem_file("ca.pem", om_test_ca_pem);
    const char *cert = om_testpem_file("cert.pem", om_test_client_cert_pem);
    const char *key = om_testpem_file("key.pem", om_test_client_key_pem);
    snprintf(tls, sizeof tls,
             "ca_file: %s, cert_file: %s, key_file: %s, server_name_override: "
             "otelmon-test.example, min_version: '1.1', max_version: '1.3', "
             "include_system_ca_certs_pool: true",
             ca, cert, key);
    ASSERT_EQ_INT(fx_open(&fx, TLS_CFG, ts.port, tls), 0);
    ASSERT_TRUE(one_delivery(&fx));
    ASSERT_EQ_INT(fx_close(&fx), 0);
    snprintf(tls, sizeof tls,
             "ca_file: %s, cert_file: %s, key_file: %s, server_name_override: "
             "otelmon-test.example, reload_interval: 1s",
             ca, cert, key);
    ASSERT_EQ_INT(fx_open(&fx, TLS_CFG, ts.port, tls), 0);
    ASSERT_TRUE(one_delivery(&fx));
    ASSERT_EQ_INT(fx_close(&fx), 0);
    /* A key that is not the certificate's fails the start, naming the key. */
    snprintf(tls, sizeof tls, "ca_file: %s, cert_file: %s, key_file: %s", ca, cert,
             om_testpem_file("skey.pem", om_test_server_key_pem));
    ASSERT_EQ_INT(fx_open(&fx, TLS_CFG, ts.port, tls), OM_ECONFIG);
    ASSERT_CONTAINS(fx.msg, "tls::key_file: the private key in \"");
    ASSERT_CONTAINS(fx.msg, "skey.pem\" does not match the certificate in tls::cert_file");
    fx_shutdown(&fx);
    ASSERT_EQ_INT(fx_close(&fx), 0);
    ts_stop(&ts);
}

static void test_start_fails_on_missing_ca_file(void)
{
    fx_t fx;
    int rc = fx_open(&fx, "c: {endpoint: '127.0.0.1:4317', tls: {ca_file: /nonexistent/ca.pem}}");
    ASSERT_EQ_INT(rc, OM_ECONFIG);
    ASSERT_CONTAINS(fx.msg, "/nonexistent/ca.pem");
    /* The core shuts down and destroys an instance whose start failed. */
    fx_shutdown(&fx);
    ASSERT_EQ_INT(fx.done, 1);
    ASSERT_EQ_INT(fx_close(&fx), 0);
}

/* Through OtelMon's own otlp receiver: what arrives decodes to the same request. */
typedef struct capture {
    om_batch_t *got[OM_SIG_COUNT];
    int n;
} capture_t;

static int capture_consume(void *self, om_batch_t *b)
{
    capture_t *c = self;
    int i = om_signal_index(b->signal);
    if (c->got[i] != NULL) {
        om_batch_release(c->got[i]);
    } else {
        c->n++;
    }
    c->got[i] = b;
    return 0;
}

static bool captured_all(fx_t *fx, void *arg)
{
    (void)fx;
    return ((capture_t *)arg)->n == OM_SIG_COUNT;
}

static void count_cb(void *arg)
{
    (*(int *)arg)++;
}

static bool int_set(fx_t *fx, void *arg)
{
    (void)fx;
    return *(int *)arg > 0;
}

static const om_factory_t *receiver_factory(void)
{
    for (const om_factory_t *const *f = om_factories; *f != NULL; f++) {
        if ((*f)->kind == OM_RECEIVER && strcmp((*f)->type, "otlp") == 0) {
            return *f;
        }
    }
    return NULL;
}

static void test_through_otlp_receiver(void)
{
    const om_factory_t *rf = receiver_factory();
    ASSERT_TRUE(rf != NULL);
    /* The receiver and the exporter share one loop; the exporter is made once the
     * receiver's port is known. */
    fx_t fx;
    memset(&fx, 0, sizeof fx);
    uv_loop_init(&fx.loop);
    om_test_host_init(&fx.host, &fx.loop);
    uv_timer_init(&fx.loop, &fx.deadline);
    fx.deadline.data = &fx;
    const char *ry = "c: {protocols: {grpc: {endpoint: '127.0.0.1:0'}}}";
    om_diags_t d = {0};
    om_config_t *yaml = NULL;
    void *rcfg = calloc(1, rf->config_size);
    ASSERT_EQ_INT(om_config_load_string("r.yaml", ry, strlen(ry), &yaml, &d), 0);
    ASSERT_EQ_INT(om_fields_apply(rf->fields, rcfg, om_node_get(yaml->root, "c"), "r", &d), 0);
    capture_t cap = {0};
    om_create_args_t ra = {.cfg = rcfg,
                           .id = "otlp",
                           .log_name = "receiver/otlp",
                           .host = &fx.host,
                           .signals = OM_SIG_ALL};
    for (int i = 0; i < OM_SIG_COUNT; i++) {
        ra.next[i] = (om_consumer_t){.self = &cap, .consume = capture_consume};
    }
    void *rself = NULL;
    om_err_t err = {0};
    ASSERT_EQ_INT(rf->create(&ra, &rself, &err), 0);
    ASSERT_EQ_INT(rf->start(rself, &err), 0);
    int port = otlp_grpc_bound_port(((rcv_otlp_t *)rself)->grpc);
    ASSERT_TRUE(port > 0);
    char yml[256];
    snprintf(yml, sizeof yml, "c: {endpoint: '127.0.0.1:%d', tls: {insecure: true}}", port);
    ASSERT_EQ_INT(fx_config(&fx, yml), 0);
    om_create_args_t ea = {.cfg = fx.cfg,
                           .id = "otlp",
                           .log_name = "exporter/otlp",
                           .host = &fx.host,
                           .signals = OM_SIG_ALL};
    ASSERT_EQ_INT(exp_otlp_factory.create(&ea, &fx.self, &err), 0);
    ASSERT_EQ_INT(exp_otlp_factory.start(fx.self, &err), 0);
    sample_t s[OM_SIG_COUNT];
    for (int i = 0; i < OM_SIG_COUNT; i++) {
        s[i] = sample_of(om_signal_from_index(i), 1000 * (uint64_t)i);
        ASSERT_EQ_INT(give(&fx, om_signal_from_index(i), &s[i]), 0);
    }
    ASSERT_TRUE(run_until(&fx, captured_all, &cap));
    for (int i = 0; i < OM_SIG_COUNT; i++) {
        size_t n = om_batch_proto_size(cap.got[i]);
        uint8_t *buf = malloc(n + 1);
        om_batch_proto_pack(cap.got[i], buf);
        ASSERT_TRUE(n == s[i].len && memcmp(buf, s[i].bytes, n) == 0);
        ASSERT_EQ_UINT(cap.got[i]->items, s[i].items);
        free(buf);
        free(s[i].bytes);
        om_batch_release(cap.got[i]);
    }
    fx_shutdown(&fx); /* exporter first, as the core orders it */
    ASSERT_EQ_INT(fx.done, 1);
    int rdone = 0;
    rf->shutdown(rself, count_cb, &rdone);
    ASSERT_TRUE(run_until(&fx, int_set, &rdone));
    rf->destroy(rself);
    om_fields_free(rf->fields, rcfg);
    free(rcfg);
    om_config_free(yaml);
    om_diags_free(&d);
    ASSERT_EQ_INT(fx_close(&fx), 0);
}

/* STYLE.md §10: the lifecycle every factory gets; to a closed port without retries, so that
 * the sends fail at once. */
static void test_generic_lifecycle(void)
{
    om_test_lifecycle(&exp_otlp_factory, "{endpoint: '127.0.0.1:1', tls: {insecure: true}, "
                                         "retry_on_failure: {enabled: false}}");
}

int main(void)
{
    om_log_set_level(OM_LOG_WARN);
    grpc_init(); /* keeps gRPC up between tests; the exporter's own init/shutdown nest */
    OM_RUN(test_factory_registered);
    OM_RUN(test_config_defaults);
    OM_RUN(test_config_endpoints);
    OM_RUN(test_config_errors);
    OM_RUN(test_lifecycle_without_start);
    OM_RUN(test_signals_arrive_intact);
    OM_RUN(test_compression_none);
    OM_RUN(test_each_accepted_level);
    OM_RUN(test_unchanged_batches_are_sent_from_their_own_bytes);
    OM_RUN(test_unavailable_is_retried);
    OM_RUN(test_retry_info_is_honoured);
    OM_RUN(test_invalid_argument_drops);
    OM_RUN(test_partial_success_counts_as_sent);
    OM_RUN(test_unreachable_retries_then_drops);
    OM_RUN(test_shutdown_drains_queue);
    OM_RUN(test_wait_for_ready);
    OM_RUN(test_tls);
    OM_RUN(test_mtls);
    OM_RUN(test_auth_metadata);
    OM_RUN(test_tls_keys_honoured);
    OM_RUN(test_start_fails_on_missing_ca_file);
    OM_RUN(test_through_otlp_receiver);
    grpc_shutdown();
    om_testpem_files_remove();
    OM_RUN(test_generic_lifecycle);
    return om_test_summary();
}
