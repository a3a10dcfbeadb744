/* otlphttp_codec.c: request bodies and the reading of responses.
 *
 * Everything here is a pure function of its arguments (no loop, no curl handle), so the unit
 * tests and the fuzz target drive exactly what the exporter runs. Response bodies come from
 * the network: they are bounded by the caller (OTLPHTTP_RESP_MAX), decoded into a capped
 * arena or by jansson, and only escaped text of them reaches a log line. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "google/rpc/status.pb-c.h"
#include "otlphttp.h"

/* Decoding a response of at most OTLPHTTP_RESP_MAX bytes never needs more than this. */
#define DECODE_ARENA_CAP ((size_t)1024 * 1024)

/* ------------------------------------------------------------------------------------------ */
/* Request bodies                                                                             */

om_comp_t exp_otlphttp_comp_alg(otlphttp_comp_t comp)
{
    switch (comp) {
    case OTLPHTTP_COMP_GZIP:
        return OM_COMP_GZIP;
    case OTLPHTTP_COMP_ZSTD:
        return OM_COMP_ZSTD;
    case OTLPHTTP_COMP_ZLIB:
    case OTLPHTTP_COMP_DEFLATE:
        return OM_COMP_ZLIB;
    case OTLPHTTP_COMP_NONE:
    case OTLPHTTP_COMP_EMPTY:
        break;
    }
    return OM_COMP_NONE;
}

const char *exp_otlphttp_comp_name(otlphttp_comp_t comp)
{
    switch (comp) {
    case OTLPHTTP_COMP_GZIP:
        return "gzip";
    case OTLPHTTP_COMP_ZSTD:
        return "zstd";
    case OTLPHTTP_COMP_ZLIB:
        return "zlib";
    case OTLPHTTP_COMP_DEFLATE:
        return "deflate";
    case OTLPHTTP_COMP_NONE:
    case OTLPHTTP_COMP_EMPTY:
        break;
    }
    return NULL;
}

static int encode_raw(const om_batch_t *b, otlphttp_encoding_t enc, uint8_t **out, size_t *len,
                      om_err_t *err)
{
    if (enc == OTLPHTTP_ENC_PROTO) {
        size_t n = om_batch_proto_size(b);
        uint8_t *buf = om_malloc(n > 0 ? n : 1);
        if (buf == NULL) {
            return OM_ENOMEM;
        }
        *len = om_batch_proto_pack(b, buf);
        *out = buf;
        return 0;
    }
    om_strbuf_t sb;
    om_strbuf_init(&sb, 0);
    int rc = om_otlp_json_encode(b, &sb);
    if (rc == 0 && sb.data == NULL) {
        rc = OM_ENOMEM;
    }
    if (rc != 0) {
        om_strbuf_free(&sb);
        if (rc != OM_ENOMEM) {
            om_err_set(err, rc, "cannot encode the %s as OTLP JSON: %s", om_signal_name(b->signal),
                       om_strerror(rc));
        }
        return rc;
    }
    *out = (uint8_t *)om_strbuf_steal(&sb, len);
    return 0;
}

int exp_otlphttp_encode_body(const om_batch_t *b, otlphttp_encoding_t enc, om_compressor_t *z,
                             uint8_t **out, size_t *len, om_err_t *err)
{
    int rc;
    size_t body_len; /* before compression, for the message */
    if (enc == OTLPHTTP_ENC_PROTO && b->raw_valid && z != NULL) {
        /* The requests as they arrived: compressed where they are (see om_batch_proto_pack). */
        body_len = om_batch_proto_size(b);
        rc = om_compressor_run_pieces(z, b->raw, b->n_raw, out, len);
    } else {
        uint8_t *raw = NULL;
        size_t raw_len = 0;
        rc = encode_raw(b, enc, &raw, &raw_len, err);
        if (rc != 0 || z == NULL) {
            *out = raw;
            *len = raw_len;
            return rc;
        }
        body_len = raw_len;
        rc = om_compressor_run(z, raw, raw_len, out, len);
        om_free(raw);
    }
    if (rc == OM_ETOOBIG) {
        om_err_set(err, rc, "request body of %zu bytes is too large to compress", body_len);
    }
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Responses                                                                                  */

otlphttp_ctype_t exp_otlphttp_ctype(const char *ct)
{
    if (ct == NULL) {
        return OTLPHTTP_CT_OTHER;
    }
    while (*ct == ' ' || *ct == '\t') {
        ct++;
    }
    size_t n = strcspn(ct, "; \t");
    static const struct {
        const char *name;
        otlphttp_ctype_t t;
    } types[] = {
        {"application/x-protobuf", OTLPHTTP_CT_PROTO},
        {"application/protobuf", OTLPHTTP_CT_PROTO},
        {"application/json", OTLPHTTP_CT_JSON},
    };
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        if (strlen(types[i].name) == n && strncasecmp(ct, types[i].name, n) == 0) {
            return types[i].t;
        }
    }
    return OTLPHTTP_CT_OTHER;
}

/* Copy at most max bytes of s as printable ASCII (others as \xNN) into dst; "..." marks a cut.
 * dst is always NUL-terminated. */
static void escape_text(char *dst, size_t cap, const uint8_t *s, size_t n, size_t max)
{
    size_t o = 0;
    size_t lim = n < max ? n : max;
    for (size_t i = 0; i < lim && o + 5 < cap; i++) {
        if (s[i] >= 0x20 && s[i] < 0x7f) {
            dst[o++] = (char)s[i];
        } else {
            static const char hex[] = "0123456789abcdef";
            dst[o++] = '\\';
            dst[o++] = 'x';
            dst[o++] = hex[s[i] >> 4];
            dst[o++] = hex[s[i] & 15];
        }
    }
    if (n > lim && o + 4 < cap) {
        memcpy(dst + o, "...", 3);
        o += 3;
    }
    dst[o] = '\0';
}

static void escape_str(char *dst, size_t cap, const char *s)
{
    escape_text(dst, cap, (const uint8_t *)s, strlen(s), cap);
}

static const ProtobufCMessageDescriptor *response_descriptor(om_signal_t sig)
{
    switch (sig) {
    case OM_SIG_TRACES:
        return &opentelemetry__proto__collector__trace__v1__export_trace_service_response__descriptor;
    case OM_SIG_METRICS:
        return &opentelemetry__proto__collector__metrics__v1__export_metrics_service_response__descriptor;
    case OM_SIG_LOGS:
        return &opentelemetry__proto__collector__logs__v1__export_logs_service_response__descriptor;
    }
    return NULL;
}

/* Reads partial_success out of an unpacked response of the signal. */
static void proto_partial(om_signal_t sig, const ProtobufCMessage *m, int64_t *rejected,
                          const char **msg)
{
    if (sig == OM_SIG_TRACES) {
        const om_traces_resp_t *r = (const om_traces_resp_t *)m;
        if (r->partial_success != NULL) {
            *rejected = r->partial_success->rejected_spans;
            *msg = r->partial_success->error_message;
        }
    } else if (sig == OM_SIG_METRICS) {
        const om_metrics_resp_t *r = (const om_metrics_resp_t *)m;
        if (r->partial_success != NULL) {
            *rejected = r->partial_success->rejected_data_points;
            *msg = r->partial_success->error_message;
        }
    } else {
        const om_logs_resp_t *r = (const om_logs_resp_t *)m;
        if (r->partial_success != NULL) {
            *rejected = r->partial_success->rejected_log_records;
            *msg = r->partial_success->error_message;
        }
    }
}

static int partial_proto(om_signal_t sig, const uint8_t *body, size_t len, int64_t *rejected,
                         char *msg, size_t cap)
{
    const ProtobufCMessageDescriptor *d = response_descriptor(sig);
    om_arena_t *a = om_arena_new(DECODE_ARENA_CAP);
    if (d == NULL || a == NULL) {
        om_arena_unref(a);
        return d == NULL ? OM_EINVAL : OM_ENOMEM;
    }
    ProtobufCMessage *m = protobuf_c_message_unpack(d, om_arena_pb_allocator(a), len, body);
    int rc = m == NULL ? OM_EINVAL : 0;
    if (m != NULL) {
        const char *text = NULL;
        proto_partial(sig, m, rejected, &text);
        escape_str(msg, cap, text != NULL ? text : "");
        rc = *rejected != 0 || msg[0] != '\0';
    }
    om_arena_unref(a);
    return rc;
}

/* A response body as a JSON tree in a; NULL when a is NULL or the body is no JSON. */
static const om_json_t *parse_json(om_arena_t *a, const uint8_t *body, size_t len)
{
    const om_json_t *root = NULL;
    om_err_t err = {0};
    if (a == NULL || om_json_parse(a, (const char *)body, len, &root, &err) != 0) {
        return NULL;
    }
    return root;
}

/* A JSON member by its lowerCamelCase or snake_case name. */
static const om_json_t *member(const om_json_t *obj, const char *camel, const char *snake)
{
    const om_json_t *v = om_json_get(obj, camel);
    return v != NULL ? v : om_json_get(obj, snake);
}

/* int64 as the JSON mapping writes it: a decimal string, or a number. Absent is 0. */
static bool json_int64(const om_json_t *v, int64_t *out)
{
    if (v == NULL) {
        return true;
    }
    if (v->type == OM_JSON_INTEGER) {
        *out = v->u.i;
        return true;
    }
    if (v->type == OM_JSON_STRING) {
        char *end = NULL;
        errno = 0;
        long long x = strtoll(v->u.s, &end, 10);
        if (errno == 0 && end != v->u.s && *end == '\0') {
            *out = x;
            return true;
        }
    }
    return false;
}

static int partial_json(om_signal_t sig, const uint8_t *body, size_t len, int64_t *rejected,
                        char *msg, size_t cap)
{
    static const char *const camel[] = {"rejectedSpans", "rejectedDataPoints",
                                        "rejectedLogRecords"};
    static const char *const snake[] = {"rejected_spans", "rejected_data_points",
                                        "rejected_log_records"};
    int idx = om_signal_index(sig);
    om_arena_t *a = om_arena_new(DECODE_ARENA_CAP);
    const om_json_t *root = parse_json(a, body, len);
    int rc = 0;
    if (idx < 0 || root == NULL || root->type != OM_JSON_OBJECT) {
        rc = OM_EINVAL;
        goto out;
    }
    const om_json_t *ps = member(root, "partialSuccess", "partial_success");
    if (ps != NULL && ps->type == OM_JSON_OBJECT) {
        const om_json_t *text = member(ps, "errorMessage", "error_message");
        if (!json_int64(member(ps, camel[idx], snake[idx]), rejected) ||
            (text != NULL && text->type != OM_JSON_STRING)) {
            rc = OM_EINVAL;
        } else {
            escape_str(msg, cap, text != NULL ? text->u.s : "");
            rc = *rejected != 0 || msg[0] != '\0';
        }
    } else if (ps != NULL && ps->type != OM_JSON_NULL) {
        rc = OM_EINVAL;
    }
out:
    om_arena_unref(a);
    return rc;
}

int exp_otlphttp_partial_success(om_signal_t sig, otlphttp_ctype_t ctype, const uint8_t *body,
                                 size_t len, int64_t *rejected, char *msg, size_t cap)
{
    *rejected = 0;
    if (cap > 0) {
        msg[0] = '\0';
    }
    if (len == 0 || cap == 0) {
        return 0;
    }
    if (ctype == OTLPHTTP_CT_PROTO) {
        return partial_proto(sig, body, len, rejected, msg, cap);
    }
    if (ctype == OTLPHTTP_CT_JSON) {
        return partial_json(sig, body, len, rejected, msg, cap);
    }
    return 0;
}

static bool status_proto(const uint8_t *body, size_t len, char *msg, size_t cap)
{
    om_arena_t *a = om_arena_new(DECODE_ARENA_CAP);
    if (a == NULL) {
        return false;
    }
    Google__Rpc__Status *st = google__rpc__status__unpack(om_arena_pb_allocator(a), len, body);
    bool ok = st != NULL && st->message != NULL && st->message[0] != '\0';
    if (ok) {
        escape_str(msg, cap, st->message);
    }
    om_arena_unref(a);
    return ok;
}

static bool status_json(const uint8_t *body, size_t len, char *msg, size_t cap)
{
    om_arena_t *a = om_arena_new(DECODE_ARENA_CAP);
    const om_json_t *m = om_json_get(parse_json(a, body, len), "message");
    bool ok = m != NULL && m->type == OM_JSON_STRING && m->n > 0;
    if (ok) {
        escape_str(msg, cap, m->u.s);
    }
    om_arena_unref(a);
    return ok;
}

void exp_otlphttp_error_message(otlphttp_ctype_t ctype, const uint8_t *body, size_t len, char *msg,
                                size_t cap)
{
    msg[0] = '\0';
    if (len == 0) {
        return;
    }
    bool ok = ctype == OTLPHTTP_CT_JSON ? status_json(body, len, msg, cap)
                                        : status_proto(body, len, msg, cap);
    if (!ok) {
        escape_text(msg, cap, body, len, 64);
    }
}
