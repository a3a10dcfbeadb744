/* spanmetrics_config.c: the spanmetrics connector's settings, with otelcol-contrib's keys,
 * defaults and rules (connector/spanmetricsconnector/config.go and factory.go). */
#include <string.h>

#include "spanmetrics.h"

#define CFG(m) offsetof(conn_spanmetrics_cfg_t, m)

static const char *const temporalities[] = {"AGGREGATION_TEMPORALITY_CUMULATIVE",
                                            "AGGREGATION_TEMPORALITY_DELTA", NULL};
static const char *const units[] = {"ms", "s", NULL};

static const om_field_t dim_fields[] = {
    {.key = "name",
     .type = OM_F_STRING,
     .offset = offsetof(spm_dim_cfg_t, name),
     .flags = OM_FF_REQUIRED,
     .help = "the span attribute (or else resource attribute) to use"},
    {.key = "default",
     .type = OM_F_STRING,
     .offset = offsetof(spm_dim_cfg_t, def),
     .help = "the value when the attribute is absent; none: no such dimension then"},
    {.key = NULL},
};

#define DIM_LIST(k, m, h)                                                                          \
    {                                                                                              \
        .key = (k), .type = OM_F_SECLIST, .offset = CFG(m), .fields = dim_fields,                  \
        .elem_size = sizeof(spm_dim_cfg_t), .help = (h)                                            \
    }

static const om_field_t explicit_fields[] = {
    {.key = "buckets",
     .type = OM_F_STRLIST,
     .offset = 0,
     .help = "the buckets' upper bounds, as durations (default 2ms ... 15s)"},
    {.key = NULL},
};

static const om_field_t exponential_fields[] = {
    {.key = "max_size",
     .type = OM_F_INT,
     .offset = 0,
     .def = "160",
     .min = 0,
     .max = 16384,
     .help = "buckets per histogram at most (0: 160)"},
    {.key = NULL},
};

static const om_field_t histogram_fields[] = {
    {.key = "disable",
     .type = OM_F_BOOL,
     .offset = offsetof(conn_spanmetrics_cfg_t, histogram.disable) - CFG(histogram),
     .def = "false",
     .help = "no duration histogram"},
    {.key = "unit",
     .type = OM_F_ENUM,
     .offset = offsetof(conn_spanmetrics_cfg_t, histogram.unit) - CFG(histogram),
     .def = "ms",
     .choices = units,
     .help = "ms or s"},
    {.key = "explicit",
     .type = OM_F_SECTION,
     .offset = offsetof(conn_spanmetrics_cfg_t, histogram.explicit_) - CFG(histogram),
     .fields = explicit_fields,
     .flags = OM_FF_PRESENCE,
     .present_offset =
         offsetof(conn_spanmetrics_cfg_t, histogram.explicit_present) - CFG(histogram),
     .help = "a histogram with explicit buckets (the default)"},
    {.key = "exponential",
     .type = OM_F_SECTION,
     .offset = offsetof(conn_spanmetrics_cfg_t, histogram.exponential) - CFG(histogram),
     .fields = exponential_fields,
     .flags = OM_FF_PRESENCE,
     .present_offset =
         offsetof(conn_spanmetrics_cfg_t, histogram.exponential_present) - CFG(histogram),
     .help = "an exponential histogram instead"},
    {.key = "dimensions",
     .type = OM_F_SECLIST,
     .offset = offsetof(conn_spanmetrics_cfg_t, histogram.dimensions) - CFG(histogram),
     .fields = dim_fields,
     .elem_size = sizeof(spm_dim_cfg_t),
     .help = "dimensions of the duration metric only"},
    {.key = NULL},
};

static const om_field_t exemplars_fields[] = {
    {.key = "enabled",
     .type = OM_F_BOOL,
     .offset = offsetof(conn_spanmetrics_cfg_t, exemplars.enabled) - CFG(exemplars),
     .def = "false",
     .help = "attach spans (trace and span ids, duration) to data points as exemplars"},
    {.key = "max_per_data_point",
     .type = OM_F_INT,
     .offset = offsetof(conn_spanmetrics_cfg_t, exemplars.max_per_data_point) - CFG(exemplars),
     .def = "5",
     .min = 0,
     .max = 1000,
     .help = "exemplars per data point and flush at most"},
    {.key = NULL},
};

static const om_field_t events_fields[] = {
    {.key = "enabled",
     .type = OM_F_BOOL,
     .offset = offsetof(conn_spanmetrics_cfg_t, events.enabled) - CFG(events),
     .def = "false",
     .help = "the events metric (not implemented: must stay false)"},
    {.key = "dimensions",
     .type = OM_F_SECLIST,
     .offset = offsetof(conn_spanmetrics_cfg_t, events.dimensions) - CFG(events),
     .fields = dim_fields,
     .elem_size = sizeof(spm_dim_cfg_t),
     .help = "dimensions of the events metric"},
    {.key = NULL},
};

const om_field_t conn_spanmetrics_fields[] = {
    DIM_LIST("dimensions", dimensions, "dimensions added to the four defaults"),
    DIM_LIST("calls_dimensions", calls_dimensions, "dimensions of the calls metric only"),
    {.key = "exclude_dimensions",
     .type = OM_F_STRLIST,
     .offset = CFG(exclude_dimensions),
     .help = "default dimensions left out (service.name, span.name, span.kind, status.code)"},
    {.key = "resource_metrics_cache_size",
     .type = OM_F_INT,
     .offset = CFG(resource_metrics_cache_size),
     .def = "1000",
     .min = 1,
     .max = 1e9,
     .help = "resources kept at most; the least recently seen is dropped first"},
    {.key = "resource_metrics_key_attributes",
     .type = OM_F_STRLIST,
     .offset = CFG(resource_metrics_key_attributes),
     .help = "resource attributes that tell resources apart (default: all)"},
    {.key = "aggregation_temporality",
     .type = OM_F_ENUM,
     .offset = CFG(aggregation_temporality),
     .def = "AGGREGATION_TEMPORALITY_CUMULATIVE",
     .choices = temporalities,
     .help = "AGGREGATION_TEMPORALITY_CUMULATIVE or AGGREGATION_TEMPORALITY_DELTA"},
    {.key = "histogram",
     .type = OM_F_SECTION,
     .offset = CFG(histogram),
     .fields = histogram_fields,
     .help = "the duration histogram"},
    {.key = "metrics_flush_interval",
     .type = OM_F_DURATION,
     .offset = CFG(metrics_flush_interval),
     .def = "60s",
     .help = "how often the metrics are sent"},
    {.key = "metrics_expiration",
     .type = OM_F_DURATION,
     .offset = CFG(metrics_expiration),
     .def = "0s",
     .help = "series with no span for this long are dropped (0: never)"},
    {.key = "metric_timestamp_cache_size",
     .type = OM_F_INT,
     .offset = CFG(metric_timestamp_cache_size),
     .def = "1000",
     .min = -1e9,
     .max = 1e9,
     .help = "delta: idle series whose last time is remembered"},
    {.key = "namespace",
     .type = OM_F_STRING,
     .offset = CFG(namespace_),
     .def = "traces.span.metrics",
     .help = "prefix of the metric names (\"\": none)"},
    {.key = "exemplars",
     .type = OM_F_SECTION,
     .offset = CFG(exemplars),
     .fields = exemplars_fields,
     .help = "exemplars"},
    {.key = "events",
     .type = OM_F_SECTION,
     .offset = CFG(events),
     .fields = events_fields,
     .help = "the events metric"},
    {.key = "include_instrumentation_scope",
     .type = OM_F_STRLIST,
     .offset = CFG(include_instrumentation_scope),
     .help = "scopes whose name and version become dimensions"},
    {.key = "aggregation_cardinality_limit",
     .type = OM_F_INT,
     .offset = CFG(aggregation_cardinality_limit),
     .def = "0",
     .min = -1e18,
     .max = 1e18,
     .help = "series per metric and resource; beyond, spans count in the overflow series"},
    /* Deprecated in otelcol for aggregation_cardinality_limit; it bounded a cache of keys
     * that otelmon does not have. */
    {.key = "dimensions_cache_size", .type = OM_F_IGNORED},
    {.key = "enable_metrics_sampling_method",
     .type = OM_F_REFUSED,
     .help = "counting spans by their sampling probability is not implemented"},
    {.key = NULL},
};

/* otelcol: the names must differ from the defaults and from each other. */
static int check_dims(const om_seclist_t *l, const char *at, om_err_t *err)
{
    static const char *const reserved[] = {"service.name", "span.kind", "status.code", "span.name"};
    const spm_dim_cfg_t *d = l->items;
    for (size_t i = 0; i < l->n; i++) {
        bool dup = false;
        for (size_t k = 0; k < 4; k++) {
            dup = dup || strcmp(d[i].name, reserved[k]) == 0;
        }
        for (size_t j = 0; j < i; j++) {
            dup = dup || strcmp(d[i].name, d[j].name) == 0;
        }
        if (dup) {
            om_err_at(err, at, "failed validating dimensions: duplicate dimension name %s",
                      d[i].name);
            return OM_ECONFIG;
        }
    }
    return 0;
}

static int check_buckets(const conn_spanmetrics_cfg_t *c, om_err_t *err)
{
    int64_t prev = -1;
    for (size_t i = 0; i < c->histogram.explicit_.buckets.n; i++) {
        int64_t ns;
        om_err_t e = {0};
        if (om_parse_duration(c->histogram.explicit_.buckets.items[i], &ns, &e) != 0) {
            om_err_at(err, "histogram::explicit::buckets", "%s", e.msg);
            return OM_ECONFIG;
        }
        if (ns <= prev) {
            om_err_at(err, "histogram::explicit::buckets", "must be increasing (\"%.32s\")",
                      c->histogram.explicit_.buckets.items[i]);
            return OM_ECONFIG;
        }
        prev = ns;
    }
    return 0;
}

int conn_spanmetrics_cfg_validate(const void *vcfg, om_err_t *err)
{
    const conn_spanmetrics_cfg_t *c = vcfg;
    if (check_dims(&c->dimensions, "dimensions", err) != 0 || check_buckets(c, err) != 0) {
        return OM_ECONFIG;
    }
    if (c->histogram.explicit_present && c->histogram.exponential_present) {
        om_err_at(err, "histogram", "use either `explicit` or `exponential` buckets histogram");
        return OM_ECONFIG;
    }
    if (c->metrics_flush_interval <= 0) {
        /* otelcol refuses negative ones; a ticker of 0 would panic there. */
        om_err_at(err, "metrics_flush_interval",
                  "invalid metrics_flush_interval: %llds, the duration should be positive",
                  (long long)(c->metrics_flush_interval / OM_NS_PER_S));
        return OM_ECONFIG;
    }
    if (c->aggregation_temporality == SPM_DELTA && c->metric_timestamp_cache_size <= 0) {
        om_err_at(err, "metric_timestamp_cache_size",
                  "invalid delta timestamp cache size: %lld, the maximum number of the items in "
                  "the cache should be positive",
                  (long long)c->metric_timestamp_cache_size);
        return OM_ECONFIG;
    }
    if (c->aggregation_cardinality_limit < 0) {
        om_err_at(err, "aggregation_cardinality_limit",
                  "invalid aggregation_cardinality_limit: %lld, the limit should be positive",
                  (long long)c->aggregation_cardinality_limit);
        return OM_ECONFIG;
    }
    if (c->events.enabled) {
        om_err_at(err, "events::enabled", "the events metric is not implemented by otelmon");
        return OM_ECONFIG;
    }
    size_t dims = c->dimensions.n + c->calls_dimensions.n + c->histogram.dimensions.n;
    if (dims > SPM_MAX_DIMS) {
        om_err_at(err, "dimensions", "at most %d dimensions in all", SPM_MAX_DIMS);
        return OM_ECONFIG;
    }
    return 0;
}

/* otelcol's defaultHistogramBucketsMs. */
static const double default_bounds_ms[] = {2,   4,   6,    8,    10,   50,   100,   200,
                                           400, 800, 1000, 1400, 2000, 5000, 10000, 15000};

double *conn_spanmetrics_bounds(const conn_spanmetrics_cfg_t *cfg, size_t *n)
{
    double div = cfg->histogram.unit == SPM_UNIT_S ? 1e9 : 1e6;
    const om_strlist_t *b = &cfg->histogram.explicit_.buckets;
    size_t count = b->n > 0 ? b->n : sizeof default_bounds_ms / sizeof default_bounds_ms[0];
    double *out = om_malloc(count * sizeof *out);
    if (out == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < count; i++) {
        int64_t ns = 0;
        if (b->n > 0) {
            om_parse_duration(b->items[i], &ns, NULL); /* checked by validate */
            out[i] = (double)ns / div;
        } else {
            out[i] = default_bounds_ms[i] * 1e6 / div;
        }
    }
    *n = count;
    return out;
}
