/* lg_stats.c: latency histogram, error counts, pacing and the report. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "lg.h"

const char *const lg_signal_paths[OM_SIG_COUNT] = {"/v1/traces", "/v1/metrics", "/v1/logs"};
const char *const lg_grpc_methods[OM_SIG_COUNT] = {
    "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
    "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
};

const char *lg_grpc_status_name(int code)
{
    static const char *const names[] = {
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    };
    if (code < 0 || code >= (int)(sizeof names / sizeof names[0])) {
        return "UNKNOWN_CODE";
    }
    return names[code];
}

uint64_t lg_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * OM_NS_PER_S + (uint64_t)ts.tv_nsec;
}

static size_t hist_index(uint64_t v)
{
    if (v < LG_HIST_SUB) {
        return (size_t)v;
    }
    unsigned msb = 63u - (unsigned)__builtin_clzll(v); /* >= 6 */
    unsigned shift = msb - 6u;
    return LG_HIST_SUB + (size_t)shift * LG_HIST_SUB + (size_t)((v >> shift) - LG_HIST_SUB);
}

/* The largest value that lands in bucket i. */
static uint64_t hist_upper(size_t i)
{
    if (i < LG_HIST_SUB) {
        return i;
    }
    size_t shift = (i - LG_HIST_SUB) / LG_HIST_SUB;
    uint64_t sub = LG_HIST_SUB + (i - LG_HIST_SUB) % LG_HIST_SUB;
    return ((sub + 1) << shift) - 1;
}

void lg_hist_add(lg_hist_t *h, uint64_t us)
{
    h->counts[hist_index(us)]++;
    h->n++;
    if (us > h->max) {
        h->max = us;
    }
}

uint64_t lg_hist_quantile(const lg_hist_t *h, double q)
{
    if (h->n == 0) {
        return 0;
    }
    /* The rank of the sample at quantile q, 1-based, rounded up. */
    uint64_t rank = (uint64_t)(q * (double)h->n);
    if ((double)rank < q * (double)h->n || rank == 0) {
        rank++;
    }
    uint64_t seen = 0;
    for (size_t i = 0; i < LG_HIST_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            uint64_t up = hist_upper(i);
            return up < h->max ? up : h->max;
        }
    }
    return h->max;
}

void lg_stats_init(lg_stats_t *st)
{
    memset(st, 0, sizeof *st);
}

/* The kind's index, after counting it. */
static size_t stats_error(lg_stats_t *st, const char *kind)
{
    for (size_t i = 0; i < st->n_err; i++) {
        if (strcmp(st->err_names[i], kind) == 0) {
            st->err_counts[i]++;
            return i;
        }
    }
    /* The last slot collects kinds beyond the table (never seen in practice). */
    size_t i = LG_MAX_ERR_KINDS - 1;
    if (st->n_err < LG_MAX_ERR_KINDS - 1) {
        i = st->n_err++;
        snprintf(st->err_names[i], sizeof st->err_names[i], "%s", kind);
    } else if (st->n_err == LG_MAX_ERR_KINDS - 1) {
        st->n_err++;
        snprintf(st->err_names[i], sizeof st->err_names[i], "other");
    }
    st->err_counts[i]++;
    return i;
}

void lg_stats_error(lg_stats_t *st, const char *kind)
{
    (void)stats_error(st, kind);
}

void lg_stats_error_detail(lg_stats_t *st, const char *kind, const char *detail, size_t len)
{
    size_t i = stats_error(st, kind);
    if (st->err_first[i][0] != '\0' || len == 0) {
        return;
    }
    size_t n = len < sizeof st->err_first[i] - 1 ? len : sizeof st->err_first[i] - 1;
    for (size_t k = 0; k < n; k++) {
        /* Printed inside JSON strings and one-line tables: no quotes, controls or escapes. */
        unsigned char c = (unsigned char)detail[k];
        st->err_first[i][k] = c < 0x20 || c >= 0x7f || c == '"' || c == '\\' ? '?' : (char)c;
    }
    st->err_first[i][n] = '\0';
}

void lg_stats_done(lg_stats_t *st, bool ok, size_t items, uint64_t lat_ns)
{
    if (ok) {
        st->ok++;
        st->items_ok += items;
    } else {
        st->failed++;
    }
    lg_hist_add(&st->lat, lat_ns / 1000);
}

void lg_sched_init(lg_sched_t *s, const lg_opts_t *o, uint64_t now)
{
    memset(s, 0, sizeof *s);
    s->rate = o->rate;
    s->start_ns = now;
    s->limit = o->requests;
    if (o->duration_s > 0) {
        s->end_ns = now + (uint64_t)(o->duration_s * 1e9);
    }
}

int64_t lg_sched_next(const lg_sched_t *s, uint64_t now)
{
    if ((s->limit > 0 && s->started >= s->limit) || (s->end_ns > 0 && now >= s->end_ns)) {
        return -1;
    }
    if (s->rate <= 0) {
        return 0;
    }
    /* Request k is due at start + k / rate: an open schedule, so a slow answer does not
     * lower the offered rate as long as slots are free. */
    uint64_t due = s->start_ns + (uint64_t)((double)s->started * 1e9 / s->rate);
    return due <= now ? 0 : (int64_t)(due - now);
}

static const char *proto_name(lg_proto_t p)
{
    return p == LG_GRPC ? "grpc" : p == LG_HTTP_PROTO ? "http/protobuf" : "http/json";
}

static void report_json(const lg_stats_t *st, const lg_opts_t *o, const lg_pool_t *pool,
                        double secs)
{
    double avg = pool->n > 0 && pool->reqs != NULL ? (double)pool->raw_bytes / (double)pool->n : 0;
    printf("{\"protocol\":\"%s\",\"signal\":\"%s\",\"items_per_request\":%u,"
           "\"request_bytes\":%.0f,\"connections\":%u,\"inflight\":%u,\"rate\":%.1f,"
           "\"seconds\":%.3f,\"sent\":%llu,\"ok\":%llu,\"failed\":%llu,\"items_ok\":%llu,"
           "\"requests_per_s\":%.1f,\"items_per_s\":%.1f,\"mb_per_s\":%.2f,"
           "\"p50_us\":%llu,\"p90_us\":%llu,\"p99_us\":%llu,\"max_us\":%llu,\"cpu_s\":%.3f,"
           "\"rw_samples_ok\":%llu,\"errors\":{",
           proto_name(o->protocol), om_signal_name(o->signal), o->items, avg, o->connections,
           o->inflight, o->rate, secs, (unsigned long long)st->sent, (unsigned long long)st->ok,
           (unsigned long long)st->failed, (unsigned long long)st->items_ok, (double)st->ok / secs,
           (double)st->items_ok / secs, (double)st->bytes_sent / secs / 1e6,
           (unsigned long long)lg_hist_quantile(&st->lat, 0.50),
           (unsigned long long)lg_hist_quantile(&st->lat, 0.90),
           (unsigned long long)lg_hist_quantile(&st->lat, 0.99), (unsigned long long)st->lat.max,
           st->cpu_s, (unsigned long long)(st->ok * lg_rw_samples_per_request(o)));
    for (size_t i = 0; i < st->n_err; i++) {
        printf("%s\"%s\":%llu", i > 0 ? "," : "", st->err_names[i],
               (unsigned long long)st->err_counts[i]);
    }
    printf("},\"error_first\":{");
    for (size_t i = 0; i < st->n_err; i++) {
        printf("%s\"%s\":\"%s\"", i > 0 ? "," : "", st->err_names[i], st->err_first[i]);
    }
    printf("}}\n");
    fflush(stdout);
}

static void report_table(const lg_stats_t *st, const lg_opts_t *o, double secs)
{
    FILE *f = stderr;
    fprintf(f, "%s %s, %u %s/request, %u connections x %u in flight, %s\n", proto_name(o->protocol),
            om_signal_name(o->signal), o->items, om_signal_item_name(o->signal), o->connections,
            o->inflight, o->rate > 0 ? "paced" : "as fast as possible");
    fprintf(f, "  %-14s %12.3f\n", "seconds", secs);
    fprintf(f, "  %-14s %12llu (ok %llu, failed %llu)\n", "requests", (unsigned long long)st->sent,
            (unsigned long long)st->ok, (unsigned long long)st->failed);
    fprintf(f, "  %-14s %12.1f\n", "requests/s", (double)st->ok / secs);
    fprintf(f, "  %-14s %12.1f\n", "items/s", (double)st->items_ok / secs);
    fprintf(f, "  %-14s %12.2f\n", "MB/s sent", (double)st->bytes_sent / secs / 1e6);
    fprintf(f, "  %-14s %9llu us\n", "latency p50",
            (unsigned long long)lg_hist_quantile(&st->lat, 0.5));
    fprintf(f, "  %-14s %9llu us\n", "latency p99",
            (unsigned long long)lg_hist_quantile(&st->lat, 0.99));
    fprintf(f, "  %-14s %9llu us\n", "latency max", (unsigned long long)st->lat.max);
    fprintf(f, "  %-14s %12.3f s (%.0f%% of one core)\n", "own CPU", st->cpu_s,
            100.0 * st->cpu_s / secs);
    for (size_t i = 0; i < st->n_err; i++) {
        fprintf(f, "  error %-24s %llu%s%s%s\n", st->err_names[i],
                (unsigned long long)st->err_counts[i],
                st->err_first[i][0] != '\0' ? " (first: " : "", st->err_first[i],
                st->err_first[i][0] != '\0' ? ")" : "");
    }
}

void lg_stats_report(const lg_stats_t *st, const lg_opts_t *o, const lg_pool_t *pool)
{
    double secs = (double)(st->t_end_ns - st->t_start_ns) / 1e9;
    if (secs <= 0) {
        secs = 1e-9;
    }
    if (!o->quiet) {
        report_table(st, o, secs);
    }
    if (o->json) {
        report_json(st, o, pool, secs);
    }
}
