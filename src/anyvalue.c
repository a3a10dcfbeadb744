/* anyvalue.c: comparing AnyValues as pcommon's Value.Equal does, and freeing the values a
 * config holds (OM_F_ANYVALUE, made with om_malloc by the field table). The string form
 * (om_anyvalue_to_string) lives with the JSON encoder, whose number and string forms it
 * shares. */
#include <string.h>

#include "om.h"

#define MAX_DEPTH 64

static bool equal_at(const om_anyvalue_t *a, const om_anyvalue_t *b, int depth);

/* The first member of l with key, as pcommon's Map.Get finds it, or NULL. */
static const om_keyvalue_t *kvlist_get(const om_kvlist_t *l, const char *key)
{
    for (size_t i = 0; l != NULL && i < l->n_values; i++) {
        const om_keyvalue_t *kv = l->values[i];
        if (kv != NULL && strcmp(kv->key != NULL ? kv->key : "", key) == 0) {
            return kv;
        }
    }
    return NULL;
}

static bool kvlist_equal(const om_kvlist_t *a, const om_kvlist_t *b, int depth)
{
    size_t na = a != NULL ? a->n_values : 0, nb = b != NULL ? b->n_values : 0;
    if (na != nb) {
        return false;
    }
    for (size_t i = 0; i < na; i++) {
        const om_keyvalue_t *kv = a->values[i];
        const char *key = kv != NULL && kv->key != NULL ? kv->key : "";
        const om_keyvalue_t *other = kvlist_get(b, key);
        if (other == NULL || !equal_at(kv != NULL ? kv->value : NULL, other->value, depth + 1)) {
            return false;
        }
    }
    return true;
}

static bool array_equal(const om_arrayvalue_t *a, const om_arrayvalue_t *b, int depth)
{
    size_t na = a != NULL ? a->n_values : 0, nb = b != NULL ? b->n_values : 0;
    if (na != nb) {
        return false;
    }
    for (size_t i = 0; i < na; i++) {
        if (!equal_at(a->values[i], b->values[i], depth + 1)) {
            return false;
        }
    }
    return true;
}

static int kind_of(const om_anyvalue_t *v)
{
    return v != NULL ? (int)v->value_case : (int)OM_ANYVALUE_NONE;
}

static bool equal_at(const om_anyvalue_t *a, const om_anyvalue_t *b, int depth)
{
    if (depth > MAX_DEPTH || kind_of(a) != kind_of(b)) {
        return false;
    }
    switch (kind_of(a)) {
    case OM_ANYVALUE_STRING:
        return strcmp(a->string_value != NULL ? a->string_value : "",
                      b->string_value != NULL ? b->string_value : "") == 0;
    case OM_ANYVALUE_BOOL:
        return a->bool_value == b->bool_value;
    case OM_ANYVALUE_INT:
        return a->int_value == b->int_value;
    case OM_ANYVALUE_DOUBLE:
        return a->double_value == b->double_value;
    case OM_ANYVALUE_BYTES:
        return a->bytes_value.len == b->bytes_value.len &&
               (a->bytes_value.len == 0 ||
                memcmp(a->bytes_value.data, b->bytes_value.data, a->bytes_value.len) == 0);
    case OM_ANYVALUE_ARRAY:
        return array_equal(a->array_value, b->array_value, depth);
    case OM_ANYVALUE_KVLIST:
        return kvlist_equal(a->kvlist_value, b->kvlist_value, depth);
    default:
        return true; /* both unset */
    }
}

bool om_anyvalue_equal(const om_anyvalue_t *a, const om_anyvalue_t *b)
{
    return equal_at(a, b, 0);
}

/* Recursion is bounded: the field table builds values no deeper than the config's nesting
 * limit. */
void om_anyvalue_free(om_anyvalue_t *v)
{
    if (v == NULL) {
        return;
    }
    switch (v->value_case) {
    case OM_ANYVALUE_STRING:
        om_free(v->string_value);
        break;
    case OM_ANYVALUE_BYTES:
        om_free(v->bytes_value.data);
        break;
    case OM_ANYVALUE_ARRAY:
        for (size_t i = 0; v->array_value != NULL && i < v->array_value->n_values; i++) {
            om_anyvalue_free(v->array_value->values[i]);
        }
        if (v->array_value != NULL) {
            om_free(v->array_value->values);
            om_free(v->array_value);
        }
        break;
    case OM_ANYVALUE_KVLIST:
        for (size_t i = 0; v->kvlist_value != NULL && i < v->kvlist_value->n_values; i++) {
            om_keyvalue_t *kv = v->kvlist_value->values[i];
            if (kv != NULL) {
                om_free(kv->key);
                om_anyvalue_free(kv->value);
                om_free(kv);
            }
        }
        if (v->kvlist_value != NULL) {
            om_free(v->kvlist_value->values);
            om_free(v->kvlist_value);
        }
        break;
    default:
        break;
    }
    om_free(v);
}
