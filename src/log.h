/* log.h: the collector's own log settings, service::telemetry::logs (core-internal).
 *
 * otelcol's keys: level, encoding (console, json), initial_fields, output_paths,
 * error_output_paths, and sampling, development, disable_caller, disable_stacktrace accepted
 * (otelmon logs few lines, without callers or stack traces, and does not sample them). */
#ifndef OM_LOG_H
#define OM_LOG_H

#include "om.h"

typedef enum {
    OM_LOG_CONSOLE = 0, /* "2026-11-24T06:40:01.123Z\tinfo\t[receiver/otlp]\tmessage" */
    OM_LOG_JSON = 1,    /* one JSON object a line, otelcol's field names */
} om_log_encoding_t;

typedef struct om_log_cfg {
    int level;                       /* index into the level choices (see log.c) */
    int encoding;                    /* om_log_encoding_t */
    om_strmap_t initial_fields;      /* added to every line */
    om_strlist_t output_paths;       /* "stderr", "stdout" or file paths; empty: stderr */
    om_strlist_t error_output_paths; /* accepted: otelmon has no logger-internal errors */
    struct {
        bool enabled;
        int64_t tick;
        int64_t initial, thereafter;
    } sampling;
} om_log_cfg_t;

extern const om_field_t om__log_fields[];

/* The level a config asks for. */
om_log_level_t om__log_cfg_level(const om_log_cfg_t *cfg);
/* Apply cfg to the process's logging: level, encoding, fields, outputs (files are opened for
 * appending now). Returns 0, or OM_EIO with the path that cannot be opened in err; the
 * previous settings stay then. Loop thread, before other threads log (start-up). */
int om__log_configure(const om_log_cfg_t *cfg, om_err_t *err);
/* Back to stderr, console, no fields; closes files opened by om__log_configure. */
void om__log_reset(void);

#endif
