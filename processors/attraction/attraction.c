/* attraction.c: checking, compiling and applying attribute actions (see attraction.h).
 *
 * Each action is carried out with the core's attribute API (om_attrs_*), so new values and
 * copies land in the batch's arena and a change that runs out of room leaves the list whole.
 * Values from the config (value, default_value) are copied into the batch on every set
 * (om_attrs_set_value deep-copies); a value read from the list itself (from_attribute) is
 * copied the same way, so setting a key from itself is safe.
 *
 * Semantics follow otelcol-contrib's attraction package, including two of its quirks:
 * - hash with both `key` and a `pattern` that matches that key hashes it twice (the key's
 *   value is hashed, then every key the pattern matches, the key among them);
 * - default_value is only read by insert, update and upsert. */
#include <errno.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "attraction_int.h"

const om_field_t proc_attraction_fields[] = {
    {.key = "key",
     .type = OM_F_STRING,
     .offset = offsetof(proc_attraction_cfg_t, key),
     .help = "the attribute to act upon"},
    {.key = "action",
     .type = OM_F_STRING,
     .offset = offsetof(proc_attraction_cfg_t, action),
     .help = "insert, update, upsert, delete, hash, extract or convert (any case)"},
    {.key = "value",
     .type = OM_F_ANYVALUE,
     .offset = offsetof(proc_attraction_cfg_t, value),
     .help = "the value to set, of the YAML value's type"},
    {.key = "default_value",
     .type = OM_F_ANYVALUE,
     .offset = offsetof(proc_attraction_cfg_t, default_value),
     .help = "insert/update/upsert: the value when value or from_attribute gives none"},
    {.key = "from_attribute",
     .type = OM_F_STRING,
     .offset = offsetof(proc_attraction_cfg_t, from_attribute),
     .help = "set the value of this attribute of the same item"},
    {.key = "from_context",
     .type = OM_F_STRING,
     .offset = offsetof(proc_attraction_cfg_t, from_context),
     .help = "not supported: batches carry no request context"},
    {.key = "pattern",
     .type = OM_F_STRING,
     .offset = offsetof(proc_attraction_cfg_t, pattern),
     .help = "delete/hash: keys to act upon; extract: a regex with named groups"},
    {.key = "converted_type",
     .type = OM_F_STRING,
     .offset = offsetof(proc_attraction_cfg_t, converted_type),
     .help = "convert: int, double or string"},
    {.key = NULL},
};

/* ------------------------------------------------------------------------------------------ */
/* Checking and compiling                                                                     */

static bool set(const char *s)
{
    return s != NULL && s[0] != '\0';
}

static kind_t kind_of(const char *name)
{
    static const char *const names[] = {"insert", "update",  "upsert", "delete",
                                        "hash",   "extract", "convert"};
    for (size_t i = 0; name != NULL && i < sizeof names / sizeof names[0]; i++) {
        if (strcasecmp(name, names[i]) == 0) {
            return (kind_t)(i + 1);
        }
    }
    return 0;
}

/* om_err_at with the action's path: "<list>[i]" or "<list>[i]::<field>". */
static int fail_at(om_err_t *err, const char *list_key, size_t i, const char *field,
                   const char *fmt, ...) OM_PRINTF(5, 6);

static int fail_at(om_err_t *err, const char *list_key, size_t i, const char *field,
                   const char *fmt, ...)
{
    char at[96], msg[256];
    if (field != NULL) {
        snprintf(at, sizeof at, "%s[%zu]::%s", list_key, i, field);
    } else {
        snprintf(at, sizeof at, "%s[%zu]", list_key, i);
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    om_err_at(err, at, "%s", msg);
    return OM_ECONFIG;
}

static int compile_pattern(const proc_attraction_cfg_t *c, const char *list_key, size_t i,
                           action_t *a, om_err_t *err)
{
    char msg[200];
    int rc = proc_attraction_re_compile(c->pattern, &a->re, msg, sizeof msg);
    if (rc == OM_ENOMEM) {
        om_err_set(err, OM_ENOMEM, "out of memory");
        return rc;
    }
    if (rc != 0) {
        return fail_at(err, list_key, i, "pattern",
                       "field \"pattern\" has invalid pattern: \"%s\": %s", c->pattern, msg);
    }
    return 0;
}

/* A config value's AnyValue encoding for the wire path; *out stays NULL for an unset or
 * empty one. */
static bool encode(const om_anyvalue_t *v, uint8_t **out, size_t *len)
{
    *out = NULL;
    *len = v != NULL ? protobuf_c_message_get_packed_size(&v->base) : 0;
    if (*len == 0) {
        return true;
    }
    *out = om_malloc(*len);
    if (*out == NULL) {
        return false;
    }
    protobuf_c_message_pack(&v->base, *out);
    return true;
}

/* insert, update, upsert. */
static int compile_setter(const proc_attraction_cfg_t *c, const char *list_key, size_t i,
                          action_t *a, om_err_t *err)
{
    int sources = (c->value != NULL) + set(c->from_attribute) + set(c->from_context);
    if (sources == 0 && c->default_value == NULL) {
        return fail_at(err, list_key, i, NULL,
                       "either field \"value\", \"from_attribute\", \"from_context\" or "
                       "\"default_value\" setting must be specified");
    }
    if (sources > 1) {
        return fail_at(err, list_key, i, NULL, "multiple value sources being set");
    }
    if (set(c->pattern)) {
        return fail_at(err, list_key, i, "pattern",
                       "action \"%s\" does not use the \"pattern\" field", c->action);
    }
    if (set(c->converted_type)) {
        return fail_at(err, list_key, i, "converted_type",
                       "action \"%s\" does not use the \"converted_type\" field", c->action);
    }
    a->value = c->value;
    a->from = set(c->from_attribute) ? c->from_attribute : NULL;
    a->def = c->default_value;
    if (!encode(a->value, &a->value_enc, &a->value_enc_len) ||
        !encode(a->def, &a->def_enc, &a->def_enc_len)) {
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    return 0;
}

/* delete, hash. */
static int compile_remover(const proc_attraction_cfg_t *c, const char *list_key, size_t i,
                           action_t *a, om_err_t *err)
{
    if (c->value != NULL || set(c->from_attribute)) {
        return fail_at(err, list_key, i, c->value != NULL ? "value" : "from_attribute",
                       "action \"%s\" does not use \"value\" or \"from_attribute\" field",
                       c->action);
    }
    if (set(c->converted_type)) {
        return fail_at(err, list_key, i, "converted_type",
                       "action \"%s\" does not use the \"converted_type\" field", c->action);
    }
    return set(c->pattern) ? compile_pattern(c, list_key, i, a, err) : 0;
}

static int compile_extract(const proc_attraction_cfg_t *c, const char *list_key, size_t i,
                           action_t *a, om_err_t *err)
{
    if (c->value != NULL || set(c->from_attribute)) {
        return fail_at(err, list_key, i, NULL, "action \"%s\" does not use a value source field",
                       c->action);
    }
    if (!set(c->pattern)) {
        return fail_at(err, list_key, i, NULL,
                       "missing required field \"pattern\" for action \"%s\"", c->action);
    }
    if (set(c->converted_type)) {
        return fail_at(err, list_key, i, "converted_type",
                       "action \"%s\" does not use the \"converted_type\" field", c->action);
    }
    int rc = compile_pattern(c, list_key, i, a, err);
    if (rc != 0) {
        return rc;
    }
    uint32_t groups = proc_attraction_re_groups(a->re);
    if (groups == 0) {
        return fail_at(err, list_key, i, "pattern",
                       "field \"pattern\" contains no named matcher groups");
    }
    for (uint32_t g = 1; g <= groups; g++) {
        if (proc_attraction_re_group_name(a->re, g) == NULL) {
            return fail_at(err, list_key, i, "pattern",
                           "field \"pattern\" contains at least one unnamed matcher group");
        }
    }
    return 0;
}

static int compile_convert(const proc_attraction_cfg_t *c, const char *list_key, size_t i,
                           action_t *a, om_err_t *err)
{
    if (c->value != NULL || set(c->from_attribute) || set(c->pattern)) {
        return fail_at(err, list_key, i, NULL,
                       "action \"%s\" does not use value sources or \"pattern\" field", c->action);
    }
    const char *t = c->converted_type != NULL ? c->converted_type : "";
    if (t[0] == '\0') {
        return fail_at(err, list_key, i, NULL,
                       "missing required field \"converted_type\" for action \"%s\"", c->action);
    }
    a->conv = strcmp(t, "int") == 0      ? CONV_INT
              : strcmp(t, "double") == 0 ? CONV_DOUBLE
              : strcmp(t, "string") == 0 ? CONV_STRING
                                         : 0;
    if (a->conv == 0) {
        return fail_at(err, list_key, i, "converted_type",
                       "invalid value \"%s\" in field \"converted_type\" for action \"%s\" "
                       "(valid values: [int, double, string])",
                       t, c->action);
    }
    return 0;
}

/* One action, checked in the order otelcol's NewAttrProc checks it. On failure a->re may be
 * set: the caller frees it. */
static int compile_one(const proc_attraction_cfg_t *c, const char *list_key, size_t i, action_t *a,
                       om_err_t *err)
{
    *a = (action_t){.kind = kind_of(c->action)};
    if (a->kind == A_DELETE || a->kind == A_HASH) {
        if (!set(c->key) && !set(c->pattern)) {
            return fail_at(err, list_key, i, NULL,
                           "missing required field (at least one of \"key\" and \"pattern\" "
                           "have to be used)");
        }
    } else if (!set(c->key)) {
        return fail_at(err, list_key, i, NULL, "missing required field \"key\"");
    }
    a->key = set(c->key) ? c->key : NULL;
    if (set(c->from_context)) {
        return fail_at(err, list_key, i, "from_context",
                       "not supported by otelmon: its batches carry no request context (client "
                       "metadata, auth data or client address); remove from_context");
    }
    switch (a->kind) {
    case A_INSERT:
    case A_UPDATE:
    case A_UPSERT:
        return compile_setter(c, list_key, i, a, err);
    case A_DELETE:
    case A_HASH:
        return compile_remover(c, list_key, i, a, err);
    case A_EXTRACT:
        return compile_extract(c, list_key, i, a, err);
    case A_CONVERT:
        return compile_convert(c, list_key, i, a, err);
    default:
        return fail_at(err, list_key, i, c->action != NULL ? "action" : NULL,
                       "unsupported action \"%s\" (valid values: [insert, update, upsert, delete, "
                       "hash, extract, convert])",
                       c->action != NULL ? c->action : "");
    }
}

int proc_attraction_new(const om_seclist_t *actions, const char *list_key, proc_attraction_t **out,
                        om_err_t *err)
{
    *out = NULL;
    proc_attraction_t *p = om_calloc(1, sizeof *p);
    if (p != NULL) {
        p->actions = om_calloc(actions->n + 1, sizeof *p->actions);
    }
    if (p == NULL || p->actions == NULL) {
        om_free(p);
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    om_strbuf_init(&p->scratch, 0);
    for (size_t i = 0; i < actions->n; i++) {
        const proc_attraction_cfg_t *c = OM_SECLIST_AT(actions, proc_attraction_cfg_t, i);
        p->n = i + 1;
        int rc = compile_one(c, list_key, i, &p->actions[i], err);
        if (rc != 0) {
            proc_attraction_free(p);
            return rc;
        }
    }
    *out = p;
    return 0;
}

void proc_attraction_free(proc_attraction_t *p)
{
    if (p == NULL) {
        return;
    }
    for (size_t i = 0; i < p->n; i++) {
        proc_attraction_re_free(p->actions[i].re);
        om_free(p->actions[i].value_enc);
        om_free(p->actions[i].def_enc);
    }
    om_free(p->actions);
    om_strbuf_free(&p->scratch);
    proc_attraction_wire_free(&p->wire);
    om_free(p);
}

int proc_attraction_validate(const om_seclist_t *actions, const char *list_key, om_err_t *err)
{
    proc_attraction_t *p = NULL;
    int rc = proc_attraction_new(actions, list_key, &p, err);
    proc_attraction_free(p);
    return rc;
}

uint64_t proc_attraction_limit_hits(const proc_attraction_t *p)
{
    return p->limit_hits;
}

/* ------------------------------------------------------------------------------------------ */
/* Values                                                                                     */

bool proc_attraction_match(proc_attraction_t *p, proc_attraction_re_t *re, const char *s, size_t n)
{
    bool hit = false;
    int m = proc_attraction_re_match(re, s, n, &hit);
    if (hit) {
        p->limit_hits++;
    }
    return m == 1;
}

/* The value to set: value, else from_attribute's, else default_value; NULL when none. */
static const om_anyvalue_t *source_of(const action_t *ac, const om_attrs_t *a)
{
    if (ac->value != NULL) {
        return ac->value;
    }
    const om_anyvalue_t *v = ac->from != NULL ? om_attrs_get(a, ac->from) : NULL;
    return v != NULL ? v : ac->def;
}

/* Go's strconv.ParseInt(s, 10, 64). */
static bool go_parse_int10(const char *s, int64_t *out)
{
    const char *p = s + (s[0] == '+' || s[0] == '-');
    if (*p < '0' || *p > '9') {
        return false;
    }
    for (const char *q = p; *q != '\0'; q++) {
        if (*q < '0' || *q > '9') {
            return false;
        }
    }
    errno = 0;
    long long v = strtoll(s, NULL, 10);
    if (errno == ERANGE) {
        return false;
    }
    *out = v;
    return true;
}

/* Go's strconv.ParseFloat(s, 64): decimal and 0x (with a p exponent) forms, inf, infinity and
 * nan in any case; no blanks, no '_'; a value beyond a double's range is an error. */
static bool go_parse_float(const char *s, double *out)
{
    const char *p = s + (s[0] == '+' || s[0] == '-');
    if (strcasecmp(p, "inf") == 0 || strcasecmp(p, "infinity") == 0) {
        *out = s[0] == '-' ? -INFINITY : INFINITY;
        return true;
    }
    if (strcasecmp(p, "nan") == 0) {
        *out = NAN;
        return true;
    }
    bool hex = p[0] == '0' && (p[1] == 'x' || p[1] == 'X');
    if (!(p[0] == '.' || (p[0] >= '0' && p[0] <= '9')) || (hex && strpbrk(p, "pP") == NULL)) {
        return false;
    }
    /* strtod takes more than Go: blanks, '_'-free but "nan(...)" and "infinity" inside other
     * text. What is left after these checks, it reads as Go does. */
    for (const char *q = p; *q != '\0'; q++) {
        if (*q == '_' || *q == ' ' || *q == '(' || *q == 'n' || *q == 'N' || *q == 'i' ||
            *q == 'I') {
            return false;
        }
    }
    errno = 0;
    char *end = NULL;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || (errno == ERANGE && isinf(v))) {
        return false;
    }
    *out = v;
    return true;
}

/* Go's int64(f) as amd64 computes it: truncation, and INT64_MIN for NaN and out of range. */
static int64_t go_double_to_int(double f)
{
    if (isnan(f) || f >= 9223372036854775808.0 || f < -9223372036854775808.0) {
        return INT64_MIN;
    }
    return (int64_t)f;
}

/* What convert makes of v: a kind (0: no change) and the new value in *out. */
static int converted(const action_t *ac, const om_anyvalue_t *v, om_anyvalue_t *out)
{
    int kind = v->value_case;
    *out = *v;
    if (ac->conv == CONV_STRING) {
        return kind == OM_ANYVALUE_STRING ? 0 : OM_ANYVALUE_STRING;
    }
    if (ac->conv == CONV_INT) {
        out->value_case = OM_ANYVALUE_INT;
        if (kind == OM_ANYVALUE_DOUBLE) {
            out->int_value = go_double_to_int(v->double_value);
        } else if (kind == OM_ANYVALUE_BOOL) {
            out->int_value = v->bool_value ? 1 : 0;
        } else if (kind != OM_ANYVALUE_STRING || v->string_value == NULL ||
                   !go_parse_int10(v->string_value, &out->int_value)) {
            return 0;
        }
        return OM_ANYVALUE_INT;
    }
    out->value_case = OM_ANYVALUE_DOUBLE;
    if (kind == OM_ANYVALUE_INT) {
        out->double_value = (double)v->int_value;
    } else if (kind == OM_ANYVALUE_BOOL) {
        out->double_value = v->bool_value ? 1 : 0;
    } else if (kind != OM_ANYVALUE_STRING || v->string_value == NULL ||
               !go_parse_float(v->string_value, &out->double_value)) {
        return 0;
    }
    return OM_ANYVALUE_DOUBLE;
}

/* The lowercase hex SHA-256 of v's bytes as otelcol hashes them, in hex[65]; false for the
 * kinds otelcol turns into "" (unset, bytes, arrays, maps). */
static bool hash_hex(const om_anyvalue_t *v, char hex[65])
{
    uint8_t buf[8];
    const void *data = buf;
    size_t len = 8;
    uint64_t bits = 0;
    switch (v != NULL ? (int)v->value_case : 0) {
    case OM_ANYVALUE_STRING:
        data = v->string_value != NULL ? v->string_value : "";
        len = strlen(data);
        break;
    case OM_ANYVALUE_BOOL:
        buf[0] = v->bool_value ? 1 : 0;
        len = 1;
        break;
    case OM_ANYVALUE_INT:
        bits = (uint64_t)v->int_value;
        break;
    case OM_ANYVALUE_DOUBLE:
        memcpy(&bits, &v->double_value, sizeof bits);
        break;
    default:
        return false;
    }
    if (len == 8) {
        om_le64_store(buf, bits);
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    if (EVP_Digest(data, len, md, &md_len, EVP_sha256(), NULL) != 1 || md_len != 32) {
        return false;
    }
    static const char digits[] = "0123456789abcdef";
    for (unsigned i = 0; i < 32; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 0xF];
    }
    hex[64] = '\0';
    return true;
}

/* ------------------------------------------------------------------------------------------ */
/* Would an action change the list? (on the list as it was)                                   */

static bool key_matches(proc_attraction_t *p, const action_t *ac, const om_keyvalue_t *kv)
{
    return ac->re != NULL && kv != NULL && kv->key != NULL &&
           proc_attraction_match(p, ac->re, kv->key, strlen(kv->key));
}

static bool any_key_matches(proc_attraction_t *p, const action_t *ac, const om_attrs_t *a)
{
    size_t n = om_attrs_count(a);
    for (size_t i = 0; i < n; i++) {
        if (key_matches(p, ac, om_attrs_at(a, i))) {
            return true;
        }
    }
    return false;
}

/* extract: the value of key as a string to match, or NULL. */
static const char *extract_subject(const action_t *ac, const om_attrs_t *a)
{
    const om_anyvalue_t *v = om_attrs_get(a, ac->key);
    if (v == NULL || v->value_case != OM_ANYVALUE_STRING) {
        return NULL;
    }
    return v->string_value != NULL ? v->string_value : "";
}

static bool extract_changes(proc_attraction_t *p, const action_t *ac, const om_attrs_t *a)
{
    const char *s = extract_subject(ac, a);
    if (s == NULL || !proc_attraction_match(p, ac->re, s, strlen(s))) {
        return false;
    }
    uint32_t groups = proc_attraction_re_groups(ac->re);
    for (uint32_t g = 1; g <= groups; g++) {
        size_t start = 0, end = 0;
        if (!proc_attraction_re_group(ac->re, g, &start, &end)) {
            start = end = 0;
        }
        const om_anyvalue_t *cur = om_attrs_get(a, proc_attraction_re_group_name(ac->re, g));
        if (cur == NULL || cur->value_case != OM_ANYVALUE_STRING || cur->string_value == NULL ||
            strlen(cur->string_value) != end - start ||
            memcmp(cur->string_value, s + start, end - start) != 0) {
            return true;
        }
    }
    return false;
}

static bool action_changes(proc_attraction_t *p, const action_t *ac, const om_attrs_t *a)
{
    const om_anyvalue_t *cur = ac->key != NULL ? om_attrs_get(a, ac->key) : NULL;
    switch (ac->kind) {
    case A_INSERT:
        return cur == NULL && source_of(ac, a) != NULL;
    case A_UPDATE:
    case A_UPSERT: {
        const om_anyvalue_t *src = source_of(ac, a);
        if (src == NULL || (cur == NULL && ac->kind == A_UPDATE)) {
            return false;
        }
        return cur == NULL || !om_anyvalue_equal(cur, src);
    }
    case A_DELETE:
    case A_HASH:
        return cur != NULL || any_key_matches(p, ac, a);
    case A_EXTRACT:
        return extract_changes(p, ac, a);
    case A_CONVERT: {
        om_anyvalue_t out;
        return cur != NULL && converted(ac, cur, &out) != 0;
    }
    }
    return false;
}

bool proc_attraction_would_change(proc_attraction_t *p, const om_attrs_t *a)
{
    for (size_t i = 0; i < p->n; i++) {
        if (action_changes(p, &p->actions[i], a)) {
            return true;
        }
    }
    return false;
}

/* ------------------------------------------------------------------------------------------ */
/* Applying                                                                                   */

/* om_attrs_* results: 1 changed, 0 not, < 0 an error that stops the list. */
static int merge(int acc, int rc)
{
    return rc < 0 ? rc : (acc | rc);
}

static int delete_matching(proc_attraction_t *p, const action_t *ac, om_attrs_t *a)
{
    int changed = ac->key != NULL ? om_attrs_delete(a, ac->key) : 0;
    if (changed < 0 || ac->re == NULL) {
        return changed;
    }
    /* Each turn deletes an attribute or moves on: bounded by the list's length. */
    for (size_t i = 0; i < om_attrs_count(a);) {
        om_keyvalue_t *kv = om_attrs_at(a, i);
        if (!key_matches(p, ac, kv)) {
            i++;
            continue;
        }
        int rc = om_attrs_delete(a, kv->key);
        if (rc < 0) {
            return rc;
        }
        changed = 1;
    }
    return changed;
}

static int hash_key(om_attrs_t *a, const char *key)
{
    const om_anyvalue_t *v = om_attrs_get(a, key);
    if (v == NULL) {
        return 0;
    }
    char hex[65];
    if (!hash_hex(v, hex)) {
        hex[0] = '\0';
    }
    return om_attrs_set_str(a, OM_ATTR_UPDATE, key, hex);
}

static int hash_matching(proc_attraction_t *p, const action_t *ac, om_attrs_t *a)
{
    int changed = ac->key != NULL ? hash_key(a, ac->key) : 0;
    size_t n = om_attrs_count(a);
    for (size_t i = 0; changed >= 0 && ac->re != NULL && i < n; i++) {
        om_keyvalue_t *kv = om_attrs_at(a, i);
        if (key_matches(p, ac, kv)) {
            changed = merge(changed, hash_key(a, kv->key));
        }
    }
    return changed;
}

static int extract(proc_attraction_t *p, const action_t *ac, om_attrs_t *a)
{
    /* The subject stays readable while groups are set: a set overwrites the value node, not
     * the string's bytes in the arena. */
    const char *s = extract_subject(ac, a);
    if (s == NULL || !proc_attraction_match(p, ac->re, s, strlen(s))) {
        return 0;
    }
    int changed = 0;
    uint32_t groups = proc_attraction_re_groups(ac->re);
    for (uint32_t g = 1; changed >= 0 && g <= groups; g++) {
        size_t start = 0, end = 0;
        if (!proc_attraction_re_group(ac->re, g, &start, &end)) {
            start = end = 0;
        }
        changed = merge(changed, om_attrs_set_strn(a, OM_ATTR_UPSERT,
                                                   proc_attraction_re_group_name(ac->re, g),
                                                   s + start, end - start));
    }
    return changed;
}

static int convert(proc_attraction_t *p, const action_t *ac, om_attrs_t *a)
{
    const om_anyvalue_t *cur = om_attrs_get(a, ac->key);
    om_anyvalue_t out;
    int kind = cur != NULL ? converted(ac, cur, &out) : 0;
    if (kind == OM_ANYVALUE_INT) {
        return om_attrs_set_int(a, OM_ATTR_UPDATE, ac->key, out.int_value);
    }
    if (kind == OM_ANYVALUE_DOUBLE) {
        return om_attrs_set_double(a, OM_ATTR_UPDATE, ac->key, out.double_value);
    }
    if (kind != OM_ANYVALUE_STRING) {
        return 0;
    }
    om_strbuf_reset(&p->scratch);
    om_strbuf_puts(&p->scratch, "");
    om_anyvalue_to_string(cur, &p->scratch);
    if (p->scratch.failed) {
        return OM_ENOMEM;
    }
    return om_attrs_set_strn(a, OM_ATTR_UPDATE, ac->key, p->scratch.data, p->scratch.len);
}

static int apply_one(proc_attraction_t *p, const action_t *ac, om_attrs_t *a)
{
    switch (ac->kind) {
    case A_INSERT:
    case A_UPDATE:
    case A_UPSERT: {
        const om_anyvalue_t *src = source_of(ac, a);
        om_attr_mode_t mode = ac->kind == A_INSERT   ? OM_ATTR_INSERT
                              : ac->kind == A_UPDATE ? OM_ATTR_UPDATE
                                                     : OM_ATTR_UPSERT;
        return src != NULL ? om_attrs_set_value(a, mode, ac->key, src) : 0;
    }
    case A_DELETE:
        return delete_matching(p, ac, a);
    case A_HASH:
        return hash_matching(p, ac, a);
    case A_EXTRACT:
        return extract(p, ac, a);
    case A_CONVERT:
        return convert(p, ac, a);
    }
    return 0;
}

int proc_attraction_apply(proc_attraction_t *p, om_attrs_t *a)
{
    int changed = 0;
    for (size_t i = 0; i < p->n && changed >= 0; i++) {
        changed = merge(changed, apply_one(p, &p->actions[i], a));
    }
    return changed;
}
