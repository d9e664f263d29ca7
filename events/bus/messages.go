package bus

import (
	"context"
	"fmt"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/workspaced/workspaced/events"
)

// maxCorrelationLen bounds correlation IDs carried in metadata.
const maxCorrelationLen = 128

// CorrelationID returns msg's correlation_id metadata, or "".
func CorrelationID(msg *message.Message) string {
	return msg.Metadata.Get(events.MetadataCorrelationID)
}

// NewCommandMessage returns a message with payload and the metadata every
// command carries: type and correlation_id. correlationID is cut to 128
// bytes with characters SQS refuses replaced; an empty one gets a new ID
// (SQS rejects empty attributes).
func NewCommandMessage(typ string, payload []byte, correlationID string) *message.Message {
	// Correlation IDs often come from clients (a request ID header): keep
	// them to what an SQS attribute accepts.
	correlationID = sqsSafe(correlationID, maxCorrelationLen)
	if correlationID == "" {
		correlationID = watermill.NewUUID()
	}
	msg := message.NewMessage(watermill.NewUUID(), payload)
	msg.Metadata.Set(events.MetadataType, typ)
	msg.Metadata.Set(events.MetadataCorrelationID, correlationID)
	return msg
}

// NewRequestedMessage encodes cmd (stamping events.SchemaVersion) as a
// workspace.requested message.
func NewRequestedMessage(cmd events.WorkspaceRequested, correlationID string) (*message.Message, error) {
	b, err := events.EncodeRequested(cmd)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", events.TypeWorkspaceRequested, err)
	}
	return NewCommandMessage(events.TypeWorkspaceRequested, b, correlationID), nil
}

// NewReleasedMessage encodes cmd (stamping events.SchemaVersion) as a
// workspace.released message.
func NewReleasedMessage(cmd events.WorkspaceReleased, correlationID string) (*message.Message, error) {
	b, err := events.EncodeReleased(cmd)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", events.TypeWorkspaceReleased, err)
	}
	return NewCommandMessage(events.TypeWorkspaceReleased, b, correlationID), nil
}

// NewTaskStateMessage returns e as the bare envelope payload, no metadata:
// exactly what EventBridge puts on the task-events queue, so consumers
// handle Docker and ECS events alike.
func NewTaskStateMessage(e events.TaskStateChange) (*message.Message, error) {
	b, err := events.EncodeTaskStateChange(e)
	if err != nil {
		return nil, fmt.Errorf("encode task state change: %w", err)
	}
	return message.NewMessage(watermill.NewUUID(), b), nil
}

// Commands is the one way workspaced publishes: typed, validated, and
// stamped with the correlation ID of the context (events.WithCorrelationID:
// the API's request ID, or the handled message's), else a new one. It
// satisfies every publishing consumer's interface, so cmd passes the same
// value to each: the API's (handlers.Commands), the GC's
// (workers.ReleasePublisher) and the Docker watcher's (docker.Sink).
//
// ctx is checked before publishing; the SQS publisher cannot be cancelled
// once sending (SQSOptions.PublishTimeout bounds it). Safe for concurrent
// use.
type Commands struct{ pub message.Publisher }

// NewCommands returns Commands publishing with pub (usually
// Bus.Publisher; Bus.Commands is the shorthand).
func NewCommands(pub message.Publisher) *Commands { return &Commands{pub: pub} }

// PublishRequested validates cmd and publishes it to
// events.TopicWorkspaceRequested.
func (c *Commands) PublishRequested(ctx context.Context, cmd events.WorkspaceRequested) error {
	if err := cmd.Validate(); err != nil {
		return fmt.Errorf("publish %s: %w", events.TypeWorkspaceRequested, err)
	}
	msg, err := NewRequestedMessage(cmd, events.CorrelationIDFromContext(ctx))
	if err != nil {
		return err
	}
	return c.publish(ctx, events.TopicWorkspaceRequested, msg)
}

// PublishReleased validates cmd and publishes it to
// events.TopicWorkspaceReleased.
func (c *Commands) PublishReleased(ctx context.Context, cmd events.WorkspaceReleased) error {
	if err := cmd.Validate(); err != nil {
		return fmt.Errorf("publish %s: %w", events.TypeWorkspaceReleased, err)
	}
	msg, err := NewReleasedMessage(cmd, events.CorrelationIDFromContext(ctx))
	if err != nil {
		return err
	}
	return c.publish(ctx, events.TopicWorkspaceReleased, msg)
}

// PublishTaskStateChange validates e and publishes the bare envelope, with
// no metadata, to events.TopicTaskEvents: the Docker watcher's events look
// exactly like EventBridge's on ECS (the Router gives them their UUID as
// correlation ID).
func (c *Commands) PublishTaskStateChange(ctx context.Context, e events.TaskStateChange) error {
	if err := e.Validate(); err != nil {
		return fmt.Errorf("publish task state change: %w", err)
	}
	msg, err := NewTaskStateMessage(e)
	if err != nil {
		return err
	}
	return c.publish(ctx, events.TopicTaskEvents, msg)
}

func (c *Commands) publish(ctx context.Context, topic string, msg *message.Message) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("publish to %s: %w", topic, err)
	}
	msg.SetContext(ctx)
	if err := c.pub.Publish(topic, msg); err != nil {
		return fmt.Errorf("publish %s to %s: %w", msg.UUID, topic, err)
	}
	return nil
}
