/* promexp.c: the prometheus exporter (pull): otelcol-contrib's exporter/prometheusexporter,
 * serving the metrics it is given on the core's HTTP server for Prometheus to scrape.
 *
 * Threads and ownership. The loop owns everything: consume decodes each batch (the batch's
 * arena; nothing per point) and folds it into the served state (promexp_state.c), then
 * releases it; a scrape renders the state into one buffer on the loop and answers with it.
 * So a scrape sees every batch taken before it whole, and neither waits for the other beyond
 * one batch's or one rendering's time (both bounded by the live series: a 100,000-series
 * scrape renders in tens of milliseconds, see the README). Compressing a large scrape (gzip,
 * when the scraper asks for it) is the one slow step that needs no state: it runs on the
 * host's worker pool and the answer is sent when the job is done; the request state holds the
 * buffer meanwhile (a scraper that goes away cancels nothing: the job ends and the answer is
 * dropped).
 *
 * Config as upstream (config.go, factory.go): confighttp's server settings squashed at the
 * top (endpoint required: "expecting a non-blank address"), namespace, const_labels,
 * send_timestamps, metric_expiration (5m), resource_to_telemetry_conversion,
 * enable_open_metrics, add_metric_suffixes, translation_strategy (the UTF-8 strategies are
 * refused: Prometheus 2.42 does not take UTF-8 names). Every path of the endpoint serves the
 * metrics (upstream hands its handler to confighttp's server for every path). Expiry runs at
 * each scrape and on a timer, so memory follows the live series even without scrapes.
 * Shutdown closes the server (requests in progress answered), then the timer. */
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <zlib.h>

#include "promexp.h"

#define GZIP_ON_WORKER_MIN (64 * 1024) /* smaller scrapes are compressed on the loop */

static const char *const strategies[] = {"",
                                         "UnderscoreEscapingWithSuffixes",
                                         "UnderscoreEscapingWithoutSuffixes",
                                         "NoUTF8EscapingWithSuffixes",
                                         "NoTranslation",
                                         NULL};

static const om_field_t r2t_fields[] = {
    {.key = "enabled",
     .type = OM_F_BOOL,
     .offset = offsetof(promexp_enabled_t, enabled),
     .def = "false"},
    {.key = NULL},
};

#define OFF(m) offsetof(exp_promexp_cfg_t, m)
const om_field_t exp_promexp_fields[] = {
    OM_HTTP_SERVER_FIELDS(exp_promexp_cfg_t, http, NULL),
    {.key = "namespace",
     .type = OM_F_STRING,
     .offset = OFF(namespace_),
     .help = "prefix of every metric name"},
    {.key = "const_labels",
     .type = OM_F_STRMAP,
     .offset = OFF(const_labels),
     .help = "labels on every series (the data's own labels win)"},
    {.key = "send_timestamps",
     .type = OM_F_BOOL,
     .offset = OFF(send_timestamps),
     .def = "false",
     .help = "write each sample's time"},
    {.key = "metric_expiration",
     .type = OM_F_DURATION,
     .offset = OFF(metric_expiration),
     .def = "5m",
     .min = 0,
     .max = 9.2e18,
     .help = "a series not updated for this long is no longer served"},
    {.key = "resource_to_telemetry_conversion",
     .type = OM_F_SECTION,
     .offset = OFF(r2t),
     .fields = r2t_fields,
     .help = "resource attributes as labels on every series"},
    {.key = "enable_open_metrics",
     .type = OM_F_BOOL,
     .offset = OFF(enable_open_metrics),
     .def = "false",
     .help = "answer in OpenMetrics 1.0 when the scraper asks for it"},
    {.key = "add_metric_suffixes",
     .type = OM_F_BOOL,
     .offset = OFF(add_metric_suffixes),
     .def = "true",
     .help = "unit and type suffixes (_seconds, _total...)"},
    {.key = "translation_strategy",
     .type = OM_F_ENUM,
     .offset = OFF(translation_strategy),
     .def = "",
     .choices = strategies,
     .help = "wins over add_metric_suffixes when set"},
    /* Upstream's exporterhelper queue in front of an in-memory accumulator: nothing to do. */
    {.key = "sending_queue", .type = OM_F_IGNORED},
    {.key = NULL},
};

static int promexp_config_validate(const void *vcfg, om_err_t *err)
{
    const exp_promexp_cfg_t *c = vcfg;
    if (c->http.endpoint == NULL || c->http.endpoint[0] == '\0') {
        om_err_at(err, "endpoint",
                  "expecting a non-blank address to run the Prometheus metrics handler");
        return OM_ECONFIG;
    }
    if (c->translation_strategy == PROMEXP_TS_NO_UTF8_WITH_SUFFIXES ||
        c->translation_strategy == PROMEXP_TS_NO_TRANSLATION) {
        om_err_at(err, "translation_strategy",
                  "%s keeps UTF-8 names, which otelmon does not serve (Prometheus 2.42 does "
                  "not accept them); use UnderscoreEscapingWithSuffixes or "
                  "UnderscoreEscapingWithoutSuffixes",
                  strategies[c->translation_strategy]);
        return OM_ECONFIG;
    }
    for (size_t i = 0; i < c->const_labels.n; i++) {
        const char *k = c->const_labels.keys[i];
        char name[256];
        size_t len = strlen(k);
        if (len + 5 > sizeof name || om_prom_label_name(k, len, name, sizeof name) == 0) {
            char at[300];
            snprintf(at, sizeof at, "const_labels::%s", k);
            om_err_at(err, at, "not a usable label name");
            return OM_ECONFIG;
        }
    }
    return om_http_server_cfg_validate(&c->http, "", err);
}

/* ------------------------------------------------------------------------------------------ */
/* Instance                                                                                   */

typedef struct promexp {
    const exp_promexp_cfg_t *cfg;
    const char *log_name;
    om_host_t *host;
    promexp_opts_t opts;
    om_label_t *const_labels; /* sanitised names (owned) */
    size_t n_const_labels;
    promexp_state_t *state;
    om_http_server_t *http;
    uv_timer_t sweep;
    bool timer_open;
    bool shutting_down;
    size_t jobs;     /* gzip jobs out */
    size_t last_len; /* the last scrape's size: the next one's buffer is reserved at once */
    bool server_done;
    om_done_fn done;
    void *done_arg;
    om_metric_counter_t *m_scrapes;
} promexp_t;

/* A scrape being compressed on the worker pool. */
typedef struct gz_job {
    om_job_t job;
    promexp_t *p;
    om_http_req_t *req; /* NULL once the connection went away */
    char *body;         /* the rendered text; then the compressed body */
    size_t len;
    const char *ctype;
    bool ok;
} gz_job_t;

typedef struct req_state {
    gz_job_t *job; /* set while a gzip job holds the answer */
} req_state_t;

static bool gzip_buf(const char *in, size_t n, char **out, size_t *out_len)
{
    z_stream zs = {0};
    if (deflateInit2(&zs, Z_BEST_SPEED, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        return false;
    }
    size_t cap = deflateBound(&zs, (uLong)n);
    char *buf = om_malloc(cap);
    if (buf == NULL) {
        deflateEnd(&zs);
        return false;
    }
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)n;
    zs.next_out = (Bytef *)buf;
    zs.avail_out = (uInt)cap;
    int rc = deflate(&zs, Z_FINISH);
    *out_len = zs.total_out;
    deflateEnd(&zs);
    if (rc != Z_STREAM_END) {
        om_free(buf);
        return false;
    }
    *out = buf;
    return true;
}

static bool accepts_gzip(const char *ae)
{
    return ae != NULL && strstr(ae, "gzip") != NULL;
}

static void gz_work(om_job_t *job, void *thread_data)
{
    (void)thread_data;
    gz_job_t *g = (gz_job_t *)job;
    char *z;
    size_t zlen;
    g->ok = gzip_buf(g->body, g->len, &z, &zlen);
    if (g->ok) {
        om_free(g->body);
        g->body = z;
        g->len = zlen;
    }
}

static void maybe_done(promexp_t *p);

static void gz_done(om_job_t *job, int status)
{
    gz_job_t *g = (gz_job_t *)job;
    promexp_t *p = g->p;
    p->jobs--;
    if (g->req != NULL) {
        req_state_t *rs = om_http_req_state(g->req);
        rs->job = NULL;
        if (status == 0 && g->ok) {
            om_http_respond_take(g->req, 200, g->ctype, "Content-Encoding: gzip\r\n", g->body,
                                 g->len);
            g->body = NULL;
        } else {
            om_http_respond(g->req, 500, "text/plain; charset=utf-8", NULL, "compression failed\n",
                            19);
        }
    }
    om_free(g->body);
    om_free(g);
    maybe_done(p);
}

/* A large scrape's buffer is fresh memory (glibc maps blocks above src/main.c's 32 MB
 * threshold anew each time), and filling it page by page took ~12,000 page faults for a
 * 100,000-series scrape: most of its time on a VM. So the buffer is reserved at once at
 * about the last scrape's size and, where the kernel offers transparent huge pages on
 * request (Debian's default "madvise"), asked for them: a fault per 2 MB instead of 4 KB. */
static void reserve_answer(om_strbuf_t *out, size_t last_len)
{
    if (last_len < 4 * 1024 * 1024 || !om_strbuf_reserve(out, last_len + last_len / 8)) {
        return;
    }
    out->data[0] = '\0';
#ifdef MADV_HUGEPAGE
    uintptr_t huge = 2 * 1024 * 1024;
    uintptr_t from = ((uintptr_t)out->data + huge - 1) & ~(huge - 1);
    uintptr_t to = ((uintptr_t)out->data + out->cap) & ~(huge - 1);
    if (to > from) {
        (void)madvise((void *)from, to - from, MADV_HUGEPAGE); /* a hint: errors change nothing */
    }
#endif
}

static void scrape(om_http_req_t *req, void *arg)
{
    promexp_t *p = arg;
    om_prom_format_t f =
        om_prom_negotiate(om_http_req_header(req, "Accept", NULL), p->cfg->enable_open_metrics);
    const char *ctype =
        f == OM_PROM_FMT_OPENMETRICS ? OM_PROM_OPENMETRICS_CONTENT_TYPE : OM_PROM_TEXT_CONTENT_TYPE;
    om_strbuf_t out;
    om_strbuf_init(&out, 0);
    reserve_answer(&out, p->last_len);
    promexp_state_render(p->state, f, uv_now(p->host->loop), &out);
    p->last_len = out.len;
    om_metric_counter_add(p->m_scrapes, 1);
    if (out.failed) {
        om_strbuf_free(&out);
        om_http_respond(req, 500, "text/plain; charset=utf-8", NULL, "out of memory\n", 14);
        return;
    }
    size_t len = out.len;
    char *body = om_strbuf_steal(&out, NULL);
    om_strbuf_free(&out);
    if (!accepts_gzip(om_http_req_header(req, "Accept-Encoding", NULL))) {
        om_http_respond_take(req, 200, ctype, NULL, body != NULL ? body : om_strdup(""), len);
        return;
    }
    gz_job_t *g = len >= GZIP_ON_WORKER_MIN ? om_calloc(1, sizeof *g) : NULL;
    if (g != NULL) {
        *g = (gz_job_t){.p = p, .req = req, .body = body, .len = len, .ctype = ctype};
        if (om_workers_submit(p->host->workers, &g->job, gz_work, gz_done) == 0) {
            p->jobs++;
            ((req_state_t *)om_http_req_state(req))->job = g;
            return;
        }
        om_free(g);
    }
    char *z;
    size_t zlen;
    if (body != NULL && gzip_buf(body, len, &z, &zlen)) {
        om_free(body);
        om_http_respond_take(req, 200, ctype, "Content-Encoding: gzip\r\n", z, zlen);
        return;
    }
    om_http_respond_take(req, 200, ctype, NULL, body != NULL ? body : om_strdup(""), len);
}

/* The scraper went away while its answer was being compressed. */
static void scrape_cancel(om_http_req_t *req, void *arg)
{
    (void)arg;
    req_state_t *rs = om_http_req_state(req);
    if (rs->job != NULL) {
        rs->job->req = NULL;
        rs->job = NULL;
        om_http_respond(req, 503, NULL, NULL, NULL, 0); /* frees the request (see om.h) */
    }
}

static const om_http_handler_t scrape_h = {.complete = scrape, .cancel = scrape_cancel};

static int consume(void *self, om_batch_t *b)
{
    promexp_t *p = self;
    om_err_t err = {0};
    int rc = om_batch_decode(b, &err);
    if (rc == 0 && !p->shutting_down) {
        rc = promexp_state_update(p->state, b, uv_now(p->host->loop));
        rc = rc < 0 ? rc : 0;
    }
    if (rc != 0) {
        OM_CLOG(p->log_name, OM_LOG_WARN, "cannot take %zu metric points: %s", b->items,
                err.msg[0] != '\0' ? err.msg : om_strerror(rc));
    }
    om_batch_release(b);
    return rc;
}

static void sweep_cb(uv_timer_t *t)
{
    promexp_t *p = t->data;
    promexp_state_expire(p->state, uv_now(p->host->loop));
}

static void on_listen(void *arg, const char *name, int port)
{
    (void)port;
    promexp_t *p = arg;
    OM_CLOG(p->log_name, OM_LOG_INFO, "Prometheus metrics endpoint listening on %s%s", name,
            p->cfg->http.tls_present ? " (TLS)" : "");
}

static const om_metric_def_t scrapes_def = {
    .name = "otelmon_exporter_prometheus_scrapes",
    .help = "Scrapes answered by the prometheus exporter (OtelMon's)",
    .unit = "{scrapes}",
    .type = OM_METRIC_COUNTER};

static int const_labels(promexp_t *p, om_err_t *err)
{
    const om_strmap_t *m = &p->cfg->const_labels;
    p->const_labels = m->n > 0 ? om_calloc(m->n, sizeof *p->const_labels) : NULL;
    if (m->n > 0 && p->const_labels == NULL) {
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    for (size_t i = 0; i < m->n; i++) {
        size_t len = strlen(m->keys[i]);
        char *name = om_malloc(len + 5);
        if (name == NULL) {
            om_err_set(err, OM_ENOMEM, "out of memory");
            return OM_ENOMEM;
        }
        om_prom_label_name(m->keys[i], len, name, len + 5);
        p->const_labels[p->n_const_labels++] = (om_label_t){name, m->values[i]};
    }
    return 0;
}

static void promexp_destroy(void *self);

static int promexp_create(const om_create_args_t *a, void **self, om_err_t *err)
{
    promexp_t *p = om_calloc(1, sizeof *p);
    if (p == NULL) {
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    p->cfg = a->cfg;
    p->log_name = a->log_name;
    p->host = a->host;
    const exp_promexp_cfg_t *c = p->cfg;
    bool suffixes = c->translation_strategy == PROMEXP_TS_UNSET
                        ? c->add_metric_suffixes
                        : c->translation_strategy == PROMEXP_TS_UNDERSCORE_WITH_SUFFIXES;
    int rc = const_labels(p, err);
    p->opts = (promexp_opts_t){.ns = c->namespace_,
                               .suffixes = suffixes,
                               .r2t = c->r2t.enabled,
                               .send_timestamps = c->send_timestamps,
                               .expiration_ms = (uint64_t)(c->metric_expiration / OM_NS_PER_MS),
                               .const_labels = p->const_labels,
                               .n_const_labels = p->n_const_labels,
                               .log_name = a->log_name};
    if (rc == 0) {
        p->state = promexp_state_new(&p->opts);
        if (p->state == NULL) {
            rc = OM_ENOMEM;
            om_err_set(err, rc, "out of memory");
        }
    }
    om_http_server_opts_t o = {.loop = a->host->loop,
                               .host = a->host, /* where `auth`'s authenticator is found */
                               .log_name = a->log_name,
                               .cfg = &c->http,
                               .req_state_size = sizeof(req_state_t),
                               .date_header = true,
                               .on_listen = on_listen,
                               .arg = p};
    rc = rc ? rc : om_http_server_new(&o, &p->http, err);
    rc = rc ? rc : om_http_server_route(p->http, "/", OM_HTTP_GET, &scrape_h, p, 0, err);
    if (rc == 0 && a->host->metrics != NULL) {
        om_label_t l[] = {{"exporter", a->id}};
        rc = om_metrics_counter(a->host->metrics, &scrapes_def, l, 1, &p->m_scrapes, err);
    }
    if (rc != 0) {
        promexp_destroy(p);
        return rc;
    }
    *self = p;
    return 0;
}

static int promexp_start(void *self, om_err_t *err)
{
    promexp_t *p = self;
    int rc = om_http_server_start(p->http, err);
    if (rc != 0) {
        return rc;
    }
    uint64_t every = p->opts.expiration_ms / 2;
    every = every < 1000 ? 1000 : every > 60000 ? 60000 : every;
    uv_timer_init(p->host->loop, &p->sweep);
    p->sweep.data = p;
    p->timer_open = true;
    uv_timer_start(&p->sweep, sweep_cb, every, every);
    uv_unref((uv_handle_t *)&p->sweep); /* housekeeping never keeps the loop alive */
    return 0;
}

static void maybe_done(promexp_t *p)
{
    if (p->shutting_down && p->server_done && p->jobs == 0 && !p->timer_open && p->done != NULL) {
        om_done_fn done = p->done;
        p->done = NULL;
        done(p->done_arg);
    }
}

static void timer_closed(uv_handle_t *h)
{
    promexp_t *p = h->data;
    p->timer_open = false;
    maybe_done(p);
}

static void server_closed(void *arg)
{
    promexp_t *p = arg;
    p->server_done = true;
    if (p->timer_open) {
        uv_close((uv_handle_t *)&p->sweep, timer_closed);
        return;
    }
    maybe_done(p);
}

static void promexp_shutdown(void *self, om_done_fn done, void *arg)
{
    promexp_t *p = self;
    if (p->shutting_down) {
        return;
    }
    p->shutting_down = true;
    p->done = done;
    p->done_arg = arg;
    om_http_server_shutdown(p->http, server_closed, p);
}

static void promexp_destroy(void *self)
{
    promexp_t *p = self;
    om_http_server_free(p->http);
    promexp_state_free(p->state);
    for (size_t i = 0; i < p->n_const_labels; i++) {
        om_free((char *)p->const_labels[i].key);
    }
    om_free(p->const_labels);
    om_free(p);
}

size_t exp_prometheus_series(const void *self);
int exp_prometheus_port(const void *self);

/* Tests: the live series and the bound port. */
size_t exp_prometheus_series(const void *self)
{
    return promexp_state_series(((const promexp_t *)self)->state);
}

int exp_prometheus_port(const void *self)
{
    return om_http_server_port(((const promexp_t *)self)->http);
}

const om_factory_t exp_prometheus_factory = {
    .abi = OM_FACTORY_ABI,
    .kind = OM_EXPORTER,
    .type = "prometheus",
    .help = "serves metrics for Prometheus to scrape (text 0.0.4 or OpenMetrics)",
    .signals = OM_SIG_METRICS,
    .config_size = sizeof(exp_promexp_cfg_t),
    .fields = exp_promexp_fields,
    .config_validate = promexp_config_validate,
    .create = promexp_create,
    .start = promexp_start,
    .shutdown = promexp_shutdown,
    .destroy = promexp_destroy,
    .consume_metrics = consume,
};
