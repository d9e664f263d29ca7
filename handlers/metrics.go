package handlers

import (
	"strconv"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the API's Prometheus collectors.
type metrics struct {
	requests    *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	streams     prometheus.Gauge
	relayBytes  prometheus.Counter
	relayEvents *prometheus.CounterVec
	wait        *prometheus.HistogramVec
	outcomes    *prometheus.CounterVec
	hung        prometheus.Counter
	// connsRefused counts connections refused by the per-client limit.
	connsRefused prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "workspaced_http_requests_total",
			Help: "HTTP requests by route, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "workspaced_http_request_duration_seconds",
			Help:    "Time to the end of the response (streams included) by route.",
			Buckets: []float64{.005, .025, .1, .5, 1, 5, 15, 60, 300, 1800},
		}, []string{"route", "method"}),
		streams: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "workspaced_execute_streams_open",
			Help: "Execute streams currently open.",
		}),
		relayBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "workspaced_relay_bytes_total",
			Help: "Bytes of agent event data relayed to clients.",
		}),
		relayEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "workspaced_relay_events_total",
			Help: "Agent events relayed to clients, by event type.",
		}, []string{"event"}),
		wait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "workspaced_execute_workspace_wait_seconds",
			Help:    "Time from an execute request to a ready workspace, as the client sees it: start=bound (already ready), warm (a warm-pool workspace was claimed), cold (one was started).",
			Buckets: []float64{.01, .05, .25, 1, 2.5, 5, 10, 20, 40, 90},
		}, []string{"start"}),
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "workspaced_execute_outcomes_total",
			Help: "How execute streams ended: done, or the code of the final error event.",
		}, []string{"outcome"}),
		hung: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "workspaced_workspaces_hung_total",
			Help: "Bound workspaces the API found hung (health check failed before a relay, or a run silent past RUN_SILENCE_TIMEOUT) and replaced.",
		}),
		connsRefused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "workspaced_http_connections_refused_total",
			Help: "Connections answered 429 and closed because their client address already held HTTP_MAX_CONNS_PER_CLIENT.",
		}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.streams, m.relayBytes, m.relayEvents, m.wait, m.outcomes, m.hung, m.connsRefused} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// observe is the request-metrics middleware. It labels by route pattern,
// never by raw path, so conversation IDs do not explode cardinality.
func (s *Server) observe(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := s.opts.Now()
		err := next(c)
		route := c.Path()
		if route == "" {
			route = "unmatched"
		}
		code := c.Response().Status
		if err != nil && !c.Response().Committed {
			code, _ = classify(err)
		}
		s.metrics.requests.WithLabelValues(route, c.Request().Method, strconv.Itoa(code)).Inc()
		s.metrics.duration.WithLabelValues(route, c.Request().Method).Observe(s.opts.Now().Sub(start).Seconds())
		return err
	}
}

// relayTally counts a relay's events and bytes between two publishes: the
// shared counters (a label lookup and atomic adds each) are updated once
// per burst of events, not per event.
type relayTally struct {
	bytes int
	types []eventTally // the types seen since the last publish, few
}

type eventTally struct {
	event string
	n     int
}

// add counts one relayed event of that type with data bytes of data.
func (t *relayTally) add(event string, data int) {
	t.bytes += data
	for i := range t.types {
		if t.types[i].event == event {
			t.types[i].n++
			return
		}
	}
	t.types = append(t.types, eventTally{event, 1})
}

// publish adds what was counted to m and starts counting afresh.
func (t *relayTally) publish(m *metrics) {
	if t.bytes > 0 {
		m.relayBytes.Add(float64(t.bytes))
		t.bytes = 0
	}
	for _, et := range t.types {
		m.relayEvents.WithLabelValues(et.event).Add(float64(et.n))
	}
	clear(t.types)
	t.types = t.types[:0]
}
