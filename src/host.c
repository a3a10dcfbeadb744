/* host.c: what the core lends to components (om_host_t): the loop, the metrics registry, the
 * shared worker pool, the intake and the gRPC completion queue. Loop thread only. */
#include <time.h>

#include "om.h"

/* Jobs that may wait for a thread of the shared pool, per thread: enough to absorb a burst
 * of batches to compress or encode, small enough that a stuck backend cannot make the pool
 * hold much memory (each waiting job references its batch). */
#define SHARED_QUEUE_PER_THREAD 64

#define BUSY_WINDOW (100 * OM_NS_PER_MS)

void om_host_set_loop_busy(om_host_t *h, double share)
{
    h->busy_fixed = share >= 0;
    h->busy = share >= 0 ? share : 0;
    h->busy_t0 = 0;
}

/* The calling thread's CPU time (ns). */
static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0) {
        return 0;
    }
    return (uint64_t)ts.tv_sec * OM_NS_PER_S + (uint64_t)ts.tv_nsec;
}

double om_host_loop_busy(om_host_t *h)
{
    if (h->busy_fixed) {
        return h->busy;
    }
    uint64_t now = uv_hrtime();
    if (h->busy_t0 == 0) {
        h->busy_t0 = now;
        h->busy_cpu0 = thread_cpu_ns();
        return 0;
    }
    if (now - h->busy_t0 >= BUSY_WINDOW) {
        uint64_t cpu = thread_cpu_ns();
        double b = (double)(cpu - h->busy_cpu0) / (double)(now - h->busy_t0);
        h->busy = b < 0 ? 0 : b > 1 ? 1 : b;
        h->busy_t0 = now;
        h->busy_cpu0 = cpu;
    }
    return h->busy;
}

int om_host_init(om_host_t *h, uv_loop_t *loop, om_err_t *err)
{
    *h = (om_host_t){.loop = loop};
    h->metrics = om_metrics_new();
    if (h->metrics == NULL) {
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    unsigned n = om_workers_default_size();
    om_workers_cfg_t wc = {
        .name = "worker", .max_threads = n, .max_queued = SHARED_QUEUE_PER_THREAD * n};
    int rc = om_workers_new(loop, &wc, &h->workers, err);
    if (rc != 0) {
        om_metrics_free(h->metrics);
        h->metrics = NULL;
        return rc;
    }
    h->intake = om_intake_new(loop);
    h->grpc = om_grpc_new();
    if (h->intake == NULL || h->grpc == NULL) {
        om_host_close(h, NULL, NULL);
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    return 0;
}

static void finish_close(om_host_t *h)
{
    om_grpc_free(h->grpc);
    h->grpc = NULL;
    om__host_clear_extensions(h);
    om_metrics_free(h->metrics);
    h->metrics = NULL;
    om_done_fn done = h->close_done;
    void *done_arg = h->close_arg;
    h->close_done = NULL;
    h->close_arg = NULL;
    if (done != NULL) {
        done(done_arg);
    }
}

static void intake_closed(void *arg)
{
    finish_close(arg);
}

/* The pool first, at once (its queued jobs are cancelled now), then the intake. */
static void workers_closed(void *arg)
{
    om_host_t *h = arg;
    om_intake_t *in = h->intake;
    h->intake = NULL;
    if (in == NULL) {
        finish_close(h);
        return;
    }
    om_intake_close(in, intake_closed, h);
}

void om_host_close(om_host_t *h, om_done_fn done, void *arg)
{
    h->close_done = done;
    h->close_arg = arg;
    om_workers_t *w = h->workers;
    h->workers = NULL;
    if (w == NULL) {
        /* A host made by hand (or one closed already): no pool to wait for. */
        workers_closed(h);
        return;
    }
    om_workers_close(w, workers_closed, h);
}
