/* worker_test.c: the worker service (src/worker.c): jobs run on worker threads and finish on
 * the loop thread, the queue is bounded, closing cancels what waits and waits for what runs
 * without blocking the loop, per-thread hooks, and the batch hand-off om.h describes. The
 * tests wait on conditions (semaphores the test releases, the loop's progress), never on
 * time. */
#include <stdatomic.h>
#include <stdlib.h>

#include "om.h"
#include "om_test.h"
#include "om_testdata.h"

static uv_thread_t loop_thread;

typedef struct job {
    om_job_t job; /* first member */
    int id;
    bool ran_off_loop; /* set by work */
    int done_status;
    int done_calls;
    bool done_on_loop;
    uv_sem_t *started, *release; /* work posts started, then waits for release (when set) */
    void *thread_data;
} job_t;

static int dones;

static void work(om_job_t *j, void *thread_data)
{
    job_t *job = (job_t *)j;
    uv_thread_t self = uv_thread_self();
    job->ran_off_loop = !uv_thread_equal(&self, &loop_thread);
    job->thread_data = thread_data;
    if (job->started != NULL) {
        uv_sem_post(job->started);
    }
    if (job->release != NULL) {
        uv_sem_wait(job->release);
    }
}

static void done(om_job_t *j, int status)
{
    job_t *job = (job_t *)j;
    uv_thread_t self = uv_thread_self();
    job->done_on_loop = uv_thread_equal(&self, &loop_thread);
    job->done_status = status;
    job->done_calls++;
    dones++;
}

typedef struct pool_fx {
    uv_loop_t loop;
    om_workers_t *w;
    bool closed;
} pool_fx_t;

static void set_true(void *arg)
{
    *(bool *)arg = true;
}

static bool pool_open(pool_fx_t *f, const om_workers_cfg_t *cfg)
{
    loop_thread = uv_thread_self();
    dones = 0;
    f->closed = false;
    uv_loop_init(&f->loop);
    om_err_t err = {0};
    return om_workers_new(&f->loop, cfg, &f->w, &err) == 0;
}

/* Run the loop until *flag or the count of dones reaches n. The pool's mailbox keeps the loop
 * alive while jobs are out, so UV_RUN_ONCE waits for the next result instead of spinning. */
static void run_until_dones(pool_fx_t *f, int n)
{
    while (dones < n) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
}

static int pool_close(pool_fx_t *f)
{
    om_workers_close(f->w, set_true, &f->closed);
    while (!f->closed) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    return uv_loop_close(&f->loop);
}

/* ------------------------------------------------------------------------------------------ */

static void test_many_jobs_done_on_the_loop(void)
{
    pool_fx_t f;
    om_workers_cfg_t cfg = {.name = "test", .max_threads = 3, .max_queued = 1000};
    ASSERT_TRUE(pool_open(&f, &cfg));
    ASSERT_EQ_UINT(om_workers_threads(f.w), 0); /* none until a job comes */
    enum { N = 500 };
    job_t *jobs = calloc(N, sizeof *jobs);
    for (int i = 0; i < N; i++) {
        jobs[i].id = i;
        ASSERT_EQ_INT(om_workers_submit(f.w, &jobs[i].job, work, done), 0);
    }
    ASSERT_EQ_INT(dones, 0); /* never from inside submit */
    run_until_dones(&f, N);
    for (int i = 0; i < N; i++) {
        ASSERT_TRUE(jobs[i].ran_off_loop);
        ASSERT_TRUE(jobs[i].done_on_loop);
        ASSERT_EQ_INT(jobs[i].done_calls, 1);
        ASSERT_EQ_INT(jobs[i].done_status, 0);
    }
    ASSERT_TRUE(om_workers_threads(f.w) >= 1 && om_workers_threads(f.w) <= 3);
    free(jobs);
    ASSERT_EQ_INT(pool_close(&f), 0);
}

static void test_full_queue_refuses(void)
{
    pool_fx_t f;
    om_workers_cfg_t cfg = {.max_threads = 1, .max_queued = 2};
    ASSERT_TRUE(pool_open(&f, &cfg));
    uv_sem_t started, release;
    uv_sem_init(&started, 0);
    uv_sem_init(&release, 0);
    job_t busy = {.started = &started, .release = &release}, q1 = {0}, q2 = {0}, q3 = {0};
    ASSERT_EQ_INT(om_workers_submit(f.w, &busy.job, work, done), 0);
    uv_sem_wait(&started); /* the only thread is busy now */
    ASSERT_EQ_INT(om_workers_submit(f.w, &q1.job, work, done), 0);
    ASSERT_EQ_INT(om_workers_submit(f.w, &q2.job, work, done), 0);
    ASSERT_EQ_UINT(om_workers_queued(f.w), 2);
    int rc = om_workers_submit(f.w, &q3.job, work, done);
    ASSERT_EQ_INT(rc, OM_EAGAIN);
    ASSERT_TRUE(om_err_retryable(rc));
    uv_sem_post(&release);
    run_until_dones(&f, 3);
    ASSERT_EQ_INT(q3.done_calls, 0); /* a refused job is never called back */
    /* Room again. */
    ASSERT_EQ_INT(om_workers_submit(f.w, &q3.job, work, done), 0);
    run_until_dones(&f, 4);
    ASSERT_EQ_INT(q3.done_calls, 1);
    ASSERT_EQ_UINT(om_workers_threads(f.w), 1);
    uv_sem_destroy(&started);
    uv_sem_destroy(&release);
    ASSERT_EQ_INT(pool_close(&f), 0);
}

/* Close cancels what waits, lets what runs finish, and the loop keeps turning meanwhile. */
static void test_close_cancels_queued_and_waits_for_running(void)
{
    pool_fx_t f;
    om_workers_cfg_t cfg = {.max_threads = 1, .max_queued = 10};
    ASSERT_TRUE(pool_open(&f, &cfg));
    uv_sem_t started, release;
    uv_sem_init(&started, 0);
    uv_sem_init(&release, 0);
    job_t running = {.started = &started, .release = &release}, a = {0}, b = {0}, late = {0};
    ASSERT_EQ_INT(om_workers_submit(f.w, &running.job, work, done), 0);
    uv_sem_wait(&started);
    ASSERT_EQ_INT(om_workers_submit(f.w, &a.job, work, done), 0);
    ASSERT_EQ_INT(om_workers_submit(f.w, &b.job, work, done), 0);
    om_workers_close(f.w, set_true, &f.closed);
    ASSERT_EQ_INT(dones, 0); /* never from inside close */
    ASSERT_EQ_INT(om_workers_submit(f.w, &late.job, work, done), OM_ESHUTDOWN);
    /* The loop is free while the running job runs: the cancelled jobs come back now. */
    run_until_dones(&f, 2);
    ASSERT_EQ_INT(a.done_status, OM_ESHUTDOWN);
    ASSERT_EQ_INT(b.done_status, OM_ESHUTDOWN);
    ASSERT_TRUE(!a.ran_off_loop && !b.ran_off_loop); /* work never ran */
    ASSERT_TRUE(a.done_on_loop && b.done_on_loop);
    for (int i = 0; i < 20; i++) {
        uv_run(&f.loop, UV_RUN_NOWAIT);
    }
    ASSERT_TRUE(!f.closed);
    ASSERT_EQ_INT(running.done_calls, 0);
    uv_sem_post(&release);
    while (!f.closed) {
        uv_run(&f.loop, UV_RUN_ONCE);
    }
    ASSERT_EQ_INT(running.done_calls, 1);
    ASSERT_EQ_INT(running.done_status, 0); /* it ran to its end */
    ASSERT_EQ_INT(late.done_calls, 0);
    uv_sem_destroy(&started);
    uv_sem_destroy(&release);
    ASSERT_EQ_INT(uv_loop_close(&f.loop), 0);
}

/* ------------------------------------------------------------------------------------------ */
/* Per-thread hooks                                                                           */

typedef struct conn {
    int serial;
    uv_thread_t owner;
    atomic_int used_elsewhere; /* work ran on another thread than the one that made it */
    bool closed_by_owner;
} conn_t;

typedef struct hooks {
    atomic_int inits, finis;
    conn_t conns[8];
} hooks_t;

static void *conn_open(void *arg)
{
    hooks_t *h = arg;
    int i = atomic_fetch_add(&h->inits, 1);
    conn_t *c = &h->conns[i];
    c->serial = i + 1;
    c->owner = uv_thread_self();
    return c;
}

static void conn_close(void *arg, void *thread_data)
{
    hooks_t *h = arg;
    conn_t *c = thread_data;
    uv_thread_t self = uv_thread_self();
    c->closed_by_owner = uv_thread_equal(&self, &c->owner);
    atomic_fetch_add(&h->finis, 1);
}

static void conn_work(om_job_t *j, void *thread_data)
{
    job_t *job = (job_t *)j;
    conn_t *c = thread_data;
    uv_thread_t self = uv_thread_self();
    if (!uv_thread_equal(&self, &c->owner)) {
        atomic_fetch_add(&c->used_elsewhere, 1);
    }
    job->thread_data = c;
    if (job->started != NULL) {
        uv_sem_post(job->started);
    }
    if (job->release != NULL) {
        uv_sem_wait(job->release);
    }
}

static void test_thread_init_and_fini_once_per_thread(void)
{
    pool_fx_t f;
    hooks_t h = {0};
    om_workers_cfg_t cfg = {.name = "db",
                            .max_threads = 3,
                            .max_queued = 1000,
                            .thread_init = conn_open,
                            .thread_fini = conn_close,
                            .arg = &h};
    ASSERT_TRUE(pool_open(&f, &cfg));
    /* Three jobs that hold their thread until all three have started: three threads. */
    uv_sem_t started, release;
    uv_sem_init(&started, 0);
    uv_sem_init(&release, 0);
    job_t held[3];
    for (int i = 0; i < 3; i++) {
        held[i] = (job_t){.started = &started, .release = &release};
        ASSERT_EQ_INT(om_workers_submit(f.w, &held[i].job, conn_work, done), 0);
    }
    for (int i = 0; i < 3; i++) {
        uv_sem_wait(&started);
    }
    ASSERT_EQ_UINT(om_workers_threads(f.w), 3);
    for (int i = 0; i < 3; i++) {
        uv_sem_post(&release);
    }
    /* Then many more on the same threads. */
    enum { N = 300 };
    job_t *more = calloc(N, sizeof *more);
    for (int i = 0; i < N; i++) {
        ASSERT_EQ_INT(om_workers_submit(f.w, &more[i].job, conn_work, done), 0);
    }
    run_until_dones(&f, N + 3);
    ASSERT_EQ_INT(pool_close(&f), 0);
    ASSERT_EQ_INT(atomic_load(&h.inits), 3);
    ASSERT_EQ_INT(atomic_load(&h.finis), 3);
    for (int i = 0; i < 3; i++) {
        ASSERT_TRUE(h.conns[i].closed_by_owner);
        ASSERT_EQ_INT(atomic_load(&h.conns[i].used_elsewhere), 0);
        ASSERT_TRUE(held[i].thread_data != NULL);
    }
    /* The three held jobs ran on three different threads, each with its own connection. */
    ASSERT_TRUE(held[0].thread_data != held[1].thread_data &&
                held[1].thread_data != held[2].thread_data &&
                held[0].thread_data != held[2].thread_data);
    for (int i = 0; i < N; i++) {
        ASSERT_TRUE(more[i].thread_data != NULL);
    }
    free(more);
    uv_sem_destroy(&started);
    uv_sem_destroy(&release);
}

/* ------------------------------------------------------------------------------------------ */
/* Chains, the host's pool, idle cost                                                         */

typedef struct chain {
    om_job_t job;
    om_workers_t *w;
    int left;
    int works;
    bool failed;
} chain_t;

static void chain_work(om_job_t *j, void *thread_data)
{
    (void)thread_data;
    ((chain_t *)j)->works++;
}

static void chain_done(om_job_t *j, int status)
{
    chain_t *c = (chain_t *)j;
    c->failed = c->failed || status != 0;
    if (--c->left > 0 && om_workers_submit(c->w, &c->job, chain_work, chain_done) != 0) {
        c->failed = true;
        c->left = 0;
    }
}

static void test_done_may_submit_the_next_job(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    om_host_t host;
    om_test_host_init(&host, &loop);
    chain_t c = {.w = host.workers, .left = 100};
    ASSERT_EQ_INT(om_workers_submit(host.workers, &c.job, chain_work, chain_done), 0);
    while (c.left > 0) {
        uv_run(&loop, UV_RUN_ONCE);
    }
    ASSERT_TRUE(!c.failed);
    ASSERT_EQ_INT(c.works, 100);
    om_test_host_close(&host);
    ASSERT_EQ_INT(uv_loop_close(&loop), 0);
}

/* An idle host starts no thread and holds no handle that keeps the loop running. */
static void test_idle_host_costs_nothing(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    om_host_t host;
    om_test_host_init(&host, &loop);
    ASSERT_TRUE(host.workers != NULL);
    ASSERT_EQ_UINT(om_workers_threads(host.workers), 0);
    ASSERT_EQ_INT(uv_run(&loop, UV_RUN_DEFAULT), 0); /* returns at once: nothing is alive */
    ASSERT_TRUE(om_cpu_count() >= 1);
    /* A job keeps the loop alive until its done has run, as a uv_work_t does. */
    job_t j = {0};
    dones = 0;
    loop_thread = uv_thread_self();
    ASSERT_EQ_INT(om_workers_submit(host.workers, &j.job, work, done), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    ASSERT_EQ_INT(j.done_calls, 1);
    ASSERT_EQ_UINT(om_workers_threads(host.workers), 1);
    om_test_host_close(&host);
    ASSERT_EQ_INT(uv_loop_close(&loop), 0);
    /* A pool closed without ever starting a thread, and the NULL pool. */
    pool_fx_t f;
    om_workers_cfg_t cfg = {0};
    ASSERT_TRUE(pool_open(&f, &cfg));
    ASSERT_EQ_INT(pool_close(&f), 0);
    ASSERT_EQ_INT(om_workers_submit(NULL, &j.job, work, done), OM_ENOTSUP);
}

/* ------------------------------------------------------------------------------------------ */
/* The hand-off om.h describes: encode a batch on a worker, get the bytes back on the loop     */

typedef struct encode_job {
    om_job_t job;
    om_batch_t *batch; /* a reference taken at submit, dropped in done */
    uint8_t *out;      /* made by the worker, owned by done */
    size_t len;
    bool done;
} encode_job_t;

static void encode_work(om_job_t *j, void *thread_data)
{
    (void)thread_data;
    encode_job_t *e = (encode_job_t *)j;
    /* Reads only: the batch is shared with the loop, which does not touch it meanwhile. */
    size_t n = om_batch_proto_size(e->batch);
    e->out = om_malloc(n);
    if (e->out != NULL) {
        e->len = om_batch_proto_pack(e->batch, e->out);
    }
}

static void encode_done(om_job_t *j, int status)
{
    encode_job_t *e = (encode_job_t *)j;
    (void)status;
    om_batch_release(e->batch); /* on the loop, where refcounts are changed */
    e->batch = NULL;
    e->done = true;
}

static void test_batch_encoded_on_a_worker(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    om_host_t host;
    om_test_host_init(&host, &loop);
    om_batch_t *b = om_testdata_simple(OM_SIG_TRACES, 50, 0);
    ASSERT_TRUE(b != NULL);
    size_t want_len = om_batch_proto_size(b);
    uint8_t *want = malloc(want_len);
    om_batch_proto_pack(b, want);
    encode_job_t e = {.batch = om_batch_ref(b)};
    ASSERT_EQ_INT(om_workers_submit(host.workers, &e.job, encode_work, encode_done), 0);
    while (!e.done) {
        uv_run(&loop, UV_RUN_ONCE);
    }
    ASSERT_EQ_UINT(e.len, want_len);
    ASSERT_TRUE(e.out != NULL && memcmp(e.out, want, want_len) == 0);
    ASSERT_EQ_UINT(b->refs, 1);
    om_free(e.out);
    free(want);
    om_batch_release(b);
    om_test_host_close(&host);
    ASSERT_EQ_INT(uv_loop_close(&loop), 0);
}

/* Closing the host with jobs queued behind a running one: the queued are cancelled. */
static void test_host_close_cancels_jobs(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    loop_thread = uv_thread_self();
    om_host_t host;
    om_test_host_init(&host, &loop);
    unsigned n = om_cpu_count();
    uv_sem_t started, release;
    uv_sem_init(&started, 0);
    uv_sem_init(&release, 0);
    job_t *busy = calloc(n, sizeof *busy);
    for (unsigned i = 0; i < n; i++) {
        busy[i] = (job_t){.started = &started, .release = &release};
        ASSERT_EQ_INT(om_workers_submit(host.workers, &busy[i].job, work, done), 0);
    }
    for (unsigned i = 0; i < n; i++) {
        uv_sem_wait(&started); /* every thread of the shared pool is busy */
    }
    job_t queued = {0};
    ASSERT_EQ_INT(om_workers_submit(host.workers, &queued.job, work, done), 0);
    bool closed = false;
    om_host_close(&host, set_true, &closed);
    for (unsigned i = 0; i < n; i++) {
        uv_sem_post(&release);
    }
    while (!closed) {
        uv_run(&loop, UV_RUN_ONCE);
    }
    ASSERT_EQ_INT(queued.done_calls, 1);
    ASSERT_EQ_INT(queued.done_status, OM_ESHUTDOWN);
    for (unsigned i = 0; i < n; i++) {
        ASSERT_EQ_INT(busy[i].done_calls, 1);
        ASSERT_EQ_INT(busy[i].done_status, 0);
    }
    ASSERT_TRUE(host.workers == NULL && host.metrics == NULL);
    free(busy);
    uv_sem_destroy(&started);
    uv_sem_destroy(&release);
    ASSERT_EQ_INT(uv_loop_close(&loop), 0);
}

int main(void)
{
    om_log_set_level(OM_LOG_ERROR);
    OM_RUN(test_many_jobs_done_on_the_loop);
    OM_RUN(test_full_queue_refuses);
    OM_RUN(test_close_cancels_queued_and_waits_for_running);
    OM_RUN(test_thread_init_and_fini_once_per_thread);
    OM_RUN(test_done_may_submit_the_next_job);
    OM_RUN(test_idle_host_costs_nothing);
    OM_RUN(test_batch_encoded_on_a_worker);
    OM_RUN(test_host_close_cancels_jobs);
    return om_test_summary();
}
