package ecs_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/client"

	"github.com/workspaced/workspaced/internal/ecsdouble"
	"github.com/workspaced/workspaced/internal/testenv"
	"github.com/workspaced/workspaced/proxy/admin"
	"github.com/workspaced/workspaced/runtime/ecs"
	"github.com/workspaced/workspaced/runtime/runtimetest"
	"github.com/workspaced/workspaced/workspace"
)

// realDouble is a double that runs every task's containers on Docker, from
// the Terraform task definition with the locally built images.
func realDouble(t *testing.T) (*ecsdouble.Double, *client.Client) {
	t.Helper()
	cli := testenv.Docker(t)
	testenv.Image(t, cli, ecsdouble.AgentTestImage)
	testenv.Image(t, cli, ecsdouble.ProxyTestImage)
	return ecsdouble.Start(t, ecsdouble.Options{Docker: cli}), cli
}

// waitReady waits for the task to run (the double's event, as the state
// subscriber would) and then for its agent to answer /health through the
// runtime's transport. It returns the task's Info.
func waitReady(ctx context.Context, d *ecsdouble.Double, rt *ecs.Runtime, id string) (workspace.Info, error) {
	snap, err := d.WaitStatus(ctx, id, "RUNNING")
	if err != nil {
		return workspace.Info{}, err
	}
	if snap.LastStatus != "RUNNING" {
		return workspace.Info{}, fmt.Errorf("task %s is %s: %s", id, snap.LastStatus, snap.StoppedReason)
	}
	info, err := rt.Inspect(ctx, id)
	if err != nil {
		return info, err
	}
	tr, err := rt.Transport(info.Endpoint)
	if err != nil {
		return info, err
	}
	return info, waitHealth(ctx, &http.Client{Transport: tr}, "http://workspace/health")
}

// waitHealth polls url until 200 or ctx ends: a process that just started
// has no readiness event to wait on (ECS reports RUNNING at container
// start, as here).
func waitHealth(ctx context.Context, c *http.Client, url string) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := c.Do(req)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("%s: %s", resp.Status, body)
		}
		last = err
		select {
		case <-tick.C:
		case <-ctx.Done():
			return fmt.Errorf("agent /health: %w (last: %v)", ctx.Err(), last)
		}
	}
}

// TestRealTask runs the workspace task for real: the agent answers /health
// at http://<task ip>:9000 through the runtime's transport, and the
// containers carry the template's hardening; the admin token reaches only
// the proxy.
func TestRealTask(t *testing.T) {
	t.Parallel()
	d, cli := realDouble(t)
	rt, _ := newRuntime(t, d)
	ctx := testCtx(t)
	tok := token(t)
	started, err := rt.Start(ctx, workspace.StartSpec{Token: tok, Conversation: "real", Tenant: "acme"})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	info, err := waitReady(ctx, d, rt, started.ID)
	if err != nil {
		t.Fatal(err)
	}
	snap, _ := d.Task(started.ID)
	if info.Endpoint != "http://"+snap.IP+":9000" {
		t.Errorf("endpoint %q, want the task IP %s:9000", info.Endpoint, snap.IP)
	}

	agent, err := cli.ContainerInspect(ctx, snap.ContainerIDs[ecs.DefaultAgentContainer])
	if err != nil {
		t.Fatal(err)
	}
	proxy, err := cli.ContainerInspect(ctx, snap.ContainerIDs[ecs.DefaultProxyContainer])
	if err != nil {
		t.Fatal(err)
	}
	hc := agent.HostConfig
	for what, ok := range map[string]bool{
		"shares the proxy's network namespace": string(hc.NetworkMode) == "container:"+proxy.ID,
		"read-only root":                       hc.ReadonlyRootfs,
		"runs as 1000:1000":                    agent.Config.User == "1000:1000",
		"drops ALL capabilities":               slices.Equal(hc.CapDrop, []string{"ALL"}),
		"no-new-privileges":                    slices.Contains(hc.SecurityOpt, "no-new-privileges:true"),
		"not privileged":                       !hc.Privileged,
		"2 GiB memory":                         hc.Memory == 2<<30,
		"tmpfs /workspace":                     hc.Tmpfs["/workspace"] != "",
		"proxy read-only root":                 proxy.HostConfig.ReadonlyRootfs,
		"proxy healthy":                        proxy.State.Health != nil && proxy.State.Health.Status == "healthy",
	} {
		if !ok {
			t.Errorf("agent task: %s: not so", what)
		}
	}
	want := ecs.ProxyAdminTokenEnv + "=" + admin.DeriveAdminToken(testAdminKey, tok)
	if !slices.Contains(proxy.Config.Env, want) {
		t.Errorf("proxy container lacks its admin token")
	}
	for _, kv := range agent.Config.Env {
		if strings.HasPrefix(kv, "PROXY_ADMIN") || strings.HasPrefix(kv, "AWS_") {
			t.Errorf("agent container environment has %s", kv)
		}
	}

	if err := rt.Stop(ctx, started.ID, "done"); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if _, err := d.WaitStatus(ctx, started.ID, "STOPPED"); err != nil {
		t.Fatal(err)
	}
	for name, id := range snap.ContainerIDs {
		if _, err := cli.ContainerInspect(ctx, id); !client.IsErrNotFound(err) {
			t.Errorf("container %s survives its STOPPED task: %v", name, err)
		}
	}
}

// TestConformance runs the runtime conformance suite against runtime/ecs on
// the double, tasks running for real.
func TestConformance(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	doubles := map[runtimetest.Runtime]*ecsdouble.Double{}
	runtimetest.Run(t, runtimetest.Harness{
		Features: runtimetest.Features{StoppedVisible: true, HasIP: true, StartTimeout: time.Minute, ReadyTimeout: 2 * time.Minute},
		New: func(t *testing.T) runtimetest.Runtime {
			d, _ := realDouble(t)
			rt, _ := newRuntime(t, d)
			mu.Lock()
			doubles[rt] = d
			mu.Unlock()
			return rt
		},
		WaitReady: func(ctx context.Context, rt runtimetest.Runtime, info workspace.Info) (workspace.Info, error) {
			mu.Lock()
			d := doubles[rt]
			mu.Unlock()
			r, ok := rt.(*ecs.Runtime)
			if d == nil || !ok {
				return info, errors.New("runtime not built by this harness")
			}
			return waitReady(ctx, d, r, info.ID)
		},
		// A restarted workspaced: a new runtime object on the same cluster.
		Restart: func(t *testing.T, rt runtimetest.Runtime) runtimetest.Runtime {
			mu.Lock()
			d := doubles[rt]
			mu.Unlock()
			again, _ := newRuntime(t, d)
			mu.Lock()
			doubles[again] = d
			mu.Unlock()
			return again
		},
		UnknownID: "arn:aws:ecs:us-east-1:000000000000:task/unknown-cluster/0123456789abcdef0123456789abcdef",
	})
}
