/* auth_test.c: the authenticators' core (src/auth.c): the `auth` field type, the graph's check
 * of every reference (otelmon validate) with file:line:column, the host's registry of enabled
 * extensions, and the handles servers and clients take on an authenticator. The hooks in the
 * HTTP server and client, the gRPC receiver and exporter have their tests beside theirs (with
 * the test-only authenticator of test/lib/om_testauth.h); the extensions in their folders. */
#include <stdlib.h>

#include "auth.h"
#include "config.h"
#include "om_test.h"
#include "om_testauth.h"
#include "pipeline.h"

/* Builds the graph for yaml (validate only unless h); returns the messages joined by '\n'. */
static char *problems_of(const char *yaml, om_host_t *h)
{
    om_diags_t d = {0};
    om_config_t *cfg = NULL;
    om_strbuf_t all;
    om_strbuf_init(&all, 0);
    om_strbuf_puts(&all, "");
    if (om_config_load_string("a.yaml", yaml, strlen(yaml), &cfg, &d) == 0) {
        om_graph_t *g = NULL;
        om_graph_build(cfg, h, h == NULL, &g, &d);
        if (g != NULL && h != NULL && om_host_extension(h, "health_check") != NULL) {
            om_strbuf_puts(&all, "(health_check registered)\n");
        }
        om_graph_free(g);
    }
    for (size_t i = 0; i < d.n; i++) {
        om_strbuf_printf(&all, "%s\n", d.msgs[i]);
    }
    om_diags_free(&d);
    om_config_free(cfg);
    return om_strbuf_steal(&all, NULL);
}

#define PIPE                                                                                       \
    "exporters:\n"                                                                                 \
    "  debug:\n"                                                                                   \
    "service:\n"                                                                                   \
    "  pipelines:\n"                                                                               \
    "    traces:\n"                                                                                \
    "      receivers: [otlp]\n"                                                                    \
    "      exporters: [debug]\n"

/* A receiver whose HTTP settings name an authenticator; ext is the extensions section. */
#define RECEIVER_AUTH(id)                                                                          \
    "receivers:\n"                                                                                 \
    "  otlp:\n"                                                                                    \
    "    protocols:\n"                                                                             \
    "      http:\n"                                                                                \
    "        auth:\n"                                                                              \
    "          authenticator: " id "\n"

static void test_unknown_extension(void)
{
    char *p = problems_of(RECEIVER_AUTH("basicauth/server") PIPE, NULL);
    ASSERT_EQ_STR(p, "a.yaml:6:26: receivers::otlp::protocols::http::auth::authenticator: failed "
                     "to resolve authenticator \"basicauth/server\": authenticator not found (no "
                     "extension \"basicauth/server\" is configured)\n");
    free(p);
}

static void test_extension_not_enabled(void)
{
    char *p = problems_of(RECEIVER_AUTH("health_check") "extensions:\n"
                                                        "  health_check:\n" PIPE,
                          NULL);
    ASSERT_EQ_STR(p, "a.yaml:6:26: receivers::otlp::protocols::http::auth::authenticator: failed "
                     "to resolve authenticator \"health_check\": authenticator not found "
                     "(extension \"health_check\" is not enabled in service::extensions)\n");
    free(p);
}

static void test_not_an_authenticator(void)
{
    char *p = problems_of(RECEIVER_AUTH("health_check") "extensions:\n"
                                                        "  health_check:\n" PIPE
                                                        "  extensions: [health_check]\n",
                          NULL);
    ASSERT_EQ_STR(p, "a.yaml:6:26: receivers::otlp::protocols::http::auth::authenticator: "
                     "requested authenticator is not a server authenticator (extension "
                     "\"health_check\" is not an authenticator)\n");
    free(p);
    /* The gRPC side of the receiver, a client (the otlp exporter, TLS on), and an extension's
     * own server settings are checked the same way. */
    p = problems_of("receivers:\n"
                    "  otlp:\n"
                    "    protocols:\n"
                    "      grpc:\n"
                    "        auth: {authenticator: health_check}\n"
                    "extensions:\n"
                    "  health_check:\n"
                    "    auth: {authenticator: health_check}\n"
                    "exporters:\n"
                    "  otlp:\n"
                    "    endpoint: backend:4317\n"
                    "    auth:\n"
                    "      authenticator: nothing\n"
                    "service:\n"
                    "  extensions: [health_check]\n"
                    "  pipelines:\n"
                    "    traces:\n"
                    "      receivers: [otlp]\n"
                    "      exporters: [otlp]\n",
                    NULL);
    ASSERT_EQ_STR(p, "a.yaml:5:31: receivers::otlp::protocols::grpc::auth::authenticator: "
                     "requested authenticator is not a server authenticator (extension "
                     "\"health_check\" is not an authenticator)\n"
                     "a.yaml:13:22: exporters::otlp::auth::authenticator: failed to resolve "
                     "authenticator \"nothing\": authenticator not found (no extension "
                     "\"nothing\" is configured)\n"
                     "a.yaml:8:27: extensions::health_check::auth::authenticator: requested "
                     "authenticator is not a server authenticator (extension \"health_check\" is "
                     "not an authenticator)\n");
    free(p);
}

/* What otelcol does not start is not checked: a receiver in no pipeline, a disabled
 * extension. A null `auth:` asks for nothing; `auth: {}` lacks its authenticator. */
static void test_unused_and_empty(void)
{
    char *p = problems_of("receivers:\n"
                          "  otlp:\n"
                          "    protocols:\n"
                          "      grpc:\n"
                          "        auth:\n"
                          "  otlp/unused:\n"
                          "    protocols:\n"
                          "      grpc:\n"
                          "        auth: {authenticator: nobody}\n"
                          "extensions:\n"
                          "  health_check:\n"
                          "    auth: {authenticator: nobody}\n" PIPE,
                          NULL);
    ASSERT_EQ_STR(p, "");
    free(p);
    p = problems_of(RECEIVER_AUTH("x") "        request_params: [token]\n"
                                       "      grpc:\n"
                                       "        auth: {}\n" PIPE,
                    NULL);
    ASSERT_CONTAINS(p, "a.yaml:9:15: receivers::otlp::protocols::grpc::auth: missing required key "
                       "\"authenticator\"");
    free(p);
    /* request_params is for HTTP servers only, as in otelcol. */
    p = problems_of("receivers:\n"
                    "  otlp:\n"
                    "    protocols:\n"
                    "      grpc:\n"
                    "        auth: {authenticator: x, request_params: [a]}\n" PIPE,
                    NULL);
    ASSERT_CONTAINS(p, "'receivers::otlp::protocols::grpc::auth' has invalid keys: request_params");
    free(p);
}

/* A graph registers its enabled extensions with the host for as long as it lives. */
static void test_graph_registers_extensions(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    om_host_t host;
    om_test_host_init(&host, &loop);
    char *p = problems_of("receivers:\n"
                          "  otlp:\n"
                          "    protocols:\n"
                          "      grpc:\n"
                          "extensions:\n"
                          "  health_check:\n" PIPE "  extensions: [health_check]\n",
                          &host);
    ASSERT_EQ_STR(p, "(health_check registered)\n");
    free(p);
    ASSERT_TRUE(om_host_extension(&host, "health_check") == NULL);
    ASSERT_EQ_UINT(host.n_extensions, 0);
    om_test_host_close(&host);
    ASSERT_EQ_INT(uv_loop_close(&loop), 0);
}

static const char *no_header(void *arg, const char *name)
{
    (void)arg;
    (void)name;
    return NULL;
}

/* The handles: a NULL authenticator means no auth; a server check counts refusals. */
static void test_handles(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    om_host_t host;
    om_test_host_init(&host, &loop);
    om_testauth_t ta = {.secret = "k", .extra_name = "X-A", .extra_value = "b"};
    om_testauth_register(&host, "t", &ta);
    om_err_t err = {0};
    om_auth_server_t *s = (om_auth_server_t *)&err; /* overwritten */
    om_auth_cfg_t none = {0};
    ASSERT_EQ_INT(om_auth_server_new(&host, &none, "c", "http", &s, &err), 0);
    ASSERT_TRUE(s == NULL);
    ASSERT_EQ_INT(om_auth_server_check(NULL, NULL, NULL, NULL), 0);
    om_auth_cfg_t cfg = {.authenticator = "t"};
    ASSERT_EQ_INT(om_auth_server_new(&host, &cfg, "receiver/x", "grpc", &s, &err), 0);
    om_log_set_level(OM_LOG_NONE);
    for (int i = 0; i < 3; i++) {
        ASSERT_EQ_INT(om_auth_server_check(s, no_header, NULL, NULL), OM_EUNAUTH);
    }
    om_log_set_level(OM_LOG_WARN);
    ASSERT_EQ_INT(om_test_metric(&host, OM_AUTH_FAILURES_METRIC, "authenticator", "t", "component",
                                 "receiver/x", "transport", "grpc", NULL),
                  3);
    om_auth_server_free(s);
    om_auth_client_t *c = NULL;
    ASSERT_EQ_INT(om_auth_client_new(&host, &cfg, &c, &err), 0);
    om_http_header_t h[OM_AUTH_MAX_HEADERS];
    ASSERT_EQ_UINT(om_auth_client_headers(c, h, 1), 1);
    ASSERT_EQ_UINT(om_auth_client_headers(c, h, OM_AUTH_MAX_HEADERS), 2);
    ASSERT_EQ_STR(h[0].value, "Test k");
    ASSERT_EQ_STR(h[1].name, "X-A");
    ASSERT_EQ_UINT(om_auth_client_headers(NULL, h, OM_AUTH_MAX_HEADERS), 0);
    om_auth_client_free(c);
    om_test_host_close(&host);
    ASSERT_EQ_INT(uv_loop_close(&loop), 0);
}

/* The walk finds references in nested sections and names their paths. */
typedef struct seen_ref {
    char paths[4][160];
    unsigned sides[4];
    int n;
} seen_ref_t;

static void note_ref(void *arg, const om_auth_cfg_t *a, unsigned side, const char *path)
{
    seen_ref_t *s = arg;
    if (a->authenticator != NULL && s->n < 4) {
        snprintf(s->paths[s->n], sizeof s->paths[0], "%s=%s", path, a->authenticator);
        s->sides[s->n++] = side;
    }
}

typedef struct inner {
    om_auth_cfg_t auth;
} inner_t;

typedef struct outer {
    inner_t in;
    om_auth_cfg_t out;
} outer_t;

static const om_field_t inner_fields[] = {
    OM_AUTH_FIELD(inner_t, auth, OM_F_AUTH_SERVER, om_auth_server_fields),
    {.key = NULL},
};

static const om_field_t outer_fields[] = {
    {.key = "in", .type = OM_F_SECTION, .offset = offsetof(outer_t, in), .fields = inner_fields},
    OM_AUTH_FIELD(outer_t, out, OM_F_AUTH_CLIENT, om_auth_client_fields),
    {.key = NULL},
};

static void test_walk(void)
{
    outer_t o = {.in.auth.authenticator = "a", .out.authenticator = "b"};
    seen_ref_t s = {0};
    om__auth_refs_walk(outer_fields, &o, "x::y", note_ref, &s);
    ASSERT_EQ_INT(s.n, 2);
    ASSERT_EQ_STR(s.paths[0], "x::y::in::auth::authenticator=a");
    ASSERT_EQ_UINT(s.sides[0], OM_AUTH_SERVER);
    ASSERT_EQ_STR(s.paths[1], "x::y::auth::authenticator=b");
    ASSERT_EQ_UINT(s.sides[1], OM_AUTH_CLIENT);
}

/* Equal secrets, and the unequal ones an early exit would tell apart by time: another
 * length, a common prefix. */
static void test_equal(void)
{
    unsigned long before = om__auth_compares;
    ASSERT_TRUE(om_auth_equal("s3cret", 6, "s3cret", 6));
    ASSERT_TRUE(!om_auth_equal("s3cret", 6, "s3cre", 5));
    ASSERT_TRUE(!om_auth_equal("s3cret", 6, "s3cret!", 7));
    ASSERT_TRUE(!om_auth_equal("s3cret", 6, "S3cret", 6));
    ASSERT_TRUE(om_auth_equal("", 0, "", 0));
    ASSERT_TRUE(om_auth_equal("a\0b", 3, "a\0b", 3));
    ASSERT_TRUE(!om_auth_equal("a\0b", 3, "a\0c", 3));
    ASSERT_EQ_UINT(om__auth_compares - before, 7);
}

int main(void)
{
    om_log_set_level(OM_LOG_WARN);
    OM_RUN(test_unknown_extension);
    OM_RUN(test_extension_not_enabled);
    OM_RUN(test_not_an_authenticator);
    OM_RUN(test_unused_and_empty);
    OM_RUN(test_graph_registers_extensions);
    OM_RUN(test_handles);
    OM_RUN(test_walk);
    OM_RUN(test_equal);
    return om_test_summary();
}
