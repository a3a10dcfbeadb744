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

struct om_http_server {
    om_http_server_opts_t o;
    const om_http_server_cfg_t *cfg;
    om__http_route_t *routes; /* om_malloc'd */
    size_t n_routes;
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
/* Tests: the process's connection budget (0: from RLIMIT_NOFILE again, at the next start). */
void om__http_budget_set(size_t n);

#endif
