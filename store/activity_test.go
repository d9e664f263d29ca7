package store_test

import (
	"slices"
	"testing"
	"time"

	"github.com/workspaced/workspaced/store"
	"github.com/workspaced/workspaced/workspace"
)

func idleIDs(t *testing.T, e env, ttl time.Duration) []string {
	t.Helper()
	var ids []string
	for _, i := range must(e.s.IdleWorkspaces(ctxT(t), ttl, 10)).get(t) {
		ids = append(ids, i.Workspace)
	}
	return ids
}

func TestIdleWorkspaces(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := ctxT(t)
	const ttl = time.Hour
	e.ready(t, "c1", "w1")
	e.clock.Advance(30 * time.Minute)
	e.ready(t, "c2", "w2")
	e.bind(t, "c3", "w3") // never ready: not tracked for use

	if ok := must(e.s.Touch(ctx, "unknown")).get(t); ok {
		t.Fatal("Touch(unknown) recorded a use")
	}
	if got := idleIDs(t, e, ttl); len(got) != 0 {
		t.Fatalf("idle at +30m = %v, want none", got)
	}
	e.clock.Advance(31 * time.Minute)
	got := must(e.s.IdleWorkspaces(ctx, ttl, 10)).get(t)
	if len(got) != 1 || got[0].Workspace != "w1" || got[0].Conversation != "c1" {
		t.Fatalf("idle at +61m = %+v, want w1 of c1", got)
	}
	must(e.s.Touch(ctx, "w1")).get(t)
	if got := idleIDs(t, e, ttl); len(got) != 0 {
		t.Fatalf("idle after touching w1 = %v, want none", got)
	}
	e.clock.Advance(2 * time.Hour)
	if got := idleIDs(t, e, ttl); !slices.Equal(got, []string{"w2", "w1"}) {
		t.Fatalf("idle at +3h = %v, want [w2 w1] (oldest use first)", got)
	}
	// A stopped workspace is no longer a GC candidate.
	e.apply(t, "w2", workspace.StatusStopped, 9)
	if got := idleIDs(t, e, ttl); !slices.Equal(got, []string{"w1"}) {
		t.Fatalf("idle after w2 stopped = %v, want [w1]", got)
	}
	// Nor is a released one.
	must(e.s.Unbind(ctx, "c1", "w1")).get(t)
	if got := idleIDs(t, e, ttl); len(got) != 0 {
		t.Fatalf("idle after release = %v, want none", got)
	}
}

func TestStreamLeases(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := ctxT(t)
	const ttl, lease = time.Hour, 5 * time.Minute
	e.ready(t, "c", "w")
	if ok := must(e.s.StreamStarted(ctx, "w", "s1", lease)).get(t); !ok {
		t.Fatal("StreamStarted refused a ready workspace")
	}
	if ok := must(e.s.StreamStarted(ctx, "nope", "s1", lease)).get(t); ok {
		t.Fatal("StreamStarted accepted an unknown workspace")
	}
	// An open, renewed stream keeps the workspace busy past the idle TTL.
	for range 20 {
		e.clock.Advance(4 * time.Minute)
		must(e.s.RenewStream(ctx, "w", "s1", lease)).get(t)
	}
	if got := idleIDs(t, e, ttl); len(got) != 0 {
		t.Fatalf("idle with an open stream = %v", got)
	}
	// Ending it is a use: idle only a TTL later.
	must(0, e.s.StreamEnded(ctx, "w", "s1")).get(t)
	e.clock.Advance(ttl - time.Minute)
	if got := idleIDs(t, e, ttl); len(got) != 0 {
		t.Fatalf("idle just before TTL after stream end = %v", got)
	}
	// A stream whose holder crashed (no renew, no end) expires.
	must(e.s.StreamStarted(ctx, "w", "s2", lease)).get(t)
	e.clock.Advance(lease + ttl)
	if got := idleIDs(t, e, ttl); !slices.Equal(got, []string{"w"}) {
		t.Fatalf("idle after the crashed stream's lease expired = %v, want [w]", got)
	}
}

// TestTouchNeverMovesBack: a replica with a slow clock cannot make a
// workspace look older than it is.
func TestTouchNeverMovesBack(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := ctxT(t)
	e.ready(t, "c", "w")
	e.clock.Advance(50 * time.Minute)
	must(e.s.Touch(ctx, "w")).get(t)
	e.clock.Advance(-40 * time.Minute)
	must(e.s.Touch(ctx, "w")).get(t)
	e.clock.Advance(40*time.Minute + 59*time.Minute)
	if got := idleIDs(t, e, time.Hour); len(got) != 0 {
		t.Fatalf("idle = %v; the older touch moved last use back", got)
	}
}

// TestUsedSince: workspaces used after a time, oldest first, with their
// conversation and whether a stream lease is open.
func TestUsedSince(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := ctxT(t)
	e.ready(t, "c1", "w1")
	since := e.clock.Now()
	e.clock.Advance(time.Minute)
	e.ready(t, "c2", "w2")
	must(e.s.StreamStarted(ctx, "w2", "s1", time.Minute)).get(t)
	got := must(e.s.UsedSince(ctx, since, 10)).get(t)
	if len(got) != 1 || got[0].Workspace != "w2" || got[0].Conversation != "c2" || !got[0].Streaming {
		t.Fatalf("used since = %+v, want w2 of c2 streaming", got)
	}
	e.clock.Advance(time.Minute)
	if err := e.s.StreamEnded(ctx, "w2", "s1"); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Second)
	must(e.s.Touch(ctx, "w1")).get(t)
	got = must(e.s.UsedSince(ctx, since, 10)).get(t)
	if len(got) != 2 || got[0].Workspace != "w2" || got[0].Streaming || got[1].Workspace != "w1" || got[1].Streaming {
		t.Fatalf("used since = %+v, want w2 then w1, none streaming", got)
	}
	if got := must(e.s.UsedSince(ctx, e.clock.Now(), 10)).get(t); len(got) != 0 {
		t.Fatalf("used since now = %+v", got)
	}
}

// TestRunEndIsAUse: the end of a run touches its workspace's last use
// (the checkpointer and the idle GC see it), not a stopped one's.
func TestRunEndIsAUse(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := ctxT(t)
	e.ready(t, "c1", "w1")
	e.clock.Advance(time.Minute)
	since := e.clock.Now()
	r := store.Run{ID: "r1", Conversation: "c1"}
	if err := e.s.CreateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := e.s.StartRun(ctx, "r1", "w1", "unix:///x", 0); err != nil {
		t.Fatal(err)
	}
	if got := must(e.s.UsedSince(ctx, since, 10)).get(t); len(got) != 0 {
		t.Fatalf("used before the run ended: %+v", got)
	}
	e.clock.Advance(time.Second)
	r.State = store.RunDone
	if err := e.s.EndRun(ctx, r, time.Hour); err != nil {
		t.Fatal(err)
	}
	if got := must(e.s.UsedSince(ctx, since, 10)).get(t); len(got) != 1 || got[0].Workspace != "w1" || got[0].Streaming {
		t.Fatalf("used after the run ended = %+v, want w1", got)
	}
}
