/* alarmstore_db.c: what every backend shares: the schema migrations' driver and storing one
 * batch of rows in one transaction. Runs on the exporter's database thread only.
 *
 * Schema versions: the table schema_version holds one row, the version the database is at.
 * At open, each migration after it runs in order, each in its own transaction together with
 * the version's update, so a crash leaves the database at a version, never between. A
 * database at a version newer than this binary knows is refused (OM_ECONFIG): an older
 * collector must not write into tables whose meaning it does not know. */
#include <stdio.h>
#include <string.h>

#include "alarmstore.h"

static int migrate(const as_backend_t *be, as_conn_t *c, om_err_t *err)
{
    int rc =
        be->exec(c, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)", err);
    int version = 0;
    rc = rc ? rc : be->schema_version(c, &version, err);
    if (rc != 0) {
        return rc;
    }
    if (version > be->n_migrations) {
        om_err_set(err, OM_ECONFIG,
                   "the database's schema is at version %d, newer than this otelmon knows (%d): "
                   "use a newer otelmon, or another database",
                   version, be->n_migrations);
        return OM_ECONFIG;
    }
    for (int v = version; v < be->n_migrations; v++) {
        rc = be->begin(c, err);
        for (const char *const *sql = be->migrations[v]; rc == 0 && *sql != NULL; sql++) {
            rc = be->exec(c, *sql, err);
        }
        char upd[96];
        if (v == 0) {
            snprintf(upd, sizeof upd, "INSERT INTO schema_version (version) VALUES (1)");
        } else {
            snprintf(upd, sizeof upd, "UPDATE schema_version SET version = %d", v + 1);
        }
        rc = rc ? rc : be->exec(c, upd, err);
        rc = rc ? rc : be->commit(c, err);
        if (rc != 0) {
            be->rollback(c);
            return rc;
        }
    }
    return 0;
}

int as_db_open(const as_url_t *u, const exp_as_cfg_t *cfg, uint64_t timeout_ms,
               const as_backend_t **be_out, as_conn_t **out, om_err_t *err)
{
    const as_backend_t *be = u->kind == AS_DB_SQLITE ? &as_sqlite_backend : &as_mariadb_backend;
    as_conn_t *c = NULL;
    int rc = be->open(u, cfg, timeout_ms, &c, err);
    rc = rc ? rc : migrate(be, c, err);
    rc = rc ? rc : be->prepare(c, err);
    if (rc != 0) {
        if (c != NULL) {
            be->close(c);
        }
        return rc;
    }
    *be_out = be;
    *out = c;
    return 0;
}

int as_db_store(const as_backend_t *be, as_conn_t *c, const as_rows_t *rows, as_store_result_t *res,
                om_err_t *err)
{
    memset(res, 0, sizeof *res);
    int rc = be->begin(c, err);
    if (rc != 0) {
        return rc;
    }
    for (size_t i = 0; i < rows->n; i++) {
        om_err_t row_err = {0};
        rc = be->insert_row(c, &rows->v[i], &row_err);
        if (rc < 0) {
            om_err_set(err, row_err.code ? row_err.code : rc, "%s", row_err.msg);
            be->rollback(c);
            return rc;
        }
        if (rc == AS_ROW_INSERTED) {
            res->inserted++;
        } else if (rc == AS_ROW_DUPLICATE) {
            res->duplicates++;
        } else {
            if (res->refused++ == 0) {
                snprintf(res->first_refusal, sizeof res->first_refusal,
                         "trace_id %s span_id %s: %s", rows->v[i].trace_id, rows->v[i].span_id,
                         row_err.msg);
            }
        }
    }
    rc = be->commit(c, err);
    if (rc != 0) {
        be->rollback(c);
    }
    return rc;
}
