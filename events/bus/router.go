package bus

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
)

// RouterOptions configures NewRouter.
type RouterOptions struct {
	Retry RetryOptions
	// CloseTimeout bounds Close: how long it waits for handlers. Default:
	// the bus's DrainTimeout plus 5s, so draining finishes first.
	CloseTimeout time.Duration
	// Metrics, if not nil, records outcomes, poisonings and retries.
	Metrics *Metrics
	// Logger defaults to the bus's logger.
	Logger *slog.Logger
	// OnGiveUp, if set, is called with a message and its last error when
	// the router gives up on it (retries exhausted or a terminal error),
	// just before the message goes to the poison destination; not when a
	// delivery is abandoned at shutdown. It runs on the handler's
	// goroutine and must return promptly.
	OnGiveUp func(msg *message.Message, err error)
}

// Router is a Watermill router on a Bus with workspaced's middleware (see
// the package doc for the order and why). Add handlers, then Run.
type Router struct {
	bus   *Bus
	r     *message.Router
	sub   *drainingSubscriber
	chain *chain

	mu      sync.Mutex
	topics  []string
	started bool // the Watermill router was started
	closed  bool
	closing chan struct{}
}

// NewRouter builds a router consuming from b. On SQS it refuses retry
// settings whose worst case (RetryOptions.Budget × MaxMessages) is not
// below the queues' visibility timeout.
func NewRouter(b *Bus, opts RouterOptions) (*Router, error) {
	retry := opts.Retry.withDefaults()
	if err := retry.validate(); err != nil {
		return nil, fmt.Errorf("router options: %w", err)
	}
	if b.Kind() == KindSQS {
		if err := checkRetryBudget(retry, b.opts.SQS); err != nil {
			return nil, fmt.Errorf("router options: %w", err)
		}
	}
	if opts.CloseTimeout == 0 {
		opts.CloseTimeout = b.opts.DrainTimeout + 5*time.Second
	}
	logger := b.logger
	if opts.Logger != nil {
		logger = opts.Logger.With("component", "bus", "bus", string(b.Kind()))
	}
	r, err := message.NewRouter(message.RouterConfig{CloseTimeout: opts.CloseTimeout}, NewWatermillLogger(logger))
	if err != nil {
		return nil, fmt.Errorf("new router: %w", err)
	}
	c := &chain{bus: b, pub: b.Publisher(), retry: retry, metrics: opts.Metrics, logger: logger, onGiveUp: opts.OnGiveUp}
	// First added is outermost.
	r.AddMiddleware(c.poison, c.correlation, c.budget, c.retrying, middleware.Recoverer)
	return &Router{bus: b, r: r, sub: b.newSubscriber(), chain: c, closing: make(chan struct{})}, nil
}

// AddConsumerHandler handles messages of topic with h. name must be unique
// in the router; bus.Handle adapts a typed consumer. h may publish with
// Commands: passing its message's context keeps the correlation ID.
func (r *Router) AddConsumerHandler(name, topic string, h message.NoPublishHandlerFunc) {
	r.addTopic(topic)
	r.r.AddConsumerHandler(name, topic, r.sub, h)
}

// AddHandler handles messages of topic with h and publishes what h returns
// to publishTopic (with the handled message's correlation ID), acking only
// after that publish succeeds.
func (r *Router) AddHandler(name, topic, publishTopic string, h message.HandlerFunc) {
	r.addTopic(topic)
	r.r.AddHandler(name, topic, r.sub, publishTopic, r.bus.Publisher(), h)
}

func (r *Router) addTopic(topic string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.topics = append(r.topics, topic)
}

// Run subscribes every handler and blocks until ctx is cancelled or Close
// is called, then drains (see the package doc, "Shutdown") and returns. It
// fails at once if a subscription cannot be made (on SQS: a missing queue,
// ErrQueueNotFound).
func (r *Router) Run(ctx context.Context) error {
	r.mu.Lock()
	if r.closed || r.started {
		r.mu.Unlock()
		return fmt.Errorf("run router: %w", ErrClosed)
	}
	topics := append([]string(nil), r.topics...)
	r.mu.Unlock()
	// Check queues first: a Watermill router whose Subscribe failed can
	// neither run nor close cleanly.
	if err := r.bus.checkConsumed(ctx, topics); err != nil {
		return fmt.Errorf("run router: %w", err)
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return fmt.Errorf("run router: %w", ErrClosed)
	}
	r.started = true
	r.mu.Unlock()
	if err := r.r.Run(ctx); err != nil {
		return fmt.Errorf("run router: %w", err)
	}
	return nil
}

// Running is closed once every handler is subscribed (and stays closed
// after the router stops).
func (r *Router) Running() <-chan struct{} { return r.r.Running() }

// Closing is closed as soon as Close is called; from then on no new message
// reaches a handler (a readiness probe can report unhealthy).
func (r *Router) Closing() <-chan struct{} { return r.closing }

// Close stops the router: no new messages are delivered, in-flight handlers
// get up to the drain timeout, and Close returns an error if they outlive
// CloseTimeout. Safe to call more than once.
func (r *Router) Close() error {
	r.mu.Lock()
	if !r.closed {
		r.closed = true
		// Stop delivery before anything else: from Closing on, no new
		// message reaches a handler.
		r.sub.stop()
		close(r.closing)
	}
	started := r.started
	r.mu.Unlock()
	var err error
	if started {
		err = r.r.Close()
	}
	if cerr := r.sub.Close(); err == nil {
		err = cerr
	}
	return err
}
