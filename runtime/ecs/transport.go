package ecs

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// newTransport is the one connection pool to every task's agent: dial and
// response-header timeouts, no overall timeout (an /execute stream lasts as
// long as the run), no proxy from the environment (agents are in the VPC).
func newTransport(opts Options) *http.Transport {
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: opts.DialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		ResponseHeaderTimeout: opts.ResponseHeaderTimeout,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   4,
		ExpectContinueTimeout: time.Second,
		ForceAttemptHTTP2:     false,
	}
}

// Transport returns a RoundTripper that sends every request to the agent
// at endpoint ("http://<ip>:<port>", an Info.Endpoint), whatever host the
// request URL names — so callers can use the endpoint or a placeholder
// host, as with the Docker runtime's Unix sockets. Connections are pooled
// across endpoints.
func (r *Runtime) Transport(endpoint string) (http.RoundTripper, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil, fmt.Errorf("transport for %q: %w", endpoint, err)
	}
	if u.Scheme != "http" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return nil, fmt.Errorf("transport for %q: want http://<ip>:<port>", endpoint)
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil || net.ParseIP(host) == nil {
		return nil, fmt.Errorf("transport for %q: want http://<ip>:<port>", endpoint)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return nil, fmt.Errorf("transport for %q: bad port", endpoint)
	}
	return &agentTransport{base: r.transport, host: u.Host}, nil
}

// agentTransport pins requests to one agent.
type agentTransport struct {
	base *http.Transport
	host string
}

func (t *agentTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	out := req.Clone(req.Context())
	out.URL.Scheme = "http"
	out.URL.Host = t.host
	out.Host = t.host
	return t.base.RoundTrip(out)
}

// CloseIdleConnections closes the pool's idle connections.
func (t *agentTransport) CloseIdleConnections() { t.base.CloseIdleConnections() }
