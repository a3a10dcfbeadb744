/* alarmstore_api_test.c: the query API's parts without a network: the query string parser
 * (escapes, '+', repeated keys, refusals), the checked parameters of a list request, the SQL
 * they make (parameters bound, never written into the text), the JSON and HTML writers'
 * escaping, and the readers against a real SQLite file written by the exporter's own backend:
 * items, filters, pages by cursor, the page, a read while the writer holds its transaction,
 * a database not created yet; the api config keys; the exporter's lifecycle with api. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "alarmstore.h"
#include "config.h"
#include "om_test.h"
#include "om_testdata.h"

extern const om_factory_t exp_alarmstore_factory;

/* ------------------------------------------------------------------------------------------ */
/* Query strings                                                                              */

static void test_qs_parse(void)
{
    as_qs_t q;
    char msg[200];
    ASSERT_EQ_INT(as_qs_parse("a=1&b=x+y%20z&a=2&flag&&c=%E2%82%AC&d=&=e", &q, msg, sizeof msg), 0);
    ASSERT_EQ_INT(q.n, 7);
    ASSERT_EQ_STR(q.v[0].key, "a");
    ASSERT_EQ_STR(q.v[0].value, "1");
    ASSERT_EQ_STR(q.v[1].value, "x y z");
    ASSERT_EQ_STR(q.v[2].key, "a"); /* repeated keys kept, in order */
    ASSERT_EQ_STR(q.v[2].value, "2");
    ASSERT_EQ_STR(q.v[3].key, "flag");
    ASSERT_EQ_STR(q.v[3].value, "");
    ASSERT_EQ_STR(q.v[4].value, "\xe2\x82\xac");
    ASSERT_EQ_STR(q.v[5].key, "d");
    ASSERT_EQ_STR(q.v[6].key, "");
    ASSERT_EQ_STR(q.v[6].value, "e");
    as_qs_free(&q);
    /* "=e": an empty key is a pair too (the API refuses it as unknown). */
    ASSERT_EQ_INT(as_qs_parse("=e", &q, msg, sizeof msg), 0);
    ASSERT_EQ_INT(q.n, 1);
    ASSERT_EQ_STR(q.v[0].key, "");
    as_qs_free(&q);
    ASSERT_EQ_INT(as_qs_parse("", &q, msg, sizeof msg), 0);
    ASSERT_EQ_INT(q.n, 0);
    as_qs_free(&q);
    ASSERT_EQ_INT(as_qs_parse(NULL, &q, msg, sizeof msg), 0);
    as_qs_free(&q);
    ASSERT_EQ_INT(as_qs_parse("a=%2b%2B%25", &q, msg, sizeof msg), 0);
    ASSERT_EQ_STR(q.v[0].value, "++%");
    as_qs_free(&q);

    const char *bad[][2] = {
        {"a=%", "bad %-escape"},       {"a=%4", "bad %-escape"}, {"a=%zz", "bad %-escape"},
        {"a=%4g&b=1", "bad %-escape"}, {"%=1", "bad %-escape"},  {"a=x%00y", "NUL"},
        {"a=%ff", "not valid UTF-8"},  {"a=%C0%80", "UTF-8"},    {"a=%ED%A0%80", "UTF-8"},
        {"a=\xff", "UTF-8"},           {"a=%E2%82", "UTF-8"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        msg[0] = '\0';
        ASSERT_EQ_INT(as_qs_parse(bad[i][0], &q, msg, sizeof msg), OM_EINVAL);
        ASSERT_CONTAINS(msg, bad[i][1]);
        as_qs_free(&q);
    }
    char many[1024] = "";
    for (int i = 0; i <= AS_QS_MAX_PAIRS; i++) {
        strcat(many, "k=v&");
    }
    ASSERT_EQ_INT(as_qs_parse(many, &q, msg, sizeof msg), OM_EINVAL);
    ASSERT_CONTAINS(msg, "more than 64");
    as_qs_free(&q);
}

/* The message of a refused request ("" when accepted). */
static const char *refusal(as_qkind_t kind, const char *qs)
{
    static char msg[256];
    as_query_t q;
    msg[0] = '\0';
    if (as_query_parse(kind, qs, &q, msg, sizeof msg) == 0) {
        as_query_free(&q);
        msg[0] = '\0';
    }
    return msg;
}

static void test_query_parse(void)
{
    as_query_t q;
    char msg[256];
    ASSERT_EQ_INT(as_query_parse(AS_Q_EXECUTIONS, "", &q, msg, sizeof msg), 0);
    ASSERT_EQ_INT(q.limit, AS_Q_DEFAULT_LIMIT);
    ASSERT_TRUE(q.status == NULL && !q.has_since && q.after_id == 0);
    as_query_free(&q);
    ASSERT_EQ_INT(as_query_parse(AS_Q_EXECUTIONS,
                                 "status=FAILED&platform=nifi&group=a+b&process=p%2F1&limit=1000&"
                                 "since=2024-05-01T10:00:00%2B09:00&until=2024-05-01t02:00:00.5z",
                                 &q, msg, sizeof msg),
                  0);
    ASSERT_EQ_STR(q.status, "FAILED");
    ASSERT_EQ_STR(q.platform, "nifi");
    ASSERT_EQ_STR(q.group, "a b");
    ASSERT_EQ_STR(q.process, "p/1");
    ASSERT_EQ_INT(q.limit, 1000);
    ASSERT_TRUE(q.has_since && q.has_until);
    ASSERT_EQ_INT(q.since_ns, 1714525200LL * OM_NS_PER_S); /* 01:00 UTC */
    ASSERT_EQ_INT(q.until_ns, 1714528800LL * OM_NS_PER_S + 500000000);
    as_query_free(&q);
    ASSERT_EQ_INT(as_query_parse(AS_Q_ALARMS, "state=open&group=g", &q, msg, sizeof msg), 0);
    ASSERT_EQ_STR(q.state, "open");
    as_query_free(&q);

    ASSERT_CONTAINS(refusal(AS_Q_EXECUTIONS, "colour=red"), "unknown parameter \"colour\"");
    ASSERT_CONTAINS(refusal(AS_Q_EXECUTIONS, "%3Cb%3E=1"), "unknown parameter \"<b>\"");
    ASSERT_CONTAINS(refusal(AS_Q_EXECUTIONS, "state=open"), "unknown parameter");
    ASSERT_CONTAINS(refusal(AS_Q_ALARMS, "status=FAILED"), "unknown parameter");
    ASSERT_CONTAINS(refusal(AS_Q_EXECUTIONS, "status=failed"), "SUCCESS or FAILED");
    ASSERT_CONTAINS(refusal(AS_Q_EXECUTIONS, "group="), "1 to 255 bytes");
    ASSERT_CONTAINS(refusal(AS_Q_EXECUTIONS, "group=a&group=b"), "group given twice");
    ASSERT_CONTAINS(refusal(AS_Q_EXECUTIONS, "since=2024-05-01"), "RFC 3339");
    ASSERT_CONTAINS(refusal(AS_Q_EXECUTIONS, "since=2024-05-01T10:00:00"), "RFC 3339");
    ASSERT_CONTAINS(refusal(AS_Q_EXECUTIONS, "since=2024-05-01 10:00:00Z"), "RFC 3339");
    ASSERT_CONTAINS(refusal(AS_Q_EXECUTIONS, "since=2024-05-01T10:00:00+09:00"), "%2B");
    ASSERT_CONTAINS(refusal(AS_Q_EXECUTIONS, "since=2024-13-01T10:00:00Z"), "RFC 3339");
    ASSERT_CONTAINS(
        refusal(AS_Q_EXECUTIONS, "since=2024-05-02T00:00:00Z&until=2024-05-01T00:00:00Z"),
        "until must be after since");
    const char *limits[] = {"limit=0",
                            "limit=1001",
                            "limit=-1",
                            "limit=1e3",
                            "limit= 5",
                            "limit=",
                            "limit=99999999999999999999"};
    for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++) {
        ASSERT_CONTAINS(refusal(AS_Q_EXECUTIONS, limits[i]),
                        "limit must be an integer from 1 to 1000");
    }
    const char *cursors[] = {"cursor=",
                             "cursor=e",
                             "cursor=a1",
                             "cursor=e0",
                             "cursor=E1",
                             "cursor=e1-",
                             "cursor=ezzzzzzzzzzzzzz",
                             "cursor=ezzzzzzzzzzzzz",  /* 13 digits: past INT64_MAX */
                             "cursor=e1y2p0ij32e8e8"}; /* INT64_MAX + 1 */
    for (size_t i = 0; i < sizeof cursors / sizeof cursors[0]; i++) {
        ASSERT_CONTAINS(refusal(AS_Q_EXECUTIONS, cursors[i]), "bad cursor");
    }
    ASSERT_EQ_INT(as_query_parse(AS_Q_EXECUTIONS, "cursor=ez", &q, msg, sizeof msg), 0);
    ASSERT_EQ_INT(q.after_id, 35);
    as_query_free(&q);
    ASSERT_EQ_INT(as_query_parse(AS_Q_EXECUTIONS, "cursor=e1y2p0ij32e8e7", &q, msg, sizeof msg), 0);
    ASSERT_TRUE(q.after_id == INT64_MAX);
    as_query_free(&q);
}

static void test_query_sql(void)
{
    as_query_t q;
    char msg[256];
    ASSERT_EQ_INT(as_query_parse(AS_Q_EXECUTIONS,
                                 "group=x'%3B DROP TABLE alarms;--&status=SUCCESS&"
                                 "since=2024-05-01T00:00:00Z&cursor=e10&limit=5",
                                 &q, msg, sizeof msg),
                  0);
    as_sql_t s;
    ASSERT_EQ_INT(as_query_sql(&q, &s), 0);
    const char *sql = om_strbuf_str(&s.sql);
    ASSERT_CONTAINS(sql, "SELECT id, host_name, platform_type, group_name, process_name,");
    ASSERT_CONTAINS(sql, " FROM process_executions WHERE success = ? AND group_name = ? AND "
                         "end_time >= ? AND id < ? ORDER BY id DESC LIMIT ?");
    /* The values are parameters, never text of the statement. */
    ASSERT_TRUE(strstr(sql, "DROP") == NULL && strchr(sql, '\'') == NULL);
    ASSERT_EQ_INT(s.n_binds, 5);
    ASSERT_EQ_STR(s.binds[0].text, "SUCCESS");
    ASSERT_EQ_STR(s.binds[1].text, "x'; DROP TABLE alarms;--");
    ASSERT_EQ_STR(s.binds[2].text, "2024-05-01 00:00:00.000000");
    ASSERT_TRUE(s.binds[3].text == NULL);
    ASSERT_EQ_INT(s.binds[3].i, 36);
    ASSERT_EQ_INT(s.binds[4].i, 6); /* one more than the limit: is there a next page? */
    as_sql_free(&s);
    as_query_free(&q);
    ASSERT_EQ_INT(as_query_parse(AS_Q_ALARMS, "", &q, msg, sizeof msg), 0);
    ASSERT_EQ_INT(as_query_sql(&q, &s), 0);
    ASSERT_EQ_STR(om_strbuf_str(&s.sql),
                  "SELECT id, process_execution_id, platform_type, group_name, process_name, "
                  "end_time, state, notify_attempts, next_attempt_at, last_error, notified_at, "
                  "created_at, notifiers_done, digested_at FROM alarms ORDER BY id DESC LIMIT ?");
    as_sql_free(&s);
    as_query_free(&q);
}

static void test_writers(void)
{
    om_strbuf_t sb;
    om_strbuf_init(&sb, 0);
    as_json_str(&sb, "a\"b\\c\n\t\x01\x7f\xe2\x82\xac\xff<", 14);
    ASSERT_EQ_STR(om_strbuf_str(&sb), "\"a\\\"b\\\\c\\n\\t\\u0001\\u007f\xe2\x82\xac\\ufffd<\"");
    om_strbuf_reset(&sb);
    const char *h = "<a href=\"x\">'&'</a>\xc3";
    om_strbuf_html(&sb, h, strlen(h));
    ASSERT_EQ_STR(om_strbuf_str(&sb),
                  "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;\xef\xbf\xbd");
    om_strbuf_reset(&sb);
    as_trace_url(&sb, "http://g/explore?q={\"t\":\"{trace_id}\"}&again={trace_id}", "ab 12/&");
    ASSERT_EQ_STR(om_strbuf_str(&sb),
                  "http://g/explore?q={\"t\":\"ab%2012%2F%26\"}&again=ab%2012%2F%26");
    om_strbuf_free(&sb);
}

/* ------------------------------------------------------------------------------------------ */
/* Against a real SQLite file                                                                 */

static char tmpdir[64];

static const char *tmp_path(const char *name)
{
    static char p[160];
    if (tmpdir[0] == '\0') {
        snprintf(tmpdir, sizeof tmpdir, "/tmp/om_asapi_XXXXXX");
        if (mkdtemp(tmpdir) == NULL) {
            abort();
        }
    }
    snprintf(p, sizeof p, "%s/%s", tmpdir, name);
    return p;
}

/* 2024-05-01 01:00:00 UTC */
#define T0 1714525200LL

/* A database holding n runs (run i ends at T0 + i minutes; every third failed, with
 * "<b>&" in its message), stored by the exporter's own writer; w and wc stay open. */
static void make_db(const char *path, int n, as_url_t *u, const as_backend_t **be, as_conn_t **c)
{
    char url[200];
    snprintf(url, sizeof url, "sqlite:///%s", path);
    om_err_t err = {0};
    ASSERT_EQ_INT(as_url_parse(url, u, &err), 0);
    ASSERT_EQ_INT(as_db_open(u, NULL, 1000, be, c, &err), 0);
    om_strbuf_t text;
    om_strbuf_init(&text, 0);
    om_strbuf_puts(&text, "resource service.name=etl host.name=h1");
    for (int i = 0; i < n; i++) {
        long long end = (T0 + 60LL * i) * 1000000000LL;
        om_strbuf_printf(&text,
                         "; span r%d trace:%032x id:%016x start:%lld end:%lld"
                         " etl.process_name=p%d etl.group_name=%s etl.platform=script%s",
                         i, i + 1, i + 1, end - 1500000000LL, end, i, i % 2 ? "odd" : "even",
                         i % 3 == 0 ? " etl.error='<b>&amp; boom'" : "");
    }
    om_batch_t *b = om_testdata_otlp("%s", om_strbuf_str(&text));
    om_strbuf_free(&text);
    om_err_t e2 = {0};
    ASSERT_EQ_INT(om_batch_decode(b, &e2), 0);
    as_rows_t rows = {0};
    ASSERT_EQ_INT(as_rows_extract(b->traces, NULL, &rows), 0);
    ASSERT_EQ_INT(rows.n, n);
    as_store_result_t res;
    ASSERT_EQ_INT(as_db_store(*be, *c, &rows, &res, &err), 0);
    ASSERT_EQ_INT(res.inserted, n);
    as_rows_free(&rows);
    om_batch_release(b);
}

/* Run a list request; the answer parsed into a (the caller's arena). A failure aborts the
 * test binary: the callers index into the answer. */
static const om_json_t *list(as_reader_t *r, om_arena_t *a, as_qkind_t kind, const char *qs)
{
    as_query_t q;
    char msg[256];
    om_strbuf_t out;
    om_strbuf_init(&out, 0);
    om_err_t err = {0};
    const om_json_t *root = NULL;
    if (as_query_parse(kind, qs, &q, msg, sizeof msg) != 0 ||
        as_query_json(&as_sqlite_reader, r, &q, &out, &err) != 0 ||
        om_json_parse(a, out.data, out.len, &root, &err) != 0 ||
        om_json_get(root, "items") == NULL) {
        fprintf(stderr, "list %s: %s%s\n", qs, msg, err.msg);
        abort();
    }
    om_strbuf_free(&out);
    as_query_free(&q);
    return root;
}

static const om_json_t *items(const om_json_t *root)
{
    return om_json_get(root, "items");
}

static const char *str(const om_json_t *obj, const char *key)
{
    const om_json_t *v = om_json_get(obj, key);
    return v == NULL ? "(absent)" : v->type == OM_JSON_STRING ? v->u.s : "(not a string)";
}

static void test_sqlite_reader(void)
{
    const char *path = tmp_path("read.db");
    as_url_t u;
    const as_backend_t *be;
    as_conn_t *c;
    make_db(path, 23, &u, &be, &c);
    as_reader_t *r = NULL;
    om_err_t err = {0};
    ASSERT_EQ_INT(as_sqlite_reader.open(&u, NULL, 1000, &r, &err), 0);
    om_arena_t *a = om_arena_new(0);

    const om_json_t *root = list(r, a, AS_Q_EXECUTIONS, "");
    const om_json_t *it = items(root);
    ASSERT_EQ_INT(it->n, 23);
    ASSERT_EQ_INT(om_json_get(root, "next_cursor")->type, OM_JSON_NULL);
    const om_json_t *newest = &it->u.items[0];
    ASSERT_EQ_INT(om_json_get(newest, "id")->u.i, 23);
    ASSERT_EQ_STR(str(newest, "process_name"), "p22");
    ASSERT_EQ_STR(str(newest, "end_time"), "2024-05-01T01:22:00.000000Z");
    ASSERT_EQ_STR(str(newest, "start_time"), "2024-05-01T01:21:58.500000Z");
    ASSERT_EQ_INT(om_json_get(newest, "duration_seconds")->type, OM_JSON_REAL);
    ASSERT_TRUE(om_json_get(newest, "duration_seconds")->u.r == 1.5);
    ASSERT_EQ_INT(om_json_get(newest, "source_count")->type, OM_JSON_NULL);
    ASSERT_EQ_STR(str(newest, "success"), "SUCCESS");
    ASSERT_EQ_STR(str(newest, "trace_id"), "00000000000000000000000000000017");
    ASSERT_EQ_STR(str(&it->u.items[22], "error_message"), "<b>&amp; boom");
    ASSERT_EQ_INT(newest->n, 26); /* every column of the table */

    /* Filters. */
    ASSERT_EQ_INT(items(list(r, a, AS_Q_EXECUTIONS, "status=FAILED"))->n, 8);
    ASSERT_EQ_INT(items(list(r, a, AS_Q_EXECUTIONS, "status=FAILED&group=odd"))->n, 4);
    ASSERT_EQ_INT(items(list(r, a, AS_Q_EXECUTIONS, "process=p7&platform=script"))->n, 1);
    ASSERT_EQ_INT(items(list(r, a, AS_Q_EXECUTIONS, "platform=nifi"))->n, 0);
    /* Runs 5..9 end in [01:05, 01:10). */
    it =
        items(list(r, a, AS_Q_EXECUTIONS, "since=2024-05-01T01:05:00Z&until=2024-05-01T01:10:00Z"));
    ASSERT_EQ_INT(it->n, 5);
    ASSERT_EQ_STR(str(&it->u.items[0], "process_name"), "p9");
    ASSERT_EQ_STR(str(&it->u.items[4], "process_name"), "p5");

    /* Pages of 5: ids 23..1 in order, each once; the last page is not empty. */
    char qs[128] = "limit=5";
    int64_t want = 23;
    int pages = 0;
    for (;;) {
        root = list(r, a, AS_Q_EXECUTIONS, qs);
        it = items(root);
        pages++;
        for (uint32_t i = 0; i < it->n; i++) {
            ASSERT_EQ_INT(om_json_get(&it->u.items[i], "id")->u.i, want--);
        }
        const om_json_t *next = om_json_get(root, "next_cursor");
        if (next->type == OM_JSON_NULL) {
            break;
        }
        ASSERT_EQ_INT(it->n, 5);
        snprintf(qs, sizeof qs, "limit=5&cursor=%s", next->u.s);
        if (pages == 2) {
            /* Rows stored meanwhile (higher ids) change nothing of the pages that follow. */
            as_rows_t more = {0};
            om_batch_t *b = om_testdata_otlp(
                "span late trace:0000000000000000000000000000ffff id:000000000000ffff"
                " start:1714525200000000000 end:1714525201000000000 etl.process_name=late");
            om_err_t e2 = {0};
            ASSERT_EQ_INT(om_batch_decode(b, &e2), 0);
            ASSERT_EQ_INT(as_rows_extract(b->traces, NULL, &more), 0);
            as_store_result_t res;
            ASSERT_EQ_INT(as_db_store(be, c, &more, &res, &err), 0);
            as_rows_free(&more);
            om_batch_release(b);
        }
    }
    ASSERT_EQ_INT(want, 0);
    ASSERT_EQ_INT(pages, 5);

    /* Alarms: one per failure, newest first, open. */
    it = items(list(r, a, AS_Q_ALARMS, "state=open"));
    ASSERT_EQ_INT(it->n, 8);
    ASSERT_EQ_STR(str(&it->u.items[0], "process_name"), "p21");
    ASSERT_EQ_STR(str(&it->u.items[0], "end_time"), "2024-05-01T01:21:00.000000Z");
    ASSERT_EQ_INT(om_json_get(&it->u.items[0], "notify_attempts")->u.i, 0);
    ASSERT_EQ_INT(om_json_get(&it->u.items[0], "notified_at")->type, OM_JSON_NULL);
    ASSERT_EQ_INT(items(list(r, a, AS_Q_ALARMS, "group=even"))->n, 4);
    root = list(r, a, AS_Q_ALARMS, "limit=7");
    ASSERT_EQ_INT(items(root)->n, 7);
    ASSERT_EQ_STR(om_json_get(root, "next_cursor")->u.s, "a2");

    /* The page: the failures first, their message escaped, the trace linked. */
    om_strbuf_t page;
    om_strbuf_init(&page, 0);
    ASSERT_EQ_INT(as_query_page(&as_sqlite_reader, r, "http://t/{trace_id}?a=1&b=2", &page, &err),
                  0);
    const char *html = om_strbuf_str(&page);
    const char *runs = strstr(html, "<table id=\"runs\">");
    ASSERT_TRUE(runs != NULL);
    const char *first_ok = strstr(runs, "<tr class=\"ok\">");
    const char *last_failed = runs;
    for (const char *p = runs; (p = strstr(p, "<tr class=\"failed\">")) != NULL; p++) {
        last_failed = p;
    }
    ASSERT_TRUE(first_ok != NULL && last_failed < first_ok);
    ASSERT_CONTAINS(runs, "<td class=\"msg\">&lt;b&gt;&amp;amp; boom</td><td><a class=\"trace\" "
                          "href=\"http://t/00000000000000000000000000000016?a=1&amp;b=2\">"
                          "00000000000000000000000000000016</a></td>");
    ASSERT_CONTAINS(html, "<table id=\"alarms\">");
    ASSERT_CONTAINS(strstr(html, "<table id=\"alarms\">"), "<td>open</td>"); /* its state */
    ASSERT_TRUE(strstr(html, "<b>") == NULL);
    om_strbuf_reset(&page);
    /* No template: no link. */
    ASSERT_EQ_INT(as_query_page(&as_sqlite_reader, r, NULL, &page, &err), 0);
    ASSERT_TRUE(strstr(om_strbuf_str(&page), "<a class=\"trace\"") == NULL);
    ASSERT_CONTAINS(om_strbuf_str(&page), "<td>00000000000000000000000000000016</td>");
    om_strbuf_free(&page);

    /* The writer holds its write transaction: the reader reads, at once, what was
     * committed. */
    ASSERT_EQ_INT(be->exec(c, "BEGIN IMMEDIATE", &err), 0);
    ASSERT_EQ_INT(be->exec(c, "DELETE FROM alarms", &err), 0);
    uint64_t t0 = uv_hrtime();
    ASSERT_EQ_INT(items(list(r, a, AS_Q_ALARMS, ""))->n, 8);
    ASSERT_TRUE(uv_hrtime() - t0 < 500 * 1000000ULL);
    be->rollback(c);

    om_arena_unref(a);
    as_sqlite_reader.close(r);
    be->close(c);
    as_url_free(&u);
}

static void test_sqlite_reader_unavailable(void)
{
    om_err_t err = {0};
    as_url_t u;
    char url[200];
    snprintf(url, sizeof url, "sqlite:///%s", tmp_path("absent.db"));
    ASSERT_EQ_INT(as_url_parse(url, &u, &err), 0);
    as_reader_t *r = NULL;
    ASSERT_EQ_INT(as_sqlite_reader.open(&u, NULL, 100, &r, &err), OM_EAGAIN);
    ASSERT_CONTAINS(err.msg, "cannot open");
    as_url_free(&u);
    /* A file without the tables yet: the query is refused as unavailable, not a crash. */
    sqlite3 *db;
    ASSERT_EQ_INT(sqlite3_open(tmp_path("empty.db"), &db), SQLITE_OK);
    ASSERT_EQ_INT(sqlite3_exec(db, "CREATE TABLE x (y)", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    snprintf(url, sizeof url, "sqlite:///%s", tmp_path("empty.db"));
    ASSERT_EQ_INT(as_url_parse(url, &u, &err), 0);
    ASSERT_EQ_INT(as_sqlite_reader.open(&u, NULL, 100, &r, &err), 0);
    as_query_t q;
    char msg[64];
    ASSERT_EQ_INT(as_query_parse(AS_Q_EXECUTIONS, "", &q, msg, sizeof msg), 0);
    om_strbuf_t out;
    om_strbuf_init(&out, 0);
    memset(&err, 0, sizeof err);
    ASSERT_EQ_INT(as_query_json(&as_sqlite_reader, r, &q, &out, &err), OM_EAGAIN);
    ASSERT_CONTAINS(err.msg, "no such table");
    om_strbuf_free(&out);
    as_query_free(&q);
    as_sqlite_reader.close(r);
    as_url_free(&u);
}

/* Reads while another thread stores batch after batch: every read answers, none is
 * SQLITE_BUSY, and each sees a committed count (a multiple of the batch size). */
typedef struct writer_arg {
    const as_backend_t *be;
    as_conn_t *c;
    int batches, failures;
} writer_arg_t;

#define W_ROWS 20

static void writer_main(void *arg)
{
    writer_arg_t *w = arg;
    for (int k = 0; k < w->batches; k++) {
        om_strbuf_t text;
        om_strbuf_init(&text, 0);
        om_strbuf_puts(&text, "resource service.name=w");
        for (int i = 0; i < W_ROWS; i++) {
            om_strbuf_printf(&text,
                             "; span w trace:%032x id:%016x start:1714525200000000000"
                             " end:1714525201000000000 etl.process_name=w%d",
                             k + 1000, i + 1, i);
        }
        om_batch_t *b = om_testdata_otlp("%s", om_strbuf_str(&text));
        om_strbuf_free(&text);
        om_err_t err = {0};
        as_rows_t rows = {0};
        as_store_result_t res;
        if (om_batch_decode(b, &err) != 0 || as_rows_extract(b->traces, NULL, &rows) != 0 ||
            as_db_store(w->be, w->c, &rows, &res, &err) != 0 || res.inserted != W_ROWS) {
            w->failures++;
        }
        as_rows_free(&rows);
        om_batch_release(b);
    }
}

static int count_rows(void *arg, const char *const *vals, const size_t *lens, size_t n)
{
    (void)lens;
    (void)n;
    *(long *)arg = vals[0] != NULL ? strtol(vals[0], NULL, 10) : -1;
    return 0;
}

static void test_sqlite_reads_during_writes(void)
{
    as_url_t u;
    const as_backend_t *be;
    as_conn_t *c;
    make_db(tmp_path("busy.db"), 0, &u, &be, &c);
    as_reader_t *r = NULL;
    om_err_t err = {0};
    ASSERT_EQ_INT(as_sqlite_reader.open(&u, NULL, 2000, &r, &err), 0);
    writer_arg_t w = {.be = be, .c = c, .batches = 100};
    uv_thread_t th;
    ASSERT_EQ_INT(uv_thread_create(&th, writer_main, &w), 0);
    as_sql_t s = {0};
    om_strbuf_init(&s.sql, 0);
    om_strbuf_puts(&s.sql, "SELECT COUNT(*) FROM process_executions");
    int reads = 0, bad = 0;
    long n = 0;
    while (n < 100 * W_ROWS && reads < 1000000) {
        if (as_sqlite_reader.query(r, &s, count_rows, &n, &err) != 0 || n % W_ROWS != 0) {
            fprintf(stderr, "read %d: %ld rows: %s\n", reads, n, err.msg);
            bad++;
            break;
        }
        reads++;
    }
    uv_thread_join(&th);
    ASSERT_EQ_INT(bad, 0);
    ASSERT_EQ_INT(w.failures, 0);
    ASSERT_TRUE(reads > 1);
    as_sql_free(&s);
    as_sqlite_reader.close(r);
    be->close(c);
    as_url_free(&u);
}

/* ------------------------------------------------------------------------------------------ */
/* Config and lifecycle                                                                       */

/* The config error of "c: <yaml>" for the alarmstore exporter, "" when it is valid. */
static const char *config_error(const char *yaml)
{
    return om_test_config_error(&exp_alarmstore_factory, yaml);
}

static void test_api_config(void)
{
    ASSERT_EQ_STR(config_error("{api: {}}"), "");
    ASSERT_EQ_STR(config_error("{api: {endpoint: 'localhost:8890', trace_url_template: "
                               "'http://g/{trace_id}', tls: {cert_file: /c, key_file: /k}, "
                               "auth: {authenticator: bearertokenauth}, read_header_timeout: 5s}}"),
                  "");
    ASSERT_CONTAINS(config_error("{api: {trace_url_template: 'http://g/explore'}}"),
                    "api::trace_url_template: must contain {trace_id}");
    ASSERT_CONTAINS(config_error("{api: {token: x}}"), "token");
    ASSERT_CONTAINS(config_error("{api: {endpoint: 'nope'}}"), "endpoint");
    ASSERT_CONTAINS(config_error("{api: {tls: {cert_file: /c}}}"), "key_file");
    ASSERT_CONTAINS(config_error("{api: {auth: {}}}"), "authenticator");
    ASSERT_CONTAINS(config_error("{api: {middlewares: [x]}}"), "middlewares");
    /* A notify section without a notifier is an error of its own section. */
    ASSERT_CONTAINS(config_error("{notify: {dedup_window: 1h}}"), "notify");
}

static void test_lifecycle_with_api(void)
{
    char cfg[300];
    snprintf(cfg, sizeof cfg,
             "{database: 'sqlite:///%s', api: {endpoint: '127.0.0.1:0', trace_url_template: "
             "'http://t/{trace_id}'}}",
             tmp_path("lifecycle.db"));
    om_test_lifecycle(&exp_alarmstore_factory, cfg);
}

int main(void)
{
    OM_RUN(test_qs_parse);
    OM_RUN(test_query_parse);
    OM_RUN(test_query_sql);
    OM_RUN(test_writers);
    OM_RUN(test_sqlite_reader);
    OM_RUN(test_sqlite_reader_unavailable);
    OM_RUN(test_sqlite_reads_during_writes);
    OM_RUN(test_api_config);
    OM_RUN(test_lifecycle_with_api);
    if (tmpdir[0] != '\0') {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
        if (system(cmd) != 0) {
            fprintf(stderr, "could not remove %s\n", tmpdir);
        }
    }
    return om_test_summary();
}
