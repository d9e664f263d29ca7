package docker

import (
	"context"
	"sync"
)

// admission lets at most n container starts (create, start, proxy) run on
// the engine at once; the others wait in arrival order. A Docker engine
// on a small host serialises much of container creation: past a few
// starts at once every start gets slower, and starts that each took a
// second take tens of seconds, past their callers' deadlines. Admitting a
// bounded number keeps each one fast and the queue drains at the rate the
// engine sustains. n <= 0 admits everything at once. Safe for concurrent
// use.
type admission struct {
	n int

	mu      sync.Mutex
	running int
	queue   []chan struct{} // FIFO of waiters; closed when admitted
}

// acquire blocks until the caller is admitted or ctx ends; release must be
// called exactly once after a nil error. waited reports whether the
// caller had to queue.
func (a *admission) acquire(ctx context.Context) (release func(), waited bool, err error) {
	if a.n <= 0 {
		return func() {}, false, nil
	}
	a.mu.Lock()
	if a.running < a.n && len(a.queue) == 0 {
		a.running++
		a.mu.Unlock()
		return a.release, false, nil
	}
	ch := make(chan struct{})
	a.queue = append(a.queue, ch)
	a.mu.Unlock()
	select {
	case <-ch:
		return a.release, true, nil
	case <-ctx.Done():
		a.mu.Lock()
		defer a.mu.Unlock()
		for i, w := range a.queue {
			if w == ch {
				a.queue = append(a.queue[:i], a.queue[i+1:]...)
				return nil, true, ctx.Err()
			}
		}
		// Admitted just as ctx ended: hand the slot on.
		a.releaseLocked()
		return nil, true, ctx.Err()
	}
}

func (a *admission) release() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.releaseLocked()
}

// releaseLocked frees a slot, or passes it to the oldest waiter.
func (a *admission) releaseLocked() {
	if len(a.queue) > 0 {
		next := a.queue[0]
		a.queue = a.queue[1:]
		close(next) // the slot moves to it: running stays
		return
	}
	a.running--
}

// waiting is the number of starts waiting for admission.
func (a *admission) waiting() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.queue)
}
