/* alarmstore_api.c: the query API and page of the alarmstore exporter (`api:`), served by the
 * core HTTP server (endpoint, tls, auth: {authenticator} and the timeouts are its settings;
 * a request the authenticator refuses is answered 401 before it reaches a handler here).
 *   GET /                   the page: the latest alarms (not notified first), then the latest runs,
 * failures first GET /api/v1/executions  runs, as JSON (alarmstore_query.c) GET /api/v1/alarms
 * alarms, as JSON Any other path is 404; another method than GET (or HEAD) 405. Errors are JSON
 * {"error": "..."}: 400 for bad parameters, 503 when the database cannot be read.
 *
 * Threads. The query string is checked on the loop (cheap; a bad one is answered 400 at
 * once). The query itself runs on the API's own pool of one thread, never on the loop and
 * never on the writer's thread: that thread owns a read-only connection (as_reader_t), opened
 * at its first request and again after an error of the connection, so a database that is down
 * is answered 503 and one that comes back is used again. The answer is rendered on that thread
 * into a buffer the job hands back; the loop only sends it. A full queue (more requests than
 * the thread keeps up with) is 503 too. */
#include <stdio.h>
#include <string.h>

#include "alarmstore.h"

#define CT_JSON "application/json"
#define CT_HTML "text/html; charset=utf-8"
#define MAX_QUEUED 64
/* GET requests carry no body: a larger one is not read (the connection closes). */
#define MAX_BODY 4096

struct as_api {
    om_host_t *host;
    const char *log_name;
    const exp_as_cfg_t *cfg;
    const as_url_t *url; /* the exporter's, outlives the API */
    const as_reader_backend_t *be;
    om_http_server_t *http;
    om_workers_t *pool;
    om_done_fn done;
    void *done_arg;
};

/* The reader thread's state (its thread_data). */
typedef struct rd_thread {
    as_api_t *a; /* read only: cfg, url, be */
    as_reader_t *r;
} rd_thread_t;

typedef enum { JOB_LIST, JOB_PAGE } job_kind_t;

typedef struct api_job {
    om_job_t job; /* first member */
    as_api_t *a;
    om_http_req_t *req;
    job_kind_t kind;
    as_query_t q; /* JOB_LIST */
    /* The answer, made on the thread. */
    int status;
    om_strbuf_t body;
    char msg[sizeof(((om_err_t *)0)->msg) + 64]; /* a 503's reason, for the log */
} api_job_t;

/* ------------------------------------------------------------------------------------------ */
/* The reader's thread                                                                        */

static void *thread_init(void *arg)
{
    rd_thread_t *t = om_calloc(1, sizeof *t);
    if (t != NULL) {
        t->a = arg;
    }
    return t;
}

static void thread_fini(void *arg, void *data)
{
    (void)arg;
    rd_thread_t *t = data;
    if (t != NULL && t->r != NULL) {
        t->a->be->close(t->r);
    }
    om_free(t);
}

static uint64_t timeout_ms(const as_api_t *a)
{
    return (uint64_t)(a->cfg->helper.timeout / OM_NS_PER_MS);
}

static void error_body(api_job_t *j, int status, const char *msg)
{
    j->status = status;
    om_strbuf_reset(&j->body);
    if (j->kind == JOB_PAGE) {
        om_strbuf_puts(&j->body, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
                                 "<title>OtelMon: unavailable</title></head><body><p>");
        om_strbuf_html(&j->body, msg, strlen(msg));
        om_strbuf_puts(&j->body, "</p></body></html>\n");
    } else {
        om_strbuf_puts(&j->body, "{\"error\":");
        as_json_str(&j->body, msg, strlen(msg));
        om_strbuf_puts(&j->body, "}\n");
    }
}

static void query_work(om_job_t *job, void *data)
{
    api_job_t *j = (api_job_t *)job;
    rd_thread_t *t = data;
    as_api_t *a = j->a;
    om_err_t err = {0};
    int rc = t == NULL ? OM_ENOMEM : 0;
    if (rc == 0 && t->r == NULL) {
        rc = a->be->open(a->url, a->cfg, timeout_ms(a), &t->r, &err);
    }
    if (rc == 0) {
        rc = j->kind == JOB_PAGE
                 ? as_query_page(a->be, t->r, a->cfg->api.trace_url_template, &j->body, &err)
                 : as_query_json(a->be, t->r, &j->q, &j->body, &err);
    }
    if (rc == 0) {
        j->status = 200;
        return;
    }
    if (t != NULL && t->r != NULL && rc != OM_ENOMEM) {
        /* The connection may be gone (a restarted server): the next request opens anew. */
        a->be->close(t->r);
        t->r = NULL;
    }
    snprintf(j->msg, sizeof j->msg, "the database is unavailable: %s",
             err.msg[0] != '\0' ? err.msg : om_strerror(rc));
    error_body(j, 503, j->msg);
}

/* ------------------------------------------------------------------------------------------ */
/* The loop's side                                                                            */

static void job_free(api_job_t *j)
{
    as_query_free(&j->q);
    om_strbuf_free(&j->body);
    om_free(j);
}

static void respond_json_error(om_http_req_t *req, int status, const char *msg)
{
    om_strbuf_t b;
    om_strbuf_init(&b, 0);
    om_strbuf_puts(&b, "{\"error\":");
    as_json_str(&b, msg, strlen(msg));
    om_strbuf_puts(&b, "}\n");
    if (b.failed) {
        om_http_respond(req, 500, NULL, NULL, NULL, 0);
    } else {
        om_http_respond(req, status, CT_JSON, NULL, om_strbuf_str(&b), b.len);
    }
    om_strbuf_free(&b);
}

static void query_done(om_job_t *job, int status)
{
    api_job_t *j = (api_job_t *)job;
    if (status != 0) {
        error_body(j, 503, "the query API is shutting down");
    }
    if (j->status == 503 && status == 0) {
        /* At most 10 lines a minute per server (om_http_req_warn). */
        om_http_req_warn(j->req, "%s", j->msg);
    }
    const char *ct = j->kind == JOB_PAGE ? CT_HTML : CT_JSON;
    if (j->body.failed) {
        om_http_respond(j->req, 500, NULL, NULL, NULL, 0);
    } else {
        size_t len;
        char *body = om_strbuf_steal(&j->body, &len);
        om_http_respond_take(j->req, j->status, ct, "Cache-Control: no-store\r\n", body, len);
    }
    job_free(j);
}

static void submit(as_api_t *a, om_http_req_t *req, api_job_t *j)
{
    j->a = a;
    j->req = req;
    om_strbuf_init(&j->body, 0);
    int rc = om_workers_submit(a->pool, &j->job, query_work, query_done);
    if (rc != 0) {
        job_free(j);
        respond_json_error(req, 503,
                           rc == OM_EAGAIN ? "too many queries at once: try again"
                                           : "the query API is not running");
    }
}

/* Routes take every method (the "/" subtree would otherwise take the API paths' other
 * methods and answer 404): 405 here. */
static bool method_ok(om_http_req_t *req)
{
    unsigned m = om_http_req_method(req);
    if (m == OM_HTTP_GET || m == OM_HTTP_HEAD) {
        return true;
    }
    om_http_respond(req, 405, CT_JSON, "Allow: GET, HEAD\r\n",
                    "{\"error\":\"method not allowed\"}\n", 31);
    return false;
}

/* The refusals are given in begin, from the headers, so that no body is read for them. */
static void list_begin(om_http_req_t *req, void *arg)
{
    (void)arg;
    method_ok(req);
}

static void root_begin(om_http_req_t *req, void *arg)
{
    (void)arg;
    if (strcmp(om_http_req_path(req), "/") != 0) {
        respond_json_error(req, 404, "not found");
    } else {
        method_ok(req);
    }
}

static void list(om_http_req_t *req, as_api_t *a, as_qkind_t kind)
{
    api_job_t *j = om_calloc(1, sizeof *j);
    if (j == NULL) {
        respond_json_error(req, 503, "out of memory");
        return;
    }
    j->kind = JOB_LIST;
    char msg[256];
    int rc = as_query_parse(kind, om_http_req_query(req), &j->q, msg, sizeof msg);
    if (rc != 0) {
        om_free(j);
        respond_json_error(req, rc == OM_ENOMEM ? 503 : 400, msg);
        return;
    }
    submit(a, req, j);
}

static void executions(om_http_req_t *req, void *arg)
{
    list(req, arg, AS_Q_EXECUTIONS);
}

static void alarms(om_http_req_t *req, void *arg)
{
    list(req, arg, AS_Q_ALARMS);
}

/* "/" is a subtree for the server (as Go's ServeMux): every path no other route serves; only
 * "/" itself gets here (root_begin). */
static void root(om_http_req_t *req, void *arg)
{
    as_api_t *a = arg;
    api_job_t *j = om_calloc(1, sizeof *j);
    if (j == NULL) {
        respond_json_error(req, 503, "out of memory");
        return;
    }
    j->kind = JOB_PAGE;
    submit(a, req, j);
}

static const om_http_handler_t executions_h = {.begin = list_begin, .complete = executions};
static const om_http_handler_t alarms_h = {.begin = list_begin, .complete = alarms};
static const om_http_handler_t root_h = {.begin = root_begin, .complete = root};

/* ------------------------------------------------------------------------------------------ */
/* Lifecycle                                                                                  */

static void on_listen(void *arg, const char *name, int port)
{
    (void)port;
    as_api_t *a = arg;
    OM_CLOG(a->log_name, OM_LOG_INFO, "alarmstore API listening on %s", name);
}

int as_api_new(om_host_t *host, const char *log_name, const exp_as_cfg_t *cfg, const as_url_t *url,
               as_api_t **out, om_err_t *err)
{
    as_api_t *a = om_calloc(1, sizeof *a);
    if (a == NULL) {
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    a->host = host;
    a->log_name = log_name;
    a->cfg = cfg;
    a->url = url;
    a->be = url->kind == AS_DB_SQLITE ? &as_sqlite_reader : &as_mariadb_reader;
    om_http_server_opts_t o = {.loop = host->loop,
                               .host = host, /* where `auth`'s authenticator is found */
                               .log_name = log_name,
                               .cfg = &cfg->api.http,
                               .cfg_at = "api",
                               .default_endpoint = EXP_AS_API_DEFAULT_ENDPOINT,
                               .date_header = true,
                               .on_listen = on_listen,
                               .arg = a};
    int rc = om_http_server_new(&o, &a->http, err);
    rc = rc ? rc
            : om_http_server_route(a->http, "/api/v1/executions", OM_HTTP_ANY, &executions_h, a,
                                   MAX_BODY, err);
    rc = rc ? rc
            : om_http_server_route(a->http, "/api/v1/alarms", OM_HTTP_ANY, &alarms_h, a, MAX_BODY,
                                   err);
    rc = rc ? rc : om_http_server_route(a->http, "/", OM_HTTP_ANY, &root_h, a, MAX_BODY, err);
    if (rc != 0) {
        om_http_server_free(a->http);
        om_free(a);
        return rc;
    }
    *out = a;
    return 0;
}

int as_api_start(as_api_t *a, om_err_t *err)
{
    om_workers_cfg_t wc = {.name = "alarmstore-api",
                           .max_threads = 1,
                           .max_queued = MAX_QUEUED,
                           .thread_init = thread_init,
                           .thread_fini = thread_fini,
                           .arg = a};
    int rc = om_workers_new(a->host->loop, &wc, &a->pool, err);
    return rc ? rc : om_http_server_start(a->http, err);
}

static void pool_closed(void *arg)
{
    as_api_t *a = arg;
    a->pool = NULL;
    om_done_fn done = a->done;
    a->done = NULL;
    done(a->done_arg);
}

static void server_closed(void *arg)
{
    as_api_t *a = arg;
    if (a->pool != NULL) {
        om_workers_close(a->pool, pool_closed, a);
    } else {
        pool_closed(a);
    }
}

void as_api_shutdown(as_api_t *a, om_done_fn done, void *arg)
{
    a->done = done;
    a->done_arg = arg;
    om_http_server_shutdown(a->http, server_closed, a);
}

void as_api_free(as_api_t *a)
{
    if (a == NULL) {
        return;
    }
    om_http_server_free(a->http);
    om_free(a);
}

int as_api_port(const as_api_t *a)
{
    return om_http_server_port(a->http);
}
