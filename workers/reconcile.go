package workers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/workspaced/workspaced/store"
	"github.com/workspaced/workspaced/workspace"
)

// ReconcileStore is what the reconciler needs.
type ReconcileStore interface {
	Workspaces(ctx context.Context) ([]store.Workspace, error)
	Workspace(ctx context.Context, wid string) (store.Workspace, error)
	Conversation(ctx context.Context, cid string) (store.Conversation, error)
	AdoptWorkspace(ctx context.Context, a store.Adoption) (store.AdoptOutcome, store.Conversation, error)
	AddPoolWorkspace(ctx context.Context, info workspace.Info, reservation string) (store.Workspace, error)
	MarkStopped(ctx context.Context, wid, reason string) (store.ApplyResult, error)
	RefreshEndpoint(ctx context.Context, wid, endpoint string) (bool, error)
	ClearDeadBindings(ctx context.Context) (int, error)
}

// ReconcilerOptions configure a Reconciler.
type ReconcilerOptions struct {
	// Ready finishes a healthy workspace whose events were lost
	// (personalise, then ready): the state subscriber.
	Ready *StateSubscriber
	// Health checks an agent (default AgentHealth), each try bounded by
	// HealthTimeout (default DefaultHealthTryTimeout).
	Health        HealthChecker
	HealthTimeout time.Duration
	// Settle is how long a workspace may stay not ready before the
	// reconciler finishes it itself (events are late, not lost, before
	// that; default 30s).
	Settle time.Duration
	Logger *slog.Logger
	// Now is the clock of the store's timestamps (default time.Now).
	Now func() time.Time
}

// Repairs counts what one reconcile pass changed in Redis.
type Repairs struct {
	Adopted, PoolAdopted, Stopped, Ready, Endpoint, DeadBinding int
}

// Total is the number of repairs.
func (r Repairs) Total() int {
	return r.Adopted + r.PoolAdopted + r.Stopped + r.Ready + r.Endpoint + r.DeadBinding
}

// Reconciler converges Redis with what the runtime actually runs, by
// level: task-state events are hints, this is the truth. Missing records
// and bindings are restored from labels, tags and claim records (so a
// flushed Redis loses nothing durable), states and endpoints refreshed,
// workspaces gone from the runtime marked stopped (their bindings end),
// bindings to unknown workspaces cleared. Safe to run anywhere at any
// time (every repair is a compare-and-set script); GC runs it on start
// and every RECONCILE_INTERVAL under its lease.
type Reconciler struct {
	rt   workspace.Runtime
	st   ReconcileStore
	m    *Metrics
	opts ReconcilerOptions
	log  *slog.Logger
}

// NewReconciler returns a Reconciler. m may be nil.
func NewReconciler(rt workspace.Runtime, st ReconcileStore, m *Metrics, opts ReconcilerOptions) *Reconciler {
	if opts.Health == nil {
		opts.Health = AgentHealth
	}
	if opts.HealthTimeout <= 0 {
		opts.HealthTimeout = DefaultHealthTryTimeout
	}
	if opts.Settle <= 0 {
		opts.Settle = 30 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Reconciler{rt: rt, st: st, m: m, opts: opts, log: opts.Logger.With("component", "reconciler")}
}

// Reconcile runs one pass and returns its repairs (also counted in
// workspaced_reconcile_repairs_total). Per-workspace failures are logged
// and the pass goes on; the error joins them.
func (r *Reconciler) Reconcile(ctx context.Context) (Repairs, error) {
	var rep Repairs
	err := r.reconcile(ctx, &rep)
	r.m.repair(RepairAdopted, rep.Adopted)
	r.m.repair(RepairPoolAdopted, rep.PoolAdopted)
	r.m.repair(RepairStopped, rep.Stopped)
	r.m.repair(RepairReady, rep.Ready)
	r.m.repair(RepairEndpoint, rep.Endpoint)
	r.m.repair(RepairDeadBinding, rep.DeadBinding)
	r.m.reconciled(err)
	if rep.Total() > 0 || err != nil {
		r.log.Info("reconciled", "adopted", rep.Adopted, "pool_adopted", rep.PoolAdopted, "stopped", rep.Stopped,
			"ready", rep.Ready, "endpoint", rep.Endpoint, "dead_binding", rep.DeadBinding, "err", err)
	}
	return rep, err
}

func (r *Reconciler) reconcile(ctx context.Context, rep *Repairs) error {
	// Redis first, then the runtime: a workspace started in between is
	// listed but not tracked (adopted or left alone), never the reverse.
	tracked, err := r.st.Workspaces(ctx)
	if err != nil {
		return err
	}
	byID := make(map[string]store.Workspace, len(tracked))
	for _, w := range tracked {
		byID[w.ID] = w
	}
	infos, err := r.rt.List(ctx)
	if err != nil {
		return err
	}
	r.m.activeWorkspaces(infos)
	var errs []error
	seen := make(map[string]bool, len(infos))
	for _, info := range infos {
		seen[info.ID] = true
		w, ok := byID[info.ID]
		if err := r.one(ctx, info, w, ok, rep); err != nil {
			errs = append(errs, fmt.Errorf("workspace %s: %w", info.ID, err))
		}
	}
	for _, w := range tracked {
		if seen[w.ID] {
			continue
		}
		if err := r.vanished(ctx, w, rep); err != nil {
			errs = append(errs, fmt.Errorf("workspace %s: %w", w.ID, err))
		}
	}
	n, err := r.st.ClearDeadBindings(ctx)
	rep.DeadBinding += n
	errs = append(errs, err)
	return errors.Join(errs...)
}

// one reconciles a workspace the runtime lists.
func (r *Reconciler) one(ctx context.Context, info workspace.Info, w store.Workspace, tracked bool, rep *Repairs) error {
	if info.Status.Stopping() {
		if !tracked {
			return nil // the orphan reaper removes what is left
		}
		if _, err := r.st.MarkStopped(ctx, info.ID, "stopped (reconciled): "+info.StoppedReason); err != nil {
			return err
		}
		rep.Stopped++
		return r.rt.Stop(ctx, info.ID, "stopped")
	}
	if info.Status != workspace.StatusRunning {
		return nil // still starting: its events will come
	}
	if !tracked {
		return r.adopt(ctx, info, rep)
	}
	if info.Endpoint != "" && info.Endpoint != w.Endpoint {
		changed, err := r.st.RefreshEndpoint(ctx, info.ID, info.Endpoint)
		if err != nil {
			return err
		}
		if changed {
			rep.Endpoint++
		}
	}
	if (w.State == store.WorkspaceProvisioning || w.State == store.WorkspaceRunning) && r.opts.Ready != nil &&
		r.opts.Now().Sub(w.CreatedAt) > r.opts.Settle && r.healthy(ctx, info) {
		// Its RUNNING event (or the handling of it) was lost.
		if err := r.opts.Ready.MarkHealthy(ctx, w, info); err != nil {
			return err
		}
		rep.Ready++
	}
	return nil
}

// adopt restores a running workspace Redis does not know.
func (r *Reconciler) adopt(ctx context.Context, info workspace.Info, rep *Repairs) error {
	claim, claimed, recorded, err := r.claim(ctx, info)
	if err != nil {
		return err
	}
	if !claimed {
		if !info.Pool {
			return nil // not personalised, or not ours to judge: the orphan reaper decides
		}
		if _, err := r.st.AddPoolWorkspace(ctx, info, ""); err != nil {
			return err
		}
		rep.PoolAdopted++
		if r.opts.Ready != nil && r.healthy(ctx, info) {
			w, err := r.st.Workspace(ctx, info.ID)
			if err != nil {
				return err
			}
			return r.opts.Ready.MarkHealthy(ctx, w, info)
		}
		return nil
	}
	// Without a claim record the workspace was never personalised: adopt
	// it as provisioning, and the usual path (health, personalise, ready)
	// finishes it.
	out, conv, err := r.st.AdoptWorkspace(ctx, store.Adoption{
		Workspace: info, Conversation: claim.Conversation, Owner: claim.Owner, Tenant: claim.Tenant,
		Generation: claim.Generation, Ready: recorded && r.healthy(ctx, info),
	})
	if err != nil {
		return err
	}
	r.log.Info("workspace adoption", "workspace", info.ID, "conversation", claim.Conversation, "outcome", out, "state", conv.State)
	if out == store.AdoptAdopted {
		rep.Adopted++
	}
	return nil
}

// claim finds whom a workspace serves: its claim record (recorded), or
// for a cold workspace without one, its label if the conversation's
// current generation matches its token.
func (r *Reconciler) claim(ctx context.Context, info workspace.Info) (c workspace.Claim, ok, recorded bool, err error) {
	if c, ok, err := r.rt.ReadClaim(ctx, info); err != nil || ok {
		return c, ok, ok, err
	}
	if info.Conversation == "" || info.Pool {
		return workspace.Claim{}, false, false, nil
	}
	conv, err := r.st.Conversation(ctx, info.Conversation)
	if errors.Is(err, store.ErrNotFound) {
		return workspace.Claim{}, false, false, nil
	}
	if err != nil {
		return workspace.Claim{}, false, false, err
	}
	if info.Token != WorkspaceToken(conv.ID, conv.Generation) {
		return workspace.Claim{}, false, false, nil
	}
	return workspace.Claim{Conversation: conv.ID, Owner: conv.Owner, Tenant: conv.Tenant, Generation: conv.Generation}, true, false, nil
}

// vanished handles a tracked workspace the runtime no longer lists: once
// Inspect confirms it is gone or stopping, it is marked stopped (its
// binding ends; the next execute provisions).
func (r *Reconciler) vanished(ctx context.Context, w store.Workspace, rep *Repairs) error {
	info, err := r.rt.Inspect(ctx, w.ID)
	switch {
	case errors.Is(err, workspace.ErrNotFound):
	case err != nil:
		return err
	case !info.Status.Stopping():
		return nil // listed late (ECS ListTasks is eventually consistent)
	}
	res, err := r.st.MarkStopped(ctx, w.ID, "gone from the runtime (reconciled)")
	if err != nil {
		return err
	}
	if res.Outcome == store.OutcomeApplied {
		rep.Stopped++
	}
	return nil
}

// healthy asks the agent once.
func (r *Reconciler) healthy(ctx context.Context, info workspace.Info) bool {
	if info.Endpoint == "" {
		return false
	}
	rt, err := r.rt.Transport(info.Endpoint)
	if err != nil {
		return false
	}
	if c, ok := rt.(interface{ CloseIdleConnections() }); ok {
		defer c.CloseIdleConnections()
	}
	hctx, cancel := context.WithTimeout(ctx, r.opts.HealthTimeout)
	defer cancel()
	return r.opts.Health.Healthy(hctx, rt, info.Endpoint) == nil
}
