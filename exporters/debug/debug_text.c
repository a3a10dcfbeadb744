/* debug_text.c: the text the debug exporter prints, as otelcol's debug exporter prints it.
 *
 * "detailed" follows the collector's otlptext marshaler (exporter/debugexporter/internal/
 * otlptext), "normal" its normal marshaler (internal/normal), line for line. Values are shown
 * as pcommon.Value.AsString() shows them: maps and slices as Go's encoding/json writes them
 * (keys sorted, later duplicates winning, <, > and & escaped), bytes as base64, doubles in the
 * shortest form that reads back. Doubles printed with %f and %v follow Go's fmt (NaN, +Inf;
 * %v switches to exponent form below 1e-4 and from 1e6: "1e+06"). Timestamps are Go's
 * time.Time.String() in UTC. Trace and span ids are lowercase hex, empty when all zero. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "debug.h"

/* AnyValue nesting followed when rendering maps and slices; deeper parts print as null. */
#define MAX_VALUE_DEPTH 64
/* Accumulated text is handed to the sink's flush past this size, at record boundaries. */
#define FLUSH_AT 65536

static void maybe_flush(exp_debug_sink_t *s)
{
    if (s->flush != NULL && s->sb->len >= FLUSH_AT) {
        s->flush(s->arg);
    }
}

static void put(exp_debug_sink_t *s, const char *str)
{
    om_strbuf_puts(s->sb, str != NULL ? str : "");
}

static void putf(exp_debug_sink_t *s, const char *fmt, ...) OM_PRINTF(2, 3);

static void putf(exp_debug_sink_t *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    om_strbuf_vprintf(s->sb, fmt, ap);
    va_end(ap);
}

/* ---- numbers, times, ids ----------------------------------------------------------------- */

/* The shortest decimal digits that read back as |v| (finite), without trailing zeros, and the
 * decimal exponent of the first digit. digits needs room for 18 bytes. */
static void shortest_digits(double v, char *digits, int *exp10)
{
    char buf[40];
    double a = fabs(v);
    for (int prec = 0; prec <= 16; prec++) {
        snprintf(buf, sizeof buf, "%.*e", prec, a);
        if (strtod(buf, NULL) == a) {
            break;
        }
    }
    size_t n = 0;
    const char *p = buf;
    for (; *p != '\0' && *p != 'e' && n < 17; p++) {
        if (*p != '.') {
            digits[n++] = *p;
        }
    }
    while (n > 1 && digits[n - 1] == '0') {
        n--;
    }
    digits[n] = '\0';
    *exp10 = *p == 'e' ? (int)strtol(p + 1, NULL, 10) : 0;
}

/* digits as d.ddd, then e, the exponent's sign and at least min_exp_digits digits. */
static void fmt_exp(char *out, size_t cap, bool neg, const char *digits, int exp10,
                    int min_exp_digits)
{
    snprintf(out, cap, "%s%c%s%se%c%0*d", neg ? "-" : "", digits[0], digits[1] != '\0' ? "." : "",
             digits + 1, exp10 < 0 ? '-' : '+', min_exp_digits, abs(exp10));
}

/* digits placed around the decimal point, no exponent. */
static void fmt_fixed(char *out, size_t cap, bool neg, const char *digits, int exp10)
{
    int n = (int)strlen(digits);
    int dp = exp10 + 1; /* digits before the point */
    size_t len = 0;
    char buf[400];
    if (neg) {
        buf[len++] = '-';
    }
    if (dp <= 0) {
        buf[len++] = '0';
        buf[len++] = '.';
        for (int i = 0; i < -dp; i++) {
            buf[len++] = '0';
        }
        memcpy(buf + len, digits, (size_t)n);
        len += (size_t)n;
    } else {
        for (int i = 0; i < dp || i < n; i++) {
            if (i == dp) {
                buf[len++] = '.';
            }
            buf[len++] = i < n ? digits[i] : '0';
        }
    }
    buf[len] = '\0';
    snprintf(out, cap, "%s", buf);
}

void exp_debug_fmt_double(char *out, size_t cap, double v, char style)
{
    if (isnan(v)) {
        snprintf(out, cap, "NaN");
        return;
    }
    if (isinf(v)) {
        snprintf(out, cap, "%s", v > 0 ? "+Inf" : "-Inf");
        return;
    }
    if (style == 'f') {
        snprintf(out, cap, "%f", v);
        return;
    }
    char digits[20];
    int exp10 = 0;
    shortest_digits(v, digits, &exp10);
    bool neg = signbit(v) != 0;
    double a = fabs(v);
    if (style == 'j') {
        /* pcommon's float64AsString: ES6 number formatting, as encoding/json. */
        if (a != 0 && (a < 1e-6 || a >= 1e21)) {
            fmt_exp(out, cap, neg, digits, exp10, 1);
        } else {
            fmt_fixed(out, cap, neg, digits, exp10);
        }
        return;
    }
    /* %v: strconv 'g' with the shortest precision decides at exponent -4 and 6. */
    if (exp10 < -4 || exp10 >= 6) {
        fmt_exp(out, cap, neg, digits, exp10, 2);
    } else {
        fmt_fixed(out, cap, neg, digits, exp10);
    }
}

void exp_debug_fmt_time(char *out, size_t cap, uint64_t unix_nano)
{
    int64_t ns = (int64_t)unix_nano;
    int64_t sec = ns / OM_NS_PER_S;
    int64_t frac = ns % OM_NS_PER_S;
    if (frac < 0) {
        frac += OM_NS_PER_S;
        sec--;
    }
    time_t t = (time_t)sec;
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL) {
        snprintf(out, cap, "?");
        return;
    }
    char fr[16] = "";
    if (frac != 0) {
        snprintf(fr, sizeof fr, ".%09lld", (long long)frac);
        size_t n = strlen(fr);
        while (fr[n - 1] == '0') {
            fr[--n] = '\0';
        }
    }
    snprintf(out, cap, "%04d-%02d-%02d %02d:%02d:%02d%s +0000 UTC", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, fr);
}

static void put_double(exp_debug_sink_t *s, double v, char style)
{
    char buf[400];
    exp_debug_fmt_double(buf, sizeof buf, v, style);
    put(s, buf);
}

static void put_time(exp_debug_sink_t *s, uint64_t unix_nano)
{
    char buf[64];
    exp_debug_fmt_time(buf, sizeof buf, unix_nano);
    put(s, buf);
}

/* pdata's TraceID/SpanID String(): lowercase hex, "" when all zero. */
static void put_id(exp_debug_sink_t *s, ProtobufCBinaryData id)
{
    bool zero = true;
    for (size_t i = 0; i < id.len; i++) {
        zero = zero && id.data[i] == 0;
    }
    for (size_t i = 0; !zero && i < id.len; i++) {
        putf(s, "%02x", id.data[i]);
    }
}

static void put_base64(om_strbuf_t *sb, const uint8_t *p, size_t n)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < n) {
            v |= (uint32_t)p[i + 1] << 8;
        }
        if (i + 2 < n) {
            v |= p[i + 2];
        }
        char q[4] = {tbl[(v >> 18) & 63], tbl[(v >> 12) & 63], i + 1 < n ? tbl[(v >> 6) & 63] : '=',
                     i + 2 < n ? tbl[v & 63] : '='};
        om_strbuf_append(sb, q, 4);
    }
}

/* ---- values ------------------------------------------------------------------------------ */

static int vcase(const om_anyvalue_t *v)
{
    return v != NULL ? (int)v->value_case : 0;
}

#define VC(x) OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_##x

static const char *value_type_name(const om_anyvalue_t *v)
{
    switch (vcase(v)) {
    case VC(STRING_VALUE):
        return "Str";
    case VC(BOOL_VALUE):
        return "Bool";
    case VC(INT_VALUE):
        return "Int";
    case VC(DOUBLE_VALUE):
        return "Double";
    case VC(ARRAY_VALUE):
        return "Slice";
    case VC(KVLIST_VALUE):
        return "Map";
    case VC(BYTES_VALUE):
        return "Bytes";
    default:
        return "Empty";
    }
}

/* Whether the value holds a NaN or an infinity, which encoding/json refuses. */
static bool has_nonfinite(const om_anyvalue_t *v, int depth)
{
    if (depth > MAX_VALUE_DEPTH) {
        return false;
    }
    if (vcase(v) == VC(DOUBLE_VALUE)) {
        return !isfinite(v->double_value);
    }
    if (vcase(v) == VC(ARRAY_VALUE) && v->array_value != NULL) {
        for (size_t i = 0; i < v->array_value->n_values; i++) {
            if (has_nonfinite(v->array_value->values[i], depth + 1)) {
                return true;
            }
        }
    }
    if (vcase(v) == VC(KVLIST_VALUE) && v->kvlist_value != NULL) {
        for (size_t i = 0; i < v->kvlist_value->n_values; i++) {
            if (has_nonfinite(v->kvlist_value->values[i]->value, depth + 1)) {
                return true;
            }
        }
    }
    return false;
}

/* Length of the valid UTF-8 sequence at p (at most n bytes), 0 when invalid. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    size_t len = p[0] < 0xc2 ? 0 : p[0] < 0xe0 ? 2 : p[0] < 0xf0 ? 3 : p[0] < 0xf5 ? 4 : 0;
    if (len == 0 || len > n) {
        return 0;
    }
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            return 0;
        }
    }
    if ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] > 0x9f) ||
        (p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] > 0x8f)) {
        return 0;
    }
    return len;
}

/* A JSON string as Go's encoding/json writes it (HTML-safe, U+2028/9 and bad bytes escaped). */
static void put_json_string(om_strbuf_t *sb, const char *str)
{
    const unsigned char *p = (const unsigned char *)(str != NULL ? str : "");
    size_t n = strlen((const char *)p);
    om_strbuf_putc(sb, '"');
    /* Bounded by n: every turn consumes at least one byte. */
    for (size_t i = 0; i < n;) {
        unsigned char c = p[i];
        if (c >= 0x80) {
            size_t len = utf8_len(p + i, n - i);
            if (len == 0) {
                om_strbuf_puts(sb, "\\ufffd");
                i++;
            } else if (len == 3 && c == 0xe2 && p[i + 1] == 0x80 && (p[i + 2] & 0xfe) == 0xa8) {
                om_strbuf_printf(sb, "\\u202%c", p[i + 2] == 0xa8 ? '8' : '9');
                i += 3;
            } else {
                om_strbuf_append(sb, p + i, len);
                i += len;
            }
            continue;
        }
        const char *esc = c == '"'    ? "\\\""
                          : c == '\\' ? "\\\\"
                          : c == '\n' ? "\\n"
                          : c == '\r' ? "\\r"
                          : c == '\t' ? "\\t"
                          : c == '\b' ? "\\b"
                          : c == '\f' ? "\\f"
                                      : NULL;
        if (esc != NULL) {
            om_strbuf_puts(sb, esc);
        } else if (c < 0x20 || c == '<' || c == '>' || c == '&') {
            om_strbuf_printf(sb, "\\u%04x", c);
        } else {
            om_strbuf_putc(sb, (char)c);
        }
        i++;
    }
    om_strbuf_putc(sb, '"');
}

static void put_json_value(om_strbuf_t *sb, const om_anyvalue_t *v, int depth);

static int kv_order(const void *a, const void *b)
{
    const om_keyvalue_t *const *x = a, *const *y = b;
    int c = strcmp((*x)->key != NULL ? (*x)->key : "", (*y)->key != NULL ? (*y)->key : "");
    /* Equal keys keep their order (the array is sorted by address within a key), so the
     * last one of a run is the one a Go map would hold. */
    return c != 0 ? c : (x < y ? -1 : (x > y));
}

/* A KeyValueList as encoding/json writes a Go map: keys sorted, the last duplicate winning. */
static void put_json_map(om_strbuf_t *sb, const om_kvlist_t *kvs, int depth)
{
    size_t n = kvs != NULL ? kvs->n_values : 0;
    om_keyvalue_t **sorted = n > 0 ? om_malloc(n * sizeof *sorted) : NULL;
    if (n > 0 && sorted == NULL) {
        sb->failed = true;
        return;
    }
    if (n > 0) {
        memcpy(sorted, kvs->values, n * sizeof *sorted);
        qsort(sorted, n, sizeof *sorted, kv_order);
    }
    om_strbuf_putc(sb, '{');
    bool first = true;
    for (size_t i = 0; i < n; i++) {
        const char *k = sorted[i]->key != NULL ? sorted[i]->key : "";
        const char *next = i + 1 < n && sorted[i + 1]->key != NULL ? sorted[i + 1]->key : NULL;
        if (next != NULL && strcmp(k, next) == 0) {
            continue;
        }
        if (!first) {
            om_strbuf_putc(sb, ',');
        }
        first = false;
        put_json_string(sb, k);
        om_strbuf_putc(sb, ':');
        put_json_value(sb, sorted[i]->value, depth + 1);
    }
    om_strbuf_putc(sb, '}');
    om_free(sorted);
}

static void put_json_value(om_strbuf_t *sb, const om_anyvalue_t *v, int depth)
{
    char num[40];
    if (depth > MAX_VALUE_DEPTH) {
        om_strbuf_puts(sb, "null");
        return;
    }
    switch (vcase(v)) {
    case VC(STRING_VALUE):
        put_json_string(sb, v->string_value);
        return;
    case VC(BOOL_VALUE):
        om_strbuf_puts(sb, v->bool_value ? "true" : "false");
        return;
    case VC(INT_VALUE):
        om_strbuf_printf(sb, "%lld", (long long)v->int_value);
        return;
    case VC(DOUBLE_VALUE):
        exp_debug_fmt_double(num, sizeof num, v->double_value, 'j');
        om_strbuf_puts(sb, num);
        return;
    case VC(BYTES_VALUE):
        om_strbuf_putc(sb, '"');
        put_base64(sb, v->bytes_value.data, v->bytes_value.len);
        om_strbuf_putc(sb, '"');
        return;
    case VC(KVLIST_VALUE):
        put_json_map(sb, v->kvlist_value, depth);
        return;
    case VC(ARRAY_VALUE):
        om_strbuf_putc(sb, '[');
        for (size_t i = 0; v->array_value != NULL && i < v->array_value->n_values; i++) {
            if (i > 0) {
                om_strbuf_putc(sb, ',');
            }
            put_json_value(sb, v->array_value->values[i], depth + 1);
        }
        om_strbuf_putc(sb, ']');
        return;
    default:
        om_strbuf_puts(sb, "null");
        return;
    }
}

/* pcommon.Value.AsString(). */
static void put_as_string(exp_debug_sink_t *s, const om_anyvalue_t *v)
{
    switch (vcase(v)) {
    case VC(STRING_VALUE):
        put(s, v->string_value);
        return;
    case VC(BOOL_VALUE):
        put(s, v->bool_value ? "true" : "false");
        return;
    case VC(INT_VALUE):
        putf(s, "%lld", (long long)v->int_value);
        return;
    case VC(DOUBLE_VALUE):
        put_double(s, v->double_value, 'j');
        return;
    case VC(BYTES_VALUE):
        put_base64(s->sb, v->bytes_value.data, v->bytes_value.len);
        return;
    case VC(KVLIST_VALUE):
    case VC(ARRAY_VALUE):
        /* json.Marshal fails on NaN and infinities, and AsString then gives "". */
        if (!has_nonfinite(v, 0)) {
            put_json_value(s->sb, v, 0);
        }
        return;
    default:
        return;
    }
}

/* ---- detailed: shared parts -------------------------------------------------------------- */

/* dataBuffer.logAttributes: a header line, then one line per attribute, indented under a
 * header that is itself an "->" entry. */
static void put_attrs(exp_debug_sink_t *s, const char *header, om_keyvalue_t *const *kvs, size_t n)
{
    if (n == 0) {
        return;
    }
    putf(s, "%s:\n", header);
    const char *arrow = strstr(header, "->");
    int indent = arrow != NULL ? (int)(arrow - header) : 0;
    for (size_t i = 0; i < n; i++) {
        putf(s, "%.*s     -> %s: %s(", indent, header, kvs[i]->key != NULL ? kvs[i]->key : "",
             value_type_name(kvs[i]->value));
        put_as_string(s, kvs[i]->value);
        put(s, ")\n");
    }
}

static void put_entity_refs(exp_debug_sink_t *s, const om_resource_t *r)
{
    if (r == NULL || r->n_entity_refs == 0) {
        return;
    }
    put(s, "Resource entity refs:\n");
    for (size_t i = 0; i < r->n_entity_refs; i++) {
        const Opentelemetry__Proto__Common__V1__EntityRef *e = r->entity_refs[i];
        putf(s, "     -> Entity ref #%zu:\n          -> Type: %s\n", i,
             e->type != NULL ? e->type : "");
        if (e->schema_url != NULL && e->schema_url[0] != '\0') {
            putf(s, "          -> Schema URL: %s\n", e->schema_url);
        }
        if (e->n_id_keys > 0) {
            put(s, "          -> ID keys:\n");
        }
        for (size_t j = 0; j < e->n_id_keys; j++) {
            putf(s, "               -> %s\n", e->id_keys[j]);
        }
        if (e->n_description_keys > 0) {
            put(s, "          -> Description keys:\n");
        }
        for (size_t j = 0; j < e->n_description_keys; j++) {
            putf(s, "               -> %s\n", e->description_keys[j]);
        }
    }
}

static void put_resource(exp_debug_sink_t *s, const char *title, size_t i, const om_resource_t *r,
                         const char *schema_url)
{
    putf(s, "%s #%zu\nResource SchemaURL: %s\n", title, i, schema_url != NULL ? schema_url : "");
    if (r != NULL) {
        put_attrs(s, "Resource attributes", r->attributes, r->n_attributes);
    }
    put_entity_refs(s, r);
}

static void put_scope(exp_debug_sink_t *s, const char *title, size_t j, const om_scope_t *sc,
                      const char *schema_url)
{
    putf(s, "%s #%zu\n%s SchemaURL: %s\n", title, j, title, schema_url != NULL ? schema_url : "");
    putf(s, "InstrumentationScope %s %s\n", sc != NULL && sc->name != NULL ? sc->name : "",
         sc != NULL && sc->version != NULL ? sc->version : "");
    if (sc != NULL) {
        put_attrs(s, "InstrumentationScope attributes", sc->attributes, sc->n_attributes);
    }
}

/* ---- detailed: traces -------------------------------------------------------------------- */

static const char *span_kind_name(int k)
{
    static const char *const names[] = {"Unspecified", "Internal", "Server",
                                        "Client",      "Producer", "Consumer"};
    return k >= 0 && k < 6 ? names[k] : "";
}

static const char *status_code_name(const om_span_status_t *st)
{
    int c = st != NULL ? (int)st->code : 0;
    return c == 0 ? "Unset" : c == 1 ? "Ok" : c == 2 ? "Error" : "";
}

/* logAttr: "    %-15s: value". */
static void put_field(exp_debug_sink_t *s, const char *name, const char *value)
{
    putf(s, "    %-15s: %s\n", name, value != NULL ? value : "");
}

static void put_span_events_links(exp_debug_sink_t *s, const om_span_t *sp)
{
    if (sp->n_events > 0) {
        put(s, "Events:\n");
    }
    for (size_t i = 0; i < sp->n_events; i++) {
        const om_span_event_t *e = sp->events[i];
        putf(s, "SpanEvent #%zu\n     -> Name: %s\n     -> Timestamp: ", i,
             e->name != NULL ? e->name : "");
        put_time(s, e->time_unix_nano);
        putf(s, "\n     -> DroppedAttributesCount: %u\n", e->dropped_attributes_count);
        put_attrs(s, "     -> Attributes:", e->attributes, e->n_attributes);
    }
    if (sp->n_links > 0) {
        put(s, "Links:\n");
    }
    for (size_t i = 0; i < sp->n_links; i++) {
        const om_span_link_t *l = sp->links[i];
        putf(s, "SpanLink #%zu\n     -> Trace ID: ", i);
        put_id(s, l->trace_id);
        put(s, "\n     -> ID: ");
        put_id(s, l->span_id);
        putf(s, "\n     -> TraceState: %s\n     -> DroppedAttributesCount: %u\n",
             l->trace_state != NULL ? l->trace_state : "", l->dropped_attributes_count);
        put_attrs(s, "     -> Attributes:", l->attributes, l->n_attributes);
    }
}

static void put_span(exp_debug_sink_t *s, size_t k, const om_span_t *sp)
{
    char buf[64];
    putf(s, "Span #%zu\n    %-15s: ", k, "Trace ID");
    put_id(s, sp->trace_id);
    putf(s, "\n    %-15s: ", "Parent ID");
    put_id(s, sp->parent_span_id);
    putf(s, "\n    %-15s: ", "ID");
    put_id(s, sp->span_id);
    put(s, "\n");
    put_field(s, "Name", sp->name);
    put_field(s, "Kind", span_kind_name((int)sp->kind));
    if (sp->trace_state != NULL && sp->trace_state[0] != '\0') {
        put_field(s, "TraceState", sp->trace_state);
    }
    exp_debug_fmt_time(buf, sizeof buf, sp->start_time_unix_nano);
    put_field(s, "Start time", buf);
    exp_debug_fmt_time(buf, sizeof buf, sp->end_time_unix_nano);
    put_field(s, "End time", buf);
    put_field(s, "Status code", status_code_name(sp->status));
    put_field(s, "Status message", sp->status != NULL ? sp->status->message : "");
    putf(s,
         "    DroppedAttributesCount: %u\n    DroppedEventsCount: %u\n"
         "    DroppedLinksCount: %u\n",
         sp->dropped_attributes_count, sp->dropped_events_count, sp->dropped_links_count);
    put_attrs(s, "Attributes", sp->attributes, sp->n_attributes);
    put_span_events_links(s, sp);
}

static void detailed_traces(exp_debug_sink_t *s, const om_traces_req_t *req)
{
    for (size_t i = 0; i < req->n_resource_spans; i++) {
        const om_resource_spans_t *rs = req->resource_spans[i];
        put_resource(s, "ResourceSpans", i, rs->resource, rs->schema_url);
        for (size_t j = 0; j < rs->n_scope_spans; j++) {
            const om_scope_spans_t *ss = rs->scope_spans[j];
            put_scope(s, "ScopeSpans", j, ss->scope, ss->schema_url);
            for (size_t k = 0; k < ss->n_spans; k++) {
                put_span(s, k, ss->spans[k]);
                maybe_flush(s);
            }
        }
    }
}

/* ---- detailed: logs ---------------------------------------------------------------------- */

static const char *severity_name(int n)
{
    static const char *const names[] = {
        "Unspecified", "Trace",  "Trace2", "Trace3", "Trace4", "Debug",  "Debug2",
        "Debug3",      "Debug4", "Info",   "Info2",  "Info3",  "Info4",  "Warn",
        "Warn2",       "Warn3",  "Warn4",  "Error",  "Error2", "Error3", "Error4",
        "Fatal",       "Fatal2", "Fatal3", "Fatal4",
    };
    return n >= 0 && n <= 24 ? names[n] : "";
}

static void put_log_record(exp_debug_sink_t *s, size_t k, const om_log_record_t *lr)
{
    putf(s, "LogRecord #%zu\nObservedTimestamp: ", k);
    put_time(s, lr->observed_time_unix_nano);
    put(s, "\nTimestamp: ");
    put_time(s, lr->time_unix_nano);
    putf(s, "\nSeverityText: %s\nSeverityNumber: %s(%d)\n",
         lr->severity_text != NULL ? lr->severity_text : "",
         severity_name((int)lr->severity_number), (int)lr->severity_number);
    if (lr->event_name != NULL && lr->event_name[0] != '\0') {
        putf(s, "EventName: %s\n", lr->event_name);
    }
    putf(s, "Body: %s(", value_type_name(lr->body));
    put_as_string(s, lr->body);
    put(s, ")\n");
    put_attrs(s, "Attributes", lr->attributes, lr->n_attributes);
    put(s, "Trace ID: ");
    put_id(s, lr->trace_id);
    put(s, "\nSpan ID: ");
    put_id(s, lr->span_id);
    putf(s, "\nFlags: %u\n", lr->flags);
}

static void detailed_logs(exp_debug_sink_t *s, const om_logs_req_t *req)
{
    for (size_t i = 0; i < req->n_resource_logs; i++) {
        const om_resource_logs_t *rl = req->resource_logs[i];
        put_resource(s, "ResourceLog", i, rl->resource, rl->schema_url);
        for (size_t j = 0; j < rl->n_scope_logs; j++) {
            const om_scope_logs_t *sl = rl->scope_logs[j];
            put_scope(s, "ScopeLogs", j, sl->scope, sl->schema_url);
            for (size_t k = 0; k < sl->n_log_records; k++) {
                put_log_record(s, k, sl->log_records[k]);
                maybe_flush(s);
            }
        }
    }
}

/* ---- detailed: metrics ------------------------------------------------------------------- */

#define MV(x) OPENTELEMETRY__PROTO__METRICS__V1__##x

static const char *metric_type_name(const om_metric_t *m)
{
    switch (m->data_case) {
    case MV(METRIC__DATA_GAUGE):
        return "Gauge";
    case MV(METRIC__DATA_SUM):
        return "Sum";
    case MV(METRIC__DATA_HISTOGRAM):
        return "Histogram";
    case MV(METRIC__DATA_EXPONENTIAL_HISTOGRAM):
        return "ExponentialHistogram";
    case MV(METRIC__DATA_SUMMARY):
        return "Summary";
    default:
        return "Empty";
    }
}

static const char *temporality_name(int t)
{
    return t == 0 ? "Unspecified" : t == 1 ? "Delta" : t == 2 ? "Cumulative" : "";
}

static void put_exemplars(exp_debug_sink_t *s, om_exemplar_t *const *ex, size_t n)
{
    if (n > 0) {
        put(s, "Exemplars:\n");
    }
    for (size_t i = 0; i < n; i++) {
        const om_exemplar_t *e = ex[i];
        putf(s, "Exemplar #%zu\n     -> Trace ID: ", i);
        put_id(s, e->trace_id);
        put(s, "\n     -> Span ID: ");
        put_id(s, e->span_id);
        put(s, "\n     -> Timestamp: ");
        put_time(s, e->time_unix_nano);
        put(s, "\n");
        if (e->value_case == MV(EXEMPLAR__VALUE_AS_INT)) {
            putf(s, "     -> Value: %lld\n", (long long)e->as_int);
        } else if (e->value_case == MV(EXEMPLAR__VALUE_AS_DOUBLE)) {
            put(s, "     -> Value: ");
            put_double(s, e->as_double, 'f');
            put(s, "\n");
        }
        put_attrs(s, "     -> FilteredAttributes", e->filtered_attributes,
                  e->n_filtered_attributes);
    }
}

/* The attribute and timestamp lines every kind of point starts with. */
static void put_point_head(exp_debug_sink_t *s, const char *kind, size_t i,
                           om_keyvalue_t *const *attrs, size_t n_attrs, uint64_t start, uint64_t ts)
{
    putf(s, "%s #%zu\n", kind, i);
    put_attrs(s, "Data point attributes", attrs, n_attrs);
    put(s, "StartTimestamp: ");
    put_time(s, start);
    put(s, "\nTimestamp: ");
    put_time(s, ts);
    put(s, "\n");
}

/* "<label>: %f" */
static void put_f_line(exp_debug_sink_t *s, const char *label, double v)
{
    putf(s, "%s: ", label);
    put_double(s, v, 'f');
    put(s, "\n");
}

static void put_number_points(exp_debug_sink_t *s, om_number_dp_t *const *pts, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const om_number_dp_t *p = pts[i];
        put_point_head(s, "NumberDataPoints", i, p->attributes, p->n_attributes,
                       p->start_time_unix_nano, p->time_unix_nano);
        if (p->value_case == MV(NUMBER_DATA_POINT__VALUE_AS_INT)) {
            putf(s, "Value: %lld\n", (long long)p->as_int);
        } else if (p->value_case == MV(NUMBER_DATA_POINT__VALUE_AS_DOUBLE)) {
            put_f_line(s, "Value", p->as_double);
        }
        put_exemplars(s, p->exemplars, p->n_exemplars);
        maybe_flush(s);
    }
}

static void put_histogram_points(exp_debug_sink_t *s, om_histogram_dp_t *const *pts, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const om_histogram_dp_t *p = pts[i];
        put_point_head(s, "HistogramDataPoints", i, p->attributes, p->n_attributes,
                       p->start_time_unix_nano, p->time_unix_nano);
        putf(s, "Count: %llu\n", (unsigned long long)p->count);
        if (p->_sum_case == MV(HISTOGRAM_DATA_POINT___SUM_SUM)) {
            put_f_line(s, "Sum", p->sum);
        }
        if (p->_min_case == MV(HISTOGRAM_DATA_POINT___MIN_MIN)) {
            put_f_line(s, "Min", p->min);
        }
        if (p->_max_case == MV(HISTOGRAM_DATA_POINT___MAX_MAX)) {
            put_f_line(s, "Max", p->max);
        }
        for (size_t j = 0; j < p->n_explicit_bounds; j++) {
            putf(s, "ExplicitBounds #%zu: ", j);
            put_double(s, p->explicit_bounds[j], 'f');
            put(s, "\n");
        }
        for (size_t j = 0; j < p->n_bucket_counts; j++) {
            putf(s, "Buckets #%zu, Count: %llu\n", j, (unsigned long long)p->bucket_counts[j]);
        }
        put_exemplars(s, p->exemplars, p->n_exemplars);
        maybe_flush(s);
    }
}

/* "Bucket <open>lo, hi<close>, Count: n" with both bounds as %f. */
static void put_bucket(exp_debug_sink_t *s, const char *open, double lo, double hi,
                       const char *close, uint64_t count)
{
    putf(s, "Bucket %s", open);
    put_double(s, lo, 'f');
    put(s, ", ");
    put_double(s, hi, 'f');
    putf(s, "%s, Count: %llu\n", close, (unsigned long long)count);
}

/* The buckets as otelcol prints them: bounds exp(index * ln2 / 2^scale). */
static void put_exp_buckets(exp_debug_sink_t *s, const om_exp_histogram_dp_t *p)
{
    double factor = ldexp(M_LN2, -(int)p->scale);
    const om_exp_buckets_t *neg = p->negative, *pos = p->positive;
    size_t nneg = neg != NULL ? neg->n_bucket_counts : 0;
    for (size_t i = 0; i < nneg; i++) {
        size_t b = nneg - i - 1;
        double index = (double)neg->offset + (double)b;
        put_bucket(s, "[", -exp((index + 1) * factor), -exp(index * factor), ")",
                   neg->bucket_counts[b]);
    }
    if (p->zero_count != 0) {
        putf(s, "Bucket [0, 0], Count: %llu\n", (unsigned long long)p->zero_count);
    }
    for (size_t b = 0; pos != NULL && b < pos->n_bucket_counts; b++) {
        double index = (double)pos->offset + (double)b;
        put_bucket(s, "(", exp(index * factor), exp((index + 1) * factor), "]",
                   pos->bucket_counts[b]);
    }
}

static void put_exp_histogram_points(exp_debug_sink_t *s, om_exp_histogram_dp_t *const *pts,
                                     size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const om_exp_histogram_dp_t *p = pts[i];
        put_point_head(s, "ExponentialHistogramDataPoints", i, p->attributes, p->n_attributes,
                       p->start_time_unix_nano, p->time_unix_nano);
        putf(s, "Count: %llu\n", (unsigned long long)p->count);
        if (p->_sum_case == MV(EXPONENTIAL_HISTOGRAM_DATA_POINT___SUM_SUM)) {
            put_f_line(s, "Sum", p->sum);
        }
        if (p->_min_case == MV(EXPONENTIAL_HISTOGRAM_DATA_POINT___MIN_MIN)) {
            put_f_line(s, "Min", p->min);
        }
        if (p->_max_case == MV(EXPONENTIAL_HISTOGRAM_DATA_POINT___MAX_MAX)) {
            put_f_line(s, "Max", p->max);
        }
        put_exp_buckets(s, p);
        put_exemplars(s, p->exemplars, p->n_exemplars);
        maybe_flush(s);
    }
}

static void put_summary_points(exp_debug_sink_t *s, om_summary_dp_t *const *pts, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const om_summary_dp_t *p = pts[i];
        put_point_head(s, "SummaryDataPoints", i, p->attributes, p->n_attributes,
                       p->start_time_unix_nano, p->time_unix_nano);
        putf(s, "Count: %llu\n", (unsigned long long)p->count);
        put_f_line(s, "Sum", p->sum);
        for (size_t j = 0; j < p->n_quantile_values; j++) {
            putf(s, "QuantileValue #%zu: Quantile ", j);
            put_double(s, p->quantile_values[j]->quantile, 'f');
            put(s, ", Value ");
            put_double(s, p->quantile_values[j]->value, 'f');
            put(s, "\n");
        }
        maybe_flush(s);
    }
}

static void put_metric(exp_debug_sink_t *s, size_t k, const om_metric_t *m)
{
    putf(s, "Metric #%zu\nDescriptor:\n     -> Name: %s\n     -> Description: %s\n", k,
         m->name != NULL ? m->name : "", m->description != NULL ? m->description : "");
    putf(s, "     -> Unit: %s\n     -> DataType: %s\n", m->unit != NULL ? m->unit : "",
         metric_type_name(m));
    put_attrs(s, "     -> Metadata", m->metadata, m->n_metadata);
    if (m->data_case == MV(METRIC__DATA_GAUGE) && m->gauge != NULL) {
        put_number_points(s, m->gauge->data_points, m->gauge->n_data_points);
    } else if (m->data_case == MV(METRIC__DATA_SUM) && m->sum != NULL) {
        putf(s, "     -> IsMonotonic: %s\n     -> AggregationTemporality: %s\n",
             m->sum->is_monotonic ? "true" : "false",
             temporality_name((int)m->sum->aggregation_temporality));
        put_number_points(s, m->sum->data_points, m->sum->n_data_points);
    } else if (m->data_case == MV(METRIC__DATA_HISTOGRAM) && m->histogram != NULL) {
        putf(s, "     -> AggregationTemporality: %s\n",
             temporality_name((int)m->histogram->aggregation_temporality));
        put_histogram_points(s, m->histogram->data_points, m->histogram->n_data_points);
    } else if (m->data_case == MV(METRIC__DATA_EXPONENTIAL_HISTOGRAM) &&
               m->exponential_histogram != NULL) {
        const om_exp_histogram_t *eh = m->exponential_histogram;
        putf(s, "     -> AggregationTemporality: %s\n",
             temporality_name((int)eh->aggregation_temporality));
        put_exp_histogram_points(s, eh->data_points, eh->n_data_points);
    } else if (m->data_case == MV(METRIC__DATA_SUMMARY) && m->summary != NULL) {
        put_summary_points(s, m->summary->data_points, m->summary->n_data_points);
    }
}

static void detailed_metrics(exp_debug_sink_t *s, const om_metrics_req_t *req)
{
    for (size_t i = 0; i < req->n_resource_metrics; i++) {
        const om_resource_metrics_t *rm = req->resource_metrics[i];
        put_resource(s, "ResourceMetrics", i, rm->resource, rm->schema_url);
        for (size_t j = 0; j < rm->n_scope_metrics; j++) {
            const om_scope_metrics_t *sm = rm->scope_metrics[j];
            put_scope(s, "ScopeMetrics", j, sm->scope, sm->schema_url);
            for (size_t k = 0; k < sm->n_metrics; k++) {
                put_metric(s, k, sm->metrics[k]);
                maybe_flush(s);
            }
        }
    }
}

void exp_debug_detailed(exp_debug_sink_t *s, const om_batch_t *b)
{
    switch (b->signal) {
    case OM_SIG_TRACES:
        detailed_traces(s, b->traces);
        break;
    case OM_SIG_METRICS:
        detailed_metrics(s, b->metrics);
        break;
    case OM_SIG_LOGS:
        detailed_logs(s, b->logs);
        break;
    default:
        break;
    }
}

/* ---- normal ------------------------------------------------------------------------------ */

/* writeAttributes joined with sep, each "key=AsString". */
static void put_kv_list(exp_debug_sink_t *s, om_keyvalue_t *const *kvs, size_t n, const char *sep)
{
    for (size_t i = 0; i < n; i++) {
        putf(s, "%s%s=", i > 0 ? sep : "", kvs[i]->key != NULL ? kvs[i]->key : "");
        put_as_string(s, kvs[i]->value);
    }
}

/* "<Title> #i[ [schema]][ k=v ...]" */
static void normal_resource(exp_debug_sink_t *s, const char *title, size_t i,
                            const om_resource_t *r, const char *schema_url)
{
    putf(s, "%s #%zu", title, i);
    if (schema_url != NULL && schema_url[0] != '\0') {
        putf(s, " [%s]", schema_url);
    }
    if (r != NULL && r->n_attributes > 0) {
        put(s, " ");
        put_kv_list(s, r->attributes, r->n_attributes, " ");
    }
    put(s, "\n");
}

/* "<Title> #i[ name][@version][ [schema]][ k=v ...]"; i is the resource's index, as otelcol
 * prints it. */
static void normal_scope(exp_debug_sink_t *s, const char *title, size_t i, const om_scope_t *sc,
                         const char *schema_url)
{
    const char *name = sc != NULL && sc->name != NULL ? sc->name : "";
    const char *version = sc != NULL && sc->version != NULL ? sc->version : "";
    bool has_schema = schema_url != NULL && schema_url[0] != '\0';
    putf(s, "%s #%zu", title, i);
    if (name[0] != '\0' || version[0] != '\0' || has_schema) {
        put(s, " ");
    }
    put(s, name);
    if (version[0] != '\0') {
        putf(s, "@%s", version);
    }
    if (has_schema) {
        putf(s, "%s[%s]", name[0] != '\0' || version[0] != '\0' ? " " : "", schema_url);
    }
    if (sc != NULL && sc->n_attributes > 0) {
        put(s, " ");
        put_kv_list(s, sc->attributes, sc->n_attributes, " ");
    }
    put(s, "\n");
}

static void normal_traces(exp_debug_sink_t *s, const om_traces_req_t *req)
{
    for (size_t i = 0; i < req->n_resource_spans; i++) {
        const om_resource_spans_t *rs = req->resource_spans[i];
        normal_resource(s, "ResourceTraces", i, rs->resource, rs->schema_url);
        for (size_t j = 0; j < rs->n_scope_spans; j++) {
            const om_scope_spans_t *ss = rs->scope_spans[j];
            normal_scope(s, "ScopeTraces", i, ss->scope, ss->schema_url);
            for (size_t k = 0; k < ss->n_spans; k++) {
                const om_span_t *sp = ss->spans[k];
                putf(s, "%s ", sp->name != NULL ? sp->name : "");
                put_id(s, sp->trace_id);
                put(s, " ");
                put_id(s, sp->span_id);
                if (sp->n_attributes > 0) {
                    put(s, " ");
                    put_kv_list(s, sp->attributes, sp->n_attributes, " ");
                }
                put(s, "\n");
                maybe_flush(s);
            }
        }
    }
}

static void normal_logs(exp_debug_sink_t *s, const om_logs_req_t *req)
{
    for (size_t i = 0; i < req->n_resource_logs; i++) {
        const om_resource_logs_t *rl = req->resource_logs[i];
        normal_resource(s, "ResourceLog", i, rl->resource, rl->schema_url);
        for (size_t j = 0; j < rl->n_scope_logs; j++) {
            const om_scope_logs_t *sl = rl->scope_logs[j];
            normal_scope(s, "ScopeLog", i, sl->scope, sl->schema_url);
            for (size_t k = 0; k < sl->n_log_records; k++) {
                const om_log_record_t *lr = sl->log_records[k];
                /* "%s %s": the body, a space, the attributes (the space even when none). */
                put_as_string(s, lr->body);
                put(s, " ");
                put_kv_list(s, lr->attributes, lr->n_attributes, " ");
                put(s, "\n");
                maybe_flush(s);
            }
        }
    }
}

/* "name{k=v,k=v} " before each point's value. */
static void normal_point_head(exp_debug_sink_t *s, const om_metric_t *m,
                              om_keyvalue_t *const *attrs, size_t n)
{
    putf(s, "%s{", m->name != NULL ? m->name : "");
    put_kv_list(s, attrs, n, ",");
    put(s, "} ");
}

/* " label=%v" */
static void put_v_field(exp_debug_sink_t *s, const char *label, double v)
{
    putf(s, " %s=", label);
    put_double(s, v, 'v');
}

static void normal_number_points(exp_debug_sink_t *s, const om_metric_t *m,
                                 om_number_dp_t *const *pts, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        normal_point_head(s, m, pts[i]->attributes, pts[i]->n_attributes);
        if (pts[i]->value_case == MV(NUMBER_DATA_POINT__VALUE_AS_INT)) {
            putf(s, "%lld", (long long)pts[i]->as_int);
        } else if (pts[i]->value_case == MV(NUMBER_DATA_POINT__VALUE_AS_DOUBLE)) {
            put_double(s, pts[i]->as_double, 'v');
        }
        put(s, "\n");
    }
}

static void normal_histogram_points(exp_debug_sink_t *s, const om_metric_t *m)
{
    for (size_t i = 0; i < m->histogram->n_data_points; i++) {
        const om_histogram_dp_t *p = m->histogram->data_points[i];
        normal_point_head(s, m, p->attributes, p->n_attributes);
        putf(s, "count=%llu", (unsigned long long)p->count);
        if (p->_sum_case == MV(HISTOGRAM_DATA_POINT___SUM_SUM)) {
            put_v_field(s, "sum", p->sum);
        }
        if (p->_min_case == MV(HISTOGRAM_DATA_POINT___MIN_MIN)) {
            put_v_field(s, "min", p->min);
        }
        if (p->_max_case == MV(HISTOGRAM_DATA_POINT___MAX_MAX)) {
            put_v_field(s, "max", p->max);
        }
        for (size_t j = 0; j < p->n_bucket_counts; j++) {
            put(s, " ");
            if (j < p->n_explicit_bounds) {
                put(s, "le");
                put_double(s, p->explicit_bounds[j], 'v');
                put(s, "=");
            }
            putf(s, "%llu", (unsigned long long)p->bucket_counts[j]);
        }
        put(s, "\n");
    }
}

static void normal_exp_histogram_points(exp_debug_sink_t *s, const om_metric_t *m)
{
    for (size_t i = 0; i < m->exponential_histogram->n_data_points; i++) {
        const om_exp_histogram_dp_t *p = m->exponential_histogram->data_points[i];
        normal_point_head(s, m, p->attributes, p->n_attributes);
        putf(s, "count=%llu", (unsigned long long)p->count);
        if (p->_sum_case == MV(EXPONENTIAL_HISTOGRAM_DATA_POINT___SUM_SUM)) {
            put_v_field(s, "sum", p->sum);
        }
        if (p->_min_case == MV(EXPONENTIAL_HISTOGRAM_DATA_POINT___MIN_MIN)) {
            put_v_field(s, "min", p->min);
        }
        if (p->_max_case == MV(EXPONENTIAL_HISTOGRAM_DATA_POINT___MAX_MAX)) {
            put_v_field(s, "max", p->max);
        }
        put(s, "\n");
    }
}

static void normal_summary_points(exp_debug_sink_t *s, const om_metric_t *m)
{
    for (size_t i = 0; i < m->summary->n_data_points; i++) {
        const om_summary_dp_t *p = m->summary->data_points[i];
        normal_point_head(s, m, p->attributes, p->n_attributes);
        putf(s, "count=%llu sum=", (unsigned long long)p->count);
        put_double(s, p->sum, 'f');
        for (size_t j = 0; j < p->n_quantile_values; j++) {
            put(s, " q");
            put_double(s, p->quantile_values[j]->quantile, 'v');
            put(s, "=");
            put_double(s, p->quantile_values[j]->value, 'v');
        }
        put(s, "\n");
    }
}

static void normal_metric(exp_debug_sink_t *s, const om_metric_t *m)
{
    if (m->data_case == MV(METRIC__DATA_GAUGE) && m->gauge != NULL) {
        normal_number_points(s, m, m->gauge->data_points, m->gauge->n_data_points);
    } else if (m->data_case == MV(METRIC__DATA_SUM) && m->sum != NULL) {
        normal_number_points(s, m, m->sum->data_points, m->sum->n_data_points);
    } else if (m->data_case == MV(METRIC__DATA_HISTOGRAM) && m->histogram != NULL) {
        normal_histogram_points(s, m);
    } else if (m->data_case == MV(METRIC__DATA_EXPONENTIAL_HISTOGRAM) &&
               m->exponential_histogram != NULL) {
        normal_exp_histogram_points(s, m);
    } else if (m->data_case == MV(METRIC__DATA_SUMMARY) && m->summary != NULL) {
        normal_summary_points(s, m);
    }
}

static void normal_metrics(exp_debug_sink_t *s, const om_metrics_req_t *req)
{
    for (size_t i = 0; i < req->n_resource_metrics; i++) {
        const om_resource_metrics_t *rm = req->resource_metrics[i];
        normal_resource(s, "ResourceMetrics", i, rm->resource, rm->schema_url);
        for (size_t j = 0; j < rm->n_scope_metrics; j++) {
            const om_scope_metrics_t *sm = rm->scope_metrics[j];
            normal_scope(s, "ScopeMetrics", i, sm->scope, sm->schema_url);
            for (size_t k = 0; k < sm->n_metrics; k++) {
                normal_metric(s, sm->metrics[k]);
                maybe_flush(s);
            }
        }
    }
}

void exp_debug_normal(exp_debug_sink_t *s, const om_batch_t *b)
{
    switch (b->signal) {
    case OM_SIG_TRACES:
        normal_traces(s, b->traces);
        break;
    case OM_SIG_METRICS:
        normal_metrics(s, b->metrics);
        break;
    case OM_SIG_LOGS:
        normal_logs(s, b->logs);
        break;
    default:
        break;
    }
}
