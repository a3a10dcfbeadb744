/* memory_limiter_test.c: otelcol's config rules and messages; the limits from MiB and from
 * percentages of the cgroup's limit or total memory (on fake /proc and /sys files); the soft
 * limit on the intake (receivers refuse with otelcol's text, resume below it) and the hard
 * limit in consume; the generic lifecycle. */
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "memory_limiter.h"
#include "om_test.h"
#include "om_testdata.h"

extern const om_factory_t proc_memory_limiter_factory;

#define MIB (UINT64_C(1) << 20)

/* The config's first problem for "c: <flow>": "" when valid, else "at: msg". */
static const char *validate(const char *flow)
{
    return om_test_config_error(&proc_memory_limiter_factory, flow);
}

static void test_config_rules(void)
{
    ASSERT_EQ_STR(validate("{check_interval: 1s, limit_mib: 64}"), "");
    ASSERT_EQ_STR(
        validate("{check_interval: 1s, limit_percentage: 80, spike_limit_percentage: 20}"), "");
    ASSERT_EQ_STR(validate("{limit_mib: 64}"),
                  "check_interval: 'check_interval' must be greater than zero");
    ASSERT_EQ_STR(validate("{check_interval: 1s}"),
                  "limit_mib: 'limit_mib' or 'limit_percentage' must be greater than zero");
    ASSERT_EQ_STR(validate("{check_interval: 1s, limit_mib: 64, spike_limit_mib: 64}"),
                  "spike_limit_mib: 'spike_limit_mib' must be smaller than 'limit_mib'");
    ASSERT_EQ_STR(validate("{check_interval: 1s, limit_percentage: 101}"),
                  "limit_percentage: 'limit_percentage' and 'spike_limit_percentage' must be "
                  "greater than zero and less than or equal to hundred");
    ASSERT_EQ_STR(
        validate("{check_interval: 1s, limit_percentage: 50, spike_limit_percentage: 50}"),
        "spike_limit_percentage: 'spike_limit_percentage' must be smaller than "
        "'limit_percentage'");
    ASSERT_EQ_STR(validate("{check_interval: 1s, limit_mib: 64, "
                           "min_gc_interval_when_soft_limited: 1s, "
                           "min_gc_interval_when_hard_limited: 2s}"),
                  "min_gc_interval_when_soft_limited: 'min_gc_interval_when_soft_limited' should "
                  "be larger than 'min_gc_interval_when_hard_limited'");
    ASSERT_CONTAINS(validate("{check_interval: 1s, limit_mib: -1}"), "out of range");
    ASSERT_CONTAINS(validate("{check_interval: 1s, limit_mib: 64, size_mib: 2}"),
                    "has invalid keys: size_mib");
}

static void test_limits(void)
{
    proc_memory_limiter_cfg_t c = {.limit_mib = 64};
    uint64_t hard, spike;
    proc_memory_limiter_limits(&c, 0, &hard, &spike);
    ASSERT_EQ_UINT(hard, 64 * MIB);
    ASSERT_EQ_UINT(spike, 64 * MIB / 5); /* 20% when unset, as otelcol */
    c.spike_limit_mib = 16;
    proc_memory_limiter_limits(&c, 0, &hard, &spike);
    ASSERT_EQ_UINT(spike, 16 * MIB);
    /* limit_mib wins over percentages. */
    c = (proc_memory_limiter_cfg_t){.limit_mib = 10, .limit_percentage = 50};
    proc_memory_limiter_limits(&c, 1000 * MIB, &hard, &spike);
    ASSERT_EQ_UINT(hard, 10 * MIB);
    c = (proc_memory_limiter_cfg_t){.limit_percentage = 80, .spike_limit_percentage = 25};
    proc_memory_limiter_limits(&c, 1000 * MIB, &hard, &spike);
    ASSERT_EQ_UINT(hard, 800 * MIB);
    ASSERT_EQ_UINT(spike, 250 * MIB);
    c.spike_limit_percentage = 0;
    proc_memory_limiter_limits(&c, 1000 * MIB, &hard, &spike);
    ASSERT_EQ_UINT(spike, 160 * MIB);
}

/* ---- total memory, from fake /proc and /sys trees ---- */

static void put_file(const char *root, const char *path, const char *text)
{
    char full[512], dir[512];
    snprintf(full, sizeof full, "%s%s", root, path);
    snprintf(dir, sizeof dir, "%s", full);
    for (char *p = dir + strlen(root) + 1; *p != '\0'; p++) {
        if (*p == '/') {
            *p = '\0';
            mkdir(dir, 0700);
            *p = '/';
        }
    }
    FILE *f = fopen(full, "w");
    fputs(text, f);
    fclose(f);
}

static void remove_tree(const char *root)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    (void)system(cmd);
}

static uint64_t total_in(const char *root, int *rc)
{
    uint64_t total = 0;
    om_err_t err = {0};
    *rc = proc_memory_limiter_total(root, &total, &err);
    return total;
}

static void test_total_memory(void)
{
    char root[] = "/tmp/om-memlimit-XXXXXX";
    ASSERT_TRUE(mkdtemp(root) != NULL);
    int rc;
    /* Nothing readable: an error that tells to use limit_mib. */
    total_in(root, &rc);
    ASSERT_EQ_INT(rc, OM_EIO);
    put_file(root, "/proc/meminfo", "MemTotal:        2048000 kB\nMemFree: 1 kB\n");
    ASSERT_EQ_UINT(total_in(root, &rc), UINT64_C(2048000) * 1024);
    /* cgroup v2 without a limit ("max"): total memory still. */
    put_file(root, "/proc/self/cgroup", "0::/system.slice/otelmon.service\n");
    put_file(root, "/sys/fs/cgroup/system.slice/otelmon.service/memory.max", "max\n");
    put_file(root, "/sys/fs/cgroup/memory.max", "max\n");
    ASSERT_EQ_UINT(total_in(root, &rc), UINT64_C(2048000) * 1024);
    /* The container's root limit, then the process's own cgroup's, which wins. */
    put_file(root, "/sys/fs/cgroup/memory.max", "1073741824\n");
    ASSERT_EQ_UINT(total_in(root, &rc), UINT64_C(1073741824));
    put_file(root, "/sys/fs/cgroup/system.slice/otelmon.service/memory.max", "536870912\n");
    ASSERT_EQ_UINT(total_in(root, &rc), UINT64_C(536870912));
    remove_tree(root);
    /* cgroup v1: its "unlimited" value is no limit. */
    snprintf(root, sizeof root, "/tmp/om-memlimit-XXXXXX");
    ASSERT_TRUE(mkdtemp(root) != NULL);
    put_file(root, "/proc/meminfo", "MemTotal: 1000 kB\n");
    put_file(root, "/sys/fs/cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n");
    ASSERT_EQ_UINT(total_in(root, &rc), UINT64_C(1000) * 1024);
    put_file(root, "/sys/fs/cgroup/memory/memory.limit_in_bytes", "268435456\n");
    ASSERT_EQ_UINT(total_in(root, &rc), UINT64_C(268435456));
    remove_tree(root);
    /* The real machine has one or the other. */
    ASSERT_TRUE(total_in("", &rc) > 0);
    ASSERT_EQ_INT(rc, 0);
}

/* ---- the processor on a host ---- */

typedef struct fixture {
    uv_loop_t loop;
    om_host_t host;
    proc_memory_limiter_cfg_t cfg;
    void *self;
    int passed;
} fixture_t;

static int capture(void *self, om_batch_t *b)
{
    ((fixture_t *)self)->passed++;
    om_batch_release(b);
    return 0;
}

static void setup(fixture_t *f, int64_t limit_mib, int64_t spike_mib)
{
    memset(f, 0, sizeof *f);
    uv_loop_init(&f->loop);
    om_test_host_init(&f->host, &f->loop);
    f->cfg = (proc_memory_limiter_cfg_t){
        .check_interval = OM_NS_PER_S, .limit_mib = limit_mib, .spike_limit_mib = spike_mib};
    om_create_args_t a = {.cfg = &f->cfg,
                          .id = "memory_limiter",
                          .log_name = "processor/memory_limiter",
                          .host = &f->host,
                          .signals = OM_SIG_ALL};
    for (int i = 0; i < OM_SIG_COUNT; i++) {
        a.next[i] = (om_consumer_t){f, capture};
    }
    om_err_t err = {0};
    if (proc_memory_limiter_factory.create(&a, &f->self, &err) != 0 ||
        proc_memory_limiter_factory.start(f->self, &err) != 0) {
        fprintf(stderr, "    setup: %s\n", err.msg);
        abort();
    }
}

static void set_done(void *arg)
{
    *(int *)arg = 1;
}

static int teardown(fixture_t *f)
{
    int done = 0;
    proc_memory_limiter_factory.shutdown(f->self, set_done, &done);
    proc_memory_limiter_factory.destroy(f->self);
    om_test_host_close(&f->host);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    return done == 1 ? uv_loop_close(&f->loop) : -1;
}

static om_arena_t *held_bytes(size_t n)
{
    om_arena_t *a = om_arena_new(0);
    om_arena_alloc(a, n);
    return a;
}

/* The soft limit (limit - spike) is the intake's: over it, with an export pending, receivers
 * refuse at once (no hold) with otelcol's text; under three quarters of it they take data
 * again. The default applies again after shutdown. */
static void test_soft_limit_on_the_intake(void)
{
    fixture_t f;
    setup(&f, 8, 2); /* soft limit 6 MiB */
    om_intake_t *in = f.host.intake;
    om_testdata_hold_t hold;
    ASSERT_EQ_INT(om_testdata_hold_start(&hold, &f.host, 10), 0);
    size_t base = om_arena_live_bytes();
    om_arena_t *a = held_bytes(5 * MIB);
    ASSERT_EQ_INT(om_intake_state(in), OM_INTAKE_OPEN);
    om_arena_t *b = held_bytes(2 * MIB); /* 7 MiB: above the soft limit */
    ASSERT_EQ_INT(om_intake_state(in), OM_INTAKE_REFUSE);
    ASSERT_EQ_STR(om_intake_refused_msg(in), "data refused due to high memory usage");
    om_arena_unref(b); /* 5 MiB: under the soft limit, above three quarters of it */
    ASSERT_EQ_INT(om_intake_state(in), OM_INTAKE_REFUSE);
    om_arena_unref(a);
    a = held_bytes(4 * MIB - base); /* under 4.5 MiB */
    ASSERT_EQ_INT(om_intake_state(in), OM_INTAKE_OPEN);
    om_arena_unref(a);
    /* Below the hard limit, consume passes batches on. */
    ASSERT_EQ_INT(
        proc_memory_limiter_factory.consume_traces(f.self, om_testdata_simple(OM_SIG_TRACES, 1, 1)),
        0);
    ASSERT_EQ_INT(f.passed, 1);
    om_testdata_hold_release(&hold);
    om_testdata_hold_stop(&hold);
    /* Shut down: the limit is gone, the intake's default (16 MiB) applies again. */
    int done = 0;
    proc_memory_limiter_factory.shutdown(f.self, set_done, &done);
    ASSERT_EQ_INT(done, 1);
    ASSERT_EQ_STR(om_intake_refused_msg(in), OM_INTAKE_REFUSED_MSG);
    proc_memory_limiter_factory.destroy(f.self);
    om_test_host_close(&f.host);
    uv_run(&f.loop, UV_RUN_DEFAULT);
    ASSERT_EQ_INT(uv_loop_close(&f.loop), 0);
}

/* Above the hard limit, consume refuses with OM_EMEMLIMIT (the batch is released); below it
 * again, it passes data on. */
static void test_hard_limit_in_consume(void)
{
    fixture_t f;
    setup(&f, 4, 1);
    om_arena_t *a = held_bytes(5 * MIB);
    for (int i = 0; i < OM_SIG_COUNT; i++) {
        om_signal_t s = om_signal_from_index(i);
        om_consume_fn fn = s == OM_SIG_TRACES    ? proc_memory_limiter_factory.consume_traces
                           : s == OM_SIG_METRICS ? proc_memory_limiter_factory.consume_metrics
                                                 : proc_memory_limiter_factory.consume_logs;
        ASSERT_EQ_INT(fn(f.self, om_testdata_simple(s, 3, 1)), OM_EMEMLIMIT);
    }
    ASSERT_EQ_INT(f.passed, 0);
    ASSERT_TRUE(om_err_retryable(OM_EMEMLIMIT));
    om_arena_unref(a);
    ASSERT_EQ_INT(
        proc_memory_limiter_factory.consume_logs(f.self, om_testdata_simple(OM_SIG_LOGS, 1, 1)), 0);
    ASSERT_EQ_INT(f.passed, 1);
    ASSERT_EQ_INT(teardown(&f), 0);
}

/* Two pipelines, two instances: the lowest soft limit applies. */
static void test_lowest_instance_applies(void)
{
    fixture_t f;
    setup(&f, 100, 0);
    om_create_args_t a = {.cfg = &f.cfg, .log_name = "m2", .host = &f.host, .signals = OM_SIG_ALL};
    proc_memory_limiter_cfg_t small = f.cfg;
    small.limit_mib = 2;
    a.cfg = &small;
    void *second = NULL;
    om_err_t err = {0};
    ASSERT_EQ_INT(proc_memory_limiter_factory.create(&a, &second, &err), 0);
    ASSERT_EQ_INT(proc_memory_limiter_factory.start(second, &err), 0);
    om_testdata_hold_t hold;
    ASSERT_EQ_INT(om_testdata_hold_start(&hold, &f.host, 10), 0);
    om_arena_t *big = held_bytes(3 * MIB);
    ASSERT_EQ_INT(om_intake_state(f.host.intake), OM_INTAKE_REFUSE);
    int done = 0;
    proc_memory_limiter_factory.shutdown(second, set_done, &done);
    proc_memory_limiter_factory.destroy(second);
    ASSERT_EQ_INT(om_intake_state(f.host.intake), OM_INTAKE_OPEN);
    om_arena_unref(big);
    om_testdata_hold_release(&hold);
    om_testdata_hold_stop(&hold);
    ASSERT_EQ_INT(teardown(&f), 0);
}

static void test_lifecycle(void)
{
    om_test_lifecycle(&proc_memory_limiter_factory, "{check_interval: 1s, limit_mib: 512}");
    om_test_lifecycle(&proc_memory_limiter_factory,
                      "{check_interval: 1s, limit_percentage: 75, spike_limit_percentage: 15}");
}

int main(void)
{
    om_log_set_level(OM_LOG_ERROR);
    OM_RUN(test_config_rules);
    OM_RUN(test_limits);
    OM_RUN(test_total_memory);
    OM_RUN(test_soft_limit_on_the_intake);
    OM_RUN(test_hard_limit_in_consume);
    OM_RUN(test_lowest_instance_applies);
    OM_RUN(test_lifecycle);
    return om_test_summary();
}
