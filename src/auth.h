/* auth.h: what the graph needs of the authenticators' core (core-internal; the public part is
 * om.h's "Authenticators"). Loop thread only. */
#ifndef OM_AUTH_H
#define OM_AUTH_H

#include "om.h"

/* Called for each authenticator reference a config holds: a is the om_auth_cfg_t (its
 * authenticator may be NULL: no auth), side OM_AUTH_SERVER or OM_AUTH_CLIENT, path the key
 * path of its `authenticator` ("receivers::otlp::protocols::http::auth::authenticator"). */
typedef void (*om__auth_ref_fn)(void *arg, const om_auth_cfg_t *a, unsigned side, const char *path);

/* Walk a filled config struct with its field table, nested sections included, and call fn
 * for every OM_F_AUTH_SERVER / OM_F_AUTH_CLIENT field. path names cfg ("receivers::otlp"). */
void om__auth_refs_walk(const om_field_t *fields, const void *cfg, const char *path,
                        om__auth_ref_fn fn, void *arg);

/* The sides an extension with this factory and validated config offers (0: none). */
unsigned om__auth_sides(const om_factory_t *f, const void *cfg);

#endif
