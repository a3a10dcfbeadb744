/* intake_test.c: when receivers pause intake and refuse data (src/intake.c). The clock is the
 * test's own, so that a hold's time passes when the test says so; nothing sleeps. */
#include "om_test.h"
#include "om_testdata.h"

typedef struct fx {
    uv_loop_t loop;
    om_host_t host;
    uint64_t now_ns; /* the intake's clock */
} fx_t;

static uint64_t fake_clock(void *arg)
{
    return ((fx_t *)arg)->now_ns;
}

static void fx_init(fx_t *f)
{
    uv_loop_init(&f->loop);
    om_test_host_init(&f->host, &f->loop);
    f->now_ns = 1000 * OM_NS_PER_S;
    om_intake_set_clock(f->host.intake, fake_clock, f);
}

static int fx_close(fx_t *f)
{
    om_test_host_close(&f->host);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    return uv_loop_close(&f->loop);
}

/* An arena holding about n bytes. */
static om_arena_t *held_bytes(size_t n)
{
    om_arena_t *a = om_arena_new(0);
    om_arena_alloc(a, n);
    return a;
}

static void test_pauses_over_the_limit_only_while_an_export_is_pending(void)
{
    fx_t f;
    fx_init(&f);
    om_intake_t *in = f.host.intake;
    size_t base = om_arena_live_bytes();
    /* Held data and no export pending: a batch processor filling up, say. Pausing would free
     * nothing, so intake goes on. */
    om_batch_t *idle = om_testdata_simple(OM_SIG_TRACES, 50, 0);
    om_intake_set_default(in, 1, OM_INTAKE_HOLD_MS_DEFAULT);
    ASSERT_TRUE(om_arena_live_bytes() > base);
    ASSERT_TRUE(!om_intake_paused(in));

    om_testdata_hold_t hold;
    ASSERT_EQ_INT(om_testdata_hold_start(&hold, &f.host, 50), 0);
    ASSERT_EQ_UINT(om_intake_exports_pending(in), 1);
    ASSERT_TRUE(om_intake_paused(in));
    /* Under the limit: not paused. */
    om_intake_set_default(in, om_arena_live_bytes() + 1, OM_INTAKE_HOLD_MS_DEFAULT);
    ASSERT_TRUE(!om_intake_paused(in));
    om_testdata_hold_release(&hold);
    ASSERT_EQ_UINT(om_intake_exports_pending(in), 0);
    om_testdata_hold_stop(&hold);
    om_batch_release(idle);
    ASSERT_EQ_INT(fx_close(&f), 0);
}

/* Paused above the limit, resumed below three quarters of it; limit 0 never pauses. */
static void test_resumes_below_three_quarters(void)
{
    fx_t f;
    fx_init(&f);
    om_intake_t *in = f.host.intake;
    om_testdata_hold_t hold;
    ASSERT_EQ_INT(om_testdata_hold_start(&hold, &f.host, 10), 0);
    size_t unit = 64 * 1024;
    ASSERT_TRUE(om_arena_live_bytes() < unit / 2); /* the held batch is small */
    om_intake_set_default(in, 4 * unit, OM_INTAKE_HOLD_MS_DEFAULT);
    ASSERT_TRUE(!om_intake_paused(in));
    om_arena_t *big = held_bytes(4 * unit);
    ASSERT_TRUE(om_intake_paused(in)); /* over the limit */
    om_arena_t *some = held_bytes(unit * 16 / 5);
    om_arena_unref(big);
    ASSERT_TRUE(om_intake_paused(in)); /* under the limit, above three quarters of it */
    om_arena_unref(some);
    ASSERT_TRUE(!om_intake_paused(in)); /* below three quarters */
    om_intake_set_default(in, 0, OM_INTAKE_HOLD_MS_DEFAULT);
    big = held_bytes(4 * unit);
    ASSERT_TRUE(!om_intake_paused(in)); /* no limit */
    om_arena_unref(big);
    om_testdata_hold_stop(&hold);
    ASSERT_EQ_INT(fx_close(&f), 0);
}

static int resumed;
static void on_resume(void *arg)
{
    (void)arg;
    resumed++;
}

/* A waiter is resumed once, from the loop, by the event that ends the pause (the export
 * finishing); nothing runs while the pause lasts (no poll: the loop has nothing to do). */
static void test_wait_is_resumed_by_the_export_ending(void)
{
    fx_t f;
    fx_init(&f);
    om_intake_t *in = f.host.intake;
    om_testdata_hold_t hold;
    ASSERT_EQ_INT(om_testdata_hold_start(&hold, &f.host, 10), 0);
    om_intake_set_default(in, 1, 60000);
    ASSERT_TRUE(om_intake_paused(in));
    om_intake_wait_t w, w2;
    resumed = 0;
    om_intake_wait_init(&w, on_resume, NULL);
    om_intake_wait_init(&w2, on_resume, NULL);
    om_intake_wait(in, &w);
    om_intake_wait(in, &w); /* twice: still one wait */
    om_intake_wait(in, &w2);
    om_intake_wait_cancel(in, &w2); /* a cancelled wait is not resumed */
    /* Only the hold deadline's timer is armed, a minute away: the loop would block, so look
     * without waiting. */
    ASSERT_EQ_INT(uv_run(&f.loop, UV_RUN_NOWAIT), 1);
    ASSERT_EQ_INT(resumed, 0);
    om_testdata_hold_release(&hold); /* the export ends: pending 0, the pause is over */
    ASSERT_EQ_INT(resumed, 0);       /* not from inside the exporter's stack */
    ASSERT_TRUE(!om_intake_paused(in));
    for (int i = 0; i < 10 && resumed == 0; i++) {
        uv_run(&f.loop, UV_RUN_ONCE);
    }
    ASSERT_EQ_INT(resumed, 1);
    ASSERT_TRUE(!w.waiting);
    om_testdata_hold_stop(&hold);
    ASSERT_EQ_INT(fx_close(&f), 0);
}

/* A hold lasts the hold time by the clock, then turns into refusal (and waiters are let in to
 * be refused); below three quarters intake opens; a new pause starts a new hold; with no
 * export pending intake opens whatever the clock says. */
static void test_a_long_pause_turns_into_refusal(void)
{
    fx_t f;
    fx_init(&f);
    om_intake_t *in = f.host.intake;
    om_testdata_hold_t hold;
    ASSERT_EQ_INT(om_testdata_hold_start(&hold, &f.host, 10), 0);
    size_t unit = 64 * 1024;
    om_intake_set_default(in, 4 * unit, 100);
    om_arena_t *big = held_bytes(4 * unit);
    ASSERT_EQ_INT(om_intake_state(in), OM_INTAKE_HOLD);
    om_intake_wait_t w;
    resumed = 0;
    om_intake_wait_init(&w, on_resume, NULL);
    om_intake_wait(in, &w);
    f.now_ns += 99 * OM_NS_PER_MS;
    om_intake_poke(in);
    ASSERT_EQ_INT(om_intake_state(in), OM_INTAKE_HOLD);
    f.now_ns += 1 * OM_NS_PER_MS;
    ASSERT_EQ_INT(om_intake_state(in), OM_INTAKE_REFUSE);
    ASSERT_TRUE(!om_intake_paused(in)); /* held requests are let in, to be refused */
    ASSERT_TRUE(om_intake_refusing(in));
    for (int i = 0; i < 10 && resumed == 0; i++) {
        uv_run(&f.loop, UV_RUN_ONCE);
    }
    ASSERT_EQ_INT(resumed, 1);
    om_arena_t *some = held_bytes(unit * 16 / 5);
    om_arena_unref(big);
    ASSERT_TRUE(om_intake_refusing(in)); /* above three quarters still */
    om_arena_unref(some);
    ASSERT_EQ_INT(om_intake_state(in), OM_INTAKE_OPEN);
    /* A new pause starts a new hold. */
    big = held_bytes(4 * unit);
    ASSERT_EQ_INT(om_intake_state(in), OM_INTAKE_HOLD);
    /* With no export pending, waiting frees nothing: open at once, whatever the clock says. */
    f.now_ns += 150 * OM_NS_PER_MS;
    om_testdata_hold_release(&hold);
    ASSERT_EQ_INT(om_intake_state(in), OM_INTAKE_OPEN);
    om_arena_unref(big);
    om_testdata_hold_stop(&hold);
    ASSERT_EQ_INT(fx_close(&f), 0);
}

/* The hold's end is a timer, not a poll: with the real clock, a waiter is let in to be
 * refused once the hold time has passed, by the loop alone. */
static void test_hold_ends_by_timer(void)
{
    fx_t f;
    fx_init(&f);
    om_intake_t *in = f.host.intake;
    om_intake_set_clock(in, NULL, NULL);
    om_testdata_hold_t hold;
    ASSERT_EQ_INT(om_testdata_hold_start(&hold, &f.host, 10), 0);
    om_intake_set_default(in, 1, 30);
    ASSERT_TRUE(om_intake_paused(in));
    om_intake_wait_t w;
    resumed = 0;
    om_intake_wait_init(&w, on_resume, NULL);
    om_intake_wait(in, &w);
    uint64_t t0 = uv_hrtime();
    int turns = 0;
    while (resumed == 0 && turns < 100) {
        uv_run(&f.loop, UV_RUN_ONCE);
        turns++;
    }
    ASSERT_EQ_INT(resumed, 1);
    ASSERT_TRUE(turns <= 3); /* one timer, not a poll every millisecond */
    ASSERT_TRUE(uv_hrtime() - t0 >= 25 * (uint64_t)OM_NS_PER_MS);
    ASSERT_TRUE(om_intake_refusing(in));
    om_testdata_hold_release(&hold);
    om_testdata_hold_stop(&hold);
    ASSERT_EQ_INT(fx_close(&f), 0);
}

/* The lowest registered limit applies, else the default. */
static void test_limits_from_memory_limiters(void)
{
    fx_t f;
    fx_init(&f);
    om_intake_t *in = f.host.intake;
    om_testdata_hold_t hold;
    ASSERT_EQ_INT(om_testdata_hold_start(&hold, &f.host, 10), 0);
    size_t unit = 64 * 1024;
    om_arena_t *big = held_bytes(4 * unit);
    ASSERT_TRUE(!om_intake_paused(in)); /* the 16 MiB default */
    om_intake_limit_t a = {.bytes = 64 * unit, .hold_ms = 100, .owner = "a"};
    om_intake_limit_t b = {.bytes = 2 * unit, .hold_ms = 0, .owner = "b"};
    om_intake_limit_add(in, &a);
    ASSERT_TRUE(!om_intake_paused(in));
    om_intake_limit_add(in, &b);
    /* b is the lowest, and with hold 0 it refuses at once instead of holding. */
    ASSERT_EQ_INT(om_intake_state(in), OM_INTAKE_REFUSE);
    om_intake_limit_remove(in, &b);
    ASSERT_EQ_INT(om_intake_state(in), OM_INTAKE_OPEN);
    om_intake_limit_remove(in, &a);
    /* The refusal's message is the limit in force's, else the default one. */
    ASSERT_EQ_STR(om_intake_refused_msg(in), OM_INTAKE_REFUSED_MSG);
    om_intake_limit_t c = {.bytes = 2 * unit, .owner = "c", .refused_msg = "too much"};
    om_intake_limit_add(in, &c);
    ASSERT_EQ_STR(om_intake_refused_msg(in), "too much");
    om_intake_limit_add(in, &a); /* higher: c stays in force */
    ASSERT_EQ_STR(om_intake_refused_msg(in), "too much");
    om_intake_limit_remove(in, &c);
    ASSERT_EQ_STR(om_intake_refused_msg(in), OM_INTAKE_REFUSED_MSG); /* a has none */
    om_intake_limit_remove(in, &a);
    ASSERT_EQ_STR(om_intake_refused_msg(NULL), OM_INTAKE_REFUSED_MSG);
    /* memory_limiter's refusal in consume: otelcol's text, retryable, UNAVAILABLE / 503. */
    ASSERT_EQ_STR(om_strerror(OM_EMEMLIMIT), "data refused due to high memory usage");
    ASSERT_TRUE(om_err_retryable(OM_EMEMLIMIT));
    ASSERT_EQ_INT(om_err_grpc_status(OM_EMEMLIMIT), 14);
    ASSERT_EQ_INT(om_err_http_status(OM_EMEMLIMIT), 503);
    om_arena_unref(big);
    om_testdata_hold_release(&hold);
    om_testdata_hold_stop(&hold);
    ASSERT_EQ_INT(fx_close(&f), 0);
}

int main(void)
{
    om_log_set_level(OM_LOG_ERROR);
    OM_RUN(test_pauses_over_the_limit_only_while_an_export_is_pending);
    OM_RUN(test_resumes_below_three_quarters);
    OM_RUN(test_wait_is_resumed_by_the_export_ending);
    OM_RUN(test_a_long_pause_turns_into_refusal);
    OM_RUN(test_hold_ends_by_timer);
    OM_RUN(test_limits_from_memory_limiters);
    return om_test_summary();
}
