package workers

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/workspaced/workspaced/store"
	"github.com/workspaced/workspaced/workspace"
)

// Checkpoint defaults.
const (
	DefaultCheckpointInterval = 5 * time.Minute
	DefaultCheckpointTick     = 5 * time.Second
	DefaultCheckpointParallel = 4
	// CheckpointReason is the SaveTarget.Reason of a checkpoint.
	CheckpointReason = "checkpoint"
)

// CheckpointStore is what the checkpointer needs.
type CheckpointStore interface {
	LeaseStore
	UsedSince(ctx context.Context, since time.Time, limit int) ([]store.Use, error)
	Conversation(ctx context.Context, cid string) (store.Conversation, error)
}

// CheckpointOptions configure a Checkpointer. Zero values take defaults.
type CheckpointOptions struct {
	// Interval between checkpoints of a workspace while a run goes on
	// (default DefaultCheckpointInterval).
	Interval time.Duration
	// Tick is how often activity is scanned (default
	// DefaultCheckpointTick): a run's end is checkpointed within one tick.
	Tick time.Duration
	// Parallel bounds concurrent checkpoints (default
	// DefaultCheckpointParallel).
	Parallel int
	// LeaseTTL of the "checkpoint" lease (default DefaultLeaseTTL, at
	// least 3 ticks); Holder names this replica (default a UUID).
	LeaseTTL time.Duration
	Holder   string
	Logger   *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Checkpointer saves the files and session of workspaces in use, one
// replica at a time (Redis lease "checkpoint"): after each run ends (a
// stream's end touches the workspace's last use; a workspace used since its
// last checkpoint and no longer streaming is saved) and every Interval
// while a run goes on (a workspace streaming whose last checkpoint is
// older). It calls the same Saver as the release (Reason "checkpoint"),
// which uploads only trees that changed, in the background: a run is
// never waited for or blocked (the agent streams files under a shared
// lock). A failed checkpoint is retried on the next tick.
type Checkpointer struct {
	saver  Saver
	st     CheckpointStore
	opts   CheckpointOptions
	log    *slog.Logger
	leader *leader

	mu       sync.Mutex
	last     map[string]time.Time // workspace → start of its last good checkpoint
	inflight map[string]bool
	wg       sync.WaitGroup
	slots    chan struct{}
	started  time.Time
}

// NewCheckpointer returns the checkpoint loop; m may be nil.
func NewCheckpointer(saver Saver, st CheckpointStore, m *Metrics, opts CheckpointOptions) *Checkpointer {
	if opts.Interval <= 0 {
		opts.Interval = DefaultCheckpointInterval
	}
	if opts.Tick <= 0 {
		opts.Tick = min(DefaultCheckpointTick, opts.Interval)
	}
	if opts.Parallel <= 0 {
		opts.Parallel = DefaultCheckpointParallel
	}
	if opts.LeaseTTL <= 0 {
		opts.LeaseTTL = max(DefaultLeaseTTL, 3*opts.Tick)
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
	log := opts.Logger.With("component", "checkpointer")
	return &Checkpointer{saver: saver, st: st, opts: opts, log: log,
		leader:   &leader{st: st, name: "checkpoint", holder: opts.Holder, ttl: opts.LeaseTTL, m: m, log: log},
		last:     map[string]time.Time{},
		inflight: map[string]bool{},
		slots:    make(chan struct{}, opts.Parallel),
	}
}

// Run scans every Tick until ctx ends, then waits for the checkpoints under
// way (they end with ctx) and resigns the lease.
func (c *Checkpointer) Run(ctx context.Context) error {
	defer c.leader.resign()
	defer c.wg.Wait()
	c.started = c.opts.Now()
	t := time.NewTicker(c.opts.Tick)
	defer t.Stop()
	for {
		if err := c.Pass(ctx); err != nil && ctx.Err() == nil {
			c.log.Warn("checkpoint pass failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Pass starts the checkpoints that are due, if this replica leads. Not
// safe for concurrent use with Run.
func (c *Checkpointer) Pass(ctx context.Context) error {
	if !c.leader.lead(ctx) {
		return nil
	}
	now := c.opts.Now()
	// Workspaces used in the last two intervals and a minute (a running
	// workspace's use is renewed with its stream lease, every few
	// seconds): an older use was checkpointed by now (or by the previous
	// leader, or released).
	since := now.Add(-2*c.opts.Interval - time.Minute)
	uses, err := c.st.UsedSince(ctx, since, 1000)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	seen := make(map[string]bool, len(uses))
	for _, u := range uses {
		seen[u.Workspace] = true
		if c.inflight[u.Workspace] || u.Conversation == "" {
			continue
		}
		last, ok := c.last[u.Workspace]
		switch {
		case !ok && u.Streaming:
			// First sight of a running workspace: its restore (or empty
			// start) is the base; the first checkpoint is due in Interval.
			c.last[u.Workspace] = now
			continue
		case !u.LastUse.After(last):
			continue // nothing happened since its last checkpoint
		case u.Streaming && now.Sub(last) < c.opts.Interval:
			continue // a run goes on; not due yet
		}
		c.inflight[u.Workspace] = true
		c.wg.Add(1)
		go c.checkpoint(ctx, u, now)
	}
	for wid := range c.last { // forget workspaces no longer in use
		if !seen[wid] && !c.inflight[wid] {
			delete(c.last, wid)
		}
	}
	return nil
}

// WaitIdle waits until no checkpoint is in flight, or ctx ends. Not for
// use concurrently with Pass.
func (c *Checkpointer) WaitIdle(ctx context.Context) error {
	done := make(chan struct{})
	go func() { c.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// checkpoint saves one workspace if its conversation is still bound to it
// and ready, and records the start time on success.
func (c *Checkpointer) checkpoint(ctx context.Context, u store.Use, start time.Time) {
	defer c.wg.Done()
	ok := false
	defer func() {
		c.mu.Lock()
		delete(c.inflight, u.Workspace)
		if ok {
			c.last[u.Workspace] = start
		}
		c.mu.Unlock()
	}()
	select {
	case c.slots <- struct{}{}:
		defer func() { <-c.slots }()
	case <-ctx.Done():
		return
	}
	log := c.log.With("conversation", u.Conversation, "workspace", u.Workspace)
	conv, err := c.st.Conversation(ctx, u.Conversation)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return
	case err != nil:
		log.Warn("checkpoint skipped", "err", err)
		return
	case conv.Workspace != u.Workspace || conv.State != store.StateReady || conv.Endpoint == "":
		// Released, lost or moved on: the release saves what is left.
		ok = true
		return
	}
	t := workspace.SaveTarget{Tenant: conv.Tenant, Conversation: conv.ID, Workspace: u.Workspace, Endpoint: conv.Endpoint, Reason: CheckpointReason}
	if err := c.saver.Save(ctx, t); err != nil {
		if ctx.Err() == nil {
			log.Warn("checkpoint failed; retrying next tick", "err", err)
		}
		return
	}
	ok = true
	log.Debug("checkpointed", "streaming", u.Streaming)
}
