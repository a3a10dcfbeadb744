/* health_check.c: the health_check extension, as otelcol-contrib's healthcheckextension (the
 * v1 behaviour otelcol users configure with `extensions: health_check: {endpoint: ...}`).
 *
 * A small HTTP/1.1 server on the loop answers on `path` with the collector's state: 200 and
 * {"status":"Server available","upSince":"<RFC 3339>","uptime":"<Go duration>"} once the
 * pipelines are ready (pipelines_ready), and 503 with {"status":"Server not available",
 * "upSince":"0001-01-01T00:00:00Z","uptime":""} before that and once they are about to stop
 * (pipelines_not_ready). These are the bytes Go's encoding/json writes for the upstream
 * response struct, zero time.Time included. With `response_body` configured, its `healthy` or
 * `unhealthy` string is the whole body instead.
 *
 * Routing follows Go's http.ServeMux, which upstream mounts the handler on: a path ending in
 * "/" serves its whole subtree (so the default "/" answers every path), any other path only
 * itself; a subtree's root without the slash is redirected (301) to it; everything else gets
 * Go's "404 page not found". Every method is answered the same way (the upstream handler does
 * not look at it); HEAD gets the headers only.
 *
 * One request per connection: the answer carries Connection: close and the connection is
 * closed once it is written. A request (headers and any body, which is read and dropped) is
 * bounded in size (431 / 413 beyond MAX_REQUEST_BYTES) and in time (the connection is closed
 * when it has not arrived within the timeout). Shutdown closes the listener and every
 * connection at once, as Go's http.Server.Close does upstream.
 *
 * Lifetime: each connection is a heap conn_t with two handles (tcp, timer), freed when both
 * close callbacks have run; done is called once nothing is open any more. */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <http_parser.h>

#include "health_check.h"

#define DEFAULT_ENDPOINT "localhost:13133"
#define MAX_CONNS 64
#define REQUEST_TIMEOUT_MS 10000
#define MAX_REQUEST_BYTES (16 * 1024)
#define MAX_URL 2048
#define READ_BUF_SIZE 4096
#define LISTEN_BACKLOG 128

#define BODY_NOT_READY                                                                             \
    "{\"status\":\"Server not available\",\"upSince\":\"0001-01-01T00:00:00Z\",\"uptime\":\"\"}"
#define CT_JSON "application/json"
#define CT_TEXT "text/plain; charset=utf-8"
#define CT_HTML "text/html; charset=utf-8"

/* ------------------------------------------------------------------------------------------ */
/* Configuration                                                                              */

typedef struct hc_body_cfg {
    char *healthy;   /* NULL: "" */
    char *unhealthy; /* NULL: "" */
} hc_body_cfg_t;

typedef struct hc_cfg {
    char *endpoint;
    char *path;
    bool has_response_body; /* upstream tells an absent section from one with empty strings */
    hc_body_cfg_t response_body;
} hc_cfg_t;

static const om_field_t body_fields[] = {
    {.key = "healthy",
     .type = OM_F_STRING,
     .offset = offsetof(hc_body_cfg_t, healthy),
     .help = "the whole body of a 200 answer"},
    {.key = "unhealthy",
     .type = OM_F_STRING,
     .offset = offsetof(hc_body_cfg_t, unhealthy),
     .help = "the whole body of a 503 answer"},
    {.key = NULL},
};

static const om_field_t hc_fields[] = {
    {.key = "endpoint",
     .type = OM_F_ENDPOINT,
     .offset = offsetof(hc_cfg_t, endpoint),
     .def = DEFAULT_ENDPOINT,
     .help = "where the health check listens"},
    {.key = "path",
     .type = OM_F_STRING,
     .offset = offsetof(hc_cfg_t, path),
     .def = "/",
     .help = "the path answered (ending in /: the whole subtree)"},
    {.key = "response_body",
     .type = OM_F_SECTION,
     .offset = offsetof(hc_cfg_t, response_body),
     .fields = body_fields,
     .flags = OM_FF_PRESENCE,
     .present_offset = offsetof(hc_cfg_t, has_response_body),
     .help = "static bodies replacing the JSON status"},
    /* Deprecated upstream and ignored there too. */
    {.key = "check_collector_pipeline", .type = OM_F_IGNORED},
    /* The rest of otelcol's confighttp.ServerConfig. */
    {.key = "tls", .type = OM_F_IGNORED},
    {.key = "cors", .type = OM_F_IGNORED},
    {.key = "auth", .type = OM_F_REFUSED, .help = OM_AUTH_REFUSED},
    {.key = "include_metadata", .type = OM_F_IGNORED},
    {.key = "max_request_body_size", .type = OM_F_IGNORED},
    {.key = "response_headers", .type = OM_F_IGNORED},
    {.key = "compression_algorithms", .type = OM_F_IGNORED},
    {.key = "read_timeout", .type = OM_F_IGNORED},
    {.key = "read_header_timeout", .type = OM_F_IGNORED},
    {.key = "write_timeout", .type = OM_F_IGNORED},
    {.key = "idle_timeout", .type = OM_F_IGNORED},
    {.key = "keep_alives_enabled", .type = OM_F_IGNORED},
    {.key = "middlewares", .type = OM_F_IGNORED},
    /* The v2 settings the upstream config also accepts (behind a feature gate there). */
    {.key = "use_v2", .type = OM_F_IGNORED},
    {.key = "http", .type = OM_F_IGNORED},
    {.key = "grpc", .type = OM_F_IGNORED},
    {.key = "component_health", .type = OM_F_IGNORED},
    {.key = NULL},
};

static int hc_config_validate(const void *cfgp, om_err_t *err)
{
    const hc_cfg_t *cfg = cfgp;
    if (cfg->path == NULL || cfg->path[0] != '/') {
        om_err_set(err, OM_ECONFIG, "path must start with /");
        return OM_ECONFIG;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Instance                                                                                   */

typedef struct conn conn_t;

typedef struct hc {
    const hc_cfg_t *cfg;
    const char *log_name;
    uv_loop_t *loop;
    char *host; /* from the endpoint; owned */
    int port;
    uv_tcp_t listener;
    bool listener_open;
    uv_getaddrinfo_t gai;
    bool gai_pending;
    int bound_port;
    conn_t *conns; /* every open connection, closing ones included */
    size_t n_conns;
    unsigned pending_closes; /* listener and refused-connection handles not yet closed */
    bool started, shutting_down, done_called;
    om_done_fn done;
    void *done_arg;
    uint64_t timeout_ms;
    /* The collector's state, as the pipeline reports it. */
    bool ready;
    uint64_t ready_ns; /* uv_hrtime() when it became ready: the uptime's origin */
    char up_since[48]; /* the wall-clock time it became ready, in Go's JSON form */
    http_parser_settings settings;
    /* One read buffer for all connections: each read is consumed by its callback. */
    char rbuf[READ_BUF_SIZE];
} hc_t;

struct conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t wreq;
    hc_t *hc;
    conn_t *prev, *next;
    http_parser parser;
    size_t bytes_in;
    size_t url_len;
    bool url_too_long, headers_done, answered, closing;
    int handles_open;
    char *out; /* the response being written; owned, freed with the connection */
    char url[MAX_URL];
};

static void maybe_done(hc_t *h)
{
    if (!h->shutting_down || h->done_called || h->pending_closes > 0 || h->n_conns > 0 ||
        h->gai_pending) {
        return;
    }
    h->done_called = true;
    if (h->done != NULL) {
        h->done(h->done_arg);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Go's formats                                                                               */

/* Writes v's last prec digits backwards before buf[w], dropping trailing zeros (and the '.'
 * when all are zero), as Go's time.Duration.String does; returns the new start, and v with
 * those digits removed in *rest. */
static size_t put_frac(char *buf, size_t w, uint64_t v, int prec, uint64_t *rest)
{
    bool print = false;
    for (int i = 0; i < prec; i++) {
        unsigned digit = (unsigned)(v % 10);
        print = print || digit != 0;
        if (print) {
            buf[--w] = (char)('0' + digit);
        }
        v /= 10;
    }
    if (print) {
        buf[--w] = '.';
    }
    *rest = v;
    return w;
}

static size_t put_int(char *buf, size_t w, uint64_t v)
{
    do {
        buf[--w] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    return w;
}

void ext_health_check_go_duration(uint64_t ns, char *out, size_t n)
{
    /* Written backwards from the end; the longest (UINT64_MAX ns) is 26 bytes. */
    char buf[40];
    size_t w = sizeof buf;
    uint64_t u = ns;
    buf[--w] = 's';
    if (u == 0) {
        buf[--w] = '0';
    } else if (u < (uint64_t)OM_NS_PER_S) {
        int prec = 6;
        if (u < 1000) {
            prec = 0;
            buf[--w] = 'n';
        } else if (u < 1000000) {
            prec = 3;
            w -= 2;
            memcpy(buf + w, "\xc2\xb5", 2); /* U+00B5 MICRO SIGN, as Go writes it */
        } else {
            buf[--w] = 'm';
        }
        w = put_frac(buf, w, u, prec, &u);
        w = put_int(buf, w, u);
    } else {
        w = put_frac(buf, w, u, 9, &u);
        w = put_int(buf, w, u % 60);
        u /= 60;
        if (u > 0) {
            buf[--w] = 'm';
            w = put_int(buf, w, u % 60);
            u /= 60;
            if (u > 0) {
                buf[--w] = 'h';
                w = put_int(buf, w, u);
            }
        }
    }
    snprintf(out, n, "%.*s", (int)(sizeof buf - w), buf + w);
}

void ext_health_check_rfc3339(int64_t sec, long nsec, char *out, size_t n)
{
    time_t t = (time_t)sec;
    struct tm tm;
    if (localtime_r(&t, &tm) == NULL || nsec < 0 || nsec >= OM_NS_PER_S) {
        snprintf(out, n, "0001-01-01T00:00:00Z");
        return;
    }
    char frac[16] = "";
    if (nsec > 0) {
        snprintf(frac, sizeof frac, ".%09ld", nsec);
        size_t len = strlen(frac);
        while (frac[len - 1] == '0') {
            frac[--len] = '\0';
        }
    }
    char zone[16] = "Z";
    long off = tm.tm_gmtoff;
    if (off != 0) {
        long a = off < 0 ? -off : off;
        snprintf(zone, sizeof zone, "%c%02d:%02d", off < 0 ? '-' : '+', (int)(a / 3600 % 100),
                 (int)(a % 3600 / 60));
    }
    snprintf(out, n, "%04d-%02d-%02dT%02d:%02d:%02d%s%s", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac, zone);
}

/* An HTTP Date header value (RFC 9110 IMF-fixdate), as Go's server adds to every answer. */
static void http_date(char *out, size_t n)
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t t = time(NULL);
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL || tm.tm_wday < 0 || tm.tm_wday > 6 || tm.tm_mon < 0 ||
        tm.tm_mon > 11) {
        snprintf(out, n, "Thu, 01 Jan 1970 00:00:00 GMT");
        return;
    }
    snprintf(out, n, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday], tm.tm_mday,
             months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* ------------------------------------------------------------------------------------------ */
/* Answers                                                                                    */

typedef struct answer {
    int status;
    const char *content_type; /* NULL: no Content-Type header */
    const char *location;     /* NULL: no Location header */
    bool nosniff;             /* Go's http.Error adds X-Content-Type-Options: nosniff */
    om_strbuf_t body;
} answer_t;

static const char *reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 301:
        return "Moved Permanently";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 413:
        return "Request Entity Too Large";
    case 431:
        return "Request Header Fields Too Large";
    case 503:
        return "Service Unavailable";
    default:
        return "Error";
    }
}

/* A plain error as Go's server writes it: "<code> <reason>" (http.Error adds a newline). */
static void answer_error(answer_t *a, int status)
{
    a->status = status;
    a->content_type = CT_TEXT;
    if (status == 404) {
        a->nosniff = true;
        om_strbuf_puts(&a->body, "404 page not found\n");
        return;
    }
    om_strbuf_printf(&a->body, "%d %s", status, reason(status));
}

static void answer_state(const hc_t *h, answer_t *a)
{
    a->status = h->ready ? 200 : 503;
    if (h->cfg->has_response_body) {
        const char *b = h->ready ? h->cfg->response_body.healthy : h->cfg->response_body.unhealthy;
        b = b != NULL ? b : "";
        /* Upstream sets no type: Go's server sniffs one from a non-empty body. */
        a->content_type = b[0] != '\0' ? CT_TEXT : NULL;
        om_strbuf_puts(&a->body, b);
        return;
    }
    a->content_type = CT_JSON;
    if (!h->ready) {
        om_strbuf_puts(&a->body, BODY_NOT_READY);
        return;
    }
    char uptime[48];
    ext_health_check_go_duration(uv_hrtime() - h->ready_ns, uptime, sizeof uptime);
    om_strbuf_printf(&a->body,
                     "{\"status\":\"Server available\",\"upSince\":\"%s\",\"uptime\":\"%s\"}",
                     h->up_since, uptime);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') {
        return (c | 0x20) - 'a' + 10;
    }
    return -1;
}

/* The request target's path, percent-decoded as Go's URL.Path is, into out (at least
 * MAX_URL + 1 bytes; the result is never longer than url). Origin form ("/a?q") and absolute form
 * ("http://h/a") are understood; false for a target Go would refuse with 400. An empty path is "/"
 * (Go's server redirects it, and the answer is the same). */
static bool request_path(const char *url, size_t len, char *out)
{
    struct http_parser_url u;
    http_parser_url_init(&u);
    if (len == 0 || http_parser_parse_url(url, len, 0, &u) != 0) {
        return false;
    }
    const char *p = url + u.field_data[UF_PATH].off;
    size_t plen = (u.field_set & (1u << UF_PATH)) ? u.field_data[UF_PATH].len : 0;
    size_t o = 0;
    for (size_t i = 0; i < plen; i++) {
        if (p[i] != '%') {
            out[o++] = p[i];
            continue;
        }
        int hi = i + 2 < plen ? hexval(p[i + 1]) : -1;
        int lo = hi >= 0 ? hexval(p[i + 2]) : -1;
        if (lo < 0) {
            return false;
        }
        if (hi * 16 + lo == '/') {
            /* Go matches path segments, and an escaped slash stays inside its segment: keep
             * it escaped so that it cannot match a "/" of the pattern. */
            memcpy(out + o, p + i, 3);
            o += 3;
        } else {
            out[o++] = (char)(hi * 16 + lo);
        }
        i += 2;
    }
    if (o == 0) {
        out[o++] = '/';
    }
    out[o] = '\0';
    return true;
}

/* Go's ServeMux match for one pattern. 0: served; 301: redirect to the subtree root; 404. */
static int route(const char *pattern, const char *path)
{
    size_t pl = strlen(pattern);
    bool subtree = pl > 0 && pattern[pl - 1] == '/';
    if (strcmp(pattern, path) == 0 || (subtree && strncmp(pattern, path, pl) == 0)) {
        return 0;
    }
    if (subtree && strlen(path) == pl - 1 && strncmp(pattern, path, pl - 1) == 0) {
        return 301;
    }
    return 404;
}

static void answer_request(const conn_t *c, answer_t *a)
{
    char path[MAX_URL + 1];
    if (c->url_too_long) {
        answer_error(a, 431);
        return;
    }
    if (!request_path(c->url, c->url_len, path)) {
        answer_error(a, 400);
        return;
    }
    int r = route(c->hc->cfg->path, path);
    if (r == 0) {
        answer_state(c->hc, a);
        return;
    }
    if (r == 404) {
        answer_error(a, 404);
        return;
    }
    a->status = 301;
    a->location = c->hc->cfg->path;
    a->content_type = CT_HTML;
    om_strbuf_printf(&a->body, "<a href=\"%s\">Moved Permanently</a>.\n\n", a->location);
}

/* The whole response (om_malloc'd, *len bytes), or NULL when out of memory. */
static char *render(const answer_t *a, bool head, size_t *len)
{
    char date[64];
    http_date(date, sizeof date);
    om_strbuf_t sb;
    om_strbuf_init(&sb, 0);
    om_strbuf_printf(&sb, "HTTP/1.1 %d %s\r\n", a->status, reason(a->status));
    if (a->content_type != NULL) {
        om_strbuf_printf(&sb, "Content-Type: %s\r\n", a->content_type);
    }
    if (a->location != NULL) {
        om_strbuf_printf(&sb, "Location: %s\r\n", a->location);
    }
    if (a->nosniff) {
        om_strbuf_puts(&sb, "X-Content-Type-Options: nosniff\r\n");
    }
    om_strbuf_printf(&sb, "Date: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n", date,
                     a->body.len);
    if (!head && a->body.len > 0) {
        om_strbuf_append(&sb, a->body.data, a->body.len);
    }
    if (sb.failed || a->body.failed) {
        om_strbuf_free(&sb);
        return NULL;
    }
    return om_strbuf_steal(&sb, len);
}

/* ------------------------------------------------------------------------------------------ */
/* Connections                                                                                */

static void on_conn_handle_closed(uv_handle_t *hd)
{
    conn_t *c = hd->data;
    if (--c->handles_open > 0) {
        return;
    }
    hc_t *h = c->hc;
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        h->conns = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    h->n_conns--;
    om_free(c->out);
    om_free(c);
    maybe_done(h);
}

static void conn_close(conn_t *c)
{
    if (c->closing) {
        return;
    }
    c->closing = true;
    /* A write still queued is cancelled; its callback runs before these close callbacks. */
    uv_close((uv_handle_t *)&c->tcp, on_conn_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
}

static void on_timeout(uv_timer_t *t)
{
    conn_close(t->data);
}

static void on_written(uv_write_t *req, int status)
{
    (void)status;
    conn_close(req->data); /* one request per connection: done either way */
}

/* Answer once and close after the answer is written. */
static void conn_send(conn_t *c, answer_t *a)
{
    c->answered = true;
    uv_read_stop((uv_stream_t *)&c->tcp);
    size_t len = 0;
    bool head = c->headers_done && c->parser.method == HTTP_HEAD;
    c->out = render(a, head, &len);
    om_strbuf_free(&a->body);
    c->wreq.data = c;
    uv_buf_t b = uv_buf_init(c->out, (unsigned)len);
    if (c->out == NULL || uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_written) != 0) {
        conn_close(c);
    }
}

static void conn_send_error(conn_t *c, int status)
{
    answer_t a = {0};
    om_strbuf_init(&a.body, 0);
    answer_error(&a, status);
    conn_send(c, &a);
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    conn_t *c = p->data;
    if (c->url_too_long || len > MAX_URL - c->url_len) {
        c->url_too_long = true;
        return 0;
    }
    memcpy(c->url + c->url_len, at, len);
    c->url_len += len;
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    conn_t *c = p->data;
    c->headers_done = true;
    return 0;
}

static int on_message_complete(http_parser *p)
{
    conn_t *c = p->data;
    answer_t a = {0};
    om_strbuf_init(&a.body, 0);
    answer_request(c, &a);
    conn_send(c, &a);
    http_parser_pause(p, 1); /* anything pipelined after it is not answered */
    return 0;
}

static void on_alloc(uv_handle_t *hd, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    conn_t *c = hd->data;
    *buf = uv_buf_init(c->hc->rbuf, sizeof c->hc->rbuf);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    conn_t *c = st->data;
    if (nread == 0 || c->closing || c->answered) {
        return;
    }
    if (nread < 0) {
        conn_close(c); /* the client left before a whole request arrived */
        return;
    }
    c->bytes_in += (size_t)nread;
    http_parser_execute(&c->parser, &c->hc->settings, buf->base, (size_t)nread);
    if (c->answered) {
        return;
    }
    enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
    if (e != HPE_OK) {
        conn_send_error(c, e == HPE_HEADER_OVERFLOW ? 431 : 400);
    } else if (c->bytes_in > MAX_REQUEST_BYTES) {
        conn_send_error(c, c->headers_done ? 413 : 431);
    }
}

static void on_refused_closed(uv_handle_t *hd)
{
    hc_t *h = hd->data;
    om_free(hd);
    h->pending_closes--;
    maybe_done(h);
}

/* Over the connection limit: accept and close at once, so the backlog does not stall. */
static void refuse_connection(hc_t *h)
{
    uv_tcp_t *t = om_malloc(sizeof *t);
    if (t == NULL || uv_tcp_init(h->loop, t) != 0) {
        om_free(t);
        return;
    }
    t->data = h;
    h->pending_closes++;
    (void)uv_accept((uv_stream_t *)&h->listener, (uv_stream_t *)t);
    uv_close((uv_handle_t *)t, on_refused_closed);
}

static void on_connection(uv_stream_t *server, int status)
{
    hc_t *h = server->data;
    if (status < 0 || h->shutting_down) {
        return;
    }
    conn_t *c = h->n_conns < MAX_CONNS ? om_calloc(1, sizeof *c) : NULL;
    if (c == NULL || uv_tcp_init(h->loop, &c->tcp) != 0) {
        om_free(c);
        refuse_connection(h);
        return;
    }
    uv_timer_init(h->loop, &c->timer);
    c->hc = h;
    c->tcp.data = c->timer.data = c;
    c->handles_open = 2;
    c->next = h->conns;
    if (h->conns != NULL) {
        h->conns->prev = c;
    }
    h->conns = c;
    h->n_conns++;
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 ||
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
        conn_close(c);
        return;
    }
    uv_timer_start(&c->timer, on_timeout, h->timeout_ms, 0);
}

/* ------------------------------------------------------------------------------------------ */
/* Listening                                                                                  */

static void on_listener_closed(uv_handle_t *hd)
{
    hc_t *h = hd->data;
    h->pending_closes--;
    maybe_done(h);
}

static void close_listener(hc_t *h)
{
    if (!h->listener_open) {
        return;
    }
    h->listener_open = false;
    h->pending_closes++;
    uv_close((uv_handle_t *)&h->listener, on_listener_closed);
}

static int sockaddr_port(const struct sockaddr_storage *ss)
{
    return ss->ss_family == AF_INET6 ? ntohs(((const struct sockaddr_in6 *)ss)->sin6_port)
                                     : ntohs(((const struct sockaddr_in *)ss)->sin_port);
}

static int bind_listen(hc_t *h, const struct sockaddr *addr, om_err_t *err)
{
    int rc = uv_tcp_init(h->loop, &h->listener);
    if (rc != 0) {
        om_err_set(err, OM_EIO, "listen on %s: %s", h->cfg->endpoint, uv_strerror(rc));
        return OM_EIO;
    }
    h->listener.data = h;
    h->listener_open = true;
    rc = uv_tcp_bind(&h->listener, addr, 0);
    if (rc == 0) {
        /* libuv may report a bind error such as EADDRINUSE only here. */
        rc = uv_listen((uv_stream_t *)&h->listener, LISTEN_BACKLOG, on_connection);
    }
    struct sockaddr_storage ss;
    int len = sizeof ss;
    if (rc == 0) {
        rc = uv_tcp_getsockname(&h->listener, (struct sockaddr *)&ss, &len);
    }
    if (rc != 0) {
        om_err_set(err, OM_EIO, "failed to bind to address %s: %s", h->cfg->endpoint,
                   uv_strerror(rc));
        close_listener(h);
        return OM_EIO;
    }
    h->bound_port = sockaddr_port(&ss);
    OM_CLOG(h->log_name, OM_LOG_INFO, "health check listening on port %d, path %s", h->bound_port,
            h->cfg->path);
    return 0;
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    hc_t *h = req->data;
    h->gai_pending = false;
    if (h->shutting_down) {
        uv_freeaddrinfo(res);
        maybe_done(h);
        return;
    }
    if (status != 0 || res == NULL) {
        OM_CLOG(h->log_name, OM_LOG_ERROR, "cannot resolve %s: %s", h->host, uv_strerror(status));
        uv_freeaddrinfo(res);
        return;
    }
    /* Like Go's net.Listen, take one address, IPv4 first. */
    const struct addrinfo *pick = res;
    for (const struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        if (ai->ai_family == AF_INET) {
            pick = ai;
            break;
        }
    }
    om_err_t err = {0};
    if (bind_listen(h, pick->ai_addr, &err) != 0) {
        OM_CLOG(h->log_name, OM_LOG_ERROR, "%s", err.msg);
    }
    uv_freeaddrinfo(res);
}

/* A host name: resolved off the loop, bound in the callback (failures can only be logged). */
static int resolve_async(hc_t *h, om_err_t *err)
{
    char port[16];
    snprintf(port, sizeof port, "%d", h->port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    h->gai.data = h;
    int rc = uv_getaddrinfo(h->loop, &h->gai, on_resolved, h->host, port, &hints);
    if (rc != 0) {
        om_err_set(err, OM_EIO, "resolve %s: %s", h->host, uv_strerror(rc));
        return OM_EIO;
    }
    h->gai_pending = true;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* The factory                                                                                */

static int hc_create(const om_create_args_t *a, void **self, om_err_t *err)
{
    hc_t *h = om_calloc(1, sizeof *h);
    if (h == NULL) {
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    h->cfg = a->cfg;
    h->log_name = a->log_name;
    h->loop = a->host->loop;
    h->bound_port = -1;
    h->timeout_ms = REQUEST_TIMEOUT_MS;
    h->settings.on_url = on_url;
    h->settings.on_headers_complete = on_headers_complete;
    h->settings.on_message_complete = on_message_complete;
    const char *ep = h->cfg->endpoint != NULL ? h->cfg->endpoint : DEFAULT_ENDPOINT;
    int rc = om_parse_endpoint(ep, &h->host, &h->port, err);
    if (rc != 0) {
        om_free(h);
        return rc;
    }
    *self = h;
    return 0;
}

static int hc_start(void *self, om_err_t *err)
{
    hc_t *h = self;
    if (h->started || h->shutting_down) {
        om_err_set(err, OM_EINVAL, "health_check started twice");
        return OM_EINVAL;
    }
    h->started = true;
    const char *host = h->host;
    size_t n = strlen(host);
    char buf[64];
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']' && n - 2 < sizeof buf) {
        memcpy(buf, host + 1, n - 2); /* tolerate a bracketed IPv6 literal */
        buf[n - 2] = '\0';
        host = buf;
    }
    if (host[0] == '\0') {
        host = "0.0.0.0";
    } else if (strcasecmp(host, "localhost") == 0) {
        host = "127.0.0.1"; /* what Go's net.Listen binds for it */
    }
    struct sockaddr_in a4;
    struct sockaddr_in6 a6;
    if (uv_ip4_addr(host, h->port, &a4) == 0) {
        return bind_listen(h, (const struct sockaddr *)&a4, err);
    }
    if (uv_ip6_addr(host, h->port, &a6) == 0) {
        return bind_listen(h, (const struct sockaddr *)&a6, err);
    }
    return resolve_async(h, err);
}

static void hc_shutdown(void *self, om_done_fn done, void *arg)
{
    hc_t *h = self;
    if (h->shutting_down) {
        return;
    }
    h->shutting_down = true;
    h->done = done;
    h->done_arg = arg;
    if (h->gai_pending) {
        uv_cancel((uv_req_t *)&h->gai); /* its callback still runs, with UV_ECANCELED */
    }
    close_listener(h);
    for (conn_t *c = h->conns; c != NULL; c = c->next) {
        conn_close(c);
    }
    maybe_done(h);
}

static void hc_destroy(void *self)
{
    hc_t *h = self;
    if (h == NULL) {
        return;
    }
    om_free(h->host);
    om_free(h);
}

static void hc_pipelines_ready(void *self)
{
    hc_t *h = self;
    if (h->ready) {
        return;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    h->ready = true;
    h->ready_ns = uv_hrtime();
    ext_health_check_rfc3339((int64_t)ts.tv_sec, ts.tv_nsec, h->up_since, sizeof h->up_since);
    OM_CLOG(h->log_name, OM_LOG_INFO, "health check state change: ready");
}

static void hc_pipelines_not_ready(void *self)
{
    hc_t *h = self;
    if (!h->ready) {
        return;
    }
    h->ready = false;
    OM_CLOG(h->log_name, OM_LOG_INFO, "health check state change: unavailable");
}

int ext_health_check_bound_port(const void *self)
{
    return ((const hc_t *)self)->bound_port;
}

size_t ext_health_check_conn_count(const void *self)
{
    return ((const hc_t *)self)->n_conns;
}

void ext_health_check_set_timeout(void *self, uint64_t ms)
{
    ((hc_t *)self)->timeout_ms = ms;
}

const om_factory_t ext_health_check_factory = {
    .abi = OM_FACTORY_ABI,
    .kind = OM_EXTENSION,
    .type = "health_check",
    .help = "HTTP health check: 200 once the pipelines run, 503 otherwise",
    .signals = 0,
    .config_size = sizeof(hc_cfg_t),
    .fields = hc_fields,
    .config_validate = hc_config_validate,
    .create = hc_create,
    .start = hc_start,
    .shutdown = hc_shutdown,
    .destroy = hc_destroy,
    .pipelines_ready = hc_pipelines_ready,
    .pipelines_not_ready = hc_pipelines_not_ready,
};
