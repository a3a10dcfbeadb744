/* zpages.h: what the zpages extension shows its own tests. The extension itself is reached
 * only through ext_zpages_factory. Loop thread. */
#ifndef EXT_ZPAGES_H
#define EXT_ZPAGES_H

#include "om.h"

extern const om_factory_t ext_zpages_factory;

/* The /debug/pipelinez page of host's graph, appended to out. */
void ext_zpages_render_pipelinez(om_host_t *host, om_strbuf_t *out);

#endif
