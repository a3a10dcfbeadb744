/* decompress_fuzz.c: the core's whole-buffer decompression (om_decompress, libdeflate) against
 * zlib's streaming inflate with the same rules. The first byte picks gzip or zlib and the cap
 * (up to 64 KiB, so that bombs hit it); the rest is the body. Both must agree on success and
 * bytes; where both refuse they must agree on "too big" against "corrupt" only when zlib got
 * that far: zlib stops at the first bad byte, libdeflate may look at a whole block first, so
 * a body that is both too big and corrupt may be called either. libdeflate also checks less
 * of a block's Huffman code description than zlib (its decompress_template.h: a run of code
 * lengths may overrun the table, which has room for it; up to 288/32 symbols are read where
 * zlib stops at 286/30) and skips a gzip header's CRC; the body's checksum and length are
 * still verified. So where zlib refused for one of those reasons (code_table_refusals) a body
 * may be taken or refused; every other refusal (bad header, bad checksum, distance too far
 * back, ...) must agree. Nothing may read or write out of bounds (the sanitizers) or hold more
 * than the cap (the NUL after the output is checked). */
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "om.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* zlib with the service's rules: gzip members back to back, nothing else after them; one zlib
 * stream, what follows ignored; at most max bytes of output. Returns 0, OM_ETOOBIG, OM_EINVAL;
 * *lenient is set when zlib refused for a reason libdeflate does not check. */
/* zlib's messages for a bad code description or gzip header CRC: see the top. */
static bool code_table_refusal(const char *msg)
{
    static const char *const lenient[] = {
        "too many length or distance symbols",
        "invalid code lengths set",
        "invalid bit length repeat",
        "invalid code -- missing end-of-block",
        "invalid literal/lengths set",
        "invalid distances set",
        "invalid literal/length code",
        "invalid distance code",
        "header crc mismatch",
    };
    for (size_t i = 0; msg != NULL && i < sizeof lenient / sizeof lenient[0]; i++) {
        if (strcmp(msg, lenient[i]) == 0) {
            return true;
        }
    }
    return false;
}

static int reference(bool gzip, const uint8_t *in, size_t n, size_t max, uint8_t *out, size_t *len,
                     bool *lenient)
{
    z_stream zs = {0};
    if (inflateInit2(&zs, gzip ? 16 + MAX_WBITS : MAX_WBITS) != Z_OK) {
        return OM_ENOMEM;
    }
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)n;
    zs.next_out = out;
    zs.avail_out = (uInt)(max + 1); /* one more: output past max is "too big" */
    int rc = 0;
    /* Loop bound: each round ends a member (consuming input) or returns. */
    for (;;) {
        int zr = inflate(&zs, Z_FINISH);
        /* inflateReset zeroes total_out: count from the output pointer. */
        if ((size_t)(zs.next_out - out) > max) {
            rc = OM_ETOOBIG;
            break;
        }
        if (zr != Z_STREAM_END) {
            rc = OM_EINVAL; /* corrupt or truncated (Z_BUF_ERROR with room left: truncated) */
            *lenient = code_table_refusal(zs.msg);
            break;
        }
        if (!gzip || zs.avail_in == 0) {
            break;
        }
        inflateReset(&zs);
    }
    *len = (size_t)(zs.next_out - out);
    inflateEnd(&zs);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    bool gzip = (data[0] & 1) == 0;
    size_t max = ((size_t)(data[0] >> 1) + 1) * 512; /* 512 B to 64 KiB */
    const uint8_t *in = data + 1;
    size_t n = size - 1;
    uint8_t *ref = malloc(max + 1);
    if (ref == NULL) {
        return 0;
    }
    size_t ref_len = 0;
    bool lenient = false;
    int want = n == 0 ? 0 : reference(gzip, in, n, max, ref, &ref_len, &lenient);
    uint8_t *out = NULL;
    size_t len = 0;
    om_err_t err = {0};
    int got = om_decompress(gzip ? OM_COMP_GZIP : OM_COMP_ZLIB, in, n, max, &out, &len, &err);
    if (got == OM_ENOMEM || want == OM_ENOMEM) {
        /* The fuzz build fails allocations at random: nothing to compare. */
    } else if (got == 0 && lenient) {
        if (len > max || out[len] != '\0') {
            abort();
        }
    } else if (got == 0 || want == 0) {
        if (got != want || len != ref_len || len > max || out[len] != '\0' ||
            !om_same(out, ref, len)) {
            abort();
        }
    } else if (got != OM_ETOOBIG && got != OM_EINVAL) {
        abort();
    }
    om_free(out);
    free(ref);
    return 0;
}
