/* htpasswd.c: htpasswd text, read as otelcol's go-htpasswd (DefaultSystems) reads it, and
 * passwords checked against it.
 *
 * Lines are "user:encoded", split at the first colon, with surrounding blanks removed; empty
 * lines are skipped, and a later line for a user replaces an earlier one (the inline text comes
 * after the file's, so it wins). The encoded part is tried against the forms in go-htpasswd's
 * order: $apr1$ and $1$ (MD5), {SHA}, bcrypt ($2a$ $2b$ $2x$ $2y$), {SSHA}, $5$ and $6$
 * (SHA-crypt), and anything else is a plain-text password. A line whose form is recognised but
 * malformed is skipped (go-htpasswd drops it too), with a note that never includes the hash.
 *
 * Who checks what: MD5-crypt, bcrypt and SHA-crypt go to Debian's libcrypt (libxcrypt,
 * crypt_rn: the stored hash is the setting, and the output must equal it); {SHA} and {SSHA}
 * are SHA-1 with OpenSSL; $apr1$ is Apache's algorithm, implemented here over OpenSSL's MD5.
 * Every final comparison goes through the core's om_auth_equal (SHA-256 digests and
 * CRYPTO_memcmp): its time tells nothing about the hash or the password.
 *
 * Differences from go-htpasswd, all refusing what Go would refuse: a password with a NUL byte
 * never matches a libcrypt form (crypt would stop at the NUL where Go's bcrypt does not), and
 * neither does a bcrypt password longer than 72 bytes (libcrypt would use its first 72, Go's
 * bcrypt refuses it); hashes that libcrypt's crypt_checksalt calls invalid are skipped with a
 * note (Go keeps them, and they never match); $5$/$6$ hashes with rounds= work (go-htpasswd
 * cuts them wrongly); yescrypt ($y$, $gy$) and scrypt ($7$), which Debian writes (mkpasswd,
 * chpasswd), are checked by libcrypt where Go would take the hash string as a plain-text
 * password.
 *
 * Cost: bcrypt and SHA-crypt are made to be slow, and they run on the caller's thread (the
 * loop). So each user remembers the last password that matched and the last that did not, as
 * SHA-256 digests keyed with a random key made at parse time: a client that sends the same
 * credentials again costs one digest. */
#include <crypt.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "basicauth.h"

#define SHA1_LEN 20
#define BCRYPT_MAX_PW 72

typedef struct entry {
    char *user; /* owned, NUL-terminated (no NUL inside: it comes from a text line) */
    size_t ulen;
    size_t line; /* 1-based; the later line of a user wins */
    ext_basic_form_t form;
    char *enc; /* the encoded password as written; owned */
    size_t elen;
    /* apr1: salt and hash inside enc */
    size_t salt_off, salt_len, hash_off, hash_len;
    /* {SHA} {SSHA}: the decoded bytes (SSHA: SHA-1 then the salt); owned */
    uint8_t *raw;
    size_t raw_len;
    /* The last password that matched / did not, keyed (see the file comment). */
    uint8_t ok[OM_AUTH_DIGEST_LEN], bad[OM_AUTH_DIGEST_LEN];
    bool ok_valid, bad_valid;
} entry_t;

struct ext_basic_htpasswd {
    entry_t *e; /* sorted by user; one per user */
    size_t n, cap;
    uint8_t key[32];
};

/* ------------------------------------------------------------------------------------------ */
/* base64                                                                                     */

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

long ext_basic_b64_decode(const char *src, size_t len, uint8_t *out, size_t cap)
{
    uint32_t acc = 0;
    int got = 0, pad = 0;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)src[i];
        if (c == '\r' || c == '\n') {
            continue;
        }
        if (c == '=') {
            pad++;
            if (got + pad > 4 || got < 2) {
                return -1;
            }
            continue;
        }
        int v = b64_value(c);
        if (v < 0 || pad > 0) {
            return -1;
        }
        acc = (acc << 6) | (uint32_t)v;
        if (++got < 4) {
            continue;
        }
        if (n + 3 > cap) {
            return -1;
        }
        out[n++] = (uint8_t)(acc >> 16);
        out[n++] = (uint8_t)(acc >> 8);
        out[n++] = (uint8_t)acc;
        acc = 0;
        got = 0;
    }
    if (got == 0 && pad == 0) {
        return (long)n;
    }
    /* A last quantum of 2 or 3 characters must be padded to 4, as StdEncoding wants. */
    if (got + pad != 4 || n + (size_t)(got - 1) > cap) {
        return -1;
    }
    acc <<= 6 * (4 - got);
    out[n++] = (uint8_t)(acc >> 16);
    if (got == 3) {
        out[n++] = (uint8_t)(acc >> 8);
    }
    return (long)n;
}

/* ------------------------------------------------------------------------------------------ */
/* Apache's MD5                                                                               */

static const char itoa64[] = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

static void md5_of(EVP_MD_CTX *ctx, const void *const *parts, const size_t *lens, size_t n,
                   uint8_t out[16])
{
    EVP_DigestInit_ex(ctx, EVP_md5(), NULL);
    for (size_t i = 0; i < n; i++) {
        EVP_DigestUpdate(ctx, parts[i], lens[i]);
    }
    EVP_DigestFinal_ex(ctx, out, NULL);
}

static void to64(char *out, uint32_t v, int n)
{
    for (int i = 0; i < n; i++) {
        out[i] = itoa64[v & 0x3f];
        v >>= 6;
    }
}

/* The initial digest: pw, magic, salt, then bytes of MD5(pw salt pw) and the bits of pw's
 * length, as apr_md5_encode does. */
static void apr1_initial(EVP_MD_CTX *ctx, const char *pw, size_t plen, const char *salt,
                         size_t slen, uint8_t fin[16])
{
    uint8_t alt[16];
    const void *ap[] = {pw, salt, pw};
    const size_t al[] = {plen, slen, plen};
    md5_of(ctx, ap, al, 3, alt);
    EVP_DigestInit_ex(ctx, EVP_md5(), NULL);
    EVP_DigestUpdate(ctx, pw, plen);
    EVP_DigestUpdate(ctx, "$apr1$", 6);
    EVP_DigestUpdate(ctx, salt, slen);
    for (size_t left = plen; left > 0; left -= left > 16 ? 16 : left) {
        EVP_DigestUpdate(ctx, alt, left > 16 ? 16 : left);
    }
    for (size_t i = plen; i != 0; i >>= 1) {
        EVP_DigestUpdate(ctx, (i & 1) ? (const void *)"" : (const void *)pw, 1);
    }
    EVP_DigestFinal_ex(ctx, fin, NULL);
    OPENSSL_cleanse(alt, sizeof alt);
}

void ext_basic_apr1(const char *pw, size_t plen, const char *salt, size_t slen, char out[23])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    uint8_t fin[16];
    memset(fin, 0, sizeof fin);
    if (ctx != NULL) {
        apr1_initial(ctx, pw, plen, salt, slen, fin);
        /* A thousand rounds, to slow a brute force down (the algorithm's own words). */
        for (int i = 0; i < 1000; i++) {
            const void *parts[4];
            size_t lens[4], n = 0;
            parts[n] = (i & 1) ? (const void *)pw : (const void *)fin;
            lens[n++] = (i & 1) ? plen : 16;
            if (i % 3 != 0) {
                parts[n] = salt;
                lens[n++] = slen;
            }
            if (i % 7 != 0) {
                parts[n] = pw;
                lens[n++] = plen;
            }
            parts[n] = (i & 1) ? (const void *)fin : (const void *)pw;
            lens[n++] = (i & 1) ? 16 : plen;
            md5_of(ctx, parts, lens, n, fin);
        }
        EVP_MD_CTX_free(ctx);
    }
    to64(out, ((uint32_t)fin[0] << 16) | ((uint32_t)fin[6] << 8) | fin[12], 4);
    to64(out + 4, ((uint32_t)fin[1] << 16) | ((uint32_t)fin[7] << 8) | fin[13], 4);
    to64(out + 8, ((uint32_t)fin[2] << 16) | ((uint32_t)fin[8] << 8) | fin[14], 4);
    to64(out + 12, ((uint32_t)fin[3] << 16) | ((uint32_t)fin[9] << 8) | fin[15], 4);
    to64(out + 16, ((uint32_t)fin[4] << 16) | ((uint32_t)fin[10] << 8) | fin[5], 4);
    to64(out + 20, fin[11], 2);
    out[22] = '\0';
    OPENSSL_cleanse(fin, sizeof fin);
}

/* ------------------------------------------------------------------------------------------ */
/* Parsing                                                                                    */

static bool has_prefix(const char *s, size_t n, const char *p)
{
    size_t pl = strlen(p);
    return n >= pl && memcmp(s, p, pl) == 0;
}

/* libcrypt knows this hash and can check against it (a legacy or cheap one too: the file's
 * owner chose it, and go-htpasswd takes it). */
static bool crypt_ok(const char *enc)
{
    int c = crypt_checksalt(enc);
    return c != CRYPT_SALT_INVALID && c != CRYPT_SALT_METHOD_DISABLED;
}

/* "$2y$NN$" then 22 characters of salt and 31 of hash: anything else could never match (Go's
 * bcrypt says the hash is too short), and libcrypt only looks at the prefix. */
static bool bcrypt_shape(const char *s, size_t n)
{
    return n == 60 && s[4] >= '0' && s[4] <= '3' && s[5] >= '0' && s[5] <= '9' && s[6] == '$';
}

/* {SHA} and {SSHA}: the base64 after the prefix. NULL for a malformed one. */
static const char *decode_sha(entry_t *e, size_t prefix, bool salted)
{
    size_t cap = e->elen;
    e->raw = om_malloc(cap + 1);
    if (e->raw == NULL) {
        return "out of memory";
    }
    long n = ext_basic_b64_decode(e->enc + prefix, e->elen - prefix, e->raw, cap);
    if (n < 0 || (!salted && n != SHA1_LEN) || (salted && n < SHA1_LEN)) {
        return salted ? "malformed ssha password" : "malformed sha1 password";
    }
    e->raw_len = (size_t)n;
    return NULL;
}

/* The form of e->enc, and what checking needs of it. NULL, or why the line is skipped. */
static const char *classify(entry_t *e)
{
    const char *s = e->enc;
    size_t n = e->elen;
    if (has_prefix(s, n, "$apr1$")) {
        const char *d = memchr(s + 6, '$', n - 6);
        if (d == NULL) {
            return "malformed md5 password";
        }
        e->form = EXT_BASIC_APR1;
        e->salt_off = 6;
        e->salt_len = (size_t)(d - s) - 6;
        e->hash_off = (size_t)(d - s) + 1;
        e->hash_len = n - e->hash_off;
        return NULL;
    }
    static const struct {
        const char *prefix;
        ext_basic_form_t form;
        const char *bad;
    } crypts[] = {
        {"$1$", EXT_BASIC_MD5, "malformed md5 password"},
        {"$2y$", EXT_BASIC_BCRYPT, "malformed bcrypt password"},
        {"$2a$", EXT_BASIC_BCRYPT, "malformed bcrypt password"},
        {"$2b$", EXT_BASIC_BCRYPT, "malformed bcrypt password"},
        {"$2x$", EXT_BASIC_BCRYPT, "malformed bcrypt password"},
        {"$5$", EXT_BASIC_CRYPT, "malformed crypt-SHA password"},
        {"$6$", EXT_BASIC_CRYPT, "malformed crypt-SHA password"},
        /* Debian's own password hashes (yescrypt is its default, scrypt): go-htpasswd would
         * take such a line as a plain-text password, so the hash string itself would log in;
         * here it is checked as the hash it is. */
        {"$y$", EXT_BASIC_CRYPT, "malformed yescrypt password"},
        {"$gy$", EXT_BASIC_CRYPT, "malformed yescrypt password"},
        {"$7$", EXT_BASIC_CRYPT, "malformed scrypt password"},
    };
    if (has_prefix(s, n, "{SHA}")) {
        e->form = EXT_BASIC_SHA;
        return decode_sha(e, 5, false);
    }
    if (has_prefix(s, n, "{SSHA}")) {
        e->form = EXT_BASIC_SSHA;
        return decode_sha(e, 6, true);
    }
    for (size_t i = 0; i < sizeof crypts / sizeof crypts[0]; i++) {
        if (has_prefix(s, n, crypts[i].prefix)) {
            e->form = crypts[i].form;
            bool ok = crypt_ok(s) && (e->form != EXT_BASIC_BCRYPT || bcrypt_shape(s, n));
            return ok ? NULL : crypts[i].bad;
        }
    }
    e->form = EXT_BASIC_PLAIN;
    return NULL;
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

static void entry_clear(entry_t *e)
{
    om_free_secret(e->user, e->ulen + 1);
    om_free_secret(e->enc, e->elen + 1);
    om_free_secret(e->raw, e->elen + 1);
    memset(e, 0, sizeof *e);
}

static int add_line(ext_basic_htpasswd_t *h, const char *s, size_t n, size_t line,
                    ext_basic_note_fn note, void *arg)
{
    while (n > 0 && is_blank(*s)) {
        s++;
        n--;
    }
    while (n > 0 && is_blank(s[n - 1])) {
        n--;
    }
    if (n == 0) {
        return 0;
    }
    const char *colon = memchr(s, ':', n);
    if (colon == NULL) {
        note(arg, line, NULL, "malformed line, no colon");
        return 0;
    }
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 16;
        entry_t *ne = om_realloc(h->e, cap * sizeof *ne);
        if (ne == NULL) {
            return OM_ENOMEM;
        }
        h->e = ne;
        h->cap = cap;
    }
    entry_t *e = &h->e[h->n];
    memset(e, 0, sizeof *e);
    e->line = line;
    e->ulen = (size_t)(colon - s);
    e->user = om_strndup(s, e->ulen);
    e->elen = n - e->ulen - 1;
    e->enc = om_strndup(colon + 1, e->elen);
    if (e->user == NULL || e->enc == NULL) {
        entry_clear(e);
        return OM_ENOMEM;
    }
    const char *bad = classify(e);
    if (bad != NULL) {
        note(arg, line, e->user, bad);
        entry_clear(e);
        return strcmp(bad, "out of memory") == 0 ? OM_ENOMEM : 0;
    }
    if (e->form == EXT_BASIC_PLAIN) {
        note(arg, line, e->user, "plain-text password");
    }
    h->n++;
    return 0;
}

static int by_user_then_line(const void *a, const void *b)
{
    const entry_t *x = a, *y = b;
    int c = strcmp(x->user, y->user);
    return c != 0 ? c : (x->line < y->line ? -1 : x->line > y->line);
}

/* Sorted by user, the last line of each user kept. */
static void keep_last(ext_basic_htpasswd_t *h)
{
    if (h->n == 0) {
        return;
    }
    qsort(h->e, h->n, sizeof *h->e, by_user_then_line);
    size_t w = 0;
    for (size_t i = 0; i < h->n; i++) {
        if (i + 1 < h->n && strcmp(h->e[i].user, h->e[i + 1].user) == 0) {
            entry_clear(&h->e[i]);
            continue;
        }
        h->e[w++] = h->e[i];
    }
    h->n = w;
}

int ext_basic_htpasswd_parse(const char *text, size_t len, ext_basic_note_fn note, void *arg,
                             ext_basic_htpasswd_t **out, om_err_t *err)
{
    *out = NULL;
    ext_basic_htpasswd_t *h = om_calloc(1, sizeof *h);
    if (h == NULL || RAND_bytes(h->key, sizeof h->key) != 1) {
        om_free(h);
        om_err_set(err, OM_ENOMEM, "out of memory (or no randomness)");
        return OM_ENOMEM;
    }
    size_t line = 0;
    for (const char *p = text, *end = text + len; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *e = nl != NULL ? nl : end;
        line++;
        if ((size_t)(e - p) > EXT_BASIC_LINE_MAX) {
            ext_basic_htpasswd_free(h);
            om_err_set(err, OM_EINVAL, "read htpasswd content: line %zu is longer than %d bytes",
                       line, EXT_BASIC_LINE_MAX);
            return OM_EINVAL;
        }
        if (add_line(h, p, (size_t)(e - p), line, note, arg) != 0) {
            ext_basic_htpasswd_free(h);
            om_err_set(err, OM_ENOMEM, "out of memory");
            return OM_ENOMEM;
        }
        p = e + 1;
    }
    keep_last(h);
    *out = h;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Matching                                                                                   */

static entry_t *find(ext_basic_htpasswd_t *h, const char *user, size_t ulen)
{
    if (memchr(user, '\0', ulen) != NULL) {
        return NULL; /* no user of a text line has one */
    }
    size_t lo = 0, hi = h->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const entry_t *e = &h->e[mid];
        size_t m = ulen < e->ulen ? ulen : e->ulen;
        int c = memcmp(user, e->user, m);
        if (c == 0) {
            c = ulen < e->ulen ? -1 : ulen > e->ulen;
        }
        if (c == 0) {
            return &h->e[mid];
        }
        if (c < 0) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    return NULL;
}

/* libcrypt: crypt_rn(pw, stored) must give stored back. */
static bool check_crypt(const entry_t *e, const char *pw, size_t plen)
{
    if (memchr(pw, '\0', plen) != NULL || (e->form == EXT_BASIC_BCRYPT && plen > BCRYPT_MAX_PW)) {
        return false;
    }
    char *pz = om_strndup(pw, plen);
    struct crypt_data *cd = om_calloc(1, sizeof *cd);
    bool ok = false;
    if (pz != NULL && cd != NULL) {
        const char *h = crypt_rn(pz, e->enc, cd, (int)sizeof *cd);
        ok = h != NULL && om_auth_equal(h, strlen(h), e->enc, e->elen);
    }
    om_free_secret(pz, plen + 1);
    om_free_secret(cd, sizeof *cd);
    return ok;
}

static bool check_sha(const entry_t *e, const char *pw, size_t plen)
{
    uint8_t d[SHA1_LEN];
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx == NULL) {
        return false;
    }
    EVP_DigestInit_ex(ctx, EVP_sha1(), NULL);
    EVP_DigestUpdate(ctx, pw, plen);
    if (e->form == EXT_BASIC_SSHA) {
        EVP_DigestUpdate(ctx, e->raw + SHA1_LEN, e->raw_len - SHA1_LEN);
    }
    EVP_DigestFinal_ex(ctx, d, NULL);
    EVP_MD_CTX_free(ctx);
    return om_auth_equal(d, SHA1_LEN, e->raw, SHA1_LEN);
}

/* The password itself, or "{PLAIN}" and the password (nginx's form), as go-htpasswd. */
static bool check_plain(const entry_t *e, const char *pw, size_t plen)
{
    bool as_is = om_auth_equal(pw, plen, e->enc, e->elen);
    char *tagged = om_malloc(plen + 8);
    bool tagged_eq = false;
    if (tagged != NULL) {
        memcpy(tagged, "{PLAIN}", 7);
        memcpy(tagged + 7, pw, plen);
        tagged_eq = om_auth_equal(tagged, plen + 7, e->enc, e->elen);
        om_free_secret(tagged, plen + 8);
    }
    return as_is | tagged_eq;
}

static bool verify(const entry_t *e, const char *pw, size_t plen)
{
    switch (e->form) {
    case EXT_BASIC_APR1: {
        char out[23];
        ext_basic_apr1(pw, plen, e->enc + e->salt_off, e->salt_len, out);
        bool ok = om_auth_equal(out, 22, e->enc + e->hash_off, e->hash_len);
        OPENSSL_cleanse(out, sizeof out);
        return ok;
    }
    case EXT_BASIC_MD5:
    case EXT_BASIC_BCRYPT:
    case EXT_BASIC_CRYPT:
        return check_crypt(e, pw, plen);
    case EXT_BASIC_SHA:
    case EXT_BASIC_SSHA:
        return check_sha(e, pw, plen);
    case EXT_BASIC_PLAIN:
        return check_plain(e, pw, plen);
    }
    return false;
}

bool ext_basic_htpasswd_match(ext_basic_htpasswd_t *h, const char *user, size_t ulen,
                              const char *pw, size_t plen)
{
    entry_t *e = h != NULL ? find(h, user, ulen) : NULL;
    if (e == NULL) {
        return false;
    }
    uint8_t d[OM_AUTH_DIGEST_LEN];
    unsigned int dl = 0;
    if (HMAC(EVP_sha256(), h->key, (int)sizeof h->key, (const unsigned char *)pw, plen, d, &dl) ==
        NULL) {
        return verify(e, pw, plen);
    }
    bool ok;
    if (e->ok_valid && om_auth_digest_equal(d, e->ok)) {
        ok = true;
    } else if (e->bad_valid && om_auth_digest_equal(d, e->bad)) {
        ok = false;
    } else {
        ok = verify(e, pw, plen);
        memcpy(ok ? e->ok : e->bad, d, sizeof d);
        *(ok ? &e->ok_valid : &e->bad_valid) = true;
    }
    OPENSSL_cleanse(d, sizeof d);
    return ok;
}

bool ext_basic_htpasswd_costly(ext_basic_htpasswd_t *h, const char *user, size_t ulen,
                               const char *pw, size_t plen)
{
    const entry_t *e = h != NULL ? find(h, user, ulen) : NULL;
    if (e == NULL ||
        !(e->form == EXT_BASIC_BCRYPT || e->form == EXT_BASIC_CRYPT || e->form == EXT_BASIC_MD5)) {
        return false;
    }
    uint8_t d[OM_AUTH_DIGEST_LEN];
    unsigned int dl = 0;
    if (HMAC(EVP_sha256(), h->key, (int)sizeof h->key, (const unsigned char *)pw, plen, d, &dl) ==
        NULL) {
        return true;
    }
    bool known = (e->ok_valid && om_auth_digest_equal(d, e->ok)) ||
                 (e->bad_valid && om_auth_digest_equal(d, e->bad));
    OPENSSL_cleanse(d, sizeof d);
    return !known;
}

size_t ext_basic_htpasswd_users(const ext_basic_htpasswd_t *h)
{
    return h != NULL ? h->n : 0;
}

int ext_basic_htpasswd_form(const ext_basic_htpasswd_t *h, const char *user)
{
    const entry_t *e = find((ext_basic_htpasswd_t *)(uintptr_t)h, user, strlen(user));
    return e != NULL ? (int)e->form : -1;
}

void ext_basic_htpasswd_free(ext_basic_htpasswd_t *h)
{
    if (h == NULL) {
        return;
    }
    for (size_t i = 0; i < h->n; i++) {
        entry_clear(&h->e[i]);
    }
    om_free(h->e);
    OPENSSL_cleanse(h->key, sizeof h->key);
    om_free(h);
}
