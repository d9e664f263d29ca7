package handlers

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"testing"

	"github.com/workspaced/workspaced/store"
)

// appendLog is a RunStore that records appended batches; gate, if set,
// holds every append until it is closed.
type appendLog struct {
	RunStore
	mu      sync.Mutex
	batches [][]store.RunEvent
	called  chan struct{} // gets a value when an append starts (if set)
	gate    chan struct{}
}

func (l *appendLog) AppendRunEvents(_ context.Context, _ string, evs []store.RunEvent, _ int64) error {
	if l.called != nil {
		select {
		case l.called <- struct{}{}:
		default:
		}
	}
	if l.gate != nil {
		<-l.gate
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.batches = append(l.batches, append([]store.RunEvent(nil), evs...))
	return nil
}

// ids returns every stored event's id in order, failing on an empty
// batch. (A batch is everything queued when the writer takes it; the
// store splits it into entries of at most 256 events.)
func (l *appendLog) ids(t *testing.T) []int64 {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var ids []int64
	for _, b := range l.batches {
		if len(b) == 0 {
			t.Error("an empty batch was stored")
		}
		for _, ev := range b {
			ids = append(ids, ev.ID)
		}
	}
	return ids
}

func event(id int64) store.RunEvent {
	return store.RunEvent{ID: id, Event: "stdout", Data: fmt.Sprint(id)}
}

// idle reports whether a holds no queue, no waiter and no writer.
func (a *appender) idle() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.queue == nil && a.waiters == nil && !a.writing && a.stored == a.added
}

func wantIDs(t *testing.T, got []int64, n int) {
	t.Helper()
	if len(got) != n {
		t.Fatalf("stored %d events, want %d", len(got), n)
	}
	for i, id := range got {
		if id != int64(i+1) {
			t.Fatalf("event %d stored has id %d, want %d", i, id, i+1)
		}
	}
}

func TestAppenderStoresInOrderAndHoldsNothingIdle(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		n     int
		flush []int // flush after these many events
	}{
		{"nothing", 0, []int{0}},
		{"one event", 1, []int{1}},
		{"a burst over a batch", 3*appendBatch + 7, []int{appendBatch + 1}},
		{"flushes between events", 40, []int{1, 2, 10, 39, 40}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := &appendLog{}
			a := newAppender("r", l, 0, slog.New(slog.DiscardHandler))
			for i := 1; i <= tt.n; i++ {
				a.add(event(int64(i)))
				for _, f := range tt.flush {
					if f == i {
						a.flush(context.Background())
						wantIDs(t, l.ids(t), i)
					}
				}
			}
			a.close()
			wantIDs(t, l.ids(t), tt.n)
			if !a.idle() {
				t.Error("the appender holds a queue, a waiter or its writer after close")
			}
		})
	}
}

// While Redis does not answer, add blocks once appendQueueBytes wait;
// everything is stored in order once it answers.
func TestAppenderAddBlocksAtTheBound(t *testing.T) {
	t.Parallel()
	l := &appendLog{called: make(chan struct{}, 1), gate: make(chan struct{})}
	a := newAppender("r", l, 0, slog.New(slog.DiscardHandler))
	// The first batch the store holds is at most a full queue: twice a
	// queue of the smallest events (and one more) fills it again behind it.
	total := 2*(appendQueueBytes/eventBytes(event(1))+1) + 1
	added := make(chan struct{})
	go func() {
		defer close(added)
		for i := 1; i <= total; i++ {
			a.add(event(int64(i)))
		}
	}()
	<-l.called // the first batch is taken and held by the store
	for {
		a.mu.Lock()
		full := a.queued >= appendQueueBytes
		a.mu.Unlock()
		if full {
			break
		}
		select {
		case <-added:
			t.Fatal("every add returned while the store held its first batch")
		default:
		}
		runtime.Gosched()
	}
	select {
	case <-added:
		t.Fatal("every add returned while the queue was full")
	default:
	}
	close(l.gate)
	<-added
	a.close()
	wantIDs(t, l.ids(t), total)
}

func TestAppenderFlushHonoursContext(t *testing.T) {
	t.Parallel()
	l := &appendLog{gate: make(chan struct{})}
	a := newAppender("r", l, 0, slog.New(slog.DiscardHandler))
	a.add(event(1))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	a.flush(ctx) // returns although the store holds the event
	close(l.gate)
	a.close()
	wantIDs(t, l.ids(t), 1)
}
