/* ottl_paths.c: the paths and enums of the OTTL contexts filter uses (pkg/ottl/contexts:
 * ottlspan, ottlspanevent, ottlmetric, ottldatapoint, ottllog), and what each path reads from
 * the item a walk stands on. A path may start with its own context's name ("span.name" in the
 * span context) and, below the item, names the things around it: "span." in the span event
 * context, "metric." in the data point context, "resource." and "instrumentation_scope." (or
 * "scope.") everywhere. Values have otelcol's types: times, kinds, codes and counts are
 * int64, ids are pcommon.TraceID / SpanID, ".string" forms of ids are lowercase hex ("" for
 * an all-zero id). */
#include <stdio.h>
#include <string.h>

#include "filter.h"

typedef struct path_name {
    const char *name;
    ottl_path_id_t id;
} path_name_t;

static const path_name_t span_paths[] = {
    {"name", P_SPAN_NAME},
    {"kind", P_SPAN_KIND},
    {"status.code", P_SPAN_STATUS_CODE},
    {"status.message", P_SPAN_STATUS_MESSAGE},
    {"attributes", P_SPAN_ATTRS},
    {"dropped_attributes_count", P_SPAN_DROPPED_ATTRS},
    {"trace_id", P_SPAN_TRACE_ID},
    {"trace_id.string", P_SPAN_TRACE_ID_STR},
    {"span_id", P_SPAN_ID},
    {"span_id.string", P_SPAN_ID_STR},
    {"parent_span_id", P_SPAN_PARENT_ID},
    {"parent_span_id.string", P_SPAN_PARENT_ID_STR},
    {"trace_state", P_SPAN_TRACE_STATE},
    {"start_time_unix_nano", P_SPAN_START},
    {"end_time_unix_nano", P_SPAN_END},
    {"flags", P_SPAN_FLAGS},
    {NULL, P_NONE},
};

static const path_name_t event_paths[] = {
    {"name", P_EVENT_NAME},
    {"time_unix_nano", P_EVENT_TIME},
    {"attributes", P_EVENT_ATTRS},
    {"dropped_attributes_count", P_EVENT_DROPPED_ATTRS},
    {NULL, P_NONE},
};

static const path_name_t metric_paths[] = {
    {"name", P_METRIC_NAME},
    {"description", P_METRIC_DESCRIPTION},
    {"unit", P_METRIC_UNIT},
    {"type", P_METRIC_TYPE},
    {"aggregation_temporality", P_METRIC_TEMPORALITY},
    {"is_monotonic", P_METRIC_MONOTONIC},
    {NULL, P_NONE},
};

static const path_name_t dp_paths[] = {
    {"attributes", P_DP_ATTRS},
    {"start_time_unix_nano", P_DP_START},
    {"time_unix_nano", P_DP_TIME},
    {"value_double", P_DP_VALUE_DOUBLE},
    {"value_int", P_DP_VALUE_INT},
    {"flags", P_DP_FLAGS},
    {"count", P_DP_COUNT},
    {"sum", P_DP_SUM},
    {NULL, P_NONE},
};

static const path_name_t log_paths[] = {
    {"body", P_LOG_BODY},
    {"attributes", P_LOG_ATTRS},
    {"severity_number", P_LOG_SEVERITY_NUMBER},
    {"severity_text", P_LOG_SEVERITY_TEXT},
    {"time_unix_nano", P_LOG_TIME},
    {"observed_time_unix_nano", P_LOG_OBSERVED_TIME},
    {"trace_id", P_LOG_TRACE_ID},
    {"trace_id.string", P_LOG_TRACE_ID_STR},
    {"span_id", P_LOG_SPAN_ID},
    {"span_id.string", P_LOG_SPAN_ID_STR},
    {"flags", P_LOG_FLAGS},
    {"dropped_attributes_count", P_LOG_DROPPED_ATTRS},
    {"event_name", P_LOG_EVENT_NAME},
    {NULL, P_NONE},
};

static const path_name_t resource_paths[] = {
    {"attributes", P_RESOURCE_ATTRS},
    {"dropped_attributes_count", P_RESOURCE_DROPPED_ATTRS},
    {NULL, P_NONE},
};

static const path_name_t scope_paths[] = {
    {"name", P_SCOPE_NAME},
    {"version", P_SCOPE_VERSION},
    {"attributes", P_SCOPE_ATTRS},
    {"dropped_attributes_count", P_SCOPE_DROPPED_ATTRS},
    {NULL, P_NONE},
};

/* In a context: which table serves the names without prefix, and which prefixes lead to
 * which tables. */
typedef struct prefix {
    const char *prefix; /* with the dot */
    const path_name_t *table;
} prefix_t;

typedef struct ctx_def {
    const char *name;
    const path_name_t *own;
    prefix_t prefixes[6];
} ctx_def_t;

static const ctx_def_t ctxs[] = {
    [OTTL_CTX_SPAN] = {"span",
                       span_paths,
                       {{"span.", span_paths},
                        {"resource.", resource_paths},
                        {"instrumentation_scope.", scope_paths},
                        {"scope.", scope_paths}}},
    [OTTL_CTX_SPANEVENT] = {"spanevent",
                            event_paths,
                            {{"spanevent.", event_paths},
                             {"span.", span_paths},
                             {"resource.", resource_paths},
                             {"instrumentation_scope.", scope_paths},
                             {"scope.", scope_paths}}},
    [OTTL_CTX_METRIC] = {"metric",
                         metric_paths,
                         {{"metric.", metric_paths},
                          {"resource.", resource_paths},
                          {"instrumentation_scope.", scope_paths},
                          {"scope.", scope_paths}}},
    [OTTL_CTX_DATAPOINT] = {"datapoint",
                            dp_paths,
                            {{"datapoint.", dp_paths},
                             {"metric.", metric_paths},
                             {"resource.", resource_paths},
                             {"instrumentation_scope.", scope_paths},
                             {"scope.", scope_paths}}},
    [OTTL_CTX_LOG] = {"log",
                      log_paths,
                      {{"log.", log_paths},
                       {"resource.", resource_paths},
                       {"instrumentation_scope.", scope_paths},
                       {"scope.", scope_paths}}},
};

const char *proc_filter_ottl_ctx_name(ottl_ctx_t ctx)
{
    return ctxs[ctx].name;
}

static ottl_path_id_t find_in(const path_name_t *t, const char *name)
{
    for (; t->name != NULL; t++) {
        if (strcmp(t->name, name) == 0) {
            return t->id;
        }
    }
    return P_NONE;
}

ottl_path_id_t proc_filter_ottl_path_find(ottl_ctx_t ctx, const char *name)
{
    const ctx_def_t *c = &ctxs[ctx];
    for (size_t i = 0; i < sizeof c->prefixes / sizeof c->prefixes[0]; i++) {
        const prefix_t *p = &c->prefixes[i];
        size_t l = p->prefix != NULL ? strlen(p->prefix) : 0;
        if (l > 0 && strncmp(name, p->prefix, l) == 0) {
            return find_in(p->table, name + l);
        }
    }
    return find_in(c->own, name);
}

bool proc_filter_ottl_path_indexable(ottl_path_id_t p)
{
    return p == P_SPAN_ATTRS || p == P_EVENT_ATTRS || p == P_DP_ATTRS || p == P_LOG_ATTRS ||
           p == P_LOG_BODY || p == P_RESOURCE_ATTRS || p == P_SCOPE_ATTRS;
}

/* ---- enums ------------------------------------------------------------------------------- */

typedef struct enum_def {
    const char *name;
    int64_t value;
} enum_def_t;

static const enum_def_t span_enums[] = {
    {"SPAN_KIND_UNSPECIFIED", 0}, {"SPAN_KIND_INTERNAL", 1},
    {"SPAN_KIND_SERVER", 2},      {"SPAN_KIND_CLIENT", 3},
    {"SPAN_KIND_PRODUCER", 4},    {"SPAN_KIND_CONSUMER", 5},
    {"STATUS_CODE_UNSET", 0},     {"STATUS_CODE_OK", 1},
    {"STATUS_CODE_ERROR", 2},     {NULL, 0},
};

static const enum_def_t metric_enums[] = {
    {"METRIC_DATA_TYPE_NONE", 0},
    {"METRIC_DATA_TYPE_GAUGE", 1},
    {"METRIC_DATA_TYPE_SUM", 2},
    {"METRIC_DATA_TYPE_HISTOGRAM", 3},
    {"METRIC_DATA_TYPE_EXPONENTIAL_HISTOGRAM", 4},
    {"METRIC_DATA_TYPE_SUMMARY", 5},
    {"AGGREGATION_TEMPORALITY_UNSPECIFIED", 0},
    {"AGGREGATION_TEMPORALITY_DELTA", 1},
    {"AGGREGATION_TEMPORALITY_CUMULATIVE", 2},
    {"FLAG_NONE", 0},
    {"FLAG_NO_RECORDED_VALUE", 1},
    {NULL, 0},
};

/* SEVERITY_NUMBER_<LEVEL>[2-4]: TRACE 1-4, DEBUG 5-8, INFO 9-12, WARN 13-16, ERROR 17-20,
 * FATAL 21-24, UNSPECIFIED 0. */
static bool severity_enum(const char *name, int64_t *value)
{
    static const char *const levels[] = {"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"};
    static const char prefix[] = "SEVERITY_NUMBER_";
    if (strncmp(name, prefix, sizeof prefix - 1) != 0) {
        return false;
    }
    name += sizeof prefix - 1;
    if (strcmp(name, "UNSPECIFIED") == 0) {
        *value = 0;
        return true;
    }
    for (int i = 0; i < 6; i++) {
        size_t l = strlen(levels[i]);
        if (strncmp(name, levels[i], l) != 0) {
            continue;
        }
        const char *rest = name + l;
        if (rest[0] == '\0') {
            *value = i * 4 + 1;
            return true;
        }
        if (rest[0] >= '2' && rest[0] <= '4' && rest[1] == '\0') {
            *value = i * 4 + 1 + (rest[0] - '1');
            return true;
        }
    }
    return false;
}

static bool find_enum(const enum_def_t *t, const char *name, int64_t *value)
{
    for (; t->name != NULL; t++) {
        if (strcmp(t->name, name) == 0) {
            *value = t->value;
            return true;
        }
    }
    return false;
}

bool proc_filter_ottl_enum_find(ottl_ctx_t ctx, const char *name, int64_t *value)
{
    switch (ctx) {
    case OTTL_CTX_SPAN:
    case OTTL_CTX_SPANEVENT:
        return find_enum(span_enums, name, value);
    case OTTL_CTX_METRIC:
    case OTTL_CTX_DATAPOINT:
        return find_enum(metric_enums, name, value);
    default:
        return severity_enum(name, value);
    }
}

/* ---- reading ----------------------------------------------------------------------------- */

static ov_t v_int(int64_t i)
{
    return (ov_t){.kind = OV_INT, .i = i};
}

static ov_t v_str(const char *s)
{
    s = s != NULL ? s : "";
    return (ov_t){.kind = OV_STR, .s = {.p = s, .n = strlen(s)}};
}

static ov_t v_map(om_keyvalue_t *const *kv, size_t n)
{
    return (ov_t){.kind = OV_MAP, .map = {.kv = kv, .n = n}};
}

/* An id of width bytes (16 or 8) from the data: shorter ids are zero-padded, longer ones cut,
 * as pdata reads them. */
static ov_t v_id(ProtobufCBinaryData b, size_t width)
{
    ov_t v = {.kind = width == 16 ? OV_TRACE_ID : OV_SPAN_ID};
    if (b.len > 0) { /* an empty field may have no data */
        memcpy(v.id, b.data, b.len < width ? b.len : width);
    }
    return v;
}

static int id_string(ProtobufCBinaryData b, size_t width, ottl_scratch_t *s, ov_t *out)
{
    ov_t id = v_id(b, width);
    const char *p = NULL;
    size_t n = 0;
    bool nil = false;
    int rc = proc_filter_ov_string_like(&id, s, &p, &n, &nil);
    *out = (ov_t){.kind = OV_STR, .s = {.p = p, .n = n}};
    return rc;
}

static int span_get(ottl_path_id_t p, const om_span_t *sp, ottl_scratch_t *s, ov_t *out)
{
    switch (p) {
    case P_SPAN_NAME:
        *out = v_str(sp->name);
        return 0;
    case P_SPAN_KIND:
        *out = v_int((int32_t)sp->kind); /* pdata's enums are int32 */
        return 0;
    case P_SPAN_STATUS_CODE:
        *out = v_int(sp->status != NULL ? (int32_t)sp->status->code : 0);
        return 0;
    case P_SPAN_STATUS_MESSAGE:
        *out = v_str(sp->status != NULL ? sp->status->message : "");
        return 0;
    case P_SPAN_ATTRS:
        *out = v_map(sp->attributes, sp->n_attributes);
        return 0;
    case P_SPAN_DROPPED_ATTRS:
        *out = v_int(sp->dropped_attributes_count);
        return 0;
    case P_SPAN_TRACE_ID:
        *out = v_id(sp->trace_id, 16);
        return 0;
    case P_SPAN_TRACE_ID_STR:
        return id_string(sp->trace_id, 16, s, out);
    case P_SPAN_ID:
        *out = v_id(sp->span_id, 8);
        return 0;
    case P_SPAN_ID_STR:
        return id_string(sp->span_id, 8, s, out);
    case P_SPAN_PARENT_ID:
        *out = v_id(sp->parent_span_id, 8);
        return 0;
    case P_SPAN_PARENT_ID_STR:
        return id_string(sp->parent_span_id, 8, s, out);
    case P_SPAN_TRACE_STATE:
        *out = v_str(sp->trace_state);
        return 0;
    case P_SPAN_START:
        *out = v_int((int64_t)sp->start_time_unix_nano);
        return 0;
    case P_SPAN_END:
        *out = v_int((int64_t)sp->end_time_unix_nano);
        return 0;
    default: /* P_SPAN_FLAGS */
        *out = v_int(sp->flags);
        return 0;
    }
}

static ov_t event_get(ottl_path_id_t p, const om_span_event_t *ev)
{
    switch (p) {
    case P_EVENT_NAME:
        return v_str(ev->name);
    case P_EVENT_TIME:
        return v_int((int64_t)ev->time_unix_nano);
    case P_EVENT_ATTRS:
        return v_map(ev->attributes, ev->n_attributes);
    default:
        return v_int(ev->dropped_attributes_count);
    }
}

static int64_t metric_type(const om_metric_t *m)
{
    switch (m->data_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
        return 1;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
        return 2;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
        return 3;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
        return 4;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
        return 5;
    default:
        return 0;
    }
}

static ov_t metric_get(ottl_path_id_t p, const om_metric_t *m)
{
    int64_t type = metric_type(m);
    switch (p) {
    case P_METRIC_NAME:
        return v_str(m->name);
    case P_METRIC_DESCRIPTION:
        return v_str(m->description);
    case P_METRIC_UNIT:
        return v_str(m->unit);
    case P_METRIC_TYPE:
        return v_int(type);
    case P_METRIC_TEMPORALITY:
        /* Only sums and histograms have one; the others read as nil. */
        if (type == 2 && m->sum != NULL) {
            return v_int(m->sum->aggregation_temporality);
        }
        if (type == 3 && m->histogram != NULL) {
            return v_int(m->histogram->aggregation_temporality);
        }
        if (type == 4 && m->exponential_histogram != NULL) {
            return v_int(m->exponential_histogram->aggregation_temporality);
        }
        return (ov_t){.kind = OV_NIL};
    default: /* P_METRIC_MONOTONIC: sums only */
        if (type == 2 && m->sum != NULL) {
            return (ov_t){.kind = OV_BOOL, .b = m->sum->is_monotonic != 0};
        }
        return (ov_t){.kind = OV_NIL};
    }
}

static ov_t number_get(ottl_path_id_t p, const om_number_dp_t *dp)
{
    bool is_double =
        dp->value_case == OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE;
    bool is_int =
        dp->value_case == OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT;
    switch (p) {
    case P_DP_ATTRS:
        return v_map(dp->attributes, dp->n_attributes);
    case P_DP_START:
        return v_int((int64_t)dp->start_time_unix_nano);
    case P_DP_TIME:
        return v_int((int64_t)dp->time_unix_nano);
    case P_DP_VALUE_DOUBLE:
        /* pdata's DoubleValue(): 0 when the point holds an int. */
        return (ov_t){.kind = OV_DOUBLE, .d = is_double ? dp->as_double : 0};
    case P_DP_VALUE_INT:
        return v_int(is_int ? dp->as_int : 0);
    case P_DP_FLAGS:
        return v_int(dp->flags);
    default: /* count and sum: not on number points */
        return (ov_t){.kind = OV_NIL};
    }
}

/* The fields every point type shares, read through its own struct. */
#define POINT_COMMON(p, dp, count_v, sum_v)                                                        \
    switch (p) {                                                                                   \
    case P_DP_ATTRS:                                                                               \
        return v_map((dp)->attributes, (dp)->n_attributes);                                        \
    case P_DP_START:                                                                               \
        return v_int((int64_t)(dp)->start_time_unix_nano);                                         \
    case P_DP_TIME:                                                                                \
        return v_int((int64_t)(dp)->time_unix_nano);                                               \
    case P_DP_FLAGS:                                                                               \
        return v_int((dp)->flags);                                                                 \
    case P_DP_COUNT:                                                                               \
        return v_int((int64_t)(count_v));                                                          \
    case P_DP_SUM:                                                                                 \
        return (ov_t){.kind = OV_DOUBLE, .d = (sum_v)};                                            \
    default:                                                                                       \
        return (ov_t){.kind = OV_NIL};                                                             \
    }

static ov_t point_get(ottl_path_id_t p, const om_item_t *it)
{
    const om_metric_t *m = it->metric;
    if (m == NULL || it->point == NULL) {
        return (ov_t){.kind = OV_NIL};
    }
    switch (m->data_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
        return number_get(p, it->number);
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
        POINT_COMMON(p, it->histogram, it->histogram->count, it->histogram->sum)
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
        POINT_COMMON(p, it->exp_histogram, it->exp_histogram->count, it->exp_histogram->sum)
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
        POINT_COMMON(p, it->summary, it->summary->count, it->summary->sum)
    default:
        return (ov_t){.kind = OV_NIL};
    }
}

static int log_get(ottl_path_id_t p, const om_log_record_t *lr, ottl_scratch_t *s, ov_t *out)
{
    switch (p) {
    case P_LOG_BODY:
        *out = proc_filter_ov_from_any(lr->body);
        return 0;
    case P_LOG_ATTRS:
        *out = v_map(lr->attributes, lr->n_attributes);
        return 0;
    case P_LOG_SEVERITY_NUMBER:
        *out = v_int((int32_t)lr->severity_number);
        return 0;
    case P_LOG_SEVERITY_TEXT:
        *out = v_str(lr->severity_text);
        return 0;
    case P_LOG_TIME:
        *out = v_int((int64_t)lr->time_unix_nano);
        return 0;
    case P_LOG_OBSERVED_TIME:
        *out = v_int((int64_t)lr->observed_time_unix_nano);
        return 0;
    case P_LOG_TRACE_ID:
        *out = v_id(lr->trace_id, 16);
        return 0;
    case P_LOG_TRACE_ID_STR:
        return id_string(lr->trace_id, 16, s, out);
    case P_LOG_SPAN_ID:
        *out = v_id(lr->span_id, 8);
        return 0;
    case P_LOG_SPAN_ID_STR:
        return id_string(lr->span_id, 8, s, out);
    case P_LOG_FLAGS:
        *out = v_int(lr->flags);
        return 0;
    case P_LOG_DROPPED_ATTRS:
        *out = v_int(lr->dropped_attributes_count);
        return 0;
    default: /* P_LOG_EVENT_NAME */
        *out = v_str(lr->event_name);
        return 0;
    }
}

static ov_t resource_scope_get(ottl_path_id_t p, const om_item_t *it)
{
    const om_resource_t *r = it->resource;
    const om_scope_t *sc = it->scope;
    switch (p) {
    case P_RESOURCE_ATTRS:
        return r != NULL ? v_map(r->attributes, r->n_attributes) : v_map(NULL, 0);
    case P_RESOURCE_DROPPED_ATTRS:
        return v_int(r != NULL ? r->dropped_attributes_count : 0);
    case P_SCOPE_NAME:
        return v_str(sc != NULL ? sc->name : "");
    case P_SCOPE_VERSION:
        return v_str(sc != NULL ? sc->version : "");
    case P_SCOPE_ATTRS:
        return sc != NULL ? v_map(sc->attributes, sc->n_attributes) : v_map(NULL, 0);
    default:
        return v_int(sc != NULL ? sc->dropped_attributes_count : 0);
    }
}

int proc_filter_ottl_path_get(ottl_path_id_t p, const om_item_t *it, ottl_scratch_t *s, ov_t *out)
{
    *out = (ov_t){.kind = OV_NIL};
    if (p >= P_SPAN_NAME && p <= P_SPAN_FLAGS) {
        return it->span != NULL ? span_get(p, it->span, s, out) : 0;
    }
    if (p >= P_EVENT_NAME && p <= P_EVENT_DROPPED_ATTRS) {
        *out = it->event != NULL ? event_get(p, it->event) : *out;
        return 0;
    }
    if (p >= P_METRIC_NAME && p <= P_METRIC_MONOTONIC) {
        *out = it->metric != NULL ? metric_get(p, it->metric) : *out;
        return 0;
    }
    if (p >= P_DP_ATTRS && p <= P_DP_SUM) {
        *out = point_get(p, it);
        return 0;
    }
    if (p >= P_LOG_BODY && p <= P_LOG_EVENT_NAME) {
        return it->log != NULL ? log_get(p, it->log, s, out) : 0;
    }
    *out = resource_scope_get(p, it);
    return 0;
}
