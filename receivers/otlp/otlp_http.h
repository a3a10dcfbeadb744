/* otlp_http.h: private to the otlp receiver folder.
 *
 * The OTLP/HTTP server is two layers:
 *   - a session (otlp_http_session.c): HTTP/1.1 request parsing and answering for one
 *     connection, fed with bytes and writing response bytes to a buffer; no sockets, so the
 *     fuzz target drives exactly the code the server runs;
 *   - the server (otlp_http.c): libuv listener and connections that feed sessions and write
 *     out what they produce.
 *
 * Threading: the loop thread only. Nothing here blocks. */
#ifndef RCV_OTLP_HTTP_H
#define RCV_OTLP_HTTP_H

#include <http_parser.h>

#include "otlp.h"
#include "otlp_inflate.h"

/* Warnings on the data path are rate-limited per server: at most `burst` per window, then
 * one line saying how many were suppressed. */
typedef struct otlp_http_warnlimit {
    uint64_t window_start_ns;
    unsigned in_window, suppressed;
} otlp_http_warnlimit_t;

/* Log a warning unless the limit for this window is reached. who: the component log name. */
void otlp_http_warn(otlp_http_warnlimit_t *w, const char *who, const char *fmt, ...)
    OM_PRINTF(3, 4);

#define OTLP_HTTP_URL_MAX 2048
#define OTLP_HTTP_HNAME_MAX 32
#define OTLP_HTTP_HVALUE_MAX 256
/* Response bytes a session may hold before the embedder sends them. */
#define OTLP_HTTP_OUT_MAX (1024 * 1024)

typedef enum {
    OTLP_HDR_NONE = 0,
    OTLP_HDR_CONTENT_TYPE,
    OTLP_HDR_CONTENT_ENCODING,
    OTLP_HDR_EXPECT,
    OTLP_HDR_COUNT,
} otlp_http_hdr_t;

/* The request being parsed. Reset at each message begin. */
typedef struct otlp_http_req {
    char url[OTLP_HTTP_URL_MAX];
    size_t url_len;
    bool url_overflow;
    char hname[OTLP_HTTP_HNAME_MAX];
    size_t hname_len;
    bool hname_overflow, in_value;
    otlp_http_hdr_t hcur;
    char hval[OTLP_HDR_COUNT][OTLP_HTTP_HVALUE_MAX];
    size_t hval_len[OTLP_HDR_COUNT];
    bool hval_overflow[OTLP_HDR_COUNT], hval_seen[OTLP_HDR_COUNT];

    bool keep_alive; /* HTTP keep-alive for this request, false once we decide to close */
    bool responded;  /* a final response to this request is in out */
    bool rejected;   /* answered at headers time; the body is discarded */
    bool headers_done;
    om_signal_t signal; /* of the matched path */
    bool json;          /* Content-Type said application/json */
    otlp_enc_t enc;
    uint64_t raw_len;        /* body bytes received, before decompression */
    otlp_buf_t body;         /* decompressed body */
    otlp_inflate_t *inflate; /* NULL for identity */
} otlp_http_req_t;

typedef struct otlp_http_session {
    http_parser parser;
    rcv_otlp_t *r;
    otlp_http_warnlimit_t *warn; /* shared per server; may be NULL (no warnings) */
    const char *peer;            /* "ip:port" for log lines; owned by the embedder */
    om_strbuf_t out;             /* response bytes to send, in order; owned */
    bool close;                  /* no more requests: send out, then close the connection */
    bool in_message;             /* between message begin and complete */
    uint64_t msg_begin_ns;       /* uv_hrtime() at message begin, for the header timeout */
    bool close_after; /* the next response says Connection: close (server shutting down) */
    otlp_http_req_t req;
} otlp_http_session_t;

/* r must outlive the session. Never fails (memory is allocated on demand). */
void otlp_http_session_init(otlp_http_session_t *s, rcv_otlp_t *r, otlp_http_warnlimit_t *warn,
                            const char *peer);
/* Feed received bytes. Responses (including 100 Continue) are appended to s->out in request
 * order. Once s->close is set, further input is ignored and the embedder should send out and
 * close. len 0 means the peer closed its side (EOF). */
void otlp_http_session_feed(otlp_http_session_t *s, const char *data, size_t len);
/* True when no request is partly received, so closing loses nothing. */
bool otlp_http_session_idle(const otlp_http_session_t *s);
/* Free the request state and out. */
void otlp_http_session_free(otlp_http_session_t *s);

/* The port the server listens on (useful with port 0), or -1 before a successful start. */
int otlp_http_bound_port(const otlp_http_server_t *s);
/* Tests: change the idle keep-alive timeout (default 60 s) and the lingering close time
 * (default 2 s) before start. */
void otlp_http_set_timeouts(otlp_http_server_t *s, uint64_t idle_ms, uint64_t linger_ms);
/* Tests: open client connections, and those of them in the middle of receiving a request. */
size_t otlp_http_conn_count(const otlp_http_server_t *s);
size_t otlp_http_busy_count(const otlp_http_server_t *s);

#endif
