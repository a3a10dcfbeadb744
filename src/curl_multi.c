/* curl_multi.c: core-internal. libcurl's multi interface driven by the libuv loop.
 *
 * libcurl tells us, through CURLMOPT_SOCKETFUNCTION, which sockets it wants watched for what,
 * and through CURLMOPT_TIMERFUNCTION when it next needs to run. We keep one uv_poll_t per
 * socket (created on first interest, closed on CURL_POLL_REMOVE, which curl reports before it
 * closes the socket, so libuv never watches a closed descriptor) and one uv_timer_t, and call
 * curl_multi_socket_action() from their callbacks. Finished transfers are collected with
 * curl_multi_info_read() after each call.
 *
 * Connections stay in the multi handle's cache between transfers, so a new easy handle for the
 * same host reuses an idle connection.
 *
 * Re-entrancy: curl forbids calling multi functions other than curl_multi_assign from inside
 * its callbacks, and the done callback may add transfers or ask us to close. `depth` counts the
 * frames inside socket_action or the info loop; a close asked for inside them runs when the
 * outermost frame returns. */
#include "curl_api.h"

/* Transfers whose socket could not be watched (out of memory) in one frame; more than this
 * many at once only wait for their CURLOPT_TIMEOUT_MS. */
#define MAX_UNWATCHED 16

typedef struct sock {
    uv_poll_t poll; /* data: the sock */
    curl_socket_t fd;
    int events; /* what we last asked libuv for */
    bool closing;
    om__curl_multi_t *m;
    struct sock *prev, *next;
} sock_t;

struct om__curl_multi {
    uv_loop_t *loop;
    CURLM *curl;
    uv_timer_t timer; /* data: the multi */
    sock_t *socks;    /* watched sockets */
    size_t n_socks;
    size_t open;        /* uv handles whose close callback has not run yet */
    unsigned depth;     /* frames inside curl or the info loop */
    bool closing;       /* close requested */
    bool close_started; /* handles are closing: curl's callbacks are ignored */
    CURL *unwatched[MAX_UNWATCHED];
    size_t n_unwatched;
    om__curl_xfer_fn on_done;
    void *arg;
    om_done_fn closed;
    void *closed_arg;
};

static void handle_gone(om__curl_multi_t *m)
{
    if (--m->open == 0 && m->close_started) {
        om_done_fn done = m->closed;
        void *arg = m->closed_arg;
        om_free(m);
        done(arg);
    }
}

static void sock_closed(uv_handle_t *h)
{
    sock_t *s = h->data;
    om__curl_multi_t *m = s->m;
    om_free(s);
    handle_gone(m);
}

static void timer_closed(uv_handle_t *h)
{
    handle_gone(h->data);
}

static void sock_close(om__curl_multi_t *m, sock_t *s)
{
    if (s->prev != NULL) {
        s->prev->next = s->next;
    } else {
        m->socks = s->next;
    }
    if (s->next != NULL) {
        s->next->prev = s->prev;
    }
    m->n_socks--;
    s->closing = true;
    /* uv_close stops the watcher at once, before curl closes the descriptor. */
    uv_close((uv_handle_t *)&s->poll, sock_closed);
}

/* Remember a transfer to fail once curl has returned: it cannot be removed from inside the
 * socket callback. */
static void note_unwatched(om__curl_multi_t *m, CURL *easy)
{
    void *priv = NULL;
    if (easy == NULL || curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&priv) != CURLE_OK ||
        priv == NULL) {
        return; /* curl's internal handle: nothing of ours to fail */
    }
    for (size_t i = 0; i < m->n_unwatched; i++) {
        if (m->unwatched[i] == easy) {
            return;
        }
    }
    if (m->n_unwatched < MAX_UNWATCHED) {
        m->unwatched[m->n_unwatched++] = easy;
    }
}

static void do_close(om__curl_multi_t *m)
{
    m->close_started = true;
    while (m->socks != NULL) {
        sock_close(m, m->socks);
    }
    /* With close_started set, the callbacks curl makes while cleaning up are ignored. */
    curl_multi_cleanup(m->curl);
    m->curl = NULL;
    uv_close((uv_handle_t *)&m->timer, timer_closed);
}

static void fail_unwatched(om__curl_multi_t *m)
{
    while (m->n_unwatched > 0) {
        CURL *easy = m->unwatched[--m->n_unwatched];
        curl_multi_remove_handle(m->curl, easy);
        m->on_done(m->arg, easy, CURLE_OUT_OF_MEMORY);
    }
}

static void collect(om__curl_multi_t *m)
{
    for (;;) {
        int left = 0;
        CURLMsg *msg = curl_multi_info_read(m->curl, &left);
        if (msg == NULL) {
            break;
        }
        if (msg->msg != CURLMSG_DONE) {
            continue;
        }
        /* msg is invalid once the handle is removed: copy what we need first. */
        CURL *easy = msg->easy_handle;
        CURLcode result = msg->data.result;
        curl_multi_remove_handle(m->curl, easy);
        m->on_done(m->arg, easy, result);
    }
}

static void enter(om__curl_multi_t *m)
{
    m->depth++;
}

static void leave(om__curl_multi_t *m)
{
    if (m->depth == 1 && !m->close_started) {
        fail_unwatched(m);
        collect(m);
    }
    if (--m->depth == 0 && m->closing && !m->close_started) {
        do_close(m);
    }
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    sock_t *s = p->data;
    om__curl_multi_t *m = s->m;
    int flags = 0;
    if (status < 0) {
        flags = CURL_CSELECT_ERR;
    } else {
        flags |= (events & UV_READABLE) ? CURL_CSELECT_IN : 0;
        flags |= (events & UV_WRITABLE) ? CURL_CSELECT_OUT : 0;
    }
    int running = 0;
    enter(m);
    curl_multi_socket_action(m->curl, s->fd, flags, &running);
    /* On an error libuv stopped the watcher; if curl still wants the socket (its interest did
     * not change, so it will not tell us again), watch it again. s is freed only in its close
     * callback, so it is still valid here. */
    if (status < 0 && !s->closing) {
        uv_poll_start(&s->poll, s->events, on_poll);
    }
    leave(m);
}

static void on_timeout(uv_timer_t *t)
{
    om__curl_multi_t *m = t->data;
    int running = 0;
    enter(m);
    curl_multi_socket_action(m->curl, CURL_SOCKET_TIMEOUT, 0, &running);
    leave(m);
}

static sock_t *sock_new(om__curl_multi_t *m, curl_socket_t fd)
{
    sock_t *s = om_calloc(1, sizeof *s);
    if (s == NULL) {
        return NULL;
    }
    if (uv_poll_init_socket(m->loop, &s->poll, fd) != 0) {
        om_free(s);
        return NULL;
    }
    s->poll.data = s;
    s->fd = fd;
    s->m = m;
    s->next = m->socks;
    if (m->socks != NULL) {
        m->socks->prev = s;
    }
    m->socks = s;
    m->n_socks++;
    m->open++;
    return s;
}

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    om__curl_multi_t *m = userp;
    sock_t *s = socketp;
    if (m->close_started) {
        return 0;
    }
    if (what == CURL_POLL_REMOVE) {
        if (s != NULL) {
            curl_multi_assign(m->curl, fd, NULL);
            sock_close(m, s);
        }
        return 0;
    }
    if (s == NULL) {
        s = sock_new(m, fd);
        if (s == NULL) {
            note_unwatched(m, easy);
            return 0;
        }
        curl_multi_assign(m->curl, fd, s);
    }
    s->events =
        ((what & CURL_POLL_IN) ? UV_READABLE : 0) | ((what & CURL_POLL_OUT) ? UV_WRITABLE : 0);
    if (uv_poll_start(&s->poll, s->events, on_poll) != 0) {
        note_unwatched(m, easy);
    }
    return 0;
}

static int on_timer(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    om__curl_multi_t *m = userp;
    if (m->close_started) {
        return 0;
    }
    if (timeout_ms < 0) {
        uv_timer_stop(&m->timer);
    } else {
        uv_timer_start(&m->timer, on_timeout, (uint64_t)timeout_ms, 0);
    }
    return 0;
}

int om__curl_multi_new(uv_loop_t *loop, long max_host_conns, long max_conns,
                       om__curl_xfer_fn on_done, void *arg, om__curl_multi_t **out, om_err_t *err)
{
    om__curl_multi_t *m = om_calloc(1, sizeof *m);
    CURLM *curl = m != NULL ? curl_multi_init() : NULL;
    if (curl == NULL) {
        om_free(m);
        om_err_set(err, OM_ENOMEM, "out of memory (curl_multi_init)");
        return OM_ENOMEM;
    }
    m->loop = loop;
    m->curl = curl;
    m->on_done = on_done;
    m->arg = arg;
    curl_multi_setopt(curl, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(curl, CURLMOPT_SOCKETDATA, m);
    curl_multi_setopt(curl, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(curl, CURLMOPT_TIMERDATA, m);
    if (max_host_conns > 0) {
        curl_multi_setopt(curl, CURLMOPT_MAX_HOST_CONNECTIONS, max_host_conns);
    }
    if (max_conns > 0) {
        curl_multi_setopt(curl, CURLMOPT_MAXCONNECTS, max_conns);
    }
    uv_timer_init(loop, &m->timer);
    m->timer.data = m;
    m->open = 1;
    *out = m;
    return 0;
}

int om__curl_multi_add(om__curl_multi_t *m, CURL *easy, om_err_t *err)
{
    CURLMcode rc = curl_multi_add_handle(m->curl, easy);
    if (rc != CURLM_OK) {
        om_err_set(err, OM_EIO, "curl_multi_add_handle: %s", curl_multi_strerror(rc));
        return OM_EIO;
    }
    return 0;
}

void om__curl_multi_remove(om__curl_multi_t *m, CURL *easy)
{
    for (size_t i = 0; i < m->n_unwatched; i++) {
        if (m->unwatched[i] == easy) {
            m->unwatched[i] = m->unwatched[--m->n_unwatched];
            break;
        }
    }
    curl_multi_remove_handle(m->curl, easy);
}

void om__curl_multi_close(om__curl_multi_t *m, om_done_fn done, void *arg)
{
    if (m->closing) {
        return;
    }
    m->closing = true;
    m->closed = done;
    m->closed_arg = arg;
    if (m->depth == 0) {
        do_close(m);
    }
}

size_t om__curl_multi_sockets(const om__curl_multi_t *m)
{
    return m->n_socks;
}
