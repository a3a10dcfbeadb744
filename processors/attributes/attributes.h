/* attributes.h: private to processors/attributes.
 *
 * The config is otelcol-contrib's attributesprocessor.Config: the action list
 * (../attraction) and include/exclude (filterconfig.MatchProperties), which decide per item
 * whether the actions apply to it. */
#ifndef PROC_ATTRIBUTES_H
#define PROC_ATTRIBUTES_H

#include "../attraction/attraction.h"
#include "om.h"

/* An attribute to match (filterconfig.Attribute): key present and, when value is set, equal
 * to it (strict) or matching it as a regexp. */
typedef struct proc_attributes_kv_cfg {
    char *key;
    om_anyvalue_t *value;
} proc_attributes_kv_cfg_t;

/* A library (instrumentation scope) to match: name, and version unless it is unset. */
typedef struct proc_attributes_lib_cfg {
    char *name;
    om_anyvalue_t *version; /* NULL: any version; else matched as a string */
} proc_attributes_lib_cfg_t;

typedef struct proc_attributes_sevnum_cfg {
    int64_t min;
    bool match_undefined;
} proc_attributes_sevnum_cfg_t;

typedef struct proc_attributes_regexp_cfg {
    bool cacheenabled;
    int64_t cachemaxnumentries;
} proc_attributes_regexp_cfg_t;

/* filterconfig.MatchProperties. */
typedef struct proc_attributes_props_cfg {
    char *match_type; /* "strict" or "regexp"; needed only by the string matchers */
    proc_attributes_regexp_cfg_t regexp;
    om_strlist_t services, span_names, span_kinds, log_bodies, log_severity_texts, metric_names;
    proc_attributes_sevnum_cfg_t log_severity_number;
    bool log_severity_number_present;
    om_seclist_t attributes, resources; /* proc_attributes_kv_cfg_t */
    om_seclist_t libraries;             /* proc_attributes_lib_cfg_t */
} proc_attributes_props_cfg_t;

typedef struct proc_attributes_cfg {
    proc_attributes_props_cfg_t include, exclude;
    bool include_present, exclude_present;
    om_seclist_t actions; /* proc_attraction_cfg_t */
} proc_attributes_cfg_t;

extern const om_field_t proc_attributes_props_fields[];

/* ---- matching (attributes_match.c) ------------------------------------------------------ */

typedef struct proc_attributes_props proc_attributes_props_t;

/* Compile include or exclude (at: "include"/"exclude") for the signals in sigs: the properties
 * must be valid for each of them, as otelcol checks them per signal. *out stays NULL when the
 * section is absent. Returns 0, OM_ECONFIG (om_err_at) or OM_ENOMEM. */
int proc_attributes_props_new(const proc_attributes_props_cfg_t *cfg, bool present, const char *at,
                              unsigned sigs, proc_attributes_props_t **out, om_err_t *err);
void proc_attributes_props_free(proc_attributes_props_t *m);
/* The properties' message for a signal they are not valid for, or NULL when valid. */
const char *proc_attributes_props_invalid_for(const proc_attributes_props_cfg_t *cfg,
                                              om_signal_t sig);

/* Whether the item the walk stands on (a span, a log record, or a data point's metric)
 * matches m. */
bool proc_attributes_props_match(proc_attributes_props_t *m, const om_item_t *it);
/* The include/exclude decision: true when the actions must not touch the item. */
bool proc_attributes_skip(proc_attributes_props_t *include, proc_attributes_props_t *exclude,
                          const om_item_t *it);

#endif
