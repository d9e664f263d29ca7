package handlers

import (
	"context"
	"log/slog"
	"time"

	"github.com/workspaced/workspaced/store"
)

// appendBatch bounds how many events one Redis round trip appends;
// appendLinger is how long the appender waits for more events after the
// first of a batch.
const (
	appendBatch  = 256
	appendLinger = 2 * time.Millisecond
)

// appender stores a run's events in its Redis log off the relay's path:
// the relay hands each event over (a channel send) and goes on; the
// appender writes whatever has queued up since its last write in one
// pipeline, lingering appendLinger after the first of a batch. The log
// lags the live stream by about that plus one round trip. A sync point
// (flush) waits until everything handed over before it is stored.
type appender struct {
	rid     string
	st      RunStore
	maxLen  int64
	log     *slog.Logger
	items   chan appendItem
	stopped chan struct{}
}

type appendItem struct {
	ev   store.RunEvent
	sync chan struct{} // set: a flush marker, closed once stored
}

func newAppender(rid string, st RunStore, maxLen int64, log *slog.Logger) *appender {
	a := &appender{rid: rid, st: st, maxLen: maxLen, log: log, items: make(chan appendItem, 1024), stopped: make(chan struct{})}
	go a.loop()
	return a
}

// add hands ev over; it blocks only while 1024 events wait for Redis.
func (a *appender) add(ev store.RunEvent) { a.items <- appendItem{ev: ev} }

// flush returns once every event added before it is stored (or ctx ends).
func (a *appender) flush(ctx context.Context) {
	done := make(chan struct{})
	select {
	case a.items <- appendItem{sync: done}:
	case <-ctx.Done():
		return
	}
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// close stores what is queued and stops the appender.
func (a *appender) close() {
	close(a.items)
	<-a.stopped
}

func (a *appender) loop() {
	defer close(a.stopped)
	batch := make([]store.RunEvent, 0, appendBatch)
	var syncs []chan struct{}
	for it := range a.items {
		batch, syncs = batch[:0], syncs[:0]
		collect := func(it appendItem) {
			if it.sync != nil {
				syncs = append(syncs, it.sync)
			} else {
				batch = append(batch, it.ev)
			}
		}
		collect(it)
		// Linger a little for more while no one waits on a flush: one
		// round trip per burst instead of one per event.
		linger := time.NewTimer(appendLinger)
	more:
		for len(batch) < appendBatch && len(syncs) == 0 {
			select {
			case it, ok := <-a.items:
				if !ok {
					break more
				}
				collect(it)
			case <-linger.C:
				break more
			}
		}
		linger.Stop()
		a.store(batch)
		for _, s := range syncs {
			close(s)
		}
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
