/* cpus.c: how many CPUs this process may use (om_cpu_count) and how many threads the host's
 * worker pool gets (om_workers_default_size), the way Go's runtime sizes GOMAXPROCS since Go
 * 1.25, so that OtelMon in a container uses what otelcol would:
 * - the CPUs of the affinity mask (sched_getaffinity);
 * - lowered to the cgroup's CPU quota rounded up, but not below 2 (Go's floor: a quota of 0.5
 *   CPU still gets two threads, which the kernel throttles together rather than one thread
 *   waiting for the other);
 * - the quota read where the process's own cgroup is (/proc/self/cgroup and
 *   /proc/self/mountinfo, so a systemd unit's CPUQuota= is seen, not only a container's root
 *   cgroup), cgroup v2 cpu.max or else v1 cpu.cfs_quota_us / cpu.cfs_period_us. Unlike Go we
 *   take the tightest quota of the cgroup and its visible ancestors: the kernel enforces
 *   each of them (golang/go#81180).
 * - GOMAXPROCS in the environment overrides the pool's size: what an otelcol deployment
 *   already sets (Kubernetes manifests commonly fill it from the container's CPU limit), so a
 *   drop-in replacement honours the same knob.
 * Read once, at start-up (om_host_init). The parsers take text so that tests can feed them
 * fake files (test/unit/cpus_test.c). */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpus.h"
#include "om.h"

#define QUOTA_CPUS_MAX 4096u
#define WORKERS_MAX 1024u

static bool parse_u64(const char *s, const char **end, unsigned long long *v)
{
    char *e;
    while (*s == ' ' || *s == '\t') {
        s++;
    }
    if (*s < '0' || *s > '9') {
        return false;
    }
    errno = 0;
    *v = strtoull(s, &e, 10);
    *end = e;
    return errno == 0;
}

/* The rest of a line is blank. */
static bool at_eol(const char *s)
{
    while (*s == ' ' || *s == '\t') {
        s++;
    }
    return *s == '\0' || *s == '\n';
}

static unsigned quota_cpus(unsigned long long quota, unsigned long long period)
{
    if (period == 0 || quota == 0) {
        return 0;
    }
    unsigned long long n = quota / period + (quota % period != 0);
    return n > QUOTA_CPUS_MAX ? QUOTA_CPUS_MAX : (unsigned)n;
}

unsigned om__cpu_max_cpus(const char *text)
{
    const char *p;
    unsigned long long quota, period;
    if (text == NULL || !parse_u64(text, &p, &quota) || !parse_u64(p, &p, &period) || !at_eol(p)) {
        return 0; /* "max 100000" (no limit) lands here too */
    }
    return quota_cpus(quota, period);
}

unsigned om__cfs_quota_cpus(const char *quota_text, const char *period_text)
{
    const char *p;
    unsigned long long quota, period;
    if (quota_text == NULL || period_text == NULL || !parse_u64(quota_text, &p, &quota) ||
        !at_eol(p) || !parse_u64(period_text, &p, &period) || !at_eol(p)) {
        return 0; /* "-1": no limit */
    }
    return quota_cpus(quota, period);
}

unsigned om__cpu_count_of(unsigned affinity, unsigned quota)
{
    unsigned n = affinity > 0 ? affinity : 1;
    if (quota > 0) {
        unsigned q = quota < 2 ? 2 : quota;
        n = q < n ? q : n;
    }
    return n;
}

/* The span [s, e) equals word. */
static bool span_is(const char *s, const char *e, const char *word)
{
    size_t n = strlen(word);
    return (size_t)(e - s) == n && memcmp(s, word, n) == 0;
}

/* The comma-separated list [s, e) has the item word. */
static bool list_has(const char *s, const char *e, const char *word)
{
    while (s < e) {
        const char *c = memchr(s, ',', (size_t)(e - s));
        const char *end = c != NULL ? c : e;
        if (span_is(s, end, word)) {
            return true;
        }
        s = end + 1;
    }
    return false;
}

/* Split a line [s, e) into up to max space-separated fields. Returns how many. */
static size_t fields_of(const char *s, const char *e, const char **fs, const char **fe, size_t max)
{
    size_t n = 0;
    while (s < e && n < max) {
        while (s < e && *s == ' ') {
            s++;
        }
        if (s == e) {
            break;
        }
        fs[n] = s;
        while (s < e && *s != ' ') {
            s++;
        }
        fe[n++] = s;
    }
    return n;
}

/* /proc/self/cgroup: "ID:CONTROLLERS:PATH" lines. The path of the v2 line ("0::PATH") or of
 * the v1 line whose controllers include "cpu". */
static bool cgroup_path(const char *text, bool v2, const char **ps, const char **pe)
{
    for (const char *l = text; l != NULL && *l != '\0';) {
        const char *nl = strchr(l, '\n');
        const char *e = nl != NULL ? nl : l + strlen(l);
        const char *c1 = memchr(l, ':', (size_t)(e - l));
        const char *c2 = c1 != NULL ? memchr(c1 + 1, ':', (size_t)(e - c1 - 1)) : NULL;
        if (c2 != NULL) {
            bool match = v2 ? span_is(l, c1, "0") && c2 == c1 + 1 : list_has(c1 + 1, c2, "cpu");
            if (match && c2 + 1 < e && c2[1] == '/') {
                *ps = c2 + 1;
                *pe = e;
                return true;
            }
        }
        l = nl != NULL ? nl + 1 : NULL;
    }
    return false;
}

/* mountinfo: "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS".
 * The root and mount point of the cgroup2 mount, or of the v1 cgroup mount of the cpu
 * controller. Mount points with escaped characters (\040) are not unescaped: cgroup mounts
 * do not have them. */
static bool cgroup_mount(const char *text, bool v2, const char **rs, const char **re,
                         const char **ms, const char **me)
{
    for (const char *l = text; l != NULL && *l != '\0';) {
        const char *nl = strchr(l, '\n');
        const char *e = nl != NULL ? nl : l + strlen(l);
        const char *fs[32], *fe[32];
        size_t n = fields_of(l, e, fs, fe, 32);
        size_t dash = 6;
        while (dash < n && !span_is(fs[dash], fe[dash], "-")) {
            dash++;
        }
        if (n >= 5 && dash + 1 < n) {
            const char *type_s = fs[dash + 1], *type_e = fe[dash + 1];
            bool match = v2 ? span_is(type_s, type_e, "cgroup2")
                            : span_is(type_s, type_e, "cgroup") && dash + 3 < n &&
                                  list_has(fs[dash + 3], fe[dash + 3], "cpu");
            if (match) {
                *rs = fs[3];
                *re = fe[3];
                *ms = fs[4];
                *me = fe[4];
                return true;
            }
        }
        l = nl != NULL ? nl + 1 : NULL;
    }
    return false;
}

bool om__cgroup_dir(const char *proc_cgroup, const char *mountinfo, bool v2, char *mount, char *dir,
                    size_t cap)
{
    const char *ps, *pe, *rs, *re, *ms, *me;
    if (proc_cgroup == NULL || mountinfo == NULL || !cgroup_path(proc_cgroup, v2, &ps, &pe) ||
        !cgroup_mount(mountinfo, v2, &rs, &re, &ms, &me)) {
        return false;
    }
    /* The path relative to the mount's root; a path outside it (the process moved out of
     * what the namespace shows) falls back to the mount itself. */
    size_t rlen = (size_t)(re - rs);
    if (rlen == 1 && *rs == '/') {
        rlen = 0;
    }
    if ((size_t)(pe - ps) >= rlen && memcmp(ps, rs, rlen) == 0 &&
        (ps + rlen == pe || ps[rlen] == '/')) {
        ps += rlen;
    } else {
        ps = pe;
    }
    while (pe > ps && pe[-1] == '/') {
        pe--;
    }
    int m = snprintf(mount, cap, "%.*s", (int)(me - ms), ms);
    int d = snprintf(dir, cap, "%.*s%.*s", (int)(me - ms), ms, (int)(pe - ps), ps);
    return m > 0 && (size_t)m < cap && d > 0 && (size_t)d < cap;
}

/* The first line of a small file (with its newline), or false. */
static bool read_line(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return false;
    }
    bool ok = fgets(buf, (int)cap, f) != NULL;
    fclose(f);
    return ok;
}

/* The quota of one cgroup directory, 0 when it has none. */
static unsigned dir_quota(const char *dir, bool v2)
{
    char path[4200], a[128], b[128];
    if (v2) {
        snprintf(path, sizeof path, "%s/cpu.max", dir);
        return read_line(path, a, sizeof a) ? om__cpu_max_cpus(a) : 0;
    }
    snprintf(path, sizeof path, "%s/cpu.cfs_quota_us", dir);
    if (!read_line(path, a, sizeof a)) {
        return 0;
    }
    snprintf(path, sizeof path, "%s/cpu.cfs_period_us", dir);
    return read_line(path, b, sizeof b) ? om__cfs_quota_cpus(a, b) : 0;
}

unsigned om__cgroup_quota(const char *mount, const char *dir, bool v2)
{
    char cur[4096];
    size_t mlen = strlen(mount);
    if (strlen(dir) >= sizeof cur || strncmp(dir, mount, mlen) != 0) {
        return 0;
    }
    strcpy(cur, dir);
    unsigned best = 0;
    for (;;) {
        unsigned q = dir_quota(cur, v2);
        if (q > 0 && (best == 0 || q < best)) {
            best = q;
        }
        if (strlen(cur) <= mlen) {
            break;
        }
        char *slash = strrchr(cur + mlen, '/');
        if (slash == NULL) {
            break;
        }
        *slash = '\0'; /* the parent; stops at the mount itself */
        if (strlen(cur) < mlen) {
            break;
        }
    }
    return best;
}

unsigned om__workers_size(const char *text, unsigned cpus)
{
    const char *end;
    unsigned long long v;
    if (text != NULL && parse_u64(text, &end, &v) && at_eol(end) && v >= 1 && v <= WORKERS_MAX) {
        return (unsigned)v;
    }
    return cpus > 0 ? cpus : 1;
}

/* A whole small file (/proc files report size 0, so read until the end), NUL-terminated. */
static char *read_all(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return NULL;
    }
    size_t cap = 8192, len = 0;
    char *buf = om_malloc(cap);
    while (buf != NULL) {
        len += fread(buf + len, 1, cap - 1 - len, f);
        if (len < cap - 1 || cap >= (size_t)4 << 20) {
            break;
        }
        char *bigger = om_realloc(buf, cap * 2);
        if (bigger == NULL) {
            om_free(buf);
            buf = NULL;
            break;
        }
        buf = bigger;
        cap *= 2;
    }
    fclose(f);
    if (buf != NULL) {
        buf[len] = '\0';
    }
    return buf;
}

/* The CPUs of the affinity mask (libuv's count may already apply a quota its own way). */
static unsigned affinity_cpus(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) {
        return (unsigned)CPU_COUNT(&set);
    }
    return uv_available_parallelism();
}

/* The tightest quota of this process's cgroup (v2, else v1), 0 when none. */
static unsigned process_quota(void)
{
    char *cg = read_all("/proc/self/cgroup");
    char *mi = read_all("/proc/self/mountinfo");
    char mount[4096], dir[4096];
    unsigned q = 0;
    for (int v2 = 1; v2 >= 0 && q == 0; v2--) {
        if (om__cgroup_dir(cg, mi, v2 != 0, mount, dir, sizeof dir)) {
            q = om__cgroup_quota(mount, dir, v2 != 0);
        }
    }
    om_free(cg);
    om_free(mi);
    return q;
}

unsigned om_cpu_count(void)
{
    static unsigned cached;
    if (cached == 0) {
        cached = om__cpu_count_of(affinity_cpus(), process_quota());
    }
    return cached;
}

unsigned om_workers_default_size(void)
{
    return om__workers_size(getenv("GOMAXPROCS"), om_cpu_count());
}
