package handlers_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/workspaced/workspaced/handlers"
	"github.com/workspaced/workspaced/store"
)

// redisLog records the commands the store sends (a go-redis hook) and,
// between them, markers of the agent's requests; while held, every
// command waits for release.
type redisLog struct {
	mu      sync.Mutex
	entries []string
	hold    chan struct{} // non-nil: commands wait until it is closed
	armed   bool          // hold from the agent's next POST /execute on
}

func (l *redisLog) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries = append(l.entries, s)
}

func (l *redisLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.entries
	l.entries = nil
	return out
}

// holdAfterAgent makes every command from the agent's next POST /execute
// on wait until release.
func (l *redisLog) holdAfterAgent() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.armed = true
}

// agent marks the agent getting a run (and starts holding if armed).
func (l *redisLog) agent() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries = append(l.entries, agentMark)
	if l.armed {
		l.armed, l.hold = false, make(chan struct{})
	}
}

const agentMark = "agent: POST /execute"

func (l *redisLog) release() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.hold != nil {
		close(l.hold)
		l.hold = nil
	}
}

func (l *redisLog) wait(ctx context.Context) error {
	l.mu.Lock()
	h := l.hold
	l.mu.Unlock()
	if h == nil {
		return nil
	}
	select {
	case <-h:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// name is the command as logged: EVALSHA with the script's first key.
func name(c redis.Cmder) string {
	a := c.Args()
	if len(a) > 3 && (c.Name() == "evalsha" || c.Name() == "eval") {
		return fmt.Sprintf("%s %v", c.Name(), a[3])
	}
	if len(a) > 1 {
		return fmt.Sprintf("%s %v", c.Name(), a[1])
	}
	return c.Name()
}

// sweep reports the replica's sweep of active runs (srv.Run), which runs
// on its own schedule and is not part of a request.
func sweep(s string) bool { return s == "zrange test:runs:active" }

func (l *redisLog) DialHook(next redis.DialHook) redis.DialHook { return next }

func (l *redisLog) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, c redis.Cmder) error {
		if err := l.wait(ctx); err != nil {
			return err
		}
		if n := name(c); !sweep(n) && c.Name() != "script" {
			l.add(n)
		}
		return next(ctx, c)
	}
}

func (l *redisLog) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cs []redis.Cmder) error {
		if err := l.wait(ctx); err != nil {
			return err
		}
		names := make([]string, len(cs))
		for i, c := range cs {
			names[i] = name(c)
		}
		l.add("pipeline[" + strings.Join(names, ", ") + "]")
		return next(ctx, cs)
	}
}

// markingTransports logs "agent: POST /execute" when the API gives the
// agent a run.
type markingTransports struct {
	handlers.Transports
	log *redisLog
}

func (m markingTransports) Transport(endpoint string) (http.RoundTripper, error) {
	rt, err := m.Transports.Transport(endpoint)
	if err != nil {
		return nil, err
	}
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if r.Method == http.MethodPost && r.URL.Path == "/execute" {
			m.log.agent()
		}
		return rt.RoundTrip(r)
	}), nil
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// A hot execute (the conversation bound, ready) makes one Redis round
// trip before the agent gets the run (D36: claim, run record, relay lease,
// start and first event in one script), and the client's stream ends
// after the final event with Redis held: the run's end, its log's last
// batch and the lease's release are written after it, not waited for.
func TestHotExecuteRoundTrips(t *testing.T) {
	e := newRunEnv(t)
	log := &redisLog{}
	e.rdb.AddHook(log)
	r := e.replica(func(o *handlers.Options) {
		o.Transports = markingTransports{e.agents, log}
		o.RunLeaseTTL = time.Hour // no lease renewal inside the test
	})
	t.Cleanup(log.release) // before the replica stops (clean-ups run last first)
	ctx := testCtx(t)
	run := func() (string, *streamEnd) {
		rid, rd := r.execute(t, ctx, `{"kind":"command","argv":["true"]}`)
		evs, err := readUntil(t, rd, isFinalEvent)
		if err != nil || len(evs) == 0 || evs[len(evs)-1].Event != "done" {
			t.Fatalf("events %+v, %v; want a run ending done", evs, err)
		}
		end := &streamEnd{done: make(chan error, 1)}
		go func() { _, err := rd.Next(); end.done <- err }()
		return rid, end
	}
	// Warm up (connections, the agent's health cache), then let the first
	// run end.
	// settled waits until run rid's driver is gone: the run ended and its
	// relay lease released (the last thing the driver writes).
	settled := func(rid string) store.Run {
		got := e.waitRunEnded(ctx, rid)
		for e.rdb.Exists(ctx, "test:lease:run:"+rid).Val() != 0 {
			select {
			case <-ctx.Done():
				t.Fatalf("run %s: its relay lease was not released", rid)
			case <-time.After(20 * time.Millisecond):
			}
		}
		return got
	}
	rid, end := run()
	if err := <-end.done; err != io.EOF {
		t.Fatalf("after done: %v, want the end of the stream", err)
	}
	settled(rid)
	log.take()

	rid, end = run()
	before := 0
	for _, s := range log.take() {
		if s == agentMark {
			break
		}
		t.Logf("before the agent has the run: %s", s)
		before++
	}
	if before != 1 {
		t.Errorf("%d Redis round trips before the agent has the run, want 1", before)
	}
	if err := <-end.done; err != io.EOF {
		t.Fatalf("after done: %v, want the end of the stream", err)
	}
	if got := settled(rid); got.State != store.RunDone {
		t.Fatalf("run %+v, want done", got)
	}
	log.take()

	// With every Redis command held from the moment the agent has the run,
	// the client still gets every event and the end of its stream.
	log.holdAfterAgent()
	rid, end = run()
	select {
	case err := <-end.done:
		if err != io.EOF {
			t.Fatalf("after done: %v, want the end of the stream", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the stream did not end after done while Redis was held: the client waits for a round trip after the final event")
	}
	log.release()
	if got := settled(rid); got.State != store.RunDone {
		t.Fatalf("run %+v, want done after Redis answered again", got)
	}
}

// streamEnd receives what the read after the final event returned.
type streamEnd struct{ done chan error }
