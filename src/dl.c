/* dl.c: libraries loaded on first use (om.h, "Libraries loaded on first use").
 *
 * One process-wide lock serialises the loads: they are rare (once per library), and a second
 * caller must wait for the first one's table rather than see it half filled. A loaded library
 * is then read through an acquire load of its state, without the lock. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "om.h"

static pthread_mutex_t load_lock = PTHREAD_MUTEX_INITIALIZER;

/* Under load_lock: 1 loaded, -1 failed (the reason in lib->failure). */
static int load(om_dl_lib_t *lib)
{
    void *h = dlopen(lib->soname, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        const char *why = dlerror();
        snprintf(lib->failure, sizeof lib->failure, "cannot load %s (package %s): %s", lib->soname,
                 lib->package, why != NULL ? why : "unknown error");
        return -1;
    }
    for (size_t i = 0; i < lib->n_syms; i++) {
        void *p = dlsym(h, lib->syms[i].name);
        if (p == NULL) {
            snprintf(lib->failure, sizeof lib->failure,
                     "%s has no %s: too old a version of package %s", lib->soname,
                     lib->syms[i].name, lib->package);
            /* A table left half filled is never read: the state says failed. */
            return -1;
        }
        /* POSIX: a dlsym result converts to a function pointer; memcpy says so in C11. */
        memcpy((char *)lib->table + lib->syms[i].offset, &p, sizeof p);
    }
    return 1;
}

int om_dl_load(om_dl_lib_t *lib, om_err_t *err)
{
    int state = atomic_load_explicit(&lib->state, memory_order_acquire);
    if (state == 0) {
        pthread_mutex_lock(&load_lock);
        state = atomic_load_explicit(&lib->state, memory_order_relaxed);
        if (state == 0) {
            state = load(lib);
            atomic_store_explicit(&lib->state, state, memory_order_release);
        }
        pthread_mutex_unlock(&load_lock);
    }
    if (state < 0) {
        om_err_set(err, OM_ENOTSUP, "%s", lib->failure);
        return OM_ENOTSUP;
    }
    return 0;
}
