/* otlp_http_fuzz.c: raw bytes as the byte stream of one OTLP/HTTP connection, through the
 * same code the server runs (the core's HTTP session: parsing, limits, routing; then the
 * receiver's handler: decompression, decoding, answers), without a socket.
 *
 * Input layout: byte 0 picks options (bit 0: the pipeline refuses; bit 1: make an allocation
 * fail, byte 2 says which), byte 1 the size of the pieces the rest is fed in (0: all at
 * once), then the stream. Every answer must be a whole HTTP/1.1 response. */
#include <stdlib.h>
#include <string.h>

#include "otlp_http.h"

static int consume(void *self, om_batch_t *b)
{
    int rc = *(const int *)self;
    om_batch_release(b);
    return rc;
}

/* The session hands out only whole responses: each starts with a status line. */
static void check_out(om_http_session_t *s)
{
    size_t len = 0;
    char *out = om_http_session_take_output(s, &len);
    if (out != NULL && (len < 9 || memcmp(out, "HTTP/1.1 ", 9) != 0)) {
        abort();
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
    static rcv_otlp_cfg_t cfg;
    cfg.protocols.http_present = true;
    om_http_server_cfg_defaults(&cfg.protocols.http.server);
    cfg.protocols.http.server.max_request_body_size = 64 * 1024; /* small, to reach limits */
    cfg.protocols.http.traces_url_path = "/v1/traces";
    cfg.protocols.http.metrics_url_path = "/v1/metrics";
    cfg.protocols.http.logs_url_path = "/v1/logs";
    int rc = (data[0] & 1) ? OM_EREFUSED : 0;
    om_host_t host = {0}; /* no loop: the server is never started; no intake: open */
    rcv_otlp_t r = {.cfg = &cfg, .log_name = "receiver/otlp", .host = &host};
    for (int i = 0; i < OM_SIG_COUNT; i++) {
        r.next[i].self = &rc;
        r.next[i].consume = consume;
    }
    size_t piece = data[1] == 0 ? size : data[1];
    bool fail_alloc = (data[0] & 2) != 0;
    unsigned long fail_at = 1u + data[2];
    data += 3;
    size -= 3;
    otlp_http_server_t *srv = NULL;
    om_err_t err = {0};
    if (otlp_http_create(&r, &srv, &err) != 0) {
        return 0;
    }
    if (fail_alloc) {
        om_alloc_fail_after(fail_at);
    }
    om_http_session_t *s = om_http_session_new(otlp_http_core(srv), "fuzz");
    /* Bound: each pass consumes up to `piece` (>= 1) bytes. */
    while (s != NULL && size > 0 && !om_http_session_done(s)) {
        size_t n = size < piece ? size : piece;
        om_http_session_feed(s, (const char *)data, n);
        check_out(s);
        data += n;
        size -= n;
    }
    if (s != NULL) {
        om_http_session_feed(s, NULL, 0);
        check_out(s);
        om_http_session_free(s);
    }
    om_alloc_fail_after(0);
    otlp_http_destroy(srv);
    return 0;
}
