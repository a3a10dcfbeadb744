/* strbuf.c: a growable, bounded string buffer. */
#include <stdio.h>
#include <string.h>

#include "om.h"

void om_strbuf_init(om_strbuf_t *sb, size_t max)
{
    memset(sb, 0, sizeof *sb);
    sb->max = max;
}

void om_strbuf_free(om_strbuf_t *sb)
{
    om_free(sb->data);
    sb->data = NULL;
    sb->len = sb->cap = 0;
    sb->failed = false;
}

void om_strbuf_reset(om_strbuf_t *sb)
{
    sb->len = 0;
    sb->failed = false;
    if (sb->data != NULL) {
        sb->data[0] = '\0';
    }
}

bool om_strbuf_reserve(om_strbuf_t *sb, size_t extra)
{
    if (sb->failed) {
        return false;
    }
    /* +1 keeps room for the terminating NUL. */
    if (extra > SIZE_MAX / 2 - sb->len || (sb->max != 0 && sb->len + extra > sb->max)) {
        sb->failed = true;
        return false;
    }
    size_t need = sb->len + extra + 1;
    if (need <= sb->cap) {
        return true;
    }
    size_t cap = sb->cap ? sb->cap : 256;
    while (cap < need) {
        cap *= 2;
    }
    char *nd = om_realloc(sb->data, cap);
    if (nd == NULL) {
        sb->failed = true;
        return false;
    }
    sb->data = nd;
    sb->cap = cap;
    return true;
}

/* Room for n more bytes and the NUL without growing: the common case, checked first so that
 * the many short appends of the encoders cost no call to om_strbuf_reserve. */
static inline bool has_room(const om_strbuf_t *sb, size_t n)
{
    return !sb->failed && n < sb->cap - sb->len && (sb->max == 0 || sb->len + n <= sb->max);
}

void om_strbuf_append(om_strbuf_t *sb, const void *data, size_t n)
{
    if (!has_room(sb, n) && !om_strbuf_reserve(sb, n)) {
        return;
    }
    if (n > 0) {
        memcpy(sb->data + sb->len, data, n);
    }
    sb->len += n;
    sb->data[sb->len] = '\0';
}

void om_strbuf_puts(om_strbuf_t *sb, const char *s)
{
    om_strbuf_append(sb, s, strlen(s));
}

void om_strbuf_putc(om_strbuf_t *sb, char c)
{
    if (!has_room(sb, 1) && !om_strbuf_reserve(sb, 1)) {
        return;
    }
    sb->data[sb->len++] = c;
    sb->data[sb->len] = '\0';
}

void om_strbuf_vprintf(om_strbuf_t *sb, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    char small[256];
    int n = vsnprintf(small, sizeof small, fmt, ap2);
    va_end(ap2);
    if (n < 0) {
        sb->failed = true;
        return;
    }
    if ((size_t)n < sizeof small) {
        om_strbuf_append(sb, small, (size_t)n);
        return;
    }
    if (!om_strbuf_reserve(sb, (size_t)n)) {
        return;
    }
    vsnprintf(sb->data + sb->len, (size_t)n + 1, fmt, ap);
    sb->len += (size_t)n;
}

void om_strbuf_printf(om_strbuf_t *sb, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    om_strbuf_vprintf(sb, fmt, ap);
    va_end(ap);
}

char *om_strbuf_steal(om_strbuf_t *sb, size_t *len)
{
    char *d = sb->data != NULL ? sb->data : om_calloc(1, 1);
    if (len != NULL) {
        *len = sb->len;
    }
    sb->data = NULL;
    sb->len = sb->cap = 0;
    sb->failed = false;
    return d;
}
