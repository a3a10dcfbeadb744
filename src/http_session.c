/* http_session.c: one connection's HTTP/1.1, without a socket (see http_internal.h).
 *
 * http_parser calls us back while bytes are fed in. A request is decided at two points: when
 * its headers are complete (limits, target, route, method; the handler's begin may refuse it
 * there, before any body is read), and when it has arrived (the handler's complete). Bodies
 * go to the handler as they arrive, or are buffered within the route's limit. Answers are
 * appended to `out` in request order, which is what pipelining needs; a handler that answers
 * later pauses the parser, and the input that arrived meanwhile is kept until the answer.
 *
 * What is kept per request: the target and every header in one buffer (bounded by
 * max_header_bytes; all connections' buffers together by HBUF_BUDGET, so that many clients
 * sending large headers slowly cannot exhaust memory), and the buffered body (bounded by the
 * route's body limit).
 *
 * Routing is Go's ServeMux's on the percent-decoded path: a pattern ending in '/' serves its
 * subtree, any other only itself; the longest matching pattern wins; a path served only for
 * other methods gets 405 with Allow; the root of a subtree without its slash is redirected
 * (301); everything else gets Go's "404 page not found". */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "http_internal.h"

#define WARN_WINDOW_NS (60 * OM_NS_PER_S)
#define WARN_BURST 10
#define DEFAULT_MAX_URL (8 * 1024)
#define DEFAULT_MAX_HEADER_BYTES (64 * 1024)
/* All header buffers of the process together: 64 MiB is a thousand connections with the
 * largest headers allowed, or hundreds of thousands with common ones. */
#define HBUF_BUDGET ((size_t)64 << 20)
/* A header buffer larger than this is freed between requests rather than kept. */
#define HBUF_KEEP 4096
/* Answers with a larger body are handed over as their own buffer instead of being copied
 * into `out`. */
#define INLINE_BODY_MAX (16 * 1024)
/* Input kept while an answer is owed (only pipelining clients send any). */
#define PENDING_MAX (256 * 1024)

#define CT_TEXT "text/plain; charset=utf-8"
#define NOSNIFF "X-Content-Type-Options: nosniff\r\n"

static size_t hbuf_total; /* loop thread only, like every session */

/* ------------------------------------------------------------------------------------------ */
/* Rate-limited warnings                                                                      */

void om__warn_limited(om__warnlimit_t *w, const char *who, const char *fmt, ...)
{
    if (w == NULL || OM_LOG_WARN < om__log_level) {
        return;
    }
    uint64_t now = uv_hrtime();
    if (now - w->window_start_ns >= (uint64_t)WARN_WINDOW_NS) {
        if (w->suppressed > 0) {
            om_log_write(OM_LOG_WARN, who, "%u similar warnings suppressed", w->suppressed);
        }
        w->window_start_ns = now;
        w->in_window = 0;
        w->suppressed = 0;
    }
    if (w->in_window >= WARN_BURST) {
        w->suppressed++;
        return;
    }
    w->in_window++;
    char msg[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    om_log_write(OM_LOG_WARN, who, "%s", msg);
}

void om_http_req_warn(om_http_req_t *r, const char *fmt, ...)
{
    om_http_session_t *ss = r->ss;
    if (OM_LOG_WARN < om__log_level) {
        return;
    }
    char msg[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    om__warn_limited(&ss->srv->warn, ss->srv->o.log_name, "request from %s: %s",
                     ss->peer != NULL ? ss->peer : "?", msg);
}

/* ------------------------------------------------------------------------------------------ */
/* Go's texts                                                                                 */

const char *om_http_status_text(int status)
{
    static const struct {
        int code;
        const char *text;
    } texts[] = {
        {100, "Continue"},
        {200, "OK"},
        {201, "Created"},
        {202, "Accepted"},
        {204, "No Content"},
        {301, "Moved Permanently"},
        {302, "Found"},
        {304, "Not Modified"},
        {400, "Bad Request"},
        {401, "Unauthorized"},
        {403, "Forbidden"},
        {404, "Not Found"},
        {405, "Method Not Allowed"},
        {406, "Not Acceptable"},
        {408, "Request Timeout"},
        {413, "Request Entity Too Large"},
        {414, "Request URI Too Long"},
        {415, "Unsupported Media Type"},
        {429, "Too Many Requests"},
        {431, "Request Header Fields Too Large"},
        {500, "Internal Server Error"},
        {501, "Not Implemented"},
        {502, "Bad Gateway"},
        {503, "Service Unavailable"},
        {504, "Gateway Timeout"},
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        if (texts[i].code == status) {
            return texts[i].text;
        }
    }
    return "Error";
}

void om_http_date(char *out, size_t n)
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
/* The header buffer                                                                          */

static bool hb_reserve(om_http_req_t *q, size_t extra)
{
    if (q->hcap - q->hlen > extra) {
        return true;
    }
    size_t want = q->hlen + extra + 1;
    size_t cap = q->hcap < 256 ? 256 : q->hcap;
    while (cap < want) {
        cap *= 2;
    }
    if (hbuf_total - q->hcap + cap > HBUF_BUDGET) {
        return false;
    }
    char *p = om_realloc(q->hbuf, cap);
    if (p == NULL) {
        return false;
    }
    hbuf_total = hbuf_total - q->hcap + cap;
    q->hbuf = p;
    q->hcap = cap;
    return true;
}

static bool hb_append(om_http_req_t *q, const char *data, size_t n)
{
    if (!hb_reserve(q, n)) {
        return false;
    }
    memcpy(q->hbuf + q->hlen, data, n);
    q->hlen += n;
    return true;
}

static bool hb_nul(om_http_req_t *q)
{
    return hb_append(q, "", 1);
}

static void hb_free(om_http_req_t *q)
{
    hbuf_total -= q->hcap;
    om_free(q->hbuf);
    q->hbuf = NULL;
    q->hcap = 0;
}

/* Between requests: keep the fields that live across them, drop the rest. */
static void req_reset(om_http_session_t *ss)
{
    om_http_req_t *q = &ss->req;
    if (q->hcap > HBUF_KEEP) {
        hb_free(q);
    }
    om_free(q->body);
    char *hbuf = q->hbuf;
    size_t hcap = q->hcap;
    memset(q, 0, sizeof *q);
    q->ss = ss;
    q->hbuf = hbuf;
    q->hcap = hcap;
}

/* ------------------------------------------------------------------------------------------ */
/* Answers                                                                                    */

/* Undo a partial append to out after it failed (full or out of memory): the connection
 * closes, since a truncated answer would desynchronise the client. */
static bool out_check(om_http_session_t *ss, size_t mark)
{
    if (!ss->out.failed) {
        return true;
    }
    ss->out.len = mark;
    ss->out.failed = false;
    if (ss->out.data != NULL) {
        ss->out.data[mark] = '\0';
    }
    ss->req.keep_alive = false;
    ss->close = true;
    return false;
}

/* Whether this answer keeps the connection, by where the request is. */
static bool answer_keeps(const om_http_session_t *ss)
{
    const om_http_req_t *q = &ss->req;
    if (!q->keep_alive || ss->close_after) {
        return false;
    }
    switch (q->phase) {
    case OM__REQ_HEADERS:
        /* Refused before its body: the body is read and dropped to keep the connection,
         * unless the client waits for 100 Continue (it may never send it) or it is too
         * large to be worth reading. */
        return !q->body_pending || (!q->expect && !((ss->parser.flags & F_CONTENTLENGTH) != 0 &&
                                                    ss->parser.content_length > q->max_body));
    case OM__REQ_BODY:
        return false; /* refused mid-body: the rest is not read */
    default:
        return true;
    }
}

static bool no_body_status(int status)
{
    return status < 200 || status == 204 || status == 304;
}

/* The status line and headers, into out. */
static void write_head(om_http_session_t *ss, int status, const char *ctype, const char *headers,
                       size_t len, bool keep)
{
    om_strbuf_t *o = &ss->out;
    om_http_server_t *srv = ss->srv;
    om_strbuf_printf(o, "HTTP/1.1 %d %s\r\n", status, om_http_status_text(status));
    if (ctype != NULL) {
        om_strbuf_printf(o, "Content-Type: %s\r\n", ctype);
    }
    if (headers != NULL) {
        om_strbuf_puts(o, headers);
    }
    if (srv->resp_headers != NULL && !ss->req.raw_error) {
        om_strbuf_puts(o, srv->resp_headers);
    }
    if (srv->o.date_header) {
        char date[40];
        om_http_date(date, sizeof date);
        om_strbuf_printf(o, "Date: %s\r\n", date);
    }
    if (!no_body_status(status)) {
        om_strbuf_printf(o, "Content-Length: %zu\r\n", len);
    }
    if (!keep) {
        om_strbuf_puts(o, "Connection: close\r\n");
    } else if (ss->parser.http_major == 1 && ss->parser.http_minor == 0) {
        om_strbuf_puts(o, "Connection: keep-alive\r\n"); /* HTTP/1.0 closes unless told */
    }
    om_strbuf_puts(o, "\r\n");
}

static void req_finish(om_http_session_t *ss);

/* Write one whole answer (body owned when take), or nothing and close. */
static void answer(om_http_session_t *ss, int status, const char *ctype, const char *headers,
                   const char *body, size_t len, bool take)
{
    om_http_req_t *q = &ss->req;
    bool keep = answer_keeps(ss);
    q->keep_alive = keep;
    q->answered = true;
    bool send_body = !q->head && !no_body_status(status) && len > 0;
    size_t mark = ss->out.len;
    write_head(ss, status, ctype, headers, len, keep);
    if (send_body && (!take || ss->emit == NULL)) {
        om_strbuf_append(&ss->out, body, len);
        send_body = false;
    }
    bool ok = out_check(ss, mark);
    if (ok && send_body) {
        om__http_session_flush(ss);
        ss->emit(ss, (char *)(uintptr_t)body, len);
        take = false; /* emit owns it now */
    }
    if (take) {
        om_free((void *)(uintptr_t)body);
    }
}

/* An answer the server makes itself, as Go's server writes it. */
static void answer_plain(om_http_session_t *ss, int status, const char *headers, const char *text)
{
    char buf[96];
    if (text == NULL) {
        snprintf(buf, sizeof buf, "%d %s", status, om_http_status_text(status));
        text = buf;
    }
    answer(ss, status, CT_TEXT, headers, text, strlen(text), false);
}

static void respond_any(om_http_req_t *r, int status, const char *ctype, const char *headers,
                        const char *body, size_t len, bool take)
{
    om_http_session_t *ss = r->ss;
    if (r->answered || ss->orphaned) {
        if (take) {
            om_free((void *)(uintptr_t)body);
        }
        if (r->answered) {
            return; /* a second answer is a handler bug; the first one stands */
        }
        r->answered = true;
    } else {
        answer(ss, status, ctype, headers, body, len, take);
    }
    if (ss->dispatching) {
        return; /* the parser callback that called the handler finishes the request */
    }
    /* Later than the handler's callback: the request ends here, and the transport is told to
     * send the answer and read on (or to free the connection, when it is gone). */
    bool owed = ss->owed;
    ss->owed = false;
    if (owed || ss->orphaned) {
        req_finish(ss);
    } else {
        ss->close = true; /* answered mid-request from outside a callback */
    }
    if (ss->wake != NULL) {
        ss->wake(ss);
    }
}

void om_http_respond(om_http_req_t *r, int status, const char *content_type, const char *headers,
                     const void *body, size_t len)
{
    if (len > INLINE_BODY_MAX && r->ss->emit != NULL && !r->ss->req.head) {
        char *copy = om_malloc(len);
        if (copy != NULL) {
            memcpy(copy, body, len);
            respond_any(r, status, content_type, headers, copy, len, true);
            return;
        }
    }
    respond_any(r, status, content_type, headers, body != NULL ? body : "", body ? len : 0, false);
}

void om_http_respond_take(om_http_req_t *r, int status, const char *content_type,
                          const char *headers, char *body, size_t len)
{
    respond_any(r, status, content_type, headers, body != NULL ? body : "", body ? len : 0,
                body != NULL);
}

/* ------------------------------------------------------------------------------------------ */
/* Request lifecycle                                                                          */

static void call_end(om_http_session_t *ss)
{
    om_http_req_t *q = &ss->req;
    if (q->began && !q->ended) {
        q->ended = true;
        if (q->route->h->end != NULL) {
            q->route->h->end(q, q->route->arg);
        }
    }
}

/* The request is over: tell the handler, and close when its answer said so. */
static void req_finish(om_http_session_t *ss)
{
    call_end(ss);
    bool keep = ss->req.keep_alive && !ss->close_after;
    req_reset(ss);
    if (!keep) {
        ss->close = true;
    }
}

/* Run a handler callback; answers given inside it are finished by the caller. */
#define DISPATCH(ss, call)                                                                         \
    do {                                                                                           \
        (ss)->dispatching = true;                                                                  \
        call;                                                                                      \
        (ss)->dispatching = false;                                                                 \
    } while (0)

/* A limit hit inside a parser callback: remember the answer; the feed loop gives it. */
static int fail(om_http_session_t *ss, int status)
{
    ss->req.fail_status = status;
    return -1;
}

/* ------------------------------------------------------------------------------------------ */
/* Parser callbacks: the request line and headers                                             */

static int on_message_begin(http_parser *p)
{
    om_http_session_t *ss = p->data;
    req_reset(ss);
    ss->req.phase = OM__REQ_HEADERS;
    ss->msg_begin_ns = uv_hrtime();
    ss->requests++;
    return 0;
}

static bool over_header_limit(om_http_session_t *ss, size_t n)
{
    om_http_req_t *q = &ss->req;
    size_t max =
        ss->srv->o.max_header_bytes ? ss->srv->o.max_header_bytes : DEFAULT_MAX_HEADER_BYTES;
    q->hdr_bytes += n;
    return q->hdr_bytes > max;
}

static int on_url(http_parser *p, const char *at, size_t n)
{
    om_http_session_t *ss = p->data;
    om_http_req_t *q = &ss->req;
    size_t max = ss->srv->o.max_url ? ss->srv->o.max_url : DEFAULT_MAX_URL;
    if (over_header_limit(ss, n)) {
        return fail(ss, 431);
    }
    if (q->url_overflow || n > max - q->url_len) {
        q->url_overflow = true; /* answered 431 once the headers are in, as Go does */
        return 0;
    }
    if (!hb_append(q, at, n)) {
        return fail(ss, 431);
    }
    q->url_len += n;
    return 0;
}

/* Ends the value being received: trailing blanks go, a NUL follows. */
static bool end_value(om_http_req_t *q)
{
    while (q->hlen > q->hdr_start &&
           (q->hbuf[q->hlen - 1] == ' ' || q->hbuf[q->hlen - 1] == '\t')) {
        q->hlen--;
    }
    q->in_value = false;
    return hb_nul(q);
}

static int on_header_field(http_parser *p, const char *at, size_t n)
{
    om_http_session_t *ss = p->data;
    om_http_req_t *q = &ss->req;
    if (over_header_limit(ss, n)) {
        return fail(ss, 431);
    }
    if (q->n_headers == 0 && !q->in_value && q->hdr_start == 0) {
        /* The first header: the target ends here. */
        if (!hb_nul(q)) {
            return fail(ss, 431);
        }
        q->hdr_start = q->hlen;
    }
    if (q->in_value) {
        if (!end_value(q)) {
            return fail(ss, 431);
        }
    }
    if (!hb_append(q, at, n)) {
        return fail(ss, 431);
    }
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t n)
{
    om_http_session_t *ss = p->data;
    om_http_req_t *q = &ss->req;
    if (over_header_limit(ss, n)) {
        return fail(ss, 431);
    }
    if (!q->in_value) {
        q->in_value = true;
        q->n_headers++;
        if (!hb_nul(q)) { /* ends the name */
            return fail(ss, 431);
        }
    }
    if (!hb_append(q, at, n)) {
        return fail(ss, 431);
    }
    return 0;
}

const char *om_http_req_header(const om_http_req_t *r, const char *name, unsigned *count)
{
    const char *first = NULL;
    unsigned n = 0;
    const char *p = r->hbuf != NULL ? r->hbuf + r->hdr_start : NULL;
    /* Bounded by n_headers pairs, each two NUL-terminated strings in hbuf. */
    for (size_t i = 0; i < r->n_headers && p != NULL; i++) {
        const char *value = p + strlen(p) + 1;
        if (strcasecmp(p, name) == 0) {
            n++;
            if (first == NULL) {
                first = value;
            }
        }
        p = value + strlen(value) + 1;
    }
    while (first != NULL && (*first == ' ' || *first == '\t')) {
        first++;
    }
    if (count != NULL) {
        *count = n;
    }
    return first;
}

/* ------------------------------------------------------------------------------------------ */
/* Headers complete: target, route, method                                                    */

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

/* Percent-decode src[0..n) into out (room for n + 1). plus: '+' is a space (query strings).
 * keep_slash: an escaped '/' stays escaped, as Go's path matching keeps it inside its segment.
 * Returns the length, or -1 for a bad escape or an escaped NUL. */
static long decode(const char *src, size_t n, char *out, bool plus, bool keep_slash)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (src[i] == '+' && plus) {
            out[o++] = ' ';
            continue;
        }
        if (src[i] != '%') {
            out[o++] = src[i];
            continue;
        }
        int hi = i + 2 < n ? hexval(src[i + 1]) : -1;
        int lo = hi >= 0 ? hexval(src[i + 2]) : -1;
        if (lo < 0 || hi * 16 + lo == 0) {
            return -1;
        }
        if (hi * 16 + lo == '/' && keep_slash) {
            memcpy(out + o, src + i, 3);
            o += 3;
        } else {
            out[o++] = (char)(hi * 16 + lo);
        }
        i += 2;
    }
    out[o] = '\0';
    return (long)o;
}

/* The decoded path and the raw query, appended to hbuf. Origin form ("/a?q") and absolute
 * form ("http://h/a") are understood. False for a target Go would refuse with 400. */
static bool parse_target(om_http_session_t *ss)
{
    om_http_req_t *q = &ss->req;
    struct http_parser_url u;
    http_parser_url_init(&u);
    const char *url = q->hbuf;
    if (q->url_len == 0 ||
        http_parser_parse_url(url, q->url_len, ss->parser.method == HTTP_CONNECT, &u) != 0) {
        return false;
    }
    size_t plen = (u.field_set & (1u << UF_PATH)) ? u.field_data[UF_PATH].len : 0;
    size_t qlen = (u.field_set & (1u << UF_QUERY)) ? u.field_data[UF_QUERY].len : 0;
    if (!hb_reserve(q, plen + qlen + 4)) {
        return false;
    }
    url = q->hbuf; /* may have moved */
    q->path_off = q->hlen;
    long n = decode(url + u.field_data[UF_PATH].off, plen, q->hbuf + q->hlen, false, true);
    if (n < 0) {
        return false;
    }
    if (n == 0) {
        q->hbuf[q->hlen] = '/'; /* an empty path is "/" (Go redirects it; same answer) */
        n = 1;
    }
    q->hlen += (size_t)n;
    q->hbuf[q->hlen++] = '\0';
    q->query_off = q->hlen;
    memcpy(q->hbuf + q->hlen, url + u.field_data[UF_QUERY].off, qlen);
    q->hlen += qlen;
    q->hbuf[q->hlen++] = '\0';
    return true;
}

static unsigned method_bit(int m)
{
    switch (m) {
    case HTTP_GET:
        return OM_HTTP_GET;
    case HTTP_HEAD:
        return OM_HTTP_HEAD;
    case HTTP_POST:
        return OM_HTTP_POST;
    case HTTP_PUT:
        return OM_HTTP_PUT;
    case HTTP_DELETE:
        return OM_HTTP_DELETE;
    case HTTP_PATCH:
        return OM_HTTP_PATCH;
    case HTTP_OPTIONS:
        return OM_HTTP_OPTIONS;
    default:
        return 0;
    }
}

static bool method_ok(unsigned allowed, unsigned m)
{
    return allowed == OM_HTTP_ANY || (allowed & m) != 0 ||
           (m == OM_HTTP_HEAD && (allowed & OM_HTTP_GET) != 0);
}

static bool pattern_matches(const om__http_route_t *rt, const char *path)
{
    return rt->subtree ? strncmp(path, rt->pattern, rt->len) == 0 : strcmp(path, rt->pattern) == 0;
}

/* Allow: the methods of every route serving the path, in Go's (alphabetical) order. */
static void allow_header(unsigned allow, char *out, size_t n)
{
    static const struct {
        unsigned bit;
        const char *name;
    } names[] = {
        {OM_HTTP_DELETE, "DELETE"},   {OM_HTTP_GET, "GET"},     {OM_HTTP_HEAD, "HEAD"},
        {OM_HTTP_OPTIONS, "OPTIONS"}, {OM_HTTP_PATCH, "PATCH"}, {OM_HTTP_POST, "POST"},
        {OM_HTTP_PUT, "PUT"},
    };
    if (allow & OM_HTTP_GET) {
        allow |= OM_HTTP_HEAD;
    }
    size_t o = (size_t)snprintf(out, n, "Allow: ");
    for (size_t i = 0; i < sizeof names / sizeof names[0] && o < n; i++) {
        if (allow & names[i].bit) {
            o += (size_t)snprintf(out + o, n - o, "%s%s", o > 7 ? ", " : "", names[i].name);
        }
    }
    if (o < n) {
        snprintf(out + o, n - o, "\r\n");
    }
}

/* Go's redirect of a subtree's root to the subtree ("/health" to "/health/"), query kept. */
static bool answer_redirect(om_http_session_t *ss, const char *path, const char *query)
{
    const om_http_server_t *srv = ss->srv;
    size_t plen = strlen(path);
    for (size_t i = 0; i < srv->n_routes; i++) {
        const om__http_route_t *rt = &srv->routes[i];
        if (rt->subtree && rt->len == plen + 1 && strncmp(rt->pattern, path, plen) == 0) {
            om_strbuf_t h, b;
            om_strbuf_init(&h, 0);
            om_strbuf_init(&b, 0);
            om_strbuf_printf(&h, "Location: %s%s%s\r\n", rt->pattern, query[0] ? "?" : "", query);
            om_strbuf_printf(&b, "<a href=\"%s\">Moved Permanently</a>.\n\n", rt->pattern);
            if (!h.failed && !b.failed) {
                answer(ss, 301, "text/html; charset=utf-8", h.data, b.data, b.len, false);
            } else {
                ss->req.keep_alive = false;
                answer_plain(ss, 500, NULL, NULL); /* out of memory */
            }
            om_strbuf_free(&h);
            om_strbuf_free(&b);
            return true;
        }
    }
    return false;
}

/* The route for the request, or NULL after answering 404, 405 or 301. */
static const om__http_route_t *route(om_http_session_t *ss)
{
    om_http_req_t *q = &ss->req;
    const om_http_server_t *srv = ss->srv;
    const char *path = q->hbuf + q->path_off;
    const om__http_route_t *best = NULL;
    unsigned allow = 0;
    bool path_served = false;
    for (size_t i = 0; i < srv->n_routes; i++) {
        const om__http_route_t *rt = &srv->routes[i];
        if (!pattern_matches(rt, path)) {
            continue;
        }
        path_served = true;
        allow |= rt->methods;
        if (method_ok(rt->methods, q->method) && (best == NULL || rt->len > best->len)) {
            best = rt;
        }
    }
    if (best != NULL) {
        return best;
    }
    if (path_served) {
        char h[128];
        allow_header(allow, h, sizeof h);
        char hs[192];
        snprintf(hs, sizeof hs, "%s%s", h, NOSNIFF);
        answer_plain(ss, 405, hs, "Method Not Allowed\n");
        return NULL;
    }
    if (!answer_redirect(ss, path, q->hbuf + q->query_off)) {
        OM_CLOG(srv->o.log_name, OM_LOG_DEBUG, "request from %s: 404 %s",
                ss->peer != NULL ? ss->peer : "?", path);
        answer_plain(ss, 404, NOSNIFF, "404 page not found\n");
    }
    return NULL;
}

static bool expects_continue(const om_http_session_t *ss)
{
    const http_parser *p = &ss->parser;
    if (p->http_major != 1 || p->http_minor < 1) {
        return false;
    }
    const char *v = om_http_req_header(&ss->req, "expect", NULL);
    if (v == NULL) {
        return false;
    }
    size_t n = strlen(v);
    return n == 12 && strncasecmp(v, "100-continue", 12) == 0;
}

/* The request line and headers are in: limits, target, method, keep-alive. False after
 * answering (a bad target). */
static bool headers_ready(om_http_session_t *ss, http_parser *p)
{
    om_http_req_t *q = &ss->req;
    om_http_server_t *srv = ss->srv;
    if ((q->in_value && !end_value(q)) || (q->hdr_start == 0 && !hb_nul(q))) {
        q->fail_status = 431;
        return false;
    }
    if (q->hdr_start == 0) {
        q->hdr_start = q->hlen;
    }
    ss->headers_done_ns = uv_hrtime();
    q->method = method_bit(p->method);
    q->head = p->method == HTTP_HEAD;
    q->body_pending =
        (p->flags & F_CHUNKED) != 0 || ((p->flags & F_CONTENTLENGTH) != 0 && p->content_length > 0);
    q->expect = expects_continue(ss);
    q->keep_alive =
        http_should_keep_alive(p) != 0 && srv->keep_alive && !srv->o.one_request_per_connection;
    q->max_body = srv->max_body;
    if (q->url_overflow) {
        q->fail_status = 431;
        return false;
    }
    if (!parse_target(ss)) {
        om_http_req_warn(q, "400 malformed request target");
        q->keep_alive = false;
        answer_plain(ss, 400, NULL, NULL);
        return false;
    }
    return true;
}

static bool declared_too_long(const om_http_session_t *ss)
{
    const http_parser *p = &ss->parser;
    return (p->flags & F_CONTENTLENGTH) != 0 && p->content_length > ss->req.max_body;
}

/* After an answer given at headers time: go on to drain the body, or stop here. */
static int after_early_answer(om_http_session_t *ss)
{
    if (ss->req.keep_alive) {
        ss->req.phase = OM__REQ_BODY;
        return 0;
    }
    req_finish(ss);
    ss->close = true;
    return -1;
}

/* The value of a request header for the server's authenticator: a query parameter the
 * config names in auth::request_params wins over the header of that name, as in otelcol. The
 * query value is decoded into a buffer that lives until the check returns (one check at a
 * time: the loop thread only). */
static const char *auth_header(void *arg, const char *name)
{
    static char qbuf[8192];
    om_http_session_t *ss = arg;
    const om_strlist_t *params = &ss->srv->cfg->auth.request_params;
    for (size_t i = 0; i < params->n; i++) {
        if (strcasecmp(params->items[i], name) == 0 &&
            om_http_query_get(om_http_req_query(&ss->req), params->items[i], qbuf, sizeof qbuf) >=
                0) {
            return qbuf;
        }
    }
    return om_http_req_header(&ss->req, name, NULL);
}

/* Before routing, so that a refused client learns nothing about what is served. The answer
 * carries no detail, and the connection closes after it: an unauthenticated peer gets no
 * further service on it. */
static bool authenticated(om_http_session_t *ss)
{
    om_auth_server_t *auth = ss->srv->auth;
    int rc = auth != NULL ? om_auth_server_check(auth, auth_header, ss, ss->peer) : 0;
    if (rc == 0) {
        return true;
    }
    ss->req.keep_alive = false;
    if (rc == OM_EAGAIN) {
        answer_plain(ss, 503, "Retry-After: 1\r\n" NOSNIFF, "Service Unavailable\n");
    } else {
        answer_plain(ss, 401, NOSNIFF, "Unauthorized\n");
    }
    return false;
}

static int on_headers_complete(http_parser *p)
{
    om_http_session_t *ss = p->data;
    om_http_req_t *q = &ss->req;
    if (!headers_ready(ss, p)) {
        return q->answered ? after_early_answer(ss) : -1;
    }
    if (!authenticated(ss)) {
        return after_early_answer(ss);
    }
    const om__http_route_t *rt = route(ss);
    if (rt == NULL) {
        return after_early_answer(ss);
    }
    q->route = rt;
    if (rt->max_body != 0 && rt->max_body < q->max_body) {
        q->max_body = rt->max_body;
    }
    if (ss->state_size > 0) {
        memset(ss->state, 0, ss->state_size);
    }
    q->began = true;
    if (rt->h->begin != NULL) {
        DISPATCH(ss, rt->h->begin(q, rt->arg));
    }
    if (!q->answered && declared_too_long(ss)) {
        om_http_req_warn(q, "413 Content-Length %" PRIu64 " over the limit", p->content_length);
        answer_plain(ss, 413, NULL, NULL);
    }
    if (q->answered) {
        return after_early_answer(ss);
    }
    q->phase = OM__REQ_BODY;
    if (q->body_pending && q->expect) {
        size_t mark = ss->out.len;
        om_strbuf_puts(&ss->out, "HTTP/1.1 100 Continue\r\n\r\n");
        if (!out_check(ss, mark)) {
            return -1;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Body and completion                                                                        */

static int buffer_body(om_http_session_t *ss, const char *at, size_t n)
{
    om_http_req_t *q = &ss->req;
    if (n > q->body_cap - q->body_len) {
        size_t cap = q->body_cap < 1024 ? 1024 : q->body_cap;
        while (cap - q->body_len < n) {
            cap *= 2;
        }
        if (cap > q->max_body + 1) {
            cap = (size_t)q->max_body + 1;
        }
        char *b = om_realloc(q->body, cap);
        if (b == NULL) {
            answer_plain(ss, 503, "Retry-After: 1\r\n", NULL);
            return -1;
        }
        q->body = b;
        q->body_cap = cap;
    }
    memcpy(q->body + q->body_len, at, n);
    q->body_len += n;
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
    om_http_session_t *ss = p->data;
    om_http_req_t *q = &ss->req;
    q->body_bytes += n;
    if (q->answered) {
        if (q->body_bytes > q->max_body) {
            req_finish(ss);
            ss->close = true; /* the answer is out already; stop reading a huge body */
            return -1;
        }
        return 0;
    }
    if (q->route->h->body != NULL) {
        DISPATCH(ss, q->route->h->body(q, q->route->arg, at, n));
    }
    if (!q->answered && q->body_bytes > q->max_body) {
        om_http_req_warn(q, "413 body over the limit");
        answer_plain(ss, 413, NULL, NULL);
    }
    if (!q->answered && q->route->h->body == NULL && buffer_body(ss, at, n) != 0) {
        q->answered = true;
    }
    if (q->answered) {
        req_finish(ss);
        ss->close = true;
        return -1;
    }
    return 0;
}

static int on_message_complete(http_parser *p)
{
    om_http_session_t *ss = p->data;
    om_http_req_t *q = &ss->req;
    if (!q->answered && q->route == NULL) {
        q->keep_alive = false; /* cannot happen: an unrouted request is answered at once */
        answer_plain(ss, 500, NULL, NULL);
    } else if (!q->answered) {
        q->phase = OM__REQ_COMPLETE;
        DISPATCH(ss, q->route->h->complete(q, q->route->arg));
    }
    if (!q->answered) {
        /* Answered later: read nothing more until then. */
        ss->owed = true;
        http_parser_pause(p, 1);
        return 0;
    }
    req_finish(ss);
    return ss->close ? -1 : 0;
}

static const http_parser_settings parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ------------------------------------------------------------------------------------------ */
/* Feeding                                                                                    */

void om__http_session_init(om_http_session_t *ss, om_http_server_t *srv, const char *peer)
{
    size_t state_size = srv->o.req_state_size;
    memset(ss, 0, sizeof *ss + state_size);
    http_parser_init(&ss->parser, HTTP_REQUEST);
    ss->parser.data = ss;
    ss->srv = srv;
    ss->peer = peer;
    ss->state_size = state_size;
    ss->req.ss = ss;
    om_strbuf_init(&ss->out, OM__HTTP_OUT_MAX);
}

/* Malformed HTTP, or a limit hit inside a callback: answer unless this request was answered
 * already, and close: the byte stream cannot be resynchronised. */
static void bad_http(om_http_session_t *ss, enum http_errno e)
{
    om_http_req_t *q = &ss->req;
    if (!q->answered) {
        int status = q->fail_status != 0 ? q->fail_status : e == HPE_HEADER_OVERFLOW ? 431 : 400;
        om_http_req_warn(q, "%d malformed HTTP: %s", status,
                         q->fail_status != 0 ? om_http_status_text(status)
                                             : http_errno_description(e));
        q->keep_alive = false;
        q->raw_error = true; /* as Go's server: no response_headers on these */
        answer_plain(ss, status, NULL, NULL);
    }
    req_finish(ss);
    ss->close = true;
}

/* Keep input that arrived while an answer is owed. */
static void stash(om_http_session_t *ss, const char *data, size_t len)
{
    if (len == 0) {
        return;
    }
    if (len > PENDING_MAX - ss->pending_len) {
        ss->close = true; /* a client pipelining that much without reading answers */
        return;
    }
    char *p = om_realloc(ss->pending_in, ss->pending_len + len);
    if (p == NULL) {
        ss->close = true;
        return;
    }
    memcpy(p + ss->pending_len, data, len);
    ss->pending_in = p;
    ss->pending_len += len;
}

/* The client offered an upgrade (h2c, websocket) that we declined by answering in HTTP/1.1;
 * it then carries on in HTTP/1.1. CONNECT has no such way back. Returns false to stop. */
static bool decline_upgrade(om_http_session_t *ss, size_t n)
{
    if (ss->parser.method == HTTP_CONNECT || n == 0) {
        ss->close = true;
        return false;
    }
    ss->parser.upgrade = 0;
    return true;
}

void om_http_session_feed(om_http_session_t *ss, const char *data, size_t len)
{
    if (ss->close) {
        return;
    }
    if (len == 0) {
        /* The peer sends nothing more: a partial request cannot be answered usefully; an
         * answer owed is still sent. */
        if (!ss->owed && ss->req.phase != OM__REQ_NONE) {
            req_finish(ss);
        }
        ss->close = true;
        return;
    }
    if (ss->owed) {
        stash(ss, data, len);
        return;
    }
    /* Bound: each pass consumes at least one byte, or stops. */
    while (len > 0 && !ss->close) {
        size_t n = http_parser_execute(&ss->parser, &parser_settings, data, len);
        if (ss->close) {
            return; /* a callback answered and closes */
        }
        enum http_errno e = HTTP_PARSER_ERRNO(&ss->parser);
        if (e == HPE_PAUSED) {
            stash(ss, data + n, len - n);
            return;
        }
        if (e != HPE_OK) {
            bad_http(ss, e);
            return;
        }
        if (!ss->parser.upgrade || !decline_upgrade(ss, n)) {
            return;
        }
        data += n;
        len -= n;
    }
}

void om_http_session_resume(om_http_session_t *ss)
{
    if (ss->owed || ss->close) {
        return;
    }
    if (HTTP_PARSER_ERRNO(&ss->parser) == HPE_PAUSED) {
        http_parser_pause(&ss->parser, 0);
    }
    char *in = ss->pending_in;
    size_t len = ss->pending_len;
    ss->pending_in = NULL;
    ss->pending_len = 0;
    if (in != NULL) {
        om_http_session_feed(ss, in, len);
        om_free(in);
    }
}

void om__http_session_flush(om_http_session_t *ss)
{
    if (ss->emit == NULL || ss->out.len == 0) {
        return;
    }
    size_t len = 0;
    char *data = om_strbuf_steal(&ss->out, &len);
    if (data == NULL) {
        ss->close = true;
        return;
    }
    ss->emit(ss, data, len);
}

bool om__http_session_idle(const om_http_session_t *ss)
{
    return ss->req.phase == OM__REQ_NONE && !ss->owed;
}

bool om__http_session_close(om_http_session_t *ss)
{
    om_http_req_t *q = &ss->req;
    ss->close = true;
    if (ss->orphaned) {
        return ss->owed;
    }
    if (ss->owed) {
        ss->orphaned = true;
        if (!q->cancelled && q->route->h->cancel != NULL) {
            q->cancelled = true;
            DISPATCH(ss, q->route->h->cancel(q, q->route->arg));
        }
        if (!q->answered) {
            return true;
        }
        ss->owed = false;
    }
    call_end(ss);
    return false;
}

void om__http_session_release(om_http_session_t *ss)
{
    om_free(ss->req.body);
    ss->req.body = NULL;
    hb_free(&ss->req);
    om_free(ss->pending_in);
    ss->pending_in = NULL;
    om_strbuf_free(&ss->out);
}

/* ------------------------------------------------------------------------------------------ */
/* The request, for handlers                                                                  */

unsigned om_http_req_method(const om_http_req_t *r)
{
    return r->method;
}

const char *om_http_req_method_name(const om_http_req_t *r)
{
    return http_method_str((enum http_method)r->ss->parser.method);
}

const char *om_http_req_path(const om_http_req_t *r)
{
    return r->hbuf != NULL && r->path_off > 0 ? r->hbuf + r->path_off : "/";
}

const char *om_http_req_query(const om_http_req_t *r)
{
    return r->hbuf != NULL && r->query_off > 0 ? r->hbuf + r->query_off : "";
}

bool om_http_req_content_length(const om_http_req_t *r, uint64_t *len)
{
    const http_parser *p = &r->ss->parser;
    if ((p->flags & F_CONTENTLENGTH) == 0 || (p->flags & F_CHUNKED) != 0) {
        return false;
    }
    *len = p->content_length;
    return true;
}

const char *om_http_req_body(const om_http_req_t *r, size_t *len)
{
    *len = r->body_len;
    return r->body != NULL ? r->body : "";
}

const char *om_http_req_peer(const om_http_req_t *r)
{
    return r->ss->peer != NULL ? r->ss->peer : "?";
}

uint64_t om_http_req_max_body(const om_http_req_t *r)
{
    return r->max_body;
}

void *om_http_req_state(om_http_req_t *r)
{
    return r->ss->state_size > 0 ? r->ss->state : NULL;
}

int om_http_query_get(const char *query, const char *name, char *out, size_t cap)
{
    size_t nlen = strlen(name);
    const char *p = query;
    /* Bounded: each pass moves past one '&'-separated pair. */
    while (p != NULL && *p != '\0') {
        const char *end = strchr(p, '&');
        size_t plen = end != NULL ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', plen);
        size_t klen = eq != NULL ? (size_t)(eq - p) : plen;
        char key[256];
        if (klen < sizeof key && decode(p, klen, key, true, false) == (long)nlen &&
            memcmp(key, name, nlen) == 0) {
            const char *v = eq != NULL ? eq + 1 : p + plen;
            size_t vlen = eq != NULL ? plen - klen - 1 : 0;
            if (vlen >= cap) {
                return OM_ETOOBIG;
            }
            long n = decode(v, vlen, out, true, false);
            return n < 0 ? OM_EINVAL : (int)n;
        }
        p = end != NULL ? end + 1 : NULL;
    }
    return -1;
}

/* ------------------------------------------------------------------------------------------ */
/* Sessions without a socket                                                                  */

om_http_session_t *om_http_session_new(om_http_server_t *s, const char *peer)
{
    om_http_session_t *ss = om_malloc(sizeof *ss + s->o.req_state_size);
    if (ss == NULL) {
        return NULL;
    }
    om__http_session_init(ss, s, peer);
    return ss;
}

char *om_http_session_take_output(om_http_session_t *ss, size_t *len)
{
    *len = 0;
    if (ss->out.len == 0) {
        return NULL;
    }
    return om_strbuf_steal(&ss->out, len);
}

bool om_http_session_done(const om_http_session_t *ss)
{
    return ss->close && !ss->owed;
}

void om_http_session_free(om_http_session_t *ss)
{
    if (ss == NULL) {
        return;
    }
    /* An answer still owed is dropped: without a transport nothing waits for it. */
    if (om__http_session_close(ss)) {
        ss->req.answered = true;
        call_end(ss);
    }
    om__http_session_release(ss);
    om_free(ss);
}
