package workers

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/google/uuid"
)

// DefaultLockTTL is how long a conversation's provisioning lock outlives
// its last renewal. Its holder renews it every third of that while it
// works and releases it when done, so the TTL only matters when the holder
// died: a request finds the conversation free again within it.
const DefaultLockTTL = 10 * time.Second

// errLockLost is the cause of a held lock's context when a renewal found
// the lock gone or taken (the holder stalled past the TTL).
var errLockLost = errors.New("provisioning lock lost")

// LockStore is the conversation provisioning lock: an owner and an expiry,
// compare-and-set (the store's Leases view).
type LockStore interface {
	AcquireProvisionLock(ctx context.Context, cid, holder string, ttl time.Duration) (bool, error)
	ReleaseProvisionLock(ctx context.Context, cid, holder string) (bool, error)
}

// convLock takes conversations' provisioning locks for one worker. Locks
// are held by a live owner: a fresh owner id per hold, a short TTL renewed
// while the work goes on, released on exit.
type convLock struct {
	st  LockStore
	ttl time.Duration
	log *slog.Logger
}

// tryHold takes cid's lock without waiting. When it reports true, the
// returned context (derived from ctx) ends if the lock is lost, and
// release must be called exactly once (it stops the renewals and releases
// the lock). When another live owner holds the lock it reports false.
func (l convLock) tryHold(ctx context.Context, cid string) (context.Context, func(), bool, error) {
	holder := uuid.NewString()
	ok, err := l.st.AcquireProvisionLock(ctx, cid, holder, l.ttl)
	if err != nil || !ok {
		return ctx, func() {}, false, err
	}
	hctx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(l.ttl / 3)
		defer t.Stop()
		for {
			select {
			case <-hctx.Done():
				return
			case <-t.C:
			}
			ok, err := l.st.AcquireProvisionLock(hctx, cid, holder, l.ttl)
			switch {
			case hctx.Err() != nil:
				return
			case err != nil:
				// Redis unreachable: keep trying until the TTL decides.
				l.log.Warn("provisioning lock not renewed", "conversation", cid, "err", err)
			case !ok:
				l.log.Warn("provisioning lock lost", "conversation", cid)
				cancel(errLockLost)
				return
			}
		}
	}()
	release := func() {
		cancel(nil)
		<-done
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer rcancel()
		if _, err := l.st.ReleaseProvisionLock(rctx, cid, holder); err != nil {
			l.log.Warn("release provision lock failed; it expires", "conversation", cid, "err", err)
		}
	}
	return hctx, release, true, nil
}
