/* mailbox.c: cross-thread handoff to the loop thread (see om.h), the one implementation: the
 * worker pool (worker.c) and the gRPC receiver's bridge thread post through it.
 *
 * Threads: any thread posts; the loop thread drains, closes and frees. `lock` guards the list
 * and the wake-up bookkeeping. A poster never touches a message after posting it (the loop may
 * run and free it at once); the mutex orders everything the poster wrote before the post ahead
 * of what the loop reads when it runs the message.
 *
 * Wake-ups: a post writes the mailbox's eventfd only when nobody has since the last drain
 * (`signalled`), so a burst costs one; a lazy post (om_mailbox_post_lazy) writes it only once
 * lazy_max of them wait. Whoever sets `signalled` writes, and a drain clears it while it takes
 * the list, so a message is never left in the list with no wake-up coming unless it is a lazy
 * one within the bound.
 *
 * Why an eventfd of our own rather than a uv_async_t: libuv 1.44's uv_async_send marks the
 * handle busy, writes its eventfd, then marks it done, and the woken loop spins (997 rounds,
 * then sched_yield, again) until it sees done. On a shared core the write's wake-up preempts
 * the poster between the two, so in the paced test the loop spun and yielded on two requests
 * in three. Here the message is in the list before the write, so the woken loop has nothing
 * to wait for; and the write comes after the unlock, so the woken loop does not wait on the
 * lock either. `writing` counts the posters between their unlock and the end of their write:
 * the close waits for it to be 0 before it closes the fd and frees the mailbox (the last
 * message of a component often lets it close, while its poster is still writing). */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "om.h"

struct om_mailbox {
    uv_poll_t poll;      /* first member: the handle's close callback frees the mailbox */
    int efd;             /* non-blocking eventfd; readable while a wake-up is owed */
    atomic_uint writing; /* posters between their unlock and the end of their write */
    pthread_mutex_t lock;
    /* Guarded by lock: */
    om_msg_t *head, *tail;
    bool signalled;    /* a wake-up was written (or is being) since the last drain */
    unsigned lazy;     /* lazy posts waiting since then */
    unsigned lazy_max; /* a lazy post wakes the loop when this many wait; 0: every post does */
    om_done_fn done;
    void *done_arg;
};

/* Detach the whole list under the lock, then run it in order without the lock. */
static void drain(om_mailbox_t *mb)
{
    pthread_mutex_lock(&mb->lock);
    om_msg_t *m = mb->head;
    mb->head = mb->tail = NULL;
    mb->signalled = false;
    mb->lazy = 0;
    pthread_mutex_unlock(&mb->lock);
    while (m != NULL) {
        om_msg_t *next = m->next;
        m->next = NULL;
        m->run(m);
        m = next;
    }
}

static void on_readable(uv_poll_t *p, int status, int events)
{
    (void)status; /* an eventfd reports no error; the list is drained either way */
    (void)events;
    om_mailbox_t *mb = (om_mailbox_t *)p;
    /* Reset before the drain: a post after this read writes again, and its message is taken
     * by this drain (that wake-up then finds nothing) or by the next. EAGAIN: a spurious
     * wake-up, nothing to reset. */
    uint64_t count;
    ssize_t n = read(mb->efd, &count, sizeof count);
    (void)n;
    drain(mb);
}

/* Any thread. EAGAIN means the counter is at its maximum, so a wake-up is owed anyway. */
static void signal_loop(om_mailbox_t *mb)
{
    uint64_t one = 1;
    ssize_t n;
    do {
        n = write(mb->efd, &one, sizeof one);
    } while (n < 0 && errno == EINTR);
}

/* A poster, after its unlock: the wake-up it counted in `writing`. */
static void write_wake(om_mailbox_t *mb)
{
    signal_loop(mb);
    atomic_fetch_sub_explicit(&mb->writing, 1, memory_order_release);
}

/* Wake-ups deferred by this thread (om_mailbox_defer_wakes): each mailbox counted in its
 * `writing`, written by om_mailbox_flush_wakes. More mailboxes than fit are written at once. */
#define DEFER_MAX 8
static _Thread_local bool deferring;
static _Thread_local unsigned n_deferred;
static _Thread_local om_mailbox_t *deferred[DEFER_MAX];

void om_mailbox_defer_wakes(void)
{
    deferring = true;
}

void om_mailbox_flush_wakes(void)
{
    deferring = false;
    for (unsigned i = 0; i < n_deferred; i++) {
        write_wake(deferred[i]);
    }
    n_deferred = 0;
}

om_mailbox_t *om_mailbox_new(uv_loop_t *loop)
{
    om_mailbox_t *mb = om_calloc(1, sizeof *mb);
    if (mb == NULL) {
        return NULL;
    }
    atomic_init(&mb->writing, 0);
    mb->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (mb->efd < 0) {
        om_free(mb);
        return NULL;
    }
    if (pthread_mutex_init(&mb->lock, NULL) != 0) {
        close(mb->efd);
        om_free(mb);
        return NULL;
    }
    /* uv_poll_init leaves nothing to close when it fails; uv_poll_start cannot fail for a
     * valid, open handle and UV_READABLE. */
    if (uv_poll_init(loop, &mb->poll, mb->efd) != 0) {
        pthread_mutex_destroy(&mb->lock);
        close(mb->efd);
        om_free(mb);
        return NULL;
    }
    uv_poll_start(&mb->poll, UV_READABLE, on_readable);
    return mb;
}

/* Append m; wake the loop unless it was woken already since its last drain, or the post is
 * lazy and fewer than lazy_max lazy posts wait. */
static void post(om_mailbox_t *mb, om_msg_t *m, bool lazy)
{
    m->next = NULL;
    pthread_mutex_lock(&mb->lock);
    if (mb->tail != NULL) {
        mb->tail->next = m;
    } else {
        mb->head = m;
    }
    mb->tail = m;
    bool wake = !mb->signalled;
    if (lazy && mb->lazy_max > 0 && ++mb->lazy < mb->lazy_max) {
        wake = false;
    }
    mb->signalled = mb->signalled || wake;
    if (wake) {
        /* Counted under the lock: a close cannot have started (posting after it is a bug),
         * and the close's drain takes this lock, so it sees the count. */
        atomic_fetch_add_explicit(&mb->writing, 1, memory_order_relaxed);
    }
    pthread_mutex_unlock(&mb->lock);
    if (!wake) {
        return;
    }
    if (deferring && n_deferred < DEFER_MAX) {
        deferred[n_deferred++] = mb;
        return;
    }
    write_wake(mb); /* the last touch of mb */
}

void om_mailbox_post(om_mailbox_t *mb, om_msg_t *m)
{
    post(mb, m, false);
}

void om_mailbox_post_lazy(om_mailbox_t *mb, om_msg_t *m)
{
    post(mb, m, true);
}

void om_mailbox_set_lazy(om_mailbox_t *mb, unsigned max)
{
    pthread_mutex_lock(&mb->lock);
    mb->lazy_max = max;
    bool wake = max == 0 && mb->head != NULL && !mb->signalled;
    mb->signalled = mb->signalled || wake;
    pthread_mutex_unlock(&mb->lock);
    if (wake) {
        signal_loop(mb); /* the loop thread itself: what waited lazily runs on a coming turn */
    }
}

static void closed(uv_handle_t *h)
{
    om_mailbox_t *mb = (om_mailbox_t *)h;
    drain(mb); /* anything posted between the last drain and the close */
    /* A poster whose message was drained may still be writing its wake-up: wait for it (a
     * few instructions away, unless it was preempted) before the fd goes. The drain took the
     * lock, so every poster that counted itself is seen here. */
    while (atomic_load_explicit(&mb->writing, memory_order_acquire) != 0) {
        sched_yield();
    }
    close(mb->efd);
    om_done_fn done = mb->done;
    void *arg = mb->done_arg;
    pthread_mutex_destroy(&mb->lock);
    om_free(mb);
    if (done != NULL) {
        done(arg);
    }
}

void om_mailbox_close(om_mailbox_t *mb, om_done_fn done, void *arg)
{
    drain(mb);
    mb->done = done;
    mb->done_arg = arg;
    uv_close((uv_handle_t *)&mb->poll, closed);
}

void om_mailbox_keep_loop(om_mailbox_t *mb, bool keep)
{
    if (keep) {
        uv_ref((uv_handle_t *)&mb->poll);
    } else {
        uv_unref((uv_handle_t *)&mb->poll);
    }
}
