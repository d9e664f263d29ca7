package workers

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/workspaced/workspaced/agent/client"
)

// HealthChecker asks a workspace's agent whether it serves. It is called
// repeatedly (with backoff) until it returns nil or the readiness deadline
// passes; each call gets its own short deadline.
type HealthChecker interface {
	Healthy(ctx context.Context, rt http.RoundTripper, endpoint string) error
}

// HealthCheckFunc adapts a function to HealthChecker.
type HealthCheckFunc func(ctx context.Context, rt http.RoundTripper, endpoint string) error

// Healthy calls f.
func (f HealthCheckFunc) Healthy(ctx context.Context, rt http.RoundTripper, endpoint string) error {
	return f(ctx, rt, endpoint)
}

// AgentHealth is the default HealthChecker: GET /health through rt (the
// runtime's transport for endpoint), healthy when the agent answers 200
// with status "ok". An http(s) endpoint is the base URL (ECS); any other
// (unix://) is reached through the transport whatever the URL says.
var AgentHealth HealthChecker = HealthCheckFunc(agentHealth)

func agentHealth(ctx context.Context, rt http.RoundTripper, endpoint string) error {
	c := client.New(rt)
	if strings.HasPrefix(endpoint, "http://") || strings.HasPrefix(endpoint, "https://") {
		c = client.NewWithBaseURL(rt, endpoint)
	}
	h, err := c.Health(ctx)
	if err != nil {
		return err
	}
	if h.Status != "ok" {
		return fmt.Errorf("agent status %q", h.Status)
	}
	return nil
}

// readiness bounds waiting for an agent.
type readiness struct {
	check                  HealthChecker
	timeout, perTry        time.Duration
	minBackoff, maxBackoff time.Duration
}

// ListenAwaiter is implemented by runtimes that can tell when a
// workspace's agent starts listening (the Docker runtime: its socket file
// appears, watched with inotify). Readiness then probes /health when that
// happens instead of on the backoff schedule alone.
type ListenAwaiter interface {
	// AwaitListening blocks until the agent of endpoint listens or ctx
	// ends; an error means "unknown" (the caller probes on its schedule).
	AwaitListening(ctx context.Context, endpoint string) error
}

// listenWaitMax bounds how long readiness waits for the listen signal
// before it falls back to probing on the backoff schedule.
const listenWaitMax = 10 * time.Second

// signalledBackoff is the first pause after the listen signal: the agent
// binds its socket just before it listens, so a probe at that instant may
// be refused once.
const signalledBackoff = time.Millisecond

// wait calls the health check until it passes, backing off between tries,
// until deadline. With await (the runtime's listen signal, nil if none) it
// first waits, at most listenWaitMax, for the agent to listen. It returns
// errNotReady (wrapped) when the deadline passed, or ctx's error if ctx
// ended first (a retry resumes waiting towards the same deadline).
func (r readiness) wait(ctx context.Context, rt http.RoundTripper, endpoint string, deadline time.Time, await func(context.Context) error) error {
	wctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	backoff := r.minBackoff
	if await != nil {
		actx, acancel := context.WithTimeout(wctx, listenWaitMax)
		if await(actx) == nil {
			backoff = min(signalledBackoff, backoff)
		}
		acancel()
	}
	var last error
	for {
		tctx, tcancel := context.WithTimeout(wctx, r.perTry)
		last = r.check.Healthy(tctx, rt, endpoint)
		tcancel()
		if last == nil {
			return nil
		}
		t := time.NewTimer(backoff)
		select {
		case <-wctx.Done():
			t.Stop()
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("%w (last: %v)", err, last)
			}
			return fmt.Errorf("%w within %s: %v", errNotReady, r.timeout, last)
		case <-t.C:
		}
		backoff = min(2*backoff, r.maxBackoff)
	}
}
