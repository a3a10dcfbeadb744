/* alarmstore_exporter.c: the alarmstore exporter's factory, lifecycle and batches.
 *
 * Threads and ownership. Everything here runs on the loop, except the database work, which
 * runs on the exporter's own worker pool of one thread (om_workers_new with thread_init /
 * thread_fini): that thread owns the one database connection (db_thread_t), opens it lazily,
 * creates or migrates the schema on first use (a job submitted at start, so that a bad
 * database is reported at once), and reopens it after a batch-level failure.
 *
 * A batch's way: consume() first asks whether the batch can hold a run at all, without
 * decoding it (as_wire_maybe on its protobuf bytes: the attribute keys every candidate
 * carries); most batches of a traces pipeline hold none and are released at once, counted in
 * otelcol_exporter_alarmstore_skipped_batches. The others go to the exporter helper
 * (timeout, retry_on_failure, sending_queue). Its send submits a store_job_t without decoding
 * a batch that is still its wire bytes: the database thread walks the bytes and decodes only
 * the spans that can be runs, into an arena of its own (as_rows_extract_wire: plain reads of
 * the batch, which the helper holds until om_exp_req_done; om_arena_* on an arena only that
 * thread holds, the live-bytes counter being atomic). A batch already decoded (OTLP/JSON, or
 * decoded by another consumer) is read from its structs, decoded on the loop as om.h's worker
 * rules ask. The thread makes the rows and stores them in one transaction. The job's done, back on
 * the loop, ends the attempt: 0, or OM_EAGAIN for what may pass later (the helper retries with
 * backoff, and its queue filling makes the receivers push back), or OM_ECONFIG when the schema is
 * newer than this binary (dropped, logged by the helper). Rows the database refuses for good are
 * counted (otelcol_exporter_alarmstore_refused_rows) and logged at warn level (at most one line a
 * minute), and never fail the batch.
 *
 * The query API and page (api:, alarmstore_api.c) have their own server, thread and read-only
 * connection; they are made at create, started at start, and closed first at shutdown.
 *
 * Shutdown: the helper drains its queue (each batch gets its attempts), then the pool closes
 * (its thread closes the connection), then done. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "alarmstore.h"

#define REFUSED_LOG_INTERVAL_MS 60000

typedef struct exp_as {
    const exp_as_cfg_t *cfg;
    const char *log_name;
    om_host_t *host;
    om_exphelper_t *helper;
    om_workers_t *pool;
    as_api_t *api; /* api: configured, else NULL */
    as_url_t url;
    as_extract_opts_t opts;
    bool shutting_down;
    om_done_fn done;
    void *done_arg;
    uint64_t refused_logged_ms;
    om_metric_counter_t *m_stored, *m_duplicate, *m_refused, *m_skipped;
} exp_as_t;

/* The database thread's state (its thread_data). */
typedef struct db_thread {
    exp_as_t *e; /* read only: cfg, url, opts, log_name, the metric series */
    const as_backend_t *be;
    as_conn_t *conn;
} db_thread_t;

typedef struct store_job {
    om_job_t job; /* first member */
    exp_as_t *e;
    om_exp_req_t *req; /* NULL: the open job at start */
    /* The batch's wire segments when it was not decoded (a copy of the array; the bytes are
     * the batch's, which the helper holds until the attempt ends), else NULL: read msg. */
    om_raw_seg_t *segs;
    size_t n_segs;
    uint64_t timeout_ms;
    int rc;
    om_err_t err;
    as_store_result_t res;
} store_job_t;

/* ------------------------------------------------------------------------------------------ */
/* The database thread                                                                        */

static void *thread_init(void *arg)
{
    db_thread_t *t = om_calloc(1, sizeof *t);
    if (t != NULL) {
        t->e = arg;
    }
    return t;
}

static void thread_fini(void *arg, void *data)
{
    (void)arg;
    db_thread_t *t = data;
    if (t != NULL && t->conn != NULL) {
        t->be->close(t->conn);
    }
    om_free(t);
}

static void store_work(om_job_t *job, void *data)
{
    store_job_t *j = (store_job_t *)job;
    db_thread_t *t = data;
    if (t == NULL) {
        j->rc = OM_EAGAIN;
        om_err_set(&j->err, OM_ENOMEM, "out of memory");
        return;
    }
    if (t->conn == NULL) {
        j->rc = as_db_open(&j->e->url, j->e->cfg, j->timeout_ms, &t->be, &t->conn, &j->err);
        if (j->rc != 0) {
            return;
        }
    }
    if (j->req == NULL) {
        return;
    }
    as_rows_t rows = {0};
    if (j->segs != NULL) {
        j->rc = 0;
        for (size_t i = 0; j->rc == 0 && i < j->n_segs; i++) {
            j->rc = as_rows_extract_wire(j->segs[i].data, j->segs[i].len, &j->e->opts, &rows);
        }
    } else {
        j->rc = as_rows_extract(j->req->batch->traces, &j->e->opts, &rows);
    }
    if (j->rc != 0) {
        om_err_set(&j->err, j->rc, "%s",
                   j->rc == OM_ENOMEM ? "out of memory making the rows"
                                      : "a request no longer decodes");
    } else if (rows.n > 0) {
        j->rc = as_db_store(t->be, t->conn, &rows, &j->res, &j->err);
    }
    as_rows_free(&rows);
    if (j->rc != 0 && j->rc != OM_ENOMEM) {
        /* The connection may be gone (a restarted server): the next attempt opens anew. */
        t->be->close(t->conn);
        t->conn = NULL;
    }
}

/* ------------------------------------------------------------------------------------------ */
/* The loop's side                                                                            */

static void maybe_log_refused(exp_as_t *e, const as_store_result_t *r)
{
    if (r->refused == 0) {
        return;
    }
    uint64_t now = uv_now(e->host->loop);
    if (e->refused_logged_ms != 0 && now - e->refused_logged_ms < REFUSED_LOG_INTERVAL_MS) {
        return;
    }
    e->refused_logged_ms = now != 0 ? now : 1;
    OM_CLOG(e->log_name, OM_LOG_WARN,
            "the database refused %zu runs for good; they are skipped (first: %s; at most one "
            "such line a minute; counted in otelcol_exporter_alarmstore_refused_rows)",
            r->refused, r->first_refusal);
}

static void store_done(om_job_t *job, int status)
{
    store_job_t *j = (store_job_t *)job;
    exp_as_t *e = j->e;
    int rc = status != 0 ? OM_EAGAIN : j->rc;
    const char *msg = j->err.msg[0] != '\0' ? j->err.msg : om_strerror(rc);
    if (j->req == NULL) {
        if (rc != 0 && status == 0) {
            OM_CLOG(e->log_name, OM_LOG_ERROR, "cannot open the database %s: %s", e->cfg->database,
                    msg);
        } else if (rc == 0) {
            OM_CLOG(e->log_name, OM_LOG_INFO, "database ready (schema version %d)",
                    AS_SCHEMA_VERSION);
        }
        om_free(j);
        return;
    }
    if (rc == 0) {
        om_metric_counter_add(e->m_stored, j->res.inserted);
        om_metric_counter_add(e->m_duplicate, j->res.duplicates);
        om_metric_counter_add(e->m_refused, j->res.refused);
        maybe_log_refused(e, &j->res);
    } else if (rc == OM_ENOMEM) {
        rc = OM_EAGAIN;
    }
    char text[sizeof j->err.msg];
    snprintf(text, sizeof text, "%s", msg);
    om_exp_req_t *req = j->req;
    om_free(j->segs);
    om_free(j);
    om_exp_req_done(req, rc, 0, rc != 0 ? text : NULL);
}

/* Queues a job for the database thread; segs (taken, om_malloc'd) may be NULL. */
static int submit(exp_as_t *e, om_exp_req_t *req, uint64_t timeout_ms, om_raw_seg_t *segs,
                  size_t n_segs)
{
    store_job_t *j = e->pool != NULL ? om_calloc(1, sizeof *j) : NULL;
    if (j == NULL) {
        om_free(segs);
        return e->pool == NULL ? OM_ESHUTDOWN : OM_ENOMEM;
    }
    j->e = e;
    j->req = req;
    j->timeout_ms = timeout_ms;
    j->segs = segs;
    j->n_segs = n_segs;
    int rc = om_workers_submit(e->pool, &j->job, store_work, store_done);
    if (rc != 0) {
        om_free(j->segs);
        om_free(j);
    }
    return rc;
}

/* A batch still in its wire bytes is not decoded here: the database thread decodes only the
 * spans that can be runs (as_rows_extract_wire), so that the loop never pays a decode for
 * the 999 spans in 1000 that are no run. */
static void as_send(void *self, om_exp_req_t *req)
{
    exp_as_t *e = self;
    om_batch_t *b = req->batch;
    om_raw_seg_t *segs = NULL;
    if (b->msg == NULL && b->raw_valid) {
        segs = om_calloc(b->n_raw + 1, sizeof *segs);
        if (segs == NULL) {
            om_exp_req_done(req, OM_EAGAIN, 0, "out of memory");
            return;
        }
        om_copy(segs, b->raw, b->n_raw * sizeof *segs);
    } else {
        om_err_t err = {0};
        if (om_batch_decode(b, &err) != 0) {
            om_exp_req_done(req, err.code, 0, err.msg);
            return;
        }
    }
    int rc = submit(e, req, req->timeout_ms, segs, segs != NULL ? b->n_raw : 0);
    if (rc != 0) {
        om_exp_req_done(req, OM_EAGAIN, 0, "the database thread is not taking work");
    }
}

/* Whether the batch may hold a run; decodes nothing. */
static bool maybe_runs(const exp_as_t *e, const om_batch_t *b)
{
    if (b->msg == NULL && b->raw_valid) {
        for (size_t i = 0; i < b->n_raw; i++) {
            if (as_wire_maybe(b->raw[i].data, b->raw[i].len, &e->opts)) {
                return true;
            }
        }
        return false;
    }
    return b->traces == NULL || as_req_maybe(b->traces, &e->opts);
}

static int consume(void *self, om_batch_t *batch)
{
    exp_as_t *e = self;
    if (!e->shutting_down && !maybe_runs(e, batch)) {
        om_metric_counter_add(e->m_skipped, 1);
        om_batch_release(batch);
        return 0;
    }
    return om_exphelper_consume(e->helper, batch);
}

/* ------------------------------------------------------------------------------------------ */
/* Lifecycle                                                                                  */

static const om_metric_def_t stored_def = {.name = "otelcol_exporter_alarmstore_stored_rows",
                                           .help = "Runs written to the database (OtelMon's)",
                                           .unit = "{rows}",
                                           .type = OM_METRIC_COUNTER};
static const om_metric_def_t duplicate_def = {
    .name = "otelcol_exporter_alarmstore_duplicate_rows",
    .help = "Runs already stored (same trace_id and span_id: a retried batch), not written again",
    .unit = "{rows}",
    .type = OM_METRIC_COUNTER};
static const om_metric_def_t refused_def = {
    .name = "otelcol_exporter_alarmstore_refused_rows",
    .help = "Runs the database refused for good (bad data), skipped",
    .unit = "{rows}",
    .type = OM_METRIC_COUNTER};
static const om_metric_def_t skipped_def = {
    .name = "otelcol_exporter_alarmstore_skipped_batches",
    .help = "Batches with no span that can be a run, released without decoding",
    .unit = "{batches}",
    .type = OM_METRIC_COUNTER};

static int make_series(exp_as_t *e, const om_create_args_t *a, om_err_t *err)
{
    if (a->host->metrics == NULL) {
        return 0;
    }
    om_label_t l[] = {{"exporter", a->id}};
    om_metrics_t *m = a->host->metrics;
    int rc = om_metrics_counter(m, &stored_def, l, 1, &e->m_stored, err);
    rc = rc ? rc : om_metrics_counter(m, &duplicate_def, l, 1, &e->m_duplicate, err);
    rc = rc ? rc : om_metrics_counter(m, &refused_def, l, 1, &e->m_refused, err);
    return rc ? rc : om_metrics_counter(m, &skipped_def, l, 1, &e->m_skipped, err);
}

static int as_create(const om_create_args_t *a, void **self, om_err_t *err)
{
    exp_as_t *e = om_calloc(1, sizeof *e);
    if (e == NULL) {
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    e->cfg = a->cfg;
    e->log_name = a->log_name;
    e->host = a->host;
    e->opts.error_services = &e->cfg->error_spans.services;
    int rc = as_url_parse(e->cfg->database, &e->url, err);
    rc = rc ? rc : make_series(e, a, err);
    if (rc == 0) {
        e->helper = om_exphelper_new(a, &e->cfg->helper, as_send, e, err);
        rc = e->helper == NULL ? (err->code != 0 ? err->code : OM_ENOMEM) : 0;
    }
    if (rc == 0 && e->cfg->has_api) {
        rc = as_api_new(a->host, a->log_name, e->cfg, &e->url, &e->api, err);
    }
    if (rc != 0) {
        om_exphelper_free(e->helper);
        as_url_free(&e->url);
        om_free(e);
        return rc;
    }
    *self = e;
    return 0;
}

/* mkdir -p of the directory that holds path; 0 or an errno. */
static int make_parent_dirs(const char *path)
{
    char dir[4096];
    int n = snprintf(dir, sizeof dir, "%s", path);
    if (n < 0 || (size_t)n >= sizeof dir) {
        return ENAMETOOLONG;
    }
    char *slash = strrchr(dir, '/');
    if (slash == NULL || slash == dir) {
        return 0;
    }
    *slash = '\0';
    for (char *p = dir + 1; *p != '\0'; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(dir, 0750) != 0 && errno != EEXIST) {
                return errno;
            }
            *p = '/';
        }
    }
    if (mkdir(dir, 0750) != 0 && errno != EEXIST) {
        return errno;
    }
    struct stat st;
    return stat(dir, &st) == 0 && S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
}

static int as_start(void *self, om_err_t *err)
{
    exp_as_t *e = self;
    if (e->url.kind == AS_DB_SQLITE) {
        /* Not database work: the directory, so that a path that cannot be is a start error. */
        int en = make_parent_dirs(e->url.path);
        if (en != 0) {
            om_err_set(err, OM_EIO, "cannot create the directory of the database %s: %s",
                       e->url.path, strerror(en));
            return OM_EIO;
        }
    }
    long q = e->cfg->helper.sending_queue.num_consumers;
    om_workers_cfg_t wc = {.name = "alarmstore",
                           .max_threads = 1,
                           .max_queued = (unsigned)(q > 0 && q < 100000 ? q + 4 : 16),
                           .thread_init = thread_init,
                           .thread_fini = thread_fini,
                           .arg = e};
    int rc = om_workers_new(e->host->loop, &wc, &e->pool, err);
    if (rc != 0) {
        return rc;
    }
    /* Open and migrate now, on the database thread, so that a bad database is reported at
     * start rather than with the first run. */
    rc = submit(e, NULL, (uint64_t)(e->cfg->helper.timeout / OM_NS_PER_MS), NULL, 0);
    if (rc != 0) {
        OM_CLOG(e->log_name, OM_LOG_WARN, "cannot open the database at start: %s", om_strerror(rc));
    }
    return e->api != NULL ? as_api_start(e->api, err) : 0;
}

static void finish(exp_as_t *e)
{
    om_done_fn done = e->done;
    e->done = NULL;
    done(e->done_arg);
}

static void pool_closed(void *arg)
{
    exp_as_t *e = arg;
    e->pool = NULL;
    finish(e);
}

static void drained(void *arg)
{
    exp_as_t *e = arg;
    if (e->pool == NULL) {
        finish(e);
        return;
    }
    om_workers_close(e->pool, pool_closed, e);
}

static void api_closed(void *arg)
{
    exp_as_t *e = arg;
    om_exphelper_shutdown(e->helper, drained, e);
}

/* The API first (its answers owed are given), then the batches drain. */
static void as_shutdown(void *self, om_done_fn done, void *arg)
{
    exp_as_t *e = self;
    if (e->shutting_down) {
        return;
    }
    e->shutting_down = true;
    e->done = done;
    e->done_arg = arg;
    if (e->api != NULL) {
        as_api_shutdown(e->api, api_closed, e);
    } else {
        api_closed(e);
    }
}

static void as_destroy(void *self)
{
    exp_as_t *e = self;
    om_exphelper_free(e->helper);
    as_api_free(e->api);
    as_url_free(&e->url);
    om_free(e);
}

const om_factory_t exp_alarmstore_factory = {
    .abi = OM_FACTORY_ABI,
    .kind = OM_EXPORTER,
    .type = "alarmstore",
    .help = "ETL runs and Airflow tasks from spans into SQLite or MariaDB, each failure an alarm",
    .signals = OM_SIG_TRACES,
    .config_size = sizeof(exp_as_cfg_t),
    .fields = exp_as_fields,
    .config_validate = exp_as_config_validate,
    .create = as_create,
    .start = as_start,
    .shutdown = as_shutdown,
    .destroy = as_destroy,
    .consume_traces = consume,
};
