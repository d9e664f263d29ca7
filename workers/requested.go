package workers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/workspaced/workspaced/events"
	"github.com/workspaced/workspaced/store"
	"github.com/workspaced/workspaced/workspace"
)

// ProvisionerOptions configure a Provisioner. Zero values take defaults.
type ProvisionerOptions struct {
	// LockTTL is how long the provisioning lock outlives its last renewal
	// (default DefaultLockTTL); it is renewed every LockTTL/3 while an
	// attempt works and released when it ends.
	LockTTL time.Duration
	// Ready finishes a workspace the runtime already runs but nobody is
	// making ready (its events or their handling were lost: Redis was
	// flushed, or a process died mid-provisioning): health check, claim
	// record, rules, ready. The state subscriber; nil leaves that to the
	// reconciler.
	Ready *StateSubscriber
	// Fault, when set, is called at named points of an attempt ("locked",
	// "started"); fault-injection builds crash the process there. Nil in
	// production.
	Fault func(point string)
	// Logger (default slog.Default()).
	Logger *slog.Logger
	// Now is the clock for latency metrics (default time.Now).
	Now func() time.Time
	// Pool makes the provisioner claim a warm-pool workspace before it
	// starts a new one (cold start only when the pool is empty).
	Pool bool
	// Personaliser personalises a claimed workspace before it is handed
	// over; nil skips that.
	Personaliser *Personaliser
	// Health checks a claimed workspace's agent (default AgentHealth).
	Health HealthChecker
	// ClaimHealthTimeout bounds that check (default
	// DefaultClaimHealthTimeout).
	ClaimHealthTimeout time.Duration
	// ClaimAttempts bounds how many claimed workspaces that fail their
	// check are released before falling back to a cold start (default
	// DefaultClaimAttempts).
	ClaimAttempts int
}

// Warm-claim defaults.
const (
	DefaultClaimHealthTimeout = 2 * time.Second
	DefaultClaimAttempts      = 3
)

// Provisioner consumes workspace.requested: it makes sure the conversation
// has a live workspace. Safe for concurrent use.
//
// Idempotency: a conversation that is already live is left alone; one
// attempt at a time holds the conversation's provisioning lock (others
// drop their duplicate: the holder completes, fails the conversation, or
// its message is redelivered); the start token derives from the
// conversation's generation, so even attempts that overlap (lock expiry,
// replicas) start one workspace.
type Provisioner struct {
	rt   workspace.Runtime
	st   ProvisionStore
	m    *Metrics
	log  *slog.Logger
	now  func() time.Time
	lock convLock
	opts ProvisionerOptions
}

// NewProvisioner returns the workspace.requested consumer. m may be nil.
func NewProvisioner(rt workspace.Runtime, st ProvisionStore, m *Metrics, opts ProvisionerOptions) *Provisioner {
	if opts.LockTTL <= 0 {
		opts.LockTTL = DefaultLockTTL
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Health == nil {
		opts.Health = AgentHealth
	}
	if opts.ClaimHealthTimeout <= 0 {
		opts.ClaimHealthTimeout = DefaultClaimHealthTimeout
	}
	if opts.ClaimAttempts <= 0 {
		opts.ClaimAttempts = DefaultClaimAttempts
	}
	return &Provisioner{rt: rt, st: st, m: m, log: opts.Logger.With("component", "provisioner"),
		now: opts.Now, lock: convLock{st: st, ttl: opts.LockTTL, log: opts.Logger}, opts: opts}
}

// Provision handles a workspace.requested command (cmd/ routes
// events.TopicWorkspaceRequested to it through bus.Handle, which decodes).
// It returns nil when the conversation is live, provisioning elsewhere, or
// failed for good (terminal errors also return a workspace.Terminal error
// so the message is poisoned for the record); a plain error to retry. Its
// log lines carry ctx's correlation ID.
func (p *Provisioner) Provision(ctx context.Context, cmd events.WorkspaceRequested) error {
	cid := cmd.ConversationID
	log := p.log.With("conversation", cid, "request_id", cmd.RequestID, "correlation_id", events.CorrelationIDFromContext(ctx))
	conv, err := p.conversation(ctx, cid)
	if err != nil {
		return err
	}
	if conv.Live() && conv.State != store.StateProvisioning {
		log.Debug("conversation already live", "workspace", conv.Workspace, "state", conv.State)
		return nil
	}
	ctx, release, ok, err := p.lock.tryHold(ctx, cid)
	if err != nil {
		return fmt.Errorf("provision conversation %s: %w", cid, err)
	}
	if !ok {
		log.Debug("conversation provisioning elsewhere")
		return nil
	}
	defer release()
	p.fault("locked")

	// Re-read under the lock: the previous holder may have just bound it.
	if conv, err = p.conversation(ctx, cid); err != nil {
		return err
	}
	switch {
	case conv.State == store.StateProvisioning && conv.Workspace != "":
		// Bound, not ready, and nobody holds the lock: whoever was
		// making it ready may be gone.
		return p.resume(ctx, conv, false, log.With("workspace", conv.Workspace))
	case conv.Live():
		return nil
	}
	if p.opts.Pool {
		served, err := p.warm(ctx, cmd, conv, log)
		if served || err != nil {
			return err
		}
	}
	return p.start(ctx, cmd, conv, log)
}

func (p *Provisioner) fault(point string) {
	if p.opts.Fault != nil {
		p.opts.Fault(point)
	}
}

func (p *Provisioner) start(ctx context.Context, cmd events.WorkspaceRequested, conv store.Conversation, log *slog.Logger) error {
	cid, gen := cmd.ConversationID, conv.Generation
	tenant := conv.Tenant
	if tenant == "" {
		tenant = cmd.Tenant
	}
	spec := workspace.StartSpec{Token: WorkspaceToken(cid, gen), Conversation: cid, Tenant: tenant}
	began := p.now()
	info, err := p.rt.Start(ctx, spec)
	if err != nil {
		return p.startFailed(ctx, cid, err, log)
	}
	p.fault("started")
	log = log.With("workspace", info.ID, "generation", gen)
	c, err := p.st.BindProvisioning(ctx, store.Binding{Conversation: cid, Generation: gen, Workspace: info, RequestedAt: cmd.RequestedAt})
	switch {
	case err == nil:
		p.m.acquired(StartCold, p.now().Sub(began).Seconds())
		log.Info("workspace provisioning", "token", spec.Token, "state", c.State)
		if c.State == store.StateReady { // events overtook the bind
			p.m.provisioned(StartCold, p.now().Sub(cmd.RequestedAt).Seconds())
			return nil
		}
		if existed(info, began) {
			// Start found the workspace already there (Redis lost it, or
			// a process died after starting it): no event will announce
			// it, so make it ready now.
			return p.resume(ctx, c, true, log)
		}
		return nil
	case errors.Is(err, store.ErrWorkspaceStopped):
		// It died before we bound it; the conversation is lost with a new
		// generation: a retry starts a fresh workspace.
		p.m.failure(FailStopped)
		return fmt.Errorf("provision conversation %s: %w", cid, err)
	case errors.Is(err, store.ErrConflict):
		if c.Workspace == info.ID {
			return nil
		}
		// The conversation moved on without this workspace (bound to
		// another, or failed meanwhile): do not leave ours running.
		log.Warn("started workspace superseded; stopping it", "bound", c.Workspace, "state", c.State, "err", err)
		if err := p.rt.Stop(ctx, info.ID, "superseded"); err != nil {
			return fmt.Errorf("stop superseded workspace %s: %w", info.ID, err)
		}
		return nil
	default:
		p.m.failure(FailError)
		return err
	}
}

// startFailed classifies a Start error: terminal ones fail the
// conversation (waiters get the reason); others are retried.
func (p *Provisioner) startFailed(ctx context.Context, cid string, err error, log *slog.Logger) error {
	if errors.Is(err, workspace.ErrStartQueued) {
		// Waiting its turn at the runtime's admission: the retry joins the
		// same start in its place.
		p.m.startQueued()
		log.Info("workspace start waits for admission; will retry", "err", err)
		return fmt.Errorf("provision conversation %s: %w", cid, err)
	}
	if !workspace.IsTerminal(err) {
		kind := FailError
		switch {
		case errors.Is(err, workspace.ErrCapacity):
			kind = FailCapacity
		case errors.Is(err, context.DeadlineExceeded):
			kind = FailTimeout
		}
		p.m.failure(kind)
		log.Warn("workspace start failed; will retry", "kind", kind, "err", err)
		return fmt.Errorf("provision conversation %s: %w", cid, err)
	}
	p.m.failure(FailTerminal)
	log.Error("workspace start failed for good", "err", err)
	if _, ferr := p.st.MarkFailed(ctx, cid, err.Error()); ferr != nil && !errors.Is(ferr, store.ErrConflict) {
		// Retry: the conversation must not be left waiting.
		return fmt.Errorf("mark conversation %s failed after %v: %w", cid, err, ferr)
	}
	return fmt.Errorf("provision conversation %s: %w", cid, err)
}

func (p *Provisioner) conversation(ctx context.Context, cid string) (store.Conversation, error) {
	c, err := p.st.Conversation(ctx, cid)
	if errors.Is(err, store.ErrNotFound) {
		// Not claimed through the API (or Redis was lost): provision anyway.
		return store.Conversation{ID: cid, State: store.StateNone}, nil
	}
	if err != nil {
		return store.Conversation{}, fmt.Errorf("provision conversation %s: %w", cid, err)
	}
	return c, nil
}
