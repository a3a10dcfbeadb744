/* intake.c: backpressure on intake (see om.h, "Intake backpressure"). Loop thread only.
 *
 * The state is a function of three things: the bytes the arenas hold, whether any export is
 * pending, and how long the backlog has been over the limit. It is worked out again whenever
 * one of them may have changed in a way that matters: when someone asks (receivers ask once
 * per request), when an export ends (the only event that frees backlog), and when a hold's
 * time is up (the one timer, armed only while holding). Nothing polls.
 *
 * Waiters (receivers holding connections or gRPC slots) are resumed from a timer callback at
 * 0 ms rather than from inside the call that ended the pause: that call is usually an
 * exporter's completion, deep in a stack that must not re-enter a receiver. */
#include "om.h"

struct om_intake {
    uv_timer_t timer; /* hold deadline, or 0 ms to resume waiters; data: the intake */
    om_intake_limit_t *limits;
    size_t default_bytes;
    uint64_t default_hold_ms;
    size_t pending; /* exports queued or in flight */
    bool over;      /* over the limit with exports pending (the hysteresis state) */
    uint64_t since; /* clock when `over` last turned true */
    om_intake_state_t last;
    uint64_t pauses; /* times intake went from open to holding or refusing */
    om_intake_wait_t *waiters;
    uint64_t (*now_ns)(void *arg);
    void *now_arg;
    om_done_fn done;
    void *done_arg;
    bool closing;
};

static uint64_t hrtime(void *arg)
{
    (void)arg;
    return uv_hrtime();
}

om_intake_t *om_intake_new(uv_loop_t *loop)
{
    om_intake_t *in = om_calloc(1, sizeof *in);
    if (in == NULL || uv_timer_init(loop, &in->timer) != 0) {
        om_free(in);
        return NULL;
    }
    in->timer.data = in;
    in->default_bytes = OM_INTAKE_LIMIT_DEFAULT;
    in->default_hold_ms = OM_INTAKE_HOLD_MS_DEFAULT;
    in->now_ns = hrtime;
    return in;
}

static void closed(uv_handle_t *h)
{
    om_intake_t *in = h->data;
    om_done_fn done = in->done;
    void *arg = in->done_arg;
    om_free(in);
    if (done != NULL) {
        done(arg);
    }
}

void om_intake_close(om_intake_t *in, om_done_fn done, void *arg)
{
    if (in == NULL || in->closing) {
        return;
    }
    in->closing = true;
    in->done = done;
    in->done_arg = arg;
    in->waiters = NULL;
    if (uv_is_closing((uv_handle_t *)&in->timer)) {
        /* Closed already by a walk over the loop's handles (a shutdown that ran out of
         * time), and the loop has run since: nothing of libuv's refers to it any more. */
        closed((uv_handle_t *)&in->timer);
        return;
    }
    uv_close((uv_handle_t *)&in->timer, closed);
}

/* The registered limit in force: the lowest one, or NULL when none is (then the default
 * applies). */
static const om_intake_limit_t *lowest_limit(const om_intake_t *in)
{
    const om_intake_limit_t *lowest = NULL;
    for (const om_intake_limit_t *l = in->limits; l != NULL; l = l->next) {
        if (l->bytes != 0 && (lowest == NULL || l->bytes < lowest->bytes)) {
            lowest = l;
        }
    }
    return lowest;
}

/* The limit in force: the lowest registered one, else the default. */
static void limit_of(const om_intake_t *in, size_t *bytes, uint64_t *hold_ms)
{
    const om_intake_limit_t *l = lowest_limit(in);
    *bytes = l != NULL ? l->bytes : in->default_bytes;
    *hold_ms = l != NULL ? l->hold_ms : in->default_hold_ms;
}

const char *om_intake_refused_msg(const om_intake_t *in)
{
    const om_intake_limit_t *l = in != NULL ? lowest_limit(in) : NULL;
    return l != NULL && l->refused_msg != NULL ? l->refused_msg : OM_INTAKE_REFUSED_MSG;
}

/* Over the limit from above it until under three quarters of it, and only while some export
 * is pending: with none, waiting frees nothing. */
static bool backlog_over(om_intake_t *in, size_t limit)
{
    bool was = in->over;
    size_t live = om_arena_live_bytes();
    if (limit == 0) {
        in->over = false;
    } else if (was) {
        in->over = live >= limit / 4 * 3 && in->pending > 0;
    } else {
        in->over = live > limit && in->pending > 0;
    }
    if (in->over && !was) {
        in->since = in->now_ns(in->now_arg);
    }
    return in->over;
}

/* Refusing data is worth one line when it starts and one when it ends, not one per request. */
static void log_change(const om_intake_t *in, om_intake_state_t now, size_t limit, uint64_t hold_ms)
{
    if (now == OM_INTAKE_REFUSE) {
        OM_LOG(OM_LOG_WARN,
               "intake: refusing data: %zu KiB accepted and undelivered for %llu ms (limit %zu "
               "KiB); backends are not keeping up",
               om_arena_live_bytes() / 1024, (unsigned long long)hold_ms, limit / 1024);
    } else if (now == OM_INTAKE_OPEN && in->last == OM_INTAKE_REFUSE) {
        OM_LOG(OM_LOG_INFO, "intake: taking data again (%zu KiB undelivered)",
               om_arena_live_bytes() / 1024);
    }
}

static void on_timer(uv_timer_t *t);

/* Work the state out; on a change, log it and arm the timer: at the end of a new hold, or at
 * once to resume the waiters when a hold ends. *left_ms: what is left of a hold. */
static om_intake_state_t evaluate_left(om_intake_t *in, uint64_t *left_ms)
{
    size_t limit;
    uint64_t hold_ms;
    limit_of(in, &limit, &hold_ms);
    om_intake_state_t now = OM_INTAKE_OPEN;
    *left_ms = 0;
    if (backlog_over(in, limit)) {
        uint64_t held_ns = in->now_ns(in->now_arg) - in->since;
        uint64_t hold_ns = hold_ms * (uint64_t)OM_NS_PER_MS;
        now = held_ns < hold_ns ? OM_INTAKE_HOLD : OM_INTAKE_REFUSE;
        /* Rounded up: a timer that fires a little early only finds the hold still on. */
        *left_ms =
            now == OM_INTAKE_HOLD ? (hold_ns - held_ns + OM_NS_PER_MS - 1) / OM_NS_PER_MS : 0;
    }
    if (now == in->last || in->closing) {
        return now;
    }
    if (now == OM_INTAKE_REFUSE || in->last == OM_INTAKE_REFUSE) {
        log_change(in, now, limit, hold_ms);
    }
    in->pauses += in->last == OM_INTAKE_OPEN;
    in->last = now;
    uv_timer_start(&in->timer, on_timer, *left_ms, 0);
    return now;
}

static om_intake_state_t evaluate(om_intake_t *in)
{
    uint64_t left_ms;
    return evaluate_left(in, &left_ms);
}

static void resume_waiters(om_intake_t *in)
{
    /* Each resume may make its receiver wait again (a new hold): detach the list first. */
    om_intake_wait_t *w = in->waiters;
    in->waiters = NULL;
    while (w != NULL) {
        om_intake_wait_t *next = w->next;
        w->waiting = false;
        w->prev = w->next = NULL;
        w->resume(w->arg);
        w = next;
    }
}

static void on_timer(uv_timer_t *t)
{
    om_intake_t *in = t->data;
    uint64_t left_ms;
    if (evaluate_left(in, &left_ms) != OM_INTAKE_HOLD) {
        resume_waiters(in);
    } else if (!in->closing) {
        /* Early by the loop's clock (or the hold began anew): wait for the rest. */
        uv_timer_start(&in->timer, on_timer, left_ms, 0);
    }
}

om_intake_state_t om_intake_state(om_intake_t *in)
{
    return in != NULL ? evaluate(in) : OM_INTAKE_OPEN;
}

bool om_intake_paused(om_intake_t *in)
{
    return om_intake_state(in) == OM_INTAKE_HOLD;
}

bool om_intake_refusing(om_intake_t *in)
{
    return om_intake_state(in) == OM_INTAKE_REFUSE;
}

void om_intake_limit_add(om_intake_t *in, om_intake_limit_t *l)
{
    l->next = in->limits;
    in->limits = l;
    om_intake_poke(in);
}

void om_intake_limit_remove(om_intake_t *in, om_intake_limit_t *l)
{
    for (om_intake_limit_t **p = &in->limits; *p != NULL; p = &(*p)->next) {
        if (*p == l) {
            *p = l->next;
            l->next = NULL;
            break;
        }
    }
    om_intake_poke(in);
}

void om_intake_set_default(om_intake_t *in, size_t bytes, uint64_t hold_ms)
{
    in->default_bytes = bytes;
    in->default_hold_ms = hold_ms;
    in->over = false;
    om_intake_poke(in);
}

void om_intake_set_clock(om_intake_t *in, uint64_t (*now_ns)(void *arg), void *arg)
{
    in->now_ns = now_ns != NULL ? now_ns : hrtime;
    in->now_arg = arg;
}

void om_intake_poke(om_intake_t *in)
{
    if (in != NULL) {
        evaluate(in);
    }
}

void om_intake_export_begin(om_intake_t *in)
{
    if (in != NULL) {
        in->pending++;
    }
}

void om_intake_export_end(om_intake_t *in)
{
    if (in == NULL) {
        return;
    }
    in->pending--;
    /* Freed backlog can only end a pause: nothing to look at while open. */
    if (in->last != OM_INTAKE_OPEN) {
        evaluate(in);
    }
}

uint64_t om_intake_pauses(const om_intake_t *in)
{
    return in != NULL ? in->pauses : 0;
}

size_t om_intake_exports_pending(const om_intake_t *in)
{
    return in != NULL ? in->pending : 0;
}

void om_intake_wait_init(om_intake_wait_t *w, void (*resume)(void *arg), void *arg)
{
    *w = (om_intake_wait_t){.resume = resume, .arg = arg};
}

void om_intake_wait(om_intake_t *in, om_intake_wait_t *w)
{
    if (w->waiting || in == NULL) {
        return;
    }
    w->waiting = true;
    w->prev = NULL;
    w->next = in->waiters;
    if (in->waiters != NULL) {
        in->waiters->prev = w;
    }
    in->waiters = w;
}

void om_intake_wait_cancel(om_intake_t *in, om_intake_wait_t *w)
{
    if (!w->waiting || in == NULL) {
        return;
    }
    if (w->prev != NULL) {
        w->prev->next = w->next;
    } else {
        in->waiters = w->next;
    }
    if (w->next != NULL) {
        w->next->prev = w->prev;
    }
    w->prev = w->next = NULL;
    w->waiting = false;
}
