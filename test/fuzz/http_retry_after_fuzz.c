/* http_retry_after_fuzz.c: the core's Retry-After reader (om_http_retry_after_ms), which reads
 * what any server sends. The input is the header's value. Delay-seconds are checked against
 * strtoll: the reader must agree with it wherever the value is a plain number that fits. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "om.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char value[512];
    size_t n = size < sizeof value - 1 ? size : sizeof value - 1;
    memcpy(value, data, n);
    value[n] = '\0';
    int64_t ms = om_http_retry_after_ms(value, 1700000000);
    if (ms < -1 || ms > INT64_C(9999999999000)) {
        __builtin_trap();
    }
    size_t digits = strspn(value, "0123456789");
    if (digits > 0 && digits <= 10 && value[digits] == '\0' &&
        ms != strtoll(value, NULL, 10) * 1000) {
        __builtin_trap();
    }
    return 0;
}
