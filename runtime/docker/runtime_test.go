package docker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"

	"github.com/workspaced/workspaced/proxy/mcprule"
	"github.com/workspaced/workspaced/runtime/runtimetest"
	"github.com/workspaced/workspaced/workspace"
)

func TestConformance(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	proxies := map[runtimetest.Runtime]*httpProxy{}
	build := func(t *testing.T, e *env, name string) *Runtime {
		p := newHTTPProxy(t, name)
		opts := e.rt.opts
		opts.Proxy = p
		rt, err := New(e.cli, opts)
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		mu.Lock()
		proxies[rt] = p
		mu.Unlock()
		return rt
	}
	proxyOf := func(rt runtimetest.Runtime) *httpProxy {
		mu.Lock()
		defer mu.Unlock()
		return proxies[rt]
	}
	envs := map[runtimetest.Runtime]*env{}
	runtimetest.Run(t, runtimetest.Harness{
		New: func(t *testing.T) runtimetest.Runtime {
			e := newEnv(t, nil)
			rt := build(t, e, "first")
			mu.Lock()
			envs[rt] = e
			mu.Unlock()
			return rt
		},
		// A restarted workspaced: its proxy's listeners die with it; a new
		// Runtime and proxy come up on the same socket base.
		Restart: func(t *testing.T, rt runtimetest.Runtime) runtimetest.Runtime {
			proxyOf(rt).closeAll()
			mu.Lock()
			e := envs[rt]
			mu.Unlock()
			again := build(t, e, "restarted")
			mu.Lock()
			envs[again] = e
			mu.Unlock()
			return again
		},
		ProxyRules: func(t *testing.T, rt runtimetest.Runtime, info workspace.Info) []mcprule.Rule {
			return proxyOf(rt).served(info.Token)
		},
		WaitReady: func(ctx context.Context, rt runtimetest.Runtime, info workspace.Info) (workspace.Info, error) {
			r := rt.(*Runtime)
			if err := r.WaitReady(ctx, info); err != nil {
				return workspace.Info{}, err
			}
			return r.Inspect(ctx, info.ID)
		},
		UnknownID: strings.Repeat("0", 64),
	})
}

// countByToken counts the engine's containers (any state) with token.
func (e *env) countByToken(t *testing.T, token string) int {
	t.Helper()
	cs, err := e.cli.ContainerList(testCtx(t, time.Minute), container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", LabelToken+"="+token))})
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	return len(cs)
}

func TestStartIsIdempotent(t *testing.T) {
	t.Parallel()
	for _, n := range []int{2, 10} {
		t.Run(fmt.Sprintf("%d starts", n), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, nil)
			spec := workspace.StartSpec{Token: runtimetest.Token(t), Conversation: "idem"}
			ctx := testCtx(t, 2*time.Minute)
			ids := make([]string, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					info, err := e.rt.Start(ctx, spec)
					if err != nil {
						t.Errorf("Start %d: %v", i, err)
					}
					ids[i] = info.ID
				}()
			}
			wg.Wait()
			again, err := e.rt.Start(ctx, spec) // sequential, after the collapsed ones
			if err != nil {
				t.Fatalf("Start again: %v", err)
			}
			for _, id := range append(ids, again.ID) {
				if id != ids[0] {
					t.Fatalf("Starts with one token gave IDs %v and %s", ids, again.ID)
				}
			}
			if got := e.countByToken(t, spec.Token); got != 1 {
				t.Fatalf("%d containers with token %s, want 1", got, spec.Token)
			}
		})
	}
}

// TestStartAcrossRuntimes: two Runtimes (two backend processes) race on one
// token; the engine's name uniqueness leaves one container.
func TestStartAcrossRuntimes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	other, err := New(e.cli, e.rt.opts)
	if err != nil {
		t.Fatal(err)
	}
	spec := workspace.StartSpec{Token: runtimetest.Token(t)}
	ctx := testCtx(t, 2*time.Minute)
	var wg sync.WaitGroup
	var a, b workspace.Info
	var errA, errB error
	wg.Add(2)
	go func() { defer wg.Done(); a, errA = e.rt.Start(ctx, spec) }()
	go func() { defer wg.Done(); b, errB = other.Start(ctx, spec) }()
	wg.Wait()
	if errA != nil || errB != nil {
		t.Fatalf("Start: %v / %v", errA, errB)
	}
	if a.ID != b.ID || e.countByToken(t, spec.Token) != 1 {
		t.Fatalf("two runtimes started %s and %s", a.ID, b.ID)
	}
}

func TestStartResumesCreatedContainer(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	spec := workspace.StartSpec{Token: runtimetest.Token(t)}
	ctx := testCtx(t, 2*time.Minute)
	// A backend that crashed between create and start left this behind.
	if err := e.rt.prepare(ctx, spec.Token); err != nil {
		t.Fatal(err)
	}
	cfg, host, err := e.rt.containerConfig(spec)
	if err != nil {
		t.Fatal(err)
	}
	created, err := e.cli.ContainerCreate(ctx, cfg, host, nil, nil, e.rt.opts.NamePrefix+spec.Token)
	if err != nil {
		t.Fatal(err)
	}
	info, err := e.rt.Start(ctx, spec)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	if info.ID != created.ID || info.Status != workspace.StatusRunning {
		t.Fatalf("Start = %+v, want the created container %s, RUNNING", info, created.ID)
	}
}

func TestStopRemovesContainerAndSocketDir(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	info := e.startReady(t, workspace.StartSpec{Token: runtimetest.Token(t)})
	dir := e.rt.socketDir(info.Token)
	if _, err := os.Stat(dir + "/agent.sock"); err != nil {
		t.Fatalf("agent socket before Stop: %v", err)
	}
	ctx := testCtx(t, time.Minute)
	if err := e.rt.Stop(ctx, info.ID, "test"); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if _, err := e.cli.ContainerInspect(ctx, info.ID); err == nil {
		t.Error("container still exists after Stop")
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket dir after Stop: %v, want it gone", err)
	}
	if err := e.rt.Stop(ctx, info.ID, "again"); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

// cancelAfterStop is the engine with the caller's context ended right
// after the container stopped: a loop shutting down mid-Stop.
type cancelAfterStop struct {
	Engine
	cancel context.CancelFunc
}

func (e cancelAfterStop) ContainerStop(ctx context.Context, id string, opts container.StopOptions) error {
	err := e.Engine.ContainerStop(ctx, id, opts)
	e.cancel()
	return err
}

// A Stop whose context ends once the container stopped still removes it
// (an Exited container was left behind by tests before).
func TestStopFinishesWhenItsContextEnds(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	info := e.startReady(t, workspace.StartSpec{Token: runtimetest.Token(t), Pool: true})
	ctx, cancel := context.WithCancel(testCtx(t, time.Minute))
	rt, err := New(cancelAfterStop{Engine: e.cli, cancel: cancel}, e.rt.opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Stop(ctx, info.ID, "test"); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if _, err := e.cli.ContainerInspect(testCtx(t, time.Minute), info.ID); err == nil {
		t.Fatal("the stopped container was left behind")
	}
}

func TestInspectStoppedWorkspace(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	info := e.startReady(t, workspace.StartSpec{Token: runtimetest.Token(t), Tenant: "t"})
	ctx := testCtx(t, time.Minute)
	if err := e.cli.ContainerKill(ctx, info.ID, "SIGKILL"); err != nil {
		t.Fatal(err)
	}
	e.waitExited(t, info.ID)
	got, err := e.rt.Inspect(ctx, info.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != workspace.StatusStopped || got.ExitCode == nil || *got.ExitCode != 137 {
		t.Fatalf("Inspect after kill = %+v, want STOPPED, exit 137", got)
	}
	if !strings.Contains(got.StoppedReason, "137") || !strings.Contains(got.StoppedReason, "SIGKILL") {
		t.Errorf("StoppedReason %q does not say exit 137 / SIGKILL", got.StoppedReason)
	}
	if !strings.HasPrefix(got.Endpoint, "unix://"+e.base+"/") || got.Tenant != "t" {
		t.Errorf("Inspect = %+v", got)
	}
	all, err := e.rt.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 1 || all[0].ID != info.ID || all[0].Status != workspace.StatusStopped {
		t.Errorf("List = %+v, want the one STOPPED workspace", all)
	}
}

// waitExited blocks until container id is not running.
func (e *env) waitExited(t *testing.T, id string) {
	t.Helper()
	ctx := testCtx(t, time.Minute)
	res, errs := e.cli.ContainerWait(ctx, id, container.WaitConditionNotRunning)
	select {
	case <-res:
	case err := <-errs:
		t.Fatalf("wait for %s: %v", id, err)
	}
}

func TestConcurrentStopsAllWaitForRemoval(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	info := e.startReady(t, workspace.StartSpec{Token: runtimetest.Token(t)})
	ctx := testCtx(t, time.Minute)
	const n = 5
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = e.rt.Stop(ctx, info.ID, "test") }()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Stop %d: %v", i, err)
		}
	}
	if _, err := e.cli.ContainerInspect(ctx, info.ID); !cerrdefs.IsNotFound(err) {
		t.Errorf("container after concurrent Stops: %v, want not found", err)
	}
}
