/* prw_bench.c: otelmon-prw-bench, the remote-write encoder's CPU per point and compressed size
 * on the load generator's metrics (issue 10), without the collector around it.
 *
 * Input: otelmon-loadgen's metrics requests (its defaults: 100 points a request, gauges,
 * monotonic sums and 10-bucket histograms in turn, 8 attributes of 16 B, a pool of 128
 * distinct requests), merged into batches of 82 requests (8,200 points: what the batch
 * processor's default send_batch_size makes of them), kept as their wire bytes, as the
 * receiver hands them on. The batches cycle through the pool, so that after the first pass
 * every series is in the encoder's cache: the steady state of bench/run's prw scenario.
 *
 * Output: CPU microseconds per point (CLOCK_THREAD_CPUTIME_ID: this thread's) and the bytes:
 * the WriteRequests' and what is sent (checked: each request decompresses with libsnappy to
 * its WriteRequest's length). Under callgrind (`--toggle-collect=measured_encode`: the warm-up
 * left out), `--batches N` gives instruction counts per point that do not move with the
 * machine's load. Snappy writers that worked from the series' structure were measured with
 * this tool and not kept (bench/README.md; tag tried/prw-own-snappy); the general compressor
 * that replaced libsnappy's was measured with it too (bench/README.md, "Our own snappy
 * compressor"). */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <snappy-c.h>

#include "lg.h"
#include "prw.h"

#define BATCH_REQS 82

static double cpu_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static om_batch_t *make_batch(const lg_pool_t *pool, size_t first)
{
    om_batch_t *b = NULL;
    om_err_t err = {0};
    for (size_t i = 0; i < BATCH_REQS; i++) {
        const lg_req_t *r = &pool->reqs[(first + i) % pool->n];
        om_batch_t *x = NULL;
        if (om_batch_decode_proto(OM_SIG_METRICS, r->body, r->body_len, 0, &x, &err) != 0) {
            fprintf(stderr, "otelmon-prw-bench: %s\n", err.msg);
            exit(1);
        }
        if (b == NULL) {
            b = x;
        } else if (om_batch_append(b, x) != 0) {
            fprintf(stderr, "otelmon-prw-bench: out of memory\n");
            exit(1);
        }
    }
    if (b->msg != NULL || !b->raw_valid) {
        fprintf(stderr, "otelmon-prw-bench: the batch is not its wire bytes\n");
        exit(1);
    }
    return b;
}

/* The request decompresses with libsnappy to its WriteRequest's length; exits when not. */
static void check_body(const prw_body_t *body)
{
    size_t raw_len = 0;
    char *raw = NULL;
    if (snappy_uncompressed_length((const char *)body->data, body->len, &raw_len) != SNAPPY_OK ||
        raw_len != body->raw_len || (raw = malloc(raw_len + 1)) == NULL ||
        snappy_uncompress((const char *)body->data, body->len, raw, &raw_len) != SNAPPY_OK) {
        fprintf(stderr, "otelmon-prw-bench: a request does not decompress\n");
        exit(1);
    }
    free(raw);
}

/* The measured encodings (callgrind --toggle-collect=measured_encode counts only these). */
__attribute__((noinline)) static int measured_encode(prw_encoder_t *enc, const om_batch_t *b,
                                                     const prw_opts_t *o, prw_result_t *res,
                                                     om_err_t *err)
{
    return prw_encode(enc, b, o, res, err);
}

int main(int argc, char **argv)
{
#ifdef __GLIBC__
    mallopt(M_MMAP_THRESHOLD, 32 << 20); /* as otelmon's main does */
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
#endif
    size_t batches = 64;
    bool check = true;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--batches") == 0 && i + 1 < argc) {
            batches = (size_t)strtoul(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--no-check") == 0) {
            check = false;
        } else {
            fprintf(stderr, "usage: otelmon-prw-bench [--batches N] [--no-check]\n");
            return 2;
        }
    }
    lg_opts_t lo = {.protocol = LG_HTTP_PROTO,
                    .signal = OM_SIG_METRICS,
                    .items = 100,
                    .attrs = 8,
                    .attr_size = 16,
                    .pool = 128,
                    .seed = 1};
    lg_pool_t pool;
    om_err_t err = {0};
    if (lg_pool_build(&lo, &pool, &err) != 0) {
        fprintf(stderr, "otelmon-prw-bench: %s\n", err.msg);
        return 1;
    }
    prw_opts_t o = {.suffixes = true, .target_info = true, .max_request_bytes = 3000000};
    prw_encoder_t *enc = prw_encoder_new();
    if (enc == NULL) {
        return 1;
    }
    /* Warm-up: one pass over the pool, so that every series is cached. */
    size_t warm = (pool.n + BATCH_REQS - 1) / BATCH_REQS, at = 0;
    for (size_t i = 0; i < warm; i++, at += BATCH_REQS) {
        om_batch_t *b = make_batch(&pool, at);
        prw_result_t res;
        if (prw_encode(enc, b, &o, &res, &err) != 0) {
            fprintf(stderr, "otelmon-prw-bench: %s\n", err.msg);
            return 1;
        }
        prw_result_free(&res);
        om_batch_release(b);
    }
    double us = 0;
    size_t points = 0, samples = 0, raw = 0, sent = 0;
    for (size_t i = 0; i < batches; i++, at += BATCH_REQS) {
        om_batch_t *b = make_batch(&pool, at);
        prw_result_t res;
        double t0 = cpu_us();
        int rc = measured_encode(enc, b, &o, &res, &err);
        us += cpu_us() - t0;
        if (rc != 0) {
            fprintf(stderr, "otelmon-prw-bench: %s\n", err.msg);
            return 1;
        }
        if (i == 0 && getenv("PRW_BENCH_DUMP") != NULL && res.n_bodies > 0) {
            FILE *f = fopen(getenv("PRW_BENCH_DUMP"), "wb"); /* the first request, to study */
            if (f != NULL) {
                fwrite(res.bodies[0].data, 1, res.bodies[0].len, f);
                fclose(f);
            }
        }
        points += b->items;
        samples += res.samples;
        for (size_t k = 0; k < res.n_bodies; k++) {
            raw += res.bodies[k].raw_len;
            sent += res.bodies[k].len;
            if (check) {
                check_body(&res.bodies[k]);
            }
        }
        prw_result_free(&res);
        om_batch_release(b);
    }
    printf("batches=%zu points=%zu samples=%zu cpu_us_per_point=%.3f writerequest_bytes=%zu "
           "sent_bytes=%zu ratio=%.3f\n",
           batches, points, samples, points ? us / (double)points : 0, raw, sent,
           sent ? (double)raw / (double)sent : 0);
    prw_encoder_free(enc);
    lg_pool_free(&pool);
    return 0;
}
