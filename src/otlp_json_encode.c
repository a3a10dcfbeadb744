/* otlp_json_encode.c: OTLP requests, responses and rpc statuses as OTLP/JSON.
 *
 * The output is what the Go collector's pdata marshaller (and so the otelcol-contrib file
 * exporter) writes, byte for byte where the two can agree:
 * - keys in lowerCamelCase, fields in .proto declaration order (not field-number order);
 * - trace/span ids as lowercase hex, omitted when empty or all zero; other bytes as base64;
 * - enums as integers; 64-bit integers as decimal strings; 32-bit integers as numbers;
 * - zero values, empty strings and empty lists omitted; oneof members and proto3 `optional`
 *   fields written whenever they are set (also when zero);
 * - the message fields pdata holds by value are always written, as {} when unset:
 *   Resource*.resource, Scope*.scope, Span.status, KeyValue.value, LogRecord.body and
 *   ExponentialHistogramDataPoint.positive/negative;
 * - doubles in their shortest round-trip form, as Go's strconv 'f' format, switching to
 *   exponent form below 1e-6 and from 1e21 ("1e-7", "1e+21").
 * Where we differ on purpose:
 * - NaN and infinities are written as the proto3 JSON strings "NaN", "Infinity" and
 *   "-Infinity" (pdata writes "NaN", "+Inf", "-Inf"; our decoder reads both).
 * - Strings are escaped as JSON requires (", \, control characters; \n \r \t and \u00xx), and
 *   every byte that is not part of valid UTF-8 is replaced by U+FFFD, so the output is always
 *   valid JSON (pdata copies invalid bytes through).
 *
 * Everything is written straight into the caller's om_strbuf_t, without an intermediate tree:
 * this is on the hot path of the file exporter. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "om.h"

/* Nesting of AnyValue (arrays and kvlists) the encoder follows. Deeper values can only come
 * from a producer that bypassed our decoders' limits; we refuse them rather than recurse. */
#define ENC_MAX_ANY_DEPTH 128

typedef struct enc {
    om_strbuf_t *sb;
    unsigned any_depth;
    bool too_deep;
} enc_t;

/* ---------------------------------------------------------------------------------------- */
/* Primitives                                                                                 */

#define PUTLIT(sb, lit) om_strbuf_append((sb), (lit), sizeof(lit) - 1)

/* Writes `"name":`, preceded by a comma unless it is the object's first field. */
static void put_key(om_strbuf_t *sb, bool *first, const char *quoted_key, size_t n)
{
    if (!*first) {
        om_strbuf_putc(sb, ',');
    }
    *first = false;
    om_strbuf_append(sb, quoted_key, n);
}
#define KEY(sb, first, name) put_key((sb), (first), "\"" name "\":", sizeof("\"" name "\":") - 1)

static void put_u64_raw(om_strbuf_t *sb, uint64_t v)
{
    char buf[24];
    char *p = buf + sizeof buf;
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    om_strbuf_append(sb, p, (size_t)(buf + sizeof buf - p));
}

static void put_i64_raw(om_strbuf_t *sb, int64_t v)
{
    if (v < 0) {
        om_strbuf_putc(sb, '-');
        /* Negate in unsigned arithmetic so INT64_MIN does not overflow. */
        put_u64_raw(sb, (uint64_t)0 - (uint64_t)v);
        return;
    }
    put_u64_raw(sb, (uint64_t)v);
}

/* 64-bit integers are strings in proto3 JSON. */
static void put_u64_str(om_strbuf_t *sb, uint64_t v)
{
    om_strbuf_putc(sb, '"');
    put_u64_raw(sb, v);
    om_strbuf_putc(sb, '"');
}

static void put_i64_str(om_strbuf_t *sb, int64_t v)
{
    om_strbuf_putc(sb, '"');
    put_i64_raw(sb, v);
    om_strbuf_putc(sb, '"');
}

/* Length of the valid UTF-8 sequence starting at s (lead byte >= 0x80), or 0 when invalid:
 * overlongs, surrogates, code points above U+10FFFF and truncated sequences are invalid. */
static size_t utf8_seq_len(const unsigned char *s, size_t avail)
{
    unsigned char c = s[0];
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        lo = c == 0xE0 ? 0xA0 : 0x80;
        hi = c == 0xED ? 0x9F : 0xBF;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        lo = c == 0xF0 ? 0x90 : 0x80;
        hi = c == 0xF4 ? 0x8F : 0xBF;
    } else {
        return 0;
    }
    if (avail < n || s[1] < lo || s[1] > hi) {
        return 0;
    }
    for (size_t i = 2; i < n; i++) {
        if (s[i] < 0x80 || s[i] > 0xBF) {
            return 0;
        }
    }
    return n;
}

/* Appends the escape for one ASCII byte that cannot appear raw in a JSON string. */
static void put_escape(om_strbuf_t *sb, unsigned char c)
{
    static const char hex[] = "0123456789abcdef";
    switch (c) {
    case '"':
        PUTLIT(sb, "\\\"");
        break;
    case '\\':
        PUTLIT(sb, "\\\\");
        break;
    case '\n':
        PUTLIT(sb, "\\n");
        break;
    case '\r':
        PUTLIT(sb, "\\r");
        break;
    case '\t':
        PUTLIT(sb, "\\t");
        break;
    default: {
        char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xF]};
        om_strbuf_append(sb, u, sizeof u);
        break;
    }
    }
}

/* A JSON string from n bytes that should be UTF-8. Runs of bytes that need no escaping are
 * copied in one append; invalid UTF-8 bytes become U+FFFD, one per byte. */
static void put_strn(om_strbuf_t *sb, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t run = 0, i = 0;
    om_strbuf_putc(sb, '"');
    while (i < n) {
        unsigned char c = p[i];
        if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
            i++;
            continue;
        }
        size_t seq = c >= 0x80 ? utf8_seq_len(p + i, n - i) : 0;
        if (seq > 0) {
            i += seq;
            continue;
        }
        om_strbuf_append(sb, p + run, i - run);
        if (c >= 0x80) {
            PUTLIT(sb, "\xEF\xBF\xBD");
        } else {
            put_escape(sb, c);
        }
        run = ++i;
    }
    om_strbuf_append(sb, p + run, n - run);
    om_strbuf_putc(sb, '"');
}

static void put_str(om_strbuf_t *sb, const char *s)
{
    put_strn(sb, s != NULL ? s : "", s != NULL ? strlen(s) : 0);
}

static bool str_empty(const char *s)
{
    return s == NULL || s[0] == '\0';
}

/* Standard base64 with padding, as proto3 JSON writes bytes. */
static void put_base64(om_strbuf_t *sb, const uint8_t *d, size_t n)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char out[4];
    om_strbuf_putc(sb, '"');
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)d[i] << 16;
        size_t left = n - i;
        if (left > 1) {
            v |= (uint32_t)d[i + 1] << 8;
        }
        if (left > 2) {
            v |= d[i + 2];
        }
        out[0] = tbl[(v >> 18) & 63];
        out[1] = tbl[(v >> 12) & 63];
        out[2] = left > 1 ? tbl[(v >> 6) & 63] : '=';
        out[3] = left > 2 ? tbl[v & 63] : '=';
        om_strbuf_append(sb, out, 4);
    }
    om_strbuf_putc(sb, '"');
}

static bool id_empty(const ProtobufCBinaryData *id)
{
    for (size_t i = 0; i < id->len; i++) {
        if (id->data[i] != 0) {
            return false;
        }
    }
    return true; /* also when len is 0 */
}

/* trace and span ids: lowercase hex; omitted when empty or all zero, as pdata does. */
static void put_id(om_strbuf_t *sb, bool *first, const char *quoted_key, size_t klen,
                   const ProtobufCBinaryData *id)
{
    static const char hex[] = "0123456789abcdef";
    if (id_empty(id)) {
        return;
    }
    put_key(sb, first, quoted_key, klen);
    om_strbuf_putc(sb, '"');
    if (om_strbuf_reserve(sb, id->len * 2)) {
        for (size_t i = 0; i < id->len; i++) {
            sb->data[sb->len++] = hex[id->data[i] >> 4];
            sb->data[sb->len++] = hex[id->data[i] & 0xF];
        }
        sb->data[sb->len] = '\0';
    }
    om_strbuf_putc(sb, '"');
}
#define ID(sb, first, name, id)                                                                    \
    put_id((sb), (first), "\"" name "\":", sizeof("\"" name "\":") - 1, (id))

/* Shortest decimal digits of v > 0 (finite) that read back as v: fills digits (no dot, no
 * trailing zeros, NUL-terminated) and returns the decimal exponent of the first digit. A
 * normal double that survives 15 significant digits has its shortest form among those 15
 * digits (DBL_DIG), so at most three attempts are needed; subnormals have less precision and
 * are searched from one digit up. snprintf and strtod run in the C locale (the process never
 * calls setlocale), so the decimal point is '.'. */
static int shortest_digits(double v, char digits[20])
{
    char buf[40];
    for (int prec = v < DBL_MIN ? 1 : 15; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*e", prec - 1, v);
        if (strtod(buf, NULL) == v) {
            break;
        }
    }
    /* buf is "d.ddddde[+-]xx" (or "de[+-]xx" when prec is 1, which we never use). */
    size_t n = 0;
    const char *p = buf;
    for (; *p != 'e' && *p != '\0'; p++) {
        if (*p >= '0' && *p <= '9' && n < 19) {
            digits[n++] = *p;
        }
    }
    while (n > 1 && digits[n - 1] == '0') {
        n--;
    }
    digits[n] = '\0';
    return *p == 'e' ? (int)strtol(p + 1, NULL, 10) : 0;
}

/* v != 0, finite, positive: Go's strconv.FormatFloat(v, 'f' or 'e', -1, 64) as jsoniter's
 * WriteFloat64 chooses it. */
static void put_double_digits(om_strbuf_t *sb, double v)
{
    char d[20];
    int e = shortest_digits(v, d);
    size_t n = strlen(d);
    if (v < 1e-6 || v >= 1e21) {
        om_strbuf_putc(sb, d[0]);
        if (n > 1) {
            om_strbuf_putc(sb, '.');
            om_strbuf_append(sb, d + 1, n - 1);
        }
        om_strbuf_printf(sb, "e%c%d", e < 0 ? '-' : '+', e < 0 ? -e : e);
        return;
    }
    if (e < 0) {
        PUTLIT(sb, "0.");
        for (int i = -1; i > e; i--) {
            om_strbuf_putc(sb, '0');
        }
        om_strbuf_append(sb, d, n);
        return;
    }
    size_t int_digits = (size_t)e + 1;
    if (n <= int_digits) {
        om_strbuf_append(sb, d, n);
        for (size_t i = n; i < int_digits; i++) {
            om_strbuf_putc(sb, '0');
        }
        return;
    }
    om_strbuf_append(sb, d, int_digits);
    om_strbuf_putc(sb, '.');
    om_strbuf_append(sb, d + int_digits, n - int_digits);
}

static void put_double(om_strbuf_t *sb, double v)
{
    if (isnan(v)) {
        PUTLIT(sb, "\"NaN\"");
        return;
    }
    if (isinf(v)) {
        if (v > 0) {
            PUTLIT(sb, "\"Infinity\"");
        } else {
            PUTLIT(sb, "\"-Infinity\"");
        }
        return;
    }
    if (signbit(v)) {
        om_strbuf_putc(sb, '-');
        v = -v;
    }
    /* Whole numbers below 2^53 are exact and print as plain integers: the common case for
     * counters and gauges, without the snprintf/strtod round trip. */
    if (v < 9007199254740992.0 && v == (double)(uint64_t)v) {
        put_u64_raw(sb, (uint64_t)v);
        return;
    }
    put_double_digits(sb, v);
}

/* ---------------------------------------------------------------------------------------- */
/* Common messages                                                                            */

static void put_anyvalue(enc_t *e, const om_anyvalue_t *v);

static void put_keyvalue(enc_t *e, const om_keyvalue_t *kv)
{
    bool first = true;
    om_strbuf_putc(e->sb, '{');
    if (kv != NULL && !str_empty(kv->key)) {
        KEY(e->sb, &first, "key");
        put_str(e->sb, kv->key);
    }
    KEY(e->sb, &first, "value");
    put_anyvalue(e, kv != NULL ? kv->value : NULL);
    om_strbuf_putc(e->sb, '}');
}

/* `"name":[kv,...]` when n > 0. */
static void put_kv_list(enc_t *e, bool *first, const char *quoted_key, size_t klen, size_t n,
                        om_keyvalue_t *const *kvs)
{
    if (n == 0) {
        return;
    }
    put_key(e->sb, first, quoted_key, klen);
    om_strbuf_putc(e->sb, '[');
    for (size_t i = 0; i < n; i++) {
        if (i > 0) {
            om_strbuf_putc(e->sb, ',');
        }
        put_keyvalue(e, kvs[i]);
    }
    om_strbuf_putc(e->sb, ']');
}
#define KVS(e, first, name, n, kvs)                                                                \
    put_kv_list((e), (first), "\"" name "\":", sizeof("\"" name "\":") - 1, (n), (kvs))

static void put_array_value(enc_t *e, const om_arrayvalue_t *a)
{
    bool first = true;
    om_strbuf_putc(e->sb, '{');
    if (a->n_values > 0) {
        KEY(e->sb, &first, "values");
        om_strbuf_putc(e->sb, '[');
        for (size_t i = 0; i < a->n_values; i++) {
            if (i > 0) {
                om_strbuf_putc(e->sb, ',');
            }
            put_anyvalue(e, a->values[i]);
        }
        om_strbuf_putc(e->sb, ']');
    }
    om_strbuf_putc(e->sb, '}');
}

static void put_kvlist_value(enc_t *e, const om_kvlist_t *l)
{
    bool first = true;
    om_strbuf_putc(e->sb, '{');
    KVS(e, &first, "values", l->n_values, l->values);
    om_strbuf_putc(e->sb, '}');
}

static void put_anyvalue_member(enc_t *e, bool *first, const om_anyvalue_t *v)
{
    om_strbuf_t *sb = e->sb;
    switch (v->value_case) {
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
        KEY(sb, first, "stringValue");
        put_str(sb, v->string_value);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
        KEY(sb, first, "boolValue");
        if (v->bool_value) {
            PUTLIT(sb, "true");
        } else {
            PUTLIT(sb, "false");
        }
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
        KEY(sb, first, "intValue");
        put_i64_str(sb, v->int_value);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
        KEY(sb, first, "doubleValue");
        put_double(sb, v->double_value);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE:
        if (v->array_value != NULL) {
            KEY(sb, first, "arrayValue");
            put_array_value(e, v->array_value);
        }
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE:
        if (v->kvlist_value != NULL) {
            KEY(sb, first, "kvlistValue");
            put_kvlist_value(e, v->kvlist_value);
        }
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE:
        KEY(sb, first, "bytesValue");
        put_base64(sb, v->bytes_value.data, v->bytes_value.len);
        break;
    default:
        break;
    }
}

/* An AnyValue; NULL (unset) is written as {}. */
static void put_anyvalue(enc_t *e, const om_anyvalue_t *v)
{
    bool first = true;
    if (e->any_depth >= ENC_MAX_ANY_DEPTH) {
        e->too_deep = true;
        PUTLIT(e->sb, "{}");
        return;
    }
    e->any_depth++;
    om_strbuf_putc(e->sb, '{');
    if (v != NULL) {
        put_anyvalue_member(e, &first, v);
    }
    om_strbuf_putc(e->sb, '}');
    e->any_depth--;
}

static void put_str_array(om_strbuf_t *sb, bool *first, const char *quoted_key, size_t klen,
                          size_t n, char *const *v)
{
    if (n == 0) {
        return;
    }
    put_key(sb, first, quoted_key, klen);
    om_strbuf_putc(sb, '[');
    for (size_t i = 0; i < n; i++) {
        if (i > 0) {
            om_strbuf_putc(sb, ',');
        }
        put_str(sb, v[i]);
    }
    om_strbuf_putc(sb, ']');
}
#define STRS(sb, first, name, n, v)                                                                \
    put_str_array((sb), (first), "\"" name "\":", sizeof("\"" name "\":") - 1, (n), (v))

static void put_entity_ref(enc_t *e, const Opentelemetry__Proto__Common__V1__EntityRef *ref)
{
    bool first = true;
    om_strbuf_t *sb = e->sb;
    om_strbuf_putc(sb, '{');
    if (ref != NULL) {
        if (!str_empty(ref->schema_url)) {
            KEY(sb, &first, "schemaUrl");
            put_str(sb, ref->schema_url);
        }
        if (!str_empty(ref->type)) {
            KEY(sb, &first, "type");
            put_str(sb, ref->type);
        }
        STRS(sb, &first, "idKeys", ref->n_id_keys, ref->id_keys);
        STRS(sb, &first, "descriptionKeys", ref->n_description_keys, ref->description_keys);
    }
    om_strbuf_putc(sb, '}');
}

/* Resource; NULL is written as {}. */
static void put_resource(enc_t *e, const om_resource_t *r)
{
    bool first = true;
    om_strbuf_t *sb = e->sb;
    om_strbuf_putc(sb, '{');
    if (r != NULL) {
        KVS(e, &first, "attributes", r->n_attributes, r->attributes);
        if (r->dropped_attributes_count != 0) {
            KEY(sb, &first, "droppedAttributesCount");
            put_u64_raw(sb, r->dropped_attributes_count);
        }
        if (r->n_entity_refs > 0) {
            KEY(sb, &first, "entityRefs");
            om_strbuf_putc(sb, '[');
            for (size_t i = 0; i < r->n_entity_refs; i++) {
                if (i > 0) {
                    om_strbuf_putc(sb, ',');
                }
                put_entity_ref(e, r->entity_refs[i]);
            }
            om_strbuf_putc(sb, ']');
        }
    }
    om_strbuf_putc(sb, '}');
}

/* InstrumentationScope; NULL is written as {}. */
static void put_scope(enc_t *e, const om_scope_t *s)
{
    bool first = true;
    om_strbuf_t *sb = e->sb;
    om_strbuf_putc(sb, '{');
    if (s != NULL) {
        if (!str_empty(s->name)) {
            KEY(sb, &first, "name");
            put_str(sb, s->name);
        }
        if (!str_empty(s->version)) {
            KEY(sb, &first, "version");
            put_str(sb, s->version);
        }
        KVS(e, &first, "attributes", s->n_attributes, s->attributes);
        if (s->dropped_attributes_count != 0) {
            KEY(sb, &first, "droppedAttributesCount");
            put_u64_raw(sb, s->dropped_attributes_count);
        }
    }
    om_strbuf_putc(sb, '}');
}

static void put_schema_url(om_strbuf_t *sb, bool *first, const char *url)
{
    if (!str_empty(url)) {
        KEY(sb, first, "schemaUrl");
        put_str(sb, url);
    }
}

/* Writes `"name":[...]` for n > 0 items, calling put for each (NULL items are passed on). */
typedef void (*put_item_fn)(enc_t *e, const void *item);

static void put_list(enc_t *e, bool *first, const char *quoted_key, size_t klen, size_t n,
                     void *const *items, put_item_fn put)
{
    if (n == 0) {
        return;
    }
    put_key(e->sb, first, quoted_key, klen);
    om_strbuf_putc(e->sb, '[');
    for (size_t i = 0; i < n; i++) {
        if (i > 0) {
            om_strbuf_putc(e->sb, ',');
        }
        put(e, items[i]);
    }
    om_strbuf_putc(e->sb, ']');
}
#define LIST(e, first, name, n, items, fn)                                                         \
    put_list((e), (first), "\"" name "\":", sizeof("\"" name "\":") - 1, (n),                      \
             (void *const *)(items), (put_item_fn)(fn))

static void put_u32_field(om_strbuf_t *sb, bool *first, const char *quoted_key, size_t klen,
                          uint32_t v)
{
    if (v != 0) {
        put_key(sb, first, quoted_key, klen);
        put_u64_raw(sb, v);
    }
}
#define U32(sb, first, name, v)                                                                    \
    put_u32_field((sb), (first), "\"" name "\":", sizeof("\"" name "\":") - 1, (v))

/* Enums are open in proto3: any int32 may arrive from protobuf, negative ones included. */
static void put_enum_field(om_strbuf_t *sb, bool *first, const char *quoted_key, size_t klen, int v)
{
    if (v != 0) {
        put_key(sb, first, quoted_key, klen);
        put_i64_raw(sb, v);
    }
}
#define ENUMF(sb, first, name, v)                                                                  \
    put_enum_field((sb), (first), "\"" name "\":", sizeof("\"" name "\":") - 1, (int)(v))

static void put_u64_field(om_strbuf_t *sb, bool *first, const char *quoted_key, size_t klen,
                          uint64_t v)
{
    if (v != 0) {
        put_key(sb, first, quoted_key, klen);
        put_u64_str(sb, v);
    }
}
#define U64(sb, first, name, v)                                                                    \
    put_u64_field((sb), (first), "\"" name "\":", sizeof("\"" name "\":") - 1, (v))

static void put_str_field(om_strbuf_t *sb, bool *first, const char *quoted_key, size_t klen,
                          const char *v)
{
    if (!str_empty(v)) {
        put_key(sb, first, quoted_key, klen);
        put_str(sb, v);
    }
}
#define STR(sb, first, name, v)                                                                    \
    put_str_field((sb), (first), "\"" name "\":", sizeof("\"" name "\":") - 1, (v))

static void put_double_field(om_strbuf_t *sb, bool *first, const char *quoted_key, size_t klen,
                             double v)
{
    /* pdata's test is `v != 0`: NaN is written, -0 is not. */
    if (v != 0 || isnan(v)) {
        put_key(sb, first, quoted_key, klen);
        put_double(sb, v);
    }
}
#define DBL(sb, first, name, v)                                                                    \
    put_double_field((sb), (first), "\"" name "\":", sizeof("\"" name "\":") - 1, (v))

/* ---------------------------------------------------------------------------------------- */
/* Traces                                                                                     */

static void put_event(enc_t *e, const om_span_event_t *ev)
{
    bool first = true;
    om_strbuf_t *sb = e->sb;
    om_strbuf_putc(sb, '{');
    if (ev != NULL) {
        U64(sb, &first, "timeUnixNano", ev->time_unix_nano);
        STR(sb, &first, "name", ev->name);
        KVS(e, &first, "attributes", ev->n_attributes, ev->attributes);
        U32(sb, &first, "droppedAttributesCount", ev->dropped_attributes_count);
    }
    om_strbuf_putc(sb, '}');
}

static void put_link(enc_t *e, const om_span_link_t *l)
{
    bool first = true;
    om_strbuf_t *sb = e->sb;
    om_strbuf_putc(sb, '{');
    if (l != NULL) {
        ID(sb, &first, "traceId", &l->trace_id);
        ID(sb, &first, "spanId", &l->span_id);
        STR(sb, &first, "traceState", l->trace_state);
        KVS(e, &first, "attributes", l->n_attributes, l->attributes);
        U32(sb, &first, "droppedAttributesCount", l->dropped_attributes_count);
        U32(sb, &first, "flags", l->flags);
    }
    om_strbuf_putc(sb, '}');
}

static void put_status(om_strbuf_t *sb, bool *first, const om_span_status_t *st)
{
    bool f2 = true;
    KEY(sb, first, "status");
    om_strbuf_putc(sb, '{');
    if (st != NULL) {
        STR(sb, &f2, "message", st->message);
        ENUMF(sb, &f2, "code", st->code);
    }
    om_strbuf_putc(sb, '}');
}

static void put_span(enc_t *e, const om_span_t *s)
{
    bool first = true;
    om_strbuf_t *sb = e->sb;
    om_strbuf_putc(sb, '{');
    if (s == NULL) {
        PUTLIT(sb, "\"status\":{}}");
        return;
    }
    ID(sb, &first, "traceId", &s->trace_id);
    ID(sb, &first, "spanId", &s->span_id);
    STR(sb, &first, "traceState", s->trace_state);
    ID(sb, &first, "parentSpanId", &s->parent_span_id);
    U32(sb, &first, "flags", s->flags);
    STR(sb, &first, "name", s->name);
    ENUMF(sb, &first, "kind", s->kind);
    U64(sb, &first, "startTimeUnixNano", s->start_time_unix_nano);
    U64(sb, &first, "endTimeUnixNano", s->end_time_unix_nano);
    KVS(e, &first, "attributes", s->n_attributes, s->attributes);
    U32(sb, &first, "droppedAttributesCount", s->dropped_attributes_count);
    LIST(e, &first, "events", s->n_events, s->events, put_event);
    U32(sb, &first, "droppedEventsCount", s->dropped_events_count);
    LIST(e, &first, "links", s->n_links, s->links, put_link);
    U32(sb, &first, "droppedLinksCount", s->dropped_links_count);
    put_status(sb, &first, s->status);
    om_strbuf_putc(sb, '}');
}

static void put_scope_spans(enc_t *e, const om_scope_spans_t *ss)
{
    bool first = true;
    om_strbuf_putc(e->sb, '{');
    KEY(e->sb, &first, "scope");
    put_scope(e, ss != NULL ? ss->scope : NULL);
    if (ss != NULL) {
        LIST(e, &first, "spans", ss->n_spans, ss->spans, put_span);
        put_schema_url(e->sb, &first, ss->schema_url);
    }
    om_strbuf_putc(e->sb, '}');
}

static void put_resource_spans(enc_t *e, const om_resource_spans_t *rs)
{
    bool first = true;
    om_strbuf_putc(e->sb, '{');
    KEY(e->sb, &first, "resource");
    put_resource(e, rs != NULL ? rs->resource : NULL);
    if (rs != NULL) {
        LIST(e, &first, "scopeSpans", rs->n_scope_spans, rs->scope_spans, put_scope_spans);
        put_schema_url(e->sb, &first, rs->schema_url);
    }
    om_strbuf_putc(e->sb, '}');
}

/* ---------------------------------------------------------------------------------------- */
/* Metrics                                                                                    */

static void put_exemplar(enc_t *e, const om_exemplar_t *x)
{
    bool first = true;
    om_strbuf_t *sb = e->sb;
    om_strbuf_putc(sb, '{');
    if (x != NULL) {
        KVS(e, &first, "filteredAttributes", x->n_filtered_attributes, x->filtered_attributes);
        U64(sb, &first, "timeUnixNano", x->time_unix_nano);
        if (x->value_case == OPENTELEMETRY__PROTO__METRICS__V1__EXEMPLAR__VALUE_AS_DOUBLE) {
            KEY(sb, &first, "asDouble");
            put_double(sb, x->as_double);
        } else if (x->value_case == OPENTELEMETRY__PROTO__METRICS__V1__EXEMPLAR__VALUE_AS_INT) {
            KEY(sb, &first, "asInt");
            put_i64_str(sb, x->as_int);
        }
        ID(sb, &first, "spanId", &x->span_id);
        ID(sb, &first, "traceId", &x->trace_id);
    }
    om_strbuf_putc(sb, '}');
}

/* attributes, startTimeUnixNano, timeUnixNano: the head every data point shares. */
static void put_point_head(enc_t *e, bool *first, size_t n_attrs, om_keyvalue_t *const *attrs,
                           uint64_t start, uint64_t time)
{
    KVS(e, first, "attributes", n_attrs, attrs);
    U64(e->sb, first, "startTimeUnixNano", start);
    U64(e->sb, first, "timeUnixNano", time);
}

static void put_number_dp(enc_t *e, const om_number_dp_t *p)
{
    bool first = true;
    om_strbuf_t *sb = e->sb;
    om_strbuf_putc(sb, '{');
    if (p != NULL) {
        put_point_head(e, &first, p->n_attributes, p->attributes, p->start_time_unix_nano,
                       p->time_unix_nano);
        if (p->value_case ==
            OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE) {
            KEY(sb, &first, "asDouble");
            put_double(sb, p->as_double);
        } else if (p->value_case ==
                   OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT) {
            KEY(sb, &first, "asInt");
            put_i64_str(sb, p->as_int);
        }
        LIST(e, &first, "exemplars", p->n_exemplars, p->exemplars, put_exemplar);
        U32(sb, &first, "flags", p->flags);
    }
    om_strbuf_putc(sb, '}');
}

static void put_u64_array(om_strbuf_t *sb, bool *first, const char *quoted_key, size_t klen,
                          size_t n, const uint64_t *v)
{
    if (n == 0) {
        return;
    }
    put_key(sb, first, quoted_key, klen);
    om_strbuf_putc(sb, '[');
    for (size_t i = 0; i < n; i++) {
        if (i > 0) {
            om_strbuf_putc(sb, ',');
        }
        put_u64_str(sb, v[i]);
    }
    om_strbuf_putc(sb, ']');
}
#define U64S(sb, first, name, n, v)                                                                \
    put_u64_array((sb), (first), "\"" name "\":", sizeof("\"" name "\":") - 1, (n), (v))

static void put_optional_double(om_strbuf_t *sb, bool *first, const char *quoted_key, size_t klen,
                                bool set, double v)
{
    if (set) {
        put_key(sb, first, quoted_key, klen);
        put_double(sb, v);
    }
}
#define OPT_DBL(sb, first, name, set, v)                                                           \
    put_optional_double((sb), (first), "\"" name "\":", sizeof("\"" name "\":") - 1, (set), (v))

static void put_histogram_dp(enc_t *e, const om_histogram_dp_t *p)
{
    bool first = true;
    om_strbuf_t *sb = e->sb;
    om_strbuf_putc(sb, '{');
    if (p != NULL) {
        put_point_head(e, &first, p->n_attributes, p->attributes, p->start_time_unix_nano,
                       p->time_unix_nano);
        U64(sb, &first, "count", p->count);
        OPT_DBL(sb, &first, "sum",
                p->_sum_case == OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___SUM_SUM,
                p->sum);
        U64S(sb, &first, "bucketCounts", p->n_bucket_counts, p->bucket_counts);
        if (p->n_explicit_bounds > 0) {
            KEY(sb, &first, "explicitBounds");
            om_strbuf_putc(sb, '[');
            for (size_t i = 0; i < p->n_explicit_bounds; i++) {
                if (i > 0) {
                    om_strbuf_putc(sb, ',');
                }
                put_double(sb, p->explicit_bounds[i]);
            }
            om_strbuf_putc(sb, ']');
        }
        LIST(e, &first, "exemplars", p->n_exemplars, p->exemplars, put_exemplar);
        U32(sb, &first, "flags", p->flags);
        OPT_DBL(sb, &first, "min",
                p->_min_case == OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___MIN_MIN,
                p->min);
        OPT_DBL(sb, &first, "max",
                p->_max_case == OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___MAX_MAX,
                p->max);
    }
    om_strbuf_putc(sb, '}');
}

/* Buckets; NULL is written as {}. */
static void put_buckets(om_strbuf_t *sb, const om_exp_buckets_t *b)
{
    bool first = true;
    om_strbuf_putc(sb, '{');
    if (b != NULL) {
        if (b->offset != 0) {
            KEY(sb, &first, "offset");
            put_i64_raw(sb, b->offset);
        }
        U64S(sb, &first, "bucketCounts", b->n_bucket_counts, b->bucket_counts);
    }
    om_strbuf_putc(sb, '}');
}

#define EXP_DP(x) OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT__##x

static void put_exp_histogram_dp(enc_t *e, const om_exp_histogram_dp_t *p)
{
    bool first = true;
    om_strbuf_t *sb = e->sb;
    om_strbuf_putc(sb, '{');
    if (p == NULL) {
        PUTLIT(sb, "\"positive\":{},\"negative\":{}}");
        return;
    }
    put_point_head(e, &first, p->n_attributes, p->attributes, p->start_time_unix_nano,
                   p->time_unix_nano);
    U64(sb, &first, "count", p->count);
    OPT_DBL(sb, &first, "sum", p->_sum_case == EXP_DP(_SUM_SUM), p->sum);
    if (p->scale != 0) {
        KEY(sb, &first, "scale");
        put_i64_raw(sb, p->scale);
    }
    U64(sb, &first, "zeroCount", p->zero_count);
    KEY(sb, &first, "positive");
    put_buckets(sb, p->positive);
    KEY(sb, &first, "negative");
    put_buckets(sb, p->negative);
    U32(sb, &first, "flags", p->flags);
    LIST(e, &first, "exemplars", p->n_exemplars, p->exemplars, put_exemplar);
    OPT_DBL(sb, &first, "min", p->_min_case == EXP_DP(_MIN_MIN), p->min);
    OPT_DBL(sb, &first, "max", p->_max_case == EXP_DP(_MAX_MAX), p->max);
    DBL(sb, &first, "zeroThreshold", p->zero_threshold);
    om_strbuf_putc(sb, '}');
}

static void put_quantile(enc_t *e, const om_quantile_t *q)
{
    bool first = true;
    om_strbuf_putc(e->sb, '{');
    if (q != NULL) {
        DBL(e->sb, &first, "quantile", q->quantile);
        DBL(e->sb, &first, "value", q->value);
    }
    om_strbuf_putc(e->sb, '}');
}

static void put_summary_dp(enc_t *e, const om_summary_dp_t *p)
{
    bool first = true;
    om_strbuf_t *sb = e->sb;
    om_strbuf_putc(sb, '{');
    if (p != NULL) {
        put_point_head(e, &first, p->n_attributes, p->attributes, p->start_time_unix_nano,
                       p->time_unix_nano);
        U64(sb, &first, "count", p->count);
        DBL(sb, &first, "sum", p->sum);
        LIST(e, &first, "quantileValues", p->n_quantile_values, p->quantile_values, put_quantile);
        U32(sb, &first, "flags", p->flags);
    }
    om_strbuf_putc(sb, '}');
}

/* The body of a gauge/sum/histogram/exponentialHistogram/summary object. */
static void put_metric_data(enc_t *e, bool *first, const om_metric_t *m)
{
    om_strbuf_t *sb = e->sb;
    bool f2 = true;
    switch (m->data_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
        KEY(sb, first, "gauge");
        om_strbuf_putc(sb, '{');
        LIST(e, &f2, "dataPoints", m->gauge->n_data_points, m->gauge->data_points, put_number_dp);
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
        KEY(sb, first, "sum");
        om_strbuf_putc(sb, '{');
        LIST(e, &f2, "dataPoints", m->sum->n_data_points, m->sum->data_points, put_number_dp);
        ENUMF(sb, &f2, "aggregationTemporality", m->sum->aggregation_temporality);
        if (m->sum->is_monotonic) {
            KEY(sb, &f2, "isMonotonic");
            PUTLIT(sb, "true");
        }
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
        KEY(sb, first, "histogram");
        om_strbuf_putc(sb, '{');
        LIST(e, &f2, "dataPoints", m->histogram->n_data_points, m->histogram->data_points,
             put_histogram_dp);
        ENUMF(sb, &f2, "aggregationTemporality", m->histogram->aggregation_temporality);
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
        KEY(sb, first, "exponentialHistogram");
        om_strbuf_putc(sb, '{');
        LIST(e, &f2, "dataPoints", m->exponential_histogram->n_data_points,
             m->exponential_histogram->data_points, put_exp_histogram_dp);
        ENUMF(sb, &f2, "aggregationTemporality", m->exponential_histogram->aggregation_temporality);
        break;
    default: /* SUMMARY; put_metric only calls us for the five known cases */
        KEY(sb, first, "summary");
        om_strbuf_putc(sb, '{');
        LIST(e, &f2, "dataPoints", m->summary->n_data_points, m->summary->data_points,
             put_summary_dp);
        break;
    }
    om_strbuf_putc(sb, '}');
}

static bool metric_has_data(const om_metric_t *m)
{
    switch (m->data_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
        return m->gauge != NULL;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
        return m->sum != NULL;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
        return m->histogram != NULL;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
        return m->exponential_histogram != NULL;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
        return m->summary != NULL;
    default:
        return false;
    }
}

static void put_metric(enc_t *e, const om_metric_t *m)
{
    bool first = true;
    om_strbuf_t *sb = e->sb;
    om_strbuf_putc(sb, '{');
    if (m != NULL) {
        STR(sb, &first, "name", m->name);
        STR(sb, &first, "description", m->description);
        STR(sb, &first, "unit", m->unit);
        if (metric_has_data(m)) {
            put_metric_data(e, &first, m);
        }
        KVS(e, &first, "metadata", m->n_metadata, m->metadata);
    }
    om_strbuf_putc(sb, '}');
}

static void put_scope_metrics(enc_t *e, const om_scope_metrics_t *sm)
{
    bool first = true;
    om_strbuf_putc(e->sb, '{');
    KEY(e->sb, &first, "scope");
    put_scope(e, sm != NULL ? sm->scope : NULL);
    if (sm != NULL) {
        LIST(e, &first, "metrics", sm->n_metrics, sm->metrics, put_metric);
        put_schema_url(e->sb, &first, sm->schema_url);
    }
    om_strbuf_putc(e->sb, '}');
}

static void put_resource_metrics(enc_t *e, const om_resource_metrics_t *rm)
{
    bool first = true;
    om_strbuf_putc(e->sb, '{');
    KEY(e->sb, &first, "resource");
    put_resource(e, rm != NULL ? rm->resource : NULL);
    if (rm != NULL) {
        LIST(e, &first, "scopeMetrics", rm->n_scope_metrics, rm->scope_metrics, put_scope_metrics);
        put_schema_url(e->sb, &first, rm->schema_url);
    }
    om_strbuf_putc(e->sb, '}');
}

/* ---------------------------------------------------------------------------------------- */
/* Logs                                                                                       */

static void put_log_record(enc_t *e, const om_log_record_t *r)
{
    bool first = true;
    om_strbuf_t *sb = e->sb;
    om_strbuf_putc(sb, '{');
    if (r == NULL) {
        PUTLIT(sb, "\"body\":{}}");
        return;
    }
    U64(sb, &first, "timeUnixNano", r->time_unix_nano);
    U64(sb, &first, "observedTimeUnixNano", r->observed_time_unix_nano);
    ENUMF(sb, &first, "severityNumber", r->severity_number);
    STR(sb, &first, "severityText", r->severity_text);
    KEY(sb, &first, "body");
    put_anyvalue(e, r->body);
    KVS(e, &first, "attributes", r->n_attributes, r->attributes);
    U32(sb, &first, "droppedAttributesCount", r->dropped_attributes_count);
    U32(sb, &first, "flags", r->flags);
    ID(sb, &first, "traceId", &r->trace_id);
    ID(sb, &first, "spanId", &r->span_id);
    STR(sb, &first, "eventName", r->event_name);
    om_strbuf_putc(sb, '}');
}

static void put_scope_logs(enc_t *e, const om_scope_logs_t *sl)
{
    bool first = true;
    om_strbuf_putc(e->sb, '{');
    KEY(e->sb, &first, "scope");
    put_scope(e, sl != NULL ? sl->scope : NULL);
    if (sl != NULL) {
        LIST(e, &first, "logRecords", sl->n_log_records, sl->log_records, put_log_record);
        put_schema_url(e->sb, &first, sl->schema_url);
    }
    om_strbuf_putc(e->sb, '}');
}

static void put_resource_logs(enc_t *e, const om_resource_logs_t *rl)
{
    bool first = true;
    om_strbuf_putc(e->sb, '{');
    KEY(e->sb, &first, "resource");
    put_resource(e, rl != NULL ? rl->resource : NULL);
    if (rl != NULL) {
        LIST(e, &first, "scopeLogs", rl->n_scope_logs, rl->scope_logs, put_scope_logs);
        put_schema_url(e->sb, &first, rl->schema_url);
    }
    om_strbuf_putc(e->sb, '}');
}

/* ---------------------------------------------------------------------------------------- */
/* Entry points                                                                               */

static void put_request(enc_t *e, const om_batch_t *b)
{
    bool first = true;
    om_strbuf_putc(e->sb, '{');
    switch (b->signal) {
    case OM_SIG_TRACES:
        LIST(e, &first, "resourceSpans", b->traces->n_resource_spans, b->traces->resource_spans,
             put_resource_spans);
        break;
    case OM_SIG_METRICS:
        LIST(e, &first, "resourceMetrics", b->metrics->n_resource_metrics,
             b->metrics->resource_metrics, put_resource_metrics);
        break;
    default:
        LIST(e, &first, "resourceLogs", b->logs->n_resource_logs, b->logs->resource_logs,
             put_resource_logs);
        break;
    }
    om_strbuf_putc(e->sb, '}');
}

/* Returns 0; OM_EINVAL for a batch of no known signal or AnyValues nested deeper than
 * ENC_MAX_ANY_DEPTH; OM_ETOOBIG when the buffer's max was reached (when out has a max, a
 * failed allocation is reported the same way: om_strbuf_t does not tell the two apart);
 * OM_ENOMEM. On failure out is cut back to its length at the call (its `failed` flag, if set,
 * stays set). */
int om_otlp_json_encode(const om_batch_t *b, om_strbuf_t *out)
{
    size_t start = out->len;
    enc_t e = {.sb = out};
    int rc = 0;
    if (b == NULL || b->msg == NULL || om_signal_index(b->signal) < 0) {
        return OM_EINVAL;
    }
    put_request(&e, b);
    if (e.too_deep) {
        rc = OM_EINVAL;
    } else if (out->failed) {
        rc = out->max != 0 ? OM_ETOOBIG : OM_ENOMEM;
    }
    if (rc != 0 && out->data != NULL) {
        out->len = start;
        out->data[start] = '\0';
    }
    return rc;
}

void om_otlp_json_encode_response(om_signal_t sig, int64_t rejected, const char *error_message,
                                  om_strbuf_t *out)
{
    bool first = true;
    if (rejected == 0 && str_empty(error_message)) {
        PUTLIT(out, "{}");
        return;
    }
    PUTLIT(out, "{\"partialSuccess\":{");
    if (rejected != 0) {
        switch (sig) {
        case OM_SIG_TRACES:
            KEY(out, &first, "rejectedSpans");
            break;
        case OM_SIG_METRICS:
            KEY(out, &first, "rejectedDataPoints");
            break;
        default:
            KEY(out, &first, "rejectedLogRecords");
            break;
        }
        put_i64_str(out, rejected);
    }
    STR(out, &first, "errorMessage", error_message);
    PUTLIT(out, "}}");
}

void om_otlp_json_encode_status(int grpc_code, const char *message, om_strbuf_t *out)
{
    bool first = true;
    om_strbuf_putc(out, '{');
    if (grpc_code != 0) {
        KEY(out, &first, "code");
        put_i64_raw(out, grpc_code);
    }
    STR(out, &first, "message", message);
    om_strbuf_putc(out, '}');
}

/* ---------------------------------------------------------------------------------------- */
/* pcommon's Value.AsString (om_anyvalue_to_string): not OTLP/JSON but what Go's encoding/json */
/* writes for the value's raw form, which shares the number and base64 forms above.          */

#define ASSTRING_MAX_DEPTH 64

/* A JSON string as encoding/json writes it: ", \ and control characters escaped (\n \r \t,
 * others \u00xx), <, > and & as \u003c \u003e \u0026, U+2028 and U+2029 escaped, and each
 * byte that is not valid UTF-8 as \ufffd. */
static void put_go_json_str(om_strbuf_t *sb, const char *s)
{
    const unsigned char *p = (const unsigned char *)(s != NULL ? s : "");
    size_t n = strlen((const char *)p), run = 0, i = 0;
    om_strbuf_putc(sb, '"');
    while (i < n) {
        unsigned char c = p[i];
        bool html = c == '<' || c == '>' || c == '&';
        if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80 && !html) {
            i++;
            continue;
        }
        size_t seq = c >= 0x80 ? utf8_seq_len(p + i, n - i) : 0;
        bool line_sep = seq == 3 && c == 0xE2 && p[i + 1] == 0x80 && (p[i + 2] & 0xFE) == 0xA8;
        if (seq > 0 && !line_sep) {
            i += seq;
            continue;
        }
        om_strbuf_append(sb, p + run, i - run);
        if (line_sep) {
            om_strbuf_printf(sb, "\\u202%c", p[i + 2] == 0xA8 ? '8' : '9');
            i += 3;
        } else if (c >= 0x80) {
            PUTLIT(sb, "\\ufffd");
            i++;
        } else if (html) {
            om_strbuf_printf(sb, "\\u00%02x", c);
            i++;
        } else {
            put_escape(sb, c);
            i++;
        }
        run = i;
    }
    om_strbuf_append(sb, p + run, n - run);
    om_strbuf_putc(sb, '"');
}

/* Go's float64AsString: the JSON number form; NaN and infinities as the error text Go puts
 * in their place. */
static void put_go_double(om_strbuf_t *sb, double v)
{
    if (isnan(v)) {
        PUTLIT(sb, "json: unsupported value: NaN");
        return;
    }
    if (isinf(v)) {
        om_strbuf_puts(sb,
                       v > 0 ? "json: unsupported value: +Inf" : "json: unsupported value: -Inf");
        return;
    }
    if (v == 0) {
        om_strbuf_puts(sb, signbit(v) ? "-0" : "0");
        return;
    }
    if (signbit(v)) {
        om_strbuf_putc(sb, '-');
        v = -v;
    }
    put_double_digits(sb, v);
}

static void put_raw_json(om_strbuf_t *sb, const om_anyvalue_t *v, int depth);

static const char *kv_key(const om_kvlist_t *l, size_t i)
{
    const om_keyvalue_t *kv = l->values[i];
    return kv != NULL && kv->key != NULL ? kv->key : "";
}

/* A kvlist as a JSON object with its keys sorted bytewise, as encoding/json writes a Go map.
 * The order is made by insertion sort of member indexes (lists are short; one allocation). A
 * key given twice keeps its last value, as the Go map AsRaw builds would. */
static void put_raw_kvlist(om_strbuf_t *sb, const om_kvlist_t *l, int depth)
{
    size_t n = l != NULL ? l->n_values : 0;
    size_t *idx = n > 0 ? om_malloc(n * sizeof *idx) : NULL;
    if (n > 0 && idx == NULL) {
        sb->failed = true;
        return;
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        const char *k = kv_key(l, i);
        size_t j = m;
        while (j > 0 && strcmp(kv_key(l, idx[j - 1]), k) > 0) {
            j--;
        }
        if (j > 0 && strcmp(kv_key(l, idx[j - 1]), k) == 0) {
            idx[j - 1] = i;
            continue;
        }
        memmove(idx + j + 1, idx + j, (m - j) * sizeof *idx);
        idx[j] = i;
        m++;
    }
    om_strbuf_putc(sb, '{');
    for (size_t i = 0; i < m; i++) {
        const om_keyvalue_t *kv = l->values[idx[i]];
        if (i > 0) {
            om_strbuf_putc(sb, ',');
        }
        put_go_json_str(sb, kv_key(l, idx[i]));
        om_strbuf_putc(sb, ':');
        put_raw_json(sb, kv != NULL ? kv->value : NULL, depth + 1);
    }
    om_strbuf_putc(sb, '}');
    om_free(idx);
}

/* A value's raw form (AsRaw) as encoding/json writes it. */
static void put_raw_json(om_strbuf_t *sb, const om_anyvalue_t *v, int depth)
{
    if (v == NULL || depth > ASSTRING_MAX_DEPTH) {
        PUTLIT(sb, "null");
        return;
    }
    switch (v->value_case) {
    case OM_ANYVALUE_STRING:
        put_go_json_str(sb, v->string_value);
        break;
    case OM_ANYVALUE_BOOL:
        om_strbuf_puts(sb, v->bool_value ? "true" : "false");
        break;
    case OM_ANYVALUE_INT:
        put_i64_raw(sb, v->int_value);
        break;
    case OM_ANYVALUE_DOUBLE:
        if (isfinite(v->double_value)) {
            put_go_double(sb, v->double_value);
        } else {
            PUTLIT(sb, "null"); /* Go fails the whole encoding; we keep the rest */
        }
        break;
    case OM_ANYVALUE_BYTES:
        put_base64(sb, v->bytes_value.data, v->bytes_value.len);
        break;
    case OM_ANYVALUE_ARRAY: {
        const om_arrayvalue_t *a = v->array_value;
        om_strbuf_putc(sb, '[');
        for (size_t i = 0; a != NULL && i < a->n_values; i++) {
            if (i > 0) {
                om_strbuf_putc(sb, ',');
            }
            put_raw_json(sb, a->values[i], depth + 1);
        }
        om_strbuf_putc(sb, ']');
        break;
    }
    case OM_ANYVALUE_KVLIST:
        put_raw_kvlist(sb, v->kvlist_value, depth);
        break;
    default:
        PUTLIT(sb, "null");
        break;
    }
}

void om_anyvalue_to_string(const om_anyvalue_t *v, om_strbuf_t *out)
{
    if (v == NULL) {
        return;
    }
    switch (v->value_case) {
    case OM_ANYVALUE_STRING:
        om_strbuf_puts(out, v->string_value != NULL ? v->string_value : "");
        break;
    case OM_ANYVALUE_BOOL:
        om_strbuf_puts(out, v->bool_value ? "true" : "false");
        break;
    case OM_ANYVALUE_INT:
        put_i64_raw(out, v->int_value);
        break;
    case OM_ANYVALUE_DOUBLE:
        put_go_double(out, v->double_value);
        break;
    case OM_ANYVALUE_BYTES: {
        /* put_base64 writes quotes around the text: write into a scratch buffer and strip. */
        om_strbuf_t tmp;
        om_strbuf_init(&tmp, 0);
        put_base64(&tmp, v->bytes_value.data, v->bytes_value.len);
        if (tmp.failed || tmp.len < 2) {
            out->failed = true;
        } else {
            om_strbuf_append(out, tmp.data + 1, tmp.len - 2);
        }
        om_strbuf_free(&tmp);
        break;
    }
    case OM_ANYVALUE_ARRAY:
    case OM_ANYVALUE_KVLIST:
        put_raw_json(out, v, 0);
        break;
    default:
        break;
    }
}
