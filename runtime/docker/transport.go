package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"time"

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
	return UnixTransport(path), nil
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

// UnixTransport returns an HTTP transport that dials socketPath for every
// request, whatever the URL's host.
func UnixTransport(socketPath string) *http.Transport {
	var d net.Dialer
	return &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", socketPath)
		},
		MaxIdleConns:          4,
		IdleConnTimeout:       30 * time.Second,
		ResponseHeaderTimeout: 0, // /execute streams; callers bound requests by context
		DisableCompression:    true,
	}
}

// readyPoll is how often WaitReady retries /health.
const readyPoll = 50 * time.Millisecond

// WaitReady blocks until the agent of info answers GET /health with 200, ctx
// ends, or the workspace stops (then it returns an error without waiting
// for ctx). Give ctx a deadline.
func (r *Runtime) WaitReady(ctx context.Context, info workspace.Info) error {
	rt, err := r.Transport(info.Endpoint)
	if err != nil {
		return err
	}
	defer rt.(*http.Transport).CloseIdleConnections()
	hc := &http.Client{Transport: rt}
	tick := time.NewTicker(readyPoll)
	defer tick.Stop()
	var last error
	for {
		if last = probeHealth(ctx, hc); last == nil {
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
			return fmt.Errorf("wait for workspace %s: %w (last: %v)", info.ID, ctx.Err(), last)
		case <-tick.C:
		}
	}
}

func probeHealth(ctx context.Context, hc *http.Client) error {
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(pctx, http.MethodGet, "http://workspace/health", nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("health: %s", resp.Status)
	}
	return nil
}
