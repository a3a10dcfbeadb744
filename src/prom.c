/* prom.c: the OTLP -> Prometheus translation, written once for both Prometheus exporters
 * (`prometheusremotewrite` and `prometheus`) and usable by the internal telemetry endpoint.
 *
 * Where each rule comes from (our own code; the files named are the reference):
 *   - Types and temporalities: OpenTelemetry's specification, compatibility/
 *     prometheus_and_openmetrics.md ("OTLP Metric points to Prometheus"); otelcol-contrib's
 *     pkg/translator/prometheusremotewrite/helper.go (isValidAggregationTemporality) and
 *     exporter/prometheusexporter/accumulator.go (what the pull exporter accumulates).
 *   - Metric names and units: prometheus/otlptranslator metric_namer.go (normalizeName,
 *     addUnitTokens, the no-suffix path) and unit_namer.go (the unit tables,
 *     buildUnitSuffixes, cleanUpUnit), which otelcol-contrib's prometheus exporter calls; the
 *     same rules as contrib's older pkg/translator/prometheus/normalize_name.go, except that
 *     ':' is kept in names and only ASCII letters are valid (Prometheus 2.42 refuses others).
 *   - Label names: otlptranslator label_namer.go (runs of invalid characters to one '_', as
 *     the specification asks since v1.38; "key_" before a digit; "__x__" kept). contrib's
 *     remote-write translator still calls the older NormalizeLabel, which keeps runs of '_'
 *     and prefixes "key" to a single leading '_'; we follow the specification in both.
 *   - Clashing label names: the specification ("concatenated together, separated by ;, and
 *     ordered by the lexicographical order of the original keys") as contrib's helper.go
 *     createAttributes does it (a value equal to the last one is not repeated).
 *   - job / instance: helper.go createAttributes; target_info's attributes: helper.go
 *     addResourceTargetInfo and prometheusexporter/collector.go createTargetInfoMetrics.
 *   - Attribute values: pdata's pcommon Value.AsString (value.go), float64AsString included.
 *   - Number formatting: Go's strconv.FormatFloat 'g' (prometheus/common expfmt writeFloat)
 *     and 'f' (helper.go's le / quantile label values). */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "om.h"

/* ------------------------------------------------------------------------------------------ */
/* Types                                                                                      */

#define TEMP_DELTA                                                                                 \
    OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_DELTA
#define TEMP_CUMULATIVE                                                                            \
    OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE

static int temporality(int t, om_prom_class_t *c)
{
    if (t == TEMP_DELTA) {
        c->delta = true;
        return 0;
    }
    return t == TEMP_CUMULATIVE ? 0 : OM_ENOTSUP;
}

int om_prom_classify(const om_metric_t *m, om_prom_class_t *c)
{
    *c = (om_prom_class_t){0};
    switch (m->data_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
        c->type = OM_PROM_GAUGE;
        c->otlp_gauge = true;
        return m->gauge != NULL ? 0 : OM_ENOTSUP;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
        if (m->sum == NULL || temporality(m->sum->aggregation_temporality, c) != 0) {
            return OM_ENOTSUP;
        }
        c->monotonic = m->sum->is_monotonic;
        c->type = c->monotonic ? OM_PROM_COUNTER : OM_PROM_GAUGE;
        /* A delta sum that may go down has no cumulative form: dropped (spec, "Sums"). */
        return c->delta && !c->monotonic ? OM_ENOTSUP : 0;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
        c->type = OM_PROM_HISTOGRAM;
        return m->histogram != NULL ? temporality(m->histogram->aggregation_temporality, c)
                                    : OM_ENOTSUP;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
        c->type = OM_PROM_HISTOGRAM;
        c->exponential = true;
        return m->exponential_histogram != NULL
                   ? temporality(m->exponential_histogram->aggregation_temporality, c)
                   : OM_ENOTSUP;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
        c->type = OM_PROM_SUMMARY;
        return m->summary != NULL ? 0 : OM_ENOTSUP;
    default:
        return OM_ENOTSUP;
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Metric names                                                                               */

/* otlptranslator unit_namer.go / metric_namer.go: unitMap and perUnitMap. */
static const char *const unit_map[][2] = {
    {"d", "days"},
    {"h", "hours"},
    {"min", "minutes"},
    {"s", "seconds"},
    {"ms", "milliseconds"},
    {"us", "microseconds"},
    {"ns", "nanoseconds"},
    {"By", "bytes"},
    {"KiBy", "kibibytes"},
    {"MiBy", "mebibytes"},
    {"GiBy", "gibibytes"},
    {"TiBy", "tibibytes"},
    {"KBy", "kilobytes"},
    {"MBy", "megabytes"},
    {"GBy", "gigabytes"},
    {"TBy", "terabytes"},
    {"m", "meters"},
    {"V", "volts"},
    {"A", "amperes"},
    {"J", "joules"},
    {"W", "watts"},
    {"g", "grams"},
    {"Cel", "celsius"},
    {"Hz", "hertz"},
    {"1", ""},
    {"%", "percent"},
};
static const char *const per_unit_map[][2] = {
    {"s", "second"}, {"m", "minute"}, {"h", "hour"}, {"d", "day"},
    {"w", "week"},   {"mo", "month"}, {"y", "year"},
};

static bool metric_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == ':';
}

static bool is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

static bool is_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\v' || ch == '\f';
}

/* A view of part of a string. */
typedef struct span {
    const char *p;
    size_t n;
} span_t;

static span_t trim(const char *p, size_t n)
{
    while (n > 0 && is_space(p[0])) {
        p++;
        n--;
    }
    while (n > 0 && is_space(p[n - 1])) {
        n--;
    }
    return (span_t){p, n};
}

static bool span_eq(span_t a, const char *b)
{
    return a.n == strlen(b) && om_same(a.p, b, a.n);
}

static bool has_brace(span_t s)
{
    return memchr(s.p, '{', s.n) != NULL || memchr(s.p, '}', s.n) != NULL;
}

static span_t map_unit(span_t u, const char *const (*map)[2], size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (span_eq(u, map[i][0])) {
            return (span_t){map[i][1], strlen(map[i][1])};
        }
    }
    return u;
}

/* cleanUpUnit: invalid characters to '_', runs of '_' to one, no leading '_'. Writes into
 * out (cap >= u.n + 1) and returns the length. */
static size_t clean_unit(span_t u, char *out)
{
    size_t w = 0;
    for (size_t i = 0; i < u.n; i++) {
        char ch = metric_char(u.p[i]) ? u.p[i] : '_';
        if (ch == '_' && (w == 0 || out[w - 1] == '_')) {
            continue;
        }
        out[w++] = ch;
    }
    out[w] = '\0';
    return w;
}

/* The name's tokens: runs of [a-zA-Z0-9:]. At most max; returns how many. */
static size_t tokenize(const char *name, span_t *tok, size_t max)
{
    size_t n = 0;
    const char *p = name;
    while (*p != '\0' && n < max) {
        while (*p != '\0' && !metric_char(*p)) {
            p++;
        }
        const char *start = p;
        while (metric_char(*p)) {
            p++;
        }
        if (p > start) {
            tok[n++] = (span_t){start, (size_t)(p - start)};
        }
    }
    return n;
}

static bool has_token(const span_t *tok, size_t n, span_t w)
{
    for (size_t i = 0; i < n; i++) {
        if (tok[i].n == w.n && om_same(tok[i].p, w.p, w.n)) {
            return true;
        }
    }
    return false;
}

/* Drops every token equal to w (removeItem). */
static size_t remove_token(span_t *tok, size_t n, const char *w)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (!span_eq(tok[i], w)) {
            tok[k++] = tok[i];
        }
    }
    return k;
}

#define MAX_TOKENS 256
#define UNIT_MAX 128

/* buildUnitSuffixes + cleanUpUnit: the main unit's and the per unit's words ("per_second"),
 * cleaned; empty when absent. */
static void unit_suffixes(const char *unit, char *main_buf, span_t *main_out, char *per_buf,
                          span_t *per_out)
{
    *main_out = (span_t){"", 0};
    *per_out = (span_t){"", 0};
    size_t ulen = strlen(unit);
    const char *slash = memchr(unit, '/', ulen);
    span_t mainu = trim(unit, slash != NULL ? (size_t)(slash - unit) : ulen);
    if (mainu.n > 0 && !has_brace(mainu)) {
        span_t m = map_unit(mainu, unit_map, sizeof unit_map / sizeof unit_map[0]);
        if (m.n < UNIT_MAX) {
            *main_out = (span_t){main_buf, clean_unit(m, main_buf)};
        }
    }
    if (slash != NULL && slash[1] != '\0') {
        span_t peru = trim(slash + 1, ulen - (size_t)(slash + 1 - unit));
        if (peru.n > 0 && !has_brace(peru)) {
            span_t m = map_unit(peru, per_unit_map, sizeof per_unit_map / sizeof per_unit_map[0]);
            char tmp[UNIT_MAX + 8];
            if (m.n > 0 && m.n < UNIT_MAX) {
                om_copy(tmp, "per_", 4);
                om_copy(tmp + 4, m.p, m.n);
                *per_out = (span_t){per_buf, clean_unit((span_t){tmp, m.n + 4}, per_buf)};
            }
        }
    }
}

static span_t trim_trailing_underscore(span_t s)
{
    if (s.n > 0 && s.p[s.n - 1] == '_') {
        s.n--;
    }
    return s;
}

static void fields_join(const char *s, om_strbuf_t *out);

/* normalizeName with suffixes (metric_namer.go). */
static int name_with_suffixes(const char *ns, const char *name, const char *unit,
                              const om_prom_class_t *c, om_strbuf_t *out)
{
    span_t tok[MAX_TOKENS + 4];
    size_t n = tokenize(name, tok, MAX_TOKENS);
    char main_buf[UNIT_MAX + 1], per_buf[UNIT_MAX + 9];
    span_t mainu, peru;
    unit_suffixes(unit != NULL ? unit : "", main_buf, &mainu, per_buf, &peru);
    /* addUnitTokens */
    if (has_token(tok, n, mainu)) {
        mainu.n = 0;
    }
    if (span_eq(peru, "per_")) {
        peru.n = 0;
    } else {
        peru = trim_trailing_underscore(peru);
        if (has_token(tok, n, peru)) {
            peru.n = 0;
        }
    }
    if (peru.n > 0) {
        mainu = trim_trailing_underscore(mainu);
    }
    if (mainu.n > 0) {
        tok[n++] = mainu;
    }
    if (peru.n > 0) {
        tok[n++] = peru;
    }
    if (c != NULL && c->monotonic) {
        n = remove_token(tok, n, "total");
        tok[n++] = (span_t){"total", 5};
    }
    if (c != NULL && c->otlp_gauge && unit != NULL && strcmp(unit, "1") == 0) {
        n = remove_token(tok, n, "ratio");
        tok[n++] = (span_t){"ratio", 5};
    }
    size_t start = out->len;
    /* otlptranslator puts the namespace in front as it is ("make sure it follows Prometheus
     * naming"); we clean it as its no-suffix path does, so that a namespace such as "my.ns"
     * cannot make the whole exposition unparseable. */
    if (ns != NULL && ns[0] != '\0') {
        fields_join(ns, out);
        if (n > 0) {
            om_strbuf_putc(out, '_');
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (i > 0) {
            om_strbuf_putc(out, '_');
        }
        om_strbuf_append(out, tok[i].p, tok[i].n);
    }
    if (out->failed) {
        return OM_ENOMEM;
    }
    if (out->len > start && is_digit(out->data[start])) {
        om_strbuf_putc(out, '_');
        memmove(out->data + start + 1, out->data + start, out->len - start - 1);
        out->data[start] = '_';
    }
    return out->failed ? OM_ENOMEM : 0;
}

/* The no-suffix path: runs of characters other than [a-zA-Z0-9:_] to one '_' (FieldsFunc +
 * Join: none at either end). */
static void fields_join(const char *s, om_strbuf_t *out)
{
    bool any = false, gap = false;
    for (const char *p = s; *p != '\0'; p++) {
        if (metric_char(*p) || *p == '_') {
            if (gap && any) {
                om_strbuf_putc(out, '_');
            }
            om_strbuf_putc(out, *p);
            any = true;
            gap = false;
        } else {
            gap = true;
        }
    }
}

/* The rules of buildCompliantMetricName: an empty name, or one of underscores only that
 * normalisation made, is refused. */
static int check_name(const char *name, const om_strbuf_t *out, size_t start)
{
    size_t n = out->len - start;
    if (n == 0) {
        return OM_EINVAL;
    }
    const char *p = out->data + start;
    if (n == strlen(name) && om_same(p, name, n)) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (p[i] != '_') {
            return 0;
        }
    }
    return OM_EINVAL;
}

int om_prom_metric_name(const char *ns, bool suffixes, const char *name, const char *unit,
                        const om_prom_class_t *c, om_strbuf_t *out)
{
    size_t start = out->len;
    name = name != NULL ? name : "";
    int rc = 0;
    if (suffixes) {
        rc = name_with_suffixes(ns, name, unit, c, out);
    } else {
        if (ns != NULL && ns[0] != '\0') {
            fields_join(ns, out);
            om_strbuf_putc(out, '_');
            fields_join(name, out);
        } else {
            fields_join(name, out);
            if (out->len > start && is_digit(out->data[start])) {
                om_strbuf_putc(out, '_');
                memmove(out->data + start + 1, out->data + start, out->len - start - 1);
                out->data[start] = '_';
            }
        }
        rc = out->failed ? OM_ENOMEM : 0;
    }
    if (rc == 0) {
        rc = check_name(name, out, start);
    }
    if (rc != 0 && !out->failed && out->data != NULL) {
        out->len = start;
        out->data[start] = '\0';
    }
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Label names                                                                                */

static bool label_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
}

size_t om_prom_label_name(const char *key, size_t len, char *out, size_t cap)
{
    if (len == 0 || cap < len + 5) {
        return 0;
    }
    size_t w = 0, s = 0, e = len;
    bool reserved =
        len >= 4 && key[0] == '_' && key[1] == '_' && key[len - 2] == '_' && key[len - 1] == '_';
    if (is_digit(key[0])) {
        om_copy(out, "key_", 4);
        w = 4;
    }
    if (reserved) {
        om_copy(out + w, "__", 2);
        w += 2;
        s = 2;
        e = len - 2;
    }
    bool prev_us = false, any = false;
    for (size_t i = s; i < e; i++) {
        if (label_char(key[i])) {
            out[w++] = key[i];
            prev_us = false;
            any = true;
        } else if (!prev_us) {
            out[w++] = '_';
            prev_us = true;
        }
    }
    if (reserved) {
        om_copy(out + w, "__", 2);
        w += 2;
    }
    out[w] = '\0';
    return any ? w : 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Numbers                                                                                    */

/* The shortest decimal digits that read back as v (v finite, > 0): digits (no point, no
 * trailing zeros) and the decimal exponent of the first one (v = 0.d1d2... x 10^(*exp + 1)).
 * Correctly rounded output of 15, then 16, then 17 digits: if v has a representation of at
 * most 15 digits, rounding its exact value to 15 digits gives that one padded with zeros
 * (15 digits resolve more finely than a double's half ulp), so stripping zeros finds it. */
/* The fast path of shortest: v = r / 10^k exactly as a double for an integer r of at most 15
 * digits and the smallest such k <= 15 (values like 123.45 written by programs). r / 10^k
 * with both exact is the correctly rounded quotient, which is what reading the decimal
 * r x 10^-k gives, so those digits read back as v; no other decimal of at most 15 digits
 * reads back as v (DBL_DIG), so they are what the slow path finds too. */
static bool shortest_scaled(double v, char *digits, int *exp, size_t *nd)
{
    static const double p10[] = {1e0, 1e1, 1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};
    if (!(v >= 1e-5 && v < 1e15)) {
        return false;
    }
    for (int k = 0; k < 16; k++) {
        double m = v * p10[k];
        if (m >= 1e15) {
            return false;
        }
        double r = floor(m + 0.5);
        if (r / p10[k] != v) {
            continue;
        }
        char tmp[24];
        size_t n = 0;
        for (uint64_t u = (uint64_t)r; u != 0; u /= 10) {
            tmp[n++] = (char)('0' + u % 10);
        }
        /* n >= 1: r >= 1 since v >= 1e-5 needs k >= 5 digits of fraction at most 15. */
        *exp = (int)n - 1 - k;
        while (n > 1 && tmp[0] == '0') {
            memmove(tmp, tmp + 1, --n);
        }
        for (size_t i = 0; i < n; i++) {
            digits[i] = tmp[n - 1 - i];
        }
        digits[n] = '\0';
        *nd = n;
        return true;
    }
    return false;
}

static size_t shortest(double v, char *digits, int *exp)
{
    char buf[40];
    size_t fast;
    if (shortest_scaled(v, digits, exp, &fast)) {
        return fast;
    }
    /* Subnormals have fewer significant bits: the argument above does not hold, so every
     * length is tried (they are rare). */
    for (int prec = v < DBL_MIN ? 1 : 15; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*e", prec - 1, v);
        if (prec < 17 && strtod(buf, NULL) != v) {
            continue;
        }
        size_t nd = 0;
        char *p = buf;
        for (; *p != 'e'; p++) {
            if (*p != '.') {
                digits[nd++] = *p;
            }
        }
        *exp = (int)strtol(p + 1, NULL, 10);
        while (nd > 1 && digits[nd - 1] == '0') {
            nd--;
        }
        digits[nd] = '\0';
        return nd;
    }
    return 0; /* not reached */
}

static size_t special(double v, char *buf)
{
    const char *s = isnan(v) ? "NaN" : v > 0 ? "+Inf" : "-Inf";
    size_t n = strlen(s);
    om_copy(buf, s, n + 1);
    return n;
}

/* Small integers are most values (counts, bucket bounds): no snprintf. */
static bool small_int(double v, double limit, char *buf, size_t *len)
{
    if (!(v > -limit && v < limit) || v != floor(v)) {
        return false;
    }
    long long i = (long long)v;
    if (i == 0 && signbit(v)) {
        om_copy(buf, "-0", 3);
        *len = 2;
        return true;
    }
    char tmp[24];
    size_t n = 0;
    unsigned long long u = i < 0 ? (unsigned long long)(-i) : (unsigned long long)i;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u > 0);
    size_t w = 0;
    if (i < 0) {
        buf[w++] = '-';
    }
    while (n > 0) {
        buf[w++] = tmp[--n];
    }
    buf[w] = '\0';
    *len = w;
    return true;
}

/* Go's fmtF with the shortest digits. */
static size_t put_f(char *buf, size_t w, const char *d, size_t nd, int exp)
{
    int dp = exp + 1; /* digits before the point */
    if (dp <= 0) {
        buf[w++] = '0';
    } else {
        for (int i = 0; i < dp; i++) {
            buf[w++] = (size_t)i < nd ? d[i] : '0';
        }
    }
    if ((int)nd > dp) {
        buf[w++] = '.';
        for (int i = dp; i < 0; i++) {
            buf[w++] = '0';
        }
        for (size_t i = dp > 0 ? (size_t)dp : 0; i < nd; i++) {
            buf[w++] = d[i];
        }
    }
    buf[w] = '\0';
    return w;
}

size_t om_prom_format_g(double v, char *buf)
{
    size_t len;
    if (!isfinite(v)) {
        return special(v, buf);
    }
    if (small_int(v, 1e6, buf, &len)) {
        return len;
    }
    char d[24];
    int exp;
    size_t w = 0;
    if (v < 0) {
        buf[w++] = '-';
    }
    size_t nd = shortest(fabs(v), d, &exp);
    if (exp < -4 || exp >= 6) {
        /* Go's fmtE: d.ddde±XX, at least two exponent digits. */
        buf[w++] = d[0];
        if (nd > 1) {
            buf[w++] = '.';
            om_copy(buf + w, d + 1, nd - 1);
            w += nd - 1;
        }
        w += (size_t)snprintf(buf + w, 16, "e%c%02d", exp < 0 ? '-' : '+',
                              (exp < 0 ? -exp : exp) % 1000);
        return w;
    }
    return put_f(buf, w, d, nd, exp);
}

size_t om_prom_format_f(double v, char *buf)
{
    size_t len;
    if (!isfinite(v)) {
        return special(v, buf);
    }
    if (small_int(v, 1e15, buf, &len)) {
        return len;
    }
    char d[24];
    int exp;
    size_t w = 0;
    if (v < 0) {
        buf[w++] = '-';
    }
    size_t nd = shortest(fabs(v), d, &exp);
    return put_f(buf, w, d, nd, exp);
}

/* pcommon's float64AsString: like JavaScript, 'f' unless |v| < 1e-6 or >= 1e21, where 'e'
 * with the exponent unpadded ("1e-7", "1e+21"). */
static void js_number(double v, om_strbuf_t *out)
{
    char buf[OM_PROM_NUM_MAX];
    if (!isfinite(v)) {
        char g[8];
        special(v, g);
        om_strbuf_printf(out, "json: unsupported value: %s", g);
        return;
    }
    double a = fabs(v);
    if (a != 0 && (a < 1e-6 || a >= 1e21)) {
        char d[24];
        int exp;
        size_t nd = shortest(a, d, &exp);
        size_t w = 0;
        if (v < 0) {
            buf[w++] = '-';
        }
        buf[w++] = d[0];
        if (nd > 1) {
            buf[w++] = '.';
            om_copy(buf + w, d + 1, nd - 1);
            w += nd - 1;
        }
        snprintf(buf + w, 16, "e%c%d", exp < 0 ? '-' : '+', (exp < 0 ? -exp : exp) % 1000);
        om_strbuf_puts(out, buf);
        return;
    }
    om_prom_format_f(v, buf);
    om_strbuf_puts(out, buf);
}

/* ------------------------------------------------------------------------------------------ */
/* Attribute values (pcommon Value.AsString)                                                  */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void base64(const uint8_t *p, size_t n, om_strbuf_t *out)
{
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < n) {
            v |= (uint32_t)p[i + 1] << 8;
        }
        if (i + 2 < n) {
            v |= p[i + 2];
        }
        char q[4] = {b64[(v >> 18) & 63], b64[(v >> 12) & 63], b64[(v >> 6) & 63], b64[v & 63]};
        if (i + 1 >= n) {
            q[2] = '=';
        }
        if (i + 2 >= n) {
            q[3] = '=';
        }
        om_strbuf_append(out, q, 4);
    }
}

/* A JSON string as Go's encoding/json writes it (HTML-safe: <, >, & escaped too). */
static void json_string(const char *s, size_t n, om_strbuf_t *out)
{
    static const char hex[] = "0123456789abcdef";
    om_strbuf_putc(out, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') {
            char e[2] = {'\\', (char)ch};
            om_strbuf_append(out, e, 2);
        } else if (ch == '\n') {
            om_strbuf_puts(out, "\\n");
        } else if (ch == '\r') {
            om_strbuf_puts(out, "\\r");
        } else if (ch == '\t') {
            om_strbuf_puts(out, "\\t");
        } else if (ch < 0x20 || ch == '<' || ch == '>' || ch == '&') {
            char e[6] = {'\\', 'u', '0', '0', hex[ch >> 4], hex[ch & 15]};
            om_strbuf_append(out, e, 6);
        } else {
            om_strbuf_putc(out, (char)ch);
        }
    }
    om_strbuf_putc(out, '"');
}

static void json_value(const om_anyvalue_t *v, om_strbuf_t *out, int depth);

/* Go's json.Marshal of a map sorts its keys. */
static int kv_cmp(const void *a, const void *b)
{
    const om_keyvalue_t *x = *(om_keyvalue_t *const *)a, *y = *(om_keyvalue_t *const *)b;
    return strcmp(x->key != NULL ? x->key : "", y->key != NULL ? y->key : "");
}

static void json_kvlist(const om_kvlist_t *l, om_strbuf_t *out, int depth)
{
    size_t n = l != NULL ? l->n_values : 0;
    om_keyvalue_t **sorted = n > 0 ? om_malloc(n * sizeof *sorted) : NULL;
    if (n > 0 && sorted == NULL) {
        out->failed = true;
        return;
    }
    if (n > 0) {
        om_copy(sorted, l->values, n * sizeof *sorted);
        qsort(sorted, n, sizeof *sorted, kv_cmp);
    }
    om_strbuf_putc(out, '{');
    for (size_t i = 0; i < n; i++) {
        if (i > 0) {
            om_strbuf_putc(out, ',');
        }
        const char *k = sorted[i]->key != NULL ? sorted[i]->key : "";
        json_string(k, strlen(k), out);
        om_strbuf_putc(out, ':');
        json_value(sorted[i]->value, out, depth + 1);
    }
    om_strbuf_putc(out, '}');
    om_free(sorted);
}

static void json_value(const om_anyvalue_t *v, om_strbuf_t *out, int depth)
{
    if (depth > 64) {
        om_strbuf_puts(out, "null");
        return;
    }
    switch (v != NULL ? v->value_case : OM_ANYVALUE_NONE) {
    case OM_ANYVALUE_STRING:
        json_string(v->string_value, strlen(v->string_value), out);
        break;
    case OM_ANYVALUE_BOOL:
        om_strbuf_puts(out, v->bool_value ? "true" : "false");
        break;
    case OM_ANYVALUE_INT:
        om_strbuf_printf(out, "%lld", (long long)v->int_value);
        break;
    case OM_ANYVALUE_DOUBLE:
        if (isfinite(v->double_value)) {
            js_number(v->double_value, out);
        } else {
            om_strbuf_puts(out, "null"); /* json.Marshal fails; AsString writes nothing useful */
        }
        break;
    case OM_ANYVALUE_BYTES:
        om_strbuf_putc(out, '"');
        base64(v->bytes_value.data, v->bytes_value.len, out);
        om_strbuf_putc(out, '"');
        break;
    case OM_ANYVALUE_ARRAY: {
        const om_arrayvalue_t *a = v->array_value;
        om_strbuf_putc(out, '[');
        for (size_t i = 0; a != NULL && i < a->n_values; i++) {
            if (i > 0) {
                om_strbuf_putc(out, ',');
            }
            json_value(a->values[i], out, depth + 1);
        }
        om_strbuf_putc(out, ']');
        break;
    }
    case OM_ANYVALUE_KVLIST:
        json_kvlist(v->kvlist_value, out, depth);
        break;
    default:
        om_strbuf_puts(out, "null");
    }
}

void om_prom_value_string(const om_anyvalue_t *v, om_strbuf_t *out)
{
    switch (v != NULL ? v->value_case : OM_ANYVALUE_NONE) {
    case OM_ANYVALUE_STRING:
        om_strbuf_puts(out, v->string_value != NULL ? v->string_value : "");
        break;
    case OM_ANYVALUE_BOOL:
        om_strbuf_puts(out, v->bool_value ? "true" : "false");
        break;
    case OM_ANYVALUE_INT: {
        char buf[24];
        size_t n;
        if (!small_int((double)v->int_value, 1e15, buf, &n)) {
            n = (size_t)snprintf(buf, sizeof buf, "%lld", (long long)v->int_value);
        }
        om_strbuf_append(out, buf, n);
        break;
    }
    case OM_ANYVALUE_DOUBLE:
        js_number(v->double_value, out);
        break;
    case OM_ANYVALUE_BYTES:
        base64(v->bytes_value.data, v->bytes_value.len, out);
        break;
    case OM_ANYVALUE_ARRAY:
    case OM_ANYVALUE_KVLIST:
        json_value(v, out, 0);
        break;
    default:
        break; /* an empty value: "" */
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Label sets                                                                                 */

/* A label while the set is built: offsets into text (which may move as it grows). */
struct om__prom_lref {
    uint32_t name, name_len, value, value_len;
    const char *key; /* the original key, for the order of joined values (attributes) */
};

void om_prom_labels_init(om_prom_labels_t *l)
{
    memset(l, 0, sizeof *l);
    om_strbuf_init(&l->text, 0);
    om_strbuf_init(&l->scratch, 0);
}

void om_prom_labels_free(om_prom_labels_t *l)
{
    om_free(l->v);
    om_free(l->refs);
    om_strbuf_free(&l->text);
    om_strbuf_free(&l->scratch);
    memset(l, 0, sizeof *l);
}

void om_prom_labels_reset(om_prom_labels_t *l)
{
    l->n = 0;
    om_strbuf_reset(&l->text);
}

static int grow(om_prom_labels_t *l, size_t need)
{
    if (need <= l->cap_refs) {
        return 0;
    }
    size_t cap = l->cap_refs != 0 ? l->cap_refs * 2 : 16;
    while (cap < need) {
        cap *= 2;
    }
    struct om__prom_lref *r = om_realloc(l->refs, cap * sizeof *r);
    if (r == NULL) {
        return OM_ENOMEM;
    }
    l->refs = r;
    l->cap_refs = cap;
    return 0;
}

static const char *ref_name(const om_prom_labels_t *l, const struct om__prom_lref *r)
{
    return l->text.data + r->name;
}

static struct om__prom_lref *find(om_prom_labels_t *l, const char *name, size_t len)
{
    for (size_t i = 0; i < l->n; i++) {
        if (l->refs[i].name_len == len && om_same(ref_name(l, &l->refs[i]), name, len)) {
            return &l->refs[i];
        }
    }
    return NULL;
}

/* Append s to text (NUL-terminated); returns its offset. */
static uint32_t put_text(om_prom_labels_t *l, const char *s, size_t n)
{
    uint32_t off = (uint32_t)l->text.len;
    if (om_strbuf_reserve(&l->text, n + 1)) {
        om_copy(l->text.data + l->text.len, s, n);
        l->text.len += n + 1; /* with its NUL */
        l->text.data[l->text.len - 1] = '\0';
        l->text.data[l->text.len] = '\0';
    }
    return off;
}

static int add_ref(om_prom_labels_t *l, const char *name, size_t nlen, const char *value,
                   size_t vlen, const char *key)
{
    if (grow(l, l->n + 1) != 0) {
        return OM_ENOMEM;
    }
    struct om__prom_lref *r = &l->refs[l->n++];
    r->name = put_text(l, name, nlen);
    r->name_len = (uint32_t)nlen;
    r->value = put_text(l, value, vlen);
    r->value_len = (uint32_t)vlen;
    r->key = key;
    return l->text.failed ? OM_ENOMEM : 0;
}

/* Join value to r's as r;value, unless it is the same as r's value. */
static int join_value(om_prom_labels_t *l, struct om__prom_lref *r, const char *value, size_t vlen)
{
    if (r->value_len == vlen && om_same(l->text.data + r->value, value, vlen)) {
        return 0;
    }
    /* Room first: the old value is copied from text itself, which must not move meanwhile
     * (value points into scratch, not text). */
    if (!om_strbuf_reserve(&l->text, r->value_len + vlen + 2)) {
        return OM_ENOMEM;
    }
    uint32_t off = (uint32_t)l->text.len;
    om_strbuf_append(&l->text, l->text.data + r->value, r->value_len);
    om_strbuf_putc(&l->text, ';');
    om_strbuf_append(&l->text, value, vlen);
    om_strbuf_putc(&l->text, '\0');
    if (l->text.failed) {
        return OM_ENOMEM;
    }
    r->value = off;
    r->value_len = (uint32_t)(l->text.len - off - 1);
    return 0;
}

static bool key_in(om_keyvalue_t *const *kv, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++) {
        if (kv[i] != NULL && kv[i]->key != NULL && strcmp(kv[i]->key, key) == 0) {
            return true;
        }
    }
    return false;
}

/* Attributes in the order of their keys (a stable sort: duplicate keys keep request order). */
typedef struct kv_at {
    const om_keyvalue_t *kv;
    size_t idx;
} kv_at_t;

static int kv_at_cmp(const void *a, const void *b)
{
    const kv_at_t *x = a, *y = b;
    int c = strcmp(x->kv->key, y->kv->key);
    return c != 0 ? c : (x->idx < y->idx ? -1 : x->idx > y->idx);
}

static int add_one_attr(om_prom_labels_t *l, const char *prefix, const om_keyvalue_t *kv)
{
    char name[512];
    om_strbuf_reset(&l->scratch);
    if (prefix != NULL) {
        om_strbuf_puts(&l->scratch, prefix);
    }
    om_strbuf_puts(&l->scratch, kv->key);
    size_t klen = l->scratch.len;
    char *heap = NULL, *nb = name;
    if (klen + 5 > sizeof name) {
        heap = om_malloc(klen + 5);
        if (heap == NULL) {
            return OM_ENOMEM;
        }
        nb = heap;
    }
    size_t nlen = l->scratch.failed ? 0 : om_prom_label_name(l->scratch.data, klen, nb, klen + 5);
    int rc = l->scratch.failed ? OM_ENOMEM : 0;
    if (nlen > 0) {
        om_strbuf_reset(&l->scratch);
        om_prom_value_string(kv->value, &l->scratch);
        const char *val = l->scratch.failed ? "" : l->scratch.data != NULL ? l->scratch.data : "";
        size_t vlen = l->scratch.failed ? 0 : l->scratch.len;
        struct om__prom_lref *r = find(l, nb, nlen);
        rc = r != NULL ? join_value(l, r, val, vlen) : add_ref(l, nb, nlen, val, vlen, kv->key);
        rc = rc == 0 && l->scratch.failed ? OM_ENOMEM : rc;
    }
    om_free(heap);
    return rc;
}

int om_prom_labels_add_attrs(om_prom_labels_t *l, const char *prefix, om_keyvalue_t *const *kv,
                             size_t n, om_keyvalue_t *const *extra, size_t n_extra)
{
    size_t total = n + n_extra;
    if (total == 0) {
        return 0;
    }
    kv_at_t small[32];
    kv_at_t *order = total <= 32 ? small : om_malloc(total * sizeof *order);
    if (order == NULL) {
        return OM_ENOMEM;
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (kv[i] != NULL && kv[i]->key != NULL) {
            order[m] = (kv_at_t){kv[i], m};
            m++;
        }
    }
    for (size_t i = 0; i < n_extra; i++) {
        if (extra[i] != NULL && extra[i]->key != NULL && !key_in(kv, n, extra[i]->key)) {
            order[m] = (kv_at_t){extra[i], m};
            m++;
        }
    }
    /* Most points have a handful of attributes, often already in order. */
    bool sorted = true;
    for (size_t i = 1; i < m && sorted; i++) {
        sorted = strcmp(order[i - 1].kv->key, order[i].kv->key) <= 0;
    }
    if (!sorted && m <= 32) {
        /* Insertion sort: the same order as kv_at_cmp (stable by key), without qsort's
         * merge-sort setup and indirect calls for a handful of keys. */
        for (size_t i = 1; i < m; i++) {
            kv_at_t x = order[i];
            size_t j = i;
            while (j > 0 && strcmp(order[j - 1].kv->key, x.kv->key) > 0) {
                order[j] = order[j - 1];
                j--;
            }
            order[j] = x;
        }
    } else if (!sorted) {
        qsort(order, m, sizeof *order, kv_at_cmp);
    }
    int rc = 0;
    for (size_t i = 0; i < m && rc == 0; i++) {
        rc = add_one_attr(l, prefix, order[i].kv);
    }
    if (order != small) {
        om_free(order);
    }
    return rc;
}

int om_prom_labels_set(om_prom_labels_t *l, const char *name, const char *value, bool replace)
{
    size_t nlen = strlen(name), vlen = strlen(value);
    struct om__prom_lref *r = find(l, name, nlen);
    if (r == NULL) {
        return vlen == 0 ? 0 : add_ref(l, name, nlen, value, vlen, NULL);
    }
    if (!replace) {
        return 0;
    }
    if (vlen == 0) {
        *r = l->refs[--l->n];
        return 0;
    }
    r->value = put_text(l, value, vlen);
    r->value_len = (uint32_t)vlen;
    return l->text.failed ? OM_ENOMEM : 0;
}

static int lref_cmp(const om_prom_labels_t *l, const struct om__prom_lref *x,
                    const struct om__prom_lref *y)
{
    return strcmp(ref_name(l, x), ref_name(l, y));
}

void om_prom_labels_finish(om_prom_labels_t *l)
{
    /* Insertion sort: label sets are small and mostly in order already. */
    for (size_t i = 1; i < l->n; i++) {
        struct om__prom_lref r = l->refs[i];
        size_t j = i;
        while (j > 0 && lref_cmp(l, &l->refs[j - 1], &r) > 0) {
            l->refs[j] = l->refs[j - 1];
            j--;
        }
        l->refs[j] = r;
    }
    if (l->n > l->cap) {
        size_t cap = l->cap_refs;
        om_label_t *v = om_realloc(l->v, cap * sizeof *v);
        if (v == NULL) {
            l->n = l->cap; /* keep what fits; the caller sees text.failed */
            l->text.failed = true;
        } else {
            l->v = v;
            l->cap = cap;
        }
    }
    for (size_t i = 0; i < l->n; i++) {
        l->v[i] = (om_label_t){l->text.data + l->refs[i].name, l->text.data + l->refs[i].value};
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Resources                                                                                  */

static const om_anyvalue_t *res_attr(const om_resource_t *r, const char *key)
{
    for (size_t i = 0; r != NULL && i < r->n_attributes; i++) {
        const om_keyvalue_t *kv = r->attributes[i];
        if (kv != NULL && kv->key != NULL && strcmp(kv->key, key) == 0) {
            return kv->value;
        }
    }
    return NULL;
}

bool om_prom_job(const om_resource_t *r, om_strbuf_t *job)
{
    const om_anyvalue_t *name = res_attr(r, "service.name");
    if (name == NULL) {
        return false;
    }
    const om_anyvalue_t *ns = res_attr(r, "service.namespace");
    if (ns != NULL) {
        om_prom_value_string(ns, job);
        om_strbuf_putc(job, '/');
    }
    om_prom_value_string(name, job);
    return true;
}

bool om_prom_instance(const om_resource_t *r, om_strbuf_t *instance)
{
    const om_anyvalue_t *id = res_attr(r, "service.instance.id");
    if (id == NULL) {
        return false;
    }
    om_prom_value_string(id, instance);
    return true;
}

bool om_prom_identifying_attr(const char *key)
{
    return strcmp(key, "service.name") == 0 || strcmp(key, "service.namespace") == 0 ||
           strcmp(key, "service.instance.id") == 0;
}
