/* mailbox_test.c: the mailbox (src/mailbox.c): messages run on the loop in order, a burst
 * costs one wake-up, and lazy posts (om_mailbox_post_lazy) wait for the next wake-up until
 * lazy_max of them do, or until laziness is turned off. "Woken" is observed as whether a
 * non-blocking loop turn runs anything: the tests never wait on time. */
#include <stdlib.h>

#include "om.h"
#include "om_test.h"

typedef struct rec {
    om_msg_t msg; /* first member */
    int id;
} rec_t;

static int order[64];
static int ran;

static void run_rec(om_msg_t *m)
{
    order[ran++] = ((rec_t *)(void *)m)->id;
}

static void init_recs(rec_t *r, int n)
{
    for (int i = 0; i < n; i++) {
        r[i] = (rec_t){.msg.run = run_rec, .id = i};
    }
    ran = 0;
}

static void closed(void *arg)
{
    *(bool *)arg = true;
}

static void close_mb(uv_loop_t *loop, om_mailbox_t *mb)
{
    bool done = false;
    om_mailbox_close(mb, closed, &done);
    while (!done) {
        uv_run(loop, UV_RUN_ONCE);
    }
    ASSERT_EQ_INT(uv_loop_close(loop), 0);
}

static void test_eager_posts_run_in_order(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    om_mailbox_t *mb = om_mailbox_new(&loop);
    ASSERT_TRUE(mb != NULL);
    rec_t r[3];
    init_recs(r, 3);
    for (int i = 0; i < 3; i++) {
        om_mailbox_post(mb, &r[i].msg);
    }
    uv_run(&loop, UV_RUN_NOWAIT);
    ASSERT_EQ_INT(ran, 3);
    ASSERT_TRUE(order[0] == 0 && order[1] == 1 && order[2] == 2);
    /* Without om_mailbox_set_lazy a lazy post wakes like any other. */
    init_recs(r, 1);
    om_mailbox_post_lazy(mb, &r[0].msg);
    uv_run(&loop, UV_RUN_NOWAIT);
    ASSERT_EQ_INT(ran, 1);
    close_mb(&loop, mb);
}

static void test_lazy_posts_wait_for_a_wake_up(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    om_mailbox_t *mb = om_mailbox_new(&loop);
    om_mailbox_set_lazy(mb, 4);
    rec_t r[8];
    init_recs(r, 8);
    /* Three lazy posts: nothing wakes the loop. */
    for (int i = 0; i < 3; i++) {
        om_mailbox_post_lazy(mb, &r[i].msg);
    }
    uv_run(&loop, UV_RUN_NOWAIT);
    ASSERT_EQ_INT(ran, 0);
    /* An ordinary post wakes it, and everything runs in posting order. */
    om_mailbox_post(mb, &r[3].msg);
    uv_run(&loop, UV_RUN_NOWAIT);
    ASSERT_EQ_INT(ran, 4);
    ASSERT_TRUE(order[0] == 0 && order[2] == 2 && order[3] == 3);
    /* The count starts again after a drain; the fourth lazy post wakes the loop. */
    init_recs(r, 8);
    for (int i = 0; i < 3; i++) {
        om_mailbox_post_lazy(mb, &r[i].msg);
        uv_run(&loop, UV_RUN_NOWAIT);
        ASSERT_EQ_INT(ran, 0);
    }
    om_mailbox_post_lazy(mb, &r[3].msg);
    uv_run(&loop, UV_RUN_NOWAIT);
    ASSERT_EQ_INT(ran, 4);
    /* Turning laziness off wakes the loop for what waits; later lazy posts are eager. */
    init_recs(r, 8);
    om_mailbox_post_lazy(mb, &r[0].msg);
    om_mailbox_post_lazy(mb, &r[1].msg);
    uv_run(&loop, UV_RUN_NOWAIT);
    ASSERT_EQ_INT(ran, 0);
    om_mailbox_set_lazy(mb, 0);
    uv_run(&loop, UV_RUN_NOWAIT);
    ASSERT_EQ_INT(ran, 2);
    om_mailbox_post_lazy(mb, &r[2].msg);
    uv_run(&loop, UV_RUN_NOWAIT);
    ASSERT_EQ_INT(ran, 3);
    /* A lazy post left waiting still runs when the mailbox closes. */
    om_mailbox_set_lazy(mb, 4);
    om_mailbox_post_lazy(mb, &r[3].msg);
    uv_run(&loop, UV_RUN_NOWAIT);
    ASSERT_EQ_INT(ran, 3);
    close_mb(&loop, mb);
    ASSERT_EQ_INT(ran, 4);
}

typedef struct poster {
    om_mailbox_t *mb;
    rec_t *r;
    int n;
} poster_t;

/* Another thread: n lazy posts, then one ordinary post. */
static void post_from_thread(void *arg)
{
    poster_t *p = arg;
    for (int i = 0; i < p->n - 1; i++) {
        om_mailbox_post_lazy(p->mb, &p->r[i].msg);
    }
    om_mailbox_post(p->mb, &p->r[p->n - 1].msg);
}

static void test_lazy_posts_from_another_thread(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    om_mailbox_t *mb = om_mailbox_new(&loop);
    om_mailbox_set_lazy(mb, 2);
    rec_t r[40];
    init_recs(r, 40);
    poster_t p = {.mb = mb, .r = r, .n = 40};
    uv_thread_t t;
    ASSERT_EQ_INT(uv_thread_create(&t, post_from_thread, &p), 0);
    /* The last post is ordinary: whatever the interleaving, all 40 run, in order. */
    OM_TEST_RUN_UNTIL(&loop, ran == 40, 10000);
    uv_thread_join(&t);
    ASSERT_EQ_INT(ran, 40);
    for (int i = 0; i < 40; i++) {
        ASSERT_EQ_INT(order[i], i);
    }
    close_mb(&loop, mb);
}

/* Many threads posting at once, ordinary and lazy posts mixed, the loop draining meanwhile:
 * every message runs, woken by the posts alone. A lost wake-up would leave messages in the
 * list with nothing to wake the loop (the repeating timer only lets the deadline be seen). */
#define STRESS_THREADS 3
#define STRESS_POSTS 100000

typedef struct stress {
    om_mailbox_t *mb;
    om_msg_t *msgs;
} stress_t;

static long stress_ran;

static void run_count(om_msg_t *m)
{
    (void)m;
    stress_ran++;
}

static void stress_post(void *arg)
{
    stress_t *st = arg;
    for (int i = 0; i < STRESS_POSTS; i++) {
        st->msgs[i].run = run_count;
        if (i % 3 == 0 && i != STRESS_POSTS - 1) {
            om_mailbox_post_lazy(st->mb, &st->msgs[i]);
        } else {
            om_mailbox_post(st->mb, &st->msgs[i]);
        }
    }
}

static void tick(uv_timer_t *t)
{
    (void)t;
}

static void test_no_post_is_left_without_a_wake_up(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    om_mailbox_t *mb = om_mailbox_new(&loop);
    om_mailbox_set_lazy(mb, 3);
    uv_timer_t timer;
    uv_timer_init(&loop, &timer);
    uv_timer_start(&timer, tick, 50, 50);
    stress_t st[STRESS_THREADS];
    uv_thread_t t[STRESS_THREADS];
    stress_ran = 0;
    for (int i = 0; i < STRESS_THREADS; i++) {
        st[i].mb = mb;
        st[i].msgs = calloc(STRESS_POSTS, sizeof(om_msg_t));
        ASSERT_EQ_INT(uv_thread_create(&t[i], stress_post, &st[i]), 0);
    }
    for (int i = 0; i < STRESS_THREADS; i++) {
        uv_thread_join(&t[i]);
    }
    /* Every thread ended with an ordinary post: nothing may be left waiting. */
    OM_TEST_RUN_UNTIL(&loop, stress_ran == (long)STRESS_THREADS * STRESS_POSTS, 20000);
    ASSERT_EQ_INT(stress_ran, (long)STRESS_THREADS * STRESS_POSTS);
    uv_close((uv_handle_t *)&timer, NULL);
    close_mb(&loop, mb);
    for (int i = 0; i < STRESS_THREADS; i++) {
        free(st[i].msgs);
    }
}

/* A message whose run closes the mailbox, posted from another thread: the loop may run it and
 * close while the poster is still writing its wake-up. The close must wait for that write
 * (ASan would see the poster touch the freed mailbox, TSan the unordered free) and nothing may
 * be left behind. Many rounds, so that some land in the gap. */
typedef struct closer {
    om_msg_t msg; /* first member */
    om_mailbox_t *mb;
    bool closed;
} closer_t;

static void mark_closed(void *arg)
{
    ((closer_t *)arg)->closed = true;
}

static void run_close(om_msg_t *m)
{
    closer_t *c = (closer_t *)(void *)m;
    om_mailbox_close(c->mb, mark_closed, c);
}

static void post_closer(void *arg)
{
    closer_t *c = arg;
    om_mailbox_post(c->mb, &c->msg);
}

static void test_last_message_closes_while_its_poster_writes(void)
{
    for (int round = 0; round < 500; round++) {
        uv_loop_t loop;
        uv_loop_init(&loop);
        closer_t c = {.msg.run = run_close, .mb = om_mailbox_new(&loop)};
        ASSERT_TRUE(c.mb != NULL);
        uv_thread_t t;
        ASSERT_EQ_INT(uv_thread_create(&t, post_closer, &c), 0);
        /* Woken by the post alone: no timer, nothing else in the loop. */
        while (!c.closed) {
            uv_run(&loop, UV_RUN_ONCE);
        }
        uv_thread_join(&t);
        ASSERT_EQ_INT(uv_loop_close(&loop), 0);
    }
}

int main(void)
{
    OM_RUN(test_eager_posts_run_in_order);
    OM_RUN(test_lazy_posts_wait_for_a_wake_up);
    OM_RUN(test_lazy_posts_from_another_thread);
    OM_RUN(test_no_post_is_left_without_a_wake_up);
    OM_RUN(test_last_message_closes_while_its_poster_writes);
    return om_test_summary();
}
