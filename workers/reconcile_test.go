package workers_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/workspaced/workspaced/store"
	"github.com/workspaced/workspaced/workers"
)

func (h *harness) reconciler(t *testing.T) *workers.Reconciler {
	return workers.NewReconciler(h.rt, h.st, h.m, workers.ReconcilerOptions{
		Ready:  h.sub,
		Settle: time.Nanosecond, Logger: testLogger(t),
	})
}

// After FLUSHALL the reconciler restores every binding (a cold workspace,
// a claimed pool workspace: its claim lives in the host-side record), the
// owners, and the unclaimed pool; the next request reaches the same
// workspace.
func TestReconcileAfterFlush(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{claims: true})
	ctx := testCtx(t, 2*time.Minute)
	stop := runReplenisher(t, h.replenisher(t, 2, 2))
	h.waitPool(t, func(c store.PoolCounts) bool { return c.Available == 2 })
	stop()
	warm := workers.NewProvisioner(h.rt, h.st, h.m, workers.ProvisionerOptions{Pool: true, Personaliser: h.pers, Logger: testLogger(t)})
	w := h.acquire(t, warm, "warm-conv")
	cold := h.acquire(t, h.prov, "cold-conv") // pool has one left, but h.prov starts cold
	if err := h.rdb.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}

	rep, err := h.reconciler(t).Reconcile(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Adopted != 2 || rep.PoolAdopted != 1 {
		t.Fatalf("repairs = %+v, want 2 adopted, 1 pool", rep)
	}
	for _, want := range []store.Conversation{w, cold} {
		c, err := h.st.Conversation(ctx, want.ID)
		if err != nil || c.State != store.StateReady || c.Workspace != want.Workspace || c.Owner != "key" ||
			c.Tenant != "tenant" || c.Endpoint != want.Endpoint {
			t.Fatalf("%s after reconcile = %+v (%v), want ready on %s", want.ID, c, err, want.Workspace)
		}
		if _, err := h.st.ClaimConversation(ctx, want.ID, "other-key", "t"); !errors.Is(err, store.ErrNotOwner) {
			t.Fatalf("another key claimed %s: %v", want.ID, err)
		}
	}
	if c := h.waitPool(t, func(store.PoolCounts) bool { return true }); c.Available != 1 || c.Claimed != 1 {
		t.Fatalf("pool after reconcile = %+v, want 1 available, 1 claimed", c)
	}
	// The next request finds it live: nothing new starts.
	if err := provision(h.prov)(requested(t, "cold-conv")); err != nil {
		t.Fatal(err)
	}
	if n := len(h.containers(t)); n != 3 {
		t.Fatalf("%d containers, want 3", n)
	}
	if got := h.metric(t, "workspaced_reconcile_repairs_total", "repair", workers.RepairAdopted); got != 2 {
		t.Errorf("adopted repairs counted = %v", got)
	}
	if rep, err := h.reconciler(t).Reconcile(ctx); err != nil || rep.Total() != 0 {
		t.Fatalf("second pass = %+v, %v; want no repairs", rep, err)
	}
}

// Events lost: the reconciler makes a healthy provisioning workspace
// ready, and marks one removed behind its back stopped.
func TestReconcileLostEvents(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{noWatch: true, claims: true})
	ctx := testCtx(t, 2*time.Minute)
	h.claim(t, "quiet")
	if err := provision(h.prov)(requested(t, "quiet")); err != nil {
		t.Fatal(err)
	}
	c, err := h.st.Conversation(ctx, "quiet")
	if err != nil || c.State != store.StateProvisioning {
		t.Fatalf("conversation = %+v, %v", c, err)
	}
	info, err := h.rt.Inspect(ctx, c.Workspace)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.drt.WaitReady(ctx, info); err != nil {
		t.Fatal(err)
	}
	rep, err := h.reconciler(t).Reconcile(ctx)
	if err != nil || rep.Ready != 1 {
		t.Fatalf("repairs = %+v, %v; want 1 ready", rep, err)
	}
	if c = h.waitFor(t, "quiet", done); c.State != store.StateReady {
		t.Fatalf("conversation = %+v, want ready", c)
	}
	// Personalised on the way: the claim record exists.
	if cl, ok, err := h.drt.ReadClaim(context.Background(), info); !ok || err != nil || cl.Conversation != "quiet" || cl.Owner != "key" {
		t.Fatalf("claim = %+v %v %v", cl, ok, err)
	}
	if err := h.drt.Stop(ctx, c.Workspace, "behind its back"); err != nil {
		t.Fatal(err)
	}
	if rep, err = h.reconciler(t).Reconcile(ctx); err != nil || rep.Stopped != 1 {
		t.Fatalf("repairs = %+v, %v; want 1 stopped", rep, err)
	}
	if c = h.waitFor(t, "quiet", done); c.State != store.StateLost {
		t.Fatalf("conversation = %+v, want lost", c)
	}
}
