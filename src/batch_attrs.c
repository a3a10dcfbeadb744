/* batch_attrs.c: reading and changing attribute lists of a batch (om_attrs_*).
 *
 * A list is a protobuf-c repeated field: a pointer array and a count in the owner node. A
 * change is planned first (is the key there, does the mode apply), then everything it needs
 * is allocated from the batch's arena (arenas[0], capped by om_batch_edit), and only then is
 * the list changed: a change that runs out of memory leaves the list as it was. An existing
 * value is overwritten in place (its node is the batch's alone while it is being edited), so
 * updating a number allocates nothing. Appending grows the array geometrically when it is the
 * array the last append made (om_batch_t.attrs_grown), so a run of inserts into one list
 * costs O(1) each, amortized. */
#include <string.h>

#include "batch_int.h"

/* How deep set_value copies arrays and maps inside a value. */
#define MAX_VALUE_DEPTH 64

om_attrs_t om_attrs_of(om_batch_t *b, om_keyvalue_t ***list, size_t *n)
{
    return (om_attrs_t){.batch = b, .list = list, .n = n};
}

/* The list as it is now: a.list, or the list of an owner that was absent when the handle was
 * made and has been attached since (by another handle). {NULL, NULL} when there is none. */
typedef struct list_ref {
    om_keyvalue_t ***list;
    size_t *n;
} list_ref_t;

static list_ref_t list_of(const om_attrs_t *a)
{
    if (a->list != NULL) {
        return (list_ref_t){a->list, a->n};
    }
    if (a->absent_resource != NULL && *a->absent_resource != NULL) {
        om_resource_t *r = *a->absent_resource;
        return (list_ref_t){&r->attributes, &r->n_attributes};
    }
    if (a->absent_scope != NULL && *a->absent_scope != NULL) {
        om_scope_t *s = *a->absent_scope;
        return (list_ref_t){&s->attributes, &s->n_attributes};
    }
    return (list_ref_t){NULL, NULL};
}

size_t om_attrs_count(const om_attrs_t *a)
{
    list_ref_t r = list_of(a);
    return r.list != NULL ? *r.n : 0;
}

om_keyvalue_t *om_attrs_at(const om_attrs_t *a, size_t i)
{
    list_ref_t r = list_of(a);
    return r.list != NULL && i < *r.n ? (*r.list)[i] : NULL;
}

/* Index of the first KeyValue with key, or SIZE_MAX. */
static size_t find(list_ref_t r, const char *key)
{
    if (r.list == NULL) {
        return SIZE_MAX;
    }
    om_keyvalue_t **kvs = *r.list;
    for (size_t i = 0; i < *r.n; i++) {
        if (kvs[i] != NULL && kvs[i]->key != NULL && strcmp(kvs[i]->key, key) == 0) {
            return i;
        }
    }
    return SIZE_MAX;
}

const om_anyvalue_t *om_attrs_get(const om_attrs_t *a, const char *key)
{
    /* A key given without a value reads as an empty value: present, of no kind. */
    static const om_anyvalue_t empty = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
    list_ref_t r = list_of(a);
    size_t i = find(r, key);
    if (i == SIZE_MAX) {
        return NULL;
    }
    const om_anyvalue_t *v = (*r.list)[i]->value;
    return v != NULL ? v : &empty;
}

static om_arena_t *arena_of(const om_attrs_t *a)
{
    return a->batch->arenas[0];
}

static int fail(const om_attrs_t *a)
{
    return om_arena_fail(arena_of(a), NULL, "attribute");
}

/* ---- changing ---------------------------------------------------------------------------- */

/* A planned set: the KeyValue to overwrite, or NULL to append a new one. */
typedef struct plan {
    om_keyvalue_t *kv;
} plan_t;

/* Whether the set applies: 1 (then *p says how), 0 (the mode leaves the list alone), or
 * OM_EPERM when the batch is not being edited. */
static int plan_set(const om_attrs_t *a, om_attr_mode_t mode, const char *key, plan_t *p)
{
    if (a->batch == NULL || !om__batch_editing(a->batch)) {
        return OM_EPERM;
    }
    list_ref_t r = list_of(a);
    size_t i = find(r, key);
    if (i != SIZE_MAX) {
        p->kv = (*r.list)[i];
        return (mode & OM_ATTR_UPDATE) != 0 ? 1 : 0;
    }
    if (r.list == NULL && a->absent_resource == NULL && a->absent_scope == NULL) {
        return OM_EINVAL; /* a handle for no list: a resource-level item's scope */
    }
    p->kv = NULL;
    return (mode & OM_ATTR_INSERT) != 0 ? 1 : 0;
}

static void *new_msg(om_arena_t *arena, const ProtobufCMessageDescriptor *d)
{
    void *m = om_arena_alloc(arena, d->sizeof_message);
    if (m != NULL) {
        protobuf_c_message_init(d, m);
    }
    return m;
}

/* Append kv to the list, making the absent owner (resource or scope) first if need be. All
 * allocation comes before the list changes. */
static int append(om_attrs_t *a, om_keyvalue_t *kv)
{
    om_batch_t *b = a->batch;
    list_ref_t r = list_of(a);
    om_resource_t *res = NULL;
    om_scope_t *scope = NULL;
    if (r.list == NULL && a->absent_resource != NULL) {
        res = new_msg(arena_of(a), &opentelemetry__proto__resource__v1__resource__descriptor);
        if (res == NULL) {
            return fail(a);
        }
        r = (list_ref_t){&res->attributes, &res->n_attributes};
    } else if (r.list == NULL) {
        scope = new_msg(arena_of(a),
                        &opentelemetry__proto__common__v1__instrumentation_scope__descriptor);
        if (scope == NULL) {
            return fail(a);
        }
        r = (list_ref_t){&scope->attributes, &scope->n_attributes};
    }
    size_t n = *r.n;
    om_keyvalue_t **kvs = *r.list;
    if (kvs != NULL && (void *)kvs == b->attrs_grown && n < b->attrs_grown_cap) {
        kvs[n] = kv;
    } else {
        size_t cap = n < 4 ? 4 : n * 2;
        om_keyvalue_t **grown =
            n < SIZE_MAX / 16 ? om_arena_alloc(arena_of(a), cap * sizeof *grown) : NULL;
        if (grown == NULL) {
            return fail(a);
        }
        if (n > 0) {
            memcpy(grown, kvs, n * sizeof *grown);
        }
        grown[n] = kv;
        *r.list = grown;
        b->attrs_grown = grown;
        b->attrs_grown_cap = cap;
    }
    *r.n = n + 1;
    if (res != NULL) {
        *a->absent_resource = res;
    } else if (scope != NULL) {
        *a->absent_scope = scope;
    }
    a->list = r.list;
    a->n = r.n;
    return 1;
}

/* Carry out a planned set with the value v (whose strings, bytes and children already live
 * in the batch's arena). */
static int commit(om_attrs_t *a, const plan_t *p, const char *key, const om_anyvalue_t *v)
{
    if (p->kv != NULL && p->kv->value != NULL) {
        *p->kv->value = *v;
        return 1;
    }
    om_anyvalue_t *node =
        new_msg(arena_of(a), &opentelemetry__proto__common__v1__any_value__descriptor);
    if (node == NULL) {
        return fail(a);
    }
    *node = *v;
    if (p->kv != NULL) {
        p->kv->value = node;
        return 1;
    }
    om_keyvalue_t *kv =
        new_msg(arena_of(a), &opentelemetry__proto__common__v1__key_value__descriptor);
    char *k = om_arena_strndup(arena_of(a), key, strlen(key));
    if (kv == NULL || k == NULL) {
        return fail(a);
    }
    kv->key = k;
    kv->value = node;
    return append(a, kv);
}

static om_anyvalue_t value_init(void)
{
    om_anyvalue_t v = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
    return v;
}

int om_attrs_set_strn(om_attrs_t *a, om_attr_mode_t mode, const char *key, const char *s,
                      size_t len)
{
    plan_t p;
    int rc = plan_set(a, mode, key, &p);
    if (rc <= 0) {
        return rc;
    }
    om_anyvalue_t v = value_init();
    v.value_case = OM_ANYVALUE_STRING;
    v.string_value = om_arena_strndup(arena_of(a), s, len);
    if (v.string_value == NULL) {
        return fail(a);
    }
    return commit(a, &p, key, &v);
}

int om_attrs_set_str(om_attrs_t *a, om_attr_mode_t mode, const char *key, const char *s)
{
    return om_attrs_set_strn(a, mode, key, s, strlen(s));
}

/* Set a scalar value (nothing in it points anywhere, so it is copied as it is). */
static int set_scalar(om_attrs_t *a, om_attr_mode_t mode, const char *key, const om_anyvalue_t *v)
{
    plan_t p;
    int rc = plan_set(a, mode, key, &p);
    return rc <= 0 ? rc : commit(a, &p, key, v);
}

int om_attrs_set_int(om_attrs_t *a, om_attr_mode_t mode, const char *key, int64_t i)
{
    om_anyvalue_t v = value_init();
    v.value_case = OM_ANYVALUE_INT;
    v.int_value = i;
    return set_scalar(a, mode, key, &v);
}

int om_attrs_set_double(om_attrs_t *a, om_attr_mode_t mode, const char *key, double d)
{
    om_anyvalue_t v = value_init();
    v.value_case = OM_ANYVALUE_DOUBLE;
    v.double_value = d;
    return set_scalar(a, mode, key, &v);
}

int om_attrs_set_bool(om_attrs_t *a, om_attr_mode_t mode, const char *key, bool b)
{
    om_anyvalue_t v = value_init();
    v.value_case = OM_ANYVALUE_BOOL;
    v.bool_value = b;
    return set_scalar(a, mode, key, &v);
}

/* A copy of len bytes at p in the arena ({0, NULL} for none). */
static int copy_bytes(om_arena_t *arena, const void *p, size_t len, ProtobufCBinaryData *out)
{
    *out = (ProtobufCBinaryData){0};
    if (len == 0) {
        return 0;
    }
    uint8_t *d = om_arena_alloc(arena, len);
    if (d == NULL) {
        return OM_ENOMEM;
    }
    memcpy(d, p, len);
    *out = (ProtobufCBinaryData){.len = len, .data = d};
    return 0;
}

int om_attrs_set_bytes(om_attrs_t *a, om_attr_mode_t mode, const char *key, const void *bytes,
                       size_t len)
{
    plan_t p;
    int rc = plan_set(a, mode, key, &p);
    if (rc <= 0) {
        return rc;
    }
    om_anyvalue_t v = value_init();
    v.value_case = OM_ANYVALUE_BYTES;
    if (copy_bytes(arena_of(a), bytes, len, &v.bytes_value) != 0) {
        return fail(a);
    }
    return commit(a, &p, key, &v);
}

/* ---- deep copies of values --------------------------------------------------------------- */

static int copy_value(om_arena_t *arena, const om_anyvalue_t *src, om_anyvalue_t *dst, int depth);

/* A new AnyValue node copying src (NULL stays NULL). */
static int copy_node(om_arena_t *arena, const om_anyvalue_t *src, om_anyvalue_t **out, int depth)
{
    *out = NULL;
    if (src == NULL) {
        return 0;
    }
    om_anyvalue_t *node = new_msg(arena, &opentelemetry__proto__common__v1__any_value__descriptor);
    if (node == NULL) {
        return OM_ENOMEM;
    }
    *out = node;
    return copy_value(arena, src, node, depth);
}

static int copy_array(om_arena_t *arena, const om_arrayvalue_t *src, om_arrayvalue_t **out,
                      int depth)
{
    *out = NULL;
    if (src == NULL) {
        return 0;
    }
    om_arrayvalue_t *arr =
        new_msg(arena, &opentelemetry__proto__common__v1__array_value__descriptor);
    om_anyvalue_t **vals = om_arena_alloc(arena, (src->n_values + 1) * sizeof *vals);
    if (arr == NULL || vals == NULL) {
        return OM_ENOMEM;
    }
    for (size_t i = 0; i < src->n_values; i++) {
        int rc = copy_node(arena, src->values[i], &vals[i], depth);
        if (rc != 0) {
            return rc;
        }
    }
    arr->values = vals;
    arr->n_values = src->n_values;
    *out = arr;
    return 0;
}

static int copy_kvlist(om_arena_t *arena, const om_kvlist_t *src, om_kvlist_t **out, int depth)
{
    *out = NULL;
    if (src == NULL) {
        return 0;
    }
    om_kvlist_t *list =
        new_msg(arena, &opentelemetry__proto__common__v1__key_value_list__descriptor);
    om_keyvalue_t **kvs = om_arena_alloc(arena, (src->n_values + 1) * sizeof *kvs);
    if (list == NULL || kvs == NULL) {
        return OM_ENOMEM;
    }
    for (size_t i = 0; i < src->n_values; i++) {
        const om_keyvalue_t *from = src->values[i];
        om_keyvalue_t *kv =
            new_msg(arena, &opentelemetry__proto__common__v1__key_value__descriptor);
        if (kv == NULL) {
            return OM_ENOMEM;
        }
        kvs[i] = kv;
        if (from == NULL) {
            continue;
        }
        if (from->key != NULL) {
            kv->key = om_arena_strndup(arena, from->key, strlen(from->key));
            if (kv->key == NULL) {
                return OM_ENOMEM;
            }
        }
        int rc = copy_node(arena, from->value, &kv->value, depth);
        if (rc != 0) {
            return rc;
        }
    }
    list->values = kvs;
    list->n_values = src->n_values;
    *out = list;
    return 0;
}

/* dst (a node of the arena) becomes a copy of src. Recursion is bounded by MAX_VALUE_DEPTH. */
static int copy_value(om_arena_t *arena, const om_anyvalue_t *src, om_anyvalue_t *dst, int depth)
{
    if (depth > MAX_VALUE_DEPTH) {
        return OM_EINVAL;
    }
    *dst = *src;
    dst->base = (ProtobufCMessage)PROTOBUF_C_MESSAGE_INIT(
        &opentelemetry__proto__common__v1__any_value__descriptor);
    switch (src->value_case) {
    case OM_ANYVALUE_STRING:
        dst->string_value = om_arena_strndup(arena, src->string_value ? src->string_value : "",
                                             src->string_value ? strlen(src->string_value) : 0);
        return dst->string_value != NULL ? 0 : OM_ENOMEM;
    case OM_ANYVALUE_BYTES:
        return copy_bytes(arena, src->bytes_value.data, src->bytes_value.len, &dst->bytes_value);
    case OM_ANYVALUE_ARRAY:
        return copy_array(arena, src->array_value, &dst->array_value, depth + 1);
    case OM_ANYVALUE_KVLIST:
        return copy_kvlist(arena, src->kvlist_value, &dst->kvlist_value, depth + 1);
    default: /* scalars are copied with the struct */
        return 0;
    }
}

int om_attrs_set_value(om_attrs_t *a, om_attr_mode_t mode, const char *key, const om_anyvalue_t *v)
{
    plan_t p;
    int rc = plan_set(a, mode, key, &p);
    if (rc <= 0) {
        return rc;
    }
    om_anyvalue_t copy;
    rc = copy_value(arena_of(a), v, &copy, 1);
    if (rc == OM_ENOMEM) {
        return fail(a);
    }
    return rc != 0 ? rc : commit(a, &p, key, &copy);
}

int om_attrs_delete(om_attrs_t *a, const char *key)
{
    if (a->batch == NULL || !om__batch_editing(a->batch)) {
        return OM_EPERM;
    }
    list_ref_t r = list_of(a);
    if (r.list == NULL) {
        return 0;
    }
    om_keyvalue_t **kvs = *r.list;
    size_t kept = 0;
    for (size_t i = 0; i < *r.n; i++) {
        if (kvs[i] != NULL && kvs[i]->key != NULL && strcmp(kvs[i]->key, key) == 0) {
            continue;
        }
        kvs[kept++] = kvs[i];
    }
    bool removed = kept != *r.n;
    *r.n = kept;
    return removed ? 1 : 0;
}
