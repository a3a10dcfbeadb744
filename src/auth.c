/* auth.c: authenticators (om.h, "Authenticators"): the `auth` field tables, the host's
 * registry of enabled extensions, the handles servers and clients hold on an authenticator,
 * and the walk the graph uses to check every reference a config makes.
 *
 * Why the refusal is counted and logged here rather than in each authenticator: every
 * server (the core HTTP server, the gRPC receiver, those to come) then reports refusals the
 * same way, with the same rate limit, and no authenticator can forget to. The authenticator
 * gives only a static reason, so no credential can reach the log.
 *
 * Threading: the loop thread only. */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "auth.h"
#include "http_internal.h" /* om__warn_limited: the rate-limited warnings the HTTP server uses */

/* ------------------------------------------------------------------------------------------ */
/* Field tables                                                                               */

#define AUTHENTICATOR_FIELD                                                                        \
    {                                                                                              \
        .key = "authenticator", .type = OM_F_STRING,                                               \
        .offset = offsetof(om_auth_cfg_t, authenticator), .flags = OM_FF_REQUIRED,                 \
        .help = "the ID of the extension that authenticates (e.g. basicauth/server)"               \
    }

const om_field_t om_auth_server_fields[] = {
    AUTHENTICATOR_FIELD,
    {.key = NULL},
};

const om_field_t om_auth_http_server_fields[] = {
    AUTHENTICATOR_FIELD,
    {.key = "request_params",
     .type = OM_F_STRLIST,
     .offset = offsetof(om_auth_cfg_t, request_params),
     .help = "query parameters the authenticator also sees as headers (the query wins)"},
    {.key = NULL},
};

const om_field_t om_auth_client_fields[] = {
    AUTHENTICATOR_FIELD,
    {.key = NULL},
};

/* ------------------------------------------------------------------------------------------ */
/* Comparing secrets                                                                          */

_Atomic unsigned long om__auth_compares;

void om_auth_digest(const void *data, size_t len, uint8_t out[OM_AUTH_DIGEST_LEN])
{
    SHA256(data, len, out);
}

/* Digests make the comparison's time independent of the lengths too: CRYPTO_memcmp alone
 * needs equal lengths, and stopping at a length difference would tell it. */
bool om_auth_digest_equal(const uint8_t a[OM_AUTH_DIGEST_LEN], const uint8_t b[OM_AUTH_DIGEST_LEN])
{
    atomic_fetch_add_explicit(&om__auth_compares, 1, memory_order_relaxed);
    return CRYPTO_memcmp(a, b, OM_AUTH_DIGEST_LEN) == 0;
}

bool om_auth_equal(const void *a, size_t a_len, const void *b, size_t b_len)
{
    uint8_t da[OM_AUTH_DIGEST_LEN], db[OM_AUTH_DIGEST_LEN];
    om_auth_digest(a, a_len, da);
    om_auth_digest(b, b_len, db);
    bool eq = om_auth_digest_equal(da, db);
    OPENSSL_cleanse(da, sizeof da);
    OPENSSL_cleanse(db, sizeof db);
    return eq;
}

/* ------------------------------------------------------------------------------------------ */
/* The host's registry                                                                        */

const om_extension_ref_t *om_host_extension(const om_host_t *host, const char *id)
{
    for (size_t i = 0; host != NULL && id != NULL && i < host->n_extensions; i++) {
        if (strcmp(host->extensions[i].id, id) == 0) {
            return &host->extensions[i];
        }
    }
    return NULL;
}

int om__host_add_extension(om_host_t *host, const om_extension_ref_t *ref)
{
    om_extension_ref_t *n =
        om_realloc(host->extensions, (host->n_extensions + 1) * sizeof *host->extensions);
    if (n == NULL) {
        return OM_ENOMEM;
    }
    host->extensions = n;
    host->extensions[host->n_extensions++] = *ref;
    return 0;
}

void om__host_clear_extensions(om_host_t *host)
{
    if (host == NULL) {
        return;
    }
    om_free(host->extensions);
    host->extensions = NULL;
    host->n_extensions = 0;
}

unsigned om__auth_sides(const om_factory_t *f, const void *cfg)
{
    const om_auth_ops_t *ops = f != NULL ? f->auth : NULL;
    if (ops == NULL) {
        return 0;
    }
    if (ops->sides != NULL) {
        return ops->sides(cfg);
    }
    return (ops->authenticate != NULL ? OM_AUTH_SERVER : 0) |
           (ops->headers != NULL ? OM_AUTH_CLIENT : 0);
}

/* The registered extension that offers side, or NULL with otelcol's message in err. */
static const om_extension_ref_t *resolve(om_host_t *host, const char *id, unsigned side,
                                         om_err_t *err)
{
    const om_extension_ref_t *ref = om_host_extension(host, id);
    if (ref == NULL) {
        om_err_set(err, OM_ECONFIG,
                   "failed to resolve authenticator \"%.128s\": authenticator not found", id);
        return NULL;
    }
    unsigned sides = om__auth_sides(ref->factory, ref->cfg);
    bool server = side == OM_AUTH_SERVER;
    if (!(sides & side) || (server && ref->factory->auth->authenticate == NULL) ||
        (!server && ref->factory->auth->headers == NULL)) {
        om_err_set(err, OM_ECONFIG,
                   "requested authenticator is not a %s authenticator (\"%.128s\")",
                   server ? "server" : "client", id);
        return NULL;
    }
    return ref;
}

/* ------------------------------------------------------------------------------------------ */
/* Servers                                                                                    */

struct om_auth_server {
    const om_auth_ops_t *ops;
    void *self;
    char *log_name; /* "receiver/otlp" */
    char *id;       /* the authenticator's */
    om_metric_counter_t *failures;
    om__warnlimit_t warn;
};

static const om_metric_def_t failures_def = {
    .name = OM_AUTH_FAILURES_METRIC,
    .help = "Requests refused by an authenticator.",
    .unit = "{requests}",
    .type = OM_METRIC_COUNTER,
};

int om_auth_server_new(om_host_t *host, const om_auth_cfg_t *cfg, const char *component,
                       const char *transport, om_auth_server_t **out, om_err_t *err)
{
    *out = NULL;
    if (cfg == NULL || cfg->authenticator == NULL) {
        return 0;
    }
    const om_extension_ref_t *ref = resolve(host, cfg->authenticator, OM_AUTH_SERVER, err);
    if (ref == NULL) {
        return OM_ECONFIG;
    }
    om_auth_server_t *a = om_calloc(1, sizeof *a);
    if (a == NULL || (a->log_name = om_strdup(component != NULL ? component : "")) == NULL ||
        (a->id = om_strdup(cfg->authenticator)) == NULL) {
        om_auth_server_free(a);
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    a->ops = ref->factory->auth;
    a->self = ref->self;
    if (host->metrics != NULL) {
        om_label_t labels[] = {{"authenticator", a->id},
                               {"component", a->log_name},
                               {"transport", transport != NULL ? transport : ""}};
        int rc = om_metrics_counter(host->metrics, &failures_def, labels, 3, &a->failures, err);
        if (rc != 0) {
            om_auth_server_free(a);
            return rc;
        }
    }
    *out = a;
    return 0;
}

int om_auth_server_check(om_auth_server_t *a, om_auth_header_fn header, void *arg, const char *peer)
{
    if (a == NULL) {
        return 0;
    }
    const char *why = NULL;
    int rc = a->ops->authenticate(a->self, header, arg, &why);
    if (rc == 0) {
        return 0;
    }
    om_metric_counter_add(a->failures, 1);
    om__warn_limited(&a->warn, a->log_name, "request from %s refused by %s: %s",
                     peer != NULL ? peer : "?", a->id, why != NULL ? why : "unauthenticated");
    return rc == OM_EAGAIN ? OM_EAGAIN : OM_EUNAUTH;
}

void om_auth_server_free(om_auth_server_t *a)
{
    if (a == NULL) {
        return;
    }
    om_free(a->log_name);
    om_free(a->id);
    om_free(a);
}

/* ------------------------------------------------------------------------------------------ */
/* Clients                                                                                    */

struct om_auth_client {
    const om_auth_ops_t *ops;
    void *self;
};

int om_auth_client_new(om_host_t *host, const om_auth_cfg_t *cfg, om_auth_client_t **out,
                       om_err_t *err)
{
    *out = NULL;
    if (cfg == NULL || cfg->authenticator == NULL) {
        return 0;
    }
    const om_extension_ref_t *ref = resolve(host, cfg->authenticator, OM_AUTH_CLIENT, err);
    if (ref == NULL) {
        return OM_ECONFIG;
    }
    om_auth_client_t *a = om_calloc(1, sizeof *a);
    if (a == NULL) {
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    a->ops = ref->factory->auth;
    a->self = ref->self;
    *out = a;
    return 0;
}

size_t om_auth_client_headers(om_auth_client_t *a, om_http_header_t *out, size_t cap)
{
    if (a == NULL || cap == 0) {
        return 0;
    }
    size_t n = a->ops->headers(a->self, out, cap);
    return n < cap ? n : cap;
}

void om_auth_client_free(om_auth_client_t *a)
{
    om_free(a);
}

/* ------------------------------------------------------------------------------------------ */
/* The graph's check                                                                          */

enum { PATH_MAX_LEN = 512 };

void om__auth_refs_walk(const om_field_t *fields, const void *cfg, const char *path,
                        om__auth_ref_fn fn, void *arg)
{
    for (const om_field_t *f = fields; f != NULL && f->key != NULL; f++) {
        char sub[PATH_MAX_LEN];
        snprintf(sub, sizeof sub, "%s%s%s", path, path[0] != '\0' ? "::" : "", f->key);
        const void *p = (const char *)cfg + f->offset;
        if (f->type == OM_F_SECTION) {
            om__auth_refs_walk(f->fields, p, sub, fn, arg);
        } else if (f->type == OM_F_AUTH_SERVER || f->type == OM_F_AUTH_CLIENT) {
            char at[PATH_MAX_LEN + 32];
            snprintf(at, sizeof at, "%s::authenticator", sub);
            fn(arg, p, f->type == OM_F_AUTH_SERVER ? OM_AUTH_SERVER : OM_AUTH_CLIENT, at);
        }
    }
}
