/* otlp_http_fuzz.c: raw bytes as the byte stream of one OTLP/HTTP connection, through the
 * same session code the server runs (parsing, routing, decompression, decoding, answers).
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

/* The session appends only whole responses: each starts with a status line. */
static void check_out(const otlp_http_session_t *s)
{
    if (s->out.len > 0 && (s->out.len < 9 || memcmp(s->out.data, "HTTP/1.1 ", 9) != 0)) {
        abort();
    }
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
    cfg.protocols.http.endpoint = "localhost:4318";
    cfg.protocols.http.traces_url_path = "/v1/traces";
    cfg.protocols.http.metrics_url_path = "/v1/metrics";
    cfg.protocols.http.logs_url_path = "/v1/logs";
    cfg.protocols.http.max_request_body_size = 64 * 1024; /* small, to reach the limits */
    int rc = (data[0] & 1) ? OM_EREFUSED : 0;
    static om_host_t host; /* no intake: always open */
    rcv_otlp_t r = {.cfg = &cfg, .log_name = "receiver/otlp", .host = &host};
    for (int i = 0; i < OM_SIG_COUNT; i++) {
        r.next[i].self = &rc;
        r.next[i].consume = consume;
    }
    size_t piece = data[1] == 0 ? size : data[1];
    if (data[0] & 2) {
        om_alloc_fail_after(1u + data[2]);
    }
    data += 3;
    size -= 3;
    otlp_http_warnlimit_t warn = {0};
    otlp_http_session_t s;
    otlp_http_session_init(&s, &r, &warn, "fuzz");
    /* Bound: each pass consumes up to `piece` (>= 1) bytes. */
    while (size > 0 && !s.close) {
        size_t n = size < piece ? size : piece;
        otlp_http_session_feed(&s, (const char *)data, n);
        check_out(&s);
        om_strbuf_reset(&s.out); /* as if sent */
        data += n;
        size -= n;
    }
    otlp_http_session_feed(&s, NULL, 0);
    check_out(&s);
    otlp_http_session_free(&s);
    om_alloc_fail_after(0);
    return 0;
}
