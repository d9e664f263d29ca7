package main

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/workspaced/workspaced/config"
	"github.com/workspaced/workspaced/workers"
)

// Wiring of personalisation, the warm pool, GC and the reconciler.

// newPersonaliser builds the personalisation step shared by the cold path
// (state subscriber), the warm path (provisioner), the API (rules changed
// on a ready workspace) and the reconciler. restorer may be nil.
func (a *App) newPersonaliser(restorer workers.Restorer) *workers.Personaliser {
	return workers.NewPersonaliser(a.runtime.rt, a.store, workers.PersonaliserOptions{
		Restorer: restorer,
		Logger:   a.log,
		Fault:    a.fault,
	})
}

// poolEnabled reports whether the warm pool is configured.
func poolEnabled(c config.Pool) bool { return c.MinSize > 0 }

// addPool runs the warm-pool replenisher (role pool).
func (a *App) addPool(wm *workers.Metrics) {
	if !poolEnabled(a.cfg.Pool) {
		a.log.Info("warm pool disabled (WARM_POOL_MIN_SIZE=0)")
		return
	}
	r := workers.NewReplenisher(a.runtime.rt, a.store, wm, workers.PoolOptions{
		MinSize:   a.cfg.Pool.MinSize,
		MaxSize:   a.cfg.Pool.MaxSize,
		MaxAge:    a.cfg.Pool.MaxAge,
		StartRate: a.cfg.Pool.StartRate,
		Interval:  a.cfg.Pool.CheckInterval,
		LeaseTTL:  a.cfg.GC.LeaseTTL,
		Logger:    a.log,
	})
	a.loops = append(a.loops, r.Run)
}

// newReconciler builds the reconciler; ready finishes healthy workspaces
// whose events were lost (personalise, then ready).
func (a *App) newReconciler(wm *workers.Metrics, pers *workers.Personaliser) *workers.Reconciler {
	ready := workers.NewStateSubscriber(a.runtime.rt, a.store, wm, workers.StateOptions{
		Logger: a.log, Personaliser: pers, LockTTL: a.cfg.GC.LockTTL,
	})
	return workers.NewReconciler(a.runtime.rt, a.store, wm, workers.ReconcilerOptions{
		Ready:  ready,
		Logger: a.log,
	})
}

// addGC runs GC and the reconciler (role gc).
func (a *App) addGC(wm *workers.Metrics, rec *workers.Reconciler) {
	gc := workers.NewGC(a.runtime.rt, a.store, a.bus.Commands(), rec, wm, workers.GCOptions{
		IdleTTL:           a.cfg.GC.IdleTTL,
		StuckTimeout:      a.cfg.GC.StuckTimeout,
		OrphanGrace:       a.cfg.GC.OrphanGrace,
		Interval:          a.cfg.GC.Interval,
		ReconcileInterval: a.cfg.GC.ReconcileInterval,
		DryRun:            a.cfg.GC.DryRun,
		LeaseTTL:          a.cfg.GC.LeaseTTL,
		Logger:            a.log,
	})
	a.loops = append(a.loops, gc.Run)
}

// addCheckpoints runs the checkpointer (role worker, which saves on
// release too; one leader by lease) when files are saved and
// FILES_CHECKPOINT_INTERVAL is not 0.
func (a *App) addCheckpoints(wm *workers.Metrics) {
	if a.saver == nil || a.cfg.Files.CheckpointInterval == 0 {
		return
	}
	c := workers.NewCheckpointer(a.saver, a.store, wm, workers.CheckpointOptions{
		Interval: a.cfg.Files.CheckpointInterval,
		Tick:     a.cfg.Files.CheckpointTick,
		Logger:   a.log,
	})
	a.loops = append(a.loops, c.Run)
}

// addRecover has the runtime re-attach, at start and before anything is
// served, to the workspaces a previous workspaced left running (Docker:
// their proxy listeners, with their persisted MCP rules). Where the
// proxies live in-process, only the process that starts workspaces (the
// worker role; all roles share one process on Docker) may do it: another
// would take their sockets. It needs no lease and changes nothing in
// Redis. A failed first attempt does not hold the process back: a
// background loop retries until one succeeds.
func (a *App) addRecover() {
	if a.runtime.rt.Capabilities().HostProxies && !a.roles.Worker {
		return
	}
	var done atomic.Bool
	a.startup = append(a.startup, func(ctx context.Context) { done.Store(a.recoverOnce(ctx)) })
	a.loops = append(a.loops, func(ctx context.Context) error {
		for backoff := time.Second; !done.Load(); backoff = min(2*backoff, time.Minute) {
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-t.C:
			}
			done.Store(a.recoverOnce(ctx))
		}
		return nil
	})
}

// recoverOnce runs one bounded Recover and reports whether it succeeded.
func (a *App) recoverOnce(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	n, err := a.runtime.rt.Recover(ctx)
	if n > 0 {
		a.log.Info("running workspaces recovered", "count", n)
	}
	if err != nil {
		a.log.Warn("recovering running workspaces failed; retrying", "err", err)
		return false
	}
	return true
}
