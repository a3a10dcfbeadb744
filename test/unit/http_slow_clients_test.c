/* http_slow_clients_test.c: the HTTP server stays available under abuse (issue 9: 1,024
 * connections that each sent half a request used to lock every legitimate client out of the
 * OTLP HTTP receiver, and were still open 20 s later).
 *
 * 1. Thousands of slow clients (as many as the file descriptor limit allows: each costs two
 *    descriptors here, ours and the server's): a quarter connect and send nothing, a quarter
 *    send half their headers, a quarter send their headers and part of a body, a quarter send
 *    a whole request and then keep the connection idle. While they are all open a normal
 *    request is answered; then every one of them is closed on time: not before the configured
 *    timeout, and not long after it.
 * 2. The attack of the issue, against a connection limit: more half-request connections than
 *    the server may hold, with otelcol's default timeouts (a minute: nothing expires during
 *    the test). The newcomer is still answered: the oldest stalled connections make room.
 *
 * The server runs on this thread's loop; the slow clients live in one thread that opens them
 * with blocking connects and then watches them all with poll() until the server has closed
 * each. Nothing sleeps: the loop runs until the client thread says it is done. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "om.h"
#include "om_test.h"
#include "om_testhttp.h"

#define MS OM_NS_PER_MS
/* The configured timeout for every slow kind (headers, body, idle): long enough for the
 * client to open every connection before the first ones expire, which takes longer on a
 * loaded machine; so it is four times what opening them is estimated to take, and at least
 * 4 s. */
static uint64_t timeout_ms = 4000;
/* How late a close may come: the loop has thousands of connections to serve. */
#define SLACK_MS 3000
#define MAX_CONNS_TESTED 10000

static const char *const kinds[4] = {
    "",                                                             /* connect only */
    "GET /ok HTTP/1.1\r\nHost: a\r\n",                              /* half the headers */
    "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nab", /* part of a body */
    "GET /ok HTTP/1.1\r\nHost: a\r\n\r\n",                          /* then idle */
};

/* ------------------------------------------------------------------------------------------ */
/* The server                                                                                 */

typedef struct fx {
    uv_loop_t loop;
    om_http_server_cfg_t cfg;
    om_http_server_t *srv;
    int port, done;
    size_t conns_at_answer; /* the server's connections when the normal request was answered */
} fx_t;

static void h_ok(om_http_req_t *req, void *arg)
{
    fx_t *f = arg;
    f->conns_at_answer = om_http_server_conn_count(f->srv);
    om_http_respond(req, 200, "text/plain", NULL, "ok", 2);
}

static const om_http_handler_t H_OK = {.complete = h_ok};

static int fx_start(fx_t *f, size_t max_conns, int64_t timeout_ns)
{
    memset(f, 0, sizeof *f);
    uv_loop_init(&f->loop);
    om_http_server_cfg_defaults(&f->cfg);
    f->cfg.endpoint = "127.0.0.1:0";
    if (timeout_ns > 0) {
        /* write_timeout too: it runs from a request's headers, so it would cut the stalled
         * body at its default 30 s when the timeout tested is longer (a slow build's). */
        f->cfg.read_header_timeout = timeout_ns;
        f->cfg.idle_timeout = timeout_ns;
        f->cfg.write_timeout = timeout_ns;
    }
    om_http_server_opts_t o = {.loop = &f->loop,
                               .log_name = "test/http",
                               .cfg = &f->cfg,
                               .default_endpoint = "localhost:0",
                               .max_conns = max_conns};
    om_err_t err = {0};
    if (om_http_server_new(&o, &f->srv, &err) != 0 ||
        om_http_server_route(f->srv, "/ok", OM_HTTP_GET, &H_OK, f, 0, &err) != 0 ||
        om_http_server_route(f->srv, "/p", OM_HTTP_POST, &H_OK, f, 0, &err) != 0 ||
        om_http_server_start(f->srv, &err) != 0) {
        fprintf(stderr, "server: %s\n", err.msg);
        return -1;
    }
    f->port = om_http_server_port(f->srv);
    return 0;
}

static void on_done(void *arg)
{
    ((fx_t *)arg)->done++;
}

static int fx_stop(fx_t *f)
{
    om_http_server_shutdown(f->srv, on_done, f);
    uint64_t end = uv_hrtime() + 20 * OM_NS_PER_S;
    while (f->done == 0 && uv_hrtime() < end) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    om_http_server_free(f->srv);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    return uv_loop_close(&f->loop) == 0 && f->done == 1 ? 0 : -1;
}

/* ------------------------------------------------------------------------------------------ */
/* The slow clients                                                                           */

typedef struct slow {
    int port;
    size_t n;
    int kind_mask; /* which kinds to use: bit k for kinds[k] */
    struct pollfd *fds;
    uint64_t *t_sent, *t_closed; /* uv_hrtime() */
    int *kind;
    size_t opened, closed, early, late, failed;
    uint64_t worst_late_ms;
    atomic_bool all_open, finished, stop;
    uv_async_t *wake;
} slow_t;

static bool open_one(slow_t *s, size_t i)
{
    int k = (int)(i % 4);
    for (int j = 0; j < 4 && !(s->kind_mask & (1 << k)); j++) {
        k = j; /* a kind left out: the first one asked for */
    }
    /* Taken before connecting: the server's clock for this connection starts later (at
     * accept or when it reads the bytes), so "not before the timeout" is measured safely. */
    s->t_sent[i] = uv_hrtime();
    int fd = om_testhttp_connect(s->port, 10000);
    if (fd < 0) {
        return false;
    }
    size_t len = strlen(kinds[k]);
    if (len > 0 && send(fd, kinds[k], len, MSG_NOSIGNAL) != (ssize_t)len) {
        close(fd);
        return false;
    }
    s->kind[i] = k;
    (void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    s->fds[i] = (struct pollfd){.fd = fd, .events = POLLIN};
    return true;
}

/* Read what the server sent; true once it has closed the connection. */
static bool drained_to_close(int fd)
{
    char buf[4096];
    for (;;) {
        ssize_t k = recv(fd, buf, sizeof buf, 0);
        if (k > 0) {
            continue; /* the idle kind's answer */
        }
        if (k == 0) {
            return true;
        }
        return errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
    }
}

static void note_closed(slow_t *s, size_t i, uint64_t now)
{
    close(s->fds[i].fd);
    s->fds[i].fd = -1;
    s->t_closed[i] = now;
    s->closed++;
    uint64_t ms = (now - s->t_sent[i]) / MS;
    if (ms + 2 < timeout_ms) {
        s->early++;
    } else if (ms > timeout_ms + SLACK_MS) {
        s->late++;
    }
    if (ms > timeout_ms && ms - timeout_ms > s->worst_late_ms) {
        s->worst_late_ms = ms - timeout_ms;
    }
}

/* Watch every connection until the server has closed it, or stop is set. */
static void watch(slow_t *s, uint64_t deadline)
{
    /* Bounded by the deadline; each pass handles every ready descriptor. */
    while (s->closed < s->opened && uv_hrtime() < deadline && !atomic_load(&s->stop)) {
        int k = poll(s->fds, s->n, 200);
        if (k <= 0) {
            continue;
        }
        uint64_t now = uv_hrtime();
        for (size_t i = 0; i < s->n; i++) {
            if (s->fds[i].fd >= 0 && s->fds[i].revents != 0 && drained_to_close(s->fds[i].fd)) {
                note_closed(s, i, now);
            }
        }
    }
}

static void slow_main(void *arg)
{
    slow_t *s = arg;
    for (size_t i = 0; i < s->n; i++) {
        s->fds[i].fd = -1;
    }
    for (size_t i = 0; i < s->n; i++) {
        if (open_one(s, i)) {
            s->opened++;
        } else {
            s->failed++;
        }
    }
    atomic_store(&s->all_open, true);
    uv_async_send(s->wake);
    watch(s, uv_hrtime() + (uint64_t)(timeout_ms + SLACK_MS + 20000) * MS);
    for (size_t i = 0; i < s->n; i++) {
        if (s->fds[i].fd >= 0) {
            close(s->fds[i].fd);
        }
    }
    atomic_store(&s->finished, true);
    uv_async_send(s->wake);
}

static void on_wake(uv_async_t *a)
{
    (void)a;
}

static bool slow_alloc(slow_t *s, int port, size_t n, int kind_mask)
{
    memset(s, 0, sizeof *s);
    s->port = port;
    s->n = n;
    s->kind_mask = kind_mask;
    s->fds = calloc(n, sizeof *s->fds);
    s->t_sent = calloc(n, sizeof *s->t_sent);
    s->t_closed = calloc(n, sizeof *s->t_closed);
    s->kind = calloc(n, sizeof *s->kind);
    return s->fds != NULL && s->t_sent != NULL && s->t_closed != NULL && s->kind != NULL;
}

static void slow_free(slow_t *s)
{
    free(s->fds);
    free(s->t_sent);
    free(s->t_closed);
    free(s->kind);
}

static void run_until(fx_t *f, atomic_bool *flag)
{
    uint64_t end = uv_hrtime() + 60 * OM_NS_PER_S;
    while (!atomic_load(flag) && uv_hrtime() < end) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
}

/* As many connections as the descriptor limit allows (two descriptors each, plus room for
 * the rest of the process), after raising the soft limit to the hard one. */
static size_t connections_allowed(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        return 0;
    }
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
        (void)getrlimit(RLIMIT_NOFILE, &rl);
    }
    size_t n = rl.rlim_cur == RLIM_INFINITY ? MAX_CONNS_TESTED : ((size_t)rl.rlim_cur - 300) / 2;
    n = n > MAX_CONNS_TESTED ? MAX_CONNS_TESTED : n;
    return n - n % 4;
}

/* How long opening n connections takes here and now, from opening a few hundred. */
static uint64_t open_time_ms(size_t n)
{
    const size_t sample = 400;
    fx_t f;
    slow_t s;
    if (fx_start(&f, 0, 0) != 0 || !slow_alloc(&s, f.port, sample, 1 << 1)) {
        return 10000;
    }
    uv_async_t wake;
    uv_async_init(&f.loop, &wake, on_wake);
    s.wake = &wake;
    uv_thread_t t;
    uv_thread_create(&t, slow_main, &s);
    run_until(&f, &s.all_open);
    uint64_t ns = s.t_sent[sample - 1] - s.t_sent[0];
    atomic_store(&s.stop, true);
    run_until(&f, &s.finished);
    uv_thread_join(&t);
    uv_close((uv_handle_t *)&wake, NULL);
    (void)fx_stop(&f);
    slow_free(&s);
    return ns * n / (sample - 1) / MS;
}

/* ------------------------------------------------------------------------------------------ */
/* 1. Thousands of slow clients are closed on time, and a normal request is answered.        */

static void test_slow_clients_closed_on_time(void)
{
    size_t n = connections_allowed();
    ASSERT_TRUE(n >= 1000);
    uint64_t estimate = open_time_ms(n);
    /* A sample underestimates (the first connections open fastest; under ThreadSanitizer a
     * loaded machine took 7 times the estimate once, and 14 times on a quiet one in CI):
     * keep a wide margin. */
    timeout_ms = 20 * estimate > 8000 ? 20 * estimate : 8000;
    fprintf(stderr, "  %zu slow connections (about %llu ms to open), timeouts %llu ms\n", n,
            (unsigned long long)estimate, (unsigned long long)timeout_ms);
    fx_t f;
    ASSERT_EQ_INT(fx_start(&f, 0, timeout_ms * MS), 0);
    slow_t s;
    ASSERT_TRUE(slow_alloc(&s, f.port, n, 0xf));
    uv_async_t wake;
    uv_async_init(&f.loop, &wake, on_wake);
    s.wake = &wake;
    uv_thread_t t;
    uv_thread_create(&t, slow_main, &s);
    run_until(&f, &s.all_open);
    uint64_t opened_at = uv_hrtime();
    uint64_t open_ms = (opened_at - s.t_sent[0]) / MS;
    /* Every slow connection is open: a normal client is answered at once. */
    om_testhttp_t h;
    om_testhttp_init(&h, f.port, "GET /ok HTTP/1.1\r\nHost: a\r\n\r\n", 1);
    om_testhttp_run_on(&h, &f.loop);
    uint64_t answer_ms = (uv_hrtime() - opened_at) / MS;
    run_until(&f, &s.finished);
    uv_thread_join(&t);
    /* And the server lets go of all of them. */
    uint64_t end = uv_hrtime() + 20 * OM_NS_PER_S;
    while (om_http_server_conn_count(f.srv) > 0 && uv_hrtime() < end) {
        uv_run(&f.loop, UV_RUN_ONCE);
    }
    fprintf(stderr,
            "  opened in %llu ms; normal request answered %llu ms later with %zu connections "
            "open; %zu closed (%zu early, %zu late; at most %llu ms after the timeout)\n",
            (unsigned long long)open_ms, (unsigned long long)answer_ms, f.conns_at_answer, s.closed,
            s.early, s.late, (unsigned long long)s.worst_late_ms);
    size_t left = om_http_server_conn_count(f.srv);
    uv_close((uv_handle_t *)&wake, NULL);
    ASSERT_EQ_INT(fx_stop(&f), 0);
    size_t opened = s.opened, closed = s.closed, early = s.early, late = s.late;
    slow_free(&s);
    ASSERT_TRUE(open_ms < timeout_ms); /* else the test measured nothing */
    ASSERT_EQ_UINT(opened, n);
    ASSERT_EQ_INT(h.nresp, 1);
    ASSERT_EQ_INT(h.resp[0].status, 200);
    ASSERT_TRUE(f.conns_at_answer > n); /* every slow one was still open then */
    ASSERT_EQ_UINT(closed, n);
    ASSERT_EQ_UINT(early, 0);
    ASSERT_EQ_UINT(late, 0);
    ASSERT_EQ_UINT(left, 0);
}

/* ------------------------------------------------------------------------------------------ */
/* 2. More stalled connections than the limit, nothing expiring: newcomers still get in.      */

static void test_stalled_clients_do_not_lock_others_out(void)
{
    const size_t limit = 1000, n = 1500;
    fx_t f;
    ASSERT_EQ_INT(fx_start(&f, limit, 0), 0); /* otelcol's default timeouts: 1 minute */
    slow_t s;
    ASSERT_TRUE(slow_alloc(&s, f.port, n, 1 << 1)); /* all send half their headers */
    uv_async_t wake;
    uv_async_init(&f.loop, &wake, on_wake);
    s.wake = &wake;
    uv_thread_t t;
    uv_thread_create(&t, slow_main, &s);
    run_until(&f, &s.all_open);
    /* The last connections must have reached the server before the newcomer. */
    uint64_t end = uv_hrtime() + 20 * OM_NS_PER_S;
    while (om_http_server_evictions(f.srv) < n - limit && uv_hrtime() < end) {
        uv_run(&f.loop, UV_RUN_ONCE);
    }
    om_testhttp_t h[3];
    for (int i = 0; i < 3; i++) {
        om_testhttp_init(&h[i], f.port, "GET /ok HTTP/1.1\r\nHost: a\r\n\r\n", 1);
        om_testhttp_run_on(&h[i], &f.loop);
    }
    uint64_t evictions = om_http_server_evictions(f.srv);
    size_t held = om_http_server_conn_count(f.srv);
    fprintf(stderr, "  %zu stalled connections against a limit of %zu: %llu evicted, %zu held\n", n,
            limit, (unsigned long long)evictions, held);
    atomic_store(&s.stop, true);
    run_until(&f, &s.finished);
    uv_thread_join(&t);
    uv_close((uv_handle_t *)&wake, NULL);
    ASSERT_EQ_INT(fx_stop(&f), 0);
    slow_free(&s);
    for (int i = 0; i < 3; i++) {
        ASSERT_EQ_INT(h[i].nresp, 1);
        ASSERT_EQ_INT(h[i].resp[0].status, 200);
    }
    ASSERT_TRUE(evictions > n - limit); /* each newcomer beyond the limit made room */
    ASSERT_TRUE(held <= limit);
}

int main(void)
{
    om_log_set_level(OM_LOG_ERROR); /* eviction warnings are expected here */
    OM_RUN(test_slow_clients_closed_on_time);
    OM_RUN(test_stalled_clients_do_not_lock_others_out);
    return om_test_summary();
}
