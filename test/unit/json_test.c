/* json_test.c: the JSON reader (src/json.c). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "om.h"
#include "om_test.h"

static om_arena_t *arena;
static om_err_t err;

/* Parses len bytes; NULL when they are refused (err says why). */
static const om_json_t *parse_n(const char *text, size_t len)
{
    const om_json_t *root = NULL;
    memset(&err, 0, sizeof err);
    int rc = om_json_parse(arena, text, len, &root, &err);
    if ((rc == 0) != (root != NULL)) {
        return NULL;
    }
    return root;
}

static const om_json_t *parse(const char *text)
{
    return parse_n(text, strlen(text));
}

static void refused(const char *text, const char *why)
{
    const om_json_t *v = parse(text);
    if (v != NULL) {
        fprintf(stderr, "  accepted: %s\n", text);
    }
    ASSERT_TRUE(v == NULL);
    ASSERT_EQ_INT(err.code, OM_EINVAL);
    ASSERT_CONTAINS(err.msg, why);
}

static void test_scalars(void)
{
    const om_json_t *v = parse(" true ");
    ASSERT_TRUE(v != NULL && v->type == OM_JSON_TRUE);
    ASSERT_EQ_INT(parse("false")->type, OM_JSON_FALSE);
    ASSERT_EQ_INT(parse("null")->type, OM_JSON_NULL);
    v = parse("-9223372036854775808");
    ASSERT_EQ_INT(v->type, OM_JSON_INTEGER);
    ASSERT_TRUE(v->u.i == INT64_MIN);
    v = parse("9223372036854775807");
    ASSERT_TRUE(v->type == OM_JSON_INTEGER && v->u.i == INT64_MAX);
    /* Beyond int64: a real, where jansson refuses it. */
    v = parse("9223372036854775808");
    ASSERT_TRUE(v->type == OM_JSON_REAL && v->u.r == 9223372036854775808.0);
    v = parse("-0");
    ASSERT_TRUE(v->type == OM_JSON_INTEGER && v->u.i == 0);
    v = parse("-0.0");
    ASSERT_TRUE(v->type == OM_JSON_REAL && v->u.r == 0 && signbit(v->u.r));
    v = parse("1.5e3");
    ASSERT_TRUE(v->type == OM_JSON_REAL && v->u.r == 1500);
    v = parse("2E-2");
    ASSERT_TRUE(v->type == OM_JSON_REAL && v->u.r == 0.02);
    v = parse("1e-400"); /* underflows to zero, as strtod does */
    ASSERT_TRUE(v->type == OM_JSON_REAL && v->u.r == 0);
    refused("1e400", "real number overflow");
    refused("01", "end of input expected");
    refused("[1.]", "a digit must follow '.'");
    refused("[1e]", "a digit must follow the exponent");
    refused("[-]", "invalid number");
    refused("1e", "unexpected end of input");
    refused("+1", "invalid token");
    refused(".5", "invalid token");
    refused("tru", "invalid token");
    refused("nul", "invalid token");
    refused("NaN", "invalid token");
    refused("", "unexpected end of input");
    refused("   ", "unexpected end of input");
}

static void test_strings(void)
{
    const om_json_t *v = parse("\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\"");
    ASSERT_EQ_INT(v->type, OM_JSON_STRING);
    ASSERT_EQ_INT(v->n, 12);
    ASSERT_TRUE(memcmp(v->u.s, "a\"b\\c/d\b\f\n\r\t", 13) == 0); /* NUL included */
    v = parse("\"\\u00e9\\u20AC\\ud83d\\ude00\"");
    ASSERT_EQ_STR(v->u.s, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
    v = parse("\"h\xc3\xa9llo \xf0\x9f\x98\x80\"");
    ASSERT_EQ_STR(v->u.s, "h\xc3\xa9llo \xf0\x9f\x98\x80");
    ASSERT_EQ_INT(parse("\"\"")->n, 0);
    refused("\"\\u0000\"", "\\u0000 is not allowed");
    refused("\"\\ud800\"", "unpaired surrogate");
    refused("\"\\ud800\\u0041\"", "unpaired surrogate");
    refused("\"\\udc00\"", "unpaired surrogate");
    refused("\"\\u12G4\"", "invalid \\u escape");
    refused("\"\\x\"", "invalid escape");
    refused("\"a\tb\"", "control character in string");
    refused("\"abc", "unexpected end of input");
    refused("\"abc\\", "unexpected end of input");
    refused("\"\\u12", "unexpected end of input");
    refused("\"\xc3\"", "invalid UTF-8");
    refused("\"\xc0\xaf\"", "invalid UTF-8");         /* overlong '/' */
    refused("\"\xe0\x80\xaf\"", "invalid UTF-8");     /* overlong, 3 bytes */
    refused("\"\xed\xa0\x80\"", "invalid UTF-8");     /* a surrogate, encoded */
    refused("\"\xf4\x90\x80\x80\"", "invalid UTF-8"); /* above U+10FFFF */
    refused("\"\xff\"", "invalid UTF-8");
    /* A raw NUL inside a string is a control character, not the end. */
    v = parse_n("\"a\0b\"", 5);
    ASSERT_TRUE(v == NULL);
    ASSERT_CONTAINS(err.msg, "control character");
}

static void test_containers(void)
{
    const om_json_t *v =
        parse("{\"a\": [1, 2.5, \"x\", [], {}], \"b\": {\"c\": null}, \"a\": true}");
    ASSERT_EQ_INT(v->type, OM_JSON_OBJECT);
    ASSERT_EQ_INT(v->n, 3); /* a key given twice is kept twice, in order */
    ASSERT_EQ_STR(v->u.members[0].key, "a");
    ASSERT_EQ_INT(v->u.members[0].key_len, 1);
    const om_json_t *a = &v->u.members[0].value;
    ASSERT_EQ_INT(a->type, OM_JSON_ARRAY);
    ASSERT_EQ_INT(a->n, 5);
    ASSERT_TRUE(a->u.items[0].type == OM_JSON_INTEGER && a->u.items[0].u.i == 1);
    ASSERT_TRUE(a->u.items[1].type == OM_JSON_REAL && a->u.items[1].u.r == 2.5);
    ASSERT_EQ_STR(a->u.items[2].u.s, "x");
    ASSERT_TRUE(a->u.items[3].type == OM_JSON_ARRAY && a->u.items[3].n == 0);
    ASSERT_TRUE(a->u.items[4].type == OM_JSON_OBJECT && a->u.items[4].n == 0);
    ASSERT_EQ_STR(v->u.members[1].key, "b");
    ASSERT_EQ_INT(v->u.members[1].value.u.members[0].value.type, OM_JSON_NULL);
    ASSERT_EQ_INT(v->u.members[2].value.type, OM_JSON_TRUE);
    refused("[1,]", "invalid token");
    refused("[1 2]", "expected ',' or ']'");
    refused("{\"a\" 1}", "expected ':'");
    refused("{\"a\":1,}", "expected a string key");
    refused("{'a':1}", "expected a string key");
    refused("{\"a\":1", "unexpected end of input");
    refused("[1] x", "end of input expected");
    refused("[1]]", "end of input expected");
}

/* Errors say where: line and column (1-based) of the offending byte. */
static void test_error_position(void)
{
    refused("{\n  \"a\": [1,\n   x]}", "line 3 column 4: invalid token");
}

static void test_depth(void)
{
    size_t n = OM_JSON_MAX_DEPTH;
    char *text = malloc(2 * n + 2);
    ASSERT_TRUE(text != NULL);
    memset(text, '[', n);
    memset(text + n, ']', n);
    text[2 * n] = '\0';
    ASSERT_TRUE(parse(text) != NULL); /* the limit itself */
    memmove(text + 1, text, 2 * n);
    text[0] = '[';
    text[2 * n + 1] = '\0';
    text[2 * n] = ']';
    ASSERT_TRUE(parse(text) == NULL);
    ASSERT_CONTAINS(err.msg, "nested too deeply");
    free(text);
}

/* A body need not end with a NUL: the reader works on its own copy. */
static void test_unterminated_input(void)
{
    char buf[8] = {'[', '1', '2', ']', 'x', 'x', 'x', 'x'};
    const om_json_t *v = parse_n(buf, 4);
    ASSERT_TRUE(v != NULL && v->n == 1 && v->u.items[0].u.i == 12);
    ASSERT_TRUE(parse_n(buf, 2) == NULL);
    ASSERT_TRUE(parse_n("true", 3) == NULL);
}

/* The tree counts against the arena's cap. */
static void test_cap(void)
{
    om_arena_t *small = om_arena_new(4096);
    om_strbuf_t sb;
    om_strbuf_init(&sb, 0);
    om_strbuf_puts(&sb, "[0");
    for (int i = 0; i < 2000; i++) {
        om_strbuf_puts(&sb, ",0");
    }
    om_strbuf_puts(&sb, "]");
    const om_json_t *root = NULL;
    om_err_t e = {0};
    ASSERT_EQ_INT(om_json_parse(small, sb.data, sb.len, &root, &e), OM_ETOOBIG);
    ASSERT_TRUE(root == NULL);
    om_arena_unref(small);
    om_strbuf_free(&sb);
}

int main(void)
{
    arena = om_arena_new(0);
    OM_RUN(test_scalars);
    OM_RUN(test_strings);
    OM_RUN(test_containers);
    OM_RUN(test_error_position);
    OM_RUN(test_depth);
    OM_RUN(test_unterminated_input);
    OM_RUN(test_cap);
    om_arena_unref(arena);
    return om_test_summary();
}
