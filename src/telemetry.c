/* telemetry.c: the collector's own metrics, served as otelcol serves them.
 *
 * service::telemetry::metrics takes otelcol's keys: `level` (none, basic, normal, detailed;
 * normal by default), the older `address` ("host:port") and the `readers` form otelcol writes
 * now, of which one pull reader with a Prometheus exporter (`host`, `port`, `without_units`
 * and the other keys of its config) is served; a periodic reader (pushing these metrics over
 * OTLP) or `views` are refused with a message rather than ignored. Without any of these the
 * endpoint is localhost:8888, otelcol's default.
 *
 * GET /metrics answers with every series of the host's registry (components register theirs:
 * the exporter helper, receivers through om_obsrecv, the batch processor, the intake) whose
 * level the configured level serves, in Prometheus text format 0.0.4, named as otelcol's
 * Prometheus reader names them (the unit's word and _total added by the shared translation,
 * om_prom_metric_name: otelcol_process_uptime in seconds becomes
 * otelcol_process_uptime_seconds_total), each with the labels of service::telemetry::resource
 * (service_name, service_instance_id, service_version unless the config removes them with a
 * null value), as otelcol's reader adds its resource to every series. The process metrics
 * otelcol has that are not Go's own (uptime, CPU seconds, resident memory) are observed from
 * the kernel at each scrape, so they cost nothing between scrapes.
 *
 * A scrape reads relaxed atomics and renders on the loop thread: it never takes a lock the
 * pipeline holds. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <unistd.h>

#include "telemetry.h"

#define DEFAULT_HOST "localhost"
#define DEFAULT_PORT 8888

static const char *const level_names[] = {"none", "basic", "normal", "detailed", NULL};

/* ---------------------------------------------------------------------------------------- */
/* Config                                                                                   */

/* The pull reader's Prometheus exporter (otelcol's config.PrometheusExporter keys). */
typedef struct prom_reader_cfg {
    char *host;
    int64_t port;
    bool without_units, without_type_suffix, without_scope_info;
} prom_reader_cfg_t;

static const om_field_t prom_reader_fields[] = {
    {.key = "host",
     .type = OM_F_STRING,
     .offset = offsetof(prom_reader_cfg_t, host),
     .def = DEFAULT_HOST},
    {.key = "port",
     .type = OM_F_INT,
     .offset = offsetof(prom_reader_cfg_t, port),
     .min = 0,
     .max = 65535,
     .flags = OM_FF_REQUIRED},
    {.key = "without_units",
     .type = OM_F_BOOL,
     .offset = offsetof(prom_reader_cfg_t, without_units),
     .help = "names without the unit's word"},
    {.key = "without_type_suffix",
     .type = OM_F_BOOL,
     .offset = offsetof(prom_reader_cfg_t, without_type_suffix),
     .help = "accepted: counters keep _total (text format 0.0.4 has it)"},
    {.key = "without_scope_info",
     .type = OM_F_BOOL,
     .offset = offsetof(prom_reader_cfg_t, without_scope_info),
     .help = "accepted: otelmon writes no scope labels"},
    {.key = "with_resource_constant_labels", .type = OM_F_IGNORED},
    {.key = "translation_strategy", .type = OM_F_IGNORED},
    {.key = NULL},
};

/* Keys of map not in allowed, as check_keys in pipeline.c words them. */
static void check_keys(const om_node_t *map, const char *const *allowed, const char *path,
                       om_diags_t *d)
{
    for (size_t i = 0; map != NULL && map->kind == OM_NODE_MAP && i < map->n; i++) {
        bool ok = false;
        for (const char *const *a = allowed; *a != NULL && !ok; a++) {
            ok = strcmp(*a, map->keys[i]->str) == 0;
        }
        if (!ok) {
            om_diag_add(d, map->keys[i], NULL, "'%s' has invalid keys: %s", path,
                        map->keys[i]->str);
        }
    }
}

/* The key node of key in map (for messages about the key itself), or map. */
static const om_node_t *key_of(const om_node_t *map, const char *key)
{
    for (size_t i = 0; map != NULL && map->kind == OM_NODE_MAP && i < map->n; i++) {
        if (strcmp(map->keys[i]->str, key) == 0) {
            return map->keys[i];
        }
    }
    return map;
}

/* One item of `readers`: a pull reader with a Prometheus exporter sets host and port. */
static void apply_reader(om_telemetry_cfg_t *cfg, const om_node_t *item, const char *path,
                         bool *have_pull, om_diags_t *d)
{
    static const char *const reader_keys[] = {"pull", "periodic", NULL};
    if (item->kind != OM_NODE_MAP) {
        om_diag_add(d, item, NULL, "'%s' must be a map with pull or periodic", path);
        return;
    }
    check_keys(item, reader_keys, path, d);
    const om_node_t *periodic = om_node_get(item, "periodic");
    if (periodic != NULL) {
        om_diag_add(d, key_of(item, "periodic"), NULL,
                    "'%s::periodic': periodic readers (pushing the collector's own metrics over "
                    "OTLP) are not supported; use a pull reader (prometheus)",
                    path);
    }
    const om_node_t *pull = om_node_get(item, "pull");
    if (pull == NULL) {
        return;
    }
    static const char *const pull_keys[] = {"exporter", NULL};
    static const char *const exporter_keys[] = {"prometheus", NULL};
    check_keys(pull, pull_keys, "service::telemetry::metrics::readers::pull", d);
    const om_node_t *exp = om_node_get(pull, "exporter");
    check_keys(exp, exporter_keys, "service::telemetry::metrics::readers::pull::exporter", d);
    const om_node_t *prom = om_node_get(exp, "prometheus");
    if (prom == NULL) {
        om_diag_add(d, pull, NULL, "'%s::pull': needs exporter::prometheus", path);
        return;
    }
    if (*have_pull) {
        om_diag_add(d, pull, NULL, "'%s::pull': otelmon serves one pull reader; this is a second",
                    path);
        return;
    }
    *have_pull = true;
    prom_reader_cfg_t r = {0};
    if (om_fields_apply(prom_reader_fields, &r, prom,
                        "service::telemetry::metrics::readers::pull::exporter::prometheus",
                        d) == 0) {
        om_free(cfg->host);
        cfg->host = om_strdup(r.host);
        cfg->port = (int)r.port;
        cfg->without_units = r.without_units;
    }
    om_fields_free(prom_reader_fields, &r);
}

static void apply_level(om_telemetry_cfg_t *cfg, const om_node_t *n, om_diags_t *d)
{
    for (int i = 0; n != NULL && n->kind == OM_NODE_SCALAR && level_names[i] != NULL; i++) {
        if (strcasecmp(n->str, level_names[i]) == 0) {
            cfg->level = i == 0 ? OM_METRIC_LEVEL_NONE : (om_metric_level_t)(i - 1);
            return;
        }
    }
    om_diag_add(d, n, NULL,
                "'service::telemetry::metrics::level': unknown level; use none, basic, normal "
                "or detailed");
}

static void apply_metrics(om_telemetry_cfg_t *cfg, const om_node_t *m, om_diags_t *d)
{
    static const char *const keys[] = {"level", "address", "readers", "views", NULL};
    if (m == NULL || m->kind == OM_NODE_NULL) {
        return;
    }
    if (m->kind != OM_NODE_MAP) {
        om_diag_add(d, m, NULL, "'service::telemetry::metrics' must be a map");
        return;
    }
    check_keys(m, keys, "service::telemetry::metrics", d);
    if (om_node_get(m, "level") != NULL) {
        apply_level(cfg, om_node_get(m, "level"), d);
    }
    const om_node_t *views = om_node_get(m, "views");
    if (views != NULL && views->kind != OM_NODE_NULL) {
        om_diag_add(d, views, NULL,
                    "'service::telemetry::metrics::views': views are not supported by otelmon");
    }
    const om_node_t *addr = om_node_get(m, "address");
    const om_node_t *readers = om_node_get(m, "readers");
    if (addr != NULL && readers != NULL) {
        om_diag_add(d, key_of(m, "address"), NULL,
                    "'service::telemetry::metrics': address and readers cannot both be set; "
                    "address is the older form of one pull reader");
        return;
    }
    if (addr != NULL) {
        om_err_t err = {0};
        char *host = NULL;
        int port = 0;
        if (addr->kind != OM_NODE_SCALAR || om_parse_endpoint(addr->str, &host, &port, &err) != 0) {
            om_diag_add(d, addr, NULL, "'service::telemetry::metrics::address': %s",
                        err.msg[0] != '\0' ? err.msg : "must be host:port");
            return;
        }
        om_free(cfg->host);
        cfg->host = host;
        cfg->port = port;
    }
    if (readers != NULL && readers->kind != OM_NODE_SEQ) {
        om_diag_add(d, readers, NULL, "'service::telemetry::metrics::readers' must be a list");
        return;
    }
    bool have_pull = false;
    for (size_t i = 0; readers != NULL && i < readers->n; i++) {
        char path[80];
        snprintf(path, sizeof path, "service::telemetry::metrics::readers::%zu", i);
        apply_reader(cfg, readers->values[i], path, &have_pull, d);
    }
}

static void set_label(om_telemetry_cfg_t *cfg, const char *name, const char *value)
{
    for (size_t i = 0; i < cfg->n_resource; i++) {
        if (strcmp(cfg->resource[i].name, name) == 0) {
            om_free(cfg->resource[i].value);
            cfg->resource[i].value = om_strdup(value);
            return;
        }
    }
    om_telemetry_label_t *v =
        om_realloc(cfg->resource, (cfg->n_resource + 1) * sizeof *cfg->resource);
    if (v == NULL) {
        return;
    }
    cfg->resource = v;
    v[cfg->n_resource++] = (om_telemetry_label_t){om_strdup(name), om_strdup(value)};
}

static void remove_label(om_telemetry_cfg_t *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->n_resource; i++) {
        if (strcmp(cfg->resource[i].name, name) == 0) {
            om_free(cfg->resource[i].name);
            om_free(cfg->resource[i].value);
            cfg->resource[i] = cfg->resource[--cfg->n_resource];
            return;
        }
    }
}

/* A random version 4 UUID, as otelcol makes service.instance.id at each start. */
static void new_instance_id(char out[37])
{
    uint8_t b[16] = {0};
    if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b) {
        uint64_t t = uv_hrtime() ^ (uint64_t)getpid();
        memcpy(b, &t, sizeof t);
    }
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
}

/* service::telemetry::resource: attributes over the defaults; null removes one. */
static void apply_resource(om_telemetry_cfg_t *cfg, const om_node_t *r, om_diags_t *d)
{
    char id[37];
    new_instance_id(id);
    set_label(cfg, "service_name", "otelmon");
    set_label(cfg, "service_version", OM_VERSION);
    set_label(cfg, "service_instance_id", id);
    if (r == NULL || r->kind == OM_NODE_NULL) {
        return;
    }
    if (r->kind != OM_NODE_MAP) {
        om_diag_add(d, r, NULL, "'service::telemetry::resource' must be a map");
        return;
    }
    for (size_t i = 0; i < r->n; i++) {
        char name[256];
        const char *key = r->keys[i]->str;
        if (om_prom_label_name(key, strlen(key), name, sizeof name) == 0) {
            om_diag_add(d, r->keys[i], NULL,
                        "'service::telemetry::resource': %s cannot be a label name", key);
            continue;
        }
        const om_node_t *v = r->values[i];
        if (v->kind == OM_NODE_NULL) {
            remove_label(cfg, name);
        } else if (v->kind == OM_NODE_SCALAR) {
            set_label(cfg, name, v->str);
        } else {
            om_diag_add(d, v, NULL, "'service::telemetry::resource::%s' must be a string", key);
        }
    }
}

int om__telemetry_cfg_apply(om_telemetry_cfg_t *cfg, const om_node_t *telemetry, om_diags_t *d)
{
    size_t before = d->n;
    *cfg = (om_telemetry_cfg_t){
        .level = OM_METRIC_LEVEL_NORMAL, .host = om_strdup(DEFAULT_HOST), .port = DEFAULT_PORT};
    apply_metrics(cfg, om_node_get(telemetry, "metrics"), d);
    apply_resource(cfg, om_node_get(telemetry, "resource"), d);
    return (int)(d->n - before);
}

void om__telemetry_cfg_free(om_telemetry_cfg_t *cfg)
{
    for (size_t i = 0; i < cfg->n_resource; i++) {
        om_free(cfg->resource[i].name);
        om_free(cfg->resource[i].value);
    }
    om_free(cfg->resource);
    om_free(cfg->host);
    *cfg = (om_telemetry_cfg_t){0};
}

/* ---------------------------------------------------------------------------------------- */
/* Rendering                                                                                */

typedef struct render {
    const om_telemetry_cfg_t *cfg;
    om_strbuf_t *out;
    const om_metric_def_t *family; /* the family whose header was written last */
    om_strbuf_t name;              /* its Prometheus name */
    om_strbuf_t labels;
} render_t;

static void family_header(render_t *r, const om_metric_def_t *def)
{
    om_prom_class_t c = {.type = def->type == OM_METRIC_COUNTER     ? OM_PROM_COUNTER
                                 : def->type == OM_METRIC_HISTOGRAM ? OM_PROM_HISTOGRAM
                                                                    : OM_PROM_GAUGE,
                         .monotonic = def->type == OM_METRIC_COUNTER};
    om_strbuf_reset(&r->name);
    const char *unit = r->cfg->without_units ? "" : def->unit;
    if (om_prom_metric_name(NULL, true, def->name, unit, &c, &r->name) != 0) {
        om_strbuf_reset(&r->name);
        om_strbuf_puts(&r->name, def->name);
    }
    om_prom_write_family(r->out, OM_PROM_FMT_TEXT, r->name.data, c.type, def->help);
    r->family = def;
}

static void sample_line(render_t *r, const char *suffix, const char *le, double v)
{
    om_prom_sample_t s = {.name = r->name.data,
                          .name_len = r->name.len,
                          .suffix = suffix,
                          .labels = r->labels.data,
                          .labels_len = r->labels.len,
                          .extra_key = le != NULL ? "le" : NULL,
                          .extra_value = le,
                          .value = v};
    om_prom_write_sample(r->out, OM_PROM_FMT_TEXT, &s);
}

static int render_series(void *arg, const om_metric_def_t *def, const om_metric_sample_t *s)
{
    render_t *r = arg;
    if (r->cfg->level == OM_METRIC_LEVEL_NONE || def->level > r->cfg->level) {
        return 0;
    }
    if (def != r->family) {
        family_header(r, def);
    }
    om_label_t all[OM_METRIC_MAX_LABELS + 16];
    size_t n = 0;
    for (size_t i = 0; i < s->n_labels; i++) {
        all[n++] = s->labels[i];
    }
    for (size_t i = 0; i < r->cfg->n_resource && n < sizeof all / sizeof all[0]; i++) {
        all[n++] = (om_label_t){r->cfg->resource[i].name, r->cfg->resource[i].value};
    }
    om_strbuf_reset(&r->labels);
    om_prom_render_labels(all, n, &r->labels);
    switch (def->type) {
    case OM_METRIC_COUNTER:
        sample_line(r, NULL, NULL, def->real ? s->value.d : (double)s->value.u);
        break;
    case OM_METRIC_GAUGE:
        sample_line(r, NULL, NULL, def->real ? s->value.d : (double)s->value.i);
        break;
    case OM_METRIC_HISTOGRAM: {
        uint64_t running = 0;
        char le[OM_PROM_NUM_MAX];
        for (size_t i = 0; i < def->n_bounds; i++) {
            running += s->buckets[i];
            om_prom_format_g(def->bounds[i], le);
            sample_line(r, "_bucket", le, (double)running);
        }
        sample_line(r, "_bucket", "+Inf", (double)s->count);
        sample_line(r, "_sum", NULL, s->sum);
        sample_line(r, "_count", NULL, (double)s->count);
        break;
    }
    }
    return 0;
}

int om__telemetry_render(om_metrics_t *m, const om_telemetry_cfg_t *cfg, om_strbuf_t *out)
{
    render_t r = {.cfg = cfg, .out = out};
    om_strbuf_init(&r.name, 0);
    om_strbuf_init(&r.labels, 0);
    om_metrics_visit(m, render_series, &r);
    om_prom_write_eof(out, OM_PROM_FMT_TEXT);
    bool failed = r.name.failed || r.labels.failed || out->failed;
    om_strbuf_free(&r.name);
    om_strbuf_free(&r.labels);
    return failed ? OM_ENOMEM : 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Process metrics                                                                          */

#define N_OBSERVED 6

struct om_telemetry {
    om_host_t *host;
    const om_telemetry_cfg_t *cfg;
    om_http_server_cfg_t http_cfg;
    om_http_server_t *http;
    uint64_t started_ns;                     /* uv_hrtime at start */
    om_metric_gauge_t *observed[N_OBSERVED]; /* the series observe_process made */
    om_done_fn done;
    void *done_arg;
};

static const om_metric_def_t uptime_def = {.name = "otelcol_process_uptime",
                                           .help = "Uptime of the process",
                                           .unit = "s",
                                           .type = OM_METRIC_COUNTER,
                                           .real = true};
static const om_metric_def_t cpu_def = {.name = "otelcol_process_cpu_seconds",
                                        .help = "Total CPU user and system time in seconds",
                                        .unit = "s",
                                        .type = OM_METRIC_COUNTER,
                                        .real = true};
static const om_metric_def_t rss_def = {.name = "otelcol_process_memory_rss",
                                        .help = "Total physical memory (resident set size)",
                                        .unit = "By",
                                        .type = OM_METRIC_GAUGE};

static om_metric_num_t observe_uptime(void *arg)
{
    const om_telemetry_t *t = arg;
    return (om_metric_num_t){.d = (double)(uv_hrtime() - t->started_ns) / 1e9};
}

static om_metric_num_t observe_cpu(void *arg)
{
    (void)arg;
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) {
        return (om_metric_num_t){.d = 0};
    }
    double s = (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
               ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
    return (om_metric_num_t){.d = s};
}

/* Resident pages from /proc/self/statm (its second field). */
static om_metric_num_t observe_rss(void *arg)
{
    (void)arg;
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long long size = 0, resident = 0;
    if (f != NULL) {
        if (fscanf(f, "%llu %llu", &size, &resident) != 2) {
            resident = 0;
        }
        fclose(f);
    }
    return (om_metric_num_t){.i = (int64_t)(resident * (unsigned long long)sysconf(_SC_PAGESIZE))};
}

/* OtelMon's own: what its intake holds and how often it paused receivers. */
static const om_metric_def_t arena_def = {
    .name = "otelmon_arena_bytes_held",
    .help = "Bytes held by the arenas of data accepted and not yet delivered (what intake limits)",
    .unit = "By",
    .type = OM_METRIC_GAUGE,
    .level = OM_METRIC_LEVEL_NORMAL};
static const om_metric_def_t pauses_def = {
    .name = "otelmon_intake_pauses",
    .help = "Times the receivers were held or refused data because backends were not keeping up",
    .unit = "{pauses}",
    .type = OM_METRIC_COUNTER,
    .level = OM_METRIC_LEVEL_NORMAL};
static const om_metric_def_t pending_def = {
    .name = "otelmon_exports_pending",
    .help = "Export requests queued or being sent by all exporters",
    .unit = "{requests}",
    .type = OM_METRIC_GAUGE,
    .level = OM_METRIC_LEVEL_NORMAL};

static om_metric_num_t observe_arena(void *arg)
{
    (void)arg;
    return (om_metric_num_t){.i = (int64_t)om_arena_live_bytes()};
}

static om_metric_num_t observe_pauses(void *arg)
{
    const om_telemetry_t *t = arg;
    return (om_metric_num_t){.u = om_intake_pauses(t->host->intake)};
}

static om_metric_num_t observe_pending(void *arg)
{
    const om_telemetry_t *t = arg;
    return (om_metric_num_t){.i = (int64_t)om_intake_exports_pending(t->host->intake)};
}

static int observe_process(om_telemetry_t *t, om_err_t *err)
{
    om_metrics_t *m = t->host->metrics;
    struct {
        const om_metric_def_t *def;
        om_metric_observe_fn fn;
    } obs[N_OBSERVED] = {{&uptime_def, observe_uptime}, {&cpu_def, observe_cpu},
                         {&rss_def, observe_rss},       {&arena_def, observe_arena},
                         {&pauses_def, observe_pauses}, {&pending_def, observe_pending}};
    for (size_t i = 0; i < N_OBSERVED; i++) {
        int rc = om_metrics_observe(m, obs[i].def, NULL, 0, obs[i].fn, t, &t->observed[i], err);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* The endpoint                                                                             */

static void scrape(om_http_req_t *req, void *arg)
{
    om_telemetry_t *t = arg;
    om_strbuf_t out;
    om_strbuf_init(&out, 0);
    if (om__telemetry_render(t->host->metrics, t->cfg, &out) != 0) {
        om_strbuf_free(&out);
        om_http_respond(req, 500, "text/plain; charset=utf-8", NULL, "out of memory\n", 14);
        return;
    }
    size_t len = out.len;
    char *body = om_strbuf_steal(&out, NULL);
    om_http_respond_take(req, 200, OM_PROM_TEXT_CONTENT_TYPE, NULL,
                         body != NULL ? body : om_strdup(""), len);
}

static const om_http_handler_t scrape_h = {.complete = scrape};

static void on_listen(void *arg, const char *name, int port)
{
    (void)port;
    om_telemetry_t *t = arg;
    OM_LOG(OM_LOG_INFO, "Serving the collector's own metrics on %s (level %s)", name,
           level_names[t->cfg->level + 1]);
}

static void free_after_close(void *arg)
{
    om__telemetry_free(arg);
}

int om__telemetry_start(om_host_t *host, const om_telemetry_cfg_t *cfg, om_telemetry_t **out,
                        om_err_t *err)
{
    *out = NULL;
    if (cfg->level == OM_METRIC_LEVEL_NONE) {
        return 0;
    }
    om_telemetry_t *t = om_calloc(1, sizeof *t);
    if (t == NULL) {
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    t->host = host;
    t->cfg = cfg;
    t->started_ns = uv_hrtime();
    om_http_server_cfg_defaults(&t->http_cfg);
    char endpoint[300];
    bool v6 = strchr(cfg->host, ':') != NULL;
    snprintf(endpoint, sizeof endpoint, "%s%s%s:%d", v6 ? "[" : "", cfg->host, v6 ? "]" : "",
             cfg->port);
    t->http_cfg.endpoint = om_strdup(endpoint);
    om_http_server_opts_t o = {.loop = host->loop,
                               .log_name = "telemetry",
                               .cfg = &t->http_cfg,
                               .default_endpoint = "localhost:8888",
                               .date_header = true,
                               .on_listen = on_listen,
                               .arg = t};
    int rc = t->http_cfg.endpoint != NULL ? 0 : OM_ENOMEM;
    rc = rc ? rc : observe_process(t, err);
    rc = rc ? rc : om_http_server_new(&o, &t->http, err);
    rc = rc ? rc : om_http_server_route(t->http, "/metrics", OM_HTTP_GET, &scrape_h, t, 0, err);
    bool made = rc == 0;
    rc = rc ? rc : om_http_server_start(t->http, err);
    if (rc == 0) {
        *out = t;
        return 0;
    }
    if (rc == OM_ENOMEM && err->msg[0] == '\0') {
        om_err_set(err, OM_ENOMEM, "out of memory");
    }
    om_err_t inner = *err;
    *err = (om_err_t){0};
    om_err_set(err, rc, "service::telemetry::metrics: %s", inner.msg);
    if (made) {
        /* A server that failed to start may hold handles: closed by the loop, then freed. */
        om_http_server_shutdown(t->http, free_after_close, t);
    } else {
        om__telemetry_free(t);
    }
    return rc;
}

static void server_closed(void *arg)
{
    om_telemetry_t *t = arg;
    t->done(t->done_arg);
}

void om__telemetry_shutdown(om_telemetry_t *t, om_done_fn done, void *arg)
{
    if (t == NULL) {
        done(arg);
        return;
    }
    t->done = done;
    t->done_arg = arg;
    om_http_server_shutdown(t->http, server_closed, t);
}

void om__telemetry_free(om_telemetry_t *t)
{
    if (t == NULL) {
        return;
    }
    for (size_t i = 0; i < N_OBSERVED; i++) {
        om_metrics_unobserve(t->host->metrics, t->observed[i]);
    }
    if (t->http != NULL) {
        om_http_server_free(t->http);
    }
    om_free(t->http_cfg.endpoint);
    om_free(t);
}
