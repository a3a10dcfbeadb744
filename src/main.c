/* main.c: the otelmon command line, shaped like otelcol's:
 *   otelmon [--config FILE]...          run (later files merge over earlier ones)
 *   otelmon validate --config FILE...   check the config; exit 0 when valid, 1 with problems
 *   otelmon components                  list the components of this build */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "om.h"
#include "service.h"

#define MAX_CONFIGS 32

static const char usage[] =
    "Usage:\n"
    "  otelmon [--config FILE]...            run the collector (built-in default config when no\n"
    "                                        --config is given: OTLP gRPC :4317 and HTTP :4318\n"
    "                                        on localhost -> batch -> debug)\n"
    "  otelmon validate --config FILE...     validate a config and exit (0 valid, 1 invalid)\n"
    "  otelmon components                    list the components in this build\n"
    "\n"
    "Flags:\n"
    "  --config FILE, --config=FILE   a YAML config file (repeatable; later files merge over\n"
    "                                 earlier ones)\n"
    "  -h, --help                     this help\n"
    "  -v, --version                  print the version\n";

typedef struct cli {
    const char *command; /* NULL (run), "validate", "components" */
    const char *configs[MAX_CONFIGS];
    size_t n_configs;
} cli_t;

static int flag_error(const char *what, const char *arg)
{
    fprintf(stderr, "otelmon: %s%s\nRun 'otelmon --help' for usage.\n", what, arg);
    return 1;
}

static int add_config(cli_t *c, const char *path)
{
    if (path[0] == '\0') {
        return flag_error("empty file name for ", "--config");
    }
    if (c->n_configs == MAX_CONFIGS) {
        return flag_error("too many --config flags, at most ", "32");
    }
    c->configs[c->n_configs++] = path;
    return 0;
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
        if (strcmp(a, "--config") == 0) {
            if (i + 1 == argc) {
                return flag_error("flag needs an argument: ", "--config");
            }
            if (add_config(c, argv[++i]) != 0) {
                return 1;
            }
        } else if (strncmp(a, "--config=", 9) == 0) {
            if (add_config(c, a + 9) != 0) {
                return 1;
            }
        } else if (a[0] == '-') {
            return flag_error("unknown flag: ", a);
        } else if (c->command == NULL &&
                   (strcmp(a, "validate") == 0 || strcmp(a, "components") == 0)) {
            c->command = a;
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

int main(int argc, char **argv)
{
    tune_malloc();
    raise_fd_limit();
    cli_t c = {0};
    int rc = parse_args(argc, argv, &c);
    if (rc >= 0) {
        return rc;
    }
    if (c.command != NULL && strcmp(c.command, "components") == 0) {
        om_service_print_components(stdout);
        return 0;
    }
    if (c.command != NULL && strcmp(c.command, "validate") == 0) {
        if (c.n_configs == 0) {
            return flag_error("validate needs at least one ", "--config FILE");
        }
        return om_service_validate(c.configs, c.n_configs, stderr);
    }
    return om_service_run(c.configs, c.n_configs);
}
