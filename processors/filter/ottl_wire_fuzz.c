/* ottl_wire_fuzz.c: the filter's wire fast path against its decoded path (differential).
 * Input: one selector byte (bit 0: spans or log records), the condition, a NUL byte, then an
 * Export{Trace,Logs}ServiceRequest. When the request is accepted as wire bytes and the
 * condition can run on the wire, ottl_wire_diff compares every item's answer both ways (error
 * messages included) wherever the wire does not step aside (OM_ENOTSUP), then drops the items
 * found true both ways and compares the encoded results; a difference aborts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ottl_wire_diff.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2 || size > 65536) {
        return 0;
    }
    om_log_set_level(OM_LOG_NONE);
    bool logs = data[0] & 1;
    const uint8_t *nul = memchr(data + 1, '\0', size - 1);
    if (nul == NULL) {
        return 0;
    }
    ottl_expr_t *e = NULL;
    om_err_t err = {0};
    if (proc_filter_ottl_compile(logs ? OTTL_CTX_LOG : OTTL_CTX_SPAN, (const char *)data + 1, &e,
                                 &err) != 0) {
        return 0;
    }
    if (proc_filter_ottl_wire_ok(e)) {
        const uint8_t *req = nul + 1;
        const char *diff = ottl_wire_diff(logs ? OM_SIG_LOGS : OM_SIG_TRACES, e, req,
                                          size - (size_t)(req - data), NULL);
        if (diff != NULL) {
            fprintf(stderr, "condition \"%s\": %s\n", (const char *)data + 1, diff);
            abort();
        }
    }
    proc_filter_ottl_free(e);
    return 0;
}
