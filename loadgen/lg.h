/* lg.h: private to the load generator (otelmon-loadgen).
 *
 * The load generator builds a pool of distinct, fully encoded OTLP requests up front
 * (lg_gen.c), then drives one of three clients (lg_grpc.c, lg_http.c) with them and records
 * what came back (lg_stats.c). In --sink mode it is instead a counting OTLP server
 * (lg_sink.c) that counts items without decoding messages (lg_count.c).
 *
 * Threads: every function here is for one thread at a time; the sink's counters are the only
 * state shared between threads and they are atomics. */
#ifndef LG_H
#define LG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <grpc/grpc.h>

#include "om.h"

typedef enum {
    LG_GRPC,
    LG_HTTP_PROTO,
    LG_HTTP_JSON,
} lg_proto_t;

typedef struct lg_opts {
    lg_proto_t protocol;
    om_signal_t signal;
    char *host; /* om_malloc'd; "" never: defaults to 127.0.0.1 */
    int port;
    unsigned items;     /* spans / data points / log records per request */
    unsigned attrs;     /* attributes per item */
    unsigned attr_size; /* bytes of each string attribute value */
    unsigned etl_every; /* traces: about one span in this many is an ETL run (0: none) */
    unsigned pool;      /* distinct pre-encoded requests */
    bool gzip;
    unsigned connections, inflight;
    double rate;       /* requests/s; 0: as fast as possible */
    double duration_s; /* 0: until `requests` are done */
    uint64_t requests; /* 0: until the duration is over */
    double timeout_s;  /* per request */
    /* gRPC calls fail at once while their channel cannot connect (the start-up probe, which
     * must see a collector that is not listening yet); otherwise they wait for the connection
     * (wait-for-ready), up to timeout_s. */
    bool fail_fast;
    uint64_t seed;
    bool json;
    bool quiet;
    /* --sink: listen instead of sending. */
    bool sink;
    char *sink_http_host; /* NULL: no HTTP sink */
    int sink_http_port;
    /* --startup CMD: spawn CMD, send until the first success, report the time. */
    const char *startup_cmd;
    int startup_cpu;         /* --startup-cpu: pin CMD to this CPU; -1: do not */
    const char *startup_log; /* --startup-log: CMD's stdout and stderr go here (appended) */
} lg_opts_t;

/* ------------------------------------------------------------------------------------------ */
/* The request pool                                                                           */

typedef struct lg_req {
    uint8_t *body; /* owned: what goes in the message or the HTTP body (gzipped with --gzip) */
    size_t body_len;
    uint8_t *wire; /* owned, HTTP only: request line, headers and body in one buffer */
    size_t wire_len;
    size_t items;
} lg_req_t;

typedef struct lg_pool {
    lg_req_t *reqs; /* owned */
    size_t n;
    size_t raw_bytes; /* total protobuf bytes before JSON or gzip, for the report */
} lg_pool_t;

/* Builds o->pool distinct requests of the signal, encoded for o->protocol. Returns 0,
 * OM_ENOMEM or OM_EINVAL (with err) when the core's encoder rejects the message. */
int lg_pool_build(const lg_opts_t *o, lg_pool_t *pool, om_err_t *err);
void lg_pool_free(lg_pool_t *pool);
/* Remote-write samples one metrics request of this shape becomes in OtelMon's
 * prometheusremotewrite exporter with its default settings: a gauge or sum point 1, a
 * histogram point its bounds + le="+Inf" + _sum + _count, and 1 for the request's target_info
 * (its resource has attributes besides job and instance); 0 for other signals. Every point
 * is a series of its own (random attribute values) and every request has its own resource
 * (service.instance.id), so nothing merges unless one batch holds the same pool entry twice
 * (the same series at the same time: one sample). The prometheus (pull) exporter serves as
 * many series lines. */
uint64_t lg_rw_samples_per_request(const lg_opts_t *o);
/* The protobuf encoding of one request (for tests and the probe); caller frees with om_free. */
int lg_gen_proto(const lg_opts_t *o, uint64_t *rng, uint8_t **out, size_t *len, om_err_t *err);

/* gzip (RFC 1952) of data; *out is om_malloc'd. */
int lg_gzip(const uint8_t *data, size_t len, uint8_t **out, size_t *out_len);
/* Inflates gzip, zlib or zstd data (told apart by their magic bytes) into *out (om_malloc'd),
 * at most max bytes. Returns 0 or om_decompress's error. */
int lg_gunzip(const uint8_t *data, size_t len, size_t max, uint8_t **out, size_t *out_len);

/* splitmix64: fast, good enough for ids and shapes. */
uint64_t lg_rand(uint64_t *state);

/* ------------------------------------------------------------------------------------------ */
/* Counting items on the wire                                                                 */

/* Counts the series, samples and native histograms of a (decompressed) remote-write
 * WriteRequest without decoding it. Returns 0 or OM_EINVAL for malformed protobuf. */
int lg_count_rw(const uint8_t *p, size_t n, uint64_t *series, uint64_t *samples,
                uint64_t *histograms);
/* The same for a remote-write request body as sent (snappy block format, at most max bytes
 * once uncompressed). Returns 0, OM_EINVAL (not snappy, too large, malformed) or OM_ENOMEM. */
int lg_count_rw_snappy(const uint8_t *body, size_t n, size_t max, uint64_t *series,
                       uint64_t *samples, uint64_t *histograms);
/* Counts spans, metric data points or log records of an encoded Export*ServiceRequest
 * without decoding it. Returns 0 or OM_EINVAL for malformed protobuf. */
int lg_count_items(om_signal_t sig, const uint8_t *p, size_t n, uint64_t *items);
/* The rejected count of an encoded Export*ServiceResponse's partial_success (0 when absent);
 * -1 when the response is malformed. */
int64_t lg_partial_rejected(const uint8_t *p, size_t n);
/* The same for an OTLP/JSON response body. */
int64_t lg_partial_rejected_json(const char *p, size_t n);

/* ------------------------------------------------------------------------------------------ */
/* Statistics                                                                                 */

/* Latency histogram in microseconds: exact below 64, then 64 sub-buckets per power of two
 * (about 1.6% precision) up to 2^63. */
#define LG_HIST_SUB 64
#define LG_HIST_BUCKETS (LG_HIST_SUB + 58 * LG_HIST_SUB)

typedef struct lg_hist {
    uint64_t counts[LG_HIST_BUCKETS];
    uint64_t n, max;
} lg_hist_t;

void lg_hist_add(lg_hist_t *h, uint64_t us);
/* The value below which fraction q (0..1) of the samples fall (a bucket's upper bound, capped
 * by the maximum); 0 when empty. */
uint64_t lg_hist_quantile(const lg_hist_t *h, double q);

#define LG_MAX_ERR_KINDS 32

typedef struct lg_stats {
    uint64_t sent, ok, failed;
    uint64_t items_ok;
    uint64_t bytes_sent;
    lg_hist_t lat;
    uint64_t t_start_ns, t_end_ns;
    double cpu_s; /* the load generator's own CPU time (user + sys) over the run */
    /* Errors by kind, e.g. "grpc_14_UNAVAILABLE", "http_503", "io", "partial". */
    size_t n_err;
    char err_names[LG_MAX_ERR_KINDS][40];
    uint64_t err_counts[LG_MAX_ERR_KINDS];
    /* The first message seen with each kind (gRPC's status details), "" when none: tells
     * apart answers of the same code from different places (our server, gRPC core, the
     * client's channel failing fast). */
    char err_first[LG_MAX_ERR_KINDS][120];
} lg_stats_t;

void lg_stats_init(lg_stats_t *st);
void lg_stats_error(lg_stats_t *st, const char *kind);
/* As lg_stats_error, and keeps detail (len bytes, not NUL-terminated) if it is the kind's
 * first. */
void lg_stats_error_detail(lg_stats_t *st, const char *kind, const char *detail, size_t len);
/* A finished request: ok or not, its items and its latency. */
void lg_stats_done(lg_stats_t *st, bool ok, size_t items, uint64_t lat_ns);
/* Prints the report: a table on stderr (unless quiet) and with json one object on stdout. */
void lg_stats_report(const lg_stats_t *st, const lg_opts_t *o, const lg_pool_t *pool);

uint64_t lg_now_ns(void);

/* ------------------------------------------------------------------------------------------ */
/* Pacing: when may the next request go?                                                      */

typedef struct lg_sched {
    double rate;       /* requests/s, 0: no pacing */
    uint64_t start_ns; /* the first request */
    uint64_t end_ns;   /* no request starts at or after this (0: no limit) */
    uint64_t limit;    /* at most this many requests (0: no limit) */
    uint64_t started;  /* requests started so far */
} lg_sched_t;

void lg_sched_init(lg_sched_t *s, const lg_opts_t *o, uint64_t now);
/* 0: a request may start now; > 0: nanoseconds to wait; < 0: no more requests. */
int64_t lg_sched_next(const lg_sched_t *s, uint64_t now);

/* ------------------------------------------------------------------------------------------ */
/* Drivers. Each runs to completion (blocking the calling thread) and fills st. They return 0
 * when the run could be made (whatever the answers were) or an error with err. */

int lg_grpc_run(const lg_opts_t *o, const lg_pool_t *pool, lg_stats_t *st, om_err_t *err);
int lg_http_run(const lg_opts_t *o, const lg_pool_t *pool, lg_stats_t *st, om_err_t *err);
/* Runs the sink until SIGTERM/SIGINT or the duration; prints the counts as JSON. */
int lg_sink_run(const lg_opts_t *o, om_err_t *err);

extern const char *const lg_signal_paths[OM_SIG_COUNT]; /* "/v1/traces" ... */
extern const char *const lg_grpc_methods[OM_SIG_COUNT]; /* "/opentelemetry...Export" */
const char *lg_grpc_status_name(int code);
/* The four ops that answer a unary call: the headers, resp (the answer's message; the caller's
 * until the batch completes), the status, and the wait for the client's half-close, whose
 * outcome goes to *cancelled. */
void lg_grpc_answer_ops(grpc_op ops[4], grpc_byte_buffer *resp, grpc_status_code status,
                        int *cancelled);

#endif
