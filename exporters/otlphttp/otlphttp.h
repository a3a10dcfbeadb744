/* otlphttp.h: private to the otlphttp exporter folder.
 *
 * The exporter is four parts:
 *   - otlphttp_config.c: the config struct's field table (the core's HTTP client settings plus
 *     otlphttp's own keys), validation and the per-signal URLs;
 *   - otlphttp_codec.c: request bodies (protobuf or JSON, compressed) and what the server
 *     answers (partial success, google.rpc.Status); pure functions, fuzzed;
 *   - otlphttp_send.c: one export attempt as one request on the core's HTTP client, and the
 *     mapping from its result to the exporter helper's retry decisions;
 *   - otlphttp_factory.c: the om_factory_t and the lifecycle.
 *
 * Threading: the loop thread, except the codec (any thread: the exporter encodes bodies on
 * the host's worker pool). */
#ifndef EXP_OTLPHTTP_H
#define EXP_OTLPHTTP_H

#include "om.h"

/* ------------------------------------------------------------------------------------------ */
/* Config                                                                                     */

typedef enum {
    OTLPHTTP_ENC_PROTO = 0,
    OTLPHTTP_ENC_JSON,
} otlphttp_encoding_t;

/* Indexes into the compression field's choices. */
typedef enum {
    OTLPHTTP_COMP_GZIP = 0,
    OTLPHTTP_COMP_NONE,
    OTLPHTTP_COMP_EMPTY, /* "": none, as in otelcol */
    OTLPHTTP_COMP_ZSTD,
    OTLPHTTP_COMP_ZLIB,
    OTLPHTTP_COMP_DEFLATE,
} otlphttp_comp_t;

typedef struct exp_otlphttp_cfg {
    char *endpoint; /* base URL; /v1/<signal> is appended */
    char *traces_endpoint, *metrics_endpoint, *logs_endpoint; /* used as given */
    int encoding;                                             /* otlphttp_encoding_t */
    int compression;                                          /* otlphttp_comp_t */
    om_compression_params_t compression_params;               /* level, checked as otelcol's */
    /* headers, proxy_url, tls, buffer sizes, connection reuse; max_conns_per_host 0 means
     * sending_queue::num_consumers here. */
    om_http_client_cfg_t http;
    om_exphelper_cfg_t helper; /* timeout, retry_on_failure, sending_queue */
} exp_otlphttp_cfg_t;

extern const om_field_t exp_otlphttp_fields[];
int exp_otlphttp_config_validate(const void *cfg, om_err_t *err);

/* The URL for one signal: the signal's own endpoint if set, else endpoint + "/v1/<signal>"
 * (one slash whatever endpoint ends with). Returns an om_malloc'd string (the caller frees),
 * NULL with OM_ECONFIG in err when neither is set, or NULL with OM_ENOMEM. */
char *exp_otlphttp_signal_url(const exp_otlphttp_cfg_t *cfg, om_signal_t sig, om_err_t *err);

/* ------------------------------------------------------------------------------------------ */
/* Codec                                                                                      */

/* The most response body bytes kept (the rest is read and discarded), as otelcol. */
#define OTLPHTTP_RESP_MAX OM_HTTP_RESP_KEEP

/* Encode the batch as the request body and compress it with z (the core's compressor for the
 * configured algorithm and level; NULL: no compression). On success *out is an om_malloc'd
 * buffer of *len bytes that the caller frees. Returns 0, OM_ENOMEM, or OM_EINVAL / OM_ETOOBIG
 * (with a message in err) when the batch cannot be encoded. Any thread that owns z: it only
 * reads the batch (the exporter runs it on the host's worker pool). Like the rest of this
 * section, it touches no shared state. */
int exp_otlphttp_encode_body(const om_batch_t *b, otlphttp_encoding_t enc, om_compressor_t *z,
                             uint8_t **out, size_t *len, om_err_t *err);
/* The Content-Encoding value for comp, or NULL for none. */
const char *exp_otlphttp_comp_name(otlphttp_comp_t comp);
/* The core's algorithm for comp (OM_COMP_NONE for none). */
om_comp_t exp_otlphttp_comp_alg(otlphttp_comp_t comp);

/* Media types of a Content-Type value (parameters, case and spaces ignored). */
typedef enum {
    OTLPHTTP_CT_OTHER = 0,
    OTLPHTTP_CT_PROTO,
    OTLPHTTP_CT_JSON,
} otlphttp_ctype_t;
otlphttp_ctype_t exp_otlphttp_ctype(const char *content_type);

/* The partial_success of an Export*ServiceResponse of signal sig in body (proto or JSON per
 * ctype; other types are not read). Returns 1 and fills *rejected and msg (NUL-terminated,
 * truncated to cap) when the server reported rejections or a message, 0 when it did not,
 * OM_EINVAL when the body cannot be decoded. */
int exp_otlphttp_partial_success(om_signal_t sig, otlphttp_ctype_t ctype, const uint8_t *body,
                                 size_t len, int64_t *rejected, char *msg, size_t cap);

/* A short human message for an error response: google.rpc.Status's message (proto or JSON,
 * whatever ctype says, protobuf tried when it says neither), else an escaped prefix of the
 * body (at most 64 bytes), else "". Always NUL-terminates msg (cap > 0). */
void exp_otlphttp_error_message(otlphttp_ctype_t ctype, const uint8_t *body, size_t len, char *msg,
                                size_t cap);

/* ------------------------------------------------------------------------------------------ */
/* The exporter instance                                                                      */

typedef struct exp_otlphttp {
    const exp_otlphttp_cfg_t *cfg;
    const char *log_name;
    om_host_t *host;
    om_signal_t signals;
    om_exphelper_t *helper;
    char *url[OM_SIG_COUNT]; /* per signal, built at create; owned */
    /* Content-Type and Content-Encoding (when compressed): the same for every request. */
    om_http_header_t headers[2];
    size_t n_headers;
    om_http_client_t *client;      /* NULL before start; closed by shutdown */
    om_compressors_t *compressors; /* idle compressors; NULL when not compressing */
} exp_otlphttp_t;

/* The exporter helper's send function (otlphttp_send.c). */
void exp_otlphttp_send(void *self, om_exp_req_t *req);

#endif
