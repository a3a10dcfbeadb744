/* om_testdata_otlp.c: OTLP test data from a few lines of text (om_testdata_otlp; the syntax is
 * in om_testdata.h).
 *
 * One pass over the text: each statement makes its node and attaches it to the last node of
 * the level above (making an empty resource or scope entry when there is none yet), then its
 * tokens set the node's name, fields and attributes. Attributes go through om_attrs_*, the
 * API processors use. Child arrays are only ever grown here, so their capacity is the next
 * power of two of their length, and an append copies only when the length is one. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "om_testdata.h"

typedef struct dsl {
    const char *text; /* for messages */
    const char *p;    /* the cursor */
    om_batch_t *b;
    om_arena_t *a;
    void *resource_entry, *scope_entry; /* the last ones: where new children go */
    om_span_t *span;
    om_metric_t *metric;
    void *data; /* the metric's Gauge, Sum... */
    char err[160];
} dsl_t;

/* A token: a word or an unquoted value (pointing into the text), or a quoted string
 * (unescaped into the arena). */
typedef struct tok {
    const char *s;
    size_t len;
    bool quoted;
} tok_t;

static bool fail(dsl_t *d, const char *fmt, ...) OM_PRINTF(2, 3);

static bool fail(dsl_t *d, const char *fmt, ...)
{
    if (d->err[0] == '\0') {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(d->err, sizeof d->err, fmt, ap);
        va_end(ap);
    }
    return false;
}

/* ---- tokens ------------------------------------------------------------------------------ */

static bool at_end_of_statement(const dsl_t *d)
{
    return *d->p == '\0' || *d->p == ';' || *d->p == '\n' || *d->p == '#';
}

static void skip_blanks(dsl_t *d)
{
    while (*d->p == ' ' || *d->p == '\t' || *d->p == '\r') {
        d->p++;
    }
}

/* Past the separators, blank lines and comments before the next statement. */
static void skip_to_statement(dsl_t *d)
{
    for (;;) {
        skip_blanks(d);
        if (*d->p == '#') {
            while (*d->p != '\0' && *d->p != '\n') {
                d->p++;
            }
        } else if (*d->p == ';' || *d->p == '\n') {
            d->p++;
        } else {
            return;
        }
    }
}

static bool is_word_char(char c)
{
    return c != '\0' && strchr(" \t\r\n;=:'\"#", c) == NULL;
}

static tok_t read_word(dsl_t *d)
{
    tok_t t = {.s = d->p};
    while (is_word_char(*d->p)) {
        d->p++;
    }
    t.len = (size_t)(d->p - t.s);
    return t;
}

/* A quoted string ('...' or "..."), with \\, \", \', \n and \t. */
static bool read_quoted(dsl_t *d, tok_t *t)
{
    char q = *d->p++;
    const char *start = d->p;
    size_t n = 0;
    while (*d->p != q) {
        if (*d->p == '\0') {
            return fail(d, "unterminated string");
        }
        d->p += *d->p == '\\' && d->p[1] != '\0' ? 2 : 1;
        n++;
    }
    char *out = om_arena_alloc(d->a, n + 1);
    if (out == NULL) {
        return fail(d, "out of memory");
    }
    size_t k = 0;
    for (const char *s = start; s < d->p; s++) {
        if (*s == '\\') {
            s++;
            out[k++] = *s == 'n' ? '\n' : *s == 't' ? '\t' : *s;
        } else {
            out[k++] = *s;
        }
    }
    out[k] = '\0';
    d->p++;
    *t = (tok_t){.s = out, .len = k, .quoted = true};
    return true;
}

/* A value after '=' or ':': quoted, or everything up to a blank or the statement's end. */
static bool read_value(dsl_t *d, tok_t *t)
{
    if (*d->p == '"' || *d->p == '\'') {
        return read_quoted(d, t);
    }
    *t = (tok_t){.s = d->p};
    while (*d->p != '\0' && strchr(" \t\r\n;", *d->p) == NULL) {
        d->p++;
    }
    t->len = (size_t)(d->p - t->s);
    return true;
}

static bool tok_is(tok_t t, const char *s)
{
    return !t.quoted && t.len == strlen(s) && memcmp(t.s, s, t.len) == 0;
}

static char *tok_str(dsl_t *d, tok_t t)
{
    char *s = om_arena_strndup(d->a, t.s, t.len);
    if (s == NULL) {
        fail(d, "out of memory");
    }
    return s;
}

static bool tok_int(tok_t t, int64_t *v)
{
    char buf[32];
    if (t.quoted || t.len == 0 || t.len >= sizeof buf) {
        return false;
    }
    memcpy(buf, t.s, t.len);
    buf[t.len] = '\0';
    char *end;
    errno = 0;
    long long x = strtoll(buf, &end, 10);
    *v = x;
    return errno == 0 && *end == '\0';
}

static bool tok_uint(tok_t t, uint64_t *v)
{
    int64_t x;
    if (!tok_int(t, &x) || x < 0) {
        return false;
    }
    *v = (uint64_t)x;
    return true;
}

static bool tok_u32(tok_t t, uint32_t *v)
{
    uint64_t x;
    if (!tok_uint(t, &x) || x > UINT32_MAX) {
        return false;
    }
    *v = (uint32_t)x;
    return true;
}

static bool tok_double(tok_t t, double *v)
{
    char buf[64];
    if (t.quoted || t.len == 0 || t.len >= sizeof buf) {
        return false;
    }
    memcpy(buf, t.s, t.len);
    buf[t.len] = '\0';
    char *end;
    *v = strtod(buf, &end);
    return *end == '\0';
}

static int hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* Hex digits (an optional 0x first) as bytes in the arena. */
static bool tok_hex(dsl_t *d, tok_t t, ProtobufCBinaryData *out)
{
    const char *s = t.s;
    size_t n = t.len;
    if (n >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        s += 2;
        n -= 2;
    }
    uint8_t *bytes = om_arena_alloc(d->a, n / 2 + 1);
    if (n % 2 != 0 || bytes == NULL) {
        return fail(d, "bad hex bytes \"%.*s\"", (int)t.len, t.s);
    }
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            return fail(d, "bad hex bytes \"%.*s\"", (int)t.len, t.s);
        }
        bytes[i] = (uint8_t)(hi << 4 | lo);
    }
    *out = (ProtobufCBinaryData){.len = n / 2, .data = n > 0 ? bytes : NULL};
    return true;
}

/* ---- nodes ------------------------------------------------------------------------------- */

static void *new_msg(dsl_t *d, const ProtobufCMessageDescriptor *desc)
{
    void *m = om_testdata_msg(d->a, desc);
    if (m == NULL) {
        fail(d, "out of memory");
    }
    return m;
}

/* Append item to the array *arr of *n pointers (capacity: the next power of two of *n). */
static bool push(dsl_t *d, void *arr_field, size_t *n, void *item)
{
    void **arr;
    memcpy(&arr, arr_field, sizeof arr);
    if (*n == 0 || (*n & (*n - 1)) == 0) {
        size_t cap = *n == 0 ? 1 : *n * 2;
        void **grown = om_arena_alloc(d->a, cap * sizeof *grown);
        if (grown == NULL) {
            return fail(d, "out of memory");
        }
        if (*n > 0) {
            memcpy(grown, arr, *n * sizeof *grown);
        }
        arr = grown;
        memcpy(arr_field, &arr, sizeof arr);
    }
    arr[(*n)++] = item;
    return true;
}

#define PUSH(d, owner, field, item) push((d), &(owner)->field, &(owner)->n_##field, (item))

/* A resource entry with no Resource (made when a scope comes first). */
static bool add_resource_entry(dsl_t *d)
{
    om_batch_t *b = d->b;
    void *e;
    bool ok;
    if (b->signal == OM_SIG_TRACES) {
        e = new_msg(d, &opentelemetry__proto__trace__v1__resource_spans__descriptor);
        ok = e != NULL && PUSH(d, b->traces, resource_spans, e);
    } else if (b->signal == OM_SIG_METRICS) {
        e = new_msg(d, &opentelemetry__proto__metrics__v1__resource_metrics__descriptor);
        ok = e != NULL && PUSH(d, b->metrics, resource_metrics, e);
    } else {
        e = new_msg(d, &opentelemetry__proto__logs__v1__resource_logs__descriptor);
        ok = e != NULL && PUSH(d, b->logs, resource_logs, e);
    }
    d->resource_entry = e;
    d->scope_entry = NULL;
    d->span = NULL;
    d->metric = NULL;
    return ok;
}

/* A scope entry with no InstrumentationScope in the last resource entry. */
static bool add_scope_entry(dsl_t *d)
{
    if (d->resource_entry == NULL && !add_resource_entry(d)) {
        return false;
    }
    void *e;
    bool ok;
    if (d->b->signal == OM_SIG_TRACES) {
        om_resource_spans_t *rs = d->resource_entry;
        e = new_msg(d, &opentelemetry__proto__trace__v1__scope_spans__descriptor);
        ok = e != NULL && PUSH(d, rs, scope_spans, e);
    } else if (d->b->signal == OM_SIG_METRICS) {
        om_resource_metrics_t *rm = d->resource_entry;
        e = new_msg(d, &opentelemetry__proto__metrics__v1__scope_metrics__descriptor);
        ok = e != NULL && PUSH(d, rm, scope_metrics, e);
    } else {
        om_resource_logs_t *rl = d->resource_entry;
        e = new_msg(d, &opentelemetry__proto__logs__v1__scope_logs__descriptor);
        ok = e != NULL && PUSH(d, rl, scope_logs, e);
    }
    d->scope_entry = e;
    d->span = NULL;
    d->metric = NULL;
    return ok;
}

static bool need_scope(dsl_t *d)
{
    return d->scope_entry != NULL || add_scope_entry(d);
}

/* The fields the three resource entry types (and the three scope entry types) share, by
 * signal: the resource / scope, and the schema URL. */
static om_resource_t **entry_resource(dsl_t *d)
{
    switch (d->b->signal) {
    case OM_SIG_TRACES:
        return &((om_resource_spans_t *)d->resource_entry)->resource;
    case OM_SIG_METRICS:
        return &((om_resource_metrics_t *)d->resource_entry)->resource;
    default:
        return &((om_resource_logs_t *)d->resource_entry)->resource;
    }
}

static char **entry_schema(dsl_t *d, bool scope)
{
    switch (d->b->signal) {
    case OM_SIG_TRACES:
        return scope ? &((om_scope_spans_t *)d->scope_entry)->schema_url
                     : &((om_resource_spans_t *)d->resource_entry)->schema_url;
    case OM_SIG_METRICS:
        return scope ? &((om_scope_metrics_t *)d->scope_entry)->schema_url
                     : &((om_resource_metrics_t *)d->resource_entry)->schema_url;
    default:
        return scope ? &((om_scope_logs_t *)d->scope_entry)->schema_url
                     : &((om_resource_logs_t *)d->resource_entry)->schema_url;
    }
}

static om_scope_t **entry_scope(dsl_t *d)
{
    switch (d->b->signal) {
    case OM_SIG_TRACES:
        return &((om_scope_spans_t *)d->scope_entry)->scope;
    case OM_SIG_METRICS:
        return &((om_scope_metrics_t *)d->scope_entry)->scope;
    default:
        return &((om_scope_logs_t *)d->scope_entry)->scope;
    }
}

/* ---- statements: each node's fields ------------------------------------------------------ */

/* What a statement is being applied to. */
typedef struct stmt {
    const char *kw;
    om_attrs_t attrs;
    bool (*field)(dsl_t *d, struct stmt *st, tok_t key, tok_t value);
    bool (*name)(dsl_t *d, struct stmt *st, tok_t name);
    void *node;
} stmt_t;

/* A string field: a copy of the value in the arena. */
static bool set_str(dsl_t *d, char **field, tok_t v)
{
    *field = tok_str(d, v);
    return *field != NULL;
}

static bool enum_of(dsl_t *d, tok_t v, const char *const *names, int *out)
{
    for (int i = 0; names[i] != NULL; i++) {
        if (tok_is(v, names[i])) {
            *out = i;
            return true;
        }
    }
    return fail(d, "unknown value \"%.*s\"", (int)v.len, v.s);
}

static bool resource_field(dsl_t *d, stmt_t *st, tok_t k, tok_t v)
{
    (void)st;
    if (tok_is(k, "schema")) {
        return set_str(d, entry_schema(d, false), v);
    }
    return fail(d, "resource has no field \"%.*s\"", (int)k.len, k.s);
}

static bool scope_name(dsl_t *d, stmt_t *st, tok_t name)
{
    om_scope_t *sc = st->node;
    const char *at = st->node != NULL && !name.quoted ? memchr(name.s, '@', name.len) : NULL;
    if (at != NULL) {
        tok_t version = {.s = at + 1, .len = name.len - (size_t)(at + 1 - name.s)};
        name.len = (size_t)(at - name.s);
        if (!set_str(d, &sc->version, version)) {
            return false;
        }
    }
    return set_str(d, &sc->name, name);
}

static bool scope_field(dsl_t *d, stmt_t *st, tok_t k, tok_t v)
{
    om_scope_t *sc = st->node;
    if (tok_is(k, "version")) {
        return set_str(d, &sc->version, v);
    }
    if (tok_is(k, "schema")) {
        return set_str(d, entry_schema(d, true), v);
    }
    return fail(d, "scope has no field \"%.*s\"", (int)k.len, k.s);
}

static bool span_name(dsl_t *d, stmt_t *st, tok_t name)
{
    return set_str(d, &((om_span_t *)st->node)->name, name);
}

static bool span_status(dsl_t *d, om_span_t *sp, tok_t k, tok_t v)
{
    static const char *const codes[] = {"unset", "ok", "error", NULL};
    if (sp->status == NULL) {
        sp->status = new_msg(d, &opentelemetry__proto__trace__v1__status__descriptor);
        if (sp->status == NULL) {
            return false;
        }
    }
    if (tok_is(k, "message")) {
        return set_str(d, &sp->status->message, v);
    }
    int code;
    if (!enum_of(d, v, codes, &code)) {
        return false;
    }
    sp->status->code = (Opentelemetry__Proto__Trace__V1__Status__StatusCode)code;
    return true;
}

static bool span_field(dsl_t *d, stmt_t *st, tok_t k, tok_t v)
{
    static const char *const kinds[] = {"unspecified", "internal", "server", "client",
                                        "producer",    "consumer", NULL};
    om_span_t *sp = st->node;
    int kind;
    if (tok_is(k, "kind")) {
        if (!enum_of(d, v, kinds, &kind)) {
            return false;
        }
        sp->kind = (Opentelemetry__Proto__Trace__V1__Span__SpanKind)kind;
        return true;
    }
    if (tok_is(k, "status") || tok_is(k, "message")) {
        return span_status(d, sp, k, v);
    }
    if (tok_is(k, "trace")) {
        return tok_hex(d, v, &sp->trace_id);
    }
    if (tok_is(k, "id")) {
        return tok_hex(d, v, &sp->span_id);
    }
    if (tok_is(k, "parent")) {
        return tok_hex(d, v, &sp->parent_span_id);
    }
    if (tok_is(k, "state")) {
        return set_str(d, &sp->trace_state, v);
    }
    if (tok_is(k, "start")) {
        return tok_uint(v, &sp->start_time_unix_nano) || fail(d, "bad time");
    }
    if (tok_is(k, "end")) {
        return tok_uint(v, &sp->end_time_unix_nano) || fail(d, "bad time");
    }
    if (tok_is(k, "dropped_attrs")) {
        return tok_u32(v, &sp->dropped_attributes_count) || fail(d, "bad count");
    }
    if (tok_is(k, "dropped_events")) {
        return tok_u32(v, &sp->dropped_events_count) || fail(d, "bad count");
    }
    return fail(d, "span has no field \"%.*s\"", (int)k.len, k.s);
}

static bool event_name(dsl_t *d, stmt_t *st, tok_t name)
{
    return set_str(d, &((om_span_event_t *)st->node)->name, name);
}

static bool event_field(dsl_t *d, stmt_t *st, tok_t k, tok_t v)
{
    om_span_event_t *ev = st->node;
    if (tok_is(k, "time")) {
        return tok_uint(v, &ev->time_unix_nano) || fail(d, "bad time");
    }
    if (tok_is(k, "dropped_attrs")) {
        return tok_u32(v, &ev->dropped_attributes_count) || fail(d, "bad count");
    }
    return fail(d, "event has no field \"%.*s\"", (int)k.len, k.s);
}

static bool metric_name(dsl_t *d, stmt_t *st, tok_t name)
{
    return set_str(d, &((om_metric_t *)st->node)->name, name);
}

/* Metric types as the DSL names them, in the order of data_case (1 gauge ... 11 summary). */
static bool metric_type(dsl_t *d, om_metric_t *m, tok_t v)
{
    static const struct {
        const char *name;
        Opentelemetry__Proto__Metrics__V1__Metric__DataCase dc;
        const ProtobufCMessageDescriptor *desc;
    } types[] = {
        {"gauge", OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE,
         &opentelemetry__proto__metrics__v1__gauge__descriptor},
        {"sum", OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM,
         &opentelemetry__proto__metrics__v1__sum__descriptor},
        {"histogram", OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM,
         &opentelemetry__proto__metrics__v1__histogram__descriptor},
        {"exphistogram", OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM,
         &opentelemetry__proto__metrics__v1__exponential_histogram__descriptor},
        {"summary", OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY,
         &opentelemetry__proto__metrics__v1__summary__descriptor},
    };
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        if (tok_is(v, types[i].name)) {
            void *data = new_msg(d, types[i].desc);
            if (data == NULL) {
                return false;
            }
            m->data_case = types[i].dc;
            m->gauge = data; /* the data pointers share one union */
            d->data = data;
            return true;
        }
    }
    return fail(d, "unknown metric type \"%.*s\"", (int)v.len, v.s);
}

/* The temporality and monotonicity of a sum / histogram / exp. histogram. */
static bool metric_aggregation(dsl_t *d, om_metric_t *m, tok_t k, tok_t v)
{
    static const char *const temporalities[] = {"unspecified", "delta", "cumulative", NULL};
    int t = 0;
    bool mono = tok_is(v, "true");
    if (tok_is(k, "temporality") && !enum_of(d, v, temporalities, &t)) {
        return false;
    }
    Opentelemetry__Proto__Metrics__V1__AggregationTemporality at =
        (Opentelemetry__Proto__Metrics__V1__AggregationTemporality)t;
    switch (m->data_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
        if (tok_is(k, "monotonic")) {
            m->sum->is_monotonic = mono;
        } else {
            m->sum->aggregation_temporality = at;
        }
        return true;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
        m->histogram->aggregation_temporality = at;
        return tok_is(k, "temporality") || fail(d, "only a sum is monotonic");
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
        m->exponential_histogram->aggregation_temporality = at;
        return tok_is(k, "temporality") || fail(d, "only a sum is monotonic");
    default:
        return fail(d, "type:sum, histogram or exphistogram must come before \"%.*s\"", (int)k.len,
                    k.s);
    }
}

static bool metric_field(dsl_t *d, stmt_t *st, tok_t k, tok_t v)
{
    om_metric_t *m = st->node;
    if (tok_is(k, "type")) {
        return metric_type(d, m, v);
    }
    if (tok_is(k, "unit")) {
        return set_str(d, &m->unit, v);
    }
    if (tok_is(k, "desc")) {
        return set_str(d, &m->description, v);
    }
    if (tok_is(k, "temporality") || tok_is(k, "monotonic")) {
        return metric_aggregation(d, m, k, v);
    }
    return fail(d, "metric has no field \"%.*s\"", (int)k.len, k.s);
}

/* A data point of the last metric's type, attached to it. */
static void *add_point(dsl_t *d, om_attrs_t *attrs)
{
    om_metric_t *m = d->metric;
    if (m == NULL) {
        fail(d, "a point needs a metric first");
        return NULL;
    }
    if (m->data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA__NOT_SET) {
        tok_t gauge = {.s = "gauge", .len = 5};
        if (!metric_type(d, m, gauge)) {
            return NULL;
        }
    }
    void *dp = NULL;
    bool ok = false;
    switch (m->data_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM: {
        om_number_dp_t *p =
            new_msg(d, &opentelemetry__proto__metrics__v1__number_data_point__descriptor);
        ok = p != NULL && (m->data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE
                               ? PUSH(d, m->gauge, data_points, p)
                               : PUSH(d, m->sum, data_points, p));
        *attrs = p != NULL ? OM_ATTRS(d->b, p) : *attrs;
        dp = p;
        break;
    }
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM: {
        om_histogram_dp_t *p =
            new_msg(d, &opentelemetry__proto__metrics__v1__histogram_data_point__descriptor);
        ok = p != NULL && PUSH(d, m->histogram, data_points, p);
        *attrs = p != NULL ? OM_ATTRS(d->b, p) : *attrs;
        dp = p;
        break;
    }
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM: {
        om_exp_histogram_dp_t *p = new_msg(
            d, &opentelemetry__proto__metrics__v1__exponential_histogram_data_point__descriptor);
        ok = p != NULL && PUSH(d, m->exponential_histogram, data_points, p);
        *attrs = p != NULL ? OM_ATTRS(d->b, p) : *attrs;
        dp = p;
        break;
    }
    default: {
        om_summary_dp_t *p =
            new_msg(d, &opentelemetry__proto__metrics__v1__summary_data_point__descriptor);
        ok = p != NULL && PUSH(d, m->summary, data_points, p);
        *attrs = p != NULL ? OM_ATTRS(d->b, p) : *attrs;
        dp = p;
        break;
    }
    }
    return ok ? dp : NULL;
}

/* The value of a gauge or sum point: an int, or a double when it has a point or exponent. */
static bool point_name(dsl_t *d, stmt_t *st, tok_t v)
{
    if (d->metric->data_case != OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE &&
        d->metric->data_case != OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM) {
        return fail(d, "only gauge and sum points have a value; use count: and sum:");
    }
    om_number_dp_t *p = st->node;
    int64_t i;
    if (tok_int(v, &i)) {
        p->value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT;
        p->as_int = i;
        return true;
    }
    p->value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE;
    return tok_double(v, &p->as_double) || fail(d, "bad value \"%.*s\"", (int)v.len, v.s);
}

/* The fields every point type has (time, start) and count / sum of the others. */
static bool point_field(dsl_t *d, stmt_t *st, tok_t k, tok_t v)
{
    Opentelemetry__Proto__Metrics__V1__Metric__DataCase dc = d->metric->data_case;
    bool number = dc == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE ||
                  dc == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM;
    uint64_t u = 0;
    double x = 0;
    if (tok_is(k, "time") || tok_is(k, "start") || tok_is(k, "count")) {
        if (!tok_uint(v, &u)) {
            return fail(d, "bad number \"%.*s\"", (int)v.len, v.s);
        }
    } else if (tok_is(k, "sum")) {
        if (!tok_double(v, &x)) {
            return fail(d, "bad number \"%.*s\"", (int)v.len, v.s);
        }
    } else {
        return fail(d, "point has no field \"%.*s\"", (int)k.len, k.s);
    }
    if (number && !tok_is(k, "time") && !tok_is(k, "start")) {
        return fail(d, "a gauge or sum point has no \"%.*s\"", (int)k.len, k.s);
    }
    /* time_unix_nano, start_time_unix_nano, count and sum sit in different places in the
     * four point types: set them by type. */
#define POINT_FIELDS(type)                                                                         \
    do {                                                                                           \
        type *p = st->node;                                                                        \
        if (tok_is(k, "time")) {                                                                   \
            p->time_unix_nano = u;                                                                 \
        } else if (tok_is(k, "start")) {                                                           \
            p->start_time_unix_nano = u;                                                           \
        } else if (tok_is(k, "count")) {                                                           \
            p->count = u;                                                                          \
        } else {                                                                                   \
            p->sum = x;                                                                            \
        }                                                                                          \
    } while (0)
    if (number) {
        om_number_dp_t *p = st->node;
        *(tok_is(k, "time") ? &p->time_unix_nano : &p->start_time_unix_nano) = u;
    } else if (dc == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM) {
        POINT_FIELDS(om_histogram_dp_t);
        om_histogram_dp_t *p = st->node;
        if (tok_is(k, "sum")) {
            p->_sum_case = OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___SUM_SUM;
        }
    } else if (dc == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM) {
        POINT_FIELDS(om_exp_histogram_dp_t);
        om_exp_histogram_dp_t *p = st->node;
        if (tok_is(k, "sum")) {
            p->_sum_case =
                OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT___SUM_SUM;
        }
    } else {
        POINT_FIELDS(om_summary_dp_t);
    }
#undef POINT_FIELDS
    return true;
}

static bool log_field(dsl_t *d, stmt_t *st, tok_t k, tok_t v)
{
    static const char *const severities[] = {"unspecified", "trace", "debug", "info",
                                             "warn",        "error", "fatal", NULL};
    om_log_record_t *lr = st->node;
    int sev;
    if (tok_is(k, "severity")) {
        if (!enum_of(d, v, severities, &sev)) {
            return false;
        }
        /* TRACE is 1, DEBUG 5, INFO 9...: the first number of each range of four. */
        lr->severity_number =
            (Opentelemetry__Proto__Logs__V1__SeverityNumber)(sev == 0 ? 0 : (sev - 1) * 4 + 1);
        return true;
    }
    if (tok_is(k, "text")) {
        return set_str(d, &lr->severity_text, v);
    }
    if (tok_is(k, "time")) {
        return tok_uint(v, &lr->time_unix_nano) || fail(d, "bad time");
    }
    if (tok_is(k, "trace")) {
        return tok_hex(d, v, &lr->trace_id);
    }
    if (tok_is(k, "span")) {
        return tok_hex(d, v, &lr->span_id);
    }
    return fail(d, "log has no field \"%.*s\"", (int)k.len, k.s);
}

/* An attribute's value, typed: quoted: string; true / false: bool; an integer: int; a
 * number: double; 0x and hex digits: bytes; anything else: string. */
static bool value_of(dsl_t *d, tok_t v, om_anyvalue_t *out)
{
    *out = (om_anyvalue_t)OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
    if (!v.quoted && (tok_is(v, "true") || tok_is(v, "false"))) {
        out->value_case = OM_ANYVALUE_BOOL;
        out->bool_value = tok_is(v, "true");
    } else if (!v.quoted && v.len > 2 && v.s[0] == '0' && (v.s[1] == 'x' || v.s[1] == 'X')) {
        out->value_case = OM_ANYVALUE_BYTES; /* before numbers: strtod reads hex too */
        return tok_hex(d, v, &out->bytes_value);
    } else if (tok_int(v, &out->int_value)) {
        out->value_case = OM_ANYVALUE_INT;
    } else if (tok_double(v, &out->double_value)) {
        out->value_case = OM_ANYVALUE_DOUBLE;
    } else {
        out->value_case = OM_ANYVALUE_STRING;
        out->string_value = tok_str(d, v);
        return out->string_value != NULL;
    }
    return true;
}

static bool log_body(dsl_t *d, stmt_t *st, tok_t v)
{
    om_log_record_t *lr = st->node;
    lr->body = new_msg(d, &opentelemetry__proto__common__v1__any_value__descriptor);
    return lr->body != NULL && value_of(d, v, lr->body);
}

/* ---- statements -------------------------------------------------------------------------- */

static bool need_signal(dsl_t *d, const char *kw, om_signal_t sig)
{
    return d->b->signal == sig || fail(d, "\"%s\" in a %s batch", kw, om_signal_name(d->b->signal));
}

/* Each keyword's node: made, attached to its parent, and the statement's attributes aimed at
 * its attribute list. */
static bool begin_resource(dsl_t *d, stmt_t *st)
{
    om_resource_t *r = new_msg(d, &opentelemetry__proto__resource__v1__resource__descriptor);
    if (r == NULL || !add_resource_entry(d)) {
        return false;
    }
    *entry_resource(d) = r;
    st->attrs = OM_ATTRS(d->b, r);
    return true;
}

static bool begin_scope(dsl_t *d, stmt_t *st)
{
    om_scope_t *sc =
        new_msg(d, &opentelemetry__proto__common__v1__instrumentation_scope__descriptor);
    if (sc == NULL || !add_scope_entry(d)) {
        return false;
    }
    *entry_scope(d) = sc;
    st->node = sc;
    st->attrs = OM_ATTRS(d->b, sc);
    return true;
}

static bool begin_span(dsl_t *d, stmt_t *st)
{
    om_span_t *sp = need_signal(d, "span", OM_SIG_TRACES) && need_scope(d)
                        ? new_msg(d, &opentelemetry__proto__trace__v1__span__descriptor)
                        : NULL;
    if (sp == NULL || !PUSH(d, (om_scope_spans_t *)d->scope_entry, spans, sp)) {
        return false;
    }
    d->span = st->node = sp;
    st->attrs = OM_ATTRS(d->b, sp);
    return true;
}

static bool begin_event(dsl_t *d, stmt_t *st)
{
    if (d->span == NULL) {
        return fail(d, "an event needs a span first");
    }
    om_span_event_t *ev = new_msg(d, &opentelemetry__proto__trace__v1__span__event__descriptor);
    if (ev == NULL || !PUSH(d, d->span, events, ev)) {
        return false;
    }
    st->node = ev;
    st->attrs = OM_ATTRS(d->b, ev);
    return true;
}

static bool begin_metric(dsl_t *d, stmt_t *st)
{
    om_metric_t *m = need_signal(d, "metric", OM_SIG_METRICS) && need_scope(d)
                         ? new_msg(d, &opentelemetry__proto__metrics__v1__metric__descriptor)
                         : NULL;
    if (m == NULL || !PUSH(d, (om_scope_metrics_t *)d->scope_entry, metrics, m)) {
        return false;
    }
    d->metric = st->node = m;
    st->attrs = om_attrs_of(d->b, &m->metadata, &m->n_metadata);
    return true;
}

static bool begin_point(dsl_t *d, stmt_t *st)
{
    st->node = add_point(d, &st->attrs);
    return st->node != NULL;
}

static bool begin_log(dsl_t *d, stmt_t *st)
{
    om_log_record_t *lr = need_signal(d, "log", OM_SIG_LOGS) && need_scope(d)
                              ? new_msg(d, &opentelemetry__proto__logs__v1__log_record__descriptor)
                              : NULL;
    if (lr == NULL || !PUSH(d, (om_scope_logs_t *)d->scope_entry, log_records, lr)) {
        return false;
    }
    st->node = lr;
    st->attrs = OM_ATTRS(d->b, lr);
    return true;
}

/* Make the node of keyword kw and set up st for its tokens. */
static bool begin(dsl_t *d, tok_t kw, stmt_t *st)
{
    static const struct {
        const char *kw;
        bool (*begin)(dsl_t *d, stmt_t *st);
        bool (*field)(dsl_t *d, stmt_t *st, tok_t key, tok_t value);
        bool (*name)(dsl_t *d, stmt_t *st, tok_t name);
    } keywords[] = {
        {"resource", begin_resource, resource_field, NULL},
        {"scope", begin_scope, scope_field, scope_name},
        {"span", begin_span, span_field, span_name},
        {"event", begin_event, event_field, event_name},
        {"metric", begin_metric, metric_field, metric_name},
        {"point", begin_point, point_field, point_name},
        {"log", begin_log, log_field, log_body},
    };
    for (size_t i = 0; i < sizeof keywords / sizeof keywords[0]; i++) {
        if (tok_is(kw, keywords[i].kw)) {
            *st = (stmt_t){.kw = keywords[i].kw,
                           .attrs = {.batch = d->b},
                           .field = keywords[i].field,
                           .name = keywords[i].name};
            return keywords[i].begin(d, st);
        }
    }
    return fail(d, "unknown statement \"%.*s\"", (int)kw.len, kw.s);
}

static bool set_attr(dsl_t *d, stmt_t *st, tok_t k, tok_t v)
{
    char key[128];
    if (k.len == 0 || k.len >= sizeof key) {
        return fail(d, "bad attribute key");
    }
    memcpy(key, k.s, k.len);
    key[k.len] = '\0';
    om_anyvalue_t value;
    if (!value_of(d, v, &value)) {
        return false;
    }
    int rc = om_attrs_set_value(&st->attrs, OM_ATTR_UPSERT, key, &value);
    return rc >= 0 || fail(d, "cannot set %s: %s", key, om_strerror(rc));
}

/* One statement: keyword, then names, fields (k:v) and attributes (k=v). */
static bool statement(dsl_t *d)
{
    tok_t kw = read_word(d);
    stmt_t st;
    if (!begin(d, kw, &st)) {
        return false;
    }
    bool named = false;
    /* Bounded by the text: each turn consumes a token. */
    for (skip_blanks(d); !at_end_of_statement(d); skip_blanks(d)) {
        tok_t t, v;
        if (*d->p == '"' || *d->p == '\'') {
            if (!read_quoted(d, &t)) {
                return false;
            }
        } else {
            t = read_word(d);
        }
        if (!t.quoted && (*d->p == '=' || *d->p == ':')) {
            char sep = *d->p++;
            if (!read_value(d, &v)) {
                return false;
            }
            bool ok = sep == '='         ? set_attr(d, &st, t, v)
                      : st.field != NULL ? st.field(d, &st, t, v)
                                         : fail(d, "%s has no fields", st.kw);
            if (!ok) {
                return false;
            }
            continue;
        }
        if (t.len == 0 && !t.quoted) {
            return fail(d, "unexpected '%c'", *d->p);
        }
        if (named || st.name == NULL) {
            return fail(d, "%s: unexpected \"%.*s\"", st.kw, (int)t.len, t.s);
        }
        named = true;
        if (!st.name(d, &st, t)) {
            return false;
        }
    }
    return true;
}

/* The signal: the first word when it names one, else that of the first item statement. */
static om_signal_t signal_of(const char *text, bool *named)
{
    dsl_t d = {.p = text};
    *named = false;
    for (skip_to_statement(&d); *d.p != '\0'; skip_to_statement(&d)) {
        tok_t w = read_word(&d);
        if (tok_is(w, "traces") || tok_is(w, "metrics") || tok_is(w, "logs")) {
            *named = true;
            return tok_is(w, "traces")    ? OM_SIG_TRACES
                   : tok_is(w, "metrics") ? OM_SIG_METRICS
                                          : OM_SIG_LOGS;
        }
        if (tok_is(w, "span") || tok_is(w, "event")) {
            return OM_SIG_TRACES;
        }
        if (tok_is(w, "metric") || tok_is(w, "point")) {
            return OM_SIG_METRICS;
        }
        if (tok_is(w, "log")) {
            return OM_SIG_LOGS;
        }
        /* Past the rest of the statement, quoted strings included. */
        while (*d.p != '\0' && *d.p != ';' && *d.p != '\n') {
            char q = *d.p++;
            if (q == '"' || q == '\'') {
                while (*d.p != '\0' && *d.p != q) {
                    d.p += *d.p == '\\' && d.p[1] != '\0' ? 2 : 1;
                }
                d.p += *d.p != '\0';
            }
        }
    }
    return OM_SIG_TRACES;
}

static om_batch_t *build(const char *text)
{
    bool named;
    om_signal_t sig = signal_of(text, &named);
    dsl_t d = {.text = text, .p = text, .b = om_batch_new(sig, 0)};
    if (d.b == NULL) {
        fprintf(stderr, "om_testdata_otlp: out of memory\n");
        abort();
    }
    d.a = d.b->arenas[0];
    skip_to_statement(&d);
    if (named) {
        read_word(&d);
    }
    for (skip_to_statement(&d); *d.p != '\0'; skip_to_statement(&d)) {
        if (!statement(&d)) {
            /* A mistake in a test's data: say where, and stop the test program. */
            fprintf(stderr, "om_testdata_otlp: at offset %zu: %s\n  in: %s\n", (size_t)(d.p - text),
                    d.err, text);
            abort();
        }
    }
    d.b->items = om_batch_count_items(d.b);
    return d.b;
}

om_batch_t *om_testdata_otlp(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *text = malloc(n >= 0 ? (size_t)n + 1 : 1);
    if (n < 0 || text == NULL) {
        abort();
    }
    va_start(ap, fmt);
    vsnprintf(text, (size_t)n + 1, fmt, ap);
    va_end(ap);
    om_batch_t *b = build(text);
    free(text);
    return b;
}

om_batch_t *om_testdata_wire(om_batch_t *b)
{
    size_t len = om_batch_proto_size(b);
    uint8_t *buf = malloc(len > 0 ? len : 1);
    om_batch_t *out = NULL;
    if (buf != NULL) {
        om_batch_proto_pack(b, buf);
        om_batch_decode_proto(b->signal, buf, len, 0, &out, NULL);
    }
    free(buf);
    om_batch_release(b);
    return out;
}

/* ---- describing a batch ------------------------------------------------------------------ */

static void put_name(om_strbuf_t *sb, const char *s)
{
    om_strbuf_puts(sb, s != NULL ? s : "");
}

static void describe_value(om_strbuf_t *sb, const om_anyvalue_t *v)
{
    if (v == NULL) {
        om_strbuf_puts(sb, "-");
    } else if (v->value_case == OM_ANYVALUE_STRING) {
        put_name(sb, v->string_value);
    } else if (v->value_case == OM_ANYVALUE_INT) {
        om_strbuf_printf(sb, "%lld", (long long)v->int_value);
    } else if (v->value_case == OM_ANYVALUE_DOUBLE) {
        om_strbuf_printf(sb, "%g", v->double_value);
    } else if (v->value_case == OM_ANYVALUE_BOOL) {
        om_strbuf_puts(sb, v->bool_value ? "true" : "false");
    } else {
        om_strbuf_puts(sb, "?");
    }
}

static void describe_resource(om_strbuf_t *sb, size_t i, const om_resource_t *r)
{
    om_strbuf_puts(sb, i > 0 ? " (" : "(");
    if (r == NULL) {
        om_strbuf_puts(sb, "-");
        return;
    }
    for (size_t k = 0; k < r->n_attributes; k++) {
        if (strcmp(r->attributes[k]->key, "service.name") == 0) {
            describe_value(sb, r->attributes[k]->value);
            return;
        }
    }
}

static void describe_scope(om_strbuf_t *sb, const om_scope_t *s)
{
    om_strbuf_puts(sb, " [");
    put_name(sb, s != NULL ? s->name : "-");
    om_strbuf_puts(sb, ":");
}

static void describe_span(om_strbuf_t *sb, const om_span_t *sp)
{
    om_strbuf_putc(sb, ' ');
    put_name(sb, sp->name);
    for (size_t e = 0; e < sp->n_events; e++) {
        om_strbuf_putc(sb, e == 0 ? '{' : ',');
        put_name(sb, sp->events[e]->name);
    }
    if (sp->n_events > 0) {
        om_strbuf_putc(sb, '}');
    }
}

/* A point: a gauge's or sum's value, else its count. */
static void describe_points(om_strbuf_t *sb, const om_metric_t *m)
{
    size_t n = 0;
    om_strbuf_putc(sb, '<');
    switch (m->data_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM: {
        bool gauge = m->data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE;
        n = gauge ? m->gauge->n_data_points : m->sum->n_data_points;
        for (size_t i = 0; i < n; i++) {
            const om_number_dp_t *p = gauge ? m->gauge->data_points[i] : m->sum->data_points[i];
            om_strbuf_puts(sb, i > 0 ? " " : "");
            if (p->value_case ==
                OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE) {
                om_strbuf_printf(sb, "%g", p->as_double);
            } else {
                om_strbuf_printf(sb, "%lld", (long long)p->as_int);
            }
        }
        break;
    }
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
        for (size_t i = 0; i < m->histogram->n_data_points; i++) {
            om_strbuf_printf(sb, "%s%llu", i > 0 ? " " : "",
                             (unsigned long long)m->histogram->data_points[i]->count);
        }
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
        for (size_t i = 0; i < m->exponential_histogram->n_data_points; i++) {
            om_strbuf_printf(sb, "%s%llu", i > 0 ? " " : "",
                             (unsigned long long)m->exponential_histogram->data_points[i]->count);
        }
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
        for (size_t i = 0; i < m->summary->n_data_points; i++) {
            om_strbuf_printf(sb, "%s%llu", i > 0 ? " " : "",
                             (unsigned long long)m->summary->data_points[i]->count);
        }
        break;
    default:
        break;
    }
    om_strbuf_putc(sb, '>');
}

static void describe_traces(om_strbuf_t *sb, const om_traces_req_t *req)
{
    for (size_t r = 0; r < req->n_resource_spans; r++) {
        const om_resource_spans_t *rs = req->resource_spans[r];
        describe_resource(sb, r, rs->resource);
        for (size_t s = 0; s < rs->n_scope_spans; s++) {
            describe_scope(sb, rs->scope_spans[s]->scope);
            for (size_t i = 0; i < rs->scope_spans[s]->n_spans; i++) {
                describe_span(sb, rs->scope_spans[s]->spans[i]);
            }
            om_strbuf_putc(sb, ']');
        }
        om_strbuf_putc(sb, ')');
    }
}

static void describe_metrics(om_strbuf_t *sb, const om_metrics_req_t *req)
{
    for (size_t r = 0; r < req->n_resource_metrics; r++) {
        const om_resource_metrics_t *rm = req->resource_metrics[r];
        describe_resource(sb, r, rm->resource);
        for (size_t s = 0; s < rm->n_scope_metrics; s++) {
            describe_scope(sb, rm->scope_metrics[s]->scope);
            for (size_t i = 0; i < rm->scope_metrics[s]->n_metrics; i++) {
                const om_metric_t *m = rm->scope_metrics[s]->metrics[i];
                om_strbuf_putc(sb, ' ');
                put_name(sb, m->name);
                describe_points(sb, m);
            }
            om_strbuf_putc(sb, ']');
        }
        om_strbuf_putc(sb, ')');
    }
}

static void describe_logs(om_strbuf_t *sb, const om_logs_req_t *req)
{
    for (size_t r = 0; r < req->n_resource_logs; r++) {
        const om_resource_logs_t *rl = req->resource_logs[r];
        describe_resource(sb, r, rl->resource);
        for (size_t s = 0; s < rl->n_scope_logs; s++) {
            describe_scope(sb, rl->scope_logs[s]->scope);
            for (size_t i = 0; i < rl->scope_logs[s]->n_log_records; i++) {
                om_strbuf_putc(sb, ' ');
                describe_value(sb, rl->scope_logs[s]->log_records[i]->body);
            }
            om_strbuf_putc(sb, ']');
        }
        om_strbuf_putc(sb, ')');
    }
}

const char *om_testdata_describe(om_batch_t *b)
{
    static char out[8][4096];
    static unsigned next;
    char *buf = out[next++ % 8];
    om_strbuf_t sb;
    om_strbuf_init(&sb, sizeof out[0] - 1);
    om_strbuf_puts(&sb, "");
    if (om_batch_decode(b, NULL) != 0) {
        om_strbuf_puts(&sb, "(cannot decode)");
    } else if (b->signal == OM_SIG_TRACES) {
        describe_traces(&sb, b->traces);
    } else if (b->signal == OM_SIG_METRICS) {
        describe_metrics(&sb, b->metrics);
    } else {
        describe_logs(&sb, b->logs);
    }
    snprintf(buf, sizeof out[0], "%s", sb.failed ? "(too long)" : sb.data);
    om_strbuf_free(&sb);
    return buf;
}
