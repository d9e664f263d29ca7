package main

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/workspaced/workspaced/internal/ecsdouble"
	"github.com/workspaced/workspaced/store"
	"github.com/workspaced/workspaced/workers"
)

// mcpCAPath is where the task's sidecar finds the MCP stand-in's CA.
const mcpCAPath = "/etc/workspaced-e2e/mcp-ca.pem"

// mcpForTasks starts an MCP server stand-in (TLS, echoing the
// Authorization header) on the Docker bridge gateway, reachable from every
// task's sidecar as https://example.com:<port> (the name its test
// certificate carries): /etc/hosts maps it, PROXY_PRIVATE_HOSTS lets it
// resolve to the private gateway, SSL_CERT_FILE trusts it. It returns the
// server's port.
func mcpForTasks(t *testing.T, o *ecsdouble.Options) int {
	t.Helper()
	gw := bridgeGateway(t, o.Docker)
	ln, err := net.Listen("tcp", net.JoinHostPort(gw, "0"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "auth=%s path=%s", r.Header.Get("Authorization"), r.URL.Path)
	}))
	srv.Listener = ln
	srv.StartTLS()
	t.Cleanup(srv.Close)
	ca := filepath.Join(t.TempDir(), "mcp-ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	defs, err := ecsdouble.LoadContainerDefinitions(map[string]string{
		"agent_image": ecsdouble.AgentTestImage, "proxy_image": ecsdouble.ProxyTestImage})
	if err != nil {
		t.Fatal(err)
	}
	for i := range defs {
		if defs[i].Name == "credential-proxy" {
			defs[i].Environment = append(defs[i].Environment,
				ecsdouble.KeyValue{Name: "PROXY_PRIVATE_HOSTS", Value: "example.com"},
				ecsdouble.KeyValue{Name: "SSL_CERT_FILE", Value: mcpCAPath},
			)
		}
	}
	o.Containers = defs
	o.ExtraHosts = []string{"example.com:" + gw}
	o.Binds = map[string][]string{"credential-proxy": {ca + ":" + mcpCAPath + ":ro"}}
	return ln.Addr().(*net.TCPAddr).Port
}

// ECS warm claim: a pool task is claimed (one atomic claim), its claim
// recorded as task tags, the conversation's MCP rules set on its sidecar
// through the signed admin API, and the workspace's MCP call carries the
// conversation's header.
func TestECSWarmClaimSetsRulesThroughAdminAPI(t *testing.T) {
	t.Parallel()
	var port int
	s := startECSStack(t, ecsOptions{docker: true,
		env:    map[string]string{"WARM_POOL_MIN_SIZE": "1", "WARM_POOL_MAX_SIZE": "1"},
		double: func(o *ecsdouble.Options) { port = mcpForTasks(t, o) },
	})
	ctx := ctxFor(t, 3*time.Minute)
	rep := workers.NewReplenisher(s.app.runtime.rt, s.app.store, nil, workers.PoolOptions{
		MinSize: 1, MaxSize: 1, Interval: time.Second, Logger: s.app.log,
	})
	rctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rep.Run(rctx) }()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	if _, err := s.store.WaitPool(ctx, func(c store.PoolCounts) bool { return c.Available == 1 }); err != nil {
		t.Fatal(err)
	}
	stop() // the next acquire takes the only pool task; nothing refills

	mcpURL := fmt.Sprintf("https://example.com:%d/mcp", port)
	gateway := fmt.Sprintf("http://127.0.0.1:8080/mcp/example.com:%d/mcp/ping", port)
	body, err := json.Marshal(map[string]any{
		"kind": "command", "argv": []string{"wget", "-q", "-O", "-", gateway},
		"mcp_config": map[string]any{"mcpServers": map[string]any{"docs": map[string]any{
			"type": "http", "url": mcpURL, "headers": map[string]string{"Authorization": "Bearer ecs-token"},
		}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	evs, err := s.exec(ctx, "ecs-warm", string(body))
	if err != nil {
		t.Fatal(err)
	}
	if got := stdout(evs); !strings.Contains(got, "auth=Bearer ecs-token path=/mcp/ping") {
		t.Fatalf("MCP call from the claimed task answered %q (events %+v)", got, evs)
	}
	c := s.waitConversation("ecs-warm", func(c store.Conversation) bool { return c.State == store.StateReady })
	w, err := s.store.Workspace(ctx, c.Workspace)
	if err != nil || !w.Pool || w.MCPDigest == "" {
		t.Fatalf("served by %+v (%v), want the claimed pool task with rules applied", w, err)
	}
	info, err := s.app.runtime.rt.Inspect(ctx, c.Workspace)
	if err != nil || info.Conversation != "ecs-warm" || !info.Pool {
		t.Fatalf("task after claim: %+v (%v), want tagged with its conversation", info, err)
	}
	if cl, ok, err := s.app.runtime.rt.ReadClaim(ctx, info); !ok || err != nil || cl.Owner == "" {
		t.Fatalf("claim record %+v %v %v", cl, ok, err)
	}
}
