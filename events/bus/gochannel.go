package bus

import (
	"context"
	"log/slog"
	"sync"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
)

// goChannel is Watermill's gochannel, non-persistent and non-blocking, plus
// a per-topic backlog that holds messages published before the topic's
// first subscription (see the package doc, "Local bus persistence").
type goChannel struct {
	gc      *gochannel.GoChannel
	backlog int
	logger  *slog.Logger

	mu         sync.Mutex
	subscribed map[string]bool
	held       map[string][]*message.Message
}

func newGoChannel(backlog int, logger *slog.Logger, wlog watermill.LoggerAdapter) *goChannel {
	return &goChannel{
		gc: gochannel.NewGoChannel(gochannel.Config{
			// Publish returns at once, as it does on SQS: the API must not
			// wait for a worker, and a handler publishing to a busy topic
			// must not deadlock.
			BlockPublishUntilSubscriberAck: false,
			// Persistence is replaced by the backlog below.
			Persistent: false,
		}, wlog),
		backlog:    backlog,
		logger:     logger,
		subscribed: map[string]bool{},
		held:       map[string][]*message.Message{},
	}
}

// Publish hands messages to the topic's subscribers, or holds them until the
// topic's first subscription.
func (g *goChannel) Publish(topic string, msgs ...*message.Message) error {
	g.mu.Lock()
	if !g.subscribed[topic] {
		defer g.mu.Unlock()
		for _, m := range msgs {
			if len(g.held[topic]) >= g.backlog {
				dropped := g.held[topic][0]
				g.held[topic] = g.held[topic][1:]
				g.logger.Error("backlog full, dropping oldest message of a topic nobody subscribed to",
					"topic", topic, "message_uuid", dropped.UUID, "backlog", g.backlog)
			}
			g.held[topic] = append(g.held[topic], m.Copy())
		}
		return nil
	}
	g.mu.Unlock()
	return g.gc.Publish(topic, msgs...)
}

// Subscribe subscribes to topic; the first subscription to a topic receives
// what was held for it.
func (g *goChannel) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	ch, err := g.gc.Subscribe(ctx, topic)
	if err != nil {
		return nil, err
	}
	if !g.subscribed[topic] {
		g.subscribed[topic] = true
		held := g.held[topic]
		delete(g.held, topic)
		if len(held) > 0 {
			// Non-blocking: delivery happens in gochannel's goroutines.
			if err := g.gc.Publish(topic, held...); err != nil {
				return nil, err
			}
		}
	}
	return ch, nil
}

// Close closes the underlying gochannel; held messages are dropped.
func (g *goChannel) Close() error {
	g.mu.Lock()
	g.held = map[string][]*message.Message{}
	g.mu.Unlock()
	return g.gc.Close()
}
