package ecs_test

import (
	"errors"
	"testing"

	"github.com/workspaced/workspaced/proxy/admin"
	"github.com/workspaced/workspaced/proxy/mcprule"
	"github.com/workspaced/workspaced/runtime/ecs"
	"github.com/workspaced/workspaced/workspace"
)

// A claimed warm-pool task: the claim is recorded as task tags (List and
// Inspect then name its conversation), and the conversation's MCP rules
// reach its proxy sidecar through the signed admin API; a backend with
// another key is refused.
func TestClaimTagsAndProxyRules(t *testing.T) {
	t.Parallel()
	d, _ := realDouble(t)
	rt, _ := newRuntime(t, d)
	ctx := testCtx(t)
	started, err := rt.Start(ctx, workspace.StartSpec{Token: token(t), Pool: true})
	if err != nil {
		t.Fatal(err)
	}
	info, err := waitReady(ctx, d, rt, started.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := rt.ReadClaim(ctx, info); ok || err != nil {
		t.Fatalf("claim of an unclaimed task: %v %v", ok, err)
	}
	claim := workspace.Claim{Conversation: "conv-1", Owner: "k_0123abcd", Tenant: "acme", Generation: 3}
	if err := rt.RecordClaim(ctx, info, claim); err != nil {
		t.Fatal(err)
	}
	if got, ok, err := rt.ReadClaim(ctx, info); !ok || err != nil || got != claim {
		t.Fatalf("ReadClaim = %+v %v %v, want %+v", got, ok, err, claim)
	}
	if got, err := rt.Inspect(ctx, info.ID); err != nil || got.Conversation != "conv-1" || got.Tenant != "acme" || !got.Pool {
		t.Fatalf("Inspect = %+v %v", got, err)
	}

	rules := []mcprule.Rule{{Host: "mcp.example.com", PathPrefix: "/mcp", Headers: map[string]string{"Authorization": "Bearer s3cret"}}}
	if err := rt.SetProxyRules(ctx, info, rules); err != nil {
		t.Fatalf("SetProxyRules: %v", err)
	}
	if err := rt.SetProxyRules(ctx, info, nil); err != nil { // cleared: a newer version
		t.Fatalf("SetProxyRules (clear): %v", err)
	}
	other, _ := newRuntime(t, d, func(o *ecs.Options) { o.ProxyAdminKey = []byte("another-backend-key") })
	if err := other.SetProxyRules(ctx, info, rules); !errors.Is(err, admin.ErrUnauthorized) {
		t.Fatalf("SetProxyRules with another key: %v, want ErrUnauthorized", err)
	}
	if err := rt.Stop(ctx, info.ID, "done"); err != nil {
		t.Fatal(err)
	}
}
