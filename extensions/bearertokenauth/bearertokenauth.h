/* bearertokenauth.h: private to the bearertokenauth extension folder (and its tests). */
#ifndef EXT_BEARERTOKENAUTH_H
#define EXT_BEARERTOKENAUTH_H

#include "om.h"

/* otelcol-contrib's extension/bearertokenauthextension Config. */
typedef struct ext_bearer_cfg {
    char *scheme;        /* "Bearer"; "" sends and expects the token alone */
    char *token;         /* one token */
    om_strlist_t tokens; /* several (a server accepts any; a client sends the first) */
    char *filename;      /* tokens, one a line, read again whenever the file changes */
    char *header;        /* "Authorization" */
} ext_bearer_cfg_t;

extern const om_factory_t ext_bearertokenauth_factory;

/* The largest token file read. */
#define EXT_BEARER_FILE_MAX (64 * 1024)

/* Tests: how many tokens the instance holds now. */
size_t ext_bearer_token_count(void *self);

#endif
