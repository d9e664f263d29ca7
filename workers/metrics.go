package workers

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/workspaced/workspaced/store"
	"github.com/workspaced/workspaced/workspace"
)

// Start-failure kinds (label "kind" of workspaced_workspace_start_failures_total).
const (
	FailCapacity  = "capacity"  // the runtime had no room (retried)
	FailTerminal  = "terminal"  // the runtime refused for good (conversation failed)
	FailError     = "error"     // any other runtime or store error (retried)
	FailStopped   = "stopped"   // the workspace stopped before it was bound (retried with a new generation)
	FailUnhealthy = "unhealthy" // the agent never answered /health in time (conversation failed)
	FailGaveUp    = "gave_up"   // retries exhausted (conversation failed)
	// FailPersonalise: claim record, MCP rules or file restore failed
	// (retried).
	FailPersonalise = "personalise"
	// FailTimeout: the start was running on the runtime when the
	// attempt's deadline passed (retried; the retry joins the same start).
	// A start still waiting for admission is not a failure: it is counted
	// in workspaced_workspace_starts_queued_total.
	FailTimeout = "timeout"
)

// Start kinds (label "start" of the provisioning histogram).
const (
	StartCold = "cold" // a new workspace was started for the request
	StartWarm = "warm" // a warm-pool workspace was handed over
)

// Metrics are the workers' Prometheus collectors. A nil *Metrics records
// nothing (tests that do not look at metrics pass nil).
type Metrics struct {
	events       *prometheus.CounterVec
	provisioning *prometheus.HistogramVec
	failures     *prometheus.CounterVec

	poolSize    *prometheus.GaugeVec
	poolClaims  *prometheus.CounterVec
	poolStarts  *prometheus.CounterVec
	poolRetired *prometheus.CounterVec
	warmups     *prometheus.CounterVec
	claimTime   *prometheus.HistogramVec
	gc          *prometheus.CounterVec
	repairs     *prometheus.CounterVec
	reconciles  *prometheus.CounterVec
	leader      *prometheus.GaugeVec
	active      prometheus.Gauge
	queued      prometheus.Counter
}

// NewMetrics registers the workers' collectors with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "workspaced_task_events_total",
			Help: "Task-state events by lastStatus and outcome (applied, stale, ignored).",
		}, []string{"status", "outcome"}),
		provisioning: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "workspaced_provisioning_seconds",
			Help:    "Time from workspace.requested to the conversation's workspace being ready.",
			Buckets: []float64{0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300},
		}, []string{"start"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "workspaced_workspace_start_failures_total",
			Help: "Failed workspace starts by kind.",
		}, []string{"kind"}),
	}
	m.poolSize = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "workspaced_pool_workspaces",
		Help: "Warm-pool workspaces by state (starting, available, claimed, reserved), as last read by this replica's replenisher.",
	}, []string{"state"})
	m.poolClaims = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "workspaced_pool_claims_total",
		Help: "Warm-pool acquires by result: hit (a warm workspace served), miss (pool empty: cold start), unhealthy (claimed workspace failed its check; released, next tried).",
	}, []string{"result"})
	m.poolStarts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "workspaced_pool_starts_total",
		Help: "Warm-pool workspaces started by the replenisher, by result (ok, error): the refill rate.",
	}, []string{"result"})
	m.poolRetired = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "workspaced_pool_retired_total",
		Help: "Available warm-pool workspaces taken out and stopped, by reason (max_age).",
	}, []string{"reason"})
	m.claimTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "workspaced_acquire_seconds",
		Help:    "Time the worker took to give a conversation a workspace: warm (claim, health check, personalise) or cold (until the runtime accepted the start; readiness follows).",
		Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30},
	}, []string{"start"})
	m.gc = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "workspaced_gc_actions_total",
		Help: "GC actions by action (idle_release, stuck, orphan, pool_max_age) and mode (done, dry_run).",
	}, []string{"action", "mode"})
	m.repairs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "workspaced_reconcile_repairs_total",
		Help: "Redis repairs by the reconciler, by kind (adopted, pool_adopted, stopped, ready, endpoint, dead_binding).",
	}, []string{"repair"})
	m.reconciles = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "workspaced_reconcile_runs_total",
		Help: "Reconciler passes by result (ok, error).",
	}, []string{"result"})
	m.leader = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "workspaced_leader",
		Help: "1 while this replica holds the lease of the loop (pool, gc).",
	}, []string{"loop"})
	m.warmups = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "workspaced_pool_warmups_total",
		Help: "Warm-up runs of new pool workspaces before they are offered, by result (ok, error: offered anyway).",
	}, []string{"result"})
	m.active = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "workspaced_workspaces_active",
		Help: "Workspaces the runtime runs (not stopping or stopped: warm pool and conversations), as the reconciler last listed them; 0 on a replica without the gc lease, so take the Maximum across replicas.",
	})
	m.queued = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "workspaced_workspace_starts_queued_total",
		Help: "Provisioning attempts that ended while their start still waited for admission (WORKSPACE_START_CONCURRENCY); retried in place, not failures.",
	})
	for _, c := range []prometheus.Collector{m.events, m.provisioning, m.failures, m.poolSize, m.poolClaims,
		m.poolStarts, m.poolRetired, m.warmups, m.claimTime, m.gc, m.repairs, m.reconciles, m.leader, m.active, m.queued} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register workers metrics: %w", err)
		}
	}
	// Export the alarmed series at zero from the start: a collector that
	// turns counters into rates (the CloudWatch agent) takes a series' first
	// sample as its baseline, so the first failure after a restart would
	// otherwise go unseen.
	for _, k := range []string{FailCapacity, FailTerminal, FailError, FailStopped, FailUnhealthy, FailGaveUp, FailPersonalise, FailTimeout} {
		m.failures.WithLabelValues(k)
	}
	m.gc.WithLabelValues(GCStuck, "done")
	return m, nil
}

func (m *Metrics) startQueued() {
	if m != nil {
		m.queued.Inc()
	}
}

func (m *Metrics) event(status, outcome string) {
	if m != nil {
		m.events.WithLabelValues(status, outcome).Inc()
	}
}

func (m *Metrics) failure(kind string) {
	if m != nil {
		m.failures.WithLabelValues(kind).Inc()
	}
}

func (m *Metrics) provisioned(start string, seconds float64) {
	if m != nil && seconds >= 0 {
		m.provisioning.WithLabelValues(start).Observe(seconds)
	}
}

func (m *Metrics) poolCounts(c store.PoolCounts) {
	if m == nil {
		return
	}
	m.poolSize.WithLabelValues("starting").Set(float64(c.Starting))
	m.poolSize.WithLabelValues("available").Set(float64(c.Available))
	m.poolSize.WithLabelValues("claimed").Set(float64(c.Claimed))
	m.poolSize.WithLabelValues("reserved").Set(float64(c.Reserved))
}

// Pool claim results (label "result" of workspaced_pool_claims_total).
const (
	ClaimHit       = "hit"
	ClaimMiss      = "miss"
	ClaimUnhealthy = "unhealthy"
)

func (m *Metrics) claim(result string) {
	if m != nil {
		m.poolClaims.WithLabelValues(result).Inc()
	}
}

func (m *Metrics) poolStart(result string) {
	if m != nil {
		m.poolStarts.WithLabelValues(result).Inc()
	}
}

func (m *Metrics) warmedUp(result string) {
	if m == nil {
		return
	}
	m.warmups.WithLabelValues(result).Inc()
}

func (m *Metrics) retired(reason string) {
	if m != nil {
		m.poolRetired.WithLabelValues(reason).Inc()
	}
}

func (m *Metrics) acquired(start string, seconds float64) {
	if m != nil && seconds >= 0 {
		m.claimTime.WithLabelValues(start).Observe(seconds)
	}
}

// GC actions (label "action" of workspaced_gc_actions_total).
const (
	GCIdle       = "idle_release"
	GCStuck      = "stuck"
	GCOrphan     = "orphan"
	GCPoolMaxAge = "pool_max_age"
)

func (m *Metrics) gcAction(action string, dryRun bool) {
	if m == nil {
		return
	}
	mode := "done"
	if dryRun {
		mode = "dry_run"
	}
	m.gc.WithLabelValues(action, mode).Inc()
}

// Reconciler repairs (label "repair" of workspaced_reconcile_repairs_total).
const (
	RepairAdopted     = "adopted"
	RepairPoolAdopted = "pool_adopted"
	RepairStopped     = "stopped"
	RepairReady       = "ready"
	RepairEndpoint    = "endpoint"
	RepairDeadBinding = "dead_binding"
	// RepairResumed: a running workspace nobody was making ready, made
	// ready on demand by the provisioner (not by a reconcile pass).
	RepairResumed = "resumed"
)

func (m *Metrics) repair(kind string, n int) {
	if m != nil && n > 0 {
		m.repairs.WithLabelValues(kind).Add(float64(n))
	}
}

func (m *Metrics) reconciled(err error) {
	if m == nil {
		return
	}
	if err != nil {
		m.reconciles.WithLabelValues("error").Inc()
		return
	}
	m.reconciles.WithLabelValues("ok").Inc()
}

func (m *Metrics) leading(loop string, yes bool) {
	if m == nil {
		return
	}
	v := 0.0
	if yes {
		v = 1
	}
	m.leader.WithLabelValues(loop).Set(v)
	if loop == "gc" && !yes {
		// The reconciler runs under the gc lease: a former leader's count
		// would go stale.
		m.active.Set(0)
	}
}

// activeWorkspaces records the workspaces a reconcile pass listed that are
// not on their way down.
func (m *Metrics) activeWorkspaces(infos []workspace.Info) {
	if m == nil {
		return
	}
	n := 0
	for _, i := range infos {
		if !i.Status.Stopping() {
			n++
		}
	}
	m.active.Set(float64(n))
}
