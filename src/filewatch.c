/* filewatch.c: small files that change while the collector runs (tokens, passwords), read at
 * start and again whenever they change (om.h, "Watched files").
 *
 * How a change is noticed: inotify through uv_fs_event, on the file's directory and on the
 * file itself. The directory catches what replaces the file (an editor's or an agent's
 * rename over it, Kubernetes swapping its "..data" symlink in a secret volume); the file's own
 * watch catches writes in place and, through a symlink, changes where the link points.
 * inotify follows an inode, so the file's watch is set again after every event (the name may
 * now be another inode). Only events that concern the file's name (or a name starting with
 * "..", Kubernetes' links) lead to a read: a busy directory costs nothing else.
 *
 * Why not a stat per use: the token is asked for on every request; a stat is a system call
 * that may block on a slow file system, on the loop thread, each time. Events cost nothing
 * until the file changes, and the read itself happens on the host's worker pool, so the loop
 * never waits for the disk either. Reads coalesce: while one is running, further events only
 * ask for one more read after it.
 *
 * Threads: the loop thread does everything but the read, which a worker does into a buffer the
 * job owns; the job comes back through the pool's mailbox (see the worker service's rules).
 * Close waits for a read in flight before calling done. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "om.h"

/* ------------------------------------------------------------------------------------------ */
/* Reading                                                                                    */

void om_free_secret(void *p, size_t n)
{
    if (p != NULL) {
        OPENSSL_cleanse(p, n);
        om_free(p);
    }
}

static int read_fail(om_err_t *err, const char *path, int e)
{
    om_err_set(err, OM_EIO, "cannot read \"%.200s\": %s", path, strerror(e));
    return OM_EIO;
}

int om_file_read(const char *path, size_t max, char **data, size_t *len, om_err_t *err)
{
    *data = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return read_fail(err, path, errno);
    }
    /* One buffer of max + 1 bytes, never grown: a secret is never copied by a realloc. */
    char *buf = om_malloc(max + 1);
    size_t n = 0;
    int rc = buf == NULL ? OM_ENOMEM : 0;
    while (rc == 0 && n <= max) {
        ssize_t k = read(fd, buf + n, max + 1 - n);
        if (k < 0 && errno == EINTR) {
            continue;
        }
        if (k < 0) {
            rc = read_fail(err, path, errno);
        } else if (k == 0) {
            break;
        } else {
            n += (size_t)k;
        }
    }
    close(fd);
    if (rc == OM_ENOMEM) {
        om_err_set(err, OM_ENOMEM, "out of memory reading \"%.200s\"", path);
    } else if (rc == 0 && n > max) {
        om_err_set(err, OM_ETOOBIG, "\"%.200s\" is larger than %zu bytes", path, max);
        rc = OM_ETOOBIG;
    }
    if (rc != 0) {
        om_free_secret(buf, max + 1);
        return rc;
    }
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Watching                                                                                   */

typedef struct read_job {
    om_job_t job; /* first member */
    om_filewatch_t *w;
    /* Written by the worker, read by done. */
    int rc;
    char *data;
    size_t len;
    om_err_t err;
} read_job_t;

struct om_filewatch {
    om_host_t *host;
    char *path, *dir, *base; /* owned */
    size_t max;
    om_filewatch_fn fn;
    void *arg;
    uv_fs_event_t dir_ev, file_ev;
    bool file_watched; /* file_ev is started */
    read_job_t *job;   /* the read in flight, or NULL */
    bool again;        /* another event came during the read */
    bool closing;
    int handles; /* open uv handles */
    om_done_fn done;
    void *done_arg;
};

static void start_read(om_filewatch_t *w);

static void deliver(om_filewatch_t *w, read_job_t *j)
{
    if (!w->closing) {
        w->fn(w->arg, j->rc, j->data, j->len, j->err.msg);
    }
    om_free_secret(j->data, w->max + 1);
    om_free(j);
}

static void worker_read(om_job_t *job, void *thread_data)
{
    (void)thread_data;
    read_job_t *j = (read_job_t *)job;
    j->rc = om_file_read(j->w->path, j->w->max, &j->data, &j->len, &j->err);
}

static void finish_close(om_filewatch_t *w);

/* The file's own watch follows the name: set it again (the name may be another inode now, or
 * be gone until the next write of the directory tells us it is back). */
static void rewatch_file(om_filewatch_t *w);

static void read_done(om_job_t *job, int status)
{
    read_job_t *j = (read_job_t *)job;
    om_filewatch_t *w = j->w;
    w->job = NULL;
    if (status != 0) {
        j->rc = status;
        om_err_set(&j->err, status, "the read of \"%.200s\" was cancelled", w->path);
    }
    deliver(w, j);
    if (w->closing) {
        finish_close(w);
        return;
    }
    rewatch_file(w);
    if (w->again) {
        w->again = false;
        start_read(w);
    }
}

static void start_read(om_filewatch_t *w)
{
    if (w->job != NULL) {
        w->again = true;
        return;
    }
    read_job_t *j = om_calloc(1, sizeof *j);
    if (j == NULL) {
        OM_LOG(OM_LOG_WARN, "%s changed but cannot be read again: out of memory", w->path);
        return;
    }
    j->w = w;
    w->job = j;
    if (om_workers_submit(w->host->workers, &j->job, worker_read, read_done) == 0) {
        return;
    }
    /* No worker to take it (a full queue, or a host without a pool): a few bytes read here,
     * rarely, rather than a rotation missed until the next change. */
    worker_read(&j->job, NULL);
    w->job = NULL;
    deliver(w, j);
    rewatch_file(w);
}

static bool concerns(const om_filewatch_t *w, const char *name)
{
    return name == NULL || strcmp(name, w->base) == 0 || strncmp(name, "..", 2) == 0;
}

static void on_dir_event(uv_fs_event_t *h, const char *name, int events, int status)
{
    (void)events;
    om_filewatch_t *w = h->data;
    if (status == 0 && !w->closing && concerns(w, name)) {
        start_read(w);
    }
}

static void on_file_event(uv_fs_event_t *h, const char *name, int events, int status)
{
    (void)name;
    (void)events;
    om_filewatch_t *w = h->data;
    if (status == 0 && !w->closing) {
        start_read(w);
    }
}

static void rewatch_file(om_filewatch_t *w)
{
    if (w->closing) {
        return;
    }
    if (w->file_watched) {
        uv_fs_event_stop(&w->file_ev);
    }
    w->file_watched = uv_fs_event_start(&w->file_ev, on_file_event, w->path, 0) == 0;
}

static void split_path(om_filewatch_t *w)
{
    char *slash = strrchr(w->dir, '/');
    if (slash == NULL) {
        w->base = w->path;
        snprintf(w->dir, strlen(w->dir) + 1, ".");
    } else {
        w->base = w->path + (slash - w->dir) + 1;
        slash[slash == w->dir ? 1 : 0] = '\0';
    }
}

static void free_watch(om_filewatch_t *w)
{
    om_free(w->path);
    om_free(w->dir);
    om_free(w);
}

int om_filewatch_start(om_host_t *host, const char *path, size_t max, om_filewatch_fn fn, void *arg,
                       om_filewatch_t **out, om_err_t *err)
{
    *out = NULL;
    om_filewatch_t *w = om_calloc(1, sizeof *w);
    if (w == NULL || (w->path = om_strdup(path)) == NULL || (w->dir = om_strdup(path)) == NULL) {
        if (w != NULL) {
            free_watch(w);
        }
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    w->host = host;
    w->max = max;
    w->fn = fn;
    w->arg = arg;
    split_path(w);
    uv_fs_event_init(host->loop, &w->dir_ev);
    uv_fs_event_init(host->loop, &w->file_ev);
    w->dir_ev.data = w->file_ev.data = w;
    w->handles = 2;
    int uvrc = uv_fs_event_start(&w->dir_ev, on_dir_event, w->dir, 0);
    if (uvrc != 0) {
        om_err_set(err, OM_EIO, "cannot watch \"%.200s\" for changes: %s", w->dir,
                   uv_strerror(uvrc));
        om_filewatch_close(w, NULL, NULL);
        return OM_EIO;
    }
    rewatch_file(w);
    *out = w;
    return 0;
}

static void finish_close(om_filewatch_t *w)
{
    if (w->handles > 0 || w->job != NULL) {
        return;
    }
    om_done_fn done = w->done;
    void *arg = w->done_arg;
    free_watch(w);
    if (done != NULL) {
        done(arg);
    }
}

static void on_closed(uv_handle_t *h)
{
    om_filewatch_t *w = h->data;
    w->handles--;
    finish_close(w);
}

void om_filewatch_close(om_filewatch_t *w, om_done_fn done, void *arg)
{
    if (w == NULL || w->closing) {
        return;
    }
    w->closing = true;
    w->done = done;
    w->done_arg = arg;
    uv_close((uv_handle_t *)&w->dir_ev, on_closed);
    uv_close((uv_handle_t *)&w->file_ev, on_closed);
}
