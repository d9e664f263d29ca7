package bus_test

import (
	"context"
	"fmt"
	"time"

	"github.com/workspaced/workspaced/events"
	"github.com/workspaced/workspaced/events/bus"
)

// A worker consuming workspace.requested on the local bus. On AWS only the
// Options change: Kind KindSQS and the SQS fields.
func ExampleNewRouter() {
	ctx := context.Background()
	b, err := bus.New(ctx, bus.Options{
		Kind:            bus.KindGoChannel,
		SubscribeTopics: []string{events.TopicWorkspaceRequested},
	})
	if err != nil {
		panic(err)
	}
	defer b.Close()

	r, err := bus.NewRouter(b, bus.RouterOptions{})
	if err != nil {
		panic(err)
	}
	done := make(chan struct{})
	// Handle decodes (a malformed payload goes straight to the poison
	// topic, no retries) and passes the message's context on.
	provision := func(ctx context.Context, cmd events.WorkspaceRequested) error {
		fmt.Println("provision", cmd.ConversationID, "correlation", events.CorrelationIDFromContext(ctx))
		close(done)
		return nil
	}
	r.AddConsumerHandler("provision", events.TopicWorkspaceRequested, bus.Handle(events.DecodeRequested, provision))

	// Publishing before the router subscribes is fine: the local bus holds
	// the message until the first subscription. The correlation ID comes
	// from the context (the API puts the HTTP request ID there).
	err = b.Commands().PublishRequested(events.WithCorrelationID(ctx, "req-1"), events.WorkspaceRequested{
		ConversationID: "conv-42", RequestID: "req-1", RequestedAt: time.Now(),
	})
	if err != nil {
		panic(err)
	}

	go func() { _ = r.Run(ctx) }()
	<-done
	_ = r.Close()
	// Output: provision conv-42 correlation req-1
}
