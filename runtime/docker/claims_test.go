package docker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/workspaced/workspaced/runtime/runtimetest"
	"github.com/workspaced/workspaced/workspace"
)

// httpProxy is a ProxyHost that answers on each socket with its name and
// the key (a restarted backend's proxy re-opens running workspaces).
type httpProxy struct {
	name string
	mu   sync.Mutex
	lns  map[string]net.Listener
	wg   sync.WaitGroup
}

func newHTTPProxy(t *testing.T, name string) *httpProxy {
	p := &httpProxy{name: name, lns: map[string]net.Listener{}}
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

func (p *httpProxy) opened(key string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.lns[key]
	return ok
}

// A pool workspace's claim is recorded on the host, shows in List and
// Inspect, and survives a restart: a new Runtime adopts the running
// workspace, re-opening its proxy listener, and Stop removes the record.
func TestClaimRecordAndAdopt(t *testing.T) {
	t.Parallel()
	first := newHTTPProxy(t, "first")
	e := newEnv(t, func(o *Options) { o.Proxy = first })
	spec := workspace.StartSpec{Token: runtimetest.Token(t), Pool: true}
	info := e.startReady(t, spec)
	ctx := testCtx(t, 2*time.Minute)
	if _, ok, err := e.rt.ReadClaim(spec.Token); ok || err != nil {
		t.Fatalf("claim of an unclaimed workspace: %v %v", ok, err)
	}
	claim := Claim{Conversation: "conv-1", Owner: "k_abc", Tenant: "acme", Generation: 2}
	if err := e.rt.RecordClaim(ctx, spec.Token, claim); err != nil {
		t.Fatal(err)
	}
	if got, ok, err := e.rt.ReadClaim(spec.Token); !ok || err != nil || got != claim {
		t.Fatalf("ReadClaim = %+v %v %v", got, ok, err)
	}
	got, err := e.rt.Inspect(ctx, info.ID)
	if err != nil || got.Conversation != "conv-1" || got.Tenant != "acme" || !got.Pool {
		t.Fatalf("Inspect = %+v %v", got, err)
	}
	list, err := e.rt.List(ctx)
	if err != nil || len(list) != 1 || list[0].Conversation != "conv-1" {
		t.Fatalf("List = %+v %v", list, err)
	}
	// The workspace cannot see the record: only its own socket directory
	// is mounted.
	if r := e.run(t, info, "sh", "-c", "ls -a "+ContainerSocketDir+"; cat "+ContainerSocketDir+"/../.claims/* 2>&1; true"); strings.Contains(r.Output, "k_abc") {
		t.Fatalf("the workspace reads its claim: %q", r.Output)
	}

	// A restarted backend: a new Runtime and proxy on the same base.
	if err := first.Close(spec.Token); err != nil {
		t.Fatal(err)
	}
	second := newHTTPProxy(t, "second")
	rt2, err := New(e.cli, Options{Image: testImage(), SocketBasePath: e.base, Labels: e.rt.opts.Labels,
		StopGrace: time.Second, Proxy: second, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := rt2.Adopt(ctx, info.ID); !ok || err != nil {
		t.Fatalf("Adopt = %v %v, want true", ok, err)
	}
	if ok, err := rt2.Adopt(ctx, info.ID); ok || err != nil {
		t.Fatalf("second Adopt = %v %v, want false", ok, err)
	}
	if !second.opened(spec.Token) {
		t.Fatal("the new proxy has no listener for the workspace")
	}
	r := e.run(t, info, "wget", "-q", "-O", "-", "http://127.0.0.1:8080/ping")
	if want := "second proxied /ping for " + spec.Token; !strings.Contains(r.Output, want) {
		t.Fatalf("through the forwarder after adopt: %q, want %q", r.Output, want)
	}
	if err := rt2.Stop(ctx, info.ID, "test"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := rt2.ReadClaim(spec.Token); ok {
		t.Fatal("claim record left after Stop")
	}
	if ok, err := rt2.Adopt(ctx, info.ID); ok || err != nil {
		t.Fatalf("Adopt of a removed workspace = %v %v", ok, err)
	}
}

// Claim records of containers that are gone are pruned; live ones stay.
func TestPruneClaims(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := testCtx(t, 2*time.Minute)
	spec := workspace.StartSpec{Token: runtimetest.Token(t), Pool: true}
	info, err := e.rt.Start(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	gone := runtimetest.Token(t) + "x"
	for _, tok := range []string{spec.Token, gone} {
		if err := e.rt.RecordClaim(ctx, tok, Claim{Conversation: "c", Generation: 1}); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := e.rt.PruneClaims(ctx); err != nil || n != 1 {
		t.Fatalf("PruneClaims = %d, %v; want 1", n, err)
	}
	if _, ok, _ := e.rt.ReadClaim(spec.Token); !ok {
		t.Fatal("the live workspace's claim was pruned")
	}
	if _, ok, _ := e.rt.ReadClaim(gone); ok {
		t.Fatal("the gone workspace's claim is still there")
	}
	if err := e.rt.Stop(ctx, info.ID, "test"); err != nil {
		t.Fatal(err)
	}
}
