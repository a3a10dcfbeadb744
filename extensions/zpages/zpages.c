/* zpages.c: the zpages extension, as otelcol's (`extensions: zpages: {endpoint: ...}`, by
 * default localhost:55679): small HTML pages about the running collector, read by a person in
 * a browser.
 *   /debug/servicez    the build, the start time and uptime, links to the other pages
 *   /debug/pipelinez   every pipeline with its receivers, processors and exporters, each with
 *                      its live counters from the host's metrics registry (items accepted and
 *                      refused by receivers, sent, failed and queued by exporters)
 *   /debug/extensionz  the extensions the service runs
 * otelcol's /debug/tracez and /debug/rpcz show the collector's own spans, which otelmon does
 * not make: those paths answer 404. The confighttp keys are the core's (OM_HTTP_SERVER_FIELDS,
 * with TLS). Pages are rendered on the loop thread from the registry's relaxed counters; every
 * id is HTML-escaped. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "om.h"
#include "zpages.h"

#define DEFAULT_ENDPOINT "localhost:55679"
#define CT_HTML "text/html; charset=utf-8"

typedef struct zp_cfg {
    om_http_server_cfg_t http;
} zp_cfg_t;

static const om_field_t zp_fields[] = {
    OM_HTTP_SERVER_FIELDS(zp_cfg_t, http, DEFAULT_ENDPOINT),
    {.key = "expvar", .type = OM_F_IGNORED},
    {.key = NULL},
};

typedef struct zp {
    const zp_cfg_t *cfg;
    const char *log_name;
    om_host_t *host;
    om_http_server_t *http;
    time_t started; /* wall clock at create */
    uint64_t started_ns;
} zp_t;

/* ------------------------------------------------------------------------------------------ */
/* HTML                                                                                       */

static void page_begin(om_strbuf_t *out, const char *title)
{
    om_strbuf_printf(out,
                     "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>%s</title>"
                     "<style>body{font-family:sans-serif}table{border-collapse:collapse}"
                     "td,th{border:1px solid #999;padding:2px 8px;text-align:left}</style>"
                     "</head><body>\n<h1>%s</h1>\n<p><a href=\"/debug/servicez\">servicez</a> "
                     "<a href=\"/debug/pipelinez\">pipelinez</a> "
                     "<a href=\"/debug/extensionz\">extensionz</a></p>\n",
                     title, title);
}

static void page_end(om_strbuf_t *out)
{
    om_strbuf_puts(out, "</body></html>\n");
}

/* ------------------------------------------------------------------------------------------ */
/* Counters                                                                                   */

typedef struct sum_arg {
    const char *name, *key, *value;
    uint64_t sum;
    bool found;
} sum_arg_t;

static int sum_series(void *arg, const om_metric_def_t *def, const om_metric_sample_t *s)
{
    sum_arg_t *a = arg;
    if (strcmp(def->name, a->name) != 0) {
        return 0;
    }
    for (size_t i = 0; i < s->n_labels; i++) {
        if (strcmp(s->labels[i].key, a->key) == 0 && strcmp(s->labels[i].value, a->value) == 0) {
            a->found = true;
            a->sum += def->type == OM_METRIC_COUNTER ? s->value.u : (uint64_t)s->value.i;
        }
    }
    return 0;
}

/* The sum of name's series whose label key is value (all transports of a receiver), or -1
 * when there is none. */
static long long metric_sum(om_metrics_t *m, const char *name, const char *key, const char *value)
{
    sum_arg_t a = {.name = name, .key = key, .value = value};
    om_metrics_visit(m, sum_series, &a);
    return a.found ? (long long)a.sum : -1;
}

static void cell_count(om_strbuf_t *out, const char *what, long long v)
{
    if (v >= 0) {
        om_strbuf_printf(out, "%s: <span class=\"n\">%lld</span>", what, v);
    }
}

/* "spans", "metric_points", "log_records": otelcol's metric name part per signal. */
static const char *item_part(om_signal_t sig)
{
    return sig == OM_SIG_TRACES ? "spans" : sig == OM_SIG_METRICS ? "metric_points" : "log_records";
}

static void component_row(zp_t *z, om_strbuf_t *out, const char *kind, const char *id,
                          om_signal_t sig)
{
    om_strbuf_printf(out, "<tr class=\"%s\"><td>%s</td><td class=\"id\">", kind, kind);
    om_strbuf_html(out, id, strlen(id));
    om_strbuf_puts(out, "</td><td class=\"counters\">");
    char name[96];
    const char *part = item_part(sig);
    if (strcmp(kind, "receiver") == 0) {
        snprintf(name, sizeof name, "otelcol_receiver_accepted_%s", part);
        cell_count(out, "accepted", metric_sum(z->host->metrics, name, "receiver", id));
        snprintf(name, sizeof name, "otelcol_receiver_refused_%s", part);
        om_strbuf_puts(out, " ");
        cell_count(out, "refused", metric_sum(z->host->metrics, name, "receiver", id));
    } else if (strcmp(kind, "exporter") == 0) {
        snprintf(name, sizeof name, "otelcol_exporter_sent_%s", part);
        cell_count(out, "sent", metric_sum(z->host->metrics, name, "exporter", id));
        snprintf(name, sizeof name, "otelcol_exporter_send_failed_%s", part);
        om_strbuf_puts(out, " ");
        cell_count(out, "failed", metric_sum(z->host->metrics, name, "exporter", id));
        om_strbuf_puts(out, " ");
        cell_count(out, "queued",
                   metric_sum(z->host->metrics, "otelcol_exporter_queue_size", "exporter", id));
    }
    om_strbuf_puts(out, "</td></tr>\n");
}

/* ------------------------------------------------------------------------------------------ */
/* Pages                                                                                      */

void ext_zpages_render_pipelinez(om_host_t *host, om_strbuf_t *out)
{
    zp_t z = {.host = host};
    const om_pipeline_info_t *p;
    size_t n = om_host_pipelines(host, &p);
    page_begin(out, "Pipelines");
    for (size_t i = 0; i < n; i++) {
        om_strbuf_puts(out, "<h2 class=\"pipeline\" id=\"");
        om_strbuf_html(out, p[i].id, strlen(p[i].id));
        om_strbuf_puts(out, "\">");
        om_strbuf_html(out, p[i].id, strlen(p[i].id));
        om_strbuf_printf(out, "</h2>\n<table data-pipeline=\"");
        om_strbuf_html(out, p[i].id, strlen(p[i].id));
        om_strbuf_puts(out, "\"><tr><th>kind</th><th>id</th><th>counters</th></tr>\n");
        for (size_t k = 0; k < p[i].n_receivers; k++) {
            component_row(&z, out, "receiver", p[i].receivers[k], p[i].signal);
        }
        for (size_t k = 0; k < p[i].n_processors; k++) {
            component_row(&z, out, "processor", p[i].processors[k], p[i].signal);
        }
        for (size_t k = 0; k < p[i].n_exporters; k++) {
            component_row(&z, out, "exporter", p[i].exporters[k], p[i].signal);
        }
        om_strbuf_puts(out, "</table>\n");
    }
    page_end(out);
}

static void render_extensionz(zp_t *z, om_strbuf_t *out)
{
    const char *const *ids;
    size_t n = om_host_extensions(z->host, &ids);
    page_begin(out, "Extensions");
    om_strbuf_puts(out, "<table><tr><th>id</th></tr>\n");
    for (size_t i = 0; i < n; i++) {
        om_strbuf_puts(out, "<tr class=\"extension\"><td class=\"id\">");
        om_strbuf_html(out, ids[i], strlen(ids[i]));
        om_strbuf_puts(out, "</td></tr>\n");
    }
    om_strbuf_puts(out, "</table>\n");
    page_end(out);
}

static void render_servicez(zp_t *z, om_strbuf_t *out)
{
    char since[64];
    struct tm tm;
    gmtime_r(&z->started, &tm);
    strftime(since, sizeof since, "%Y-%m-%dT%H:%M:%SZ", &tm);
    page_begin(out, "Service");
    om_strbuf_printf(out,
                     "<table>\n<tr><th>command</th><td>otelmon</td></tr>\n"
                     "<tr><th>version</th><td id=\"version\">%s</td></tr>\n"
                     "<tr><th>start time</th><td id=\"start\">%s</td></tr>\n"
                     "<tr><th>uptime</th><td id=\"uptime\">%.0f s</td></tr>\n</table>\n",
                     OM_VERSION, since, (double)(uv_hrtime() - z->started_ns) / 1e9);
    page_end(out);
}

static void answer(om_http_req_t *req, om_strbuf_t *out)
{
    if (out->failed) {
        om_strbuf_free(out);
        om_http_respond(req, 500, "text/plain; charset=utf-8", NULL, "out of memory\n", 14);
        return;
    }
    size_t len = out->len;
    char *body = om_strbuf_steal(out, NULL);
    om_http_respond_take(req, 200, CT_HTML, NULL, body != NULL ? body : om_strdup(""), len);
}

static void servicez(om_http_req_t *req, void *arg)
{
    om_strbuf_t out;
    om_strbuf_init(&out, 0);
    render_servicez(arg, &out);
    answer(req, &out);
}

static void pipelinez(om_http_req_t *req, void *arg)
{
    zp_t *z = arg;
    om_strbuf_t out;
    om_strbuf_init(&out, 0);
    ext_zpages_render_pipelinez(z->host, &out);
    answer(req, &out);
}

static void extensionz(om_http_req_t *req, void *arg)
{
    om_strbuf_t out;
    om_strbuf_init(&out, 0);
    render_extensionz(arg, &out);
    answer(req, &out);
}

static const om_http_handler_t servicez_h = {.complete = servicez};
static const om_http_handler_t pipelinez_h = {.complete = pipelinez};
static const om_http_handler_t extensionz_h = {.complete = extensionz};

/* ------------------------------------------------------------------------------------------ */
/* Lifecycle                                                                                  */

static void on_listen(void *arg, const char *name, int port)
{
    (void)port;
    zp_t *z = arg;
    OM_CLOG(z->log_name, OM_LOG_INFO, "zpages listening on %s", name);
}

static int zp_create(const om_create_args_t *a, void **self, om_err_t *err)
{
    zp_t *z = om_calloc(1, sizeof *z);
    if (z == NULL) {
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    z->cfg = a->cfg;
    z->log_name = a->log_name;
    z->host = a->host;
    z->started = time(NULL);
    z->started_ns = uv_hrtime();
    om_http_server_opts_t o = {.loop = a->host->loop,
                               .host = a->host, /* where `auth`'s authenticator is found */
                               .log_name = a->log_name,
                               .cfg = &z->cfg->http,
                               .default_endpoint = DEFAULT_ENDPOINT,
                               .date_header = true,
                               .on_listen = on_listen,
                               .arg = z};
    int rc = om_http_server_new(&o, &z->http, err);
    static const struct {
        const char *path;
        const om_http_handler_t *h;
    } routes[] = {{"/debug/servicez", &servicez_h},
                  {"/debug/pipelinez", &pipelinez_h},
                  {"/debug/extensionz", &extensionz_h}};
    for (size_t i = 0; rc == 0 && i < sizeof routes / sizeof routes[0]; i++) {
        rc = om_http_server_route(z->http, routes[i].path, OM_HTTP_GET, routes[i].h, z, 0, err);
    }
    if (rc != 0) {
        om_http_server_free(z->http);
        om_free(z);
        return rc;
    }
    *self = z;
    return 0;
}

static int zp_start(void *self, om_err_t *err)
{
    zp_t *z = self;
    return om_http_server_start(z->http, err);
}

static void zp_shutdown(void *self, om_done_fn done, void *arg)
{
    zp_t *z = self;
    om_http_server_shutdown(z->http, done, arg);
}

static void zp_destroy(void *self)
{
    zp_t *z = self;
    if (z == NULL) {
        return;
    }
    om_http_server_free(z->http);
    om_free(z);
}

static int zp_config_validate(const void *cfg, om_err_t *err)
{
    const zp_cfg_t *c = cfg;
    return om_http_server_cfg_validate(&c->http, "", err);
}

const om_factory_t ext_zpages_factory = {
    .abi = OM_FACTORY_ABI,
    .kind = OM_EXTENSION,
    .type = "zpages",
    .help = "HTML pages about the running collector: servicez, pipelinez, extensionz",
    .signals = 0,
    .config_size = sizeof(zp_cfg_t),
    .fields = zp_fields,
    .config_validate = zp_config_validate,
    .create = zp_create,
    .start = zp_start,
    .shutdown = zp_shutdown,
    .destroy = zp_destroy,
};
