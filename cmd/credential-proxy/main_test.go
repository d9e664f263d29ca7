package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if os.Getenv(innerEnv) == "1" {
		os.Exit(blackboxInner())
	}
	goleak.VerifyTestMain(m)
}

// B5: dangerous allowlist entries stop the proxy at startup.
func TestConfigRejectsDangerousAllowlist(t *testing.T) {
	t.Parallel()
	for _, e := range []string{"*", "*.", "*example.com", "api.*.example.com", "https://x", "x/path", "x:443", "*.com"} {
		if _, err := parseConfig(map[string]string{"PROXY_DOMAIN_WHITELIST": "ok.example," + e}); err == nil ||
			!strings.Contains(err.Error(), "PROXY_DOMAIN_WHITELIST") {
			t.Errorf("entry %q: err = %v", e, err)
		}
	}
}

// Every bad value stops startup with an error naming its variable.
func TestConfigErrorsNameTheVariable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		env     map[string]string
		wantVar string
	}{
		{"bad rules", map[string]string{"MCP_HEADER_RULES": `[{"host":"*","headers":{"a":"b"}}]`}, "MCP_HEADER_RULES"},
		{"rules not json", map[string]string{"MCP_HEADER_RULES": `{`}, "MCP_HEADER_RULES"},
		{"admin no token", map[string]string{"PROXY_ADMIN_LISTEN": "127.0.0.1:0"}, "PROXY_ADMIN_TOKEN"},
		{"admin short", map[string]string{"PROXY_ADMIN_LISTEN": "127.0.0.1:0", "PROXY_ADMIN_TOKEN": "short"}, "PROXY_ADMIN_TOKEN"},
		{"bad port", map[string]string{"PROXY_LISTEN_PORT": "http"}, "PROXY_LISTEN_PORT"},
		{"port out of range", map[string]string{"PROXY_LISTEN_PORT": "70000"}, "PROXY_LISTEN_PORT"},
		{"bad allowed port", map[string]string{"PROXY_ALLOWED_PORTS": "443,0"}, "PROXY_ALLOWED_PORTS"},
		{"bad duration", map[string]string{"PROXY_DIAL_TIMEOUT": "soon"}, "PROXY_DIAL_TIMEOUT"},
		{"zero duration", map[string]string{"PROXY_DIAL_TIMEOUT": "0s"}, "PROXY_DIAL_TIMEOUT"},
		{"bad limit", map[string]string{"PROXY_MAX_TUNNELS": "-1"}, "PROXY_MAX_TUNNELS"},
		{"bad bool", map[string]string{"PROXY_LOG_ALL_REQUESTS": "maybe"}, "PROXY_LOG_ALL_REQUESTS"},
		{"bad upstream", map[string]string{"BEDROCK_UPSTREAM_URL": "ftp://x"}, "BEDROCK_UPSTREAM_URL"},
		{"bad level", map[string]string{"PROXY_LOG_LEVEL": "loud"}, "PROXY_LOG_LEVEL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := parseConfig(tt.env)
			if err == nil || !strings.Contains(err.Error(), tt.wantVar) {
				t.Fatalf("err = %v, want one naming %s", err, tt.wantVar)
			}
		})
	}
}

func TestConfigValid(t *testing.T) {
	t.Parallel()
	c, err := parseConfig(map[string]string{
		"PROXY_DOMAIN_WHITELIST": "api.github.com, *.pypi.org",
		"MCP_HEADER_RULES":       `[{"host":"mcp.example.com","headers":{"Authorization":"Bearer x"}}]`,
		"PROXY_ALLOWED_PORTS":    "443",
		"PROXY_DIAL_TIMEOUT":     "3s",
		"AWS_REGION":             "us-west-2",
	})
	if err != nil || c.ListenAddr() != "127.0.0.1:8080" || c.Options.Allowlist.Len() != 2 || len(c.Options.Rules) != 1 ||
		c.Options.Limits.DialTimeout != 3*time.Second || !c.BedrockEnabled || c.Options.AdminToken != "" {
		t.Fatalf("valid config: %+v %v", c, err)
	}
	// The MCP rules' header values are credentials: never printed.
	if s := fmt.Sprintf("%v %+v %#v", c.Sidecar, c.Sidecar, c.MCPRules); strings.Contains(s, "Bearer x") {
		t.Fatalf("rules printed: %s", s)
	}
}

// run serves until its context ends (SIGTERM in main) and then returns nil.
func TestRunServesAndShutsDown(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, map[string]string{"PROXY_LISTEN_PORT": "0", "PROXY_DOMAIN_WHITELIST": "ok.example"}, io.Discard, ready)
	}()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("run: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("not ready")
	}
	hc := &http.Client{Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()
	resp, err := hc.Get("http://" + addr + "/health")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("health: %v %v", resp, err)
	}
	resp.Body.Close()
	// No AWS_REGION: Bedrock fails closed.
	resp, err = hc.Post("http://"+addr+"/model/m/invoke", "application/json", strings.NewReader("{}"))
	if err != nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("bedrock without region: %v %v", resp, err)
	}
	resp.Body.Close()
	hc.CloseIdleConnections()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run returned %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return after cancel")
	}
}
