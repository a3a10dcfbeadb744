/* otlp_proto_fuzz.c: OTLP protobuf decoding, and the editing API on what was decoded. The
 * first byte picks the signal (and, with its other bits, the cap and what is dropped); the
 * rest is an Export*ServiceRequest. A request that is taken in must also decode (it was
 * checked on arrival) to the counts it was taken in with, clone, re-encode to the same size,
 * and encode as JSON. Then a walk drops some items of one level from a shared reference: the
 * other holder must be unchanged, and the dropper's counts must be those of its encoding. */
#include <stdlib.h>
#include <string.h>

#include "om.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Drop every item whose ordinal has bit `mask` set, and tag the kept ones when editing. */
typedef struct dropper {
    unsigned mask;
    unsigned n;
    bool tag;
} dropper_t;

static int drop_some(om_item_t *it, void *arg)
{
    dropper_t *d = arg;
    if ((d->n++ & d->mask) != 0) {
        return OM_DROP;
    }
    if (d->tag) {
        int rc = om_attrs_set_int(&it->attrs, OM_ATTR_UPSERT, "fuzz", (int64_t)d->n);
        return rc < 0 && rc != OM_ETOOBIG && rc != OM_ENOMEM ? rc : OM_KEEP;
    }
    return OM_KEEP;
}

static size_t packed_size(const om_batch_t *b)
{
    return protobuf_c_message_get_packed_size(b->msg);
}

/* The encoded size of the resource entries: what a copy keeps (a request's own unknown
 * fields are not kept when requests are gathered into one). */
static size_t entries_size(const om_batch_t *b)
{
    size_t n = 0;
    if (b->signal == OM_SIG_TRACES) {
        for (size_t i = 0; i < b->traces->n_resource_spans; i++) {
            n += protobuf_c_message_get_packed_size(&b->traces->resource_spans[i]->base);
        }
    } else if (b->signal == OM_SIG_METRICS) {
        for (size_t i = 0; i < b->metrics->n_resource_metrics; i++) {
            n += protobuf_c_message_get_packed_size(&b->metrics->resource_metrics[i]->base);
        }
    } else {
        for (size_t i = 0; i < b->logs->n_resource_logs; i++) {
            n += protobuf_c_message_get_packed_size(&b->logs->resource_logs[i]->base);
        }
    }
    return n;
}

/* The counts b says it has are those of its encoding. */
static void check_counts(const om_batch_t *b)
{
    om_batch_counts_t c;
    om_batch_counts(b, &c);
    size_t len = om_batch_proto_size(b);
    uint8_t *buf = malloc(len > 0 ? len : 1);
    om_batch_t *back = NULL;
    if (buf == NULL) {
        return;
    }
    om_batch_proto_pack(b, buf);
    if (om_batch_decode_proto(b->signal, buf, len, 0, &back, NULL) == 0) {
        om_batch_counts_t bc;
        om_batch_counts(back, &bc);
        if (b->items != c.items || bc.items != c.items || bc.resources != c.resources ||
            bc.metrics != c.metrics) {
            abort();
        }
        om_batch_release(back);
    }
    free(buf);
}

/* A walk on a shared reference: the other holder's bytes stay as they were. */
static void fuzz_walk(om_batch_t *b, uint8_t sel)
{
    static const om_level_t levels[OM_SIG_COUNT][3] = {
        {OM_LEVEL_SPAN, OM_LEVEL_SPAN_EVENT, OM_LEVEL_SCOPE},
        {OM_LEVEL_METRIC, OM_LEVEL_DATAPOINT, OM_LEVEL_RESOURCE},
        {OM_LEVEL_LOG, OM_LEVEL_SCOPE, OM_LEVEL_RESOURCE},
    };
    /* sel % 3 chose the signal: the level and what is dropped come from the rest. */
    om_level_t level = levels[om_signal_index(b->signal)][(sel / 3) % 3];
    size_t before = packed_size(b);
    om_batch_t *mine = om_batch_ref(b);
    dropper_t d = {.mask = 1u << ((sel / 9) % 3)};
    if (om_batch_walk(&mine, level, drop_some, &d, NULL) >= 0) {
        check_counts(mine);
    }
    if (packed_size(b) != before) {
        abort(); /* the other holder saw the change */
    }
    /* Editing what is left: tag every kept item. */
    d = (dropper_t){.mask = 0, .tag = true};
    if (om_batch_edit(&mine, NULL) == 0 && om_batch_walk(&mine, level, drop_some, &d, NULL) >= 0) {
        check_counts(mine);
    }
    om_batch_release(mine);
    if (packed_size(b) != before) {
        abort();
    }
}

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
    /* A clone is the decoded request (its wire bytes are not kept). */
    om_batch_t *copy = om_batch_clone(b);
    if (copy != NULL) {
        if (entries_size(copy) != entries_size(b) || copy->items != b->items || copy->raw_valid) {
            abort();
        }
        om_batch_release(copy);
    }
    om_strbuf_t sb;
    om_strbuf_init(&sb, 64u << 20);
    om_otlp_json_encode(b, &sb);
    om_strbuf_free(&sb);
    fuzz_walk(b, data[0]);
    om_batch_release(b);
    return 0;
}
