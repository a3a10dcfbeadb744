/* intake.c: backpressure on intake (see om.h). Loop thread only. */
#include "om.h"

static size_t limit = OM_INTAKE_LIMIT_DEFAULT;
static uint64_t hold_ns = (uint64_t)OM_INTAKE_HOLD_MS_DEFAULT * 1000000;
static bool over;           /* over the limit with exports pending (the hysteresis state) */
static uint64_t over_since; /* uv_hrtime() when `over` last turned true */

/* Over the limit from above it until under three quarters of it, and only while some export
 * is pending: with none, waiting frees nothing. */
static bool backlog_over(void)
{
    if (limit == 0) {
        return false;
    }
    size_t live = om_arena_live_bytes();
    bool was = over;
    if (was) {
        over = live >= limit / 4 * 3 && om__exports_pending();
    } else {
        over = live > limit && om__exports_pending();
    }
    if (over && !was) {
        over_since = uv_hrtime();
    }
    return over;
}

static om_intake_state_t last = OM_INTAKE_OPEN;

/* Refusing data is worth one line when it starts and one when it ends, not one per request. */
static void log_change(om_intake_state_t now)
{
    if (now == OM_INTAKE_REFUSE && last != OM_INTAKE_REFUSE) {
        OM_LOG(OM_LOG_WARN,
               "intake: refusing data: %zu KiB accepted and undelivered for %llu ms (limit %zu "
               "KiB); backends are not keeping up",
               om_arena_live_bytes() / 1024, (unsigned long long)(hold_ns / 1000000), limit / 1024);
    } else if (now == OM_INTAKE_OPEN && last == OM_INTAKE_REFUSE) {
        OM_LOG(OM_LOG_INFO, "intake: taking data again (%zu KiB undelivered)",
               om_arena_live_bytes() / 1024);
    }
    last = now;
}

om_intake_state_t om_intake_state(void)
{
    om_intake_state_t now = OM_INTAKE_OPEN;
    if (backlog_over()) {
        now = uv_hrtime() - over_since < hold_ns ? OM_INTAKE_HOLD : OM_INTAKE_REFUSE;
    }
    if (now != last) {
        log_change(now);
    }
    return now;
}

bool om_intake_paused(void)
{
    return om_intake_state() == OM_INTAKE_HOLD;
}

bool om_intake_refusing(void)
{
    return om_intake_state() == OM_INTAKE_REFUSE;
}

void om_intake_set_limit(size_t bytes)
{
    limit = bytes;
    over = false;
    last = OM_INTAKE_OPEN;
}

void om_intake_set_hold_ms(uint64_t ms)
{
    hold_ns = ms * 1000000;
}

static void on_poll(uv_timer_t *t)
{
    om_intake_wait_t *w = t->data;
    if (!om_intake_paused()) {
        uv_timer_stop(t);
        w->resume(w->arg);
    }
}

void om_intake_wait_init(om_intake_wait_t *w, uv_loop_t *loop, void (*resume)(void *arg), void *arg)
{
    uv_timer_init(loop, &w->timer);
    w->timer.data = w;
    w->resume = resume;
    w->arg = arg;
}

void om_intake_wait_start(om_intake_wait_t *w)
{
    if (!uv_is_active((uv_handle_t *)&w->timer)) {
        uv_timer_start(&w->timer, on_poll, OM_INTAKE_POLL_MS, OM_INTAKE_POLL_MS);
    }
}

void om_intake_wait_close(om_intake_wait_t *w, uv_close_cb close_cb)
{
    uv_timer_stop(&w->timer);
    uv_close((uv_handle_t *)&w->timer, close_cb);
}
