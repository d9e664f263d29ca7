package store

import (
	"context"
	"fmt"
	"time"
)

// AcquireLease takes the lease name (for example "pool" or "gc": one
// leader among replicas) for holder until ttl passes by the store's clock,
// or extends it if holder already holds it. It reports false while another
// holder's lease is unexpired. Leaders renew well before ttl (ttl/3) and
// stop leading when a renewal fails.
func (v Leases) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	n, err := v.c.run(ctx, scriptLockAcquire, []string{v.c.k.lease(name)}, holder, durMS(ttl)).Int()
	if err != nil {
		return false, fmt.Errorf("acquire lease %s: %w", name, err)
	}
	return n == 1, nil
}

// ReleaseLease gives up lease name if holder holds it (a clean shutdown
// lets another replica lead at once instead of after the expiry).
func (v Leases) ReleaseLease(ctx context.Context, name, holder string) (bool, error) {
	n, err := v.c.run(ctx, scriptLockRelease, []string{v.c.k.lease(name)}, holder).Int()
	if err != nil {
		return false, fmt.Errorf("release lease %s: %w", name, err)
	}
	return n == 1, nil
}
