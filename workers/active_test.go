package workers_test

import (
	"testing"
	"time"

	"github.com/workspaced/workspaced/store"
)

// gauge is the value of the unlabelled gauge name in h's registry; -1 if
// it is not exported.
func (h *harness) gauge(t *testing.T, name string) float64 {
	t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return -1
}

// workspaced_workspaces_active (the dashboard's and the
// workspaces-active alarm's metric, terraform/modules/monitoring) counts
// what the runtime runs, as each reconcile pass lists it: exported at 0
// from the start, then up with started workspaces and down with stopped
// ones.
func TestActiveWorkspacesGauge(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	ctx := testCtx(t, 2*time.Minute)
	if got := h.gauge(t, "workspaced_workspaces_active"); got != 0 {
		t.Fatalf("workspaced_workspaces_active before any pass = %v, want 0 (exported from the start)", got)
	}
	stop := runReplenisher(t, h.replenisher(t, 2, 2))
	h.waitPool(t, func(c store.PoolCounts) bool { return c.Available == 2 })
	stop()
	rec := h.reconciler(t)
	if _, err := rec.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if got := h.gauge(t, "workspaced_workspaces_active"); got != 2 {
		t.Fatalf("workspaced_workspaces_active = %v, want 2", got)
	}
	ids := h.containers(t)
	if len(ids) == 0 {
		t.Fatal("the runtime lists no workspace")
	}
	if err := h.rt.Stop(ctx, ids[0], "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := rec.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if got := h.gauge(t, "workspaced_workspaces_active"); got != 1 {
		t.Fatalf("workspaced_workspaces_active after a stop = %v, want 1", got)
	}
}
