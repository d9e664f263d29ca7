package bus

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
)

// ErrClosed is returned by Subscribe and Publish after Close.
var ErrClosed = errors.New("bus closed")

// tracker counts, for one bus, the messages handed to handlers and not yet
// acked or nacked, and (SQS) the acks whose DeleteMessage has not finished.
// A subscription may be ended only when both are zero; ending it earlier
// cancels the context watermill-aws deletes with, and the handled message
// would be delivered again.
type tracker struct {
	trackDeletes bool
	stop         chan struct{} // closed by Bus.Close: watchers give up

	mu       sync.Mutex
	inflight int
	pending  int // acked, DeleteMessage not finished; briefly negative
	waiters  []chan struct{}
	watchers sync.WaitGroup
}

func newTracker(trackDeletes bool) *tracker {
	return &tracker{trackDeletes: trackDeletes, stop: make(chan struct{})}
}

// delivered registers msg as handed to a handler and watches its outcome.
func (t *tracker) delivered(msg *message.Message) {
	t.mu.Lock()
	t.inflight++
	t.mu.Unlock()
	t.watchers.Add(1)
	go func() {
		defer t.watchers.Done()
		acked := false
		select {
		case <-msg.Acked():
			acked = true
		case <-msg.Nacked():
		case <-t.stop:
		}
		t.mu.Lock()
		defer t.mu.Unlock()
		if acked && t.trackDeletes {
			t.pending++
		}
		t.inflight--
		t.notifyLocked()
	}()
}

// deleted records a finished DeleteMessage call (successful or not).
func (t *tracker) deleted() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.pending--
	t.notifyLocked()
}

// idle returns a channel closed once nothing is in flight.
func (t *tracker) idle() <-chan struct{} {
	ch := make(chan struct{})
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.isIdleLocked() {
		close(ch)
		return ch
	}
	t.waiters = append(t.waiters, ch)
	return ch
}

func (t *tracker) isIdleLocked() bool { return t.inflight == 0 && t.pending <= 0 }

func (t *tracker) notifyLocked() {
	if !t.isIdleLocked() {
		return
	}
	for _, ch := range t.waiters {
		close(ch)
	}
	t.waiters = nil
}

// close makes every watcher give up and waits for them.
func (t *tracker) close() {
	close(t.stop)
	t.watchers.Wait()
}

// drainingSubscriber wraps a bus's subscriber so that ending a subscription
// (its context cancelled, or Close) first stops delivering, then waits for
// in-flight messages to settle, then ends the underlying subscription. The
// underlying subscription runs on a context detached from the caller's for
// that reason: the Watermill router cancels its context as soon as Close
// starts.
type drainingSubscriber struct {
	under   message.Subscriber
	track   *tracker
	timeout time.Duration
	logger  *slog.Logger
	// prepare is called on each message before delivery and returns a
	// function undoing it; release is called on each message received but
	// never delivered (draining).
	prepare func(topic string, msg *message.Message) (undo func())
	release func(topic string, msg *message.Message)

	mu      sync.Mutex
	closed  bool
	closing chan struct{}
	subs    sync.WaitGroup
}

func (d *drainingSubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil, ErrClosed
	}
	d.subs.Add(1)
	d.mu.Unlock()

	subCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	in, err := d.under.Subscribe(subCtx, topic)
	if err != nil {
		cancel()
		d.subs.Done()
		return nil, err
	}
	out := make(chan *message.Message)
	go d.forward(ctx, topic, in, out, cancel)
	return out, nil
}

// forward delivers messages from in to out until ctx is cancelled or the
// subscriber closes, then drains.
func (d *drainingSubscriber) forward(ctx context.Context, topic string, in <-chan *message.Message, out chan<- *message.Message, cancel context.CancelFunc) {
	defer d.subs.Done()
	defer close(out)
	defer cancel()
	for {
		select {
		case msg, ok := <-in:
			if !ok {
				return
			}
			if d.stopping(ctx) {
				d.release(topic, msg)
				continue
			}
			undo := d.prepare(topic, msg)
			select {
			case out <- msg:
				d.track.delivered(msg)
			case <-ctx.Done():
				undo()
				d.release(topic, msg)
			case <-d.closing:
				undo()
				d.release(topic, msg)
			}
		case <-ctx.Done():
			d.drain(topic, in, cancel)
			return
		case <-d.closing:
			d.drain(topic, in, cancel)
			return
		}
	}
}

func (d *drainingSubscriber) stopping(ctx context.Context) bool {
	select {
	case <-ctx.Done():
		return true
	case <-d.closing:
		return true
	default:
		return false
	}
}

// drain waits for in-flight messages (up to the timeout), ends the
// underlying subscription and consumes what it still emits: watermill-aws
// blocks on an unread output channel.
func (d *drainingSubscriber) drain(topic string, in <-chan *message.Message, cancel context.CancelFunc) {
	timer := time.NewTimer(d.timeout)
	defer timer.Stop()
	idle := d.track.idle()
wait:
	for {
		select {
		case msg, ok := <-in:
			if !ok {
				return
			}
			d.release(topic, msg)
		case <-idle:
			break wait
		case <-timer.C:
			d.logger.Warn("drain timed out, ending subscription with messages in flight", "topic", topic, "timeout", d.timeout)
			break wait
		}
	}
	cancel()
	for msg := range in {
		d.release(topic, msg)
	}
}

// Close stops delivery on every subscription made through d, drains them
// and waits until they have ended. The underlying subscriber stays open
// (the Bus owns it). Safe to call more than once and concurrently.
func (d *drainingSubscriber) Close() error {
	d.stop()
	d.subs.Wait()
	return nil
}

// stop stops delivery on every subscription made through d and starts
// draining them, without waiting.
func (d *drainingSubscriber) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.closed {
		d.closed = true
		close(d.closing)
	}
}
