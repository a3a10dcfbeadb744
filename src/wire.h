/* wire.h: checking and counting OTLP protobuf on the wire, without decoding it (wire.c).
 * Core-internal. */
#ifndef OM_WIRE_H
#define OM_WIRE_H

#include "om.h"

/* protobuf-c unpacks nested messages recursively, so a small request nesting AnyValues a few
 * thousand levels deep would overflow the loop thread's stack. Nesting deeper than this many
 * messages is refused: it allows AnyValues nested about 65 deep, as the JSON decoder does, and
 * stays below what the JSON encoder writes (128). */
#define OM__WIRE_MAX_DEPTH 140

/* What a scan found in a well-formed request. */
typedef struct om__wire_info {
    size_t resources; /* resource entries */
    size_t metrics;   /* metrics (metrics requests only) */
    size_t items;     /* spans, metric data points or log records */
    /* An upper bound of the bytes protobuf_c_message_unpack() would take from an arena. */
    size_t decoded_bytes;
    /* Well formed, but it gives a field twice where protobuf-c merges or replaces what came
     * first (a singular message, a oneof holding a message): only unpacking it tells how it
     * decodes and what it counts. Ordinary encoders never write this. */
    bool needs_unpack;
    bool too_deep; /* when refused: nested deeper than OM__WIRE_MAX_DEPTH */
} om__wire_info_t;

/* Checks that data is a request of the signal that protobuf_c_message_unpack() accepts,
 * nested at most OM__WIRE_MAX_DEPTH messages deep, and counts what it holds. Returns 0 (info
 * filled in), OM_EINVAL when it is malformed or too deep, or OM_ENOTSUP when the tables this
 * needs could not be built (the caller then unpacks instead). Any thread; no allocation. */
int om__wire_scan(om_signal_t sig, const uint8_t *data, size_t len, om__wire_info_t *info);
/* The same without the fast path for plain attributes: for the tests and the fuzz target,
 * which hold the two to the same answers. */
int om__wire_scan_general(om_signal_t sig, const uint8_t *data, size_t len, om__wire_info_t *info);

#endif
