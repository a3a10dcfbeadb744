/* otlphttp.h: private to the otlphttp exporter folder.
 *
 * The exporter is four parts:
 *   - otlphttp_config.c: the config struct's field table, validation and the per-signal URLs;
 *   - otlphttp_codec.c: request bodies (protobuf or JSON, compressed) and what the server
 *     answers (partial success, google.rpc.Status, Retry-After); pure functions, fuzzed;
 *   - otlphttp_multi.c: libcurl's multi interface driven by the libuv loop (uv_poll_t per
 *     socket, one uv_timer_t), so transfers never block the loop;
 *   - otlphttp_factory.c: the om_factory_t, the send function the exporter helper calls, and
 *     the mapping from HTTP results to retry decisions.
 *
 * Threading: the loop thread, except the codec (any thread: the exporter encodes bodies on
 * libuv's threadpool); libcurl's threaded resolver runs its own threads, which never touch our
 * state. */
#ifndef EXP_OTLPHTTP_H
#define EXP_OTLPHTTP_H

#include "otlphttp_curl.h"

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

/* Indexes into the TLS version choices: "", "1.0", "1.1", "1.2", "1.3". */
typedef enum {
    OTLPHTTP_TLS_DEFAULT = 0,
    OTLPHTTP_TLS_1_0,
    OTLPHTTP_TLS_1_1,
    OTLPHTTP_TLS_1_2,
    OTLPHTTP_TLS_1_3,
} otlphttp_tlsver_t;

typedef struct otlphttp_tls_cfg {
    bool insecure; /* accepted; for HTTP the URL scheme decides, as in otelcol */
    bool insecure_skip_verify;
    bool include_system_ca_certs_pool;
    char *ca_file, *ca_pem;
    char *cert_file, *cert_pem;
    char *key_file, *key_pem;
    char *server_name_override;
    int min_version, max_version; /* otlphttp_tlsver_t */
} otlphttp_tls_cfg_t;

typedef struct exp_otlphttp_cfg {
    char *endpoint; /* base URL; /v1/<signal> is appended */
    char *traces_endpoint, *metrics_endpoint, *logs_endpoint; /* used as given */
    int encoding;                                             /* otlphttp_encoding_t */
    int compression;                                          /* otlphttp_comp_t */
    om_strmap_t headers;
    char *proxy_url;
    otlphttp_tls_cfg_t tls;
    uint64_t read_buffer_size, write_buffer_size;
    int64_t max_idle_conns;     /* curl's connection cache size (0: curl's default) */
    int64_t max_conns_per_host; /* 0: sending_queue::num_consumers */
    int64_t idle_conn_timeout;  /* ns; connections idle longer are not reused */
    bool disable_keep_alives;
    om_exphelper_cfg_t helper; /* timeout, retry_on_failure, sending_queue */
} exp_otlphttp_cfg_t;

extern const om_field_t exp_otlphttp_fields[];
int exp_otlphttp_config_validate(const void *cfg, om_err_t *err);

/* The URL for one signal: the signal's own endpoint if set, else endpoint + "/v1/<signal>"
 * (one slash whatever endpoint ends with). Returns an om_malloc'd string (the caller frees),
 * NULL with OM_ECONFIG in err when neither is set, or NULL with OM_ENOMEM. */
char *exp_otlphttp_signal_url(const exp_otlphttp_cfg_t *cfg, om_signal_t sig, om_err_t *err);

/* 0 when s is an absolute http:// or https:// URL with a host; else OM_ECONFIG with a message
 * naming key in err. */
int exp_otlphttp_check_url(const char *key, const char *s, om_err_t *err);

/* ------------------------------------------------------------------------------------------ */
/* Codec                                                                                      */

/* The most response body bytes kept (the rest is read and discarded), as otelcol. */
#define OTLPHTTP_RESP_MAX ((size_t)64 * 1024)

/* Encode the batch as the request body and compress it as configured. On success *out is an
 * om_malloc'd buffer of *len bytes that the caller frees. Returns 0, OM_ENOMEM, or OM_EINVAL
 * (with a message in err) when the batch cannot be encoded. Any thread: it only reads the
 * batch (the exporter runs it on libuv's threadpool). Like the rest of this section, it
 * touches no shared state. */
int exp_otlphttp_encode_body(const om_batch_t *b, otlphttp_encoding_t enc, otlphttp_comp_t comp,
                             uint8_t **out, size_t *len, om_err_t *err);
/* The Content-Encoding value for comp, or NULL for none. */
const char *exp_otlphttp_comp_name(otlphttp_comp_t comp);

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

/* A Retry-After value (delay-seconds or an HTTP-date) in milliseconds from now_s (Unix
 * seconds): >= 0, or -1 when absent or unparseable. A date in the past gives 0. */
int64_t exp_otlphttp_retry_after_ms(const char *value, int64_t now_s);

/* ------------------------------------------------------------------------------------------ */
/* libcurl multi on the libuv loop                                                            */

typedef struct exp_otlphttp_multi exp_otlphttp_multi_t;

/* Called once per finished transfer, after the easy handle has left the multi handle (the
 * callee owns it again). result is CURLE_OK when an HTTP response was received, whatever its
 * status. The callback may add new transfers. */
typedef void (*exp_otlphttp_xfer_fn)(void *arg, CURL *easy, CURLcode result);

/* A multi handle whose sockets and timer live on loop. max_host_conns and max_conns go to
 * CURLMOPT_MAX_HOST_CONNECTIONS and CURLMOPT_MAXCONNECTS (0: curl's default). Returns 0,
 * OM_ENOMEM or OM_EIO with a message in err. */
int exp_otlphttp_multi_new(uv_loop_t *loop, long max_host_conns, long max_conns,
                           exp_otlphttp_xfer_fn on_done, void *arg, exp_otlphttp_multi_t **out,
                           om_err_t *err);
/* Start a transfer. 0, or OM_EIO when curl refuses the handle (then on_done is not called and
 * the caller still owns easy). */
int exp_otlphttp_multi_add(exp_otlphttp_multi_t *m, CURL *easy, om_err_t *err);
/* Close: only when no transfer is running. Closes every uv handle and the multi handle, frees
 * m, then calls done once. Safe to call from inside on_done (the close then happens when the
 * callback returns to the multi's loop). */
void exp_otlphttp_multi_close(exp_otlphttp_multi_t *m, om_done_fn done, void *arg);
/* Tests: sockets currently watched. */
size_t exp_otlphttp_multi_sockets(const exp_otlphttp_multi_t *m);

/* ------------------------------------------------------------------------------------------ */
/* The exporter instance                                                                      */

typedef struct exp_otlphttp {
    const exp_otlphttp_cfg_t *cfg;
    const char *log_name;
    om_host_t *host;
    om_signal_t signals;
    om_exphelper_t *helper;
    /* Per signal, built at create (urls) and start (the rest); all owned. */
    char *url[OM_SIG_COUNT]; /* the URL requested (host replaced by server_name_override) */
    struct curl_slist *headers[OM_SIG_COUNT];
    struct curl_slist *connect_to[OM_SIG_COUNT]; /* server_name_override only */
    CURL *tmpl;                  /* the options every request shares; duplicated per request */
    exp_otlphttp_multi_t *multi; /* NULL before start and after close */
    size_t in_flight;            /* transfers in the multi handle */
    bool curl_global, shutting_down;
    om_done_fn done;
    void *done_arg;
} exp_otlphttp_t;

/* The exporter helper's send function (otlphttp_send.c). */
void exp_otlphttp_send(void *self, om_exp_req_t *req);
/* The multi handle's done callback (otlphttp_send.c): maps the result to om_exp_req_done. */
void exp_otlphttp_xfer_done(void *self, CURL *easy, CURLcode result);

#endif
