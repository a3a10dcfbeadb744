/* offloop.c: a pipeline's leading OM_CAP_OFF_LOOP processors, run where the request was
 * decoded (om.h, "Processors off the loop thread").
 *
 * Why this shape. The loop thread is the one serial resource; with filter or attributes in
 * the pipeline it spent 0.5-0.65 us per span, half of it in those processors (bench/run 9,
 * 10). The request is already decoded off the loop (the gRPC completion-queue thread, an
 * HTTP worker), so running the stateless processors right there costs no extra hand-off or
 * wake-up; handing the batch to the worker pool from the loop and back would cost two
 * (dear on a small VM) and would make consume asynchronous, which the receivers' replies
 * (the pipeline's answer) do not allow. Components never call each other, so the cut
 * between the off-loop part and the rest is the core's: the run's last processor is handed a
 * core consumer (handoff) as its next, which, while a run is in progress on this thread,
 * keeps the batch instead of passing it on; the loop later passes it to the rest. The
 * pipeline's entry is the stage itself, so a batch consumed the ordinary way (on the loop:
 * an authenticated gRPC call, a small HTTP body, a connector) goes through the same path, on
 * the loop. A processor of the run need not be reentrant: one mutex per run serialises its
 * executions (uncontended with one decoding thread; held only for the processors, never
 * across the rest of the chain). */
#include <uv.h>

#include "log.h"
#include "pipeline.h"

struct om__stage {
    om_consumer_t head; /* the run's first processor */
    om_consumer_t rest; /* what follows the run: a processor, or the exporters' fan-out */
    uv_mutex_t mu;      /* one execution of the run at a time */
};

/* The run in progress on this thread: where handoff leaves the batch. */
typedef struct capture {
    const om__stage_t *stage;
    om_batch_t *batch;
} capture_t;

static _Thread_local capture_t *current;

om__stage_t *om__stage_new(void)
{
    om__stage_t *st = om_calloc(1, sizeof *st);
    if (st != NULL && uv_mutex_init(&st->mu) != 0) {
        om_free(st);
        return NULL;
    }
    return st;
}

void om__stage_free(om__stage_t *st)
{
    if (st != NULL) {
        uv_mutex_destroy(&st->mu);
        om_free(st);
    }
}

void om__stage_set_rest(om__stage_t *st, om_consumer_t rest)
{
    st->rest = rest;
}

void om__stage_set_head(om__stage_t *st, om_consumer_t head)
{
    st->head = head;
}

/* The run's last processor's next: keeps the batch for the thread's run in progress. */
static int handoff_consume(void *self, om_batch_t *batch)
{
    om__stage_t *st = self;
    capture_t *c = current;
    if (c != NULL && c->stage == st && c->batch == NULL) {
        c->batch = batch;
        return 0;
    }
    /* Outside a run (a processor breaking the contract by passing on later, or twice): the
     * rest may only run on the loop thread, which the core cannot tell from here. */
    OM_LOG(OM_LOG_ERROR, "a processor declaring OM_CAP_OFF_LOOP passed a batch on outside its "
                         "consume or twice; the batch is dropped");
    om_batch_release(batch);
    return OM_EINVAL;
}

om_consumer_t om__stage_handoff(om__stage_t *st)
{
    return (om_consumer_t){.self = st, .consume = handoff_consume};
}

/* Any thread: the run on batch; *out is what its last processor passed on (NULL: nothing). */
static int run(om__stage_t *st, om_batch_t *batch, om_batch_t **out)
{
    capture_t c = {.stage = st};
    capture_t *prev = current; /* a run reached from another's rest (connectors): restored */
    current = &c;
    uv_mutex_lock(&st->mu);
    int rc = om_consumer_consume(&st->head, batch);
    uv_mutex_unlock(&st->mu);
    current = prev;
    *out = c.batch;
    return rc;
}

/* What the rest answers for what the run left, combined with the run's own answer. */
static int finish_rest(om__stage_t *st, int rc, om_batch_t *left)
{
    if (left == NULL) {
        return rc;
    }
    int rest_rc = om_consumer_consume(&st->rest, left);
    return rc != 0 ? rc : rest_rc;
}

/* The pipeline's entry on the loop thread: the run, then the rest, right away. */
static int stage_consume(void *self, om_batch_t *batch)
{
    om__stage_t *st = self;
    om_batch_t *left = NULL;
    int rc = run(st, batch, &left);
    return finish_rest(st, rc, left);
}

om_consumer_t om__stage_entry(om__stage_t *st)
{
    return (om_consumer_t){.self = st, .consume = stage_consume};
}

void om_consumer_prepare(const om_consumer_t *next, om_batch_t *batch, om_prepared_t *p)
{
    *p = (om_prepared_t){.batch = batch, .items = batch->items, .signal = batch->signal};
    if (next == NULL || next->consume != stage_consume) {
        return;
    }
    p->stage = next->self;
    p->batch = NULL;
    p->rc = run(next->self, batch, &p->batch);
}

int om_consumer_finish(const om_consumer_t *next, om_prepared_t *p)
{
    om_batch_t *b = p->batch;
    const void *stage = p->stage;
    int rc = p->rc;
    *p = (om_prepared_t){0};
    if (stage == NULL) {
        return om_consumer_consume(next, b);
    }
    return finish_rest((om__stage_t *)stage, rc, b);
}

void om_prepared_release(om_prepared_t *p)
{
    om_batch_release(p->batch);
    *p = (om_prepared_t){0};
}
