/* otlphttp_factory.c: the otlphttp exporter's factory and lifecycle.
 *
 * create composes the per-signal URLs (no I/O); start makes the core's HTTP client from the
 * shared settings (TLS material read, libcurl loaded); shutdown lets the exporter helper drain
 * its queue (retries included), then closes the client and calls done once it has closed. */
#include <string.h>

#include "otlphttp.h"

static int consume(void *self, om_batch_t *batch)
{
    exp_otlphttp_t *e = self;
    return om_exphelper_consume(e->helper, batch);
}

static int otlphttp_create(const om_create_args_t *a, void **self, om_err_t *err)
{
    exp_otlphttp_t *e = om_calloc(1, sizeof *e);
    if (e == NULL) {
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    e->cfg = a->cfg;
    e->log_name = a->log_name;
    e->host = a->host;
    e->signals = a->signals;
    for (int i = 0; i < OM_SIG_COUNT; i++) {
        om_signal_t sig = om_signal_from_index(i);
        if ((a->signals & sig) == 0) {
            continue;
        }
        e->url[i] = exp_otlphttp_signal_url(e->cfg, sig, err);
        if (e->url[i] == NULL) {
            goto fail;
        }
    }
    om_comp_t alg = exp_otlphttp_comp_alg((otlphttp_comp_t)e->cfg->compression);
    if (alg != OM_COMP_NONE) {
        /* One idle compressor per consumer at most: that many requests encode at once. */
        unsigned keep = (unsigned)e->cfg->helper.sending_queue.num_consumers;
        e->compressors =
            om_compressors_new(alg, (int)e->cfg->compression_params.level, keep > 0 ? keep : 1);
        if (e->compressors == NULL) {
            om_err_set(err, OM_ENOMEM, "out of memory");
            goto fail;
        }
    }
    e->helper = om_exphelper_new(a, &e->cfg->helper, exp_otlphttp_send, e, err);
    if (e->helper == NULL) {
        goto fail;
    }
    *self = e;
    return 0;
fail:
    for (int i = 0; i < OM_SIG_COUNT; i++) {
        om_free(e->url[i]);
    }
    om_compressors_free(e->compressors);
    om_free(e);
    return err->code != 0 ? err->code : OM_ENOMEM;
}

/* Content-Type and Content-Encoding; the client adds User-Agent and the configured headers,
 * which win over these (as in otelcol). */
static void set_headers(exp_otlphttp_t *e)
{
    const exp_otlphttp_cfg_t *c = e->cfg;
    const char *comp = exp_otlphttp_comp_name((otlphttp_comp_t)c->compression);
    e->headers[0] = (om_http_header_t){"Content-Type", c->encoding == OTLPHTTP_ENC_JSON
                                                           ? "application/json"
                                                           : "application/x-protobuf"};
    e->n_headers = 1;
    if (comp != NULL) {
        e->headers[e->n_headers++] = (om_http_header_t){"Content-Encoding", comp};
    }
}

static int otlphttp_start(void *self, om_err_t *err)
{
    exp_otlphttp_t *e = self;
    const exp_otlphttp_cfg_t *c = e->cfg;
    set_headers(e);
    /* As many connections per host as requests in flight, unless configured. */
    om_http_client_opts_t opts = {
        .log_name = e->log_name, .max_conns_per_host = (long)c->helper.sending_queue.num_consumers};
    return om_http_client_new(e->host, &c->http, &opts, &e->client, err);
}

/* ------------------------------------------------------------------------------------------ */
/* Shutdown                                                                                   */

static void close_client(void *client, om_done_fn done, void *arg)
{
    om_http_client_close(client, done, arg);
}

/* The helper drains (everything queued sent or dropped), then the client closes. */
static void otlphttp_shutdown(void *self, om_done_fn done, void *arg)
{
    exp_otlphttp_t *e = self;
    om_exphelper_shutdown_closing(e->helper, close_client, e->client, done, arg);
}

static void otlphttp_destroy(void *self)
{
    exp_otlphttp_t *e = self;
    om_exphelper_free(e->helper);
    for (int i = 0; i < OM_SIG_COUNT; i++) {
        om_free(e->url[i]);
    }
    om_compressors_free(e->compressors);
    om_free(e);
}

static const char *const aliases[] = {"otlp_http", NULL};

const om_factory_t exp_otlphttp_factory = {
    .abi = OM_FACTORY_ABI,
    .kind = OM_EXPORTER,
    .type = "otlphttp",
    .aliases = aliases,
    .help = "OTLP over HTTP (protobuf or JSON) with retries, a sending queue and compression",
    .signals = OM_SIG_ALL,
    .config_size = sizeof(exp_otlphttp_cfg_t),
    .fields = exp_otlphttp_fields,
    .config_validate = exp_otlphttp_config_validate,
    .create = otlphttp_create,
    .start = otlphttp_start,
    .shutdown = otlphttp_shutdown,
    .destroy = otlphttp_destroy,
    .consume_traces = consume,
    .consume_metrics = consume,
    .consume_logs = consume,
};
