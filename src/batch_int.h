/* batch_int.h: what the batch files of the core share (batch.c, batch_walk.c,
 * batch_attrs.c). Core-internal. */
#ifndef OM_BATCH_INT_H
#define OM_BATCH_INT_H

#include "om.h"

/* A batch of one reference around msg (may be NULL) whose arenas[0] is arena (the reference
 * passes to the batch). NULL when out of memory (arena is then still the caller's). */
om_batch_t *om__batch_wrap(om_signal_t sig, om_arena_t *arena, ProtobufCMessage *msg);
/* Forget the wire bytes: msg changed (or will). msg must be there. */
void om__batch_drop_raw(om_batch_t *b);
/* Set b->items and b->wire_counts from msg, after a change of its structure. */
void om__batch_recount(om_batch_t *b);
/* Whether b may be changed in place: held once, sharing no nodes, decoded, without wire
 * bytes (om_batch_edit makes it so). */
bool om__batch_editing(const om_batch_t *b);

#endif
