/* http_client.c: the core's HTTP client (om.h): requests on libcurl's multi interface, driven
 * by the libuv loop (curl_multi.c), with the shared confighttp settings applied once to a
 * template easy handle that each request duplicates.
 *
 * Threads: everything runs on the loop thread. libcurl's threaded resolver runs lookups on
 * threads of its own, which never touch our state.
 *
 * Ownership: the client owns its calls. A call owns its easy handle, its header lists, its
 * copy of the URL, the body when taken or copied, and the buffer of the response body. A call
 * is in exactly one of two lists: `running` (in the multi handle) or `cancelled` (taken out,
 * waiting for the `soon` timer to deliver its callback). It is freed right after its callback.
 *
 * Close: new requests are refused, running ones are cancelled; the `soon` timer delivers their
 * callbacks, then the multi handle closes its uv handles, then the timer closes, and the last
 * close callback frees the client and calls done. No callback ever runs from inside a function
 * the component called, so a component can close or cancel from anywhere, callbacks included. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "curl_api.h"

struct om_http_call {
    om_http_client_t *c;
    om_http_call_t *prev, *next;
    CURL *easy;
    struct curl_slist *headers, *connect_to;
    char *url; /* as given */
    void *body;
    bool owns_body, cancelled;
    bool finishing; /* its callback has started: the call is no longer the caller's to cancel */
    uint8_t *resp;
    size_t resp_len, resp_cap, resp_keep;
    uint64_t resp_total;
    bool resp_cut;
    om_http_done_fn done;
    void *arg;
    char errbuf[CURL_ERROR_SIZE];
};

struct om_http_client {
    uv_loop_t *loop;
    const om_http_client_cfg_t *cfg;
    char *log_name;
    CURL *tmpl;
    om__curl_multi_t *multi;
    uv_timer_t soon; /* data: the client; delivers cancelled calls */
    om_http_call_t *running, *cancelled;
    om_auth_client_t *auth; /* cfg->auth's authenticator; NULL: none */
    size_t pending;
    bool curl_global, closing, multi_closing;
    om_done_fn closed;
    void *closed_arg;
};

static bool is_set(const char *s)
{
    return s != NULL && s[0] != '\0';
}

static int curl_fail(om_err_t *err, const char *what, CURLcode c)
{
    int code = c == CURLE_OUT_OF_MEMORY ? OM_ENOMEM : OM_ECONFIG;
    om_err_set(err, code, "%s: %s", what, curl_easy_strerror(c));
    return code;
}

/* ------------------------------------------------------------------------------------------ */
/* The template: options every request shares                                                */

static long clamp_long(uint64_t v, long lo, long hi)
{
    return v < (uint64_t)lo ? lo : v > (uint64_t)hi ? hi : (long)v;
}

static long tls_version(const om_tls_client_cfg_t *t)
{
    static const long min[] = {CURL_SSLVERSION_TLSv1_2, CURL_SSLVERSION_TLSv1_0,
                               CURL_SSLVERSION_TLSv1_1, CURL_SSLVERSION_TLSv1_2,
                               CURL_SSLVERSION_TLSv1_3};
    static const long max[] = {CURL_SSLVERSION_MAX_DEFAULT, CURL_SSLVERSION_MAX_TLSv1_0,
                               CURL_SSLVERSION_MAX_TLSv1_1, CURL_SSLVERSION_MAX_TLSv1_2,
                               CURL_SSLVERSION_MAX_TLSv1_3};
    return min[t->common.min_version] | max[t->common.max_version];
}

static CURLcode set_blob(CURL *h, CURLoption opt, const char *pem)
{
    struct curl_blob b = {
        .data = (void *)(uintptr_t)pem, .len = strlen(pem), .flags = CURL_BLOB_COPY};
    return curl_easy_setopt(h, opt, &b);
}

/* An option that takes a string, set only when the string is not empty. */
static CURLcode set_list(CURL *h, CURLoption opt, char *list)
{
    CURLcode c = list == NULL      ? CURLE_OUT_OF_MEMORY
                 : list[0] != '\0' ? curl_easy_setopt(h, opt, list)
                                   : CURLE_OK;
    om_free(list);
    return c;
}

/* The CAs: the loaded PEM when it holds the system bundle too, else the file by name (curl
 * then caches the store) or the inline PEM. Debian's curl also trusts /etc/ssl/certs through
 * CAPATH, which a configured CA must replace. */
static CURLcode set_ca(CURL *h, const om_tls_client_cfg_t *t, const om_tls_pem_t *pem)
{
    if (pem->ca == NULL) {
        return CURLE_OK;
    }
    CURLcode c = is_set(t->common.ca_file) && !t->common.include_system_ca_certs_pool
                     ? curl_easy_setopt(h, CURLOPT_CAINFO, t->common.ca_file)
                     : set_blob(h, CURLOPT_CAINFO_BLOB, pem->ca);
    return c ? c : curl_easy_setopt(h, CURLOPT_CAPATH, NULL);
}

/* Files are given to curl by name: it reads them for each new connection, so a rotated
 * certificate is used from the next connection on (what reload_interval asks for). */
static CURLcode set_identity(CURL *h, const om_tls_client_cfg_t *t, const om_tls_pem_t *pem)
{
    if (pem->cert == NULL) {
        return CURLE_OK;
    }
    CURLcode c = is_set(t->common.cert_file)
                     ? curl_easy_setopt(h, CURLOPT_SSLCERT, t->common.cert_file)
                     : set_blob(h, CURLOPT_SSLCERT_BLOB, pem->cert);
    return c                            ? c
           : is_set(t->common.key_file) ? curl_easy_setopt(h, CURLOPT_SSLKEY, t->common.key_file)
                                        : set_blob(h, CURLOPT_SSLKEY_BLOB, pem->key);
}

CURLcode om__curl_set_tls(CURL *h, const om_tls_client_cfg_t *t, const om_tls_pem_t *pem)
{
    CURLcode c = curl_easy_setopt(h, CURLOPT_SSLVERSION, tls_version(t));
    c = c ? c : set_ca(h, t, pem);
    c = c ? c : set_identity(h, t, pem);
    if (t->insecure_skip_verify) {
        c = c ? c : curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
        c = c ? c : curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    c = c ? c : set_list(h, CURLOPT_SSL_CIPHER_LIST, om_tls_client_cipher_list(t));
    c = c ? c : set_list(h, CURLOPT_SSL_EC_CURVES, om_tls_client_curves_list(t));
    return c;
}

/* As Go's client (what otelcol uses): proxy_url proxies every request; without it the
 * http_proxy/https_proxy/no_proxy variables apply, except that loopback is never proxied. */
static CURLcode set_proxy(CURL *h, const om_http_client_cfg_t *c)
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

static CURLcode set_conn(CURL *h, const om_http_client_cfg_t *c, const char *user_agent)
{
    CURLcode r = curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    r = r ? r : curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    r = r ? r : curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    r = r ? r : curl_easy_setopt(h, CURLOPT_USERAGENT, user_agent);
    /* Go's client follows redirects; we keep the method and body on every redirect (307 and
     * 308 require it, and a POST that became a GET would lose the data). */
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

static int make_template(om_http_client_t *c, const om_http_client_opts_t *opts, om_err_t *err)
{
    om_tls_pem_t pem;
    int rc = om_tls_client_pem_load(&c->cfg->tls, "tls", &pem, err);
    if (rc != 0) {
        return rc;
    }
    c->tmpl = curl_easy_init();
    if (c->tmpl == NULL) {
        om_tls_pem_free(&pem);
        om_err_set(err, OM_ENOMEM, "out of memory (curl_easy_init)");
        return OM_ENOMEM;
    }
    const char *ua =
        opts != NULL && opts->user_agent != NULL ? opts->user_agent : "OtelMon/" OM_VERSION;
    CURLcode cc = set_conn(c->tmpl, c->cfg, ua);
    /* Blobs are copied by curl (CURL_BLOB_COPY), and again by each duphandle. */
    cc = cc ? cc : om__curl_set_tls(c->tmpl, &c->cfg->tls, &pem);
    om_tls_pem_free(&pem);
    return cc != CURLE_OK ? curl_fail(err, "libcurl refuses a setting", cc) : 0;
}

static void note_resolver(const om_http_client_t *c)
{
    const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
    if ((v->features & CURL_VERSION_ASYNCHDNS) == 0) {
        OM_CLOG(c->log_name, OM_LOG_WARN,
                "libcurl %s resolves names synchronously: DNS lookups block the loop "
                "(use IP addresses, or a libcurl built with the threaded resolver)",
                v->version);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Lifecycle                                                                                  */

static void on_xfer(void *arg, CURL *easy, CURLcode result);

static void client_free(om_http_client_t *c)
{
    if (c->tmpl != NULL) {
        curl_easy_cleanup(c->tmpl);
    }
    if (c->curl_global) {
        curl_global_cleanup();
    }
    om_auth_client_free(c->auth);
    om_free(c->log_name);
    om_free(c);
}

int om_http_client_new(om_host_t *host, const om_http_client_cfg_t *cfg,
                       const om_http_client_opts_t *opts, om_http_client_t **out, om_err_t *err)
{
    int rc = om__curl_load(err);
    if (rc != 0) {
        return rc;
    }
    om_http_client_t *c = om_calloc(1, sizeof *c);
    const char *name = opts != NULL && opts->log_name != NULL ? opts->log_name : "http client";
    if (c == NULL || (c->log_name = om_strdup(name)) == NULL) {
        om_free(c);
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    c->loop = host->loop;
    c->cfg = cfg;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        client_free(c);
        om_err_set(err, OM_EIO, "curl_global_init failed");
        return OM_EIO;
    }
    c->curl_global = true;
    rc = om_auth_client_new(host, &cfg->auth, &c->auth, err);
    rc = rc ? rc : make_template(c, opts, err);
    long per_host = cfg->max_conns_per_host > 0 ? (long)cfg->max_conns_per_host
                    : opts != NULL              ? opts->max_conns_per_host
                                                : 0;
    rc = rc ? rc
            : om__curl_multi_new(c->loop, per_host, (long)cfg->max_idle_conns, on_xfer, c,
                                 &c->multi, err);
    if (rc != 0) {
        client_free(c);
        return rc;
    }
    uv_timer_init(c->loop, &c->soon);
    c->soon.data = c;
    note_resolver(c);
    *out = c;
    return 0;
}

static void soon_closed(uv_handle_t *h)
{
    om_http_client_t *c = h->data;
    om_done_fn done = c->closed;
    void *arg = c->closed_arg;
    client_free(c);
    done(arg);
}

static void multi_closed(void *arg)
{
    om_http_client_t *c = arg;
    c->multi = NULL;
    uv_close((uv_handle_t *)&c->soon, soon_closed);
}

/* ------------------------------------------------------------------------------------------ */
/* Calls                                                                                      */

static void list_add(om_http_call_t **head, om_http_call_t *x)
{
    x->prev = NULL;
    x->next = *head;
    if (*head != NULL) {
        (*head)->prev = x;
    }
    *head = x;
}

static void list_del(om_http_call_t **head, om_http_call_t *x)
{
    if (x->prev != NULL) {
        x->prev->next = x->next;
    } else {
        *head = x->next;
    }
    if (x->next != NULL) {
        x->next->prev = x->prev;
    }
    x->prev = x->next = NULL;
}

static void call_free(om_http_call_t *x)
{
    if (x->easy != NULL) {
        curl_easy_cleanup(x->easy);
    }
    curl_slist_free_all(x->headers);
    curl_slist_free_all(x->connect_to);
    if (x->owns_body) {
        om_free(x->body);
    }
    om_free(x->url);
    om_free(x->resp);
    om_free(x);
}

/* Curl results no retry can fix: the request itself is wrong. */
static bool permanent(CURLcode c)
{
    return c == CURLE_UNSUPPORTED_PROTOCOL || c == CURLE_URL_MALFORMAT || c == CURLE_NOT_BUILT_IN ||
           c == CURLE_BAD_FUNCTION_ARGUMENT || c == CURLE_UNKNOWN_OPTION;
}

static void fill_error(om_http_response_t *r, const om_http_call_t *x, CURLcode res)
{
    r->error = res == CURLE_OUT_OF_MEMORY ? OM_ENOMEM : permanent(res) ? OM_EPERM : OM_EIO;
    r->retryable = r->error != OM_EPERM;
    r->timed_out = res == CURLE_OPERATION_TIMEDOUT;
    r->message = x->errbuf[0] != '\0' ? x->errbuf : curl_easy_strerror(res);
}

/* Runs the call's callback, then frees the call. */
static void finish(om_http_call_t *x, CURLcode res)
{
    om_http_client_t *c = x->c;
    om_http_response_t r = {.url = x->url, .call = x, .message = "", .body_total = x->resp_total};
    if (x->cancelled) {
        r.error = OM_ESHUTDOWN;
        r.message = "cancelled";
    } else if (res != CURLE_OK && !(res == CURLE_WRITE_ERROR && x->resp_cut)) {
        fill_error(&r, x, res);
    } else {
        long status = 0;
        char *ctype = NULL;
        curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_getinfo(x->easy, CURLINFO_CONTENT_TYPE, &ctype);
        r.status = (int)status;
        r.content_type = ctype;
        r.body = x->resp_len > 0 ? x->resp : NULL;
        r.body_len = x->resp_len;
        r.body_cut = x->resp_cut;
    }
    c->pending--;
    x->finishing = true;
    x->done(x->arg, &r);
    call_free(x);
}

static void on_xfer(void *arg, CURL *easy, CURLcode result)
{
    (void)arg;
    om_http_call_t *x = NULL;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
    list_del(&x->c->running, x);
    finish(x, result);
}

static void maybe_close_multi(om_http_client_t *c)
{
    if (c->closing && !c->multi_closing && c->running == NULL && c->cancelled == NULL) {
        c->multi_closing = true;
        om__curl_multi_close(c->multi, multi_closed, c);
    }
}

/* Delivers cancelled calls; those cancelled meanwhile too (bounded by the calls that exist:
 * callbacks cannot make new ones while the client closes, and cancelling is once per call). */
static void on_soon(uv_timer_t *t)
{
    om_http_client_t *c = t->data;
    while (c->cancelled != NULL) {
        om_http_call_t *x = c->cancelled;
        list_del(&c->cancelled, x);
        finish(x, CURLE_OK);
    }
    maybe_close_multi(c);
}

void om_http_cancel(om_http_call_t *x)
{
    if (x == NULL || x->cancelled || x->finishing) {
        return;
    }
    om_http_client_t *c = x->c;
    x->cancelled = true;
    om__curl_multi_remove(c->multi, x->easy);
    list_del(&c->running, x);
    list_add(&c->cancelled, x);
    uv_timer_start(&c->soon, on_soon, 0, 0);
}

void om_http_client_close(om_http_client_t *c, om_done_fn done, void *arg)
{
    if (c->closing) {
        return;
    }
    c->closing = true;
    c->closed = done;
    c->closed_arg = arg;
    while (c->running != NULL) {
        om_http_cancel(c->running);
    }
    uv_timer_start(&c->soon, on_soon, 0, 0);
}

size_t om_http_client_pending(const om_http_client_t *c)
{
    return c->pending;
}

const char *om_http_response_header(const om_http_response_t *r, const char *name)
{
    om_http_call_t *x = r->call;
    struct curl_header *h = NULL;
    if (x == NULL || x->cancelled || x->easy == NULL ||
        curl_easy_header(x->easy, name, 0, CURLH_HEADER, -1, &h) != CURLHE_OK) {
        return NULL;
    }
    if (h->amount > 1 &&
        curl_easy_header(x->easy, name, h->amount - 1, CURLH_HEADER, -1, &h) != CURLHE_OK) {
        return NULL;
    }
    return h->value;
}

/* ------------------------------------------------------------------------------------------ */
/* Sending                                                                                    */

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    om_http_call_t *x = ud;
    size_t len = size * n;
    x->resp_total += len;
    if (x->resp_total > OM_HTTP_RESP_ABORT) {
        x->resp_cut = true;
        return 0; /* stops the transfer with CURLE_WRITE_ERROR */
    }
    size_t want = x->resp_keep - x->resp_len;
    want = want < len ? want : len;
    if (want > 0 && x->resp_len + want > x->resp_cap) {
        size_t cap = x->resp_cap > 0 ? x->resp_cap : 16 * 1024;
        while (cap < x->resp_len + want) {
            cap *= 2;
        }
        cap = cap < x->resp_keep ? cap : x->resp_keep;
        uint8_t *nb = om_realloc(x->resp, cap);
        /* Without memory the rest is read and discarded: the status still counts. */
        want = nb != NULL ? want : 0;
        if (nb != NULL) {
            x->resp = nb;
            x->resp_cap = cap;
        }
    }
    if (want > 0) {
        memcpy(x->resp + x->resp_len, p, want);
        x->resp_len += want;
    }
    return len;
}

static int check_request(const om_http_request_t *rq, const char *method, om_err_t *err)
{
    if (!is_set(rq->url) || strpbrk(rq->url, "\r\n ") != NULL) {
        om_err_set(err, OM_EINVAL, "invalid URL \"%.200s\"", rq->url != NULL ? rq->url : "");
        return OM_EINVAL;
    }
    if (!om__http_token(method)) {
        om_err_set(err, OM_EINVAL, "invalid method \"%.32s\"", method);
        return OM_EINVAL;
    }
    if (rq->body_len > 0 &&
        (rq->body == NULL || strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0)) {
        om_err_set(err, OM_EINVAL, "%s request with a body", method);
        return OM_EINVAL;
    }
    for (size_t i = 0; i < rq->n_headers; i++) {
        const om_http_header_t *h = &rq->headers[i];
        if (!om__http_token(h->name) || h->value == NULL || strpbrk(h->value, "\r\n") != NULL) {
            om_err_set(err, OM_EINVAL, "invalid request header \"%.64s\"",
                       h->name != NULL ? h->name : "");
            return OM_EINVAL;
        }
    }
    return 0;
}

static bool cfg_sets(const om_http_client_cfg_t *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->headers.n; i++) {
        if (strcasecmp(cfg->headers.keys[i], name) == 0) {
            return true;
        }
    }
    return false;
}

static bool auth_sets(const om_http_header_t *auth, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++) {
        if (strcasecmp(auth[i].name, name) == 0) {
            return true;
        }
    }
    return false;
}

static bool req_sets(const om_http_request_t *rq, const char *name)
{
    for (size_t i = 0; i < rq->n_headers; i++) {
        if (strcasecmp(rq->headers[i].name, name) == 0) {
            return true;
        }
    }
    return false;
}

/* Appends "name: value" (curl's "name;" for an empty value, since "name:" removes a header;
 * value NULL: "name:", which removes a header curl would add). */
static bool add_header(struct curl_slist **list, const char *name, const char *value)
{
    om_strbuf_t sb;
    om_strbuf_init(&sb, 0);
    if (value == NULL) {
        om_strbuf_printf(&sb, "%s:", name);
    } else {
        om_strbuf_printf(&sb, value[0] != '\0' ? "%s: %s" : "%s;", name, value);
    }
    struct curl_slist *nl = sb.failed ? NULL : curl_slist_append(*list, sb.data);
    om_strbuf_free(&sb);
    if (nl == NULL) {
        return false;
    }
    *list = nl;
    return true;
}

/* The request's headers unless configured ones replace them, what curl would add wrongly
 * (Expect: 100-continue, a form Content-Type), the Host of a server_name_override, then the
 * configured headers, then the authenticator's, which replace any of the same name (as
 * otelcol's auth round tripper is the innermost). */
static int build_headers(om_http_call_t *x, const om_http_request_t *rq, bool has_body,
                         const char *host, om_err_t *err)
{
    const om_http_client_cfg_t *cfg = x->c->cfg;
    om_http_header_t auth[OM_AUTH_MAX_HEADERS];
    size_t n_auth = om_auth_client_headers(x->c->auth, auth, OM_AUTH_MAX_HEADERS);
    bool ok = true;
    for (size_t i = 0; ok && i < rq->n_headers; i++) {
        if (!cfg_sets(cfg, rq->headers[i].name) && !auth_sets(auth, n_auth, rq->headers[i].name)) {
            ok = add_header(&x->headers, rq->headers[i].name, rq->headers[i].value);
        }
    }
    const struct {
        const char *name, *value;
        bool when;
    } extra[] = {
        {"Expect", NULL, true}, /* no 100-continue round trip */
        {"Content-Type", NULL, has_body},
        {"Host", host, host != NULL},
    };
    for (size_t i = 0; ok && i < sizeof extra / sizeof extra[0]; i++) {
        if (extra[i].when && !cfg_sets(cfg, extra[i].name) && !req_sets(rq, extra[i].name)) {
            ok = add_header(&x->headers, extra[i].name, extra[i].value);
        }
    }
    for (size_t i = 0; ok && i < cfg->headers.n; i++) {
        const char *v = cfg->headers.values[i];
        if (!auth_sets(auth, n_auth, cfg->headers.keys[i])) {
            ok = add_header(&x->headers, cfg->headers.keys[i], v != NULL ? v : "");
        }
    }
    for (size_t i = 0; ok && i < n_auth; i++) {
        ok = add_header(&x->headers, auth[i].name, auth[i].value);
    }
    if (!ok) {
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    return 0;
}

/* server_name_override: curl has no option for the TLS name alone, so the URL names the
 * override (used for SNI and the certificate check), CURLOPT_CONNECT_TO sends the connection
 * to the real host, and a Host header keeps what the server sees unchanged. *target and
 * *host_header are set (om_malloc'd) only when the URL changes. */
static int name_override(om_http_call_t *x, char **target, char **host_header, om_err_t *err)
{
    const char *name = x->c->cfg->tls.server_name_override;
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL, *eport = NULL, *nurl = NULL;
    int rc = OM_ENOMEM;
    if (u == NULL || curl_url_set(u, CURLUPART_URL, x->url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
        om_err_set(err, u == NULL ? OM_ENOMEM : OM_EINVAL, "cannot parse the URL \"%.200s\"",
                   x->url);
        rc = u == NULL ? OM_ENOMEM : OM_EINVAL;
        goto out;
    }
    if (strcasecmp(scheme, "https") != 0 || strcasecmp(host, name) == 0) {
        rc = 0; /* no TLS, or nothing to change */
        goto out;
    }
    bool explicit_port = curl_url_get(u, CURLUPART_PORT, &eport, 0) == CURLUE_OK;
    if (curl_url_set(u, CURLUPART_HOST, name, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_URL, &nurl, 0) != CURLUE_OK) {
        om_err_set(err, OM_EINVAL, "tls::server_name_override: invalid host name \"%.100s\"", name);
        rc = OM_EINVAL;
        goto out;
    }
    om_strbuf_t ct, hh;
    om_strbuf_init(&ct, 0);
    om_strbuf_init(&hh, 0);
    om_strbuf_printf(&ct, "%s:%s:%s:%s", name, port, host, port);
    om_strbuf_printf(&hh, "%s%s%s", host, explicit_port ? ":" : "", explicit_port ? eport : "");
    x->connect_to = ct.failed ? NULL : curl_slist_append(NULL, ct.data);
    *target = om_strdup(nurl);
    *host_header = hh.failed ? NULL : om_strbuf_steal(&hh, NULL);
    if (x->connect_to != NULL && *target != NULL && *host_header != NULL) {
        rc = 0;
    } else {
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

/* Whether the method carries a body (POSTFIELDS) rather than a GET-like request. */
static bool sends_body(const char *method, size_t body_len)
{
    return body_len > 0 || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
           strcmp(method, "PATCH") == 0;
}

static CURLcode set_method(CURL *h, const char *method, const om_http_call_t *x, size_t len)
{
    if (!sends_body(method, len)) {
        CURLcode c = strcmp(method, "HEAD") == 0 ? curl_easy_setopt(h, CURLOPT_NOBODY, 1L)
                                                 : curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
        bool custom = strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0;
        return c ? c : custom ? curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method) : CURLE_OK;
    }
    CURLcode c = curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    c = c ? c : curl_easy_setopt(h, CURLOPT_POSTFIELDS, x->body != NULL ? x->body : "");
    if (strcmp(method, "POST") != 0) {
        c = c ? c : curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    }
    return c;
}

static int setup_easy(om_http_call_t *x, const om_http_request_t *rq, const char *method,
                      const char *target, om_err_t *err)
{
    CURL *h = curl_easy_duphandle(x->c->tmpl);
    if (h == NULL) {
        om_err_set(err, OM_ENOMEM, "out of memory (curl_easy_duphandle)");
        return OM_ENOMEM;
    }
    x->easy = h;
    uint64_t t = rq->timeout_ms;
    CURLcode c = curl_easy_setopt(h, CURLOPT_URL, target);
    c = c ? c : curl_easy_setopt(h, CURLOPT_HTTPHEADER, x->headers);
    if (x->connect_to != NULL) {
        c = c ? c : curl_easy_setopt(h, CURLOPT_CONNECT_TO, x->connect_to);
    }
    c = c ? c : set_method(h, method, x, rq->body_len);
    c = c ? c : curl_easy_setopt(h, CURLOPT_PRIVATE, x);
    c = c ? c : curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    c = c ? c : curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
    c = c ? c : curl_easy_setopt(h, CURLOPT_ERRORBUFFER, x->errbuf);
    c = c ? c : curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(t > LONG_MAX ? LONG_MAX : t));
    return c != CURLE_OK ? curl_fail(err, "curl_easy_setopt", c) : 0;
}

/* The call with its own copies, the body as the request says. A body to take is the
 * call's (or freed) on every path. */
static om_http_call_t *call_new(om_http_client_t *c, const om_http_request_t *rq)
{
    om_http_call_t *x = om_calloc(1, sizeof *x);
    if (x == NULL) {
        if (rq->body_mode == OM_HTTP_BODY_TAKE) {
            om_free((void *)(uintptr_t)rq->body);
        }
        return NULL;
    }
    x->c = c;
    x->url = om_strdup(rq->url);
    if (rq->body_mode == OM_HTTP_BODY_TAKE) {
        x->body = (void *)(uintptr_t)rq->body;
        x->owns_body = true;
    } else if (rq->body_mode == OM_HTTP_BODY_COPY && rq->body_len > 0) {
        x->body = om_malloc(rq->body_len);
        x->owns_body = true;
        if (x->body != NULL) {
            memcpy(x->body, rq->body, rq->body_len);
        }
    } else {
        x->body = (void *)(uintptr_t)rq->body;
    }
    size_t keep = rq->max_response_body > 0 ? rq->max_response_body : OM_HTTP_RESP_KEEP;
    x->resp_keep = keep < OM_HTTP_RESP_ABORT ? keep : OM_HTTP_RESP_ABORT;
    if (x->url == NULL || (x->owns_body && x->body == NULL && rq->body_len > 0)) {
        call_free(x);
        return NULL;
    }
    return x;
}

static int prepare(om_http_call_t *x, const om_http_request_t *rq, const char *method,
                   om_err_t *err)
{
    char *target = NULL, *host = NULL;
    int rc = 0;
    if (is_set(x->c->cfg->tls.server_name_override)) {
        rc = name_override(x, &target, &host, err);
    }
    rc = rc ? rc : build_headers(x, rq, sends_body(method, rq->body_len), host, err);
    rc = rc ? rc : setup_easy(x, rq, method, target != NULL ? target : x->url, err);
    om_free(target);
    om_free(host);
    return rc;
}

int om_http_send(om_http_client_t *c, const om_http_request_t *rq, om_http_done_fn done, void *arg,
                 om_http_call_t **call, om_err_t *err)
{
    const char *method = rq->method != NULL ? rq->method : rq->body_len > 0 ? "POST" : "GET";
    int rc = c->closing ? OM_ESHUTDOWN : check_request(rq, method, err);
    if (rc == OM_ESHUTDOWN) {
        om_err_set(err, OM_ESHUTDOWN, "the HTTP client is closing");
    }
    if (rc != 0) {
        if (rq->body_mode == OM_HTTP_BODY_TAKE) {
            om_free((void *)(uintptr_t)rq->body);
        }
        return rc;
    }
    om_http_call_t *x = call_new(c, rq);
    if (x == NULL) {
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    rc = prepare(x, rq, method, err);
    rc = rc ? rc : om__curl_multi_add(c->multi, x->easy, err);
    if (rc != 0) {
        call_free(x);
        return rc;
    }
    x->done = done;
    x->arg = arg;
    list_add(&c->running, x);
    c->pending++;
    if (call != NULL) {
        *call = x;
    }
    return 0;
}
