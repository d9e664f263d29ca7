package store_test

import (
	"testing"

	"github.com/workspaced/workspaced/store"
	"github.com/workspaced/workspaced/workspace"
)

func TestMarkStopped(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := ctxT(t)
	e.ready(t, "c", "w")
	res := must(e.s.MarkStopped(ctx, "w", "gone from the runtime")).get(t)
	if res.Outcome != store.OutcomeApplied || res.Ended == nil || res.Ended.State != store.StateLost {
		t.Fatalf("MarkStopped = %+v", res)
	}
	if w := e.ws(t, "w"); w.State != store.WorkspaceStopped || w.Version != 1 {
		t.Fatalf("workspace = %+v (the event version must stay the last real one)", w)
	}
	// Again: nothing changes; a late real STOPPED still applies its version.
	if res := must(e.s.MarkStopped(ctx, "w", "x")).get(t); res.Outcome != store.OutcomeStale {
		t.Fatalf("second MarkStopped = %+v", res.Outcome)
	}
	if res := e.apply(t, "w", workspace.StatusStopped, 2); res.Outcome != store.OutcomeApplied || res.Ended != nil {
		t.Fatalf("late STOPPED = %+v", res)
	}
}

func adoption(cid, wid string, gen int64, ready bool) store.Adoption {
	return store.Adoption{
		Workspace:    info(wid),
		Conversation: cid, Owner: "k_owner", Tenant: "acme", Generation: gen, Ready: ready,
	}
}

func TestAdoptAfterFlush(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := ctxT(t)
	out, c, err := e.s.AdoptWorkspace(ctx, adoption("c", "w", 3, true))
	if err != nil || out != store.AdoptAdopted {
		t.Fatalf("adopt = %v %v", out, err)
	}
	if c.State != store.StateReady || c.Workspace != "w" || c.Owner != "k_owner" || c.Tenant != "acme" ||
		c.Generation != 3 || c.Endpoint != info("w").Endpoint {
		t.Fatalf("conversation = %+v", c)
	}
	w := e.ws(t, "w")
	if w.State != store.WorkspaceReady || w.Conversation != "c" || w.Token != info("w").Token || w.Generation != 3 {
		t.Fatalf("workspace = %+v", w)
	}
	// The owner is restored: the same key is accepted, another refused.
	if _, err := e.s.ClaimConversation(ctx, "c", "k_owner", "acme"); err != nil {
		t.Fatalf("owner refused after adopt: %v", err)
	}
	if _, err := e.s.ClaimConversation(ctx, "c", "k_other", "acme"); err == nil {
		t.Fatal("another owner accepted after adopt")
	}
	if out, _, _ := e.s.AdoptWorkspace(ctx, adoption("c", "w", 3, true)); out != store.AdoptUnchanged {
		t.Fatalf("second adopt = %v", out)
	}
	// Idle GC tracks it again.
	if n := len(must(e.s.IdleWorkspaces(ctx, 0, 10)).get(t)); n != 1 {
		t.Fatalf("idle candidates = %d", n)
	}
}

func TestAdoptRefusals(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := ctxT(t)
	e.ready(t, "c", "live")
	if out, _, _ := e.s.AdoptWorkspace(ctx, adoption("c", "other", 0, true)); out != store.AdoptConflict {
		t.Fatalf("adopt over a live binding = %v", out)
	}
	if _, err := e.s.Workspace(ctx, "other"); err == nil {
		t.Fatal("a refused adoption created a workspace record (the orphan reaper must see it untracked)")
	}
	must(e.s.MarkStopped(ctx, "live", "x")).get(t) // generation 1 now
	if out, _, _ := e.s.AdoptWorkspace(ctx, adoption("c", "old", 0, true)); out != store.AdoptSuperseded {
		t.Fatalf("adopt of an older generation = %v", out)
	}
	if out, _, _ := e.s.AdoptWorkspace(ctx, adoption("c", "live", 0, true)); out != store.AdoptStopped {
		t.Fatalf("adopt of a stopped workspace = %v", out)
	}
	// Not yet healthy: adopted as provisioning/running.
	out, c, err := e.s.AdoptWorkspace(ctx, adoption("c", "new", 1, false))
	if err != nil || out != store.AdoptAdopted || c.State != store.StateProvisioning {
		t.Fatalf("adopt unhealthy = %v %+v %v", out, c, err)
	}
	if w := e.ws(t, "new"); w.State != store.WorkspaceRunning || w.RunningAt.IsZero() {
		t.Fatalf("workspace = %+v", w)
	}
	r := must(e.s.MarkReady(ctx, "new", "")).get(t)
	if r.Conversation == nil || r.Conversation.State != store.StateReady {
		t.Fatalf("MarkReady after adopt = %+v", r)
	}
}

func TestAdoptClaimedPoolWorkspace(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := ctxT(t)
	a := adoption("c", "pw", 0, true)
	a.Workspace = poolInfo("pw")
	if out, _, err := e.s.AdoptWorkspace(ctx, a); err != nil || out != store.AdoptAdopted {
		t.Fatalf("adopt = %v %v", out, err)
	}
	if got := e.counts(t); got != (store.PoolCounts{Claimed: 1}) {
		t.Fatalf("counts = %+v", got)
	}
}

func TestRefreshEndpointAndDeadBindings(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := ctxT(t)
	e.ready(t, "c", "w")
	if !must(e.s.RefreshEndpoint(ctx, "w", "http://10.0.0.9:9000")).get(t) {
		t.Fatal("refresh reported no change")
	}
	if c := e.conv(t, "c"); c.Endpoint != "http://10.0.0.9:9000" {
		t.Fatalf("conversation endpoint = %q", c.Endpoint)
	}
	if must(e.s.RefreshEndpoint(ctx, "w", "http://10.0.0.9:9000")).get(t) {
		t.Fatal("same endpoint reported as a change")
	}
	e.ready(t, "d", "gone")
	rdb := e.rdb(t)
	if err := rdb.Del(ctx, "t:ws:gone").Err(); err != nil {
		t.Fatal(err)
	}
	if n := must(e.s.ClearDeadBindings(ctx)).get(t); n != 1 {
		t.Fatalf("cleared %d, want 1", n)
	}
	if c := e.conv(t, "d"); c.State != store.StateLost || c.Workspace != "" {
		t.Fatalf("dead-bound conversation = %+v", c)
	}
	if c := e.conv(t, "c"); c.State != store.StateReady {
		t.Fatalf("live conversation touched: %+v", c)
	}
}
