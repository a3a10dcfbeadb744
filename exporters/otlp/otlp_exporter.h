/* otlp_exporter.h: private to the otlp exporter folder (OTLP over gRPC).
 *
 * otlp_config.c holds the config struct's field table and its validation, including how an
 * otelcol endpoint becomes a gRPC target; otlp_exporter.c holds the factory and the gRPC
 * client. Tests include this header for the accessors at the end. */
#ifndef EXP_OTLP_H
#define EXP_OTLP_H

#include "om.h"

/* The `compression` choices, in the order of the field table's list. Only the first three
 * are implemented; the others are otelcol values we name in a clear config error. */
typedef enum {
    EXP_OTLP_COMP_GZIP,
    EXP_OTLP_COMP_NONE,
    EXP_OTLP_COMP_EMPTY, /* "": no compression, as otelcol reads it */
    EXP_OTLP_COMP_SNAPPY,
    EXP_OTLP_COMP_ZSTD,
    EXP_OTLP_COMP_ZLIB,
    EXP_OTLP_COMP_DEFLATE,
    EXP_OTLP_COMP_LZ4,
} exp_otlp_comp_t;

typedef struct exp_otlp_keepalive_cfg {
    int64_t time;               /* 10s: ping after this long without activity (0: no pings) */
    int64_t timeout;            /* 10s: close the connection when a ping is not answered in time */
    bool permit_without_stream; /* false: ping only while calls are open */
} exp_otlp_keepalive_cfg_t;

typedef struct exp_otlp_cfg {
    char *endpoint;  /* required: host:port, dns:///host:port, http(s)://host:port, unix:... */
    int compression; /* exp_otlp_comp_t; gzip */
    /* level (otelcol's configgrpc has no such key, its gzip is always Go's default level;
     * confighttp's spelling and rules, so a config can tune gzip over both transports) */
    om_compression_params_t compression_params;
    om_strmap_t headers;     /* sent as metadata on every call (keys lowercased) */
    om_tls_client_cfg_t tls; /* the core's table; insecure: plaintext unless a CA is given */
    exp_otlp_keepalive_cfg_t keepalive;
    char *balancer_name;       /* "round_robin" (otelcol's default), "pick_first" or "" */
    char *authority;           /* overrides :authority; NULL: from the endpoint */
    char *user_agent;          /* NULL: "OtelMon/<version>" */
    bool wait_for_ready;       /* false: fail calls at once while the channel is down */
    om_auth_cfg_t auth;        /* a client authenticator's headers as metadata on every call */
    om_exphelper_cfg_t helper; /* timeout 5s, retry_on_failure, sending_queue */
} exp_otlp_cfg_t;

extern const om_field_t exp_otlp_fields[];

int exp_otlp_config_validate(const void *cfg, om_err_t *err);

/* What the endpoint means: the gRPC target (om_malloc'd, the caller frees it) and whether
 * the channel uses TLS. Fails with OM_ECONFIG and a message for an unusable endpoint. No
 * I/O. */
int exp_otlp_target(const exp_otlp_cfg_t *cfg, char **target, bool *tls, om_err_t *err);

/* For tests: the helper's queue length of an instance made by the factory (its counters are
 * in the host's metrics registry). Loop thread. */
size_t exp_otlp_queue_size(void *self);

#endif
