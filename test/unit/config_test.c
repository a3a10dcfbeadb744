/* config_test.c: YAML loading (positions, errors, ${env}, merging of files, anchors). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "om_test.h"

static om_diags_t diags;

static void dump_diags(const om_diags_t *d)
{
    for (size_t i = 0; i < d->n; i++) {
        fprintf(stderr, "    diag[%zu]: %s\n", i, d->msgs[i]);
    }
}

/* The diags must be exactly the listed lines, in order. */
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

static int load(const char *yaml, om_config_t **c)
{
    om_diags_free(&diags);
    return om_config_load_string("t.yaml", yaml, strlen(yaml), c, &diags);
}

/* One failing load: exactly one diag, equal to want. */
#define ASSERT_LOAD_FAILS(yaml, want)                                                              \
    do {                                                                                           \
        om_config_t *c_ = NULL;                                                                    \
        ASSERT_EQ_INT(load((yaml), &c_), OM_ECONFIG);                                              \
        ASSERT_TRUE(c_ == NULL);                                                                   \
        ASSERT_DIAGS(&diags, want);                                                                \
    } while (0)

static const om_node_t *path_get(const om_node_t *n, const char *a, const char *b, const char *c)
{
    n = om_node_get(n, a);
    if (b != NULL) {
        n = om_node_get(n, b);
    }
    if (c != NULL) {
        n = om_node_get(n, c);
    }
    return n;
}

static void test_positions(void)
{
    const char *y = "receivers:\n"
                    "  otlp:\n"
                    "    protocols:\n"
                    "      grpc:\n"
                    "        endpoint: \"0.0.0.0:4317\"\n"
                    "      http:\n"
                    "exporters:\n"
                    "  debug: {verbosity: detailed}\n"
                    "list:\n"
                    "- a\n"
                    "- 'b'\n"
                    "- ~\n"
                    "- null\n"
                    "- |\n"
                    "  block\n";
    om_config_t *c = NULL;
    ASSERT_EQ_INT(load(y, &c), 0);
    const om_node_t *r = c->root;
    ASSERT_EQ_INT(r->kind, OM_NODE_MAP);
    ASSERT_EQ_UINT(r->n, 3);
    ASSERT_EQ_STR(r->keys[0]->str, "receivers");
    ASSERT_EQ_UINT(r->keys[0]->line, 1);
    ASSERT_EQ_UINT(r->keys[0]->col, 1);
    ASSERT_EQ_STR(r->file, "t.yaml");
    const om_node_t *otlp = path_get(r, "receivers", "otlp", NULL);
    ASSERT_EQ_INT(otlp->kind, OM_NODE_MAP);
    ASSERT_EQ_UINT(otlp->line, 3);
    ASSERT_EQ_UINT(otlp->col, 5);
    const om_node_t *protos = om_node_get(otlp, "protocols");
    const om_node_t *ep = path_get(protos, "grpc", "endpoint", NULL);
    ASSERT_EQ_INT(ep->kind, OM_NODE_SCALAR);
    ASSERT_EQ_STR(ep->str, "0.0.0.0:4317");
    ASSERT_TRUE(ep->quoted);
    ASSERT_EQ_UINT(ep->line, 5);
    ASSERT_EQ_UINT(ep->col, 19);
    ASSERT_EQ_INT(om_node_get(protos, "http")->kind, OM_NODE_NULL);
    ASSERT_TRUE(om_node_get(protos, "nope") == NULL);
    const om_node_t *debug = path_get(r, "exporters", "debug", NULL);
    ASSERT_EQ_INT(debug->kind, OM_NODE_MAP);
    ASSERT_EQ_UINT(debug->line, 8);
    ASSERT_EQ_UINT(debug->col, 10);
    ASSERT_EQ_STR(om_node_get(debug, "verbosity")->str, "detailed");
    ASSERT_EQ_UINT(om_node_get(debug, "verbosity")->col, 22);
    const om_node_t *l = om_node_get(r, "list");
    ASSERT_EQ_INT(l->kind, OM_NODE_SEQ);
    ASSERT_EQ_UINT(l->n, 5);
    ASSERT_EQ_STR(l->values[0]->str, "a");
    ASSERT_TRUE(!l->values[0]->quoted);
    ASSERT_EQ_STR(l->values[1]->str, "b");
    ASSERT_TRUE(l->values[1]->quoted);
    ASSERT_EQ_INT(l->values[2]->kind, OM_NODE_NULL);
    ASSERT_EQ_INT(l->values[3]->kind, OM_NODE_NULL);
    ASSERT_EQ_INT(l->values[4]->kind, OM_NODE_SCALAR);
    ASSERT_TRUE(l->values[4]->quoted);
    ASSERT_EQ_STR(l->values[4]->str, "block\n");
    ASSERT_EQ_UINT(l->values[4]->line, 14);
    ASSERT_TRUE(om_node_get(l, "a") == NULL);
    ASSERT_TRUE(om_node_get(NULL, "a") == NULL);
    ASSERT_EQ_UINT(c->n_files, 1);
    ASSERT_EQ_STR(c->files[0], "t.yaml");
    om_config_free(c);
}

static void test_empty_documents(void)
{
    const char *empties[] = {"", "# only a comment\n", "~\n", "---\n", "null"};
    for (size_t i = 0; i < sizeof empties / sizeof empties[0]; i++) {
        om_config_t *c = NULL;
        ASSERT_EQ_INT(load(empties[i], &c), 0);
        ASSERT_EQ_INT(c->root->kind, OM_NODE_MAP);
        ASSERT_EQ_UINT(c->root->n, 0);
        om_config_free(c);
    }
    om_config_t *c = NULL;
    ASSERT_EQ_INT(om_config_load_string("x", NULL, 0, &c, &diags), 0);
    ASSERT_EQ_UINT(c->root->n, 0);
    om_config_free(c);
}

static void test_syntax_errors(void)
{
    ASSERT_LOAD_FAILS("a: b\n  c: d\n",
                      "t.yaml:2:4: mapping values are not allowed in this context");
    ASSERT_LOAD_FAILS("a: [1, 2\n", "t.yaml:2:1: did not find expected ',' or ']' (while "
                                    "parsing a flow sequence at line 1, column 4)");
    ASSERT_LOAD_FAILS("a: \"x\n", "t.yaml:2:1: found unexpected end of stream (while scanning "
                                  "a quoted scalar at line 1, column 4)");
    ASSERT_LOAD_FAILS("a:\n\tb: 1\n", "t.yaml:2:1: found character that cannot start any token "
                                      "(tabs cannot be used for indentation)");
    ASSERT_LOAD_FAILS("a:\n  - b\n  c: d\n", "t.yaml:3:3: did not find expected '-' indicator "
                                             "(while parsing a block collection at line 2, "
                                             "column 3)");
    ASSERT_LOAD_FAILS("a: \xff\n", "t.yaml:1:4: invalid leading UTF-8 octet");
    ASSERT_LOAD_FAILS("a: @x\n", "t.yaml:1:4: found character that cannot start any token");
}

static void test_structure_errors(void)
{
    ASSERT_LOAD_FAILS("- a\n- b\n", "t.yaml:1:1: the top level must be a map, got a sequence");
    ASSERT_LOAD_FAILS("hello\n", "t.yaml:1:1: the top level must be a map, got a scalar");
    ASSERT_LOAD_FAILS("? [a]\n: b\n", "t.yaml:1:3: map keys must be scalars, got a sequence");
    ASSERT_LOAD_FAILS("a: \"x\\0y\"\n", "t.yaml:1:4: NUL characters are not allowed in values");

    /* Nesting is bounded, so no recursive walk of a tree can run out of stack. */
    char deep[600];
    size_t n = 0;
    n += (size_t)snprintf(deep, sizeof deep, "a: ");
    for (int i = 0; i < 200; i++) {
        deep[n++] = '[';
    }
    for (int i = 0; i < 200; i++) {
        deep[n++] = ']';
    }
    deep[n] = '\0';
    ASSERT_LOAD_FAILS(deep, "t.yaml:1:131: nesting deeper than 128 levels");
}

static void test_duplicate_keys(void)
{
    om_config_t *c = NULL;
    ASSERT_EQ_INT(load("a: 1\nb: 2\na: 3\nm:\n  x: 1\n  y: 2\n  x: 3\n  x: 4\n", &c), OM_ECONFIG);
    ASSERT_TRUE(c == NULL);
    ASSERT_DIAGS(&diags, "t.yaml:7:3: mapping key \"x\" already defined at line 5",
                 "t.yaml:8:3: mapping key \"x\" already defined at line 5",
                 "t.yaml:3:1: mapping key \"a\" already defined at line 1");
    ASSERT_LOAD_FAILS("a: {b: 1, b: 2}\n", "t.yaml:1:11: mapping key \"b\" already defined at "
                                           "line 1");
    /* Quoting does not make a key different. */
    ASSERT_LOAD_FAILS("a: 1\n'a': 2\n", "t.yaml:2:1: mapping key \"a\" already defined at line 1");
}

static void test_expand_env(void)
{
    setenv("OM_T_A", "hello", 1);
    setenv("OM_T_EMPTY", "", 1);
    unsetenv("OM_T_UNSET");
    struct {
        const char *in, *out;
    } ok[] = {
        {"${env:OM_T_A}", "hello"},
        {"${OM_T_A}", "hello"},
        {"a-${env:OM_T_A}-b", "a-hello-b"},
        {"${OM_T_A}${OM_T_A}", "hellohello"},
        {"$$", "$"},
        {"$${env:OM_T_A}", "${env:OM_T_A}"},
        {"$$$${OM_T_A}", "$${OM_T_A}"},
        {"$$${OM_T_A}", "$hello"},
        {"cost $5 x$", "cost $5 x$"},
        {"$OM_T_A", "$OM_T_A"},
        {"${env:OM_T_UNSET:-dflt}", "dflt"},
        {"${OM_T_UNSET:-dflt}", "dflt"},
        {"${env:OM_T_UNSET:-http://x:1/}", "http://x:1/"},
        {"${env:OM_T_UNSET:-}", ""},
        {"${env:OM_T_A:-dflt}", "hello"},
        {"${env:OM_T_EMPTY:-dflt}", ""},
        {"[${env:OM_T_UNSET}]", "[]"},
        {"", ""},
        {"no refs", "no refs"},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        om_err_t err = {0};
        char *s = om_config_expand_env(ok[i].in, &err);
        if (s == NULL || strcmp(s, ok[i].out) != 0) {
            fprintf(stderr, "    input: %s\n", ok[i].in);
        }
        ASSERT_EQ_STR(s, ok[i].out);
        ASSERT_EQ_INT(err.code, 0);
        om_free(s);
    }
    struct {
        const char *in, *msg;
    } bad[] = {
        {"${env:", "invalid reference \"${env:\": missing closing '}'"},
        {"x ${OM_T_A", "invalid reference \"${OM_T_A\": missing closing '}'"},
        {"${file:/nonexistent/x}", "/nonexistent/x: cannot read: No such file or directory"},
        {"${yaml:a: 1}", "unsupported scheme \"yaml\" in \"${yaml:a: 1}\": otelmon resolves env "
                         "and file"},
        {"${env:1BAD}", "environment variable \"1BAD\" has invalid name: must match regex "
                        "^[a-zA-Z_][a-zA-Z0-9_]*$"},
        {"${}", "environment variable \"\" has invalid name: must match regex "
                "^[a-zA-Z_][a-zA-Z0-9_]*$"},
        {"${env:A-B}", "environment variable \"A-B\" has invalid name: must match regex "
                       "^[a-zA-Z_][a-zA-Z0-9_]*$"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        om_err_t err = {0};
        ASSERT_TRUE(om_config_expand_env(bad[i].in, &err) == NULL);
        ASSERT_EQ_INT(err.code, OM_ECONFIG);
        ASSERT_EQ_STR(err.msg, bad[i].msg);
    }
}

static void test_env_in_yaml(void)
{
    setenv("OM_T_PORT", "4317", 1);
    setenv("OM_T_TRUE", "true", 1);
    unsetenv("OM_T_UNSET");
    const char *y = "a: \"${env:OM_T_PORT}\"\n"
                    "b: \"x${env:OM_T_PORT}\"\n"
                    "c: ${env:OM_T_UNSET}\n"
                    "d: '${env:OM_T_UNSET}'\n"
                    "e: ${OM_T_TRUE}\n"
                    "f: $${OM_T_PORT}\n"
                    "${OM_T_PORT}: key\n"
                    "g: ${env:OM_T_UNSET:-~}\n"
                    "h: \"${env:OM_T_UNSET:-~}x\"\n";
    om_config_t *c = NULL;
    ASSERT_EQ_INT(load(y, &c), 0);
    const om_node_t *r = c->root;
    /* A value that is one whole reference is typed like the expanded text, quotes or not. */
    ASSERT_EQ_STR(om_node_get(r, "a")->str, "4317");
    ASSERT_TRUE(!om_node_get(r, "a")->quoted);
    ASSERT_EQ_STR(om_node_get(r, "b")->str, "x4317");
    ASSERT_TRUE(om_node_get(r, "b")->quoted);
    ASSERT_EQ_INT(om_node_get(r, "c")->kind, OM_NODE_NULL);
    ASSERT_EQ_INT(om_node_get(r, "d")->kind, OM_NODE_NULL);
    ASSERT_EQ_STR(om_node_get(r, "e")->str, "true");
    ASSERT_EQ_STR(om_node_get(r, "f")->str, "${OM_T_PORT}");
    /* Keys are not expanded. */
    ASSERT_EQ_STR(om_node_get(r, "${OM_T_PORT}")->str, "key");
    ASSERT_EQ_INT(om_node_get(r, "g")->kind, OM_NODE_NULL);
    ASSERT_EQ_STR(om_node_get(r, "h")->str, "~x");
    om_config_free(c);

    ASSERT_LOAD_FAILS("a: 1\nb: \"${env:\"\n",
                      "t.yaml:2:4: invalid reference \"${env:\": missing closing '}'");
    ASSERT_LOAD_FAILS("a:\n  b: ${http://x}\n", "t.yaml:2:6: unsupported scheme \"http\" in "
                                                "\"${http://x}\": otelmon resolves env and "
                                                "file");
}

static void test_anchors(void)
{
    const char *y = "common: &c\n"
                    "  endpoint: x:1\n"
                    "  timeout: 5s\n"
                    "a: *c\n"
                    "b:\n"
                    "  <<: *c\n"
                    "  timeout: 10s\n"
                    "list: &l [1, 2]\n"
                    "l2: *l\n"
                    "s: &s hello\n"
                    "t: *s\n"
                    "m:\n"
                    "  <<: [{p: 1, q: 1}, {q: 2, r: 2}]\n"
                    "  r: 3\n";
    om_config_t *c = NULL;
    ASSERT_EQ_INT(load(y, &c), 0);
    const om_node_t *r = c->root;
    const om_node_t *a = om_node_get(r, "a");
    ASSERT_EQ_INT(a->kind, OM_NODE_MAP);
    ASSERT_EQ_UINT(a->line, 4);
    ASSERT_EQ_UINT(a->col, 4);
    ASSERT_EQ_STR(om_node_get(a, "endpoint")->str, "x:1");
    /* Inner nodes of a copy point at the anchored text. */
    ASSERT_EQ_UINT(om_node_get(a, "endpoint")->line, 2);
    ASSERT_TRUE(om_node_get(a, "endpoint") != path_get(r, "common", "endpoint", NULL));
    const om_node_t *b = om_node_get(r, "b");
    ASSERT_EQ_UINT(b->n, 2);
    ASSERT_TRUE(om_node_get(b, "<<") == NULL);
    ASSERT_EQ_STR(om_node_get(b, "timeout")->str, "10s");
    ASSERT_EQ_STR(om_node_get(b, "endpoint")->str, "x:1");
    ASSERT_EQ_UINT(om_node_get(r, "l2")->n, 2);
    ASSERT_EQ_STR(om_node_get(r, "l2")->values[1]->str, "2");
    ASSERT_EQ_STR(om_node_get(r, "t")->str, "hello");
    const om_node_t *m = om_node_get(r, "m");
    ASSERT_EQ_UINT(m->n, 3);
    ASSERT_EQ_STR(om_node_get(m, "p")->str, "1");
    ASSERT_EQ_STR(om_node_get(m, "q")->str, "1");
    ASSERT_EQ_STR(om_node_get(m, "r")->str, "3");
    om_config_free(c);

    ASSERT_LOAD_FAILS("a: *nope\n", "t.yaml:1:4: unknown anchor 'nope' referenced");
    ASSERT_LOAD_FAILS("a: &x [*x]\n", "t.yaml:1:8: anchor 'x' value contains itself");
    ASSERT_LOAD_FAILS("a: 1\nb:\n  <<: 5\n",
                      "t.yaml:3:7: map merge requires map or sequence of maps as the value");
    ASSERT_LOAD_FAILS("a: 1\nb:\n  <<: [{x: 1}, 2]\n",
                      "t.yaml:3:7: map merge requires map or sequence of maps as the value");
}

static void test_alias_bomb(void)
{
    const char *y = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
                    "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                    "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
                    "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                    "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
                    "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
                    "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
                    "h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]\n";
    om_config_t *c = NULL;
    ASSERT_EQ_INT(load(y, &c), OM_ECONFIG);
    ASSERT_TRUE(c == NULL);
    ASSERT_EQ_UINT(diags.n, 1);
    ASSERT_CONTAINS(diags.msgs[0], "document too large: more than 200000 nodes");
    ASSERT_EQ_INT(strncmp(diags.msgs[0], "t.yaml:6:", 9), 0);

    /* Aliases may not nest deeper than the limit either. */
    char deep[1024];
    size_t n = (size_t)snprintf(deep, sizeof deep, "a: &a ");
    for (int i = 0; i < 100; i++) {
        deep[n++] = '[';
    }
    for (int i = 0; i < 100; i++) {
        deep[n++] = ']';
    }
    n += (size_t)snprintf(deep + n, sizeof deep - n,
                          "\nb: [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[*a]]]]]"
                          "]]]]]]]]]]]]]]]]]]]]]]]]]\n");
    ASSERT_EQ_INT(load(deep, &c), OM_ECONFIG);
    ASSERT_EQ_UINT(diags.n, 1);
    ASSERT_CONTAINS(diags.msgs[0], "nesting deeper than 128 levels (through aliases)");
}

static void test_multiple_documents(void)
{
    om_config_t *c = NULL;
    ASSERT_EQ_INT(load("a: 1\n---\nb: 2\n", &c), 0);
    ASSERT_EQ_UINT(c->root->n, 1);
    ASSERT_EQ_STR(om_node_get(c->root, "a")->str, "1");
    om_config_free(c);
}

/* Writes text to a new temporary file; path receives its name. */
static int write_temp(const char *text, char *path, size_t cap)
{
    const char *dir = getenv("TMPDIR");
    snprintf(path, cap, "%s/om_config_test_XXXXXX", dir != NULL ? dir : "/tmp");
    int fd = mkstemp(path);
    if (fd < 0) {
        return -1;
    }
    size_t len = strlen(text);
    ssize_t w = write(fd, text, len);
    close(fd);
    return w == (ssize_t)len ? 0 : -1;
}

static void test_merge_files(void)
{
    const char *y1 = "receivers:\n"
                     "  otlp:\n"
                     "    protocols:\n"
                     "      grpc:\n"
                     "        endpoint: a:1\n"
                     "exporters:\n"
                     "  debug: {}\n"
                     "service:\n"
                     "  pipelines:\n"
                     "    traces:\n"
                     "      receivers: [otlp]\n"
                     "      exporters: [debug, x]\n";
    const char *y2 = "receivers:\n"
                     "  otlp:\n"
                     "    protocols:\n"
                     "      grpc:\n"
                     "        endpoint: b:2\n"
                     "      http:\n"
                     "service:\n"
                     "  pipelines:\n"
                     "    traces:\n"
                     "      exporters: [otlp]\n"
                     "processors:\n"
                     "  batch:\n"
                     "exporters: ~\n";
    char p1[512], p2[512];
    ASSERT_EQ_INT(write_temp(y1, p1, sizeof p1), 0);
    ASSERT_EQ_INT(write_temp(y2, p2, sizeof p2), 0);
    const char *files[] = {p1, p2};
    om_config_t *c = NULL;
    om_diags_free(&diags);
    int rc = om_config_load(NULL, files, 2, &c, &diags);
    unlink(p1);
    unlink(p2);
    dump_diags(&diags);
    ASSERT_EQ_INT(rc, 0);
    ASSERT_EQ_UINT(c->n_files, 2);
    const om_node_t *r = c->root;
    const om_node_t *protos = path_get(r, "receivers", "otlp", "protocols");
    const om_node_t *ep = path_get(protos, "grpc", "endpoint", NULL);
    ASSERT_EQ_STR(ep->str, "b:2");
    ASSERT_EQ_STR(ep->file, p2);
    ASSERT_EQ_UINT(ep->line, 5);
    ASSERT_TRUE(om_node_get(protos, "http") != NULL);
    const om_node_t *traces = path_get(r, "service", "pipelines", "traces");
    ASSERT_EQ_UINT(om_node_get(traces, "receivers")->n, 1);
    /* Sequences replace, they do not append. */
    const om_node_t *exps = om_node_get(traces, "exporters");
    ASSERT_EQ_UINT(exps->n, 1);
    ASSERT_EQ_STR(exps->values[0]->str, "otlp");
    ASSERT_TRUE(om_node_get(r, "processors") != NULL);
    /* A null replaces a map too (otelcol's merge). */
    ASSERT_EQ_INT(om_node_get(r, "exporters")->kind, OM_NODE_NULL);
    ASSERT_EQ_STR(r->keys[0]->str, "receivers");
    ASSERT_EQ_STR(r->keys[r->n - 1]->str, "processors");
    om_config_free(c);
}

static void test_load_file_errors(void)
{
    char p1[512], p2[512];
    ASSERT_EQ_INT(write_temp("a: 1\na: 2\n", p1, sizeof p1), 0);
    ASSERT_EQ_INT(write_temp("- x\n", p2, sizeof p2), 0);
    const char *files[] = {"/nonexistent/otelmon.yaml", p1, p2, "/"};
    om_config_t *c = NULL;
    om_diags_free(&diags);
    int rc = om_config_load(NULL, files, 4, &c, &diags);
    unlink(p1);
    unlink(p2);
    ASSERT_EQ_INT(rc, OM_ECONFIG);
    ASSERT_TRUE(c == NULL);
    char e1[600], e2[600];
    snprintf(e1, sizeof e1, "%s:2:1: mapping key \"a\" already defined at line 1", p1);
    snprintf(e2, sizeof e2, "%s:1:1: the top level must be a map, got a sequence", p2);
    ASSERT_DIAGS(&diags, "/nonexistent/otelmon.yaml: cannot read: No such file or directory", e1,
                 e2, "/: cannot read: Is a directory");
}

/* ${file:PATH}: the file's content without its final newline; typed as YAML when it is the
 * whole value. */
static void test_file_references(void)
{
    char p1[512];
    ASSERT_EQ_INT(write_temp("s3cret\n", p1, sizeof p1), 0);
    char y[1200];
    snprintf(y, sizeof y, "a: ${file:%s}\nb: \"Bearer ${file:%s}\"\n", p1, p1);
    om_config_t *c = NULL;
    ASSERT_EQ_INT(load(y, &c), 0);
    unlink(p1);
    ASSERT_EQ_STR(om_node_get(c->root, "a")->str, "s3cret");
    ASSERT_EQ_STR(om_node_get(c->root, "b")->str, "Bearer s3cret");
    om_config_free(c);
}

/* --config sources other than files: env:VAR and yaml:TEXT, merged in order over defaults,
 * with "::" in keys as nested keys (otelcol's confmap), and positions named by the URI. */
static void test_config_uris(void)
{
    setenv("OM_T_CFG", "receivers:\n  otlp:\n    protocols: {grpc: {endpoint: 'e:1'}}\n", 1);
    const char *uris[] = {"env:OM_T_CFG", "yaml:receivers::otlp::protocols::grpc::endpoint: e:2",
                          "yaml:exporters::debug::verbosity: detailed"};
    om_config_t *c = NULL;
    om_diags_free(&diags);
    ASSERT_EQ_INT(om_config_load("processors: {batch: {timeout: 1s}}\n", uris, 3, &c, &diags), 0);
    const om_node_t *ep = path_get(c->root, "receivers", "otlp", "protocols");
    ep = path_get(ep, "grpc", "endpoint", NULL);
    ASSERT_EQ_STR(ep->str, "e:2");
    ASSERT_EQ_STR(ep->file, uris[1]);
    ASSERT_EQ_UINT(ep->line, 1);
    ASSERT_EQ_STR(path_get(c->root, "exporters", "debug", "verbosity")->str, "detailed");
    ASSERT_EQ_STR(path_get(c->root, "processors", "batch", "timeout")->str, "1s");
    om_config_free(c);

    /* "::" keys merge with the written ones, in any source. */
    ASSERT_EQ_INT(load("a:\n  b: 1\na::c: 2\na::b: 3\nx::y::z: 4\n", &c), 0);
    ASSERT_EQ_STR(path_get(c->root, "a", "b", NULL)->str, "3");
    ASSERT_EQ_STR(path_get(c->root, "a", "c", NULL)->str, "2");
    ASSERT_EQ_STR(path_get(c->root, "x", "y", "z")->str, "4");
    ASSERT_EQ_UINT(c->root->n, 2);
    om_config_free(c);

    /* An error in an env: source carries its URI and position. */
    setenv("OM_T_BAD", "a: 1\na: 2\n", 1);
    const char *bad[] = {"env:OM_T_BAD", "http://example.com/c.yaml", "s3:bucket/c.yaml", "env:1X"};
    om_diags_free(&diags);
    ASSERT_EQ_INT(om_config_load(NULL, bad, 4, &c, &diags), OM_ECONFIG);
    ASSERT_DIAGS(&diags, "env:OM_T_BAD:2:1: mapping key \"a\" already defined at line 1",
                 "http://example.com/c.yaml: http and https config URIs are not supported by "
                 "otelmon: fetch the file and pass its path",
                 "unsupported scheme on URI \"s3:bucket/c.yaml\"",
                 "env:1X: environment variable \"1X\" has invalid name: must match regex "
                 "^[a-zA-Z_][a-zA-Z0-9_]*$");
    unsetenv("OM_T_CFG");
    unsetenv("OM_T_BAD");
}

static void test_load_no_files(void)
{
    om_config_t *c = NULL;
    om_diags_free(&diags);
    ASSERT_EQ_INT(om_config_load(NULL, NULL, 0, &c, &diags), 0);
    ASSERT_EQ_INT(c->root->kind, OM_NODE_MAP);
    ASSERT_EQ_UINT(c->root->n, 0);
    om_config_free(c);
    om_config_free(NULL);
}

/* Every allocation failure is reported as such and leaks nothing (ASan checks the leaks). */
static void test_alloc_failures(void)
{
    const char *y = "a: &a {x: 1, y: [1, 2], z: \"${env:OM_T_UNSET:-q}\"}\n"
                    "b:\n  <<: *a\n  w: 2\n"
                    "c: *a\n";
    bool saw_success = false;
    for (unsigned long n = 1; n < 400 && !saw_success; n++) {
        om_config_t *c = NULL;
        om_diags_free(&diags);
        om_alloc_fail_after(n);
        int rc = om_config_load_string("t.yaml", y, strlen(y), &c, &diags);
        om_alloc_fail_after(0);
        if (rc == 0) {
            saw_success = true;
            ASSERT_EQ_STR(path_get(c->root, "b", "z", NULL)->str, "q");
        } else {
            ASSERT_EQ_INT(rc, OM_ENOMEM);
            ASSERT_TRUE(c == NULL);
        }
        om_config_free(c);
    }
    ASSERT_TRUE(saw_success);
}

int main(void)
{
    om_log_set_level(OM_LOG_ERROR);
    OM_RUN(test_positions);
    OM_RUN(test_empty_documents);
    OM_RUN(test_syntax_errors);
    OM_RUN(test_structure_errors);
    OM_RUN(test_duplicate_keys);
    OM_RUN(test_expand_env);
    OM_RUN(test_env_in_yaml);
    OM_RUN(test_anchors);
    OM_RUN(test_alias_bomb);
    OM_RUN(test_multiple_documents);
    OM_RUN(test_merge_files);
    OM_RUN(test_load_file_errors);
    OM_RUN(test_load_no_files);
    OM_RUN(test_file_references);
    OM_RUN(test_config_uris);
    OM_RUN(test_alloc_failures);
    om_diags_free(&diags);
    return om_test_summary();
}
