/* ottl_wire_diff.h: the filter's wire evaluator held to its decoded one, for the tests that
 * do so (ottl_wire_test.c on generated requests, the ottl_wire fuzz target on any bytes).
 * Test code: not linked into otelmon. */
#ifndef OTTL_WIRE_DIFF_H
#define OTTL_WIRE_DIFF_H

#include "filter.h"

/* What the comparisons saw, summed over calls. */
typedef struct ottl_wire_diff_stats {
    size_t requests;      /* requests compared */
    size_t not_wire_only; /* requests that arrive decoded (nothing to compare) */
    size_t items;         /* items evaluated both ways */
    size_t on_wire;       /* of those, answered on the wire (compared) */
    size_t stepped_aside; /* of those, OM_ENOTSUP on the wire (the decoded answer is used) */
    size_t dropped;       /* items dropped, when the drops were compared */
} ottl_wire_diff_stats_t;

/* Evaluates e (span or log record context) on every item of the Export{Trace,Logs}
 * ServiceRequest req both ways: from its bytes (proc_filter_ottl_eval_wire over
 * om_batch_wire_walk) and decoded (proc_filter_ottl_eval over om_batch_walk), on fresh
 * batches of the bytes; the answers must be the same, error messages included, wherever the
 * wire does not step aside. Then, unless it stepped aside for some item, the items found true
 * are dropped both ways and the two results must encode to the same bytes. Returns NULL when
 * all holds (or the request is no request, or arrives decoded), else what differs (a static
 * buffer). st: may be NULL. */
const char *ottl_wire_diff(om_signal_t sig, const ottl_expr_t *e, const uint8_t *req, size_t len,
                           ottl_wire_diff_stats_t *st);

#endif
