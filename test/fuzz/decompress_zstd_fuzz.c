/* decompress_zstd_fuzz.c: the core's whole-buffer zstd decompression (om_decompress with
 * OM_COMP_ZSTD) against libzstd's streaming decoder with the rules the receiver had before
 * (window at most max(8 MiB, cap), output at most the cap). The first byte picks the cap (512
 * B to 128 KiB, so that bombs hit it); the rest is the body. Both must agree on success and
 * bytes. Where both refuse, "too big" and "corrupt" may differ: the whole-buffer path adds up
 * the frames' declared sizes and refuses a body that declares more than the cap before it
 * decodes anything, while the streaming decoder stops at the first bad byte. One leniency:
 * when every frame declares its size, the whole-buffer path decodes into a buffer of exactly
 * that size and does not look at the window the frame names (it needs none), so a frame the
 * streaming decoder refuses only for its window (frameParameter_windowTooLarge) may be taken;
 * its output is still bounded by the cap. Nothing may read or write out of bounds (the
 * sanitizers) or hold more than the cap (the NUL after the output is checked). */
#include <stdlib.h>
#include <string.h>

#include <zstd.h>
#include <zstd_errors.h>

#include "om.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The streaming reference. Returns 0, OM_ETOOBIG, OM_EINVAL, OM_ENOMEM; *window is set when
 * the decoder refused the frame's window only. */
static int reference(const uint8_t *in, size_t n, size_t max, uint8_t *out, size_t *len,
                     bool *window)
{
    ZSTD_DCtx *d = ZSTD_createDCtx();
    if (d == NULL) {
        return OM_ENOMEM;
    }
    int log = 23;
    while (log < 27 && ((size_t)1 << log) < max) {
        log++;
    }
    ZSTD_DCtx_setParameter(d, ZSTD_d_windowLogMax, log);
    ZSTD_inBuffer ib = {in, n, 0};
    ZSTD_outBuffer ob = {out, max + 1, 0}; /* one more: output past max is "too big" */
    size_t zr = 1;
    int rc = 0;
    /* Loop bound: each round consumes input or fills the output, which ends it. */
    for (;;) {
        zr = ZSTD_decompressStream(d, &ob, &ib);
        if (ZSTD_isError(zr)) {
            ZSTD_ErrorCode c = ZSTD_getErrorCode(zr);
            *window = c == ZSTD_error_frameParameter_windowTooLarge;
            rc = c == ZSTD_error_memory_allocation ? OM_ENOMEM : OM_EINVAL;
            break;
        }
        if (ob.pos > max) {
            rc = OM_ETOOBIG;
            break;
        }
        if (ib.pos == ib.size && ob.pos < ob.size) {
            break;
        }
    }
    if (rc == 0 && zr != 0) {
        rc = OM_EINVAL; /* truncated */
    }
    *len = ob.pos;
    ZSTD_freeDCtx(d);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    size_t max = ((size_t)data[0] + 1) * 512; /* 512 B to 128 KiB */
    const uint8_t *in = data + 1;
    size_t n = size - 1;
    uint8_t *ref = malloc(max + 1);
    if (ref == NULL) {
        return 0;
    }
    size_t ref_len = 0;
    bool window = false;
    int want = n == 0 ? 0 : reference(in, n, max, ref, &ref_len, &window);
    uint8_t *out = NULL;
    size_t len = 0;
    om_err_t err = {0};
    int got = om_decompress(OM_COMP_ZSTD, in, n, max, &out, &len, &err);
    if (got == OM_ENOMEM || want == OM_ENOMEM) {
        /* The fuzz build fails allocations at random: nothing to compare. */
    } else if (got == 0 && want != 0) {
        if (!window || len > max || out[len] != '\0') {
            abort();
        }
    } else if (got == 0 || want == 0) {
        if (got != want || len != ref_len || len > max || out[len] != '\0' ||
            !om_same(out, ref, len)) {
            abort();
        }
    } else if ((got != OM_ETOOBIG && got != OM_EINVAL) || err.msg[0] == '\0') {
        abort();
    }
    om_free(out);
    free(ref);
    return 0;
}
