package bustest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/workspaced/workspaced/events"
	"github.com/workspaced/workspaced/events/bus"
)

// deadline bounds every wait in the suite; nothing sleeps.
const deadline = 30 * time.Second

// fastRetry retries quickly so tests run fast; the behaviour is the same.
var fastRetry = bus.RetryOptions{
	MaxRetries:      2,
	InitialInterval: time.Millisecond,
	MaxInterval:     5 * time.Millisecond,
	AttemptTimeout:  deadline,
}

// Run runs the conformance suite against the bus h describes. Subtests run
// in parallel, each on a bus of its own.
func Run(t *testing.T, h Harness) {
	tests := []struct {
		name string
		skip bool
		fn   func(*testing.T, Harness)
	}{
		{"publish_handled_once_with_metadata", false, testPublishHandledOnce},
		{"commands_and_correlation_from_context", false, testCommands},
		{"publish_before_subscribe_is_not_lost", false, testPublishBeforeSubscribe},
		{"error_retried_with_backoff_then_succeeds", false, testRetryThenSucceed},
		{"always_failing_goes_to_poison_and_next_is_handled", false, testAlwaysFailing},
		{"malformed_payload_goes_to_poison_without_retry", false, testMalformed},
		{"terminal_error_goes_to_poison_without_retry", false, testTerminal},
		{"panic_is_recovered_retried_and_poisoned", false, testPanic},
		{"raw_envelope_payload_intact", false, testRawEnvelope},
		{"missing_queue_fails_at_startup", !h.Features.StartupChecks, testMissingQueue},
		{"close_waits_for_in_flight_handler", false, testGracefulClose},
		{"run_returns_when_context_cancelled", false, testRunCancelled},
		{"bus_close_stops_router_and_refuses_use", false, testBusCloseStopsRouter},
	}
	for _, tt := range tests {
		if tt.skip {
			continue // a feature this bus does not have (not a missing dependency)
		}
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, h)
		})
	}
}

// env is one bus with a router and metrics.
type env struct {
	t       *testing.T
	h       Harness
	bus     *bus.Bus
	reg     *prometheus.Registry
	router  *bus.Router
	runDone chan error
}

func newEnv(t *testing.T, h Harness, retry bus.RetryOptions) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	opts := h.Options(t)
	opts.SubscribeTopics = events.QueueTopics()
	opts.PublishTopics = events.QueueTopics()
	b, err := bus.New(ctx, opts)
	if err != nil {
		t.Fatalf("new bus: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("close bus: %v", err)
		}
	})
	reg := prometheus.NewRegistry()
	m, err := bus.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	r, err := bus.NewRouter(b, bus.RouterOptions{Retry: retry, Metrics: m})
	if err != nil {
		t.Fatalf("new router: %v", err)
	}
	return &env{t: t, h: h, bus: b, reg: reg, router: r}
}

// run starts the router and waits until every handler is subscribed; the
// router is closed at cleanup.
func (e *env) run() {
	e.t.Helper()
	e.runDone = make(chan error, 1)
	go func() { e.runDone <- e.router.Run(context.Background()) }()
	select {
	case <-e.router.Running():
	case err := <-e.runDone:
		e.t.Fatalf("router stopped at start: %v", err)
	case <-time.After(deadline):
		e.t.Fatal("router did not start")
	}
	e.t.Cleanup(e.stop)
}

// stop closes the router and waits for Run to return. Idempotent.
func (e *env) stop() {
	e.t.Helper()
	if err := e.router.Close(); err != nil {
		e.t.Errorf("close router: %v", err)
	}
	if e.runDone == nil {
		return
	}
	select {
	case err := <-e.runDone:
		if err != nil {
			e.t.Errorf("router run: %v", err)
		}
		e.runDone = nil
	case <-time.After(deadline):
		e.t.Error("router did not stop")
	}
}

// counter returns the value of a bus metric with labels.
func (e *env) counter(name string, labels map[string]string) float64 {
	e.t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if want, ok := labels[lp.GetName()]; ok && want != lp.GetValue() {
					continue metrics
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

func (e *env) wantCounter(name string, labels map[string]string, want float64) {
	e.t.Helper()
	if got := e.counter(name, labels); got != want {
		e.t.Errorf("%s%v = %v, want %v", name, labels, got, want)
	}
}

// poison subscribes to topic's poison destination.
func (e *env) poison(topic string) <-chan *message.Message {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	sub := e.bus.Subscriber()
	ch, err := sub.Subscribe(ctx, e.bus.PoisonTopic(topic))
	if err != nil {
		cancel()
		e.t.Fatalf("subscribe to poison destination of %s: %v", topic, err)
	}
	e.t.Cleanup(func() {
		cancel()
		_ = sub.Close()
	})
	return ch
}

// wantEmpty checks, where the bus can tell, that topic's queue is empty:
// every ack reached it. Call after the router stopped.
func (e *env) wantEmpty(topic string) {
	e.t.Helper()
	if !e.h.Features.QueueDepth {
		return
	}
	if n := e.h.Depth(e.t, e.bus, topic); n != 0 {
		e.t.Errorf("queue of %s holds %d messages after the router stopped, want 0", topic, n)
	}
}

func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v, ok := <-ch:
		if !ok {
			t.Fatalf("%s: channel closed", what)
		}
		return v
	case <-time.After(deadline):
		t.Fatalf("%s: nothing within %v", what, deadline)
	}
	panic("unreachable")
}

// waitClosed waits for ch to be closed.
func waitClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(deadline):
		t.Fatalf("%s: not within %v", what, deadline)
	}
}

func requested(id string) events.WorkspaceRequested {
	return events.WorkspaceRequested{ConversationID: id, RequestID: "req-" + id, Tenant: "acme", RequestedAt: time.Date(2026, 3, 2, 9, 14, 3, 0, time.UTC)}
}

// seen records handled messages by UUID.
type seen struct {
	mu    sync.Mutex
	count map[string]int
	msgs  chan *message.Message
}

func newSeen() *seen { return &seen{count: map[string]int{}, msgs: make(chan *message.Message, 16)} }

func (s *seen) add(msg *message.Message) {
	s.mu.Lock()
	s.count[msg.UUID]++
	s.mu.Unlock()
	s.msgs <- msg.Copy()
}

func (s *seen) times(uuid string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count[uuid]
}
