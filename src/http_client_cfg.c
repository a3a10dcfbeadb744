/* http_client_cfg.c: the rules of the shared HTTP client settings, URL checks, and reading the
 * Retry-After header. Pure functions apart from loading libcurl, whose URL parser is the one
 * that will read the URLs when requests are made. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "curl_api.h"

static bool is_set(const char *s)
{
    return s != NULL && s[0] != '\0';
}

int om_http_check_url(const char *key, const char *url, om_err_t *err)
{
    int rc = om__curl_load(err);
    if (rc != 0) {
        return rc;
    }
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL;
    if (u == NULL) {
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    rc = OM_ECONFIG;
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
        om_err_at(err, key, "must be a valid URL: \"%.200s\"", url);
    } else if (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0) {
        om_err_at(err, key, "unsupported scheme \"%.32s\" (use http or https)", scheme);
    } else {
        rc = 0;
    }
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return rc;
}

bool om__http_token(const char *s)
{
    static const char tspecials[] = "()<>@,;:\\\"/[]?={} \t";
    bool ok = s != NULL && s[0] != '\0';
    for (const char *p = s; ok && *p != '\0'; p++) {
        ok = (unsigned char)*p > 32 && (unsigned char)*p < 127 && strchr(tspecials, *p) == NULL;
    }
    return ok;
}

/* HTTP field names are tokens; values must not end the header line early. */
static int check_headers(const om_strmap_t *h, om_err_t *err)
{
    for (size_t i = 0; i < h->n; i++) {
        const char *k = h->keys[i];
        if (!om__http_token(k)) {
            om_err_at(err, "headers", "invalid header name \"%.64s\"", k);
            return OM_ECONFIG;
        }
        if (h->values[i] != NULL && strpbrk(h->values[i], "\r\n") != NULL) {
            char at[sizeof err->at];
            snprintf(at, sizeof at, "headers::%s", k);
            om_err_at(err, at, "the value must not contain a line break");
            return OM_ECONFIG;
        }
    }
    return 0;
}

int om_http_client_cfg_validate(const om_http_client_cfg_t *cfg, om_err_t *err)
{
    int rc = om__curl_load(err);
    if (rc != 0) {
        return rc;
    }
    if (is_set(cfg->proxy_url)) {
        CURLU *u = curl_url();
        if (u == NULL) {
            om_err_set(err, OM_ENOMEM, "out of memory");
            return OM_ENOMEM;
        }
        CURLUcode uc = curl_url_set(u, CURLUPART_URL, cfg->proxy_url, 0);
        curl_url_cleanup(u);
        if (uc != CURLUE_OK) {
            om_err_at(err, "proxy_url", "must be a valid URL: \"%.200s\"", cfg->proxy_url);
            return OM_ECONFIG;
        }
    }
    rc = check_headers(&cfg->headers, err);
    return rc ? rc : om_tls_client_validate(&cfg->tls, "tls", OM_TLS_STACK_LIBCURL, err);
}

/* ------------------------------------------------------------------------------------------ */
/* Retry-After                                                                                */

/* An HTTP-date (RFC 9110, section 5.6.7) in one of the three forms a recipient must accept:
 * IMF-fixdate, the obsolete RFC 850 form and asctime's. Returns (time_t)-1 for anything else.
 * Month and day names are read in the C locale, which otelmon never changes. */
static time_t parse_http_date(const char *s)
{
    static const char *const formats[] = {
        "%a, %d %b %Y %H:%M:%S GMT", /* Sun, 06 Nov 1994 08:49:37 GMT */
        "%A, %d-%b-%y %H:%M:%S GMT", /* Sunday, 06-Nov-94 08:49:37 GMT */
        "%a %b %e %H:%M:%S %Y",      /* Sun Nov  6 08:49:37 1994 */
    };
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++) {
        struct tm tm;
        memset(&tm, 0, sizeof tm);
        const char *end = strptime(s, formats[i], &tm);
        if (end != NULL && end[strspn(end, " \t")] == '\0') {
            return timegm(&tm);
        }
    }
    return (time_t)-1;
}

/* The longest Retry-After we represent, in seconds (its milliseconds fit an int64). */
#define RETRY_AFTER_MAX_S INT64_C(9999999999)

int64_t om_http_retry_after_ms(const char *value, int64_t now_s)
{
    if (value == NULL) {
        return -1;
    }
    while (*value == ' ' || *value == '\t') {
        value++;
    }
    size_t digits = strspn(value, "0123456789");
    if (digits > 0 && value[digits + strspn(value + digits, " \t")] == '\0') {
        /* delay-seconds; anything past ten digits (317 years) is capped there. */
        if (digits > 10) {
            return RETRY_AFTER_MAX_S * 1000;
        }
        return (int64_t)strtoll(value, NULL, 10) * 1000;
    }
    if (value[0] == '\0') {
        return -1;
    }
    time_t t = parse_http_date(value);
    if (t == (time_t)-1) {
        return -1;
    }
    int64_t delta = (int64_t)t - now_s;
    if (delta > RETRY_AFTER_MAX_S) {
        delta = RETRY_AFTER_MAX_S;
    }
    return delta > 0 ? delta * 1000 : 0;
}
