package files

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Outcomes (label "outcome" of the save and restore counters).
const (
	OutcomeSaved     = "saved"     // a snapshot was uploaded and the manifest moved to it
	OutcomeUnchanged = "unchanged" // save: no tree changed since the manifest's save; nothing uploaded
	OutcomeRestored  = "restored"  // a snapshot was put into the workspace
	OutcomeNone      = "none"      // restore: the conversation has no saved files
	OutcomeInvalid   = "invalid"   // bad target, or a snapshot that does not match its manifest
	OutcomeError     = "error"     // agent or S3 failure (the caller retries)
)

// Operations (label "op"; label "direction" of the bytes counter).
const (
	opSave    = "save"
	opRestore = "restore"
)

// metrics are the Store's collectors. Always non-nil; registered only when
// a Registerer is given.
type metrics struct {
	ops      *prometheus.CounterVec
	bytes    *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		ops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "workspaced_files_operations_total",
			Help: "Workspace file saves and restores by operation (save, restore) and outcome (saved, restored, none, invalid, error).",
		}, []string{"op", "outcome"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "workspaced_files_bytes_total",
			Help: "Compressed snapshot bytes moved to (save) or from (restore) S3, counted for successful operations.",
		}, []string{"direction"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "workspaced_files_duration_seconds",
			Help:    "Duration of workspace file saves and restores by operation and outcome.",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600},
		}, []string{"op", "outcome"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.ops, m.bytes, m.duration} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register files metrics: %w", err)
		}
	}
	return m, nil
}

// done records one finished operation.
func (m *metrics) done(op, outcome string, d time.Duration, bytes int64) {
	m.ops.WithLabelValues(op, outcome).Inc()
	m.duration.WithLabelValues(op, outcome).Observe(d.Seconds())
	if bytes > 0 {
		m.bytes.WithLabelValues(op).Add(float64(bytes))
	}
}
