/* fields_test.c: field tables (defaults, types, bounds, enums, sections, maps, lists, unknown
 * and ignored keys) and the unit parsers. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "om_test.h"

typedef struct grpc_cfg {
    char *endpoint;
    int64_t max_recv_mib;
    uint64_t read_buffer;
} grpc_cfg_t;

typedef struct tls_cfg {
    bool insecure;
    char *ca_file;
} tls_cfg_t;

typedef struct test_cfg {
    bool enabled;
    int64_t count;
    double ratio;
    int64_t timeout;
    uint64_t limit;
    char *name;
    int mode;
    char *endpoint;
    grpc_cfg_t grpc;
    bool grpc_present;
    tls_cfg_t tls;
    om_strmap_t headers;
    om_strlist_t include;
} test_cfg_t;

static const char *const modes[] = {"none", "gzip", "zstd", NULL};

static const om_field_t grpc_fields[] = {
    {.key = "endpoint",
     .type = OM_F_ENDPOINT,
     .offset = offsetof(grpc_cfg_t, endpoint),
     .def = "localhost:4317"},
    {.key = "max_recv_msg_size_mib",
     .type = OM_F_INT,
     .offset = offsetof(grpc_cfg_t, max_recv_mib),
     .def = "4",
     .min = 1,
     .max = 1024},
    {.key = "read_buffer_size",
     .type = OM_F_SIZE,
     .offset = offsetof(grpc_cfg_t, read_buffer),
     .def = "512KiB"},
    {.key = NULL},
};

static const om_field_t tls_fields[] = {
    {.key = "insecure", .type = OM_F_BOOL, .offset = offsetof(tls_cfg_t, insecure), .def = "false"},
    {.key = "ca_file", .type = OM_F_STRING, .offset = offsetof(tls_cfg_t, ca_file)},
    {.key = NULL},
};

static const om_field_t fields[] = {
    {.key = "enabled", .type = OM_F_BOOL, .offset = offsetof(test_cfg_t, enabled), .def = "true"},
    {.key = "count",
     .type = OM_F_INT,
     .offset = offsetof(test_cfg_t, count),
     .def = "10",
     .min = 0,
     .max = 100},
    {.key = "ratio",
     .type = OM_F_DOUBLE,
     .offset = offsetof(test_cfg_t, ratio),
     .def = "0.5",
     .min = 0,
     .max = 1},
    {.key = "timeout",
     .type = OM_F_DURATION,
     .offset = offsetof(test_cfg_t, timeout),
     .def = "200ms",
     .min = 1e6,
     .max = 3.6e12},
    {.key = "limit", .type = OM_F_SIZE, .offset = offsetof(test_cfg_t, limit), .def = "4MiB"},
    {.key = "name", .type = OM_F_STRING, .offset = offsetof(test_cfg_t, name)},
    {.key = "mode",
     .type = OM_F_ENUM,
     .offset = offsetof(test_cfg_t, mode),
     .choices = modes,
     .def = "gzip"},
    {.key = "endpoint",
     .type = OM_F_ENDPOINT,
     .offset = offsetof(test_cfg_t, endpoint),
     .def = "localhost:4318"},
    {.key = "grpc",
     .type = OM_F_SECTION,
     .offset = offsetof(test_cfg_t, grpc),
     .fields = grpc_fields,
     .flags = OM_FF_PRESENCE,
     .present_offset = offsetof(test_cfg_t, grpc_present)},
    {.key = "tls", .type = OM_F_SECTION, .offset = offsetof(test_cfg_t, tls), .fields = tls_fields},
    {.key = "headers",
     .type = OM_F_STRMAP,
     .offset = offsetof(test_cfg_t, headers),
     .def = "{X-A: b}"},
    {.key = "include", .type = OM_F_STRLIST, .offset = offsetof(test_cfg_t, include)},
    {.key = "balancer_name", .type = OM_F_IGNORED},
    {.key = NULL},
};

static om_diags_t diags;
static om_config_t *conf;

static void dump_diags(const om_diags_t *d)
{
    for (size_t i = 0; i < d->n; i++) {
        fprintf(stderr, "    diag[%zu]: %s\n", i, d->msgs[i]);
    }
}

#define ASSERT_DIAGS(d, ...)                                                                       \
    do {                                                                                           \
        const char *exp_[] = {__VA_ARGS__};                                                        \
        size_t nexp_ = sizeof exp_ / sizeof exp_[0];                                               \
        if ((d)->n != nexp_) {                                                                     \
            dump_diags(d);                                                                         \
        }                                                                                          \
        ASSERT_EQ_UINT((d)->n, nexp_);                                                             \
        for (size_t i_ = 0; i_ < nexp_; i_++) {                                                    \
            ASSERT_EQ_STR((d)->msgs[i_], exp_[i_]);                                                \
        }                                                                                          \
    } while (0)

/* Parse yaml and apply `table` to its root with path "receivers::t"; returns the problem
 * count, or -100 when the YAML itself did not load. */
static int apply_yaml(const om_field_t *table, void *cfg, const char *yaml)
{
    om_config_free(conf);
    conf = NULL;
    om_diags_free(&diags);
    if (om_config_load_string("t.yaml", yaml, strlen(yaml), &conf, &diags) != 0) {
        dump_diags(&diags);
        return -100;
    }
    return om_fields_apply(table, cfg, conf->root, "receivers::t", &diags);
}

static void test_defaults(void)
{
    test_cfg_t c = {0};
    om_diags_free(&diags);
    ASSERT_EQ_INT(om_fields_apply(fields, &c, NULL, "receivers::t", &diags), 0);
    ASSERT_EQ_UINT(diags.n, 0);
    ASSERT_TRUE(c.enabled);
    ASSERT_EQ_INT(c.count, 10);
    ASSERT_TRUE(c.ratio == 0.5);
    ASSERT_EQ_INT(c.timeout, 200 * OM_NS_PER_MS);
    ASSERT_EQ_UINT(c.limit, 4u << 20);
    ASSERT_TRUE(c.name == NULL);
    ASSERT_EQ_INT(c.mode, 1);
    ASSERT_EQ_STR(c.endpoint, "localhost:4318");
    /* An absent section still gets its defaults; its presence flag stays false. */
    ASSERT_TRUE(!c.grpc_present);
    ASSERT_EQ_STR(c.grpc.endpoint, "localhost:4317");
    ASSERT_EQ_INT(c.grpc.max_recv_mib, 4);
    ASSERT_EQ_UINT(c.grpc.read_buffer, 512 * 1024);
    ASSERT_TRUE(!c.tls.insecure);
    ASSERT_TRUE(c.tls.ca_file == NULL);
    ASSERT_EQ_UINT(c.headers.n, 1);
    ASSERT_EQ_STR(c.headers.keys[0], "X-A");
    ASSERT_EQ_STR(c.headers.values[0], "b");
    ASSERT_EQ_UINT(c.include.n, 0);
    om_fields_free(fields, &c);
    ASSERT_TRUE(c.endpoint == NULL && c.grpc.endpoint == NULL && c.headers.keys == NULL);

    /* A null node (`t:` with nothing after it) is the same as no node. */
    test_cfg_t c2 = {0};
    ASSERT_EQ_INT(apply_yaml(fields, &c2, "~"), 0);
    ASSERT_EQ_INT(om_fields_apply(fields, &c2, om_node_get(conf->root, "x"), "p", &diags), 0);
    ASSERT_EQ_INT(c2.count, 10);
    ASSERT_EQ_STR(c2.grpc.endpoint, "localhost:4317");
    om_fields_free(fields, &c2);
}

static void test_all_values(void)
{
    const char *y = "enabled: false\n"
                    "count: 0x10\n"
                    "ratio: 1\n"
                    "timeout: 1m30s\n"
                    "limit: 1.5KiB\n"
                    "name: \"otel\"\n"
                    "mode: zstd\n"
                    "endpoint: \"[::1]:4318\"\n"
                    "grpc:\n"
                    "tls:\n"
                    "  insecure: TRUE\n"
                    "  ca_file: /etc/ca.pem\n"
                    "headers:\n"
                    "  Authorization: Bearer x\n"
                    "  X-Empty:\n"
                    "  X-Num: 5\n"
                    "include: [a, ~, 3]\n"
                    "balancer_name: round_robin\n";
    test_cfg_t c = {0};
    ASSERT_EQ_INT(apply_yaml(fields, &c, y), 0);
    ASSERT_TRUE(!c.enabled);
    ASSERT_EQ_INT(c.count, 16);
    ASSERT_TRUE(c.ratio == 1.0);
    ASSERT_EQ_INT(c.timeout, 90 * OM_NS_PER_S);
    ASSERT_EQ_UINT(c.limit, 1536);
    ASSERT_EQ_STR(c.name, "otel");
    ASSERT_EQ_INT(c.mode, 2);
    ASSERT_EQ_STR(c.endpoint, "[::1]:4318");
    /* `grpc:` with nothing after it means "enabled with defaults". */
    ASSERT_TRUE(c.grpc_present);
    ASSERT_EQ_STR(c.grpc.endpoint, "localhost:4317");
    ASSERT_TRUE(c.tls.insecure);
    ASSERT_EQ_STR(c.tls.ca_file, "/etc/ca.pem");
    ASSERT_EQ_UINT(c.headers.n, 3);
    ASSERT_EQ_STR(c.headers.keys[0], "Authorization");
    ASSERT_EQ_STR(c.headers.values[0], "Bearer x");
    ASSERT_EQ_STR(c.headers.keys[1], "X-Empty");
    ASSERT_EQ_STR(c.headers.values[1], "");
    ASSERT_EQ_STR(c.headers.values[2], "5");
    ASSERT_EQ_UINT(c.include.n, 3);
    ASSERT_EQ_STR(c.include.items[0], "a");
    ASSERT_EQ_STR(c.include.items[1], "");
    ASSERT_EQ_STR(c.include.items[2], "3");

    /* Applying again over a filled struct replaces values without leaking (ASan checks). */
    ASSERT_EQ_INT(apply_yaml(fields, &c, "name: again\ngrpc: {endpoint: 'h:1'}\n"), 0);
    ASSERT_EQ_STR(c.name, "again");
    ASSERT_EQ_STR(c.grpc.endpoint, "h:1");
    ASSERT_TRUE(c.tls.ca_file == NULL);
    ASSERT_EQ_UINT(c.headers.n, 1);
    om_fields_free(fields, &c);
    om_fields_free(fields, &c);
}

static void test_null_values_keep_defaults(void)
{
    test_cfg_t c = {0};
    ASSERT_EQ_INT(apply_yaml(fields, &c, "count:\nname: ~\nheaders:\ninclude:\ntimeout: null\n"),
                  0);
    ASSERT_EQ_INT(c.count, 10);
    ASSERT_TRUE(c.name == NULL);
    ASSERT_EQ_UINT(c.headers.n, 1);
    ASSERT_EQ_INT(c.timeout, 200 * OM_NS_PER_MS);
    /* Quoted numbers are accepted for typed fields. */
    ASSERT_EQ_INT(apply_yaml(fields, &c, "count: \"42\"\nenabled: 'false'\n"), 0);
    ASSERT_EQ_INT(c.count, 42);
    ASSERT_TRUE(!c.enabled);
    om_fields_free(fields, &c);
}

static void test_type_errors(void)
{
    const char *y = "enabled: maybe\n"
                    "count: abc\n"
                    "ratio: 2\n"
                    "timeout: 5x\n"
                    "limit: 4XB\n"
                    "mode: lz4\n"
                    "endpoint: localhost\n"
                    "grpc: [a]\n"
                    "tls:\n"
                    "  insecure: {a: 1}\n"
                    "headers: [a]\n"
                    "include: {a: b}\n"
                    "name: [x]\n";
    test_cfg_t c = {0};
    ASSERT_EQ_INT(apply_yaml(fields, &c, y), 12);
    ASSERT_DIAGS(
        &diags,
        "t.yaml:1:10: receivers::t::enabled: \"maybe\" is not a boolean (use true or false)",
        "t.yaml:2:8: receivers::t::count: \"abc\" is not an integer",
        "t.yaml:3:8: receivers::t::ratio: \"2\" is out of range [0, 1]",
        "t.yaml:4:10: receivers::t::timeout: unknown unit \"x\" in duration \"5x\" (use ns, us, "
        "ms, "
        "s, m or h)",
        "t.yaml:5:8: receivers::t::limit: unknown unit \"XB\" in size \"4XB\" (use B, KB, KiB, MB, "
        "MiB, GB, GiB, TB or TiB)",
        "t.yaml:6:7: receivers::t::mode: unknown value \"lz4\" (valid values: [none, gzip, zstd])",
        "t.yaml:7:11: receivers::t::endpoint: address localhost: missing port in address",
        "t.yaml:8:7: receivers::t::grpc: expected a map, got a sequence",
        "t.yaml:10:13: receivers::t::tls::insecure: expected a boolean, got a map",
        "t.yaml:11:10: receivers::t::headers: expected a map of strings, got a sequence",
        "t.yaml:12:10: receivers::t::include: expected a sequence of strings, got a map",
        "t.yaml:13:7: receivers::t::name: expected a string, got a sequence");
    /* Values that failed keep their defaults. */
    ASSERT_TRUE(c.enabled);
    ASSERT_EQ_INT(c.count, 10);
    ASSERT_EQ_INT(c.mode, 1);
    om_fields_free(fields, &c);
}

static void test_bounds(void)
{
    test_cfg_t c = {0};
    const char *y = "count: 101\n"
                    "timeout: 2h\n"
                    "grpc:\n"
                    "  max_recv_msg_size_mib: 0\n"
                    "ratio: -0.5\n";
    ASSERT_EQ_INT(apply_yaml(fields, &c, y), 4);
    ASSERT_DIAGS(&diags, "t.yaml:1:8: receivers::t::count: \"101\" is out of range [0, 100]",
                 "t.yaml:2:10: receivers::t::timeout: \"2h\" is out of range [1ms, 1h0m0s]",
                 "t.yaml:4:26: receivers::t::grpc::max_recv_msg_size_mib: \"0\" is out of range "
                 "[1, 1024]",
                 "t.yaml:5:8: receivers::t::ratio: \"-0.5\" is out of range [0, 1]");
    ASSERT_EQ_INT(apply_yaml(fields, &c, "count: 100\ntimeout: 1h\nratio: 0\n"), 0);
    ASSERT_EQ_INT(c.count, 100);
    ASSERT_EQ_INT(c.timeout, 3600 * OM_NS_PER_S);
    ASSERT_EQ_INT(apply_yaml(fields, &c, "count: 99999999999999999999\nratio: nan\n"), 2);
    ASSERT_DIAGS(&diags,
                 "t.yaml:1:8: receivers::t::count: \"99999999999999999999\" is out of range for "
                 "a 64-bit integer",
                 "t.yaml:2:8: receivers::t::ratio: \"nan\" is not a number");
    om_fields_free(fields, &c);
}

static void test_unknown_keys(void)
{
    test_cfg_t c = {0};
    const char *y = "foo: 1\n"
                    "enabled: true\n"
                    "bar: {x: 1}\n"
                    "grpc:\n"
                    "  endpoint: x:1\n"
                    "  baz: 3\n";
    ASSERT_EQ_INT(apply_yaml(fields, &c, y), 2);
    ASSERT_DIAGS(&diags, "t.yaml:6:3: 'receivers::t::grpc' has invalid keys: baz",
                 "t.yaml:1:1: 'receivers::t' has invalid keys: foo, bar");
    /* Known keys around the bad ones are still applied. */
    ASSERT_EQ_STR(c.grpc.endpoint, "x:1");
    om_fields_free(fields, &c);

    /* The component root as mapstructure names it: ''. */
    om_config_t *cf = NULL;
    om_diags_free(&diags);
    ASSERT_EQ_INT(om_config_load_string("u.yaml", "zzz: 1\n", 7, &cf, &diags), 0);
    ASSERT_EQ_INT(om_fields_apply(fields, &c, cf->root, "", &diags), 1);
    ASSERT_DIAGS(&diags, "u.yaml:1:1: '' has invalid keys: zzz");
    om_config_free(cf);
    om_fields_free(fields, &c);

    /* A scalar where the table wants a map. */
    ASSERT_EQ_INT(apply_yaml(fields, &c, "a: 5\n"), 1);
    ASSERT_EQ_INT(
        om_fields_apply(tls_fields, &c.tls, om_node_get(conf->root, "a"), "x::tls", &diags), 1);
    ASSERT_EQ_STR(diags.msgs[1], "t.yaml:1:4: x::tls: expected a map, got a scalar");
    om_fields_free(fields, &c);
}

static const om_field_t refused_fields[] = {
    {.key = "auth", .type = OM_F_REFUSED, .help = "authenticators are not implemented yet"},
    {.key = "reload_interval", .type = OM_F_REFUSED, .help = "certificates are not reloaded"},
    {.key = "enabled", .type = OM_F_BOOL, .offset = offsetof(test_cfg_t, enabled)},
    {.key = NULL},
};

static void test_refused_keys(void)
{
    test_cfg_t c = {0};
    /* A value that turns nothing on is accepted. */
    ASSERT_EQ_INT(apply_yaml(refused_fields, &c, "auth:\nreload_interval: 0s\nenabled: true\n"), 0);
    ASSERT_EQ_INT(apply_yaml(refused_fields, &c, "auth: {}\nreload_interval: \"\"\n"), 0);
    ASSERT_EQ_INT(apply_yaml(refused_fields, &c, "reload_interval: false\n"), 0);
    /* Anything else is an error at the value, with the reason. */
    ASSERT_EQ_INT(
        apply_yaml(refused_fields, &c, "enabled: true\nauth: {authenticator: basicauth}\n"), 1);
    ASSERT_DIAGS(&diags, "t.yaml:2:7: receivers::t::auth: not supported by otelmon: "
                         "authenticators are not implemented yet");
    ASSERT_TRUE(c.enabled);
    ASSERT_EQ_INT(apply_yaml(refused_fields, &c, "reload_interval: 10s\n"), 1);
    ASSERT_DIAGS(&diags, "t.yaml:1:18: receivers::t::reload_interval: not supported by otelmon: "
                         "certificates are not reloaded");
    om_fields_free(refused_fields, &c);
}

static void test_nested_element_errors(void)
{
    test_cfg_t c = {0};
    ASSERT_EQ_INT(apply_yaml(fields, &c, "headers: {a: {b: c}, d: e}\ninclude: [a, [b], c]\n"), 2);
    ASSERT_DIAGS(&diags, "t.yaml:1:14: receivers::t::headers::a: expected a string, got a map",
                 "t.yaml:2:14: receivers::t::include[1]: expected a string, got a sequence");
    om_fields_free(fields, &c);
}

typedef struct req_cfg {
    char *endpoint;
    tls_cfg_t tls;
    bool tls_present;
} req_cfg_t;

static const om_field_t req_tls_fields[] = {
    {.key = "ca_file",
     .type = OM_F_STRING,
     .offset = offsetof(tls_cfg_t, ca_file),
     .flags = OM_FF_REQUIRED},
    {.key = NULL},
};

static const om_field_t req_fields[] = {
    {.key = "endpoint",
     .type = OM_F_STRING,
     .offset = offsetof(req_cfg_t, endpoint),
     .flags = OM_FF_REQUIRED},
    {.key = "tls",
     .type = OM_F_SECTION,
     .offset = offsetof(req_cfg_t, tls),
     .fields = req_tls_fields,
     .flags = OM_FF_PRESENCE,
     .present_offset = offsetof(req_cfg_t, tls_present)},
    {.key = NULL},
};

static void test_required(void)
{
    req_cfg_t c = {0};
    om_diags_free(&diags);
    ASSERT_EQ_INT(om_fields_apply(req_fields, &c, NULL, "exporters::x", &diags), 1);
    ASSERT_DIAGS(&diags, "exporters::x: missing required key \"endpoint\"");
    /* An absent section does not require its keys; a present one does. */
    ASSERT_EQ_INT(apply_yaml(req_fields, &c, "endpoint:\ntls:\n"), 2);
    ASSERT_DIAGS(&diags, "t.yaml:2:5: receivers::t::tls: missing required key \"ca_file\"",
                 "t.yaml:1:1: receivers::t: missing required key \"endpoint\"");
    ASSERT_TRUE(c.tls_present);
    ASSERT_EQ_INT(apply_yaml(req_fields, &c, "endpoint: x\n"), 0);
    ASSERT_TRUE(!c.tls_present);
    ASSERT_EQ_STR(c.endpoint, "x");
    om_fields_free(req_fields, &c);
}

typedef struct bad_cfg {
    int64_t n;
    om_strlist_t l;
} bad_cfg_t;

static const om_field_t bad_default_fields[] = {
    {.key = "n", .type = OM_F_INT, .offset = offsetof(bad_cfg_t, n), .def = "ten"},
    {.key = "l", .type = OM_F_STRLIST, .offset = offsetof(bad_cfg_t, l), .def = "[a, {b: c}]"},
    {.key = NULL},
};

static void test_bad_defaults(void)
{
    bad_cfg_t c = {0};
    om_diags_free(&diags);
    ASSERT_EQ_INT(om_fields_apply(bad_default_fields, &c, NULL, "p", &diags), 2);
    ASSERT_DIAGS(&diags, "p::n: \"ten\" is not an integer",
                 "<default>:1:8: p::l[1]: expected a string, got a map");
    om_fields_free(bad_default_fields, &c);
}

static void test_free_zeroed_and_partial(void)
{
    test_cfg_t c = {0};
    om_fields_free(fields, &c);
    om_fields_free(fields, NULL);
    om_fields_free(NULL, &c);
    /* Partially filled by hand: only some pointers set. */
    c.name = om_strdup("x");
    c.include.items = om_calloc(2, sizeof(char *));
    c.include.items[0] = om_strdup("a");
    c.include.n = 1;
    om_fields_free(fields, &c);
    ASSERT_TRUE(c.name == NULL && c.include.items == NULL && c.include.n == 0);
}

/* A NODE field keeps the value as written: a deep copy with positions, which outlives the
 * config it came from; null or absent is NULL; the copy survives allocation failures whole or
 * not at all. */
typedef struct node_cfg {
    om_node_t *list;
    om_node_t *other;
} node_cfg_t;

static const om_field_t node_fields[] = {
    {.key = "list", .type = OM_F_NODE, .offset = offsetof(node_cfg_t, list)},
    {.key = "other", .type = OM_F_NODE, .offset = offsetof(node_cfg_t, other)},
    {.key = NULL},
};

static void test_node_fields(void)
{
    node_cfg_t c = {0};
    ASSERT_EQ_INT(apply_yaml(node_fields, &c,
                             "list:\n  - key: a\n    value: 5\n"
                             "  - {key: b, value: 'x'}\nother:\n"),
                  0);
    om_config_free(conf); /* the copy must not point into the config */
    conf = NULL;
    ASSERT_TRUE(c.other == NULL);
    ASSERT_TRUE(c.list != NULL && c.list->kind == OM_NODE_SEQ && c.list->n == 2);
    const om_node_t *v = om_node_get(c.list->values[0], "value");
    ASSERT_TRUE(v != NULL && v->kind == OM_NODE_SCALAR && !v->quoted);
    ASSERT_EQ_STR(v->str, "5");
    ASSERT_EQ_STR(v->file, "t.yaml");
    ASSERT_EQ_UINT(v->line, 3);
    ASSERT_EQ_UINT(v->col, 12);
    v = om_node_get(c.list->values[1], "value");
    ASSERT_TRUE(v != NULL && v->quoted);
    ASSERT_EQ_STR(v->str, "x");
    om_fields_free(node_fields, &c);
    ASSERT_TRUE(c.list == NULL);

    const char *y = "list: [{a: [1, 2]}, b]\n";
    bool saw_success = false;
    for (unsigned long n = 1; n < 100 && !saw_success; n++) {
        ASSERT_EQ_INT(apply_yaml(node_fields, &c, "other: 1\n"), 0);
        om_fields_free(node_fields, &c);
        om_config_free(conf);
        conf = NULL;
        om_diags_free(&diags);
        ASSERT_EQ_INT(om_config_load_string("t.yaml", y, strlen(y), &conf, &diags), 0);
        om_alloc_fail_after(n);
        int problems = om_fields_apply(node_fields, &c, conf->root, "r", &diags);
        om_alloc_fail_after(0);
        ASSERT_TRUE(problems == 0 ? c.list != NULL : c.list == NULL);
        saw_success = problems == 0;
        om_fields_free(node_fields, &c);
    }
    ASSERT_TRUE(saw_success);
}

static void test_alloc_failures(void)
{
    const char *y = "name: n\nendpoint: h:1\nheaders: {a: b, c: d}\ninclude: [x, y]\n"
                    "grpc: {endpoint: g:2}\nfoo: 1\n";
    bool saw_success = false;
    for (unsigned long n = 1; n < 200 && !saw_success; n++) {
        test_cfg_t c = {0};
        om_config_free(conf);
        conf = NULL;
        om_diags_free(&diags);
        if (om_config_load_string("t.yaml", y, strlen(y), &conf, &diags) != 0) {
            ASSERT_TRUE(false);
        }
        om_alloc_fail_after(n);
        int problems = om_fields_apply(fields, &c, conf->root, "r", &diags);
        om_alloc_fail_after(0);
        ASSERT_TRUE(problems >= 1); /* the unknown key, plus any allocation failure */
        saw_success = problems == 1 && diags.n == 1;
        om_fields_free(fields, &c);
    }
    ASSERT_TRUE(saw_success);
}

static void test_parse_duration(void)
{
    struct {
        const char *s;
        int64_t ns;
    } ok[] = {
        {"200ms", 200 * OM_NS_PER_MS},
        {"1.5s", 1500 * OM_NS_PER_MS},
        {"1h2m3s", (3600 + 120 + 3) * OM_NS_PER_S},
        {"300us", 300000},
        {"300\xc2\xb5s", 300000},
        {"300\xce\xbcs", 300000},
        {"10ns", 10},
        {"0", 0},
        {"5", 5},
        {"+5s", 5 * OM_NS_PER_S},
        {".5s", 500 * OM_NS_PER_MS},
        {"1.s", OM_NS_PER_S},
        {"1h1h", 7200 * OM_NS_PER_S},
        {"0.000000001s", 1},
        {"1.0000000001s", OM_NS_PER_S},
        {"9223372036854775807ns", INT64_MAX},
        {"9223372036854775807", INT64_MAX},
        {"2562047h", INT64_C(2562047) * 3600 * OM_NS_PER_S},
        {"0s", 0},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        int64_t v = -1;
        om_err_t err = {0};
        if (om_parse_duration(ok[i].s, &v, &err) != 0) {
            fprintf(stderr, "    %s: %s\n", ok[i].s, err.msg);
        }
        ASSERT_EQ_INT(v, ok[i].ns);
    }
    struct {
        const char *s, *msg;
    } bad[] = {
        {"", "invalid duration \"\""},
        {"+", "invalid duration \"+\""},
        {"-1s", "negative duration \"-1s\" is not allowed"},
        {"1.5", "missing unit in duration \"1.5\""},
        {"5x", "unknown unit \"x\" in duration \"5x\" (use ns, us, ms, s, m or h)"},
        {"1e3s", "unknown unit \"e\" in duration \"1e3s\" (use ns, us, ms, s, m or h)"},
        {"s", "invalid duration \"s\""},
        {"1s.", "invalid duration \"1s.\""},
        {"5 s", "unknown unit \" s\" in duration \"5 s\" (use ns, us, ms, s, m or h)"},
        {"9223372036854775808ns", "duration \"9223372036854775808ns\" is too large"},
        {"9223372036854775808", "duration \"9223372036854775808\" is too large"},
        {"2562048h", "duration \"2562048h\" is too large"},
        {"2562047h48m", "duration \"2562047h48m\" is too large"},
        {"99999999999999999999999s", "duration \"99999999999999999999999s\" is too large"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t v = 7;
        om_err_t err = {0};
        ASSERT_EQ_INT(om_parse_duration(bad[i].s, &v, &err), OM_EINVAL);
        ASSERT_EQ_INT(v, 7);
        ASSERT_EQ_STR(err.msg, bad[i].msg);
    }
    int64_t v;
    ASSERT_EQ_INT(om_parse_duration(NULL, &v, NULL), OM_EINVAL);
}

static void test_parse_size(void)
{
    struct {
        const char *s;
        uint64_t b;
    } ok[] = {
        {"4MiB", 4u << 20},
        {"512KiB", 512u << 10},
        {"1GiB", 1u << 30},
        {"1000", 1000},
        {"4MB", 4000000},
        {"4mb", 4000000},
        {"4M", 4000000},
        {"4Mi", 4u << 20},
        {"1.5KiB", 1536},
        {"0", 0},
        {"4 MiB", 4u << 20},
        {"10B", 10},
        {"2TiB", UINT64_C(2) << 40},
        {"18446744073709551615", UINT64_MAX},
        {"16777215TiB", UINT64_C(16777215) << 40},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        uint64_t v = 1;
        om_err_t err = {0};
        if (om_parse_size(ok[i].s, &v, &err) != 0) {
            fprintf(stderr, "    %s: %s\n", ok[i].s, err.msg);
        }
        ASSERT_EQ_UINT(v, ok[i].b);
    }
    struct {
        const char *s, *msg;
    } bad[] = {
        {"", "invalid size \"\""},
        {"MiB", "invalid size \"MiB\""},
        {"-1", "negative size \"-1\" is not allowed"},
        {"1.5", "size \"1.5\" is not a whole number of bytes"},
        {"4XB", "unknown unit \"XB\" in size \"4XB\" (use B, KB, KiB, MB, MiB, GB, GiB, TB or "
                "TiB)"},
        {"16EiB", "unknown unit \"EiB\" in size \"16EiB\" (use B, KB, KiB, MB, MiB, GB, GiB, TB "
                  "or TiB)"},
        {"4  MiB", "unknown unit \" MiB\" in size \"4  MiB\" (use B, KB, KiB, MB, MiB, GB, GiB, "
                   "TB or TiB)"},
        {"18446744073709551616", "size \"18446744073709551616\" is too large"},
        {"16777216TiB", "size \"16777216TiB\" is too large"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t v = 7;
        om_err_t err = {0};
        ASSERT_EQ_INT(om_parse_size(bad[i].s, &v, &err), OM_EINVAL);
        ASSERT_EQ_UINT(v, 7);
        ASSERT_EQ_STR(err.msg, bad[i].msg);
    }
}

static void test_parse_bool(void)
{
    const char *yes[] = {"true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON"};
    const char *no[] = {"false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF"};
    const char *bad[] = {"", "maybe", "1", "0", "tRUE", "y", "n", " true"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        bool b = false;
        ASSERT_EQ_INT(om_parse_bool(yes[i], &b), 0);
        ASSERT_TRUE(b);
        ASSERT_EQ_INT(om_parse_bool(no[i], &b), 0);
        ASSERT_TRUE(!b);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        bool b = true;
        ASSERT_EQ_INT(om_parse_bool(bad[i], &b), OM_EINVAL);
        ASSERT_TRUE(b);
    }
    bool b;
    ASSERT_EQ_INT(om_parse_bool(NULL, &b), OM_EINVAL);
}

static void test_parse_endpoint(void)
{
    struct {
        const char *s, *host;
        int port;
    } ok[] = {
        {"localhost:4317", "localhost", 4317},
        {"[::1]:4317", "::1", 4317},
        {":4317", "", 4317},
        {"0.0.0.0:4317", "0.0.0.0", 4317},
        {"[]:1", "", 1},
        {"collector.example.com:65535", "collector.example.com", 65535},
        {"h:0", "h", 0},
        {"[fe80::1%eth0]:80", "fe80::1%eth0", 80},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        char *host = NULL;
        int port = -1;
        om_err_t err = {0};
        if (om_parse_endpoint(ok[i].s, &host, &port, &err) != 0) {
            fprintf(stderr, "    %s: %s\n", ok[i].s, err.msg);
        }
        ASSERT_EQ_STR(host, ok[i].host);
        ASSERT_EQ_INT(port, ok[i].port);
        om_free(host);
    }
    struct {
        const char *s, *msg;
    } bad[] = {
        {"localhost", "address localhost: missing port in address"},
        {"", "missing port in address"},
        {"host:", "address host:: missing port in address"},
        {"::1:4317", "address ::1:4317: too many colons in address"},
        {"[::1]", "address [::1]: missing port in address"},
        {"[::1]x:1", "address [::1]x:1: missing port in address"},
        {"[::1]:1:2", "address [::1]:1:2: too many colons in address"},
        {"[::1:4317", "address [::1:4317: missing ']' in address"},
        {"a[b:1", "address a[b:1: unexpected '[' in address"},
        {"a]b:1", "address a]b:1: unexpected ']' in address"},
        {"host:70000", "address host:70000: invalid port"},
        {"host:99999999999999999999", "address host:99999999999999999999: invalid port"},
        {"host:http", "address host:http: invalid port"},
        {"host:-1", "address host:-1: invalid port"},
        {"http://host:4317", "address http://host:4317: too many colons in address"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *host = NULL;
        om_err_t err = {0};
        ASSERT_EQ_INT(om_parse_endpoint(bad[i].s, &host, NULL, &err), OM_EINVAL);
        ASSERT_TRUE(host == NULL);
        ASSERT_EQ_STR(err.msg, bad[i].msg);
    }
    ASSERT_EQ_INT(om_parse_endpoint("h:1", NULL, NULL, NULL), 0);
}

static void test_diag_format(void)
{
    om_diags_t d = {0};
    om_node_t at = {.file = "f.yaml", .line = 3, .col = 9};
    om_diag_add(&d, &at, "a::b", "must be %d", 5);
    om_diag_add(&d, &at, NULL, "no path");
    om_diag_add(&d, &at, "", "empty path");
    om_diag_add(&d, NULL, "a", "no position");
    om_diag_add(&d, NULL, NULL, "bare");
    om_diag_add(NULL, NULL, NULL, "dropped");
    ASSERT_DIAGS(&d, "f.yaml:3:9: a::b: must be 5", "f.yaml:3:9: no path", "f.yaml:3:9: empty path",
                 "a: no position", "bare");
    om_diags_free(&d);
    ASSERT_EQ_UINT(d.n, 0);
    om_diags_free(&d);
}

/* ---- sequences of sections and YAML values ---- */

typedef struct action_cfg {
    char *key;
    om_anyvalue_t *value;
    int64_t weight;
} action_cfg_t;

typedef struct list_cfg {
    om_seclist_t actions;
    om_anyvalue_t *any;
} list_cfg_t;

static const om_field_t action_fields[] = {
    {.key = "key",
     .type = OM_F_STRING,
     .offset = offsetof(action_cfg_t, key),
     .flags = OM_FF_REQUIRED},
    {.key = "value", .type = OM_F_ANYVALUE, .offset = offsetof(action_cfg_t, value)},
    {.key = "weight",
     .type = OM_F_INT,
     .offset = offsetof(action_cfg_t, weight),
     .def = "1",
     .min = 0,
     .max = 10},
    {.key = NULL},
};

static const om_field_t list_fields[] = {
    {.key = "actions",
     .type = OM_F_SECLIST,
     .offset = offsetof(list_cfg_t, actions),
     .fields = action_fields,
     .elem_size = sizeof(action_cfg_t)},
    {.key = "any", .type = OM_F_ANYVALUE, .offset = offsetof(list_cfg_t, any)},
    {.key = NULL},
};

static void test_seclist(void)
{
    list_cfg_t c = {0};
    ASSERT_EQ_INT(apply_yaml(list_fields, &c,
                             "actions:\n"
                             "  - key: a\n"
                             "    value: 1\n"
                             "  - key: b\n"
                             "    weight: 7\n"),
                  0);
    ASSERT_EQ_UINT(c.actions.n, 2);
    action_cfg_t *a0 = OM_SECLIST_AT(&c.actions, action_cfg_t, 0);
    action_cfg_t *a1 = OM_SECLIST_AT(&c.actions, action_cfg_t, 1);
    ASSERT_EQ_STR(a0->key, "a");
    ASSERT_EQ_INT(a0->weight, 1); /* each element gets the defaults */
    ASSERT_TRUE(a0->value != NULL && a0->value->value_case == OM_ANYVALUE_INT);
    ASSERT_EQ_STR(a1->key, "b");
    ASSERT_EQ_INT(a1->weight, 7);
    ASSERT_TRUE(a1->value == NULL);
    om_fields_free(list_fields, &c);
    ASSERT_EQ_UINT(c.actions.n, 0);
    ASSERT_TRUE(c.actions.items == NULL);

    /* Every problem of every element, each at its place and named path[i]. */
    list_cfg_t d = {0};
    ASSERT_EQ_INT(apply_yaml(list_fields, &d,
                             "actions:\n"
                             "  - key: a\n"
                             "    colour: red\n"
                             "  - weight: 70\n"
                             "  - just a string\n"),
                  4);
    ASSERT_DIAGS(&diags, "t.yaml:3:5: 'receivers::t::actions[0]' has invalid keys: colour",
                 "t.yaml:4:13: receivers::t::actions[1]::weight: \"70\" is out of range [0, 10]",
                 "t.yaml:4:5: receivers::t::actions[1]: missing required key \"key\"",
                 "t.yaml:5:5: receivers::t::actions[2]: expected a map, got a scalar");
    om_fields_free(list_fields, &d);

    list_cfg_t e = {0};
    ASSERT_EQ_INT(apply_yaml(list_fields, &e, "actions: {key: a}\n"), 1);
    ASSERT_DIAGS(&diags,
                 "t.yaml:1:10: receivers::t::actions: expected a sequence of maps, got a map");
    om_fields_free(list_fields, &e);
}

/* The value of `any: <text>` as a string (AsString), with its kind. */
static const char *any_of(const char *text, int *kind)
{
    static char out[256];
    list_cfg_t c = {0};
    char yaml[256];
    snprintf(yaml, sizeof yaml, "any: %s\n", text);
    *kind = -1;
    out[0] = '\0';
    if (apply_yaml(list_fields, &c, yaml) != 0) {
        return "(error)";
    }
    if (c.any == NULL) {
        om_fields_free(list_fields, &c);
        return "(null)";
    }
    *kind = (int)c.any->value_case;
    om_strbuf_t sb;
    om_strbuf_init(&sb, 0);
    om_anyvalue_to_string(c.any, &sb);
    snprintf(out, sizeof out, "%s", sb.data != NULL ? sb.data : "");
    om_strbuf_free(&sb);
    om_fields_free(list_fields, &c);
    return out;
}

/* Scalars typed as otelcol types them (yaml.v3 resolution, then pcommon FromRaw). */
static void test_anyvalue_typing(void)
{
    static const struct {
        const char *yaml;
        int kind;
        const char *as_string;
    } cases[] = {
        {"abc", OM_ANYVALUE_STRING, "abc"},
        {"'1'", OM_ANYVALUE_STRING, "1"},
        {"\"true\"", OM_ANYVALUE_STRING, "true"},
        {"!!str 12", OM_ANYVALUE_STRING, "12"},
        {"true", OM_ANYVALUE_BOOL, "true"},
        {"False", OM_ANYVALUE_BOOL, "false"},
        {"TRUE", OM_ANYVALUE_BOOL, "true"},
        {"yes", OM_ANYVALUE_STRING, "yes"}, /* YAML 1.1 words are strings in yaml.v3 */
        {"on", OM_ANYVALUE_STRING, "on"},
        {"2245", OM_ANYVALUE_INT, "2245"},
        {"-17", OM_ANYVALUE_INT, "-17"},
        {"+5", OM_ANYVALUE_INT, "5"},
        {"1_000", OM_ANYVALUE_INT, "1000"},
        {"0x1F", OM_ANYVALUE_INT, "31"},
        {"0o17", OM_ANYVALUE_INT, "15"},
        {"017", OM_ANYVALUE_INT, "15"},
        {"0b101", OM_ANYVALUE_INT, "5"},
        {"-9223372036854775808", OM_ANYVALUE_INT, "-9223372036854775808"},
        {"18446744073709551615", OM_ANYVALUE_INT, "-1"}, /* uint64, wrapped by FromRaw */
        {"99999999999999999999", OM_ANYVALUE_DOUBLE, "100000000000000000000"},
        {"1.5", OM_ANYVALUE_DOUBLE, "1.5"},
        {"08", OM_ANYVALUE_DOUBLE, "8"}, /* not octal: a float */
        {"1.", OM_ANYVALUE_DOUBLE, "1"},
        {".5", OM_ANYVALUE_DOUBLE, "0.5"},
        {"1e3", OM_ANYVALUE_DOUBLE, "1000"},
        {"1e-7", OM_ANYVALUE_DOUBLE, "1e-7"},
        {"1e21", OM_ANYVALUE_DOUBLE, "1e+21"},
        {"1e400", OM_ANYVALUE_STRING, "1e400"},
        {".inf", OM_ANYVALUE_DOUBLE, "json: unsupported value: +Inf"},
        {"-.Inf", OM_ANYVALUE_DOUBLE, "json: unsupported value: -Inf"},
        {".NaN", OM_ANYVALUE_DOUBLE, "json: unsupported value: NaN"},
        {"2001-12-14", OM_ANYVALUE_STRING, "2001-12-14"},
        {"1.2.3", OM_ANYVALUE_STRING, "1.2.3"},
        {"0x", OM_ANYVALUE_STRING, "0x"},
        {"[1, a, true, ~]", OM_ANYVALUE_ARRAY, "[1,\"a\",true,null]"},
        {"{b: 2, a: '<x>'}", OM_ANYVALUE_KVLIST, "{\"a\":\"\\u003cx\\u003e\",\"b\":2}"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int kind;
        const char *got = any_of(cases[i].yaml, &kind);
        if (kind != cases[i].kind || strcmp(got, cases[i].as_string) != 0) {
            fprintf(stderr, "    case %s: kind %d \"%s\"\n", cases[i].yaml, kind, got);
        }
        ASSERT_EQ_INT(kind, cases[i].kind);
        ASSERT_EQ_STR(got, cases[i].as_string);
    }
    int kind;
    ASSERT_EQ_STR(any_of("~", &kind), "(null)");
    ASSERT_EQ_STR(any_of("", &kind), "(null)");
    ASSERT_EQ_STR(any_of("''", &kind), "");
    ASSERT_EQ_INT(kind, OM_ANYVALUE_STRING);
}

static void test_seclist_alloc_failures(void)
{
    const char *yaml = "actions:\n"
                       "  - {key: a, value: [1, {x: y}]}\n"
                       "  - {key: b, value: z}\n"
                       "any: {p: [q]}\n";
    /* Every allocation that can fail, failed in turn: a problem or success, never a leak or a
     * crash (ASan checks the leaks). */
    for (unsigned long n = 1; n < 200; n++) {
        list_cfg_t c = {0};
        om_config_free(conf);
        conf = NULL;
        om_diags_free(&diags);
        if (om_config_load_string("t.yaml", yaml, strlen(yaml), &conf, &diags) != 0) {
            break;
        }
        om_alloc_fail_after(n);
        int problems = om_fields_apply(list_fields, &c, conf->root, "receivers::t", &diags);
        om_alloc_fail_after(0);
        om_fields_free(list_fields, &c);
        if (problems == 0) {
            break;
        }
    }
}

int main(void)
{
    om_log_set_level(OM_LOG_ERROR);
    OM_RUN(test_defaults);
    OM_RUN(test_all_values);
    OM_RUN(test_null_values_keep_defaults);
    OM_RUN(test_type_errors);
    OM_RUN(test_bounds);
    OM_RUN(test_unknown_keys);
    OM_RUN(test_nested_element_errors);
    OM_RUN(test_refused_keys);
    OM_RUN(test_required);
    OM_RUN(test_bad_defaults);
    OM_RUN(test_free_zeroed_and_partial);
    OM_RUN(test_node_fields);
    OM_RUN(test_alloc_failures);
    OM_RUN(test_parse_duration);
    OM_RUN(test_parse_size);
    OM_RUN(test_parse_bool);
    OM_RUN(test_parse_endpoint);
    OM_RUN(test_diag_format);
    OM_RUN(test_seclist);
    OM_RUN(test_anyvalue_typing);
    OM_RUN(test_seclist_alloc_failures);
    om_config_free(conf);
    om_diags_free(&diags);
    return om_test_summary();
}
