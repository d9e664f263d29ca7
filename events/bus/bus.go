package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/workspaced/workspaced/events"
)

// Bus is a configured gochannel or SQS bus: one publisher shared by the
// process and subscribers for Routers. Safe for concurrent use.
type Bus struct {
	kind   Kind
	opts   Options
	logger *slog.Logger
	wlog   watermill.LoggerAdapter
	track  *tracker

	pub       message.Publisher  // the underlying publisher
	sub       message.Subscriber // the underlying subscriber
	prepare   func(string, *message.Message) func()
	release   func(string, *message.Message)
	closeFns  []func() error // in order
	sqs       *sqsBus        // nil on gochannel
	closeOnce sync.Once
	closeErr  error

	mu      sync.Mutex
	closing bool // no new subscribers
	closed  bool // no publishing
	drained []*drainingSubscriber
}

// New builds the bus opts.Kind names. On SQS it first checks that every
// queue in opts.PublishTopics and opts.SubscribeTopics (and each consumed
// topic's dead-letter queue) exists, and fails with an error wrapping
// ErrQueueNotFound that names each missing queue; ctx bounds those checks.
func New(ctx context.Context, opts Options) (*Bus, error) {
	opts.setDefaults()
	if err := opts.validate(); err != nil {
		return nil, fmt.Errorf("bus options: %w", err)
	}
	logger := opts.Logger.With("component", "bus", "bus", string(opts.Kind))
	b := &Bus{
		kind:    opts.Kind,
		opts:    opts,
		logger:  logger,
		wlog:    NewWatermillLogger(logger),
		track:   newTracker(opts.Kind == KindSQS),
		prepare: func(string, *message.Message) func() { return func() {} },
		release: func(string, *message.Message) {},
	}
	switch opts.Kind {
	case KindGoChannel:
		gc := newGoChannel(opts.GoChannel.Backlog, logger, b.wlog)
		b.pub, b.sub = gc, gc
		b.closeFns = []func() error{gc.Close}
	case KindSQS:
		s, err := newSQSBus(ctx, opts, b.wlog, b.track)
		if err != nil {
			return nil, fmt.Errorf("sqs bus: %w", err)
		}
		b.sqs = s
		b.pub, b.sub = s.pub, s.sub
		b.prepare, b.release = s.prepare, s.release(logger)
		b.closeFns = []func() error{s.sub.Close, s.pub.Close, func() error { s.idle(); return nil }}
	}
	return b, nil
}

// Kind reports which bus this is.
func (b *Bus) Kind() Kind { return b.kind }

// Options returns the options New used, defaults applied.
func (b *Bus) Options() Options { return b.opts }

// Publisher returns the bus's publisher. Publish is safe for concurrent use;
// on SQS it fails with ErrQueueNotFound for a topic without a queue.
// Closing it does nothing: Bus.Close does.
func (b *Bus) Publisher() message.Publisher { return publisher{b} }

// Commands returns the typed publisher on the bus's publisher: what the
// API, the GC and the Docker watcher publish with.
func (b *Bus) Commands() *Commands { return NewCommands(b.Publisher()) }

// Subscriber returns a new subscriber for one consumer (a Router). Closing
// it, or cancelling a subscription's context, drains that consumer's
// subscriptions (see the package doc, "Shutdown"); the bus stays open.
func (b *Bus) Subscriber() message.Subscriber { return b.newSubscriber() }

func (b *Bus) newSubscriber() *drainingSubscriber {
	d := &drainingSubscriber{
		under:   b.sub,
		track:   b.track,
		timeout: b.opts.DrainTimeout,
		logger:  b.logger,
		prepare: b.prepare,
		release: b.release,
		closing: make(chan struct{}),
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closing {
		d.closed = true
		close(d.closing)
	}
	b.drained = append(b.drained, d)
	return d
}

// PoisonTopic returns where messages of topic go when they cannot be
// handled: events.TopicPoison on gochannel, the topic's dead-letter queue
// (DeadLetterTopic) on SQS.
func (b *Bus) PoisonTopic(topic string) string {
	if b.kind == KindSQS {
		return DeadLetterTopic(topic)
	}
	return events.TopicPoison
}

// Queues returns the topic → queue naming of an SQS bus (zero on gochannel).
func (b *Bus) Queues() Queues {
	if b.sqs == nil {
		return Queues{}
	}
	return b.sqs.resolver.queues
}

// Close drains every subscriber (in-flight handlers get DrainTimeout and
// may still publish, to the poison destination for instance), then closes
// the underlying subscriber and publisher. Idempotent.
func (b *Bus) Close() error {
	b.closeOnce.Do(func() {
		b.mu.Lock()
		b.closing = true
		drained := b.drained
		b.mu.Unlock()
		var errs []error
		for _, d := range drained {
			errs = append(errs, d.Close())
		}
		b.mu.Lock()
		b.closed = true
		b.mu.Unlock()
		b.track.close()
		for _, f := range b.closeFns {
			errs = append(errs, f())
		}
		b.closeErr = errors.Join(errs...)
	})
	return b.closeErr
}

// checkConsumed checks, on SQS, that the queues of topics and their
// dead-letter queues exist and hide messages long enough.
func (b *Bus) checkConsumed(ctx context.Context, topics []string) error {
	if b.sqs == nil {
		return nil
	}
	return checkQueues(ctx, b.sqs.control, b.sqs.resolver, nil, topics, b.opts.SQS.VisibilityTimeout)
}

func (b *Bus) isClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}

// publisher is the Bus's publisher with a no-op Close: Watermill's router
// closes a handler's publisher when the handler stops, which must not close
// the shared bus.
type publisher struct{ b *Bus }

func (p publisher) Publish(topic string, msgs ...*message.Message) error {
	if p.b.isClosed() {
		return ErrClosed
	}
	if err := p.b.pub.Publish(topic, msgs...); err != nil {
		return fmt.Errorf("publish to %s: %w", topic, err)
	}
	return nil
}

func (publisher) Close() error { return nil }
