package agent

import (
	"errors"
	"strconv"
	"sync"

	"github.com/workspaced/workspaced/sse"
)

// errTrimmed: the events after the asked id are no longer in the log.
var errTrimmed = errors.New("events trimmed from the run log")

// runLog is the numbered event log of one run, kept in memory and bounded
// in bytes: the run appends, any number of readers (the POST /execute
// response, GET /runs/{id}/events) read from any id still held. The oldest
// events are dropped when the bound is passed; the final event never is.
// Safe for concurrent use.
type runLog struct {
	id       string // the backend's run id; "" for an anonymous run
	maxBytes int

	mu      sync.Mutex
	evs     []sse.Event
	first   int64 // the number of evs[0]
	next    int64 // the number the next event gets
	size    int
	ended   bool
	changed chan struct{} // closed (and replaced) on every append
	cancel  func()        // cancels the run
}

func newRunLog(id string, maxBytes int, cancel func()) *runLog {
	return &runLog{id: id, maxBytes: maxBytes, first: 1, next: 1, changed: make(chan struct{}), cancel: cancel}
}

// add appends one event and returns its number; final marks the run's last
// event.
func (l *runLog) add(name, data string, final bool) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.next
	l.next++
	l.evs = append(l.evs, sse.Event{ID: strconv.FormatInt(n, 10), Event: name, Data: data})
	l.size += len(name) + len(data)
	for l.size > l.maxBytes && len(l.evs) > 1 {
		l.size -= len(l.evs[0].Event) + len(l.evs[0].Data)
		l.evs[0] = sse.Event{}
		l.evs = l.evs[1:]
		l.first++
	}
	if final {
		l.ended = true
	}
	close(l.changed)
	l.changed = make(chan struct{})
	return n
}

// since returns the events after number after that the log holds, whether
// the final event is among all events so far, and a channel closed at the
// next append. errTrimmed means events after after were dropped.
func (l *runLog) since(after int64) ([]sse.Event, bool, <-chan struct{}, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if after+1 < l.first {
		return nil, l.ended, l.changed, errTrimmed
	}
	i := after + 1 - l.first
	if i > int64(len(l.evs)) {
		i = int64(len(l.evs))
	}
	out := make([]sse.Event, len(l.evs)-int(i))
	copy(out, l.evs[i:])
	return out, l.ended, l.changed, nil
}

// last is the number of the newest event (0 before the first).
func (l *runLog) last() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.next - 1
}
