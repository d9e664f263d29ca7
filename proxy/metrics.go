package proxy

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the proxy's Prometheus collectors.
type Metrics struct {
	Decisions        *prometheus.CounterVec   // route, decision, reason
	UpstreamStatus   *prometheus.CounterVec   // route, code
	SigningFailures  *prometheus.CounterVec   // reason
	ActiveTunnels    prometheus.Gauge         //
	Bytes            *prometheus.CounterVec   // route, direction (upstream|downstream)
	AdminAuthFailure prometheus.Counter       //
	Duration         *prometheus.HistogramVec // route
}

// NewMetrics builds the collectors and registers them with reg (nil: not
// registered anywhere); a registration conflict is an error.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		Decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "credential_proxy_decisions_total",
			Help: "Proxy decisions by route, allow/deny and reason.",
		}, []string{"route", "decision", "reason"}),
		UpstreamStatus: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "credential_proxy_upstream_responses_total",
			Help: "Upstream responses by route and HTTP status code.",
		}, []string{"route", "code"}),
		SigningFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "credential_proxy_signing_failures_total",
			Help: "Bedrock requests not forwarded because credentials or signing failed.",
		}, []string{"reason"}),
		ActiveTunnels: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "credential_proxy_active_tunnels",
			Help: "CONNECT tunnels currently open.",
		}),
		Bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "credential_proxy_bytes_total",
			Help: "Bytes relayed by route and direction (upstream: client to server).",
		}, []string{"route", "direction"}),
		AdminAuthFailure: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "credential_proxy_admin_auth_failures_total",
			Help: "Admin API requests refused for a bad or missing signature.",
		}),
		Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "credential_proxy_request_duration_seconds",
			Help:    "Time from request to the end of the response, by route.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
		}, []string{"route"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.Decisions, m.UpstreamStatus, m.SigningFailures, m.ActiveTunnels, m.Bytes, m.AdminAuthFailure, m.Duration} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("register credential proxy metrics: %w", err)
			}
		}
	}
	return m, nil
}
