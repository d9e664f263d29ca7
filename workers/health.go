package workers

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/workspaced/workspaced/agent/api"
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
	h, err := agentClient(rt, endpoint).Health(ctx)
	if err != nil {
		return err
	}
	if h.Status != "ok" {
		return fmt.Errorf("agent status %q", h.Status)
	}
	return nil
}

// agentClient is the agent of endpoint through rt.
func agentClient(rt http.RoundTripper, endpoint string) *client.Client {
	if strings.HasPrefix(endpoint, "http://") || strings.HasPrefix(endpoint, "https://") {
		return client.NewWithBaseURL(rt, endpoint)
	}
	return client.New(rt)
}

// warmUpTimeout bounds a pool workspace's warm-up run.
const warmUpTimeout = 30 * time.Second

// warmUp runs a no-op command (`true`) in a new pool workspace and reads
// its stream to the final event, before the workspace is offered: the
// first run of a fresh agent pays for work done lazily once (its first
// process start, first run directory, first streaming response), and a
// warm-pool hit should not. A failure is returned for the log only: the
// workspace answered /health and is offered anyway.
func warmUp(ctx context.Context, rt http.RoundTripper, endpoint string) error {
	ctx, cancel := context.WithTimeout(ctx, warmUpTimeout)
	defer cancel()
	st, err := agentClient(rt, endpoint).Execute(ctx, api.ExecuteRequest{Kind: api.KindCommand, Argv: []string{"true"}})
	if err != nil {
		return fmt.Errorf("warm-up run: %w", err)
	}
	defer st.Close()
	for st.Done() == nil {
		if _, err := st.Next(); err != nil {
			return fmt.Errorf("warm-up stream: %w", err)
		}
	}
	if d := st.Done(); d.ExitCode != 0 {
		return fmt.Errorf("warm-up run exited %d (%s)", d.ExitCode, d.Error)
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
