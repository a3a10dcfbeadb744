/* alarmstore_rows.c: which spans are runs, and the row each becomes.
 *
 * Pure functions on a decoded request (plain reads; any thread, see om.h's worker rules), so
 * that the exporter's database thread makes the rows and the loop only decodes.
 *
 * A span is a run, first rule that matches:
 *   1. ETL spans: the attribute etl.process_name (the original project's traced() helper;
 *      attribute names as issue 11 lists them, which existing DAGs and NiFi scripts emit).
 *      Failed when the status is ERROR or etl.error is set; error_message is etl.error, else
 *      the status message. Counts arrive as strings and are parsed.
 *   2. Airflow 3 task spans: named "task_run.<task_id>[...]" with airflow.dag_id,
 *      airflow.task_id, airflow.task_instance.state, airflow.task_instance.try_number
 *      (airflow-core/src/airflow/api_fastapi/execution_api/routes/task_instances.py,
 *      _emit_task_span: status OK for success, ERROR for every other terminal state, skipped
 *      included, so the state decides: success, failed and up_for_retry are runs; skipped,
 *      removed and the rest are not).
 *   3. Airflow 2.10 task-instance spans (airflow/jobs/scheduler_job_runner.py,
 *      _process_executor_events: Trace.start_span_from_taskinstance, named after the task id,
 *      attributes category="scheduler", task_id, dag_id, state, error (true when failed),
 *      start_date, end_date (str(datetime): "2024-08-01 10:00:00.123456+00:00", or "None"),
 *      hostname, try_number, operator, log_url...). The span starts when the task is queued,
 *      so start_date/end_date give the run's times when they carry an offset. Airflow leaves
 *      the status UNSET on failure: the state is what tells (failed and up_for_retry are
 *      failures).
 *   4. error_spans: a span with status ERROR whose resource's service.name is one of
 *      error_spans::services (group = the service, process = the span's name).
 * Other spans are not runs. A retried Airflow task is one span, and so one row, per try.
 *
 * Times: the span's own timestamps (UTC nanoseconds) give start, end and duration. The
 * helper's etl.start_time / etl.end_time strings replace them only when they carry a UTC
 * offset ("...Z", "...+09:00"): the original helper writes naive local times, which is how
 * its 9-hour skew happened.
 *
 * Text columns are cut to their column's size at a UTF-8 character boundary, and invalid
 * UTF-8 is replaced by U+FFFD, so that every backend takes every row; a wrongly typed
 * attribute is converted when it can be (an int where a string is expected is written in
 * decimal; a count sent as a string is parsed) and is NULL when it cannot. When the span has
 * an "exception" event (OpenTelemetry's record_exception), its exception.type, .message and
 * .stacktrace fill error_type, error_message and stack_trace where the attributes did not. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alarmstore.h"

#define STATUS_ERROR OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR

const as_col_def_t as_text_cols[AS_COL_N_TEXT] = {
    [AS_COL_HOST_NAME] = {"host_name", NULL, 255},
    [AS_COL_PLATFORM_TYPE] = {"platform_type", "etl.platform", 50},
    [AS_COL_GROUP_NAME] = {"group_name", "etl.group_name", 255},
    [AS_COL_PROCESS_NAME] = {"process_name", "etl.process_name", 255},
    [AS_COL_SCRIPT_NAME] = {"script_name", "etl.script_name", 255},
    [AS_COL_ERROR_MESSAGE] = {"error_message", "etl.error", 65535},
    [AS_COL_ERROR_TYPE] = {"error_type", "etl.error_type", 255},
    [AS_COL_STACK_TRACE] = {"stack_trace", "etl.stacktrace", 65535},
    [AS_COL_SOURCE_SYSTEM_TYPE] = {"source_system_type", "etl.source_system_type", 100},
    [AS_COL_SOURCE_SYSTEM_NAME] = {"source_system_name", "etl.source_system_name", 255},
    [AS_COL_SOURCE_ENDPOINT] = {"source_endpoint", "etl.source_endpoint", 1024},
    [AS_COL_SOURCE_OBJECT_NAME] = {"source_object_name", "etl.source_object_name", 512},
    [AS_COL_TARGET_SYSTEM_TYPE] = {"target_system_type", "etl.target_system_type", 100},
    [AS_COL_TARGET_SYSTEM_NAME] = {"target_system_name", "etl.target_system_name", 255},
    [AS_COL_TARGET_ENDPOINT] = {"target_endpoint", "etl.target_endpoint", 1024},
    [AS_COL_TARGET_OBJECT_NAME] = {"target_object_name", "etl.target_object_name", 512},
};

/* ------------------------------------------------------------------------------------------ */
/* Text                                                                                       */

/* A copy of s (len bytes) in the arena: valid UTF-8 (invalid bytes become U+FFFD), without
 * NUL bytes, of at most max bytes, cut before a character that would not fit. NULL when out
 * of memory. */
static char *text_copy(om_arena_t *a, const char *s, size_t len, size_t max)
{
    size_t cap = len < max ? len : max;
    /* Replacement characters may make the copy longer than the input: 3 bytes for 1. */
    size_t room = cap * 3 < max ? cap * 3 : max;
    char *out = om_arena_alloc(a, room + 1);
    if (out == NULL) {
        return NULL;
    }
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, w = 0;
    while (i < len) {
        size_t n = p[i] == 0 ? 0 : om_utf8_seq(p + i, len - i);
        const char *src = n > 0 ? s + i : "\xef\xbf\xbd";
        size_t out_n = n > 0 ? n : 3;
        if (w + out_n > room) {
            break;
        }
        memcpy(out + w, src, out_n);
        w += out_n;
        i += n > 0 ? n : 1;
    }
    out[w] = '\0';
    return out;
}

/* The attribute's value as text (strings as they are, other scalars as pcommon writes them);
 * NULL when absent, unset, or out of memory. */
static char *value_text(om_arena_t *a, const om_anyvalue_t *v, size_t max)
{
    if (v == NULL || v->value_case == OM_ANYVALUE_NONE) {
        return NULL;
    }
    if (v->value_case == OM_ANYVALUE_STRING) {
        const char *s = v->string_value != NULL ? v->string_value : "";
        return text_copy(a, s, strlen(s), max);
    }
    om_strbuf_t sb;
    om_strbuf_init(&sb, max * 4 + 16);
    om_anyvalue_to_string(v, &sb);
    char *out = NULL;
    if (!sb.failed || sb.len > 0) {
        out = text_copy(a, om_strbuf_str(&sb), sb.len, max);
    }
    om_strbuf_free(&sb);
    return out;
}

/* A count: an int, a whole double, or a string holding a decimal integer (spaces around it
 * allowed, "12.0" too). Anything else (garbage, bools, fractions, out of range): false. */
static bool value_int(const om_anyvalue_t *v, int64_t *out)
{
    if (v == NULL) {
        return false;
    }
    double d;
    switch (v->value_case) {
    case OM_ANYVALUE_INT:
        *out = v->int_value;
        return true;
    case OM_ANYVALUE_DOUBLE:
        d = v->double_value;
        break;
    case OM_ANYVALUE_STRING: {
        const char *s = v->string_value != NULL ? v->string_value : "";
        while (isspace((unsigned char)*s)) {
            s++;
        }
        if (*s == '\0') {
            return false;
        }
        char *end;
        errno = 0;
        long long ll = strtoll(s, &end, 10);
        const char *t = end;
        while (isspace((unsigned char)*t)) {
            t++;
        }
        if (errno == 0 && end != s && *t == '\0') {
            *out = ll;
            return true;
        }
        errno = 0;
        d = strtod(s, &end);
        t = end;
        while (isspace((unsigned char)*t)) {
            t++;
        }
        if (errno != 0 || end == s || *t != '\0') {
            return false;
        }
        break;
    }
    default:
        return false;
    }
    if (!isfinite(d) || d != floor(d) || d < -9.2e18 || d > 9.2e18) {
        return false;
    }
    *out = (int64_t)d;
    return true;
}

static const char *value_str(const om_anyvalue_t *v)
{
    return v != NULL && v->value_case == OM_ANYVALUE_STRING && v->string_value != NULL
               ? v->string_value
               : NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* Times                                                                                      */

static bool digits(const char *s, size_t n, int *out)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i])) {
            return false;
        }
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* The UTC offset at s ("Z", "+HH:MM", "+HHMM", "+HH") in seconds; false when none. */
static bool parse_offset(const char *s, size_t n, int64_t *off)
{
    if (n == 1 && (s[0] == 'Z' || s[0] == 'z')) {
        *off = 0;
        return true;
    }
    if (n < 3 || (s[0] != '+' && s[0] != '-')) {
        return false;
    }
    int hh, mm = 0;
    if (!digits(s + 1, 2, &hh)) {
        return false;
    }
    if (n == 6 && s[3] == ':') {
        if (!digits(s + 4, 2, &mm)) {
            return false;
        }
    } else if (n == 5) {
        if (!digits(s + 3, 2, &mm)) {
            return false;
        }
    } else if (n != 3) {
        return false;
    }
    if (hh > 23 || mm > 59) {
        return false;
    }
    *off = (s[0] == '-' ? -1 : 1) * (int64_t)(hh * 3600 + mm * 60);
    return true;
}

bool as_parse_time_utc(const char *s, size_t len, int64_t *ns)
{
    int y, mo, d, h, mi, sec;
    if (len < 20 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) || s[7] != '-' ||
        !digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
        !digits(s + 11, 2, &h) || s[13] != ':' || !digits(s + 14, 2, &mi) || s[16] != ':' ||
        !digits(s + 17, 2, &sec)) {
        return false;
    }
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) {
        return false;
    }
    size_t i = 19;
    int64_t frac = 0;
    if (i < len && (s[i] == '.' || s[i] == ',')) {
        i++;
        size_t nd = 0;
        while (i < len && isdigit((unsigned char)s[i])) {
            if (nd < 9) {
                frac = frac * 10 + (s[i] - '0');
            }
            nd++;
            i++;
        }
        if (nd == 0) {
            return false;
        }
        for (size_t k = nd; k < 9; k++) {
            frac *= 10;
        }
    }
    int64_t off;
    if (!parse_offset(s + i, len - i, &off)) {
        return false;
    }
    int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - off;
    if (secs >= INT64_MAX / OM_NS_PER_S || secs <= INT64_MIN / OM_NS_PER_S) {
        return false; /* past 2262 or before 1677: not a time in int64 nanoseconds */
    }
    *ns = secs * OM_NS_PER_S + frac;
    return true;
}

void as_format_time(int64_t ns, char out[32])
{
    int64_t secs = ns / OM_NS_PER_S, rem = ns % OM_NS_PER_S;
    if (rem < 0) {
        secs--;
        rem += OM_NS_PER_S;
    }
    time_t t = (time_t)secs;
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL) {
        snprintf(out, 32, "1970-01-01 00:00:00.000000");
        return;
    }
    /* Years past 9999 (garbage times) would not fit: they print as 9999's last second. */
    if (tm.tm_year > 9999 - 1900 || tm.tm_year < -1900) {
        snprintf(out, 32, "%s",
                 tm.tm_year < 0 ? "0000-01-01 00:00:00.000000" : "9999-12-31 23:59:59.999999");
        return;
    }
    char buf[96];
    snprintf(buf, sizeof buf, "%04d-%02d-%02d %02d:%02d:%02d.%06d", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(rem / 1000));
    memcpy(out, buf, 26);
    out[26] = '\0';
}

/* ------------------------------------------------------------------------------------------ */
/* Spans                                                                                      */

typedef enum { KIND_NONE, KIND_ETL, KIND_AIRFLOW3, KIND_AIRFLOW2, KIND_ERROR_SPAN } run_kind_t;

static const om_anyvalue_t *attr(om_keyvalue_t *const *kv, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++) {
        if (kv[i] != NULL && kv[i]->key != NULL && strcmp(kv[i]->key, key) == 0) {
            return kv[i]->value;
        }
    }
    return NULL;
}
#define SPAN_ATTR(s, k) attr((s)->attributes, (s)->n_attributes, (k))

static bool span_error(const om_span_t *s)
{
    return s->status != NULL && s->status->code == STATUS_ERROR;
}

static const char *service_name(const om_resource_t *r)
{
    return r != NULL ? value_str(attr(r->attributes, r->n_attributes, "service.name")) : NULL;
}

static bool state_is_run(const char *state)
{
    return state != NULL && (strcmp(state, "success") == 0 || strcmp(state, "failed") == 0 ||
                             strcmp(state, "up_for_retry") == 0);
}

static bool state_failed(const char *state)
{
    return state != NULL && strcmp(state, "success") != 0;
}

static run_kind_t classify(const om_span_t *s, const om_resource_t *res, const as_extract_opts_t *o)
{
    if (SPAN_ATTR(s, "etl.process_name") != NULL) {
        return KIND_ETL;
    }
    if (s->name != NULL && strncmp(s->name, "task_run.", 9) == 0 &&
        SPAN_ATTR(s, "airflow.task_id") != NULL &&
        state_is_run(value_str(SPAN_ATTR(s, "airflow.task_instance.state")))) {
        return KIND_AIRFLOW3;
    }
    if (SPAN_ATTR(s, "task_id") != NULL && SPAN_ATTR(s, "dag_id") != NULL &&
        state_is_run(value_str(SPAN_ATTR(s, "state")))) {
        return KIND_AIRFLOW2;
    }
    if (o != NULL && o->error_services != NULL && o->error_services->n > 0 && span_error(s)) {
        const char *svc = service_name(res);
        for (size_t i = 0; svc != NULL && i < o->error_services->n; i++) {
            if (strcmp(svc, o->error_services->items[i]) == 0) {
                return KIND_ERROR_SPAN;
            }
        }
    }
    return KIND_NONE;
}

static void hex(const ProtobufCBinaryData *b, char *out, size_t max_bytes)
{
    static const char digits_[] = "0123456789abcdef";
    size_t n = b->len < max_bytes ? b->len : max_bytes;
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits_[b->data[i] >> 4];
        out[2 * i + 1] = digits_[b->data[i] & 15];
    }
    out[2 * n] = '\0';
}

/* Sets a text column unless set; false when out of memory. */
static bool set_text(om_arena_t *a, as_row_t *r, as_text_col_t c, const om_anyvalue_t *v)
{
    if (r->text[c] != NULL || v == NULL || v->value_case == OM_ANYVALUE_NONE) {
        return true;
    }
    r->text[c] = value_text(a, v, as_text_cols[c].max_bytes);
    return r->text[c] != NULL;
}

static bool set_cstr(om_arena_t *a, as_row_t *r, as_text_col_t c, const char *s)
{
    if (r->text[c] != NULL || s == NULL) {
        return true;
    }
    r->text[c] = text_copy(a, s, strlen(s), as_text_cols[c].max_bytes);
    return r->text[c] != NULL;
}

/* A time attribute replaces the span's when it carries a UTC offset. */
static void time_attr(const om_anyvalue_t *v, bool *has, int64_t *ns)
{
    const char *s = value_str(v);
    int64_t t;
    if (s != NULL && as_parse_time_utc(s, strlen(s), &t)) {
        *has = true;
        *ns = t;
    }
}

static bool fill_etl(om_arena_t *a, const om_span_t *s, as_row_t *r)
{
    for (int c = 0; c < AS_COL_N_TEXT; c++) {
        if (as_text_cols[c].attr != NULL &&
            !set_text(a, r, (as_text_col_t)c, SPAN_ATTR(s, as_text_cols[c].attr))) {
            return false;
        }
    }
    r->has_source_count = value_int(SPAN_ATTR(s, "etl.source_count"), &r->source_count);
    r->has_target_count = value_int(SPAN_ATTR(s, "etl.target_count"), &r->target_count);
    const om_anyvalue_t *err = SPAN_ATTR(s, "etl.error");
    /* etl.error "set": present and not empty (the helper writes it only on failure). */
    const char *es = value_str(err);
    bool has_err = err != NULL && err->value_case != OM_ANYVALUE_NONE && (es == NULL || *es);
    if (es != NULL && *es == '\0') {
        r->text[AS_COL_ERROR_MESSAGE] = NULL;
    }
    r->failed = span_error(s) || has_err;
    time_attr(SPAN_ATTR(s, "etl.start_time"), &r->has_start, &r->start_ns);
    time_attr(SPAN_ATTR(s, "etl.end_time"), &r->has_end, &r->end_ns);
    return true;
}

static bool fill_airflow3(om_arena_t *a, const om_span_t *s, as_row_t *r)
{
    const char *state = value_str(SPAN_ATTR(s, "airflow.task_instance.state"));
    r->failed = state_failed(state);
    if (!set_cstr(a, r, AS_COL_PLATFORM_TYPE, "airflow") ||
        !set_text(a, r, AS_COL_GROUP_NAME, SPAN_ATTR(s, "airflow.dag_id")) ||
        !set_text(a, r, AS_COL_PROCESS_NAME, SPAN_ATTR(s, "airflow.task_id"))) {
        return false;
    }
    if (r->failed && (s->status == NULL || s->status->message == NULL || !*s->status->message)) {
        int64_t try_no = 0;
        char msg[96];
        if (value_int(SPAN_ATTR(s, "airflow.task_instance.try_number"), &try_no)) {
            snprintf(msg, sizeof msg, "Airflow task %s (try %lld)", state, (long long)try_no);
        } else {
            snprintf(msg, sizeof msg, "Airflow task %s", state);
        }
        return set_cstr(a, r, AS_COL_ERROR_MESSAGE, msg);
    }
    return true;
}

static bool fill_airflow2(om_arena_t *a, const om_span_t *s, as_row_t *r)
{
    const char *state = value_str(SPAN_ATTR(s, "state"));
    const om_anyvalue_t *e = SPAN_ATTR(s, "error");
    r->failed =
        state_failed(state) || (e != NULL && e->value_case == OM_ANYVALUE_BOOL && e->bool_value);
    if (!set_cstr(a, r, AS_COL_PLATFORM_TYPE, "airflow") ||
        !set_text(a, r, AS_COL_GROUP_NAME, SPAN_ATTR(s, "dag_id")) ||
        !set_text(a, r, AS_COL_PROCESS_NAME, SPAN_ATTR(s, "task_id")) ||
        !set_text(a, r, AS_COL_HOST_NAME, SPAN_ATTR(s, "hostname"))) {
        return false;
    }
    time_attr(SPAN_ATTR(s, "start_date"), &r->has_start, &r->start_ns);
    time_attr(SPAN_ATTR(s, "end_date"), &r->has_end, &r->end_ns);
    if (r->failed && (s->status == NULL || s->status->message == NULL || !*s->status->message)) {
        int64_t try_no = 0;
        char msg[96];
        if (value_int(SPAN_ATTR(s, "try_number"), &try_no)) {
            snprintf(msg, sizeof msg, "Airflow task %s (try %lld)", state, (long long)try_no);
        } else {
            snprintf(msg, sizeof msg, "Airflow task %s", state);
        }
        return set_cstr(a, r, AS_COL_ERROR_MESSAGE, msg);
    }
    return true;
}

static bool fill_error_span(om_arena_t *a, const om_span_t *s, const om_resource_t *res,
                            as_row_t *r)
{
    r->failed = true;
    return set_cstr(a, r, AS_COL_PLATFORM_TYPE, "service") &&
           set_cstr(a, r, AS_COL_GROUP_NAME, service_name(res)) &&
           set_cstr(a, r, AS_COL_PROCESS_NAME, s->name);
}

/* The first "exception" event's attributes fill what is still empty, for failed runs. */
static bool fill_exception(om_arena_t *a, const om_span_t *s, as_row_t *r)
{
    for (size_t i = 0; i < s->n_events; i++) {
        const Opentelemetry__Proto__Trace__V1__Span__Event *ev = s->events[i];
        if (ev == NULL || ev->name == NULL || strcmp(ev->name, "exception") != 0) {
            continue;
        }
        return set_text(a, r, AS_COL_ERROR_TYPE,
                        attr(ev->attributes, ev->n_attributes, "exception.type")) &&
               set_text(a, r, AS_COL_ERROR_MESSAGE,
                        attr(ev->attributes, ev->n_attributes, "exception.message")) &&
               set_text(a, r, AS_COL_STACK_TRACE,
                        attr(ev->attributes, ev->n_attributes, "exception.stacktrace"));
    }
    return true;
}

static bool fill_common(om_arena_t *a, const om_span_t *s, const om_resource_t *res, as_row_t *r)
{
    hex(&s->trace_id, r->trace_id, 16);
    hex(&s->span_id, r->span_id, 8);
    if (!r->has_start && s->start_time_unix_nano != 0 && s->start_time_unix_nano <= INT64_MAX) {
        r->has_start = true;
        r->start_ns = (int64_t)s->start_time_unix_nano;
    }
    if (!r->has_end && s->end_time_unix_nano != 0 && s->end_time_unix_nano <= INT64_MAX) {
        r->has_end = true;
        r->end_ns = (int64_t)s->end_time_unix_nano;
    }
    if (r->has_start && r->has_end && r->end_ns >= r->start_ns) {
        r->has_duration = true;
        r->duration_seconds = (double)(r->end_ns - r->start_ns) / 1e9;
    }
    if (res != NULL &&
        !set_text(a, r, AS_COL_HOST_NAME, attr(res->attributes, res->n_attributes, "host.name"))) {
        return false;
    }
    if (r->failed) {
        if (r->text[AS_COL_ERROR_MESSAGE] == NULL && s->status != NULL &&
            s->status->message != NULL && *s->status->message &&
            !set_cstr(a, r, AS_COL_ERROR_MESSAGE, s->status->message)) {
            return false;
        }
        return fill_exception(a, s, r);
    }
    return true;
}

static as_row_t *new_row(as_rows_t *out)
{
    if (out->n == out->cap) {
        size_t cap = out->cap ? out->cap * 2 : 16;
        as_row_t *v = om_realloc(out->v, cap * sizeof *v);
        if (v == NULL) {
            return NULL;
        }
        out->v = v;
        out->cap = cap;
    }
    as_row_t *r = &out->v[out->n];
    memset(r, 0, sizeof *r);
    return r;
}

static int add_span(const om_span_t *s, const om_resource_t *res, const as_extract_opts_t *o,
                    as_rows_t *out)
{
    run_kind_t k = classify(s, res, o);
    if (k == KIND_NONE) {
        return 0;
    }
    if (out->arena == NULL) {
        out->arena = om_arena_new(0);
        if (out->arena == NULL) {
            return OM_ENOMEM;
        }
    }
    as_row_t *r = new_row(out);
    if (r == NULL) {
        return OM_ENOMEM;
    }
    om_arena_t *a = out->arena;
    bool ok = k == KIND_ETL        ? fill_etl(a, s, r)
              : k == KIND_AIRFLOW3 ? fill_airflow3(a, s, r)
              : k == KIND_AIRFLOW2 ? fill_airflow2(a, s, r)
                                   : fill_error_span(a, s, res, r);
    if (!ok || !fill_common(a, s, res, r)) {
        return OM_ENOMEM;
    }
    out->n++;
    return 0;
}

int as_rows_extract(const om_traces_req_t *req, const as_extract_opts_t *o, as_rows_t *out)
{
    for (size_t i = 0; req != NULL && i < req->n_resource_spans; i++) {
        const om_resource_spans_t *rs = req->resource_spans[i];
        for (size_t j = 0; rs != NULL && j < rs->n_scope_spans; j++) {
            const om_scope_spans_t *ss = rs->scope_spans[j];
            for (size_t k = 0; ss != NULL && k < ss->n_spans; k++) {
                if (ss->spans[k] == NULL) {
                    continue;
                }
                int rc = add_span(ss->spans[k], rs->resource, o, out);
                if (rc != 0) {
                    return rc;
                }
            }
        }
    }
    return 0;
}

static bool text_eq(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

bool as_rows_equal(const as_rows_t *a, const as_rows_t *b)
{
    if (a->n != b->n) {
        return false;
    }
    for (size_t i = 0; i < a->n; i++) {
        const as_row_t *x = &a->v[i], *y = &b->v[i];
        for (int c = 0; c < AS_COL_N_TEXT; c++) {
            if (!text_eq(x->text[c], y->text[c])) {
                return false;
            }
        }
        if (x->failed != y->failed || x->has_source_count != y->has_source_count ||
            x->has_target_count != y->has_target_count || x->has_start != y->has_start ||
            x->has_end != y->has_end || x->has_duration != y->has_duration ||
            (x->has_source_count && x->source_count != y->source_count) ||
            (x->has_target_count && x->target_count != y->target_count) ||
            (x->has_start && x->start_ns != y->start_ns) ||
            (x->has_end && x->end_ns != y->end_ns) ||
            (x->has_duration && x->duration_seconds != y->duration_seconds) ||
            strcmp(x->trace_id, y->trace_id) != 0 || strcmp(x->span_id, y->span_id) != 0) {
            return false;
        }
    }
    return true;
}

bool as_req_maybe(const om_traces_req_t *req, const as_extract_opts_t *o)
{
    for (size_t i = 0; req != NULL && i < req->n_resource_spans; i++) {
        const om_resource_spans_t *rs = req->resource_spans[i];
        for (size_t j = 0; rs != NULL && j < rs->n_scope_spans; j++) {
            const om_scope_spans_t *ss = rs->scope_spans[j];
            for (size_t k = 0; ss != NULL && k < ss->n_spans; k++) {
                if (ss->spans[k] != NULL && classify(ss->spans[k], rs->resource, o) != KIND_NONE) {
                    return true;
                }
            }
        }
    }
    return false;
}

void as_rows_free(as_rows_t *r)
{
    if (r->arena != NULL) {
        om_arena_unref(r->arena);
    }
    om_free(r->v);
    memset(r, 0, sizeof *r);
}

/* ------------------------------------------------------------------------------------------ */
/* Rows from the wire bytes: only the spans that can be runs are decoded                      */

#define F_REQ_RESOURCE_SPANS 1
#define F_RS_RESOURCE 1
#define F_RS_SCOPE_SPANS 2
#define F_SS_SPANS 2
#define F_SPAN_STATUS 15
#define F_STATUS_CODE 3

const uint8_t *as_key_find(const uint8_t *p, size_t n, const char *key, size_t klen)
{
    const char *u = klen > 0 ? memchr(key, '_', klen) : NULL;
    if (u == NULL) {
        return memmem(p, n, key, klen);
    }
    if (n < klen) {
        return NULL;
    }
    size_t at = (size_t)(u - key);
    /* q walks the '_'s that can be the key's: from p + at to the last one a whole key fits
     * behind; the first that matches is the key's first place. */
    const uint8_t *q = p + at, *last = p + (n - klen) + at;
    while (q <= last && (q = memchr(q, '_', (size_t)(last - q) + 1)) != NULL) {
        if (memcmp(q - at, key, klen) == 0) {
            return q - at;
        }
        q++;
    }
    return NULL;
}

bool as_any_key(const uint8_t *p, size_t n, const char *const *keys, size_t n_keys)
{
    size_t at[AS_ANY_KEYS_MAX], len[AS_ANY_KEYS_MAX], lo = SIZE_MAX;
    bool all_underscored = n_keys <= AS_ANY_KEYS_MAX;
    for (size_t k = 0; k < n_keys && all_underscored; k++) {
        len[k] = strlen(keys[k]);
        const char *u = memchr(keys[k], '_', len[k]);
        all_underscored = u != NULL;
        at[k] = u != NULL ? (size_t)(u - keys[k]) : 0;
        lo = at[k] < lo ? at[k] : lo;
    }
    if (!all_underscored) {
        for (size_t k = 0; k < n_keys; k++) {
            if (as_key_find(p, n, keys[k], strlen(keys[k])) != NULL) {
                return true;
            }
        }
        return false;
    }
    if (n_keys == 0 || n <= lo) {
        return false; /* no key fits: each is longer than its '_' offset */
    }
    /* Every place of key k has the key's first '_' at at[k] from its start: the '_'s of the
     * bytes, from the first that can be one, are each tried as that of every key. */
    const uint8_t *end = p + n;
    for (const uint8_t *q = p + lo; q < end && (q = memchr(q, '_', (size_t)(end - q))) != NULL;
         q++) {
        size_t off = (size_t)(q - p);
        for (size_t k = 0; k < n_keys; k++) {
            if (off >= at[k] && n - (off - at[k]) >= len[k] &&
                memcmp(q - at[k], keys[k], len[k]) == 0) {
                return true;
            }
        }
    }
    return false;
}

static bool contains(const uint8_t *p, size_t n, const char *needle)
{
    return as_key_find(p, n, needle, strlen(needle)) != NULL;
}

/* Whether the span's Status says ERROR (read from its bytes). */
static bool wire_status_error(const uint8_t *p, size_t n)
{
    const uint8_t *pos = p, *end = p + n;
    om_pb_field_t f;
    bool err = false;
    while (om_pb_next(&pos, end, &f) == 1) {
        if (f.number != F_SPAN_STATUS || f.wire_type != OM_PB_LEN) {
            continue;
        }
        const uint8_t *sp = f.data, *se = f.data + f.len;
        om_pb_field_t g;
        while (om_pb_next(&sp, se, &g) == 1) {
            if (g.number == F_STATUS_CODE && g.wire_type == OM_PB_VARINT) {
                err = g.value == STATUS_ERROR; /* the last one wins, as protobuf-c reads it */
            }
        }
    }
    return err;
}

/* The next places of the candidates' keys in the request's bytes: spans are walked in
 * address order, so each key is searched for once over the whole request (one as_key_find
 * pass), not once per span. */
static const char *const wire_needles[] = {"etl.process_name", "task_id"};
#define N_NEEDLES (sizeof wire_needles / sizeof wire_needles[0])

typedef struct hits {
    const uint8_t *end;             /* of the request */
    const uint8_t *next[N_NEEDLES]; /* the next place of each key at or after the last span */
    bool searched[N_NEEDLES];
} hits_t;

/* Whether a key lies wholly inside [p, p + n). */
static bool hits_in(hits_t *h, const uint8_t *p, size_t n)
{
    bool in = false;
    for (size_t k = 0; k < N_NEEDLES; k++) {
        size_t klen = strlen(wire_needles[k]);
        if (!h->searched[k] || (h->next[k] != NULL && h->next[k] < p)) {
            h->next[k] = as_key_find(p, (size_t)(h->end - p), wire_needles[k], klen);
            h->searched[k] = true;
        }
        in = in || (h->next[k] != NULL && h->next[k] + klen <= p + n);
    }
    return in;
}

/* A span worth decoding: it carries a candidate's key, or it is an ERROR span of a resource
 * that names an error service. Never false for a span classify() would take. */
static bool wire_candidate(hits_t *h, const uint8_t *p, size_t n, bool error_resource)
{
    return hits_in(h, p, n) || (error_resource && wire_status_error(p, n));
}

static bool resource_names_service(const uint8_t *r, size_t n, const as_extract_opts_t *o)
{
    for (size_t i = 0; o != NULL && o->error_services != NULL && i < o->error_services->n; i++) {
        if (r != NULL && contains(r, n, o->error_services->items[i])) {
            return true;
        }
    }
    return false;
}

typedef struct wire_rs {
    const uint8_t *res;
    size_t res_len;
    bool has_res;
    om_arena_t *res_arena;  /* the decoded resource's, freed with the entry */
    om_resource_t *decoded; /* unpacked on the first candidate span */
} wire_rs_t;

/* Each candidate span is decoded into a scratch arena freed as soon as its row is made (the
 * row's text is copied into out's arena): what a batch of runs holds in memory while it is
 * stored is its rows, not its decoded spans, which would count against the intake's limit
 * (om_arena_live_bytes) and pause the receivers for nothing. */
static int wire_span(wire_rs_t *w, const uint8_t *p, size_t n, const as_extract_opts_t *o,
                     as_rows_t *out)
{
    if (w->has_res && w->decoded == NULL) {
        w->res_arena = w->res_arena != NULL ? w->res_arena : om_arena_new(0);
        if (w->res_arena == NULL) {
            return OM_ENOMEM;
        }
        w->decoded = opentelemetry__proto__resource__v1__resource__unpack(
            om_arena_pb_allocator(w->res_arena), w->res_len, w->res);
        if (w->decoded == NULL) {
            return OM_EINVAL;
        }
    }
    om_arena_t *scratch = om_arena_new(0);
    if (scratch == NULL) {
        return OM_ENOMEM;
    }
    om_span_t *s =
        opentelemetry__proto__trace__v1__span__unpack(om_arena_pb_allocator(scratch), n, p);
    int rc = s != NULL ? add_span(s, w->decoded, o, out) : OM_EINVAL;
    om_arena_unref(scratch);
    return rc;
}

static int wire_scope_spans(wire_rs_t *w, hits_t *h, bool error_res, const uint8_t *p, size_t n,
                            const as_extract_opts_t *o, as_rows_t *out)
{
    const uint8_t *pos = p, *end = p + n;
    om_pb_field_t f;
    int rc;
    while ((rc = om_pb_next(&pos, end, &f)) == 1) {
        if (f.number == F_SS_SPANS && f.wire_type == OM_PB_LEN &&
            wire_candidate(h, f.data, f.len, error_res)) {
            rc = wire_span(w, f.data, f.len, o, out);
            if (rc != 0) {
                return rc;
            }
        }
    }
    return rc;
}

static int wire_resource_spans(hits_t *h, const uint8_t *p, size_t n, const as_extract_opts_t *o,
                               as_rows_t *out)
{
    wire_rs_t w = {0};
    const uint8_t *pos = p, *end = p + n;
    om_pb_field_t f;
    int rc;
    /* The resource first (it may come after the scope entries on the wire). */
    while ((rc = om_pb_next(&pos, end, &f)) == 1) {
        if (f.number == F_RS_RESOURCE && f.wire_type == OM_PB_LEN) {
            w.res = f.data;
            w.res_len = f.len;
            w.has_res = true;
        }
    }
    if (rc < 0) {
        return rc;
    }
    bool error_res = resource_names_service(w.res, w.res_len, o);
    pos = p;
    while ((rc = om_pb_next(&pos, end, &f)) == 1) {
        if (f.number == F_RS_SCOPE_SPANS && f.wire_type == OM_PB_LEN) {
            rc = wire_scope_spans(&w, h, error_res, f.data, f.len, o, out);
            if (rc != 0) {
                break;
            }
        }
    }
    if (w.res_arena != NULL) {
        om_arena_unref(w.res_arena);
    }
    return rc;
}

int as_rows_extract_wire(const uint8_t *data, size_t len, const as_extract_opts_t *o,
                         as_rows_t *out)
{
    const uint8_t *pos = data, *end = data + len;
    hits_t h = {.end = end};
    om_pb_field_t f;
    int rc;
    while ((rc = om_pb_next(&pos, end, &f)) == 1) {
        if (f.number == F_REQ_RESOURCE_SPANS && f.wire_type == OM_PB_LEN) {
            rc = wire_resource_spans(&h, f.data, f.len, o, out);
            if (rc != 0) {
                return rc;
            }
        }
    }
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* The cheap test on the wire bytes                                                           */

bool as_wire_maybe(const uint8_t *data, size_t len, const as_extract_opts_t *o)
{
    /* Every ETL span has the key etl.process_name; every Airflow task span the key task_id
     * or airflow.task_id (which contains it). Keys are on the wire as they are. */
    if (as_any_key(data, len, wire_needles, N_NEEDLES)) {
        return true;
    }
    for (size_t i = 0; o != NULL && o->error_services != NULL && i < o->error_services->n; i++) {
        if (contains(data, len, o->error_services->items[i])) {
            return true;
        }
    }
    return false;
}
