/* pipeline.c: from the config tree to a graph of wired component instances.
 *
 * Building is two passes: first every component config and every pipeline is checked and all
 * problems are collected (validate-everything-before-start); only when there are none are the
 * instances created, exporters first, so that each upstream component is created with its
 * downstream consumers already known. */
#include <stdlib.h>
#include <string.h>

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
} comp_t;

/* One created component. */
typedef struct instance {
    const comp_t *comp;
    char *log_name; /* owned */
    void *self;
    bool created;
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
    instance_t **inst; /* owned; in creation order: exporters, processors, receivers */
    size_t n_inst;
    om__fanout_t **fanouts;
    size_t n_fanouts;
    /* Introspection (om_host_pipelines), made on first use. */
    om_pipeline_info_t *info;
    const char **info_ids; /* owned: every id array of info, then the extensions' */
    const char *const *ext_ids;
    size_t n_ext;
    /* shutdown */
    int stage; /* 0 receivers, 1..max_procs processors by position, then exporters */
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

static int resolve_list(om_graph_t *g, const om_node_t *pipe_node, const char *pipe_path,
                        om_kind_t kind, comp_t ***out, size_t *n, om_diags_t *d)
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
        comp_t *c = find_comp(g, kind, item->str);
        if (c == NULL) {
            if (!id_written(g->cfg->root, kind, item->str)) {
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
        if (GROW(*out, *n) != 0) {
            return OM_ENOMEM;
        }
        (*out)[*n - 1] = c;
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
    rc = resolve_list(g, value, path, OM_RECEIVER, &p->receivers, &p->nr, d);
    rc = rc ? rc : resolve_list(g, value, path, OM_PROCESSOR, &p->processors, &p->np, d);
    rc = rc ? rc : resolve_list(g, value, path, OM_EXPORTER, &p->exporters, &p->ne, d);
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

static int create_pipeline_procs(om_graph_t *g, pipeline_t *p, om_diags_t *d)
{
    size_t room = p->ne ? p->ne : 1;
    om_consumer_t *list = om_malloc(room * sizeof *list);
    bool *mutates = om_malloc(room * sizeof *mutates);
    if (list == NULL || mutates == NULL) {
        om_free(list);
        om_free(mutates);
        return OM_ENOMEM;
    }
    for (size_t i = 0; i < p->ne; i++) {
        comp_t *e = p->exporters[i];
        list[i] = (om_consumer_t){.self = e->inst->self, .consume = consume_fn(e->f, p->sig)};
        mutates[i] = (e->f->caps & OM_CAP_MUTATES_DATA) != 0;
        p->mutates = p->mutates || mutates[i];
    }
    for (size_t k = 0; k < p->np; k++) {
        p->mutates = p->mutates || (p->processors[k]->f->caps & OM_CAP_MUTATES_DATA) != 0;
    }
    om_consumer_t next = {0};
    int rc = p->ne > 0 ? make_fanout(g, list, mutates, p->ne, &next) : 0;
    om_free(list);
    om_free(mutates);
    p->procs = om_calloc(p->np ? p->np : 1, sizeof *p->procs);
    if (rc != 0 || p->procs == NULL) {
        return OM_ENOMEM;
    }
    /* From the last processor to the first, each created with its successor as next. */
    for (size_t k = p->np; k-- > 0;) {
        om_consumer_t nexts[OM_SIG_COUNT] = {{0}};
        nexts[om_signal_index(p->sig)] = next;
        rc = create_instance(g, p->processors[k], p->id, p->sig, nexts, &p->procs[k], d);
        if (rc != 0) {
            return rc;
        }
        next = (om_consumer_t){.self = p->procs[k]->self,
                               .consume = consume_fn(p->processors[k]->f, p->sig)};
    }
    p->entry = next;
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

static int create_extensions(om_graph_t *g, om_diags_t *d)
{
    for (size_t i = 0; i < g->n_comps; i++) {
        comp_t *c = &g->comps[i];
        if (c->kind == OM_EXTENSION && c->enabled) {
            int rc = create_instance(g, c, NULL, 0, NULL, &c->inst, d);
            if (rc != 0) {
                return rc;
            }
        }
    }
    return 0;
}

static int create_all(om_graph_t *g, om_diags_t *d)
{
    /* Creation order is start order: extensions, exporters, processors, receivers. */
    int rc = create_extensions(g, d);
    rc = rc ? rc : create_exporters(g, d);
    for (size_t i = 0; rc == 0 && i < g->n_pipes; i++) {
        rc = create_pipeline_procs(g, &g->pipes[i], d);
    }
    for (size_t i = 0; rc == 0 && i < g->n_comps; i++) {
        if (g->comps[i].kind == OM_RECEIVER && g->comps[i].used_signals != 0) {
            rc = create_receiver(g, &g->comps[i], d);
        }
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

/* The stage of an instance: receivers 0, a processor at position k is k+1, then exporters,
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
        break;
    }
    for (size_t i = 0; i < g->n_pipes; i++) {
        for (size_t k = 0; k < g->pipes[i].np; k++) {
            if (g->pipes[i].procs != NULL && g->pipes[i].procs[k] == in) {
                return (int)k + 1;
            }
        }
    }
    return 1;
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
    size_t max_procs = 0;
    for (size_t i = 0; i < g->n_pipes; i++) {
        max_procs = g->pipes[i].np > max_procs ? g->pipes[i].np : max_procs;
    }
    g->n_stages = (int)max_procs + 3;
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
    for (size_t i = 0; i < g->n_pipes; i++) {
        pipeline_t *p = &g->pipes[i];
        om_free(p->id);
        om_free(p->receivers);
        om_free(p->processors);
        om_free(p->exporters);
        om_free(p->procs);
    }
    om_free(g->pipes);
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
