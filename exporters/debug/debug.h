/* debug.h: private to exporters/debug. */
#ifndef EXP_DEBUG_H
#define EXP_DEBUG_H

#include "om.h"

enum { EXP_DEBUG_BASIC = 0, EXP_DEBUG_NORMAL = 1, EXP_DEBUG_DETAILED = 2 };

typedef struct exp_debug_cfg {
    int verbosity; /* EXP_DEBUG_* */
    int64_t sampling_initial;
    int64_t sampling_thereafter;
} exp_debug_cfg_t;

/* Where the text goes: an om_strbuf_t the formatters append to, and a function they call
 * between records so the caller can write out what has accumulated (keeping the buffer
 * small). flush may be NULL. */
typedef struct exp_debug_sink {
    om_strbuf_t *sb;
    void (*flush)(void *arg);
    void *arg;
} exp_debug_sink_t;

/* otelcol's "detailed" text (pdata otlptext) and "normal" text for the batch. */
void exp_debug_detailed(exp_debug_sink_t *s, const om_batch_t *b);
void exp_debug_normal(exp_debug_sink_t *s, const om_batch_t *b);

/* Go's formatting of a float64: 'v' as fmt's %v, 'j' as pcommon's Value.AsString (the JSON
 * form), 'f' as fmt's %f. Writes a NUL-terminated string into out (cap >= 32 is always
 * enough for 'v' and 'j'; 'f' may need up to 330). */
void exp_debug_fmt_double(char *out, size_t cap, double v, char style);

/* A pcommon timestamp as Go prints it: "2020-02-11 20:26:12.000000321 +0000 UTC". */
void exp_debug_fmt_time(char *out, size_t cap, uint64_t unix_nano);

#endif
