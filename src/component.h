/* component.h: the factory registry and component ids (core-internal). */
#ifndef OM_COMPONENT_H
#define OM_COMPONENT_H

#include "om.h"

/* The factory of that kind whose type or alias is `type`, or NULL. */
const om_factory_t *om__factory_find(om_kind_t kind, const char *type);
/* Append the types of that kind as `"a", "b"` (for "valid values" messages). */
void om__factory_list(om_kind_t kind, om_strbuf_t *out);

/* Split "type[/name]". Writes the type into type (size cap) and returns 0, or returns
 * OM_ECONFIG with the reason in err. The type must match ^[a-zA-Z][0-9a-zA-Z_]{0,62}$ and a
 * name, when present, must not be empty. */
int om__id_parse(const char *id, char *type, size_t cap, om_err_t *err);

#endif
