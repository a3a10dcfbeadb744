/* mailbox.c: cross-thread handoff to the loop thread (see om.h), the one implementation: the
 * worker pool (worker.c) and the gRPC receiver's bridge thread post through it.
 *
 * Threads: any thread posts; the loop thread drains, closes and frees. `lock` guards the list
 * and the wake-up bookkeeping. A poster never touches a message after posting it (the loop may
 * run and free it at once); the mutex orders everything the poster wrote before the post ahead
 * of what the loop reads when it runs the message.
 *
 * Wake-ups: a post calls uv_async_send only when nobody has since the last drain (`signalled`),
 * so a burst costs one; a lazy post (om_mailbox_post_lazy) calls it only once lazy_max of them
 * wait. Whoever sets `signalled` sends before unlocking, and a drain clears it while it
 * takes the list, so a message is never left in the list with no wake-up coming unless it is
 * a lazy one within the bound. */
#include <pthread.h>

#include "om.h"

struct om_mailbox {
    uv_async_t async; /* first member: the handle's close callback frees the mailbox */
    pthread_mutex_t lock;
    /* Guarded by lock: */
    om_msg_t *head, *tail;
    bool signalled;    /* uv_async_send was called since the last drain took the list */
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

static void on_async(uv_async_t *a)
{
    drain((om_mailbox_t *)a);
}

om_mailbox_t *om_mailbox_new(uv_loop_t *loop)
{
    om_mailbox_t *mb = om_calloc(1, sizeof *mb);
    if (mb == NULL) {
        return NULL;
    }
    if (pthread_mutex_init(&mb->lock, NULL) != 0) {
        om_free(mb);
        return NULL;
    }
    if (uv_async_init(loop, &mb->async, on_async) != 0) {
        pthread_mutex_destroy(&mb->lock);
        om_free(mb);
        return NULL;
    }
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
    /* Sent before the unlock: once m is visible the loop may run it, close the mailbox and
     * free it, and a send after the unlock could then land on freed memory (the last message
     * of a component is often the one that lets it close). The loop's drain, and the close's,
     * take the lock, so they wait for this send to finish. */
    if (wake) {
        uv_async_send(&mb->async);
    }
    pthread_mutex_unlock(&mb->lock);
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
    if (wake) {
        uv_async_send(&mb->async); /* what waited lazily runs on a coming turn */
    }
    pthread_mutex_unlock(&mb->lock);
}

static void closed(uv_handle_t *h)
{
    om_mailbox_t *mb = (om_mailbox_t *)h;
    drain(mb); /* anything posted between the last drain and the close */
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
    uv_close((uv_handle_t *)&mb->async, closed);
}

void om_mailbox_keep_loop(om_mailbox_t *mb, bool keep)
{
    if (keep) {
        uv_ref((uv_handle_t *)&mb->async);
    } else {
        uv_unref((uv_handle_t *)&mb->async);
    }
}
