/* intake.c: backpressure on intake (see om.h). Loop thread only. */
#include "om.h"

static size_t limit = OM_INTAKE_LIMIT_DEFAULT;
static bool paused;

bool om_intake_paused(void)
{
    if (limit == 0) {
        return false;
    }
    size_t live = om_arena_live_bytes();
    if (paused) {
        paused = live >= limit / 4 * 3 && om__exports_pending();
    } else {
        paused = live > limit && om__exports_pending();
    }
    return paused;
}

void om_intake_set_limit(size_t bytes)
{
    limit = bytes;
    paused = false;
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
