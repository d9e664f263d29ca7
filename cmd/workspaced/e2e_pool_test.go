package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/workspaced/workspaced/config"
	"github.com/workspaced/workspaced/proxy"
	"github.com/workspaced/workspaced/store"
)

// mcpUpstream is an MCP server stand-in: TLS, answering with the
// Authorization header it received. The proxy reaches it as
// https://example.com (the name its test certificate carries) through a
// fake resolver and dialer, so nothing leaves the machine.
type mcpUpstream struct {
	srv *httptest.Server
}

// mcpPublicIP is what the fake resolver answers for example.com: a public
// address (the egress policy refuses loopback), routed to the test server.
var mcpPublicIP = netip.MustParseAddr("93.184.216.34")

func newMCPUpstream(t *testing.T) *mcpUpstream {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "auth=%s path=%s", r.Header.Get("Authorization"), r.URL.Path)
	}))
	t.Cleanup(srv.Close)
	return &mcpUpstream{srv: srv}
}

// proxyOptions routes the in-process proxy's upstream dials to the server.
func (u *mcpUpstream) proxyOptions(o *proxy.Options) {
	roots := x509.NewCertPool()
	roots.AddCert(u.srv.Certificate())
	o.UpstreamTLS = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	o.Resolver = fakeResolver{}
	real := u.srv.Listener.Addr().String()
	o.Dial = func(ctx context.Context, network, address string) (net.Conn, error) {
		if address != netip.AddrPortFrom(mcpPublicIP, 443).String() {
			return nil, fmt.Errorf("test network: %s is unreachable", address)
		}
		var d net.Dialer
		return d.DialContext(ctx, network, real)
	}
}

type fakeResolver struct{}

func (fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if strings.TrimSuffix(host, ".") == "example.com" {
		return []netip.Addr{mcpPublicIP}, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// mcpBody is an execute body that runs argv with an MCP config whose one
// server carries token.
func mcpBody(t *testing.T, token string, argv ...string) string {
	b, err := json.Marshal(map[string]any{
		"kind": "command", "argv": argv,
		"mcp_config": map[string]any{"mcpServers": map[string]any{"docs": map[string]any{
			"type": "http", "url": "https://example.com/mcp",
			"headers": map[string]string{"Authorization": "Bearer " + token},
		}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// gatewayGet is the command a workspace runs to call its MCP server
// through the proxy's gateway route.
var gatewayGet = []string{"wget", "-q", "-O", "-", "http://127.0.0.1:8080/mcp/example.com/mcp/ping"}

// MCP rules set at claim reach the proxy: a warm workspace's request to
// its MCP server carries its conversation's header (never seen by the
// workspace), a second conversation's carries its own, and a changed
// header reaches the already-ready workspace on the next execute.
func TestMCPRulesReachProxyOnWarmClaim(t *testing.T) {
	t.Parallel()
	up := newMCPUpstream(t)
	s := startStackDeps(t, map[string]string{
		"WARM_POOL_MIN_SIZE": "2", "WARM_POOL_MAX_SIZE": "2", "WARM_POOL_CHECK_INTERVAL": "1s",
	}, appDeps{proxyOptions: up.proxyOptions})
	ctx := ctxFor(t, 3*time.Minute)
	if _, err := s.store.WaitPool(ctx, func(c store.PoolCounts) bool { return c.Available == 2 }); err != nil {
		t.Fatal(err)
	}
	var pool struct {
		Enabled   bool  `json:"enabled"`
		MinSize   int   `json:"min_size"`
		Available int64 `json:"available"`
	}
	if err := json.NewDecoder(s.request(http.MethodGet, "/v1/pool").Body).Decode(&pool); err != nil ||
		!pool.Enabled || pool.MinSize != 2 || pool.Available != 2 {
		t.Fatalf("GET /v1/pool = %+v (%v)", pool, err)
	}
	for _, tc := range []struct{ conv, token string }{{"mcp-a", "token-A"}, {"mcp-b", "token-B"}} {
		evs, err := s.exec(ctx, tc.conv, mcpBody(t, tc.token, gatewayGet...))
		if err != nil {
			t.Fatal(err)
		}
		if got, want := stdout(evs), "auth=Bearer "+tc.token+" path=/mcp/ping"; !strings.Contains(got, want) {
			t.Fatalf("%s: MCP call answered %q (events %v), want %q", tc.conv, got, names(evs), want)
		}
		c := s.waitConversation(tc.conv, func(c store.Conversation) bool { return c.State == store.StateReady })
		w, err := s.store.Workspace(ctx, c.Workspace)
		if err != nil || !w.Pool || w.MCPDigest == "" {
			t.Fatalf("%s served by %+v (%v), want a claimed pool workspace with rules applied", tc.conv, w, err)
		}
	}
	// The workspace never sees the token: not in its MCP config (what
	// Claude Code gets) nor its environment.
	evs, err := s.exec(ctx, "mcp-a", mcpBody(t, "token-A", "sh", "-c", "env; cat /proc/1/environ | tr '\\0' '\\n'"))
	if err != nil {
		t.Fatal(err)
	}
	if out := stdout(evs); strings.Contains(out, "token-A") || strings.Contains(out, "Bearer") {
		t.Fatalf("the token reached the workspace:\n%s", out)
	}
	// Rules change: the ready workspace's proxy gets them before the run.
	evs, err = s.exec(ctx, "mcp-a", mcpBody(t, "token-A2", gatewayGet...))
	if err != nil {
		t.Fatal(err)
	}
	if got := stdout(evs); !strings.Contains(got, "auth=Bearer token-A2") {
		t.Fatalf("after the rules changed: %q", got)
	}
	if hits := s.metricValue(t, `workspaced_pool_claims_total{result="hit"}`); hits != 2 {
		t.Errorf("pool hits = %v, want 2", hits)
	}
	if warm := s.metricValue(t, `workspaced_execute_workspace_wait_seconds_count{start="warm"}`); warm != 2 {
		t.Errorf("API waits labelled warm = %v, want 2", warm)
	}
}

// A claude run gets the rewritten MCP config: the gateway URL, no headers.
func TestMCPConfigRewrittenForClaude(t *testing.T) {
	t.Parallel()
	s := startStack(t, nil)
	ctx := ctxFor(t, 2*time.Minute)
	body := `{"prompt":"hi","mcp_config":{"mcpServers":{"docs":{"type":"http","url":"https://example.com/mcp","headers":{"Authorization":"Bearer sekrit"}}}}}`
	evs, err := s.exec(ctx, "mcp-claude", body)
	if err != nil {
		t.Fatal(err)
	}
	var init string
	for _, ev := range evs {
		if strings.Contains(ev.Data, `"mcp_servers"`) {
			init = ev.Data
		}
	}
	if !strings.Contains(init, "http://127.0.0.1:8080/mcp/example.com/mcp") || strings.Contains(init, "sekrit") || strings.Contains(init, "headers") {
		t.Fatalf("claude's init line: %s", init)
	}
}

// After a workspaced restart, a running workspace's proxy listener is
// re-opened with its conversation's rules.
func TestRestartReopensProxyWithRules(t *testing.T) {
	t.Parallel()
	up := newMCPUpstream(t)
	deps := appDeps{proxyOptions: up.proxyOptions}
	s := startStackDeps(t, nil, deps)
	ctx := ctxFor(t, 3*time.Minute)
	if evs, err := s.exec(ctx, "mcp-r", mcpBody(t, "token-R", gatewayGet...)); err != nil || !strings.Contains(stdout(evs), "auth=Bearer token-R") {
		t.Fatalf("before restart: %v %q", err, stdout(evs))
	}
	before := s.waitConversation("mcp-r", func(c store.Conversation) bool { return c.State == store.StateReady })
	s.restart(deps)
	evs, err := s.exec(ctx, "mcp-r", `{"kind":"command","argv":["`+strings.Join(gatewayGet, `","`)+`"]}`)
	if err != nil {
		t.Fatal(err)
	}
	if got := stdout(evs); !strings.Contains(got, "auth=Bearer token-R") {
		t.Fatalf("after restart: %q (events %v)", got, names(evs))
	}
	if after, _ := s.store.Conversation(ctx, "mcp-r"); after.Workspace != before.Workspace {
		t.Fatalf("workspace changed across the restart: %s → %s", before.Workspace, after.Workspace)
	}
}

// FLUSHALL loses nothing durable: the reconciler restores the binding
// (repair counted) and the next execute reaches the same workspace.
func TestFlushAllThenExecuteSameWorkspace(t *testing.T) {
	t.Parallel()
	s := startStack(t, map[string]string{"RECONCILE_INTERVAL": "1s", "GC_INTERVAL": "1s"})
	ctx := ctxFor(t, 3*time.Minute)
	if _, err := s.exec(ctx, "conv-flush", `{"kind":"command","argv":["true"]}`); err != nil {
		t.Fatal(err)
	}
	before := s.waitConversation("conv-flush", func(c store.Conversation) bool { return c.State == store.StateReady })
	if err := s.rdb.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	after := s.waitConversation("conv-flush", func(c store.Conversation) bool { return c.State == store.StateReady })
	if after.Workspace != before.Workspace {
		t.Fatalf("restored binding %s, want %s", after.Workspace, before.Workspace)
	}
	evs, err := s.exec(ctx, "conv-flush", `{"kind":"command","argv":["echo","again"]}`)
	if err != nil || !strings.Contains(stdout(evs), "again") {
		t.Fatalf("execute after flush: %v %v", err, evs)
	}
	for _, ev := range evs {
		if ev.Event == "status" && strings.Contains(ev.Data, "provisioning") {
			t.Fatalf("execute after flush provisioned a new workspace: %v", evs)
		}
	}
	if c, _ := s.store.Conversation(ctx, "conv-flush"); c.Workspace != before.Workspace {
		t.Fatalf("served by %s, want %s", c.Workspace, before.Workspace)
	}
	if n := len(s.running()); n != 1 {
		t.Fatalf("%d running containers, want 1", n)
	}
	if got := s.metricValue(t, `workspaced_reconcile_repairs_total{repair="adopted"}`); got < 1 {
		t.Fatalf("adopted repairs = %v, want ≥ 1", got)
	}
}

// restart stops the process and starts a new one on the same Redis,
// socket directory and deployment.
func (s *stack) restart(deps appDeps) {
	s.t.Helper()
	s.stopOnce.Do(s.stop)
	cfg, err := config.LoadFrom(s.env)
	if err != nil {
		s.t.Fatal(err)
	}
	s.run(cfg, deps)
}

// metricValue reads one sample ("name{labels}") from GET /metrics.
func (s *stack) metricValue(t *testing.T, sample string) float64 {
	t.Helper()
	resp := s.request(http.MethodGet, "/metrics")
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			var f float64
			if _, err := fmt.Sscan(v, &f); err == nil {
				return f
			}
		}
	}
	return 0
}
