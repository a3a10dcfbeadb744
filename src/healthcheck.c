/* healthcheck.c: `otelmon healthcheck --url http://HOST:PORT/PATH`, a probe for container
 * health checks in an image without a shell or curl (compose's `test: ["CMD",
 * "/otelmon", "healthcheck", "--url", "http://127.0.0.1:13133/"]`).
 *
 * One blocking GET over plain HTTP/1.1 with a deadline, before any loop or thread exists:
 * exit 0 for a 2xx answer, 1 otherwise, with one line saying why. It uses no libcurl (which
 * the image loads only for otlphttp) and follows no redirects. */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "om.h"
#include "service.h"

typedef struct target {
    char host[256], port[8], path[1024];
} target_t;

/* http://host[:port][/path]; IPv6 hosts in brackets. */
static int parse_url(const char *url, target_t *t, om_err_t *err)
{
    const char *p = url;
    if (strncmp(p, "http://", 7) != 0) {
        om_err_set(err, OM_EINVAL, "--url must be an http:// URL (https is not supported here)");
        return OM_EINVAL;
    }
    p += 7;
    const char *end = p + strcspn(p, "/");
    const char *colon = NULL;
    const char *hs = p, *he = end;
    if (*p == '[') {
        const char *close = memchr(p, ']', (size_t)(end - p));
        if (close == NULL) {
            om_err_set(err, OM_EINVAL, "--url: missing ']' in the host");
            return OM_EINVAL;
        }
        hs = p + 1;
        he = close;
        colon = close[1] == ':' ? close + 1 : NULL;
    } else {
        colon = memchr(p, ':', (size_t)(end - p));
        he = colon != NULL ? colon : end;
    }
    size_t hn = (size_t)(he - hs), pn = colon != NULL ? (size_t)(end - colon - 1) : 2;
    if (hn == 0 || hn >= sizeof t->host || pn == 0 || pn >= sizeof t->port ||
        strlen(end) >= sizeof t->path) {
        om_err_set(err, OM_EINVAL, "--url: cannot read host, port and path of \"%.200s\"", url);
        return OM_EINVAL;
    }
    memcpy(t->host, hs, hn);
    t->host[hn] = '\0';
    snprintf(t->port, sizeof t->port, "%.*s", (int)pn, colon != NULL ? colon + 1 : "80");
    snprintf(t->path, sizeof t->path, "%s", *end != '\0' ? end : "/");
    return 0;
}

static int64_t now_ms(void)
{
    return (int64_t)(uv_hrtime() / 1000000);
}

/* Wait until fd is ready for events or the deadline passes. */
static int wait_fd(int fd, short events, int64_t deadline, om_err_t *err)
{
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0) {
            om_err_set(err, OM_EIO, "timed out");
            return OM_EIO;
        }
        struct pollfd pfd = {.fd = fd, .events = events};
        int n = poll(&pfd, 1, (int)left);
        if (n > 0) {
            return 0;
        }
        if (n < 0 && errno != EINTR) {
            om_err_set(err, OM_EIO, "poll: %s", strerror(errno));
            return OM_EIO;
        }
    }
}

static int connect_to(const target_t *t, int64_t deadline, int *fd_out, om_err_t *err)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int g = getaddrinfo(t->host, t->port, &hints, &res);
    if (g != 0) {
        om_err_set(err, OM_EIO, "cannot resolve %s: %s", t->host, gai_strerror(g));
        return OM_EIO;
    }
    int rc = OM_EIO;
    for (struct addrinfo *a = res; a != NULL && rc != 0; a = a->ai_next) {
        int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            continue;
        }
        int c = connect(fd, a->ai_addr, a->ai_addrlen);
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        if (c != 0 && errno == EINPROGRESS && wait_fd(fd, POLLOUT, deadline, err) == 0 &&
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0) {
            c = 0;
        } else if (c != 0) {
            om_err_set(err, OM_EIO, "cannot connect to %s:%s: %s", t->host, t->port,
                       strerror(soerr != 0 ? soerr : errno));
        }
        if (c == 0) {
            *fd_out = fd;
            rc = 0;
        } else {
            close(fd);
        }
    }
    freeaddrinfo(res);
    return rc;
}

/* Send the request and read up to the status line's code. */
static int exchange(int fd, const target_t *t, int64_t deadline, int *status, om_err_t *err)
{
    char req[1400];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: %s:%s\r\nUser-Agent: otelmon-healthcheck/" OM_VERSION
                     "\r\nConnection: close\r\n\r\n",
                     t->path, t->host, t->port);
    for (int off = 0; off < n;) {
        if (wait_fd(fd, POLLOUT, deadline, err) != 0) {
            return OM_EIO;
        }
        ssize_t w = send(fd, req + off, (size_t)(n - off), MSG_NOSIGNAL);
        if (w < 0 && errno != EAGAIN && errno != EINTR) {
            om_err_set(err, OM_EIO, "send: %s", strerror(errno));
            return OM_EIO;
        }
        off += w > 0 ? (int)w : 0;
    }
    char buf[64];
    size_t got = 0;
    while (got < 12) {
        if (wait_fd(fd, POLLIN, deadline, err) != 0) {
            return OM_EIO;
        }
        ssize_t r = recv(fd, buf + got, sizeof buf - 1 - got, 0);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
            om_err_set(err, OM_EIO, "the server closed the connection without an answer");
            return OM_EIO;
        }
        got += r > 0 ? (size_t)r : 0;
    }
    buf[got] = '\0';
    if (strncmp(buf, "HTTP/1.", 7) != 0 || sscanf(buf + 8, " %3d", status) != 1) {
        om_err_set(err, OM_EIO, "not an HTTP answer");
        return OM_EIO;
    }
    return 0;
}

int om_healthcheck(const char *url, int64_t timeout_ms, FILE *out)
{
    target_t t;
    om_err_t err = {0};
    int fd = -1, status = 0;
    int64_t deadline = now_ms() + timeout_ms;
    int rc = parse_url(url, &t, &err);
    rc = rc ? rc : connect_to(&t, deadline, &fd, &err);
    rc = rc ? rc : exchange(fd, &t, deadline, &status, &err);
    if (fd >= 0) {
        close(fd);
    }
    if (rc != 0) {
        fprintf(out, "healthcheck %s: %s\n", url, err.msg);
        return 1;
    }
    if (status < 200 || status > 299) {
        fprintf(out, "healthcheck %s: unhealthy: HTTP %d\n", url, status);
        return 1;
    }
    return 0;
}
