/* filter.h: private to processors/filter.
 *
 * Three parts, each usable alone (the fuzz targets and tests drive them directly):
 * - regexes (filter_regex.c): RE2-compatible patterns compiled once with PCRE2, matched with
 *   limits so that no pattern can backtrack without bound;
 * - OTTL conditions (ottl_lex.c, ottl_parse.c, ottl_paths.c, ottl_value.c, ottl_eval.c): the
 *   subset of otelcol-contrib's OpenTelemetry Transformation Language that filter configs use,
 *   compiled once into a tree and evaluated against the item a walk stands on;
 * - the legacy include/exclude form (filter_legacy.c), compiled into matchers;
 * and the processor (filter_processor.c, filter_config.c) that walks batches with them.
 *
 * Everything here runs on the loop thread (the fuzz targets and tests on their only thread).
 * Compiled objects are immutable after compilation; evaluation state lives in an ottl_scratch_t
 * the caller owns (one per processor). */
#ifndef PROC_FILTER_H
#define PROC_FILTER_H

#include "om.h"

/* ------------------------------------------------------------------------------------------ */
/* Configuration (filter_config.c)                                                            */

typedef enum {
    FILTER_PROPAGATE, /* an evaluation error fails the batch (otelcol's default) */
    FILTER_IGNORE,    /* log it, take the condition as false, go on */
    FILTER_SILENT,    /* take the condition as false, go on */
} filter_error_mode_t;

typedef struct filter_traces_cfg {
    om_strlist_t span, spanevent;
} filter_traces_cfg_t;

/* The legacy form's include or exclude (otelcol's filterconfig.MatchProperties and its
 * metrics and logs variants); each signal's table uses the keys it has. */
typedef struct filter_match_cfg {
    char *match_type; /* "strict", "regexp" ("expr" for metrics, refused) */
    om_strlist_t services, span_names, span_kinds;
    om_strlist_t metric_names, expressions;
    om_strlist_t severity_texts, bodies;
    /* Lists of {key, value} maps ({name, version} for libraries), as written. */
    om_node_t *attributes, *resources, *libraries;
    om_node_t *resource_attributes, *record_attributes;
    struct {
        char *min;
        bool match_undefined;
    } severity_number;
    bool severity_number_present;
} filter_match_cfg_t;

typedef struct filter_legacy_cfg {
    filter_match_cfg_t include, exclude;
    bool include_present, exclude_present;
} filter_legacy_cfg_t;

typedef struct filter_metrics_cfg {
    om_strlist_t metric, datapoint;
    filter_legacy_cfg_t legacy; /* include, exclude */
} filter_metrics_cfg_t;

typedef struct filter_logs_cfg {
    om_strlist_t log_record;
    filter_legacy_cfg_t legacy; /* include, exclude */
} filter_logs_cfg_t;

/* otelcol-contrib's filterprocessor.Config. Owned by the core (field table). */
typedef struct proc_filter_cfg {
    int error_mode; /* filter_error_mode_t */
    filter_traces_cfg_t traces;
    filter_legacy_cfg_t spans; /* the legacy form of traces */
    filter_metrics_cfg_t metrics;
    filter_logs_cfg_t logs;
} proc_filter_cfg_t;

extern const om_field_t proc_filter_fields[];

typedef struct ottl_expr ottl_expr_t;
typedef struct ottl_scratch ottl_scratch_t;

/* A list of compiled OTTL conditions of one context (ORed). */
typedef struct filter_conds {
    ottl_expr_t **e;         /* owned */
    const char *const *text; /* the config's strings, for log lines */
    size_t n;
    bool wire_ok; /* every one can be evaluated on the wire (proc_filter_ottl_wire_ok) */
} filter_conds_t;

/* The legacy form compiled (filter_legacy.c). */
typedef struct filter_legacy filter_legacy_t;

typedef enum {
    LEGACY_SPANS,
    LEGACY_METRICS,
    LEGACY_LOGS,
} legacy_kind_t;

/* Compile the include and exclude of one signal (cfg must outlive the result); at names the
 * section in messages ("spans"). *out is NULL when neither is configured. Returns 0,
 * OM_ECONFIG with err naming the key (om_err_at), or OM_ENOMEM. */
int proc_filter_legacy_build(legacy_kind_t kind, const filter_legacy_cfg_t *cfg, const char *at,
                             filter_legacy_t **out, om_err_t *err);
void proc_filter_legacy_free(filter_legacy_t *l);
/* Whether the legacy form has rules at the resource level (metrics' resource_attributes) and
 * at the item level (spans, metric names, log records). */
bool proc_filter_legacy_has_resource_rule(const filter_legacy_t *l);
bool proc_filter_legacy_has_item_rule(const filter_legacy_t *l);
/* Whether the item (a span, a metric, a log record; or a resource entry for
 * proc_filter_legacy_skip_resource) is to be dropped: it does not match include, or matches
 * exclude. A regex that reached its limits counts as not matching; *limited is then set. */
bool proc_filter_legacy_skip(const filter_legacy_t *l, const om_item_t *it, ottl_scratch_t *s,
                             bool *limited);
bool proc_filter_legacy_skip_resource(const filter_legacy_t *l, const om_item_t *it,
                                      ottl_scratch_t *s, bool *limited);

/* Everything a config compiles to: what the processor runs. */
typedef struct filter_prog {
    filter_conds_t span, spanevent, metric, datapoint, log_record;
    filter_legacy_t *spans, *metrics, *logs; /* the legacy form, per signal; NULL: none */
} filter_prog_t;

/* Compile cfg (which must outlive prog). Returns 0, OM_ECONFIG with err naming the key
 * (om_err_at: "traces::span::2") and what is wrong, or OM_ENOMEM. On failure prog is empty. */
int proc_filter_prog_build(const proc_filter_cfg_t *cfg, filter_prog_t *prog, om_err_t *err);
void proc_filter_prog_free(filter_prog_t *prog);
/* The factory's config_validate: builds the program and frees it. */
int proc_filter_config_validate(const void *cfg, om_err_t *err);

/* ------------------------------------------------------------------------------------------ */
/* Regexes                                                                                    */

typedef struct filter_re filter_re_t;

/* The most backtracking steps one match may take (PCRE2's match limit), the deepest
 * backtracking (depth limit) and the heap it may use for that (KiB). A match that reaches them
 * stops with OM_ETOOBIG instead of running on. */
#define FILTER_RE_MATCH_LIMIT 1000000u
#define FILTER_RE_DEPTH_LIMIT 10000u
#define FILTER_RE_HEAP_LIMIT_KIB 8192u

/* Compile pattern (len bytes, RE2 syntax as Go's regexp reads it). Constructs RE2 refuses
 * (backreferences, lookaround, atomic groups, possessive quantifiers, recursion, conditionals,
 * escapes Go does not know, repeat counts above 1000) are refused here too, so a pattern valid
 * here is valid for otelcol. Returns 0, OM_EINVAL with a message in err (what is wrong and at
 * which byte), or OM_ENOMEM. */
int proc_filter_re_compile(const char *pattern, size_t len, filter_re_t **out, om_err_t *err);
/* Whether the pattern matches anywhere in s (n bytes; invalid UTF-8 never matches a character
 * but does not fail). Returns 1, 0, or OM_ETOOBIG when a limit stopped the match, OM_ENOMEM. */
int proc_filter_re_match(filter_re_t *re, const char *s, size_t n);
void proc_filter_re_free(filter_re_t *re);
/* The pattern as given (NUL-terminated). */
const char *proc_filter_re_pattern(const filter_re_t *re);

/* ------------------------------------------------------------------------------------------ */
/* Values: what an OTTL expression evaluates to, with otelcol's types.                       */

typedef enum {
    OV_NIL,
    OV_BOOL,
    OV_INT,
    OV_DOUBLE,
    OV_STR,
    OV_BYTES,
    OV_MAP,      /* an attribute list or a kvlist value (pcommon.Map) */
    OV_LIST,     /* an array value (pcommon.Slice), or a list literal's items */
    OV_TRACE_ID, /* pcommon.TraceID: 16 bytes */
    OV_SPAN_ID,  /* pcommon.SpanID: 8 bytes */
} ov_kind_t;

/* A value; pointers point into the batch, the compiled expression or the scratch, and are
 * valid until the scratch is reset. */
typedef struct ov {
    ov_kind_t kind;
    union {
        bool b;
        int64_t i;
        double d;
        struct {
            const char *p; /* OV_STR, OV_BYTES */
            size_t n;
        } s;
        struct {
            om_keyvalue_t *const *kv; /* OV_MAP */
            size_t n;
        } map;
        struct {
            om_anyvalue_t *const *v; /* OV_LIST: the values of an array in the data */
            size_t n;
        } list;
        uint8_t id[16]; /* OV_TRACE_ID (16), OV_SPAN_ID (first 8) */
    };
} ov_t;

/* Evaluation state: room for strings made while evaluating (Concat, conversions), freed in
 * one go at reset, and the message of the last evaluation error. */
#define OTTL_SCRATCH_MAX ((size_t)1 << 20)
typedef struct scratch_chunk scratch_chunk_t;
typedef struct ottl_scratch {
    scratch_chunk_t *chunks; /* owned */
    size_t used;             /* bytes handed out since the last reset */
    bool oom;                /* the last evaluation failed for lack of memory */
    char msg[192];           /* the last evaluation error */
} ottl_scratch_t;

/* n bytes valid until the next reset; NULL when out of memory (oom is then set) or past
 * OTTL_SCRATCH_MAX (msg says which). */
char *proc_filter_scratch_alloc(ottl_scratch_t *s, size_t n);
void proc_filter_scratch_reset(ottl_scratch_t *s);
void proc_filter_scratch_free(ottl_scratch_t *s);

typedef enum {
    OTTL_EQ,
    OTTL_NE,
    OTTL_LT,
    OTTL_LE,
    OTTL_GT,
    OTTL_GE,
} ottl_cmp_t;

/* The value an AnyValue reads as in OTTL (a string, int64, float64, bool, []byte, Map,
 * Slice; nil for an absent or empty value). */
ov_t proc_filter_ov_from_any(const om_anyvalue_t *v);
/* OTTL's comparison rules (pkg/ottl compare.go): nil equals only nil; ints and doubles compare
 * as numbers; strings and bytes bytewise; bools false < true; maps and lists only for
 * equality; IDs only with IDs of their kind; anything else is unequal, and only != holds. */
bool proc_filter_ov_compare(const ov_t *a, const ov_t *b, ottl_cmp_t op);
/* OTTL's StringLikeGetter: a string as is, bytes as lowercase hex, maps and lists as JSON,
 * numbers and bools as Go's JSON writes them. *is_nil for nil. Returns 0, or OM_EINVAL /
 * OM_ENOMEM with s->msg. */
int proc_filter_ov_string_like(const ov_t *v, ottl_scratch_t *s, const char **out, size_t *n,
                               bool *is_nil);
/* pcommon.Value.AsString() of an AnyValue (what the legacy form matches services and bodies
 * with): strings as is, ints and doubles as Go's strconv writes them, bytes as base64, maps and
 * lists as JSON, "" for an empty value. Returns 0, or OM_EINVAL / OM_ENOMEM with s->msg. */
int proc_filter_any_as_string(const om_anyvalue_t *v, ottl_scratch_t *s, const char **out,
                              size_t *n);
/* The value of key in an attribute list, or NULL. */
const om_anyvalue_t *proc_filter_kv_get(om_keyvalue_t *const *kv, size_t n, const char *key);

/* ------------------------------------------------------------------------------------------ */
/* OTTL conditions                                                                            */

/* The OTTL contexts filter uses, as its config keys name them. */
typedef enum {
    OTTL_CTX_SPAN,      /* traces::span */
    OTTL_CTX_SPANEVENT, /* traces::spanevent */
    OTTL_CTX_METRIC,    /* metrics::metric */
    OTTL_CTX_DATAPOINT, /* metrics::datapoint */
    OTTL_CTX_LOG,       /* logs::log_record */
} ottl_ctx_t;

/* The most nested parentheses, calls and operators one condition may have. */
#define OTTL_MAX_DEPTH 64
/* The longest condition accepted. */
#define OTTL_MAX_LEN 65536

/* Compile a condition of context ctx. Returns 0 with *out; OM_EINVAL with "column N: what is
 * wrong" in err (N: 1-based byte position in text) for a syntax error, an unknown path,
 * function or enum, arguments of the wrong kind or an invalid regex; OM_ENOMEM. */
int proc_filter_ottl_compile(ottl_ctx_t ctx, const char *text, ottl_expr_t **out, om_err_t *err);
void proc_filter_ottl_free(ottl_expr_t *e);
/* Evaluate e on the item a walk stands on (a walk of the context's level). Returns 1 (true),
 * 0 (false), OM_EINVAL when evaluation fails (s->msg says why: a function given a value it
 * cannot take, a regex match stopped by its limits...), or OM_ENOMEM. Resets s first. */
int proc_filter_ottl_eval(const ottl_expr_t *e, const om_item_t *it, ottl_scratch_t *s);
/* Whether e can be evaluated on wire items (proc_filter_ottl_eval_wire): span and log record
 * conditions whose paths the wire reader knows (ottl_wire.c), with at most one key. */
bool proc_filter_ottl_wire_ok(const ottl_expr_t *e);
/* The same evaluation on an item's wire bytes (a span of a traces batch, a log record of a
 * logs batch), without decoding: the same answers as proc_filter_ottl_eval on the decoded
 * item, or OM_ENOTSUP when the bytes hold what only decoding reads (a map or list value, a
 * field of an unexpected wire type); the caller then evaluates the decoded batch. */
int proc_filter_ottl_eval_wire(const ottl_expr_t *e, const om_wire_item_t *w, ottl_scratch_t *s);

/* ---- inside the OTTL compiler (ottl_lex.c, ottl_parse.c, ottl_paths.c, ottl_eval.c) ---- */

typedef enum {
    TK_END,
    TK_IDENT,  /* [A-Za-z][A-Za-z0-9_]*: paths, keywords, functions, enums */
    TK_STRING, /* "...", unescaped into the token's text */
    TK_INT,
    TK_FLOAT,
    TK_BYTES, /* 0x..., decoded */
    TK_OP,    /* == != < <= > >= */
    TK_MATH,  /* + - * / */
    TK_PUNCT, /* ( ) [ ] , . { } : = */
} tok_kind_t;

typedef struct tok {
    tok_kind_t kind;
    size_t pos; /* byte offset in the condition */
    size_t len; /* bytes in the condition */
    char *text; /* TK_STRING / TK_BYTES: the decoded value (owned by the token list) */
    size_t text_len;
    int64_t i;
    double d;
    int op; /* TK_OP: ottl_cmp_t; TK_MATH: the character; TK_PUNCT: the character */
} tok_t;

/* Split text into tokens (the last is TK_END). Returns 0, OM_EINVAL with "column N: ..." in
 * err, or OM_ENOMEM. */
int proc_filter_ottl_lex(const char *text, tok_t **toks, size_t *n, om_err_t *err);
void proc_filter_ottl_toks_free(tok_t *toks, size_t n);

/* Paths: what a path names in a context. */
typedef enum {
    P_NONE,
    /* the span (span and spanevent contexts) */
    P_SPAN_NAME,
    P_SPAN_KIND,
    P_SPAN_STATUS_CODE,
    P_SPAN_STATUS_MESSAGE,
    P_SPAN_ATTRS,
    P_SPAN_DROPPED_ATTRS,
    P_SPAN_TRACE_ID,
    P_SPAN_TRACE_ID_STR,
    P_SPAN_ID,
    P_SPAN_ID_STR,
    P_SPAN_PARENT_ID,
    P_SPAN_PARENT_ID_STR,
    P_SPAN_TRACE_STATE,
    P_SPAN_START,
    P_SPAN_END,
    P_SPAN_FLAGS,
    /* the span event */
    P_EVENT_NAME,
    P_EVENT_TIME,
    P_EVENT_ATTRS,
    P_EVENT_DROPPED_ATTRS,
    /* the metric (metric and datapoint contexts) */
    P_METRIC_NAME,
    P_METRIC_DESCRIPTION,
    P_METRIC_UNIT,
    P_METRIC_TYPE,
    P_METRIC_TEMPORALITY,
    P_METRIC_MONOTONIC,
    /* the data point */
    P_DP_ATTRS,
    P_DP_START,
    P_DP_TIME,
    P_DP_VALUE_DOUBLE,
    P_DP_VALUE_INT,
    P_DP_FLAGS,
    P_DP_COUNT,
    P_DP_SUM,
    /* the log record */
    P_LOG_BODY,
    P_LOG_ATTRS,
    P_LOG_SEVERITY_NUMBER,
    P_LOG_SEVERITY_TEXT,
    P_LOG_TIME,
    P_LOG_OBSERVED_TIME,
    P_LOG_TRACE_ID,
    P_LOG_TRACE_ID_STR,
    P_LOG_SPAN_ID,
    P_LOG_SPAN_ID_STR,
    P_LOG_FLAGS,
    P_LOG_DROPPED_ATTRS,
    P_LOG_EVENT_NAME,
    /* every context */
    P_RESOURCE_ATTRS,
    P_RESOURCE_DROPPED_ATTRS,
    P_SCOPE_NAME,
    P_SCOPE_VERSION,
    P_SCOPE_ATTRS,
    P_SCOPE_DROPPED_ATTRS,
} ottl_path_id_t;

/* The path whose dotted name (without keys) is name in ctx, or P_NONE. Whether it takes
 * [keys] comes from proc_filter_ottl_path_indexable. */
ottl_path_id_t proc_filter_ottl_path_find(ottl_ctx_t ctx, const char *name);
bool proc_filter_ottl_path_indexable(ottl_path_id_t p);
/* The value of path p (before its keys) on the item; strings made for it (ids as hex) go to
 * s. Returns 0, or OM_ENOMEM with s->msg. */
int proc_filter_ottl_path_get(ottl_path_id_t p, const om_item_t *it, ottl_scratch_t *s, ov_t *out);
/* The enum symbol's value in ctx; false when unknown. */
bool proc_filter_ottl_enum_find(ottl_ctx_t ctx, const char *name, int64_t *value);
/* "span", "spanevent", "metric", "datapoint", "log". */
const char *proc_filter_ottl_ctx_name(ottl_ctx_t ctx);

/* The compiled tree (ottl_parse.c builds it, ottl_eval.c walks it). */
typedef enum {
    N_OR,   /* kids: terms; true when one is */
    N_AND,  /* kids: values; true when all are */
    N_NOT,  /* kids[0] */
    N_CMP,  /* kids[0] op kids[1] */
    N_LIT,  /* lit */
    N_PATH, /* path, then keys */
    N_CALL, /* fn(kids...) */
    N_MATH, /* kids[0] op kids[1], op one of + - * / */
    N_LIST, /* [kids...]: only as Concat's first argument */
} ottl_node_kind_t;

typedef enum {
    F_IS_MATCH,
    F_IS_STRING,
    F_IS_INT,
    F_IS_BOOL,
    F_IS_DOUBLE,
    F_IS_MAP,
    F_IS_LIST,
    F_LEN,
    F_INT,
    F_DOUBLE,
    F_STRING,
    F_CONCAT,
    F_TRACE_ID,
    F_SPAN_ID,
    F_IS_ROOT_SPAN,
    F_HAS_ATTR_KEY_ON_DATAPOINT,
    F_HAS_ATTR_ON_DATAPOINT,
} ottl_fn_t;

typedef struct ottl_key {
    bool is_int;
    int64_t i;
    char *s; /* owned */
} ottl_key_t;

typedef struct ottl_node ottl_node_t;
struct ottl_node {
    ottl_node_kind_t kind;
    size_t pos; /* byte offset in the condition, for messages */
    int op;     /* N_CMP: ottl_cmp_t; N_MATH: '+', '-', '*', '/' */
    ottl_node_t **kids;
    size_t n_kids;
    ov_t lit;      /* N_LIT; strings and bytes point into lit_mem */
    char *lit_mem; /* owned */
    ottl_path_id_t path;
    ottl_key_t *keys;
    size_t n_keys;
    ottl_fn_t fn;
    filter_re_t *re; /* F_IS_MATCH: the compiled pattern */
};

struct ottl_expr {
    ottl_ctx_t ctx;
    ottl_node_t *root;
    bool wire_ok; /* see proc_filter_ottl_wire_ok */
};

/* What an expression is evaluated on: a decoded item, or an item's wire bytes. */
typedef struct ottl_item {
    const om_item_t *item;
    const om_wire_item_t *wire;
} ottl_item_t;

/* The wire reader (ottl_wire.c): whether path p (with n_keys keys) can be read from the wire
 * in ctx, and its value there (key: its one key, or NULL). Returns 0, OM_ENOTSUP (decode
 * instead) or OM_ENOMEM. */
bool proc_filter_ottl_wire_path_ok(ottl_ctx_t ctx, ottl_path_id_t p, size_t n_keys);
int proc_filter_ottl_wire_path(ottl_path_id_t p, const ottl_key_t *key, const om_wire_item_t *w,
                               ottl_scratch_t *s, ov_t *out);

#endif
