/* json.c: a strict JSON reader into a tree in an arena (what it accepts: om.h, "JSON reader").
 *
 * Why not a library: jansson builds a malloc'd node per value and a hash table per object;
 * building and freeing that tree was ~85% of decoding an OTLP/JSON request. Here the body is
 * copied once, strings are unescaped in place inside the copy (each NUL-terminated where its
 * closing quote was: escapes only shrink), and nodes are bump-allocated in the arena, which
 * frees the whole tree at once. The otlp_json fuzz target holds this reader to jansson. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "om.h"

/* Members of the containers being parsed, before their count is known; a finished container
 * copies its own from the top into the arena. One stack for the whole parse. */
typedef struct jp {
    char *p;           /* next byte of the copy */
    char *end;         /* the copy's end, where a NUL sentinel stops every scan */
    const char *start; /* the copy's start, for error positions */
    om_arena_t *a;
    om_json_member_t *stack; /* owned, om_malloc'd; elements of an array have key NULL */
    size_t top, cap;
    unsigned depth;
    om_err_t *err;
} jp_t;

/* ---------------------------------------------------------------------------------------- */
/* Errors                                                                                     */

static int jp_fail(jp_t *j, const char *what)
{
    unsigned line = 1, col = 1;
    for (const char *q = j->start; q < j->p; q++) {
        if (*q == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    if (j->p >= j->end && strcmp(what, "unexpected end of input") != 0) {
        what = "unexpected end of input";
    }
    om_err_set(j->err, OM_EINVAL, "invalid JSON at line %u column %u: %s", line, col, what);
    return OM_EINVAL;
}

static int jp_nomem(jp_t *j)
{
    return om_arena_fail(j->a, j->err, "decoded request");
}

/* ---------------------------------------------------------------------------------------- */
/* Scalars                                                                                    */

static void skip_ws(jp_t *j)
{
    char *p = j->p;
    while (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t') {
        p++;
    }
    j->p = p;
}

static int hex4(const char *p)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0) {
            return -1;
        }
        v = v << 4 | d;
    }
    return v;
}

static char *put_utf8(char *dst, unsigned cp)
{
    if (cp < 0x80) {
        *dst++ = (char)cp;
    } else if (cp < 0x800) {
        *dst++ = (char)(0xC0 | cp >> 6);
        *dst++ = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *dst++ = (char)(0xE0 | cp >> 12);
        *dst++ = (char)(0x80 | (cp >> 6 & 0x3F));
        *dst++ = (char)(0x80 | (cp & 0x3F));
    } else {
        *dst++ = (char)(0xF0 | cp >> 18);
        *dst++ = (char)(0x80 | (cp >> 12 & 0x3F));
        *dst++ = (char)(0x80 | (cp >> 6 & 0x3F));
        *dst++ = (char)(0x80 | (cp & 0x3F));
    }
    return dst;
}

/* One \u escape (p after the 'u'), and its low surrogate when it is a high one. Writes the
 * code point's UTF-8 at *dst. Returns the bytes read after the 'u', or 0 when invalid. */
static size_t unicode_escape(const char *p, char **dst, const char **why)
{
    int cp = hex4(p);
    if (cp < 0) {
        *why = "invalid \\u escape";
        return 0;
    }
    size_t used = 4;
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        int low = p[4] == '\\' && p[5] == 'u' ? hex4(p + 6) : -1;
        if (low < 0xDC00 || low > 0xDFFF) {
            *why = "unpaired surrogate in \\u escape";
            return 0;
        }
        cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
        used = 10;
    } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
        *why = "unpaired surrogate in \\u escape";
        return 0;
    } else if (cp == 0) {
        *why = "\\u0000 is not allowed in strings";
        return 0;
    }
    *dst = put_utf8(*dst, (unsigned)cp);
    return used;
}

/* Bytes that stand for themselves in a string: printable ASCII but the quote and backslash. */
#define PLAIN1(c) ((c) >= 0x20 && (c) < 0x80 && (c) != '"' && (c) != '\\')
#define PLAIN4(c) PLAIN1(c), PLAIN1((c) + 1), PLAIN1((c) + 2), PLAIN1((c) + 3)
#define PLAIN16(c) PLAIN4(c), PLAIN4((c) + 4), PLAIN4((c) + 8), PLAIN4((c) + 12)
#define PLAIN64(c) PLAIN16(c), PLAIN16((c) + 16), PLAIN16((c) + 32), PLAIN16((c) + 48)
static const bool plain_byte[256] = {PLAIN64(0), PLAIN64(64), PLAIN64(128), PLAIN64(192)};
#undef PLAIN64
#undef PLAIN16
#undef PLAIN4
#undef PLAIN1

/* The string whose opening quote is at j->p, unescaped in place: the result starts after the
 * quote and ends with a NUL written over the closing quote or earlier (escapes only shrink). */
static int parse_string(jp_t *j, const char **out, uint32_t *out_len)
{
    char *s = j->p + 1;
    char *src = s, *dst = s;
    for (;;) {
        unsigned char c = (unsigned char)*src;
        if (plain_byte[c]) {
            *dst++ = (char)c;
            src++;
            continue;
        }
        if (c == '"') {
            break;
        }
        if (c == '\\') {
            const char *why = "invalid escape";
            char e = src[1];
            const char *simple = strchr("\"\\/bfnrt", e);
            if (e != '\0' && simple != NULL) {
                static const char unescaped[] = "\"\\/\b\f\n\r\t";
                *dst++ = unescaped[simple - "\"\\/bfnrt"];
                src += 2;
                continue;
            }
            size_t used = e == 'u' ? unicode_escape(src + 2, &dst, &why) : 0;
            if (used == 0) {
                /* A body that ends inside the escape (at most \uXXXX\uXXXX, with no closing
                 * quote) reads as cut off; any other error points at the backslash. */
                size_t left = (size_t)(j->end - src);
                bool cut = left < 12 && memchr(src, '"', left) == NULL;
                j->p = cut ? j->end : src;
                return jp_fail(j, why);
            }
            src += 2 + used;
            continue;
        }
        if (c >= 0x80) {
            size_t n = om_utf8_seq(src, 4);
            if (n == 0) {
                j->p = src;
                return jp_fail(j, "invalid UTF-8 in string");
            }
            memmove(dst, src, n);
            dst += n;
            src += n;
            continue;
        }
        j->p = src; /* a control character, or the end */
        return jp_fail(j,
                       src >= j->end ? "unexpected end of input" : "control character in string");
    }
    if ((size_t)(dst - s) > UINT32_MAX) {
        j->p = s;
        return jp_fail(j, "string too long");
    }
    *dst = '\0';
    *out = s;
    *out_len = (uint32_t)(dst - s);
    j->p = src + 1;
    return 0;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* A number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
static int parse_number(jp_t *j, om_json_t *v)
{
    char *s = j->p, *p = s;
    bool neg = *p == '-';
    p += neg;
    if (*p == '0') {
        p++;
    } else if (is_digit(*p)) {
        while (is_digit(*p)) {
            p++;
        }
    } else {
        j->p = p;
        return jp_fail(j, "invalid number");
    }
    char *int_end = p;
    if (*p == '.') {
        p++;
        if (!is_digit(*p)) {
            j->p = p;
            return jp_fail(j, "invalid number: a digit must follow '.'");
        }
        while (is_digit(*p)) {
            p++;
        }
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        p += *p == '+' || *p == '-';
        if (!is_digit(*p)) {
            j->p = p;
            return jp_fail(j, "invalid number: a digit must follow the exponent");
        }
        while (is_digit(*p)) {
            p++;
        }
    }
    if (p == int_end) {
        /* An integer: in int64 unless it overflows, then a real. */
        uint64_t mag = 0, limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
        bool fits = true;
        for (char *q = s + neg; q < p && fits; q++) {
            unsigned d = (unsigned)(*q - '0');
            fits = mag <= (limit - d) / 10;
            mag = mag * 10 + d;
        }
        if (fits) {
            v->type = OM_JSON_INTEGER;
            v->u.i = neg ? (mag == 0 ? 0 : -(int64_t)(mag - 1) - 1) : (int64_t)mag;
            j->p = p;
            return 0;
        }
    }
    /* strtod reads exactly the token: what follows it cannot continue a number. The process
     * runs in the C locale (the decimal point is '.'). */
    char *e = NULL;
    errno = 0;
    double r = strtod(s, &e);
    if (e != p) {
        j->p = s;
        return jp_fail(j, "invalid number");
    }
    if (errno == ERANGE && (r == HUGE_VAL || r == -HUGE_VAL)) {
        j->p = s;
        return jp_fail(j, "real number overflow");
    }
    v->type = OM_JSON_REAL;
    v->u.r = r;
    j->p = p;
    return 0;
}

static int parse_literal(jp_t *j, om_json_t *v)
{
    static const struct {
        const char *word;
        size_t len;
        om_json_type_t type;
    } words[] = {{"true", 4, OM_JSON_TRUE}, {"false", 5, OM_JSON_FALSE}, {"null", 4, OM_JSON_NULL}};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        if ((size_t)(j->end - j->p) >= words[i].len &&
            memcmp(j->p, words[i].word, words[i].len) == 0) {
            v->type = words[i].type;
            j->p += words[i].len;
            return 0;
        }
    }
    return jp_fail(j, "invalid token");
}

/* ---------------------------------------------------------------------------------------- */
/* Containers                                                                                 */

static int parse_value(jp_t *j, om_json_t *v);

static int push(jp_t *j, const char *key, uint32_t key_len, const om_json_t *v)
{
    if (j->top == j->cap) {
        size_t cap = j->cap == 0 ? 64 : j->cap * 2;
        om_json_member_t *grown = om_realloc(j->stack, cap * sizeof *grown);
        if (grown == NULL) {
            om_err_set(j->err, OM_ENOMEM, "out of memory parsing JSON");
            return OM_ENOMEM;
        }
        j->stack = grown;
        j->cap = cap;
    }
    j->stack[j->top++] = (om_json_member_t){key, key_len, *v};
    return 0;
}

static int enter(jp_t *j)
{
    if (j->depth >= OM_JSON_MAX_DEPTH) {
        return jp_fail(j, "nested too deeply");
    }
    j->depth++;
    j->p++; /* the bracket */
    skip_ws(j);
    return 0;
}

/* After a member: ',' (then another one) or the closing bracket. 1: another follows. */
static int next_or_close(jp_t *j, char close, const char *what)
{
    skip_ws(j);
    if (*j->p == ',') {
        j->p++;
        skip_ws(j);
        return 1;
    }
    if (*j->p == close) {
        j->p++;
        return 0;
    }
    return jp_fail(j, what);
}

static int parse_element(jp_t *j)
{
    om_json_t el;
    int rc = parse_value(j, &el);
    return rc != 0 ? rc : push(j, NULL, 0, &el);
}

static int parse_member(jp_t *j)
{
    if (*j->p != '"') {
        return jp_fail(j, "expected a string key");
    }
    const char *key;
    uint32_t key_len;
    int rc = parse_string(j, &key, &key_len);
    if (rc != 0) {
        return rc;
    }
    skip_ws(j);
    if (*j->p != ':') {
        return jp_fail(j, "expected ':'");
    }
    j->p++;
    skip_ws(j);
    om_json_t val;
    if ((rc = parse_value(j, &val)) != 0) {
        return rc;
    }
    return push(j, key, key_len, &val);
}

/* An array or an object: its members gather on the stack until the closing bracket, then move
 * to the arena (an array's without their NULL keys). */
static int parse_container(jp_t *j, om_json_t *v, bool object)
{
    char close = object ? '}' : ']';
    int rc = enter(j);
    size_t base = j->top;
    if (rc != 0) {
        return rc;
    }
    if (*j->p == close) {
        j->p++;
    } else {
        do {
            if ((rc = object ? parse_member(j) : parse_element(j)) != 0) {
                return rc;
            }
        } while ((rc = next_or_close(j, close,
                                     object ? "expected ',' or '}'" : "expected ',' or ']'")) == 1);
        if (rc != 0) {
            return rc;
        }
    }
    size_t n = j->top - base;
    if (n > UINT32_MAX) {
        return jp_fail(j, "too many members");
    }
    size_t size = object ? sizeof(om_json_member_t) : sizeof(om_json_t);
    void *mem = n == 0 ? NULL : om_arena_alloc(j->a, n * size);
    if (n > 0 && mem == NULL) {
        return jp_nomem(j);
    }
    om_json_member_t *members = mem;
    om_json_t *items = mem;
    for (size_t i = 0; i < n; i++) {
        if (object) {
            members[i] = j->stack[base + i];
        } else {
            items[i] = j->stack[base + i].value;
        }
    }
    j->top = base;
    j->depth--;
    v->type = object ? OM_JSON_OBJECT : OM_JSON_ARRAY;
    v->n = (uint32_t)n;
    if (object) {
        v->u.members = members;
    } else {
        v->u.items = items;
    }
    return 0;
}

/* One value at j->p (no whitespace before it). */
static int parse_value(jp_t *j, om_json_t *v)
{
    char c = *j->p;
    if (c == '"') {
        v->type = OM_JSON_STRING;
        return parse_string(j, &v->u.s, &v->n);
    }
    if (c == '{' || c == '[') {
        return parse_container(j, v, c == '{');
    }
    if (c == '-' || is_digit(c)) {
        return parse_number(j, v);
    }
    return parse_literal(j, v);
}

int om_json_parse(om_arena_t *a, const char *data, size_t len, const om_json_t **root,
                  om_err_t *err)
{
    jp_t j = {.a = a, .err = err};
    *root = NULL;
    char *copy = len == SIZE_MAX ? NULL : om_arena_alloc(a, len + 1);
    if (copy == NULL) {
        return jp_nomem(&j);
    }
    if (len > 0) {
        memcpy(copy, data, len);
    }
    copy[len] = '\0';
    j.p = copy;
    j.start = copy;
    j.end = copy + len;
    om_json_t *v = om_arena_alloc(a, sizeof *v);
    if (v == NULL) {
        return jp_nomem(&j);
    }
    skip_ws(&j);
    int rc = parse_value(&j, v);
    if (rc == 0) {
        skip_ws(&j);
        if (j.p != j.end) {
            rc = jp_fail(&j, "end of input expected");
        }
    }
    om_free(j.stack);
    if (rc == 0) {
        *root = v;
    }
    return rc;
}

const om_json_t *om_json_get(const om_json_t *obj, const char *key)
{
    if (obj == NULL || obj->type != OM_JSON_OBJECT) {
        return NULL;
    }
    size_t len = strlen(key);
    for (uint32_t i = obj->n; i-- > 0;) {
        const om_json_member_t *m = &obj->u.members[i];
        if (m->key_len == len && memcmp(m->key, key, len) == 0) {
            return &m->value;
        }
    }
    return NULL;
}
