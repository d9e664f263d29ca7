package store_test

import (
	"errors"
	"testing"
	"time"

	"github.com/workspaced/workspaced/store"
)

func TestRunLifecycle(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := ctxT(t)
	r := store.Run{ID: "r1", Conversation: "c1", OnDisconnect: "cancel"}
	if err := e.s.CreateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := e.s.CreateRun(ctx, r); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second CreateRun: %v, want ErrConflict", err)
	}
	if ids, err := e.s.ActiveRuns(ctx); err != nil || len(ids) != 1 || ids[0] != "r1" {
		t.Fatalf("ActiveRuns = %v, %v", ids, err)
	}
	if err := e.s.StartRun(ctx, "r1", "w1", "unix:///x", 3); err != nil {
		t.Fatal(err)
	}
	got, err := e.s.GetRun(ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	if got.State != store.RunRunning || got.Base != 3 || got.Workspace != "w1" || got.OnDisconnect != "cancel" || !got.Active() {
		t.Fatalf("run = %+v", got)
	}
	got.State, got.ExitCode = store.RunDone, 7
	if err := e.s.EndRun(ctx, got, time.Hour); err != nil {
		t.Fatal(err)
	}
	if ids, _ := e.s.ActiveRuns(ctx); len(ids) != 0 {
		t.Fatalf("ActiveRuns after the end = %v", ids)
	}
	list, err := e.s.ConversationRuns(ctx, "c1", 10)
	if err != nil || len(list) != 1 || list[0].State != store.RunDone || list[0].ExitCode != 7 {
		t.Fatalf("ConversationRuns = %+v, %v", list, err)
	}
	for _, k := range []string{"t:run:r1", "t:conv:c1:runs"} {
		if ttl := e.client.PTTL(ctx, k).Val(); ttl <= 0 || ttl > time.Hour {
			t.Errorf("%s: TTL %v after the end, want up to an hour", k, ttl)
		}
	}
	if _, err := e.s.GetRun(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetRun of an unknown run: %v", err)
	}
}

// The log holds each id once (a relay that took over re-sends stored
// events), in order, trimmed to the newest maxLen.
func TestRunLogAppendDedupTrim(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := ctxT(t)
	evs := func(from, to int64) []store.RunEvent {
		var out []store.RunEvent
		for i := from; i <= to; i++ {
			out = append(out, store.RunEvent{ID: i, Event: "stdout", Data: "line"})
		}
		return out
	}
	if err := e.s.AppendRunEvents(ctx, "r", evs(1, 5), 100); err != nil {
		t.Fatal(err)
	}
	if err := e.s.AppendRunEvents(ctx, "r", evs(3, 8), 100); err != nil {
		t.Fatalf("overlapping append: %v", err)
	}
	got, err := e.s.RunEvents(ctx, "r", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 8 {
		t.Fatalf("got %d events, want 8", len(got))
	}
	for i, ev := range got {
		if ev.ID != int64(i+1) || ev.Event != "stdout" || ev.Data != "line" {
			t.Fatalf("event %d = %+v", i, ev)
		}
	}
	if after, _ := e.s.RunEvents(ctx, "r", 6, 100); len(after) != 2 || after[0].ID != 7 {
		t.Fatalf("events after 6 = %+v", after)
	}
	if err := e.s.AppendRunEvents(ctx, "r", evs(9, 12), 5); err != nil {
		t.Fatal(err)
	}
	first, last, err := e.s.RunLogBounds(ctx, "r")
	if err != nil || first != 8 || last != 12 {
		t.Fatalf("bounds = %d..%d, %v; want 8..12", first, last, err)
	}
	if w, err := e.s.WaitRunEvents(ctx, "r", 11, 10, 10*time.Millisecond); err != nil || len(w) != 1 || w[0].ID != 12 {
		t.Fatalf("WaitRunEvents = %+v, %v", w, err)
	}
	if w, err := e.s.WaitRunEvents(ctx, "r", 12, 10, 10*time.Millisecond); err != nil || len(w) != 0 {
		t.Fatalf("WaitRunEvents at the end = %+v, %v", w, err)
	}
}
