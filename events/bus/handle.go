package bus

import (
	"context"
	"fmt"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/workspaced/workspaced/workspace"
)

// Handle adapts a typed consumer to a Router handler, the way Watermill's
// cqrs.NewEventHandler[T] does: decode turns the payload into a T (the
// events.Decode* functions), then h gets the message's context (its
// deadline and correlation ID, events.CorrelationIDFromContext) and the
// value. It is the one place messages are decoded.
//
// A payload decode rejects (events.ErrMalformed,
// events.ErrUnsupportedVersion) never decodes on a retry either: the error
// is marked workspace.Terminal, so the Router poisons the message at once.
// Unlike cqrs, which returns unmarshal errors as they are (and Watermill's
// Retry retries them).
//
//	r.AddConsumerHandler("workspace-requested", events.TopicWorkspaceRequested,
//		bus.Handle(events.DecodeRequested, prov.Provision))
func Handle[T any](decode func([]byte) (T, error), h func(context.Context, T) error) message.NoPublishHandlerFunc {
	return func(msg *message.Message) error {
		v, err := decode(msg.Payload)
		if err != nil {
			return workspace.Terminal(fmt.Errorf("message %s: %w", msg.UUID, err))
		}
		return h(msg.Context(), v)
	}
}
