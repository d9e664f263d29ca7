package proxy_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/workspaced/workspaced/proxy"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// Idle keep-alive readers of test clients outlive a test briefly.
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
	)
}

// unixRaw sends a raw request over a workspace socket.
func unixRaw(t *testing.T, sock, req string) *http.Response {
	t.Helper()
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatalf("dial %s: %v", sock, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp
}

// Host mode: one proxy, one Unix socket per workspace, rules keyed by the
// listener, Close ends the workspace's listener and connections.
func TestHostModeOpenSetRulesClose(t *testing.T) {
	w := newWorld(t, func(o *proxy.Options) { o.Rules = nil })
	dir := t.TempDir()
	ctx := context.Background()
	sockA, sockB := filepath.Join(dir, "a", "proxy.sock"), filepath.Join(dir, "b", "proxy.sock")
	for _, d := range []string{filepath.Dir(sockA), filepath.Dir(sockB)} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.proxy.Open(ctx, "ws-a", sockA); err != nil {
		t.Fatal(err)
	}
	if err := w.proxy.Open(ctx, "ws-b", sockB); err != nil {
		t.Fatal(err)
	}
	if err := w.proxy.Open(ctx, "ws-a", sockA); !errors.Is(err, proxy.ErrAlreadyOpen) {
		t.Fatalf("second Open: %v", err)
	}
	fi, err := os.Stat(sockA)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o660 {
		t.Errorf("socket mode %v; want 0660", fi.Mode().Perm())
	}
	if os.Geteuid() == 0 {
		st := fi.Sys().(*syscall.Stat_t)
		if st.Uid != 1000 || st.Gid != 1000 {
			t.Errorf("socket owned by %d:%d; want 1000:1000", st.Uid, st.Gid)
		}
	}
	rule := func(v string) []proxy.MCPRule {
		r, _ := parseRules(fmt.Sprintf(`[{"host":"mcp.example.com","path_prefix":"/mcp","headers":{"Authorization":"Bearer %s"}}]`, v))
		return r
	}
	if err := w.proxy.SetRules("ws-a", rule("for-a")); err != nil {
		t.Fatal(err)
	}
	mcpReq := "GET /mcp/mcp.example.com/mcp HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nConnection: close\r\n\r\n"
	if r := unixRaw(t, sockB, mcpReq); r.StatusCode != http.StatusForbidden {
		t.Fatalf("workspace b used a's rules: %d", r.StatusCode)
	}
	if r := unixRaw(t, sockA, mcpReq); r.StatusCode != http.StatusOK {
		t.Fatalf("workspace a: %d", r.StatusCode)
	}
	if err := w.proxy.SetRules("ws-b", rule("for-b")); err != nil {
		t.Fatal(err)
	}
	if r := unixRaw(t, sockB, mcpReq); r.StatusCode != http.StatusOK {
		t.Fatalf("workspace b after SetRules: %d", r.StatusCode)
	}
	reqs := w.mcp.requests()
	if len(reqs) != 2 || reqs[0].Header.Get("Authorization") != "Bearer for-a" || reqs[1].Header.Get("Authorization") != "Bearer for-b" {
		t.Fatalf("upstream saw %+v", reqs)
	}
	if !strings.Contains(w.logs.String(), `"workspace":"ws-a"`) {
		t.Error("audit lines lack the workspace key")
	}

	// An open tunnel of workspace a is cut by Close("ws-a").
	c, err := net.Dial("unix", sockA)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	fmt.Fprintf(c, "CONNECT allowed.example:443 HTTP/1.1\r\nHost: allowed.example:443\r\n\r\n")
	br := bufio.NewReader(c)
	if resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect}); err != nil || resp.StatusCode != 200 {
		t.Fatalf("tunnel: %v %v", resp, err)
	}
	if err := w.proxy.Close("ws-a"); err != nil {
		t.Fatal(err)
	}
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("tunnel survived Close")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("tunnel still open at the test deadline")
	}
	if _, err := os.Stat(sockA); !os.IsNotExist(err) {
		t.Errorf("socket file left behind: %v", err)
	}
	if _, err := net.Dial("unix", sockA); err == nil {
		t.Fatal("closed workspace still accepts")
	}
	if err := w.proxy.Close("ws-a"); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	// b is unaffected.
	if r := unixRaw(t, sockB, mcpReq); r.StatusCode != http.StatusOK {
		t.Fatalf("workspace b after closing a: %d", r.StatusCode)
	}
	// Reopening a key starts with no rules.
	if err := w.proxy.Open(ctx, "ws-a", sockA); err != nil {
		t.Fatal(err)
	}
	if r := unixRaw(t, sockA, mcpReq); r.StatusCode != http.StatusForbidden {
		t.Fatalf("reopened workspace kept old rules: %d", r.StatusCode)
	}
}
