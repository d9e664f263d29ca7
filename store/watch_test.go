package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/workspaced/workspaced/internal/redistest"
	"github.com/workspaced/workspaced/store"
	"github.com/workspaced/workspaced/workspace"
)

func watch(t *testing.T, e env, cid string) *store.Watch {
	t.Helper()
	w := must(e.s.Watch(ctxT(t), cid)).get(t)
	t.Cleanup(func() { _ = w.Close() })
	return w
}

func next(t *testing.T, w *store.Watch) store.Conversation {
	t.Helper()
	return must(w.Next(ctxT(t))).get(t)
}

func TestWatchFirstStateOfUnusedConversation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if c := next(t, watch(t, e, "c")); c.State != store.StateNone || c.Rev != 0 || c.ID != "c" {
		t.Fatalf("first state = %+v, want none rev 0", c)
	}
}

// TestWatchEveryChangeInOrder: changes made back to back, before the
// reader asks, are all returned, in order, once each.
func TestWatchEveryChangeInOrder(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := ctxT(t)
	must(e.s.ClaimConversation(ctx, "c", "o", "")).get(t)
	w := watch(t, e, "c")
	if c := next(t, w); c.State != store.StateNone {
		t.Fatalf("first state = %s", c.State)
	}
	must(e.s.MarkQueued(ctx, "c", "r", e.clock.Now())).get(t)
	must(e.s.BindProvisioning(ctx, store.Binding{Conversation: "c", Workspace: info("w")})).get(t)
	e.apply(t, "w", workspace.StatusRunning, 1)
	must(e.s.MarkReady(ctx, "w", "unix:///x")).get(t)
	e.apply(t, "w", workspace.StatusStopped, 2)
	for _, want := range []store.ConversationState{store.StateQueued, store.StateProvisioning, store.StateReady, store.StateLost} {
		if c := next(t, w); c.State != want {
			t.Fatalf("state = %s, want %s", c.State, want)
		}
	}
}

// TestWatchChangeBetweenSubscribeAndRead: a change made after Watch
// subscribed but before the first Next is in the first state, and its
// notification is not returned a second time.
func TestWatchChangeBetweenSubscribeAndRead(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := ctxT(t)
	w := watch(t, e, "c")
	must(e.s.MarkQueued(ctx, "c", "r", e.clock.Now())).get(t)
	first := next(t, w)
	if first.State != store.StateQueued {
		t.Fatalf("first state = %s, want queued", first.State)
	}
	must(e.s.MarkFailed(ctx, "c", "boom")).get(t)
	if c := next(t, w); c.State != store.StateFailed || c.Rev <= first.Rev {
		t.Fatalf("second state = %+v, want failed with a newer rev than %d", c, first.Rev)
	}
}

// TestWatchWakesOnChange: a blocked Next returns when another client
// changes the conversation.
func TestWatchWakesOnChange(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := ctxT(t)
	w := watch(t, e, "c")
	next(t, w) // subscribed and read: any later change is a notification
	got := make(chan store.Conversation, 1)
	go func() {
		c, err := w.Next(ctx)
		if err != nil {
			t.Error(err)
		}
		got <- c
	}()
	e.ready(t, "c", "w") // claim, bind, running, ready: several changes
	select {
	case c := <-got:
		if c.State != store.StateProvisioning {
			t.Fatalf("woke with %s, want provisioning (the first change)", c.State)
		}
	case <-ctx.Done():
		t.Fatal("Next did not wake")
	}
}

func TestWaitConversation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := ctxT(t)
	done := make(chan store.Conversation, 1)
	go func() {
		c, err := e.s.WaitConversation(ctx, "c", func(c store.Conversation) bool { return c.Done() })
		if err != nil {
			t.Error(err)
		}
		done <- c
	}()
	e.ready(t, "c", "w")
	select {
	case c := <-done:
		if c.State != store.StateReady || c.Endpoint != "unix:///ready/w" {
			t.Fatalf("WaitConversation = %+v, want ready", c)
		}
	case <-ctx.Done():
		t.Fatal("WaitConversation did not return")
	}
}

func TestWaitConversationRespectsContext(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	never := func(store.Conversation) bool { return false }

	ctx, cancel := context.WithCancel(ctxT(t))
	errc := make(chan error, 1)
	go func() {
		_, err := e.s.WaitConversation(ctx, "c", never)
		errc <- err
	}()
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled wait = %v, want context.Canceled", err)
	}

	dctx, dcancel := context.WithTimeout(ctxT(t), 50*time.Millisecond)
	defer dcancel()
	if _, err := e.s.WaitConversation(dctx, "c", never); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("wait past deadline = %v, want context.DeadlineExceeded", err)
	}
}

// TestWatchSurvivesReconnect: a change made while the pub/sub connection
// was down is seen after go-redis reconnects (the watch re-reads on every
// subscription confirmation).
func TestWatchSurvivesReconnect(t *testing.T) {
	t.Parallel()
	// No key audit here: killing every pub/sub client kills the audit's
	// keyspace subscription too (the keys this test writes are audited by
	// the other watch tests).
	srv := redistest.Start(t)
	c := newClock()
	s := store.New(srv.Client(t), store.Options{Now: c.Now})
	ctx := ctxT(t)
	w := must(s.Watch(ctx, "c")).get(t)
	defer w.Close()
	must(w.Next(ctx)).get(t)
	admin := srv.Client(t)
	if err := admin.Do(ctx, "CLIENT", "KILL", "TYPE", "pubsub").Err(); err != nil {
		t.Fatal(err)
	}
	must(s.MarkQueued(ctx, "c", "r", c.Now())).get(t)
	if got := must(w.Next(ctx)).get(t); got.State != store.StateQueued {
		t.Fatalf("state after reconnect = %s, want queued", got.State)
	}
}
