/* prw_encode_fuzz.c: OTLP metrics from the wire -> remote-write requests, held to protobuf-c.
 * The first byte picks the options (suffixes, target_info, resource_to_telemetry, metadata,
 * a namespace, external labels) and the request size limit; the rest is an
 * ExportMetricsServiceRequest. Whatever decodes must encode, and every request must
 * snappy-decompress and unpack with protobuf-c (generated from our prompb .proto,
 * independent of the hand-written encoder) into series whose labels are sorted, unique and
 * non-empty, with __name__, samples in time order, within the size limit (unless one series
 * is bigger), and as many series as the encoder counted.
 *
 * Differential: that reference result is the decoded batch translated from scratch (no
 * cache); the batch translated from its wire bytes (when the receiver kept them: no
 * duplicated singular message), and the decoded batch through an encoder whose cache lives
 * across inputs (twice: the second time every point shape is known), must give the very same
 * bytes and counts. The wire path may answer OM_ENOTSUP (bytes it leaves to the decoder). */
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

static bool same_result(const prw_result_t *a, const prw_result_t *b)
{
    if (a->n_bodies != b->n_bodies || a->series != b->series || a->samples != b->samples ||
        a->histograms != b->histograms || a->exemplars != b->exemplars ||
        a->dropped_delta != b->dropped_delta || a->merged_samples != b->merged_samples ||
        a->dropped_invalid != b->dropped_invalid || a->failed_metrics != b->failed_metrics ||
        strcmp(a->first_delta, b->first_delta) != 0 ||
        strcmp(a->first_invalid, b->first_invalid) != 0) {
        return false;
    }
    for (size_t i = 0; i < a->n_bodies; i++) {
        const prw_body_t *x = &a->bodies[i], *y = &b->bodies[i];
        if (x->len != y->len || x->raw_len != y->raw_len || x->series != y->series ||
            x->samples != y->samples || x->histograms != y->histograms ||
            x->exemplars != y->exemplars || memcmp(x->data, y->data, x->len) != 0) {
            return false;
        }
    }
    return true;
}

static prw_encoder_t *cached; /* lives across inputs (reachable: no leak report) */

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
    prw_result_t wire;
    int wire_rc = OM_ENOTSUP;
    bool had_wire = b->msg == NULL;
    om_label_t ext[] = {{"env", "fuzz"}, {"job", "never"}};
    prw_opts_t o = {.ns = (opt & 16) ? "ns" : NULL,
                    .suffixes = (opt & 1) != 0,
                    .target_info = (opt & 2) != 0,
                    .r2t = (opt & 4) != 0,
                    .send_metadata = (opt & 8) != 0,
                    .max_request_bytes = (opt & 32) ? 64 : 3000000,
                    .external = ext,
                    .n_external = (opt & 64) ? 2 : 0};
    if (had_wire) {
        wire_rc = prw_encode_wire(NULL, b, &o, &wire, &err);
    }
    if (om_batch_decode(b, &err) != 0) {
        if (wire_rc == 0) {
            prw_result_free(&wire);
        }
        om_batch_release(b);
        return 0;
    }
    prw_encoder_t *ref = prw_encoder_new();
    if (ref == NULL) {
        if (wire_rc == 0) {
            prw_result_free(&wire);
        }
        om_batch_release(b);
        return 0;
    }
    prw_encoder_set_cache(ref, false);
    prw_result_t res;
    int rc = prw_encode(ref, b, &o, &res, &err);
    prw_encoder_free(ref);
    if (wire_rc == 0) {
        if (rc == 0 && !same_result(&res, &wire)) {
            abort(); /* the wire path translated differently */
        }
        prw_result_free(&wire);
    } else if (wire_rc != OM_ENOTSUP && wire_rc != OM_ENOMEM) {
        abort();
    }
    if (cached == NULL) {
        cached = prw_encoder_new();
    }
    for (int round = 0; round < 2 && cached != NULL && rc == 0; round++) {
        prw_result_t again;
        if (prw_encode(cached, b, &o, &again, &err) == 0) {
            if (!same_result(&res, &again)) {
                abort(); /* the cache changed the translation */
            }
            prw_result_free(&again);
        }
    }
    if (rc == 0) {
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
