/* om_testauth.c: see om_testauth.h. */
#include <stdio.h>
#include <string.h>

#include "om_testauth.h"

static unsigned ta_sides(const void *cfg)
{
    const om_testauth_t *t = cfg;
    return t != NULL && t->sides != 0 ? t->sides : OM_AUTH_SERVER | OM_AUTH_CLIENT;
}

static int ta_authenticate(void *self, om_auth_header_fn header, void *arg, const char **why)
{
    om_testauth_t *t = self;
    t->checks++;
    const char *v = header(arg, "authorization");
    char want[96];
    snprintf(want, sizeof want, "Test %s", t->secret);
    if (v != NULL && strcmp(v, "Test busy") == 0) {
        *why = "busy";
        t->refusals++;
        return OM_EAGAIN;
    }
    if (v == NULL) {
        *why = "no Authorization header";
    } else if (strcmp(v, want) != 0) {
        *why = "wrong secret";
    } else {
        return 0;
    }
    t->refusals++;
    return OM_EUNAUTH;
}

static size_t ta_headers(void *self, om_http_header_t *out, size_t cap)
{
    om_testauth_t *t = self;
    t->header_calls++;
    snprintf(t->value, sizeof t->value, "Test %s", t->secret);
    size_t n = 0;
    if (n < cap) {
        out[n++] = (om_http_header_t){.name = "Authorization", .value = t->value};
    }
    if (n < cap && t->extra_name != NULL) {
        out[n++] = (om_http_header_t){.name = t->extra_name, .value = t->extra_value};
    }
    return n;
}

static const om_auth_ops_t ta_ops = {
    .sides = ta_sides,
    .authenticate = ta_authenticate,
    .headers = ta_headers,
};

const om_factory_t om_testauth_factory = {
    .abi = OM_FACTORY_ABI,
    .kind = OM_EXTENSION,
    .type = "testauth",
    .auth = &ta_ops,
};

void om_testauth_register(om_host_t *host, const char *id, om_testauth_t *t)
{
    om_extension_ref_t ref = {.id = id, .factory = &om_testauth_factory, .cfg = t, .self = t};
    if (om__host_add_extension(host, &ref) != 0) {
        fprintf(stderr, "om_testauth_register: out of memory\n");
    }
}
