/* attraction_fuzz.c: libFuzzer target for the pattern path of attribute actions: any pattern
 * compiled (PCRE2 under the match limits), matched against any subject, and the actions that
 * use patterns (delete, hash, extract) and convert run on a list made from the input.
 *
 * Input: byte 0 picks the action; the rest is "pattern\nsubject". Checks, beyond the
 * sanitizers: group offsets lie inside the subject; and the read-only check is held to what
 * applying does (would_change false means the list is left exactly as it was). Allocation
 * failures are injected from byte 0's high bits, so the failure paths run too. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attraction.h"

static char *copy(const uint8_t *d, size_t n)
{
    char *s = malloc(n + 1);
    if (s != NULL) {
        memcpy(s, d, n);
        s[n] = '\0';
    }
    return s;
}

static om_keyvalue_t *kv_str(om_arena_t *a, const char *key, const char *val)
{
    om_keyvalue_t *kv = om_arena_alloc(a, sizeof *kv);
    om_anyvalue_t *v = om_arena_alloc(a, sizeof *v);
    if (kv == NULL || v == NULL) {
        return NULL;
    }
    protobuf_c_message_init(&opentelemetry__proto__common__v1__key_value__descriptor, kv);
    protobuf_c_message_init(&opentelemetry__proto__common__v1__any_value__descriptor, v);
    kv->key = om_arena_strndup(a, key, strlen(key));
    v->value_case = OM_ANYVALUE_STRING;
    v->string_value = om_arena_strndup(a, val, strlen(val));
    kv->value = v;
    return kv->key != NULL && v->string_value != NULL ? kv : NULL;
}

/* Whether two lists hold the same keys and values in the same order. */
static bool same_list(om_keyvalue_t **a, size_t na, om_keyvalue_t **b, size_t nb)
{
    if (na != nb) {
        return false;
    }
    for (size_t i = 0; i < na; i++) {
        if (strcmp(a[i]->key, b[i]->key) != 0 || !om_anyvalue_equal(a[i]->value, b[i]->value) ||
            (a[i]->value != NULL && a[i]->value->value_case != b[i]->value->value_case)) {
            return false;
        }
    }
    return true;
}

static void check_groups(const char *pattern, const char *subject)
{
    proc_attraction_re_t *re = NULL;
    char msg[200];
    if (proc_attraction_re_compile(pattern, &re, msg, sizeof msg) != 0) {
        return;
    }
    size_t len = strlen(subject);
    if (proc_attraction_re_match(re, subject, len, NULL) == 1) {
        for (uint32_t g = 0; g <= proc_attraction_re_groups(re); g++) {
            size_t start, end;
            if (proc_attraction_re_group(re, g, &start, &end) && (start > end || end > len)) {
                abort();
            }
        }
    }
    proc_attraction_re_free(re);
}

/* Runs one action on [subject="x", v=subject, n="5"] and holds would_change to the result. */
static void run_action(uint8_t sel, const char *pattern, const char *subject)
{
    static const char *const kinds[] = {"delete", "hash", "extract", "convert"};
    static const char *const types[] = {"int", "double", "string"};
    proc_attraction_cfg_t cfg = {.action = (char *)kinds[sel % 4]};
    if (sel % 4 == 3) {
        cfg.key = "v";
        cfg.converted_type = (char *)types[(sel / 4) % 3];
    } else {
        cfg.key = sel % 4 == 2 ? "v" : NULL;
        cfg.pattern = (char *)pattern;
    }
    om_seclist_t list = {.n = 1, .items = &cfg};
    proc_attraction_t *p = NULL;
    om_err_t err = {0};
    om_batch_t *b = om_batch_new(OM_SIG_TRACES, 0);
    if (b == NULL || om_batch_edit(&b, &err) != 0 ||
        proc_attraction_new(&list, "actions", &p, &err) != 0) {
        goto out;
    }
    om_arena_t *a = b->arenas[0];
    om_keyvalue_t **kvs = om_arena_alloc(a, 3 * sizeof *kvs);
    om_keyvalue_t **before = om_arena_alloc(a, 3 * sizeof *kvs);
    if (kvs == NULL || before == NULL || (kvs[0] = kv_str(a, subject, "x")) == NULL ||
        (kvs[1] = kv_str(a, "v", subject)) == NULL || (kvs[2] = kv_str(a, "n", "5")) == NULL) {
        goto out;
    }
    for (int i = 0; i < 3; i++) {
        /* Copies of the nodes as they are: applying overwrites values in place. */
        before[i] = kv_str(a, kvs[i]->key, kvs[i]->value->string_value);
        if (before[i] == NULL) {
            goto out;
        }
    }
    size_t n = 3;
    om_attrs_t attrs = om_attrs_of(b, &kvs, &n);
    bool predicted = proc_attraction_would_change(p, &attrs);
    int rc = proc_attraction_apply(p, &attrs);
    if (rc >= 0 && !predicted && !same_list(before, 3, kvs, n)) {
        abort(); /* the check said nothing would change, and something did */
    }
out:
    proc_attraction_free(p);
    om_batch_release(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 4096) {
        return 0;
    }
    uint8_t sel = data[0];
    const uint8_t *nl = memchr(data + 1, '\n', size - 1);
    size_t plen = nl != NULL ? (size_t)(nl - (data + 1)) : size - 1;
    char *pattern = copy(data + 1, plen);
    char *subject = nl != NULL ? copy(nl + 1, size - 1 - plen - 1) : copy((const uint8_t *)"", 0);
    if (pattern != NULL && subject != NULL && strlen(pattern) == plen) {
        check_groups(pattern, subject);
        om_alloc_fail_after((sel & 0x80) != 0 ? (unsigned long)(sel & 0x3F) + 1 : 0);
        run_action(sel, pattern, subject);
        om_alloc_fail_after(0);
    }
    free(pattern);
    free(subject);
    return 0;
}
