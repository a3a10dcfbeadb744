/* attraction_wire.c: attribute actions carried out on the protobuf bytes of a request, for
 * the actions that need no value parsed: insert, update and upsert (from value,
 * from_attribute or default_value) and delete (by key or pattern). The decoding path
 * (proc_attraction_apply on decoded nodes) costs an unpack and a pack of the whole request;
 * this costs two passes over the bytes and one copy.
 *
 * The request is walked down to the messages that own the attribute lists (spans, log
 * records, data points of every metric type, or resources), each attribute list is rebuilt as
 * a list of KeyValue encodings (originals where untouched, new ones in a scratch arena where
 * set), and the request is written again with every enclosing length fixed:
 *   1. measure: parse, apply the actions to each list, and record in pre-order the new size
 *      of every message on the way and the KeyValues of every list;
 *   2. write: walk again in the same order into one buffer of the exact size, copying every
 *      other field as it came. An item's attributes are written after its other fields (field
 *      order carries no meaning in protobuf; the attributes keep their order among themselves).
 * The result decodes to exactly what the decoding path makes of the same request (the
 * attraction_fuzz target and attraction_test hold it to that): the same list semantics (the
 * first of duplicate keys is read and updated, delete removes all), unknown fields of a
 * KeyValue kept, an absent Resource made when a resource attribute is set.
 *
 * Anything unexpected in the bytes (they were checked on arrival, so this is defensive) makes
 * it give up with OM_EINVAL: the caller then takes the decoding path. Loop thread only: the
 * scratch space lives in the action list. */
#include <string.h>

#include "attraction_int.h"

/* ------------------------------------------------------------------------------------------ */
/* Where the attribute lists are                                                              */

typedef struct wnode wnode_t;

typedef struct wrule {
    uint32_t field;       /* a length-delimited field holding a child message */
    const wnode_t *child; /* what the child is */
    bool make_absent;     /* the child is made when absent and an action sets an attribute */
} wrule_t;

struct wnode {
    const wrule_t *rules; /* children to walk into */
    size_t n_rules;
    uint32_t attrs_field; /* a message owning an attribute list: its field; else 0 */
};

#define NODE(rules)                                                                                \
    {                                                                                              \
        rules, sizeof rules / sizeof rules[0], 0                                                   \
    }
#define LEAF(field)                                                                                \
    {                                                                                              \
        NULL, 0, field                                                                             \
    }

static const wnode_t span = LEAF(9), log_record = LEAF(6), resource = LEAF(1);
static const wnode_t number_dp = LEAF(7), histogram_dp = LEAF(9), exp_histogram_dp = LEAF(1),
                     summary_dp = LEAF(7);

static const wrule_t scope_spans_r[] = {{2, &span, false}};
static const wrule_t scope_logs_r[] = {{2, &log_record, false}};
static const wnode_t scope_spans = NODE(scope_spans_r), scope_logs = NODE(scope_logs_r);
static const wrule_t resource_spans_r[] = {{2, &scope_spans, false}};
static const wrule_t resource_logs_r[] = {{2, &scope_logs, false}};
static const wnode_t resource_spans = NODE(resource_spans_r), resource_logs = NODE(resource_logs_r);

static const wrule_t gauge_r[] = {{1, &number_dp, false}};
static const wrule_t histogram_r[] = {{1, &histogram_dp, false}};
static const wrule_t exp_histogram_r[] = {{1, &exp_histogram_dp, false}};
static const wrule_t summary_r[] = {{1, &summary_dp, false}};
static const wnode_t gauge_or_sum = NODE(gauge_r), histogram = NODE(histogram_r),
                     exp_histogram = NODE(exp_histogram_r), summary = NODE(summary_r);
static const wrule_t metric_r[] = {{5, &gauge_or_sum, false},
                                   {7, &gauge_or_sum, false},
                                   {9, &histogram, false},
                                   {10, &exp_histogram, false},
                                   {11, &summary, false}};
static const wnode_t metric = NODE(metric_r);
static const wrule_t scope_metrics_r[] = {{2, &metric, false}};
static const wnode_t scope_metrics = NODE(scope_metrics_r);
static const wrule_t resource_metrics_r[] = {{2, &scope_metrics, false}};
static const wnode_t resource_metrics = NODE(resource_metrics_r);

static const wrule_t req_spans_r[] = {{1, &resource_spans, false}};
static const wrule_t req_logs_r[] = {{1, &resource_logs, false}};
static const wrule_t req_metrics_r[] = {{1, &resource_metrics, false}};
static const wnode_t req_spans = NODE(req_spans_r), req_logs = NODE(req_logs_r),
                     req_metrics = NODE(req_metrics_r);

/* The resource level: every signal's resource entries hold the Resource in field 1. */
static const wrule_t entry_r[] = {{1, &resource, true}};
static const wnode_t entry = NODE(entry_r);
static const wrule_t req_resources_r[] = {{1, &entry, false}};
static const wnode_t req_resources = NODE(req_resources_r);

static const wnode_t *root_of(om_signal_t sig, om_level_t level)
{
    if (level == OM_LEVEL_RESOURCE) {
        return &req_resources;
    }
    if (sig == OM_SIG_TRACES && level == OM_LEVEL_SPAN) {
        return &req_spans;
    }
    if (sig == OM_SIG_LOGS && level == OM_LEVEL_LOG) {
        return &req_logs;
    }
    if (sig == OM_SIG_METRICS && level == OM_LEVEL_DATAPOINT) {
        return &req_metrics;
    }
    return NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* Protobuf primitives                                                                        */

/* One field of a message: its number, wire type, whole extent [start, end) and, for
 * length-delimited fields, the payload [body, end). */
typedef struct field {
    uint32_t num, wt;
    const uint8_t *start, *body, *end;
} field_t;

/* The next field at *pp (the core's om_pb_next, inline for the short forms that are most of a
 * span's fields), with its whole extent; false at the end or on malformed input. */
static inline __attribute__((always_inline)) bool next_field(const uint8_t **pp, const uint8_t *end,
                                                             field_t *f)
{
    om_pb_field_t x;
    f->start = *pp;
    if (om_pb_next(pp, end, &x) != 1) {
        return false;
    }
    f->num = x.number;
    f->wt = x.wire_type;
    f->body = x.data;
    f->end = x.data + x.len;
    return true;
}

/* ------------------------------------------------------------------------------------------ */
/* Scratch vectors                                                                            */

/* Grow a vector of elem-size entries to hold one more; false when out of memory. */
static bool grow(void **v, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap) {
        return true;
    }
    size_t nc = *cap ? *cap * 2 : 64;
    void *nv = om_realloc(*v, nc * elem);
    if (nv == NULL) {
        return false;
    }
    *v = nv;
    *cap = nc;
    return true;
}

#define PUSH(w, vec, n, cap, val)                                                                  \
    (grow((void **)&(w)->vec, &(w)->cap, (w)->n, sizeof *(w)->vec)                                 \
         ? ((w)->vec[(w)->n++] = (val), true)                                                      \
         : false)

/* ------------------------------------------------------------------------------------------ */
/* One attribute list                                                                         */

static bool key_is(const proc_attraction_vkv_t *e, const char *key, size_t klen)
{
    return e->klen == klen && memcmp(e->key, key, klen) == 0;
}

static long find(const proc_attraction_wire_t *w, const char *key)
{
    size_t klen = strlen(key);
    for (size_t i = 0; i < w->n_list; i++) {
        if (key_is(&w->list[i], key, klen)) {
            return (long)i;
        }
    }
    return -1;
}

/* The usual KeyValue, b..end: its key (field 1) then its value (field 2), each with a one-byte
 * length, and nothing else. Then each is the last of its kind, as read_list's general loop
 * would find them; anything else (a long value, an absent field, other fields) is left to it. */
static inline bool kv_short(const uint8_t *b, const uint8_t *end, proc_attraction_vkv_t *e)
{
    size_t n = (size_t)(end - b);
    if (n < 4 || b[0] != (1 << 3 | 2) || b[1] >= 0x80 || n < 4 + (size_t)b[1]) {
        return false;
    }
    const uint8_t *v = b + 2 + b[1];
    if (v[0] != (2 << 3 | 2) || v[1] >= 0x80 || (size_t)(end - v) != 2 + (size_t)v[1]) {
        return false;
    }
    e->key = (const char *)b + 2;
    e->klen = b[1];
    e->val = v + 2;
    e->vlen = v[1];
    e->has_val = true;
    return true;
}

/* The list of a leaf from its bytes: one entry per KeyValue of field attrs_field. The key is
 * the last key field (protobuf-c keeps the last), the value the last value field (a value
 * given twice was unpacked on arrival, never seen here). */
static bool read_list(proc_attraction_wire_t *w, const uint8_t *p, const uint8_t *end,
                      uint32_t attrs_field, size_t *other, proc_attraction_leaf_t *leaf)
{
    w->n_list = 0;
    *other = 0;
    *leaf = (proc_attraction_leaf_t){.together = true};
    field_t f;
    while (p < end) {
        if (!next_field(&p, end, &f)) {
            return false;
        }
        if (f.num != attrs_field || f.wt != 2) {
            *other += (size_t)(f.end - f.start);
            continue;
        }
        if (leaf->a_start == NULL) {
            leaf->a_start = f.start;
        } else if (leaf->a_end != f.start) {
            leaf->together = false;
        }
        leaf->a_end = f.end;
        proc_attraction_vkv_t e = {.body = f.body, .blen = (size_t)(f.end - f.body)};
        const uint8_t *q = kv_short(f.body, f.end, &e) ? f.end : f.body;
        field_t kf;
        while (q < f.end) {
            if (!next_field(&q, f.end, &kf)) {
                return false;
            }
            if (kf.num == 1 && kf.wt == 2) {
                e.key = (const char *)kf.body;
                e.klen = (size_t)(kf.end - kf.body);
            } else if (kf.num == 2 && kf.wt == 2) {
                e.val = kf.body;
                e.vlen = (size_t)(kf.end - kf.body);
                e.has_val = true;
            }
        }
        if (e.key == NULL) {
            e.key = "";
        }
        if (!PUSH(w, list, n_list, cap_list, e)) {
            return false;
        }
    }
    return true;
}

/* Set key to the value bytes val (an AnyValue's encoding), as om_attrs_set_value does. */
static bool set_entry(proc_attraction_wire_t *w, const char *key, om_attr_mode_t mode,
                      const uint8_t *val, size_t vlen)
{
    long i = find(w, key);
    if (i >= 0) {
        proc_attraction_vkv_t *e = &w->list[i];
        if ((mode & OM_ATTR_UPDATE) == 0) {
            return true;
        }
        if (e->has_val && e->vlen == vlen && (vlen == 0 || memcmp(e->val, val, vlen) == 0)) {
            return true; /* the same bytes: nothing changes */
        }
        e->val = val;
        e->vlen = vlen;
        e->has_val = true;
        e->rebuilt = true;
        w->leaf_changed = true;
        return true;
    }
    if ((mode & OM_ATTR_INSERT) == 0) {
        return true;
    }
    proc_attraction_vkv_t e = {.key = key,
                               .klen = strlen(key),
                               .val = val,
                               .vlen = vlen,
                               .has_val = true,
                               .rebuilt = true};
    w->leaf_changed = true;
    return PUSH(w, list, n_list, cap_list, e);
}

static void remove_where(proc_attraction_t *p, proc_attraction_wire_t *w, const action_t *ac)
{
    size_t klen = ac->key != NULL ? strlen(ac->key) : 0;
    size_t kept = 0;
    for (size_t i = 0; i < w->n_list; i++) {
        proc_attraction_vkv_t *e = &w->list[i];
        bool gone = (ac->key != NULL && key_is(e, ac->key, klen));
        if (!gone && ac->re != NULL) {
            gone = proc_attraction_match(p, ac->re, e->key, e->klen);
        }
        if (!gone) {
            w->list[kept++] = *e;
        }
    }
    w->leaf_changed |= kept != w->n_list;
    w->n_list = kept;
}

/* Whether an AnyValue's encoding copies to the same bytes as om_attrs_set_value's deep copy
 * makes of its decoded form: no unknown field at any depth (the copy drops them) and no deeper
 * than the copy goes (64 levels, as src/batch_attrs.c). depth: this value's level, from 1. */
static bool plain_value(const uint8_t *p, const uint8_t *end, int depth);

static bool plain_kv(const uint8_t *p, const uint8_t *end, int depth)
{
    field_t f;
    while (p < end) {
        if (!next_field(&p, end, &f) || f.wt != 2 || (f.num != 1 && f.num != 2) ||
            (f.num == 2 && !plain_value(f.body, f.end, depth))) {
            return false;
        }
    }
    return true;
}

static bool plain_value(const uint8_t *p, const uint8_t *end, int depth)
{
    if (depth > 64) {
        return false;
    }
    field_t f;
    while (p < end) {
        if (!next_field(&p, end, &f)) {
            return false;
        }
        bool ok;
        switch (f.num) {
        case 1: /* string */
        case 7: /* bytes */
            ok = f.wt == 2;
            break;
        case 2: /* bool */
        case 3: /* int */
            ok = f.wt == 0;
            break;
        case 4: /* double */
            ok = f.wt == 1;
            break;
        case 5:   /* ArrayValue: values (1) */
        case 6: { /* KeyValueList: values (1), KeyValues */
            ok = f.wt == 2;
            const uint8_t *q = f.body;
            field_t e;
            while (ok && q < f.end) {
                ok = next_field(&q, f.end, &e) && e.num == 1 && e.wt == 2 &&
                     (f.num == 5 ? plain_value(e.body, e.end, depth + 1)
                                 : plain_kv(e.body, e.end, depth + 1));
            }
            break;
        }
        default:
            ok = false;
        }
        if (!ok) {
            return false;
        }
    }
    return true;
}

/* false: give up on the wire (the caller takes the decoding path). */
static bool apply_wire_action(proc_attraction_t *p, proc_attraction_wire_t *w, const action_t *ac)
{
    if (ac->kind == A_DELETE) {
        remove_where(p, w, ac);
        return true;
    }
    /* The source: the config's value, else from_attribute's value bytes, else the default. */
    const uint8_t *val = NULL;
    size_t vlen = 0;
    bool found = false;
    if (ac->value != NULL) {
        val = ac->value_enc;
        vlen = ac->value_enc_len;
        found = true;
    } else if (ac->from != NULL && find(w, ac->from) >= 0) {
        const proc_attraction_vkv_t *src = &w->list[find(w, ac->from)];
        val = src->val;
        vlen = src->has_val ? src->vlen : 0;
        found = true;
        if (vlen > 0 && !plain_value(val, val + vlen, 1)) {
            return false; /* the decoding path's copy would not be these bytes */
        }
    } else if (ac->def != NULL) {
        val = ac->def_enc;
        vlen = ac->def_enc_len;
        found = true;
    }
    if (!found) {
        return true;
    }
    om_attr_mode_t mode = ac->kind == A_INSERT   ? OM_ATTR_INSERT
                          : ac->kind == A_UPDATE ? OM_ATTR_UPDATE
                                                 : OM_ATTR_UPSERT;
    return set_entry(w, ac->key, mode, val, vlen);
}

/* The KeyValue body of a set entry: its original fields but the value (unknown ones kept,
 * as protobuf-c keeps them), or the key for a new one, then the new value. */
static bool rebuild(proc_attraction_wire_t *w, proc_attraction_vkv_t *e)
{
    size_t keep = 0;
    const uint8_t *p = e->body, *end = e->body != NULL ? e->body + e->blen : NULL;
    field_t f;
    while (e->body != NULL && p < end) {
        if (!next_field(&p, end, &f)) {
            return false;
        }
        keep += f.num == 2 ? 0 : (size_t)(f.end - f.start);
    }
    size_t klen_field = e->body == NULL ? 1 + om_pb_varint_len(e->klen) + e->klen : 0;
    size_t len = keep + klen_field + 1 + om_pb_varint_len(e->vlen) + e->vlen;
    uint8_t *o = om_arena_alloc(w->tmp, len), *start = o;
    if (o == NULL) {
        return false;
    }
    for (p = e->body; e->body != NULL && p < end && next_field(&p, end, &f);) {
        if (f.num != 2) {
            memcpy(o, f.start, (size_t)(f.end - f.start));
            o += f.end - f.start;
        }
    }
    if (e->body == NULL) {
        *o++ = 0x0a; /* key: field 1, length-delimited */
        o = om_pb_put_varint(o, e->klen);
        memcpy(o, e->key, e->klen);
        o += e->klen;
    }
    *o++ = 0x12; /* value: field 2, length-delimited */
    o = om_pb_put_varint(o, e->vlen);
    if (e->vlen > 0) {
        memcpy(o, e->val, e->vlen);
    }
    e->body = start;
    e->blen = len;
    return true;
}

/* ------------------------------------------------------------------------------------------ */
/* The two passes                                                                             */

typedef struct pass {
    proc_attraction_t *p;
    proc_attraction_wire_t *w;
    uint8_t *out; /* write pass: where the next byte goes; NULL while measuring */
    int err;
} pass_t;

static bool measure_leaf(pass_t *ps, const wnode_t *n, const uint8_t *p, const uint8_t *end,
                         size_t *len)
{
    proc_attraction_wire_t *w = ps->w;
    size_t size; /* the other fields as they are, then the list */
    proc_attraction_leaf_t leaf;
    if (!read_list(w, p, end, n->attrs_field, &size, &leaf)) {
        return false;
    }
    w->leaf_changed = false;
    for (size_t i = 0; i < ps->p->n; i++) {
        if (!apply_wire_action(ps->p, w, &ps->p->actions[i])) {
            return false;
        }
    }
    w->changed |= w->leaf_changed;
    size_t tag = om_pb_varint_len((uint64_t)n->attrs_field << 3 | 2);
    for (size_t i = 0; i < w->n_list; i++) {
        proc_attraction_vkv_t *e = &w->list[i];
        if (e->rebuilt && !rebuild(w, e)) {
            return false;
        }
        proc_attraction_piece_t piece = {e->body, e->blen};
        if (!PUSH(w, pieces, n_pieces, cap_pieces, piece)) {
            return false;
        }
        size += tag + om_pb_varint_len(e->blen) + e->blen;
    }
    *len = size;
    leaf.count = w->n_list;
    return PUSH(w, counts, n_counts, cap_counts, leaf);
}

static bool write_leaf(pass_t *ps, const wnode_t *n, const uint8_t *p, const uint8_t *end)
{
    proc_attraction_wire_t *w = ps->w;
    const proc_attraction_leaf_t *leaf = &w->counts[w->next_count++];
    if (leaf->together) {
        /* The other fields are what stands before and after the KeyValues: no parsing. */
        const uint8_t *a_start = leaf->a_start != NULL ? leaf->a_start : end;
        const uint8_t *a_end = leaf->a_start != NULL ? leaf->a_end : end;
        if (a_start != NULL && a_start > p) {
            memcpy(ps->out, p, (size_t)(a_start - p));
            ps->out += a_start - p;
        }
        if (a_end != NULL && end > a_end) {
            memcpy(ps->out, a_end, (size_t)(end - a_end));
            ps->out += end - a_end;
        }
    } else {
        field_t f;
        const uint8_t *run = p; /* the start of the other fields not copied yet */
        while (p < end && next_field(&p, end, &f)) { /* read before: it does not fail */
            if (f.num == n->attrs_field && f.wt == 2) {
                memcpy(ps->out, run, (size_t)(f.start - run));
                ps->out += f.start - run;
                run = f.end;
            }
        }
        if (run != NULL && end > run) {
            memcpy(ps->out, run, (size_t)(end - run));
            ps->out += end - run;
        }
    }
    size_t count = leaf->count;
    for (size_t i = 0; i < count; i++) {
        proc_attraction_piece_t *pc = &w->pieces[w->next_piece++];
        ps->out = om_pb_put_varint(ps->out, (uint64_t)n->attrs_field << 3 | 2);
        ps->out = om_pb_put_varint(ps->out, pc->len);
        memcpy(ps->out, pc->p, pc->len);
        ps->out += pc->len;
    }
    return true;
}

static const wrule_t *rule_of(const wnode_t *n, const field_t *f)
{
    for (size_t i = 0; f->wt == 2 && i < n->n_rules; i++) {
        if (n->rules[i].field == f->num) {
            return &n->rules[i];
        }
    }
    return NULL;
}

static bool walk(pass_t *ps, const wnode_t *n, const uint8_t *p, const uint8_t *end, size_t *len);

/* A child message: its new length in measure (recorded in pre-order), its bytes in write. */
static bool child(pass_t *ps, const wrule_t *r, const uint8_t *body, const uint8_t *end,
                  size_t *field_len)
{
    proc_attraction_wire_t *w = ps->w;
    size_t tag = om_pb_varint_len((uint64_t)r->field << 3 | 2);
    if (ps->out == NULL) {
        size_t slot = w->n_sizes, clen;
        if (!PUSH(w, sizes, n_sizes, cap_sizes, 0) || !walk(ps, r->child, body, end, &clen)) {
            return false;
        }
        w->sizes[slot] = clen;
        *field_len = tag + om_pb_varint_len(clen) + clen;
        return true;
    }
    size_t clen = w->sizes[w->next_size++];
    ps->out = om_pb_put_varint(ps->out, (uint64_t)r->field << 3 | 2);
    ps->out = om_pb_put_varint(ps->out, clen);
    *field_len = 0;
    return walk(ps, r->child, body, end, &clen);
}

/* An absent child that an action may make (a resource entry without a Resource): measured
 * on empty bytes, written only when its list has something. */
static bool absent_child(pass_t *ps, const wrule_t *r, size_t *field_len)
{
    proc_attraction_wire_t *w = ps->w;
    *field_len = 0;
    if (ps->out == NULL) {
        size_t slot = w->n_sizes, clen;
        if (!PUSH(w, sizes, n_sizes, cap_sizes, 0) || !walk(ps, r->child, NULL, NULL, &clen)) {
            return false;
        }
        bool made = w->counts[w->n_counts - 1].count > 0;
        w->sizes[slot] = made ? clen : SIZE_MAX;
        *field_len =
            made ? om_pb_varint_len((uint64_t)r->field << 3 | 2) + om_pb_varint_len(clen) + clen
                 : 0;
        return true;
    }
    if (w->sizes[w->next_size] == SIZE_MAX) {
        w->next_size++;
        w->next_count++; /* the made list was empty: nothing to write */
        return true;
    }
    size_t ignored;
    return child(ps, r, NULL, NULL, &ignored);
}

static bool walk(pass_t *ps, const wnode_t *n, const uint8_t *p, const uint8_t *end, size_t *len)
{
    if (n->attrs_field != 0) {
        return ps->out == NULL ? measure_leaf(ps, n, p, end, len) : write_leaf(ps, n, p, end);
    }
    size_t size = 0;
    uint32_t seen = 0;      /* rules met, as bits (rule index < 32) */
    const uint8_t *run = p; /* write: the start of the fields not copied yet */
    field_t f;
    while (p != NULL && p < end) {
        if (!next_field(&p, end, &f)) {
            return false;
        }
        const wrule_t *r = rule_of(n, &f);
        if (r == NULL) {
            size += (size_t)(f.end - f.start);
            continue;
        }
        if (ps->out != NULL) {
            memcpy(ps->out, run, (size_t)(f.start - run));
            ps->out += f.start - run;
            run = f.end;
        }
        seen |= 1u << (r - n->rules);
        size_t flen;
        if (!child(ps, r, f.body, f.end, &flen)) {
            return false;
        }
        size += flen;
    }
    if (ps->out != NULL && run != NULL && end > run) {
        memcpy(ps->out, run, (size_t)(end - run));
        ps->out += end - run;
    }
    for (size_t i = 0; i < n->n_rules; i++) {
        size_t flen;
        if (n->rules[i].make_absent && (seen & (1u << i)) == 0) {
            if (!absent_child(ps, &n->rules[i], &flen)) {
                return false;
            }
            size += flen;
        }
    }
    *len = size;
    return true;
}

/* ------------------------------------------------------------------------------------------ */
/* Entry points                                                                               */

bool proc_attraction_wire_ok(const proc_attraction_t *p)
{
    for (size_t i = 0; i < p->n; i++) {
        kind_t k = p->actions[i].kind;
        if (k != A_INSERT && k != A_UPDATE && k != A_UPSERT && k != A_DELETE) {
            return false;
        }
    }
    return true;
}

static void reset(proc_attraction_wire_t *w)
{
    w->n_sizes = w->n_pieces = w->n_counts = 0;
    w->next_size = w->next_piece = w->next_count = 0;
    w->changed = false;
}

int proc_attraction_wire_apply(proc_attraction_t *p, om_batch_t *b, om_level_t level, om_err_t *err)
{
    const wnode_t *root = root_of(b->signal, level);
    proc_attraction_wire_t *w = &p->wire;
    if (root == NULL || !om_batch_wire_editable(b) || !proc_attraction_wire_ok(p)) {
        return OM_ENOTSUP;
    }
    reset(w);
    w->tmp = om_arena_new(0);
    if (w->tmp == NULL) {
        return OM_ENOMEM;
    }
    pass_t ps = {.p = p, .w = w};
    size_t total = 0;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < b->n_raw; i++) {
        size_t len;
        const om_raw_seg_t *s = &b->raw[i];
        rc = walk(&ps, root, s->data, s->data + s->len, &len) ? 0 : OM_EINVAL;
        total += len;
    }
    if (rc == 0 && w->changed) {
        uint8_t *out = om_arena_alloc(b->arenas[0], total > 0 ? total : 1);
        if (out == NULL) {
            rc = om_arena_fail(b->arenas[0], err, "edited request");
        } else {
            ps.out = out;
            for (size_t i = 0; i < b->n_raw; i++) {
                size_t len;
                walk(&ps, root, b->raw[i].data, b->raw[i].data + b->raw[i].len, &len);
            }
            rc = (size_t)(ps.out - out) == total
                     ? om_batch_set_wire(b, out, total, OM_WIRE_REWRITTEN, err)
                     : OM_EINVAL;
        }
    }
    om_arena_unref(w->tmp);
    w->tmp = NULL;
    return rc;
}

void proc_attraction_wire_free(proc_attraction_wire_t *w)
{
    om_free(w->sizes);
    om_free(w->pieces);
    om_free(w->counts);
    om_free(w->list);
    *w = (proc_attraction_wire_t){0};
}
