/* ottl_parse.c: OTTL conditions into a tree, checked once at start.
 *
 * The grammar is otelcol's (pkg/ottl grammar.go) for conditions:
 *   condition  := or_expr END
 *   or_expr    := and_expr ("or" and_expr)*
 *   and_expr   := bool_value ("and" bool_value)*
 *   bool_value := ["not"] ( "(" or_expr ")" | math [cmp_op math] )
 *                 where a math with no operator must be true, false or a function that
 *                 returns a boolean
 *   math       := term (("+" | "-") term)*
 *   term       := factor (("*" | "/") factor)*
 *   factor     := "(" math ")" | operand
 *   operand    := nil | true | false | STRING | INT | FLOAT | BYTES | ENUM | path | call | list
 *   path       := name ("." name)* ("[" (STRING | INT) "]")*
 *   call       := Name "(" [math ("," math)*] ")"
 * A "(" at the start of a bool_value is tried as a boolean group first and, when that does not
 * fit (it is followed by an operator, or is no boolean expression), as arithmetic: the
 * alternatives otelcol's parser tries too.
 *
 * Errors: a syntax error reports the furthest position the parse reached (as participle
 * does); a semantic error (an unknown path, function or enum, wrong arguments, a bad regex)
 * is reported where it is, at once. Both say "column N" (1-based, in bytes) of the condition.
 * What otelcol only finds while evaluating but can never succeed is refused here too: a
 * condition that is a function returning no boolean, arithmetic on string literals. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "filter.h"

typedef struct parser {
    const char *text;
    const tok_t *t;
    size_t n, i;
    ottl_ctx_t ctx;
    om_err_t *err;
    bool fatal; /* err is set: stop, no backtracking */
    bool has_syntax;
    size_t syntax_pos;
    char syntax_msg[192];
    int depth;
    /* Token positions where "(" was already tried as a boolean group and was none: trying
     * again would give the same answer, and nested parentheses would otherwise be tried an
     * exponential number of times. */
    bool *not_group;
} parser_t;

/* ---- functions --------------------------------------------------------------------------- */

typedef enum {
    R_BOOL,
    R_INT,
    R_DOUBLE,
    R_STRING,
    R_ID,
    R_ANY, /* Int and Double may return nil */
} ret_t;

typedef struct fn_def {
    const char *name;
    ottl_fn_t fn;
    size_t n_args;
    ret_t ret;
    int only_ctx; /* -1: every context */
} fn_def_t;

static const fn_def_t fns[] = {
    {"IsMatch", F_IS_MATCH, 2, R_BOOL, -1},
    {"IsString", F_IS_STRING, 1, R_BOOL, -1},
    {"IsInt", F_IS_INT, 1, R_BOOL, -1},
    {"IsBool", F_IS_BOOL, 1, R_BOOL, -1},
    {"IsDouble", F_IS_DOUBLE, 1, R_BOOL, -1},
    {"IsMap", F_IS_MAP, 1, R_BOOL, -1},
    {"IsList", F_IS_LIST, 1, R_BOOL, -1},
    {"Len", F_LEN, 1, R_INT, -1},
    {"Int", F_INT, 1, R_ANY, -1},
    {"Double", F_DOUBLE, 1, R_ANY, -1},
    {"String", F_STRING, 1, R_ANY, -1},
    {"Concat", F_CONCAT, 2, R_STRING, -1},
    {"TraceID", F_TRACE_ID, 1, R_ID, -1},
    {"SpanID", F_SPAN_ID, 1, R_ID, -1},
    {"IsRootSpan", F_IS_ROOT_SPAN, 0, R_BOOL, OTTL_CTX_SPAN},
    {"HasAttrKeyOnDatapoint", F_HAS_ATTR_KEY_ON_DATAPOINT, 1, R_BOOL, OTTL_CTX_METRIC},
    {"HasAttrOnDatapoint", F_HAS_ATTR_ON_DATAPOINT, 2, R_BOOL, OTTL_CTX_METRIC},
};

#define N_FNS (sizeof fns / sizeof fns[0])

static const fn_def_t *fn_by_id(ottl_fn_t fn)
{
    for (size_t i = 0; i < N_FNS; i++) {
        if (fns[i].fn == fn) {
            return &fns[i];
        }
    }
    return NULL;
}

/* ---- nodes ------------------------------------------------------------------------------- */

static void node_free(ottl_node_t *n)
{
    if (n == NULL) {
        return;
    }
    for (size_t i = 0; i < n->n_kids; i++) {
        node_free(n->kids[i]);
    }
    for (size_t i = 0; i < n->n_keys; i++) {
        om_free(n->keys[i].s);
    }
    om_free(n->keys);
    om_free(n->kids);
    om_free(n->lit_mem);
    proc_filter_re_free(n->re);
    om_free(n);
}

static void oom(parser_t *p)
{
    if (!p->fatal) {
        om_err_set(p->err, OM_ENOMEM, "out of memory");
        p->fatal = true;
    }
}

static ottl_node_t *node_new(parser_t *p, ottl_node_kind_t kind, size_t pos)
{
    ottl_node_t *n = om_calloc(1, sizeof *n);
    if (n == NULL) {
        oom(p);
        return NULL;
    }
    n->kind = kind;
    n->pos = pos;
    return n;
}

/* Appends kid to n's kids; on failure frees kid and returns false. */
static bool add_kid(parser_t *p, ottl_node_t *n, ottl_node_t *kid)
{
    ottl_node_t **k = om_realloc(n->kids, (n->n_kids + 1) * sizeof *k);
    if (k == NULL) {
        node_free(kid);
        oom(p);
        return false;
    }
    n->kids = k;
    n->kids[n->n_kids++] = kid;
    return true;
}

/* ---- errors ------------------------------------------------------------------------------ */

static const tok_t *cur(const parser_t *p)
{
    return &p->t[p->i];
}

/* How a token is named in messages: its text (cut at 32 bytes) in quotes. */
static void tok_desc(const parser_t *p, const tok_t *t, char *out, size_t n)
{
    if (t->kind == TK_END) {
        snprintf(out, n, "end of the condition");
        return;
    }
    int len = t->len > 32 ? 32 : (int)t->len;
    snprintf(out, n, "\"%.*s%s\"", len, p->text + t->pos, t->len > 32 ? "..." : "");
}

static void syntax(parser_t *p, const tok_t *t, const char *expected)
{
    if (p->fatal || (p->has_syntax && t->pos < p->syntax_pos)) {
        return;
    }
    char got[48];
    tok_desc(p, t, got, sizeof got);
    p->has_syntax = true;
    p->syntax_pos = t->pos;
    snprintf(p->syntax_msg, sizeof p->syntax_msg, "unexpected %s (expected %s)", got, expected);
}

static void fatal(parser_t *p, size_t pos, const char *fmt, ...) OM_PRINTF(3, 4);

static void fatal(parser_t *p, size_t pos, const char *fmt, ...)
{
    if (p->fatal) {
        return;
    }
    char msg[224];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    om_err_set(p->err, OM_EINVAL, "column %zu: %s", pos + 1, msg);
    p->fatal = true;
}

static bool failed(const parser_t *p)
{
    return p->fatal;
}

/* ---- tokens ------------------------------------------------------------------------------ */

static bool is_punct(const tok_t *t, char c)
{
    return t->kind == TK_PUNCT && t->op == c;
}

static bool is_word(const parser_t *p, const tok_t *t, const char *w)
{
    size_t l = strlen(w);
    return t->kind == TK_IDENT && t->len == l && memcmp(p->text + t->pos, w, l) == 0;
}

static bool is_keyword(const parser_t *p, const tok_t *t)
{
    return is_word(p, t, "and") || is_word(p, t, "or") || is_word(p, t, "not");
}

static bool accept_punct(parser_t *p, char c)
{
    if (is_punct(cur(p), c)) {
        p->i++;
        return true;
    }
    return false;
}

static bool expect_punct(parser_t *p, char c, const char *expected)
{
    if (accept_punct(p, c)) {
        return true;
    }
    syntax(p, cur(p), expected);
    return false;
}

static bool deeper(parser_t *p)
{
    if (++p->depth > OTTL_MAX_DEPTH) {
        fatal(p, cur(p)->pos, "nested deeper than %d levels", OTTL_MAX_DEPTH);
        return false;
    }
    return true;
}

/* ---- operands ---------------------------------------------------------------------------- */

static ottl_node_t *parse_math(parser_t *p);
static ottl_node_t *parse_or(parser_t *p);

static ottl_node_t *literal(parser_t *p, const tok_t *t)
{
    ottl_node_t *n = node_new(p, N_LIT, t->pos);
    if (n == NULL) {
        return NULL;
    }
    switch (t->kind) {
    case TK_INT:
        n->lit = (ov_t){.kind = OV_INT, .i = t->i};
        break;
    case TK_FLOAT:
        n->lit = (ov_t){.kind = OV_DOUBLE, .d = t->d};
        break;
    default: /* TK_STRING, TK_BYTES */
        n->lit_mem = om_malloc(t->text_len + 1);
        if (n->lit_mem == NULL) {
            node_free(n);
            oom(p);
            return NULL;
        }
        memcpy(n->lit_mem, t->text, t->text_len);
        n->lit_mem[t->text_len] = '\0';
        n->lit.kind = t->kind == TK_STRING ? OV_STR : OV_BYTES;
        n->lit.s.p = n->lit_mem;
        n->lit.s.n = t->text_len;
        break;
    }
    p->i++;
    return n;
}

static bool add_key(parser_t *p, ottl_node_t *n)
{
    const tok_t *k = cur(p);
    if (k->kind != TK_STRING && k->kind != TK_INT) {
        syntax(p, k, "a string or an integer key");
        return false;
    }
    ottl_key_t *keys = om_realloc(n->keys, (n->n_keys + 1) * sizeof *keys);
    if (keys == NULL) {
        oom(p);
        return false;
    }
    n->keys = keys;
    ottl_key_t *key = &n->keys[n->n_keys++];
    *key = (ottl_key_t){.is_int = k->kind == TK_INT, .i = k->i};
    if (k->kind == TK_STRING) {
        key->s = om_strndup(k->text, k->text_len);
        if (key->s == NULL) {
            oom(p);
            return false;
        }
    }
    p->i++;
    return expect_punct(p, ']', "\"]\"");
}

static bool lowercase_name(const parser_t *p, const tok_t *t)
{
    const char *s = p->text + t->pos;
    if (t->kind != TK_IDENT || s[0] < 'a' || s[0] > 'z') {
        return false;
    }
    for (size_t i = 0; i < t->len; i++) {
        if (s[i] >= 'A' && s[i] <= 'Z') {
            return false;
        }
    }
    return true;
}

/* Checks the path's name and keys against the context. */
static bool resolve_path(parser_t *p, ottl_node_t *n, const char *name)
{
    n->path = proc_filter_ottl_path_find(p->ctx, name);
    if (n->path == P_NONE) {
        fatal(p, n->pos, "unknown path \"%s\" in the %s context", name,
              proc_filter_ottl_ctx_name(p->ctx));
        return false;
    }
    if (n->n_keys > 0 && !proc_filter_ottl_path_indexable(n->path)) {
        fatal(p, n->pos, "path \"%s\" cannot be indexed", name);
        return false;
    }
    if (n->n_keys > 0 && n->path != P_LOG_BODY && n->keys[0].is_int) {
        fatal(p, n->pos, "\"%s\" is a map: index it with a string", name);
        return false;
    }
    return true;
}

static ottl_node_t *parse_path(parser_t *p)
{
    ottl_node_t *n = node_new(p, N_PATH, cur(p)->pos);
    char name[256] = "";
    size_t used = 0;
    /* Bounded by the tokens: each turn consumes a name. */
    while (n != NULL) {
        const tok_t *t = cur(p);
        if (!lowercase_name(p, t) || is_keyword(p, t)) {
            syntax(p, t, "a path name (lowercase)");
            goto fail;
        }
        if (n->n_keys > 0) {
            fatal(p, t->pos, "keys are only allowed at the end of a path");
            goto fail;
        }
        if (used + t->len + 2 > sizeof name) {
            fatal(p, t->pos, "path too long");
            goto fail;
        }
        if (used > 0) {
            name[used++] = '.';
        }
        memcpy(name + used, p->text + t->pos, t->len);
        used += t->len;
        name[used] = '\0';
        p->i++;
        while (accept_punct(p, '[')) {
            if (!add_key(p, n)) {
                goto fail;
            }
        }
        if (!accept_punct(p, '.')) {
            break;
        }
    }
    if (n != NULL && resolve_path(p, n, name)) {
        return n;
    }
fail:
    node_free(n);
    return NULL;
}

static ottl_node_t *parse_list(parser_t *p)
{
    ottl_node_t *n = node_new(p, N_LIST, cur(p)->pos);
    if (n == NULL || !deeper(p)) {
        node_free(n);
        return NULL;
    }
    p->i++; /* '[' */
    if (!accept_punct(p, ']')) {
        do {
            ottl_node_t *item = parse_math(p);
            if (item == NULL || !add_kid(p, n, item)) {
                node_free(n);
                return NULL;
            }
        } while (accept_punct(p, ','));
        if (!expect_punct(p, ']', "\",\" or \"]\"")) {
            node_free(n);
            return NULL;
        }
    }
    p->depth--;
    return n;
}

static ottl_node_t *parse_enum(parser_t *p)
{
    const tok_t *t = cur(p);
    const char *s = p->text + t->pos;
    for (size_t i = 0; i < t->len; i++) {
        if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_')) {
            syntax(p, t, "a value");
            return NULL;
        }
    }
    char name[128];
    snprintf(name, sizeof name, "%.*s", (int)(t->len < 127 ? t->len : 127), s);
    int64_t v = 0;
    if (!proc_filter_ottl_enum_find(p->ctx, name, &v)) {
        fatal(p, t->pos, "unknown enum %s in the %s context", name,
              proc_filter_ottl_ctx_name(p->ctx));
        return NULL;
    }
    ottl_node_t *n = node_new(p, N_LIT, t->pos);
    if (n != NULL) {
        n->lit = (ov_t){.kind = OV_INT, .i = v};
        p->i++;
    }
    return n;
}

static ottl_node_t *parse_call(parser_t *p);

static ottl_node_t *parse_word(parser_t *p)
{
    const tok_t *t = cur(p);
    const char *s = p->text + t->pos;
    bool call = is_punct(&p->t[p->i + 1], '(');
    if (is_word(p, t, "nil") || is_word(p, t, "true") || is_word(p, t, "false")) {
        ottl_node_t *n = node_new(p, N_LIT, t->pos);
        if (n != NULL) {
            n->lit = is_word(p, t, "nil") ? (ov_t){.kind = OV_NIL}
                                          : (ov_t){.kind = OV_BOOL, .b = is_word(p, t, "true")};
            p->i++;
        }
        return n;
    }
    if (is_keyword(p, t)) {
        syntax(p, t, "a value");
        return NULL;
    }
    if (s[0] >= 'A' && s[0] <= 'Z') {
        return call ? parse_call(p) : parse_enum(p);
    }
    if (call) {
        fatal(p, t->pos, "converter names must start with an uppercase letter but got '%.*s'",
              (int)(t->len > 64 ? 64 : t->len), s);
        return NULL;
    }
    return parse_path(p);
}

static ottl_node_t *parse_operand(parser_t *p)
{
    const tok_t *t = cur(p);
    switch (t->kind) {
    case TK_STRING:
    case TK_INT:
    case TK_FLOAT:
    case TK_BYTES:
        return literal(p, t);
    case TK_IDENT:
        return parse_word(p);
    default:
        break;
    }
    if (is_punct(t, '[')) {
        return parse_list(p);
    }
    if (is_punct(t, '{')) {
        fatal(p, t->pos, "map literals are not supported by otelmon's filter");
        return NULL;
    }
    syntax(p, t, "a value");
    return NULL;
}

/* ---- calls ------------------------------------------------------------------------------- */

static void known_functions(parser_t *p, char *out, size_t n)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < N_FNS && used < n; i++) {
        if (fns[i].only_ctx >= 0 && fns[i].only_ctx != (int)p->ctx) {
            continue;
        }
        int w = snprintf(out + used, n - used, "%s%s", used > 0 ? ", " : "", fns[i].name);
        used += w > 0 ? (size_t)w : 0;
    }
}

static bool literal_arg(parser_t *p, const ottl_node_t *call, size_t i, ov_kind_t kind,
                        const char *what)
{
    const ottl_node_t *a = call->kids[i];
    if (a->kind != N_LIT || a->lit.kind != kind) {
        fatal(p, a->pos, "%s", what);
        return false;
    }
    return true;
}

/* The rules of each function's arguments that can be checked now. */
static bool check_args(parser_t *p, ottl_node_t *n)
{
    for (size_t i = 0; i < n->n_kids; i++) {
        if (n->kids[i]->kind == N_LIST && !(n->fn == F_CONCAT && i == 0)) {
            fatal(p, n->kids[i]->pos, "a list is only allowed as Concat's first argument");
            return false;
        }
    }
    switch (n->fn) {
    case F_IS_MATCH: {
        if (!literal_arg(p, n, 1, OV_STR, "IsMatch's pattern must be a string literal")) {
            return false;
        }
        om_err_t rerr = {0};
        const ottl_node_t *pat = n->kids[1];
        int rc = proc_filter_re_compile(pat->lit.s.p, pat->lit.s.n, &n->re, &rerr);
        if (rc == OM_ENOMEM) {
            oom(p);
        } else if (rc != 0) {
            fatal(p, pat->pos, "%s", rerr.msg);
        }
        return rc == 0;
    }
    case F_CONCAT:
        if (n->kids[0]->kind != N_LIST) {
            fatal(p, n->kids[0]->pos, "Concat's first argument must be a list: [a, b, ...]");
            return false;
        }
        return true;
    case F_TRACE_ID:
    case F_SPAN_ID: {
        size_t want = n->fn == F_TRACE_ID ? 16 : 8;
        if (!literal_arg(p, n, 0, OV_BYTES, "the id must be a bytes literal (0x...)")) {
            return false;
        }
        if (n->kids[0]->lit.s.n != want) {
            fatal(p, n->kids[0]->pos, "%s must be %zu bytes",
                  n->fn == F_TRACE_ID ? "traceids" : "spanids", want);
            return false;
        }
        return true;
    }
    case F_HAS_ATTR_ON_DATAPOINT:
        return literal_arg(p, n, 0, OV_STR, "the key must be a string literal") &&
               literal_arg(p, n, 1, OV_STR, "the value must be a string literal");
    case F_HAS_ATTR_KEY_ON_DATAPOINT:
        return literal_arg(p, n, 0, OV_STR, "the key must be a string literal");
    default:
        return true;
    }
}

static bool parse_args(parser_t *p, ottl_node_t *n)
{
    if (accept_punct(p, ')')) {
        return true;
    }
    do {
        const tok_t *t = cur(p);
        if (t->kind == TK_IDENT && is_punct(&p->t[p->i + 1], '=')) {
            fatal(p, t->pos, "named arguments are not supported by otelmon's filter");
            return false;
        }
        ottl_node_t *a = is_punct(t, '[') ? parse_list(p) : parse_math(p);
        if (a == NULL || !add_kid(p, n, a)) {
            return false;
        }
    } while (accept_punct(p, ','));
    return expect_punct(p, ')', "\",\" or \")\"");
}

static ottl_node_t *parse_call(parser_t *p)
{
    const tok_t *t = cur(p);
    const fn_def_t *def = NULL;
    for (size_t i = 0; i < N_FNS; i++) {
        if (strlen(fns[i].name) == t->len && memcmp(fns[i].name, p->text + t->pos, t->len) == 0 &&
            (fns[i].only_ctx < 0 || fns[i].only_ctx == (int)p->ctx)) {
            def = &fns[i];
        }
    }
    if (def == NULL) {
        char known[400];
        known_functions(p, known, sizeof known);
        fatal(p, t->pos, "unknown function %.*s in the %s context (otelmon's filter knows: %s)",
              (int)(t->len > 64 ? 64 : t->len), p->text + t->pos, proc_filter_ottl_ctx_name(p->ctx),
              known);
        return NULL;
    }
    ottl_node_t *n = node_new(p, N_CALL, t->pos);
    if (n == NULL || !deeper(p)) {
        node_free(n);
        return NULL;
    }
    n->fn = def->fn;
    p->i += 2; /* the name and '(' */
    if (!parse_args(p, n)) {
        node_free(n);
        return NULL;
    }
    p->depth--;
    if (n->n_kids != def->n_args) {
        fatal(p, n->pos, "%s takes %zu argument%s, got %zu", def->name, def->n_args,
              def->n_args == 1 ? "" : "s", n->n_kids);
        node_free(n);
        return NULL;
    }
    if (is_punct(cur(p), '[')) {
        fatal(p, cur(p)->pos, "indexing what a function returns is not supported");
        node_free(n);
        return NULL;
    }
    if (!check_args(p, n)) {
        node_free(n);
        return NULL;
    }
    return n;
}

/* ---- arithmetic -------------------------------------------------------------------------- */

/* Literals that are no number cannot take part in arithmetic (otelcol's grammar has no place
 * for them there). */
static bool math_operand_ok(parser_t *p, const ottl_node_t *n)
{
    if (n->kind == N_LIST ||
        (n->kind == N_LIT && n->lit.kind != OV_INT && n->lit.kind != OV_DOUBLE)) {
        fatal(p, n->pos, "only numbers, paths and functions can take part in arithmetic");
        return false;
    }
    return true;
}

static ottl_node_t *math_node(parser_t *p, ottl_node_t *l, int op, size_t pos, ottl_node_t *r)
{
    ottl_node_t *n = NULL;
    if (math_operand_ok(p, l) && math_operand_ok(p, r)) {
        n = node_new(p, N_MATH, pos);
    }
    if (n == NULL) {
        node_free(l);
        node_free(r);
        return NULL;
    }
    n->op = op;
    n->kids = om_calloc(2, sizeof *n->kids);
    if (n->kids == NULL) {
        node_free(l);
        node_free(r);
        node_free(n);
        oom(p);
        return NULL;
    }
    n->kids[0] = l;
    n->kids[1] = r;
    n->n_kids = 2;
    return n;
}

static ottl_node_t *parse_factor(parser_t *p)
{
    if (!is_punct(cur(p), '(')) {
        return parse_operand(p);
    }
    if (!deeper(p)) {
        return NULL;
    }
    p->i++;
    ottl_node_t *n = parse_math(p);
    if (n != NULL && !expect_punct(p, ')', "\")\" or an operator")) {
        node_free(n);
        n = NULL;
    }
    p->depth--;
    return n;
}

static ottl_node_t *parse_term(parser_t *p)
{
    ottl_node_t *l = parse_factor(p);
    /* Bounded by the tokens: each turn consumes an operator. */
    while (l != NULL && cur(p)->kind == TK_MATH && (cur(p)->op == '*' || cur(p)->op == '/')) {
        const tok_t *op = cur(p);
        p->i++;
        ottl_node_t *r = parse_factor(p);
        if (r == NULL) {
            node_free(l);
            return NULL;
        }
        l = math_node(p, l, op->op, op->pos, r);
    }
    return l;
}

static ottl_node_t *parse_math(parser_t *p)
{
    ottl_node_t *l = parse_term(p);
    while (l != NULL && cur(p)->kind == TK_MATH && (cur(p)->op == '+' || cur(p)->op == '-')) {
        const tok_t *op = cur(p);
        p->i++;
        ottl_node_t *r = parse_term(p);
        if (r == NULL) {
            node_free(l);
            return NULL;
        }
        l = math_node(p, l, op->op, op->pos, r);
    }
    return l;
}

/* ---- booleans ---------------------------------------------------------------------------- */

static bool returns_bool(const ottl_node_t *n)
{
    if (n->kind == N_LIT) {
        return n->lit.kind == OV_BOOL;
    }
    const fn_def_t *def = n->kind == N_CALL ? fn_by_id(n->fn) : NULL;
    return def != NULL && def->ret == R_BOOL;
}

static ottl_node_t *parse_comparison(parser_t *p)
{
    ottl_node_t *l = parse_math(p);
    if (l == NULL) {
        return NULL;
    }
    const tok_t *op = cur(p);
    if (op->kind != TK_OP) {
        if (returns_bool(l)) {
            return l;
        }
        if (l->kind == N_CALL) {
            fatal(p, l->pos, "a condition must be a boolean, and this function returns none");
        } else {
            syntax(p, op, "a comparison operator: ==, !=, <, <=, >, >=");
        }
        node_free(l);
        return NULL;
    }
    p->i++;
    ottl_node_t *r = parse_math(p);
    ottl_node_t *n = r != NULL ? node_new(p, N_CMP, op->pos) : NULL;
    if (n == NULL) {
        node_free(l);
        node_free(r);
        return NULL;
    }
    n->op = op->op;
    if (!add_kid(p, n, l)) {
        node_free(r);
        node_free(n);
        return NULL;
    }
    if (!add_kid(p, n, r)) {
        node_free(n);
        return NULL;
    }
    if (l->kind == N_LIST || r->kind == N_LIST) {
        fatal(p, (l->kind == N_LIST ? l : r)->pos,
              "a list is only allowed as Concat's first argument");
        node_free(n);
        return NULL;
    }
    return n;
}

/* "(" or_expr ")" not followed by an operator: a boolean group. Anything else goes back to
 * where it started (unless an error was fatal). */
static ottl_node_t *try_group(parser_t *p)
{
    size_t start = p->i;
    if (p->not_group[start] || !deeper(p)) {
        return NULL;
    }
    p->i++;
    ottl_node_t *n = parse_or(p);
    p->depth--;
    if (n != NULL && accept_punct(p, ')') && cur(p)->kind != TK_OP && cur(p)->kind != TK_MATH) {
        return n;
    }
    if (n != NULL && !failed(p)) {
        syntax(p, cur(p), "\")\"");
    }
    node_free(n);
    p->i = start;
    p->not_group[start] = true;
    return NULL;
}

static ottl_node_t *parse_bool_value(parser_t *p)
{
    const tok_t *t = cur(p);
    bool negate = is_word(p, t, "not");
    if (negate) {
        p->i++;
    }
    ottl_node_t *v = NULL;
    if (is_punct(cur(p), '(')) {
        v = try_group(p);
    }
    if (v == NULL && !failed(p)) {
        v = parse_comparison(p);
    }
    if (v == NULL || !negate) {
        return v;
    }
    ottl_node_t *n = node_new(p, N_NOT, t->pos);
    if (n == NULL || !add_kid(p, n, v)) {
        node_free(n != NULL ? n : v);
        return NULL;
    }
    return n;
}

/* kind N_AND over bool values, or N_OR over and-terms; a single operand is returned as is. */
static ottl_node_t *parse_chain(parser_t *p, ottl_node_kind_t kind)
{
    const char *word = kind == N_OR ? "or" : "and";
    size_t pos = cur(p)->pos;
    ottl_node_t *first = kind == N_OR ? parse_chain(p, N_AND) : parse_bool_value(p);
    if (first == NULL || !is_word(p, cur(p), word)) {
        return first;
    }
    ottl_node_t *n = node_new(p, kind, pos);
    if (n == NULL || !add_kid(p, n, first)) {
        node_free(n != NULL ? n : first);
        return NULL;
    }
    /* Bounded by the tokens: each turn consumes the keyword. */
    while (is_word(p, cur(p), word)) {
        p->i++;
        ottl_node_t *next = kind == N_OR ? parse_chain(p, N_AND) : parse_bool_value(p);
        if (next == NULL || !add_kid(p, n, next)) {
            node_free(n);
            return NULL;
        }
    }
    return n;
}

static ottl_node_t *parse_or(parser_t *p)
{
    return parse_chain(p, N_OR);
}

/* ---- entry points ------------------------------------------------------------------------ */

/* Whether every path of the tree can be read from the wire. Bounded by the tree's size. */
static bool tree_wire_ok(ottl_ctx_t ctx, const ottl_node_t *n)
{
    if (n->kind == N_PATH && !proc_filter_ottl_wire_path_ok(ctx, n->path, n->n_keys)) {
        return false;
    }
    if (n->kind == N_CALL &&
        (n->fn == F_HAS_ATTR_KEY_ON_DATAPOINT || n->fn == F_HAS_ATTR_ON_DATAPOINT)) {
        return false;
    }
    for (size_t i = 0; i < n->n_kids; i++) {
        if (!tree_wire_ok(ctx, n->kids[i])) {
            return false;
        }
    }
    return true;
}

int proc_filter_ottl_compile(ottl_ctx_t ctx, const char *text, ottl_expr_t **out, om_err_t *err)
{
    *out = NULL;
    tok_t *toks = NULL;
    size_t n = 0;
    int rc = proc_filter_ottl_lex(text, &toks, &n, err);
    if (rc != 0) {
        return rc;
    }
    parser_t p = {.text = text, .t = toks, .n = n, .ctx = ctx, .err = err};
    p.not_group = om_calloc(n, sizeof *p.not_group);
    if (p.not_group == NULL) {
        proc_filter_ottl_toks_free(toks, n);
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    ottl_node_t *root = parse_or(&p);
    if (root != NULL && cur(&p)->kind != TK_END) {
        syntax(&p, cur(&p), "\"and\", \"or\" or the end of the condition");
        node_free(root);
        root = NULL;
    }
    proc_filter_ottl_toks_free(toks, n);
    om_free(p.not_group);
    if (root == NULL) {
        if (!p.fatal) {
            om_err_set(err, OM_EINVAL, "column %zu: %s", p.syntax_pos + 1, p.syntax_msg);
        }
        return err != NULL && err->code != 0 ? err->code : OM_EINVAL;
    }
    ottl_expr_t *e = om_calloc(1, sizeof *e);
    if (e == NULL) {
        node_free(root);
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    e->ctx = ctx;
    e->root = root;
    e->wire_ok = (ctx == OTTL_CTX_SPAN || ctx == OTTL_CTX_LOG) && tree_wire_ok(ctx, root);
    *out = e;
    return 0;
}

bool proc_filter_ottl_wire_ok(const ottl_expr_t *e)
{
    return e->wire_ok;
}

void proc_filter_ottl_free(ottl_expr_t *e)
{
    if (e == NULL) {
        return;
    }
    node_free(e->root);
    om_free(e);
}
