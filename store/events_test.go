package store_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/workspaced/workspaced/internal/redistest"
	"github.com/workspaced/workspaced/store"
	"github.com/workspaced/workspaced/store/storetest"
	"github.com/workspaced/workspaced/workspace"
)

type ev struct {
	st workspace.Status
	v  int64
}

const (
	running = workspace.StatusRunning
	stopped = workspace.StatusStopped
	pending = workspace.StatusPending
)

func TestApplyTaskState(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		bound       bool // conversation "c" bound to "w" before the events
		events      []ev
		outcomes    []store.Outcome
		wantState   store.WorkspaceState
		wantVersion int64
		wantConv    store.ConversationState // when bound
	}{
		{
			name:      "pending then running",
			bound:     true,
			events:    []ev{{pending, 1}, {running, 2}},
			outcomes:  []store.Outcome{store.OutcomeApplied, store.OutcomeApplied},
			wantState: store.WorkspaceRunning, wantVersion: 2, wantConv: store.StateProvisioning,
		},
		{
			name:      "duplicate is stale",
			bound:     true,
			events:    []ev{{running, 2}, {running, 2}},
			outcomes:  []store.Outcome{store.OutcomeApplied, store.OutcomeStale},
			wantState: store.WorkspaceRunning, wantVersion: 2, wantConv: store.StateProvisioning,
		},
		{
			name:      "older event after newer is stale",
			bound:     true,
			events:    []ev{{running, 4}, {pending, 2}},
			outcomes:  []store.Outcome{store.OutcomeApplied, store.OutcomeStale},
			wantState: store.WorkspaceRunning, wantVersion: 4, wantConv: store.StateProvisioning,
		},
		{
			name:      "STOPPED v6 before RUNNING v4 stays stopped",
			bound:     true,
			events:    []ev{{stopped, 6}, {running, 4}},
			outcomes:  []store.Outcome{store.OutcomeApplied, store.OutcomeStale},
			wantState: store.WorkspaceStopped, wantVersion: 6, wantConv: store.StateLost,
		},
		{
			name:      "running then stopped loses the conversation",
			bound:     true,
			events:    []ev{{running, 1}, {stopped, 2}, {stopped, 2}},
			outcomes:  []store.Outcome{store.OutcomeApplied, store.OutcomeApplied, store.OutcomeStale},
			wantState: store.WorkspaceStopped, wantVersion: 2, wantConv: store.StateLost,
		},
		{
			name:      "newer RUNNING after STOPPED is ignored",
			bound:     true,
			events:    []ev{{stopped, 2}, {running, 3}},
			outcomes:  []store.Outcome{store.OutcomeApplied, store.OutcomeIgnored},
			wantState: store.WorkspaceStopped, wantVersion: 2, wantConv: store.StateLost,
		},
		{
			name:      "newer STOPPED after STOPPED updates the version only",
			bound:     true,
			events:    []ev{{workspace.StatusStopping, 2}, {stopped, 3}},
			outcomes:  []store.Outcome{store.OutcomeApplied, store.OutcomeApplied},
			wantState: store.WorkspaceStopped, wantVersion: 3, wantConv: store.StateLost,
		},
		{
			name:  "nanosecond versions one apart are told apart",
			bound: true,
			events: []ev{
				{running, 1764337863123456789}, {stopped, 1764337863123456790},
				{running, 1764337863123456789}, {stopped, 1764337863123456790},
			},
			outcomes:  []store.Outcome{store.OutcomeApplied, store.OutcomeApplied, store.OutcomeStale, store.OutcomeStale},
			wantState: store.WorkspaceStopped, wantVersion: 1764337863123456790, wantConv: store.StateLost,
		},
		{
			name:      "shorter version is older",
			events:    []ev{{running, 10}, {stopped, 9}},
			outcomes:  []store.Outcome{store.OutcomeApplied, store.OutcomeStale},
			wantState: store.WorkspaceRunning, wantVersion: 10,
		},
		{
			name:      "version zero applies to an unknown workspace",
			events:    []ev{{running, 0}},
			outcomes:  []store.Outcome{store.OutcomeApplied},
			wantState: store.WorkspaceRunning, wantVersion: 0,
		},
		{
			name:      "events before the bind are recorded",
			events:    []ev{{pending, 1}, {stopped, 3}, {running, 2}},
			outcomes:  []store.Outcome{store.OutcomeApplied, store.OutcomeApplied, store.OutcomeStale},
			wantState: store.WorkspaceStopped, wantVersion: 3,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			if tt.bound {
				e.bind(t, "c", "w")
			}
			var last store.ApplyResult
			for i, x := range tt.events {
				last = e.apply(t, "w", x.st, x.v)
				if last.Outcome != tt.outcomes[i] {
					t.Fatalf("event %d (%s v%d): outcome %s, want %s", i, x.st, x.v, last.Outcome, tt.outcomes[i])
				}
			}
			w := e.ws(t, "w")
			if w.State != tt.wantState || w.Version != tt.wantVersion || last.Workspace.State != tt.wantState {
				t.Fatalf("workspace = %+v, want %s v%d", w, tt.wantState, tt.wantVersion)
			}
			if tt.bound {
				c := e.conv(t, "c")
				if c.State != tt.wantConv {
					t.Fatalf("conversation = %+v, want %s", c, tt.wantConv)
				}
				if c.State == store.StateLost && (c.Workspace != "" || c.Generation != 1 || c.PreviousWorkspace != "w" || c.Error == "") {
					t.Fatalf("lost conversation = %+v, want unbound, generation 1, previous w, an error", c)
				}
			}
		})
	}
}

func TestApplyTaskStateDuplicateFlag(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.apply(t, "w", running, 5)
	if r := e.apply(t, "w", running, 5); !r.Duplicate {
		t.Fatalf("same version: %+v, want Duplicate", r)
	}
	if r := e.apply(t, "w", pending, 4); r.Duplicate || r.Outcome != store.OutcomeStale {
		t.Fatalf("older version: %+v, want stale, not duplicate", r)
	}
}

func TestStoppedEndsBindingOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.ready(t, "c", "w")
	r := e.apply(t, "w", stopped, 9)
	if r.Ended == nil || r.Ended.State != store.StateLost || r.Previous != store.WorkspaceReady {
		t.Fatalf("STOPPED result = %+v, want the conversation lost from ready", r)
	}
	if r := e.apply(t, "w", stopped, 10); r.Ended != nil {
		t.Fatalf("second STOPPED ended a binding again: %+v", r)
	}
	// The workspace is gone from every set; the tombstone remains.
	if ws := must(e.s.Workspaces(ctxT(t))).get(t); len(ws) != 0 {
		t.Fatalf("tracked workspaces after STOPPED = %+v", ws)
	}
	if got := e.conv(t, "c").Generation; got != 1 {
		t.Fatalf("generation = %d, want 1", got)
	}
}

func TestStoppedWhileReleasingIsReleased(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := ctxT(t)
	e.ready(t, "c", "w")
	if ok := must(e.s.MarkReleasing(ctx, "w", "client")).get(t); !ok {
		t.Fatal("MarkReleasing: workspace unknown")
	}
	e.apply(t, "w", stopped, 9)
	if c := e.conv(t, "c"); c.State != store.StateReleased || c.Error != "" || c.Generation != 1 {
		t.Fatalf("conversation = %+v, want released, generation 1", c)
	}
	if ok := must(e.s.MarkReleasing(ctx, "nope", "client")).get(t); ok {
		t.Fatal("MarkReleasing of an unknown workspace reported true")
	}
}

// TestApplyTaskStateConcurrent applies shuffled versions from many
// goroutines: the result must be the highest version's state, whatever the
// interleaving.
func TestApplyTaskStateConcurrent(t *testing.T) {
	t.Parallel()
	for _, last := range []workspace.Status{running, stopped} {
		t.Run(string(last), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			ctx := ctxT(t)
			e.bind(t, "c", "w")
			const n = 200
			evs := make([]ev, 0, n)
			for v := int64(1); v <= n; v++ {
				st := pending
				switch {
				case v == n:
					st = last
				case v > n/2:
					st = running
				}
				evs = append(evs, ev{st, v})
				evs = append(evs, ev{st, v}) // every event twice
			}
			rand.Shuffle(len(evs), func(i, j int) { evs[i], evs[j] = evs[j], evs[i] })
			var wg sync.WaitGroup
			work := make(chan ev)
			for range 16 {
				wg.Go(func() {
					for x := range work {
						if _, err := e.s.ApplyTaskState(ctx, store.TaskState{Workspace: "w", Status: x.st, Version: x.v}); err != nil {
							t.Error(err)
						}
					}
				})
			}
			for _, x := range evs {
				work <- x
			}
			close(work)
			wg.Wait()
			w := e.ws(t, "w")
			want := store.WorkspaceRunning
			if last == stopped {
				want = store.WorkspaceStopped
			}
			if w.Version != n || w.State != want || w.LastStatus != last {
				t.Fatalf("workspace = %+v, want %s v%d", w, want, n)
			}
		})
	}
}

func TestMarkReady(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := ctxT(t)
	if _, err := e.s.MarkReady(ctx, "nope", "x"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("MarkReady(unknown) = %v, want ErrNotFound", err)
	}
	e.bind(t, "c", "w")
	e.apply(t, "w", running, 1)
	r := must(e.s.MarkReady(ctx, "w", "unix:///a.sock")).get(t)
	if !r.Changed || r.Conversation == nil || r.Conversation.State != store.StateReady || r.Conversation.Endpoint != "unix:///a.sock" {
		t.Fatalf("MarkReady = %+v", r)
	}
	if r2 := must(e.s.MarkReady(ctx, "w", "unix:///a.sock")).get(t); r2.Changed || r2.Conversation != nil {
		t.Fatalf("second MarkReady = %+v, want unchanged", r2)
	}
	// A RUNNING with a higher version never moves ready back to running.
	e.apply(t, "w", running, 2)
	if w := e.ws(t, "w"); w.State != store.WorkspaceReady {
		t.Fatalf("workspace after a later RUNNING = %s, want ready", w.State)
	}
	e.apply(t, "w", stopped, 3)
	if _, err := e.s.MarkReady(ctx, "w", "x"); !errors.Is(err, store.ErrWorkspaceStopped) {
		t.Fatalf("MarkReady(stopped) = %v, want ErrWorkspaceStopped", err)
	}
}

// TestPrefixIsolation: two deployments sharing one Redis do not see each
// other's keys or notifications.
func TestPrefixIsolation(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	storetest.Audit(t, srv, "a:", "b:")
	a := store.New(srv.Client(t), store.Options{Prefix: "a:"})
	b := store.New(srv.Client(t), store.Options{Prefix: "b:"})
	ctx := ctxT(t)
	must(a.ClaimConversation(ctx, "c", "owner-a", "")).get(t)
	if _, err := b.ClaimConversation(ctx, "c", "owner-b", ""); err != nil {
		t.Fatalf("claim in deployment b: %v", err)
	}
	keys := must(srv.Client(t).Keys(ctx, "*").Result()).get(t)
	for _, k := range keys {
		if k[:2] != "a:" && k[:2] != "b:" {
			t.Fatalf("key %q has no deployment prefix", k)
		}
	}
}

// TestRunningAtIsFirstRunning: the readiness deadline counts from the
// first RUNNING; later RUNNING versions do not move it.
func TestRunningAtIsFirstRunning(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.bind(t, "c", "w")
	at := e.clock.Now()
	e.apply(t, "w", running, 1)
	e.clock.Advance(time.Minute)
	e.apply(t, "w", running, 2)
	if w := e.ws(t, "w"); !w.RunningAt.Equal(at) {
		t.Fatalf("RunningAt = %v, want %v", w.RunningAt, at)
	}
}

// TestApplyTaskStateBatchedResults applies events of many workspaces
// concurrently (they share batches: several apply scripts, each of many
// events, in one pipeline) after the script cache was flushed (the batch
// must load the script): every caller gets its own workspace's result,
// and a redelivery is stale.
func TestApplyTaskStateBatchedResults(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := ctxT(t)
	if err := e.client.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	const n = 200 // more than one script's batch
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			wid := fmt.Sprintf("w%d", i)
			for _, want := range []store.Outcome{store.OutcomeApplied, store.OutcomeStale} {
				res, err := e.s.ApplyTaskState(ctx, store.TaskState{Workspace: wid, Status: running, Version: 7})
				if err != nil {
					t.Error(err)
					return
				}
				if res.Outcome != want || res.Workspace.ID != wid || res.Workspace.Version != 7 {
					t.Errorf("%s: got %s for %+v, want %s", wid, res.Outcome, res.Workspace, want)
				}
			}
		})
	}
	wg.Wait()
}

// TestApplyTaskStateBatchKeepsEachCompareAndSet sends many versions of one
// workspace concurrently, so that several land in one script: each is
// compared with what the events before it in the batch stored, the
// highest version is what remains, and only events newer than the stored
// version at their turn were applied.
func TestApplyTaskStateBatchKeepsEachCompareAndSet(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := ctxT(t)
	const n = 150
	var (
		wg      sync.WaitGroup
		applied atomic.Int64
	)
	for v := 1; v <= n; v++ {
		wg.Go(func() {
			res, err := e.s.ApplyTaskState(ctx, store.TaskState{Workspace: "w", Status: running, Version: int64(v)})
			if err != nil {
				t.Error(err)
				return
			}
			switch res.Outcome {
			case store.OutcomeApplied:
				applied.Add(1)
				if res.Workspace.Version != int64(v) {
					t.Errorf("v%d applied, record says v%d", v, res.Workspace.Version)
				}
			case store.OutcomeStale:
				if res.Workspace.Version <= int64(v) {
					t.Errorf("v%d stale against v%d", v, res.Workspace.Version)
				}
			default:
				t.Errorf("v%d: %s", v, res.Outcome)
			}
		})
	}
	wg.Wait()
	if w := e.ws(t, "w"); w.Version != n || w.State != store.WorkspaceRunning {
		t.Fatalf("record = %+v, want v%d running", w, n)
	}
	if applied.Load() < 1 {
		t.Fatal("no event applied")
	}
}
