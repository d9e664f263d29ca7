package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	dockerclient "github.com/docker/docker/client"

	"github.com/workspaced/workspaced/agent/api"
	"github.com/workspaced/workspaced/agent/client"
	"github.com/workspaced/workspaced/internal/benchcmp"
	"github.com/workspaced/workspaced/internal/testenv"
	"github.com/workspaced/workspaced/runtime/docker"
	"github.com/workspaced/workspaced/store"
	"github.com/workspaced/workspaced/workspace"
)

// trueBody is the execute of every round: `true`, read to its final event.
const trueBody = `{"kind":"command","argv":["true"]}`

// BenchmarkCompare runs the workspace-acquisition comparisons of make bench
// (scripts/bench.sh) against the whole process (every role, the Docker
// runtime, the gochannel bus, a real redis-server), sides interleaved by
// internal/benchcmp:
//
//	cold  the engine floor (create, start, /health, /execute of `true` of
//	      the container the Docker runtime builds) against a new
//	      conversation's execute with the warm pool off
//	warm  a direct /execute on a ready agent against a new conversation's
//	      execute served by a ready, warmed pool workspace
func BenchmarkCompare(b *testing.B) {
	b.Run("cold", benchCold)
	b.Run("warm", benchWarm)
}

func benchCold(b *testing.B) {
	if b.N > 1 {
		return // a comparison runs its own rounds: -benchtime 1x
	}
	cli := testenv.Docker(b)
	// Registered first, so it runs last: no floor container outlives the
	// benchmark, whatever failed.
	floorLabel := randomName("floor-")
	b.Cleanup(func() { removeDeployment(b, cli, floorLabel) })
	s := startStack(b, nil)
	floor := newEngineFloor(b, s, cli, floorLabel)
	api := newAPIClient(b, s)
	benchcmp.Bench(b, benchcmp.Comparison{
		Name: "cold acquire: `true` on a new conversation, pool off", N: benchcmp.Rounds(15), Warmup: 1,
		A: benchcmp.Side{Name: "engine floor", Run: floor.round},
		B: benchcmp.Side{Name: "workspaced", Run: func(ctx context.Context) (benchcmp.Sample, error) {
			cid := randomName("cold-")
			sample, err := api.executeTrue(ctx, cid)
			if err != nil {
				return nil, err
			}
			return sample, s.releaseAndWait(ctx, cid)
		}},
		Metrics: []benchcmp.Metric{
			{Name: "total", Unit: "ms to done", Kind: benchcmp.Ratio, Max: map[string]float64{"p50": 1.03}},
		},
		Note: "A: the container the Docker runtime builds (`docker.Runtime.ContainerSpec`: image, hardening, limits, " +
			"tmpfs, socket directory) created and started through the engine API, its agent's socket awaited (inotify), " +
			"`/health`, then `/execute` of `true` read to its final event (the container's removal is not timed). " +
			"B: `POST /v1/conversations/{new id}/execute` of `true` read to `done` on workspaced (all roles, Docker, " +
			"gochannel bus, redis-server), warm pool off; its release (DELETE, container removed) is not timed " +
			"(`cmd/workspaced/bench_test.go`).",
	})
}

func benchWarm(b *testing.B) {
	if b.N > 1 {
		return
	}
	s := startStack(b, map[string]string{
		"WARM_POOL_MIN_SIZE": "1", "WARM_POOL_MAX_SIZE": "1",
	})
	api := newAPIClient(b, s)
	benchcmp.Bench(b, benchcmp.Comparison{
		Name: "warm-pool hit: `true` on a new conversation", N: benchcmp.Rounds(50), Warmup: 2,
		A: benchcmp.Side{Name: "direct", Run: func(ctx context.Context) (benchcmp.Sample, error) {
			// The agent the next B round is handed: the pool's ready,
			// warmed workspace.
			agent, closeAgent, err := s.poolAgent(ctx)
			if err != nil {
				return nil, err
			}
			defer closeAgent()
			return timed(func() error { return executeTrue(ctx, agent) })
		}},
		B: benchcmp.Side{Name: "workspaced", Run: func(ctx context.Context) (benchcmp.Sample, error) {
			cid := randomName("warm-")
			sample, err := api.executeTrue(ctx, cid)
			if err != nil {
				return nil, err
			}
			if err := s.releaseAndWait(ctx, cid); err != nil {
				return nil, err
			}
			return sample, s.waitPoolReady(ctx)
		}},
		Metrics: []benchcmp.Metric{
			{Name: "total", Unit: "ms to done", Kind: benchcmp.Difference, Max: map[string]float64{"p50": 3, "p99": 10}},
		},
		Note: "A: `/execute` of `true` read to its final event on the agent socket of the pool's ready, warmed workspace " +
			"(the agent client), the one the next B round is handed. B: `POST /v1/conversations/{new id}/execute` of " +
			"`true` read to `done` while the pool (size 1) holds that workspace; the pool's refill starts during the " +
			"round (a container create and start on the same 2 CPUs); the conversation's release and the wait for the " +
			"pool to be ready again are not timed (`cmd/workspaced/bench_test.go`).",
	})
}

// poolAgent waits for the pool's one ready workspace and returns a
// client of its agent, and a function that closes its connections.
func (s *stack) poolAgent(ctx context.Context) (*client.Client, func(), error) {
	if err := s.waitPoolReady(ctx); err != nil {
		return nil, nil, err
	}
	ids, err := s.store.PoolAvailableSince(ctx, time.Now().Add(time.Hour), 1)
	if err != nil || len(ids) != 1 {
		return nil, nil, fmt.Errorf("the pool's ready workspace: %v (%v)", ids, err)
	}
	w, err := s.store.Workspace(ctx, ids[0])
	if err != nil {
		return nil, nil, err
	}
	rt := client.UnixTransport(strings.TrimPrefix(w.Endpoint, "unix://"))
	return client.New(rt), rt.(interface{ CloseIdleConnections() }).CloseIdleConnections, nil
}

// timed runs f and returns its duration as the sample "total" (ms).
func timed(f func() error) (benchcmp.Sample, error) {
	start := time.Now()
	if err := f(); err != nil {
		return nil, err
	}
	return benchcmp.Sample{"total": float64(time.Since(start)) / float64(time.Millisecond)}, nil
}

// apiClient posts executes to a stack with its own connection pool.
type apiClient struct {
	s  *stack
	hc *http.Client
}

func newAPIClient(b *testing.B, s *stack) *apiClient {
	hc := &http.Client{Transport: &http.Transport{}}
	b.Cleanup(hc.CloseIdleConnections)
	return &apiClient{s: s, hc: hc}
}

// executeTrue posts an execute of `true` for conversation cid and reads
// the stream to its end, which must be done with exit code 0.
func (c *apiClient) executeTrue(ctx context.Context, cid string) (benchcmp.Sample, error) {
	return timed(func() error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.s.url+"/v1/conversations/"+cid+"/execute", strings.NewReader(trueBody))
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+testKey)
		resp, err := c.hc.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return errors.New(resp.Status)
		}
		evs, err := collect(resp.Body)
		if err != nil {
			return err
		}
		if f := final(evs); f.Event != "done" || !strings.Contains(f.Data, `"exit_code":0`) {
			return fmt.Errorf("execute %s ended with %s %s (events %v)", cid, f.Event, f.Data, names(evs))
		}
		return nil
	})
}

// releaseAndWait releases conversation cid and waits until its container
// is gone (DELETE; the engine's destroy event).
func (s *stack) releaseAndWait(ctx context.Context, cid string) error {
	conv, err := s.store.Conversation(ctx, cid)
	if err != nil {
		return fmt.Errorf("release %s: %w", cid, err)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	destroyed := s.watchDestroy(ctx, conv.Workspace)
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, s.url+"/v1/conversations/"+cid, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+testKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("release %s: %w", cid, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("release %s: %s", cid, resp.Status)
	}
	select {
	case <-destroyed:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("release %s: container %s not removed: %w", cid, conv.Workspace, ctx.Err())
	}
}

// waitPoolReady waits until the pool holds one ready workspace and no
// start is under way (pub/sub on the pool's counts, no polling).
func (s *stack) waitPoolReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	_, err := s.store.WaitPool(ctx, func(c store.PoolCounts) bool {
		return c.Available == 1 && c.Starting == 0 && c.Reserved == 0
	})
	if err != nil {
		return fmt.Errorf("wait for the pool to be ready: %w", err)
	}
	return nil
}

// executeTrue runs `true` on agent and reads its stream to the final
// event, which must be done with exit code 0.
func executeTrue(ctx context.Context, agent *client.Client) error {
	st, err := agent.Execute(ctx, api.ExecuteRequest{Kind: api.KindCommand, Argv: []string{"true"}})
	if err != nil {
		return err
	}
	defer st.Close()
	for st.Done() == nil {
		if _, err := st.Next(); err != nil {
			if errors.Is(err, io.EOF) {
				return errors.New("agent stream ended without its final event")
			}
			return err
		}
	}
	if d := st.Done(); d.ExitCode != 0 {
		return fmt.Errorf("true exited %d (%s)", d.ExitCode, d.Error)
	}
	return nil
}

// engineFloor creates the Docker runtime's workspace container straight
// through the engine: what any implementation must pay for a workspace.
type engineFloor struct {
	b     *testing.B
	rt    *docker.Runtime
	cli   *dockerclient.Client
	label string
}

func newEngineFloor(b *testing.B, s *stack, cli *dockerclient.Client, label string) *engineFloor {
	rt, ok := s.app.runtime.rt.(*docker.Runtime)
	if !ok {
		b.Fatalf("runtime is %T, want the Docker runtime", s.app.runtime.rt)
	}
	return &engineFloor{b: b, rt: rt, cli: cli, label: label}
}

// round is one floor measurement: create, start, the agent's socket
// (inotify, as the state subscriber waits), /health, /execute of `true`
// read to its final event. The container and its socket directory are
// removed afterwards, untimed.
func (f *engineFloor) round(ctx context.Context) (benchcmp.Sample, error) {
	token := floorToken()
	cfg, host, err := f.rt.ContainerSpec(workspace.StartSpec{Token: token, Conversation: "floor"})
	if err != nil {
		return nil, err
	}
	// Not the stack's deployment: the process under test must not see
	// (watch, health-check, reap) the floor's containers.
	cfg.Labels = map[string]string{deploymentLabel: f.label}
	dir := host.Mounts[0].Source
	sock := filepath.Join(dir, "agent.sock")
	defer func() { _ = os.RemoveAll(dir) }()
	var id string
	defer func() {
		if id != "" {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			defer cancel()
			if err := f.cli.ContainerRemove(rctx, id, container.RemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
				f.b.Logf("remove floor container %s: %v", id, err)
			}
		}
	}()
	rt := client.UnixTransport(sock)
	defer rt.(interface{ CloseIdleConnections() }).CloseIdleConnections()
	agent := client.New(rt)
	return timed(func() error {
		// The socket directory as the runtime prepares it.
		if err := os.Mkdir(dir, 0o750); err != nil {
			return err
		}
		if err := os.Lchown(dir, docker.DefaultUID, docker.DefaultGID); err != nil {
			return err
		}
		created, err := f.cli.ContainerCreate(ctx, cfg, host, nil, nil, "wsfloor-"+token)
		if err != nil {
			return fmt.Errorf("create: %w", err)
		}
		id = created.ID
		if err := f.cli.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
			return fmt.Errorf("start: %w", err)
		}
		if err := f.rt.AwaitListening(ctx, "unix://"+sock); err != nil {
			return err
		}
		if err := awaitHealth(ctx, agent); err != nil {
			return err
		}
		return executeTrue(ctx, agent)
	})
}

// awaitHealth asks the agent for /health until it answers ok, 1 ms apart
// (the socket exists: the agent is about to listen).
func awaitHealth(ctx context.Context, agent *client.Client) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		h, err := agent.Health(ctx)
		if err == nil && h.Status == "ok" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("agent not healthy: %v (%w)", err, ctx.Err())
		case <-time.After(time.Millisecond):
		}
	}
}

// floorToken is a fresh start token for a floor container.
func floorToken() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "f-" + hex.EncodeToString(b)
}
