package main

import (
	"context"
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

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// B5: dangerous allowlist entries stop the proxy at startup.
func TestConfigRejectsDangerousAllowlist(t *testing.T) {
	t.Parallel()
	for _, e := range []string{"*", "*.", "*example.com", "api.*.example.com", "https://x", "x/path", "x:443", "*.com"} {
		if _, err := parseConfig(env(map[string]string{"PROXY_DOMAIN_WHITELIST": "ok.example," + e})); err == nil ||
			!strings.Contains(err.Error(), "PROXY_DOMAIN_WHITELIST") {
			t.Errorf("entry %q: err = %v", e, err)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	for name, m := range map[string]map[string]string{
		"bad rules":        {"MCP_HEADER_RULES": `[{"host":"*","headers":{"a":"b"}}]`},
		"rules not json":   {"MCP_HEADER_RULES": `{`},
		"admin no token":   {"PROXY_ADMIN_LISTEN": "127.0.0.1:0"},
		"admin short":      {"PROXY_ADMIN_LISTEN": "127.0.0.1:0", "PROXY_ADMIN_TOKEN": "short"},
		"bad port":         {"PROXY_LISTEN_PORT": "http"},
		"bad allowed port": {"PROXY_ALLOWED_PORTS": "443,0"},
		"bad duration":     {"PROXY_DIAL_TIMEOUT": "soon"},
		"bad limit":        {"PROXY_MAX_TUNNELS": "-1"},
		"bad bool":         {"PROXY_LOG_ALL_REQUESTS": "maybe"},
		"bad upstream":     {"BEDROCK_UPSTREAM_URL": "ftp://x"},
	} {
		if _, err := parseConfig(env(m)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	c, err := parseConfig(env(map[string]string{
		"PROXY_DOMAIN_WHITELIST": "api.github.com, *.pypi.org",
		"MCP_HEADER_RULES":       `[{"host":"mcp.example.com","headers":{"Authorization":"Bearer x"}}]`,
		"PROXY_ALLOWED_PORTS":    "443",
		"PROXY_DIAL_TIMEOUT":     "3s",
		"AWS_REGION":             "us-west-2",
	}))
	if err != nil || c.Listen != "127.0.0.1:8080" || c.Options.Allowlist.Len() != 2 || len(c.Options.Rules) != 1 ||
		c.Options.Limits.DialTimeout != 3*time.Second || !c.BedrockEnabled {
		t.Fatalf("valid config: %+v %v", c, err)
	}
}

// run serves until its context ends (SIGTERM in main) and then returns nil.
func TestRunServesAndShutsDown(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, env(map[string]string{"PROXY_LISTEN_PORT": "0", "PROXY_DOMAIN_WHITELIST": "ok.example"}), io.Discard, ready)
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
