package handlers

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/workspaced/workspaced/store"
)

// appendBatch is how many queued events cut the writer's linger short
// (the writer then stores all that are queued, in one script call of
// entries of at most 256 events); appendQueueBytes bounds what waits for
// Redis before add blocks (event type and data, plus appendEventOverhead
// per event: a burst of 5,000 short lines fits, and a replica relaying
// 1,000 streams all faster than Redis holds at most 512 MiB of them);
// appendLinger is how long the appender waits for more events after the
// first of a batch.
const (
	appendBatch         = 256
	appendQueueBytes    = 512 << 10
	appendEventOverhead = 48
	appendLinger        = 2 * time.Millisecond
)

// appender stores a run's events in its Redis log off the relay's path:
// the relay hands each event over (a slice append under a lock) and goes
// on; a writer goroutine stores whatever has queued up since its last
// write in one pipeline, lingering appendLinger after the first of a
// batch. The log lags the live stream by about that plus one round trip.
// A sync point (flush) waits until everything handed over before it is
// stored.
//
// An idle appender holds no buffer and no goroutine (D38): the queue is
// a slice that grows with what waits and is dropped once stored, and the
// writer is started by the first event after a pause and ends when the
// queue is empty. A run's driver lives as long as the run, and most of a
// long run is spent waiting for output, so a buffer sized for a burst
// (1,024 queued events, a 256-event batch) held for the whole run was
// most of the API's memory per open stream.
type appender struct {
	rid    string
	st     RunStore
	maxLen int64
	log    *slog.Logger

	mu      sync.Mutex
	space   sync.Cond // signalled when the writer takes a batch from a full queue
	queue   []store.RunEvent
	queued  int   // bytes of queue (see appendQueueBytes)
	added   int64 // events handed over so far
	stored  int64 // events handed to Redis so far (stored, or given up on)
	waiters []appendWaiter
	writing bool           // the writer goroutine runs
	writer  sync.WaitGroup // the writer goroutine, for close
	kick    chan struct{}  // cuts the writer's linger short (a flush, a full batch)
}

// appendWaiter is a flush waiting for the events up to mark.
type appendWaiter struct {
	mark int64
	done chan struct{}
}

func newAppender(rid string, st RunStore, maxLen int64, log *slog.Logger) *appender {
	a := &appender{rid: rid, st: st, maxLen: maxLen, log: log, kick: make(chan struct{}, 1)}
	a.space.L = &a.mu
	return a
}

// add hands ev over; it blocks only while appendQueueBytes wait for
// Redis (a burst the size of a long command's output passes without
// waiting for Redis; a stream faster than Redis for longer is held to its
// pace).
func (a *appender) add(ev store.RunEvent) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for a.queued >= appendQueueBytes {
		a.space.Wait()
	}
	a.queue = append(a.queue, ev)
	a.queued += eventBytes(ev)
	a.added++
	if len(a.queue) == appendBatch {
		a.kickLocked()
	}
	a.startLocked()
}

// flush returns once every event added before it is stored (or ctx ends).
func (a *appender) flush(ctx context.Context) {
	done := a.syncPoint()
	if done == nil {
		return
	}
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// close stores what is queued and waits for the writer to end: the
// appender holds nothing afterwards. Nothing is added after close.
func (a *appender) close() {
	if done := a.syncPoint(); done != nil {
		<-done
	}
	a.writer.Wait()
}

// syncPoint returns a channel closed once every event added so far is
// stored, or nil if they are.
func (a *appender) syncPoint() chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stored == a.added {
		return nil
	}
	w := appendWaiter{mark: a.added, done: make(chan struct{})}
	a.waiters = append(a.waiters, w)
	a.kickLocked()
	a.startLocked()
	return w.done
}

func (a *appender) kickLocked() {
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

func (a *appender) startLocked() {
	if !a.writing {
		a.writing = true
		a.writer.Add(1)
		go a.write()
	}
}

// write stores batches until the queue is empty, then ends. Each batch
// lingers a little for more while no one waits on a flush: one round
// trip per burst instead of one per event; a batch is everything queued
// by then. While it runs, the queue's array and the batch's take turns
// (no allocation per batch); both go with it.
func (a *appender) write() {
	defer a.writer.Done()
	var spare []store.RunEvent
	for {
		a.mu.Lock()
		if len(a.queue) == 0 {
			a.queue = nil
			a.writing = false
			a.mu.Unlock()
			return
		}
		if len(a.queue) < appendBatch && len(a.waiters) == 0 {
			a.mu.Unlock()
			a.linger()
			a.mu.Lock()
		}
		batch, n := a.queue, len(a.queue)
		a.queue, spare = spare, nil
		a.queued = 0
		a.space.Broadcast()
		a.mu.Unlock()

		a.store(batch)
		clear(batch) // the events' strings go now, not at the next reuse
		spare = batch[:0]

		a.mu.Lock()
		a.stored += int64(n)
		kept := a.waiters[:0]
		for _, w := range a.waiters {
			if w.mark <= a.stored {
				close(w.done)
			} else {
				kept = append(kept, w)
			}
		}
		clear(a.waiters[len(kept):])
		a.waiters = kept
		if len(a.waiters) == 0 {
			a.waiters = nil
		}
		a.mu.Unlock()
	}
}

// eventBytes is what ev counts against appendQueueBytes.
func eventBytes(ev store.RunEvent) int { return len(ev.Event) + len(ev.Data) + appendEventOverhead }

// linger waits appendLinger, or less if kicked (a flush is waiting or a
// batch is full). A kick left from an earlier batch only shortens this
// one's wait.
func (a *appender) linger() {
	t := time.NewTimer(appendLinger)
	defer t.Stop()
	select {
	case <-a.kick:
	case <-t.C:
	}
}

// store appends one batch, retrying a failing Redis for a while: a gap in
// the log is worse than a late event.
func (a *appender) store(batch []store.RunEvent) {
	wait := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := a.st.AppendRunEvents(ctx, a.rid, batch, a.maxLen)
		cancel()
		if err == nil || len(batch) == 0 {
			return
		}
		if attempt == 8 {
			a.log.Error("run events not stored", "run", a.rid, "events", len(batch), "err", err)
			return
		}
		a.log.Warn("run events not stored yet; retrying", "run", a.rid, "err", err)
		time.Sleep(wait)
		wait *= 2
	}
}
