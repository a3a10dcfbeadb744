/* batch.h: private to processors/batch.
 *
 * The processor keeps the batches it was handed in a FIFO, untouched (they may be shared with
 * other pipelines), and cuts outgoing batches from the front of that FIFO: whole input batches
 * are merged with om_batch_append, and an input that must be split is cut at span / data point /
 * log record granularity into a new batch whose wrapper nodes (ResourceX, ScopeX, Metric) live in
 * the new batch's arena and point at the original resources, scopes and items. */
#ifndef PROC_BATCH_H
#define PROC_BATCH_H

#include "om.h"

typedef struct proc_batch_cfg {
    int64_t timeout;             /* ns; 0: no timer, send as soon as data arrives */
    int64_t send_batch_size;     /* items that trigger a send; 0: no timer either */
    int64_t send_batch_max_size; /* most items in one sent batch; 0: no limit */
} proc_batch_cfg_t;

/* Depths of the request tree: 0 the request, 1 ResourceX, 2 ScopeX, 3 Metric (metrics only).
 * The items are the children of the deepest level. */
#define BATCH_MAX_DEPTH 4

/* The functions that let the cutting code walk one depth of one signal's tree. */
typedef struct batch_level_ops {
    size_t (*n_children)(const void *node);
    void *(*child)(const void *node, size_t i);
    /* A shallow copy of node in arena a whose children are kids[0..n); NULL when out of memory. */
    void *(*rebuild)(om_arena_t *a, const void *node, void *const *kids, size_t n);
} batch_level_ops_t;

/* One queued input batch and how many of its items have not been sent yet. */
typedef struct batch_entry {
    om_batch_t *batch;
    size_t items;
} batch_entry_t;

/* The cutting state: where the next unsent item of the head input is, and the scratch lists
 * the children of partially taken nodes are gathered in (one per depth, reused). */
typedef struct batch_cutter {
    const batch_level_ops_t *ops;  /* ops[0..leaf] */
    int leaf;                      /* depth whose children are the items */
    size_t pos[BATCH_MAX_DEPTH];   /* next child to take at each depth of the cursor path */
    bool started[BATCH_MAX_DEPTH]; /* the node at this depth is partially taken already */
    void **kids[BATCH_MAX_DEPTH];  /* om_malloc'd scratch lists */
    size_t n_kids[BATCH_MAX_DEPTH], cap_kids[BATCH_MAX_DEPTH];
    om_arena_t *arena; /* where copies of partially taken nodes go */
    size_t room;       /* items still wanted for the batch being cut */
    bool oom;
} batch_cutter_t;

/* Set up the cutter for a signal (no allocation). */
void proc_batch_cutter_init(batch_cutter_t *c, om_signal_t sig);
void proc_batch_cutter_free(batch_cutter_t *c);
/* Forget any partial position (after the head input was dropped). */
void proc_batch_cutter_reset(batch_cutter_t *c);
/* Whether the head input is partially sent already. */
bool proc_batch_cutter_started(const batch_cutter_t *c);

/* Cut up to `room` items from the head input e (from the cursor on) into a new batch. On
 * success *out is the new batch (its items set; it keeps e's arenas alive) and *done tells
 * whether e is now fully taken (the cursor is then reset). e->items is decreased by what was
 * taken. Returns OM_ENOMEM when out of memory (then the cursor is undefined: drop e). */
int proc_batch_cut(batch_cutter_t *c, batch_entry_t *e, size_t room, om_batch_t **out, bool *done);

#endif
