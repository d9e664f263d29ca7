package workers_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/workspaced/workspaced/store"
	"github.com/workspaced/workspaced/workers"
	"github.com/workspaced/workspaced/workspace"
)

// countingRuntime counts Start calls on the real runtime, split by kind.
type countingRuntime struct {
	workspace.Runtime
	pool, cold atomic.Int64
}

func (c *countingRuntime) Start(ctx context.Context, spec workspace.StartSpec) (workspace.Info, error) {
	if spec.Pool {
		c.pool.Add(1)
	} else {
		c.cold.Add(1)
	}
	return c.Runtime.Start(ctx, spec)
}

func countingHarness(t *testing.T) (*harness, *countingRuntime) {
	var cr *countingRuntime
	h := newHarness(t, harnessOptions{wrapRT: func(rt workspace.Runtime) workspace.Runtime {
		cr = &countingRuntime{Runtime: rt}
		return cr
	}})
	return h, cr
}

// runReplenisher runs r until the returned stop is called (or the test
// ends).
func runReplenisher(t *testing.T, r *workers.Replenisher) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("replenisher: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func (h *harness) replenisher(t *testing.T, min, max int) *workers.Replenisher {
	return workers.NewReplenisher(h.rt, h.st, h.m, workers.PoolOptions{
		MinSize: min, MaxSize: max, StartRate: 50, Interval: time.Second, Logger: testLogger(t),
	})
}

func (h *harness) warmProvisioner(t *testing.T, health workers.HealthChecker) *workers.Provisioner {
	return workers.NewProvisioner(h.rt, h.st, h.m, workers.ProvisionerOptions{Pool: true, Health: health, Logger: testLogger(t)})
}

func (h *harness) waitPool(t *testing.T, cond func(store.PoolCounts) bool) store.PoolCounts {
	t.Helper()
	c, err := h.st.WaitPool(testCtx(t, 90*time.Second), cond)
	if err != nil {
		t.Fatalf("wait for pool: %v (counts %+v)", err, c)
	}
	return c
}

// acquire provisions cid through prov and waits until it is ready.
func (h *harness) acquire(t *testing.T, prov *workers.Provisioner, cid string) store.Conversation {
	t.Helper()
	h.claim(t, cid)
	if err := provision(prov)(requested(t, cid)); err != nil {
		t.Fatalf("provision %s: %v", cid, err)
	}
	c := h.waitFor(t, cid, done)
	if c.State != store.StateReady {
		t.Fatalf("conversation %s = %+v, want ready", cid, c)
	}
	return c
}

// Pool of 3: three acquires are warm (no start during them), the fourth is
// cold; the pool then refills to 3.
func TestPoolWarmThenColdThenRefill(t *testing.T) {
	t.Parallel()
	h, cr := countingHarness(t)
	stop := runReplenisher(t, h.replenisher(t, 3, 3))
	h.waitPool(t, func(c store.PoolCounts) bool { return c.Available == 3 })
	stop() // nothing refills while we count
	pool := map[string]bool{}
	for _, id := range h.containers(t) {
		pool[id] = true
	}
	if len(pool) != 3 || cr.pool.Load() != 3 {
		t.Fatalf("pool containers %d, pool starts %d; want 3 and 3", len(pool), cr.pool.Load())
	}
	// Each was warmed up (a run of `true` read to its final event) before
	// it was offered.
	if got := h.metric(t, "workspaced_pool_warmups_total", "result", "ok"); got != 3 {
		t.Errorf("warm-ups = %v, want 3", got)
	}

	prov := h.warmProvisioner(t, nil)
	before := cr.pool.Load() + cr.cold.Load()
	seen := map[string]bool{}
	for i := range 3 {
		c := h.acquire(t, prov, fmt.Sprint("warm-", i))
		if !pool[c.Workspace] || seen[c.Workspace] {
			t.Fatalf("acquire %d got workspace %s (pool %v, seen %v)", i, c.Workspace, pool, seen)
		}
		seen[c.Workspace] = true
	}
	if n := cr.pool.Load() + cr.cold.Load() - before; n != 0 {
		t.Fatalf("%d runtime starts during warm acquires, want 0", n)
	}
	if got := h.metric(t, "workspaced_pool_claims_total", "result", "hit"); got != 3 {
		t.Errorf("hits = %v, want 3", got)
	}
	c := h.acquire(t, prov, "cold-0")
	if pool[c.Workspace] || cr.cold.Load() != 1 {
		t.Fatalf("fourth acquire: workspace %s, cold starts %d; want a new workspace, 1", c.Workspace, cr.cold.Load())
	}
	if got := h.metric(t, "workspaced_pool_claims_total", "result", "miss"); got != 1 {
		t.Errorf("misses = %v, want 1", got)
	}
	if got := h.metric(t, "workspaced_provisioning_seconds", "start", "warm"); got != 3 {
		t.Errorf("warm provisioning samples = %v, want 3", got)
	}

	runReplenisher(t, h.replenisher(t, 3, 3))
	got := h.waitPool(t, func(c store.PoolCounts) bool { return c.Available == 3 })
	if got.Claimed != 3 || cr.pool.Load() != 6 {
		t.Fatalf("after refill: counts %+v, pool starts %d; want 3 claimed, 6 starts", got, cr.pool.Load())
	}
}

// Two replenishers at once (two replicas) never exceed the maximum.
func TestPoolTwoReplenishersRespectMax(t *testing.T) {
	t.Parallel()
	h, cr := countingHarness(t)
	a, b := h.replenisher(t, 3, 3), h.replenisher(t, 3, 3)
	runReplenisher(t, a)
	runReplenisher(t, b)
	h.waitPool(t, func(c store.PoolCounts) bool { return c.Available == 3 })
	ctx := testCtx(t, time.Minute)
	for _, r := range []*workers.Replenisher{a, b} {
		if n, err := r.Tick(ctx); err != nil || n != 0 {
			t.Fatalf("extra pass started %d (err %v)", n, err)
		}
	}
	c, err := h.st.PoolCounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c.Unclaimed() != 3 || cr.pool.Load() != 3 || len(h.containers(t)) != 3 {
		t.Fatalf("counts %+v, starts %d, containers %d; want 3 each", c, cr.pool.Load(), len(h.containers(t)))
	}
}

// 50 concurrent acquires against a pool of 5: every conversation is
// served, no workspace is bound twice.
func TestPoolFiftyConcurrentAcquires(t *testing.T) {
	t.Parallel()
	h, cr := countingHarness(t)
	stop := runReplenisher(t, h.replenisher(t, 5, 5))
	h.waitPool(t, func(c store.PoolCounts) bool { return c.Available == 5 })
	stop()
	prov := h.warmProvisioner(t, nil)
	const n = 50
	var wg sync.WaitGroup
	for i := range n {
		cid := fmt.Sprint("many-", i)
		h.claim(t, cid)
		wg.Go(func() {
			if err := provision(prov)(requested(t, cid)); err != nil {
				t.Errorf("provision %s: %v", cid, err)
			}
		})
	}
	wg.Wait()
	owner := map[string]string{}
	for i := range n {
		cid := fmt.Sprint("many-", i)
		c := h.waitFor(t, cid, done)
		if c.State != store.StateReady {
			t.Fatalf("%s = %+v, want ready", cid, c)
		}
		if prev, dup := owner[c.Workspace]; dup {
			t.Fatalf("workspace %s bound to %s and %s", c.Workspace, prev, cid)
		}
		owner[c.Workspace] = cid
		w, err := h.st.Workspace(testCtx(t, 10*time.Second), c.Workspace)
		if err != nil || w.Conversation != cid {
			t.Fatalf("workspace %s record = %+v, %v", c.Workspace, w, err)
		}
	}
	if hits := h.metric(t, "workspaced_pool_claims_total", "result", "hit"); hits != 5 || cr.cold.Load() != n-5 {
		t.Fatalf("hits %v, cold starts %d; want 5 and %d", hits, cr.cold.Load(), n-5)
	}
	if got := len(h.containers(t)); got != n {
		t.Fatalf("%d containers, want %d", got, n)
	}
}

// A claimed workspace that fails its health check is released and the
// next one is tried.
func TestPoolUnhealthyClaimReleased(t *testing.T) {
	t.Parallel()
	h, cr := countingHarness(t)
	stop := runReplenisher(t, h.replenisher(t, 2, 2))
	h.waitPool(t, func(c store.PoolCounts) bool { return c.Available == 2 })
	stop()
	var failed atomic.Value // the first workspace checked
	health := workers.HealthCheckFunc(func(ctx context.Context, rt http.RoundTripper, endpoint string) error {
		if failed.CompareAndSwap(nil, endpoint) {
			return fmt.Errorf("injected: agent at %s does not answer", endpoint)
		}
		return workers.AgentHealth.Healthy(ctx, rt, endpoint)
	})
	prov := h.warmProvisioner(t, health)
	c := h.acquire(t, prov, "picky")
	if c.Endpoint == failed.Load() {
		t.Fatalf("served by the unhealthy workspace %s", c.Endpoint)
	}
	if got := h.metric(t, "workspaced_pool_claims_total", "result", "unhealthy"); got != 1 {
		t.Errorf("unhealthy claims = %v, want 1", got)
	}
	if cr.cold.Load() != 0 {
		t.Errorf("cold starts = %d, want 0 (the second pool workspace serves)", cr.cold.Load())
	}
	// The unhealthy one was stopped and left the inventory.
	h.waitPool(t, func(c store.PoolCounts) bool { return c.Available == 0 && c.Claimed == 1 })
	if got := len(h.containers(t)); got != 1 {
		t.Fatalf("%d containers, want 1", got)
	}
}

// A claimed workspace's health check runs alongside its personalisation
// (D37): when the check fails, the restore into the workspace is
// cancelled rather than awaited, and the next pool workspace serves.
func TestPoolUnhealthyClaimCancelsPersonalisation(t *testing.T) {
	t.Parallel()
	restoring := make(chan string, 4) // endpoints whose restore began
	var cancelled atomic.Value        // the first restore's end: its context's cause
	restorer := restorerFunc(func(ctx context.Context, rt workspace.RestoreTarget) (bool, error) {
		restoring <- rt.Endpoint
		if cancelled.Load() != nil {
			return false, nil // the second workspace: nothing saved
		}
		<-ctx.Done()
		cancelled.Store(context.Cause(ctx))
		return false, ctx.Err()
	})
	h := newHarness(t, harnessOptions{restorer: restorer})
	stop := runReplenisher(t, h.replenisher(t, 2, 2))
	h.waitPool(t, func(c store.PoolCounts) bool { return c.Available == 2 })
	stop()
	var failed atomic.Value // the first workspace checked
	health := workers.HealthCheckFunc(func(ctx context.Context, rt http.RoundTripper, endpoint string) error {
		if !failed.CompareAndSwap(nil, endpoint) {
			return workers.AgentHealth.Healthy(ctx, rt, endpoint)
		}
		select { // fail once its personalisation is under way
		case ep := <-restoring:
			if ep != endpoint {
				return fmt.Errorf("restore into %s while checking %s", ep, endpoint)
			}
		case <-ctx.Done():
			return fmt.Errorf("no restore began alongside the check: %w", ctx.Err())
		}
		return fmt.Errorf("injected: agent at %s does not answer", endpoint)
	})
	prov := workers.NewProvisioner(h.rt, h.st, h.m, workers.ProvisionerOptions{
		Pool: true, Health: health, Personaliser: h.pers, Logger: testLogger(t),
	})
	c := h.acquire(t, prov, "hung")
	if c.Endpoint == failed.Load() {
		t.Fatalf("served by the unhealthy workspace %s", c.Endpoint)
	}
	if cause, _ := cancelled.Load().(error); cause == nil || !strings.Contains(cause.Error(), "injected") {
		t.Fatalf("the unhealthy workspace's restore ended with %v, want cancelled by its failed check", cause)
	}
	if got := h.metric(t, "workspaced_pool_claims_total", "result", "unhealthy"); got != 1 {
		t.Errorf("unhealthy claims = %v, want 1", got)
	}
}

// Pool workspaces older than the maximum age are recycled: stopped and
// replaced.
func TestPoolRecyclesOldWorkspaces(t *testing.T) {
	t.Parallel()
	h, cr := countingHarness(t)
	stop := runReplenisher(t, h.replenisher(t, 1, 1))
	h.waitPool(t, func(c store.PoolCounts) bool { return c.Available == 1 })
	stop()
	old := h.containers(t)
	if len(old) != 1 {
		t.Fatalf("containers %v, want 1", old)
	}
	later := workers.NewReplenisher(h.rt, h.st, h.m, workers.PoolOptions{
		MinSize: 1, MaxSize: 1, MaxAge: time.Hour, StartRate: 50, Logger: testLogger(t),
		Now: func() time.Time { return time.Now().Add(2 * time.Hour) },
	})
	n, err := later.Tick(testCtx(t, time.Minute))
	if err != nil || n != 1 {
		t.Fatalf("Tick = %d, %v; want 1 replacement", n, err)
	}
	h.waitPool(t, func(c store.PoolCounts) bool { return c.Available == 1 })
	now := h.containers(t)
	if len(now) != 1 || now[0] == old[0] || cr.pool.Load() != 2 {
		t.Fatalf("containers %v (old %v), pool starts %d; want one new", now, old, cr.pool.Load())
	}
	if got := h.metric(t, "workspaced_pool_retired_total", "reason", workers.GCPoolMaxAge); got != 1 {
		t.Errorf("retired = %v, want 1", got)
	}
}
