package runtimetest

import (
	"errors"
	"reflect"
	"testing"

	"github.com/workspaced/workspaced/proxy/mcprule"
	"github.com/workspaced/workspaced/workspace"
)

// Cases for the per-workspace state a runtime owns: claim records, proxy
// rules, and what a restarted runtime object finds again. The reconciler
// rebuilds Redis from exactly these after Redis is lost.

func (s *suite) testClaims(t *testing.T) {
	rt := s.h.New(t)
	c := ctx(t, s.h.Features.ReadyTimeout)
	info := s.ready(t, rt, workspace.StartSpec{Token: Token(t), Pool: true})
	if got, ok, err := rt.ReadClaim(c, info); err != nil || ok {
		t.Fatalf("ReadClaim of an unclaimed workspace = %+v, %v, %v; want none", got, ok, err)
	}
	first := workspace.Claim{Conversation: "conv-" + Token(t), Owner: "k_0123abcd", Tenant: "acme", Generation: 1}
	if err := rt.RecordClaim(c, info, first); err != nil {
		t.Fatalf("RecordClaim: %v", err)
	}
	if err := rt.RecordClaim(c, info, first); err != nil {
		t.Fatalf("RecordClaim again (idempotent): %v", err)
	}
	next := first
	next.Generation = 2
	if err := rt.RecordClaim(c, info, next); err != nil {
		t.Fatalf("RecordClaim replacing: %v", err)
	}
	if got, ok, err := rt.ReadClaim(c, info); err != nil || !ok || got != next {
		t.Fatalf("ReadClaim = %+v, %v, %v; want %+v", got, ok, err, next)
	}
	if err := rt.Stop(c, info.ID, "test"); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if got, ok, err := rt.ReadClaim(c, info); err != nil || ok {
		t.Errorf("ReadClaim after Stop = %+v, %v, %v; want none (the record goes with the workspace)", got, ok, err)
	}
	if _, err := rt.PruneClaims(c); err != nil {
		t.Errorf("PruneClaims: %v", err)
	}
}

func (s *suite) testProxyRules(t *testing.T) {
	rt := s.h.New(t)
	c := ctx(t, s.h.Features.ReadyTimeout)
	info := s.ready(t, rt, workspace.StartSpec{Token: Token(t), Conversation: "rules"})
	rules := []mcprule.Rule{{Host: "mcp.example.com", Port: 443, PathPrefix: "/mcp", Headers: map[string]string{"Authorization": "Bearer " + Token(t)}}}
	if err := rt.SetProxyRules(c, info, rules); err != nil {
		t.Fatalf("SetProxyRules: %v", err)
	}
	s.wantRules(t, rt, info, rules)
	bad := []mcprule.Rule{{Host: "mcp.example.com", Headers: map[string]string{"X-Bad": "a\r\nInjected: b"}}}
	if err := rt.SetProxyRules(c, info, bad); !errors.Is(err, workspace.ErrInvalidSpec) {
		t.Fatalf("SetProxyRules(header with CRLF) = %v, want ErrInvalidSpec", err)
	}
	s.wantRules(t, rt, info, rules) // a refused set changes nothing
	if err := rt.SetProxyRules(c, info, nil); err != nil {
		t.Fatalf("SetProxyRules(none): %v", err)
	}
	s.wantRules(t, rt, info, nil)
}

func (s *suite) testRecover(t *testing.T) {
	rt := s.h.New(t)
	c := ctx(t, s.h.Features.ReadyTimeout)
	info := s.ready(t, rt, workspace.StartSpec{Token: Token(t), Pool: true})
	claim := workspace.Claim{Conversation: "conv-" + Token(t), Owner: "k_0123abcd", Tenant: "acme", Generation: 3}
	rules := []mcprule.Rule{{Host: "*.example.com", Port: 8443, PathPrefix: "/", Headers: map[string]string{"X-Api-Key": Token(t)}}}
	if err := rt.RecordClaim(c, info, claim); err != nil {
		t.Fatalf("RecordClaim: %v", err)
	}
	if err := rt.SetProxyRules(c, info, rules); err != nil {
		t.Fatalf("SetProxyRules: %v", err)
	}

	again := s.h.Restart(t, rt)
	n, err := again.Recover(c)
	if err != nil {
		t.Fatalf("Recover: %v", err)
	}
	if want := 0; again.Capabilities().HostProxies {
		want = 1
		if n != want {
			t.Fatalf("Recover re-attached %d workspaces, want %d (this test's one)", n, want)
		}
	} else if n != want {
		t.Fatalf("Recover re-attached %d workspaces on a runtime without host proxies, want 0", n)
	}
	if n, err := again.Recover(c); err != nil || n != 0 {
		t.Fatalf("second Recover = %d, %v; want 0, nil (idempotent)", n, err)
	}
	got, err := again.Inspect(c, info.ID)
	if err != nil || got.Status != workspace.StatusRunning {
		t.Fatalf("restarted runtime: Inspect = %+v, %v; want RUNNING", got, err)
	}
	if got.Conversation != claim.Conversation {
		t.Errorf("restarted runtime: Inspect conversation %q, want the claim's %q", got.Conversation, claim.Conversation)
	}
	if gotClaim, ok, err := again.ReadClaim(c, got); err != nil || !ok || gotClaim != claim {
		t.Fatalf("restarted runtime: ReadClaim = %+v, %v, %v; want %+v", gotClaim, ok, err, claim)
	}
	s.wantRules(t, again, got, rules)
	s.wantHealthy(t, again, got)
	var listed bool
	all, err := again.List(c)
	if err != nil {
		t.Fatalf("restarted runtime: List: %v", err)
	}
	for _, w := range all {
		listed = listed || (w.ID == info.ID && w.Conversation == claim.Conversation)
	}
	if !listed {
		t.Errorf("restarted runtime: List does not show %s with its claimed conversation", info.ID)
	}
}

// ready starts spec and waits until its agent serves.
func (s *suite) ready(t *testing.T, rt Runtime, spec workspace.StartSpec) workspace.Info {
	t.Helper()
	info := s.start(t, rt, spec)
	info, err := s.h.WaitReady(ctx(t, s.h.Features.ReadyTimeout), rt, info)
	if err != nil {
		t.Fatalf("WaitReady(%s): %v", info.ID, err)
	}
	return info
}

// wantRules checks the rules info's proxy serves, where the harness can
// observe them.
func (s *suite) wantRules(t *testing.T, rt Runtime, info workspace.Info, want []mcprule.Rule) {
	t.Helper()
	if s.h.ProxyRules == nil {
		return
	}
	got := s.h.ProxyRules(t, rt, info)
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("proxy of %s serves %d rules %v, want %d %v", info.ID, len(got), mcprule.List(got), len(want), mcprule.List(want))
	}
}
