/* obsreport.c: what each receiver counts, as otelcol's receiverhelper obsreport counts it:
 * items (spans, metric points, log records) pushed into the pipeline (accepted) or answered
 * with an error by it (refused), per receiver and transport. Items a receiver refuses before
 * decoding them (a body too large, the intake's limit) cannot be counted as items and are not,
 * as in otelcol, where they never reach the obsreport either. */
#include "om.h"

#define COUNTER(n, what, u)                                                                        \
    {                                                                                              \
        .name = n, .help = what, .unit = u, .type = OM_METRIC_COUNTER                              \
    }

static const om_metric_def_t accepted_defs[OM_SIG_COUNT] = {
    COUNTER("otelcol_receiver_accepted_spans",
            "Number of spans successfully pushed into the pipeline.", "{spans}"),
    COUNTER("otelcol_receiver_accepted_metric_points",
            "Number of metric points successfully pushed into the pipeline.", "{datapoints}"),
    COUNTER("otelcol_receiver_accepted_log_records",
            "Number of log records successfully pushed into the pipeline.", "{records}"),
};
static const om_metric_def_t refused_defs[OM_SIG_COUNT] = {
    COUNTER("otelcol_receiver_refused_spans",
            "Number of spans that could not be pushed into the pipeline.", "{spans}"),
    COUNTER("otelcol_receiver_refused_metric_points",
            "Number of metric points that could not be pushed into the pipeline.", "{datapoints}"),
    COUNTER("otelcol_receiver_refused_log_records",
            "Number of log records that could not be pushed into the pipeline.", "{records}"),
};

int om_obsrecv_init(om_obsrecv_t *o, om_host_t *host, const char *receiver_id,
                    const char *transport, om_err_t *err)
{
    *o = (om_obsrecv_t){0};
    if (host == NULL || host->metrics == NULL) {
        return 0;
    }
    om_label_t l[] = {{"receiver", receiver_id}, {"transport", transport}};
    for (int i = 0; i < OM_SIG_COUNT; i++) {
        int rc = om_metrics_counter(host->metrics, &accepted_defs[i], l, 2, &o->accepted[i], err);
        rc = rc ? rc
                : om_metrics_counter(host->metrics, &refused_defs[i], l, 2, &o->refused[i], err);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

int om_obsrecv_deliver(const om_obsrecv_t *o, const om_consumer_t *next, om_batch_t *batch)
{
    int idx = om_signal_index(batch->signal);
    size_t items = batch->items; /* read now: next takes the batch */
    int rc = om_consumer_consume(next, batch);
    if (idx >= 0) {
        om_metric_counter_add(rc == 0 ? o->accepted[idx] : o->refused[idx], items);
    }
    return rc;
}

int om_obsrecv_deliver_prepared(const om_obsrecv_t *o, const om_consumer_t *next, om_prepared_t *p)
{
    int idx = om_signal_index(p->signal);
    size_t items = p->items; /* the request's, before the run's processors dropped any */
    int rc = om_consumer_finish(next, p);
    if (idx >= 0) {
        om_metric_counter_add(rc == 0 ? o->accepted[idx] : o->refused[idx], items);
    }
    return rc;
}
