package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/workspaced/workspaced/selftest"
)

// readLimits reads the effective limits: the cgroup's (v1 or v2, as the
// container sees its own cgroup), the rlimits, and the kernel's.
func readLimits() selftest.Limits {
	var l selftest.Limits
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		l.CgroupVersion = 2
		l.PidsMax = readTrim("/sys/fs/cgroup/pids.max")
		l.MemoryMax = readTrim("/sys/fs/cgroup/memory.max")
		l.MemorySwapMax = readTrim("/sys/fs/cgroup/memory.swap.max")
		l.CPUMax = readTrim("/sys/fs/cgroup/cpu.max")
	} else {
		l.CgroupVersion = 1
		l.PidsMax = readTrim("/sys/fs/cgroup/pids/pids.max")
		l.MemoryMax = v1Unlimited(readTrim("/sys/fs/cgroup/memory/memory.limit_in_bytes"))
		if memsw := readTrim("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"); memsw != "" {
			l.MemorySwapMax = "memory+swap " + v1Unlimited(memsw)
		}
		quota, period := readTrim("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"), readTrim("/sys/fs/cgroup/cpu/cpu.cfs_period_us")
		if quota != "" {
			if quota == "-1" {
				quota = "max"
			}
			l.CPUMax = quota + " " + period
		}
	}
	l.NprocSoft, l.NprocHard = rlimit(unix.RLIMIT_NPROC)
	l.NofileSoft, l.NofileHard = rlimit(unix.RLIMIT_NOFILE)
	l.KernelPidMax = readTrim("/proc/sys/kernel/pid_max")
	l.ThreadsMax = readTrim("/proc/sys/kernel/threads-max")
	return l
}

// v1Unlimited shows cgroup v1's "no limit" (a huge page-rounded number)
// as v2 does.
func v1Unlimited(v string) string {
	if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 1<<62 {
		return "max"
	}
	return v
}

func readTrim(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func rlimit(res int) (string, string) {
	var r unix.Rlimit
	if err := unix.Getrlimit(res, &r); err != nil {
		return "", ""
	}
	show := func(v uint64) string {
		if v == unix.RLIM_INFINITY {
			return "unlimited"
		}
		return strconv.FormatUint(v, 10)
	}
	return show(r.Cur), show(r.Max)
}

// resourceChecks: memory and pids limits as configured, and a fork bomb
// that a limit stops without hurting the workspace.
func resourceChecks(ctx context.Context, cfg config, env runtimeEnv) []selftest.Check {
	l := readLimits()
	mem := strconv.FormatInt(cfg.memoryBytes, 10)
	checks := []selftest.Check{
		check("resources.memory", "memory limit "+mem+" bytes", fmt.Sprintf("memory.max %s (cgroup v%d)", l.MemoryMax, l.CgroupVersion),
			l.MemoryMax == mem, "the workspace's memory is not limited as configured: one workspace can take the host's memory"),
	}
	nproc := strconv.FormatInt(cfg.nproc, 10)
	limitsObs := fmt.Sprintf("pids.max %s; nproc %s/%s; kernel.pid_max %s", l.PidsMax, l.NprocSoft, l.NprocHard, l.KernelPidMax)
	var bound string
	switch env.runtime {
	case selftest.RuntimeDocker:
		pids := strconv.FormatInt(cfg.pidsMax, 10)
		bound = "pids.max " + pids
		checks = append(checks, check("resources.pids", "pids.max "+pids+" (per workspace)", limitsObs, l.PidsMax == pids,
			"the workspace's process count is not limited as configured"))
	case selftest.RuntimeECS:
		bound = "the nproc ulimit " + nproc + " (per uid on the instance)"
		checks = append(checks, check("resources.pids", "nproc ulimit "+nproc+" soft and hard (ECS has no per-task pids limit)", limitsObs,
			l.NprocSoft == nproc && l.NprocHard == nproc, "the task's nproc ulimit is not as in the task definition"))
	default:
		checks = append(checks, notApplicable("resources.pids", "the runtime's process limit", "unknown runtime: "+limitsObs))
	}
	if !cfg.forkBomb {
		return append(checks, notApplicable("resources.fork_bomb", "a fork bomb stops at a limit", "disabled by -fork-bomb=false"))
	}
	if bound == "" {
		return append(checks, notApplicable("resources.fork_bomb", "a fork bomb stops at a limit", "unknown runtime"))
	}
	res, after, err := runForkBomb(ctx, cfg, env)
	obs := fmt.Sprintf("%d processes forked, stopped by %s; %s", res.Forked, res.StoppedBy, after)
	if err != nil && res.StoppedBy == "" {
		obs = err.Error()
	}
	return append(checks, check("resources.fork_bomb",
		fmt.Sprintf("fork fails with EAGAIN at %s before %d processes or %s; the agent and the workspace live on", bound, cfg.forkMax, cfg.forkTimeout),
		obs, err == nil && res.StoppedBy == "EAGAIN",
		"nothing bounds the number of processes a workspace can start: a fork bomb can exhaust the host's PIDs and starve other workspaces and the container agent"))
}
