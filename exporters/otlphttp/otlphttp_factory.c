/* otlphttp_factory.c: the otlphttp exporter's factory and lifecycle.
 *
 * create composes the per-signal URLs (no I/O); start initialises libcurl, builds the request
 * template (TLS, proxy, connection settings) and the header lists, and creates the multi
 * handle on the loop; shutdown lets the exporter helper drain its queue (retries included),
 * then closes the multi handle and its uv handles and calls done after the last close
 * callback. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "otlphttp.h"

static bool is_set(const char *s)
{
    return s != NULL && s[0] != '\0';
}

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
    om_free(e);
    return err->code != 0 ? err->code : OM_ENOMEM;
}

/* ------------------------------------------------------------------------------------------ */
/* Headers                                                                                    */

static bool user_sets(const exp_otlphttp_cfg_t *c, const char *name)
{
    for (size_t i = 0; i < c->headers.n; i++) {
        if (strcasecmp(c->headers.keys[i], name) == 0) {
            return true;
        }
    }
    return false;
}

/* Appends "name: value" (curl's "name;" for an empty value, since "name:" removes a header).
 * Returns false when out of memory; *list is kept valid either way. */
static bool add_header(struct curl_slist **list, const char *name, const char *value)
{
    om_strbuf_t sb;
    om_strbuf_init(&sb, 0);
    om_strbuf_printf(&sb, value[0] != '\0' ? "%s: %s" : "%s;", name, value);
    struct curl_slist *nl = sb.failed ? NULL : curl_slist_append(*list, sb.data);
    om_strbuf_free(&sb);
    if (nl == NULL) {
        return false;
    }
    *list = nl;
    return true;
}

/* Ours first, each unless the configured headers set it (theirs win, as in otelcol); then
 * theirs. host_header: the Host to send when server_name_override changed the URL, or NULL. */
static int build_headers(exp_otlphttp_t *e, int idx, const char *host_header, om_err_t *err)
{
    const exp_otlphttp_cfg_t *c = e->cfg;
    const char *comp = exp_otlphttp_comp_name((otlphttp_comp_t)c->compression);
    const struct {
        const char *name, *value;
    } ours[] = {
        {"Content-Type",
         c->encoding == OTLPHTTP_ENC_JSON ? "application/json" : "application/x-protobuf"},
        {"Content-Encoding", comp},
        {"User-Agent", "OtelMon/" OM_VERSION},
        {"Expect", ""}, /* no 100-continue round trip: "Expect:" removes curl's */
        {"Host", host_header},
    };
    bool ok = true;
    for (size_t i = 0; ok && i < sizeof ours / sizeof ours[0]; i++) {
        if (ours[i].value == NULL || user_sets(c, ours[i].name)) {
            continue;
        }
        if (ours[i].value[0] == '\0') {
            struct curl_slist *nl = curl_slist_append(e->headers[idx], "Expect:");
            ok = nl != NULL;
            e->headers[idx] = nl != NULL ? nl : e->headers[idx];
        } else {
            ok = add_header(&e->headers[idx], ours[i].name, ours[i].value);
        }
    }
    for (size_t i = 0; ok && i < c->headers.n; i++) {
        ok = add_header(&e->headers[idx], c->headers.keys[i], c->headers.values[i]);
    }
    if (!ok) {
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* server_name_override: curl has no option for the TLS name alone, so the URL names the      */
/* override (used for SNI and certificate checks), CURLOPT_CONNECT_TO sends the connection to */
/* the real host, and a Host header keeps what the server sees unchanged.                     */

static int apply_name_override(exp_otlphttp_t *e, int idx, char **host_header, om_err_t *err)
{
    const char *name = e->cfg->tls.server_name_override;
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL, *eport = NULL, *nurl = NULL;
    int rc = OM_ENOMEM;
    if (u == NULL || curl_url_set(u, CURLUPART_URL, e->url[idx], 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
        om_err_set(err, OM_ECONFIG, "cannot parse the URL \"%.200s\"", e->url[idx]);
        rc = OM_ECONFIG;
        goto out;
    }
    if (strcasecmp(scheme, "https") != 0 || strcasecmp(host, name) == 0) {
        rc = 0; /* no TLS, or nothing to change */
        goto out;
    }
    bool explicit_port = curl_url_get(u, CURLUPART_PORT, &eport, 0) == CURLUE_OK;
    if (curl_url_set(u, CURLUPART_HOST, name, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_URL, &nurl, 0) != CURLUE_OK) {
        om_err_set(err, OM_ECONFIG, "tls::server_name_override: invalid host name \"%.100s\"",
                   name);
        rc = OM_ECONFIG;
        goto out;
    }
    om_strbuf_t ct, hh;
    om_strbuf_init(&ct, 0);
    om_strbuf_init(&hh, 0);
    om_strbuf_printf(&ct, "%s:%s:%s:%s", name, port, host, port);
    om_strbuf_printf(&hh, "%s%s%s", host, explicit_port ? ":" : "", explicit_port ? eport : "");
    struct curl_slist *l = ct.failed ? NULL : curl_slist_append(NULL, ct.data);
    char *u2 = om_strdup(nurl);
    if (l != NULL && u2 != NULL && !hh.failed) {
        e->connect_to[idx] = l;
        om_free(e->url[idx]);
        e->url[idx] = u2;
        *host_header = om_strbuf_steal(&hh, NULL);
        rc = 0;
    } else {
        curl_slist_free_all(l);
        om_free(u2);
        om_err_set(err, OM_ENOMEM, "out of memory");
    }
    om_strbuf_free(&ct);
    om_strbuf_free(&hh);
out:
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_free(eport);
    curl_free(nurl);
    curl_url_cleanup(u);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* The request template                                                                       */

static long clamp_long(uint64_t v, long lo, long hi)
{
    return v < (uint64_t)lo ? lo : v > (uint64_t)hi ? hi : (long)v;
}

static long tls_version(const otlphttp_tls_cfg_t *t)
{
    static const long min[] = {CURL_SSLVERSION_TLSv1_2, CURL_SSLVERSION_TLSv1_0,
                               CURL_SSLVERSION_TLSv1_1, CURL_SSLVERSION_TLSv1_2,
                               CURL_SSLVERSION_TLSv1_3};
    static const long max[] = {CURL_SSLVERSION_MAX_DEFAULT, CURL_SSLVERSION_MAX_TLSv1_0,
                               CURL_SSLVERSION_MAX_TLSv1_1, CURL_SSLVERSION_MAX_TLSv1_2,
                               CURL_SSLVERSION_MAX_TLSv1_3};
    return min[t->min_version] | max[t->max_version];
}

static CURLcode set_blob(CURL *h, CURLoption opt, const char *pem)
{
    struct curl_blob b = {
        .data = (void *)(uintptr_t)pem, .len = strlen(pem), .flags = CURL_BLOB_COPY};
    return curl_easy_setopt(h, opt, &b);
}

static CURLcode set_tls(CURL *h, const otlphttp_tls_cfg_t *t)
{
    CURLcode c = curl_easy_setopt(h, CURLOPT_SSLVERSION, tls_version(t));
    if (is_set(t->ca_file)) {
        c = c ? c : curl_easy_setopt(h, CURLOPT_CAINFO, t->ca_file);
    } else if (is_set(t->ca_pem)) {
        c = c ? c : set_blob(h, CURLOPT_CAINFO_BLOB, t->ca_pem);
    }
    if ((is_set(t->ca_file) || is_set(t->ca_pem)) && !t->include_system_ca_certs_pool) {
        /* Debian's curl also trusts /etc/ssl/certs through CAPATH: only the given CAs. */
        c = c ? c : curl_easy_setopt(h, CURLOPT_CAPATH, NULL);
    }
    if (is_set(t->cert_file)) {
        c = c ? c : curl_easy_setopt(h, CURLOPT_SSLCERT, t->cert_file);
    } else if (is_set(t->cert_pem)) {
        c = c ? c : set_blob(h, CURLOPT_SSLCERT_BLOB, t->cert_pem);
    }
    if (is_set(t->key_file)) {
        c = c ? c : curl_easy_setopt(h, CURLOPT_SSLKEY, t->key_file);
    } else if (is_set(t->key_pem)) {
        c = c ? c : set_blob(h, CURLOPT_SSLKEY_BLOB, t->key_pem);
    }
    if (t->insecure_skip_verify) {
        c = c ? c : curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
        c = c ? c : curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    return c;
}

/* As Go's client (what otelcol uses): proxy_url proxies every request; without it the
 * http_proxy/https_proxy/no_proxy variables apply, except that loopback is never proxied. */
static CURLcode set_proxy(CURL *h, const exp_otlphttp_cfg_t *c)
{
    if (is_set(c->proxy_url)) {
        CURLcode r = curl_easy_setopt(h, CURLOPT_PROXY, c->proxy_url);
        return r ? r : curl_easy_setopt(h, CURLOPT_NOPROXY, "");
    }
    const char *env = getenv("no_proxy");
    if (env == NULL || env[0] == '\0') {
        env = getenv("NO_PROXY");
    }
    if (env != NULL && strcmp(env, "*") == 0) {
        return curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    }
    om_strbuf_t sb;
    om_strbuf_init(&sb, 0);
    if (env != NULL && env[0] != '\0') {
        om_strbuf_printf(&sb, "%s,", env);
    }
    om_strbuf_puts(&sb, "localhost,127.0.0.0/8,::1");
    /* curl copies the string. */
    CURLcode r = sb.failed ? CURLE_OUT_OF_MEMORY : curl_easy_setopt(h, CURLOPT_NOPROXY, sb.data);
    om_strbuf_free(&sb);
    return r;
}

static CURLcode set_conn(CURL *h, const exp_otlphttp_cfg_t *c)
{
    CURLcode r = curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    r = r ? r : curl_easy_setopt(h, CURLOPT_POST, 1L);
    r = r ? r : curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    r = r ? r : curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    /* Go's client follows redirects; 307/308 keep the POST and its body. */
    r = r ? r : curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
    r = r ? r : curl_easy_setopt(h, CURLOPT_MAXREDIRS, 10L);
    r = r ? r : curl_easy_setopt(h, CURLOPT_POSTREDIR, (long)CURL_REDIR_POST_ALL);
    r = r ? r : curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    r = r ? r : curl_easy_setopt(h, CURLOPT_FORBID_REUSE, c->disable_keep_alives ? 1L : 0L);
    int64_t idle_s = (c->idle_conn_timeout + OM_NS_PER_S - 1) / OM_NS_PER_S;
    /* otelcol's 0 means no limit; curl's default is 118 s. */
    long maxage = idle_s == 0 ? LONG_MAX / 2 : clamp_long((uint64_t)idle_s, 1, LONG_MAX / 2);
    r = r ? r : curl_easy_setopt(h, CURLOPT_MAXAGE_CONN, maxage);
    if (c->read_buffer_size > 0) {
        r = r ? r
              : curl_easy_setopt(h, CURLOPT_BUFFERSIZE,
                                 clamp_long(c->read_buffer_size, 1024, CURL_MAX_READ_SIZE));
    }
    if (c->write_buffer_size > 0) {
        r = r ? r
              : curl_easy_setopt(h, CURLOPT_UPLOAD_BUFFERSIZE,
                                 clamp_long(c->write_buffer_size, 16L * 1024, 2L * 1024 * 1024));
    }
    return r ? r : set_proxy(h, c);
}

/* The TLS files must be readable now, not at the first send (which would only retry). */
static int check_files(const otlphttp_tls_cfg_t *t, om_err_t *err)
{
    const char *keys[] = {"ca_file", "cert_file", "key_file"};
    const char *paths[] = {t->ca_file, t->cert_file, t->key_file};
    for (size_t i = 0; i < 3; i++) {
        if (is_set(paths[i]) && access(paths[i], R_OK) != 0) {
            om_err_set(err, OM_ECONFIG, "tls::%s: cannot read \"%.200s\": %s", keys[i], paths[i],
                       strerror(errno));
            return OM_ECONFIG;
        }
    }
    return 0;
}

static int make_template(exp_otlphttp_t *e, om_err_t *err)
{
    e->tmpl = curl_easy_init();
    if (e->tmpl == NULL) {
        om_err_set(err, OM_ENOMEM, "out of memory (curl_easy_init)");
        return OM_ENOMEM;
    }
    CURLcode c = set_conn(e->tmpl, e->cfg);
    c = c ? c : set_tls(e->tmpl, &e->cfg->tls);
    if (c != CURLE_OK) {
        om_err_set(err, OM_ECONFIG, "libcurl refuses a setting: %s", curl_easy_strerror(c));
        return OM_ECONFIG;
    }
    return 0;
}

static void note_resolver(const exp_otlphttp_t *e)
{
    const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
    if ((v->features & CURL_VERSION_ASYNCHDNS) == 0) {
        OM_CLOG(e->log_name, OM_LOG_WARN,
                "libcurl %s resolves names synchronously: DNS lookups block the loop "
                "(use IP addresses, or a libcurl built with the threaded resolver)",
                v->version);
    }
}

static int otlphttp_start(void *self, om_err_t *err)
{
    exp_otlphttp_t *e = self;
    const exp_otlphttp_cfg_t *c = e->cfg;
    int lrc = exp_otlphttp_curl_load(err);
    if (lrc != 0) {
        return lrc;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        om_err_set(err, OM_EIO, "curl_global_init failed");
        return OM_EIO;
    }
    e->curl_global = true;
    note_resolver(e);
    int rc = check_files(&c->tls, err);
    rc = rc ? rc : make_template(e, err);
    for (int i = 0; rc == 0 && i < OM_SIG_COUNT; i++) {
        if (e->url[i] == NULL) {
            continue;
        }
        char *host_header = NULL;
        if (is_set(c->tls.server_name_override)) {
            rc = apply_name_override(e, i, &host_header, err);
        }
        rc = rc ? rc : build_headers(e, i, host_header, err);
        om_free(host_header);
    }
    long per_host = c->max_conns_per_host > 0 ? (long)c->max_conns_per_host
                                              : (long)c->helper.sending_queue.num_consumers;
    rc = rc ? rc
            : exp_otlphttp_multi_new(e->host->loop, per_host, (long)c->max_idle_conns,
                                     exp_otlphttp_xfer_done, e, &e->multi, err);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Shutdown                                                                                   */

static void finish(exp_otlphttp_t *e)
{
    om_done_fn done = e->done;
    e->done = NULL;
    done(e->done_arg);
}

static void multi_closed(void *arg)
{
    exp_otlphttp_t *e = arg;
    e->multi = NULL;
    finish(e);
}

/* Everything queued was sent or dropped; no transfer is running. */
static void drained(void *arg)
{
    exp_otlphttp_t *e = arg;
    if (e->multi == NULL) {
        finish(e);
        return;
    }
    exp_otlphttp_multi_close(e->multi, multi_closed, e);
}

static void otlphttp_shutdown(void *self, om_done_fn done, void *arg)
{
    exp_otlphttp_t *e = self;
    if (e->shutting_down) {
        return;
    }
    e->shutting_down = true;
    e->done = done;
    e->done_arg = arg;
    om_exphelper_shutdown(e->helper, drained, e);
}

static void otlphttp_destroy(void *self)
{
    exp_otlphttp_t *e = self;
    om_exphelper_free(e->helper);
    if (e->tmpl != NULL) {
        curl_easy_cleanup(e->tmpl);
    }
    for (int i = 0; i < OM_SIG_COUNT; i++) {
        om_free(e->url[i]);
        curl_slist_free_all(e->headers[i]);
        curl_slist_free_all(e->connect_to[i]);
    }
    if (e->curl_global) {
        curl_global_cleanup();
    }
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
