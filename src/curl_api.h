/* curl_api.h: core-internal. libcurl, loaded when an HTTP client is first needed.
 *
 * libcurl is not linked into otelmon: Debian's build pulls in GnuTLS, p11-kit, Kerberos,
 * LDAP, SASL, libssh2, RTMP and a dozen more libraries, whose loading and initialisation cost
 * every collector about 4 MB of resident memory and 10 ms of start-up, whether or not it has
 * a component that speaks HTTP. Instead om__curl_load() opens libcurl.so.4 (package libcurl4)
 * the first time a config with such a component is validated or started, and the curl_*
 * names below call through the table it fills. Core files that drive libcurl (curl_multi.c,
 * http_client.c) include this header instead of <curl/curl.h>, and use libcurl's API exactly
 * as documented. Components never see libcurl: they use om_http_client_* (om.h). */
#ifndef OM_CURL_API_H
#define OM_CURL_API_H

/* The type-checking macros would hide the calls below behind their own. */
#define CURL_DISABLE_TYPECHECK 1
#include <curl/curl.h>

#include "om.h"

/* The libcurl functions the core uses, with their declared types. */
typedef struct om__curl_api {
    __typeof__(curl_global_init) *global_init;
    __typeof__(curl_global_cleanup) *global_cleanup;
    __typeof__(curl_version_info) *version_info;
    __typeof__(curl_free) *free;
    __typeof__(curl_easy_init) *easy_init;
    __typeof__(curl_easy_cleanup) *easy_cleanup;
    __typeof__(curl_easy_duphandle) *easy_duphandle;
    __typeof__(curl_easy_setopt) *easy_setopt;
    __typeof__(curl_easy_getinfo) *easy_getinfo;
    __typeof__(curl_easy_strerror) *easy_strerror;
    __typeof__(curl_easy_header) *easy_header;
    __typeof__(curl_multi_init) *multi_init;
    __typeof__(curl_multi_cleanup) *multi_cleanup;
    __typeof__(curl_multi_add_handle) *multi_add_handle;
    __typeof__(curl_multi_remove_handle) *multi_remove_handle;
    __typeof__(curl_multi_assign) *multi_assign;
    __typeof__(curl_multi_setopt) *multi_setopt;
    __typeof__(curl_multi_socket_action) *multi_socket_action;
    __typeof__(curl_multi_info_read) *multi_info_read;
    __typeof__(curl_multi_strerror) *multi_strerror;
    __typeof__(curl_slist_append) *slist_append;
    __typeof__(curl_slist_free_all) *slist_free_all;
    __typeof__(curl_url) *url;
    __typeof__(curl_url_cleanup) *url_cleanup;
    __typeof__(curl_url_get) *url_get;
    __typeof__(curl_url_set) *url_set;
} om__curl_api_t;

/* Filled by om__curl_load(); read-only afterwards (any thread). */
extern om__curl_api_t om__curl;

/* Loads libcurl and resolves the table, once (om_dl_load); later calls return the first result
 * at once. Returns 0, or OM_ENOTSUP with the loader's message in err. Any thread; it may block
 * reading the library from disk, once, which happens while the collector validates its config
 * or starts. */
int om__curl_load(om_err_t *err);

/* curl.h makes these three function-like macros that only check the argument count. */
#undef curl_easy_setopt
#undef curl_easy_getinfo
#undef curl_multi_setopt
#define curl_global_init om__curl.global_init
#define curl_global_cleanup om__curl.global_cleanup
#define curl_version_info om__curl.version_info
#define curl_free om__curl.free
#define curl_easy_init om__curl.easy_init
#define curl_easy_cleanup om__curl.easy_cleanup
#define curl_easy_duphandle om__curl.easy_duphandle
#define curl_easy_setopt om__curl.easy_setopt
#define curl_easy_getinfo om__curl.easy_getinfo
#define curl_easy_strerror om__curl.easy_strerror
#define curl_easy_header om__curl.easy_header
#define curl_multi_init om__curl.multi_init
#define curl_multi_cleanup om__curl.multi_cleanup
#define curl_multi_add_handle om__curl.multi_add_handle
#define curl_multi_remove_handle om__curl.multi_remove_handle
#define curl_multi_assign om__curl.multi_assign
#define curl_multi_setopt om__curl.multi_setopt
#define curl_multi_socket_action om__curl.multi_socket_action
#define curl_multi_info_read om__curl.multi_info_read
#define curl_multi_strerror om__curl.multi_strerror
#define curl_slist_append om__curl.slist_append
#define curl_slist_free_all om__curl.slist_free_all
#define curl_url om__curl.url
#define curl_url_cleanup om__curl.url_cleanup
#define curl_url_get om__curl.url_get
#define curl_url_set om__curl.url_set

/* The curl multi handle on a libuv loop (curl_multi.c): libcurl tells us which sockets to
 * watch and when to run, we call it back from uv_poll_t and uv_timer_t callbacks. */
typedef struct om__curl_multi om__curl_multi_t;

/* Called once per finished transfer, after the easy handle has left the multi handle (the
 * callee owns it again). result is CURLE_OK when a response was received, whatever its
 * status. The callback may add transfers, remove others (om__curl_multi_remove) or close the
 * multi handle. */
typedef void (*om__curl_xfer_fn)(void *arg, CURL *easy, CURLcode result);

/* A multi handle whose sockets and timer live on loop. max_host_conns and max_conns go to
 * CURLMOPT_MAX_HOST_CONNECTIONS and CURLMOPT_MAXCONNECTS (0: curl's default). Returns 0,
 * OM_ENOMEM with a message in err. Loop thread, like every function below. */
int om__curl_multi_new(uv_loop_t *loop, long max_host_conns, long max_conns,
                       om__curl_xfer_fn on_done, void *arg, om__curl_multi_t **out, om_err_t *err);
/* Start a transfer. 0, or OM_EIO when curl refuses the handle (then on_done is not called and
 * the caller still owns easy). */
int om__curl_multi_add(om__curl_multi_t *m, CURL *easy, om_err_t *err);
/* Take a running transfer out without finishing it: on_done is not called for it and the
 * caller owns easy again. Not from inside libcurl's own callbacks (on_done is fine). */
void om__curl_multi_remove(om__curl_multi_t *m, CURL *easy);
/* Close: only when no transfer is running. Closes every uv handle and the multi handle, frees
 * m, then calls done once. Safe to call from inside on_done (the close then happens when the
 * callback returns to the multi's loop). */
void om__curl_multi_close(om__curl_multi_t *m, om_done_fn done, void *arg);
/* Sockets currently watched (tests). */
size_t om__curl_multi_sockets(const om__curl_multi_t *m);

/* The TLS client settings t on an easy handle (versions, CAs from pem, client certificate,
 * skip-verify, ciphers, curves), for every transfer that may use TLS (http_client.c). */
CURLcode om__curl_set_tls(CURL *h, const om_tls_client_cfg_t *t, const om_tls_pem_t *pem);

/* Whether s is an HTTP token (a header name, a method): printable ASCII without separators
 * (http_client_cfg.c). */
bool om__http_token(const char *s);

#endif
