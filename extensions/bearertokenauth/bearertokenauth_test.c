/* bearertokenauth_test.c: the bearertokenauth extension: its config rules (otelcol-contrib's
 * words), the server side (right and wrong tokens, a missing header, another scheme, a custom
 * header, several tokens, the comparison through the core's constant-time compare), the client
 * side, a token file read again after it changes (and kept when it becomes empty), the
 * references a config makes to it (both sides), and the generic lifecycle. */
#include <stdlib.h>
#include <unistd.h>

#include "auth.h"
#include "bearertokenauth.h"
#include "config.h"
#include "om_test.h"
#include "pipeline.h"

#define F (&ext_bearertokenauth_factory)
#define WAIT_MS 10000

static void test_config(void)
{
    const char *why = NULL;
    ext_bearer_cfg_t *c = om_test_config_load(F, "{token: abc}", &why);
    ASSERT_TRUE(c != NULL);
    ASSERT_EQ_STR(c->scheme, "Bearer");
    ASSERT_EQ_STR(c->header, "Authorization");
    ASSERT_EQ_STR(c->token, "abc");
    om_test_config_free(F, c);
    static const struct {
        const char *yaml, *want;
    } bad[] = {
        {"{}", "no bearer token provided"},
        {"{scheme: Basic}", "no bearer token provided"},
        {"{token: a, tokens: [b]}", "either tokens or token should be provided, not both"},
        {"{token: a, header: 'X Token'}", "header: \"X Token\" is not a valid header name"},
        {"{token: \"a\\r\\nX-Injected: 1\"}", "token: must not contain control characters"},
        {"{tokens: [a, \"b\\n\"]}", "tokens: must not contain control characters"},
        {"{token: a, scheme: \"B\\n\"}", "scheme: must not contain control characters"},
        {"{token: a, tokenz: b}", "has invalid keys: tokenz"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        c = om_test_config_load(F, bad[i].yaml, &why);
        ASSERT_TRUE(c == NULL);
        ASSERT_CONTAINS(why, bad[i].want);
    }
}

/* An instance made and started from yaml, on its own loop and host. */
typedef struct fx {
    uv_loop_t loop;
    om_host_t host;
    ext_bearer_cfg_t *cfg;
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
    om_create_args_t a = {.cfg = fx->cfg,
                          .id = "bearertokenauth",
                          .log_name = "extension/bearertokenauth",
                          .host = &fx->host};
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

/* Request headers for the server side: name=value pairs, matched in any case. */
typedef struct hdrs {
    const char *names[3], *values[3];
} hdrs_t;

static const char *get_header(void *arg, const char *name)
{
    const hdrs_t *h = arg;
    for (int i = 0; i < 3 && h->names[i] != NULL; i++) {
        if (strcasecmp(h->names[i], name) == 0) {
            return h->values[i];
        }
    }
    return NULL;
}

static int check(fx_t *fx, const char *name, const char *value, const char **why)
{
    hdrs_t h = {{name}, {value}};
    *why = NULL;
    return F->auth->authenticate(fx->self, get_header, &h, why);
}

static void test_server(void)
{
    fx_t fx;
    ASSERT_EQ_INT(fx_open(&fx, "{token: s3cret}"), 0);
    const char *why;
    unsigned long before = om__auth_compares;
    ASSERT_EQ_INT(check(&fx, "authorization", "Bearer s3cret", &why), 0);
    ASSERT_TRUE(om__auth_compares > before); /* through the constant-time compare */
    ASSERT_EQ_INT(check(&fx, "Authorization", "Bearer wrong", &why), OM_EUNAUTH);
    ASSERT_EQ_STR(why, "scheme or token does not match");
    ASSERT_EQ_INT(check(&fx, "Authorization", "Basic s3cret", &why), OM_EUNAUTH);
    ASSERT_EQ_INT(check(&fx, "Authorization", "Bearer s3cret ", &why), OM_EUNAUTH);
    ASSERT_EQ_INT(check(&fx, "Authorization", "s3cret", &why), OM_EUNAUTH);
    ASSERT_EQ_INT(check(&fx, "X-Other", "Bearer s3cret", &why), OM_EUNAUTH);
    ASSERT_EQ_STR(why, "missing or empty authorization header");
    ASSERT_EQ_INT(check(&fx, "Authorization", "", &why), OM_EUNAUTH);
    ASSERT_EQ_STR(why, "missing or empty authorization header");
    ASSERT_EQ_INT(fx_close(&fx), 0);
    /* Another header and scheme; several tokens, any of which is good. */
    ASSERT_EQ_INT(fx_open(&fx, "{tokens: [t1, t2], scheme: Token, header: X-Api-Key}"), 0);
    ASSERT_EQ_INT(check(&fx, "x-api-key", "Token t1", &why), 0);
    ASSERT_EQ_INT(check(&fx, "x-api-key", "Token t2", &why), 0);
    ASSERT_EQ_INT(check(&fx, "x-api-key", "Token t3", &why), OM_EUNAUTH);
    ASSERT_EQ_INT(check(&fx, "Authorization", "Token t1", &why), OM_EUNAUTH);
    ASSERT_EQ_INT(fx_close(&fx), 0);
    /* scheme "": the token alone. */
    ASSERT_EQ_INT(fx_open(&fx, "{token: raw, scheme: ''}"), 0);
    ASSERT_EQ_INT(check(&fx, "authorization", "raw", &why), 0);
    ASSERT_EQ_INT(check(&fx, "authorization", " raw", &why), OM_EUNAUTH);
    ASSERT_EQ_INT(fx_close(&fx), 0);
}

static void test_client(void)
{
    fx_t fx;
    ASSERT_EQ_INT(fx_open(&fx, "{tokens: [first, second], header: X-Token}"), 0);
    om_http_header_t h[OM_AUTH_MAX_HEADERS];
    ASSERT_EQ_UINT(F->auth->headers(fx.self, h, OM_AUTH_MAX_HEADERS), 1);
    ASSERT_EQ_STR(h[0].name, "X-Token");
    ASSERT_EQ_STR(h[0].value, "Bearer first");
    ASSERT_EQ_UINT(F->auth->headers(fx.self, h, 0), 0);
    ASSERT_EQ_INT(fx_close(&fx), 0);
}

static char dir[64];

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f != NULL) {
        fputs(text, f);
        fclose(f);
    }
}

static void tick(uv_timer_t *t)
{
    (void)t;
}

/* Run the loop until the client side sends want (or WAIT_MS pass). */
static bool wait_value(fx_t *fx, const char *want)
{
    uv_timer_t t;
    uv_timer_init(&fx->loop, &t);
    uv_timer_start(&t, tick, 5, 5);
    uint64_t end = uv_now(&fx->loop) + WAIT_MS;
    om_http_header_t h[1] = {{0}};
    while (uv_now(&fx->loop) < end) {
        if (F->auth->headers(fx->self, h, 1) == 1 && strcmp(h[0].value, want) == 0) {
            break;
        }
        uv_run(&fx->loop, UV_RUN_ONCE);
    }
    /* Before the loop runs again: a change then would free the value h points at. */
    bool ok = h[0].value != NULL && strcmp(h[0].value, want) == 0;
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&fx->loop, UV_RUN_NOWAIT);
    return ok;
}

/* The token file: read at start, again after it changes (in place or replaced), several
 * tokens one a line; a change that leaves it empty or removes it keeps the last tokens. */
static void test_token_file_rotation(void)
{
    char path[128], yaml[256], tmp[160];
    snprintf(path, sizeof path, "%s/token", dir);
    snprintf(tmp, sizeof tmp, "%s/token.new", dir);
    write_file(path, "  one  \r\n\n");
    snprintf(yaml, sizeof yaml, "{filename: '%s', token: ignored}", path);
    fx_t fx;
    ASSERT_EQ_INT(fx_open(&fx, yaml), 0);
    const char *why;
    ASSERT_EQ_UINT(ext_bearer_token_count(fx.self), 1);
    ASSERT_EQ_INT(check(&fx, "authorization", "Bearer one", &why), 0);
    ASSERT_EQ_INT(check(&fx, "authorization", "Bearer ignored", &why), OM_EUNAUTH);
    write_file(path, "two\nthree\n");
    ASSERT_TRUE(wait_value(&fx, "Bearer two"));
    ASSERT_EQ_UINT(ext_bearer_token_count(fx.self), 2);
    ASSERT_EQ_INT(check(&fx, "authorization", "Bearer one", &why), OM_EUNAUTH);
    ASSERT_EQ_INT(check(&fx, "authorization", "Bearer three", &why), 0);
    write_file(tmp, "four\n");
    ASSERT_EQ_INT(rename(tmp, path), 0);
    ASSERT_TRUE(wait_value(&fx, "Bearer four"));
    om_log_set_level(OM_LOG_ERROR);
    write_file(path, "\n \n");
    ASSERT_EQ_INT(unlink(path), 0);
    write_file(path, "five\n");
    ASSERT_TRUE(wait_value(&fx, "Bearer five"));
    om_log_set_level(OM_LOG_WARN);
    ASSERT_EQ_INT(check(&fx, "authorization", "Bearer five", &why), 0);
    ASSERT_EQ_INT(fx_close(&fx), 0);
    /* A file that cannot be read, or holds no token, fails start. */
    snprintf(yaml, sizeof yaml, "{filename: '%s/missing'}", dir);
    ASSERT_EQ_INT(fx_open(&fx, yaml), OM_EIO);
    ASSERT_CONTAINS(fx.msg, "missing\": No such file or directory");
    ASSERT_EQ_INT(fx_close(&fx), 0);
    write_file(path, "\n\n");
    snprintf(yaml, sizeof yaml, "{filename: '%s'}", path);
    ASSERT_EQ_INT(fx_open(&fx, yaml), OM_EINVAL);
    ASSERT_CONTAINS(fx.msg, "holds no token");
    ASSERT_EQ_INT(fx_close(&fx), 0);
}

/* One bearertokenauth instance serves a receiver and an exporter: both sides are offered. */
static void test_references(void)
{
    const char *yaml = "extensions:\n"
                       "  bearertokenauth:\n"
                       "    token: abc\n"
                       "receivers:\n"
                       "  otlp:\n"
                       "    protocols:\n"
                       "      http:\n"
                       "        auth: {authenticator: bearertokenauth}\n"
                       "      grpc:\n"
                       "        auth: {authenticator: bearertokenauth}\n"
                       "exporters:\n"
                       "  otlphttp:\n"
                       "    endpoint: http://backend:4318\n"
                       "    auth: {authenticator: bearertokenauth}\n"
                       "  otlp:\n"
                       "    endpoint: backend:4317\n"
                       "    auth: {authenticator: bearertokenauth}\n"
                       "service:\n"
                       "  extensions: [bearertokenauth]\n"
                       "  pipelines:\n"
                       "    traces:\n"
                       "      receivers: [otlp]\n"
                       "      exporters: [otlphttp, otlp]\n";
    om_diags_t d = {0};
    om_config_t *cfg = NULL;
    ASSERT_EQ_INT(om_config_load_string("r.yaml", yaml, strlen(yaml), &cfg, &d), 0);
    om_graph_t *g = NULL;
    int rc = om_graph_build(cfg, NULL, true, &g, &d);
    for (size_t i = 0; i < d.n; i++) {
        fprintf(stderr, "  %s\n", d.msgs[i]);
    }
    ASSERT_EQ_INT(rc, 0);
    om_graph_free(g);
    om_config_free(cfg);
    om_diags_free(&d);
}

/* STYLE.md §10: the lifecycle every factory gets. */
static void test_generic_lifecycle(void)
{
    om_test_lifecycle(F, "{token: abc}");
    char yaml[128];
    snprintf(yaml, sizeof yaml, "{filename: '%s/lifecycle'}", dir);
    char path[128];
    snprintf(path, sizeof path, "%s/lifecycle", dir);
    write_file(path, "tok\n");
    om_test_lifecycle(F, yaml);
}

int main(void)
{
    om_log_set_level(OM_LOG_WARN);
    snprintf(dir, sizeof dir, "/tmp/om-bearer-XXXXXX");
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    OM_RUN(test_config);
    OM_RUN(test_server);
    OM_RUN(test_client);
    OM_RUN(test_token_file_rotation);
    OM_RUN(test_references);
    OM_RUN(test_generic_lifecycle);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "could not remove %s\n", dir);
    }
    return om_test_summary();
}
