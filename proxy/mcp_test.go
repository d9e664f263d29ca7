package proxy_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/workspaced/workspaced/proxy"
	"github.com/workspaced/workspaced/proxy/admin"
)

const injected = "Bearer mcp-secret-token"

// D1, D2, D3 on the gateway route: the upstream sees exactly the injected
// value, whatever the client sent, and no hop-by-hop or Proxy-* header.
func TestMCPGatewayInjects(t *testing.T) {
	w := newWorld(t, nil)
	req := "POST /mcp/mcp.example.com/mcp/tools?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n" +
		"Authorization: Bearer client-forged\r\nConnection: Authorization, X-Keep\r\n" +
		"Proxy-Authorization: Basic cHJveHk6c2VjcmV0\r\nProxy-Connection: keep-alive\r\nKeep-Alive: timeout=5\r\n" +
		"TE: trailers\r\nUpgrade: websocket\r\nX-Keep: 1\r\nContent-Length: 2\r\n\r\n{}"
	resp, body := w.raw(req)
	if resp.StatusCode != http.StatusOK || body != "upstream ok" {
		t.Fatalf("status %d %q", resp.StatusCode, body)
	}
	reqs := w.mcp.requests()
	if len(reqs) != 1 {
		t.Fatalf("upstream saw %d requests", len(reqs))
	}
	got := reqs[0]
	if v := got.Header.Values("Authorization"); len(v) != 1 || v[0] != injected {
		t.Fatalf("upstream Authorization %q; want exactly the injected value", v)
	}
	for _, h := range []string{"Proxy-Authorization", "Proxy-Connection", "Keep-Alive", "Te", "Upgrade", "Connection", "X-Keep"} {
		if v := got.Header.Get(h); v != "" {
			t.Errorf("upstream saw %s: %q", h, v)
		}
	}
	if !got.TLS || got.Host != "mcp.example.com" || got.RequestURI != "/mcp/tools?x=1" {
		t.Fatalf("upstream saw TLS=%v Host=%q URI=%q", got.TLS, got.Host, got.RequestURI)
	}
}

// The absolute-form variant: http:// to a rule's host is upgraded to
// https with injection (an HTTP_PROXY client writing http:// URLs).
func TestMCPAbsoluteFormUpgradedAndInjected(t *testing.T) {
	w := newWorld(t, nil)
	resp, body := w.raw("GET http://mcp.example.com/mcp/sse HTTP/1.1\r\nHost: mcp.example.com\r\nAuthorization: Bearer forged\r\n\r\n")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d %s", resp.StatusCode, body)
	}
	reqs := w.mcp.requests()
	if len(reqs) != 1 || !reqs[0].TLS || reqs[0].Header.Get("Authorization") != injected {
		t.Fatalf("upstream saw %+v", reqs)
	}
}

// Principle 4: a redirect goes back to the client; the proxy never
// follows it, so injected headers never reach the redirect target.
func TestMCPRedirectNotFollowed(t *testing.T) {
	w := newWorld(t, nil)
	w.mcp.srv.Config.Handler = http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		http.Redirect(rw, r, "https://allowed.example/steal", http.StatusFound)
	})
	resp, _ := w.raw("GET /mcp/mcp.example.com/mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "https://allowed.example/steal" {
		t.Fatalf("status %d location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if n := len(w.tls.requests()); n != 0 {
		t.Fatalf("redirect target saw %d requests", n)
	}
}

// Rules set after start take effect for the next request (warm pool).
func TestMCPSetRulesInProcess(t *testing.T) {
	w := newWorld(t, func(o *proxy.Options) { o.Rules = nil })
	deny, _ := w.raw("GET /mcp/mcp.example.com/mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
	if deny.StatusCode != http.StatusForbidden {
		t.Fatalf("before rules: %d", deny.StatusCode)
	}
	rules, _ := parseRules(`[{"host":"mcp.example.com","path_prefix":"/mcp","headers":{"Authorization":"Bearer v1"}}]`)
	if err := w.proxy.SetRules("", rules); err != nil {
		t.Fatal(err)
	}
	w.raw("GET /mcp/mcp.example.com/mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
	rules[0].Headers = map[string]string{"Authorization": "Bearer v2"}
	if err := w.proxy.SetRules("", rules); err != nil {
		t.Fatal(err)
	}
	w.raw("GET /mcp/mcp.example.com/mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
	reqs := w.mcp.requests()
	if len(reqs) != 2 || reqs[0].Header.Get("Authorization") != "Bearer v1" || reqs[1].Header.Get("Authorization") != "Bearer v2" {
		t.Fatalf("upstream saw %+v", reqs)
	}
	bad, _ := parseRules(`[]`)
	bad = append(bad, proxy.MCPRule{Host: "*", Headers: map[string]string{"A": "b"}})
	if err := w.proxy.SetRules("", bad); err == nil {
		t.Fatal("invalid rules accepted")
	}
	w.raw("GET /mcp/mcp.example.com/mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
	if reqs := w.mcp.requests(); reqs[len(reqs)-1].Header.Get("Authorization") != "Bearer v2" {
		t.Fatal("an invalid rule set changed the rules")
	}
}

// Sidecar: the backend sets rules through the admin API with the derived
// token; a wrong or missing signature, a replayed or stale version, and
// bursts of failures are refused.
func TestMCPSetRulesThroughAdminAPI(t *testing.T) {
	backendKey := []byte("backend-admin-key-0123456789abcdef")
	token := admin.DeriveAdminToken(backendKey, "task-client-token-1")
	w := newWorld(t, func(o *proxy.Options) { o.Rules = nil; o.AdminToken = token })
	base := w.serveAdmin()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rules, _ := parseRules(`[{"host":"mcp.example.com","path_prefix":"/mcp","headers":{"Authorization":"Bearer via-admin"}}]`)

	c := &admin.Client{}
	if err := c.SetRules(ctx, base, admin.DeriveAdminToken(backendKey, "another-task"), rules); err == nil {
		t.Fatal("token of another task accepted")
	}
	if err := c.SetRules(ctx, base, "", rules); err == nil {
		t.Fatal("empty token accepted")
	}
	resp, _ := http.Post(base+admin.RulesPath, "application/json", strings.NewReader(`{"version":1,"rules":[]}`))
	if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("unsigned POST: %d", resp.StatusCode)
	}
	resp.Body.Close()
	req, _ := http.NewRequest(http.MethodPut, base+admin.RulesPath, strings.NewReader(`{"version":1,"rules":[]}`))
	resp, _ = http.DefaultClient.Do(req)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("unsigned PUT: %d", resp.StatusCode)
	}
	resp.Body.Close()
	if r, _ := w.raw("GET /mcp/mcp.example.com/mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"); r.StatusCode != http.StatusForbidden {
		t.Fatalf("refused admin calls changed rules: %d", r.StatusCode)
	}
	if err := c.SetRules(ctx, base, token, rules); err != nil {
		t.Fatalf("valid SetRules: %v", err)
	}
	if r, _ := w.raw("GET /mcp/mcp.example.com/mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"); r.StatusCode != http.StatusOK {
		t.Fatalf("after admin SetRules: %d", r.StatusCode)
	}
	if got := w.mcp.requests(); got[len(got)-1].Header.Get("Authorization") != "Bearer via-admin" {
		t.Fatalf("upstream saw %q", got[len(got)-1].Header.Get("Authorization"))
	}
	// A replayed (older) version is refused; a client whose clock is
	// behind retries above the proxy's version.
	past := &admin.Client{Now: func() time.Time { return time.Now().Add(-time.Minute) }}
	if err := past.SetRules(ctx, base, token, nil); err != nil {
		t.Fatalf("lagging clock should retry above the held version: %v", err)
	}
	if r, _ := w.raw("GET /mcp/mcp.example.com/mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"); r.StatusCode != http.StatusForbidden {
		t.Fatalf("rules cleared through admin still inject: %d", r.StatusCode)
	}
	if !strings.Contains(w.logs.String(), "admin request refused") {
		t.Error("admin failures not logged")
	}
	if strings.Contains(w.logs.String(), token) || strings.Contains(w.logs.String(), "via-admin") {
		t.Error("admin token or rule secret logged")
	}
}

func TestAdminThrottlesFailures(t *testing.T) {
	w := newWorld(t, func(o *proxy.Options) { o.AdminToken = "t" })
	base := w.serveAdmin()
	var last int
	for i := 0; i < 12; i++ {
		req, _ := http.NewRequest(http.MethodPut, base+admin.RulesPath, strings.NewReader(`{}`))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		last = resp.StatusCode
	}
	if last != http.StatusTooManyRequests {
		t.Fatalf("after 12 failures: %d; want 429", last)
	}
}

func (w *world) serveAdmin() string {
	w.t.Helper()
	ln, err := listenLoopback()
	if err != nil {
		w.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = w.proxy.ServeAdmin(ln) }()
	w.t.Cleanup(func() { _ = ln.Close(); <-done })
	return "http://" + ln.Addr().String()
}
