/* lg_count.c: counting OTLP items straight from the protobuf wire format.
 *
 * The sink must count what it receives without costing the machine much CPU (it shares a
 * core with the load generator during benchmarks), so it walks length-delimited fields down
 * to the items and never decodes a message. Field numbers are those of the OTLP protos:
 * Export*ServiceRequest.resource_* = 1, Resource*.scope_* = 2, Scope*.{spans,metrics,
 * log_records} = 2, Metric.{gauge 5, sum 7, histogram 9, exponential_histogram 10,
 * summary 11}, each of which keeps data_points in field 1. */
#include <stdlib.h>
#include <string.h>

#include <snappy-c.h>

#include "lg.h"

typedef struct rd {
    const uint8_t *p, *end;
} rd_t;

static int read_varint(rd_t *r, uint64_t *v)
{
    uint64_t x = 0;
    /* At most 10 bytes encode a 64-bit varint. */
    for (unsigned shift = 0; shift < 70; shift += 7) {
        if (r->p >= r->end) {
            return OM_EINVAL;
        }
        uint8_t b = *r->p++;
        x |= (uint64_t)(b & 0x7f) << shift;
        if ((b & 0x80) == 0) {
            *v = x;
            return 0;
        }
    }
    return OM_EINVAL;
}

typedef struct field {
    uint32_t num;
    uint64_t varint;    /* wire type 0 */
    const uint8_t *sub; /* wire type 2: the payload; NULL for other types */
    size_t sub_len;
} field_t;

/* Reads one field: its number and either its varint value or, for length-delimited fields,
 * its payload; fixed-size values are skipped. */
static int next_field(rd_t *r, field_t *f)
{
    uint64_t key = 0, v = 0;
    if (read_varint(r, &key) != 0 || (key >> 3) == 0 || (key >> 3) > UINT32_MAX) {
        return OM_EINVAL;
    }
    f->num = (uint32_t)(key >> 3);
    f->varint = 0;
    f->sub = NULL;
    f->sub_len = 0;
    size_t left = (size_t)(r->end - r->p);
    switch (key & 7) {
    case 0:
        return read_varint(r, &f->varint);
    case 1:
        if (left < 8) {
            return OM_EINVAL;
        }
        r->p += 8;
        return 0;
    case 5:
        if (left < 4) {
            return OM_EINVAL;
        }
        r->p += 4;
        return 0;
    case 2:
        if (read_varint(r, &v) != 0 || v > (uint64_t)(r->end - r->p)) {
            return OM_EINVAL;
        }
        f->sub = r->p;
        f->sub_len = (size_t)v;
        r->p += v;
        return 0;
    default:
        return OM_EINVAL; /* groups are not used by OTLP */
    }
}

static bool is_points_holder(uint32_t field)
{
    return field == 5 || field == 7 || field == 9 || field == 10 || field == 11;
}

/* Counts occurrences of a length-delimited field at a path. path[depth] is the field number
 * to follow at this level; the last level counts. Metrics have one extra level of
 * alternatives (the data kinds), marked by field number 0 in the path. Depth is bounded by
 * the path length (at most 5). */
static int count_path(const uint8_t *p, size_t n, const uint32_t *path, size_t depth, size_t levels,
                      uint64_t *out)
{
    rd_t r = {p, p + n};
    while (r.p < r.end) {
        field_t f;
        if (next_field(&r, &f) != 0) {
            return OM_EINVAL;
        }
        bool match = path[depth] == 0 ? is_points_holder(f.num) : f.num == path[depth];
        if (!match || f.sub == NULL) {
            continue;
        }
        if (depth + 1 == levels) {
            (*out)++;
        } else if (count_path(f.sub, f.sub_len, path, depth + 1, levels, out) != 0) {
            return OM_EINVAL;
        }
    }
    return 0;
}

int lg_count_items(om_signal_t sig, const uint8_t *p, size_t n, uint64_t *items)
{
    static const uint32_t spans[] = {1, 2, 2};
    static const uint32_t points[] = {1, 2, 2, 0, 1};
    uint64_t count = 0;
    int rc = OM_EINVAL;
    if (sig == OM_SIG_METRICS) {
        rc = count_path(p, n, points, 0, 5, &count);
    } else if (sig == OM_SIG_TRACES || sig == OM_SIG_LOGS) {
        rc = count_path(p, n, spans, 0, 3, &count); /* logs have the same shape */
    }
    if (rc == 0) {
        *items = count;
    }
    return rc;
}

/* WriteRequest.timeseries = 1; TimeSeries.samples = 2, histograms = 4 (prompb). */
int lg_count_rw(const uint8_t *p, size_t n, uint64_t *series, uint64_t *samples,
                uint64_t *histograms)
{
    static const uint32_t sample_path[] = {1, 2};
    static const uint32_t hist_path[] = {1, 4};
    static const uint32_t series_path[] = {1};
    uint64_t se = 0, sa = 0, hi = 0;
    if (count_path(p, n, series_path, 0, 1, &se) != 0 ||
        count_path(p, n, sample_path, 0, 2, &sa) != 0 ||
        count_path(p, n, hist_path, 0, 2, &hi) != 0) {
        return OM_EINVAL;
    }
    *series = se;
    *samples = sa;
    *histograms = hi;
    return 0;
}

int lg_count_rw_snappy(const uint8_t *body, size_t n, size_t max, uint64_t *series,
                       uint64_t *samples, uint64_t *histograms)
{
    size_t raw_len = 0;
    const char *in = body != NULL ? (const char *)body : "";
    if (snappy_uncompressed_length(in, n, &raw_len) != SNAPPY_OK || raw_len > max) {
        return OM_EINVAL;
    }
    char *raw = om_malloc(raw_len + 1);
    if (raw == NULL) {
        return OM_ENOMEM;
    }
    int rc = snappy_uncompress(in, n, raw, &raw_len) == SNAPPY_OK
                 ? lg_count_rw((const uint8_t *)raw, raw_len, series, samples, histograms)
                 : OM_EINVAL;
    om_free(raw);
    return rc;
}

int64_t lg_partial_rejected(const uint8_t *p, size_t n)
{
    rd_t r = {p, p + n};
    int64_t rejected = 0;
    while (r.p < r.end) {
        field_t f;
        if (next_field(&r, &f) != 0) {
            return -1;
        }
        if (f.num != 1 || f.sub == NULL) {
            continue;
        }
        /* ExportPartialSuccess: rejected_* = 1 (int64), error_message = 2. */
        rd_t s = {f.sub, f.sub + f.sub_len};
        while (s.p < s.end) {
            field_t g;
            if (next_field(&s, &g) != 0) {
                return -1;
            }
            if (g.num == 1 && g.sub == NULL) {
                rejected = (int64_t)g.varint;
            }
        }
    }
    return rejected;
}

int64_t lg_partial_rejected_json(const char *p, size_t n)
{
    /* {"partialSuccess":{"rejectedSpans":"3", ...}}: int64 may come as a string. A full
     * parse is not needed: the first "rejected... key is the only one with that prefix. */
    static const char key[] = "\"rejected";
    const char *end = p + n;
    const char *k = memmem(p, n, key, sizeof key - 1);
    if (k == NULL) {
        return 0;
    }
    const char *c = memchr(k, ':', (size_t)(end - k));
    if (c == NULL) {
        return -1;
    }
    c++;
    while (c < end && (*c == ' ' || *c == '"')) {
        c++;
    }
    int64_t v = 0;
    while (c < end && *c >= '0' && *c <= '9' && v < INT64_MAX / 10) {
        v = v * 10 + (*c - '0');
        c++;
    }
    return v;
}
