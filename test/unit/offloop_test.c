/* offloop_test.c: a pipeline's run of OM_CAP_OFF_LOOP processors (src/offloop.c) executes on
 * the thread that prepares the request, the rest of the chain on the thread that finishes it
 * (the loop), and the answer the receiver gets is the whole pipeline's: a refusal from after
 * the run, an error of the run, success when the run dropped everything. The graph's wiring
 * of real processors into runs is in pipeline_test.c. */
#include <pthread.h>

#include "om_test.h"
#include "om_testdata.h"
#include "pipeline.h"

typedef enum { PASS, DROP_ALL, FAIL } mode_t_;

/* A test processor: records the thread it ran on, then passes on, drops or fails. */
typedef struct tproc {
    om_consumer_t next;
    mode_t_ mode;
    int calls;
    pthread_t ran_on;
} tproc_t;

static int tproc_consume(void *self, om_batch_t *b)
{
    tproc_t *p = self;
    p->calls++;
    p->ran_on = pthread_self();
    switch (p->mode) {
    case DROP_ALL:
        om_batch_release(b);
        return 0;
    case FAIL:
        om_batch_release(b);
        return OM_EINVAL;
    default:
        return om_consumer_consume(&p->next, b);
    }
}

/* What follows the run (a batch processor, an exporter): answers rc. */
typedef struct tail {
    int rc;
    int calls;
    size_t items;
    pthread_t ran_on;
} tail_t;

static int tail_consume(void *self, om_batch_t *b)
{
    tail_t *t = self;
    t->calls++;
    t->items = b->items;
    t->ran_on = pthread_self();
    om_batch_release(b);
    return t->rc;
}

/* A stage over two processors (a, b) followed by tail, as pipeline.c wires it. */
typedef struct chain {
    tproc_t a, b;
    tail_t tail;
    om__stage_t *st;
    om_consumer_t entry;
} chain_t;

static void chain_init(chain_t *c, int tail_rc)
{
    memset(c, 0, sizeof *c);
    c->tail.rc = tail_rc;
    c->st = om__stage_new();
    ASSERT_TRUE(c->st != NULL);
    om__stage_set_rest(c->st, (om_consumer_t){.self = &c->tail, .consume = tail_consume});
    c->b.next = om__stage_handoff(c->st);
    c->a.next = (om_consumer_t){.self = &c->b, .consume = tproc_consume};
    om__stage_set_head(c->st, (om_consumer_t){.self = &c->a, .consume = tproc_consume});
    c->entry = om__stage_entry(c->st);
}

/* The decoding thread: prepares one request. */
typedef struct prep_job {
    const om_consumer_t *next;
    om_batch_t *batch;
    om_prepared_t p;
} prep_job_t;

static void *prepare_thread(void *arg)
{
    prep_job_t *j = arg;
    om_consumer_prepare(j->next, j->batch, &j->p);
    return NULL;
}

static void prepare_elsewhere(prep_job_t *j)
{
    pthread_t t;
    ASSERT_EQ_INT(pthread_create(&t, NULL, prepare_thread, j), 0);
    ASSERT_EQ_INT(pthread_join(t, NULL), 0);
}

static void test_run_executes_off_the_loop_and_refusal_comes_back(void)
{
    chain_t c;
    chain_init(&c, OM_EREFUSED);
    prep_job_t j = {.next = &c.entry, .batch = om_testdata_simple(OM_SIG_TRACES, 5, 1)};
    prepare_elsewhere(&j);
    /* Both processors ran on the preparing thread; nothing after them ran yet. */
    ASSERT_EQ_INT(c.a.calls, 1);
    ASSERT_EQ_INT(c.b.calls, 1);
    ASSERT_TRUE(!pthread_equal(c.a.ran_on, pthread_self()));
    ASSERT_TRUE(!pthread_equal(c.b.ran_on, pthread_self()));
    ASSERT_EQ_INT(c.tail.calls, 0);
    ASSERT_EQ_UINT(j.p.items, 5);
    /* The loop hands on the rest and gets the pipeline's answer: the refusal. */
    ASSERT_EQ_INT(om_consumer_finish(&c.entry, &j.p), OM_EREFUSED);
    ASSERT_EQ_INT(c.tail.calls, 1);
    ASSERT_EQ_UINT(c.tail.items, 5);
    ASSERT_TRUE(pthread_equal(c.tail.ran_on, pthread_self()));
    ASSERT_TRUE(j.p.batch == NULL);
    om__stage_free(c.st);
}

static void test_run_that_drops_everything_answers_success(void)
{
    chain_t c;
    chain_init(&c, OM_EREFUSED);
    c.a.mode = DROP_ALL;
    prep_job_t j = {.next = &c.entry, .batch = om_testdata_simple(OM_SIG_TRACES, 3, 1)};
    prepare_elsewhere(&j);
    ASSERT_EQ_INT(om_consumer_finish(&c.entry, &j.p), 0);
    ASSERT_EQ_INT(c.b.calls, 0);
    ASSERT_EQ_INT(c.tail.calls, 0);
    om__stage_free(c.st);
}

static void test_error_of_the_run_is_the_answer(void)
{
    chain_t c;
    chain_init(&c, 0);
    c.b.mode = FAIL;
    prep_job_t j = {.next = &c.entry, .batch = om_testdata_simple(OM_SIG_TRACES, 3, 1)};
    prepare_elsewhere(&j);
    ASSERT_EQ_INT(om_consumer_finish(&c.entry, &j.p), OM_EINVAL);
    ASSERT_EQ_INT(c.tail.calls, 0);
    om__stage_free(c.st);
}

/* A batch consumed the ordinary way (on the loop) goes through the same run, on the loop. */
static void test_entry_consumed_on_the_loop(void)
{
    chain_t c;
    chain_init(&c, OM_EAGAIN);
    ASSERT_EQ_INT(om_consumer_consume(&c.entry, om_testdata_simple(OM_SIG_TRACES, 2, 1)),
                  OM_EAGAIN);
    ASSERT_TRUE(pthread_equal(c.a.ran_on, pthread_self()));
    ASSERT_EQ_INT(c.tail.calls, 1);
    om__stage_free(c.st);
}

/* A consumer that is not a run (a fan-out, a pipeline starting with batch): preparing runs
 * nothing; finishing consumes on the loop. A request refused before finishing is released. */
static void test_no_run_prepares_nothing(void)
{
    tail_t t = {.rc = OM_EREFUSED};
    om_consumer_t plain = {.self = &t, .consume = tail_consume};
    prep_job_t j = {.next = &plain, .batch = om_testdata_simple(OM_SIG_LOGS, 4, 1)};
    prepare_elsewhere(&j);
    ASSERT_EQ_INT(t.calls, 0);
    ASSERT_TRUE(j.p.batch != NULL && j.p.stage == NULL);
    ASSERT_EQ_INT(om_consumer_finish(&plain, &j.p), OM_EREFUSED);
    ASSERT_TRUE(pthread_equal(t.ran_on, pthread_self()));

    chain_t c;
    chain_init(&c, 0);
    prep_job_t k = {.next = &c.entry, .batch = om_testdata_simple(OM_SIG_LOGS, 4, 1)};
    prepare_elsewhere(&k);
    om_prepared_release(&k.p); /* intake refusing: answered without the rest */
    ASSERT_EQ_INT(c.tail.calls, 0);
    om__stage_free(c.st);
}

/* Many threads prepare through one run at once: the core serialises the run (its processors
 * need not be reentrant: tproc's plain counter stays exact under TSan), and every request
 * reaches the rest once. */
#define N_THREADS 4
#define PER_THREAD 200

typedef struct hammer {
    chain_t *c;
    om_prepared_t p[PER_THREAD];
} hammer_t;

static void *hammer_thread(void *arg)
{
    hammer_t *h = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        om_consumer_prepare(&h->c->entry, om_testdata_simple(OM_SIG_TRACES, 1, (uint64_t)i),
                            &h->p[i]);
    }
    return NULL;
}

static void test_concurrent_preparers_are_serialised(void)
{
    chain_t c;
    chain_init(&c, 0);
    hammer_t h[N_THREADS];
    pthread_t t[N_THREADS];
    for (int i = 0; i < N_THREADS; i++) {
        h[i].c = &c;
        ASSERT_EQ_INT(pthread_create(&t[i], NULL, hammer_thread, &h[i]), 0);
    }
    for (int i = 0; i < N_THREADS; i++) {
        ASSERT_EQ_INT(pthread_join(t[i], NULL), 0);
    }
    ASSERT_EQ_INT(c.a.calls, N_THREADS * PER_THREAD);
    for (int i = 0; i < N_THREADS; i++) {
        for (int k = 0; k < PER_THREAD; k++) {
            ASSERT_EQ_INT(om_consumer_finish(&c.entry, &h[i].p[k]), 0);
        }
    }
    ASSERT_EQ_INT(c.tail.calls, N_THREADS * PER_THREAD);
    om__stage_free(c.st);
}

int main(void)
{
    om_log_set_level(OM_LOG_ERROR);
    OM_RUN(test_run_executes_off_the_loop_and_refusal_comes_back);
    OM_RUN(test_run_that_drops_everything_answers_success);
    OM_RUN(test_error_of_the_run_is_the_answer);
    OM_RUN(test_entry_consumed_on_the_loop);
    OM_RUN(test_no_run_prepares_nothing);
    OM_RUN(test_concurrent_preparers_are_serialised);
    return om_test_summary();
}
