/* spanmetrics_fuzz.c: the spanmetrics connector's wire path (spanmetrics_wire.c) against its
 * struct path (protobuf-c's decoding, then conn_spanmetrics_add). The first byte picks one of a few
 * configs (dimensions shared or per metric, scopes, exemplars, exponential histograms, a
 * cardinality limit); the rest is an ExportTraceServiceRequest. Whatever the bytes, the wire
 * path must not crash; when the core accepts them as a request (as every batch it holds was *
 * accepted), both paths must count them without error and build byte-for-byte the same metrics; and
 * so must the request counted in two batches (two partial results merged one after the other), as
 * merging is counting span by span. */
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "spanmetrics.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW UINT64_C(1700000000000000000)

static const char *const configs[] = {
    "c: {}\n",
    "c:\n"
    "  dimensions: [{name: http.method, default: GET}, {name: a}, {name: region}]\n"
    "  exclude_dimensions: [status.code]\n"
    "  include_instrumentation_scope: [lib, '']\n"
    "  exemplars: {enabled: true, max_per_data_point: 3}\n"
    "  resource_metrics_key_attributes: [service.name, region]\n",
    "c:\n"
    "  calls_dimensions: [{name: a}]\n"
    "  histogram: {dimensions: [{name: b, default: x}], exponential: {max_size: 4}}\n"
    "  aggregation_cardinality_limit: 3\n"
    "  aggregation_temporality: AGGREGATION_TEMPORALITY_DELTA\n",
    "c:\n"
    "  dimensions: [{name: a}]\n"
    "  histogram: {disable: true}\n"
    "  resource_metrics_cache_size: 2\n",
};
#define N_CONFIGS (sizeof configs / sizeof configs[0])

static conn_spanmetrics_cfg_t cfgs[N_CONFIGS];

static void load_configs(void)
{
    static bool loaded;
    if (loaded) {
        return;
    }
    loaded = true;
    for (size_t i = 0; i < N_CONFIGS; i++) {
        om_config_t *y = NULL;
        om_diags_t d = {0};
        om_err_t err = {0};
        if (om_config_load_string("f.yaml", configs[i], strlen(configs[i]), &y, &d) != 0 ||
            om_fields_apply(conn_spanmetrics_fields, &cfgs[i], om_node_get(y->root, "c"), "c",
                            &d) != 0 ||
            conn_spanmetrics_cfg_validate(&cfgs[i], &err) != 0) {
            abort();
        }
        om_diags_free(&d);
        om_config_free(y); /* the config struct keeps copies */
    }
}

/* The packed metrics request the aggregate builds (NULL, 0 when empty). */
static uint8_t *built(spm_t *a, size_t *len)
{
    om_batch_t *b = NULL;
    *len = 0;
    if (conn_spanmetrics_build(a, NOW + 1, true, &b) != 0) {
        abort(); /* no allocation fails here */
    }
    if (b == NULL) {
        return NULL;
    }
    *len = om_batch_proto_size(b);
    uint8_t *out = malloc(*len ? *len : 1);
    if (out == NULL) {
        abort();
    }
    om_batch_proto_pack(b, out);
    om_batch_release(b);
    return out;
}

static void compare(spm_t *w, spm_t *s)
{
    size_t wl, sl;
    uint8_t *wb = built(w, &wl), *sb = built(s, &sl);
    if (wl != sl || (wl > 0 && memcmp(wb, sb, wl) != 0) || w->n_series != s->n_series) {
        abort();
    }
    free(wb);
    free(sb);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    load_configs();
    const conn_spanmetrics_cfg_t *cfg = &cfgs[data[0] % N_CONFIGS];
    data++;
    size--;
    om_batch_t *b = NULL;
    om_err_t err = {0};
    bool valid = om_batch_decode_proto(OM_SIG_TRACES, data, size, 0, &b, &err) == 0 &&
                 om_batch_decode(b, &err) == 0;
    spm_t w, s, h;
    if (conn_spanmetrics_init(&w, cfg, "w") != 0 || conn_spanmetrics_init(&s, cfg, "s") != 0 ||
        conn_spanmetrics_init(&h, cfg, "h") != 0) {
        abort();
    }
    /* Unchecked bytes reach the wire path's protobuf-c fallback only when small: a request
     * the core accepted is at most OM__WIRE_MAX_DEPTH deep, an unchecked one is not. */
    int wrc = valid || size < 4096 ? conn_spanmetrics_add_wire(&w, data, size, NOW) : 0;
    if (valid) {
        if (wrc != 0 || conn_spanmetrics_add(&s, b->traces, NOW) != 0) {
            abort();
        }
        compare(&w, &s);
        /* The same resource entries in two batches. */
        om_traces_req_t first = *b->traces, second = *b->traces;
        first.n_resource_spans /= 2;
        if (second.resource_spans != NULL) { /* NULL when there are none: no arithmetic */
            second.resource_spans += first.n_resource_spans;
        }
        second.n_resource_spans -= first.n_resource_spans;
        if (conn_spanmetrics_add(&h, &first, NOW) != 0 ||
            conn_spanmetrics_add(&h, &second, NOW) != 0) {
            abort();
        }
        compare(&h, &s);
        /* And what the flush then does to them. */
        conn_spanmetrics_after_flush(&w, NOW + 1);
        conn_spanmetrics_after_flush(&s, NOW + 1);
        conn_spanmetrics_after_flush(&h, NOW + 1);
        compare(&w, &s);
        compare(&h, &s);
    }
    om_batch_release(b);
    conn_spanmetrics_free(&w);
    conn_spanmetrics_free(&s);
    conn_spanmetrics_free(&h);
    return 0;
}
