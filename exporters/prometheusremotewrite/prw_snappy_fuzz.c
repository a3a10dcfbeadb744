/* prw_snappy_fuzz.c: our snappy compressor (prw_snappy.c) held to libsnappy's decompressor.
 * Any input must compress into at most prw_snappy_max_len bytes (the buffer is exactly that
 * long, so a write past it is an ASan report) that libsnappy finds valid and decompresses to
 * the input, byte for byte. The input is read from a buffer of its own size (a read past it is
 * a report too). The first byte, when there is one, picks how often the rest is repeated
 * (1 to 8 times, with a byte changed between copies), so that long copies and offsets near
 * 64 KiB are reached from small inputs. */
#include <stdlib.h>
#include <string.h>

#include <snappy-c.h>

#include "prw.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint16_t table[PRW_SNAPPY_TABLE];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t times = size > 0 ? (size_t)(data[0] & 7) + 1 : 1;
    const uint8_t *body = size > 0 ? data + 1 : data;
    size_t body_len = size > 0 ? size - 1 : 0;
    size_t n = body_len * times;
    uint8_t *in = malloc(n > 0 ? n : 1);
    if (in == NULL) {
        return 0;
    }
    for (size_t i = 0; i < times; i++) {
        memcpy(in + i * body_len, body, body_len);
        if (i > 0 && body_len > 0) {
            in[i * body_len + (i * 131) % body_len] ^= 0x5a;
        }
    }
    size_t cap = prw_snappy_max_len(n);
    uint8_t *out = malloc(cap);
    uint8_t *back = malloc(n > 0 ? n : 1);
    if (out == NULL || back == NULL) {
        abort();
    }
    size_t len = prw_snappy_compress(table, in, n, out);
    size_t back_len = 0;
    if (len > cap || snappy_validate_compressed_buffer((const char *)out, len) != SNAPPY_OK ||
        snappy_uncompressed_length((const char *)out, len, &back_len) != SNAPPY_OK ||
        back_len != n) {
        abort();
    }
    back_len = n;
    if (snappy_uncompress((const char *)out, len, (char *)back, &back_len) != SNAPPY_OK ||
        back_len != n || (n > 0 && memcmp(back, in, n) != 0)) {
        abort();
    }
    free(in);
    free(out);
    free(back);
    return 0;
}
