package runtimetest

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	agentclient "github.com/workspaced/workspaced/agent/client"
	"github.com/workspaced/workspaced/workspace"
)

func (s *suite) testStartReturnsInfo(t *testing.T) {
	rt := s.h.New(t)
	spec := workspace.StartSpec{Token: Token(t), Conversation: "conv-" + Token(t), Tenant: "tenant-a"}
	info := s.start(t, rt, spec)
	if info.ID == "" {
		t.Fatal("Start returned an empty ID")
	}
	if info.Token != spec.Token || info.Conversation != spec.Conversation || info.Tenant != spec.Tenant || info.Pool {
		t.Errorf("Start returned %+v, want token %q conversation %q tenant %q, not pool", info, spec.Token, spec.Conversation, spec.Tenant)
	}
	if info.Status == "" || info.Status.Stopping() {
		t.Errorf("Start returned status %q, want a live one", info.Status)
	}
	if info.CreatedAt.IsZero() {
		t.Error("Start returned a zero CreatedAt")
	}
}

func (s *suite) testStartTwiceSameToken(t *testing.T) {
	rt := s.h.New(t)
	spec := workspace.StartSpec{Token: Token(t), Conversation: "c1"}
	first := s.start(t, rt, spec)
	second := s.start(t, rt, spec)
	if first.ID != second.ID {
		t.Fatalf("two Starts with token %s gave %s and %s, want one workspace", spec.Token, first.ID, second.ID)
	}
}

func (s *suite) testConcurrentStarts(t *testing.T) {
	rt := s.h.New(t)
	spec := workspace.StartSpec{Token: Token(t), Conversation: "c2"}
	const n = 10
	ids := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	c := ctx(t, s.h.Features.StartTimeout)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			info, err := rt.Start(c, spec)
			ids[i], errs[i] = info.ID, err
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("Start %d: %v", i, errs[i])
		}
		s.stopAtCleanup(t, rt, ids[i])
		if ids[i] != ids[0] {
			t.Fatalf("concurrent Starts gave IDs %v, want one", ids)
		}
	}
	all, err := rt.List(ctx(t, s.h.Features.StartTimeout))
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	var found []string
	for _, info := range all {
		if info.Token == spec.Token {
			found = append(found, info.ID)
		}
	}
	if len(found) != 1 || found[0] != ids[0] {
		t.Fatalf("List shows workspaces %v for token %s, want exactly [%s]", found, spec.Token, ids[0])
	}
}

func (s *suite) testInspect(t *testing.T) {
	rt := s.h.New(t)
	spec := workspace.StartSpec{Token: Token(t), Conversation: "c3", Tenant: "t3"}
	started := s.start(t, rt, spec)
	got, err := rt.Inspect(ctx(t, s.h.Features.StartTimeout), started.ID)
	if err != nil {
		t.Fatalf("Inspect(%s): %v", started.ID, err)
	}
	if got.ID != started.ID || got.Token != spec.Token || got.Conversation != spec.Conversation || got.Tenant != spec.Tenant {
		t.Errorf("Inspect = %+v, want the started workspace %+v", got, started)
	}
	if got.Status.Stopping() {
		t.Errorf("Inspect status %s right after Start", got.Status)
	}
}

func (s *suite) testInspectUnknown(t *testing.T) {
	rt := s.h.New(t)
	_, err := rt.Inspect(ctx(t, s.h.Features.StartTimeout), s.h.UnknownID)
	if !errors.Is(err, workspace.ErrNotFound) {
		t.Fatalf("Inspect(unknown) = %v, want ErrNotFound", err)
	}
}

func (s *suite) testList(t *testing.T) {
	rt := s.h.New(t)
	conv := workspace.StartSpec{Token: Token(t), Conversation: "c4", Tenant: "t4"}
	pool := workspace.StartSpec{Token: Token(t), Pool: true}
	a, b := s.start(t, rt, conv), s.start(t, rt, pool)
	all, err := rt.List(ctx(t, s.h.Features.StartTimeout))
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	byID := map[string]workspace.Info{}
	for _, info := range all {
		byID[info.ID] = info
	}
	if got, ok := byID[a.ID]; !ok || got.Token != conv.Token || got.Conversation != "c4" || got.Tenant != "t4" || got.Pool {
		t.Errorf("List entry for the conversation workspace = %+v (present %v), want token %s conversation c4 tenant t4", got, ok, conv.Token)
	}
	if got, ok := byID[b.ID]; !ok || got.Token != pool.Token || !got.Pool || got.Conversation != "" {
		t.Errorf("List entry for the pool workspace = %+v (present %v), want token %s, pool", got, ok, pool.Token)
	}
}

func (s *suite) testTransport(t *testing.T) {
	rt := s.h.New(t)
	info := s.start(t, rt, workspace.StartSpec{Token: Token(t), Conversation: "c5"})
	ready, err := s.h.WaitReady(ctx(t, s.h.Features.ReadyTimeout), rt, info)
	if err != nil {
		t.Fatalf("WaitReady: %v", err)
	}
	if ready.Status != workspace.StatusRunning {
		t.Errorf("ready workspace status %s, want RUNNING", ready.Status)
	}
	wantScheme := "unix://"
	if s.h.Features.HasIP {
		wantScheme = "http://"
	}
	if !strings.HasPrefix(ready.Endpoint, wantScheme) {
		t.Fatalf("endpoint %q, want %s...", ready.Endpoint, wantScheme)
	}
	s.wantHealthy(t, rt, ready)
}

// wantHealthy checks that info's agent answers GET /health through rt's
// Transport.
func (s *suite) wantHealthy(t *testing.T, rt Runtime, info workspace.Info) {
	t.Helper()
	tr, err := rt.Transport(info.Endpoint)
	if err != nil {
		t.Fatalf("Transport(%s): %v", info.Endpoint, err)
	}
	base := agentclient.DefaultBaseURL // ignored by Unix-socket transports
	if s.h.Features.HasIP {
		base = info.Endpoint
	}
	h, err := agentclient.NewWithBaseURL(tr, base).Health(ctx(t, s.h.Features.ReadyTimeout))
	if c, ok := tr.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
	if err != nil {
		t.Fatalf("GET /health through Transport(%s): %v", info.Endpoint, err)
	}
	if h.Status != "ok" {
		t.Fatalf("agent health %+v, want status ok", h)
	}
}

func (s *suite) testStop(t *testing.T) {
	rt := s.h.New(t)
	spec := workspace.StartSpec{Token: Token(t), Conversation: "c6"}
	info := s.start(t, rt, spec)
	c := ctx(t, s.h.Features.StartTimeout+s.h.Features.ReadyTimeout)
	if err := rt.Stop(c, info.ID, "test"); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	got, err := rt.Inspect(c, info.ID)
	switch {
	case errors.Is(err, workspace.ErrNotFound):
	case err == nil && s.h.Features.StoppedVisible && got.Status.Stopping():
	default:
		t.Errorf("Inspect after Stop = %+v, %v; want ErrNotFound%s", got, err, map[bool]string{true: " or a stopping status"}[s.h.Features.StoppedVisible])
	}
	all, err := rt.List(c)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	for _, w := range all {
		if w.ID == info.ID && (!s.h.Features.StoppedVisible || !w.Status.Stopping()) {
			t.Errorf("List after Stop still shows %+v", w)
		}
	}
	if err := rt.Stop(c, info.ID, "test again"); err != nil {
		t.Errorf("second Stop: %v, want nil", err)
	}
}

func (s *suite) testStopUnknown(t *testing.T) {
	rt := s.h.New(t)
	if err := rt.Stop(ctx(t, s.h.Features.StartTimeout), s.h.UnknownID, "test"); err != nil {
		t.Fatalf("Stop(unknown) = %v, want nil", err)
	}
}

func (s *suite) testInvalidToken(t *testing.T) {
	rt := s.h.New(t)
	for _, tok := range []string{"", "-lead", "_lead", "a/b", "../x", "a b", "ä", strings.Repeat("a", 65)} {
		t.Run(fmt.Sprintf("%q", tok), func(t *testing.T) {
			info, err := rt.Start(ctx(t, s.h.Features.StartTimeout), workspace.StartSpec{Token: tok})
			if err == nil {
				s.stopAtCleanup(t, rt, info.ID)
			}
			if !errors.Is(err, workspace.ErrInvalidSpec) || !workspace.IsTerminal(err) {
				t.Fatalf("Start(token %q) = %v, want a terminal ErrInvalidSpec", tok, err)
			}
		})
	}
}
