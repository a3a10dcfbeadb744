/* grpc_cq_test.c: the process's gRPC completion queue (src/grpc_cq.c). Real gRPC on loopback:
 * a server user (answers calls, or holds them) and client users (channels making calls), each
 * with its own mailbox, as the OTLP receiver and the otlp exporter use the service. Shows that
 * no thread exists before the first user, that every user's tags complete on one thread that
 * is not the loop's, that a user can leave while another keeps calling, and that a server
 * shut down with calls in flight gets all its tags back before it releases the queue. Every
 * wait runs the loop until a condition holds: no sleeps. */
#include <dirent.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>

#include "om.h"
#include "om_test.h"

#define SLOTS 8
#define METHOD "/t.Test/Call"

/* Threads of this process named name (/proc/self/task/N/comm). */
static int threads_named(const char *name)
{
    DIR *d = opendir("/proc/self/task");
    if (d == NULL) {
        return -1;
    }
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.') {
            continue;
        }
        char path[300], comm[32] = {0};
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", de->d_name);
        FILE *f = fopen(path, "r");
        if (f != NULL) {
            if (fgets(comm, sizeof comm, f) != NULL) {
                comm[strcspn(comm, "\n")] = '\0';
                n += strcmp(comm, name) == 0;
            }
            fclose(f);
        }
    }
    closedir(d);
    return n;
}

/* threads_named(name), polled until it is want (a joined thread's /proc entry goes a moment
 * after the join returns) or 2 s passed; returns the last count. */
static int threads_now(const char *name, int want)
{
    uint64_t end = uv_hrtime() + 2000000000ull;
    int n;
    while ((n = threads_named(name)) != want && uv_hrtime() < end) {
        sched_yield();
    }
    return n;
}

/* The thread every done callback ran on; set by the first, compared by the others. */
static pthread_t cb_thread;
static _Atomic int cb_count;
static _Atomic int cb_other_thread; /* callbacks that ran on another thread than the first */
static pthread_t loop_thread;       /* the test's (the loop's) thread */
static _Atomic int cb_on_loop;      /* callbacks run on it: caught by om_grpc_start_batch */

typedef struct user user_t;

/* One operation in flight: the tag (gt) and the mailbox message that brings it to the loop. */
typedef struct op {
    om_msg_t msg;
    om_grpc_tag_t gt;
    user_t *u;
    int ok; /* written by the queue's thread before the post */
    int kind;
    /* server slot */
    grpc_call *call;
    grpc_call_details details;
    grpc_metadata_array md;
    int cancelled;
    bool replying;
    /* client call */
    grpc_metadata_array init_md, trail_md;
    grpc_status_code status;
    grpc_slice details_msg;
} op_t;

enum { K_SLOT, K_CLIENT, K_SHUTDOWN };

struct user {
    om_mailbox_t *mb;
    grpc_completion_queue *cq;
    unsigned out; /* tags handed to gRPC, not yet run on the loop */
    /* server */
    grpc_server *server;
    int port;
    bool running;
    bool hold;           /* do not answer calls: keep them open until cancelled */
    bool inline_replies; /* answer with om_grpc_start_batch (else grpc_call_start_batch) */
    om_grpc_t *grpc;
    unsigned held;
    bool shutdown_back;
    op_t slots[SLOTS];
    op_t shutdown_op;
    /* client */
    grpc_channel *channel;
    unsigned ok_calls, failed_calls;
};

static void tag_done(om_grpc_tag_t *gt, bool ok)
{
    op_t *o = (op_t *)(void *)((char *)gt - offsetof(op_t, gt));
    if (pthread_equal(pthread_self(), loop_thread)) {
        atomic_fetch_add(&cb_on_loop, 1);
        o->ok = ok;
        om_mailbox_post(o->u->mb, &o->msg);
        return;
    }
    if (atomic_fetch_add(&cb_count, 1) == 0) {
        cb_thread = pthread_self();
    } else if (!pthread_equal(cb_thread, pthread_self())) {
        atomic_fetch_add(&cb_other_thread, 1);
    }
    o->ok = ok;
    om_mailbox_post(o->u->mb, &o->msg);
}

static void start(user_t *u, op_t *o)
{
    u->out++;
    OM_TSAN_RELEASE(&o->gt);
}

static void slot_arm(user_t *u, op_t *o)
{
    grpc_metadata_array_init(&o->md);
    grpc_call_details_init(&o->details);
    o->replying = false;
    start(u, o);
    grpc_call_error ce =
        grpc_server_request_call(u->server, &o->call, &o->details, &o->md, u->cq, u->cq, &o->gt);
    if (ce != GRPC_CALL_OK) {
        abort();
    }
}

static void slot_clear(op_t *o)
{
    grpc_metadata_array_destroy(&o->md);
    grpc_call_details_destroy(&o->details);
    if (o->call != NULL) {
        grpc_call_unref(o->call);
        o->call = NULL;
    }
}

/* A new call: answer it OK, or (hold) only wait for its end. */
static void slot_answer(user_t *u, op_t *o)
{
    grpc_op ops[3];
    memset(ops, 0, sizeof ops);
    size_t n = 0;
    if (!u->hold) {
        ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
        ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
        ops[n++].data.send_status_from_server.status = GRPC_STATUS_OK;
    } else {
        u->held++;
    }
    ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[n++].data.recv_close_on_server.cancelled = &o->cancelled;
    o->replying = true;
    start(u, o);
    grpc_call_error ce =
        u->inline_replies
            ? (grpc_call_error)om_grpc_start_batch(u->grpc, u->cq, o->call, ops, n, &o->gt)
            : grpc_call_start_batch(o->call, ops, n, &o->gt, NULL);
    if (ce != GRPC_CALL_OK) {
        abort();
    }
}

static void client_finish(op_t *o)
{
    user_t *u = o->u;
    if (o->status == GRPC_STATUS_OK) {
        u->ok_calls++;
    } else {
        u->failed_calls++;
    }
    grpc_metadata_array_destroy(&o->init_md);
    grpc_metadata_array_destroy(&o->trail_md);
    grpc_slice_unref(o->details_msg);
    grpc_call_unref(o->call);
    free(o);
}

static void run_op(om_msg_t *m)
{
    op_t *o = (op_t *)(void *)m;
    user_t *u = o->u;
    u->out--;
    switch (o->kind) {
    case K_CLIENT:
        client_finish(o);
        return;
    case K_SHUTDOWN:
        u->shutdown_back = true;
        return;
    default:
        break;
    }
    if (!o->ok) { /* the server shut down: the armed request fails */
        slot_clear(o);
        return;
    }
    if (!o->replying) {
        slot_answer(u, o);
        return;
    }
    if (u->hold) {
        u->held--;
    }
    slot_clear(o);
    if (u->running) {
        slot_arm(u, o);
    }
}

static void user_open(om_host_t *h, user_t *u)
{
    memset(u, 0, sizeof *u);
    u->grpc = h->grpc;
    u->mb = om_mailbox_new(h->loop);
    om_err_t err = {0};
    if (u->mb == NULL || om_grpc_acquire(h->grpc, &u->cq, &err) != 0) {
        abort();
    }
}

static void server_start(om_host_t *h, user_t *u, bool hold)
{
    user_open(h, u);
    u->hold = hold;
    u->server = grpc_server_create(NULL, NULL);
    grpc_server_register_completion_queue(u->server, u->cq, NULL);
    grpc_server_credentials *creds = grpc_insecure_server_credentials_create();
    u->port = grpc_server_add_http2_port(u->server, "127.0.0.1:0", creds);
    grpc_server_credentials_release(creds);
    grpc_server_start(u->server);
    u->running = true;
    for (int i = 0; i < SLOTS; i++) {
        u->slots[i] = (op_t){.msg.run = run_op, .gt.done = tag_done, .u = u, .kind = K_SLOT};
        slot_arm(u, &u->slots[i]);
    }
    u->shutdown_op = (op_t){.msg.run = run_op, .gt.done = tag_done, .u = u, .kind = K_SHUTDOWN};
}

static void client_start(om_host_t *h, user_t *u, int port)
{
    user_open(h, u);
    char target[64];
    snprintf(target, sizeof target, "127.0.0.1:%d", port);
    grpc_channel_credentials *creds = grpc_insecure_credentials_create();
    u->channel = grpc_channel_create(target, creds, NULL);
    grpc_channel_credentials_release(creds);
}

static void client_call(user_t *u)
{
    op_t *o = calloc(1, sizeof *o);
    *o = (op_t){.msg.run = run_op, .gt.done = tag_done, .u = u, .kind = K_CLIENT};
    grpc_metadata_array_init(&o->init_md);
    grpc_metadata_array_init(&o->trail_md);
    o->details_msg = grpc_empty_slice();
    gpr_timespec deadline =
        gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(30000, GPR_TIMESPAN));
    o->call = grpc_channel_create_call(u->channel, NULL, GRPC_PROPAGATE_DEFAULTS, u->cq,
                                       grpc_slice_from_static_string(METHOD), NULL, deadline, NULL);
    grpc_op ops[4];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].flags = GRPC_INITIAL_METADATA_WAIT_FOR_READY;
    ops[1].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[2].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[2].data.recv_initial_metadata.recv_initial_metadata = &o->init_md;
    ops[3].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[3].data.recv_status_on_client.trailing_metadata = &o->trail_md;
    ops[3].data.recv_status_on_client.status = &o->status;
    ops[3].data.recv_status_on_client.status_details = &o->details_msg;
    start(u, o);
    if (grpc_call_start_batch(o->call, ops, 4, &o->gt, NULL) != GRPC_CALL_OK) {
        abort();
    }
}

static void loop_until(uv_loop_t *loop, const unsigned *v, unsigned want)
{
    while (*v != want) {
        uv_run(loop, UV_RUN_ONCE);
    }
}

static void mb_closed(void *arg)
{
    *(bool *)arg = true;
}

/* The user's tags are all back: release the queue, then close the mailbox. */
static void user_close(om_host_t *h, user_t *u)
{
    om_grpc_release(h->grpc);
    bool closed = false;
    om_mailbox_close(u->mb, mb_closed, &closed);
    while (!closed) {
        uv_run(h->loop, UV_RUN_ONCE);
    }
}

static void client_stop(om_host_t *h, user_t *u)
{
    loop_until(h->loop, &u->out, 0);
    grpc_channel_destroy(u->channel);
    user_close(h, u);
}

/* Shutdown as the receiver does it: stop accepting, cancel what is open, wait for every tag
 * (armed requests fail, held calls end cancelled, the shutdown tag comes back), destroy. */
static void server_stop(om_host_t *h, user_t *u)
{
    u->running = false;
    start(u, &u->shutdown_op);
    grpc_server_shutdown_and_notify(u->server, u->cq, &u->shutdown_op.gt);
    grpc_server_cancel_all_calls(u->server);
    loop_until(h->loop, &u->out, 0);
    grpc_server_destroy(u->server);
    user_close(h, u);
}

static void reset_counts(void)
{
    atomic_store(&cb_count, 0);
    atomic_store(&cb_other_thread, 0);
    atomic_store(&cb_on_loop, 0);
    loop_thread = pthread_self();
}

static void test_no_thread_without_users(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    om_host_t host;
    om_test_host_init(&host, &loop);
    ASSERT_TRUE(host.grpc != NULL);
    ASSERT_TRUE(!om_grpc_running(host.grpc));
    ASSERT_EQ_INT(threads_now("om-grpc-cq", 0), 0);
    om_test_host_close(&host);
    ASSERT_EQ_INT(uv_loop_close(&loop), 0);
}

static void test_hand_made_host_refuses(void)
{
    grpc_completion_queue *cq = NULL;
    om_err_t err = {0};
    ASSERT_EQ_INT(om_grpc_acquire(NULL, &cq, &err), OM_ENOTSUP);
    ASSERT_TRUE(cq == NULL);
}

/* A server and a client: both users' tags complete on the one queue thread, not the loop. */
static void test_two_users_share_one_thread(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    om_host_t host;
    om_test_host_init(&host, &loop);
    reset_counts();
    user_t srv, cli;
    server_start(&host, &srv, false);
    ASSERT_TRUE(srv.port > 0);
    client_start(&host, &cli, srv.port);
    ASSERT_TRUE(srv.cq == cli.cq);
    ASSERT_TRUE(om_grpc_running(host.grpc));
    ASSERT_EQ_INT(threads_now("om-grpc-cq", 1), 1);
    for (int i = 0; i < 20; i++) {
        client_call(&cli);
    }
    loop_until(&loop, &cli.ok_calls, 20);
    ASSERT_EQ_INT(cli.failed_calls, 0);
    client_stop(&host, &cli);
    ASSERT_TRUE(om_grpc_running(host.grpc)); /* the server still uses it */
    server_stop(&host, &srv);
    /* Every tag is back: per call the request, the reply and the client's batch. */
    ASSERT_TRUE(atomic_load(&cb_count) >= 60);
    ASSERT_EQ_INT(atomic_load(&cb_other_thread), 0);
    ASSERT_TRUE(!pthread_equal(cb_thread, pthread_self()));
    ASSERT_TRUE(!om_grpc_running(host.grpc));
    ASSERT_EQ_INT(threads_now("om-grpc-cq", 0), 0);
    om_test_host_close(&host);
    ASSERT_EQ_INT(uv_loop_close(&loop), 0);
}

/* Client A leaves (its channel destroyed, its release done, its mailbox closed) while client
 * B has calls in flight; B's calls still complete, and a user that comes after the queue
 * stopped gets a new one. */
static void test_one_user_leaves_other_keeps_calling(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    om_host_t host;
    om_test_host_init(&host, &loop);
    reset_counts();
    user_t srv, a, b;
    server_start(&host, &srv, false);
    client_start(&host, &a, srv.port);
    client_start(&host, &b, srv.port);
    for (int i = 0; i < 10; i++) {
        client_call(&a);
    }
    loop_until(&loop, &a.ok_calls, 10);
    for (int i = 0; i < 30; i++) {
        client_call(&b);
    }
    client_stop(&host, &a); /* runs the loop: B's calls progress meanwhile */
    loop_until(&loop, &b.ok_calls, 30);
    for (int i = 0; i < 10; i++) {
        client_call(&b);
    }
    loop_until(&loop, &b.ok_calls, 40);
    ASSERT_EQ_INT(b.failed_calls, 0);
    ASSERT_EQ_INT(atomic_load(&cb_other_thread), 0);
    client_stop(&host, &b);
    server_stop(&host, &srv);
    ASSERT_TRUE(!om_grpc_running(host.grpc));
    /* Again from nothing: a new queue and thread for the next first user. */
    server_start(&host, &srv, false);
    client_start(&host, &a, srv.port);
    client_call(&a);
    loop_until(&loop, &a.ok_calls, 1);
    client_stop(&host, &a);
    server_stop(&host, &srv);
    ASSERT_EQ_INT(threads_now("om-grpc-cq", 0), 0);
    om_test_host_close(&host);
    ASSERT_EQ_INT(uv_loop_close(&loop), 0);
}

/* The server holds every call open; it shuts down (and releases) while the client's calls are
 * in flight and the client keeps using the queue; the client's calls end with an error, and
 * the client then leaves too. */
static void test_shutdown_with_calls_in_flight(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    om_host_t host;
    om_test_host_init(&host, &loop);
    reset_counts();
    user_t srv, cli;
    server_start(&host, &srv, true);
    client_start(&host, &cli, srv.port);
    for (int i = 0; i < SLOTS; i++) {
        client_call(&cli);
    }
    loop_until(&loop, &srv.held, SLOTS);
    ASSERT_EQ_INT(cli.out, SLOTS);
    server_stop(&host, &srv); /* waits for all of the server's tags, then releases */
    ASSERT_TRUE(srv.shutdown_back);
    ASSERT_TRUE(om_grpc_running(host.grpc)); /* the client's calls still need it */
    loop_until(&loop, &cli.failed_calls, SLOTS);
    ASSERT_EQ_INT(cli.ok_calls, 0);
    client_stop(&host, &cli);
    ASSERT_TRUE(!om_grpc_running(host.grpc));
    om_test_host_close(&host);
    ASSERT_EQ_INT(uv_loop_close(&loop), 0);
}

/* om_grpc_start_batch: a server's reply (status OK, the client already half-closed) is written
 * during the call, and its completion then runs its done on the calling (loop) thread instead
 * of waking the queue's thread; every call is still answered and every tag comes back. Were
 * the completion lost, the slots would not re-arm and the calls past SLOTS would hang. */
static void test_inline_reply_completion_runs_on_the_caller(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    om_host_t host;
    om_test_host_init(&host, &loop);
    reset_counts();
    user_t srv, cli;
    server_start(&host, &srv, false);
    srv.inline_replies = true;
    client_start(&host, &cli, srv.port);
    const unsigned calls = 4 * SLOTS;
    for (unsigned i = 0; i < calls; i++) {
        client_call(&cli);
        loop_until(&loop, &cli.ok_calls, i + 1); /* one at a time: each reply finds a free slot */
    }
    ASSERT_EQ_INT(cli.failed_calls, 0);
    client_stop(&host, &cli);
    server_stop(&host, &srv);
    /* Replies only (requests and the client's batches complete on the queue's thread). */
    ASSERT_TRUE(atomic_load(&cb_on_loop) >= (int)calls / 2); /* all of them, as a rule */
    ASSERT_TRUE(atomic_load(&cb_on_loop) <= (int)calls);
    ASSERT_TRUE(!om_grpc_running(host.grpc));
    om_test_host_close(&host);
    ASSERT_EQ_INT(uv_loop_close(&loop), 0);
}

int main(void)
{
    grpc_init();
    OM_RUN(test_no_thread_without_users);
    OM_RUN(test_hand_made_host_refuses);
    OM_RUN(test_two_users_share_one_thread);
    OM_RUN(test_one_user_leaves_other_keeps_calling);
    OM_RUN(test_shutdown_with_calls_in_flight);
    OM_RUN(test_inline_reply_completion_runs_on_the_caller);
    grpc_shutdown();
    return om_test_summary();
}
