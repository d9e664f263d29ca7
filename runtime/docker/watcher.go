package docker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	dockerevents "github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"

	"github.com/workspaced/workspaced/events"
)

// EventSource is the part of the Docker client the Watcher uses;
// *github.com/docker/docker/client.Client satisfies it.
type EventSource interface {
	Events(ctx context.Context, options dockerevents.ListOptions) (<-chan dockerevents.Message, <-chan error)
}

// Sink receives the envelopes; *bus.Commands satisfies it (publishing on
// events.TopicTaskEvents). PublishTaskStateChange is called from one
// goroutine.
type Sink interface {
	PublishTaskStateChange(ctx context.Context, e events.TaskStateChange) error
}

// WatcherOptions configure a Watcher. Zero values take the defaults noted.
type WatcherOptions struct {
	// Labels narrow the watch to containers that also carry these labels
	// (the managed-by label is always required).
	Labels map[string]string
	// Since replays engine events from this time on; zero means "from the
	// moment Run starts". The engine keeps only its last 256 events.
	Since time.Time
	// QueueSize bounds the envelopes waiting for the sink (default 1024).
	QueueSize int
	// MinBackoff and MaxBackoff bound the wait between reconnections
	// (defaults 100ms and 5s).
	MinBackoff, MaxBackoff time.Duration
	// PublishAttempts is how many times one envelope is offered to the
	// sink before it is dropped (default 3).
	PublishAttempts int
	// DrainTimeout bounds how long Run keeps publishing queued envelopes
	// after ctx ends (default 5s).
	DrainTimeout time.Duration
	// Logger receives the watcher's logs (default slog.Default()).
	Logger *slog.Logger
}

// WatcherStats count what a Watcher did; all fields only grow.
type WatcherStats struct {
	// Published envelopes the sink accepted.
	Published uint64
	// Dropped envelopes: the queue was full (the sink is slower than the
	// engine) or the sink kept failing.
	Dropped uint64
	// Reconnects after the event stream broke.
	Reconnects uint64
}

// Watcher turns the engine's container events (start, kill, oom, die,
// destroy of our containers) into task-state envelopes for a Sink.
//
// Mapping: start → RUNNING; die → STOPPED with the exit code and a reason
// (it is the authoritative stop); destroy → STOPPED again (repeating die's
// reason, or "removed"). kill and oom emit nothing: a signal may be caught,
// and the OOM killer may have killed a child rather than the agent; both
// are remembered and named in the next die's reason. detail.version is the
// engine event's timeNano: per container it increases, and a replayed event
// keeps it, so the store ignores duplicates.
//
// Delivery: one goroutine reads the engine stream and never waits for the
// sink (the engine drops events for subscribers that stall); envelopes go
// through a bounded queue to a second goroutine that publishes. When the
// queue is full the envelope is dropped and counted (Stats().Dropped): the
// reconciler, which compares List with the store, repairs the state. When
// the stream breaks, the watcher reconnects with backoff and asks the
// engine to replay from the last event it saw, so events that happened
// while it was disconnected arrive (some twice).
type Watcher struct {
	src  EventSource
	sink Sink
	opts WatcherOptions
	log  *slog.Logger

	published, dropped, reconnects atomic.Uint64
	// onDrop, when set (tests), runs on the reading goroutine after an
	// envelope was dropped for a full queue.
	onDrop func()
}

// NewWatcher returns a Watcher reading src and publishing to sink.
func NewWatcher(src EventSource, opts WatcherOptions, sink Sink) *Watcher {
	if opts.QueueSize <= 0 {
		opts.QueueSize = 1024
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = 100 * time.Millisecond
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = max(5*time.Second, opts.MinBackoff)
	}
	if opts.PublishAttempts <= 0 {
		opts.PublishAttempts = 3
	}
	if opts.DrainTimeout <= 0 {
		opts.DrainTimeout = 5 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Watcher{src: src, sink: sink, opts: opts, log: opts.Logger.With("component", "docker_watcher")}
}

// Stats returns the watcher's counters. Safe to call concurrently with Run.
// The Watcher is also a prometheus.Collector of them (metrics.go).
func (w *Watcher) Stats() WatcherStats {
	return WatcherStats{Published: w.published.Load(), Dropped: w.dropped.Load(), Reconnects: w.reconnects.Load()}
}

// Run watches until ctx ends, then publishes what is queued (bounded by
// DrainTimeout) and returns nil. It returns an error only for a
// misconfiguration the engine rejects outright. Run must be called once.
func (w *Watcher) Run(ctx context.Context) error {
	queue := make(chan events.TaskStateChange, w.opts.QueueSize)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		w.publish(ctx, queue)
	}()
	err := w.read(ctx, queue)
	close(queue)
	wg.Wait()
	return err
}

// read subscribes, translates and enqueues until ctx ends.
func (w *Watcher) read(ctx context.Context, queue chan<- events.TaskStateChange) error {
	since := w.opts.Since
	if since.IsZero() {
		since = time.Now()
	}
	last := since.UnixNano()
	tr := newTranslator()
	backoff := w.opts.MinBackoff
	for {
		got, err := w.stream(ctx, last, tr, queue, &last)
		if ctx.Err() != nil {
			return nil
		}
		if cerrdefs.IsInvalidArgument(err) { // bad filters: retrying cannot help
			return fmt.Errorf("watch docker events: %w", err)
		}
		if got {
			backoff = w.opts.MinBackoff
		}
		w.reconnects.Add(1)
		w.log.Warn("docker event stream broke; reconnecting", "err", err, "backoff", backoff, "since_nano", last)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		backoff = min(2*backoff, w.opts.MaxBackoff)
	}
}

// stream runs one subscription from sinceNano until it breaks; it reports
// whether any event arrived and advances *last to the newest event time.
func (w *Watcher) stream(ctx context.Context, sinceNano int64, tr *translator, queue chan<- events.TaskStateChange, last *int64) (bool, error) {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the client's reader goroutine
	msgs, errs := w.src.Events(sctx, dockerevents.ListOptions{
		Since:   fmt.Sprintf("%d.%09d", sinceNano/1e9, sinceNano%1e9),
		Filters: w.filters(),
	})
	got := false
	for {
		select {
		case m := <-msgs:
			got = true
			if m.TimeNano > *last {
				*last = m.TimeNano
			}
			e, ok := tr.translate(m)
			if !ok {
				continue
			}
			select {
			case queue <- e:
			default:
				w.dropped.Add(1)
				w.log.Warn("task event queue full; dropping event (the reconciler repairs state)",
					"task_arn", e.Detail.TaskArn, "last_status", e.Detail.LastStatus, "version", e.Detail.Version)
				if w.onDrop != nil {
					w.onDrop()
				}
			}
		case err := <-errs:
			if err == nil {
				err = errors.New("event stream closed")
			}
			return got, err
		case <-ctx.Done():
			return got, ctx.Err()
		}
	}
}

func (w *Watcher) filters() filters.Args {
	f := filters.NewArgs(
		filters.Arg("type", string(dockerevents.ContainerEventType)),
		filters.Arg("label", LabelManagedBy+"="+ManagedBy),
	)
	for k, v := range w.opts.Labels {
		f.Add("label", k+"="+v)
	}
	for _, a := range []dockerevents.Action{dockerevents.ActionStart, dockerevents.ActionKill, dockerevents.ActionOOM, dockerevents.ActionDie, dockerevents.ActionDestroy} {
		f.Add("event", string(a))
	}
	return f
}

// publish hands queued envelopes to the sink until the queue is closed.
// After ctx ends it keeps draining with a fresh deadline.
func (w *Watcher) publish(ctx context.Context, queue <-chan events.TaskStateChange) {
	drain, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stop := context.AfterFunc(ctx, func() {
		// Once ctx ends, what is still queued gets DrainTimeout in all.
		t := time.AfterFunc(w.opts.DrainTimeout, cancel)
		context.AfterFunc(drain, func() { t.Stop() })
	})
	defer stop()
	for e := range queue {
		w.publishOne(drain, e)
	}
}

func (w *Watcher) publishOne(ctx context.Context, e events.TaskStateChange) {
	backoff := w.opts.MinBackoff
	for attempt := 1; ; attempt++ {
		err := w.sink.PublishTaskStateChange(ctx, e)
		if err == nil {
			w.published.Add(1)
			return
		}
		if attempt >= w.opts.PublishAttempts || ctx.Err() != nil {
			w.dropped.Add(1)
			w.log.Error("publish task event failed; dropping it (the reconciler repairs state)",
				"task_arn", e.Detail.TaskArn, "last_status", e.Detail.LastStatus, "version", e.Detail.Version, "err", err)
			return
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
		backoff = min(2*backoff, w.opts.MaxBackoff)
	}
}
