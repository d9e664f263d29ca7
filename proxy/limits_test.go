package proxy_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/workspaced/workspaced/proxy"
)

func TestHealth(t *testing.T) {
	w := newWorld(t, nil)
	resp, body := w.raw("GET /health HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n")
	if resp.StatusCode != http.StatusOK || body != "ok\n" {
		t.Fatalf("health: %d %q", resp.StatusCode, body)
	}
	// Absolute-form to the health path is a forward request, not health.
	resp, _ = w.raw(get("http://127.0.0.1:8080/health"))
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("absolute-form health: %d", resp.StatusCode)
	}
}

// D3 on the plain forward route.
func TestForwardStripsHopByHop(t *testing.T) {
	w := newWorld(t, nil)
	resp, body := w.raw("GET http://allowed.example/path?q=1 HTTP/1.1\r\nHost: allowed.example\r\n" +
		"Proxy-Authorization: Basic eDp5\r\nProxy-Connection: keep-alive\r\nKeep-Alive: 5\r\nTE: trailers\r\n" +
		"Upgrade: h2c\r\nConnection: Upgrade, X-Hop\r\nX-Hop: 1\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n")
	if resp.StatusCode != http.StatusOK || body != "upstream ok" {
		t.Fatalf("status %d %q", resp.StatusCode, body)
	}
	reqs := w.plain.requests()
	if len(reqs) != 1 {
		t.Fatalf("upstream saw %d", len(reqs))
	}
	for _, h := range []string{"Proxy-Authorization", "Proxy-Connection", "Keep-Alive", "Te", "Upgrade", "Connection", "X-Hop", "X-Forwarded-For"} {
		if v := reqs[0].Header.Get(h); v != "" {
			t.Errorf("upstream saw %s: %q", h, v)
		}
	}
	if reqs[0].Host != "allowed.example" || reqs[0].RequestURI != "/path?q=1" {
		t.Fatalf("upstream saw host %q uri %q", reqs[0].Host, reqs[0].RequestURI)
	}
}

// A CONNECT tunnel carries a real TLS session end to end.
func TestConnectTunnelTLS(t *testing.T) {
	w := newWorld(t, nil)
	c := w.tunnel("api.allowed.example:443")
	defer c.Close()
	tc := tls.Client(c, &tls.Config{ServerName: "api.allowed.example", RootCAs: w.rootPool()})
	if _, err := io.WriteString(tc, "GET /tunnelled HTTP/1.1\r\nHost: api.allowed.example\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(tc), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(body) != "upstream ok" {
		t.Fatalf("through tunnel: %d %q", resp.StatusCode, body)
	}
}

// tunnel opens a CONNECT tunnel and returns the raw connection after 200.
func (w *world) tunnel(target string) net.Conn {
	w.t.Helper()
	c, err := net.Dial("tcp", w.addr)
	if err != nil {
		w.t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil || resp.StatusCode != 200 {
		w.t.Fatalf("CONNECT %s: %v %v", target, resp, err)
	}
	if br.Buffered() != 0 {
		w.t.Fatal("unexpected bytes after 200")
	}
	return c
}

// E4: header blocks over the limits get 431.
func TestHeaderLimits(t *testing.T) {
	w := newWorld(t, nil)
	big := strings.Repeat("a", 17<<10)
	resp, _ := w.raw("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + big + "\r\n\r\n")
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("16 KiB: %d", resp.StatusCode)
	}
	mid := strings.Repeat("a", 9<<10)
	resp, _ = w.raw("CONNECT allowed.example:443 HTTP/1.1\r\nHost: allowed.example:443\r\nX-Big: " + mid + "\r\n\r\n")
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("CONNECT 8 KiB: %d", resp.StatusCode)
	}
	if dials, _, _ := w.net.snapshot(); len(dials) != 0 {
		t.Fatalf("dialed %v", dials)
	}
	// The same 9 KiB header is fine on a normal request.
	resp, _ = w.raw("GET http://allowed.example/ HTTP/1.1\r\nHost: allowed.example\r\nX-Big: " + mid + "\r\n\r\n")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("9 KiB GET: %d", resp.StatusCode)
	}
}

// G2: a client trickling its headers is disconnected at the header
// timeout.
func TestSlowlorisClosedAtHeaderTimeout(t *testing.T) {
	w := newWorld(t, func(o *proxy.Options) { o.Limits.ReadHeaderTimeout = 200 * time.Millisecond })
	c, err := net.Dial("tcp", w.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second)) // test deadline, far beyond the limit
	if _, err := io.WriteString(c, "GET /health HTTP/1.1\r\nHost: 127"); err != nil {
		t.Fatal(err)
	}
	// The proxy must end the connection on its own; the read returns EOF
	// (or a 408) long before the test deadline.
	buf := make([]byte, 1024)
	var readErr error
	for readErr == nil {
		_, readErr = c.Read(buf)
	}
	var ne net.Error
	if errors.As(readErr, &ne) && ne.Timeout() {
		t.Fatal("connection still open at the test deadline: no header timeout")
	}
}

// G4: dial timeout → 504.
func TestDialTimeout(t *testing.T) {
	w := newWorld(t, func(o *proxy.Options) { o.Limits.DialTimeout = 100 * time.Millisecond })
	resp, _ := w.raw(connect("slow.example:443"))
	if resp.StatusCode != http.StatusGatewayTimeout || resp.Header.Get("X-Proxy-Error") != "dial_timeout" {
		t.Fatalf("status %d %q", resp.StatusCode, resp.Header.Get("X-Proxy-Error"))
	}
	resp, _ = w.raw(get("http://slow.example:443/"))
	if resp.StatusCode != http.StatusGatewayTimeout {
		t.Fatalf("forward: status %d %q", resp.StatusCode, resp.Header.Get("X-Proxy-Error"))
	}
}

// A13: the resolver answers public, then loopback; every connection lands
// on the address that was checked for that request.
func TestDNSRebinding(t *testing.T) {
	w := newWorld(t, nil)
	for i := 0; i < 4; i++ {
		resp, _ := w.raw(connect("rebind.example:443"))
		want := http.StatusOK
		if i%2 == 1 {
			want = http.StatusForbidden
		}
		if resp.StatusCode != want {
			t.Fatalf("round %d: %d; want %d", i, resp.StatusCode, want)
		}
	}
	dials, strays, _ := w.net.snapshot()
	for _, d := range dials {
		if d != "93.184.216.34:443" {
			t.Fatalf("dialed %s", d)
		}
	}
	if len(dials) != 2 || len(strays) != 0 {
		t.Fatalf("dials %v strays %v", dials, strays)
	}
}

// D9: secrets in any header or query string never reach a log line.
func TestSecretsNeverLogged(t *testing.T) {
	w := newWorld(t, func(o *proxy.Options) { o.LogAllRequests = true })
	secrets := []string{"sekrit-authz", "sekrit-token", "sekrit-proxyauth", "sekrit-query", "mcp-secret-token", testCreds.SecretAccessKey, testCreds.SessionToken}
	hdrs := "Authorization: Bearer sekrit-authz\r\nX-Amz-Security-Token: sekrit-token\r\nProxy-Authorization: Basic sekrit-proxyauth\r\n"
	for _, req := range []string{
		"GET http://allowed.example/?token=sekrit-query HTTP/1.1\r\nHost: allowed.example\r\n" + hdrs + "\r\n",
		"GET http://denied.example/?token=sekrit-query HTTP/1.1\r\nHost: denied.example\r\n" + hdrs + "\r\n",
		"GET /mcp/mcp.example.com/mcp?token=sekrit-query HTTP/1.1\r\nHost: 127.0.0.1\r\n" + hdrs + "\r\n",
		"POST /model/m/invoke?token=sekrit-query HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n" + hdrs + "\r\n",
		"POST /model/m/invoke HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n" + hdrs + "\r\n",
		"CONNECT allowed.example:22 HTTP/1.1\r\nHost: x\r\n" + hdrs + "\r\n",
		"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n" + hdrs + "\r\n",
	} {
		w.raw(req)
	}
	logs := w.logs.waitCount("proxy decision", 7, 10*time.Second)
	if strings.Count(logs, "proxy decision") < 7 {
		t.Fatalf("expected an audit line per request:\n%s", logs)
	}
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			t.Errorf("secret %q logged", s)
		}
	}
}

// Idle tunnels are closed; busy ones are not limited by any global write
// timeout.
func TestTunnelIdleTimeout(t *testing.T) {
	w := newWorld(t, func(o *proxy.Options) { o.Limits.TunnelIdleTimeout = 200 * time.Millisecond })
	c := w.tunnel("allowed.example:443")
	defer c.Close()
	buf := make([]byte, 1)
	_, err := c.Read(buf) // nothing is sent: the proxy must close the tunnel
	var ne net.Error
	if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
		t.Fatalf("tunnel not closed by the idle timeout: %v", err)
	}
}

func TestMaxTunnels(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := proxy.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	w := newWorld(t, func(o *proxy.Options) { o.Limits.MaxTunnels = 2; o.Metrics = m })
	a, b := w.tunnel("allowed.example:443"), w.tunnel("api.allowed.example:443")
	resp, _ := w.raw(connect("b.allowed.example:443"))
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("X-Proxy-Error") != "too_many_tunnels" {
		t.Fatalf("third tunnel: %d", resp.StatusCode)
	}
	// The gauge moves when a tunnel's goroutine starts relaying, which may
	// be just after its 200 reached the client: wait for it, bounded.
	deadline := time.Now().Add(5 * time.Second)
	for metricValue(m.ActiveTunnels) != 2 && time.Now().Before(deadline) {
		runtime.Gosched()
	}
	if v := metricValue(m.ActiveTunnels); v != 2 {
		t.Fatalf("active tunnels gauge %v", v)
	}
	a.Close()
	b.Close()
	if n := metricValue(m.Decisions.WithLabelValues("connect", "deny", "too_many_tunnels")); n != 1 {
		t.Fatalf("decision metric %v", n)
	}
}

func metricValue(c prometheus.Metric) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	switch {
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Counter != nil:
		return m.Counter.GetValue()
	}
	return -1
}

// DNS timeout → 504 dns_timeout; nothing dialed.
func TestDNSTimeout(t *testing.T) {
	w := newWorld(t, func(o *proxy.Options) { o.Limits.DNSTimeout = 100 * time.Millisecond })
	resp, _ := w.raw(connect("slowdns.allowed.example:443"))
	if resp.StatusCode != http.StatusGatewayTimeout || resp.Header.Get("X-Proxy-Error") != "dns_timeout" {
		t.Fatalf("status %d %q", resp.StatusCode, resp.Header.Get("X-Proxy-Error"))
	}
	if dials, _, _ := w.net.snapshot(); len(dials) != 0 {
		t.Fatalf("dialed %v", dials)
	}
}

// An upstream that accepts but never answers → 504 at the response-header
// timeout; a streaming upstream that already answered is not cut by it.
func TestResponseHeaderTimeout(t *testing.T) {
	hold := make(chan struct{})
	defer close(hold)
	w := newWorld(t, func(o *proxy.Options) { o.Limits.ResponseHeaderTimeout = 200 * time.Millisecond })
	silent := newUpstream(t, false, nil, func(rw http.ResponseWriter, r *http.Request) {
		select {
		case <-hold:
		case <-r.Context().Done():
		}
	})
	w.net.route("93.184.216.41:80", silent.addr())
	resp, _ := w.raw(get("http://silent.allowed.example/"))
	if resp.StatusCode != http.StatusGatewayTimeout {
		t.Fatalf("status %d %q", resp.StatusCode, resp.Header.Get("X-Proxy-Error"))
	}
}

type blockingProvider struct{}

func (blockingProvider) Retrieve(ctx context.Context) (aws.Credentials, error) {
	<-ctx.Done()
	return aws.Credentials{}, ctx.Err()
}

// Credential retrieval that hangs → 503 at the credential timeout, never
// an unsigned request.
func TestCredentialTimeout(t *testing.T) {
	w := newWorld(t, func(o *proxy.Options) {
		o.Bedrock.Credentials = blockingProvider{}
		o.Limits.CredentialTimeout = 100 * time.Millisecond
	})
	resp, _ := w.raw(originReq("POST", "/model/m/invoke", "127.0.0.1"))
	if resp.StatusCode != http.StatusServiceUnavailable || w.bedrock.Conns() != 0 {
		t.Fatalf("status %d, upstream conns %d", resp.StatusCode, w.bedrock.Conns())
	}
}

// The client keep-alive idle timeout closes an idle client connection.
func TestClientIdleTimeout(t *testing.T) {
	w := newWorld(t, func(o *proxy.Options) { o.Limits.IdleTimeout = 200 * time.Millisecond })
	c, err := net.Dial("tcp", w.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(c)
	io.WriteString(c, "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("unexpected data")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("idle keep-alive connection not closed")
	}
}
