/* attraction.h: the attribute actions the `attributes` and `resource` processors share, as
 * otelcol-contrib shares its internal/coreinternal/attraction package between them. Not a
 * component: two components use it (processors/attributes, processors/resource), each
 * embedding the action list in its config.
 *
 * An action list is applied to one attribute list at a time, in config order:
 *   insert, update, upsert   set `key` from `value`, `from_attribute` (or `default_value` when
 *                            those give nothing): insert only when absent, update only when
 *                            present, upsert either way.
 *   delete                   remove `key` and every key `pattern` matches.
 *   hash                     replace the values of `key` and of the keys `pattern` matches by
 *                            the lowercase hex SHA-256 of their bytes (otelcol-contrib's
 *                            default since the coreinternal.attraction.hash.sha256 gate was
 *                            removed): a string's bytes, a bool as one byte 1/0, an int or a
 *                            double's bits as 8 bytes little-endian; other kinds become "".
 *   extract                  match `pattern` against `key`'s string value and upsert one
 *                            string attribute per named group (an unset group gives "").
 *   convert                  change `key`'s value to converted_type int, double or string, as
 *                            otelcol converts (a string that does not parse is left as it is).
 * `from_context` (client metadata, auth data, client.address) needs request context that
 * otelmon's batches do not carry: it is refused with a config error.
 *
 * Patterns are compiled with PCRE2 (attraction_regex.c explains how close to Go's RE2 that
 * is). Loop thread only (a compiled list keeps match scratch space). */
#ifndef PROC_ATTRACTION_H
#define PROC_ATTRACTION_H

#include "om.h"

/* One action as written in the config (otelcol's attraction.ActionKeyValue). */
typedef struct proc_attraction_cfg {
    char *key;
    char *action;
    om_anyvalue_t *value;
    om_anyvalue_t *default_value;
    char *from_attribute;
    char *from_context;
    char *pattern;
    char *converted_type;
} proc_attraction_cfg_t;

/* The field table of one action: the element table of an OM_F_SECLIST field. */
extern const om_field_t proc_attraction_fields[];

/* The actions of list_key ("actions", "attributes") checked and their patterns compiled, as
 * otelcol's NewAttrProc checks them; problems name the key ("actions[2]::pattern"). Returns 0
 * or OM_ECONFIG (om_err_at) or OM_ENOMEM. No I/O. */
int proc_attraction_validate(const om_seclist_t *actions, const char *list_key, om_err_t *err);

typedef struct proc_attraction proc_attraction_t;

/* Compile a validated action list; the list (and the values in it) must outlive the result.
 * Returns 0, OM_ECONFIG or OM_ENOMEM (err says which). */
int proc_attraction_new(const om_seclist_t *actions, const char *list_key, proc_attraction_t **out,
                        om_err_t *err);
void proc_attraction_free(proc_attraction_t *p);

/* Whether some action would change a on the way: false exactly when applying the actions
 * leaves a as it is, so a batch nothing applies to need not be edited. (True may still end
 * with the list it began with, as an insert a later action deletes.) Before the first action
 * that changes the list the list is as it was, so each action is asked about the list as it
 * is; the first that would change it decides. Reads only: works on any batch. */
bool proc_attraction_would_change(proc_attraction_t *p, const om_attrs_t *a);

/* Apply the actions to a, whose batch is being edited (om_batch_edit). Returns 1 when the
 * list changed, 0 when not, OM_ETOOBIG / OM_ENOMEM when the batch's edit room ran out (the
 * actions before stay applied). */
int proc_attraction_apply(proc_attraction_t *p, om_attrs_t *a);

/* Whether every action can run on the wire bytes (proc_attraction_wire_apply): insert,
 * update, upsert (from value, from_attribute or default_value) and delete. */
bool proc_attraction_wire_ok(const proc_attraction_t *p);
/* Apply the actions to the attribute lists of `level` (OM_LEVEL_SPAN, _LOG, _DATAPOINT of b's
 * signal, or OM_LEVEL_RESOURCE) on b's wire bytes, without decoding b (attraction_wire.c): b
 * must be wire-editable (om_batch_wire_editable). Returns 0 (b edited, or left as it was when
 * nothing changes); OM_ENOTSUP (not for these actions, this level or this batch) or OM_EINVAL
 * (bytes it does not follow): b is as it was, take the decoding path; OM_ETOOBIG / OM_ENOMEM
 * (err says which). */
int proc_attraction_wire_apply(proc_attraction_t *p, om_batch_t *b, om_level_t level,
                               om_err_t *err);

/* Matches that gave up at PCRE2's limits (counted as no match), since the list was made. */
uint64_t proc_attraction_limit_hits(const proc_attraction_t *p);

/* ---- the regex wrapper (attraction_regex.c) ---------------------------------------------- */

typedef struct proc_attraction_re proc_attraction_re_t;

/* Compile pattern. On failure returns OM_EINVAL with PCRE2's message and the offset in the
 * pattern in msg ("missing closing parenthesis at offset 4"), or OM_ENOMEM. */
int proc_attraction_re_compile(const char *pattern, proc_attraction_re_t **out, char *msg,
                               size_t msg_len);
void proc_attraction_re_free(proc_attraction_re_t *re);
/* Capturing groups (not counting the whole match). */
uint32_t proc_attraction_re_groups(const proc_attraction_re_t *re);
/* The name of group i (1-based), or NULL when unnamed. */
const char *proc_attraction_re_group_name(const proc_attraction_re_t *re, uint32_t i);
/* Search s[0..len) anywhere, as Go's MatchString does: 1 when it matches, 0 when not, also when
 * PCRE2 gave up at its match limits (then *limit_hit is set, if given). */
int proc_attraction_re_match(proc_attraction_re_t *re, const char *s, size_t len, bool *limit_hit);
/* After a match: group i's bytes (0 the whole match); false when the group took no part. */
bool proc_attraction_re_group(const proc_attraction_re_t *re, uint32_t i, size_t *start,
                              size_t *end);

#endif
