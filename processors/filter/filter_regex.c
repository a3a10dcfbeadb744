/* filter_regex.c: RE2-compatible regexes on PCRE2, with limits.
 *
 * otelcol matches with Go's regexp (RE2 syntax, linear time). We compile with PCRE2 (JIT when
 * the machine has it) and keep the two in step:
 * - Syntax: a scan before compiling refuses what RE2 refuses and PCRE2 would accept:
 *   backreferences (\1..\9, \g, \k), lookahead and lookbehind, atomic groups, possessive
 *   quantifiers, recursion and subroutine calls, conditionals, comments (?#...), callouts,
 *   flags other than i, m, s, U, and escapes Go does not know (\K, \R, \X, \h, \G, \Z...).
 *   Repeat counts above 1000 are refused, as Go does.
 * - Semantics: PCRE2_UTF with PCRE2_MATCH_INVALID_UTF (subjects that are not valid UTF-8 are
 *   matched, not refused; Go reads bad bytes as U+FFFD); PCRE2_DOLLAR_ENDONLY ($ without (?m)
 *   matches only at the very end, as in Go, not before a final newline); \v is rewritten to
 *   \x0B (Go: the vertical tab; PCRE2: any vertical space). \d, \w, \s and \b stay ASCII, as
 *   in Go (PCRE2_UCP is not set).
 * - Time: PCRE2 backtracks, so a pattern such as (a+)+$ is exponential on some inputs where RE2
 *   is linear. Each match runs under a match limit, a depth limit and a heap limit
 *   (FILTER_RE_*); a match that reaches one stops and reports OM_ETOOBIG, which callers treat
 *   as an evaluation error (OTTL) or as no match (legacy form), and count.
 * Matching is unanchored: the pattern may match anywhere, as regexp.MatchString. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdio.h>
#include <string.h>

#include "filter.h"

struct filter_re {
    pcre2_code *code;
    pcre2_match_data *md;
    pcre2_match_context *mctx;
    pcre2_jit_stack *jit_stack; /* NULL without JIT */
    char *pattern;
};

/* The JIT's backtracking stack: it grows on demand up to the maximum; a match that needs more
 * stops with OM_ETOOBIG like the other limits. */
#define JIT_STACK_START (32u << 10)
#define JIT_STACK_MAX (1u << 20)

/* PCRE2 allocates through these, so allocation failures (and their injection in tests) reach
 * it as they reach the rest of the code. */
static void *re_malloc(PCRE2_SIZE n, void *arg)
{
    (void)arg;
    return om_malloc(n);
}

static void re_free(void *p, void *arg)
{
    (void)arg;
    om_free(p);
}

/* ---- the RE2 syntax check --------------------------------------------------------------- */

typedef struct scan {
    const char *p;
    size_t n, i;
    om_err_t *err;
    bool in_class;
} scan_t;

static int refuse(scan_t *s, size_t at, const char *what)
{
    om_err_set(s->err, OM_EINVAL, "invalid regex at byte %zu: %s (not RE2 syntax)", at + 1, what);
    return OM_EINVAL;
}

/* Escapes Go's regexp knows; everything else after a backslash that is a letter or a digit is
 * an error there. Punctuation after a backslash is that character. */
static int check_escape(scan_t *s)
{
    size_t at = s->i;
    if (s->i + 1 >= s->n) {
        return refuse(s, at, "trailing backslash");
    }
    char c = s->p[s->i + 1];
    s->i += 2;
    if (strchr("aftnrvxdDsSwWpP", c) != NULL || (!s->in_class && strchr("bBAzQE", c) != NULL)) {
        return 0;
    }
    if (c == '0') {
        return 0; /* octal: Go reads \0 and up to two more octal digits */
    }
    if (c >= '1' && c <= '9') {
        return refuse(s, at, "backreferences are not supported");
    }
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
        char what[48];
        snprintf(what, sizeof what, "unknown escape \\%c", c);
        return refuse(s, at, what);
    }
    return 0;
}

/* After "(?": named groups and flag groups are RE2; the rest is not. */
static int check_group(scan_t *s)
{
    size_t at = s->i;
    const char *q = s->p + s->i + 2;
    size_t left = s->n - s->i - 2;
    bool lookbehind = left >= 2 && q[0] == '<' && (q[1] == '=' || q[1] == '!');
    if ((left >= 2 && q[0] == 'P' && q[1] == '<') || (left >= 1 && q[0] == '<' && !lookbehind)) {
        s->i += 2;
        return 0; /* (?P<name>re) or (?<name>re) */
    }
    if (lookbehind) {
        return refuse(s, at, "lookbehind is not supported");
    }
    if (left >= 1 && (q[0] == '=' || q[0] == '!')) {
        return refuse(s, at, "lookahead is not supported");
    }
    /* Flags: (?flags) or (?flags:re), flags from imsU with an optional '-'. */
    size_t k = 0;
    while (k < left && strchr("imsU-", q[k]) != NULL) {
        k++;
    }
    if (k < left && (q[k] == ')' || q[k] == ':')) {
        s->i += 2 + k;
        return 0;
    }
    return refuse(s, at, "this group construct is not supported");
}

/* "{n}", "{n,}", "{n,m}": Go refuses counts above 1000; a '{' that starts none of these is a
 * literal in both. A possessive '+' after it is refused by the caller. */
static int check_repeat(scan_t *s)
{
    size_t j = s->i + 1;
    unsigned long counts[2] = {0, 0};
    int which = 0;
    bool digits = false;
    for (; j < s->n && (s->p[j] == ',' || (s->p[j] >= '0' && s->p[j] <= '9')); j++) {
        if (s->p[j] == ',') {
            which++;
            continue;
        }
        digits = true;
        if (which < 2 && counts[which] <= 100000) {
            counts[which] = counts[which] * 10 + (unsigned long)(s->p[j] - '0');
        }
    }
    if (j >= s->n || s->p[j] != '}' || !digits || which > 1) {
        s->i++;
        return 0; /* a literal '{' */
    }
    if (counts[0] > 1000 || counts[1] > 1000) {
        return refuse(s, s->i, "repeat count above 1000");
    }
    s->i = j + 1;
    return 0;
}

static bool is_quantifier_end(const scan_t *s)
{
    if (s->i == 0 || s->in_class) {
        return false;
    }
    char c = s->p[s->i - 1];
    return c == '*' || c == '+' || c == '?' || c == '}';
}

/* Walks the pattern once, refusing what RE2 refuses. Bounded by the pattern's length. */
static int check_re2(const char *p, size_t n, om_err_t *err)
{
    scan_t s = {.p = p, .n = n, .err = err};
    while (s.i < s.n) {
        char c = s.p[s.i];
        int rc = 0;
        if (c == '\\' && s.i + 1 < s.n && s.p[s.i + 1] == 'Q') {
            const char *end = memmem(s.p + s.i + 2, s.n - s.i - 2, "\\E", 2);
            s.i = end != NULL ? (size_t)(end - s.p) + 2 : s.n;
            continue;
        }
        if (c == '\\') {
            rc = check_escape(&s);
        } else if (s.in_class) {
            s.in_class = c != ']';
            s.i++;
            /* "[:alpha:]" inside a class is a POSIX class in both; "[" is a literal. */
        } else if (c == '[') {
            s.in_class = true;
            s.i++;
            /* A ']' (after an optional '^') right at the start is a literal. */
            if (s.i < s.n && s.p[s.i] == '^') {
                s.i++;
            }
            if (s.i < s.n && s.p[s.i] == ']') {
                s.i++;
            }
        } else if (c == '(' && s.i + 1 < s.n && s.p[s.i + 1] == '?') {
            rc = check_group(&s);
        } else if (c == '(' && s.i + 1 < s.n && s.p[s.i + 1] == '*') {
            rc = refuse(&s, s.i, "verbs such as (*SKIP) are not supported");
        } else if (c == '+' && is_quantifier_end(&s) && !(s.i >= 2 && s.p[s.i - 2] == '\\')) {
            rc = refuse(&s, s.i, "possessive quantifiers are not supported");
        } else if (c == '{') {
            rc = check_repeat(&s);
        } else {
            s.i++;
        }
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

/* ---- compile and match ------------------------------------------------------------------- */

/* The pattern with \v (outside \Q...\E) turned into \x0B, in new memory. */
static char *rewrite(const char *p, size_t n)
{
    char *out = om_malloc(n * 2 + 1);
    if (out == NULL) {
        return NULL;
    }
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\\' && i + 1 < n && p[i + 1] == 'Q') {
            const char *end = memmem(p + i + 2, n - i - 2, "\\E", 2);
            size_t stop = end != NULL ? (size_t)(end - p) + 2 : n;
            memcpy(out + o, p + i, stop - i);
            o += stop - i;
            i = stop - 1;
        } else if (p[i] == '\\' && i + 1 < n && p[i + 1] == 'v') {
            memcpy(out + o, "\\x0B", 4);
            o += 4;
            i++;
        } else if (p[i] == '\\' && i + 1 < n) {
            out[o++] = p[i++];
            out[o++] = p[i];
        } else {
            out[o++] = p[i];
        }
    }
    out[o] = '\0';
    return out;
}

static int compile_code(filter_re_t *re, const char *pat, pcre2_general_context *gctx,
                        om_err_t *err)
{
    pcre2_compile_context *cctx = pcre2_compile_context_create(gctx);
    if (cctx == NULL) {
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    int code = 0;
    PCRE2_SIZE off = 0;
    re->code = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED,
                             PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | PCRE2_DOLLAR_ENDONLY |
                                 PCRE2_NEVER_BACKSLASH_C,
                             &code, &off, cctx);
    pcre2_compile_context_free(cctx);
    if (re->code == NULL) {
        if (code == PCRE2_ERROR_NOMEMORY || code == PCRE2_ERROR_HEAP_FAILED) {
            om_err_set(err, OM_ENOMEM, "out of memory");
            return OM_ENOMEM;
        }
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(code, msg, sizeof msg);
        om_err_set(err, OM_EINVAL, "invalid regex near byte %zu: %s", (size_t)off + 1,
                   (const char *)msg);
        return OM_EINVAL;
    }
    /* Without JIT support (PCRE2 built without it, or a CPU it does not know) the
     * interpreter runs the pattern under the same limits. Out of memory is a failure, not a
     * fallback: JIT and interpreter do not agree on every subject with invalid UTF-8, and a
     * pattern must match the same way whatever memory there was when it was compiled. */
    int jrc = pcre2_jit_compile(re->code, PCRE2_JIT_COMPLETE);
    if (jrc == 0) {
        re->jit_stack = pcre2_jit_stack_create(JIT_STACK_START, JIT_STACK_MAX, gctx);
        if (re->jit_stack == NULL) {
            jrc = PCRE2_ERROR_NOMEMORY;
        }
    }
    if (jrc == PCRE2_ERROR_NOMEMORY) {
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    return 0;
}

int proc_filter_re_compile(const char *pattern, size_t len, filter_re_t **out, om_err_t *err)
{
    *out = NULL;
    if (memchr(pattern, '\0', len) != NULL) {
        om_err_set(err, OM_EINVAL, "invalid regex: it contains a NUL byte");
        return OM_EINVAL;
    }
    int rc = check_re2(pattern, len, err);
    if (rc != 0) {
        return rc;
    }
    filter_re_t *re = om_calloc(1, sizeof *re);
    char *pat = rewrite(pattern, len);
    pcre2_general_context *gctx = pcre2_general_context_create(re_malloc, re_free, NULL);
    if (re == NULL || pat == NULL || gctx == NULL) {
        om_err_set(err, OM_ENOMEM, "out of memory");
        rc = OM_ENOMEM;
        goto out;
    }
    re->pattern = om_strndup(pattern, len);
    re->mctx = pcre2_match_context_create(gctx);
    if (re->pattern == NULL || re->mctx == NULL) {
        om_err_set(err, OM_ENOMEM, "out of memory");
        rc = OM_ENOMEM;
        goto out;
    }
    pcre2_set_match_limit(re->mctx, FILTER_RE_MATCH_LIMIT);
    pcre2_set_depth_limit(re->mctx, FILTER_RE_DEPTH_LIMIT);
    pcre2_set_heap_limit(re->mctx, FILTER_RE_HEAP_LIMIT_KIB);
    rc = compile_code(re, pat, gctx, err);
    if (rc == 0 && re->jit_stack != NULL) {
        pcre2_jit_stack_assign(re->mctx, NULL, re->jit_stack);
    }
    if (rc == 0) {
        re->md = pcre2_match_data_create(1, gctx);
        if (re->md == NULL) {
            om_err_set(err, OM_ENOMEM, "out of memory");
            rc = OM_ENOMEM;
        }
    }
out:
    om_free(pat);
    pcre2_general_context_free(gctx);
    if (rc != 0) {
        proc_filter_re_free(re);
        return rc;
    }
    *out = re;
    return 0;
}

int proc_filter_re_match(filter_re_t *re, const char *s, size_t n)
{
    int rc = pcre2_match(re->code, (PCRE2_SPTR)(s != NULL ? s : ""), n, 0, 0, re->md, re->mctx);
    if (rc >= 0) {
        return 1;
    }
    switch (rc) {
    case PCRE2_ERROR_NOMATCH:
        return 0;
    case PCRE2_ERROR_NOMEMORY:
        return OM_ENOMEM;
    default:
        /* The match, depth, heap and JIT stack limits; nothing else can fail for a pattern
         * that compiled and a subject of any bytes (PCRE2_MATCH_INVALID_UTF). */
        return OM_ETOOBIG;
    }
}

void proc_filter_re_free(filter_re_t *re)
{
    if (re == NULL) {
        return;
    }
    pcre2_match_data_free(re->md);
    pcre2_jit_stack_free(re->jit_stack);
    pcre2_match_context_free(re->mctx);
    pcre2_code_free(re->code);
    om_free(re->pattern);
    om_free(re);
}

const char *proc_filter_re_pattern(const filter_re_t *re)
{
    return re->pattern;
}
