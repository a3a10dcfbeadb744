/* alarmstore_config.c: the alarmstore exporter's settings (issue 11's config shape), the
 * cross-field rules, and the database URL in SQLAlchemy's form. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alarmstore.h"

static const om_field_t error_spans_fields[] = {
    {.key = "services",
     .type = OM_F_STRLIST,
     .offset = offsetof(exp_as_error_spans_cfg_t, services),
     .help = "service.name values whose ERROR spans are runs (for apps without the helper)"},
    {.key = NULL},
};

static const om_field_t webhook_fields[] = {
    {.key = "endpoint",
     .type = OM_F_STRING,
     .offset = offsetof(exp_as_webhook_cfg_t, endpoint),
     .help = "http(s) URL the JSON is POSTed to (a Slack or Mattermost incoming webhook works)"},
    {.key = "timeout",
     .type = OM_F_DURATION,
     .offset = offsetof(exp_as_webhook_cfg_t, timeout),
     .def = "10s",
     .min = 1e6,
     .max = 3.6e12,
     .help = "time limit of one POST, connection included"},
    OM_HTTP_CLIENT_FIELDS(exp_as_webhook_cfg_t, http, "64KiB"),
    {.key = NULL},
};

static const om_field_t digest_fields[] = {
    {.key = "at",
     .type = OM_F_STRING,
     .offset = 0,
     .help = "UTC time of day, \"HH:MM\" or \"HH:MM:SS\", of the daily summary"},
    {.key = NULL},
};

static const om_field_t notify_retry_fields[] = {
    {.key = "initial_interval",
     .type = OM_F_DURATION,
     .offset = offsetof(exp_as_notify_retry_cfg_t, initial_interval),
     .def = "5s",
     .min = 1e6,
     .max = 8.64e13,
     .help = "wait after a notifier's first failure (doubled each time)"},
    {.key = "max_interval",
     .type = OM_F_DURATION,
     .offset = offsetof(exp_as_notify_retry_cfg_t, max_interval),
     .def = "5m",
     .min = 1e6,
     .max = 8.64e13,
     .help = "the longest wait between two tries"},
    {.key = NULL},
};

#define NOFF(m) offsetof(exp_as_notify_cfg_t, m)
static const om_field_t notify_fields[] = {
    {.key = "dedup_window",
     .type = OM_F_DURATION,
     .offset = NOFF(dedup_window),
     .def = "1h",
     .min = 0,
     .max = 9.2e18,
     .help = "further failures of a (group, process) within it send one counting notification "
             "at its end (0: one per failure)"},
    {.key = "immediate",
     .type = OM_F_BOOL,
     .offset = NOFF(immediate),
     .def = "true",
     .help = "notify each failure (deduplicated) as it comes; false: the digest only"},
    {.key = "digest",
     .type = OM_F_SECTION,
     .offset = NOFF(digest_at),
     .fields = digest_fields,
     .help = "{at: \"08:00\"}: a daily UTC summary of the last 24 hours' failures not notified"},
    {.key = "retry",
     .type = OM_F_SECTION,
     .offset = NOFF(retry),
     .fields = notify_retry_fields,
     .help = "backoff of a notifier that is down (retried until it takes the alarm)"},
    {.key = "webhook",
     .type = OM_F_SECTION,
     .offset = NOFF(webhook),
     .fields = webhook_fields,
     .present_offset = NOFF(has_webhook),
     .flags = OM_FF_PRESENCE,
     .help = "{endpoint, headers, timeout, tls, ...}: a JSON POST per notification"},
    {.key = "email",
     .type = OM_F_SECTION,
     .offset = NOFF(email),
     .fields = om_mail_fields,
     .present_offset = NOFF(has_email),
     .flags = OM_FF_PRESENCE,
     .help = "{endpoint, starttls, username, password, from, to, timeout, tls}: SMTP"},
    {.key = NULL},
};

static const om_field_t api_fields[] = {
    OM_HTTP_SERVER_FIELDS(exp_as_api_cfg_t, http, EXP_AS_API_DEFAULT_ENDPOINT),
    {.key = "trace_url_template",
     .type = OM_F_STRING,
     .offset = offsetof(exp_as_api_cfg_t, trace_url_template),
     .help = "a link per run to its trace; {trace_id} is replaced (unset: no links)"},
    {.key = NULL},
};

#define OFF(m) offsetof(exp_as_cfg_t, m)
const om_field_t exp_as_fields[] = {
    {.key = "database",
     .type = OM_F_STRING,
     .offset = OFF(database),
     .def = EXP_AS_DEFAULT_DATABASE,
     .help = "SQLAlchemy-style URL: sqlite:////abs/path.db, sqlite:///rel/path.db, "
             "mysql://user:pass@host:3306/db"},
    {.key = "error_spans",
     .type = OM_F_SECTION,
     .offset = OFF(error_spans),
     .fields = error_spans_fields,
     .help = "ERROR spans of these services are runs too"},
    {.key = "notify",
     .type = OM_F_SECTION,
     .offset = OFF(notify),
     .fields = notify_fields,
     .present_offset = OFF(has_notify),
     .flags = OM_FF_PRESENCE,
     .help = "notifications of failed runs: webhook, e-mail, dedup, daily digest"},
    {.key = "api",
     .type = OM_F_SECTION,
     .offset = OFF(api),
     .fields = api_fields,
     .present_offset = OFF(has_api),
     .flags = OM_FF_PRESENCE,
     .help = "the query API and page (endpoint, tls, auth, trace_url_template)"},
    {.key = "tls",
     .type = OM_F_SECTION,
     .offset = OFF(tls),
     .fields = om_tls_client_fields,
     .present_offset = OFF(has_tls),
     .flags = OM_FF_PRESENCE,
     .help = "MariaDB: connect with TLS (required, the server's certificate checked)"},
    OM_EXPHELPER_FIELDS(exp_as_cfg_t, helper, "5s"),
    {.key = NULL},
};

/* ------------------------------------------------------------------------------------------ */
/* Database URLs                                                                              */

void as_url_free(as_url_t *u)
{
    om_free(u->path);
    om_free(u->user);
    om_free(u->password);
    om_free(u->host);
    om_free(u->dbname);
    om_free(u->socket);
    memset(u, 0, sizeof *u);
}

static int hexval(int c)
{
    return isdigit(c) ? c - '0' : isxdigit(c) ? (tolower(c) - 'a' + 10) : -1;
}

/* A copy of s[0..n) with %XX decoded; NULL on a bad escape or out of memory. */
static char *unescape(const char *s, size_t n)
{
    char *out = om_malloc(n + 1);
    if (out == NULL) {
        return NULL;
    }
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            out[w++] = s[i];
            continue;
        }
        int hi = i + 2 < n ? hexval((unsigned char)s[i + 1]) : -1;
        int lo = i + 2 < n ? hexval((unsigned char)s[i + 2]) : -1;
        if (hi < 0 || lo < 0 || (hi << 4 | lo) == 0) {
            om_free(out);
            return NULL;
        }
        out[w++] = (char)(hi << 4 | lo);
        i += 2;
    }
    out[w] = '\0';
    return out;
}

static int url_sqlite(const char *rest, as_url_t *out, om_err_t *err)
{
    /* sqlite:///rel and sqlite:////abs: after "sqlite://" comes an empty host and "/", then
     * the path as written (a leading "/" makes it absolute). */
    if (rest[0] != '/' || rest[1] == '\0') {
        om_err_at(err, "database",
                  "a SQLite URL is sqlite:////absolute/path.db or sqlite:///relative/path.db");
        return OM_ECONFIG;
    }
    if (strchr(rest, '?') != NULL) {
        om_err_at(err, "database", "SQLite URL options (?...) are not supported");
        return OM_ECONFIG;
    }
    out->kind = AS_DB_SQLITE;
    out->path = om_strdup(rest + 1);
    return out->path != NULL ? 0 : OM_ENOMEM;
}

static int url_query(const char *q, as_url_t *out, om_err_t *err)
{
    if (q == NULL || *q == '\0') {
        return 0;
    }
    if (strncmp(q, "unix_socket=", 12) == 0 && strchr(q, '&') == NULL) {
        out->socket = unescape(q + 12, strlen(q + 12));
        if (out->socket == NULL || out->socket[0] == '\0') {
            om_err_at(err, "database", "unix_socket needs a path");
            return OM_ECONFIG;
        }
        return 0;
    }
    if (strstr(q, "ssl") != NULL || strstr(q, "tls") != NULL) {
        om_err_at(err, "database",
                  "TLS options in the URL are not supported: use the exporter's tls section "
                  "(tls: {ca_file: ...})");
        return OM_ECONFIG;
    }
    om_err_at(err, "database", "unknown URL option \"%.64s\" (only unix_socket=PATH is supported)",
              q);
    return OM_ECONFIG;
}

/* user[:password]@host[:port]/db[?unix_socket=PATH] */
static int url_mysql(const char *rest, as_url_t *out, om_err_t *err)
{
    out->kind = AS_DB_MARIADB;
    out->port = 3306;
    const char *at = strrchr(rest, '@');
    const char *slash = strchr(at != NULL ? at : rest, '/');
    if (slash == NULL) {
        om_err_at(err, "database", "a MariaDB URL is mysql://user:password@host:port/database");
        return OM_ECONFIG;
    }
    if (at != NULL) {
        const char *colon = memchr(rest, ':', (size_t)(at - rest));
        size_t ulen = (size_t)((colon != NULL ? colon : at) - rest);
        out->user = unescape(rest, ulen);
        out->password = colon != NULL ? unescape(colon + 1, (size_t)(at - colon - 1)) : NULL;
        if (out->user == NULL || (colon != NULL && out->password == NULL)) {
            om_err_at(err, "database", "bad %%-escape in the URL's user or password");
            return OM_ECONFIG;
        }
    }
    const char *h = at != NULL ? at + 1 : rest;
    const char *pc = memchr(h, ':', (size_t)(slash - h));
    out->host = om_strndup(h, (size_t)((pc != NULL ? pc : slash) - h));
    if (pc != NULL) {
        char *end;
        long p = strtol(pc + 1, &end, 10);
        if (end != slash || p <= 0 || p > 65535) {
            om_err_at(err, "database", "bad port in the database URL");
            return OM_ECONFIG;
        }
        out->port = (int)p;
    }
    const char *q = strchr(slash, '?');
    out->dbname = om_strndup(slash + 1, q != NULL ? (size_t)(q - slash - 1) : strlen(slash + 1));
    if (out->host == NULL || out->dbname == NULL) {
        return OM_ENOMEM;
    }
    if (out->dbname[0] == '\0' || strchr(out->dbname, '/') != NULL) {
        om_err_at(err, "database", "the database URL needs a database name after the host");
        return OM_ECONFIG;
    }
    if (out->host[0] == '\0') {
        om_err_at(err, "database", "the database URL needs a host");
        return OM_ECONFIG;
    }
    return url_query(q != NULL ? q + 1 : NULL, out, err);
}

static const char *const mysql_schemes[] = {"mysql://",
                                            "mysql+pymysql://",
                                            "mysql+mysqldb://",
                                            "mysql+mariadbconnector://",
                                            "mariadb://",
                                            "mariadb+pymysql://",
                                            "mariadb+mariadbconnector://",
                                            NULL};

int as_url_parse(const char *url, as_url_t *out, om_err_t *err)
{
    memset(out, 0, sizeof *out);
    int rc;
    if (url == NULL || url[0] == '\0') {
        om_err_at(err, "database", "must not be empty");
        rc = OM_ECONFIG;
    } else if (strncmp(url, "sqlite://", 9) == 0) {
        rc = url_sqlite(url + 9, out, err);
    } else {
        rc = OM_ECONFIG;
        for (const char *const *s = mysql_schemes; *s != NULL; s++) {
            if (strncmp(url, *s, strlen(*s)) == 0) {
                rc = url_mysql(url + strlen(*s), out, err);
                break;
            }
        }
        if (rc == OM_ECONFIG && err->code == 0) {
            om_err_at(err, "database",
                      "unknown database URL scheme: expected sqlite:// or mysql:// (SQLAlchemy's "
                      "form)");
        }
    }
    if (rc == OM_ENOMEM) {
        om_err_set(err, OM_ENOMEM, "out of memory");
    }
    if (rc != 0) {
        as_url_free(out);
    }
    return rc;
}

int as_parse_daytime(const char *s)
{
    int h = 0, m = 0, sec = 0, used = 0;
    size_t n = s != NULL ? strlen(s) : 0;
    if (n == 5 && sscanf(s, "%2d:%2d%n", &h, &m, &used) == 2 && used == 5) {
        sec = 0;
    } else if (n == 8 && sscanf(s, "%2d:%2d:%2d%n", &h, &m, &sec, &used) == 3 && used == 8) {
    } else {
        return -1;
    }
    if (!isdigit((unsigned char)s[0]) || !isdigit((unsigned char)s[3]) || h < 0 || h > 23 ||
        m < 0 || m > 59 || sec < 0 || sec > 59) {
        return -1;
    }
    return h * 3600 + m * 60 + sec;
}

/* Errors of the core's shared HTTP client rules are about keys below notify::webhook. */
static int webhook_validate(const exp_as_webhook_cfg_t *w, om_err_t *err)
{
    if (w->endpoint == NULL || w->endpoint[0] == '\0') {
        om_err_at(err, "notify::webhook::endpoint", "a webhook needs an endpoint");
        return OM_ECONFIG;
    }
    int rc = om_http_check_url("notify::webhook::endpoint", w->endpoint, err);
    if (rc == 0) {
        rc = om_http_client_cfg_validate(&w->http, err);
        if (rc == OM_ECONFIG && strncmp(err->at, "notify::", 8) != 0) {
            char at[sizeof err->at + 32];
            snprintf(at, sizeof at, "notify::webhook%s%s", err->at[0] ? "::" : "", err->at);
            snprintf(err->at, sizeof err->at, "%.*s", (int)sizeof err->at - 1, at);
        }
    }
    return rc;
}

static int notify_validate(const exp_as_notify_cfg_t *n, om_err_t *err)
{
    if (n->digest_at != NULL && as_parse_daytime(n->digest_at) < 0) {
        om_err_at(err, "notify::digest::at",
                  "\"%.40s\" is no UTC time of day: write \"HH:MM\" or \"HH:MM:SS\"", n->digest_at);
        return OM_ECONFIG;
    }
    if (!n->has_webhook && !n->has_email) {
        om_err_at(err, "notify", "name a notifier: webhook, email or both");
        return OM_ECONFIG;
    }
    if (!n->immediate && n->digest_at == NULL) {
        om_err_at(err, "notify::immediate",
                  "immediate: false reports failures by the digest only: set digest::at too");
        return OM_ECONFIG;
    }
    if (n->retry.max_interval < n->retry.initial_interval) {
        om_err_at(err, "notify::retry::max_interval", "must not be less than initial_interval");
        return OM_ECONFIG;
    }
    int rc = n->has_webhook ? webhook_validate(&n->webhook, err) : 0;
    if (rc == 0 && n->has_email) {
        if (n->email.endpoint == NULL || n->email.endpoint[0] == '\0') {
            om_err_at(err, "notify::email::endpoint", "e-mail needs an endpoint");
            return OM_ECONFIG;
        }
        rc = om_mail_cfg_validate(&n->email, "notify::email", err);
    }
    return rc;
}

/* What libmariadb can be told (file paths, a cipher list, a TLS version list, whether to check
 * the certificate) is accepted; what it cannot do is refused, never ignored. */
static int tls_validate(const exp_as_cfg_t *c, as_db_kind_t kind, om_err_t *err)
{
    if (!c->has_tls) {
        return 0;
    }
    if (kind != AS_DB_MARIADB) {
        om_err_at(err, "tls", "TLS is for a MariaDB/MySQL database; SQLite is a local file");
        return OM_ECONFIG;
    }
    int rc = om_tls_client_validate(&c->tls, "tls", OM_TLS_STACK_LIBCURL, err);
    if (rc != 0) {
        return rc;
    }
    const om_tls_cfg_t *t = &c->tls.common;
    const char *no = NULL;
    if (t->ca_pem != NULL || t->cert_pem != NULL || t->key_pem != NULL) {
        no = "ca_pem, cert_pem and key_pem are not supported for MariaDB (its client library "
             "reads files): use ca_file, cert_file and key_file";
    } else if (t->ca_file != NULL && t->include_system_ca_certs_pool) {
        no = "include_system_ca_certs_pool with ca_file is not supported for MariaDB (its "
             "client library takes one CA source): put both in one ca_file";
    } else if (t->curve_preferences.n > 0) {
        no = "curve_preferences is not supported for MariaDB (its client library has no "
             "setting for it)";
    } else if (c->tls.server_name_override != NULL && c->tls.server_name_override[0] != '\0') {
        no = "server_name_override is not supported for MariaDB (its client library checks the "
             "certificate against the URL's host)";
    } else if (c->tls.reload_interval != 0) {
        no = "reload_interval is not supported for MariaDB (the files are read at each "
             "connection)";
    }
    if (no != NULL) {
        om_err_at(err, "tls", "%s", no);
        return OM_ECONFIG;
    }
    return 0;
}

int exp_as_config_validate(const void *vcfg, om_err_t *err)
{
    const exp_as_cfg_t *c = vcfg;
    if (c->has_notify) {
        int rc = notify_validate(&c->notify, err);
        if (rc != 0) {
            return rc;
        }
    }
    if (c->has_api) {
        int rc = om_http_server_cfg_validate(&c->api.http, "api", err);
        if (rc != 0) {
            return rc;
        }
        const char *t = c->api.trace_url_template;
        if (t != NULL && t[0] != '\0' && strstr(t, "{trace_id}") == NULL) {
            om_err_at(err, "api::trace_url_template",
                      "must contain {trace_id} (where the run's trace id goes)");
            return OM_ECONFIG;
        }
    }
    for (size_t i = 0; i < c->error_spans.services.n; i++) {
        if (c->error_spans.services.items[i][0] == '\0') {
            om_err_at(err, "error_spans::services", "a service name must not be empty");
            return OM_ECONFIG;
        }
    }
    as_url_t u;
    int rc = as_url_parse(c->database, &u, err);
    if (rc != 0) {
        return rc;
    }
    as_db_kind_t kind = u.kind;
    as_url_free(&u);
    rc = kind == AS_DB_SQLITE ? as_sqlite_load(err) : as_mariadb_load(err);
    if (rc != 0) {
        /* The loader's reason, re-said about the key (om_err_at keeps a first error). */
        om_err_t load_err = *err;
        *err = (om_err_t){0};
        om_err_at(err, "database", "%s", load_err.msg);
        return OM_ECONFIG;
    }
    rc = tls_validate(c, kind, err);
    return rc ? rc : om_exphelper_cfg_validate(&c->helper, err);
}
