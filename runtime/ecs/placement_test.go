package ecs_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/workspaced/workspaced/internal/ecsdouble"
	"github.com/workspaced/workspaced/runtime/ecs"
	"github.com/workspaced/workspaced/workspace"
)

// Workspace tasks are placed binpack on memory (design basis §8.2): an instance
// fills before the capacity provider starts another, so the ones running
// stay few and their image caches warm. Through a capacity provider and
// with a launch type alike.
func TestRunTaskBinpacksOnMemory(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		mod  func(*ecs.Options)
	}{
		{"capacity provider", func(o *ecs.Options) {
			o.CapacityProviders = []ecs.CapacityProvider{{Name: "workspaces-asg", Weight: 1}}
		}},
		{"launch type", func(*ecs.Options) {}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, ecsdouble.Options{}, tc.mod)
			info, err := f.rt.Start(testCtx(t), workspace.StartSpec{Token: token(t), Pool: true})
			if err != nil {
				t.Fatalf("Start: %v", err)
			}
			snap, ok := f.d.Task(info.ID)
			if !ok {
				t.Fatalf("the double has no task %s", info.ID)
			}
			var req struct {
				PlacementStrategy []struct {
					Type  string `json:"type"`
					Field string `json:"field"`
				} `json:"placementStrategy"`
			}
			if err := json.Unmarshal(snap.Request, &req); err != nil {
				t.Fatalf("decode RunTask body: %v", err)
			}
			if got := fmt.Sprint(req.PlacementStrategy); got != "[{binpack memory}]" {
				t.Errorf("placementStrategy = %s, want [{binpack memory}]", got)
			}
		})
	}
}
