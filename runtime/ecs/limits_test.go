package ecs_test

import (
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/workspaced/workspaced/events"
	"github.com/workspaced/workspaced/internal/ecsdouble"
	"github.com/workspaced/workspaced/runtime/ecs"
	"github.com/workspaced/workspaced/workspace"
)

// TestRequestsWithinECSLimits drives the runtime with the longest values
// workspaced accepts — a 64-character start token (workspace.ValidToken),
// a 128-character conversation ID (events.ValidConversationID), a
// 128-character tenant (workspace.ValidTenant), a 128-character startedBy
// (Options), the largest generation — against the double, which rejects
// what ECS rejects (clientToken ≤ 64, startedBy ≤ 128, tags ≤ 50 with keys
// ≤ 128 and values ≤ 256 of the allowed characters). Every call succeeds:
// nothing we accept is refused by ECS.
func TestRequestsWithinECSLimits(t *testing.T) {
	t.Parallel()
	startedBy := strings.Repeat("w", 120) + "/prod-1_"
	tok := "T" + strings.Repeat("k", 62) + "_"
	conv := "C" + strings.Repeat("c", 126) + "-"
	tenant := "A" + strings.Repeat("t", 120) + "_.@+=-z"
	for _, v := range []struct {
		what string
		ok   bool
		n    int
	}{
		{"startedBy", len(startedBy) == 128, len(startedBy)},
		{"token", workspace.ValidToken(tok) == nil && len(tok) == 64, len(tok)},
		{"conversation", events.ValidConversationID(conv) && len(conv) == 128, len(conv)},
		{"tenant", workspace.ValidTenant(tenant) == nil && len(tenant) == 128, len(tenant)},
	} {
		if !v.ok {
			t.Fatalf("the longest %s (%d) is not what we accept", v.what, v.n)
		}
	}
	f := newFixture(t, ecsdouble.Options{}, func(o *ecs.Options) { o.StartedBy = startedBy })
	ctx := testCtx(t)

	info, err := f.rt.Start(ctx, workspace.StartSpec{Token: tok, Conversation: conv, Tenant: tenant})
	if err != nil {
		t.Fatalf("Start with the longest values: %v", err)
	}
	pool, err := f.rt.Start(ctx, workspace.StartSpec{Token: "P" + strings.Repeat("p", 63), Pool: true})
	if err != nil {
		t.Fatalf("Start of a pool workspace with the longest token: %v", err)
	}
	var req runTaskRequest
	if err := json.Unmarshal(f.d.Requests("RunTask")[0], &req); err != nil {
		t.Fatal(err)
	}
	if req.ClientToken != tok || req.StartedBy != startedBy || req.Group != ecs.GroupConversationPrefix+conv {
		t.Errorf("RunTask sent clientToken %q startedBy %q group %q", req.ClientToken, req.StartedBy, req.Group)
	}
	for _, w := range []workspace.Info{info, pool} {
		if _, err := f.d.WaitStatus(ctx, w.ID, "RUNNING"); err != nil {
			t.Fatal(err)
		}
	}
	claim := workspace.Claim{Conversation: conv, Owner: "k_0123456789abcdef", Tenant: tenant, Generation: math.MaxInt64}
	if err := f.rt.RecordClaim(ctx, pool, claim); err != nil {
		t.Fatalf("RecordClaim with the longest values: %v", err)
	}
	got, ok, err := f.rt.ReadClaim(ctx, pool)
	if err != nil || !ok || got != claim {
		t.Fatalf("ReadClaim = %+v %v %v, want %+v", got, ok, err, claim)
	}
	listed, err := f.rt.List(ctx)
	if err != nil || len(listed) != 2 {
		t.Fatalf("List by the longest startedBy = %d workspaces, %v", len(listed), err)
	}
	for _, w := range []workspace.Info{info, pool} {
		if err := f.rt.Stop(ctx, w.ID, "released"); err != nil {
			t.Fatalf("Stop: %v", err)
		}
	}
	if n := f.d.Calls("RunTask"); n < 2 || len(f.d.Tasks()) != 2 {
		t.Errorf("%d RunTask calls, %d tasks", n, len(f.d.Tasks()))
	}
}
