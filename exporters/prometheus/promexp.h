/* promexp.h: private to the prometheus (pull) exporter folder.
 *
 * Two parts:
 *   - promexp_state.c: the served state, on the loop: one series per label set, updated
 *     from each batch as otelcol-contrib's accumulator does (the latest point; delta sums and
 *     histograms accumulated into cumulative ones), expired after metric_expiration, and
 *     rendered into a scrape (text 0.0.4 or OpenMetrics) with the core's writer;
 *   - promexp.c: the config, the factory and lifecycle, the HTTP server route (the core's
 *     server), gzip on the worker pool for large scrapes.
 * Loop thread only, except the gzip job. */
#ifndef EXP_PROMEXP_H
#define EXP_PROMEXP_H

#include "om.h"

/* translation_strategy's choices; "" (unset) follows add_metric_suffixes. */
typedef enum {
    PROMEXP_TS_UNSET = 0,
    PROMEXP_TS_UNDERSCORE_WITH_SUFFIXES,
    PROMEXP_TS_UNDERSCORE_WITHOUT_SUFFIXES,
    PROMEXP_TS_NO_UTF8_WITH_SUFFIXES,
    PROMEXP_TS_NO_TRANSLATION,
} promexp_strategy_t;

typedef struct promexp_enabled {
    bool enabled;
} promexp_enabled_t;

typedef struct exp_promexp_cfg {
    om_http_server_cfg_t http; /* endpoint (required), tls, timeouts... squashed at the top */
    char *namespace_;
    om_strmap_t const_labels;
    bool send_timestamps;      /* false */
    int64_t metric_expiration; /* 5m */
    promexp_enabled_t r2t;     /* resource_to_telemetry_conversion */
    bool enable_open_metrics;  /* false */
    bool add_metric_suffixes;  /* true */
    int translation_strategy;  /* promexp_strategy_t */
} exp_promexp_cfg_t;

extern const om_field_t exp_promexp_fields[];

/* ------------------------------------------------------------------------------------------ */
/* State                                                                                      */

typedef struct promexp_state promexp_state_t;

typedef struct promexp_opts {
    const char *ns;
    bool suffixes;
    bool r2t;
    bool send_timestamps;
    uint64_t expiration_ms;
    const om_label_t *const_labels; /* sanitised names */
    size_t n_const_labels;
    const char *log_name;
} promexp_opts_t;

/* NULL when out of memory. o (and what it points to) must outlive the state. */
promexp_state_t *promexp_state_new(const promexp_opts_t *o);
void promexp_state_free(promexp_state_t *s);
/* Take in a decoded batch (read only) at now_ms (the loop's clock). Returns the number of
 * points taken, or OM_ENOMEM (what was taken before stays). */
int promexp_state_update(promexp_state_t *s, const om_batch_t *b, uint64_t now_ms);
/* Drop series (and resources) not updated since now_ms - expiration. Returns how many. */
size_t promexp_state_expire(promexp_state_t *s, uint64_t now_ms);
/* Append the scrape (after expiring) to out. */
void promexp_state_render(promexp_state_t *s, om_prom_format_t f, uint64_t now_ms,
                          om_strbuf_t *out);
/* Live series (target_info series included). */
size_t promexp_state_series(const promexp_state_t *s);

#endif
