/* prom_text.c: the Prometheus exposition writer: text format 0.0.4 and OpenMetrics 1.0, for
 * every component that serves metrics to a scraper (the `prometheus` exporter, the internal
 * telemetry endpoint).
 *
 * It writes what prometheus/common's expfmt writes for the same families (text_create.go,
 * openmetrics_create.go), so that a scrape of OtelMon reads as a scrape of otelcol:
 *   - text: "# HELP name help" (help escapes \ and newline), "# TYPE name type", then
 *     name{labels} value [timestamp_ms]; label values escape \, " and newline; numbers as Go's
 *     strconv 'g' ("1e+06", "+Inf", "NaN");
 *   - OpenMetrics: the same lines, except that a counter family is named without _total in
 *     HELP and TYPE (its samples keep _total), HELP escapes " too, timestamps are seconds,
 *     exemplars follow a sample as " # {labels} value [timestamp]", and "# EOF" ends it.
 * Callers keep families together (each family's samples follow its header), as both formats
 * require. Pure functions: any thread. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "om.h"

/* Escapes \, newline and (quote) " into out. Runs without special bytes are copied at once. */
static void escape(om_strbuf_t *out, const char *s, size_t n, bool quote)
{
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        const char *e = ch == '\\'           ? "\\\\"
                        : ch == '\n'         ? "\\n"
                        : ch == '"' && quote ? "\\\""
                                             : NULL;
        if (e == NULL) {
            continue;
        }
        om_strbuf_append(out, s + run, i - run);
        om_strbuf_append(out, e, 2);
        run = i + 1;
    }
    om_strbuf_append(out, s + run, n - run);
}

void om_prom_render_labels(const om_label_t *l, size_t n, om_strbuf_t *out)
{
    for (size_t i = 0; i < n; i++) {
        if (i > 0) {
            om_strbuf_putc(out, ',');
        }
        om_strbuf_puts(out, l[i].key);
        om_strbuf_append(out, "=\"", 2);
        escape(out, l[i].value, strlen(l[i].value), true);
        om_strbuf_putc(out, '"');
    }
}

static const char *type_name(om_prom_type_t t)
{
    switch (t) {
    case OM_PROM_COUNTER:
        return "counter";
    case OM_PROM_GAUGE:
        return "gauge";
    case OM_PROM_HISTOGRAM:
        return "histogram";
    case OM_PROM_SUMMARY:
        return "summary";
    default:
        return "untyped";
    }
}

void om_prom_write_family(om_strbuf_t *out, om_prom_format_t f, const char *name,
                          om_prom_type_t type, const char *help)
{
    size_t nlen = strlen(name);
    bool om = f == OM_PROM_FMT_OPENMETRICS;
    /* OpenMetrics names a counter's family without the _total its samples carry. */
    if (om && type == OM_PROM_COUNTER && nlen > 6 && strcmp(name + nlen - 6, "_total") == 0) {
        nlen -= 6;
    }
    if (help != NULL && help[0] != '\0') {
        om_strbuf_append(out, "# HELP ", 7);
        om_strbuf_append(out, name, nlen);
        om_strbuf_putc(out, ' ');
        escape(out, help, strlen(help), om);
        om_strbuf_putc(out, '\n');
    }
    om_strbuf_append(out, "# TYPE ", 7);
    om_strbuf_append(out, name, nlen);
    om_strbuf_putc(out, ' ');
    om_strbuf_puts(out, om && type == OM_PROM_UNTYPED ? "unknown" : type_name(type));
    om_strbuf_putc(out, '\n');
}

static void put_num(om_strbuf_t *out, double v)
{
    char buf[OM_PROM_NUM_MAX];
    size_t n = om_prom_format_g(v, buf);
    om_strbuf_append(out, buf, n);
}

/* A timestamp: milliseconds (text) or seconds with the milliseconds as a fraction. */
static void put_ts(om_strbuf_t *out, om_prom_format_t f, int64_t ms)
{
    char buf[40];
    int n;
    if (f == OM_PROM_FMT_TEXT) {
        n = snprintf(buf, sizeof buf, " %lld", (long long)ms);
    } else {
        long long s = ms / 1000, frac = ms % 1000;
        if (frac < 0) {
            frac += 1000;
            s--;
        }
        n = frac != 0 ? snprintf(buf, sizeof buf, " %lld.%03lld", s, frac)
                      : snprintf(buf, sizeof buf, " %lld", s);
    }
    om_strbuf_append(out, buf, (size_t)n);
}

/* Copies n bytes at w; returns the end. */
static char *put(char *w, const void *p, size_t n)
{
    om_copy(w, p, n);
    return w + n;
}

void om_prom_write_sample(om_strbuf_t *out, om_prom_format_t f, const om_prom_sample_t *s)
{
    /* The line but its timestamp and exemplar is sized first and written with one
     * reservation: a scrape is hundreds of thousands of these lines. */
    char num[OM_PROM_NUM_MAX];
    size_t nlen = om_prom_format_g(s->value, num);
    size_t slen = s->suffix != NULL ? strlen(s->suffix) : 0;
    size_t klen = s->extra_key != NULL ? strlen(s->extra_key) : 0;
    size_t xlen = s->extra_key != NULL ? strlen(s->extra_value) : 0;
    bool labels = s->labels != NULL && s->labels_len > 0;
    size_t len = s->name_len + slen + 1 + nlen + 1;
    if (labels || s->extra_key != NULL) {
        len += 2 + (labels ? s->labels_len : 0);
        len += s->extra_key != NULL ? (labels ? 1 : 0) + klen + 3 + xlen : 0;
    }
    if (!om_strbuf_reserve(out, len)) {
        return;
    }
    char *w = out->data + out->len;
    w = put(w, s->name, s->name_len);
    if (slen > 0) {
        w = put(w, s->suffix, slen);
    }
    if (labels || s->extra_key != NULL) {
        *w++ = '{';
        if (labels) {
            w = put(w, s->labels, s->labels_len);
        }
        if (s->extra_key != NULL) {
            if (labels) {
                *w++ = ',';
            }
            w = put(w, s->extra_key, klen);
            w = put(w, "=\"", 2);
            w = put(w, s->extra_value, xlen);
            *w++ = '"';
        }
        *w++ = '}';
    }
    *w++ = ' ';
    w = put(w, num, nlen);
    const om_prom_exemplar_t *e = s->exemplar;
    bool more = s->has_ts || (f == OM_PROM_FMT_OPENMETRICS && e != NULL);
    if (!more) {
        *w++ = '\n'; /* counted in len */
    }
    out->len = (size_t)(w - out->data);
    out->data[out->len] = '\0';
    if (!more) {
        return;
    }
    if (s->has_ts) {
        put_ts(out, f, s->ts_ms);
    }
    if (f == OM_PROM_FMT_OPENMETRICS && e != NULL) {
        om_strbuf_append(out, " # {", 4);
        om_strbuf_append(out, e->labels, e->labels_len);
        om_strbuf_append(out, "} ", 2);
        put_num(out, e->value);
        if (e->has_ts) {
            put_ts(out, f, e->ts_ms);
        }
    }
    om_strbuf_putc(out, '\n');
}

void om_prom_write_eof(om_strbuf_t *out, om_prom_format_t f)
{
    if (f == OM_PROM_FMT_OPENMETRICS) {
        om_strbuf_append(out, "# EOF\n", 6);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Negotiation                                                                                */

/* The q of one Accept entry ("type/sub;version=1.0.0;q=0.5"): 1 unless given. */
static double entry_q(const char *p, size_t n)
{
    for (size_t i = 0; i + 2 < n; i++) {
        if (p[i] == ';') {
            size_t j = i + 1;
            while (j < n && p[j] == ' ') {
                j++;
            }
            if (j + 1 < n && (p[j] == 'q' || p[j] == 'Q') && p[j + 1] == '=') {
                char buf[16];
                size_t k = 0;
                for (j += 2; j < n && k + 1 < sizeof buf && p[j] != ';'; j++) {
                    buf[k++] = p[j];
                }
                buf[k] = '\0';
                return strtod(buf, NULL);
            }
        }
    }
    return 1.0;
}

static bool entry_is(const char *p, size_t n, const char *type)
{
    while (n > 0 && *p == ' ') {
        p++;
        n--;
    }
    size_t tl = strlen(type);
    return n >= tl && strncasecmp(p, type, tl) == 0 && (n == tl || p[tl] == ';' || p[tl] == ' ');
}

om_prom_format_t om_prom_negotiate(const char *accept, bool allow_openmetrics)
{
    if (accept == NULL || !allow_openmetrics) {
        return OM_PROM_FMT_TEXT;
    }
    /* client_golang (expfmt.NegotiateIncludingOpenMetrics) takes the Accept entries in order
     * of quality and answers with the first it can write; text is its fallback. */
    double best_om = -1, best_text = -1;
    const char *p = accept;
    while (*p != '\0') {
        const char *end = strchr(p, ',');
        size_t n = end != NULL ? (size_t)(end - p) : strlen(p);
        double q = entry_q(p, n);
        if (entry_is(p, n, "application/openmetrics-text") && q > best_om) {
            best_om = q;
        } else if (entry_is(p, n, "text/plain") && q > best_text) {
            best_text = q;
        }
        p += n;
        if (*p == ',') {
            p++;
        }
    }
    return best_om > 0 && best_om >= best_text ? OM_PROM_FMT_OPENMETRICS : OM_PROM_FMT_TEXT;
}
