/* attraction_test.c: the attribute actions one by one, for each value type, in order, and
 * their config errors; for every case, that the read-only check (would_change) says exactly
 * whether applying changes the list. */
#include <stdlib.h>

#include "attraction.h"
#include "config.h"
#include "om_test.h"
#include "om_testdata.h"

typedef struct test_cfg {
    om_seclist_t actions;
} test_cfg_t;

static const om_field_t table[] = {
    {.key = "actions",
     .type = OM_F_SECLIST,
     .offset = offsetof(test_cfg_t, actions),
     .fields = proc_attraction_fields,
     .elem_size = sizeof(proc_attraction_cfg_t)},
    {.key = NULL},
};

/* A compiled action list and what it was made from. */
typedef struct compiled {
    om_config_t *yaml;
    test_cfg_t cfg;
    proc_attraction_t *p;
    om_err_t err;
    int rc;
} compiled_t;

/* Compile "actions: <flow>" (e.g. "[{key: a, action: delete}]"). */
static void compile(compiled_t *c, const char *flow)
{
    memset(c, 0, sizeof *c);
    char text[2048];
    snprintf(text, sizeof text, "actions: %s\n", flow);
    om_diags_t d = {0};
    c->rc = om_config_load_string("t.yaml", text, strlen(text), &c->yaml, &d);
    if (c->rc == 0 && om_fields_apply(table, &c->cfg, c->yaml->root, "t", &d) != 0) {
        c->rc = OM_ECONFIG;
    }
    for (size_t i = 0; i < d.n; i++) {
        fprintf(stderr, "    %s\n", d.msgs[i]);
    }
    om_diags_free(&d);
    if (c->rc == 0) {
        c->rc = proc_attraction_validate(&c->cfg.actions, "actions", &c->err);
    }
    if (c->rc == 0) {
        c->rc = proc_attraction_new(&c->cfg.actions, "actions", &c->p, &c->err);
    }
}

static void release(compiled_t *c)
{
    proc_attraction_free(c->p);
    om_fields_free(table, &c->cfg);
    om_config_free(c->yaml);
}

/* The attributes of a list as "k=<kind>:<text> ...", kinds s, i, d, b (bool), x (bytes), a
 * (array), m (map), e (unset). */
static const char *describe(const om_attrs_t *a)
{
    static char out[4][1024];
    static int turn;
    char *o = out[turn++ % 4];
    om_strbuf_t sb;
    om_strbuf_init(&sb, 0);
    om_strbuf_puts(&sb, "");
    for (size_t i = 0; i < om_attrs_count(a); i++) {
        const om_keyvalue_t *kv = om_attrs_at(a, i);
        static const char kinds[] = "esbidamx";
        int k = kv->value != NULL ? (int)kv->value->value_case : 0;
        om_strbuf_printf(&sb, "%s%s=%c:", i > 0 ? " " : "", kv->key, kinds[k]);
        om_anyvalue_to_string(kv->value, &sb);
    }
    snprintf(o, 1024, "%s", sb.data);
    om_strbuf_free(&sb);
    return o;
}

/* Apply the actions to a span with the given attributes ("a=1 b='x'"); returns the
 * attributes after, and checks would_change against what happened. */
static const char *run_on(compiled_t *c, const char *attrs, bool *check_ok)
{
    om_batch_t *b = om_testdata_otlp("span s %s", attrs);
    om_err_t err = {0};
    om_batch_edit(&b, &err);
    om_span_t *span = b->traces->resource_spans[0]->scope_spans[0]->spans[0];
    om_attrs_t a = OM_ATTRS(b, span);
    char before[1024];
    snprintf(before, sizeof before, "%s", describe(&a));
    bool predicted = proc_attraction_would_change(c->p, &a);
    int rc = proc_attraction_apply(c->p, &a);
    const char *after = describe(&a);
    bool changed = strcmp(before, after) != 0;
    /* The check may say yes for a list that ends as it began (an insert a later action
     * deletes), never no for one that changes. */
    *check_ok = rc >= 0 && (predicted || !changed);
    if (!*check_ok) {
        fprintf(stderr, "    would_change %d, changed %d (rc %d): %s -> %s\n", predicted, changed,
                rc, before, after);
    }
    om_batch_release(b);
    return after;
}

#define EXPECT(flow, attrs, want)                                                                  \
    do {                                                                                           \
        compiled_t c_;                                                                             \
        compile(&c_, (flow));                                                                      \
        if (c_.rc != 0) {                                                                          \
            fprintf(stderr, "    %s: %s\n", c_.err.at, c_.err.msg);                                \
        }                                                                                          \
        ASSERT_EQ_INT(c_.rc, 0);                                                                   \
        bool ok_;                                                                                  \
        const char *got_ = run_on(&c_, (attrs), &ok_);                                             \
        release(&c_);                                                                              \
        ASSERT_TRUE(ok_);                                                                          \
        ASSERT_EQ_STR(got_, (want));                                                               \
    } while (0)

static void test_insert(void)
{
    EXPECT("[{key: n, action: insert, value: 2245}]", "a=1", "a=i:1 n=i:2245");
    EXPECT("[{key: n, action: insert, value: 1.5}]", "a=1", "a=i:1 n=d:1.5");
    EXPECT("[{key: n, action: insert, value: true}]", "", "n=b:true");
    EXPECT("[{key: n, action: insert, value: '7'}]", "", "n=s:7");
    EXPECT("[{key: n, action: insert, value: [1, x]}]", "", "n=a:[1,\"x\"]");
    EXPECT("[{key: n, action: insert, value: {k: v}}]", "", "n=m:{\"k\":\"v\"}");
    /* Present: left alone. */
    EXPECT("[{key: a, action: insert, value: 2}]", "a=1", "a=i:1");
    /* Upper case actions are accepted, as otelcol lowers them. */
    EXPECT("[{key: n, action: INSERT, value: x}]", "", "n=s:x");
}

static void test_update_upsert(void)
{
    EXPECT("[{key: a, action: update, value: x}]", "a=1 b=2", "a=s:x b=i:2");
    EXPECT("[{key: z, action: update, value: x}]", "a=1", "a=i:1");
    EXPECT("[{key: a, action: update, value: 1}]", "a=1", "a=i:1"); /* equal: no change */
    EXPECT("[{key: a, action: upsert, value: 2.5}]", "a=1", "a=d:2.5");
    EXPECT("[{key: z, action: upsert, value: false}]", "a=1", "a=i:1 z=b:false");
    EXPECT("[{key: a, action: upsert, value: 1}]", "a=1", "a=i:1");
    EXPECT("[{key: a, action: upsert, value: 1.0}]", "a=1", "a=d:1"); /* 1.0 is not 1 */
}

static void test_from_attribute_and_default(void)
{
    EXPECT("[{key: c, action: insert, from_attribute: a}]", "a='v'", "a=s:v c=s:v");
    EXPECT("[{key: c, action: upsert, from_attribute: a}]", "a=3 c=1", "a=i:3 c=i:3");
    EXPECT("[{key: c, action: upsert, from_attribute: missing}]", "a=3", "a=i:3");
    EXPECT("[{key: a, action: update, from_attribute: a}]", "a=3", "a=i:3");
    EXPECT("[{key: r, action: insert, from_attribute: region, default_value: us-east-1}]", "",
           "r=s:us-east-1");
    EXPECT("[{key: r, action: insert, from_attribute: region, default_value: us-east-1}]",
           "region='eu'", "region=s:eu r=s:eu");
    EXPECT("[{key: r, action: upsert, default_value: 5}]", "r=1", "r=i:5");
    /* A null value (an unset ${env:X} in otelcol) falls back to default_value. */
    EXPECT("[{key: r, action: upsert, value: ~, default_value: d}]", "", "r=s:d");
}

static void test_delete(void)
{
    EXPECT("[{key: password, action: delete}]", "user='u' password='p'", "user=s:u");
    EXPECT("[{key: nothing, action: delete}]", "a=1", "a=i:1");
    EXPECT("[{pattern: '^secret\\.', action: delete}]", "secret.a=1 b=2 secret.c=3 xsecret.d=4",
           "b=i:2 xsecret.d=i:4");
    /* Unanchored, as Go's MatchString. */
    EXPECT("[{pattern: 'token', action: delete}]", "auth_token=1 tokens=2 t=3", "t=i:3");
    EXPECT("[{key: a, pattern: '^b', action: delete}]", "a=1 b=2 c=3", "c=i:3");
}

static void test_hash(void)
{
    EXPECT("[{key: email, action: hash}]", "email='alice@example.com'",
           "email=s:ff8d9819fc0e12bf0d24892e45987e249a28dce836a85cad60e28eaaa8c6d976");
    EXPECT("[{key: id, action: hash}]", "id=2245",
           "id=s:91df0e58e24451873e480a434ac913ec45d00603e21470511a89c1e850e58c87");
    EXPECT("[{key: r, action: hash}]", "r=1.5",
           "r=s:e163f8cb0f7067a7fc78ca859a77f849aea3214f38fb75b884e4a16be725c905");
    EXPECT("[{key: f, action: hash}]", "f=true",
           "f=s:4bf5122f344554c53bde2ebb8cd2b7e3d1600ad631c385a5d7cce23c7785459a");
    EXPECT("[{key: raw, action: hash}]", "raw=0x0102", "raw=s:"); /* bytes: "" as otelcol */
    EXPECT("[{key: missing, action: hash}]", "a=1", "a=i:1");
    EXPECT("[{pattern: '^u', action: hash}]", "u1='x' v='x'",
           "u1=s:2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881 v=s:x");
    /* key and a pattern matching it: hashed twice, as otelcol does. */
    EXPECT("[{key: u1, pattern: '^u', action: hash}]", "u1='x'",
           "u1=s:a57b5956dbc6e02127bbb40c87cb8244196d6d18e0e141936ffcd8cffad457ad");
}

static void test_extract(void)
{
    const char *flow = "[{key: http.url, action: extract, pattern: "
                       "'^(?P<http_protocol>.*):\\/\\/(?P<http_domain>.*)\\/(?P<http_path>.*)$'}]";
    EXPECT(flow, "http.url='https://example.com/a/b'",
           "http.url=s:https://example.com/a/b http_protocol=s:https "
           "http_domain=s:example.com/a http_path=s:b");    /* greedy, as in Go */
    EXPECT(flow, "http.url='no url'", "http.url=s:no url"); /* no match */
    EXPECT(flow, "http.url=5", "http.url=i:5");             /* not a string */
    /* An unset group gives "", and an existing target is overwritten. */
    EXPECT("[{key: v, action: extract, pattern: '(?<a>x)|(?<b>y)'}]", "v='y' a=1",
           "v=s:y a=s: b=s:y");
    /* A group named as the key itself: every group is cut from the value as it was. */
    EXPECT("[{key: v, action: extract, pattern: '(?<v>\\w+)-(?<w>\\w+)'}]", "v='ab-cd'",
           "v=s:ab w=s:cd");
    /* Extracting what is there already changes nothing. */
    EXPECT("[{key: v, action: extract, pattern: '(?<w>b)'}]", "v='abc' w='b'", "v=s:abc w=s:b");
}

static void test_convert(void)
{
    EXPECT("[{key: c, action: convert, converted_type: int}]", "c='123'", "c=i:123");
    EXPECT("[{key: c, action: convert, converted_type: int}]", "c='-7'", "c=i:-7");
    EXPECT("[{key: c, action: convert, converted_type: int}]", "c='12a'", "c=s:12a");
    EXPECT("[{key: c, action: convert, converted_type: int}]", "c='0x10'", "c=s:0x10");
    EXPECT("[{key: c, action: convert, converted_type: int}]", "c=3.9", "c=i:3");
    EXPECT("[{key: c, action: convert, converted_type: int}]", "c=-3.9", "c=i:-3");
    EXPECT("[{key: c, action: convert, converted_type: int}]", "c=true", "c=i:1");
    EXPECT("[{key: c, action: convert, converted_type: int}]", "c=4", "c=i:4");
    EXPECT("[{key: c, action: convert, converted_type: double}]", "c='1.5'", "c=d:1.5");
    EXPECT("[{key: c, action: convert, converted_type: double}]", "c='1e3'", "c=d:1000");
    EXPECT("[{key: c, action: convert, converted_type: double}]", "c=' 1'", "c=s: 1");
    EXPECT("[{key: c, action: convert, converted_type: double}]", "c='1e999'", "c=s:1e999");
    EXPECT("[{key: c, action: convert, converted_type: double}]", "c=2", "c=d:2");
    EXPECT("[{key: c, action: convert, converted_type: double}]", "c=false", "c=d:0");
    EXPECT("[{key: c, action: convert, converted_type: string}]", "c=5", "c=s:5");
    EXPECT("[{key: c, action: convert, converted_type: string}]", "c=0.25", "c=s:0.25");
    EXPECT("[{key: c, action: convert, converted_type: string}]", "c=true", "c=s:true");
    EXPECT("[{key: c, action: convert, converted_type: string}]", "c=0x0a0b", "c=s:Cgs=");
    EXPECT("[{key: c, action: convert, converted_type: string}]", "c='s'", "c=s:s");
    EXPECT("[{key: missing, action: convert, converted_type: int}]", "c=1", "c=i:1");
}

/* Actions run in config order, each on what the one before left. */
static void test_order(void)
{
    EXPECT("[{key: a, action: upsert, value: 1}, {key: a, action: delete}]", "", "");
    EXPECT("[{key: a, action: delete}, {key: a, action: insert, value: 2}]", "a=1", "a=i:2");
    EXPECT("[{key: b, action: insert, from_attribute: a}, {key: a, action: delete},"
           " {key: b, action: convert, converted_type: string}]",
           "a=1", "b=s:1");
    EXPECT("[{key: u, action: extract, pattern: '(?<user>[^@]+)@'}, {key: user, action: hash}]",
           "u='x@y'",
           "u=s:x@y user=s:2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881");
    /* The first action changes nothing; the second does: the check sees it. */
    EXPECT("[{key: a, action: insert, value: 9}, {key: b, action: upsert, value: 9}]", "a=1",
           "a=i:1 b=i:9");
    /* An insert then a delete of the same key: no net change, but the list changes on the way
     * (the check says so, and the batch is edited). */
    compiled_t c;
    compile(&c, "[{key: a, action: upsert, value: 1}, {key: a, action: delete}]");
    om_batch_t *b = om_testdata_otlp("span s b=1");
    om_attrs_t a = OM_ATTRS(b, b->traces->resource_spans[0]->scope_spans[0]->spans[0]);
    ASSERT_TRUE(proc_attraction_would_change(c.p, &a));
    om_batch_release(b);
    release(&c);
}

/* Config errors: otelcol's checks, with the key they are about. */
static void test_config_errors(void)
{
    static const struct {
        const char *flow, *at, *msg;
    } cases[] = {
        {"[{action: insert, value: 1}]", "actions[0]", "missing required field \"key\""},
        {"[{action: delete}]", "actions[0]",
         "missing required field (at least one of \"key\" and \"pattern\" have to be used)"},
        {"[{key: a, action: frobnicate}]", "actions[0]::action",
         "unsupported action \"frobnicate\" (valid values: [insert, update, upsert, delete, "
         "hash, extract, convert])"},
        {"[{key: a}]", "actions[0]",
         "unsupported action \"\" (valid values: [insert, update, upsert, delete, hash, "
         "extract, convert])"},
        {"[{key: a, action: insert}]", "actions[0]",
         "either field \"value\", \"from_attribute\", \"from_context\" or \"default_value\" "
         "setting must be specified"},
        {"[{key: a, action: upsert, value: 1, from_attribute: b}]", "actions[0]",
         "multiple value sources being set"},
        {"[{key: a, action: upsert, value: 1, pattern: x}]", "actions[0]::pattern",
         "action \"upsert\" does not use the \"pattern\" field"},
        {"[{key: a, action: insert, value: 1, converted_type: int}]", "actions[0]::converted_type",
         "action \"insert\" does not use the \"converted_type\" field"},
        {"[{key: a, action: hash, value: 1}]", "actions[0]::value",
         "action \"hash\" does not use \"value\" or \"from_attribute\" field"},
        {"[{key: a, action: delete, pattern: '(x'}]", "actions[0]::pattern",
         "field \"pattern\" has invalid pattern: \"(x\": missing closing parenthesis at offset 2"},
        {"[{key: a, action: extract}]", "actions[0]",
         "missing required field \"pattern\" for action \"extract\""},
        {"[{key: a, action: extract, pattern: 'x+'}]", "actions[0]::pattern",
         "field \"pattern\" contains no named matcher groups"},
        {"[{key: a, action: extract, pattern: '(?P<n>x)(y)'}]", "actions[0]::pattern",
         "field \"pattern\" contains at least one unnamed matcher group"},
        {"[{key: a, action: extract, pattern: '(?P<n>x)', value: 1}]", "actions[0]",
         "action \"extract\" does not use a value source field"},
        {"[{key: a, action: convert}]", "actions[0]",
         "missing required field \"converted_type\" for action \"convert\""},
        {"[{key: a, action: convert, converted_type: float}]", "actions[0]::converted_type",
         "invalid value \"float\" in field \"converted_type\" for action \"convert\" (valid "
         "values: [int, double, string])"},
        {"[{key: a, action: convert, converted_type: int, pattern: x}]", "actions[0]",
         "action \"convert\" does not use value sources or \"pattern\" field"},
        {"[{key: a, action: insert, value: 1}, {key: b, action: insert, from_context: "
         "metadata.tenant}]",
         "actions[1]::from_context",
         "not supported by otelmon: its batches carry no request context (client metadata, auth "
         "data or client address); remove from_context"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        compiled_t c;
        compile(&c, cases[i].flow);
        if (c.rc != OM_ECONFIG || strcmp(c.err.at, cases[i].at) != 0 ||
            strcmp(c.err.msg, cases[i].msg) != 0) {
            fprintf(stderr, "    case %zu: rc %d at \"%s\": %s\n", i, c.rc, c.err.at, c.err.msg);
        }
        release(&c);
        ASSERT_EQ_INT(c.rc, OM_ECONFIG);
        ASSERT_EQ_STR(c.err.at, cases[i].at);
        ASSERT_EQ_STR(c.err.msg, cases[i].msg);
    }
}

/* A pattern that backtracks catastrophically gives up at the match limit: no match, counted,
 * and quickly. */
static void test_match_limit(void)
{
    compiled_t c;
    compile(&c, "[{pattern: '^(a+)+$', action: delete}]");
    ASSERT_EQ_INT(c.rc, 0);
    char attrs[200];
    snprintf(attrs, sizeof attrs, "%s=1 b=2",
             "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab");
    uint64_t t0 = uv_hrtime();
    bool ok;
    const char *got = run_on(&c, attrs, &ok);
    uint64_t ms = (uv_hrtime() - t0) / 1000000;
    uint64_t hits = proc_attraction_limit_hits(c.p);
    release(&c);
    ASSERT_TRUE(ok);
    ASSERT_CONTAINS(got, "b=i:2");
    ASSERT_TRUE(hits >= 1);
    ASSERT_TRUE(ms < 1000);
}

/* RE2's behaviour where PCRE2's default differs: `$` only at the very end. */
static void test_regex_semantics(void)
{
    proc_attraction_re_t *re = NULL;
    char msg[100];
    ASSERT_EQ_INT(proc_attraction_re_compile("a$", &re, msg, sizeof msg), 0);
    ASSERT_EQ_INT(proc_attraction_re_match(re, "a\n", 2, NULL), 0);
    ASSERT_EQ_INT(proc_attraction_re_match(re, "ba", 2, NULL), 1);
    proc_attraction_re_free(re);
    /* \d and \w are ASCII, as in RE2. */
    ASSERT_EQ_INT(proc_attraction_re_compile("^\\d$", &re, msg, sizeof msg), 0);
    ASSERT_EQ_INT(proc_attraction_re_match(re, "\xd9\xa3", 2, NULL), 0); /* ARABIC-INDIC 3 */
    ASSERT_EQ_INT(proc_attraction_re_match(re, "3", 1, NULL), 1);
    proc_attraction_re_free(re);
    /* Invalid UTF-8 in a subject is matched around, not an error. */
    EXPECT("[{key: v, action: extract, pattern: '(?<w>b+)'}]",
           "v='\xff"
           "bb'",
           "v=s:\xff"
           "bb w=s:bb");
}

/* Running out of edit room stops the list with OM_ETOOBIG; the batch stays consistent. */
static void test_edit_room_exhausted(void)
{
    compiled_t c;
    compile(&c, "[{key: big, action: upsert, value: 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'}]");
    ASSERT_EQ_INT(c.rc, 0);
    om_batch_t *b = om_testdata_otlp("span s a=1");
    om_err_t err = {0};
    ASSERT_EQ_INT(om_batch_edit(&b, &err), 0);
    om_span_t *span = b->traces->resource_spans[0]->scope_spans[0]->spans[0];
    int rc = 0;
    /* Each span's list gets the same key: upsert after the first is an update in place, so
     * insert under fresh keys until the room is gone. */
    for (int i = 0; i < 100000 && rc >= 0; i++) {
        char key[32];
        snprintf(key, sizeof key, "k%d", i);
        om_attrs_t a = OM_ATTRS(b, span);
        rc = om_attrs_set_str(&a, OM_ATTR_INSERT, key, "v");
    }
    ASSERT_EQ_INT(rc, OM_ETOOBIG);
    om_attrs_t a = OM_ATTRS(b, span);
    ASSERT_EQ_INT(proc_attraction_apply(c.p, &a), OM_ETOOBIG);
    om_batch_release(b);
    release(&c);
}

/* ---- the wire path against the decoding path ---- */

static int apply_decoded(om_item_t *it, void *arg)
{
    int rc = proc_attraction_apply(arg, &it->attrs);
    return rc < 0 ? rc : OM_KEEP;
}

/* The protobuf encoding of b's structs (decoding it first), for comparing two batches. */
static uint8_t *packed(om_batch_t *b, size_t *len)
{
    om_err_t err = {0};
    if (om_batch_decode(b, &err) != 0) {
        return NULL;
    }
    *len = protobuf_c_message_get_packed_size(b->msg);
    uint8_t *out = malloc(*len + 1);
    protobuf_c_message_pack(b->msg, out);
    return out;
}

/* Apply flow at level both ways, to w (wire bytes) and to d (the same data, decoded): they
 * must agree byte for byte once both are encoded from structs. what names the data in the
 * message. Releases both batches. Returns false (and says why) if they do not agree. */
static bool batches_agree(const char *flow, const char *what, om_batch_t *w, om_batch_t *d,
                          om_level_t level)
{
    compiled_t c;
    compile(&c, flow);
    if (c.rc != 0 || !proc_attraction_wire_ok(c.p)) {
        fprintf(stderr, "    %s: not a wire action list\n", flow);
        release(&c);
        om_batch_release(w);
        om_batch_release(d);
        return false;
    }
    om_err_t err = {0};
    int rw = proc_attraction_wire_apply(c.p, w, level, &err);
    int rd = om_batch_edit(&d, &err);
    rd = rd != 0 ? rd : om_batch_walk(&d, level, apply_decoded, c.p, &err);
    size_t lw = 0, ld = 0;
    uint8_t *pw = rw == 0 ? packed(w, &lw) : NULL, *pd = rd >= 0 ? packed(d, &ld) : NULL;
    bool ok =
        pw != NULL && pd != NULL && lw == ld && memcmp(pw, pd, lw) == 0 && w->items == d->items;
    if (!ok) {
        fprintf(stderr, "    %s on %s: wire rc %d (%zu bytes), decoded rc %d (%zu bytes)\n", flow,
                what, rw, lw, rd, ld);
        if (rw == 0 && rd >= 0) {
            fprintf(stderr, "      wire:    %s\n      decoded: %s\n", om_testdata_describe(w),
                    om_testdata_describe(d));
        }
    }
    free(pw);
    free(pd);
    om_batch_release(w);
    om_batch_release(d);
    release(&c);
    return ok;
}

/* batches_agree on om_testdata text. */
static bool wire_agrees(const char *flow, const char *text, om_level_t level)
{
    return batches_agree(flow, text, om_testdata_wire(om_testdata_otlp("%s", text)),
                         om_testdata_otlp("%s", text), level);
}

#define LONG_TEXT                                                                                  \
    "k0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"            \
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void test_wire_path_agrees_with_decoding(void)
{
    static const char *const flows[] = {
        "[{key: env, action: upsert, value: prod}, {key: http.route, action: delete}]",
        "[{key: a, action: insert, value: 1}, {key: b, action: update, value: [x, {k: 2.5}]}]",
        "[{key: c, action: upsert, from_attribute: a}, {key: a, action: delete}]",
        "[{key: d, action: insert, from_attribute: none, default_value: true},"
        " {key: a, action: update, from_attribute: a}]",
        "[{pattern: '^(a|secret)', action: delete}, {key: s, action: upsert, value: ''}]",
        "[{key: a, action: upsert, value: 1}, {key: a, action: delete}, {key: a, action: insert,"
        " value: z}]",
        "[{key: a, action: update, value: 1}]", /* the same value: nothing changes */
        "[{key: zz, action: delete}]",          /* nothing to delete */
    };
    static const struct {
        const char *text;
        om_level_t level;
    } batches[] = {
        {"resource service.name=x a=1; scope s@1 a=9; span one a=1 b=2 secret=3 http.route='/';"
         " event e a=5; span two; span three a=1 a=2",
         OM_LEVEL_SPAN},
        {"span bare a=1", OM_LEVEL_SPAN},
        {"resource service.name=x a=1; span s; resource b=1; span t a=7", OM_LEVEL_RESOURCE},
        {"span no-resource a=1", OM_LEVEL_RESOURCE}, /* an absent Resource, made when set */
        {"logs; resource r=1; scope s; log 'x' a=1 b=2; log 'y'; log 42 secret.k='v'",
         OM_LEVEL_LOG},
        {"metrics; resource a=1; scope s; metric g type:gauge; point 1 a=1; point 2.5 b=1;"
         " metric s type:sum; point 3 a=2; metric h type:histogram; point count:2 sum:3 a=1;"
         " metric e type:exphistogram; point count:1 sum:1 secret=1;"
         " metric q type:summary; point count:1 sum:2 a=3",
         OM_LEVEL_DATAPOINT},
        {"metrics; metric g type:gauge; point 1 a=1", OM_LEVEL_RESOURCE},
        {"logs; log 'x' a=1", OM_LEVEL_RESOURCE},
        /* A value of 128 bytes or more: not the one-byte-length KeyValue that read_list
         * reads without its general loop (longer keys: the attraction fuzz target). */
        {"span long a=" LONG_TEXT " b=2", OM_LEVEL_SPAN},
    };
    for (size_t f = 0; f < sizeof flows / sizeof flows[0]; f++) {
        for (size_t b = 0; b < sizeof batches / sizeof batches[0]; b++) {
            ASSERT_TRUE(wire_agrees(flows[f], batches[b].text, batches[b].level));
        }
    }
}

/* KeyValues as protobuf-c reads them but not as it writes them, each with one-byte lengths
 * throughout: a key given twice (the last counts), the value before the key, an unknown
 * field after the value, an unknown field and a value but no key (the key is ""). read_list
 * must not take any of them for the usual key-then-value form. (A value given twice makes
 * the arrival scan decode the request: not for the wire.) */
static size_t put_field(uint8_t *o, unsigned num, const void *body, size_t len)
{
    o[0] = (uint8_t)(num << 3 | 2);
    o[1] = (uint8_t)len; /* every length here is under 128 */
    memcpy(o + 2, body, len);
    return 2 + len;
}

static void test_wire_path_reads_unusual_keyvalues(void)
{
    static const char x[] = {0x0a, 1, 'x'}; /* an AnyValue string */
    uint8_t kvs[5][16];
    size_t kvl[5];
    size_t n = put_field(kvs[0], 1, "a", 1); /* a, x, then key b: the key is b */
    n += put_field(kvs[0] + n, 2, x, 3);
    kvl[0] = n + put_field(kvs[0] + n, 1, "b", 1);
    n = put_field(kvs[1], 2, x, 3); /* the value first: key c */
    kvl[1] = n + put_field(kvs[1] + n, 1, "c", 1);
    n = put_field(kvs[2], 1, "d", 1); /* an unknown field 3 after the value: kept */
    n += put_field(kvs[2] + n, 2, x, 3);
    kvl[2] = n + put_field(kvs[2] + n, 3, "?", 1);
    n = put_field(kvs[3], 3, "?", 1); /* no key */
    kvl[3] = n + put_field(kvs[3] + n, 2, x, 3);
    n = put_field(kvs[4], 1, "e", 1); /* a two-byte tag spelling field 0 (unknown): kept */
    n += put_field(kvs[4] + n, 2, x, 3);
    memcpy(kvs[4] + n, "\x80\x00\x07", 3);
    kvl[4] = n + 3;
    uint8_t span[96], scope[100], rs[104], req[108];
    n = put_field(span, 5, "s", 1);
    for (size_t i = 0; i < 5; i++) {
        n += put_field(span + n, 9, kvs[i], kvl[i]);
    }
    size_t ns = put_field(scope, 2, span, n);
    size_t nr = put_field(rs, 2, scope, ns);
    size_t len = put_field(req, 1, rs, nr);
    static const char *const flows[] = {
        "[{key: b, action: delete}, {key: a, action: upsert, value: 1}]",
        ("[{key: c, action: update, value: 2}, {key: d, action: update, value: 3},"
         " {key: '?', action: delete}, {key: e, action: update, value: 4}]"),
        "[{key: f, action: upsert, from_attribute: d}, {key: a, action: delete}]",
    };
    for (size_t f = 0; f < sizeof flows / sizeof flows[0]; f++) {
        om_batch_t *w = NULL, *d = NULL;
        om_err_t err = {0};
        ASSERT_EQ_INT(om_batch_decode_proto(OM_SIG_TRACES, req, len, 0, &w, &err), 0);
        ASSERT_EQ_INT(om_batch_decode_proto(OM_SIG_TRACES, req, len, 0, &d, &err), 0);
        ASSERT_TRUE(batches_agree(flows[f], "hand-made KeyValues", w, d, OM_LEVEL_SPAN));
    }
}

/* A batch nothing applies to is left as it was (same bytes); hash, extract and convert are
 * not for the wire. */
static void test_wire_path_leaves_unchanged_batches(void)
{
    compiled_t c;
    compile(&c, "[{key: nothing, action: delete}]");
    om_batch_t *b = om_testdata_wire(om_testdata_otlp("span a k=1"));
    const uint8_t *before = b->raw[0].data;
    om_err_t err = {0};
    ASSERT_EQ_INT(proc_attraction_wire_apply(c.p, b, OM_LEVEL_SPAN, &err), 0);
    ASSERT_TRUE(b->raw[0].data == before);
    /* A level the signal does not have, and a decoded batch: not for the wire path. */
    ASSERT_EQ_INT(proc_attraction_wire_apply(c.p, b, OM_LEVEL_LOG, &err), OM_ENOTSUP);
    ASSERT_EQ_INT(om_batch_decode(b, &err), 0);
    ASSERT_EQ_INT(proc_attraction_wire_apply(c.p, b, OM_LEVEL_SPAN, &err), OM_ENOTSUP);
    om_batch_release(b);
    release(&c);
    static const char *const not_wire[] = {
        "[{key: a, action: hash}]",
        "[{key: a, action: extract, pattern: '(?<b>x)'}]",
        "[{key: a, action: convert, converted_type: int}]",
    };
    for (size_t i = 0; i < 3; i++) {
        compile(&c, not_wire[i]);
        ASSERT_TRUE(!proc_attraction_wire_ok(c.p));
        release(&c);
    }
}

int main(void)
{
    om_log_set_level(OM_LOG_ERROR);
    OM_RUN(test_insert);
    OM_RUN(test_update_upsert);
    OM_RUN(test_from_attribute_and_default);
    OM_RUN(test_delete);
    OM_RUN(test_hash);
    OM_RUN(test_extract);
    OM_RUN(test_convert);
    OM_RUN(test_order);
    OM_RUN(test_config_errors);
    OM_RUN(test_match_limit);
    OM_RUN(test_regex_semantics);
    OM_RUN(test_edit_room_exhausted);
    OM_RUN(test_wire_path_agrees_with_decoding);
    OM_RUN(test_wire_path_reads_unusual_keyvalues);
    OM_RUN(test_wire_path_leaves_unchanged_batches);
    return om_test_summary();
}
