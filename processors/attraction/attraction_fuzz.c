/* attraction_fuzz.c: libFuzzer target for what parses input in attribute actions.
 *
 * Byte 0 below 0x40: the pattern path. Any pattern compiled (PCRE2 under the match limits),
 * matched against any subject, and the actions that use patterns (delete, hash, extract) and
 * convert run on a list made from the input. The rest of the input is "pattern\nsubject".
 * Checks, beyond the sanitizers: group offsets lie inside the subject, and the read-only
 * check is held to what applying does (would_change false means the list is left exactly as
 * it was). Allocation failures are injected when byte 0 has its high bit set.
 *
 * Byte 0 from 0x40 on: the wire path, differentially. The rest is an Export request of the
 * signal (byte 0 & 3) as protobuf; one of a few action lists (byte 0 >> 2 & 7) runs on it on
 * the wire bytes (attraction_wire.c) and on the decoded structs; both results, encoded from
 * structs, must be the same bytes. */
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

/* ---- the wire path against the decoding path ---- */

static const char *const wire_lists[][3] = {
    {"upsert:env=v", "delete:a", NULL},
    {"insert:b=a", "update:a=v", "delete:"},
    {"delete~^a", "upsert:a=v", NULL},
    {"upsert:c=a", "insert:d=", NULL},
};

/* An action from "kind:key=from" (from_attribute), "kind:key=v" (value "v"), "kind:key=" (an
 * empty string value), "delete:key" or "delete~pattern". */
static om_anyvalue_t fuzz_value = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
static om_anyvalue_t empty_value = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;

static void parse_spec(const char *spec, proc_attraction_cfg_t *c, char *buf, size_t n)
{
    snprintf(buf, n, "%s", spec);
    char *sep = strpbrk(buf, ":~");
    bool pattern = *sep == '~';
    *sep = '\0';
    c->action = buf;
    if (pattern) {
        c->pattern = sep + 1;
        return;
    }
    c->key = sep + 1;
    char *eq = strchr(c->key, '=');
    if (eq == NULL) {
        return;
    }
    *eq = '\0';
    if (eq[1] == '\0') {
        c->value = &empty_value;
    } else if (strcmp(eq + 1, "v") == 0) {
        c->value = &fuzz_value;
    } else {
        c->from_attribute = eq + 1;
    }
}

static int apply_item(om_item_t *it, void *arg)
{
    int rc = proc_attraction_apply(arg, &it->attrs);
    return rc < 0 ? rc : OM_KEEP;
}

static uint8_t *pack_msg(om_batch_t *b, size_t *len)
{
    om_err_t err = {0};
    if (om_batch_decode(b, &err) != 0) {
        return NULL;
    }
    *len = protobuf_c_message_get_packed_size(b->msg);
    uint8_t *out = malloc(*len + 1);
    if (out != NULL) {
        protobuf_c_message_pack(b->msg, out);
    }
    return out;
}

static void run_wire(uint8_t sel, const uint8_t *data, size_t size)
{
    static const om_signal_t sigs[] = {OM_SIG_TRACES, OM_SIG_METRICS, OM_SIG_LOGS, OM_SIG_TRACES};
    static const om_level_t levels[] = {OM_LEVEL_SPAN, OM_LEVEL_DATAPOINT, OM_LEVEL_LOG,
                                        OM_LEVEL_RESOURCE};
    fuzz_value.value_case = OM_ANYVALUE_STRING;
    fuzz_value.string_value = "v";
    empty_value.value_case = OM_ANYVALUE_STRING;
    empty_value.string_value = "";
    const char *const *specs = wire_lists[(sel >> 2) & 3];
    proc_attraction_cfg_t cfgs[3] = {{0}};
    char bufs[3][64];
    size_t n = 0;
    for (; n < 3 && specs[n] != NULL; n++) {
        parse_spec(specs[n], &cfgs[n], bufs[n], sizeof bufs[n]);
    }
    om_seclist_t list = {.n = n, .items = cfgs};
    proc_attraction_t *p = NULL;
    om_err_t err = {0};
    om_batch_t *w = NULL, *d = NULL;
    om_signal_t sig = sigs[sel & 3];
    om_level_t level = (sel & 0x20) != 0 ? OM_LEVEL_RESOURCE : levels[sel & 3];
    if (proc_attraction_new(&list, "actions", &p, &err) != 0 ||
        om_batch_decode_proto(sig, data, size, 0, &w, &err) != 0 ||
        om_batch_decode_proto(sig, data, size, 0, &d, &err) != 0) {
        goto out;
    }
    int rw = proc_attraction_wire_apply(p, w, level, &err);
    int rd = om_batch_edit(&d, &err);
    rd = rd != 0 ? rd : om_batch_walk(&d, level, apply_item, p, &err);
    if (rw == 0 && rd >= 0) {
        size_t lw = 0, ld = 0;
        uint8_t *pw = pack_msg(w, &lw), *pd = pack_msg(d, &ld);
        if (pw != NULL && pd != NULL && (lw != ld || memcmp(pw, pd, lw) != 0)) {
            abort(); /* the wire path and the decoding path disagree */
        }
        free(pw);
        free(pd);
    }
out:
    om_batch_release(w);
    om_batch_release(d);
    proc_attraction_free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 65536) {
        return 0;
    }
    uint8_t sel = data[0];
    if ((sel & 0x40) != 0) {
        run_wire(sel, data + 1, size - 1);
        return 0;
    }
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
