package main

import (
	"testing"

	"github.com/workspaced/workspaced/runtime/docker"
)

// The self-test expects the tmpfs sizes the Docker runtime mounts (and the
// ECS task definition, held to the same by terraform's tests).
func TestTmpfsSizesAreTheRuntimes(t *testing.T) {
	want := docker.TmpfsSizes()
	delete(want, "/dev/shm") // the engine's own mount, checked as such
	if len(workspaceTmpfs) != len(want) {
		t.Fatalf("self-test checks %d tmpfs, the runtime mounts %d: %v", len(workspaceTmpfs), len(want), want)
	}
	for _, m := range workspaceTmpfs {
		if size, ok := want[m.path]; !ok || size != m.sizeMB {
			t.Errorf("self-test expects %s %d MiB, the runtime mounts %d MiB", m.path, m.sizeMB, size)
		}
	}
}
