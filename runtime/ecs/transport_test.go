package ecs_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/workspaced/workspaced/internal/ecsdouble"
)

func TestTransport(t *testing.T) {
	t.Parallel()
	agent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.Method+" "+r.URL.Path)
	}))
	defer agent.Close()
	f := newFixture(t, ecsdouble.Options{})
	endpoint := agent.URL // http://127.0.0.1:<port>, like http://<task ip>:9000
	tr, err := f.rt.Transport(endpoint)
	if err != nil {
		t.Fatalf("Transport(%s): %v", endpoint, err)
	}
	c := &http.Client{Transport: tr}
	defer c.CloseIdleConnections()
	// Any host in the request goes to the pinned agent.
	for _, u := range []string{endpoint + "/health", "http://workspace/health"} {
		resp, err := c.Get(u)
		if err != nil {
			t.Fatalf("GET %s: %v", u, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != "GET /health" {
			t.Errorf("GET %s reached %q", u, body)
		}
	}
	for _, bad := range []string{
		"unix:///run/agent.sock", "http://workspace:9000", "http://10.0.0.5", "http://10.0.0.5:0",
		"http://10.0.0.5:9000/api", "https://10.0.0.5:9000", "http://u:p@10.0.0.5:9000", "",
	} {
		if _, err := f.rt.Transport(bad); err == nil || !strings.Contains(err.Error(), "transport for") {
			t.Errorf("Transport(%q) = %v, want an error", bad, err)
		}
	}
}
