/* prw_snappy.c: remote-write's compression, the snappy block format, written by our own
 * compressor instead of libsnappy's snappy_compress.
 *
 * Why: libsnappy was more than half of the encoder's instructions (bench/README.md, "Our own
 * snappy compressor"). A WriteRequest is series after series with the same label names, and a
 * histogram's series repeat all their labels but two, so most of its bytes sit in long matches
 * and the rest in label values seen once. The search is libsnappy's (a table of the last
 * position of each 4-byte hash; a step that grows by one every 32 misses, so that bytes that
 * do not compress are crossed quickly), with three differences:
 *   - a match found is extended backwards too, so the search starts with a step of 2 bytes: a
 *     match that starts in the byte skipped is found from the next one;
 *   - one window over the whole input (copies reach up to 65,535 bytes back), where libsnappy
 *     compresses 64 KiB fragments apart, each with a cleared table: matches across a
 *     fragment's start are kept, so the ratio is better (8.1 against 7.7 on bench/run's
 *     data). The table keeps positions' low 16 bits, which is all a window of 64 KiB needs;
 *   - a match is extended 16 bytes at a time (SSE2) where libsnappy takes 8.
 * On text with short matches it is slower than libsnappy; on remote-write's data faster.
 *
 * The format (snappy's format_description.txt): the uncompressed length as a varint, then
 * elements, each starting with a tag byte whose low two bits give its kind:
 *   00 literal: length - 1 in the tag's upper six bits when below 60, else 60..63 say that
 *      1..4 little-endian bytes after the tag hold it; then the bytes;
 *   01 copy, length 4..11 and offset below 2048: (length - 4) in bits 2..4, the offset's bits
 *      8..10 in bits 5..7, its low byte after the tag;
 *   10 copy, length 1..64: (length - 1) in bits 2..7, a 2-byte little-endian offset after it.
 * A copy repeats length bytes from offset bytes back in the output (they may overlap). Any
 * thread: the table is the caller's. */
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "prw.h"

#define HASH_MUL 0x1e35a7bdu
/* The last bytes of the input are never the start of a match: the search and the fixed-size
 * loads stay inside it. */
#define TAIL 16

size_t prw_snappy_max_len(size_t n)
{
    /* libsnappy's bound (32 + n + n/6) holds: a literal run's header is at most 5 bytes, and
     * copies (at least 4 bytes in, at most 3 out) sit between runs. TAIL more for the
     * fixed-size writes of short literals. */
    return 32 + n + n / 6 + TAIL;
}

static inline uint32_t load32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static inline uint32_t hash4(const uint8_t *p, unsigned shift)
{
    return (load32(p) * HASH_MUL) >> shift;
}

/* A literal of the n bytes at p (n >= 1). The input has at least TAIL bytes after p when
 * p_room says so, and the output always has TAIL bytes of slack: a short literal is moved in
 * one 16-byte copy. */
static uint8_t *put_literal(uint8_t *o, const uint8_t *p, size_t n, bool p_room)
{
    size_t m = n - 1;
    if (m < 60) {
        *o++ = (uint8_t)(m << 2);
        if (n <= 16 && p_room) {
            memcpy(o, p, 16);
            return o + n;
        }
    } else {
        unsigned bytes = m < 0x100 ? 1 : m < 0x10000 ? 2 : m < 0x1000000 ? 3 : 4;
        *o++ = (uint8_t)((59 + bytes) << 2);
        for (unsigned i = 0; i < bytes; i++) {
            *o++ = (uint8_t)(m >> (8 * i));
        }
    }
    memcpy(o, p, n);
    return o + n;
}

/* One copy element: len 1..64. */
static inline uint8_t *put_copy_element(uint8_t *o, size_t off, size_t len)
{
    if (len >= 4 && len <= 11 && off < 2048) {
        *o++ = (uint8_t)(1 | (len - 4) << 2 | (off >> 8) << 5);
        *o++ = (uint8_t)off;
        return o;
    }
    *o++ = (uint8_t)(2 | (len - 1) << 2);
    *o++ = (uint8_t)off;
    *o++ = (uint8_t)(off >> 8);
    return o;
}

/* A copy of any length >= 4, as elements of at most 64 (none shorter than 4, as libsnappy). */
static uint8_t *put_copy(uint8_t *o, size_t off, size_t len)
{
    while (len >= 68) {
        o = put_copy_element(o, off, 64);
        len -= 64;
    }
    if (len > 64) {
        o = put_copy_element(o, off, 60);
        len -= 60;
    }
    return put_copy_element(o, off, len);
}

/* Where the bytes at s and c (c before s) stop being equal, reading no further than end. */
static inline const uint8_t *match_end(const uint8_t *s, const uint8_t *c, const uint8_t *end)
{
#ifdef __SSE2__
    while (s + 16 <= end) {
        __m128i a = _mm_loadu_si128((const __m128i *)(const void *)s);
        __m128i b = _mm_loadu_si128((const __m128i *)(const void *)c);
        unsigned diff = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(a, b)) ^ 0xffffu;
        if (diff != 0) {
            return s + __builtin_ctz(diff);
        }
        s += 16;
        c += 16;
    }
#endif
    while (s + 8 <= end) {
        uint64_t diff = om_le64_load(s) ^ om_le64_load(c);
        if (diff != 0) {
            return s + (__builtin_ctzll(diff) >> 3);
        }
        s += 8;
        c += 8;
    }
    while (s < end && *s == *c) {
        s++;
        c++;
    }
    return s;
}

/* The elements of [base, end) at o. */
static uint8_t *compress_elements(uint16_t *table, const uint8_t *base, const uint8_t *end,
                                  uint8_t *o)
{
    size_t n = (size_t)(end - base);
    const uint8_t *lit = base;
    if (n >= TAIL + 1) {
        /* A table of 2^bits entries, smaller for small inputs (it is cleared for each). */
        unsigned bits = 8;
        while (bits < PRW_SNAPPY_TABLE_BITS && ((size_t)1 << bits) < n) {
            bits++;
        }
        unsigned shift = 32 - bits;
        memset(table, 0, ((size_t)1 << bits) * sizeof *table);
        const uint8_t *ip = base + 1, *limit = end - TAIL;
        while (ip < limit) {
            const uint8_t *cand;
            for (uint32_t skip = 64;; skip++) { /* a step of 2, then 3 after 32 misses, ... */
                uint32_t h = hash4(ip, shift);
                /* The table keeps a position's low 16 bits: the candidate is the one of
                 * those within 65,535 bytes before ip (an entry older than that names a
                 * position in the window that is checked like any other). */
                uint16_t back = (uint16_t)((uint16_t)(ip - base) - table[h]);
                table[h] = (uint16_t)(ip - base);
                if (back != 0 && back <= (size_t)(ip - base) && load32(ip - back) == load32(ip)) {
                    cand = ip - back;
                    break;
                }
                ip += skip >> 5;
                if (ip >= limit) {
                    goto done;
                }
            }
            while (ip > lit && cand > base && ip[-1] == cand[-1]) {
                ip--;
                cand--;
            }
            if (ip > lit) {
                o = put_literal(o, lit, (size_t)(ip - lit), true);
            }
            const uint8_t *s = match_end(ip + 4, cand + 4, end);
            o = put_copy(o, (size_t)(ip - cand), (size_t)(s - ip));
            ip = lit = s;
            if (ip >= limit) {
                break;
            }
            /* The position before the match's end, so that a run repeating right after it is
             * found (libsnappy does the same). */
            table[hash4(ip - 1, shift)] = (uint16_t)(ip - 1 - base);
        }
    }
done:
    if (lit < end) {
        o = put_literal(o, lit, (size_t)(end - lit), end - lit >= TAIL);
    }
    return o;
}

size_t prw_snappy_compress(uint16_t *table, const uint8_t *in, size_t n, uint8_t *out)
{
    uint8_t *o = om_pb_put_varint(out, n); /* the uncompressed length */
    o = compress_elements(table, in, in + n, o);
    return (size_t)(o - out);
}
