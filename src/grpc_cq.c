/* grpc_cq.c: the process's one gRPC completion queue and the one thread that polls it (om.h,
 * "gRPC completion queue").
 *
 * Why one: gRPC 1.51's epoll1 engine has one epoll set for the process, and whichever thread
 * sits in grpc_completion_queue_next() polls every socket, then wakes (futex) the thread whose
 * queue the event belongs to. With a queue and a thread per component (the OTLP receiver's
 * and the otlp exporter's) the two threads woke each other for every event of the other's
 * sockets: at 100 requests/s the exporter's thread switched 4 times per received request
 * while it completed one export per 20 requests (bench/README.md, "One completion queue").
 *
 * Threads and ownership
 * ---------------------
 * The loop thread makes and frees the service, takes and releases users (users, cq, thread
 * and running are the loop's). The queue thread only reads cq (set before it starts) and runs
 * tags' done callbacks, each under cb_lock: a release takes cb_lock once, so when it returns
 * no callback that was running meanwhile is still running. That is the fence a user needs
 * before it frees what its callbacks touch: "my last tag came back" (its message reached the
 * loop) does not say the callback has returned. The mailbox itself is safe since its close
 * waits for a wake-up still being written (mailbox.c), but a callback may still touch other
 * state after its post; an uncontended lock per callback costs a few tens of nanoseconds.
 * The callbacks' mailbox wake-ups are written after cb_lock is released
 * (om_mailbox_defer_wakes), so that the woken loop does not find cb_lock held.
 *
 * Shutdown order (each user, then the service)
 * --------------------------------------------
 * 1. The user stops its gRPC objects (server shutdown + cancel calls; channel drain) and
 *    waits, on the loop, until every tag it handed gRPC has come back through its mailbox.
 * 2. It destroys its gRPC objects (grpc_server_destroy, grpc_channel_destroy): none of them
 *    has an operation on the queue any more.
 * 3. It calls om_grpc_release(): the fence (no callback of its own is still running), then,
 *    when it was the last user, the queue is shut down (it is empty: every user's tags are
 *    back, so next() reports shutdown at once), the thread joined (a short wait), the queue
 *    destroyed and gRPC's library reference dropped.
 * 4. It closes its mailbox and frees its state.
 * The queue is never shut down under a user that still has tags out: only the last release
 * shuts it, and a user releases only after step 1. The next first user starts a new queue
 * and thread (a reload that replaces every gRPC component). om_grpc_free (host close) finds
 * no user left; if one is (a bug) it says so and leaks the queue rather than block. */
#include <pthread.h>

#include <grpc/grpc.h>
#include <grpc/support/time.h>

#include "om.h"

struct om_grpc {
    unsigned users;            /* loop thread */
    grpc_completion_queue *cq; /* while users > 0; read by the thread */
    uv_thread_t thread;
    pthread_mutex_t cb_lock; /* held by the thread while a done callback runs */
};

om_grpc_t *om_grpc_new(void)
{
    om_grpc_t *g = om_calloc(1, sizeof *g);
    if (g == NULL) {
        return NULL;
    }
    if (pthread_mutex_init(&g->cb_lock, NULL) != 0) {
        om_free(g);
        return NULL;
    }
    return g;
}

void om_grpc_free(om_grpc_t *g)
{
    if (g == NULL) {
        return;
    }
    if (g->users > 0) {
        OM_LOG(OM_LOG_ERROR, "gRPC completion queue: %u users did not release it at close",
               g->users);
        return; /* their tags may still come: the thread and g stay */
    }
    pthread_mutex_destroy(&g->cb_lock);
    om_free(g);
}

/* The queue's thread, or the loop thread for a completion caught by om_grpc_start_batch. */
static void run_done(om_grpc_t *g, void *tag, bool ok)
{
    OM_TSAN_ACQUIRE(tag); /* pairs with the user's release before it started the op */
    om_grpc_tag_t *t = tag;
    /* The mailbox's wake-up after the unlock: written under cb_lock, it let the woken loop
     * preempt this thread on a shared core and block on cb_lock in om_grpc_start_batch. */
    om_mailbox_defer_wakes();
    pthread_mutex_lock(&g->cb_lock);
    t->done(t, ok);
    pthread_mutex_unlock(&g->cb_lock);
    om_mailbox_flush_wakes();
}

static void cq_main(void *arg)
{
    om_grpc_t *g = arg;
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(g->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN) {
            return;
        }
        if (ev.type != GRPC_OP_COMPLETE) {
            continue;
        }
        run_done(g, ev.tag, ev.success != 0);
    }
}

/* gRPC's thread-local completion cache (what its C++ callback API uses for the same reason):
 * while it is set, the first completion for cq that happens on this thread is kept for this
 * thread instead of being pushed to the queue and waking its poller; flush takes it (and
 * clears the cache either way). Any tag may be the one caught, not only this batch's (a
 * completion run by the same exec context), so it goes to its own done. */
int om_grpc_start_batch(om_grpc_t *g, struct grpc_completion_queue *cq, struct grpc_call *call,
                        const struct grpc_op *ops, size_t n, om_grpc_tag_t *tag)
{
    grpc_completion_queue_thread_local_cache_init(cq);
    grpc_call_error ce = grpc_call_start_batch(call, ops, n, tag, NULL);
    void *caught = NULL;
    int ok = 0;
    if (grpc_completion_queue_thread_local_cache_flush(cq, &caught, &ok)) {
        run_done(g, caught, ok != 0);
    }
    return (int)ce;
}

int om_grpc_acquire(om_grpc_t *g, struct grpc_completion_queue **cq, om_err_t *err)
{
    if (g == NULL) {
        om_err_set(err, OM_ENOTSUP, "this host has no gRPC completion queue service");
        return OM_ENOTSUP;
    }
    if (g->users == 0) {
        grpc_init(); /* the queue must go before gRPC's last shutdown: held until then */
        g->cq = grpc_completion_queue_create_for_next(NULL);
        int uvrc = uv_thread_create(&g->thread, cq_main, g);
        if (uvrc != 0) {
            grpc_completion_queue_shutdown(g->cq);
            while (
                grpc_completion_queue_next(g->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
                GRPC_QUEUE_SHUTDOWN) {
            }
            grpc_completion_queue_destroy(g->cq);
            g->cq = NULL;
            grpc_shutdown();
            om_err_set(err, OM_EIO, "cannot start the gRPC thread: %s", uv_strerror(uvrc));
            return OM_EIO;
        }
        /* Named here rather than by the thread: the name is there when acquire returns. */
        pthread_setname_np(g->thread, "om-grpc-cq");
    }
    g->users++;
    *cq = g->cq;
    return 0;
}

void om_grpc_fence(om_grpc_t *g)
{
    pthread_mutex_lock(&g->cb_lock);
    pthread_mutex_unlock(&g->cb_lock);
}

void om_grpc_release(om_grpc_t *g)
{
    om_grpc_fence(g);
    if (--g->users > 0) {
        return;
    }
    grpc_completion_queue_shutdown(g->cq);
    uv_thread_join(&g->thread);
    grpc_completion_queue_destroy(g->cq);
    g->cq = NULL;
    grpc_shutdown();
}

bool om_grpc_running(const om_grpc_t *g)
{
    return g != NULL && g->users > 0;
}
