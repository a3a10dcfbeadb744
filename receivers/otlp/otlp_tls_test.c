/* otlp_tls_test.c: TLS on the otlp receiver, both protocols, through the factory.
 *
 * The certificates are made at test time with the openssl command in a temporary directory:
 * a CA, a server certificate for 127.0.0.1 and localhost, a client certificate from the same
 * CA, and a "rogue" client certificate from another CA. The receiver runs on this thread's
 * loop; each client (gRPC C core, or OpenSSL over a blocking socket) runs in a thread of its
 * own and wakes the loop through a uv_async when it is done, so nothing sleeps. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <http_parser.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "config.h"
#include "om_test.h"
#include "om_testcerts.h"
#include "om_testdata.h"
#include "om_testhttp.h"
#include "otlp.h"
#include "otlp_grpc.h"
#include "otlp_http.h"

extern const om_factory_t rcv_otlp_factory;

#define TRACES_METHOD "/opentelemetry.proto.collector.trace.v1.TraceService/Export"

/* ------------------------------------------------------------------------------------------ */
/* Certificates                                                                               */

static om_testcerts_t C;

/* ------------------------------------------------------------------------------------------ */
/* The receiver, configured from YAML as otelmon would                                        */

typedef struct fx {
    uv_loop_t loop;
    uv_async_t wake;
    uv_timer_t deadline;
    bool timed_out;
    om_host_t host;
    om_config_t *conf;
    rcv_otlp_cfg_t cfg;
    void *self;
    bool done;
    int batches;
    size_t items;
    int grpc_port, http_port;
    char diag[512]; /* the first config problem */
} fx_t;

static int capture_consume(void *self, om_batch_t *b)
{
    fx_t *f = self;
    f->batches++;
    f->items += b->items;
    om_batch_release(b);
    return 0;
}

static void on_wake(uv_async_t *a)
{
    (void)a;
}

static void on_deadline(uv_timer_t *t)
{
    fx_t *f = t->data;
    f->timed_out = true;
}

static void on_done(void *arg)
{
    fx_t *f = arg;
    f->done = true;
}

/* Load, type and validate the receiver's YAML (the map under receivers::otlp). Returns 0, or
 * OM_ECONFIG with the problem in f->diag. */
static int fx_config(fx_t *f, const char *yaml)
{
    om_diags_t d = {0};
    int rc = om_config_load_string("test.yaml", yaml, strlen(yaml), &f->conf, &d);
    if (rc == 0 && om_fields_apply(rcv_otlp_factory.fields, &f->cfg, f->conf->root,
                                   "receivers::otlp", &d) > 0) {
        rc = OM_ECONFIG;
    }
    if (rc != 0) {
        snprintf(f->diag, sizeof f->diag, "%s", d.n > 0 ? d.msgs[0] : "?");
        om_diags_free(&d);
        return OM_ECONFIG;
    }
    om_err_t err = {0};
    rc = rcv_otlp_factory.config_validate(&f->cfg, &err);
    /* As the core reports it: the key the rule is about, then the message. */
    snprintf(f->diag, sizeof f->diag, "%s%s%s", err.at, err.at[0] ? ": " : "", err.msg);
    return rc;
}

static void fx_init(fx_t *f)
{
    memset(f, 0, sizeof *f);
    uv_loop_init(&f->loop);
    uv_async_init(&f->loop, &f->wake, on_wake);
    uv_unref((uv_handle_t *)&f->wake);
    uv_timer_init(&f->loop, &f->deadline);
    uv_unref((uv_handle_t *)&f->deadline);
    f->deadline.data = f;
    om_test_host_init(&f->host, &f->loop);
}

/* Config, create and start. Returns the first failing code; err says why. */
static int fx_start(fx_t *f, const char *yaml, om_err_t *err)
{
    fx_init(f);
    int rc = fx_config(f, yaml);
    if (rc != 0) {
        om_err_set(err, rc, "%s", f->diag);
        return rc;
    }
    om_create_args_t a = {.cfg = &f->cfg,
                          .id = "otlp",
                          .log_name = "receiver/otlp",
                          .host = &f->host,
                          .signals = OM_SIG_ALL};
    for (int i = 0; i < OM_SIG_COUNT; i++) {
        a.next[i] = (om_consumer_t){f, capture_consume};
    }
    rc = rcv_otlp_factory.create(&a, &f->self, err);
    if (rc == 0) {
        rc = rcv_otlp_factory.start(f->self, err);
    }
    rcv_otlp_t *r = f->self;
    if (rc == 0 && r->grpc != NULL) {
        f->grpc_port = otlp_grpc_bound_port(r->grpc);
    }
    if (rc == 0 && r->http != NULL) {
        f->http_port = otlp_http_bound_port(r->http);
    }
    return rc;
}

/* Shutdown, destroy, free the config, close the loop: 0 when nothing was left open. */
static int fx_stop(fx_t *f)
{
    if (f->self != NULL) {
        rcv_otlp_factory.shutdown(f->self, on_done, f);
        uv_timer_start(&f->deadline, on_deadline, 20000, 0);
        while (!f->done && !f->timed_out) {
            uv_run(&f->loop, UV_RUN_ONCE);
        }
        rcv_otlp_factory.destroy(f->self);
        f->self = NULL;
    }
    om_fields_free(rcv_otlp_factory.fields, &f->cfg);
    om_config_free(f->conf);
    f->conf = NULL;
    uv_close((uv_handle_t *)&f->wake, NULL);
    uv_close((uv_handle_t *)&f->deadline, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    om_test_host_close(&f->host);
    return uv_loop_close(&f->loop);
}

/* Run fn(arg) in a thread while driving the loop, until *done is set (or 20 s pass). */
static void fx_run_thread(fx_t *f, void (*fn)(void *), void *arg, atomic_bool *done)
{
    uv_thread_t t;
    uv_thread_create(&t, fn, arg);
    f->timed_out = false;
    uv_timer_start(&f->deadline, on_deadline, 20000, 0);
    uv_ref((uv_handle_t *)&f->wake);
    while (!atomic_load(done) && !f->timed_out) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    uv_unref((uv_handle_t *)&f->wake);
    uv_timer_stop(&f->deadline);
    uv_thread_join(&t);
}

/* A YAML receiver with one protocol on 127.0.0.1:0 and a tls section made of `tls` (lines
 * indented by 6) after the server's certificate and key. */
static const char *yaml_tls(char *buf, size_t cap, const char *proto, const char *tls)
{
    snprintf(buf, cap,
             "protocols:\n"
             "  %s:\n"
             "    endpoint: 127.0.0.1:0\n"
             "    tls:\n"
             "      cert_file: %s\n"
             "      key_file: %s\n"
             "%s",
             proto, C.server_cert, C.server_key, tls);
    return buf;
}

/* ------------------------------------------------------------------------------------------ */
/* Payloads                                                                                   */

typedef struct payload {
    uint8_t *data;
    size_t len;
    size_t items;
} payload_t;

static payload_t traces(size_t n)
{
    om_batch_t *b = om_testdata_simple(OM_SIG_TRACES, n, 0);
    payload_t p = {.len = om_batch_proto_size(b), .items = n};
    p.data = malloc(p.len + 1);
    om_batch_proto_pack(b, p.data);
    om_batch_release(b);
    return p;
}

/* ------------------------------------------------------------------------------------------ */
/* gRPC client                                                                                */

typedef struct gcall {
    char target[64];
    const char *ca;         /* NULL: a plaintext channel */
    const char *cert, *key; /* the client's certificate, or NULL */
    payload_t body;
    int status; /* -1: the call did not end */
    char details[256];
    uv_async_t *wake;
    atomic_bool done;
} gcall_t;

static gpr_timespec in_seconds(int s)
{
    return gpr_time_add(gpr_now(GPR_CLOCK_REALTIME), gpr_time_from_seconds(s, GPR_TIMESPAN));
}

static grpc_channel *gcall_channel(const gcall_t *g)
{
    grpc_channel_credentials *creds;
    if (g->ca == NULL) {
        creds = grpc_insecure_credentials_create();
    } else {
        grpc_ssl_pem_key_cert_pair pair = {.private_key = g->key, .cert_chain = g->cert};
        creds = grpc_ssl_credentials_create(g->ca, g->cert != NULL ? &pair : NULL, NULL, NULL);
    }
    grpc_channel *ch = grpc_channel_create(g->target, creds, NULL);
    grpc_channel_credentials_release(creds);
    return ch;
}

static void gcall_main(void *arg)
{
    gcall_t *g = arg;
    g->status = -1;
    grpc_channel *ch = gcall_channel(g);
    grpc_completion_queue *cq = grpc_completion_queue_create_for_next(NULL);
    grpc_call *call = grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq,
                                               grpc_slice_from_static_string(TRACES_METHOD), NULL,
                                               in_seconds(10), NULL);
    grpc_slice s = grpc_slice_from_copied_buffer((const char *)g->body.data, g->body.len);
    grpc_byte_buffer *send = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    grpc_byte_buffer *recv = NULL;
    grpc_metadata_array md, trailing;
    grpc_metadata_array_init(&md);
    grpc_metadata_array_init(&trailing);
    grpc_status_code code = GRPC_STATUS_UNKNOWN;
    grpc_slice details = grpc_empty_slice();
    grpc_op ops[6];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = send;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &md;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &recv;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &trailing;
    ops[5].data.recv_status_on_client.status = &code;
    ops[5].data.recv_status_on_client.status_details = &details;
    if (grpc_call_start_batch(call, ops, 6, g, NULL) == GRPC_CALL_OK &&
        grpc_completion_queue_next(cq, in_seconds(15), NULL).type == GRPC_OP_COMPLETE) {
        g->status = (int)code;
        snprintf(g->details, sizeof g->details, "%.*s", (int)GRPC_SLICE_LENGTH(details),
                 (const char *)GRPC_SLICE_START_PTR(details));
    }
    grpc_byte_buffer_destroy(send);
    if (recv != NULL) {
        grpc_byte_buffer_destroy(recv);
    }
    grpc_slice_unref(details);
    grpc_metadata_array_destroy(&md);
    grpc_metadata_array_destroy(&trailing);
    grpc_call_unref(call);
    grpc_completion_queue_shutdown(cq);
    while (grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
           GRPC_QUEUE_SHUTDOWN) {
    }
    grpc_completion_queue_destroy(cq);
    grpc_channel_destroy(ch);
    atomic_store(&g->done, true);
    uv_async_send(g->wake);
}

/* One Export call of n spans; returns the gRPC status (-1: the call did not end). */
static int grpc_export(fx_t *f, const char *ca, const char *cert, const char *key, size_t n)
{
    gcall_t g;
    memset(&g, 0, sizeof g);
    snprintf(g.target, sizeof g.target, "127.0.0.1:%d", f->grpc_port);
    g.ca = ca;
    g.cert = cert;
    g.key = key;
    g.body = traces(n);
    g.wake = &f->wake;
    fx_run_thread(f, gcall_main, &g, &g.done);
    free(g.body.data);
    if (g.status != 0) {
        fprintf(stderr, "  gRPC call: status %d %s\n", g.status, g.details);
    }
    return g.status;
}

/* ------------------------------------------------------------------------------------------ */
/* HTTP client: om_testhttp, OpenSSL (or plain TCP) over a blocking socket in a thread     */

/* n_req requests of `spans` spans each, keep-alive but the last (Connection: close). */
static char *http_requests(int n_req, size_t spans, size_t *len)
{
    payload_t p = traces(spans);
    om_strbuf_t sb;
    om_strbuf_init(&sb, 0);
    for (int i = 0; i < n_req; i++) {
        om_strbuf_printf(&sb,
                         "POST /v1/traces HTTP/1.1\r\nHost: localhost\r\n"
                         "Content-Type: application/x-protobuf\r\n%sContent-Length: %zu\r\n\r\n",
                         i == n_req - 1 ? "Connection: close\r\n" : "", p.len);
        om_strbuf_append(&sb, p.data, p.len);
    }
    free(p.data);
    return om_strbuf_steal(&sb, len);
}

/* Send the requests over a new connection and read until the server closes it. */
static void http_exchange(fx_t *f, om_testhttp_t *h, SSL_CTX *ctx, int n_req, size_t spans)
{
    size_t len = 0;
    char *data = http_requests(n_req, spans, &len);
    om_testhttp_init(h, f->http_port, data, 0);
    h->len = len; /* protobuf: may hold NUL bytes */
    h->ctx = ctx;
    om_testhttp_run_on(h, &f->loop);
    om_free(data);
    if (ctx != NULL) {
        SSL_CTX_free(ctx);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Tests: configuration                                                                       */

/* Config errors name the key; what otelcol accepts here is accepted, except what otelmon does
 * not implement and would weaken or change a security promise (refused). gRPC and HTTP take
 * the same settings: both are served by the core's HTTP server. */
static void test_config_rules(void)
{
    static const struct {
        const char *yaml;
        const char *want; /* NULL: valid */
    } cases[] = {
        {"protocols:\n  grpc:\n    tls:\n      cert_file: a\n", "both certificate and key"},
        {"protocols:\n  http:\n    tls:\n", "both certificate and key"},
        {"protocols:\n  http:\n    tls:\n      cert_file: a\n      cert_pem: x\n      key_file: "
         "b\n",
         "either certificate file or PEM"},
        {"protocols:\n  http:\n    tls:\n      cert_file: a\n      key_file: b\n"
         "      min_version: \"1.4\"\n",
         "protocols::http::tls::min_version: unknown value \"1.4\""},
        {"protocols:\n  http:\n    tls:\n      cert_file: a\n      key_file: b\n"
         "      min_version: \"1.3\"\n      max_version: \"1.2\"\n",
         "min_version cannot be greater than max_version"},
        {"protocols:\n  grpc:\n    tls:\n      cert_file: a\n      key_file: b\n"
         "      min_version: \"1.3\"\n",
         NULL}, /* the core server serves gRPC: OpenSSL enforces it, as over HTTP */
        {"protocols:\n  http:\n    tls:\n      cert_file: a\n      key_file: b\n"
         "      min_version: \"1.3\"\n",
         NULL},
        {"protocols:\n  grpc:\n    tls:\n      cert_file: a\n      key_file: b\n"
         "      client_ca_file: c\n      ca_file: d\n      min_version: \"1.2\"\n"
         "      max_version: \"1.3\"\n      reload_interval: 0s\n"
         "      client_ca_file_reload: false\n      tpm: {enabled: false}\n",
         NULL},
        {"protocols:\n  grpc:\n    tls:\n      cert_file: a\n      key_file: b\n"
         "      cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]\n",
         NULL},
        {"protocols:\n  grpc:\n    tls:\n      cert_file: a\n      key_file: b\n"
         "      curve_preferences: [P256]\n",
         NULL},
        {"protocols:\n  grpc:\n    tls:\n      cert_file: a\n      key_file: b\n"
         "      include_system_ca_certs_pool: true\n",
         NULL},
        {"protocols:\n  http:\n    tls:\n      cert_file: a\n      key_file: b\n"
         "      reload_interval: 1h\n",
         "tls::reload_interval: not supported by otelmon: reloading certificates"},
        {"protocols:\n  http:\n    tls:\n      cert_file: a\n      key_file: b\n"
         "      client_ca_file_reload: true\n",
         "tls::client_ca_file_reload: not supported by otelmon"},
        {"protocols:\n  http:\n    tls:\n      cert_file: a\n      key_file: b\n"
         "      tpm: {enabled: true, path: /dev/tpmrm0}\n",
         "tls::tpm::enabled: not supported by otelmon: keys in a TPM"},
        {"protocols:\n  http:\n    tls:\n      cert_file: a\n      key_file: b\n"
         "      cipher_suites: [TLS_NOT_A_SUITE]\n",
         "protocols::http::tls::cipher_suites: invalid TLS cipher suite: \"TLS_NOT_A_SUITE\""},
        {"protocols:\n  http:\n    tls:\n      cert_file: a\n      key_file: b\n"
         "      curve_preferences: [P256, X448]\n",
         "protocols::http::tls::curve_preferences: invalid curve type: X448. Expected values are"},
        {"protocols:\n  http:\n    tls:\n      cert_file: a\n      key_file: b\n"
         "      curve_preferences: [X25519, P256]\n      include_system_ca_certs_pool: true\n"
         "      cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]\n",
         NULL},
        {"protocols:\n  http:\n    tls:\n      cert_file: a\n      key_file: b\n"
         "      bogus: 1\n",
         "has invalid keys: bogus"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fx_t f;
        fx_init(&f);
        int rc = fx_config(&f, cases[i].yaml);
        char diag[512];
        snprintf(diag, sizeof diag, "%s", f.diag);
        ASSERT_EQ_INT(fx_stop(&f), 0);
        if (cases[i].want == NULL) {
            if (rc != 0) {
                fprintf(stderr, "  case %zu: %s\n", i, diag);
            }
            ASSERT_EQ_INT(rc, 0);
        } else {
            ASSERT_EQ_INT(rc, OM_ECONFIG);
            ASSERT_CONTAINS(diag, cases[i].want);
        }
    }
}

/* A file that is missing, not PEM, or a key that belongs to another certificate fails start
 * with a message naming the file, on either protocol; the receiver still shuts down cleanly. */
static void test_start_errors(void)
{
    char extra[OM_TESTCERTS_PATH + 64], yaml[2048];
    struct {
        const char *proto;
        const char *key;
        const char *value;
        const char *want;
    } cases[] = {
        {"grpc", "client_ca_file", C.missing, "client_ca_file: cannot read"},
        {"http", "client_ca_file", C.missing, "client_ca_file: cannot read"},
        {"grpc", "client_ca_file", C.garbage, "client_ca_file: no valid certificate in"},
        {"http", "ca_file", C.garbage, "ca_file: no valid certificate in"},
        {"grpc", "ca_file", C.empty, "ca_file: no valid certificate in"},
        {"http", "client_ca_file", C.dir, "client_ca_file: cannot read"}, /* a directory */
        {"http", "cipher_suites", "[TLS_NOT_A_SUITE]",
         "invalid TLS cipher suite: \"TLS_NOT_A_SUITE\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(extra, sizeof extra, "      %s: %s\n", cases[i].key, cases[i].value);
        fx_t f;
        om_err_t err = {0};
        int rc = fx_start(&f, yaml_tls(yaml, sizeof yaml, cases[i].proto, extra), &err);
        ASSERT_EQ_INT(fx_stop(&f), 0);
        ASSERT_EQ_INT(rc, OM_ECONFIG);
        ASSERT_CONTAINS(err.msg, cases[i].want);
        if (cases[i].value[0] == '/') {
            ASSERT_CONTAINS(err.msg, cases[i].value);
        }
    }
    /* The client's key with the server's certificate, and a missing certificate file. */
    const char *protos[] = {"grpc", "http"};
    for (int i = 0; i < 2; i++) {
        snprintf(yaml, sizeof yaml,
                 "protocols:\n  %s:\n    endpoint: 127.0.0.1:0\n    tls:\n"
                 "      cert_file: %s\n      key_file: %s\n",
                 protos[i], C.server_cert, C.client_key);
        fx_t f;
        om_err_t err = {0};
        int rc = fx_start(&f, yaml, &err);
        ASSERT_EQ_INT(fx_stop(&f), 0);
        ASSERT_EQ_INT(rc, OM_ECONFIG);
        ASSERT_CONTAINS(err.msg, "does not match the certificate");
        ASSERT_CONTAINS(err.msg, C.client_key);
        snprintf(yaml, sizeof yaml,
                 "protocols:\n  %s:\n    endpoint: 127.0.0.1:0\n    tls:\n"
                 "      cert_file: %s\n      key_file: %s\n",
                 protos[i], C.missing, C.server_key);
        om_err_t err2 = {0};
        rc = fx_start(&f, yaml, &err2);
        ASSERT_EQ_INT(fx_stop(&f), 0);
        ASSERT_EQ_INT(rc, OM_ECONFIG);
        ASSERT_CONTAINS(err2.msg, "cert_file: cannot read");
        ASSERT_CONTAINS(err2.msg, "no such file or directory");
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Tests: gRPC                                                                                */

/* Server TLS without client certificates: a TLS client that trusts the CA exports; a
 * plaintext client gets nowhere. */
static void test_grpc_tls(void)
{
    char yaml[2048];
    fx_t f;
    om_err_t err = {0};
    int rc = fx_start(&f, yaml_tls(yaml, sizeof yaml, "grpc", ""), &err);
    int ok = -1, plain = -1, with_cert = -1;
    int after_ok = 0, after_plain = 0;
    if (rc == 0) {
        ok = grpc_export(&f, C.ca_pem, NULL, NULL, 3);
        after_ok = f.batches;
        plain = grpc_export(&f, NULL, NULL, NULL, 1);
        after_plain = f.batches;
        with_cert = grpc_export(&f, C.ca_pem, C.client_cert_pem, C.client_key_pem, 2);
    }
    size_t items = f.items;
    ASSERT_EQ_INT(fx_stop(&f), 0);
    ASSERT_EQ_INT(rc, 0);
    ASSERT_EQ_INT(ok, GRPC_STATUS_OK);
    ASSERT_EQ_INT(after_ok, 1);
    ASSERT_EQ_INT(plain, GRPC_STATUS_UNAVAILABLE);
    ASSERT_EQ_INT(after_plain, 1);
    ASSERT_EQ_INT(with_cert, GRPC_STATUS_OK); /* a certificate nobody asked for is fine */
    ASSERT_EQ_UINT(items, 5);
}

/* client_ca_file: only clients with a certificate from that CA get through. */
static void test_grpc_mtls(void)
{
    char yaml[2048], extra[OM_TESTCERTS_PATH + 32];
    snprintf(extra, sizeof extra, "      client_ca_file: %s\n", C.ca);
    fx_t f;
    om_err_t err = {0};
    int rc = fx_start(&f, yaml_tls(yaml, sizeof yaml, "grpc", extra), &err);
    int good = -1, none = -1, rogue = -1, again = -1;
    int batches_refused = -1;
    if (rc == 0) {
        good = grpc_export(&f, C.ca_pem, C.client_cert_pem, C.client_key_pem, 1);
        none = grpc_export(&f, C.ca_pem, NULL, NULL, 1);
        rogue = grpc_export(&f, C.ca_pem, C.rogue_cert_pem, C.rogue_key_pem, 1);
        batches_refused = f.batches;
        again = grpc_export(&f, C.ca_pem, C.client_cert_pem, C.client_key_pem, 1);
    }
    int batches = f.batches;
    ASSERT_EQ_INT(fx_stop(&f), 0);
    if (rc != 0) {
        fprintf(stderr, "  start: %s\n", err.msg);
    }
    ASSERT_EQ_INT(rc, 0);
    ASSERT_EQ_INT(good, GRPC_STATUS_OK);
    ASSERT_EQ_INT(none, GRPC_STATUS_UNAVAILABLE);
    ASSERT_EQ_INT(rogue, GRPC_STATUS_UNAVAILABLE);
    ASSERT_EQ_INT(batches_refused, 1);
    ASSERT_EQ_INT(again, GRPC_STATUS_OK);
    ASSERT_EQ_INT(batches, 2);
}

/* ------------------------------------------------------------------------------------------ */
/* Tests: HTTP                                                                                */

/* Pipelined keep-alive requests over TLS, one large, then close_notify; ALPN says http/1.1. A
 * plain HTTP client on the TLS port gets a plain 400 and the server keeps serving TLS. */
static void test_http_tls(void)
{
    char yaml[2048];
    fx_t f;
    om_err_t err = {0};
    int rc = fx_start(&f, yaml_tls(yaml, sizeof yaml, "http", ""), &err);
    om_testhttp_t a, big, plain, again;
    memset(&a, 0, sizeof a);
    memset(&big, 0, sizeof big);
    memset(&plain, 0, sizeof plain);
    memset(&again, 0, sizeof again);
    size_t items_big = 0;
    if (rc == 0) {
        http_exchange(&f, &a, om_testcerts_client_ctx(&C, NULL, NULL, 0), 3, 2);
        size_t before = f.items;
        http_exchange(&f, &big, om_testcerts_client_ctx(&C, NULL, NULL, 0), 1,
                      20000); /* a few MB */
        items_big = f.items - before;
        http_exchange(&f, &plain, NULL, 1, 1);
        http_exchange(&f, &again, om_testcerts_client_ctx(&C, NULL, NULL, 0), 1, 1);
    }
    int batches = f.batches;
    ASSERT_EQ_INT(fx_stop(&f), 0);
    ASSERT_EQ_INT(rc, 0);
    ASSERT_TRUE(a.handshake_ok);
    ASSERT_EQ_STR(a.alpn, "http/1.1");
    ASSERT_EQ_INT(a.nresp, 3);
    ASSERT_EQ_INT(a.resp[0].status, 200);
    ASSERT_EQ_INT(a.resp[2].status, 200);
    ASSERT_TRUE(a.clean_close);
    ASSERT_EQ_INT(big.nresp, 1);
    ASSERT_EQ_INT(big.resp[0].status, 200);
    ASSERT_EQ_UINT(items_big, 20000);
    ASSERT_TRUE(plain.connected);
    ASSERT_EQ_INT(plain.nresp, 1);
    ASSERT_EQ_INT(plain.resp[0].status, 400);
    ASSERT_CONTAINS(plain.resp[0].body, "Client sent an HTTP request to an HTTPS server.");
    ASSERT_EQ_INT(again.nresp, 1);
    ASSERT_EQ_INT(again.resp[0].status, 200);
    ASSERT_EQ_INT(batches, 3 + 1 + 1);
}

/* client_ca_file: a client without a certificate, or with one from another CA, is refused
 * before any request is read; one with the right certificate is served. */
static void test_http_mtls(void)
{
    char yaml[2048], extra[OM_TESTCERTS_PATH + 32];
    snprintf(extra, sizeof extra, "      client_ca_file: %s\n", C.ca);
    fx_t f;
    om_err_t err = {0};
    int rc = fx_start(&f, yaml_tls(yaml, sizeof yaml, "http", extra), &err);
    om_testhttp_t good, none, rogue, again;
    memset(&good, 0, sizeof good);
    memset(&none, 0, sizeof none);
    memset(&rogue, 0, sizeof rogue);
    memset(&again, 0, sizeof again);
    int batches_refused = -1;
    if (rc == 0) {
        http_exchange(&f, &good, om_testcerts_client_ctx(&C, C.client_cert, C.client_key, 0), 1, 1);
        http_exchange(&f, &none, om_testcerts_client_ctx(&C, NULL, NULL, 0), 1, 1);
        http_exchange(&f, &rogue, om_testcerts_client_ctx(&C, C.rogue_cert, C.rogue_key, 0), 1, 1);
        batches_refused = f.batches;
        http_exchange(&f, &again,
                      om_testcerts_client_ctx(&C, C.client_cert, C.client_key, TLS1_2_VERSION), 1,
                      1);
    }
    int batches = f.batches;
    ASSERT_EQ_INT(fx_stop(&f), 0);
    ASSERT_EQ_INT(rc, 0);
    ASSERT_EQ_INT(good.nresp, 1);
    ASSERT_EQ_INT(good.resp[0].status, 200);
    /* With TLS 1.3 the client finishes its handshake before the server checks its
     * certificate, so the refusal arrives as an alert on the first read. */
    ASSERT_EQ_INT(none.nresp, 0);
    ASSERT_CONTAINS(none.err, "certificate required");
    ASSERT_EQ_INT(rogue.nresp, 0);
    ASSERT_CONTAINS(rogue.err, "unknown ca");
    ASSERT_EQ_INT(batches_refused, 1);
    ASSERT_EQ_INT(again.nresp, 1); /* and over TLS 1.2 */
    ASSERT_EQ_INT(again.resp[0].status, 200);
    ASSERT_EQ_INT(batches, 2);
}

/* min_version 1.3 refuses a TLS 1.2 client; max_version 1.2 with cipher_suites serves 1.2
 * with the suite asked for. */
static void test_http_versions_and_ciphers(void)
{
    char yaml[2048];
    fx_t f;
    om_err_t err = {0};
    int rc =
        fx_start(&f, yaml_tls(yaml, sizeof yaml, "http", "      min_version: \"1.3\"\n"), &err);
    om_testhttp_t old, cur;
    memset(&old, 0, sizeof old);
    memset(&cur, 0, sizeof cur);
    if (rc == 0) {
        http_exchange(&f, &old, om_testcerts_client_ctx(&C, NULL, NULL, TLS1_2_VERSION), 1, 1);
        http_exchange(&f, &cur, om_testcerts_client_ctx(&C, NULL, NULL, 0), 1, 1);
    }
    ASSERT_EQ_INT(fx_stop(&f), 0);
    ASSERT_EQ_INT(rc, 0);
    ASSERT_TRUE(!old.handshake_ok);
    ASSERT_EQ_INT(old.nresp, 0);
    ASSERT_EQ_INT(cur.nresp, 1);
    ASSERT_EQ_INT(cur.resp[0].status, 200);

    rc =
        fx_start(&f,
                 yaml_tls(yaml, sizeof yaml, "http",
                          "      max_version: \"1.2\"\n"
                          "      cipher_suites: [TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256]\n"),
                 &err);
    om_testhttp_t c12;
    memset(&c12, 0, sizeof c12);
    if (rc == 0) {
        http_exchange(&f, &c12, om_testcerts_client_ctx(&C, NULL, NULL, 0), 1, 1);
    }
    ASSERT_EQ_INT(fx_stop(&f), 0);
    if (rc != 0) {
        fprintf(stderr, "  start: %s\n", err.msg);
    }
    ASSERT_EQ_INT(rc, 0);
    ASSERT_EQ_INT(c12.nresp, 1);
    ASSERT_EQ_STR(c12.cipher, "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256");
}

/* The gRPC port enforces the versions and suites as the HTTP port does (the same OpenSSL
 * server): a TLS 1.2 client is refused under min_version 1.3; a chosen TLS 1.2 suite is the
 * one negotiated. An HTTP/1.1 request there is answered 404 (no such path), which shows the
 * handshake went through. */
static void test_grpc_versions_and_ciphers(void)
{
    char yaml[2048];
    fx_t f;
    om_err_t err = {0};
    int rc =
        fx_start(&f, yaml_tls(yaml, sizeof yaml, "grpc", "      min_version: \"1.3\"\n"), &err);
    om_testhttp_t old, cur;
    memset(&old, 0, sizeof old);
    memset(&cur, 0, sizeof cur);
    if (rc == 0) {
        f.http_port = f.grpc_port;
        http_exchange(&f, &old, om_testcerts_client_ctx(&C, NULL, NULL, TLS1_2_VERSION), 1, 1);
        http_exchange(&f, &cur, om_testcerts_client_ctx(&C, NULL, NULL, 0), 1, 1);
    }
    ASSERT_EQ_INT(fx_stop(&f), 0);
    ASSERT_EQ_INT(rc, 0);
    ASSERT_TRUE(!old.handshake_ok);
    ASSERT_EQ_INT(old.nresp, 0);
    ASSERT_EQ_INT(cur.nresp, 1);
    ASSERT_EQ_INT(cur.resp[0].status, 404);

    rc =
        fx_start(&f,
                 yaml_tls(yaml, sizeof yaml, "grpc",
                          "      max_version: \"1.2\"\n"
                          "      cipher_suites: [TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256]\n"),
                 &err);
    om_testhttp_t c12;
    memset(&c12, 0, sizeof c12);
    if (rc == 0) {
        f.http_port = f.grpc_port;
        http_exchange(&f, &c12, om_testcerts_client_ctx(&C, NULL, NULL, 0), 1, 1);
    }
    ASSERT_EQ_INT(fx_stop(&f), 0);
    ASSERT_EQ_INT(rc, 0);
    ASSERT_EQ_INT(c12.nresp, 1);
    ASSERT_EQ_STR(c12.cipher, "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256");
}

int main(void)
{
    om_log_set_level(OM_LOG_WARN); /* shows the refused handshakes */
    signal(SIGPIPE, SIG_IGN);      /* as the service does: a client gone mid-answer */
    /* Before gRPC starts threads: the certificates come from forked openssl processes. */
    if (!om_testcerts_make(&C)) {
        fprintf(stderr, "cannot make test certificates with openssl in %s\n", C.dir);
        om_testcerts_remove(&C);
        return 1;
    }
    grpc_init(); /* the clients'; each server balances its own */
    OM_RUN(test_config_rules);
    OM_RUN(test_start_errors);
    OM_RUN(test_grpc_tls);
    OM_RUN(test_grpc_mtls);
    OM_RUN(test_http_tls);
    OM_RUN(test_http_mtls);
    OM_RUN(test_http_versions_and_ciphers);
    OM_RUN(test_grpc_versions_and_ciphers);
    grpc_shutdown();
    om_testcerts_remove(&C);
    return om_test_summary();
}
