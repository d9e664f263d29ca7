package docker

import "github.com/prometheus/client_golang/prometheus"

// The Watcher is a prometheus.Collector over its Stats: register it
// (reg.Register(w)) to export them.
var (
	descPublished = prometheus.NewDesc("workspaced_docker_watcher_events_published_total",
		"Task-state envelopes the Docker event watcher handed to its sink.", nil, nil)
	descDropped = prometheus.NewDesc("workspaced_docker_watcher_events_dropped_total",
		"Task-state envelopes dropped (queue full or sink failing); the reconciler repairs the state they carried.", nil, nil)
	descReconnects = prometheus.NewDesc("workspaced_docker_watcher_reconnects_total",
		"Times the Docker event stream broke and the watcher reconnected.", nil, nil)
)

// Describe implements prometheus.Collector.
func (w *Watcher) Describe(ch chan<- *prometheus.Desc) {
	ch <- descPublished
	ch <- descDropped
	ch <- descReconnects
}

// Collect implements prometheus.Collector.
func (w *Watcher) Collect(ch chan<- prometheus.Metric) {
	s := w.Stats()
	ch <- prometheus.MustNewConstMetric(descPublished, prometheus.CounterValue, float64(s.Published))
	ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(s.Dropped))
	ch <- prometheus.MustNewConstMetric(descReconnects, prometheus.CounterValue, float64(s.Reconnects))
}
