/* h2_session.c: one HTTP/2 connection's gRPC calls, without a socket (the transport is
 * http_server.c, like the HTTP/1.1 session of http_session.c).
 *
 * Why our own: gRPC's C core costs about twice what an HTTP/2 library costs per call at the
 * paced test's rate, on a thread of its own that the loop must hand every call to and back
 * (bench/README.md, "What gRPC's C core costs per call"). nghttp2 does the HTTP/2 (framing,
 * HPACK, flow control, stream states, the protocol's checks); this file does gRPC's part of a
 * server for unary calls (the gRPC over HTTP/2 protocol, PROTOCOL-HTTP2.md in grpc/grpc):
 *   - a request is POST with content-type application/grpc[+proto|;...]; others get HTTP 415
 *     (or 405 for other methods) as gRPC-Go answers them;
 *   - the body is length-prefixed messages (a flag byte, 1 for compressed, and a 4-byte
 *     big-endian length); a unary call carries exactly one. A message over the method's limit
 *     is refused with RESOURCE_EXHAUSTED as soon as its prefix is in, and its bytes are not
 *     kept;
 *   - a path without a method registered is answered UNIMPLEMENTED;
 *   - grpc-timeout sets the call's deadline: past it the call is answered DEADLINE_EXCEEDED
 *     and the handler's cancel runs (om__h2_expire, driven by the transport's timer);
 *   - the answer is HEADERS (:status 200, content-type), one DATA frame with the message and
 *     trailers with grpc-status (and grpc-message, percent-encoded); an error is one HEADERS
 *     frame ("trailers-only"). The rest of a request answered before it ended is read and
 *     dropped (up to DROP_MAX, then the stream is reset).
 *
 * Calls: one om_grpc_call_t per stream, made when its headers begin, freed when nghttp2
 * closes the stream, unless the handler still owes the answer: then it is freed by
 * om_grpc_respond. The handler's `call` runs once the request has ended with its message; its
 * answer may come from inside that callback or later. A stream reset by the client (or a
 * connection that goes away) while the answer is owed calls the handler's `cancel`.
 *
 * Output: nghttp2 queues frames; om__h2_flush serialises them (nghttp2_session_mem_send) and
 * hands them to the transport's emit in one buffer. Answers given outside the transport's
 * calls into the session (later than the callback) call the transport's wake, which flushes.
 *
 * Loop thread only (the server's loop). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <nghttp2/nghttp2.h>

#include "http_internal.h"

#define GRPC_PREFIX 5
/* Flow control: windows wide enough that a request of a few MiB rarely waits for a window
 * update; what a call may buffer is bounded by its method's message limit, not by these. */
#define STREAM_WINDOW (1 << 20)
#define CONN_WINDOW (16 << 20)
#define DEFAULT_MAX_STREAMS 100
/* The largest DATA frame a client may send: a typical request (tens of KiB) then comes in one
 * frame instead of several of HTTP/2's default 16 KiB, which is less work for both sides. */
#define MAX_FRAME (256 * 1024)
/* Output held before it is handed to the transport (nghttp2 asks for more only after). */
#define OUT_CHUNK (256 * 1024)
/* A message's first buffer at most: it grows as its bytes arrive. */
#define BODY_FIRST (256 * 1024)
/* Request bytes read and dropped after an early answer before the stream is reset. */
#define DROP_MAX (8u << 20)

struct om_grpc_call {
    om__h2_session_t *h2;
    om_grpc_call_t *prev, *next; /* the session's calls */
    int32_t id;
    const om__grpc_route_t *route; /* NULL: no method at the path */
    /* The path, then "name\0value\0" pairs of the other headers; om_malloc'd. */
    char *hbuf;
    size_t hlen, hcap, n_headers;
    bool has_path, post;
    bool grpc_type; /* content-type says application/grpc */
    /* The message with its prefix, allocated once the prefix tells its length (bounded by the
     * method's limit) and grown as its bytes arrive; the prefix alone waits in pre. */
    uint8_t pre[5];
    uint8_t *body;
    size_t blen, bcap;
    uint64_t mlen;
    uint64_t deadline_ns; /* uv_hrtime() clock; 0: none */
    /* The answer: a message (the prefix included) for the DATA frame, then the trailers. */
    uint8_t *reply;
    size_t reply_len, reply_sent;
    int status;
    char *status_msg; /* percent-encoded; om_malloc'd or NULL */
    bool ended_in;    /* the request's END_STREAM arrived */
    bool refused;     /* answered by the session (a refusal, or out of time): the rest of
                       * the request is dropped, and a handler's answer too */
    bool dispatched, answered, cancelled, closed, reset;
    uint64_t dropped; /* request bytes dropped after an early answer */
    size_t state_size;
    alignas(max_align_t) unsigned char state[];
};

struct om__h2_session {
    nghttp2_session *ng;
    om_http_server_t *srv;
    const char *peer;
    om_strbuf_t out;
    void (*emit)(void *arg, char *data, size_t len); /* takes om_malloc'd output */
    void (*wake)(void *arg);
    void *arg;
    om_grpc_call_t *calls;
    size_t n_owed;   /* calls dispatched and not answered */
    bool in_session; /* inside a feed or flush: nghttp2 is running */
    bool broken;     /* a fatal error: close the connection */
    bool goaway;     /* the shutdown notice was sent */
};

/* ------------------------------------------------------------------------------------------ */
/* gRPC's texts                                                                               */

/* grpc-timeout: at most 8 digits and a unit (H, M, S, m, u, n). Returns ns, or -1 when
 * malformed (the call is then refused INTERNAL, as gRPC-Go does). */
int64_t om__grpc_timeout_ns(const char *v)
{
    size_t n = strlen(v);
    if (n < 2 || n > 9) {
        return -1;
    }
    int64_t x = 0;
    for (size_t i = 0; i + 1 < n; i++) {
        if (v[i] < '0' || v[i] > '9') {
            return -1;
        }
        x = x * 10 + (v[i] - '0');
    }
    switch (v[n - 1]) {
    case 'H':
        return x > INT64_MAX / (3600 * OM_NS_PER_S) ? INT64_MAX : x * 3600 * OM_NS_PER_S;
    case 'M':
        return x * 60 * OM_NS_PER_S;
    case 'S':
        return x * OM_NS_PER_S;
    case 'm':
        return x * OM_NS_PER_MS;
    case 'u':
        return x * 1000;
    case 'n':
        return x;
    default:
        return -1;
    }
}

/* grpc-message is percent-encoded: bytes outside printable ASCII, and '%'. om_malloc'd. */
char *om__grpc_message_encode(const char *msg)
{
    size_t n = strlen(msg);
    char *out = om_malloc(3 * n + 1);
    if (out == NULL) {
        return NULL;
    }
    static const char hex[] = "0123456789ABCDEF";
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)msg[i];
        if (c >= 0x20 && c <= 0x7e && c != '%') {
            out[j++] = (char)c;
        } else {
            out[j++] = '%';
            out[j++] = hex[c >> 4];
            out[j++] = hex[c & 15];
        }
    }
    out[j] = '\0';
    return out;
}

static bool grpc_content_type(const char *v, size_t n)
{
    static const char ct[] = "application/grpc";
    size_t k = sizeof ct - 1;
    return n >= k && strncasecmp(v, ct, k) == 0 && (n == k || v[k] == '+' || v[k] == ';');
}

/* ------------------------------------------------------------------------------------------ */
/* Calls                                                                                      */

static om_grpc_call_t *call_new(om__h2_session_t *h2, int32_t id)
{
    size_t state = h2->srv->o.req_state_size;
    om_grpc_call_t *c = om_malloc(sizeof *c + state);
    if (c == NULL) {
        return NULL;
    }
    memset(c, 0, sizeof *c + state);
    c->h2 = h2;
    c->id = id;
    c->state_size = state;
    c->next = h2->calls;
    if (h2->calls != NULL) {
        h2->calls->prev = c;
    }
    h2->calls = c;
    return c;
}

static void call_free(om_grpc_call_t *c)
{
    om__h2_session_t *h2 = c->h2;
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else if (h2 != NULL && h2->calls == c) {
        h2->calls = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    om_free(c->hbuf);
    om_free(c->body);
    om_free(c->reply);
    om_free(c->status_msg);
    om_free(c);
}

/* Append to hbuf; false when over the header limit or out of memory. */
static bool hb_add(om_grpc_call_t *c, const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    size_t need = c->hlen + an + bn + 2;
    size_t max = c->h2->srv->o.max_header_bytes != 0 ? c->h2->srv->o.max_header_bytes : 65536;
    if (need > max + 2) {
        return false;
    }
    if (need > c->hcap) {
        size_t cap = c->hcap == 0 ? 512 : c->hcap;
        while (cap < need) {
            cap *= 2;
        }
        char *p = om_realloc(c->hbuf, cap);
        if (p == NULL) {
            return false;
        }
        c->hbuf = p;
        c->hcap = cap;
    }
    memcpy(c->hbuf + c->hlen, a, an);
    c->hlen += an;
    c->hbuf[c->hlen++] = '\0';
    if (b != NULL) {
        memcpy(c->hbuf + c->hlen, b, bn);
        c->hlen += bn;
        c->hbuf[c->hlen++] = '\0';
    }
    return true;
}

/* ------------------------------------------------------------------------------------------ */
/* Answers                                                                                    */

/* A gRPC status code (0 to 16; others as given) as text, into out (12 bytes). */
static size_t status_text(int status, char *out)
{
    if (status >= 0 && status < 10) {
        out[0] = (char)('0' + status);
        out[1] = '\0';
        return 1;
    }
    int n = snprintf(out, 12, "%d", status);
    return n > 0 ? (size_t)n : 0;
}

static ssize_t reply_read(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t len,
                          uint32_t *flags, nghttp2_data_source *src, void *user)
{
    (void)user;
    om_grpc_call_t *c = src->ptr;
    size_t n = c->reply_len - c->reply_sent;
    if (n > len) {
        n = len;
    }
    memcpy(buf, c->reply + c->reply_sent, n);
    c->reply_sent += n;
    if (c->reply_sent < c->reply_len) {
        return (ssize_t)n;
    }
    *flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
    char code[12];
    size_t cl = status_text(c->status, code);
    nghttp2_nv tr[] = {
        {(uint8_t *)"grpc-status", (uint8_t *)code, 11, cl, NGHTTP2_NV_FLAG_NONE},
    };
    return nghttp2_submit_trailer(ng, id, tr, 1) == 0 ? (ssize_t)n : NGHTTP2_ERR_CALLBACK_FAILURE;
}

#define NV(n, v, vl)                                                                               \
    {                                                                                              \
        (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, (vl), NGHTTP2_NV_FLAG_NONE                  \
    }

/* Submit the answer to nghttp2: with a message, or trailers-only. */
static void submit_answer(om_grpc_call_t *c)
{
    om__h2_session_t *h2 = c->h2;
    int rv;
    if (c->reply != NULL) {
        nghttp2_nv hd[] = {NV(":status", "200", 3), NV("content-type", "application/grpc", 16)};
        nghttp2_data_provider dp = {.source.ptr = c, .read_callback = reply_read};
        rv = nghttp2_submit_response(h2->ng, c->id, hd, 2, &dp);
    } else {
        char code[12];
        size_t cl = status_text(c->status, code);
        nghttp2_nv hd[] = {NV(":status", "200", 3), NV("content-type", "application/grpc", 16),
                           NV("grpc-status", code, cl),
                           NV("grpc-message", c->status_msg != NULL ? c->status_msg : "",
                              c->status_msg != NULL ? strlen(c->status_msg) : 0)};
        rv = nghttp2_submit_response(h2->ng, c->id, hd, c->status_msg != NULL ? 4 : 3, NULL);
    }
    if (rv != 0 && rv != NGHTTP2_ERR_INVALID_ARGUMENT && rv != NGHTTP2_ERR_STREAM_CLOSED) {
        h2->broken = true;
    }
}

/* An HTTP-level refusal (not gRPC): status only. */
static void submit_http_status(om_grpc_call_t *c, const char *status)
{
    nghttp2_nv hd[] = {NV(":status", status, 3)};
    (void)nghttp2_submit_response(c->h2->ng, c->id, hd, 1, NULL);
}

/* The session answers a call itself (a refusal); the handler never sees it. */
static void refuse(om_grpc_call_t *c, int status, const char *msg)
{
    c->refused = true;
    c->answered = true;
    c->status = status;
    c->status_msg = msg != NULL ? om__grpc_message_encode(msg) : NULL;
    if (!c->dispatched) {
        /* Not yet the handler's: the message is of no further use. (A handler's stays until
         * its answer: a worker may be reading it.) */
        om_free(c->body);
        c->body = NULL;
        c->blen = c->bcap = 0;
    }
    submit_answer(c);
}

void om_grpc_respond(om_grpc_call_t *c, int status, const char *message, const void *msg,
                     size_t len)
{
    if (c->answered) {
        return; /* a second answer is a handler bug; the first one stands */
    }
    c->answered = true;
    om__h2_session_t *h2 = c->h2;
    if (c->dispatched && h2 != NULL) {
        h2->n_owed--;
    }
    if (c->closed || h2 == NULL) {
        call_free(c); /* the stream (or the connection) is gone: nothing to send */
        if (h2 != NULL && !h2->in_session && h2->wake != NULL) {
            h2->wake(h2->arg); /* the transport may have waited for this answer */
        }
        return;
    }
    if (c->refused) {
        return; /* the session answered already (out of time); freed when the stream closes */
    }
    c->status = status;
    if (status == 0) {
        c->reply = om_malloc(GRPC_PREFIX + len);
        if (c->reply == NULL) {
            c->status = 8; /* RESOURCE_EXHAUSTED */
        } else {
            c->reply[0] = 0;
            c->reply[1] = (uint8_t)(len >> 24);
            c->reply[2] = (uint8_t)(len >> 16);
            c->reply[3] = (uint8_t)(len >> 8);
            c->reply[4] = (uint8_t)len;
            if (len > 0) {
                memcpy(c->reply + GRPC_PREFIX, msg, len);
            }
            c->reply_len = GRPC_PREFIX + len;
        }
    }
    if (c->reply == NULL && message != NULL && message[0] != '\0') {
        c->status_msg = om__grpc_message_encode(message);
    }
    submit_answer(c);
    if (!h2->in_session && h2->wake != NULL) {
        h2->wake(h2->arg);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* nghttp2's callbacks                                                                        */

static int on_begin_headers(nghttp2_session *ng, const nghttp2_frame *f, void *user)
{
    om__h2_session_t *h2 = user;
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST) {
        return 0;
    }
    om_grpc_call_t *c = call_new(h2, f->hd.stream_id);
    if (c == NULL) {
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* resets the stream */
    }
    nghttp2_session_set_stream_user_data(ng, f->hd.stream_id, c);
    return 0;
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
                     const uint8_t *value, size_t vlen, uint8_t flags, void *user)
{
    (void)flags;
    (void)user;
    om_grpc_call_t *c = nghttp2_session_get_stream_user_data(ng, f->hd.stream_id);
    if (c == NULL || f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST) {
        return 0; /* trailers of a request: gRPC clients send none; ignored */
    }
    if (nlen > 0 && name[0] == ':') {
        if (nlen == 5 && memcmp(name, ":path", 5) == 0) {
            /* Pseudo-headers come first, once each (nghttp2 checks): hbuf is empty here. */
            if (c->hlen != 0 || !hb_add(c, value, vlen, NULL, 0)) {
                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
            }
            c->has_path = true;
        } else if (nlen == 7 && memcmp(name, ":method", 7) == 0) {
            c->post = vlen == 4 && memcmp(value, "POST", 4) == 0;
        }
        return 0;
    }
    if (nlen == 12 && memcmp(name, "content-type", 12) == 0) {
        c->grpc_type = grpc_content_type((const char *)value, vlen);
    }
    if (!hb_add(c, name, nlen, value, vlen)) {
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    c->n_headers++;
    return 0;
}

static const om__grpc_route_t *route_of(const om_http_server_t *s, const char *path)
{
    for (size_t i = 0; i < s->n_grpc_routes; i++) {
        if (strcmp(s->grpc_routes[i].path, path) == 0) {
            return &s->grpc_routes[i];
        }
    }
    return NULL;
}

static const char *auth_header(void *arg, const char *name)
{
    return om_grpc_call_metadata(arg, name);
}

/* The request's headers are complete: check them, authenticate, find the method, read the
 * deadline. */
static void headers_done(om__h2_session_t *h2, om_grpc_call_t *c)
{
    if (!c->has_path) {
        refuse(c, 13, "request without a path");
        return;
    }
    if (!c->post) {
        c->refused = c->answered = true;
        submit_http_status(c, "405");
        return;
    }
    if (!c->grpc_type) {
        c->refused = c->answered = true;
        submit_http_status(c, "415");
        return;
    }
    /* Authenticated before the method is looked at, so an unauthenticated client learns
     * nothing about what is served; the answer carries no detail. */
    om_auth_server_t *auth = h2->srv->auth;
    int arc = auth != NULL ? om_auth_server_check(auth, auth_header, c, h2->peer) : 0;
    if (arc != 0) {
        if (arc == OM_EAGAIN) {
            refuse(c, 14, "authentication busy, retry later"); /* UNAVAILABLE */
        } else {
            refuse(c, 16, "unauthenticated"); /* UNAUTHENTICATED */
        }
        return;
    }
    c->route = route_of(h2->srv, c->hbuf);
    if (c->route == NULL) {
        char msg[160];
        snprintf(msg, sizeof msg, "unknown method %.120s", c->hbuf);
        refuse(c, 12, msg); /* UNIMPLEMENTED */
        return;
    }
    const char *t = om_grpc_call_metadata(c, "grpc-timeout");
    if (t != NULL) {
        int64_t ns = om__grpc_timeout_ns(t);
        if (ns < 0) {
            refuse(c, 13, "malformed grpc-timeout");
            return;
        }
        c->deadline_ns = uv_hrtime() + (uint64_t)ns;
    }
}

static uint64_t prefix_len(const uint8_t *p)
{
    return (uint64_t)p[1] << 24 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 8 | p[4];
}

/* The prefix is in: refuse a message over the limit, else make room for all of it. */
static bool prefix_done(om_grpc_call_t *c)
{
    c->mlen = prefix_len(c->pre);
    if (c->mlen > c->route->max_msg) {
        char msg[120];
        snprintf(msg, sizeof msg, "grpc: received message larger than max (%llu vs. %llu)",
                 (unsigned long long)c->mlen, (unsigned long long)c->route->max_msg);
        refuse(c, 8, msg); /* RESOURCE_EXHAUSTED */
        return false;
    }
    /* Room for what the declared length says, but at most BODY_FIRST to begin with: the
     * buffer grows with the bytes that arrive, so five bytes never reserve megabytes. */
    size_t want = GRPC_PREFIX + (size_t)c->mlen;
    c->bcap = want < BODY_FIRST ? want : BODY_FIRST;
    c->body = om_malloc(c->bcap);
    if (c->body == NULL) {
        refuse(c, 8, "grpc: out of memory for the message");
        return false;
    }
    memcpy(c->body, c->pre, GRPC_PREFIX);
    return true;
}

/* Room for len more bytes of the message (within its declared length, checked before). */
static bool body_reserve(om_grpc_call_t *c, size_t len)
{
    size_t need = c->blen + len;
    if (need <= c->bcap) {
        return true;
    }
    size_t cap = c->bcap * 2 > need ? c->bcap * 2 : need;
    size_t whole = GRPC_PREFIX + (size_t)c->mlen;
    cap = cap > whole ? whole : cap;
    uint8_t *b = om_realloc(c->body, cap);
    if (b == NULL) {
        return false;
    }
    c->body = b;
    c->bcap = cap;
    return true;
}

static int on_data(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
                   void *user)
{
    (void)flags;
    (void)user;
    om_grpc_call_t *c = nghttp2_session_get_stream_user_data(ng, id);
    if (c == NULL) {
        return 0;
    }
    if (c->refused || c->answered) {
        /* The rest of a request answered early is read and dropped, up to a bound: past it
         * the stream is reset (gRPC's C core 1.51 takes a reset that follows the answer at
         * once for an error, so a client's last bytes are read rather than cut off). */
        c->dropped += len;
        if (c->dropped > DROP_MAX && !c->reset) {
            c->reset = true;
            (void)nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
        }
        return 0;
    }
    if (c->blen < GRPC_PREFIX) {
        size_t k = GRPC_PREFIX - c->blen < len ? GRPC_PREFIX - c->blen : len;
        memcpy(c->pre + c->blen, data, k);
        c->blen += k;
        data += k;
        len -= k;
        if (c->blen < GRPC_PREFIX || !prefix_done(c)) {
            return 0;
        }
    }
    if (len > GRPC_PREFIX + c->mlen - c->blen) {
        refuse(c, 13, "grpc: more than one message in a unary call"); /* INTERNAL */
        return 0;
    }
    if (!body_reserve(c, len)) {
        refuse(c, 8, "grpc: out of memory for the message");
        return 0;
    }
    memcpy(c->body + c->blen, data, len);
    c->blen += len;
    return 0;
}

/* The request ended: a unary call must hold exactly one whole message. */
static void request_done(om__h2_session_t *h2, om_grpc_call_t *c)
{
    c->ended_in = true;
    if (c->refused || c->answered) {
        return;
    }
    if (c->blen == 0) {
        refuse(c, 13, "grpc: no message in a unary call");
        return;
    }
    if (c->blen < GRPC_PREFIX || c->blen != GRPC_PREFIX + c->mlen) {
        refuse(c, 13, "grpc: truncated message");
        return;
    }
    if (c->body[0] > 1) {
        refuse(c, 13, "grpc: bad message flag");
        return;
    }
    c->dispatched = true;
    h2->n_owed++;
    c->route->h->call(c, c->route->arg);
}

static int on_frame(nghttp2_session *ng, const nghttp2_frame *f, void *user)
{
    om__h2_session_t *h2 = user;
    if (f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA) {
        return 0;
    }
    om_grpc_call_t *c = nghttp2_session_get_stream_user_data(ng, f->hd.stream_id);
    if (c == NULL) {
        return 0;
    }
    if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST) {
        headers_done(h2, c);
    }
    if ((f->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0) {
        request_done(h2, c);
    }
    return 0;
}

static int on_stream_close(nghttp2_session *ng, int32_t id, uint32_t code, void *user)
{
    (void)code;
    (void)user;
    om_grpc_call_t *c = nghttp2_session_get_stream_user_data(ng, id);
    if (c == NULL) {
        return 0;
    }
    nghttp2_session_set_stream_user_data(ng, id, NULL);
    c->closed = true;
    if (c->dispatched && !c->answered) {
        /* Reset by the client, or out of time: the answer is still owed, and frees it. */
        if (!c->cancelled && c->route->h->cancel != NULL) {
            c->cancelled = true;
            c->route->h->cancel(c, c->route->arg);
        }
        return 0;
    }
    call_free(c);
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* The session                                                                                */

static nghttp2_session_callbacks *callbacks(void)
{
    static nghttp2_session_callbacks *cb;
    if (cb == NULL && nghttp2_session_callbacks_new(&cb) == 0) {
        nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
        nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
        nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame);
        nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    }
    return cb;
}

om__h2_session_t *om__h2_session_new(om_http_server_t *srv, const char *peer)
{
    nghttp2_session_callbacks *cb = callbacks();
    om__h2_session_t *h2 = om_calloc(1, sizeof *h2);
    if (cb == NULL || h2 == NULL) {
        om_free(h2);
        return NULL;
    }
    h2->srv = srv;
    h2->peer = peer;
    om_strbuf_init(&h2->out, 0);
    nghttp2_option *opt = NULL;
    if (nghttp2_option_new(&opt) != 0) {
        om_free(h2);
        return NULL;
    }
    size_t max_hdr = srv->o.max_header_bytes != 0 ? srv->o.max_header_bytes : 65536;
    nghttp2_option_set_max_deflate_dynamic_table_size(opt, 4096);
    int rv = nghttp2_session_server_new2(&h2->ng, cb, h2, opt);
    nghttp2_option_del(opt);
    if (rv != 0) {
        om_free(h2);
        return NULL;
    }
    uint32_t streams = srv->o.h2_max_streams != 0 ? srv->o.h2_max_streams : DEFAULT_MAX_STREAMS;
    nghttp2_settings_entry settings[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, (uint32_t)max_hdr},
        {NGHTTP2_SETTINGS_MAX_FRAME_SIZE, MAX_FRAME},
    };
    if (nghttp2_submit_settings(h2->ng, NGHTTP2_FLAG_NONE, settings, 4) != 0 ||
        nghttp2_session_set_local_window_size(h2->ng, NGHTTP2_FLAG_NONE, 0, CONN_WINDOW) != 0) {
        nghttp2_session_del(h2->ng);
        om_free(h2);
        return NULL;
    }
    return h2;
}

void om__h2_session_hooks(om__h2_session_t *h2, void (*emit)(void *, char *, size_t),
                          void (*wake)(void *), void *arg)
{
    h2->emit = emit;
    h2->wake = wake;
    h2->arg = arg;
}

void om__h2_feed(om__h2_session_t *h2, const char *data, size_t len)
{
    if (h2->broken) {
        return;
    }
    h2->in_session = true;
    ssize_t k = nghttp2_session_mem_recv(h2->ng, (const uint8_t *)data, len);
    h2->in_session = false;
    if (k < 0 || (size_t)k != len) {
        h2->broken = true;
    }
}

void om__h2_flush(om__h2_session_t *h2)
{
    if (h2->broken && h2->out.len == 0) {
        return;
    }
    h2->in_session = true;
    for (;;) {
        const uint8_t *d;
        ssize_t k = nghttp2_session_mem_send(h2->ng, &d);
        if (k < 0) {
            h2->broken = true;
            break;
        }
        if (k > 0) {
            om_strbuf_append(&h2->out, d, (size_t)k);
        }
        if (h2->out.failed) {
            h2->broken = true;
            om_strbuf_reset(&h2->out);
            break;
        }
        if (h2->out.len > 0 && (k == 0 || h2->out.len >= OUT_CHUNK) && h2->emit != NULL) {
            size_t n;
            char *o = om_strbuf_steal(&h2->out, &n);
            h2->emit(h2->arg, o, n);
        }
        if (k == 0) {
            break;
        }
    }
    h2->in_session = false;
}

char *om__h2_take_output(om__h2_session_t *h2, size_t *len)
{
    om__h2_flush(h2);
    if (h2->out.len == 0) {
        *len = 0;
        return NULL;
    }
    return om_strbuf_steal(&h2->out, len);
}

bool om__h2_done(const om__h2_session_t *h2)
{
    return h2->broken ||
           (!nghttp2_session_want_read(h2->ng) && !nghttp2_session_want_write(h2->ng));
}

bool om__h2_owed(const om__h2_session_t *h2)
{
    return h2->n_owed > 0;
}

bool om__h2_idle(const om__h2_session_t *h2)
{
    return h2->calls == NULL;
}

uint64_t om__h2_next_deadline(const om__h2_session_t *h2)
{
    uint64_t d = 0;
    for (const om_grpc_call_t *c = h2->calls; c != NULL; c = c->next) {
        if (c->deadline_ns != 0 && !c->answered && (d == 0 || c->deadline_ns < d)) {
            d = c->deadline_ns;
        }
    }
    return d;
}

void om__h2_expire(om__h2_session_t *h2, uint64_t now)
{
    h2->in_session = true;
    for (om_grpc_call_t *c = h2->calls; c != NULL;) {
        om_grpc_call_t *next = c->next; /* nothing here frees a call */
        if (c->deadline_ns != 0 && c->deadline_ns <= now && !c->answered && !c->refused &&
            !c->closed) {
            /* Answered DEADLINE_EXCEEDED whatever the handler does: its answer, which it
             * still gives once (from cancel or later), is dropped (refused), and frees the
             * call if the stream is closed by then. */
            bool owed = c->dispatched;
            refuse(c, 4, "deadline exceeded"); /* DEADLINE_EXCEEDED */
            c->answered = !owed;
            if (owed && !c->cancelled && c->route->h->cancel != NULL) {
                c->cancelled = true;
                c->route->h->cancel(c, c->route->arg);
            }
        }
        c = next;
    }
    h2->in_session = false;
}

void om__h2_goaway(om__h2_session_t *h2)
{
    if (!h2->goaway) {
        /* No new calls past the last one begun; those in progress finish, and the session
         * is done once none is left (nghttp2_session_want_read turns false). */
        h2->goaway = true;
        (void)nghttp2_submit_goaway(h2->ng, NGHTTP2_FLAG_NONE,
                                    nghttp2_session_get_last_proc_stream_id(h2->ng),
                                    NGHTTP2_NO_ERROR, NULL, 0);
    }
}

bool om__h2_close(om__h2_session_t *h2)
{
    h2->broken = true;
    h2->in_session = true; /* answers given by cancel must not call back into the transport */
    for (om_grpc_call_t *c = h2->calls; c != NULL;) {
        om_grpc_call_t *next = c->next;
        c->closed = true;
        if (c->dispatched && !c->answered && !c->cancelled && c->route->h->cancel != NULL) {
            c->cancelled = true;
            c->route->h->cancel(c, c->route->arg);
        }
        c = next;
    }
    h2->in_session = false;
    return h2->n_owed > 0;
}

void om__h2_release(om__h2_session_t *h2)
{
    if (h2 == NULL) {
        return;
    }
    for (om_grpc_call_t *c = h2->calls; c != NULL;) {
        om_grpc_call_t *next = c->next;
        if (c->dispatched && !c->answered) {
            c->h2 = NULL; /* owed: om_grpc_respond frees it */
            c->prev = c->next = NULL;
        } else {
            c->h2 = NULL;
            c->prev = c->next = NULL;
            om_free(c->hbuf);
            om_free(c->body);
            om_free(c->reply);
            om_free(c->status_msg);
            om_free(c);
        }
        c = next;
    }
    h2->calls = NULL;
    nghttp2_session_del(h2->ng);
    om_strbuf_free(&h2->out);
    om_free(h2);
}

/* ------------------------------------------------------------------------------------------ */
/* The call, for handlers                                                                     */

const char *om_grpc_call_metadata(const om_grpc_call_t *c, const char *name)
{
    const char *p = c->hbuf + strlen(c->hbuf) + 1;
    for (size_t i = 0; i < c->n_headers; i++) {
        const char *v = p + strlen(p) + 1;
        if (strcasecmp(p, name) == 0) {
            return v;
        }
        p = v + strlen(v) + 1;
    }
    return NULL;
}

size_t om_grpc_call_metadata_count(const om_grpc_call_t *c)
{
    return c->n_headers;
}

const char *om_grpc_call_metadata_at(const om_grpc_call_t *c, size_t i, const char **value)
{
    const char *p = c->hbuf + strlen(c->hbuf) + 1;
    for (size_t k = 0; k < i; k++) {
        p += strlen(p) + 1;
        p += strlen(p) + 1;
    }
    *value = p + strlen(p) + 1;
    return p;
}

const uint8_t *om_grpc_call_message(const om_grpc_call_t *c, size_t *len, bool *compressed)
{
    *len = c->blen - GRPC_PREFIX;
    *compressed = c->body[0] == 1;
    return c->body + GRPC_PREFIX;
}

const char *om_grpc_call_peer(const om_grpc_call_t *c)
{
    return c->h2 != NULL && c->h2->peer != NULL ? c->h2->peer : "?";
}

void *om_grpc_call_state(om_grpc_call_t *c)
{
    return c->state;
}
