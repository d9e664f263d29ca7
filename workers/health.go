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

// wait calls the health check until it passes, backing off between tries,
// until deadline. It returns errNotReady (wrapped) when the deadline
// passed, or ctx's error if ctx ended first (a retry resumes waiting
// towards the same deadline).
func (r readiness) wait(ctx context.Context, rt http.RoundTripper, endpoint string, deadline time.Time) error {
	wctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	backoff := r.minBackoff
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
