/* compress_bench.c: otelmon-compress-bench, the CPU cost and ratio of gzip on OTLP batches
 * (issue 14), to choose the exporters' compression library and level from measurements.
 *
 * Inputs (all distinct, nothing repeats between requests, as on a real collector):
 *   - "loadgen": requests exactly as otelmon-loadgen builds them (its defaults: 100 spans of
 *     8 attributes, random 16-byte string values, one event and a status per span);
 *   - "js": spans shaped like the OpenTelemetry JS SDK's HTTP instrumentation (resource with
 *     telemetry.sdk.*, scope @opentelemetry/instrumentation-http, http.* and net.* attributes
 *     with realistic, partly repeating values, random ids, nanosecond timestamps).
 * Each is measured as requests of 100 spans, as batches of 2,000 spans (what the batch
 * processor's 200 ms timeout sends at otelcol's load-test rate of 10k spans/s) and as batches
 * of 8,200 spans (its default send_batch_size is 8192: the concatenation of 82 requests'
 * bytes, which is the same protobuf message as their merge).
 *
 * Methods: zlib with a new z_stream per call (what otlphttp did), zlib with one z_stream
 * reused through deflateReset, libdeflate with one compressor reused, libdeflate with a
 * compressor allocated per call, Intel ISA-L's igzip (levels 0-3, one-shot "stateless"
 * compression with its stream and level buffer reused), zstd for reference; and the
 * decompressors, zlib inflate, libdeflate's and ISA-L's whole-buffer gzip decoders; and the
 * exporters' own compressor set (om_compressors_*) at a fixed level 5 and with its adaptive
 * default. CPU time is this thread's (CLOCK_THREAD_CPUTIME_ID), so other load on a shared machine
 * inflates it less than wall-clock rates. One thread; the figures are per core. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <isa-l/igzip_lib.h>
#include <libdeflate.h>
#include <zlib.h>
#include <zstd.h>

#include "lg.h"

#define REQ_SPANS 100
#define MID_REQS 20
#define BATCH_REQS 82
#define N_INPUTS 16 /* distinct inputs per data set and size, cycled */

typedef struct input {
    uint8_t *data;
    size_t len;
    size_t spans;
} input_t;

typedef struct set {
    const char *name;
    input_t in[N_INPUTS];
} set_t;

static double cpu_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static void hex(uint64_t *rng, char *out, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[i] = digits[lg_rand(rng) & 15];
    }
    out[n] = '\0';
}

/* One JS-SDK-shaped span as OTLP JSON (the SDK's own JSON: hex ids, int64 as strings). */
static void js_span(om_strbuf_t *sb, uint64_t *rng, uint64_t t0, const char *trace,
                    const char *parent)
{
    static const char *const routes[] = {"/api/cart",  "/api/checkout", "/api/products",
                                         "/api/users", "/health",       "/api/orders"};
    static const char *const methods[] = {"GET", "GET", "GET", "POST", "PUT", "DELETE"};
    static const int statuses[] = {200, 200, 200, 201, 404, 500};
    char span[17];
    hex(rng, span, 16);
    unsigned r = (unsigned)(lg_rand(rng) % 6), s = (unsigned)(lg_rand(rng) % 6);
    uint64_t start = t0 + lg_rand(rng) % 1000000000u, dur = 200000 + lg_rand(rng) % 90000000u;
    om_strbuf_printf(
        sb,
        "{\"traceId\":\"%s\",\"spanId\":\"%s\",\"parentSpanId\":\"%s\","
        "\"name\":\"%s %s\",\"kind\":2,\"startTimeUnixNano\":\"%llu\","
        "\"endTimeUnixNano\":\"%llu\",\"attributes\":["
        "{\"key\":\"http.url\",\"value\":{\"stringValue\":"
        "\"http://shop.example.com:8080%s/%llu?session=%llx\"}},"
        "{\"key\":\"http.host\",\"value\":{\"stringValue\":\"shop.example.com:8080\"}},"
        "{\"key\":\"net.host.name\",\"value\":{\"stringValue\":\"shop.example.com\"}},"
        "{\"key\":\"http.method\",\"value\":{\"stringValue\":\"%s\"}},"
        "{\"key\":\"http.scheme\",\"value\":{\"stringValue\":\"http\"}},"
        "{\"key\":\"http.target\",\"value\":{\"stringValue\":\"%s/%llu\"}},"
        "{\"key\":\"http.user_agent\",\"value\":{\"stringValue\":"
        "\"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0 Safari/537.36\"}},"
        "{\"key\":\"http.flavor\",\"value\":{\"stringValue\":\"1.1\"}},"
        "{\"key\":\"net.transport\",\"value\":{\"stringValue\":\"ip_tcp\"}},"
        "{\"key\":\"net.host.ip\",\"value\":{\"stringValue\":\"::ffff:10.0.%u.%u\"}},"
        "{\"key\":\"net.host.port\",\"value\":{\"intValue\":8080}},"
        "{\"key\":\"net.peer.ip\",\"value\":{\"stringValue\":\"::ffff:10.1.%u.%u\"}},"
        "{\"key\":\"net.peer.port\",\"value\":{\"intValue\":%u}},"
        "{\"key\":\"http.status_code\",\"value\":{\"intValue\":%d}},"
        "{\"key\":\"http.status_text\",\"value\":{\"stringValue\":\"%s\"}}],"
        "\"status\":{\"code\":%d}}",
        trace, span, parent, methods[r], routes[r], (unsigned long long)start,
        (unsigned long long)(start + dur), routes[r], (unsigned long long)(lg_rand(rng) % 100000),
        (unsigned long long)lg_rand(rng), methods[r], routes[r],
        (unsigned long long)(lg_rand(rng) % 100000), (unsigned)(lg_rand(rng) % 4),
        (unsigned)(lg_rand(rng) % 250), (unsigned)(lg_rand(rng) % 8),
        (unsigned)(lg_rand(rng) % 250), 30000u + (unsigned)(lg_rand(rng) % 30000), statuses[s],
        statuses[s] >= 400 ? "ERROR" : "OK", statuses[s] >= 500 ? 2 : 0);
}

/* A JS-SDK-shaped request of n spans, as protobuf (through the core's JSON decoder). */
static int js_request(uint64_t *rng, size_t n, uint8_t **out, size_t *len)
{
    om_strbuf_t sb;
    om_strbuf_init(&sb, 0);
    char pid[8];
    snprintf(pid, sizeof pid, "%u", 1000u + (unsigned)(lg_rand(rng) % 60000));
    om_strbuf_printf(
        &sb,
        "{\"resourceSpans\":[{\"resource\":{\"attributes\":["
        "{\"key\":\"service.name\",\"value\":{\"stringValue\":\"checkout\"}},"
        "{\"key\":\"telemetry.sdk.language\",\"value\":{\"stringValue\":\"nodejs\"}},"
        "{\"key\":\"telemetry.sdk.name\",\"value\":{\"stringValue\":\"opentelemetry\"}},"
        "{\"key\":\"telemetry.sdk.version\",\"value\":{\"stringValue\":\"2.0.1\"}},"
        "{\"key\":\"process.pid\",\"value\":{\"intValue\":%s}},"
        "{\"key\":\"host.name\",\"value\":{\"stringValue\":\"web-7f9c%llx\"}}]},"
        "\"scopeSpans\":[{\"scope\":{\"name\":\"@opentelemetry/instrumentation-http\","
        "\"version\":\"0.57.0\"},\"spans\":[",
        pid, (unsigned long long)(lg_rand(rng) & 0xfffff));
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t t0 = (uint64_t)ts.tv_sec * OM_NS_PER_S;
    char trace[33], parent[17];
    for (size_t i = 0; i < n; i++) {
        if (i % 5 == 0) { /* traces of 5 spans */
            hex(rng, trace, 32);
            hex(rng, parent, 16);
        }
        js_span(&sb, rng, t0, trace, parent);
        om_strbuf_puts(&sb, i + 1 < n ? "," : "]}]}]}");
    }
    om_batch_t *b = NULL;
    om_err_t err = {0};
    int rc =
        sb.failed ? OM_ENOMEM : om_batch_decode_json(OM_SIG_TRACES, sb.data, sb.len, 0, &b, &err);
    om_strbuf_free(&sb);
    if (rc != 0) {
        fprintf(stderr, "js request: %s\n", err.msg);
        return rc;
    }
    *len = om_batch_proto_size(b);
    *out = malloc(*len);
    om_batch_proto_pack(b, *out);
    om_batch_release(b);
    return 0;
}

static int make_request(const char *set, uint64_t *rng, uint8_t **out, size_t *len)
{
    if (strcmp(set, "js") == 0) {
        return js_request(rng, REQ_SPANS, out, len);
    }
    lg_opts_t o = {.signal = OM_SIG_TRACES, .items = REQ_SPANS, .attrs = 8, .attr_size = 16};
    om_err_t err = {0};
    return lg_gen_proto(&o, rng, out, len, &err);
}

/* N_INPUTS distinct inputs of reqs requests each (their bytes concatenated). */
static int build_set(set_t *s, const char *name, size_t reqs, uint64_t *rng)
{
    s->name = name;
    for (size_t i = 0; i < N_INPUTS; i++) {
        input_t *in = &s->in[i];
        in->data = NULL;
        in->len = 0;
        for (size_t r = 0; r < reqs; r++) {
            uint8_t *p = NULL;
            size_t n = 0;
            if (make_request(name, rng, &p, &n) != 0) {
                return -1;
            }
            in->data = realloc(in->data, in->len + n);
            memcpy(in->data + in->len, p, n);
            in->len += n;
            free(p);
        }
        in->spans = reqs * REQ_SPANS;
    }
    return 0;
}

typedef struct method {
    const char *name;
    int level;
    /* Compress in into out (cap bytes); returns the compressed size (0: failed). */
    size_t (*run)(const struct method *m, const input_t *in, uint8_t *out, size_t cap);
} method_t;

static z_stream reused_zs;
static int reused_level = -100;
static struct libdeflate_compressor *ld_comp[13];

static size_t zlib_fresh(const method_t *m, const input_t *in, uint8_t *out, size_t cap)
{
    z_stream zs = {0};
    deflateInit2(&zs, m->level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
    zs.next_in = in->data;
    zs.avail_in = (uInt)in->len;
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    size_t n = deflate(&zs, Z_FINISH) == Z_STREAM_END ? zs.total_out : 0;
    deflateEnd(&zs);
    return n;
}

static size_t zlib_reused(const method_t *m, const input_t *in, uint8_t *out, size_t cap)
{
    if (reused_level != m->level) {
        if (reused_level != -100) {
            deflateEnd(&reused_zs);
        }
        memset(&reused_zs, 0, sizeof reused_zs);
        deflateInit2(&reused_zs, m->level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
        reused_level = m->level;
    } else {
        deflateReset(&reused_zs);
    }
    reused_zs.next_in = in->data;
    reused_zs.avail_in = (uInt)in->len;
    reused_zs.next_out = out;
    reused_zs.avail_out = (uInt)cap;
    return deflate(&reused_zs, Z_FINISH) == Z_STREAM_END ? reused_zs.total_out : 0;
}

static size_t ld_reused(const method_t *m, const input_t *in, uint8_t *out, size_t cap)
{
    if (ld_comp[m->level] == NULL) {
        ld_comp[m->level] = libdeflate_alloc_compressor(m->level);
    }
    return libdeflate_gzip_compress(ld_comp[m->level], in->data, in->len, out, cap);
}

static size_t ld_fresh(const method_t *m, const input_t *in, uint8_t *out, size_t cap)
{
    struct libdeflate_compressor *c = libdeflate_alloc_compressor(m->level);
    size_t n = libdeflate_gzip_compress(c, in->data, in->len, out, cap);
    libdeflate_free_compressor(c);
    return n;
}

/* ISA-L: one stream and one level buffer per level, reused; one-shot (stateless) compression
 * into out, which is large enough for stored blocks (isal_deflate_stateless falls back to
 * them when compressing would not fit). The level buffers are ISA-L's suggested sizes (its
 * EXTRA_LARGE ones, twice the tokens per block, made no difference to the ratio: 0.05%). */
static struct isal_zstream *isal_zs[4];
static uint8_t *isal_lbuf[4];
static const uint32_t isal_lbuf_size[4] = {0, ISAL_DEF_LVL1_DEFAULT, ISAL_DEF_LVL2_DEFAULT,
                                           ISAL_DEF_LVL3_DEFAULT};

static size_t isal_run(const method_t *m, const input_t *in, uint8_t *out, size_t cap)
{
    int l = m->level;
    if (isal_zs[l] == NULL) {
        isal_zs[l] = calloc(1, sizeof *isal_zs[l]);
        isal_lbuf[l] = isal_lbuf_size[l] > 0 ? malloc(isal_lbuf_size[l]) : NULL;
    }
    struct isal_zstream *zs = isal_zs[l];
    isal_deflate_stateless_init(zs);
    zs->level = (uint32_t)l;
    zs->level_buf = isal_lbuf[l];
    zs->level_buf_size = isal_lbuf_size[l];
    zs->gzip_flag = IGZIP_GZIP;
    zs->hist_bits = 0; /* the full window (the stateless init leaves it as it was) */
    zs->next_in = in->data;
    zs->avail_in = (uint32_t)in->len;
    zs->next_out = out;
    zs->avail_out = (uint32_t)cap;
    return isal_deflate_stateless(zs) == COMP_OK ? zs->total_out : 0;
}

static size_t zstd_run(const method_t *m, const input_t *in, uint8_t *out, size_t cap)
{
    static ZSTD_CCtx *cx;
    if (cx == NULL) {
        cx = ZSTD_createCCtx();
    }
    size_t n = ZSTD_compressCCtx(cx, out, cap, in->data, in->len, m->level);
    return ZSTD_isError(n) ? 0 : n;
}

/* The exporters' own path: a compressor from an om_compressors_t set (src/compress.c), the
 * output in a new buffer per call. Level 0 is the adaptive default; the set is made fresh for
 * each row (main frees it), so the row includes its first, sampled batches. */
static om_compressors_t *svc_set;

static size_t svc_run(const method_t *m, const input_t *in, uint8_t *out, size_t cap)
{
    (void)out;
    (void)cap;
    if (svc_set == NULL) {
        svc_set = om_compressors_new(OM_COMP_GZIP, m->level, 1);
    }
    om_compressor_t *c = svc_set != NULL ? om_compressors_get(svc_set) : NULL;
    uint8_t *z = NULL;
    size_t n = 0;
    if (c == NULL || om_compressor_run(c, in->data, in->len, &z, &n) != 0) {
        n = 0;
    }
    om_compressors_put(svc_set, c);
    om_free(z);
    return n;
}

static const method_t methods[] = {
    {"zlib, new stream", 1, zlib_fresh},
    {"zlib, new stream", 6, zlib_fresh},
    {"zlib, reused stream", 1, zlib_reused},
    {"zlib, reused stream", 6, zlib_reused},
    {"libdeflate, reused", 1, ld_reused},
    {"libdeflate, reused", 2, ld_reused},
    {"libdeflate, reused", 3, ld_reused},
    {"libdeflate, reused", 4, ld_reused},
    {"libdeflate, reused", 5, ld_reused},
    {"libdeflate, reused", 6, ld_reused},
    {"libdeflate, new compressor", 1, ld_fresh},
    {"libdeflate, new compressor", 6, ld_fresh},
    {"isa-l, reused", 0, isal_run},
    {"isa-l, reused", 1, isal_run},
    {"isa-l, reused", 2, isal_run},
    {"isa-l, reused", 3, isal_run},
    {"zstd (reference)", 1, zstd_run},
    {"zstd (reference)", 3, zstd_run},
    {"OtelMon set, fixed", 5, svc_run},
    {"OtelMon set, auto (default)", 0, svc_run},
};

/* Runs f over the set's inputs until at least min_us of CPU went by; returns us per span and
 * the ratio (compressed / raw bytes). */
static void measure(const method_t *m, const set_t *s, uint8_t *out, size_t cap, double min_us,
                    double *us_span, double *ratio)
{
    size_t spans = 0, raw = 0, comp = 0;
    /* Warm-up: allocations, caches; and for the compressor set, its first batches (the
     * adaptive level samples the first 4 and moves to its steady level: a cost paid once per
     * exporter, which a 1 s row of 8,200-span batches, about 50 of them, would overstate). */
    for (int w = 0; w < (m->run == svc_run ? 64 : 1); w++) {
        m->run(m, &s->in[(size_t)w % N_INPUTS], out, cap);
    }
    double t0 = cpu_us(), t = t0;
    for (size_t i = 0; t - t0 < min_us || i < N_INPUTS; i++) {
        const input_t *in = &s->in[i % N_INPUTS];
        size_t n = m->run(m, in, out, cap);
        if (n == 0) {
            fprintf(stderr, "%s failed\n", m->name);
            exit(1);
        }
        spans += in->spans;
        raw += in->len;
        comp += n;
        t = cpu_us();
    }
    *us_span = (t - t0) / (double)spans;
    *ratio = (double)comp / (double)raw;
}

/* Decompression of the set gzipped at level 6: zlib inflate (new stream per body, as the
 * receiver once did) against libdeflate's whole-buffer decoder (reused, and made per body as
 * om_decompress does), ISA-L's one-shot decoder (its 85 KiB state reused, and made per body)
 * and om_decompress itself (the receivers' path: buffer sized from the gzip trailer). */
static void measure_inflate(const set_t *s, uint8_t *zbuf, size_t cap, double min_us)
{
    struct libdeflate_compressor *c = libdeflate_alloc_compressor(6);
    struct libdeflate_decompressor *d = libdeflate_alloc_decompressor();
    size_t zl[N_INPUTS];
    uint8_t *z[N_INPUTS];
    size_t maxlen = 0;
    for (size_t i = 0; i < N_INPUTS; i++) {
        z[i] = malloc(cap);
        zl[i] = libdeflate_gzip_compress(c, s->in[i].data, s->in[i].len, z[i], cap);
        maxlen = s->in[i].len > maxlen ? s->in[i].len : maxlen;
    }
    (void)zbuf;
    uint8_t *out = malloc(maxlen);
    static const char *const libs[] = {
        "inflate: zlib, new stream", "inflate: libdeflate",
        "inflate: libdeflate, new",  "inflate: isa-l",
        "inflate: isa-l, new state", "inflate: om_decompress",
    };
    struct inflate_state *ist = malloc(sizeof *ist);
    for (int lib = 0; lib < (int)(sizeof libs / sizeof libs[0]); lib++) {
        size_t spans = 0;
        double t0 = cpu_us(), t = t0;
        for (size_t i = 0; t - t0 < min_us || i < N_INPUTS; i++) {
            size_t k = i % N_INPUTS, got = 0;
            if (lib == 0) {
                z_stream zs = {0};
                inflateInit2(&zs, 16 + 15);
                zs.next_in = z[k];
                zs.avail_in = (uInt)zl[k];
                zs.next_out = out;
                zs.avail_out = (uInt)maxlen;
                inflate(&zs, Z_FINISH);
                got = zs.total_out;
                inflateEnd(&zs);
            } else if (lib == 1) {
                libdeflate_gzip_decompress(d, z[k], zl[k], out, maxlen, &got);
            } else if (lib == 2) {
                struct libdeflate_decompressor *dn = libdeflate_alloc_decompressor();
                libdeflate_gzip_decompress(dn, z[k], zl[k], out, maxlen, &got);
                libdeflate_free_decompressor(dn);
            } else if (lib == 3 || lib == 4) {
                struct inflate_state *st = lib == 3 ? ist : malloc(sizeof *st);
                isal_inflate_init(st);
                st->crc_flag = ISAL_GZIP;
                st->next_in = z[k];
                st->avail_in = (uint32_t)zl[k];
                st->next_out = out;
                st->avail_out = (uint32_t)maxlen;
                if (isal_inflate_stateless(st) == ISAL_DECOMP_OK) {
                    got = st->total_out;
                }
                if (lib == 4) {
                    free(st);
                }
            } else {
                uint8_t *o = NULL;
                om_err_t err = {0};
                if (om_decompress(OM_COMP_GZIP, z[k], zl[k], maxlen, &o, &got, &err) != 0) {
                    got = 0;
                }
                om_free(o);
            }
            if (got != s->in[k].len) {
                fprintf(stderr, "inflate mismatch\n");
                exit(1);
            }
            spans += s->in[k].spans;
            t = cpu_us();
        }
        printf("| %-8s | %5zu | %-28s | %2s | %9.3f | %5s |\n", s->name, s->in[0].spans, libs[lib],
               "-", (t - t0) / (double)spans, "-");
    }
    free(ist);
    for (size_t i = 0; i < N_INPUTS; i++) {
        free(z[i]);
    }
    free(out);
    libdeflate_free_compressor(c);
    libdeflate_free_decompressor(d);
}

/* Output sizes over the set's inputs against zlib 6's (otelcol's default), to 4 digits: the
 * table's 3-digit ratios cannot show whether libdeflate 6, the adaptive level's reference,
 * is larger than zlib 6, nor by how much. auto_ratio: the auto row's ratio (0: not run). */
static void versus_zlib6(const set_t *s, uint8_t *out, size_t cap, double auto_ratio)
{
    static const method_t z6 = {"zlib", 6, zlib_reused};
    static const int lv[] = {1, 3, 5, 6};
    double zsum = 0, raw = 0;
    for (size_t i = 0; i < N_INPUTS; i++) {
        zsum += (double)zlib_reused(&z6, &s->in[i], out, cap);
        raw += (double)s->in[i].len;
    }
    printf("(%s, %zu spans, output / zlib 6's:", s->name, s->in[0].spans);
    for (size_t l = 0; l < sizeof lv / sizeof lv[0]; l++) {
        method_t m = {"libdeflate", lv[l], ld_reused};
        double sum = 0;
        for (size_t i = 0; i < N_INPUTS; i++) {
            sum += (double)ld_reused(&m, &s->in[i], out, cap);
        }
        printf(" libdeflate %d %.4f,", lv[l], sum / zsum);
    }
    for (int l = 0; l <= 3; l++) {
        method_t m = {"isa-l", l, isal_run};
        double sum = 0;
        for (size_t i = 0; i < N_INPUTS; i++) {
            sum += (double)isal_run(&m, &s->in[i], out, cap);
        }
        printf(" isa-l %d %.4f,", l, sum / zsum);
    }
    if (auto_ratio > 0) {
        printf(" auto %.4f", auto_ratio / (zsum / raw));
    }
    printf(")\n");
}

/* --check (a test: bench/meson.build): the adaptive default on the exporters' batch sizes
 * (2,000 and 8,200 spans) settles on ISA-L on the load generator's data and on libdeflate on
 * JS-SDK-shaped data, in both gzip and zlib framing, and its output over the batches after
 * it settled is within 5% of zlib 6's. Returns the number of failed checks. */
static int check_set(const set_t *s, om_comp_t alg, const char *want_lib)
{
    size_t z6n[N_INPUTS]; /* zlib 6's output size of each input */
    z_stream zs = {0};
    deflateInit2(&zs, 6, Z_DEFLATED, alg == OM_COMP_GZIP ? 31 : 15, 8, Z_DEFAULT_STRATEGY);
    for (size_t i = 0; i < N_INPUTS; i++) {
        size_t cap = deflateBound(&zs, (uLong)s->in[i].len);
        uint8_t *buf = malloc(cap);
        deflateReset(&zs);
        zs.next_in = s->in[i].data;
        zs.avail_in = (uInt)s->in[i].len;
        zs.next_out = buf;
        zs.avail_out = (uInt)cap;
        z6n[i] = deflate(&zs, Z_FINISH) == Z_STREAM_END ? zs.total_out : 0;
        free(buf);
    }
    deflateEnd(&zs);
    om_compressors_t *cs = om_compressors_new(alg, 0, 1);
    double ours = 0, z6 = 0;
    int bad = cs == NULL;
    for (size_t i = 0; i < 80 && bad == 0; i++) {
        const input_t *in = &s->in[i % N_INPUTS];
        om_compressor_t *c = om_compressors_get(cs);
        uint8_t *z = NULL;
        size_t zn = 0;
        if (c == NULL || om_compressor_run(c, in->data, in->len, &z, &zn) != 0) {
            bad++;
        }
        om_compressors_put(cs, c);
        om_free(z);
        if (i >= 16) { /* settled: what the next 64 batches made */
            z6 += (double)z6n[i % N_INPUTS];
            ours += (double)zn;
        }
    }
    const char *lib = cs != NULL ? om_compressors_lib(cs) : "(out of memory)";
    int level = cs != NULL ? om_compressors_level(cs) : -1;
    bool ok = bad == 0 && strcmp(lib, want_lib) == 0 && ours <= z6 * 1.05;
    printf("%s %s, %zu spans, %s: at %s %d, output / zlib 6's %.4f (want %s, <= 1.05)\n",
           ok ? "ok  " : "FAIL", s->name, s->in[0].spans, alg == OM_COMP_GZIP ? "gzip" : "zlib",
           lib, level, z6 > 0 ? ours / z6 : 0, want_lib);
    om_compressors_free(cs);
    return ok ? 0 : 1;
}

static int check(void)
{
    uint64_t rng = 7;
    static const char *const names[] = {"loadgen", "js"};
    static const char *const want[] = {"isa-l", "libdeflate"};
    static const size_t reqs[] = {MID_REQS, BATCH_REQS};
    int bad = 0;
    for (size_t d = 0; d < 2; d++) {
        for (size_t r = 0; r < 2; r++) {
            set_t s;
            if (build_set(&s, names[d], reqs[r], &rng) != 0) {
                return 1;
            }
            bad += check_set(&s, OM_COMP_GZIP, want[d]);
            bad += check_set(&s, OM_COMP_ZLIB, want[d]);
            for (size_t i = 0; i < N_INPUTS; i++) {
                free(s.in[i].data);
            }
        }
    }
    return bad;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--check") == 0) {
        return check() == 0 ? 0 : 1;
    }
    double min_us = argc > 1 ? atof(argv[1]) * 1e6 : 1e6; /* CPU seconds per row */
    const char *only = argc > 2 ? argv[2] : NULL;         /* only the methods whose name has this */
    uint64_t rng = 42;
    static const char *const names[] = {"loadgen", "js"};
    static const size_t reqs[] = {1, MID_REQS, BATCH_REQS};
    printf("| data     | spans | method                       | lv | us/span   | ratio |\n");
    printf("|----------|------:|------------------------------|---:|----------:|------:|\n");
    for (size_t d = 0; d < 2; d++) {
        for (size_t r = 0; r < sizeof reqs / sizeof reqs[0]; r++) {
            set_t s;
            if (build_set(&s, names[d], reqs[r], &rng) != 0) {
                return 1;
            }
            size_t cap = compressBound((uLong)s.in[0].len) * 2 + 1024;
            for (size_t i = 0; i < N_INPUTS; i++) {
                size_t c = compressBound((uLong)s.in[i].len) * 2 + 1024;
                cap = c > cap ? c : cap;
            }
            uint8_t *out = malloc(cap);
            double auto_ratio = 0;
            for (size_t m = 0; m < sizeof methods / sizeof methods[0]; m++) {
                if (only != NULL && strstr(methods[m].name, only) == NULL) {
                    continue;
                }
                double us, ratio;
                measure(&methods[m], &s, out, cap, min_us, &us, &ratio);
                printf("| %-8s | %5zu | %-28s | %2d | %9.3f | %.3f |\n", s.name, s.in[0].spans,
                       methods[m].name, methods[m].level, us, ratio);
                if (svc_set != NULL) {
                    uint64_t samples = 0, switches = 0;
                    om_compressors_stats(svc_set, &samples, &switches);
                    if (methods[m].level == 0) {
                        auto_ratio = ratio;
                        printf("(auto: now at %s %d after %llu samples, %llu switches)\n",
                               om_compressors_lib(svc_set), om_compressors_level(svc_set),
                               (unsigned long long)samples, (unsigned long long)switches);
                    }
                    om_compressors_free(svc_set);
                    svc_set = NULL;
                }
                fflush(stdout);
            }
            if (only == NULL || strcmp(only, "inflate") == 0) {
                measure_inflate(&s, out, cap, min_us);
            }
            versus_zlib6(&s, out, cap, auto_ratio);
            printf("(%s, %zu spans: %.0f bytes of protobuf per span)\n", s.name, s.in[0].spans,
                   (double)s.in[0].len / (double)s.in[0].spans);
            free(out);
            for (size_t i = 0; i < N_INPUTS; i++) {
                free(s.in[i].data);
            }
        }
    }
    return 0;
}
