package store_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/workspaced/workspaced/store"
	"github.com/workspaced/workspaced/workspace"
)

func poolInfo(wid string) workspace.Info {
	return workspace.Info{ID: wid, Token: "p-" + wid, Pool: true, Endpoint: "unix:///run/" + wid + "/agent.sock"}
}

// readyPool adds pool workspaces and brings them to available.
func (e env) readyPool(t *testing.T, wids ...string) {
	t.Helper()
	ctx := ctxT(t)
	for _, wid := range wids {
		must(e.s.AddPoolWorkspace(ctx, poolInfo(wid), "")).get(t)
		e.apply(t, wid, workspace.StatusRunning, 1)
		must(e.s.MarkReady(ctx, wid, "")).get(t)
	}
}

func (e env) counts(t *testing.T) store.PoolCounts {
	t.Helper()
	return must(e.s.PoolCounts(ctxT(t))).get(t)
}

func TestPoolLifecycle(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := ctxT(t)
	if ok := must(e.s.ReservePoolSlot(ctx, "r1", 2, time.Minute)).get(t); !ok {
		t.Fatal("first reservation refused")
	}
	if got := e.counts(t); got.Reserved != 1 || got.Unclaimed() != 1 {
		t.Fatalf("counts after reserve = %+v", got)
	}
	w := must(e.s.AddPoolWorkspace(ctx, poolInfo("w1"), "r1")).get(t)
	if w.State != store.WorkspaceProvisioning || !w.Pool {
		t.Fatalf("added = %+v", w)
	}
	if got := e.counts(t); got != (store.PoolCounts{Starting: 1}) {
		t.Fatalf("counts after add = %+v", got)
	}
	e.apply(t, "w1", workspace.StatusRunning, 1)
	must(e.s.MarkReady(ctx, "w1", "")).get(t)
	if got := e.counts(t); got != (store.PoolCounts{Available: 1}) {
		t.Fatalf("counts after ready = %+v", got)
	}

	must(e.s.ClaimConversation(ctx, "c1", "owner", "tenant")).get(t)
	cl := must(e.s.ClaimPoolWorkspace(ctx, "c1", 0, e.clock.Now())).get(t)
	if cl.Workspace.ID != "w1" || cl.Workspace.Conversation != "c1" || cl.Workspace.Tenant != "tenant" || cl.Workspace.ClaimedAt.IsZero() {
		t.Fatalf("claimed workspace = %+v", cl.Workspace)
	}
	if cl.Conversation.State != store.StateProvisioning || cl.Conversation.Workspace != "w1" {
		t.Fatalf("conversation after claim = %+v", cl.Conversation)
	}
	if got := e.counts(t); got != (store.PoolCounts{Claimed: 1}) {
		t.Fatalf("counts after claim = %+v", got)
	}
	c := must(e.s.ActivateClaim(ctx, "c1", "w1")).get(t)
	if c.State != store.StateReady || c.Endpoint != poolInfo("w1").Endpoint {
		t.Fatalf("conversation after activate = %+v", c)
	}
	// The claimed workspace is now the conversation's: idle GC tracks it.
	e.clock.Advance(time.Hour)
	idle := must(e.s.IdleWorkspaces(ctx, time.Minute, 10)).get(t)
	if len(idle) != 1 || idle[0].Workspace != "w1" || idle[0].Conversation != "c1" {
		t.Fatalf("idle = %+v", idle)
	}
	// STOPPED takes it out of every set and ends the binding.
	res := e.apply(t, "w1", workspace.StatusStopped, 2)
	if res.Ended == nil || res.Ended.State != store.StateLost {
		t.Fatalf("stop ended = %+v", res.Ended)
	}
	if got := e.counts(t); got != (store.PoolCounts{}) {
		t.Fatalf("counts after stop = %+v", got)
	}
}

func TestPoolReadyBeforeAdd(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := ctxT(t)
	// Events beat the replenisher's AddPoolWorkspace.
	e.apply(t, "w1", workspace.StatusRunning, 1)
	must(e.s.MarkReady(ctx, "w1", "unix:///x")).get(t)
	must(e.s.AddPoolWorkspace(ctx, poolInfo("w1"), "")).get(t)
	if got := e.counts(t); got != (store.PoolCounts{Available: 1}) {
		t.Fatalf("counts = %+v", got)
	}
	// A stopped one never joins.
	e.apply(t, "w2", workspace.StatusStopped, 1)
	if _, err := e.s.AddPoolWorkspace(ctx, poolInfo("w2"), ""); !errors.Is(err, store.ErrWorkspaceStopped) {
		t.Fatalf("add stopped: err = %v", err)
	}
}

func TestPoolReserveNeverExceedsMax(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := ctxT(t)
	e.readyPool(t, "a")
	var granted atomic.Int64
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			ok, err := e.s.ReservePoolSlot(ctx, fmt.Sprint("r", i), 5, time.Minute)
			if err != nil {
				t.Error(err)
			}
			if ok {
				granted.Add(1)
			}
		})
	}
	wg.Wait()
	if g := granted.Load(); g != 4 {
		t.Fatalf("granted %d reservations with 1 available and max 5, want 4", g)
	}
	// Reservations expire: a crashed replenisher frees its slots.
	e.clock.Advance(2 * time.Minute)
	if got := e.counts(t); got.Unclaimed() != 1 {
		t.Fatalf("counts after expiry = %+v", got)
	}
	if ok := must(e.s.ReservePoolSlot(ctx, "again", 5, time.Minute)).get(t); !ok {
		t.Fatal("reservation refused after expiry")
	}
	if err := e.s.ReleasePoolSlot(ctx, "again"); err != nil {
		t.Fatal(err)
	}
	if got := e.counts(t); got.Reserved != 0 {
		t.Fatalf("counts after release = %+v", got)
	}
}

// 50 conversations claim from a pool of 5 at once: 5 win distinct
// workspaces, 45 find it empty; none is handed out twice.
func TestPoolClaimConcurrentNeverTwice(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := ctxT(t)
	e.readyPool(t, "w1", "w2", "w3", "w4", "w5")
	var mu sync.Mutex
	got := map[string]string{}
	var empty atomic.Int64
	var wg sync.WaitGroup
	for i := range 50 {
		cid := fmt.Sprint("c", i)
		must(e.s.ClaimConversation(ctx, cid, "o", "t")).get(t)
		wg.Go(func() {
			cl, err := e.s.ClaimPoolWorkspace(ctx, cid, 0, time.Time{})
			switch {
			case errors.Is(err, store.ErrPoolEmpty):
				empty.Add(1)
			case err != nil:
				t.Error(err)
			default:
				mu.Lock()
				defer mu.Unlock()
				if prev, dup := got[cl.Workspace.ID]; dup {
					t.Errorf("workspace %s claimed by %s and %s", cl.Workspace.ID, prev, cid)
				}
				got[cl.Workspace.ID] = cid
			}
		})
	}
	wg.Wait()
	if len(got) != 5 || empty.Load() != 45 {
		t.Fatalf("claimed %d, empty %d", len(got), empty.Load())
	}
	for wid, cid := range got {
		if w := e.ws(t, wid); w.Conversation != cid {
			t.Errorf("ws %s conversation %q, want %q", wid, w.Conversation, cid)
		}
	}
}

func TestPoolClaimRefusals(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := ctxT(t)
	e.readyPool(t, "w1")
	e.ready(t, "live", "cold")
	if _, err := e.s.ClaimPoolWorkspace(ctx, "live", 0, time.Time{}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("claim for a live conversation: err = %v", err)
	}
	must(e.s.ClaimConversation(ctx, "c", "o", "t")).get(t)
	if _, err := e.s.ClaimPoolWorkspace(ctx, "c", 3, time.Time{}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("claim with a stale generation: err = %v", err)
	}
	if got := e.counts(t); got.Available != 1 {
		t.Fatalf("refused claims took a workspace: %+v", got)
	}
}

func TestPoolAbandonAndRetire(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := ctxT(t)
	e.readyPool(t, "w1", "w2")
	must(e.s.ClaimConversation(ctx, "c", "o", "t")).get(t)
	cl := must(e.s.ClaimPoolWorkspace(ctx, "c", 0, time.Time{})).get(t)
	c := must(e.s.AbandonClaim(ctx, "c", cl.Workspace.ID, "unhealthy")).get(t)
	if c.State != store.StateQueued || c.Workspace != "" || c.Generation != 0 {
		t.Fatalf("after abandon = %+v", c)
	}
	if w := e.ws(t, cl.Workspace.ID); w.Releasing != "unhealthy" {
		t.Fatalf("abandoned workspace = %+v", w)
	}
	if _, err := e.s.ActivateClaim(ctx, "c", cl.Workspace.ID); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("activate after abandon: err = %v", err)
	}
	// Its STOPPED event leaves the conversation alone.
	if res := e.apply(t, cl.Workspace.ID, workspace.StatusStopped, 5); res.Ended != nil {
		t.Fatalf("stop of abandoned ended %+v", res.Ended)
	}
	// The next claim gets the other one.
	cl2 := must(e.s.ClaimPoolWorkspace(ctx, "c", 0, time.Time{})).get(t)
	if cl2.Workspace.ID == cl.Workspace.ID {
		t.Fatal("claimed the abandoned workspace again")
	}
	// Retire: only available workspaces.
	if ok := must(e.s.RetirePoolWorkspace(ctx, cl2.Workspace.ID, "max_age")).get(t); ok {
		t.Fatal("retired a claimed workspace")
	}
	e.readyPool(t, "w3")
	old := must(e.s.PoolAvailableSince(ctx, e.clock.Now(), 10)).get(t)
	if len(old) != 1 || old[0] != "w3" {
		t.Fatalf("old = %v", old)
	}
	if ok := must(e.s.RetirePoolWorkspace(ctx, "w3", "max_age")).get(t); !ok {
		t.Fatal("retire of an available workspace refused")
	}
	if got := e.counts(t); got.Available != 0 {
		t.Fatalf("counts = %+v", got)
	}
}

func TestWaitPool(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := ctxT(t)
	done := make(chan store.PoolCounts, 1)
	f := must(e.s.FollowPool(ctx)).get(t)
	defer f.Close()
	go func() {
		c, err := e.s.WaitPool(ctx, func(c store.PoolCounts) bool { return c.Available == 2 })
		if err != nil {
			t.Error(err)
		}
		done <- c
	}()
	e.readyPool(t, "w1", "w2")
	if err := f.Next(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-done:
		if c.Available != 2 {
			t.Fatalf("counts = %+v", c)
		}
	case <-ctx.Done():
		t.Fatal("WaitPool did not return")
	}
}

func TestLease(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := ctxT(t)
	if !must(e.s.AcquireLease(ctx, "gc", "a", time.Minute)).get(t) {
		t.Fatal("a could not take a free lease")
	}
	if must(e.s.AcquireLease(ctx, "gc", "b", time.Minute)).get(t) {
		t.Fatal("b took a held lease")
	}
	if !must(e.s.AcquireLease(ctx, "pool", "b", time.Minute)).get(t) {
		t.Fatal("leases are not independent")
	}
	e.clock.Advance(2 * time.Minute)
	if !must(e.s.AcquireLease(ctx, "gc", "b", time.Minute)).get(t) {
		t.Fatal("b could not take an expired lease")
	}
	if must(e.s.ReleaseLease(ctx, "gc", "a")).get(t) {
		t.Fatal("a released b's lease")
	}
	if !must(e.s.ReleaseLease(ctx, "gc", "b")).get(t) {
		t.Fatal("b could not release its lease")
	}
}

func TestMCPRules(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := ctxT(t)
	r, d, err := e.s.MCPRules(ctx, "c")
	if err != nil || r != nil || d != "" {
		t.Fatalf("rules of a new conversation = %s %q", r, d)
	}
	rules := []byte(`[{"host":"mcp.example.com","headers":{"Authorization":"Bearer s3cret"}}]`)
	d1, changed, err := e.s.SetMCPRules(ctx, "c", rules)
	if err != nil || !changed || d1 == "" {
		t.Fatalf("set = %q %v %v", d1, changed, err)
	}
	if _, changed, _ := e.s.SetMCPRules(ctx, "c", rules); changed {
		t.Fatal("same rules reported as changed")
	}
	r, d, err = e.s.MCPRules(ctx, "c")
	if err != nil || string(r) != string(rules) || d != d1 {
		t.Fatalf("rules = %s %q", r, d)
	}
	// Never in the conversation's published snapshot.
	e.ready(t, "c", "w")
	c := e.conv(t, "c")
	if containsSecret(fmt.Sprintf("%+v", c)) {
		t.Fatalf("conversation record carries the rules: %+v", c)
	}
	if !must(e.s.MarkRulesApplied(ctx, "w", d1)).get(t) || e.ws(t, "w").MCPDigest != d1 {
		t.Fatal("applied digest not recorded")
	}
	if _, changed, _ := e.s.SetMCPRules(ctx, "c", []byte("[]")); !changed {
		t.Fatal("clearing not reported as a change")
	}
	if r, d, err = e.s.MCPRules(ctx, "c"); err != nil || r != nil || d != "" {
		t.Fatalf("cleared rules = %s %q", r, d)
	}
}

func containsSecret(s string) bool {
	return strings.Contains(s, "s3cret") || strings.Contains(s, "Bearer")
}
