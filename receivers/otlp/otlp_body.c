/* otlp_body.c: capped buffers for OTLP/HTTP bodies, and the Content-Encoding names. Bodies
 * are decompressed whole by the core (om_decompress, bounded by the body cap). */
#include <limits.h>
#include <string.h>
#include <strings.h>

#include "otlp_body.h"

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
