// Package runtimetest is the conformance suite every workspace runtime
// passes (the Docker engine and ECS): the same tests, gated by Features
// where the runtimes legitimately differ. A runtime's own test file calls
// Run with a Harness that builds it:
//
//	func TestConformance(t *testing.T) {
//		runtimetest.Run(t, runtimetest.Harness{New: ..., WaitReady: ...})
//	}
//
// The suite starts real workspaces and stops every one it started.
package runtimetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	"github.com/workspaced/workspaced/proxy/mcprule"
	"github.com/workspaced/workspaced/workspace"
)

// Runtime is what the suite exercises: the one runtime contract.
type Runtime = workspace.Runtime

// Features says how the runtime under test legitimately differs.
type Features struct {
	// StoppedVisible: after Stop, Inspect and List may still report the
	// workspace, as STOPPED (ECS keeps stopped tasks for a while). When
	// false, a stopped workspace is gone: Inspect returns ErrNotFound.
	StoppedVisible bool
	// HasIP: a running workspace's Endpoint is http://<ip>:<port> (ECS);
	// otherwise it is unix://<path> (Docker).
	HasIP bool
	// StartTimeout bounds one Start call (default 1 minute).
	StartTimeout time.Duration
	// ReadyTimeout bounds waiting for a started workspace to serve /health
	// (default 2 minutes).
	ReadyTimeout time.Duration
}

// Harness builds the runtime under test.
type Harness struct {
	Features Features
	// New returns the runtime for one test. Required. It registers its
	// own cleanups (t.Cleanup), e.g. removing whatever the test left.
	New func(t *testing.T) Runtime
	// WaitReady blocks until info's agent is reachable through Transport
	// and returns the workspace's current Info (with its Endpoint).
	// Required: the Docker runtime polls the agent socket, the ECS one
	// waits for the task's ENI address.
	WaitReady func(ctx context.Context, rt Runtime, info workspace.Info) (workspace.Info, error)
	// UnknownID is a well-formed ID the runtime never issued; Inspect must
	// report ErrNotFound and Stop must succeed for it. Required.
	UnknownID string
	// Restart returns a new runtime object over the same backend as rt
	// (same host directories, cluster or engine), as a restarted
	// workspaced builds it: nothing in memory carries over. Required: the
	// reconciler depends on what a restarted runtime still knows after
	// Redis is lost.
	Restart func(t *testing.T, rt Runtime) Runtime
	// ProxyRules reports the MCP rules the credential proxy of info
	// currently serves, when the harness can observe them (Docker: its
	// ProxyHost); nil where it cannot (an ECS sidecar holds them, and a
	// restart of the backend does not touch it).
	ProxyRules func(t *testing.T, rt Runtime, info workspace.Info) []mcprule.Rule
}

// Run runs the suite. Subtests run in parallel.
func Run(t *testing.T, h Harness) {
	t.Helper()
	if h.New == nil || h.WaitReady == nil || h.UnknownID == "" || h.Restart == nil {
		t.Fatal("runtimetest: Harness.New, WaitReady, UnknownID and Restart are required")
	}
	if h.Features.StartTimeout <= 0 {
		h.Features.StartTimeout = time.Minute
	}
	if h.Features.ReadyTimeout <= 0 {
		h.Features.ReadyTimeout = 2 * time.Minute
	}
	s := &suite{h: h}
	tests := []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"StartReturnsInfo", s.testStartReturnsInfo},
		{"StartTwiceSameToken", s.testStartTwiceSameToken},
		{"ConcurrentStartsOneWorkspace", s.testConcurrentStarts},
		{"Inspect", s.testInspect},
		{"InspectUnknown", s.testInspectUnknown},
		{"ListIncludesLabels", s.testList},
		{"TransportReachesHealth", s.testTransport},
		{"StopRemoves", s.testStop},
		{"StopUnknown", s.testStopUnknown},
		{"InvalidToken", s.testInvalidToken},
		{"ClaimRecords", s.testClaims},
		{"ProxyRules", s.testProxyRules},
		{"RecoverAfterRestart", s.testRecover},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t)
		})
	}
}

type suite struct{ h Harness }

// Token returns a fresh, valid start token (short: the Docker runtime puts
// it in a Unix socket path).
func Token(t testing.TB) string {
	t.Helper()
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("random token: %v", err)
	}
	return "rt" + hex.EncodeToString(b)
}

// ctx returns a context bounded by d, cancelled at the test's end.
func ctx(t *testing.T, d time.Duration) context.Context {
	c, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return c
}

// start starts spec and registers its Stop at cleanup.
func (s *suite) start(t *testing.T, rt Runtime, spec workspace.StartSpec) workspace.Info {
	t.Helper()
	info, err := rt.Start(ctx(t, s.h.Features.StartTimeout), spec)
	if err != nil {
		t.Fatalf("Start(%+v): %v", spec, err)
	}
	s.stopAtCleanup(t, rt, info.ID)
	return info
}

func (s *suite) stopAtCleanup(t *testing.T, rt Runtime, id string) {
	t.Cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := rt.Stop(c, id, "test cleanup"); err != nil {
			t.Errorf("cleanup: Stop(%s): %v", id, err)
		}
	})
}
