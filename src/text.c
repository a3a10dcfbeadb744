/* text.c: UTF-8 validation and HTML escaping, for every place that writes text a client or a
 * person reads (HTML pages, mail, JSON messages, error strings quoted as Go quotes them). */
#include <string.h>

#include "om.h"

size_t om_utf8_seq(const void *data, size_t n)
{
    const unsigned char *s = data;
    unsigned char c = s[0];
    if (c < 0x80) {
        return 1;
    }
    size_t len = c >= 0xc2 && c <= 0xdf   ? 2
                 : c >= 0xe0 && c <= 0xef ? 3
                 : c >= 0xf0 && c <= 0xf4 ? 4
                                          : 0;
    /* The second byte's range narrows for E0 (no overlong form), ED (no surrogate), F0 (no
     * overlong form) and F4 (nothing above U+10FFFF); RFC 3629's table. */
    unsigned char lo = c == 0xe0 ? 0xa0 : c == 0xf0 ? 0x90 : 0x80;
    unsigned char hi = c == 0xed ? 0x9f : c == 0xf4 ? 0x8f : 0xbf;
    if (len == 0 || len > n) {
        return 0;
    }
    /* In order, stopping at the first bad byte: a NUL ends the sequence before anything after
     * it is read, so a NUL-terminated string may pass n = 4. */
    for (size_t i = 1; i < len; i++) {
        if (s[i] < (i == 1 ? lo : 0x80) || s[i] > (i == 1 ? hi : 0xbf)) {
            return 0;
        }
    }
    return len;
}

bool om_utf8_valid(const void *data, size_t n)
{
    const unsigned char *s = data;
    for (size_t i = 0; i < n;) {
        size_t k = om_utf8_seq(s + i, n - i);
        if (k == 0) {
            return false;
        }
        i += k;
    }
    return true;
}

void om_strbuf_html(om_strbuf_t *out, const char *s, size_t len)
{
    for (size_t i = 0; i < len;) {
        size_t k = om_utf8_seq(s + i, len - i);
        unsigned char c = (unsigned char)s[i];
        if (k == 0) {
            om_strbuf_puts(out, "\xef\xbf\xbd"); /* U+FFFD for each byte that is not UTF-8 */
            i++;
            continue;
        }
        switch (c) {
        case '<':
            om_strbuf_puts(out, "&lt;");
            break;
        case '>':
            om_strbuf_puts(out, "&gt;");
            break;
        case '&':
            om_strbuf_puts(out, "&amp;");
            break;
        case '"':
            om_strbuf_puts(out, "&quot;");
            break;
        case '\'':
            om_strbuf_puts(out, "&#39;");
            break;
        default:
            /* Control characters have no place in a page; a space keeps words apart. */
            if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f) {
                om_strbuf_putc(out, ' ');
            } else {
                om_strbuf_append(out, s + i, k);
            }
        }
        i += k;
    }
}
