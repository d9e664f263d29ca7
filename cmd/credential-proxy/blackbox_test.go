package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/workspaced/workspaced/internal/testenv"
	"github.com/workspaced/workspaced/proxy/admin"
	"github.com/workspaced/workspaced/proxy/mcprule"
)

const innerEnv = "CREDENTIAL_PROXY_BLACKBOX_INNER"

// TestBlackBoxInNetworkNamespace builds the real binary and runs it, with
// its client and a counting upstream, inside a network namespace that has
// only loopback (unshare -n): even a broken build cannot send a packet off
// the machine. The checks run in this test binary re-executed inside the
// namespace (blackboxInner).
func TestBlackBoxInNetworkNamespace(t *testing.T) {
	unshare := testenv.LookPath(t, "unshare")
	testenv.LookPath(t, "ip")
	if out, err := exec.Command(unshare, "-n", "true").CombinedOutput(); err != nil {
		testenv.Unavailable(t, "unshare -n (network namespaces)", fmt.Errorf("%v: %s", err, out))
	}
	bin := filepath.Join(t.TempDir(), "credential-proxy")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, unshare, "-n", "sh", "-c", `ip link set lo up && exec "$0" -test.run='^$'`, self)
	cmd.Env = append(os.Environ(), innerEnv+"=1", "BLACKBOX_PROXY_BIN="+bin)
	out, err := cmd.CombinedOutput()
	t.Logf("inner output:\n%s", out)
	if err != nil {
		t.Fatalf("black-box checks failed: %v", err)
	}
	if !strings.Contains(string(out), "BLACKBOX OK") {
		t.Fatal("inner checks did not run")
	}
}

// blackboxInner runs inside the namespace; it returns the exit code.
func blackboxInner() int {
	fail := func(format string, a ...any) int {
		fmt.Printf("FAIL: "+format+"\n", a...)
		return 1
	}
	// A counting upstream on loopback: the proxy must never connect to it.
	upLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fail("listen upstream: %v", err)
	}
	var accepts atomic.Int64
	go func() {
		for {
			c, err := upLn.Accept()
			if err != nil {
				return
			}
			accepts.Add(1)
			_ = c.Close()
		}
	}()
	upPort := upLn.Addr().(*net.TCPAddr).Port
	proxyPort, adminPort := freePort(), freePort()
	adminToken := admin.DeriveAdminToken([]byte("blackbox-backend-key"), "blackbox-task")
	secret := "blackbox-aws-secret-value"
	env := []string{
		"PROXY_LISTEN_HOST=127.0.0.1", fmt.Sprintf("PROXY_LISTEN_PORT=%d", proxyPort),
		"PROXY_DOMAIN_WHITELIST=allowed.example,*.allowed.example",
		`MCP_HEADER_RULES=[{"host":"mcp.example.com","path_prefix":"/mcp","headers":{"Authorization":"Bearer blackbox-mcp-secret"}}]`,
		fmt.Sprintf("PROXY_ADMIN_LISTEN=127.0.0.1:%d", adminPort), "PROXY_ADMIN_TOKEN=" + adminToken,
		"AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=AKIDBLACKBOX", "AWS_SECRET_ACCESS_KEY=" + secret,
		"AWS_EC2_METADATA_DISABLED=true",
		fmt.Sprintf("BEDROCK_UPSTREAM_URL=https://127.0.0.1:%d", upPort),
		"PROXY_READ_HEADER_TIMEOUT=300ms", "PROXY_LOG_ALL_REQUESTS=true", "PATH=/usr/bin:/bin",
	}
	cmd := exec.Command(os.Getenv("BLACKBOX_PROXY_BIN"))
	cmd.Env = env
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		return fail("start proxy: %v", err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	var logs strings.Builder
	ready := make(chan struct{})
	logDone := make(chan struct{})
	go func() {
		defer close(logDone)
		sc := bufio.NewScanner(stderr)
		once := false
		for sc.Scan() {
			logs.WriteString(sc.Text() + "\n")
			if !once && strings.Contains(sc.Text(), "credential proxy listening") {
				once = true
				close(ready)
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(30 * time.Second):
		return fail("proxy not ready")
	}
	addr := fmt.Sprintf("127.0.0.1:%d", proxyPort)
	checks := []struct {
		name, req string
		status    int
	}{
		{"health", "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 200},
		{"A1 connect loopback", fmt.Sprintf("CONNECT 127.0.0.1:%d HTTP/1.1\r\nHost: x\r\n\r\n", upPort), 403},
		{"A2 metadata", "GET http://169.254.169.254/latest/meta-data/ HTTP/1.1\r\nHost: 169.254.169.254\r\n\r\n", 403},
		{"A4 mapped loopback", fmt.Sprintf("GET http://[::ffff:127.0.0.1]:%d/ HTTP/1.1\r\nHost: x\r\n\r\n", upPort), 403},
		{"A19 port", "CONNECT allowed.example:22 HTTP/1.1\r\nHost: x\r\n\r\n", 403},
		{"B3 lookalike", "CONNECT allowed.example.evil.example:443 HTTP/1.1\r\nHost: x\r\n\r\n", 403},
		{"C4 origin-form", "GET /foo HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 400},
		{"D8 https absolute", "GET https://allowed.example/ HTTP/1.1\r\nHost: allowed.example\r\n\r\n", 400},
		{"G4 no DNS in the namespace", "CONNECT api.allowed.example:443 HTTP/1.1\r\nHost: x\r\n\r\n", 502},
		{"F4 guardrail", "POST /guardrail/x/version/1/apply HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n", 403},
		{"P6 bedrock upstream on loopback is refused, never sent", "POST /model/m/invoke HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer x\r\nContent-Length: 2\r\n\r\n{}", 403},
	}
	for _, c := range checks {
		got, err := rawStatus(addr, c.req)
		if err != nil || got != c.status {
			return fail("%s: status %d err %v; want %d", c.name, got, err, c.status)
		}
		fmt.Printf("ok %s -> %d\n", c.name, got)
	}
	// Slowloris: the connection is closed at the header timeout.
	if err := slowloris(addr); err != nil {
		return fail("G2: %v", err)
	}
	// Admin API: the derived token sets rules; another token does not.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ac := &admin.Client{HTTPClient: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil}}}
	base := fmt.Sprintf("http://127.0.0.1:%d", adminPort)
	if err := ac.SetRules(ctx, base, "wrong-token", nil); err == nil {
		return fail("admin accepted a wrong token")
	}
	if err := ac.SetRules(ctx, base, adminToken, []mcprule.Rule{{Host: "other.example.com", Headers: map[string]string{"X-Api-Key": "blackbox-key-2"}}}); err != nil {
		return fail("admin SetRules: %v", err)
	}
	if n := accepts.Load(); n != 0 {
		return fail("upstream on loopback saw %d connections", n)
	}
	// SIGTERM: graceful exit 0.
	_ = cmd.Process.Signal(syscall.SIGTERM)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			return fail("exit after SIGTERM: %v", err)
		}
	case <-time.After(30 * time.Second):
		return fail("no exit after SIGTERM")
	}
	<-logDone
	all := logs.String()
	for _, s := range []string{secret, adminToken, "blackbox-mcp-secret", "blackbox-key-2"} {
		if strings.Contains(all, s) {
			return fail("secret %q in logs", s)
		}
	}
	if !strings.Contains(all, `"reason":"address_denied_loopback"`) {
		return fail("no audit line for the refused Bedrock upstream:\n%s", all)
	}
	fmt.Println("BLACKBOX OK")
	return 0
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func rawStatus(addr, req string) (int, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		return 0, err
	}
	var hreq *http.Request
	if strings.HasPrefix(req, "CONNECT") {
		hreq = &http.Request{Method: http.MethodConnect}
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), hreq)
	if err != nil {
		return 0, err
	}
	return resp.StatusCode, nil
}

func slowloris(addr string) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := io.WriteString(c, "GET /health HTTP/1.1\r\nHost: 12"); err != nil {
		return err
	}
	buf := make([]byte, 512)
	for {
		if _, err := c.Read(buf); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				return fmt.Errorf("connection still open at the test deadline")
			}
			return nil
		}
	}
}
