package bustest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"github.com/workspaced/workspaced/events"
	"github.com/workspaced/workspaced/events/bus"
	"github.com/workspaced/workspaced/workspace"
)

func testPublishHandledOnce(t *testing.T, h Harness) {
	e := newEnv(t, h, fastRetry)
	s := newSeen()
	corr := make(chan string, 4)
	e.router.AddConsumerHandler("requested", events.TopicWorkspaceRequested, func(msg *message.Message) error {
		corr <- events.CorrelationIDFromContext(msg.Context())
		s.add(msg)
		return nil
	})
	e.run()

	first, err := bus.NewRequestedMessage(requested("conv-1"), "corr-1")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.bus.Publisher().Publish(events.TopicWorkspaceRequested, first); err != nil {
		t.Fatalf("publish: %v", err)
	}
	got := recv(t, s.msgs, "first message")
	if got.UUID != first.UUID {
		t.Errorf("uuid %q, want %q", got.UUID, first.UUID)
	}
	if typ := got.Metadata.Get(events.MetadataType); typ != events.TypeWorkspaceRequested {
		t.Errorf("metadata type %q, want %q", typ, events.TypeWorkspaceRequested)
	}
	if c := bus.CorrelationID(got); c != "corr-1" {
		t.Errorf("metadata correlation_id %q, want corr-1", c)
	}
	if c := recv(t, corr, "correlation from context"); c != "corr-1" {
		t.Errorf("correlation id in context %q, want corr-1", c)
	}
	cmd, err := events.DecodeRequested(got.Payload)
	if err != nil || cmd.ConversationID != "conv-1" {
		t.Errorf("payload %s: %+v, %v", got.Payload, cmd, err)
	}

	// A later message is handled; the first was not delivered again meanwhile.
	sentinel, _ := bus.NewRequestedMessage(requested("conv-2"), "corr-2")
	if err := e.bus.Publisher().Publish(events.TopicWorkspaceRequested, sentinel); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, s.msgs, "sentinel"); got.UUID != sentinel.UUID {
		t.Errorf("got %s again, want the sentinel", got.UUID)
	}
	e.stop()
	if n := s.times(first.UUID); n != 1 {
		t.Errorf("first message handled %d times, want 1", n)
	}
	e.wantCounter("workspaced_bus_messages_handled_total", map[string]string{"topic": events.TopicWorkspaceRequested, "outcome": bus.OutcomeOK}, 2)
	e.wantEmpty(events.TopicWorkspaceRequested)
}

func testCommands(t *testing.T, h Harness) {
	e := newEnv(t, h, fastRetry)
	s := newSeen()
	cmds := e.bus.Commands()
	// The requested handler publishes a release with the context it was
	// given: the correlation ID carries over.
	e.router.AddConsumerHandler("requested", events.TopicWorkspaceRequested, bus.Handle(events.DecodeRequested,
		func(ctx context.Context, cmd events.WorkspaceRequested) error {
			return cmds.PublishReleased(ctx, events.WorkspaceReleased{
				ConversationID: cmd.ConversationID, Reason: events.ReasonClient, RequestedAt: time.Now(),
			})
		}))
	e.router.AddConsumerHandler("released", events.TopicWorkspaceReleased, func(msg *message.Message) error {
		s.add(msg)
		return nil
	})
	states := make(chan *message.Message, 1)
	e.router.AddConsumerHandler("task-state", events.TopicTaskEvents, func(msg *message.Message) error {
		states <- msg
		return nil
	})
	e.run()
	ctx := events.WithCorrelationID(context.Background(), "http-req-7")
	if err := cmds.PublishRequested(ctx, requested("conv-3")); err != nil {
		t.Fatalf("PublishRequested: %v", err)
	}
	got := recv(t, s.msgs, "released")
	if typ := got.Metadata.Get(events.MetadataType); typ != events.TypeWorkspaceReleased {
		t.Errorf("type %q", typ)
	}
	if c := bus.CorrelationID(got); c != "http-req-7" {
		t.Errorf("correlation_id %q, want http-req-7 carried from the request", c)
	}
	if _, err := events.DecodeReleased(got.Payload); err != nil {
		t.Errorf("decode released: %v", err)
	}
	// Without one in the context, a command gets a fresh correlation ID.
	if err := cmds.PublishReleased(context.Background(), events.WorkspaceReleased{
		ConversationID: "conv-5", Reason: events.ReasonIdleTTL, RequestedAt: time.Now(),
	}); err != nil {
		t.Fatalf("PublishReleased: %v", err)
	}
	if c := bus.CorrelationID(recv(t, s.msgs, "released without correlation")); c == "" || c == "http-req-7" {
		t.Errorf("correlation_id %q, want a fresh one", c)
	}
	// A task-state envelope is bare, as EventBridge sends it: the Router
	// gives it its UUID as correlation ID, never the publisher's.
	running, err := events.DecodeTaskStateChange(ECSRunningEvent)
	if err != nil {
		t.Fatal(err)
	}
	if err := cmds.PublishTaskStateChange(ctx, running); err != nil {
		t.Fatalf("PublishTaskStateChange: %v", err)
	}
	st := recv(t, states, "task state")
	if _, err := events.DecodeTaskStateChange(st.Payload); err != nil {
		t.Errorf("decode task state: %v", err)
	}
	if c := bus.CorrelationID(st); c != st.UUID {
		t.Errorf("task state correlation_id %q, want its UUID %q", c, st.UUID)
	}
	// Invalid messages are refused before publishing.
	if err := cmds.PublishRequested(ctx, events.WorkspaceRequested{ConversationID: "../x"}); err == nil {
		t.Error("PublishRequested accepted an invalid command")
	}
	if err := cmds.PublishTaskStateChange(ctx, events.TaskStateChange{}); err == nil {
		t.Error("PublishTaskStateChange accepted an invalid envelope")
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := cmds.PublishRequested(cancelled, requested("conv-4")); !errors.Is(err, context.Canceled) {
		t.Errorf("PublishRequested with a cancelled context: %v", err)
	}
}

func testPublishBeforeSubscribe(t *testing.T, h Harness) {
	e := newEnv(t, h, fastRetry)
	msg, _ := bus.NewRequestedMessage(requested("conv-5"), "corr-5")
	if err := e.bus.Publisher().Publish(events.TopicWorkspaceRequested, msg); err != nil {
		t.Fatal(err)
	}
	s := newSeen()
	e.router.AddConsumerHandler("requested", events.TopicWorkspaceRequested, func(msg *message.Message) error {
		s.add(msg)
		return nil
	})
	e.run()
	if got := recv(t, s.msgs, "message published before the router subscribed"); got.UUID != msg.UUID {
		t.Errorf("got %s, want %s", got.UUID, msg.UUID)
	}
}

func testRetryThenSucceed(t *testing.T, h Harness) {
	e := newEnv(t, h, fastRetry)
	var (
		mu       sync.Mutex
		attempts int
	)
	done := make(chan struct{})
	e.router.AddConsumerHandler("flaky", events.TopicWorkspaceReleased, func(msg *message.Message) error {
		mu.Lock()
		defer mu.Unlock()
		attempts++
		if attempts <= 2 {
			return fmt.Errorf("transient failure %d", attempts)
		}
		close(done)
		return nil
	})
	poison := e.poison(events.TopicWorkspaceReleased)
	e.run()
	msg, _ := bus.NewReleasedMessage(events.WorkspaceReleased{ConversationID: "c", Reason: events.ReasonIdleTTL, RequestedAt: time.Now()}, "corr")
	if err := e.bus.Publisher().Publish(events.TopicWorkspaceReleased, msg); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, done, "success on the third attempt")
	e.stop()
	mu.Lock()
	if attempts != 3 {
		t.Errorf("%d attempts, want 3", attempts)
	}
	mu.Unlock()
	select {
	case p := <-poison:
		t.Errorf("message %s was poisoned although a retry succeeded", p.UUID)
	default:
	}
	e.wantCounter("workspaced_bus_handler_retries_total", map[string]string{"topic": events.TopicWorkspaceReleased}, 2)
	e.wantCounter("workspaced_bus_messages_handled_total", map[string]string{"outcome": bus.OutcomeOK}, 1)
	e.wantCounter("workspaced_bus_messages_poisoned_total", nil, 0)
	e.wantEmpty(events.TopicWorkspaceReleased)
}

// failing registers a handler on topic that fails bad messages with fail and
// reports good ones (payload "good").
func failing(e *env, topic string, fail func(*message.Message) error) (attempts func(string) int, good <-chan *message.Message) {
	var mu sync.Mutex
	n := map[string]int{}
	goodCh := make(chan *message.Message, 4)
	e.router.AddConsumerHandler("failing", topic, func(msg *message.Message) error {
		mu.Lock()
		n[msg.UUID]++
		mu.Unlock()
		if string(msg.Payload) == "good" {
			goodCh <- msg.Copy()
			return nil
		}
		return fail(msg)
	})
	return func(uuid string) int {
		mu.Lock()
		defer mu.Unlock()
		return n[uuid]
	}, goodCh
}

// checkPoisoned receives from poison and checks it is a copy of bad.
func checkPoisoned(t *testing.T, e *env, poison <-chan *message.Message, bad *message.Message, topic, reason string) {
	t.Helper()
	p := recv(t, poison, "poisoned message")
	defer p.Ack()
	if p.UUID != bad.UUID || !bytes.Equal(p.Payload, bad.Payload) {
		t.Errorf("poisoned %s %q, want %s %q", p.UUID, p.Payload, bad.UUID, bad.Payload)
	}
	for _, k := range []string{events.MetadataType, events.MetadataCorrelationID} {
		if p.Metadata.Get(k) != bad.Metadata.Get(k) {
			t.Errorf("poisoned metadata %s = %q, want %q", k, p.Metadata.Get(k), bad.Metadata.Get(k))
		}
	}
	if got := p.Metadata.Get(middleware.PoisonedTopicKey); got != topic {
		t.Errorf("%s = %q, want %q", middleware.PoisonedTopicKey, got, topic)
	}
	if got := p.Metadata.Get(middleware.ReasonForPoisonedKey); !strings.Contains(got, reason) {
		t.Errorf("%s = %q, want it to mention %q", middleware.ReasonForPoisonedKey, got, reason)
	}
}

func publishGood(t *testing.T, e *env, topic string, good <-chan *message.Message) {
	t.Helper()
	msg := bus.NewCommandMessage(events.TypeWorkspaceRequested, []byte("good"), "corr-good")
	if err := e.bus.Publisher().Publish(topic, msg); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, good, "the next message"); got.UUID != msg.UUID {
		t.Errorf("got %s, want %s", got.UUID, msg.UUID)
	}
}

func testAlwaysFailing(t *testing.T, h Harness) {
	topic := events.TopicWorkspaceRequested
	e := newEnv(t, h, fastRetry)
	attempts, good := failing(e, topic, func(*message.Message) error { return errors.New("backend is down") })
	poison := e.poison(topic)
	e.run()
	bad := bus.NewCommandMessage(events.TypeWorkspaceRequested, []byte(`{"schema_version":1}`), "corr-bad")
	if err := e.bus.Publisher().Publish(topic, bad); err != nil {
		t.Fatal(err)
	}
	checkPoisoned(t, e, poison, bad, topic, "backend is down")
	publishGood(t, e, topic, good)
	e.stop()
	if n := attempts(bad.UUID); n != fastRetry.MaxRetries+1 {
		t.Errorf("%d attempts, want %d (MaxRetries+1)", n, fastRetry.MaxRetries+1)
	}
	e.wantCounter("workspaced_bus_messages_poisoned_total", map[string]string{"topic": topic, "cause": bus.CauseExhausted}, 1)
	e.wantCounter("workspaced_bus_messages_handled_total", map[string]string{"topic": topic, "outcome": bus.OutcomePoisoned}, 1)
	e.wantCounter("workspaced_bus_handler_retries_total", map[string]string{"topic": topic}, float64(fastRetry.MaxRetries))
	e.wantEmpty(topic)
}

func testMalformed(t *testing.T, h Harness) {
	topic := events.TopicWorkspaceRequested
	e := newEnv(t, h, fastRetry)
	attempts, good := failing(e, topic, bus.Handle(events.DecodeRequested, func(context.Context, events.WorkspaceRequested) error {
		return nil
	}))
	poison := e.poison(topic)
	e.run()
	for _, tc := range []struct{ payload, reason string }{
		{`{"schema_version":1,"conversation_id":`, "malformed"},
		{`{"schema_version":9,"conversation_id":"c","request_id":"r","requested_at":"2026-03-02T09:14:03Z"}`, "unsupported schema version"},
	} {
		bad := bus.NewCommandMessage(events.TypeWorkspaceRequested, []byte(tc.payload), "corr-bad")
		if err := e.bus.Publisher().Publish(topic, bad); err != nil {
			t.Fatal(err)
		}
		checkPoisoned(t, e, poison, bad, topic, tc.reason)
		if n := attempts(bad.UUID); n != 1 {
			t.Errorf("%s: %d attempts, want 1 (no retries)", tc.reason, n)
		}
	}
	publishGood(t, e, topic, good)
	e.stop()
	e.wantCounter("workspaced_bus_messages_poisoned_total", map[string]string{"topic": topic, "cause": bus.CausePermanent}, 2)
	e.wantCounter("workspaced_bus_handler_retries_total", nil, 0)
	e.wantEmpty(topic)
}

func testTerminal(t *testing.T, h Harness) {
	topic := events.TopicWorkspaceReleased
	e := newEnv(t, h, fastRetry)
	attempts, good := failing(e, topic, func(*message.Message) error {
		return fmt.Errorf("stop workspace: %w", workspace.Terminal(errors.New("workspace belongs to another tenant")))
	})
	poison := e.poison(topic)
	e.run()
	bad := bus.NewCommandMessage(events.TypeWorkspaceReleased, []byte(`{}`), "corr-p")
	if err := e.bus.Publisher().Publish(topic, bad); err != nil {
		t.Fatal(err)
	}
	checkPoisoned(t, e, poison, bad, topic, "another tenant")
	publishGood(t, e, topic, good)
	e.stop()
	if n := attempts(bad.UUID); n != 1 {
		t.Errorf("%d attempts, want 1", n)
	}
	e.wantCounter("workspaced_bus_messages_poisoned_total", map[string]string{"cause": bus.CausePermanent}, 1)
}

func testPanic(t *testing.T, h Harness) {
	topic := events.TopicTaskEvents
	e := newEnv(t, h, fastRetry)
	attempts, good := failing(e, topic, func(*message.Message) error { panic("nil map in handler") })
	poison := e.poison(topic)
	e.run()
	bad := bus.NewCommandMessage("x", []byte(`{}`), "corr-panic")
	if err := e.bus.Publisher().Publish(topic, bad); err != nil {
		t.Fatal(err)
	}
	checkPoisoned(t, e, poison, bad, topic, "nil map in handler")
	publishGood(t, e, topic, good)
	e.stop()
	if n := attempts(bad.UUID); n != fastRetry.MaxRetries+1 {
		t.Errorf("%d attempts, want %d", n, fastRetry.MaxRetries+1)
	}
}

func testRawEnvelope(t *testing.T, h Harness) {
	e := newEnv(t, h, fastRetry)
	s := newSeen()
	decoded := make(chan events.TaskStateChange, 1)
	e.router.AddConsumerHandler("task-events", events.TopicTaskEvents, func(msg *message.Message) error {
		ev, err := events.DecodeTaskStateChange(msg.Payload)
		if err != nil {
			return err
		}
		s.add(msg)
		decoded <- ev
		return nil
	})
	e.run()
	h.SendRaw(t, e.bus, events.TopicTaskEvents, ECSRunningEvent)
	got := recv(t, s.msgs, "raw envelope")
	if !bytes.Equal(got.Payload, ECSRunningEvent) {
		t.Errorf("payload changed in transit:\n%s", got.Payload)
	}
	if got.UUID == "" {
		t.Error("raw message has no UUID")
	}
	if typ := got.Metadata.Get(events.MetadataType); typ != "" {
		t.Errorf("raw message has type metadata %q", typ)
	}
	if c := bus.CorrelationID(got); c != got.UUID {
		t.Errorf("correlation_id %q, want the message UUID %q", c, got.UUID)
	}
	for k := range got.Metadata {
		if strings.HasPrefix(k, "_") {
			t.Errorf("internal metadata %q reached the handler", k)
		}
	}
	ev := recv(t, decoded, "decoded envelope")
	if ev.Detail.PrivateIPv4() != "10.0.0.139" || ev.Detail.Version != 4 || ev.Detail.LastStatus != "RUNNING" {
		t.Errorf("decoded %+v", ev.Detail)
	}
	e.stop()
	e.wantEmpty(events.TopicTaskEvents)
}

func testMissingQueue(t *testing.T, h Harness) {
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	opts := h.OptionsWithoutQueues(t)
	prefix := opts.SQS.QueuePrefix
	q := bus.Queues{Prefix: prefix}

	startup := opts
	startup.PublishTopics = []string{events.TopicWorkspaceRequested}
	startup.SubscribeTopics = []string{events.TopicTaskEvents}
	_, err := bus.New(ctx, startup)
	if !errors.Is(err, bus.ErrQueueNotFound) {
		t.Fatalf("New with missing queues: %v, want ErrQueueNotFound", err)
	}
	for _, name := range []string{q.Name(events.TopicWorkspaceRequested), q.Name(events.TopicTaskEvents), q.DeadLetter(events.TopicTaskEvents)} {
		if !strings.Contains(err.Error(), `"`+name+`"`) {
			t.Errorf("startup error does not name missing queue %s: %v", name, err)
		}
	}

	// A bus that was told nothing still refuses, naming the queue.
	b, err := bus.New(ctx, opts)
	if err != nil {
		t.Fatalf("New without topics: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	msg := bus.NewCommandMessage(events.TypeWorkspaceReleased, []byte("{}"), "c")
	err = b.Publisher().Publish(events.TopicWorkspaceReleased, msg)
	if !errors.Is(err, bus.ErrQueueNotFound) || !strings.Contains(err.Error(), q.Name(events.TopicWorkspaceReleased)) {
		t.Errorf("publish to a missing queue: %v", err)
	}
	r, err := bus.NewRouter(b, bus.RouterOptions{Retry: fastRetry})
	if err != nil {
		t.Fatal(err)
	}
	r.AddConsumerHandler("events", events.TopicTaskEvents, func(*message.Message) error { return nil })
	err = r.Run(ctx)
	if !errors.Is(err, bus.ErrQueueNotFound) || !strings.Contains(err.Error(), q.Name(events.TopicTaskEvents)) {
		t.Errorf("router on a missing queue: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Errorf("close a router that never ran: %v", err)
	}
}

func testGracefulClose(t *testing.T, h Harness) {
	topic := events.TopicWorkspaceRequested
	e := newEnv(t, h, fastRetry)
	started := make(chan struct{})
	release := make(chan struct{})
	finished := make(chan error, 1)
	e.router.AddConsumerHandler("slow", topic, func(msg *message.Message) error {
		close(started)
		<-release
		finished <- msg.Context().Err()
		return nil
	})
	e.run()
	msg, _ := bus.NewRequestedMessage(requested("conv-slow"), "corr-slow")
	if err := e.bus.Publisher().Publish(topic, msg); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, started, "handler start")
	closed := make(chan error, 1)
	go func() { closed <- e.router.Close() }()
	waitClosed(t, e.router.Closing(), "close started")
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) while a handler was in flight", err)
	default:
	}
	close(release)
	if err := recv(t, finished, "handler end"); err != nil {
		t.Errorf("handler context was cancelled during a graceful close: %v", err)
	}
	if err := recv(t, closed, "Close"); err != nil {
		t.Errorf("Close: %v", err)
	}
	e.stop()
	e.wantCounter("workspaced_bus_messages_handled_total", map[string]string{"topic": topic, "outcome": bus.OutcomeOK}, 1)
	e.wantEmpty(topic)
}

func testRunCancelled(t *testing.T, h Harness) {
	e := newEnv(t, h, fastRetry)
	e.router.AddConsumerHandler("noop", events.TopicWorkspaceReleased, func(*message.Message) error { return nil })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.router.Run(ctx) }()
	waitClosed(t, e.router.Running(), "router running")
	cancel()
	if err := recv(t, done, "Run to return after cancel"); err != nil {
		t.Errorf("Run: %v", err)
	}
	if err := e.router.Close(); err != nil {
		t.Errorf("Close after Run returned: %v", err)
	}
}

func testBusCloseStopsRouter(t *testing.T, h Harness) {
	e := newEnv(t, h, fastRetry)
	e.router.AddConsumerHandler("noop", events.TopicWorkspaceReleased, func(*message.Message) error { return nil })
	e.run()
	if err := e.bus.Close(); err != nil {
		t.Fatalf("close bus: %v", err)
	}
	if err := recv(t, e.runDone, "Run to return after the bus closed"); err != nil {
		t.Errorf("Run: %v", err)
	}
	e.runDone = nil
	msg := bus.NewCommandMessage(events.TypeWorkspaceReleased, []byte("{}"), "c")
	if err := e.bus.Publisher().Publish(events.TopicWorkspaceReleased, msg); !errors.Is(err, bus.ErrClosed) {
		t.Errorf("publish after Close: %v, want ErrClosed", err)
	}
	if _, err := e.bus.Subscriber().Subscribe(context.Background(), events.TopicWorkspaceReleased); !errors.Is(err, bus.ErrClosed) {
		t.Errorf("subscribe after Close: %v, want ErrClosed", err)
	}
}
