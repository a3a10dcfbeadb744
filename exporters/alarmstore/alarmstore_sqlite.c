/* alarmstore_sqlite.c: the SQLite backend (libsqlite3). One connection, owned by the
 * exporter's database thread (SQLITE_OPEN_NOMUTEX: no other thread touches it).
 *
 * The file is opened in WAL mode, so that readers (the sqlite3 CLI, Grafana's SQLite plugin,
 * the later query API) do not block the writer nor it them; synchronous=NORMAL, which in WAL
 * mode loses no committed transaction on a process crash (only, at worst, the last ones on a
 * power loss). busy_timeout is the exporter's `timeout`: a writer from another process that
 * holds the lock longer makes the batch fail with a retryable error.
 *
 * Errors: SQLITE_BUSY/LOCKED, I/O, full disk, read-only file, out of memory: retryable (the
 * exporter helper retries the batch with backoff). A row's constraint or type failure
 * (SQLITE_CONSTRAINT, SQLITE_MISMATCH, SQLITE_TOOBIG, SQLITE_RANGE): that row is refused for
 * good; a failed statement does not end SQLite's transaction, so the other rows go on. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "alarmstore.h"

/* SQLite (libsqlite3) is loaded on first use (om.h, "Libraries loaded on first use"): a collector
 * without this backend does not map it. The calls below keep the library's names, which
 * the defines after the table turn into calls through it; as_sqlite_load fills it before the
 * first one (the backend's opens and the exporter's config validation call it). */
#define AS_SQLITE_FUNCTIONS(X)                                                                     \
    X(sqlite3_bind_double)                                                                         \
    X(sqlite3_bind_int64)                                                                          \
    X(sqlite3_bind_null)                                                                           \
    X(sqlite3_bind_text)                                                                           \
    X(sqlite3_busy_timeout)                                                                        \
    X(sqlite3_changes)                                                                             \
    X(sqlite3_clear_bindings)                                                                      \
    X(sqlite3_close)                                                                               \
    X(sqlite3_close_v2)                                                                            \
    X(sqlite3_column_bytes)                                                                        \
    X(sqlite3_column_count)                                                                        \
    X(sqlite3_column_int)                                                                          \
    X(sqlite3_column_text)                                                                         \
    X(sqlite3_errmsg)                                                                              \
    X(sqlite3_errstr)                                                                              \
    X(sqlite3_exec)                                                                                \
    X(sqlite3_extended_result_codes)                                                               \
    X(sqlite3_finalize)                                                                            \
    X(sqlite3_get_autocommit)                                                                      \
    X(sqlite3_last_insert_rowid)                                                                   \
    X(sqlite3_open_v2)                                                                             \
    X(sqlite3_prepare_v2)                                                                          \
    X(sqlite3_prepare_v3)                                                                          \
    X(sqlite3_reset)                                                                               \
    X(sqlite3_step)
typedef struct as_sqlite_api {
#define X(f) __typeof__(f) *f;
    AS_SQLITE_FUNCTIONS(X)
#undef X
} as_sqlite_api_t;
static as_sqlite_api_t sqlite;
static const om_dl_sym_t sqlite_syms[] = {
#define X(f) OM_DL_SYM(as_sqlite_api_t, f, #f),
    AS_SQLITE_FUNCTIONS(X)
#undef X
};
static om_dl_lib_t libsqlite = {.soname = "libsqlite3.so.0",
                                .package = "libsqlite3-0",
                                .syms = sqlite_syms,
                                .n_syms = sizeof sqlite_syms / sizeof sqlite_syms[0],
                                .table = &sqlite};

int as_sqlite_load(om_err_t *err)
{
    return om_dl_load(&libsqlite, err);
}

#define sqlite3_bind_double sqlite.sqlite3_bind_double
#define sqlite3_bind_int64 sqlite.sqlite3_bind_int64
#define sqlite3_bind_null sqlite.sqlite3_bind_null
#define sqlite3_bind_text sqlite.sqlite3_bind_text
#define sqlite3_busy_timeout sqlite.sqlite3_busy_timeout
#define sqlite3_changes sqlite.sqlite3_changes
#define sqlite3_clear_bindings sqlite.sqlite3_clear_bindings
#define sqlite3_close sqlite.sqlite3_close
#define sqlite3_close_v2 sqlite.sqlite3_close_v2
#define sqlite3_column_bytes sqlite.sqlite3_column_bytes
#define sqlite3_column_count sqlite.sqlite3_column_count
#define sqlite3_column_int sqlite.sqlite3_column_int
#define sqlite3_column_text sqlite.sqlite3_column_text
#define sqlite3_errmsg sqlite.sqlite3_errmsg
#define sqlite3_errstr sqlite.sqlite3_errstr
#define sqlite3_exec sqlite.sqlite3_exec
#define sqlite3_extended_result_codes sqlite.sqlite3_extended_result_codes
#define sqlite3_finalize sqlite.sqlite3_finalize
#define sqlite3_get_autocommit sqlite.sqlite3_get_autocommit
#define sqlite3_last_insert_rowid sqlite.sqlite3_last_insert_rowid
#define sqlite3_open_v2 sqlite.sqlite3_open_v2
#define sqlite3_prepare_v2 sqlite.sqlite3_prepare_v2
#define sqlite3_prepare_v3 sqlite.sqlite3_prepare_v3
#define sqlite3_reset sqlite.sqlite3_reset
#define sqlite3_step sqlite.sqlite3_step

struct as_conn {
    sqlite3 *db;
    sqlite3_stmt *ins_exec, *ins_alarm;
};

/* Version 1: the tables of the original system plus what alarms need. Text columns keep
 * MariaDB's declared sizes for documentation (SQLite does not enforce them; the exporter cuts
 * every value to its size). Times are UTC text "YYYY-MM-DD HH:MM:SS.ffffff", which SQLite's
 * date functions and string comparison both order right. */
static const char *const migration_1[] = {
    "CREATE TABLE process_executions ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " host_name VARCHAR(255), platform_type VARCHAR(50), group_name VARCHAR(255),"
    " process_name VARCHAR(255), script_name VARCHAR(255),"
    " success VARCHAR(10) NOT NULL, error_message TEXT, error_type VARCHAR(255),"
    " stack_trace TEXT,"
    " source_system_type VARCHAR(100), source_system_name VARCHAR(255),"
    " source_endpoint VARCHAR(1024), source_object_name VARCHAR(512), source_count BIGINT,"
    " target_system_type VARCHAR(100), target_system_name VARCHAR(255),"
    " target_endpoint VARCHAR(1024), target_object_name VARCHAR(512), target_count BIGINT,"
    " start_time DATETIME, end_time DATETIME, duration_seconds DOUBLE,"
    " created_at DATETIME NOT NULL,"
    " trace_id VARCHAR(32) NOT NULL, span_id VARCHAR(16) NOT NULL,"
    " UNIQUE (trace_id, span_id))",
    "CREATE INDEX ix_process_executions_end_time ON process_executions (end_time)",
    "CREATE INDEX ix_process_executions_group_process ON process_executions"
    " (group_name, process_name)",
    "CREATE TABLE alarms ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " process_execution_id INTEGER NOT NULL UNIQUE REFERENCES process_executions (id),"
    " platform_type VARCHAR(50), group_name VARCHAR(255), process_name VARCHAR(255),"
    " end_time DATETIME,"
    " state VARCHAR(16) NOT NULL DEFAULT 'open',"
    " notify_attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at DATETIME,"
    " last_error TEXT, notified_at DATETIME, created_at DATETIME NOT NULL)",
    "CREATE INDEX ix_alarms_state ON alarms (state)",
    "CREATE TABLE alert_history ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " process_execution_id INTEGER NOT NULL UNIQUE REFERENCES process_executions (id),"
    " platform_type VARCHAR(50), group_name VARCHAR(255), process_name VARCHAR(255),"
    " end_time DATETIME, alert_sent_at DATETIME NOT NULL)",
    NULL,
};
/* Version 2: what notifying needs (alarmstore.h, "Alarms"): which notifiers are done with an
 * alarm, when a digest reported it, and an index to find a (group, process)'s last
 * notification. */
static const char *const migration_2[] = {
    "ALTER TABLE alarms ADD COLUMN notifiers_done INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE alarms ADD COLUMN digested_at DATETIME",
    "CREATE INDEX ix_alert_history_sent ON alert_history (alert_sent_at)",
    NULL,
};
static const char *const *const migrations[] = {migration_1, migration_2};

static int code_of(int src)
{
    switch (src & 0xff) {
    case SQLITE_CONSTRAINT:
    case SQLITE_MISMATCH:
    case SQLITE_TOOBIG:
    case SQLITE_RANGE:
        return OM_EINVAL;
    default:
        return OM_EAGAIN;
    }
}

static int fail(as_conn_t *c, int src, const char *what, om_err_t *err)
{
    int code = code_of(src);
    om_err_set(err, code, "sqlite: %s: %s", what,
               c != NULL && c->db != NULL ? sqlite3_errmsg(c->db) : sqlite3_errstr(src));
    return code;
}

static int sq_open(const as_url_t *u, const exp_as_cfg_t *cfg, uint64_t timeout_ms, as_conn_t **out,
                   om_err_t *err)
{
    (void)cfg;
    int rc = as_sqlite_load(err);
    if (rc != 0) {
        return rc;
    }
    as_conn_t *c = om_calloc(1, sizeof *c);
    if (c == NULL) {
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    int src = sqlite3_open_v2(
        u->path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (src != SQLITE_OK) {
        char what[300];
        snprintf(what, sizeof what, "cannot open %s", u->path);
        fail(c, src, what, err);
        sqlite3_close(c->db);
        om_free(c);
        return OM_EAGAIN;
    }
    sqlite3_extended_result_codes(c->db, 1);
    sqlite3_busy_timeout(c->db, timeout_ms > 0 && timeout_ms < 3600000 ? (int)timeout_ms : 5000);
    *out = c;
    /* WAL may be refused (a file system without shared memory): the default journal works. */
    sqlite3_exec(c->db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL);
    src =
        sqlite3_exec(c->db, "PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON", NULL, NULL, NULL);
    return src == SQLITE_OK ? 0 : fail(c, src, "setting up the connection", err);
}

static int sq_exec(as_conn_t *c, const char *sql, om_err_t *err)
{
    int src = sqlite3_exec(c->db, sql, NULL, NULL, NULL);
    if (src != SQLITE_OK) {
        char what[160];
        snprintf(what, sizeof what, "%.120s", sql);
        int code = fail(c, src, what, err);
        /* A statement of ours failing is never the data's fault. */
        return code == OM_EINVAL ? OM_EIO : code;
    }
    return 0;
}

static int sq_schema_version(as_conn_t *c, int *version, om_err_t *err)
{
    sqlite3_stmt *st = NULL;
    int src = sqlite3_prepare_v2(c->db, "SELECT MAX(version) FROM schema_version", -1, &st, NULL);
    if (src != SQLITE_OK) {
        return fail(c, src, "reading schema_version", err);
    }
    src = sqlite3_step(st);
    *version = src == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
    sqlite3_finalize(st);
    return src == SQLITE_ROW || src == SQLITE_DONE ? 0
                                                   : fail(c, src, "reading schema_version", err);
}

static int sq_prepare(as_conn_t *c, om_err_t *err)
{
    om_strbuf_t sb;
    om_strbuf_init(&sb, 0);
    om_strbuf_puts(&sb, "INSERT INTO process_executions (");
    for (int i = 0; i < AS_COL_N_TEXT; i++) {
        om_strbuf_printf(&sb, "%s, ", as_text_cols[i].name);
    }
    om_strbuf_puts(&sb, "success, source_count, target_count, start_time, end_time, "
                        "duration_seconds, created_at, trace_id, span_id) VALUES (");
    for (int i = 0; i < AS_COL_N_TEXT + 9; i++) {
        om_strbuf_puts(&sb, i ? ", ?" : "?");
    }
    om_strbuf_puts(&sb, ") ON CONFLICT (trace_id, span_id) DO NOTHING");
    if (sb.failed) {
        om_strbuf_free(&sb);
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    int src = sqlite3_prepare_v3(c->db, om_strbuf_str(&sb), -1, SQLITE_PREPARE_PERSISTENT,
                                 &c->ins_exec, NULL);
    om_strbuf_free(&sb);
    if (src != SQLITE_OK) {
        return fail(c, src, "preparing the insert", err);
    }
    src = sqlite3_prepare_v3(c->db,
                             "INSERT INTO alarms (process_execution_id, platform_type, group_name,"
                             " process_name, end_time, state, created_at)"
                             " VALUES (?, ?, ?, ?, ?, 'open', ?)",
                             -1, SQLITE_PREPARE_PERSISTENT, &c->ins_alarm, NULL);
    return src == SQLITE_OK ? 0 : fail(c, src, "preparing the alarm insert", err);
}

static int sq_begin(as_conn_t *c, om_err_t *err)
{
    /* IMMEDIATE takes the write lock now: a busy database fails here, before any work. */
    return sq_exec(c, "BEGIN IMMEDIATE", err);
}

static int sq_commit(as_conn_t *c, om_err_t *err)
{
    return sq_exec(c, "COMMIT", err);
}

static void sq_rollback(as_conn_t *c)
{
    if (!sqlite3_get_autocommit(c->db)) {
        sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
    }
}

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
    if (s != NULL) {
        sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
    } else {
        sqlite3_bind_null(st, i);
    }
}

static void bind_time(sqlite3_stmt *st, int i, bool has, int64_t ns)
{
    if (has) {
        char t[32];
        as_format_time(ns, t);
        sqlite3_bind_text(st, i, t, -1, SQLITE_TRANSIENT);
    } else {
        sqlite3_bind_null(st, i);
    }
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * OM_NS_PER_S + ts.tv_nsec;
}

static int step_done(as_conn_t *c, sqlite3_stmt *st, const char *what, om_err_t *err)
{
    int src = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return src == SQLITE_DONE ? 0 : fail(c, src, what, err);
}

static int sq_insert_row(as_conn_t *c, const as_row_t *r, om_err_t *err)
{
    sqlite3_stmt *st = c->ins_exec;
    int i = 1;
    for (int k = 0; k < AS_COL_N_TEXT; k++) {
        bind_text(st, i++, r->text[k]);
    }
    bind_text(st, i++, r->failed ? "FAILED" : "SUCCESS");
    if (r->has_source_count) {
        sqlite3_bind_int64(st, i, r->source_count);
    }
    i++;
    if (r->has_target_count) {
        sqlite3_bind_int64(st, i, r->target_count);
    }
    i++;
    bind_time(st, i++, r->has_start, r->start_ns);
    bind_time(st, i++, r->has_end, r->end_ns);
    if (r->has_duration) {
        sqlite3_bind_double(st, i, r->duration_seconds);
    }
    i++;
    int64_t now = now_ns();
    bind_time(st, i++, true, now);
    bind_text(st, i++, r->trace_id);
    bind_text(st, i++, r->span_id);
    int rc = step_done(c, st, "inserting a run", err);
    if (rc != 0) {
        return rc == OM_EINVAL ? AS_ROW_REFUSED : rc;
    }
    if (sqlite3_changes(c->db) == 0) {
        return AS_ROW_DUPLICATE;
    }
    if (!r->failed) {
        return AS_ROW_INSERTED;
    }
    st = c->ins_alarm;
    sqlite3_bind_int64(st, 1, sqlite3_last_insert_rowid(c->db));
    bind_text(st, 2, r->text[AS_COL_PLATFORM_TYPE]);
    bind_text(st, 3, r->text[AS_COL_GROUP_NAME]);
    bind_text(st, 4, r->text[AS_COL_PROCESS_NAME]);
    bind_time(st, 5, r->has_end, r->end_ns);
    bind_time(st, 6, true, now);
    rc = step_done(c, st, "opening an alarm", err);
    /* The run is stored; an alarm the database refuses would refuse every time: the batch
     * fails only for what may pass later. */
    return rc == OM_EINVAL ? AS_ROW_REFUSED : rc != 0 ? rc : AS_ROW_INSERTED;
}

static int sq_query(as_conn_t *c, const char *sql, const char *const *params, size_t n_params,
                    as_row_fn row, void *arg, om_err_t *err)
{
    sqlite3_stmt *st = NULL;
    int src = sqlite3_prepare_v2(c->db, sql, -1, &st, NULL);
    if (src != SQLITE_OK) {
        int code = fail(c, src, "preparing a query", err);
        return code == OM_EINVAL ? OM_EIO : code;
    }
    for (size_t i = 0; i < n_params; i++) {
        bind_text(st, (int)i + 1, params[i]);
    }
    const char *cols[AS_QUERY_MAX_COLS];
    int rc = 0;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        int n = sqlite3_column_count(st);
        n = n < AS_QUERY_MAX_COLS ? n : AS_QUERY_MAX_COLS;
        for (int i = 0; i < n; i++) {
            cols[i] = (const char *)sqlite3_column_text(st, i);
        }
        if (row != NULL && (rc = row(arg, cols, (size_t)n)) != 0) {
            break;
        }
    }
    if (rc == 0 && src != SQLITE_DONE) {
        rc = fail(c, src, "a query", err);
        rc = rc == OM_EINVAL ? OM_EIO : rc;
    } else if (rc != 0) {
        om_err_set(err, rc, "out of memory reading a query");
    }
    sqlite3_finalize(st);
    return rc;
}

static void sq_close(as_conn_t *c)
{
    sqlite3_finalize(c->ins_exec);
    sqlite3_finalize(c->ins_alarm);
    sqlite3_close_v2(c->db);
    om_free(c);
}

const as_backend_t as_sqlite_backend = {
    .name = "sqlite",
    .open = sq_open,
    .exec = sq_exec,
    .schema_version = sq_schema_version,
    .migrations = migrations,
    .n_migrations = (int)(sizeof migrations / sizeof migrations[0]),
    .prepare = sq_prepare,
    .begin = sq_begin,
    .insert_row = sq_insert_row,
    .query = sq_query,
    .insert_ignore = "INSERT OR IGNORE",
    .commit = sq_commit,
    .rollback = sq_rollback,
    .close = sq_close,
};

/* ------------------------------------------------------------------------------------------ */
/* The query API's reader: a second connection, query_only, on the API's own thread. In WAL mode
 * (which the writer sets) a reader sees the last committed transaction and neither waits for
 * the writer nor makes it wait; busy_timeout covers the short moments where SQLite still takes
 * a lock (a checkpoint's restart, the WAL index being rebuilt). The file and the schema are
 * the writer's to create: until they exist the reader reports the database as unavailable. */

struct as_reader {
    sqlite3 *db;
};

static int rd_fail(sqlite3 *db, int src, const char *what, om_err_t *err)
{
    om_err_set(err, OM_EAGAIN, "sqlite: %s: %s", what,
               db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(src));
    return OM_EAGAIN;
}

static int rd_open(const as_url_t *u, const exp_as_cfg_t *cfg, uint64_t timeout_ms,
                   as_reader_t **out, om_err_t *err)
{
    (void)cfg;
    int rc = as_sqlite_load(err);
    if (rc != 0) {
        return rc;
    }
    as_reader_t *r = om_calloc(1, sizeof *r);
    if (r == NULL) {
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    /* Read-write without CREATE, then query_only: a read-only connection could not create the
     * WAL's shared-memory file when the writer's connection is closed (after an error). */
    int src = sqlite3_open_v2(u->path, &r->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (src != SQLITE_OK) {
        char what[300];
        snprintf(what, sizeof what, "cannot open %s", u->path);
        rd_fail(r->db, src, what, err);
        sqlite3_close(r->db);
        om_free(r);
        return OM_EAGAIN;
    }
    sqlite3_busy_timeout(r->db, timeout_ms > 0 && timeout_ms < 3600000 ? (int)timeout_ms : 5000);
    src = sqlite3_exec(r->db, "PRAGMA query_only = ON", NULL, NULL, NULL);
    if (src != SQLITE_OK) {
        rd_fail(r->db, src, "setting up the reader", err);
        sqlite3_close_v2(r->db);
        om_free(r);
        return OM_EAGAIN;
    }
    *out = r;
    return 0;
}

static int rd_query(as_reader_t *r, const as_sql_t *s, as_result_fn fn, void *arg, om_err_t *err)
{
    sqlite3_stmt *st = NULL;
    int src = sqlite3_prepare_v2(r->db, om_strbuf_str(&s->sql), -1, &st, NULL);
    if (src != SQLITE_OK) {
        /* "no such table": the writer has not made the schema yet. */
        return rd_fail(r->db, src, "preparing a query", err);
    }
    for (size_t i = 0; i < s->n_binds; i++) {
        if (s->binds[i].text != NULL) {
            sqlite3_bind_text(st, (int)i + 1, s->binds[i].text, -1, SQLITE_STATIC);
        } else {
            sqlite3_bind_int64(st, (int)i + 1, s->binds[i].i);
        }
    }
    int n = sqlite3_column_count(st);
    const char *vals[32];
    size_t lens[32];
    int rc = 0;
    if (n > 32) {
        sqlite3_finalize(st);
        om_err_set(err, OM_EIO, "sqlite: too many columns");
        return OM_EIO;
    }
    while (rc == 0 && (src = sqlite3_step(st)) == SQLITE_ROW) {
        for (int i = 0; i < n; i++) {
            vals[i] = (const char *)sqlite3_column_text(st, i);
            lens[i] = (size_t)sqlite3_column_bytes(st, i);
        }
        rc = fn(arg, vals, lens, (size_t)n);
    }
    if (rc == 0 && src != SQLITE_DONE) {
        rc = rd_fail(r->db, src, "reading", err);
    } else if (rc != 0 && err->code == 0) {
        om_err_set(err, rc, "%s", om_strerror(rc));
    }
    sqlite3_finalize(st);
    return rc;
}

static void rd_close(as_reader_t *r)
{
    sqlite3_close_v2(r->db);
    om_free(r);
}

const as_reader_backend_t as_sqlite_reader = {
    .open = rd_open,
    .query = rd_query,
    .close = rd_close,
};
