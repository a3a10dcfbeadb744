/* bearertokenauth.c: the bearertokenauth extension, as otelcol-contrib's
 * extension/bearertokenauthextension: a server authenticator that accepts requests whose
 * `header` (Authorization) is "<scheme> <token>" for one of the configured tokens, and a
 * client authenticator that sends the first token that way.
 *
 * Tokens come from `token`, `tokens`, or `filename` (one a line; blank lines skipped), which
 * wins over the others, as upstream. The file is read at start and again after every change
 * (the core's watched files: inotify and a read on the worker pool, never a stat per request);
 * a change that leaves no token keeps the last ones, with a warning.
 *
 * Secrets: tokens are kept as the header values ("Bearer abc") for the client side and as
 * their SHA-256 digests for the server side, which compares a request's value with every
 * token through om_auth_digest_equal (CRYPTO_memcmp), without stopping at the first match:
 * the time taken says nothing about the tokens or their lengths. Values are wiped when
 * replaced. Nothing logs a token, nor a file's content.
 *
 * Threads: the loop thread only. */
#include <stdio.h>
#include <string.h>

#include "bearertokenauth.h"

typedef struct ext_bearer {
    const ext_bearer_cfg_t *cfg;
    const char *log_name;
    om_host_t *host;
    char **values; /* "<scheme> <token>", owned, wiped when freed */
    uint8_t (*digests)[OM_AUTH_DIGEST_LEN];
    size_t n_values;
    om_filewatch_t *watch;
    bool shutdown_called;
    om_done_fn done;
    void *done_arg;
} ext_bearer_t;

/* ------------------------------------------------------------------------------------------ */
/* Config                                                                                     */

static const om_field_t bearer_fields[] = {
    {.key = "scheme",
     .type = OM_F_STRING,
     .offset = offsetof(ext_bearer_cfg_t, scheme),
     .def = "Bearer",
     .help = "the auth scheme before the token (\"\": the token alone)"},
    {.key = "token",
     .type = OM_F_STRING,
     .offset = offsetof(ext_bearer_cfg_t, token),
     .help = "the token"},
    {.key = "tokens",
     .type = OM_F_STRLIST,
     .offset = offsetof(ext_bearer_cfg_t, tokens),
     .help = "several tokens: a server accepts any, a client sends the first"},
    {.key = "filename",
     .type = OM_F_STRING,
     .offset = offsetof(ext_bearer_cfg_t, filename),
     .help = "a file of tokens, one a line, read again when it changes (wins over token)"},
    {.key = "header",
     .type = OM_F_STRING,
     .offset = offsetof(ext_bearer_cfg_t, header),
     .def = "Authorization",
     .help = "the header (gRPC metadata key) that carries the token"},
    {.key = NULL},
};

static bool is_set(const char *s)
{
    return s != NULL && s[0] != '\0';
}

/* An HTTP field name (RFC 9110 token). */
static bool field_name(const char *s)
{
    static const char seps[] = "()<>@,;:\\\"/[]?={} \t";
    bool ok = is_set(s);
    for (const char *p = s; ok && *p != '\0'; p++) {
        ok = (unsigned char)*p > 32 && (unsigned char)*p < 127 && strchr(seps, *p) == NULL;
    }
    return ok;
}

/* What may go in a header value: no control characters (a line break would end it). */
static bool header_text(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 32 && c != '\t') || c == 127) {
            return false;
        }
    }
    return true;
}

static int bearer_validate(const void *vcfg, om_err_t *err)
{
    const ext_bearer_cfg_t *cfg = vcfg;
    if (!is_set(cfg->token) && cfg->tokens.n == 0 && !is_set(cfg->filename)) {
        om_err_set(err, OM_ECONFIG, "no bearer token provided");
        return OM_ECONFIG;
    }
    if (is_set(cfg->token) && cfg->tokens.n > 0) {
        om_err_set(err, OM_ECONFIG, "either tokens or token should be provided, not both");
        return OM_ECONFIG;
    }
    if (!field_name(cfg->header)) {
        om_err_at(err, "header", "\"%.64s\" is not a valid header name",
                  cfg->header != NULL ? cfg->header : "");
        return OM_ECONFIG;
    }
    if (cfg->scheme != NULL && !header_text(cfg->scheme, strlen(cfg->scheme))) {
        om_err_at(err, "scheme", "must not contain control characters");
        return OM_ECONFIG;
    }
    if (cfg->token != NULL && !header_text(cfg->token, strlen(cfg->token))) {
        om_err_at(err, "token", "must not contain control characters");
        return OM_ECONFIG;
    }
    for (size_t i = 0; i < cfg->tokens.n; i++) {
        if (!header_text(cfg->tokens.items[i], strlen(cfg->tokens.items[i]))) {
            om_err_at(err, "tokens", "must not contain control characters");
            return OM_ECONFIG;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Tokens                                                                                     */

static void free_values(char **values, uint8_t (*digests)[OM_AUTH_DIGEST_LEN], size_t n)
{
    for (size_t i = 0; i < n; i++) {
        om_free_secret(values[i], strlen(values[i]) + 1);
    }
    om_free(values);
    om_free_secret(digests, n * sizeof *digests);
}

/* Replace the instance's tokens with toks[0..n) (each len[i] bytes, not NUL-terminated). */
static int set_tokens(ext_bearer_t *b, const char *const *toks, const size_t *lens, size_t n)
{
    const char *scheme = b->cfg->scheme != NULL ? b->cfg->scheme : "";
    size_t slen = strlen(scheme);
    char **values = om_calloc(n ? n : 1, sizeof *values);
    uint8_t(*digests)[OM_AUTH_DIGEST_LEN] = om_calloc(n ? n : 1, sizeof *digests);
    size_t made = 0;
    for (; values != NULL && digests != NULL && made < n; made++) {
        size_t len = slen + (slen > 0) + lens[made];
        char *v = om_malloc(len + 1);
        if (v == NULL) {
            break;
        }
        snprintf(v, len + 1, "%s%s%.*s", scheme, slen > 0 ? " " : "", (int)lens[made], toks[made]);
        values[made] = v;
        om_auth_digest(v, len, digests[made]);
    }
    if (values == NULL || digests == NULL || made < n) {
        if (values != NULL) {
            free_values(values, digests, made);
        } else {
            om_free(digests);
        }
        return OM_ENOMEM;
    }
    free_values(b->values, b->digests, b->n_values);
    b->values = values;
    b->digests = digests;
    b->n_values = n;
    return 0;
}

/* The tokens of a file: its lines without surrounding blanks, empty ones skipped. Lines with
 * control characters are skipped (they could not be sent in a header). Returns the number
 * found (at most cap) and how many lines were skipped for their characters. */
static size_t file_tokens(const char *data, size_t len, const char **toks, size_t *lens, size_t cap,
                          size_t *bad)
{
    size_t n = 0;
    *bad = 0;
    const char *p = data, *end = data + len;
    while (p < end && n < cap) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *e = nl != NULL ? nl : end;
        const char *s = p;
        while (s < e && (*s == ' ' || *s == '\t' || *s == '\r')) {
            s++;
        }
        const char *t = e;
        while (t > s && (t[-1] == ' ' || t[-1] == '\t' || t[-1] == '\r')) {
            t--;
        }
        if (t > s && header_text(s, (size_t)(t - s))) {
            toks[n] = s;
            lens[n++] = (size_t)(t - s);
        } else if (t > s) {
            (*bad)++;
        }
        p = e + 1;
    }
    return n;
}

#define MAX_FILE_TOKENS 1024

/* Parse a file's content into the instance's tokens. OM_EINVAL when it holds none. */
static int load_file_tokens(ext_bearer_t *b, const char *data, size_t len, om_err_t *err)
{
    static const char *toks[MAX_FILE_TOKENS];
    static size_t lens[MAX_FILE_TOKENS];
    size_t bad = 0;
    size_t n = file_tokens(data, len, toks, lens, MAX_FILE_TOKENS, &bad);
    if (bad > 0) {
        OM_CLOG(b->log_name, OM_LOG_WARN,
                "%zu line(s) of %s skipped: control characters cannot be sent in a header", bad,
                b->cfg->filename);
    }
    if (n == 0) {
        om_err_set(err, OM_EINVAL, "\"%.200s\" holds no token", b->cfg->filename);
        return OM_EINVAL;
    }
    int rc = set_tokens(b, toks, lens, n);
    if (rc != 0) {
        om_err_set(err, rc, "out of memory");
    }
    return rc;
}

static void on_file_change(void *arg, int rc, const char *data, size_t len, const char *msg)
{
    ext_bearer_t *b = arg;
    om_err_t err = {0};
    if (rc != 0 || load_file_tokens(b, data, len, &err) != 0) {
        OM_CLOG(b->log_name, OM_LOG_WARN, "token file changed but %s; keeping the last token(s)",
                rc != 0 ? msg : err.msg);
        return;
    }
    OM_CLOG(b->log_name, OM_LOG_INFO, "token file %s read again: %zu token(s)", b->cfg->filename,
            b->n_values);
}

static int start_file(ext_bearer_t *b, om_err_t *err)
{
    const ext_bearer_cfg_t *cfg = b->cfg;
    if (is_set(cfg->token) || cfg->tokens.n > 0) {
        OM_CLOG(b->log_name, OM_LOG_WARN,
                "a filename is specified. Configured token(s) is ignored!");
    }
    char *data = NULL;
    size_t len = 0;
    int rc = om_file_read(cfg->filename, EXT_BEARER_FILE_MAX, &data, &len, err);
    if (rc == 0) {
        rc = load_file_tokens(b, data, len, err);
        om_free_secret(data, EXT_BEARER_FILE_MAX + 1);
    }
    if (rc == 0) {
        rc = om_filewatch_start(b->host, cfg->filename, EXT_BEARER_FILE_MAX, on_file_change, b,
                                &b->watch, err);
    }
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Authenticator                                                                              */

static int bearer_authenticate(void *self, om_auth_header_fn header, void *arg, const char **why)
{
    ext_bearer_t *b = self;
    const char *v = header(arg, b->cfg->header);
    if (v == NULL || v[0] == '\0') {
        *why = "missing or empty authorization header";
        return OM_EUNAUTH;
    }
    uint8_t d[OM_AUTH_DIGEST_LEN];
    om_auth_digest(v, strlen(v), d);
    bool ok = false;
    for (size_t i = 0; i < b->n_values; i++) {
        ok |= om_auth_digest_equal(d, b->digests[i]);
    }
    if (!ok) {
        *why = "scheme or token does not match";
        return OM_EUNAUTH;
    }
    return 0;
}

static size_t bearer_headers(void *self, om_http_header_t *out, size_t cap)
{
    ext_bearer_t *b = self;
    if (cap == 0 || b->n_values == 0) {
        return 0;
    }
    out[0] = (om_http_header_t){.name = b->cfg->header, .value = b->values[0]};
    return 1;
}

static const om_auth_ops_t bearer_auth = {
    .authenticate = bearer_authenticate,
    .headers = bearer_headers,
};

/* ------------------------------------------------------------------------------------------ */
/* Lifecycle                                                                                  */

static int bearer_create(const om_create_args_t *a, void **self, om_err_t *err)
{
    ext_bearer_t *b = om_calloc(1, sizeof *b);
    if (b == NULL) {
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    b->cfg = a->cfg;
    b->log_name = a->log_name;
    b->host = a->host;
    *self = b;
    return 0;
}

static int bearer_start(void *self, om_err_t *err)
{
    ext_bearer_t *b = self;
    const ext_bearer_cfg_t *cfg = b->cfg;
    if (is_set(cfg->filename)) {
        return start_file(b, err);
    }
    const char *one[1] = {cfg->token};
    const char *const *toks = cfg->tokens.n > 0 ? (const char *const *)cfg->tokens.items : one;
    size_t n = cfg->tokens.n > 0 ? cfg->tokens.n : 1;
    size_t *lens = om_calloc(n, sizeof *lens);
    if (lens == NULL) {
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        lens[i] = toks[i] != NULL ? strlen(toks[i]) : 0;
    }
    int rc = set_tokens(b, toks, lens, n);
    om_free(lens);
    if (rc != 0) {
        om_err_set(err, rc, "out of memory");
    }
    return rc;
}

static void watch_closed(void *arg)
{
    ext_bearer_t *b = arg;
    b->watch = NULL;
    b->done(b->done_arg);
}

static void bearer_shutdown(void *self, om_done_fn done, void *arg)
{
    ext_bearer_t *b = self;
    if (b->shutdown_called) {
        return;
    }
    b->shutdown_called = true;
    if (b->watch == NULL) {
        done(arg);
        return;
    }
    b->done = done;
    b->done_arg = arg;
    om_filewatch_close(b->watch, watch_closed, b);
}

static void bearer_destroy(void *self)
{
    ext_bearer_t *b = self;
    if (b == NULL) {
        return;
    }
    free_values(b->values, b->digests, b->n_values);
    om_free(b);
}

size_t ext_bearer_token_count(void *self)
{
    return ((ext_bearer_t *)self)->n_values;
}

const om_factory_t ext_bearertokenauth_factory = {
    .abi = OM_FACTORY_ABI,
    .kind = OM_EXTENSION,
    .type = "bearertokenauth",
    .help = "Authenticator: a bearer token in a header (servers check it, clients send it); "
            "token, tokens or a watched file",
    .config_size = sizeof(ext_bearer_cfg_t),
    .fields = bearer_fields,
    .config_validate = bearer_validate,
    .create = bearer_create,
    .start = bearer_start,
    .shutdown = bearer_shutdown,
    .destroy = bearer_destroy,
    .auth = &bearer_auth,
};
