/* basicauth_test.c: the basicauth extension: its config rules (otelcol-contrib's words); the
 * Authorization header read as Go's parseBasicAuth; every htpasswd form checked against hashes
 * made by the real tools (Apache's htpasswd for bcrypt, $apr1$, {SHA} and plain text; OpenSSL's
 * passwd for $1$, $5$, $6$) and fixed vectors; the server side through the factory (inline and
 * file, inline winning, the refusals' reasons, the constant-time compare); the client side's
 * header; the htpasswd file and password_file read again after they change; that no password
 * nor header value reaches the log; the references a config makes (each instance offers one
 * side); and the generic lifecycle. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "auth.h"
#include "basicauth.h"
#include "config.h"
#include "om_test.h"
#include "pipeline.h"

#define F (&ext_basicauth_factory)
#define WAIT_MS 10000

static char dir[64];

static void test_config(void)
{
    const char *why = NULL;
    ext_basic_cfg_t *c = om_test_config_load(F, "{htpasswd: {inline: 'u:p'}}", &why);
    ASSERT_TRUE(c != NULL);
    ASSERT_EQ_UINT(F->auth->sides(c), OM_AUTH_SERVER);
    om_test_config_free(F, c);
    c = om_test_config_load(F, "{client_auth: {username: u, password: p}}", &why);
    ASSERT_TRUE(c != NULL);
    ASSERT_EQ_UINT(F->auth->sides(c), OM_AUTH_CLIENT);
    om_test_config_free(F, c);
    static const struct {
        const char *yaml, *want;
    } bad[] = {
        {"{}", "no credential source provided"},
        {"{htpasswd: {file: f}, client_auth: {username: u}}",
         "only one of `htpasswd` or `client_auth` can be specified"},
        {"{htpasswd: {}}", "htpasswd: no credential source provided"},
        {"{htpasswd: }", "htpasswd: no credential source provided"},
        {"{client_auth: {username: 'a:b', password: p}}",
         "client_auth::username: invalid authorization format"},
        {"{client_auth: {username: u, aws_secrets_manager: {secret_arn: x}}}",
         "AWS Secrets Manager are not implemented"},
        {"{htpasswd: {file: f, files: g}}", "has invalid keys: files"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        c = om_test_config_load(F, bad[i].yaml, &why);
        ASSERT_TRUE(c == NULL);
        ASSERT_CONTAINS(why, bad[i].want);
    }
}

/* Go's parseBasicAuth: "Basic " in any case, then standard base64 with padding, then the
 * first colon. */
static void test_parse_authorization(void)
{
    static const struct {
        const char *value, *user, *pw, *why;
    } cases[] = {
        {"Basic dXNlcjpwYXNz", "user", "pass", NULL},
        {"bAsIc dXNlcjpwYXNz", "user", "pass", NULL},
        {"Basic Og==", "", "", NULL},
        {"Basic dTpwOnE=", "u", "p:q", NULL},             /* u:p:q */
        {"Basic dXNlcjpwYXNz\r\n", "user", "pass", NULL}, /* Go skips CR LF */
        {NULL, NULL, NULL, "no basic auth provided"},     /* missing */
        {"", NULL, NULL, "no basic auth provided"},       /* empty */
        {"Bearer dXNlcjpwYXNz", NULL, NULL, "invalid authorization scheme prefix"},
        {"Basic", NULL, NULL, "invalid authorization scheme prefix"},
        {"Basic  dXNlcjpwYXNz", NULL, NULL, "invalid authorization format"}, /* two spaces */
        {"Basic dXNlcjpwYXNz=", NULL, NULL, "invalid authorization format"},
        {"Basic dXNlcg==", NULL, NULL, "invalid authorization format"},   /* "user": no colon */
        {"Basic dXNlcjpwYX", NULL, NULL, "invalid authorization format"}, /* unpadded */
        {"Basic ", NULL, NULL, "invalid authorization format"},
        {"Basic dXNl*jpwYXNz", NULL, NULL, "invalid authorization format"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t buf[EXT_BASIC_CRED_MAX];
        const char *user = NULL, *pw = NULL, *why = NULL;
        size_t ulen = 0, plen = 0;
        int rc = ext_basic_parse_authorization(cases[i].value, buf, sizeof buf, &user, &ulen, &pw,
                                               &plen, &why);
        if (cases[i].why != NULL) {
            ASSERT_EQ_INT(rc, OM_EUNAUTH);
            ASSERT_EQ_STR(why, cases[i].why);
            continue;
        }
        ASSERT_EQ_INT(rc, 0);
        ASSERT_TRUE(ulen == strlen(cases[i].user) && memcmp(user, cases[i].user, ulen) == 0);
        ASSERT_TRUE(plen == strlen(cases[i].pw) && memcmp(pw, cases[i].pw, plen) == 0);
    }
    /* Credentials larger than the buffer are refused, not cut. */
    char big[8 * EXT_BASIC_CRED_MAX];
    memcpy(big, "Basic ", 6);
    memset(big + 6, 'A', sizeof big - 7);
    big[sizeof big - 1] = '\0';
    uint8_t buf[EXT_BASIC_CRED_MAX];
    const char *user, *pw, *why = NULL;
    size_t ulen, plen;
    ASSERT_EQ_INT(
        ext_basic_parse_authorization(big, buf, sizeof buf, &user, &ulen, &pw, &plen, &why),
        OM_EUNAUTH);
    ASSERT_EQ_STR(why, "invalid authorization format");
}

/* Apache's MD5 against OpenSSL's `passwd -apr1` (a separate implementation). */
static void test_apr1(void)
{
    char out[23];
    ext_basic_apr1("pw2", 3, "abcdefgh", 8, out);
    ASSERT_EQ_STR(out, "wjvwuPQAc6D8X.MnYH1bo0");
    ext_basic_apr1("", 0, "x", 1, out);
    FILE *p = popen("openssl passwd -apr1 -salt s4lt 'a much longer password, past 16 bytes'", "r");
    char line[128] = "";
    ASSERT_TRUE(p != NULL && fgets(line, sizeof line, p) != NULL);
    pclose(p);
    const char *pw = "a much longer password, past 16 bytes";
    ext_basic_apr1(pw, strlen(pw), "s4lt", 4, out);
    ASSERT_TRUE(strncmp(line, "$apr1$s4lt$", 11) == 0);
    ASSERT_TRUE(strncmp(line + 11, out, 22) == 0);
}

static void ignore_note(void *arg, size_t line, const char *user, const char *problem)
{
    (void)user;
    (void)problem;
    (*(size_t *)arg) += line > 0;
}

/* One line from a command (the hash a real tool made), without its newline. */
static void run_line(const char *cmd, char *out, size_t cap)
{
    out[0] = '\0';
    FILE *p = popen(cmd, "r");
    if (p != NULL) {
        if (fgets(out, (int)cap, p) == NULL) {
            out[0] = '\0';
        }
        pclose(p);
    }
    out[strcspn(out, "\r\n")] = '\0';
}

static bool matches(ext_basic_htpasswd_t *h, const char *user, const char *pw)
{
    return ext_basic_htpasswd_match(h, user, strlen(user), pw, strlen(pw));
}

/* Every form, from the tools that write them, right and wrong passwords, twice each (the
 * second through the per-user memory). */
static void test_forms(void)
{
    char text[4096], l[512];
    size_t n = 0;
    static const char *const cmds[] = {
        "htpasswd -nbB -C 5 bcrypt pw-bcrypt",
        "htpasswd -nbm apr1 pw-apr1",
        "htpasswd -nbs sha pw-sha",
        "htpasswd -nbp plain pw-plain 2>/dev/null",
        "printf 'md5:'; openssl passwd -1 pw-md5",
        "printf 'sha256:'; openssl passwd -5 pw-sha256",
        "printf 'sha512:'; openssl passwd -6 pw-sha512",
        /* Debian's default hash; Python's crypt module calls libcrypt (nothing else here
         * writes yescrypt), so this checks that the form is routed to it, not plain text. */
        ("printf 'yes:'; python3 -W ignore -c \"import crypt; print(crypt.crypt('pw-yes', "
         "'\\$y\\$j9T\\$abcdefghijklmnop'))\""),
    };
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        run_line(cmds[i], l, sizeof l);
        ASSERT_TRUE(strchr(l, ':') != NULL);
        n += (size_t)snprintf(text + n, sizeof text - n, "%s\n", l);
    }
    n += (size_t)snprintf(text + n, sizeof text - n,
                          "ssha:{SSHA}LiJMsuZoPg3GRYccAlkcr9e5HeRzYWx0eQ==\n"
                          "bcryptx:$2x$05$abcdefghijklmnopqrstuuHIrMEWpUCQe2YqFR3sXwQ75u4od..9q\n"
                          "tagged:{PLAIN}pw-tagged\n"
                          "  spaced:pw-spaced  \r\n"
                          "\n"
                          "nocolon\n"
                          "badsha:{SHA}notbase64!\n"
                          "badcrypt:$2y$\n"
                          "later:first\n"
                          "later:second\n");
    ext_basic_htpasswd_t *h = NULL;
    om_err_t err = {0};
    size_t notes = 0;
    ASSERT_EQ_INT(ext_basic_htpasswd_parse(text, n, ignore_note, &notes, &h, &err), 0);
    static const struct {
        const char *user, *pw;
        int form;
    } ok[] = {
        {"bcrypt", "pw-bcrypt", EXT_BASIC_BCRYPT}, {"apr1", "pw-apr1", EXT_BASIC_APR1},
        {"sha", "pw-sha", EXT_BASIC_SHA},          {"plain", "pw-plain", EXT_BASIC_PLAIN},
        {"md5", "pw-md5", EXT_BASIC_MD5},          {"sha256", "pw-sha256", EXT_BASIC_CRYPT},
        {"sha512", "pw-sha512", EXT_BASIC_CRYPT},  {"yes", "pw-yes", EXT_BASIC_CRYPT},
        {"ssha", "pw5", EXT_BASIC_SSHA},           {"bcryptx", "pw", EXT_BASIC_BCRYPT},
        {"tagged", "pw-tagged", EXT_BASIC_PLAIN},  {"spaced", "pw-spaced", EXT_BASIC_PLAIN},
        {"later", "second", EXT_BASIC_PLAIN},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        ASSERT_EQ_INT(ext_basic_htpasswd_form(h, ok[i].user), ok[i].form);
        for (int twice = 0; twice < 2; twice++) {
            ASSERT_TRUE(matches(h, ok[i].user, ok[i].pw));
            ASSERT_TRUE(!matches(h, ok[i].user, "wrong"));
            ASSERT_TRUE(!matches(h, ok[i].user, ""));
        }
    }
    ASSERT_EQ_UINT(ext_basic_htpasswd_users(h), sizeof ok / sizeof ok[0]);
    ASSERT_TRUE(!matches(h, "later", "first"));            /* the later line won */
    ASSERT_TRUE(matches(h, "tagged", "{PLAIN}pw-tagged")); /* the text as is too, as Go */
    ASSERT_TRUE(!matches(h, "nobody", "pw-plain"));        /* unknown user */
    ASSERT_TRUE(!matches(h, "plai", "pw-plain"));          /* a prefix of a user */
    ASSERT_TRUE(!matches(h, "badsha", "x"));               /* skipped lines */
    ASSERT_EQ_INT(ext_basic_htpasswd_form(h, "badcrypt"), -1);
    ASSERT_TRUE(ext_basic_htpasswd_match(h, "plain\0x", 7, "pw-plain", 8) == false);
    ASSERT_TRUE(ext_basic_htpasswd_match(h, "bcrypt", 6, "pw-bcrypt\0", 10) == false);
    ASSERT_TRUE(notes >= 8); /* the plain-text lines, nocolon, badsha, badcrypt */
    /* A password for the hash of a user that differs only after bcrypt's 72 bytes: refused,
     * as Go's bcrypt refuses passwords longer than 72. */
    char long_pw[80];
    memset(long_pw, 'a', sizeof long_pw - 1);
    long_pw[sizeof long_pw - 1] = '\0';
    ASSERT_TRUE(!matches(h, "bcrypt", long_pw));
    ext_basic_htpasswd_free(h);
    /* A line longer than Go's scanner reads fails the whole text. */
    size_t big = EXT_BASIC_LINE_MAX + 10;
    char *t = malloc(big);
    memset(t, 'x', big);
    t[0] = 'u';
    t[1] = ':';
    ASSERT_EQ_INT(ext_basic_htpasswd_parse(t, big, ignore_note, &notes, &h, &err), OM_EINVAL);
    ASSERT_CONTAINS(err.msg, "line 1 is longer than");
    free(t);
}

static void test_b64(void)
{
    uint8_t out[16];
    ASSERT_EQ_INT((int)ext_basic_b64_decode("", 0, out, sizeof out), 0);
    ASSERT_EQ_INT((int)ext_basic_b64_decode("YQ==", 4, out, sizeof out), 1);
    ASSERT_EQ_INT((int)ext_basic_b64_decode("YWI=", 4, out, sizeof out), 2);
    ASSERT_EQ_INT((int)ext_basic_b64_decode("YWJj", 4, out, sizeof out), 3);
    ASSERT_EQ_INT((int)ext_basic_b64_decode("YQ", 2, out, sizeof out), -1);
    ASSERT_EQ_INT((int)ext_basic_b64_decode("YQ==YQ==", 8, out, sizeof out), -1);
    ASSERT_EQ_INT((int)ext_basic_b64_decode("Y===", 4, out, sizeof out), -1);
    ASSERT_EQ_INT((int)ext_basic_b64_decode("YWJj", 4, out, 2), -1);
}

/* ------------------------------------------------------------------------------------------ */
/* Through the factory                                                                        */

typedef struct fx {
    uv_loop_t loop;
    om_host_t host;
    ext_basic_cfg_t *cfg;
    void *self;
    char msg[512];
} fx_t;

static int fx_open(fx_t *fx, const char *yaml)
{
    memset(fx, 0, sizeof *fx);
    uv_loop_init(&fx->loop);
    om_test_host_init(&fx->host, &fx->loop);
    const char *why = NULL;
    fx->cfg = om_test_config_load(F, yaml, &why);
    if (fx->cfg == NULL) {
        snprintf(fx->msg, sizeof fx->msg, "%s", why);
        return OM_ECONFIG;
    }
    om_create_args_t a = {
        .cfg = fx->cfg, .id = "basicauth", .log_name = "extension/basicauth", .host = &fx->host};
    om_err_t err = {0};
    int rc = F->create(&a, &fx->self, &err);
    rc = rc ? rc : F->start(fx->self, &err);
    snprintf(fx->msg, sizeof fx->msg, "%s", err.msg);
    return rc;
}

static void done_cb(void *arg)
{
    (*(int *)arg)++;
}

static int fx_close(fx_t *fx)
{
    if (fx->self != NULL) {
        int done = 0;
        F->shutdown(fx->self, done_cb, &done);
        while (done == 0) {
            uv_run(&fx->loop, UV_RUN_ONCE);
        }
        F->destroy(fx->self);
    }
    if (fx->cfg != NULL) {
        om_test_config_free(F, fx->cfg);
    }
    om_test_host_close(&fx->host);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    return uv_loop_close(&fx->loop);
}

typedef struct hdrs {
    const char *name, *value;
} hdrs_t;

static const char *get_header(void *arg, const char *name)
{
    const hdrs_t *h = arg;
    return h->name != NULL && strcasecmp(h->name, name) == 0 ? h->value : NULL;
}

static int check(fx_t *fx, const char *name, const char *value, const char **why)
{
    hdrs_t h = {name, value};
    *why = NULL;
    return F->auth->authenticate(fx->self, get_header, &h, why);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f != NULL) {
        fputs(text, f);
        fclose(f);
    }
}

/* user:pw in an Authorization header. */
static const char *basic(const char *user, const char *pw)
{
    static char v[256];
    char cred[128];
    int n = snprintf(cred, sizeof cred, "%s:%s", user, pw);
    memcpy(v, "Basic ", 6);
    EVP_EncodeBlock((unsigned char *)v + 6, (const unsigned char *)cred, n);
    return v;
}

static void test_server(void)
{
    char path[128], yaml[512], hash[256];
    snprintf(path, sizeof path, "%s/htpasswd", dir);
    run_line("htpasswd -nbB -C 5 alice 'al1ce pw'", hash, sizeof hash);
    char content[512];
    snprintf(content, sizeof content, "%s\nbob:{SHA}%s\n", hash, "WFvuHPDqgMCKXQWtmYQEdzbdt5o=");
    write_file(path, content);
    snprintf(yaml, sizeof yaml, "{htpasswd: {file: '%s', inline: \"bob:b0b\\ncarol:c\"}}", path);
    fx_t fx;
    ASSERT_EQ_INT(fx_open(&fx, yaml), 0);
    ASSERT_EQ_UINT(ext_basic_htpasswd_users(ext_basic_table(fx.self)), 3);
    const char *why;
    unsigned long before = om__auth_compares;
    ASSERT_EQ_INT(check(&fx, "authorization", basic("alice", "al1ce pw"), &why), 0);
    ASSERT_TRUE(om__auth_compares > before); /* through the constant-time compare */
    ASSERT_EQ_INT(check(&fx, "Authorization", basic("bob", "b0b"), &why), 0); /* inline wins */
    ASSERT_EQ_INT(check(&fx, "Authorization", basic("carol", "c"), &why), 0);
    ASSERT_EQ_INT(check(&fx, "Authorization", basic("alice", "wrong"), &why), OM_EUNAUTH);
    ASSERT_EQ_STR(why, "invalid credentials");
    ASSERT_EQ_INT(check(&fx, "Authorization", basic("mallory", "al1ce pw"), &why), OM_EUNAUTH);
    ASSERT_EQ_STR(why, "invalid credentials");
    ASSERT_EQ_INT(check(&fx, "X-Other", basic("alice", "al1ce pw"), &why), OM_EUNAUTH);
    ASSERT_EQ_STR(why, "no basic auth provided");
    ASSERT_EQ_INT(check(&fx, "Authorization", "Bearer x", &why), OM_EUNAUTH);
    ASSERT_EQ_STR(why, "invalid authorization scheme prefix");
    ASSERT_EQ_INT(check(&fx, "Authorization", "Basic !!", &why), OM_EUNAUTH);
    ASSERT_EQ_STR(why, "invalid authorization format");
    ASSERT_EQ_INT(fx_close(&fx), 0);
    /* A file that cannot be read fails start, as upstream. */
    snprintf(yaml, sizeof yaml, "{htpasswd: {file: '%s/missing'}}", dir);
    ASSERT_EQ_INT(fx_open(&fx, yaml), OM_EIO);
    ASSERT_CONTAINS(fx.msg, "No such file or directory");
    ASSERT_EQ_INT(fx_close(&fx), 0);
}

/* Slow hashes have a budget: past it, credentials that would need one are answered "try
 * again" without hashing, while remembered ones keep working (good and bad alike). */
static void test_hash_budget(void)
{
    char path[128], yaml[256], hash[256];
    snprintf(path, sizeof path, "%s/htpasswd-budget", dir);
    run_line("htpasswd -nbB -C 5 alice 'al1ce pw'", hash, sizeof hash);
    write_file(path, hash);
    snprintf(yaml, sizeof yaml, "{htpasswd: {file: '%s', inline: \"bob:b0b\"}}", path);
    fx_t fx;
    ASSERT_EQ_INT(fx_open(&fx, yaml), 0);
    /* One slow hash spends a budget of 1 ns for the hour. */
    ext_basic_set_hash_budget(fx.self, 1, 3600 * (uint64_t)OM_NS_PER_S);
    const char *why;
    ASSERT_EQ_INT(check(&fx, "Authorization", basic("alice", "guess 1"), &why), OM_EUNAUTH);
    ASSERT_EQ_INT(check(&fx, "Authorization", basic("alice", "guess 2"), &why), OM_EAGAIN);
    ASSERT_EQ_STR(why, "too many new credentials to check: try again");
    ASSERT_EQ_INT(check(&fx, "Authorization", basic("alice", "al1ce pw"), &why), OM_EAGAIN);
    /* Remembered (no hash), or a cheap form, or no such user: answered as usual. */
    ASSERT_EQ_INT(check(&fx, "Authorization", basic("alice", "guess 1"), &why), OM_EUNAUTH);
    ASSERT_EQ_INT(check(&fx, "Authorization", basic("bob", "b0b"), &why), 0);
    ASSERT_EQ_INT(check(&fx, "Authorization", basic("bob", "nope"), &why), OM_EUNAUTH);
    ASSERT_EQ_INT(check(&fx, "Authorization", basic("mallory", "x"), &why), OM_EUNAUTH);
    /* A new window: the good password is hashed and remembered, then works past the budget. */
    ext_basic_set_hash_budget(fx.self, 1, 0);
    ASSERT_EQ_INT(check(&fx, "Authorization", basic("alice", "al1ce pw"), &why), 0);
    ext_basic_set_hash_budget(fx.self, 1, 3600 * (uint64_t)OM_NS_PER_S);
    ASSERT_EQ_INT(check(&fx, "Authorization", basic("alice", "al1ce pw"), &why), 0);
    ASSERT_EQ_INT(check(&fx, "Authorization", basic("alice", "guess 3"), &why), OM_EAGAIN);
    ASSERT_EQ_INT(fx_close(&fx), 0);
}

static void test_client(void)
{
    fx_t fx;
    ASSERT_EQ_INT(fx_open(&fx, "{client_auth: {username: user, password: pass}}"), 0);
    om_http_header_t h[OM_AUTH_MAX_HEADERS];
    ASSERT_EQ_UINT(F->auth->headers(fx.self, h, OM_AUTH_MAX_HEADERS), 1);
    ASSERT_EQ_STR(h[0].name, "Authorization");
    ASSERT_EQ_STR(h[0].value, "Basic dXNlcjpwYXNz");
    ASSERT_EQ_UINT(F->auth->headers(fx.self, h, 0), 0);
    ASSERT_TRUE(ext_basic_table(fx.self) == NULL);
    ASSERT_EQ_INT(fx_close(&fx), 0);
    /* Nothing set sends ":" (as upstream's empty username and password). */
    ASSERT_EQ_INT(fx_open(&fx, "{client_auth: {}}"), 0);
    ASSERT_EQ_UINT(F->auth->headers(fx.self, h, 1), 1);
    ASSERT_EQ_STR(h[0].value, "Basic Og==");
    ASSERT_EQ_INT(fx_close(&fx), 0);
}

static void tick(uv_timer_t *t)
{
    (void)t;
}

/* Run the loop until pred(fx) holds (or WAIT_MS pass). */
static bool wait_for(fx_t *fx, bool (*pred)(fx_t *))
{
    uv_timer_t t;
    uv_timer_init(&fx->loop, &t);
    uv_timer_start(&t, tick, 5, 5);
    uint64_t end = uv_now(&fx->loop) + WAIT_MS;
    bool ok = false;
    while (!(ok = pred(fx)) && uv_now(&fx->loop) < end) {
        uv_run(&fx->loop, UV_RUN_ONCE);
    }
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&fx->loop, UV_RUN_NOWAIT);
    return ok;
}

static bool dave_ok(fx_t *fx)
{
    const char *why;
    return check(fx, "Authorization", basic("dave", "new"), &why) == 0;
}

static bool header_is_u_p2(fx_t *fx)
{
    om_http_header_t h[1];
    return F->auth->headers(fx->self, h, 1) == 1 && strcmp(h[0].value, basic("u2", "p2")) == 0;
}

/* The htpasswd file and the client's credentials files are read again after they change; a
 * change that leaves them unusable keeps the last. */
static void test_rotation(void)
{
    char path[128], yaml[512], tmp[160];
    snprintf(path, sizeof path, "%s/rot.htpasswd", dir);
    snprintf(tmp, sizeof tmp, "%s/rot.new", dir);
    write_file(path, "dave:{SHA}wA27ydrfvh4jLpOnKd1HUvreCr8=\n"); /* sha1("old") */
    snprintf(yaml, sizeof yaml, "{htpasswd: {file: '%s'}}", path);
    fx_t fx;
    ASSERT_EQ_INT(fx_open(&fx, yaml), 0);
    const char *why;
    ASSERT_EQ_INT(check(&fx, "Authorization", basic("dave", "old"), &why), 0);
    write_file(tmp, "dave:new\n");
    ASSERT_EQ_INT(rename(tmp, path), 0);
    ASSERT_TRUE(wait_for(&fx, dave_ok));
    ASSERT_EQ_INT(check(&fx, "Authorization", basic("dave", "old"), &why), OM_EUNAUTH);
    ASSERT_EQ_INT(fx_close(&fx), 0);

    char upath[128], ppath[128];
    snprintf(upath, sizeof upath, "%s/user", dir);
    snprintf(ppath, sizeof ppath, "%s/pass", dir);
    write_file(upath, "u1\n");
    write_file(ppath, "  p1\n");
    snprintf(yaml, sizeof yaml,
             "{client_auth: {username: x, password: y, username_file: '%s', password_file: "
             "'%s'}}",
             upath, ppath);
    ASSERT_EQ_INT(fx_open(&fx, yaml), 0);
    om_http_header_t h[1];
    ASSERT_EQ_UINT(F->auth->headers(fx.self, h, 1), 1);
    ASSERT_EQ_STR(h[0].value, basic("u1", "p1"));
    om_log_set_level(OM_LOG_ERROR);
    write_file(upath, "bad:user\n"); /* refused: kept u1 */
    write_file(upath, "u2\n");
    write_file(ppath, "p2\n");
    ASSERT_TRUE(wait_for(&fx, header_is_u_p2));
    om_log_set_level(OM_LOG_WARN);
    ASSERT_EQ_INT(fx_close(&fx), 0);
    /* An empty credentials file fails start, as upstream. */
    write_file(ppath, "\n");
    snprintf(yaml, sizeof yaml, "{client_auth: {username: x, password_file: '%s'}}", ppath);
    ASSERT_EQ_INT(fx_open(&fx, yaml), OM_EINVAL);
    ASSERT_CONTAINS(fx.msg, "it is empty");
    ASSERT_EQ_INT(fx_close(&fx), 0);
}

/* At DEBUG, through every path that logs (notes, refusals, changes, errors): no password,
 * hash, nor header value reaches stderr. */
static void test_no_secret_logged(void)
{
    char logpath[128], path[128], yaml[512];
    snprintf(logpath, sizeof logpath, "%s/log", dir);
    snprintf(path, sizeof path, "%s/secret.htpasswd", dir);
    fflush(stderr);
    int saved = dup(2);
    int fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ASSERT_TRUE(saved >= 0 && fd >= 0);
    dup2(fd, 2);
    close(fd);
    om_log_set_level(OM_LOG_DEBUG);
    write_file(path, "zed:S3cretPlain\nbroken:{SHA}S3cretBroken\nnocolonS3cret\n");
    snprintf(yaml, sizeof yaml, "{htpasswd: {file: '%s', inline: 'yan:S3cretInline'}}", path);
    fx_t fx;
    ASSERT_EQ_INT(fx_open(&fx, yaml), 0);
    const char *why;
    ASSERT_EQ_INT(check(&fx, "Authorization", basic("zed", "S3cretWrong"), &why), OM_EUNAUTH);
    write_file(path, "zed:S3cretNew\n");
    ASSERT_EQ_INT(fx_close(&fx), 0);
    ASSERT_EQ_INT(fx_open(&fx, "{client_auth: {username: u, password: S3cretClient}}"), 0);
    ASSERT_EQ_INT(fx_close(&fx), 0);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    om_log_set_level(OM_LOG_WARN);
    char log[8192] = "";
    FILE *f = fopen(logpath, "r");
    ASSERT_TRUE(f != NULL);
    size_t n = fread(log, 1, sizeof log - 1, f);
    fclose(f);
    log[n] = '\0';
    ASSERT_CONTAINS(log, "plain-text password"); /* it did log */
    ASSERT_TRUE(strstr(log, "S3cret") == NULL);
    ASSERT_TRUE(strstr(log, "Basic ") == NULL);
}

#define REFS_YAML(exporter_auth)                                                                   \
    "extensions:\n"                                                                                \
    "  basicauth/server:\n"                                                                        \
    "    htpasswd: {inline: 'u:p'}\n"                                                              \
    "  basicauth/client:\n"                                                                        \
    "    client_auth: {username: u, password: p}\n"                                                \
    "receivers:\n"                                                                                 \
    "  otlp:\n"                                                                                    \
    "    protocols:\n"                                                                             \
    "      http:\n"                                                                                \
    "        auth: {authenticator: basicauth/server}\n"                                            \
    "      grpc:\n"                                                                                \
    "        auth: {authenticator: basicauth/server}\n"                                            \
    "exporters:\n"                                                                                 \
    "  otlphttp:\n"                                                                                \
    "    endpoint: http://backend:4318\n"                                                          \
    "    auth: {authenticator: basicauth/client}\n"                                                \
    "  otlp:\n"                                                                                    \
    "    endpoint: backend:4317\n"                                                                 \
    "    auth: {authenticator: " exporter_auth "}\n"                                               \
    "service:\n"                                                                                   \
    "  extensions: [basicauth/server, basicauth/client]\n"                                         \
    "  pipelines:\n"                                                                               \
    "    traces:\n"                                                                                \
    "      receivers: [otlp]\n"                                                                    \
    "      exporters: [otlphttp, otlp]\n"

/* Each instance offers the side its config chose; a reference to the other side is an error
 * at the authenticator's value. */
static void test_references(void)
{

    for (int wrong = 0; wrong < 2; wrong++) {
        const char *text = wrong ? REFS_YAML("basicauth/server") : REFS_YAML("basicauth/client");
        om_diags_t d = {0};
        om_config_t *cfg = NULL;
        ASSERT_EQ_INT(om_config_load_string("r.yaml", text, strlen(text), &cfg, &d), 0);
        om_graph_t *g = NULL;
        int rc = om_graph_build(cfg, NULL, true, &g, &d);
        if (!wrong) {
            for (size_t i = 0; i < d.n; i++) {
                fprintf(stderr, "  %s\n", d.msgs[i]);
            }
            ASSERT_EQ_INT(rc, 0);
        } else {
            ASSERT_TRUE(rc != 0 && d.n > 0);
            ASSERT_CONTAINS(d.msgs[0], "r.yaml:19:");
            ASSERT_CONTAINS(d.msgs[0], "basicauth/server");
        }
        om_graph_free(g);
        om_config_free(cfg);
        om_diags_free(&d);
    }
}

/* STYLE.md §10: the lifecycle every factory gets. */
static void test_generic_lifecycle(void)
{
    om_test_lifecycle(F, "{htpasswd: {inline: 'u:p'}}");
    om_test_lifecycle(F, "{client_auth: {username: u, password: p}}");
    char path[128], yaml[512];
    snprintf(path, sizeof path, "%s/lifecycle", dir);
    write_file(path, "u:{SHA}WFvuHPDqgMCKXQWtmYQEdzbdt5o=\n");
    snprintf(yaml, sizeof yaml, "{htpasswd: {file: '%s'}}", path);
    om_test_lifecycle(F, yaml);
    char upath[128];
    snprintf(upath, sizeof upath, "%s/lifecycle.user", dir);
    write_file(upath, "u\n");
    snprintf(yaml, sizeof yaml, "{client_auth: {username_file: '%s', password_file: '%s'}}", upath,
             path);
    om_test_lifecycle(F, yaml);
}

int main(void)
{
    om_log_set_level(OM_LOG_WARN);
    snprintf(dir, sizeof dir, "/tmp/om-basic-XXXXXX");
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    OM_RUN(test_config);
    OM_RUN(test_parse_authorization);
    OM_RUN(test_b64);
    OM_RUN(test_apr1);
    OM_RUN(test_forms);
    OM_RUN(test_server);
    OM_RUN(test_hash_budget);
    OM_RUN(test_client);
    OM_RUN(test_rotation);
    OM_RUN(test_no_secret_logged);
    OM_RUN(test_references);
    OM_RUN(test_generic_lifecycle);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "could not remove %s\n", dir);
    }
    return om_test_summary();
}
