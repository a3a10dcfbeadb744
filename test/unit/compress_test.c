/* compress_test.c: the compression service (src/compress.c): compression_params validated as
 * otelcol's, every accepted level round-trips through an independent decoder (zlib, libzstd),
 * the cache of idle compressors, and whole-buffer decompression that holds no more than its
 * cap: bombs, lying gzip trailers, corrupt and truncated input, concatenated members. The
 * config errors of both exporters are checked as the service reports them, with
 * file:line:column. The adaptive default level: cheap on high-entropy data, strong on
 * repetitive data, following the data when it changes, never for an explicit level, and
 * safe from several threads. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <isa-l/igzip_lib.h>
#include <zlib.h>
#include <zstd.h>

#include "config.h"
#include "om.h"
#include "om_test.h"
#include "pipeline.h"

/* Some text that compresses, of n bytes (a repeated pattern with a counter in it). */
static uint8_t *sample(size_t n)
{
    uint8_t *p = malloc(n + 1);
    for (size_t i = 0; i < n; i++) {
        p[i] = (uint8_t)("span-attribute-value-"[i % 21] + (i / 4096) % 7);
    }
    return p;
}

/* Inflates with zlib (windowBits 31: gzip, 15: zlib), NULL when it does not decode. */
static uint8_t *zlib_inflate(const uint8_t *in, size_t n, int wbits, size_t cap, size_t *len)
{
    z_stream zs = {0};
    uint8_t *out = malloc(cap + 1);
    inflateInit2(&zs, wbits);
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)n;
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    int rc = inflate(&zs, Z_FINISH);
    *len = zs.total_out;
    inflateEnd(&zs);
    if (rc != Z_STREAM_END) {
        free(out);
        return NULL;
    }
    return out;
}

/* zlib's own gzip or zlib stream of in, at level 6. */
static uint8_t *zlib_deflate(const uint8_t *in, size_t n, int wbits, size_t *len)
{
    z_stream zs = {0};
    deflateInit2(&zs, 6, Z_DEFLATED, wbits, 8, Z_DEFAULT_STRATEGY);
    size_t cap = deflateBound(&zs, (uLong)n) + 16;
    uint8_t *out = malloc(cap);
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)n;
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    deflate(&zs, Z_FINISH);
    *len = zs.total_out;
    deflateEnd(&zs);
    return out;
}

/* ------------------------------------------------------------------------------------------ */
/* compression_params                                                                         */

static void test_params_as_otelcol(void)
{
    static const struct {
        const char *type;
        int64_t level;
        bool ok;
    } cases[] = {
        {"gzip", 0, true},   {"gzip", -1, true},   {"gzip", -2, true},     {"gzip", 1, true},
        {"gzip", 9, true},   {"gzip", 10, false},  {"gzip", -3, false},    {"zlib", 5, true},
        {"zlib", 12, false}, {"deflate", 9, true}, {"deflate", -4, false}, {"zstd", -7, true},
        {"zstd", 22, true},  {"zstd", 1000, true}, {"snappy", 0, true},    {"snappy", 1, false},
        {"lz4", 3, false},   {"none", 99, true},   {"", -99, true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        om_compression_params_t p = {.level = cases[i].level};
        om_err_t err = {0};
        int rc = om_compression_params_validate(cases[i].type, &p, NULL, &err);
        ASSERT_EQ_INT(rc, cases[i].ok ? 0 : OM_ECONFIG);
        if (!cases[i].ok) {
            ASSERT_EQ_STR(err.at, "compression_params::level");
            ASSERT_CONTAINS(err.msg, "unsupported parameters {Level:");
            ASSERT_CONTAINS(err.msg, cases[i].type);
        }
    }
    om_compression_params_t p = {.level = 10};
    om_err_t err = {0};
    ASSERT_EQ_INT(om_compression_params_validate("gzip", &p, "client", &err), OM_ECONFIG);
    ASSERT_EQ_STR(err.at, "client::compression_params::level");
    ASSERT_EQ_STR(err.msg, "unsupported parameters {Level:10} for compression type \"gzip\"");
}

/* Both exporters' bad levels as `otelmon validate` reports them. */
static void test_bad_level_has_file_line_column(void)
{
    const char *yaml = "receivers:\n"
                       "  otlp:\n"
                       "    protocols:\n"
                       "      grpc:\n"
                       "exporters:\n"
                       "  otlp:\n"
                       "    endpoint: b:4317\n"
                       "    compression_params:\n"
                       "      level: 10\n"
                       "  otlphttp:\n"
                       "    endpoint: http://b:4318\n"
                       "    compression: zlib\n"
                       "    compression_params: {level: -5}\n"
                       "  otlphttp/2:\n"
                       "    endpoint: http://b:4318\n"
                       "    compression_params: {level: x}\n"
                       "service:\n"
                       "  pipelines:\n"
                       "    traces:\n"
                       "      receivers: [otlp]\n"
                       "      exporters: [otlp, otlphttp, otlphttp/2]\n";
    om_diags_t d = {0};
    om_config_t *cfg = NULL;
    uv_loop_t loop;
    uv_loop_init(&loop);
    om_host_t host;
    om_test_host_init(&host, &loop);
    if (om_config_load_string("p.yaml", yaml, strlen(yaml), &cfg, &d) == 0) {
        om_graph_t *g = NULL;
        om_graph_build(cfg, &host, true, &g, &d);
        om_graph_free(g);
    }
    om_strbuf_t all;
    om_strbuf_init(&all, 0);
    om_strbuf_puts(&all, "");
    for (size_t i = 0; i < d.n; i++) {
        om_strbuf_printf(&all, "%s\n", d.msgs[i]);
    }
    ASSERT_CONTAINS(all.data, "p.yaml:9:14: exporters::otlp: compression_params::level: "
                              "unsupported parameters {Level:10} for compression type \"gzip\"");
    ASSERT_CONTAINS(all.data, "p.yaml:13:33: exporters::otlphttp: compression_params::level: "
                              "unsupported parameters {Level:-5} for compression type \"zlib\"");
    ASSERT_CONTAINS(all.data, "p.yaml:16:33: exporters::otlphttp/2::compression_params::level: "
                              "\"x\" is not an integer");
    om_strbuf_free(&all);
    om_diags_free(&d);
    om_config_free(cfg);
    om_test_host_close(&host);
    uv_loop_close(&loop);
}

/* ------------------------------------------------------------------------------------------ */
/* Compressors                                                                                */

static void roundtrip(om_comp_t alg, int level, const uint8_t *in, size_t n)
{
    om_compressor_t *c = NULL;
    ASSERT_EQ_INT(om_compressor_new(alg, level, &c), 0);
    for (int round = 0; round < 2; round++) { /* the second use reuses the state */
        uint8_t *z = NULL;
        size_t zn = 0, got = 0;
        ASSERT_EQ_INT(om_compressor_run(c, in, n, &z, &zn), 0);
        uint8_t *back = NULL;
        if (alg == OM_COMP_ZSTD) {
            back = malloc(n + 1);
            got = ZSTD_decompress(back, n + 1, z, zn);
            ASSERT_TRUE(!ZSTD_isError(got));
        } else {
            back = zlib_inflate(z, zn, alg == OM_COMP_GZIP ? 31 : 15, n + 1, &got);
            ASSERT_TRUE(back != NULL);
            /* And our own decoder agrees. */
            uint8_t *ours = NULL;
            size_t ours_n = 0;
            om_err_t err = {0};
            ASSERT_EQ_INT(om_decompress(alg, z, zn, n, &ours, &ours_n, &err), 0);
            ASSERT_EQ_UINT(ours_n, n);
            ASSERT_TRUE(om_same(ours, in, n));
            om_free(ours);
        }
        ASSERT_EQ_UINT(got, n);
        ASSERT_TRUE(om_same(back, in, n));
        if (n > 1000 && level != -2) {
            ASSERT_TRUE(zn < n / 4); /* it did compress */
        }
        free(back);
        om_free(z);
    }
    om_compressor_free(c);
}

static void test_every_level_roundtrips(void)
{
    size_t n = 200 * 1000;
    uint8_t *in = sample(n);
    for (int level = -2; level <= 9; level++) {
        roundtrip(OM_COMP_GZIP, level, in, n);
        roundtrip(OM_COMP_ZLIB, level, in, n);
        roundtrip(OM_COMP_GZIP, level, in, 0); /* an empty request */
        roundtrip(OM_COMP_GZIP, level, NULL, 0);
    }
    static const int zstd_levels[] = {-100, -1, 0, 1, 3, 19, 22, 1000};
    for (size_t i = 0; i < sizeof zstd_levels / sizeof zstd_levels[0]; i++) {
        roundtrip(OM_COMP_ZSTD, zstd_levels[i], in, n);
    }
    om_compressor_t *c = NULL;
    ASSERT_EQ_INT(om_compressor_new(OM_COMP_GZIP, 10, &c), OM_EINVAL);
    ASSERT_EQ_INT(om_compressor_new(OM_COMP_ZLIB, -3, &c), OM_EINVAL);
    ASSERT_EQ_INT(om_compressor_new(OM_COMP_NONE, 0, &c), OM_EINVAL);
    free(in);
}

/* The default level: 0 and -1 give the same bytes as OM_COMP_DEFAULT_LEVEL. */
static void test_default_level(void)
{
    size_t n = 50 * 1000;
    uint8_t *in = sample(n);
    uint8_t *z[3];
    size_t zn[3];
    const int levels[] = {0, -1, OM_COMP_DEFAULT_LEVEL};
    for (int i = 0; i < 3; i++) {
        om_compressor_t *c = NULL;
        ASSERT_EQ_INT(om_compressor_new(OM_COMP_GZIP, levels[i], &c), 0);
        ASSERT_EQ_INT(om_compressor_run(c, in, n, &z[i], &zn[i]), 0);
        om_compressor_free(c);
    }
    ASSERT_EQ_UINT(zn[0], zn[2]);
    ASSERT_EQ_UINT(zn[1], zn[2]);
    ASSERT_TRUE(memcmp(z[0], z[2], zn[0]) == 0 && memcmp(z[1], z[2], zn[0]) == 0);
    for (int i = 0; i < 3; i++) {
        om_free(z[i]);
    }
    free(in);
}

static void test_cache_keeps_at_most_keep(void)
{
    om_compressors_t *cs = om_compressors_new(OM_COMP_GZIP, 0, 2);
    ASSERT_TRUE(cs != NULL);
    om_compressor_t *c[3];
    for (int i = 0; i < 3; i++) {
        c[i] = om_compressors_get(cs);
        ASSERT_TRUE(c[i] != NULL);
    }
    for (int i = 0; i < 3; i++) {
        om_compressors_put(cs, c[i]); /* the third is freed */
    }
    om_compressors_put(cs, NULL);
    om_compressor_t *again = om_compressors_get(cs);
    ASSERT_TRUE(again == c[1]); /* the last one kept comes back first */
    om_compressors_put(cs, again);
    om_compressors_free(cs);
    om_compressors_free(NULL);
    /* Allocation failures are reported, never a crash. */
    for (unsigned long k = 1; k < 6; k++) {
        cs = om_compressors_new(OM_COMP_ZSTD, 3, 1);
        om_alloc_fail_after(k);
        om_compressor_t *x = cs != NULL ? om_compressors_get(cs) : NULL;
        uint8_t *z = NULL;
        size_t zn = 0;
        int rc = x != NULL ? om_compressor_run(x, (const uint8_t *)"abc", 3, &z, &zn) : 0;
        om_alloc_fail_after(0);
        ASSERT_TRUE(rc == 0 || rc == OM_ENOMEM);
        if (rc == 0) {
            om_free(z);
        }
        if (cs != NULL) {
            om_compressors_put(cs, x);
        }
        om_compressors_free(cs);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* The adaptive default level                                                                 */

static uint64_t xorshift(uint64_t *r)
{
    *r ^= *r << 13;
    *r ^= *r >> 7;
    *r ^= *r << 17;
    return *r;
}

/* High-entropy input (random bytes): every level compresses it alike, so the cheapest does. */
static size_t random_input(uint64_t *r, uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        b[i] = (uint8_t)xorshift(r);
    }
    return n;
}

/* JSON-like spans with repeating values: libdeflate 1 and 3 make 14-16% more bytes than 6
 * on 16 KiB of it, 5 about 4% (measured when this test was written). */
static size_t json_input(uint64_t *r, uint8_t *b, size_t n)
{
    static const char *const routes[] = {"/api/cart",  "/api/checkout", "/api/products",
                                         "/api/users", "/health",       "/api/orders"};
    static const char *const methods[] = {"GET", "POST", "PUT", "DELETE"};
    size_t i = 0;
    while (i + 400 < n) {
        unsigned k = (unsigned)(xorshift(r) % 6);
        i += (size_t)snprintf(
            (char *)b + i, n - i,
            "{\"name\":\"%s %s\",\"attributes\":{\"http.url\":\"http://shop.example.com:8080%s/"
            "%u\",\"http.method\":\"%s\",\"http.status_code\":%d,\"net.peer.port\":%u,"
            "\"http.user_agent\":\"Mozilla/5.0 (X11; Linux x86_64)\",\"id\":\"%08x\"}},",
            methods[k % 4], routes[k], routes[k], (unsigned)(xorshift(r) % 100000), methods[k % 4],
            k == 4 ? 500 : 200, 30000u + (unsigned)(xorshift(r) % 30000), (unsigned)xorshift(r));
    }
    return i;
}

/* One batch through a compressor of the set, checked to round-trip; *size: its output's. */
static void auto_batch_into(om_compressors_t *cs, const uint8_t *in, size_t n, size_t *size)
{
    om_compressor_t *c = om_compressors_get(cs);
    ASSERT_TRUE(c != NULL);
    uint8_t *z = NULL, *back = NULL;
    size_t zn = 0, got = 0;
    ASSERT_EQ_INT(om_compressor_run(c, in, n, &z, &zn), 0);
    om_compressors_put(cs, c);
    om_err_t err = {0};
    ASSERT_EQ_INT(om_decompress(OM_COMP_GZIP, z, zn, n, &back, &got, &err), 0);
    ASSERT_EQ_UINT(got, n);
    ASSERT_TRUE(om_same(back, in, n));
    om_free(back);
    om_free(z);
    *size = zn;
}

static size_t auto_batch(om_compressors_t *cs, const uint8_t *in, size_t n)
{
    size_t zn = 0; /* 0 when an assertion failed, which fails the test */
    auto_batch_into(cs, in, n, &zn);
    return zn;
}

/* The size of in compressed by a lone compressor at a fixed level. */
static void fixed_size_into(int level, const uint8_t *in, size_t n, size_t *size)
{
    om_compressor_t *c = NULL;
    uint8_t *z = NULL;
    size_t zn = 0;
    ASSERT_EQ_INT(om_compressor_new(OM_COMP_GZIP, level, &c), 0);
    ASSERT_EQ_INT(om_compressor_run(c, in, n, &z, &zn), 0);
    om_compressor_free(c);
    om_free(z);
    *size = zn;
}

static size_t fixed_size(int level, const uint8_t *in, size_t n)
{
    size_t zn = 0;
    fixed_size_into(level, in, n, &zn);
    return zn;
}

/* Whether the set's next batch goes out at lib's level. */
static bool at(const om_compressors_t *cs, const char *lib, int level)
{
    return strcmp(om_compressors_lib(cs), lib) == 0 && om_compressors_level(cs) == level;
}

/* High-entropy data: the cheapest candidate within the first (sampled) batches, libdeflate 5
 * -> 3 -> 1 -> ISA-L 2, two samples each, and it stays there; samples keep coming every 32nd
 * batch. */
static void test_auto_picks_cheap_level_on_random_data(void)
{
    size_t cap = 64 * 1024;
    uint8_t *in = malloc(cap);
    uint64_t r = 1;
    om_compressors_t *cs = om_compressors_new(OM_COMP_GZIP, 0, 2);
    ASSERT_TRUE(cs != NULL);
    ASSERT_TRUE(at(cs, "libdeflate", 5)); /* it starts at the strong candidate */
    for (int i = 0; i < 4; i++) {
        auto_batch(cs, in, random_input(&r, in, cap));
    }
    ASSERT_TRUE(at(cs, "libdeflate", 1));
    for (int i = 0; i < 2; i++) {
        auto_batch(cs, in, random_input(&r, in, cap));
    }
    ASSERT_TRUE(at(cs, "isa-l", 2));
    for (int i = 0; i < 100; i++) {
        auto_batch(cs, in, random_input(&r, in, cap));
        ASSERT_TRUE(at(cs, "isa-l", 2));
    }
    uint64_t samples = 0, switches = 0;
    om_compressors_stats(cs, &samples, &switches);
    ASSERT_EQ_UINT(switches, 3);
    /* The first 6, the batch after the last good probe, then batches 32, 64 and 96. */
    ASSERT_EQ_UINT(samples, 6 + 1 + 3);
    om_compressors_free(cs);
    free(in);
}

/* JSON-like data keeps the stronger level (the cheaper ones miss the 5% bound), and a sample
 * batch sends the smallest of its outputs: the reference's. zlib streams adapt alike. */
static void test_auto_keeps_strong_level_on_repetitive_data(void)
{
    size_t cap = 16 * 1024;
    uint8_t *in = malloc(cap);
    uint64_t r = 2;
    om_compressors_t *cs = om_compressors_new(OM_COMP_GZIP, -1, 2);
    ASSERT_TRUE(cs != NULL);
    size_t n = json_input(&r, in, cap);
    ASSERT_EQ_UINT(auto_batch(cs, in, n), fixed_size(6, in, n)); /* batch 0 is a sample */
    ASSERT_TRUE(fixed_size(1, in, n) * 1000 > fixed_size(6, in, n) * 1040); /* the premise */
    for (int i = 1; i < 300; i++) {
        n = json_input(&r, in, cap);
        size_t zn = auto_batch(cs, in, n);
        ASSERT_TRUE(om_compressors_level(cs) >= 5);
        ASSERT_TRUE(zn <= fixed_size(5, in, n)); /* 5, or a sample's smaller output */
    }
    uint64_t samples = 0, switches = 0;
    om_compressors_stats(cs, &samples, &switches);
    ASSERT_TRUE(samples >= 4 + 9);
    ASSERT_TRUE(switches <= 2);
    om_compressors_free(cs);
    /* A zlib set: the same rule; the output is a zlib stream. */
    cs = om_compressors_new(OM_COMP_ZLIB, 0, 1);
    om_compressor_t *c = om_compressors_get(cs);
    uint8_t *z = NULL, *back = NULL;
    size_t zn = 0, got = 0;
    ASSERT_EQ_INT(om_compressor_run(c, in, n, &z, &zn), 0);
    om_compressors_put(cs, c);
    back = zlib_inflate(z, zn, 15, n, &got);
    ASSERT_TRUE(back != NULL && got == n && om_same(back, in, n));
    free(back);
    om_free(z);
    om_compressors_free(cs);
    free(in);
}

/* Data that changes: cheap on random data, back up to >= 5 within one sample interval and
 * the climb once JSON-like data arrives, and down to 1 again when random data returns. */
static void test_auto_follows_the_data(void)
{
    size_t cap = 16 * 1024;
    uint8_t *in = malloc(cap);
    uint64_t r = 3;
    om_compressors_t *cs = om_compressors_new(OM_COMP_GZIP, 0, 1);
    for (int i = 0; i < 40; i++) {
        auto_batch(cs, in, random_input(&r, in, cap));
    }
    ASSERT_TRUE(at(cs, "isa-l", 2));
    int took = -1;
    for (int i = 0; i < 64 && took < 0; i++) {
        auto_batch(cs, in, json_input(&r, in, cap));
        took = strcmp(om_compressors_lib(cs), "libdeflate") == 0 && om_compressors_level(cs) >= 5
                   ? i + 1
                   : -1;
    }
    ASSERT_TRUE(took > 0 && took <= 32 + 3); /* the next sample, then one resample per level */
    took = -1;
    for (int i = 0; i < 2000 && took < 0; i++) {
        auto_batch(cs, in, random_input(&r, in, cap));
        took = at(cs, "isa-l", 2) ? i + 1 : -1;
    }
    ASSERT_TRUE(took > 0);
    om_compressors_free(cs);
    free(in);
}

/* A batch over 256 KiB is measured on four 64 KiB pieces spread over it, and sent at the
 * current candidate. The batch here is 256 KiB of JSON-like data, then random bytes: on the
 * whole batch the cheapest candidate is within the bound (the random part dominates the
 * output), on its first 256 KiB it is not. So a sample of the batch's start alone would keep
 * the strong level; the spread one walks down as on random data. */
static void test_auto_samples_large_batches_on_spread_pieces(void)
{
    const size_t head = 256 * 1024, cap = 2 * 1024 * 1024;
    uint8_t *in = malloc(cap);
    uint64_t r = 4;
    size_t h = json_input(&r, in, head);
    random_input(&r, in + h, cap - h);
    ASSERT_TRUE(fixed_size(1, in, h) * 1000 > fixed_size(6, in, h) * 1045); /* the premises */
    ASSERT_TRUE(fixed_size(1, in, cap) * 1000 <= fixed_size(6, in, cap) * 1045);
    om_compressors_t *cs = om_compressors_new(OM_COMP_GZIP, 0, 1);
    ASSERT_TRUE(cs != NULL);
    for (int i = 0; i < 6; i++) {
        random_input(&r, in + h, cap - h);
        int level = om_compressors_level(cs);
        bool ld = strcmp(om_compressors_lib(cs), "libdeflate") == 0;
        size_t zn = auto_batch(cs, in, cap);
        if (ld) {
            /* The batch went out at the level it started at, not the sample's smallest. */
            ASSERT_EQ_UINT(zn, fixed_size(level, in, cap));
        }
    }
    ASSERT_TRUE(at(cs, "isa-l", 2));
    uint64_t samples = 0, switches = 0;
    om_compressors_stats(cs, &samples, &switches);
    ASSERT_EQ_UINT(samples, 6);
    ASSERT_EQ_UINT(om_compressors_sampled_bytes(cs), samples * 256 * 1024);
    om_compressors_free(cs);
    /* JSON-like batches of 1 MiB keep the strong level, as smaller ones do. */
    cs = om_compressors_new(OM_COMP_GZIP, 0, 1);
    for (int i = 0; i < 40; i++) {
        size_t n = json_input(&r, in, 1024 * 1024);
        auto_batch(cs, in, n);
        ASSERT_TRUE(om_compressors_level(cs) >= 5);
    }
    om_compressors_stats(cs, &samples, &switches);
    ASSERT_TRUE(samples >= 4 + 1);
    ASSERT_EQ_UINT(om_compressors_sampled_bytes(cs), samples * 256 * 1024);
    om_compressors_free(cs);
    free(in);
}

/* in[0..n) cut into pieces of sizes from r (zero-length ones among them); returns how many. */
static size_t cut_pieces(uint64_t *r, const uint8_t *in, size_t n, om_raw_seg_t *p, size_t max)
{
    size_t k = 0, at = 0;
    while (at < n && k + 1 < max) {
        size_t len = (size_t)(xorshift(r) % 60000);
        len = k % 7 == 3 ? 0 : len;
        len = len > n - at ? n - at : len;
        p[k++] = (om_raw_seg_t){in + at, len};
        at += len;
    }
    p[k++] = (om_raw_seg_t){in + at, n - at};
    return k;
}

/* A set's next batch, given in pieces: it round-trips to their bytes end to end. */
static void pieces_batch_into(om_compressors_t *cs, const om_raw_seg_t *p, size_t n_p,
                              const uint8_t *whole, size_t n, size_t *size)
{
    om_compressor_t *c = om_compressors_get(cs);
    uint8_t *z = NULL, *back = NULL;
    size_t zn = 0, got = 0;
    int rc = om_compressor_run_pieces(c, p, n_p, &z, &zn);
    om_compressors_put(cs, c);
    ASSERT_EQ_INT(rc, 0);
    om_err_t err = {0};
    ASSERT_EQ_INT(om_decompress(OM_COMP_GZIP, z, zn, n, &back, &got, &err), 0);
    ASSERT_EQ_UINT(got, n);
    ASSERT_TRUE(got == n && om_same(back, whole, n));
    om_free(back);
    om_free(z);
    *size = zn;
}

static size_t pieces_batch(om_compressors_t *cs, const om_raw_seg_t *p, size_t n_p,
                           const uint8_t *whole, size_t n)
{
    size_t zn = 0; /* 0 when an assertion failed, which fails the test */
    pieces_batch_into(cs, p, n_p, whole, n, &zn);
    return zn;
}

/* A batch in pieces (the exporters give their batches' requests as they arrived) compresses
 * to what the pieces end to end make: ISA-L streams over them and makes the same size as its
 * one-shot mode within 1%; the other levels and zstd round-trip too; out of memory fails
 * cleanly. */
static void test_pieces_compress_as_one(void)
{
    const size_t cap = 1536 * 1024;
    uint8_t *in = malloc(cap);
    om_raw_seg_t p[200];
    uint64_t r = 5;
    /* Half JSON-like, half random: ISA-L's stream must carry both. */
    size_t h = json_input(&r, in, cap / 2);
    size_t n = h + random_input(&r, in + h, cap - h);
    size_t n_p = cut_pieces(&r, in, n, p, 200);
    ASSERT_TRUE(n_p > 20);
    /* Two adaptive sets at ISA-L 2 (random batches, past the samples after the walk). */
    om_compressors_t *pieces = om_compressors_new(OM_COMP_GZIP, 0, 1);
    om_compressors_t *whole = om_compressors_new(OM_COMP_GZIP, 0, 1);
    uint8_t *rnd = malloc(64 * 1024);
    for (int i = 0; i < 8; i++) {
        random_input(&r, rnd, 64 * 1024);
        auto_batch(pieces, rnd, 64 * 1024);
        auto_batch(whole, rnd, 64 * 1024);
    }
    ASSERT_TRUE(at(pieces, "isa-l", 2) && at(whole, "isa-l", 2));
    size_t zp = pieces_batch(pieces, p, n_p, in, n);
    size_t zw = auto_batch(whole, in, n);
    ASSERT_TRUE(zp * 100 <= zw * 101 && zw * 100 <= zp * 101);
    /* Random pieces only: ISA-L's stream may pass its first guess of the output's size. */
    random_input(&r, in, cap);
    n_p = cut_pieces(&r, in, cap, p, 200);
    pieces_batch(pieces, p, n_p, in, cap);
    /* One empty piece without bytes (an empty request), as the exporters may give it. */
    const om_raw_seg_t none = {NULL, 0};
    pieces_batch(pieces, &none, 1, in, 0);
    /* Out of memory at each allocation in turn: an error, never a bad body or a leak. */
    for (unsigned long k = 1; k < 8; k++) {
        om_compressor_t *c = om_compressors_get(pieces);
        uint8_t *z = NULL;
        size_t zn = 0;
        om_alloc_fail_after(k);
        int rc = om_compressor_run_pieces(c, p, n_p, &z, &zn);
        om_alloc_fail_after(0);
        om_compressors_put(pieces, c);
        ASSERT_TRUE(rc == 0 || rc == OM_ENOMEM);
        om_free(z);
    }
    om_compressors_free(pieces);
    om_compressors_free(whole);
    /* A fixed level, Huffman-only, zstd, and no pieces at all. */
    const struct {
        om_comp_t alg;
        int level;
    } fixed[] = {{OM_COMP_GZIP, 1}, {OM_COMP_GZIP, 6}, {OM_COMP_GZIP, -2}, {OM_COMP_ZSTD, 3}};
    for (size_t f = 0; f < sizeof fixed / sizeof fixed[0]; f++) {
        om_compressor_t *c = NULL;
        ASSERT_EQ_INT(om_compressor_new(fixed[f].alg, fixed[f].level, &c), 0);
        uint8_t *z = NULL, *back = NULL;
        size_t zn = 0, got = 0;
        ASSERT_EQ_INT(om_compressor_run_pieces(c, p, n_p, &z, &zn), 0);
        om_err_t err = {0};
        ASSERT_EQ_INT(om_decompress(fixed[f].alg, z, zn, cap, &back, &got, &err), 0);
        ASSERT_TRUE(got == cap && om_same(back, in, cap));
        om_free(back);
        om_free(z);
        /* No pieces, and one empty piece without bytes (an empty request). */
        for (size_t k = 0; k < 2; k++) {
            ASSERT_EQ_INT(om_compressor_run_pieces(c, k == 0 ? NULL : &none, k, &z, &zn), 0);
            ASSERT_EQ_INT(om_decompress(fixed[f].alg, z, zn, cap, &back, &got, &err), 0);
            ASSERT_EQ_UINT(got, 0);
            om_free(back);
            om_free(z);
        }
        om_compressor_free(c);
    }
    free(rnd);
    free(in);
}

/* An explicit level is used as is: same bytes as a lone compressor at that level, whatever
 * the data, and nothing sampled. zstd's default (0) is not adaptive either. */
static void test_explicit_level_never_adapts(void)
{
    size_t cap = 16 * 1024;
    uint8_t *in = malloc(cap);
    uint64_t r = 4;
    static const int levels[] = {1, 5, 6, 9, -2};
    for (size_t l = 0; l < sizeof levels / sizeof levels[0]; l++) {
        om_compressors_t *cs = om_compressors_new(OM_COMP_GZIP, levels[l], 1);
        for (int i = 0; i < 70; i++) {
            size_t n = i % 2 ? random_input(&r, in, cap) : json_input(&r, in, cap);
            ASSERT_EQ_UINT(auto_batch(cs, in, n), fixed_size(levels[l], in, n));
            ASSERT_EQ_INT(om_compressors_level(cs), levels[l]);
            ASSERT_EQ_STR(om_compressors_lib(cs), levels[l] == -2 ? "zlib" : "libdeflate");
        }
        uint64_t samples = 1, switches = 1;
        om_compressors_stats(cs, &samples, &switches);
        ASSERT_EQ_UINT(samples, 0);
        ASSERT_EQ_UINT(switches, 0);
        om_compressors_free(cs);
    }
    om_compressors_t *cs = om_compressors_new(OM_COMP_ZSTD, 0, 1);
    ASSERT_EQ_INT(om_compressors_level(cs), 0);
    ASSERT_EQ_STR(om_compressors_lib(cs), "zstd");
    om_compressors_free(cs);
    free(in);
}

/* ISA-L's igzip 2 on in, one shot, as the adaptive level runs it (an independent call, with
 * ample room and the small level buffer the set uses: the same bytes as the set's when the set
 * ran ISA-L and the data compresses). */
static uint8_t *isal2(om_comp_t alg, const uint8_t *in, size_t n, size_t *zn)
{
    struct isal_zstream *zs = calloc(1, sizeof *zs);
    uint8_t *lb = malloc(ISAL_DEF_LVL2_SMALL);
    size_t cap = n + n / 4 + 1024;
    uint8_t *out = malloc(cap);
    isal_deflate_stateless_init(zs);
    zs->level = 2;
    zs->level_buf = lb;
    zs->level_buf_size = ISAL_DEF_LVL2_SMALL;
    zs->gzip_flag = alg == OM_COMP_GZIP ? IGZIP_GZIP : IGZIP_ZLIB;
    zs->hist_bits = 0;
    zs->next_in = (uint8_t *)(uintptr_t)in;
    zs->avail_in = (uint32_t)n;
    zs->next_out = out;
    zs->avail_out = (uint32_t)cap;
    *zn = isal_deflate_stateless(zs) == COMP_OK ? zs->total_out : 0;
    free(zs);
    free(lb);
    return out;
}

/* The ISA-L candidate, in gzip and zlib framing, on the inputs where a one-shot encoder can
 * go wrong: empty, 1 byte, sizes around its 32 KiB window and 64 KiB stored blocks, zeros and
 * 0xff (ISA-L has its own path for runs of them), text, and incompressible bytes, up to 3 MiB
 * of them (stored blocks: the output room must hold them). Each output inflates with zlib to
 * the input; a batch that was not a sample is byte for byte ISA-L 2's when the data
 * compresses (it ran ISA-L, not libdeflate). */
static void test_isal_candidate_roundtrips(void)
{
    static const size_t sizes[] = {
        0,     1,     2,     8,     9,         1023,          1024,     32767,    32768,
        32769, 65535, 65536, 65537, 65535 * 2, 65535 * 2 + 1, 1u << 20, 3u << 20, (3u << 20) + 1};
    size_t big = (3u << 20) + 1;
    uint8_t *text = sample(big), *rnd = malloc(big), *zeros = calloc(1, big), *ff = malloc(big);
    memset(ff, 0xff, big);
    uint64_t r = 11;
    random_input(&r, rnd, big);
    const uint8_t *kinds[] = {text, zeros, ff, rnd};
    const om_comp_t algs[] = {OM_COMP_GZIP, OM_COMP_ZLIB};
    size_t n_sizes = sizeof sizes / sizeof sizes[0];
    for (int a = 0; a < 2; a++) {
        for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
            /* A new set per kind, brought down to ISA-L 2 on random data (see above); the
             * next sample is its 32nd batch, after these. */
            om_compressors_t *cs = om_compressors_new(algs[a], 0, 1);
            ASSERT_TRUE(cs != NULL);
            for (int i = 0; i < 7; i++) {
                om_compressor_t *c = om_compressors_get(cs);
                uint8_t *z = NULL;
                size_t zn = 0;
                ASSERT_EQ_INT(om_compressor_run(c, rnd + i * 65536, 65536, &z, &zn), 0);
                om_compressors_put(cs, c);
                om_free(z);
            }
            size_t compared = 0;
            for (size_t i = 0; i < n_sizes; i++) {
                size_t n = sizes[i], zn = 0, got = 0;
                uint64_t s0 = 0, s1 = 0, sw = 0;
                ASSERT_TRUE(at(cs, "isa-l", 2));
                om_compressors_stats(cs, &s0, &sw);
                om_compressor_t *c = om_compressors_get(cs);
                uint8_t *z = NULL;
                ASSERT_EQ_INT(om_compressor_run(c, kinds[k], n, &z, &zn), 0);
                om_compressors_put(cs, c);
                om_compressors_stats(cs, &s1, &sw);
                int wbits = algs[a] == OM_COMP_GZIP ? 31 : 15;
                uint8_t *back = zlib_inflate(z, zn, wbits, n + 1, &got);
                ASSERT_TRUE(back != NULL);
                ASSERT_EQ_UINT(got, n);
                ASSERT_TRUE(om_same(back, kinds[k], n));
                ASSERT_TRUE(zn <= n + 5 * (n / 65535 + 1) + 18); /* never worse than stored */
                if (s1 == s0 && kinds[k] != rnd) {
                    size_t in_n = 0;
                    uint8_t *want = isal2(algs[a], kinds[k], n, &in_n);
                    ASSERT_EQ_UINT(zn, in_n);
                    ASSERT_TRUE(om_same(z, want, zn));
                    free(want);
                    compared++;
                }
                free(back);
                om_free(z);
            }
            ASSERT_EQ_UINT(compared, kinds[k] != rnd ? n_sizes : 0);
            om_compressors_free(cs);
        }
    }
    free(text);
    free(rnd);
    free(zeros);
    free(ff);
}

/* Out of memory in a compressor that runs ISA-L (its stream, its level buffer, the output):
 * reported, never a crash or a leak, and the next batch works. keep 0: every batch gets a
 * new compressor, which makes ISA-L's state anew. */
static void test_isal_out_of_memory(void)
{
    size_t n = 64 * 1024;
    uint8_t *in = malloc(n);
    uint64_t r = 12;
    om_compressors_t *cs = om_compressors_new(OM_COMP_GZIP, 0, 0);
    for (int i = 0; i < 7; i++) {
        auto_batch(cs, in, random_input(&r, in, n));
    }
    ASSERT_TRUE(at(cs, "isa-l", 2));
    for (unsigned long k = 1; k < 6; k++) {
        om_compressor_t *c = om_compressors_get(cs);
        ASSERT_TRUE(c != NULL);
        uint8_t *z = NULL;
        size_t zn = 0;
        om_alloc_fail_after(k);
        int rc = om_compressor_run(c, in, 100, &z, &zn); /* small: never a sample */
        om_alloc_fail_after(0);
        ASSERT_TRUE(rc == 0 || rc == OM_ENOMEM);
        if (k < 3) {
            ASSERT_EQ_INT(rc, OM_ENOMEM); /* the stream, the level buffer */
        }
        om_free(z);
        z = NULL;
        ASSERT_EQ_INT(om_compressor_run(c, in, 100, &z, &zn), 0); /* and then it works */
        size_t got = 0;
        uint8_t *back = zlib_inflate(z, zn, 31, 100, &got);
        ASSERT_TRUE(back != NULL && got == 100 && om_same(back, in, 100));
        free(back);
        om_free(z);
        om_compressors_put(cs, c);
    }
    om_compressors_free(cs);
    free(in);
}

/* Out of memory in an adaptive set (the set, its compressor, a sample's three outputs):
 * reported, never a crash or a leak (the sanitizer build checks the leaks). */
static void test_auto_out_of_memory(void)
{
    size_t n = 8 * 1024;
    uint8_t *in = malloc(n);
    uint64_t r = 5;
    json_input(&r, in, n);
    for (unsigned long k = 1; k < 10; k++) {
        om_alloc_fail_after(k);
        om_compressors_t *cs = om_compressors_new(OM_COMP_GZIP, 0, 1);
        om_compressor_t *c = cs != NULL ? om_compressors_get(cs) : NULL;
        uint8_t *z = NULL;
        size_t zn = 0;
        int rc = c != NULL ? om_compressor_run(c, in, n, &z, &zn) : 0;
        om_alloc_fail_after(0);
        ASSERT_TRUE(rc == 0 || rc == OM_ENOMEM);
        if (rc == 0 && c != NULL) {
            ASSERT_TRUE(zn > 0 && zn < n);
            om_free(z);
        }
        if (cs != NULL) {
            om_compressors_put(cs, c);
        }
        om_compressors_free(cs);
    }
    free(in);
}

/* Several workers run one set's compressors at once (as the exporters' jobs do): every
 * output round-trips and the level stays a candidate. Run under the sanitizers too. */
typedef struct auto_worker {
    om_compressor_t *c;
    uint64_t seed;
    int bad;
} auto_worker_t;

static void auto_worker_main(void *arg)
{
    auto_worker_t *w = arg;
    size_t cap = 8 * 1024;
    uint8_t *in = malloc(cap), *back = NULL;
    for (int i = 0; i < 150; i++) {
        size_t n = (i / 50) % 2 ? json_input(&w->seed, in, cap) : random_input(&w->seed, in, cap);
        uint8_t *z = NULL;
        size_t zn = 0, got = 0;
        om_err_t err = {0};
        if (om_compressor_run(w->c, in, n, &z, &zn) != 0 ||
            om_decompress(OM_COMP_GZIP, z, zn, n, &back, &got, &err) != 0 || got != n ||
            !om_same(back, in, n)) {
            w->bad++;
        }
        om_free(back);
        back = NULL;
        om_free(z);
    }
    free(in);
}

static void test_auto_from_several_threads(void)
{
    om_compressors_t *cs = om_compressors_new(OM_COMP_GZIP, 0, 4);
    auto_worker_t w[4];
    uv_thread_t t[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (auto_worker_t){.c = om_compressors_get(cs), .seed = 100 + (uint64_t)i};
        ASSERT_TRUE(w[i].c != NULL);
        ASSERT_EQ_INT(uv_thread_create(&t[i], auto_worker_main, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        ASSERT_EQ_INT(uv_thread_join(&t[i]), 0);
        ASSERT_EQ_INT(w[i].bad, 0);
        om_compressors_put(cs, w[i].c);
    }
    int level = om_compressors_level(cs);
    ASSERT_TRUE(at(cs, "isa-l", 2) || (strcmp(om_compressors_lib(cs), "libdeflate") == 0 &&
                                       (level == 1 || level == 3 || level == 5 || level == 6)));
    uint64_t samples = 0, switches = 0;
    om_compressors_stats(cs, &samples, &switches);
    ASSERT_TRUE(samples >= 600 / 32);
    om_compressors_free(cs);
}

/* ------------------------------------------------------------------------------------------ */
/* Decompression                                                                              */

static int decompress(om_comp_t alg, const uint8_t *z, size_t zn, size_t max, size_t *n)
{
    uint8_t *out = NULL;
    om_err_t err = {0};
    int rc = om_decompress(alg, z, zn, max, &out, n, &err);
    if (rc == 0 && (out == NULL || out[*n] != '\0')) {
        rc = -1000; /* not NUL-terminated: fails every check of the result */
    }
    if (rc < 0 && rc != -1000 && err.msg[0] == '\0') {
        rc = -1001; /* an error without a message */
    }
    om_free(out);
    return rc;
}

static void test_bombs_stop_at_the_cap(void)
{
    size_t n = 16 * 1024 * 1024;
    uint8_t *zeros = calloc(1, n);
    size_t zn = 0, got = 0;
    uint8_t *z = zlib_deflate(zeros, n, 31, &zn);
    ASSERT_TRUE(zn < 64 * 1024);
    ASSERT_EQ_INT(decompress(OM_COMP_GZIP, z, zn, 1024 * 1024, &got), OM_ETOOBIG);
    ASSERT_EQ_INT(decompress(OM_COMP_GZIP, z, zn, n - 1, &got), OM_ETOOBIG);
    ASSERT_EQ_INT(decompress(OM_COMP_GZIP, z, zn, n, &got), 0); /* exactly the cap: fine */
    ASSERT_EQ_UINT(got, n);
    /* A trailer that lies small makes the buffer grow; one that lies big is capped. */
    uint8_t *liar = malloc(zn);
    memcpy(liar, z, zn);
    memset(liar + zn - 4, 0, 4);
    liar[zn - 4] = 10;
    ASSERT_EQ_INT(decompress(OM_COMP_GZIP, liar, zn, 1024 * 1024, &got), OM_ETOOBIG);
    memset(liar + zn - 4, 0xff, 4);
    ASSERT_EQ_INT(decompress(OM_COMP_GZIP, liar, zn, 1024 * 1024, &got), OM_ETOOBIG);
    free(liar);
    free(z);
    z = zlib_deflate(zeros, n, 15, &zn);
    ASSERT_EQ_INT(decompress(OM_COMP_ZLIB, z, zn, 1024 * 1024, &got), OM_ETOOBIG);
    ASSERT_EQ_INT(decompress(OM_COMP_ZLIB, z, zn, n, &got), 0);
    free(z);
    free(zeros);
}

static void test_corrupt_truncated_and_members(void)
{
    size_t n = 100 * 1000, zn = 0, got = 0;
    uint8_t *in = sample(n);
    uint8_t *z = zlib_deflate(in, n, 31, &zn);
    ASSERT_EQ_INT(decompress(OM_COMP_GZIP, z, zn, n, &got), 0);
    /* Truncated anywhere: an error, never a partial body. */
    for (size_t cut = 1; cut < zn; cut += zn / 37 + 1) {
        ASSERT_EQ_INT(decompress(OM_COMP_GZIP, z, cut, 2 * n, &got), OM_EINVAL);
    }
    /* A flipped byte in the data or the checksum. */
    z[zn / 2] ^= 0x55;
    ASSERT_TRUE(decompress(OM_COMP_GZIP, z, zn, 2 * n, &got) != 0);
    z[zn / 2] ^= 0x55;
    z[zn - 6] ^= 1;
    ASSERT_EQ_INT(decompress(OM_COMP_GZIP, z, zn, 2 * n, &got), OM_EINVAL);
    z[zn - 6] ^= 1;
    /* Concatenated members are one body; garbage after a member is not. */
    uint8_t *two = malloc(2 * zn + 3);
    memcpy(two, z, zn);
    memcpy(two + zn, z, zn);
    ASSERT_EQ_INT(decompress(OM_COMP_GZIP, two, 2 * zn, 2 * n, &got), 0);
    ASSERT_EQ_UINT(got, 2 * n);
    ASSERT_EQ_INT(decompress(OM_COMP_GZIP, two, 2 * zn, 2 * n - 1, &got), OM_ETOOBIG);
    memcpy(two + zn, "xyz", 3);
    ASSERT_EQ_INT(decompress(OM_COMP_GZIP, two, zn + 3, 2 * n, &got), OM_EINVAL);
    free(two);
    free(z);
    /* zlib: what follows the stream is ignored, as Go's reader does. */
    z = zlib_deflate(in, n, 15, &zn);
    uint8_t *tail = malloc(zn + 3);
    memcpy(tail, z, zn);
    memcpy(tail + zn, "xyz", 3);
    ASSERT_EQ_INT(decompress(OM_COMP_ZLIB, tail, zn + 3, n, &got), 0);
    ASSERT_EQ_UINT(got, n);
    ASSERT_EQ_INT(decompress(OM_COMP_GZIP, tail, zn, n, &got), OM_EINVAL); /* not gzip */
    free(tail);
    free(z);
    /* Empty input is an empty body; garbage is corrupt; zstd is not this function's. */
    ASSERT_EQ_INT(decompress(OM_COMP_GZIP, NULL, 0, 10, &got), 0);
    ASSERT_EQ_UINT(got, 0);
    ASSERT_EQ_INT(decompress(OM_COMP_GZIP, (const uint8_t *)"hello, world", 12, 100, &got),
                  OM_EINVAL);
    ASSERT_EQ_INT(decompress(OM_COMP_ZSTD, in, 10, 100, &got), OM_EINVAL);
    ASSERT_EQ_INT(decompress(OM_COMP_ZSTD, NULL, 0, 10, &got), 0);
    /* Out of memory on every allocation in turn. */
    z = zlib_deflate(in, n, 31, &zn);
    for (unsigned long k = 1; k < 5; k++) {
        om_alloc_fail_after(k);
        int rc = decompress(OM_COMP_GZIP, z, zn, n, &got);
        om_alloc_fail_after(0);
        ASSERT_TRUE(rc == 0 || rc == OM_ENOMEM);
    }
    free(z);
    free(in);
}

/* A zstd frame that does not declare its size (what a streaming compressor writes). */
static uint8_t *zstd_stream_frame(const uint8_t *in, size_t n, size_t *zn)
{
    ZSTD_CCtx *c = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, 0);
    size_t cap = ZSTD_compressBound(n) + 64;
    uint8_t *z = malloc(cap);
    ZSTD_outBuffer ob = {z, cap, 0};
    ZSTD_inBuffer ib = {in, n, 0};
    size_t left = ZSTD_compressStream2(c, &ob, &ib, ZSTD_e_end);
    ZSTD_freeCCtx(c);
    *zn = left == 0 ? ob.pos : 0; /* 0: the test's checks fail */
    return z;
}

static uint8_t *zstd_frame(const uint8_t *in, size_t n, size_t *zn)
{
    size_t cap = ZSTD_compressBound(n);
    uint8_t *z = malloc(cap);
    *zn = ZSTD_compress(z, cap, in, n, 3);
    *zn = ZSTD_isError(*zn) ? 0 : *zn;
    return z;
}

static void test_zstd_whole_and_streamed(void)
{
    size_t n = 300000, zn = 0, sn = 0, got = 0;
    uint8_t *in = sample(n);
    uint8_t *z = zstd_frame(in, n, &zn);         /* declares n */
    uint8_t *zs = zstd_stream_frame(in, n, &sn); /* does not */
    ASSERT_TRUE(zn > 0 && sn > 0);
    ASSERT_EQ_UINT(ZSTD_getFrameContentSize(z, zn), n);
    ASSERT_TRUE(ZSTD_getFrameContentSize(zs, sn) == ZSTD_CONTENTSIZE_UNKNOWN);
    for (int k = 0; k < 2; k++) {
        const uint8_t *body = k == 0 ? z : zs;
        size_t bn = k == 0 ? zn : sn;
        uint8_t *out = NULL;
        om_err_t err = {0};
        ASSERT_EQ_INT(om_decompress(OM_COMP_ZSTD, body, bn, n, &out, &got, &err), 0);
        ASSERT_EQ_UINT(got, n);
        ASSERT_TRUE(om_same(out, in, n) && out[n] == '\0');
        om_free(out);
        /* The cap: one byte less is too big, for both paths; a bomb stops there. */
        ASSERT_EQ_INT(decompress(OM_COMP_ZSTD, body, bn, n - 1, &got), OM_ETOOBIG);
        ASSERT_EQ_INT(decompress(OM_COMP_ZSTD, body, bn, 4096, &got), OM_ETOOBIG);
        /* Truncated anywhere: corrupt, never a short body. */
        for (size_t cut = 1; cut < bn; cut += bn / 7) {
            ASSERT_EQ_INT(decompress(OM_COMP_ZSTD, body, cut, 2 * n, &got), OM_EINVAL);
        }
    }
    /* Frames back to back, declared and not, as one body; trailing garbage is corrupt. */
    uint8_t *cat = malloc(zn + sn + 3);
    memcpy(cat, z, zn);
    memcpy(cat + zn, zs, sn);
    ASSERT_EQ_INT(decompress(OM_COMP_ZSTD, cat, zn + sn, 2 * n, &got), 0);
    ASSERT_EQ_UINT(got, 2 * n);
    ASSERT_EQ_INT(decompress(OM_COMP_ZSTD, cat, zn + sn, 2 * n - 1, &got), OM_ETOOBIG);
    memcpy(cat + zn, z, zn);
    ASSERT_EQ_INT(decompress(OM_COMP_ZSTD, cat, 2 * zn, 2 * n, &got), 0);
    ASSERT_EQ_INT(decompress(OM_COMP_ZSTD, cat, 2 * zn, 2 * n - 1, &got), OM_ETOOBIG);
    memcpy(cat + zn, "xyz", 3);
    ASSERT_EQ_INT(decompress(OM_COMP_ZSTD, cat, zn + 3, 2 * n, &got), OM_EINVAL);
    /* A frame that declares a size it does not hold is corrupt. */
    uint8_t *liar = malloc(zn);
    size_t ln = 0;
    uint8_t *small = zstd_frame(in, 1000, &ln);
    memcpy(liar, small, ln);
    /* A small single-segment frame: magic (4), descriptor (1), then the 2-byte size. */
    liar[5] ^= 0x01;
    ASSERT_TRUE(ZSTD_getFrameContentSize(liar, ln) == 1001 ||
                ZSTD_getFrameContentSize(liar, ln) == 999);
    ASSERT_EQ_INT(decompress(OM_COMP_ZSTD, liar, ln, n, &got), OM_EINVAL);
    /* A declared size past the cap is refused before any work, however small the body. */
    ASSERT_EQ_INT(decompress(OM_COMP_ZSTD, z, zn, 1000, &got), OM_ETOOBIG);
    /* Out of memory on every allocation in turn. */
    for (unsigned long k = 1; k < 6; k++) {
        om_alloc_fail_after(k);
        int rc1 = decompress(OM_COMP_ZSTD, z, zn, n, &got);
        int rc2 = decompress(OM_COMP_ZSTD, zs, sn, n, &got);
        om_alloc_fail_after(0);
        ASSERT_TRUE(rc1 == 0 || rc1 == OM_ENOMEM);
        ASSERT_TRUE(rc2 == 0 || rc2 == OM_ENOMEM);
    }
    free(small);
    free(liar);
    free(cat);
    free(zs);
    free(z);
    free(in);
}

int main(void)
{
    OM_RUN(test_params_as_otelcol);
    OM_RUN(test_bad_level_has_file_line_column);
    OM_RUN(test_every_level_roundtrips);
    OM_RUN(test_default_level);
    OM_RUN(test_cache_keeps_at_most_keep);
    OM_RUN(test_auto_picks_cheap_level_on_random_data);
    OM_RUN(test_auto_keeps_strong_level_on_repetitive_data);
    OM_RUN(test_auto_follows_the_data);
    OM_RUN(test_auto_samples_large_batches_on_spread_pieces);
    OM_RUN(test_pieces_compress_as_one);
    OM_RUN(test_explicit_level_never_adapts);
    OM_RUN(test_auto_from_several_threads);
    OM_RUN(test_auto_out_of_memory);
    OM_RUN(test_isal_candidate_roundtrips);
    OM_RUN(test_isal_out_of_memory);
    OM_RUN(test_bombs_stop_at_the_cap);
    OM_RUN(test_corrupt_truncated_and_members);
    OM_RUN(test_zstd_whole_and_streamed);
    return om_test_summary();
}
