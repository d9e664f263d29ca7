package proxy_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/workspaced/workspaced/proxy"
)

// TestFaultProxyRefusalsInsideNetHTTP: proxy input net/http refuses before
// any handler (two Content-Lengths, bad Transfer-Encoding, oversized
// headers, no Host): JSON refusal, audit line, decisions_total count. With
// X-Proxy-Error; nothing is dialed.
func TestFaultProxyRefusalsInsideNetHTTP(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := proxy.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	w := newWorld(t, func(o *proxy.Options) { o.Metrics = m })
	tests := []struct {
		name   string
		req    string
		status int
		reason string
	}{
		{"double content-length", "POST http://allowed.example/ HTTP/1.1\r\nHost: allowed.example\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400, "malformed_request"},
		{"unknown transfer-encoding", "POST http://allowed.example/ HTTP/1.1\r\nHost: allowed.example\r\nTransfer-Encoding: gzip\r\n\r\n", 501, "bad_transfer_encoding"},
		{"chunked not last", "POST http://allowed.example/ HTTP/1.1\r\nHost: allowed.example\r\nTransfer-Encoding: chunked, identity\r\n\r\n", 501, "bad_transfer_encoding"},
		{"header block over the limit", "GET http://allowed.example/ HTTP/1.1\r\nHost: allowed.example\r\nX-Big: " + strings.Repeat("a", 64<<10) + "\r\n\r\n", 431, "header_too_large"},
		{"no host", "GET /health HTTP/1.1\r\n\r\n", 400, "malformed_request"},
		{"bad header line", "GET http://allowed.example/ HTTP/1.1\r\nHost: allowed.example\r\nno colon here\r\n\r\n", 400, "malformed_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := w.raw(tt.req)
			if resp.StatusCode != tt.status || resp.Header.Get("X-Proxy-Error") != tt.reason {
				t.Fatalf("status %d, X-Proxy-Error %q; want %d %s (body %q)", resp.StatusCode, resp.Header.Get("X-Proxy-Error"), tt.status, tt.reason, body)
			}
			var js struct {
				Error, Message string
				RequestID      string `json:"request_id"`
			}
			if err := json.Unmarshal([]byte(body), &js); err != nil || js.Error != tt.reason || js.Message == "" {
				t.Fatalf("body %q: %v", body, err)
			}
			if js.RequestID == "" {
				t.Fatalf("body %q has no request_id", body)
			}
			logs := w.logs.waitCount(`"reason":"`+tt.reason+`"`, 1, 5*time.Second)
			if !strings.Contains(logs, `"request_id":"`+js.RequestID+`"`) {
				t.Fatalf("no audit line for request %s:\n%s", js.RequestID, logs)
			}
		})
	}
	for _, reason := range []string{"malformed_request", "bad_transfer_encoding", "header_too_large"} {
		want := 0.0
		for _, tt := range tests {
			if tt.reason == reason {
				want++
			}
		}
		if got := metricValue(m.Decisions.WithLabelValues("invalid", "deny", reason)); got != want {
			t.Errorf("decisions_total{route=invalid,decision=deny,reason=%s} = %v, want %v", reason, got, want)
		}
	}
	if dials, _, _ := w.net.snapshot(); len(dials) != 0 {
		t.Fatalf("dialed %v", dials)
	}
	// The proxy still serves.
	if resp, _ := w.raw("GET http://allowed.example/ HTTP/1.1\r\nHost: allowed.example\r\n\r\n"); resp.StatusCode != http.StatusOK {
		t.Fatalf("after the refusals: %d", resp.StatusCode)
	}
}
