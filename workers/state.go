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

var errNotReady = errors.New("agent did not become healthy")

// Readiness defaults.
const (
	DefaultReadyTimeout     = 60 * time.Second
	DefaultHealthTryTimeout = 2 * time.Second
	DefaultHealthMinBackoff = 25 * time.Millisecond
	DefaultHealthMaxBackoff = time.Second
)

// StateOptions configure a StateSubscriber. Zero values take defaults.
type StateOptions struct {
	// Health checks the agent (default AgentHealth).
	Health HealthChecker
	// ReadyTimeout bounds the wait for a RUNNING workspace's agent to
	// answer, counted from when its RUNNING event was applied (default
	// DefaultReadyTimeout); past it the conversation fails and the
	// workspace is stopped. The wait runs inside the event's handler: an
	// attempt whose context ends first returns an error, and the retried
	// delivery (a duplicate) resumes waiting towards the same deadline. So
	// the bus's retries must outlast ReadyTimeout, or the event is
	// poisoned before the workspace is declared unhealthy.
	ReadyTimeout time.Duration
	// HealthTryTimeout bounds one health request (default
	// DefaultHealthTryTimeout).
	HealthTryTimeout time.Duration
	// HealthMinBackoff and HealthMaxBackoff bound the pause between health
	// requests (defaults DefaultHealthMinBackoff, DefaultHealthMaxBackoff).
	HealthMinBackoff, HealthMaxBackoff time.Duration
	// Logger (default slog.Default()).
	Logger *slog.Logger
	// Now is the clock for latency metrics (default time.Now).
	Now func() time.Time
	// Personaliser makes a healthy conversation workspace the
	// conversation's (claim record, MCP rules, files) before it is marked
	// ready; nil skips that.
	Personaliser *Personaliser
	// LockTTL of the conversation's provisioning lock, held while a
	// conversation workspace is personalised and marked ready (default
	// DefaultLockTTL).
	LockTTL time.Duration
	// Fault, when set, is called at named points ("running"); fault-
	// injection builds crash the process there. Nil in production.
	Fault func(point string)
}

// StateSubscriber consumes task-state events (Docker or ECS: it never
// knows which) and turns them into store state. Safe for concurrent use.
//
// RUNNING: once applied, the workspace is inspected through the runtime
// for its endpoint (Docker events carry none, and one code path serves
// both runtimes), its agent's /health is polled with backoff up to
// ReadyTimeout, a conversation workspace is personalised (claim record,
// MCP rules, restored files: the cold path), then MarkReady makes the
// bound conversation ready and notifies waiters. An agent that never answers fails the conversation and
// the workspace is stopped.
//
// STOPPED (and other stopping statuses): the store ends the binding (lost,
// generation++) and notifies waiters; the subscriber then asks the runtime
// to stop and remove what is left (a dead Docker container, its socket).
//
// Side effects also run for an exact duplicate of the stored version, so a
// redelivery after a failed side effect completes it.
type StateSubscriber struct {
	rt    workspace.Runtime
	st    StateStore
	m     *Metrics
	log   *slog.Logger
	now   func() time.Time
	ready readiness
	pers  *Personaliser
	lock  convLock
	fault func(string)
}

// NewStateSubscriber returns the task-state consumer. m may be nil.
func NewStateSubscriber(rt workspace.Runtime, st StateStore, m *Metrics, opts StateOptions) *StateSubscriber {
	if opts.Health == nil {
		opts.Health = AgentHealth
	}
	if opts.ReadyTimeout <= 0 {
		opts.ReadyTimeout = DefaultReadyTimeout
	}
	if opts.HealthTryTimeout <= 0 {
		opts.HealthTryTimeout = DefaultHealthTryTimeout
	}
	if opts.HealthMinBackoff <= 0 {
		opts.HealthMinBackoff = DefaultHealthMinBackoff
	}
	if opts.HealthMaxBackoff < opts.HealthMinBackoff {
		opts.HealthMaxBackoff = max(DefaultHealthMaxBackoff, opts.HealthMinBackoff)
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.LockTTL <= 0 {
		opts.LockTTL = DefaultLockTTL
	}
	if opts.Fault == nil {
		opts.Fault = func(string) {}
	}
	return &StateSubscriber{
		rt: rt, st: st, m: m, now: opts.Now, pers: opts.Personaliser, fault: opts.Fault,
		lock: convLock{st: st, ttl: opts.LockTTL, log: opts.Logger},
		log:  opts.Logger.With("component", "state_subscriber"),
		ready: readiness{check: opts.Health, timeout: opts.ReadyTimeout, perTry: opts.HealthTryTimeout,
			minBackoff: opts.HealthMinBackoff, maxBackoff: opts.HealthMaxBackoff},
	}
}

// Apply handles a task-state envelope (cmd/ routes events.TopicTaskEvents
// to it through bus.Handle, which decodes); store or runtime failures
// return a plain error (retry).
func (s *StateSubscriber) Apply(ctx context.Context, ev events.TaskStateChange) error {
	d := ev.Detail
	status := workspace.Status(d.LastStatus)
	res, err := s.st.ApplyTaskState(ctx, store.TaskState{
		Workspace: d.TaskArn, Status: status, Version: d.Version, StoppedReason: d.StoppedReason,
	})
	if err != nil {
		return fmt.Errorf("apply task state: %w", err)
	}
	s.m.event(d.LastStatus, string(res.Outcome))
	log := s.log.With("workspace", d.TaskArn, "status", d.LastStatus, "version", d.Version, "source", ev.Source)
	log.Debug("task state", "outcome", res.Outcome, "previous", res.Previous, "state", res.Workspace.State,
		"correlation_id", events.CorrelationIDFromContext(ctx))
	if res.Outcome == store.OutcomeIgnored {
		log.Warn("newer event for a stopped workspace ignored")
	}
	if res.Outcome != store.OutcomeApplied && !res.Duplicate {
		return nil
	}
	switch {
	case status == workspace.StatusRunning && res.Workspace.State == store.WorkspaceRunning:
		s.fault("running")
		return s.becomeReady(ctx, res.Workspace, log)
	case status.Stopping() && (res.Previous != store.WorkspaceStopped || res.Duplicate):
		if res.Ended != nil {
			log.Info("conversation's workspace stopped", "conversation", res.Ended.ID, "state", res.Ended.State, "reason", d.StoppedReason,
				"correlation_id", answers(ctx, res.Ended))
		}
		// Remove what is left (container, socket directory, proxy).
		if err := s.rt.Stop(ctx, d.TaskArn, "stopped: "+d.StoppedReason); err != nil {
			return fmt.Errorf("clean up stopped workspace %s: %w", d.TaskArn, err)
		}
	}
	return nil
}

// becomeReady waits for the agent of a running workspace and marks it
// ready.
func (s *StateSubscriber) becomeReady(ctx context.Context, w store.Workspace, log *slog.Logger) error {
	info, err := s.rt.Inspect(ctx, w.ID)
	switch {
	case errors.Is(err, workspace.ErrNotFound):
		log.Info("running workspace vanished; its STOPPED event will follow")
		return nil
	case err != nil:
		return fmt.Errorf("inspect running workspace %s: %w", w.ID, err)
	case info.Status.Stopping():
		return nil
	case info.Endpoint == "":
		return fmt.Errorf("running workspace %s has no endpoint yet", w.ID)
	}
	if w.Conversation == "" {
		// RUNNING overtook the bind; the runtime knows whose it is.
		w.Conversation = info.Conversation
	}
	rt, err := s.rt.Transport(info.Endpoint)
	if err != nil {
		return s.unhealthy(ctx, w, fmt.Errorf("transport to %s: %w", info.Endpoint, err), log)
	}
	if c, ok := rt.(interface{ CloseIdleConnections() }); ok {
		defer c.CloseIdleConnections()
	}
	since := w.RunningAt
	if since.IsZero() {
		since = s.now()
	}
	var await func(context.Context) error
	if la, ok := s.rt.(ListenAwaiter); ok {
		await = func(ctx context.Context) error { return la.AwaitListening(ctx, info.Endpoint) }
	}
	if err := s.ready.wait(ctx, rt, info.Endpoint, since.Add(s.ready.timeout), await); err != nil {
		if errors.Is(err, errNotReady) {
			return s.unhealthy(ctx, w, err, log)
		}
		return fmt.Errorf("wait for workspace %s: %w", w.ID, err)
	}
	if (w.Pool || info.Pool) && w.Conversation == "" && w.State != store.WorkspaceReady {
		// A pool workspace does its first run's lazy work before it is
		// offered (see warmUp).
		result := "ok"
		if err := warmUp(ctx, rt, info.Endpoint); err != nil {
			result = "error"
			log.Warn("pool workspace warm-up failed; offered anyway", "err", err)
		}
		s.m.warmedUp(result)
	}
	return s.markHealthy(ctx, w, info, log)
}

// MarkHealthy finishes a workspace whose agent answered its health check:
// a conversation workspace is personalised, then the workspace is marked
// ready (its conversation becomes ready and waiters are notified; a pool
// workspace joins the available inventory). The reconciler calls it for a
// healthy workspace whose events were lost. info is the runtime's view
// (endpoint, token, labels).
func (s *StateSubscriber) MarkHealthy(ctx context.Context, w store.Workspace, info workspace.Info) error {
	return s.markHealthy(ctx, w, info, s.log.With("workspace", w.ID))
}

// Adopt finishes a running workspace whose agent answered and that nobody
// is making ready (Provisioner.resume; the caller holds the conversation's
// provisioning lock). A workspace Redis never saw running but that holds
// its conversation's claim record may have served before Redis lost it:
// its files are the conversation's newest, so they are kept (claim
// record, rules and ready only); otherwise it is personalised in full.
func (s *StateSubscriber) Adopt(ctx context.Context, w store.Workspace, info workspace.Info) error {
	keep := false
	if w.RunningAt.IsZero() && w.Conversation != "" {
		c, ok, err := s.rt.ReadClaim(ctx, info)
		if err != nil {
			return fmt.Errorf("adopt workspace %s: %w", w.ID, err)
		}
		keep = ok && c.Conversation == w.Conversation
	}
	return s.finish(ctx, w, info, keep, s.log.With("workspace", w.ID))
}

// markHealthy finishes a healthy workspace under its conversation's
// provisioning lock, so that it and an on-demand adoption
// (Provisioner.resume) never personalise one workspace at once. A lock
// held by another owner is retried (the event is redelivered).
func (s *StateSubscriber) markHealthy(ctx context.Context, w store.Workspace, info workspace.Info, log *slog.Logger) error {
	if w.Conversation == "" {
		w.Conversation = info.Conversation
	}
	if w.Conversation == "" || w.Pool && info.Conversation == "" {
		// A pool workspace: unclaimed, or claimed and handed over by the
		// provisioner's warm path under the conversation's lock.
		return s.finish(ctx, w, info, false, log)
	}
	hctx, release, ok, err := s.lock.tryHold(ctx, w.Conversation)
	if err != nil {
		return fmt.Errorf("finish workspace %s: %w", w.ID, err)
	}
	if !ok {
		return fmt.Errorf("finish workspace %s: conversation %s is being provisioned; retry", w.ID, w.Conversation)
	}
	defer release()
	return s.finish(hctx, w, info, false, log)
}

// finish personalises w (keep: without restoring files) and marks it
// ready; a workspace already ready is left alone.
func (s *StateSubscriber) finish(ctx context.Context, w store.Workspace, info workspace.Info, keep bool, log *slog.Logger) error {
	if w.Conversation == "" {
		w.Conversation = info.Conversation
	}
	if w.Conversation != "" {
		if cur, err := s.st.Workspace(ctx, w.ID); err == nil && cur.State == store.WorkspaceReady {
			return nil // made ready meanwhile (by an adoption): personalised already
		}
	}
	if err := s.personalise(ctx, w, info, keep); err != nil {
		if workspace.IsTerminal(err) {
			// Retrying cannot help (a corrupt snapshot, an invalid
			// target): fail the conversation now rather than poison.
			return s.unhealthy(ctx, w, err, log)
		}
		return err
	}
	r, err := s.st.MarkReady(ctx, w.ID, info.Endpoint)
	switch {
	case errors.Is(err, store.ErrWorkspaceStopped), errors.Is(err, store.ErrNotFound):
		return nil
	case err != nil:
		return err
	}
	if r.Changed {
		conv := r.Conversation
		if conv == nil && w.Conversation != "" {
			// The event overtook the bind: the bind makes the conversation
			// ready, but this event answers its request all the same.
			if c, err := s.st.Conversation(ctx, w.Conversation); err == nil {
				conv = &c
			}
		}
		log.Info("workspace ready", "endpoint", info.Endpoint, "conversation", w.Conversation,
			"correlation_id", answers(ctx, conv))
	}
	if r.Changed && r.Conversation != nil && !r.Conversation.RequestedAt.IsZero() {
		start := StartCold
		if r.Workspace.Pool {
			start = StartWarm
		}
		s.m.provisioned(start, s.now().Sub(r.Conversation.RequestedAt).Seconds())
	}
	return nil
}

// personalise makes a healthy conversation workspace its conversation's
// before it is marked ready (the cold path; warm workspaces are
// personalised by the Provisioner after the claim). A failure is retried
// through the event's redelivery.
func (s *StateSubscriber) personalise(ctx context.Context, w store.Workspace, info workspace.Info, keep bool) error {
	cid := w.Conversation
	if s.pers == nil || cid == "" {
		return nil
	}
	conv, err := s.st.Conversation(ctx, cid)
	switch {
	case errors.Is(err, store.ErrNotFound):
		conv = store.Conversation{ID: cid, Tenant: info.Tenant}
	case err != nil:
		return fmt.Errorf("personalise workspace %s: %w", w.ID, err)
	}
	if conv.Tenant == "" {
		conv.Tenant = info.Tenant
	}
	// The generation the workspace serves: its token says which (events
	// may have overtaken the bind that records it).
	gen := w.Generation
	if info.Token == WorkspaceToken(cid, conv.Generation) {
		gen = conv.Generation
	}
	info.Conversation = cid
	personalise := s.pers.Personalise
	if keep {
		personalise = s.pers.Reclaim
	}
	if err := personalise(ctx, conv, info, gen); err != nil {
		s.m.failure(FailPersonalise)
		return err
	}
	return nil
}

// unhealthy fails the conversation bound to w (compare-and-set: only if
// still bound to w) and stops w.
func (s *StateSubscriber) unhealthy(ctx context.Context, w store.Workspace, cause error, log *slog.Logger) error {
	s.m.failure(FailUnhealthy)
	log.Error("workspace unhealthy; stopping it", "err", cause)
	if w.Conversation != "" {
		if _, err := s.st.FailWorkspace(ctx, w.Conversation, w.ID, cause.Error()); err != nil && !errors.Is(err, store.ErrConflict) {
			return fmt.Errorf("fail unhealthy workspace %s: %w", w.ID, err)
		}
	}
	if err := s.rt.Stop(ctx, w.ID, "unhealthy"); err != nil {
		return fmt.Errorf("stop unhealthy workspace %s: %w", w.ID, err)
	}
	return nil
}

// answers is the correlation ID a task-state log line carries. An event
// has none of its own (EventBridge sends bare envelopes: the Router gives
// it its message UUID), so a line about a conversation carries the ID of
// the request it answers, read from the binding: the conversation's
// request_id, which the API sets to the HTTP request ID. Otherwise it is
// the event's.
func answers(ctx context.Context, conv *store.Conversation) string {
	if conv != nil && conv.RequestID != "" {
		return conv.RequestID
	}
	return events.CorrelationIDFromContext(ctx)
}
