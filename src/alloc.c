/* alloc.c: allocation wrappers that return NULL instead of aborting, with a failure injector
 * for fuzz builds and failure-path tests. */
#include <stdlib.h>
#include <string.h>

#include "om.h"

/* Allocations left before one fails; 0 means never fail. Loop thread only (tests, fuzzers). */
static unsigned long fail_countdown;

void om_alloc_fail_after(unsigned long n)
{
    fail_countdown = n;
}

static bool should_fail(void)
{
    if (fail_countdown == 0) {
        return false;
    }
    return --fail_countdown == 0;
}

void *om_malloc(size_t n)
{
    if (should_fail()) {
        return NULL;
    }
    return malloc(n == 0 ? 1 : n);
}

void *om_calloc(size_t count, size_t n)
{
    if (should_fail()) {
        return NULL;
    }
    return calloc(count == 0 ? 1 : count, n == 0 ? 1 : n);
}

void *om_realloc(void *p, size_t n)
{
    if (should_fail()) {
        return NULL;
    }
    return realloc(p, n == 0 ? 1 : n);
}

char *om_strndup(const char *s, size_t n)
{
    char *d = om_malloc(n + 1);
    if (d == NULL) {
        return NULL;
    }
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *om_strdup(const char *s)
{
    return om_strndup(s, strlen(s));
}

void om_free(void *p)
{
    free(p);
}
