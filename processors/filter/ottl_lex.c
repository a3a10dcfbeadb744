/* ottl_lex.c: OTTL's tokens, as otelcol's participle lexer makes them (pkg/ottl grammar.go):
 *   Bytes   0x[a-fA-F0-9]+                      (an even number of digits)
 *   Float   [-+]?\d*\.\d+([eE][-+]?\d+)?
 *   Int     [-+]?\d+                            (fits int64)
 *   String  "..." with Go's escapes (strconv.Unquote)
 *   operators == != >= <= > <, math + - * /, punctuation ( ) [ ] { } , . : =
 *   identifiers [A-Za-z][A-Za-z0-9_]*           (participle splits them into upper- and
 *                                                lowercase runs; the parser checks the shapes)
 * A sign directly before a digit belongs to the number, as in otelcol: "x-1" is a path and
 * the number -1 (a syntax error there too); write "x - 1". */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filter.h"

typedef struct lexer {
    const char *s;
    size_t n, i;
    tok_t *toks;
    size_t n_toks, cap;
    om_err_t *err;
} lexer_t;

static int lex_fail(lexer_t *lx, size_t pos, const char *what)
{
    om_err_set(lx->err, OM_EINVAL, "column %zu: %s", pos + 1, what);
    return OM_EINVAL;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

static tok_t *push(lexer_t *lx, tok_kind_t kind, size_t pos, size_t len)
{
    if (lx->n_toks == lx->cap) {
        size_t cap = lx->cap ? lx->cap * 2 : 16;
        tok_t *t = om_realloc(lx->toks, cap * sizeof *t);
        if (t == NULL) {
            om_err_set(lx->err, OM_ENOMEM, "out of memory");
            return NULL;
        }
        lx->toks = t;
        lx->cap = cap;
    }
    tok_t *t = &lx->toks[lx->n_toks++];
    *t = (tok_t){.kind = kind, .pos = pos, .len = len};
    return t;
}

/* One UTF-8 encoded code point into out (at least 4 bytes); returns its length. */
static size_t put_utf8(char *out, unsigned long cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* The escape at s[*i] (just after the backslash), written to out; Go's strconv.UnquoteChar
 * for a double-quoted string. Returns the bytes written, or -1. */
static int unescape(const char *s, size_t n, size_t *i, char *out)
{
    static const char simple_in[] = "abfnrtv\\\"";
    static const char simple_out[] = "\a\b\f\n\r\t\v\\\"";
    char c = s[*i];
    const char *k = strchr(simple_in, c);
    if (c != '\0' && k != NULL) {
        out[0] = simple_out[k - simple_in];
        (*i)++;
        return 1;
    }
    size_t digits = c == 'x' ? 2 : c == 'u' ? 4 : c == 'U' ? 8 : (c >= '0' && c <= '7') ? 3 : 0;
    size_t start = c >= '0' && c <= '7' ? *i : *i + 1;
    if (digits == 0 || start + digits > n) {
        return -1;
    }
    unsigned long v = 0;
    for (size_t j = 0; j < digits; j++) {
        int h = hexval(s[start + j]);
        if (h < 0 || (digits == 3 && h > 7)) {
            return -1;
        }
        v = v * (digits == 3 ? 8 : 16) + (unsigned long)h;
    }
    *i = start + digits;
    if (c == 'x' || digits == 3) {
        if (v > 255) {
            return -1;
        }
        out[0] = (char)v;
        return 1;
    }
    if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) {
        return -1;
    }
    return (int)put_utf8(out, v);
}

static int lex_string(lexer_t *lx)
{
    size_t start = lx->i;
    char *out = om_malloc(lx->n - start + 1);
    if (out == NULL) {
        om_err_set(lx->err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    size_t o = 0;
    lx->i++;
    /* Bounded by the text: every turn consumes at least one byte. */
    while (lx->i < lx->n && lx->s[lx->i] != '"') {
        char c = lx->s[lx->i];
        if (c == '\n') {
            om_free(out);
            return lex_fail(lx, lx->i, "a string cannot contain a newline");
        }
        if (c != '\\') {
            out[o++] = c;
            lx->i++;
            continue;
        }
        size_t at = lx->i++;
        if (lx->i >= lx->n) {
            break;
        }
        int w = unescape(lx->s, lx->n, &lx->i, out + o);
        if (w < 0) {
            om_free(out);
            return lex_fail(lx, at, "invalid escape in string");
        }
        o += (size_t)w;
    }
    if (lx->i >= lx->n) {
        om_free(out);
        return lex_fail(lx, start, "unterminated string");
    }
    lx->i++;
    out[o] = '\0';
    tok_t *t = push(lx, TK_STRING, start, lx->i - start);
    if (t == NULL) {
        om_free(out);
        return OM_ENOMEM;
    }
    t->text = out;
    t->text_len = o;
    return 0;
}

static int lex_bytes(lexer_t *lx)
{
    size_t start = lx->i, j = lx->i + 2;
    while (j < lx->n && hexval(lx->s[j]) >= 0) {
        j++;
    }
    size_t digits = j - start - 2;
    if (digits % 2 != 0) {
        return lex_fail(lx, start, "a bytes literal needs an even number of hex digits");
    }
    char *out = om_malloc(digits / 2 + 1);
    if (out == NULL) {
        om_err_set(lx->err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    for (size_t k = 0; k < digits / 2; k++) {
        out[k] = (char)(hexval(lx->s[start + 2 + 2 * k]) * 16 + hexval(lx->s[start + 3 + 2 * k]));
    }
    tok_t *t = push(lx, TK_BYTES, start, j - start);
    if (t == NULL) {
        om_free(out);
        return OM_ENOMEM;
    }
    t->text = out;
    t->text_len = digits / 2;
    lx->i = j;
    return 0;
}

/* A number starting at lx->i (an optional sign, then digits or '.' and a digit). */
static int lex_number(lexer_t *lx)
{
    size_t start = lx->i, j = lx->i;
    if (lx->s[j] == '+' || lx->s[j] == '-') {
        j++;
    }
    while (j < lx->n && is_digit(lx->s[j])) {
        j++;
    }
    bool is_float = j + 1 < lx->n && lx->s[j] == '.' && is_digit(lx->s[j + 1]);
    if (is_float) {
        j++;
        while (j < lx->n && is_digit(lx->s[j])) {
            j++;
        }
        size_t e = j;
        if (e < lx->n && (lx->s[e] == 'e' || lx->s[e] == 'E')) {
            e++;
            if (e < lx->n && (lx->s[e] == '+' || lx->s[e] == '-')) {
                e++;
            }
            if (e < lx->n && is_digit(lx->s[e])) {
                while (e < lx->n && is_digit(lx->s[e])) {
                    e++;
                }
                j = e;
            }
        }
    }
    char buf[64];
    if (j - start >= sizeof buf) {
        return lex_fail(lx, start, "number too long");
    }
    memcpy(buf, lx->s + start, j - start);
    buf[j - start] = '\0';
    tok_t *t = push(lx, is_float ? TK_FLOAT : TK_INT, start, j - start);
    if (t == NULL) {
        return OM_ENOMEM;
    }
    errno = 0;
    if (is_float) {
        t->d = strtod(buf, NULL);
    } else {
        t->i = strtoll(buf, NULL, 10);
    }
    if (errno == ERANGE) {
        char what[96];
        snprintf(what, sizeof what, "number out of range: %s", buf);
        return lex_fail(lx, start, what);
    }
    lx->i = j;
    return 0;
}

static bool starts_number(const lexer_t *lx)
{
    size_t j = lx->i;
    if (lx->s[j] == '+' || lx->s[j] == '-') {
        j++;
    }
    return j < lx->n &&
           (is_digit(lx->s[j]) || (lx->s[j] == '.' && j + 1 < lx->n && is_digit(lx->s[j + 1])));
}

/* Operators and punctuation; returns false when c starts none. */
static int lex_symbol(lexer_t *lx)
{
    const char *p = lx->s + lx->i;
    size_t left = lx->n - lx->i;
    static const struct {
        const char *text;
        int op;
    } ops[] = {{"==", OTTL_EQ}, {"!=", OTTL_NE}, {">=", OTTL_GE},
               {"<=", OTTL_LE}, {">", OTTL_GT},  {"<", OTTL_LT}};
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
        size_t l = strlen(ops[k].text);
        if (left >= l && memcmp(p, ops[k].text, l) == 0) {
            tok_t *t = push(lx, TK_OP, lx->i, l);
            if (t == NULL) {
                return OM_ENOMEM;
            }
            t->op = ops[k].op;
            lx->i += l;
            return 0;
        }
    }
    tok_kind_t kind = strchr("+-*/", p[0]) != NULL ? TK_MATH : TK_PUNCT;
    if (strchr("+-*/()[]{},.:=", p[0]) == NULL) {
        char what[48];
        unsigned char uc = (unsigned char)p[0];
        if (uc < 0x20 || uc >= 0x7F) {
            snprintf(what, sizeof what, "unexpected byte 0x%02x", uc);
        } else {
            snprintf(what, sizeof what, "unexpected character '%c'", uc);
        }
        return lex_fail(lx, lx->i, what);
    }
    tok_t *t = push(lx, kind, lx->i, 1);
    if (t == NULL) {
        return OM_ENOMEM;
    }
    t->op = p[0];
    lx->i++;
    return 0;
}

static int lex_one(lexer_t *lx)
{
    char c = lx->s[lx->i];
    if (c == '0' && lx->i + 2 < lx->n && lx->s[lx->i + 1] == 'x' && hexval(lx->s[lx->i + 2]) >= 0) {
        return lex_bytes(lx);
    }
    if (starts_number(lx)) {
        return lex_number(lx);
    }
    if (c == '"') {
        return lex_string(lx);
    }
    if (is_alpha(c)) {
        size_t start = lx->i;
        while (lx->i < lx->n &&
               (is_alpha(lx->s[lx->i]) || is_digit(lx->s[lx->i]) || lx->s[lx->i] == '_')) {
            lx->i++;
        }
        return push(lx, TK_IDENT, start, lx->i - start) != NULL ? 0 : OM_ENOMEM;
    }
    return lex_symbol(lx);
}

int proc_filter_ottl_lex(const char *text, tok_t **toks, size_t *n, om_err_t *err)
{
    lexer_t lx = {.s = text, .n = strlen(text), .err = err};
    *toks = NULL;
    *n = 0;
    if (lx.n > OTTL_MAX_LEN) {
        om_err_set(err, OM_EINVAL, "the condition is longer than %d bytes", OTTL_MAX_LEN);
        return OM_EINVAL;
    }
    int rc = 0;
    /* Bounded by the text: every token consumes at least one byte. */
    while (rc == 0) {
        while (lx.i < lx.n && strchr(" \t\n\r\f\v", lx.s[lx.i]) != NULL) {
            lx.i++;
        }
        if (lx.i >= lx.n) {
            rc = push(&lx, TK_END, lx.n, 0) != NULL ? 0 : OM_ENOMEM;
            break;
        }
        rc = lex_one(&lx);
    }
    if (rc != 0) {
        proc_filter_ottl_toks_free(lx.toks, lx.n_toks);
        return rc;
    }
    *toks = lx.toks;
    *n = lx.n_toks;
    return 0;
}

void proc_filter_ottl_toks_free(tok_t *toks, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        om_free(toks[i].text);
    }
    om_free(toks);
}
