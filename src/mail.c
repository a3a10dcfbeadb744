/* mail.c: the core's mail client (om.h, "Mail client"): messages built here, sent over SMTP by
 * libcurl's multi interface on the loop (curl_multi.c), with the shared TLS client settings.
 *
 * The message: every piece of text a component passes (subjects and bodies made of span data)
 * is data, never syntax. Bodies go in base64 (no line can start a "." or exceed SMTP's 998
 * characters, and bytes are kept exactly); a subject that is not plain printable ASCII goes in
 * RFC 2047 encoded words; addresses come only from the validated config.
 *
 * Threads: the loop thread only, except om_mail_format (any thread). libcurl's threaded
 * resolver runs lookups on threads of its own, which never touch our state.
 *
 * Ownership: the client owns its sends. A send owns its easy handle, its recipient list and
 * its formatted message, and is freed right after its callback. */
#include <openssl/evp.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "curl_api.h"

/* ------------------------------------------------------------------------------------------ */
/* Config                                                                                     */

const om_field_t om_mail_fields[] = {
    {.key = "endpoint",
     .type = OM_F_STRING,
     .offset = offsetof(om_mail_cfg_t, endpoint),
     .help = "smtp://host:port (STARTTLS) or smtps://host:port (TLS)"},
    {.key = "starttls",
     .type = OM_F_BOOL,
     .offset = offsetof(om_mail_cfg_t, starttls),
     .def = "true",
     .help = "smtp://: upgrade the connection with STARTTLS, and fail if the server cannot"},
    {.key = "username",
     .type = OM_F_STRING,
     .offset = offsetof(om_mail_cfg_t, username),
     .help = "SMTP AUTH user"},
    {.key = "password",
     .type = OM_F_STRING,
     .offset = offsetof(om_mail_cfg_t, password),
     .help = "SMTP AUTH password (use ${env:VAR} or ${file:PATH})"},
    {.key = "from",
     .type = OM_F_STRING,
     .offset = offsetof(om_mail_cfg_t, from),
     .help = "sender address"},
    {.key = "to",
     .type = OM_F_STRLIST,
     .offset = offsetof(om_mail_cfg_t, to),
     .help = "recipient addresses"},
    {.key = "timeout",
     .type = OM_F_DURATION,
     .offset = offsetof(om_mail_cfg_t, timeout),
     .def = "30s",
     .min = 1e6,
     .max = 3.6e12,
     .help = "time limit of one send, connection included"},
    {.key = "tls",
     .type = OM_F_SECTION,
     .offset = offsetof(om_mail_cfg_t, tls),
     .fields = om_tls_client_fields,
     .help = "TLS client settings (smtps://, STARTTLS)"},
    {.key = NULL},
};

static bool is_set(const char *s)
{
    return s != NULL && s[0] != '\0';
}

/* An addr-spec as configs write them: local@domain, one @, nothing that could end the
 * address or the line in the SMTP dialogue or a header. */
static bool address_ok(const char *a)
{
    const char *at = strchr(a, '@');
    if (strlen(a) > 254 || at == NULL || at == a || at[1] == '\0' || strchr(at + 1, '@') != NULL) {
        return false;
    }
    for (const unsigned char *p = (const unsigned char *)a; *p != '\0'; p++) {
        if (*p <= ' ' || *p >= 0x7f || strchr("<>(),;:\\\"[]", *p) != NULL) {
            return false;
        }
    }
    return true;
}

static bool loopback_host(const char *h)
{
    return strcasecmp(h, "localhost") == 0 || strncmp(h, "127.", 4) == 0 ||
           strcmp(h, "[::1]") == 0 || strcmp(h, "::1") == 0;
}

/* The URL's scheme and host (curl_free'd by the caller), or an error at key::endpoint. */
static int parse_endpoint(const char *key, const char *url, char **scheme, char **host,
                          om_err_t *err)
{
    char path[160];
    snprintf(path, sizeof path, "%s::endpoint", key);
    CURLU *u = curl_url();
    if (u == NULL) {
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    char *p = NULL, *q = NULL;
    *scheme = *host = NULL;
    bool ok = curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
              curl_url_get(u, CURLUPART_SCHEME, scheme, 0) == CURLUE_OK &&
              curl_url_get(u, CURLUPART_HOST, host, 0) == CURLUE_OK;
    if (ok) {
        /* A path would name the HELO domain and a query nothing we know: refuse both. */
        curl_url_get(u, CURLUPART_PATH, &p, 0);
        ok = (p == NULL || strcmp(p, "/") == 0 || p[0] == '\0') &&
             curl_url_get(u, CURLUPART_QUERY, &q, 0) != CURLUE_OK;
    }
    curl_free(p);
    curl_free(q);
    curl_url_cleanup(u);
    if (ok && strcmp(*scheme, "smtp") != 0 && strcmp(*scheme, "smtps") != 0) {
        ok = false;
    }
    if (!ok) {
        curl_free(*scheme);
        curl_free(*host);
        *scheme = *host = NULL;
        om_err_at(err, path, "must be smtp://host[:port] or smtps://host[:port]: \"%.200s\"", url);
        return OM_ECONFIG;
    }
    return 0;
}

static int check_addresses(const om_mail_cfg_t *cfg, const char *key, om_err_t *err)
{
    char path[160];
    if (!is_set(cfg->from) || !address_ok(cfg->from)) {
        snprintf(path, sizeof path, "%s::from", key);
        om_err_at(err, path, "must be an address like otelmon@example.com");
        return OM_ECONFIG;
    }
    if (cfg->to.n == 0) {
        snprintf(path, sizeof path, "%s::to", key);
        om_err_at(err, path, "needs at least one recipient");
        return OM_ECONFIG;
    }
    for (size_t i = 0; i < cfg->to.n; i++) {
        if (!address_ok(cfg->to.items[i])) {
            snprintf(path, sizeof path, "%s::to::%zu", key, i);
            om_err_at(err, path, "must be an address like ops@example.com: \"%.200s\"",
                      cfg->to.items[i]);
            return OM_ECONFIG;
        }
    }
    return 0;
}

int om_mail_cfg_validate(const om_mail_cfg_t *cfg, const char *key, om_err_t *err)
{
    if (!is_set(cfg->endpoint)) {
        return 0;
    }
    int rc = om__curl_load(err);
    char *scheme = NULL, *host = NULL;
    rc = rc ? rc : parse_endpoint(key, cfg->endpoint, &scheme, &host, err);
    if (rc != 0) {
        return rc;
    }
    bool clear = strcmp(scheme, "smtp") == 0 && !cfg->starttls;
    bool remote = !loopback_host(host);
    curl_free(scheme);
    curl_free(host);
    char path[160];
    if (is_set(cfg->password) && !is_set(cfg->username)) {
        snprintf(path, sizeof path, "%s::password", key);
        om_err_at(err, path, "is set without a username");
        return OM_ECONFIG;
    }
    if (is_set(cfg->username) && clear && remote) {
        snprintf(path, sizeof path, "%s::starttls", key);
        om_err_at(err, path,
                  "is false: the username and password would cross the network in clear "
                  "(use starttls: true or an smtps:// endpoint)");
        return OM_ECONFIG;
    }
    rc = check_addresses(cfg, key, err);
    snprintf(path, sizeof path, "%s::tls", key);
    return rc ? rc : om_tls_client_validate(&cfg->tls, path, OM_TLS_STACK_LIBCURL, err);
}

/* ------------------------------------------------------------------------------------------ */
/* The message                                                                                */

/* s as valid UTF-8 (each bad byte U+FFFD), at most max bytes of input, into out. Line breaks
 * become a space (oneline) or CRLF; other control characters but tab are dropped from a
 * subject. */
static void clean_text(const char *s, size_t max, bool oneline, om_strbuf_t *out)
{
    size_t n = strlen(s);
    n = n < max ? n : max;
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t k = om_utf8_seq(p + i, n - i);
        if (k == 0) {
            om_strbuf_puts(out, "\xef\xbf\xbd");
            i++;
        } else if (p[i] == '\r' || p[i] == '\n') {
            bool crlf = p[i] == '\r' && i + 1 < n && p[i + 1] == '\n';
            om_strbuf_puts(out, oneline ? " " : "\r\n");
            i += crlf ? 2 : 1;
        } else if (oneline && p[i] < 0x20 && p[i] != '\t') {
            i++;
        } else {
            om_strbuf_append(out, p + i, k);
            i += k;
        }
    }
}

/* base64 of n bytes, in lines of at most 76 characters, each ending CRLF. */
static void put_base64(om_strbuf_t *out, const unsigned char *d, size_t n)
{
    unsigned char line[80];
    for (size_t i = 0; i < n; i += 57) {
        size_t k = n - i < 57 ? n - i : 57;
        int w = EVP_EncodeBlock(line, d + i, (int)k);
        om_strbuf_append(out, line, (size_t)w);
        om_strbuf_puts(out, "\r\n");
    }
}

static bool plain_ascii(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if (*p < 0x20 || *p > 0x7e) {
            return false;
        }
    }
    return true;
}

/* "Subject: ..." as is when short printable ASCII, else RFC 2047 B-encoded words of at most
 * 42 bytes each (56 base64 characters: 77 on the first line), split between UTF-8 sequences,
 * on folded lines. */
static void put_subject(om_strbuf_t *out, const char *subject)
{
    om_strbuf_t s;
    om_strbuf_init(&s, 0);
    clean_text(subject != NULL ? subject : "", OM_MAIL_SUBJECT_MAX, true, &s);
    const char *t = om_strbuf_str(&s);
    om_strbuf_puts(out, "Subject:");
    if (plain_ascii(t) && s.len <= 60) {
        om_strbuf_printf(out, " %s\r\n", t);
        om_strbuf_free(&s);
        return;
    }
    const unsigned char *p = (const unsigned char *)t;
    for (size_t i = 0; i < s.len;) {
        size_t k = 0;
        while (i + k < s.len) {
            size_t q = om_utf8_seq(p + i + k, s.len - i - k);
            q = q == 0 ? 1 : q; /* cannot happen: clean_text made it valid */
            if (k + q > 42) {
                break;
            }
            k += q;
        }
        unsigned char enc[64];
        int w = EVP_EncodeBlock(enc, p + i, (int)k);
        om_strbuf_printf(out, "%s=?UTF-8?B?%.*s?=", i == 0 ? " " : "\r\n ", w, (const char *)enc);
        i += k;
    }
    om_strbuf_puts(out, "\r\n");
    om_strbuf_free(&s);
}

static void put_part(om_strbuf_t *out, const char *boundary, const char *type, const char *text)
{
    om_strbuf_t body;
    om_strbuf_init(&body, 0);
    clean_text(text != NULL ? text : "", SIZE_MAX, false, &body);
    if (boundary != NULL) {
        om_strbuf_printf(out, "--%s\r\n", boundary);
    }
    om_strbuf_printf(out,
                     "Content-Type: %s; charset=utf-8\r\n"
                     "Content-Transfer-Encoding: base64\r\n\r\n",
                     type);
    put_base64(out, (const unsigned char *)om_strbuf_str(&body), body.len);
    out->failed |= body.failed;
    om_strbuf_free(&body);
}

int om_mail_format(const om_mail_cfg_t *cfg, const om_mail_msg_t *m, int64_t unix_s,
                   uint64_t unique, om_strbuf_t *out)
{
    time_t t = (time_t)unix_s;
    struct tm tm;
    char date[64];
    gmtime_r(&t, &tm);
    /* RFC 5322's date-time; day and month names in the C locale, which otelmon never changes. */
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
    const char *domain = strchr(cfg->from, '@');
    om_strbuf_printf(out, "Date: %s\r\nFrom: %s\r\nTo: ", date, cfg->from);
    for (size_t i = 0; i < cfg->to.n; i++) {
        om_strbuf_printf(out, "%s%s", i == 0 ? "" : ",\r\n ", cfg->to.items[i]);
    }
    om_strbuf_puts(out, "\r\n");
    put_subject(out, m->subject);
    om_strbuf_printf(out, "Message-ID: <%016llx.%lld@%s>\r\nMIME-Version: 1.0\r\n",
                     (unsigned long long)unique, (long long)unix_s,
                     domain != NULL ? domain + 1 : "otelmon");
    if (m->html == NULL) {
        put_part(out, NULL, "text/plain", m->text);
    } else {
        char boundary[48];
        snprintf(boundary, sizeof boundary, "=_otelmon_%016llx", (unsigned long long)unique);
        om_strbuf_printf(out,
                         "Content-Type: multipart/alternative; boundary=\"%s\"\r\n\r\n"
                         "This is a MIME message.\r\n",
                         boundary);
        put_part(out, boundary, "text/plain", m->text);
        put_part(out, boundary, "text/html", m->html);
        om_strbuf_printf(out, "--%s--\r\n", boundary);
    }
    return out->failed ? OM_ENOMEM : 0;
}

/* ------------------------------------------------------------------------------------------ */
/* The client                                                                                 */

typedef struct mail_send mail_send_t;
struct mail_send {
    om_mail_client_t *c;
    mail_send_t *prev, *next;
    CURL *easy;
    struct curl_slist *rcpt;
    char *msg; /* the formatted message */
    size_t len, sent;
    om_mail_done_fn done;
    void *arg;
    char errbuf[CURL_ERROR_SIZE];
};

struct om_mail_client {
    const om_mail_cfg_t *cfg;
    char *log_name;
    CURL *tmpl; /* the options every send shares */
    om__curl_multi_t *multi;
    mail_send_t *running;
    size_t pending;
    uint64_t unique; /* Message-ID and boundary: random at start, one more per message */
    bool curl_global, closing;
    om_done_fn closed;
    void *closed_arg;
};

static void client_free(om_mail_client_t *c)
{
    if (c->tmpl != NULL) {
        curl_easy_cleanup(c->tmpl);
    }
    if (c->curl_global) {
        curl_global_cleanup();
    }
    om_free(c->log_name);
    om_free(c);
}

static CURLcode set_common(CURL *h, const om_mail_cfg_t *cfg)
{
    CURLcode r = curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    r = r ? r : curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    r = r ? r : curl_easy_setopt(h, CURLOPT_URL, cfg->endpoint);
    r = r ? r : curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
    r = r ? r : curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    long ms = (long)(cfg->timeout / OM_NS_PER_MS);
    r = r ? r : curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, ms > 0 ? ms : 1L);
    if (cfg->starttls) {
        /* On smtps:// TLS is there from the start; on smtp:// this makes STARTTLS required. */
        r = r ? r : curl_easy_setopt(h, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
    }
    if (is_set(cfg->username)) {
        r = r ? r : curl_easy_setopt(h, CURLOPT_USERNAME, cfg->username);
        r = r ? r : curl_easy_setopt(h, CURLOPT_PASSWORD, cfg->password ? cfg->password : "");
    }
    char from[320];
    snprintf(from, sizeof from, "<%s>", cfg->from);
    return r ? r : curl_easy_setopt(h, CURLOPT_MAIL_FROM, from);
}

static void on_xfer(void *arg, CURL *easy, CURLcode result);

int om_mail_client_new(om_host_t *host, const om_mail_cfg_t *cfg, const char *log_name,
                       om_mail_client_t **out, om_err_t *err)
{
    int rc = om__curl_load(err);
    if (rc != 0) {
        return rc;
    }
    om_mail_client_t *c = om_calloc(1, sizeof *c);
    if (c == NULL || (c->log_name = om_strdup(log_name != NULL ? log_name : "mail")) == NULL) {
        om_free(c);
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    c->cfg = cfg;
    if (getrandom(&c->unique, sizeof c->unique, GRND_NONBLOCK) != (ssize_t)sizeof c->unique) {
        c->unique = uv_hrtime(); /* only uniqueness matters, not secrecy */
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        client_free(c);
        om_err_set(err, OM_EIO, "curl_global_init failed");
        return OM_EIO;
    }
    c->curl_global = true;
    om_tls_pem_t pem;
    rc = om_tls_client_pem_load(&cfg->tls, "tls", &pem, err);
    if (rc == 0) {
        c->tmpl = curl_easy_init();
        CURLcode cc = c->tmpl == NULL ? CURLE_OUT_OF_MEMORY : set_common(c->tmpl, cfg);
        cc = cc ? cc : om__curl_set_tls(c->tmpl, &cfg->tls, &pem);
        om_tls_pem_free(&pem);
        if (cc != CURLE_OK) {
            rc = cc == CURLE_OUT_OF_MEMORY ? OM_ENOMEM : OM_ECONFIG;
            om_err_set(err, rc, "libcurl refuses a mail setting: %s", curl_easy_strerror(cc));
        }
    }
    rc = rc ? rc : om__curl_multi_new(host->loop, 0, 0, on_xfer, c, &c->multi, err);
    if (rc != 0) {
        client_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

static size_t read_msg(char *buf, size_t size, size_t nitems, void *arg)
{
    mail_send_t *x = arg;
    size_t n = size * nitems, left = x->len - x->sent;
    n = n < left ? n : left;
    memcpy(buf, x->msg + x->sent, n);
    x->sent += n;
    return n;
}

static void send_free(mail_send_t *x)
{
    if (x->easy != NULL) {
        curl_easy_cleanup(x->easy);
    }
    curl_slist_free_all(x->rcpt);
    om_free(x->msg);
    om_free(x);
}

static void list_del(om_mail_client_t *c, mail_send_t *x)
{
    if (x->prev != NULL) {
        x->prev->next = x->next;
    } else {
        c->running = x->next;
    }
    if (x->next != NULL) {
        x->next->prev = x->prev;
    }
}

static int make_easy(om_mail_client_t *c, mail_send_t *x, om_err_t *err)
{
    x->easy = curl_easy_duphandle(c->tmpl);
    bool ok = x->easy != NULL;
    for (size_t i = 0; ok && i < c->cfg->to.n; i++) {
        char to[320];
        snprintf(to, sizeof to, "<%s>", c->cfg->to.items[i]);
        struct curl_slist *l = curl_slist_append(x->rcpt, to);
        ok = l != NULL;
        x->rcpt = ok ? l : x->rcpt;
    }
    CURLcode cc = ok ? CURLE_OK : CURLE_OUT_OF_MEMORY;
    cc = cc ? cc : curl_easy_setopt(x->easy, CURLOPT_MAIL_RCPT, x->rcpt);
    cc = cc ? cc : curl_easy_setopt(x->easy, CURLOPT_READFUNCTION, read_msg);
    cc = cc ? cc : curl_easy_setopt(x->easy, CURLOPT_READDATA, x);
    cc = cc ? cc : curl_easy_setopt(x->easy, CURLOPT_INFILESIZE_LARGE, (curl_off_t)x->len);
    cc = cc ? cc : curl_easy_setopt(x->easy, CURLOPT_ERRORBUFFER, x->errbuf);
    cc = cc ? cc : curl_easy_setopt(x->easy, CURLOPT_PRIVATE, (void *)x);
    if (cc != CURLE_OK) {
        om_err_set(err, OM_ENOMEM, "out of memory (mail transfer)");
        return OM_ENOMEM;
    }
    return 0;
}

int om_mail_send(om_mail_client_t *c, const om_mail_msg_t *m, om_mail_done_fn done, void *arg,
                 om_err_t *err)
{
    if (c->closing) {
        om_err_set(err, OM_ESHUTDOWN, "mail client is closing");
        return OM_ESHUTDOWN;
    }
    mail_send_t *x = om_calloc(1, sizeof *x);
    if (x == NULL) {
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    x->c = c;
    x->done = done;
    x->arg = arg;
    om_strbuf_t sb;
    om_strbuf_init(&sb, 0);
    int rc = om_mail_format(c->cfg, m, (int64_t)time(NULL), c->unique++, &sb);
    x->msg = om_strbuf_steal(&sb, &x->len);
    om_strbuf_free(&sb);
    if (rc != 0 || x->msg == NULL) {
        om_err_set(err, OM_ENOMEM, "out of memory (mail message)");
        rc = OM_ENOMEM;
    }
    rc = rc ? rc : make_easy(c, x, err);
    rc = rc ? rc : om__curl_multi_add(c->multi, x->easy, err);
    if (rc != 0) {
        send_free(x);
        return rc;
    }
    x->next = c->running;
    if (c->running != NULL) {
        c->running->prev = x;
    }
    c->running = x;
    c->pending++;
    return 0;
}

size_t om_mail_pending(const om_mail_client_t *c)
{
    return c->pending;
}

/* Curl results no retry can fix: the request as configured cannot work. */
static bool permanent(CURLcode cc, long code)
{
    return cc == CURLE_LOGIN_DENIED || cc == CURLE_USE_SSL_FAILED ||
           cc == CURLE_UNSUPPORTED_PROTOCOL || cc == CURLE_URL_MALFORMAT ||
           cc == CURLE_NOT_BUILT_IN || (code >= 500 && code < 600);
}

static void finish(mail_send_t *x, CURLcode cc, bool shutdown)
{
    om_mail_client_t *c = x->c;
    long code = 0;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code);
    om_mail_result_t r = {.smtp_code = (int)code, .message = ""};
    if (shutdown) {
        r.error = OM_ESHUTDOWN;
        r.message = "the mail client closed";
    } else if (cc != CURLE_OK) {
        r.error = cc == CURLE_OUT_OF_MEMORY ? OM_ENOMEM : OM_EIO;
        r.retryable = !permanent(cc, code);
        r.message = x->errbuf[0] != '\0' ? x->errbuf : curl_easy_strerror(cc);
    }
    c->pending--;
    x->done(x->arg, &r);
    send_free(x);
}

static void on_xfer(void *arg, CURL *easy, CURLcode result)
{
    om_mail_client_t *c = arg;
    mail_send_t *x = NULL;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
    list_del(c, x);
    finish(x, result, false);
}

static void multi_closed(void *arg)
{
    om_mail_client_t *c = arg;
    om_done_fn done = c->closed;
    void *darg = c->closed_arg;
    client_free(c);
    if (done != NULL) {
        done(darg);
    }
}

void om_mail_client_close(om_mail_client_t *c, om_done_fn done, void *arg)
{
    if (c == NULL || c->closing) {
        return;
    }
    c->closing = true;
    c->closed = done;
    c->closed_arg = arg;
    while (c->running != NULL) {
        mail_send_t *x = c->running;
        list_del(c, x);
        om__curl_multi_remove(c->multi, x->easy);
        finish(x, CURLE_OK, true);
    }
    om__curl_multi_close(c->multi, multi_closed, c);
}
