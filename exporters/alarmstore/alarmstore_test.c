/* alarmstore_test.c: which spans become runs and the exact rows (ETL helper spans, Airflow
 * 2.10 and 3 task spans, error spans), bad input (wrong types, huge and invalid UTF-8 text),
 * the wire pre-check held to the extraction, database URLs, the refused sections, and the
 * SQLite backend: schema, idempotent stores, alarms, a newer schema, a locked database, and
 * the exporter end to end on a loop. Notifications: the notify section's rules, the dedup
 * plan, the messages' escaping, and the alarms' database side (due, recorded, retried, given
 * up, digested); the sends themselves are tested end to end in
 * test/integration/alarmstore.test.mjs (a real HTTP server and a real SMTP server). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "alarmstore.h"
#include "config.h"
#include "om_test.h"
#include "om_testdata.h"

extern const om_factory_t exp_alarmstore_factory;

#define TRACE "0102030405060708090a0b0c0d0e0f10"
/* 2024-05-01 01:00:00 UTC and 90.5 s later. */
#define T_START "1714525200000000000"
#define T_END "1714525290500000000"

static const char *etl_span(void)
{
    return "resource service.name=etl-scripts host.name=etl-host-1; scope traced;"
           "span 'load_orders' trace:" TRACE " id:1112131415161718 start:" T_START " end:" T_END
           " etl.process_name=load_orders etl.group_name=sales etl.platform=script"
           " etl.script_name='load_orders.py' etl.process_count='1200'"
           " etl.duration='90.5' etl.start_time='2024-05-01 10:00:00'"
           " etl.end_time='2024-05-01 10:01:30'"
           " etl.source_system_type=oracle etl.source_system_name=ERP"
           " etl.source_endpoint='erp-db:1521/ORCL' etl.source_object_name=ORDERS"
           " etl.source_count='1200' etl.target_system_type=mariadb"
           " etl.target_system_name=DW etl.target_endpoint='dw:3306/dw'"
           " etl.target_object_name=fact_orders etl.target_count=1198";
}

static as_rows_t extract(om_batch_t *b, const as_extract_opts_t *o)
{
    as_rows_t rows = {0};
    om_err_t err = {0};
    if (om_batch_decode(b, &err) != 0 || as_rows_extract(b->traces, o, &rows) != 0) {
        fprintf(stderr, "extract failed\n");
    }
    return rows;
}

static const char *col(const as_row_t *r, as_text_col_t c)
{
    return r->text[c] != NULL ? r->text[c] : "(null)";
}

static void test_etl_success_row(void)
{
    om_batch_t *b = om_testdata_otlp("%s", etl_span());
    as_rows_t rows = extract(b, NULL);
    ASSERT_EQ_INT(rows.n, 1);
    const as_row_t *r = &rows.v[0];
    ASSERT_TRUE(!r->failed);
    ASSERT_EQ_STR(col(r, AS_COL_HOST_NAME), "etl-host-1");
    ASSERT_EQ_STR(col(r, AS_COL_PLATFORM_TYPE), "script");
    ASSERT_EQ_STR(col(r, AS_COL_GROUP_NAME), "sales");
    ASSERT_EQ_STR(col(r, AS_COL_PROCESS_NAME), "load_orders");
    ASSERT_EQ_STR(col(r, AS_COL_SCRIPT_NAME), "load_orders.py");
    ASSERT_TRUE(r->text[AS_COL_ERROR_MESSAGE] == NULL);
    ASSERT_TRUE(r->text[AS_COL_ERROR_TYPE] == NULL);
    ASSERT_TRUE(r->text[AS_COL_STACK_TRACE] == NULL);
    ASSERT_EQ_STR(col(r, AS_COL_SOURCE_SYSTEM_TYPE), "oracle");
    ASSERT_EQ_STR(col(r, AS_COL_SOURCE_SYSTEM_NAME), "ERP");
    ASSERT_EQ_STR(col(r, AS_COL_SOURCE_ENDPOINT), "erp-db:1521/ORCL");
    ASSERT_EQ_STR(col(r, AS_COL_SOURCE_OBJECT_NAME), "ORDERS");
    ASSERT_EQ_STR(col(r, AS_COL_TARGET_SYSTEM_TYPE), "mariadb");
    ASSERT_EQ_STR(col(r, AS_COL_TARGET_SYSTEM_NAME), "DW");
    ASSERT_EQ_STR(col(r, AS_COL_TARGET_ENDPOINT), "dw:3306/dw");
    ASSERT_EQ_STR(col(r, AS_COL_TARGET_OBJECT_NAME), "fact_orders");
    ASSERT_TRUE(r->has_source_count && r->has_target_count);
    ASSERT_EQ_INT(r->source_count, 1200); /* sent as a string */
    ASSERT_EQ_INT(r->target_count, 1198); /* sent as an int */
    /* The naive local-time strings are not used: the span's own timestamps are. */
    char t[32];
    ASSERT_TRUE(r->has_start && r->has_end && r->has_duration);
    as_format_time(r->start_ns, t);
    ASSERT_EQ_STR(t, "2024-05-01 01:00:00.000000");
    as_format_time(r->end_ns, t);
    ASSERT_EQ_STR(t, "2024-05-01 01:01:30.500000");
    ASSERT_TRUE(r->duration_seconds > 90.49 && r->duration_seconds < 90.51);
    ASSERT_EQ_STR(r->trace_id, TRACE);
    ASSERT_EQ_STR(r->span_id, "1112131415161718");
    as_rows_free(&rows);
    om_batch_release(b);
}

static void test_etl_failure_rules(void)
{
    /* etl.error set, status unset: failed, the message is etl.error. */
    om_batch_t *b = om_testdata_otlp(
        "resource host.name=h; span a trace:" TRACE " id:0000000000000001 start:" T_START
        " end:" T_END " etl.process_name=p etl.error='division by zero'"
        " etl.error_type=ZeroDivisionError etl.stacktrace='Traceback:\\n  line 1';"
        /* status ERROR without etl.error: failed, the message is the status message. */
        "span b trace:" TRACE " id:0000000000000002 status:error message:'status says no'"
        " etl.process_name=q;"
        /* etl.error empty: not set; status OK: succeeded. */
        "span c trace:" TRACE " id:0000000000000003 status:ok etl.process_name=r etl.error=''");
    as_rows_t rows = extract(b, NULL);
    ASSERT_EQ_INT(rows.n, 3);
    ASSERT_TRUE(rows.v[0].failed);
    ASSERT_EQ_STR(col(&rows.v[0], AS_COL_ERROR_MESSAGE), "division by zero");
    ASSERT_EQ_STR(col(&rows.v[0], AS_COL_ERROR_TYPE), "ZeroDivisionError");
    ASSERT_CONTAINS(col(&rows.v[0], AS_COL_STACK_TRACE), "Traceback");
    ASSERT_TRUE(rows.v[1].failed);
    ASSERT_EQ_STR(col(&rows.v[1], AS_COL_ERROR_MESSAGE), "status says no");
    ASSERT_TRUE(!rows.v[2].failed);
    ASSERT_TRUE(rows.v[2].text[AS_COL_ERROR_MESSAGE] == NULL);
    as_rows_free(&rows);
    om_batch_release(b);
}

static void test_times_with_offset_are_used(void)
{
    om_batch_t *b =
        om_testdata_otlp("span a trace:" TRACE " id:0000000000000001 start:" T_START " end:" T_END
                         " etl.process_name=p etl.start_time='2024-05-01T10:00:00.250+09:00'"
                         " etl.end_time='2024-05-01 01:02:00Z'");
    as_rows_t rows = extract(b, NULL);
    ASSERT_EQ_INT(rows.n, 1);
    char t[32];
    as_format_time(rows.v[0].start_ns, t);
    ASSERT_EQ_STR(t, "2024-05-01 01:00:00.250000");
    as_format_time(rows.v[0].end_ns, t);
    ASSERT_EQ_STR(t, "2024-05-01 01:02:00.000000");
    ASSERT_TRUE(rows.v[0].duration_seconds > 119.74 && rows.v[0].duration_seconds < 119.76);
    as_rows_free(&rows);
    om_batch_release(b);

    int64_t ns;
    ASSERT_TRUE(as_parse_time_utc("2024-08-01 10:00:00.123456+00:00", 32, &ns));
    ASSERT_EQ_INT(ns, INT64_C(1722506400123456000));
    ASSERT_TRUE(as_parse_time_utc("2024-08-01T19:00:00+0900", 24, &ns));
    ASSERT_EQ_INT(ns, INT64_C(1722506400000000000));
    ASSERT_TRUE(!as_parse_time_utc("2024-08-01 10:00:00", 19, &ns));
    ASSERT_TRUE(!as_parse_time_utc("2024-08-01 10:00:00.5", 21, &ns));
    ASSERT_TRUE(!as_parse_time_utc("None", 4, &ns));
    /* Beyond int64 nanoseconds (1677-2262): not a time, not an overflow. */
    ASSERT_TRUE(!as_parse_time_utc("9999-12-31T23:59:59Z", 20, &ns));
    ASSERT_TRUE(!as_parse_time_utc("0001-01-01T00:00:00Z", 20, &ns));
    ASSERT_TRUE(as_parse_time_utc("2262-01-01T00:00:00Z", 20, &ns));
    ASSERT_TRUE(!as_parse_time_utc("2024-13-01 10:00:00Z", 20, &ns));
}

static void test_airflow2_task_spans(void)
{
    /* As scheduler_job_runner.py writes them (Airflow 2.10): the span starts when queued. */
    om_batch_t *b = om_testdata_otlp(
        "resource service.name=Airflow host.name=scheduler-1;"
        "span extract trace:" TRACE " id:00000000000000a1 start:1722506000000000000"
        " end:1722506500000000000 category=scheduler dag_id=daily_sales task_id=extract"
        " state=failed error=true try_number=2 hostname=worker-7"
        " start_date='2024-08-01 10:00:00.123456+00:00'"
        " end_date='2024-08-01 10:05:00.000000+00:00' operator=PythonOperator;"
        "span load trace:" TRACE " id:00000000000000a2 start:1722506000000000000"
        " end:1722506500000000000 category=scheduler dag_id=daily_sales task_id=load"
        " state=success try_number=1 hostname=worker-8 start_date=None end_date=None;"
        /* Not a run: skipped, and the scheduler's own loop span. */
        "span t trace:" TRACE " id:00000000000000a3 dag_id=d task_id=t state=skipped;"
        "span scheduler_job_loop category=scheduler loop_count=3");
    as_rows_t rows = extract(b, NULL);
    ASSERT_EQ_INT(rows.n, 2);
    const as_row_t *r = &rows.v[0];
    ASSERT_TRUE(r->failed);
    ASSERT_EQ_STR(col(r, AS_COL_PLATFORM_TYPE), "airflow");
    ASSERT_EQ_STR(col(r, AS_COL_GROUP_NAME), "daily_sales");
    ASSERT_EQ_STR(col(r, AS_COL_PROCESS_NAME), "extract");
    ASSERT_EQ_STR(col(r, AS_COL_HOST_NAME), "worker-7");
    ASSERT_EQ_STR(col(r, AS_COL_ERROR_MESSAGE), "Airflow task failed (try 2)");
    char t[32];
    as_format_time(r->start_ns, t);
    ASSERT_EQ_STR(t, "2024-08-01 10:00:00.123456");
    as_format_time(r->end_ns, t);
    ASSERT_EQ_STR(t, "2024-08-01 10:05:00.000000");
    r = &rows.v[1];
    ASSERT_TRUE(!r->failed);
    ASSERT_EQ_STR(col(r, AS_COL_HOST_NAME), "worker-8");
    ASSERT_EQ_INT(r->start_ns, INT64_C(1722506000000000000)); /* "None": the span's */
    as_rows_free(&rows);
    om_batch_release(b);
}

static void test_airflow3_task_spans(void)
{
    om_batch_t *b = om_testdata_otlp(
        "resource service.name=Airflow host.name=api-server-1;"
        "span 'task_run.transform' trace:" TRACE " id:00000000000000b1 status:error"
        " start:" T_START " end:" T_END " airflow.dag_id=etl airflow.task_id=transform"
        " airflow.task_instance.state=up_for_retry airflow.task_instance.try_number=1;"
        "span 'task_run.publish[3]' trace:" TRACE " id:00000000000000b2 status:ok"
        " airflow.dag_id=etl airflow.task_id=publish airflow.task_instance.state=success;"
        /* ERROR status but skipped: not a run. */
        "span 'task_run.cleanup' trace:" TRACE " id:00000000000000b3 status:error"
        " airflow.dag_id=etl airflow.task_id=cleanup airflow.task_instance.state=skipped;"
        "span 'dag_run.etl' airflow.dag_id=etl");
    as_rows_t rows = extract(b, NULL);
    ASSERT_EQ_INT(rows.n, 2);
    ASSERT_TRUE(rows.v[0].failed);
    ASSERT_EQ_STR(col(&rows.v[0], AS_COL_GROUP_NAME), "etl");
    ASSERT_EQ_STR(col(&rows.v[0], AS_COL_PROCESS_NAME), "transform");
    ASSERT_EQ_STR(col(&rows.v[0], AS_COL_HOST_NAME), "api-server-1");
    ASSERT_EQ_STR(col(&rows.v[0], AS_COL_ERROR_MESSAGE), "Airflow task up_for_retry (try 1)");
    ASSERT_TRUE(!rows.v[1].failed);
    ASSERT_EQ_STR(col(&rows.v[1], AS_COL_PROCESS_NAME), "publish");
    as_rows_free(&rows);
    om_batch_release(b);
}

static void test_error_spans(void)
{
    om_batch_t *b = om_testdata_otlp(
        "resource service.name=fastapi-app host.name=api-1;"
        "span 'POST /orders' trace:" TRACE " id:00000000000000c1 status:error message:'HTTP 500';"
        "event exception exception.type=ValueError exception.message='bad order'"
        " exception.stacktrace='Traceback (most recent call last)';"
        "span 'GET /orders' trace:" TRACE " id:00000000000000c2 status:ok;"
        "resource service.name=other;"
        "span 'POST /x' trace:" TRACE " id:00000000000000c3 status:error");
    as_rows_t rows = extract(b, NULL);
    ASSERT_EQ_INT(rows.n, 0); /* not configured */
    as_rows_free(&rows);
    char *svc[] = {"fastapi-app"};
    om_strlist_t services = {.n = 1, .items = svc};
    as_extract_opts_t o = {.error_services = &services};
    rows = extract(b, &o);
    ASSERT_EQ_INT(rows.n, 1);
    const as_row_t *r = &rows.v[0];
    ASSERT_TRUE(r->failed);
    ASSERT_EQ_STR(col(r, AS_COL_PLATFORM_TYPE), "service");
    ASSERT_EQ_STR(col(r, AS_COL_GROUP_NAME), "fastapi-app");
    ASSERT_EQ_STR(col(r, AS_COL_PROCESS_NAME), "POST /orders");
    ASSERT_EQ_STR(col(r, AS_COL_HOST_NAME), "api-1");
    /* The status message first; the exception event fills the rest. */
    ASSERT_EQ_STR(col(r, AS_COL_ERROR_MESSAGE), "HTTP 500");
    ASSERT_EQ_STR(col(r, AS_COL_ERROR_TYPE), "ValueError");
    ASSERT_EQ_STR(col(r, AS_COL_STACK_TRACE), "Traceback (most recent call last)");
    as_rows_free(&rows);
    om_batch_release(b);
}

static om_keyvalue_t *find_kv(om_span_t *s, const char *key)
{
    for (size_t i = 0; i < s->n_attributes; i++) {
        if (strcmp(s->attributes[i]->key, key) == 0) {
            return s->attributes[i];
        }
    }
    return NULL;
}

static bool valid_utf8(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        int n = *p < 0x80 ? 1 : (*p & 0xe0) == 0xc0 ? 2 : (*p & 0xf0) == 0xe0 ? 3 : 4;
        for (int i = 1; i < n; i++) {
            if ((p[i] & 0xc0) != 0x80) {
                return false;
            }
        }
        p += n;
    }
    return true;
}

static void test_bad_input(void)
{
    om_batch_t *b = om_testdata_otlp(
        "span a trace:" TRACE " id:0000000000000001 etl.process_name=42 etl.group_name=true"
        " etl.source_count='12 rows' etl.target_count=' 7 ' etl.process_count=1.5"
        " etl.error='x' etl.stacktrace='' etl.source_system_name=placeholder"
        " etl.target_system_name=placeholder etl.start_time=17");
    om_err_t err = {0};
    ASSERT_EQ_INT(om_batch_decode(b, &err), 0);
    om_span_t *s = b->traces->resource_spans[0]->scope_spans[0]->spans[0];
    /* A 1 MiB stack trace of 3-byte characters, whose cut falls inside one. */
    size_t big = 1 << 20;
    char *trace = om_arena_alloc(b->arenas[0], big + 1);
    ASSERT_TRUE(trace != NULL);
    for (size_t i = 0; i + 3 <= big; i += 3) {
        memcpy(trace + i, "\xea\xb0\x80", 3); /* 가 */
    }
    trace[big - big % 3] = '\0';
    find_kv(s, "etl.stacktrace")->value->string_value = trace;
    /* Invalid UTF-8: a lone continuation byte, a truncated sequence, an overlong '/'. */
    find_kv(s, "etl.source_system_name")->value->string_value = "a\x80"
                                                                "b\xe2\x82"
                                                                "c\xc0\xaf";
    /* 300 bytes where 255 fit. */
    static char longname[301];
    memset(longname, 'n', 300);
    find_kv(s, "etl.target_system_name")->value->string_value = longname;
    as_rows_t rows = extract(b, NULL);
    ASSERT_EQ_INT(rows.n, 1);
    const as_row_t *r = &rows.v[0];
    ASSERT_EQ_STR(col(r, AS_COL_PROCESS_NAME), "42");
    ASSERT_EQ_STR(col(r, AS_COL_GROUP_NAME), "true");
    ASSERT_TRUE(!r->has_source_count); /* garbage: NULL */
    ASSERT_TRUE(r->has_target_count);
    ASSERT_EQ_INT(r->target_count, 7);
    ASSERT_TRUE(r->text[AS_COL_STACK_TRACE] != NULL);
    size_t n = strlen(r->text[AS_COL_STACK_TRACE]);
    ASSERT_TRUE(n <= 65535 && n > 65530);
    ASSERT_EQ_INT(n % 3, 0);
    ASSERT_TRUE(valid_utf8(r->text[AS_COL_STACK_TRACE]));
    ASSERT_EQ_STR(col(r, AS_COL_SOURCE_SYSTEM_NAME), "a\xef\xbf\xbd"
                                                     "b\xef\xbf\xbd\xef\xbf\xbd"
                                                     "c\xef\xbf\xbd\xef\xbf\xbd");
    ASSERT_EQ_INT(strlen(col(r, AS_COL_TARGET_SYSTEM_NAME)), 255);
    ASSERT_TRUE(!r->has_start); /* neither the span nor the int etl.start_time give one */
    as_rows_free(&rows);
    om_batch_release(b);
}

/* as_key_find is memmem, and as_any_key memmem of any of its keys: on random bytes over a small
 * alphabet (so that keys, their parts and their '_' come often), every start offset and length,
 * keys with a '_' at the start, in the middle, at the end, twice, and none; a key at the very end
 * and one cut by it. */
static void test_key_find_is_memmem(void)
{
    static const char *const keys[] = {
        "task_id", "etl.process_name", "_", "_a", "a_", "a_b_a", "ab", "", "__"};
    static const char alphabet[] = "_abtaskid.";
    uint64_t rng = 7;
    uint8_t buf[96];
    for (int round = 0; round < 3000; round++) {
        for (size_t i = 0; i < sizeof buf; i++) {
            rng = rng * 6364136223846793005u + 1442695040888963407u;
            buf[i] = (uint8_t)alphabet[(rng >> 40) % (sizeof alphabet - 1)];
        }
        if (round % 3 == 0) { /* a whole key somewhere, sometimes at the very end */
            const char *k = keys[(rng >> 20) % 2];
            size_t at = round % 2 ? sizeof buf - strlen(k) : (rng >> 8) % (sizeof buf - 16);
            memcpy(buf + at, k, strlen(k));
        }
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
            size_t klen = strlen(keys[k]);
            for (size_t from = 0; from <= sizeof buf; from += 7) {
                for (size_t n = 0; from + n <= sizeof buf; n += 1 + n / 4) {
                    const void *want = memmem(buf + from, n, keys[k], klen);
                    ASSERT_TRUE(as_key_find(buf + from, n, keys[k], klen) == want);
                }
            }
        }
        /* as_any_key is "memmem finds one of them", for every pair of keys (one pass when
         * both have a '_', as_key_find per key otherwise) and for all of them at once. */
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
            for (size_t j = 0; j < sizeof keys / sizeof keys[0]; j++) {
                const char *pair[2] = {keys[k], keys[j]};
                for (size_t from = 0; from <= sizeof buf; from += 7) {
                    for (size_t n = 0; from + n <= sizeof buf; n += 1 + n / 4) {
                        bool want = memmem(buf + from, n, pair[0], strlen(pair[0])) != NULL ||
                                    memmem(buf + from, n, pair[1], strlen(pair[1])) != NULL;
                        ASSERT_TRUE(as_any_key(buf + from, n, pair, 2) == want);
                    }
                }
            }
        }
        bool any = false;
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
            any = any || memmem(buf, sizeof buf, keys[k], strlen(keys[k])) != NULL;
        }
        ASSERT_TRUE(as_any_key(buf, sizeof buf, keys, sizeof keys / sizeof keys[0]) == any);
    }
    static const uint8_t tail[] = "xx etl.process_nam";
    ASSERT_TRUE(as_key_find(tail, sizeof tail - 1, "etl.process_name", 16) == NULL);
}

/* The pre-check never says "no" to a batch with runs, and says "no" to plain spans. */
static void test_wire_precheck(void)
{
    char *svc[] = {"fastapi-app"};
    om_strlist_t services = {.n = 1, .items = svc};
    as_extract_opts_t o = {.error_services = &services};
    const char *cases[] = {
        etl_span(),
        "span extract dag_id=d task_id=t state=failed",
        "span 'task_run.x' airflow.dag_id=d airflow.task_id=x airflow.task_instance.state=failed",
        "resource service.name=fastapi-app; span 'GET /' status:error",
        "resource service.name=web; span 'GET /' status:error http.route=/; span b",
        "span 'task_id-lookalike' kind:server",
        "resource service.name=fastapi-app host.name=h; span a status:error message:m;"
        "event exception exception.type=E exception.stacktrace=st; span b status:ok;"
        "resource service.name=etl; span c trace:" TRACE " id:0000000000000009"
        " etl.process_name=p etl.source_count='3' etl.error=x start:" T_START " end:" T_END,
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        om_batch_t *b = om_testdata_otlp("%s", cases[i]);
        size_t len = om_batch_proto_size(b);
        uint8_t *buf = malloc(len + 1);
        ASSERT_TRUE(buf != NULL);
        om_batch_proto_pack(b, buf);
        as_rows_t wire_rows = {0};
        ASSERT_EQ_INT(as_rows_extract_wire(buf, len, &o, &wire_rows), 0);
        as_rows_t rows = extract(b, &o);
        ASSERT_TRUE(as_rows_equal(&rows, &wire_rows));
        as_rows_free(&wire_rows);
        bool maybe = as_wire_maybe(buf, len, &o);
        ASSERT_TRUE(rows.n == 0 || maybe);
        ASSERT_EQ_INT(as_req_maybe(b->traces, &o), rows.n > 0);
        if (i == 4) {
            ASSERT_TRUE(!maybe); /* the batch a forward path mostly sees */
        }
        as_rows_free(&rows);
        free(buf);
        om_batch_release(b);
    }
}

static void test_urls(void)
{
    om_err_t err = {0};
    as_url_t u;
    ASSERT_EQ_INT(as_url_parse("sqlite:////var/lib/otelmon/a.db", &u, &err), 0);
    ASSERT_EQ_INT(u.kind, AS_DB_SQLITE);
    ASSERT_EQ_STR(u.path, "/var/lib/otelmon/a.db");
    as_url_free(&u);
    ASSERT_EQ_INT(as_url_parse("sqlite:///data/a.db", &u, &err), 0);
    ASSERT_EQ_STR(u.path, "data/a.db");
    as_url_free(&u);
    ASSERT_EQ_INT(as_url_parse("mysql://otelmon:p%40ss:w@db.example:3307/otelmon", &u, &err), 0);
    ASSERT_EQ_INT(u.kind, AS_DB_MARIADB);
    ASSERT_EQ_STR(u.user, "otelmon");
    ASSERT_EQ_STR(u.password, "p@ss:w");
    ASSERT_EQ_STR(u.host, "db.example");
    ASSERT_EQ_INT(u.port, 3307);
    ASSERT_EQ_STR(u.dbname, "otelmon");
    as_url_free(&u);
    ASSERT_EQ_INT(as_url_parse("mysql+pymysql://u@localhost/d?unix_socket=/tmp/s.sock", &u, &err),
                  0);
    ASSERT_EQ_INT(u.port, 3306);
    ASSERT_TRUE(u.password == NULL);
    ASSERT_EQ_STR(u.socket, "/tmp/s.sock");
    as_url_free(&u);
    const char *bad[] = {"",
                         "sqlite://",
                         "sqlite:///",
                         "postgresql://u@h/d",
                         "mysql://u@h",
                         "mysql://u@h:99999/d",
                         "mysql://u@h/d?ssl_ca=/x",
                         "mysql://u:%4@h/d",
                         "mysql://u@h/"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        om_err_t e = {0};
        ASSERT_EQ_INT(as_url_parse(bad[i], &u, &e), OM_ECONFIG);
        ASSERT_TRUE(e.msg[0] != '\0');
    }
    om_err_t e = {0};
    as_url_parse("mysql://u@h/d?ssl=true", &u, &e);
    ASSERT_CONTAINS(e.msg, "use the exporter's tls section");
}

/* The config error of "c: <yaml>" for the alarmstore exporter, "" when it is valid. */
static const char *config_error(const char *yaml)
{
    return om_test_config_error(&exp_alarmstore_factory, yaml);
}

static void test_config(void)
{
    ASSERT_EQ_STR(config_error("{}"), "");
    ASSERT_EQ_STR(config_error("{database: 'sqlite:///x.db', error_spans: {services: [a, b]},"
                               " timeout: 2s, retry_on_failure: {enabled: true},"
                               " sending_queue: {queue_size: 10}}"),
                  "");
    ASSERT_CONTAINS(config_error("{notify: {dedup_window: 1h, webhook: {endpoint: x}}}"),
                    "notify::webhook::endpoint");
    ASSERT_EQ_STR(config_error("{api: {endpoint: 'localhost:8890'}}"), "");
    ASSERT_CONTAINS(config_error("{notify: {dedup_windo: 1h}}"), "dedup_windo");
    ASSERT_CONTAINS(config_error("{database: 'postgresql://x/y'}"), "unknown database URL");
    ASSERT_CONTAINS(config_error("{error_spans: {services: ['']}}"), "must not be empty");
}

static void test_notify_config(void)
{
    ASSERT_EQ_STR(config_error("{notify: {dedup_window: 10m, digest: {at: '08:00'},"
                               " retry: {initial_interval: 1s, max_interval: 1m},"
                               " webhook: {endpoint: 'https://hooks.example/x', headers: {A: b},"
                               " timeout: 3s},"
                               " email: {endpoint: 'smtp://mail.example:25', from: a@example.com,"
                               " to: [b@example.com]}}}"),
                  "");
    ASSERT_EQ_STR(config_error("{notify: {immediate: false, digest: {at: '23:59:30'},"
                               " webhook: {endpoint: 'http://127.0.0.1:9/'}}}"),
                  "");
    ASSERT_CONTAINS(config_error("{notify: {dedup_window: 1h}}"), "notify: name a notifier");
    ASSERT_CONTAINS(config_error("{notify: {digest: {at: '8:00'}, webhook: {endpoint: "
                                 "'http://h/'}}}"),
                    "notify::digest::at: \"8:00\" is no UTC time of day");
    ASSERT_CONTAINS(config_error("{notify: {immediate: false, webhook: {endpoint: 'http://h/'}}}"),
                    "notify::immediate: immediate: false reports failures by the digest only");
    ASSERT_CONTAINS(config_error("{notify: {webhook: {headers: {a: b}}}}"),
                    "notify::webhook::endpoint: a webhook needs an endpoint");
    ASSERT_CONTAINS(config_error("{notify: {webhook: {endpoint: 'ftp://h/'}}}"),
                    "notify::webhook::endpoint");
    ASSERT_CONTAINS(config_error("{notify: {webhook: {endpoint: 'http://h/', middlewares: [x]}}}"),
                    "middlewares");
    ASSERT_CONTAINS(config_error("{notify: {webhook: {endpoint: 'http://h/',"
                                 " tls: {min_version: '1.9'}}}}"),
                    "notify::webhook::tls");
    ASSERT_CONTAINS(config_error("{notify: {email: {endpoint: 'smtp://m:25', from: a@b,"
                                 " to: ['x y@b']}}}"),
                    "notify::email");
    ASSERT_CONTAINS(config_error("{notify: {email: {endpoint: 'smtp://mail.example:25',"
                                 " starttls: false, username: u, password: p, from: a@b,"
                                 " to: [c@d]}}}"),
                    "notify::email");
    ASSERT_CONTAINS(config_error("{notify: {retry: {initial_interval: 1m, max_interval: 1s},"
                                 " webhook: {endpoint: 'http://h/'}}}"),
                    "notify::retry::max_interval");
}

static void test_daytime(void)
{
    ASSERT_EQ_INT(as_parse_daytime("00:00"), 0);
    ASSERT_EQ_INT(as_parse_daytime("08:00"), 8 * 3600);
    ASSERT_EQ_INT(as_parse_daytime("23:59:59"), 86399);
    const char *bad[] = {"24:00", "8:00", "08:60", "08:00:60", "0800",   "08:00 ",
                         "-1:00", "",     "08:0a", "+8:00",    "08:00:0"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ASSERT_EQ_INT(as_parse_daytime(bad[i]), -1);
    }
    int64_t ns;
    ASSERT_TRUE(as_parse_db_time("2024-05-01 01:00:02.5", &ns));
    ASSERT_EQ_INT(ns, 1714525202500000000LL);
    ASSERT_TRUE(as_parse_db_time("2024-05-01 01:00:02", &ns));
    ASSERT_TRUE(!as_parse_db_time("yesterday", &ns));
    char t[40];
    as_rfc3339("2024-05-01 01:00:02.500000", t);
    ASSERT_EQ_STR(t, "2024-05-01T01:00:02.5Z");
    as_rfc3339("2024-05-01 01:00:02.000000", t);
    ASSERT_EQ_STR(t, "2024-05-01T01:00:02Z");
    as_rfc3339("2024-05-01 01:00:02", t);
    ASSERT_EQ_STR(t, "2024-05-01T01:00:02Z");
}

/* Alarms of one pair for the plan: created at the given seconds after T0. */
#define PLAN_T0 ((int64_t)1714525200 * OM_NS_PER_S)
static void plan_alarms(as_alarm_t *v, size_t n, const int *created_s, const char *retry)
{
    memset(v, 0, n * sizeof *v);
    for (size_t i = 0; i < n; i++) {
        char t[32];
        as_format_time(PLAN_T0 + created_s[i] * OM_NS_PER_S, t);
        v[i].id = (int64_t)i + 1;
        v[i].created_at = om_strdup(t);
        v[i].next_attempt_at = retry != NULL ? om_strdup(retry) : NULL;
    }
}

static void plan_free(as_alarm_t *v, size_t n, as_notices_t *out)
{
    for (size_t i = 0; i < n; i++) {
        as_alarm_free(&v[i]);
    }
    as_notices_free(out);
}

static void test_plan_pair(void)
{
    as_alarm_t v[5];
    as_notices_t out = {0};
    as_plan_in_t in = {.now_ns = PLAN_T0 + 10 * OM_NS_PER_S,
                       .window_ns = 60 * OM_NS_PER_S,
                       .notifiers = AS_NOTIFIER_WEBHOOK | AS_NOTIFIER_EMAIL};
    /* The pair's first failures: the oldest at once, the others at the end of its window. */
    const int c3[] = {1, 2, 3};
    plan_alarms(v, 3, c3, NULL);
    ASSERT_EQ_INT(as_plan_pair(&in, v, 3, 0, &out), 0);
    ASSERT_EQ_INT(out.n, 1);
    ASSERT_EQ_INT(out.v[0].n, 1);
    ASSERT_EQ_INT(out.v[0].v[0].id, 1);
    ASSERT_EQ_INT(out.v[0].need, AS_NOTIFIER_WEBHOOK | AS_NOTIFIER_EMAIL);
    ASSERT_EQ_INT(out.next_wake_ns, in.now_ns + in.window_ns);
    plan_free(v, 3, &out);
    /* Notified 5 s ago: wait for the window's end. */
    plan_alarms(v, 2, c3 + 1, NULL);
    ASSERT_EQ_INT(as_plan_pair(&in, v, 2, PLAN_T0 + 5 * OM_NS_PER_S, &out), 0);
    ASSERT_EQ_INT(out.n, 0);
    ASSERT_EQ_INT(out.next_wake_ns, PLAN_T0 + 65 * OM_NS_PER_S);
    plan_free(v, 2, &out);
    /* The window over: the alarms that came within it, counted in one notice. */
    in.now_ns = PLAN_T0 + 70 * OM_NS_PER_S;
    plan_alarms(v, 2, c3 + 1, NULL);
    ASSERT_EQ_INT(as_plan_pair(&in, v, 2, PLAN_T0 + 1 * OM_NS_PER_S, &out), 0);
    ASSERT_EQ_INT(out.n, 1);
    ASSERT_EQ_INT(out.v[0].n, 2);
    plan_free(v, 2, &out);
    /* A notice waiting for its retry is held back, and woken then. */
    plan_alarms(v, 1, c3, "2024-05-01 01:02:00.000000");
    ASSERT_EQ_INT(as_plan_pair(&in, v, 1, 0, &out), 0);
    ASSERT_EQ_INT(out.n, 0);
    ASSERT_EQ_INT(out.next_wake_ns, PLAN_T0 + 120 * OM_NS_PER_S);
    plan_free(v, 1, &out);
    /* A retry goes only to the notifier still owing it. */
    plan_alarms(v, 1, c3, "2024-05-01 01:00:30.000000");
    v[0].done = AS_NOTIFIER_WEBHOOK;
    ASSERT_EQ_INT(as_plan_pair(&in, v, 1, 0, &out), 0);
    ASSERT_EQ_INT(out.n, 1);
    ASSERT_EQ_INT(out.v[0].need, AS_NOTIFIER_EMAIL);
    plan_free(v, 1, &out);
    /* Window 0: every alarm alone. */
    in.window_ns = 0;
    plan_alarms(v, 3, c3, NULL);
    ASSERT_EQ_INT(as_plan_pair(&in, v, 3, PLAN_T0 + 9 * OM_NS_PER_S, &out), 0);
    ASSERT_EQ_INT(out.n, 3);
    plan_free(v, 3, &out);
}

static void test_notice_texts(void)
{
    as_alarm_t a = {.id = 7,
                    .group = (char *)"g<1>",
                    .process = (char *)"p\"q",
                    .host = (char *)"h",
                    .error_type = (char *)"E",
                    .error_message = (char *)"line1\nline2 <script>&",
                    .stack_trace = (char *)"a<b>\nc",
                    .start_time = (char *)"2024-05-01 01:00:00.000000",
                    .end_time = (char *)"2024-05-01 01:00:02.500000",
                    .trace_id = (char *)TRACE};
    as_notice_t nt = {.v = &a, .n = 1};
    om_strbuf_t sb;
    om_strbuf_init(&sb, 0);
    as_notice_webhook_json(&nt, &sb);
    om_arena_t *arena = om_arena_new(0);
    const om_json_t *root = NULL;
    om_err_t err = {0};
    ASSERT_EQ_INT(om_json_parse(arena, sb.data, sb.len, &root, &err), 0);
    ASSERT_EQ_STR(om_json_get(root, "process")->u.s, "p\"q");
    ASSERT_EQ_STR(om_json_get(root, "error_message")->u.s, "line1\nline2 <script>&");
    ASSERT_EQ_STR(om_json_get(root, "end_time")->u.s, "2024-05-01T01:00:02.5Z");
    ASSERT_EQ_STR(om_json_get(root, "text")->u.s,
                  "OtelMon: FAILED g<1>/p\"q on h: E: line1\nline2 <script>&");
    ASSERT_TRUE(om_json_get(root, "platform")->type == OM_JSON_NULL);
    om_arena_unref(arena);
    om_strbuf_t subject, text, html;
    om_strbuf_init(&subject, 0);
    om_strbuf_init(&text, 0);
    om_strbuf_init(&html, 0);
    as_notice_mail(&nt, &subject, &text, &html);
    ASSERT_CONTAINS(html.data, "<td>g&lt;1&gt;</td>");
    ASSERT_CONTAINS(html.data, "<td>line1\nline2 &lt;script&gt;&amp;</td>");
    ASSERT_CONTAINS(html.data, "<pre>a&lt;b&gt;\nc</pre>");
    ASSERT_TRUE(strstr(html.data, "<script>") == NULL);
    ASSERT_CONTAINS(text.data, "Error       line1\nline2 <script>&\n");
    ASSERT_CONTAINS(text.data, "Ended       2024-05-01T01:00:02.5Z\n");
    om_strbuf_free(&sb);
    om_strbuf_free(&subject);
    om_strbuf_free(&text);
    om_strbuf_free(&html);
}

/* MariaDB's tls section: what libmariadb can do is taken, the rest refused by name. */
static void test_tls_config(void)
{
#define MY "database: 'mysql://u:p@db:3306/otelmon', "
    ASSERT_EQ_STR(config_error("{" MY "tls: {ca_file: /ca.pem}}"), "");
    ASSERT_EQ_STR(config_error("{" MY "tls: {ca_file: /ca.pem, cert_file: /c.pem, key_file: /k.pem,"
                               " min_version: '1.3', cipher_suites: []}}"),
                  "");
    ASSERT_EQ_STR(config_error("{" MY "tls: {insecure_skip_verify: true}}"), "");
    ASSERT_EQ_STR(config_error("{" MY "tls: {insecure: true}}"), "");
    ASSERT_CONTAINS(config_error("{tls: {ca_file: /x}}"), "tls: TLS is for a MariaDB");
    ASSERT_CONTAINS(config_error("{" MY "tls: {ca_pem: 'x'}}"),
                    "tls: ca_pem, cert_pem and key_pem");
    ASSERT_CONTAINS(config_error("{" MY "tls: {ca_file: /x, include_system_ca_certs_pool: true}}"),
                    "tls: include_system_ca_certs_pool with ca_file");
    ASSERT_CONTAINS(config_error("{" MY "tls: {curve_preferences: [X25519]}}"),
                    "tls: curve_preferences is not supported");
    ASSERT_CONTAINS(config_error("{" MY "tls: {server_name_override: db.example}}"),
                    "tls: server_name_override is not supported");
    ASSERT_CONTAINS(config_error("{" MY "tls: {reload_interval: 1h}}"),
                    "tls: reload_interval is not supported");
    ASSERT_CONTAINS(config_error("{" MY "tls: {cert_file: /c.pem}}"), "both certificate and key");
    ASSERT_CONTAINS(config_error("{" MY "tls: {ca_fil: /x}}"), "ca_fil");
#undef MY
}

/* ------------------------------------------------------------------------------------------ */
/* SQLite                                                                                     */

static char tmpdir[64];

static const char *tmp_path(const char *name)
{
    static char p[160];
    if (tmpdir[0] == '\0') {
        snprintf(tmpdir, sizeof tmpdir, "/tmp/om_alarmstore_XXXXXX");
        if (mkdtemp(tmpdir) == NULL) {
            abort();
        }
    }
    snprintf(p, sizeof p, "%s/%s", tmpdir, name);
    return p;
}

/* The first column of the first row of sql, as text ("" for none, "NULL" for NULL). */
static const char *query1(const char *path, const char *sql)
{
    static char out[256];
    snprintf(out, sizeof out, "(error)");
    sqlite3 *db;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        sqlite3_close(db);
        return out;
    }
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            const unsigned char *t = sqlite3_column_text(st, 0);
            snprintf(out, sizeof out, "%s", t != NULL ? (const char *)t : "NULL");
        } else if (rc == SQLITE_DONE) {
            out[0] = '\0';
        }
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return out;
}

static void test_sqlite_store_idempotent(void)
{
    char path[160];
    snprintf(path, sizeof path, "%s", tmp_path("store/sub/a.db"));
    char url[200];
    snprintf(url, sizeof url, "sqlite:///%s", path);
    ASSERT_EQ_INT(mkdir(tmp_path("store"), 0700), 0);
    ASSERT_EQ_INT(mkdir(tmp_path("store/sub"), 0700), 0);
    om_err_t err = {0};
    as_url_t u;
    ASSERT_EQ_INT(as_url_parse(url, &u, &err), 0);
    const as_backend_t *be;
    as_conn_t *c;
    ASSERT_EQ_INT(as_db_open(&u, NULL, 1000, &be, &c, &err), 0);
    om_batch_t *b =
        om_testdata_otlp("%s; span f trace:" TRACE " id:00000000000000f1 status:error message:boom "
                         "start:" T_START " end:" T_END " etl.process_name=p2 etl.group_name=g",
                         etl_span());
    as_rows_t rows = extract(b, NULL);
    ASSERT_EQ_INT(rows.n, 2);
    as_store_result_t res;
    ASSERT_EQ_INT(as_db_store(be, c, &rows, &res, &err), 0);
    ASSERT_EQ_INT(res.inserted, 2);
    /* The same batch again (a retry after a timeout): nothing new, no second alarm. */
    ASSERT_EQ_INT(as_db_store(be, c, &rows, &res, &err), 0);
    ASSERT_EQ_INT(res.inserted, 0);
    ASSERT_EQ_INT(res.duplicates, 2);
    be->close(c);
    ASSERT_EQ_STR(query1(path, "SELECT COUNT(*) FROM process_executions"), "2");
    ASSERT_EQ_STR(query1(path, "SELECT COUNT(*) FROM alarms"), "1");
    ASSERT_EQ_STR(query1(path, "SELECT COUNT(*) FROM alert_history"), "0");
    ASSERT_EQ_STR(query1(path, "SELECT version FROM schema_version"), "2");
    ASSERT_EQ_STR(query1(path, "SELECT success || '|' || host_name || '|' || start_time || '|' ||"
                               " end_time || '|' || duration_seconds || '|' || source_count ||"
                               " '|' || typeof(source_count) FROM process_executions"
                               " WHERE process_name = 'load_orders'"),
                  "SUCCESS|etl-host-1|2024-05-01 01:00:00.000000|2024-05-01 01:01:30.500000|"
                  "90.5|1200|integer");
    ASSERT_EQ_STR(query1(path, "SELECT p.success || '|' || p.error_message || '|' || a.state ||"
                               " '|' || a.group_name || '|' || a.process_name || '|' ||"
                               " a.notify_attempts FROM alarms a JOIN process_executions p"
                               " ON p.id = a.process_execution_id"),
                  "FAILED|boom|open|g|p2|0");
    ASSERT_EQ_STR(query1(path, "SELECT error_message IS NULL FROM process_executions"
                               " WHERE process_name = 'load_orders'"),
                  "1");
    /* Opening again finds the schema current. */
    ASSERT_EQ_INT(as_db_open(&u, NULL, 1000, &be, &c, &err), 0);
    be->close(c);
    as_rows_free(&rows);
    om_batch_release(b);
    as_url_free(&u);
}

/* The alarms' database side on SQLite: what is due, recording a send (notified, retry,
 * given up), the dedup window read from alert_history, the digest. */
static void test_sqlite_alarms_flow(void)
{
    const char *path = tmp_path("alarms.db");
    as_url_t u = {.kind = AS_DB_SQLITE, .path = (char *)path};
    om_err_t err = {0};
    const as_backend_t *be;
    as_conn_t *c;
    ASSERT_EQ_INT(as_db_open(&u, NULL, 1000, &be, &c, &err), 0);
    om_batch_t *b =
        om_testdata_otlp("resource host.name=h1; scope s;"
                         "span a trace:" TRACE " id:00000000000000a1 start:" T_START " end:" T_END
                         " etl.process_name=p etl.group_name=g etl.error=e1 etl.stacktrace='x<y>';"
                         "span b trace:" TRACE " id:00000000000000a2 start:" T_START " end:" T_END
                         " etl.process_name=p etl.group_name=g etl.error=e2;"
                         "span c trace:" TRACE " id:00000000000000a3 start:" T_START " end:" T_END
                         " etl.process_name=q etl.group_name=g etl.error=e3;"
                         "span d trace:" TRACE " id:00000000000000a4 start:" T_START " end:" T_END
                         " etl.process_name=ok etl.group_name=g");
    as_rows_t rows = extract(b, NULL);
    as_store_result_t res;
    ASSERT_EQ_INT(as_db_store(be, c, &rows, &res, &err), 0);
    as_rows_free(&rows);
    om_batch_release(b);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now = (int64_t)ts.tv_sec * OM_NS_PER_S + ts.tv_nsec;
    unsigned both = AS_NOTIFIER_WEBHOOK | AS_NOTIFIER_EMAIL;
    as_plan_in_t in = {.now_ns = now, .window_ns = 3600 * OM_NS_PER_S, .notifiers = both};
    as_notices_t due = {0};
    ASSERT_EQ_INT(as_alarms_due(be, c, &in, &due, &err), 0);
    /* p's first alarm and q's; p's second waits for the window. */
    ASSERT_EQ_INT(due.n, 2);
    ASSERT_EQ_STR(due.v[0].v[0].error_message, "e1");
    ASSERT_EQ_STR(due.v[0].v[0].stack_trace, "x<y>");
    ASSERT_EQ_STR(due.v[0].v[0].host, "h1");
    ASSERT_EQ_STR(due.v[0].v[0].end_time, "2024-05-01 01:01:30.500000");
    ASSERT_EQ_STR(due.v[1].v[0].process, "q");
    /* p1 went to both; q: the webhook refused it for good, e-mail is down. */
    as_outcome_t ok = {.ok = both};
    ASSERT_EQ_INT(as_alarms_record(be, c, &due.v[0], &ok, both, false, now, &err), 0);
    as_outcome_t half = {.gave_up = AS_NOTIFIER_WEBHOOK, .retry_at_ns = now + OM_NS_PER_S};
    snprintf(half.last_error, sizeof half.last_error, "webhook: HTTP 400; email: refused");
    ASSERT_EQ_INT(as_alarms_record(be, c, &due.v[1], &half, both, false, now, &err), 0);
    be->close(c);
    ASSERT_EQ_STR(query1(path, "SELECT group_concat(process_name || ':' || state || ':' ||"
                               " notify_attempts || ':' || notifiers_done, ' ') FROM"
                               " (SELECT * FROM alarms ORDER BY id)"),
                  "p:notified:1:3 p:open:0:0 q:open:1:256");
    ASSERT_EQ_STR(query1(path, "SELECT last_error FROM alarms WHERE process_name = 'q'"),
                  "webhook: HTTP 400; email: refused");
    ASSERT_EQ_STR(query1(path, "SELECT COUNT(*) FROM alert_history"), "1");
    ASSERT_EQ_INT(as_db_open(&u, NULL, 1000, &be, &c, &err), 0);
    /* Now: p is inside its window; q's retry is in a second, and only e-mail owes it. */
    as_notices_free(&due);
    ASSERT_EQ_INT(as_alarms_due(be, c, &in, &due, &err), 0);
    ASSERT_EQ_INT(due.n, 0);
    ASSERT_TRUE(llabs(due.next_wake_ns - (now + OM_NS_PER_S)) < 1000); /* microseconds stored */
    in.now_ns = now + 2 * OM_NS_PER_S;
    ASSERT_EQ_INT(as_alarms_due(be, c, &in, &due, &err), 0);
    ASSERT_EQ_INT(due.n, 1);
    ASSERT_EQ_INT(due.v[0].need, AS_NOTIFIER_EMAIL);
    /* E-mail refuses too: q is given up. */
    as_outcome_t no = {.gave_up = AS_NOTIFIER_EMAIL};
    snprintf(no.last_error, sizeof no.last_error, "email: 550");
    ASSERT_EQ_INT(as_alarms_record(be, c, &due.v[0], &no, both, false, now, &err), 0);
    as_notices_free(&due);
    /* The digest: q (given up) and p's second (open), not p's first. */
    as_notice_t d;
    ASSERT_EQ_INT(as_alarms_digest(be, c, now, &d, &err), 0);
    ASSERT_EQ_INT(d.n, 2);
    ASSERT_EQ_STR(d.v[0].error_message, "e2");
    ASSERT_EQ_STR(d.v[1].state, "failed");
    as_outcome_t dok = {.ok = AS_NOTIFIER_EMAIL};
    ASSERT_EQ_INT(as_alarms_record(be, c, &d, &dok, both, false, now, &err), 0);
    for (size_t i = 0; i < d.n; i++) {
        as_alarm_free(&d.v[i]);
    }
    om_free(d.v);
    ASSERT_EQ_INT(as_alarms_digest(be, c, now, &d, &err), 0);
    ASSERT_EQ_INT(d.n, 0);
    om_free(d.v);
    be->close(c);
    ASSERT_EQ_STR(query1(path, "SELECT COUNT(*) FROM alarms WHERE digested_at IS NOT NULL"), "2");
    ASSERT_EQ_STR(query1(path, "SELECT state FROM alarms WHERE process_name = 'q'"), "failed");
}

static void test_sqlite_newer_schema_refused(void)
{
    const char *path = tmp_path("newer.db");
    sqlite3 *db;
    ASSERT_EQ_INT(sqlite3_open(path, &db), SQLITE_OK);
    ASSERT_EQ_INT(sqlite3_exec(db,
                               "CREATE TABLE schema_version (version INTEGER NOT NULL);"
                               "INSERT INTO schema_version VALUES (99)",
                               NULL, NULL, NULL),
                  SQLITE_OK);
    sqlite3_close(db);
    as_url_t u = {.kind = AS_DB_SQLITE, .path = (char *)path};
    om_err_t err = {0};
    const as_backend_t *be;
    as_conn_t *c;
    ASSERT_EQ_INT(as_db_open(&u, NULL, 1000, &be, &c, &err), OM_ECONFIG);
    ASSERT_CONTAINS(err.msg, "schema is at version 99, newer than this otelmon knows (2)");
}

static void test_sqlite_locked_is_retryable(void)
{
    const char *path = tmp_path("locked.db");
    as_url_t u = {.kind = AS_DB_SQLITE, .path = (char *)path};
    om_err_t err = {0};
    const as_backend_t *be;
    as_conn_t *c;
    ASSERT_EQ_INT(as_db_open(&u, NULL, 50, &be, &c, &err), 0);
    sqlite3 *other;
    ASSERT_EQ_INT(sqlite3_open(path, &other), SQLITE_OK);
    ASSERT_EQ_INT(sqlite3_exec(other, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
    om_batch_t *b = om_testdata_otlp("%s", etl_span());
    as_rows_t rows = extract(b, NULL);
    as_store_result_t res;
    ASSERT_EQ_INT(as_db_store(be, c, &rows, &res, &err), OM_EAGAIN);
    ASSERT_CONTAINS(err.msg, "locked");
    sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(other);
    om_err_t err2 = {0};
    ASSERT_EQ_INT(as_db_store(be, c, &rows, &res, &err2), 0);
    ASSERT_EQ_INT(res.inserted, 1);
    be->close(c);
    as_rows_free(&rows);
    om_batch_release(b);
}

/* A row the database refuses for good is skipped; the rows after it are stored, in the same
 * transaction. The refusal is made by a trigger, as a constraint of an operator's would. */
static void test_sqlite_refused_row_is_skipped(void)
{
    const char *path = tmp_path("refused.db");
    as_url_t u = {.kind = AS_DB_SQLITE, .path = (char *)path};
    om_err_t err = {0};
    const as_backend_t *be;
    as_conn_t *c;
    ASSERT_EQ_INT(as_db_open(&u, NULL, 1000, &be, &c, &err), 0);
    ASSERT_EQ_INT(be->exec(c,
                           "CREATE TRIGGER no_bad BEFORE INSERT ON process_executions"
                           " WHEN NEW.process_name = 'bad' BEGIN SELECT RAISE(ABORT, 'no bad');"
                           " END",
                           &err),
                  0);
    om_batch_t *b = om_testdata_otlp(
        "span a trace:" TRACE " id:0000000000000001 etl.process_name=good1 status:error;"
        "span b trace:" TRACE " id:0000000000000002 etl.process_name=bad status:error;"
        "span c trace:" TRACE " id:0000000000000003 etl.process_name=good2");
    as_rows_t rows = extract(b, NULL);
    as_store_result_t res;
    ASSERT_EQ_INT(as_db_store(be, c, &rows, &res, &err), 0);
    ASSERT_EQ_INT(res.inserted, 2);
    ASSERT_EQ_INT(res.refused, 1);
    ASSERT_CONTAINS(res.first_refusal, "span_id 0000000000000002");
    ASSERT_CONTAINS(res.first_refusal, "no bad");
    be->close(c);
    ASSERT_EQ_STR(query1(path, "SELECT group_concat(process_name) FROM process_executions"),
                  "good1,good2");
    ASSERT_EQ_STR(query1(path, "SELECT COUNT(*) FROM alarms"), "1");
    as_rows_free(&rows);
    om_batch_release(b);
}

/* ------------------------------------------------------------------------------------------ */
/* The exporter on a loop                                                                     */

typedef struct fixture {
    uv_loop_t loop;
    om_host_t host;
    exp_as_cfg_t *cfg; /* om_test_config_load's */
    void *self;
    bool done;
} fixture_t;

static void on_done(void *arg)
{
    ((fixture_t *)arg)->done = true;
}

static bool run_until(fixture_t *f, bool (*pred)(fixture_t *), uint64_t ms)
{
    uv_update_time(&f->loop);
    uint64_t deadline = uv_now(&f->loop) + ms;
    while (!pred(f) && uv_now(&f->loop) < deadline) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    return pred(f);
}

static bool is_done(fixture_t *f)
{
    return f->done;
}

static bool two_stored(fixture_t *f)
{
    return om_test_metric(&f->host, "otelcol_exporter_alarmstore_stored_rows", "exporter",
                          "alarmstore", NULL) == 2 &&
           om_test_metric(&f->host, "otelcol_exporter_sent_spans", "exporter", "alarmstore",
                          NULL) >= 3;
}

static void test_exporter_end_to_end(void)
{
    fixture_t f;
    memset(&f, 0, sizeof f);
    ASSERT_EQ_INT(uv_loop_init(&f.loop), 0);
    om_test_host_init(&f.host, &f.loop);
    char yaml[256];
    const char *path = tmp_path("e2e/new/dir/runs.db");
    snprintf(yaml, sizeof yaml, "{database: 'sqlite:///%s', retry_on_failure: {enabled: false}}",
             path);
    const char *why = "";
    f.cfg = om_test_config_load(&exp_alarmstore_factory, yaml, &why);
    ASSERT_EQ_STR(why, "");
    ASSERT_TRUE(f.cfg != NULL);
    om_err_t err = {0};
    om_create_args_t a = {.cfg = f.cfg,
                          .id = "alarmstore",
                          .log_name = "exporter/alarmstore",
                          .host = &f.host,
                          .signals = OM_SIG_TRACES};
    ASSERT_EQ_INT(exp_alarmstore_factory.create(&a, &f.self, &err), 0);
    ASSERT_EQ_INT(exp_alarmstore_factory.start(f.self, &err), 0);
    /* A batch without runs is released without being decoded. */
    om_batch_t *plain = om_testdata_wire(om_testdata_simple(OM_SIG_TRACES, 50, 1));
    ASSERT_TRUE(plain != NULL && plain->msg == NULL);
    om_batch_ref(plain);
    ASSERT_EQ_INT(exp_alarmstore_factory.consume_traces(f.self, plain), 0);
    ASSERT_TRUE(plain->msg == NULL && plain->refs == 1);
    om_batch_release(plain);
    ASSERT_EQ_INT(om_test_metric(&f.host, "otelcol_exporter_alarmstore_skipped_batches", "exporter",
                                 "alarmstore", NULL),
                  1);
    /* Runs, from the wire; then the same batch again. */
    for (int i = 0; i < 2; i++) {
        om_batch_t *b = om_testdata_wire(om_testdata_otlp(
            "%s; span f trace:" TRACE " id:00000000000000f1 status:error etl.process_name=p2;"
            "span other",
            etl_span()));
        ASSERT_EQ_INT(exp_alarmstore_factory.consume_traces(f.self, b), 0);
    }
    ASSERT_TRUE(run_until(&f, two_stored, 10000));
    exp_alarmstore_factory.shutdown(f.self, on_done, &f);
    ASSERT_TRUE(run_until(&f, is_done, 10000));
    ASSERT_EQ_INT(om_test_metric(&f.host, "otelcol_exporter_alarmstore_duplicate_rows", "exporter",
                                 "alarmstore", NULL),
                  2);
    exp_alarmstore_factory.destroy(f.self);
    om_test_host_close(&f.host);
    om_test_config_free(&exp_alarmstore_factory, f.cfg);
    ASSERT_EQ_INT(uv_loop_close(&f.loop), 0);
    ASSERT_EQ_STR(query1(path, "SELECT COUNT(*) FROM process_executions"), "2");
    ASSERT_EQ_STR(query1(path, "SELECT COUNT(*) FROM alarms"), "1");
}

static void test_start_fails_when_directory_cannot_be(void)
{
    om_err_t err = {0};
    char file[160];
    snprintf(file, sizeof file, "%s", tmp_path("plainfile"));
    FILE *fp = fopen(file, "w");
    ASSERT_TRUE(fp != NULL);
    fclose(fp);
    uv_loop_t loop;
    om_host_t host;
    ASSERT_EQ_INT(uv_loop_init(&loop), 0);
    om_test_host_init(&host, &loop);
    exp_as_cfg_t cfg;
    memset(&cfg, 0, sizeof cfg);
    om_diags_t d = {0};
    ASSERT_EQ_INT(om_fields_apply(exp_as_fields, &cfg, NULL, "c", &d), 0);
    om_free(cfg.database);
    char url[200];
    snprintf(url, sizeof url, "sqlite:///%s/sub/x.db", file);
    cfg.database = om_strdup(url);
    om_create_args_t a = {
        .cfg = &cfg, .id = "alarmstore", .log_name = "exporter/alarmstore", .host = &host};
    void *self;
    ASSERT_EQ_INT(exp_alarmstore_factory.create(&a, &self, &err), 0);
    ASSERT_EQ_INT(exp_alarmstore_factory.start(self, &err), OM_EIO);
    ASSERT_CONTAINS(err.msg, "cannot create the directory of the database");
    exp_alarmstore_factory.destroy(self);
    om_test_host_close(&host);
    om_fields_free(exp_as_fields, &cfg);
    ASSERT_EQ_INT(uv_loop_close(&loop), 0);
}

static void test_lifecycle(void)
{
    char cfg[200];
    snprintf(cfg, sizeof cfg, "{database: 'sqlite:///%s'}", tmp_path("lifecycle.db"));
    om_test_lifecycle(&exp_alarmstore_factory, cfg);
}

/* Writes the seed corpus of the fuzz target (AS_WRITE_CORPUS=dir). */
static void write_corpus(const char *dir)
{
    const char *cases[] = {
        etl_span(),
        "span extract dag_id=d task_id=t state=failed error=true try_number=2"
        " start_date='2024-08-01 10:00:00+00:00'",
        "span 'task_run.x' status:error airflow.dag_id=d airflow.task_id=x"
        " airflow.task_instance.state=failed",
        "resource service.name=svc; span 'GET /' status:error message:m; event exception"
        " exception.type=E",
        "span a etl.process_name=1 etl.source_count='12x' etl.start_time='2024-01-01T00:00:00Z'",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        om_batch_t *b = om_testdata_otlp("%s", cases[i]);
        size_t len = om_batch_proto_size(b);
        uint8_t *buf = malloc(len + 1);
        buf[0] = (uint8_t)i; /* the options byte */
        om_batch_proto_pack(b, buf + 1);
        char p[300];
        snprintf(p, sizeof p, "%s/seed-%zu", dir, i);
        FILE *fp = fopen(p, "wb");
        if (fp != NULL) {
            fwrite(buf, 1, len + 1, fp);
            fclose(fp);
        }
        free(buf);
        om_batch_release(b);
    }
}

int main(void)
{
    if (getenv("AS_WRITE_CORPUS") != NULL) {
        write_corpus(getenv("AS_WRITE_CORPUS"));
        return 0;
    }
    OM_RUN(test_etl_success_row);
    OM_RUN(test_etl_failure_rules);
    OM_RUN(test_times_with_offset_are_used);
    OM_RUN(test_airflow2_task_spans);
    OM_RUN(test_airflow3_task_spans);
    OM_RUN(test_error_spans);
    OM_RUN(test_bad_input);
    OM_RUN(test_key_find_is_memmem);
    OM_RUN(test_wire_precheck);
    OM_RUN(test_urls);
    OM_RUN(test_config);
    OM_RUN(test_notify_config);
    OM_RUN(test_daytime);
    OM_RUN(test_plan_pair);
    OM_RUN(test_notice_texts);
    OM_RUN(test_tls_config);
    OM_RUN(test_sqlite_store_idempotent);
    OM_RUN(test_sqlite_alarms_flow);
    OM_RUN(test_sqlite_newer_schema_refused);
    OM_RUN(test_sqlite_locked_is_retryable);
    OM_RUN(test_sqlite_refused_row_is_skipped);
    OM_RUN(test_exporter_end_to_end);
    OM_RUN(test_start_fails_when_directory_cannot_be);
    OM_RUN(test_lifecycle);
    if (tmpdir[0] != '\0') {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
        if (system(cmd) != 0) {
            fprintf(stderr, "could not remove %s\n", tmpdir);
        }
    }
    return om_test_summary();
}
