package workspace

import (
	"fmt"
	"maps"
	"slices"
)

// ProcessHeadroomMiB is the memory a workspace keeps for its processes
// (the agent, Claude Code, the user's commands) beyond its tmpfs mounts.
// tmpfs pages are charged to the container's memory cgroup and cannot be
// reclaimed without swap: mounts that may grow past memory minus this
// headroom let a full disk become an OOM kill instead of ENOSPC
// (docs/decisions.md D30).
const ProcessHeadroomMiB = 768

// CheckScratch reports an error when tmpfs mounts of the given sizes (MiB,
// /dev/shm included) leave less than ProcessHeadroomMiB of a memory limit
// of memoryMiB. Docker's options and the ECS task definition are both held
// to it.
func CheckScratch(memoryMiB int64, tmpfsMiB map[string]int64) error {
	var total int64
	for _, size := range tmpfsMiB {
		total += size
	}
	if total+ProcessHeadroomMiB > memoryMiB {
		return fmt.Errorf("tmpfs mounts %v total %d MiB: with %d MiB for processes they need a memory limit of at least %d MiB, not %d MiB (tmpfs pages count against it)",
			slices.Sorted(maps.Keys(tmpfsMiB)), total, ProcessHeadroomMiB, total+ProcessHeadroomMiB, memoryMiB)
	}
	return nil
}
