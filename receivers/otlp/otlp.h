/* otlp.h: private to the otlp receiver folder.
 *
 * One receiver instance (per component id) owns up to two servers, gRPC and HTTP, that share
 * the instance's consumers: a request for a signal is decoded into a batch and handed to
 * next[signal]. Both servers answer from the return code through om_err_grpc_status() and
 * om_err_http_status(). */
#ifndef RCV_OTLP_H
#define RCV_OTLP_H

#include "om.h"

typedef struct otlp_grpc_cfg {
    char *endpoint;                 /* "localhost:4317" */
    int64_t max_recv_msg_size_mib;  /* 4 */
    int64_t max_concurrent_streams; /* 0: gRPC's default */
    bool tls_present;               /* `tls:` written: serve TLS only */
    om_tls_server_cfg_t tls;        /* the core's table (the core HTTP server serves it) */
    om_auth_cfg_t auth;             /* each call authenticated from its metadata */
} otlp_grpc_cfg_t;

typedef struct otlp_http_cfg {
    /* The core's HTTP server settings (otelcol's confighttp.ServerConfig): endpoint
     * ("localhost:4318"), tls, max_request_body_size (20 MiB, measured before and after
     * decompression), the timeouts... */
    om_http_server_cfg_t server;
    char *traces_url_path;  /* "/v1/traces" */
    char *metrics_url_path; /* "/v1/metrics" */
    char *logs_url_path;    /* "/v1/logs" */
} otlp_http_cfg_t;

typedef struct rcv_otlp_cfg {
    struct {
        bool grpc_present, http_present; /* `grpc:` / `http:` written under protocols */
        otlp_grpc_cfg_t grpc;
        otlp_http_cfg_t http;
    } protocols;
} rcv_otlp_cfg_t;

typedef struct otlp_grpc_server otlp_grpc_server_t;
typedef struct otlp_http_server otlp_http_server_t;

typedef struct rcv_otlp {
    const rcv_otlp_cfg_t *cfg;
    const char *log_name;
    om_host_t *host;
    om_consumer_t next[OM_SIG_COUNT];
    om_obsrecv_t obs_grpc, obs_http; /* accepted / refused items per transport */
    otlp_grpc_server_t *grpc;        /* NULL unless protocols.grpc is configured */
    otlp_http_server_t *http;        /* NULL unless protocols.http is configured */
    int pending_shutdowns;           /* servers still shutting down */
    bool offloading;                 /* otlp_offload hands large plain requests over */
    bool shutting_down;
    om_done_fn done;
    void *done_arg;
} rcv_otlp_t;

/* Where a request's message is decoded (both servers): in place on the loop, which costs
 * least in all, except that large compressed ones are inflated and decoded on the host's
 * worker pool, and so are large plain ones once the loop thread uses more than
 * OTLP_BUSY_OFFLOAD of a core (om_host_loop_busy), until it uses less than OTLP_BUSY_INPLACE:
 * then the loop is what limits throughput, and the workers use the other cores (the gap keeps
 * a loop whose load drops as it hands work over from switching back and forth). At or above
 * OTLP_OFFLOAD_MIN bytes of work: below it the hand-over (a queue, a wake-up each way) costs
 * about what the work does. */
#define OTLP_BUSY_OFFLOAD 0.5
#define OTLP_BUSY_INPLACE 0.2
#define OTLP_OFFLOAD_MIN ((size_t)8 * 1024)
bool otlp_offload(rcv_otlp_t *r, size_t work, bool compressed);

/* Hand a decoded batch to the consumer of its signal (takes ownership). Returns what the
 * pipeline returned, or OM_ENOTSUP when this receiver is in no pipeline of that signal. */
int otlp_deliver(rcv_otlp_t *r, const om_obsrecv_t *obs, om_batch_t *batch);
/* Any thread, right after decoding: runs the off-loop processors of the pipeline batch goes
 * to (om_consumer_prepare), keeping the result in p. */
void otlp_prepare(rcv_otlp_t *r, om_batch_t *batch, om_prepared_t *p);
/* Loop thread: otlp_deliver for a prepared batch; p is empty after. */
int otlp_deliver_prepared(rcv_otlp_t *r, const om_obsrecv_t *obs, om_prepared_t *p);

/* Each server: create (no I/O), start (bind, listen), shutdown (stop accepting, finish or
 * cancel in-flight requests, close every handle, then call done once), destroy after done. */
int otlp_grpc_create(rcv_otlp_t *r, otlp_grpc_server_t **out, om_err_t *err);
int otlp_grpc_start(otlp_grpc_server_t *s, om_err_t *err);
void otlp_grpc_shutdown(otlp_grpc_server_t *s, om_done_fn done, void *arg);
void otlp_grpc_destroy(otlp_grpc_server_t *s);

int otlp_http_create(rcv_otlp_t *r, otlp_http_server_t **out, om_err_t *err);
int otlp_http_start(otlp_http_server_t *s, om_err_t *err);
void otlp_http_shutdown(otlp_http_server_t *s, om_done_fn done, void *arg);
void otlp_http_destroy(otlp_http_server_t *s);

#endif
