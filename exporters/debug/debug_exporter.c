/* debug_exporter.c: the debug exporter: prints what it receives on stderr, as otelcol does.
 *
 * Every batch gives one summary line, formatted as the collector's console logger prints it:
 *   <time>\tinfo\tTraces\t{"otelcol.component.id": "debug", "otelcol.component.kind":
 *   "exporter", "otelcol.signal": "traces", "resource spans": 1, "spans": 2}
 * ("Metrics" with "resource metrics", "metrics", "data points"; "Logs" with "resource logs",
 * "log records"). With verbosity normal or detailed a second entry follows whose message is the
 * multi-line text of the batch (debug_text.c), closed by a tab and the component fields on the
 * last line, again as the collector prints it.
 *
 * Sampling is zap's, as otelcol configures it: per message (here: per signal's summary line),
 * in each second the first sampling_initial entries are printed, then every
 * sampling_thereafter-th (0: none). The multi-line text is a different message each time, so,
 * as in otelcol, it is not sampled. Nothing is printed when the log level is above info.
 *
 * Output goes through a buffer flushed to stderr with fwrite at record boundaries past 64 KiB,
 * so a large batch does not hold a large buffer. Writing to stderr on the loop is accepted:
 * stderr is where the collector logs. use_internal_logger and sending_queue are accepted and
 * ignored. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "debug.h"

/* A buffer bigger than this after a batch is given back rather than kept for the next one. */
#define KEEP_BUFFER 1048576

typedef struct sampler {
    uint64_t tick_start_ms;
    uint64_t count;
} sampler_t;

typedef struct exp_debug {
    const exp_debug_cfg_t *cfg;
    const char *id;
    const char *log_name;
    om_host_t *host;
    om_strbuf_t sb;
    sampler_t samplers[OM_SIG_COUNT];
    bool shutting_down;
} exp_debug_t;

static const char *const verbosity_choices[] = {"basic", "normal", "detailed", NULL};

static const om_field_t debug_fields[] = {
    {.key = "verbosity",
     .type = OM_F_ENUM,
     .offset = offsetof(exp_debug_cfg_t, verbosity),
     .def = "basic",
     .choices = verbosity_choices,
     .help = "basic: a summary line per batch; normal: a line per item; detailed: everything"},
    {.key = "sampling_initial",
     .type = OM_F_INT,
     .offset = offsetof(exp_debug_cfg_t, sampling_initial),
     .def = "2",
     .min = 0,
     .max = 1e9,
     .help = "summary lines printed each second before sampling starts"},
    {.key = "sampling_thereafter",
     .type = OM_F_INT,
     .offset = offsetof(exp_debug_cfg_t, sampling_thereafter),
     .def = "1",
     .min = 0,
     .max = 1e9,
     .help = "then every Nth summary line is printed (1: all)"},
    {.key = "use_internal_logger", .type = OM_F_IGNORED},
    {.key = "sending_queue", .type = OM_F_IGNORED},
    {.key = "output_paths", .type = OM_F_IGNORED},
    {.key = NULL},
};

/* ---- output ------------------------------------------------------------------------------ */

static void write_out(void *arg)
{
    exp_debug_t *d = arg;
    if (d->sb.len > 0) {
        fwrite(d->sb.data, 1, d->sb.len, stderr);
    }
    if (d->sb.failed) {
        fputs("\n(debug exporter: output cut short: out of memory)\n", stderr);
    }
    om_strbuf_reset(&d->sb);
}

/* "<time>\tinfo\t", the console logger's line start. */
static void put_prefix(om_strbuf_t *sb)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    om_strbuf_printf(sb, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\tinfo\t", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000);
}

/* The component fields, without the closing brace. */
static void put_fields(exp_debug_t *d, om_signal_t sig)
{
    om_strbuf_printf(&d->sb,
                     "{\"otelcol.component.id\": \"%s\", \"otelcol.component.kind\": "
                     "\"exporter\", \"otelcol.signal\": \"%s\"",
                     d->id, om_signal_name(sig));
}

static void put_summary(exp_debug_t *d, const om_batch_t *b)
{
    om_batch_counts_t c;
    om_batch_counts(b, &c);
    put_prefix(&d->sb);
    switch (b->signal) {
    case OM_SIG_TRACES:
        om_strbuf_puts(&d->sb, "Traces\t");
        put_fields(d, b->signal);
        om_strbuf_printf(&d->sb, ", \"resource spans\": %zu, \"spans\": %zu}\n", c.resources,
                         c.items);
        break;
    case OM_SIG_METRICS:
        om_strbuf_puts(&d->sb, "Metrics\t");
        put_fields(d, b->signal);
        om_strbuf_printf(&d->sb,
                         ", \"resource metrics\": %zu, \"metrics\": %zu, \"data points\": %zu}\n",
                         c.resources, c.metrics, c.items);
        break;
    default:
        om_strbuf_puts(&d->sb, "Logs\t");
        put_fields(d, b->signal);
        om_strbuf_printf(&d->sb, ", \"resource logs\": %zu, \"log records\": %zu}\n", c.resources,
                         c.items);
        break;
    }
}

/* zap's sampler: whether this entry of the signal's summary is printed. */
static bool sample(exp_debug_t *d, om_signal_t sig)
{
    sampler_t *s = &d->samplers[om_signal_index(sig)];
    uint64_t now = d->host != NULL && d->host->loop != NULL ? uv_now(d->host->loop) : 0;
    if (s->count == 0 || now - s->tick_start_ms >= 1000) {
        s->tick_start_ms = now;
        s->count = 0;
    }
    uint64_t n = ++s->count;
    uint64_t first = (uint64_t)d->cfg->sampling_initial;
    uint64_t thereafter = (uint64_t)d->cfg->sampling_thereafter;
    return n <= first || (thereafter != 0 && (n - first) % thereafter == 0);
}

static void print_batch(exp_debug_t *d, om_batch_t *b)
{
    if (sample(d, b->signal)) {
        put_summary(d, b);
        write_out(d);
    }
    if (d->cfg->verbosity == EXP_DEBUG_BASIC) {
        return;
    }
    om_err_t err = {0};
    if (om_batch_decode(b, &err) != 0) {
        OM_CLOG(d->log_name, OM_LOG_WARN, "cannot print the %s: %s", om_signal_name(b->signal),
                err.msg);
        return;
    }
    put_prefix(&d->sb);
    size_t start = d->sb.len;
    exp_debug_sink_t sink = {.sb = &d->sb, .flush = write_out, .arg = d};
    if (d->cfg->verbosity == EXP_DEBUG_DETAILED) {
        exp_debug_detailed(&sink, b);
    } else {
        exp_debug_normal(&sink, b);
    }
    /* An empty batch has no text: no entry, rather than an empty one. */
    if (d->sb.len == start) {
        om_strbuf_reset(&d->sb);
        return;
    }
    om_strbuf_putc(&d->sb, '\t');
    put_fields(d, b->signal);
    om_strbuf_puts(&d->sb, "}\n");
    write_out(d);
}

static int debug_consume(void *self, om_batch_t *b)
{
    exp_debug_t *d = self;
    int rc = 0;
    if (d->shutting_down) {
        rc = OM_ESHUTDOWN;
    } else if (om__log_level <= OM_LOG_INFO && om_signal_index(b->signal) >= 0) {
        print_batch(d, b);
        if (d->sb.cap > KEEP_BUFFER) {
            om_strbuf_free(&d->sb);
            om_strbuf_init(&d->sb, 0);
        }
    }
    om_batch_release(b);
    return rc;
}

/* ---- lifecycle --------------------------------------------------------------------------- */

static int debug_create(const om_create_args_t *a, void **self, om_err_t *err)
{
    exp_debug_t *d = om_calloc(1, sizeof *d);
    if (d == NULL) {
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    d->cfg = a->cfg;
    d->id = a->id != NULL ? a->id : "debug";
    d->log_name = a->log_name;
    d->host = a->host;
    om_strbuf_init(&d->sb, 0);
    *self = d;
    return 0;
}

static int debug_start(void *self, om_err_t *err)
{
    (void)self;
    (void)err;
    return 0;
}

static void debug_shutdown(void *self, om_done_fn done, void *arg)
{
    exp_debug_t *d = self;
    if (d->shutting_down) {
        return;
    }
    d->shutting_down = true;
    fflush(stderr);
    done(arg);
}

static void debug_destroy(void *self)
{
    exp_debug_t *d = self;
    om_strbuf_free(&d->sb);
    om_free(d);
}

const om_factory_t exp_debug_factory = {
    .abi = OM_FACTORY_ABI,
    .kind = OM_EXPORTER,
    .type = "debug",
    .help = "prints received data on stderr (a summary, one line per item, or everything)",
    .signals = OM_SIG_ALL,
    .caps = 0,
    .config_size = sizeof(exp_debug_cfg_t),
    .fields = debug_fields,
    .create = debug_create,
    .start = debug_start,
    .shutdown = debug_shutdown,
    .destroy = debug_destroy,
    .consume_traces = debug_consume,
    .consume_metrics = debug_consume,
    .consume_logs = debug_consume,
};
