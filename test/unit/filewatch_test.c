/* filewatch_test.c: watched files (src/filewatch.c): the bounded read, and the changes the
 * watch sees (a write in place, a rename over the file, a removal and its return, a
 * Kubernetes-style symlink swap), each read again on the worker pool and handed to the
 * callback; close with a read in flight. Waits are on conditions, with a deadline. */
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "om.h"
#include "om_test.h"

#define WAIT_MS 10000

typedef struct seen {
    int calls, errors;
    char last[64];
} seen_t;

static void on_change(void *arg, int rc, const char *data, size_t len, const char *msg)
{
    seen_t *s = arg;
    s->calls++;
    if (rc != 0) {
        s->errors++;
        snprintf(s->last, sizeof s->last, "error: %.40s", msg);
        return;
    }
    snprintf(s->last, sizeof s->last, "%.*s", (int)len, data);
}

static void tick(uv_timer_t *t)
{
    (void)t;
}

/* Run the loop until s->last starts with want (or WAIT_MS pass). */
static bool wait_for(uv_loop_t *loop, const seen_t *s, const char *want)
{
    uv_timer_t t;
    uv_timer_init(loop, &t);
    uv_timer_start(&t, tick, 5, 5);
    uint64_t end = uv_now(loop) + WAIT_MS;
    size_t n = strlen(want);
    while (strncmp(s->last, want, n) != 0 && uv_now(loop) < end) {
        uv_run(loop, UV_RUN_ONCE);
    }
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    if (strncmp(s->last, want, n) != 0) {
        fprintf(stderr, "  waited for \"%s\", last \"%s\"\n", want, s->last);
        return false;
    }
    return true;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f != NULL) {
        fputs(text, f);
        fclose(f);
    }
}

static char dir[64];

static const char *in_dir(const char *name)
{
    static char buf[4][128];
    static int next;
    char *p = buf[next++ % 4];
    snprintf(p, sizeof buf[0], "%s/%s", dir, name);
    return p;
}

static void test_read(void)
{
    write_file(in_dir("f"), "hello\n");
    char *data = NULL;
    size_t len = 0;
    om_err_t err = {0};
    ASSERT_EQ_INT(om_file_read(in_dir("f"), 6, &data, &len, &err), 0);
    ASSERT_EQ_UINT(len, 6);
    ASSERT_EQ_STR(data, "hello\n");
    om_free_secret(data, 7);
    ASSERT_EQ_INT(om_file_read(in_dir("f"), 5, &data, &len, &err), OM_ETOOBIG);
    ASSERT_CONTAINS(err.msg, "is larger than 5 bytes");
    ASSERT_TRUE(data == NULL);
    err = (om_err_t){0};
    ASSERT_EQ_INT(om_file_read(in_dir("missing"), 5, &data, &len, &err), OM_EIO);
    ASSERT_CONTAINS(err.msg, "missing\": No such file or directory");
}

static int closed;

static void on_closed(void *arg)
{
    (void)arg;
    closed++;
}

static void test_changes(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    om_host_t host;
    om_test_host_init(&host, &loop);
    const char *path = in_dir("token");
    write_file(path, "one");
    seen_t s = {0};
    om_filewatch_t *w = NULL;
    om_err_t err = {0};
    ASSERT_EQ_INT(om_filewatch_start(&host, path, 64, on_change, &s, &w, &err), 0);
    /* In place. */
    write_file(path, "two");
    ASSERT_TRUE(wait_for(&loop, &s, "two"));
    /* A new file renamed over it (what agents and editors do). */
    write_file(in_dir("token.new"), "three");
    ASSERT_EQ_INT(rename(in_dir("token.new"), path), 0);
    ASSERT_TRUE(wait_for(&loop, &s, "three"));
    /* In place again: the file's own watch follows the new inode. */
    write_file(path, "four");
    ASSERT_TRUE(wait_for(&loop, &s, "four"));
    /* Gone: an error (the caller keeps its last value); back: read again. */
    ASSERT_EQ_INT(unlink(path), 0);
    ASSERT_TRUE(wait_for(&loop, &s, "error: cannot read \"/tmp/"));
    write_file(path, "five");
    ASSERT_TRUE(wait_for(&loop, &s, "five"));
    ASSERT_TRUE(s.errors >= 1);
    /* Close with a change just noticed: done comes once, the callback no more. */
    write_file(path, "six");
    int calls = s.calls;
    closed = 0;
    om_filewatch_close(w, on_closed, NULL);
    om_filewatch_close(w, on_closed, NULL);
    while (closed == 0) {
        uv_run(&loop, UV_RUN_ONCE);
    }
    ASSERT_EQ_INT(closed, 1);
    ASSERT_EQ_INT(s.calls, calls);
    om_test_host_close(&host);
    ASSERT_EQ_INT(uv_loop_close(&loop), 0);
}

/* Kubernetes mounts a secret as name -> ..data/name, ..data -> ..TIMESTAMP, and updates it by
 * making a new ..TIMESTAMP directory and renaming a new ..data link over the old one. */
static void test_symlink_swap(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    /* A host without a worker pool: reads happen on the loop (the fallback). */
    om_host_t host = {.loop = &loop};
    char d1[128], d2[128], link[128], tmp[128];
    snprintf(d1, sizeof d1, "%s/..v1", dir);
    snprintf(d2, sizeof d2, "%s/..v2", dir);
    ASSERT_EQ_INT(mkdir(d1, 0700), 0);
    ASSERT_EQ_INT(mkdir(d2, 0700), 0);
    char f1[160], f2[160];
    snprintf(f1, sizeof f1, "%s/secret", d1);
    snprintf(f2, sizeof f2, "%s/secret", d2);
    write_file(f1, "v1");
    write_file(f2, "v2");
    snprintf(link, sizeof link, "%s/..data", dir);
    snprintf(tmp, sizeof tmp, "%s/..data_tmp", dir);
    ASSERT_EQ_INT(symlink("..v1", link), 0);
    ASSERT_EQ_INT(symlink("..data/secret", in_dir("secret")), 0);
    seen_t s = {0};
    om_filewatch_t *w = NULL;
    om_err_t err = {0};
    ASSERT_EQ_INT(om_filewatch_start(&host, in_dir("secret"), 64, on_change, &s, &w, &err), 0);
    ASSERT_EQ_INT(symlink("..v2", tmp), 0);
    ASSERT_EQ_INT(rename(tmp, link), 0);
    ASSERT_TRUE(wait_for(&loop, &s, "v2"));
    closed = 0;
    om_filewatch_close(w, on_closed, NULL);
    while (closed == 0) {
        uv_run(&loop, UV_RUN_ONCE);
    }
    ASSERT_EQ_INT(uv_loop_close(&loop), 0);
}

static void test_unwatchable(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    om_host_t host = {.loop = &loop};
    seen_t s = {0};
    om_filewatch_t *w = NULL;
    om_err_t err = {0};
    ASSERT_EQ_INT(om_filewatch_start(&host, "/nonexistent-dir/token", 64, on_change, &s, &w, &err),
                  OM_EIO);
    ASSERT_CONTAINS(err.msg, "cannot watch \"/nonexistent-dir\" for changes");
    ASSERT_TRUE(w == NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    ASSERT_EQ_INT(uv_loop_close(&loop), 0);
}

int main(void)
{
    om_log_set_level(OM_LOG_WARN);
    snprintf(dir, sizeof dir, "/tmp/om-filewatch-XXXXXX");
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    OM_RUN(test_read);
    OM_RUN(test_changes);
    OM_RUN(test_symlink_swap);
    OM_RUN(test_unwatchable);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "could not remove %s\n", dir);
    }
    return om_test_summary();
}
