/* alarmstore_qs_fuzz.c: the query API's query string is a client's input. The first byte
 * picks the list (executions or alarms); the rest is the raw query string (cut at a NUL, as
 * the HTTP server hands it). Whatever is accepted must be pairs of valid UTF-8 without NUL,
 * at most AS_QS_MAX_PAIRS of them; a list request accepted must have its limits in range and
 * make a statement whose parameters all fit; every decoded value written as JSON must parse
 * back to itself, and written as HTML must hold no markup character. */
#include <stdlib.h>
#include <string.h>

#include "alarmstore.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_json_roundtrip(const char *s)
{
    om_strbuf_t sb;
    om_strbuf_init(&sb, 0);
    as_json_str(&sb, s, strlen(s));
    om_arena_t *a = om_arena_new(0);
    const om_json_t *root = NULL;
    om_err_t err = {0};
    if (sb.failed || a == NULL) {
        abort();
    }
    if (om_json_parse(a, sb.data, sb.len, &root, &err) != 0 || root->type != OM_JSON_STRING ||
        root->n != strlen(s) || memcmp(root->u.s, s, root->n) != 0) {
        abort();
    }
    om_arena_unref(a);
    om_strbuf_reset(&sb);
    om_strbuf_html(&sb, s, strlen(s));
    if (sb.failed || strpbrk(om_strbuf_str(&sb), "<>\"'") != NULL) {
        abort();
    }
    om_strbuf_free(&sb);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0 || size > 16384) {
        return 0;
    }
    as_qkind_t kind = data[0] & 1 ? AS_Q_ALARMS : AS_Q_EXECUTIONS;
    char *qs = malloc(size);
    if (qs == NULL) {
        return 0;
    }
    memcpy(qs, data + 1, size - 1);
    qs[size - 1] = '\0';
    char msg[256];
    as_qs_t pairs;
    if (as_qs_parse(qs, &pairs, msg, sizeof msg) == 0) {
        if (pairs.n > AS_QS_MAX_PAIRS) {
            abort();
        }
        for (size_t i = 0; i < pairs.n; i++) {
            check_json_roundtrip(pairs.v[i].key);
            check_json_roundtrip(pairs.v[i].value);
        }
    } else if (msg[0] == '\0') {
        abort(); /* a refusal says why */
    }
    as_qs_free(&pairs);

    as_query_t q;
    msg[0] = '\0';
    if (as_query_parse(kind, qs, &q, msg, sizeof msg) == 0) {
        if (q.limit < 1 || q.limit > AS_Q_MAX_LIMIT || q.after_id < 0 ||
            (q.has_since && q.has_until && q.until_ns <= q.since_ns) ||
            (kind == AS_Q_ALARMS && q.status != NULL) ||
            (kind == AS_Q_EXECUTIONS && q.state != NULL)) {
            abort();
        }
        as_sql_t s;
        if (as_query_sql(&q, &s) == 0 &&
            (s.n_binds > AS_SQL_MAX_BINDS || strchr(om_strbuf_str(&s.sql), '\'') != NULL)) {
            abort();
        }
        as_sql_free(&s);
        as_query_free(&q);
    } else if (msg[0] == '\0') {
        abort();
    } else {
        check_json_roundtrip(msg);
    }
    om_strbuf_t url;
    om_strbuf_init(&url, 0);
    as_trace_url(&url, "http://t/?q={trace_id}&{trace_id}", qs);
    if (!url.failed && strpbrk(om_strbuf_str(&url) + 9, " \"<>") != NULL) {
        abort();
    }
    om_strbuf_free(&url);
    free(qs);
    return 0;
}
