/* json.h: a strict JSON reader (RFC 8259) into a read-only tree in an arena (json.c), for the
 * OTLP/JSON decoder and any component that reads JSON.
 *
 * Why not a general-purpose library: jansson builds a tree of separately malloc'd nodes with a
 * hash table per object, and building and freeing it cost ~85% of decoding an OTLP/JSON request.
 * This reader makes one copy of the body, unescapes strings in place inside it (each string is
 * NUL-terminated where its closing quote was), and bump-allocates the nodes in the arena: one
 * free for the whole tree.
 *
 * What it accepts is RFC 8259 with jansson's choices where the RFC leaves them open:
 * - strings must be valid UTF-8 (no overlong forms, no surrogates, nothing above U+10FFFF);
 *   \u escapes must pair surrogates; \u0000 is refused (strings are NUL-terminated);
 * - an integer (no fraction, no exponent) that fits int64 is OM_JSON_INTEGER; any other number
 *   is OM_JSON_REAL (a bare integer beyond int64 too, where jansson refuses it); a number
 *   whose magnitude overflows a double is refused;
 * - objects keep every member in document order, a key given twice included;
 * - nesting deeper than OM_JSON_MAX_DEPTH arrays and objects is refused (jansson's limit);
 * - any value may be the top level; only whitespace may follow it. */
#ifndef OM_JSON_H
#define OM_JSON_H

#include "om.h"

#define OM_JSON_MAX_DEPTH 2048

typedef enum {
    OM_JSON_NULL,
    OM_JSON_FALSE,
    OM_JSON_TRUE,
    OM_JSON_INTEGER,
    OM_JSON_REAL,
    OM_JSON_STRING,
    OM_JSON_ARRAY,
    OM_JSON_OBJECT,
} om_json_type_t;

typedef struct om_json om_json_t;
typedef struct om_json_member om_json_member_t;

/* All pointers point into the arena the tree was parsed into. */
struct om_json {
    uint32_t type; /* om_json_type_t */
    uint32_t n;    /* STRING: bytes (without the NUL); ARRAY: elements; OBJECT: members */
    union {
        int64_t i;                       /* INTEGER */
        double r;                        /* REAL */
        const char *s;                   /* STRING: n bytes of UTF-8, then a NUL */
        const om_json_t *items;          /* ARRAY */
        const om_json_member_t *members; /* OBJECT, in document order */
    } u;
};

struct om_json_member {
    const char *key; /* NUL-terminated, key_len bytes */
    uint32_t key_len;
    om_json_t value;
};

/* Parses len bytes at data (not modified; need not be NUL-terminated) into a tree allocated in
 * arena a; *root points into it. Returns 0, OM_EINVAL with "invalid JSON at line L column C:
 * problem" in err, or OM_ENOMEM (OM_ETOOBIG when a's cap is reached). Any thread. */
int om_json_parse(om_arena_t *a, const char *data, size_t len, const om_json_t **root,
                  om_err_t *err);

/* The value of key in object obj: of members with that key the last, as most JSON readers
 * keep. NULL when obj is NULL or no object, or has no such key. */
const om_json_t *om_json_get(const om_json_t *obj, const char *key);

#endif
