/* dl_test.c: om_dl_load (src/dl.c): a library's table filled with the library's own
 * functions, the reasons it gives when the library or a symbol is missing, the first result
 * kept for later calls, and threads loading one library at once (run under TSan too). */
#include <pthread.h>
#include <string.h>

#include <zlib.h>

#include "om.h"
#include "om_test.h"

typedef struct zlib_api {
    __typeof__(zlibVersion) *version;
    __typeof__(crc32) *crc32;
} zlib_api_t;

static const om_dl_sym_t zlib_syms[] = {
    OM_DL_SYM(zlib_api_t, version, "zlibVersion"),
    OM_DL_SYM(zlib_api_t, crc32, "crc32"),
};

static void test_loads_the_library_functions(void)
{
    zlib_api_t api = {0};
    om_dl_lib_t lib = {
        .soname = "libz.so.1", .package = "zlib1g", .syms = zlib_syms, .n_syms = 2, .table = &api};
    om_err_t err = {0};
    ASSERT_EQ_INT(om_dl_load(&lib, &err), 0);
    /* The same library as the one linked into this test: the same functions. */
    ASSERT_TRUE(api.version == zlibVersion);
    ASSERT_EQ_STR(api.version(), zlibVersion());
    ASSERT_EQ_UINT(api.crc32(0, (const Bytef *)"otelmon", 7),
                   crc32(0, (const Bytef *)"otelmon", 7));
    ASSERT_EQ_INT(om_dl_load(&lib, &err), 0);
}

static void test_missing_library(void)
{
    zlib_api_t api = {0};
    om_dl_lib_t lib = {.soname = "libotelmon-no-such.so.7",
                       .package = "otelmon-nothing",
                       .syms = zlib_syms,
                       .n_syms = 2,
                       .table = &api};
    om_err_t err = {0};
    ASSERT_EQ_INT(om_dl_load(&lib, &err), OM_ENOTSUP);
    ASSERT_EQ_INT(err.code, OM_ENOTSUP);
    ASSERT_CONTAINS(err.msg, "cannot load libotelmon-no-such.so.7 (package otelmon-nothing)");
    /* The first result stands, with its reason. */
    om_err_t again = {0};
    ASSERT_EQ_INT(om_dl_load(&lib, &again), OM_ENOTSUP);
    ASSERT_EQ_STR(again.msg, err.msg);
    ASSERT_TRUE(api.version == NULL);
}

static void test_missing_symbol(void)
{
    static const om_dl_sym_t syms[] = {
        OM_DL_SYM(zlib_api_t, version, "zlibVersion"),
        OM_DL_SYM(zlib_api_t, crc32, "crc32_of_the_future"),
    };
    zlib_api_t api = {0};
    om_dl_lib_t lib = {
        .soname = "libz.so.1", .package = "zlib1g", .syms = syms, .n_syms = 2, .table = &api};
    om_err_t err = {0};
    ASSERT_EQ_INT(om_dl_load(&lib, &err), OM_ENOTSUP);
    ASSERT_CONTAINS(err.msg, "libz.so.1 has no crc32_of_the_future");
    ASSERT_CONTAINS(err.msg, "zlib1g");
}

#define THREADS 4
static zlib_api_t shared_api;
static om_dl_lib_t shared_lib = {.soname = "libz.so.1",
                                 .package = "zlib1g",
                                 .syms = zlib_syms,
                                 .n_syms = 2,
                                 .table = &shared_api};

static void *load_and_call(void *arg)
{
    om_err_t err = {0};
    int rc = om_dl_load(&shared_lib, &err);
    /* Every caller that got 0 may call through the table at once: it is complete. */
    *(uLong *)arg = rc == 0 ? shared_api.crc32(0, (const Bytef *)"x", 1) : 0;
    return NULL;
}

static void test_threads_load_at_once(void)
{
    pthread_t t[THREADS];
    uLong got[THREADS] = {0};
    for (int i = 0; i < THREADS; i++) {
        ASSERT_EQ_INT(pthread_create(&t[i], NULL, load_and_call, &got[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        ASSERT_EQ_UINT(got[i], crc32(0, (const Bytef *)"x", 1));
    }
}

int main(void)
{
    OM_RUN(test_loads_the_library_functions);
    OM_RUN(test_missing_library);
    OM_RUN(test_missing_symbol);
    OM_RUN(test_threads_load_at_once);
    return om_test_summary();
}
