/* wire_fuzz.c: the wire scanner (src/wire.c) against protobuf-c itself. The first byte picks the
 * signal; the rest is an Export*ServiceRequest. The scanner must agree with
 * protobuf_c_message_unpack() on every input it does not leave to unpacking (needs_unpack):
 * what it accepts unpacks, counts the same and takes no more arena than it promised; what it
 * refuses (other than for depth) does not unpack; what unpacks, it accepts. And the scan with
 * its fast path for attributes gives what the general walk gives, on every input; so does
 * om_pb_next's inline path against om__pb_next_general, at every offset. */
#include <stdlib.h>

#include "om.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const ProtobufCMessageDescriptor *const descs[OM_SIG_COUNT] = {
    &opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor,
    &opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__descriptor,
    &opentelemetry__proto__collector__logs__v1__export_logs_service_request__descriptor,
};

/* The scanner's counts against the decoded structs (the core's counting code). */
static void check_counts(om_signal_t sig, ProtobufCMessage *msg, const om__wire_info_t *info)
{
    om_batch_t view = {.signal = sig, .msg = msg};
    om_batch_counts_t c;
    om_batch_counts(&view, &c);
    if (c.resources != info->resources || c.metrics != info->metrics || c.items != info->items) {
        abort();
    }
}

/* om_pb_next's inline short forms answer as om__pb_next_general, at every offset. */
static void check_pb_next(const uint8_t *data, size_t size)
{
    for (size_t at = 0; at <= size; at++) {
        const uint8_t *a = data + at, *b = data + at;
        om_pb_field_t fa = {0}, fb = {0};
        int ra = om_pb_next(&a, data + size, &fa), rb = om__pb_next_general(&b, data + size, &fb);
        if (ra != rb ||
            (ra == 1 && (a != b || fa.number != fb.number || fa.wire_type != fb.wire_type ||
                         fa.value != fb.value || fa.data != fb.data || fa.len != fb.len))) {
            abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_pb_next(data, size);
    if (size < 1) {
        return 0;
    }
    int idx = data[0] % OM_SIG_COUNT;
    om_signal_t sig = om_signal_from_index(idx);
    om__wire_info_t info;
    int rc = om__wire_scan(sig, data + 1, size - 1, &info);
    if (rc == OM_ENOTSUP) {
        abort(); /* the tables must always build */
    }
    /* The fast path for attributes answers as the general walk does. */
    om__wire_info_t general;
    if (om__wire_scan_general(sig, data + 1, size - 1, &general) != rc ||
        general.resources != info.resources || general.metrics != info.metrics ||
        general.items != info.items || general.decoded_bytes != info.decoded_bytes ||
        general.needs_unpack != info.needs_unpack || general.too_deep != info.too_deep) {
        abort();
    }
    if (info.too_deep) {
        return 0; /* refused before protobuf-c would have to recurse that deep */
    }
    om_arena_t *arena = om_arena_new(0);
    if (arena == NULL) {
        return 0;
    }
    ProtobufCMessage *msg =
        protobuf_c_message_unpack(descs[idx], om_arena_pb_allocator(arena), size - 1, data + 1);
    if (rc == 0 && !info.needs_unpack) {
        if (msg == NULL || om_arena_used(arena) > info.decoded_bytes) {
            abort();
        }
        check_counts(sig, msg, &info);
    } else if (rc != 0 && msg != NULL) {
        abort();
    }
    om_arena_unref(arena);
    return 0;
}
