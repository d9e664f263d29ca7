package bus

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/workspaced/workspaced/events"
)

// Outcomes of handling one message (label "outcome").
const (
	OutcomeOK        = "ok"        // handled and acked
	OutcomePoisoned  = "poisoned"  // given up; published to the poison destination and acked
	OutcomeNacked    = "nacked"    // given up but the poison publish failed: nacked, redelivered later
	OutcomeAbandoned = "abandoned" // delivery cancelled (shutdown): nacked, redelivered later
)

// Poison causes (label "cause").
const (
	CausePermanent = "permanent" // a terminal error (workspace.IsTerminal): no retries
	CauseExhausted = "exhausted" // retries or the time budget ran out
)

// Metrics are the bus's Prometheus collectors. A nil *Metrics records
// nothing.
type Metrics struct {
	handled  *prometheus.CounterVec
	poisoned *prometheus.CounterVec
	retries  *prometheus.CounterVec
}

// NewMetrics creates the collectors and registers them with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		handled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "workspaced", Subsystem: "bus", Name: "messages_handled_total",
			Help: "Messages handled by a router, by topic and outcome (ok, poisoned, nacked, abandoned).",
		}, []string{"topic", "outcome"}),
		poisoned: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "workspaced", Subsystem: "bus", Name: "messages_poisoned_total",
			Help: "Messages sent to the poison destination, by topic and cause (permanent, exhausted).",
		}, []string{"topic", "cause"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "workspaced", Subsystem: "bus", Name: "handler_retries_total",
			Help: "Handler attempts after the first, by topic.",
		}, []string{"topic"}),
	}
	for _, c := range []prometheus.Collector{m.handled, m.poisoned, m.retries} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register bus metrics: %w", err)
		}
	}
	// Poisonings are alarmed on: export every topic's series at zero from
	// the start, so a rate-taking collector has a baseline before the first.
	for _, topic := range []string{events.TopicWorkspaceRequested, events.TopicWorkspaceReleased, events.TopicTaskEvents} {
		for _, cause := range []string{CausePermanent, CauseExhausted} {
			m.poisoned.WithLabelValues(topic, cause)
		}
	}
	return m, nil
}

func (m *Metrics) observeHandled(topic, outcome string) {
	if m != nil {
		m.handled.WithLabelValues(topic, outcome).Inc()
	}
}

func (m *Metrics) observePoisoned(topic, cause string) {
	if m != nil {
		m.poisoned.WithLabelValues(topic, cause).Inc()
	}
}

func (m *Metrics) observeRetry(topic string) {
	if m != nil {
		m.retries.WithLabelValues(topic).Inc()
	}
}
