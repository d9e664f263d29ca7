package handlers

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/workspaced/workspaced/agent/client"
	"github.com/workspaced/workspaced/events"
	"github.com/workspaced/workspaced/store"
)

// A hung workspace (a frozen container, an agent that stopped reading)
// accepts connections and answers nothing. Two checks find it: before a
// request is relayed to a bound workspace its agent must answer /health
// within HealthTimeout (a success is remembered for HealthCache, so a busy
// conversation is not checked on every request), and a relayed run whose
// agent sends nothing at all, not even its heartbeat comments, for
// RunSilence is over. Either way the workspace is recorded as stopped
// (its binding ends as lost) and released, so the next wait for the
// conversation provisions a replacement.

// healthCache remembers recent health-check successes per workspace.
// Safe for concurrent use.
type healthCache struct {
	mu sync.Mutex
	ok map[string]time.Time
}

func (c *healthCache) fresh(wid string, now time.Time, ttl time.Duration) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.ok[wid]
	return ok && now.Sub(t) < ttl
}

func (c *healthCache) record(wid string, now time.Time, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ok == nil {
		c.ok = map[string]time.Time{}
	}
	if !ok {
		delete(c.ok, wid)
		return
	}
	c.ok[wid] = now
	for k, t := range c.ok { // bounded by the workspaces used within a few seconds
		if now.Sub(t) > time.Minute {
			delete(c.ok, k)
		}
	}
}

// agentAnswers asks conv's agent for /health within HealthTimeout, unless
// it answered within HealthCache.
func (s *Server) agentAnswers(ctx context.Context, conv store.Conversation) error {
	if s.health.fresh(conv.Workspace, s.opts.Now(), s.opts.HealthCache) {
		return nil
	}
	rt, err := s.opts.Transports.Transport(conv.Endpoint)
	if err != nil {
		return err
	}
	c := client.New(rt)
	if strings.HasPrefix(conv.Endpoint, "http://") || strings.HasPrefix(conv.Endpoint, "https://") {
		c = client.NewWithBaseURL(rt, conv.Endpoint)
	}
	hctx, cancel := context.WithTimeout(ctx, s.opts.HealthTimeout)
	defer cancel()
	h, err := c.Health(hctx)
	if err == nil && h.Status != "ok" {
		err = errors.New("agent status " + h.Status)
	}
	if ctx.Err() == nil {
		s.health.record(conv.Workspace, s.opts.Now(), err == nil)
	}
	return err
}

// replaceIfHung checks a bound workspace before the relay. A healthy one
// is returned as is; a hung one is dropped (dropWorkspace) and the
// request waits for its replacement (status events, then ready), at most
// ProvisionTimeout.
func (s *Server) replaceIfHung(ctx context.Context, st eventSink, conv store.Conversation) (store.Conversation, *streamError) {
	err := s.agentAnswers(ctx, conv)
	if err == nil {
		return conv, nil
	}
	if ctx.Err() != nil {
		return conv, s.ended(ctx, err)
	}
	s.dropWorkspace(ctx, conv, "agent health check failed: "+err.Error())
	_ = st.sendJSON("status", statusEvent{State: "replacing", WorkspaceID: conv.Workspace})
	conv.State, conv.Workspace, conv.Endpoint = store.StateLost, "", ""
	return s.awaitReady(ctx, st, conv)
}

// dropWorkspace records conv's workspace as stopped (its binding ends as
// lost and the next wait provisions a new one, restored from the saved
// files) and asks the workers to stop it.
func (s *Server) dropWorkspace(ctx context.Context, conv store.Conversation, reason string) {
	ctx = context.WithoutCancel(ctx)
	s.metrics.hung.Inc()
	s.log.Warn("workspace hung; replacing it", "conversation", conv.ID, "workspace", conv.Workspace, "reason", reason)
	if _, err := s.opts.Store.MarkStopped(ctx, conv.Workspace, "hung: "+reason); err != nil {
		s.log.Error("hung workspace not recorded as stopped", "workspace", conv.Workspace, "err", err)
	}
	err := s.opts.Commands.PublishReleased(ctx, events.WorkspaceReleased{
		ConversationID: conv.ID, WorkspaceID: conv.Workspace, Reason: events.ReasonError, RequestedAt: s.opts.Now(),
	})
	if err != nil {
		// GC's orphan reaper stops it later: Redis no longer tracks it.
		s.log.Error("release of hung workspace not published", "workspace", conv.Workspace, "err", err)
	}
}

// lostMidRun drops conv's workspace, silent past RunSilence during a run,
// and returns the run's final error.
func (s *Server) lostMidRun(ctx context.Context, conv store.Conversation) *streamError {
	s.dropWorkspace(ctx, conv, "agent silent for "+s.opts.RunSilence.String())
	return &streamError{codeNoWorkspace, "the workspace stopped answering during the run; the next request gets a new one"}
}

// silenceGuard wraps the transport of one relay: the body of every
// response it returns is closed once RunSilence passes without a byte
// from the agent (its heartbeat comments count), so a frozen workspace
// ends the run instead of holding it open.
type silenceGuard struct {
	rt      http.RoundTripper
	after   time.Duration
	last    atomic.Int64 // unix nanos of the last byte read
	tripped atomic.Bool
}

func (s *Server) guardSilence(rt http.RoundTripper) *silenceGuard {
	g := &silenceGuard{rt: rt, after: s.opts.RunSilence}
	g.last.Store(time.Now().UnixNano())
	return g
}

// RoundTrip implements http.RoundTripper. An agent that does not even
// answer with headers within the deadline trips the guard too.
func (g *silenceGuard) RoundTrip(r *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancel(r.Context())
	t := time.AfterFunc(g.after, func() { g.tripped.Store(true); cancel() })
	resp, err := g.rt.RoundTrip(r.WithContext(ctx))
	t.Stop()
	if err != nil {
		cancel()
		return resp, err
	}
	g.last.Store(time.Now().UnixNano())
	resp.Body = g.watch(resp.Body, cancel)
	return resp, nil
}

// heard reports whether the agent sent anything within the silence
// deadline.
func (g *silenceGuard) heard() bool {
	return time.Since(time.Unix(0, g.last.Load())) < g.after
}

// watch wraps body: a timer, not a goroutine, checks its silence (a
// relayed run holds its body for the run's life; D38).
func (g *silenceGuard) watch(body io.ReadCloser, cancel context.CancelFunc) io.ReadCloser {
	b := &watchedBody{ReadCloser: body, g: g, cancel: cancel}
	b.mu.Lock()
	b.timer = time.AfterFunc(g.after, b.check)
	b.mu.Unlock()
	return b
}

type watchedBody struct {
	io.ReadCloser
	g      *silenceGuard
	once   sync.Once
	cancel context.CancelFunc // the request's context

	mu     sync.Mutex
	timer  *time.Timer // runs check when the agent may have been silent too long
	closed bool
}

func (b *watchedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.g.last.Store(time.Now().UnixNano())
	}
	return n, err
}

func (b *watchedBody) Close() error {
	b.once.Do(func() {
		b.mu.Lock()
		b.closed = true
		b.timer.Stop()
		b.mu.Unlock()
	})
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// check closes the body when the agent has been silent too long, and
// otherwise looks again when it would have been.
func (b *watchedBody) check() {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	idle := time.Since(time.Unix(0, b.g.last.Load()))
	if idle < b.g.after {
		b.timer.Reset(b.g.after - idle)
		b.mu.Unlock()
		return
	}
	b.mu.Unlock()
	b.g.tripped.Store(true)
	_ = b.Close()
}

// silent reports whether the driver's agent stream was ended by its
// silence guard.
func (d *runDriver) silent() bool { return d.guard != nil && d.guard.tripped.Load() }

// heard reports whether the driver's agent was heard within the silence
// deadline (true without a guard): a silent run's workspace lease is not
// renewed, so idle GC can reclaim it.
func (d *runDriver) heard() bool { return d.guard == nil || d.guard.heard() }
