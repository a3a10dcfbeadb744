/* otlp_body.h: private to the otlp receiver folder.
 *
 * A growable byte buffer with a hard cap (an HTTP body as it arrives), and the
 * Content-Encoding values the receiver takes. Decompression is the core's om_decompress.
 *
 * Threading: any thread, one object per thread at a time. Nothing here blocks. */
#ifndef RCV_OTLP_BODY_H
#define RCV_OTLP_BODY_H

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

#endif
