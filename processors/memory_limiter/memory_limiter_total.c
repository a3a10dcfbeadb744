/* memory_limiter_total.c: the memory that limit_percentage and spike_limit_percentage are
 * percentages of, as otelcol's iruntime.TotalMemory: the cgroup's memory limit when the
 * process has one, else the machine's total memory. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memory_limiter.h"

/* cgroup v1's "no limit": the largest page-aligned int64. */
#define V1_UNLIMITED UINT64_C(9223372036854771712)

/* The first line of root + path, without its newline; false when it cannot be read. */
static bool read_line(const char *root, const char *path, char *line, size_t n)
{
    char full[512];
    snprintf(full, sizeof full, "%s%s", root, path);
    FILE *f = fopen(full, "re");
    if (f == NULL) {
        return false;
    }
    bool ok = fgets(line, (int)n, f) != NULL;
    fclose(f);
    if (ok) {
        line[strcspn(line, "\n")] = '\0';
    }
    return ok;
}

static bool parse_u64(const char *s, uint64_t *out)
{
    if (s[0] < '0' || s[0] > '9') {
        return false;
    }
    errno = 0;
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno == ERANGE || (*end != '\0' && *end != ' ')) {
        return false;
    }
    *out = v;
    return true;
}

/* A limit from a v2 memory.max or v1 memory.limit_in_bytes file: false when the file is
 * missing or says there is none ("max", or v1's unlimited value). */
static bool limit_file(const char *root, const char *path, uint64_t *out)
{
    char line[128];
    uint64_t v;
    if (!read_line(root, path, line, sizeof line) || !parse_u64(line, &v) || v == 0 ||
        v >= V1_UNLIMITED) {
        return false;
    }
    *out = v;
    return true;
}

/* cgroup v2: the process's own cgroup ("0::/system.slice/x.service" in /proc/self/cgroup),
 * then the root the process sees (a container's own cgroup). */
static bool cgroup_limit(const char *root, uint64_t *out)
{
    FILE *f = NULL;
    char full[512], line[400];
    snprintf(full, sizeof full, "%s/proc/self/cgroup", root);
    f = fopen(full, "re");
    bool found = false;
    while (f != NULL && !found && fgets(line, sizeof line, f) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        if (strncmp(line, "0::/", 4) == 0 && line[4] != '\0') {
            char path[480];
            snprintf(path, sizeof path, "/sys/fs/cgroup%s/memory.max", line + 3);
            found = limit_file(root, path, out);
        }
    }
    if (f != NULL) {
        fclose(f);
    }
    return found || limit_file(root, "/sys/fs/cgroup/memory.max", out) ||
           limit_file(root, "/sys/fs/cgroup/memory/memory.limit_in_bytes", out);
}

static bool meminfo_total(const char *root, uint64_t *out)
{
    char full[512], line[256];
    snprintf(full, sizeof full, "%s/proc/meminfo", root);
    FILE *f = fopen(full, "re");
    bool found = false;
    while (f != NULL && !found && fgets(line, sizeof line, f) != NULL) {
        unsigned long long kib;
        if (sscanf(line, "MemTotal: %llu kB", &kib) == 1 && kib > 0) {
            *out = (uint64_t)kib * 1024;
            found = true;
        }
    }
    if (f != NULL) {
        fclose(f);
    }
    return found;
}

int proc_memory_limiter_total(const char *root, uint64_t *bytes, om_err_t *err)
{
    if (cgroup_limit(root, bytes) || meminfo_total(root, bytes)) {
        return 0;
    }
    om_err_set(err, OM_EIO,
               "failed to get total memory, use fixed memory settings (limit_mib): cannot read "
               "the cgroup's memory limit nor /proc/meminfo");
    return OM_EIO;
}

void proc_memory_limiter_limits(const proc_memory_limiter_cfg_t *cfg, uint64_t total,
                                uint64_t *hard, uint64_t *spike)
{
    const uint64_t mib = UINT64_C(1) << 20;
    if (cfg->limit_mib != 0) {
        *hard = (uint64_t)cfg->limit_mib * mib;
        *spike = (uint64_t)cfg->spike_limit_mib * mib;
    } else {
        *hard = (uint64_t)cfg->limit_percentage * total / 100;
        *spike = (uint64_t)cfg->spike_limit_percentage * total / 100;
    }
    if (*spike == 0) {
        *spike = *hard / 5; /* otelcol: 20% of the limit when unset */
    }
}
