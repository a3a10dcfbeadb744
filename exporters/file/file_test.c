/* file_test.c: the file exporter: JSON lines for each signal, proto framing, append versus
 * truncate, refusal when the queue is full, drain at shutdown, and a missing directory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "file.h"
#include "om_test.h"
#include "om_testdata.h"

extern const om_factory_t exp_file_factory;

typedef struct fixture {
    uv_loop_t loop;
    om_host_t host;
    exp_file_cfg_t cfg;
    char dir[64];
    char path[128];
    void *self;
    bool shut, done;
} fixture_t;

static void on_done(void *arg)
{
    ((fixture_t *)arg)->done = true;
}

/* A fresh temporary directory and loop; the exporter is created, not started. */
static bool setup(fixture_t *f, int format, bool append)
{
    memset(f, 0, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/om_file_test_XXXXXX");
    if (mkdtemp(f->dir) == NULL || uv_loop_init(&f->loop) != 0) {
        return false;
    }
    snprintf(f->path, sizeof f->path, "%s/out.data", f->dir);
    om_test_host_init(&f->host, &f->loop);
    f->cfg = (exp_file_cfg_t){
        .path = f->path, .format = format, .append = append, .flush_interval = OM_NS_PER_S};
    om_create_args_t a = {.cfg = &f->cfg,
                          .id = "file",
                          .log_name = "exporter/file",
                          .host = &f->host,
                          .signals = OM_SIG_ALL};
    om_err_t err = {0};
    return exp_file_factory.create(&a, &f->self, &err) == 0;
}

static bool start(fixture_t *f)
{
    om_err_t err = {0};
    return exp_file_factory.start(f->self, &err) == 0;
}

/* Shuts down, runs the loop until done (5 s at most); returns whether done ran. */
static bool shutdown_and_wait(fixture_t *f)
{
    if (!f->shut) {
        f->shut = true;
        exp_file_factory.shutdown(f->self, on_done, f);
    }
    uv_update_time(&f->loop);
    uint64_t deadline = uv_now(&f->loop) + 5000;
    while (!f->done && uv_now(&f->loop) < deadline) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    return f->done;
}

/* Destroys the exporter, removes the files; returns uv_loop_close()'s result. */
static int teardown(fixture_t *f)
{
    exp_file_factory.destroy(f->self);
    unlink(f->path);
    rmdir(f->dir);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    om_test_host_close(&f->host);
    return uv_loop_close(&f->loop);
}

/* The whole file, NUL-terminated, or NULL. Caller frees. */
static char *slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (fp == NULL) {
        return NULL;
    }
    char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 8192;
            char *nb = realloc(buf, cap);
            if (nb == NULL) {
                break;
            }
            buf = nb;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, fp);
        n += got;
        if (got == 0) {
            break;
        }
    }
    fclose(fp);
    if (buf != NULL) {
        buf[n] = '\0';
    }
    *len = n;
    return buf;
}

static char *json_of(const om_batch_t *b)
{
    om_strbuf_t sb;
    om_strbuf_init(&sb, 0);
    if (om_otlp_json_encode(b, &sb) != 0) {
        om_strbuf_free(&sb);
        return NULL;
    }
    return om_strbuf_steal(&sb, NULL);
}

static int consume(fixture_t *f, om_batch_t *b)
{
    switch (b->signal) {
    case OM_SIG_METRICS:
        return exp_file_factory.consume_metrics(f->self, b);
    case OM_SIG_LOGS:
        return exp_file_factory.consume_logs(f->self, b);
    default:
        return exp_file_factory.consume_traces(f->self, b);
    }
}

/* ---- tests ------------------------------------------------------------------------------- */

static void test_config(void)
{
    exp_file_cfg_t cfg;
    memset(&cfg, 0, sizeof cfg);
    om_diags_t d = {0};
    /* path is required. */
    ASSERT_TRUE(om_fields_apply(exp_file_factory.fields, &cfg, NULL, "exporters::file", &d) > 0);
    ASSERT_CONTAINS(d.msgs[0], "path");
    om_diags_free(&d);
    ASSERT_EQ_INT(cfg.format, EXP_FILE_JSON);
    ASSERT_TRUE(!cfg.append);
    ASSERT_EQ_INT(cfg.flush_interval, OM_NS_PER_S);
    om_err_t err = {0};
    ASSERT_EQ_INT(exp_file_factory.config_validate(&cfg, &err), OM_ECONFIG);
    ASSERT_EQ_STR(err.at, "path");
    ASSERT_EQ_STR(err.msg, "must be non-empty");
    om_fields_free(exp_file_factory.fields, &cfg);
}

/* One line per batch, each exactly the batch's OTLP JSON, for every signal. */
static void test_json_lines_each_signal(void)
{
    fixture_t f;
    ASSERT_TRUE(setup(&f, EXP_FILE_JSON, false));
    ASSERT_TRUE(start(&f));
    om_testdata_shape_t mshape = {.metrics = 5, .items = 2};
    om_batch_t *in[3] = {
        om_testdata_simple(OM_SIG_TRACES, 3, 0),
        om_testdata_batch(OM_SIG_METRICS, &mshape),
        om_testdata_simple(OM_SIG_LOGS, 2, 100),
    };
    char *want[3];
    for (int i = 0; i < 3; i++) {
        ASSERT_TRUE(in[i] != NULL);
        want[i] = json_of(in[i]);
        ASSERT_TRUE(want[i] != NULL);
        ASSERT_EQ_INT(consume(&f, in[i]), 0);
    }
    ASSERT_TRUE(shutdown_and_wait(&f));
    size_t len = 0;
    char *got = slurp(f.path, &len);
    ASSERT_TRUE(got != NULL);
    const char *keys[3] = {"resourceSpans", "resourceMetrics", "resourceLogs"};
    char *line = got;
    for (int i = 0; i < 3; i++) {
        char *nl = strchr(line, '\n');
        ASSERT_TRUE(nl != NULL);
        *nl = '\0';
        ASSERT_EQ_STR(line, want[i]);
        json_error_t jerr;
        json_t *doc = json_loads(line, 0, &jerr);
        ASSERT_TRUE(doc != NULL);
        ASSERT_TRUE(json_is_array(json_object_get(doc, keys[i])));
        json_decref(doc);
        line = nl + 1;
        free(want[i]);
    }
    ASSERT_EQ_STR(line, "");
    free(got);
    ASSERT_EQ_INT(teardown(&f), 0);
}

/* Each record is a 4-byte big-endian length and the protobuf message. */
static void test_proto_framing(void)
{
    fixture_t f;
    ASSERT_TRUE(setup(&f, EXP_FILE_PROTO, false));
    ASSERT_TRUE(start(&f));
    ASSERT_EQ_INT(consume(&f, om_testdata_simple(OM_SIG_LOGS, 4, 0)), 0);
    ASSERT_EQ_INT(consume(&f, om_testdata_simple(OM_SIG_LOGS, 2, 4)), 0);
    ASSERT_TRUE(shutdown_and_wait(&f));
    size_t len = 0;
    char *got = slurp(f.path, &len);
    ASSERT_TRUE(got != NULL);
    const uint8_t *p = (const uint8_t *)got;
    size_t off = 0, expect_items[2] = {4, 2};
    for (int i = 0; i < 2; i++) {
        ASSERT_TRUE(off + 4 <= len);
        size_t n =
            (size_t)p[off] << 24 | (size_t)p[off + 1] << 16 | (size_t)p[off + 2] << 8 | p[off + 3];
        ASSERT_TRUE(off + 4 + n <= len);
        om_batch_t *b = NULL;
        om_err_t err = {0};
        ASSERT_EQ_INT(om_batch_decode_proto(OM_SIG_LOGS, p + off + 4, n, 0, &b, &err), 0);
        ASSERT_EQ_UINT(b->items, expect_items[i]);
        om_batch_release(b);
        off += 4 + n;
    }
    ASSERT_EQ_UINT(off, len);
    free(got);
    ASSERT_EQ_INT(teardown(&f), 0);
}

static bool write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    if (fp == NULL) {
        return false;
    }
    fputs(text, fp);
    return fclose(fp) == 0;
}

static void test_truncate_and_append(void)
{
    for (int append = 0; append <= 1; append++) {
        fixture_t f;
        ASSERT_TRUE(setup(&f, EXP_FILE_JSON, append));
        ASSERT_TRUE(write_file(f.path, "old line\n"));
        ASSERT_TRUE(start(&f));
        ASSERT_EQ_INT(consume(&f, om_testdata_simple(OM_SIG_TRACES, 1, 0)), 0);
        ASSERT_TRUE(shutdown_and_wait(&f));
        size_t len = 0;
        char *got = slurp(f.path, &len);
        ASSERT_TRUE(got != NULL);
        if (append) {
            ASSERT_TRUE(strncmp(got, "old line\n{\"resourceSpans\"", 25) == 0);
        } else {
            ASSERT_TRUE(strncmp(got, "{\"resourceSpans\"", 16) == 0);
            ASSERT_TRUE(strstr(got, "old line") == NULL);
        }
        ASSERT_EQ_INT(got[len - 1], '\n');
        free(got);
        ASSERT_EQ_INT(teardown(&f), 0);
    }
}

/* With a tiny queue, the first batch is taken (an empty queue takes anything), the next is
 * refused while it waits, and taken again once the write completes. */
static void test_queue_full_refuses(void)
{
    fixture_t f;
    ASSERT_TRUE(setup(&f, EXP_FILE_JSON, false));
    ASSERT_TRUE(start(&f));
    exp_file_set_queue_limit(f.self, 16);
    ASSERT_EQ_INT(consume(&f, om_testdata_simple(OM_SIG_TRACES, 2, 0)), 0);
    ASSERT_EQ_INT(consume(&f, om_testdata_simple(OM_SIG_TRACES, 2, 2)), OM_EREFUSED);
    uv_update_time(&f.loop);
    uint64_t deadline = uv_now(&f.loop) + 5000;
    int rc = OM_EREFUSED;
    while (rc == OM_EREFUSED && uv_now(&f.loop) < deadline) {
        uv_run(&f.loop, UV_RUN_ONCE);
        rc = consume(&f, om_testdata_simple(OM_SIG_TRACES, 2, 2));
    }
    ASSERT_EQ_INT(rc, 0);
    ASSERT_TRUE(shutdown_and_wait(&f));
    size_t len = 0;
    char *got = slurp(f.path, &len);
    ASSERT_TRUE(got != NULL);
    size_t lines = 0;
    for (size_t i = 0; i < len; i++) {
        lines += got[i] == '\n';
    }
    ASSERT_EQ_UINT(lines, 2);
    ASSERT_CONTAINS(got, "\"span-3\"");
    free(got);
    ASSERT_EQ_INT(teardown(&f), 0);
}

/* Batches queued right before shutdown are all written before done; later ones are refused. */
static void test_shutdown_drains(void)
{
    fixture_t f;
    ASSERT_TRUE(setup(&f, EXP_FILE_JSON, false));
    ASSERT_TRUE(start(&f));
    for (uint64_t i = 0; i < 50; i++) {
        ASSERT_EQ_INT(consume(&f, om_testdata_simple(OM_SIG_LOGS, 3, i * 3)), 0);
    }
    f.shut = true;
    exp_file_factory.shutdown(f.self, on_done, &f);
    ASSERT_TRUE(!f.done);
    ASSERT_EQ_INT(consume(&f, om_testdata_simple(OM_SIG_LOGS, 1, 0)), OM_ESHUTDOWN);
    ASSERT_TRUE(shutdown_and_wait(&f));
    size_t len = 0;
    char *got = slurp(f.path, &len);
    ASSERT_TRUE(got != NULL);
    size_t lines = 0;
    for (size_t i = 0; i < len; i++) {
        lines += got[i] == '\n';
    }
    ASSERT_EQ_UINT(lines, 50);
    ASSERT_CONTAINS(got, "\"log-149\"");
    free(got);
    ASSERT_EQ_INT(teardown(&f), 0);
}

static void test_missing_directory(void)
{
    fixture_t f;
    ASSERT_TRUE(setup(&f, EXP_FILE_JSON, false));
    snprintf(f.path, sizeof f.path, "%s/no/such/dir/out.json", f.dir);
    om_err_t err = {0};
    ASSERT_EQ_INT(exp_file_factory.start(f.self, &err), OM_EIO);
    ASSERT_CONTAINS(err.msg, "does not exist");
    ASSERT_CONTAINS(err.msg, "/no/such/dir");
    /* Not started: consume fails and shutdown completes at once. */
    ASSERT_EQ_INT(consume(&f, om_testdata_simple(OM_SIG_LOGS, 1, 0)), OM_EIO);
    f.shut = true;
    exp_file_factory.shutdown(f.self, on_done, &f);
    ASSERT_TRUE(f.done);
    ASSERT_EQ_INT(teardown(&f), 0);
}

static void test_shutdown_without_start(void)
{
    fixture_t f;
    ASSERT_TRUE(setup(&f, EXP_FILE_JSON, false));
    ASSERT_TRUE(shutdown_and_wait(&f));
    ASSERT_EQ_INT(access(f.path, F_OK), -1);
    ASSERT_EQ_INT(teardown(&f), 0);
}

/* STYLE.md §10: the lifecycle every factory gets. */
static void test_generic_lifecycle(void)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/om-file-lifecycle-%d.jsonl", (int)getpid());
    char cfg[128];
    snprintf(cfg, sizeof cfg, "{path: '%s'}", path);
    om_test_lifecycle(&exp_file_factory, cfg);
    unlink(path);
}

int main(void)
{
    OM_RUN(test_config);
    OM_RUN(test_json_lines_each_signal);
    OM_RUN(test_proto_framing);
    OM_RUN(test_truncate_and_append);
    OM_RUN(test_queue_full_refuses);
    OM_RUN(test_shutdown_drains);
    OM_RUN(test_missing_directory);
    OM_RUN(test_shutdown_without_start);
    OM_RUN(test_generic_lifecycle);
    return om_test_summary();
}
