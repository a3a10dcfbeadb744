/* otlp_inflate.c: capped buffers and bounded streaming decompression for OTLP/HTTP bodies.
 *
 * Output space is handed to zlib/zstd in slices of the capped buffer, so the decompressor can
 * never produce more than max + 1 bytes before we notice: one byte beyond max is enough to
 * know the body is too large without inflating the rest. */
#include <limits.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "otlp_inflate.h"

#define BUF_MIN_CAP 4096

int otlp_buf_reserve(otlp_buf_t *b, size_t extra, size_t max)
{
    if (extra > max || b->len > max - extra) {
        return OM_ETOOBIG;
    }
    size_t need = b->len + extra;
    if (need <= b->cap && b->data != NULL) {
        return 0;
    }
    size_t cap = b->cap < BUF_MIN_CAP ? BUF_MIN_CAP : b->cap;
    while (cap < need) {
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    }
    if (cap > max) {
        cap = max;
    }
    uint8_t *p = om_realloc(b->data, cap + 1); /* +1: the NUL after len */
    if (p == NULL) {
        return OM_ENOMEM;
    }
    b->data = p;
    b->cap = cap;
    b->data[b->len] = '\0';
    return 0;
}

int otlp_buf_append(otlp_buf_t *b, const void *data, size_t n, size_t max)
{
    int rc = otlp_buf_reserve(b, n, max);
    if (rc != 0) {
        return rc;
    }
    if (n > 0) {
        memcpy(b->data + b->len, data, n);
    }
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

void otlp_buf_free(otlp_buf_t *b)
{
    om_free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* ------------------------------------------------------------------------------------------ */

static const struct {
    const char *name;
    otlp_enc_t enc;
} encodings[] = {
    {"", OTLP_ENC_IDENTITY},   {"identity", OTLP_ENC_IDENTITY}, {"gzip", OTLP_ENC_GZIP},
    {"x-gzip", OTLP_ENC_GZIP}, {"deflate", OTLP_ENC_DEFLATE},   {"zlib", OTLP_ENC_DEFLATE},
    {"zstd", OTLP_ENC_ZSTD},
};

int otlp_enc_parse(const char *s, size_t n, otlp_enc_t *out)
{
    while (n > 0 && (s[0] == ' ' || s[0] == '\t')) {
        s++;
        n--;
    }
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t')) {
        n--;
    }
    for (size_t i = 0; i < sizeof encodings / sizeof encodings[0]; i++) {
        if (strlen(encodings[i].name) == n && strncasecmp(s, encodings[i].name, n) == 0) {
            *out = encodings[i].enc;
            return 0;
        }
    }
    return OM_ENOTSUP;
}

const char *otlp_enc_name(otlp_enc_t e)
{
    switch (e) {
    case OTLP_ENC_GZIP:
        return "gzip";
    case OTLP_ENC_DEFLATE:
        return "deflate";
    case OTLP_ENC_ZSTD:
        return "zstd";
    case OTLP_ENC_IDENTITY:
        break;
    }
    return "identity";
}

/* ------------------------------------------------------------------------------------------ */

struct otlp_inflate {
    otlp_enc_t enc;
    size_t max;
    bool fed;      /* some input arrived */
    bool complete; /* the last stream/frame ended and nothing of a next one was seen */
    bool failed;
    z_stream zs;
    ZSTD_DStream *zd;
};

/* A zstd frame names its window size (up to 2^27 bytes by default) and the decoder allocates it
 * before producing any output. Allow the larger of 8 MiB (zstd -19 uses that) and the body
 * cap, so legitimate bodies always decode while a frame cannot make us allocate much more
 * than a body we would accept. ZSTD_WINDOWLOG_LIMIT_DEFAULT (27) is behind
 * ZSTD_STATIC_LINKING_ONLY in zstd.h, hence our own constant. */
#define ZSTD_WINDOW_LOG_LIMIT 27

static int zstd_window_log(size_t max)
{
    int log = 23;
    while (log < ZSTD_WINDOW_LOG_LIMIT && ((size_t)1 << log) < max) {
        log++;
    }
    return log;
}

otlp_inflate_t *otlp_inflate_new(otlp_enc_t enc, size_t max)
{
    otlp_inflate_t *z = om_calloc(1, sizeof *z);
    if (z == NULL) {
        return NULL;
    }
    z->enc = enc;
    z->max = max;
    z->complete = true;
    if (enc == OTLP_ENC_ZSTD) {
        z->zd = ZSTD_createDStream();
        if (z->zd == NULL || ZSTD_isError(ZSTD_DCtx_setParameter(z->zd, ZSTD_d_windowLogMax,
                                                                 zstd_window_log(max)))) {
            otlp_inflate_free(z);
            return NULL;
        }
        return z;
    }
    /* 16 + 15: gzip wrapper, 32 KiB window; 15: zlib wrapper. */
    int wbits = enc == OTLP_ENC_GZIP ? 16 + MAX_WBITS : MAX_WBITS;
    if (inflateInit2(&z->zs, wbits) != Z_OK) {
        om_free(z);
        return NULL;
    }
    return z;
}

/* Give the decompressor a slice of out: at least 1 byte, up to 64 KiB, bounded by max + 1 so
 * that producing the byte after max is how we learn the output is too big. */
static int out_slice(otlp_buf_t *out, size_t max, uint8_t **p, size_t *n)
{
    size_t want = 64 * 1024;
    size_t room = max + 1 - out->len; /* out->len <= max always holds here */
    if (want > room) {
        want = room;
    }
    int rc = otlp_buf_reserve(out, want, max + 1);
    if (rc != 0) {
        return rc;
    }
    *p = out->data + out->len;
    *n = out->cap - out->len;
    if (*n > room) {
        *n = room;
    }
    return 0;
}

static int too_big(otlp_buf_t *out, size_t max, om_err_t *err)
{
    out->len = max; /* drop the extra byte; the caller discards the body anyway */
    out->data[out->len] = '\0';
    om_err_set(err, OM_ETOOBIG, "decompressed body larger than %zu bytes", max);
    return OM_ETOOBIG;
}

static int zlib_step(otlp_inflate_t *z, otlp_buf_t *out, om_err_t *err)
{
    uint8_t *p;
    size_t n;
    int rc = out_slice(out, z->max, &p, &n);
    if (rc != 0) {
        om_err_set(err, rc, "out of memory while decompressing");
        return rc;
    }
    z->zs.next_out = p;
    z->zs.avail_out = (uInt)(n > UINT_MAX ? UINT_MAX : n);
    uInt before = z->zs.avail_out;
    int zr = inflate(&z->zs, Z_NO_FLUSH);
    out->len += before - z->zs.avail_out;
    out->data[out->len] = '\0';
    if (out->len > z->max) {
        return too_big(out, z->max, err);
    }
    if (zr == Z_STREAM_END) {
        z->complete = true;
        return 1;
    }
    if (zr == Z_MEM_ERROR) {
        om_err_set(err, OM_ENOMEM, "out of memory while decompressing");
        return OM_ENOMEM;
    }
    if (zr != Z_OK && zr != Z_BUF_ERROR) {
        om_err_set(err, OM_EINVAL, "corrupt %s data", otlp_enc_name(z->enc));
        return OM_EINVAL;
    }
    return 0;
}

/* Loop bound: each step either consumes input, produces output (bounded by max + 1) or stops
 * because zlib can make no progress (Z_BUF_ERROR with output room left). */
static int zlib_feed(otlp_inflate_t *z, const uint8_t *in, size_t n, otlp_buf_t *out, om_err_t *err)
{
    z->zs.next_in = (Bytef *)(uintptr_t)in; /* zlib does not write input, the API predates const */
    z->zs.avail_in = (uInt)n;
    while (z->zs.avail_in > 0) {
        if (z->complete) {
            /* Data after a complete zlib stream is ignored (as Go's reader does); after a gzip
             * member it must be the next member (gzip allows concatenation). */
            if (z->enc != OTLP_ENC_GZIP) {
                return 0;
            }
            inflateReset(&z->zs);
            z->complete = false;
        }
        int rc = zlib_step(z, out, err);
        if (rc < 0) {
            return rc;
        }
        if (rc == 0 && z->zs.avail_out > 0 && z->zs.avail_in > 0) {
            /* No progress possible though there is room and input: zlib wants nothing more. */
            om_err_set(err, OM_EINVAL, "corrupt %s data", otlp_enc_name(z->enc));
            return OM_EINVAL;
        }
    }
    /* Input used up; zlib may still hold output if the slice filled up exactly. */
    while (!z->complete && z->zs.avail_out == 0) {
        int rc = zlib_step(z, out, err);
        if (rc < 0) {
            return rc;
        }
    }
    return 0;
}

static int zstd_feed(otlp_inflate_t *z, const uint8_t *in, size_t n, otlp_buf_t *out, om_err_t *err)
{
    ZSTD_inBuffer ib = {in, n, 0};
    for (;;) {
        uint8_t *p;
        size_t room;
        int rc = out_slice(out, z->max, &p, &room);
        if (rc != 0) {
            om_err_set(err, rc, "out of memory while decompressing");
            return rc;
        }
        ZSTD_outBuffer ob = {p, room, 0};
        size_t zr = ZSTD_decompressStream(z->zd, &ob, &ib);
        out->len += ob.pos;
        out->data[out->len] = '\0';
        if (ZSTD_isError(zr)) {
            if (ZSTD_getErrorCode(zr) == ZSTD_error_memory_allocation) {
                om_err_set(err, OM_ENOMEM, "out of memory while decompressing");
                return OM_ENOMEM;
            }
            om_err_set(err, OM_EINVAL, "corrupt zstd data: %s", ZSTD_getErrorName(zr));
            return OM_EINVAL;
        }
        if (out->len > z->max) {
            return too_big(out, z->max, err);
        }
        z->complete = zr == 0;
        /* Done when all input is consumed and the decoder did not fill the slice (a full
         * slice may mean more output is pending). */
        if (ib.pos == ib.size && ob.pos < ob.size) {
            return 0;
        }
    }
}

int otlp_inflate_feed(otlp_inflate_t *z, const uint8_t *in, size_t n, otlp_buf_t *out,
                      om_err_t *err)
{
    if (z->failed) {
        om_err_set(err, OM_EINVAL, "decompressor used after an error");
        return OM_EINVAL;
    }
    if (n == 0) {
        return 0;
    }
    if (!z->fed) {
        z->fed = true;
        z->complete = false;
    }
    int rc =
        z->enc == OTLP_ENC_ZSTD ? zstd_feed(z, in, n, out, err) : zlib_feed(z, in, n, out, err);
    z->failed = rc != 0;
    return rc;
}

int otlp_inflate_finish(otlp_inflate_t *z, om_err_t *err)
{
    if (z->failed || !z->complete) {
        om_err_set(err, OM_EINVAL, "truncated %s data", otlp_enc_name(z->enc));
        return OM_EINVAL;
    }
    return 0;
}

void otlp_inflate_free(otlp_inflate_t *z)
{
    if (z == NULL) {
        return;
    }
    if (z->zd != NULL) {
        ZSTD_freeDStream(z->zd);
    } else if (z->enc != OTLP_ENC_ZSTD) {
        inflateEnd(&z->zs);
    }
    om_free(z);
}
