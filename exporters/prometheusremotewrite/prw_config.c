/* prw_config.c: the prometheusremotewrite exporter's settings, named and defaulted as
 * otelcol-contrib's exporter/prometheusremotewriteexporter (config.go, factory.go), and the
 * cross-field rules.
 *
 * How remote_write_queue maps onto the core's exporter helper: otelcol hands its helper a
 * queue of remote_write_queue::queue_size batches with exactly one consumer (factory.go:
 * "Prometheus remote write samples needs to be in chronological order for each timeseries"),
 * and uses num_consumers for the requests one batch is split into, which are sent at once
 * (exporter.go export()). We keep that order: the helper's sending_queue is {enabled,
 * queue_size, num_consumers: 2}, but a batch's requests wait until every earlier batch is
 * finished (prw_exporter.c: the second consumer only lets the next batch be encoded while one
 * is sent), and an attempt sends up to num_consumers of its requests concurrently. So batches
 * go out in order, and each series' samples too (a series is in one request of a batch).
 * `sending_queue` itself is not a key of this exporter, as upstream. */
#include <string.h>
#include <strings.h>

#include "prw.h"

/* factory.go's retry defaults, which differ from the helper's (50ms first backoff). */
static const om_field_t retry_fields[] = {
    OM_RETRY_FIELD_LIST("50ms"),
    {.key = NULL},
};

static const om_field_t queue_fields[] = {
    {.key = "enabled",
     .type = OM_F_BOOL,
     .offset = offsetof(prw_queue_cfg_t, enabled),
     .def = "true",
     .help = "false: a batch is refused while the previous one is being sent"},
    {.key = "queue_size",
     .type = OM_F_INT,
     .offset = offsetof(prw_queue_cfg_t, queue_size),
     .def = "10000",
     .min = 0,
     .max = 1e7,
     .help = "batches waiting to be sent"},
    {.key = "num_consumers",
     .type = OM_F_INT,
     .offset = offsetof(prw_queue_cfg_t, num_consumers),
     .def = "5",
     .min = 0,
     .max = 10000,
     .help = "requests of one batch sent at once"},
    {.key = NULL},
};

static const om_field_t enabled_true[] = {
    {.key = "enabled",
     .type = OM_F_BOOL,
     .offset = offsetof(prw_enabled_cfg_t, enabled),
     .def = "true"},
    {.key = NULL},
};

static const om_field_t enabled_false[] = {
    {.key = "enabled",
     .type = OM_F_BOOL,
     .offset = offsetof(prw_enabled_cfg_t, enabled),
     .def = "false"},
    {.key = NULL},
};

#define OFF(m) offsetof(exp_prw_cfg_t, m)
const om_field_t exp_prw_fields[] = {
    {.key = "endpoint",
     .type = OM_F_STRING,
     .offset = OFF(endpoint),
     .flags = OM_FF_REQUIRED,
     .help = "remote-write URL, e.g. http://prometheus:9090/api/v1/write"},
    {.key = "namespace",
     .type = OM_F_STRING,
     .offset = OFF(namespace_),
     .help = "prefix of every metric name"},
    {.key = "external_labels",
     .type = OM_F_STRMAP,
     .offset = OFF(external_labels),
     .help = "labels added to every series (the data's own labels win)"},
    {.key = "add_metric_suffixes",
     .type = OM_F_BOOL,
     .offset = OFF(add_metric_suffixes),
     .def = "true",
     .help = "unit and type suffixes (_seconds, _total...)"},
    {.key = "send_metadata",
     .type = OM_F_BOOL,
     .offset = OFF(send_metadata),
     .def = "false",
     .help = "send each family's type, help and unit"},
    {.key = "max_batch_size_bytes",
     .type = OM_F_SIZE,
     .offset = OFF(max_batch_size_bytes),
     .def = "3000000",
     .min = 1,
     .max = 1e9,
     .help = "largest request before compression; a batch is split into several"},
    {.key = "target_info",
     .type = OM_F_SECTION,
     .offset = OFF(target_info),
     .fields = enabled_true,
     .help = "a target_info series per resource, with its other attributes"},
    {.key = "resource_to_telemetry_conversion",
     .type = OM_F_SECTION,
     .offset = OFF(r2t),
     .fields = enabled_false,
     .help = "resource attributes as labels on every series"},
    {.key = "remote_write_queue",
     .type = OM_F_SECTION,
     .offset = OFF(queue),
     .fields = queue_fields,
     .help = "the sending queue (see the README for how it maps onto the helper)"},
    /* otelcol's default timeout (exporterhelper's 5s). */
    {.key = "timeout",
     .type = OM_F_DURATION,
     .offset = OFF(helper.timeout),
     .def = "5s",
     .min = 0,
     .max = 9.2e18,
     .help = "time limit of one request"},
    {.key = "retry_on_failure",
     .type = OM_F_SECTION,
     .offset = OFF(helper.retry_on_failure),
     .fields = retry_fields,
     .help = "retries of 5xx, 429 and connection failures with exponential backoff"},
    OM_HTTP_CLIENT_FIELDS(exp_prw_cfg_t, http, "512KiB"),
    {.key = "wal",
     .type = OM_F_REFUSED,
     .help = "the write-ahead log (wal) is not implemented; data is held in memory only"},
    {.key = "export_created_metric", .type = OM_F_IGNORED},
    {.key = "compression", .type = OM_F_IGNORED}, /* always snappy, as remote-write 1.0 */
    {.key = "protobuf_message", .type = OM_F_IGNORED},
    {.key = NULL},
};

/* The headers remote-write itself sets (a config may not change the protocol). */
static const char *const reserved_headers[] = {"Content-Encoding", "Content-Type",
                                               "X-Prometheus-Remote-Write-Version", NULL};

int exp_prw_config_validate(const void *vcfg, om_err_t *err)
{
    const exp_prw_cfg_t *c = vcfg;
    int rc = om_http_check_url("endpoint", c->endpoint != NULL ? c->endpoint : "", err);
    if (rc != 0) {
        return rc;
    }
    if (c->queue.enabled && c->queue.queue_size == 0) {
        om_err_at(err, "remote_write_queue::queue_size", "a 0 size queue will drop all the data");
        return OM_ECONFIG;
    }
    for (size_t i = 0; i < c->external_labels.n; i++) {
        const char *k = c->external_labels.keys[i], *v = c->external_labels.values[i];
        char at[160];
        snprintf(at, sizeof at, "external_labels::%s", k);
        if (k[0] == '\0' || v == NULL || v[0] == '\0') {
            om_err_at(err, at, "external labels configuration contains an empty key or value");
            return OM_ECONFIG;
        }
    }
    for (size_t i = 0; i < c->http.headers.n; i++) {
        for (const char *const *r = reserved_headers; *r != NULL; r++) {
            if (strcasecmp(c->http.headers.keys[i], *r) == 0) {
                char at[160];
                snprintf(at, sizeof at, "headers::%s", c->http.headers.keys[i]);
                om_err_at(err, at, "%s is set by remote-write itself and cannot be configured", *r);
                return OM_ECONFIG;
            }
        }
    }
    rc = om_http_client_cfg_validate(&c->http, err);
    return rc ? rc : om_exphelper_cfg_validate(&c->helper, err);
}
