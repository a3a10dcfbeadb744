/* alarmstore_query.c: the query API's logic, without sockets: the query string parser, the
 * checked parameters of a list request, the SELECT they make (filters bound as parameters,
 * never written into the SQL), and the answers (JSON of the rows, the HTML page). Runs on the
 * loop (parsing, cheap: the URL is at most 8 KiB) and on the API's reader thread (SQL and
 * rendering); nothing here is shared between threads.
 *
 * Pagination is a keyset on id: rows come newest (highest id) first, and the cursor is the
 * last id of the page, so that rows stored meanwhile (higher ids) neither shift nor repeat
 * the pages that follow. The cursor's text ("e" or "a", then the id in base 36) is opaque to
 * clients; the letter keeps a cursor of one list from being used on the other. */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alarmstore.h"

/* ------------------------------------------------------------------------------------------ */
/* UTF-8                                                                                      */

/* ------------------------------------------------------------------------------------------ */
/* Query strings                                                                              */

static int hexval(int c)
{
    return isdigit(c) ? c - '0' : isxdigit(c) ? (tolower(c) - 'a' + 10) : -1;
}

/* s[0..n) decoded into a new string; NULL with msg on a bad escape, NUL or bad UTF-8. */
static char *qs_decode(const char *s, size_t n, int *rc, char *msg, size_t msg_cap)
{
    char *out = om_malloc(n + 1);
    if (out == NULL) {
        *rc = OM_ENOMEM;
        snprintf(msg, msg_cap, "out of memory");
        return NULL;
    }
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+') {
            out[w++] = ' ';
        } else if (s[i] != '%') {
            out[w++] = s[i];
        } else {
            int hi = i + 2 < n ? hexval((unsigned char)s[i + 1]) : -1;
            int lo = i + 2 < n ? hexval((unsigned char)s[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                snprintf(msg, msg_cap, "bad %%-escape in the query string");
                goto bad;
            }
            out[w++] = (char)(hi << 4 | lo);
            i += 2;
        }
        if (w > 0 && out[w - 1] == '\0') {
            snprintf(msg, msg_cap, "a NUL (%%00) in the query string");
            goto bad;
        }
    }
    out[w] = '\0';
    if (!om_utf8_valid(out, w)) {
        snprintf(msg, msg_cap, "the query string is not valid UTF-8");
        goto bad;
    }
    return out;
bad:
    om_free(out);
    *rc = OM_EINVAL;
    return NULL;
}

void as_qs_free(as_qs_t *q)
{
    for (size_t i = 0; i < q->n; i++) {
        om_free(q->v[i].key);
        om_free(q->v[i].value);
    }
    om_free(q->v);
    memset(q, 0, sizeof *q);
}

int as_qs_parse(const char *qs, as_qs_t *out, char *msg, size_t msg_cap)
{
    memset(out, 0, sizeof *out);
    if (qs == NULL) {
        return 0;
    }
    for (const char *p = qs; *p != '\0';) {
        const char *amp = strchr(p, '&');
        size_t n = amp != NULL ? (size_t)(amp - p) : strlen(p);
        if (n > 0) {
            if (out->n == AS_QS_MAX_PAIRS) {
                snprintf(msg, msg_cap, "more than %d query parameters", AS_QS_MAX_PAIRS);
                return OM_EINVAL;
            }
            if (out->v == NULL) {
                out->v = om_calloc(AS_QS_MAX_PAIRS, sizeof *out->v);
                if (out->v == NULL) {
                    snprintf(msg, msg_cap, "out of memory");
                    return OM_ENOMEM;
                }
            }
            const char *eq = memchr(p, '=', n);
            size_t kn = eq != NULL ? (size_t)(eq - p) : n;
            int rc = 0;
            as_qs_pair_t *pair = &out->v[out->n++];
            pair->key = qs_decode(p, kn, &rc, msg, msg_cap);
            if (pair->key != NULL) {
                pair->value = eq != NULL ? qs_decode(eq + 1, n - kn - 1, &rc, msg, msg_cap)
                                         : qs_decode("", 0, &rc, msg, msg_cap);
            }
            if (rc != 0) {
                return rc;
            }
        }
        p += n;
        if (*p == '&') {
            p++;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* List requests                                                                              */

void as_query_free(as_query_t *q)
{
    om_free(q->status);
    om_free(q->platform);
    om_free(q->group);
    om_free(q->process);
    om_free(q->state);
    memset(q, 0, sizeof *q);
}

static char cursor_letter(as_qkind_t k)
{
    return k == AS_Q_EXECUTIONS ? 'e' : 'a';
}

static bool parse_cursor(as_qkind_t kind, const char *v, int64_t *id)
{
    if (v[0] != cursor_letter(kind) || v[1] == '\0' || strlen(v) > 14) {
        return false;
    }
    int64_t x = 0;
    for (const char *p = v + 1; *p != '\0'; p++) {
        int d = isdigit((unsigned char)*p) ? *p - '0'
                : (*p >= 'a' && *p <= 'z') ? *p - 'a' + 10
                                           : -1;
        if (d < 0 || x > (INT64_MAX - d) / 36) {
            return false; /* not a digit, or past any id: 13 digits reach 36^13 > 2^63 */
        }
        x = x * 36 + d;
    }
    *id = x;
    return x > 0;
}

static void format_cursor(as_qkind_t kind, int64_t id, char out[24])
{
    char tmp[24];
    size_t n = 0;
    for (uint64_t x = (uint64_t)id; x > 0 && n < sizeof tmp; x /= 36) {
        tmp[n++] = "0123456789abcdefghijklmnopqrstuvwxyz"[x % 36];
    }
    out[0] = cursor_letter(kind);
    for (size_t i = 0; i < n; i++) {
        out[1 + i] = tmp[n - 1 - i];
    }
    out[1 + n] = '\0';
}

/* RFC 3339: "2024-05-01T10:00:00Z", "...T10:00:00.5+09:00" (T or t; an offset required). */
static bool parse_rfc3339(const char *s, int64_t *ns)
{
    size_t n = strlen(s);
    if (n < 20 || (s[10] != 'T' && s[10] != 't')) {
        return false;
    }
    char buf[64];
    if (n >= sizeof buf) {
        return false;
    }
    memcpy(buf, s, n + 1);
    buf[10] = 'T';
    if (buf[n - 1] == 'z') {
        buf[n - 1] = 'Z';
    }
    return as_parse_time_utc(buf, n, ns);
}

typedef struct qkey {
    const char *name;
    size_t offset;  /* of the char * in as_query_t; 0: handled apart */
    unsigned kinds; /* 1 << as_qkind_t */
    size_t max_len;
} qkey_t;

#define K_EXEC (1u << AS_Q_EXECUTIONS)
#define K_ALARM (1u << AS_Q_ALARMS)
static const qkey_t qkeys[] = {
    {"status", offsetof(as_query_t, status), K_EXEC, 10},
    {"platform", offsetof(as_query_t, platform), K_EXEC | K_ALARM, 50},
    {"group", offsetof(as_query_t, group), K_EXEC | K_ALARM, 255},
    {"process", offsetof(as_query_t, process), K_EXEC | K_ALARM, 255},
    {"state", offsetof(as_query_t, state), K_ALARM, 16},
    {"since", 0, K_EXEC | K_ALARM, 0},
    {"until", 0, K_EXEC | K_ALARM, 0},
    {"limit", 0, K_EXEC | K_ALARM, 0},
    {"cursor", 0, K_EXEC | K_ALARM, 0},
};

static int query_param(as_query_t *q, const qkey_t *k, const char *v, char *msg, size_t msg_cap)
{
    if (k->offset != 0) {
        if (v[0] == '\0' || strlen(v) > k->max_len) {
            snprintf(msg, msg_cap, "%s must be 1 to %zu bytes", k->name, k->max_len);
            return OM_EINVAL;
        }
        if (strcmp(k->name, "status") == 0 && strcmp(v, "SUCCESS") != 0 &&
            strcmp(v, "FAILED") != 0) {
            snprintf(msg, msg_cap, "status must be SUCCESS or FAILED");
            return OM_EINVAL;
        }
        char **slot = (char **)((char *)q + k->offset);
        *slot = om_strdup(v);
        if (*slot == NULL) {
            snprintf(msg, msg_cap, "out of memory");
            return OM_ENOMEM;
        }
        return 0;
    }
    if (strcmp(k->name, "since") == 0 || strcmp(k->name, "until") == 0) {
        bool since = k->name[0] == 's';
        if (!parse_rfc3339(v, since ? &q->since_ns : &q->until_ns)) {
            snprintf(msg, msg_cap,
                     "%s must be an RFC 3339 time with an offset, e.g. 2024-05-01T10:00:00Z "
                     "(a '+' in a query string is a space: write it %%2B)",
                     k->name);
            return OM_EINVAL;
        }
        *(since ? &q->has_since : &q->has_until) = true;
        return 0;
    }
    if (strcmp(k->name, "limit") == 0) {
        char *end;
        long l = strtol(v, &end, 10);
        if (v[0] == '\0' || *end != '\0' || !isdigit((unsigned char)v[0]) || l < 1 ||
            l > AS_Q_MAX_LIMIT) {
            snprintf(msg, msg_cap, "limit must be an integer from 1 to %d", AS_Q_MAX_LIMIT);
            return OM_EINVAL;
        }
        q->limit = (int)l;
        return 0;
    }
    if (!parse_cursor(q->kind, v, &q->after_id)) {
        snprintf(msg, msg_cap, "bad cursor (use next_cursor of a previous answer as it is)");
        return OM_EINVAL;
    }
    return 0;
}

int as_query_parse(as_qkind_t kind, const char *qs, as_query_t *q, char *msg, size_t msg_cap)
{
    memset(q, 0, sizeof *q);
    q->kind = kind;
    q->limit = AS_Q_DEFAULT_LIMIT;
    as_qs_t pairs;
    int rc = as_qs_parse(qs, &pairs, msg, msg_cap);
    unsigned seen = 0;
    for (size_t i = 0; rc == 0 && i < pairs.n; i++) {
        const char *key = pairs.v[i].key;
        size_t k = 0;
        while (k < sizeof qkeys / sizeof qkeys[0] &&
               !(strcmp(qkeys[k].name, key) == 0 && (qkeys[k].kinds & (1u << kind)))) {
            k++;
        }
        if (k == sizeof qkeys / sizeof qkeys[0]) {
            om_strbuf_t sb;
            om_strbuf_init(&sb, 0);
            /* At most 32 bytes of it, cut on a character (the key is valid UTF-8): escaped
             * (6 bytes a control character at worst) it fits a 256-byte message whole, so
             * the message is never cut inside a character or an escape. */
            size_t n = strlen(key) > 32 ? 32 : strlen(key);
            while (n > 0 && n < strlen(key) && ((unsigned char)key[n] & 0xC0) == 0x80) {
                n--;
            }
            as_json_str(&sb, key, n);
            snprintf(msg, msg_cap, "unknown parameter %s", sb.failed ? "" : om_strbuf_str(&sb));
            om_strbuf_free(&sb);
            rc = OM_EINVAL;
        } else if (seen & (1u << k)) {
            snprintf(msg, msg_cap, "%s given twice", qkeys[k].name);
            rc = OM_EINVAL;
        } else {
            seen |= 1u << k;
            rc = query_param(q, &qkeys[k], pairs.v[i].value, msg, msg_cap);
        }
    }
    as_qs_free(&pairs);
    if (rc == 0 && q->has_since && q->has_until && q->until_ns <= q->since_ns) {
        snprintf(msg, msg_cap, "until must be after since");
        rc = OM_EINVAL;
    }
    if (rc != 0) {
        as_query_free(q);
    }
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* SQL                                                                                        */

static const as_qcol_t exec_cols[] = {
    {"id", AS_CK_INT},
    {"host_name", AS_CK_TEXT},
    {"platform_type", AS_CK_TEXT},
    {"group_name", AS_CK_TEXT},
    {"process_name", AS_CK_TEXT},
    {"script_name", AS_CK_TEXT},
    {"success", AS_CK_TEXT},
    {"error_message", AS_CK_TEXT},
    {"error_type", AS_CK_TEXT},
    {"stack_trace", AS_CK_TEXT},
    {"source_system_type", AS_CK_TEXT},
    {"source_system_name", AS_CK_TEXT},
    {"source_endpoint", AS_CK_TEXT},
    {"source_object_name", AS_CK_TEXT},
    {"source_count", AS_CK_INT},
    {"target_system_type", AS_CK_TEXT},
    {"target_system_name", AS_CK_TEXT},
    {"target_endpoint", AS_CK_TEXT},
    {"target_object_name", AS_CK_TEXT},
    {"target_count", AS_CK_INT},
    {"start_time", AS_CK_TIME},
    {"end_time", AS_CK_TIME},
    {"duration_seconds", AS_CK_REAL},
    {"created_at", AS_CK_TIME},
    {"trace_id", AS_CK_TEXT},
    {"span_id", AS_CK_TEXT},
};

/* The columns every alarm has (a later migration may add more; these keep their names). */
static const as_qcol_t alarm_cols[] = {
    {"id", AS_CK_INT},
    {"process_execution_id", AS_CK_INT},
    {"platform_type", AS_CK_TEXT},
    {"group_name", AS_CK_TEXT},
    {"process_name", AS_CK_TEXT},
    {"end_time", AS_CK_TIME},
    {"state", AS_CK_TEXT},
    {"notify_attempts", AS_CK_INT},
    {"next_attempt_at", AS_CK_TIME},
    {"last_error", AS_CK_TEXT},
    {"notified_at", AS_CK_TIME},
    {"created_at", AS_CK_TIME},
    {"notifiers_done", AS_CK_INT}, /* schema version 2: the notifiers that took it (bits) */
    {"digested_at", AS_CK_TIME},
};

const as_qcol_t *as_query_cols(as_qkind_t kind, size_t *n)
{
    if (kind == AS_Q_EXECUTIONS) {
        *n = sizeof exec_cols / sizeof exec_cols[0];
        return exec_cols;
    }
    *n = sizeof alarm_cols / sizeof alarm_cols[0];
    return alarm_cols;
}

void as_sql_free(as_sql_t *s)
{
    om_strbuf_free(&s->sql);
    memset(s, 0, sizeof *s);
}

static void where_text(as_sql_t *s, const char *col, const char *v)
{
    if (v != NULL) {
        om_strbuf_printf(&s->sql, "%s %s = ?", s->n_binds ? " AND" : " WHERE", col);
        s->binds[s->n_binds++] = (as_bind_t){.text = v};
    }
}

static void where_time(as_sql_t *s, const char *op, bool has, int64_t ns, char *buf)
{
    if (has) {
        as_format_time(ns, buf);
        om_strbuf_printf(&s->sql, "%s end_time %s ?", s->n_binds ? " AND" : " WHERE", op);
        s->binds[s->n_binds++] = (as_bind_t){.text = buf};
    }
}

int as_query_sql(const as_query_t *q, as_sql_t *out)
{
    memset(out, 0, sizeof *out);
    om_strbuf_init(&out->sql, 0);
    size_t n;
    const as_qcol_t *cols = as_query_cols(q->kind, &n);
    om_strbuf_puts(&out->sql, "SELECT ");
    for (size_t i = 0; i < n; i++) {
        om_strbuf_printf(&out->sql, "%s%s", i ? ", " : "", cols[i].name);
    }
    om_strbuf_puts(&out->sql,
                   q->kind == AS_Q_EXECUTIONS ? " FROM process_executions" : " FROM alarms");
    where_text(out, "success", q->status);
    where_text(out, "platform_type", q->platform);
    where_text(out, "group_name", q->group);
    where_text(out, "process_name", q->process);
    where_text(out, "state", q->state);
    where_time(out, ">=", q->has_since, q->since_ns, out->since);
    where_time(out, "<", q->has_until, q->until_ns, out->until);
    if (q->after_id > 0) {
        om_strbuf_printf(&out->sql, "%s id < ?", out->n_binds ? " AND" : " WHERE");
        out->binds[out->n_binds++] = (as_bind_t){.i = q->after_id};
    }
    om_strbuf_puts(&out->sql, " ORDER BY id DESC LIMIT ?");
    out->binds[out->n_binds++] = (as_bind_t){.i = q->limit + 1};
    return out->sql.failed ? OM_ENOMEM : 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Writing values                                                                             */

void as_json_str(om_strbuf_t *out, const char *s, size_t len)
{
    om_strbuf_putc(out, '"');
    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)s[i];
        size_t k = om_utf8_seq(s + i, len - i);
        if (k == 0) {
            om_strbuf_puts(out, "\\ufffd");
            i++;
            continue;
        }
        if (c == '"' || c == '\\') {
            om_strbuf_putc(out, '\\');
            om_strbuf_putc(out, (char)c);
        } else if (c == '\n') {
            om_strbuf_puts(out, "\\n");
        } else if (c == '\r') {
            om_strbuf_puts(out, "\\r");
        } else if (c == '\t') {
            om_strbuf_puts(out, "\\t");
        } else if (c < 0x20 || c == 0x7f) {
            om_strbuf_printf(out, "\\u%04x", c);
        } else {
            om_strbuf_append(out, s + i, k);
        }
        i += k;
    }
    om_strbuf_putc(out, '"');
}

void as_trace_url(om_strbuf_t *out, const char *tmpl, const char *trace_id)
{
    static const char key[] = "{trace_id}";
    for (const char *p = tmpl; *p != '\0';) {
        const char *at = strstr(p, key);
        size_t n = at != NULL ? (size_t)(at - p) : strlen(p);
        om_strbuf_append(out, p, n);
        p += n;
        if (at == NULL) {
            break;
        }
        for (const char *c = trace_id; *c != '\0'; c++) {
            if (isalnum((unsigned char)*c) || strchr("-._~", *c) != NULL) {
                om_strbuf_putc(out, *c);
            } else {
                om_strbuf_printf(out, "%%%02X", (unsigned char)*c);
            }
        }
        p += sizeof key - 1;
    }
}

/* "YYYY-MM-DD HH:MM:SS[.f]" as RFC 3339 UTC "YYYY-MM-DDTHH:MM:SS[.f]Z"; other text as it is. */
static void json_time(om_strbuf_t *out, const char *v, size_t len)
{
    if (len >= 19 && len < 40 && (v[10] == ' ' || v[10] == 'T') && v[4] == '-' && v[13] == ':') {
        char buf[48];
        memcpy(buf, v, len);
        buf[10] = 'T';
        buf[len] = 'Z';
        as_json_str(out, buf, len + 1);
    } else {
        as_json_str(out, v, len);
    }
}

/* A JSON number (RFC 8259's grammar), so that a value is never written as one when it is
 * not: SQLite keeps what it is given. */
static bool json_number(const char *v, size_t len)
{
    size_t i = 0;
    if (i < len && v[i] == '-') {
        i++;
    }
    if (i == len || !isdigit((unsigned char)v[i])) {
        return false;
    }
    if (v[i] == '0') {
        i++;
    } else {
        while (i < len && isdigit((unsigned char)v[i])) {
            i++;
        }
    }
    if (i < len && v[i] == '.') {
        i++;
        if (i == len || !isdigit((unsigned char)v[i])) {
            return false;
        }
        while (i < len && isdigit((unsigned char)v[i])) {
            i++;
        }
    }
    if (i < len && (v[i] == 'e' || v[i] == 'E')) {
        i++;
        if (i < len && (v[i] == '+' || v[i] == '-')) {
            i++;
        }
        if (i == len || !isdigit((unsigned char)v[i])) {
            return false;
        }
        while (i < len && isdigit((unsigned char)v[i])) {
            i++;
        }
    }
    return i == len;
}

static void json_value(om_strbuf_t *out, as_col_kind_t kind, const char *v, size_t len)
{
    if (v == NULL) {
        om_strbuf_puts(out, "null");
    } else if (kind == AS_CK_TIME) {
        json_time(out, v, len);
    } else if (kind == AS_CK_INT || kind == AS_CK_REAL) {
        if (json_number(v, len) && (kind == AS_CK_REAL || memchr(v, '.', len) == NULL)) {
            om_strbuf_append(out, v, len);
        } else {
            om_strbuf_puts(out, "null");
        }
    } else {
        as_json_str(out, v, len);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* The JSON answer                                                                            */

typedef struct json_ctx {
    const as_query_t *q;
    const as_qcol_t *cols;
    size_t n_cols;
    om_strbuf_t *out;
    int rows;
    int64_t last_id;
} json_ctx_t;

static int json_row(void *arg, const char *const *vals, const size_t *lens, size_t n)
{
    json_ctx_t *c = arg;
    if (++c->rows > c->q->limit) {
        return 0; /* the extra row: only says that a next page exists */
    }
    om_strbuf_puts(c->out, c->rows > 1 ? ",{" : "{");
    for (size_t i = 0; i < n && i < c->n_cols; i++) {
        om_strbuf_printf(c->out, "%s\"%s\":", i ? "," : "", c->cols[i].name);
        json_value(c->out, c->cols[i].kind, vals[i], lens[i]);
    }
    om_strbuf_putc(c->out, '}');
    c->last_id = vals[0] != NULL ? strtoll(vals[0], NULL, 10) : 0;
    return c->out->failed ? OM_ENOMEM : 0;
}

int as_query_json(const as_reader_backend_t *be, as_reader_t *r, const as_query_t *q,
                  om_strbuf_t *out, om_err_t *err)
{
    as_sql_t s;
    int rc = as_query_sql(q, &s);
    json_ctx_t c = {.q = q, .out = out};
    c.cols = as_query_cols(q->kind, &c.n_cols);
    om_strbuf_puts(out, "{\"items\":[");
    rc = rc ? rc : be->query(r, &s, json_row, &c, err);
    as_sql_free(&s);
    if (rc != 0) {
        return rc;
    }
    om_strbuf_puts(out, "],\"next_cursor\":");
    if (c.rows > q->limit && c.last_id > 0) {
        char cur[24];
        format_cursor(q->kind, c.last_id, cur);
        om_strbuf_printf(out, "\"%s\"}\n", cur);
    } else {
        om_strbuf_puts(out, "null}\n");
    }
    return out->failed ? OM_ENOMEM : 0;
}

/* ------------------------------------------------------------------------------------------ */
/* The page                                                                                   */

#define PAGE_RUNS 100
#define PAGE_ALARMS 100
#define PAGE_TEXT_MAX 300 /* bytes of an error message shown */

/* The latest runs, failures first. The inner SELECT picks the latest by id (the index), the
 * outer orders them; a derived table needs its alias in MariaDB. */
static const char page_runs_sql[] =
    "SELECT id, end_time, success, platform_type, group_name, process_name, host_name,"
    " duration_seconds, error_type, error_message, trace_id FROM"
    " (SELECT id, end_time, success, platform_type, group_name, process_name, host_name,"
    " duration_seconds, error_type, error_message, trace_id FROM process_executions"
    " ORDER BY id DESC LIMIT ?) latest"
    " ORDER BY CASE WHEN success = 'FAILED' THEN 0 ELSE 1 END, id DESC";
enum {
    PR_ID,
    PR_END,
    PR_SUCCESS,
    PR_PLATFORM,
    PR_GROUP,
    PR_PROCESS,
    PR_HOST,
    PR_DURATION,
    PR_ERROR_TYPE,
    PR_ERROR,
    PR_TRACE
};

/* The latest alarms, those nobody has been told of yet (open: waiting for a send, a window's
 * end, a retry or the digest; failed: every notifier refused) before the notified ones: with
 * notifications on, an alarm is notified within seconds, so "state = 'open'" alone would show
 * an empty table most of the time. */
static const char page_alarms_sql[] =
    "SELECT id, end_time, platform_type, group_name, process_name, state, notify_attempts,"
    " error_message, trace_id FROM (SELECT a.id, a.end_time, a.platform_type, a.group_name,"
    " a.process_name, a.state, a.notify_attempts, p.error_message, p.trace_id FROM alarms a"
    " JOIN process_executions p ON p.id = a.process_execution_id"
    " ORDER BY a.id DESC LIMIT ?) latest"
    " ORDER BY CASE WHEN state = 'notified' THEN 1 ELSE 0 END, id DESC";
enum {
    PA_ID,
    PA_END,
    PA_PLATFORM,
    PA_GROUP,
    PA_PROCESS,
    PA_STATE,
    PA_ATTEMPTS,
    PA_ERROR,
    PA_TRACE
};

typedef struct page_ctx {
    om_strbuf_t *out;
    const char *tmpl;
    int rows;
} page_ctx_t;

/* A cell (of class cls, or none): the value HTML-escaped (at most max bytes of it, cut on a
 * character), or "-". */
static void cell_of(om_strbuf_t *out, const char *cls, const char *v, size_t len, size_t max)
{
    om_strbuf_puts(out, cls != NULL ? "<td class=\"" : "<td>");
    if (cls != NULL) {
        om_strbuf_puts(out, cls);
        om_strbuf_puts(out, "\">");
    }
    if (v == NULL) {
        om_strbuf_puts(out, "-");
    } else {
        bool cut = len > max;
        if (cut) {
            len = max;
            while (len > 0 && ((unsigned char)v[len] & 0xc0) == 0x80) {
                len--;
            }
        }
        om_strbuf_html(out, v, len);
        if (cut) {
            om_strbuf_puts(out, "\xe2\x80\xa6");
        }
    }
    om_strbuf_puts(out, "</td>");
}

static void cell(om_strbuf_t *out, const char *v, size_t len, size_t max)
{
    cell_of(out, NULL, v, len, max);
}

static void time_cell(om_strbuf_t *out, const char *v, size_t len)
{
    /* The stored text is UTC: say so, to the second. */
    if (v != NULL && len >= 19) {
        char buf[24];
        memcpy(buf, v, 19);
        buf[10] = ' ';
        memcpy(buf + 19, " UTC", 5);
        cell(out, buf, strlen(buf), 64);
    } else {
        cell(out, v, len, 64);
    }
}

/* A duration to the millisecond (the JSON keeps the stored value). */
static void seconds_cell(om_strbuf_t *out, const char *v, size_t len)
{
    char buf[40];
    if (v != NULL && len < sizeof buf && json_number(v, len)) {
        snprintf(buf, sizeof buf, "%.3f", strtod(v, NULL));
        cell(out, buf, strlen(buf), 40);
    } else {
        cell(out, v, len, 32);
    }
}

static void trace_cell(const page_ctx_t *c, const char *trace, size_t len)
{
    om_strbuf_t *out = c->out;
    if (trace == NULL || c->tmpl == NULL || c->tmpl[0] == '\0') {
        cell(out, trace, len, 64);
        return;
    }
    om_strbuf_t url;
    om_strbuf_init(&url, 0);
    char id[64];
    snprintf(id, sizeof id, "%.*s", (int)(len < 63 ? len : 63), trace);
    as_trace_url(&url, c->tmpl, id);
    om_strbuf_puts(out, "<td><a class=\"trace\" href=\"");
    om_strbuf_html(out, url.failed ? "" : om_strbuf_str(&url), url.failed ? 0 : url.len);
    om_strbuf_puts(out, "\">");
    om_strbuf_html(out, id, strlen(id));
    om_strbuf_puts(out, "</a></td>");
    om_strbuf_free(&url);
}

static int page_run(void *arg, const char *const *v, const size_t *l, size_t n)
{
    page_ctx_t *c = arg;
    if (n <= PR_TRACE) {
        return OM_EIO;
    }
    c->rows++;
    bool failed = v[PR_SUCCESS] != NULL && strcmp(v[PR_SUCCESS], "FAILED") == 0;
    om_strbuf_printf(c->out, "<tr class=\"%s\">", failed ? "failed" : "ok");
    cell(c->out, v[PR_ID], l[PR_ID], 32);
    time_cell(c->out, v[PR_END], l[PR_END]);
    cell(c->out, v[PR_SUCCESS], l[PR_SUCCESS], 16);
    cell(c->out, v[PR_PLATFORM], l[PR_PLATFORM], 64);
    cell(c->out, v[PR_GROUP], l[PR_GROUP], 128);
    cell(c->out, v[PR_PROCESS], l[PR_PROCESS], 128);
    cell(c->out, v[PR_HOST], l[PR_HOST], 128);
    seconds_cell(c->out, v[PR_DURATION], l[PR_DURATION]);
    cell(c->out, v[PR_ERROR_TYPE], l[PR_ERROR_TYPE], 128);
    cell_of(c->out, "msg", v[PR_ERROR], l[PR_ERROR], PAGE_TEXT_MAX);
    trace_cell(c, v[PR_TRACE], l[PR_TRACE]);
    om_strbuf_puts(c->out, "</tr>\n");
    return c->out->failed ? OM_ENOMEM : 0;
}

static int page_alarm(void *arg, const char *const *v, const size_t *l, size_t n)
{
    page_ctx_t *c = arg;
    if (n <= PA_TRACE) {
        return OM_EIO;
    }
    c->rows++;
    om_strbuf_puts(c->out, "<tr class=\"failed\">");
    cell(c->out, v[PA_ID], l[PA_ID], 32);
    time_cell(c->out, v[PA_END], l[PA_END]);
    cell(c->out, v[PA_PLATFORM], l[PA_PLATFORM], 64);
    cell(c->out, v[PA_GROUP], l[PA_GROUP], 128);
    cell(c->out, v[PA_PROCESS], l[PA_PROCESS], 128);
    cell(c->out, v[PA_STATE], l[PA_STATE], 16);
    cell(c->out, v[PA_ATTEMPTS], l[PA_ATTEMPTS], 16);
    cell_of(c->out, "msg", v[PA_ERROR], l[PA_ERROR], PAGE_TEXT_MAX);
    trace_cell(c, v[PA_TRACE], l[PA_TRACE]);
    om_strbuf_puts(c->out, "</tr>\n");
    return c->out->failed ? OM_ENOMEM : 0;
}

static const char page_head[] =
    "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
    "<title>OtelMon: ETL runs and alarms</title>"
    "<style>body{font-family:sans-serif;margin:1.5em;color:#222}"
    "table{border-collapse:collapse;margin-bottom:2em;font-size:14px}"
    "th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}"
    "th{background:#eee}td{white-space:nowrap}td.msg{white-space:normal;max-width:40em}"
    "tr.failed td{background:#fde2e2}tr.ok td{background:#e6f4ea}"
    "h1{font-size:22px}h2{font-size:18px}</style></head><body>\n"
    "<h1>OtelMon: ETL runs and alarms</h1>\n"
    "<p>Times are UTC. JSON: <a href=\"/api/v1/executions\">/api/v1/executions</a>, "
    "<a href=\"/api/v1/alarms\">/api/v1/alarms</a>.</p>\n";

int as_query_page(const as_reader_backend_t *be, as_reader_t *r, const char *trace_url_template,
                  om_strbuf_t *out, om_err_t *err)
{
    page_ctx_t c = {.out = out, .tmpl = trace_url_template};
    as_sql_t s = {0};
    om_strbuf_init(&s.sql, 0);
    om_strbuf_puts(out, page_head);
    om_strbuf_puts(out,
                   "<h2>Latest alarms (not notified first)</h2>\n<table id=\"alarms\"><tr>"
                   "<th>id</th><th>end</th><th>platform</th><th>group</th><th>process</th>"
                   "<th>state</th><th>notify attempts</th><th>error</th><th>trace</th></tr>\n");
    om_strbuf_puts(&s.sql, page_alarms_sql);
    s.binds[s.n_binds++] = (as_bind_t){.i = PAGE_ALARMS};
    int rc = s.sql.failed ? OM_ENOMEM : be->query(r, &s, page_alarm, &c, err);
    om_strbuf_printf(out, "</table>\n%s", c.rows == 0 ? "<p>No alarm.</p>\n" : "");
    om_strbuf_reset(&s.sql);
    om_strbuf_printf(out,
                     "<h2>Latest runs (failures first)</h2>\n<table id=\"runs\"><tr><th>id</th>"
                     "<th>end</th><th>status</th><th>platform</th><th>group</th><th>process</th>"
                     "<th>host</th><th>seconds</th><th>error type</th><th>error</th>"
                     "<th>trace</th></tr>\n");
    om_strbuf_puts(&s.sql, page_runs_sql);
    s.binds[0] = (as_bind_t){.i = PAGE_RUNS};
    c.rows = 0;
    rc = rc ? rc : s.sql.failed ? OM_ENOMEM : be->query(r, &s, page_run, &c, err);
    om_strbuf_printf(out, "</table>\n%s</body></html>\n",
                     c.rows == 0 ? "<p>No run yet.</p>\n" : "");
    as_sql_free(&s);
    return rc ? rc : out->failed ? OM_ENOMEM : 0;
}
