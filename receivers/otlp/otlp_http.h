/* otlp_http.h: private to the otlp receiver folder.
 *
 * OTLP/HTTP runs on the core's HTTP server (om_http_server_*), in two parts:
 *   - the handler (otlp_http_session.c): what one export request does, from its headers to
 *     its answer (media type, encoding, size, decompression and decoding of the whole body,
 *     delivery). It never sees a socket, so the fuzz target drives it through
 *     om_http_session_* exactly as the server does (with no worker pool: all on the loop);
 *   - the server (otlp_http.c): one route per wired signal, the intake hold, the log line.
 *
 * Threading: the loop thread, except that a large body is decompressed and decoded on the
 * host's worker pool (otlp_http_req_t's job; see otlp_http_session.c). Nothing blocks. */
#ifndef RCV_OTLP_HTTP_H
#define RCV_OTLP_HTTP_H

#include "otlp.h"
#include "otlp_body.h"

/* Longest request target (the paths are short; a longer one gets 431). */
#define OTLP_HTTP_URL_MAX 2048

/* What a route knows: the receiver and the signal of its path. */
typedef struct otlp_http_route {
    rcv_otlp_t *r;
    om_signal_t signal;
} otlp_http_route_t;

/* One export request's state (om_http_req_state), zeroed by the server at each request. */
typedef struct otlp_http_req {
    bool json;        /* Content-Type said application/json */
    otlp_enc_t enc;   /* Content-Encoding */
    uint64_t raw_len; /* body bytes received, before decompression */
    /* The body as received (a compressed one is decompressed whole at the end, om_decompress,
     * and replaced by its output). */
    otlp_buf_t body;
    /* A large body is decompressed (when compressed) and decoded on the host's worker pool:
     * from submit to done the worker reads body, json, enc, zmax and arena_cap and writes
     * body, zrc, zerr, batch, drc and derr; the loop touches none of the state meanwhile
     * (the server reads nothing more from the connection while the answer is owed). */
    om_job_t job;
    om_http_req_t *req;             /* for the job's done */
    const otlp_http_route_t *route; /* likewise */
    size_t zmax;                    /* the body cap (body_max), read on the loop before submit */
    size_t arena_cap;               /* the decoded batch's cap, likewise */
    int zrc;                        /* decompression's result */
    om_err_t zerr;
    om_batch_t *batch; /* the decoded request, owned by the state until delivered */
    /* A worker's decoded request with items, after the pipeline's off-loop processors ran on
     * the worker (om_consumer_prepare); batch is then NULL. Owned until delivered. */
    om_prepared_t prep;
    bool prepared;
    int drc; /* decoding's result */
    om_err_t derr;
} otlp_http_req_t;

/* The handler of every OTLP/HTTP route; its arg is an otlp_http_route_t. */
extern const om_http_handler_t otlp_http_handler;

/* The core server inside (for om_http_session_new in the fuzz target, and tests). */
om_http_server_t *otlp_http_core(otlp_http_server_t *s);
/* The port the server listens on (useful with port 0), or -1 before a successful start. */
int otlp_http_bound_port(const otlp_http_server_t *s);
/* Tests: open client connections, and those of them in the middle of a request. */
size_t otlp_http_conn_count(const otlp_http_server_t *s);
size_t otlp_http_busy_count(const otlp_http_server_t *s);

#endif
