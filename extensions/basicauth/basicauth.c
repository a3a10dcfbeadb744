/* basicauth.c: the basicauth extension, as otelcol-contrib's extension/basicauthextension.
 *
 * An instance is one side, chosen by its config: with `htpasswd` it authenticates servers'
 * requests ("Authorization: Basic base64(user:password)", an HTTP header or gRPC metadata)
 * against htpasswd text (htpasswd.c); with `client_auth` it gives clients that header.
 *
 * Files: the htpasswd file, username_file and password_file are read at start and again after
 * every change (the core's watched files), where upstream reads its htpasswd file once: a
 * rotated password file is seen without a restart. A change that cannot be read or parsed
 * keeps the last credentials, with a warning.
 *
 * Secrets: nothing here logs a password, a hash, a header value or a file's content; notes
 * about htpasswd lines give the line number and the problem only. Buffers that held a secret
 * are wiped when freed.
 *
 * Threads: the loop thread only. A bcrypt check runs on it (the cost the htpasswd file's
 * owner chose, ~50 ms at cost 10): htpasswd.c remembers each user's last good and bad password,
 * so a client that keeps sending the same credentials pays it once. Credentials it does not
 * remember (a password guesser's) could still hold the loop for seconds, so slow hashes get a
 * budget: at most HASH_BUDGET_NS of them per HASH_WINDOW_NS. Beyond it, a request whose check
 * would need one is answered "try again" (OM_EAGAIN: HTTP 503 with Retry-After, gRPC
 * UNAVAILABLE, both retried by OTLP clients) without hashing, while remembered credentials
 * keep working; the pipeline never stalls on guessing. */
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "basicauth.h"

/* The largest htpasswd or credentials file read. */
#define FILE_MAX (1024 * 1024)

/* Slow password hashing on the loop: at most a quarter of each second. */
#define HASH_BUDGET_NS (250 * (uint64_t)OM_NS_PER_MS)
#define HASH_WINDOW_NS ((uint64_t)OM_NS_PER_S)

typedef struct ext_basic {
    const ext_basic_cfg_t *cfg;
    const char *log_name;
    om_host_t *host;
    /* Server side. */
    ext_basic_htpasswd_t *table;
    uint64_t hash_window_start, hash_spent; /* uv_hrtime ns */
    uint64_t hash_budget, hash_window;
    size_t file_lines; /* lines of the file's text, before the inline text in the table */
    om_filewatch_t *table_watch;
    /* Client side: the current username and password (owned, wiped) and the header value
     * made of them ("Basic ..."). */
    char *user, *pass, *value;
    om_filewatch_t *user_watch, *pass_watch;
    int open_watches;
    bool shutdown_called;
    om_done_fn done;
    void *done_arg;
} ext_basic_t;

/* ------------------------------------------------------------------------------------------ */
/* Config                                                                                     */

static const om_field_t htpasswd_fields[] = {
    {.key = "file",
     .type = OM_F_STRING,
     .offset = offsetof(ext_basic_htpasswd_cfg_t, file),
     .help = "an htpasswd file (bcrypt, SHA-crypt, MD5, {SHA}, {SSHA}), read again when it "
             "changes"},
    {.key = "inline",
     .type = OM_F_STRING,
     .offset = offsetof(ext_basic_htpasswd_cfg_t, inline_),
     .help = "htpasswd lines, which win over the file's for the same user"},
    {.key = NULL},
};

static const om_field_t client_fields[] = {
    {.key = "username",
     .type = OM_F_STRING,
     .offset = offsetof(ext_basic_client_cfg_t, username),
     .help = "the username sent"},
    {.key = "password",
     .type = OM_F_STRING,
     .offset = offsetof(ext_basic_client_cfg_t, password),
     .help = "the password sent"},
    {.key = "username_file",
     .type = OM_F_STRING,
     .offset = offsetof(ext_basic_client_cfg_t, username_file),
     .help = "a file holding the username (wins over username), read again when it changes"},
    {.key = "password_file",
     .type = OM_F_STRING,
     .offset = offsetof(ext_basic_client_cfg_t, password_file),
     .help = "a file holding the password (wins over password), read again when it changes"},
    {.key = "aws_secrets_manager",
     .type = OM_F_REFUSED,
     .help = "credentials from AWS Secrets Manager are not implemented: use password_file"},
    {.key = NULL},
};

static const om_field_t basic_fields[] = {
    {.key = "htpasswd",
     .type = OM_F_SECTION,
     .offset = offsetof(ext_basic_cfg_t, htpasswd),
     .fields = htpasswd_fields,
     .flags = OM_FF_PRESENCE,
     .present_offset = offsetof(ext_basic_cfg_t, htpasswd_present),
     .help = "server side: the users and their password hashes"},
    {.key = "client_auth",
     .type = OM_F_SECTION,
     .offset = offsetof(ext_basic_cfg_t, client_auth),
     .fields = client_fields,
     .flags = OM_FF_PRESENCE,
     .present_offset = offsetof(ext_basic_cfg_t, client_present),
     .help = "client side: the username and password sent"},
    {.key = NULL},
};

static bool is_set(const char *s)
{
    return s != NULL && s[0] != '\0';
}

static int basic_validate(const void *vcfg, om_err_t *err)
{
    const ext_basic_cfg_t *cfg = vcfg;
    if (cfg->htpasswd_present && cfg->client_present) {
        om_err_set(err, OM_ECONFIG, "only one of `htpasswd` or `client_auth` can be specified");
        return OM_ECONFIG;
    }
    if (!cfg->htpasswd_present && !cfg->client_present) {
        om_err_set(err, OM_ECONFIG, "no credential source provided");
        return OM_ECONFIG;
    }
    if (cfg->htpasswd_present && !is_set(cfg->htpasswd.file) && !is_set(cfg->htpasswd.inline_)) {
        /* Upstream says so when the extension is created; here `otelmon validate` says it. */
        om_err_at(err, "htpasswd", "no credential source provided");
        return OM_ECONFIG;
    }
    const ext_basic_client_cfg_t *c = &cfg->client_auth;
    if (cfg->client_present && !is_set(c->username_file) && c->username != NULL &&
        strchr(c->username, ':') != NULL) {
        /* The server would cut the credentials at its first colon. */
        om_err_at(err, "client_auth::username", "invalid authorization format");
        return OM_ECONFIG;
    }
    return 0;
}

static unsigned basic_sides(const void *vcfg)
{
    const ext_basic_cfg_t *cfg = vcfg;
    return (cfg->htpasswd_present ? OM_AUTH_SERVER : 0u) |
           (cfg->client_present ? OM_AUTH_CLIENT : 0u);
}

/* ------------------------------------------------------------------------------------------ */
/* The Authorization header                                                                   */

int ext_basic_parse_authorization(const char *value, uint8_t *buf, size_t cap, const char **user,
                                  size_t *ulen, const char **pw, size_t *plen, const char **why)
{
    static const char prefix[] = "Basic ";
    const size_t pl = sizeof prefix - 1;
    if (value == NULL || value[0] == '\0') {
        *why = "no basic auth provided";
        return OM_EUNAUTH;
    }
    size_t n = strlen(value);
    if (n < pl || strncasecmp(value, prefix, pl) != 0) {
        *why = "invalid authorization scheme prefix";
        return OM_EUNAUTH;
    }
    long got = ext_basic_b64_decode(value + pl, n - pl, buf, cap);
    const uint8_t *colon = got > 0 ? memchr(buf, ':', (size_t)got) : NULL;
    if (colon == NULL) {
        *why = "invalid authorization format";
        return OM_EUNAUTH;
    }
    *user = (const char *)buf;
    *ulen = (size_t)(colon - buf);
    *pw = (const char *)colon + 1;
    *plen = (size_t)got - *ulen - 1;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Server side                                                                                */

typedef struct note_ctx {
    ext_basic_t *b;
    size_t file_lines;
} note_ctx_t;

/* A line of the htpasswd text skipped or noted: where it is and why, never its content (nor
 * the user's name: it may be someone's mistyped password). */
static void on_note(void *arg, size_t line, const char *user, const char *problem)
{
    (void)user;
    const note_ctx_t *n = arg;
    const ext_basic_cfg_t *cfg = n->b->cfg;
    bool in_file = line <= n->file_lines;
    OM_CLOG(n->b->log_name, OM_LOG_WARN, "htpasswd %s line %zu: %s%s",
            in_file ? cfg->htpasswd.file : "inline", in_file ? line : line - n->file_lines, problem,
            strcmp(problem, "plain-text password") == 0 ? " (accepted, as otelcol)" : "");
}

/* Parse the file's text (may be NULL) then the inline text into a new table for b. */
static int load_table(ext_basic_t *b, const char *file, size_t flen, om_err_t *err)
{
    const char *inl = b->cfg->htpasswd.inline_ != NULL ? b->cfg->htpasswd.inline_ : "";
    size_t ilen = strlen(inl), total = flen + 1 + ilen;
    char *text = om_malloc(total + 1);
    if (text == NULL) {
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    note_ctx_t nc = {.b = b, .file_lines = 0};
    size_t n = 0;
    if (file != NULL) {
        memcpy(text, file, flen);
        n = flen;
        text[n++] = '\n'; /* as upstream: the inline text starts on a line of its own */
        nc.file_lines = 1;
        for (size_t i = 0; i < flen; i++) {
            nc.file_lines += file[i] == '\n';
        }
    }
    memcpy(text + n, inl, ilen);
    n += ilen;
    ext_basic_htpasswd_t *t = NULL;
    int rc = ext_basic_htpasswd_parse(text, n, on_note, &nc, &t, err);
    om_free_secret(text, total + 1);
    if (rc != 0) {
        return rc;
    }
    ext_basic_htpasswd_free(b->table);
    b->table = t;
    return 0;
}

static void on_table_change(void *arg, int rc, const char *data, size_t len, const char *msg)
{
    ext_basic_t *b = arg;
    om_err_t err = {0};
    if (rc != 0 || load_table(b, data, len, &err) != 0) {
        OM_CLOG(b->log_name, OM_LOG_WARN, "htpasswd file changed but %s; keeping the last users",
                rc != 0 ? msg : err.msg);
        return;
    }
    OM_CLOG(b->log_name, OM_LOG_INFO, "htpasswd file %s read again: %zu user(s)",
            b->cfg->htpasswd.file, ext_basic_htpasswd_users(b->table));
}

static int start_server(ext_basic_t *b, om_err_t *err)
{
    const char *path = b->cfg->htpasswd.file;
    if (!is_set(path)) {
        return load_table(b, NULL, 0, err);
    }
    char *data = NULL;
    size_t len = 0;
    int rc = om_file_read(path, FILE_MAX, &data, &len, err);
    if (rc != 0) {
        return rc;
    }
    rc = load_table(b, data, len, err);
    om_free_secret(data, FILE_MAX + 1);
    if (rc == 0) {
        rc = om_filewatch_start(b->host, path, FILE_MAX, on_table_change, b, &b->table_watch, err);
        b->open_watches += rc == 0;
    }
    return rc;
}

/* Whether a slow hash may run now: the window's time spent on them is under the budget. */
static bool hash_allowed(ext_basic_t *b, uint64_t now)
{
    if (now - b->hash_window_start >= b->hash_window) {
        b->hash_window_start = now;
        b->hash_spent = 0;
    }
    return b->hash_spent < b->hash_budget;
}

static int basic_authenticate(void *self, om_auth_header_fn header, void *arg, const char **why)
{
    ext_basic_t *b = self;
    if (b->table == NULL) {
        *why = "not a server authenticator";
        return OM_EUNAUTH;
    }
    uint8_t buf[EXT_BASIC_CRED_MAX];
    const char *user = NULL, *pw = NULL;
    size_t ulen = 0, plen = 0;
    int rc = ext_basic_parse_authorization(header(arg, "Authorization"), buf, sizeof buf, &user,
                                           &ulen, &pw, &plen, why);
    bool costly = rc == 0 && ext_basic_htpasswd_costly(b->table, user, ulen, pw, plen);
    uint64_t t0 = costly ? uv_hrtime() : 0;
    if (costly && !hash_allowed(b, t0)) {
        *why = "too many new credentials to check: try again";
        rc = OM_EAGAIN;
    } else if (rc == 0 && !ext_basic_htpasswd_match(b->table, user, ulen, pw, plen)) {
        *why = "invalid credentials";
        rc = OM_EUNAUTH;
    }
    if (costly && rc != OM_EAGAIN) {
        b->hash_spent += uv_hrtime() - t0;
    }
    OPENSSL_cleanse(buf, sizeof buf);
    return rc;
}

void ext_basic_set_hash_budget(void *self, uint64_t budget_ns, uint64_t window_ns)
{
    ext_basic_t *b = self;
    b->hash_budget = budget_ns;
    b->hash_window = window_ns;
}

/* ------------------------------------------------------------------------------------------ */
/* Client side                                                                                */

/* Make the header value from b->user and b->pass. */
static int make_value(ext_basic_t *b)
{
    const char *u = b->user != NULL ? b->user : "";
    const char *p = b->pass != NULL ? b->pass : "";
    size_t ul = strlen(u), pl = strlen(p), cl = ul + 1 + pl;
    size_t vl = 6 + 4 * ((cl + 2) / 3);
    char *cred = om_malloc(cl + 1);
    char *v = om_malloc(vl + 1);
    if (cred == NULL || v == NULL) {
        om_free(cred);
        om_free(v);
        return OM_ENOMEM;
    }
    memcpy(cred, u, ul);
    cred[ul] = ':';
    memcpy(cred + ul + 1, p, pl);
    memcpy(v, "Basic ", 6);
    EVP_EncodeBlock((unsigned char *)v + 6, (const unsigned char *)cred, (int)cl);
    om_free_secret(cred, cl + 1);
    if (b->value != NULL) {
        om_free_secret(b->value, strlen(b->value) + 1);
    }
    b->value = v;
    return 0;
}

/* A credentials file's value: its content without surrounding blanks, as upstream's
 * credentialsfile (strings.TrimSpace). NULL with *why when it cannot be used. */
static char *file_value(const char *data, size_t len, bool user, const char **why)
{
    while (len > 0 && strchr(" \t\r\n\v\f", data[0]) != NULL) {
        data++;
        len--;
    }
    while (len > 0 && strchr(" \t\r\n\v\f", data[len - 1]) != NULL) {
        len--;
    }
    if (len == 0) {
        *why = "it is empty";
        return NULL;
    }
    if (memchr(data, '\0', len) != NULL) {
        *why = "it holds a NUL byte";
        return NULL;
    }
    if (user && memchr(data, ':', len) != NULL) {
        *why = "a username cannot hold a colon";
        return NULL;
    }
    char *v = om_strndup(data, len);
    if (v == NULL) {
        *why = "out of memory";
    }
    return v;
}

/* Set the username (user) or password from a file's content. */
static int set_from_file(ext_basic_t *b, bool user, const char *data, size_t len, const char **why)
{
    char *v = file_value(data, len, user, why);
    if (v == NULL) {
        return OM_EINVAL;
    }
    char **slot = user ? &b->user : &b->pass;
    if (*slot != NULL) {
        om_free_secret(*slot, strlen(*slot) + 1);
    }
    *slot = v;
    if (make_value(b) != 0) {
        *why = "out of memory";
        return OM_ENOMEM;
    }
    return 0;
}

static void on_cred_change(ext_basic_t *b, bool user, int rc, const char *data, size_t len,
                           const char *msg)
{
    const char *why = msg;
    if (rc == 0 && set_from_file(b, user, data, len, &why) == 0) {
        OM_CLOG(b->log_name, OM_LOG_INFO, "%s read again",
                user ? b->cfg->client_auth.username_file : b->cfg->client_auth.password_file);
        return;
    }
    OM_CLOG(b->log_name, OM_LOG_WARN, "%s changed but %s; keeping the last value",
            user ? b->cfg->client_auth.username_file : b->cfg->client_auth.password_file, why);
}

static void on_user_change(void *arg, int rc, const char *data, size_t len, const char *msg)
{
    on_cred_change(arg, true, rc, data, len, msg);
}

static void on_pass_change(void *arg, int rc, const char *data, size_t len, const char *msg)
{
    on_cred_change(arg, false, rc, data, len, msg);
}

/* Read path into the username (user) or password and watch it. */
static int start_cred_file(ext_basic_t *b, const char *path, bool user, om_err_t *err)
{
    char *data = NULL;
    size_t len = 0;
    int rc = om_file_read(path, FILE_MAX, &data, &len, err);
    if (rc != 0) {
        return rc;
    }
    const char *why = NULL;
    rc = set_from_file(b, user, data, len, &why);
    om_free_secret(data, FILE_MAX + 1);
    if (rc != 0) {
        om_err_set(err, rc, "failed to read credentials file \"%.200s\": %s", path, why);
        return rc;
    }
    rc = om_filewatch_start(b->host, path, FILE_MAX, user ? on_user_change : on_pass_change, b,
                            user ? &b->user_watch : &b->pass_watch, err);
    b->open_watches += rc == 0;
    return rc;
}

static int start_client(ext_basic_t *b, om_err_t *err)
{
    const ext_basic_client_cfg_t *c = &b->cfg->client_auth;
    if (c->username != NULL && (b->user = om_strdup(c->username)) == NULL) {
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    if (c->password != NULL && (b->pass = om_strdup(c->password)) == NULL) {
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    int rc = is_set(c->username_file) ? start_cred_file(b, c->username_file, true, err) : 0;
    if (rc == 0 && is_set(c->password_file)) {
        rc = start_cred_file(b, c->password_file, false, err);
    }
    if (rc == 0 && b->value == NULL && make_value(b) != 0) {
        om_err_set(err, OM_ENOMEM, "out of memory");
        rc = OM_ENOMEM;
    }
    return rc;
}

static size_t basic_headers(void *self, om_http_header_t *out, size_t cap)
{
    ext_basic_t *b = self;
    if (cap == 0 || b->value == NULL) {
        return 0;
    }
    out[0] = (om_http_header_t){.name = "Authorization", .value = b->value};
    return 1;
}

static const om_auth_ops_t basic_auth = {
    .sides = basic_sides,
    .authenticate = basic_authenticate,
    .headers = basic_headers,
};

/* ------------------------------------------------------------------------------------------ */
/* Lifecycle                                                                                  */

static int basic_create(const om_create_args_t *a, void **self, om_err_t *err)
{
    ext_basic_t *b = om_calloc(1, sizeof *b);
    if (b == NULL) {
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    b->cfg = a->cfg;
    b->log_name = a->log_name;
    b->host = a->host;
    b->hash_budget = HASH_BUDGET_NS;
    b->hash_window = HASH_WINDOW_NS;
    *self = b;
    return 0;
}

static int basic_start(void *self, om_err_t *err)
{
    ext_basic_t *b = self;
    return b->cfg->htpasswd_present ? start_server(b, err) : start_client(b, err);
}

static void watch_closed(void *arg)
{
    ext_basic_t *b = arg;
    if (--b->open_watches == 0) {
        b->table_watch = b->user_watch = b->pass_watch = NULL;
        b->done(b->done_arg);
    }
}

static void basic_shutdown(void *self, om_done_fn done, void *arg)
{
    ext_basic_t *b = self;
    if (b->shutdown_called) {
        return;
    }
    b->shutdown_called = true;
    if (b->open_watches == 0) {
        done(arg);
        return;
    }
    b->done = done;
    b->done_arg = arg;
    om_filewatch_t *w[] = {b->table_watch, b->user_watch, b->pass_watch};
    for (size_t i = 0; i < sizeof w / sizeof w[0]; i++) {
        if (w[i] != NULL) {
            om_filewatch_close(w[i], watch_closed, b);
        }
    }
}

static void free_str_secret(char *s)
{
    if (s != NULL) {
        om_free_secret(s, strlen(s) + 1);
    }
}

static void basic_destroy(void *self)
{
    ext_basic_t *b = self;
    if (b == NULL) {
        return;
    }
    ext_basic_htpasswd_free(b->table);
    free_str_secret(b->user);
    free_str_secret(b->pass);
    free_str_secret(b->value);
    om_free(b);
}

ext_basic_htpasswd_t *ext_basic_table(void *self)
{
    return ((ext_basic_t *)self)->table;
}

const om_factory_t ext_basicauth_factory = {
    .abi = OM_FACTORY_ABI,
    .kind = OM_EXTENSION,
    .type = "basicauth",
    .help = "Authenticator: HTTP Basic auth; servers check htpasswd (file watched, inline), "
            "clients send client_auth",
    .config_size = sizeof(ext_basic_cfg_t),
    .fields = basic_fields,
    .config_validate = basic_validate,
    .create = basic_create,
    .start = basic_start,
    .shutdown = basic_shutdown,
    .destroy = basic_destroy,
    .auth = &basic_auth,
};
