/* om_testauth.h: a test-only authenticator, to test the core's hooks (the HTTP server and
 * client, the gRPC receiver and exporter) without a real extension. Tests only.
 *
 *   om_testauth_t ta = {.secret = "s3cret"};
 *   om_testauth_register(&host, "testauth", &ta);   // then auth: {authenticator: testauth}
 *
 * Server side: a request is good when its Authorization header (any case) is exactly
 * "Test <secret>"; "Test busy" is answered OM_EAGAIN (cannot check now). Client side: it adds
 * "Authorization: Test <secret>" and, when extra_name is set, "<extra_name>: <extra_value>". Change
 * secret between requests to see the headers follow. */
#ifndef OM_TESTAUTH_H
#define OM_TESTAUTH_H

#include "om.h"

typedef struct om_testauth {
    char secret[64];
    const char *extra_name, *extra_value;
    unsigned sides; /* 0: both */
    /* What happened. */
    int checks, refusals, header_calls;
    char value[96]; /* the client header's value, as last handed out */
} om_testauth_t;

extern const om_factory_t om_testauth_factory;

/* Register t with the host under id (which must outlive the host's registry). */
void om_testauth_register(om_host_t *host, const char *id, om_testauth_t *t);

#endif
