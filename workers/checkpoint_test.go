package workers_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/workspaced/workspaced/store"
	"github.com/workspaced/workspaced/workers"
	"github.com/workspaced/workspaced/workspace"
)

// checkpointStore is an in-memory workers.CheckpointStore: one ready
// conversation c1 on workspace w1, whose activity the test sets.
type checkpointStore struct {
	mu  sync.Mutex
	use store.Use
}

func (s *checkpointStore) AcquireLease(context.Context, string, string, time.Duration) (bool, error) {
	return true, nil
}
func (s *checkpointStore) ReleaseLease(context.Context, string, string) (bool, error) {
	return true, nil
}
func (s *checkpointStore) UsedSince(_ context.Context, since time.Time, _ int) ([]store.Use, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.use.LastUse.After(since) {
		return nil, nil
	}
	return []store.Use{s.use}, nil
}
func (s *checkpointStore) Conversation(_ context.Context, cid string) (store.Conversation, error) {
	return store.Conversation{ID: cid, Tenant: "t", State: store.StateReady, Workspace: "w1", Endpoint: "unix:///x"}, nil
}

// TestCheckpointerSchedule: a run's end is checkpointed at once; while a
// run goes on, a checkpoint is due only every Interval; nothing happens
// when nothing was used since the last checkpoint.
func TestCheckpointerSchedule(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := t0
	st := &checkpointStore{}
	saved := make(chan workspace.SaveTarget, 10)
	saver := saverFunc(func(_ context.Context, tg workspace.SaveTarget) error { saved <- tg; return nil })
	c := workers.NewCheckpointer(saver, st, nil, workers.CheckpointOptions{
		Interval: time.Minute, Tick: time.Second, Logger: testLogger(t), Now: func() time.Time { return now },
	})
	ctx := context.Background()
	steps := []struct {
		name      string
		advance   time.Duration
		lastUse   time.Duration // since t0
		streaming bool
		want      bool // a checkpoint is taken
	}{
		{"run starts: first sight is the base", 0, 0, true, false},
		{"run goes on, not due", 30 * time.Second, 30 * time.Second, true, false},
		{"run goes on, interval passed", 31 * time.Second, 61 * time.Second, true, true},
		{"run goes on, just checkpointed", 10 * time.Second, 71 * time.Second, true, false},
		{"run ends", 5 * time.Second, 76 * time.Second, false, true},
		{"idle afterwards", 10 * time.Second, 76 * time.Second, false, false},
		{"a command run ends", 10 * time.Second, 95 * time.Second, false, true},
	}
	for _, s := range steps {
		now = now.Add(s.advance)
		st.mu.Lock()
		st.use = store.Use{Workspace: "w1", Conversation: "c1", LastUse: t0.Add(s.lastUse), Streaming: s.streaming}
		st.mu.Unlock()
		if err := c.Pass(ctx); err != nil {
			t.Fatal(err)
		}
		if s.want {
			select {
			case tg := <-saved:
				if tg.Reason != workers.CheckpointReason || tg.Workspace != "w1" || tg.Conversation != "c1" || tg.Tenant != "t" {
					t.Fatalf("%s: saved %+v", s.name, tg)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("%s: no checkpoint", s.name)
			}
		}
		// Wait for the checkpoint's bookkeeping: the next pass must see it.
		waitIdle(t, c)
		select {
		case tg := <-saved:
			t.Fatalf("%s: unexpected checkpoint %+v", s.name, tg)
		default:
		}
	}
}

// waitIdle waits until no checkpoint of c is in flight.
func waitIdle(t *testing.T, c *workers.Checkpointer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
}
