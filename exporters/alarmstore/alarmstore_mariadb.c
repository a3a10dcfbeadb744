/* alarmstore_mariadb.c: the MariaDB / MySQL backend (libmariadb). Placeholder until written. */
#include "alarmstore.h"

static int my_open(const as_url_t *u, const exp_as_cfg_t *cfg, uint64_t timeout_ms, as_conn_t **out,
                   om_err_t *err)
{
    (void)u, (void)cfg, (void)timeout_ms, (void)out;
    om_err_set(err, OM_ECONFIG, "mariadb: not implemented yet");
    return OM_ECONFIG;
}

const as_backend_t as_mariadb_backend = {.name = "mariadb", .open = my_open};
