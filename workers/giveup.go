package workers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/workspaced/workspaced/events"
	"github.com/workspaced/workspaced/store"
	"github.com/workspaced/workspaced/workspace"
)

// FailOnGiveUp returns router middleware for the workspace.requested
// handler: when the chain inside it still fails (retries exhausted, or a
// permanent error), the message is about to go to the poison queue, and the
// conversation is marked failed so waiting clients get the error instead of
// timing out. The error passes through unchanged.
//
// Order matters: install it OUTSIDE the Retry middleware (so it sees only
// the final outcome) and INSIDE the poison middleware. Messages that are
// not workspace.requested pass through untouched, as do deliveries whose
// context was cancelled (shutdown: they are redelivered, not poisoned).
func (p *Provisioner) FailOnGiveUp() message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			out, err := h(msg)
			if err != nil && msg.Context().Err() == nil && !errors.Is(err, context.Canceled) {
				p.GaveUp(msg, err)
			}
			return out, err
		}
	}
}

// GaveUp marks the conversation of a workspace.requested msg failed with
// cause, unless it is live (another delivery succeeded). It is the core of
// FailOnGiveUp, for a bus whose poison stage takes a callback instead.
// Other messages and undecodable ones are ignored. It never blocks for more
// than a few seconds.
func (p *Provisioner) GaveUp(msg *message.Message, cause error) {
	if t := msg.Metadata.Get(events.MetadataType); t != "" && t != events.TypeWorkspaceRequested {
		return
	}
	cmd, err := events.DecodeRequested(msg.Payload)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(msg.Context()), 5*time.Second)
	defer cancel()
	log := p.log.With("conversation", cmd.ConversationID, "request_id", cmd.RequestID)
	c, err := p.st.MarkFailed(ctx, cmd.ConversationID, fmt.Sprintf("provisioning gave up: %v", cause))
	switch {
	case errors.Is(err, store.ErrConflict):
		log.Info("gave up on a request for a live conversation", "state", c.State)
	case err != nil:
		log.Error("mark conversation failed after giving up", "err", err, "cause", cause)
	default:
		if !workspace.IsTerminal(cause) { // terminal failures were counted already
			p.m.failure(FailGaveUp)
		}
		log.Warn("gave up provisioning", "cause", cause)
	}
}
