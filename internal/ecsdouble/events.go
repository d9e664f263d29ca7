package ecsdouble

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// Envelope constants of ECS task state events.
const (
	EventSource     = "aws.ecs"
	EventDetailType = "ECS Task State Change"
)

// Event is one "ECS Task State Change" event as ECS would publish it.
type Event struct {
	ID        string
	Time      time.Time
	Region    string
	Account   string
	Resources []string
	// Detail is the event's detail document (a task with ISO timestamps,
	// "eni" attachments and updatedAt).
	Detail json.RawMessage

	// Convenience copies of detail fields, for tests and hooks.
	TaskArn       string
	Version       int64
	LastStatus    string
	DesiredStatus string
}

// Envelope returns the event exactly as EventBridge hands it to an SQS
// target: the raw envelope, no attributes.
func (e Event) Envelope() []byte {
	b, err := json.Marshal(struct {
		Version    string          `json:"version"`
		ID         string          `json:"id"`
		DetailType string          `json:"detail-type"`
		Source     string          `json:"source"`
		Account    string          `json:"account"`
		Time       string          `json:"time"`
		Region     string          `json:"region"`
		Resources  []string        `json:"resources"`
		Detail     json.RawMessage `json:"detail"`
	}{"0", e.ID, EventDetailType, EventSource, e.Account, e.Time.UTC().Format(time.RFC3339), e.Region, e.Resources, e.Detail})
	if err != nil {
		panic(err) // only strings and valid raw JSON
	}
	return b
}

// EventSink receives the double's events, in emission order unless a test
// reorders them. Deliver is called from one goroutine at a time.
type EventSink interface {
	Deliver(ctx context.Context, ev Event) error
}

// SinkFunc adapts a function to EventSink.
type SinkFunc func(ctx context.Context, ev Event) error

// Deliver calls f.
func (f SinkFunc) Deliver(ctx context.Context, ev Event) error { return f(ctx, ev) }

// EventBridgeSink publishes events with PutEvents, as ECS does; a rule on
// the bus routes them (to SQS, in workspaced). Real EventBridge refuses the
// aws.ecs source from callers; kumo accepts it.
type EventBridgeSink struct {
	Client   *eventbridge.Client
	EventBus string // "" is the default bus
}

// Deliver puts ev on the bus.
func (s EventBridgeSink) Deliver(ctx context.Context, ev Event) error {
	entry := ebtypes.PutEventsRequestEntry{
		Source:     aws.String(EventSource),
		DetailType: aws.String(EventDetailType),
		Detail:     aws.String(string(ev.Detail)),
		Resources:  ev.Resources,
		Time:       aws.Time(ev.Time),
	}
	if s.EventBus != "" {
		entry.EventBusName = aws.String(s.EventBus)
	}
	out, err := s.Client.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: []ebtypes.PutEventsRequestEntry{entry}})
	if err != nil {
		return fmt.Errorf("put events: %w", err)
	}
	if out.FailedEntryCount > 0 {
		e := out.Entries[0]
		return fmt.Errorf("put events: entry failed: %s: %s", aws.ToString(e.ErrorCode), aws.ToString(e.ErrorMessage))
	}
	return nil
}

// SQSSink sends the raw envelope to a queue, the way an EventBridge SQS
// target delivers it. Use it where no EventBridge is available.
type SQSSink struct {
	Client   *sqs.Client
	QueueURL string
}

// Deliver sends ev's envelope.
func (s SQSSink) Deliver(ctx context.Context, ev Event) error {
	_, err := s.Client.SendMessage(ctx, &sqs.SendMessageInput{
		QueueUrl:    aws.String(s.QueueURL),
		MessageBody: aws.String(string(ev.Envelope())),
	})
	if err != nil {
		return fmt.Errorf("send message: %w", err)
	}
	return nil
}

// eventQueue orders deliveries: one goroutine drains it into the sink. A
// test may pause it, then release the held events in any order.
type eventQueue struct {
	pending []Event
	held    []Event
	paused  bool
	hook    func(Event) []Event
}

// eventDetail turns a task as DescribeTasks shows it (rendered with ISO
// stamps and "eni" attachments) into the detail of its state change event.
// ECS leaves health out of task events ("The health status of the task
// isn't provided in the task state change event"; ask DescribeTasks), so
// the task's and the containers' healthStatus are dropped; tags never
// appear in events.
func eventDetail(w taskJSON) taskJSON {
	w.HealthStatus = ""
	w.Tags = nil
	cs := make([]containerJSON, len(w.Containers))
	for i, c := range w.Containers {
		c.HealthStatus = ""
		cs[i] = c
	}
	w.Containers = cs
	return w
}
