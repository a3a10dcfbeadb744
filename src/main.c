/* main.c: the otelmon command line, shaped like otelcol's:
 *   otelmon [--config URI]... [--set K=V]...   run (later sources merge over earlier ones)
 *   otelmon validate --config URI...           check the config; exit 0 when valid, 1 with
 *                                              problems (also `validate-config`)
 *   otelmon components                         list the components of this build
 *   otelmon healthcheck --url URL              probe a health_check endpoint (exit 0: healthy) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#ifdef __GLIBC__
#include <dlfcn.h>
#include <malloc.h>
#endif

#include "om.h"
#include "service.h"

/* --config and --set flags together; beyond this the command line is refused with a message. */
#define MAX_CONFIGS 64

static const char usage[] =
    "Usage:\n"
    "  otelmon [--config URI]... [--set K=V]...  run the collector (built-in default config\n"
    "                                            when no --config is given: OTLP gRPC :4317 and\n"
    "                                            HTTP :4318 on localhost -> batch -> debug)\n"
    "  otelmon validate --config URI...          validate a config and exit (0 valid, 1\n"
    "                                            invalid); `validate-config` is the same\n"
    "  otelmon components                        list the components in this build\n"
    "  otelmon healthcheck --url URL [--timeout D]  GET an http:// URL (e.g. the health_check\n"
    "                                            extension's) and exit 0 on a 2xx answer, 1\n"
    "                                            otherwise (default timeout 5s)\n"
    "\n"
    "Flags:\n"
    "  --config URI, --config=URI   a config source (repeatable; later ones merge over earlier\n"
    "                               ones): a file path or file:PATH, env:VAR (the YAML in an\n"
    "                               environment variable), yaml:TEXT (inline, keys joined by\n"
    "                               \"::\", e.g. \"yaml:exporters::debug::verbosity: detailed\")\n"
    "  --set K=V, --set=K=V         one setting, merged last (dots in K separate keys:\n"
    "                               --set=processors.batch.timeout=1s)\n"
    "  --feature-gates LIST         accepted for otelcol compatibility; otelmon has none\n"
    "  -h, --help                   this help\n"
    "  -v, --version                print the version\n";

typedef struct cli {
    const char *command; /* NULL (run), "validate", "components", "healthcheck" */
    const char *url;     /* healthcheck --url */
    int64_t timeout_ns;  /* healthcheck --timeout */
    const char *configs[MAX_CONFIGS];
    size_t n_configs; /* --config sources, in order */
    char *sets[MAX_CONFIGS];
    size_t n_sets; /* --set values as yaml: URIs (owned), merged after every --config */
} cli_t;

static int flag_error(const char *what, const char *arg)
{
    fprintf(stderr, "otelmon: %s%s\nRun 'otelmon --help' for usage.\n", what, arg);
    return 1;
}

static int add_config(cli_t *c, const char *uri)
{
    if (uri[0] == '\0') {
        return flag_error("empty file name for ", "--config");
    }
    if (c->n_configs + c->n_sets == MAX_CONFIGS) {
        return flag_error("too many --config and --set flags, at most ", "64");
    }
    c->configs[c->n_configs++] = uri;
    return 0;
}

static void trim(const char **s, size_t *n)
{
    while (*n > 0 && (**s == ' ' || **s == '\t')) {
        (*s)++;
        (*n)--;
    }
    while (*n > 0 && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t')) {
        (*n)--;
    }
}

/* --set K=V becomes the URI "yaml:K: V" with the dots of K turned into "::", as otelcol's
 * flags.go does. */
static int add_set(cli_t *c, const char *kv)
{
    const char *eq = strchr(kv, '=');
    if (eq == NULL) {
        return flag_error("invalid value for --set: missing equal sign: ", kv);
    }
    if (c->n_configs + c->n_sets == MAX_CONFIGS) {
        return flag_error("too many --config and --set flags, at most ", "64");
    }
    const char *k = kv, *v = eq + 1;
    size_t kn = (size_t)(eq - kv), vn = strlen(v);
    trim(&k, &kn);
    trim(&v, &vn);
    om_strbuf_t sb;
    om_strbuf_init(&sb, 0);
    om_strbuf_puts(&sb, "yaml:");
    for (size_t i = 0; i < kn; i++) {
        om_strbuf_puts(&sb, k[i] == '.' ? "::" : (char[2]){k[i], '\0'});
    }
    om_strbuf_puts(&sb, ": ");
    om_strbuf_append(&sb, v, vn);
    char *uri = sb.failed ? NULL : om_strbuf_steal(&sb, NULL);
    om_strbuf_free(&sb);
    if (uri == NULL) {
        return flag_error("out of memory", "");
    }
    c->sets[c->n_sets++] = uri;
    return 0;
}

/* otelcol's --feature-gates toggles gates of its registry; otelmon has none, so every gate
 * named is unknown: say so and go on (otelcol would refuse a gate it does not know, but a
 * drop-in replacement must start with the flags the old command line had). */
static void feature_gates(const char *list)
{
    fprintf(stderr, "otelmon: --feature-gates: otelmon has no feature gates; ignoring: %s\n", list);
}

/* A flag's value: "--name=VALUE" or "--name VALUE". NULL when a is not that flag; *missing
 * when it is but has no value. */
static const char *flag_value(const char *name, int argc, char **argv, int *i, bool *missing)
{
    const char *a = argv[*i];
    size_t n = strlen(name);
    *missing = false;
    if (strncmp(a, name, n) != 0) {
        return NULL;
    }
    if (a[n] == '=') {
        return a + n + 1;
    }
    if (a[n] != '\0') {
        return NULL;
    }
    if (*i + 1 == argc) {
        *missing = true;
        return NULL;
    }
    return argv[++*i];
}

/* One flag of the run and validate commands. Returns -1 when a is not one of them, 1 for a
 * bad flag, 0 when taken. */
static int parse_flag(int argc, char **argv, int *i, cli_t *c)
{
    bool missing = false;
    const char *v;
    if ((v = flag_value("--config", argc, argv, i, &missing)) != NULL || missing) {
        return missing ? flag_error("flag needs an argument: ", "--config") : add_config(c, v);
    }
    if ((v = flag_value("--set", argc, argv, i, &missing)) != NULL || missing) {
        return missing ? flag_error("flag needs an argument: ", "--set") : add_set(c, v);
    }
    if ((v = flag_value("--url", argc, argv, i, &missing)) != NULL || missing) {
        c->url = v;
        return missing ? flag_error("flag needs an argument: ", "--url") : 0;
    }
    if ((v = flag_value("--timeout", argc, argv, i, &missing)) != NULL || missing) {
        om_err_t err = {0};
        if (missing || om_parse_duration(v, &c->timeout_ns, &err) != 0 || c->timeout_ns <= 0) {
            return flag_error("--timeout needs a duration such as 5s: ", missing ? "" : v);
        }
        return 0;
    }
    if ((v = flag_value("--feature-gates", argc, argv, i, &missing)) != NULL || missing) {
        if (missing) {
            return flag_error("flag needs an argument: ", "--feature-gates");
        }
        feature_gates(v);
        return 0;
    }
    return -1;
}

/* Returns -1 to go on, or the exit code when the program should stop here. */
static int parse_args(int argc, char **argv, cli_t *c)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(usage, stdout);
            return 0;
        }
        if (strcmp(a, "-v") == 0 || strcmp(a, "--version") == 0) {
            printf("otelmon version %s\n", OM_VERSION);
            return 0;
        }
        int rc = parse_flag(argc, argv, &i, c);
        if (rc > 0) {
            return rc;
        }
        if (rc == 0) {
            continue;
        }
        if (a[0] == '-') {
            return flag_error("unknown flag: ", a);
        }
        if (c->command == NULL &&
            (strcmp(a, "validate") == 0 || strcmp(a, "validate-config") == 0 ||
             strcmp(a, "components") == 0 || strcmp(a, "healthcheck") == 0)) {
            c->command = strncmp(a, "validate", 8) == 0 ? "validate" : a;
        } else {
            return flag_error("unknown command or argument: ", a);
        }
    }
    return -1;
}

/* Every request's arena is freed when its batch is sent, and the next request needs the same
 * memory again. glibc's defaults hand it back to the kernel each time (blocks over 128 KiB are
 * mmap'd and unmapped, the heap top is trimmed), and then fault it back in: under load that
 * was most of the collector's CPU time in the kernel. Keep it instead; bounded queues bound
 * how much there is. */
static void tune_malloc(void)
{
#ifdef __GLIBC__
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
#endif
}

/* gRPC's mutexes are abseil's, and Debian builds abseil with its debug-mode default: every
 * lock and unlock of an absl::Mutex also records lock order in a global graph to detect
 * deadlocks (absl::SetMutexDeadlockDetectionMode's kAbort). `perf` on the paced benchmark
 * (bench/run 13) put that bookkeeping (GraphCycles) at 1-2% of the collector's CPU. Release
 * builds of abseil and gRPC turn it off; so do we, through the C++ entry point by its mangled
 * name (the inline namespace is Debian's "debian3"; another build of abseil has another name,
 * and then nothing happens). OnDeadlockCycle::kIgnore is 0. */
static void quiet_absl_deadlock_checks(void)
{
    static const char *const names[] = {
        "_ZN4absl7debian329SetMutexDeadlockDetectionModeENS0_15OnDeadlockCycleE",
        "_ZN4absl12lts_2022062329SetMutexDeadlockDetectionModeENS0_15OnDeadlockCycleE",
        "_ZN4absl29SetMutexDeadlockDetectionModeENS_15OnDeadlockCycleE",
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        void *sym = dlsym(RTLD_DEFAULT, names[i]);
        if (sym != NULL) {
            void (*set_mode)(int);
            memcpy(&set_mode, &sym, sizeof set_mode); /* object to function pointer */
            set_mode(0);
            return;
        }
    }
}

/* Every connection a server keeps costs a file descriptor, and the HTTP server's connection
 * budget is derived from the soft limit (see http_server.c). Go programs, otelcol included,
 * raise the soft limit to the hard one at start (Go 1.19 and later); so do we, so that a
 * drop-in replacement holds as many connections as the collector it replaces. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* The config sources in the order they merge: every --config, then every --set. */
static size_t sources(const cli_t *c, const char **out)
{
    size_t n = 0;
    for (size_t i = 0; i < c->n_configs; i++) {
        out[n++] = c->configs[i];
    }
    for (size_t i = 0; i < c->n_sets; i++) {
        out[n++] = c->sets[i];
    }
    return n;
}

static int run(const cli_t *c)
{
    if (c->command != NULL && strcmp(c->command, "components") == 0) {
        om_service_print_components(stdout);
        return 0;
    }
    if (c->command != NULL && strcmp(c->command, "healthcheck") == 0) {
        if (c->url == NULL) {
            return flag_error("healthcheck needs ", "--url http://HOST:PORT/PATH");
        }
        int64_t t = c->timeout_ns > 0 ? c->timeout_ns : 5 * OM_NS_PER_S;
        return om_healthcheck(c->url, t / OM_NS_PER_MS, stderr);
    }
    if (c->url != NULL || c->timeout_ns != 0) {
        return flag_error("--url and --timeout go with ", "healthcheck");
    }
    const char *uris[MAX_CONFIGS];
    size_t n = sources(c, uris);
    if (c->command != NULL && strcmp(c->command, "validate") == 0) {
        if (c->n_configs == 0) {
            return flag_error("validate needs at least one ", "--config URI");
        }
        return om_service_validate(uris, n, false, stderr);
    }
    /* Without --config the built-in default runs, with any --set over it. */
    return om_service_run(uris, n, c->n_configs == 0);
}

int main(int argc, char **argv)
{
    tune_malloc();
    quiet_absl_deadlock_checks();
    raise_fd_limit();
    cli_t c = {0};
    int rc = parse_args(argc, argv, &c);
    if (rc < 0) {
        rc = run(&c);
    }
    for (size_t i = 0; i < c.n_sets; i++) {
        om_free(c.sets[i]);
    }
    return rc;
}
