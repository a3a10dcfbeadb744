/* attraction_regex.c: the patterns of attribute actions (and the attributes processor's
 * include/exclude regexps), on PCRE2.
 *
 * otelcol compiles them with Go's regexp (RE2 syntax, linear time). PCRE2 is set up to behave
 * the same on what RE2 accepts:
 * - UTF-8 mode, with invalid UTF-8 in a subject matched as bytes that no character matches
 *   (PCRE2_MATCH_INVALID_UTF) rather than failing the match;
 * - `$` matches only at the very end (PCRE2_DOLLAR_ENDONLY), as RE2's does without (?m);
 * - \d \w \s \b stay ASCII (no PCRE2_UCP), as in RE2; `.` does not match \n, as in RE2;
 * - a search anywhere in the subject (unanchored), as MatchString and FindStringSubmatch;
 *   both take the leftmost match and, among alternatives, the first (Perl's order, which RE2
 *   follows too).
 * Where they differ: PCRE2 accepts more (backreferences, lookaround, possessive quantifiers,
 * recursion), which RE2 refuses; a config using them works here and not in otelcol. Against
 * catastrophic backtracking (which RE2 cannot have), every match runs under PCRE2's match
 * limit (MATCH_LIMIT steps) and heap limit; a match that hits a limit counts as no match and
 * is reported to the caller, which counts it. JIT is used when PCRE2 has it.
 *
 * PCRE2 allocates through om_malloc, so fault injection reaches it too. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdio.h>
#include <string.h>

#include "attraction.h"

/* Steps one match may take: far more than any sane pattern needs on an attribute value, and
 * about a millisecond of CPU at worst. */
#define MATCH_LIMIT 100000
/* KiB of heap a match may use for backtracking. */
#define HEAP_LIMIT_KIB 4096

struct proc_attraction_re {
    pcre2_general_context *gctx;
    pcre2_match_context *mctx;
    pcre2_code *code;
    pcre2_match_data *md;
    uint32_t groups;
    char **names; /* [groups + 1], NULL where unnamed */
    bool matched;
};

static void *re_malloc(PCRE2_SIZE n, void *arg)
{
    (void)arg;
    return om_malloc(n);
}

static void re_free(void *p, void *arg)
{
    (void)arg;
    om_free(p);
}

void proc_attraction_re_free(proc_attraction_re_t *re)
{
    if (re == NULL) {
        return;
    }
    for (uint32_t i = 0; re->names != NULL && i <= re->groups; i++) {
        om_free(re->names[i]);
    }
    om_free(re->names);
    pcre2_match_data_free(re->md);
    pcre2_code_free(re->code);
    pcre2_match_context_free(re->mctx);
    pcre2_general_context_free(re->gctx);
    om_free(re);
}

/* The group names from PCRE2's name table: entries of a 2-byte group number (big-endian)
 * followed by the NUL-terminated name. */
static int read_names(proc_attraction_re_t *re)
{
    uint32_t count = 0, entry = 0;
    PCRE2_SPTR table = NULL;
    pcre2_pattern_info(re->code, PCRE2_INFO_CAPTURECOUNT, &re->groups);
    pcre2_pattern_info(re->code, PCRE2_INFO_NAMECOUNT, &count);
    pcre2_pattern_info(re->code, PCRE2_INFO_NAMEENTRYSIZE, &entry);
    pcre2_pattern_info(re->code, PCRE2_INFO_NAMETABLE, &table);
    re->names = om_calloc(re->groups + 1, sizeof *re->names);
    if (re->names == NULL) {
        return OM_ENOMEM;
    }
    for (uint32_t i = 0; i < count; i++) {
        PCRE2_SPTR e = table + (size_t)i * entry;
        uint32_t g = ((uint32_t)e[0] << 8) | e[1];
        if (g <= re->groups && re->names[g] == NULL) {
            re->names[g] = om_strdup((const char *)e + 2);
            if (re->names[g] == NULL) {
                return OM_ENOMEM;
            }
        }
    }
    return 0;
}

static int compile_error(int code, PCRE2_SIZE offset, char *msg, size_t msg_len)
{
    PCRE2_UCHAR text[160];
    if (pcre2_get_error_message(code, text, sizeof text) < 0) {
        snprintf((char *)text, sizeof text, "error %d", code);
    }
    snprintf(msg, msg_len, "%s at offset %zu", (const char *)text, (size_t)offset);
    return code == PCRE2_ERROR_HEAPLIMIT || code == PCRE2_ERROR_NOMEMORY ? OM_ENOMEM : OM_EINVAL;
}

int proc_attraction_re_compile(const char *pattern, proc_attraction_re_t **out, char *msg,
                               size_t msg_len)
{
    *out = NULL;
    snprintf(msg, msg_len, "out of memory");
    proc_attraction_re_t *re = om_calloc(1, sizeof *re);
    if (re == NULL) {
        return OM_ENOMEM;
    }
    re->gctx = pcre2_general_context_create(re_malloc, re_free, NULL);
    pcre2_compile_context *cctx = re->gctx ? pcre2_compile_context_create(re->gctx) : NULL;
    re->mctx = re->gctx ? pcre2_match_context_create(re->gctx) : NULL;
    if (cctx == NULL || re->mctx == NULL) {
        pcre2_compile_context_free(cctx);
        proc_attraction_re_free(re);
        return OM_ENOMEM;
    }
    int code = 0;
    PCRE2_SIZE offset = 0;
    re->code = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
                             PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | PCRE2_DOLLAR_ENDONLY, &code,
                             &offset, cctx);
    pcre2_compile_context_free(cctx);
    if (re->code == NULL) {
        proc_attraction_re_free(re);
        return compile_error(code, offset, msg, msg_len);
    }
    /* JIT is an optimisation: without it (no JIT support, or out of memory) matching still
     * works, interpreted. */
    (void)pcre2_jit_compile(re->code, PCRE2_JIT_COMPLETE);
    pcre2_set_match_limit(re->mctx, MATCH_LIMIT);
    pcre2_set_heap_limit(re->mctx, HEAP_LIMIT_KIB);
    re->md = pcre2_match_data_create_from_pattern(re->code, re->gctx);
    if (re->md == NULL || read_names(re) != 0) {
        proc_attraction_re_free(re);
        return OM_ENOMEM;
    }
    msg[0] = '\0';
    *out = re;
    return 0;
}

uint32_t proc_attraction_re_groups(const proc_attraction_re_t *re)
{
    return re->groups;
}

const char *proc_attraction_re_group_name(const proc_attraction_re_t *re, uint32_t i)
{
    return i >= 1 && i <= re->groups ? re->names[i] : NULL;
}

int proc_attraction_re_match(proc_attraction_re_t *re, const char *s, size_t len, bool *limit_hit)
{
    int rc = pcre2_match(re->code, (PCRE2_SPTR)(s != NULL ? s : ""), len, 0, 0, re->md, re->mctx);
    re->matched = rc >= 0;
    if (rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_HEAPLIMIT ||
        rc == PCRE2_ERROR_DEPTHLIMIT || rc == PCRE2_ERROR_JIT_STACKLIMIT ||
        rc == PCRE2_ERROR_NOMEMORY) {
        if (limit_hit != NULL) {
            *limit_hit = true;
        }
    }
    return re->matched ? 1 : 0;
}

bool proc_attraction_re_group(const proc_attraction_re_t *re, uint32_t i, size_t *start,
                              size_t *end)
{
    if (!re->matched || i > re->groups || i >= pcre2_get_ovector_count(re->md)) {
        return false;
    }
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(re->md);
    if (ov[2 * i] == PCRE2_UNSET || ov[2 * i + 1] < ov[2 * i]) {
        return false; /* unset, or \K moved the start past the end */
    }
    *start = ov[2 * i];
    *end = ov[2 * i + 1];
    return true;
}
