/* cpus.h: core-internal, how many CPUs the process may use (src/cpus.c). The arithmetic and
 * the parsers take text and directories as arguments so that tests can feed them fake
 * /proc/self/cgroup, mountinfo and cpu.max contents (test/unit/cpus_test.c). */
#ifndef OM_CPUS_H
#define OM_CPUS_H

#include <stdbool.h>
#include <stddef.h>

/* cgroup v2 cpu.max ("QUOTA PERIOD" or "max PERIOD"): the quota in CPUs rounded up (at most
 * 4096), or 0 for no limit and for text that is not a quota. */
unsigned om__cpu_max_cpus(const char *text);
/* cgroup v1 cpu.cfs_quota_us and cpu.cfs_period_us: the same (-1: no limit). */
unsigned om__cfs_quota_cpus(const char *quota_text, const char *period_text);

/* Go's GOMAXPROCS rule (Go 1.25): the affinity count, lowered to the quota rounded up but not
 * below 2; at least 1. quota_cpus 0: no quota. */
unsigned om__cpu_count_of(unsigned affinity, unsigned quota_cpus);

/* Where this process's cgroup for the cpu controller is: the hierarchy's mount point and the
 * cgroup's directory under it (both at most cap bytes with the NUL). v2 when v2 is true (the
 * "0::PATH" line of /proc/self/cgroup, the cgroup2 mount of mountinfo), else v1 (the line
 * naming the cpu controller, the cgroup mount whose options name it). PATH is taken relative
 * to the mount's root (a container's cgroup namespace shows "/"). False when either is
 * missing or the result does not fit. */
bool om__cgroup_dir(const char *proc_cgroup, const char *mountinfo, bool v2, char *mount, char *dir,
                    size_t cap);

/* The tightest CPU quota, in CPUs rounded up, on the way from dir up to mount (the cgroup and
 * each visible ancestor: the kernel enforces all of them), or 0 when none has one. v2 reads
 * cpu.max, v1 cpu.cfs_quota_us and cpu.cfs_period_us. dir must be mount or below it. */
unsigned om__cgroup_quota(const char *mount, const char *dir, bool v2);

/* The worker pool's size: text (the GOMAXPROCS environment variable, as otelcol's Go runtime
 * reads it) when it is a whole number from 1 to 1024, else cpus. */
unsigned om__workers_size(const char *text, unsigned cpus);

#endif
