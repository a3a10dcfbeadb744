/* alarmstore_mariadb.c: the MariaDB / MySQL backend (libmariadb, MariaDB Connector/C). One
 * connection, owned by the exporter's database thread.
 *
 * The session is set to time_zone '+00:00' (every DATETIME we write and NOW() are UTC, the
 * original system's 9-hour skew came from naive local times) and a strict sql_mode (a value
 * the table cannot hold is an error for that row, never silently changed: we cut text to the
 * column sizes before, so in practice nothing is refused). Character set utf8mb4.
 * Rows go 64 to an INSERT (insert_chunk): over a socket the round trip, not the insert, is
 * what a row costs; a chunk the server refuses is stored again row by row, to skip the bad
 * row, and the alarms of a chunk's failed runs are opened by one INSERT ... SELECT.
 * `timeout` bounds connecting and each read and write on the socket (whole seconds, at least
 * one: the client library counts seconds).
 *
 * Migrations: MariaDB commits DDL implicitly, so a migration is not atomic as in SQLite; its
 * statements are written to be run again (IF NOT EXISTS), and the version is written last, so
 * a migration cut short is completed at the next start.
 *
 * Errors: client errors (CR_*: cannot connect, server gone, lost connection), lock wait
 * timeouts and deadlocks (InnoDB rolls the whole transaction back), too many connections,
 * access denied, unknown database, a read-only server: retryable (the exporter reopens the
 * connection and the helper retries the batch); so are a missing table or column and missing
 * privileges (an operator's to fix). Every other server error is about the row's data (too
 * long, out of range, bad string, NULL where not allowed, a check or foreign key, a trigger's
 * SIGNAL): that row is refused for good; InnoDB rolls back only the failed statement, so the
 * transaction goes on (see transient()).
 *
 * TLS (the exporter's `tls` section, see set_tls): required when configured (a server without
 * it is a connection error, never a silent fallback to plaintext), the server's certificate
 * checked against ca_file (or the system's CAs) and the URL's host unless
 * insecure_skip_verify; a client certificate with cert_file/key_file. What libmariadb cannot
 * do is refused by alarmstore_config.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mysql.h>

#include "alarmstore.h"

/* MariaDB Connector/C (libmariadb) is loaded on first use (om.h, "Libraries loaded on first use"):
 * a collector without this backend does not map it. The calls below keep the library's names, which
 * the defines after the table turn into calls through it; as_mariadb_load fills it before the
 * first one (the backend's opens and the exporter's config validation call it). */
#define AS_MARIADB_FUNCTIONS(X)                                                                    \
    X(mysql_close)                                                                                 \
    X(mysql_errno)                                                                                 \
    X(mysql_error)                                                                                 \
    X(mysql_fetch_fields)                                                                          \
    X(mysql_fetch_row)                                                                             \
    X(mysql_field_count)                                                                           \
    X(mysql_free_result)                                                                           \
    X(mysql_init)                                                                                  \
    X(mysql_num_fields)                                                                            \
    X(mysql_options)                                                                               \
    X(mysql_query)                                                                                 \
    X(mysql_real_connect)                                                                          \
    X(mysql_real_escape_string)                                                                    \
    X(mysql_real_query)                                                                            \
    X(mysql_rollback)                                                                              \
    X(mysql_stmt_affected_rows)                                                                    \
    X(mysql_stmt_attr_set)                                                                         \
    X(mysql_stmt_bind_param)                                                                       \
    X(mysql_stmt_bind_result)                                                                      \
    X(mysql_stmt_close)                                                                            \
    X(mysql_stmt_errno)                                                                            \
    X(mysql_stmt_error)                                                                            \
    X(mysql_stmt_execute)                                                                          \
    X(mysql_stmt_fetch)                                                                            \
    X(mysql_stmt_init)                                                                             \
    X(mysql_stmt_insert_id)                                                                        \
    X(mysql_stmt_prepare)                                                                          \
    X(mysql_stmt_result_metadata)                                                                  \
    X(mysql_stmt_store_result)                                                                     \
    X(mysql_store_result)
typedef struct as_mariadb_api {
#define X(f) __typeof__(f) *f;
    AS_MARIADB_FUNCTIONS(X)
#undef X
} as_mariadb_api_t;
static as_mariadb_api_t mariadb;
static const om_dl_sym_t mariadb_syms[] = {
#define X(f) OM_DL_SYM(as_mariadb_api_t, f, #f),
    AS_MARIADB_FUNCTIONS(X)
#undef X
};
static om_dl_lib_t libmariadb = {.soname = "libmariadb.so.3",
                                 .package = "libmariadb3",
                                 .syms = mariadb_syms,
                                 .n_syms = sizeof mariadb_syms / sizeof mariadb_syms[0],
                                 .table = &mariadb};

int as_mariadb_load(om_err_t *err)
{
    return om_dl_load(&libmariadb, err);
}

#define mysql_close mariadb.mysql_close
#define mysql_errno mariadb.mysql_errno
#define mysql_error mariadb.mysql_error
#define mysql_fetch_fields mariadb.mysql_fetch_fields
#define mysql_fetch_row mariadb.mysql_fetch_row
#define mysql_field_count mariadb.mysql_field_count
#define mysql_free_result mariadb.mysql_free_result
#define mysql_init mariadb.mysql_init
#define mysql_num_fields mariadb.mysql_num_fields
#define mysql_options mariadb.mysql_options
#define mysql_query mariadb.mysql_query
#define mysql_real_connect mariadb.mysql_real_connect
#define mysql_real_escape_string mariadb.mysql_real_escape_string
#define mysql_real_query mariadb.mysql_real_query
#define mysql_rollback mariadb.mysql_rollback
#define mysql_stmt_affected_rows mariadb.mysql_stmt_affected_rows
#define mysql_stmt_attr_set mariadb.mysql_stmt_attr_set
#define mysql_stmt_bind_param mariadb.mysql_stmt_bind_param
#define mysql_stmt_bind_result mariadb.mysql_stmt_bind_result
#define mysql_stmt_close mariadb.mysql_stmt_close
#define mysql_stmt_errno mariadb.mysql_stmt_errno
#define mysql_stmt_error mariadb.mysql_stmt_error
#define mysql_stmt_execute mariadb.mysql_stmt_execute
#define mysql_stmt_fetch mariadb.mysql_stmt_fetch
#define mysql_stmt_init mariadb.mysql_stmt_init
#define mysql_stmt_insert_id mariadb.mysql_stmt_insert_id
#define mysql_stmt_prepare mariadb.mysql_stmt_prepare
#define mysql_stmt_result_metadata mariadb.mysql_stmt_result_metadata
#define mysql_stmt_store_result mariadb.mysql_stmt_store_result
#define mysql_store_result mariadb.mysql_store_result

#define N_PARAMS (AS_COL_N_TEXT + 9)

/* Rows per multi-row INSERT: one round trip for 64 rows instead of 64 (a server a network
 * hop away makes the round trip, not the insert, what a row costs). */
#define CHUNK 64

/* The parameters of one row: binds and the storage they point to. */
typedef struct params {
    MYSQL_BIND b[N_PARAMS];
    unsigned long len[N_PARAMS];
    my_bool null[N_PARAMS];
    char times[3][32];
    long long counts[2];
    double duration;
} params_t;

struct as_conn {
    MYSQL *my;
    MYSQL_STMT *ins_exec, *ins_alarm;
    MYSQL_STMT *ins_chunk, *ins_alarm_by_ids; /* CHUNK rows; an alarm found by its ids */
    params_t *chunk_params;                   /* CHUNK of them */
};

#define TABLE_OPTS " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci"

static const char *const migration_1[] = {
    "CREATE TABLE IF NOT EXISTS process_executions ("
    " id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
    " host_name VARCHAR(255) NULL, platform_type VARCHAR(50) NULL, group_name VARCHAR(255) NULL,"
    " process_name VARCHAR(255) NULL, script_name VARCHAR(255) NULL,"
    " success VARCHAR(10) NOT NULL, error_message TEXT NULL, error_type VARCHAR(255) NULL,"
    " stack_trace TEXT NULL,"
    " source_system_type VARCHAR(100) NULL, source_system_name VARCHAR(255) NULL,"
    " source_endpoint VARCHAR(1024) NULL, source_object_name VARCHAR(512) NULL,"
    " source_count BIGINT NULL,"
    " target_system_type VARCHAR(100) NULL, target_system_name VARCHAR(255) NULL,"
    " target_endpoint VARCHAR(1024) NULL, target_object_name VARCHAR(512) NULL,"
    " target_count BIGINT NULL,"
    " start_time DATETIME(6) NULL, end_time DATETIME(6) NULL, duration_seconds DOUBLE NULL,"
    " created_at DATETIME(6) NOT NULL,"
    " trace_id VARCHAR(32) NOT NULL, span_id VARCHAR(16) NOT NULL,"
    " UNIQUE KEY uq_process_executions_trace_span (trace_id, span_id),"
    " KEY ix_process_executions_end_time (end_time),"
    " KEY ix_process_executions_group_process (group_name, process_name))" TABLE_OPTS,
    "CREATE TABLE IF NOT EXISTS alarms ("
    " id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
    " process_execution_id BIGINT NOT NULL,"
    " platform_type VARCHAR(50) NULL, group_name VARCHAR(255) NULL,"
    " process_name VARCHAR(255) NULL, end_time DATETIME(6) NULL,"
    " state VARCHAR(16) NOT NULL DEFAULT 'open',"
    " notify_attempts INT NOT NULL DEFAULT 0, next_attempt_at DATETIME(6) NULL,"
    " last_error TEXT NULL, notified_at DATETIME(6) NULL, created_at DATETIME(6) NOT NULL,"
    " UNIQUE KEY uq_alarms_execution (process_execution_id),"
    " KEY ix_alarms_state (state),"
    " CONSTRAINT fk_alarms_execution FOREIGN KEY (process_execution_id)"
    " REFERENCES process_executions (id))" TABLE_OPTS,
    "CREATE TABLE IF NOT EXISTS alert_history ("
    " id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
    " process_execution_id BIGINT NOT NULL,"
    " platform_type VARCHAR(50) NULL, group_name VARCHAR(255) NULL,"
    " process_name VARCHAR(255) NULL, end_time DATETIME(6) NULL,"
    " alert_sent_at DATETIME(6) NOT NULL,"
    " UNIQUE KEY uq_alert_history_execution (process_execution_id),"
    " CONSTRAINT fk_alert_history_execution FOREIGN KEY (process_execution_id)"
    " REFERENCES process_executions (id))" TABLE_OPTS,
    NULL,
};
/* Version 2: what notifying needs (see alarmstore_sqlite.c); rerunnable. */
static const char *const migration_2[] = {
    "ALTER TABLE alarms ADD COLUMN IF NOT EXISTS notifiers_done INT NOT NULL DEFAULT 0",
    "ALTER TABLE alarms ADD COLUMN IF NOT EXISTS digested_at DATETIME(6) NULL",
    "CREATE INDEX IF NOT EXISTS ix_alert_history_sent ON alert_history (alert_sent_at)",
    NULL,
};
static const char *const *const migrations[] = {migration_1, migration_2};

/* Whether an error may pass later: the client's own (CR_*: no server, connection lost,
 * timeouts) and the server's that are about the server, the session or the schema, not the
 * row: locks, deadlocks, shutdown, connections, privileges, a read-only or full server, a
 * missing table or column, interrupted statements. Every other server error is about the
 * statement's data (too long, out of range, a bad string, NULL where not allowed, a check,
 * a foreign key, a trigger's SIGNAL): the row is refused for good. */
static bool transient(unsigned e)
{
    if (e >= 2000 && e < 3000) {
        return true; /* CR_* */
    }
    switch (e) {
    case 1021: /* ER_DISK_FULL */
    case 1030: /* ER_GET_ERRNO (storage engine) */
    case 1036: /* ER_OPEN_AS_READONLY */
    case 1040: /* ER_CON_COUNT_ERROR */
    case 1044: /* ER_DBACCESS_DENIED_ERROR */
    case 1045: /* ER_ACCESS_DENIED_ERROR */
    case 1047: /* ER_UNKNOWN_COM_ERROR */
    case 1049: /* ER_BAD_DB_ERROR */
    case 1053: /* ER_SERVER_SHUTDOWN */
    case 1054: /* ER_BAD_FIELD_ERROR: the schema is not what we know */
    case 1114: /* ER_RECORD_FILE_FULL */
    case 1142: /* ER_TABLEACCESS_DENIED_ERROR */
    case 1146: /* ER_NO_SUCH_TABLE */
    case 1180: /* ER_ERROR_DURING_COMMIT */
    case 1203: /* ER_TOO_MANY_USER_CONNECTIONS */
    case 1205: /* ER_LOCK_WAIT_TIMEOUT */
    case 1206: /* ER_LOCK_TABLE_FULL */
    case 1213: /* ER_LOCK_DEADLOCK */
    case 1290: /* ER_OPTION_PREVENTS_STATEMENT (read-only) */
    case 1317: /* ER_QUERY_INTERRUPTED */
    case 1927: /* ER_CONNECTION_KILLED */
    case 1969: /* ER_STATEMENT_TIMEOUT */
    case 3024: /* max_execution_time */
    case 4031: /* ER_CLIENT_INTERACTION_TIMEOUT */
        return true;
    default:
        return e < 1000; /* not a server error number */
    }
}

static bool data_error(unsigned e)
{
    return !transient(e);
}

static int fail_my(MYSQL *my, const char *what, om_err_t *err)
{
    unsigned e = mysql_errno(my);
    int code = data_error(e) ? OM_EINVAL : OM_EAGAIN;
    om_err_set(err, code, "mariadb: %s: %s (%u)", what, mysql_error(my), e);
    return code;
}

static int fail_stmt(MYSQL_STMT *st, const char *what, om_err_t *err)
{
    unsigned e = mysql_stmt_errno(st);
    int code = data_error(e) ? OM_EINVAL : OM_EAGAIN;
    om_err_set(err, code, "mariadb: %s: %s (%u)", what, mysql_stmt_error(st), e);
    return code;
}

static int my_exec(as_conn_t *c, const char *sql, om_err_t *err)
{
    if (mysql_query(c->my, sql) != 0) {
        char what[160];
        snprintf(what, sizeof what, "%.120s", sql);
        int code = fail_my(c->my, what, err);
        return code == OM_EINVAL ? OM_EIO : code;
    }
    return 0;
}

/* libmariadb's list of protocol versions from min_version..max_version ("" for its default). */
static void tls_versions(const om_tls_cfg_t *t, char *out, size_t n)
{
    static const char *const names[] = {[OM_TLS_V1_0] = "TLSv1",
                                        [OM_TLS_V1_1] = "TLSv1.1",
                                        [OM_TLS_V1_2] = "TLSv1.2",
                                        [OM_TLS_V1_3] = "TLSv1.3"};
    out[0] = '\0';
    if (t->min_version == OM_TLS_V_DEFAULT && t->max_version == OM_TLS_V_DEFAULT) {
        return;
    }
    /* otelcol's default minimum is TLS 1.2. */
    int lo = t->min_version != OM_TLS_V_DEFAULT ? t->min_version : OM_TLS_V1_2;
    int hi = t->max_version != OM_TLS_V_DEFAULT ? t->max_version : OM_TLS_V1_3;
    size_t w = 0;
    for (int v = lo; v <= hi && w < n; v++) {
        w += (size_t)snprintf(out + w, n - w, "%s%s", w > 0 ? "," : "", names[v]);
    }
}

/* The tls section as libmariadb options. Returns 0 or OM_ENOMEM. */
static int set_tls(MYSQL *my, const om_tls_client_cfg_t *tls)
{
    const om_tls_cfg_t *t = &tls->common;
    my_bool yes = 1, verify = !tls->insecure_skip_verify;
    mysql_options(my, MYSQL_OPT_SSL_ENFORCE, &yes);
    mysql_options(my, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &verify);
    if (t->ca_file != NULL && t->ca_file[0] != '\0') {
        mysql_options(my, MYSQL_OPT_SSL_CA, t->ca_file);
    }
    if (t->cert_file != NULL && t->cert_file[0] != '\0') {
        mysql_options(my, MYSQL_OPT_SSL_CERT, t->cert_file);
        mysql_options(my, MYSQL_OPT_SSL_KEY, t->key_file);
    }
    char versions[64];
    tls_versions(t, versions, sizeof versions);
    if (versions[0] != '\0') {
        mysql_options(my, MARIADB_OPT_TLS_VERSION, versions);
    }
    if (t->cipher_suites.n > 0) {
        char *ciphers = om_tls_client_cipher_list(tls);
        if (ciphers == NULL) {
            return OM_ENOMEM;
        }
        mysql_options(my, MYSQL_OPT_SSL_CIPHER, ciphers);
        om_free(ciphers); /* mysql_options copies strings */
    }
    return 0;
}

static int my_open(const as_url_t *u, const exp_as_cfg_t *cfg, uint64_t timeout_ms, as_conn_t **out,
                   om_err_t *err)
{
    int rc = as_mariadb_load(err);
    if (rc != 0) {
        return rc;
    }
    as_conn_t *c = om_calloc(1, sizeof *c);
    MYSQL *my = c != NULL ? mysql_init(NULL) : NULL;
    if (my == NULL) {
        om_free(c);
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    c->my = my;
    unsigned secs = (unsigned)((timeout_ms + 999) / 1000);
    secs = secs == 0 ? 30 : secs;
    mysql_options(my, MYSQL_OPT_CONNECT_TIMEOUT, &secs);
    mysql_options(my, MYSQL_OPT_READ_TIMEOUT, &secs);
    mysql_options(my, MYSQL_OPT_WRITE_TIMEOUT, &secs);
    mysql_options(my, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    *out = c;
    if (cfg->has_tls && !cfg->tls.insecure && set_tls(my, &cfg->tls) != 0) {
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    if (mysql_real_connect(my, u->host, u->user, u->password, u->dbname,
                           u->socket != NULL ? 0 : (unsigned)u->port, u->socket, 0) == NULL) {
        char what[300];
        snprintf(what, sizeof what, "cannot connect to %s:%d as %s", u->host, u->port,
                 u->user != NULL ? u->user : "(no user)");
        fail_my(my, what, err);
        return OM_EAGAIN;
    }
    rc = my_exec(c, "SET time_zone = '+00:00'", err);
    rc = rc ? rc
            : my_exec(c, "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'", err);
    return rc ? rc : my_exec(c, "SET autocommit = 1", err);
}

static int my_schema_version(as_conn_t *c, int *version, om_err_t *err)
{
    *version = 0;
    if (mysql_query(c->my, "SELECT MAX(version) FROM schema_version") != 0) {
        return fail_my(c->my, "reading schema_version", err);
    }
    MYSQL_RES *res = mysql_store_result(c->my);
    if (res == NULL) {
        return fail_my(c->my, "reading schema_version", err);
    }
    MYSQL_ROW row = mysql_fetch_row(res);
    if (row != NULL && row[0] != NULL) {
        *version = (int)strtol(row[0], NULL, 10);
    }
    mysql_free_result(res);
    return 0;
}

static int prepare_one(as_conn_t *c, MYSQL_STMT **st, const char *sql, om_err_t *err)
{
    *st = mysql_stmt_init(c->my);
    if (*st == NULL) {
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    if (mysql_stmt_prepare(*st, sql, strlen(sql)) != 0) {
        int code = fail_stmt(*st, "preparing a statement", err);
        return code == OM_EINVAL ? OM_EIO : code;
    }
    return 0;
}

/* The columns of the insert, "(host_name, ..., span_id)". */
static void insert_head(om_strbuf_t *sb)
{
    om_strbuf_puts(sb, "INSERT INTO process_executions (");
    for (int i = 0; i < AS_COL_N_TEXT; i++) {
        om_strbuf_printf(sb, "%s, ", as_text_cols[i].name);
    }
    om_strbuf_puts(sb, "success, source_count, target_count, start_time, end_time, "
                       "duration_seconds, created_at, trace_id, span_id) VALUES ");
}

static int prepare_chunk(as_conn_t *c, om_err_t *err)
{
    c->chunk_params = om_calloc(CHUNK, sizeof *c->chunk_params);
    om_strbuf_t sb;
    om_strbuf_init(&sb, 0);
    insert_head(&sb);
    for (int r = 0; r < CHUNK; r++) {
        om_strbuf_puts(&sb, r ? ", (" : "(");
        for (int i = 0; i < N_PARAMS; i++) {
            om_strbuf_puts(&sb, i ? ", ?" : "?");
        }
        om_strbuf_puts(&sb, ")");
    }
    om_strbuf_puts(&sb, " ON DUPLICATE KEY UPDATE id = id");
    int rc = OM_ENOMEM;
    if (sb.failed || c->chunk_params == NULL) {
        om_err_set(err, OM_ENOMEM, "out of memory");
    } else {
        rc = prepare_one(c, &c->ins_chunk, om_strbuf_str(&sb), err);
    }
    om_strbuf_reset(&sb);
    om_strbuf_puts(&sb, "INSERT INTO alarms (process_execution_id, platform_type, group_name,"
                        " process_name, end_time, state, created_at)"
                        " SELECT id, platform_type, group_name, process_name, end_time, 'open', ?"
                        " FROM process_executions WHERE success = 'FAILED' AND (trace_id, span_id)"
                        " IN (");
    for (int r = 0; r < CHUNK; r++) {
        om_strbuf_puts(&sb, r ? ", (?, ?)" : "(?, ?)");
    }
    om_strbuf_puts(&sb, ") ON DUPLICATE KEY UPDATE process_execution_id = process_execution_id");
    if (rc == 0) {
        rc = sb.failed ? OM_ENOMEM : prepare_one(c, &c->ins_alarm_by_ids, om_strbuf_str(&sb), err);
    }
    om_strbuf_free(&sb);
    return rc;
}

static int my_prepare(as_conn_t *c, om_err_t *err)
{
    om_strbuf_t sb;
    om_strbuf_init(&sb, 0);
    om_strbuf_puts(&sb, "INSERT INTO process_executions (");
    for (int i = 0; i < AS_COL_N_TEXT; i++) {
        om_strbuf_printf(&sb, "%s, ", as_text_cols[i].name);
    }
    om_strbuf_puts(&sb, "success, source_count, target_count, start_time, end_time, "
                        "duration_seconds, created_at, trace_id, span_id) VALUES (");
    for (int i = 0; i < N_PARAMS; i++) {
        om_strbuf_puts(&sb, i ? ", ?" : "?");
    }
    /* A row already there changes nothing: affected rows 0 tells a duplicate. */
    om_strbuf_puts(&sb, ") ON DUPLICATE KEY UPDATE id = id");
    if (sb.failed) {
        om_strbuf_free(&sb);
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    int rc = prepare_one(c, &c->ins_exec, om_strbuf_str(&sb), err);
    om_strbuf_free(&sb);
    rc = rc ? rc
            : prepare_one(c, &c->ins_alarm,
                          "INSERT INTO alarms (process_execution_id, platform_type, group_name,"
                          " process_name, end_time, state, created_at)"
                          " VALUES (?, ?, ?, ?, ?, 'open', ?)",
                          err);
    return rc ? rc : prepare_chunk(c, err);
}

static int my_begin(as_conn_t *c, om_err_t *err)
{
    return my_exec(c, "START TRANSACTION", err);
}

static int my_commit(as_conn_t *c, om_err_t *err)
{
    return my_exec(c, "COMMIT", err);
}

static void my_rollback(as_conn_t *c)
{
    mysql_rollback(c->my);
}

static void bind_str(params_t *p, int i, const char *s)
{
    p->b[i].buffer_type = MYSQL_TYPE_STRING;
    p->b[i].buffer = (void *)(uintptr_t)(s != NULL ? s : "");
    p->len[i] = s != NULL ? (unsigned long)strlen(s) : 0;
    p->b[i].buffer_length = p->len[i];
    p->b[i].length = &p->len[i];
    p->null[i] = s == NULL;
    p->b[i].is_null = &p->null[i];
}

static void bind_time(params_t *p, int i, int slot, bool has, int64_t ns)
{
    as_format_time(ns, p->times[slot]);
    bind_str(p, i, has ? p->times[slot] : NULL);
}

static void bind_count(params_t *p, int i, int slot, bool has, int64_t v)
{
    p->counts[slot] = v;
    p->b[i].buffer_type = MYSQL_TYPE_LONGLONG;
    p->b[i].buffer = &p->counts[slot];
    p->null[i] = !has;
    p->b[i].is_null = &p->null[i];
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * OM_NS_PER_S + ts.tv_nsec;
}

static int insert_alarm(as_conn_t *c, const as_row_t *r, const char *now, om_err_t *err)
{
    params_t p;
    memset(&p, 0, sizeof p);
    long long id = (long long)mysql_stmt_insert_id(c->ins_exec);
    p.b[0].buffer_type = MYSQL_TYPE_LONGLONG;
    p.b[0].buffer = &id;
    bind_str(&p, 1, r->text[AS_COL_PLATFORM_TYPE]);
    bind_str(&p, 2, r->text[AS_COL_GROUP_NAME]);
    bind_str(&p, 3, r->text[AS_COL_PROCESS_NAME]);
    bind_time(&p, 4, 0, r->has_end, r->end_ns);
    bind_str(&p, 5, now);
    if (mysql_stmt_bind_param(c->ins_alarm, p.b) != 0 || mysql_stmt_execute(c->ins_alarm) != 0) {
        int code = fail_stmt(c->ins_alarm, "opening an alarm", err);
        return code == OM_EINVAL ? AS_ROW_REFUSED : code;
    }
    return AS_ROW_INSERTED;
}

/* The 25 parameters of a row, in the insert's column order; created_at is now. */
static void bind_row(params_t *p, const as_row_t *r, int64_t now)
{
    memset(p, 0, sizeof *p);
    int i = 0;
    for (int k = 0; k < AS_COL_N_TEXT; k++) {
        bind_str(p, i++, r->text[k]);
    }
    bind_str(p, i++, r->failed ? "FAILED" : "SUCCESS");
    bind_count(p, i++, 0, r->has_source_count, r->source_count);
    bind_count(p, i++, 1, r->has_target_count, r->target_count);
    bind_time(p, i++, 0, r->has_start, r->start_ns);
    bind_time(p, i++, 1, r->has_end, r->end_ns);
    p->duration = r->duration_seconds;
    p->b[i].buffer_type = MYSQL_TYPE_DOUBLE;
    p->b[i].buffer = &p->duration;
    p->null[i] = !r->has_duration;
    p->b[i].is_null = &p->null[i];
    i++;
    bind_time(p, i++, 2, true, now);
    bind_str(p, i++, r->trace_id);
    bind_str(p, i++, r->span_id);
}

static int my_insert_row(as_conn_t *c, const as_row_t *r, om_err_t *err)
{
    params_t p;
    bind_row(&p, r, now_ns());
    if (mysql_stmt_bind_param(c->ins_exec, p.b) != 0 || mysql_stmt_execute(c->ins_exec) != 0) {
        int code = fail_stmt(c->ins_exec, "inserting a run", err);
        return code == OM_EINVAL ? AS_ROW_REFUSED : code;
    }
    if (mysql_stmt_affected_rows(c->ins_exec) == 0) {
        return AS_ROW_DUPLICATE;
    }
    return r->failed ? insert_alarm(c, r, p.times[2], err) : AS_ROW_INSERTED;
}

/* The alarms of the failed runs of a chunk, in one statement: the chunk's runs found by
 * their ids, the failed ones taken; a no-op for a run stored (and its alarm opened) before,
 * since process_execution_id is unique. */
static int chunk_alarms(as_conn_t *c, const as_row_t *rows, const char *now, om_err_t *err)
{
    MYSQL_BIND b[1 + 2 * CHUNK];
    unsigned long len[1 + 2 * CHUNK];
    memset(b, 0, sizeof b);
    const char *v[1 + 2 * CHUNK];
    v[0] = now;
    for (size_t k = 0; k < CHUNK; k++) {
        v[1 + 2 * k] = rows[k].trace_id;
        v[2 + 2 * k] = rows[k].span_id;
    }
    for (size_t i = 0; i < 1 + 2 * CHUNK; i++) {
        len[i] = (unsigned long)strlen(v[i]);
        b[i].buffer_type = MYSQL_TYPE_STRING;
        b[i].buffer = (void *)(uintptr_t)v[i];
        b[i].buffer_length = len[i];
        b[i].length = &len[i];
    }
    MYSQL_STMT *st = c->ins_alarm_by_ids;
    if (mysql_stmt_bind_param(st, b) != 0 || mysql_stmt_execute(st) != 0) {
        int code = fail_stmt(st, "opening alarms", err);
        return code == OM_EINVAL ? OM_EIO : code;
    }
    return 0;
}

static int my_insert_chunk(as_conn_t *c, const as_row_t *rows, size_t *inserted, om_err_t *err)
{
    MYSQL_BIND *b = om_calloc((size_t)CHUNK * N_PARAMS, sizeof *b);
    if (b == NULL) {
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    int64_t now = now_ns();
    for (size_t k = 0; k < CHUNK; k++) {
        bind_row(&c->chunk_params[k], &rows[k], now);
        memcpy(&b[k * N_PARAMS], c->chunk_params[k].b, sizeof c->chunk_params[k].b);
    }
    int rc = 0;
    if (mysql_stmt_bind_param(c->ins_chunk, b) != 0 || mysql_stmt_execute(c->ins_chunk) != 0) {
        rc = fail_stmt(c->ins_chunk, "inserting runs", err);
    }
    om_free(b);
    if (rc != 0) {
        return rc;
    }
    *inserted = (size_t)mysql_stmt_affected_rows(c->ins_chunk);
    bool failed = false;
    for (size_t k = 0; k < CHUNK; k++) {
        failed = failed || rows[k].failed;
    }
    return failed && *inserted > 0 ? chunk_alarms(c, rows, c->chunk_params[0].times[2], err) : 0;
}

/* sql with each ? replaced by its parameter as an escaped string literal (or NULL): the
 * queries of notifying are few and small, and this keeps them text in, text out. */
static int my_inline(as_conn_t *c, const char *sql, const char *const *params, size_t n_params,
                     om_strbuf_t *sb)
{
    size_t k = 0;
    for (const char *p = sql; *p != '\0'; p++) {
        if (*p != '?' || k >= n_params) {
            om_strbuf_putc(sb, *p);
            continue;
        }
        const char *v = params[k++];
        if (v == NULL) {
            om_strbuf_puts(sb, "NULL");
            continue;
        }
        size_t n = strlen(v);
        if (!om_strbuf_reserve(sb, 2 * n + 3)) {
            return OM_ENOMEM;
        }
        om_strbuf_putc(sb, '\'');
        sb->len += mysql_real_escape_string(c->my, sb->data + sb->len, v, (unsigned long)n);
        om_strbuf_putc(sb, '\'');
    }
    return sb->failed ? OM_ENOMEM : 0;
}

static int my_query(as_conn_t *c, const char *sql, const char *const *params, size_t n_params,
                    as_row_fn row, void *arg, om_err_t *err)
{
    om_strbuf_t sb;
    om_strbuf_init(&sb, 0);
    int rc = my_inline(c, sql, params, n_params, &sb);
    if (rc != 0) {
        om_strbuf_free(&sb);
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    if (mysql_real_query(c->my, sb.data, (unsigned long)sb.len) != 0) {
        om_strbuf_free(&sb);
        rc = fail_my(c->my, "a query", err);
        return rc == OM_EINVAL ? OM_EIO : rc;
    }
    om_strbuf_free(&sb);
    MYSQL_RES *res = mysql_store_result(c->my);
    if (res == NULL) {
        if (mysql_field_count(c->my) == 0) {
            return 0; /* no result set: an UPDATE or INSERT */
        }
        rc = fail_my(c->my, "reading a query", err);
        return rc == OM_EINVAL ? OM_EIO : rc;
    }
    unsigned n = mysql_num_fields(res);
    n = n < AS_QUERY_MAX_COLS ? n : AS_QUERY_MAX_COLS;
    MYSQL_ROW r;
    while (rc == 0 && (r = mysql_fetch_row(res)) != NULL) {
        rc = row != NULL ? row(arg, (const char *const *)r, n) : 0;
    }
    mysql_free_result(res);
    if (rc != 0) {
        om_err_set(err, rc, "out of memory reading a query");
    }
    return rc;
}

static void my_close(as_conn_t *c)
{
    if (c->ins_exec != NULL) {
        mysql_stmt_close(c->ins_exec);
    }
    if (c->ins_alarm != NULL) {
        mysql_stmt_close(c->ins_alarm);
    }
    if (c->ins_chunk != NULL) {
        mysql_stmt_close(c->ins_chunk);
    }
    if (c->ins_alarm_by_ids != NULL) {
        mysql_stmt_close(c->ins_alarm_by_ids);
    }
    om_free(c->chunk_params);
    mysql_close(c->my);
    om_free(c);
}

const as_backend_t as_mariadb_backend = {
    .name = "mariadb",
    .open = my_open,
    .exec = my_exec,
    .schema_version = my_schema_version,
    .migrations = migrations,
    .n_migrations = (int)(sizeof migrations / sizeof migrations[0]),
    .prepare = my_prepare,
    .begin = my_begin,
    .insert_row = my_insert_row,
    .insert_chunk = my_insert_chunk,
    .chunk = CHUNK,
    .query = my_query,
    .insert_ignore = "INSERT IGNORE",
    .commit = my_commit,
    .rollback = my_rollback,
    .close = my_close,
};

/* ------------------------------------------------------------------------------------------ */
/* The query API's reader: its own connection (my_open's session: UTC, utf8mb4, the tls
 * section's TLS), on the API's thread. Statements are prepared with ? parameters; results are
 * read as text, whatever the column's type (the server's binary DATETIME(6) as "YYYY-MM-DD
 * HH:MM:SS.ffffff"), after mysql_stmt_store_result has measured the longest value of each
 * column. An error of the connection (CR_*: the server went away) is OM_EAGAIN: the API
 * reopens it at the next request. */

struct as_reader {
    as_conn_t *c;
};

static int myr_open(const as_url_t *u, const exp_as_cfg_t *cfg, uint64_t timeout_ms,
                    as_reader_t **out, om_err_t *err)
{
    as_reader_t *r = om_calloc(1, sizeof *r);
    if (r == NULL) {
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    int rc = my_open(u, cfg, timeout_ms, &r->c, err);
    if (rc != 0) {
        if (r->c != NULL) {
            my_close(r->c);
        }
        om_free(r);
        return OM_EAGAIN;
    }
    *out = r;
    return 0;
}

#define MYR_MAX_COLS 32

/* Read the stored result row by row into text buffers sized by the longest value. */
static int myr_rows(MYSQL_STMT *st, as_result_fn fn, void *arg, om_err_t *err)
{
    MYSQL_RES *meta = mysql_stmt_result_metadata(st);
    if (meta == NULL) {
        return fail_stmt(st, "reading the result's columns", err);
    }
    unsigned n = mysql_num_fields(meta);
    MYSQL_FIELD *fields = mysql_fetch_fields(meta);
    MYSQL_BIND b[MYR_MAX_COLS];
    unsigned long len[MYR_MAX_COLS];
    my_bool null[MYR_MAX_COLS];
    char *buf[MYR_MAX_COLS] = {0};
    const char *vals[MYR_MAX_COLS];
    size_t lens[MYR_MAX_COLS];
    int rc = n > MYR_MAX_COLS ? OM_EIO : 0;
    memset(b, 0, sizeof b);
    for (unsigned i = 0; rc == 0 && i < n; i++) {
        unsigned long cap = (fields[i].max_length > 64 ? fields[i].max_length : 64) + 1;
        buf[i] = om_malloc(cap);
        rc = buf[i] == NULL ? OM_ENOMEM : 0;
        b[i].buffer_type = MYSQL_TYPE_STRING;
        b[i].buffer = buf[i];
        b[i].buffer_length = cap;
        b[i].length = &len[i];
        b[i].is_null = &null[i];
    }
    if (rc == 0 && mysql_stmt_bind_result(st, b) != 0) {
        rc = fail_stmt(st, "binding the result", err);
    }
    int f;
    while (rc == 0 && (f = mysql_stmt_fetch(st)) == 0) {
        for (unsigned i = 0; i < n; i++) {
            vals[i] = null[i] ? NULL : buf[i];
            lens[i] = null[i] ? 0 : len[i];
        }
        rc = fn(arg, vals, lens, n);
    }
    if (rc == 0 && f != MYSQL_NO_DATA) {
        rc = f == MYSQL_DATA_TRUNCATED ? OM_EIO : OM_EAGAIN;
        om_err_set(err, rc, "mariadb: reading the result: %s", mysql_stmt_error(st));
    } else if (rc != 0 && err->code == 0) {
        om_err_set(err, rc, "%s", om_strerror(rc));
    }
    for (unsigned i = 0; i < n && i < MYR_MAX_COLS; i++) {
        om_free(buf[i]);
    }
    mysql_free_result(meta);
    return rc;
}

static int myr_query(as_reader_t *r, const as_sql_t *s, as_result_fn fn, void *arg, om_err_t *err)
{
    MYSQL_STMT *st = mysql_stmt_init(r->c->my);
    if (st == NULL) {
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    MYSQL_BIND b[AS_SQL_MAX_BINDS];
    long long ints[AS_SQL_MAX_BINDS];
    unsigned long lens[AS_SQL_MAX_BINDS];
    memset(b, 0, sizeof b);
    for (size_t i = 0; i < s->n_binds; i++) {
        if (s->binds[i].text != NULL) {
            lens[i] = (unsigned long)strlen(s->binds[i].text);
            b[i].buffer_type = MYSQL_TYPE_STRING;
            b[i].buffer = (void *)s->binds[i].text;
            b[i].buffer_length = lens[i];
            b[i].length = &lens[i];
        } else {
            ints[i] = s->binds[i].i;
            b[i].buffer_type = MYSQL_TYPE_LONGLONG;
            b[i].buffer = &ints[i];
        }
    }
    my_bool update_max = 1;
    int rc = 0;
    const char *sql = om_strbuf_str(&s->sql);
    if (mysql_stmt_prepare(st, sql, (unsigned long)strlen(sql)) != 0) {
        rc = fail_stmt(st, "preparing a query", err);
    } else if (mysql_stmt_bind_param(st, b) != 0) {
        rc = fail_stmt(st, "binding a query's parameters", err);
    } else if (mysql_stmt_attr_set(st, STMT_ATTR_UPDATE_MAX_LENGTH, &update_max) != 0 ||
               mysql_stmt_execute(st) != 0) {
        rc = fail_stmt(st, "running a query", err);
    } else if (mysql_stmt_store_result(st) != 0) {
        rc = fail_stmt(st, "reading a query's result", err);
    } else {
        rc = myr_rows(st, fn, arg, err);
    }
    mysql_stmt_close(st);
    /* A statement of ours the server refuses is not the client's fault: unavailable. */
    return rc == OM_EINVAL ? OM_EAGAIN : rc;
}

static void myr_close(as_reader_t *r)
{
    my_close(r->c);
    om_free(r);
}

const as_reader_backend_t as_mariadb_reader = {
    .open = myr_open,
    .query = myr_query,
    .close = myr_close,
};
