/* intake_test.c: when receivers pause intake (src/intake.c). */
#include "om_test.h"
#include "om_testdata.h"

typedef struct fx {
    uv_loop_t loop;
    om_host_t host;
} fx_t;

static void fx_init(fx_t *f)
{
    uv_loop_init(&f->loop);
    om_test_host_init(&f->host, &f->loop);
}

static void test_pauses_over_the_limit_only_while_an_export_is_pending(void)
{
    fx_t f;
    fx_init(&f);
    size_t base = om_arena_live_bytes();
    /* Held data and no export pending: a batch processor filling up, say. Pausing would free
     * nothing, so intake goes on. */
    om_batch_t *idle = om_testdata_simple(OM_SIG_TRACES, 50, 0);
    om_intake_set_limit(1);
    ASSERT_TRUE(om_arena_live_bytes() > base);
    ASSERT_TRUE(!om_intake_paused());

    om_testdata_hold_t hold;
    ASSERT_EQ_INT(om_testdata_hold_start(&hold, &f.host, 50), 0);
    ASSERT_TRUE(om_intake_paused());
    /* Under the limit: not paused. */
    om_intake_set_limit(om_arena_live_bytes() + 1);
    ASSERT_TRUE(!om_intake_paused());
    om_testdata_hold_release(&hold);
    om_testdata_hold_stop(&hold);
    om_batch_release(idle);
    om_intake_set_limit(OM_INTAKE_LIMIT_DEFAULT);
    om_test_host_close(&f.host);
    ASSERT_EQ_INT(uv_loop_close(&f.loop), 0);
}

/* An arena holding about n bytes. */
static om_arena_t *held_bytes(size_t n)
{
    om_arena_t *a = om_arena_new(0);
    om_arena_alloc(a, n);
    return a;
}

/* Paused above the limit, resumed below three quarters of it. */
static void test_resumes_below_three_quarters(void)
{
    fx_t f;
    fx_init(&f);
    om_testdata_hold_t hold;
    ASSERT_EQ_INT(om_testdata_hold_start(&hold, &f.host, 10), 0);
    size_t unit = 64 * 1024;
    ASSERT_TRUE(om_arena_live_bytes() < unit / 2); /* the held batch is small */
    om_intake_set_limit(4 * unit);
    ASSERT_TRUE(!om_intake_paused());
    om_arena_t *big = held_bytes(4 * unit);
    ASSERT_TRUE(om_intake_paused()); /* over the limit */
    om_arena_t *some = held_bytes(unit * 16 / 5);
    om_arena_unref(big);
    ASSERT_TRUE(om_intake_paused()); /* under the limit, above three quarters of it */
    om_arena_unref(some);
    ASSERT_TRUE(!om_intake_paused()); /* below three quarters */
    om_intake_set_limit(0);
    big = held_bytes(4 * unit);
    ASSERT_TRUE(!om_intake_paused()); /* no limit */
    om_arena_unref(big);
    om_testdata_hold_stop(&hold);
    om_intake_set_limit(OM_INTAKE_LIMIT_DEFAULT);
    om_test_host_close(&f.host);
    ASSERT_EQ_INT(uv_loop_close(&f.loop), 0);
}

static bool resumed;
static void on_resume(void *arg)
{
    (void)arg;
    resumed = true;
}

static void on_closed(uv_handle_t *h)
{
    (void)h;
}

/* The wait polls while paused and calls resume once, when intake resumes. */
static void test_wait_calls_resume_once_intake_resumes(void)
{
    fx_t f;
    fx_init(&f);
    om_testdata_hold_t hold;
    ASSERT_EQ_INT(om_testdata_hold_start(&hold, &f.host, 10), 0);
    om_intake_set_limit(1);
    ASSERT_TRUE(om_intake_paused());
    om_intake_wait_t w;
    resumed = false;
    om_intake_wait_init(&w, &f.loop, on_resume, NULL);
    om_intake_wait_start(&w);
    for (int i = 0; i < 5; i++) {
        uv_run(&f.loop, UV_RUN_ONCE); /* each turn is one poll: still paused */
    }
    ASSERT_TRUE(!resumed);
    om_testdata_hold_release(&hold);
    /* Each turn waits for at most one poll; a few seconds' worth is plenty. */
    for (int i = 0; i < 5000 && !resumed; i++) {
        uv_run(&f.loop, UV_RUN_ONCE);
    }
    ASSERT_TRUE(resumed);
    ASSERT_TRUE(!uv_is_active((uv_handle_t *)&w.timer));
    om_intake_wait_close(&w, on_closed);
    om_testdata_hold_stop(&hold);
    uv_run(&f.loop, UV_RUN_DEFAULT);
    om_intake_set_limit(OM_INTAKE_LIMIT_DEFAULT);
    om_test_host_close(&f.host);
    ASSERT_EQ_INT(uv_loop_close(&f.loop), 0);
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* A pause holds requests for the hold time at most; then receivers take them and refuse them,
 * until the backlog is under three quarters of the limit. */
static void test_a_long_pause_turns_into_refusal(void)
{
    fx_t f;
    fx_init(&f);
    om_testdata_hold_t hold;
    ASSERT_EQ_INT(om_testdata_hold_start(&hold, &f.host, 10), 0);
    size_t unit = 64 * 1024;
    om_intake_set_limit(4 * unit);
    om_intake_set_hold_ms(100);
    om_arena_t *big = held_bytes(4 * unit);
    ASSERT_EQ_INT(om_intake_state(), OM_INTAKE_HOLD);
    ASSERT_TRUE(om_intake_paused());
    ASSERT_TRUE(!om_intake_refusing());
    sleep_ms(150);
    ASSERT_EQ_INT(om_intake_state(), OM_INTAKE_REFUSE);
    ASSERT_TRUE(!om_intake_paused()); /* held requests are let in, to be refused */
    ASSERT_TRUE(om_intake_refusing());
    om_arena_t *some = held_bytes(unit * 16 / 5);
    om_arena_unref(big);
    ASSERT_TRUE(om_intake_refusing()); /* above three quarters still */
    om_arena_unref(some);
    ASSERT_EQ_INT(om_intake_state(), OM_INTAKE_OPEN);
    /* A new pause starts a new hold. */
    big = held_bytes(4 * unit);
    ASSERT_EQ_INT(om_intake_state(), OM_INTAKE_HOLD);
    /* With no export pending, waiting frees nothing: open at once, whatever the clock says. */
    sleep_ms(150);
    om_testdata_hold_release(&hold);
    for (int i = 0; i < 5000 && om__exports_pending(); i++) {
        uv_run(&f.loop, UV_RUN_ONCE);
    }
    ASSERT_EQ_INT(om_intake_state(), OM_INTAKE_OPEN);
    om_arena_unref(big);
    om_testdata_hold_stop(&hold);
    om_intake_set_hold_ms(OM_INTAKE_HOLD_MS_DEFAULT);
    om_intake_set_limit(OM_INTAKE_LIMIT_DEFAULT);
    om_test_host_close(&f.host);
    ASSERT_EQ_INT(uv_loop_close(&f.loop), 0);
}

int main(void)
{
    OM_RUN(test_pauses_over_the_limit_only_while_an_export_is_pending);
    OM_RUN(test_resumes_below_three_quarters);
    OM_RUN(test_wait_calls_resume_once_intake_resumes);
    OM_RUN(test_a_long_pause_turns_into_refusal);
    return om_test_summary();
}
