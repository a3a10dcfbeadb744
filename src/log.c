/* log.c: the collector's own log lines, as otelcol writes them (service::telemetry::logs):
 *   console: "2026-11-24T06:40:01.123Z\tinfo\t[receiver/otlp]\tmsg"
 *   json:    {"level":"info","ts":"2026-11-24T06:40:01.123Z","otelcol.component.kind":
 *             "receiver","otelcol.component.id":"otlp","msg":"msg", <initial_fields>}
 * to each of the configured outputs (stderr by default). Any thread may log: each line is
 * formatted in a local buffer and written with one call per output, so lines never
 * interleave; the settings change only at start-up, before other threads exist. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log.h"

om_log_level_t om__log_level = OM_LOG_INFO;

#define MAX_OUTPUTS 8
#define LINE_MAX_BYTES 4096

static struct {
    om_log_encoding_t encoding;
    FILE *out[MAX_OUTPUTS];
    bool owned[MAX_OUTPUTS]; /* opened here: closed by om__log_reset */
    size_t n_out;
    char fields[1024]; /* initial_fields, already encoded for the encoding */
} logs = {.encoding = OM_LOG_CONSOLE};

/* zap's levels, as otelcol accepts them; the last three log as error. */
static const char *const level_choices[] = {"debug",  "info",  "warn",  "error",
                                            "dpanic", "panic", "fatal", NULL};
static const char *const encodings[] = {"console", "json", NULL};

#define OFF(m) offsetof(om_log_cfg_t, m)
static const om_field_t sampling_fields[] = {
    {.key = "enabled", .type = OM_F_BOOL, .offset = OFF(sampling.enabled) - OFF(sampling)},
    {.key = "tick", .type = OM_F_DURATION, .offset = OFF(sampling.tick) - OFF(sampling)},
    {.key = "initial", .type = OM_F_INT, .offset = OFF(sampling.initial) - OFF(sampling)},
    {.key = "thereafter", .type = OM_F_INT, .offset = OFF(sampling.thereafter) - OFF(sampling)},
    {.key = NULL},
};

const om_field_t om__log_fields[] = {
    {.key = "level",
     .type = OM_F_ENUM,
     .offset = OFF(level),
     .def = "info",
     .choices = level_choices,
     .help = "the collector's own log level"},
    {.key = "encoding",
     .type = OM_F_ENUM,
     .offset = OFF(encoding),
     .def = "console",
     .choices = encodings,
     .help = "console (tab-separated) or json (one object a line)"},
    {.key = "initial_fields",
     .type = OM_F_STRMAP,
     .offset = OFF(initial_fields),
     .help = "fields added to every line"},
    {.key = "output_paths",
     .type = OM_F_STRLIST,
     .offset = OFF(output_paths),
     .help = "where lines go: stderr, stdout or files (appended to)"},
    {.key = "error_output_paths",
     .type = OM_F_STRLIST,
     .offset = OFF(error_output_paths),
     .help = "accepted: otelmon's logger has no internal errors to write"},
    {.key = "sampling",
     .type = OM_F_SECTION,
     .offset = OFF(sampling),
     .fields = sampling_fields,
     .help = "accepted: otelmon does not sample its few log lines"},
    {.key = "development", .type = OM_F_IGNORED},
    {.key = "disable_caller", .type = OM_F_IGNORED},
    {.key = "disable_stacktrace", .type = OM_F_IGNORED},
    {.key = "processors", .type = OM_F_IGNORED},
    {.key = NULL},
};

om_log_level_t om__log_cfg_level(const om_log_cfg_t *cfg)
{
    return cfg->level >= OM_LOG_ERROR ? OM_LOG_ERROR : (om_log_level_t)cfg->level;
}

void om_log_set_level(om_log_level_t lvl)
{
    om__log_level = lvl;
}

static const char *level_name(om_log_level_t lvl)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    return lvl <= OM_LOG_ERROR ? names[lvl] : "?";
}

/* s as the inside of a JSON string, into out at *n (bounded by cap). */
static void json_escape(char *out, size_t cap, size_t *n, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0' && *n + 7 < cap; p++) {
        if (*p == '"' || *p == '\\') {
            out[(*n)++] = '\\';
            out[(*n)++] = (char)*p;
        } else if (*p < 0x20) {
            *n += (size_t)snprintf(out + *n, cap - *n, "\\u%04x", *p);
        } else {
            out[(*n)++] = (char)*p;
        }
    }
    out[*n] = '\0';
}

static void json_field(char *out, size_t cap, size_t *n, const char *k, const char *v)
{
    if (*n + 8 >= cap) {
        return;
    }
    out[(*n)++] = ',';
    out[(*n)++] = '"';
    json_escape(out, cap, n, k);
    if (*n + 4 >= cap) {
        return;
    }
    memcpy(out + *n, "\":\"", 3);
    *n += 3;
    json_escape(out, cap, n, v);
    if (*n + 2 < cap) {
        out[(*n)++] = '"';
        out[*n] = '\0';
    }
}

/* "receiver/otlp/2@traces" as otelcol's fields: kind, id, and pipeline when there is one. */
static void component_fields(char *out, size_t cap, size_t *n, const char *who)
{
    char kind[32], id[256], pipe[128] = "";
    const char *slash = strchr(who, '/');
    if (slash == NULL || (size_t)(slash - who) >= sizeof kind) {
        json_field(out, cap, n, "otelcol.component", who);
        return;
    }
    snprintf(kind, sizeof kind, "%.*s", (int)(slash - who), who);
    const char *at = strchr(slash + 1, '@');
    snprintf(id, sizeof id, "%.*s", (int)(at != NULL ? at - slash - 1 : (long)strlen(slash + 1)),
             slash + 1);
    if (at != NULL) {
        snprintf(pipe, sizeof pipe, "%s", at + 1);
    }
    json_field(out, cap, n, "otelcol.component.kind", kind);
    json_field(out, cap, n, "otelcol.component.id", id);
    if (pipe[0] != '\0') {
        json_field(out, cap, n, "otelcol.pipeline.id", pipe);
    }
}

static size_t format_console(char *line, const char *ts, om_log_level_t lvl, const char *who,
                             const char *msg)
{
    int n = snprintf(line, LINE_MAX_BYTES, "%s\t%s\t", ts, level_name(lvl));
    if (who != NULL && n >= 0 && n < LINE_MAX_BYTES) {
        n += snprintf(line + n, LINE_MAX_BYTES - (size_t)n, "[%s]\t", who);
    }
    if (n >= 0 && n < LINE_MAX_BYTES) {
        n += snprintf(line + n, LINE_MAX_BYTES - (size_t)n, "%s%s", msg, logs.fields);
    }
    return n < 0 ? 0 : (size_t)n >= LINE_MAX_BYTES ? LINE_MAX_BYTES - 1 : (size_t)n;
}

static size_t format_json(char *line, const char *ts, om_log_level_t lvl, const char *who,
                          const char *msg)
{
    size_t n = (size_t)snprintf(line, LINE_MAX_BYTES, "{\"level\":\"%s\"", level_name(lvl));
    json_field(line, LINE_MAX_BYTES, &n, "ts", ts);
    if (who != NULL) {
        component_fields(line, LINE_MAX_BYTES, &n, who);
    }
    json_field(line, LINE_MAX_BYTES, &n, "msg", msg);
    size_t extra = strlen(logs.fields);
    if (n + extra + 2 < LINE_MAX_BYTES) {
        memcpy(line + n, logs.fields, extra);
        n += extra;
    }
    line[n++] = '}';
    line[n] = '\0';
    return n;
}

void om_log_write(om_log_level_t lvl, const char *who, const char *fmt, ...)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char stamp[96];
    snprintf(stamp, sizeof stamp, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char line[LINE_MAX_BYTES + 2];
    size_t n = logs.encoding == OM_LOG_JSON ? format_json(line, stamp, lvl, who, msg)
                                            : format_console(line, stamp, lvl, who, msg);
    line[n++] = '\n';
    line[n] = '\0';
    if (logs.n_out == 0) {
        fputs(line, stderr);
        return;
    }
    /* One call per output so that lines from different threads never interleave. */
    for (size_t i = 0; i < logs.n_out; i++) {
        fputs(line, logs.out[i]);
        fflush(logs.out[i]);
    }
}

void om__log_reset(void)
{
    for (size_t i = 0; i < logs.n_out; i++) {
        if (logs.owned[i]) {
            fclose(logs.out[i]);
        }
    }
    logs.n_out = 0;
    logs.encoding = OM_LOG_CONSOLE;
    logs.fields[0] = '\0';
}

/* initial_fields encoded once: ",\"k\":\"v\"" for json, "\t{\"k\": \"v\"}" for console (as
 * zap's console encoder appends fields). */
static void encode_fields(const om_log_cfg_t *cfg)
{
    char *f = logs.fields;
    size_t cap = sizeof logs.fields, n = 0;
    f[0] = '\0';
    if (cfg->initial_fields.n == 0) {
        return;
    }
    for (size_t i = 0; i < cfg->initial_fields.n; i++) {
        json_field(f, cap, &n, cfg->initial_fields.keys[i], cfg->initial_fields.values[i]);
    }
    if (cfg->encoding == OM_LOG_CONSOLE && n > 0 && n + 3 < cap) {
        memmove(f + 2, f + 1, n); /* ",\"k\"..." -> "\t{\"k\"...}" */
        f[0] = '\t';
        f[1] = '{';
        n += 1;
        f[n++] = '}';
        f[n] = '\0';
    }
}

int om__log_configure(const om_log_cfg_t *cfg, om_err_t *err)
{
    FILE *out[MAX_OUTPUTS];
    bool owned[MAX_OUTPUTS] = {false};
    size_t n = 0;
    const om_strlist_t *paths = &cfg->output_paths;
    if (paths->n > MAX_OUTPUTS) {
        om_err_set(err, OM_ECONFIG, "service::telemetry::logs::output_paths: at most %d outputs",
                   MAX_OUTPUTS);
        return OM_ECONFIG;
    }
    for (size_t i = 0; i < paths->n; i++) {
        const char *p = paths->items[i];
        if (strcmp(p, "stderr") == 0) {
            out[n++] = stderr;
        } else if (strcmp(p, "stdout") == 0) {
            out[n++] = stdout;
        } else {
            FILE *f = fopen(p, "a");
            if (f == NULL) {
                for (size_t k = 0; k < n; k++) {
                    if (owned[k]) {
                        fclose(out[k]);
                    }
                }
                om_err_set(err, OM_EIO, "service::telemetry::logs::output_paths: cannot open %s",
                           p);
                return OM_EIO;
            }
            setvbuf(f, NULL, _IOLBF, 0);
            owned[n] = true;
            out[n++] = f;
        }
    }
    om__log_reset();
    memcpy(logs.out, out, n * sizeof *out);
    memcpy(logs.owned, owned, sizeof owned);
    logs.n_out = n;
    logs.encoding = (om_log_encoding_t)cfg->encoding;
    encode_fields(cfg);
    om_log_set_level(om__log_cfg_level(cfg));
    return 0;
}
