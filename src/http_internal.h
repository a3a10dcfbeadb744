/* http_internal.h: core-internal, shared by the HTTP server's two layers:
 *   - http_session.c: one connection's HTTP/1.1 without a socket: parsing (http_parser),
 *     limits, routing, the handler calls, answers written to an output buffer. The fuzz
 *     targets drive exactly this code through om_http_session_*;
 *   - http_server.c: the transport on the loop: listener, connections, TLS over memory BIOs,
 *     timeouts, the connection budget and eviction, shutdown.
 * Loop thread only. */
#ifndef OM_HTTP_INTERNAL_H
#define OM_HTTP_INTERNAL_H

#include <stdalign.h>

#include <http_parser.h>

#include "om.h"

/* Response bytes a session may hold before they are handed to the transport. */
#define OM__HTTP_OUT_MAX (1024 * 1024)

typedef struct om__http_route {
    char *pattern; /* owned */
    size_t len;
    bool subtree; /* pattern ends in '/' */
    unsigned methods;
    const om_http_handler_t *h;
    void *arg;
    uint64_t max_body;
} om__http_route_t;

/* At most `burst` warnings per window, then one line saying how many were suppressed. */
typedef struct om__warnlimit {
    uint64_t window_start_ns;
    unsigned in_window, suppressed;
} om__warnlimit_t;

void om__warn_limited(om__warnlimit_t *w, const char *who, const char *fmt, ...) OM_PRINTF(3, 4);

typedef struct om__http_conn om__http_conn_t;

/* A gRPC method served over HTTP/2 (h2_session.c). */
typedef struct om__grpc_route {
    char *path; /* "/package.Service/Method"; owned */
    const om_grpc_handler_t *h;
    void *arg;
    uint64_t max_msg; /* the largest request message, as received */
} om__grpc_route_t;

struct om_http_server {
    om_http_server_opts_t o;
    const om_http_server_cfg_t *cfg;
    om__http_route_t *routes; /* om_malloc'd */
    size_t n_routes;
    om__grpc_route_t *grpc_routes; /* om_malloc'd; any: connections may speak HTTP/2 */
    size_t n_grpc_routes;
    char *resp_headers; /* response_headers as header lines; owned, NULL when none */
    /* Effective settings, from cfg (ns; 0: no limit). */
    bool keep_alive;
    uint64_t max_body;
    uint64_t read_ns, header_ns, write_ns, idle_ns;
    om__warnlimit_t warn;
    bool shutting_down;
    /* cfg->auth's authenticator, resolved at start; NULL: no authentication. Owned. */
    om_auth_server_t *auth;

    /* Transport (http_server.c). */
    char *host; /* from the endpoint; owned */
    int port;
    uv_tcp_t listener;
    bool listener_open;
    uv_getaddrinfo_t gai;
    bool gai_pending;
    int bound_port;
    om__http_conn_t *lru_head, *lru_tail; /* open connections, oldest phase first */
    size_t n_conns;          /* allocated ones: closing ones and ones owed an answer too */
    size_t n_live;           /* not closing (what holds a file descriptor) */
    unsigned pending_closes; /* listener and refused-connection handles not yet closed */
    bool started, done_called, registered;
    om_done_fn done;
    void *done_arg;
    uint64_t linger_ms;
    uint64_t evictions;
    struct ssl_ctx_st *ssl_ctx;    /* NULL: plaintext; owned, made at start */
    om_http_server_t *next_server; /* the process's started servers (connection budget) */
};

/* Where a request is. */
typedef enum {
    OM__REQ_NONE = 0, /* between requests */
    OM__REQ_HEADERS,  /* request line and headers arriving */
    OM__REQ_BODY,     /* headers done, body arriving (or none) */
    OM__REQ_COMPLETE, /* arrived; the answer is being made or owed */
} om__req_phase_t;

struct om_http_req {
    om_http_session_t *ss;
    const om__http_route_t *route; /* NULL: answered by the server itself */
    om__req_phase_t phase;
    /* The request line and headers: the target, then "name\0value\0" pairs, then the decoded
     * path and the query, each NUL-terminated. Kept across requests; om_malloc'd. */
    char *hbuf;
    size_t hlen, hcap;
    size_t url_len, hdr_start, n_headers, path_off, query_off;
    size_t hdr_bytes; /* request line and header bytes received */
    bool url_overflow, in_value;
    unsigned method;
    bool head, keep_alive, expect, body_pending, began, answered, ended, cancelled;
    bool raw_error; /* an answer to malformed HTTP */
    uint64_t max_body, body_bytes;
    char *body; /* buffered body (routes without a body callback); om_malloc'd */
    size_t body_len, body_cap;
    int fail_status; /* a limit hit inside a parser callback: answer this, then close */
};

struct om_http_session {
    http_parser parser;
    om_http_server_t *srv;
    const char *peer;
    om_strbuf_t out; /* answers not yet handed to the transport, in order */
    /* The transport's hooks (NULL for om_http_session_new's sessions). emit takes a chunk of
     * output (om_malloc'd, owned from then on); wake says an answer owed was given later. */
    void (*emit)(om_http_session_t *ss, char *data, size_t len);
    void (*wake)(om_http_session_t *ss);
    bool close;        /* no more requests: send what is out, then close */
    bool close_after;  /* the next answer says Connection: close (shutting down) */
    bool dispatching;  /* inside a handler callback */
    bool owed;         /* complete was called and the answer is not given yet */
    bool orphaned;     /* the connection is gone while owed */
    uint32_t requests; /* requests begun on this connection */
    uint64_t msg_begin_ns, headers_done_ns; /* uv_hrtime() of the current request */
    char *pending_in; /* input received after a request whose answer is owed; om_malloc'd */
    size_t pending_len;
    om_http_req_t req;
    size_t state_size;
    alignas(max_align_t) unsigned char state[]; /* the handler's per-request state */
};

/* Initialise a session in place (state_size bytes follow it). Never fails. */
void om__http_session_init(om_http_session_t *ss, om_http_server_t *srv, const char *peer);
/* The connection is gone: cancel or end the request in progress. Returns true when an answer
 * is still owed (the memory must stay until om_http_respond, which then calls wake). */
bool om__http_session_close(om_http_session_t *ss);
/* Free what the session holds (after om__http_session_close returned false, or after the
 * owed answer came). */
void om__http_session_release(om_http_session_t *ss);
/* Hand out to emit (when set). */
void om__http_session_flush(om_http_session_t *ss);
/* True when no request is partly received or owed, so closing loses nothing. */
bool om__http_session_idle(const om_http_session_t *ss);
/* HTTP/2 with gRPC calls (h2_session.c), the HTTP/1.1 session's counterpart. The transport
 * makes one when a connection starts with the HTTP/2 preface (or TLS chose h2) and the server
 * serves gRPC methods. */
typedef struct om__h2_session om__h2_session_t;
/* The client connection preface, which starts every HTTP/2 connection. */
#define OM__H2_PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
/* NULL when out of memory. The server's SETTINGS are queued: flush sends them. */
om__h2_session_t *om__h2_session_new(om_http_server_t *srv, const char *peer);
/* emit takes output (om_malloc'd); wake says an answer was given outside the transport's
 * calls into the session (flush then). */
void om__h2_session_hooks(om__h2_session_t *h2, void (*emit)(void *, char *, size_t),
                          void (*wake)(void *), void *arg);
void om__h2_feed(om__h2_session_t *h2, const char *data, size_t len);
/* Hand what nghttp2 queued to emit (or keep it for om__h2_take_output when emit is NULL). */
void om__h2_flush(om__h2_session_t *h2);
char *om__h2_take_output(om__h2_session_t *h2, size_t *len);
/* True once the connection should close (after sending what is out). */
bool om__h2_done(const om__h2_session_t *h2);
/* A handler owes an answer (the session's memory must stay). */
bool om__h2_owed(const om__h2_session_t *h2);
/* No call in progress. */
bool om__h2_idle(const om__h2_session_t *h2);
/* The earliest grpc-timeout deadline of a call not answered (uv_hrtime clock; 0: none), and
 * answering the calls past it (DEADLINE_EXCEEDED; flush after). */
uint64_t om__h2_next_deadline(const om__h2_session_t *h2);
void om__h2_expire(om__h2_session_t *h2, uint64_t now);
/* Shutting down: GOAWAY (calls in progress finish; no new ones). */
void om__h2_goaway(om__h2_session_t *h2);
/* The connection is gone: cancel calls owed. True when one is still owed (the session must
 * stay until its om_grpc_respond, which calls wake). */
bool om__h2_close(om__h2_session_t *h2);
void om__h2_release(om__h2_session_t *h2);
/* gRPC's texts (exposed for tests): grpc-timeout in ns (-1: malformed); grpc-message's
 * percent-encoding (om_malloc'd). */
int64_t om__grpc_timeout_ns(const char *v);
char *om__grpc_message_encode(const char *msg);

/* Tests: the process's connection budget (0: from RLIMIT_NOFILE again, at the next start). */
void om__http_budget_set(size_t n);

#endif
