package terraform_test

import (
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/workspaced/workspaced/runtime/docker"
	"github.com/workspaced/workspaced/workspace"
)

// TestScratchFitsTheMemoryLimit: the ECS task definition's tmpfs mounts
// (and /dev/shm) are the Docker runtime's, and they leave
// workspace.ProcessHeadroomMiB of the agent container's memory limit for
// its processes — at the example value and at the least value the
// workspace_agent_memory variable accepts (docs/decisions.md D30).
func TestScratchFitsTheMemoryLimit(t *testing.T) {
	var agent *containerDef
	defs := renderWorkspace(t)
	for i := range defs {
		if defs[i].Name == "workspace-agent" {
			agent = &defs[i]
		}
	}
	if agent == nil {
		t.Fatal("no workspace-agent container")
	}
	ecs := map[string]int64{"/dev/shm": agent.LinuxParameters.SharedMemorySize}
	for _, m := range agent.LinuxParameters.Tmpfs {
		ecs[m.ContainerPath] = int64(m.Size)
	}
	if want := docker.TmpfsSizes(); !maps.Equal(ecs, want) {
		t.Errorf("ECS tmpfs sizes (MiB) %v, Docker's %v: they must be the same", ecs, want)
	}
	if err := workspace.CheckScratch(int64(agent.Memory), ecs); err != nil {
		t.Errorf("the example task definition: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "terraform", "modules", "services", "variables.tf"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`condition\s*=\s*var\.workspace_agent_memory\s*>=\s*([0-9]+)`).FindSubmatch(b)
	if m == nil {
		t.Fatal("variables.tf: workspace_agent_memory has no lower bound")
	}
	least, _ := strconv.ParseInt(string(m[1]), 10, 64)
	if err := workspace.CheckScratch(least, ecs); err != nil {
		t.Errorf("workspace_agent_memory accepts %d MiB: %v", least, err)
	}
}
