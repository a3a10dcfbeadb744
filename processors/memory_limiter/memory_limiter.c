/* memory_limiter.c: the `memory_limiter` processor, with otelcol's keys and its refusal
 * ("data refused due to high memory usage": gRPC UNAVAILABLE, HTTP 503, which clients retry).
 *
 * otelcol samples the Go heap every check_interval and refuses in the processor above the
 * soft limit (limit - spike), forcing a GC above the hard limit; the spike room absorbs what
 * arrives between two samples. OtelMon counts instead what holds data, exactly and at once:
 * the bytes of every live arena (om_arena_live_bytes), which the receivers check before they
 * decode a request (the host's intake, om.h "Intake backpressure"). So:
 *
 * - The soft limit (limit - spike) is this instance's om_intake_limit_t, with no hold: while
 *   the arenas hold more than it and some export is pending, every receiver refuses new
 *   requests at ingress, before reading them into memory, with OM_EREFUSED and otelcol's text;
 *   the intake takes requests again once the arenas hold less than three quarters of the soft
 *   limit (or nothing is left to send, since then refusing frees nothing). There is no hold
 *   state while a memory_limiter is configured: above its soft limit otelcol refuses, so this
 *   does too.
 * - The hard limit (limit) bounds the rest: requests that passed the ingress check before the
 *   crossing and were decoded after it. consume refuses (OM_EMEMLIMIT, otelcol's text) every
 *   batch that arrives while the arenas hold more than the hard limit. With the spike room at
 *   least the size of what receivers can have in progress at once, that never happens; it is
 *   the bound for receivers and connectors that do not check the intake.
 * - check_interval is required (> 0) as in otelcol, and unused: nothing is sampled. The
 *   min_gc_interval_* keys are checked as otelcol checks them and have no effect (no GC).
 *
 * Where the intake's limit comes from when no memory_limiter is configured: its default,
 * OM_INTAKE_LIMIT_DEFAULT (16 MiB) with a hold of OM_INTAKE_HOLD_MS_DEFAULT (2 s) before
 * refusing. The core makes one instance per pipeline; each registers its limit and the
 * lowest applies. Loop thread only. */
#include <string.h>

#include "memory_limiter.h"

typedef struct proc_memory_limiter {
    const char *log_name;
    om_host_t *host;
    om_consumer_t next[OM_SIG_COUNT];
    uint64_t hard, spike;
    om_intake_limit_t limit; /* the soft limit, registered from start to shutdown */
    bool registered, refusing, shut;
    uint64_t refused_batches;
} proc_memory_limiter_t;

#define MIB_MAX 4294967295.0 /* otelcol's fields are uint32 */

static const om_field_t memory_limiter_fields[] = {
    {.key = "check_interval",
     .type = OM_F_DURATION,
     .offset = offsetof(proc_memory_limiter_cfg_t, check_interval),
     .help = "required (> 0) as in otelcol; otelmon counts at once and samples nothing"},
    {.key = "limit_mib",
     .type = OM_F_INT,
     .offset = offsetof(proc_memory_limiter_cfg_t, limit_mib),
     .min = 0,
     .max = MIB_MAX,
     .help = "the hard limit in MiB"},
    {.key = "spike_limit_mib",
     .type = OM_F_INT,
     .offset = offsetof(proc_memory_limiter_cfg_t, spike_limit_mib),
     .min = 0,
     .max = MIB_MAX,
     .help = "room between the soft and the hard limit (default: 20% of the limit)"},
    {.key = "limit_percentage",
     .type = OM_F_INT,
     .offset = offsetof(proc_memory_limiter_cfg_t, limit_percentage),
     .min = 0,
     .max = MIB_MAX,
     .help = "the hard limit in % of the cgroup's memory limit, else of total memory"},
    {.key = "spike_limit_percentage",
     .type = OM_F_INT,
     .offset = offsetof(proc_memory_limiter_cfg_t, spike_limit_percentage),
     .min = 0,
     .max = MIB_MAX,
     .help = "the spike room in % of the same total"},
    {.key = "min_gc_interval_when_soft_limited",
     .type = OM_F_DURATION,
     .offset = offsetof(proc_memory_limiter_cfg_t, min_gc_interval_when_soft_limited),
     .def = "10s",
     .help = "checked as otelcol checks it; no effect (otelmon has no garbage collector)"},
    {.key = "min_gc_interval_when_hard_limited",
     .type = OM_F_DURATION,
     .offset = offsetof(proc_memory_limiter_cfg_t, min_gc_interval_when_hard_limited),
     .help = "checked as otelcol checks it; no effect"},
    {.key = NULL},
};

/* otelcol's Validate, in its order and with its messages. */
static int memory_limiter_validate(const void *vcfg, om_err_t *err)
{
    const proc_memory_limiter_cfg_t *c = vcfg;
    if (c->check_interval <= 0) {
        om_err_at(err, "check_interval", "'check_interval' must be greater than zero");
    } else if (c->min_gc_interval_when_soft_limited < c->min_gc_interval_when_hard_limited) {
        om_err_at(err, "min_gc_interval_when_soft_limited",
                  "'min_gc_interval_when_soft_limited' should be larger than "
                  "'min_gc_interval_when_hard_limited'");
    } else if (c->limit_mib == 0 && c->limit_percentage == 0) {
        om_err_at(err, "limit_mib", "'limit_mib' or 'limit_percentage' must be greater than zero");
    } else if (c->limit_percentage > 100 || c->spike_limit_percentage > 100) {
        om_err_at(err, c->limit_percentage > 100 ? "limit_percentage" : "spike_limit_percentage",
                  "'limit_percentage' and 'spike_limit_percentage' must be greater than zero and "
                  "less than or equal to hundred");
    } else if (c->limit_mib > 0 && c->limit_mib <= c->spike_limit_mib) {
        om_err_at(err, "spike_limit_mib", "'spike_limit_mib' must be smaller than 'limit_mib'");
    } else if (c->limit_percentage > 0 && c->limit_percentage <= c->spike_limit_percentage) {
        om_err_at(err, "spike_limit_percentage",
                  "'spike_limit_percentage' must be smaller than 'limit_percentage'");
    } else {
        return 0;
    }
    return OM_ECONFIG;
}

static int memory_limiter_create(const om_create_args_t *a, void **self, om_err_t *err)
{
    const proc_memory_limiter_cfg_t *cfg = a->cfg;
    uint64_t total = 0;
    if (cfg->limit_mib == 0 && proc_memory_limiter_total("", &total, err) != 0) {
        return OM_EIO;
    }
    proc_memory_limiter_t *p = om_calloc(1, sizeof *p);
    if (p == NULL) {
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    p->log_name = a->log_name;
    p->host = a->host;
    memcpy(p->next, a->next, sizeof p->next);
    proc_memory_limiter_limits(cfg, total, &p->hard, &p->spike);
    if (p->hard <= p->spike || p->hard - p->spike > SIZE_MAX) {
        om_free(p);
        om_err_set(err, OM_ECONFIG, "the limit (%llu bytes) leaves no room under the spike limit",
                   (unsigned long long)p->hard);
        return OM_ECONFIG;
    }
    p->limit = (om_intake_limit_t){.bytes = (size_t)(p->hard - p->spike),
                                   .hold_ms = 0,
                                   .owner = a->log_name,
                                   .refused_msg = om_strerror(OM_EMEMLIMIT)};
    *self = p;
    return 0;
}

static int memory_limiter_start(void *self, om_err_t *err)
{
    (void)err;
    proc_memory_limiter_t *p = self;
    OM_CLOG(p->log_name, OM_LOG_INFO,
            "Memory limiter configured: limit_mib %llu, spike_limit_mib %llu (receivers refuse "
            "above %llu MiB of data held)",
            (unsigned long long)(p->hard >> 20), (unsigned long long)(p->spike >> 20),
            (unsigned long long)(p->limit.bytes >> 20));
    if (p->host != NULL && p->host->intake != NULL) {
        om_intake_limit_add(p->host->intake, &p->limit);
        p->registered = true;
    }
    return 0;
}

static void memory_limiter_shutdown(void *self, om_done_fn done, void *arg)
{
    proc_memory_limiter_t *p = self;
    if (p->shut) {
        return;
    }
    p->shut = true;
    if (p->registered) {
        om_intake_limit_remove(p->host->intake, &p->limit);
        p->registered = false;
    }
    done(arg);
}

static void memory_limiter_destroy(void *self)
{
    proc_memory_limiter_t *p = self;
    if (p != NULL && p->registered) {
        om_intake_limit_remove(p->host->intake, &p->limit);
    }
    om_free(p);
}

/* Refusing is worth a line when it starts and when it ends, not one per batch. */
static void note_state(proc_memory_limiter_t *p, bool refusing, size_t live)
{
    if (refusing == p->refusing) {
        return;
    }
    p->refusing = refusing;
    if (refusing) {
        OM_CLOG(p->log_name, OM_LOG_WARN,
                "Memory usage is above hard limit. Refusing data. (%zu MiB of data held, limit "
                "%llu MiB)",
                live >> 20, (unsigned long long)(p->hard >> 20));
    } else {
        OM_CLOG(p->log_name, OM_LOG_INFO,
                "Memory usage back within limits. Resuming normal operation. (%zu MiB held, "
                "%llu batches refused)",
                live >> 20, (unsigned long long)p->refused_batches);
    }
}

static int memory_limiter_consume(void *self, om_batch_t *b)
{
    proc_memory_limiter_t *p = self;
    size_t live = om_arena_live_bytes();
    bool refuse = live > p->hard;
    note_state(p, refuse, live);
    if (refuse) {
        p->refused_batches++;
        om_batch_release(b);
        return OM_EMEMLIMIT;
    }
    return om_consumer_consume(&p->next[om_signal_index(b->signal)], b);
}

const om_factory_t proc_memory_limiter_factory = {
    .abi = OM_FACTORY_ABI,
    .kind = OM_PROCESSOR,
    .type = "memory_limiter",
    .help = "refuses data (retryable) while the data the collector holds passes its limits",
    .signals = OM_SIG_ALL,
    .caps = 0,
    .config_size = sizeof(proc_memory_limiter_cfg_t),
    .fields = memory_limiter_fields,
    .config_validate = memory_limiter_validate,
    .create = memory_limiter_create,
    .start = memory_limiter_start,
    .shutdown = memory_limiter_shutdown,
    .destroy = memory_limiter_destroy,
    .consume_traces = memory_limiter_consume,
    .consume_metrics = memory_limiter_consume,
    .consume_logs = memory_limiter_consume,
};
