/* prw_encode_fuzz.c: OTLP metrics from the wire -> remote-write requests, held to protobuf-c.
 * The first byte picks the options (suffixes, target_info, resource_to_telemetry, metadata,
 * a namespace, external labels) and the request size limit; the rest is an
 * ExportMetricsServiceRequest. Whatever decodes must encode, and every request must
 * snappy-decompress and unpack with protobuf-c (generated from our prompb .proto,
 * independent of the hand-written encoder) into series whose labels are sorted, unique and
 * non-empty, with __name__, samples in time order, within the size limit (unless one series
 * is bigger), and as many series as the encoder counted. */
#include <stdlib.h>
#include <string.h>

#include <snappy-c.h>

#include "prompb/remote.pb-c.h"
#include "prw.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_series(const Prometheus__TimeSeries *ts)
{
    bool name = false;
    for (size_t i = 0; i < ts->n_labels; i++) {
        const Prometheus__Label *l = ts->labels[i];
        if (l->name[0] == '\0' || l->value[0] == '\0') {
            abort();
        }
        if (i > 0 && strcmp(ts->labels[i - 1]->name, l->name) >= 0) {
            abort();
        }
        name = name || strcmp(l->name, "__name__") == 0;
    }
    if (!name) {
        abort();
    }
    for (size_t i = 1; i < ts->n_samples; i++) {
        if (ts->samples[i - 1]->timestamp >= ts->samples[i]->timestamp) {
            abort();
        }
    }
}

static size_t check_body(const prw_body_t *b, size_t max)
{
    size_t raw_len;
    if (snappy_uncompressed_length((const char *)b->data, b->len, &raw_len) != SNAPPY_OK ||
        raw_len != b->raw_len) {
        abort();
    }
    char *raw = malloc(raw_len + 1);
    if (raw == NULL) {
        return b->series;
    }
    if (snappy_uncompress((const char *)b->data, b->len, raw, &raw_len) != SNAPPY_OK) {
        abort();
    }
    Prometheus__WriteRequest *w =
        prometheus__write_request__unpack(NULL, raw_len, (const uint8_t *)raw);
    free(raw);
    if (w == NULL) {
        return b->series; /* protobuf-c could not allocate (fuzz builds fail allocations) */
    }
    if (w->n_timeseries != b->series || (raw_len > max && w->n_timeseries > 1)) {
        abort();
    }
    for (size_t i = 0; i < w->n_timeseries; i++) {
        check_series(w->timeseries[i]);
    }
    size_t n = w->n_timeseries;
    prometheus__write_request__free_unpacked(w, NULL);
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    uint8_t opt = data[0];
    om_batch_t *b = NULL;
    om_err_t err = {0};
    if (om_batch_decode_proto(OM_SIG_METRICS, data + 1, size - 1, 1 << 24, &b, &err) != 0) {
        return 0;
    }
    if (om_batch_decode(b, &err) != 0) {
        om_batch_release(b);
        return 0;
    }
    om_label_t ext[] = {{"env", "fuzz"}, {"job", "never"}};
    prw_opts_t o = {.ns = (opt & 16) ? "ns" : NULL,
                    .suffixes = (opt & 1) != 0,
                    .target_info = (opt & 2) != 0,
                    .r2t = (opt & 4) != 0,
                    .send_metadata = (opt & 8) != 0,
                    .max_request_bytes = (opt & 32) ? 64 : 3000000,
                    .external = ext,
                    .n_external = (opt & 64) ? 2 : 0};
    prw_result_t res;
    if (prw_encode(NULL, b, &o, &res, &err) == 0) {
        size_t series = 0;
        for (size_t i = 0; i < res.n_bodies; i++) {
            series += check_body(&res.bodies[i], o.max_request_bytes);
        }
        if (series != res.series) {
            abort();
        }
        prw_result_free(&res);
    }
    om_batch_release(b);
    return 0;
}
