/* forward.c: the forward connector, as otelcol's connector/forwardconnector: what a pipeline
 * exports to it reaches the pipelines that list it as a receiver, unchanged and of the same
 * signal (traces to traces, metrics to metrics, logs to logs). A common `traces/in` pipeline
 * can so feed `traces/tempo` and `traces/alarms`, each with its own processors.
 *
 * Fanning out to several pipelines is the core's: the next consumer it is created with is
 * already a fan-out over them, ordered by OM_CAP_MUTATES_DATA, so a batch is handed on
 * without a copy (a pipeline that changes data gets it last, or copies on write). The
 * connector changes nothing itself; the core counts it as mutating when a pipeline it feeds
 * does, so that the fan-out upstream orders it last too.
 *
 * Loop thread only; no state but the next consumers. */
#include <string.h>

#include "om.h"

typedef struct conn_forward {
    om_consumer_t next[OM_SIG_COUNT];
    bool shut;
} conn_forward_t;

/* otelcol's forward connector has no settings: an empty map, and any key is an error. */
typedef struct conn_forward_cfg {
    char unused;
} conn_forward_cfg_t;

static const om_field_t forward_fields[] = {
    {.key = NULL},
};

static int forward_consume(void *self, om_batch_t *b)
{
    conn_forward_t *c = self;
    int idx = om_signal_index(b->signal);
    if (c->shut || idx < 0) {
        om_batch_release(b);
        return idx < 0 ? OM_EINVAL : OM_ESHUTDOWN;
    }
    /* Takes the reference on every path; a signal wired to nothing answers OM_ENOTSUP. */
    return om_consumer_consume(&c->next[idx], b);
}

static int forward_create(const om_create_args_t *a, void **self, om_err_t *err)
{
    conn_forward_t *c = om_calloc(1, sizeof *c);
    if (c == NULL) {
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    /* The core wires next[s] for the signal s of the pipelines fed: the same signal as
     * consumed, since forward supports only same-signal pairs. */
    memcpy(c->next, a->next, sizeof c->next);
    *self = c;
    return 0;
}

static void forward_shutdown(void *self, om_done_fn done, void *arg)
{
    conn_forward_t *c = self;
    if (c->shut) {
        return;
    }
    c->shut = true;
    done(arg);
}

static void forward_destroy(void *self)
{
    om_free(self);
}

const om_factory_t conn_forward_factory = {
    .abi = OM_FACTORY_ABI,
    .kind = OM_CONNECTOR,
    .type = "forward",
    .help = "passes data from the pipelines that export to it to those that receive from it",
    .signals = OM_SIG_ALL,
    .connects = {OM_SIG_TRACES, OM_SIG_METRICS, OM_SIG_LOGS},
    .caps = 0,
    .config_size = sizeof(conn_forward_cfg_t),
    .fields = forward_fields,
    .create = forward_create,
    .shutdown = forward_shutdown,
    .destroy = forward_destroy,
    .consume_traces = forward_consume,
    .consume_metrics = forward_consume,
    .consume_logs = forward_consume,
};
