/* telemetry.h: the collector's own metrics endpoint, service::telemetry::metrics and
 * service::telemetry::resource (core-internal; see telemetry.c). */
#ifndef OM_TELEMETRY_H
#define OM_TELEMETRY_H

#include "om.h"

/* One label otelcol puts on every series of its own metrics (from service::telemetry::resource,
 * a key sanitised into a label name). */
typedef struct om_telemetry_label {
    char *name;  /* owned */
    char *value; /* owned */
} om_telemetry_label_t;

typedef struct om_telemetry_cfg {
    om_metric_level_t level;        /* normal */
    char *host;                     /* owned; "localhost" */
    int port;                       /* 8888 */
    bool without_units;             /* the pull reader's without_units: no unit words in names */
    om_telemetry_label_t *resource; /* owned array: service_name, service_instance_id, ... */
    size_t n_resource;
} om_telemetry_cfg_t;

/* Fill cfg from the service::telemetry node (NULL: the defaults): its `metrics` and `resource`
 * keys; the caller applies the others. Problems go to d with their position; returns how many.
 * cfg is always fully set (defaults where a value was bad) and must be freed. */
int om__telemetry_cfg_apply(om_telemetry_cfg_t *cfg, const om_node_t *telemetry, om_diags_t *d);
void om__telemetry_cfg_free(om_telemetry_cfg_t *cfg);

/* The exposition of every series of m that cfg's level serves, with cfg's resource labels, in
 * Prometheus text format 0.0.4, appended to out. Loop thread. Returns 0 or OM_ENOMEM. */
int om__telemetry_render(om_metrics_t *m, const om_telemetry_cfg_t *cfg, om_strbuf_t *out);

typedef struct om_telemetry om_telemetry_t;
/* Loop thread. Register the process metrics and serve GET /metrics on cfg's address (nothing
 * at level none: *out is then NULL). cfg outlives the endpoint. Returns 0, or OM_ENOMEM /
 * OM_EIO (the address cannot be bound: otelcol does not start then either) with err set. */
int om__telemetry_start(om_host_t *host, const om_telemetry_cfg_t *cfg, om_telemetry_t **out,
                        om_err_t *err);
/* Close the endpoint, then call done once. NULL: done at once. */
void om__telemetry_shutdown(om_telemetry_t *t, om_done_fn done, void *arg);
/* After done (or when start failed), before the registry goes. NULL does nothing. */
void om__telemetry_free(om_telemetry_t *t);

#endif
