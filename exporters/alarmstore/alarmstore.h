/* alarmstore.h: private to exporters/alarmstore. The config, the rows that spans become
 * (alarmstore_rows.c), the storage backends behind one struct (alarmstore_db.c,
 * alarmstore_sqlite.c, alarmstore_mariadb.c), and the alarms' notifications
 * (alarmstore_alarms.c, alarmstore_notify.c). */
#ifndef ALARMSTORE_H
#define ALARMSTORE_H

#include <stdbool.h>
#include <stdint.h>

#include "om.h"

/* ------------------------------------------------------------------------------------------ */
/* Config                                                                                     */

#define EXP_AS_DEFAULT_DATABASE "sqlite:////var/lib/otelmon/alarmstore.db"

typedef struct exp_as_error_spans_cfg {
    om_strlist_t services;
} exp_as_error_spans_cfg_t;

/* notify::webhook: a JSON POST per notification through the core HTTP client (its shared
 * settings: headers, tls, proxy_url, ...). */
typedef struct exp_as_webhook_cfg {
    char *endpoint;
    int64_t timeout; /* ns */
    om_http_client_cfg_t http;
} exp_as_webhook_cfg_t;

/* notify::retry: the backoff of a notifier that is down (never given up: at least once). */
typedef struct exp_as_notify_retry_cfg {
    int64_t initial_interval, max_interval; /* ns */
} exp_as_notify_retry_cfg_t;

typedef struct exp_as_notify_cfg {
    int64_t dedup_window; /* ns; 0: one notification per failure */
    bool immediate;       /* false: failures are reported by the digest only */
    char *digest_at;      /* digest::at, "HH:MM" or "HH:MM:SS" UTC; NULL: no digest */
    exp_as_notify_retry_cfg_t retry;
    exp_as_webhook_cfg_t webhook;
    bool has_webhook;
    om_mail_cfg_t email;
    bool has_email;
} exp_as_notify_cfg_t;

/* "HH:MM" or "HH:MM:SS" (UTC) as seconds after midnight; -1 when it is neither. */
int as_parse_daytime(const char *s);

/* api: the query API and page (alarmstore_api.c): the core HTTP server's settings (endpoint,
 * tls, auth: {authenticator}, timeouts...) plus the trace link. */
#define EXP_AS_API_DEFAULT_ENDPOINT "localhost:8890"
typedef struct exp_as_api_cfg {
    om_http_server_cfg_t http;
    char *trace_url_template; /* NULL: no trace links */
} exp_as_api_cfg_t;

typedef struct exp_as_cfg {
    char *database;
    exp_as_error_spans_cfg_t error_spans;
    exp_as_notify_cfg_t notify;
    bool has_notify;
    exp_as_api_cfg_t api;
    bool has_api;
    /* MariaDB over TLS (alarmstore_mariadb.c): with the section, TLS is required and the
     * server's certificate checked, unless insecure (plaintext) or insecure_skip_verify. */
    om_tls_client_cfg_t tls;
    bool has_tls;
    om_exphelper_cfg_t helper;
} exp_as_cfg_t;

extern const om_field_t exp_as_fields[];
int exp_as_config_validate(const void *cfg, om_err_t *err);

/* A database URL taken apart. Strings are om_malloc'd (as_url_free). */
typedef enum { AS_DB_SQLITE, AS_DB_MARIADB } as_db_kind_t;
typedef struct as_url {
    as_db_kind_t kind;
    char *path; /* SQLite: the file, absolute or relative to the working directory */
    char *user, *password, *host, *dbname, *socket;
    int port;
} as_url_t;

/* SQLAlchemy's forms: sqlite:////abs, sqlite:///rel, mysql://user:pass@host:port/db
 * (also mysql+pymysql://, mariadb://, mariadb+mariadbconnector://; %XX escapes in the user
 * and password; ?unix_socket=PATH). Returns 0 or OM_ECONFIG with a message in err. */
int as_url_parse(const char *url, as_url_t *out, om_err_t *err);
void as_url_free(as_url_t *u);

/* ------------------------------------------------------------------------------------------ */
/* Rows                                                                                       */

/* The text columns of process_executions, in table order, with their sizes in bytes (what
 * the MariaDB columns hold: VARCHAR(n) of utf8mb4 counts characters, and we cut at n bytes,
 * which is never more characters). */
typedef enum {
    AS_COL_HOST_NAME,
    AS_COL_PLATFORM_TYPE,
    AS_COL_GROUP_NAME,
    AS_COL_PROCESS_NAME,
    AS_COL_SCRIPT_NAME,
    AS_COL_ERROR_MESSAGE,
    AS_COL_ERROR_TYPE,
    AS_COL_STACK_TRACE,
    AS_COL_SOURCE_SYSTEM_TYPE,
    AS_COL_SOURCE_SYSTEM_NAME,
    AS_COL_SOURCE_ENDPOINT,
    AS_COL_SOURCE_OBJECT_NAME,
    AS_COL_TARGET_SYSTEM_TYPE,
    AS_COL_TARGET_SYSTEM_NAME,
    AS_COL_TARGET_ENDPOINT,
    AS_COL_TARGET_OBJECT_NAME,
    AS_COL_N_TEXT
} as_text_col_t;

typedef struct as_col_def {
    const char *name; /* the column */
    const char *attr; /* the etl.* attribute it comes from, or NULL */
    size_t max_bytes; /* the column's size */
} as_col_def_t;
extern const as_col_def_t as_text_cols[AS_COL_N_TEXT];

/* One run, ready for the database. Text columns are NUL-terminated valid UTF-8 of at most
 * their column's size, or NULL (SQL NULL). Times are nanoseconds since the epoch, UTC. */
typedef struct as_row {
    char *text[AS_COL_N_TEXT]; /* owned by the row set's arena */
    bool failed;
    bool has_source_count, has_target_count, has_start, has_end, has_duration;
    int64_t source_count, target_count;
    int64_t start_ns, end_ns;
    double duration_seconds;
    char trace_id[33], span_id[17]; /* lower-case hex */
} as_row_t;

/* What the rows of a batch are made from: which spans count, as the config says. */
typedef struct as_extract_opts {
    const om_strlist_t *error_services; /* error_spans::services; may be NULL */
} as_extract_opts_t;

/* The rows of one batch, in one arena. */
typedef struct as_rows {
    om_arena_t *arena;
    as_row_t *v;
    size_t n, cap;
} as_rows_t;

/* Worker or loop thread: plain reads of a decoded request (req may be shared; nothing is
 * changed). Appends a row per span that is a run (see alarmstore_rows.c) to out, which starts
 * zeroed. Returns 0 or OM_ENOMEM (out keeps the rows made so far; as_rows_free frees it). */
int as_rows_extract(const om_traces_req_t *req, const as_extract_opts_t *o, as_rows_t *out);
void as_rows_free(as_rows_t *r);
/* Whether a and b hold the same rows, column by column (tests and the fuzz target). */
bool as_rows_equal(const as_rows_t *a, const as_rows_t *b);

/* The same rows from a request's protobuf bytes (one wire segment of a batch that has not been
 * decoded), decoding only the spans that can be runs (and their resources) into out's arena:
 * the bytes are walked (om_pb_next) and each span's searched for the keys candidates carry.
 * Any thread (plain reads of data; the arena is the caller's alone). Returns 0, OM_ENOMEM, or
 * OM_EINVAL for bytes that are no request (the receiver checked them, so only memory). Gives
 * exactly what as_rows_extract gives on the decoded request (a test and the fuzz target hold
 * the two to each other). */
int as_rows_extract_wire(const uint8_t *data, size_t len, const as_extract_opts_t *o,
                         as_rows_t *out);

/* Any thread, plain reads: whether some span of the decoded request is a run (the same test
 * as_rows_extract makes, without building rows). */
bool as_req_maybe(const om_traces_req_t *req, const as_extract_opts_t *o);

/* Loop thread, cheap: false when no span of the request's protobuf bytes can be a run, by
 * looking for the bytes every candidate must carry (the attribute keys, the error services'
 * names). True means "maybe": decode and extract. Conservative: whatever as_rows_extract
 * would make a row of, this says true for (held to each other by a test and the fuzz
 * target). */
bool as_wire_maybe(const uint8_t *data, size_t len, const as_extract_opts_t *o);

/* memmem(p, n, key, klen): the first place of key in the bytes, or NULL. A key with a '_' (the
 * candidates' attribute keys) is found by its '_' with memchr, a vector scan that skips most
 * bytes: memmem stepped through the request a few bytes at a time, and on the forward path
 * (as_wire_maybe on every request) that was a fifth of the collector's instructions. */
const uint8_t *as_key_find(const uint8_t *p, size_t n, const char *key, size_t klen);

/* Whether any of the keys is in the bytes. Keys that all have a '_' (at most AS_ANY_KEYS_MAX)
 * are found in one memchr pass over the bytes' '_'s, each tried as every key's: the forward
 * path's pre-check (as_wire_maybe) looks for two keys in every request. */
#define AS_ANY_KEYS_MAX 8
bool as_any_key(const uint8_t *p, size_t n, const char *const *keys, size_t n_keys);

/* "YYYY-MM-DD HH:MM:SS.ffffff" of ns since the epoch, UTC (what DATETIME(6) takes). */
void as_format_time(int64_t ns, char out[32]);
/* Parse an ISO 8601 / Python str(datetime) time that carries a UTC offset ("Z", "+09:00",
 * "+0900"); "2024-05-01 10:00:00.123+09:00" and "2024-05-01T01:00:00Z" both work. A time
 * without an offset is refused (false): its zone is unknown. */
bool as_parse_time_utc(const char *s, size_t len, int64_t *ns);

/* ------------------------------------------------------------------------------------------ */
/* Storage backends                                                                           */

typedef struct as_conn as_conn_t;
#define AS_QUERY_MAX_COLS 32
typedef int (*as_row_fn)(void *arg, const char *const *cols, size_t n);

/* How one row went. */
#define AS_ROW_INSERTED 0
#define AS_ROW_DUPLICATE 1 /* (trace_id, span_id) already stored: nothing changed */
#define AS_ROW_REFUSED 2   /* the database refused this row for good (bad data): skip it */

/* A backend, called only from the exporter's one database thread. Every function returns 0
 * (or an AS_ROW_* for insert_row), OM_EAGAIN for what may work later (unreachable server,
 * lock, lost connection: retry the batch), or another code for what will not (OM_ECONFIG:
 * a schema newer than this binary knows). Messages go to err. */
typedef struct as_backend {
    const char *name; /* "sqlite", "mariadb" */
    /* Connect and open the database (blocking); timeout_ms bounds each wait (0: none). */
    int (*open)(const as_url_t *u, const exp_as_cfg_t *cfg, uint64_t timeout_ms, as_conn_t **out,
                om_err_t *err);
    /* Run SQL that returns no rows (DDL, BEGIN...). */
    int (*exec)(as_conn_t *c, const char *sql, om_err_t *err);
    /* The version in schema_version, 0 when the table is empty or absent. */
    int (*schema_version)(as_conn_t *c, int *version, om_err_t *err);
    /* The migrations, in order: migrations[i] brings the schema from version i to i + 1; each
     * is a NULL-terminated list of statements. */
    const char *const *const *migrations;
    int n_migrations;
    /* Prepare the batch statements (after the schema is current). */
    int (*prepare)(as_conn_t *c, om_err_t *err);
    int (*begin)(as_conn_t *c, om_err_t *err);
    int (*insert_row)(as_conn_t *c, const as_row_t *r, om_err_t *err);
    /* Optional (NULL: rows go one by one): insert rows[0..chunk) in one statement, where
     * chunk is the backend's chunk size, for servers a round trip away. 0 with *inserted
     * (the others were duplicates); OM_EINVAL when the database refused some row (nothing of
     * the chunk was stored: the caller inserts its rows one by one to skip the bad one); or
     * a batch-level error. */
    int (*insert_chunk)(as_conn_t *c, const as_row_t *rows, size_t *inserted, om_err_t *err);
    size_t chunk;
    /* Run sql with its ? bound to params (text; NULL: SQL NULL), calling row for each row
     * (cols[i] NULL for SQL NULL; valid during the call), which returns 0 or stops the query
     * with OM_ENOMEM. row may be NULL (UPDATE, INSERT). 0, OM_EAGAIN or OM_EIO. */
    int (*query)(as_conn_t *c, const char *sql, const char *const *params, size_t n_params,
                 as_row_fn row, void *arg, om_err_t *err);
    const char *insert_ignore; /* "INSERT OR IGNORE" / "INSERT IGNORE" */
    int (*commit)(as_conn_t *c, om_err_t *err);
    void (*rollback)(as_conn_t *c);
    void (*close)(as_conn_t *c);
} as_backend_t;

extern const as_backend_t as_sqlite_backend;
extern const as_backend_t as_mariadb_backend;
/* Any thread. Load the backend's client library on first use (om_dl_load): 0, or OM_ENOTSUP
 * naming the missing library and its package. The backends' opens call it; so does the
 * config's validation, so that a missing library is a config error, not a failing start. */
int as_sqlite_load(om_err_t *err);
int as_mariadb_load(om_err_t *err);

/* Worker thread. Open u with its backend, create or migrate the schema to the latest version
 * (each migration in its own transaction), prepare the statements. OM_ECONFIG when the
 * database's schema is newer than this binary's. */
int as_db_open(const as_url_t *u, const exp_as_cfg_t *cfg, uint64_t timeout_ms,
               const as_backend_t **be, as_conn_t **out, om_err_t *err);

/* The outcome of storing one batch. */
typedef struct as_store_result {
    size_t inserted, duplicates, refused;
    size_t alarms; /* failed runs among the inserted (an upper bound for chunks) */
    char first_refusal[400];
} as_store_result_t;

/* Worker thread. One transaction for all rows: inserted, skipped as duplicates, or refused
 * for good one by one (never blocking the others). 0 or a batch-level error (rolled back). */
int as_db_store(const as_backend_t *be, as_conn_t *c, const as_rows_t *rows, as_store_result_t *res,
                om_err_t *err);

/* ------------------------------------------------------------------------------------------ */
/* Query API (alarmstore_query.c: parsing, SQL, rendering; alarmstore_api.c: the server)      */

/* One key=value of a query string, both decoded (application/x-www-form-urlencoded: '+' is a
 * space, %XX an octet) and NUL-terminated. */
typedef struct as_qs_pair {
    char *key, *value; /* om_malloc'd */
} as_qs_pair_t;

/* A query string's pairs in order, repeated keys kept. */
typedef struct as_qs {
    as_qs_pair_t *v; /* om_malloc'd */
    size_t n;
} as_qs_t;

/* Any thread. Split qs (raw, without '?'; NULL or "" for none) on '&' and decode each pair
 * (a pair without '=' has the value ""; empty pairs "a&&b" are skipped). Returns 0, OM_ENOMEM,
 * or OM_EINVAL with a message in msg for a bad %-escape, an escaped NUL, invalid UTF-8, or more
 * than AS_QS_MAX_PAIRS pairs. out is zeroed first; as_qs_free frees it in every case. */
#define AS_QS_MAX_PAIRS 64
int as_qs_parse(const char *qs, as_qs_t *out, char *msg, size_t msg_cap);
void as_qs_free(as_qs_t *q);

/* The API's endpoints. */
typedef enum { AS_Q_EXECUTIONS, AS_Q_ALARMS } as_qkind_t;

#define AS_Q_DEFAULT_LIMIT 100
#define AS_Q_MAX_LIMIT 1000

/* A list request, checked. Strings are om_malloc'd (as_query_free); NULL: no filter. */
typedef struct as_query {
    as_qkind_t kind;
    char *status;   /* executions: "SUCCESS" or "FAILED" */
    char *platform; /* platform_type */
    char *group;    /* group_name */
    char *process;  /* process_name */
    char *state;    /* alarms: state */
    bool has_since, has_until;
    int64_t since_ns, until_ns; /* end_time >= since, end_time < until */
    int64_t after_id;           /* the cursor: rows with id < after_id; 0: from the newest */
    int limit;
} as_query_t;

/* Any thread. The parameters of a request of kind from its raw query string. 0, OM_ENOMEM, or
 * OM_EINVAL with a message for the client in msg (unknown or repeated key, a bad value). */
int as_query_parse(as_qkind_t kind, const char *qs, as_query_t *q, char *msg, size_t msg_cap);
void as_query_free(as_query_t *q);

/* A statement and its parameters, for a reader. Text parameters point into the query. */
#define AS_SQL_MAX_BINDS 10
typedef struct as_bind {
    const char *text; /* NULL: the integer */
    int64_t i;
} as_bind_t;
typedef struct as_sql {
    om_strbuf_t sql;
    as_bind_t binds[AS_SQL_MAX_BINDS];
    size_t n_binds;
    char since[32], until[32]; /* the time parameters' text */
} as_sql_t;

/* The SELECT of a list request: the table's columns (as_query_cols), filters as parameters,
 * newest (highest id) first, limit + 1 rows (the extra row says whether a next page exists).
 * 0 or OM_ENOMEM; as_sql_free in every case. */
int as_query_sql(const as_query_t *q, as_sql_t *out);
void as_sql_free(as_sql_t *s);

/* A column of an answer and how it is written in JSON. */
typedef enum { AS_CK_TEXT, AS_CK_INT, AS_CK_REAL, AS_CK_TIME } as_col_kind_t;
typedef struct as_qcol {
    const char *name;
    as_col_kind_t kind;
} as_qcol_t;
/* The columns selected for kind, in order. */
const as_qcol_t *as_query_cols(as_qkind_t kind, size_t *n);

/* One row of a result: n values, each NULL (SQL NULL) or text of lens[i] bytes. Return 0 to go
 * on, an error to stop. */
typedef int (*as_result_fn)(void *arg, const char *const *vals, const size_t *lens, size_t n);

/* A read-only connection of the query API's own thread (never the writer's: reads never wait
 * for a batch, nor a batch for them). */
typedef struct as_reader as_reader_t;
typedef struct as_reader_backend {
    /* 0, or OM_EAGAIN (the database is unreachable or not created yet) with a message. cfg:
     * the exporter's (MariaDB: its tls section), may be NULL for SQLite. */
    int (*open)(const as_url_t *u, const exp_as_cfg_t *cfg, uint64_t timeout_ms, as_reader_t **out,
                om_err_t *err);
    /* Run s, each row to fn. 0, fn's error, or OM_EAGAIN (the connection should be reopened),
     * or OM_EIO. */
    int (*query)(as_reader_t *r, const as_sql_t *s, as_result_fn fn, void *arg, om_err_t *err);
    void (*close)(as_reader_t *r);
} as_reader_backend_t;
extern const as_reader_backend_t as_sqlite_reader;
extern const as_reader_backend_t as_mariadb_reader;

/* Run q on r and write the answer {"items": [...], "next_cursor": ...} into out. 0, or what
 * the reader returned. */
int as_query_json(const as_reader_backend_t *be, as_reader_t *r, const as_query_t *q,
                  om_strbuf_t *out, om_err_t *err);
/* The page: the latest runs (failures first) and the open alarms, as HTML; each run's trace
 * linked through trace_url_template (NULL: no links). */
int as_query_page(const as_reader_backend_t *be, as_reader_t *r, const char *trace_url_template,
                  om_strbuf_t *out, om_err_t *err);
/* JSON and HTML writers (tests hold them to escaping rules). s[0..len) may be any bytes:
 * invalid UTF-8 is written as U+FFFD. */
void as_json_str(om_strbuf_t *out, const char *s, size_t len);
/* The link of a trace: template with every {trace_id} replaced by trace_id %-encoded. */
void as_trace_url(om_strbuf_t *out, const char *tmpl, const char *trace_id);

/* The server (alarmstore_api.c), loop thread. */
typedef struct as_api as_api_t;
int as_api_new(om_host_t *host, const char *log_name, const exp_as_cfg_t *cfg, const as_url_t *url,
               as_api_t **out, om_err_t *err);
int as_api_start(as_api_t *a, om_err_t *err);
/* The server closes (answers owed are given), then the reader's thread; then done. */
void as_api_shutdown(as_api_t *a, om_done_fn done, void *arg);
void as_api_free(as_api_t *a);
/* Tests: the bound port. */
int as_api_port(const as_api_t *a);

/* The latest schema version this binary knows. */
#define AS_SCHEMA_VERSION 2

/* ------------------------------------------------------------------------------------------ */
/* Alarms and their notifications (alarmstore_alarms.c: the database side, on the database    */
/* thread; alarmstore_notify.c: the loop side, sending through the core's async clients)      */
/*                                                                                            */
/* Each FAILED run opens one row in `alarms` (in the run's own transaction). Its states:       */
/*   open      not yet notified: waiting for its first send, for the end of its (group,        */
/*             process)'s dedup window, or for a retry (next_attempt_at, notify_attempts and   */
/*             last_error tell which); with immediate: false, waiting for the digest.          */
/*   notified  at least one notifier took it (notified_at; one alert_history row); a notifier  */
/*             that refused it for good is named in last_error.                               */
/*   failed    every notifier refused it for good (an HTTP 4xx other than 408/429, an SMTP     */
/*             5xx, refused credentials): given up, last_error says why; the digest reports it.*/
/* notifiers_done (schema version 2) holds, per notifier bit (AS_NOTIFIER_*), the ones that     */
/* took the alarm (low byte) and those that refused it for good (<< 8), so a retry goes only to */
/* the notifiers still owing it. digested_at: when a digest reported it.                      */
/* All of it is in the database, so a restart neither forgets an alarm nor sends one twice    */
/* (except a send cut by a crash between the server's acceptance and the row's update: at least */
/* once).                                                                                     */

#define AS_NOTIFIER_WEBHOOK 1u
#define AS_NOTIFIER_EMAIL 2u
#define AS_NOTIFIER_GAVE_UP_SHIFT 8

/* One alarm with its run's details; strings om_malloc'd (NULL: SQL NULL); times as the
 * database writes them ("YYYY-MM-DD HH:MM:SS[.ffffff]", UTC). */
typedef struct as_alarm {
    int64_t id;
    char *group, *process, *host, *platform, *script, *error_type, *error_message, *stack_trace;
    char *start_time, *end_time, *trace_id, *created_at, *next_attempt_at, *state, *last_error;
    int attempts;
    unsigned done; /* notifiers_done */
} as_alarm_t;

/* One message: one alarm, a (group, process)'s alarms counted (dedup), or a digest. */
typedef struct as_notice {
    as_alarm_t *v; /* owned */
    size_t n;
    bool digest;
    unsigned need; /* the notifiers it goes to (AS_NOTIFIER_* bits) */
} as_notice_t;

typedef struct as_notices {
    as_notice_t *v;
    size_t n, cap;
    int64_t next_wake_ns; /* when the next notice may be due (0: none known) */
} as_notices_t;

void as_alarm_free(as_alarm_t *a);
void as_notices_free(as_notices_t *ns);

/* The plan's inputs: the open alarms of one (group, process), in id order, and the time of
 * that pair's last notification (0: none since the earliest of them minus the window). */
typedef struct as_plan_in {
    int64_t now_ns, window_ns;
    unsigned notifiers; /* configured AS_NOTIFIER_* bits */
} as_plan_in_t;

/* Pure: what to send now for one (group, process)'s open alarms v[0..n) whose last
 * notification was at last_ns (0: none in reach). Moves the alarms it sends into out (as one
 * notice) and lowers out->next_wake_ns to when the rest may be due. The rules:
 *   - window 0: every due alarm alone;
 *   - a notification less than the window ago: nothing until the window ends;
 *   - alarms that arrived within the window of the last notification, now ended: one notice
 *     counting every open alarm of the pair;
 *   - otherwise (the pair's first failure in a window): the oldest alone, now; the others
 *     are inside its window and wait for its end.
 * An alarm whose retry time (next_attempt_at) has not come holds its notice back. 0 or
 * OM_ENOMEM. */
int as_plan_pair(const as_plan_in_t *in, as_alarm_t *v, size_t n, int64_t last_ns,
                 as_notices_t *out);

/* "YYYY-MM-DD HH:MM:SS[.ffffff]" (UTC) to ns; false when it is not that. */
bool as_parse_db_time(const char *s, int64_t *ns);

/* Database thread. The notices due now from the open alarms (at most a few hundred a call). */
int as_alarms_due(const as_backend_t *be, as_conn_t *c, const as_plan_in_t *in, as_notices_t *out,
                  om_err_t *err);
/* Database thread. The alarms of the last 24 hours not notified (state open or failed) and
 * not yet in a digest, as one notice (n 0: none). */
int as_alarms_digest(const as_backend_t *be, as_conn_t *c, int64_t now_ns, as_notice_t *out,
                     om_err_t *err);

/* How a notice went, per notifier. */
typedef struct as_outcome {
    unsigned ok;          /* notifiers that took it */
    unsigned gave_up;     /* notifiers that refused it for good */
    char last_error[256]; /* "" when none failed */
    int64_t retry_at_ns;  /* when to try the others again */
} as_outcome_t;

/* Database thread, one transaction: the alarms of a notice after a send. digest_only: the
 * digest is these alarms' notification (immediate: false). */
int as_alarms_record(const as_backend_t *be, as_conn_t *c, const as_notice_t *nt,
                     const as_outcome_t *o, unsigned notifiers, bool digest_only, int64_t now_ns,
                     om_err_t *err);

/* The exporter's database thread, for the notifier: fn runs there with the open connection
 * (opened first if needed), then done on the loop with fn's result (OM_ESHUTDOWN: never ran). */
typedef struct as_db_job as_db_job_t;
typedef int (*as_db_fn)(as_db_job_t *j, const as_backend_t *be, as_conn_t *c, om_err_t *err);
struct as_db_job {
    om_job_t job; /* first member */
    void *exp;    /* the exporter */
    as_db_fn fn;
    void (*done)(as_db_job_t *j, int rc);
    int rc;
    om_err_t err;
};
int exp_as_db_submit(void *exp, as_db_job_t *j);

/* The notifier (alarmstore_notify.c), on the loop. */
typedef struct as_notifier as_notifier_t;
typedef struct as_notifier_args {
    const exp_as_cfg_t *cfg;
    om_host_t *host;
    const char *log_name;
    const char *id;
    void *exp; /* for exp_as_db_submit */
} as_notifier_args_t;
/* create: no I/O. NULL *out when the config has no notify section. */
int as_notifier_new(const as_notifier_args_t *a, as_notifier_t **out, om_err_t *err);
int as_notifier_start(as_notifier_t *n, om_err_t *err);
/* Something may be due now (new alarms stored, the database opened). */
void as_notifier_kick(as_notifier_t *n);
/* Let the sends in flight finish and be recorded (bounded by the notifiers' timeouts), close
 * the clients, then done(arg). */
void as_notifier_shutdown(as_notifier_t *n, om_done_fn done, void *arg);
void as_notifier_free(as_notifier_t *n);

/* Message texts (pure; for tests too). Each appends to sb. */
void as_notice_webhook_json(const as_notice_t *nt, om_strbuf_t *sb);
void as_notice_mail(const as_notice_t *nt, om_strbuf_t *subject, om_strbuf_t *text,
                    om_strbuf_t *html);
/* "2024-05-01T01:00:00.5Z" of a database time (copied as is when it is not one). */
void as_rfc3339(const char *db_time, char out[40]);

#endif
