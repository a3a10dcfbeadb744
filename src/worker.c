/* worker.c: the worker service, a bounded pool of threads for blocking or CPU-heavy jobs (see
 * om.h for the API and for what a worker may touch).
 *
 * Threads and ownership
 * ---------------------
 * The loop thread owns the pool. Worker threads share with it only what `lock` guards: the
 * queue of waiting jobs, its length, the closing flag and the idle count; `cond` wakes idle
 * workers. A worker takes the oldest job off the queue, runs work() without the lock, and
 * posts the job to the pool's mailbox (src/mailbox.c); the loop thread runs the mailbox and
 * calls done(). From submit until work() returns the job belongs to the pool and the worker;
 * from the post on, to the loop. The worker touches neither the job nor anything it points to
 * after posting it: done() may free it at once. The mailbox's mutex orders what work() wrote
 * before what done() reads.
 *
 * Threads start lazily: a submit that finds fewer idle workers than waiting jobs starts one
 * more, up to max_threads, so an idle collector has none. They stay until the pool closes.
 *
 * Keeping the loop alive
 * ----------------------
 * The mailbox's handle keeps uv_run from returning only while jobs are out (submitted, done
 * not yet run) or the pool is closing: like a uv_work_t, an outstanding job is work the loop
 * waits for, and an idle pool must not keep a collector's loop alive.
 *
 * Closing
 * -------
 * om_workers_close sets the closing flag and takes the queue away under the lock; the
 * cancelled jobs go through the mailbox with OM_ESHUTDOWN, followed by the pool's own close
 * message, so every done() runs on a later loop turn, never inside close. Workers finish the
 * job they are running, see the flag and an empty queue, run thread_fini, post their exit
 * message (embedded in their thread record: no allocation) as their last act and return.
 * The loop joins a thread when its exit message arrives. That is why the loop never waits
 * for a running job: the join only waits for a thread that has already said it is returning
 * (the alternative, joining at close, would block the loop for as long as the slowest job
 * runs, e.g. a database call waiting for its timeout). A thread's results are posted before
 * its exit message, and the close message after the cancellations, so once the close
 * message and every exit message are in, nothing else can come: the mailbox closes (its
 * handle's close callback runs on a later turn), the pool is freed and done is called. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "om.h"

typedef struct thread_rec {
    om_workers_t *pool;
    uv_thread_t tid;
    om_msg_t exit_msg; /* posted once, as the thread's last act */
} thread_rec_t;

struct om_workers {
    om_mailbox_t *mb;
    om_workers_cfg_t cfg; /* name NULL: the thread name is what counts */
    char tname[16];       /* "om-" and the first 12 bytes of the name (Linux allows 15) */
    unsigned max_threads, max_queued;
    thread_rec_t *threads; /* max_threads records; the first n_threads are started */
    /* Guarded by lock: */
    uv_mutex_t lock;
    uv_cond_t cond;
    om_job_t *head, *tail; /* waiting jobs, oldest first, linked through msg.next */
    size_t queued;
    unsigned idle; /* workers waiting on cond */
    bool closing;
    /* Loop thread only: */
    unsigned n_threads; /* started (the loop starts them; workers never read this) */
    unsigned exited;    /* exit messages handled (threads joined) */
    size_t out;         /* jobs submitted whose done has not run */
    bool close_called;  /* om_workers_close was called */
    bool close_seen;    /* the close message was handled */
    om_msg_t close_msg;
    om_done_fn done;
    void *done_arg;
};

static void keep_loop(om_workers_t *w)
{
    om_mailbox_keep_loop(w->mb, w->out > 0 || w->close_called);
}

/* ------------------------------------------------------------------------------------------ */
/* Worker threads                                                                             */

/* Worker thread, with the lock held: the next job, or NULL once the pool is closing and the
 * queue is empty. Waits while there is nothing to do. */
static om_job_t *next_job(om_workers_t *w)
{
    while (w->head == NULL && !w->closing) {
        w->idle++;
        uv_cond_wait(&w->cond, &w->lock);
        w->idle--;
    }
    om_job_t *job = w->head;
    if (job == NULL) {
        return NULL;
    }
    w->head = (om_job_t *)(void *)job->msg.next;
    if (w->head == NULL) {
        w->tail = NULL;
    }
    w->queued--;
    return job;
}

static void thread_main(void *arg)
{
    thread_rec_t *rec = arg;
    om_workers_t *w = rec->pool;
    pthread_setname_np(pthread_self(), w->tname);
    void *data = w->cfg.thread_init != NULL ? w->cfg.thread_init(w->cfg.arg) : NULL;
    uv_mutex_lock(&w->lock);
    for (;;) {
        om_job_t *job = next_job(w);
        if (job == NULL) {
            break;
        }
        uv_mutex_unlock(&w->lock);
        job->work(job, data);
        job->status = 0;
        om_mailbox_post(w->mb, &job->msg); /* the job is the loop's from here on */
        uv_mutex_lock(&w->lock);
    }
    uv_mutex_unlock(&w->lock);
    if (w->cfg.thread_fini != NULL) {
        w->cfg.thread_fini(w->cfg.arg, data);
    }
    /* The last act: the loop may join this thread and free the pool once it has run it. */
    om_mailbox_post(w->mb, &rec->exit_msg);
}

/* ------------------------------------------------------------------------------------------ */
/* Loop thread: messages                                                                      */

static void closed(void *arg)
{
    om_workers_t *w = arg;
    om_done_fn done = w->done;
    void *done_arg = w->done_arg;
    uv_cond_destroy(&w->cond);
    uv_mutex_destroy(&w->lock);
    om_free(w->threads);
    om_free(w);
    done(done_arg);
}

/* Everything is in once the close message and every thread's exit message have been run. */
static void maybe_finish(om_workers_t *w)
{
    if (w->close_seen && w->exited == w->n_threads) {
        om_mailbox_close(w->mb, closed, w);
    }
}

static void run_done(om_msg_t *m)
{
    om_job_t *job = (om_job_t *)(void *)m;
    om_workers_t *w = job->pool;
    w->out--;
    keep_loop(w);
    job->done(job, job->status); /* may free the job, submit another, or close the pool */
}

static void run_exit(om_msg_t *m)
{
    thread_rec_t *rec = (thread_rec_t *)(void *)((char *)m - offsetof(thread_rec_t, exit_msg));
    om_workers_t *w = rec->pool;
    uv_thread_join(&rec->tid); /* the thread is returning: a short wait */
    w->exited++;
    maybe_finish(w);
}

static void run_close(om_msg_t *m)
{
    om_workers_t *w = (om_workers_t *)(void *)((char *)m - offsetof(om_workers_t, close_msg));
    w->close_seen = true;
    maybe_finish(w);
}

/* ------------------------------------------------------------------------------------------ */
/* Loop thread: the API                                                                       */

int om_workers_new(uv_loop_t *loop, const om_workers_cfg_t *cfg, om_workers_t **out, om_err_t *err)
{
    om_workers_t *w = om_calloc(1, sizeof *w);
    if (w == NULL) {
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    w->cfg = *cfg;
    snprintf(w->tname, sizeof w->tname, "om-%.12s", cfg->name != NULL ? cfg->name : "worker");
    w->cfg.name = NULL;
    w->max_threads = cfg->max_threads > 0 ? cfg->max_threads : om_cpu_count();
    w->max_queued = cfg->max_queued > 0 ? cfg->max_queued : 64 * w->max_threads;
    w->close_msg.run = run_close;
    w->threads = om_calloc(w->max_threads, sizeof *w->threads);
    if (w->threads == NULL) {
        om_free(w);
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    for (unsigned i = 0; i < w->max_threads; i++) {
        w->threads[i].pool = w;
        w->threads[i].exit_msg.run = run_exit;
    }
    int rc = OM_EIO;
    if (uv_mutex_init(&w->lock) == 0) {
        if (uv_cond_init(&w->cond) == 0) {
            w->mb = om_mailbox_new(loop);
            if (w->mb != NULL) {
                om_mailbox_keep_loop(w->mb, false);
                *out = w;
                return 0;
            }
            uv_cond_destroy(&w->cond);
        }
        uv_mutex_destroy(&w->lock);
    }
    om_free(w->threads);
    om_free(w);
    om_err_set(err, rc, "cannot make the worker pool's mutex, condition or mailbox");
    return rc;
}

unsigned om_workers_threads(const om_workers_t *w)
{
    return w->n_threads;
}

size_t om_workers_queued(om_workers_t *w)
{
    uv_mutex_lock(&w->lock);
    size_t n = w->queued;
    uv_mutex_unlock(&w->lock);
    return n;
}

/* Start one more worker. False when the thread cannot be made. */
static bool start_thread(om_workers_t *w)
{
    thread_rec_t *rec = &w->threads[w->n_threads];
    if (uv_thread_create(&rec->tid, thread_main, rec) != 0) {
        return false;
    }
    w->n_threads++;
    return true;
}

/* Undo the enqueue of job, the newest in the queue (no worker exists to have taken it). */
static void unqueue_last(om_workers_t *w, om_job_t *job)
{
    uv_mutex_lock(&w->lock);
    om_job_t **pp = &w->head;
    om_job_t *prev = NULL;
    while (*pp != job) {
        prev = *pp;
        pp = (om_job_t **)(void *)&(*pp)->msg.next;
    }
    *pp = NULL;
    w->tail = prev;
    w->queued--;
    uv_mutex_unlock(&w->lock);
}

int om_workers_submit(om_workers_t *w, om_job_t *job, om_job_work_fn work, om_job_done_fn done)
{
    if (w == NULL) {
        return OM_ENOTSUP;
    }
    job->pool = w;
    job->work = work;
    job->done = done;
    job->status = 0;
    job->msg.next = NULL;
    job->msg.run = run_done;
    uv_mutex_lock(&w->lock);
    if (w->closing || w->queued >= w->max_queued) {
        int rc = w->closing ? OM_ESHUTDOWN : OM_EAGAIN;
        uv_mutex_unlock(&w->lock);
        return rc;
    }
    if (w->tail != NULL) {
        w->tail->msg.next = &job->msg;
    } else {
        w->head = job;
    }
    w->tail = job;
    w->queued++;
    /* Idle workers still to wake up: a thread woken by an earlier submit counts as idle until
     * it takes a job, so this may start one thread more than needed, never one less. */
    bool more = w->queued > w->idle && w->n_threads < w->max_threads;
    bool wake = w->idle > 0;
    uv_mutex_unlock(&w->lock);
    /* Signalled after the unlock: signalled under it, a worker woken on the loop's core
     * preempted the loop, found the lock held, slept on it and preempted the loop again at the
     * unlock (two switches each way per job). A worker woken in between that finds the queue
     * empty waits again; the pool is the loop's, so it outlives this call. */
    if (wake) {
        uv_cond_signal(&w->cond);
    }
    if (more && !start_thread(w) && w->n_threads == 0) {
        unqueue_last(w, job); /* nobody would ever run it */
        return OM_EIO;
    }
    w->out++;
    keep_loop(w);
    return 0;
}

void om_workers_close(om_workers_t *w, om_done_fn done, void *arg)
{
    if (w == NULL || w->close_called) {
        return;
    }
    w->close_called = true;
    w->done = done;
    w->done_arg = arg;
    keep_loop(w);
    uv_mutex_lock(&w->lock);
    w->closing = true;
    om_job_t *cancelled = w->head;
    w->head = w->tail = NULL;
    w->queued = 0;
    uv_cond_broadcast(&w->cond);
    uv_mutex_unlock(&w->lock);
    while (cancelled != NULL) {
        om_job_t *next = (om_job_t *)(void *)cancelled->msg.next;
        cancelled->status = OM_ESHUTDOWN;
        om_mailbox_post(w->mb, &cancelled->msg);
        cancelled = next;
    }
    om_mailbox_post(w->mb, &w->close_msg);
}
