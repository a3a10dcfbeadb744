/* otlp_proto_fuzz.c: OTLP protobuf decoding. The first byte picks the signal; the rest is an
 * Export*ServiceRequest. A request that is taken in must also decode (it was checked on
 * arrival) to the counts it was taken in with, clone, re-encode to the same size, and encode
 * as JSON. */
#include <stdlib.h>

#include "om.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    om_log_set_level(OM_LOG_NONE);
    om_signal_t sig = om_signal_from_index(data[0] % OM_SIG_COUNT);
    om_batch_t *b = NULL;
    /* A small arena cap makes the "too big" path reachable too. */
    size_t cap = (data[0] & 0x80) ? 4096 : (16u << 20);
    if (om_batch_decode_proto(sig, data + 1, size - 1, cap, &b, NULL) != 0) {
        return 0;
    }
    om_batch_t *copy = om_batch_clone(b);
    if (copy != NULL) {
        if (om_batch_proto_size(copy) != om_batch_proto_size(b) || copy->items != b->items) {
            abort();
        }
        om_batch_release(copy);
    }
    om_batch_counts_t wire;
    om_batch_counts(b, &wire);
    om_err_t err = {0};
    if (om_batch_decode(b, &err) != 0) {
        if (err.code != OM_ENOMEM) {
            abort(); /* fuzz builds fail allocations at random; nothing else may fail */
        }
        om_batch_release(b);
        return 0;
    }
    om_batch_counts_t decoded;
    om_batch_counts(b, &decoded);
    if (wire.resources != decoded.resources || wire.metrics != decoded.metrics ||
        wire.items != decoded.items || b->items != decoded.items) {
        abort();
    }
    om_strbuf_t sb;
    om_strbuf_init(&sb, 64u << 20);
    om_otlp_json_encode(b, &sb);
    om_strbuf_free(&sb);
    om_batch_release(b);
    return 0;
}
