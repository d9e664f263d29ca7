package bus_test

import (
	"context"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

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
	r.AddConsumerHandler("provision", events.TopicWorkspaceRequested, func(msg *message.Message) error {
		cmd, err := events.DecodeRequested(msg.Payload)
		if err != nil {
			return err // malformed: straight to the poison topic, no retries
		}
		fmt.Println("provision", cmd.ConversationID, "correlation", bus.CorrelationID(msg))
		close(done)
		return nil
	})

	// Publishing before the router subscribes is fine: the local bus holds
	// the message until the first subscription.
	err = bus.PublishRequested(ctx, b.Publisher(), events.WorkspaceRequested{
		ConversationID: "conv-42", RequestID: "req-1", RequestedAt: time.Now(),
	}, "req-1")
	if err != nil {
		panic(err)
	}

	go func() { _ = r.Run(ctx) }()
	<-done
	_ = r.Close()
	// Output: provision conv-42 correlation req-1
}
