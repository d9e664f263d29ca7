package bus

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"

	"github.com/workspaced/workspaced/events"
	"github.com/workspaced/workspaced/workspace"
)

func TestHandle(t *testing.T) {
	t.Parallel()
	broken := errors.New("redis down")
	tests := []struct {
		name     string
		payload  string
		handler  error
		want     error // errors.Is target; nil: success
		terminal bool
		calls    int
	}{
		{"decoded and handled", `{"schema_version":1,"conversation_id":"c","request_id":"r","requested_at":"2026-03-02T09:14:03Z"}`, nil, nil, false, 1},
		{"malformed", "nope", nil, events.ErrMalformed, true, 0},
		{"unsupported version", `{"schema_version":2}`, nil, events.ErrUnsupportedVersion, true, 0},
		{"handler error is passed through, retryable", `{"schema_version":1,"conversation_id":"c","request_id":"r","requested_at":"2026-03-02T09:14:03Z"}`, broken, broken, false, 1},
		{"handler's terminal error stays terminal", `{"schema_version":1,"conversation_id":"c","request_id":"r","requested_at":"2026-03-02T09:14:03Z"}`, workspace.Terminal(broken), broken, true, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			calls := 0
			var gotCorr string
			h := Handle(events.DecodeRequested, func(ctx context.Context, cmd events.WorkspaceRequested) error {
				calls++
				gotCorr = events.CorrelationIDFromContext(ctx)
				if cmd.ConversationID != "c" {
					t.Errorf("decoded %+v", cmd)
				}
				return tt.handler
			})
			msg := message.NewMessage("m1", []byte(tt.payload))
			msg.SetContext(events.WithCorrelationID(context.Background(), "corr-1"))
			err := h(msg)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if got := workspace.IsTerminal(err); got != tt.terminal {
				t.Errorf("IsTerminal(%v) = %v, want %v", err, got, tt.terminal)
			}
			if calls != tt.calls {
				t.Errorf("handler called %d times, want %d", calls, tt.calls)
			}
			if calls > 0 && gotCorr != "corr-1" {
				t.Errorf("handler's context has correlation ID %q, want the message's", gotCorr)
			}
		})
	}
}

func TestRetryBudget(t *testing.T) {
	t.Parallel()
	sqsOpts := func(vis time.Duration, batch int) SQSOptions {
		return SQSOptions{VisibilityTimeout: vis, MaxMessages: batch}
	}
	tests := []struct {
		name   string
		retry  RetryOptions
		sqs    SQSOptions
		budget time.Duration
		ok     bool
	}{
		{
			name:   "defaults fit the default visibility timeout",
			retry:  RetryOptions{},
			sqs:    sqsOpts(DefaultVisibilityTimeout, 1),
			budget: 4*DefaultAttemptTimeout + 3*(6*time.Second+time.Millisecond),
			ok:     true,
		},
		{
			name:   "config default of 5 retries fits 120s",
			retry:  RetryOptions{MaxRetries: 5},
			sqs:    sqsOpts(120*time.Second, 1),
			budget: 6*DefaultAttemptTimeout + 5*(6*time.Second+time.Millisecond),
			ok:     true,
		},
		{
			name:   "defaults exceed the SQS default of 30s",
			retry:  RetryOptions{},
			sqs:    sqsOpts(30*time.Second, 1),
			budget: 4*DefaultAttemptTimeout + 3*(6*time.Second+time.Millisecond),
			ok:     false,
		},
		{
			name:   "MaxRetries x MaxInterval alone exceeds the timeout",
			retry:  RetryOptions{MaxRetries: 10, MaxInterval: 15 * time.Second, RandomizationFactor: -1, AttemptTimeout: time.Millisecond},
			sqs:    sqsOpts(120*time.Second, 1),
			budget: 11*time.Millisecond + 10*(15*time.Second+time.Millisecond),
			ok:     false,
		},
		{
			name:   "no retries",
			retry:  RetryOptions{MaxRetries: -1, AttemptTimeout: 20 * time.Second},
			sqs:    sqsOpts(30*time.Second, 1),
			budget: 20 * time.Second,
			ok:     true,
		},
		{
			name:   "a batch shares the timeout",
			retry:  RetryOptions{MaxRetries: -1, AttemptTimeout: 20 * time.Second},
			sqs:    sqsOpts(30*time.Second, 2),
			budget: 20 * time.Second,
			ok:     false,
		},
		{
			name:   "equal to the timeout is refused",
			retry:  RetryOptions{MaxRetries: -1, AttemptTimeout: 30 * time.Second},
			sqs:    sqsOpts(30*time.Second, 1),
			budget: 30 * time.Second,
			ok:     false,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.retry.Budget(); got != tt.budget {
				t.Errorf("Budget() = %v, want %v", got, tt.budget)
			}
			err := checkRetryBudget(tt.retry, tt.sqs)
			if (err == nil) != tt.ok {
				t.Errorf("checkRetryBudget = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !strings.Contains(err.Error(), "visibility timeout") {
				t.Errorf("error does not explain itself: %v", err)
			}
		})
	}
}

func TestRetryOptionsValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		o    RetryOptions
		ok   bool
	}{
		{"defaults", RetryOptions{}, true},
		{"max below initial", RetryOptions{InitialInterval: time.Second, MaxInterval: time.Millisecond}, false},
		{"multiplier below 1", RetryOptions{Multiplier: 0.5}, false},
		{"jitter 1", RetryOptions{RandomizationFactor: 1}, false},
		{"negative attempt timeout", RetryOptions{AttemptTimeout: -time.Second}, false},
		{"negative initial", RetryOptions{InitialInterval: -time.Second}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := tt.o.withDefaults().validate(); (err == nil) != tt.ok {
				t.Errorf("validate = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestQueueMissing(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"typed (AWS JSON protocol)", fmt.Errorf("op: %w", &types.QueueDoesNotExist{}), true},
		{"query protocol code (kumo, LocalStack)", &smithy.GenericAPIError{Code: "AWS.SimpleQueueService.NonExistentQueue"}, true},
		{"generic QueueDoesNotExist", &smithy.GenericAPIError{Code: "QueueDoesNotExist"}, true},
		{"access denied", &smithy.GenericAPIError{Code: "AccessDenied"}, false},
		{"network", errors.New("dial tcp: connection refused"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := queueMissing(tt.err); got != tt.want {
				t.Errorf("queueMissing = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestQueues(t *testing.T) {
	t.Parallel()
	q := Queues{Prefix: "staging-"}
	if got := q.Name(events.TopicWorkspaceRequested); got != "staging-workspace-requested" {
		t.Errorf("Name = %q", got)
	}
	if got := q.DeadLetter(events.TopicTaskEvents); got != "staging-workspace-task-events-dlq" {
		t.Errorf("DeadLetter = %q", got)
	}
	if got := q.Name(DeadLetterTopic(events.TopicTaskEvents)); got != q.DeadLetter(events.TopicTaskEvents) {
		t.Errorf("the poison topic's queue %q is not the dead-letter queue", got)
	}
	if got := (Queues{}).Name("x"); got != "x" {
		t.Errorf("no prefix: %q", got)
	}
}

func TestSQSSafe(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in string
		n        int
		want     string
	}{
		{"plain", "backend is down", 100, "backend is down"},
		{"keeps tab and newlines", "a\tb\nc\rd", 100, "a\tb\nc\rd"},
		{"control chars", "a\x00b\x1bc", 100, "a?b?c"},
		{"invalid utf8", "a\xffb", 100, "a?b"},
		{"noncharacter", "a\uffffb", 100, "a?b"},
		{"truncated on a rune boundary", "ééé", 5, "éé"},
		{"truncated", strings.Repeat("x", 10), 4, "xxxx"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := sqsSafe(tt.in, tt.n)
			if got != tt.want {
				t.Errorf("sqsSafe(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
			}
			if !utf8.ValidString(got) || len(got) > tt.n {
				t.Errorf("result %q is invalid or too long", got)
			}
		})
	}
}

func TestPoisonCopy(t *testing.T) {
	t.Parallel()
	msg := NewCommandMessage(events.TypeWorkspaceRequested, []byte(`{"a":1}`), "corr")
	msg.Metadata.Set("empty", "")
	p := poisonCopy(msg, errors.New(strings.Repeat("e", 5000)), events.TopicWorkspaceRequested, "")
	if p.UUID != msg.UUID || !bytes.Equal(p.Payload, msg.Payload) {
		t.Errorf("copy differs: %s %q", p.UUID, p.Payload)
	}
	for k, v := range p.Metadata {
		if v == "" {
			t.Errorf("metadata %q is empty (SQS refuses empty attributes)", k)
		}
	}
	if got := p.Metadata.Get(middleware.ReasonForPoisonedKey); len(got) != maxReasonLen {
		t.Errorf("reason of %d bytes, want it cut to %d", len(got), maxReasonLen)
	}
	if _, ok := p.Metadata[middleware.PoisonedHandlerKey]; ok {
		t.Error("empty handler name was set")
	}
	if p.Metadata.Get(events.MetadataType) != events.TypeWorkspaceRequested || p.Metadata.Get(events.MetadataCorrelationID) != "corr" {
		t.Errorf("original metadata lost: %v", p.Metadata)
	}
	if len(p.Metadata)+1 > 10 {
		t.Errorf("%d metadata + the UUID attribute exceed SQS's 10 message attributes", len(p.Metadata))
	}
}

func TestCommandMessages(t *testing.T) {
	t.Parallel()
	a := NewCommandMessage("t", nil, "")
	b := NewCommandMessage("t", nil, "")
	if CorrelationID(a) == "" || CorrelationID(a) == CorrelationID(b) {
		t.Errorf("empty correlation IDs are not replaced by fresh ones: %q %q", CorrelationID(a), CorrelationID(b))
	}
	if c := CorrelationID(NewCommandMessage("t", nil, "req\x00"+strings.Repeat("x", 300))); len(c) != maxCorrelationLen || strings.ContainsRune(c, 0) {
		t.Errorf("client-supplied correlation ID not made safe: %q", c)
	}
	if a.UUID == "" || a.UUID == b.UUID {
		t.Error("UUIDs are not unique")
	}
	msg, err := NewTaskStateMessage(events.TaskStateChange{DetailType: events.DetailTypeTaskStateChange, Detail: events.TaskDetail{TaskArn: "x", LastStatus: "RUNNING"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(msg.Metadata) != 0 {
		t.Errorf("task state message has metadata %v; EventBridge sends none", msg.Metadata)
	}
	if _, err := events.DecodeTaskStateChange(msg.Payload); err != nil {
		t.Errorf("payload is not the envelope: %v", err)
	}
}

func TestWatermillLoggerDemotesInfo(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	l := NewWatermillLogger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	l.Info("subscribing", watermill.LogFields{"topic": "t"})
	l.Error("broken", errors.New("boom"), nil)
	l.Trace("noise", nil)
	out := buf.String()
	if !strings.Contains(out, "level=DEBUG msg=subscribing") {
		t.Errorf("Info not demoted to Debug:\n%s", out)
	}
	if !strings.Contains(out, "level=ERROR msg=broken") {
		t.Errorf("Error not kept:\n%s", out)
	}
	if strings.Contains(out, "noise") {
		t.Errorf("Trace logged at Debug level:\n%s", out)
	}
}

func TestGoChannelHoldsUntilFirstSubscription(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	g := newGoChannel(2, slog.New(slog.NewTextHandler(&logs, nil)), watermill.NopLogger{})
	defer g.Close()
	for i := range 3 {
		if err := g.Publish("t", message.NewMessage(fmt.Sprint(i), nil)); err != nil {
			t.Fatal(err)
		}
	}
	if !strings.Contains(logs.String(), "backlog full") {
		t.Errorf("no error log for the dropped message: %s", logs.String())
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := g.Subscribe(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for range 2 {
		select {
		case m := <-ch:
			got[m.UUID] = true
			m.Ack()
		case <-time.After(10 * time.Second):
			t.Fatal("held message not delivered")
		}
	}
	if !got["1"] || !got["2"] {
		t.Errorf("delivered %v, want the two newest (1, 2)", got)
	}
	// Once subscribed, messages flow directly.
	if err := g.Publish("t", message.NewMessage("3", nil)); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-ch:
		if m.UUID != "3" {
			t.Errorf("got %s, want 3", m.UUID)
		}
		m.Ack()
	case <-time.After(10 * time.Second):
		t.Fatal("live message not delivered")
	}
}

func TestTrackerIdle(t *testing.T) {
	t.Parallel()
	tr := newTracker(true)
	defer tr.close()
	select {
	case <-tr.idle():
	default:
		t.Fatal("a fresh tracker is not idle")
	}
	acked := message.NewMessage("a", nil)
	nacked := message.NewMessage("n", nil)
	tr.delivered(acked)
	tr.delivered(nacked)
	idle := tr.idle()
	nacked.Nack()
	// The delete may be reported before the ack is seen: still not idle
	// until both happened.
	tr.deleted()
	select {
	case <-idle:
		t.Fatal("idle with a message in flight")
	default:
	}
	acked.Ack()
	select {
	case <-idle:
	case <-time.After(10 * time.Second):
		t.Fatal("not idle after ack and delete")
	}
}

func TestOptionsValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		o    Options
		want string
	}{
		{"no kind", Options{}, "bus kind"},
		{"unknown kind", Options{Kind: "kafka"}, "bus kind"},
		{"sqs without credentials", Options{Kind: KindSQS, SQS: SQSOptions{Region: "eu-west-1"}}, "Credentials"},
		{"sqs batch too big", Options{Kind: KindSQS, SQS: SQSOptions{Region: "eu-west-1", MaxMessages: 11}}, "max messages"},
		{"sqs wait too long", Options{Kind: KindSQS, SQS: SQSOptions{Region: "eu-west-1", WaitTime: 21 * time.Second}}, "wait time"},
		{"sqs wait not whole seconds", Options{Kind: KindSQS, SQS: SQSOptions{Region: "eu-west-1", WaitTime: 1500 * time.Millisecond}}, "wait time"},
		{"sqs no region", Options{Kind: KindSQS}, "region"},
		{"empty topic", Options{Kind: KindGoChannel, SubscribeTopics: []string{""}}, "empty topic"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := New(context.Background(), tt.o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New = %v, want an error mentioning %q", err, tt.want)
			}
		})
	}
}
