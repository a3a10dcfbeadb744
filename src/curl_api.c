/* curl_api.c: loading libcurl on first use (see curl_api.h). */
#include "curl_api.h"

om__curl_api_t om__curl;

static const om_dl_sym_t symbols[] = {
    OM_DL_SYM(om__curl_api_t, global_init, "curl_global_init"),
    OM_DL_SYM(om__curl_api_t, global_cleanup, "curl_global_cleanup"),
    OM_DL_SYM(om__curl_api_t, version_info, "curl_version_info"),
    OM_DL_SYM(om__curl_api_t, free, "curl_free"),
    OM_DL_SYM(om__curl_api_t, easy_init, "curl_easy_init"),
    OM_DL_SYM(om__curl_api_t, easy_cleanup, "curl_easy_cleanup"),
    OM_DL_SYM(om__curl_api_t, easy_duphandle, "curl_easy_duphandle"),
    OM_DL_SYM(om__curl_api_t, easy_setopt, "curl_easy_setopt"),
    OM_DL_SYM(om__curl_api_t, easy_getinfo, "curl_easy_getinfo"),
    OM_DL_SYM(om__curl_api_t, easy_strerror, "curl_easy_strerror"),
    OM_DL_SYM(om__curl_api_t, easy_header, "curl_easy_header"),
    OM_DL_SYM(om__curl_api_t, multi_init, "curl_multi_init"),
    OM_DL_SYM(om__curl_api_t, multi_cleanup, "curl_multi_cleanup"),
    OM_DL_SYM(om__curl_api_t, multi_add_handle, "curl_multi_add_handle"),
    OM_DL_SYM(om__curl_api_t, multi_remove_handle, "curl_multi_remove_handle"),
    OM_DL_SYM(om__curl_api_t, multi_assign, "curl_multi_assign"),
    OM_DL_SYM(om__curl_api_t, multi_setopt, "curl_multi_setopt"),
    OM_DL_SYM(om__curl_api_t, multi_socket_action, "curl_multi_socket_action"),
    OM_DL_SYM(om__curl_api_t, multi_info_read, "curl_multi_info_read"),
    OM_DL_SYM(om__curl_api_t, multi_strerror, "curl_multi_strerror"),
    OM_DL_SYM(om__curl_api_t, slist_append, "curl_slist_append"),
    OM_DL_SYM(om__curl_api_t, slist_free_all, "curl_slist_free_all"),
    OM_DL_SYM(om__curl_api_t, url, "curl_url"),
    OM_DL_SYM(om__curl_api_t, url_cleanup, "curl_url_cleanup"),
    OM_DL_SYM(om__curl_api_t, url_get, "curl_url_get"),
    OM_DL_SYM(om__curl_api_t, url_set, "curl_url_set"),
};

static om_dl_lib_t libcurl = {.soname = "libcurl.so.4",
                              .package = "libcurl4, 7.84 or later",
                              .syms = symbols,
                              .n_syms = sizeof symbols / sizeof symbols[0],
                              .table = &om__curl};

int om__curl_load(om_err_t *err)
{
    return om_dl_load(&libcurl, err);
}
