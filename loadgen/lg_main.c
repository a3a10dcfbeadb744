/* lg_main.c: the otelmon-loadgen command line. See usage below and loadgen/README.md. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <grpc/grpc.h>

#include "lg.h"

static const char usage[] =
    "Usage: otelmon-loadgen [options]            send OTLP load and report\n"
    "       otelmon-loadgen --sink [options]     count what OTLP clients send\n"
    "       otelmon-loadgen --startup CMD [options]  time CMD's start to its first OK\n"
    "\n"
    "What to send:\n"
    "  --protocol P        grpc (default), http/protobuf or http/json\n"
    "  --signal S          traces (default), metrics or logs\n"
    "  --endpoint H:P      where to send (default 127.0.0.1:4317, or :4318 for HTTP)\n"
    "  --spans N           items (spans, data points, log records) per request (100);\n"
    "                      --items is the same\n"
    "  --attrs N           attributes per item (8), alternately strings and ints\n"
    "  --etl-every N       traces: about one span in N is an ETL run (the alarmstore\n"
    "                      exporter's etl.* attributes; 0: none, the default)\n"
    "  --attr-size B       bytes of each string attribute value (16)\n"
    "  --gzip              gzip the requests\n"
    "  --pool N            distinct pre-encoded requests to cycle through (128)\n"
    "  --seed N            random seed of the pool (1)\n"
    "How:\n"
    "  --connections C     connections (2)\n"
    "  --inflight K        requests in flight per connection (8; HTTP pipelines them)\n"
    "  --rate R            requests per second in total (default: as fast as possible)\n"
    "  --duration S        seconds to send (default 10 unless --requests is given)\n"
    "  --requests N        stop after N requests\n"
    "  --timeout S         per request (10)\n"
    "Output:\n"
    "  --json              also print the result as one JSON object on stdout\n"
    "  --quiet             no table on stderr\n"
    "Sink (--sink): listen for OTLP/gRPC on --endpoint (port 0: any free port) and, with\n"
    "  --http-endpoint H:P, for OTLP/HTTP; answer OK and count. Prints JSON lines on stdout:\n"
    "  \"listening\" with the ports, \"snapshot\" on SIGUSR1, \"final\" on SIGTERM/SIGINT or at\n"
    "  the end of --duration.\n"
    "Start-up (--startup CMD): start CMD, send a one-item request over --protocol to\n"
    "  --endpoint until one succeeds (at most --duration seconds, default 10), print\n"
    "  {\"startup_ms\":..,\"pid\":..} and exit, leaving CMD running. CMD is split on spaces and\n"
    "  executed directly, so that the time is the command's own; with shell syntax in it\n"
    "  (quotes, $, redirections, ...) it runs through sh instead.\n"
    "  --startup-cpu N     pin CMD to CPU N (instead of wrapping it in taskset)\n"
    "  --startup-log FILE  append CMD's stdout and stderr to FILE (instead of a redirection)\n"
    "Exit status: 0 when every request succeeded, 1 when any failed, 2 for usage errors.\n";

static int usage_error(const char *msg, const char *arg)
{
    fprintf(stderr, "otelmon-loadgen: %s%s\nRun 'otelmon-loadgen --help' for usage.\n", msg,
            arg != NULL ? arg : "");
    return 2;
}

static bool parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v < min || v > max) {
        return false;
    }
    *out = v;
    return true;
}

static bool parse_unsigned(const char *s, unsigned min, unsigned max, unsigned *out)
{
    uint64_t v = 0;
    if (!parse_u64(s, min, max, &v)) {
        return false;
    }
    *out = (unsigned)v;
    return true;
}

static bool parse_double(const char *s, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !isfinite(v) || v < 0) {
        return false;
    }
    *out = v;
    return true;
}

static bool parse_endpoint(const char *s, char **host, int *port)
{
    om_err_t err = {0};
    char *h = NULL;
    if (om_parse_endpoint(s, &h, port, &err) != 0) {
        fprintf(stderr, "otelmon-loadgen: %s\n", err.msg);
        return false;
    }
    om_free(*host);
    if (h[0] == '\0') {
        om_free(h);
        h = om_strdup("127.0.0.1");
    }
    *host = h;
    return h != NULL;
}

static bool parse_protocol(const char *v, lg_proto_t *p)
{
    if (strcmp(v, "grpc") == 0) {
        *p = LG_GRPC;
    } else if (strcmp(v, "http/protobuf") == 0 || strcmp(v, "http") == 0) {
        *p = LG_HTTP_PROTO;
    } else if (strcmp(v, "http/json") == 0) {
        *p = LG_HTTP_JSON;
    } else {
        return false;
    }
    return true;
}

static bool parse_signal(const char *v, om_signal_t *s)
{
    for (int i = 0; i < OM_SIG_COUNT; i++) {
        if (strcmp(v, om_signal_name(om_signal_from_index(i))) == 0) {
            *s = om_signal_from_index(i);
            return true;
        }
    }
    return false;
}

typedef struct cli {
    lg_opts_t o;
    bool endpoint_set, duration_set;
} cli_t;

/* An option with a value. Returns true when it was understood and valid. */
static bool value_opt(cli_t *c, const char *name, const char *v)
{
    lg_opts_t *o = &c->o;
    if (strcmp(name, "--protocol") == 0) {
        return parse_protocol(v, &o->protocol);
    } else if (strcmp(name, "--signal") == 0) {
        return parse_signal(v, &o->signal);
    } else if (strcmp(name, "--endpoint") == 0) {
        c->endpoint_set = true;
        return parse_endpoint(v, &o->host, &o->port);
    } else if (strcmp(name, "--http-endpoint") == 0) {
        return parse_endpoint(v, &o->sink_http_host, &o->sink_http_port);
    } else if (strcmp(name, "--spans") == 0 || strcmp(name, "--items") == 0) {
        return parse_unsigned(v, 1, 1000000, &o->items);
    } else if (strcmp(name, "--attrs") == 0) {
        return parse_unsigned(v, 0, 1000, &o->attrs);
    } else if (strcmp(name, "--etl-every") == 0) {
        return parse_unsigned(v, 0, 100000000, &o->etl_every);
    } else if (strcmp(name, "--attr-size") == 0) {
        return parse_unsigned(v, 0, 1000000, &o->attr_size);
    } else if (strcmp(name, "--pool") == 0) {
        return parse_unsigned(v, 1, 100000, &o->pool);
    } else if (strcmp(name, "--seed") == 0) {
        return parse_u64(v, 0, UINT64_MAX, &o->seed);
    } else if (strcmp(name, "--connections") == 0) {
        return parse_unsigned(v, 1, 10000, &o->connections);
    } else if (strcmp(name, "--inflight") == 0) {
        return parse_unsigned(v, 1, 10000, &o->inflight);
    } else if (strcmp(name, "--rate") == 0) {
        return parse_double(v, &o->rate);
    } else if (strcmp(name, "--duration") == 0) {
        c->duration_set = true;
        return parse_double(v, &o->duration_s);
    } else if (strcmp(name, "--requests") == 0) {
        return parse_u64(v, 1, UINT64_MAX, &o->requests);
    } else if (strcmp(name, "--timeout") == 0) {
        return parse_double(v, &o->timeout_s) && o->timeout_s > 0;
    } else if (strcmp(name, "--startup") == 0) {
        o->startup_cmd = v;
        return v[0] != '\0';
    } else if (strcmp(name, "--startup-cpu") == 0) {
        unsigned cpu = 0;
        bool ok = parse_unsigned(v, 0, CPU_SETSIZE - 1, &cpu);
        o->startup_cpu = (int)cpu;
        return ok;
    } else if (strcmp(name, "--startup-log") == 0) {
        o->startup_log = v;
        return v[0] != '\0';
    }
    return false;
}

static bool flag_opt(lg_opts_t *o, const char *name)
{
    if (strcmp(name, "--gzip") == 0) {
        o->gzip = true;
    } else if (strcmp(name, "--json") == 0) {
        o->json = true;
    } else if (strcmp(name, "--quiet") == 0) {
        o->quiet = true;
    } else if (strcmp(name, "--sink") == 0) {
        o->sink = true;
    } else {
        return false;
    }
    return true;
}

static void set_defaults(lg_opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->protocol = LG_GRPC;
    o->signal = OM_SIG_TRACES;
    o->items = 100;
    o->attrs = 8;
    o->attr_size = 16;
    o->pool = 128;
    o->connections = 2;
    o->inflight = 8;
    o->timeout_s = 10;
    o->startup_cpu = -1;
    o->seed = 1;
}

/* Returns -1 to go on, or the exit code. */
static int parse_args(int argc, char **argv, cli_t *c)
{
    memset(c, 0, sizeof *c);
    set_defaults(&c->o);
    for (int i = 1; i < argc; i++) {
        char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(usage, stdout);
            return 0;
        }
        if (flag_opt(&c->o, a)) {
            continue;
        }
        /* --name=value or --name value */
        char *eq = strchr(a, '=');
        const char *v = NULL;
        char name[64];
        if (eq != NULL && (size_t)(eq - a) < sizeof name) {
            snprintf(name, sizeof name, "%.*s", (int)(eq - a), a);
            v = eq + 1;
        } else if (i + 1 < argc) {
            snprintf(name, sizeof name, "%s", a);
            v = argv[++i];
        } else {
            return usage_error("unknown option or missing value: ", a);
        }
        if (!value_opt(c, name, v)) {
            fprintf(stderr, "otelmon-loadgen: bad value \"%s\" for %s\n", v, name);
            return 2;
        }
    }
    return -1;
}

static int finish_opts(cli_t *c)
{
    lg_opts_t *o = &c->o;
    if (!c->endpoint_set) {
        o->host = om_strdup("127.0.0.1");
        o->port = o->sink ? 4317 : o->protocol == LG_GRPC ? 4317 : 4318;
    }
    if (o->host == NULL) {
        return usage_error("out of memory", NULL);
    }
    if (!c->duration_set && o->requests == 0 && !o->sink) {
        o->duration_s = 10;
    }
    if (o->duration_s == 0 && o->requests == 0 && !o->sink) {
        return usage_error("--duration 0 needs --requests", NULL);
    }
    if (o->sink && o->startup_cmd != NULL) {
        return usage_error("--sink and --startup do not go together", NULL);
    }
    return -1;
}

static int run_driver(const lg_opts_t *o, const lg_pool_t *pool, lg_stats_t *st, om_err_t *err)
{
    lg_stats_init(st);
    return o->protocol == LG_GRPC ? lg_grpc_run(o, pool, st, err) : lg_http_run(o, pool, st, err);
}

/* CPU seconds (user + sys) of the whole process, gRPC's threads included. */
static double cpu_seconds(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) {
        return 0;
    }
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static int run_load(const lg_opts_t *o)
{
    om_err_t err = {0};
    lg_pool_t pool;
    if (lg_pool_build(o, &pool, &err) != 0) {
        fprintf(stderr, "otelmon-loadgen: %s\n", err.msg);
        return 2;
    }
    lg_stats_t *st = om_malloc(sizeof *st); /* the histogram is ~30 KB: keep it off the stack */
    int code = 2;
    if (st == NULL) {
        fprintf(stderr, "otelmon-loadgen: out of memory\n");
        goto out;
    }
    double cpu0 = cpu_seconds();
    if (run_driver(o, &pool, st, &err) != 0) {
        fprintf(stderr, "otelmon-loadgen: %s\n", err.msg);
        goto out;
    }
    st->cpu_s = cpu_seconds() - cpu0;
    lg_stats_report(st, o, &pool);
    code = st->failed > 0 || st->ok == 0 ? 1 : 0;
out:
    om_free(st);
    lg_pool_free(&pool);
    return code;
}

/* Whether cmd needs a shell: anything but words separated by spaces. */
static bool needs_shell(const char *cmd)
{
    return strpbrk(cmd, "|&;<>()$`\\\"'*?[#~=%\t\n") != NULL;
}

/* The child's side of spawn: pin, redirect, exec. Never returns. */
static void exec_child(const lg_opts_t *o, char *line)
{
    if (o->startup_cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(o->startup_cpu, &set);
        if (sched_setaffinity(0, sizeof set, &set) != 0) {
            _exit(126);
        }
    }
    if (o->startup_log != NULL) {
        int fd = open(o->startup_log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0) {
            _exit(126);
        }
    }
    if (needs_shell(o->startup_cmd)) {
        execl("/bin/sh", "sh", "-c", line, (char *)NULL);
        _exit(127);
    }
    char *argv[64];
    size_t n = 0;
    for (char *w = strtok(line, " "); w != NULL && n + 1 < sizeof argv / sizeof argv[0];
         w = strtok(NULL, " ")) {
        argv[n++] = w;
    }
    argv[n] = NULL;
    if (n > 0) {
        execvp(argv[0], argv);
    }
    _exit(127);
}

static pid_t spawn(const lg_opts_t *o)
{
    /* Built before the fork: the child only pins, redirects and execs. */
    om_strbuf_t sb;
    om_strbuf_init(&sb, 0);
    if (needs_shell(o->startup_cmd)) {
        om_strbuf_printf(&sb, "exec %s", o->startup_cmd); /* so the pid is the command's own */
    } else {
        om_strbuf_puts(&sb, o->startup_cmd);
    }
    if (sb.failed) {
        return -1;
    }
    pid_t pid = fork();
    if (pid == 0) {
        exec_child(o, sb.data);
    }
    om_strbuf_free(&sb);
    return pid;
}

/* Sends one-item requests until one succeeds; -1 when the command died or time ran out. */
static int probe_until_ok(const lg_opts_t *p, const lg_pool_t *pool, pid_t pid, double limit_s,
                          uint64_t t0, unsigned *attempts)
{
    lg_stats_t *st = om_malloc(sizeof *st);
    if (st == NULL) {
        return -1;
    }
    om_err_t err = {0};
    int rc = -1;
    for (;;) {
        (*attempts)++;
        if (run_driver(p, pool, st, &err) == 0 && st->ok == 1) {
            rc = 0;
            break;
        }
        int status = 0;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            fprintf(stderr, "otelmon-loadgen: the command exited before accepting a request\n");
            break;
        }
        if ((double)(lg_now_ns() - t0) / 1e9 > limit_s) {
            fprintf(stderr, "otelmon-loadgen: no request accepted within %.1f s\n", limit_s);
            break;
        }
        /* Not a loop thread: a CLI waiting for a process to come up. */
        struct timespec ts = {0, 500000};
        nanosleep(&ts, NULL);
    }
    om_free(st);
    return rc;
}

static int run_startup(const lg_opts_t *o)
{
    lg_opts_t p = *o;
    p.items = 1;
    p.pool = 1;
    p.requests = 1;
    p.duration_s = 0;
    p.connections = 1;
    p.inflight = 1;
    p.rate = 0;
    p.timeout_s = 1;
    p.fail_fast = true;
    p.quiet = true;
    om_err_t err = {0};
    lg_pool_t pool;
    if (lg_pool_build(&p, &pool, &err) != 0) {
        fprintf(stderr, "otelmon-loadgen: %s\n", err.msg);
        return 2;
    }
    grpc_init(); /* once, outside the timing: each probe's own init is then a refcount */
    uint64_t t0 = lg_now_ns();
    pid_t pid = spawn(o);
    int code = 1;
    unsigned attempts = 0;
    if (pid < 0) {
        fprintf(stderr, "otelmon-loadgen: cannot start the command\n");
    } else if (probe_until_ok(&p, &pool, pid, o->duration_s > 0 ? o->duration_s : 10, t0,
                              &attempts) == 0) {
        double ms = (double)(lg_now_ns() - t0) / 1e6;
        printf("{\"startup_ms\":%.2f,\"pid\":%d,\"attempts\":%u}\n", ms, (int)pid, attempts);
        if (!o->quiet) {
            fprintf(stderr, "first request accepted %.2f ms after start (%u attempts)\n", ms,
                    attempts);
        }
        code = 0;
    }
    grpc_shutdown();
    lg_pool_free(&pool);
    return code;
}

int main(int argc, char **argv)
{
    cli_t c;
    int code = parse_args(argc, argv, &c);
    if (code < 0) {
        code = finish_opts(&c);
    }
    if (code < 0) {
        if (c.o.sink) {
            om_err_t err = {0};
            code = lg_sink_run(&c.o, &err) == 0 ? 0 : 2;
            if (code != 0) {
                fprintf(stderr, "otelmon-loadgen: %s\n", err.msg);
            }
        } else if (c.o.startup_cmd != NULL) {
            code = run_startup(&c.o);
        } else {
            code = run_load(&c.o);
        }
    }
    om_free(c.o.host);
    om_free(c.o.sink_http_host);
    return code;
}
