/* attributes_match.c: include/exclude of the attributes processor, as otelcol-contrib's
 * filterconfig.MatchProperties with filterspan, filterlog and filtermetric.
 *
 * Every property that is given must match (AND); within a list of strings (services,
 * span_names, span_kinds, log_bodies, log_severity_texts, metric_names) one item matching is
 * enough (OR). `attributes`, `resources` and `libraries` are lists where every entry must
 * match. match_type strict compares strings exactly (and attribute values as values: 1 does
 * not equal 1.0 or "1"); regexp searches with the pattern anywhere in the string (as Go's
 * MatchString; PCRE2, see ../attraction/attraction_regex.c), attribute values as their string
 * form (ints in decimal, doubles in Go's 'f' form, bools true/false; other kinds never
 * match). Where a property reads:
 *   services            the resource's service.name (as a string; "<nil-service-name>" when
 *                       absent)
 *   span_names          the span's name                span_kinds  "SPAN_KIND_SERVER"...
 *   log_bodies          a log's body, when a string    log_severity_texts  its severity text
 *   log_severity_number a log's severity number >= min (unset: match_undefined)
 *   metric_names        the metric's name
 *   attributes          the span's / log record's attributes
 *   resources           the resource's attributes      libraries  the instrumentation scope
 * Which properties each signal allows is otelcol's (ValidateForSpans/Logs/Metrics); the
 * messages are otelcol's too. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attributes.h"

/* ------------------------------------------------------------------------------------------ */
/* Config                                                                                     */

static const om_field_t kv_fields[] = {
    {.key = "key", .type = OM_F_STRING, .offset = offsetof(proc_attributes_kv_cfg_t, key)},
    {.key = "value", .type = OM_F_ANYVALUE, .offset = offsetof(proc_attributes_kv_cfg_t, value)},
    {.key = NULL},
};

static const om_field_t lib_fields[] = {
    {.key = "name", .type = OM_F_STRING, .offset = offsetof(proc_attributes_lib_cfg_t, name)},
    {.key = "version",
     .type = OM_F_ANYVALUE,
     .offset = offsetof(proc_attributes_lib_cfg_t, version)},
    {.key = NULL},
};

static const om_field_t sevnum_fields[] = {
    {.key = "min",
     .type = OM_F_INT,
     .offset = offsetof(proc_attributes_sevnum_cfg_t, min),
     .min = 0,
     .max = 24,
     .help = "the lowest severity number that matches (INFO is 9)"},
    {.key = "match_undefined",
     .type = OM_F_BOOL,
     .offset = offsetof(proc_attributes_sevnum_cfg_t, match_undefined),
     .help = "whether records without a severity number match"},
    {.key = NULL},
};

/* The regexp match type's options: a cache of match results, which only saves time. */
static const om_field_t regexp_fields[] = {
    {.key = "cacheenabled",
     .type = OM_F_BOOL,
     .offset = offsetof(proc_attributes_regexp_cfg_t, cacheenabled),
     .help = "accepted; otelmon does not cache match results"},
    {.key = "cachemaxnumentries",
     .type = OM_F_INT,
     .offset = offsetof(proc_attributes_regexp_cfg_t, cachemaxnumentries),
     .min = 0,
     .max = 9.2e18,
     .help = "accepted; otelmon does not cache match results"},
    {.key = NULL},
};

#define PROPS_LIST(name, member, what)                                                             \
    {                                                                                              \
        .key = (name), .type = OM_F_STRLIST,                                                       \
        .offset = offsetof(proc_attributes_props_cfg_t, member), .help = (what)                    \
    }

const om_field_t proc_attributes_props_fields[] = {
    {.key = "match_type",
     .type = OM_F_STRING,
     .offset = offsetof(proc_attributes_props_cfg_t, match_type),
     .help = "strict or regexp"},
    {.key = "regexp",
     .type = OM_F_SECTION,
     .offset = offsetof(proc_attributes_props_cfg_t, regexp),
     .fields = regexp_fields},
    PROPS_LIST("services", services, "spans: service names, one must match"),
    PROPS_LIST("span_names", span_names, "spans: names, one must match"),
    PROPS_LIST("span_kinds", span_kinds, "spans: kinds (SPAN_KIND_SERVER...), one must match"),
    PROPS_LIST("log_bodies", log_bodies, "logs: string bodies, one must match"),
    PROPS_LIST("log_severity_texts", log_severity_texts, "logs: severity texts, one must match"),
    PROPS_LIST("metric_names", metric_names, "metrics: names, one must match"),
    {.key = "log_severity_number",
     .type = OM_F_SECTION,
     .offset = offsetof(proc_attributes_props_cfg_t, log_severity_number),
     .fields = sevnum_fields,
     .flags = OM_FF_PRESENCE,
     .present_offset = offsetof(proc_attributes_props_cfg_t, log_severity_number_present)},
    {.key = "attributes",
     .type = OM_F_SECLIST,
     .offset = offsetof(proc_attributes_props_cfg_t, attributes),
     .fields = kv_fields,
     .elem_size = sizeof(proc_attributes_kv_cfg_t),
     .help = "the item's attributes: all must match"},
    {.key = "resources",
     .type = OM_F_SECLIST,
     .offset = offsetof(proc_attributes_props_cfg_t, resources),
     .fields = kv_fields,
     .elem_size = sizeof(proc_attributes_kv_cfg_t),
     .help = "the resource's attributes: all must match"},
    {.key = "libraries",
     .type = OM_F_SECLIST,
     .offset = offsetof(proc_attributes_props_cfg_t, libraries),
     .fields = lib_fields,
     .elem_size = sizeof(proc_attributes_lib_cfg_t),
     .help = "the instrumentation scope's name and version: all must match"},
    {.key = NULL},
};

const char *proc_attributes_props_invalid_for(const proc_attributes_props_cfg_t *c, om_signal_t sig)
{
    bool sev = c->log_severity_number_present;
    if (sig == OM_SIG_TRACES) {
        if (c->log_bodies.n > 0) {
            return "log_bodies should not be specified for trace spans";
        }
        if (c->log_severity_texts.n > 0) {
            return "log_severity_texts should not be specified for trace spans";
        }
        if (sev) {
            return "log_severity_number should not be specified for trace spans";
        }
        if (c->metric_names.n > 0) {
            return "metric_names should not be specified for trace spans";
        }
        if (c->services.n == 0 && c->span_names.n == 0 && c->attributes.n == 0 &&
            c->libraries.n == 0 && c->resources.n == 0 && c->span_kinds.n == 0) {
            return "at least one of \"attributes\", \"libraries\",  or \"resources\" field must "
                   "be specified";
        }
        return NULL;
    }
    if (sig == OM_SIG_LOGS) {
        if (c->span_names.n > 0 || c->services.n > 0 || c->span_kinds.n > 0 ||
            c->metric_names.n > 0) {
            return "services, span_names, span_kinds and metric_names are not valid for log "
                   "records";
        }
        if (c->attributes.n == 0 && c->libraries.n == 0 && c->resources.n == 0 &&
            c->log_bodies.n == 0 && c->log_severity_texts.n == 0 && !sev) {
            return "at least one of \"attributes\", \"libraries\", \"span_kinds\", \"resources\", "
                   "\"log_bodies\", \"log_severity_texts\" or \"log_severity_number\" field must "
                   "be "
                   "specified";
        }
        return NULL;
    }
    if (c->log_bodies.n > 0 || c->log_severity_texts.n > 0 || c->span_names.n > 0 ||
        c->services.n > 0 || c->span_kinds.n > 0 || c->attributes.n > 0 || c->libraries.n > 0 ||
        sev) {
        return "\"span_names\", \"span_kinds\", \"log_bodies\", \"log_severity_texts\", "
               "\"log_severity_number\", \"services\", \"attributes\" and \"libraries\" are not "
               "valid for metrics";
    }
    if (c->metric_names.n == 0 && c->resources.n == 0) {
        return "at least one of \"metric_names\" or \"resources\" field must be specified";
    }
    return NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* Compiled matchers                                                                          */

/* A list of strings to match: one equal (strict) or one pattern matching (regexp). */
typedef struct strset {
    size_t n;
    char *const *strict;       /* the config's strings (strict) */
    proc_attraction_re_t **re; /* compiled (regexp) */
} strset_t;

/* An attribute to match: present, and equal to value (strict) or matched by re (regexp). */
typedef struct kv_matcher {
    const char *key;
    const om_anyvalue_t *value;
    proc_attraction_re_t *re;
} kv_matcher_t;

typedef struct lib_matcher {
    strset_t name, version; /* version.n == 0: any version */
} lib_matcher_t;

struct proc_attributes_props {
    strset_t services, span_names, span_kinds, log_bodies, sev_texts, metric_names;
    bool sevnum, match_undefined;
    int64_t sev_min;
    kv_matcher_t *attrs, *res;
    size_t n_attrs, n_res;
    lib_matcher_t *libs;
    size_t n_libs;
    om_strbuf_t scratch; /* string forms of values matched with regexps */
};

static void strset_free(strset_t *s)
{
    for (size_t i = 0; s->re != NULL && i < s->n; i++) {
        proc_attraction_re_free(s->re[i]);
    }
    om_free(s->re);
    *s = (strset_t){0};
}

void proc_attributes_props_free(proc_attributes_props_t *m)
{
    if (m == NULL) {
        return;
    }
    strset_t *sets[] = {&m->services,   &m->span_names, &m->span_kinds,
                        &m->log_bodies, &m->sev_texts,  &m->metric_names};
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++) {
        strset_free(sets[i]);
    }
    for (size_t i = 0; i < m->n_attrs; i++) {
        proc_attraction_re_free(m->attrs[i].re);
    }
    for (size_t i = 0; i < m->n_res; i++) {
        proc_attraction_re_free(m->res[i].re);
    }
    for (size_t i = 0; i < m->n_libs; i++) {
        strset_free(&m->libs[i].name);
        strset_free(&m->libs[i].version);
    }
    om_free(m->attrs);
    om_free(m->res);
    om_free(m->libs);
    om_strbuf_free(&m->scratch);
    om_free(m);
}

/* What compiling needs to know and report. */
typedef struct cctx {
    bool regexp;    /* match_type is regexp */
    bool type_ok;   /* match_type is strict or regexp */
    const char *at; /* "include" / "exclude" */
    const char *match_type;
    om_err_t *err;
} cctx_t;

static int bad_match_type(cctx_t *c)
{
    om_err_at(c->err, c->at, "unrecognized match_type: '%s', valid types are: [regexp strict]",
              c->match_type);
    return OM_ECONFIG;
}

static int compile_re(cctx_t *c, const char *field, const char *pattern, proc_attraction_re_t **re)
{
    char msg[200], at[64];
    int rc = proc_attraction_re_compile(pattern, re, msg, sizeof msg);
    if (rc == OM_ENOMEM) {
        om_err_set(c->err, rc, "out of memory");
    } else if (rc != 0) {
        snprintf(at, sizeof at, "%s::%s", c->at, field);
        om_err_at(c->err, at, "error parsing regexp: \"%s\": %s", pattern, msg);
    }
    return rc == 0 ? 0 : rc == OM_ENOMEM ? OM_ENOMEM : OM_ECONFIG;
}

static int strset_init(cctx_t *c, const char *field, char *const *items, size_t n, strset_t *s)
{
    *s = (strset_t){.n = n, .strict = items};
    if (n == 0) {
        return 0;
    }
    if (!c->type_ok) {
        return bad_match_type(c);
    }
    if (!c->regexp) {
        return 0;
    }
    s->re = om_calloc(n, sizeof *s->re);
    if (s->re == NULL) {
        om_err_set(c->err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        int rc = compile_re(c, field, items[i], &s->re[i]);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

static const char *kind_name(const om_anyvalue_t *v)
{
    switch (v->value_case) {
    case OM_ANYVALUE_STRING:
        return "Str";
    case OM_ANYVALUE_BOOL:
        return "Bool";
    case OM_ANYVALUE_INT:
        return "Int";
    case OM_ANYVALUE_DOUBLE:
        return "Double";
    case OM_ANYVALUE_ARRAY:
        return "Slice";
    case OM_ANYVALUE_KVLIST:
        return "Map";
    case OM_ANYVALUE_BYTES:
        return "Bytes";
    default:
        return "Empty";
    }
}

static int kv_init(cctx_t *c, const char *field, const om_seclist_t *l, kv_matcher_t **out,
                   size_t *n_out)
{
    *out = l->n > 0 ? om_calloc(l->n, sizeof **out) : NULL;
    if (l->n > 0 && *out == NULL) {
        om_err_set(c->err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    for (size_t i = 0; i < l->n; i++) {
        const proc_attributes_kv_cfg_t *kv = OM_SECLIST_AT(l, proc_attributes_kv_cfg_t, i);
        kv_matcher_t *m = &(*out)[i];
        *n_out = i + 1;
        char at[80];
        snprintf(at, sizeof at, "%s::%s[%zu]", c->at, field, i);
        if (!c->type_ok) {
            return bad_match_type(c);
        }
        if (kv->key == NULL || kv->key[0] == '\0') {
            om_err_at(c->err, at, "can't have empty key in the list of attributes");
            return OM_ECONFIG;
        }
        m->key = kv->key;
        if (kv->value == NULL) {
            continue; /* the key must be present, with any value */
        }
        if (!c->regexp) {
            m->value = kv->value;
            continue;
        }
        if (kv->value->value_case != OM_ANYVALUE_STRING) {
            om_err_at(c->err, at, "match_type=regexp for \"%s\" only supports Str, but found %s",
                      kv->key, kind_name(kv->value));
            return OM_ECONFIG;
        }
        char sub[96];
        snprintf(sub, sizeof sub, "%s[%zu]::value", field, i);
        int rc = compile_re(c, sub, kv->value->string_value, &m->re);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

/* A library's version as the string to match: a string as it is, other scalars as text. */
static int lib_init(cctx_t *c, const om_seclist_t *l, proc_attributes_props_t *m)
{
    m->libs = l->n > 0 ? om_calloc(l->n, sizeof *m->libs) : NULL;
    if (l->n > 0 && m->libs == NULL) {
        om_err_set(c->err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    for (size_t i = 0; i < l->n; i++) {
        proc_attributes_lib_cfg_t *lib = OM_SECLIST_AT(l, proc_attributes_lib_cfg_t, i);
        m->n_libs = i + 1;
        int rc = strset_init(c, "libraries", &lib->name, 1, &m->libs[i].name);
        if (rc == 0 && lib->version != NULL) {
            if (lib->version->value_case != OM_ANYVALUE_STRING) {
                char at[80];
                snprintf(at, sizeof at, "%s::libraries[%zu]::version", c->at, i);
                om_err_at(c->err, at, "expected a string");
                return OM_ECONFIG;
            }
            rc = strset_init(c, "libraries", &lib->version->string_value, 1, &m->libs[i].version);
        }
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

static int props_init(cctx_t *c, const proc_attributes_props_cfg_t *cfg, proc_attributes_props_t *m)
{
    struct {
        const char *field;
        const om_strlist_t *list;
        strset_t *set;
    } lists[] = {
        {"services", &cfg->services, &m->services},
        {"span_names", &cfg->span_names, &m->span_names},
        {"span_kinds", &cfg->span_kinds, &m->span_kinds},
        {"log_bodies", &cfg->log_bodies, &m->log_bodies},
        {"log_severity_texts", &cfg->log_severity_texts, &m->sev_texts},
        {"metric_names", &cfg->metric_names, &m->metric_names},
    };
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++) {
        int rc =
            strset_init(c, lists[i].field, lists[i].list->items, lists[i].list->n, lists[i].set);
        if (rc != 0) {
            return rc;
        }
    }
    m->sevnum = cfg->log_severity_number_present;
    m->sev_min = cfg->log_severity_number.min;
    m->match_undefined = cfg->log_severity_number.match_undefined;
    int rc = kv_init(c, "attributes", &cfg->attributes, &m->attrs, &m->n_attrs);
    rc = rc != 0 ? rc : kv_init(c, "resources", &cfg->resources, &m->res, &m->n_res);
    return rc != 0 ? rc : lib_init(c, &cfg->libraries, m);
}

static const char *const strict_kinds[] = {"SPAN_KIND_CLIENT", "SPAN_KIND_CONSUMER",
                                           "SPAN_KIND_INTERNAL", "SPAN_KIND_PRODUCER",
                                           "SPAN_KIND_SERVER"};

static int check_span_kinds(cctx_t *c, const proc_attributes_props_cfg_t *cfg)
{
    for (size_t i = 0; !c->regexp && i < cfg->span_kinds.n; i++) {
        bool known = false;
        for (size_t k = 0; k < sizeof strict_kinds / sizeof strict_kinds[0]; k++) {
            known = known || strcmp(cfg->span_kinds.items[i], strict_kinds[k]) == 0;
        }
        if (!known) {
            char at[64];
            snprintf(at, sizeof at, "%s::span_kinds", c->at);
            om_err_at(c->err, at,
                      "span_kinds string must match one of the standard span kinds when "
                      "match_type=strict: [SPAN_KIND_CLIENT SPAN_KIND_CONSUMER SPAN_KIND_INTERNAL "
                      "SPAN_KIND_PRODUCER SPAN_KIND_SERVER]");
            return OM_ECONFIG;
        }
    }
    return 0;
}

int proc_attributes_props_new(const proc_attributes_props_cfg_t *cfg, bool present, const char *at,
                              unsigned sigs, proc_attributes_props_t **out, om_err_t *err)
{
    *out = NULL;
    if (!present) {
        return 0;
    }
    for (int i = 0; i < OM_SIG_COUNT; i++) {
        om_signal_t sig = om_signal_from_index(i);
        const char *bad = (sigs & sig) != 0 ? proc_attributes_props_invalid_for(cfg, sig) : NULL;
        if (bad != NULL) {
            om_err_at(err, at, "%s", bad);
            return OM_ECONFIG;
        }
    }
    const char *mt = cfg->match_type != NULL ? cfg->match_type : "";
    cctx_t c = {.regexp = strcmp(mt, "regexp") == 0,
                .type_ok = strcmp(mt, "regexp") == 0 || strcmp(mt, "strict") == 0,
                .at = at,
                .match_type = mt,
                .err = err};
    if (strcmp(mt, "expr") == 0) {
        om_err_at(err, at,
                  "match_type \"expr\" (expr-lang expressions) is not supported by otelmon");
        return OM_ECONFIG;
    }
    proc_attributes_props_t *m = om_calloc(1, sizeof *m);
    if (m == NULL) {
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    om_strbuf_init(&m->scratch, 0);
    int rc = (sigs & OM_SIG_TRACES) != 0 ? check_span_kinds(&c, cfg) : 0;
    rc = rc != 0 ? rc : props_init(&c, cfg, m);
    if (rc != 0) {
        proc_attributes_props_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Matching                                                                                   */

static bool strset_match(const strset_t *s, const char *str)
{
    str = str != NULL ? str : "";
    size_t len = strlen(str);
    for (size_t i = 0; i < s->n; i++) {
        if (s->re != NULL ? proc_attraction_re_match(s->re[i], str, len, NULL) == 1
                          : strcmp(s->strict[i], str) == 0) {
            return true;
        }
    }
    return false;
}

/* Go's strconv.FormatFloat(d, 'f', -1, 64): the shortest digits that read back as d, never
 * in exponent form. */
static void put_float_f(om_strbuf_t *sb, double d)
{
    if (isnan(d) || isinf(d)) {
        om_strbuf_puts(sb, isnan(d) ? "NaN" : d > 0 ? "+Inf" : "-Inf");
        return;
    }
    char buf[40];
    int prec = 1;
    for (; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*e", prec - 1, d);
        if (strtod(buf, NULL) == d) {
            break;
        }
    }
    /* buf: [-]d.ddde[+-]x: the digits, then place the point by the exponent. */
    char digits[24];
    size_t n = 0;
    const char *p = buf;
    if (*p == '-') {
        om_strbuf_putc(sb, '-');
        p++;
    }
    for (; *p != 'e' && *p != '\0'; p++) {
        if (*p >= '0' && *p <= '9' && n < sizeof digits - 1) {
            digits[n++] = *p;
        }
    }
    while (n > 1 && digits[n - 1] == '0') {
        n--;
    }
    int e = *p == 'e' ? atoi(p + 1) : 0;
    if (e < 0) {
        om_strbuf_puts(sb, "0.");
        for (int i = -1; i > e; i--) {
            om_strbuf_putc(sb, '0');
        }
        om_strbuf_append(sb, digits, n);
        return;
    }
    for (size_t i = 0; i < (size_t)e + 1; i++) {
        om_strbuf_putc(sb, i < n ? digits[i] : '0');
    }
    if (n > (size_t)e + 1) {
        om_strbuf_putc(sb, '.');
        om_strbuf_append(sb, digits + e + 1, n - (size_t)e - 1);
    }
}

/* filtermatcher's attributeStringValue: the text a regexp is matched against, or NULL for
 * kinds that never match. */
static const char *value_text(proc_attributes_props_t *m, const om_anyvalue_t *v)
{
    om_strbuf_reset(&m->scratch);
    om_strbuf_puts(&m->scratch, "");
    switch (v->value_case) {
    case OM_ANYVALUE_STRING:
        return v->string_value != NULL ? v->string_value : "";
    case OM_ANYVALUE_BOOL:
    case OM_ANYVALUE_INT:
        om_anyvalue_to_string(v, &m->scratch);
        break;
    case OM_ANYVALUE_DOUBLE:
        put_float_f(&m->scratch, v->double_value);
        break;
    default:
        return NULL;
    }
    return m->scratch.failed ? NULL : m->scratch.data;
}

static bool kv_match(proc_attributes_props_t *m, const kv_matcher_t *kvs, size_t n,
                     const om_attrs_t *a)
{
    for (size_t i = 0; i < n; i++) {
        const om_anyvalue_t *v = om_attrs_get(a, kvs[i].key);
        if (v == NULL) {
            return false;
        }
        if (kvs[i].re != NULL) {
            const char *text = value_text(m, v);
            if (text == NULL ||
                proc_attraction_re_match(kvs[i].re, text, strlen(text), NULL) != 1) {
                return false;
            }
        } else if (kvs[i].value != NULL && !om_anyvalue_equal(v, kvs[i].value)) {
            return false;
        }
    }
    return true;
}

/* libraries, resources and attributes (filtermatcher.PropertiesMatcher). */
static bool common_match(proc_attributes_props_t *m, const om_item_t *it, const om_attrs_t *attrs)
{
    for (size_t i = 0; i < m->n_libs; i++) {
        const om_scope_t *s = it->scope;
        if (!strset_match(&m->libs[i].name, s != NULL ? s->name : "")) {
            return false;
        }
        if (m->libs[i].version.n > 0 &&
            !strset_match(&m->libs[i].version, s != NULL ? s->version : "")) {
            return false;
        }
    }
    if (!kv_match(m, m->res, m->n_res, &it->resource_attrs)) {
        return false;
    }
    return attrs == NULL || kv_match(m, m->attrs, m->n_attrs, attrs);
}

static const char *span_kind_name(int kind)
{
    static const char *const names[] = {"SPAN_KIND_UNSPECIFIED", "SPAN_KIND_INTERNAL",
                                        "SPAN_KIND_SERVER",      "SPAN_KIND_CLIENT",
                                        "SPAN_KIND_PRODUCER",    "SPAN_KIND_CONSUMER"};
    return kind >= 0 && kind < 6 ? names[kind] : "";
}

static bool span_match(proc_attributes_props_t *m, const om_item_t *it)
{
    if (m->services.n > 0) {
        const om_anyvalue_t *svc = om_attrs_get(&it->resource_attrs, "service.name");
        const char *name = "<nil-service-name>";
        if (svc != NULL) {
            om_strbuf_reset(&m->scratch);
            om_strbuf_puts(&m->scratch, "");
            om_anyvalue_to_string(svc, &m->scratch);
            name = m->scratch.failed ? "" : m->scratch.data;
        }
        if (!strset_match(&m->services, name)) {
            return false;
        }
    }
    if (m->span_names.n > 0 && !strset_match(&m->span_names, it->span->name)) {
        return false;
    }
    if (m->span_kinds.n > 0 && !strset_match(&m->span_kinds, span_kind_name((int)it->span->kind))) {
        return false;
    }
    return common_match(m, it, &it->attrs);
}

static bool log_match(proc_attributes_props_t *m, const om_item_t *it)
{
    const om_log_record_t *lr = it->log;
    if (m->log_bodies.n > 0) {
        /* otelcol matches string bodies only. */
        if (lr->body == NULL || lr->body->value_case != OM_ANYVALUE_STRING ||
            !strset_match(&m->log_bodies, lr->body->string_value)) {
            return false;
        }
    }
    if (m->sev_texts.n > 0 && !strset_match(&m->sev_texts, lr->severity_text)) {
        return false;
    }
    if (m->sevnum) {
        int64_t sev = (int64_t)lr->severity_number;
        if (sev == 0 ? !m->match_undefined : sev < m->sev_min) {
            return false;
        }
    }
    return common_match(m, it, &it->attrs);
}

/* filtermetric: metric names and resource attributes (no per-point attributes). */
static bool metric_match(proc_attributes_props_t *m, const om_item_t *it)
{
    if (m->metric_names.n > 0 && !strset_match(&m->metric_names, it->metric->name)) {
        return false;
    }
    return kv_match(m, m->res, m->n_res, &it->resource_attrs);
}

bool proc_attributes_props_match(proc_attributes_props_t *m, const om_item_t *it)
{
    switch (it->level) {
    case OM_LEVEL_SPAN:
        return span_match(m, it);
    case OM_LEVEL_LOG:
        return log_match(m, it);
    case OM_LEVEL_DATAPOINT:
    case OM_LEVEL_METRIC:
        return metric_match(m, it);
    default:
        return common_match(m, it, NULL);
    }
}

bool proc_attributes_skip(proc_attributes_props_t *include, proc_attributes_props_t *exclude,
                          const om_item_t *it)
{
    if (include != NULL && !proc_attributes_props_match(include, it)) {
        return true;
    }
    return exclude != NULL && proc_attributes_props_match(exclude, it);
}
