/* filter_legacy.c: the filter processor's older include/exclude form, as otelcol-contrib's
 * internal/filter packages (filterconfig, filterset, filtermatcher, filterspan, filterlog,
 * filtermetric) evaluate it:
 * - An item is dropped when include is set and it does not match include, or exclude is set
 *   and it matches exclude (include is checked first).
 * - Within include or exclude, every property that is given must match (AND); within a
 *   property's list, one entry must match (services, span_names, span_kinds, metric_names,
 *   severity_texts, bodies), except attributes, resources / resource_attributes,
 *   record_attributes and libraries, whose entries must all match.
 * - match_type strict compares strings exactly; regexp matches RE2 patterns anywhere in the
 *   string (Go's MatchString, unanchored). Attribute values under strict are typed as YAML
 *   reads them (value: 500 is an int and does not match the string "500"); under regexp they
 *   must be strings, and the attribute's value is matched as Go writes it (ints and doubles in
 *   decimal, bools as true/false; other types never match). A {key} without value matches
 *   any value of that key.
 * - services matches the resource's service.name as a string ("<nil-service-name>" when
 *   absent); span_kinds the names SPAN_KIND_SERVER...; bodies the body as a string;
 *   severity_number.min the records at or above it (records without a severity number match
 *   only with match_undefined).
 * - Metrics: resource_attributes decides per resource entry, metric_names per metric; an
 *   include or exclude without metric_names has no metric rule, one without
 *   resource_attributes no resource rule (as otelcol builds them separately). match_type expr
 *   is not supported. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "filter.h"

typedef enum { MT_NONE, MT_STRICT, MT_REGEXP } match_type_t;

/* A list of strings or patterns; matches when one does. */
typedef struct strset {
    const char *const *strs; /* the config's strings */
    filter_re_t **re;        /* regexp: compiled, n of them */
    size_t n;
} strset_t;

/* One {key, value}: value_kind OV_NIL means any value. */
typedef struct attr_rule {
    const char *key;
    ov_kind_t value_kind; /* OV_NIL, OV_STR, OV_INT, OV_DOUBLE, OV_BOOL */
    const char *str;
    int64_t i;
    double d;
    bool b;
    filter_re_t *re; /* regexp */
} attr_rule_t;

typedef struct attr_rules {
    attr_rule_t *r;
    size_t n;
} attr_rules_t;

typedef struct lib_rule {
    const char *name;              /* the config's */
    const char *version;           /* NULL: any version */
    filter_re_t *name_re, *ver_re; /* regexp */
} lib_rule_t;

typedef struct props {
    match_type_t type;
    strset_t services, span_names, span_kinds, metric_names, severity_texts, bodies;
    attr_rules_t attributes, resources;
    lib_rule_t *libs;
    size_t n_libs;
    bool severity;
    int severity_min;
    bool severity_undefined;
} props_t;

struct filter_legacy {
    legacy_kind_t kind;
    props_t *include, *exclude;
};

/* ---- building ----------------------------------------------------------------------------- */

typedef struct builder {
    legacy_kind_t kind;
    char at[96]; /* "spans::include" */
    om_err_t *err;
} builder_t;

static int config_error(builder_t *b, const char *key, const char *fmt, ...) OM_PRINTF(3, 4);

static int config_error(builder_t *b, const char *key, const char *fmt, ...)
{
    char msg[224], path[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(path, sizeof path, "%s%s%s", b->at, key[0] != '\0' ? "::" : "", key);
    om_err_at(b->err, path, "%s", msg);
    return OM_ECONFIG;
}

static int no_memory(builder_t *b)
{
    om_err_set(b->err, OM_ENOMEM, "out of memory");
    return OM_ENOMEM;
}

/* Compiles pattern for key (the config key of the list, with the item index). */
static int compile_re(builder_t *b, const char *key, const char *pattern, filter_re_t **out)
{
    om_err_t rerr = {0};
    int rc = proc_filter_re_compile(pattern, strlen(pattern), out, &rerr);
    if (rc == OM_ENOMEM) {
        return no_memory(b);
    }
    return rc == 0 ? 0 : config_error(b, key, "%s", rerr.msg);
}

static int strset_build(builder_t *b, match_type_t type, const om_strlist_t *l, const char *key,
                        strset_t *s)
{
    s->strs = (const char *const *)l->items;
    s->n = 0;
    if (type != MT_REGEXP || l->n == 0) {
        s->n = l->n;
        return 0;
    }
    s->re = om_calloc(l->n, sizeof *s->re);
    if (s->re == NULL) {
        return no_memory(b);
    }
    for (size_t i = 0; i < l->n; i++) {
        char k[64];
        snprintf(k, sizeof k, "%s::%zu", key, i);
        int rc = compile_re(b, k, l->items[i], &s->re[s->n]);
        if (rc != 0) {
            return rc;
        }
        s->n++;
    }
    return 0;
}

static void strset_free(strset_t *s)
{
    for (size_t i = 0; s->re != NULL && i < s->n; i++) {
        proc_filter_re_free(s->re[i]);
    }
    om_free(s->re);
}

/* The value under a key of an item map, matching the key in any case (mapstructure does). */
static const om_node_t *item_get(const om_node_t *map, const char *key)
{
    for (size_t i = 0; map->kind == OM_NODE_MAP && i < map->n; i++) {
        if (map->keys[i]->str != NULL && strcasecmp(map->keys[i]->str, key) == 0) {
            return map->values[i];
        }
    }
    return NULL;
}

static bool item_keys_known(const om_node_t *map, const char *a, const char *b2)
{
    for (size_t i = 0; i < map->n; i++) {
        const char *k = map->keys[i]->str != NULL ? map->keys[i]->str : "";
        if (strcasecmp(k, a) != 0 && strcasecmp(k, b2) != 0) {
            return false;
        }
    }
    return true;
}

static bool all_digits(const char *s, const char *set)
{
    if (*s == '\0') {
        return false;
    }
    for (; *s != '\0'; s++) {
        if (strchr(set, *s) == NULL) {
            return false;
        }
    }
    return true;
}

/* A plain YAML scalar as yaml.v3 decodes it into an interface: bool, int, float, or string
 * (null is handled by the caller). */
static void type_scalar(const char *s, attr_rule_t *r)
{
    static const char *const trues[] = {"true", "True", "TRUE"};
    static const char *const falses[] = {"false", "False", "FALSE"};
    for (int i = 0; i < 3; i++) {
        if (strcmp(s, trues[i]) == 0 || strcmp(s, falses[i]) == 0) {
            r->value_kind = OV_BOOL;
            r->b = strcmp(s, trues[i]) == 0;
            return;
        }
    }
    const char *digits = s + (s[0] == '-' || s[0] == '+');
    char *end = NULL;
    if (all_digits(digits, "0123456789") ||
        (strncmp(digits, "0x", 2) == 0 && all_digits(digits + 2, "0123456789abcdefABCDEF")) ||
        (strncmp(digits, "0o", 2) == 0 && all_digits(digits + 2, "01234567"))) {
        int base = strncmp(digits, "0x", 2) == 0 ? 16 : strncmp(digits, "0o", 2) == 0 ? 8 : 10;
        const char *from = base == 10 ? s : digits + 2;
        long long v = strtoll(from, &end, base);
        if (end != NULL && *end == '\0') {
            r->value_kind = OV_INT;
            r->i = (base != 10 && s[0] == '-') ? -v : v;
            return;
        }
    }
    static const char *const specials[] = {".inf", "+.inf", "-.inf", ".nan", ".Inf",  "-.Inf",
                                           ".NaN", ".INF",  "-.INF", ".NAN", "+.Inf", "+.INF"};
    for (size_t i = 0; i < sizeof specials / sizeof specials[0]; i++) {
        if (strcmp(s, specials[i]) == 0) {
            r->value_kind = OV_DOUBLE;
            r->d = strstr(s, "nan") || strstr(s, "NaN") || strstr(s, "NAN") ? NAN
                   : s[0] == '-'                                            ? -INFINITY
                                                                            : INFINITY;
            return;
        }
    }
    bool numeric = strpbrk(s, "0123456789") != NULL && strspn(s, "+-0123456789.eE") == strlen(s);
    double d = numeric ? strtod(s, &end) : 0;
    if (numeric && end != NULL && *end == '\0') {
        r->value_kind = OV_DOUBLE;
        r->d = d;
        return;
    }
    r->value_kind = OV_STR;
    r->str = s;
}

static const char *kind_word(ov_kind_t k)
{
    switch (k) {
    case OV_INT:
        return "Int";
    case OV_DOUBLE:
        return "Double";
    case OV_BOOL:
        return "Bool";
    default:
        return "Str";
    }
}

static int attr_build(builder_t *b, match_type_t type, const om_node_t *item, const char *key,
                      attr_rule_t *r)
{
    if (item->kind != OM_NODE_MAP || !item_keys_known(item, "key", "value")) {
        return config_error(b, key, "expected a map with the keys key and value");
    }
    const om_node_t *k = item_get(item, "key");
    const om_node_t *v = item_get(item, "value");
    if (k == NULL || k->kind != OM_NODE_SCALAR || k->str[0] == '\0') {
        return config_error(b, key, "can't have empty key in the list of attributes");
    }
    r->key = k->str;
    r->value_kind = OV_NIL;
    if (v == NULL || v->kind == OM_NODE_NULL) {
        return 0;
    }
    if (v->kind != OM_NODE_SCALAR) {
        return config_error(b, key, "value: a map or a list is not supported by otelmon here");
    }
    if (v->quoted) {
        r->value_kind = OV_STR;
        r->str = v->str;
    } else if (strcmp(v->str, "~") == 0 || strcasecmp(v->str, "null") == 0 || v->str[0] == '\0') {
        return 0;
    } else {
        type_scalar(v->str, r);
    }
    if (type == MT_NONE) {
        return config_error(b, "match_type",
                            "unrecognized match_type: '', valid types are: [regexp strict]");
    }
    if (type == MT_REGEXP) {
        if (r->value_kind != OV_STR) {
            return config_error(b, key,
                                "match_type=regexp for \"%s\" only supports Str, but found %s",
                                r->key, kind_word(r->value_kind));
        }
        char vk[96];
        snprintf(vk, sizeof vk, "%s::value", key);
        return compile_re(b, vk, r->str, &r->re);
    }
    return 0;
}

static int attrs_build(builder_t *b, match_type_t type, const om_node_t *list, const char *key,
                       attr_rules_t *out)
{
    if (list == NULL) {
        return 0;
    }
    if (list->kind != OM_NODE_SEQ) {
        return config_error(b, key, "expected a list of {key, value}");
    }
    out->r = om_calloc(list->n > 0 ? list->n : 1, sizeof *out->r);
    if (out->r == NULL) {
        return no_memory(b);
    }
    for (size_t i = 0; i < list->n; i++) {
        char k[64];
        snprintf(k, sizeof k, "%s::%zu", key, i);
        int rc = attr_build(b, type, list->values[i], k, &out->r[i]);
        out->n = i + 1;
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

static void attrs_free(attr_rules_t *a)
{
    for (size_t i = 0; i < a->n; i++) {
        proc_filter_re_free(a->r[i].re);
    }
    om_free(a->r);
}

static int lib_build(builder_t *b, match_type_t type, const om_node_t *item, const char *key,
                     lib_rule_t *l)
{
    if (item->kind != OM_NODE_MAP || !item_keys_known(item, "name", "version")) {
        return config_error(b, key, "expected a map with the keys name and version");
    }
    const om_node_t *name = item_get(item, "name");
    const om_node_t *version = item_get(item, "version");
    l->name = name != NULL && name->kind == OM_NODE_SCALAR ? name->str : "";
    l->version = version != NULL && version->kind == OM_NODE_SCALAR ? version->str : NULL;
    if (type != MT_REGEXP) {
        return 0;
    }
    char k[96];
    snprintf(k, sizeof k, "%s::name", key);
    int rc = compile_re(b, k, l->name, &l->name_re);
    if (rc == 0 && l->version != NULL) {
        snprintf(k, sizeof k, "%s::version", key);
        rc = compile_re(b, k, l->version, &l->ver_re);
    }
    return rc;
}

static int libs_build(builder_t *b, match_type_t type, const om_node_t *list, props_t *p)
{
    if (list == NULL) {
        return 0;
    }
    if (list->kind != OM_NODE_SEQ) {
        return config_error(b, "libraries", "expected a list of {name, version}");
    }
    p->libs = om_calloc(list->n > 0 ? list->n : 1, sizeof *p->libs);
    if (p->libs == NULL) {
        return no_memory(b);
    }
    for (size_t i = 0; i < list->n; i++) {
        char k[64];
        snprintf(k, sizeof k, "libraries::%zu", i);
        int rc = lib_build(b, type, list->values[i], k, &p->libs[i]);
        p->n_libs = i + 1;
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

static void props_free(props_t *p)
{
    if (p == NULL) {
        return;
    }
    strset_t *sets[] = {&p->services,     &p->span_names,     &p->span_kinds,
                        &p->metric_names, &p->severity_texts, &p->bodies};
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++) {
        strset_free(sets[i]);
    }
    attrs_free(&p->attributes);
    attrs_free(&p->resources);
    for (size_t i = 0; i < p->n_libs; i++) {
        proc_filter_re_free(p->libs[i].name_re);
        proc_filter_re_free(p->libs[i].ver_re);
    }
    om_free(p->libs);
    om_free(p);
}

/* otelcol's severity names and numbers ("INFO", "info2", "9"), as plog.SeverityNumber. */
static bool severity_of(const char *s, int *out)
{
    static const char *const levels[] = {"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"};
    char *end = NULL;
    long n = strtol(s, &end, 10);
    if (s[0] >= '1' && s[0] <= '9' && *end == '\0' && n >= 1 && n <= 24) {
        *out = (int)n;
        return true;
    }
    if (s[0] == '\0') {
        *out = 0;
        return true;
    }
    for (int i = 0; i < 6; i++) {
        size_t l = strlen(levels[i]);
        if (strncasecmp(s, levels[i], l) != 0) {
            continue;
        }
        if (s[l] == '\0') {
            *out = i * 4 + 1;
            return true;
        }
        if (s[l] >= '2' && s[l] <= '4' && s[l + 1] == '\0') {
            *out = i * 4 + 1 + (s[l] - '1');
            return true;
        }
    }
    return false;
}

static const char *const span_kind_names[] = {
    "SPAN_KIND_UNSPECIFIED", "SPAN_KIND_INTERNAL", "SPAN_KIND_SERVER",
    "SPAN_KIND_CLIENT",      "SPAN_KIND_PRODUCER", "SPAN_KIND_CONSUMER",
};

/* otelcol's ValidateForSpans. */
static int check_spans(builder_t *b, const filter_match_cfg_t *m, match_type_t type)
{
    if (m->services.n == 0 && m->span_names.n == 0 && m->attributes == NULL &&
        m->libraries == NULL && m->resources == NULL && m->span_kinds.n == 0) {
        return config_error(b, "",
                            "at least one of \"attributes\", \"libraries\",  or "
                            "\"resources\" field must be specified");
    }
    for (size_t i = 0; type == MT_STRICT && i < m->span_kinds.n; i++) {
        bool known = false;
        for (size_t k = 1; k < 6; k++) {
            known = known || strcmp(m->span_kinds.items[i], span_kind_names[k]) == 0;
        }
        if (!known) {
            char key[48];
            snprintf(key, sizeof key, "span_kinds::%zu", i);
            return config_error(b, key,
                                "span_kinds string must match one of the standard span kinds "
                                "when match_type=strict: [SPAN_KIND_CLIENT SPAN_KIND_CONSUMER "
                                "SPAN_KIND_INTERNAL SPAN_KIND_PRODUCER SPAN_KIND_SERVER]");
        }
    }
    return 0;
}

static int match_type_of(builder_t *b, const filter_match_cfg_t *m, bool needed, match_type_t *t)
{
    const char *mt = m->match_type != NULL ? m->match_type : "";
    *t = strcmp(mt, "strict") == 0 ? MT_STRICT : strcmp(mt, "regexp") == 0 ? MT_REGEXP : MT_NONE;
    if (b->kind == LEGACY_METRICS && strcmp(mt, "expr") == 0) {
        return config_error(b, "match_type",
                            "expr is not supported by otelmon: write the expressions as OTTL "
                            "conditions (metrics::metric, metrics::datapoint)");
    }
    if (*t == MT_NONE && needed) {
        return config_error(b, "match_type",
                            "unrecognized match_type: '%.64s', valid types are: [regexp strict]",
                            mt);
    }
    return 0;
}

/* Whether the properties ask for anything (an empty include or exclude of logs is ignored,
 * as otelcol's isEmpty). */
static bool has_strings_or_values(legacy_kind_t kind, const filter_match_cfg_t *m)
{
    switch (kind) {
    case LEGACY_SPANS:
        return true; /* checked by check_spans */
    case LEGACY_METRICS:
        return m->metric_names.n > 0 || m->resource_attributes != NULL || m->expressions.n > 0;
    default:
        return m->resource_attributes != NULL || m->record_attributes != NULL ||
               m->severity_texts.n > 0 || m->bodies.n > 0 || m->severity_number_present;
    }
}

static int props_fill(builder_t *b, const filter_match_cfg_t *m, props_t *p)
{
    match_type_t t = MT_NONE;
    /* Attribute rules with a value need it too (attr_build says so). */
    bool needs_type = m->services.n || m->span_names.n || m->span_kinds.n || m->metric_names.n ||
                      m->severity_texts.n || m->bodies.n || m->libraries != NULL;
    int rc = match_type_of(b, m, needs_type, &t);
    if (rc == 0 && b->kind == LEGACY_SPANS) {
        rc = check_spans(b, m, t);
    }
    p->type = t;
    struct {
        const om_strlist_t *l;
        strset_t *s;
        const char *key;
    } lists[] = {
        {&m->services, &p->services, "services"},
        {&m->span_names, &p->span_names, "span_names"},
        {&m->span_kinds, &p->span_kinds, "span_kinds"},
        {&m->metric_names, &p->metric_names, "metric_names"},
        {&m->severity_texts, &p->severity_texts, "severity_texts"},
        {&m->bodies, &p->bodies, "bodies"},
    };
    for (size_t i = 0; rc == 0 && i < sizeof lists / sizeof lists[0]; i++) {
        rc = strset_build(b, t, lists[i].l, lists[i].key, lists[i].s);
    }
    if (rc == 0) {
        rc = attrs_build(b, t, b->kind == LEGACY_LOGS ? m->record_attributes : m->attributes,
                         b->kind == LEGACY_LOGS ? "record_attributes" : "attributes",
                         &p->attributes);
    }
    if (rc == 0) {
        rc = attrs_build(b, t, b->kind == LEGACY_SPANS ? m->resources : m->resource_attributes,
                         b->kind == LEGACY_SPANS ? "resources" : "resource_attributes",
                         &p->resources);
    }
    if (rc == 0) {
        rc = libs_build(b, t, m->libraries, p);
    }
    if (rc == 0 && m->severity_number_present) {
        const char *min = m->severity_number.min != NULL ? m->severity_number.min : "";
        p->severity = true;
        p->severity_undefined = m->severity_number.match_undefined;
        if (!severity_of(min, &p->severity_min)) {
            rc = config_error(b, "severity_number::min", "'%.64s' is not a valid severity", min);
        }
    }
    return rc;
}

static int props_build(builder_t *b, const filter_match_cfg_t *m, const char *at, props_t **out)
{
    *out = NULL;
    snprintf(b->at, sizeof b->at, "%s", at);
    if (!has_strings_or_values(b->kind, m)) {
        return 0;
    }
    props_t *p = om_calloc(1, sizeof *p);
    if (p == NULL) {
        return no_memory(b);
    }
    int rc = props_fill(b, m, p);
    if (rc != 0) {
        props_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

int proc_filter_legacy_build(legacy_kind_t kind, const filter_legacy_cfg_t *cfg, const char *at,
                             filter_legacy_t **out, om_err_t *err)
{
    *out = NULL;
    if (!cfg->include_present && !cfg->exclude_present) {
        return 0;
    }
    filter_legacy_t *l = om_calloc(1, sizeof *l);
    if (l == NULL) {
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    l->kind = kind;
    builder_t b = {.kind = kind, .err = err};
    char path[64];
    int rc = 0;
    if (cfg->include_present) {
        snprintf(path, sizeof path, "%s::include", at);
        rc = props_build(&b, &cfg->include, path, &l->include);
    }
    if (rc == 0 && cfg->exclude_present) {
        snprintf(path, sizeof path, "%s::exclude", at);
        rc = props_build(&b, &cfg->exclude, path, &l->exclude);
    }
    if (rc != 0 || (l->include == NULL && l->exclude == NULL)) {
        proc_filter_legacy_free(l);
        return rc;
    }
    *out = l;
    return 0;
}

void proc_filter_legacy_free(filter_legacy_t *l)
{
    if (l == NULL) {
        return;
    }
    props_free(l->include);
    props_free(l->exclude);
    om_free(l);
}

/* ---- matching ----------------------------------------------------------------------------- */

typedef struct mctx {
    ottl_scratch_t *s;
    bool *limited;
} mctx_t;

/* One pattern or string against s: 1 or 0 (a regex stopped by its limits is 0). */
static bool one_matches(const mctx_t *c, match_type_t t, const char *want, filter_re_t *re,
                        const char *s, size_t n)
{
    if (t != MT_REGEXP) {
        return strlen(want) == n && memcmp(want, s, n) == 0;
    }
    int rc = proc_filter_re_match(re, s, n);
    if (rc < 0) {
        *c->limited = true;
    }
    return rc == 1;
}

static bool set_matches(const mctx_t *c, match_type_t t, const strset_t *set, const char *s,
                        size_t n)
{
    for (size_t i = 0; i < set->n; i++) {
        if (one_matches(c, t, set->strs[i], set->re != NULL ? set->re[i] : NULL, s, n)) {
            return true;
        }
    }
    return false;
}

static bool set_matches_str(const mctx_t *c, match_type_t t, const strset_t *set, const char *s)
{
    s = s != NULL ? s : "";
    return set_matches(c, t, set, s, strlen(s));
}

/* An attribute's value against a strict typed value. */
static bool value_equals(const attr_rule_t *r, const ov_t *v)
{
    if (v->kind != r->value_kind) {
        return false;
    }
    switch (v->kind) {
    case OV_STR:
        return strlen(r->str) == v->s.n && memcmp(r->str, v->s.p, v->s.n) == 0;
    case OV_INT:
        return v->i == r->i;
    case OV_DOUBLE:
        return v->d == r->d;
    default:
        return v->b == r->b;
    }
}

/* Every rule holds on the attribute list (an empty rule list always holds; a list with rules
 * and no attributes never does). */
static bool attrs_match(const mctx_t *c, match_type_t t, const attr_rules_t *rules,
                        om_keyvalue_t *const *kv, size_t n)
{
    for (size_t i = 0; i < rules->n; i++) {
        const attr_rule_t *r = &rules->r[i];
        const om_anyvalue_t *a = proc_filter_kv_get(kv, n, r->key);
        if (a == NULL) {
            return false;
        }
        if (r->value_kind == OV_NIL) {
            continue;
        }
        ov_t v = proc_filter_ov_from_any(a);
        if (t != MT_REGEXP) {
            if (!value_equals(r, &v)) {
                return false;
            }
            continue;
        }
        /* regexp: strings, bools, doubles and ints as Go writes them; nothing else matches. */
        if (v.kind != OV_STR && v.kind != OV_BOOL && v.kind != OV_DOUBLE && v.kind != OV_INT) {
            return false;
        }
        const char *str = NULL;
        size_t len = 0;
        if (proc_filter_any_as_string(a, c->s, &str, &len) != 0 ||
            !one_matches(c, t, r->str, r->re, str, len)) {
            return false;
        }
    }
    return true;
}

static bool libs_match(const mctx_t *c, const props_t *p, const om_scope_t *sc)
{
    const char *name = sc != NULL && sc->name != NULL ? sc->name : "";
    const char *version = sc != NULL && sc->version != NULL ? sc->version : "";
    for (size_t i = 0; i < p->n_libs; i++) {
        const lib_rule_t *l = &p->libs[i];
        if (!one_matches(c, p->type, l->name, l->name_re, name, strlen(name))) {
            return false;
        }
        if (l->version != NULL &&
            !one_matches(c, p->type, l->version, l->ver_re, version, strlen(version))) {
            return false;
        }
    }
    return true;
}

static om_keyvalue_t *const *res_attrs(const om_item_t *it, size_t *n)
{
    *n = it->resource != NULL ? it->resource->n_attributes : 0;
    return it->resource != NULL ? it->resource->attributes : NULL;
}

/* filtermatcher.PropertiesMatcher.Match: libraries, resource attributes, item attributes. */
static bool common_match(const mctx_t *c, const props_t *p, const om_item_t *it,
                         om_keyvalue_t *const *kv, size_t n)
{
    size_t rn = 0;
    om_keyvalue_t *const *rkv = res_attrs(it, &rn);
    return libs_match(c, p, it->scope) && attrs_match(c, p->type, &p->resources, rkv, rn) &&
           attrs_match(c, p->type, &p->attributes, kv, n);
}

static bool span_match(const mctx_t *c, const props_t *p, const om_item_t *it)
{
    const om_span_t *sp = it->span;
    if (p->services.n > 0) {
        size_t rn = 0;
        om_keyvalue_t *const *rkv = res_attrs(it, &rn);
        const om_anyvalue_t *svc = proc_filter_kv_get(rkv, rn, "service.name");
        const char *name = "<nil-service-name>";
        size_t len = strlen(name);
        if (svc != NULL && proc_filter_any_as_string(svc, c->s, &name, &len) != 0) {
            return false;
        }
        if (!set_matches(c, p->type, &p->services, name, len)) {
            return false;
        }
    }
    if (p->span_names.n > 0 && !set_matches_str(c, p->type, &p->span_names, sp->name)) {
        return false;
    }
    if (p->span_kinds.n > 0) {
        const char *kind = (unsigned)sp->kind < 6 ? span_kind_names[sp->kind] : "";
        if (!set_matches_str(c, p->type, &p->span_kinds, kind)) {
            return false;
        }
    }
    return common_match(c, p, it, sp->attributes, sp->n_attributes);
}

static bool log_match(const mctx_t *c, const props_t *p, const om_item_t *it)
{
    const om_log_record_t *lr = it->log;
    if (p->bodies.n > 0) {
        const char *body = "";
        size_t len = 0;
        if (proc_filter_any_as_string(lr->body, c->s, &body, &len) != 0 ||
            !set_matches(c, p->type, &p->bodies, body, len)) {
            return false;
        }
    }
    if (p->severity_texts.n > 0 &&
        !set_matches_str(c, p->type, &p->severity_texts, lr->severity_text)) {
        return false;
    }
    if (p->severity) {
        bool ok = lr->severity_number == 0 ? p->severity_undefined
                                           : (int)lr->severity_number >= p->severity_min;
        if (!ok) {
            return false;
        }
    }
    /* Logs have no libraries key; resources are resource_attributes. */
    return common_match(c, p, it, lr->attributes, lr->n_attributes);
}

/* Metrics: the name rule (only when metric_names are given). */
static bool metric_match(const mctx_t *c, const props_t *p, const om_item_t *it)
{
    return set_matches_str(c, p->type, &p->metric_names, it->metric->name);
}

static bool item_match(const mctx_t *c, legacy_kind_t kind, const props_t *p, const om_item_t *it)
{
    switch (kind) {
    case LEGACY_SPANS:
        return span_match(c, p, it);
    case LEGACY_METRICS:
        return metric_match(c, p, it);
    default:
        return log_match(c, p, it);
    }
}

/* Metrics have a name rule only for properties with metric_names, a resource rule only for
 * those with resource_attributes. */
static bool has_item_rule(legacy_kind_t kind, const props_t *p)
{
    return p != NULL && (kind != LEGACY_METRICS || p->metric_names.n > 0);
}

static bool has_resource_rule(legacy_kind_t kind, const props_t *p)
{
    return p != NULL && kind == LEGACY_METRICS && p->resources.n > 0;
}

bool proc_filter_legacy_has_item_rule(const filter_legacy_t *l)
{
    return has_item_rule(l->kind, l->include) || has_item_rule(l->kind, l->exclude);
}

bool proc_filter_legacy_has_resource_rule(const filter_legacy_t *l)
{
    return has_resource_rule(l->kind, l->include) || has_resource_rule(l->kind, l->exclude);
}

bool proc_filter_legacy_skip(const filter_legacy_t *l, const om_item_t *it, ottl_scratch_t *s,
                             bool *limited)
{
    mctx_t c = {.s = s, .limited = limited};
    proc_filter_scratch_reset(s);
    if (has_item_rule(l->kind, l->include) && !item_match(&c, l->kind, l->include, it)) {
        return true;
    }
    return has_item_rule(l->kind, l->exclude) && item_match(&c, l->kind, l->exclude, it);
}

bool proc_filter_legacy_skip_resource(const filter_legacy_t *l, const om_item_t *it,
                                      ottl_scratch_t *s, bool *limited)
{
    mctx_t c = {.s = s, .limited = limited};
    proc_filter_scratch_reset(s);
    size_t n = 0;
    om_keyvalue_t *const *kv = res_attrs(it, &n);
    if (has_resource_rule(l->kind, l->include) &&
        !attrs_match(&c, l->include->type, &l->include->resources, kv, n)) {
        return true;
    }
    return has_resource_rule(l->kind, l->exclude) &&
           attrs_match(&c, l->exclude->type, &l->exclude->resources, kv, n);
}
