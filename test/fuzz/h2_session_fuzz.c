/* h2_session_fuzz.c: raw bytes as the byte stream of one HTTP/2 connection to the core HTTP
 * server's gRPC methods, through the code the server runs for it (h2_session.c over
 * nghttp2: frames, headers, the gRPC checks, message limits, answers at once and later,
 * deadlines, cancels), without a socket.
 *
 * Input layout: byte 0 picks options (bit 0: prepend the HTTP/2 preface; bit 1: make an
 * allocation of ours fail, byte 2 says which; bit 2: small limits; bit 3: expire every
 * deadline at the end), byte 1 the size of the pieces the rest is fed in (0: all at once),
 * then the stream. The server's first output must be a SETTINGS frame. */
#include <stdlib.h>
#include <string.h>

#include "http_internal.h"
#include "om.h"

#define MAX_OWED 8
static om_grpc_call_t *owed[MAX_OWED];
static size_t n_owed;

static void on_echo(om_grpc_call_t *call, void *arg)
{
    (void)arg;
    size_t len;
    bool z;
    const uint8_t *m = om_grpc_call_message(call, &len, &z);
    const char *v;
    size_t n = om_grpc_call_metadata_count(call);
    for (size_t i = 0; i < n; i++) {
        (void)om_grpc_call_metadata_at(call, i, &v);
    }
    if (om_grpc_call_metadata(call, "x-fail") != NULL) {
        om_grpc_respond(call, 3, "bad \xff message", NULL, 0);
        return;
    }
    om_grpc_respond(call, 0, NULL, m, len);
}

static void on_later(om_grpc_call_t *call, void *arg)
{
    (void)arg;
    if (n_owed < MAX_OWED) {
        owed[n_owed++] = call;
    } else {
        om_grpc_respond(call, 14, "busy", NULL, 0);
    }
}

static void on_cancel(om_grpc_call_t *call, void *arg)
{
    (void)arg;
    for (size_t i = 0; i < n_owed; i++) {
        if (owed[i] == call) {
            owed[i] = owed[--n_owed];
            om_grpc_respond(call, 1, "cancelled", NULL, 0);
            return;
        }
    }
}

static const om_grpc_handler_t H_ECHO = {.call = on_echo};
static const om_grpc_handler_t H_LATER = {.call = on_later, .cancel = on_cancel};

static void answer_owed(void)
{
    while (n_owed > 0) {
        om_grpc_call_t *c = owed[--n_owed];
        om_grpc_respond(c, 0, NULL, "ok", 2);
    }
}

static bool first_output = true;

static void check_out(om__h2_session_t *h2)
{
    size_t len = 0;
    char *out = om__h2_take_output(h2, &len);
    if (out != NULL && first_output && (len < 9 || out[3] != 4)) {
        abort(); /* the server speaks first with its SETTINGS */
    }
    if (out != NULL) {
        first_output = false;
    }
    om_free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3) {
        return 0;
    }
    om_log_set_level(OM_LOG_NONE);
    uint8_t opt = data[0];
    size_t piece = data[1] == 0 ? size : data[1];
    unsigned long fail_at = 1u + data[2];
    data += 3;
    size -= 3;
    om_http_server_cfg_t cfg;
    om_http_server_cfg_defaults(&cfg);
    om_http_server_opts_t o = {.log_name = "fuzz",
                               .cfg = &cfg,
                               .default_endpoint = "localhost:0",
                               .max_header_bytes = (opt & 4) ? 256 : 0,
                               .h2_max_streams = (opt & 4) ? 2 : 0,
                               .req_state_size = 16};
    om_http_server_t *srv = NULL;
    om_err_t err = {0};
    uint64_t max = (opt & 4) ? 64 : 65536;
    if (om_http_server_new(&o, &srv, &err) != 0) {
        return 0;
    }
    if (om_http_server_grpc(srv, "/a.B/Echo", &H_ECHO, NULL, max, &err) != 0 ||
        om_http_server_grpc(srv, "/a.B/Later", &H_LATER, NULL, max, &err) != 0 ||
        om_http_server_grpc(srv, "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
                            &H_LATER, NULL, max, &err) != 0) {
        om_http_server_free(srv);
        return 0;
    }
    if (opt & 2) {
        om_alloc_fail_after(fail_at);
    }
    first_output = true;
    om__h2_session_t *h2 = om__h2_session_new(srv, "fuzz");
    if (h2 != NULL && (opt & 1)) {
        om__h2_feed(h2, OM__H2_PREFACE, sizeof OM__H2_PREFACE - 1);
    }
    /* Bound: each pass consumes up to `piece` (>= 1) bytes. */
    while (h2 != NULL && size > 0 && !om__h2_done(h2)) {
        size_t n = size < piece ? size : piece;
        om__h2_feed(h2, (const char *)data, n);
        check_out(h2);
        if ((data[0] & 1) != 0) {
            answer_owed(); /* sometimes between two pieces */
        }
        check_out(h2);
        data += n;
        size -= n;
    }
    if (h2 != NULL) {
        if (opt & 8) {
            om__h2_expire(h2, UINT64_MAX);
            check_out(h2);
        }
        if (!om__h2_close(h2)) {
            om__h2_release(h2);
        } else {
            answer_owed(); /* cancels answered what they had; the rest answer now */
            om__h2_release(h2);
        }
    }
    n_owed = 0;
    om_alloc_fail_after(0);
    om_http_server_free(srv);
    return 0;
}
