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

static int store_one(const as_backend_t *be, as_conn_t *c, const as_row_t *r,
                     as_store_result_t *res, om_err_t *err)
{
    om_err_t row_err = {0};
    int rc = be->insert_row(c, r, &row_err);
    if (rc < 0) {
        om_err_set(err, row_err.code ? row_err.code : rc, "%s", row_err.msg);
        return rc;
    }
    if (rc == AS_ROW_INSERTED) {
        res->inserted++;
        res->alarms += r->failed;
    } else if (rc == AS_ROW_DUPLICATE) {
        res->duplicates++;
    } else if (res->refused++ == 0) {
        snprintf(res->first_refusal, sizeof res->first_refusal, "trace_id %s span_id %s: %s",
                 r->trace_id, r->span_id, row_err.msg);
    }
    return 0;
}

/* Full chunks in one statement each where the backend can; the rest, and a chunk the
 * database refused, row by row. */
static int store_rows(const as_backend_t *be, as_conn_t *c, const as_rows_t *rows,
                      as_store_result_t *res, om_err_t *err)
{
    size_t i = 0;
    while (i < rows->n) {
        size_t chunk = be->insert_chunk != NULL ? be->chunk : 0;
        if (chunk > 0 && rows->n - i >= chunk) {
            size_t inserted = 0;
            om_err_t chunk_err = {0};
            int rc = be->insert_chunk(c, &rows->v[i], &inserted, &chunk_err);
            if (rc == 0) {
                res->inserted += inserted;
                res->duplicates += chunk - inserted;
                for (size_t k = 0; inserted > 0 && k < chunk; k++) {
                    res->alarms += rows->v[i + k].failed; /* at most: duplicates unknown */
                }
                i += chunk;
                continue;
            }
            if (rc != OM_EINVAL) {
                om_err_set(err, chunk_err.code ? chunk_err.code : rc, "%s", chunk_err.msg);
                return rc;
            }
            chunk = be->chunk; /* this chunk one by one, to skip the row refused */
        } else {
            chunk = rows->n - i;
        }
        for (size_t k = 0; k < chunk; k++, i++) {
            int rc = store_one(be, c, &rows->v[i], res, err);
            if (rc != 0) {
                return rc;
            }
        }
    }
    return 0;
}

int as_db_store(const as_backend_t *be, as_conn_t *c, const as_rows_t *rows, as_store_result_t *res,
                om_err_t *err)
{
    memset(res, 0, sizeof *res);
    int rc = be->begin(c, err);
    rc = rc ? rc : store_rows(be, c, rows, res, err);
    rc = rc ? rc : be->commit(c, err);
    if (rc != 0) {
        be->rollback(c);
    }
    return rc;
}
