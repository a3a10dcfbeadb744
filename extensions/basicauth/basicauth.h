/* basicauth.h: private to the basicauth extension folder (and its tests and fuzz target).
 *
 * htpasswd.c reads htpasswd text and checks passwords against it (the hash forms otelcol's
 * go-htpasswd accepts); basicauth.c is the extension: config, the Authorization header, the
 * server and client sides. */
#ifndef EXT_BASICAUTH_H
#define EXT_BASICAUTH_H

#include "om.h"

/* ------------------------------------------------------------------------------------------ */
/* Config: otelcol-contrib's extension/basicauthextension                                     */

typedef struct ext_basic_htpasswd_cfg {
    char *file;    /* an htpasswd file, read at start */
    char *inline_; /* htpasswd lines, read after the file (so they win for the same user) */
} ext_basic_htpasswd_cfg_t;

typedef struct ext_basic_client_cfg {
    char *username, *password;
    char *username_file, *password_file; /* win over the values; read again when they change */
} ext_basic_client_cfg_t;

typedef struct ext_basic_cfg {
    bool htpasswd_present, client_present; /* which side the instance is */
    ext_basic_htpasswd_cfg_t htpasswd;
    ext_basic_client_cfg_t client_auth;
} ext_basic_cfg_t;

extern const om_factory_t ext_basicauth_factory;

/* Tests: a server instance's users now (NULL for a client). */
struct ext_basic_htpasswd *ext_basic_table(void *self);
/* Tests: the hashing budget (see basicauth.c): at most budget_ns of slow hashes per window_ns. */
void ext_basic_set_hash_budget(void *self, uint64_t budget_ns, uint64_t window_ns);

/* ------------------------------------------------------------------------------------------ */
/* htpasswd (htpasswd.c)                                                                       */

/* The hash forms, in the order go-htpasswd's DefaultSystems tries them. */
typedef enum {
    EXT_BASIC_APR1,   /* $apr1$salt$hash: Apache's MD5, ours over OpenSSL's MD5 */
    EXT_BASIC_MD5,    /* $1$: MD5-crypt, libcrypt */
    EXT_BASIC_SHA,    /* {SHA}base64(sha1(pw)) */
    EXT_BASIC_BCRYPT, /* $2a$ $2b$ $2x$ $2y$: libcrypt */
    EXT_BASIC_SSHA,   /* {SSHA}base64(sha1(pw salt) salt) */
    EXT_BASIC_CRYPT,  /* $5$ $6$: SHA-crypt; $y$ $gy$ $7$: yescrypt, scrypt; libcrypt */
    EXT_BASIC_PLAIN,  /* anything else: the password itself ({PLAIN}pw too), as go-htpasswd */
} ext_basic_form_t;

typedef struct ext_basic_htpasswd ext_basic_htpasswd_t;

/* A line that is ignored, or a user whose password is plain text: line is 1-based, user may
 * be NULL; problem is a short static text. No hash and no password is ever passed. */
typedef void (*ext_basic_note_fn)(void *arg, size_t line, const char *user, const char *problem);

/* The longest line, as go's bufio.Scanner reads it: a longer one fails the whole text. */
#define EXT_BASIC_LINE_MAX (64 * 1024)

/* Parse htpasswd text (len bytes; lines "user:encoded", surrounding blanks and empty lines
 * ignored; a later line for the same user wins). Lines that do not parse are skipped and
 * noted; plain-text passwords are accepted and noted. Returns 0, OM_EINVAL (a line longer
 * than EXT_BASIC_LINE_MAX; err says which) or OM_ENOMEM. Any thread. */
int ext_basic_htpasswd_parse(const char *text, size_t len, ext_basic_note_fn note, void *arg,
                             ext_basic_htpasswd_t **out, om_err_t *err);
/* Whether user has password pw. Users not in the table never match. Successful and failed
 * passwords are remembered per user (as keyed digests), so a client that sends the same
 * credentials again costs one SHA-256, not another bcrypt. Not thread-safe (the caches). */
bool ext_basic_htpasswd_match(ext_basic_htpasswd_t *h, const char *user, size_t ulen,
                              const char *pw, size_t plen);
/* Whether ext_basic_htpasswd_match would run a slow libcrypt hash (bcrypt, SHA-crypt,
 * yescrypt, MD5-crypt) for these credentials: user's entry has such a form and pw is not one of
 * its remembered passwords. Costs one HMAC-SHA256. */
bool ext_basic_htpasswd_costly(ext_basic_htpasswd_t *h, const char *user, size_t ulen,
                               const char *pw, size_t plen);
/* Tests: the users and the form of user's entry (-1: none). */
size_t ext_basic_htpasswd_users(const ext_basic_htpasswd_t *h);
int ext_basic_htpasswd_form(const ext_basic_htpasswd_t *h, const char *user);
/* Wipes and frees; NULL does nothing. */
void ext_basic_htpasswd_free(ext_basic_htpasswd_t *h);

/* Apache's MD5 ($apr1$) of pw with salt: the 22 characters after "$apr1$salt$", into out
 * (23 bytes with the NUL). */
void ext_basic_apr1(const char *pw, size_t plen, const char *salt, size_t slen, char out[23]);

/* Standard base64 with padding, as Go's base64.StdEncoding.DecodeString: CR and LF are
 * skipped, anything else outside the alphabet fails. Writes at most cap bytes; returns the
 * length, or -1 when src is not base64 or does not fit. */
long ext_basic_b64_decode(const char *src, size_t len, uint8_t *out, size_t cap);

/* ------------------------------------------------------------------------------------------ */
/* The Authorization header (basicauth.c)                                                     */

/* The largest credentials decoded from a header. */
#define EXT_BASIC_CRED_MAX 4096

/* "Basic base64(user:password)" as Go's parseBasicAuth reads it: the scheme in any case with
 * one space, then base64; the user is what comes before the first ':'. buf (cap bytes) gets
 * the decoded credentials, which user and pw point into (not NUL-terminated). Returns 0, or
 * OM_EUNAUTH with *why: "no basic auth provided" (NULL or empty), "invalid authorization
 * scheme prefix", "invalid authorization format" (not base64, too long, no colon). */
int ext_basic_parse_authorization(const char *value, uint8_t *buf, size_t cap, const char **user,
                                  size_t *ulen, const char **pw, size_t *plen, const char **why);

#endif
