/* otlphttp_response_fuzz.c: what a server answers the otlphttp exporter, through the same
 * functions the exporter runs: the partial_success of a 2xx response and the google.rpc.Status
 * message of an error response (protobuf or JSON). The Retry-After value is read by the core
 * (test/fuzz/http_retry_after_fuzz.c).
 *
 * Input: one selector byte (bits 0-1: signal, bits 2-3: content type), then the body. */
#include <stdint.h>
#include <string.h>

#include "otlphttp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > OTLPHTTP_RESP_MAX + 1) {
        return 0;
    }
    om_log_set_level(OM_LOG_NONE);
    om_signal_t sig = om_signal_from_index((data[0] & 3) % OM_SIG_COUNT);
    otlphttp_ctype_t ct = (otlphttp_ctype_t)(((data[0] >> 2) & 3) % 3);
    const uint8_t *body = data + 1;
    size_t len = size - 1;

    int64_t rejected = 0;
    char msg[256];
    int rc = exp_otlphttp_partial_success(sig, ct, body, len, &rejected, msg, sizeof msg);
    if (rc > 0 && strlen(msg) >= sizeof msg) {
        __builtin_trap();
    }
    exp_otlphttp_error_message(ct, body, len, msg, sizeof msg);
    if (strlen(msg) >= sizeof msg) {
        __builtin_trap();
    }
    return 0;
}
