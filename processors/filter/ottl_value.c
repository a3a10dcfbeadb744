/* ottl_value.c: OTTL values: the scratch they are made in, reading AnyValues, comparing, and
 * turning values into strings exactly as otelcol does (Go's strconv, encoding/json and
 * pcommon's AsString), because users write regexes and string comparisons against those
 * strings. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filter.h"

/* ---- scratch ----------------------------------------------------------------------------- */

struct scratch_chunk {
    scratch_chunk_t *next;
    size_t cap, used;
    /* The data follows, 16-byte aligned. */
    _Alignas(16) char data[];
};

enum { CHUNK_MIN = 4096 };

char *proc_filter_scratch_alloc(ottl_scratch_t *s, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if (n > OTTL_SCRATCH_MAX || s->used > OTTL_SCRATCH_MAX - n) {
        snprintf(s->msg, sizeof s->msg, "a value made while evaluating exceeds %zu bytes",
                 (size_t)OTTL_SCRATCH_MAX);
        return NULL;
    }
    scratch_chunk_t *c = s->chunks;
    if (c == NULL || c->cap - c->used < n) {
        size_t cap = n > CHUNK_MIN ? n : CHUNK_MIN;
        scratch_chunk_t *nc = om_malloc(sizeof *nc + cap);
        if (nc == NULL) {
            snprintf(s->msg, sizeof s->msg, "out of memory");
            s->oom = true;
            return NULL;
        }
        nc->cap = cap;
        nc->used = 0;
        nc->next = c;
        s->chunks = c = nc;
    }
    char *p = c->data + c->used;
    c->used += n;
    s->used += n;
    return p;
}

/* Keeps the newest chunk (the usual case needs one), frees the others. */
void proc_filter_scratch_reset(ottl_scratch_t *s)
{
    scratch_chunk_t *c = s->chunks;
    if (c != NULL) {
        scratch_chunk_t *rest = c->next;
        c->next = NULL;
        c->used = 0;
        while (rest != NULL) {
            scratch_chunk_t *next = rest->next;
            om_free(rest);
            rest = next;
        }
    }
    s->used = 0;
    s->oom = false;
    s->msg[0] = '\0';
}

void proc_filter_scratch_free(ottl_scratch_t *s)
{
    proc_filter_scratch_reset(s);
    om_free(s->chunks);
    s->chunks = NULL;
}

/* ---- reading data ------------------------------------------------------------------------ */

const om_anyvalue_t *proc_filter_kv_get(om_keyvalue_t *const *kv, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++) {
        if (kv[i] != NULL && kv[i]->key != NULL && strcmp(kv[i]->key, key) == 0) {
            return kv[i]->value;
        }
    }
    return NULL;
}

ov_t proc_filter_ov_from_any(const om_anyvalue_t *v)
{
    ov_t o = {.kind = OV_NIL};
    if (v == NULL) {
        return o;
    }
    switch (v->value_case) {
    case OM_ANYVALUE_STRING:
        o.kind = OV_STR;
        o.s.p = v->string_value != NULL ? v->string_value : "";
        o.s.n = strlen(o.s.p);
        break;
    case OM_ANYVALUE_BOOL:
        o.kind = OV_BOOL;
        o.b = v->bool_value != 0;
        break;
    case OM_ANYVALUE_INT:
        o.kind = OV_INT;
        o.i = v->int_value;
        break;
    case OM_ANYVALUE_DOUBLE:
        o.kind = OV_DOUBLE;
        o.d = v->double_value;
        break;
    case OM_ANYVALUE_BYTES:
        o.kind = OV_BYTES;
        o.s.p = (const char *)v->bytes_value.data;
        o.s.n = v->bytes_value.len;
        break;
    case OM_ANYVALUE_KVLIST:
        o.kind = OV_MAP;
        o.map.kv = v->kvlist_value != NULL ? v->kvlist_value->values : NULL;
        o.map.n = v->kvlist_value != NULL ? v->kvlist_value->n_values : 0;
        break;
    case OM_ANYVALUE_ARRAY:
        o.kind = OV_LIST;
        o.list.v = v->array_value != NULL ? v->array_value->values : NULL;
        o.list.n = v->array_value != NULL ? v->array_value->n_values : 0;
        break;
    default:
        break;
    }
    return o;
}

/* ---- comparing --------------------------------------------------------------------------- */

static bool invalid(ottl_cmp_t op)
{
    return op == OTTL_NE;
}

static bool cmp_order(int c, ottl_cmp_t op)
{
    switch (op) {
    case OTTL_EQ:
        return c == 0;
    case OTTL_NE:
        return c != 0;
    case OTTL_LT:
        return c < 0;
    case OTTL_LE:
        return c <= 0;
    case OTTL_GT:
        return c > 0;
    default:
        return c >= 0;
    }
}

/* Go's float comparisons: NaN is unequal and unordered. */
static bool cmp_double(double a, double b, ottl_cmp_t op)
{
    switch (op) {
    case OTTL_EQ:
        return a == b;
    case OTTL_NE:
        return a != b;
    case OTTL_LT:
        return a < b;
    case OTTL_LE:
        return a <= b;
    case OTTL_GT:
        return a > b;
    default:
        return a >= b;
    }
}

static int cmp_bytes(const char *a, size_t an, const char *b, size_t bn)
{
    size_t n = an < bn ? an : bn;
    int c = n > 0 ? memcmp(a, b, n) : 0;
    return c != 0 ? c : (an < bn ? -1 : an > bn ? 1 : 0);
}

static bool any_equal(const om_anyvalue_t *a, const om_anyvalue_t *b);

/* pcommon.Map.Equal: the same number of entries, and each key's value equal in the other. */
static bool map_equal(om_keyvalue_t *const *a, size_t an, om_keyvalue_t *const *b, size_t bn)
{
    if (an != bn) {
        return false;
    }
    for (size_t i = 0; i < an; i++) {
        if (a[i] == NULL || a[i]->key == NULL) {
            continue;
        }
        bool found = false;
        for (size_t j = 0; j < bn && !found; j++) {
            found = b[j] != NULL && b[j]->key != NULL && strcmp(a[i]->key, b[j]->key) == 0;
            if (found && !any_equal(a[i]->value, b[j]->value)) {
                return false;
            }
        }
        if (!found) {
            return false;
        }
    }
    return true;
}

static bool list_equal(om_anyvalue_t *const *a, size_t an, om_anyvalue_t *const *b, size_t bn)
{
    if (an != bn) {
        return false;
    }
    for (size_t i = 0; i < an; i++) {
        if (!any_equal(a[i], b[i])) {
            return false;
        }
    }
    return true;
}

/* pcommon.Value.Equal. Recursion is bounded by the nesting the decoder accepted. */
static bool any_equal(const om_anyvalue_t *a, const om_anyvalue_t *b)
{
    ov_t x = proc_filter_ov_from_any(a), y = proc_filter_ov_from_any(b);
    if (x.kind != y.kind) {
        return false;
    }
    switch (x.kind) {
    case OV_NIL:
        return true;
    case OV_BOOL:
        return x.b == y.b;
    case OV_INT:
        return x.i == y.i;
    case OV_DOUBLE:
        return x.d == y.d;
    case OV_STR:
    case OV_BYTES:
        return x.s.n == y.s.n && cmp_bytes(x.s.p, x.s.n, y.s.p, y.s.n) == 0;
    case OV_MAP:
        return map_equal(x.map.kv, x.map.n, y.map.kv, y.map.n);
    case OV_LIST:
        return list_equal(x.list.v, x.list.n, y.list.v, y.list.n);
    default:
        return false;
    }
}

static bool is_nil(const ov_t *v)
{
    /* An empty byte slice reads as a nil []byte in otelcol, and compares as nil. */
    return v->kind == OV_NIL || (v->kind == OV_BYTES && v->s.n == 0);
}

static bool cmp_numbers(const ov_t *a, const ov_t *b, ottl_cmp_t op)
{
    if (a->kind == OV_INT && b->kind == OV_INT) {
        return cmp_order(a->i < b->i ? -1 : a->i > b->i ? 1 : 0, op);
    }
    double x = a->kind == OV_INT ? (double)a->i : a->d;
    double y = b->kind == OV_INT ? (double)b->i : b->d;
    return cmp_double(x, y, op);
}

bool proc_filter_ov_compare(const ov_t *a, const ov_t *b, ottl_cmp_t op)
{
    bool an = is_nil(a), bn = is_nil(b);
    if (an && bn) {
        return op == OTTL_EQ || op == OTTL_LE || op == OTTL_GE;
    }
    if (an || bn) {
        return invalid(op);
    }
    bool a_num = a->kind == OV_INT || a->kind == OV_DOUBLE;
    bool b_num = b->kind == OV_INT || b->kind == OV_DOUBLE;
    if (a_num || b_num) {
        return a_num && b_num ? cmp_numbers(a, b, op) : invalid(op);
    }
    if (a->kind != b->kind) {
        return invalid(op);
    }
    switch (a->kind) {
    case OV_BOOL:
        return cmp_order((int)a->b - (int)b->b, op);
    case OV_STR:
    case OV_BYTES:
        return cmp_order(cmp_bytes(a->s.p, a->s.n, b->s.p, b->s.n), op);
    case OV_MAP:
        if (op != OTTL_EQ && op != OTTL_NE) {
            return invalid(op);
        }
        return map_equal(a->map.kv, a->map.n, b->map.kv, b->map.n) == (op == OTTL_EQ);
    case OV_LIST:
        if (op != OTTL_EQ && op != OTTL_NE) {
            return invalid(op);
        }
        return list_equal(a->list.v, a->list.n, b->list.v, b->list.n) == (op == OTTL_EQ);
    case OV_TRACE_ID:
    case OV_SPAN_ID:
        /* Go's == on the ID types: equal or not, never ordered. */
        if (op != OTTL_EQ && op != OTTL_NE) {
            return invalid(op);
        }
        return (memcmp(a->id, b->id, a->kind == OV_TRACE_ID ? 16 : 8) == 0) == (op == OTTL_EQ);
    default:
        return invalid(op);
    }
}

/* ---- strings as Go writes them ------------------------------------------------------------ */

static void put_hex_byte(om_strbuf_t *b, uint8_t c)
{
    static const char hex[] = "0123456789abcdef";
    om_strbuf_putc(b, hex[c >> 4]);
    om_strbuf_putc(b, hex[c & 15]);
}

static void put_base64(om_strbuf_t *b, const uint8_t *p, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        v |= i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0;
        v |= i + 2 < n ? p[i + 2] : 0;
        om_strbuf_putc(b, tab[(v >> 18) & 63]);
        om_strbuf_putc(b, tab[(v >> 12) & 63]);
        om_strbuf_putc(b, i + 1 < n ? tab[(v >> 6) & 63] : '=');
        om_strbuf_putc(b, i + 2 < n ? tab[v & 63] : '=');
    }
}

/* The shortest decimal digits that read back as d (d finite, not 0), and the exponent e such
 * that d = 0.DIGITS * 10^e. digits gets at most 17 digits and a NUL. */
static void shortest_digits(double d, char digits[24], int *e)
{
    char buf[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*e", prec - 1, d);
        if (strtod(buf, NULL) == d || prec == 17) {
            break;
        }
    }
    /* buf is "[-]D[.DDD]e[+-]XX". */
    const char *p = buf[0] == '-' ? buf + 1 : buf;
    size_t k = 0;
    for (; *p != 'e'; p++) {
        if (*p != '.') {
            digits[k++] = *p;
        }
    }
    digits[k] = '\0';
    *e = atoi(p + 1) + 1;
    while (k > 1 && digits[k - 1] == '0') {
        digits[--k] = '\0';
    }
}

/* strconv.FormatFloat(d, fmt, -1, 64) for fmt 'f' or 'e', and encoding/json's choice between
 * them when json is set (exponent form below 1e-6 and from 1e21 on, "e-07" written "e-7"). */
static void put_float(om_strbuf_t *b, double d, bool json)
{
    if (d == 0) {
        om_strbuf_puts(b, signbit(d) ? "-0" : "0");
        return;
    }
    char digits[24];
    int e = 0;
    shortest_digits(d, digits, &e);
    size_t nd = strlen(digits);
    if (d < 0) {
        om_strbuf_putc(b, '-');
    }
    double a = fabs(d);
    if (json && (a < 1e-6 || a >= 1e21)) {
        om_strbuf_putc(b, digits[0]);
        if (nd > 1) {
            om_strbuf_putc(b, '.');
            om_strbuf_puts(b, digits + 1);
        }
        /* Go writes at least two exponent digits and encoding/json drops the 0 of "e-07";
         * exponents here are >= 21 or <= -7, so that is the plain number. */
        int x = e - 1;
        om_strbuf_printf(b, "e%c%d", x < 0 ? '-' : '+', x < 0 ? -x : x);
        return;
    }
    if (e <= 0) {
        om_strbuf_puts(b, "0.");
        for (int i = 0; i < -e; i++) {
            om_strbuf_putc(b, '0');
        }
        om_strbuf_puts(b, digits);
        return;
    }
    for (int i = 0; i < e; i++) {
        om_strbuf_putc(b, (size_t)i < nd ? digits[i] : '0');
    }
    if ((size_t)e < nd) {
        om_strbuf_putc(b, '.');
        om_strbuf_puts(b, digits + e);
    }
}

/* One UTF-8 sequence at p (n bytes left): its code point and length, or -1 and 1 when the
 * bytes are not valid UTF-8 (as Go's utf8.DecodeRune reports RuneError). */
static long utf8_next(const uint8_t *p, size_t n, size_t *len)
{
    *len = 1;
    if (p[0] < 0x80) {
        return p[0];
    }
    size_t need = p[0] >= 0xF0 ? 4 : p[0] >= 0xE0 ? 3 : p[0] >= 0xC2 ? 2 : 0;
    if (need == 0 || need > n || p[0] > 0xF4) {
        return -1;
    }
    long cp = p[0] & (0x7F >> need);
    for (size_t i = 1; i < need; i++) {
        if ((p[i] & 0xC0) != 0x80) {
            return -1;
        }
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    static const long min[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min[need] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
        return -1;
    }
    *len = need;
    return cp;
}

/* A JSON string as Go's encoding/json writes it (HTML-safe escapes, bad UTF-8 as \ufffd). */
static void put_json_string(om_strbuf_t *b, const char *s, size_t n)
{
    om_strbuf_putc(b, '"');
    for (size_t i = 0; i < n;) {
        uint8_t c = (uint8_t)s[i];
        size_t len = 1;
        long cp = utf8_next((const uint8_t *)s + i, n - i, &len);
        if (cp < 0) {
            om_strbuf_puts(b, "\\ufffd");
        } else if (c == '"' || c == '\\') {
            om_strbuf_putc(b, '\\');
            om_strbuf_putc(b, (char)c);
        } else if (c == '\n' || c == '\r' || c == '\t' || c == '\b' || c == '\f') {
            om_strbuf_putc(b, '\\');
            om_strbuf_putc(b, c == '\n'   ? 'n'
                              : c == '\r' ? 'r'
                              : c == '\t' ? 't'
                              : c == '\b' ? 'b'
                                          : 'f');
        } else if (c < 0x20 || c == '<' || c == '>' || c == '&') {
            om_strbuf_puts(b, "\\u00");
            put_hex_byte(b, c);
        } else if (cp == 0x2028 || cp == 0x2029) {
            om_strbuf_printf(b, "\\u%04lx", cp);
        } else {
            om_strbuf_append(b, s + i, len);
        }
        i += len;
    }
    om_strbuf_putc(b, '"');
}

static int put_json_any(om_strbuf_t *b, const om_anyvalue_t *v, int depth);

typedef struct key_ref {
    const char *key;
    size_t index;
} key_ref_t;

static int key_ref_cmp(const void *x, const void *y)
{
    const key_ref_t *a = x, *b = y;
    int c = strcmp(a->key, b->key);
    return c != 0 ? c : (a->index < b->index ? -1 : 1);
}

/* A map as encoding/json writes map[string]any: keys sorted bytewise; of duplicate keys the
 * last wins (pcommon's AsRaw). */
static int put_json_map(om_strbuf_t *b, om_keyvalue_t *const *kv, size_t n, int depth)
{
    key_ref_t *refs = om_calloc(n > 0 ? n : 1, sizeof *refs);
    if (refs == NULL) {
        return OM_ENOMEM;
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (kv[i] != NULL && kv[i]->key != NULL) {
            refs[m++] = (key_ref_t){kv[i]->key, i};
        }
    }
    qsort(refs, m, sizeof *refs, key_ref_cmp);
    int rc = 0;
    bool first = true;
    om_strbuf_putc(b, '{');
    for (size_t i = 0; i < m && rc == 0; i++) {
        if (i + 1 < m && strcmp(refs[i].key, refs[i + 1].key) == 0) {
            continue;
        }
        if (!first) {
            om_strbuf_putc(b, ',');
        }
        first = false;
        put_json_string(b, refs[i].key, strlen(refs[i].key));
        om_strbuf_putc(b, ':');
        rc = put_json_any(b, kv[refs[i].index]->value, depth + 1);
    }
    om_strbuf_putc(b, '}');
    om_free(refs);
    return rc;
}

/* Recursion is bounded by the nesting the decoder accepted and by 64 here. */
static int put_json_any(om_strbuf_t *b, const om_anyvalue_t *v, int depth)
{
    if (depth > 64) {
        return OM_EINVAL;
    }
    ov_t o = proc_filter_ov_from_any(v);
    switch (o.kind) {
    case OV_STR:
        put_json_string(b, o.s.p, o.s.n);
        return 0;
    case OV_BOOL:
        om_strbuf_puts(b, o.b ? "true" : "false");
        return 0;
    case OV_INT:
        om_strbuf_printf(b, "%lld", (long long)o.i);
        return 0;
    case OV_DOUBLE:
        if (!isfinite(o.d)) {
            return OM_EINVAL; /* json: unsupported value */
        }
        put_float(b, o.d, true);
        return 0;
    case OV_BYTES:
        om_strbuf_putc(b, '"');
        put_base64(b, (const uint8_t *)o.s.p, o.s.n);
        om_strbuf_putc(b, '"');
        return 0;
    case OV_MAP:
        return put_json_map(b, o.map.kv, o.map.n, depth);
    case OV_LIST: {
        om_strbuf_putc(b, '[');
        for (size_t i = 0; i < o.list.n; i++) {
            if (i > 0) {
                om_strbuf_putc(b, ',');
            }
            int rc = put_json_any(b, o.list.v[i], depth + 1);
            if (rc != 0) {
                return rc;
            }
        }
        om_strbuf_putc(b, ']');
        return 0;
    }
    default:
        om_strbuf_puts(b, "null");
        return 0;
    }
}

/* Moves what b holds into the scratch. */
static int finish(om_strbuf_t *b, int rc, ottl_scratch_t *s, const char **out, size_t *n)
{
    if (rc == 0 && b->failed) {
        rc = OM_ENOMEM;
    }
    if (rc == OM_EINVAL) {
        snprintf(s->msg, sizeof s->msg, "the value cannot be written as JSON (NaN or Inf)");
    } else if (rc == OM_ENOMEM) {
        snprintf(s->msg, sizeof s->msg, "out of memory");
        s->oom = true;
    }
    char *p = rc == 0 ? proc_filter_scratch_alloc(s, b->len + 1) : NULL;
    if (rc == 0 && p == NULL) {
        rc = s->oom ? OM_ENOMEM : OM_EINVAL;
    }
    if (p != NULL) {
        memcpy(p, b->data != NULL ? b->data : "", b->len);
        p[b->len] = '\0';
        *out = p;
        *n = b->len;
    }
    om_strbuf_free(b);
    return rc;
}

static void put_id_hex(om_strbuf_t *b, const ov_t *v)
{
    size_t n = v->kind == OV_TRACE_ID ? 16 : 8;
    bool zero = true;
    for (size_t i = 0; i < n; i++) {
        zero = zero && v->id[i] == 0;
    }
    for (size_t i = 0; i < n && !zero; i++) {
        put_hex_byte(b, v->id[i]);
    }
}

int proc_filter_ov_string_like(const ov_t *v, ottl_scratch_t *s, const char **out, size_t *n,
                               bool *nil)
{
    *nil = false;
    *out = "";
    *n = 0;
    if (v->kind == OV_NIL) {
        *nil = true;
        return 0;
    }
    if (v->kind == OV_STR) {
        *out = v->s.p;
        *n = v->s.n;
        return 0;
    }
    om_strbuf_t b;
    om_strbuf_init(&b, OTTL_SCRATCH_MAX);
    int rc = 0;
    switch (v->kind) {
    case OV_BOOL:
        om_strbuf_puts(&b, v->b ? "true" : "false");
        break;
    case OV_INT:
        om_strbuf_printf(&b, "%lld", (long long)v->i);
        break;
    case OV_DOUBLE:
        if (!isfinite(v->d)) {
            rc = OM_EINVAL;
        } else {
            put_float(&b, v->d, true);
        }
        break;
    case OV_BYTES:
        for (size_t i = 0; i < v->s.n; i++) {
            put_hex_byte(&b, (uint8_t)v->s.p[i]);
        }
        break;
    case OV_MAP:
        rc = put_json_map(&b, v->map.kv, v->map.n, 0);
        break;
    case OV_TRACE_ID:
    case OV_SPAN_ID:
        put_id_hex(&b, v);
        break;
    default: /* OV_LIST */
        om_strbuf_putc(&b, '[');
        for (size_t i = 0; i < v->list.n && rc == 0; i++) {
            if (i > 0) {
                om_strbuf_putc(&b, ',');
            }
            rc = put_json_any(&b, v->list.v[i], 1);
        }
        om_strbuf_putc(&b, ']');
        break;
    }
    return finish(&b, rc, s, out, n);
}

int proc_filter_any_as_string(const om_anyvalue_t *v, ottl_scratch_t *s, const char **out,
                              size_t *n)
{
    ov_t o = proc_filter_ov_from_any(v);
    *out = "";
    *n = 0;
    if (o.kind == OV_NIL) {
        return 0;
    }
    if (o.kind == OV_STR) {
        *out = o.s.p;
        *n = o.s.n;
        return 0;
    }
    om_strbuf_t b;
    om_strbuf_init(&b, OTTL_SCRATCH_MAX);
    int rc = 0;
    switch (o.kind) {
    case OV_BOOL:
        om_strbuf_puts(&b, o.b ? "true" : "false");
        break;
    case OV_INT:
        om_strbuf_printf(&b, "%lld", (long long)o.i);
        break;
    case OV_DOUBLE:
        if (isnan(o.d)) {
            om_strbuf_puts(&b, "NaN");
        } else if (isinf(o.d)) {
            om_strbuf_puts(&b, o.d > 0 ? "+Inf" : "-Inf");
        } else {
            put_float(&b, o.d, false);
        }
        break;
    case OV_BYTES:
        put_base64(&b, (const uint8_t *)o.s.p, o.s.n);
        break;
    default: /* maps and lists */
        rc = put_json_any(&b, v, 0);
        break;
    }
    return finish(&b, rc, s, out, n);
}
