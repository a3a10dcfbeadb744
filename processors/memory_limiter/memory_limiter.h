/* memory_limiter.h: private to processors/memory_limiter. */
#ifndef PROC_MEMORY_LIMITER_H
#define PROC_MEMORY_LIMITER_H

#include "om.h"

/* otelcol's memorylimiter.Config. */
typedef struct proc_memory_limiter_cfg {
    int64_t check_interval;                    /* ns; must be > 0 (otelcol's rule); unused */
    int64_t min_gc_interval_when_soft_limited; /* ns; checked, no effect (no GC here) */
    int64_t min_gc_interval_when_hard_limited; /* ns; checked, no effect */
    int64_t limit_mib, spike_limit_mib;
    int64_t limit_percentage, spike_limit_percentage;
} proc_memory_limiter_cfg_t;

/* The memory percentages are of: the memory limit of the process's cgroup when it has one
 * (cgroup v2 memory.max of its own cgroup, then of the root it sees; v1
 * memory.limit_in_bytes), else the machine's MemTotal (/proc/meminfo). root prefixes every
 * path ("" normally; a directory of fake files in tests). Returns 0, or OM_EIO with err
 * when nothing could be read. Blocks on /proc and /sys reads (fast, no disk): create only. */
int proc_memory_limiter_total(const char *root, uint64_t *bytes, om_err_t *err);

/* The hard limit (limit_mib or limit_percentage of total) and the spike room
 * (spike_limit_mib, spike_limit_percentage of total, or 20% of the hard limit when 0), in
 * bytes; the soft limit is hard - spike. total is only read for percentages. */
void proc_memory_limiter_limits(const proc_memory_limiter_cfg_t *cfg, uint64_t total,
                                uint64_t *hard, uint64_t *spike);

#endif
