package docker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/workspaced/workspaced/proxy/mcprule"
	"github.com/workspaced/workspaced/runtime/runtimetest"
	"github.com/workspaced/workspaced/workspace"
)

// httpProxy is a ProxyHost that answers on each socket with its name and
// the key (a restarted backend's proxy re-opens running workspaces).
type httpProxy struct {
	name  string
	mu    sync.Mutex
	lns   map[string]net.Listener
	rules map[string][]mcprule.Rule
	wg    sync.WaitGroup
}

func newHTTPProxy(t *testing.T, name string) *httpProxy {
	p := &httpProxy{name: name, lns: map[string]net.Listener{}, rules: map[string][]mcprule.Rule{}}
	t.Cleanup(func() {
		p.mu.Lock()
		for k, ln := range p.lns {
			_ = ln.Close()
			delete(p.lns, k)
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *httpProxy) Open(_ context.Context, key, socketPath string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.lns[key]; ok {
		return errors.New("already open")
	}
	_ = os.Remove(socketPath) // stale socket of the previous process
	ln, err := net.Listen("unix", socketPath)
	if err != nil {
		return err
	}
	if err := os.Chmod(socketPath, 0o666); err != nil {
		return err
	}
	p.lns[key] = ln
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s proxied %s for %s", p.name, r.URL.Path, key)
	})}
	p.wg.Add(1)
	go func() { defer p.wg.Done(); _ = srv.Serve(ln) }()
	return nil
}

func (p *httpProxy) Close(key string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if ln, ok := p.lns[key]; ok {
		delete(p.lns, key)
		return ln.Close()
	}
	return nil
}

func (p *httpProxy) SetRules(key string, rules []mcprule.Rule) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules[key] = rules
	return nil
}

// served returns key's rules while its listener is open.
func (p *httpProxy) served(key string) []mcprule.Rule {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.lns[key]; !ok {
		return nil
	}
	return p.rules[key]
}

// closeAll closes every listener, as the death of the process would.
func (p *httpProxy) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, ln := range p.lns {
		_ = ln.Close()
		delete(p.lns, k)
	}
}

func (p *httpProxy) opened(key string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.lns[key]
	return ok
}

// A pool workspace's claim and rules are kept on the host where the
// workspace cannot read them, show in List and Inspect, and survive a
// restart: a new Runtime's Recover re-opens the running workspace's proxy
// listener with its rules, and Stop removes both.
func TestClaimRecordAndRecover(t *testing.T) {
	t.Parallel()
	first := newHTTPProxy(t, "first")
	e := newEnv(t, func(o *Options) { o.Proxy = first })
	spec := workspace.StartSpec{Token: runtimetest.Token(t), Pool: true}
	info := e.startReady(t, spec)
	ctx := testCtx(t, 2*time.Minute)
	claim := workspace.Claim{Conversation: "conv-1", Owner: "k_abc", Tenant: "acme", Generation: 2}
	if err := e.rt.RecordClaim(ctx, info, claim); err != nil {
		t.Fatal(err)
	}
	rules := []mcprule.Rule{{Host: "mcp.example.com", Port: 443, PathPrefix: "/", Headers: map[string]string{"Authorization": "Bearer s3cr3t-rule"}}}
	if err := e.rt.SetProxyRules(ctx, info, rules); err != nil {
		t.Fatal(err)
	}
	got, err := e.rt.Inspect(ctx, info.ID)
	if err != nil || got.Conversation != "conv-1" || got.Tenant != "acme" || !got.Pool {
		t.Fatalf("Inspect = %+v %v", got, err)
	}
	list, err := e.rt.List(ctx)
	if err != nil || len(list) != 1 || list[0].Conversation != "conv-1" {
		t.Fatalf("List = %+v %v", list, err)
	}
	for dir, mode := range map[string]os.FileMode{claimsDir: 0o600, rulesDir: 0o600} {
		fi, err := os.Stat(filepath.Join(e.base, dir, spec.Token))
		if err != nil || fi.Mode().Perm() != mode {
			t.Fatalf("%s/%s: %v, mode %v; want %v", dir, spec.Token, err, fi.Mode().Perm(), mode)
		}
	}
	// The workspace cannot see either: only its own socket directory is
	// mounted.
	if r := e.run(t, info, "sh", "-c", "ls -a "+ContainerSocketDir+"; cat "+ContainerSocketDir+"/../.claims/* "+ContainerSocketDir+"/../.rules/* 2>&1; true"); strings.Contains(r.Output, "k_abc") || strings.Contains(r.Output, "s3cr3t") {
		t.Fatalf("the workspace reads its claim or rules: %q", r.Output)
	}

	// A restarted backend: the old proxy dies, a new Runtime and proxy
	// come up on the same base.
	first.closeAll()
	second := newHTTPProxy(t, "second")
	rt2, err := New(e.cli, Options{Image: testImage(), SocketBasePath: e.base, Labels: e.rt.opts.Labels,
		StopGrace: time.Second, Proxy: second, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := rt2.Recover(ctx); n != 1 || err != nil {
		t.Fatalf("Recover = %d %v, want 1", n, err)
	}
	if n, err := rt2.Recover(ctx); n != 0 || err != nil {
		t.Fatalf("second Recover = %d %v, want 0", n, err)
	}
	if got := second.served(spec.Token); !reflect.DeepEqual(got, rules) {
		t.Fatalf("the new proxy serves rules %v, want the persisted %v", mcprule.List(got), mcprule.List(rules))
	}
	r := e.run(t, info, "wget", "-q", "-O", "-", "http://127.0.0.1:8080/ping")
	if want := "second proxied /ping for " + spec.Token; !strings.Contains(r.Output, want) {
		t.Fatalf("through the forwarder after recovery: %q, want %q", r.Output, want)
	}
	if err := rt2.Stop(ctx, info.ID, "test"); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{claimsDir, rulesDir} {
		if _, err := os.Stat(filepath.Join(e.base, dir, spec.Token)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s record left after Stop: %v", dir, err)
		}
	}
	if n, err := rt2.Recover(ctx); n != 0 || err != nil {
		t.Fatalf("Recover after Stop = %d %v, want 0", n, err)
	}
}

// Claim records and rules of containers that are gone are pruned; live
// ones stay.
func TestPruneClaims(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := testCtx(t, 2*time.Minute)
	spec := workspace.StartSpec{Token: runtimetest.Token(t), Pool: true}
	info, err := e.rt.Start(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	live := workspace.Info{ID: info.ID, Token: spec.Token}
	gone := workspace.Info{ID: "gone", Token: runtimetest.Token(t) + "x"}
	onlyRules := workspace.Info{ID: "gone2", Token: runtimetest.Token(t) + "y"}
	for _, ws := range []workspace.Info{live, gone} {
		if err := e.rt.RecordClaim(ctx, ws, workspace.Claim{Conversation: "c", Generation: 1}); err != nil {
			t.Fatal(err)
		}
	}
	for _, ws := range []workspace.Info{live, gone, onlyRules} {
		if err := e.rt.SetProxyRules(ctx, ws, nil); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := e.rt.PruneClaims(ctx); err != nil || n != 2 {
		t.Fatalf("PruneClaims = %d, %v; want 2", n, err)
	}
	if _, ok, _ := e.rt.ReadClaim(ctx, live); !ok {
		t.Fatal("the live workspace's claim was pruned")
	}
	if _, err := os.Stat(filepath.Join(e.base, rulesDir, live.Token)); err != nil {
		t.Fatalf("the live workspace's rules were pruned: %v", err)
	}
	if _, ok, _ := e.rt.ReadClaim(ctx, gone); ok {
		t.Fatal("the gone workspace's claim is still there")
	}
	for _, ws := range []workspace.Info{gone, onlyRules} {
		if _, err := os.Stat(filepath.Join(e.base, rulesDir, ws.Token)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("rules of gone workspace %s still there: %v", ws.Token, err)
		}
	}
	if err := e.rt.Stop(ctx, info.ID, "test"); err != nil {
		t.Fatal(err)
	}
}
