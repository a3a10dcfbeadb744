/* wakeup_floor.c: otelmon-wakeup-floor, what one request costs a server on this machine when
 * the server does nothing with it (issue 14's paced target).
 *
 * The paced test sends 100 requests of 100 spans (42 KB) a second over loopback TCP and counts
 * the collector's CPU: at that rate nearly all of it is per request, not per span, and much of
 * that is the kernel's (waking a thread on an idle CPU, the loopback delivery of the reply,
 * which the writer's system call runs). This tool measures that floor with no gRPC, no
 * protobuf and no compression: a server process pinned to CPU 0 reads each request and writes
 * a 49-byte reply (the size of the collector's gRPC answer), paced by a client pinned to CPU 1
 * over 8 connections, as the load generator is. The server's CPU comes from
 * /proc/PID/schedstat (nanoseconds on a CPU, all its threads), read before and after.
 *
 * Two shapes of server:
 *   one  one thread reads the request and writes the reply (one wake-up per request);
 *   hop  one thread reads the request and hands it to a second thread through an eventfd,
 *        which writes the reply: the collector's shape (gRPC's queue thread reads and decodes,
 *        the loop thread takes the data and answers), two wake-ups per request.
 *
 * Usage: otelmon-wakeup-floor [--rate R] [--seconds S] [--runs N] [--shape one|hop|both]
 * Prints per run: the shape, the server's CPU per request (us) and % of a core. */
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define REQUEST_BYTES 42093 /* the load generator's default request as protobuf */
#define REPLY_BYTES 49      /* the collector's gRPC answer (strace) */
#define CONNECTIONS 8
#define MAX_FD 1024

static void pin(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    (void)sched_setaffinity(0, sizeof set, &set); /* one CPU machines: left unpinned */
}

/* The hop shape's second thread: each 8-byte read of the eventfd is one reply to write, on the
 * connection whose fd the first thread queued. */
typedef struct hop {
    int efd;
    pthread_mutex_t lock;
    int queue[4096];
    unsigned head, tail;
} hop_t;

static void *hop_main(void *arg)
{
    hop_t *h = arg;
    static const char reply[REPLY_BYTES];
    for (;;) {
        uint64_t n;
        if (read(h->efd, &n, sizeof n) != (ssize_t)sizeof n) {
            continue;
        }
        for (;;) {
            pthread_mutex_lock(&h->lock);
            int fd = h->head != h->tail ? h->queue[h->head++ % 4096] : -1;
            pthread_mutex_unlock(&h->lock);
            if (fd < 0) {
                break;
            }
            (void)send(fd, reply, sizeof reply, MSG_NOSIGNAL);
        }
    }
    return NULL;
}

static void reply_or_hand(hop_t *h, int fd)
{
    static const char reply[REPLY_BYTES];
    if (h == NULL) {
        (void)send(fd, reply, sizeof reply, MSG_NOSIGNAL);
        return;
    }
    pthread_mutex_lock(&h->lock);
    h->queue[h->tail++ % 4096] = fd;
    pthread_mutex_unlock(&h->lock);
    uint64_t one = 1;
    (void)write(h->efd, &one, sizeof one);
}

/* The server process: never returns. */
static void serve(int listener, bool with_hop)
{
    pin(0);
    hop_t *h = NULL;
    if (with_hop) {
        static hop_t hop = {.lock = PTHREAD_MUTEX_INITIALIZER};
        hop.efd = eventfd(0, 0);
        pthread_t t;
        pthread_create(&t, NULL, hop_main, &hop);
        h = &hop;
    }
    static char buf[1 << 16];
    static size_t have[MAX_FD];
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = listener};
    epoll_ctl(ep, EPOLL_CTL_ADD, listener, &ev);
    for (;;) {
        struct epoll_event evs[16];
        int n = epoll_wait(ep, evs, 16, -1);
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == listener) {
                int c = accept4(listener, NULL, NULL, SOCK_NONBLOCK);
                int on = 1;
                if (c < 0 || c >= MAX_FD) {
                    continue;
                }
                setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
                struct epoll_event cev = {.events = EPOLLIN, .data.fd = c};
                epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
                continue;
            }
            ssize_t r;
            while ((r = recv(fd, buf, sizeof buf, 0)) > 0) {
                for (have[fd] += (size_t)r; have[fd] >= REQUEST_BYTES; have[fd] -= REQUEST_BYTES) {
                    reply_or_hand(h, fd);
                }
            }
            if (r == 0) {
                close(fd);
            }
        }
    }
}

/* The CPU time of all of pid's threads (ns), from each one's schedstat. */
static uint64_t cpu_ns(pid_t pid)
{
    char path[96];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    uint64_t total = 0;
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') {
            continue;
        }
        snprintf(path, sizeof path, "/proc/%d/task/%.16s/schedstat", (int)pid, e->d_name);
        FILE *f = fopen(path, "r");
        unsigned long long ns;
        if (f != NULL && fscanf(f, "%llu", &ns) == 1) {
            total += ns;
        }
        if (f != NULL) {
            fclose(f);
        }
    }
    if (d != NULL) {
        closedir(d);
    }
    return total;
}

/* One run: requests at rate a second for secs seconds; the server's CPU per request (us). */
static double run(bool with_hop, double rate, double secs, double *pct)
{
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) != 0 || listen(l, 64) != 0 ||
        getsockname(l, (struct sockaddr *)&a, &al) != 0) {
        perror("listen");
        exit(1);
    }
    pid_t pid = fork();
    if (pid == 0) {
        serve(l, with_hop);
    }
    close(l);
    pin(1);
    int fds[CONNECTIONS];
    for (int i = 0; i < CONNECTIONS; i++) {
        int on = 1;
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        setsockopt(fds[i], IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
        if (connect(fds[i], (struct sockaddr *)&a, sizeof a) != 0) {
            perror("connect");
            exit(1);
        }
    }
    static char request[REQUEST_BYTES];
    for (size_t i = 0; i < sizeof request; i++) {
        request[i] = (char)(i * 131 + 7);
    }
    long total = (long)(rate * secs);
    uint64_t c0 = cpu_ns(pid);
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    for (long k = 0; k < total; k++) {
        long step = (long)(1e9 / rate);
        t.tv_nsec += step;
        while (t.tv_nsec >= 1000000000L) {
            t.tv_nsec -= 1000000000L;
            t.tv_sec++;
        }
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL);
        int fd = fds[k % CONNECTIONS];
        for (size_t off = 0; off < sizeof request;) {
            ssize_t w = send(fd, request + off, sizeof request - off, MSG_NOSIGNAL);
            if (w <= 0) {
                perror("send");
                exit(1);
            }
            off += (size_t)w;
        }
        char reply[REPLY_BYTES];
        for (size_t got = 0; got < sizeof reply;) {
            ssize_t r = recv(fd, reply + got, sizeof reply - got, 0);
            if (r <= 0) {
                perror("recv");
                exit(1);
            }
            got += (size_t)r;
        }
    }
    uint64_t c1 = cpu_ns(pid);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    for (int i = 0; i < CONNECTIONS; i++) {
        close(fds[i]);
    }
    *pct = (double)(c1 - c0) / 1e7 / secs;
    return (double)(c1 - c0) / 1e3 / (double)total;
}

int main(int argc, char **argv)
{
    double rate = 100, secs = 10;
    int runs = 3;
    const char *shape = "both";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--rate") == 0) {
            rate = atof(argv[i + 1]);
        } else if (strcmp(argv[i], "--seconds") == 0) {
            secs = atof(argv[i + 1]);
        } else if (strcmp(argv[i], "--runs") == 0) {
            runs = atoi(argv[i + 1]);
        } else if (strcmp(argv[i], "--shape") == 0) {
            shape = argv[i + 1];
        } else {
            fprintf(stderr,
                    "usage: %s [--rate R] [--seconds S] [--runs N] [--shape one|hop|both]\n",
                    argv[0]);
            return 2;
        }
    }
    if (rate <= 0 || secs <= 0 || runs <= 0) {
        fprintf(stderr, "%s: rate, seconds and runs must be positive\n", argv[0]);
        return 2;
    }
    printf("%g requests/s of %d B over %d loopback connections, reply %d B, %g s a run\n", rate,
           REQUEST_BYTES, CONNECTIONS, REPLY_BYTES, secs);
    for (int r = 0; r < runs; r++) {
        for (int s = 0; s < 2; s++) {
            bool hop = s == 1;
            if (strcmp(shape, "both") != 0 && strcmp(shape, hop ? "hop" : "one") != 0) {
                continue;
            }
            double pct, us = run(hop, rate, secs, &pct);
            printf("%-4s server CPU %7.1f us per request, %5.2f%% of a core\n", hop ? "hop" : "one",
                   us, pct);
            fflush(stdout);
        }
    }
    return 0;
}
