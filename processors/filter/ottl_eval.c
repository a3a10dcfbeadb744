/* ottl_eval.c: evaluating a compiled condition on one item, with otelcol's semantics:
 * "and" and "or" stop at the first operand that decides (an error there stops everything);
 * comparisons follow proc_filter_ov_compare; arithmetic is on two ints or two doubles only
 * (dividing by zero is an error); functions behave as pkg/ottl/ottlfuncs documents them.
 * Recursion is bounded by the tree's depth (OTTL_MAX_DEPTH at compile time). */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filter.h"

static int eval_value(const ottl_node_t *n, const ottl_item_t *it, ottl_scratch_t *s, ov_t *out);
static int eval_bool(const ottl_node_t *n, const ottl_item_t *it, ottl_scratch_t *s);

static int fail(ottl_scratch_t *s, const char *fmt, ...) OM_PRINTF(2, 3);

static int fail(ottl_scratch_t *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->msg, sizeof s->msg, fmt, ap);
    va_end(ap);
    return OM_EINVAL;
}

static const char *kind_name(ov_kind_t k)
{
    static const char *const names[] = {
        "nil",    "bool",        "int64",         "float64",         "string",
        "[]byte", "pcommon.Map", "pcommon.Slice", "pcommon.TraceID", "pcommon.SpanID"};
    return names[k];
}

/* ---- paths with keys ---------------------------------------------------------------------- */

/* Indexes v by the path's keys, as otelcol's GetMapValue / getIndexableValue: a missing map
 * key gives nil; a list index out of bounds or indexing something that is no map or list is
 * an error. */
static int apply_keys(const ottl_node_t *n, ov_t *v, ottl_scratch_t *s)
{
    for (size_t k = 0; k < n->n_keys; k++) {
        const ottl_key_t *key = &n->keys[k];
        if (v->kind == OV_MAP && !key->is_int) {
            const om_anyvalue_t *a = proc_filter_kv_get(v->map.kv, v->map.n, key->s);
            if (a == NULL) {
                *v = (ov_t){.kind = OV_NIL};
                return 0;
            }
            *v = proc_filter_ov_from_any(a);
        } else if (v->kind == OV_LIST && key->is_int) {
            if (key->i < 0 || (uint64_t)key->i >= v->list.n) {
                return fail(s, "index %lld out of bounds", (long long)key->i);
            }
            *v = proc_filter_ov_from_any(v->list.v[key->i]);
        } else {
            return fail(s, "type %s does not support %s indexing", kind_name(v->kind),
                        key->is_int ? "int" : "string");
        }
    }
    return 0;
}

/* ---- arithmetic --------------------------------------------------------------------------- */

static int eval_math(const ottl_node_t *n, const ottl_item_t *it, ottl_scratch_t *s, ov_t *out)
{
    ov_t a, b;
    int rc = eval_value(n->kids[0], it, s, &a);
    if (rc == 0) {
        rc = eval_value(n->kids[1], it, s, &b);
    }
    if (rc != 0) {
        return rc;
    }
    if (a.kind == OV_INT && b.kind == OV_INT) {
        /* Go's int64 arithmetic wraps; so does unsigned arithmetic here. */
        uint64_t x = (uint64_t)a.i, y = (uint64_t)b.i;
        out->kind = OV_INT;
        switch (n->op) {
        case '+':
            out->i = (int64_t)(x + y);
            return 0;
        case '-':
            out->i = (int64_t)(x - y);
            return 0;
        case '*':
            out->i = (int64_t)(x * y);
            return 0;
        default:
            if (b.i == 0) {
                return fail(s, "attempted to divide by 0");
            }
            out->i = (a.i == INT64_MIN && b.i == -1) ? INT64_MIN : a.i / b.i;
            return 0;
        }
    }
    if (a.kind == OV_DOUBLE && b.kind == OV_DOUBLE) {
        out->kind = OV_DOUBLE;
        switch (n->op) {
        case '+':
            out->d = a.d + b.d;
            return 0;
        case '-':
            out->d = a.d - b.d;
            return 0;
        case '*':
            out->d = a.d * b.d;
            return 0;
        default:
            if (b.d == 0) {
                return fail(s, "attempted to divide by 0");
            }
            out->d = a.d / b.d;
            return 0;
        }
    }
    return fail(s, "arithmetic needs two int64 or two float64, got %s and %s", kind_name(a.kind),
                kind_name(b.kind));
}

/* ---- functions ---------------------------------------------------------------------------- */

static int fn_is_match(const ottl_node_t *n, const ottl_item_t *it, ottl_scratch_t *s, ov_t *out)
{
    ov_t v;
    int rc = eval_value(n->kids[0], it, s, &v);
    const char *str = NULL;
    size_t len = 0;
    bool nil = false;
    if (rc == 0) {
        rc = proc_filter_ov_string_like(&v, s, &str, &len, &nil);
    }
    if (rc != 0) {
        return rc;
    }
    *out = (ov_t){.kind = OV_BOOL};
    if (nil) {
        return 0;
    }
    rc = proc_filter_re_match(n->re, str, len);
    if (rc == OM_ETOOBIG) {
        return fail(s, "IsMatch: matching /%.64s/ reached the backtracking limit",
                    proc_filter_re_pattern(n->re));
    }
    if (rc < 0) {
        s->oom = true;
        return fail(s, "out of memory");
    }
    out->b = rc == 1;
    return 0;
}

/* Go's strconv.ParseInt(s, 10, 64): an optional sign and decimal digits, nothing else. */
static bool parse_int(const char *p, size_t n, int64_t *out)
{
    char buf[32];
    if (n == 0 || n >= sizeof buf) {
        return false;
    }
    memcpy(buf, p, n);
    buf[n] = '\0';
    size_t i = buf[0] == '+' || buf[0] == '-' ? 1 : 0;
    if (buf[i] == '\0') {
        return false;
    }
    for (size_t j = i; buf[j] != '\0'; j++) {
        if (buf[j] < '0' || buf[j] > '9') {
            return false;
        }
    }
    errno = 0;
    long long v = strtoll(buf, NULL, 10);
    if (errno == ERANGE) {
        return false;
    }
    *out = v;
    return true;
}

/* Go's strconv.ParseFloat(s, 64) for the forms users write (decimal, exponent, inf, nan). */
static bool parse_double(const char *p, size_t n, double *out)
{
    char buf[64];
    if (n == 0 || n >= sizeof buf || p[0] == ' ' || p[0] == '\t' || p[0] == '\n') {
        return false;
    }
    memcpy(buf, p, n);
    buf[n] = '\0';
    char *end = NULL;
    errno = 0;
    double d = strtod(buf, &end);
    if (end == buf || *end != '\0' || (errno == ERANGE && isinf(d))) {
        return false;
    }
    *out = d;
    return true;
}

/* Int(value): int64 as is, float64 truncated, a decimal string parsed, bool as 1 or 0; nil
 * for anything else or a string that is no integer. */
static ov_t to_int(const ov_t *v)
{
    switch (v->kind) {
    case OV_INT:
        return *v;
    case OV_DOUBLE:
        /* Go on amd64 turns NaN and out-of-range values into the smallest int64. */
        if (isnan(v->d) || v->d >= 9223372036854775808.0 || v->d < -9223372036854775808.0) {
            return (ov_t){.kind = OV_INT, .i = INT64_MIN};
        }
        return (ov_t){.kind = OV_INT, .i = (int64_t)v->d};
    case OV_BOOL:
        return (ov_t){.kind = OV_INT, .i = v->b ? 1 : 0};
    case OV_STR: {
        int64_t i = 0;
        return parse_int(v->s.p, v->s.n, &i) ? (ov_t){.kind = OV_INT, .i = i}
                                             : (ov_t){.kind = OV_NIL};
    }
    default:
        return (ov_t){.kind = OV_NIL};
    }
}

static ov_t to_double(const ov_t *v)
{
    switch (v->kind) {
    case OV_DOUBLE:
        return *v;
    case OV_INT:
        return (ov_t){.kind = OV_DOUBLE, .d = (double)v->i};
    case OV_BOOL:
        return (ov_t){.kind = OV_DOUBLE, .d = v->b ? 1 : 0};
    case OV_STR: {
        double d = 0;
        return parse_double(v->s.p, v->s.n, &d) ? (ov_t){.kind = OV_DOUBLE, .d = d}
                                                : (ov_t){.kind = OV_NIL};
    }
    default:
        return (ov_t){.kind = OV_NIL};
    }
}

static int fn_len(const ov_t *v, ottl_scratch_t *s, ov_t *out)
{
    switch (v->kind) {
    case OV_STR:
        *out = (ov_t){.kind = OV_INT, .i = (int64_t)v->s.n};
        return 0;
    case OV_MAP:
        *out = (ov_t){.kind = OV_INT, .i = (int64_t)v->map.n};
        return 0;
    case OV_LIST:
        *out = (ov_t){.kind = OV_INT, .i = (int64_t)v->list.n};
        return 0;
    default:
        return fail(s, "Len: the target must be a string, a slice or a map, got %s",
                    kind_name(v->kind));
    }
}

static int fn_concat(const ottl_node_t *n, const ottl_item_t *it, ottl_scratch_t *s, ov_t *out)
{
    ov_t dv;
    int rc = eval_value(n->kids[1], it, s, &dv);
    if (rc != 0) {
        return rc;
    }
    if (dv.kind != OV_STR) {
        return fail(s, "Concat: the delimiter must be a string, got %s", kind_name(dv.kind));
    }
    const ottl_node_t *list = n->kids[0];
    const char **parts =
        (const char **)proc_filter_scratch_alloc(s, (list->n_kids + 1) * sizeof(char *));
    size_t *lens = (size_t *)proc_filter_scratch_alloc(s, (list->n_kids + 1) * sizeof(size_t));
    if (parts == NULL || lens == NULL) {
        return OM_EINVAL;
    }
    size_t total = 0;
    for (size_t i = 0; i < list->n_kids; i++) {
        ov_t v;
        bool nil = false;
        rc = eval_value(list->kids[i], it, s, &v);
        if (rc == 0) {
            rc = proc_filter_ov_string_like(&v, s, &parts[i], &lens[i], &nil);
        }
        if (rc != 0) {
            return rc;
        }
        if (nil) {
            parts[i] = "<nil>";
            lens[i] = 5;
        }
        total += lens[i] + (i > 0 ? dv.s.n : 0);
    }
    char *p = proc_filter_scratch_alloc(s, total + 1);
    if (p == NULL) {
        return OM_EINVAL;
    }
    size_t o = 0;
    for (size_t i = 0; i < list->n_kids; i++) {
        if (i > 0) {
            memcpy(p + o, dv.s.p, dv.s.n);
            o += dv.s.n;
        }
        memcpy(p + o, parts[i], lens[i]);
        o += lens[i];
    }
    p[o] = '\0';
    *out = (ov_t){.kind = OV_STR, .s = {.p = p, .n = o}};
    return 0;
}

/* Whether a span id reads as all zero: its first 8 bytes, as the id paths read it (a longer
 * one is cut, see ottl_paths.c), so that IsRootSpan() and parent_span_id == SpanID(0x00...)
 * agree, and so does the wire reader. */
static bool id_zero(ProtobufCBinaryData b)
{
    for (size_t i = 0; i < b.len && i < 8; i++) {
        if (b.data[i] != 0) {
            return false;
        }
    }
    return true;
}

/* The data points of a metric, whatever its type: their attribute lists. */
static bool points_have(const om_metric_t *m, const char *key, const char *value)
{
    size_t n = 0;
    void *const *pts = NULL;
    switch (m->data_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
        n = m->gauge->n_data_points;
        pts = (void *const *)m->gauge->data_points;
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
        n = m->sum->n_data_points;
        pts = (void *const *)m->sum->data_points;
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
        n = m->histogram->n_data_points;
        pts = (void *const *)m->histogram->data_points;
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
        n = m->exponential_histogram->n_data_points;
        pts = (void *const *)m->exponential_histogram->data_points;
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
        n = m->summary->n_data_points;
        pts = (void *const *)m->summary->data_points;
        break;
    default:
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        /* Every point type starts with its attributes after the message base. */
        const om_number_dp_t *dp = pts[i];
        om_keyvalue_t *const *kv = NULL;
        size_t nkv = 0;
        if (m->data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE ||
            m->data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM) {
            kv = dp->attributes;
            nkv = dp->n_attributes;
        } else if (m->data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM) {
            kv = ((const om_histogram_dp_t *)pts[i])->attributes;
            nkv = ((const om_histogram_dp_t *)pts[i])->n_attributes;
        } else if (m->data_case ==
                   OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM) {
            kv = ((const om_exp_histogram_dp_t *)pts[i])->attributes;
            nkv = ((const om_exp_histogram_dp_t *)pts[i])->n_attributes;
        } else {
            kv = ((const om_summary_dp_t *)pts[i])->attributes;
            nkv = ((const om_summary_dp_t *)pts[i])->n_attributes;
        }
        const om_anyvalue_t *v = proc_filter_kv_get(kv, nkv, key);
        if (v == NULL) {
            continue;
        }
        /* HasAttrOnDatapoint compares pcommon's Str(), which is "" for other types. */
        const char *str =
            v->value_case == OM_ANYVALUE_STRING && v->string_value != NULL ? v->string_value : "";
        if (value == NULL || strcmp(str, value) == 0) {
            return true;
        }
    }
    return false;
}

static int eval_call(const ottl_node_t *n, const ottl_item_t *it, ottl_scratch_t *s, ov_t *out)
{
    switch (n->fn) {
    case F_IS_MATCH:
        return fn_is_match(n, it, s, out);
    case F_CONCAT:
        return fn_concat(n, it, s, out);
    case F_TRACE_ID:
    case F_SPAN_ID:
        *out = (ov_t){.kind = n->fn == F_TRACE_ID ? OV_TRACE_ID : OV_SPAN_ID};
        memcpy(out->id, n->kids[0]->lit.s.p, n->kids[0]->lit.s.n);
        return 0;
    case F_IS_ROOT_SPAN: {
        if (it->wire != NULL) {
            /* The parent id as the path reads it: all zero (or absent) for a root. */
            ov_t parent;
            int rc = proc_filter_ottl_wire_path(P_SPAN_PARENT_ID, NULL, it->wire, s, &parent);
            static const uint8_t zero[8] = {0};
            *out = (ov_t){.kind = OV_BOOL, .b = rc == 0 && memcmp(parent.id, zero, 8) == 0};
            return rc;
        }
        const om_span_t *sp = it->item->span;
        *out = (ov_t){.kind = OV_BOOL, .b = sp != NULL && id_zero(sp->parent_span_id)};
        return 0;
    }
    case F_HAS_ATTR_KEY_ON_DATAPOINT:
    case F_HAS_ATTR_ON_DATAPOINT:
        if (it->wire != NULL) {
            return OM_ENOTSUP; /* metrics never walk on the wire */
        }
        *out = (ov_t){.kind = OV_BOOL,
                      .b = it->item->metric != NULL &&
                           points_have(it->item->metric, n->kids[0]->lit.s.p,
                                       n->n_kids > 1 ? n->kids[1]->lit.s.p : NULL)};
        return 0;
    default:
        break;
    }
    ov_t v;
    int rc = eval_value(n->kids[0], it, s, &v);
    if (rc != 0) {
        return rc;
    }
    static const ov_kind_t is_kind[] = {
        [F_IS_STRING] = OV_STR,    [F_IS_INT] = OV_INT, [F_IS_BOOL] = OV_BOOL,
        [F_IS_DOUBLE] = OV_DOUBLE, [F_IS_MAP] = OV_MAP, [F_IS_LIST] = OV_LIST};
    switch (n->fn) {
    case F_LEN:
        return fn_len(&v, s, out);
    case F_INT:
        *out = to_int(&v);
        return 0;
    case F_DOUBLE:
        *out = to_double(&v);
        return 0;
    case F_STRING: {
        bool nil = false;
        *out = (ov_t){.kind = OV_STR};
        rc = proc_filter_ov_string_like(&v, s, &out->s.p, &out->s.n, &nil);
        out->kind = nil ? OV_NIL : OV_STR;
        return rc;
    }
    default:
        *out = (ov_t){.kind = OV_BOOL, .b = v.kind == is_kind[n->fn]};
        return 0;
    }
}

/* ---- the tree ----------------------------------------------------------------------------- */

static int eval_value(const ottl_node_t *n, const ottl_item_t *it, ottl_scratch_t *s, ov_t *out)
{
    switch (n->kind) {
    case N_LIT:
        *out = n->lit;
        return 0;
    case N_PATH: {
        if (it->wire != NULL) {
            /* On the wire: one key at most, applied by the reader. */
            return n->n_keys > 1 ? OM_ENOTSUP
                                 : proc_filter_ottl_wire_path(n->path, n->n_keys ? n->keys : NULL,
                                                              it->wire, s, out);
        }
        int rc = proc_filter_ottl_path_get(n->path, it->item, s, out);
        return rc != 0 ? rc : apply_keys(n, out, s);
    }
    case N_CALL:
        return eval_call(n, it, s, out);
    case N_MATH:
        return eval_math(n, it, s, out);
    case N_LIST:
        return fail(s, "a list is no value"); /* compile only allows it in Concat */
    default: {
        int rc = eval_bool(n, it, s);
        *out = (ov_t){.kind = OV_BOOL, .b = rc == 1};
        return rc < 0 ? rc : 0;
    }
    }
}

static int eval_bool(const ottl_node_t *n, const ottl_item_t *it, ottl_scratch_t *s)
{
    switch (n->kind) {
    case N_OR:
    case N_AND:
        for (size_t i = 0; i < n->n_kids; i++) {
            int rc = eval_bool(n->kids[i], it, s);
            if (rc < 0 || rc == (n->kind == N_OR)) {
                return rc;
            }
        }
        return n->kind == N_AND;
    case N_NOT: {
        int rc = eval_bool(n->kids[0], it, s);
        return rc < 0 ? rc : !rc;
    }
    case N_CMP: {
        ov_t a, b;
        int rc = eval_value(n->kids[0], it, s, &a);
        if (rc == 0) {
            rc = eval_value(n->kids[1], it, s, &b);
        }
        return rc < 0 ? rc : proc_filter_ov_compare(&a, &b, (ottl_cmp_t)n->op);
    }
    default: {
        /* A boolean literal or a function returning one (checked at compile time). */
        ov_t v;
        int rc = eval_value(n, it, s, &v);
        if (rc < 0) {
            return rc;
        }
        if (v.kind != OV_BOOL) {
            return fail(s, "the condition is %s, not a bool", kind_name(v.kind));
        }
        return v.b;
    }
    }
}

static int eval_top(const ottl_expr_t *e, const ottl_item_t *it, ottl_scratch_t *s)
{
    proc_filter_scratch_reset(s);
    int rc = eval_bool(e->root, it, s);
    if (rc == OM_ENOTSUP) {
        return rc; /* the wire cannot tell: the decoded item will */
    }
    if (rc < 0 && s->msg[0] == '\0') {
        snprintf(s->msg, sizeof s->msg, "%s", om_strerror(rc));
    }
    if (rc < 0) {
        return s->oom || rc == OM_ENOMEM ? OM_ENOMEM : OM_EINVAL;
    }
    return rc;
}

int proc_filter_ottl_eval(const ottl_expr_t *e, const om_item_t *it, ottl_scratch_t *s)
{
    ottl_item_t item = {.item = it};
    return eval_top(e, &item, s);
}

int proc_filter_ottl_eval_wire(const ottl_expr_t *e, const om_wire_item_t *w, ottl_scratch_t *s)
{
    ottl_item_t item = {.wire = w};
    return eval_top(e, &item, s);
}
