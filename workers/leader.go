package workers

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// DefaultLeaseTTL is how long a loop's leadership lasts without renewal.
// It is renewed every third of that by its own goroutine (keep),
// independently of the loop's pass interval, so it never lapses while its
// holder lives and a replacement leads within it after the holder died.
const DefaultLeaseTTL = 15 * time.Second

// leader holds a Redis lease so that one replica at a time runs a loop
// (the pool replenisher, GC). keep renews it in the background and each
// pass renews it too; a replica whose renewal fails stops leading, and a
// lapsed lease is taken by another replica. Safe for concurrent use.
type leader struct {
	mu     sync.Mutex
	st     LeaseStore
	name   string
	holder string
	ttl    time.Duration
	m      *Metrics
	log    *slog.Logger
	held   bool
}

// lead acquires or renews the lease and reports whether this replica
// leads. A store error counts as not leading.
func (l *leader) lead(ctx context.Context) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	ok, err := l.st.AcquireLease(ctx, l.name, l.holder, l.ttl)
	if err != nil {
		l.log.Warn("lease renewal failed; not leading", "lease", l.name, "err", err)
		ok = false
	}
	if ok != l.held {
		l.log.Info("leadership changed", "lease", l.name, "leading", ok, "holder", l.holder)
	}
	l.held = ok
	l.m.leading(l.name, ok)
	return ok
}

// resign releases the lease (if this replica holds it: the release is a
// compare-and-delete on the holder), so another replica leads at once. It
// does not trust held: a renewal that failed because the loop was being
// cancelled leaves the lease held in Redis.
func (l *leader) resign() {
	l.mu.Lock()
	defer l.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := l.st.ReleaseLease(ctx, l.name, l.holder); err != nil {
		l.log.Warn("release lease failed; it expires", "lease", l.name, "err", err)
	}
	l.held = false
	l.m.leading(l.name, false)
}

// keep renews (or tries to take) the lease every ttl/3 until ctx ends, so
// leadership does not depend on how often the loop passes. When this
// replica becomes the leader it sends on gained (without blocking), so
// the loop runs a pass at once instead of at its next interval.
func (l *leader) keep(ctx context.Context, gained chan<- struct{}) {
	t := time.NewTicker(l.ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		l.mu.Lock()
		was := l.held
		l.mu.Unlock()
		if l.lead(ctx) && !was {
			select {
			case gained <- struct{}{}:
			default:
			}
		}
	}
}
