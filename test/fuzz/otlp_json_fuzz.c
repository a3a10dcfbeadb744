/* otlp_json_fuzz.c: OTLP/JSON decoding and encoding, and the JSON reader against jansson.
 *
 * The reader (src/json.c) must accept exactly what jansson accepts, with the same values,
 * except integers beyond int64, which it reads as reals where jansson refuses them; of keys
 * given twice it keeps every member where jansson keeps the last value.
 *
 * The input is decoded as each signal;
 * whatever decodes must encode, and the encoding must be stable: decoding our own output and
 * encoding it again gives the same bytes. (One round may normalise the input, e.g. a -0 that
 * jansson reads as the integer 0, so stability is checked from the second round on.) A small
 * arena cap on every other input keeps the "too big" path reachable. */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "om.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* decode as sig, then encode into out (reset first). 0 on success. */
static int roundtrip(om_signal_t sig, const char *in, size_t len, size_t cap, om_strbuf_t *out)
{
    om_batch_t *b = NULL;
    int rc = om_batch_decode_json(sig, in, len, cap, &b, NULL);
    if (rc != 0) {
        if (b != NULL) {
            abort(); /* a failed decode hands out nothing */
        }
        return rc;
    }
    if (b->items != om_batch_count_items(b)) {
        abort();
    }
    om_strbuf_reset(out);
    rc = om_otlp_json_encode(b, out);
    om_batch_release(b);
    return rc;
}

static void check_signal(om_signal_t sig, const char *in, size_t len, size_t cap)
{
    om_strbuf_t e1, e2, e3;
    om_strbuf_init(&e1, 64u << 20);
    om_strbuf_init(&e2, 64u << 20);
    om_strbuf_init(&e3, 64u << 20);
    if (roundtrip(sig, in, len, cap, &e1) != 0) {
        goto out;
    }
    /* Our own output always decodes (without a cap: the JSON may be smaller than its
     * decoded form); a failure here can only be out of memory. */
    int rc = roundtrip(sig, e1.data, e1.len, 0, &e2);
    if (rc != 0) {
        if (rc != OM_ENOMEM) {
            abort();
        }
        goto out;
    }
    if (e1.len == e2.len && memcmp(e1.data, e2.data, e1.len) == 0) {
        goto out;
    }
    rc = roundtrip(sig, e2.data, e2.len, 0, &e3);
    if (rc == 0 && (e2.len != e3.len || memcmp(e2.data, e3.data, e2.len) != 0)) {
        abort();
    }
out:
    om_strbuf_free(&e1);
    om_strbuf_free(&e2);
    om_strbuf_free(&e3);
}

static bool same_value(const om_json_t *a, json_t *b);

/* Whether member i is the last of its key in object o (jansson keeps that one's value). */
static bool last_of_key(const om_json_t *o, uint32_t i)
{
    const om_json_member_t *m = &o->u.members[i];
    for (uint32_t k = i + 1; k < o->n; k++) {
        const om_json_member_t *later = &o->u.members[k];
        if (later->key_len == m->key_len && memcmp(later->key, m->key, m->key_len) == 0) {
            return false;
        }
    }
    return true;
}

static bool same_object(const om_json_t *a, json_t *b)
{
    size_t unique = 0;
    if (!json_is_object(b)) {
        return false;
    }
    for (uint32_t i = 0; i < a->n; i++) {
        const om_json_member_t *m = &a->u.members[i];
        if (strlen(m->key) != m->key_len) {
            return false;
        }
        if (!last_of_key(a, i)) {
            continue;
        }
        unique++;
        json_t *v = json_object_get(b, m->key);
        if (v == NULL || !same_value(&m->value, v)) {
            return false;
        }
    }
    return unique == json_object_size(b);
}

static bool same_value(const om_json_t *a, json_t *b)
{
    switch (a->type) {
    case OM_JSON_NULL:
        return json_is_null(b);
    case OM_JSON_TRUE:
        return json_is_true(b);
    case OM_JSON_FALSE:
        return json_is_false(b);
    case OM_JSON_INTEGER:
        return json_is_integer(b) && json_integer_value(b) == a->u.i;
    case OM_JSON_REAL:
        return json_is_real(b) && json_real_value(b) == a->u.r;
    case OM_JSON_STRING:
        return json_is_string(b) && json_string_length(b) == a->n && a->u.s[a->n] == '\0' &&
               memcmp(json_string_value(b), a->u.s, a->n) == 0;
    case OM_JSON_ARRAY:
        if (!json_is_array(b) || json_array_size(b) != a->n) {
            return false;
        }
        for (uint32_t i = 0; i < a->n; i++) {
            if (!same_value(&a->u.items[i], json_array_get(b, i))) {
                return false;
            }
        }
        return true;
    default:
        return same_object(a, b);
    }
}

static void check_reader(const char *data, size_t size)
{
    om_arena_t *a = om_arena_new(0);
    const om_json_t *ours = NULL;
    om_err_t err = {0};
    int rc = om_json_parse(a, data, size, &ours, &err);
    json_error_t jerr;
    json_t *theirs = json_loadb(data, size, JSON_DECODE_ANY, &jerr);
    if (rc == OM_ENOMEM) {
        /* nothing to compare */
    } else if (rc != 0 && theirs != NULL && memchr(data, '\0', size) == NULL) {
        /* Refused what jansson accepts. (jansson takes a NUL byte right after a top-level
         * number for the end of input and accepts "1\0"; we do not.) */
        abort();
    } else if (rc == 0 && theirs == NULL && strstr(jerr.text, "too big") == NULL) {
        abort(); /* accepted what jansson refuses, for another reason than a big integer */
    } else if (rc == 0 && theirs != NULL && !same_value(ours, theirs)) {
        abort(); /* read differently */
    }
    json_decref(theirs);
    om_arena_unref(a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    om_log_set_level(OM_LOG_NONE);
    check_reader((const char *)data, size);
    size_t cap = (size & 1) ? 4096 : (16u << 20);
    for (int i = 0; i < OM_SIG_COUNT; i++) {
        check_signal(om_signal_from_index(i), (const char *)data, size, cap);
    }
    return 0;
}
