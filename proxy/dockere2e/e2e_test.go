package dockere2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/workspaced/workspaced/agent/api"
	agentclient "github.com/workspaced/workspaced/agent/client"
	"github.com/workspaced/workspaced/internal/fakebedrock"
	"github.com/workspaced/workspaced/internal/testenv"
	"github.com/workspaced/workspaced/proxy"
	"github.com/workspaced/workspaced/proxy/egress"
	"github.com/workspaced/workspaced/runtime/docker"
	"github.com/workspaced/workspaced/runtime/runtimetest"
	"github.com/workspaced/workspaced/workspace"
)

const (
	awsKeyID     = "AKIDE2EPROXYKEY0001"
	awsSecret    = "e2e-aws-secret-access-key-value"
	awsToken     = "e2e-aws-session-token-value"
	mcpSecret    = "e2e-mcp-bearer-secret-value"
	region       = "us-east-1"
	mcpHost      = "mcp.example.com"
	mcpFakeIP    = "93.184.216.40"
	bedrockIP    = "93.184.216.50"
	workspaceImg = "workspaced/workspace:dev"
)

// hostNet maps the upstreams' public names to fake public addresses and
// those to listeners on the host's loopback; anything else is refused.
type hostNet struct {
	names  map[string]netip.Addr
	routes map[string]string
	mu     sync.Mutex
	strays []string
}

func (n *hostNet) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := n.names[strings.TrimSuffix(host, ".")]; ok {
		return []netip.Addr{a}, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

func (n *hostNet) Dial(ctx context.Context, network, address string) (net.Conn, error) {
	real, ok := n.routes[address]
	if !ok {
		n.mu.Lock()
		n.strays = append(n.strays, address)
		n.mu.Unlock()
		return nil, fmt.Errorf("unreachable in test: %s", address)
	}
	var d net.Dialer
	return d.DialContext(ctx, network, real)
}

func TestWorkspaceReachesUpstreamOnlyThroughProxy(t *testing.T) {
	cli := testenv.Docker(t)
	img := workspaceImg
	if v := os.Getenv("WORKSPACE_TEST_IMAGE"); v != "" {
		img = v
	}
	testenv.Image(t, cli, img)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	// The MCP upstream on the host, with a certificate for its name.
	cert, _, err := fakebedrock.SelfSigned(mcpHost)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var seen []http.Header
	mcp := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Clone())
		mu.Unlock()
		fmt.Fprintf(w, "mcp upstream saw path %s\n", r.URL.Path)
	}))
	mcp.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	mcp.StartTLS()
	defer mcp.Close()
	creds := aws.Credentials{AccessKeyID: awsKeyID, SecretAccessKey: awsSecret, SessionToken: awsToken}
	fb := fakebedrock.New(t, creds, region)

	roots := x509.NewCertPool()
	roots.AddCert(cert.Leaf)
	roots.AddCert(fb.Certificate())
	hn := &hostNet{
		names: map[string]netip.Addr{mcpHost: netip.MustParseAddr(mcpFakeIP),
			"bedrock-runtime." + region + ".amazonaws.com": netip.MustParseAddr(bedrockIP)},
		routes: map[string]string{mcpFakeIP + ":443": mcp.Listener.Addr().String(), bedrockIP + ":443": fb.Addr},
	}
	p, err := proxy.New(proxy.Options{
		Logger:      slog.New(slog.NewTextHandler(io.Discard, nil)),
		Allowlist:   egress.Allowlist{},
		Resolver:    hn,
		Dial:        hn.Dial,
		UpstreamTLS: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		Bedrock:     proxy.BedrockOptions{Region: region, Credentials: credentials.StaticCredentialsProvider{Value: creds}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		sctx, c := context.WithTimeout(context.Background(), 10*time.Second)
		defer c()
		_ = p.Shutdown(sctx)
	}()

	base, err := os.MkdirTemp("", "wsp")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(base)
	label := runtimetest.Token(t)
	rt, err := docker.New(cli, docker.Options{
		Image:          img,
		SocketBasePath: base,
		Labels:         map[string]string{"io.test.proxy-e2e": label},
		StopGrace:      time.Second,
		Proxy:          p,
		Env:            []string{"ANTHROPIC_BEDROCK_BASE_URL=http://127.0.0.1:8080", "CLAUDE_CODE_USE_BEDROCK=1", "CLAUDE_CODE_SKIP_BEDROCK_AUTH=1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	spec := workspace.StartSpec{Token: runtimetest.Token(t), Pool: true}
	info, err := rt.Start(ctx, spec)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	defer func() {
		sctx, c := context.WithTimeout(context.Background(), time.Minute)
		defer c()
		_ = rt.Stop(sctx, info.ID, "test")
	}()
	if err := rt.WaitReady(ctx, info); err != nil {
		t.Fatalf("WaitReady: %v", err)
	}
	run := func(argv ...string) (string, int) {
		t.Helper()
		tr, err := rt.Transport(info.Endpoint)
		if err != nil {
			t.Fatal(err)
		}
		defer tr.(interface{ CloseIdleConnections() }).CloseIdleConnections()
		stream, err := agentclient.New(tr).Execute(ctx, api.ExecuteRequest{Kind: api.KindCommand, Argv: argv})
		if err != nil {
			t.Fatalf("execute %q: %v", argv, err)
		}
		defer stream.Close()
		var out strings.Builder
		for {
			ev, err := stream.Next()
			if errors.Is(err, io.EOF) {
				t.Fatalf("execute %q: no done event; output:\n%s", argv, out.String())
			}
			if err != nil {
				t.Fatalf("execute %q: %v", argv, err)
			}
			switch ev.Event {
			case api.EventStdout, api.EventStderr:
				out.WriteString(ev.Data + "\n")
			case api.EventStdoutPart, api.EventStderrPart:
				out.WriteString(ev.Data)
			case api.EventDone:
				_, _ = io.Copy(io.Discard, stream.Body())
				return out.String(), stream.Done().ExitCode
			}
		}
	}
	mcpURL := "http://127.0.0.1:8080/mcp/" + mcpHost + "/mcp/ping"

	// A warm-pool workspace: no rules yet, the MCP route is refused.
	if out, code := run("wget", "-q", "-O", "-", mcpURL); code == 0 {
		t.Fatalf("MCP route open before rules were set: %q", out)
	}
	// Claimed: workspaced sets the conversation's rules in-process.
	if err := p.SetRules(spec.Token, []proxy.MCPRule{{Host: mcpHost, PathPrefix: "/mcp",
		Headers: map[string]string{"Authorization": "Bearer " + mcpSecret}}}); err != nil {
		t.Fatal(err)
	}
	out, code := run("wget", "-q", "-O", "-", "--header", "Authorization: Bearer forged-by-workspace", mcpURL)
	t.Logf("mcp via proxy: exit %d %q", code, out)
	if code != 0 || !strings.Contains(out, "mcp upstream saw path /mcp/ping") {
		t.Fatalf("MCP through the proxy: exit %d, %q", code, out)
	}
	mu.Lock()
	if len(seen) != 1 || len(seen[0].Values("Authorization")) != 1 || seen[0].Get("Authorization") != "Bearer "+mcpSecret {
		t.Fatalf("MCP upstream saw %v", seen)
	}
	mu.Unlock()

	// A Bedrock call, unsigned in the workspace, signed by the proxy.
	out, code = run("wget", "-q", "-O", "-", "--header", "Content-Type: application/json",
		"--post-data", `{"anthropic_version":"bedrock-2023-05-31","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}`,
		"http://127.0.0.1:8080/model/anthropic.claude-3-5-sonnet-20241022-v2:0/invoke")
	if last, _ := fb.Last(); code != 0 || !strings.Contains(out, fakebedrock.Text) || !last.Verified {
		t.Fatalf("Bedrock through the proxy: exit %d %q (upstream verified=%v %s)", code, out, last.Verified, last.Error)
	}

	// No direct route out: the container has no network.
	if out, code := run("wget", "-q", "-T", "3", "-O", "-", "http://"+mcp.Listener.Addr().String()+"/"); code == 0 {
		t.Fatalf("workspace reached the host directly: %q", out)
	}

	// No credential anywhere inside: environment of every process, the
	// process list, and files.
	secrets := []string{awsKeyID, awsSecret, awsToken, mcpSecret}
	t.Logf("bedrock via proxy: exit %d %q", code, out)
	dump, _ := run("sh", "-c", `for f in /proc/[0-9]*/environ; do tr '\0' '\n' < "$f"; done 2>/dev/null; ps -o pid,user,args 2>/dev/null || ps; env`)
	if !strings.Contains(dump, "ANTHROPIC_BEDROCK_BASE_URL") {
		t.Fatalf("environment dump looks empty:\n%s", dump)
	}
	for _, s := range secrets {
		if strings.Contains(dump, s) {
			t.Errorf("secret %q visible in the workspace environment or process list", s)
		}
	}
	// Search the filesystem without the secrets appearing in any argv
	// (grep -F -f reads patterns from a file the shell writes piecewise).
	// A canary file proves the scan finds what it looks for.
	var script strings.Builder
	script.WriteString("set -e; f=$(mktemp); printf '%s%s' canary- planted > /tmp/canary.txt; ")
	for _, s := range append(secrets, "canary-planted") {
		half := len(s) / 2
		fmt.Fprintf(&script, "printf '%%s%%s\\n' '%s' '%s' >> \"$f\"; ", s[:half], s[half:])
	}
	// busybox grep has no --exclude-dir: walk the top level by hand.
	script.WriteString(`for d in /*; do case "$d" in /proc|/sys|/dev) ;; *) grep -rlsF -f "$f" "$d" 2>/dev/null || true ;; esac; done | grep -v "^$f\$" || true; rm -f "$f"; echo scan-done`)
	files, code := run("sh", "-c", script.String())
	if code != 0 || !strings.Contains(files, "scan-done") {
		t.Fatalf("file scan failed: exit %d %q", code, files)
	}
	found := strings.Fields(strings.ReplaceAll(files, "scan-done", ""))
	if len(found) != 1 || found[0] != "/tmp/canary.txt" {
		t.Errorf("file scan found %v; want only the canary /tmp/canary.txt", found)
	}
	// And not in the container's configuration either.
	ci, err := cli.ContainerInspect(ctx, info.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ci.Config.Env {
		for _, s := range secrets {
			if strings.Contains(e, s) {
				t.Errorf("secret in container env %q", e)
			}
		}
	}
	hn.mu.Lock()
	defer hn.mu.Unlock()
	if len(hn.strays) > 0 {
		t.Errorf("proxy dialed unmapped addresses %v", hn.strays)
	}
}
