/* fields.c: node lookup, diagnostics, the field-table engine and the unit parsers.
 *
 * om_fields_apply() is where every component config is typed: it writes defaults, applies the
 * node's keys, and reports each problem as one diagnostic line with the value's position.
 *
 * Choices made here (otelcol decodes with yaml.v3 into map[string]any, then mapstructure):
 * - Typed fields (bool, numbers, durations, sizes) also accept quoted scalars ("8192"), a
 *   superset of what otelcol accepts; nothing valid for otelcol is rejected.
 * - Booleans: true/false and the YAML 1.1 words yes/no/on/off, each in lower, Title or UPPER
 *   case, as yaml.v3 accepts when decoding into a bool.
 * - A key present with a null value (`timeout:`) keeps the default, as mapstructure skips nil.
 * - Durations: Go's time.ParseDuration syntax, plus a bare integer meaning nanoseconds (what
 *   an unquoted YAML integer decodes to in a time.Duration). Negative durations are rejected:
 *   no otelcol setting gives them a meaning.
 * - Sizes: an integer or decimal with an optional unit B, K/KB (1000), Ki/KiB (1024), M/MB,
 *   Mi/MiB, G/GB, Gi/GiB, T/TB, Ti/TiB, case-insensitive, optionally after one space.
 * - STRMAP and STRLIST defaults are written in YAML flow style: "{a: b}", "[x, y]".
 * - OM_FF_REQUIRED is checked in every map that is present (a null value counts as present
 *   for the table's root); an absent nested section only gets its defaults. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum { PATH_LEN = 512, MSG_LEN = 1024 };

/* ------------------------------------------------------------------------------------------ */
/* Nodes and diagnostics                                                                      */

const om_node_t *om_node_get(const om_node_t *map, const char *key)
{
    if (map == NULL || map->kind != OM_NODE_MAP || key == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < map->n; i++) {
        if (map->keys[i]->str != NULL && strcmp(map->keys[i]->str, key) == 0) {
            return map->values[i];
        }
    }
    return NULL;
}

static char *vformat(const char *fmt, va_list ap) OM_PRINTF(1, 0);

static char *vformat(const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0) {
        return NULL;
    }
    char *s = om_malloc((size_t)n + 1);
    if (s != NULL) {
        vsnprintf(s, (size_t)n + 1, fmt, ap);
    }
    return s;
}

/* A diagnostic that cannot be stored for lack of memory is dropped: the caller still counts
 * it, so the config fails. */
void om_diag_add(om_diags_t *d, const om_node_t *at, const char *path, const char *fmt, ...)
{
    if (d == NULL) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    char *msg = vformat(fmt, ap);
    va_end(ap);
    if (msg == NULL) {
        return;
    }
    char pos[PATH_LEN] = "";
    if (at != NULL && at->file != NULL) {
        snprintf(pos, sizeof pos, "%s:%u:%u: ", at->file, at->line, at->col);
    }
    bool has_path = path != NULL && path[0] != '\0';
    size_t n = strlen(pos) + (has_path ? strlen(path) + 2 : 0) + strlen(msg) + 1;
    char *line = om_malloc(n);
    if (line == NULL) {
        goto out;
    }
    snprintf(line, n, "%s%s%s%s", pos, has_path ? path : "", has_path ? ": " : "", msg);
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 8;
        char **nm = om_realloc(d->msgs, cap * sizeof *nm);
        if (nm == NULL) {
            om_free(line);
            goto out;
        }
        d->msgs = nm;
        d->cap = cap;
    }
    d->msgs[d->n++] = line;
out:
    om_free(msg);
}

void om_diags_free(om_diags_t *d)
{
    if (d == NULL) {
        return;
    }
    for (size_t i = 0; i < d->n; i++) {
        om_free(d->msgs[i]);
    }
    om_free(d->msgs);
    d->msgs = NULL;
    d->n = d->cap = 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Unit parsers                                                                               */

static void set_err(om_err_t *err, int code, const char *fmt, ...) OM_PRINTF(3, 4);

static void set_err(om_err_t *err, int code, const char *fmt, ...)
{
    if (err == NULL) {
        return;
    }
    char msg[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    om_err_set(err, code, "%s", msg);
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* A decimal number "12", "1.5", ".5", "5.": integer part, fraction digits as an integer and
 * their scale (10^digits). Digits past 18 in the fraction are dropped (below any unit's
 * resolution). Returns false when there is no digit, or the integer part passes limit. */
typedef struct decimal {
    uint64_t whole, frac;
    double scale;
    bool overflow;
} decimal_t;

static bool parse_decimal(const char **pp, uint64_t limit, decimal_t *out)
{
    const char *p = *pp;
    bool digits = false;
    *out = (decimal_t){.scale = 1};
    for (; is_digit(*p); p++) {
        uint64_t dg = (uint64_t)(*p - '0');
        if (out->whole > (limit - dg) / 10) {
            out->overflow = true;
        } else {
            out->whole = out->whole * 10 + dg;
        }
        digits = true;
    }
    if (*p == '.') {
        for (p++; is_digit(*p); p++) {
            if (out->scale < 1e18) {
                out->frac = out->frac * 10 + (uint64_t)(*p - '0');
                out->scale *= 10;
            }
            digits = true;
        }
    }
    *pp = p;
    return digits;
}

/* whole * mult + frac * mult / scale, truncated, or false when it passes limit. */
static bool scale_decimal(const decimal_t *dv, uint64_t mult, uint64_t limit, uint64_t *out)
{
    if (dv->overflow || (mult != 0 && dv->whole > limit / mult)) {
        return false;
    }
    uint64_t v = dv->whole * mult;
    uint64_t f = (uint64_t)((double)dv->frac * ((double)mult / dv->scale));
    if (f > limit - v) {
        return false;
    }
    *out = v + f;
    return true;
}

typedef struct unit {
    const char *name;
    uint64_t mult;
} unit_t;

static const unit_t dur_units[] = {
    {"ns", 1},
    {"us", 1000},
    {"\xc2\xb5s", 1000}, /* U+00B5 micro sign */
    {"\xce\xbcs", 1000}, /* U+03BC Greek mu */
    {"ms", 1000000},
    {"s", 1000000000},
    {"m", UINT64_C(60000000000)},
    {"h", UINT64_C(3600000000000)},
};

static const unit_t *find_dur_unit(const char *u, size_t n)
{
    for (size_t i = 0; i < sizeof dur_units / sizeof dur_units[0]; i++) {
        if (strlen(dur_units[i].name) == n && memcmp(dur_units[i].name, u, n) == 0) {
            return &dur_units[i];
        }
    }
    return NULL;
}

static bool all_digits(const char *s)
{
    if (*s == '\0') {
        return false;
    }
    for (; *s != '\0'; s++) {
        if (!is_digit(*s)) {
            return false;
        }
    }
    return true;
}

/* One "<number><unit>" element of a duration; adds it to *total. */
static int duration_part(const char **pp, const char *s, uint64_t *total, om_err_t *err)
{
    const uint64_t max = (uint64_t)INT64_MAX;
    decimal_t dv;
    if (!parse_decimal(pp, max, &dv)) {
        set_err(err, OM_EINVAL, "invalid duration \"%.64s\"", s);
        return OM_EINVAL;
    }
    const char *u = *pp;
    while (**pp != '\0' && **pp != '.' && !is_digit(**pp)) {
        (*pp)++;
    }
    size_t un = (size_t)(*pp - u);
    if (un == 0) {
        set_err(err, OM_EINVAL, "missing unit in duration \"%.64s\"", s);
        return OM_EINVAL;
    }
    const unit_t *unit = find_dur_unit(u, un);
    if (unit == NULL) {
        set_err(err, OM_EINVAL,
                "unknown unit \"%.*s\" in duration \"%.64s\" (use ns, us, ms, "
                "s, m or h)",
                (int)(un > 16 ? 16 : un), u, s);
        return OM_EINVAL;
    }
    uint64_t v;
    if (!scale_decimal(&dv, unit->mult, max, &v) || v > max - *total) {
        set_err(err, OM_EINVAL, "duration \"%.64s\" is too large", s);
        return OM_EINVAL;
    }
    *total += v;
    return 0;
}

int om_parse_duration(const char *s, int64_t *ns, om_err_t *err)
{
    if (s == NULL) {
        s = "";
    }
    const char *p = s;
    if (*p == '+') {
        p++;
    } else if (*p == '-') {
        set_err(err, OM_EINVAL, "negative duration \"%.64s\" is not allowed", s);
        return OM_EINVAL;
    }
    if (*p == '\0') {
        set_err(err, OM_EINVAL, "invalid duration \"%.64s\"", s);
        return OM_EINVAL;
    }
    uint64_t total = 0;
    if (all_digits(p)) {
        /* A bare integer: nanoseconds, as an unquoted YAML integer in a time.Duration. */
        decimal_t dv;
        parse_decimal(&p, (uint64_t)INT64_MAX, &dv);
        if (!scale_decimal(&dv, 1, (uint64_t)INT64_MAX, &total)) {
            set_err(err, OM_EINVAL, "duration \"%.64s\" is too large", s);
            return OM_EINVAL;
        }
    }
    while (*p != '\0') {
        int rc = duration_part(&p, s, &total, err);
        if (rc != 0) {
            return rc;
        }
    }
    *ns = (int64_t)total;
    return 0;
}

static const unit_t size_units[] = {
    {"", 1},
    {"b", 1},
    {"k", 1000},
    {"kb", 1000},
    {"ki", 1024},
    {"kib", 1024},
    {"m", 1000000},
    {"mb", 1000000},
    {"mi", UINT64_C(1) << 20},
    {"mib", UINT64_C(1) << 20},
    {"g", 1000000000},
    {"gb", 1000000000},
    {"gi", UINT64_C(1) << 30},
    {"gib", UINT64_C(1) << 30},
    {"t", UINT64_C(1000000000000)},
    {"tb", UINT64_C(1000000000000)},
    {"ti", UINT64_C(1) << 40},
    {"tib", UINT64_C(1) << 40},
};

static const unit_t *find_size_unit(const char *u)
{
    size_t n = strlen(u);
    if (n > 3) {
        return NULL;
    }
    char low[4] = "";
    for (size_t i = 0; i < n; i++) {
        char c = u[i];
        low[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    low[n] = '\0';
    for (size_t i = 0; i < sizeof size_units / sizeof size_units[0]; i++) {
        if (strcmp(size_units[i].name, low) == 0) {
            return &size_units[i];
        }
    }
    return NULL;
}

int om_parse_size(const char *s, uint64_t *bytes, om_err_t *err)
{
    if (s == NULL) {
        s = "";
    }
    const char *p = s;
    if (*p == '-') {
        set_err(err, OM_EINVAL, "negative size \"%.64s\" is not allowed", s);
        return OM_EINVAL;
    }
    if (*p == '+') {
        p++;
    }
    decimal_t dv;
    if (!parse_decimal(&p, UINT64_MAX, &dv)) {
        set_err(err, OM_EINVAL, "invalid size \"%.64s\"", s);
        return OM_EINVAL;
    }
    if (*p == ' ') {
        p++;
    }
    const unit_t *unit = find_size_unit(p);
    if (unit == NULL) {
        set_err(err, OM_EINVAL,
                "unknown unit \"%.16s\" in size \"%.64s\" (use B, KB, KiB, MB, MiB, GB, GiB, TB "
                "or TiB)",
                p, s);
        return OM_EINVAL;
    }
    if (unit->mult == 1 && dv.frac != 0) {
        set_err(err, OM_EINVAL, "size \"%.64s\" is not a whole number of bytes", s);
        return OM_EINVAL;
    }
    if (!scale_decimal(&dv, unit->mult, UINT64_MAX, bytes)) {
        set_err(err, OM_EINVAL, "size \"%.64s\" is too large", s);
        return OM_EINVAL;
    }
    return 0;
}

int om_parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"true", "True", "TRUE", "yes", "Yes",
                                      "YES",  "on",   "On",   "ON"};
    static const char *const no[] = {"false", "False", "FALSE", "no", "No",
                                     "NO",    "off",   "Off",   "OFF"};
    if (s == NULL) {
        return OM_EINVAL;
    }
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        if (strcmp(s, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcmp(s, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return OM_EINVAL;
}

/* Go's net.SplitHostPort, so that messages read as otelcol's ("address x: missing port in
 * address"). On success host is s[*hs..*he) and the port text starts at *ps. */
static const char *split_host_port(const char *s, size_t *hs, size_t *he, size_t *ps)
{
    const char *colon = strrchr(s, ':');
    if (colon == NULL) {
        return "missing port in address";
    }
    size_t i = (size_t)(colon - s), j = 0, k = 0;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL) {
            return "missing ']' in address";
        }
        size_t end = (size_t)(close - s);
        if (end + 1 != i) {
            return s[end + 1] == ':' ? "too many colons in address" : "missing port in address";
        }
        *hs = 1;
        *he = end;
        j = 1;
        k = end + 1;
    } else {
        *hs = 0;
        *he = i;
        if (memchr(s, ':', i) != NULL) {
            return "too many colons in address";
        }
    }
    if (strchr(s + j, '[') != NULL) {
        return "unexpected '[' in address";
    }
    if (strchr(s + k, ']') != NULL) {
        return "unexpected ']' in address";
    }
    *ps = i + 1;
    return NULL;
}

int om_parse_endpoint(const char *s, char **host, int *port, om_err_t *err)
{
    if (s == NULL) {
        s = "";
    }
    size_t hs = 0, he = 0, ps = 0;
    const char *problem = split_host_port(s, &hs, &he, &ps);
    if (problem == NULL && s[ps] == '\0') {
        problem = "missing port in address";
    }
    if (problem != NULL) {
        if (s[0] == '\0') {
            set_err(err, OM_EINVAL, "%s", problem);
        } else {
            set_err(err, OM_EINVAL, "address %.128s: %s", s, problem);
        }
        return OM_EINVAL;
    }
    long v = 0;
    for (const char *p = s + ps; *p != '\0'; p++) {
        if (!is_digit(*p) || v > 65535) {
            v = -1;
            break;
        }
        v = v * 10 + (*p - '0');
    }
    if (v < 0 || v > 65535) {
        set_err(err, OM_EINVAL, "address %.128s: invalid port", s);
        return OM_EINVAL;
    }
    if (host != NULL) {
        *host = om_strndup(s + hs, he - hs);
        if (*host == NULL) {
            set_err(err, OM_ENOMEM, "out of memory");
            return OM_ENOMEM;
        }
    }
    if (port != NULL) {
        *port = (int)v;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Field tables                                                                               */

typedef struct actx {
    om_diags_t *d;
    int problems;
} actx_t;

static void problem(actx_t *a, const om_node_t *at, const char *path, const char *fmt, ...)
    OM_PRINTF(4, 5);

static void problem(actx_t *a, const om_node_t *at, const char *path, const char *fmt, ...)
{
    char msg[MSG_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    om_diag_add(a->d, at, path, "%s", msg);
    a->problems++;
}

static const char *node_kind_name(om_node_kind_t k)
{
    switch (k) {
    case OM_NODE_NULL:
        return "null";
    case OM_NODE_SCALAR:
        return "scalar";
    case OM_NODE_MAP:
        return "map";
    case OM_NODE_SEQ:
        return "sequence";
    }
    return "node";
}

static const char *type_desc(om_field_type_t t)
{
    switch (t) {
    case OM_F_BOOL:
        return "boolean";
    case OM_F_INT:
        return "integer";
    case OM_F_DOUBLE:
        return "number";
    case OM_F_DURATION:
        return "duration";
    case OM_F_SIZE:
        return "size";
    case OM_F_ENDPOINT:
        return "host:port endpoint";
    default:
        return "string";
    }
}

static void join_path(char *out, const char *path, const char *key)
{
    if (path != NULL && path[0] != '\0') {
        snprintf(out, PATH_LEN, "%s::%s", path, key);
    } else {
        snprintf(out, PATH_LEN, "%s", key);
    }
}

static void *field_at(void *cfg, size_t off)
{
    return (char *)cfg + off;
}

/* Append ", item" (or "item" first) to a bounded list; "..." marks a cut. */
static void list_append(char *buf, size_t cap, const char *item)
{
    size_t len = strlen(buf);
    if (len + 4 >= cap) {
        return;
    }
    int n = snprintf(buf + len, cap - len, "%s%s", len > 0 ? ", " : "", item);
    if (n < 0 || (size_t)n >= cap - len) {
        snprintf(buf + cap - 4, 4, "...");
    }
}

/* Go's time.Duration.String(), for messages: "0s", "1.5ms", "1m30s", "1h0m0s". */
static void fmt_frac(char *buf, size_t n, uint64_t v, uint64_t unit, int digits, const char *suffix)
{
    uint64_t w = v / unit, f = v % unit;
    if (f == 0) {
        snprintf(buf, n, "%" PRIu64 "%s", w, suffix);
        return;
    }
    char fb[24];
    snprintf(fb, sizeof fb, "%0*" PRIu64, digits, f);
    size_t fl = strlen(fb);
    while (fl > 0 && fb[fl - 1] == '0') {
        fb[--fl] = '\0';
    }
    snprintf(buf, n, "%" PRIu64 ".%s%s", w, fb, suffix);
}

static void fmt_duration(int64_t d, char *buf, size_t n)
{
    if (d <= 0) {
        snprintf(buf, n, d == 0 ? "0s" : "%" PRId64 "ns", d);
        return;
    }
    uint64_t u = (uint64_t)d;
    if (u < 1000) {
        snprintf(buf, n, "%" PRIu64 "ns", u);
    } else if (u < 1000000) {
        fmt_frac(buf, n, u, 1000, 3, "\xc2\xb5s");
    } else if (u < 1000000000) {
        fmt_frac(buf, n, u, 1000000, 6, "ms");
    } else {
        uint64_t h = u / UINT64_C(3600000000000), m = u / UINT64_C(60000000000) % 60;
        char s[24];
        fmt_frac(s, sizeof s, u % UINT64_C(60000000000), 1000000000, 9, "s");
        if (h > 0) {
            snprintf(buf, n, "%" PRIu64 "h%" PRIu64 "m%s", h, m, s);
        } else if (m > 0) {
            snprintf(buf, n, "%" PRIu64 "m%s", m, s);
        } else {
            snprintf(buf, n, "%s", s);
        }
    }
}

static void fmt_bound(const om_field_t *f, double v, char *buf, size_t n)
{
    if (f->type == OM_F_DURATION) {
        fmt_duration(v >= 9.2e18 ? INT64_MAX : (int64_t)v, buf, n);
    } else if (f->type == OM_F_DOUBLE) {
        snprintf(buf, n, "%g", v);
    } else {
        snprintf(buf, n, "%.0f", v);
    }
}

/* Reports and returns true when the field has bounds and v is outside them. */
static bool out_of_bounds(actx_t *a, const om_field_t *f, double v, const char *s,
                          const om_node_t *at, const char *path)
{
    if (!(f->min < f->max) || (v >= f->min && v <= f->max)) {
        return false;
    }
    char lo[64], hi[64];
    fmt_bound(f, f->min, lo, sizeof lo);
    fmt_bound(f, f->max, hi, sizeof hi);
    problem(a, at, path, "\"%.64s\" is out of range [%s, %s]", s, lo, hi);
    return true;
}

/* Decimal or 0x hex, optional sign. *range tells "too large" from "not a number". */
static bool parse_int(const char *s, int64_t *out, bool *range)
{
    const char *p = s;
    bool neg = *p == '-';
    *range = false;
    if (*p == '+' || *p == '-') {
        p++;
    }
    int base = 10;
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        base = 16;
        p += 2;
    }
    bool hex = (*p >= 'a' && *p <= 'f') || (*p >= 'A' && *p <= 'F');
    if (!is_digit(*p) && !(base == 16 && hex)) {
        return false;
    }
    errno = 0;
    char *end = NULL;
    unsigned long long v = strtoull(p, &end, base);
    if (*end != '\0') {
        return false;
    }
    uint64_t lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    if (errno == ERANGE || v > lim) {
        *range = true;
        return false;
    }
    *out = neg ? (v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v) : (int64_t)v;
    return true;
}

static void apply_int(actx_t *a, const om_field_t *f, int64_t *p, const char *s,
                      const om_node_t *at, const char *path)
{
    int64_t v;
    bool range;
    if (!parse_int(s, &v, &range)) {
        problem(a, at, path,
                range ? "\"%.64s\" is out of range for a 64-bit integer"
                      : "\"%.64s\" is not an integer",
                s);
        return;
    }
    if (!out_of_bounds(a, f, (double)v, s, at, path)) {
        *p = v;
    }
}

static void apply_double(actx_t *a, const om_field_t *f, double *p, const char *s,
                         const om_node_t *at, const char *path)
{
    char *end = NULL;
    bool start_ok = is_digit(s[0]) || s[0] == '-' || s[0] == '+' || s[0] == '.';
    double v = start_ok ? strtod(s, &end) : 0;
    if (!start_ok || end == s || *end != '\0' || !isfinite(v)) {
        problem(a, at, path, "\"%.64s\" is not a number", s);
        return;
    }
    if (!out_of_bounds(a, f, v, s, at, path)) {
        *p = v;
    }
}

static void apply_enum(actx_t *a, const om_field_t *f, int *p, const char *s, const om_node_t *at,
                       const char *path)
{
    char list[MSG_LEN] = "";
    /* Case-insensitive, as otelcol's enum-like settings (verbosity: Detailed, level: INFO). */
    for (int i = 0; f->choices != NULL && f->choices[i] != NULL; i++) {
        if (strcasecmp(f->choices[i], s) == 0) {
            *p = i;
            return;
        }
        list_append(list, sizeof list, f->choices[i]);
    }
    problem(a, at, path, "unknown value \"%.64s\" (valid values: [%s])", s, list);
}

static void set_string(actx_t *a, char **slot, const char *s, const om_node_t *at, const char *path)
{
    char *dup = om_strdup(s);
    if (dup == NULL) {
        problem(a, at, path, "out of memory");
        return;
    }
    om_free(*slot);
    *slot = dup;
}

static void apply_unit(actx_t *a, const om_field_t *f, void *p, const char *s, const om_node_t *at,
                       const char *path)
{
    om_err_t err = {0};
    if (f->type == OM_F_DURATION) {
        int64_t v;
        if (om_parse_duration(s, &v, &err) != 0) {
            problem(a, at, path, "%s", err.msg);
        } else if (!out_of_bounds(a, f, (double)v, s, at, path)) {
            *(int64_t *)p = v;
        }
        return;
    }
    if (f->type == OM_F_SIZE) {
        uint64_t v;
        if (om_parse_size(s, &v, &err) != 0) {
            problem(a, at, path, "%s", err.msg);
        } else if (!out_of_bounds(a, f, (double)v, s, at, path)) {
            *(uint64_t *)p = v;
        }
        return;
    }
    char *host = NULL;
    if (om_parse_endpoint(s, &host, NULL, &err) != 0) {
        problem(a, at, path, "%s", err.msg);
        return;
    }
    om_free(host);
    set_string(a, (char **)p, s, at, path);
}

/* One scalar value (from YAML or a default) into a field of a scalar type. */
static void apply_scalar(actx_t *a, const om_field_t *f, void *cfg, const char *s,
                         const om_node_t *at, const char *path)
{
    void *p = field_at(cfg, f->offset);
    switch (f->type) {
    case OM_F_BOOL:
        if (om_parse_bool(s, (bool *)p) != 0) {
            problem(a, at, path, "\"%.64s\" is not a boolean (use true or false)", s);
        }
        break;
    case OM_F_INT:
        apply_int(a, f, (int64_t *)p, s, at, path);
        break;
    case OM_F_DOUBLE:
        apply_double(a, f, (double *)p, s, at, path);
        break;
    case OM_F_DURATION:
    case OM_F_SIZE:
    case OM_F_ENDPOINT:
        apply_unit(a, f, p, s, at, path);
        break;
    case OM_F_STRING:
        set_string(a, (char **)p, s, at, path);
        break;
    case OM_F_ENUM:
        apply_enum(a, f, (int *)p, s, at, path);
        break;
    default:
        break;
    }
}

static void strmap_clear(om_strmap_t *m)
{
    for (size_t i = 0; i < m->n; i++) {
        om_free(m->keys[i]);
        om_free(m->values[i]);
    }
    om_free(m->keys);
    om_free(m->values);
    *m = (om_strmap_t){0};
}

static void strlist_clear(om_strlist_t *l)
{
    for (size_t i = 0; i < l->n; i++) {
        om_free(l->items[i]);
    }
    om_free(l->items);
    *l = (om_strlist_t){0};
}

/* A null item or value reads as "" (a header with no value). */
static const char *scalar_text(const om_node_t *v)
{
    return v->kind == OM_NODE_SCALAR && v->str != NULL ? v->str : "";
}

static void apply_strmap(actx_t *a, om_strmap_t *m, const om_node_t *val, const char *path)
{
    if (val->kind != OM_NODE_MAP) {
        problem(a, val, path, "expected a map of strings, got a %s", node_kind_name(val->kind));
        return;
    }
    om_strmap_t nm = {0};
    nm.keys = om_calloc(val->n + 1, sizeof *nm.keys);
    nm.values = om_calloc(val->n + 1, sizeof *nm.values);
    if (nm.keys == NULL || nm.values == NULL) {
        problem(a, val, path, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < val->n; i++) {
        const om_node_t *v = val->values[i];
        if (v->kind == OM_NODE_MAP || v->kind == OM_NODE_SEQ) {
            char sub[PATH_LEN];
            join_path(sub, path, val->keys[i]->str);
            problem(a, v, sub, "expected a string, got a %s", node_kind_name(v->kind));
            continue;
        }
        char *k = om_strdup(val->keys[i]->str), *s = om_strdup(scalar_text(v));
        if (k == NULL || s == NULL) {
            om_free(k);
            om_free(s);
            problem(a, v, path, "out of memory");
            continue;
        }
        nm.keys[nm.n] = k;
        nm.values[nm.n++] = s;
    }
    strmap_clear(m);
    *m = nm;
    nm = (om_strmap_t){0};
out:
    strmap_clear(&nm);
}

static void apply_strlist(actx_t *a, om_strlist_t *l, const om_node_t *val, const char *path)
{
    if (val->kind != OM_NODE_SEQ) {
        problem(a, val, path, "expected a sequence of strings, got a %s",
                node_kind_name(val->kind));
        return;
    }
    om_strlist_t nl = {0};
    nl.items = om_calloc(val->n + 1, sizeof *nl.items);
    if (nl.items == NULL) {
        problem(a, val, path, "out of memory");
        return;
    }
    for (size_t i = 0; i < val->n; i++) {
        const om_node_t *v = val->values[i];
        if (v->kind == OM_NODE_MAP || v->kind == OM_NODE_SEQ) {
            char sub[PATH_LEN];
            snprintf(sub, sizeof sub, "%s[%zu]", path, i);
            problem(a, v, sub, "expected a string, got a %s", node_kind_name(v->kind));
            continue;
        }
        char *s = om_strdup(scalar_text(v));
        if (s == NULL) {
            problem(a, v, path, "out of memory");
            continue;
        }
        nl.items[nl.n++] = s;
    }
    strlist_clear(l);
    *l = nl;
}

static void apply_map(actx_t *a, const om_field_t *fields, void *cfg, const om_node_t *node,
                      const char *path);

static void node_free(om_node_t *n)
{
    if (n == NULL) {
        return;
    }
    for (size_t i = 0; i < n->n; i++) {
        if (n->kind == OM_NODE_MAP) {
            node_free(n->keys[i]);
        }
        node_free(n->values[i]);
    }
    om_free(n->keys);
    om_free(n->values);
    om_free(n->str);
    om_free((char *)n->file);
    om_free(n);
}

/* A deep copy of n with its own strings (file names included: the config the copy came from
 * may be freed first). NULL when out of memory. Recursion is bounded by the YAML parser's
 * nesting limit. */
static om_node_t *node_copy(const om_node_t *n)
{
    om_node_t *c = om_calloc(1, sizeof *c);
    if (c == NULL) {
        return NULL;
    }
    *c = (om_node_t){.kind = n->kind, .line = n->line, .col = n->col, .quoted = n->quoted};
    bool ok = (n->file == NULL || (c->file = om_strdup(n->file)) != NULL) &&
              (n->str == NULL || (c->str = om_strdup(n->str)) != NULL);
    if (ok && n->n > 0) {
        c->values = om_calloc(n->n, sizeof *c->values);
        c->keys = n->kind == OM_NODE_MAP ? om_calloc(n->n, sizeof *c->keys) : NULL;
        ok = c->values != NULL && (n->kind != OM_NODE_MAP || c->keys != NULL);
    }
    for (size_t i = 0; ok && i < n->n; i++) {
        c->n = i + 1;
        c->values[i] = node_copy(n->values[i]);
        if (n->kind == OM_NODE_MAP) {
            c->keys[i] = node_copy(n->keys[i]);
            ok = c->keys[i] != NULL;
        }
        ok = ok && c->values[i] != NULL;
    }
    if (!ok) {
        node_free(c);
        return NULL;
    }
    return c;
}

static void apply_node(actx_t *a, om_node_t **slot, const om_node_t *val, const char *path)
{
    node_free(*slot);
    *slot = NULL;
    if (val->kind == OM_NODE_NULL) {
        return;
    }
    *slot = node_copy(val);
    if (*slot == NULL) {
        problem(a, val, path, "out of memory");
    }
}

static void set_defaults(actx_t *a, const om_field_t *fields, void *cfg, const char *path);

/* ---- OM_F_ANYVALUE: YAML typed as yaml.v3 types a plain scalar, then pcommon's FromRaw ---- */

static bool yaml_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"true", "True", "TRUE"};
    static const char *const no[] = {"false", "False", "FALSE"};
    for (size_t i = 0; i < 3; i++) {
        if (strcmp(s, yes[i]) == 0 || strcmp(s, no[i]) == 0) {
            *out = strcmp(s, yes[i]) == 0;
            return true;
        }
    }
    return false;
}

/* Go's strconv.ParseUint(s, base 0) on s without sign and without '_': 0x, 0o, 0b and a
 * leading 0 (octal) choose the base. */
static bool go_parse_uint(const char *s, uint64_t *out)
{
    int base = 10;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        s += 2;
    } else if (s[0] == '0' && (s[1] == 'o' || s[1] == 'O')) {
        base = 8;
        s += 2;
    } else if (s[0] == '0' && (s[1] == 'b' || s[1] == 'B')) {
        base = 2;
        s += 2;
    } else if (s[0] == '0' && s[1] != '\0') {
        base = 8;
        s += 1;
    }
    if (s[0] == '\0') {
        return false;
    }
    uint64_t v = 0;
    for (; *s != '\0'; s++) {
        int d = is_digit(*s)               ? *s - '0'
                : (*s >= 'a' && *s <= 'f') ? *s - 'a' + 10
                : (*s >= 'A' && *s <= 'F') ? *s - 'A' + 10
                                           : 99;
        if (d >= base || v > (UINT64_MAX - (uint64_t)d) / (uint64_t)base) {
            return false;
        }
        v = v * (uint64_t)base + (uint64_t)d;
    }
    *out = v;
    return true;
}

/* yaml.v3's int resolution: ParseInt(s without '_', 0, 64), else ParseUint (what pcommon's
 * FromRaw then wraps into an int64). */
static bool yaml_int(const char *s, int64_t *out)
{
    char plain[72];
    size_t n = 0;
    for (const char *p = s; *p != '\0'; p++) {
        if (*p != '_') {
            if (n + 1 >= sizeof plain) {
                return false;
            }
            plain[n++] = *p;
        }
    }
    plain[n] = '\0';
    bool neg = plain[0] == '-', signed_ = plain[0] == '-' || plain[0] == '+';
    uint64_t v;
    if (!go_parse_uint(plain + (signed_ ? 1 : 0), &v)) {
        return false;
    }
    if (signed_ && v > (neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX)) {
        return false; /* ParseInt fails, and ParseUint takes no sign */
    }
    *out = neg ? (int64_t)((uint64_t)0 - v) : (int64_t)v;
    return true;
}

/* yaml.v3's floats: [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? (after removing '_'
 * for that check, as yaml.v3 does), the .inf and .nan words, and ParseFloat's forms of a
 * plain word starting with '.' (".5"). A value beyond a double's range stays a string. */
static bool yaml_float(const char *s, double *out)
{
    static const char *const words[] = {".inf",  ".Inf",  ".INF",  "+.inf", "+.Inf", "+.INF",
                                        "-.inf", "-.Inf", "-.INF", ".nan",  ".NaN",  ".NAN"};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        if (strcmp(s, words[i]) == 0) {
            *out = i >= 9 ? NAN : i >= 6 ? -INFINITY : INFINITY;
            return true;
        }
    }
    char plain[128];
    size_t n = 0;
    for (const char *p = s; *p != '\0'; p++) {
        if (*p != '_') {
            if (n + 1 >= sizeof plain) {
                return false;
            }
            plain[n++] = *p;
        }
    }
    plain[n] = '\0';
    const char *p = plain + (plain[0] == '-' || plain[0] == '+');
    size_t int_digits = 0, frac_digits = 0;
    for (; is_digit(*p); p++) {
        int_digits++;
    }
    if (*p == '.') {
        for (p++; is_digit(*p); p++) {
            frac_digits++;
        }
    }
    if (int_digits == 0 && frac_digits == 0) {
        return false;
    }
    if (*p == 'e' || *p == 'E') {
        p += (p[1] == '-' || p[1] == '+') ? 2 : 1;
        if (!is_digit(*p)) {
            return false;
        }
        while (is_digit(*p)) {
            p++;
        }
    }
    if (*p != '\0') {
        return false;
    }
    double v = strtod(plain, NULL);
    if (isinf(v)) {
        return false;
    }
    *out = v;
    return true;
}

static om_anyvalue_t *new_anyvalue(void)
{
    om_anyvalue_t *v = om_malloc(sizeof *v);
    if (v != NULL) {
        om_anyvalue_t init = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
        *v = init;
    }
    return v;
}

/* A scalar's value. NULL only when out of memory. */
static om_anyvalue_t *scalar_value(const om_node_t *n)
{
    om_anyvalue_t *v = new_anyvalue();
    if (v == NULL) {
        return NULL;
    }
    const char *s = n->str != NULL ? n->str : "";
    bool b;
    int64_t i;
    double d;
    if (!n->quoted && yaml_bool(s, &b)) {
        v->value_case = OM_ANYVALUE_BOOL;
        v->bool_value = b;
    } else if (!n->quoted && yaml_int(s, &i)) {
        v->value_case = OM_ANYVALUE_INT;
        v->int_value = i;
    } else if (!n->quoted && yaml_float(s, &d)) {
        v->value_case = OM_ANYVALUE_DOUBLE;
        v->double_value = d;
    } else {
        v->value_case = OM_ANYVALUE_STRING;
        v->string_value = om_strdup(s);
        if (v->string_value == NULL) {
            om_free(v);
            return NULL;
        }
    }
    return v;
}

static om_anyvalue_t *node_value(const om_node_t *n);

static om_anyvalue_t *seq_value(const om_node_t *n)
{
    om_anyvalue_t *v = new_anyvalue();
    om_arrayvalue_t *arr = om_malloc(sizeof *arr);
    om_anyvalue_t **vals = om_calloc(n->n + 1, sizeof *vals);
    if (v == NULL || arr == NULL || vals == NULL) {
        om_free(v);
        om_free(arr);
        om_free(vals);
        return NULL;
    }
    om_arrayvalue_t ainit = OPENTELEMETRY__PROTO__COMMON__V1__ARRAY_VALUE__INIT;
    *arr = ainit;
    arr->values = vals;
    v->value_case = OM_ANYVALUE_ARRAY;
    v->array_value = arr;
    for (size_t i = 0; i < n->n; i++) {
        vals[i] = node_value(n->values[i]);
        if (vals[i] == NULL) {
            om_anyvalue_free(v);
            return NULL;
        }
        arr->n_values = i + 1;
    }
    return v;
}

static om_anyvalue_t *map_value(const om_node_t *n)
{
    om_anyvalue_t *v = new_anyvalue();
    om_kvlist_t *l = om_malloc(sizeof *l);
    om_keyvalue_t **kvs = om_calloc(n->n + 1, sizeof *kvs);
    if (v == NULL || l == NULL || kvs == NULL) {
        om_free(v);
        om_free(l);
        om_free(kvs);
        return NULL;
    }
    om_kvlist_t linit = OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE_LIST__INIT;
    *l = linit;
    l->values = kvs;
    v->value_case = OM_ANYVALUE_KVLIST;
    v->kvlist_value = l;
    for (size_t i = 0; i < n->n; i++) {
        om_keyvalue_t *kv = om_malloc(sizeof *kv);
        if (kv == NULL) {
            om_anyvalue_free(v);
            return NULL;
        }
        om_keyvalue_t kinit = OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT;
        *kv = kinit;
        kvs[i] = kv;
        l->n_values = i + 1;
        kv->key = om_strdup(n->keys[i]->str != NULL ? n->keys[i]->str : "");
        kv->value = node_value(n->values[i]);
        if (kv->key == NULL || kv->value == NULL) {
            om_anyvalue_free(v);
            return NULL;
        }
    }
    return v;
}

/* Any node as a value; a null inside a map or sequence is an unset value. NULL only when out
 * of memory. Recursion is bounded by the config loader's nesting limit. */
static om_anyvalue_t *node_value(const om_node_t *n)
{
    switch (n->kind) {
    case OM_NODE_SCALAR:
        return scalar_value(n);
    case OM_NODE_SEQ:
        return seq_value(n);
    case OM_NODE_MAP:
        return map_value(n);
    default:
        return new_anyvalue();
    }
}

static void apply_anyvalue(actx_t *a, om_anyvalue_t **slot, const om_node_t *val, const char *path)
{
    om_anyvalue_free(*slot);
    *slot = NULL;
    if (val->kind == OM_NODE_NULL) {
        return; /* as nil: no value */
    }
    *slot = node_value(val);
    if (*slot == NULL) {
        problem(a, val, path, "out of memory");
    }
}

/* ---- OM_F_SECLIST ---- */

static void seclist_clear(const om_field_t *f, om_seclist_t *l)
{
    for (size_t i = 0; i < l->n; i++) {
        om_fields_free(f->fields, (char *)l->items + i * f->elem_size);
    }
    om_free(l->items);
    *l = (om_seclist_t){0};
}

static void apply_seclist(actx_t *a, const om_field_t *f, om_seclist_t *l, const om_node_t *val,
                          const char *path)
{
    if (val->kind != OM_NODE_SEQ) {
        problem(a, val, path, "expected a sequence of maps, got a %s", node_kind_name(val->kind));
        return;
    }
    seclist_clear(f, l);
    if (val->n == 0) {
        return;
    }
    l->items = om_calloc(val->n, f->elem_size);
    if (l->items == NULL) {
        problem(a, val, path, "out of memory");
        return;
    }
    for (size_t i = 0; i < val->n; i++) {
        char sub[PATH_LEN];
        snprintf(sub, sizeof sub, "%s[%zu]", path, i);
        void *elem = (char *)l->items + i * f->elem_size;
        l->n = i + 1;
        set_defaults(a, f->fields, elem, sub);
        if (val->values[i]->kind != OM_NODE_MAP) {
            problem(a, val->values[i], sub, "expected a map, got a %s",
                    node_kind_name(val->values[i]->kind));
            continue;
        }
        apply_map(a, f->fields, elem, val->values[i], sub);
    }
}

/* A value that asks for nothing: null, an empty map or list, "", false, or a zero number or
 * duration. A refused key with such a value is accepted, since it turns nothing on. */
static bool asks_nothing(const om_node_t *v)
{
    if (v->kind == OM_NODE_NULL) {
        return true;
    }
    if (v->kind != OM_NODE_SCALAR) {
        return v->n == 0;
    }
    bool off = false;
    if (v->str[0] == '\0' || (om_parse_bool(v->str, &off) == 0 && !off)) {
        return true;
    }
    int64_t ns = -1;
    om_err_t err = {0};
    return om_parse_duration(v->str, &ns, &err) == 0 && ns == 0;
}

/* A key that is present: val is its value node (never NULL). */
static void apply_value(actx_t *a, const om_field_t *f, void *cfg, const om_node_t *val,
                        const char *path)
{
    void *p = field_at(cfg, f->offset);
    if (f->type == OM_F_IGNORED) {
        OM_LOG(OM_LOG_WARN, "%s is accepted but not implemented by otelmon; ignored", path);
        return;
    }
    if (f->type == OM_F_REFUSED) {
        if (!asks_nothing(val)) {
            problem(a, val, path, "not supported by otelmon: %s",
                    f->help != NULL ? f->help : "remove this setting");
        }
        return;
    }
    if (f->type == OM_F_SECTION) {
        if (f->flags & OM_FF_PRESENCE) {
            *(bool *)field_at(cfg, f->present_offset) = true;
        }
        if (val->kind == OM_NODE_MAP || val->kind == OM_NODE_NULL) {
            apply_map(a, f->fields, p, val, path);
        } else {
            problem(a, val, path, "expected a map, got a %s", node_kind_name(val->kind));
        }
        return;
    }
    if (f->type == OM_F_NODE) {
        apply_node(a, (om_node_t **)p, val, path);
        return;
    }
    if (val->kind == OM_NODE_NULL) {
        return; /* `key:` with no value keeps the default, as mapstructure skips nil */
    }
    if (f->type == OM_F_ANYVALUE) {
        apply_anyvalue(a, (om_anyvalue_t **)p, val, path);
    } else if (f->type == OM_F_SECLIST) {
        apply_seclist(a, f, (om_seclist_t *)p, val, path);
    } else if (f->type == OM_F_STRMAP) {
        apply_strmap(a, (om_strmap_t *)p, val, path);
    } else if (f->type == OM_F_STRLIST) {
        apply_strlist(a, (om_strlist_t *)p, val, path);
    } else if (val->kind != OM_NODE_SCALAR) {
        problem(a, val, path, "expected a %s, got a %s", type_desc(f->type),
                node_kind_name(val->kind));
    } else {
        apply_scalar(a, f, cfg, val->str, val, path);
    }
}

static const om_field_t *find_field(const om_field_t *fields, const char *key)
{
    for (const om_field_t *f = fields; f != NULL && f->key != NULL; f++) {
        if (strcmp(f->key, key) == 0) {
            return f;
        }
    }
    return NULL;
}

static void check_required(actx_t *a, const om_field_t *fields, const om_node_t *node,
                           const char *path)
{
    for (const om_field_t *f = fields; f != NULL && f->key != NULL; f++) {
        if (!(f->flags & OM_FF_REQUIRED)) {
            continue;
        }
        const om_node_t *v = om_node_get(node, f->key);
        bool present = v != NULL && (v->kind != OM_NODE_NULL || f->type == OM_F_SECTION ||
                                     f->type == OM_F_IGNORED || f->type == OM_F_REFUSED);
        if (!present) {
            problem(a, node, path, "missing required key \"%s\"", f->key);
        }
    }
}

static void apply_map(actx_t *a, const om_field_t *fields, void *cfg, const om_node_t *node,
                      const char *path)
{
    if (node != NULL && node->kind != OM_NODE_NULL && node->kind != OM_NODE_MAP) {
        problem(a, node, path, "expected a map, got a %s", node_kind_name(node->kind));
        return;
    }
    char bad[MSG_LEN] = "";
    const om_node_t *first_bad = NULL;
    for (size_t i = 0; node != NULL && node->kind == OM_NODE_MAP && i < node->n; i++) {
        const om_node_t *key = node->keys[i];
        const om_field_t *f = find_field(fields, key->str);
        if (f == NULL) {
            list_append(bad, sizeof bad, key->str);
            first_bad = first_bad != NULL ? first_bad : key;
            continue;
        }
        char sub[PATH_LEN];
        join_path(sub, path, key->str);
        apply_value(a, f, cfg, node->values[i], sub);
    }
    if (first_bad != NULL) {
        /* otelcol's (mapstructure's) wording, which users grep for. */
        problem(a, first_bad, NULL, "'%s' has invalid keys: %s", path != NULL ? path : "", bad);
    }
    check_required(a, fields, node, path);
}

/* STRMAP and STRLIST defaults are YAML flow text: parse them as the value of a one-key map. */
static void default_from_yaml(actx_t *a, const om_field_t *f, void *cfg, const char *path)
{
    size_t n = strlen(f->def) + 4;
    char *text = om_malloc(n);
    om_config_t *c = NULL;
    om_diags_t dd = {0};
    if (text == NULL) {
        problem(a, NULL, path, "out of memory");
        goto out;
    }
    snprintf(text, n, "v: %s", f->def);
    const om_node_t *v = NULL;
    int rc = om_config_load_string("<default>", text, n - 1, &c, &dd);
    if (rc == 0) {
        v = om_node_get(c->root, "v");
    } else if (rc == OM_ENOMEM) {
        problem(a, NULL, path, "out of memory");
        goto out;
    }
    if (v == NULL) {
        problem(a, NULL, path, "invalid default \"%.64s\"", f->def);
        goto out;
    }
    apply_value(a, f, cfg, v, path);
out:
    om_config_free(c);
    om_diags_free(&dd);
    om_free(text);
}

static void zero_field(const om_field_t *f, void *p)
{
    switch (f->type) {
    case OM_F_BOOL:
        *(bool *)p = false;
        break;
    case OM_F_INT:
    case OM_F_DURATION:
        *(int64_t *)p = 0;
        break;
    case OM_F_DOUBLE:
        *(double *)p = 0;
        break;
    case OM_F_SIZE:
        *(uint64_t *)p = 0;
        break;
    case OM_F_ENUM:
        *(int *)p = 0;
        break;
    case OM_F_STRING:
    case OM_F_ENDPOINT:
        om_free(*(char **)p);
        *(char **)p = NULL;
        break;
    case OM_F_STRMAP:
        strmap_clear((om_strmap_t *)p);
        break;
    case OM_F_STRLIST:
        strlist_clear((om_strlist_t *)p);
        break;
    case OM_F_NODE:
        node_free(*(om_node_t **)p);
        *(om_node_t **)p = NULL;
        break;
    case OM_F_SECLIST:
        seclist_clear(f, (om_seclist_t *)p);
        break;
    case OM_F_ANYVALUE:
        om_anyvalue_free(*(om_anyvalue_t **)p);
        *(om_anyvalue_t **)p = NULL;
        break;
    default:
        break;
    }
}

static void set_defaults(actx_t *a, const om_field_t *fields, void *cfg, const char *path)
{
    for (const om_field_t *f = fields; f != NULL && f->key != NULL; f++) {
        char sub[PATH_LEN];
        join_path(sub, path, f->key);
        void *p = field_at(cfg, f->offset);
        if (f->type == OM_F_IGNORED || f->type == OM_F_REFUSED) {
            continue;
        }
        if (f->type == OM_F_SECTION) {
            if (f->flags & OM_FF_PRESENCE) {
                *(bool *)field_at(cfg, f->present_offset) = false;
            }
            set_defaults(a, f->fields, p, sub);
            continue;
        }
        zero_field(f, p);
        if (f->def == NULL || f->type == OM_F_SECLIST || f->type == OM_F_ANYVALUE) {
            continue;
        }
        if (f->type == OM_F_STRMAP || f->type == OM_F_STRLIST || f->type == OM_F_NODE) {
            default_from_yaml(a, f, cfg, sub);
        } else {
            apply_scalar(a, f, cfg, f->def, NULL, sub);
        }
    }
}

int om_fields_apply(const om_field_t *fields, void *cfg, const om_node_t *node, const char *path,
                    om_diags_t *d)
{
    if (fields == NULL || cfg == NULL) {
        return 0;
    }
    actx_t a = {.d = d};
    set_defaults(&a, fields, cfg, path);
    apply_map(&a, fields, cfg, node, path);
    return a.problems;
}

void om_fields_free(const om_field_t *fields, void *cfg)
{
    if (fields == NULL || cfg == NULL) {
        return;
    }
    for (const om_field_t *f = fields; f->key != NULL; f++) {
        void *p = field_at(cfg, f->offset);
        if (f->type == OM_F_SECTION) {
            om_fields_free(f->fields, p);
        } else if (f->type == OM_F_STRING || f->type == OM_F_ENDPOINT || f->type == OM_F_STRMAP ||
                   f->type == OM_F_STRLIST || f->type == OM_F_NODE || f->type == OM_F_SECLIST ||
                   f->type == OM_F_ANYVALUE) {
            zero_field(f, p);
        }
    }
}
