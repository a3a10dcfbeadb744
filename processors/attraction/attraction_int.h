/* attraction_int.h: what attraction.c and attraction_wire.c share. Private to this folder. */
#ifndef PROC_ATTRACTION_INT_H
#define PROC_ATTRACTION_INT_H

#include "attraction.h"

typedef enum {
    A_INSERT = 1,
    A_UPDATE,
    A_UPSERT,
    A_DELETE,
    A_HASH,
    A_EXTRACT,
    A_CONVERT,
} kind_t;

typedef enum {
    CONV_INT = 1,
    CONV_DOUBLE,
    CONV_STRING,
} conv_t;

typedef struct action {
    kind_t kind;
    const char *key; /* NULL when not set (delete and hash by pattern only) */
    const om_anyvalue_t *value, *def;
    const char *from;         /* from_attribute, or NULL */
    proc_attraction_re_t *re; /* pattern, or NULL */
    conv_t conv;
    /* value and def as AnyValue encodings, for the wire path (om_malloc'd; NULL when unset
     * or empty) */
    uint8_t *value_enc, *def_enc;
    size_t value_enc_len, def_enc_len;
} action_t;

/* The wire path's scratch space (attraction_wire.c), kept between batches. */
typedef struct proc_attraction_vkv { /* one KeyValue of a list being edited */
    const char *key;
    size_t klen;
    const uint8_t *val; /* the AnyValue's encoding */
    size_t vlen;
    bool has_val;
    const uint8_t *body; /* the KeyValue's encoding (NULL: a new one) */
    size_t blen;
    bool rebuilt; /* set by an action: its body is made again */
} proc_attraction_vkv_t;

typedef struct proc_attraction_piece {
    const uint8_t *p;
    size_t len;
} proc_attraction_piece_t;

/* What the measure pass learnt of one attribute list's message, for the write pass: the
 * list's new length, and where its KeyValues were when they stood together (then the write
 * pass copies the other fields around them without parsing the message again). */
typedef struct proc_attraction_leaf {
    size_t count;                   /* KeyValues in the new list */
    const uint8_t *a_start, *a_end; /* the original KeyValues' extent, when together */
    bool together;                  /* no other field between two KeyValues (or none at all) */
} proc_attraction_leaf_t;

typedef struct proc_attraction_wire {
    om_arena_t *tmp; /* new KeyValue encodings of one batch */
    size_t *sizes;   /* new sizes of the messages walked, in pre-order */
    size_t n_sizes, cap_sizes, next_size;
    proc_attraction_piece_t *pieces; /* the KeyValues of every list, in order */
    size_t n_pieces, cap_pieces, next_piece;
    proc_attraction_leaf_t *counts; /* one per list, in order */
    size_t n_counts, cap_counts, next_count;
    proc_attraction_vkv_t *list; /* the list being edited */
    size_t n_list, cap_list;
    bool leaf_changed, changed;
} proc_attraction_wire_t;

struct proc_attraction {
    size_t n;
    action_t *actions;
    uint64_t limit_hits;
    om_strbuf_t scratch; /* AsString results of convert */
    proc_attraction_wire_t wire;
};

/* re matches s[0..n), counting a match that gave up at PCRE2's limits. */
bool proc_attraction_match(proc_attraction_t *p, proc_attraction_re_t *re, const char *s, size_t n);
void proc_attraction_wire_free(proc_attraction_wire_t *w);

#endif
