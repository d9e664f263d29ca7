package workers

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/workspaced/workspaced/store"
	"github.com/workspaced/workspaced/workspace"
)

// Warm-pool defaults.
const (
	DefaultPoolInterval     = 5 * time.Second
	DefaultPoolStartRate    = 2.0 // starts per second
	DefaultPoolStartTimeout = 2 * time.Minute
	poolMaxBackoff          = time.Minute
)

// PoolOptions configure a Replenisher. Zero values take defaults.
type PoolOptions struct {
	// MinSize is the number of ready, unclaimed workspaces to keep.
	MinSize int
	// MaxSize caps unclaimed pool workspaces (starting + available +
	// starts under way); 0 means MinSize.
	MaxSize int
	// MaxAge recycles available workspaces ready for longer (0: never).
	MaxAge time.Duration
	// StartRate caps starts per second (default DefaultPoolStartRate), so
	// a refill never floods the runtime (ECS RunTask is throttled).
	StartRate float64
	// Interval is the safety-net pass interval; changes to the pool wake
	// the replenisher at once (default DefaultPoolInterval).
	Interval time.Duration
	// LeaseTTL is the leadership lease (default DefaultLeaseTTL), renewed
	// every LeaseTTL/3 whatever Interval is.
	LeaseTTL time.Duration
	// StartTimeout is how long a slot stays reserved for a start under
	// way (default DefaultPoolStartTimeout).
	StartTimeout time.Duration
	// Holder identifies this replica in the lease (default a UUID).
	Holder string
	Logger *slog.Logger
	// Now is the clock for ages, the start rate and backoff (default
	// time.Now).
	Now func() time.Time
}

// Replenisher keeps WARM_POOL_MIN_SIZE workspaces ready and unclaimed. One
// replica at a time leads (Redis lease "pool"); every start first reserves
// a slot atomically against MaxSize, so even two leaders (a lease
// handover) never exceed it. The pool's inventory changes only through
// task-state events (a started workspace is available once RUNNING and
// healthy, and leaves on STOPPED) and claims; the replenisher reacts to
// those changes (pub/sub) and re-checks every Interval.
type Replenisher struct {
	rt     workspace.Runtime
	st     PoolStore
	m      *Metrics
	opts   PoolOptions
	log    *slog.Logger
	leader *leader

	mu           sync.Mutex // one pass at a time; guards the fields below
	next         time.Time  // rate limit: earliest next start
	pauseUntil   time.Time  // backoff after a failed start
	failedStarts int
}

// NewReplenisher returns the warm-pool loop. m may be nil.
func NewReplenisher(rt workspace.Runtime, st PoolStore, m *Metrics, opts PoolOptions) *Replenisher {
	if opts.MaxSize < opts.MinSize {
		opts.MaxSize = opts.MinSize
	}
	if opts.StartRate <= 0 {
		opts.StartRate = DefaultPoolStartRate
	}
	if opts.Interval <= 0 {
		opts.Interval = DefaultPoolInterval
	}
	if opts.LeaseTTL <= 0 {
		opts.LeaseTTL = DefaultLeaseTTL
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = DefaultPoolStartTimeout
	}
	if opts.Holder == "" {
		opts.Holder = uuid.NewString()
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Logger.With("component", "pool")
	return &Replenisher{rt: rt, st: st, m: m, opts: opts, log: log,
		leader: &leader{st: st, name: "pool", holder: opts.Holder, ttl: opts.LeaseTTL, m: m, log: log}}
}

// Run replenishes until ctx ends, then resigns the lease. It returns nil
// after ctx ends; store and runtime errors are logged and retried.
func (r *Replenisher) Run(ctx context.Context) error {
	gained := make(chan struct{}, 1)
	kctx, stop := context.WithCancel(ctx)
	kept := make(chan struct{})
	go func() { defer close(kept); r.leader.keep(kctx, gained) }()
	defer func() {
		stop()
		<-kept
		r.mu.Lock()
		defer r.mu.Unlock()
		r.leader.resign()
	}()
	var changes <-chan struct{}
	if f, err := r.st.FollowPool(ctx); err != nil {
		r.log.Warn("cannot follow pool changes; checking every interval only", "err", err)
	} else {
		defer f.Close()
		ch := make(chan struct{}, 1)
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			for {
				select {
				case <-stop:
					return
				case _, ok := <-f.C():
					if !ok {
						return
					}
					select {
					case ch <- struct{}{}:
					default:
					}
				}
			}
		}()
		changes = ch
	}
	t := time.NewTicker(r.opts.Interval)
	defer t.Stop()
	for {
		if _, err := r.Tick(ctx); err != nil && ctx.Err() == nil {
			r.log.Warn("pool pass failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changes:
		case <-gained:
		case <-t.C:
		}
	}
}

// Tick is one pass (passes are serialized; safe for concurrent use): publish the counts, and if this replica leads, recycle
// old workspaces and start what the pool lacks (rate-capped). It returns
// how many workspaces it started.
func (r *Replenisher) Tick(ctx context.Context) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, err := r.st.PoolCounts(ctx)
	if err != nil {
		return 0, err
	}
	r.m.poolCounts(c)
	if !r.leader.lead(ctx) {
		return 0, nil
	}
	if err := r.recycle(ctx); err != nil {
		return 0, err
	}
	if c, err = r.st.PoolCounts(ctx); err != nil {
		return 0, err
	}
	started := 0
	for deficit := int64(r.opts.MinSize) - c.Unclaimed(); deficit > 0; deficit-- {
		if r.opts.Now().Before(r.pauseUntil) {
			break
		}
		if err := r.wait(ctx); err != nil {
			return started, nil
		}
		ok, err := r.startOne(ctx)
		if err != nil {
			return started, err
		}
		if !ok {
			break // at MaxSize
		}
		started++
	}
	return started, nil
}

// startOne reserves a slot and starts one pool workspace in it.
func (r *Replenisher) startOne(ctx context.Context) (bool, error) {
	token := poolToken()
	ok, err := r.st.ReservePoolSlot(ctx, token, r.opts.MaxSize, r.opts.StartTimeout)
	if err != nil || !ok {
		return false, err
	}
	info, err := r.rt.Start(ctx, workspace.StartSpec{Token: token, Pool: true})
	if err != nil {
		r.m.poolStart("error")
		r.failed()
		if rerr := r.st.ReleasePoolSlot(context.WithoutCancel(ctx), token); rerr != nil {
			r.log.Warn("release pool slot failed; it expires", "err", rerr)
		}
		return false, fmt.Errorf("start pool workspace: %w", err)
	}
	r.failedStarts = 0
	r.m.poolStart("ok")
	if _, err := r.st.AddPoolWorkspace(ctx, info, token); err != nil && !errors.Is(err, store.ErrWorkspaceStopped) {
		// Untracked: the orphan reaper stops it after the grace period.
		return true, fmt.Errorf("record pool workspace %s: %w", info.ID, err)
	}
	r.log.Info("pool workspace started", "workspace", info.ID, "token", token)
	return true, nil
}

// recycle stops available workspaces older than MaxAge: fresh ones replace
// them (long-lived idle containers drift: image updates, leaked state).
func (r *Replenisher) recycle(ctx context.Context) error {
	if r.opts.MaxAge <= 0 {
		return nil
	}
	old, err := r.st.PoolAvailableSince(ctx, r.opts.Now().Add(-r.opts.MaxAge), 10)
	if err != nil {
		return err
	}
	for _, wid := range old {
		ok, err := r.st.RetirePoolWorkspace(ctx, wid, GCPoolMaxAge)
		if err != nil {
			return err
		}
		if !ok {
			continue // claimed meanwhile: it is a conversation's now
		}
		if err := r.rt.Stop(ctx, wid, GCPoolMaxAge); err != nil {
			return fmt.Errorf("stop old pool workspace %s: %w", wid, err)
		}
		r.m.retired(GCPoolMaxAge)
		r.log.Info("old pool workspace recycled", "workspace", wid)
	}
	return nil
}

// wait blocks until the start rate allows the next start.
func (r *Replenisher) wait(ctx context.Context) error {
	now := r.opts.Now()
	if r.next.After(now) {
		t := time.NewTimer(r.next.Sub(now))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		now = r.next
	}
	r.next = now.Add(time.Duration(float64(time.Second) / r.opts.StartRate))
	return nil
}

// failed backs off after a failed start (capacity, throttling): 1s, 2s,
// 4s, ... up to a minute.
func (r *Replenisher) failed() {
	r.failedStarts++
	d := time.Second << min(r.failedStarts-1, 6)
	r.pauseUntil = r.opts.Now().Add(min(d, poolMaxBackoff))
}

// poolToken is a fresh start token for a pool workspace ("p-" and 40 hex
// digits: a valid token, distinct from conversation tokens' "c-").
func poolToken() string {
	b := make([]byte, 20)
	_, _ = rand.Read(b)
	return "p-" + hex.EncodeToString(b)
}
