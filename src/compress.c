/* compress.c: the compression service (om.h, "Compression service"): otelcol's
 * compression_params, whole-buffer compressors and bounded whole-buffer decompression.
 *
 * Why whole buffers: exporters hold the whole request in memory (a batch packed as protobuf
 * or JSON), and receivers hold the whole body anyway, capped at max_request_body_size. That
 * lets libdeflate do gzip and zlib, which on OTLP data compresses several times faster than
 * zlib at the same ratio (bench/README.md), and Intel ISA-L's igzip, a candidate of the
 * adaptive default level only: on the load generator's data its level 2 makes output within
 * 4% of zlib 6's at a quarter of libdeflate 1's CPU (its levels do not mean zlib's 1..9, so
 * an explicit level stays libdeflate's). Huffman-only (-2) has no libdeflate counterpart and
 * goes through zlib.
 *
 * Threads: a compressor belongs to one thread at a time; the cache of idle compressors
 * belongs to the loop thread; om_decompress allocates its own decoder. The one shared thing
 * is a set's adaptive-level state (below), which the set's compressors update from whatever
 * worker runs them: an atomic counter and level on every batch, a mutex on sample batches. */
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include <isa-l/igzip_lib.h>
#include <libdeflate.h>
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "om.h"

/* ------------------------------------------------------------------------------------------ */
/* compression_params                                                                         */

const om_field_t om_compression_params_fields[] = {
    {.key = "level",
     .type = OM_F_INT,
     .offset = offsetof(om_compression_params_t, level),
     .min = (double)INT32_MIN,
     .max = (double)INT32_MAX,
     .help = "compression level; 0: the algorithm's default"},
    {.key = NULL},
};

/* otelcol's configcompression.Type.ValidateParams: zlib.DefaultCompression (-1),
 * HuffmanOnly (-2), NoCompression (0, which confighttp reads as "not set") and BestSpeed (1)
 * to BestCompression (9) for the deflate family; anything for zstd; only 0 for the rest. */
int om_compression_params_validate(const char *type, const om_compression_params_t *p,
                                   const char *at, om_err_t *err)
{
    int64_t l = p->level;
    if (type == NULL || type[0] == '\0' || strcmp(type, "none") == 0 || l == 0) {
        return 0;
    }
    if (strcmp(type, "gzip") == 0 || strcmp(type, "zlib") == 0 || strcmp(type, "deflate") == 0) {
        if (l == -1 || l == -2 || (l >= 1 && l <= 9)) {
            return 0;
        }
    } else if (strcmp(type, "zstd") == 0) {
        return 0;
    }
    char key[160];
    snprintf(key, sizeof key, "%s%scompression_params::level", at != NULL ? at : "",
             at != NULL && at[0] != '\0' ? "::" : "");
    om_err_at(err, key, "unsupported parameters {Level:%lld} for compression type \"%.32s\"",
              (long long)l, type);
    return OM_ECONFIG;
}

/* ------------------------------------------------------------------------------------------ */
/* Compressors                                                                                */

/* The adaptive default level (gzip and zlib when compression_params.level is not set).
 *
 * The rule: use the cheapest candidate whose output, measured on this exporter's own recent
 * batches, is within 5% of what zlib at otelcol's default level (6) makes. What every sample
 * measures is libdeflate 6 (the reference candidate: half zlib 6's CPU); zlib 6's size is that
 * times a factor, zlib 6's output over libdeflate 6's, measured on the first sample and then on
 * every AUTO_CAL_EVERY-th (a moving average: each new measure weighs 1/4). The factor was 0.995
 * to 1.006 on the data sets of bench/README.md; measuring it, rather than keeping 1% of the 5%
 * for it as this rule did before, lets ISA-L 2 (3.9-4.1% over zlib 6 on the load generator's
 * data, 4.5% over libdeflate 6) count as within the bound, at a quarter of libdeflate 1's CPU.
 * zlib 6 runs with a stream made for the sample (a kept one would be 256 KiB per compressor): 2-4
 * times its cost on 100-span requests, once per 256 batches. Sampling: the first AUTO_FIRST batches
 * and then every AUTO_EVERY-th are also compressed at the reference (and, while a cheaper candidate
 * is being probed, at that one too; and at zlib 6 when calibrating), and the smallest output is
 * sent; a batch over AUTO_WINDOW bytes is sent at the current candidate and measured on AUTO_WINDOW
 * bytes of it (run_sample). A candidate is left for the next stronger one as soon as one sample
 * finds it above AUTO_UP (105%: the bound) of zlib 6's estimated size, and the next batch is
 * sampled again (so a climb over several candidates takes a few batches, not several intervals); a
 * cheaper one is taken after AUTO_VOTES consecutive samples find it at most AUTO_DOWN (104.5%): the
 * 0.5% between them is the hysteresis (at 1%, ISA-L 2, 103.9-104.1% over on the load generator's
 * batches, passed a probe on some batches and not on others, and the failed probes' back-off then
 * kept the set on libdeflate 1 for thousands of batches). A passing probe has the next batch
 * sampled too (to confirm it, and go on down). A failed probe, and every move up, double the number
 * of samples until the next probe (up to AUTO_PROBE_MAX), so data near a threshold makes it flap
 * rarely. After the data changes, the bound can be missed for at most AUTO_EVERY - 1 batches plus
 * the climb. The candidates
 * (otelmon-compress-bench, bench/README.md "ISA-L"): ISA-L's igzip 2, then libdeflate 1, 3, 5,
 * 6. ISA-L 0 (static Huffman codes) is 25-37% over zlib 6; ISA-L 1 costs the same as 2 within
 * 3% and compresses 0.6% worse; ISA-L 3 costs as much as libdeflate 1 on 100-span requests and
 * compresses worse. libdeflate 2 and 4 compress like the level below them at more CPU, or miss
 * the bound where 5 does not. libdeflate 3 stays for data where 1's match finder falls short
 * and 3's does not (short keys repeated between random values: 3 within 0.2% of 6 where 1 is 8%
 * over, measured when this was written). */
typedef enum { LIB_LIBDEFLATE, LIB_ISAL } om__zlib_t;
typedef struct om__zcand {
    om__zlib_t lib;
    int level; /* in the library's own scale: libdeflate 1..12, ISA-L 0..3 */
} om__zcand_t;
/* Cheapest first; the last is the reference. */
static const om__zcand_t auto_levels[] = {
    {LIB_ISAL, 2},       {LIB_LIBDEFLATE, 1}, {LIB_LIBDEFLATE, 3},
    {LIB_LIBDEFLATE, 5}, {LIB_LIBDEFLATE, 6},
};
#define AUTO_N ((int)(sizeof auto_levels / sizeof auto_levels[0]))
#define AUTO_REF (AUTO_N - 1)
#define AUTO_START (AUTO_N - 2) /* libdeflate 5, the former fixed default: within the bound */
#define AUTO_FIRST 4
#define AUTO_EVERY 32
#define AUTO_UP 1.05    /* of zlib 6's (estimated) size */
#define AUTO_DOWN 1.045 /* of zlib 6's (estimated) size */
#define AUTO_VOTES 2
#define AUTO_PROBE_MAX 64        /* samples */
#define AUTO_CAL_EVERY 8         /* samples */
#define AUTO_MIN_INPUT 1024      /* smaller inputs say little about the data: never sampled */
#define AUTO_WINDOW (256 * 1024) /* bytes a sample measures at most (run_sample) */
#define AUTO_WINDOWS 4           /* pieces of a larger batch that make them up */

typedef struct om__zauto {
    atomic_uint_fast64_t batches; /* counted by every batch, to pick the samples */
    atomic_int idx;               /* in auto_levels: what the next batches use */
    atomic_bool resample;         /* sample the next batch too (after a move or a good probe) */
    uv_mutex_t lock;              /* the rest; taken by sample batches only */
    unsigned probe_gap;           /* samples between probes of the next cheaper level */
    unsigned since_probe;         /* samples since the last probe */
    unsigned votes;               /* consecutive probes that passed */
    double zlib6;                 /* zlib 6's output over libdeflate 6's (0: not measured) */
    uint64_t samples, switches;
    uint64_t sampled_bytes; /* measured by the samples: each at most AUTO_WINDOW */
} om__zauto_t;

struct om_compressor {
    om_comp_t alg;
    int level;                            /* fixed level; unused when aut is set */
    struct libdeflate_compressor *ld[10]; /* gzip, zlib: by level 1..9, made on first use */
    struct isal_zstream *isal;            /* gzip, zlib, adaptive: ISA-L's stream (80 KiB) */
    uint8_t *isal_buf;                    /* its level buffer (owned), isal_buf_size bytes */
    uint32_t isal_buf_size;
    ZSTD_CCtx *zstd;       /* zstd */
    om__zauto_t *aut;      /* the set's adaptive state (not owned); NULL: fixed */
    om_compressor_t *next; /* in a cache's idle list */
};

/* Loop thread (or any, before sharing): state starting at the strong candidate, probing the
 * cheaper one at the first sample. NULL when out of memory. */
static om__zauto_t *zauto_new(void)
{
    om__zauto_t *a = om_calloc(1, sizeof *a);
    if (a == NULL) {
        return NULL;
    }
    if (uv_mutex_init(&a->lock) != 0) {
        om_free(a);
        return NULL;
    }
    atomic_init(&a->batches, 0);
    atomic_init(&a->idx, AUTO_START);
    atomic_init(&a->resample, false);
    a->probe_gap = 1;
    return a;
}

static void zauto_free(om__zauto_t *a)
{
    if (a != NULL) {
        uv_mutex_destroy(&a->lock);
        om_free(a);
    }
}

static bool deflate_family(om_comp_t alg)
{
    return alg == OM_COMP_GZIP || alg == OM_COMP_ZLIB;
}

/* Whether a configured level means "not set" (otelcol's 0 and DefaultCompression, -1). */
static bool level_unset(om_comp_t alg, int level)
{
    return deflate_family(alg) && (level == 0 || level == -1);
}

/* libdeflate's compressor for level 1..9, made on first use; NULL when out of memory. */
static struct libdeflate_compressor *ld_at(om_compressor_t *c, int level)
{
    if (c->ld[level] == NULL) {
        c->ld[level] = libdeflate_alloc_compressor(level);
    }
    return c->ld[level];
}

static void isal_drop(om_compressor_t *c)
{
    om_free(c->isal);
    om_free(c->isal_buf);
    c->isal = NULL;
    c->isal_buf = NULL;
    c->isal_buf_size = 0;
}

int om_compressor_new(om_comp_t alg, int level, om_compressor_t **out)
{
    if (alg == OM_COMP_NONE || (deflate_family(alg) && (level < -2 || level > 9))) {
        return OM_EINVAL;
    }
    om_compressor_t *c = om_calloc(1, sizeof *c);
    if (c == NULL) {
        return OM_ENOMEM;
    }
    c->alg = alg;
    c->level = level_unset(alg, level) ? OM_COMP_DEFAULT_LEVEL : level;
    if ((deflate_family(alg) && c->level > 0 && ld_at(c, c->level) == NULL) ||
        (alg == OM_COMP_ZSTD && (c->zstd = ZSTD_createCCtx()) == NULL)) {
        om_compressor_free(c);
        return OM_ENOMEM;
    }
    *out = c;
    return 0;
}

void om_compressor_free(om_compressor_t *c)
{
    if (c == NULL) {
        return;
    }
    for (int l = 0; l < 10; l++) {
        libdeflate_free_compressor(c->ld[l]);
    }
    isal_drop(c);
    ZSTD_freeCCtx(c->zstd);
    om_free(c);
}

static voidpf z_alloc(voidpf opaque, uInt items, uInt size)
{
    (void)opaque;
    return om_calloc(items, size);
}

static void z_free(voidpf opaque, voidpf p)
{
    (void)opaque;
    om_free(p);
}

/* zlib with a stream of its own, in one pass into deflateBound() bytes (always enough):
 * Huffman-only (level -2), and zlib 6 when the adaptive level measures it. */
static int zlib_once(om_comp_t alg, int level, const uint8_t *in, size_t n, uint8_t **out,
                     size_t *len)
{
    z_stream zs = {.zalloc = z_alloc, .zfree = z_free};
    int wbits = alg == OM_COMP_GZIP ? 16 + MAX_WBITS : MAX_WBITS;
    int strategy = level < 0 ? Z_HUFFMAN_ONLY : Z_DEFAULT_STRATEGY;
    if (deflateInit2(&zs, level < 0 ? Z_DEFAULT_COMPRESSION : level, Z_DEFLATED, wbits, 8,
                     strategy) != Z_OK) {
        return OM_ENOMEM;
    }
    int rc = OM_ENOMEM;
    uLong cap = deflateBound(&zs, (uLong)n);
    uint8_t *buf = om_malloc(cap);
    if (buf == NULL) {
        goto out;
    }
    zs.next_in = (Bytef *)(uintptr_t)in; /* zlib does not write input; its API predates const */
    zs.avail_in = (uInt)n;
    zs.next_out = buf;
    zs.avail_out = (uInt)cap;
    if (deflate(&zs, Z_FINISH) != Z_STREAM_END) {
        om_free(buf);
        goto out;
    }
    *out = buf;
    *len = (size_t)zs.total_out;
    rc = 0;
out:
    deflateEnd(&zs);
    return rc;
}

static int run_libdeflate(om_compressor_t *c, int level, const uint8_t *in, size_t n, uint8_t **out,
                          size_t *len)
{
    struct libdeflate_compressor *ld = ld_at(c, level);
    if (ld == NULL) {
        return OM_ENOMEM;
    }
    bool gz = c->alg == OM_COMP_GZIP;
    size_t cap = gz ? libdeflate_gzip_compress_bound(ld, n) : libdeflate_zlib_compress_bound(ld, n);
    uint8_t *buf = om_malloc(cap);
    if (buf == NULL) {
        return OM_ENOMEM;
    }
    /* The bound always fits, so 0 cannot happen; treat it as memory, the only other cause. */
    size_t got = gz ? libdeflate_gzip_compress(ld, in, n, buf, cap)
                    : libdeflate_zlib_compress(ld, in, n, buf, cap);
    if (got == 0) {
        om_free(buf);
        return OM_ENOMEM;
    }
    *out = buf;
    *len = got;
    return 0;
}

/* ISA-L is loaded on first use, when an adaptive compressor first tries it, not linked: at
 * start-up the loader would map it and search its symbol tables for every collector (164 KiB
 * of resident memory with nothing compressed, against issue 14's idle target), and most
 * configs never compress with it. Without it (package libisal2 missing) the ladder starts at
 * libdeflate 1 and says so once. */
typedef struct isal_api {
    __typeof__(isal_deflate_stateless_init) *init;
    __typeof__(isal_deflate_stateless) *run;
    __typeof__(isal_deflate_init) *stream_init; /* a batch in several pieces (run_isal_pieces) */
    __typeof__(isal_deflate) *stream_run;
} isal_api_t;
static isal_api_t isal_api;
static const om_dl_sym_t isal_syms[] = {
    OM_DL_SYM(isal_api_t, init, "isal_deflate_stateless_init"),
    OM_DL_SYM(isal_api_t, run, "isal_deflate_stateless"),
    OM_DL_SYM(isal_api_t, stream_init, "isal_deflate_init"),
    OM_DL_SYM(isal_api_t, stream_run, "isal_deflate"),
};
static om_dl_lib_t libisal = {.soname = "libisal.so.2",
                              .package = "libisal2",
                              .syms = isal_syms,
                              .n_syms = sizeof isal_syms / sizeof isal_syms[0],
                              .table = &isal_api};
static pthread_once_t isal_once = PTHREAD_ONCE_INIT;
static bool isal_loaded;

static void isal_load(void)
{
    om_err_t err = {0};
    isal_loaded = om_dl_load(&libisal, &err) == 0;
    if (!isal_loaded) {
        OM_LOG(OM_LOG_INFO, "gzip: %s: the adaptive default level uses libdeflate only", err.msg);
    }
}

/* Any thread: whether ISA-L can be used (loading it the first time). */
static bool isal_available(void)
{
    pthread_once(&isal_once, isal_load);
    return isal_loaded;
}

/* ISA-L's level buffer for level 1..3: the "small" size (16 Ki tokens of block space, 132 KiB
 * at level 2) rather than its suggested "large" one (64 Ki tokens, 324 KiB). The token space
 * only sets the deflate block size; every idle compressor keeps its buffer, and the smaller
 * one made the adaptive default's output 0.15% larger on the load generator's batches (the
 * compress_ladder check: 1.0398 against 1.0383 of zlib 6's at ISA-L 2; medium: 1.0385) and no
 * slower (bench/README.md, branch loopcost). */
static uint32_t isal_buf_size(int level)
{
    return level == 1   ? ISAL_DEF_LVL1_SMALL
           : level == 2 ? ISAL_DEF_LVL2_SMALL
           : level == 3 ? ISAL_DEF_LVL3_SMALL
                        : 0;
}

/* Output room for ISA-L's one-shot compression: isal_deflate_stateless writes stored blocks
 * (5 bytes of header per 65,535 bytes) when the compressed form would not fit, so this is
 * always enough; plus the gzip header and trailer (18 bytes; zlib's are 6) and the 8 bytes it
 * wants at least. */
static size_t isal_bound(size_t n)
{
    return n + 5 * (n / 65535 + 1) + 18 + 8;
}

/* The compressor's ISA-L stream and level buffer for level 0..3, made on first use and reused
 * (each call initialises the hash tables it uses in the level buffer itself). */
static int isal_ready(om_compressor_t *c, int level)
{
    uint32_t need = isal_buf_size(level);
    if (!isal_available()) {
        return OM_ENOTSUP;
    }
    if (c->isal == NULL && (c->isal = om_calloc(1, sizeof *c->isal)) == NULL) {
        return OM_ENOMEM;
    }
    if (c->isal_buf_size < need) {
        om_free(c->isal_buf);
        c->isal_buf_size = 0;
        if ((c->isal_buf = om_malloc(need)) == NULL) {
            return OM_ENOMEM;
        }
        c->isal_buf_size = need;
    }
    return 0;
}

/* The settings both of ISA-L's modes take, after their init. */
static void isal_settings(om_compressor_t *c, int level)
{
    struct isal_zstream *zs = c->isal;
    uint32_t need = isal_buf_size(level);
    zs->level = (uint32_t)level;
    zs->level_buf = need > 0 ? c->isal_buf : NULL;
    zs->level_buf_size = need;
    zs->gzip_flag = c->alg == OM_COMP_GZIP ? IGZIP_GZIP : IGZIP_ZLIB;
    /* The init leaves the window size as it was; 0 is the full 32 KiB. Left as malloc found
     * it, it made the load generator's batches 2% larger in bench/run. */
    zs->hist_bits = 0;
}

/* The start both ISA-L modes share: the compressor's stream and level buffer ready, the
 * stream initialised by init (one-shot or stateful) for level, and an output buffer of
 * isal_bound(n) bytes in *buf (om_malloc'd; the caller owns it) and *cap. */
static int isal_start(om_compressor_t *c, int level, void (*init)(struct isal_zstream *), size_t n,
                      uint8_t **buf, size_t *cap)
{
    int rc = isal_ready(c, level);
    if (rc != 0) {
        return rc;
    }
    *cap = isal_bound(n);
    if ((*buf = om_malloc(*cap)) == NULL) {
        return OM_ENOMEM;
    }
    init(c->isal);
    isal_settings(c, level);
    c->isal->next_out = *buf;
    c->isal->avail_out = (uint32_t)*cap;
    return 0;
}

/* ISA-L's igzip at level 0..3, one shot. */
static int run_isal(om_compressor_t *c, int level, const uint8_t *in, size_t n, uint8_t **out,
                    size_t *len)
{
    uint8_t *buf;
    size_t cap;
    int rc = isal_start(c, level, isal_api.init, n, &buf, &cap);
    if (rc != 0) {
        return rc;
    }
    struct isal_zstream *zs = c->isal;
    zs->next_in = (uint8_t *)(uintptr_t)in; /* ISA-L does not write input; its API is not const */
    zs->avail_in = (uint32_t)n;
    /* The bound always fits and the level and its buffer are valid, so an error cannot
     * happen; were it to, the batch fails as out of memory would, never with a bad body. */
    if (isal_api.run(zs) != COMP_OK || zs->avail_in != 0) {
        om_free(buf);
        return OM_ENOMEM;
    }
    *out = buf;
    *len = zs->total_out;
    return 0;
}

/* More output room for ISA-L's stream, full at *buf of *cap bytes: a quarter more. */
static int isal_grow(struct isal_zstream *zs, uint8_t **buf, size_t *cap)
{
    size_t used = (size_t)(zs->next_out - *buf), more = *cap / 4 + 4096;
    uint8_t *bigger = *cap + more > UINT32_MAX ? NULL : om_realloc(*buf, *cap + more);
    if (bigger == NULL) {
        return OM_ENOMEM;
    }
    *buf = bigger;
    *cap += more;
    zs->next_out = bigger + used;
    zs->avail_out = (uint32_t)(*cap - used);
    return 0;
}

/* An input in pieces (a batch's requests as they arrived): what is compressed is their bytes
 * end to end, total in all. */
typedef struct zinput {
    const om_raw_seg_t *p;
    size_t n_p;
    size_t total;
} zinput_t;

/* ISA-L's igzip at level 1..3 over the pieces of one input, as one stream: the pieces are not
 * copied together first (a batch of 8,192 spans is 3.4 MB of the load generator's data, which
 * the copy added to the exporter's peak memory). The output starts at isal_bound(total) and
 * grows should the stream need more (its stored-block fallback is the one-shot mode's only). */
static int run_isal_pieces(om_compressor_t *c, int level, const zinput_t *in, uint8_t **out,
                           size_t *len)
{
    uint8_t *buf;
    size_t cap;
    int rc = isal_start(c, level, isal_api.stream_init, in->total, &buf, &cap);
    if (rc != 0) {
        return rc;
    }
    struct isal_zstream *zs = c->isal;
    for (size_t i = 0; i < in->n_p && rc == 0; i++) {
        zs->next_in = (uint8_t *)(uintptr_t)in->p[i].data;
        zs->avail_in = (uint32_t)in->p[i].len;
        zs->end_of_stream = i + 1 == in->n_p;
        zs->flush = NO_FLUSH;
        do {
            if (zs->avail_out == 0) {
                rc = isal_grow(zs, &buf, &cap);
            }
            if (rc == 0 && isal_api.stream_run(zs) != COMP_OK) {
                rc = OM_ENOMEM; /* valid settings: as run_isal says */
            }
        } while (rc == 0 && (zs->avail_in > 0 ||
                             (zs->end_of_stream && zs->internal_state.state != ZSTATE_END)));
    }
    if (rc != 0) {
        om_free(buf);
        return rc;
    }
    *out = buf;
    *len = zs->total_out;
    return 0;
}

static int run_zstd(om_compressor_t *c, const uint8_t *in, size_t n, uint8_t **out, size_t *len)
{
    size_t cap = ZSTD_compressBound(n);
    uint8_t *buf = om_malloc(cap > 0 ? cap : 1);
    if (buf == NULL) {
        return OM_ENOMEM;
    }
    size_t r = ZSTD_compressCCtx(c->zstd, buf, cap, in, n, c->level);
    if (ZSTD_isError(r)) {
        om_free(buf);
        return OM_ENOMEM; /* the bound always fits: only allocation can fail */
    }
    *out = buf;
    *len = r;
    return 0;
}

/* Memory: an adaptive compressor keeps libdeflate's state for the level its batches use
 * only; the reference's and a probe's are made for the sample and freed after it (a level
 * 2..9 compressor is 656 KiB, level 1 200 KiB; an exporter keeps up to num_consumers
 * compressors, and keeping four levels in each added 7 MB of RSS to the paced benchmark).
 * Making one per sample costs about nothing next to the sample's compression (bench/README.md,
 * the "new compressor" rows). */
static void keep_only(om_compressor_t *c, int idx)
{
    const om__zcand_t *k = &auto_levels[idx];
    for (int l = 1; l < 10; l++) {
        if ((k->lib != LIB_LIBDEFLATE || l != k->level) && c->ld[l] != NULL) {
            libdeflate_free_compressor(c->ld[l]);
            c->ld[l] = NULL;
        }
    }
    if (k->lib != LIB_ISAL) {
        isal_drop(c);
    }
}

/* One candidate of the ladder. */
static int run_cand(om_compressor_t *c, int idx, const uint8_t *in, size_t n, uint8_t **out,
                    size_t *len)
{
    const om__zcand_t *k = &auto_levels[idx];
    return k->lib == LIB_ISAL ? run_isal(c, k->level, in, n, out, len)
                              : run_libdeflate(c, k->level, in, n, out, len);
}

/* len bytes of in from offset at (at + len <= in->total) into dst. */
static void zinput_copy(const zinput_t *in, size_t at, size_t len, uint8_t *dst)
{
    for (size_t i = 0; i < in->n_p && len > 0; i++) {
        if (at >= in->p[i].len) {
            at -= in->p[i].len;
            continue;
        }
        size_t k = in->p[i].len - at < len ? in->p[i].len - at : len;
        memcpy(dst, in->p[i].data + at, k);
        dst += k;
        len -= k;
        at = 0;
    }
}

/* in's bytes in one buffer: its only piece where it is, or a new om_malloc'd copy in *copy
 * (the caller frees it; NULL when there is none). NULL when out of memory. */
static const uint8_t *zinput_flat(const zinput_t *in, uint8_t **copy)
{
    *copy = NULL;
    if (in->n_p == 1) {
        return in->p[0].data;
    }
    if ((*copy = om_malloc(in->total > 0 ? in->total : 1)) != NULL) {
        zinput_copy(in, 0, in->total, *copy);
    }
    return *copy;
}

/* One candidate of the ladder over an input in pieces: ISA-L streams over them, libdeflate
 * (whole buffers only) gets them copied together. */
static int run_cand_input(om_compressor_t *c, int idx, const zinput_t *in, uint8_t **out,
                          size_t *len)
{
    const om__zcand_t *k = &auto_levels[idx];
    if (k->lib == LIB_ISAL && in->n_p > 1) {
        return run_isal_pieces(c, k->level, in, out, len);
    }
    uint8_t *copy;
    const uint8_t *flat = zinput_flat(in, &copy);
    int rc = flat != NULL ? run_cand(c, idx, flat, in->total, out, len) : OM_ENOMEM;
    om_free(copy);
    return rc;
}

/* What one sample found, under a->lock: moves the level, or not (see the rule above). cur is
 * the candidate the sample ran at; probe the cheaper one it also tried (-1: none); z* the
 * output sizes (zz6: zlib 6's, 0 when not measured). A sample that started before another
 * one moved the level says nothing about the new level and is only counted. */
static void zauto_decide(om__zauto_t *a, int cur, size_t zcur, int probe, size_t zprobe,
                         size_t zref, size_t zz6)
{
    a->samples++;
    if (zz6 > 0 && zref > 0) {
        double f = (double)zz6 / (double)zref;
        a->zlib6 = a->zlib6 > 0 ? (3 * a->zlib6 + f) / 4 : f;
    }
    if (atomic_load_explicit(&a->idx, memory_order_relaxed) != cur) {
        return;
    }
    double z6 = (double)zref * (a->zlib6 > 0 ? a->zlib6 : 1.0); /* zlib 6's estimated size */
    if (cur < AUTO_REF && (double)zcur > z6 * AUTO_UP) {
        atomic_store_explicit(&a->idx, cur + 1, memory_order_relaxed);
        a->switches++;
        a->votes = 0;
        a->since_probe = 0;
        a->probe_gap = a->probe_gap * 2 > AUTO_PROBE_MAX ? AUTO_PROBE_MAX : a->probe_gap * 2;
        atomic_store_explicit(&a->resample, true, memory_order_relaxed);
        return;
    }
    if (probe < 0) {
        return;
    }
    if ((double)zprobe <= z6 * AUTO_DOWN) {
        a->since_probe = a->probe_gap; /* probe again at the next sample: to confirm, or go on */
        atomic_store_explicit(&a->resample, true, memory_order_relaxed);
        if (++a->votes >= AUTO_VOTES) {
            atomic_store_explicit(&a->idx, probe, memory_order_relaxed);
            a->switches++;
            a->votes = 0;
        }
        return;
    }
    a->votes = 0;
    a->probe_gap = a->probe_gap * 2 > AUTO_PROBE_MAX ? AUTO_PROBE_MAX : a->probe_gap * 2;
}

/* One output of a sample: the smallest so far is kept in *best, the others freed. */
static void keep_smallest(uint8_t *z, size_t zn, uint8_t **best, size_t *best_n)
{
    if (*best == NULL || zn < *best_n) {
        om_free(*best);
        *best = z;
        *best_n = zn;
    } else {
        om_free(z);
    }
}

/* What a sample measures: the output sizes zn[i] of candidates idx[i] (-1: not run; a
 * repeat of idx[0]: not run again) and, when cal, zlib 6's (*zz6), all on the same n bytes at
 * in. The smallest output is kept in *best (the caller owns it) when best is not NULL, else
 * every output is freed. One candidate at a time, dropping the reference's or the probe's state
 * right after its use: the sample's peak memory stays near an ordinary batch's (the paced
 * benchmark's peak RSS saw every extra buffer). */
static int sample_sizes(om_compressor_t *c, const int idx[3], bool cal, const uint8_t *in, size_t n,
                        size_t zn[3], size_t *zz6, uint8_t **best, size_t *best_n)
{
    int rc = 0;
    for (int i = 0; i < 3 && rc == 0; i++) {
        if (idx[i] < 0 || (i > 0 && idx[i] == idx[0])) {
            continue;
        }
        uint8_t *z = NULL;
        rc = run_cand(c, idx[i], in, n, &z, &zn[i]);
        keep_only(c, idx[0]);
        if (rc == 0 && best != NULL) {
            keep_smallest(z, zn[i], best, best_n);
        } else if (rc == 0) {
            om_free(z);
        }
    }
    if (rc == 0 && cal) {
        uint8_t *z = NULL;
        rc = zlib_once(c->alg, 6, in, n, &z, zz6);
        if (rc == 0 && best != NULL) {
            keep_smallest(z, *zz6, best, best_n);
        } else if (rc == 0) {
            om_free(z);
        }
    }
    return rc;
}

/* The bytes a sample of a large batch measures: AUTO_WINDOWS pieces of the batch, evenly
 * spread from its start to its end, copied into one new om_malloc'd buffer of AUTO_WINDOW
 * bytes (the caller frees it); NULL when out of memory. Spread, so a batch that joins data
 * of several kinds (the first requests from one service, the last from another) is measured
 * on all of them; pieces of 64 KiB, so that each is far longer than deflate's 32 KiB window
 * and the three seams change the sizes by little. */
static uint8_t *sample_window(const zinput_t *in)
{
    uint8_t *w = om_malloc(AUTO_WINDOW);
    if (w == NULL) {
        return NULL;
    }
    const size_t piece = AUTO_WINDOW / AUTO_WINDOWS;
    for (size_t i = 0; i < AUTO_WINDOWS; i++) {
        zinput_copy(in, (in->total - piece) / (AUTO_WINDOWS - 1) * i, piece, w + i * piece);
    }
    return w;
}

/* A sample batch: compressed at the current candidate, at the reference, maybe at the probed
 * cheaper candidate and maybe at zlib 6, and the rule decides on the sizes. A batch of up to
 * AUTO_WINDOW bytes is measured whole and the smallest output is the one sent. A larger one
 * (the batch processor's 8192 spans are about 3.4 MB of the load generator's data) is sent at
 * the current candidate, and measured on a window of AUTO_WINDOW bytes of it: a sample then
 * costs the current candidate's run plus a fixed amount, where measuring the whole batch
 * cost 5 to 16 times an ordinary batch (libdeflate 6, and zlib 6 when calibrating, are 3 and
 * 11 times ISA-L 2's CPU on the load generator's data). */
static int run_sample(om_compressor_t *c, int cur, const zinput_t *in, uint8_t **out,
                      size_t *out_len)
{
    om__zauto_t *a = c->aut;
    int probe = -1;
    uv_mutex_lock(&a->lock);
    if (cur > 0 && ++a->since_probe >= a->probe_gap) {
        a->since_probe = 0;
        probe = cur - 1;
        if (auto_levels[probe].lib == LIB_ISAL && !isal_available()) {
            probe = -1; /* the cheapest is not there: libdeflate 1 is the floor */
        }
    }
    bool cal = a->samples % AUTO_CAL_EVERY == 0;
    uv_mutex_unlock(&a->lock);
    const int idx[3] = {cur, AUTO_REF, probe};
    size_t zn[3] = {0, 0, 0}, zz6 = 0;
    uint8_t *best = NULL;
    size_t best_n = 0;
    int rc;
    uint8_t *copy = NULL;
    if (in->total <= AUTO_WINDOW) {
        const uint8_t *flat = zinput_flat(in, &copy);
        rc = flat != NULL ? sample_sizes(c, idx, cal, flat, in->total, zn, &zz6, &best, &best_n)
                          : OM_ENOMEM;
    } else {
        rc = run_cand_input(c, cur, in, &best, &best_n);
        if (rc == 0 && (copy = sample_window(in)) == NULL) {
            rc = OM_ENOMEM;
        }
        if (rc == 0) {
            rc = sample_sizes(c, idx, cal, copy, AUTO_WINDOW, zn, &zz6, NULL, NULL);
        }
    }
    om_free(copy);
    if (rc == 0) {
        uv_mutex_lock(&a->lock);
        a->sampled_bytes += in->total <= AUTO_WINDOW ? in->total : AUTO_WINDOW;
        zauto_decide(a, cur, zn[0], probe, zn[2], cur == AUTO_REF ? zn[0] : zn[1], zz6);
        uv_mutex_unlock(&a->lock);
        *out = best;
        *out_len = best_n;
    } else {
        om_free(best);
    }
    keep_only(c, atomic_load_explicit(&a->idx, memory_order_relaxed));
    return rc;
}

static int run_auto(om_compressor_t *c, const zinput_t *in, uint8_t **out, size_t *out_len)
{
    om__zauto_t *a = c->aut;
    uint64_t k = atomic_fetch_add_explicit(&a->batches, 1, memory_order_relaxed);
    int cur = atomic_load_explicit(&a->idx, memory_order_relaxed);
    /* The load and the exchange: the exchange (a write) only when a resample is due. */
    bool again = atomic_load_explicit(&a->resample, memory_order_relaxed) &&
                 atomic_exchange_explicit(&a->resample, false, memory_order_relaxed);
    if (in->total >= AUTO_MIN_INPUT && (again || k < AUTO_FIRST || k % AUTO_EVERY == 0)) {
        return run_sample(c, cur, in, out, out_len);
    }
    keep_only(c, cur); /* after a move: the old level's state goes */
    return run_cand_input(c, cur, in, out, out_len);
}

/* A fixed level or zstd: on the input in one buffer. */
static int run_fixed(om_compressor_t *c, const uint8_t *in, size_t n, uint8_t **out,
                     size_t *out_len)
{
    if (c->alg == OM_COMP_ZSTD) {
        return run_zstd(c, in, n, out, out_len);
    }
    if (c->level < 0) {
        return zlib_once(c->alg, -2, in, n, out, out_len);
    }
    return run_libdeflate(c, c->level, in, n, out, out_len);
}

static int run_input(om_compressor_t *c, const zinput_t *in, uint8_t **out, size_t *out_len)
{
    if (in->total > (size_t)INT32_MAX) {
        return OM_ETOOBIG;
    }
    if (c->aut != NULL) {
        return run_auto(c, in, out, out_len);
    }
    uint8_t *copy;
    const uint8_t *flat = zinput_flat(in, &copy);
    int rc = flat != NULL ? run_fixed(c, flat, in->total, out, out_len) : OM_ENOMEM;
    om_free(copy);
    return rc;
}

int om_compressor_run(om_compressor_t *c, const uint8_t *in, size_t n, uint8_t **out,
                      size_t *out_len)
{
    /* An empty request: the libraries want a valid pointer. */
    const om_raw_seg_t one = {in != NULL ? in : (const uint8_t *)"", n};
    const zinput_t zi = {&one, 1, n};
    return run_input(c, &zi, out, out_len);
}

int om_compressor_run_pieces(om_compressor_t *c, const om_raw_seg_t *p, size_t n_p, uint8_t **out,
                             size_t *out_len)
{
    size_t total = 0;
    for (size_t i = 0; i < n_p; i++) {
        if (p[i].len > SIZE_MAX - total) {
            return OM_ETOOBIG;
        }
        total += p[i].len;
    }
    if (n_p <= 1) {
        return om_compressor_run(c, n_p == 1 ? p[0].data : NULL, total, out, out_len);
    }
    const zinput_t zi = {p, n_p, total};
    return run_input(c, &zi, out, out_len);
}

/* ------------------------------------------------------------------------------------------ */
/* The loop thread's cache of idle compressors, and its adaptive level                       */

struct om_compressors {
    om_comp_t alg;
    int level;
    unsigned keep, idle;
    om_compressor_t *list;
    om__zauto_t *aut; /* owned; the level not set (gzip, zlib): adaptive; else NULL */
};

om_compressors_t *om_compressors_new(om_comp_t alg, int level, unsigned keep)
{
    om_compressors_t *cs = om_calloc(1, sizeof *cs);
    if (cs == NULL) {
        return NULL;
    }
    cs->alg = alg;
    cs->level = level;
    cs->keep = keep;
    if (level_unset(alg, level) && (cs->aut = zauto_new()) == NULL) {
        om_free(cs);
        return NULL;
    }
    return cs;
}

om_compressor_t *om_compressors_get(om_compressors_t *cs)
{
    om_compressor_t *c = cs->list;
    if (c != NULL) {
        cs->list = c->next;
        cs->idle--;
        c->next = NULL;
        return c;
    }
    if (cs->aut == NULL) {
        return om_compressor_new(cs->alg, cs->level, &c) == 0 ? c : NULL;
    }
    /* Adaptive: libdeflate's compressors are made per level on first use. */
    c = om_calloc(1, sizeof *c);
    if (c != NULL) {
        c->alg = cs->alg;
        c->aut = cs->aut;
    }
    return c;
}

int om_compressors_level(const om_compressors_t *cs)
{
    if (cs->aut != NULL) {
        return auto_levels[atomic_load_explicit(&cs->aut->idx, memory_order_relaxed)].level;
    }
    return level_unset(cs->alg, cs->level) ? OM_COMP_DEFAULT_LEVEL : cs->level;
}

const char *om_compressors_lib(const om_compressors_t *cs)
{
    if (cs->aut != NULL) {
        int idx = atomic_load_explicit(&cs->aut->idx, memory_order_relaxed);
        return auto_levels[idx].lib == LIB_ISAL ? "isa-l" : "libdeflate";
    }
    if (cs->alg == OM_COMP_ZSTD) {
        return "zstd";
    }
    return cs->level == -2 ? "zlib" : "libdeflate";
}

void om_compressors_stats(om_compressors_t *cs, uint64_t *samples, uint64_t *switches)
{
    *samples = *switches = 0;
    if (cs->aut != NULL) {
        uv_mutex_lock(&cs->aut->lock);
        *samples = cs->aut->samples;
        *switches = cs->aut->switches;
        uv_mutex_unlock(&cs->aut->lock);
    }
}

uint64_t om_compressors_sampled_bytes(om_compressors_t *cs)
{
    uint64_t n = 0;
    if (cs->aut != NULL) {
        uv_mutex_lock(&cs->aut->lock);
        n = cs->aut->sampled_bytes;
        uv_mutex_unlock(&cs->aut->lock);
    }
    return n;
}

void om_compressors_put(om_compressors_t *cs, om_compressor_t *c)
{
    if (c == NULL) {
        return;
    }
    if (cs->idle >= cs->keep) {
        om_compressor_free(c);
        return;
    }
    c->next = cs->list;
    cs->list = c;
    cs->idle++;
}

void om_compressors_free(om_compressors_t *cs)
{
    if (cs == NULL) {
        return;
    }
    while (cs->list != NULL) {
        om_compressor_t *c = cs->list;
        cs->list = c->next;
        om_compressor_free(c);
    }
    zauto_free(cs->aut);
    om_free(cs);
}

/* ------------------------------------------------------------------------------------------ */
/* Bounded decompression                                                                      */

/* The first output buffer: what the gzip trailer says the (last) member holds, else four
 * times the input, within [4 KiB, max]. The trailer is the sender's word, so it only sizes
 * the first try: the buffer still grows, by doubling, up to max. */
static size_t first_guess(om_comp_t alg, const uint8_t *in, size_t n, size_t max)
{
    size_t g = n > SIZE_MAX / 4 ? SIZE_MAX : n * 4;
    if (alg == OM_COMP_GZIP && n >= 18) {
        const uint8_t *t = in + n - 4;
        g = (size_t)t[0] | (size_t)t[1] << 8 | (size_t)t[2] << 16 | (size_t)t[3] << 24;
    }
    g = g < 4096 ? 4096 : g;
    return g > max ? max : g;
}

/* One try into out[0..cap): every gzip member (or the one zlib stream, ignoring what follows
 * it, as Go's reader does). Returns 0 with *len, 1 when cap was too small, OM_EINVAL. */
static int inflate_into(struct libdeflate_decompressor *d, om_comp_t alg, const uint8_t *in,
                        size_t n, uint8_t *out, size_t cap, size_t *len)
{
    size_t ipos = 0, opos = 0;
    /* Loop bound: each member consumes at least its 18-byte header and trailer. */
    while (ipos < n) {
        size_t used = 0, got = 0;
        enum libdeflate_result r =
            alg == OM_COMP_GZIP ? libdeflate_gzip_decompress_ex(d, in + ipos, n - ipos, out + opos,
                                                                cap - opos, &used, &got)
                                : libdeflate_zlib_decompress_ex(d, in + ipos, n - ipos, out + opos,
                                                                cap - opos, &used, &got);
        if (r == LIBDEFLATE_INSUFFICIENT_SPACE) {
            return 1;
        }
        if (r != LIBDEFLATE_SUCCESS || used == 0) {
            return OM_EINVAL;
        }
        ipos += used;
        opos += got;
        if (alg != OM_COMP_GZIP) {
            break;
        }
    }
    *len = opos;
    return 0;
}

static int decompress_deflate(om_comp_t alg, const uint8_t *in, size_t n, size_t max, uint8_t **out,
                              size_t *out_len, om_err_t *err)
{
    const char *name = alg == OM_COMP_GZIP ? "gzip" : "zlib";
    struct libdeflate_decompressor *d = libdeflate_alloc_decompressor();
    if (d == NULL) {
        om_err_set(err, OM_ENOMEM, "out of memory while decompressing");
        return OM_ENOMEM;
    }
    size_t cap = first_guess(alg, in, n, max);
    int rc;
    /* Loop bound: cap doubles each round and stops at max. */
    for (;;) {
        uint8_t *buf = om_malloc(cap + 1);
        if (buf == NULL) {
            om_err_set(err, OM_ENOMEM, "out of memory while decompressing");
            rc = OM_ENOMEM;
            break;
        }
        size_t len = 0;
        rc = inflate_into(d, alg, in, n, buf, cap, &len);
        if (rc == 0) {
            buf[len] = '\0';
            *out = buf;
            *out_len = len;
            break;
        }
        om_free(buf);
        if (rc == OM_EINVAL) {
            om_err_set(err, OM_EINVAL, "corrupt %s data", name);
            break;
        }
        if (cap >= max) {
            om_err_set(err, OM_ETOOBIG, "decompressed body larger than %zu bytes", max);
            rc = OM_ETOOBIG;
            break;
        }
        cap = cap > max / 2 ? max : cap * 2;
    }
    libdeflate_free_decompressor(d);
    return rc;
}

/* zstd. Every frame of a body usually says how much it holds (zstd's one-shot compressors
 * write it; so do otelcol's and the SDKs'). Then the sum is checked against max before any
 * work, and the body is decompressed in one call into a buffer of exactly that size, which
 * bounds the memory whatever window the frames name. A frame without a size (a streaming
 * compressor's) sends the whole body through bounded streaming instead: the window is capped
 * at the larger of 8 MiB and max (never more than 2^27, zstd's default limit), and the output
 * grows by doubling up to max. Skippable frames count as empty; trailing bytes that are not a
 * frame are corrupt, as in the streaming decoder. */

/* The larger of 8 MiB and max, as a power of two, at most 2^27. */
static int zstd_window_log(size_t max)
{
    int log = 23;
    while (log < 27 && ((size_t)1 << log) < max) {
        log++;
    }
    return log;
}

static int zstd_error(size_t zr, om_err_t *err)
{
    if (ZSTD_getErrorCode(zr) == ZSTD_error_memory_allocation) {
        om_err_set(err, OM_ENOMEM, "out of memory while decompressing");
        return OM_ENOMEM;
    }
    om_err_set(err, OM_EINVAL, "corrupt zstd data: %s", ZSTD_getErrorName(zr));
    return OM_EINVAL;
}

/* The sum of the frames' declared sizes into *total: 0; 1 when a frame does not say (or the
 * body cannot be walked: the streaming decoder will say why); OM_ETOOBIG past max. */
static int zstd_declared(const uint8_t *in, size_t n, size_t max, size_t *total, om_err_t *err)
{
    size_t pos = 0, sum = 0;
    /* Loop bound: every frame is at least a few bytes long. */
    while (pos < n) {
        unsigned long long fcs = ZSTD_getFrameContentSize(in + pos, n - pos);
        size_t fsize = ZSTD_findFrameCompressedSize(in + pos, n - pos);
        if (fcs == ZSTD_CONTENTSIZE_UNKNOWN || fcs == ZSTD_CONTENTSIZE_ERROR ||
            ZSTD_isError(fsize) || fsize == 0) {
            return 1;
        }
        if (fcs > max - sum) {
            om_err_set(err, OM_ETOOBIG, "decompressed body larger than %zu bytes", max);
            return OM_ETOOBIG;
        }
        sum += (size_t)fcs;
        pos += fsize;
    }
    *total = sum;
    return 0;
}

static int zstd_whole(ZSTD_DCtx *d, const uint8_t *in, size_t n, size_t total, uint8_t **out,
                      size_t *out_len, om_err_t *err)
{
    uint8_t *buf = om_malloc(total + 1);
    if (buf == NULL) {
        om_err_set(err, OM_ENOMEM, "out of memory while decompressing");
        return OM_ENOMEM;
    }
    size_t zr = ZSTD_decompressDCtx(d, buf, total, in, n);
    if (ZSTD_isError(zr) || zr != total) {
        om_free(buf);
        if (!ZSTD_isError(zr)) {
            om_err_set(err, OM_EINVAL, "corrupt zstd data: frame sizes do not match");
            return OM_EINVAL;
        }
        return zstd_error(zr, err);
    }
    buf[total] = '\0';
    *out = buf;
    *out_len = total;
    return 0;
}

/* Bounded streaming: at most max + 1 bytes of output are ever asked for (the one more tells
 * "too big"), plus the NUL. */
static int zstd_stream(ZSTD_DCtx *d, const uint8_t *in, size_t n, size_t max, uint8_t **out,
                       size_t *out_len, om_err_t *err)
{
    if (ZSTD_isError(ZSTD_DCtx_setParameter(d, ZSTD_d_windowLogMax, zstd_window_log(max)))) {
        om_err_set(err, OM_ENOMEM, "cannot set up the zstd decoder");
        return OM_ENOMEM;
    }
    size_t cap = first_guess(OM_COMP_ZSTD, in, n, max);
    size_t room = cap == max ? cap + 1 : cap; /* the decoder's room; +1 at the cap */
    uint8_t *buf = om_malloc(room + 1);
    if (buf == NULL) {
        om_err_set(err, OM_ENOMEM, "out of memory while decompressing");
        return OM_ENOMEM;
    }
    ZSTD_inBuffer ib = {in, n, 0};
    size_t len = 0, zr = 1;
    int rc = 0;
    /* Loop bound: each round consumes input or fills the room, which grows to max + 1. */
    for (;;) {
        ZSTD_outBuffer ob = {buf + len, room - len, 0};
        zr = ZSTD_decompressStream(d, &ob, &ib);
        len += ob.pos;
        if (ZSTD_isError(zr)) {
            rc = zstd_error(zr, err);
            break;
        }
        if (len > max) {
            om_err_set(err, OM_ETOOBIG, "decompressed body larger than %zu bytes", max);
            rc = OM_ETOOBIG;
            break;
        }
        if (ib.pos == ib.size && len < room) {
            break; /* all input in, and the decoder did not stop for room */
        }
        if (len == room) {
            cap = cap > max / 2 ? max : cap * 2;
            room = cap == max ? cap + 1 : cap;
            uint8_t *bigger = om_realloc(buf, room + 1);
            if (bigger == NULL) {
                om_err_set(err, OM_ENOMEM, "out of memory while decompressing");
                rc = OM_ENOMEM;
                break;
            }
            buf = bigger;
        }
    }
    if (rc == 0 && zr != 0) {
        om_err_set(err, OM_EINVAL, "truncated zstd data");
        rc = OM_EINVAL;
    }
    if (rc != 0) {
        om_free(buf);
        return rc;
    }
    buf[len] = '\0';
    *out = buf;
    *out_len = len;
    return 0;
}

static int decompress_zstd(const uint8_t *in, size_t n, size_t max, uint8_t **out, size_t *out_len,
                           om_err_t *err)
{
    size_t total = 0;
    int rc = zstd_declared(in, n, max, &total, err);
    if (rc == OM_ETOOBIG) {
        return rc;
    }
    ZSTD_DCtx *d = ZSTD_createDCtx();
    if (d == NULL) {
        om_err_set(err, OM_ENOMEM, "out of memory while decompressing");
        return OM_ENOMEM;
    }
    rc = rc == 0 ? zstd_whole(d, in, n, total, out, out_len, err)
                 : zstd_stream(d, in, n, max, out, out_len, err);
    ZSTD_freeDCtx(d);
    return rc;
}

int om_decompress(om_comp_t alg, const uint8_t *in, size_t n, size_t max, uint8_t **out,
                  size_t *out_len, om_err_t *err)
{
    if (alg != OM_COMP_GZIP && alg != OM_COMP_ZLIB && alg != OM_COMP_ZSTD) {
        om_err_set(err, OM_ENOTSUP, "whole-buffer decompression is for gzip, zlib and zstd");
        return OM_ENOTSUP;
    }
    if (n == 0) {
        *out = om_malloc(1);
        if (*out == NULL) {
            om_err_set(err, OM_ENOMEM, "out of memory while decompressing");
            return OM_ENOMEM;
        }
        (*out)[0] = '\0';
        *out_len = 0;
        return 0;
    }
    if (max >= SIZE_MAX / 2) {
        max = SIZE_MAX / 2 - 1; /* so that max + 1 and the doubling cannot overflow */
    }
    if (alg == OM_COMP_ZSTD) {
        return decompress_zstd(in, n, max, out, out_len, err);
    }
    return decompress_deflate(alg, in, n, max, out, out_len, err);
}
