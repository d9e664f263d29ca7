package handlers

import (
	"context"
	"sync"
)

// runQueue lets one execute per conversation talk to the agent at a time
// within this replica (the agent runs one thing at a time and answers 409
// otherwise); the others wait their turn in arrival order instead of
// failing. Across replicas the agent's 409 is the arbiter and the relay
// retries with backoff (see relay). Safe for concurrent use.
type runQueue struct {
	mu sync.Mutex
	m  map[string]*turn
}

type turn struct {
	ch      chan struct{} // holds one token: the right to run
	waiters int           // holders and waiters; the entry is dropped at 0
}

// acquire blocks until it is cid's turn or ctx ends; onWait, if not nil,
// is called first when the turn is not free at once. The returned release
// must be called exactly once.
func (q *runQueue) acquire(ctx context.Context, cid string, onWait func()) (release func(), err error) {
	q.mu.Lock()
	if q.m == nil {
		q.m = map[string]*turn{}
	}
	t := q.m[cid]
	if t == nil {
		t = &turn{ch: make(chan struct{}, 1)}
		t.ch <- struct{}{}
		q.m[cid] = t
	}
	t.waiters++
	q.mu.Unlock()

	release = func() { t.ch <- struct{}{}; q.leave(cid, t) }
	select {
	case <-t.ch:
		return release, nil
	default:
	}
	if onWait != nil {
		onWait()
	}
	select {
	case <-t.ch:
		return release, nil
	case <-ctx.Done():
		q.leave(cid, t)
		return nil, ctx.Err()
	}
}

func (q *runQueue) leave(cid string, t *turn) {
	q.mu.Lock()
	defer q.mu.Unlock()
	t.waiters--
	if t.waiters == 0 {
		delete(q.m, cid)
	}
}
