package docker

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	agentclient "github.com/workspaced/workspaced/agent/client"
	"github.com/workspaced/workspaced/workspace"
)

// Transport returns an HTTP transport whose every connection goes to the
// agent socket of endpoint ("unix://<SocketBasePath>/<token>/agent.sock",
// an Info.Endpoint); the request URL's host is ignored. Endpoints outside
// SocketBasePath are refused, so a forged endpoint cannot point the backend
// at another socket (the Docker socket, say).
func (r *Runtime) Transport(endpoint string) (http.RoundTripper, error) {
	path, err := r.socketPath(endpoint)
	if err != nil {
		return nil, err
	}
	if t, ok := r.transports.Load(path); ok {
		return t.(http.RoundTripper), nil
	}
	t, _ := r.transports.LoadOrStore(path, agentclient.UnixTransport(path))
	return t.(http.RoundTripper), nil
}

// dropTransport closes the pooled connections to a released workspace's
// agent socket.
func (r *Runtime) dropTransport(token string) {
	t, ok := r.transports.LoadAndDelete(filepath.Join(r.socketDir(token), agentSocketName))
	if !ok {
		return
	}
	if c, ok := t.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

func (r *Runtime) socketPath(endpoint string) (string, error) {
	path, ok := strings.CutPrefix(endpoint, "unix://")
	if !ok || path == "" {
		return "", fmt.Errorf("transport: endpoint %q is not unix://<path>: %w", endpoint, workspace.ErrInvalidSpec)
	}
	path = filepath.Clean(path)
	dir, file := filepath.Split(path)
	if file != agentSocketName || filepath.Dir(filepath.Clean(dir)) != r.opts.SocketBasePath ||
		workspace.ValidToken(filepath.Base(dir)) != nil {
		return "", fmt.Errorf("transport: endpoint %q is not an agent socket under %s: %w", endpoint, r.opts.SocketBasePath, workspace.ErrInvalidSpec)
	}
	return path, nil
}

// readyPoll is how often WaitReady retries /health.
const readyPoll = 50 * time.Millisecond

// WaitReady blocks until the agent of info reports itself healthy on GET
// /health, ctx ends, or the workspace stops (then it returns an error at
// once rather than waiting for ctx). Give ctx a deadline.
func (r *Runtime) WaitReady(ctx context.Context, info workspace.Info) error {
	rt, err := r.Transport(info.Endpoint)
	if err != nil {
		return err
	}
	agent := agentclient.New(rt)
	tick := time.NewTicker(readyPoll)
	defer tick.Stop()
	for {
		last := probe(ctx, agent)
		if last == nil {
			return nil
		}
		cur, err := r.Inspect(ctx, info.ID)
		switch {
		case errors.Is(err, workspace.ErrNotFound):
			return fmt.Errorf("wait for workspace %s: %w", info.ID, err)
		case err == nil && cur.Status.Stopping():
			return fmt.Errorf("wait for workspace %s: stopped before ready (%s)", info.ID, cur.StoppedReason)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for workspace %s: %w (last probe: %v)", info.ID, ctx.Err(), last)
		case <-tick.C:
		}
	}
}

// probe asks the agent for its health once.
func probe(ctx context.Context, agent *agentclient.Client) error {
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	h, err := agent.Health(pctx)
	if err != nil {
		return err
	}
	if h.Status != "ok" {
		return fmt.Errorf("agent status %q", h.Status)
	}
	return nil
}
