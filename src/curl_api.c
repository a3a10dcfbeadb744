/* curl_api.c: loading libcurl on first use (see curl_api.h). */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "curl_api.h"

om__curl_api_t om__curl;

#define CURL_SONAME "libcurl.so.4"

#define SYM(field, name)                                                                           \
    {                                                                                              \
        name, offsetof(om__curl_api_t, field)                                                      \
    }
static const struct {
    const char *name;
    size_t offset;
} symbols[] = {
    SYM(global_init, "curl_global_init"),
    SYM(global_cleanup, "curl_global_cleanup"),
    SYM(version_info, "curl_version_info"),
    SYM(free, "curl_free"),
    SYM(easy_init, "curl_easy_init"),
    SYM(easy_cleanup, "curl_easy_cleanup"),
    SYM(easy_duphandle, "curl_easy_duphandle"),
    SYM(easy_setopt, "curl_easy_setopt"),
    SYM(easy_getinfo, "curl_easy_getinfo"),
    SYM(easy_strerror, "curl_easy_strerror"),
    SYM(easy_header, "curl_easy_header"),
    SYM(multi_init, "curl_multi_init"),
    SYM(multi_cleanup, "curl_multi_cleanup"),
    SYM(multi_add_handle, "curl_multi_add_handle"),
    SYM(multi_remove_handle, "curl_multi_remove_handle"),
    SYM(multi_assign, "curl_multi_assign"),
    SYM(multi_setopt, "curl_multi_setopt"),
    SYM(multi_socket_action, "curl_multi_socket_action"),
    SYM(multi_info_read, "curl_multi_info_read"),
    SYM(multi_strerror, "curl_multi_strerror"),
    SYM(slist_append, "curl_slist_append"),
    SYM(slist_free_all, "curl_slist_free_all"),
    SYM(url, "curl_url"),
    SYM(url_cleanup, "curl_url_cleanup"),
    SYM(url_get, "curl_url_get"),
    SYM(url_set, "curl_url_set"),
};

/* 0 not tried yet, 1 loaded, -1 failed (the message is kept for later callers). */
static int state;
static char failure[200];

static int load(void)
{
    /* Never closed: a client may be made again (reload), and unloading libcurl while
     * its resolver threads may still be winding down is not safe. */
    void *h = dlopen(CURL_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        const char *why = dlerror();
        snprintf(failure, sizeof failure, "cannot load %s (package libcurl4): %s", CURL_SONAME,
                 why != NULL ? why : "unknown error");
        return -1;
    }
    om__curl_api_t api;
    for (size_t i = 0; i < sizeof symbols / sizeof symbols[0]; i++) {
        void *p = dlsym(h, symbols[i].name);
        if (p == NULL) {
            snprintf(failure, sizeof failure, "%s has no %s: too old a libcurl (7.84 or later)",
                     CURL_SONAME, symbols[i].name);
            return -1;
        }
        /* POSIX: a dlsym result converts to a function pointer; memcpy says so in C11. */
        memcpy((char *)&api + symbols[i].offset, &p, sizeof p);
    }
    om__curl = api;
    return 1;
}

int om__curl_load(om_err_t *err)
{
    if (state == 0) {
        state = load();
    }
    if (state < 0) {
        om_err_set(err, OM_ENOTSUP, "%s", failure);
        return OM_ENOTSUP;
    }
    return 0;
}
