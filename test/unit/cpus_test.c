/* cpus_test.c: the CPU count and the worker pool's size (src/cpus.c) on fake cpu.max,
 * cfs_quota_us, /proc/self/cgroup and mountinfo contents, and fake cgroup trees in a
 * temporary directory: Go 1.25's GOMAXPROCS arithmetic (quota rounded up, not below 2, never
 * above the affinity count), the tightest of a cgroup and its ancestors, cgroup namespaces
 * and hybrid v1/v2 hosts, and the GOMAXPROCS override. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cpus.h"
#include "om.h"
#include "om_test.h"

static void test_cpu_max_contents(void)
{
    ASSERT_EQ_UINT(om__cpu_max_cpus("max 100000\n"), 0);
    ASSERT_EQ_UINT(om__cpu_max_cpus("100000 100000\n"), 1);
    ASSERT_EQ_UINT(om__cpu_max_cpus("150000 100000\n"), 2); /* 1.5 rounds up */
    ASSERT_EQ_UINT(om__cpu_max_cpus("50000 100000"), 1);
    ASSERT_EQ_UINT(om__cpu_max_cpus("200000 100000\n"), 2);
    ASSERT_EQ_UINT(om__cpu_max_cpus("200001 100000\n"), 3);
    ASSERT_EQ_UINT(om__cpu_max_cpus("1000 1000000\n"), 1); /* 0.001 CPU */
    ASSERT_EQ_UINT(om__cpu_max_cpus("99999999999999 1\n"), 4096);
    /* Not a quota: no limit rather than a guess. */
    ASSERT_EQ_UINT(om__cpu_max_cpus(""), 0);
    ASSERT_EQ_UINT(om__cpu_max_cpus("100000\n"), 0);
    ASSERT_EQ_UINT(om__cpu_max_cpus("100000 0\n"), 0);
    ASSERT_EQ_UINT(om__cpu_max_cpus("-1 100000\n"), 0);
    ASSERT_EQ_UINT(om__cpu_max_cpus("100000 100000 7\n"), 0);
    ASSERT_EQ_UINT(om__cpu_max_cpus("99999999999999999999999 100000\n"), 0);
    ASSERT_EQ_UINT(om__cpu_max_cpus(NULL), 0);
    /* v1 */
    ASSERT_EQ_UINT(om__cfs_quota_cpus("-1\n", "100000\n"), 0);
    ASSERT_EQ_UINT(om__cfs_quota_cpus("250000\n", "100000\n"), 3);
    ASSERT_EQ_UINT(om__cfs_quota_cpus("50000\n", "100000\n"), 1);
    ASSERT_EQ_UINT(om__cfs_quota_cpus("50000\n", "x\n"), 0);
}

static void test_go_arithmetic(void)
{
    /* No quota: the affinity mask. */
    ASSERT_EQ_UINT(om__cpu_count_of(8, 0), 8);
    ASSERT_EQ_UINT(om__cpu_count_of(1, 0), 1);
    ASSERT_EQ_UINT(om__cpu_count_of(0, 0), 1);
    /* A quota lowers it, rounded up already, but not below 2 ... */
    ASSERT_EQ_UINT(om__cpu_count_of(8, 3), 3);
    ASSERT_EQ_UINT(om__cpu_count_of(8, 1), 2);
    ASSERT_EQ_UINT(om__cpu_count_of(64, om__cpu_max_cpus("50000 100000\n")), 2);
    ASSERT_EQ_UINT(om__cpu_count_of(64, om__cpu_max_cpus("850000 100000\n")), 9);
    /* ... and never raises it above the affinity mask. */
    ASSERT_EQ_UINT(om__cpu_count_of(1, 1), 1);
    ASSERT_EQ_UINT(om__cpu_count_of(4, 16), 4);
    ASSERT_EQ_UINT(om__cpu_count_of(2, 4096), 2);
}

static void test_gomaxprocs_override(void)
{
    ASSERT_EQ_UINT(om__workers_size(NULL, 6), 6);
    ASSERT_EQ_UINT(om__workers_size("3", 6), 3);
    ASSERT_EQ_UINT(om__workers_size("12\n", 6), 12); /* more than the CPUs: the user's call */
    ASSERT_EQ_UINT(om__workers_size("1", 6), 1);
    /* What Go would not take either: ignored. */
    ASSERT_EQ_UINT(om__workers_size("", 6), 6);
    ASSERT_EQ_UINT(om__workers_size("0", 6), 6);
    ASSERT_EQ_UINT(om__workers_size("-2", 6), 6);
    ASSERT_EQ_UINT(om__workers_size("2x", 6), 6);
    ASSERT_EQ_UINT(om__workers_size("100000", 6), 6);
    ASSERT_EQ_UINT(om__workers_size(NULL, 0), 1);
}

static const char *const MOUNTINFO_V2 =
    "22 1 0:21 / / rw,relatime - overlay overlay rw\n"
    "30 22 0:27 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 "
    "rw,nsdelegate\n";

/* A host with both: v1 controllers (cpu among them, with cpuacct) and an empty v2. */
static const char *const MOUNTINFO_HYBRID =
    "30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "31 30 0:28 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct\n"
    "32 30 0:29 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset\n"
    "40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";

static void test_cgroup_dir(void)
{
    char mount[256], dir[256];
    /* A systemd unit on a v2 host: its own cgroup, under the mount. */
    ASSERT_TRUE(om__cgroup_dir("0::/system.slice/otelmon.service\n", MOUNTINFO_V2, true, mount, dir,
                               sizeof dir));
    ASSERT_EQ_STR(mount, "/sys/fs/cgroup");
    ASSERT_EQ_STR(dir, "/sys/fs/cgroup/system.slice/otelmon.service");
    /* A container with its own cgroup namespace: "/" is the mount itself. */
    ASSERT_TRUE(om__cgroup_dir("0::/\n", MOUNTINFO_V2, true, mount, dir, sizeof dir));
    ASSERT_EQ_STR(dir, "/sys/fs/cgroup");
    /* A bind mount of a sub-tree (root /kubepods/pod1): the path is relative to it. */
    const char *bound = "30 22 0:27 /kubepods/pod1 /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
    ASSERT_TRUE(om__cgroup_dir("0::/kubepods/pod1/ctr\n", bound, true, mount, dir, sizeof dir));
    ASSERT_EQ_STR(dir, "/sys/fs/cgroup/ctr");
    /* A path outside the mount's root: the mount. */
    ASSERT_TRUE(om__cgroup_dir("0::/elsewhere\n", bound, true, mount, dir, sizeof dir));
    ASSERT_EQ_STR(dir, "/sys/fs/cgroup");
    /* Hybrid: v1's cpu line and mount. */
    const char *hybrid_cg = "9:name=systemd:/\n4:memory:/x\n2:cpu,cpuacct:/user.slice\n"
                            "3:cpuset:/\n0::/\n";
    ASSERT_TRUE(om__cgroup_dir(hybrid_cg, MOUNTINFO_HYBRID, false, mount, dir, sizeof dir));
    ASSERT_EQ_STR(mount, "/sys/fs/cgroup/cpu,cpuacct");
    ASSERT_EQ_STR(dir, "/sys/fs/cgroup/cpu,cpuacct/user.slice");
    ASSERT_TRUE(om__cgroup_dir(hybrid_cg, MOUNTINFO_HYBRID, true, mount, dir, sizeof dir));
    ASSERT_EQ_STR(dir, "/sys/fs/cgroup/unified");
    /* "cpuset" is not "cpu"; missing pieces are no cgroup. */
    ASSERT_TRUE(!om__cgroup_dir("3:cpuset:/a\n", MOUNTINFO_HYBRID, false, mount, dir, sizeof dir));
    ASSERT_TRUE(!om__cgroup_dir("0::/a\n", "", true, mount, dir, sizeof dir));
    ASSERT_TRUE(!om__cgroup_dir("", MOUNTINFO_V2, true, mount, dir, sizeof dir));
    ASSERT_TRUE(!om__cgroup_dir(NULL, MOUNTINFO_V2, true, mount, dir, sizeof dir));
    ASSERT_TRUE(!om__cgroup_dir("0::/a\n", MOUNTINFO_V2, true, mount, dir, 8)); /* too long */
}

static void put_file(const char *dir, const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    ASSERT_TRUE(f != NULL);
    fputs(text, f);
    fclose(f);
}

static void make_dir(char *out, size_t cap, const char *parent, const char *name)
{
    snprintf(out, cap, "%s/%s", parent, name);
    ASSERT_EQ_INT(mkdir(out, 0700), 0);
}

static void test_quota_of_a_fake_tree(void)
{
    char root[] = "/tmp/om-cpus-XXXXXX";
    ASSERT_TRUE(mkdtemp(root) != NULL);
    char slice[512], unit[512], leaf[512];
    make_dir(slice, sizeof slice, root, "system.slice");
    make_dir(unit, sizeof unit, slice, "otelmon.service");
    make_dir(leaf, sizeof leaf, unit, "sub");
    /* No file anywhere: no quota. */
    ASSERT_EQ_UINT(om__cgroup_quota(root, leaf, true), 0);
    /* The unit's own quota (a systemd CPUQuota=250%). */
    put_file(root, "cpu.max", "max 100000\n");
    put_file(leaf, "cpu.max", "max 100000\n");
    put_file(unit, "cpu.max", "250000 100000\n");
    ASSERT_EQ_UINT(om__cgroup_quota(root, leaf, true), 3);
    /* A tighter ancestor wins: the kernel throttles the whole slice. */
    put_file(slice, "cpu.max", "100000 100000\n");
    ASSERT_EQ_UINT(om__cgroup_quota(root, leaf, true), 1);
    ASSERT_EQ_UINT(om__cpu_count_of(16, om__cgroup_quota(root, leaf, true)), 2);
    /* Nothing above the mount is read; a dir outside the mount has none. */
    ASSERT_EQ_UINT(om__cgroup_quota(unit, leaf, true), 3);
    ASSERT_EQ_UINT(om__cgroup_quota(leaf, root, true), 0);
    /* v1 files. */
    put_file(unit, "cpu.cfs_quota_us", "-1\n");
    put_file(unit, "cpu.cfs_period_us", "100000\n");
    ASSERT_EQ_UINT(om__cgroup_quota(root, unit, false), 0);
    put_file(unit, "cpu.cfs_quota_us", "400000\n");
    ASSERT_EQ_UINT(om__cgroup_quota(root, unit, false), 4);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    ASSERT_EQ_INT(system(cmd), 0);
}

/* This machine's answer is whatever it is, but always a usable count, the same every call. */
static void test_this_process(void)
{
    unsigned n = om_cpu_count();
    ASSERT_TRUE(n >= 1 && n <= 4096);
    ASSERT_EQ_UINT(om_cpu_count(), n);
    ASSERT_EQ_INT(setenv("GOMAXPROCS", "5", 1), 0);
    ASSERT_EQ_UINT(om_workers_default_size(), 5);
    ASSERT_EQ_INT(unsetenv("GOMAXPROCS"), 0);
    ASSERT_EQ_UINT(om_workers_default_size(), n);
}

int main(void)
{
    OM_RUN(test_cpu_max_contents);
    OM_RUN(test_go_arithmetic);
    OM_RUN(test_gomaxprocs_override);
    OM_RUN(test_cgroup_dir);
    OM_RUN(test_quota_of_a_fake_tree);
    OM_RUN(test_this_process);
    return om_test_summary();
}
