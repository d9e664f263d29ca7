package workers

import (
	"context"
	"log/slog"
	"time"
)

// DefaultLeaseTTL is how long a loop's leadership lasts without renewal.
const DefaultLeaseTTL = 30 * time.Second

// leader holds a Redis lease so that one replica at a time runs a loop
// (the pool replenisher, GC). Each pass renews it; a replica whose
// renewal fails stops leading, and a lapsed lease is taken by another
// replica. Not safe for concurrent use (one loop).
type leader struct {
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
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := l.st.ReleaseLease(ctx, l.name, l.holder); err != nil {
		l.log.Warn("release lease failed; it expires", "lease", l.name, "err", err)
	}
	l.held = false
	l.m.leading(l.name, false)
}
