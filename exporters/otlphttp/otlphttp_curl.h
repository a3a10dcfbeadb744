/* otlphttp_curl.h: libcurl, loaded when the otlphttp exporter is first used.
 *
 * libcurl is not linked into otelmon: Debian's build pulls in GnuTLS, p11-kit, Kerberos,
 * LDAP, SASL, libssh2, RTMP and a dozen more libraries, whose loading and initialisation cost
 * every collector about 4 MB of resident memory and 10 ms of start-up, whether or not it has
 * an otlphttp exporter. Instead exp_otlphttp_curl_load() opens libcurl.so.4 (package
 * libcurl4) the first time a config with an otlphttp exporter is validated or started, and
 * the curl_* names below call through the table it fills. Code in this folder includes this
 * header instead of <curl/curl.h>, and uses libcurl's API exactly as documented. */
#ifndef EXP_OTLPHTTP_CURL_H
#define EXP_OTLPHTTP_CURL_H

/* The type-checking macros would hide the calls below behind their own. */
#define CURL_DISABLE_TYPECHECK 1
#include <curl/curl.h>

#include "om.h"

/* The libcurl functions this exporter uses, with their declared types. */
typedef struct exp_otlphttp_curl_api {
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
} exp_otlphttp_curl_api_t;

/* Filled by exp_otlphttp_curl_load(); read-only afterwards (any thread). */
extern exp_otlphttp_curl_api_t exp_otlphttp_curl;

/* Loads libcurl and resolves the table, once; later calls return the first result at once.
 * Returns 0, or OM_ENOTSUP with the loader's message in err. Loop thread (it may block on
 * reading the library from disk, once, while the collector starts). */
int exp_otlphttp_curl_load(om_err_t *err);

/* curl.h makes these three function-like macros that only check the argument count. */
#undef curl_easy_setopt
#undef curl_easy_getinfo
#undef curl_multi_setopt
#define curl_global_init exp_otlphttp_curl.global_init
#define curl_global_cleanup exp_otlphttp_curl.global_cleanup
#define curl_version_info exp_otlphttp_curl.version_info
#define curl_free exp_otlphttp_curl.free
#define curl_easy_init exp_otlphttp_curl.easy_init
#define curl_easy_cleanup exp_otlphttp_curl.easy_cleanup
#define curl_easy_duphandle exp_otlphttp_curl.easy_duphandle
#define curl_easy_setopt exp_otlphttp_curl.easy_setopt
#define curl_easy_getinfo exp_otlphttp_curl.easy_getinfo
#define curl_easy_strerror exp_otlphttp_curl.easy_strerror
#define curl_easy_header exp_otlphttp_curl.easy_header
#define curl_multi_init exp_otlphttp_curl.multi_init
#define curl_multi_cleanup exp_otlphttp_curl.multi_cleanup
#define curl_multi_add_handle exp_otlphttp_curl.multi_add_handle
#define curl_multi_remove_handle exp_otlphttp_curl.multi_remove_handle
#define curl_multi_assign exp_otlphttp_curl.multi_assign
#define curl_multi_setopt exp_otlphttp_curl.multi_setopt
#define curl_multi_socket_action exp_otlphttp_curl.multi_socket_action
#define curl_multi_info_read exp_otlphttp_curl.multi_info_read
#define curl_multi_strerror exp_otlphttp_curl.multi_strerror
#define curl_slist_append exp_otlphttp_curl.slist_append
#define curl_slist_free_all exp_otlphttp_curl.slist_free_all
#define curl_url exp_otlphttp_curl.url
#define curl_url_cleanup exp_otlphttp_curl.url_cleanup
#define curl_url_get exp_otlphttp_curl.url_get
#define curl_url_set exp_otlphttp_curl.url_set

#endif
