package main

import (
	"context"
	"time"

	"github.com/workspaced/workspaced/config"
	"github.com/workspaced/workspaced/workers"
)

// Wiring of personalisation, the warm pool, GC and the reconciler.

// newPersonaliser builds the personalisation step shared by the cold path
// (state subscriber), the warm path (provisioner), the API (rules changed
// on a ready workspace) and the reconciler. restorer may be nil.
func (a *App) newPersonaliser(restorer workers.Restorer) *workers.Personaliser {
	return workers.NewPersonaliser(a.store, workers.PersonaliserOptions{
		Rules:    a.runtime.rules,
		Claims:   a.runtime.claims,
		Restorer: restorer,
		Logger:   a.log,
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
	ready := workers.NewStateSubscriber(a.runtime.rt, a.store, wm, workers.StateOptions{Logger: a.log, Personaliser: pers})
	return workers.NewReconciler(a.runtime.rt, a.store, wm, workers.ReconcilerOptions{
		Claims:       a.runtime.claims,
		Adopter:      a.adopter(),
		Personaliser: pers,
		Ready:        ready,
		Logger:       a.log,
	})
}

// addGC runs GC and the reconciler (role gc).
func (a *App) addGC(wm *workers.Metrics, rec *workers.Reconciler) {
	gc := workers.NewGC(a.runtime.rt, a.store, busReleases{a.bus}, rec, wm, workers.GCOptions{
		IdleTTL:           a.cfg.GC.IdleTTL,
		StuckTimeout:      a.cfg.GC.StuckTimeout,
		OrphanGrace:       a.cfg.GC.OrphanGrace,
		Interval:          a.cfg.GC.Interval,
		ReconcileInterval: a.cfg.GC.ReconcileInterval,
		DryRun:            a.cfg.GC.DryRun,
		LeaseTTL:          a.cfg.GC.LeaseTTL,
		Claims:            a.runtime.pruner,
		Logger:            a.log,
	})
	a.loops = append(a.loops, gc.Run)
}

// addLocalReopen re-opens, at start and before anything is served, the
// host side (in-process proxy listeners, with their MCP rules) of
// workspaces still running from a previous workspaced (Docker). It needs
// no lease: it touches only this process's proxy.
func (a *App) addLocalReopen(rec *workers.Reconciler) {
	if a.adopter() == nil {
		return
	}
	a.startup = append(a.startup, func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if err := rec.ReopenLocal(ctx); err != nil {
			a.log.Warn("re-opening running workspaces failed; the reconciler retries", "err", err)
		}
	})
}

// adopter is the runtime's Adopter in the process that hosts workspaces'
// in-process proxies: on Docker the one with the worker role (it starts
// them; all roles run in one process there). Elsewhere re-opening would
// steal the sockets from that process.
func (a *App) adopter() workers.Adopter {
	if !a.roles.Worker {
		return nil
	}
	return a.runtime.adopter
}
