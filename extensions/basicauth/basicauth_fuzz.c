/* basicauth_fuzz.c: the basicauth extension's two parsers on raw bytes: htpasswd text
 * (ext_basic_htpasswd_parse, then a match against the first user it finds, when its form is
 * cheap to check) and the Authorization header (ext_basic_parse_authorization).
 *
 * Input layout: byte 0 picks the parser (bit 0: the header), the rest is the input. A header
 * is cut at its first NUL, as a header value would be. */
#include <stdlib.h>
#include <string.h>

#include "basicauth.h"

static void note(void *arg, size_t line, const char *user, const char *problem)
{
    (void)arg;
    (void)user;
    if (line == 0 || problem == NULL) {
        abort();
    }
}

static void fuzz_header(const uint8_t *data, size_t size)
{
    char *v = om_strndup((const char *)data, size);
    if (v == NULL) {
        return;
    }
    uint8_t buf[EXT_BASIC_CRED_MAX];
    const char *user = NULL, *pw = NULL, *why = NULL;
    size_t ulen = 0, plen = 0;
    int rc = ext_basic_parse_authorization(v, buf, sizeof buf, &user, &ulen, &pw, &plen, &why);
    if (rc == 0 && (user != (const char *)buf || pw != user + ulen + 1 || pw[-1] != ':' ||
                    ulen + 1 + plen > sizeof buf)) {
        abort();
    }
    if (rc != 0 && (rc != OM_EUNAUTH || why == NULL)) {
        abort();
    }
    om_free(v);
}

static void fuzz_htpasswd(const uint8_t *data, size_t size)
{
    ext_basic_htpasswd_t *h = NULL;
    om_err_t err = {0};
    if (ext_basic_htpasswd_parse((const char *)data, size, note, NULL, &h, &err) != 0) {
        return;
    }
    /* The first line's user, if kept, checked with a password made of the input: only the
     * forms that are cheap (bcrypt and SHA-crypt take what their cost says). */
    const char *colon = memchr(data, ':', size);
    const char *nl = memchr(data, '\n', size);
    if (colon != NULL && (nl == NULL || colon < nl) && memchr(data, '\0', size) == NULL) {
        char *user = om_strndup((const char *)data, (size_t)(colon - (const char *)data));
        int form = user != NULL ? ext_basic_htpasswd_form(h, user) : -1;
        if (form == EXT_BASIC_APR1 || form == EXT_BASIC_SHA || form == EXT_BASIC_SSHA ||
            form == EXT_BASIC_PLAIN) {
            (void)ext_basic_htpasswd_match(h, user, strlen(user), (const char *)data, size);
            (void)ext_basic_htpasswd_match(h, user, strlen(user), (const char *)data, size);
        }
        om_free(user);
    }
    ext_basic_htpasswd_free(h);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    om_log_set_level(OM_LOG_NONE);
    if (data[0] & 1) {
        fuzz_header(data + 1, size - 1);
    } else {
        fuzz_htpasswd(data + 1, size - 1);
    }
    return 0;
}
