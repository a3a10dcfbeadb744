/* health_check.c: the health_check extension, as otelcol-contrib's healthcheckextension (the
 * v1 behaviour otelcol users configure with `extensions: health_check: {endpoint: ...}`).
 *
 * The core's HTTP server (src/http_server.c) answers on `path` with the collector's state: 200
 * and {"status":"Server available","upSince":"<RFC 3339>","uptime":"<Go duration>"} once the
 * pipelines are ready (pipelines_ready), and 503 with {"status":"Server not available",
 * "upSince":"0001-01-01T00:00:00Z","uptime":""} before that and once they are about to stop
 * (pipelines_not_ready). These are the bytes Go's encoding/json writes for the upstream
 * response struct, zero time.Time included. With `response_body` configured, its `healthy` or
 * `unhealthy` string is the whole body instead.
 *
 * Routing is the server's, which follows Go's http.ServeMux that upstream mounts the handler
 * on: a path ending in "/" serves its whole subtree (so the default "/" answers every path),
 * any other path only itself; a subtree's root without the slash is redirected (301) to it;
 * everything else gets Go's "404 page not found". Every method is answered the same way (the
 * upstream handler does not look at it); HEAD gets the headers only. Every answer carries a
 * Date header, as Go's server writes one.
 *
 * One request per connection: the answer carries Connection: close and the connection is
 * closed once it is written. A request is bounded in size (431 / 413 beyond MAX_REQUEST_BYTES
 * of headers or of body, which is read and dropped) and in time by otelcol's confighttp
 * timeouts (read_header_timeout and the others, with their defaults), as every server of the
 * core is; the connection budget and eviction of the core server keep the probe answering
 * while clients hold connections open (see src/http_server.c). The confighttp keys are the
 * core's (OM_HTTP_SERVER_FIELDS): `tls` serves TLS, `response_headers` are added to every
 * answer. Shutdown closes the listener and every connection at once, as Go's
 * http.Server.Close does upstream. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "health_check.h"

#define DEFAULT_ENDPOINT "localhost:13133"
#define MAX_REQUEST_BYTES (16 * 1024)
#define MAX_URL 2048

#define BODY_NOT_READY                                                                             \
    "{\"status\":\"Server not available\",\"upSince\":\"0001-01-01T00:00:00Z\",\"uptime\":\"\"}"
#define CT_JSON "application/json"
#define CT_TEXT "text/plain; charset=utf-8"

/* ------------------------------------------------------------------------------------------ */
/* Configuration                                                                              */

typedef struct hc_body_cfg {
    char *healthy;   /* NULL: "" */
    char *unhealthy; /* NULL: "" */
} hc_body_cfg_t;

typedef struct hc_cfg {
    om_http_server_cfg_t http; /* otelcol's confighttp.ServerConfig, squashed at the top */
    char *path;
    bool has_response_body; /* upstream tells an absent section from one with empty strings */
    hc_body_cfg_t response_body;
} hc_cfg_t;

static const om_field_t body_fields[] = {
    {.key = "healthy",
     .type = OM_F_STRING,
     .offset = offsetof(hc_body_cfg_t, healthy),
     .help = "the whole body of a 200 answer"},
    {.key = "unhealthy",
     .type = OM_F_STRING,
     .offset = offsetof(hc_body_cfg_t, unhealthy),
     .help = "the whole body of a 503 answer"},
    {.key = NULL},
};

static const om_field_t hc_fields[] = {
    OM_HTTP_SERVER_FIELDS(hc_cfg_t, http, DEFAULT_ENDPOINT),
    {.key = "path",
     .type = OM_F_STRING,
     .offset = offsetof(hc_cfg_t, path),
     .def = "/",
     .help = "the path answered (ending in /: the whole subtree)"},
    {.key = "response_body",
     .type = OM_F_SECTION,
     .offset = offsetof(hc_cfg_t, response_body),
     .fields = body_fields,
     .flags = OM_FF_PRESENCE,
     .present_offset = offsetof(hc_cfg_t, has_response_body),
     .help = "static bodies replacing the JSON status"},
    /* Deprecated upstream and ignored there too. */
    {.key = "check_collector_pipeline", .type = OM_F_IGNORED},
    /* The v2 settings the upstream config also accepts (behind a feature gate there). Its
     * `http` and `grpc` servers carry their own auth and tls, which must not be dropped
     * silently: use_v2 (which alone makes upstream read them) is refused, and without it
     * upstream ignores them too. */
    {.key = "use_v2",
     .type = OM_F_REFUSED,
     .help = "health check v2 (use_v2 with its http and grpc servers, their auth and tls) is "
             "not implemented: use endpoint, tls and auth at the top level"},
    {.key = "http", .type = OM_F_IGNORED},
    {.key = "grpc", .type = OM_F_IGNORED},
    {.key = "component_health", .type = OM_F_IGNORED},
    {.key = NULL},
};

static int hc_config_validate(const void *cfgp, om_err_t *err)
{
    const hc_cfg_t *cfg = cfgp;
    if (cfg->path == NULL || cfg->path[0] != '/') {
        om_err_at(err, "path", "path must start with /");
        return OM_ECONFIG;
    }
    return om_http_server_cfg_validate(&cfg->http, "", err);
}

/* ------------------------------------------------------------------------------------------ */
/* Instance                                                                                   */

typedef struct hc {
    const hc_cfg_t *cfg;
    const char *log_name;
    om_http_server_t *http;
    /* The collector's state, as the pipeline reports it. */
    bool ready;
    uint64_t ready_ns; /* uv_hrtime() when it became ready: the uptime's origin */
    char up_since[48]; /* the wall-clock time it became ready, in Go's JSON form */
} hc_t;

/* ------------------------------------------------------------------------------------------ */
/* Go's formats                                                                               */

/* Writes v's last prec digits backwards before buf[w], dropping trailing zeros (and the '.'
 * when all are zero), as Go's time.Duration.String does; returns the new start, and v with
 * those digits removed in *rest. */
static size_t put_frac(char *buf, size_t w, uint64_t v, int prec, uint64_t *rest)
{
    bool print = false;
    for (int i = 0; i < prec; i++) {
        unsigned digit = (unsigned)(v % 10);
        print = print || digit != 0;
        if (print) {
            buf[--w] = (char)('0' + digit);
        }
        v /= 10;
    }
    if (print) {
        buf[--w] = '.';
    }
    *rest = v;
    return w;
}

static size_t put_int(char *buf, size_t w, uint64_t v)
{
    do {
        buf[--w] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    return w;
}

void ext_health_check_go_duration(uint64_t ns, char *out, size_t n)
{
    /* Written backwards from the end; the longest (UINT64_MAX ns) is 26 bytes. */
    char buf[40];
    size_t w = sizeof buf;
    uint64_t u = ns;
    buf[--w] = 's';
    if (u == 0) {
        buf[--w] = '0';
    } else if (u < (uint64_t)OM_NS_PER_S) {
        int prec = 6;
        if (u < 1000) {
            prec = 0;
            buf[--w] = 'n';
        } else if (u < 1000000) {
            prec = 3;
            w -= 2;
            memcpy(buf + w, "\xc2\xb5", 2); /* U+00B5 MICRO SIGN, as Go writes it */
        } else {
            buf[--w] = 'm';
        }
        w = put_frac(buf, w, u, prec, &u);
        w = put_int(buf, w, u);
    } else {
        w = put_frac(buf, w, u, 9, &u);
        w = put_int(buf, w, u % 60);
        u /= 60;
        if (u > 0) {
            buf[--w] = 'm';
            w = put_int(buf, w, u % 60);
            u /= 60;
            if (u > 0) {
                buf[--w] = 'h';
                w = put_int(buf, w, u);
            }
        }
    }
    snprintf(out, n, "%.*s", (int)(sizeof buf - w), buf + w);
}

void ext_health_check_rfc3339(int64_t sec, long nsec, char *out, size_t n)
{
    time_t t = (time_t)sec;
    struct tm tm;
    if (localtime_r(&t, &tm) == NULL || nsec < 0 || nsec >= OM_NS_PER_S) {
        snprintf(out, n, "0001-01-01T00:00:00Z");
        return;
    }
    char frac[16] = "";
    if (nsec > 0) {
        snprintf(frac, sizeof frac, ".%09ld", nsec);
        size_t len = strlen(frac);
        while (frac[len - 1] == '0') {
            frac[--len] = '\0';
        }
    }
    char zone[16] = "Z";
    long off = tm.tm_gmtoff;
    if (off != 0) {
        long a = off < 0 ? -off : off;
        snprintf(zone, sizeof zone, "%c%02d:%02d", off < 0 ? '-' : '+', (int)(a / 3600 % 100),
                 (int)(a % 3600 / 60));
    }
    snprintf(out, n, "%04d-%02d-%02dT%02d:%02d:%02d%s%s", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac, zone);
}

/* ------------------------------------------------------------------------------------------ */
/* The answer                                                                                 */

static void answer_state(om_http_req_t *req, void *arg)
{
    const hc_t *h = arg;
    int status = h->ready ? 200 : 503;
    if (h->cfg->has_response_body) {
        const char *b = h->ready ? h->cfg->response_body.healthy : h->cfg->response_body.unhealthy;
        b = b != NULL ? b : "";
        /* Upstream sets no type: Go's server sniffs one from a non-empty body. */
        om_http_respond(req, status, b[0] != '\0' ? CT_TEXT : NULL, NULL, b, strlen(b));
        return;
    }
    if (!h->ready) {
        om_http_respond(req, status, CT_JSON, NULL, BODY_NOT_READY, strlen(BODY_NOT_READY));
        return;
    }
    char uptime[48], body[160];
    ext_health_check_go_duration(uv_hrtime() - h->ready_ns, uptime, sizeof uptime);
    int n = snprintf(body, sizeof body,
                     "{\"status\":\"Server available\",\"upSince\":\"%s\",\"uptime\":\"%s\"}",
                     h->up_since, uptime);
    om_http_respond(req, status, CT_JSON, NULL, body, (size_t)n);
}

static const om_http_handler_t hc_handler = {.complete = answer_state};

static void on_listen(void *arg, const char *name, int port)
{
    (void)name;
    const hc_t *h = arg;
    OM_CLOG(h->log_name, OM_LOG_INFO, "health check listening on port %d, path %s%s", port,
            h->cfg->path, h->cfg->http.tls_present ? " (TLS)" : "");
}

/* ------------------------------------------------------------------------------------------ */
/* The factory                                                                                */

static int hc_create(const om_create_args_t *a, void **self, om_err_t *err)
{
    hc_t *h = om_calloc(1, sizeof *h);
    if (h == NULL) {
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    h->cfg = a->cfg;
    h->log_name = a->log_name;
    om_http_server_opts_t o = {
        .loop = a->host->loop,
        .host = a->host,
        .log_name = a->log_name,
        .cfg = &h->cfg->http,
        .default_endpoint = DEFAULT_ENDPOINT,
        .max_url = MAX_URL,
        .max_header_bytes = MAX_REQUEST_BYTES,
        .date_header = true,
        .one_request_per_connection = true,
        .on_listen = on_listen,
        .arg = h,
    };
    int rc = om_http_server_new(&o, &h->http, err);
    if (rc == 0) {
        rc = om_http_server_route(h->http, h->cfg->path != NULL ? h->cfg->path : "/", OM_HTTP_ANY,
                                  &hc_handler, h, MAX_REQUEST_BYTES, err);
    }
    if (rc != 0) {
        om_http_server_free(h->http);
        om_free(h);
        return rc;
    }
    *self = h;
    return 0;
}

static int hc_start(void *self, om_err_t *err)
{
    hc_t *h = self;
    return om_http_server_start(h->http, err);
}

static void hc_shutdown(void *self, om_done_fn done, void *arg)
{
    hc_t *h = self;
    om_http_server_shutdown(h->http, done, arg);
}

static void hc_destroy(void *self)
{
    hc_t *h = self;
    if (h == NULL) {
        return;
    }
    om_http_server_free(h->http);
    om_free(h);
}

static void hc_pipelines_ready(void *self)
{
    hc_t *h = self;
    if (h->ready) {
        return;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    h->ready = true;
    h->ready_ns = uv_hrtime();
    ext_health_check_rfc3339((int64_t)ts.tv_sec, ts.tv_nsec, h->up_since, sizeof h->up_since);
    OM_CLOG(h->log_name, OM_LOG_INFO, "health check state change: ready");
}

static void hc_pipelines_not_ready(void *self)
{
    hc_t *h = self;
    if (!h->ready) {
        return;
    }
    h->ready = false;
    OM_CLOG(h->log_name, OM_LOG_INFO, "health check state change: unavailable");
}

int ext_health_check_bound_port(const void *self)
{
    return om_http_server_port(((const hc_t *)self)->http);
}

size_t ext_health_check_conn_count(const void *self)
{
    return om_http_server_conn_count(((const hc_t *)self)->http);
}

const om_factory_t ext_health_check_factory = {
    .abi = OM_FACTORY_ABI,
    .kind = OM_EXTENSION,
    .type = "health_check",
    .help = "HTTP health check: 200 once the pipelines run, 503 otherwise",
    .signals = 0,
    .config_size = sizeof(hc_cfg_t),
    .fields = hc_fields,
    .config_validate = hc_config_validate,
    .create = hc_create,
    .start = hc_start,
    .shutdown = hc_shutdown,
    .destroy = hc_destroy,
    .pipelines_ready = hc_pipelines_ready,
    .pipelines_not_ready = hc_pipelines_not_ready,
};
