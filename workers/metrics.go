package workers

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Start-failure kinds (label "kind" of workspaced_workspace_start_failures_total).
const (
	FailCapacity  = "capacity"  // the runtime had no room (retried)
	FailTerminal  = "terminal"  // the runtime refused for good (conversation failed)
	FailError     = "error"     // any other runtime or store error (retried)
	FailStopped   = "stopped"   // the workspace stopped before it was bound (retried with a new generation)
	FailUnhealthy = "unhealthy" // the agent never answered /health in time (conversation failed)
	FailGaveUp    = "gave_up"   // retries exhausted (conversation failed)
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
	for _, c := range []prometheus.Collector{m.events, m.provisioning, m.failures} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register workers metrics: %w", err)
		}
	}
	return m, nil
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
