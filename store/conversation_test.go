package store_test

import (
	"errors"
	"testing"
	"time"

	"github.com/workspaced/workspaced/store"
)

func TestClaimConversation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := ctxT(t)
	if _, err := e.s.Conversation(ctx, "c1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Conversation(unknown) = %v, want ErrNotFound", err)
	}
	steps := []struct {
		name, owner string
		wantErr     error
	}{
		{"first use creates", "key-a", nil},
		{"same owner again", "key-a", nil},
		{"other owner refused", "key-b", store.ErrNotOwner},
		{"first owner still", "key-a", nil},
	}
	for _, st := range steps {
		c, err := e.s.ClaimConversation(ctx, "c1", st.owner, "tenant-a")
		if !errors.Is(err, st.wantErr) {
			t.Fatalf("%s: err = %v, want %v", st.name, err, st.wantErr)
		}
		if err == nil && (c.Owner != "key-a" || c.Tenant != "tenant-a" || c.State != store.StateNone) {
			t.Fatalf("%s: conversation = %+v", st.name, c)
		}
	}
}

func TestConversationOf(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := ctxT(t)
	if _, err := e.s.ConversationOf(ctx, "c", "a"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown: %v, want ErrNotFound", err)
	}
	must(e.s.ClaimConversation(ctx, "c", "a", "")).get(t)
	if c, err := e.s.ConversationOf(ctx, "c", "a"); err != nil || c.Owner != "a" {
		t.Fatalf("owner: %+v, %v", c, err)
	}
	if _, err := e.s.ConversationOf(ctx, "c", "b"); !errors.Is(err, store.ErrNotOwner) {
		t.Fatalf("other owner: %v, want ErrNotOwner", err)
	}
}

func TestClaimConversationConcurrentOneOwner(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := ctxT(t)
	const n = 20
	errs := make(chan error, n)
	for i := range n {
		go func() {
			_, err := e.s.ClaimConversation(ctx, "c1", string(rune('a'+i)), "")
			errs <- err
		}()
	}
	won := 0
	for range n {
		err := <-errs
		switch {
		case err == nil:
			won++
		case !errors.Is(err, store.ErrNotOwner):
			t.Fatal(err)
		}
	}
	if won != 1 {
		t.Fatalf("%d owners won, want 1", won)
	}
}

func TestMarkQueued(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := ctxT(t)
	at := e.clock.Now()
	must(e.s.ClaimConversation(ctx, "c1", "o", "")).get(t)
	c := must(e.s.MarkQueued(ctx, "c1", "r1", at)).get(t)
	if c.State != store.StateQueued || c.RequestID != "r1" || !c.RequestedAt.Equal(at) {
		t.Fatalf("queued = %+v", c)
	}
	c2 := must(e.s.MarkQueued(ctx, "c1", "r2", at.Add(time.Second))).get(t)
	if c2.RequestID != "r1" || c2.Rev != c.Rev {
		t.Fatalf("second MarkQueued changed the conversation: %+v", c2)
	}
	e.ready(t, "c2", "w2")
	c3 := must(e.s.MarkQueued(ctx, "c2", "r3", at)).get(t)
	if c3.State != store.StateReady || c3.Workspace != "w2" {
		t.Fatalf("MarkQueued on a live conversation = %+v", c3)
	}
}

func TestSettle(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		setup    func(t *testing.T, e env) // conversation "c"
		op       func(t *testing.T, e env) (store.Conversation, error)
		wantErr  error
		want     store.ConversationState
		wantGen  int64
		wantPrev string
	}{
		{
			name:  "unbind bound workspace",
			setup: func(t *testing.T, e env) { e.ready(t, "c", "w1") },
			op:    func(t *testing.T, e env) (store.Conversation, error) { return e.s.Unbind(ctxT(t), "c", "w1") },
			want:  store.StateReleased, wantGen: 1, wantPrev: "w1",
		},
		{
			name:    "unbind other workspace refused",
			setup:   func(t *testing.T, e env) { e.ready(t, "c", "w1") },
			op:      func(t *testing.T, e env) (store.Conversation, error) { return e.s.Unbind(ctxT(t), "c", "w0") },
			wantErr: store.ErrConflict, want: store.StateReady,
		},
		{
			name: "unbind twice refused",
			setup: func(t *testing.T, e env) {
				e.ready(t, "c", "w1")
				must(e.s.Unbind(ctxT(t), "c", "w1")).get(t)
			},
			op:      func(t *testing.T, e env) (store.Conversation, error) { return e.s.Unbind(ctxT(t), "c", "w1") },
			wantErr: store.ErrConflict, want: store.StateReleased, wantGen: 1, wantPrev: "w1",
		},
		{
			name:  "mark failed unbound",
			setup: func(t *testing.T, e env) { must(e.s.MarkQueued(ctxT(t), "c", "r", time.Now())).get(t) },
			op:    func(t *testing.T, e env) (store.Conversation, error) { return e.s.MarkFailed(ctxT(t), "c", "boom") },
			want:  store.StateFailed, wantGen: 1,
		},
		{
			name: "mark failed twice keeps generation",
			setup: func(t *testing.T, e env) {
				must(e.s.MarkFailed(ctxT(t), "c", "boom")).get(t)
			},
			op:   func(t *testing.T, e env) (store.Conversation, error) { return e.s.MarkFailed(ctxT(t), "c", "boom") },
			want: store.StateFailed, wantGen: 1,
		},
		{
			name:    "mark failed refused while live",
			setup:   func(t *testing.T, e env) { e.bind(t, "c", "w1") },
			op:      func(t *testing.T, e env) (store.Conversation, error) { return e.s.MarkFailed(ctxT(t), "c", "boom") },
			wantErr: store.ErrConflict, want: store.StateProvisioning,
		},
		{
			name:  "fail bound workspace",
			setup: func(t *testing.T, e env) { e.bind(t, "c", "w1") },
			op: func(t *testing.T, e env) (store.Conversation, error) {
				return e.s.FailWorkspace(ctxT(t), "c", "w1", "unhealthy")
			},
			want: store.StateFailed, wantGen: 1, wantPrev: "w1",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			tt.setup(t, e)
			_, err := tt.op(t, e)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			c := e.conv(t, "c")
			if c.State != tt.want || c.Generation != tt.wantGen || c.PreviousWorkspace != tt.wantPrev {
				t.Fatalf("conversation = %+v, want state %s generation %d previous %q", c, tt.want, tt.wantGen, tt.wantPrev)
			}
			if !c.State.Live() && (c.Workspace != "" || c.Endpoint != "") {
				t.Fatalf("settled conversation still bound: %+v", c)
			}
		})
	}
}
