package store_test

import (
	"errors"
	"fmt"
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
// events), in order, trimmed to the entries (batches) holding the newest
// maxLen events.
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
	// Entries 1..5, 6..8 (3..5 were skipped), 9..12: the newest five,
	// 8..12, are in the last two.
	if err != nil || first != 6 || last != 12 {
		t.Fatalf("bounds = %d..%d, %v; want 6..12", first, last, err)
	}
	if w, err := e.s.WaitRunEvents(ctx, "r", 11, 10, 10*time.Millisecond); err != nil || len(w) != 1 || w[0].ID != 12 {
		t.Fatalf("WaitRunEvents = %+v, %v", w, err)
	}
	if w, err := e.s.WaitRunEvents(ctx, "r", 12, 10, 10*time.Millisecond); err != nil || len(w) != 0 {
		t.Fatalf("WaitRunEvents at the end = %+v, %v", w, err)
	}
	// A batch longer than the log keeps its newest maxLen events only.
	if err := e.s.AppendRunEvents(ctx, "r", evs(13, 30), 5); err != nil {
		t.Fatal(err)
	}
	if first, last, err := e.s.RunLogBounds(ctx, "r"); err != nil || first != 26 || last != 30 {
		t.Fatalf("bounds after a long batch = %d..%d, %v; want 26..30", first, last, err)
	}
}

// Reads split entries: from the middle of one, up to count entries, across
// a gap in the ids (separate entries), the re-sent tail of a batch
// skipped.
func TestRunLogReadSplitsBatches(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := ctxT(t)
	batch := []store.RunEvent{{ID: 1, Event: "run", Data: "{}"}, {ID: 2, Event: "stdout", Data: "a\nb"}, {ID: 3, Event: "stdout", Data: ""},
		{ID: 7, Event: "stdout", Data: "after a gap"}, {ID: 8, Event: "done", Data: `{"exit_code":0}`}}
	if err := e.s.AppendRunEvents(ctx, "r", batch, 100); err != nil {
		t.Fatal(err)
	}
	if err := e.s.AppendRunEvents(ctx, "r", batch[3:], 100); err != nil {
		t.Fatalf("re-sent tail: %v", err)
	}
	for _, tt := range []struct {
		name         string
		after, count int64
		want         []store.RunEvent
	}{
		{"all", 0, 100, batch},
		{"middle of an entry", 1, 100, batch[1:]},
		{"count", 1, 1, batch[1:3]},
		{"after the gap", 3, 100, batch[3:]},
		{"in the gap", 5, 100, batch[3:]},
		{"the end", 8, 100, nil},
	} {
		got, err := e.s.RunEvents(ctx, "r", tt.after, tt.count)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if len(got) != len(tt.want) {
			t.Fatalf("%s: got %+v, want %+v", tt.name, got, tt.want)
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Fatalf("%s: event %d = %+v, want %+v", tt.name, i, got[i], tt.want[i])
			}
		}
	}
	if w, err := e.s.WaitRunEvents(ctx, "r", 2, 100, 10*time.Millisecond); err != nil || len(w) != 3 || w[0] != batch[2] {
		t.Fatalf("WaitRunEvents after 2 = %+v, %v", w, err)
	}
	if err := e.s.AppendRunEvents(ctx, "r", []store.RunEvent{{ID: 9, Event: "a\nb"}}, 100); err == nil {
		t.Fatal("an event type with a newline was stored")
	}
}

// BeginRun claims, creates the run and takes its lease in one script; on a
// ready conversation the run is also started (base 1) with its first
// event logged.
func TestBeginRun(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := ctxT(t)
	first := store.RunEvent{ID: 1, Event: "run", Data: `{"run_id":"x"}`}
	begin := func(rid, cid, owner string) (store.Conversation, bool, error) {
		b, err := e.s.BeginRun(ctx, store.RunBegin{Run: store.Run{ID: rid, Conversation: cid, OnDisconnect: "cancel"},
			Owner: owner, Tenant: "t1", Lease: "run:" + rid, Holder: "replica-1", LeaseTTL: time.Minute, First: first, MaxEvents: 100})
		return b.Conversation, b.Started, err
	}
	// A new conversation: claimed, the run created, not started.
	conv, hot, err := begin("r1", "c1", "owner")
	if err != nil || hot || conv.Owner != "owner" || conv.Tenant != "t1" || conv.State != store.StateNone {
		t.Fatalf("cold BeginRun = %+v, %v, %v", conv, hot, err)
	}
	if r, err := e.s.GetRun(ctx, "r1"); err != nil || r.State != store.RunStarting || r.OnDisconnect != "cancel" || !r.Active() {
		t.Fatalf("cold run = %+v, %v", r, err)
	}
	if evs, err := e.s.RunEvents(ctx, "r1", 0, 10); err != nil || len(evs) != 0 {
		t.Fatalf("cold run's log = %+v, %v; want empty (the driver logs the first event)", evs, err)
	}
	if ok, err := e.s.AcquireLease(ctx, "run:r1", "replica-2", time.Minute); err != nil || ok {
		t.Fatalf("another replica took the run's lease: %v, %v", ok, err)
	}
	// Another owner: not found, nothing created.
	if _, _, err := begin("r2", "c1", "mallory"); !errors.Is(err, store.ErrNotOwner) {
		t.Fatalf("another owner: %v, want ErrNotOwner", err)
	}
	if _, err := e.s.GetRun(ctx, "r2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("another owner's run was recorded: %v", err)
	}
	// A taken run id.
	if _, _, err := begin("r1", "c1", "owner"); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("same run id again: %v, want ErrConflict", err)
	}
	// A ready conversation: the run starts on its workspace, event 1 logged.
	ready := e.ready(t, "c1", "w1")
	conv, hot, err = begin("r3", "c1", "owner")
	if err != nil || !hot || conv.Workspace != "w1" || conv.Endpoint != ready.Endpoint {
		t.Fatalf("hot BeginRun = %+v, %v, %v", conv, hot, err)
	}
	r, err := e.s.GetRun(ctx, "r3")
	if err != nil || r.State != store.RunRunning || r.Base != 1 || r.Workspace != "w1" || r.Endpoint != ready.Endpoint {
		t.Fatalf("hot run = %+v, %v", r, err)
	}
	evs, err := e.s.RunEvents(ctx, "r3", 0, 10)
	if err != nil || len(evs) != 1 || evs[0] != first {
		t.Fatalf("hot run's log = %+v, %v", evs, err)
	}
	// The proxy's rules: none wanted, none held; then rules set and not yet
	// applied; then applied.
	rulesHeld := func(rid string) bool {
		b, err := e.s.BeginRun(ctx, store.RunBegin{Run: store.Run{ID: rid, Conversation: "c1"}, Owner: "owner",
			Lease: "run:" + rid, Holder: "replica-1", LeaseTTL: time.Minute, First: first, MaxEvents: 100})
		if err != nil || !b.Started {
			t.Fatalf("BeginRun %s = %+v, %v", rid, b, err)
		}
		return b.RulesHeld
	}
	if !rulesHeld("r4") {
		t.Error("no rules wanted nor held: RulesHeld false")
	}
	digest, _, err := e.s.SetMCPRules(ctx, "c1", []byte(`[{"server":"s"}]`))
	if err != nil {
		t.Fatal(err)
	}
	if rulesHeld("r5") {
		t.Error("rules set, not applied: RulesHeld true")
	}
	if _, err := e.s.MarkRulesApplied(ctx, "w1", digest); err != nil {
		t.Fatal(err)
	}
	if !rulesHeld("r6") {
		t.Error("rules applied: RulesHeld false")
	}
	// The driver's own append of event 1 is not stored twice.
	if err := e.s.AppendRunEvents(ctx, "r3", []store.RunEvent{first, {ID: 2, Event: "stdout", Data: "x"}}, 100); err != nil {
		t.Fatal(err)
	}
	if evs, err := e.s.RunEvents(ctx, "r3", 0, 10); err != nil || len(evs) != 2 || evs[1].ID != 2 {
		t.Fatalf("log after the relay's append = %+v, %v", evs, err)
	}
}

// One call appends a long run of events as entries of at most 256 events
// (the bound the log's trim is documented with), in order, in one script
// call.
func TestRunLogAppendSplitsLongBatches(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := ctxT(t)
	var evs []store.RunEvent
	for i := int64(1); i <= 600; i++ {
		evs = append(evs, store.RunEvent{ID: i, Event: "stdout", Data: fmt.Sprint(i)})
	}
	if err := e.s.AppendRunEvents(ctx, "r", evs, 10000); err != nil {
		t.Fatal(err)
	}
	ids, err := e.client.XRange(ctx, "t:run:r:log", "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range ids {
		got = append(got, m.ID)
	}
	if want := []string{"256-1", "512-257", "600-513"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("entries %v, want %v", got, want)
	}
	back, err := e.s.RunEvents(ctx, "r", 0, 100)
	if err != nil || len(back) != 600 || back[599].Data != "600" {
		t.Fatalf("read back %d events, %v", len(back), err)
	}
}
