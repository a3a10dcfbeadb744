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

/* ---- the legacy form: include / exclude ---------------------------------------------------- */

#define MATCH_TYPE                                                                                 \
    {.key = "match_type",                                                                          \
     .type = OM_F_STRING,                                                                          \
     .offset = offsetof(filter_match_cfg_t, match_type),                                           \
     .help = "strict (exact strings) or regexp (RE2 patterns, matching anywhere)"},                \
    {                                                                                              \
        .key = "regexp", .type = OM_F_IGNORED                                                      \
    }
#define MATCH_LIST(k, member, h)                                                                   \
    {                                                                                              \
        .key = (k), .type = OM_F_STRLIST, .offset = offsetof(filter_match_cfg_t, member),          \
        .help = (h)                                                                                \
    }
#define MATCH_NODE(k, member, h)                                                                   \
    {                                                                                              \
        .key = (k), .type = OM_F_NODE, .offset = offsetof(filter_match_cfg_t, member), .help = (h) \
    }

static const om_field_t span_match_fields[] = {
    MATCH_TYPE,
    MATCH_LIST("services", services, "service.name values (one must match)"),
    MATCH_LIST("span_names", span_names, "span names (one must match)"),
    MATCH_LIST("span_kinds", span_kinds, "span kinds, SPAN_KIND_SERVER... (one must match)"),
    MATCH_NODE("attributes", attributes, "[{key, value}]: span attributes (all must match)"),
    MATCH_NODE("resources", resources, "[{key, value}]: resource attributes (all must match)"),
    MATCH_NODE("libraries", libraries, "[{name, version}]: instrumentation scopes"),
    {.key = NULL},
};

static const om_field_t metric_match_fields[] = {
    MATCH_TYPE,
    MATCH_LIST("metric_names", metric_names, "metric names (one must match)"),
    MATCH_LIST("expressions", expressions, "expr expressions (match_type expr: not supported)"),
    MATCH_NODE("resource_attributes", resource_attributes,
               "[{key, value}]: resource attributes (all must match)"),
    {.key = NULL},
};

static const om_field_t severity_fields[] = {
    {.key = "min",
     .type = OM_F_STRING,
     .offset = offsetof(filter_match_cfg_t, severity_number.min) -
               offsetof(filter_match_cfg_t, severity_number),
     .help = "the lowest severity that matches: TRACE..FATAL4 or 1..24"},
    {.key = "match_undefined",
     .type = OM_F_BOOL,
     .offset = offsetof(filter_match_cfg_t, severity_number.match_undefined) -
               offsetof(filter_match_cfg_t, severity_number),
     .help = "whether records without a severity number match"},
    {.key = NULL},
};

static const om_field_t log_match_fields[] = {
    MATCH_TYPE,
    MATCH_NODE("resource_attributes", resource_attributes,
               "[{key, value}]: resource attributes (all must match)"),
    MATCH_NODE("record_attributes", record_attributes,
               "[{key, value}]: record attributes (all must match)"),
    MATCH_LIST("severity_texts", severity_texts, "severity texts (one must match)"),
    MATCH_LIST("bodies", bodies, "bodies, as strings (one must match)"),
    {.key = "severity_number",
     .type = OM_F_SECTION,
     .offset = offsetof(filter_match_cfg_t, severity_number),
     .fields = severity_fields,
     .flags = OM_FF_PRESENCE,
     .present_offset = offsetof(filter_match_cfg_t, severity_number_present),
     .help = "match records of at least this severity"},
    {.key = NULL},
};

#define INCLUDE_EXCLUDE(table)                                                                     \
    {.key = "include",                                                                             \
     .type = OM_F_SECTION,                                                                         \
     .offset = offsetof(filter_legacy_cfg_t, include),                                             \
     .fields = (table),                                                                            \
     .flags = OM_FF_PRESENCE,                                                                      \
     .present_offset = offsetof(filter_legacy_cfg_t, include_present),                             \
     .help = "only what matches is kept"},                                                         \
    {                                                                                              \
        .key = "exclude", .type = OM_F_SECTION, .offset = offsetof(filter_legacy_cfg_t, exclude),  \
        .fields = (table), .flags = OM_FF_PRESENCE,                                                \
        .present_offset = offsetof(filter_legacy_cfg_t, exclude_present),                          \
        .help = "what matches is dropped"                                                          \
    }

static const om_field_t spans_fields[] = {
    INCLUDE_EXCLUDE(span_match_fields),
    {.key = NULL},
};

/* ---- the OTTL form, and the sections that hold both ---------------------------------------- */

static const om_field_t metrics_fields[] = {
    {.key = "metric",
     .type = OM_F_STRLIST,
     .offset = offsetof(filter_metrics_cfg_t, metric),
     .help = "OTTL conditions on metrics; a metric that matches one is dropped"},
    {.key = "datapoint",
     .type = OM_F_STRLIST,
     .offset = offsetof(filter_metrics_cfg_t, datapoint),
     .help = "OTTL conditions on data points; a point that matches one is dropped"},
    {.key = "include",
     .type = OM_F_SECTION,
     .offset = offsetof(filter_metrics_cfg_t, legacy.include),
     .fields = metric_match_fields,
     .flags = OM_FF_PRESENCE,
     .present_offset = offsetof(filter_metrics_cfg_t, legacy.include_present),
     .help = "legacy form: only metrics that match are kept"},
    {.key = "exclude",
     .type = OM_F_SECTION,
     .offset = offsetof(filter_metrics_cfg_t, legacy.exclude),
     .fields = metric_match_fields,
     .flags = OM_FF_PRESENCE,
     .present_offset = offsetof(filter_metrics_cfg_t, legacy.exclude_present),
     .help = "legacy form: metrics that match are dropped"},
    {.key = "regexp", .type = OM_F_IGNORED},
    {.key = NULL},
};

static const om_field_t logs_fields[] = {
    {.key = "log_record",
     .type = OM_F_STRLIST,
     .offset = offsetof(filter_logs_cfg_t, log_record),
     .help = "OTTL conditions on log records; a record that matches one is dropped"},
    {.key = "include",
     .type = OM_F_SECTION,
     .offset = offsetof(filter_logs_cfg_t, legacy.include),
     .fields = log_match_fields,
     .flags = OM_FF_PRESENCE,
     .present_offset = offsetof(filter_logs_cfg_t, legacy.include_present),
     .help = "legacy form: only log records that match are kept"},
    {.key = "exclude",
     .type = OM_F_SECTION,
     .offset = offsetof(filter_logs_cfg_t, legacy.exclude),
     .fields = log_match_fields,
     .flags = OM_FF_PRESENCE,
     .present_offset = offsetof(filter_logs_cfg_t, legacy.exclude_present),
     .help = "legacy form: log records that match are dropped"},
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
    {.key = "spans",
     .type = OM_F_SECTION,
     .offset = offsetof(proc_filter_cfg_t, spans),
     .fields = spans_fields,
     .help = "legacy form for spans: include / exclude by service, name, kind, attributes"},
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
    c->wire_ok = true;
    for (size_t i = 0; i < list->n; i++) {
        om_err_t cerr = {0};
        int rc = proc_filter_ottl_compile(ctx, list->items[i], &c->e[i], &cerr);
        c->n = i + 1;
        c->wire_ok = c->wire_ok && rc == 0 && proc_filter_ottl_wire_ok(c->e[i]);
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

/* otelcol's rule: one form per signal. */
static int check_forms(const proc_filter_cfg_t *cfg, om_err_t *err)
{
    struct {
        bool ottl;
        const filter_legacy_cfg_t *legacy;
        const char *at, *what;
    } sigs[] = {
        {cfg->traces.span.n > 0 || cfg->traces.spanevent.n > 0, &cfg->spans, "spans", "spans"},
        {cfg->metrics.metric.n > 0 || cfg->metrics.datapoint.n > 0, &cfg->metrics.legacy, "metrics",
         "metrics"},
        {cfg->logs.log_record.n > 0, &cfg->logs.legacy, "logs", "logs"},
    };
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        if (sigs[i].ottl && (sigs[i].legacy->include_present || sigs[i].legacy->exclude_present)) {
            om_err_at(err, sigs[i].at,
                      "cannot use ottl conditions and include/exclude for %s at the same time",
                      sigs[i].what);
            return OM_ECONFIG;
        }
    }
    return 0;
}

static int legacy_build(const proc_filter_cfg_t *cfg, filter_prog_t *prog, om_err_t *err)
{
    int rc = proc_filter_legacy_build(LEGACY_SPANS, &cfg->spans, "spans", &prog->spans, err);
    if (rc == 0) {
        rc = proc_filter_legacy_build(LEGACY_METRICS, &cfg->metrics.legacy, "metrics",
                                      &prog->metrics, err);
    }
    if (rc == 0) {
        rc = proc_filter_legacy_build(LEGACY_LOGS, &cfg->logs.legacy, "logs", &prog->logs, err);
    }
    return rc;
}

int proc_filter_prog_build(const proc_filter_cfg_t *cfg, filter_prog_t *prog, om_err_t *err)
{
    *prog = (filter_prog_t){0};
    int rc = check_forms(cfg, err);
    if (rc != 0) {
        return rc;
    }
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
    for (size_t i = 0; rc == 0 && i < sizeof parts / sizeof parts[0]; i++) {
        rc = conds_build(parts[i].c, parts[i].list, parts[i].ctx, parts[i].at, err);
    }
    if (rc == 0) {
        rc = legacy_build(cfg, prog, err);
    }
    if (rc != 0) {
        proc_filter_prog_free(prog);
    }
    return rc;
}

void proc_filter_prog_free(filter_prog_t *prog)
{
    proc_filter_legacy_free(prog->spans);
    proc_filter_legacy_free(prog->metrics);
    proc_filter_legacy_free(prog->logs);
    prog->spans = prog->metrics = prog->logs = NULL;
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
