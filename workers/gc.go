package workers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/workspaced/workspaced/events"
	"github.com/workspaced/workspaced/store"
	"github.com/workspaced/workspaced/workspace"
)

// GC defaults.
const (
	DefaultGCInterval        = time.Minute
	DefaultStuckTimeout      = 5 * time.Minute
	DefaultOrphanGrace       = 10 * time.Minute
	DefaultReconcileInterval = 2 * time.Minute
)

// ReleasePublisher publishes workspace.released; *bus.Commands satisfies
// it, taking the correlation ID from ctx (events.WithCorrelationID).
type ReleasePublisher interface {
	PublishReleased(ctx context.Context, cmd events.WorkspaceReleased) error
}

// GCStore is what GC needs.
type GCStore interface {
	LeaseStore
	IdleWorkspaces(ctx context.Context, ttl time.Duration, limit int) ([]store.Idle, error)
	Workspaces(ctx context.Context) ([]store.Workspace, error)
	Conversation(ctx context.Context, cid string) (store.Conversation, error)
	FailWorkspace(ctx context.Context, cid, wid, reason string) (store.Conversation, error)
	MarkReleasing(ctx context.Context, wid, reason string) (bool, error)
}

// GCOptions configure GC. Zero durations take defaults.
type GCOptions struct {
	// IdleTTL releases a bound workspace unused for this long (no execute,
	// no open stream); 0 disables idle release.
	IdleTTL time.Duration
	// StuckTimeout stops a workspace that has not become ready this long
	// after it was created (or, claimed from the pool, after its claim)
	// and tells its waiters (default DefaultStuckTimeout).
	StuckTimeout time.Duration
	// OrphanGrace: a workspace the runtime lists with our labels that
	// Redis does not track is stopped once this old (default
	// DefaultOrphanGrace), running or not.
	OrphanGrace time.Duration
	// Interval between passes (default DefaultGCInterval).
	Interval time.Duration
	// ReconcileInterval between reconciler passes (default
	// DefaultReconcileInterval); the first runs at start.
	ReconcileInterval time.Duration
	// DryRun logs (and counts, mode "dry_run") what GC would stop or
	// release, and changes nothing.
	DryRun bool
	// LeaseTTL of the "gc" lease (default DefaultLeaseTTL), renewed every
	// LeaseTTL/3 whatever Interval is; Holder names this replica (default
	// a UUID).
	LeaseTTL time.Duration
	Holder   string
	Logger   *slog.Logger
	// Now is the clock: store timestamps, workspace ages and pass
	// intervals (default time.Now).
	Now func() time.Time
}

// GC reaps what nobody uses and what nobody tracks, one replica at a time
// (Redis lease "gc"): it reconciles Redis with the runtime first (so
// nothing adoptable is mistaken for an orphan), then releases idle
// workspaces (workspace.released, reason idle_ttl: the Releaser saves
// their files and stops them), stops workspaces stuck before ready and
// tells their waiters, and stops orphans: workspaces with our labels that
// Redis does not track, older than the grace period.
type GC struct {
	rt     workspace.Runtime
	st     GCStore
	pub    ReleasePublisher
	rec    *Reconciler
	m      *Metrics
	opts   GCOptions
	log    *slog.Logger
	leader *leader

	lastReconcile time.Time
}

// NewGC returns the GC loop. rec (the reconciler) and m may be nil; pub
// may be nil when IdleTTL is 0.
func NewGC(rt workspace.Runtime, st GCStore, pub ReleasePublisher, rec *Reconciler, m *Metrics, opts GCOptions) *GC {
	if opts.StuckTimeout <= 0 {
		opts.StuckTimeout = DefaultStuckTimeout
	}
	if opts.OrphanGrace <= 0 {
		opts.OrphanGrace = DefaultOrphanGrace
	}
	if opts.Interval <= 0 {
		opts.Interval = DefaultGCInterval
	}
	if opts.ReconcileInterval <= 0 {
		opts.ReconcileInterval = DefaultReconcileInterval
	}
	if opts.LeaseTTL <= 0 {
		opts.LeaseTTL = DefaultLeaseTTL
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
	log := opts.Logger.With("component", "gc", "dry_run", opts.DryRun)
	return &GC{rt: rt, st: st, pub: pub, rec: rec, m: m, opts: opts, log: log,
		leader: &leader{st: st, name: "gc", holder: opts.Holder, ttl: opts.LeaseTTL, m: m, log: log}}
}

// Run runs passes every Interval (and a reconcile every
// ReconcileInterval) until ctx ends, then resigns the lease. Failures are
// logged and retried next pass.
func (g *GC) Run(ctx context.Context) error {
	gained := make(chan struct{}, 1)
	kctx, stop := context.WithCancel(ctx)
	kept := make(chan struct{})
	go func() { defer close(kept); g.leader.keep(kctx, gained) }()
	defer func() { stop(); <-kept; g.leader.resign() }()
	tick := min(g.opts.Interval, g.opts.ReconcileInterval)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		if err := g.Pass(ctx); err != nil && ctx.Err() == nil {
			g.log.Warn("gc pass failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-gained: // just became leader: reconcile now, not at the next tick
		case <-t.C:
		}
	}
}

// Pass is one round if this replica leads: reconcile (when due), idle,
// stuck, and orphans (after a clean reconcile only). Not safe for
// concurrent use with Run.
func (g *GC) Pass(ctx context.Context) error {
	if !g.leader.lead(ctx) {
		return nil
	}
	var errs []error
	now := g.opts.Now()
	// Orphans are judged only right after a clean reconcile: after a Redis
	// flush every workspace looks untracked until the reconciler adopted
	// it again.
	reaping := g.rec == nil
	if g.rec != nil && now.Sub(g.lastReconcile) >= g.opts.ReconcileInterval {
		if _, err := g.rec.Reconcile(ctx); err != nil {
			errs = append(errs, fmt.Errorf("reconcile: %w", err))
		} else {
			g.lastReconcile, reaping = now, true
		}
	}
	errs = append(errs, g.idle(ctx), g.stuck(ctx))
	if reaping {
		errs = append(errs, g.orphans(ctx), g.pruneClaims(ctx))
	}
	return errors.Join(errs...)
}

// idle publishes workspace.released (idle_ttl) for every workspace unused
// past the TTL. An open stream holds a lease and counts as use.
func (g *GC) idle(ctx context.Context) error {
	if g.opts.IdleTTL <= 0 || g.pub == nil {
		return nil
	}
	idle, err := g.st.IdleWorkspaces(ctx, g.opts.IdleTTL, 100)
	if err != nil {
		return err
	}
	var errs []error
	for _, w := range idle {
		if w.Conversation == "" {
			continue
		}
		g.m.gcAction(GCIdle, g.opts.DryRun)
		// One ID per idle binding: a release repeated by the next sweep
		// (or another replica) shares it.
		corr := w.Conversation + "/" + w.Workspace
		g.log.Info("idle workspace released", "workspace", w.Workspace, "conversation", w.Conversation,
			"last_use", w.LastUse, "ttl", g.opts.IdleTTL.String(), "correlation_id", corr)
		if g.opts.DryRun {
			continue
		}
		err := g.pub.PublishReleased(events.WithCorrelationID(ctx, corr), events.WorkspaceReleased{
			ConversationID: w.Conversation, WorkspaceID: w.Workspace, Reason: events.ReasonIdleTTL, RequestedAt: g.opts.Now(),
		})
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// stuck stops workspaces that never became ready in time (a lost event, a
// crashed worker between claim and hand-over, an agent that hangs) and
// fails their conversation, so waiters get an error instead of a timeout
// and the next execute starts over.
func (g *GC) stuck(ctx context.Context) error {
	ws, err := g.st.Workspaces(ctx)
	if err != nil {
		return err
	}
	now := g.opts.Now()
	var errs []error
	for _, w := range ws {
		reason, stuck := g.isStuck(ctx, w, now)
		if !stuck {
			continue
		}
		g.m.gcAction(GCStuck, g.opts.DryRun)
		g.log.Warn("stuck workspace stopped", "workspace", w.ID, "conversation", w.Conversation, "state", w.State, "reason", reason)
		if g.opts.DryRun {
			continue
		}
		errs = append(errs, g.stopStuck(ctx, w, reason))
	}
	return errors.Join(errs...)
}

func (g *GC) isStuck(ctx context.Context, w store.Workspace, now time.Time) (string, bool) {
	switch {
	case (w.State == store.WorkspaceProvisioning || w.State == store.WorkspaceRunning) &&
		!w.CreatedAt.IsZero() && now.Sub(w.CreatedAt) > g.opts.StuckTimeout:
		return fmt.Sprintf("not ready %s after start", g.opts.StuckTimeout), true
	case w.State == store.WorkspaceReady && w.Pool && w.Conversation != "" && !w.ClaimedAt.IsZero() &&
		now.Sub(w.ClaimedAt) > g.opts.StuckTimeout:
		c, err := g.st.Conversation(ctx, w.Conversation)
		if err == nil && c.Workspace == w.ID && c.State == store.StateProvisioning {
			return fmt.Sprintf("claimed but not handed over within %s", g.opts.StuckTimeout), true
		}
	}
	return "", false
}

func (g *GC) stopStuck(ctx context.Context, w store.Workspace, reason string) error {
	if _, err := g.st.MarkReleasing(ctx, w.ID, "stuck"); err != nil {
		return err
	}
	if w.Conversation != "" {
		_, err := g.st.FailWorkspace(ctx, w.Conversation, w.ID, "provisioning stuck: "+reason)
		if err != nil && !errors.Is(err, store.ErrConflict) {
			return err
		}
	}
	return g.rt.Stop(ctx, w.ID, "stuck: "+reason)
}

// orphans stops every workspace the runtime lists (our labels / startedBy)
// that Redis does not track as someone's, older than the grace period,
// running or not. Tracked means: a pool workspace, or one its
// conversation is bound to. A record that only events created (a
// container started by hand with our labels), or whose conversation moved
// on, does not count. Younger workspaces may be mid-start (started, not
// yet bound).
func (g *GC) orphans(ctx context.Context) error {
	infos, err := g.rt.List(ctx)
	if err != nil {
		return err
	}
	tracked, err := g.owned(ctx)
	if err != nil {
		return err
	}
	now := g.opts.Now()
	var errs []error
	for _, info := range infos {
		if tracked[info.ID] || info.CreatedAt.IsZero() || now.Sub(info.CreatedAt) < g.opts.OrphanGrace {
			continue
		}
		g.m.gcAction(GCOrphan, g.opts.DryRun)
		g.log.Warn("orphan workspace stopped", "workspace", info.ID, "status", info.Status,
			"created_at", info.CreatedAt, "conversation", info.Conversation, "pool", info.Pool)
		if g.opts.DryRun {
			continue
		}
		errs = append(errs, g.rt.Stop(ctx, info.ID, "orphan"))
	}
	return errors.Join(errs...)
}

// owned returns the workspaces Redis tracks as someone's.
func (g *GC) owned(ctx context.Context) (map[string]bool, error) {
	ws, err := g.st.Workspaces(ctx)
	if err != nil {
		return nil, err
	}
	owned := make(map[string]bool, len(ws))
	for _, w := range ws {
		switch {
		case w.Pool && w.Conversation == "":
			owned[w.ID] = true
		case w.Conversation != "":
			c, err := g.st.Conversation(ctx, w.Conversation)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return nil, err
			}
			owned[w.ID] = err == nil && c.Workspace == w.ID
		}
	}
	return owned, nil
}

// pruneClaims removes the runtime's claim records (and rules) of
// workspaces that are gone.
func (g *GC) pruneClaims(ctx context.Context) error {
	if g.opts.DryRun {
		return nil
	}
	n, err := g.rt.PruneClaims(ctx)
	if n > 0 {
		g.log.Info("claim records of gone workspaces pruned", "count", n)
	}
	return err
}
