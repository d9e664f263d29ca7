package bus

import (
	"context"
	"fmt"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/workspaced/workspaced/events"
)

type correlationKey struct{}

// maxCorrelationLen bounds correlation IDs carried in metadata.
const maxCorrelationLen = 128

// WithCorrelationID returns ctx carrying id; the publish helpers stamp it on
// messages published with an empty correlation ID. The Router puts each
// handled message's ID in its context.
func WithCorrelationID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, correlationKey{}, id)
}

// CorrelationIDFromContext returns the ID WithCorrelationID stored, or "".
func CorrelationIDFromContext(ctx context.Context) string {
	id, _ := ctx.Value(correlationKey{}).(string)
	return id
}

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

// PublishRequested validates cmd and publishes it to
// events.TopicWorkspaceRequested. An empty correlationID is taken from ctx
// (CorrelationIDFromContext) or generated. ctx is checked before
// publishing; the SQS publisher cannot be cancelled once sending
// (SQSOptions.PublishTimeout bounds it).
func PublishRequested(ctx context.Context, pub message.Publisher, cmd events.WorkspaceRequested, correlationID string) error {
	if err := cmd.Validate(); err != nil {
		return fmt.Errorf("publish %s: %w", events.TypeWorkspaceRequested, err)
	}
	msg, err := NewRequestedMessage(cmd, correlationFor(ctx, correlationID))
	if err != nil {
		return err
	}
	return publish(ctx, pub, events.TopicWorkspaceRequested, msg)
}

// PublishReleased validates cmd and publishes it to
// events.TopicWorkspaceReleased, like PublishRequested.
func PublishReleased(ctx context.Context, pub message.Publisher, cmd events.WorkspaceReleased, correlationID string) error {
	if err := cmd.Validate(); err != nil {
		return fmt.Errorf("publish %s: %w", events.TypeWorkspaceReleased, err)
	}
	msg, err := NewReleasedMessage(cmd, correlationFor(ctx, correlationID))
	if err != nil {
		return err
	}
	return publish(ctx, pub, events.TopicWorkspaceReleased, msg)
}

// PublishTaskStateChange validates e and publishes the bare envelope to
// events.TopicTaskEvents (the Docker runtime's watcher; on ECS, EventBridge
// does this).
func PublishTaskStateChange(ctx context.Context, pub message.Publisher, e events.TaskStateChange) error {
	if err := e.Validate(); err != nil {
		return fmt.Errorf("publish task state change: %w", err)
	}
	msg, err := NewTaskStateMessage(e)
	if err != nil {
		return err
	}
	return publish(ctx, pub, events.TopicTaskEvents, msg)
}

func correlationFor(ctx context.Context, id string) string {
	if id != "" {
		return id
	}
	return CorrelationIDFromContext(ctx)
}

func publish(ctx context.Context, pub message.Publisher, topic string, msg *message.Message) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("publish to %s: %w", topic, err)
	}
	msg.SetContext(ctx)
	if err := pub.Publish(topic, msg); err != nil {
		return fmt.Errorf("publish %s: %w", msg.UUID, err)
	}
	return nil
}
