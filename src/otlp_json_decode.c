/* otlp_json_decode.c: OTLP/JSON requests into protobuf-c messages in a batch's arena.
 *
 * json.c parses the body into a tree; we walk it guided by the protobuf-c descriptors of the
 * generated messages, so every field of the .proto files is covered without a table of our
 * own, and fields added to the protos later decode without code changes here.
 *
 * What we accept (the protobuf JSON mapping with OTLP's exceptions, as the Go collector reads
 * it):
 * - keys in lowerCamelCase or in the .proto's snake_case; unknown keys are ignored; a key given
 *   twice is decoded twice, in document order, so the later occurrence wins (as in otelcol's
 *   reader, which also reads keys in order; we do not reject duplicates); null is the same as an
 * absent field (a null list element is a default value);
 * - trace_id / span_id / parent_span_id as hex (either case); "" is an empty id; any other
 *   length than 16 (trace) or 8 (span) bytes is an error;
 * - other bytes as base64, standard or URL-safe alphabet, with or without padding;
 * - enums as integers (any int32: proto3 enums are open) or as their value names
 *   ("SPAN_KIND_SERVER"); an unknown name is an error;
 * - integers of every width as JSON numbers or decimal strings; a number with a fraction or
 *   exponent is accepted when its value is a whole number in range. A bare integer outside
 *   int64 is read as a double: exact enough for double fields,
 *   lossy for a uint64 above 2^63, which proto3 JSON writers send as a string anyway;
 * - doubles as numbers, numeric strings, or "NaN", "Infinity", "-Infinity" (also "+Inf",
 *   "-Inf" and "Inf" as the Go collector writes them, in any letter case);
 * - `{}` (and any object without known keys) is a valid empty request.
 * A JSON string may not contain \u0000 (protobuf-c strings are NUL-terminated), and must be valid
 * UTF-8.
 *
 * Errors: OM_EINVAL with "<JSON path>: <problem>" in err (e.g.
 * "resourceSpans[0].scopeSpans[1].spans[3].traceId: invalid trace id: invalid hex"),
 * OM_ETOOBIG when the arena cap is reached, OM_ENOMEM.
 *
 * Limits: json.c refuses nesting deeper than OM_JSON_MAX_DEPTH (2048); we refuse
 * AnyValues (arrays, kvlists) nested deeper than DEC_MAX_ANY_DEPTH, which bounds our own
 * recursion. The decoded form is bounded by the arena cap. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "om.h"

#define DEC_MAX_ANY_DEPTH 64
/* Path segments remembered for error messages: enough for the deepest path we accept (a few
 * levels of request structure, then up to four per nested AnyValue, as in
 * kvlistValue.values[0].value). */
#define DEC_PATH_MAX (16 + 4 * DEC_MAX_ANY_DEPTH)
/* Longest key we look up; every OTLP field name is far shorter. */
#define DEC_KEY_MAX 64

typedef struct path_seg {
    const char *key; /* NULL: an array index */
    size_t idx;
} path_seg_t;

typedef struct dec {
    om_arena_t *arena;
    om_err_t *err;
    unsigned any_depth;
    size_t n_path;
    path_seg_t path[DEC_PATH_MAX];
} dec_t;

/* ---------------------------------------------------------------------------------------- */
/* Errors with the JSON path of the offending value                                           */

static void path_push_key(dec_t *d, const char *key)
{
    if (d->n_path < DEC_PATH_MAX) {
        d->path[d->n_path] = (path_seg_t){key, 0};
    }
    d->n_path++;
}

static void path_push_idx(dec_t *d, size_t idx)
{
    if (d->n_path < DEC_PATH_MAX) {
        d->path[d->n_path] = (path_seg_t){NULL, idx};
    }
    d->n_path++;
}

static void path_pop(dec_t *d)
{
    d->n_path--;
}

static size_t seg_len(const path_seg_t *s)
{
    char tmp[24];
    return s->key != NULL ? strlen(s->key) + 1 : (size_t)snprintf(tmp, sizeof tmp, "[%zu]", s->idx);
}

/* "resourceSpans[0].scopeSpans[1].spans[3].traceId" into buf of n bytes; a path that does
 * not fit keeps its end, which names the offending field, after "...". */
static void format_path(const dec_t *d, char *buf, size_t n)
{
    size_t count = d->n_path < DEC_PATH_MAX ? d->n_path : DEC_PATH_MAX;
    size_t first = count, need = 0;
    while (first > 0 && need + seg_len(&d->path[first - 1]) + 4 < n) {
        need += seg_len(&d->path[--first]);
    }
    size_t len = (size_t)snprintf(buf, n, "%s", first > 0 ? "..." : "");
    for (size_t i = first; i < count && len < n; i++) {
        const path_seg_t *s = &d->path[i];
        int w;
        if (s->key == NULL) {
            w = snprintf(buf + len, n - len, "[%zu]", s->idx);
        } else {
            w = snprintf(buf + len, n - len, "%s%s", i > first ? "." : "", s->key);
        }
        if (w < 0) {
            return;
        }
        len += (size_t)w;
    }
}

static int fail(dec_t *d, const char *fmt, ...) OM_PRINTF(2, 3);

/* Sets "path: message" and returns OM_EINVAL. */
static int fail(dec_t *d, const char *fmt, ...)
{
    char path[128], msg[120];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    format_path(d, path, sizeof path);
    if (path[0] != '\0') {
        om_err_set(d->err, OM_EINVAL, "%s: %s", path, msg);
    } else {
        om_err_set(d->err, OM_EINVAL, "%s", msg);
    }
    return OM_EINVAL;
}

/* An arena allocation failed: the cap (OM_ETOOBIG) or malloc (OM_ENOMEM). */
static int nomem(dec_t *d)
{
    return om_arena_fail(d->arena, d->err, "decoded request");
}

/* ---------------------------------------------------------------------------------------- */
/* Scalars                                                                                    */

/* A plain decimal integer string: optional '-' (when allowed), then digits, nothing else. */
static bool parse_decimal(const char *s, size_t len, bool allow_minus, bool *neg, uint64_t *mag)
{
    size_t i = 0;
    uint64_t v = 0;
    *neg = false;
    if (len > 0 && s[0] == '-' && allow_minus) {
        *neg = true;
        i = 1;
    }
    if (i == len) {
        return false;
    }
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
        unsigned digit = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - digit) / 10) {
            return false;
        }
        v = v * 10 + digit;
    }
    *mag = v;
    return true;
}

/* Any JSON number or numeric string as a whole number: sign and magnitude. */
static int get_whole(dec_t *d, const om_json_t *v, bool allow_neg, bool *neg, uint64_t *mag)
{
    if ((v->type == OM_JSON_INTEGER)) {
        int64_t i = v->u.i;
        *neg = i < 0;
        *mag = i < 0 ? (uint64_t)0 - (uint64_t)i : (uint64_t)i;
    } else if ((v->type == OM_JSON_REAL)) {
        double r = v->u.r;
        if (r != floor(r) || fabs(r) >= 18446744073709551616.0) {
            return fail(d, "expected an integer, got %g", r);
        }
        *neg = r < 0;
        *mag = (uint64_t)fabs(r);
    } else if ((v->type == OM_JSON_STRING)) {
        if (!parse_decimal(v->u.s, (size_t)v->n, allow_neg, neg, mag)) {
            return fail(d, "invalid integer \"%.40s\"", v->u.s);
        }
    } else {
        return fail(d, "expected an integer");
    }
    if (*neg && *mag != 0 && !allow_neg) {
        return fail(d, "expected an unsigned integer");
    }
    return 0;
}

static int get_uint(dec_t *d, const om_json_t *v, uint64_t max, uint64_t *out)
{
    bool neg = false;
    uint64_t mag = 0;
    int rc = get_whole(d, v, false, &neg, &mag);
    if (rc != 0) {
        return rc;
    }
    if (mag > max) {
        return fail(d, "integer out of range");
    }
    *out = mag;
    return 0;
}

static int get_int(dec_t *d, const om_json_t *v, int64_t min, int64_t max, int64_t *out)
{
    bool neg = false;
    uint64_t mag = 0;
    int rc = get_whole(d, v, true, &neg, &mag);
    if (rc != 0) {
        return rc;
    }
    if (neg) {
        /* -(min) computed in unsigned: min may be INT64_MIN. */
        if (mag > (uint64_t)0 - (uint64_t)min) {
            return fail(d, "integer out of range");
        }
        *out = mag == 0 ? 0 : -(int64_t)(mag - 1) - 1;
        return 0;
    }
    if (mag > (uint64_t)max) {
        return fail(d, "integer out of range");
    }
    *out = (int64_t)mag;
    return 0;
}

/* The special strings of proto3 JSON, and the spellings Go's fmt writes ("+Inf"). */
static bool special_double(const char *s, double *out)
{
    const char *p = s;
    double sign = 1.0;
    if (strcasecmp(s, "nan") == 0) {
        *out = NAN;
        return true;
    }
    if (*p == '-' || *p == '+') {
        sign = *p == '-' ? -1.0 : 1.0;
        p++;
    }
    if (strcasecmp(p, "infinity") == 0 || strcasecmp(p, "inf") == 0) {
        *out = sign * INFINITY;
        return true;
    }
    return false;
}

/* A decimal number in a string: only the characters of a JSON number, all consumed. */
static bool numeric_string(const char *s, size_t len, double *out)
{
    char *end = NULL;
    if (len == 0 || len != strspn(s, "0123456789.eE+-")) {
        return false;
    }
    *out = strtod(s, &end);
    return end == s + len;
}

static int get_double(dec_t *d, const om_json_t *v, double *out)
{
    if ((v->type == OM_JSON_REAL)) {
        *out = v->u.r;
    } else if ((v->type == OM_JSON_INTEGER)) {
        *out = (double)v->u.i;
    } else if ((v->type == OM_JSON_STRING)) {
        const char *s = v->u.s;
        if (!special_double(s, out) && !numeric_string(s, (size_t)v->n, out)) {
            return fail(d, "invalid number \"%.40s\"", s);
        }
    } else {
        return fail(d, "expected a number");
    }
    return 0;
}

static int get_enum(dec_t *d, const ProtobufCEnumDescriptor *ed, const om_json_t *v, int *out)
{
    if ((v->type == OM_JSON_STRING)) {
        const char *name = v->u.s;
        const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value_by_name(ed, name);
        if (ev != NULL) {
            *out = ev->value;
            return 0;
        }
        /* A number in a string is still a number. */
        bool neg = false;
        uint64_t mag = 0;
        if (!parse_decimal(name, (size_t)v->n, true, &neg, &mag)) {
            return fail(d, "unknown %s value \"%.40s\"", ed->short_name, name);
        }
    }
    int64_t i;
    int rc = get_int(d, v, INT32_MIN, INT32_MAX, &i);
    if (rc == 0) {
        *out = (int)i;
    }
    return rc;
}

static int get_string(dec_t *d, const om_json_t *v, char **out)
{
    if (!(v->type == OM_JSON_STRING)) {
        return fail(d, "expected a string");
    }
    *out = om_arena_strndup(d->arena, v->u.s, (size_t)v->n);
    return *out == NULL ? nomem(d) : 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* trace/span ids: hex of exactly want bytes, or "" for an empty id. */
static int get_hex_id(dec_t *d, const om_json_t *v, size_t want, const char *what,
                      ProtobufCBinaryData *out)
{
    if (!(v->type == OM_JSON_STRING)) {
        return fail(d, "invalid %s: expected a hex string", what);
    }
    const char *s = v->u.s;
    size_t len = (size_t)v->n;
    *out = (ProtobufCBinaryData){0, NULL};
    if (len == 0) {
        return 0;
    }
    if (len != want * 2) {
        return fail(d, "invalid %s: %zu hex digits, want %zu", what, len, want * 2);
    }
    uint8_t *buf = om_arena_alloc(d->arena, want);
    if (buf == NULL) {
        return nomem(d);
    }
    for (size_t i = 0; i < want; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            return fail(d, "invalid %s: invalid hex", what);
        }
        buf[i] = (uint8_t)(hi << 4 | lo);
    }
    *out = (ProtobufCBinaryData){want, buf};
    return 0;
}

/* Standard and URL-safe base64 digits; -1 for anything else. */
static int b64val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    if (c == '+' || c == '-') {
        return 62;
    }
    if (c == '/' || c == '_') {
        return 63;
    }
    return -1;
}

static int get_base64(dec_t *d, const om_json_t *v, ProtobufCBinaryData *out)
{
    if (!(v->type == OM_JSON_STRING)) {
        return fail(d, "expected a base64 string");
    }
    const unsigned char *s = (const unsigned char *)v->u.s;
    size_t len = (size_t)v->n;
    /* Padding is optional, but when present it completes the last quantum. */
    size_t pad = 0;
    while (len > 0 && s[len - 1] == '=' && pad < 2) {
        len--;
        pad++;
    }
    if (len % 4 == 1 || (pad > 0 && (len + pad) % 4 != 0)) {
        return fail(d, "invalid base64");
    }
    *out = (ProtobufCBinaryData){0, NULL};
    if (len == 0) {
        return 0;
    }
    uint8_t *buf = om_arena_alloc(d->arena, len / 4 * 3 + 2);
    if (buf == NULL) {
        return nomem(d);
    }
    size_t n = 0;
    uint32_t acc = 0;
    for (size_t i = 0; i < len; i++) {
        int x = b64val(s[i]);
        if (x < 0) {
            return fail(d, "invalid base64");
        }
        acc = acc << 6 | (uint32_t)x;
        if (i % 4 == 3) {
            buf[n++] = (uint8_t)(acc >> 16);
            buf[n++] = (uint8_t)(acc >> 8);
            buf[n++] = (uint8_t)acc;
            acc = 0;
        }
    }
    if (len % 4 == 2) {
        buf[n++] = (uint8_t)(acc >> 4);
    } else if (len % 4 == 3) {
        buf[n++] = (uint8_t)(acc >> 10);
        buf[n++] = (uint8_t)(acc >> 2);
    }
    *out = (ProtobufCBinaryData){n, buf};
    return 0;
}

/* OTLP writes these bytes fields as hex; the want length is the id's size in bytes. */
static size_t hex_id_size(const ProtobufCFieldDescriptor *f, const char **what)
{
    if (strcmp(f->name, "trace_id") == 0) {
        *what = "trace id";
        return 16;
    }
    if (strcmp(f->name, "span_id") == 0 || strcmp(f->name, "parent_span_id") == 0) {
        *what = "span id";
        return 8;
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Messages                                                                                   */

static int dec_message(dec_t *d, const ProtobufCMessageDescriptor *md, const om_json_t *obj,
                       ProtobufCMessage *msg);

/* A new message of type md in the arena, filled from obj (NULL: left empty). */
static int dec_submessage(dec_t *d, const ProtobufCMessageDescriptor *md, const om_json_t *obj,
                          ProtobufCMessage **out)
{
    bool any = md == &opentelemetry__proto__common__v1__any_value__descriptor;
    if (obj != NULL && obj->type != OM_JSON_OBJECT) {
        return fail(d, "expected an object");
    }
    if (any && d->any_depth >= DEC_MAX_ANY_DEPTH) {
        return fail(d, "values nested deeper than %d levels", DEC_MAX_ANY_DEPTH);
    }
    ProtobufCMessage *m = om_arena_alloc(d->arena, md->sizeof_message);
    if (m == NULL) {
        return nomem(d);
    }
    protobuf_c_message_init(md, m);
    *out = m;
    if (obj == NULL) {
        return 0;
    }
    d->any_depth += any;
    int rc = dec_message(d, md, obj, m);
    d->any_depth -= any;
    return rc;
}

static int dec_integer_field(dec_t *d, ProtobufCType type, const om_json_t *v, void *member)
{
    int64_t i = 0;
    uint64_t u = 0;
    int rc;
    switch (type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        rc = get_int(d, v, INT32_MIN, INT32_MAX, &i);
        *(int32_t *)member = (int32_t)i;
        return rc;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        rc = get_uint(d, v, UINT32_MAX, &u);
        *(uint32_t *)member = (uint32_t)u;
        return rc;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        rc = get_int(d, v, INT64_MIN, INT64_MAX, &i);
        *(int64_t *)member = i;
        return rc;
    default: /* UINT64, FIXED64 */
        rc = get_uint(d, v, UINT64_MAX, &u);
        *(uint64_t *)member = u;
        return rc;
    }
}

/* One value of field f from v into member (the field itself, or one element of its array). */
static int dec_value(dec_t *d, const ProtobufCFieldDescriptor *f, const om_json_t *v, void *member)
{
    double x = 0;
    int rc;
    const char *what = NULL;
    switch (f->type) {
    case PROTOBUF_C_TYPE_FLOAT:
        rc = get_double(d, v, &x);
        *(float *)member = (float)x;
        return rc;
    case PROTOBUF_C_TYPE_DOUBLE:
        return get_double(d, v, (double *)member);
    case PROTOBUF_C_TYPE_BOOL:
        if (!(v->type == OM_JSON_TRUE || v->type == OM_JSON_FALSE)) {
            return fail(d, "expected true or false");
        }
        *(protobuf_c_boolean *)member = (v->type == OM_JSON_TRUE);
        return 0;
    case PROTOBUF_C_TYPE_ENUM:
        return get_enum(d, f->descriptor, v, (int *)member);
    case PROTOBUF_C_TYPE_STRING:
        return get_string(d, v, (char **)member);
    case PROTOBUF_C_TYPE_BYTES: {
        size_t want = hex_id_size(f, &what);
        if (want > 0) {
            return get_hex_id(d, v, want, what, (ProtobufCBinaryData *)member);
        }
        return get_base64(d, v, (ProtobufCBinaryData *)member);
    }
    case PROTOBUF_C_TYPE_MESSAGE:
        return dec_submessage(d, f->descriptor, v, (ProtobufCMessage **)member);
    default:
        return dec_integer_field(d, f->type, v, member);
    }
}

/* The default value of one array element, for a null in a JSON array. */
static int dec_null_element(dec_t *d, const ProtobufCFieldDescriptor *f, void *member, size_t size)
{
    if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
        return dec_submessage(d, f->descriptor, NULL, (ProtobufCMessage **)member);
    }
    memset(member, 0, size);
    if (f->type == PROTOBUF_C_TYPE_STRING) {
        *(char **)member = om_arena_strndup(d->arena, "", 0);
        return *(char **)member == NULL ? nomem(d) : 0;
    }
    return 0;
}

static size_t element_size(ProtobufCType type)
{
    switch (type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_ENUM:
        return 4;
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(ProtobufCMessage *);
    default: /* 64-bit integers and double */
        return 8;
    }
}

static int dec_repeated(dec_t *d, const ProtobufCFieldDescriptor *f, const om_json_t *arr,
                        ProtobufCMessage *msg)
{
    size_t *count = (size_t *)((char *)msg + f->quantifier_offset);
    void **items = (void **)((char *)msg + f->offset);
    size_t esize = element_size(f->type);
    if (arr->type != OM_JSON_ARRAY) {
        return fail(d, "expected an array");
    }
    size_t n = (size_t)arr->n;
    *count = 0;
    *items = NULL;
    if (n == 0) {
        return 0;
    }
    char *mem = n > SIZE_MAX / esize ? NULL : om_arena_alloc(d->arena, n * esize);
    if (mem == NULL) {
        return nomem(d);
    }
    for (size_t i = 0; i < n; i++) {
        const om_json_t *el = &arr->u.items[i];
        path_push_idx(d, i);
        int rc = (el->type == OM_JSON_NULL) ? dec_null_element(d, f, mem + i * esize, esize)
                                            : dec_value(d, f, el, mem + i * esize);
        path_pop(d);
        if (rc != 0) {
            return rc;
        }
    }
    *count = n;
    *items = mem;
    return 0;
}

static int dec_single(dec_t *d, const ProtobufCFieldDescriptor *f, const om_json_t *v,
                      ProtobufCMessage *msg)
{
    int rc = dec_value(d, f, v, (char *)msg + f->offset);
    if (rc != 0) {
        return rc;
    }
    /* oneof members (proto3 `optional` included, which protoc-c renders as a oneof) record
     * which member is set; proto2-style optional scalars have a has_ flag. */
    if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) != 0) {
        *(uint32_t *)((char *)msg + f->quantifier_offset) = f->id;
    } else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_MESSAGE &&
               f->type != PROTOBUF_C_TYPE_STRING) {
        *(protobuf_c_boolean *)((char *)msg + f->quantifier_offset) = 1;
    }
    return 0;
}

/* The field a JSON key names: "droppedAttributesCount" and "dropped_attributes_count" both
 * find dropped_attributes_count. NULL for unknown keys. */
static const ProtobufCFieldDescriptor *lookup_field_uncached(const ProtobufCMessageDescriptor *md,
                                                             const char *key, size_t key_len)
{
    char snake[DEC_KEY_MAX];
    size_t n = 0;
    for (size_t i = 0; i < key_len; i++) {
        char c = key[i];
        bool upper = c >= 'A' && c <= 'Z';
        if (n + (upper ? 2 : 1) >= sizeof snake) {
            return NULL;
        }
        if (upper) {
            snake[n++] = '_';
            snake[n++] = (char)(c - 'A' + 'a');
        } else {
            snake[n++] = c;
        }
    }
    snake[n] = '\0';
    return protobuf_c_message_descriptor_get_field_by_name(md, snake);
}

/* The same few keys come back in every span and attribute, and the descriptor's binary search
 * by name was a tenth of the JSON path: remember recent answers, per thread (decoding may run
 * on any thread). A slot holds one (message, key) pair; a miss just looks up again. 128 slots
 * of 40 bytes: 5 KB of TLS in each thread, and a hit for nearly every key of an OTLP request. */
#define FIELD_CACHE_SLOTS 128
#define FIELD_CACHE_KEY 23
typedef struct field_cache_slot {
    const ProtobufCMessageDescriptor *md;
    const ProtobufCFieldDescriptor *f; /* NULL: an unknown key */
    uint8_t key_len;
    char key[FIELD_CACHE_KEY];
} field_cache_slot_t;
static _Thread_local field_cache_slot_t field_cache[FIELD_CACHE_SLOTS];

static const ProtobufCFieldDescriptor *lookup_field(const ProtobufCMessageDescriptor *md,
                                                    const char *key, size_t key_len)
{
    if (key_len > FIELD_CACHE_KEY) {
        return lookup_field_uncached(md, key, key_len);
    }
    /* A few bytes tell OTLP's keys apart well enough; a collision only costs a lookup. */
    uint32_t h = (uint32_t)((uintptr_t)md >> 4) * 2654435761u;
    if (key_len > 0) {
        h ^= (uint32_t)key_len * 31u ^ (uint8_t)key[0] * 131u ^ (uint8_t)key[key_len / 2] * 17u ^
             (uint8_t)key[key_len - 1] * 7u;
    }
    field_cache_slot_t *slot = &field_cache[h % FIELD_CACHE_SLOTS];
    if (slot->md == md && slot->key_len == key_len && memcmp(slot->key, key, key_len) == 0) {
        return slot->f;
    }
    const ProtobufCFieldDescriptor *f = lookup_field_uncached(md, key, key_len);
    slot->md = md;
    slot->f = f;
    slot->key_len = (uint8_t)key_len;
    memcpy(slot->key, key, key_len);
    return f;
}

static int dec_message(dec_t *d, const ProtobufCMessageDescriptor *md, const om_json_t *obj,
                       ProtobufCMessage *msg)
{
    /* Members in document order: of two keys naming one field, the later wins. */
    for (uint32_t i = 0; i < obj->n; i++) {
        const char *key = obj->u.members[i].key;
        const om_json_t *val = &obj->u.members[i].value;
        if (val->type == OM_JSON_NULL) {
            continue;
        }
        const ProtobufCFieldDescriptor *f = lookup_field(md, key, obj->u.members[i].key_len);
        if (f == NULL) {
            continue;
        }
        path_push_key(d, key);
        int rc = f->label == PROTOBUF_C_LABEL_REPEATED ? dec_repeated(d, f, val, msg)
                                                       : dec_single(d, f, val, msg);
        path_pop(d);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

int om_batch_decode_json(om_signal_t sig, const char *data, size_t len, size_t arena_cap,
                         om_batch_t **out, om_err_t *err)
{
    om_batch_t *b = NULL;
    const om_json_t *root = NULL;
    *out = NULL;
    if (om_signal_index(sig) < 0) {
        om_err_set(err, OM_EINVAL, "unknown signal");
        return OM_EINVAL;
    }
    /* The tree lives only while the structs are built; the cap bounds it too. */
    om_arena_t *tree = om_arena_new(arena_cap);
    if (tree == NULL) {
        om_err_set(err, OM_ENOMEM, "out of memory decoding the request");
        return OM_ENOMEM;
    }
    int rc = om_json_parse(tree, data, len, &root, err);
    if (rc != 0) {
        goto out;
    }
    if (root->type != OM_JSON_OBJECT) {
        om_err_set(err, OM_EINVAL, "expected a JSON object");
        rc = OM_EINVAL;
        goto out;
    }
    b = om_batch_new(sig, arena_cap);
    if (b == NULL) {
        om_err_set(err, OM_ENOMEM, "out of memory decoding the request");
        rc = OM_ENOMEM;
        goto out;
    }
    dec_t d = {.arena = b->arenas[0], .err = err};
    rc = dec_message(&d, b->msg->descriptor, root, b->msg);
    if (rc == 0) {
        b->items = om_batch_count_items(b);
        *out = b;
        b = NULL;
    }
out:
    if (b != NULL) {
        om_batch_release(b);
    }
    om_arena_unref(tree);
    return rc;
}
