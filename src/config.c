/* config.c: otelcol-style YAML into om_node_t trees that keep file:line:column.
 *
 * libyaml's event parser drives a small explicit stack, so deeply nested input cannot exhaust
 * the C stack while parsing; every recursive helper below is bounded by MAX_DEPTH.
 *
 * Memory: every node of a config (and of a failed load) is recorded in one pool owned by the
 * config; freeing the config frees the pool. Merges and YAML merge keys only move pointers
 * between maps, so nodes that drop out of the tree are still freed exactly once.
 *
 * Aliases are resolved by deep copy, as yaml.v3 does when otelcol decodes into map[string]any:
 * no node is ever shared, so merging later files into a tree can never change a value that an
 * alias elsewhere points at. A node budget (MAX_NODES, MAX_COPY_BYTES) stops alias bombs.
 *
 * Loading reads whole files with blocking stdio; it runs at startup and on reload, before the
 * new graph exists, and the files are small (MAX_FILE_BYTES). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <yaml.h>

enum {
    MAX_DEPTH = 128,     /* nesting of maps and sequences, aliases included */
    MAX_NODES = 200000,  /* per config, aliases included: far above any real config */
    MAX_ANCHOR_LEN = 64, /* only for messages */
};
#define MAX_FILE_BYTES ((size_t)16 << 20)
#define MAX_SCALAR_BYTES ((size_t)1 << 20) /* one scalar after ${env} expansion */
#define MAX_COPY_BYTES ((size_t)32 << 20)  /* scalar bytes duplicated by aliases */

/* The public struct is the first member, so om_config_free() can reach the pool. */
typedef struct cfg_impl {
    om_config_t pub;
    om_node_t **pool; /* owned: every node allocated for this config */
    size_t n_pool, cap_pool;
    size_t copy_bytes;
} cfg_impl_t;

typedef struct frame {
    om_node_t *node; /* the MAP or SEQ being built (in the pool) */
    size_t cap;      /* allocated slots in node->keys/values */
    om_node_t *key;  /* MAP: the key waiting for its value */
    size_t anchor;   /* 1 + index into anchors, or 0 */
} frame_t;

typedef struct anchor {
    char *name; /* owned */
    om_node_t *node;
    bool done; /* false while the anchored container is still open */
} anchor_t;

typedef struct loader {
    cfg_impl_t *c;
    const char *file; /* owned by c->pub.files */
    const char *text; /* the input, for reader-error positions */
    size_t len;
    om_diags_t *d;
    int errors;
    int fatal; /* 0, OM_ECONFIG or OM_ENOMEM: stop parsing */
    frame_t stack[MAX_DEPTH];
    size_t depth;
    anchor_t *anchors; /* owned */
    size_t n_anchors, cap_anchors;
    om_node_t *root;
    bool have_root;
    unsigned alias_line, alias_col; /* the alias being copied: where copy errors point */
} loader_t;

/* One entry of a map key listing, sorted to find equal keys in O(n log n): YAML duplicate
 * detection, merge keys and file merges all need "which keys are equal". */
typedef struct kent {
    const char *k;
    unsigned pri; /* which map the key comes from: lower wins among equal keys */
    size_t idx;   /* position within that map */
    om_node_t *key, *val;
} kent_t;

static int kent_cmp(const void *a, const void *b)
{
    const kent_t *x = a, *y = b;
    int c = strcmp(x->k, y->k);
    if (c != 0) {
        return c;
    }
    if (x->pri != y->pri) {
        return x->pri < y->pri ? -1 : 1;
    }
    return x->idx < y->idx ? -1 : (x->idx > y->idx ? 1 : 0);
}

static int kent_order_cmp(const void *a, const void *b)
{
    const kent_t *x = a, *y = b;
    if (x->pri != y->pri) {
        return x->pri < y->pri ? -1 : 1;
    }
    return x->idx < y->idx ? -1 : (x->idx > y->idx ? 1 : 0);
}

static const char *kind_name(om_node_kind_t k)
{
    switch (k) {
    case OM_NODE_NULL:
        return "null";
    case OM_NODE_SCALAR:
        return "scalar";
    case OM_NODE_MAP:
        return "map";
    case OM_NODE_SEQ:
        return "sequence";
    }
    return "node";
}

/* ------------------------------------------------------------------------------------------ */
/* Pool and errors                                                                            */

static void node_free(om_node_t *n)
{
    om_free(n->str);
    om_free(n->keys);
    om_free(n->values);
    om_free(n);
}

void om_config_free(om_config_t *c)
{
    if (c == NULL) {
        return;
    }
    cfg_impl_t *ci = (cfg_impl_t *)c;
    for (size_t i = 0; i < ci->n_pool; i++) {
        node_free(ci->pool[i]);
    }
    om_free(ci->pool);
    for (size_t i = 0; i < c->n_files; i++) {
        om_free(c->files[i]);
    }
    om_free(c->files);
    om_free(ci);
}

static void lerr_at(loader_t *L, unsigned line, unsigned col, bool fatal, const char *fmt, ...)
    OM_PRINTF(5, 6);

static void lerr_at(loader_t *L, unsigned line, unsigned col, bool fatal, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    om_node_t pos = {.file = L->file, .line = line, .col = col};
    om_diag_add(L->d, &pos, NULL, "%s", msg);
    L->errors++;
    if (fatal && L->fatal == 0) {
        L->fatal = OM_ECONFIG;
    }
}

static void nomem(loader_t *L)
{
    if (L->fatal != OM_ENOMEM) {
        om_diag_add(L->d, NULL, NULL, "%s: out of memory", L->file);
        L->errors++;
    }
    L->fatal = OM_ENOMEM;
}

static unsigned mark_num(size_t v)
{
    return v >= 0xfffffffeu ? 0xffffffffu : (unsigned)(v + 1);
}

/* A node recorded in the pool, so that it is freed with the config whatever happens next. */
static om_node_t *new_node(loader_t *L, om_node_kind_t kind, unsigned line, unsigned col)
{
    cfg_impl_t *c = L->c;
    if (c->n_pool >= MAX_NODES) {
        if (L->alias_line != 0) {
            line = L->alias_line;
            col = L->alias_col;
        }
        lerr_at(L, line, col, true, "document too large: more than %d nodes (alias expansion?)",
                MAX_NODES);
        return NULL;
    }
    if (c->n_pool == c->cap_pool) {
        size_t cap = c->cap_pool ? c->cap_pool * 2 : 64;
        om_node_t **np = om_realloc(c->pool, cap * sizeof *np);
        if (np == NULL) {
            nomem(L);
            return NULL;
        }
        c->pool = np;
        c->cap_pool = cap;
    }
    om_node_t *n = om_calloc(1, sizeof *n);
    if (n == NULL) {
        nomem(L);
        return NULL;
    }
    n->kind = kind;
    n->file = L->file;
    n->line = line;
    n->col = col;
    c->pool[c->n_pool++] = n;
    return n;
}

/* Append one item (SEQ) or pair (MAP); *cap tracks the slots of keys/values. */
static int push_item(om_node_t *parent, size_t *cap, om_node_t *key, om_node_t *val)
{
    if (parent->n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 4;
        if (parent->kind == OM_NODE_MAP) {
            om_node_t **nk = om_realloc(parent->keys, ncap * sizeof *nk);
            if (nk == NULL) {
                return OM_ENOMEM;
            }
            parent->keys = nk;
        }
        om_node_t **nv = om_realloc(parent->values, ncap * sizeof *nv);
        if (nv == NULL) {
            return OM_ENOMEM;
        }
        parent->values = nv;
        *cap = ncap;
    }
    if (parent->kind == OM_NODE_MAP) {
        parent->keys[parent->n] = key;
    }
    parent->values[parent->n] = val;
    parent->n++;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* ${env} expansion                                                                           */

static bool env_name_ok(const char *s, size_t n)
{
    if (n == 0 || (s[0] >= '0' && s[0] <= '9')) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '_';
        if (!ok) {
            return false;
        }
    }
    return true;
}

/* Append to the expansion; false (with err set) when it would pass MAX_SCALAR_BYTES or memory
 * runs out. The limit matters because each ${VAR} may repeat a long variable. */
static bool emit(om_strbuf_t *sb, const char *s, size_t n, om_err_t *err)
{
    if (n > MAX_SCALAR_BYTES - sb->len) {
        om_err_set(err, OM_ETOOBIG, "value longer than %zu bytes after ${env} expansion",
                   MAX_SCALAR_BYTES);
        return false;
    }
    om_strbuf_append(sb, s, n);
    if (sb->failed) {
        om_err_set(err, OM_ENOMEM, "out of memory");
        return false;
    }
    return true;
}

static int read_file_text(const char *path, size_t max, char **text, size_t *len, om_err_t *err);

/* ${file:PATH}: the file's content, as otelcol's file provider gives it (a value read from a
 * file keeps no final newline, so that a secret written by `echo` is the secret). */
static bool expand_file(const char *path, size_t n, om_strbuf_t *sb, om_err_t *err)
{
    char name[4096];
    if (n == 0 || n >= sizeof name) {
        om_err_set(err, OM_ECONFIG, "invalid file reference \"${file:%.*s}\"",
                   (int)(n > 64 ? 64 : n), path);
        return false;
    }
    memcpy(name, path, n);
    name[n] = '\0';
    char *text = NULL;
    size_t len = 0;
    if (read_file_text(name, MAX_SCALAR_BYTES, &text, &len, err) != 0) {
        return false;
    }
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r')) {
        len--;
    }
    bool ok = emit(sb, text, len, err);
    om_free(text);
    return ok;
}

/* Resolve the inside of one ${...} (ref[0..n)) and append the value to sb. */
static bool expand_ref(const char *ref, size_t n, om_strbuf_t *sb, om_err_t *err)
{
    const char *r = ref;
    size_t rn = n;
    if (n >= 5 && memcmp(ref, "file:", 5) == 0) {
        return expand_file(ref + 5, n - 5, sb, err);
    }
    if (n >= 4 && memcmp(ref, "env:", 4) == 0) {
        r = ref + 4;
        rn = n - 4;
    } else {
        /* ${VAR:-default} is env too; any other "scheme:" (http, yaml) is not. */
        const char *colon = memchr(ref, ':', n);
        if (colon != NULL && (size_t)(colon - ref) + 1 < n && colon[1] != '-') {
            om_err_set(err, OM_ECONFIG,
                       "unsupported scheme \"%.*s\" in \"${%.*s}\": otelmon resolves env and "
                       "file",
                       (int)(colon - ref > 32 ? 32 : colon - ref), ref, (int)(n > 64 ? 64 : n),
                       ref);
            return false;
        }
    }
    size_t name_len = rn;
    const char *def = NULL;
    for (size_t i = 0; i + 1 < rn; i++) {
        if (r[i] == ':' && r[i + 1] == '-') {
            name_len = i;
            def = r + i + 2;
            break;
        }
    }
    if (!env_name_ok(r, name_len) || name_len >= 256) {
        om_err_set(err, OM_ECONFIG,
                   "environment variable \"%.*s\" has invalid name: must match regex "
                   "^[a-zA-Z_][a-zA-Z0-9_]*$",
                   (int)(name_len > 64 ? 64 : name_len), r);
        return false;
    }
    char name[256];
    memcpy(name, r, name_len);
    name[name_len] = '\0';
    const char *v = getenv(name);
    if (v != NULL) {
        return emit(sb, v, strlen(v), err);
    }
    if (def != NULL) {
        return emit(sb, def, (size_t)(r + rn - def), err);
    }
    OM_LOG(OM_LOG_WARN,
           "configuration references unset environment variable %s; it expands to \"\"", name);
    return true;
}

char *om_config_expand_env(const char *s, om_err_t *err)
{
    om_strbuf_t sb;
    om_strbuf_init(&sb, 0);
    char *out = NULL;
    const char *p = s;
    /* Each pass consumes at least one byte of s. */
    while (*p != '\0') {
        const char *dollar = strchr(p, '$');
        if (dollar == NULL) {
            if (!emit(&sb, p, strlen(p), err)) {
                goto out;
            }
            break;
        }
        if (!emit(&sb, p, (size_t)(dollar - p), err)) {
            goto out;
        }
        if (dollar[1] != '{') {
            /* "$$" is one literal '$'; a '$' before anything else stays as written. */
            if (!emit(&sb, "$", 1, err)) {
                goto out;
            }
            p = dollar + (dollar[1] == '$' ? 2 : 1);
            continue;
        }
        const char *close = strchr(dollar + 2, '}');
        if (close == NULL) {
            om_err_set(err, OM_ECONFIG, "invalid reference \"%.64s\": missing closing '}'", dollar);
            goto out;
        }
        if (!expand_ref(dollar + 2, (size_t)(close - dollar - 2), &sb, err)) {
            goto out;
        }
        p = close + 1;
    }
    out = sb.len > 0 ? om_strbuf_steal(&sb, NULL) : om_strdup("");
    if (out == NULL) {
        om_err_set(err, OM_ENOMEM, "out of memory");
    }
out:
    om_strbuf_free(&sb);
    return out;
}

/* A scalar that is exactly one ${...}: otelcol types the expanded value as YAML. */
static bool whole_ref(const char *s, size_t n)
{
    if (n < 3 || s[0] != '$' || s[1] != '{') {
        return false;
    }
    const char *close = memchr(s, '}', n);
    return close == s + n - 1;
}

static bool null_word(const char *s)
{
    return s[0] == '\0' || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 ||
           strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Building the tree                                                                          */

static void attach(loader_t *L, om_node_t *n)
{
    if (L->depth == 0) {
        if (!L->have_root) {
            L->root = n;
            L->have_root = true;
        }
        return;
    }
    frame_t *f = &L->stack[L->depth - 1];
    if (f->node->kind == OM_NODE_MAP && f->key == NULL) {
        if (n->kind != OM_NODE_SCALAR) {
            lerr_at(L, n->line, n->col, true, "map keys must be scalars, got a %s",
                    kind_name(n->kind));
            return;
        }
        f->key = n;
        return;
    }
    if (push_item(f->node, &f->cap, f->key, n) != 0) {
        nomem(L);
        return;
    }
    f->key = NULL;
}

static bool key_position(const loader_t *L)
{
    if (L->depth == 0) {
        return false;
    }
    const frame_t *f = &L->stack[L->depth - 1];
    return f->node->kind == OM_NODE_MAP && f->key == NULL;
}

static size_t add_anchor(loader_t *L, const char *name, om_node_t *n, bool done)
{
    if (L->n_anchors == L->cap_anchors) {
        size_t cap = L->cap_anchors ? L->cap_anchors * 2 : 8;
        anchor_t *na = om_realloc(L->anchors, cap * sizeof *na);
        if (na == NULL) {
            nomem(L);
            return 0;
        }
        L->anchors = na;
        L->cap_anchors = cap;
    }
    char *copy = om_strdup(name);
    if (copy == NULL) {
        nomem(L);
        return 0;
    }
    L->anchors[L->n_anchors] = (anchor_t){.name = copy, .node = n, .done = done};
    return ++L->n_anchors;
}

static void set_value_scalar(loader_t *L, om_node_t *n, const yaml_event_t *ev)
{
    const char *raw = (const char *)ev->data.scalar.value;
    size_t len = ev->data.scalar.length;
    const char *tag = (const char *)ev->data.scalar.tag;
    bool plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    bool whole = whole_ref(raw, len);
    om_err_t err = {0};
    n->str = om_config_expand_env(raw, &err);
    if (n->str == NULL) {
        if (err.code == OM_ENOMEM) {
            nomem(L);
            return;
        }
        lerr_at(L, n->line, n->col, false, "%s", err.msg);
        n->str = om_strndup(raw, len);
        if (n->str == NULL) {
            nomem(L);
            return;
        }
    }
    n->quoted = !(plain || whole);
    bool is_null = !n->quoted && null_word(n->str);
    if (tag != NULL && strcmp(tag, YAML_STR_TAG) == 0) {
        n->quoted = true;
        is_null = false;
    } else if (tag != NULL && strcmp(tag, YAML_NULL_TAG) == 0) {
        is_null = true;
    }
    if (is_null) {
        n->kind = OM_NODE_NULL;
    }
}

static void on_scalar(loader_t *L, const yaml_event_t *ev)
{
    unsigned line = mark_num(ev->start_mark.line), col = mark_num(ev->start_mark.column);
    const char *raw = (const char *)ev->data.scalar.value;
    size_t len = ev->data.scalar.length;
    if (memchr(raw, '\0', len) != NULL) {
        lerr_at(L, line, col, false, "NUL characters are not allowed in values");
    }
    om_node_t *n = new_node(L, OM_NODE_SCALAR, line, col);
    if (n == NULL) {
        return;
    }
    if (key_position(L)) {
        n->str = om_strndup(raw, strlen(raw));
        n->quoted = ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
        if (n->str == NULL) {
            nomem(L);
            return;
        }
    } else {
        set_value_scalar(L, n, ev);
        if (L->fatal != 0) {
            return;
        }
    }
    if (ev->data.scalar.anchor != NULL &&
        add_anchor(L, (const char *)ev->data.scalar.anchor, n, true) == 0) {
        return;
    }
    attach(L, n);
}

static void on_start(loader_t *L, const yaml_event_t *ev, om_node_kind_t kind)
{
    unsigned line = mark_num(ev->start_mark.line), col = mark_num(ev->start_mark.column);
    if (key_position(L)) {
        lerr_at(L, line, col, true, "map keys must be scalars, got a %s", kind_name(kind));
        return;
    }
    if (L->depth >= MAX_DEPTH) {
        lerr_at(L, line, col, true, "nesting deeper than %d levels", MAX_DEPTH);
        return;
    }
    om_node_t *n = new_node(L, kind, line, col);
    if (n == NULL) {
        return;
    }
    const yaml_char_t *anchor =
        kind == OM_NODE_MAP ? ev->data.mapping_start.anchor : ev->data.sequence_start.anchor;
    size_t a = 0;
    if (anchor != NULL) {
        a = add_anchor(L, (const char *)anchor, n, false);
        if (a == 0) {
            return;
        }
    }
    L->stack[L->depth++] = (frame_t){.node = n, .anchor = a};
}

typedef struct dup_pair {
    size_t dup, orig; /* indexes into the map */
} dup_pair_t;

static int dup_pair_cmp(const void *a, const void *b)
{
    const dup_pair_t *x = a, *y = b;
    return x->dup < y->dup ? -1 : (x->dup > y->dup ? 1 : 0);
}

/* One error per repeated key, at the repeat, in document order (yaml.v3's wording). */
static void check_dups(loader_t *L, const om_node_t *map)
{
    if (map->n < 2) {
        return;
    }
    kent_t *e = om_malloc(map->n * sizeof *e);
    dup_pair_t *dup = om_malloc(map->n * sizeof *dup);
    if (e == NULL || dup == NULL) {
        nomem(L);
        goto out;
    }
    for (size_t i = 0; i < map->n; i++) {
        e[i] = (kent_t){.k = map->keys[i]->str, .idx = i};
    }
    qsort(e, map->n, sizeof *e, kent_cmp);
    size_t nd = 0;
    for (size_t g = 0, j = 1; j < map->n; j++) {
        if (strcmp(e[j].k, e[g].k) != 0) {
            g = j;
            continue;
        }
        dup[nd++] = (dup_pair_t){.dup = e[j].idx, .orig = e[g].idx};
    }
    qsort(dup, nd, sizeof *dup, dup_pair_cmp);
    for (size_t i = 0; i < nd; i++) {
        const om_node_t *k = map->keys[dup[i].dup];
        lerr_at(L, k->line, k->col, false, "mapping key \"%.128s\" already defined at line %u",
                k->str, map->keys[dup[i].orig]->line);
    }
out:
    om_free(e);
    om_free(dup);
}

static bool is_merge_key(const om_node_t *k)
{
    return !k->quoted && strcmp(k->str, "<<") == 0;
}

/* The number of pairs the merge sources of map bring, or SIZE_MAX after reporting a value
 * that is neither a map nor a sequence of maps. */
static size_t merge_source_pairs(loader_t *L, const om_node_t *map)
{
    size_t total = 0;
    bool bad = false;
    for (size_t i = 0; i < map->n; i++) {
        if (!is_merge_key(map->keys[i])) {
            continue;
        }
        const om_node_t *v = map->values[i];
        if (v->kind == OM_NODE_MAP) {
            total += v->n;
            continue;
        }
        for (size_t j = 0; v->kind == OM_NODE_SEQ && j < v->n; j++) {
            if (v->values[j]->kind == OM_NODE_MAP) {
                total += v->values[j]->n;
                continue;
            }
            bad = true;
        }
        if (v->kind != OM_NODE_SEQ || bad) {
            lerr_at(L, v->line, v->col, false,
                    "map merge requires map or sequence of maps as the value");
            return SIZE_MAX;
        }
    }
    return total;
}

static void add_entries(kent_t *e, size_t *ne, const om_node_t *map, unsigned pri)
{
    for (size_t i = 0; i < map->n; i++) {
        e[(*ne)++] = (kent_t){.k = map->keys[i]->str,
                              .pri = pri,
                              .idx = i,
                              .key = map->keys[i],
                              .val = map->values[i]};
    }
}

/* YAML merge keys (`<<: *defaults`), which yaml.v3 and so otelcol honour: the map's own keys
 * win, then earlier sources over later ones. The source pairs are moved, not copied. */
static void resolve_merge(loader_t *L, om_node_t *map)
{
    bool any = false;
    for (size_t i = 0; i < map->n && !any; i++) {
        any = is_merge_key(map->keys[i]);
    }
    size_t total = any ? merge_source_pairs(L, map) : SIZE_MAX;
    if (total == SIZE_MAX) {
        return;
    }
    total += map->n;
    kent_t *e = om_malloc(total * sizeof *e);
    om_node_t **nk = om_malloc(total * sizeof *nk), **nv = om_malloc(total * sizeof *nv);
    if (e == NULL || nk == NULL || nv == NULL) {
        nomem(L);
        goto out;
    }
    size_t ne = 0;
    unsigned pri = 1;
    for (size_t i = 0; i < map->n; i++) {
        om_node_t *v = map->values[i];
        if (!is_merge_key(map->keys[i])) {
            e[ne++] = (kent_t){.k = map->keys[i]->str, .idx = i, .key = map->keys[i], .val = v};
        } else if (v->kind == OM_NODE_MAP) {
            add_entries(e, &ne, v, pri++);
        } else {
            for (size_t j = 0; j < v->n; j++) {
                add_entries(e, &ne, v->values[j], pri++);
            }
        }
    }
    qsort(e, ne, sizeof *e, kent_cmp);
    size_t nkeep = 0;
    for (size_t j = 0; j < ne; j++) {
        if (nkeep == 0 || strcmp(e[j].k, e[nkeep - 1].k) != 0) {
            e[nkeep++] = e[j];
        }
    }
    qsort(e, nkeep, sizeof *e, kent_order_cmp);
    for (size_t j = 0; j < nkeep; j++) {
        nk[j] = e[j].key;
        nv[j] = e[j].val;
    }
    om_free(map->keys);
    om_free(map->values);
    map->keys = nk;
    map->values = nv;
    map->n = nkeep;
    nk = nv = NULL;
out:
    om_free(e);
    om_free(nk);
    om_free(nv);
}

static void on_end(loader_t *L)
{
    if (L->depth == 0) {
        return;
    }
    frame_t f = L->stack[--L->depth];
    if (f.node->kind == OM_NODE_MAP) {
        check_dups(L, f.node);
        if (L->fatal == 0) {
            resolve_merge(L, f.node);
        }
    }
    if (f.anchor != 0) {
        L->anchors[f.anchor - 1].done = true;
    }
    if (L->fatal == 0) {
        attach(L, f.node);
    }
}

/* A deep copy for an alias. depth is where the copy sits, so that aliases cannot build a tree
 * deeper than MAX_DEPTH (every recursive walk of the tree relies on that bound). */
static om_node_t *copy_node(loader_t *L, const om_node_t *src, size_t depth)
{
    bool container = src->kind == OM_NODE_MAP || src->kind == OM_NODE_SEQ;
    if (container && depth >= MAX_DEPTH) {
        lerr_at(L, L->alias_line, L->alias_col, true,
                "nesting deeper than %d levels (through aliases)", MAX_DEPTH);
        return NULL;
    }
    om_node_t *n = new_node(L, src->kind, src->line, src->col);
    if (n == NULL) {
        return NULL;
    }
    n->quoted = src->quoted;
    if (src->str != NULL) {
        size_t len = strlen(src->str);
        L->c->copy_bytes += len;
        if (L->c->copy_bytes > MAX_COPY_BYTES) {
            lerr_at(L, L->alias_line, L->alias_col, true,
                    "document too large: aliases expand to more than %zu bytes", MAX_COPY_BYTES);
            return NULL;
        }
        n->str = om_strndup(src->str, len);
        if (n->str == NULL) {
            nomem(L);
            return NULL;
        }
    }
    if (!container || src->n == 0) {
        return n;
    }
    n->values = om_calloc(src->n, sizeof *n->values);
    n->keys = src->kind == OM_NODE_MAP ? om_calloc(src->n, sizeof *n->keys) : NULL;
    if (n->values == NULL || (src->kind == OM_NODE_MAP && n->keys == NULL)) {
        nomem(L);
        return NULL;
    }
    for (size_t i = 0; i < src->n; i++) {
        om_node_t *k = src->kind == OM_NODE_MAP ? copy_node(L, src->keys[i], depth + 1) : NULL;
        om_node_t *v = copy_node(L, src->values[i], depth + 1);
        if (v == NULL || (src->kind == OM_NODE_MAP && k == NULL)) {
            return NULL;
        }
        if (k != NULL) {
            n->keys[i] = k;
        }
        n->values[i] = v;
        n->n++;
    }
    return n;
}

static void on_alias(loader_t *L, const yaml_event_t *ev)
{
    unsigned line = mark_num(ev->start_mark.line), col = mark_num(ev->start_mark.column);
    const char *name = (const char *)ev->data.alias.anchor;
    const anchor_t *a = NULL;
    for (size_t i = L->n_anchors; i-- > 0;) {
        if (strcmp(L->anchors[i].name, name) == 0) {
            a = &L->anchors[i];
            break;
        }
    }
    if (a == NULL) {
        lerr_at(L, line, col, true, "unknown anchor '%.*s' referenced", MAX_ANCHOR_LEN, name);
        return;
    }
    if (!a->done) {
        lerr_at(L, line, col, true, "anchor '%.*s' value contains itself", MAX_ANCHOR_LEN, name);
        return;
    }
    bool key = key_position(L);
    L->alias_line = line;
    L->alias_col = col;
    om_node_t *n = copy_node(L, a->node, L->depth);
    L->alias_line = L->alias_col = 0;
    if (n == NULL) {
        return;
    }
    /* The alias is where the value is used; its inner nodes keep the anchored text's places. */
    n->line = line;
    n->col = col;
    if (key && n->kind == OM_NODE_NULL) {
        n->kind = OM_NODE_SCALAR;
    }
    attach(L, n);
}

/* ------------------------------------------------------------------------------------------ */
/* Parsing one document                                                                       */

static void offset_pos(const char *text, size_t len, size_t off, unsigned *line, unsigned *col)
{
    unsigned l = 1;
    size_t start = 0;
    if (off > len) {
        off = len;
    }
    for (size_t i = 0; i < off; i++) {
        if (text[i] == '\n') {
            l++;
            start = i + 1;
        }
    }
    *line = l;
    *col = (unsigned)(off - start + 1);
}

static void parser_error(loader_t *L, const yaml_parser_t *p)
{
    if (p->error == YAML_MEMORY_ERROR) {
        nomem(L);
        return;
    }
    const char *problem = p->problem != NULL ? p->problem : "invalid YAML";
    if (p->error == YAML_READER_ERROR) {
        unsigned line, col;
        offset_pos(L->text, L->len, p->problem_offset, &line, &col);
        lerr_at(L, line, col, true, "%s", problem);
        return;
    }
    const yaml_mark_t *pm = &p->problem_mark, *cm = &p->context_mark;
    unsigned line = mark_num(pm->line), col = mark_num(pm->column);
    if (p->error == YAML_SCANNER_ERROR && pm->index < L->len && L->text[pm->index] == '\t' &&
        strstr(problem, "tab") == NULL) {
        /* libyaml's message does not say why; tabs are the usual culprit in hand-edited files. */
        lerr_at(L, line, col, true, "%s (tabs cannot be used for indentation)", problem);
        return;
    }
    if (p->context != NULL && (cm->line != pm->line || cm->column != pm->column)) {
        lerr_at(L, line, col, true, "%s (%s at line %u, column %u)", problem, p->context,
                mark_num(cm->line), mark_num(cm->column));
        return;
    }
    lerr_at(L, line, col, true, "%s", problem);
}

static void handle_event(loader_t *L, const yaml_event_t *ev)
{
    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        on_scalar(L, ev);
        break;
    case YAML_SEQUENCE_START_EVENT:
        on_start(L, ev, OM_NODE_SEQ);
        break;
    case YAML_MAPPING_START_EVENT:
        on_start(L, ev, OM_NODE_MAP);
        break;
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        on_end(L);
        break;
    case YAML_ALIAS_EVENT:
        on_alias(L, ev);
        break;
    default:
        break;
    }
}

static void parse(loader_t *L)
{
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p)) {
        nomem(L);
        return;
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)L->text, L->len);
    int docs = 0;
    /* Bounded by the input: libyaml emits a finite number of events for a finite string. */
    while (L->fatal == 0) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            parser_error(L, &p);
            break;
        }
        yaml_event_type_t t = ev.type;
        if (t == YAML_DOCUMENT_START_EVENT && ++docs > 1) {
            /* yaml.v3 (otelcol) also reads only the first document. */
            OM_LOG(OM_LOG_WARN, "%s:%u:%u: only the first YAML document is used", L->file,
                   mark_num(ev.start_mark.line), mark_num(ev.start_mark.column));
            yaml_event_delete(&ev);
            break;
        }
        handle_event(L, &ev);
        yaml_event_delete(&ev);
        if (t == YAML_STREAM_END_EVENT) {
            break;
        }
    }
    yaml_parser_delete(&p);
}

static void finish_root(loader_t *L)
{
    om_node_t *r = L->root;
    if (r == NULL || r->kind == OM_NODE_NULL) {
        /* An empty file, or one holding only comments or `~`, is an empty config. */
        L->root = new_node(L, OM_NODE_MAP, r != NULL ? r->line : 1, r != NULL ? r->col : 1);
        return;
    }
    if (r->kind != OM_NODE_MAP) {
        lerr_at(L, r->line, r->col, false, "the top level must be a map, got a %s",
                kind_name(r->kind));
    }
}

static int add_file(cfg_impl_t *c, const char *name, const char **stored)
{
    char **nf = om_realloc(c->pub.files, (c->pub.n_files + 1) * sizeof *nf);
    if (nf == NULL) {
        return OM_ENOMEM;
    }
    c->pub.files = nf;
    char *copy = om_strdup(name);
    if (copy == NULL) {
        return OM_ENOMEM;
    }
    nf[c->pub.n_files++] = copy;
    *stored = copy;
    return 0;
}

static int merge_maps(om_node_t *dst, const om_node_t *src);

/* A node that holds the pair key: value as a one-pair map, positioned at key. */
static om_node_t *pair_map(loader_t *L, const om_node_t *at, const char *key, size_t key_len,
                           om_node_t *value)
{
    om_node_t *k = new_node(L, OM_NODE_SCALAR, at->line, at->col);
    om_node_t *m = new_node(L, OM_NODE_MAP, at->line, at->col);
    size_t cap = 0;
    if (k == NULL || m == NULL) {
        return NULL;
    }
    k->str = om_strndup(key, key_len);
    if (k->str == NULL || push_item(m, &cap, k, value) != 0) {
        nomem(L);
        return NULL;
    }
    return m;
}

/* Keys of one map that came out equal after splitting: maps merge, anything else is replaced
 * by the later one (the order otelcol's flattened keys apply in). O(n^2), only for maps where
 * a key was split. */
static int join_equal_keys(om_node_t *map)
{
    size_t out = 0;
    for (size_t i = 0; i < map->n; i++) {
        size_t j = 0;
        while (j < out && strcmp(map->keys[j]->str, map->keys[i]->str) != 0) {
            j++;
        }
        if (j == out) {
            map->keys[out] = map->keys[i];
            map->values[out++] = map->values[i];
        } else if (map->values[j]->kind == OM_NODE_MAP && map->values[i]->kind == OM_NODE_MAP) {
            if (merge_maps(map->values[j], map->values[i]) != 0) {
                return OM_ENOMEM;
            }
        } else {
            map->keys[j] = map->keys[i];
            map->values[j] = map->values[i];
        }
    }
    map->n = out;
    return 0;
}

/* otelcol's confmap reads "::" in a key as a level separator in every source (koanf's key
 * delimiter): `exporters::debug::verbosity: detailed` is exporters: {debug: {verbosity:
 * detailed}}, which is what --set and yaml: URIs rely on. Split such keys into nested maps. */
static void unflatten(loader_t *L, om_node_t *map, size_t depth)
{
    if (depth > MAX_DEPTH) {
        return; /* the parser bounds the depth it builds; splitting adds at most one level a
                 * "::" and each level is visited once */
    }
    bool split = false;
    for (size_t i = 0; i < map->n && L->fatal == 0; i++) {
        om_node_t *key = map->keys[i];
        const char *sep = strstr(key->str, "::");
        if (sep != NULL && sep != key->str) {
            om_node_t *m = pair_map(L, key, sep + 2, strlen(sep + 2), map->values[i]);
            om_node_t *k = m != NULL ? new_node(L, OM_NODE_SCALAR, key->line, key->col) : NULL;
            if (k == NULL || (k->str = om_strndup(key->str, (size_t)(sep - key->str))) == NULL) {
                nomem(L);
                return;
            }
            map->keys[i] = k;
            map->values[i] = m;
            split = true;
        }
        if (map->values[i]->kind == OM_NODE_MAP) {
            unflatten(L, map->values[i], depth + 1);
        }
    }
    if (split && L->fatal == 0 && join_equal_keys(map) != 0) {
        nomem(L);
    }
}

/* Parse one file's text into *root (a MAP in c's pool). Problems go to d. */
static int load_text(cfg_impl_t *c, const char *name, const char *text, size_t len, om_diags_t *d,
                     om_node_t **root)
{
    *root = NULL;
    const char *file = NULL;
    loader_t *L = om_calloc(1, sizeof *L);
    if (L == NULL || add_file(c, name, &file) != 0) {
        om_diag_add(d, NULL, NULL, "%s: out of memory", name);
        om_free(L);
        return OM_ENOMEM;
    }
    L->c = c;
    L->file = file;
    L->text = text;
    L->len = len;
    L->d = d;
    parse(L);
    if (L->fatal == 0) {
        finish_root(L);
    }
    if (L->fatal == 0 && L->errors == 0 && L->root != NULL && L->root->kind == OM_NODE_MAP) {
        unflatten(L, L->root, 0);
    }
    int rc = L->fatal != 0 ? L->fatal : (L->errors > 0 ? OM_ECONFIG : 0);
    if (rc == 0) {
        *root = L->root;
    }
    for (size_t i = 0; i < L->n_anchors; i++) {
        om_free(L->anchors[i].name);
    }
    om_free(L->anchors);
    om_free(L);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Merging files and the public entry points                                                  */

/* Merge src into dst as otelcol merges repeated --config: maps key by key, recursively; any
 * other value (sequences too) replaces. Both maps are free of duplicate keys. */
static int merge_maps(om_node_t *dst, const om_node_t *src)
{
    if (src->n == 0) {
        return 0;
    }
    int rc = OM_ENOMEM;
    size_t total = dst->n + src->n, n = dst->n;
    kent_t *e = om_malloc(total * sizeof *e);
    size_t *match = om_malloc(src->n * sizeof *match);
    om_node_t **nk = om_malloc(total * sizeof *nk), **nv = om_malloc(total * sizeof *nv);
    if (e == NULL || match == NULL || nk == NULL || nv == NULL) {
        goto out;
    }
    size_t ne = 0;
    add_entries(e, &ne, dst, 0);
    add_entries(e, &ne, src, 1);
    qsort(e, ne, sizeof *e, kent_cmp);
    for (size_t i = 0; i < src->n; i++) {
        match[i] = SIZE_MAX;
    }
    for (size_t j = 1; j < ne; j++) {
        if (e[j].pri == 1 && e[j - 1].pri == 0 && strcmp(e[j].k, e[j - 1].k) == 0) {
            match[e[j].idx] = e[j - 1].idx;
        }
    }
    if (dst->n > 0) {
        memcpy(nk, dst->keys, dst->n * sizeof *nk);
        memcpy(nv, dst->values, dst->n * sizeof *nv);
    }
    for (size_t i = 0; i < src->n; i++) {
        size_t at = match[i];
        if (at == SIZE_MAX) {
            nk[n] = src->keys[i];
            nv[n++] = src->values[i];
        } else if (nv[at]->kind == OM_NODE_MAP && src->values[i]->kind == OM_NODE_MAP) {
            if (merge_maps(nv[at], src->values[i]) != 0) {
                goto out;
            }
        } else {
            nk[at] = src->keys[i];
            nv[at] = src->values[i];
        }
    }
    om_free(dst->keys);
    om_free(dst->values);
    dst->keys = nk;
    dst->values = nv;
    dst->n = n;
    nk = nv = NULL;
    rc = 0;
out:
    om_free(e);
    om_free(match);
    om_free(nk);
    om_free(nv);
    return rc;
}

/* The whole file at path (at most max bytes), NUL-terminated, om_malloc'd. Errors name the
 * file: OM_ECONFIG (cannot read, too large) or OM_ENOMEM. */
static int read_file_text(const char *path, size_t max, char **text, size_t *len, om_err_t *err)
{
    *text = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        om_err_set(err, OM_ECONFIG, "%s: cannot read: %s", path, strerror(errno));
        return OM_ECONFIG;
    }
    char *buf = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    for (;;) {
        if (n == cap) {
            if (cap >= max) {
                om_err_set(err, OM_ECONFIG, "%s: cannot read: larger than %zu bytes", path, max);
                rc = OM_ECONFIG;
                goto out;
            }
            size_t ncap = cap ? cap * 2 : 4096;
            ncap = ncap > max ? max : ncap;
            char *nb = om_realloc(buf, ncap + 1);
            if (nb == NULL) {
                om_err_set(err, OM_ENOMEM, "%s: out of memory", path);
                rc = OM_ENOMEM;
                goto out;
            }
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            break;
        }
    }
    if (ferror(f)) {
        om_err_set(err, OM_ECONFIG, "%s: cannot read: %s", path, strerror(errno));
        rc = OM_ECONFIG;
        goto out;
    }
    buf[n] = '\0';
    *text = buf;
    *len = n;
    buf = NULL;
out:
    fclose(f);
    om_free(buf);
    return rc;
}

static cfg_impl_t *config_new(om_diags_t *d)
{
    cfg_impl_t *c = om_calloc(1, sizeof *c);
    if (c == NULL) {
        om_diag_add(d, NULL, NULL, "config: out of memory");
    }
    return c;
}

/* The scheme of a config URI as otelcol's resolver reads it: "file" for a path (no ':' at
 * all, or a Windows drive letter), else the part before the first ':' when it matches
 * [A-Za-z][A-Za-z0-9+.-]+; NULL (n 0) when it does not. */
static const char *uri_scheme(const char *uri, size_t *n)
{
    const char *colon = strchr(uri, ':');
    bool drive =
        ((uri[0] >= 'A' && uri[0] <= 'Z') || (uri[0] >= 'a' && uri[0] <= 'z')) && uri[1] == ':';
    if (colon == NULL || drive) {
        *n = 4;
        return "file";
    }
    *n = (size_t)(colon - uri);
    bool ok = *n >= 2 && ((uri[0] >= 'A' && uri[0] <= 'Z') || (uri[0] >= 'a' && uri[0] <= 'z'));
    for (size_t i = 1; ok && i < *n; i++) {
        char ch = uri[i];
        ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
             ch == '+' || ch == '.' || ch == '-';
    }
    if (!ok) {
        *n = 0;
        return NULL;
    }
    return uri;
}

static bool scheme_is(const char *scheme, size_t n, const char *name)
{
    return scheme != NULL && strlen(name) == n && strncasecmp(scheme, name, n) == 0;
}

/* The YAML text of one --config source (file, env or yaml URI) and the name its messages
 * carry (the path for a file, the URI otherwise). env: an unset variable gives an empty
 * config with a warning, as otelcol's env provider does. */
static int source_text(const char *uri, char **text, size_t *len, const char **name, om_diags_t *d)
{
    size_t n;
    const char *scheme = uri_scheme(uri, &n);
    om_err_t err = {0};
    int rc = 0;
    *text = NULL;
    *len = 0;
    *name = uri;
    if (scheme_is(scheme, n, "file")) {
        const char *path = scheme == uri ? uri + 5 : uri;
        *name = path;
        rc = read_file_text(path, MAX_FILE_BYTES, text, len, &err);
    } else if (scheme_is(scheme, n, "env")) {
        const char *var = uri + 4;
        if (!env_name_ok(var, strlen(var))) {
            om_err_set(&err, OM_ECONFIG,
                       "%s: environment variable \"%.64s\" has invalid name: must match regex "
                       "^[a-zA-Z_][a-zA-Z0-9_]*$",
                       uri, var);
            rc = OM_ECONFIG;
        } else {
            const char *v = getenv(var);
            if (v == NULL) {
                OM_LOG(OM_LOG_WARN, "%s: configuration references unset environment variable", uri);
            }
            *text = om_strdup(v != NULL ? v : "");
            *len = v != NULL ? strlen(v) : 0;
            rc = *text == NULL ? OM_ENOMEM : 0;
        }
    } else if (scheme_is(scheme, n, "yaml")) {
        *text = om_strdup(uri + 5);
        *len = strlen(uri + 5);
        rc = *text == NULL ? OM_ENOMEM : 0;
    } else if (scheme_is(scheme, n, "http") || scheme_is(scheme, n, "https")) {
        om_err_set(&err, OM_ECONFIG,
                   "%s: http and https config URIs are not supported by otelmon: fetch the file "
                   "and pass its path",
                   uri);
        rc = OM_ECONFIG;
    } else {
        om_err_set(&err, OM_ECONFIG, "unsupported scheme on URI \"%s\"", uri);
        rc = OM_ECONFIG;
    }
    if (rc != 0) {
        om_diag_add(d, NULL, NULL, "%s",
                    rc == OM_ENOMEM && err.code == 0 ? "out of memory" : err.msg);
    }
    return rc;
}

/* Every source is read and parsed even after one fails, so that one run reports every
 * problem. */
static int load_sources(cfg_impl_t *c, const char *const *uris, size_t n, om_node_t **roots,
                        om_diags_t *d)
{
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        char *text = NULL;
        size_t len = 0;
        const char *name = uris[i];
        int r = source_text(uris[i], &text, &len, &name, d);
        if (r == 0) {
            r = load_text(c, name, text, len, d, &roots[i]);
        }
        om_free(text);
        if (r != 0 && (rc == 0 || r == OM_ENOMEM)) {
            rc = r;
        }
    }
    return rc;
}

int om_config_load(const char *defaults, const char *const *uris, size_t n, om_config_t **out,
                   om_diags_t *d)
{
    *out = NULL;
    cfg_impl_t *c = config_new(d);
    size_t first = defaults != NULL ? 1 : 0;
    om_node_t **roots = om_calloc(n + first > 0 ? n + first : 1, sizeof *roots);
    int rc = OM_ENOMEM;
    if (c == NULL || roots == NULL) {
        goto out;
    }
    rc = 0;
    if (defaults != NULL) {
        rc = load_text(c, "<default config>", defaults, strlen(defaults), d, &roots[0]);
    }
    int rs = load_sources(c, uris, n, roots + first, d);
    rc = rc != 0 ? rc : rs;
    if (rc != 0) {
        goto out;
    }
    if (n + first == 0) {
        loader_t L = {.c = c, .file = "", .d = d};
        roots[0] = new_node(&L, OM_NODE_MAP, 0, 0);
        rc = L.fatal;
        if (rc != 0) {
            goto out;
        }
    }
    for (size_t i = 1; i < n + first; i++) {
        rc = merge_maps(roots[0], roots[i]);
        if (rc != 0) {
            om_diag_add(d, NULL, NULL, "%s: out of memory", uris[i - first]);
            goto out;
        }
    }
    c->pub.root = roots[0];
    *out = &c->pub;
    c = NULL;
out:
    om_config_free(c != NULL ? &c->pub : NULL);
    om_free(roots);
    return rc;
}

int om_config_load_string(const char *name, const char *yaml, size_t len, om_config_t **out,
                          om_diags_t *d)
{
    *out = NULL;
    cfg_impl_t *c = config_new(d);
    if (c == NULL) {
        return OM_ENOMEM;
    }
    om_node_t *root = NULL;
    int rc =
        load_text(c, name != NULL ? name : "<string>", yaml != NULL ? yaml : "", len, d, &root);
    if (rc != 0) {
        om_config_free(&c->pub);
        return rc;
    }
    c->pub.root = root;
    *out = &c->pub;
    return 0;
}
