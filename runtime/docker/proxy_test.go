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

	cerrdefs "github.com/containerd/errdefs"

	"github.com/workspaced/workspaced/proxy/mcprule"
	"github.com/workspaced/workspaced/runtime/runtimetest"
	"github.com/workspaced/workspaced/workspace"
)

// socketProxy is a ProxyHost that serves a fixed HTTP answer on each
// workspace's socket, and records what the runtime asked of it.
type socketProxy struct {
	e      *env
	mu     sync.Mutex
	lns    map[string]net.Listener
	opens  []string // key@path, in order
	closes []string
	wg     sync.WaitGroup
}

// SetRules is not what these tests observe (see httpProxy).
func (p *socketProxy) SetRules(string, []mcprule.Rule) error { return nil }

func (p *socketProxy) Open(ctx context.Context, key, socketPath string) error {
	// The contract: Open comes before the container runs.
	if c, err := p.e.cli.ContainerInspect(ctx, p.e.rt.opts.NamePrefix+key); err == nil && c.State.Running {
		return fmt.Errorf("open %s: the container is already running", key)
	} else if err != nil && !cerrdefs.IsNotFound(err) {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.lns[key]; ok {
		return errors.New("already open") // as the real proxy does
	}
	ln, err := net.Listen("unix", socketPath)
	if err != nil {
		return err
	}
	if err := os.Chmod(socketPath, 0o666); err != nil {
		return err
	}
	p.lns[key] = ln
	p.opens = append(p.opens, key+"@"+socketPath)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "proxied %s for %s", r.URL.Path, key)
	})}
	p.wg.Add(1)
	go func() { defer p.wg.Done(); _ = srv.Serve(ln) }()
	return nil
}

func (p *socketProxy) Close(key string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closes = append(p.closes, key)
	if ln, ok := p.lns[key]; ok {
		delete(p.lns, key)
		return ln.Close()
	}
	return nil
}

func TestProxySocketIsOpenedBeforeStartAndReachableFromTheWorkspace(t *testing.T) {
	t.Parallel()
	p := &socketProxy{lns: map[string]net.Listener{}}
	e := newEnv(t, func(o *Options) { o.Proxy = p })
	p.e = e
	t.Cleanup(func() {
		p.mu.Lock()
		for k, ln := range p.lns {
			_ = ln.Close()
			delete(p.lns, k)
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	spec := workspace.StartSpec{Token: runtimetest.Token(t)}
	info := e.startReady(t, spec)

	// The agent forwards 127.0.0.1:8080 in the workspace to proxy.sock.
	r := e.run(t, info, "wget", "-q", "-O", "-", "http://127.0.0.1:8080/ping")
	if want := "proxied /ping for " + spec.Token; !strings.Contains(r.Output, want) {
		t.Fatalf("through the forwarder: %q (exit %d), want %q", r.Output, r.ExitCode, want)
	}

	// A second Start of the running workspace does not re-open.
	if _, err := e.rt.Start(testCtx(t, time.Minute), spec); err != nil {
		t.Fatal(err)
	}
	if err := e.rt.Stop(testCtx(t, time.Minute), info.ID, "test"); err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	wantOpen := spec.Token + "@" + e.rt.socketDir(spec.Token) + "/proxy.sock"
	if len(p.opens) != 1 || p.opens[0] != wantOpen {
		t.Errorf("opens %v, want [%s]", p.opens, wantOpen)
	}
	if len(p.closes) != 1 || p.closes[0] != spec.Token {
		t.Errorf("closes %v, want [%s]", p.closes, spec.Token)
	}
}
