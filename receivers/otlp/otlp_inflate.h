/* otlp_inflate.h: private to the otlp receiver folder.
 *
 * A growable byte buffer with a hard cap, and a streaming decompressor (gzip, zlib/deflate,
 * zstd) that writes into such a buffer and stops as soon as the output would pass the cap, so
 * a compression bomb costs at most cap bytes of memory and cap bytes of work.
 *
 * Threading: any thread, one object per thread at a time. Nothing here blocks. */
#ifndef RCV_OTLP_INFLATE_H
#define RCV_OTLP_INFLATE_H

#include "om.h"

/* Bytes with a cap. data is owned (om_malloc) and always has one spare byte after len that
 * holds a NUL, so text decoders may rely on termination. */
typedef struct otlp_buf {
    uint8_t *data;
    size_t len, cap; /* cap: usable bytes, not counting the NUL */
} otlp_buf_t;

/* Make room for at least `extra` more bytes, never for more than `max` in total. Returns 0,
 * OM_ETOOBIG when len + extra > max, OM_ENOMEM. Grows geometrically. */
int otlp_buf_reserve(otlp_buf_t *b, size_t extra, size_t max);
/* Append n bytes, keeping len <= max: 0, OM_ETOOBIG (nothing appended) or OM_ENOMEM. */
int otlp_buf_append(otlp_buf_t *b, const void *data, size_t n, size_t max);
void otlp_buf_free(otlp_buf_t *b);

typedef enum {
    OTLP_ENC_IDENTITY = 0,
    OTLP_ENC_GZIP,
    OTLP_ENC_DEFLATE, /* zlib format (RFC 1950), what HTTP calls deflate and otelcol zlib */
    OTLP_ENC_ZSTD,
} otlp_enc_t;

/* Parse a Content-Encoding value (case-insensitive, surrounding whitespace ignored; "" and
 * "identity" mean none). Returns 0 or OM_ENOTSUP for anything else, lists included. */
int otlp_enc_parse(const char *s, size_t n, otlp_enc_t *out);
const char *otlp_enc_name(otlp_enc_t e);

typedef struct otlp_inflate otlp_inflate_t;

/* A decompressor for enc (not IDENTITY) whose output may reach max bytes. NULL when out of
 * memory. */
otlp_inflate_t *otlp_inflate_new(otlp_enc_t enc, size_t max);
/* Decompress the next n input bytes, appending to out (len kept <= max). Returns 0,
 * OM_ETOOBIG when the output would pass max (decompression stops there), OM_EINVAL for
 * corrupt input, OM_ENOMEM. After an error the object only accepts otlp_inflate_free. */
int otlp_inflate_feed(otlp_inflate_t *z, const uint8_t *in, size_t n, otlp_buf_t *out,
                      om_err_t *err);
/* The input has ended: OM_EINVAL when the compressed stream is truncated, else 0. An empty
 * input (no byte fed) counts as an empty, complete stream. */
int otlp_inflate_finish(otlp_inflate_t *z, om_err_t *err);
void otlp_inflate_free(otlp_inflate_t *z);

#endif
