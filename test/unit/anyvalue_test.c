/* anyvalue_test.c: AnyValues compared and printed as otelcol's pcommon.Value does
 * (om_anyvalue_equal, om_anyvalue_to_string). */
#include <math.h>
#include <stdlib.h>

#include "om_test.h"
#include "om_testdata.h"

static om_arena_t *arena;

static om_anyvalue_t *val(void)
{
    return om_testdata_msg(arena, &opentelemetry__proto__common__v1__any_value__descriptor);
}

static om_anyvalue_t *str(const char *s)
{
    om_anyvalue_t *v = val();
    v->value_case = OM_ANYVALUE_STRING;
    v->string_value = om_testdata_str(arena, s);
    return v;
}

static om_anyvalue_t *i64(int64_t i)
{
    om_anyvalue_t *v = val();
    v->value_case = OM_ANYVALUE_INT;
    v->int_value = i;
    return v;
}

static om_anyvalue_t *dbl(double d)
{
    om_anyvalue_t *v = val();
    v->value_case = OM_ANYVALUE_DOUBLE;
    v->double_value = d;
    return v;
}

static om_anyvalue_t *boolean(bool b)
{
    om_anyvalue_t *v = val();
    v->value_case = OM_ANYVALUE_BOOL;
    v->bool_value = b;
    return v;
}

static om_anyvalue_t *bytes(const char *s, size_t n)
{
    om_anyvalue_t *v = val();
    v->value_case = OM_ANYVALUE_BYTES;
    v->bytes_value.data = om_arena_alloc(arena, n + 1);
    memcpy(v->bytes_value.data, s, n);
    v->bytes_value.len = n;
    return v;
}

static om_anyvalue_t *array(size_t n, om_anyvalue_t **items)
{
    om_anyvalue_t *v = val();
    om_arrayvalue_t *a =
        om_testdata_msg(arena, &opentelemetry__proto__common__v1__array_value__descriptor);
    a->values = om_arena_alloc(arena, (n + 1) * sizeof *a->values);
    for (size_t i = 0; i < n; i++) {
        a->values[i] = items[i];
    }
    a->n_values = n;
    v->value_case = OM_ANYVALUE_ARRAY;
    v->array_value = a;
    return v;
}

/* A kvlist of n pairs key, value. */
static om_anyvalue_t *kvlist(size_t n, const char **keys, om_anyvalue_t **vals)
{
    om_anyvalue_t *v = val();
    om_kvlist_t *l =
        om_testdata_msg(arena, &opentelemetry__proto__common__v1__key_value_list__descriptor);
    l->values = om_arena_alloc(arena, (n + 1) * sizeof *l->values);
    for (size_t i = 0; i < n; i++) {
        om_keyvalue_t *kv =
            om_testdata_msg(arena, &opentelemetry__proto__common__v1__key_value__descriptor);
        kv->key = om_testdata_str(arena, keys[i]);
        kv->value = vals[i];
        l->values[i] = kv;
    }
    l->n_values = n;
    v->value_case = OM_ANYVALUE_KVLIST;
    v->kvlist_value = l;
    return v;
}

static const char *as_string(const om_anyvalue_t *v)
{
    static char out[512];
    om_strbuf_t sb;
    om_strbuf_init(&sb, 0);
    om_anyvalue_to_string(v, &sb);
    snprintf(out, sizeof out, "%s", sb.data != NULL ? sb.data : "");
    om_strbuf_free(&sb);
    return out;
}

static void test_scalars_as_string(void)
{
    ASSERT_EQ_STR(as_string(NULL), "");
    ASSERT_EQ_STR(as_string(val()), "");
    ASSERT_EQ_STR(as_string(str("a b")), "a b");
    ASSERT_EQ_STR(as_string(boolean(true)), "true");
    ASSERT_EQ_STR(as_string(boolean(false)), "false");
    ASSERT_EQ_STR(as_string(i64(-42)), "-42");
    ASSERT_EQ_STR(as_string(i64(INT64_MIN)), "-9223372036854775808");
    /* Go's float64AsString: shortest round trip, 'f' between 1e-6 and 1e21, else 'e'. */
    ASSERT_EQ_STR(as_string(dbl(1.5)), "1.5");
    ASSERT_EQ_STR(as_string(dbl(3)), "3");
    ASSERT_EQ_STR(as_string(dbl(-0.25)), "-0.25");
    ASSERT_EQ_STR(as_string(dbl(0.1)), "0.1");
    ASSERT_EQ_STR(as_string(dbl(0)), "0");
    ASSERT_EQ_STR(as_string(dbl(1e20)), "100000000000000000000");
    ASSERT_EQ_STR(as_string(dbl(1e21)), "1e+21");
    ASSERT_EQ_STR(as_string(dbl(1.5e-7)), "1.5e-7");
    ASSERT_EQ_STR(as_string(dbl(0.000001)), "0.000001");
    ASSERT_EQ_STR(as_string(dbl(123456.789)), "123456.789");
    ASSERT_EQ_STR(as_string(dbl(NAN)), "json: unsupported value: NaN");
    ASSERT_EQ_STR(as_string(dbl(-INFINITY)), "json: unsupported value: -Inf");
    ASSERT_EQ_STR(as_string(bytes("\x01\x02\x03\x04", 4)), "AQIDBA==");
    ASSERT_EQ_STR(as_string(bytes("", 0)), "");
}

static void test_composites_as_string(void)
{
    om_anyvalue_t *inner[] = {i64(1), str("x\"<y>&\n"), dbl(2.5), val(), bytes("hi", 2)};
    ASSERT_EQ_STR(as_string(array(5, inner)),
                  "[1,\"x\\\"\\u003cy\\u003e\\u0026\\n\",2.5,null,\"aGk=\"]");
    const char *keys[] = {"z", "a", "m", "a"};
    om_anyvalue_t *vals[] = {boolean(true), i64(1), array(0, NULL), i64(2)};
    /* Sorted keys; a key given twice keeps its last value, as a Go map. */
    ASSERT_EQ_STR(as_string(kvlist(4, keys, vals)), "{\"a\":2,\"m\":[],\"z\":true}");
    /* Invalid UTF-8 and line separators, as encoding/json writes them. */
    om_anyvalue_t *odd[] = {str("a\xff"
                                "b\xe2\x80\xa8")};
    ASSERT_EQ_STR(as_string(array(1, odd)), "[\"a\\ufffdb\\u2028\"]");
    /* A string on its own is not JSON: printed as it is. */
    ASSERT_EQ_STR(as_string(str("<x>")), "<x>");
}

static void test_equal(void)
{
    ASSERT_TRUE(om_anyvalue_equal(NULL, NULL));
    ASSERT_TRUE(om_anyvalue_equal(NULL, val()));
    ASSERT_TRUE(om_anyvalue_equal(str("a"), str("a")));
    ASSERT_TRUE(!om_anyvalue_equal(str("a"), str("b")));
    ASSERT_TRUE(!om_anyvalue_equal(i64(1), dbl(1)));
    ASSERT_TRUE(!om_anyvalue_equal(str("1"), i64(1)));
    ASSERT_TRUE(om_anyvalue_equal(dbl(0.5), dbl(0.5)));
    ASSERT_TRUE(!om_anyvalue_equal(dbl(NAN), dbl(NAN)));
    ASSERT_TRUE(om_anyvalue_equal(boolean(false), boolean(false)));
    ASSERT_TRUE(om_anyvalue_equal(bytes("ab", 2), bytes("ab", 2)));
    ASSERT_TRUE(!om_anyvalue_equal(bytes("ab", 2), bytes("a", 1)));
    om_anyvalue_t *a1[] = {i64(1), str("x")}, *a2[] = {i64(1), str("x")},
                  *a3[] = {str("x"), i64(1)};
    ASSERT_TRUE(om_anyvalue_equal(array(2, a1), array(2, a2)));
    ASSERT_TRUE(!om_anyvalue_equal(array(2, a1), array(2, a3)));
    ASSERT_TRUE(!om_anyvalue_equal(array(2, a1), array(1, a2)));
    const char *k1[] = {"a", "b"}, *k2[] = {"b", "a"};
    om_anyvalue_t *v1[] = {i64(1), i64(2)}, *v2[] = {i64(2), i64(1)}, *v3[] = {i64(1), i64(2)};
    ASSERT_TRUE(om_anyvalue_equal(kvlist(2, k1, v1), kvlist(2, k2, v2))); /* order-free */
    ASSERT_TRUE(!om_anyvalue_equal(kvlist(2, k1, v1), kvlist(2, k2, v3)));
    ASSERT_TRUE(!om_anyvalue_equal(kvlist(2, k1, v1), kvlist(1, k1, v1)));
}

/* Nesting beyond the limit neither recurses without bound nor crashes. */
static void test_deep_nesting(void)
{
    om_anyvalue_t *v = i64(1), *w = i64(1);
    for (int i = 0; i < 200; i++) {
        v = array(1, &v);
        w = array(1, &w);
    }
    ASSERT_TRUE(!om_anyvalue_equal(v, w)); /* too deep to tell: unequal */
    const char *s = as_string(v);
    ASSERT_TRUE(strncmp(s, "[[[[", 4) == 0);
    ASSERT_CONTAINS(s, "null");
}

int main(void)
{
    arena = om_arena_new(0);
    OM_RUN(test_scalars_as_string);
    OM_RUN(test_composites_as_string);
    OM_RUN(test_equal);
    OM_RUN(test_deep_nesting);
    om_arena_unref(arena);
    return om_test_summary();
}
