/* filter_regex_fuzz.c: the filter processor's regex path: the RE2 syntax check, PCRE2
 * compilation and matching under limits. Input: the pattern, a NUL byte, the subject (without
 * a NUL the input is both). A pattern either compiles or is refused with a message; a match
 * answers 1, 0, or OM_ETOOBIG when a limit stopped it, in bounded time, and the same answer
 * twice; allocation failures (from an input-chosen point) fail cleanly. */
#include <stdlib.h>
#include <string.h>

#include "filter.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_once(const char *pat, size_t plen, const char *subj, size_t slen)
{
    filter_re_t *re = NULL;
    om_err_t err = {0};
    int rc = proc_filter_re_compile(pat, plen, &re, &err);
    if (rc != 0) {
        if ((rc != OM_EINVAL && rc != OM_ENOMEM) || err.msg[0] == '\0' || re != NULL) {
            abort();
        }
        return rc == OM_ENOMEM ? 100 : 101;
    }
    if (strlen(proc_filter_re_pattern(re)) != plen) {
        abort();
    }
    int m1 = proc_filter_re_match(re, subj, slen);
    int m2 = proc_filter_re_match(re, subj, slen);
    if ((m1 != 0 && m1 != 1 && m1 != OM_ETOOBIG && m1 != OM_ENOMEM) ||
        (m1 != m2 && m1 != OM_ENOMEM && m2 != OM_ENOMEM)) {
        abort();
    }
    proc_filter_re_free(re);
    return m1 == OM_ENOMEM ? 100 : m1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 8192) {
        return 0;
    }
    om_log_set_level(OM_LOG_NONE);
    const char *p = (const char *)data;
    const char *nul = memchr(p, '\0', size);
    size_t plen = nul != NULL ? (size_t)(nul - p) : size;
    const char *subj = nul != NULL ? nul + 1 : p;
    size_t slen = nul != NULL ? size - plen - 1 : size;
    int first = run_once(p, plen, subj, slen);
    if (first == 100) {
        abort(); /* nothing fails allocating in the first run */
    }
    om_alloc_fail_after(1 + (size > 0 ? data[size - 1] % 16u : 0));
    int second = run_once(p, plen, subj, slen);
    om_alloc_fail_after(0);
    if (second != 100 && second != first && first != OM_ETOOBIG && second != OM_ETOOBIG) {
        abort();
    }
    return 0;
}
