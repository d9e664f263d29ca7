package handlers_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/workspaced/workspaced/handlers"
	"github.com/workspaced/workspaced/internal/redistest"
	"github.com/workspaced/workspaced/sse"
)

// serveReal serves e's API the way cmd/workspaced does (HTTPServer on
// Listener) on 127.0.0.1 and returns its address; closed at cleanup.
func serveReal(t *testing.T, e *env) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := e.srv.HTTPServer()
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = hs.Serve(e.srv.Listener(ln))
	}()
	t.Cleanup(func() {
		e.srv.Abort()
		_ = hs.Close()
		<-served
	})
	return ln.Addr().String()
}

// dialFrom opens a TCP connection to addr from the loopback address src
// (127.0.0.0/8 is all local on Linux: each src is another "client").
func dialFrom(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial from %s: %v", src, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// slowResult is what one slow connection saw: the status of the answer
// (0: none), and how long until the server closed the connection.
type slowResult struct {
	status int
	closed time.Duration
	err    error
}

// lie sends a request that declares a 1000-byte body and sends 10 bytes of
// it, then waits for the answer and for the server to close.
func lie(c net.Conn, path, key string) slowResult {
	start := time.Now()
	auth := ""
	if key != "" {
		auth = "Authorization: Bearer " + key + "\r\n"
	}
	_ = c.SetDeadline(start.Add(30 * time.Second)) // the test's own bound
	if _, err := fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\n%sContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"prompt\":", path, auth); err != nil {
		return slowResult{err: err}
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return slowResult{err: fmt.Errorf("read answer: %w", err)}
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	// The server closes: the next read ends (EOF or reset); a timeout
	// (the test's own deadline) means the connection was held open.
	var one [1]byte
	_, err = c.Read(one[:])
	var ne net.Error
	if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
		return slowResult{status: resp.StatusCode, err: fmt.Errorf("connection still open after the answer: %v", err)}
	}
	return slowResult{status: resp.StatusCode, closed: time.Since(start)}
}

// TestFaultSlowClients: 500 lying connections (body declared, never sent;
// half without a key): each answered and closed within the body deadline,
// those without a key at once, normal requests answered throughout. A
// stream outlives the body deadline.
func TestFaultSlowClients(t *testing.T) {
	const (
		slow        = 500
		bodyTimeout = 3 * time.Second
	)
	e := newEnv(t, 3*bodyTimeout, func(o *handlers.Options) {
		o.BodyTimeout = bodyTimeout
		o.HeaderTimeout = bodyTimeout
		o.MaxConnsPerClient = slow // per source address; the liars use two
	})
	addr := serveReal(t, e)

	// Normal requests from 127.0.0.1 throughout.
	stopNormal := make(chan struct{})
	normalDone := make(chan error, 1)
	var normalCount int
	go func() {
		cl := &http.Client{Timeout: 5 * time.Second}
		defer cl.CloseIdleConnections()
		for {
			select {
			case <-stopNormal:
				normalDone <- nil
				return
			default:
			}
			req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/v1/pool", nil)
			req.Header.Set("Authorization", "Bearer "+secret(keyA))
			resp, err := cl.Do(req)
			if err != nil {
				normalDone <- fmt.Errorf("normal request %d: %w", normalCount, err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				normalDone <- fmt.Errorf("normal request %d: status %d", normalCount, resp.StatusCode)
				return
			}
			normalCount++
		}
	}()

	// A stream that lasts longer than the body deadline is not cut by it.
	streamDone := make(chan error, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/conversations/long/execute", strings.NewReader(`{"prompt":"hi"}`))
		req.Header.Set("Authorization", "Bearer "+secret(keyA))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			streamDone <- err
			return
		}
		defer resp.Body.Close()
		var last sse.Event
		rd := sse.NewReader(resp.Body)
		for {
			ev, err := rd.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				streamDone <- fmt.Errorf("stream cut: %w", err)
				return
			}
			last = ev
		}
		if last.Event != "error" || !strings.Contains(last.Data, "provisioning_timeout") {
			streamDone <- fmt.Errorf("stream ended with %+v, want the provisioning_timeout it waits for", last)
			return
		}
		streamDone <- nil
	}()

	conns := make([]net.Conn, slow)
	for i := range conns {
		conns[i] = dialFrom(t, fmt.Sprintf("127.0.0.%d", 2+i%2), addr)
	}
	results := make([]slowResult, slow)
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := ""
			if i%4 < 2 {
				key = secret(keyA)
			}
			results[i] = lie(c, fmt.Sprintf("/v1/conversations/slow%d/execute", i), key)
		}()
	}
	wg.Wait()
	close(stopNormal)
	if err := <-normalDone; err != nil {
		t.Errorf("while %d connections lied: %v", slow, err)
	}
	if err := <-streamDone; err != nil {
		t.Error(err)
	}
	t.Logf("%d normal requests answered while %d connections lied", normalCount, slow)

	var worst [2]time.Duration
	for i, r := range results {
		authed := i%4 < 2
		want := http.StatusUnauthorized
		if authed {
			want = http.StatusRequestTimeout
		}
		if r.err != nil || r.status != want {
			t.Fatalf("connection %d (key %v): status %d, %v; want %d and closed", i, authed, r.status, r.err, want)
		}
		k := 0
		if authed {
			k = 1
		}
		worst[k] = max(worst[k], r.closed)
	}
	t.Logf("slowest close: without key %v, with key %v (body deadline %v)", worst[0], worst[1], bodyTimeout)
	if worst[0] >= bodyTimeout {
		t.Errorf("an unauthenticated lying connection was held %v: it should be answered before any body is read", worst[0])
	}
	if worst[1] > bodyTimeout+5*time.Second {
		t.Errorf("an authenticated lying connection was held %v, past the body deadline %v", worst[1], bodyTimeout)
	}
}

// TestConnectionsPerClientCapped: one address holding MaxConnsPerClient
// connections gets 429 (JSON) on the next one; another address is served.
func TestConnectionsPerClientCapped(t *testing.T) {
	e := newEnv(t, time.Second, func(o *handlers.Options) { o.MaxConnsPerClient = 3 })
	addr := serveReal(t, e)
	for range 3 {
		c := dialFrom(t, "127.0.0.7", addr)
		// A request in flight pins the connection as the server's.
		if _, err := fmt.Fprintf(c, "GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("within the cap: %v %v", resp, err)
		}
		resp.Body.Close()
	}
	over := dialFrom(t, "127.0.0.7", addr)
	_ = over.SetDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(over), nil)
	if err != nil {
		t.Fatalf("over the cap: %v", err)
	}
	if resp.StatusCode != http.StatusTooManyRequests || errorCode(t, resp) != "too_many_connections" {
		t.Fatalf("over the cap: status %d", resp.StatusCode)
	}
	other := dialFrom(t, "127.0.0.8", addr)
	if _, err := fmt.Fprintf(other, "GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	_ = other.SetDeadline(time.Now().Add(10 * time.Second))
	if resp, err := http.ReadResponse(bufio.NewReader(other), nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("another client: %v %v", resp, err)
	}
}

// TestFaultRedisDown: Redis gone: API requests get 503 with Retry-After
// and a JSON body (not 500), readiness 503.
func TestFaultRedisDown(t *testing.T) {
	e := newEnvOn(t, redistest.Start(t), time.Second) // no key audit: its server goes away
	// SHUTDOWN makes the real server exit; the command's own reply is the
	// connection closing.
	_ = e.rdb.Do(context.Background(), "SHUTDOWN", "NOSAVE").Err()
	for _, tt := range []struct{ method, path, body string }{
		{http.MethodPost, "/v1/conversations/c1/execute", `{"prompt":"hi"}`},
		{http.MethodGet, "/v1/conversations/c1", ""},
		{http.MethodDelete, "/v1/conversations/c1", ""},
	} {
		var body io.Reader
		if tt.body != "" {
			body = strings.NewReader(tt.body)
		}
		resp := e.do(t, tt.method, tt.path, secret(keyA), body)
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			t.Errorf("%s %s: status %d, Retry-After %q; want 503 with Retry-After", tt.method, tt.path, resp.StatusCode, resp.Header.Get("Retry-After"))
			continue
		}
		if code := errorCode(t, resp); code != "unavailable" {
			t.Errorf("%s %s: code %q", tt.method, tt.path, code)
		}
	}
	if resp := e.do(t, http.MethodGet, "/health/ready", "", nil); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("ready with Redis down: %d", resp.StatusCode)
	}
}

// TestWrongMethodIs405: a known path with another method answers 405 with
// Allow and a JSON body; an unknown path stays 404.
func TestWrongMethodIs405(t *testing.T) {
	e := newEnv(t, time.Second)
	for _, tt := range []struct {
		method, path, allow string
	}{
		{http.MethodGet, "/v1/conversations/c1/execute", "POST"},
		{http.MethodPut, "/v1/conversations/c1", "DELETE"},
		{http.MethodPost, "/v1/pool", "GET"},
		{http.MethodPost, "/health/ready", "GET"},
	} {
		resp := e.do(t, tt.method, tt.path, secret(keyA), nil)
		if resp.StatusCode != http.StatusMethodNotAllowed || !strings.Contains(resp.Header.Get("Allow"), tt.allow) {
			t.Errorf("%s %s: status %d, Allow %q; want 405 with %s", tt.method, tt.path, resp.StatusCode, resp.Header.Get("Allow"), tt.allow)
			continue
		}
		if code := errorCode(t, resp); code != "method_not_allowed" {
			t.Errorf("%s %s: code %q", tt.method, tt.path, code)
		}
	}
	if resp := e.do(t, http.MethodGet, "/v1/nothing", secret(keyA), nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown path: %d", resp.StatusCode)
	}
}

// TestDrainRefusesNewRequests: while draining, readiness is 503, a new API
// request gets 503 shutting_down with Retry-After, an open stream goes on,
// and Drained fires once it ends.
func TestDrainRefusesNewRequests(t *testing.T) {
	e := newEnv(t, time.Minute)
	resp := e.do(t, http.MethodPost, "/v1/conversations/d1/execute", secret(keyA), strings.NewReader(`{"prompt":"hi"}`))
	rd := sse.NewReader(resp.Body)
	for { // the run's first events ("run", then a status while it waits)
		ev, err := rd.Next()
		if err != nil {
			t.Fatalf("stream ended before its first status: %v", err)
		}
		if ev.Event == "status" {
			break
		}
	}
	e.srv.Drain()
	select {
	case <-e.srv.Drained():
		t.Fatal("drained while a stream is open")
	default:
	}
	if r := e.do(t, http.MethodGet, "/health/ready", "", nil); r.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("ready while draining: %d", r.StatusCode)
	}
	r := e.do(t, http.MethodGet, "/v1/pool", secret(keyA), nil)
	if r.StatusCode != http.StatusServiceUnavailable || r.Header.Get("Retry-After") == "" || errorCode(t, r) != "shutting_down" {
		t.Errorf("new request while draining: %d", r.StatusCode)
	}
	e.srv.Abort()
	for {
		if _, err := rd.Next(); err != nil {
			break
		}
	}
	select {
	case <-e.srv.Drained():
	case <-time.After(10 * time.Second):
		t.Fatal("not drained after the last stream ended")
	}
}
