/* prw.h: private to the prometheusremotewrite exporter folder.
 *
 * The exporter is four parts:
 *   - prw_config.c: the config struct, its field table (otelcol-contrib's keys and defaults)
 *     and the cross-field rules;
 *   - prw_encode.c: an OTLP metrics batch (its wire bytes, or decoded) -> remote-write 1.0
 *     requests (protobuf written directly, split under max_batch_size_bytes, each
 *     snappy-compressed), through the core's translation (src/prom.c), with a cache of
 *     series kept across batches. Pure: it only reads the batch, so it runs on the host's
 *     worker pool;
 *   - prw_snappy.c: snappy's block format, our own compressor (libsnappy only checks it);
 *   - prw_exporter.c: the factory, the lifecycle, and each export attempt as POSTs on the
 *     core's HTTP client, with what a response means for the exporter helper.
 *
 * Threading: the loop thread, except prw_encode.c and prw_snappy.c (any thread). */
#ifndef EXP_PRW_H
#define EXP_PRW_H

#include "om.h"

/* ------------------------------------------------------------------------------------------ */
/* Config                                                                                     */

/* otelcol-contrib's remote_write_queue: mapped onto the exporter helper's queue (see
 * prw_config.c). */
typedef struct prw_queue_cfg {
    bool enabled;          /* true */
    int64_t queue_size;    /* 10000 batches */
    int64_t num_consumers; /* 5: requests of one batch sent at once */
} prw_queue_cfg_t;

typedef struct prw_enabled_cfg {
    bool enabled;
} prw_enabled_cfg_t;

typedef struct exp_prw_cfg {
    char *endpoint; /* required: http(s)://host:port/api/v1/write */
    char *namespace_;
    om_strmap_t external_labels;
    bool add_metric_suffixes;      /* true */
    bool send_metadata;            /* false */
    uint64_t max_batch_size_bytes; /* 3000000 */
    prw_enabled_cfg_t target_info; /* enabled: true */
    prw_enabled_cfg_t r2t;         /* resource_to_telemetry_conversion: false */
    prw_queue_cfg_t queue;
    om_http_client_cfg_t http; /* headers, tls, proxy_url, buffers, connection reuse */
    om_exphelper_cfg_t helper; /* timeout, retry_on_failure; sending_queue from queue */
} exp_prw_cfg_t;

extern const om_field_t exp_prw_fields[];
int exp_prw_config_validate(const void *cfg, om_err_t *err);

/* ------------------------------------------------------------------------------------------ */
/* Encoding                                                                                   */

/* What the encoder takes from the config, resolved once (external labels sanitised). */
typedef struct prw_opts {
    const char *ns;
    bool suffixes, target_info, r2t, send_metadata;
    size_t max_request_bytes;
    const om_label_t *external; /* sanitised names */
    size_t n_external;
} prw_opts_t;

/* One remote-write request: snappy-compressed WriteRequest bytes. */
typedef struct prw_body {
    uint8_t *data; /* om_malloc'd */
    size_t len;
    size_t raw_len; /* before compression */
    size_t series, samples, histograms, exemplars;
} prw_body_t;

/* What one batch came to. */
typedef struct prw_result {
    prw_body_t *bodies; /* om_malloc'd array; each data om_malloc'd */
    size_t n_bodies;
    size_t series, samples, histograms, exemplars;
    size_t dropped_delta;    /* points of delta metrics (remote-write has no delta) */
    size_t merged_samples;   /* samples at a timestamp their series already had in this batch:
                              * one is sent (the last given), as Prometheus refuses the rest */
    size_t dropped_invalid;  /* points of metrics that do not translate (type, name, scale) */
    size_t failed_metrics;   /* metrics (some or all of whose points) were dropped */
    char first_delta[128];   /* the name of the first delta metric dropped, for the log */
    char first_invalid[200]; /* why the first invalid metric was dropped */
} prw_result_t;

/* The buffers of encoding, kept from one batch to the next (so that a steady flow of batches
 * allocates, grows and faults in no memory). Used by one thread at a time. */
typedef struct prw_encoder prw_encoder_t;
prw_encoder_t *prw_encoder_new(void); /* NULL when out of memory */
void prw_encoder_free(prw_encoder_t *enc);
/* The encoder keeps the series it made, and which series each point shape (its resource's job
 * and instance, family name, attributes, histogram bounds) went to, from one batch to the next
 * (at most ~48 MiB; emptied when the options change), so that a series that comes back is not
 * translated again. on false: every batch is translated from scratch, as before the cache
 * (the reference the tests compare the cached path with: the same bytes). Default true. */
void prw_encoder_set_cache(prw_encoder_t *enc, bool on);

/* Translate the batch (read only) into requests, with enc's buffers (NULL: a temporary
 * encoder): from its structs when it is decoded (b->msg), else from its wire bytes. Returns 0
 * (result filled, possibly with no body when nothing translated), OM_ENOMEM, or OM_ENOTSUP
 * when the wire bytes hold something the wire path does not read (decode the batch and call
 * again). Any thread; touches nothing but b (read), enc and res. */
int prw_encode(prw_encoder_t *enc, const om_batch_t *b, const prw_opts_t *o, prw_result_t *res,
               om_err_t *err);
/* The same from the wire bytes only, whether or not b is decoded (never reads b->msg: the loop
 * may decode a shared batch meanwhile); OM_ENOTSUP also when b has no wire bytes. */
int prw_encode_wire(prw_encoder_t *enc, const om_batch_t *b, const prw_opts_t *o, prw_result_t *res,
                    om_err_t *err);
void prw_result_free(prw_result_t *res);

/* Snappy's block format from our own compressor (prw_snappy.c; libsnappy decompresses it).
 * table: PRW_SNAPPY_TABLE entries of scratch, the caller's (cleared by each call); out: room
 * for prw_snappy_max_len(n) bytes. Returns the compressed length. Any thread. */
#define PRW_SNAPPY_TABLE_BITS 14
#define PRW_SNAPPY_TABLE (1u << PRW_SNAPPY_TABLE_BITS)
size_t prw_snappy_max_len(size_t n);
size_t prw_snappy_compress(uint16_t *table, const uint8_t *in, size_t n, uint8_t *out);

/* Remote-write's staleness marker (Prometheus' value.StaleNaN). */
#define PRW_STALE_NAN_BITS UINT64_C(0x7ff0000000000002)

/* ------------------------------------------------------------------------------------------ */
/* The exporter                                                                               */

typedef struct prw_attempt prw_attempt_t;

typedef struct exp_prw {
    const exp_prw_cfg_t *cfg;
    const char *log_name;
    om_host_t *host;
    om_exphelper_t *helper;
    om_exphelper_cfg_t helper_cfg; /* cfg->helper with sending_queue from remote_write_queue */
    prw_opts_t opts;
    om_label_t *external; /* sanitised external labels; names and values owned */
    size_t n_external;
    om_http_client_t *client;            /* NULL before start; closed by shutdown */
    prw_attempt_t *attempts;             /* batches being exported (across retries) */
    prw_encoder_t *spare;                /* an encoder no job is using (NULL: make one) */
    size_t jobs;                         /* encode jobs on the worker pool (at most one) */
    prw_attempt_t *enc_queue, *enc_tail; /* batches waiting for the encoder, in order */
    uint64_t seq;                        /* batches given to the exporter so far */
    size_t held; /* batches encoded, waiting for an earlier one to finish (tests read it) */
    /* Series in the host's registry (otelcol-contrib's names). */
    om_metric_counter_t *m_failed_translations, *m_translated_series, *m_sent_batches;
    om_metric_counter_t *m_dropped_delta;
    om_metric_counter_t *m_merged_samples;
    /* Delta metrics are dropped with one warning per interval, not one per batch. */
    uint64_t delta_logged_ms;
    size_t delta_unlogged;
} exp_prw_t;

/* The exporter helper's send function (prw_exporter.c). */
void exp_prw_send(void *self, om_exp_req_t *req);

#endif
