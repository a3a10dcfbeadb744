/* pipeline.c: from the config tree to a graph of wired component instances.
 *
 * Building is two passes: first every component config and every pipeline is checked and all
 * problems are collected (validate-everything-before-start); only when there are none are the
 * instances created, exporters first, so that each upstream component is created with its
 * downstream consumers already known.
 *
 * Connectors join pipelines: a connector listed as an exporter of pipeline P and a receiver
 * of pipeline Q is an edge P -> Q (one instance per pair of signals, as otelcol). The
 * pipelines and these edges must form a DAG; pipelines are created downstream first (a
 * post-order of that DAG), each after the connector instances it exports to, which are
 * created after the pipelines they feed. Shutdown stages follow the same order upstream
 * first: receivers, then each pipeline's processors and the connectors it feeds, stage by
 * stage, then exporters and extensions. */
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "component.h"
#include "log.h"
#include "pipeline.h"
#include "telemetry.h"

#define MAX_TYPE 64

/* One configured component id, e.g. receivers::otlp/2. */
typedef struct comp {
    om_kind_t kind;
    const om_factory_t *f;
    char *id;              /* owned */
    void *cfg;             /* owned; filled by the field table */
    const om_node_t *key;  /* for messages */
    unsigned used_signals; /* signals of the pipelines that use it */
    bool enabled;          /* extensions: listed in service::extensions */
    struct instance *inst; /* receivers and exporters: the one instance */
    /* Connectors: the signals of the pipelines that list it as an exporter / as a receiver,
     * and its instances by (exporter signal, receiver signal) index. */
    unsigned exp_sigs, rcv_sigs;
    struct instance *pairs[OM_SIG_COUNT][OM_SIG_COUNT];
} comp_t;

/* One created component. */
typedef struct instance {
    const comp_t *comp;
    char *log_name; /* owned */
    void *self;
    bool created;
    bool mutates; /* connectors: what the fan-out feeding it orders it by */
    int stage;    /* processors and connectors: the shutdown stage */
} instance_t;

/* Hands one batch to several consumers; retryable refusals win over permanent errors, so a
 * client retries whenever some branch may still take the data. The consumers are in the
 * order they are called: read-only ones first, then those that change data (see
 * OM_CAP_MUTATES_DATA), each in config order. */
struct om__fanout {
    size_t n;
    om_consumer_t *to; /* owned array */
};

typedef struct pipeline {
    char *id; /* owned */
    om_signal_t sig;
    const om_node_t *key;
    comp_t **receivers, **processors, **exporters; /* owned arrays of borrowed pointers */
    const om_node_t **rnodes, **pnodes, **enodes;  /* where each is listed (owned arrays) */
    size_t nr, np, ne;
    instance_t **procs;  /* owned array; the instances are in the graph's list */
    om_consumer_t entry; /* what receivers hand this pipeline's data to */
    bool mutates;        /* some processor or exporter declares OM_CAP_MUTATES_DATA */
} pipeline_t;

/* service::telemetry. */
typedef struct telemetry_cfg {
    om_log_cfg_t logs;
    om_telemetry_cfg_t metrics; /* metrics and resource: telemetry.c reads those keys */
} telemetry_cfg_t;

struct om_graph {
    const om_config_t *cfg;
    om_host_t *host;
    telemetry_cfg_t telemetry; /* service::telemetry; freed with the graph */
    comp_t *comps;
    size_t n_comps;
    pipeline_t *pipes;
    size_t n_pipes;
    size_t *order;     /* pipeline indexes, downstream first (owned); n_pipes of them */
    instance_t **inst; /* owned; in creation order: exporters, processors, receivers */
    size_t n_inst;
    om__fanout_t **fanouts;
    size_t n_fanouts;
    om__stage_t **runs; /* owned: the pipelines' off-loop runs (offloop.c) */
    size_t n_runs;
    bool registered; /* the enabled extensions are registered with the host */
    /* Introspection (om_host_pipelines), made on first use. */
    om_pipeline_info_t *info;
    const char **info_ids; /* owned: every id array of info, then the extensions' */
    const char *const *ext_ids;
    size_t n_ext;
    /* shutdown */
    int stage; /* 0 receivers, then processors and connectors (instance_t.stage), exporters */
    int n_stages;
    size_t pending;
    bool shutting_down;
    om_done_fn done;
    void *done_arg;
};

static const om_kind_t kinds[] = {OM_RECEIVER, OM_PROCESSOR, OM_EXPORTER, OM_EXTENSION,
                                  OM_CONNECTOR};

/* ---------------------------------------------------------------------------------------- */
/* Growing arrays                                                                           */

static int grow(void **arr, size_t *n, size_t elem)
{
    /* Capacity is the next power of two: n elements fit, and n+1 triggers a doubling. */
    size_t cap = 4;
    while (cap <= *n) {
        cap *= 2;
    }
    if (*n == 0 || (*n & (*n - 1)) == 0) {
        void *na = om_realloc(*arr, cap * elem);
        if (na == NULL) {
            return OM_ENOMEM;
        }
        *arr = na;
    }
    (*n)++;
    return 0;
}

#define GROW(arr, n) grow((void **)&(arr), &(n), sizeof *(arr))

/* ---------------------------------------------------------------------------------------- */
/* Fan-out                                                                                  */

int om__fanout_consume(void *self, om_batch_t *batch)
{
    om__fanout_t *f = self;
    int result = 0;
    for (size_t i = 0; i < f->n; i++) {
        om_batch_t *give = i + 1 == f->n ? batch : om_batch_ref(batch);
        int rc = om_consumer_consume(&f->to[i], give);
        if (rc != 0 && (result == 0 || om_err_retryable(rc))) {
            result = rc;
        }
    }
    return result;
}

om__fanout_t *om__fanout_new(const om_consumer_t *list, const bool *mutates, size_t n)
{
    om__fanout_t *f = om_calloc(1, sizeof *f);
    om_consumer_t *to = om_malloc((n > 0 ? n : 1) * sizeof *to);
    if (f == NULL || to == NULL) {
        om_free(f);
        om_free(to);
        return NULL;
    }
    /* Read-only consumers first, so that the last one, which gets the fan-out's own
     * reference, is a mutating one whenever there is one. */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < n; i++) {
            if (mutates[i] == (pass == 1)) {
                to[f->n++] = list[i];
            }
        }
    }
    f->to = to;
    return f;
}

void om__fanout_free(om__fanout_t *f)
{
    if (f != NULL) {
        om_free(f->to);
        om_free(f);
    }
}

/* A consumer for the list: the only one itself, or a new fan-out over all of them (owned by
 * the graph). */
static int make_fanout(om_graph_t *g, const om_consumer_t *list, const bool *mutates, size_t n,
                       om_consumer_t *out)
{
    if (n == 1) {
        *out = list[0];
        return 0;
    }
    om__fanout_t *f = om__fanout_new(list, mutates, n);
    if (f == NULL || GROW(g->fanouts, g->n_fanouts) != 0) {
        om__fanout_free(f);
        return OM_ENOMEM;
    }
    g->fanouts[g->n_fanouts - 1] = f;
    *out = (om_consumer_t){.self = f, .consume = om__fanout_consume};
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Pass 1: component configs                                                                */

static char *join_path(const char *a, const char *b)
{
    om_strbuf_t sb;
    om_strbuf_init(&sb, 0);
    om_strbuf_printf(&sb, "%s::%s", a, b);
    return om_strbuf_steal(&sb, NULL);
}

static void diag_unknown_type(om_diags_t *d, const om_node_t *key, om_kind_t kind, const char *type)
{
    om_strbuf_t valid;
    om_strbuf_init(&valid, 0);
    om__factory_list(kind, &valid);
    om_diag_add(d, key, om_kind_plural(kind),
                "unknown type: \"%s\" for id: \"%s\" (valid values: [%s])", type, key->str,
                valid.data ? valid.data : "");
    om_strbuf_free(&valid);
}

/* The item a part of an `at` path names in a sequence: "2" is its third item; NULL when seq
 * is no sequence or has no such item. */
static const om_node_t *seq_index(const om_node_t *seq, const char *part)
{
    if (seq == NULL || seq->kind != OM_NODE_SEQ || part[0] < '0' || part[0] > '9') {
        return NULL;
    }
    char *end = NULL;
    unsigned long long i = strtoull(part, &end, 10);
    return *end == '\0' && i < seq->n ? seq->values[i] : NULL;
}

/* The i-th item of a SEQ node, or NULL. */
static const om_node_t *seq_item(const om_node_t *seq, unsigned long i)
{
    return seq != NULL && seq->kind == OM_NODE_SEQ && i < seq->n ? seq->values[i] : NULL;
}

/* One part of an `at` path: "key" or "key[i]" (a SECLIST element, see OM_F_SECLIST), looked
 * up below value. NULL when it is not written. */
static const om_node_t *part_at(const om_node_t *value, char *part)
{
    char *bracket = strchr(part, '[');
    if (bracket == NULL) {
        return om_node_get(value, part);
    }
    *bracket = '\0';
    char *end = NULL;
    unsigned long i = strtoul(bracket + 1, &end, 10);
    if (end == bracket + 1 || *end != ']') {
        return NULL;
    }
    return seq_item(om_node_get(value, part), i);
}

/* The node a config_validate error is about: the value at `at` ("a::b[2]::c", or "a::2::c"
 * where a number indexes a sequence) below the component's node, or the deepest part of that
 * path that is written (a rule about a key left at its default points at the section it
 * belongs in), or the component's key. */
static const om_node_t *node_at(const om_node_t *key, const om_node_t *value, const char *at)
{
    const om_node_t *found = value != NULL && value->kind == OM_NODE_MAP ? value : key;
    char part[128];
    while (at != NULL && at[0] != '\0') {
        const char *sep = strstr(at, "::");
        size_t n = sep != NULL ? (size_t)(sep - at) : strlen(at);
        if (n >= sizeof part) {
            break;
        }
        memcpy(part, at, n);
        part[n] = '\0';
        const om_node_t *next = part_at(value, part);
        if (next == NULL) {
            next = seq_index(value, part);
        }
        if (next == NULL) {
            break;
        }
        found = value = next;
        at = sep != NULL ? sep + 2 : NULL;
    }
    return found;
}

static int load_component(om_graph_t *g, om_kind_t kind, const om_node_t *key,
                          const om_node_t *value, om_diags_t *d)
{
    char type[MAX_TYPE];
    om_err_t err = {0};
    if (om__id_parse(key->str, type, sizeof type, &err) != 0) {
        om_diag_add(d, key, om_kind_plural(kind), "%s", err.msg);
        return 0;
    }
    const om_factory_t *f = om__factory_find(kind, type);
    if (f == NULL) {
        diag_unknown_type(d, key, kind, type);
        return 0;
    }
    if (GROW(g->comps, g->n_comps) != 0) {
        return OM_ENOMEM;
    }
    comp_t *c = &g->comps[g->n_comps - 1];
    memset(c, 0, sizeof *c);
    c->kind = kind;
    c->f = f;
    c->key = key;
    c->id = om_strdup(key->str);
    c->cfg = om_calloc(1, f->config_size);
    char *path = join_path(om_kind_plural(kind), key->str);
    if (c->id == NULL || c->cfg == NULL || path == NULL) {
        om_free(path);
        return OM_ENOMEM;
    }
    int problems = om_fields_apply(f->fields, c->cfg, value, path, d);
    if (problems == 0 && f->config_validate != NULL && f->config_validate(c->cfg, &err) != 0) {
        if (err.at[0] != '\0') {
            om_diag_add(d, node_at(key, value, err.at), path, "%s: %s", err.at, err.msg);
        } else {
            om_diag_add(d, key, path, "%s", err.msg);
        }
    }
    om_free(path);
    return 0;
}

static int load_section(om_graph_t *g, const om_node_t *root, om_kind_t kind, om_diags_t *d)
{
    const om_node_t *sec = om_node_get(root, om_kind_plural(kind));
    if (sec == NULL || sec->kind == OM_NODE_NULL) {
        return 0;
    }
    if (sec->kind != OM_NODE_MAP) {
        om_diag_add(d, sec, om_kind_plural(kind), "must be a map of component ids");
        return 0;
    }
    for (size_t i = 0; i < sec->n; i++) {
        int rc = load_component(g, kind, sec->keys[i], sec->values[i], d);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

static comp_t *find_comp(om_graph_t *g, om_kind_t kind, const char *id)
{
    for (size_t i = 0; i < g->n_comps; i++) {
        if (g->comps[i].kind == kind && strcmp(g->comps[i].id, id) == 0) {
            return &g->comps[i];
        }
    }
    return NULL;
}

/* True when id is configured in that section, even if its type is unknown (that was already
 * reported, so the pipeline need not report it again). */
static bool id_written(const om_node_t *root, om_kind_t kind, const char *id)
{
    return om_node_get(om_node_get(root, om_kind_plural(kind)), id) != NULL;
}

/* ---------------------------------------------------------------------------------------- */
/* Pass 1: service                                                                          */

static const om_field_t telemetry_fields[] = {
    {.key = "logs",
     .type = OM_F_SECTION,
     .offset = offsetof(telemetry_cfg_t, logs),
     .fields = om__log_fields},
    {.key = "traces", .type = OM_F_IGNORED},
    {.key = NULL},
};

/* service::telemetry: logs and traces from the field table, metrics and resource (shapes a
 * field table cannot say) by telemetry.c; the table sees a copy of the map without those. */
static void apply_telemetry(telemetry_cfg_t *tel, const om_node_t *node, om_diags_t *d)
{
    om__telemetry_cfg_apply(&tel->metrics, node, d);
    om_node_t view = {.kind = OM_NODE_NULL};
    om_node_t *keys[64], *values[64];
    if (node != NULL && node->kind == OM_NODE_MAP && node->n <= 64) {
        view = *node;
        view.n = 0;
        view.keys = keys;
        view.values = values;
        for (size_t i = 0; i < node->n; i++) {
            const char *k = node->keys[i]->str;
            if (strcmp(k, "metrics") != 0 && strcmp(k, "resource") != 0) {
                keys[view.n] = node->keys[i];
                values[view.n++] = node->values[i];
            }
        }
        node = &view;
    }
    om_fields_apply(telemetry_fields, tel, node, "service::telemetry", d);
}

static void check_keys(const om_node_t *map, const char *const *allowed, const char *path,
                       om_diags_t *d)
{
    om_strbuf_t bad;
    om_strbuf_init(&bad, 0);
    const om_node_t *first = NULL;
    for (size_t i = 0; map != NULL && map->kind == OM_NODE_MAP && i < map->n; i++) {
        bool ok = false;
        for (const char *const *a = allowed; *a != NULL && !ok; a++) {
            ok = strcmp(*a, map->keys[i]->str) == 0;
        }
        if (!ok) {
            om_strbuf_printf(&bad, "%s%s", first ? ", " : "", map->keys[i]->str);
            first = first ? first : map->keys[i];
        }
    }
    if (first != NULL) {
        om_diag_add(d, first, NULL, "'%s' has invalid keys: %s", path, bad.data);
    }
    om_strbuf_free(&bad);
}

/* The component an id in a pipeline's list names: of the list's kind, or a connector in the
 * receivers and exporters lists. */
static comp_t *find_listed(om_graph_t *g, om_kind_t kind, const char *id)
{
    comp_t *c = find_comp(g, kind, id);
    if (c == NULL && kind != OM_PROCESSOR) {
        c = find_comp(g, OM_CONNECTOR, id);
    }
    return c;
}

static bool listed_id_written(const om_node_t *root, om_kind_t kind, const char *id)
{
    return id_written(root, kind, id) ||
           (kind != OM_PROCESSOR && id_written(root, OM_CONNECTOR, id));
}

static int resolve_list(om_graph_t *g, const om_node_t *pipe_node, const char *pipe_path,
                        om_kind_t kind, comp_t ***out, const om_node_t ***nodes, size_t *n,
                        om_diags_t *d)
{
    const char *field = om_kind_plural(kind);
    const om_node_t *list = om_node_get(pipe_node, field);
    if (list == NULL || list->kind == OM_NODE_NULL) {
        return 0;
    }
    if (list->kind != OM_NODE_SEQ) {
        om_diag_add(d, list, pipe_path, "'%s' must be a list of component ids", field);
        return 0;
    }
    for (size_t i = 0; i < list->n; i++) {
        const om_node_t *item = list->values[i];
        if (item->kind != OM_NODE_SCALAR) {
            om_diag_add(d, item, pipe_path, "'%s' must be a list of component ids", field);
            continue;
        }
        comp_t *c = find_listed(g, kind, item->str);
        if (c == NULL) {
            if (!listed_id_written(g->cfg->root, kind, item->str)) {
                om_diag_add(d, item, pipe_path, "references %s \"%s\" which is not configured",
                            om_kind_name(kind), item->str);
            }
            continue;
        }
        for (size_t j = 0; j < *n; j++) {
            if ((*out)[j] == c) {
                om_diag_add(d, item, pipe_path, "references %s \"%s\" multiple times",
                            om_kind_name(kind), item->str);
                c = NULL;
                break;
            }
        }
        if (c == NULL) {
            continue;
        }
        size_t nn = *n;
        if (GROW(*out, *n) != 0 || GROW(*nodes, nn) != 0) {
            return OM_ENOMEM;
        }
        (*out)[*n - 1] = c;
        (*nodes)[*n - 1] = item;
    }
    return 0;
}

static om_signal_t signal_from_type(const char *type)
{
    for (int i = 0; i < OM_SIG_COUNT; i++) {
        om_signal_t s = om_signal_from_index(i);
        if (strcmp(om_signal_name(s), type) == 0) {
            return s;
        }
    }
    return 0;
}

static void check_support(pipeline_t *p, const char *path, om_diags_t *d)
{
    comp_t **lists[] = {p->receivers, p->processors, p->exporters};
    size_t counts[] = {p->nr, p->np, p->ne};
    for (int l = 0; l < 3; l++) {
        for (size_t i = 0; i < counts[l]; i++) {
            comp_t *c = lists[l][i];
            if (c->kind == OM_CONNECTOR) {
                /* Which signal pairs it supports is checked once every pipeline is known. */
                c->exp_sigs |= l == 2 ? (unsigned)p->sig : 0;
                c->rcv_sigs |= l == 0 ? (unsigned)p->sig : 0;
                continue;
            }
            if (!(c->f->signals & p->sig)) {
                om_diag_add(d, p->key, path, "%s \"%s\" does not support %s", om_kind_name(c->kind),
                            c->id, om_signal_name(p->sig));
            }
            c->used_signals |= p->sig;
        }
    }
}

static int load_pipeline(om_graph_t *g, const om_node_t *key, const om_node_t *value, om_diags_t *d)
{
    char type[MAX_TYPE];
    om_err_t err = {0};
    char *path = join_path("service::pipelines", key->str);
    if (path == NULL) {
        return OM_ENOMEM;
    }
    static const char *const allowed[] = {"receivers", "processors", "exporters", NULL};
    check_keys(value, allowed, path, d);
    int rc = 0;
    om_signal_t sig = 0;
    if (om__id_parse(key->str, type, sizeof type, &err) != 0) {
        om_diag_add(d, key, path, "%s", err.msg);
    } else if ((sig = signal_from_type(type)) == 0) {
        om_diag_add(d, key, path, "unknown signal \"%s\" (valid values: traces, metrics, logs)",
                    type);
    }
    if (sig == 0 || GROW(g->pipes, g->n_pipes) != 0) {
        rc = sig == 0 ? 0 : OM_ENOMEM;
        goto out;
    }
    pipeline_t *p = &g->pipes[g->n_pipes - 1];
    memset(p, 0, sizeof *p);
    p->id = om_strdup(key->str);
    p->sig = sig;
    p->key = key;
    if (value != NULL && value->kind != OM_NODE_MAP && value->kind != OM_NODE_NULL) {
        om_diag_add(d, value, path, "must be a map with receivers, processors and exporters");
    }
    rc = resolve_list(g, value, path, OM_RECEIVER, &p->receivers, &p->rnodes, &p->nr, d);
    rc =
        rc ? rc : resolve_list(g, value, path, OM_PROCESSOR, &p->processors, &p->pnodes, &p->np, d);
    rc = rc ? rc : resolve_list(g, value, path, OM_EXPORTER, &p->exporters, &p->enodes, &p->ne, d);
    if (rc == 0 && p->id == NULL) {
        rc = OM_ENOMEM;
    }
    if (rc == 0 && p->nr == 0 && om_node_get(value, "receivers") == NULL) {
        om_diag_add(d, key, path, "must have at least one receiver");
    }
    if (rc == 0 && p->ne == 0 && om_node_get(value, "exporters") == NULL) {
        om_diag_add(d, key, path, "must have at least one exporter");
    }
    if (rc == 0) {
        check_support(p, path, d);
    }
out:
    om_free(path);
    return rc;
}

static int load_service(om_graph_t *g, const om_node_t *root, om_diags_t *d)
{
    const om_node_t *svc = om_node_get(root, "service");
    static const char *const allowed[] = {"extensions", "pipelines", "telemetry", NULL};
    check_keys(svc, allowed, "service", d);
    apply_telemetry(&g->telemetry, om_node_get(svc, "telemetry"), d);

    const om_node_t *exts = om_node_get(svc, "extensions");
    if (exts != NULL && exts->kind != OM_NODE_SEQ && exts->kind != OM_NODE_NULL) {
        om_diag_add(d, exts, "service::extensions", "must be a list of extension ids");
    }
    for (size_t i = 0; exts != NULL && exts->kind == OM_NODE_SEQ && i < exts->n; i++) {
        const om_node_t *e = exts->values[i];
        comp_t *c = e->kind == OM_NODE_SCALAR ? find_comp(g, OM_EXTENSION, e->str) : NULL;
        if (c == NULL && e->kind == OM_NODE_SCALAR && !id_written(root, OM_EXTENSION, e->str)) {
            om_diag_add(d, e, "service::extensions",
                        "references extension \"%s\" which is not configured", e->str);
        } else if (c != NULL && c->enabled) {
            om_diag_add(d, e, "service::extensions", "references extension \"%s\" multiple times",
                        e->str);
        } else if (c != NULL) {
            c->enabled = true;
        }
    }
    const om_node_t *pipes = om_node_get(svc, "pipelines");
    if (pipes == NULL || pipes->kind != OM_NODE_MAP || pipes->n == 0) {
        om_diag_add(d, pipes ? pipes : svc, NULL, "service must have at least one pipeline");
        return 0;
    }
    for (size_t i = 0; i < pipes->n; i++) {
        int rc = load_pipeline(g, pipes->keys[i], pipes->values[i], d);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Pass 1: connectors                                                                       */

/* A string quoted as Go's %q quotes it (strconv.Quote), for the messages otelcol writes
 * with %q: the name part of an id may hold any character ("forward/a\"b" is valid). Valid
 * UTF-8 sequences are kept as they are (Go escapes the few non-printable runes above ASCII,
 * e.g. U+2028, as \u2028: those are kept here); other bytes are escaped as Go escapes them. */
static void put_quoted(om_strbuf_t *sb, const char *s)
{
    static const char esc[] = "\\a\\b\\t\\n\\v\\f\\r"; /* \a (7) to \r (13), two bytes each */
    const unsigned char *p = (const unsigned char *)s;
    om_strbuf_putc(sb, '"');
    while (*p != '\0') {
        size_t n = om_utf8_seq(p, 4);
        if (*p == '"' || *p == '\\') {
            om_strbuf_putc(sb, '\\');
            om_strbuf_putc(sb, (char)*p);
        } else if (*p >= 7 && *p <= 13) {
            om_strbuf_append(sb, esc + 2 * (*p - 7), 2);
        } else if (*p < 0x20 || *p == 0x7f || n == 0) {
            om_strbuf_printf(sb, "\\x%02x", *p);
        } else {
            om_strbuf_append(sb, p, n);
            p += n;
            continue;
        }
        p++;
    }
    om_strbuf_putc(sb, '"');
}

static om_signal_t sig_at(int i)
{
    return om_signal_from_index(i);
}

/* The connector is created for the pair (exporter signal e, receiver signal r): used on both
 * sides with these signals, and the factory supports the pair. */
static bool conn_pair(const comp_t *c, int e, int r)
{
    return c->kind == OM_CONNECTOR && (c->exp_sigs & sig_at(e)) && (c->rcv_sigs & sig_at(r)) &&
           (c->f->connects[e] & sig_at(r));
}

static bool lists_comp(comp_t *const *list, size_t n, const comp_t *c, size_t *at)
{
    for (size_t i = 0; i < n; i++) {
        if (list[i] == c) {
            if (at != NULL) {
                *at = i;
            }
            return true;
        }
    }
    return false;
}

/* otelcol's message for a connector used with signal s on one side (as an exporter when
 * as_exporter) and with no supported signal on the other, pointing at the first place the
 * connector is listed so. The pipelines are listed as Go prints a []string. */
static void report_one_sided(om_graph_t *g, const comp_t *c, bool as_exporter, om_signal_t s,
                             om_diags_t *d)
{
    om_strbuf_t names;
    om_strbuf_init(&names, 0);
    const om_node_t *at = NULL;
    for (size_t i = 0; i < g->n_pipes; i++) {
        pipeline_t *p = &g->pipes[i];
        size_t k;
        bool listed = as_exporter ? lists_comp(p->exporters, p->ne, c, &k)
                                  : lists_comp(p->receivers, p->nr, c, &k);
        if (p->sig != s || !listed) {
            continue;
        }
        om_strbuf_printf(&names, "%s%s", at != NULL ? " " : "", p->id);
        at = at != NULL ? at : (as_exporter ? p->enodes[k] : p->rnodes[k]);
    }
    om_strbuf_t id;
    om_strbuf_init(&id, 0);
    put_quoted(&id, c->id);
    om_diag_add(d, at, NULL,
                "connector %s used as %s in [%s] pipeline but not used in any supported %s "
                "pipeline",
                id.data ? id.data : "", as_exporter ? "exporter" : "receiver",
                names.data ? names.data : "", as_exporter ? "receiver" : "exporter");
    om_strbuf_free(&id);
    om_strbuf_free(&names);
}

static void check_connector(om_graph_t *g, const comp_t *c, om_diags_t *d)
{
    if (c->exp_sigs == 0 && c->rcv_sigs == 0) {
        /* otelcol builds only what pipelines use and says nothing; a word helps. */
        OM_LOG(OM_LOG_WARN, "connectors::%s is not used in any pipeline", c->id);
        return;
    }
    for (int e = 0; e < OM_SIG_COUNT; e++) {
        if ((c->exp_sigs & sig_at(e)) && !(c->f->connects[e] & c->rcv_sigs)) {
            report_one_sided(g, c, true, sig_at(e), d);
        }
    }
    for (int r = 0; r < OM_SIG_COUNT; r++) {
        bool fed = false;
        for (int e = 0; e < OM_SIG_COUNT; e++) {
            fed = fed || conn_pair(c, e, r);
        }
        if ((c->rcv_sigs & sig_at(r)) && !fed) {
            report_one_sided(g, c, false, sig_at(r), d);
        }
    }
}

/* otelcol's rule: an id may not name a connector and an exporter or receiver, since
 * pipelines list connectors among those. */
static void check_ambiguous(om_graph_t *g, const comp_t *c, om_diags_t *d)
{
    static const om_kind_t others[] = {OM_EXPORTER, OM_RECEIVER};
    for (size_t k = 0; k < 2; k++) {
        if (!id_written(g->cfg->root, others[k], c->id)) {
            continue;
        }
        om_strbuf_t sb;
        om_strbuf_init(&sb, 0);
        om_strbuf_printf(&sb, "connectors::%s: ambiguous ID: Found both ", c->id);
        put_quoted(&sb, c->id);
        om_strbuf_printf(&sb, " %s and ", om_kind_name(others[k]));
        put_quoted(&sb, c->id);
        om_strbuf_puts(&sb, " connector. Change one of the components' IDs to eliminate "
                            "ambiguity (e.g. rename ");
        put_quoted(&sb, c->id);
        om_strbuf_puts(&sb, " connector to ");
        om_strbuf_t renamed;
        om_strbuf_init(&renamed, 0);
        om_strbuf_printf(&renamed, "%s/connector", c->id);
        put_quoted(&sb, renamed.data ? renamed.data : "");
        om_strbuf_putc(&sb, ')');
        om_diag_add(d, c->key, NULL, "%s", sb.data ? sb.data : "ambiguous ID");
        om_strbuf_free(&renamed);
        om_strbuf_free(&sb);
    }
}

/* Depth-first search over pipelines joined by connectors: finds a cycle, or orders the
 * pipelines downstream first (post-order). Depth at most the number of pipelines. */
typedef struct dfs {
    om_graph_t *g;
    om_diags_t *d;
    unsigned char *color; /* 0 unseen, 1 on the stack, 2 done */
    size_t *stack;        /* pipelines on the path */
    const comp_t **via;   /* via[k]: the connector that led to stack[k] (NULL for the root) */
    size_t depth, n_order;
    bool cycle;
} dfs_t;

static void append_procs(om_strbuf_t *sb, const pipeline_t *p)
{
    for (size_t k = 0; k < p->np; k++) {
        om_strbuf_puts(sb, " -> processor ");
        put_quoted(sb, p->processors[k]->id);
        om_strbuf_puts(sb, " in pipeline ");
        put_quoted(sb, p->id);
    }
}

static void append_conn(om_strbuf_t *sb, const comp_t *c, om_signal_t e, om_signal_t r)
{
    om_strbuf_puts(sb, "connector ");
    put_quoted(sb, c->id);
    om_strbuf_printf(sb, " (%s to %s)", om_signal_name(e), om_signal_name(r));
}

/* The cycle closes with connector c (listed at node `at` among the exporters of the pipeline
 * on top of the stack) going back to stack[k]. Reported as otelcol does, from a connector:
 * connector, the processors of the pipeline it feeds, the next connector..., the first one. */
static void report_cycle(dfs_t *w, size_t k, const comp_t *c, const om_node_t *at)
{
    pipeline_t *pipes = w->g->pipes;
    const pipeline_t *top = &pipes[w->stack[w->depth - 1]];
    om_strbuf_t sb;
    om_strbuf_init(&sb, 0);
    om_strbuf_puts(&sb, "cycle detected: ");
    append_conn(&sb, c, top->sig, pipes[w->stack[k]].sig);
    for (size_t i = k; i < w->depth; i++) {
        const pipeline_t *p = &pipes[w->stack[i]];
        append_procs(&sb, p);
        om_strbuf_puts(&sb, " -> ");
        if (i + 1 < w->depth) {
            append_conn(&sb, w->via[i + 1], p->sig, pipes[w->stack[i + 1]].sig);
        } else {
            append_conn(&sb, c, top->sig, pipes[w->stack[k]].sig);
        }
    }
    om_diag_add(w->d, at, NULL, "%s", sb.data ? sb.data : "cycle detected");
    om_strbuf_free(&sb);
    w->cycle = true;
}

static void dfs_visit(dfs_t *w, size_t pi, const comp_t *via);

/* The pipelines connector c (an exporter of p, listed at `at`) feeds. */
static void dfs_edges(dfs_t *w, const pipeline_t *p, const comp_t *c, const om_node_t *at)
{
    int e = om_signal_index(p->sig);
    for (size_t qi = 0; qi < w->g->n_pipes && !w->cycle; qi++) {
        const pipeline_t *q = &w->g->pipes[qi];
        if (!conn_pair(c, e, om_signal_index(q->sig)) ||
            !lists_comp(q->receivers, q->nr, c, NULL)) {
            continue;
        }
        if (w->color[qi] == 1) {
            size_t k = 0;
            while (w->stack[k] != qi) {
                k++;
            }
            report_cycle(w, k, c, at);
        } else if (w->color[qi] == 0) {
            dfs_visit(w, qi, c);
        }
    }
}

static void dfs_visit(dfs_t *w, size_t pi, const comp_t *via)
{
    const pipeline_t *p = &w->g->pipes[pi];
    w->color[pi] = 1;
    w->via[w->depth] = via;
    w->stack[w->depth++] = pi;
    for (size_t j = 0; j < p->ne && !w->cycle; j++) {
        if (p->exporters[j]->kind == OM_CONNECTOR) {
            dfs_edges(w, p, p->exporters[j], p->enodes[j]);
        }
    }
    if (w->cycle) {
        return;
    }
    w->depth--;
    w->color[pi] = 2;
    w->g->order[w->n_order++] = pi;
}

static int check_connectors(om_graph_t *g, om_diags_t *d)
{
    for (size_t i = 0; i < g->n_comps; i++) {
        if (g->comps[i].kind == OM_CONNECTOR) {
            check_ambiguous(g, &g->comps[i], d);
            check_connector(g, &g->comps[i], d);
        }
    }
    size_t n = g->n_pipes ? g->n_pipes : 1;
    dfs_t w = {.g = g, .d = d};
    w.color = om_calloc(n, 1);
    w.stack = om_calloc(n, sizeof *w.stack);
    w.via = om_calloc(n, sizeof *w.via);
    g->order = om_calloc(n, sizeof *g->order);
    int rc = w.color && w.stack && w.via && g->order ? 0 : OM_ENOMEM;
    for (size_t i = 0; rc == 0 && i < g->n_pipes && !w.cycle; i++) {
        if (w.color[i] == 0) {
            dfs_visit(&w, i, NULL);
        }
    }
    om_free(w.color);
    om_free(w.stack);
    om_free(w.via);
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* Pass 1: authenticator references                                                         */

typedef struct refctx {
    om_graph_t *g;
    const comp_t *c;
    om_diags_t *d;
} refctx_t;

static const char *offers(unsigned sides)
{
    switch (sides) {
    case OM_AUTH_SERVER:
        return "authenticates servers only";
    case OM_AUTH_CLIENT:
        return "authenticates clients only";
    default:
        return "is not an authenticator";
    }
}

/* One `auth::authenticator`: it must name a configured extension, enabled in
 * service::extensions, that offers the side asked for. otelcol finds this out at start; the
 * messages begin with its words. */
static void check_ref(void *arg, const om_auth_cfg_t *a, unsigned side, const char *path)
{
    refctx_t *x = arg;
    const char *id = a->authenticator;
    if (id == NULL) {
        return;
    }
    const om_node_t *at = a->node != NULL ? a->node : x->c->key;
    comp_t *e = find_comp(x->g, OM_EXTENSION, id);
    if (e == NULL) {
        if (!id_written(x->g->cfg->root, OM_EXTENSION, id)) {
            om_diag_add(x->d, at, path,
                        "failed to resolve authenticator \"%s\": authenticator not found (no "
                        "extension \"%s\" is configured)",
                        id, id);
        }
        return;
    }
    if (!e->enabled) {
        om_diag_add(x->d, at, path,
                    "failed to resolve authenticator \"%s\": authenticator not found (extension "
                    "\"%s\" is not enabled in service::extensions)",
                    id, id);
        return;
    }
    unsigned sides = om__auth_sides(e->f, e->cfg);
    if (!(sides & side)) {
        om_diag_add(x->d, at, path,
                    "requested authenticator is not a %s authenticator (extension \"%s\" %s)",
                    side == OM_AUTH_SERVER ? "server" : "client", id, offers(sides));
    }
}

/* Every component that will run (receivers and exporters in a pipeline, processors, enabled
 * extensions), walked with its field table. */
static void check_auth_refs(om_graph_t *g, om_diags_t *d)
{
    for (size_t i = 0; i < g->n_comps; i++) {
        comp_t *c = &g->comps[i];
        bool runs = c->kind == OM_EXTENSION ? c->enabled : c->used_signals != 0;
        char *path = join_path(om_kind_plural(c->kind), c->id);
        if (runs && path != NULL) {
            refctx_t x = {.g = g, .c = c, .d = d};
            om__auth_refs_walk(c->f->fields, c->cfg, path, check_ref, &x);
        }
        om_free(path);
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Pass 2: instances                                                                        */

static om_consume_fn consume_fn(const om_factory_t *f, om_signal_t sig)
{
    switch (sig) {
    case OM_SIG_TRACES:
        return f->consume_traces;
    case OM_SIG_METRICS:
        return f->consume_metrics;
    default:
        return f->consume_logs;
    }
}

static int create_instance(om_graph_t *g, const comp_t *c, const char *pipe_id, unsigned sigs,
                           const om_consumer_t next[OM_SIG_COUNT], instance_t **out, om_diags_t *d)
{
    instance_t *in = om_calloc(1, sizeof *in);
    om_strbuf_t name;
    om_strbuf_init(&name, 0);
    om_strbuf_printf(&name, "%s/%s", om_kind_name(c->kind), c->id);
    if (pipe_id != NULL) {
        om_strbuf_printf(&name, "@%s", pipe_id);
    }
    if (in == NULL || name.failed || GROW(g->inst, g->n_inst) != 0) {
        om_free(in);
        om_strbuf_free(&name);
        return OM_ENOMEM;
    }
    g->inst[g->n_inst - 1] = in;
    in->comp = c;
    in->log_name = om_strbuf_steal(&name, NULL);
    om_create_args_t a = {
        .cfg = c->cfg, .id = c->id, .log_name = in->log_name, .host = g->host, .signals = sigs};
    if (next != NULL) {
        memcpy(a.next, next, sizeof a.next);
    }
    om_err_t err = {0};
    if (c->f->create(&a, &in->self, &err) != 0) {
        om_diag_add(d, c->key, in->log_name, "cannot create: %s", err.msg);
        return OM_ECONFIG;
    }
    in->created = true;
    *out = in;
    return 0;
}

static int create_exporters(om_graph_t *g, om_diags_t *d)
{
    for (size_t i = 0; i < g->n_comps; i++) {
        comp_t *c = &g->comps[i];
        if (c->kind == OM_EXPORTER && c->used_signals != 0) {
            int rc = create_instance(g, c, NULL, c->used_signals, NULL, &c->inst, d);
            if (rc != 0) {
                return rc;
            }
        }
    }
    return 0;
}

/* The instance of connector c for signals (e, r), whose next consumer is a fan-out over the
 * pipelines of signal r that list c as a receiver (downstream: created already). */
static int create_connector(om_graph_t *g, comp_t *c, int e, int r, om_diags_t *d)
{
    size_t room = g->n_pipes ? g->n_pipes : 1;
    om_consumer_t *list = om_malloc(room * sizeof *list);
    bool *mutates = om_malloc(room * sizeof *mutates);
    om_consumer_t next[OM_SIG_COUNT] = {{0}};
    size_t n = 0;
    bool any_mutates = false;
    int rc = list != NULL && mutates != NULL ? 0 : OM_ENOMEM;
    for (size_t i = 0; rc == 0 && i < g->n_pipes; i++) {
        pipeline_t *q = &g->pipes[i];
        if (q->sig == sig_at(r) && lists_comp(q->receivers, q->nr, c, NULL)) {
            mutates[n] = q->mutates;
            any_mutates = any_mutates || q->mutates;
            list[n++] = q->entry;
        }
    }
    rc = rc == 0 && n > 0 ? make_fanout(g, list, mutates, n, &next[r]) : rc;
    om_free(list);
    om_free(mutates);
    if (rc != 0) {
        return rc;
    }
    char pair[32];
    snprintf(pair, sizeof pair, "%s-to-%s", om_signal_name(sig_at(e)), om_signal_name(sig_at(r)));
    rc = create_instance(g, c, pair, sig_at(e), next, &c->pairs[e][r], d);
    if (rc == 0) {
        /* One that passes batches on hands them to pipelines that may change them. */
        c->pairs[e][r]->mutates =
            (c->f->caps & OM_CAP_MUTATES_DATA) != 0 || (e == r && any_mutates);
    }
    return rc;
}

/* The connector instances pipeline p exports to. */
static int create_connectors_of(om_graph_t *g, pipeline_t *p, om_diags_t *d)
{
    int e = om_signal_index(p->sig);
    for (size_t i = 0; i < p->ne; i++) {
        comp_t *c = p->exporters[i];
        for (int r = 0; c->kind == OM_CONNECTOR && r < OM_SIG_COUNT; r++) {
            if (conn_pair(c, e, r) && c->pairs[e][r] == NULL) {
                int rc = create_connector(g, c, e, r, d);
                if (rc != 0) {
                    return rc;
                }
            }
        }
    }
    return 0;
}

/* What p's exporters list stands for: each exporter, and each instance of each connector. */
static size_t exporter_consumers(pipeline_t *p, om_consumer_t *list, bool *mutates)
{
    int e = om_signal_index(p->sig);
    size_t n = 0;
    for (size_t i = 0; i < p->ne; i++) {
        comp_t *c = p->exporters[i];
        if (c->kind != OM_CONNECTOR) {
            list[n] = (om_consumer_t){.self = c->inst->self, .consume = consume_fn(c->f, p->sig)};
            mutates[n++] = (c->f->caps & OM_CAP_MUTATES_DATA) != 0;
            continue;
        }
        for (int r = 0; r < OM_SIG_COUNT; r++) {
            if (c->pairs[e][r] != NULL) {
                list[n] = (om_consumer_t){.self = c->pairs[e][r]->self,
                                          .consume = consume_fn(c->f, p->sig)};
                mutates[n++] = c->pairs[e][r]->mutates;
            }
        }
    }
    return n;
}

static int create_pipeline_procs(om_graph_t *g, pipeline_t *p, om_diags_t *d)
{
    size_t room = p->ne ? p->ne * OM_SIG_COUNT : 1;
    om_consumer_t *list = om_malloc(room * sizeof *list);
    bool *mutates = om_malloc(room * sizeof *mutates);
    if (list == NULL || mutates == NULL) {
        om_free(list);
        om_free(mutates);
        return OM_ENOMEM;
    }
    size_t n = exporter_consumers(p, list, mutates);
    for (size_t i = 0; i < n; i++) {
        p->mutates = p->mutates || mutates[i];
    }
    for (size_t k = 0; k < p->np; k++) {
        p->mutates = p->mutates || (p->processors[k]->f->caps & OM_CAP_MUTATES_DATA) != 0;
    }
    om_consumer_t next = {0};
    int rc = n > 0 ? make_fanout(g, list, mutates, n, &next) : 0;
    om_free(list);
    om_free(mutates);
    p->procs = om_calloc(p->np ? p->np : 1, sizeof *p->procs);
    if (rc != 0 || p->procs == NULL) {
        return OM_ENOMEM;
    }
    /* The leading processors that may run off the loop form one run (offloop.c): the last of
     * them is handed the stage's handoff instead of its successor, and the pipeline's entry is
     * the stage. */
    size_t lead = 0;
    while (lead < p->np && (p->processors[lead]->f->caps & OM_CAP_OFF_LOOP) != 0) {
        lead++;
    }
    om__stage_t *stage = NULL;
    if (lead > 0) {
        stage = om__stage_new();
        if (stage == NULL || GROW(g->runs, g->n_runs) != 0) {
            om__stage_free(stage);
            return OM_ENOMEM;
        }
        g->runs[g->n_runs - 1] = stage;
    }
    /* From the last processor to the first, each created with its successor as next. */
    for (size_t k = p->np; k-- > 0;) {
        om_consumer_t nexts[OM_SIG_COUNT] = {{0}};
        if (stage != NULL && k + 1 == lead) {
            om__stage_set_rest(stage, next);
            next = om__stage_handoff(stage);
        }
        nexts[om_signal_index(p->sig)] = next;
        rc = create_instance(g, p->processors[k], p->id, p->sig, nexts, &p->procs[k], d);
        if (rc != 0) {
            return rc;
        }
        next = (om_consumer_t){.self = p->procs[k]->self,
                               .consume = consume_fn(p->processors[k]->f, p->sig)};
    }
    p->entry = next;
    if (stage != NULL) {
        om__stage_set_head(stage, next);
        p->entry = om__stage_entry(stage);
    }
    return 0;
}

static int create_receiver(om_graph_t *g, comp_t *c, om_diags_t *d)
{
    om_consumer_t next[OM_SIG_COUNT] = {{0}};
    /* A receiver feeds at most every pipeline once. */
    size_t room = g->n_pipes ? g->n_pipes : 1;
    om_consumer_t *list = om_malloc(room * sizeof *list);
    bool *mutates = om_malloc(room * sizeof *mutates);
    if (list == NULL || mutates == NULL) {
        om_free(list);
        om_free(mutates);
        return OM_ENOMEM;
    }
    for (int s = 0; s < OM_SIG_COUNT; s++) {
        size_t n = 0;
        for (size_t i = 0; i < g->n_pipes; i++) {
            pipeline_t *p = &g->pipes[i];
            for (size_t j = 0; j < p->nr && om_signal_index(p->sig) == s; j++) {
                if (p->receivers[j] == c) {
                    mutates[n] = p->mutates;
                    list[n++] = p->entry;
                }
            }
        }
        if (n > 0 && make_fanout(g, list, mutates, n, &next[s]) != 0) {
            om_free(list);
            om_free(mutates);
            return OM_ENOMEM;
        }
    }
    om_free(list);
    om_free(mutates);
    return create_instance(g, c, NULL, c->used_signals, next, &c->inst, d);
}

/* Authenticators first, so that they also start before the extensions that use them (a
 * health_check with auth); each is registered with the host, where components find them. */
static int create_extensions(om_graph_t *g, om_diags_t *d)
{
    g->registered = g->host != NULL;
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < g->n_comps; i++) {
            comp_t *c = &g->comps[i];
            if (c->kind != OM_EXTENSION || !c->enabled || (c->f->auth != NULL) != (pass == 0)) {
                continue;
            }
            int rc = create_instance(g, c, NULL, 0, NULL, &c->inst, d);
            om_extension_ref_t ref = {.id = c->id, .factory = c->f, .cfg = c->cfg};
            if (rc == 0 && g->host != NULL) {
                ref.self = c->inst->self;
                rc = om__host_add_extension(g->host, &ref);
            }
            if (rc != 0) {
                return rc;
            }
        }
    }
    return 0;
}

/* The shutdown stage of each processor and connector instance: a pipeline's processors
 * follow the connectors that feed it, the connectors it feeds follow its last processor.
 * Pipelines are visited upstream first, so every connector's feeders are placed before it. */
static void compute_stages(om_graph_t *g)
{
    int max = 0;
    for (size_t k = g->n_pipes; k-- > 0;) {
        pipeline_t *p = &g->pipes[g->order[k]];
        int r = om_signal_index(p->sig), base = 1;
        for (size_t i = 0; i < p->nr; i++) {
            for (int e = 0; p->receivers[i]->kind == OM_CONNECTOR && e < OM_SIG_COUNT; e++) {
                instance_t *in = p->receivers[i]->pairs[e][r];
                base = in != NULL && in->stage + 1 > base ? in->stage + 1 : base;
            }
        }
        for (size_t j = 0; j < p->np; j++) {
            p->procs[j]->stage = base + (int)j;
            max = p->procs[j]->stage > max ? p->procs[j]->stage : max;
        }
        int end = base + (int)p->np;
        for (size_t i = 0; i < p->ne; i++) {
            for (int t = 0; p->exporters[i]->kind == OM_CONNECTOR && t < OM_SIG_COUNT; t++) {
                instance_t *in = p->exporters[i]->pairs[r][t];
                if (in != NULL && in->stage < end) {
                    in->stage = end;
                    max = end > max ? end : max;
                }
            }
        }
    }
    g->n_stages = max + 3; /* then exporters, then extensions */
}

static int create_all(om_graph_t *g, om_diags_t *d)
{
    /* Creation order is start order: extensions, exporters, then the pipelines downstream
     * first (each after the connectors it exports to), receivers last. */
    int rc = create_extensions(g, d);
    rc = rc ? rc : create_exporters(g, d);
    for (size_t i = 0; rc == 0 && i < g->n_pipes; i++) {
        pipeline_t *p = &g->pipes[g->order[i]];
        rc = create_connectors_of(g, p, d);
        rc = rc ? rc : create_pipeline_procs(g, p, d);
    }
    for (size_t i = 0; rc == 0 && i < g->n_comps; i++) {
        if (g->comps[i].kind == OM_RECEIVER && g->comps[i].used_signals != 0) {
            rc = create_receiver(g, &g->comps[i], d);
        }
    }
    if (rc == 0) {
        compute_stages(g);
    }
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* Introspection                                                                            */

/* Fill g->info and g->ext_ids: one allocation of ids for all of them. */
static bool describe(om_graph_t *g)
{
    size_t n_ids = 0;
    for (size_t i = 0; i < g->n_pipes; i++) {
        n_ids += g->pipes[i].nr + g->pipes[i].np + g->pipes[i].ne;
    }
    for (size_t i = 0; i < g->n_comps; i++) {
        n_ids += g->comps[i].kind == OM_EXTENSION && g->comps[i].enabled;
    }
    g->info = om_calloc(g->n_pipes ? g->n_pipes : 1, sizeof *g->info);
    g->info_ids = om_calloc(n_ids ? n_ids : 1, sizeof *g->info_ids);
    if (g->info == NULL || g->info_ids == NULL) {
        om_free(g->info);
        om_free(g->info_ids);
        g->info = NULL;
        g->info_ids = NULL;
        return false;
    }
    const char **next = g->info_ids;
    for (size_t i = 0; i < g->n_pipes; i++) {
        const pipeline_t *p = &g->pipes[i];
        om_pipeline_info_t *info = &g->info[i];
        *info = (om_pipeline_info_t){.id = p->id, .signal = p->sig};
        const struct {
            comp_t **c;
            size_t n;
            const char *const **ids;
            size_t *count;
        } lists[] = {{p->receivers, p->nr, &info->receivers, &info->n_receivers},
                     {p->processors, p->np, &info->processors, &info->n_processors},
                     {p->exporters, p->ne, &info->exporters, &info->n_exporters}};
        for (size_t l = 0; l < 3; l++) {
            *lists[l].ids = next;
            *lists[l].count = lists[l].n;
            for (size_t k = 0; k < lists[l].n; k++) {
                *next++ = lists[l].c[k]->id;
            }
        }
    }
    g->ext_ids = next;
    for (size_t i = 0; i < g->n_comps; i++) {
        if (g->comps[i].kind == OM_EXTENSION && g->comps[i].enabled) {
            *next++ = g->comps[i].id;
            g->n_ext++;
        }
    }
    return true;
}

size_t om_host_pipelines(const om_host_t *h, const om_pipeline_info_t **out)
{
    om_graph_t *g = h != NULL ? (om_graph_t *)h->graph : NULL;
    *out = NULL;
    if (g == NULL || (g->info == NULL && !describe(g))) {
        return 0;
    }
    *out = g->info;
    return g->n_pipes;
}

size_t om_host_extensions(const om_host_t *h, const char *const **out)
{
    const om_pipeline_info_t *unused;
    *out = NULL;
    if (om_host_pipelines(h, &unused) == 0 && (h == NULL || h->graph == NULL)) {
        return 0;
    }
    const om_graph_t *g = (const om_graph_t *)h->graph;
    if (g->info == NULL) {
        return 0;
    }
    *out = g->ext_ids;
    return g->n_ext;
}

/* ---------------------------------------------------------------------------------------- */
/* Build, start, shutdown, free                                                             */

int om_graph_build(const om_config_t *cfg, om_host_t *host, bool validate_only, om_graph_t **out,
                   om_diags_t *d)
{
    *out = NULL;
    om_graph_t *g = om_calloc(1, sizeof *g);
    if (g == NULL) {
        om_diag_add(d, NULL, NULL, "out of memory");
        return OM_ENOMEM;
    }
    g->cfg = cfg;
    g->host = host;
    if (host != NULL) {
        host->graph = g;
    }
    size_t before = d->n;
    static const char *const top[] = {"receivers",  "processors", "exporters", "extensions",
                                      "connectors", "service",    NULL};
    check_keys(cfg->root, top, "", d);
    int rc = 0;
    for (size_t k = 0; rc == 0 && k < sizeof kinds / sizeof kinds[0]; k++) {
        rc = load_section(g, cfg->root, kinds[k], d);
    }
    rc = rc ? rc : load_service(g, cfg->root, d);
    rc = rc ? rc : check_connectors(g, d);
    if (rc == 0) {
        check_auth_refs(g, d);
    }
    if (rc == 0 && d->n == before && !validate_only) {
        rc = create_all(g, d);
    }
    if (rc != 0 || d->n != before) {
        if (rc == OM_ENOMEM) {
            om_diag_add(d, NULL, NULL, "out of memory");
        }
        om_graph_free(g);
        return rc == OM_ENOMEM ? OM_ENOMEM : OM_ECONFIG;
    }
    *out = g;
    return 0;
}

const om_log_cfg_t *om_graph_log_cfg(const om_graph_t *g)
{
    return &g->telemetry.logs;
}

const om_consumer_t *om__graph_entry(const om_graph_t *g, const char *id)
{
    for (size_t i = 0; i < g->n_pipes; i++) {
        if (strcmp(g->pipes[i].id, id) == 0) {
            return g->pipes[i].entry.consume != NULL ? &g->pipes[i].entry : NULL;
        }
    }
    return NULL;
}

const om_telemetry_cfg_t *om_graph_telemetry_cfg(const om_graph_t *g)
{
    return &g->telemetry.metrics;
}

static void notify_extensions(om_graph_t *g, bool ready)
{
    for (size_t i = 0; i < g->n_inst; i++) {
        const om_factory_t *f = g->inst[i]->comp->f;
        void (*fn)(void *) = ready ? f->pipelines_ready : f->pipelines_not_ready;
        if (g->inst[i]->created && fn != NULL) {
            fn(g->inst[i]->self);
        }
    }
}

int om_graph_start(om_graph_t *g, om_err_t *err)
{
    /* Instances were created extensions and exporters first, receivers last: start in that
     * order. */
    for (size_t i = 0; i < g->n_inst; i++) {
        instance_t *in = g->inst[i];
        om_err_t e = {0};
        if (in->comp->f->start != NULL && in->comp->f->start(in->self, &e) != 0) {
            om_err_set(err, e.code ? e.code : OM_EIO, "%s: cannot start: %s", in->log_name, e.msg);
            return err ? err->code : OM_EIO;
        }
        OM_CLOG(in->log_name, OM_LOG_DEBUG, "started");
    }
    notify_extensions(g, true);
    return 0;
}

/* The stage of an instance: receivers 0, processors and connectors as compute_stages placed
 * them (a processor at position k of a pipeline no connector feeds is k+1), then exporters,
 * then extensions (a health check stays up until the data has drained). */
static int instance_stage(const om_graph_t *g, const instance_t *in)
{
    switch (in->comp->kind) {
    case OM_RECEIVER:
        return 0;
    case OM_EXTENSION:
        return g->n_stages - 1;
    case OM_EXPORTER:
        return g->n_stages - 2;
    default:
        return in->stage;
    }
}

static void run_stage(om_graph_t *g);

static void stage_done(void *arg)
{
    om_graph_t *g = arg;
    if (--g->pending > 0) {
        return;
    }
    g->stage++;
    run_stage(g);
}

static void run_stage(om_graph_t *g)
{
    if (g->stage >= g->n_stages) {
        g->done(g->done_arg);
        return;
    }
    /* Count first so that a component finishing at once cannot end the stage early. */
    g->pending = 1;
    for (size_t i = 0; i < g->n_inst; i++) {
        if (g->inst[i]->created && instance_stage(g, g->inst[i]) == g->stage) {
            g->pending++;
        }
    }
    for (size_t i = 0; i < g->n_inst; i++) {
        instance_t *in = g->inst[i];
        if (in->created && instance_stage(g, in) == g->stage) {
            in->comp->f->shutdown(in->self, stage_done, g);
        }
    }
    stage_done(g);
}

void om_graph_shutdown(om_graph_t *g, om_done_fn done, void *arg)
{
    if (g->shutting_down) {
        return;
    }
    g->shutting_down = true;
    g->done = done;
    g->done_arg = arg;
    notify_extensions(g, false);
    if (g->n_stages < 3) {
        g->n_stages = 3; /* nothing was created (compute_stages did not run) */
    }
    g->stage = 0;
    run_stage(g);
}

static void free_instances(om_graph_t *g)
{
    /* Destroy downstream last: receivers first, exporters at the end. */
    for (size_t i = g->n_inst; i-- > 0;) {
        instance_t *in = g->inst[i];
        if (in->created && in->comp->f->destroy != NULL) {
            in->comp->f->destroy(in->self);
        }
        om_free(in->log_name);
        om_free(in);
    }
    om_free(g->inst);
}

void om_graph_free(om_graph_t *g)
{
    if (g == NULL) {
        return;
    }
    if (g->registered) {
        om__host_clear_extensions(g->host);
    }
    free_instances(g);
    if (g->host != NULL && g->host->graph == g) {
        g->host->graph = NULL;
    }
    om_free(g->info);
    om_free(g->info_ids);
    for (size_t i = 0; i < g->n_fanouts; i++) {
        om__fanout_free(g->fanouts[i]);
    }
    om_free(g->fanouts);
    for (size_t i = 0; i < g->n_runs; i++) {
        om__stage_free(g->runs[i]);
    }
    om_free(g->runs);
    for (size_t i = 0; i < g->n_pipes; i++) {
        pipeline_t *p = &g->pipes[i];
        om_free(p->id);
        om_free(p->receivers);
        om_free(p->processors);
        om_free(p->exporters);
        om_free(p->rnodes);
        om_free(p->pnodes);
        om_free(p->enodes);
        om_free(p->procs);
    }
    om_free(g->pipes);
    om_free(g->order);
    for (size_t i = 0; i < g->n_comps; i++) {
        comp_t *c = &g->comps[i];
        if (c->cfg != NULL) {
            if (c->f->config_free != NULL) {
                c->f->config_free(c->cfg);
            }
            om_fields_free(c->f->fields, c->cfg);
        }
        om_free(c->cfg);
        om_free(c->id);
    }
    om_free(g->comps);
    om_fields_free(telemetry_fields, &g->telemetry);
    om__telemetry_cfg_free(&g->telemetry.metrics);
    om_free(g);
}
