/* config.h: loading otelcol-style YAML into a node tree (core-internal).
 *
 * Each file is parsed once with libyaml into om_node_t trees that keep file:line:column;
 * ${env:VAR}, ${VAR}, ${env:VAR:-default} and $$ are expanded in scalars as they are read;
 * later files merge over earlier ones (maps merge key by key, recursively; any other value,
 * sequences included, replaces the earlier one), as otelcol merges repeated --config. */
#ifndef OM_CONFIG_H
#define OM_CONFIG_H

#include "om.h"

typedef struct om_config {
    om_node_t *root; /* a MAP; owned */
    /* Everything else the tree points at (file names, node memory) is owned here too. */
    char **files;
    size_t n_files;
} om_config_t;

/* Parse and merge the sources uris[0..n), over `defaults` (YAML text; NULL: none), as
 * otelcol's --config: a plain path or file:PATH (a file), env:VAR (the whole YAML in a
 * variable), yaml:TEXT (inline YAML, e.g. "yaml:exporters::debug::verbosity: detailed");
 * http and https URIs and unknown schemes are errors. In every source a key holding "::" is
 * a path of nested keys (otelcol's confmap delimiter). Messages name a file by its path and
 * any other source by its URI (e.g. "env:OTELCOL_CFG:3:7: ..."). On success *out is the
 * config and 0 is returned. On failure each problem is added to d (YAML syntax errors with
 * file:line:column, unreadable files, a top level that is not a map) and OM_ECONFIG is
 * returned; *out is NULL. An unset ${VAR} without default expands to "" and logs a warning,
 * as otelcol does; ${file:PATH} is the file's content. */
int om_config_load(const char *defaults, const char *const *uris, size_t n, om_config_t **out,
                   om_diags_t *d);
/* The same from a string in memory; name is used as the file name in messages. */
int om_config_load_string(const char *name, const char *yaml, size_t len, om_config_t **out,
                          om_diags_t *d);
void om_config_free(om_config_t *c);

/* Expand ${...} and $$ in s. Returns an om_malloc'd string or NULL (ENOMEM, or a malformed
 * reference such as "${env:" without "}" : then err says what). Exposed for tests. */
char *om_config_expand_env(const char *s, om_err_t *err);

#endif
