/* filter_config.c: the filter processor's keys (otelcol-contrib's filterprocessor.Config) and
 * their compilation. Validation compiles everything the processor would run, so a config that
 * validates cannot fail at start for any reason but memory: every condition parses, every
 * path, function and enum exists in its context, every regex compiles. A problem names its
 * key down to the condition ("traces::span::2"), so the message carries the condition's
 * file:line:column, and the compiler's message gives the column inside the condition. */
#include <stdio.h>
#include <string.h>

#include "filter.h"

static const char *const error_modes[] = {"propagate", "ignore", "silent", NULL};

static const om_field_t traces_fields[] = {
    {.key = "span",
     .type = OM_F_STRLIST,
     .offset = offsetof(filter_traces_cfg_t, span),
     .help = "OTTL conditions on spans; a span that matches one is dropped"},
    {.key = "spanevent",
     .type = OM_F_STRLIST,
     .offset = offsetof(filter_traces_cfg_t, spanevent),
     .help = "OTTL conditions on span events; an event that matches one is dropped"},
    {.key = NULL},
};

static const om_field_t metrics_fields[] = {
    {.key = "metric",
     .type = OM_F_STRLIST,
     .offset = offsetof(filter_metrics_cfg_t, metric),
     .help = "OTTL conditions on metrics; a metric that matches one is dropped"},
    {.key = "datapoint",
     .type = OM_F_STRLIST,
     .offset = offsetof(filter_metrics_cfg_t, datapoint),
     .help = "OTTL conditions on data points; a point that matches one is dropped"},
    {.key = NULL},
};

static const om_field_t logs_fields[] = {
    {.key = "log_record",
     .type = OM_F_STRLIST,
     .offset = offsetof(filter_logs_cfg_t, log_record),
     .help = "OTTL conditions on log records; a record that matches one is dropped"},
    {.key = NULL},
};

const om_field_t proc_filter_fields[] = {
    {.key = "error_mode",
     .type = OM_F_ENUM,
     .offset = offsetof(proc_filter_cfg_t, error_mode),
     .def = "propagate",
     .choices = error_modes,
     .help = "what an error while evaluating a condition does: propagate (fail the batch), "
             "ignore (log it, go on), silent (go on)"},
    {.key = "traces",
     .type = OM_F_SECTION,
     .offset = offsetof(proc_filter_cfg_t, traces),
     .fields = traces_fields,
     .help = "conditions for traces"},
    {.key = "metrics",
     .type = OM_F_SECTION,
     .offset = offsetof(proc_filter_cfg_t, metrics),
     .fields = metrics_fields,
     .help = "conditions for metrics"},
    {.key = "logs",
     .type = OM_F_SECTION,
     .offset = offsetof(proc_filter_cfg_t, logs),
     .fields = logs_fields,
     .help = "conditions for logs"},
    {.key = NULL},
};

/* ---- compiling ---------------------------------------------------------------------------- */

static void conds_free(filter_conds_t *c)
{
    for (size_t i = 0; i < c->n; i++) {
        proc_filter_ottl_free(c->e[i]);
    }
    om_free(c->e);
    *c = (filter_conds_t){0};
}

/* Compiles every condition of list (the config key at `at`) for ctx. */
static int conds_build(filter_conds_t *c, const om_strlist_t *list, ottl_ctx_t ctx, const char *at,
                       om_err_t *err)
{
    *c = (filter_conds_t){0};
    if (list->n == 0) {
        return 0;
    }
    c->e = om_calloc(list->n, sizeof *c->e);
    if (c->e == NULL) {
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    c->text = (const char *const *)list->items;
    for (size_t i = 0; i < list->n; i++) {
        om_err_t cerr = {0};
        int rc = proc_filter_ottl_compile(ctx, list->items[i], &c->e[i], &cerr);
        c->n = i + 1;
        if (rc == OM_ENOMEM) {
            om_err_set(err, OM_ENOMEM, "out of memory");
            conds_free(c);
            return OM_ENOMEM;
        }
        if (rc != 0) {
            char key[96];
            snprintf(key, sizeof key, "%s::%zu", at, i);
            om_err_at(err, key, "%s", cerr.msg);
            conds_free(c);
            return OM_ECONFIG;
        }
    }
    return 0;
}

int proc_filter_prog_build(const proc_filter_cfg_t *cfg, filter_prog_t *prog, om_err_t *err)
{
    *prog = (filter_prog_t){0};
    struct {
        filter_conds_t *c;
        const om_strlist_t *list;
        ottl_ctx_t ctx;
        const char *at;
    } parts[] = {
        {&prog->span, &cfg->traces.span, OTTL_CTX_SPAN, "traces::span"},
        {&prog->spanevent, &cfg->traces.spanevent, OTTL_CTX_SPANEVENT, "traces::spanevent"},
        {&prog->metric, &cfg->metrics.metric, OTTL_CTX_METRIC, "metrics::metric"},
        {&prog->datapoint, &cfg->metrics.datapoint, OTTL_CTX_DATAPOINT, "metrics::datapoint"},
        {&prog->log_record, &cfg->logs.log_record, OTTL_CTX_LOG, "logs::log_record"},
    };
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        int rc = conds_build(parts[i].c, parts[i].list, parts[i].ctx, parts[i].at, err);
        if (rc != 0) {
            proc_filter_prog_free(prog);
            return rc;
        }
    }
    return 0;
}

void proc_filter_prog_free(filter_prog_t *prog)
{
    conds_free(&prog->span);
    conds_free(&prog->spanevent);
    conds_free(&prog->metric);
    conds_free(&prog->datapoint);
    conds_free(&prog->log_record);
}

int proc_filter_config_validate(const void *vcfg, om_err_t *err)
{
    filter_prog_t prog;
    int rc = proc_filter_prog_build(vcfg, &prog, err);
    proc_filter_prog_free(&prog);
    return rc;
}
