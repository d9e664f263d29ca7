// Package client is the backend's client for the workspace agent's HTTP API
// (package agent): health, execute (a stream of SSE events), and the
// workspace file tar in and out.
//
// A Client is safe for concurrent use. It sets no overall timeout: a run
// streams for as long as it lasts; bound calls with their context.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/workspaced/workspaced/agent/api"
	"github.com/workspaced/workspaced/sse"
)

// DefaultBaseURL is the base URL used with Unix-socket transports, where
// the host part is ignored.
const DefaultBaseURL = "http://agent"

// Errors of the agent's answers; test with errors.Is.
var (
	// ErrBusy is returned when the agent is already running something (409).
	ErrBusy = errors.New("agent busy")
	// ErrNoRun: the agent does not know the run (404): it never started
	// there, or a later run replaced its log.
	ErrNoRun = errors.New("agent does not know the run")
	// ErrTrimmed: the asked events were dropped from the agent's bounded
	// run log (410).
	ErrTrimmed = errors.New("run events trimmed")
)

// APIError is a non-2xx answer other than 409.
type APIError struct {
	Status  int
	Message string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("agent: %d %s: %s", e.Status, http.StatusText(e.Status), e.Message)
}

// Client talks to one agent.
type Client struct {
	hc   *http.Client
	base string
}

// New returns a client that sends requests through rt (UnixTransport for a
// Docker workspace, TCPTransport for ECS) to DefaultBaseURL.
func New(rt http.RoundTripper) *Client { return NewWithBaseURL(rt, DefaultBaseURL) }

// NewWithBaseURL is New with another base URL ("http://10.0.1.5:9000").
func NewWithBaseURL(rt http.RoundTripper, baseURL string) *Client {
	return &Client{hc: &http.Client{Transport: rt}, base: strings.TrimSuffix(baseURL, "/")}
}

// UnixTransport returns a transport that dials the agent's Unix socket,
// whatever the request's host.
func UnixTransport(socketPath string) http.RoundTripper {
	t := baseTransport()
	d := &net.Dialer{Timeout: 5 * time.Second}
	t.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
		return d.DialContext(ctx, "unix", socketPath)
	}
	return t
}

// TCPTransport returns a transport for agents reached over TCP (ECS). It
// uses no proxy.
func TCPTransport() http.RoundTripper {
	t := baseTransport()
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	t.DialContext = d.DialContext
	return t
}

func baseTransport() *http.Transport {
	return &http.Transport{
		Proxy:                 nil,
		ForceAttemptHTTP2:     false,
		MaxIdleConns:          16,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       60 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true, // tar and SSE stream as they are
	}
}

// Health returns the agent's health.
func (c *Client) Health(ctx context.Context) (api.Health, error) {
	var h api.Health
	resp, err := c.do(ctx, http.MethodGet, "/health", nil, "")
	if err != nil {
		return h, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&h); err != nil {
		return h, fmt.Errorf("decode health: %w", err)
	}
	return h, nil
}

// Execute starts a run. The returned Stream must be closed; cancelling ctx
// (or closing the stream) makes the agent kill the run.
func (c *Client) Execute(ctx context.Context, req api.ExecuteRequest) (*Stream, error) {
	return c.ExecuteRun(ctx, "", req)
}

// ExecuteRun starts run runID, detached from this request (see
// api.RunIDHeader): closing the stream or cancelling ctx leaves it running;
// Events reads it again, Cancel ends it. An empty runID is Execute.
func (c *Client) ExecuteRun(ctx context.Context, runID string, req api.ExecuteRequest) (*Stream, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encode execute request: %w", err)
	}
	var hdr http.Header
	if runID != "" {
		hdr = http.Header{api.RunIDHeader: {runID}}
	}
	resp, err := c.doHeader(ctx, http.MethodPost, "/execute", bytes.NewReader(body), "application/json", hdr)
	if err != nil {
		return nil, err
	}
	return streamOf(resp, "execute")
}

// Events follows run runID from the event after number after (0: from
// the start) to its final event. ErrNoRun when the agent does not know
// the run, ErrTrimmed when those events are gone.
func (c *Client) Events(ctx context.Context, runID string, after int64) (*Stream, error) {
	path := "/runs/" + url.PathEscape(runID) + "/events?after=" + strconv.FormatInt(after, 10)
	resp, err := c.do(ctx, http.MethodGet, path, nil, "")
	if err != nil {
		return nil, err
	}
	return streamOf(resp, "run events")
}

// Cancel kills run runID's process group; its final event follows on the
// streams reading it. ErrNoRun when the agent does not know the run.
func (c *Client) Cancel(ctx context.Context, runID string) error {
	resp, err := c.do(ctx, http.MethodPost, "/runs/"+url.PathEscape(runID)+"/cancel", nil, "")
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.Body.Close()
}

func streamOf(resp *http.Response, what string) (*Stream, error) {
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, sse.ContentType) {
		resp.Body.Close()
		return nil, fmt.Errorf("%s: unexpected content type %q", what, ct)
	}
	st := &Stream{body: resp.Body, src: resp.Body}
	st.r = sse.NewReader(streamSource{st})
	return st, nil
}

// GetFiles returns the workspace as a tar stream; the caller closes it. A
// transfer that fails midway ends in a read error, never in a short
// archive that looks complete.
func (c *Client) GetFiles(ctx context.Context) (io.ReadCloser, error) {
	return c.GetTree(ctx, api.TreeWorkspace)
}

// PutFiles replaces the workspace's contents with the tar stream r.
// A refused archive (api.ErrRefused cases, too large) is an *APIError
// with status 400 or 413 and leaves the workspace unchanged.
func (c *Client) PutFiles(ctx context.Context, r io.Reader) error {
	return c.PutTree(ctx, api.TreeWorkspace, r)
}

// treePath is the agent's path of a tree (api.Trees).
func treePath(tree string) string {
	if tree == api.TreeWorkspace {
		return "/files"
	}
	return "/files/" + url.PathEscape(tree)
}

// GetTree is GetFiles of a named tree. An agent that predates trees
// answers an *APIError with status 404 (IsNotFound).
func (c *Client) GetTree(ctx context.Context, tree string) (io.ReadCloser, error) {
	resp, err := c.do(ctx, http.MethodGet, treePath(tree), nil, "")
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// PutTree is PutFiles of a named tree.
func (c *Client) PutTree(ctx context.Context, tree string, r io.Reader) error {
	resp, err := c.do(ctx, http.MethodPut, treePath(tree), r, "application/x-tar")
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.Body.Close()
}

// TreeDigest returns the digest of a tree's listing (api.TreeDigest).
func (c *Client) TreeDigest(ctx context.Context, tree string) (api.TreeDigest, error) {
	var d api.TreeDigest
	p := "/files/" + url.PathEscape(tree) + "/digest"
	resp, err := c.do(ctx, http.MethodGet, p, nil, "")
	if err != nil {
		return d, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&d); err != nil {
		return d, fmt.Errorf("decode %s: %w", p, err)
	}
	return d, nil
}

// IsNotFound reports whether err is the agent's 404: a route an older
// agent does not have.
func IsNotFound(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == http.StatusNotFound
}

// do sends a request and turns non-2xx answers into ErrBusy or *APIError.
func (c *Client) do(ctx context.Context, method, path string, body io.Reader, ctype string) (*http.Response, error) {
	return c.doHeader(ctx, method, path, body, ctype, nil)
}

func (c *Client) doHeader(ctx context.Context, method, path string, body io.Reader, ctype string, hdr http.Header) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, fmt.Errorf("build %s %s: %w", method, path, err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp, nil
	}
	defer resp.Body.Close()
	var e api.Error
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	msg := strings.TrimSpace(string(b))
	if json.Unmarshal(b, &e) == nil && e.Error != "" {
		msg = e.Error
	}
	switch resp.StatusCode {
	case http.StatusConflict:
		return nil, fmt.Errorf("%s %s: %w: %s", method, path, ErrBusy, msg)
	case http.StatusNotFound:
		if strings.HasPrefix(path, "/runs/") {
			return nil, fmt.Errorf("%s %s: %w: %s", method, path, ErrNoRun, msg)
		}
	case http.StatusGone:
		return nil, fmt.Errorf("%s %s: %w: %s", method, path, ErrTrimmed, msg)
	}
	return nil, &APIError{Status: resp.StatusCode, Message: msg}
}

// Stream is a run's event stream. Not safe for concurrent use.
type Stream struct {
	body io.ReadCloser
	src  io.Reader // body, or body flushing a relay's writer first
	r    *sse.Reader
	done *api.Done
}

// streamSource reads the stream's current source (see BeforeRead).
type streamSource struct{ s *Stream }

func (r streamSource) Read(p []byte) (int, error) { return r.s.src.Read(p) }

// BeforeRead makes the stream call f before every read from the agent's
// connection, that is whenever Next has no complete event buffered and may
// block: a relay that passes events on unflushed (sse.Writer.BufferEvent)
// flushes there, once per burst instead of once per event, never holding
// an event back while it waits (see sse.FlushBeforeRead).
func (s *Stream) BeforeRead(f func()) { s.src = sse.BeforeRead(s.body, f) }

// Next returns the next event; io.EOF after the stream ended. When it
// returns the EventDone event, Done reports its payload.
func (s *Stream) Next() (sse.Event, error) {
	ev, err := s.r.Next()
	if err != nil {
		return ev, err
	}
	if ev.Event == api.EventDone {
		var d api.Done
		if err := json.Unmarshal([]byte(ev.Data), &d); err != nil {
			return ev, fmt.Errorf("decode done event: %w", err)
		}
		s.done = &d
	}
	return ev, nil
}

// Done is the final event's payload once Next returned it, nil before. A
// stream that ends without one was cut (the agent died or the connection
// broke).
func (s *Stream) Done() *api.Done { return s.done }

// Body is the raw event stream, for relays that pass bytes on unparsed.
// Do not mix reading it with Next.
func (s *Stream) Body() io.Reader { return s.body }

// Close ends the stream; an unfinished run is killed by the agent.
func (s *Stream) Close() error { return s.body.Close() }
