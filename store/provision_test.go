package store_test

import (
	"errors"
	"testing"
	"time"

	"github.com/workspaced/workspaced/store"
	"github.com/workspaced/workspaced/workspace"
)

func TestProvisionLock(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := ctxT(t)
	const ttl = time.Minute
	type step struct {
		name    string
		advance time.Duration
		op      string // acquire | release
		holder  string
		want    bool
	}
	steps := []step{
		{"free lock", 0, "acquire", "h1", true},
		{"holder re-acquires (extends)", 0, "acquire", "h1", true},
		{"other holder refused", 30 * time.Second, "acquire", "h2", false},
		{"still held just before expiry", 30*time.Second - time.Millisecond, "acquire", "h2", false},
		{"non-holder cannot release", 0, "release", "h2", false},
		{"expired lock taken over", time.Millisecond, "acquire", "h2", true},
		{"old holder cannot release the new lock", 0, "release", "h1", false},
		{"old holder refused", 0, "acquire", "h1", false},
		{"holder releases", 0, "release", "h2", true},
		{"released lock is free", 0, "acquire", "h1", true},
	}
	for _, st := range steps {
		e.clock.Advance(st.advance)
		var got bool
		var err error
		if st.op == "acquire" {
			got, err = e.s.AcquireProvisionLock(ctx, "c1", st.holder, ttl)
		} else {
			got, err = e.s.ReleaseProvisionLock(ctx, "c1", st.holder)
		}
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if got != st.want {
			t.Fatalf("%s: %s(%s) = %v, want %v", st.name, st.op, st.holder, got, st.want)
		}
	}
	// The lock is per conversation.
	if ok := must(e.s.AcquireProvisionLock(ctx, "c2", "h2", ttl)).get(t); !ok {
		t.Fatal("lock of another conversation refused")
	}
}

func TestProvisionLockConcurrentOneHolder(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := ctxT(t)
	const n = 20
	got := make(chan bool, n)
	for i := range n {
		go func() {
			ok, err := e.s.AcquireProvisionLock(ctx, "c1", string(rune('a'+i)), time.Minute)
			if err != nil {
				t.Error(err)
			}
			got <- ok
		}()
	}
	won := 0
	for range n {
		if <-got {
			won++
		}
	}
	if won != 1 {
		t.Fatalf("%d holders acquired the lock, want 1", won)
	}
}

func TestBindProvisioning(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		before    func(t *testing.T, e env) // on conversation "c", workspace "w1"
		gen       int64
		wantErr   error
		wantConv  store.ConversationState
		wantBound string
		wantWS    store.WorkspaceState
		wantGen   int64
	}{
		{
			name:     "fresh bind",
			wantConv: store.StateProvisioning, wantBound: "w1", wantWS: store.WorkspaceProvisioning,
		},
		{
			name:     "rebind same workspace is idempotent",
			before:   func(t *testing.T, e env) { e.bind(t, "c", "w1") },
			wantConv: store.StateProvisioning, wantBound: "w1", wantWS: store.WorkspaceProvisioning,
		},
		{
			name:     "refused while bound to another live workspace",
			before:   func(t *testing.T, e env) { e.bind(t, "c", "w0") },
			wantErr:  store.ErrConflict,
			wantConv: store.StateProvisioning, wantBound: "w0",
		},
		{
			name:     "refused when the generation moved on",
			before:   func(t *testing.T, e env) { must(e.s.MarkFailed(ctxT(t), "c", "x")).get(t) },
			wantErr:  store.ErrConflict,
			wantConv: store.StateFailed, wantGen: 1,
		},
		{
			name: "new generation binds after a release",
			before: func(t *testing.T, e env) {
				e.ready(t, "c", "w0")
				must(e.s.Unbind(ctxT(t), "c", "w0")).get(t)
			},
			gen:      1,
			wantConv: store.StateProvisioning, wantBound: "w1", wantWS: store.WorkspaceProvisioning, wantGen: 1,
		},
		{
			name:     "RUNNING arrived first",
			before:   func(t *testing.T, e env) { e.apply(t, "w1", workspace.StatusRunning, 3) },
			wantConv: store.StateProvisioning, wantBound: "w1", wantWS: store.WorkspaceRunning,
		},
		{
			name: "ready before the bind",
			before: func(t *testing.T, e env) {
				e.apply(t, "w1", workspace.StatusRunning, 3)
				must(e.s.MarkReady(ctxT(t), "w1", "unix:///early")).get(t)
			},
			wantConv: store.StateReady, wantBound: "w1", wantWS: store.WorkspaceReady,
		},
		{
			name:     "STOPPED arrived first",
			before:   func(t *testing.T, e env) { e.apply(t, "w1", workspace.StatusStopped, 5) },
			wantErr:  store.ErrWorkspaceStopped,
			wantConv: store.StateLost, wantWS: store.WorkspaceStopped, wantGen: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			ctx := ctxT(t)
			must(e.s.ClaimConversation(ctx, "c", "owner", "tenant")).get(t)
			if tt.before != nil {
				tt.before(t, e)
			}
			_, err := e.s.BindProvisioning(ctx, store.Binding{Conversation: "c", Generation: tt.gen, Workspace: info("w1"), RequestedAt: e.clock.Now()})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("BindProvisioning: err = %v, want %v", err, tt.wantErr)
			}
			c := e.conv(t, "c")
			if c.State != tt.wantConv || c.Workspace != tt.wantBound || c.Generation != tt.wantGen {
				t.Fatalf("conversation = %+v, want %s bound to %q generation %d", c, tt.wantConv, tt.wantBound, tt.wantGen)
			}
			if c.State == store.StateReady && c.Endpoint != "unix:///early" {
				t.Fatalf("ready conversation endpoint = %q", c.Endpoint)
			}
			if tt.wantWS != "" {
				if w := e.ws(t, "w1"); w.State != tt.wantWS || w.Conversation != "c" || w.Token != "tok-w1" {
					t.Fatalf("workspace = %+v, want %s for c", w, tt.wantWS)
				}
			}
		})
	}
}
